//! Operator actions. The CLI runs them directly on a data folder, or, when a portal is running
//! on that folder (sled allows one process), sends them over the control socket to be run here
//! by the server. Either way the same code does the work.

use serde::{Deserialize, Serialize};

use crate::auth;
use crate::error::{Error, Result};
use crate::hooks::{ImportEvent, SettingChangeEvent};
use crate::import;
use crate::model::Client;
use crate::portal::Portal;
use crate::settings::Scope;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpRequest {
    SettingsList,
    SettingsGet {
        key: String,
        group: Option<u64>,
    },
    SettingsSet {
        key: String,
        group: Option<u64>,
        value: String,
    },
    SettingsUnset {
        key: String,
        group: Option<u64>,
    },
    Import {
        json: String,
    },
    SetPassword {
        client: String,
        password: String,
    },
    Maintenance {
        on: bool,
    },
}

/// What the operator is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpReply {
    pub ok: bool,
    pub text: String,
}

pub fn execute(portal: &Portal, req: OpRequest) -> Result<String> {
    match req {
        OpRequest::SettingsList => Ok(settings_list(portal)),
        OpRequest::SettingsGet { key, group } => {
            let def = portal.settings.definition(&key)?;
            let v = portal.settings.value(def.key, group);
            let source = if portal.settings.is_set(def.key, group) {
                match group {
                    Some(g) => format!("set for invoice group {g}"),
                    None => "set".to_string(),
                }
            } else if group.is_some() && portal.settings.is_set(def.key, None) {
                "global value".to_string()
            } else {
                "default".to_string()
            };
            Ok(format!("{} = {}  ({source})", def.key, show(&v)))
        }
        OpRequest::SettingsSet { key, group, value } => {
            let def = portal.settings.definition(&key)?;
            let mut ev = SettingChangeEvent {
                key: def.key.to_string(),
                invoice_group_id: group,
                raw_value: value,
            };
            portal
                .registry
                .hooks
                .setting_change
                .run_before(&mut ev)
                .map_err(|v| Error::Invalid(v.message))?;
            let v = portal.settings.set(&ev.key, group, &ev.raw_value)?;
            portal.registry.hooks.setting_change.run_after(&ev);
            let scope = group.map_or(String::new(), |g| format!(" for invoice group {g}"));
            Ok(format!("{} = {}{scope}", ev.key, show(&v)))
        }
        OpRequest::SettingsUnset { key, group } => {
            let def = portal.settings.definition(&key)?;
            portal.settings.unset(def.key, group)?;
            Ok(format!(
                "{} is back to {}",
                def.key,
                show(&portal.settings.value(def.key, group))
            ))
        }
        OpRequest::Import { json } => run_import(portal, &json, &mut |_, _| {}),
        OpRequest::SetPassword { client, password } => set_password(portal, &client, &password),
        OpRequest::Maintenance { on } => {
            portal
                .settings
                .set("maintenance_mode", None, if on { "on" } else { "off" })?;
            Ok(format!(
                "maintenance mode is {}",
                if on { "on" } else { "off" }
            ))
        }
    }
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if s.is_empty() => "\"\" (empty)".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn settings_list(portal: &Portal) -> String {
    let mut out = String::new();
    for d in portal.settings.definitions() {
        let v = portal.settings.value(d.key, None);
        let scope = match d.scope {
            Scope::Global => "global",
            Scope::InvoiceGroup => "per invoice group",
        };
        out.push_str(&format!(
            "{} = {}\n    {} [{:?}, {scope}, default {}, from {}]\n",
            d.key,
            show(&v),
            d.description,
            d.ty,
            show(&d.default),
            d.owner
        ));
        for (g, v) in portal.settings.group_overrides(d.key) {
            out.push_str(&format!("    invoice group {g}: {}\n", show(&v)));
        }
    }
    out
}

pub fn run_import(
    portal: &Portal,
    json: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<String> {
    let started = std::time::Instant::now();
    let bundle = import::check(&portal.store, json)?;
    let mut ev = ImportEvent {
        records: bundle.len(),
    };
    portal
        .registry
        .hooks
        .import
        .run_before(&mut ev)
        .map_err(|v| Error::Invalid(v.message))?;
    let report = import::write(&portal.store, &bundle, progress)?;
    portal.registry.hooks.import.run_after(&ev);
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "imported {} records in {:.2} s ({:.0} records/s): {report}",
        report.total(),
        secs,
        report.total() as f64 / secs.max(1e-9)
    ))
}

/// Finds a client by number, login name or `#id`.
pub fn find_client(portal: &Portal, who: &str) -> Result<Client> {
    let who = who.trim();
    if let Some(id) = who.strip_prefix('#').and_then(|s| s.parse::<u64>().ok())
        && let Some(c) = portal.store.get_id::<Client>(id)?
    {
        return Ok(c);
    }
    if let Some(c) = portal.store.client_by_number(who)? {
        return Ok(c);
    }
    if let Some(c) = portal.store.client_by_username(who)? {
        return Ok(c);
    }
    Err(Error::Invalid(format!(
        "no client with number or login name `{who}` (use #ID for an internal id)"
    )))
}

pub const MIN_PASSWORD_LEN: usize = 8;

pub fn set_password(portal: &Portal, who: &str, password: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    let hash = auth::hash_password(password)?;
    auth::set_password(&portal.store, client.id, hash, portal.clock.unix())?;
    Ok(format!(
        "password set for client {} ({})",
        client.number, client.name
    ))
}
