//! The production backend: sled, one sled tree per named tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sled::Transactional;

use super::{Backend, Op, PairVisitor, prefix_range};
use crate::error::{Error, Result};

pub struct SledBackend {
    dir: PathBuf,
    cache_bytes: u64,
    /// The open database. Every operation holds a clone of this `Arc` while it runs, so a
    /// reopen knows when nothing uses the old one any more (see [`SledBackend::reopen_db`]).
    /// `None` only when a reopen could not open the database again.
    open: RwLock<Option<Arc<OpenDb>>>,
    /// Records written (put or deleted) since the database was opened.
    writes: AtomicU64,
}

struct OpenDb {
    db: sled::Db,
    trees: RwLock<HashMap<String, sled::Tree>>,
}

impl OpenDb {
    fn tree(&self, name: &str) -> Result<sled::Tree> {
        if let Some(t) = self.trees.read().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(t);
        }
        let tree = self.db.open_tree(name)?;
        if let Ok(mut m) = self.trees.write() {
            m.insert(name.to_string(), tree.clone());
        }
        Ok(tree)
    }
}

/// How long a reopen waits for the operations still running on the old database.
const REOPEN_PATIENCE: Duration = Duration::from_secs(2);

/// sled's page cache; the default (1 GiB) would dwarf the rest of the portal.
pub const CACHE_BYTES: u64 = 48 * 1024 * 1024;

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_cache(dir, CACHE_BYTES)
    }

    /// Opens with a page cache of `cache_bytes`.
    ///
    /// The store is for the portal's user only. A new data folder is created 0700. The store
    /// folder inside it is made 0700 before sled writes anything there, so sled's files are
    /// never reachable by others whatever their mode; after opening, they are made 0600 (and
    /// subfolders 0700) too, which also tightens a store made by an older version. The
    /// `portico` binary sets its umask to 077 as well, so sled creates them that way. An
    /// existing data folder keeps its mode: it may be a folder the operator made (systemd's
    /// `StateDirectory=`), and what it holds protects itself (the control socket is 0600).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let store = dir.join("store");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&store)?;
        tighten(&store, 0o700)?;
        let db = open_db(dir, cache_bytes)?;
        make_private(&store)?;
        Ok(SledBackend {
            dir: dir.to_path_buf(),
            cache_bytes,
            open: RwLock::new(Some(Arc::new(db))),
            writes: AtomicU64::new(0),
        })
    }

    /// The open database, held by the caller for the whole of one operation (also while it
    /// uses a tree taken from it).
    fn db(&self) -> Result<Arc<OpenDb>> {
        let open = match self.open.read() {
            Ok(open) => open.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        open.ok_or_else(|| {
            Error::Store(format!(
                "the store in {} could not be opened again after a reopen; restart the portal",
                self.dir.display()
            ))
        })
    }

    /// Closes the database and opens it again, which gives back the memory sled holds from
    /// earlier writes: its in-memory pages grow well past the page cache during a bulk import
    /// (a traffic import of 21 M samples left the server at 530 MB; the same store opened
    /// afresh takes 145 MB, bench/README.md) and are let go only when the database closes.
    ///
    /// New operations wait while it runs (a few hundred ms on a large store). Operations
    /// already running keep the old database; when they have not all ended within
    /// [`REOPEN_PATIENCE`] (one may be waiting for this very reopen, from inside a visitor),
    /// nothing is changed and `Ok(false)` is returned.
    fn reopen_db(&self) -> Result<bool> {
        let mut open = self
            .open
            .write()
            .map_err(|_| Error::Internal("store reopen lock poisoned".into()))?;
        if let Some(db) = open.as_ref() {
            db.db.flush()?;
            let started = Instant::now();
            while Arc::strong_count(db) > 1 {
                if started.elapsed() > REOPEN_PATIENCE {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Only this lock holds the database now, and new operations wait for the lock.
        drop(open.take());
        wait_until_closed(&self.dir, Duration::from_secs(30))?;
        *open = Some(Arc::new(open_db(&self.dir, self.cache_bytes)?));
        self.writes.store(0, Ordering::Relaxed);
        Ok(true)
    }
}

fn open_db(dir: &Path, cache_bytes: u64) -> Result<OpenDb> {
    let db = sled::Config::new()
        .path(dir.join("store"))
        .cache_capacity(cache_bytes)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                Error::StoreLocked {
                    path: dir.to_path_buf(),
                }
            }
            other => Error::Store(format!("cannot open store in {}: {other}", dir.display())),
        })?;
    Ok(OpenDb {
        db,
        trees: RwLock::new(HashMap::new()),
    })
}

/// Waits until the store in `dir`, dropped by this process, has released its lock.
///
/// sled lets go of its lock file only when its last background thread ends, which may be a
/// moment after the `Store` is dropped: a folder that is renamed or opened again at once
/// (`portico restore`) would still read as "in use by another process". Gives up after
/// `patience` and says so.
pub fn wait_until_closed(dir: &Path, patience: std::time::Duration) -> Result<()> {
    let lock = dir.join("store").join("db");
    let started = std::time::Instant::now();
    loop {
        let file = match std::fs::File::open(&lock) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < patience => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::StoreLocked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// Folders 0700 and files 0600 from `path` down (symbolic links are left alone). sled's
/// flusher already runs, so a snapshot file may vanish under the walk: that is no error.
fn make_private(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if meta.is_file() {
        return tighten(path, 0o600);
    }
    if meta.is_dir() {
        tighten(path, 0o700)?;
        let entries = match std::fs::read_dir(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        for entry in entries {
            make_private(&entry?.path())?;
        }
    }
    Ok(())
}

/// Takes away whatever `path`'s mode allows beyond `mode`.
fn tighten(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let now = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?.permissions().mode() & 0o777,
    };
    if now & !mode != 0 {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(now & mode)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(|e| {
                Error::Store(format!("cannot make {} private: {e}", path.display()))
            })?,
        }
    }
    Ok(())
}

impl Backend for SledBackend {
    fn writes_since_open(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn reopen(&self) -> Result<bool> {
        self.reopen_db()
    }

    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let db = self.db()?;
        Ok(db.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.db()?;
        db.tree(tree)?
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn scan_prefix_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(range) = prefix_range(prefix, after, None) else {
            return Ok(Vec::new());
        };
        let db = self.db()?;
        db.tree(tree)?
            .range(range)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn scan_prefix_rev_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(range) = prefix_range(prefix, None, before) else {
            return Ok(Vec::new());
        };
        let db = self.db()?;
        db.tree(tree)?
            .range(range)
            .rev()
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn len(&self, tree: &str) -> Result<usize> {
        let db = self.db()?;
        Ok(db.tree(tree)?.len())
    }

    fn is_empty(&self, tree: &str) -> Result<bool> {
        let db = self.db()?;
        Ok(db.tree(tree)?.is_empty())
    }

    fn apply(&self, ops: &[Op]) -> Result<()> {
        // Group ops into one sled batch per tree, then apply all batches in one transaction.
        let mut names: Vec<&str> = Vec::new();
        let mut batches: Vec<sled::Batch> = Vec::new();
        for op in ops {
            let i = match names.iter().position(|n| *n == op.tree) {
                Some(i) => i,
                None => {
                    names.push(&op.tree);
                    batches.push(sled::Batch::default());
                    names.len() - 1
                }
            };
            match &op.value {
                Some(v) => batches[i].insert(op.key.as_slice(), v.as_slice()),
                None => batches[i].remove(op.key.as_slice()),
            }
        }
        let db = self.db()?;
        self.writes.fetch_add(ops.len() as u64, Ordering::Relaxed);
        if names.len() == 1 {
            return Ok(db.tree(names[0])?.apply_batch(batches.remove(0))?);
        }
        let trees = names
            .iter()
            .map(|n| db.tree(n))
            .collect::<Result<Vec<_>>>()?;
        trees
            .as_slice()
            .transaction(|views| {
                for (view, batch) in views.iter().zip(&batches) {
                    view.apply_batch(batch)?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<Error>>(())
            })
            .map_err(Error::from)
    }

    fn flush(&self) -> Result<()> {
        self.db()?.db.flush()?;
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for raw in self.db()?.db.tree_names() {
            // sled's own default tree: Portico never writes to it.
            if raw.as_ref() == DEFAULT_TREE {
                continue;
            }
            let name = String::from_utf8(raw.to_vec()).map_err(|_| {
                Error::Store(format!(
                    "a tree name is not UTF-8: {}",
                    hex::encode(raw.as_ref())
                ))
            })?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    fn for_each(&self, tree: &str, f: PairVisitor<'_>) -> Result<()> {
        let db = self.db()?;
        for kv in db.tree(tree)?.iter() {
            let (k, v) = kv?;
            f(&k, &v)?;
        }
        Ok(())
    }
}

/// The name of the tree sled keeps for itself (`Db` used as a tree).
const DEFAULT_TREE: &[u8] = b"__sled__default";

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_reopen_keeps_every_record_and_waits_for_running_operations() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = SledBackend::open(dir.path()).expect("open");
        let op = |key: u8| Op {
            tree: "t".into(),
            key: vec![key],
            value: Some(vec![key; 3]),
        };
        b.apply(&[op(1), op(2)]).expect("write");
        assert_eq!(b.writes_since_open(), 2);

        assert!(b.reopen().expect("reopen"));
        assert_eq!(b.writes_since_open(), 0);
        assert_eq!(b.get("t", &[2]).expect("get"), Some(vec![2; 3]));
        b.apply(&[op(3)]).expect("a write after it");

        // An operation still running holds the old database: the reopen gives up, and nothing
        // changes for anyone.
        let running = b.db().expect("db");
        let started = Instant::now();
        assert!(!b.reopen().expect("gave up"));
        assert!(started.elapsed() >= REOPEN_PATIENCE);
        assert_eq!(running.tree("t").expect("tree").len(), 3);
        drop(running);
        assert!(b.reopen().expect("reopen"));
        assert_eq!(
            b.scan_prefix("t", &[]).expect("scan").len(),
            3,
            "every record is there"
        );
    }

    #[test]
    fn waiting_for_a_close_ends_when_the_lock_is_let_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let open = SledBackend::open(dir.path()).expect("open");
        match wait_until_closed(dir.path(), Duration::from_millis(50)) {
            Err(Error::StoreLocked { path }) => assert_eq!(path, dir.path()),
            other => panic!("an open store must read as locked, got {other:?}"),
        }
        drop(open);
        wait_until_closed(dir.path(), Duration::from_secs(10)).expect("released");
        SledBackend::open(dir.path()).expect("opens again at once");
        // A folder without a store has nothing to wait for.
        let empty = tempfile::tempdir().expect("tmp");
        wait_until_closed(empty.path(), Duration::ZERO).expect("no store");
    }
}
