#![allow(unsafe_code)] // the C ABI: every unsafe block says why it holds
//! # Portico plugin SDK
//!
//! Build a Portico feature plugin as a dynamic library (`cdylib`) that an ISP drops into the
//! portal's plugin folder, without rebuilding the portal. The SDK has no Rocket and no portal
//! internals: a plugin describes itself ([`protocol::Description`]), answers page requests with
//! a template and its context, handles hooks by name, and keeps data in its own store namespace
//! through [`Host`].
//!
//! ```no_run
//! use portico_plugin_sdk::{Description, Host, PageReply, PageRequest, Plugin, declare_plugin};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe(&self) -> Description {
//!         Description::new("hello", "Hello", env!("CARGO_PKG_VERSION"))
//!             .tab("hello", "hello-title", &[])
//!             .template("hello.html", "{% extends \"layout.html\" %}{% block content %}<p>{{ page.greeting }}</p>{% endblock %}")
//!             .translations("en", "hello-title = Hello")
//!             .translations("cs", "hello-title = Ahoj")
//!     }
//!     fn page(&self, req: &PageRequest, _host: &Host<'_>) -> PageReply {
//!         PageReply::render("hello.html", portico_plugin_sdk::json!({ "greeting": format!("Hi {}", req.client.name) }))
//!             .in_tab("hello")
//!     }
//! }
//!
//! declare_plugin!(Hello);
//! ```
//!
//! Every export is wrapped so that a panic never crosses into the portal: the portal gets an
//! error reply, counts the failure, and disables a plugin that keeps failing. The portal checks
//! [`abi::ABI_VERSION`] before any other call and never unloads a library.
//!
//! See `docs/plugins.md` in the Portico repository for a walk-through.

pub mod abi;
pub mod protocol;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
pub use serde_json::{self, Map, Value, json};

pub use protocol::{
    ButtonDecl, Change, ClientView, Description, HookDecl, HookRequest, PageReply, PageRequest,
    SettingDecl, SettingKind, TabDecl,
};

/// What a dynamic plugin implements. The portal creates one instance (with `Default`) and calls
/// it from several threads, so keep state in the store (through [`Host`]) or behind a lock.
pub trait Plugin: Send + Sync + 'static {
    /// Who the plugin is and what it registers. Called once, at load.
    fn describe(&self) -> Description;

    /// A page under `/<id>/` for a logged-in client. The default answers 404.
    fn page(&self, req: &PageRequest, host: &Host<'_>) -> PageReply {
        let _ = (req, host);
        PageReply::Status { code: 404 }
    }

    /// A hook named in [`Description::hooks`]. A `before_*` handler may change the event's
    /// amendable fields or refuse with a [`Veto`]; `after_*` handlers only look.
    fn hook(&self, req: &mut HookRequest, host: &Host<'_>) -> Result<(), Veto> {
        let _ = (req, host);
        Ok(())
    }
}

/// A refusal from a `before_*` hook, shown to whoever asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Veto {
    pub message: String,
    /// The message in other languages (`cs` → "...").
    pub translations: BTreeMap<String, String>,
}

impl Veto {
    pub fn new(message: impl Into<String>) -> Veto {
        Veto {
            message: message.into(),
            translations: BTreeMap::new(),
        }
    }

    /// The message in one more language.
    pub fn with(mut self, lang: &str, message: impl Into<String>) -> Veto {
        self.translations.insert(lang.to_string(), message.into());
        self
    }
}

impl PageReply {
    /// Renders one of the plugin's templates with `context` as the template's `page`.
    pub fn render(template: &str, context: impl Serialize) -> PageReply {
        PageReply::Render {
            template: template.to_string(),
            context: serde_json::to_value(context).unwrap_or(Value::Null),
            tab: None,
            status: None,
        }
    }

    /// Marks one of the plugin's tabs active in the menu of a rendered page.
    pub fn in_tab(self, tab: &str) -> PageReply {
        match self {
            PageReply::Render {
                template,
                context,
                status,
                ..
            } => PageReply::Render {
                template,
                context,
                tab: Some(tab.to_string()),
                status,
            },
            other => other,
        }
    }
}

impl Description {
    pub fn new(id: &str, name: &str, version: &str) -> Description {
        Description {
            id: id.into(),
            name: name.into(),
            version: version.into(),
            ..Description::default()
        }
    }

    /// A tab linking to the plugin's base `/<id>/`, shown while every setting in
    /// `visible_when` is on.
    pub fn tab(mut self, id: &str, title_key: &str, visible_when: &[&str]) -> Description {
        self.tabs.push(TabDecl {
            id: id.into(),
            title_key: title_key.into(),
            icon: id.into(),
            order: 500,
            path: "/".into(),
            visible_when: visible_when.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// A menu button linking to the address in one of the plugin's settings.
    pub fn button(mut self, button: ButtonDecl) -> Description {
        self.menu_buttons.push(button);
        self
    }

    pub fn setting(mut self, setting: SettingDecl) -> Description {
        self.settings.push(setting);
        self
    }

    /// Declares a new hook point, which this plugin fires with [`Host::run_hook`] and any
    /// plugin may handle.
    pub fn declares(mut self, hook: HookDecl) -> Description {
        self.declares_hooks.push(hook);
        self
    }

    /// Handles the hook of this name.
    pub fn handles(mut self, hook: &str) -> Description {
        self.hooks.push(hook.into());
        self
    }

    pub fn template(mut self, name: &str, source: &str) -> Description {
        self.templates.insert(name.into(), source.into());
        self
    }

    pub fn translations(mut self, lang: &str, ftl: &str) -> Description {
        self.translations.insert(lang.into(), ftl.into());
        self
    }
}

impl SettingDecl {
    fn of(key: &str, kind: SettingKind, default: Value, description: &str) -> SettingDecl {
        SettingDecl {
            key: key.into(),
            kind,
            default,
            description: description.into(),
            ..SettingDecl::default()
        }
    }
    pub fn bool(key: &str, default: bool, description: &str) -> SettingDecl {
        Self::of(key, SettingKind::Bool, Value::Bool(default), description)
    }
    pub fn text(key: &str, default: &str, description: &str) -> SettingDecl {
        Self::of(key, SettingKind::Text, Value::from(default), description)
    }
    pub fn int(key: &str, default: i64, min: i64, max: i64, description: &str) -> SettingDecl {
        SettingDecl {
            min: Some(min),
            max: Some(max),
            ..Self::of(key, SettingKind::Int, Value::from(default), description)
        }
    }
    /// A global value that each invoice group may override.
    pub fn per_invoice_group(mut self) -> SettingDecl {
        self.per_invoice_group = true;
        self
    }
}

/// A setting from a request's `settings` as text (empty when unset or not text).
pub fn text<'a>(settings: &'a Map<String, Value>, key: &str) -> &'a str {
    settings.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A yes/no setting from a request's `settings` (false when unset).
pub fn flag(settings: &Map<String, Value>, key: &str) -> bool {
    settings.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The portal, as lent to the plugin for one call: its own store namespace.
pub struct Host<'a> {
    api: &'a abi::HostApi,
}

impl Host<'_> {
    fn request(&self, req: &protocol::HostRequest) -> Result<protocol::HostReply, String> {
        let input = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        // SAFETY: the host guarantees `api` is valid for the whole call we are in; the reply
        // buffer is the host's and goes back to the host's `free` after we copied it.
        let out = unsafe {
            let buf = (self.api.call)(self.api.ctx, input.as_ptr(), input.len());
            let bytes = buf.as_slice().to_vec();
            (self.api.free)(buf);
            bytes
        };
        match serde_json::from_slice(&out).map_err(|e| e.to_string())? {
            protocol::HostReply::Error(e) => Err(e),
            reply => Ok(reply),
        }
    }

    /// A value from one of the plugin's trees.
    pub fn get(&self, tree: &str, key: &str) -> Result<Option<Value>, String> {
        match self.request(&protocol::HostRequest::Get {
            tree: tree.into(),
            key: key.into(),
        })? {
            protocol::HostReply::Value(v) => Ok(v),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Every entry of a tree whose key starts with `prefix`, in key order.
    pub fn scan(&self, tree: &str, prefix: &str) -> Result<Vec<(String, Value)>, String> {
        match self.request(&protocol::HostRequest::Scan {
            tree: tree.into(),
            prefix: prefix.into(),
        })? {
            protocol::HostReply::Entries(v) => Ok(v),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Applies every change or none, durably, before returning.
    pub fn write(&self, changes: Vec<Change>) -> Result<(), String> {
        match self.request(&protocol::HostRequest::Write {
            changes,
            expect: Vec::new(),
        })? {
            protocol::HostReply::Done => Ok(()),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Applies the changes only if every key in `expect` still holds the given value (`None`:
    /// absent), in one step; `Ok(false)` when something changed meanwhile (read again and
    /// retry). This is how a counter or a quota is updated safely from parallel requests.
    pub fn write_if(&self, expect: Vec<Change>, changes: Vec<Change>) -> Result<bool, String> {
        match self.request(&protocol::HostRequest::Write { changes, expect })? {
            protocol::HostReply::Done => Ok(true),
            protocol::HostReply::Conflict => Ok(false),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Fires a hook this plugin declared: every handler (compiled-in, dynamic, this plugin's
    /// own) runs. `Ok(Ok(event))` with the event as they left it, `Ok(Err(veto))` when one
    /// refused, `Err` when the portal could not run it (for example a hook that is not this
    /// plugin's).
    pub fn run_hook(&self, hook: &str, event: Value) -> Result<Result<Value, Veto>, String> {
        match self.request(&protocol::HostRequest::RunHook {
            hook: hook.into(),
            event: event.clone(),
        })? {
            protocol::HostReply::Hook(protocol::HookReply::Continue { event: amended }) => {
                Ok(Ok(amended.unwrap_or(event)))
            }
            protocol::HostReply::Hook(protocol::HookReply::Veto {
                message,
                translations,
            }) => Ok(Err(Veto {
                message,
                translations,
            })),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    pub fn put(&self, tree: &str, key: &str, value: Value) -> Result<(), String> {
        self.write(vec![Change {
            tree: tree.into(),
            key: key.into(),
            value: Some(value),
        }])
    }

    pub fn delete(&self, tree: &str, key: &str) -> Result<(), String> {
        self.write(vec![Change {
            tree: tree.into(),
            key: key.into(),
            value: None,
        }])
    }
}

/// The functions `declare_plugin!` exports. Not for direct use.
#[doc(hidden)]
pub mod export {
    use super::*;
    use crate::abi::{HostApi, RawBuf};
    use crate::protocol::{Call, CallReply, HookReply};

    thread_local! {
        /// Where the last panic on this thread happened, for the error reply.
        static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    }

    /// The library has its own copy of the standard library and so its own panic hook: make it
    /// quiet (the portal logs the failure) and keep the location for the reply.
    fn quiet_panics() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(at));
            }));
        });
    }

    fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_default();
        format!("plugin panicked: {what}{at}")
    }

    fn to_buf(v: &impl Serialize) -> RawBuf {
        let bytes = serde_json::to_vec(v).unwrap_or_else(|e| {
            serde_json::to_vec(&CallReply::Error(format!("cannot encode reply: {e}")))
                .unwrap_or_default()
        });
        RawBuf::from_vec(bytes)
    }

    pub fn describe<P: Plugin>(plugin: fn() -> &'static P) -> RawBuf {
        quiet_panics();
        match catch_unwind(|| plugin().describe()) {
            Ok(d) => to_buf(&d),
            Err(p) => to_buf(&CallReply::Error(panic_text(p))),
        }
    }

    /// # Safety
    /// `host` must be valid for the call and `input` must point at `len` readable bytes.
    pub unsafe fn call<P: Plugin>(
        plugin: fn() -> &'static P,
        host: *const HostApi,
        input: *const u8,
        len: usize,
    ) -> RawBuf {
        quiet_panics();
        let reply = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller's contract.
            let (api, bytes) = unsafe {
                if host.is_null() || input.is_null() {
                    return CallReply::Error("null argument".into());
                }
                (&*host, std::slice::from_raw_parts(input, len))
            };
            let host = Host { api };
            match serde_json::from_slice::<Call>(bytes) {
                Err(e) => CallReply::Error(format!("unreadable call: {e}")),
                Ok(Call::Page(req)) => CallReply::Page(plugin().page(&req, &host)),
                Ok(Call::Hook(mut req)) => {
                    let before = req.event.clone();
                    match plugin().hook(&mut req, &host) {
                        Ok(()) => CallReply::Hook(HookReply::Continue {
                            event: (req.event != before).then_some(req.event),
                        }),
                        Err(v) => CallReply::Hook(HookReply::Veto {
                            message: v.message,
                            translations: v.translations,
                        }),
                    }
                }
            }
        }));
        to_buf(&reply.unwrap_or_else(|p| CallReply::Error(panic_text(p))))
    }

    /// # Safety
    /// `buf` must have been returned by this library and not freed yet.
    pub unsafe extern "C" fn free(buf: RawBuf) {
        // SAFETY: the caller's contract; dropping a Vec cannot unwind past this point in
        // practice, and we still catch it.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { buf.into_vec() })));
    }
}

/// Exports a [`Plugin`] type (which must implement `Default`) as the library's entry point.
///
/// ```ignore
/// declare_plugin!(OutageNotice);
/// ```
#[macro_export]
macro_rules! declare_plugin {
    ($ty:ty) => {
        $crate::declare_plugin!($ty, abi_version = $crate::abi::ABI_VERSION);
    };
    // Declaring another ABI version is only useful to test that hosts refuse it.
    ($ty:ty, abi_version = $abi:expr) => {
        #[doc(hidden)]
        fn __portico_plugin_instance() -> &'static $ty {
            static INSTANCE: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();
            INSTANCE.get_or_init(<$ty as ::std::default::Default>::default)
        }

        #[doc(hidden)]
        unsafe extern "C" fn __portico_plugin_describe() -> $crate::abi::RawBuf {
            $crate::export::describe(__portico_plugin_instance)
        }

        #[doc(hidden)]
        #[allow(unsafe_code)]
        unsafe extern "C" fn __portico_plugin_call(
            host: *const $crate::abi::HostApi,
            input: *const u8,
            len: usize,
        ) -> $crate::abi::RawBuf {
            // SAFETY: forwarded from the host, which keeps both pointers valid for the call.
            unsafe { $crate::export::call(__portico_plugin_instance, host, input, len) }
        }

        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn portico_plugin_entry() -> *const $crate::abi::PluginVtable {
            static VTABLE: $crate::abi::PluginVtable = $crate::abi::PluginVtable {
                abi_version: $abi,
                sdk_version: $crate::abi::RawStr::new($crate::abi::SDK_VERSION),
                describe: __portico_plugin_describe,
                call: __portico_plugin_call,
                free: $crate::export::free,
            };
            &VTABLE
        }
    };
}
