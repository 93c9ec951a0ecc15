//! The production backend: sled, one sled tree per named tree.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use sled::Transactional;

use super::{Backend, Op, PairVisitor, prefix_range};
use crate::error::{Error, Result};

pub struct SledBackend {
    db: sled::Db,
    trees: RwLock<HashMap<String, sled::Tree>>,
}

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
        let db = sled::Config::new()
            .path(&store)
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
        make_private(&store)?;
        Ok(SledBackend {
            db,
            trees: RwLock::new(HashMap::new()),
        })
    }

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
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)?
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
        self.tree(tree)?
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
        self.tree(tree)?
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
        Ok(self.tree(tree)?.len())
    }

    fn is_empty(&self, tree: &str) -> Result<bool> {
        Ok(self.tree(tree)?.is_empty())
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
        if names.len() == 1 {
            return Ok(self.tree(names[0])?.apply_batch(batches.remove(0))?);
        }
        let trees = names
            .iter()
            .map(|n| self.tree(n))
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
        self.db.flush()?;
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for raw in self.db.tree_names() {
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
        for kv in self.tree(tree)?.iter() {
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
