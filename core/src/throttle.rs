//! Limits on what strangers can trigger, kept in memory per source address or per typed login
//! name: forgot-password requests per address, wrong logins per address (slowing down
//! exponentially), and wrong logins for login names that have no account (so that the answer
//! after N tries is the same "locked" as for a real account, and the lockout tells nobody which
//! accounts exist).
//!
//! The maps are bounded: entries whose time is over are dropped first, then the oldest, so a
//! flood from many addresses cannot grow them without limit. A restart forgets them, which is
//! acceptable for limits measured in minutes.

use std::collections::HashMap;
use std::sync::Mutex;

/// The first wait after the free failures, in seconds; each further failure doubles it.
const BACKOFF_BASE: i64 = 5;

/// Entries kept per map.
const CAPACITY: usize = 20_000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Start of the counting window.
    since: i64,
    count: u32,
    /// Refused until then (unix seconds).
    blocked_until: i64,
}

/// One bounded map of counters.
#[derive(Default)]
pub struct Limiter {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Limiter {
    fn with<T>(&self, key: &str, now: i64, window: i64, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= CAPACITY && !map.contains_key(key) {
            map.retain(|_, e| e.since + window > now || e.blocked_until > now);
            if map.len() >= CAPACITY
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.since)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let e = map.entry(key.to_string()).or_default();
        if e.since + window <= now && e.blocked_until <= now {
            *e = Entry {
                since: now,
                ..Entry::default()
            };
        }
        f(e)
    }

    /// Counts one event for `key` in a window of `window` seconds; false when this one is over
    /// `max` (it is then not counted further).
    pub fn allow(&self, key: &str, now: i64, window: i64, max: u32) -> bool {
        self.with(key, now, window, |e| {
            if e.count >= max {
                return false;
            }
            e.count += 1;
            true
        })
    }

    /// Seconds `key` must still wait, if it is blocked.
    pub fn blocked_for(&self, key: &str, now: i64) -> Option<i64> {
        let map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(key)
            .map(|e| e.blocked_until - now)
            .filter(|left| *left > 0)
    }

    /// A failure with exponential back-off: within `window`, the first `free` failures cost
    /// nothing; each further one blocks `key` for 5, 10, 20 … seconds, at most `max_block`.
    pub fn failure_with_backoff(
        &self,
        key: &str,
        now: i64,
        window: i64,
        free: u32,
        max_block: i64,
    ) {
        self.with(key, now, window, |e| {
            e.count = e.count.saturating_add(1);
            if e.count > free {
                let exp = (e.count - free - 1).min(20);
                e.blocked_until = now + (BACKOFF_BASE << exp).min(max_block);
            }
        });
    }

    /// A failure counted like the per-client lockout (wrong tries in a row, forgotten after a
    /// day without any): the `attempts`-th locks `key` for `lock_seconds`; returns true when
    /// this failure locked it.
    pub fn failure_with_lockout(
        &self,
        key: &str,
        now: i64,
        attempts: u32,
        lock_seconds: i64,
    ) -> bool {
        if attempts == 0 {
            return false;
        }
        self.with(key, now, 86_400, |e| {
            e.since = now;
            e.count += 1;
            if e.count >= attempts {
                e.count = 0;
                e.since = now;
                e.blocked_until = now + lock_seconds;
                true
            } else {
                false
            }
        })
    }

    pub fn clear(&self, key: &str) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The portal's limiters.
#[derive(Default)]
pub struct Throttles {
    /// Forgot-password requests per source address.
    pub forgot_by_addr: Limiter,
    /// Wrong logins per source address.
    pub logins_by_addr: Limiter,
    /// Wrong logins per login name that has no account.
    pub unknown_logins: Limiter,
    /// Contact-data changes a client submits (each one stored and audited), per client.
    pub data_changes: Limiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_counts_within_the_window_then_starts_again() {
        let l = Limiter::default();
        assert!((0..3).all(|_| l.allow("a", 100, 3600, 3)));
        assert!(!l.allow("a", 200, 3600, 3));
        assert!(l.allow("b", 200, 3600, 3), "per key");
        assert!(l.allow("a", 100 + 3600, 3600, 3), "a new window");
    }

    #[test]
    fn backoff_doubles_after_the_free_failures() {
        let l = Limiter::default();
        for _ in 0..3 {
            l.failure_with_backoff("ip", 0, 900, 3, 900);
        }
        assert_eq!(l.blocked_for("ip", 0), None);
        l.failure_with_backoff("ip", 0, 900, 3, 900);
        assert_eq!(l.blocked_for("ip", 0), Some(5));
        l.failure_with_backoff("ip", 5, 900, 3, 900);
        assert_eq!(l.blocked_for("ip", 5), Some(10));
        for t in 2..30 {
            l.failure_with_backoff("ip", t, 900, 3, 900);
        }
        assert_eq!(l.blocked_for("ip", 29), Some(900), "capped");
    }

    #[test]
    fn lockout_like_counting_locks_for_the_lock_time() {
        let l = Limiter::default();
        assert!(!l.failure_with_lockout("ghost", 10, 3, 900));
        assert!(!l.failure_with_lockout("ghost", 11, 3, 900));
        assert!(l.failure_with_lockout("ghost", 12, 3, 900));
        assert_eq!(l.blocked_for("ghost", 12 + 899), Some(1));
        assert_eq!(l.blocked_for("ghost", 12 + 900), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let l = Limiter::default();
        for i in 0..(CAPACITY + 500) {
            l.allow(
                &format!("10.0.{}.{}", i / 256, i % 256),
                i as i64,
                1_000_000,
                5,
            );
        }
        assert_eq!(l.len(), CAPACITY);
    }
}
