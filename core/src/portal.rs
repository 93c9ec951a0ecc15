//! The assembled engine: store, settings, registry, languages, themes and password hasher,
//! shared by the web server, the control socket and the operator CLI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::Hasher;
use crate::error::Result;
use crate::i18n::{self, I18n};
use crate::registry::{Manifest, Plugin, PluginKind, Registrar, Registry, Tab};
use crate::settings::{Settings, core_settings};
use crate::store::Store;
use crate::theme::{Builtins, Themes};

/// Where "now" comes from. Tests move it to check expiry without sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Utc::now))
    }
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock(Arc::new(move || at))
    }
    /// The system clock moved by the number of seconds written in `file` (missing or unreadable
    /// means no offset). Lets end-to-end tests jump past lockouts and expiry without sleeping.
    pub fn offset_by_file(file: std::path::PathBuf) -> Self {
        Clock(Arc::new(move || {
            let offset = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(0);
            Utc::now() + chrono::Duration::seconds(offset)
        }))
    }
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

pub struct PortalOptions {
    pub data_dir: PathBuf,
    /// The themes folder; `None` uses only the compiled-in default theme.
    pub themes_dir: Option<PathBuf>,
    pub plugins: Vec<Box<dyn Plugin>>,
    pub clock: Clock,
    /// `smtp://host:port`, `smtps://user:pass@host`...; a secret, never logged.
    pub smtp_url: Option<String>,
    /// sled's page cache: small for the server (memory), large for a bulk import (speed).
    pub store_cache_bytes: u64,
    pub dynamic: DynamicPlugins,
}

/// Where dynamic plugins come from.
#[derive(Debug, Clone, Default)]
pub struct DynamicPlugins {
    /// The plugin folder (`--plugin-dir`, config `plugin_dir`); `None` loads none.
    pub dir: Option<PathBuf>,
}

pub struct Portal {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub registry: Registry,
    pub i18n: Arc<I18n>,
    pub themes: Arc<Themes>,
    pub hasher: Hasher,
    pub clock: Clock,
    pub data_dir: PathBuf,
    pub smtp_url: Option<String>,
    /// Wakes the mail worker when a job is queued.
    pub mail_wakeup: Arc<tokio::sync::Notify>,
    /// The dynamic plugins that loaded, with their failure state.
    pub dynamic: Vec<Arc<crate::dylib::Library>>,
    last_id: std::sync::atomic::AtomicU64,
}

/// Core's own tabs and messages, registered exactly like a plugin's.
fn register_core(r: &mut Registrar) {
    r.tab(
        Tab::new("information", "nav-information", "/")
            .icon("info")
            .order(10),
    );
    r.tab(
        Tab::new("services", "nav-services", "/services/")
            .icon("services")
            .order(20),
    );
    r.tab(
        Tab::new("password", "nav-password", "/password/")
            .icon("key")
            .order(80),
    );
    r.menu_button(crate::registry::MenuButton {
        id: "webmail",
        title_key: "nav-webmail",
        icon: "mail",
        order: 900,
        href: Arc::new(|v| {
            let url = v.text("ci_webmail_url");
            (!url.is_empty()).then_some(url)
        }),
        external: true,
    });
    for def in core_settings() {
        r.setting(def);
    }
    r.translations("en", i18n::CORE_EN);
    r.translations("cs", i18n::CORE_CS);
    for hook in crate::hooks::core_hooks() {
        r.declare_hook(hook);
    }
    r.core_migration(1, "initial layout: typed trees and indexes", |_| Ok(()));
    r.core_migration(
        2,
        "index clients by e-mail for forgotten-password requests",
        |store| {
            let clients: Vec<crate::model::Client> = store.all()?;
            for chunk in clients.chunks(4096) {
                store.write(|tx| chunk.iter().try_for_each(|c| tx.put(c)))?;
            }
            Ok(())
        },
    );
}

impl Portal {
    pub fn open(opts: PortalOptions) -> Result<Portal> {
        let store = Store::open_with_cache(&opts.data_dir, opts.store_cache_bytes)?;
        Self::assemble(store, opts)
    }

    /// Builds the engine on a given store (sled in production, memory in unit tests).
    pub fn assemble(store: Store, opts: PortalOptions) -> Result<Portal> {
        let mut registry = Registry::default();
        let mut core = Registrar::new("core");
        register_core(&mut core);
        registry.add(
            Manifest {
                id: "core",
                name: "Portico core",
                version: env!("CARGO_PKG_VERSION"),
            },
            PluginKind::Core,
            core,
        )?;
        for p in &opts.plugins {
            registry.register(p.as_ref())?;
        }
        let dynamic = match &opts.dynamic.dir {
            Some(dir) => crate::web::dynamic::register_dir(&mut registry, dir),
            None => Vec::new(),
        };
        registry.freeze()?;
        store.migrate(&registry.migrations)?;
        let settings = Arc::new(Settings::load(store.clone(), registry.settings.clone())?);
        let i18n = Arc::new(I18n::new(
            registry.translations.iter().map(|(l, s)| (*l, s.as_ref())),
        )?);
        let builtins = Builtins {
            templates: registry.templates.clone(),
            assets: registry.assets.clone(),
        };
        let themes = Arc::new(Themes::new(opts.themes_dir, builtins, i18n.clone())?);
        for lib in &dynamic {
            lib.attach(crate::dylib::HostEnv {
                store: store.clone(),
                settings: settings.clone(),
            });
        }
        // Password hashing may use half the cores: a flood of logins then slows logins, not
        // every other page.
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2));
        Ok(Portal {
            store,
            settings,
            registry,
            i18n,
            themes,
            hasher: Hasher::new(permits)?,
            clock: opts.clock,
            data_dir: opts.data_dir,
            smtp_url: opts.smtp_url,
            mail_wakeup: Arc::new(tokio::sync::Notify::new()),
            dynamic,
            last_id: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A fresh id for outbox entries and audit events: time-ordered, never repeated.
    pub fn next_id(&self) -> u64 {
        let micros = self.clock.now().timestamp_micros().max(0) as u64;
        crate::audit::next_id(&self.last_id, micros)
    }

    /// Records a security event in the audit log.
    pub fn audit(&self, event: crate::audit::Audit<'_>) {
        crate::audit::record(&self.store, self.next_id(), self.clock.unix(), event);
    }

    /// The session cookie's name: `__Host-` prefixed when the portal's public address is https.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.serves_tls() {
            crate::auth::SESSION_COOKIE_TLS
        } else {
            crate::auth::SESSION_COOKIE
        }
    }

    /// Whether clients reach the portal over TLS (directly or through a proxy), judged from
    /// ci_url: cookies are then marked Secure.
    pub fn serves_tls(&self) -> bool {
        self.settings.text("ci_url", None).starts_with("https://")
    }

    pub fn lockout_policy(&self) -> crate::lockout::LockoutPolicy {
        crate::lockout::LockoutPolicy {
            attempts: self.settings.int("ci_login_lockout_attempts", None).max(0) as u32,
            seconds: self.settings.int("ci_login_lockout_minutes", None) * 60,
        }
    }

    pub fn password_min_length(&self) -> usize {
        self.settings
            .int("ci_client_password_min_length", None)
            .max(1) as usize
    }

    pub fn control_socket_path(data_dir: &Path) -> PathBuf {
        data_dir.join("control.sock")
    }

    /// The theme that applies for an invoice group (or the global choice with `None`).
    pub fn theme_for(&self, group: Option<u64>) -> String {
        let t = self.settings.text("ci_skin_theme", group);
        if crate::theme::valid_theme_name(&t) {
            t
        } else {
            crate::theme::DEFAULT_THEME.into()
        }
    }

    pub fn session_policy(&self) -> crate::auth::SessionPolicy {
        crate::auth::SessionPolicy {
            idle: self.settings.int("session_idle_timeout_minutes", None) * 60,
            absolute: self.settings.int("session_absolute_timeout_hours", None) * 3600,
        }
    }
}
