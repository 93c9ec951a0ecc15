//! Passwords and sessions.
//!
//! Passwords are kept only as argon2id hashes (m = 19 MiB, t = 2, p = 1, the OWASP baseline) in
//! their own tree, apart from client records. Hashing runs on blocking threads behind a semaphore
//! so a flood of logins can neither stall the async workers nor take unbounded memory.
//! Sessions are random 256-bit ids in a cookie; the store keeps only their SHA-256.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::store::{Record, Store, WriteTx, id_key, index_key};

pub const SESSION_COOKIE: &str = "portico_session";
/// The cookie name when the portal is served over TLS: browsers then insist on Secure, Path=/
/// and no Domain, so a sibling host cannot plant or overwrite it.
pub const SESSION_COOKIE_TLS: &str = "__Host-portico_session";

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: valid constants, so this cannot fail.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes with working memory the caller keeps: 19 MiB per call would otherwise be allocated
/// and, by the C allocator, often kept anyway.
fn hash_with_memory(password: &str, blocks: &mut [Block]) -> Result<String> {
    let fail = |e: String| Error::Internal(format!("hashing failed: {e}"));
    let a = argon2();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_arr = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_arr)
        .map_err(|e| fail(e.to_string()))?;
    let output = Output::init_with(32, |out| {
        a.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut *blocks)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| fail(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).map_err(|e| fail(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Verifies with working memory the caller keeps. Hashes made with other parameters (older
/// settings, other tools) are verified the ordinary way.
fn verify_with_memory(hash: &str, password: &str, blocks: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let a = argon2();
    let same_params = parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == a.params().m_cost()
                && p.t_cost() == a.params().t_cost()
                && p.p_cost() == a.params().p_cost()
        });
    if !same_params {
        return verify_password(hash, password);
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_arr = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_arr) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if a.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut *blocks)
        .is_err()
    {
        return false;
    }
    // Output's comparison is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// Runs argon2 off the async workers, at most `permits` at a time, each with a working-memory
/// block from a pool (so memory stays at permits × 19 MiB however many logins arrive). The pool
/// keeps a block only while another hash is waiting or running: under a flood of logins blocks
/// are reused, and once the last one is done their memory goes back to the system (19 MiB a
/// permit that a quiet server would otherwise hold for good).
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    memory: Arc<MemoryPool>,
    /// Verified against when the account does not exist, so both paths cost the same.
    dummy_hash: Arc<String>,
}

impl Hasher {
    pub fn new(permits: usize) -> Result<Self> {
        Self::giving_back(permits, None)
    }

    /// A hasher that calls `give_back` (on the hashing thread) when it lets its memory go.
    pub fn giving_back(permits: usize, give_back: Option<fn()>) -> Result<Self> {
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            memory: Arc::new(MemoryPool {
                give_back,
                ..MemoryPool::default()
            }),
            dummy_hash: Arc::new(hash_password("portico-timing-equaliser")?),
        })
    }

    /// Runs `f` with a working-memory block taken from the pool (made when it has none).
    fn with_memory<T>(memory: &MemoryPool, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut blocks = memory
            .blocks
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| {
                memory.made.fetch_add(1, Ordering::Relaxed);
                vec![Block::default(); argon2().params().block_count()]
            });
        let out = f(&mut blocks);
        let mut freed = false;
        if let Ok(mut pool) = memory.blocks.lock() {
            // This hash still counts as one of the wanting ones.
            if memory.wanting.load(Ordering::Acquire) > 1 {
                pool.push(blocks);
            } else {
                pool.clear();
                drop(blocks);
                freed = true;
            }
        }
        if freed && let Some(give_back) = memory.give_back {
            give_back();
        }
        out
    }

    pub async fn verify(&self, hash: Option<String>, password: String) -> bool {
        let _wanting = Wanting::new(&self.memory);
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => ((*self.dummy_hash).clone(), false),
        };
        let memory = self.memory.clone();
        let ok = tokio::task::spawn_blocking(move || {
            Self::with_memory(&memory, |blocks| {
                verify_with_memory(&hash, &password, blocks)
            })
        })
        .await
        .unwrap_or(false);
        ok && real
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let _wanting = Wanting::new(&self.memory);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("hasher closed".into()))?;
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            Self::with_memory(&memory, |blocks| hash_with_memory(&password, blocks))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }
}

/// Argon2's working memory, kept between hashes while more are wanted.
#[derive(Default)]
struct MemoryPool {
    blocks: std::sync::Mutex<Vec<Vec<Block>>>,
    /// Hashes waiting for a permit or running.
    wanting: AtomicUsize,
    /// Returns freed memory to the system (`PortalOptions::give_back_memory`).
    give_back: Option<fn()>,
    /// Blocks made since start (the pool's test reads it).
    made: AtomicUsize,
}

/// Counts a hash as wanting from its call until it is done (or its caller gave up).
struct Wanting(Arc<MemoryPool>);

impl Wanting {
    fn new(pool: &Arc<MemoryPool>) -> Wanting {
        pool.wanting.fetch_add(1, Ordering::AcqRel);
        Wanting(pool.clone())
    }
}

impl Drop for Wanting {
    fn drop(&mut self) {
        self.0.wanting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client's password, stored apart from the client record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub client_id: u64,
    pub password_hash: String,
    pub changed_at: i64,
    /// Set by an operator (one-time password or a password set by hand): it works for one
    /// login, after which the client must choose their own.
    #[serde(default)]
    pub one_time: bool,
}

impl Record for Credential {
    const TREE: &'static str = "credentials";
    fn key(&self) -> Vec<u8> {
        id_key(self.client_id)
    }
}

/// Stores a new password in one transaction with everything the change must end: every
/// outstanding password link of the client, every link mail still waiting in the outbox, and
/// every session but `keep` (the id hash of the session that made the change, if any).
pub fn set_password(
    store: &Store,
    client_id: u64,
    password_hash: String,
    now: i64,
    one_time: bool,
    keep: Option<&[u8]>,
) -> Result<()> {
    store.write(|tx| set_password_in(tx, client_id, password_hash, now, one_time, keep))
}

/// [`set_password`] inside a caller's transaction (a link spent in the same step).
pub fn set_password_in(
    tx: &mut WriteTx<'_>,
    client_id: u64,
    password_hash: String,
    now: i64,
    one_time: bool,
    keep: Option<&[u8]>,
) -> Result<()> {
    tx.put(&Credential {
        client_id,
        password_hash,
        changed_at: now,
        one_time,
    })?;
    crate::passwords::revoke_client_tokens(tx, client_id)?;
    crate::mail::cancel_link_jobs(tx, client_id)?;
    end_sessions_in(tx, client_id, keep)?;
    Ok(())
}

/// Spends a one-time password: true for exactly one of any number of parallel logins with it
/// (the credential is checked and deleted in one transaction).
pub fn consume_one_time(store: &Store, client_id: u64, verified_hash: &str) -> Result<bool> {
    store.write(|tx| match tx.get::<Credential>(&id_key(client_id))? {
        Some(c) if c.one_time && c.password_hash == verified_hash => {
            tx.delete::<Credential>(&id_key(client_id))?;
            Ok(true)
        }
        _ => Ok(false),
    })
}

pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub const CLIENTID_SESSIONS: &str = "clientid_sessions";

/// Server-side session state. The key is the SHA-256 of the cookie value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(with = "hex_bytes")]
    pub id_hash: Vec<u8>,
    pub client_id: u64,
    pub created_at: i64,
    pub last_seen: i64,
    /// Token every state-changing form of this session must carry.
    pub csrf_token: String,
    /// Logged in with a one-time password: nothing but the password form until it is changed.
    #[serde(default)]
    pub must_change_password: bool,
}

pub(crate) mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

impl Record for Session {
    const TREE: &'static str = "sessions";
    fn key(&self) -> Vec<u8> {
        self.id_hash.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![(
            CLIENTID_SESSIONS,
            index_key(&id_key(self.client_id), &self.id_hash),
        )]
    }
}

/// Session lifetimes in seconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: i64,
    pub absolute: i64,
}

impl Session {
    pub fn is_live(&self, now: i64, policy: SessionPolicy) -> bool {
        now - self.last_seen < policy.idle && now - self.created_at < policy.absolute
    }
}

/// Creates a session and returns the cookie value. A fresh id at every login.
pub fn start_session(store: &Store, client_id: u64, now: i64) -> Result<String> {
    start_session_with(store, client_id, now, false, DEFAULT_MAX_SESSIONS)
}

/// `session_max_per_client`'s default.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// Starts a session; when the client would have more than `max_sessions`, the oldest end.
pub fn start_session_with(
    store: &Store,
    client_id: u64,
    now: i64,
    must_change_password: bool,
    max_sessions: usize,
) -> Result<String> {
    let token = random_token()?;
    let session = Session {
        id_hash: token_hash(&token),
        client_id,
        created_at: now,
        last_seen: now,
        csrf_token: random_token()?,
        must_change_password,
    };
    store.write(|tx| {
        let mut live: Vec<Session> = Vec::new();
        for key in tx.index_record_keys(CLIENTID_SESSIONS, &id_key(client_id))? {
            if let Some(s) = tx.get::<Session>(&key)? {
                live.push(s);
            }
        }
        live.sort_by_key(|s| (s.created_at, s.last_seen));
        let max = max_sessions.max(1);
        let surplus = (live.len() + 1).saturating_sub(max);
        for old in live.iter().take(surplus) {
            tx.delete::<Session>(&old.id_hash)?;
        }
        tx.put(&session)
    })?;
    Ok(token)
}

/// Ends every session of a client except `keep` (the id hash of the session to keep).
pub fn end_client_sessions(store: &Store, client_id: u64, keep: Option<&[u8]>) -> Result<usize> {
    store.write(|tx| end_sessions_in(tx, client_id, keep))
}

pub(crate) fn end_sessions_in(
    tx: &mut WriteTx<'_>,
    client_id: u64,
    keep: Option<&[u8]>,
) -> Result<usize> {
    let mut n = 0;
    for key in tx.index_record_keys(CLIENTID_SESSIONS, &id_key(client_id))? {
        if Some(key.as_slice()) != keep && tx.delete::<Session>(&key)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes sessions past their idle or absolute limit, at most `batch` per call; returns how
/// many ended. Run by the housekeeping task, so abandoned sessions do not pile up.
pub fn sweep_sessions(
    store: &Store,
    now: i64,
    policy: SessionPolicy,
    batch: usize,
) -> Result<usize> {
    let expired: Vec<Vec<u8>> = store
        .scan_raw(Session::TREE, &[])?
        .into_iter()
        .filter_map(|(k, v)| {
            let s: Session = crate::store::decode(Session::TREE, &k, &v).ok()?;
            (!s.is_live(now, policy)).then_some(k)
        })
        .take(batch)
        .collect();
    if expired.is_empty() {
        return Ok(0);
    }
    store.write(|tx| {
        let mut n = 0;
        for k in &expired {
            // Re-checked inside the write: the session may have been used meanwhile.
            if let Some(s) = tx.get::<Session>(k)?
                && !s.is_live(now, policy)
                && tx.delete::<Session>(k)?
            {
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Saves a changed session (for example after the client chose a new password).
pub fn update_session(store: &Store, session: &Session) -> Result<()> {
    store.write(|tx| tx.put(session))
}

/// The live session for a cookie value; an expired one is deleted.
pub fn find_session(
    store: &Store,
    token: &str,
    now: i64,
    policy: SessionPolicy,
) -> Result<Option<Session>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = token_hash(token);
    let Some(mut session) = store.get::<Session>(&key)? else {
        return Ok(None);
    };
    if !session.is_live(now, policy) {
        store.write(|tx| tx.delete::<Session>(&key))?;
        return Ok(None);
    }
    if last_seen_due(&session, now) {
        session.last_seen = now;
        store.write_unflushed(|tx| tx.put(&session))?;
    }
    Ok(Some(session))
}

/// Whether a session's last use is to be written again: at most once a minute, because a
/// write per page view would cost throughput and is not something anyone was promised durably.
pub fn last_seen_due(session: &Session, now: i64) -> bool {
    now - session.last_seen >= 60
}

pub fn end_session(store: &Store, token: &str) -> Result<()> {
    end_session_by_hash(store, &token_hash(token))
}

pub fn end_session_by_hash(store: &Store, id_hash: &[u8]) -> Result<()> {
    store.write(|tx| tx.delete::<Session>(id_hash).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn the_hasher_reuses_memory_under_load_and_keeps_none_once_idle() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let hasher = Hasher::new(1).expect("hasher");
        runtime.block_on(async {
            hasher.hash("alone".into()).await.expect("hash");
        });
        assert_eq!(hasher.memory.made.load(Ordering::Acquire), 1);
        assert!(
            hasher.memory.blocks.lock().expect("lock").is_empty(),
            "idle: none kept"
        );
        // Three at once through one permit: the block goes from one to the next.
        runtime.block_on(async {
            let (a, b, c) = tokio::join!(
                hasher.hash("one".into()),
                hasher.verify(None, "two".into()),
                hasher.hash("three".into()),
            );
            assert!(a.is_ok() && !b && c.is_ok());
        });
        assert_eq!(
            hasher.memory.made.load(Ordering::Acquire),
            2,
            "one block for all three"
        );
        assert!(
            hasher.memory.blocks.lock().expect("lock").is_empty(),
            "idle again"
        );
        assert_eq!(hasher.memory.wanting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn pooled_hashing_agrees_with_the_standard_one() {
        let mut blocks = vec![Block::default(); argon2().params().block_count()];
        let pooled = hash_with_memory("river stone", &mut blocks).expect("hash");
        assert!(
            pooled.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{pooled}"
        );
        assert!(
            verify_password(&pooled, "river stone"),
            "standard verify accepts a pooled hash"
        );
        let standard = hash_password("river stone").expect("hash");
        assert!(verify_with_memory(&standard, "river stone", &mut blocks));
        assert!(!verify_with_memory(&standard, "river stones", &mut blocks));
        assert!(!verify_with_memory("not a hash", "x", &mut blocks));
        // Other parameters still verify, the ordinary way.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"river stone", &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string();
        assert!(verify_with_memory(&other, "river stone", &mut blocks));
    }

    #[test]
    fn sessions_expire_when_idle_and_at_the_absolute_limit() {
        let store = Store::in_memory();
        let policy = SessionPolicy {
            idle: 1800,
            absolute: 43200,
        };
        let token = start_session(&store, 7, 1000).expect("start");
        assert_eq!(
            find_session(&store, &token, 1000 + 1799, policy)
                .expect("find")
                .map(|s| s.client_id),
            Some(7)
        );
        // Used at 2799, so idle time restarts from there.
        assert!(
            find_session(&store, &token, 2799 + 1799, policy)
                .expect("find")
                .is_some()
        );
        assert!(
            find_session(&store, &token, 2799 + 1799 + 1800, policy)
                .expect("find")
                .is_none()
        );
        let token = start_session(&store, 7, 0).expect("start");
        let mut t = 0;
        while t < 43200 - 1000 {
            t += 1000;
            assert!(
                find_session(&store, &token, t, policy)
                    .expect("find")
                    .is_some()
            );
        }
        assert!(
            find_session(&store, &token, 43200, policy)
                .expect("find")
                .is_none()
        );
    }

    #[test]
    fn a_client_keeps_at_most_the_allowed_sessions_oldest_end_first() {
        let store = Store::in_memory();
        let policy = SessionPolicy {
            idle: 1800,
            absolute: 43200,
        };
        let tokens: Vec<String> = (0..12)
            .map(|t| start_session_with(&store, 5, t, false, 10).expect("start"))
            .collect();
        start_session_with(&store, 6, 0, false, 10).expect("another client");
        let live: Vec<bool> = tokens
            .iter()
            .map(|t| find_session(&store, t, 20, policy).expect("find").is_some())
            .collect();
        assert_eq!(live[..2], [false, false], "the two oldest ended");
        assert!(live[2..].iter().all(|l| *l));
        assert_eq!(store.count::<Session>().expect("count"), 11);
    }

    #[test]
    fn expired_sessions_are_swept_and_live_ones_stay() {
        let store = Store::in_memory();
        let policy = SessionPolicy {
            idle: 1800,
            absolute: 43200,
        };
        for t in 0..5 {
            start_session(&store, t as u64, t * 1000).expect("start");
        }
        // At 4500, sessions started at 0, 1000 and 2000 have been idle 30 minutes or more.
        assert_eq!(sweep_sessions(&store, 4500, policy, 2).expect("sweep"), 2);
        assert_eq!(
            sweep_sessions(&store, 4500, policy, 1000).expect("sweep"),
            1
        );
        assert_eq!(
            sweep_sessions(&store, 4500, policy, 1000).expect("sweep"),
            0
        );
        assert_eq!(store.count::<Session>().expect("count"), 2);
    }

    #[test]
    fn forged_or_ended_sessions_are_not_found() {
        let store = Store::in_memory();
        let policy = SessionPolicy {
            idle: 1800,
            absolute: 43200,
        };
        let token = start_session(&store, 1, 0).expect("start");
        assert!(
            find_session(&store, &"0".repeat(64), 0, policy)
                .expect("find")
                .is_none()
        );
        assert!(
            find_session(&store, "short", 0, policy)
                .expect("find")
                .is_none()
        );
        end_session(&store, &token).expect("end");
        assert!(
            find_session(&store, &token, 0, policy)
                .expect("find")
                .is_none()
        );
    }
}
