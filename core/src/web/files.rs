//! The Files tab (`ci_display_documents_tab`): the operator's files for the client's invoice
//! group (and those of no group), and their downloads.

use rocket::http::Status;
use rocket::{Route, get, routes};
use serde::Serialize;

use super::download::Download;
use super::page::{Page, PageHtml};
use crate::error::Error;

pub fn routes() -> Vec<Route> {
    routes![files, download]
}

const SETTING: &str = "ci_display_documents_tab";

#[derive(Serialize)]
struct FileView {
    id: u64,
    title: String,
    name: String,
    size: String,
    added: String,
}

/// A human size: `512 B`, `3.4 KiB`, `2.0 MiB`.
fn size_text(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[get("/files")]
fn files(page: Page<'_>) -> Result<PageHtml, Error> {
    if !page.flag(SETTING) {
        return Err(Error::NotFound(
            "files tab (ci_display_documents_tab is off)".into(),
        ));
    }
    let files = crate::files::visible_to(page.portal, &page.client)?
        .into_iter()
        .map(|f| FileView {
            id: f.id,
            added: chrono::DateTime::from_timestamp(f.added, 0)
                .map(|d| crate::stamp::show_date(page.lang, d.date_naive()))
                .unwrap_or_default(),
            size: size_text(f.size),
            title: f.title,
            name: f.name,
        })
        .collect();
    #[derive(Serialize)]
    struct FilesView {
        files: Vec<FileView>,
    }
    page.render("files", "files.html", &FilesView { files })
}

/// A file this client may see, as a download; anything else is 404 with no hint. A file whose
/// copy is missing from the data folder is logged and answered 404.
#[get("/files/<id>")]
async fn download(page: Page<'_>, id: u64) -> Result<Download, Status> {
    if !page.flag(SETTING) {
        return Err(Status::NotFound);
    }
    let file = match crate::files::for_client(page.portal, &page.client, id) {
        Ok(Some(f)) => f,
        Ok(None) => return Err(Status::NotFound),
        Err(e) => {
            tracing::error!("{e}");
            return Err(Status::InternalServerError);
        }
    };
    let path = crate::files::folder(&page.portal.data_dir).join(&file.stored_as);
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Download {
            name: file.name,
            content_type: file.content_type,
            bytes,
        }),
        Err(e) => {
            tracing::error!(id, path = %path.display(), "file missing on disk: {e}");
            Err(Status::NotFound)
        }
    }
}
