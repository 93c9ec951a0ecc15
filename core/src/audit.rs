//! The security audit log: logins, failures, lockouts, resets and operator password actions,
//! with time, client and source address. Never a password or a token.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{Record, Store, id_key};

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
    /// An event a plugin recorded; `detail` starts with the plugin's id.
    Plugin,
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
}

impl Record for AuditEvent {
    const TREE: &'static str = "audit";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
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
    };
    tracing::info!(kind = ?event.kind, client = ?event.client_id, source = ?event.source, "audit");
    if let Err(err) = store.write(|tx| tx.put(&event)) {
        tracing::error!("audit event not stored: {err}");
    }
}

/// Newest first, optionally for one client.
pub fn list(store: &Store, client_id: Option<u64>, limit: usize) -> Result<Vec<AuditEvent>> {
    let mut all: Vec<AuditEvent> = store.all()?;
    all.reverse();
    Ok(all
        .into_iter()
        .filter(|e| client_id.is_none() || e.client_id == client_id)
        .take(limit)
        .collect())
}
