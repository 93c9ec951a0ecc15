//! Numbered migrations, one sequence per owner (core or a plugin). The last applied number is kept
//! in the `meta` tree under `migration ++ SEP ++ owner`.

use super::{SEP, Store};
use crate::error::{Error, Result};

pub struct Migration {
    /// `core` or the plugin id.
    pub owner: &'static str,
    /// 1, 2, 3... in the order they must run.
    pub number: u32,
    pub description: &'static str,
    pub run: MigrationFn,
}

/// Core's migrations see the whole store; a plugin's see only its own namespace.
pub enum MigrationFn {
    Core(fn(&Store) -> Result<()>),
    Plugin(fn(&crate::plugin::Namespace) -> Result<()>),
}

pub const META_TREE: &str = "meta";

fn meta_key(owner: &str) -> Vec<u8> {
    let mut k = b"migration".to_vec();
    k.push(SEP);
    k.extend_from_slice(owner.as_bytes());
    k
}

impl Store {
    pub fn migration_level(&self, owner: &str) -> Result<u32> {
        match self.get_raw(META_TREE, &meta_key(owner))? {
            Some(v) => {
                let bytes: [u8; 4] = v.as_slice().try_into().map_err(|_| Error::Corrupt {
                    tree: META_TREE.into(),
                    key: owner.into(),
                    cause: "migration level is not 4 bytes".into(),
                })?;
                Ok(u32::from_be_bytes(bytes))
            }
            None => Ok(0),
        }
    }

    /// Runs every migration above the recorded level, in number order, recording each one.
    /// Returns how many ran.
    pub fn migrate(&self, migrations: &[Migration]) -> Result<usize> {
        let mut ran = 0;
        let mut sorted: Vec<&Migration> = migrations.iter().collect();
        sorted.sort_by_key(|m| (m.owner, m.number));
        for m in sorted {
            if m.number <= self.migration_level(m.owner)? {
                continue;
            }
            tracing::info!(
                owner = m.owner,
                number = m.number,
                "migration: {}",
                m.description
            );
            match m.run {
                MigrationFn::Core(run) => run(self)?,
                MigrationFn::Plugin(run) => {
                    run(&crate::plugin::Namespace::new(self.clone(), m.owner))?
                }
            }
            self.write(|tx| {
                tx.set_raw(
                    META_TREE,
                    meta_key(m.owner),
                    Some(m.number.to_be_bytes().to_vec()),
                );
                Ok(())
            })?;
            ran += 1;
        }
        Ok(ran)
    }
}
