//! What plugins register into: tabs, menu buttons, settings, hooks, routes, templates, static
//! assets, translations, migrations and operator commands. Compiled-in plugins are listed in one
//! place in the binary, dynamic ones are loaded from the plugin folder; the registry checks every
//! contribution against the rules below and is frozen before the server starts.
//!
//! Rules: a plugin id matches `[a-z][a-z0-9-]{1,31}` and is unique; routes are mounted only under
//! `/<id>/` and tabs link there; templates are named `<id>/<name>` and static files served under
//! `/static/<id>/`, so no plugin replaces core's or another plugin's (themes still override
//! everything); tab, button, setting, hook and command names are unique; every handled hook is
//! declared by someone.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hooks::{Handler, HookDef, Hooks, Veto};
use crate::model::Client;
use crate::settings::{SettingDef, Settings};
use crate::store::Migration;

/// Who a plugin is.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `[a-z][a-z0-9-]{1,31}`; also the plugin's URL base (`/<id>/`), store namespace
    /// (`<id>:` trees), template prefix (`<id>/`) and static prefix (`/static/<id>/`).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
}

/// A compiled-in plugin.
pub trait Plugin: Send + Sync {
    fn manifest(&self) -> Manifest;
    fn register(&self, registrar: &mut Registrar);
}

/// What a visibility rule may look at: the logged-in client, the settings that apply to them,
/// and (read-only) the store namespace of the plugin whose tab or button is being decided.
pub struct ViewerCtx<'a> {
    pub client: &'a Client,
    pub(crate) settings: &'a Settings,
    pub(crate) store: &'a crate::store::Store,
    pub(crate) owner: &'a str,
}

impl<'a> ViewerCtx<'a> {
    pub(crate) fn new(
        client: &'a Client,
        settings: &'a Settings,
        store: &'a crate::store::Store,
    ) -> Self {
        ViewerCtx {
            client,
            settings,
            store,
            owner: "core",
        }
    }

    /// The same viewer, as seen by the rule of `owner`'s tab or button.
    pub(crate) fn for_owner<'b>(&'b self, owner: &'b str) -> ViewerCtx<'b> {
        ViewerCtx {
            client: self.client,
            settings: self.settings,
            store: self.store,
            owner,
        }
    }

    /// The deciding plugin's own store namespace (e.g. "is there a department for requests"),
    /// for reading.
    pub fn store(&self) -> crate::plugin::Namespace {
        crate::plugin::Namespace::new(self.store.clone(), self.owner)
    }

    /// The viewer's services with their tariffs (read-only; only this client's).
    pub fn services(&self) -> crate::Result<Vec<crate::plugin::ServiceWithTariff>> {
        crate::plugin::ClientData::new(self.store, self.client, chrono::Utc::now().date_naive())
            .services()
    }

    /// A yes/no setting as it applies to this client's invoice group.
    pub fn flag(&self, key: &str) -> bool {
        self.settings.bool(key, Some(self.client.invoice_group_id))
    }
    pub fn text(&self, key: &str) -> String {
        self.settings.text(key, Some(self.client.invoice_group_id))
    }
    /// Whether a setting is "on": a true yes/no, a non-empty text, a non-zero number.
    pub fn is_on(&self, key: &str) -> bool {
        is_on(&self.settings.value(key, Some(self.client.invoice_group_id)))
    }
}

pub(crate) fn is_on(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => !s.trim().is_empty(),
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

pub type Visibility = Arc<dyn Fn(&ViewerCtx<'_>) -> bool + Send + Sync>;
/// Computes a menu button's link for a viewer; `None` hides the button.
pub type LinkRule = Arc<dyn Fn(&ViewerCtx<'_>) -> Option<String> + Send + Sync>;

/// A tab in the portal menu, served by a route of its owner.
#[derive(Clone)]
pub struct Tab {
    pub id: &'static str,
    /// Fluent message id of the title.
    pub title_key: &'static str,
    /// Name of an icon in the theme's icon set.
    pub icon: &'static str,
    /// Lower comes first.
    pub order: i32,
    /// Absolute path the tab links to (a plugin's tabs link under `/<id>/`).
    pub path: String,
    pub visible: Visibility,
}

impl Tab {
    pub fn new(id: &'static str, title_key: &'static str, path: impl Into<String>) -> Self {
        Tab {
            id,
            title_key,
            icon: id,
            order: 100,
            path: path.into(),
            visible: Arc::new(|_| true),
        }
    }
    pub fn icon(mut self, icon: &'static str) -> Self {
        self.icon = icon;
        self
    }
    pub fn order(mut self, order: i32) -> Self {
        self.order = order;
        self
    }
    pub fn visible_when(
        mut self,
        rule: impl Fn(&ViewerCtx<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.visible = Arc::new(rule);
        self
    }
}

/// A button in the menu that links somewhere (often outside the portal, like webmail).
#[derive(Clone)]
pub struct MenuButton {
    pub id: &'static str,
    pub title_key: &'static str,
    pub icon: &'static str,
    pub order: i32,
    /// The link for this viewer, or `None` to hide the button.
    pub href: LinkRule,
    /// Opens in a new browser tab.
    pub external: bool,
}

/// A link in the menu whose label is not a message id but a text of its own (the operator's
/// custom buttons), decided per viewer and language at each request.
#[derive(Debug, Clone)]
pub struct MenuLink {
    pub label: String,
    pub href: String,
    pub order: i32,
    /// Opens in a new browser tab.
    pub external: bool,
}

/// Computes the [`MenuLink`]s for a viewer in a language (`en`, `cs`, ...).
pub type LinksRule = Arc<dyn Fn(&ViewerCtx<'_>, &str) -> Vec<MenuLink> + Send + Sync>;

/// An operator command a plugin adds to `portico`: `portico <name> ARGS...`, run in the
/// portal's process (directly, or through the control socket while the portal runs).
#[derive(Clone)]
pub struct OperatorCommand {
    pub name: &'static str,
    pub about: &'static str,
    pub run: CommandFn,
}

pub type CommandFn =
    Arc<dyn Fn(&crate::plugin::OperatorCtx<'_>, &[String]) -> crate::Result<String> + Send + Sync>;

/// A hook handler that also reads or writes the plugin's own store.
pub type StoreHandlerFn = Arc<
    dyn Fn(&crate::plugin::HookCtx<'_>, &mut serde_json::Value) -> Result<(), Veto> + Send + Sync,
>;

/// A plugin's migration: it sees only the plugin's own namespace.
pub type PluginMigration = fn(&crate::plugin::Namespace) -> crate::Result<()>;

/// A plugin's demo data: run by `portico demo` on a new data folder, after core's demo ISP.
pub type PluginDemo = fn(&crate::plugin::OperatorCtx<'_>) -> crate::Result<()>;

/// A plugin's background worker: `portico serve` runs it on a thread of its own once the
/// portal listens (an outbox sender, say). It should loop until the portal stops.
pub type PluginWorker = fn(crate::plugin::WorkerCtx);

/// Removes what a plugin keeps about one client (by client id) when the client is deleted by an
/// import (`--sync` or an explicit deletion). It runs inside the transaction that deletes the
/// client, so it must do every change through the given transaction and start no other write.
pub type ClientCleanup = fn(&mut crate::plugin::NamespaceTx<'_, '_>, u64) -> crate::Result<()>;

/// Decides a per-service button on the Services page for a viewer and one of their services;
/// `None` hides it for that service.
pub type ServiceLinkRule =
    Arc<dyn Fn(&ViewerCtx<'_>, &crate::plugin::ServiceWithTariff) -> Option<String> + Send + Sync>;

/// A button on one service's card on the Services page (e.g. "Data transferred"), linking into
/// the plugin's pages.
#[derive(Clone)]
pub struct ServiceButton {
    pub id: &'static str,
    pub title_key: &'static str,
    pub order: i32,
    /// The link for this viewer and service, or `None` to hide the button there.
    pub href: ServiceLinkRule,
}

/// Takes a plugin's named section of an import bundle (`"traffic": [...]`): the section's raw
/// JSON text and whether the import is a dry run. Runs after core's records of the same bundle
/// were written (so the services it names exist); returns one line for the import's report.
pub type ImportSectionFn =
    Arc<dyn Fn(&crate::plugin::OperatorCtx<'_>, &str, bool) -> crate::Result<String> + Send + Sync>;

/// A named section of the import bundle that a plugin takes.
#[derive(Clone)]
pub struct ImportSection {
    /// The bundle's key: `[a-z][a-z0-9_]*`, not one of core's sections.
    pub name: &'static str,
    pub run: ImportSectionFn,
}

/// Collects one plugin's contributions.
pub struct Registrar {
    owner: &'static str,
    pub(crate) tabs: Vec<Tab>,
    pub(crate) buttons: Vec<MenuButton>,
    pub(crate) menu_links: Vec<LinksRule>,
    pub(crate) information_buttons: Vec<MenuButton>,
    pub(crate) service_buttons: Vec<ServiceButton>,
    pub(crate) import_sections: Vec<ImportSection>,
    pub(crate) upload_limit: Option<u64>,
    pub(crate) settings: Vec<SettingDef>,
    pub(crate) routes: Vec<rocket::Route>,
    pub(crate) templates: Vec<(String, Cow<'static, str>)>,
    pub(crate) assets: Vec<(String, Cow<'static, [u8]>)>,
    pub(crate) translations: Vec<(&'static str, Cow<'static, str>)>,
    pub(crate) migrations: Vec<Migration>,
    pub(crate) hook_defs: Vec<HookDef>,
    pub(crate) handlers: Vec<(String, Handler)>,
    /// (hook, only if someone declares it, handler): bound to the plugin's store at start.
    pub(crate) store_handlers: Vec<(String, bool, StoreHandlerFn)>,
    pub(crate) commands: Vec<OperatorCommand>,
    pub(crate) demo: Option<PluginDemo>,
    pub(crate) workers: Vec<(&'static str, PluginWorker)>,
    pub(crate) client_cleanup: Option<ClientCleanup>,
}

impl Registrar {
    pub fn new(owner: &'static str) -> Self {
        Registrar {
            owner,
            tabs: Vec::new(),
            buttons: Vec::new(),
            menu_links: Vec::new(),
            information_buttons: Vec::new(),
            service_buttons: Vec::new(),
            import_sections: Vec::new(),
            upload_limit: None,
            settings: Vec::new(),
            routes: Vec::new(),
            templates: Vec::new(),
            assets: Vec::new(),
            translations: Vec::new(),
            migrations: Vec::new(),
            hook_defs: Vec::new(),
            handlers: Vec::new(),
            store_handlers: Vec::new(),
            commands: Vec::new(),
            demo: None,
            workers: Vec::new(),
            client_cleanup: None,
        }
    }

    /// The plugin's id.
    pub fn owner(&self) -> &'static str {
        self.owner
    }

    pub fn tab(&mut self, tab: Tab) {
        self.tabs.push(tab);
    }

    pub fn menu_button(&mut self, button: MenuButton) {
        self.buttons.push(button);
    }

    /// Menu links whose number and labels change at run time (read at each request), such as
    /// the operator's custom buttons; `rule` returns none to show nothing.
    pub fn menu_links(
        &mut self,
        rule: impl Fn(&ViewerCtx<'_>, &str) -> Vec<MenuLink> + Send + Sync + 'static,
    ) {
        self.menu_links.push(Arc::new(rule));
    }

    /// A button (a link) in the personal data of the Information tab, e.g. "Send support
    /// request"; `href` returning `None` hides it for that viewer.
    pub fn information_button(&mut self, button: MenuButton) {
        self.information_buttons.push(button);
    }

    /// A button on a service's card on the Services page; `href` decides per service.
    pub fn service_button(&mut self, button: ServiceButton) {
        self.service_buttons.push(button);
    }

    /// Takes the bundle section `name` of `portico import` (see [`ImportSection`]).
    pub fn import_section(
        &mut self,
        name: &'static str,
        run: impl Fn(&crate::plugin::OperatorCtx<'_>, &str, bool) -> crate::Result<String>
        + Send
        + Sync
        + 'static,
    ) {
        self.import_sections.push(ImportSection {
            name,
            run: Arc::new(run),
        });
    }

    /// Lets the plugin's routes take `multipart/form-data` bodies (file uploads) up to `bytes`,
    /// read with [`crate::plugin::CheckedUpload`]. Other forms keep core's small limit.
    pub fn upload_limit(&mut self, bytes: u64) {
        self.upload_limit = Some(bytes);
    }

    pub fn setting(&mut self, mut def: SettingDef) {
        def.owner = self.owner;
        self.settings.push(def);
    }

    /// Routes mounted under `/<plugin id>`.
    pub fn routes(&mut self, routes: Vec<rocket::Route>) {
        self.routes.extend(routes);
    }

    /// Routes mounted under `/<plugin id>` whose `GET` pages may be answered from the page
    /// cache ([`crate::web::page_cache`]): a page viewed again is sent as rendered while no
    /// write to the store, theme or script change and no new day came between, for at most
    /// 10 seconds. Only for pages made from what the plugin API reads (the client's data, the
    /// plugin's store and settings) and rendered with `Page::render`; a page that shows
    /// anything else (the plugin's own memory, the time of day) takes [`Registrar::routes`].
    pub fn cached_routes(&mut self, routes: Vec<rocket::Route>) {
        self.routes.extend(crate::web::page_cache::cached(routes));
    }

    /// A default template, named `<plugin id>/<name>`; themes override it with
    /// `templates/<plugin id>/<name>`.
    pub fn template(&mut self, name: &str, source: impl Into<Cow<'static, str>>) {
        self.templates.push((name.to_string(), source.into()));
    }

    /// A default static file served under `/static/<plugin id>/<path>`; themes override it with
    /// `static/<plugin id>/<path>`.
    pub fn asset(&mut self, path: &str, bytes: impl Into<Cow<'static, [u8]>>) {
        self.assets.push((path.to_string(), bytes.into()));
    }

    /// Fluent messages for one language (`en`, `cs`, ...).
    pub fn translations(&mut self, lang: &'static str, ftl: impl Into<Cow<'static, str>>) {
        self.translations.push((lang, ftl.into()));
    }

    /// A one-time change to the plugin's own namespace, run once per data folder in number
    /// order.
    pub fn migration(&mut self, number: u32, description: &'static str, run: PluginMigration) {
        self.migrations.push(Migration {
            owner: self.owner,
            number,
            description,
            run: crate::store::MigrationFn::Plugin(run),
        });
    }

    pub(crate) fn core_migration(
        &mut self,
        number: u32,
        description: &'static str,
        run: fn(&crate::store::Store) -> crate::Result<()>,
    ) {
        self.migrations.push(Migration {
            owner: self.owner,
            number,
            description,
            run: crate::store::MigrationFn::Core(run),
        });
    }

    /// Declares a new hook point (e.g. the helpdesk's `before_ticket_create`), which the plugin
    /// fires with `run_hook` and anyone may handle.
    pub fn declare_hook(&mut self, mut def: HookDef) {
        def.owner = self.owner.to_string();
        self.hook_defs.push(def);
    }

    /// Handles a hook on its typed event. An event that does not decode as `E` is logged and
    /// the handler skipped.
    pub fn on<E: Serialize + DeserializeOwned + 'static>(
        &mut self,
        hook: &str,
        f: impl Fn(&mut E) -> Result<(), Veto> + Send + Sync + 'static,
    ) {
        let owner = self.owner;
        let hook_name = hook.to_string();
        self.on_json(hook, move |value| {
            let mut event: E = match serde_json::from_value(value.clone()) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(hook = %hook_name, plugin = owner, "event does not decode, handler skipped: {e}");
                    return Ok(());
                }
            };
            let outcome = f(&mut event);
            if let Ok(v) = serde_json::to_value(&event) {
                *value = v;
            }
            outcome
        });
    }

    /// Handles a hook on the JSON form of its event.
    pub fn on_json(
        &mut self,
        hook: &str,
        f: impl Fn(&mut serde_json::Value) -> Result<(), Veto> + Send + Sync + 'static,
    ) {
        self.handlers.push((
            hook.to_string(),
            Handler {
                owner: self.owner.to_string(),
                f: Arc::new(f),
            },
        ));
    }

    /// Handles a hook on its JSON event with the plugin's own store at hand (e.g. to add what it
    /// holds about a client to the GDPR plugin's `gdpr_export`). With `only_if_declared`, a hook
    /// nobody declares (its plugin is not built in) is skipped instead of stopping the start.
    pub fn on_json_with_store(
        &mut self,
        hook: &str,
        only_if_declared: bool,
        f: impl Fn(&crate::plugin::Namespace, &mut serde_json::Value) -> Result<(), Veto>
        + Send
        + Sync
        + 'static,
    ) {
        self.store_handlers.push((
            hook.to_string(),
            only_if_declared,
            Arc::new(move |ctx, event| f(ctx.store(), event)),
        ));
    }

    /// Handles a hook on its JSON event with the plugin's store, settings (its own and core's)
    /// and the clock at hand: e.g. the SMS plugin queueing the SMS of a helpdesk reply. With
    /// `only_if_declared` as for [`Registrar::on_json_with_store`].
    pub fn on_json_with_ctx(
        &mut self,
        hook: &str,
        only_if_declared: bool,
        f: impl Fn(&crate::plugin::HookCtx<'_>, &mut serde_json::Value) -> Result<(), Veto>
        + Send
        + Sync
        + 'static,
    ) {
        self.store_handlers
            .push((hook.to_string(), only_if_declared, Arc::new(f)));
    }

    /// An operator command `portico <name> ARGS...`.
    pub fn command(&mut self, command: OperatorCommand) {
        self.commands.push(command);
    }

    /// Demo data of the plugin: `portico demo` runs it on a new data folder, after core's demo
    /// ISP is in place (so it may look up the demo clients).
    pub fn demo(&mut self, seed: PluginDemo) {
        self.demo = Some(seed);
    }

    /// A background worker (named for logs and the thread): `portico serve` starts it on its
    /// own thread when the portal listens; commands and tests without a server do not.
    pub fn worker(&mut self, name: &'static str, run: PluginWorker) {
        self.workers.push((name, run));
    }

    /// What to remove from the plugin's namespace when a client is deleted by an import (see
    /// [`ClientCleanup`]). A plugin that keeps data by client id registers one, so a deleted
    /// client leaves nothing behind.
    pub fn on_client_deleted(&mut self, cleanup: ClientCleanup) {
        self.client_cleanup = Some(cleanup);
    }
}

/// How a plugin came in.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PluginKind {
    Core,
    CompiledIn,
    Dynamic { file: String },
}

/// What the registry knows about one plugin, for `portico plugins list`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    /// What it registered, by kind: `("tabs", "outages")`, `("handles hooks", "before_login")`…
    pub registered: Vec<(&'static str, String)>,
}

/// A dynamic library that was not loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub file: String,
    pub reason: String,
}

/// Everything registered, merged in registration order.
#[derive(Default)]
pub struct Registry {
    pub plugins: Vec<PluginInfo>,
    pub refused: Vec<Refusal>,
    pub tabs: Vec<(&'static str, Tab)>,
    pub buttons: Vec<(&'static str, MenuButton)>,
    /// (owner, rule) of menu links decided at each request.
    pub menu_links: Vec<(&'static str, LinksRule)>,
    /// (owner, button) on the Information tab's personal data.
    pub information_buttons: Vec<(&'static str, MenuButton)>,
    /// (owner, button) on each service of the Services page.
    pub service_buttons: Vec<(&'static str, ServiceButton)>,
    /// (owner, section) of the import bundle.
    pub import_sections: Vec<(&'static str, ImportSection)>,
    /// (owner, largest multipart body its routes accept).
    pub upload_limits: Vec<(&'static str, u64)>,
    pub settings: Vec<SettingDef>,
    /// (mount base, routes)
    pub(crate) routes: Vec<(String, Vec<rocket::Route>)>,
    /// (owner, template name as served, source)
    pub templates: Vec<(&'static str, String, Cow<'static, str>)>,
    /// (path under /static/, bytes)
    pub assets: Vec<(String, Cow<'static, [u8]>)>,
    pub translations: Vec<(&'static str, Cow<'static, str>)>,
    pub migrations: Vec<Migration>,
    /// Shared with dynamic plugins, which fire the hooks they declare through the host.
    pub hooks: Arc<Hooks>,
    pub commands: Vec<(&'static str, OperatorCommand)>,
    /// (owner, demo data), in registration order.
    pub demos: Vec<(&'static str, PluginDemo)>,
    /// (owner, name, worker), in registration order.
    pub workers: Vec<(&'static str, &'static str, PluginWorker)>,
    /// (owner, what to remove when a client is deleted), in registration order.
    pub client_cleanups: Vec<(&'static str, ClientCleanup)>,
    /// Handlers wait here until every plugin has declared its hooks.
    pending_handlers: Vec<(String, Handler)>,
    /// Handlers that need their plugin's store wait for it here.
    pending_store_handlers: Vec<(String, &'static str, bool, StoreHandlerFn)>,
    /// Settings and clock for those handlers, set once the portal has loaded its settings.
    hook_env: Arc<std::sync::OnceLock<crate::plugin::HookEnv>>,
}

/// One entry of the built menu.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MenuItem {
    pub id: &'static str,
    pub title_key: &'static str,
    pub icon: &'static str,
    pub href: String,
    pub external: bool,
    pub active: bool,
    /// The title itself, for a link with a text of its own (a custom button); `title_key` is
    /// then empty.
    pub label: Option<String>,
}

/// Names of the `portico` commands core has; plugin commands must not take them.
pub const CORE_COMMANDS: &[&str] = &[
    "demo",
    "serve",
    "import",
    "settings",
    "client",
    "maintenance",
    "suspend",
    "resume",
    "menu",
    "files",
    "changes",
    "theme",
    "mail",
    "audit",
    "plugins",
    "hooks",
    "help",
];

pub fn valid_plugin_id(id: &str) -> bool {
    let b = id.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl Registry {
    /// Checks a registrar against the rules and merges it. On a violation nothing of the plugin
    /// is merged and the error names the plugin and the rule.
    pub fn add(&mut self, manifest: Manifest, kind: PluginKind, r: Registrar) -> crate::Result<()> {
        self.check(&manifest, &kind, &r)
            .map_err(|rule| crate::Error::Internal(format!("plugin `{}`: {rule}", manifest.id)))?;
        let owner = manifest.id;
        let is_core = matches!(kind, PluginKind::Core);
        let list = |items: Vec<String>| items.join(", ");
        let mut registered = vec![
            (
                "tabs",
                list(r.tabs.iter().map(|t| t.id.to_string()).collect()),
            ),
            (
                "menu buttons",
                list(r.buttons.iter().map(|b| b.id.to_string()).collect()),
            ),
            (
                "information buttons",
                list(
                    r.information_buttons
                        .iter()
                        .map(|b| b.id.to_string())
                        .collect(),
                ),
            ),
            (
                "service buttons",
                list(r.service_buttons.iter().map(|b| b.id.to_string()).collect()),
            ),
            (
                "import sections",
                list(
                    r.import_sections
                        .iter()
                        .map(|s| s.name.to_string())
                        .collect(),
                ),
            ),
            (
                "settings",
                list(r.settings.iter().map(|s| s.key.to_string()).collect()),
            ),
            (
                "declares hooks",
                list(r.hook_defs.iter().map(|h| h.name.clone()).collect()),
            ),
            (
                "handles hooks",
                list(
                    r.handlers
                        .iter()
                        .map(|(h, _)| h.clone())
                        .chain(r.store_handlers.iter().map(|(h, _, _)| h.clone()))
                        .collect(),
                ),
            ),
            (
                "commands",
                list(
                    r.commands
                        .iter()
                        .map(|c| match c.about {
                            "" => c.name.to_string(),
                            about => format!("{} ({about})", c.name),
                        })
                        .collect(),
                ),
            ),
            (
                "templates",
                list(
                    r.templates
                        .iter()
                        .map(|(n, _)| {
                            if is_core {
                                n.clone()
                            } else {
                                format!("{owner}/{n}")
                            }
                        })
                        .collect(),
                ),
            ),
        ];
        if !r.routes.is_empty() {
            registered.push((
                "pages",
                format!("{} route(s) under /{owner}/", r.routes.len()),
            ));
        }
        registered.retain(|(_, v)| !v.is_empty());
        self.plugins.push(PluginInfo {
            id: owner.to_string(),
            name: manifest.name.to_string(),
            version: manifest.version.to_string(),
            kind,
            registered,
        });
        self.tabs.extend(r.tabs.into_iter().map(|t| (owner, t)));
        self.buttons
            .extend(r.buttons.into_iter().map(|b| (owner, b)));
        self.menu_links
            .extend(r.menu_links.into_iter().map(|l| (owner, l)));
        self.information_buttons
            .extend(r.information_buttons.into_iter().map(|b| (owner, b)));
        self.service_buttons
            .extend(r.service_buttons.into_iter().map(|b| (owner, b)));
        self.import_sections
            .extend(r.import_sections.into_iter().map(|s| (owner, s)));
        if let Some(limit) = r.upload_limit {
            self.upload_limits.push((owner, limit));
        }
        self.settings.extend(r.settings);
        if !r.routes.is_empty() {
            self.routes.push((format!("/{owner}"), r.routes));
        }
        for (name, src) in r.templates {
            let served = if is_core {
                name
            } else {
                format!("{owner}/{name}")
            };
            self.templates.push((owner, served, src));
        }
        for (path, bytes) in r.assets {
            let served = if is_core {
                path
            } else {
                format!("{owner}/{path}")
            };
            self.assets.push((served, bytes));
        }
        self.translations.extend(r.translations);
        self.migrations.extend(r.migrations);
        for def in r.hook_defs {
            self.hooks_mut()?
                .declare(def)
                .map_err(|e| crate::Error::Internal(format!("plugin `{owner}`: {e}")))?;
        }
        self.pending_handlers.extend(r.handlers);
        self.pending_store_handlers.extend(
            r.store_handlers
                .into_iter()
                .map(|(hook, optional, f)| (hook, owner, optional, f)),
        );
        self.commands
            .extend(r.commands.into_iter().map(|c| (owner, c)));
        if let Some(cleanup) = r.client_cleanup {
            self.client_cleanups.push((owner, cleanup));
        }
        if let Some(seed) = r.demo {
            self.demos.push((owner, seed));
        }
        self.workers
            .extend(r.workers.into_iter().map(|(name, run)| (owner, name, run)));
        Ok(())
    }

    fn check(&self, m: &Manifest, kind: &PluginKind, r: &Registrar) -> Result<(), String> {
        let is_core = matches!(kind, PluginKind::Core);
        if !is_core && !valid_plugin_id(m.id) {
            return Err(format!(
                "the id `{}` does not match [a-z][a-z0-9-]{{1,31}}",
                m.id
            ));
        }
        if r.owner != m.id {
            return Err(format!(
                "registered as `{}` but its manifest says `{}`",
                r.owner, m.id
            ));
        }
        if self.plugins.iter().any(|p| p.id == m.id) {
            return Err("a plugin with this id is registered already".into());
        }
        let base = format!("/{}/", m.id);
        for t in &r.tabs {
            if let Some((o, _)) = self.tabs.iter().find(|(_, x)| x.id == t.id) {
                return Err(format!("tab id `{}` is registered by `{o}` already", t.id));
            }
            if !(is_core || t.path.starts_with(&base)) {
                return Err(format!(
                    "tab `{}` links to `{}`, outside the plugin's base {base}",
                    t.id, t.path
                ));
            }
        }
        for b in &r.buttons {
            if self.buttons.iter().any(|(_, x)| x.id == b.id) {
                return Err(format!("menu button id `{}` is registered already", b.id));
            }
        }
        for b in &r.service_buttons {
            if self.service_buttons.iter().any(|(_, x)| x.id == b.id)
                || r.service_buttons.iter().filter(|x| x.id == b.id).count() > 1
            {
                return Err(format!(
                    "service button id `{}` is registered already",
                    b.id
                ));
            }
        }
        for s in &r.import_sections {
            let ok = s
                .name
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_lowercase)
                && s.name.len() <= 32
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(format!(
                    "import section `{}` is not a name ([a-z][a-z0-9_]*, at most 32)",
                    s.name
                ));
            }
            if crate::import::COLLECTIONS.contains(&s.name)
                || ["format", "delete", "documents"].contains(&s.name)
                || self.import_sections.iter().any(|(_, x)| x.name == s.name)
                || r.import_sections
                    .iter()
                    .filter(|x| x.name == s.name)
                    .count()
                    > 1
            {
                return Err(format!("import section `{}` is taken already", s.name));
            }
        }
        for b in &r.information_buttons {
            if self.information_buttons.iter().any(|(_, x)| x.id == b.id)
                || r.information_buttons
                    .iter()
                    .filter(|x| x.id == b.id)
                    .count()
                    > 1
            {
                return Err(format!(
                    "Information button id `{}` is registered already",
                    b.id
                ));
            }
        }
        for s in &r.settings {
            if let Some(prev) = self
                .settings
                .iter()
                .chain(r.settings.iter().filter(|x| !std::ptr::eq(*x, s)))
                .find(|x| x.key == s.key || x.aliases.contains(&s.key))
            {
                return Err(format!(
                    "setting `{}` is declared by `{}` already",
                    s.key, prev.owner
                ));
            }
        }
        for h in &r.hook_defs {
            if self.hooks.definition(&h.name).is_some()
                || r.hook_defs.iter().filter(|x| x.name == h.name).count() > 1
            {
                return Err(format!("hook `{}` is declared already", h.name));
            }
            if !valid_hook_name(&h.name) {
                return Err(format!(
                    "hook name `{}` is not lowercase words joined by _",
                    h.name
                ));
            }
        }
        for c in &r.commands {
            if CORE_COMMANDS.contains(&c.name)
                || self.commands.iter().any(|(_, x)| x.name == c.name)
            {
                return Err(format!("operator command `{}` is taken", c.name));
            }
        }
        for (name, _) in &r.templates {
            if crate::theme::safe_relative(name).is_none() {
                return Err(format!(
                    "template name `{name}` is not a plain relative path"
                ));
            }
        }
        for (path, _) in &r.assets {
            if crate::theme::safe_relative(path).is_none() {
                return Err(format!("static file `{path}` is not a plain relative path"));
            }
        }
        Ok(())
    }

    pub fn register(&mut self, plugin: &dyn Plugin) -> crate::Result<()> {
        let manifest = plugin.manifest();
        let mut r = Registrar::new(manifest.id);
        plugin.register(&mut r);
        self.add(manifest, PluginKind::CompiledIn, r)
    }

    /// The hooks while the registry is being built (nobody shares them yet).
    fn hooks_mut(&mut self) -> crate::Result<&mut Hooks> {
        Arc::get_mut(&mut self.hooks)
            .ok_or_else(|| crate::Error::Internal("hooks changed after they were shared".into()))
    }

    /// Gives the handlers that asked for it their plugin's store (before [`Registry::freeze`]).
    /// A handler that is only wanted if its hook is declared is dropped when nobody declares it.
    pub fn bind_store(&mut self, store: &crate::store::Store) {
        for (hook, owner, optional, f) in std::mem::take(&mut self.pending_store_handlers) {
            if optional && self.hooks.definition(&hook).is_none() {
                tracing::debug!(plugin = owner, hook = %hook, "hook not declared here; handler left out");
                continue;
            }
            let ns = crate::plugin::Namespace::new(store.clone(), owner);
            let env = self.hook_env.clone();
            self.pending_handlers.push((
                hook,
                Handler {
                    owner: owner.to_string(),
                    f: Arc::new(move |event| {
                        f(
                            &crate::plugin::HookCtx {
                                ns: &ns,
                                env: env.get(),
                            },
                            event,
                        )
                    }),
                },
            ));
        }
    }

    /// Gives the store handlers the portal's settings and clock (once they are loaded).
    pub fn attach_hook_env(&self, settings: Arc<Settings>, clock: crate::portal::Clock) {
        let _ = self.hook_env.set(crate::plugin::HookEnv {
            settings,
            clock,
            hooks: Arc::downgrade(&self.hooks),
        });
    }

    /// Binds every handler to its hook once all plugins have declared theirs.
    pub fn freeze(&mut self) -> crate::Result<()> {
        for (hook, handler) in std::mem::take(&mut self.pending_handlers) {
            let owner = handler.owner.clone();
            self.hooks_mut()?
                .add_handler(&hook, handler)
                .map_err(|e| crate::Error::Internal(format!("plugin `{owner}`: {e}")))?;
        }
        Ok(())
    }

    /// The menu for one viewer: visible tabs and buttons, ordered, with the current one marked.
    pub fn menu(&self, viewer: &ViewerCtx<'_>, lang: &str, active_tab: &str) -> Vec<MenuItem> {
        let mut items: Vec<(i32, MenuItem)> = self
            .tabs
            .iter()
            .filter(|(owner, t)| (t.visible)(&viewer.for_owner(owner)))
            .map(|(_, t)| {
                (
                    t.order,
                    MenuItem {
                        id: t.id,
                        title_key: t.title_key,
                        icon: t.icon,
                        href: t.path.clone(),
                        external: false,
                        active: t.id == active_tab,
                        label: None,
                    },
                )
            })
            .collect();
        for (owner, b) in &self.buttons {
            if let Some(href) = (b.href)(&viewer.for_owner(owner)) {
                items.push((
                    b.order,
                    MenuItem {
                        id: b.id,
                        title_key: b.title_key,
                        icon: b.icon,
                        href,
                        external: b.external,
                        active: false,
                        label: None,
                    },
                ));
            }
        }
        for (owner, rule) in &self.menu_links {
            for link in rule(&viewer.for_owner(owner), lang) {
                items.push((
                    link.order,
                    MenuItem {
                        id: "custom",
                        title_key: "",
                        icon: "link",
                        href: link.href,
                        external: link.external,
                        active: false,
                        label: Some(link.label),
                    },
                ));
            }
        }
        items.sort_by_key(|(order, _)| *order);
        items.into_iter().map(|(_, i)| i).collect()
    }

    /// The Information tab's buttons for one viewer, ordered.
    pub fn information_buttons(&self, viewer: &ViewerCtx<'_>) -> Vec<MenuItem> {
        let mut items: Vec<(i32, MenuItem)> = self
            .information_buttons
            .iter()
            .filter_map(|(owner, b)| {
                let href = (b.href)(&viewer.for_owner(owner))?;
                Some((
                    b.order,
                    MenuItem {
                        id: b.id,
                        title_key: b.title_key,
                        icon: b.icon,
                        href,
                        external: b.external,
                        active: false,
                        label: None,
                    },
                ))
            })
            .collect();
        items.sort_by_key(|(order, _)| *order);
        items.into_iter().map(|(_, i)| i).collect()
    }

    /// The buttons of one service's card on the Services page for one viewer, ordered.
    pub fn service_buttons(
        &self,
        viewer: &ViewerCtx<'_>,
        service: &crate::plugin::ServiceWithTariff,
    ) -> Vec<MenuItem> {
        let mut items: Vec<(i32, MenuItem)> = self
            .service_buttons
            .iter()
            .filter_map(|(owner, b)| {
                let href = (b.href)(&viewer.for_owner(owner), service)?;
                Some((
                    b.order,
                    MenuItem {
                        id: b.id,
                        title_key: b.title_key,
                        icon: b.id,
                        href,
                        external: false,
                        active: false,
                        label: None,
                    },
                ))
            })
            .collect();
        items.sort_by_key(|(order, _)| *order);
        items.into_iter().map(|(_, i)| i).collect()
    }

    /// The largest multipart body accepted under `path`: a plugin's upload limit under its
    /// base, else `None` (core's form limit).
    pub fn upload_limit_for(&self, path: &str) -> Option<u64> {
        let first = path.trim_start_matches('/').split('/').next()?;
        self.upload_limits
            .iter()
            .find(|(owner, _)| *owner == first)
            .map(|(_, l)| *l)
    }
}

fn valid_hook_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && !name.starts_with('_')
}

/// Starts every plugin's background workers, each on a thread of its own (`portico serve`).
pub fn start_workers(portal: &std::sync::Arc<crate::portal::Portal>) {
    for (owner, name, run) in portal.registry.workers.iter().copied() {
        let ctx = crate::plugin::WorkerCtx {
            portal: portal.clone(),
            owner,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("{owner}-{name}"))
            .spawn(move || run(ctx));
        if let Err(e) = spawned {
            tracing::error!(plugin = owner, worker = name, "worker not started: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &'static str) -> Manifest {
        Manifest {
            id,
            name: "Test",
            version: "0",
        }
    }

    #[test]
    fn ids_follow_the_rule() {
        for good in ["ab", "helpdesk", "outage-notice", "a1-2"] {
            assert!(valid_plugin_id(good), "{good}");
        }
        for bad in ["a", "1ab", "Ab", "a_b", "-ab", &"a".repeat(33), "ab/c"] {
            assert!(!valid_plugin_id(bad), "{bad}");
        }
    }

    #[test]
    fn violations_name_the_plugin_and_the_rule() {
        let mut reg = Registry::default();
        let e = reg
            .add(
                manifest("Bad_Id"),
                PluginKind::CompiledIn,
                Registrar::new("Bad_Id"),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "plugin `Bad_Id`: the id `Bad_Id` does not match [a-z][a-z0-9-]{1,31}"
        );

        let mut r = Registrar::new("helpdesk");
        r.tab(Tab::new("tickets", "t", "/invoicing/"));
        let e = reg
            .add(manifest("helpdesk"), PluginKind::CompiledIn, r)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "plugin `helpdesk`: tab `tickets` links to `/invoicing/`, outside the plugin's base /helpdesk/"
        );

        let mut a = Registrar::new("aa");
        a.setting(SettingDef::bool("shared_key", false, "x"));
        reg.add(manifest("aa"), PluginKind::CompiledIn, a)
            .expect("first");
        let mut b = Registrar::new("bb");
        b.setting(SettingDef::bool("shared_key", true, "y"));
        let e = reg
            .add(manifest("bb"), PluginKind::CompiledIn, b)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "plugin `bb`: setting `shared_key` is declared by `aa` already"
        );
        // Nothing of the refused plugin was merged.
        assert!(reg.plugins.iter().all(|p| p.id != "bb"));

        let button = || MenuButton {
            id: "ask",
            title_key: "t",
            icon: "i",
            order: 1,
            href: Arc::new(|_| None),
            external: false,
        };
        let mut d = Registrar::new("dd");
        d.information_button(button());
        reg.add(manifest("dd"), PluginKind::CompiledIn, d)
            .expect("first button");
        let mut e = Registrar::new("ee");
        e.information_button(button());
        let err = reg
            .add(manifest("ee"), PluginKind::CompiledIn, e)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "plugin `ee`: Information button id `ask` is registered already"
        );

        let mut c = Registrar::new("cc");
        c.command(OperatorCommand {
            name: "settings",
            about: "",
            run: Arc::new(|_, _| Ok(String::new())),
        });
        let e = reg
            .add(manifest("cc"), PluginKind::CompiledIn, c)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "plugin `cc`: operator command `settings` is taken");
    }

    #[test]
    fn plugin_templates_and_assets_are_namespaced() {
        let mut reg = Registry::default();
        let mut r = Registrar::new("helpdesk");
        r.template("layout.html", "mine");
        r.asset("style.css", &b"x"[..]);
        reg.add(manifest("helpdesk"), PluginKind::CompiledIn, r)
            .expect("add");
        assert_eq!(reg.templates[0].1, "helpdesk/layout.html");
        assert_eq!(reg.assets[0].0, "helpdesk/style.css");
    }

    #[test]
    fn a_store_handler_of_an_absent_plugins_hook_may_be_left_out() {
        let store = crate::store::Store::in_memory();
        let mut reg = Registry::default();
        let mut r = Registrar::new("aa");
        r.on_json_with_store("gdpr_export", true, |_, _| Ok(()));
        reg.add(manifest("aa"), PluginKind::CompiledIn, r)
            .expect("add");
        reg.bind_store(&store);
        reg.freeze().expect("left out, not an error");
        assert!(!reg.hooks.is_handled("gdpr_export"));

        let mut reg = Registry::default();
        let mut r = Registrar::new("aa");
        r.on_json_with_store("gdpr_export", false, |_, _| Ok(()));
        reg.add(manifest("aa"), PluginKind::CompiledIn, r)
            .expect("add");
        reg.bind_store(&store);
        let e = reg.freeze().unwrap_err().to_string();
        assert!(e.contains("`gdpr_export`, which nobody declares"), "{e}");
    }

    #[test]
    fn a_handler_for_an_undeclared_hook_stops_start() {
        let mut reg = Registry::default();
        let mut r = Registrar::new("aa");
        r.on_json("befor_login", |_| Ok(()));
        reg.add(manifest("aa"), PluginKind::CompiledIn, r)
            .expect("add");
        let e = reg.freeze().unwrap_err().to_string();
        assert!(
            e.starts_with("plugin `aa`: handles hook `befor_login`, which nobody declares"),
            "{e}"
        );
    }
}
