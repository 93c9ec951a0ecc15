//! An in-memory backend for unit tests of code above the store. It passes the same conformance
//! suite as sled; it is never used instead of sled in end-to-end tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Backend, Op, prefix_range};
use crate::error::{Error, Result};

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Default)]
pub struct MemoryBackend {
    trees: RwLock<HashMap<String, Tree>>,
}

fn poisoned() -> Error {
    Error::Internal("memory backend lock poisoned".into())
}

impl Backend for MemoryBackend {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        Ok(trees.get(tree).and_then(|t| t.get(key).cloned()))
    }

    fn scan_prefix(&self, tree: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        Ok(trees
            .get(tree)
            .map(|t| {
                t.range(prefix.to_vec()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn scan_prefix_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        let (Some(t), Some(range)) = (trees.get(tree), prefix_range(prefix, after, None)) else {
            return Ok(Vec::new());
        };
        Ok(t.range(range)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_prefix_rev_limited(
        &self,
        tree: &str,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        let (Some(t), Some(range)) = (trees.get(tree), prefix_range(prefix, None, before)) else {
            return Ok(Vec::new());
        };
        Ok(t.range(range)
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn len(&self, tree: &str) -> Result<usize> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        Ok(trees.get(tree).map_or(0, |t| t.len()))
    }

    fn apply(&self, ops: &[Op]) -> Result<()> {
        // Holding the write lock for the whole batch makes it atomic to readers.
        let mut trees = self.trees.write().map_err(|_| poisoned())?;
        for op in ops {
            let tree = trees.entry(op.tree.to_string()).or_default();
            match &op.value {
                Some(v) => {
                    tree.insert(op.key.clone(), v.clone());
                }
                None => {
                    tree.remove(&op.key);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        let trees = self.trees.read().map_err(|_| poisoned())?;
        let mut names: Vec<String> = trees.keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}
