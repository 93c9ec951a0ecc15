//! Typed hook points. A `before_*` handler may amend the event or veto the action (the veto's
//! message is shown to whoever asked for it); an `after_*` handler only observes. Handlers run in
//! registration order (core, then the compiled-in plugins in the order the binary lists them).
//! Logout and render cannot be refused: their `before_*` handlers may amend, a veto is ignored.

use std::sync::Arc;

/// A refusal from a `before_*` hook, with a message for the person who asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Veto {
    pub message: String,
}

impl Veto {
    pub fn new(message: impl Into<String>) -> Self {
        Veto {
            message: message.into(),
        }
    }
}

type Before<E> = Arc<dyn Fn(&mut E) -> Result<(), Veto> + Send + Sync>;
type After<E> = Arc<dyn Fn(&E) + Send + Sync>;

/// The handlers of one hook point.
pub struct HookPoint<E> {
    before: Vec<(&'static str, Before<E>)>,
    after: Vec<(&'static str, After<E>)>,
}

impl<E> Default for HookPoint<E> {
    fn default() -> Self {
        HookPoint {
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

impl<E> HookPoint<E> {
    pub fn before(
        &mut self,
        owner: &'static str,
        f: impl Fn(&mut E) -> Result<(), Veto> + Send + Sync + 'static,
    ) {
        self.before.push((owner, Arc::new(f)));
    }

    pub fn after(&mut self, owner: &'static str, f: impl Fn(&E) + Send + Sync + 'static) {
        self.after.push((owner, Arc::new(f)));
    }

    /// Runs the `before` handlers in order; the first veto stops the action.
    pub fn run_before(&self, event: &mut E) -> Result<(), Veto> {
        for (owner, f) in &self.before {
            if let Err(v) = f(event) {
                tracing::info!(hook_owner = owner, "action vetoed: {}", v.message);
                return Err(v);
            }
        }
        Ok(())
    }

    /// For actions that cannot be refused (logout, render): every `before` handler runs and may
    /// amend; a veto is logged and ignored.
    pub fn run_before_unrefusable(&self, what: &str, event: &mut E) {
        for (owner, f) in &self.before {
            if let Err(v) = f(event) {
                tracing::warn!(
                    hook_owner = owner,
                    "a hook tried to refuse {what}, ignored: {}",
                    v.message
                );
            }
        }
    }

    pub fn run_after(&self, event: &E) {
        for (_, f) in &self.after {
            f(event);
        }
    }

    pub fn len(&self) -> usize {
        self.before.len() + self.after.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn extend(&mut self, other: HookPoint<E>) {
        self.before.extend(other.before);
        self.after.extend(other.after);
    }
}

/// A client is logging in (before: may refuse) or has logged in (after).
#[derive(Debug, Clone)]
pub struct LoginEvent {
    pub client_id: u64,
    pub client_number: String,
    pub source_addr: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LogoutEvent {
    pub client_id: u64,
}

/// An import bundle is about to be written (before: may refuse) or was written (after).
#[derive(Debug, Clone)]
pub struct ImportEvent {
    pub records: usize,
}

/// An operator changes a setting (before: may refuse or amend the raw value).
#[derive(Debug, Clone)]
pub struct SettingChangeEvent {
    pub key: String,
    pub invoice_group_id: Option<u64>,
    /// The new value as typed; `None` when the setting is unset (back to its default).
    pub raw_value: Option<String>,
}

/// A page is about to be rendered (before: may add values to its template context).
#[derive(Debug, Clone)]
pub struct RenderEvent {
    pub template: String,
    pub client_id: Option<u64>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Default)]
pub struct Hooks {
    pub login: HookPoint<LoginEvent>,
    pub logout: HookPoint<LogoutEvent>,
    pub import: HookPoint<ImportEvent>,
    pub setting_change: HookPoint<SettingChangeEvent>,
    pub render: HookPoint<RenderEvent>,
}

impl Hooks {
    pub(crate) fn extend(&mut self, other: Hooks) {
        self.login.extend(other.login);
        self.logout.extend(other.logout);
        self.import.extend(other.import);
        self.setting_change.extend(other.setting_change);
        self.render.extend(other.render);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_veto_wins_and_amendments_carry_over() {
        let mut p: HookPoint<SettingChangeEvent> = HookPoint::default();
        p.before("a", |e| {
            e.raw_value = e.raw_value.as_deref().map(|v| v.trim().to_string());
            Ok(())
        });
        p.before("b", |e| {
            if e.raw_value.as_deref() == Some("forbidden") {
                Err(Veto::new("not that"))
            } else {
                Ok(())
            }
        });
        let mut ok = SettingChangeEvent {
            key: "k".into(),
            invoice_group_id: None,
            raw_value: Some("  fine ".into()),
        };
        assert!(p.run_before(&mut ok).is_ok());
        assert_eq!(ok.raw_value.as_deref(), Some("fine"));
        let mut bad = SettingChangeEvent {
            raw_value: Some(" forbidden ".into()),
            ..ok
        };
        assert_eq!(p.run_before(&mut bad), Err(Veto::new("not that")));
    }
}
