//! Lockout after repeated wrong passwords: counted per client (not per address), reset by a
//! successful login. While locked, even the right password is refused.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{Record, Store, id_key};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginFailures {
    pub client_id: u64,
    /// Wrong passwords in a row since the last success or lockout.
    pub count: u32,
    /// Unix seconds until which logins are refused.
    pub locked_until: i64,
}

impl Record for LoginFailures {
    const TREE: &'static str = "login_failures";
    fn key(&self) -> Vec<u8> {
        id_key(self.client_id)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// 0 turns lockout off.
    pub attempts: u32,
    pub seconds: i64,
}

pub fn is_locked(store: &Store, client_id: u64, now: i64) -> Result<bool> {
    Ok(store
        .get_id::<LoginFailures>(client_id)?
        .is_some_and(|f| f.locked_until > now))
}

/// Counts a wrong password; returns true when this failure started a lockout.
pub fn record_failure(
    store: &Store,
    client_id: u64,
    now: i64,
    policy: LockoutPolicy,
) -> Result<bool> {
    if policy.attempts == 0 {
        return Ok(false);
    }
    store.write(|tx| {
        let mut f = tx
            .get::<LoginFailures>(&id_key(client_id))?
            .unwrap_or(LoginFailures {
                client_id,
                ..Default::default()
            });
        f.count += 1;
        let locked = f.count >= policy.attempts;
        if locked {
            f.locked_until = now + policy.seconds;
            f.count = 0;
        }
        tx.put(&f)?;
        Ok(locked)
    })
}

/// Lifts a lockout inside the caller's transaction.
pub fn clear_in(tx: &mut crate::store::WriteTx<'_>, client_id: u64) -> Result<()> {
    tx.delete::<LoginFailures>(&id_key(client_id)).map(|_| ())
}

pub fn clear(store: &Store, client_id: u64) -> Result<()> {
    if store.get_id::<LoginFailures>(client_id)?.is_none() {
        return Ok(());
    }
    store.write(|tx| tx.delete::<LoginFailures>(&id_key(client_id)).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_n_failures_for_the_lockout_time_and_success_resets() {
        let s = Store::in_memory();
        let p = LockoutPolicy {
            attempts: 3,
            seconds: 900,
        };
        assert!(!record_failure(&s, 1, 100, p).expect("count"));
        assert!(!record_failure(&s, 1, 101, p).expect("count"));
        clear(&s, 1).expect("success");
        assert!(!record_failure(&s, 1, 102, p).expect("count"));
        assert!(!record_failure(&s, 1, 103, p).expect("count"));
        assert!(!is_locked(&s, 1, 103).expect("q"));
        assert!(
            record_failure(&s, 1, 104, p).expect("count"),
            "third in a row locks"
        );
        assert!(is_locked(&s, 1, 104 + 899).expect("q"));
        assert!(!is_locked(&s, 1, 104 + 900).expect("q"));
        assert!(!is_locked(&s, 2, 104).expect("q"), "per client");
    }
}
