//! Typed settings with defaults, descriptions and scope, declared by core and by plugins.
//! Keys keep the names ISP operators know from ISPadmin. A per-invoice-group setting may be
//! overridden for one group; otherwise the global value (or the default) applies.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{SEP, Store};

pub const TREE: &str = "settings";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingType {
    Bool,
    /// A whole number within the bounds.
    Int {
        min: i64,
        max: i64,
    },
    Text,
    /// Empty, or an absolute http(s) URL.
    Url,
    /// Empty, or an e-mail address.
    Email,
    /// E-mail addresses separated by commas or semicolons; empty for none.
    Emails,
    /// Web origins (`scheme://host[:port]`), separated by spaces or commas; empty for none.
    Origins,
    /// One of the listed words.
    Choice(&'static [&'static str]),
}

impl std::fmt::Display for SettingType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingType::Bool => write!(f, "yes/no"),
            SettingType::Int { min, max } => write!(f, "whole number {min}..{max}"),
            SettingType::Text => write!(f, "text"),
            SettingType::Url => write!(f, "http(s) URL or empty"),
            SettingType::Email => write!(f, "e-mail address or empty"),
            SettingType::Emails => write!(f, "e-mail addresses (separated by , or ;) or empty"),
            SettingType::Origins => write!(f, "origins (https://host[:port]) or empty"),
            SettingType::Choice(options) => write!(f, "one of: {}", options.join(", ")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Global,
    /// A global value that each invoice group may override.
    InvoiceGroup,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingDef {
    pub key: &'static str,
    pub ty: SettingType,
    pub default: Value,
    pub description: &'static str,
    pub scope: Scope,
    /// Other spellings accepted on input (for example a historical typo).
    pub aliases: &'static [&'static str],
    /// Declared by `core` or a plugin id.
    pub owner: &'static str,
    /// Holds a password or a key: `settings list|get|set` and the audit show only whether it
    /// is set, and scripts cannot read it.
    pub secret: bool,
}

impl SettingDef {
    pub fn bool(key: &'static str, default: bool, description: &'static str) -> Self {
        Self::new(key, SettingType::Bool, Value::Bool(default), description)
    }
    pub fn text(key: &'static str, default: &str, description: &'static str) -> Self {
        Self::new(
            key,
            SettingType::Text,
            Value::String(default.into()),
            description,
        )
    }
    pub fn url(key: &'static str, description: &'static str) -> Self {
        Self::new(
            key,
            SettingType::Url,
            Value::String(String::new()),
            description,
        )
    }
    pub fn email(key: &'static str, description: &'static str) -> Self {
        Self::new(
            key,
            SettingType::Email,
            Value::String(String::new()),
            description,
        )
    }
    pub fn int(
        key: &'static str,
        default: i64,
        min: i64,
        max: i64,
        description: &'static str,
    ) -> Self {
        Self::new(
            key,
            SettingType::Int { min, max },
            Value::from(default),
            description,
        )
    }
    pub fn new(
        key: &'static str,
        ty: SettingType,
        default: Value,
        description: &'static str,
    ) -> Self {
        SettingDef {
            key,
            ty,
            default,
            description,
            scope: Scope::Global,
            aliases: &[],
            owner: "core",
            secret: false,
        }
    }
    /// Marks the setting as holding a secret (see [`SettingDef::secret`]).
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    pub fn per_invoice_group(mut self) -> Self {
        self.scope = Scope::InvoiceGroup;
        self
    }
    pub fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// Turns operator input into a typed value, or says what is wrong with it.
    pub fn parse(&self, raw: &str) -> Result<Value> {
        let raw = raw.trim();
        let bad = |what: &str| Error::Invalid(format!("{}: `{raw}` is not {what}", self.key));
        Ok(match self.ty {
            SettingType::Bool => match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Value::Bool(true),
                "0" | "false" | "off" | "no" => Value::Bool(false),
                _ => return Err(bad("a yes/no value (on, off, true, false, 1, 0)")),
            },
            SettingType::Int { min, max } => {
                let n: i64 = raw.parse().map_err(|_| bad("a whole number"))?;
                if n < min || n > max {
                    return Err(bad(&format!("between {min} and {max}")));
                }
                Value::from(n)
            }
            SettingType::Text => Value::String(raw.into()),
            SettingType::Url => {
                if !raw.is_empty() && !is_http_url(raw) {
                    return Err(bad("an http:// or https:// address"));
                }
                Value::String(raw.into())
            }
            SettingType::Origins => {
                if let Some(bad_one) = raw
                    .split([',', ' '])
                    .map(str::trim)
                    .find(|o| !o.is_empty() && !is_origin(o))
                {
                    return Err(Error::Invalid(format!(
                        "{}: `{bad_one}` is not an origin: scheme://host[:port], like https://www.example.net (no path)",
                        self.key
                    )));
                }
                Value::String(raw.into())
            }
            SettingType::Email => {
                if !raw.is_empty() && !is_email(raw) {
                    return Err(bad("an e-mail address"));
                }
                Value::String(raw.into())
            }
            SettingType::Emails => {
                if let Some(bad_one) = split_emails(raw).into_iter().find(|e| !is_email(e)) {
                    return Err(Error::Invalid(format!(
                        "{}: `{bad_one}` is not an e-mail address (separate addresses with , or ;)",
                        self.key
                    )));
                }
                Value::String(raw.into())
            }
            SettingType::Choice(options) => {
                if !options.contains(&raw) {
                    return Err(bad(&format!("one of: {}", options.join(", "))));
                }
                Value::String(raw.into())
            }
        })
    }
}

pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

/// A web origin as browsers send it in `Origin`: `http(s)://host[:port]` (a trailing `/` is
/// tolerated), with no path, query, user or spaces.
pub fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        // A bare IPv6 address (no brackets) has colons but no port: refused below.
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (rest, None),
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

/// The addresses of an [`SettingType::Emails`] value: split at `,` and `;`, trimmed, empty
/// parts left out.
pub fn split_emails(raw: &str) -> Vec<String> {
    raw.split([',', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// A deliberately plain check: one `@`, something before it, a dot in the domain, no spaces.
pub fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The settings declared by core. Plugins add theirs through the registrar.
pub fn core_settings() -> Vec<SettingDef> {
    vec![
        SettingDef::bool(
            "ci_enable_login_name_creation",
            false,
            "Clients may choose their own login name on the Information tab (a login name set by the operator or chosen earlier always works).",
        ),
        SettingDef::text(
            "ci_skin_theme",
            "default",
            "Theme folder name under themes/ (default, orange, blue, green or your own).",
        )
        .per_invoice_group(),
        SettingDef::text(
            "ci_portal_name",
            "",
            "The portal's name in page titles, the logo's alt text and the footer (empty: \"Client portal\" in the page's language).",
        )
        .per_invoice_group(),
        SettingDef::url(
            "ci_webmail_url",
            "Address of the webmail; when set, the menu shows a Webmail button.",
        )
        .per_invoice_group(),
        SettingDef::bool(
            "ci_display_graph_tab",
            true,
            "Show the traffic graph tab (built with the traffic feature).",
        )
        .per_invoice_group(),
        SettingDef::bool(
            "ci_display_documents_tab",
            true,
            "Show the Files tab: the operator's files (portico files add) for the client's invoice group.",
        )
        .per_invoice_group(),
        SettingDef::bool(
            "ci_display_contracts_tab",
            true,
            "Show the Documents tab: the client's own contracts and documents marked display_in_cp (imported in the bundle's documents).",
        )
        .per_invoice_group(),
        SettingDef::bool(
            "ci_display_supplier_contact",
            true,
            "Show the supplier's contact details in the page footer.",
        )
        .per_invoice_group(),
        SettingDef::bool(
            "ci_enable_client_data_change",
            false,
            "Clients may change their contact data in the portal.",
        )
        .per_invoice_group()
        .aliases(&["ci_enable_cllient_data_change"]),
        SettingDef::bool(
            "ci_client_data_change_approval",
            false,
            "A client's change of their contact data waits for an operator's approval (portico changes list|approve|reject) instead of being stored at once.",
        )
        .per_invoice_group(),
        SettingDef::url(
            "ci_url",
            "Public address of this portal, used in links sent by e-mail.",
        ),
        SettingDef::url(
            "ispadmin_server",
            "Address of the billing server; links fall back to it plus /clientinterface/.",
        ),
        SettingDef::new(
            "sms_notify",
            SettingType::Choice(&["disabled", "gateway", "smpp"]),
            Value::String("disabled".into()),
            "How the ISP sends SMS: disabled, an SMS gateway, or SMPP. The helpdesk shows the text of SMS items only when it is not disabled.",
        ),
        SettingDef::email("system_mail", "Sender address of mail from the portal."),
        SettingDef::text(
            "system_mail_name",
            "",
            "Sender name of mail from the portal.",
        ),
        SettingDef::text(
            "ci_contact_text",
            "",
            "Text of the Contact tab, in Markdown (raw HTML is sanitized: no scripts, no event attributes); empty: no Contact tab.",
        )
        .per_invoice_group(),
        SettingDef::text(
            "portal_suspended_message",
            "",
            "While not empty the portal is suspended: every client page and the login page show this message with status 503 (portico suspend --message TEXT / portico resume).",
        ),
        SettingDef::bool(
            "maintenance_mode",
            false,
            "Show the maintenance page instead of the portal (portico maintenance on|off).",
        ),
        SettingDef::int(
            "session_idle_timeout_minutes",
            30,
            1,
            24 * 60,
            "A session unused this long ends.",
        ),
        SettingDef::int(
            "session_absolute_timeout_hours",
            12,
            1,
            24 * 30,
            "A session ends this long after login, used or not.",
        ),
        SettingDef::int(
            "session_max_per_client",
            10,
            1,
            1000,
            "Live sessions a client may have at once; a new login ends the oldest beyond it.",
        ),
        SettingDef::int(
            "ci_client_password_min_length",
            8,
            6,
            128,
            "Shortest password a client may choose (or an operator may set).",
        ),
        SettingDef::int(
            "ci_login_lockout_attempts",
            5,
            0,
            100,
            "Wrong passwords in a row that lock a client's login (0: never lock).",
        ),
        SettingDef::int(
            "ci_login_lockout_minutes",
            15,
            1,
            24 * 60,
            "How long a locked login stays locked.",
        ),
        SettingDef::int(
            "audit_retention_days",
            365,
            1,
            36500,
            "How many days audit events are kept; older ones are deleted by the hourly housekeeping.",
        ),
        SettingDef::int(
            "ci_login_throttle_free_attempts",
            20,
            1,
            100_000,
            "Wrong logins one address may make in 15 minutes before each further one makes it wait 5, 10, 20 … seconds (at most 15 minutes). Many clients may share one address (NAT).",
        ),
        SettingDef::int(
            "ci_password_link_resend_minutes",
            10,
            1,
            24 * 60,
            "A client gets at most one \"forgot password\" mail this often; further requests look the same and send nothing.",
        ),
        SettingDef::int(
            "ci_password_forgot_per_address_per_hour",
            20,
            1,
            100_000,
            "\"Forgot password\" requests one address may make in an hour; further ones look the same and send nothing.",
        ),
        SettingDef::new(
            "ci_forgotten_password",
            SettingType::Choice(&["email", "username"]),
            serde_json::Value::String("email".into()),
            "What a client enters to get a password link: their e-mail address, or their client number / login name.",
        ),
        SettingDef::int(
            "ci_password_link_validity_minutes",
            60,
            5,
            7 * 24 * 60,
            "How long a password link sent by e-mail works.",
        ),
        SettingDef::url(
            "ci_forward_url_after_logout",
            "Where the browser goes after logout (empty: the login page).",
        ),
        SettingDef::bool(
            "ci_login_form_allow_cross_origin",
            false,
            "Accept logins posted from the ISP's own website (a form with action [PORTAL]/sign/).",
        ),
        SettingDef::int(
            "plugin_max_failures",
            10,
            1,
            100_000,
            "A dynamic plugin that fails this often (panic, error, missed deadline) is disabled until the portal restarts.",
        ),
        SettingDef::int(
            "plugin_call_timeout_ms",
            2000,
            10,
            60_000,
            "Deadline of one call into a dynamic plugin (a page or a hook); past it the client gets a 504 page.",
        ),
        SettingDef::int(
            "script_timeout_ms",
            50,
            1,
            10_000,
            "Wall-clock deadline of one call into an operator script (a hook function); past it the script is stopped and the call counts as a failure.",
        ),
        SettingDef::new(
            "script_failure_policy",
            SettingType::Choice(&["open", "closed"]),
            Value::String("open".into()),
            "When a script fails (error, broken limit, deadline) in a before_* hook: open lets the action go on as if it had not vetoed; closed refuses it with a generic message.",
        ),
        SettingDef::int(
            "script_max_failures",
            10,
            1,
            100_000,
            "A script that fails this many times in a row is disabled until its file is edited.",
        ),
        SettingDef::int(
            "script_mail_per_hour",
            20,
            0,
            100_000,
            "How many e-mails one script may queue per hour with send_mail (0: none).",
        ),
        SettingDef::int(
            "theme_render_timeout_ms",
            250,
            10,
            10_000,
            "Deadline of one page render. A template past it is answered with the compiled-in page and quarantined until the theme is edited again.",
        ),
        SettingDef::new(
            "ci_login_form_allowed_origins",
            SettingType::Origins,
            Value::String(String::new()),
            "With cross-origin login on: space- or comma-separated origins allowed to post it, like https://www.example.net (empty: any).",
        ),
    ]
}

/// The registry of definitions plus the current values, cached in memory and kept in the store.
pub struct Settings {
    store: Store,
    defs: BTreeMap<&'static str, SettingDef>,
    aliases: HashMap<&'static str, &'static str>,
    /// (key, invoice group) → value; `None` is the global value.
    values: RwLock<HashMap<(String, Option<u64>), Value>>,
}

fn store_key(key: &str, group: Option<u64>) -> Vec<u8> {
    let mut k = key.as_bytes().to_vec();
    k.push(SEP);
    if let Some(g) = group {
        k.extend_from_slice(&g.to_be_bytes());
    }
    k
}

fn parse_store_key(k: &[u8]) -> Option<(String, Option<u64>)> {
    let pos = k.iter().position(|b| *b == SEP)?;
    let key = std::str::from_utf8(&k[..pos]).ok()?.to_string();
    let rest = &k[pos + 1..];
    let group = match rest.len() {
        0 => None,
        8 => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => return None,
    };
    Some((key, group))
}

impl Settings {
    /// Builds the registry and loads stored values. Two declarations of one key are an error.
    pub fn load(store: Store, defs: Vec<SettingDef>) -> Result<Self> {
        let mut map = BTreeMap::new();
        let mut aliases = HashMap::new();
        for d in defs {
            for a in d.aliases {
                aliases.insert(*a, d.key);
            }
            if let Some(prev) = map.insert(d.key, d) {
                return Err(Error::Internal(format!(
                    "setting {} declared twice (by {} and another)",
                    prev.key, prev.owner
                )));
            }
        }
        let mut values = HashMap::new();
        for (k, v) in store.scan_raw(TREE, &[])? {
            match (parse_store_key(&k), serde_json::from_slice::<Value>(&v)) {
                (Some(id), Ok(value)) => {
                    values.insert(id, value);
                }
                _ => tracing::warn!(key = %hex::encode(&k), "ignoring unreadable stored setting"),
            }
        }
        Ok(Settings {
            store,
            defs: map,
            aliases,
            values: RwLock::new(values),
        })
    }

    pub fn definitions(&self) -> impl Iterator<Item = &SettingDef> {
        self.defs.values()
    }

    /// The definition for a key or one of its aliases.
    pub fn definition(&self, key: &str) -> Result<&SettingDef> {
        let key = self.aliases.get(key).copied().unwrap_or(key);
        self.defs.get(key).ok_or_else(|| {
            let close = self.close_keys(key);
            let hint = if close.is_empty() {
                "; `portico settings list` shows every key".to_string()
            } else {
                format!("; did you mean {}?", close.join(", "))
            };
            Error::Invalid(format!("unknown setting `{key}`{hint}"))
        })
    }

    /// Keys an operator may have meant by `typed`: the same in another case, one that contains
    /// it or is contained in it, or one a typo or two away (swapped letters count once), closest
    /// first, at most three.
    fn close_keys(&self, typed: &str) -> Vec<&'static str> {
        let typed = typed.to_ascii_lowercase();
        let allowed = if typed.len() > 8 { 2 } else { 1 };
        let mut close: Vec<(usize, &'static str)> = self
            .defs
            .keys()
            .filter_map(|k| {
                let d = strsim::damerau_levenshtein(k, &typed);
                let near = d <= allowed || k.contains(typed.as_str()) || typed.contains(*k);
                near.then_some((d, *k))
            })
            .collect();
        close.sort();
        close.into_iter().take(3).map(|(_, k)| k).collect()
    }

    /// The value that applies for an invoice group (or globally with `None`).
    pub fn value(&self, key: &str, group: Option<u64>) -> Value {
        let Ok(def) = self.definition(key) else {
            tracing::error!(key, "code asked for an undeclared setting");
            return Value::Null;
        };
        let values = match self.values.read() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if def.scope == Scope::InvoiceGroup
            && let Some(g) = group
            && let Some(v) = values.get(&(def.key.to_string(), Some(g)))
        {
            return v.clone();
        }
        values
            .get(&(def.key.to_string(), None))
            .cloned()
            .unwrap_or_else(|| def.default.clone())
    }

    pub fn bool(&self, key: &str, group: Option<u64>) -> bool {
        self.value(key, group).as_bool().unwrap_or(false)
    }

    pub fn int(&self, key: &str, group: Option<u64>) -> i64 {
        self.value(key, group).as_i64().unwrap_or(0)
    }

    pub fn text(&self, key: &str, group: Option<u64>) -> String {
        match self.value(key, group) {
            Value::String(s) => s,
            _ => String::new(),
        }
    }

    /// Whether a value was set explicitly (globally or for the group).
    pub fn is_set(&self, key: &str, group: Option<u64>) -> bool {
        let Ok(def) = self.definition(key) else {
            return false;
        };
        let values = match self.values.read() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        values.contains_key(&(def.key.to_string(), group))
    }

    /// A group may be named only for a per-invoice-group setting, and must exist.
    pub fn check_scope(&self, def: &SettingDef, group: Option<u64>) -> Result<()> {
        if group.is_some() && def.scope == Scope::Global {
            return Err(Error::Invalid(format!(
                "{} is a global setting: it has no per-invoice-group values",
                def.key
            )));
        }
        if let Some(g) = group
            && self
                .store
                .get_id::<crate::model::InvoiceGroup>(g)?
                .is_none()
        {
            return Err(Error::Invalid(format!(
                "there is no invoice group with id {g}"
            )));
        }
        Ok(())
    }

    /// Checks, stores (flushed) and caches a value. `group` needs a per-invoice-group setting.
    pub fn set(&self, key: &str, group: Option<u64>, raw: &str) -> Result<Value> {
        let def = self.definition(key)?;
        self.check_scope(def, group)?;
        let value = def.parse(raw)?;
        let bytes = serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))?;
        self.store.write(|tx| {
            tx.set_raw(TREE, store_key(def.key, group), Some(bytes));
            Ok(())
        })?;
        if let Ok(mut values) = self.values.write() {
            values.insert((def.key.to_string(), group), value.clone());
        }
        // A page rendered between the write and the copy's update read the old value.
        self.store.mark_changed();
        Ok(value)
    }

    /// Removes an explicit value so the default (or the global value) applies again.
    pub fn unset(&self, key: &str, group: Option<u64>) -> Result<()> {
        let def = self.definition(key)?;
        self.check_scope(def, group)?;
        self.store.write(|tx| {
            tx.set_raw(TREE, store_key(def.key, group), None);
            Ok(())
        })?;
        if let Ok(mut values) = self.values.write() {
            values.remove(&(def.key.to_string(), group));
        }
        self.store.mark_changed();
        Ok(())
    }

    /// Every explicit per-group value of a key.
    pub fn group_overrides(&self, key: &str) -> Vec<(u64, Value)> {
        let values = match self.values.read() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        let mut out: Vec<(u64, Value)> = values
            .iter()
            .filter_map(|((k, g), v)| {
                if k == key {
                    g.map(|g| (g, v.clone()))
                } else {
                    None
                }
            })
            .collect();
        out.sort_by_key(|(g, _)| *g);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load(Store::in_memory(), core_settings()).expect("load")
    }

    #[test]
    fn defaults_apply_until_set() {
        let s = settings();
        assert!(!s.bool("ci_enable_login_name_creation", None));
        s.set("ci_enable_login_name_creation", None, "on")
            .expect("set");
        assert!(s.bool("ci_enable_login_name_creation", None));
    }

    #[test]
    fn type_errors_are_clear() {
        let s = settings();
        let e = s
            .set("ci_display_supplier_contact", None, "maybe")
            .unwrap_err();
        assert!(e.to_string().contains("yes/no"), "{e}");
        let e = s.set("ci_url", None, "portal.example.com").unwrap_err();
        assert!(e.to_string().contains("http"), "{e}");
        let e = s.set("ci_nonexistent", None, "1").unwrap_err();
        assert!(e.to_string().contains("unknown setting"), "{e}");
    }

    #[test]
    fn allowed_origins_must_be_origins() {
        let s = settings();
        let key = "ci_login_form_allowed_origins";
        for good in [
            "",
            "https://www.example.net",
            "https://www.example.net/ http://shop.example.net:8080, https://[2001:db8::1]:8443",
        ] {
            s.set(key, None, good)
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "www.example.net",
            "https://www.example.net/login",
            "https://user@example.net",
            "https://example.net:0",
            "https://example.net:99999",
            "ftp://example.net",
            "https://ok.example.net https://bad.example.net/path",
        ] {
            let e = s.set(key, None, bad).unwrap_err().to_string();
            assert!(e.contains("is not an origin"), "{bad}: {e}");
        }
        assert_eq!(
            s.value(key, None),
            Value::String(
                "https://www.example.net/ http://shop.example.net:8080, https://[2001:db8::1]:8443"
                    .into()
            ),
            "a refused value changes nothing"
        );
    }

    #[test]
    fn mistyped_keys_get_a_suggestion() {
        let s = settings();
        for (typed, meant) in [
            ("CI_URL", "ci_url"),
            ("ci_skni_theme", "ci_skin_theme"),
            ("ci_skin_them", "ci_skin_theme"),
        ] {
            let e = s.set(typed, None, "x").unwrap_err().to_string();
            assert!(e.contains(&format!("did you mean {meant}")), "{typed}: {e}");
        }
        let e = s.set("zzzz_unrelated", None, "x").unwrap_err().to_string();
        assert!(e.contains("`portico settings list` shows every key"), "{e}");
    }

    #[test]
    fn alias_reaches_the_same_setting() {
        let s = settings();
        s.set("ci_enable_cllient_data_change", None, "1")
            .expect("set");
        assert!(s.bool("ci_enable_client_data_change", None));
    }

    #[test]
    fn global_settings_refuse_a_group() {
        let s = settings();
        let e = s.set("ci_url", Some(1), "https://x.example").unwrap_err();
        assert!(e.to_string().contains("global"), "{e}");
    }

    #[test]
    fn values_survive_reload() {
        let store = Store::in_memory();
        let s = Settings::load(store.clone(), core_settings()).expect("load");
        s.set("system_mail", None, "noc@isp.example").expect("set");
        let again = Settings::load(store, core_settings()).expect("reload");
        assert_eq!(again.text("system_mail", None), "noc@isp.example");
    }
}
