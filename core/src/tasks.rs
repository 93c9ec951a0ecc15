//! Requests from clients that wait for an operator (a GDPR erasure request, a support request),
//! filed by plugins into one list, and the `portico tasks list|done` command that shows them.
//! Plugins file a task in the same transaction as their own change
//! ([`crate::plugin::NamespaceTx::file_task`]), so a check ("no open request yet") and the
//! filing are one step.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugin::OperatorCtx;
use crate::store::{Store, WriteTx, id_key};

/// `task id` → [`Task`] (JSON).
pub const TREE: &str = "tasks";
/// `next` → the next task id.
const META: &str = "tasks_meta";

/// One request waiting for an operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// Given when filed.
    #[serde(default)]
    pub id: u64,
    /// The plugin that filed it (set when filed).
    #[serde(default)]
    pub plugin: String,
    /// What it is, as a word: `erasure_request`, `support_request`.
    pub kind: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub client_id: u64,
    pub client_number: String,
    pub client_name: String,
    /// The client's words (or a summary), shown in `tasks list`.
    pub note: String,
    pub source_addr: Option<String>,
    /// Names of the operators it is assigned to.
    #[serde(default)]
    pub assigned: Vec<String>,
    /// When an operator marked it done (RFC 3339, UTC).
    #[serde(default)]
    pub done: Option<String>,
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Task> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        tree: TREE.into(),
        key: hex::encode(key),
        cause: e.to_string(),
    })
}

fn encode(task: &Task) -> Result<Vec<u8>> {
    serde_json::to_vec(task).map_err(|e| Error::Internal(e.to_string()))
}

/// Files a task inside a transaction: the id is the next one, `plugin` the filer.
pub(crate) fn file(tx: &mut WriteTx<'_>, plugin: &str, mut task: Task) -> Result<Task> {
    let next = match tx.raw_get(META, b"next")? {
        Some(b) => serde_json::from_slice::<u64>(&b).unwrap_or(1),
        None => 1,
    };
    task.id = next;
    task.plugin = plugin.to_string();
    task.done = None;
    tx.set_raw(
        META,
        b"next".to_vec(),
        Some((next + 1).to_string().into_bytes()),
    );
    tx.set_raw(TREE, id_key(next), Some(encode(&task)?));
    Ok(task)
}

/// One task, read inside a transaction.
pub(crate) fn get_tx(tx: &WriteTx<'_>, id: u64) -> Result<Option<Task>> {
    let key = id_key(id);
    tx.raw_get(TREE, &key)?
        .map(|b| decode(&key, &b))
        .transpose()
}

/// Marks a task of `plugin` done inside a transaction, with `why` added to its note; one that
/// is done already, missing, or filed by another plugin is left alone.
pub(crate) fn finish(
    tx: &mut WriteTx<'_>,
    plugin: &str,
    id: u64,
    at: &str,
    why: &str,
) -> Result<()> {
    let Some(mut task) = get_tx(tx, id)?.filter(|t| t.plugin == plugin && t.done.is_none()) else {
        return Ok(());
    };
    task.done = Some(at.to_string());
    task.note = format!("{} ({why})", task.note);
    tx.set_raw(TREE, id_key(id), Some(encode(&task)?));
    Ok(())
}

/// Every task, oldest first.
pub fn all(store: &Store) -> Result<Vec<Task>> {
    store
        .scan_raw(TREE, b"")?
        .into_iter()
        .map(|(k, v)| decode(&k, &v))
        .collect()
}

/// Moves the GDPR plugin's tasks (filed before tasks were core's) into core's list, ids kept.
pub(crate) fn adopt_gdpr_tasks(store: &Store) -> Result<()> {
    let old = store.scan_raw("gdpr:tasks", b"")?;
    if old.is_empty() {
        return Ok(());
    }
    store.write(|tx| {
        let mut next = match tx.raw_get(META, b"next")? {
            Some(b) => serde_json::from_slice::<u64>(&b).unwrap_or(1),
            None => 1,
        };
        for (key, bytes) in &old {
            let mut task = decode(key, bytes)?;
            task.plugin = "gdpr".into();
            next = next.max(task.id + 1);
            tx.set_raw(TREE, key.clone(), Some(encode(&task)?));
            tx.set_raw("gdpr:tasks", key.clone(), None);
        }
        tx.set_raw(META, b"next".to_vec(), Some(next.to_string().into_bytes()));
        Ok(())
    })
}

const USAGE: &str = "usage: portico tasks list [--all] | portico tasks done ID";

/// `portico tasks list [--all]`, `portico tasks done ID`.
pub(crate) fn command(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let store = &ctx.portal().store;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list"] | ["list", "--all"] => {
            let every = args.len() == 2;
            let tasks: Vec<Task> = all(store)?
                .into_iter()
                .filter(|t| every || t.done.is_none())
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
            let at = crate::stamp::stamp(ctx.now());
            let task = store.write(|tx| {
                let mut task =
                    get_tx(tx, id)?.ok_or_else(|| Error::NotFound(format!("task #{id}")))?;
                if task.done.is_some() {
                    return Err(Error::Invalid(format!("task #{id} is done already")));
                }
                task.done = Some(at.clone());
                tx.set_raw(TREE, id_key(id), Some(encode(&task)?));
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
    let kind = t.kind.replace('_', " ");
    let state = match &t.done {
        Some(at) => format!("done {at}"),
        None => "open".into(),
    };
    let assigned = if t.assigned.is_empty() {
        String::new()
    } else {
        format!(", assigned to {}", t.assigned.join(", "))
    };
    let note = if t.note.is_empty() {
        String::new()
    } else {
        format!(": {}", t.note.replace(['\r', '\n'], " "))
    };
    format!(
        "#{} {} {kind} from client {} ({}){assigned}, {state}{note}\n",
        t.id, t.created, t.client_number, t.client_name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Namespace;

    fn task(client_id: u64, note: &str) -> Task {
        Task {
            id: 0,
            plugin: String::new(),
            kind: "support_request".into(),
            created: "2026-12-01T10:00:00Z".into(),
            client_id,
            client_number: format!("{}", 1000 + client_id),
            client_name: "Alice".into(),
            note: note.into(),
            source_addr: None,
            assigned: vec!["Jana".into()],
            done: None,
        }
    }

    #[test]
    fn gdpr_tasks_move_into_the_one_list_with_their_ids() {
        let store = Store::in_memory();
        let old = serde_json::json!({
            "id": 2, "kind": "erasure_request", "created": "2026-11-30T10:00:00Z",
            "client_id": 1, "client_number": "1001", "client_name": "Alice",
            "note": "erase", "source_addr": null, "done": null
        });
        store
            .write(|tx| {
                tx.set_raw("gdpr:tasks", id_key(2), Some(old.to_string().into_bytes()));
                Ok(())
            })
            .expect("seed");
        adopt_gdpr_tasks(&store).expect("migrate");
        let all = all(&store).expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].id, all[0].plugin.as_str()), (2, "gdpr"));
        assert!(store.scan_raw("gdpr:tasks", b"").expect("scan").is_empty());
        // The next task filed gets the next id; a plugin reads only its own tasks.
        let ns = Namespace::new(store.clone(), "helpdesk");
        let filed = ns.write(|tx| tx.file_task(task(1, "hi"))).expect("file");
        assert_eq!((filed.id, filed.plugin.as_str()), (3, "helpdesk"));
        assert_eq!(ns.tasks_of_client(1).expect("own").len(), 1);
        assert!(ns.write(|tx| tx.task(2)).expect("read").is_none());
        assert_eq!(
            line(&filed),
            "#3 2026-12-01T10:00:00Z support request from client 1001 (Alice), assigned to Jana, open: hi\n"
        );
    }

    #[test]
    fn a_refused_transaction_files_no_task() {
        let store = Store::in_memory();
        let ns = Namespace::new(store.clone(), "helpdesk");
        let r: Result<()> = ns.write(|tx| {
            tx.file_task(task(1, "x"))?;
            Err(Error::Invalid("changed my mind".into()))
        });
        assert!(r.is_err());
        assert!(all(&store).expect("list").is_empty());
    }
}
