//! The clients' contracts and documents (the Documents tab, `ci_display_contracts_tab`),
//! imported in the bundle's `documents`. A document shown in the portal (`display_in_cp`) has
//! its file copied into the data folder's `documents/` by the import, so the billing system's
//! export may go away; a re-import copies a file again only when its path, size or
//! modification time changed, and keeps the copy when the file is gone from the export.
//! Documents not shown in the portal are recorded without a copy.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{Client, Document, DocumentCopy};
use crate::store::{Store, id_key};
use crate::web::download::{content_type, extension, sanitize_name};

/// Largest document file, as for the operator's files.
pub const MAX_BYTES: u64 = crate::files::MAX_BYTES;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;

/// The folder the copies are kept in.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("documents")
}

/// A title a client may be shown: not empty, one line, at most [`MAX_TITLE`] characters.
pub fn check_title(title: &str) -> std::result::Result<(), String> {
    let t = title.trim();
    if t.is_empty() {
        Err("must not be empty".into())
    } else if t.chars().any(char::is_control) {
        Err("has control characters (such as a line break)".into())
    } else if t.chars().count() > MAX_TITLE {
        Err(format!("longer than {MAX_TITLE} characters"))
    } else {
        Ok(())
    }
}

/// The file of a document shown in the portal: an absolute path to a readable regular file of
/// at most [`MAX_BYTES`] (the import copies it).
pub fn check_source(file: &str) -> std::result::Result<std::fs::Metadata, String> {
    let path = Path::new(file);
    if !path.is_absolute() {
        return Err(format!(
            "`{file}` is not an absolute path (the portal reads it, from its own working folder)"
        ));
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("`{file}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{file}` is not a file"));
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "`{file}` is larger than {} MiB",
            MAX_BYTES / 1024 / 1024
        ));
    }
    std::fs::File::open(path).map_err(|e| format!("`{file}` cannot be read: {e}"))?;
    Ok(meta)
}

/// What [`copy_files`] did: copies to remove once the import is written (replaced, no longer
/// shown, or of deleted documents), and the new copies to remove if it fails.
#[derive(Debug, Default)]
pub struct CopyPlan {
    pub obsolete: Vec<String>,
    pub created: Vec<String>,
}

impl CopyPlan {
    /// After a written import: the old copies go.
    pub fn finish(self, data_dir: &Path) {
        remove_copies(data_dir, &self.obsolete);
    }

    /// After a failed import: the new copies go, the old ones stay.
    pub fn abandon(self, data_dir: &Path) {
        remove_copies(data_dir, &self.created);
    }
}

fn remove_copies(data_dir: &Path, names: &[String]) {
    for name in names {
        if let Err(e) = std::fs::remove_file(folder(data_dir).join(name))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(copy = %name, "removing an old document copy failed: {e}");
        }
    }
}

/// Fills in the `copy` of every document of a checked bundle that is shown in the portal,
/// copying the files that are new or changed (a dry run copies nothing and marks them as
/// changed). `deleted` are the ids of the documents the import deletes: their copies are
/// planned for removal.
pub fn copy_files(
    data_dir: &Path,
    store: &Store,
    next_id: &dyn Fn() -> u64,
    documents: &mut [Document],
    deleted: impl Iterator<Item = u64>,
    dry_run: bool,
) -> Result<CopyPlan> {
    let mut plan = CopyPlan::default();
    for id in deleted {
        if let Some(old) = store.get::<Document>(&id_key(id))?
            && let Some(c) = old.copy
        {
            plan.obsolete.push(c.stored_as);
        }
    }
    let dir = folder(data_dir);
    if !dry_run && documents.iter().any(|d| d.display_in_cp) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    for doc in documents.iter_mut() {
        let old = store
            .get::<Document>(&id_key(doc.id))?
            .and_then(|d| d.copy.map(|c| (d.file, c)));
        if !doc.display_in_cp {
            doc.copy = None;
            if let Some((_, c)) = old {
                plan.obsolete.push(c.stored_as);
            }
            continue;
        }
        let meta = match check_source(&doc.file) {
            Ok(m) => m,
            // Gone from the export since an earlier import copied it: the copy stays.
            Err(_)
                if old.as_ref().is_some_and(|(file, c)| {
                    *file == doc.file && dir.join(&c.stored_as).is_file()
                }) =>
            {
                doc.copy = old.map(|(_, c)| c);
                continue;
            }
            Err(problem) => {
                if !dry_run {
                    std::mem::take(&mut plan).abandon(data_dir);
                }
                return Err(Error::Invalid(format!(
                    "document {}: {problem}; nothing was changed",
                    doc.id
                )));
            }
        };
        let current = old.as_ref().is_some_and(|(file, c)| {
            *file == doc.file
                && c.size == meta.len()
                && c.source_mtime == meta.mtime()
                && dir.join(&c.stored_as).is_file()
        });
        if current {
            doc.copy = old.map(|(_, c)| c);
            continue;
        }
        let name = sanitize_name(&doc.file);
        let ext = extension(&name).unwrap_or_default();
        let mut copy = DocumentCopy {
            stored_as: String::new(),
            content_type: content_type(&ext).to_string(),
            name,
            size: meta.len(),
            source_mtime: meta.mtime(),
        };
        if !dry_run {
            copy.stored_as = format!("{:016x}", next_id());
            let target = dir.join(&copy.stored_as);
            let copied = (|| -> std::io::Result<u64> {
                let n = std::fs::copy(&doc.file, &target)?;
                std::fs::set_permissions(
                    &target,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                std::fs::File::open(&target)?.sync_all()?;
                Ok(n)
            })();
            match copied {
                Ok(n) => {
                    copy.size = n;
                    plan.created.push(copy.stored_as.clone());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&target);
                    std::mem::take(&mut plan).abandon(data_dir);
                    return Err(Error::Invalid(format!(
                        "document {}: `{}` cannot be copied: {e}; nothing was changed",
                        doc.id, doc.file
                    )));
                }
            }
            if let Some((_, c)) = old {
                plan.obsolete.push(c.stored_as);
            }
        }
        doc.copy = Some(copy);
    }
    Ok(plan)
}

/// The documents a client sees: their own with `display_in_cp`, newest first.
pub fn visible_to(store: &Store, client: &Client) -> Result<Vec<Document>> {
    let mut docs: Vec<Document> = store
        .documents_of(client.id)?
        .into_iter()
        .filter(|d| d.display_in_cp)
        .collect();
    docs.sort_by(|a, b| b.date.cmp(&a.date).then(b.id.cmp(&a.id)));
    Ok(docs)
}

/// One document if it is this client's and shown in the portal; `None` otherwise.
pub fn for_client(store: &Store, client: &Client, id: u64) -> Result<Option<Document>> {
    Ok(store
        .get::<Document>(&id_key(id))?
        .filter(|d| d.client_id == client.id && d.display_in_cp))
}
