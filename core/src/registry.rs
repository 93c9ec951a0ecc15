//! What plugins register into: tabs, menu buttons, settings, hooks, routes, templates, static
//! assets, translations and migrations. Compiled-in plugins are listed in one place in the
//! binary; the registry is frozen before the server starts.

use std::borrow::Cow;
use std::sync::Arc;

use crate::hooks::Hooks;
use crate::model::Client;
use crate::settings::{SettingDef, Settings};
use crate::store::Migration;

/// Who a plugin is.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Lowercase id; also the plugin's URL base (`/<id>/`) and store namespace (`<id>:` trees).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
}

pub trait Plugin: Send + Sync {
    fn manifest(&self) -> Manifest;
    fn register(&self, registrar: &mut Registrar);
}

/// What a visibility rule may look at: the logged-in client and the settings that apply to them.
pub struct ViewerCtx<'a> {
    pub client: &'a Client,
    pub settings: &'a Settings,
}

impl ViewerCtx<'_> {
    /// A setting as it applies to this client's invoice group.
    pub fn flag(&self, key: &str) -> bool {
        self.settings.bool(key, Some(self.client.invoice_group_id))
    }
    pub fn text(&self, key: &str) -> String {
        self.settings.text(key, Some(self.client.invoice_group_id))
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
    /// Absolute path the tab links to.
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

/// Collects one plugin's contributions.
pub struct Registrar {
    owner: &'static str,
    pub(crate) tabs: Vec<Tab>,
    pub(crate) buttons: Vec<MenuButton>,
    pub(crate) settings: Vec<SettingDef>,
    pub(crate) routes: Vec<(String, Vec<rocket::Route>)>,
    pub(crate) templates: Vec<(String, Cow<'static, str>)>,
    pub(crate) assets: Vec<(String, Cow<'static, [u8]>)>,
    pub(crate) translations: Vec<(&'static str, Cow<'static, str>)>,
    pub(crate) migrations: Vec<Migration>,
    pub hooks: Hooks,
}

impl Registrar {
    pub fn new(owner: &'static str) -> Self {
        Registrar {
            owner,
            tabs: Vec::new(),
            buttons: Vec::new(),
            settings: Vec::new(),
            routes: Vec::new(),
            templates: Vec::new(),
            assets: Vec::new(),
            translations: Vec::new(),
            migrations: Vec::new(),
            hooks: Hooks::default(),
        }
    }

    pub fn owner(&self) -> &'static str {
        self.owner
    }

    pub fn tab(&mut self, tab: Tab) {
        self.tabs.push(tab);
    }

    pub fn menu_button(&mut self, button: MenuButton) {
        self.buttons.push(button);
    }

    pub fn setting(&mut self, mut def: SettingDef) {
        def.owner = self.owner;
        self.settings.push(def);
    }

    /// Routes mounted under `/<plugin id>`.
    pub fn routes(&mut self, routes: Vec<rocket::Route>) {
        self.routes.push((format!("/{}", self.owner), routes));
    }

    /// A default template; themes override it by file name.
    pub fn template(&mut self, name: &str, source: impl Into<Cow<'static, str>>) {
        self.templates.push((name.to_string(), source.into()));
    }

    /// A default static file served under `/static/<path>`; themes override it by path.
    pub fn asset(&mut self, path: &str, bytes: impl Into<Cow<'static, [u8]>>) {
        self.assets.push((path.to_string(), bytes.into()));
    }

    /// Fluent messages for one language (`en`, `cs`, ...).
    pub fn translations(&mut self, lang: &'static str, ftl: impl Into<Cow<'static, str>>) {
        self.translations.push((lang, ftl.into()));
    }

    pub fn migration(
        &mut self,
        number: u32,
        description: &'static str,
        run: fn(&crate::store::Store) -> crate::Result<()>,
    ) {
        self.migrations.push(Migration {
            owner: self.owner,
            number,
            description,
            run,
        });
    }
}

/// Everything registered, merged in registration order.
#[derive(Default)]
pub struct Registry {
    pub manifests: Vec<Manifest>,
    pub tabs: Vec<Tab>,
    pub buttons: Vec<MenuButton>,
    pub settings: Vec<SettingDef>,
    pub routes: Vec<(String, Vec<rocket::Route>)>,
    /// (owner, template name, source)
    pub templates: Vec<(&'static str, String, Cow<'static, str>)>,
    pub assets: Vec<(String, Cow<'static, [u8]>)>,
    pub translations: Vec<(&'static str, Cow<'static, str>)>,
    pub migrations: Vec<Migration>,
    pub hooks: Hooks,
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
}

impl Registry {
    /// Merges a registrar into the registry. Clashing ids are refused so one plugin can never
    /// silently replace another's tab.
    pub fn add(&mut self, manifest: Manifest, r: Registrar) -> crate::Result<()> {
        if self.manifests.iter().any(|m| m.id == manifest.id) {
            return Err(crate::Error::Internal(format!(
                "plugin {} registered twice",
                manifest.id
            )));
        }
        for t in &r.tabs {
            if self.tabs.iter().any(|x| x.id == t.id) {
                return Err(crate::Error::Internal(format!(
                    "tab id {} registered twice",
                    t.id
                )));
            }
        }
        self.manifests.push(manifest);
        self.tabs.extend(r.tabs);
        self.buttons.extend(r.buttons);
        self.settings.extend(r.settings);
        self.routes.extend(r.routes);
        let owner = r.owner;
        self.templates
            .extend(r.templates.into_iter().map(|(n, s)| (owner, n, s)));
        self.assets.extend(r.assets);
        self.translations.extend(r.translations);
        self.migrations.extend(r.migrations);
        self.hooks.extend(r.hooks);
        Ok(())
    }

    pub fn register(&mut self, plugin: &dyn Plugin) -> crate::Result<()> {
        let manifest = plugin.manifest();
        let mut r = Registrar::new(manifest.id);
        plugin.register(&mut r);
        self.add(manifest, r)
    }

    /// The menu for one viewer: visible tabs and buttons, ordered, with the current one marked.
    pub fn menu(&self, viewer: &ViewerCtx<'_>, active_tab: &str) -> Vec<MenuItem> {
        let mut items: Vec<(i32, MenuItem)> = self
            .tabs
            .iter()
            .filter(|t| (t.visible)(viewer))
            .map(|t| {
                (
                    t.order,
                    MenuItem {
                        id: t.id,
                        title_key: t.title_key,
                        icon: t.icon,
                        href: t.path.clone(),
                        external: false,
                        active: t.id == active_tab,
                    },
                )
            })
            .collect();
        for b in &self.buttons {
            if let Some(href) = (b.href)(viewer) {
                items.push((
                    b.order,
                    MenuItem {
                        id: b.id,
                        title_key: b.title_key,
                        icon: b.icon,
                        href,
                        external: b.external,
                        active: false,
                    },
                ));
            }
        }
        items.sort_by_key(|(order, _)| *order);
        items.into_iter().map(|(_, i)| i).collect()
    }
}
