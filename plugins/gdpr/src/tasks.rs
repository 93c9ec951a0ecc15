//! Erasure requests: filed as tasks in core's one list (`portico tasks list|done`), at most one
//! open per client.

use portico_core::plugin::{Namespace, NamespaceTx, Result, Task, id_key};

/// The latest erasure request of a client: `client id` → task id (open while the task is).
const OPEN_ERASURE: &str = "open_erasure";

pub const ERASURE: &str = "erasure_request";

/// Files an erasure request unless the client has one open already (then `None`): the check
/// and the filing are one step, so a double submission files one.
pub fn open_erasure(ns: &Namespace, task: Task) -> Result<Option<Task>> {
    ns.write(|tx| {
        if let Some(id) = tx.get::<u64>(OPEN_ERASURE, &id_key(task.client_id))?
            && tx.task(id)?.is_some_and(|t| t.done.is_none())
        {
            return Ok(None);
        }
        let task = tx.file_task(task)?;
        tx.put(OPEN_ERASURE, &id_key(task.client_id), &task.id)?;
        Ok(Some(task))
    })
}

/// A deleted client's open erasure request is done: the import deleted everything the portal
/// held about them. Runs inside the transaction that deletes the client.
pub fn client_deleted(tx: &mut NamespaceTx<'_, '_>, client_id: u64, now: &str) -> Result<()> {
    if let Some(id) = tx.get::<u64>(OPEN_ERASURE, &id_key(client_id))? {
        tx.finish_task(id, now, "done: the client was deleted by an import")?;
        tx.delete(OPEN_ERASURE, &id_key(client_id))?;
    }
    Ok(())
}

/// The client's open erasure request, if any.
pub fn open_erasure_request(ns: &Namespace, client_id: u64) -> Result<Option<Task>> {
    let Some(id) = ns.get::<u64>(OPEN_ERASURE, &id_key(client_id))? else {
        return Ok(None);
    };
    Ok(ns
        .tasks_of_client(client_id)?
        .into_iter()
        .find(|t| t.id == id && t.done.is_none()))
}

/// Every request of a client (open and done), oldest first.
pub fn of_client(ns: &Namespace, client_id: u64) -> Result<Vec<Task>> {
    ns.tasks_of_client(client_id)
}
