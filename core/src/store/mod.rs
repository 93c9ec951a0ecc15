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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

pub use memory::MemoryBackend;
pub use migrate::{Migration, MigrationFn};
pub use sled_backend::{CACHE_BYTES, SledBackend};

/// Separator inside compound keys: never part of a UTF-8 string.
pub const SEP: u8 = 0xff;

/// One change in a batch: `None` removes the key.
#[derive(Debug, Clone)]
pub struct Op {
    pub tree: std::borrow::Cow<'static, str>,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A raw storage engine. Every implementation must pass `tests/store_conformance.rs`.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// All pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
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

pub fn encode<R: Record>(value: &R) -> Result<Vec<u8>> {
    let mut out = vec![R::VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T> {
    let corrupt = |cause: String| Error::Corrupt {
        tree: tree.to_string(),
        key: hex::encode(key),
        cause,
    };
    let (_, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
}

/// Typed access to a backend. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Serialises writers so that the old value read for index upkeep is still current when the
    /// batch lands.
    write_lock: Arc<Mutex<()>>,
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Store {
            backend,
            write_lock: Arc::new(Mutex::new(())),
        }
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

    /// Every record of a type, in key order.
    pub fn all<R: Record>(&self) -> Result<Vec<R>> {
        self.backend
            .scan_prefix(R::TREE, &[])?
            .into_iter()
            .map(|(k, v)| decode(R::TREE, &k, &v))
            .collect()
    }

    pub fn count<R: Record>(&self) -> Result<usize> {
        self.backend.len(R::TREE)
    }

    /// Records found through an index for one owner, in key order.
    pub fn by_index<R: Record>(&self, index_tree: &str, owner: &[u8]) -> Result<Vec<R>> {
        let mut prefix = owner.to_vec();
        prefix.push(SEP);
        let mut out = Vec::new();
        for (k, _) in self.backend.scan_prefix(index_tree, &prefix)? {
            let record_key = &k[prefix.len()..];
            // An index entry without its record is skipped rather than failing the page: the
            // record is the truth and the next write of it repairs the index.
            if let Some(r) = self.get::<R>(record_key)? {
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

    /// Runs `f` on a write transaction, applies its changes atomically and flushes them.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        self.write_with(true, f)
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
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| Error::Internal("store write lock poisoned".into()))?;
        let mut tx = WriteTx {
            store: self,
            pending: HashMap::new(),
            ops: Vec::new(),
        };
        let out = f(&mut tx)?;
        if !tx.ops.is_empty() {
            self.backend.apply(&tx.ops)?;
            if flush {
                self.backend.flush()?;
            }
        }
        Ok(out)
    }

    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
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
        self.backend.apply(&ops)
    }
}

/// Changes collected for one atomic write. Reads through it see its own pending changes.
pub struct WriteTx<'s> {
    store: &'s Store,
    pending: HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
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

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
