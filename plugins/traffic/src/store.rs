//! Traffic storage: 5-minute samples per service, rolled up into hours and days as they arrive,
//! kept as one record per service and day so that the store's size (and the memory sled needs
//! to open it) grows with days, not with samples.
//!
//! Trees of the `traffic:` namespace (keys big-endian service id ++ day start, UTC, so a period
//! is one range scan):
//! - `days`: the day's download and upload, the 288-bit mask of the 5-minute slots counted in
//!   it, and its 24 hours' download and upload ([`DayRecord`], 437 bytes). The mask makes a
//!   re-import idempotent at any age: a slot counted once is never added again.
//! - `raw_days`: the day's 5-minute samples as they came, with a mask of the slots held
//!   ([`RawDay`], 4,645 bytes); only for days within the raw window ([`RAW_DAYS`] setting).
//!   Within it a re-imported sample with other numbers replaces the old one, and its hour and
//!   day are corrected by the difference.
//! - `svc`: service id → client id, and `client_svc`: client ++ service (to forget a deleted
//!   client's traffic).
//!
//! Until version 0.1 of this plugin every sample and every hour was a record of its own (trees
//! `raw`, `hour` and `day`); migration 1 ([`migrate_to_day_records`]) rewrites such a store.

use std::collections::HashMap;

use portico_core::plugin::{Error, Namespace, NamespaceTx, Result, id_key};

pub const SLOT: i64 = 300;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
const SLOTS_PER_DAY: usize = (DAY / SLOT) as usize;
const SLOTS_PER_HOUR: usize = (HOUR / SLOT) as usize;
const HOURS_PER_DAY: usize = (DAY / HOUR) as usize;
const MASK_BYTES: usize = SLOTS_PER_DAY / 8;

/// Setting: days of raw 5-minute samples kept.
pub const RAW_DAYS: &str = "traffic_raw_days";

const DAYS_TREE: &str = "days";
const RAW_TREE: &str = "raw_days";
/// First byte of every `days` and `raw_days` value: bumped when their layout changes.
const FORMAT: u8 = 1;

pub fn key(service: u64, t: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&service.to_be_bytes());
    k[8..].copy_from_slice(&(t.max(0) as u64).to_be_bytes());
    k
}

fn u64_at(v: &[u8], at: usize) -> u64 {
    v.get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

fn key_service(k: &[u8]) -> u64 {
    u64_at(k, 0)
}

fn key_time(k: &[u8]) -> i64 {
    u64_at(k, 8) as i64
}

fn pair(v: &[u8]) -> (u64, u64) {
    (u64_at(v, 0), u64_at(v, 8))
}

fn push_pair(out: &mut Vec<u8>, (d, u): (u64, u64)) {
    out.extend_from_slice(&d.to_be_bytes());
    out.extend_from_slice(&u.to_be_bytes());
}

fn is_set(mask: &[u8; MASK_BYTES], slot: usize) -> bool {
    mask[slot / 8] & (1 << (slot % 8)) != 0
}

fn set(mask: &mut [u8; MASK_BYTES], slot: usize) {
    mask[slot / 8] |= 1 << (slot % 8);
}

pub fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn corrupt(tree: &str, key: &[u8], cause: &str) -> Error {
    Error::Corrupt {
        tree: format!("traffic:{tree}"),
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        cause: cause.to_string(),
    }
}

/// One service's day: totals, the slots counted, and the hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    pub down: u64,
    pub up: u64,
    counted: [u8; MASK_BYTES],
    pub hours: [(u64, u64); HOURS_PER_DAY],
}

impl DayRecord {
    const LEN: usize = 1 + 16 + MASK_BYTES + HOURS_PER_DAY * 16;

    fn empty() -> Self {
        DayRecord {
            down: 0,
            up: 0,
            counted: [0; MASK_BYTES],
            hours: [(0, 0); HOURS_PER_DAY],
        }
    }

    fn decode(key: &[u8], v: &[u8]) -> Result<Self> {
        if v.len() != Self::LEN || v[0] != FORMAT {
            return Err(corrupt(DAYS_TREE, key, "not a day record of format 1"));
        }
        let mut r = DayRecord::empty();
        (r.down, r.up) = pair(&v[1..]);
        r.counted.copy_from_slice(&v[17..17 + MASK_BYTES]);
        for (h, slot) in r.hours.iter_mut().enumerate() {
            *slot = pair(&v[17 + MASK_BYTES + h * 16..]);
        }
        Ok(r)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(FORMAT);
        push_pair(&mut v, (self.down, self.up));
        v.extend_from_slice(&self.counted);
        for h in &self.hours {
            push_pair(&mut v, *h);
        }
        v
    }
}

/// The 5-minute samples of one service's day, as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawDay {
    held: [u8; MASK_BYTES],
    slots: Box<[(u64, u64); SLOTS_PER_DAY]>,
}

impl RawDay {
    const LEN: usize = 1 + MASK_BYTES + SLOTS_PER_DAY * 16;

    fn empty() -> Self {
        RawDay {
            held: [0; MASK_BYTES],
            slots: Box::new([(0, 0); SLOTS_PER_DAY]),
        }
    }

    fn decode(key: &[u8], v: &[u8]) -> Result<Self> {
        if v.len() != Self::LEN || v[0] != FORMAT {
            return Err(corrupt(RAW_TREE, key, "not a raw day of format 1"));
        }
        let mut r = RawDay::empty();
        r.held.copy_from_slice(&v[1..1 + MASK_BYTES]);
        for (i, slot) in r.slots.iter_mut().enumerate() {
            *slot = pair(&v[1 + MASK_BYTES + i * 16..]);
        }
        Ok(r)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(FORMAT);
        v.extend_from_slice(&self.held);
        for s in self.slots.iter() {
            push_pair(&mut v, *s);
        }
        v
    }

    fn get(&self, slot: usize) -> Option<(u64, u64)> {
        is_set(&self.held, slot).then(|| self.slots[slot])
    }

    fn put(&mut self, slot: usize, value: (u64, u64)) {
        set(&mut self.held, slot);
        self.slots[slot] = value;
    }
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
        for one_day in samples
            .chunk_by(|a, b| a.service == b.service && floor(a.slot, DAY) == floor(b.slot, DAY))
        {
            write_day(tx, one_day, raw_from, &mut counts)?;
        }
        Ok(counts)
    })
}

/// The samples of one service and day: one read and one write of its day record, and of its
/// raw day if any sample is within the raw window.
fn write_day(
    tx: &mut NamespaceTx<'_, '_>,
    samples: &[Sample],
    raw_from: i64,
    counts: &mut Counts,
) -> Result<()> {
    let Some(first) = samples.first() else {
        return Ok(());
    };
    let day = floor(first.slot, DAY);
    let dkey = key(first.service, day);
    let mut rec = match tx.get_bytes(DAYS_TREE, &dkey)? {
        Some(v) => DayRecord::decode(&dkey, &v)?,
        None => DayRecord::empty(),
    };
    let mut raw = match samples.iter().any(|s| s.slot >= raw_from) {
        true => Some(match tx.get_bytes(RAW_TREE, &dkey)? {
            Some(v) => RawDay::decode(&dkey, &v)?,
            None => RawDay::empty(),
        }),
        false => None,
    };
    let (mut day_changed, mut raw_changed) = (false, false);
    for s in samples {
        let slot = ((s.slot - day) / SLOT) as usize;
        let kept = raw.as_mut().filter(|_| s.slot >= raw_from);
        let new = (s.down, s.up);
        let delta = if !is_set(&rec.counted, slot) {
            set(&mut rec.counted, slot);
            counts.added += 1;
            if let Some(raw) = kept {
                raw.put(slot, new);
                raw_changed = true;
            }
            Some((i128::from(s.down), i128::from(s.up)))
        } else {
            match kept {
                Some(raw) => match raw.get(slot) {
                    Some(old) if old != new => {
                        counts.replaced += 1;
                        raw.put(slot, new);
                        raw_changed = true;
                        Some((
                            i128::from(new.0) - i128::from(old.0),
                            i128::from(new.1) - i128::from(old.1),
                        ))
                    }
                    // The same numbers, or counted while older than the window (when the
                    // window was shorter): not counted twice.
                    _ => {
                        counts.unchanged += 1;
                        None
                    }
                },
                // Counted before and older than the raw window: the slot's numbers are not
                // kept, so the sample cannot be compared; it is not counted twice.
                None => {
                    counts.unchanged += 1;
                    None
                }
            }
        };
        if let Some((d, u)) = delta {
            day_changed = true;
            rec.down = add(rec.down, d);
            rec.up = add(rec.up, u);
            let h = &mut rec.hours[slot / SLOTS_PER_HOUR];
            *h = (add(h.0, d), add(h.1, u));
        }
    }
    if day_changed {
        tx.put_bytes(DAYS_TREE, &dkey, rec.encode())?;
    }
    if let (Some(raw), true) = (raw, raw_changed) {
        tx.put_bytes(RAW_TREE, &dkey, raw.encode())?;
    }
    Ok(())
}

/// `v + delta`, kept within `u64`.
fn add(v: u64, delta: i128) -> u64 {
    (i128::from(v) + delta).clamp(0, i128::from(u64::MAX)) as u64
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

/// Drops the raw days of `service` before `raw_from`; returns how many went.
pub fn prune_raw(ns: &Namespace, service: u64, raw_from: i64) -> Result<usize> {
    let mut gone = 0;
    loop {
        let old: Vec<Vec<u8>> = ns
            .scan_bytes_from(RAW_TREE, &id_key(service), &key(service, 0), 1000)?
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
                tx.delete(RAW_TREE, k)?;
            }
            Ok(())
        })?;
    }
}

/// Everything kept about a deleted client's services goes, with their opt-in.
pub fn forget_client(tx: &mut NamespaceTx<'_, '_>, client: u64) -> Result<()> {
    let p = id_key(client);
    for k in tx.keys("client_svc", &p)? {
        forget_service(tx, u64_at(&k, 8))?;
    }
    tx.delete_prefix("client_svc", &p)?;
    tx.delete(crate::fup::OPT_IN, &p)
}

/// Everything kept about one service goes (its client was deleted).
pub fn forget_service(tx: &mut NamespaceTx<'_, '_>, service: u64) -> Result<()> {
    let p = id_key(service);
    for tree in [RAW_TREE, DAYS_TREE, "fup_sent"] {
        tx.delete_prefix(tree, &p)?;
    }
    tx.delete("svc", &p)
}

/// The length of the buckets a series is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// 5-minute samples as they came (within the raw window).
    Raw,
    Hour,
    Day,
}

/// The stored buckets of one service in `[from, to)`: (bucket start, down, up), in time order.
/// Days without a record are left out; hours of a stored day are all given (zero where nothing
/// was counted); raw slots only where a sample is held.
pub fn series(
    ns: &Namespace,
    service: u64,
    res: Resolution,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, u64, u64)>> {
    let first_day = floor(from, DAY);
    let days = ((to - first_day) / DAY).max(0) as usize + 1;
    let tree = match res {
        Resolution::Raw => RAW_TREE,
        Resolution::Hour | Resolution::Day => DAYS_TREE,
    };
    let mut out = Vec::new();
    for (k, v) in ns.scan_bytes_from(tree, &id_key(service), &key(service, first_day), days)? {
        let day = key_time(&k);
        if day >= to {
            break;
        }
        let within = |t: i64| t >= from && t < to;
        match res {
            Resolution::Day => {
                let r = DayRecord::decode(&k, &v)?;
                if within(day) {
                    out.push((day, r.down, r.up));
                }
            }
            Resolution::Hour => {
                let r = DayRecord::decode(&k, &v)?;
                let hours = (0..).map(|h| day + h * HOUR).zip(r.hours);
                out.extend(
                    hours
                        .filter(|(t, _)| within(*t))
                        .map(|(t, (d, u))| (t, d, u)),
                );
            }
            Resolution::Raw => {
                let r = RawDay::decode(&k, &v)?;
                for slot in 0..SLOTS_PER_DAY {
                    let t = day + slot as i64 * SLOT;
                    if let Some((d, u)) = r.get(slot).filter(|_| within(t)) {
                        out.push((t, d, u));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Migration 1: a store written before the day records (one record per sample in `raw`, per
/// hour in `hour`, per day in `day`) is rewritten into `days` and `raw_days`, a page of days
/// per transaction, each old record deleted in the transaction that rewrites it (so a migration
/// cut short goes on where it stopped).
pub fn migrate_to_day_records(ns: &Namespace) -> Result<()> {
    const PAGE: usize = 512;
    // A large store takes minutes: say how far it got now and then.
    const SAY_EVERY: usize = 100_000;
    let mut days = 0;
    loop {
        let page = ns.scan_bytes_from("day", &[], &key(0, 0), PAGE)?;
        if page.is_empty() {
            break;
        }
        if (days + page.len()) / SAY_EVERY > days / SAY_EVERY {
            tracing::info!("migration: traffic: {} days rewritten", days + page.len());
        }
        days += page.len();
        ns.write(|tx| {
            for (k, v) in &page {
                let (service, day) = (key_service(k), key_time(k));
                let mut rec = DayRecord::empty();
                (rec.down, rec.up) = pair(v);
                if let Some(mask) = v.get(16..16 + MASK_BYTES) {
                    rec.counted.copy_from_slice(mask);
                }
                for (h, hour) in rec.hours.iter_mut().enumerate() {
                    let hkey = key(service, day + h as i64 * HOUR);
                    if let Some(old) = tx.get_bytes("hour", &hkey)? {
                        *hour = pair(&old);
                        tx.delete("hour", &hkey)?;
                    }
                }
                tx.put_bytes(DAYS_TREE, &key(service, day), rec.encode())?;
                tx.delete("day", k)?;
            }
            Ok(())
        })?;
    }
    loop {
        let page = ns.scan_bytes_from("raw", &[], &key(0, 0), PAGE * 8)?;
        if page.is_empty() {
            break;
        }
        ns.write(|tx| {
            for one_day in page.chunk_by(|(a, _), (b, _)| {
                key_service(a) == key_service(b)
                    && floor(key_time(a), DAY) == floor(key_time(b), DAY)
            }) {
                let (k, _) = &one_day[0];
                let day = floor(key_time(k), DAY);
                let dkey = key(key_service(k), day);
                let mut raw = match tx.get_bytes(RAW_TREE, &dkey)? {
                    Some(v) => RawDay::decode(&dkey, &v)?,
                    None => RawDay::empty(),
                };
                for (k, v) in one_day {
                    raw.put(((key_time(k) - day) / SLOT) as usize, pair(v));
                    tx.delete("raw", k)?;
                }
                tx.put_bytes(RAW_TREE, &dkey, raw.encode())?;
            }
            Ok(())
        })?;
    }
    // Hours always came with their day; any left without one are dropped.
    ns.write(|tx| tx.delete_prefix("hour", &[]).map(|_| ()))?;
    if days > 0 {
        tracing::info!("migration: traffic: done, {days} days rewritten");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_service_then_time() {
        assert!(key(1, 5) < key(1, 600));
        assert!(key(1, i64::MAX) < key(2, 0));
        assert_eq!(key_time(&key(7, 1_700_000_100)), 1_700_000_100);
        assert_eq!(key_service(&key(7, 1_700_000_100)), 7);
    }

    #[test]
    fn day_and_raw_records_read_back_what_was_written_and_refuse_other_bytes() {
        let mut day = DayRecord::empty();
        day.down = u64::MAX;
        day.up = 7;
        set(&mut day.counted, 287);
        day.hours[23] = (5, 6);
        let bytes = day.encode();
        assert_eq!(bytes.len(), DayRecord::LEN);
        assert_eq!(DayRecord::decode(b"k", &bytes).expect("decode"), day);
        assert!(DayRecord::decode(b"k", &bytes[1..]).is_err());

        let mut raw = RawDay::empty();
        raw.put(0, (1, 2));
        raw.put(287, (0, 0));
        let bytes = raw.encode();
        assert_eq!(bytes.len(), RawDay::LEN);
        let back = RawDay::decode(b"k", &bytes).expect("decode");
        assert_eq!(back, raw);
        assert_eq!(back.get(0), Some((1, 2)));
        assert_eq!(back.get(287), Some((0, 0)), "a zero sample is held");
        assert_eq!(back.get(1), None, "a slot without a sample is not");
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(RawDay::decode(b"k", &other).is_err(), "another format");
    }
}
