//! The Documents tab (`ci_display_contracts_tab`): the client's own contracts and documents
//! marked "display in CP", and their downloads.

use rocket::http::Status;
use rocket::{Route, get, routes};
use serde::Serialize;

use super::download::Download;
use super::page::{Page, PageHtml};
use crate::error::Error;

pub fn routes() -> Vec<Route> {
    routes![documents, download]
}

pub const SETTING: &str = "ci_display_contracts_tab";

#[derive(Serialize)]
struct DocumentView {
    id: u64,
    title: String,
    date: String,
    name: String,
}

#[get("/documents")]
fn documents(page: Page<'_>) -> Result<PageHtml, Error> {
    if !page.flag(SETTING) {
        return Err(Error::NotFound(
            "documents tab (ci_display_contracts_tab is off)".into(),
        ));
    }
    let documents = crate::documents::visible_to(&page.portal.store, &page.client)?
        .into_iter()
        .map(|d| DocumentView {
            id: d.id,
            date: crate::stamp::show_date(page.lang, d.date),
            name: d.copy.map(|c| c.name).unwrap_or_default(),
            title: d.title,
        })
        .collect();
    #[derive(Serialize)]
    struct DocumentsView {
        documents: Vec<DocumentView>,
    }
    page.render("documents", "documents.html", &DocumentsView { documents })
}

/// One of this client's documents, as a download; anything else is 404 with no hint. A
/// document whose copy is missing from the data folder is logged and answered 404.
#[get("/documents/<id>")]
async fn download(page: Page<'_>, id: u64) -> Result<Download, Status> {
    if !page.flag(SETTING) {
        return Err(Status::NotFound);
    }
    let doc = match crate::documents::for_client(&page.portal.store, &page.client, id) {
        Ok(Some(d)) => d,
        Ok(None) => return Err(Status::NotFound),
        Err(e) => {
            tracing::error!("{e}");
            return Err(Status::InternalServerError);
        }
    };
    let Some(copy) = doc.copy else {
        tracing::error!(
            id,
            "document has no copy in the data folder (import it again)"
        );
        return Err(Status::NotFound);
    };
    let path = crate::documents::folder(&page.portal.data_dir).join(&copy.stored_as);
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Download {
            name: copy.name,
            content_type: copy.content_type,
            bytes,
        }),
        Err(e) => {
            tracing::error!(id, path = %path.display(), "document missing on disk: {e}");
            Err(Status::NotFound)
        }
    }
}
