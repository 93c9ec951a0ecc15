//! Operator commands on clients: `portico client disable|enable|list|show|unlock|sessions`.
//! Run by [`crate::ops::execute`], so they work the same on a stopped portal's data folder and
//! through a running portal's control socket. Clients are named by number in what they print;
//! text from imports and clients is escaped for the terminal.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::access::{self, AccessBlock};
use crate::audit::{Audit, AuditKind};
use crate::auth::{self, CLIENTID_SESSIONS, Credential, Session};
use crate::error::{Error, Result};
use crate::lockout::LoginFailures;
use crate::mail::MailJob;
use crate::model::{Address, Client, InvoiceGroup, trees};
use crate::ops::{find_client, fmt_time};
use crate::passwords::{CLIENTID_PASSWORDTOKENS, PasswordToken};
use crate::portal::Portal;
use crate::store::id_key;
use crate::text::escape;

/// Longer reasons are refused: the reason is a note for operators, not a document.
pub const MAX_REASON_CHARS: usize = 500;

/// "client 1001 (Alice Nováková)".
fn named(c: &Client) -> String {
    format!("client {} ({})", escape(&c.number), escape(&c.name))
}

pub fn disable(portal: &Portal, who: &str, reason: Option<String>) -> Result<String> {
    let client = find_client(portal, who)?;
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && r.chars().count() > MAX_REASON_CHARS
    {
        return Err(Error::Invalid(format!(
            "the reason is too long (at most {MAX_REASON_CHARS} characters); nothing was changed"
        )));
    }
    let (block, already, cut) =
        access::disable(&portal.store, client.id, reason, portal.clock.unix())?;
    portal.audit(Audit {
        client_id: Some(client.id),
        detail: Some(match &block.reason {
            Some(r) => format!("by an operator: {r}"),
            None => "by an operator".into(),
        }),
        ..Audit::new(AuditKind::ClientDisabled)
    });
    let mut out = if already {
        format!(
            "{} was disabled already (since {}); the reason is replaced",
            named(&client),
            fmt_time(block.since)
        )
    } else {
        format!(
            "{} is disabled: they cannot log in until `portico client enable {}`",
            named(&client),
            escape(&client.number)
        )
    };
    let _ = write!(
        out,
        "\nended {} session(s), revoked {} password link(s), cancelled {} link mail(s)",
        cut.sessions, cut.links, cut.mails
    );
    if let Some(r) = &block.reason {
        let _ = write!(out, "\nreason: {}", escape(r));
    }
    Ok(out)
}

pub fn enable(portal: &Portal, who: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    let state = access::access(&portal.store, &client)?;
    if state.operator.is_none() {
        if state.import {
            return Err(Error::Invalid(format!(
                "{} is disabled by the import (portal_access: false), not by an operator; an import that gives portal_access true (or leaves it out) enables them; nothing was changed",
                named(&client)
            )));
        }
        return Ok(format!(
            "{} is not disabled; nothing was changed",
            named(&client)
        ));
    }
    access::enable(&portal.store, client.id)?;
    portal.audit(Audit {
        client_id: Some(client.id),
        detail: Some("by an operator".into()),
        ..Audit::new(AuditKind::ClientEnabled)
    });
    Ok(if state.import {
        format!(
            "the operator's block on {} is lifted, but the import still disables them (portal_access: false) until an import gives portal_access true or leaves it out",
            named(&client)
        )
    } else {
        format!("{} is enabled: they can log in again", named(&client))
    })
}

/// What `portico client list` shows.
pub struct ListFilter {
    pub group: Option<u64>,
    pub search: Option<String>,
    pub locked: bool,
    pub disabled: bool,
    pub limit: usize,
}

/// Client numbers in the order people expect: numeric ones by value, before the others.
fn number_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn matches(c: &Client, needle: &str) -> bool {
    if let Some(id) = needle.strip_prefix('#').and_then(|n| n.parse::<u64>().ok()) {
        return c.id == id;
    }
    [
        Some(c.number.as_str()),
        c.username.as_deref(),
        Some(c.name.as_str()),
        c.email.as_deref(),
        c.phone.as_deref(),
        c.mobile.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|field| field.to_lowercase().contains(needle))
}

fn disabled_by(block: Option<&AccessBlock>, import: bool) -> Option<&'static str> {
    match (block.is_some(), import) {
        (true, true) => Some("by an operator and by the import"),
        (true, false) => Some("by an operator"),
        (false, true) => Some("by the import"),
        (false, false) => None,
    }
}

pub fn list(portal: &Portal, f: &ListFilter) -> Result<String> {
    if f.limit == 0 {
        return Err(Error::Invalid("--limit must be at least 1".into()));
    }
    let groups: HashMap<u64, InvoiceGroup> = portal
        .store
        .all_lenient::<InvoiceGroup>()?
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    let needle = match &f.search {
        Some(s) if s.trim().is_empty() => {
            return Err(Error::Invalid("--search needs some text".into()));
        }
        Some(s) => Some(s.trim().to_lowercase()),
        None => None,
    };
    let clients = match f.group {
        Some(g) if !groups.contains_key(&g) => {
            return Err(Error::Invalid(format!("no invoice group with id {g}")));
        }
        Some(g) => portal
            .store
            .by_index_lenient::<Client>(trees::INVOICEGROUPID_CLIENTIDS, &id_key(g))?,
        None => portal.store.all_lenient::<Client>()?,
    };
    let now = portal.clock.unix();
    let locked: HashMap<u64, i64> = portal
        .store
        .all_lenient::<LoginFailures>()?
        .into_iter()
        .filter(|l| l.locked_until > now)
        .map(|l| (l.client_id, l.locked_until))
        .collect();
    let blocks: HashMap<u64, AccessBlock> = portal
        .store
        .all_lenient::<AccessBlock>()?
        .into_iter()
        .map(|b| (b.client_id, b))
        .collect();
    let mut found: Vec<Client> = clients
        .into_iter()
        .filter(|c| needle.as_deref().is_none_or(|n| matches(c, n)))
        .filter(|c| !f.locked || locked.contains_key(&c.id))
        .filter(|c| !f.disabled || !c.portal_access || blocks.contains_key(&c.id))
        .collect();
    if found.is_empty() {
        return Ok("no clients match".into());
    }
    found.sort_by(|a, b| number_order(&a.number, &b.number));
    let mut out = String::new();
    for c in found.iter().take(f.limit) {
        let opt = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map_or("-".into(), |s| escape(s).into_owned())
        };
        let phone = if c.phone.as_deref().is_some_and(|p| !p.is_empty()) {
            &c.phone
        } else {
            &c.mobile
        };
        let group = groups.get(&c.invoice_group_id).map_or_else(
            || c.invoice_group_id.to_string(),
            |g| format!("{} ({})", g.id, escape(&g.name)),
        );
        let _ = write!(
            out,
            "{}  {}  login={}  email={}  phone={}  group={group}",
            escape(&c.number),
            escape(&c.name),
            opt(&c.username),
            opt(&c.email),
            opt(phone),
        );
        if let Some(until) = locked.get(&c.id) {
            let _ = write!(out, "  LOCKED until {}", fmt_time(*until));
        }
        if let Some(by) = disabled_by(blocks.get(&c.id), !c.portal_access) {
            let _ = write!(out, "  DISABLED {by}");
        }
        out.push('\n');
    }
    if found.len() > f.limit {
        let _ = writeln!(
            out,
            "… and {} more (narrow with --search, --group, --locked or --disabled, or raise --limit)",
            found.len() - f.limit
        );
    }
    Ok(out)
}

fn address(a: &Address) -> String {
    let parts: Vec<String> = [&a.street, &a.zip, &a.city, &a.country]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| escape(p).into_owned())
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The client's newest successful login in the audit log, looking back at most `MAX` events.
fn last_login(portal: &Portal, client_id: u64) -> Result<Option<crate::audit::AuditEvent>> {
    const PAGE: usize = 200;
    const MAX: usize = 10_000;
    let mut before = None;
    let mut seen = 0;
    while seen < MAX {
        let events = crate::audit::list(&portal.store, Some(client_id), before, PAGE)?;
        if let Some(e) = events
            .iter()
            .find(|e| e.kind == AuditKind::LoginOk && e.client_id == Some(client_id))
        {
            return Ok(Some(e.clone()));
        }
        if events.len() < PAGE {
            break;
        }
        seen += events.len();
        before = events.last().map(|e| e.id);
    }
    Ok(None)
}

fn live_sessions(portal: &Portal, client_id: u64) -> Result<Vec<Session>> {
    let now = portal.clock.unix();
    let policy = portal.session_policy();
    let mut sessions: Vec<Session> = portal
        .store
        .by_index_lenient::<Session>(CLIENTID_SESSIONS, &id_key(client_id))?
        .into_iter()
        .filter(|s| s.is_live(now, policy))
        .collect();
    sessions.sort_by_key(|s| s.created_at);
    Ok(sessions)
}

pub fn show(portal: &Portal, who: &str) -> Result<String> {
    let c = find_client(portal, who)?;
    let store = &portal.store;
    let now = portal.clock.unix();
    let opt = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map_or("-".into(), |s| escape(s).into_owned())
    };
    let mut out = String::new();
    let _ = writeln!(out, "client {}: {}", escape(&c.number), escape(&c.name));
    let _ = writeln!(out, "  id in the billing system: #{}", c.id);
    let _ = writeln!(out, "  login name: {}", opt(&c.username));
    let _ = writeln!(out, "  company: {}", opt(&c.company));
    let _ = writeln!(out, "  e-mail: {}", opt(&c.email));
    let _ = writeln!(out, "  phone: {}", opt(&c.phone));
    let _ = writeln!(out, "  mobile: {}", opt(&c.mobile));
    let _ = writeln!(out, "  mailing address: {}", address(&c.mailing_address));
    let _ = writeln!(
        out,
        "  invoicing address: {}",
        c.invoicing_address
            .as_ref()
            .map_or("same as the mailing address".into(), address)
    );
    let _ = writeln!(
        out,
        "  language: {}",
        c.language
            .as_deref()
            .map_or("- (follows the browser)".into(), escape)
    );
    let group = store.get_id::<InvoiceGroup>(c.invoice_group_id)?;
    let _ = writeln!(
        out,
        "  invoice group: {}{}",
        c.invoice_group_id,
        group.map_or(String::new(), |g| format!(" ({})", escape(&g.name)))
    );
    // Whether a password is set, never the password or its hash.
    let password = match store.get_id::<Credential>(c.id)? {
        Some(cred) if cred.one_time => format!(
            "set by an operator for one login (one-time), {}",
            fmt_time(cred.changed_at)
        ),
        Some(cred) => format!("set, last changed {}", fmt_time(cred.changed_at)),
        None => "not set".into(),
    };
    let _ = writeln!(out, "  password: {password}");
    let lock = match store.get_id::<LoginFailures>(c.id)? {
        Some(l) if l.locked_until > now => format!("until {}", fmt_time(l.locked_until)),
        Some(l) if l.count > 0 => format!("no ({} wrong password(s) in a row)", l.count),
        _ => "no".into(),
    };
    let _ = writeln!(out, "  locked out: {lock}");
    let state = access::access(store, &c)?;
    let mut access_line = String::new();
    if let Some(b) = &state.operator {
        let _ = write!(
            access_line,
            "disabled by an operator since {}{}",
            fmt_time(b.since),
            b.reason
                .as_deref()
                .map(|r| format!(" (reason: {})", escape(r)))
                .unwrap_or_default()
        );
    }
    if state.import {
        if !access_line.is_empty() {
            access_line.push_str("; ");
        }
        access_line.push_str("disabled by the import (portal_access: false)");
    }
    if access_line.is_empty() {
        access_line.push_str("enabled");
    }
    let _ = writeln!(out, "  portal access: {access_line}");
    let _ = writeln!(
        out,
        "  last login: {}",
        last_login(portal, c.id)?.map_or("none recorded".into(), |e| format!(
            "{} from {}",
            fmt_time(e.at),
            e.source.as_deref().map_or("-".into(), escape)
        ))
    );
    let _ = writeln!(
        out,
        "  live sessions: {}",
        live_sessions(portal, c.id)?.len()
    );
    let mut links: Vec<PasswordToken> = store
        .by_index_lenient::<PasswordToken>(CLIENTID_PASSWORDTOKENS, &id_key(c.id))?
        .into_iter()
        .filter(|t| t.expires_at > now)
        .collect();
    links.sort_by_key(|t| t.expires_at);
    let _ = writeln!(
        out,
        "  pending password links: {}",
        match links.last() {
            None => "none".to_string(),
            Some(t) => format!(
                "{} ({:?}, valid until {})",
                links.len(),
                t.purpose,
                fmt_time(t.expires_at)
            ),
        }
    );
    let mails: Vec<String> = crate::mail::queue(store)?
        .into_iter()
        .filter_map(|e| {
            let what = match &e.job {
                MailJob::PasswordLink {
                    client_id, purpose, ..
                } if *client_id == c.id => format!("password link ({purpose:?})"),
                MailJob::Plugin {
                    plugin,
                    client_id: Some(id),
                    subject,
                    ..
                } if *id == c.id => format!("{} mail \"{}\"", escape(plugin), escape(subject)),
                _ => return None,
            };
            let state = if e.failed {
                "FAILED".to_string()
            } else {
                format!("pending, next try {}", fmt_time(e.next_attempt_at))
            };
            Some(format!("    #{} {what}: {state}", e.id))
        })
        .collect();
    if mails.is_empty() {
        let _ = writeln!(out, "  pending mails: none");
    } else {
        let _ = writeln!(out, "  pending mails: {}", mails.len());
        for m in mails {
            let _ = writeln!(out, "{m}");
        }
    }
    Ok(out)
}

pub fn unlock(portal: &Portal, who: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    let now = portal.clock.unix();
    let Some(failures) = portal
        .store
        .get_id::<LoginFailures>(client.id)?
        .filter(|l| l.locked_until > now || l.count > 0)
    else {
        return Ok(format!(
            "{} is not locked out; nothing was changed",
            named(&client)
        ));
    };
    crate::lockout::clear(&portal.store, client.id)?;
    portal.audit(Audit {
        client_id: Some(client.id),
        ..Audit::new(AuditKind::OperatorUnlock)
    });
    Ok(if failures.locked_until > now {
        format!(
            "{} is unlocked (was locked until {}): they can log in at once",
            named(&client),
            fmt_time(failures.locked_until)
        )
    } else {
        format!(
            "{} was not locked out; its {} wrong password(s) in a row are forgotten",
            named(&client),
            failures.count
        )
    })
}

pub fn sessions(portal: &Portal, who: &str, end: bool) -> Result<String> {
    let client = find_client(portal, who)?;
    if end {
        let n = auth::end_client_sessions(&portal.store, client.id, None)?;
        if n == 0 {
            return Ok(format!(
                "{} has no sessions; nothing was changed",
                named(&client)
            ));
        }
        portal.audit(Audit {
            client_id: Some(client.id),
            detail: Some(format!("{n} session(s)")),
            ..Audit::new(AuditKind::OperatorEndedSessions)
        });
        return Ok(format!(
            "ended {n} session(s) of {}; their browsers get the login page at the next request",
            named(&client)
        ));
    }
    let live = live_sessions(portal, client.id)?;
    if live.is_empty() {
        return Ok(format!("{} has no live sessions", named(&client)));
    }
    let mut out = format!("{} has {} live session(s):\n", named(&client), live.len());
    for s in &live {
        let _ = writeln!(
            out,
            "  started {}, last seen {}{}",
            fmt_time(s.created_at),
            fmt_time(s.last_seen),
            if s.must_change_password {
                ", must choose a new password (logged in with a one-time password)"
            } else {
                ""
            }
        );
    }
    Ok(out)
}
