//! Named hook points with serializable events, and the one dispatch that runs every handler of
//! a name: compiled-in Rust handlers, dynamic plugins, and Rhai scripts ([`crate::script`]), in
//! that order.
//!
//! A hook is declared once ([`HookDef`]: name, event fields, which fields a handler may amend,
//! whether a veto refuses the action). Handlers see the event as JSON; Rust plugins may use the
//! typed event through [`crate::registry::Registrar::on`]. After each handler, fields it may not
//! amend are put back as they were, so no handler can, say, change which client logs in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use portico_plugin_sdk::protocol::ClientView;

/// A refusal from a `before_*` hook, with a message for the person who asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Veto {
    pub message: String,
    /// The message in other languages (`cs` → "...").
    pub translations: BTreeMap<String, String>,
}

impl Veto {
    pub fn new(message: impl Into<String>) -> Self {
        Veto {
            message: message.into(),
            translations: BTreeMap::new(),
        }
    }

    /// The message in one more language.
    pub fn with(mut self, lang: &str, message: impl Into<String>) -> Self {
        self.translations.insert(lang.into(), message.into());
        self
    }

    /// The message in `lang` when given, else the default one.
    pub fn message_in(&self, lang: &str) -> &str {
        self.translations
            .get(lang)
            .map_or(self.message.as_str(), String::as_str)
    }
}

/// A hook point: its name, what its event holds, and what handlers may do.
#[derive(Debug, Clone, Serialize)]
pub struct HookDef {
    pub name: String,
    /// `core` or the declaring plugin.
    pub owner: String,
    pub description: String,
    /// Event field → description.
    pub fields: Vec<(String, String)>,
    /// Fields a handler may change.
    pub amendable: Vec<String>,
    /// Whether a veto refuses the action (`before_*` hooks), or is logged and ignored.
    pub refusable: bool,
}

impl HookDef {
    /// A hook; `before_*` names may refuse, every other name only observes or amends.
    pub fn new(name: &str, description: &str) -> Self {
        HookDef {
            name: name.into(),
            owner: String::new(),
            description: description.into(),
            fields: Vec::new(),
            amendable: Vec::new(),
            refusable: name.starts_with("before_"),
        }
    }
    pub fn field(mut self, name: &str, description: &str) -> Self {
        self.fields.push((name.into(), description.into()));
        self
    }
    pub fn amendable(mut self, field: &str) -> Self {
        self.amendable.push(field.into());
        self
    }
    /// Handlers may amend, but a veto is ignored (the action cannot be refused).
    pub fn unrefusable(mut self) -> Self {
        self.refusable = false;
        self
    }
}

/// A handler on the JSON form of the event.
pub type HandlerFn = Arc<dyn Fn(&mut Value) -> Result<(), Veto> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) owner: String,
    pub(crate) f: HandlerFn,
}

/// Every declared hook and its handlers, frozen when the portal is assembled.
#[derive(Default)]
pub struct Hooks {
    defs: BTreeMap<String, HookDef>,
    handlers: HashMap<String, Vec<Handler>>,
    /// The operator's scripts, run after every other handler (set once the portal is built).
    scripts: OnceLock<Arc<crate::script::Scripts>>,
}

impl Hooks {
    pub(crate) fn declare(&mut self, def: HookDef) -> Result<(), String> {
        if let Some(prev) = self.defs.get(&def.name) {
            return Err(format!(
                "hook `{}` is declared by {} already",
                def.name, prev.owner
            ));
        }
        self.defs.insert(def.name.clone(), def);
        Ok(())
    }

    pub(crate) fn add_handler(&mut self, hook: &str, handler: Handler) -> Result<(), String> {
        if !self.defs.contains_key(hook) {
            let known: Vec<&str> = self.defs.keys().map(String::as_str).collect();
            return Err(format!(
                "handles hook `{hook}`, which nobody declares (hooks: {})",
                known.join(", ")
            ));
        }
        self.handlers
            .entry(hook.to_string())
            .or_default()
            .push(handler);
        Ok(())
    }

    /// Hands the operator's scripts to the dispatch (once, when the portal is assembled).
    pub(crate) fn attach_scripts(&self, scripts: Arc<crate::script::Scripts>) {
        let _ = self.scripts.set(scripts);
    }

    fn scripts_handle(&self, name: &str) -> bool {
        self.scripts.get().is_some_and(|s| s.handles(name))
    }

    /// Every hook, by name.
    pub fn definitions(&self) -> impl Iterator<Item = &HookDef> {
        self.defs.values()
    }

    pub fn definition(&self, name: &str) -> Option<&HookDef> {
        self.defs.get(name)
    }

    /// Who handles a hook, in the order they run (scripts as `script <file>`).
    pub fn handler_owners(&self, name: &str) -> Vec<String> {
        let mut owners: Vec<String> = self
            .handlers
            .get(name)
            .map(|v| v.iter().map(|h| h.owner.clone()).collect())
            .unwrap_or_default();
        if let Some(s) = self.scripts.get() {
            owners.extend(s.handler_names(name));
        }
        owners
    }

    /// Whether anyone handles this hook (callers skip building the event otherwise).
    pub fn is_handled(&self, name: &str) -> bool {
        self.handlers.get(name).is_some_and(|v| !v.is_empty()) || self.scripts_handle(name)
    }

    /// Runs every handler of `name` on `event` in order. For a refusable hook the first veto
    /// stops the action and is returned; for the others a veto is logged and ignored.
    /// Amendments to declared fields carry over to later handlers and back into `event`.
    pub fn run<E: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        event: &mut E,
    ) -> Result<(), Veto> {
        if !self.is_handled(name) {
            return Ok(());
        }
        let Some(def) = self.defs.get(name) else {
            return Ok(());
        };
        let mut value = match serde_json::to_value(&*event) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(
                    hook = name,
                    "event cannot be encoded, handlers skipped: {e}"
                );
                return Ok(());
            }
        };
        let result = self.dispatch(def, &mut value);
        if !def.amendable.is_empty() {
            match serde_json::from_value(value) {
                Ok(amended) => *event = amended,
                Err(e) => tracing::error!(hook = name, "amended event unreadable, ignored: {e}"),
            }
        }
        result
    }

    /// Fires a hook a plugin declared, on its JSON event. A plugin may fire only its own hooks:
    /// faking, say, `before_login` to other plugins' handlers is refused.
    pub fn fire_own(&self, owner: &str, name: &str, event: &mut Value) -> Result<(), Veto> {
        self.may_fire(owner, name).map_err(Veto::new)?;
        self.run_json(name, event)
    }

    /// Whether `owner` declared the hook `name` (only then may it fire it).
    pub fn may_fire(&self, owner: &str, name: &str) -> Result<(), String> {
        match self.defs.get(name) {
            Some(def) if def.owner == owner => Ok(()),
            _ => {
                tracing::error!(
                    plugin = owner,
                    hook = name,
                    "a plugin tried to fire a hook it does not declare; refused"
                );
                Err(format!(
                    "plugin `{owner}` may fire only the hooks it declares, not `{name}`"
                ))
            }
        }
    }

    /// Runs the handlers on an event that is already JSON.
    pub fn run_json(&self, name: &str, event: &mut Value) -> Result<(), Veto> {
        match self.defs.get(name) {
            Some(def) if self.is_handled(name) => self.dispatch(def, event),
            _ => Ok(()),
        }
    }

    /// Rust handlers and dynamic plugins, then scripts; the first veto of a refusable hook
    /// stops the rest.
    fn dispatch(&self, def: &HookDef, value: &mut Value) -> Result<(), Veto> {
        if let Some(handlers) = self.handlers.get(&def.name) {
            run_handlers(def, handlers, value)?;
        }
        match self.scripts.get() {
            Some(scripts) => scripts.run(def, value, |before, after, owner| {
                keep_only_amendable(def, before, after, owner)
            }),
            None => Ok(()),
        }
    }
}

fn run_handlers(def: &HookDef, handlers: &[Handler], value: &mut Value) -> Result<(), Veto> {
    for h in handlers {
        let before = value.clone();
        let outcome = (h.f)(value);
        keep_only_amendable(def, &before, value, &h.owner);
        if let Err(v) = outcome {
            if def.refusable {
                tracing::info!(hook = %def.name, hook_owner = %h.owner, "action vetoed: {}", v.message);
                return Err(v);
            }
            tracing::warn!(hook = %def.name, hook_owner = %h.owner, "a handler tried to refuse an action that cannot be refused, ignored: {}", v.message);
        }
    }
    Ok(())
}

/// Puts back every field a handler was not allowed to change.
fn keep_only_amendable(def: &HookDef, before: &Value, after: &mut Value, owner: &str) {
    if before == after {
        return;
    }
    let (Value::Object(old), Some(new)) = (before, after.as_object_mut()) else {
        tracing::warn!(hook = %def.name, hook_owner = %owner, "a handler replaced the event; restored");
        *after = before.clone();
        return;
    };
    let mut fixed: Map<String, Value> = Map::new();
    for (k, v) in old {
        if def.amendable.iter().any(|a| a == k) {
            fixed.insert(k.clone(), new.get(k).cloned().unwrap_or(Value::Null));
        } else {
            if new.get(k) != Some(v) {
                tracing::warn!(hook = %def.name, hook_owner = %owner, field = %k, "a handler changed a field it may not amend; restored");
            }
            fixed.insert(k.clone(), v.clone());
        }
    }
    *new = fixed;
}

/// A client is logging in (before: may refuse) or has logged in (after).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LoginEvent {
    pub client: ClientView,
    pub source_addr: Option<String>,
}

/// A client logged out.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LogoutEvent {
    pub client: ClientView,
}

/// An import bundle is about to be written (before: may refuse) or was written (after).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ImportEvent {
    pub records: usize,
}

/// An operator changes a setting (before: may refuse or amend the raw value).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SettingChangeEvent {
    pub key: String,
    pub invoice_group_id: Option<u64>,
    /// The new value as typed; `None` when the setting is unset (back to its default).
    pub raw_value: Option<String>,
}

/// A page is about to be rendered: handlers may add values to its template's `extra`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RenderEvent {
    pub template: String,
    pub client: Option<ClientView>,
    pub extra: Map<String, Value>,
}

/// A client opens the Information tab: handlers (and scripts' `fn info_panels(event)`, by
/// returning them) add panels `{ title, text }` or `{ title, rows: [[label, value], ...] }`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct InfoPanelsEvent {
    pub client: ClientView,
    /// The page's language (`en`, `cs`).
    pub lang: String,
    pub panels: Vec<Value>,
}

/// The hooks core declares.
pub fn core_hooks() -> Vec<HookDef> {
    let client = "the client (id, number, username, name, company, email, phone, mobile, invoice_group_id, language; scripts also get invoice_group (its name), city and zip of the mailing address)";
    vec![
        HookDef::new("before_login", "A client's password was verified and the account is not locked; the session has not started. A veto is shown on the login page (403) and is not counted as a wrong password.")
            .field("client", client)
            .field("source_addr", "the client's address, or null"),
        HookDef::new("after_login", "A client's session started.")
            .field("client", client)
            .field("source_addr", "the client's address, or null"),
        HookDef::new("after_logout", "A client logged out; their session has ended.")
            .field("client", client),
        HookDef::new("before_import", "An import bundle passed every check; nothing is written yet. A veto fails the import.")
            .field("records", "how many records the bundle holds"),
        HookDef::new("after_import", "An import bundle was written.")
            .field("records", "how many records the bundle held"),
        HookDef::new("before_setting_change", "An operator changes a setting (settings set/unset, maintenance on/off), after the value was checked. An amended raw_value is checked again. A veto fails the command.")
            .field("key", "the setting's key (aliases resolved)")
            .field("invoice_group_id", "the invoice group, or null for the global value")
            .field("raw_value", "the new value as typed, or null for unset")
            .amendable("raw_value"),
        HookDef::new("after_setting_change", "A setting was stored or removed.")
            .field("key", "the setting's key")
            .field("invoice_group_id", "the invoice group, or null")
            .field("raw_value", "the value as stored, or null for unset"),
        HookDef::new("render", "A tab's page is about to be rendered. Values added to extra reach the template as `extra`. Cannot be refused.")
            .field("template", "the template's name")
            .field("client", "the logged-in client, or null")
            .field("extra", "an object handlers may add values to")
            .amendable("extra")
            .unrefusable(),
        HookDef::new("info_panels", "A client opens the Information tab. Panels added to panels are shown there, rendered by the theme: { title, text } or { title, rows: [[label, value], ...] }. A script's fn info_panels(event) returns an array of them. Cannot be refused.")
            .field("client", client)
            .field("lang", "the page's language (en, cs)")
            .field("panels", "panels added so far")
            .amendable("panels")
            .unrefusable(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks_with(handlers: Vec<HandlerFn>) -> Hooks {
        let mut h = Hooks::default();
        for d in core_hooks() {
            h.declare(d).expect("declare");
        }
        for (i, f) in handlers.into_iter().enumerate() {
            h.add_handler(
                "before_setting_change",
                Handler {
                    owner: format!("p{i}"),
                    f,
                },
            )
            .expect("handler");
        }
        h
    }

    #[test]
    fn first_veto_wins_and_amendments_carry_over() {
        let h = hooks_with(vec![
            Arc::new(|e| {
                let v = e["raw_value"].as_str().map(|v| v.trim().to_string());
                e["raw_value"] = v.into();
                Ok(())
            }),
            Arc::new(|e| {
                if e["raw_value"] == "forbidden" {
                    Err(Veto::new("not that"))
                } else {
                    Ok(())
                }
            }),
        ]);
        let mut ok = SettingChangeEvent {
            key: "k".into(),
            invoice_group_id: None,
            raw_value: Some("  fine ".into()),
        };
        assert!(h.run("before_setting_change", &mut ok).is_ok());
        assert_eq!(ok.raw_value.as_deref(), Some("fine"));
        let mut bad = SettingChangeEvent {
            raw_value: Some(" forbidden ".into()),
            ..ok
        };
        assert_eq!(
            h.run("before_setting_change", &mut bad),
            Err(Veto::new("not that"))
        );
    }

    #[test]
    fn fields_that_are_not_amendable_are_restored() {
        let h = hooks_with(vec![Arc::new(|e| {
            e["key"] = "other_key".into();
            e["invoice_group_id"] = 7.into();
            e["raw_value"] = "changed".into();
            e["smuggled"] = true.into();
            Ok(())
        })]);
        let mut ev = SettingChangeEvent {
            key: "k".into(),
            invoice_group_id: None,
            raw_value: Some("v".into()),
        };
        h.run("before_setting_change", &mut ev).expect("no veto");
        assert_eq!(ev.key, "k");
        assert_eq!(ev.invoice_group_id, None);
        assert_eq!(ev.raw_value.as_deref(), Some("changed"));
    }

    #[test]
    fn unknown_and_doubly_declared_hooks_are_refused() {
        let mut h = hooks_with(vec![]);
        let e = h
            .add_handler(
                "befor_login",
                Handler {
                    owner: "x".into(),
                    f: Arc::new(|_| Ok(())),
                },
            )
            .unwrap_err();
        assert!(e.contains("`befor_login`, which nobody declares"), "{e}");
        let e = h
            .declare(HookDef::new("before_login", "again"))
            .unwrap_err();
        assert!(e.contains("declared by"), "{e}");
    }

    #[test]
    fn a_veto_of_an_unrefusable_hook_is_ignored() {
        let mut h = hooks_with(vec![]);
        h.add_handler(
            "render",
            Handler {
                owner: "p".into(),
                f: Arc::new(|e| {
                    e["extra"]["x"] = 1.into();
                    Err(Veto::new("no page for you"))
                }),
            },
        )
        .expect("handler");
        let mut ev = RenderEvent {
            template: "t.html".into(),
            client: None,
            extra: Map::new(),
        };
        assert!(h.run("render", &mut ev).is_ok());
        assert_eq!(ev.extra.get("x"), Some(&Value::from(1)));
    }
}
