//! The GDPR tab's pages: consents with their state and history, the give / edit / withdraw
//! form, the data export (HTML and JSON) and the erasure request.

use portico_core::Error;
use portico_core::plugin::{
    CheckedForm, ClientView, CsrfField, FormRefused, Page, PageHtml, SameOrigin, show_time_seconds,
};
use portico_core::rocket::form::FromForm;
use portico_core::rocket::http::{ContentType, Header, Status};
use portico_core::rocket::request::Request;
use portico_core::rocket::response::{self, Redirect, Responder, Response};
use portico_core::rocket::{Either, Route, get, post, routes};
use serde::Serialize;

use crate::consent::{self, Actor, Outcome, Record, Refusal, State};
use crate::{AFTER_CONSENT_CHANGE, CONTACT_EMAIL, export, markdown, tasks};

const TAB: &str = "gdpr";

pub fn routes() -> Vec<Route> {
    routes![consents, change, export_page, export_json, erasure]
}

#[derive(Serialize)]
struct PartView {
    number: usize,
    label: String,
    chosen: bool,
}

#[derive(Serialize)]
struct ConsentView {
    id: u64,
    title: String,
    required: bool,
    state: State,
    version: u32,
    /// The version the client's latest answer was for.
    answered_version: Option<u32>,
    answered_at: Option<String>,
    lang: &'static str,
    hash: String,
    /// The client's latest record number of this document (0: none), sent back with the form.
    seen: u64,
    html: String,
    parts: Vec<PartView>,
}

#[derive(Serialize)]
struct HistoryRow {
    number: u64,
    at: String,
    document: u64,
    title: String,
    version: u32,
    action: &'static str,
    choice: String,
    actor: Actor,
}

#[derive(Serialize)]
struct ConsentsView {
    notice: Option<String>,
    error: Option<String>,
    consents: Vec<ConsentView>,
    history: Vec<HistoryRow>,
    erasure_requested: Option<String>,
}

fn view(
    page: &Page<'_>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ConsentsView, Error> {
    let ns = page.store();
    let client = page.client();
    let lang = page.lang();
    let latest = consent::latest_by_doc(&ns, client.id)?;
    let consents = consent::all_docs(&ns)?
        .into_iter()
        .filter(|d| d.applies_to(client.invoice_group_id))
        .map(|d| {
            let last = latest.iter().find(|(id, _)| *id == d.id).map(|(_, r)| r);
            let state = consent::state_of(&d, last);
            let shown = d.shown(lang);
            let chosen: &[usize] = match (state, last) {
                (State::Given | State::Outdated, Some(r)) => &r.parts,
                _ => &[],
            };
            ConsentView {
                id: d.id,
                required: d.required,
                state,
                version: d.current().number,
                answered_version: last.map(|r| r.version),
                answered_at: last.map(|r| show_time_seconds(lang, &r.at)),
                lang: shown.lang,
                seen: last.map_or(0, |r| r.number),
                html: markdown::render(&consent::body_without_parts(&shown.text)),
                parts: shown
                    .parts
                    .iter()
                    .enumerate()
                    .map(|(i, label)| PartView {
                        number: i + 1,
                        label: label.clone(),
                        chosen: chosen.contains(&(i + 1)),
                    })
                    .collect(),
                hash: shown.hash,
                title: shown.title,
            }
        })
        .collect();
    let mut history: Vec<HistoryRow> = consent::history(&ns, client.id)?
        .into_iter()
        .map(|r| history_row(lang, r))
        .collect();
    history.reverse();
    let erasure_requested =
        tasks::open_erasure_request(&ns, client.id)?.map(|t| show_time_seconds(lang, &t.created));
    Ok(ConsentsView {
        notice,
        error,
        consents,
        history,
        erasure_requested,
    })
}

fn history_row(lang: &str, r: Record) -> HistoryRow {
    HistoryRow {
        number: r.number,
        at: show_time_seconds(lang, &r.at),
        document: r.document,
        title: r.title,
        version: r.version,
        action: r.action.as_str(),
        choice: r.choice.join("; "),
        actor: r.actor,
    }
}

fn render(
    page: &Page<'_>,
    notice: Option<String>,
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let view = view(page, notice, error)?;
    page.render_with_status(TAB, "consents.html", &view, status)
}

#[get("/?<saved>")]
fn consents(page: Page<'_>, saved: Option<&str>) -> Result<PageHtml, Error> {
    let notice = match saved {
        Some(s @ ("give" | "edit" | "withdraw" | "unchanged" | "erasure")) => {
            Some(page.t(&format!("gdpr-saved-{s}")))
        }
        _ => None,
    };
    render(&page, notice, None, Status::Ok)
}

/// Fields arrive as text so that a forged value gets a message, not a bare error page.
#[derive(FromForm)]
struct ConsentForm {
    csrf: Option<String>,
    document: Option<String>,
    version: Option<String>,
    hash: Option<String>,
    seen: Option<String>,
    action: Option<String>,
    part: Vec<String>,
    confirm: Option<String>,
}

impl CsrfField for ConsentForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

fn number<T: std::str::FromStr>(field: &Option<String>) -> Option<T> {
    field.as_deref().and_then(|v| v.trim().parse().ok())
}

#[derive(Serialize)]
struct WithdrawView {
    id: u64,
    title: String,
    version: String,
    hash: String,
    seen: String,
}

/// The message and status for a form the guard refused: an expired page (bad token) or an
/// unreadable form.
fn form_refusal(refused: &FormRefused<'_>) -> (&'static str, Status) {
    match refused {
        FormRefused::Token => ("gdpr-error-expired", Status::Forbidden),
        other => ("gdpr-error-form", other.status()),
    }
}

#[post("/consent", data = "<form>")]
fn change(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<ConsentForm>, FormRefused<'_>>,
) -> Result<Either<PageHtml, Redirect>, Error> {
    let refuse = |key: &str, status: Status| {
        render(&page, None, Some(page.t(key)), status).map(Either::Left)
    };
    let form = match form {
        Ok(CheckedForm(form)) => form,
        Err(refused) => {
            let (key, status) = form_refusal(&refused);
            return refuse(key, status);
        }
    };
    let withdraw = match form.action.as_deref() {
        Some("give") => false,
        Some("withdraw") => true,
        _ => return refuse("gdpr-error-form", Status::UnprocessableEntity),
    };
    let (Some(document), Some(version), Some(seen)) = (
        number::<u64>(&form.document),
        number::<u32>(&form.version),
        number::<u64>(&form.seen),
    ) else {
        return refuse("gdpr-error-unknown", Status::UnprocessableEntity);
    };
    let Some(parts) = form
        .part
        .iter()
        .map(|p| p.trim().parse::<usize>().ok())
        .collect::<Option<Vec<_>>>()
    else {
        return refuse("gdpr-error-part", Status::UnprocessableEntity);
    };
    let ns = page.store();
    let client = page.client();
    let hash = form.hash.clone().unwrap_or_default();
    // Withdrawing a required consent is confirmed first; nothing is recorded until then.
    if withdraw
        && form.confirm.as_deref() != Some("yes")
        && let Some(doc) = consent::doc(&ns, document)?
        && doc.required
        && doc.applies_to(client.invoice_group_id)
        && doc.current().number == version
    {
        let view = WithdrawView {
            id: doc.id,
            title: doc.shown(page.lang()).title,
            version: version.to_string(),
            hash,
            seen: seen.to_string(),
        };
        return page.render(TAB, "withdraw.html", &view).map(Either::Left);
    }
    let request = consent::Request {
        client_id: client.id,
        invoice_group: client.invoice_group_id,
        document,
        version,
        hash,
        seen,
        withdraw,
        parts,
        at: page.now_stamp(),
        source_addr: page.source_addr().map(str::to_string),
        user_agent: page.user_agent().map(str::to_string),
        actor: Actor::Client,
    };
    let record = match consent::record(&ns, &request)? {
        Outcome::Recorded(r) => r,
        Outcome::Unchanged => return Ok(Either::Right(Redirect::to("/gdpr/?saved=unchanged"))),
        Outcome::Refused(why) => {
            let (key, status) = match why {
                Refusal::Unknown => ("gdpr-error-unknown", Status::UnprocessableEntity),
                Refusal::BadPart => ("gdpr-error-part", Status::UnprocessableEntity),
                Refusal::Retired => ("gdpr-error-retired", Status::Conflict),
                Refusal::Stale => ("gdpr-error-stale", Status::Conflict),
                Refusal::Changed => ("gdpr-error-changed", Status::Conflict),
            };
            return refuse(key, status);
        }
    };
    announce(&page, &record)?;
    Ok(Either::Right(Redirect::to(format!(
        "/gdpr/?saved={}",
        record.action.as_str()
    ))))
}

/// After a change is stored: the plugin's audit event and the `after_consent_change` hook.
fn announce(page: &Page<'_>, record: &Record) -> Result<(), Error> {
    page.audit(
        &format!("consent_{}", record.action.as_str()),
        Some(format!(
            "document #{} version {} ({}), record {}",
            record.document, record.version, record.title, record.number
        )),
    );
    let required = consent::doc(&page.store(), record.document)?.is_some_and(|d| d.required);
    let mut event = serde_json::json!({
        "client": ClientView::from(page.client()),
        "record": record,
        "required": required,
    });
    // The hook cannot refuse (its name does not start with before_).
    let _ = page.run_hook(AFTER_CONSENT_CHANGE, &mut event);
    Ok(())
}

#[get("/export")]
fn export_page(page: Page<'_>) -> Result<PageHtml, Error> {
    let data = export::collect(&page)?;
    let view = export::readable(&page, &data);
    page.render(TAB, "export.html", &view)
}

/// The export as a JSON file to download, never cached.
struct JsonDownload(String);

impl<'r> Responder<'r, 'static> for JsonDownload {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .header(ContentType::JSON)
            .header(Header::new(
                "Content-Disposition",
                "attachment; filename=\"my-data.json\"",
            ))
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(self.0.len(), std::io::Cursor::new(self.0))
            .ok()
    }
}

#[get("/export.json")]
fn export_json(page: Page<'_>) -> Result<JsonDownload, Error> {
    let data = export::collect(&page)?;
    let json = serde_json::to_string_pretty(&data).map_err(|e| Error::Internal(e.to_string()))?;
    page.audit("data_exported", None);
    Ok(JsonDownload(json))
}

#[derive(FromForm)]
struct ErasureForm {
    csrf: Option<String>,
    note: Option<String>,
}

impl CsrfField for ErasureForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Longest note a client may add to an erasure request.
const MAX_NOTE: usize = 2000;

#[post("/erasure", data = "<form>")]
fn erasure(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<ErasureForm>, FormRefused<'_>>,
) -> Result<Either<PageHtml, Redirect>, Error> {
    let refuse = |key: &str, status: Status| {
        render(&page, None, Some(page.t(key)), status).map(Either::Left)
    };
    let form = match form {
        Ok(CheckedForm(form)) => form,
        Err(refused) => {
            let (key, status) = form_refusal(&refused);
            return refuse(key, status);
        }
    };
    let note = form.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return refuse("gdpr-error-note", Status::UnprocessableEntity);
    }
    let client = page.client();
    let task = portico_core::plugin::Task {
        id: 0,
        plugin: String::new(),
        assigned: Vec::new(),
        kind: tasks::ERASURE.to_string(),
        created: page.now_stamp(),
        client_id: client.id,
        client_number: client.number.clone(),
        client_name: client.name.clone(),
        note: note.trim().to_string(),
        source_addr: page.source_addr().map(str::to_string),
        done: None,
    };
    let Some(task) = tasks::open_erasure(&page.store(), task)? else {
        return Ok(Either::Right(Redirect::to("/gdpr/?saved=erasure")));
    };
    page.audit("erasure_requested", Some(format!("task #{}", task.id)));
    let body = format!(
        "Client {} ({}, #{}) asks for the erasure of their personal data.\n\nTask: #{} (portico tasks list)\nRequested: {}\nNote from the client:\n{}\n",
        task.client_number,
        task.client_name,
        task.client_id,
        task.id,
        task.created,
        if task.note.is_empty() {
            "(none)"
        } else {
            &task.note
        },
    );
    if let Err(e) = page.queue_mail_to_operator(
        CONTACT_EMAIL,
        &format!("GDPR erasure request from client {}", task.client_number),
        &body,
    ) {
        tracing::warn!(
            task = task.id,
            "erasure request not mailed ({CONTACT_EMAIL}): {e}"
        );
    }
    Ok(Either::Right(Redirect::to("/gdpr/?saved=erasure")))
}
