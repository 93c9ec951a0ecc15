//! The helpdesk's records and every change to them. Each change that a client can trigger is
//! one transaction that checks what it must (owner, state, idempotency key, rate, storage) and
//! writes everything at once, or nothing.

use portico_core::plugin::{Error, Namespace, NamespaceTx, Result, Task, compound_key, id_key};
use serde::{Deserialize, Serialize};

const META: &str = "meta";
const OPERATORS: &str = "operators";
const DEPARTMENTS: &str = "departments";
const TICKETS: &str = "tickets";
/// `client id ␟ ticket id` → ticket id.
const CLIENT_TICKETS: &str = "client_tickets";
/// `attachment id` → [`Attachment`] (what it is; the bytes are in `files`).
const ATTACHMENTS: &str = "attachments";
/// `attachment id` → the file's bytes as uploaded.
const FILES: &str = "files";
/// `client id ␟ form key` → what the form created (a second submission finds it here).
const IDEMPOTENCY: &str = "idempotency";
/// `client id ␟ kind` → times (unix seconds) of the client's recent submissions.
const RATE: &str = "rate";
/// `client id` → bytes of attachments the client stores.
const USAGE: &str = "usage";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    InPerson,
    Telephone,
    /// Written by the client in the portal.
    Portal,
}

impl Channel {
    /// The operator's spelling (`--channel`).
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" | "e-mail" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            "in-person" | "in_person" => Some(Channel::InPerson),
            "telephone" | "phone" => Some(Channel::Telephone),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::InPerson => "in_person",
            Channel::Telephone => "telephone",
            Channel::Portal => "portal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Open,
    Waiting,
    Closed,
}

impl State {
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "open" => Some(State::Open),
            "waiting" => Some(State::Waiting),
            "closed" => Some(State::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Waiting => "waiting",
            State::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operator {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub send_tasks_via_email: bool,
    pub send_cp_requests: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Department {
    pub id: u64,
    pub name: String,
    /// "Use for CP requests": tickets clients create go here.
    pub cp_requests: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// 1, 2, … within the ticket.
    pub number: u32,
    /// RFC 3339, UTC.
    pub at: String,
    pub channel: Channel,
    pub author: String,
    pub from_client: bool,
    pub text: String,
    pub department_id: u64,
    #[serde(default)]
    pub attachments: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    pub id: u64,
    pub subject: String,
    pub client_id: Option<u64>,
    /// Where e-mail replies go when the ticket has no client.
    #[serde(default)]
    pub email: Option<String>,
    pub department_id: u64,
    pub state: State,
    /// RFC 3339, UTC.
    pub created: String,
    /// The last item's time.
    pub updated: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub items: Vec<Item>,
}

impl Ticket {
    pub fn attachment_count(&self) -> usize {
        self.items.iter().map(|i| i.attachments.len()).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub id: u64,
    pub ticket_id: u64,
    pub client_id: Option<u64>,
    /// Sanitized when it arrived.
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// A file on its way in, already checked and named.
pub struct NewFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What a client's bounds are, read from the settings once per request.
pub struct Bounds {
    pub per_hour: usize,
    pub attachments_per_ticket: usize,
    pub storage_bytes: u64,
}

/// Why a client's submission was not stored (nothing of it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The same form was stored already: here is what it made.
    Duplicate(u64),
    TooMany,
    TooManyFiles,
    Storage,
    Closed,
    NotFound,
}

fn next_id(tx: &mut NamespaceTx<'_, '_>, name: &str) -> Result<u64> {
    let id: u64 = tx.get(META, name.as_bytes())?.unwrap_or(1);
    tx.put(META, name.as_bytes(), &(id + 1))?;
    Ok(id)
}

// ----- operators and departments -----

pub fn operators(ns: &Namespace) -> Result<Vec<Operator>> {
    Ok(ns
        .scan(OPERATORS, b"")?
        .into_iter()
        .map(|(_, o)| o)
        .collect())
}

pub fn add_operator(ns: &Namespace, mut op: Operator) -> Result<Operator> {
    ns.write(|tx| {
        op.id = next_id(tx, "next_operator")?;
        tx.put(OPERATORS, &id_key(op.id), &op)?;
        Ok(op)
    })
}

pub fn remove_operator(ns: &Namespace, id: u64) -> Result<Operator> {
    ns.write(|tx| {
        let op: Operator = tx
            .get(OPERATORS, &id_key(id))?
            .ok_or_else(|| Error::NotFound(format!("operator #{id}")))?;
        tx.delete(OPERATORS, &id_key(id))?;
        Ok(op)
    })
}

pub fn departments(ns: &Namespace) -> Result<Vec<Department>> {
    Ok(ns
        .scan(DEPARTMENTS, b"")?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

pub fn department(ns: &Namespace, id: u64) -> Result<Option<Department>> {
    ns.get(DEPARTMENTS, &id_key(id))
}

/// The department clients' tickets go to: the first one used for CP requests.
pub fn cp_department(ns: &Namespace) -> Result<Option<Department>> {
    Ok(departments(ns)?.into_iter().find(|d| d.cp_requests))
}

/// A department by number or exact name.
pub fn find_department(ns: &Namespace, which: &str) -> Result<Department> {
    let all = departments(ns)?;
    let id = which.trim_start_matches('#').parse::<u64>().ok();
    all.into_iter()
        .find(|d| Some(d.id) == id || d.name == which)
        .ok_or_else(|| Error::NotFound(format!("department `{which}`")))
}

pub fn add_department(ns: &Namespace, name: &str, cp_requests: bool) -> Result<Department> {
    ns.write(|tx| {
        let d = Department {
            id: next_id(tx, "next_department")?,
            name: name.to_string(),
            cp_requests,
        };
        tx.put(DEPARTMENTS, &id_key(d.id), &d)?;
        Ok(d)
    })
}

pub fn set_department_cp(ns: &Namespace, id: u64, cp_requests: bool) -> Result<Department> {
    ns.write(|tx| {
        let mut d: Department = tx
            .get(DEPARTMENTS, &id_key(id))?
            .ok_or_else(|| Error::NotFound(format!("department #{id}")))?;
        d.cp_requests = cp_requests;
        tx.put(DEPARTMENTS, &id_key(id), &d)?;
        Ok(d)
    })
}

// ----- tickets -----

pub fn ticket(ns: &Namespace, id: u64) -> Result<Option<Ticket>> {
    ns.get(TICKETS, &id_key(id))
}

pub fn all_tickets(ns: &Namespace) -> Result<Vec<Ticket>> {
    Ok(ns.scan(TICKETS, b"")?.into_iter().map(|(_, t)| t).collect())
}

/// A ticket of this client, or `None` (another client's ticket is as absent as a missing one).
pub fn client_ticket(ns: &Namespace, client_id: u64, id: u64) -> Result<Option<Ticket>> {
    Ok(ticket(ns, id)?.filter(|t| t.client_id == Some(client_id)))
}

/// The client's tickets, newest activity first.
pub fn tickets_of_client(ns: &Namespace, client_id: u64) -> Result<Vec<Ticket>> {
    let mut out = Vec::new();
    for (_, id) in ns.scan::<u64>(CLIENT_TICKETS, &client_prefix(client_id))? {
        if let Some(t) = client_ticket(ns, client_id, id)? {
            out.push(t);
        }
    }
    out.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
    Ok(out)
}

fn client_prefix(client_id: u64) -> Vec<u8> {
    // The client's id and the separator: every `client ␟ ticket` key of this client.
    compound_key(&[&id_key(client_id), b""])
}

/// An attachment of one of the client's tickets, with its bytes.
pub fn client_attachment(
    ns: &Namespace,
    client_id: u64,
    id: u64,
) -> Result<Option<(Attachment, Vec<u8>)>> {
    let Some(a) = ns.get::<Attachment>(ATTACHMENTS, &id_key(id))? else {
        return Ok(None);
    };
    // Through the ticket, which must be the client's now (a reassigned ticket takes its files).
    if client_ticket(ns, client_id, a.ticket_id)?.is_none() {
        return Ok(None);
    }
    Ok(ns.get_bytes(FILES, &id_key(id))?.map(|b| (a, b)))
}

pub fn attachment(ns: &Namespace, id: u64) -> Result<Option<(Attachment, Vec<u8>)>> {
    let Some(a) = ns.get::<Attachment>(ATTACHMENTS, &id_key(id))? else {
        return Ok(None);
    };
    Ok(ns.get_bytes(FILES, &id_key(id))?.map(|b| (a, b)))
}

pub fn attachments_of(ns: &Namespace, ids: &[u64]) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(a) = ns.get::<Attachment>(ATTACHMENTS, &id_key(*id))? {
            out.push(a);
        }
    }
    Ok(out)
}

/// The client's submissions of `kind` in the last hour, if one more is within the bound: the
/// caller writes them back with [`record_rate`] once everything else is checked.
fn rate_room(
    tx: &NamespaceTx<'_, '_>,
    client_id: u64,
    kind: &str,
    now: i64,
    per_hour: usize,
) -> Result<Option<Vec<i64>>> {
    let key = compound_key(&[&id_key(client_id), kind.as_bytes()]);
    let mut times: Vec<i64> = tx.get(RATE, &key)?.unwrap_or_default();
    times.retain(|t| *t > now - 3600);
    if times.len() >= per_hour {
        return Ok(None);
    }
    times.push(now);
    Ok(Some(times))
}

fn record_rate(
    tx: &mut NamespaceTx<'_, '_>,
    client_id: u64,
    kind: &str,
    times: &[i64],
) -> Result<()> {
    let key = compound_key(&[&id_key(client_id), kind.as_bytes()]);
    tx.put(RATE, &key, &times)
}

/// Whether the client's files fit in their storage.
fn storage_room(
    tx: &NamespaceTx<'_, '_>,
    client_id: u64,
    files: &[NewFile],
    storage_bytes: u64,
) -> Result<bool> {
    let used: u64 = tx.get(USAGE, &id_key(client_id))?.unwrap_or(0);
    let adding: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    Ok(adding == 0 || used + adding <= storage_bytes)
}

fn idempotency_key(client_id: u64, key: &str) -> Vec<u8> {
    compound_key(&[&id_key(client_id), key.as_bytes()])
}

/// What a form with this key made, if it was stored (a quick look before the hooks run; the
/// write checks again in its transaction).
pub fn form_used(ns: &Namespace, client_id: u64, key: &str) -> Result<Option<u64>> {
    ns.get(IDEMPOTENCY, &idempotency_key(client_id, key))
}

/// Stores files of a client's message (the caller checked counts and storage); returns their
/// ids.
fn store_files(
    tx: &mut NamespaceTx<'_, '_>,
    client_id: u64,
    ticket_id: u64,
    files: Vec<NewFile>,
) -> Result<Vec<u64>> {
    let used: u64 = tx.get(USAGE, &id_key(client_id))?.unwrap_or(0);
    let adding: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    let mut ids = Vec::new();
    for f in files {
        let id = next_id(tx, "next_attachment")?;
        let a = Attachment {
            id,
            ticket_id,
            client_id: Some(client_id),
            name: f.name,
            content_type: f.content_type,
            size: f.bytes.len() as u64,
        };
        tx.put(ATTACHMENTS, &id_key(id), &a)?;
        tx.put_bytes(FILES, &id_key(id), f.bytes)?;
        ids.push(id);
    }
    if adding > 0 {
        tx.put(USAGE, &id_key(client_id), &(used + adding))?;
    }
    Ok(ids)
}

/// A client's new ticket with its first item and files, all in one transaction: the form key
/// is checked and spent, the hourly bound and storage are checked, then everything is written.
pub fn create_client_ticket(
    ns: &Namespace,
    client_id: u64,
    form_key: &str,
    now: i64,
    bounds: &Bounds,
    mut ticket: Ticket,
    files: Vec<NewFile>,
) -> Result<std::result::Result<Ticket, Refusal>> {
    ns.write(|tx| {
        let idem = idempotency_key(client_id, form_key);
        if let Some(id) = tx.get::<u64>(IDEMPOTENCY, &idem)? {
            return Ok(Err(Refusal::Duplicate(id)));
        }
        if files.len() > bounds.attachments_per_ticket {
            return Ok(Err(Refusal::TooManyFiles));
        }
        // Every check before the first write: a refusal leaves nothing behind.
        let Some(times) = rate_room(tx, client_id, "ticket", now, bounds.per_hour)? else {
            return Ok(Err(Refusal::TooMany));
        };
        if !storage_room(tx, client_id, &files, bounds.storage_bytes)? {
            return Ok(Err(Refusal::Storage));
        }
        record_rate(tx, client_id, "ticket", &times)?;
        ticket.id = next_id(tx, "next_ticket")?;
        let ids = store_files(tx, client_id, ticket.id, files)?;
        if let Some(first) = ticket.items.first_mut() {
            first.attachments = ids;
        }
        tx.put(TICKETS, &id_key(ticket.id), &ticket)?;
        tx.put(
            CLIENT_TICKETS,
            &compound_key(&[&id_key(client_id), &id_key(ticket.id)]),
            &ticket.id,
        )?;
        tx.put(IDEMPOTENCY, &idem, &ticket.id)?;
        Ok(Ok(ticket))
    })
}

/// A client's reply with its files: the ticket must be theirs and not closed; the form key,
/// the hourly bound, the ticket's file count and storage are checked in the same transaction.
#[allow(clippy::too_many_arguments)]
pub fn add_client_reply(
    ns: &Namespace,
    client_id: u64,
    ticket_id: u64,
    form_key: &str,
    now: i64,
    bounds: &Bounds,
    mut item: Item,
    files: Vec<NewFile>,
) -> Result<std::result::Result<Ticket, Refusal>> {
    ns.write(|tx| {
        let idem = idempotency_key(client_id, form_key);
        if let Some(id) = tx.get::<u64>(IDEMPOTENCY, &idem)? {
            return Ok(Err(Refusal::Duplicate(id)));
        }
        let mut ticket: Ticket = match tx.get::<Ticket>(TICKETS, &id_key(ticket_id))? {
            Some(t) if t.client_id == Some(client_id) => t,
            _ => return Ok(Err(Refusal::NotFound)),
        };
        if ticket.state == State::Closed {
            return Ok(Err(Refusal::Closed));
        }
        if ticket.attachment_count() + files.len() > bounds.attachments_per_ticket {
            return Ok(Err(Refusal::TooManyFiles));
        }
        let Some(times) = rate_room(tx, client_id, "reply", now, bounds.per_hour)? else {
            return Ok(Err(Refusal::TooMany));
        };
        if !storage_room(tx, client_id, &files, bounds.storage_bytes)? {
            return Ok(Err(Refusal::Storage));
        }
        record_rate(tx, client_id, "reply", &times)?;
        let ids = store_files(tx, client_id, ticket.id, files)?;
        item.attachments = ids;
        item.number = ticket.items.len() as u32 + 1;
        ticket.updated = item.at.clone();
        // The client answered: the ticket waits for the staff again.
        ticket.state = State::Open;
        ticket.items.push(item);
        tx.put(TICKETS, &id_key(ticket.id), &ticket)?;
        tx.put(IDEMPOTENCY, &idem, &ticket.id)?;
        Ok(Ok(ticket))
    })
}

/// A support request filed as a task, once per form key and within the hourly bound.
pub fn file_request(
    ns: &Namespace,
    client_id: u64,
    form_key: &str,
    now: i64,
    per_hour: usize,
    task: Task,
) -> Result<std::result::Result<Task, Refusal>> {
    ns.write(|tx| {
        let idem = idempotency_key(client_id, form_key);
        if let Some(id) = tx.get::<u64>(IDEMPOTENCY, &idem)? {
            return Ok(Err(Refusal::Duplicate(id)));
        }
        let Some(times) = rate_room(tx, client_id, "ticket", now, per_hour)? else {
            return Ok(Err(Refusal::TooMany));
        };
        record_rate(tx, client_id, "ticket", &times)?;
        let task = tx.file_task(task)?;
        tx.put(IDEMPOTENCY, &idem, &task.id)?;
        Ok(Ok(task))
    })
}

/// A ticket an operator records (a mail or call that came in some other way).
pub fn create_operator_ticket(ns: &Namespace, mut ticket: Ticket) -> Result<Ticket> {
    ns.write(|tx| {
        ticket.id = next_id(tx, "next_ticket")?;
        tx.put(TICKETS, &id_key(ticket.id), &ticket)?;
        if let Some(c) = ticket.client_id {
            tx.put(
                CLIENT_TICKETS,
                &compound_key(&[&id_key(c), &id_key(ticket.id)]),
                &ticket.id,
            )?;
        }
        Ok(ticket)
    })
}

/// Changes one ticket in a transaction; `f` may refuse.
pub fn change_ticket<R>(
    ns: &Namespace,
    id: u64,
    f: impl FnOnce(&mut Ticket) -> Result<R>,
) -> Result<(Ticket, R)> {
    ns.write(|tx| {
        let mut t: Ticket = tx
            .get(TICKETS, &id_key(id))?
            .ok_or_else(|| Error::NotFound(format!("ticket #{id}")))?;
        let old_client = t.client_id;
        let r = f(&mut t)?;
        if old_client != t.client_id {
            if let Some(c) = old_client {
                tx.delete(CLIENT_TICKETS, &compound_key(&[&id_key(c), &id_key(id)]))?;
            }
            if let Some(c) = t.client_id {
                tx.put(
                    CLIENT_TICKETS,
                    &compound_key(&[&id_key(c), &id_key(id)]),
                    &id,
                )?;
            }
        }
        tx.put(TICKETS, &id_key(id), &t)?;
        Ok((t, r))
    })
}

/// The client's tickets for their data export: what the Helpdesk tab shows them (texts of
/// e-mail and portal items; SMS, in-person and telephone items by channel, time and author),
/// with the names and sizes of their files.
pub fn export(ns: &Namespace, client_id: u64) -> Result<serde_json::Value> {
    let deps = departments(ns)?;
    let dep = |id: u64| {
        deps.iter()
            .find(|d| d.id == id)
            .map_or_else(String::new, |d| d.name.clone())
    };
    let mut out = Vec::new();
    for t in tickets_of_client(ns, client_id)? {
        let mut items = Vec::new();
        for i in &t.items {
            let shown = matches!(i.channel, Channel::Email | Channel::Portal);
            let files: Vec<serde_json::Value> = attachments_of(ns, &i.attachments)?
                .into_iter()
                .map(|a| serde_json::json!({ "name": a.name, "size": a.size }))
                .collect();
            items.push(serde_json::json!({
                "at": i.at,
                "channel": i.channel.as_str(),
                "author": i.author,
                "from_client": i.from_client,
                "text": if shown { Some(i.text.clone()) } else { None },
                "attachments": files,
            }));
        }
        out.push(serde_json::json!({
            "ticket": t.id,
            "subject": t.subject,
            "state": t.state.as_str(),
            "department": dep(t.department_id),
            "created": t.created,
            "updated": t.updated,
            "items": items,
        }));
    }
    Ok(serde_json::Value::Array(out))
}
