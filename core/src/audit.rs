//! The security audit log: logins, failures, lockouts, resets, and every state-changing operator
//! command with the OS user who ran it, with time, client and source address. Never a password
//! or a token.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::portal::Portal;
use crate::store::{Record, Store, decode, id_key, index_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    LoginOk,
    LoginFailed,
    LoginWhileLocked,
    Lockout,
    Logout,
    ResetRequested,
    ResetCompleted,
    PasswordChanged,
    OperatorOneTimePassword,
    OperatorSetPassword,
    OperatorPasswordEmail,
    /// The right password for a disabled client; refused.
    LoginWhileDisabled,
    /// Access taken away by an operator (`detail`: the reason) or by an import.
    ClientDisabled,
    /// Access given back by an operator or by an import.
    ClientEnabled,
    OperatorUnlock,
    OperatorEndedSessions,
    /// An event a plugin recorded; `detail` starts with the plugin's id.
    Plugin,
    /// `portico import`: `detail` is its summary.
    Import,
    /// `portico settings set|unset` (other than the theme).
    SettingChanged,
    /// `portico settings set|unset ci_skin_theme`.
    ThemeChanged,
    /// `portico maintenance on|off`.
    Maintenance,
    /// `portico mail template set|unset`.
    MailTemplateChanged,
    MailRetry,
    MailCancel,
    MailPurge,
    /// A plugin's operator command (`portico gdpr …`, `portico tasks …`): `detail` holds it.
    PluginCommand,
    /// `portico backup`: a copy of everything the portal holds left it.
    Backup,
    /// `portico suspend|resume`.
    Suspension,
    /// `portico menu add|remove`.
    MenuChanged,
    /// `portico files add|remove`.
    FilesChanged,
}

impl AuditKind {
    /// Every kind, for `portico audit --kind` and its error message.
    pub const ALL: &'static [AuditKind] = &[
        AuditKind::LoginOk,
        AuditKind::LoginFailed,
        AuditKind::LoginWhileLocked,
        AuditKind::Lockout,
        AuditKind::Logout,
        AuditKind::ResetRequested,
        AuditKind::ResetCompleted,
        AuditKind::PasswordChanged,
        AuditKind::OperatorOneTimePassword,
        AuditKind::OperatorSetPassword,
        AuditKind::OperatorPasswordEmail,
        AuditKind::LoginWhileDisabled,
        AuditKind::ClientDisabled,
        AuditKind::ClientEnabled,
        AuditKind::OperatorUnlock,
        AuditKind::OperatorEndedSessions,
        AuditKind::Plugin,
        AuditKind::Import,
        AuditKind::SettingChanged,
        AuditKind::ThemeChanged,
        AuditKind::Maintenance,
        AuditKind::MailTemplateChanged,
        AuditKind::MailRetry,
        AuditKind::MailCancel,
        AuditKind::MailPurge,
        AuditKind::PluginCommand,
        AuditKind::Backup,
        AuditKind::Suspension,
        AuditKind::MenuChanged,
        AuditKind::FilesChanged,
    ];

    /// The name `portico audit` prints (`LoginOk`).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// A kind by name, as printed (`ClientDisabled`) or as stored (`client_disabled`), in any
    /// case.
    pub fn parse(name: &str) -> Option<AuditKind> {
        let norm = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
        let want = norm(name.trim());
        AuditKind::ALL
            .iter()
            .copied()
            .find(|k| norm(&k.name()) == want)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: u64,
    /// Unix seconds.
    pub at: i64,
    pub kind: AuditKind,
    #[serde(default)]
    pub client_id: Option<u64>,
    /// What was typed as the login name, for failures against unknown accounts.
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// The OS user who ran the operator command that recorded the event.
    #[serde(default)]
    pub operator: Option<String>,
}

/// Index of a client's events: `client id ++ SEP ++ event id`.
pub const CLIENTID_AUDITIDS: &str = "clientid_auditids";

impl Record for AuditEvent {
    const TREE: &'static str = "audit";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.client_id
            .map(|c| (CLIENTID_AUDITIDS, index_key(&id_key(c), &self.key())))
            .into_iter()
            .collect()
    }
}

/// Ids that grow with time and never repeat within a process: microseconds, bumped on ties.
pub fn next_id(last: &std::sync::atomic::AtomicU64, now_micros: u64) -> u64 {
    use std::sync::atomic::Ordering;
    let mut prev = last.load(Ordering::Relaxed);
    loop {
        let id = now_micros.max(prev + 1);
        match last.compare_exchange(prev, id, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(p) => prev = p,
        }
    }
}

pub struct Audit<'a> {
    pub kind: AuditKind,
    pub client_id: Option<u64>,
    pub login: Option<&'a str>,
    pub source: Option<&'a str>,
    pub detail: Option<String>,
}

impl Audit<'_> {
    pub fn new(kind: AuditKind) -> Self {
        Audit {
            kind,
            client_id: None,
            login: None,
            source: None,
            detail: None,
        }
    }
}

thread_local! {
    /// The OS user of the operator command this thread is running, if any.
    static OPERATOR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` as an operator command of `user`: every event recorded meanwhile on this thread
/// names them.
pub fn as_operator<T>(user: &str, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<String>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            OPERATOR.with(|o| *o.borrow_mut() = prev);
        }
    }
    let prev = OPERATOR.with(|o| o.borrow_mut().replace(user.to_string()));
    let _reset = Reset(prev);
    f()
}

/// Appends an event (flushed). A failure to audit is logged, never shown to the client.
pub fn record(store: &Store, id: u64, at: i64, e: Audit<'_>) {
    let event = AuditEvent {
        id,
        at,
        kind: e.kind,
        client_id: e.client_id,
        login: e.login.map(|l| l.chars().take(128).collect()),
        source: e.source.map(str::to_string),
        detail: e.detail,
        operator: OPERATOR.with(|o| o.borrow().clone()),
    };
    tracing::info!(kind = ?event.kind, client = ?event.client_id, source = ?event.source, operator = ?event.operator, "audit");
    if let Err(err) = store.write(|tx| tx.put(&event)) {
        tracing::error!("audit event not stored: {err}");
    }
}

/// Newest first, optionally for one client, at most `limit`, only events older than the event
/// `before` when given. Reads only the events it returns (a client's through their index).
pub fn list(
    store: &Store,
    client_id: Option<u64>,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<AuditEvent>> {
    let before = before.map(id_key);
    match client_id {
        Some(c) => store.newest_by_index(CLIENTID_AUDITIDS, &id_key(c), before.as_deref(), limit),
        None => store.newest(before.as_deref(), limit),
    }
}

/// What `portico audit` asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub client_id: Option<u64>,
    pub kind: Option<AuditKind>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Only events older than this event id.
    pub before: Option<u64>,
}

/// Events read per step while filtering.
const FILTER_BATCH: usize = 512;

/// Newest first, at most `limit` events that pass the filter. Reads in batches from the newest
/// (through the client's index when a client is given) and stops at the first event older than
/// `since`: event ids grow with time.
pub fn list_filtered(store: &Store, f: &Filter, limit: usize) -> Result<Vec<AuditEvent>> {
    let mut out = Vec::new();
    // An event's id is the time it was recorded in microseconds (bumped on ties), so `until`
    // is where the reading starts.
    let until_id = f
        .until
        .map(|u| u64::try_from(u).unwrap_or(0).saturating_mul(1_000_000));
    let mut before = match (f.before, until_id) {
        (Some(b), Some(u)) => Some(b.min(u)),
        (b, u) => b.or(u),
    };
    loop {
        let batch = list(store, f.client_id, before, FILTER_BATCH)?;
        let Some(last) = batch.last() else {
            return Ok(out);
        };
        before = Some(last.id);
        let full = batch.len() == FILTER_BATCH;
        for e in batch {
            if f.since.is_some_and(|s| e.at < s) {
                return Ok(out);
            }
            if f.until.is_some_and(|u| e.at >= u) || f.kind.is_some_and(|k| e.kind != k) {
                continue;
            }
            out.push(e);
            if out.len() >= limit {
                return Ok(out);
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Migration: index the events stored before the client index existed, in batches.
pub fn index_by_client(store: &Store) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch =
            store
                .backend()
                .scan_prefix_limited(AuditEvent::TREE, &[], after.as_deref(), 4096)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        store.write(|tx| {
            for (key, value) in &batch {
                match decode::<AuditEvent>(AuditEvent::TREE, key, value) {
                    Ok(e) => {
                        for (tree, k) in e.index_entries() {
                            tx.set_raw(tree, k, Some(Vec::new()));
                        }
                    }
                    Err(err) => tracing::warn!("audit event left out of the index: {err}"),
                }
            }
            Ok(())
        })?;
    }
}

/// Events deleted per write, so a sweep never holds the store for long.
const SWEEP_BATCH: usize = 500;

/// Deletes events older than `retention_days` before `now` (unix seconds), oldest first, in
/// bounded batches; returns how many went. Keys grow with time, so the sweep stops at the first
/// batch that reaches an event still to be kept.
pub fn sweep(store: &Store, now: i64, retention_days: i64) -> Result<usize> {
    let cutoff = now.saturating_sub(retention_days.max(1).saturating_mul(86_400));
    let mut deleted = 0;
    loop {
        let batch =
            store
                .backend()
                .scan_prefix_limited(AuditEvent::TREE, &[], None, SWEEP_BATCH)?;
        let full = batch.len() == SWEEP_BATCH;
        let mut reached_kept = false;
        let gone = store.write(|tx| {
            let mut n = 0;
            for (key, value) in &batch {
                match decode::<AuditEvent>(AuditEvent::TREE, key, value) {
                    Ok(e) if e.at < cutoff => {
                        tx.delete::<AuditEvent>(key)?;
                        n += 1;
                    }
                    Ok(_) => reached_kept = true,
                    // An unreadable event goes by the time in its id (microseconds).
                    Err(err) => {
                        let micros = <[u8; 8]>::try_from(key.as_slice()).map(u64::from_be_bytes);
                        if micros.is_ok_and(|m| ((m / 1_000_000) as i64) < cutoff) {
                            tracing::warn!("deleting an unreadable old audit event: {err}");
                            tx.set_raw(AuditEvent::TREE, key.clone(), None);
                            n += 1;
                        } else {
                            reached_kept = true;
                        }
                    }
                }
            }
            Ok(n)
        })?;
        deleted += gone;
        if !full || reached_kept || gone == 0 {
            return Ok(deleted);
        }
    }
}

/// One step of the hourly upkeep: a name for the log and the work, returning how many records
/// it removed.
type Step = (&'static str, fn(&Portal) -> Result<usize>);

/// What housekeeping does, in order. A step that fails is logged; the others still run.
const STEPS: &[Step] = &[
    ("old audit events", |portal| {
        sweep(
            &portal.store,
            portal.clock.unix(),
            portal.settings.int("audit_retention_days", None),
        )
    }),
    ("expired sessions", |portal| {
        // In batches, so the write lock is never held for long.
        let mut total = 0;
        loop {
            let n = crate::auth::sweep_sessions(
                &portal.store,
                portal.clock.unix(),
                portal.session_policy(),
                1000,
            )?;
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }),
];

/// Delay before the first run, so start-up is not slowed by a large sweep.
const FIRST_RUN: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(3600);

/// Runs every housekeeping step once (blocking: call it off the async threads).
pub fn housekeeping(portal: &Portal) {
    for (what, step) in STEPS {
        match step(portal) {
            Ok(0) => {}
            Ok(n) => tracing::info!("housekeeping: removed {n} {what}"),
            Err(e) => tracing::error!("housekeeping: {what} not removed: {e}"),
        }
    }
}

/// Hourly housekeeping until the process ends; the first run comes shortly after start.
pub async fn run_housekeeping(portal: Arc<Portal>) {
    tokio::time::sleep(FIRST_RUN).await;
    loop {
        let p = portal.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || housekeeping(&p)).await {
            tracing::error!("housekeeping stopped unexpectedly: {e}");
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn event(id: u64, at: i64, client_id: Option<u64>) -> AuditEvent {
        AuditEvent {
            id,
            at,
            kind: AuditKind::LoginFailed,
            client_id,
            login: None,
            source: None,
            detail: None,
            operator: None,
        }
    }

    fn ids(events: Vec<AuditEvent>) -> Vec<u64> {
        events.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_sweep_deletes_only_events_past_retention_in_batches() {
        let store = Store::in_memory();
        let now = 1_000 * DAY;
        // More old events than one batch holds, then a few to keep; every third has a client.
        let old = SWEEP_BATCH as u64 * 2 + 7;
        store
            .put_many(
                &(1..=old + 3)
                    .map(|i| {
                        let at = if i <= old {
                            now - 31 * DAY
                        } else {
                            now - 29 * DAY
                        };
                        event(i, at, (i % 3 == 0).then_some(i % 2))
                    })
                    .collect::<Vec<_>>(),
            )
            .expect("put");
        assert_eq!(sweep(&store, now, 30).expect("sweep"), old as usize);
        assert_eq!(
            ids(list(&store, None, None, 100).expect("list")),
            [old + 3, old + 2, old + 1]
        );
        // The client index lost the deleted events' entries too.
        assert_eq!(
            store.scan_raw(CLIENTID_AUDITIDS, &[]).expect("scan").len(),
            1,
            "only event {} (client {}) is indexed",
            old + 3,
            (old + 3) % 2
        );
        assert_eq!(sweep(&store, now, 30).expect("again"), 0);
        // A retention of zero (a damaged setting) still keeps a day.
        assert_eq!(sweep(&store, now - 28 * DAY, 0).expect("zero"), 0);
        assert_eq!(sweep(&store, now - 28 * DAY + 1, 1).expect("a day"), 3);
    }

    #[test]
    fn a_clients_events_are_listed_through_their_index_newest_first_and_paged() {
        let store = Store::in_memory();
        store
            .write(|tx| {
                for i in 1..=9u64 {
                    tx.put(&event(i, i as i64, Some(if i % 3 == 0 { 30 } else { 40 })))?;
                }
                Ok(())
            })
            .expect("put");
        assert_eq!(ids(list(&store, Some(30), None, 2).expect("list")), [9, 6]);
        assert_eq!(ids(list(&store, Some(30), Some(6), 5).expect("list")), [3]);
        assert_eq!(ids(list(&store, None, Some(4), 2).expect("list")), [3, 2]);
        assert!(list(&store, Some(99), None, 5).expect("list").is_empty());
    }

    #[test]
    fn the_migration_indexes_events_stored_before_the_index() {
        let store = Store::in_memory();
        store
            .write(|tx| {
                tx.put(&event(1, 1, Some(5)))?;
                tx.put(&event(2, 2, None))?;
                tx.put(&event(3, 3, Some(5)))
            })
            .expect("put");
        // As stored by a version without the index.
        let entries = store.scan_raw(CLIENTID_AUDITIDS, &[]).expect("scan");
        assert_eq!(entries.len(), 2);
        store
            .write(|tx| {
                for (k, _) in entries {
                    tx.set_raw(CLIENTID_AUDITIDS, k, None);
                }
                Ok(())
            })
            .expect("drop index");
        assert!(list(&store, Some(5), None, 5).expect("list").is_empty());
        index_by_client(&store).expect("migrate");
        assert_eq!(ids(list(&store, Some(5), None, 5).expect("list")), [3, 1]);
    }
}
