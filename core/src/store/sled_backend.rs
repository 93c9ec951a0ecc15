//! The production backend: sled, one sled tree per named tree.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use sled::Transactional;

use super::{Backend, Op};
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
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
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
}
