//! Requests from clients that wait for an operator (for now: erasure requests), and the
//! `portico tasks` command that lists them.

use portico_core::plugin::{Error, Namespace, NamespaceTx, OperatorCtx, Result, id_key};
use serde::{Deserialize, Serialize};

use crate::consent::META;

const TASKS: &str = "tasks";
/// The open erasure request of a client: `client id` → task id.
const OPEN_ERASURE: &str = "open_erasure";

pub const ERASURE: &str = "erasure_request";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub kind: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub client_id: u64,
    pub client_number: String,
    pub client_name: String,
    pub note: String,
    pub source_addr: Option<String>,
    /// When an operator marked it done (RFC 3339, UTC).
    #[serde(default)]
    pub done: Option<String>,
}

/// Files an erasure request unless the client has one open already (then `None`): the check
/// and the write are one step, so a double submission files one.
pub fn open_erasure(ns: &Namespace, mut task: Task) -> Result<Option<Task>> {
    ns.write(|tx| {
        if tx
            .get::<u64>(OPEN_ERASURE, &id_key(task.client_id))?
            .is_some()
        {
            return Ok(None);
        }
        let id: u64 = tx.get(META, b"next_task")?.unwrap_or(1);
        tx.put(META, b"next_task", &(id + 1))?;
        task.id = id;
        tx.put(TASKS, &id_key(id), &task)?;
        tx.put(OPEN_ERASURE, &id_key(task.client_id), &id)?;
        Ok(Some(task))
    })
}

/// The client's open erasure request, if any.
/// A deleted client's open erasure request is done: the import deleted everything the portal
/// held about them. Runs inside the transaction that deletes the client.
pub fn client_deleted(tx: &mut NamespaceTx<'_, '_>, client_id: u64, now: &str) -> Result<()> {
    if let Some(id) = tx.get::<u64>(OPEN_ERASURE, &id_key(client_id))? {
        if let Some(mut task) = tx.get::<Task>(TASKS, &id_key(id))? {
            task.done = Some(now.to_string());
            task.note = format!("{} (done: the client was deleted by an import)", task.note);
            tx.put(TASKS, &id_key(id), &task)?;
        }
        tx.delete(OPEN_ERASURE, &id_key(client_id))?;
    }
    Ok(())
}

pub fn open_erasure_request(ns: &Namespace, client_id: u64) -> Result<Option<Task>> {
    match ns.get::<u64>(OPEN_ERASURE, &id_key(client_id))? {
        Some(id) => ns.get(TASKS, &id_key(id)),
        None => Ok(None),
    }
}

/// Every request of a client (open and done), oldest first.
pub fn of_client(ns: &Namespace, client_id: u64) -> Result<Vec<Task>> {
    Ok(ns
        .scan::<Task>(TASKS, b"")?
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.client_id == client_id)
        .collect())
}

const USAGE: &str = "usage: portico tasks list [--all] | portico tasks done ID";

/// `portico tasks list [--all]`, `portico tasks done ID`.
pub fn command(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let ns = ctx.store();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list"] | ["list", "--all"] => {
            let all = args.len() == 2;
            let tasks: Vec<Task> = ns
                .scan::<Task>(TASKS, b"")?
                .into_iter()
                .map(|(_, t)| t)
                .filter(|t| all || t.done.is_none())
                .collect();
            if tasks.is_empty() {
                return Ok("no open tasks\n".into());
            }
            Ok(tasks.iter().map(line).collect())
        }
        ["done", id] => {
            let id: u64 = id
                .trim_start_matches('#')
                .parse()
                .map_err(|_| Error::Invalid(USAGE.into()))?;
            let at = ctx.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let task = ns.write(|tx| {
                let mut task: Task = tx
                    .get(TASKS, &id_key(id))?
                    .ok_or_else(|| Error::NotFound(format!("task #{id}")))?;
                if task.done.is_some() {
                    return Err(Error::Invalid(format!("task #{id} is done already")));
                }
                task.done = Some(at.clone());
                tx.put(TASKS, &id_key(id), &task)?;
                if task.kind == ERASURE {
                    tx.delete(OPEN_ERASURE, &id_key(task.client_id))?;
                }
                Ok(task)
            })?;
            ctx.audit(
                Some(task.client_id),
                "task_done",
                Some(format!("task #{id}")),
            );
            Ok(line(&task))
        }
        _ => Err(Error::Invalid(USAGE.into())),
    }
}

fn line(t: &Task) -> String {
    let kind = match t.kind.as_str() {
        ERASURE => "erasure request",
        other => other,
    };
    let state = match &t.done {
        Some(at) => format!("done {at}"),
        None => "open".into(),
    };
    let note = if t.note.is_empty() {
        String::new()
    } else {
        format!(": {}", t.note.replace(['\r', '\n'], " "))
    };
    format!(
        "#{} {} {kind} from client {} ({}), {state}{note}\n",
        t.id, t.created, t.client_number, t.client_name
    )
}
