//! "Download my data": everything the portal holds about the logged-in client, as JSON and as
//! a readable page. Only the client's own data (the page's client-scoped views) and no secret:
//! the plugin API gives no credential, session or token to begin with.
//!
//! Other plugins add their own sections by handling the `gdpr_export` hook; the sections named
//! in [`OWN`] are this plugin's and cannot be replaced by a handler.

use portico_core::Error;
use portico_core::plugin::{ClientView, Page, show_time_seconds};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::{EXPORT_HOOK, consent, tasks};

/// The sections this plugin fills, in the order the readable page shows them.
pub const OWN: &[&str] = &[
    "personal_data",
    "services",
    "invoices",
    "payments",
    "messages",
    "documents",
    "data_change",
    "consents",
    "consent_history",
    "requests",
    "account_events",
];

/// Field names the readable page shows translated (`gdpr-field-…`); others as they are.
const FIELDS: &[&str] = &[
    "id",
    "number",
    "username",
    "name",
    "company",
    "mailing_address",
    "invoicing_address",
    "email",
    "phone",
    "mobile",
    "invoice_group_id",
    "language",
    "street",
    "city",
    "zip",
    "country",
    "service",
    "tariff",
    "client_id",
    "kind",
    "tariff_id",
    "ip_address",
    "dhcp",
    "active",
    "since",
    "download_kbps",
    "upload_kbps",
    "price",
    "fup_limits",
    "data_gb",
    "hide_traffic_in_portal",
    "issued",
    "due",
    "amount",
    "paid",
    "date",
    "method",
    "reference",
    "addressed_to",
    "subject",
    "body",
    "valid_from",
    "valid_until",
    "document",
    "title",
    "required",
    "retired",
    "current_version",
    "state",
    "choice",
    "at",
    "version",
    "lang",
    "text_sha256",
    "action",
    "parts",
    "source_addr",
    "user_agent",
    "actor",
    "created",
    "client_number",
    "client_name",
    "note",
    "done",
    "login",
    "detail",
    "shown_in_portal",
    "requested",
    "status",
    "changes",
    "decided",
    "reason",
];

/// Most audit events of the account an export lists (newest first).
const MAX_EVENTS: usize = 10_000;

fn to_value<T: Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The export as JSON: `exported_at`, `client_number` and `sections`.
pub fn collect(page: &Page<'_>) -> Result<Value, Error> {
    let data = page.data();
    let client = page.client();
    let ns = page.store();
    let mut sections = Map::new();
    sections.insert("personal_data".into(), to_value(client)?);
    sections.insert("services".into(), to_value(&data.services()?)?);
    sections.insert("invoices".into(), to_value(&data.invoices()?)?);
    sections.insert("payments".into(), to_value(&data.payments()?)?);
    let messages: Vec<Value> = data
        .messages()?
        .into_iter()
        .map(|m| {
            let to = match (m.client_id, m.invoice_group_id) {
                (Some(_), _) => "you",
                (None, Some(_)) => "your invoice group",
                (None, None) => "every client",
            };
            json!({
                "id": m.id,
                "addressed_to": to,
                "subject": m.subject,
                "body": m.body,
                "valid_from": m.valid_from,
                "valid_until": m.valid_until,
            })
        })
        .collect();
    sections.insert("messages".into(), Value::Array(messages));
    sections.insert("documents".into(), to_value(&data.documents()?)?);
    if let Some(change) = data.data_change()? {
        sections.insert("data_change".into(), to_value(&change)?);
    }
    let history = consent::history(&ns, client.id)?;
    let latest = consent::latest_by_doc(&ns, client.id)?;
    let consents: Vec<Value> = consent::all_docs(&ns)?
        .into_iter()
        .filter(|d| {
            d.applies_to(client.invoice_group_id) || latest.iter().any(|(id, _)| *id == d.id)
        })
        .map(|d| {
            let last = latest.iter().find(|(id, _)| *id == d.id).map(|(_, r)| r);
            json!({
                "document": d.id,
                "title": d.shown(page.lang()).title,
                "required": d.required,
                "retired": d.retired,
                "current_version": d.current().number,
                "state": consent::state_of(&d, last),
                "choice": last.map(|r| r.choice.clone()).unwrap_or_default(),
            })
        })
        .collect();
    sections.insert("consents".into(), Value::Array(consents));
    sections.insert("consent_history".into(), to_value(&history)?);
    sections.insert(
        "requests".into(),
        to_value(&tasks::of_client(&ns, client.id)?)?,
    );
    let events: Vec<Value> = data
        .audit_events(MAX_EVENTS)?
        .into_iter()
        .map(|e| {
            let at = chrono::DateTime::from_timestamp(e.at, 0).map(portico_core::plugin::stamp);
            json!({
                "at": at,
                "kind": e.kind,
                "login": e.login,
                "source_addr": e.source,
                "detail": e.detail,
            })
        })
        .collect();
    sections.insert("account_events".into(), Value::Array(events));
    // Other plugins add what they hold; they cannot replace this plugin's sections.
    let mut event = json!({
        "client": ClientView::from(client),
        "sections": {},
    });
    if page.run_hook(EXPORT_HOOK, &mut event).is_ok()
        && let Some(Value::Object(added)) = event.get_mut("sections").map(Value::take)
    {
        for (name, value) in added {
            if !sections.contains_key(&name) {
                sections.insert(name, value);
            }
        }
    }
    Ok(json!({
        "exported_at": page.now_stamp(),
        "client_number": client.number,
        "sections": sections,
    }))
}

#[derive(Serialize)]
pub struct Field {
    name: String,
    value: String,
}

#[derive(Serialize)]
pub struct Section {
    id: String,
    title: String,
    items: Vec<Vec<Field>>,
}

#[derive(Serialize)]
pub struct ReadableView {
    exported_at: String,
    sections: Vec<Section>,
}

/// The export as sections of items, each a list of named values, for the HTML page.
pub fn readable(page: &Page<'_>, data: &Value) -> ReadableView {
    let empty = Map::new();
    let sections = data["sections"].as_object().unwrap_or(&empty);
    let mut names: Vec<&str> = OWN.to_vec();
    names.extend(
        sections
            .keys()
            .map(String::as_str)
            .filter(|k| !OWN.contains(k)),
    );
    let sections = names
        .into_iter()
        .filter_map(|name| sections.get(name).map(|v| (name, v)))
        .map(|(name, value)| {
            let items = match value {
                Value::Array(items) => items.iter().map(|v| fields(page, v)).collect(),
                other => vec![fields(page, other)],
            };
            Section {
                id: name.to_string(),
                title: if OWN.contains(&name) {
                    page.t(&format!("gdpr-section-{}", name.replace('_', "-")))
                } else {
                    name.replace('_', " ")
                },
                items,
            }
        })
        .collect();
    ReadableView {
        exported_at: show_time_seconds(page.lang(), data["exported_at"].as_str().unwrap_or("")),
        sections,
    }
}

fn fields(page: &Page<'_>, value: &Value) -> Vec<Field> {
    let mut out = Vec::new();
    flatten(page, "", value, &mut out);
    out
}

/// A field's name in the page's language.
fn label(page: &Page<'_>, key: &str) -> String {
    if FIELDS.contains(&key) {
        page.t(&format!("gdpr-field-{}", key.replace('_', "-")))
    } else {
        key.replace('_', " ")
    }
}

fn flatten(page: &Page<'_>, name: &str, value: &Value, out: &mut Vec<Field>) {
    let join = |key: &str| {
        let key = label(page, key);
        if name.is_empty() {
            key
        } else {
            format!("{name}, {key}")
        }
    };
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                flatten(page, &join(k), v, out);
            }
        }
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            if !items.is_empty() {
                out.push(Field {
                    name: name.to_string(),
                    value: items
                        .iter()
                        .map(|v| scalar(page, v))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(page, &format!("{name} {}", i + 1), v, out);
            }
        }
        other => out.push(Field {
            name: if name.is_empty() {
                "value".into()
            } else {
                name.to_string()
            },
            value: scalar(page, other),
        }),
    }
}

fn scalar(page: &Page<'_>, v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => page.t("gdpr-yes"),
        Value::Bool(false) => page.t("gdpr-no"),
        other => other.to_string(),
    }
}
