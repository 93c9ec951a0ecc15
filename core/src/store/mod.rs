//! The only door to persistent state.
//!
//! A [`Backend`] is a set of named trees of byte keys and values with atomic multi-tree writes.
//! [`Store`] puts typed records on top: values are a version byte followed by JSON (so fields can
//! be added with serde defaults), integer keys are big-endian so byte order is numeric order, and
//! compound keys join their parts with [`SEP`], a byte that never occurs in UTF-8.
//! Every `Store` write is flushed before it returns, so an acknowledged change is durable.

mod memory;
mod migrate;
mod sled_backend;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

pub use memory::MemoryBackend;
pub use migrate::{Migration, MigrationFn};
pub use sled_backend::{CACHE_BYTES, SledBackend, wait_until_closed};

/// Separator inside compound keys: never part of a UTF-8 string.
pub const SEP: u8 = 0xff;

/// One change in a batch: `None` removes the key.
#[derive(Debug, Clone)]
pub struct Op {
    pub tree: std::borrow::Cow<'static, str>,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Called with each key and value of a tree by [`Backend::for_each`].
pub type PairVisitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// A raw storage engine. Every implementation must pass `tests/store_conformance.rs`.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// All pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// At most `limit` pairs whose key starts with `prefix` and is above `after` (from the
    /// first when `None`), in key order. Reads only what it returns.
    fn scan_prefix_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// At most `limit` pairs whose key starts with `prefix` and is below `before` (from the
    /// last when `None`), highest key first. Reads only what it returns.
    fn scan_prefix_rev_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Number of keys in a tree (may walk the whole tree).
    fn len(&self, tree: &str) -> Result<usize>;
    /// Whether a tree has no keys (cheap).
    fn is_empty(&self, tree: &str) -> Result<bool> {
        Ok(self.len(tree)? == 0)
    }
    /// Applies every op or none of them.
    fn apply(&self, ops: &[Op]) -> Result<()>;
    /// Makes every applied op durable.
    fn flush(&self) -> Result<()>;
    /// The names of every tree that holds or held keys, sorted (for backups).
    fn tree_names(&self) -> Result<Vec<String>>;
    /// Calls `f` with every pair of a tree, in key order, without collecting them first.
    fn for_each(&self, tree: &str, f: PairVisitor<'_>) -> Result<()> {
        for (k, v) in self.scan_prefix(tree, &[])? {
            f(&k, &v)?;
        }
        Ok(())
    }
    /// Records written since the engine was opened (0 for an engine without a reopen).
    fn writes_since_open(&self) -> u64 {
        0
    }
    /// Closes and opens the engine again to give back memory it keeps from earlier writes;
    /// `Ok(false)` when it did not (an engine without a reopen, or operations still running).
    fn reopen(&self) -> Result<bool> {
        Ok(false)
    }
}

/// A typed value kept in its own tree under its own key, with optional secondary indexes.
pub trait Record: Serialize + DeserializeOwned {
    const TREE: &'static str;
    /// Bumped when the stored shape changes incompatibly (a migration rewrites old values).
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8>;
    /// `(index tree, index key)` pairs; an index key is `owner ++ SEP ++ self.key()` with an empty value.
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        Vec::new()
    }
}

/// Big-endian bytes of an id: byte order equals numeric order.
pub fn id_key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Key of an index entry: `owner ++ SEP ++ record key`.
pub fn index_key(owner: &[u8], record_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.len() + 1 + record_key.len());
    k.extend_from_slice(owner);
    k.push(SEP);
    k.extend_from_slice(record_key);
    k
}

/// A start and an end bound of keys.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Bounds of the keys that start with `prefix`, above `after` and below `before`: `None` when no
/// key can match. Both backends scan with it, so they bound alike.
pub(crate) fn prefix_range(
    prefix: &[u8],
    after: Option<&[u8]>,
    before: Option<&[u8]>,
) -> Option<KeyRange> {
    let (start, first) = match after {
        Some(a) if a >= prefix => (Bound::Excluded(a.to_vec()), a),
        _ => (Bound::Included(prefix.to_vec()), prefix),
    };
    // The first key past every key with the prefix: drop trailing 0xff bytes, bump the last.
    let mut prefix_end = prefix.to_vec();
    while prefix_end.last() == Some(&0xff) {
        prefix_end.pop();
    }
    let prefix_end = prefix_end.last_mut().map(|b| *b += 1).map(|()| prefix_end);
    let end = match (prefix_end, before) {
        (Some(e), Some(b)) => Some(e.min(b.to_vec())),
        (e, b) => e.or(b.map(<[u8]>::to_vec)),
    };
    let Some(end) = end else {
        return Some((start, Bound::Unbounded));
    };
    (first < end.as_slice()).then_some((start, Bound::Excluded(end)))
}

pub fn encode<R: Record>(value: &R) -> Result<Vec<u8>> {
    let mut out = vec![R::VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(out)
}

/// Reads a stored value: its version byte, then JSON. A value written by a newer Portico (a
/// version above `R::VERSION`) is refused rather than half-understood.
pub fn decode<R: Record>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<R> {
    let corrupt = |cause: String| Error::Corrupt {
        tree: tree.to_string(),
        key: hex::encode(key),
        cause,
    };
    let (version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    if *version > R::VERSION {
        return Err(corrupt(format!(
            "written by a newer version of Portico (record version {version}; this one reads up to {})",
            R::VERSION
        )));
    }
    serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
}

/// Decodes pairs of a record tree, logging and leaving out each value that does not decode.
fn decode_lenient<R: Record>(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<R> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            decode(R::TREE, &k, &v)
                .map_err(|e| tracing::error!("skipped an unreadable record: {e}"))
                .ok()
        })
        .collect()
}

/// Trees that many pages read and few writes touch (invoice groups, shared messages, custom
/// buttons): their
/// decoded contents may be kept in memory by [`Store::shared`], dropped at any write to them.
const SHARED_TREES: &[&str] = &[
    <crate::model::InvoiceGroup as Record>::TREE,
    <crate::model::Message as Record>::TREE,
    <crate::model::CustomButton as Record>::TREE,
    crate::model::trees::INVOICEGROUPID_MESSAGEIDS,
    crate::model::trees::GLOBAL_MESSAGEIDS,
];

/// A decoded read of the shared trees, whatever its type.
type SharedValue = Arc<dyn std::any::Any + Send + Sync>;

/// Decoded reads of the [`SHARED_TREES`], valid while no write has touched those trees.
#[derive(Default)]
struct SharedReads {
    /// Bumped after every applied write that touches a shared tree.
    generation: std::sync::atomic::AtomicU64,
    /// Reads by name, each with the generation it was read at.
    values: std::sync::RwLock<std::collections::HashMap<String, (u64, SharedValue)>>,
    /// Bumped after every write to any tree (see [`Store::write_generation`]).
    writes: std::sync::atomic::AtomicU64,
}

/// Typed access to a backend. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Serialises writers so that the old value read for index upkeep is still current when the
    /// batch lands.
    write_lock: Arc<Mutex<()>>,
    shared: Arc<SharedReads>,
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Store {
            backend,
            write_lock: Arc::new(Mutex::new(())),
            shared: Arc::default(),
        }
    }

    /// `load`'s answer for `name`, read once and kept until a write touches one of the shared
    /// trees (invoice groups, messages and their group and global indexes). `load` must read
    /// only those trees. A read that races a write is never kept past it: it is tagged with the
    /// generation seen before reading, and the write bumps the generation after applying.
    pub fn shared<T: Send + Sync + 'static>(
        &self,
        name: &str,
        load: impl FnOnce(&Store) -> Result<T>,
    ) -> Result<Arc<T>> {
        use std::sync::atomic::Ordering;
        let generation = self.shared.generation.load(Ordering::Acquire);
        if let Ok(values) = self.shared.values.read()
            && let Some((seen, value)) = values.get(name)
            && *seen == generation
            && let Ok(value) = value.clone().downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(load(self)?);
        if let Ok(mut values) = self.shared.values.write() {
            // At most one entry per name: a stale one is replaced, never piled up.
            values.insert(name.to_string(), (generation, value.clone()));
        }
        Ok(value)
    }

    /// A number that changes after every write to the store, whatever its tree (and after
    /// [`Store::mark_changed`]). Whatever was read after seeing one value is current for as long
    /// as the value is: the page cache keeps rendered pages by it.
    pub fn write_generation(&self) -> u64 {
        self.shared
            .writes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Moves [`Store::write_generation`] on without a write: for a copy of stored data kept in
    /// memory (settings), once the copy has been updated after its write.
    pub fn mark_changed(&self) {
        self.shared
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Applies a batch, then marks shared reads stale when it touched a shared tree.
    fn apply(&self, ops: &[Op]) -> Result<()> {
        let result = self.backend.apply(ops);
        // Also after a failed batch, as below.
        self.mark_changed();
        if ops
            .iter()
            .any(|op| SHARED_TREES.contains(&op.tree.as_ref()))
        {
            // Also after a failed batch: it may have been partly visible to a reader.
            self.shared
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        result
    }

    /// Opens (creating if needed) a sled store in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<Self> {
        Ok(Store::new(Arc::new(SledBackend::open(dir)?)))
    }

    /// Opens a sled store with a page cache of `cache_bytes`.
    pub fn open_with_cache(dir: &std::path::Path, cache_bytes: u64) -> Result<Self> {
        Ok(Store::new(Arc::new(SledBackend::open_with_cache(
            dir,
            cache_bytes,
        )?)))
    }

    pub fn in_memory() -> Self {
        Store::new(Arc::new(MemoryBackend::default()))
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.backend.get(R::TREE, key)? {
            Some(bytes) => Ok(Some(decode(R::TREE, key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn get_id<R: Record>(&self, id: u64) -> Result<Option<R>> {
        self.get(&id_key(id))
    }

    /// Every record of a type, in key order. A whole-tree scan: off the async threads.
    pub fn all<R: Record>(&self) -> Result<Vec<R>> {
        off_async(|| {
            self.backend
                .scan_prefix(R::TREE, &[])?
                .into_iter()
                .map(|(k, v)| decode(R::TREE, &k, &v))
                .collect()
        })
    }

    pub fn count<R: Record>(&self) -> Result<usize> {
        self.backend.len(R::TREE)
    }

    /// Records found through an index for one owner, in key order.
    pub fn by_index<R: Record>(&self, index_tree: &str, owner: &[u8]) -> Result<Vec<R>> {
        self.by_index_with(index_tree, owner, Self::get)
    }

    /// The records an index lists for one owner, each read with `get`. An index entry without
    /// its record is skipped rather than failing the page: the record is the truth and the next
    /// write of it repairs the index.
    fn by_index_with<R: Record>(
        &self,
        index_tree: &str,
        owner: &[u8],
        get: fn(&Self, &[u8]) -> Result<Option<R>>,
    ) -> Result<Vec<R>> {
        let prefix = index_key(owner, &[]);
        let mut out = Vec::new();
        for (k, _) in self.backend.scan_prefix(index_tree, &prefix)? {
            if let Some(r) = get(self, &k[prefix.len()..])? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Like [`Store::all`], but a value that does not decode is logged (tree, key and cause) and
    /// left out instead of failing the whole read: for features that must go on serving the
    /// other records (the mail worker, listings). Imports and migrations use `all` and fail.
    pub fn all_lenient<R: Record>(&self) -> Result<Vec<R>> {
        off_async(|| Ok(decode_lenient(self.backend.scan_prefix(R::TREE, &[])?)))
    }

    /// Like [`Store::by_index`], with unreadable records logged and left out.
    pub fn by_index_lenient<R: Record>(&self, index_tree: &str, owner: &[u8]) -> Result<Vec<R>> {
        self.by_index_with(index_tree, owner, Self::get_lenient)
    }

    /// A record, or `None` (logged) when its value does not decode.
    fn get_lenient<R: Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.get::<R>(key) {
            Err(e @ Error::Corrupt { .. }) => {
                tracing::error!("skipped an unreadable record: {e}");
                Ok(None)
            }
            other => other,
        }
    }

    /// At most `limit` records of a type with keys below `before` (all when `None`), highest
    /// key first, reading no more than that; unreadable ones are logged and left out.
    pub fn newest<R: Record>(&self, before: Option<&[u8]>, limit: usize) -> Result<Vec<R>> {
        Ok(decode_lenient(self.backend.scan_prefix_rev_limited(
            R::TREE,
            &[],
            before,
            limit,
        )?))
    }

    /// [`Store::newest`] through an index: one owner's records with keys below `before`.
    pub fn newest_by_index<R: Record>(
        &self,
        index_tree: &str,
        owner: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<R>> {
        let prefix = index_key(owner, &[]);
        let before = before.map(|b| index_key(owner, b));
        let mut out = Vec::new();
        for (k, _) in
            self.backend
                .scan_prefix_rev_limited(index_tree, &prefix, before.as_deref(), limit)?
        {
            if let Some(r) = self.get_lenient::<R>(&k[prefix.len()..])? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Raw value in a plain key/value tree (settings, meta).
    pub fn get_raw(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend.get(tree, key)
    }

    pub fn scan_raw(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.backend.scan_prefix(tree, prefix)
    }

    /// At most `limit` pairs whose key starts with `prefix` and is above `after`, in key order.
    pub fn scan_limited_raw(
        &self,
        tree: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.backend.scan_prefix_limited(tree, prefix, after, limit)
    }

    /// Runs `f` on a write transaction, applies its changes atomically and flushes them. The
    /// flush waits for the disk, so it runs off the async threads (see [`off_async`]).
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        off_async(|| self.write_with(true, f))
    }

    /// Like [`Store::write`] without the flush, for bookkeeping nobody was promised (such as a
    /// session's last-seen time). The next flushed write or the background flush persists it.
    pub fn write_unflushed<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        self.write_with(false, f)
    }

    fn write_with<T>(
        &self,
        flush: bool,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>,
    ) -> Result<T> {
        // A write started inside another write on the same thread would wait for itself
        // forever (and with it every writer of the portal): refuse it instead.
        let _nested = NestingGuard::enter()?;
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
        let mut tx = WriteTx {
            store: self,
            pending: BTreeMap::new(),
            ops: Vec::new(),
        };
        let out = f(&mut tx)?;
        if !tx.ops.is_empty() {
            self.apply(&tx.ops)?;
            if flush {
                self.backend.flush()?;
            }
        }
        Ok(out)
    }

    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
    }

    /// After `writes` records or more were written since the store was opened, reopens it to
    /// give back the memory the engine keeps from them (sled holds a bulk import's pages well
    /// past its page cache until it closes). Waits for the writer running now, if any; reads
    /// wait while it reopens. Returns whether it reopened.
    pub fn release_memory_after(&self, writes: u64) -> Result<bool> {
        if self.backend.writes_since_open() < writes {
            return Ok(false);
        }
        let _writer = self
            .write_lock
            .lock()
            .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
        // Another caller may have reopened it while this one waited.
        if self.backend.writes_since_open() < writes {
            return Ok(false);
        }
        self.backend.reopen()
    }

    /// Runs `f` while no write can land: every writer of this store (transactions, unflushed
    /// bookkeeping, bulk imports) waits for the same lock. Readers go on. So what `f` reads of
    /// several trees is one consistent state, as of the last write before the call (a backup).
    /// Runs off the async threads, like a write.
    pub fn with_writes_paused<T>(&self, f: impl FnOnce(&dyn Backend) -> Result<T>) -> Result<T> {
        off_async(|| {
            let _nested = NestingGuard::enter()?;
            let _guard = self
                .write_lock
                .lock()
                .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
            f(self.backend.as_ref())
        })
    }

    /// Upserts many records of one type in one atomic write, unflushed (call [`Store::flush`]
    /// when done). Built for bulk imports: no read-your-writes bookkeeping, and no old-value
    /// lookups while the record tree is empty. The records' keys must be distinct.
    pub fn put_many<R: Record>(&self, items: &[R]) -> Result<()> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
        let fresh = self.backend.is_empty(R::TREE)?;
        let mut ops = Vec::with_capacity(items.len() * 2);
        for record in items {
            let key = record.key();
            let new_entries = record.index_entries();
            if !fresh && let Some(bytes) = self.backend.get(R::TREE, &key)? {
                let old: R = decode(R::TREE, &key, &bytes)?;
                for (tree, k) in old.index_entries() {
                    if !new_entries.iter().any(|(t, nk)| *t == tree && *nk == k) {
                        ops.push(Op {
                            tree: tree.into(),
                            key: k,
                            value: None,
                        });
                    }
                }
            }
            for (tree, k) in new_entries {
                ops.push(Op {
                    tree: tree.into(),
                    key: k,
                    value: Some(Vec::new()),
                });
            }
            ops.push(Op {
                tree: R::TREE.into(),
                key,
                value: Some(encode(record)?),
            });
        }
        self.apply(&ops)
    }
}

/// What an upsert found, per record: new, different from what was stored, or stored exactly so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl Store {
    /// Like [`Store::put_many`], but a record stored exactly so already is not written again,
    /// and each record is counted as created, updated or unchanged. With `apply` false nothing
    /// is written: the counts say what the write would do (a dry run). Unflushed.
    pub fn upsert_many<R: Record>(&self, items: &[R], apply: bool) -> Result<Changes> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
        let fresh = self.backend.is_empty(R::TREE)?;
        let mut changes = Changes::default();
        let mut ops = Vec::new();
        for record in items {
            let key = record.key();
            let value = encode(record)?;
            let new_entries = record.index_entries();
            let old = if fresh {
                None
            } else {
                self.backend.get(R::TREE, &key)?
            };
            match old {
                Some(bytes) if bytes == value => {
                    changes.unchanged += 1;
                    continue;
                }
                Some(bytes) if !apply => {
                    decode::<R>(R::TREE, &key, &bytes)?;
                    changes.updated += 1;
                }
                Some(bytes) => {
                    changes.updated += 1;
                    let old: R = decode(R::TREE, &key, &bytes)?;
                    for (tree, k) in old.index_entries() {
                        if !new_entries.iter().any(|(t, nk)| *t == tree && *nk == k) {
                            ops.push(Op {
                                tree: tree.into(),
                                key: k,
                                value: None,
                            });
                        }
                    }
                }
                None => changes.created += 1,
            }
            if !apply {
                continue;
            }
            for (tree, k) in new_entries {
                ops.push(Op {
                    tree: tree.into(),
                    key: k,
                    value: Some(Vec::new()),
                });
            }
            ops.push(Op {
                tree: R::TREE.into(),
                key,
                value: Some(value),
            });
        }
        if apply && !ops.is_empty() {
            self.apply(&ops)?;
        }
        Ok(changes)
    }
}

/// Runs blocking work (a flush, a whole-tree scan) without holding up an async worker thread:
/// on the server's multi-threaded runtime the worker hands its other tasks to another thread
/// first (`block_in_place`), so a flood of requests that write cannot stall page rendering.
/// Elsewhere (operator commands, blocking threads, tests) it simply runs.
pub fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

thread_local! {
    static IN_WRITE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside a store write for as long as it lives.
struct NestingGuard;

impl NestingGuard {
    fn enter() -> Result<NestingGuard> {
        if IN_WRITE.with(|w| w.replace(true)) {
            return Err(Error::Internal(
                "a store write was started inside another one on the same thread; finish the first write (or do the change inside it) before starting another".into(),
            ));
        }
        Ok(NestingGuard)
    }
}

impl Drop for NestingGuard {
    fn drop(&mut self) {
        IN_WRITE.with(|w| w.set(false));
    }
}

/// Changes collected for one atomic write. Reads through it see its own pending changes, kept
/// in key order so a prefix of them is found without walking them all.
pub struct WriteTx<'s> {
    store: &'s Store,
    pending: BTreeMap<(String, Vec<u8>), Option<Vec<u8>>>,
    ops: Vec<Op>,
}

impl WriteTx<'_> {
    pub(crate) fn raw_get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(&(tree.to_string(), key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.store.backend.get(tree, key),
        }
    }

    pub fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.raw_get(R::TREE, key)? {
            Some(bytes) => Ok(Some(decode(R::TREE, key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The first record an index lists for one owner, as it stands in this transaction: a
    /// uniqueness check made here holds until the transaction's writes land.
    pub fn by_index_first<R: Record>(&self, index_tree: &str, owner: &[u8]) -> Result<Option<R>> {
        for key in self.index_record_keys(index_tree, owner)? {
            if let Some(r) = self.get::<R>(&key)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    pub fn set_raw(&mut self, tree: &str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.pending
            .insert((tree.to_string(), key.clone()), value.clone());
        self.ops.push(Op {
            tree: tree.to_string().into(),
            key,
            value,
        });
    }

    /// Inserts or replaces a record and keeps its indexes in step.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<()> {
        let key = record.key();
        let new_entries = record.index_entries();
        if let Some(old) = self.get::<R>(&key)? {
            for entry in old.index_entries() {
                if !new_entries.contains(&entry) {
                    self.set_raw(entry.0, entry.1, None);
                }
            }
        }
        for (tree, k) in new_entries {
            self.set_raw(tree, k, Some(Vec::new()));
        }
        let value = encode(record)?;
        self.set_raw(R::TREE, key, Some(value));
        Ok(())
    }

    /// Removes a record and its index entries; returns whether it existed.
    pub fn delete<R: Record>(&mut self, key: &[u8]) -> Result<bool> {
        let Some(old) = self.get::<R>(key)? else {
            return Ok(false);
        };
        for (tree, k) in old.index_entries() {
            self.set_raw(tree, k, None);
        }
        self.set_raw(R::TREE, key.to_vec(), None);
        Ok(true)
    }

    /// Record keys listed in an index for one owner, as they stand in this transaction (the
    /// write lock is held, so nobody else changes them meanwhile).
    pub fn index_record_keys(&self, index_tree: &str, owner: &[u8]) -> Result<Vec<Vec<u8>>> {
        let prefix = index_key(owner, &[]);
        let mut keys: Vec<Vec<u8>> = self
            .store
            .backend
            .scan_prefix(index_tree, &prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // Entries this transaction added or removed.
        self.merge_pending(index_tree, &prefix, &mut keys);
        keys.sort();
        Ok(keys
            .into_iter()
            .map(|k| k[prefix.len()..].to_vec())
            .collect())
    }

    /// Every key of a tree that starts with `prefix`, as it stands in this transaction.
    pub(crate) fn raw_keys(&self, tree: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut keys: Vec<Vec<u8>> = self
            .store
            .backend
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.merge_pending(tree, prefix, &mut keys);
        keys.sort();
        Ok(keys)
    }

    /// Adds to `keys` (stored keys of `tree` with `prefix`) those this transaction wrote and
    /// takes out those it removed, reading only this transaction's changes under the prefix.
    fn merge_pending(&self, tree: &str, prefix: &[u8], keys: &mut Vec<Vec<u8>>) {
        let from = (tree.to_string(), prefix.to_vec());
        for ((t, k), v) in self.pending.range(from..) {
            if t != tree || !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(_) if !keys.contains(k) => keys.push(k.clone()),
                None => keys.retain(|x| x != k),
                _ => {}
            }
        }
    }

    /// Every stored record of a type that decodes (others are logged and skipped), as stored
    /// before this transaction.
    pub fn scan_records<R: Record>(&self) -> Result<Vec<R>> {
        Ok(decode_lenient(
            self.store.backend.scan_prefix(R::TREE, &[])?,
        ))
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
