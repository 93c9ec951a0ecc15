//! The operator's files (the Files tab, `ci_display_documents_tab`): `portico files add PATH
//! [--title T] [--invoice-group G]`, `list`, `remove ID`. A file is copied into the data folder's
//! `files/` (the original may go away); a file with an invoice group is shown only to that
//! group's clients.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{Client, OperatorFile};
use crate::portal::Portal;
use crate::web::download::{content_type, extension, sanitize_name};

/// Largest file the operator may add.
pub const MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;

/// What `portico files add` asks for. `path` is absolute (the CLI makes it so).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewFile {
    pub path: PathBuf,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub invoice_group: Option<u64>,
}

/// The folder the files are copied into.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("files")
}

pub fn add(portal: &Portal, new: NewFile) -> Result<OperatorFile> {
    let meta = std::fs::metadata(&new.path)
        .map_err(|e| Error::Invalid(format!("{}: {e}", new.path.display())))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{}: not a file",
            new.path.display()
        )));
    }
    if meta.len() > MAX_BYTES {
        return Err(Error::Invalid(format!(
            "{}: larger than {} MiB",
            new.path.display(),
            MAX_BYTES / 1024 / 1024
        )));
    }
    let name = sanitize_name(&new.path.to_string_lossy());
    let title = match new.title.as_deref().map(str::trim) {
        Some("") => return Err(Error::Invalid("--title: the title is empty".into())),
        Some(t) if t.chars().any(char::is_control) => {
            return Err(Error::Invalid(
                "--title: the title has control characters (such as a line break)".into(),
            ));
        }
        Some(t) if t.chars().count() > MAX_TITLE => {
            return Err(Error::Invalid(format!(
                "--title: longer than {MAX_TITLE} characters"
            )));
        }
        Some(t) => t.to_string(),
        None => name.clone(),
    };
    if let Some(g) = new.invoice_group
        && portal.store.invoice_group(g)?.is_none()
    {
        return Err(Error::Invalid(format!(
            "--invoice-group: there is no invoice group {g}"
        )));
    }
    let dir = folder(&portal.data_dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    // Copied under a fresh name first, flushed, then recorded; a failed record removes it.
    let stored_as = format!("{:016x}", portal.next_id());
    let target = dir.join(&stored_as);
    let copied = (|| -> std::io::Result<u64> {
        let n = std::fs::copy(&new.path, &target)?;
        // For the portal's user only, like the store (copy keeps the original's mode).
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::File::open(&target)?.sync_all()?;
        Ok(n)
    })();
    let size = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            return Err(Error::Invalid(format!(
                "{}: cannot be copied: {e}",
                new.path.display()
            )));
        }
    };
    let ext = extension(&name).unwrap_or_default();
    let recorded = portal.store.write(|tx| {
        let existing = tx.scan_records::<OperatorFile>()?;
        let file = OperatorFile {
            id: existing.iter().map(|f| f.id).max().unwrap_or(0) + 1,
            title,
            name,
            content_type: content_type(&ext).to_string(),
            size,
            stored_as,
            added: portal.clock.unix(),
            invoice_group_id: new.invoice_group,
        };
        tx.put(&file)?;
        Ok(file)
    });
    match recorded {
        Ok(file) => {
            tracing::info!(id = file.id, "file added");
            Ok(file)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            Err(e)
        }
    }
}

pub fn list(portal: &Portal) -> Result<String> {
    let files: Vec<OperatorFile> = portal.store.all()?;
    if files.is_empty() {
        return Ok("no files (add one with `portico files add PATH`)".into());
    }
    let e = crate::text::escape;
    Ok(files
        .iter()
        .map(|f| {
            format!(
                "{}  {}  {}  {}  {} B{}\n",
                f.id,
                e(&f.title),
                e(&f.name),
                f.content_type,
                f.size,
                f.invoice_group_id
                    .map_or(String::new(), |g| format!("  invoice group {g}")),
            )
        })
        .collect())
}

pub fn remove(portal: &Portal, id: u64) -> Result<String> {
    let key = crate::store::id_key(id);
    let Some(file) = portal.store.get::<OperatorFile>(&key)? else {
        return Err(Error::NotFound(format!("file {id}")));
    };
    portal.store.write(|tx| tx.delete::<OperatorFile>(&key))?;
    if let Err(e) = std::fs::remove_file(folder(&portal.data_dir).join(&file.stored_as))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(id, "removing the copy of file failed: {e}");
    }
    tracing::info!(id, "file removed");
    Ok(format!("file {id} removed"))
}

/// The files a client may see: their invoice group's and those of no group, by title.
pub fn visible_to(portal: &Portal, client: &Client) -> Result<Vec<OperatorFile>> {
    let mut files: Vec<OperatorFile> = portal
        .store
        .all::<OperatorFile>()?
        .into_iter()
        .filter(|f| {
            f.invoice_group_id
                .is_none_or(|g| g == client.invoice_group_id)
        })
        .collect();
    files.sort_by_key(|f| (f.title.to_lowercase(), f.id));
    Ok(files)
}

/// One file if this client may see it; `None` otherwise (another group's file or no file).
pub fn for_client(portal: &Portal, client: &Client, id: u64) -> Result<Option<OperatorFile>> {
    Ok(portal
        .store
        .get::<OperatorFile>(&crate::store::id_key(id))?
        .filter(|f| {
            f.invoice_group_id
                .is_none_or(|g| g == client.invoice_group_id)
        }))
}
