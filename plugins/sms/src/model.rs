//! What the plugin stores in its namespace (`sms:` trees):
//!
//! - `messages`: id → [`Sms`], every message accepted into the outbox, with its state;
//! - `client_messages`: (client, id) → id, a client's messages;
//! - `outbox`: id → [`Pending`], the messages still to hand to the gateway;
//! - `quota`: (client, `YYYY-MM`) → parts accepted that month;
//! - `form_keys`: (client, form key) → message id, so a form sent twice queues one message;
//! - `contacts`: (client, id) → [`Contact`], the telephone directory;
//! - `meta`: the next message and contact ids.

use portico_core::Result;
use portico_core::plugin::{Namespace, NamespaceTx, compound_key, id_key};
use serde::{Deserialize, Serialize};

use crate::gsm::{self, Encoding};

const MESSAGES: &str = "messages";
const CLIENT_MESSAGES: &str = "client_messages";
const OUTBOX: &str = "outbox";
const QUOTA: &str = "quota";
const FORM_KEYS: &str = "form_keys";
const CONTACTS: &str = "contacts";
const META: &str = "meta";
/// SMPP: the SMSC's message id → (message id, part index), for delivery receipts.
const SMSC_IDS: &str = "smsc_ids";

/// Contacts one client may keep in the directory.
pub const MAX_CONTACTS: usize = 200;
pub const MAX_CONTACT_NAME: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Sent,
    Delivered,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sent => "sent",
            State::Delivered => "delivered",
            State::Failed => "failed",
        }
    }
}

/// One message accepted into the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sms {
    pub id: u64,
    /// The client who sent it (or for whom an operator sent it).
    pub client_id: Option<u64>,
    /// The recipient in E.164 (`+420601234567`).
    pub to: String,
    pub text: String,
    pub encoding: Encoding,
    pub parts: u32,
    pub state: State,
    /// RFC 3339 UTC.
    pub created: String,
    pub updated: String,
    /// `portal` or `operator`.
    pub origin: String,
    /// Hand-over attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed (for the operator).
    #[serde(default)]
    pub error: Option<String>,
    /// SMPP: the SMSC's message id of each part ("" while the part is not accepted yet).
    #[serde(default)]
    pub smsc_ids: Vec<String>,
    /// SMPP: parts the SMSC's delivery receipts reported delivered.
    #[serde(default)]
    pub delivered_parts: u32,
}

/// A message waiting for the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub id: u64,
    /// RFC 3339 UTC: not before this.
    pub next_attempt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub id: u64,
    pub client_id: u64,
    pub name: String,
    /// E.164.
    pub number: String,
}

/// What a send asks for.
pub struct NewSms<'a> {
    pub client_id: Option<u64>,
    pub to: &'a str,
    pub text: &'a str,
    pub origin: &'a str,
    /// The form's key: a second submission of the same form returns the first message.
    pub form_key: Option<&'a str>,
    /// The calendar month (`YYYY-MM`) the quota counts in.
    pub month: &'a str,
    /// Whether the message counts against the client's monthly quota (a client's own
    /// message does; an operator's does not).
    pub charge: bool,
    /// Parts a client may send a month; 0 is no limit.
    pub limit: u64,
    /// Messages a client may send in one clock hour (a bound even without a monthly limit);
    /// 0 is no bound (operators).
    pub per_hour: u64,
    /// The clock hour (`YYYY-MM-DDTHH`) the hourly bound counts in.
    pub hour: &'a str,
    pub now: &'a str,
}

impl<'a> NewSms<'a> {
    /// An operator's message to client `client_id` (`portico sms send`, a helpdesk reply):
    /// no form key, not charged to the client's quota, no hourly bound.
    pub fn from_operator(
        client_id: u64,
        to: &'a str,
        text: &'a str,
        month: &'a str,
        now: &'a str,
    ) -> NewSms<'a> {
        NewSms {
            client_id: Some(client_id),
            to,
            text,
            origin: "operator",
            form_key: None,
            charge: false,
            month,
            limit: 0,
            per_hour: 0,
            hour: "",
            now,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    New(u64),
    /// The same form again: its message.
    Again(u64),
    /// Over the hourly bound.
    TooMany,
    /// Over the month's quota: how many parts were left.
    OverQuota {
        left: u64,
    },
}

fn next_id(tx: &mut NamespaceTx<'_, '_>, counter: &[u8]) -> Result<u64> {
    let id = tx.get::<u64>(META, counter)?.unwrap_or(0) + 1;
    tx.put(META, counter, &id)?;
    Ok(id)
}

fn quota_key(client_id: u64, month: &str) -> Vec<u8> {
    compound_key(&[&id_key(client_id), month.as_bytes()])
}

/// Parts a client has sent (accepted) in a month.
pub fn used_parts(ns: &Namespace, client_id: u64, month: &str) -> Result<u64> {
    Ok(ns
        .get::<u64>(QUOTA, &quota_key(client_id, month))?
        .unwrap_or(0))
}

/// Accepts a message into the outbox: the quota is checked and consumed, the message stored
/// and queued in one transaction (flushed), or nothing happens.
pub fn enqueue(ns: &Namespace, new: &NewSms<'_>) -> Result<Accepted> {
    let count = gsm::count(new.text);
    let parts = count.parts as u64;
    ns.write(|tx| {
        let form_key = match (new.client_id, new.form_key) {
            (Some(c), Some(k)) => Some(compound_key(&[&id_key(c), k.as_bytes()])),
            _ => None,
        };
        if let Some(k) = &form_key
            && let Some(id) = tx.get::<u64>(FORM_KEYS, k)?
        {
            return Ok(Accepted::Again(id));
        }
        // Both bounds are checked before either is charged: a refused message costs nothing.
        let hour = match (new.client_id, new.per_hour > 0) {
            (Some(client), true) => {
                let key = compound_key(&[b"hour", &id_key(client), new.hour.as_bytes()]);
                let sent = tx.get::<u64>(META, &key)?.unwrap_or(0);
                if sent >= new.per_hour {
                    return Ok(Accepted::TooMany);
                }
                Some((key, sent + 1))
            }
            _ => None,
        };
        let quota = match (new.client_id, new.charge) {
            (Some(client), true) => {
                let key = quota_key(client, new.month);
                let used = tx.get::<u64>(QUOTA, &key)?.unwrap_or(0);
                if new.limit > 0 && used + parts > new.limit {
                    return Ok(Accepted::OverQuota {
                        left: new.limit.saturating_sub(used),
                    });
                }
                Some((key, used + parts))
            }
            _ => None,
        };
        if let Some((key, sent)) = hour {
            tx.put(META, &key, &sent)?;
        }
        if let Some((key, used)) = quota {
            tx.put(QUOTA, &key, &used)?;
        }
        let id = next_id(tx, b"message")?;
        let sms = Sms {
            id,
            client_id: new.client_id,
            to: new.to.to_string(),
            text: new.text.to_string(),
            encoding: count.encoding,
            parts: count.parts as u32,
            state: State::Queued,
            created: new.now.to_string(),
            updated: new.now.to_string(),
            origin: new.origin.to_string(),
            attempts: 0,
            error: None,
            smsc_ids: Vec::new(),
            delivered_parts: 0,
        };
        tx.put(MESSAGES, &id_key(id), &sms)?;
        tx.put(
            OUTBOX,
            &id_key(id),
            &Pending {
                id,
                next_attempt: new.now.to_string(),
            },
        )?;
        if let Some(client) = new.client_id {
            tx.put(
                CLIENT_MESSAGES,
                &compound_key(&[&id_key(client), &id_key(id)]),
                &id,
            )?;
        }
        if let Some(k) = &form_key {
            tx.put(FORM_KEYS, k, &id)?;
        }
        Ok(Accepted::New(id))
    })
}

pub fn message(ns: &Namespace, id: u64) -> Result<Option<Sms>> {
    ns.get(MESSAGES, &id_key(id))
}

/// A client's messages, newest first.
pub fn messages_of_client(ns: &Namespace, client_id: u64) -> Result<Vec<Sms>> {
    let mut out = Vec::new();
    for (_, id) in ns.scan::<u64>(CLIENT_MESSAGES, &client_prefix(client_id))? {
        if let Some(m) = message(ns, id)? {
            out.push(m);
        }
    }
    out.reverse();
    Ok(out)
}

/// Every message in the outbox, oldest first.
pub fn outbox(ns: &Namespace) -> Result<Vec<(Pending, Option<Sms>)>> {
    ns.scan::<Pending>(OUTBOX, b"")?
        .into_iter()
        .map(|(_, p)| {
            let m = message(ns, p.id)?;
            Ok((p, m))
        })
        .collect()
}

/// Every message, newest first, at most `limit`.
pub fn all_messages(ns: &Namespace, limit: usize) -> Result<Vec<Sms>> {
    let mut all: Vec<Sms> = ns
        .scan::<Sms>(MESSAGES, b"")?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    all.reverse();
    all.truncate(limit);
    Ok(all)
}

// ----- the telephone directory -----

fn contact_key(client_id: u64, id: u64) -> Vec<u8> {
    compound_key(&[&id_key(client_id), &id_key(id)])
}

fn client_prefix(client_id: u64) -> Vec<u8> {
    // The client's id and the separator: keys of that client only.
    compound_key(&[&id_key(client_id), b""])
}

/// A client's contacts, by name.
pub fn contacts(ns: &Namespace, client_id: u64) -> Result<Vec<Contact>> {
    let mut all: Vec<Contact> = ns
        .scan::<Contact>(CONTACTS, &client_prefix(client_id))?
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.client_id == client_id)
        .collect();
    all.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    Ok(all)
}

/// One of the client's contacts; another client's id is `None`.
pub fn contact(ns: &Namespace, client_id: u64, id: u64) -> Result<Option<Contact>> {
    Ok(ns
        .get::<Contact>(CONTACTS, &contact_key(client_id, id))?
        .filter(|c| c.client_id == client_id))
}

#[derive(Debug, PartialEq, Eq)]
pub enum ContactChange {
    Saved(u64),
    NotFound,
    TooMany,
}

/// Adds a contact (`id` None) or changes one of the client's.
pub fn save_contact(
    ns: &Namespace,
    client_id: u64,
    id: Option<u64>,
    name: &str,
    number: &str,
) -> Result<ContactChange> {
    ns.write(|tx| {
        let id = match id {
            Some(id) => {
                let existing: Option<Contact> = tx.get(CONTACTS, &contact_key(client_id, id))?;
                if existing.is_none_or(|c| c.client_id != client_id) {
                    return Ok(ContactChange::NotFound);
                }
                id
            }
            None => {
                let count_key = compound_key(&[b"contacts", &id_key(client_id)]);
                let count = tx.get::<u64>(META, &count_key)?.unwrap_or(0);
                if count as usize >= MAX_CONTACTS {
                    return Ok(ContactChange::TooMany);
                }
                tx.put(META, &count_key, &(count + 1))?;
                next_id(tx, b"contact")?
            }
        };
        tx.put(
            CONTACTS,
            &contact_key(client_id, id),
            &Contact {
                id,
                client_id,
                name: name.to_string(),
                number: number.to_string(),
            },
        )?;
        Ok(ContactChange::Saved(id))
    })
}

/// Deletes one of the client's contacts; false when they have no such contact.
pub fn delete_contact(ns: &Namespace, client_id: u64, id: u64) -> Result<bool> {
    ns.write(|tx| {
        let key = contact_key(client_id, id);
        let existing: Option<Contact> = tx.get(CONTACTS, &key)?;
        if existing.is_none_or(|c| c.client_id != client_id) {
            return Ok(false);
        }
        tx.delete(CONTACTS, &key)?;
        let count_key = compound_key(&[b"contacts", &id_key(client_id)]);
        let count = tx.get::<u64>(META, &count_key)?.unwrap_or(1);
        tx.put(META, &count_key, &count.saturating_sub(1))?;
        Ok(true)
    })
}

// ----- the sender's side of the outbox -----

/// The gateway accepted a message: it leaves the outbox and is `sent`, in one flushed step.
/// False when it was no longer in the outbox (nothing changes then).
pub fn mark_sent(ns: &Namespace, id: u64, now: &str) -> Result<bool> {
    ns.write(|tx| {
        if tx.get::<Pending>(OUTBOX, &id_key(id))?.is_none() {
            return Ok(false);
        }
        let Some(mut sms) = tx.get::<Sms>(MESSAGES, &id_key(id))? else {
            tx.delete(OUTBOX, &id_key(id))?;
            return Ok(false);
        };
        sms.state = State::Sent;
        sms.attempts += 1;
        sms.error = None;
        sms.updated = now.to_string();
        tx.put(MESSAGES, &id_key(id), &sms)?;
        tx.delete(OUTBOX, &id_key(id))?;
        Ok(true)
    })
}

/// The gateway refused a message for good: it leaves the outbox as `failed`, with the reason.
pub fn mark_failed(ns: &Namespace, id: u64, now: &str, reason: &str) -> Result<()> {
    ns.write(|tx| {
        if let Some(mut sms) = tx.get::<Sms>(MESSAGES, &id_key(id))? {
            sms.state = State::Failed;
            sms.attempts += 1;
            sms.error = Some(reason.chars().take(500).collect());
            sms.updated = now.to_string();
            tx.put(MESSAGES, &id_key(id), &sms)?;
        }
        tx.delete(OUTBOX, &id_key(id))?;
        Ok(())
    })
}

/// A passing failure (gateway down, throttled): the message stays queued until `next`.
pub fn retry_later(ns: &Namespace, id: u64, now: &str, next: &str, reason: &str) -> Result<u32> {
    ns.write(|tx| {
        let mut attempts = 0;
        if let Some(mut sms) = tx.get::<Sms>(MESSAGES, &id_key(id))? {
            sms.attempts += 1;
            attempts = sms.attempts;
            sms.error = Some(reason.chars().take(500).collect());
            sms.updated = now.to_string();
            tx.put(MESSAGES, &id_key(id), &sms)?;
        }
        tx.put(
            OUTBOX,
            &id_key(id),
            &Pending {
                id,
                next_attempt: next.to_string(),
            },
        )?;
        Ok(attempts)
    })
}

// ----- the SMPP sender's batched writes -----

/// What became of one message handed to the SMSC (all its parts answered).
pub enum Outcome {
    /// Every part accepted: the SMSC's ids, part by part.
    Sent(Vec<String>),
    /// Some parts accepted (ids so far, "" for the others), the rest to try again at `next`.
    Later {
        ids: Vec<String>,
        next: String,
        reason: String,
    },
    Failed {
        ids: Vec<String>,
        reason: String,
    },
}

/// A delivery receipt: the SMSC's message id, and whether the part was delivered.
pub struct Receipt {
    pub smsc_id: String,
    pub delivered: bool,
    pub stat: String,
}

/// Messages that left the outbox as sent (for after_sms_sent), and receipts for ids nobody
/// knows.
pub struct Applied {
    pub sent: Vec<Sms>,
    pub failed: Vec<Sms>,
    pub unknown_receipts: usize,
}

/// Applies a batch of the SMSC's answers and receipts in one flushed transaction, in order:
/// the outcomes first (so a receipt read right after its submit_sm_resp finds its message).
pub fn apply_smpp(
    ns: &Namespace,
    outcomes: &[(u64, Outcome)],
    receipts: &[Receipt],
    now: &str,
) -> Result<Applied> {
    ns.write(|tx| {
        let mut applied = Applied {
            sent: Vec::new(),
            failed: Vec::new(),
            unknown_receipts: 0,
        };
        for (id, outcome) in outcomes {
            let key = id_key(*id);
            if tx.get::<Pending>(OUTBOX, &key)?.is_none() {
                continue;
            }
            let Some(mut sms) = tx.get::<Sms>(MESSAGES, &key)? else {
                tx.delete(OUTBOX, &key)?;
                continue;
            };
            sms.attempts += 1;
            sms.updated = now.to_string();
            let ids = match outcome {
                Outcome::Sent(ids) => {
                    sms.state = State::Sent;
                    sms.error = None;
                    tx.delete(OUTBOX, &key)?;
                    ids
                }
                Outcome::Later { ids, next, reason } => {
                    sms.error = Some(reason.chars().take(500).collect());
                    tx.put(
                        OUTBOX,
                        &key,
                        &Pending {
                            id: *id,
                            next_attempt: next.clone(),
                        },
                    )?;
                    ids
                }
                Outcome::Failed { ids, reason } => {
                    sms.state = State::Failed;
                    sms.error = Some(reason.chars().take(500).collect());
                    tx.delete(OUTBOX, &key)?;
                    ids
                }
            };
            for (part, smsc_id) in ids.iter().enumerate() {
                if !smsc_id.is_empty() {
                    tx.put(SMSC_IDS, smsc_id.as_bytes(), &(*id, part as u32))?;
                }
            }
            sms.smsc_ids = ids.clone();
            tx.put(MESSAGES, &key, &sms)?;
            match sms.state {
                State::Sent => applied.sent.push(sms),
                State::Failed => applied.failed.push(sms),
                _ => {}
            }
        }
        for r in receipts {
            let Some((id, _part)) = tx.get::<(u64, u32)>(SMSC_IDS, r.smsc_id.as_bytes())? else {
                applied.unknown_receipts += 1;
                continue;
            };
            let key = id_key(id);
            let Some(mut sms) = tx.get::<Sms>(MESSAGES, &key)? else {
                continue;
            };
            // A receipt is final: its entry goes, so a repeated receipt changes nothing.
            tx.delete(SMSC_IDS, r.smsc_id.as_bytes())?;
            if r.delivered {
                sms.delivered_parts += 1;
                if sms.delivered_parts >= sms.parts && sms.state == State::Sent {
                    sms.state = State::Delivered;
                }
            } else if sms.state != State::Failed {
                sms.state = State::Failed;
                sms.error = Some(format!("delivery receipt: {}", r.stat));
            }
            sms.updated = now.to_string();
            tx.put(MESSAGES, &key, &sms)?;
        }
        Ok(applied)
    })
}
