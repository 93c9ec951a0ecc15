//! The assembled engine: store, settings, registry, languages, themes and password hasher,
//! shared by the web server, the control socket and the operator CLI.

use std::net::IpAddr;
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
    /// The system clock moved by the number of seconds written in `file`. Lets end-to-end tests
    /// jump past lockouts and expiry without sleeping. Debug builds only: a release build has no
    /// way to move its clock. A missing or unreadable file, or an offset that would leave
    /// chrono's range, means no offset.
    #[cfg(debug_assertions)]
    pub fn offset_by_file(file: std::path::PathBuf) -> Self {
        Clock(Arc::new(move || {
            let now = Utc::now();
            std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .and_then(chrono::Duration::try_seconds)
                .and_then(|offset| now.checked_add_signed(offset))
                .unwrap_or(now)
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
    /// Rendered pages kept per session (config `page_cache_mb`; 0 turns the cache off).
    pub page_cache_bytes: u64,
    pub dynamic: DynamicPlugins,
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` are believed (config `trusted_proxies`).
    pub trusted_proxies: Vec<IpNet>,
    /// Whether session cookies are `Secure` (config `secure_cookies`).
    pub secure_cookies: SecureCookies,
    /// `portico serve --dev`: open pages reload themselves when the theme changes.
    pub dev_reload: bool,
    /// The operator scripts folder (`--scripts`, config `scripts_dir`); `None` loads none.
    pub scripts_dir: Option<PathBuf>,
    /// After an operator command, the store is reopened once this many records were written
    /// since it was opened, to give back the memory sled keeps from them
    /// ([`Store::release_memory_after`]).
    pub release_memory_after_writes: u64,
    /// Asks the process's allocator to return freed memory to the system now, on the calling
    /// thread (the binary sets it for mimalloc); called after such a reopen.
    pub give_back_memory: Option<fn()>,
}

/// The default of [`PortalOptions::release_memory_after_writes`]: a bulk import (a traffic
/// file, a billing export), not the day's settings and messages.
pub const RELEASE_MEMORY_AFTER_WRITES: u64 = 500_000;

/// The default of [`PortalOptions::page_cache_bytes`]: some hundreds of pages.
pub const PAGE_CACHE_BYTES: u64 = 4 * 1024 * 1024;

impl PortalOptions {
    /// Options for a data folder and plugins, everything else at its default: no themes folder
    /// (compiled-in default theme), the system clock, no SMTP server, the server's cache size,
    /// no dynamic plugins, no trusted proxies, `secure_cookies = "auto"`, no live reload, no
    /// scripts.
    pub fn new(data_dir: impl Into<PathBuf>, plugins: Vec<Box<dyn Plugin>>) -> Self {
        PortalOptions {
            data_dir: data_dir.into(),
            themes_dir: None,
            plugins,
            clock: Clock::system(),
            smtp_url: None,
            store_cache_bytes: crate::store::CACHE_BYTES,
            page_cache_bytes: PAGE_CACHE_BYTES,
            dynamic: DynamicPlugins::default(),
            trusted_proxies: Vec::new(),
            secure_cookies: SecureCookies::default(),
            dev_reload: false,
            scripts_dir: None,
            release_memory_after_writes: RELEASE_MEMORY_AFTER_WRITES,
            give_back_memory: None,
        }
    }
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
    /// Set once this process's mail worker runs (the portal serves); a command that opened a
    /// stopped portal's folder has none.
    pub serving: std::sync::atomic::AtomicBool,
    /// The dynamic plugins that loaded, with their failure state.
    pub dynamic: Vec<Arc<crate::dylib::Library>>,
    /// Per-address and per-login limits on what strangers can trigger.
    pub throttles: crate::throttle::Throttles,
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` are believed; see [`Portal::client_source`].
    pub trusted_proxies: Vec<IpNet>,
    pub secure_cookies: SecureCookies,
    /// `portico serve --dev`: see [`crate::web::live_reload`].
    pub dev_reload: bool,
    /// The operator's Rhai scripts (run by the hook dispatch after plugins).
    pub scripts: Arc<crate::script::Scripts>,
    /// Rendered pages kept per session ([`crate::web::page_cache`]).
    pub page_cache: crate::web::page_cache::PageCache,
    /// Sessions as last read ([`crate::web::guards::SignedInMemo`]).
    pub signed_in_memo: crate::web::guards::SignedInMemo,
    /// See [`PortalOptions::release_memory_after_writes`].
    pub release_memory_after_writes: u64,
    /// See [`PortalOptions::give_back_memory`].
    pub give_back_memory: Option<fn()>,
    last_id: Arc<std::sync::atomic::AtomicU64>,
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
        Tab::new("files", "nav-files", "/files/")
            .icon("files")
            .order(60)
            .visible_when(|v| v.flag("ci_display_documents_tab")),
    );
    r.tab(
        Tab::new("documents", "nav-documents", "/documents/")
            .icon("files")
            .order(65)
            .visible_when(|v| v.flag("ci_display_contracts_tab")),
    );
    r.tab(
        Tab::new("contact", "nav-contact", "/contact/")
            .icon("contact")
            .order(70)
            .visible_when(|v| !v.text("ci_contact_text").trim().is_empty()),
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
    // The operator's custom buttons (`portico menu`), through the same registry as plugins'.
    r.menu_links(crate::menu::links);
    for def in core_settings() {
        r.setting(def);
    }
    r.translations("en", i18n::CORE_EN);
    r.translations("cs", i18n::CORE_CS);
    for hook in crate::hooks::core_hooks() {
        r.declare_hook(hook);
    }
    r.command(crate::registry::OperatorCommand {
        name: "tasks",
        about: "list [--all], done ID: requests from clients waiting for an operator",
        run: Arc::new(crate::tasks::command),
    });
    r.core_migration(
        5,
        "tasks are core's: move the GDPR plugin's tasks into the one list",
        crate::tasks::adopt_gdpr_tasks,
    );
    r.core_migration(1, "initial layout: typed trees and indexes", |_| Ok(()));
    r.core_migration(
        4,
        "index audit events by client",
        crate::audit::index_by_client,
    );
    r.core_migration(
        3,
        "index password links by client, so a password change revokes them all",
        |store| {
            let tokens: Vec<crate::passwords::PasswordToken> = store.all()?;
            store.write(|tx| tokens.iter().try_for_each(|t| tx.put(t)))
        },
    );
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
        registry.bind_store(&store);
        registry.freeze()?;
        store.migrate(&registry.migrations)?;
        let settings = Arc::new(Settings::load(store.clone(), registry.settings.clone())?);
        registry.attach_hook_env(settings.clone(), opts.clock.clone());
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
                hooks: registry.hooks.clone(),
            });
        }
        let last_id = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mail_wakeup = Arc::new(tokio::sync::Notify::new());
        let scripts = crate::script::Scripts::new(
            crate::script::ScriptEnv {
                store: store.clone(),
                settings: settings.clone(),
                clock: opts.clock.clone(),
                i18n: i18n.clone(),
                mail_wakeup: mail_wakeup.clone(),
                last_id: last_id.clone(),
            },
            opts.scripts_dir,
        );
        registry.hooks.attach_scripts(scripts.clone());
        // Password hashing may use half the cores: a flood of logins then slows logins, not
        // every other page.
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2));
        Ok(Portal {
            store,
            settings,
            registry,
            i18n,
            themes,
            hasher: Hasher::giving_back(permits, opts.give_back_memory)?,
            clock: opts.clock,
            data_dir: opts.data_dir,
            smtp_url: opts.smtp_url,
            mail_wakeup,
            serving: std::sync::atomic::AtomicBool::new(false),
            dynamic,
            trusted_proxies: opts.trusted_proxies,
            secure_cookies: opts.secure_cookies,
            dev_reload: opts.dev_reload,
            release_memory_after_writes: opts.release_memory_after_writes,
            give_back_memory: opts.give_back_memory,
            throttles: Default::default(),
            page_cache: crate::web::page_cache::PageCache::new(opts.page_cache_bytes),
            signed_in_memo: Default::default(),
            scripts,
            last_id,
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

    /// The session cookie's name: `__Host-` prefixed when cookies are Secure.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.serves_tls() {
            crate::auth::SESSION_COOKIE_TLS
        } else {
            crate::auth::SESSION_COOKIE
        }
    }

    /// Whether clients reach the portal over TLS (directly or through a proxy): cookies are then
    /// marked Secure. The config's `secure_cookies` decides; `auto` judges from ci_url.
    pub fn serves_tls(&self) -> bool {
        match self.secure_cookies {
            SecureCookies::On => true,
            SecureCookies::Off => false,
            SecureCookies::Auto => self.settings.text("ci_url", None).starts_with("https://"),
        }
    }

    /// The client's address for the audit log and hooks. The TCP peer, unless the peer is a
    /// trusted proxy: then the right-most `X-Forwarded-For` hop that is not a trusted proxy
    /// itself (or, without that header, `X-Real-IP`). `forwarded_for` holds every
    /// `X-Forwarded-For` header in the order received.
    pub fn client_source(
        &self,
        peer: IpAddr,
        forwarded_for: &[&str],
        real_ip: Option<&str>,
    ) -> IpAddr {
        client_source(&self.trusted_proxies, peer, forwarded_for, real_ip)
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

/// Whether session cookies are marked `Secure` (and named `__Host-portico_session`): config
/// `secure_cookies = "auto" | true | false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecureCookies {
    /// When `ci_url` starts with `https://`.
    #[default]
    Auto,
    /// Always, e.g. behind a TLS proxy whatever `ci_url` says.
    On,
    /// Never (cookies then travel over plain HTTP too).
    Off,
}

impl serde::Serialize for SecureCookies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SecureCookies::Auto => s.serialize_str("auto"),
            SecureCookies::On => s.serialize_bool(true),
            SecureCookies::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> serde::Deserialize<'de> for SecureCookies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SecureCookies;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"auto\", true or false")
            }
            fn visit_bool<E: serde::de::Error>(
                self,
                v: bool,
            ) -> std::result::Result<Self::Value, E> {
                Ok(if v {
                    SecureCookies::On
                } else {
                    SecureCookies::Off
                })
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(SecureCookies::Auto),
                    "true" | "on" | "yes" => Ok(SecureCookies::On),
                    "false" | "off" | "no" => Ok(SecureCookies::Off),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An address or a network, as `trusted_proxies` lists them: `10.0.0.7`, `10.0.0.0/8`,
/// `fd00::/8`. IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                (u32::from(net) ^ u32::from(ip)) & mask == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                (u128::from(net) ^ u128::from(ip)) & mask == 0
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not an IP address or network (examples: 10.0.0.7, 10.0.0.0/8, fd00::/8)"
            )
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        // ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared in their canonical form.
        Ok(match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => IpNet {
                addr: addr.to_canonical(),
                prefix: prefix - 96,
            },
            _ => IpNet { addr, prefix },
        })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl serde::Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One `X-Forwarded-For` hop: an address, perhaps with a port (`10.0.0.7:4711`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// See [`Portal::client_source`].
pub fn client_source(
    trusted: &[IpNet],
    peer: IpAddr,
    forwarded_for: &[&str],
    real_ip: Option<&str>,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    if forwarded_for.iter().any(|h| !h.trim().is_empty()) {
        // Each proxy appends the address it got the request from, so walking from the right
        // past our own proxies reaches the first address no proxy of ours vouches for. What
        // stands left of it was written by the client and proves nothing.
        let mut source = peer;
        for hop in forwarded_for.iter().flat_map(|h| h.split(',')).rev() {
            match parse_hop(hop) {
                Some(ip) if is_trusted(ip) => source = ip,
                Some(ip) => return ip,
                // Not an address: the nearest hop we know.
                None => return source,
            }
        }
        return source;
    }
    real_ip.and_then(parse_hop).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(debug_assertions)]
    #[test]
    fn no_offset_in_the_clock_file_can_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("offset");
        let clock = Clock::offset_by_file(file.clone());
        let off_by = |seconds: i64| (clock.now() - Utc::now()).num_seconds() - seconds;
        for unusable in [
            i64::MAX.to_string(),
            i64::MIN.to_string(),
            (i64::MAX / 1000).to_string(),
            "-9000000000000".into(),
            "99999999999999999999999".into(),
            "1e30".into(),
            "".into(),
        ] {
            std::fs::write(&file, &unusable).expect("write");
            assert!(off_by(0).abs() <= 1, "{unusable} is ignored");
        }
        std::fs::write(&file, "3600\n").expect("write");
        assert!(off_by(3600).abs() <= 1, "a usable offset applies");
        std::fs::remove_file(&file).expect("rm");
        assert!(off_by(0).abs() <= 1, "no file, no offset");
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn networks_parse_and_match() {
        let n = nets(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "fd00::/8",
            "::ffff:172.16.0.0/108",
        ]);
        assert!(n[0].contains(ip("10.200.3.4")));
        assert!(!n[0].contains(ip("11.0.0.1")));
        assert!(n[0].contains(ip("::ffff:10.1.2.3")), "mapped IPv4 is IPv4");
        assert!(n[1].contains(ip("192.168.1.7")) && !n[1].contains(ip("192.168.1.8")));
        assert!(n[2].contains(ip("fd12::1")) && !n[2].contains(ip("fe80::1")));
        assert_eq!(n[3].to_string(), "172.16.0.0/12");
        assert!(n[3].contains(ip("172.31.255.255")));
        assert!(nets(&["0.0.0.0/0"])[0].contains(ip("8.8.8.8")));
        assert!(!nets(&["0.0.0.0/0"])[0].contains(ip("::1")));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "localhost",
            "10.0.0.0/",
            "10.0.0/8",
            "",
        ] {
            let e = bad.parse::<IpNet>().expect_err(bad);
            assert!(e.contains("is not an IP address or network"), "{e}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let src = |peer: &str, xff: &[&str], xri: Option<&str>| {
            client_source(&trusted, ip(peer), xff, xri).to_string()
        };
        // Not a trusted peer: its headers are ignored.
        assert_eq!(src("6.6.6.6", &["1.2.3.4"], Some("5.6.7.8")), "6.6.6.6");
        assert_eq!(src("::ffff:6.6.6.6", &[], None), "6.6.6.6");
        // A trusted peer: the right-most hop that is not one of ours.
        assert_eq!(src("127.0.0.1", &["1.1.1.1, 2.2.2.2"], None), "2.2.2.2");
        assert_eq!(
            src(
                "127.0.0.1",
                &["9.9.9.9, 2.2.2.2, 10.1.1.1"],
                Some("10.1.1.1")
            ),
            "2.2.2.2"
        );
        assert_eq!(
            src("127.0.0.1", &["9.9.9.9", "2.2.2.2:4711"], None),
            "2.2.2.2"
        );
        assert_eq!(src("127.0.0.1", &["[2001:db8::1]:80"], None), "2001:db8::1");
        // Every hop is ours: the left-most.
        assert_eq!(src("127.0.0.1", &["10.0.0.2, 10.0.0.3"], None), "10.0.0.2");
        // Garbage stops the walk at the nearest hop we know.
        assert_eq!(
            src("127.0.0.1", &["1.1.1.1, junk, 10.0.0.3"], None),
            "10.0.0.3"
        );
        assert_eq!(src("127.0.0.1", &["junk"], Some("3.3.3.3")), "127.0.0.1");
        // Without X-Forwarded-For, X-Real-IP; without either, the peer.
        assert_eq!(src("127.0.0.1", &[" "], Some("3.3.3.3")), "3.3.3.3");
        assert_eq!(src("127.0.0.1", &[], Some("nonsense")), "127.0.0.1");
        assert_eq!(src("127.0.0.1", &[], None), "127.0.0.1");
        // Nothing is trusted by default.
        assert_eq!(
            client_source(&[], ip("127.0.0.1"), &["1.1.1.1"], Some("2.2.2.2")).to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn secure_cookies_reads_auto_true_and_false() {
        let parse = |v: serde_json::Value| serde_json::from_value::<SecureCookies>(v);
        assert_eq!(
            parse(serde_json::json!("auto")).ok(),
            Some(SecureCookies::Auto)
        );
        assert_eq!(parse(serde_json::json!(true)).ok(), Some(SecureCookies::On));
        assert_eq!(
            parse(serde_json::json!(false)).ok(),
            Some(SecureCookies::Off)
        );
        assert_eq!(
            parse(serde_json::json!("false")).ok(),
            Some(SecureCookies::Off)
        );
        assert!(parse(serde_json::json!("sometimes")).is_err());
    }
}
