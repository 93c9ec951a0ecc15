//! Backups of the whole store: one file holding every tree with every key and value, taken as
//! one consistent state, and the restore of such a file into a new data folder.
//!
//! The format (documented for operators in docs/backup.md), all integers big-endian:
//!
//! ```text
//! header   "PORTICO-BACKUP\n" (15 bytes), format version u32, Portico version (u8 length +
//!          UTF-8), time of the snapshot (i64 Unix seconds)
//! entries  0x01 tree:  name length u32, name (UTF-8); the pairs that follow are in this tree
//!          0x02 pair:  key length u32, key, value length u32, value
//! end      0x00, number of trees u64, number of pairs u64, SHA-256 of every byte before the
//!          digest (32 bytes); nothing may follow
//! ```
//!
//! Consistency: the snapshot is read while the store's write lock is held
//! ([`Store::with_writes_paused`]), the lock every write takes. Writers wait (requests that only
//! read go on), so the file is the state after one write and before the next, across all trees.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Backend, Op, Store};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 15] = b"PORTICO-BACKUP\n";
/// The format this Portico writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

const TAG_END: u8 = 0x00;
const TAG_TREE: u8 = 0x01;
const TAG_PAIR: u8 = 0x02;

/// Limits that keep a damaged file from making the reader allocate without bound.
const MAX_NAME: u32 = 4096;
const MAX_VALUE: u32 = 1 << 30;

/// Pairs written to the new store per batch during a restore, and between flushes.
const RESTORE_BATCH: usize = 10_000;
const RESTORE_FLUSH: usize = 100_000;

/// What a backup holds, from its header and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub format: u32,
    pub portico_version: String,
    /// When the snapshot was taken (Unix seconds).
    pub created: i64,
    pub trees: u64,
    pub pairs: u64,
    pub bytes: u64,
}

impl Info {
    /// One line for the operator.
    pub fn describe(&self) -> String {
        let when = chrono::DateTime::from_timestamp(self.created, 0).map_or_else(
            || self.created.to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        );
        format!(
            "{} trees, {} records, {} bytes; taken {when} by Portico {} (backup format {})",
            self.trees, self.pairs, self.bytes, self.portico_version, self.format
        )
    }
}

/// A writer that hashes what passes through it and counts it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn len_u32(len: usize, what: &str) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Internal(format!("{what} of {len} bytes is too long for a backup")))
}

/// Writes the snapshot of `backend` (the caller holds writers off) to `out`.
fn write_snapshot<W: Write>(backend: &dyn Backend, out: W, now_unix: i64) -> Result<(W, Info)> {
    let mut w = Hashing {
        inner: out,
        hash: Sha256::new(),
        bytes: 0,
    };
    let version = env!("CARGO_PKG_VERSION");
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_be_bytes())?;
    w.write_all(&[version.len() as u8])?;
    w.write_all(version.as_bytes())?;
    w.write_all(&now_unix.to_be_bytes())?;
    let (mut trees, mut pairs) = (0u64, 0u64);
    for name in backend.tree_names()? {
        w.write_all(&[TAG_TREE])?;
        w.write_all(&len_u32(name.len(), "a tree name")?)?;
        w.write_all(name.as_bytes())?;
        trees += 1;
        backend.for_each(&name, &mut |k, v| {
            w.write_all(&[TAG_PAIR])?;
            w.write_all(&len_u32(k.len(), "a key")?)?;
            w.write_all(k)?;
            w.write_all(&len_u32(v.len(), "a value")?)?;
            w.write_all(v)?;
            pairs += 1;
            Ok(())
        })?;
    }
    w.write_all(&[TAG_END])?;
    w.write_all(&trees.to_be_bytes())?;
    w.write_all(&pairs.to_be_bytes())?;
    let digest = w.hash.clone().finalize();
    w.write_all(&digest)?;
    w.flush()?;
    let info = Info {
        format: FORMAT_VERSION,
        portico_version: version.to_string(),
        created: now_unix,
        trees,
        pairs,
        bytes: w.bytes,
    };
    Ok((w.inner, info))
}

/// Takes a consistent snapshot of `store` and writes it to `path` atomically: into a new file
/// (mode 0600: it holds password hashes) beside it, synced, then renamed over `path`. A failed
/// backup leaves nothing behind and an existing `path` as it was.
pub fn write_file(store: &Store, path: &Path, now_unix: i64) -> Result<Info> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{shown} is a folder; give the name of the backup file to write"
        )));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "cannot write {shown}: the folder {} does not exist",
            dir.display()
        )));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".portico-backup-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::Invalid(format!("cannot write {shown}: {e}")))?;
    let _unfinished = Unfinished::register(tmp.path());
    let (file, info) = store.with_writes_paused(|backend| {
        write_snapshot(backend, BufWriter::new(tmp.as_file()), now_unix)
    })?;
    drop(file);
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Error::Invalid(format!("cannot write {shown}: {}", e.error)))?;
    // The rename itself must survive a crash too.
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(info)
}

/// What the parser meets in a backup, in order.
enum Entry<'a> {
    /// The pairs that follow belong to this tree.
    Tree(&'a str),
    Pair(&'a [u8], &'a [u8]),
}

/// Temporary files of backups being written, so that a portal stopping in the middle of one
/// removes it ([`abandon_unfinished`]) instead of leaving it beside the backups.
static UNFINISHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Keeps a temporary file in [`UNFINISHED`] while it lives.
struct Unfinished(PathBuf);

impl Unfinished {
    fn register(path: &Path) -> Unfinished {
        let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
        list.push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|p| *p != self.0);
    }
}

/// Removes the temporary files of backups still being written: the process is ending and they
/// will not be finished. (Their writer, if it goes on, fails at the rename.)
pub fn abandon_unfinished() {
    let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
    for path in list.drain(..) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                "a backup was still being written at shutdown; its unfinished file {} was removed",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("could not remove {}: {e}", path.display()),
        }
    }
}

/// Reads a backup and checks it from end to end, calling back for each entry as it goes.
/// Nothing read counts before the checksum at the end is checked: callers that act on the
/// content (restore) read the file twice, checking first.
struct Parser<R> {
    inner: R,
    hash: Sha256,
    read: u64,
    file: String,
}

impl<R: Read> Parser<R> {
    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        // Read up to the length, never allocated ahead: a damaged length cannot ask for a GiB.
        let mut buf = Vec::with_capacity(n.min(64 * 1024));
        (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", self.file)))?;
        if buf.len() < n {
            return Err(Error::Invalid(format!(
                "{} is incomplete: it ends after {} bytes, inside {what}. It was cut short (or is still being written); use a complete backup. Nothing was restored.",
                self.file,
                self.read + buf.len() as u64
            )));
        }
        self.hash.update(&buf);
        self.read += n as u64;
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    fn damaged(&self, why: &str) -> Error {
        Error::Invalid(format!(
            "{} is damaged ({why}, at byte {}); use another backup. Nothing was restored.",
            self.file, self.read
        ))
    }

    fn sized(&mut self, max: u32, what: &str) -> Result<Vec<u8>> {
        let len = self.u32(what)?;
        if len > max {
            return Err(self.damaged(&format!("{what} of {len} bytes")));
        }
        self.bytes(len as usize, what)
    }

    /// Reads the whole file; returns what it holds once its checksum matched.
    fn run(mut self, on: &mut dyn FnMut(Entry<'_>) -> Result<()>) -> Result<Info> {
        let magic = self.bytes(MAGIC.len(), "the header").map_err(|e| match e {
            Error::Invalid(_) if self.read == 0 => self.not_a_backup(),
            other => other,
        })?;
        if magic != MAGIC {
            return Err(self.not_a_backup());
        }
        let format = self.u32("the header")?;
        let vlen = self.u8("the header")?;
        let version = self.bytes(vlen as usize, "the header")?;
        let version = String::from_utf8_lossy(&version).into_owned();
        if format > FORMAT_VERSION || format == 0 {
            return Err(Error::Invalid(format!(
                "{} is in backup format {format}, written by Portico {version}; this Portico ({}) reads backup format {FORMAT_VERSION} only. Restore it with Portico {version} or newer. Nothing was restored.",
                self.file,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let created = self.u64("the header")? as i64;
        let (mut trees, mut pairs, mut in_tree) = (0u64, 0u64, false);
        loop {
            match self.u8("the records")? {
                TAG_TREE => {
                    let name = self.sized(MAX_NAME, "a tree name")?;
                    let name = String::from_utf8(name)
                        .map_err(|_| self.damaged("a tree name is not UTF-8"))?;
                    on(Entry::Tree(&name))?;
                    trees += 1;
                    in_tree = true;
                }
                TAG_PAIR if in_tree => {
                    let k = self.sized(MAX_VALUE, "a key")?;
                    let v = self.sized(MAX_VALUE, "a value")?;
                    on(Entry::Pair(&k, &v))?;
                    pairs += 1;
                }
                TAG_END => break,
                _ => return Err(self.damaged("unknown record")),
            }
        }
        let want_trees = self.u64("the end")?;
        let want_pairs = self.u64("the end")?;
        let computed = self.hash.clone().finalize();
        let digest = self.bytes(32, "the checksum")?;
        if digest.as_slice() != computed.as_slice() {
            return Err(self.damaged("its SHA-256 checksum does not match its content"));
        }
        if (want_trees, want_pairs) != (trees, pairs) {
            return Err(self.damaged("its counts do not match its content"));
        }
        let mut rest = [0u8; 1];
        if self.inner.read(&mut rest)? != 0 {
            return Err(self.damaged("there are bytes after its end"));
        }
        Ok(Info {
            format,
            portico_version: version,
            created,
            trees,
            pairs,
            bytes: self.read,
        })
    }

    fn not_a_backup(&self) -> Error {
        Error::Invalid(format!(
            "{} is not a Portico backup (it does not start with PORTICO-BACKUP); nothing was restored",
            self.file
        ))
    }
}

fn parser(path: &Path) -> Result<Parser<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    Ok(Parser {
        inner: BufReader::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        read: 0,
        file: path.display().to_string(),
    })
}

/// Reads a backup from end to end and checks it, changing nothing.
pub fn verify(path: &Path) -> Result<Info> {
    parser(path)?.run(&mut |_| Ok(()))
}

/// Restores the backup at `path` into `data_dir`, which must be a new or empty folder. The store
/// is built in a hidden folder (inside the empty folder, or beside the new one) and moved into
/// place only when complete: a restore that fails leaves `data_dir` as it was (and no new
/// folder).
pub fn restore(path: &Path, data_dir: &Path) -> Result<Info> {
    let shown = data_dir.display();
    let existed = match std::fs::symlink_metadata(data_dir) {
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(data_dir)?;
            if entries.next().is_some() {
                return Err(Error::Invalid(format!(
                    "{shown} is not empty; restore into a new or empty folder (nothing was changed)"
                )));
            }
            true
        }
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{shown} is not a folder; restore into a new or empty folder (nothing was changed)"
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::Invalid(format!("cannot use {shown}: {e}"))),
    };
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::Invalid(format!(
            "cannot restore into {shown}: the folder {} does not exist (nothing was changed)",
            parent.display()
        )));
    }
    // First the whole file is checked; nothing is written before it is known to be complete.
    let checked = verify(path)?;

    // Built inside the empty folder when there is one (its parent may be the system's, such
    // as /var/lib, where the portal's user cannot write), else beside the new one.
    let staging = tempfile::Builder::new()
        .prefix(".portico-restore-")
        .tempdir_in(if existed { data_dir } else { parent.as_path() })
        .map_err(|e| Error::Invalid(format!("cannot restore into {shown}: {e}")))?;
    let store = Store::open(staging.path())?;
    let backend = store.backend();
    let mut tree = String::new();
    let mut batch: Vec<Op> = Vec::with_capacity(RESTORE_BATCH);
    let mut unflushed = 0usize;
    // sled keeps unflushed writes in memory: flushed every few batches, a restore of millions
    // of records stays within a few hundred MB.
    let mut write = |batch: &mut Vec<Op>| -> Result<()> {
        backend.apply(batch)?;
        unflushed += batch.len();
        batch.clear();
        if unflushed >= RESTORE_FLUSH {
            backend.flush()?;
            unflushed = 0;
        }
        Ok(())
    };
    let info = parser(path)?.run(&mut |entry| {
        match entry {
            Entry::Tree(name) => {
                if !batch.is_empty() {
                    write(&mut batch)?;
                }
                tree = name.to_string();
            }
            Entry::Pair(k, v) => {
                batch.push(Op {
                    tree: tree.clone().into(),
                    key: k.to_vec(),
                    value: Some(v.to_vec()),
                });
                if batch.len() >= RESTORE_BATCH {
                    write(&mut batch)?;
                }
            }
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        write(&mut batch)?;
    }
    if info != checked {
        return Err(Error::Invalid(format!(
            "{} changed while it was being restored; nothing was restored",
            path.display()
        )));
    }
    store.flush()?;
    drop(store);
    crate::store::wait_until_closed(staging.path(), std::time::Duration::from_secs(10))?;
    if existed {
        std::fs::rename(staging.path().join("store"), data_dir.join("store"))?;
    } else {
        std::fs::rename(staging.path(), data_dir)?;
        // Renamed away: nothing is left for the guard to remove.
        let _ = staging.keep();
    }
    std::fs::File::open(&parent)?.sync_all()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Store {
        let store = Store::in_memory();
        store
            .write(|tx| {
                tx.set_raw("clients", vec![0, 1], Some(b"one".to_vec()));
                tx.set_raw("clients", vec![0, 2], Some(vec![]));
                tx.set_raw("meta", b"k".to_vec(), Some(vec![0xff; 300]));
                Ok(())
            })
            .expect("write");
        store
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn dump(store: &Store) -> Vec<(String, Pairs)> {
        let b = store.backend();
        b.tree_names()
            .expect("names")
            .into_iter()
            .map(|n| {
                let pairs = b.scan_prefix(&n, &[]).expect("scan");
                (n, pairs)
            })
            .collect()
    }

    #[test]
    fn a_backup_restores_every_pair_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("b.portico-backup");
        let store = sample();
        let info = write_file(&store, &file, 1_700_000_000).expect("backup");
        assert_eq!((info.trees, info.pairs), (2, 3));
        assert_eq!(info.bytes, std::fs::metadata(&file).expect("meta").len());
        assert_eq!(verify(&file).expect("verify"), info);

        let target = dir.path().join("restored");
        assert_eq!(restore(&file, &target).expect("restore"), info);
        let restored = Store::open(&target).expect("open");
        assert_eq!(dump(&restored), dump(&store));
        drop(restored);

        // Every cut is found, and every flipped byte.
        let bytes = std::fs::read(&file).expect("read");
        let bad = dir.path().join("bad");
        for cut in 0..bytes.len() {
            std::fs::write(&bad, &bytes[..cut]).expect("write");
            let e = verify(&bad).expect_err("truncated").to_string();
            assert!(
                e.contains("is incomplete") || e.contains("is not a Portico backup"),
                "{cut}: {e}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            std::fs::write(&bad, &b).expect("write");
            assert!(verify(&bad).is_err(), "flipped byte {i} was not noticed");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        std::fs::write(&bad, &longer).expect("write");
        assert!(
            verify(&bad)
                .expect_err("trailing")
                .to_string()
                .contains("after its end")
        );
    }
}
