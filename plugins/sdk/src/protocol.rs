//! The JSON messages that cross the boundary. The host (portico-core) uses these same types, so
//! both sides agree by construction. Fields added later get serde defaults, so an older plugin
//! keeps working with a newer host within one ABI version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who a plugin is and everything it registers, returned once by `describe`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Description {
    /// `[a-z][a-z0-9-]{1,31}`: the URL base `/<id>/`, the store namespace and template prefix.
    pub id: String,
    pub name: String,
    pub version: String,
    pub tabs: Vec<TabDecl>,
    pub menu_buttons: Vec<ButtonDecl>,
    pub settings: Vec<SettingDecl>,
    /// Names of the hooks this plugin handles (`before_login`, ...).
    pub hooks: Vec<String>,
    /// New hook points this plugin declares; it fires them with `Host::run_hook`, and any
    /// plugin may handle them.
    pub declares_hooks: Vec<HookDecl>,
    /// Templates by name; the host serves them as `<id>/<name>` through the theme chain.
    pub templates: BTreeMap<String, String>,
    /// Fluent messages by language (`en`, `cs`).
    pub translations: BTreeMap<String, String>,
}

/// A tab in the portal menu, linking to `path` (default `/<id>/`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TabDecl {
    pub id: String,
    /// Message id of the title in the plugin's translations.
    pub title_key: String,
    pub icon: String,
    pub order: i32,
    /// Path under the plugin's base, e.g. `/` (the default) or `/history`.
    pub path: String,
    /// Setting keys that must all be "on" (a true yes/no, a non-empty text, a non-zero number)
    /// for the client's invoice group; empty means always shown.
    pub visible_when: Vec<String>,
}

/// A menu button linking to the address held in a setting (hidden while it is empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ButtonDecl {
    pub id: String,
    pub title_key: String,
    pub icon: String,
    pub order: i32,
    pub href_setting: String,
    pub external: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    Bool,
    #[default]
    Text,
    Int,
    Url,
    Email,
    Choice,
}

/// A setting the plugin declares; operators change it with `portico settings set`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingDecl {
    pub key: String,
    pub kind: SettingKind,
    pub default: Value,
    pub description: String,
    pub per_invoice_group: bool,
    /// Bounds of an `int`.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Words of a `choice`.
    pub choices: Vec<String>,
}

/// A hook point a plugin declares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HookDecl {
    pub name: String,
    pub description: String,
    /// Field name → description of the event's fields.
    pub fields: BTreeMap<String, String>,
    /// Fields a `before_*` handler may change.
    pub amendable: Vec<String>,
}

/// The logged-in client as plugins see them: no credential of any kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientView {
    pub id: u64,
    pub number: String,
    pub username: Option<String>,
    pub name: String,
    pub company: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub invoice_group_id: u64,
    pub language: Option<String>,
}

/// One call from the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // built once per call and serialised at once
pub enum Call {
    Page(PageRequest),
    Hook(HookRequest),
}

/// The reply to a [`Call`]; `Error` is also what the SDK answers when the plugin panicked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallReply {
    Page(PageReply),
    Hook(HookReply),
    Error(String),
}

/// A request for a page under `/<id>/`, made by a logged-in client.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PageRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path below the plugin's base, starting with `/` (`/` for `/<id>/`).
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Fields of a posted form (`application/x-www-form-urlencoded`); the host has already
    /// checked its CSRF token and origin.
    pub form: BTreeMap<String, String>,
    pub client: ClientView,
    /// `en` or `cs`.
    pub lang: String,
    /// The plugin's own settings as they apply to the client's invoice group.
    pub settings: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageReply {
    /// Render one of the plugin's templates inside the portal shell; the context is the
    /// template's `page`. `tab` marks a menu entry active.
    Render {
        template: String,
        #[serde(default)]
        context: Value,
        #[serde(default)]
        tab: Option<String>,
        #[serde(default)]
        status: Option<u16>,
    },
    /// Send the browser elsewhere (a path inside the portal).
    Redirect { to: String },
    /// Answer with the themed error page of this status (400-599).
    Status { code: u16 },
}

/// A hook handled by the plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HookRequest {
    pub hook: String,
    pub event: Value,
    /// The plugin's own settings, for the invoice group of the event's client when it has one.
    pub settings: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookReply {
    /// Go on, with the event as the handler left it (amendments included); no event when the
    /// handler did not change it (the host keeps its own copy: less to encode and read).
    Continue {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Value>,
    },
    /// Refuse the action (only `before_*` hooks can); the message is shown to whoever asked,
    /// in their language when `translations` has it.
    Veto {
        message: String,
        #[serde(default)]
        translations: BTreeMap<String, String>,
    },
}

/// A request from the plugin to the host, about its own store namespace only. Tree names are
/// the plugin's own (`tickets`); the host files them under `<id>:tickets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostRequest {
    Get {
        tree: String,
        key: String,
    },
    /// All entries whose key starts with `prefix`, in key order.
    Scan {
        tree: String,
        prefix: String,
    },
    /// Fires a hook this plugin declared (`declares_hooks`); every handler runs, in the usual
    /// order. Answered with `Hook`.
    RunHook {
        hook: String,
        event: Value,
    },
    /// Writes (a `None` value deletes) in one atomic, flushed step. When `expect` is given,
    /// the writes happen only if each listed key still holds the listed value (`None`: absent)
    /// — a compare-and-swap for counters, quotas and single-use codes; otherwise the reply is
    /// `Conflict` and nothing is written.
    Write {
        changes: Vec<Change>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expect: Vec<Change>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub tree: String,
    pub key: String,
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostReply {
    Value(Option<Value>),
    Entries(Vec<(String, Value)>),
    Done,
    /// A conditional write found other values than expected; nothing was written.
    Conflict,
    /// The outcome of `RunHook`: the event as the handlers left it, or the veto.
    Hook(HookReply),
    Error(String),
}
