//! Clients change their own contact data (`ci_enable_client_data_change`): mailing and
//! invoicing address, e-mail, phone and mobile. Every change is checked field by field, passes
//! the `before_client_data_change` hook (which may refuse it or amend the values), and is
//! audited with the old and new values. With `ci_client_data_change_approval` on, it waits as
//! the client's one pending change until an operator approves or rejects it (`portico changes
//! list|approve ID|reject ID [--reason TEXT]`); a new request replaces the pending one.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::audit::{Audit, AuditKind};
use crate::error::{Error, Result};
use crate::hooks::{ClientView, Veto};
use crate::model::{Address, Client};
use crate::portal::Portal;
use crate::store::{Record, WriteTx, id_key};

/// The hook that may refuse or amend a change.
pub const HOOK: &str = "before_client_data_change";
/// Whether clients may change their data.
pub const SETTING: &str = "ci_enable_client_data_change";
/// Whether their changes wait for an operator.
pub const APPROVAL: &str = "ci_client_data_change_approval";

/// Longest values, in characters.
pub const MAX_STREET: usize = 100;
pub const MAX_CITY: usize = 60;
pub const MAX_ZIP: usize = 10;
pub const MAX_COUNTRY: usize = 60;
pub const MAX_EMAIL: usize = 254;
pub const MAX_PHONE: usize = 20;
/// Longest rejection reason, in characters.
pub const MAX_REASON: usize = 500;
/// Changes a client may submit in an hour (each is stored and audited).
pub const MAX_PER_HOUR: u32 = 20;
/// How long the outcome of a decided change stays on the client's Information tab.
pub const OUTCOME_SHOWN_DAYS: i64 = 30;
/// Longest audit detail, in characters (each value is cut at 120 first).
const MAX_DETAIL: usize = 2000;

/// The changed fields and their new values: what the hook's `changes` holds. An absent field
/// is unchanged; `invoicing_address: null` means "the same as the mailing address"; an empty
/// e-mail, phone or mobile removes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailing_address: Option<Address>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub invoicing_address: Option<Option<Address>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
}

/// A field that is present, `null` included.
fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<Address>>, D::Error> {
    Option::<Address>::deserialize(d).map(Some)
}

/// The field names of [`Changes`], as the hook sees them.
pub const FIELDS: [&str; 5] = [
    "mailing_address",
    "invoicing_address",
    "email",
    "phone",
    "mobile",
];

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// What differs between the client as stored and the values wanted (all of them).
    pub fn between(client: &Client, wanted: &Changes) -> Changes {
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        let invoicing_now = client.invoicing_address.clone().filter(|a| !a.is_empty());
        Changes {
            mailing_address: wanted
                .mailing_address
                .clone()
                .filter(|a| *a != client.mailing_address),
            invoicing_address: wanted
                .invoicing_address
                .clone()
                .map(|a| a.filter(|a| !a.is_empty()))
                .filter(|a| *a != invoicing_now),
            email: wanted.email.clone().filter(|e| *e != opt(&client.email)),
            phone: wanted.phone.clone().filter(|e| *e != opt(&client.phone)),
            mobile: wanted.mobile.clone().filter(|e| *e != opt(&client.mobile)),
        }
    }

    /// Writes the changes into a client.
    pub fn apply(&self, c: &mut Client) {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(a) = &self.mailing_address {
            c.mailing_address = a.clone();
        }
        if let Some(a) = &self.invoicing_address {
            c.invoicing_address = a.clone();
        }
        if let Some(e) = &self.email {
            c.email = some(e);
        }
        if let Some(p) = &self.phone {
            c.phone = some(p);
        }
        if let Some(m) = &self.mobile {
            c.mobile = some(m);
        }
    }

    /// Trims every value (what a form or a script gives may have spaces around it).
    pub fn trimmed(mut self) -> Changes {
        let trim_addr = |a: &mut Address| {
            for f in [&mut a.street, &mut a.city, &mut a.zip, &mut a.country] {
                *f = f.trim().to_string();
            }
        };
        if let Some(a) = &mut self.mailing_address {
            trim_addr(a);
        }
        if let Some(Some(a)) = &mut self.invoicing_address {
            trim_addr(a);
        }
        for v in [&mut self.email, &mut self.phone, &mut self.mobile]
            .into_iter()
            .flatten()
        {
            *v = v.trim().to_string();
        }
        self
    }
}

/// A problem with one form field: the field (`mailing_street`, `email`, …), the message id,
/// and the limit the message names (for "at most N characters").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: &'static str,
    pub max: usize,
}

/// A format check of a value, and the message when it fails.
type Format = Option<(fn(&str) -> bool, &'static str)>;

/// Checks each changed value; returns every problem (none: the change may be stored).
pub fn validate(c: &Changes) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // The first problem of a value: control characters, length, emptiness, then its format.
    let mut check = |field: String, value: &str, max: usize, required: bool, format: Format| {
        let message = if value.chars().any(char::is_control) {
            Some("dc-error-control")
        } else if value.chars().count() > max {
            Some("dc-error-too-long")
        } else if value.is_empty() {
            required.then_some("dc-error-required")
        } else {
            format.and_then(|(ok, message)| (!ok(value)).then_some(message))
        };
        if let Some(message) = message {
            errors.push(FieldError {
                field,
                message,
                max: if message == "dc-error-too-long" {
                    max
                } else {
                    0
                },
            });
        }
    };
    let zip: Format = Some((is_zip, "dc-error-zip"));
    for (prefix, address) in [
        ("mailing", c.mailing_address.as_ref()),
        (
            "invoicing",
            c.invoicing_address.as_ref().and_then(Option::as_ref),
        ),
    ] {
        if let Some(a) = address {
            check(
                format!("{prefix}_street"),
                &a.street,
                MAX_STREET,
                true,
                None,
            );
            check(format!("{prefix}_city"), &a.city, MAX_CITY, true, None);
            check(format!("{prefix}_zip"), &a.zip, MAX_ZIP, true, zip);
            check(
                format!("{prefix}_country"),
                &a.country,
                MAX_COUNTRY,
                false,
                None,
            );
        }
    }
    if let Some(e) = &c.email {
        check(
            "email".into(),
            e,
            MAX_EMAIL,
            false,
            Some((crate::settings::is_email, "dc-error-email")),
        );
    }
    for (field, value) in [("phone", &c.phone), ("mobile", &c.mobile)] {
        if let Some(v) = value {
            check(
                field.into(),
                v,
                MAX_PHONE,
                false,
                Some((is_phone, "dc-error-phone")),
            );
        }
    }
    errors
}

/// A postcode: letters, digits, spaces and dashes.
pub fn is_zip(s: &str) -> bool {
    s.chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == ' ' || ch == '-')
}

/// A phone number: an optional `+`, then digits with single spaces, dashes or dots between
/// them, 6 to 15 digits (E.164 allows at most 15).
pub fn is_phone(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let mut prev_sep = true;
    for ch in body.chars() {
        match ch {
            '0'..='9' => prev_sep = false,
            ' ' | '-' | '.' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep && (6..=15).contains(&digits)
}

/// The hook's event: the client and the changed fields with their new values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataChangeEvent {
    pub client: ClientView,
    pub changes: Map<String, Value>,
}

/// What became of a submitted change.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing differs from the data as stored (a second submit of the same form).
    Unchanged,
    /// Stored.
    Applied(Box<Client>),
    /// Waits for an operator, as pending change `id` (the same id when it replaced a pending
    /// change with the same values).
    Pending(u64),
    /// A hook refused it.
    Vetoed(Veto),
    /// The values, as a hook amended them, have problems.
    Invalid(Vec<FieldError>),
}

/// A change waiting for approval, or the last one decided: one per client, kept under the
/// client's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingChange {
    /// Time-ordered, never repeated: what `portico changes approve ID` names.
    pub id: u64,
    pub client_id: u64,
    pub changes: Changes,
    /// Unix seconds.
    pub requested: i64,
    pub status: ChangeStatus,
    /// When it was decided (Unix seconds).
    #[serde(default)]
    pub decided: Option<i64>,
    /// Why it was rejected.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Pending,
    Approved,
    Rejected,
}

impl Record for PendingChange {
    const TREE: &'static str = "clientdatachanges";
    fn key(&self) -> Vec<u8> {
        id_key(self.client_id)
    }
}

/// A client's pending change or last decided one.
pub fn of_client(portal: &Portal, client_id: u64) -> Result<Option<PendingChange>> {
    portal.store.get::<PendingChange>(&id_key(client_id))
}

/// Runs the hook on the changes; returns them as the handlers left them (only the fields a
/// client may change, trimmed), or the veto, or the problems of the amended values.
fn through_hook(
    portal: &Portal,
    client: &Client,
    changes: Changes,
) -> Result<std::result::Result<Changes, Outcome>> {
    let hooks = &portal.registry.hooks;
    if !hooks.is_handled(HOOK) {
        return Ok(Ok(changes));
    }
    let map = match serde_json::to_value(&changes).map_err(|e| Error::Internal(e.to_string()))? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut event = DataChangeEvent {
        client: ClientView::from(client),
        changes: map,
    };
    if let Err(veto) = hooks.run(HOOK, &mut event) {
        return Ok(Err(Outcome::Vetoed(veto)));
    }
    // Only the fields a client may change; anything else a handler added is ignored.
    let mut known = Map::new();
    for (k, v) in event.changes {
        if FIELDS.contains(&k.as_str()) {
            known.insert(k, v);
        } else {
            tracing::warn!(
                hook = HOOK,
                field = %crate::text::escape(&k.chars().take(64).collect::<String>()),
                "a handler added a field clients cannot change; ignored"
            );
        }
    }
    let amended = match serde_json::from_value::<Changes>(Value::Object(known)) {
        Ok(c) => c.trimmed(),
        Err(e) => {
            return Err(Error::Internal(format!(
                "{HOOK}: a handler left changes that cannot be read: {e}"
            )));
        }
    };
    let problems = validate(&amended);
    if !problems.is_empty() {
        return Ok(Err(Outcome::Invalid(problems)));
    }
    Ok(Ok(amended))
}

/// A client submits their contact data (`wanted`: the form's fields, checked with
/// [`validate`] by the caller). Runs the hook on what differs, then stores the change (with
/// `approval`, the pending change) and its audit event in one flushed transaction.
pub fn submit(
    portal: &Portal,
    client: &Client,
    wanted: Changes,
    approval: bool,
    source: Option<&str>,
) -> Result<Outcome> {
    let diff = Changes::between(client, &wanted.trimmed());
    if approval
        && let Some(p) = of_client(portal, client.id)?
        && p.status == ChangeStatus::Pending
        && p.changes == diff
    {
        return Ok(Outcome::Pending(p.id));
    }
    if diff.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    let amended = match through_hook(portal, client, diff)? {
        Ok(c) => Changes::between(client, &c),
        Err(outcome) => return Ok(outcome),
    };
    if amended.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    let (id, now) = (portal.next_id(), portal.clock.unix());
    portal.store.write(|tx| {
        let Some(mut stored) = tx.get::<Client>(&id_key(client.id))? else {
            return Err(Error::NotFound(format!("client {}", client.id)));
        };
        let existing = tx.get::<PendingChange>(&id_key(client.id))?;
        if approval {
            if let Some(p) = &existing
                && p.status == ChangeStatus::Pending
                && p.changes == amended
            {
                return Ok(Outcome::Pending(p.id));
            }
            let replaced = existing
                .filter(|p| p.status == ChangeStatus::Pending)
                .map(|p| format!(" (replaces pending change {})", p.id))
                .unwrap_or_default();
            let detail = format!("change {id}{replaced}: {}", describe(&stored, &amended));
            tx.put(&PendingChange {
                id,
                client_id: client.id,
                changes: amended,
                requested: now,
                status: ChangeStatus::Pending,
                decided: None,
                reason: None,
            })?;
            crate::audit::record_in(
                tx,
                portal.next_id(),
                now,
                Audit {
                    client_id: Some(client.id),
                    source,
                    detail: Some(detail),
                    ..Audit::new(AuditKind::ClientDataChangeRequested)
                },
            )?;
            return Ok(Outcome::Pending(id));
        }
        let detail = describe(&stored, &amended);
        amended.apply(&mut stored);
        tx.put(&stored)?;
        // A change made directly supersedes one still waiting (approval was turned off).
        if existing.is_some_and(|p| p.status == ChangeStatus::Pending) {
            tx.delete::<PendingChange>(&id_key(client.id))?;
        }
        crate::audit::record_in(
            tx,
            id,
            now,
            Audit {
                client_id: Some(client.id),
                source,
                detail: Some(detail),
                ..Audit::new(AuditKind::ClientDataChanged)
            },
        )?;
        Ok(Outcome::Applied(Box::new(stored)))
    })
}

/// The pending change with this id, as it stands in the transaction.
fn pending_in(tx: &WriteTx<'_>, id: u64) -> Result<PendingChange> {
    tx.scan_records::<PendingChange>()?
        .into_iter()
        .find(|p| p.id == id && p.status == ChangeStatus::Pending)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "change {id}: no such pending change (`portico changes list` lists them)"
            ))
        })
}

/// `portico changes approve ID`: checks the values again and applies them to the client as
/// stored now, marks the change approved and audits it, all in one transaction: of two
/// approvals of one change, one applies it and the other is told it is no longer pending.
pub fn approve(portal: &Portal, id: u64) -> Result<String> {
    let (event_id, now) = (portal.next_id(), portal.clock.unix());
    portal.store.write(|tx| {
        let mut p = pending_in(tx, id)?;
        let problems = validate(&p.changes);
        if let Some(first) = problems.first() {
            return Err(Error::Invalid(format!(
                "change {id} cannot be applied: {}: {}; reject it",
                first.field,
                portal
                    .i18n
                    .text("en", first.message, &[("max", first.max.to_string())])
            )));
        }
        let Some(mut client) = tx.get::<Client>(&id_key(p.client_id))? else {
            return Err(Error::NotFound(format!("client {}", p.client_id)));
        };
        let changes = Changes::between(&client, &p.changes);
        let detail = format!("change {id} approved: {}", describe(&client, &changes));
        changes.apply(&mut client);
        tx.put(&client)?;
        p.status = ChangeStatus::Approved;
        p.decided = Some(now);
        tx.put(&p)?;
        crate::audit::record_in(
            tx,
            event_id,
            now,
            Audit {
                client_id: Some(client.id),
                detail: Some(detail),
                ..Audit::new(AuditKind::ClientDataChanged)
            },
        )?;
        Ok(format!(
            "change {id} of client {} approved and applied{}",
            crate::text::escape(&client.number),
            if changes.is_empty() {
                " (the data already held these values)"
            } else {
                ""
            }
        ))
    })
}

/// `portico changes reject ID [--reason TEXT]`: the client sees the reason.
pub fn reject(portal: &Portal, id: u64, reason: Option<String>) -> Result<String> {
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason {
        if r.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "--reason: one line, without control characters".into(),
            ));
        }
        if r.chars().count() > MAX_REASON {
            return Err(Error::Invalid(format!(
                "--reason: longer than {MAX_REASON} characters"
            )));
        }
    }
    let (event_id, now) = (portal.next_id(), portal.clock.unix());
    portal.store.write(|tx| {
        let mut p = pending_in(tx, id)?;
        let client = tx.get::<Client>(&id_key(p.client_id))?;
        let asked = client
            .as_ref()
            .map(|c| describe(c, &p.changes))
            .unwrap_or_default();
        p.status = ChangeStatus::Rejected;
        p.decided = Some(now);
        p.reason = reason.clone();
        tx.put(&p)?;
        let why = reason
            .as_deref()
            .map(|r| format!(" ({})", crate::text::escape(r)))
            .unwrap_or_default();
        crate::audit::record_in(
            tx,
            event_id,
            now,
            Audit {
                client_id: Some(p.client_id),
                detail: Some(format!("change {id} rejected{why}: {asked}")),
                ..Audit::new(AuditKind::ClientDataChangeRejected)
            },
        )?;
        Ok(format!(
            "change {id} of client {} rejected{}",
            client.map_or_else(
                || p.client_id.to_string(),
                |c| crate::text::escape(&c.number).into_owned()
            ),
            if reason.is_some() {
                "; the client sees your reason"
            } else {
                ""
            }
        ))
    })
}

/// `portico changes list`: the changes waiting for approval, oldest first.
pub fn list(portal: &Portal) -> Result<String> {
    let mut pending: Vec<PendingChange> = portal
        .store
        .all::<PendingChange>()?
        .into_iter()
        .filter(|p| p.status == ChangeStatus::Pending)
        .collect();
    if pending.is_empty() {
        return Ok("no changes wait for approval".into());
    }
    pending.sort_by_key(|p| p.id);
    let mut out = String::new();
    for p in pending {
        let Some(client) = portal.store.get_id::<Client>(p.client_id)? else {
            continue;
        };
        let when = chrono::DateTime::from_timestamp(p.requested, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  client {} ({})  requested {when}\n    {}\n",
            p.id,
            crate::text::escape(&client.number),
            crate::text::escape(&client.name),
            describe(&client, &p.changes)
        ));
    }
    Ok(out)
}

/// "email: \"a@x\" → \"b@x\"; phone: …", each value cut at 120 characters, the whole at
/// [`MAX_DETAIL`], control characters escaped.
pub fn describe(before: &Client, changes: &Changes) -> String {
    let cut = |s: &str| {
        let mut v: String = s.chars().take(120).collect();
        if v.len() < s.len() {
            v.push('…');
        }
        format!("\"{}\"", crate::text::escape(&v))
    };
    let addr = |a: &Option<Address>| match a.as_ref().filter(|a| !a.is_empty()) {
        Some(a) => cut(&[
            a.street.as_str(),
            a.zip.as_str(),
            a.city.as_str(),
            a.country.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")),
        None => "(none)".into(),
    };
    let text = |s: &Option<String>| cut(s.as_deref().unwrap_or(""));
    let mut parts = Vec::new();
    if let Some(a) = &changes.mailing_address {
        parts.push(format!(
            "mailing_address: {} → {}",
            addr(&Some(before.mailing_address.clone())),
            addr(&Some(a.clone()))
        ));
    }
    if let Some(a) = &changes.invoicing_address {
        parts.push(format!(
            "invoicing_address: {} → {}",
            addr(&before.invoicing_address),
            addr(a)
        ));
    }
    for (name, old, new) in [
        ("email", &before.email, &changes.email),
        ("phone", &before.phone, &changes.phone),
        ("mobile", &before.mobile, &changes.mobile),
    ] {
        if let Some(n) = new {
            parts.push(format!("{name}: {} → {}", text(old), cut(n)));
        }
    }
    let all = parts.join("; ");
    let mut out: String = all.chars().take(MAX_DETAIL).collect();
    if out.len() < all.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        for ok in [
            "+420 777 123 456",
            "777123456",
            "00420 608-111-222",
            "+1.555.123.4567",
        ] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in [
            "",
            "+",
            "12345",
            "777  123 456",
            "777 123 456 ",
            "+420 (777) 123",
            "1234567890123456",
            "call me",
            "777\n123",
        ] {
            assert!(!is_phone(bad), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let c = Changes {
            mailing_address: Some(Address {
                street: String::new(),
                city: "x".repeat(61),
                zip: "6<2".into(),
                country: "CZ".into(),
            }),
            invoicing_address: Some(None),
            email: Some("nope".into()),
            phone: Some(String::new()),
            mobile: Some("1\t2".into()),
        };
        let got: Vec<(String, &str, usize)> = validate(&c)
            .into_iter()
            .map(|e| (e.field, e.message, e.max))
            .collect();
        assert_eq!(
            got,
            [
                ("mailing_street".to_string(), "dc-error-required", 0),
                ("mailing_city".to_string(), "dc-error-too-long", 60),
                ("mailing_zip".to_string(), "dc-error-zip", 0),
                ("email".to_string(), "dc-error-email", 0),
                ("mobile".to_string(), "dc-error-control", 0),
            ]
        );
    }

    #[test]
    fn the_audit_detail_is_bounded() {
        let client: Client = serde_json::from_value(serde_json::json!({
            "id": 1, "number": "1", "name": "A", "invoice_group_id": 1, "email": "a@x.example"
        }))
        .expect("client");
        let long = Changes {
            email: Some(format!("{}@x.example", "a".repeat(5000))),
            phone: Some("\u{1b}[31m".into()),
            ..Changes::default()
        };
        let d = describe(&client, &long);
        assert!(d.chars().count() <= MAX_DETAIL + 1, "{}", d.len());
        assert!(d.contains("email: \"a@x.example\" → \"aaaa"), "{d}");
        assert!(!d.contains('\u{1b}'), "{d}");
    }
}
