//! Traffic storage: 5-minute samples per service, kept raw for a recent window and rolled up
//! into hour and day buckets as they arrive.
//!
//! Trees of the `traffic:` namespace (keys big-endian, so a period is one range scan):
//! - `raw`: service id ++ slot start (Unix seconds) → down, up (two u64, 16 bytes). Only slots
//!   within the raw window ([`RAW_DAYS`] setting) are kept.
//! - `hour`: service id ++ hour start → down, up.
//! - `day`: service id ++ day start (UTC) → down, up, then a 288-bit mask of the 5-minute
//!   slots already counted in that day (52 bytes). The mask makes a re-import idempotent at any
//!   age: a slot counted once is never added again. Within the raw window a re-imported sample
//!   with other numbers replaces the old one, and its hour and day are corrected by the
//!   difference.
//! - `svc`: service id → client id (to forget a deleted client's traffic).

use std::collections::{BTreeMap, HashMap};

use portico_core::plugin::{Namespace, NamespaceTx, Result, id_key};

pub const SLOT: i64 = 300;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
const SLOTS_PER_DAY: usize = (DAY / SLOT) as usize;
const MASK_BYTES: usize = SLOTS_PER_DAY / 8;

/// Setting: days of raw 5-minute samples kept.
pub const RAW_DAYS: &str = "traffic_raw_days";

pub fn key(service: u64, t: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&service.to_be_bytes());
    k[8..].copy_from_slice(&(t.max(0) as u64).to_be_bytes());
    k
}

fn key_time(k: &[u8]) -> i64 {
    k.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_be_bytes(b) as i64)
}

fn pair(v: &[u8]) -> (u64, u64) {
    let d = v
        .get(0..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    let u = v
        .get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    (d, u)
}

fn pair_bytes(d: u64, u: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + MASK_BYTES);
    v.extend_from_slice(&d.to_be_bytes());
    v.extend_from_slice(&u.to_be_bytes());
    v
}

pub fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// One checked sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub service: u64,
    /// Start of its 5-minute slot.
    pub slot: i64,
    pub down: u64,
    pub up: u64,
}

/// What an ingest did.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub added: u64,
    pub replaced: u64,
    pub unchanged: u64,
}

/// Writes one chunk of samples (any order, at most one per service and slot) in one flushed
/// transaction. `raw_from`: slots at or after it are kept raw.
pub fn write_chunk(ns: &Namespace, samples: &mut [Sample], raw_from: i64) -> Result<Counts> {
    samples.sort_by_key(|s| (s.service, s.slot));
    ns.write(|tx| {
        let mut counts = Counts::default();
        let mut i = 0;
        while i < samples.len() {
            let first = samples[i];
            let day = floor(first.slot, DAY);
            let mut j = i;
            while j < samples.len()
                && samples[j].service == first.service
                && floor(samples[j].slot, DAY) == day
            {
                j += 1;
            }
            write_day(
                tx,
                first.service,
                day,
                &samples[i..j],
                raw_from,
                &mut counts,
            )?;
            i = j;
        }
        Ok(counts)
    })
}

/// The samples of one service and day.
fn write_day(
    tx: &mut NamespaceTx<'_, '_>,
    service: u64,
    day: i64,
    samples: &[Sample],
    raw_from: i64,
    counts: &mut Counts,
) -> Result<()> {
    let dkey = key(service, day);
    let (mut dd, mut du, mut mask) = match tx.get_bytes("day", &dkey)? {
        Some(v) => {
            let (d, u) = pair(&v);
            let mut m = [0u8; MASK_BYTES];
            if let Some(b) = v.get(16..16 + MASK_BYTES) {
                m.copy_from_slice(b);
            }
            (i128::from(d), i128::from(u), m)
        }
        None => (0, 0, [0u8; MASK_BYTES]),
    };
    let mut hours: BTreeMap<i64, (i128, i128)> = BTreeMap::new();
    let mut changed = false;
    for s in samples {
        let bit = ((s.slot - day) / SLOT) as usize;
        let seen = mask[bit / 8] & (1 << (bit % 8)) != 0;
        let keep_raw = s.slot >= raw_from;
        let rkey = key(service, s.slot);
        let delta = if !seen {
            mask[bit / 8] |= 1 << (bit % 8);
            counts.added += 1;
            if keep_raw {
                tx.put_bytes("raw", &rkey, pair_bytes(s.down, s.up))?;
            }
            Some((i128::from(s.down), i128::from(s.up)))
        } else if keep_raw {
            match tx.get_bytes("raw", &rkey)?.map(|v| pair(&v)) {
                Some((d, u)) if (d, u) != (s.down, s.up) => {
                    counts.replaced += 1;
                    tx.put_bytes("raw", &rkey, pair_bytes(s.down, s.up))?;
                    Some((
                        i128::from(s.down) - i128::from(d),
                        i128::from(s.up) - i128::from(u),
                    ))
                }
                _ => {
                    counts.unchanged += 1;
                    None
                }
            }
        } else {
            // Counted before and older than the raw window: the slot's numbers are not kept,
            // so the sample cannot be compared; it is not counted twice.
            counts.unchanged += 1;
            None
        };
        if let Some((d, u)) = delta {
            changed = true;
            dd += d;
            du += u;
            let h = hours.entry(floor(s.slot, HOUR)).or_default();
            h.0 += d;
            h.1 += u;
        }
    }
    if !changed {
        return Ok(());
    }
    for (hour, (d, u)) in hours {
        let hkey = key(service, hour);
        let (hd, hu) = tx.get_bytes("hour", &hkey)?.map_or((0, 0), |v| pair(&v));
        let nd = clamp(i128::from(hd) + d);
        let nu = clamp(i128::from(hu) + u);
        tx.put_bytes("hour", &hkey, pair_bytes(nd, nu))?;
    }
    let mut v = pair_bytes(clamp(dd), clamp(du));
    v.extend_from_slice(&mask);
    tx.put_bytes("day", &dkey, v)?;
    Ok(())
}

fn clamp(v: i128) -> u64 {
    v.clamp(0, i128::from(u64::MAX)) as u64
}

/// Remembers which client a service belongs to (for forgetting a deleted client's traffic).
pub fn remember_owners(ns: &Namespace, owners: &HashMap<u64, u64>) -> Result<()> {
    let mut fresh = Vec::new();
    for (svc, client) in owners {
        if ns.get::<u64>("svc", &id_key(*svc))? != Some(*client) {
            fresh.push((*svc, *client));
        }
    }
    if fresh.is_empty() {
        return Ok(());
    }
    ns.write(|tx| {
        for (svc, client) in &fresh {
            if let Some(old) = tx.get::<u64>("svc", &id_key(*svc))? {
                let mut k = id_key(old);
                k.extend_from_slice(&id_key(*svc));
                tx.delete("client_svc", &k)?;
            }
            tx.put("svc", &id_key(*svc), client)?;
            let mut k = id_key(*client);
            k.extend_from_slice(&id_key(*svc));
            tx.put_bytes("client_svc", &k, Vec::new())?;
        }
        Ok(())
    })
}

/// Drops raw samples of `service` older than `raw_from`; returns how many went.
pub fn prune_raw(ns: &Namespace, service: u64, raw_from: i64) -> Result<usize> {
    let mut gone = 0;
    loop {
        let old: Vec<Vec<u8>> = ns
            .scan_bytes_from("raw", &id_key(service), &key(service, 0), 10_000)?
            .into_iter()
            .map(|(k, _)| k)
            .take_while(|k| key_time(k) < raw_from)
            .collect();
        if old.is_empty() {
            return Ok(gone);
        }
        gone += old.len();
        ns.write(|tx| {
            for k in &old {
                tx.delete("raw", k)?;
            }
            Ok(())
        })?;
    }
}

/// Everything kept about a deleted client's services goes, with their opt-in.
pub fn forget_client(tx: &mut NamespaceTx<'_, '_>, client: u64) -> Result<()> {
    let p = id_key(client);
    for k in tx.keys("client_svc", &p)? {
        if let Some(b) = k.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            forget_service(tx, u64::from_be_bytes(b))?;
        }
    }
    tx.delete_prefix("client_svc", &p)?;
    tx.delete(crate::fup::OPT_IN, &p)
}

/// Everything kept about one service goes (its client was deleted).
pub fn forget_service(tx: &mut NamespaceTx<'_, '_>, service: u64) -> Result<()> {
    let p = id_key(service);
    for tree in ["raw", "hour", "day", "fup_sent"] {
        tx.delete_prefix(tree, &p)?;
    }
    tx.delete("svc", &p)
}

/// Which tree a series is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Raw,
    Hour,
    Day,
}

impl Resolution {
    pub fn tree(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
    pub fn step(self) -> i64 {
        match self {
            Resolution::Raw => SLOT,
            Resolution::Hour => HOUR,
            Resolution::Day => DAY,
        }
    }
}

/// The stored buckets of one service in `[from, to)`: (bucket start, down, up), in time order.
pub fn series(
    ns: &Namespace,
    service: u64,
    res: Resolution,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, u64, u64)>> {
    let n = ((to - from) / res.step()).max(0) as usize + 1;
    Ok(ns
        .scan_bytes_from(res.tree(), &id_key(service), &key(service, from), n)?
        .into_iter()
        .map(|(k, v)| {
            let (d, u) = pair(&v);
            (key_time(&k), d, u)
        })
        .take_while(|(t, _, _)| *t < to)
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_sort_by_service_then_time() {
        assert!(super::key(1, 5) < super::key(1, 600));
        assert!(super::key(1, i64::MAX) < super::key(2, 0));
        assert_eq!(
            super::key_time(&super::key(7, 1_700_000_100)),
            1_700_000_100
        );
    }
}
