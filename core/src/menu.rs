//! The operator's custom buttons: links in the portal menu (`portico menu add|list|remove`).
//! Core shows them through the registry's menu links, the same way a plugin adds to the menu,
//! and reads them at each request (kept decoded until a write touches them), so a change made
//! through the control socket shows on the next page without a restart.

use crate::error::{Error, Result};
use crate::model::CustomButton;
use crate::portal::Portal;
use crate::registry::{MenuLink, ViewerCtx};
use crate::store::Store;

/// Longest label, in characters.
pub const MAX_LABEL: usize = 60;
/// Longest address, in bytes.
pub const MAX_URL: usize = 2000;
/// Most buttons the menu takes.
pub const MAX_BUTTONS: usize = 50;
/// Order of a button added without `--order`: after the tabs, before Webmail (900).
pub const DEFAULT_ORDER: i32 = 500;

/// What `portico menu add` asks for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewButton {
    pub label: String,
    #[serde(default)]
    pub label_cs: Option<String>,
    pub url: String,
    #[serde(default)]
    pub new_tab: bool,
    #[serde(default)]
    pub order: Option<i32>,
    #[serde(default)]
    pub invoice_group: Option<u64>,
}

fn check_label(option: &str, raw: &str) -> Result<String> {
    let label = raw.trim();
    if label.is_empty() {
        return Err(Error::Invalid(format!("{option}: the label is empty")));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{option}: the label has control characters (such as a line break)"
        )));
    }
    if label.chars().count() > MAX_LABEL {
        return Err(Error::Invalid(format!(
            "{option}: the label is longer than {MAX_LABEL} characters"
        )));
    }
    Ok(label.to_string())
}

/// Accepts `http://`, `https://` (with a host) and `mailto:` addresses, nothing else.
pub fn check_url(raw: &str) -> Result<String> {
    let url = raw.trim();
    let lower = url.to_ascii_lowercase();
    let bad = |why: &str| Error::Invalid(format!("--url: `{url}` {why}"));
    if url.len() > MAX_URL {
        return Err(Error::Invalid(format!(
            "--url: the address is longer than {MAX_URL} bytes"
        )));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("has spaces or control characters"));
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("has no host"));
        }
        return Ok(format!("{}://{rest}", scheme.to_ascii_lowercase()));
    }
    if let Some(rest) = lower.strip_prefix("mailto:") {
        if rest.is_empty() {
            return Err(bad("has no address after mailto:"));
        }
        return Ok(format!("mailto:{}", &url["mailto:".len()..]));
    }
    Err(bad(
        "is not accepted: only http://, https:// and mailto: addresses can be menu buttons",
    ))
}

/// Every custom button, ordered by id; read once until a write touches them.
pub fn all(store: &Store) -> Result<std::sync::Arc<Vec<CustomButton>>> {
    store.shared("custom_buttons", |s| s.all::<CustomButton>())
}

/// Checks and stores a new button; returns it with its id.
pub fn add(portal: &Portal, new: NewButton) -> Result<CustomButton> {
    let label = check_label("--label", &new.label)?;
    let label_cs = match new.label_cs.as_deref() {
        Some(l) => Some(check_label("--label-cs", l)?),
        None => None,
    };
    let url = check_url(&new.url)?;
    if let Some(g) = new.invoice_group
        && portal.store.invoice_group(g)?.is_none()
    {
        return Err(Error::Invalid(format!(
            "--invoice-group: there is no invoice group {g}"
        )));
    }
    let button = portal.store.write(|tx| {
        let existing = tx.scan_records::<CustomButton>()?;
        if existing.len() >= MAX_BUTTONS {
            return Err(Error::Invalid(format!(
                "the menu already has {MAX_BUTTONS} custom buttons; remove one first"
            )));
        }
        let button = CustomButton {
            id: existing.iter().map(|b| b.id).max().unwrap_or(0) + 1,
            label,
            label_cs,
            url,
            new_tab: new.new_tab,
            order: new.order.unwrap_or(DEFAULT_ORDER),
            invoice_group_id: new.invoice_group,
        };
        tx.put(&button)?;
        Ok(button)
    })?;
    tracing::info!(id = button.id, "custom button added");
    Ok(button)
}

/// `portico menu list`.
pub fn list(portal: &Portal) -> Result<String> {
    let buttons = all(&portal.store)?;
    if buttons.is_empty() {
        return Ok(
            "no custom buttons (add one with `portico menu add --label TEXT --url URL`)".into(),
        );
    }
    let mut sorted: Vec<&CustomButton> = buttons.iter().collect();
    sorted.sort_by_key(|b| (b.order, b.id));
    let e = crate::text::escape;
    Ok(sorted
        .iter()
        .map(|b| {
            format!(
                "{}  order {}  {}{}  {}{}{}\n",
                b.id,
                b.order,
                e(&b.label),
                b.label_cs
                    .as_deref()
                    .map_or(String::new(), |cs| format!(" / cs: {}", e(cs))),
                e(&b.url),
                if b.new_tab { "  (new tab)" } else { "" },
                b.invoice_group_id
                    .map_or(String::new(), |g| format!("  invoice group {g}")),
            )
        })
        .collect())
}

/// `portico menu remove ID`.
pub fn remove(portal: &Portal, id: u64) -> Result<String> {
    let removed = portal
        .store
        .write(|tx| tx.delete::<CustomButton>(&crate::store::id_key(id)))?;
    if !removed {
        return Err(Error::NotFound(format!("custom button {id}")));
    }
    tracing::info!(id, "custom button removed");
    Ok(format!("custom button {id} removed"))
}

/// The buttons a viewer sees, labelled in `lang`.
pub(crate) fn links(viewer: &ViewerCtx<'_>, lang: &str) -> Vec<MenuLink> {
    let buttons = match all(viewer.store) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("reading the custom buttons failed: {e}");
            return Vec::new();
        }
    };
    let group = viewer.client.invoice_group_id;
    buttons
        .iter()
        .filter(|b| b.invoice_group_id.is_none_or(|g| g == group))
        .map(|b| MenuLink {
            label: match (lang, &b.label_cs) {
                ("cs", Some(cs)) => cs.clone(),
                _ => b.label.clone(),
            },
            href: b.url.clone(),
            order: b.order,
            external: b.new_tab,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn only_web_and_mail_addresses() {
        assert_eq!(
            check_url("https://isp.example/").unwrap(),
            "https://isp.example/"
        );
        assert_eq!(
            check_url("HTTP://isp.example").unwrap(),
            "http://isp.example"
        );
        assert_eq!(
            check_url("mailto:help@isp.example").unwrap(),
            "mailto:help@isp.example"
        );
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "ftp://isp.example",
            "//isp.example",
            "/local",
            "https://",
            "https:///x",
            "mailto:",
            "https://isp.example/a b",
            "vbscript:x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
