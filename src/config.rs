//! Configuration: defaults < `portico.toml` < `PORTICO_*` environment < command-line flags.
//! Unknown keys are warned about, not fatal, so an old config keeps working.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use portico_core::internal::portal::{IpNet, SecureCookies};
use portico_core::rocket::figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// The data folder (sled store and control socket).
    pub data: PathBuf,
    /// The themes folder.
    pub themes: PathBuf,
    /// The operator scripts folder (`*.rhai`); used when it exists.
    pub scripts_dir: PathBuf,
    /// Log filter, e.g. `info` or `portico_core=debug,info`.
    pub log: String,
    /// SMTP server for outgoing mail, e.g. `smtp://127.0.0.1:2525` or
    /// `smtps://user:pass@mail.example.net`. A secret: never logged.
    #[serde(default)]
    pub smtp_url: Option<String>,
    /// Folder of dynamic plugins (libraries) loaded at start; none when unset.
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` / `X-Real-IP` are believed. A
    /// list in portico.toml; comma-separated in `PORTICO_TRUSTED_PROXIES`.
    #[serde(default, deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<IpNet>,
    /// `auto` (Secure cookies when ci_url is https), `true` or `false`.
    #[serde(default)]
    pub secure_cookies: SecureCookies,
    /// sled's page cache in MiB (the store's hot pages kept in memory): more makes reads of a
    /// large store faster and the process larger.
    #[serde(default = "default_store_cache_mb")]
    pub store_cache_mb: u64,
    /// Rendered pages kept in memory per session, in MiB (0: none): a page viewed again with
    /// nothing changed in between is sent without rendering it again.
    #[serde(default = "default_page_cache_mb")]
    pub page_cache_mb: u64,
}

/// A list (`["10.0.0.1", "10.1.0.0/16"]`), or one string of comma-separated entries as an
/// environment variable gives it.
fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Raw::Many(list) => list,
    };
    items
        .iter()
        .map(|item| item.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn default_store_cache_mb() -> u64 {
    portico_core::internal::store::CACHE_BYTES / (1024 * 1024)
}

fn default_page_cache_mb() -> u64 {
    portico_core::internal::portal::PAGE_CACHE_BYTES / (1024 * 1024)
}

/// `page_cache_mb`'s bounds: more than this is a typo.
pub const PAGE_CACHE_MB: std::ops::RangeInclusive<u64> = 0..=1024;

/// The page cache's bounds in MiB: sled needs a few pages to work; more than this is a typo.
pub const STORE_CACHE_MB: std::ops::RangeInclusive<u64> = 8..=65536;

pub const KNOWN_KEYS: &[&str] = &[
    "bind",
    "data",
    "themes",
    "scripts_dir",
    "log",
    "smtp_url",
    "plugin_dir",
    "trusted_proxies",
    "secure_cookies",
    "store_cache_mb",
    "page_cache_mb",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data: PathBuf::from("portico-data"),
            themes: PathBuf::from("themes"),
            scripts_dir: PathBuf::from("scripts"),
            log: "info".into(),
            smtp_url: None,
            plugin_dir: None,
            trusted_proxies: Vec::new(),
            secure_cookies: SecureCookies::Auto,
            store_cache_mb: default_store_cache_mb(),
            page_cache_mb: default_page_cache_mb(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub themes: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripts_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_dir: Option<PathBuf>,
}

/// Loads the layered configuration. `file` is `--config`; without it `./portico.toml` is read
/// when present. Returns the config and warnings to log once logging is up.
pub fn load(
    file: Option<&Path>,
    defaults: Config,
    cli: &Overrides,
) -> Result<(Config, Vec<String>), String> {
    let mut warnings = vec![];
    let mut fig = Figment::from(Serialized::defaults(defaults));
    let file = match file {
        Some(f) if !f.exists() => return Err(format!("config file {} not found", f.display())),
        Some(f) => Some(f.to_path_buf()),
        None => Some(PathBuf::from("portico.toml")).filter(|p| p.exists()),
    };
    if let Some(f) = &file {
        fig = fig.merge(Toml::file_exact(f));
    }
    fig = fig
        .merge(Env::prefixed("PORTICO_").only(KNOWN_KEYS))
        .merge(Serialized::defaults(cli));
    if let Some(f) = &file {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        for key in table.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                warnings.push(format!(
                    "{}: unknown key `{key}` ignored (known: {})",
                    f.display(),
                    KNOWN_KEYS.join(", ")
                ));
            }
        }
    }
    for (k, _) in std::env::vars() {
        if let Some(rest) = k.strip_prefix("PORTICO_")
            && !KNOWN_KEYS.contains(&rest.to_ascii_lowercase().as_str())
            && rest != "LOG"
        {
            warnings.push(format!(
                "environment variable {k} is not a Portico setting and is ignored"
            ));
        }
    }
    let cfg: Config = fig.extract().map_err(|e| {
        let mut msg = String::new();
        for err in e {
            msg.push_str(&format!("configuration: {err}\n"));
        }
        msg.push_str("see docs/configuration.md");
        msg
    })?;
    check_mib(
        "store_cache_mb",
        cfg.store_cache_mb,
        &STORE_CACHE_MB,
        default_store_cache_mb(),
        "",
    )?;
    check_mib(
        "page_cache_mb",
        cfg.page_cache_mb,
        &PAGE_CACHE_MB,
        default_page_cache_mb(),
        ", 0 turns it off",
    )?;
    Ok((cfg, warnings))
}

/// A size in MiB within its bounds, or the message that says which they are.
fn check_mib(
    key: &str,
    value: u64,
    bounds: &std::ops::RangeInclusive<u64>,
    default: u64,
    note: &str,
) -> Result<(), String> {
    if bounds.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "configuration: {key} is {value} MiB; give {} to {} (default {default}{note})\nsee docs/configuration.md",
        bounds.start(),
        bounds.end()
    ))
}

/// Checks `smtp_url` at start, so a typo is found before the first mail fails: `smtp://` or
/// `smtps://`, a host, a port that is a number. The message never repeats the URL (it may hold
/// a password).
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    const HOW: &str = "use smtp://HOST[:PORT] or smtps://[USER:PASSWORD@]HOST[:PORT], e.g. smtp://127.0.0.1:2525 (see docs/configuration.md)";
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return Err(format!("smtp_url is not a URL; {HOW}"));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "smtp" | "smtps") {
        let shown: String = scheme
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c))
            .take(16)
            .collect();
        return Err(format!(
            "smtp_url: the scheme must be smtp or smtps, not `{shown}`; {HOW}"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("smtp_url: the host has an unclosed `[`; {HOW}")),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("smtp_url has no host; {HOW}"));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!(
            "smtp_url: the port must be a number from 1 to 65535; {HOW}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod smtp_url_tests {
    use super::check_smtp_url;

    #[test]
    fn smtp_urls_are_checked_without_repeating_them() {
        for good in [
            "smtp://127.0.0.1:2525",
            "smtps://user%40x:secret@mail.example.net",
            "smtp://[::1]:25",
            "SMTP://mail.example.net?tls=required",
        ] {
            assert_eq!(check_smtp_url(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("mail.example.net", "smtp_url is not a URL"),
            (
                "http://mail.example.net",
                "the scheme must be smtp or smtps, not `http`",
            ),
            ("smtp://", "smtp_url has no host"),
            ("smtps://user:secret@:25", "smtp_url has no host"),
            ("smtp://mail.example.net:port", "the port must be a number"),
            ("smtp://mail.example.net:0", "the port must be a number"),
        ] {
            let e = check_smtp_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
