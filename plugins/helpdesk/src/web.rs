//! The Helpdesk tab's pages (tickets, one conversation, a new ticket, a reply, a download) and
//! the support request form of the Information tab.

use portico_core::Error;
use portico_core::plugin::Download;
use portico_core::plugin::{
    CheckedUpload, ClientView, Page, PageHtml, SameOrigin, Task, Upload, UploadRefused,
    is_form_key, new_form_key, show_time, split_emails,
};
use portico_core::rocket::http::Status;
use portico_core::rocket::response::Redirect;
use portico_core::rocket::{Either, Route, get, post, routes};
use serde::Serialize;

use crate::files;
use crate::model::{self, Bounds, Channel, Item, NewFile, Refusal, State, Ticket};
use crate::{
    AFTER_TICKET_CREATE, AFTER_TICKET_REPLY, ATTACHMENT_MAX_KB, ATTACHMENT_TYPES,
    ATTACHMENTS_PER_TICKET, BEFORE_TICKET_CREATE, CLIENT_STORAGE_MB, FILES_PER_MESSAGE,
    REPLIES_PER_HOUR, REQUESTS_ENABLE, REQUESTS_FORWARD, TICKETS_PER_HOUR,
};

const TAB: &str = "helpdesk";
pub const MAX_SUBJECT: usize = 200;
pub const MAX_TEXT: usize = 10_000;
/// Tags a hook may put on a ticket, and their length.
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 50;

pub fn routes() -> Vec<Route> {
    routes![
        list,
        new_form,
        create,
        show,
        reply,
        download,
        request_form,
        request_send
    ]
}

/// The Helpdesk tab exists only while a department is used for CP requests.
fn available(page: &Page<'_>) -> Result<(), Status> {
    if page.tab_visible(TAB) {
        Ok(())
    } else {
        Err(Status::NotFound)
    }
}

fn department_names(page: &Page<'_>) -> Result<Vec<(u64, String)>, Error> {
    Ok(model::departments(&page.store())?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect())
}

fn name_of(deps: &[(u64, String)], id: u64) -> String {
    deps.iter()
        .find(|(d, _)| *d == id)
        .map_or_else(String::new, |(_, n)| n.clone())
}

// ----- the list -----

#[derive(Serialize)]
struct TicketRow {
    id: u64,
    subject: String,
    state: &'static str,
    department: String,
    updated: String,
    items: usize,
}

#[derive(Serialize)]
struct ListView {
    tickets: Vec<TicketRow>,
}

#[get("/")]
fn list(page: Page<'_>) -> Result<Result<PageHtml, Status>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Err(s));
    }
    let deps = department_names(&page)?;
    let tickets = model::tickets_of_client(&page.store(), page.client().id)?
        .into_iter()
        .map(|t| TicketRow {
            id: t.id,
            state: t.state.as_str(),
            department: name_of(&deps, t.department_id),
            updated: show_time(page.lang(), &t.updated),
            items: t.items.len(),
            subject: t.subject,
        })
        .collect();
    page.render(TAB, "tickets.html", &ListView { tickets })
        .map(Ok)
}

// ----- a new ticket -----

#[derive(Serialize)]
struct Limits {
    max_kb: i64,
    types: String,
    /// For the file input's `accept`: `.pdf,.png`.
    accept: String,
    max_files: usize,
}

fn limits(page: &Page<'_>, files_left: usize) -> Limits {
    let types = files::allowed_types(&page.text(ATTACHMENT_TYPES));
    Limits {
        max_kb: page.int(ATTACHMENT_MAX_KB),
        accept: types
            .iter()
            .map(|t| format!(".{t}"))
            .collect::<Vec<_>>()
            .join(","),
        types: types.join(", "),
        max_files: files_left.min(FILES_PER_MESSAGE),
    }
}

#[derive(Serialize)]
struct NewView {
    key: String,
    subject: String,
    text: String,
    error: Option<String>,
    department: String,
    limits: Limits,
}

fn render_new(
    page: &Page<'_>,
    key: String,
    subject: String,
    text: String,
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let department = model::cp_department(&page.store())?.map_or_else(String::new, |d| d.name);
    let files_left = page.int(ATTACHMENTS_PER_TICKET).max(0) as usize;
    let view = NewView {
        key,
        subject,
        text,
        error,
        department,
        limits: limits(page, files_left),
    };
    page.render_with_status(TAB, "new.html", &view, status)
}

#[get("/new")]
fn new_form(page: Page<'_>) -> Result<Result<PageHtml, Status>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Err(s));
    }
    render_new(
        &page,
        new_form_key(),
        String::new(),
        String::new(),
        None,
        Status::Ok,
    )
    .map(Ok)
}

/// A form refused before its fields could be read.
fn upload_refusal(why: UploadRefused) -> (&'static str, Status) {
    match why {
        UploadRefused::Token => ("helpdesk-error-expired", Status::Forbidden),
        UploadRefused::TooLarge => ("helpdesk-error-too-large", Status::PayloadTooLarge),
        UploadRefused::Form => ("helpdesk-error-form", Status::BadRequest),
    }
}

/// Subject (for a new ticket or request), text and key of a form, checked; or the message.
struct Fields {
    key: String,
    subject: String,
    text: String,
}

fn read_fields(u: &Upload, with_subject: bool) -> (Fields, Option<&'static str>) {
    let subject = u.value("subject").unwrap_or("").trim().to_string();
    let text = u.value("text").unwrap_or("").trim().replace("\r\n", "\n");
    let key = u.value("key").unwrap_or("").to_string();
    let error = if !is_form_key(&key) {
        Some("helpdesk-error-form")
    } else if with_subject && subject.is_empty() {
        Some("helpdesk-error-subject-empty")
    } else if with_subject && (subject.chars().count() > MAX_SUBJECT || subject.contains('\n')) {
        Some("helpdesk-error-subject-long")
    } else if text.is_empty() {
        Some("helpdesk-error-text-empty")
    } else if text.chars().count() > MAX_TEXT {
        Some("helpdesk-error-text-long")
    } else {
        None
    };
    (Fields { key, subject, text }, error)
}

/// Checks the files of a message against the settings and names them; or the message with
/// its arguments.
fn read_files(page: &Page<'_>, u: &Upload, files_left: usize) -> Result<Vec<NewFile>, String> {
    if u.files.is_empty() {
        return Ok(Vec::new());
    }
    if u.files.len() > files_left.min(FILES_PER_MESSAGE) {
        return Err(page.t_args(
            "helpdesk-error-files-count",
            &[("count", files_left.min(FILES_PER_MESSAGE).to_string())],
        ));
    }
    let max_kb = page.int(ATTACHMENT_MAX_KB).max(1) as usize;
    let allowed = files::allowed_types(&page.text(ATTACHMENT_TYPES));
    let mut out = Vec::new();
    for f in &u.files {
        let name = files::sanitize_name(&f.file_name);
        let ext = files::extension(&name).unwrap_or_default();
        if ext.is_empty() || !allowed.contains(&ext) {
            return Err(page.t_args(
                "helpdesk-error-file-type",
                &[("name", name.clone()), ("types", allowed.join(", "))],
            ));
        }
        if f.bytes.len() > max_kb * 1024 {
            return Err(page.t_args(
                "helpdesk-error-file-size",
                &[("name", name.clone()), ("kb", max_kb.to_string())],
            ));
        }
        out.push(NewFile {
            content_type: files::content_type(&ext).to_string(),
            name,
            bytes: f.bytes.clone(),
        });
    }
    Ok(out)
}

fn bounds(page: &Page<'_>, per_hour_key: &str) -> Bounds {
    Bounds {
        per_hour: page.int(per_hour_key).max(1) as usize,
        attachments_per_ticket: page.int(ATTACHMENTS_PER_TICKET).max(0) as usize,
        storage_bytes: (page.int(CLIENT_STORAGE_MB).max(1) as u64) * 1024 * 1024,
    }
}

fn refusal_message(why: Refusal) -> (&'static str, Status) {
    match why {
        Refusal::TooMany => ("helpdesk-error-too-many", Status::TooManyRequests),
        Refusal::TooManyFiles => ("helpdesk-error-files-ticket", Status::UnprocessableEntity),
        Refusal::Storage => ("helpdesk-error-storage", Status::UnprocessableEntity),
        Refusal::Closed => ("helpdesk-error-closed", Status::Conflict),
        Refusal::NotFound | Refusal::Duplicate(_) => ("helpdesk-error-form", Status::NotFound),
    }
}

#[post("/new", data = "<form>")]
fn create(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedUpload, UploadRefused>,
) -> Result<Either<PageHtml, Either<Redirect, Status>>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Either::Right(Either::Right(s)));
    }
    let page_with = |f: &Fields, msg: String, status: Status| {
        render_new(
            &page,
            f.key.clone(),
            f.subject.clone(),
            f.text.clone(),
            Some(msg),
            status,
        )
        .map(Either::Left)
    };
    let upload = match form {
        Ok(CheckedUpload(u)) => u,
        Err(why) => {
            let (key, status) = upload_refusal(why);
            return render_new(
                &page,
                new_form_key(),
                String::new(),
                String::new(),
                Some(page.t(key)),
                status,
            )
            .map(Either::Left);
        }
    };
    let (fields, error) = read_fields(&upload, true);
    if let Some(key) = error {
        return page_with(&fields, page.t(key), Status::UnprocessableEntity);
    }
    let ns = page.store();
    let client = page.client();
    // A second submission of a form that was stored goes where the first went, unasked.
    if let Some(id) = model::form_used(&ns, client.id, &fields.key)? {
        return Ok(Either::Right(Either::Left(Redirect::to(format!(
            "/helpdesk/ticket/{id}?created=1"
        )))));
    }
    let files_left = page.int(ATTACHMENTS_PER_TICKET).max(0) as usize;
    let new_files = match read_files(&page, &upload, files_left) {
        Ok(f) => f,
        Err(msg) => return page_with(&fields, msg, Status::UnprocessableEntity),
    };
    let Some(department) = model::cp_department(&ns)? else {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    };
    let mut event = serde_json::json!({
        "client": ClientView::from(client),
        "subject": fields.subject,
        "text": fields.text,
        "department": department.name,
        "tags": Vec::<String>::new(),
    });
    if let Err(veto) = page.run_hook(BEFORE_TICKET_CREATE, &mut event) {
        return page_with(
            &fields,
            veto.message_in(page.lang()).to_string(),
            Status::UnprocessableEntity,
        );
    }
    // What handlers amended is checked as the client's input is.
    let subject = event["subject"].as_str().unwrap_or("").trim().to_string();
    let text = event["text"].as_str().unwrap_or("").trim().to_string();
    let tags: Vec<String> = event["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str())
                .map(|t| t.trim().chars().take(MAX_TAG).collect::<String>())
                .filter(|t| !t.is_empty())
                .take(MAX_TAGS)
                .collect()
        })
        .unwrap_or_default();
    if subject.is_empty() || text.is_empty() {
        return page_with(
            &fields,
            page.t("helpdesk-error-text-empty"),
            Status::UnprocessableEntity,
        );
    }
    let subject: String = subject
        .replace('\n', " ")
        .chars()
        .take(MAX_SUBJECT)
        .collect();
    let text: String = text.chars().take(MAX_TEXT).collect();
    let at = page.now_stamp();
    let files_count = new_files.len();
    let ticket = Ticket {
        id: 0,
        subject,
        client_id: Some(client.id),
        email: None,
        department_id: department.id,
        state: State::Open,
        created: at.clone(),
        updated: at.clone(),
        tags,
        items: vec![Item {
            number: 1,
            at,
            channel: Channel::Portal,
            author: client.name.clone(),
            from_client: true,
            text,
            department_id: department.id,
            attachments: Vec::new(),
        }],
    };
    let outcome = model::create_client_ticket(
        &ns,
        client.id,
        &fields.key,
        page.now().timestamp(),
        &bounds(&page, TICKETS_PER_HOUR),
        ticket,
        new_files,
    )?;
    let ticket = match outcome {
        Ok(t) => t,
        Err(Refusal::Duplicate(id)) => {
            return Ok(Either::Right(Either::Left(Redirect::to(format!(
                "/helpdesk/ticket/{id}?created=1"
            )))));
        }
        Err(why) => {
            let (key, status) = refusal_message(why);
            return page_with(&fields, page.t(key), status);
        }
    };
    page.audit(
        "ticket_created",
        Some(format!(
            "ticket #{} with {files_count} attachment(s)",
            ticket.id
        )),
    );
    let mut event = serde_json::json!({
        "client": ClientView::from(client),
        "ticket_id": ticket.id,
        "subject": ticket.subject,
        "text": ticket.items[0].text,
        "department": department.name,
        "tags": ticket.tags,
        "attachments": files_count,
    });
    let _ = page.run_hook(AFTER_TICKET_CREATE, &mut event);
    Ok(Either::Right(Either::Left(Redirect::to(format!(
        "/helpdesk/ticket/{}?created=1",
        ticket.id
    )))))
}

// ----- one conversation -----

#[derive(Serialize)]
struct AttachmentView {
    id: u64,
    name: String,
    size: String,
}

#[derive(Serialize)]
struct ItemView {
    number: u32,
    channel: &'static str,
    at: String,
    author: String,
    from_client: bool,
    department: String,
    /// `None` when the channel's contents are not shown (in person, telephone; SMS while
    /// `sms_notify` is disabled).
    text: Option<String>,
    attachments: Vec<AttachmentView>,
}

#[derive(Serialize)]
struct TicketView {
    id: u64,
    subject: String,
    state: &'static str,
    department: String,
    created: String,
    closed: bool,
    items: Vec<ItemView>,
    notice: Option<String>,
    error: Option<String>,
    key: String,
    text: String,
    limits: Limits,
}

/// Whether the client sees the contents of an item of this channel.
fn contents_shown(channel: Channel, sms_notify: &str) -> bool {
    match channel {
        Channel::Email | Channel::Portal => true,
        Channel::Sms => sms_notify != "disabled" && !sms_notify.is_empty(),
        Channel::InPerson | Channel::Telephone => false,
    }
}

fn render_ticket(
    page: &Page<'_>,
    t: Ticket,
    notice: Option<String>,
    error: Option<String>,
    key: String,
    text: String,
    status: Status,
) -> Result<PageHtml, Error> {
    let ns = page.store();
    let deps = department_names(page)?;
    let sms_notify = page.text("sms_notify");
    let lang = page.lang();
    let mut items = Vec::new();
    for i in &t.items {
        let shown = contents_shown(i.channel, &sms_notify);
        let attachments = if shown {
            model::attachments_of(&ns, &i.attachments)?
                .into_iter()
                .map(|a| AttachmentView {
                    id: a.id,
                    name: a.name,
                    size: files::size_text(a.size),
                })
                .collect()
        } else {
            Vec::new()
        };
        items.push(ItemView {
            number: i.number,
            channel: i.channel.as_str(),
            at: show_time(lang, &i.at),
            author: i.author.clone(),
            from_client: i.from_client,
            department: name_of(&deps, i.department_id),
            text: shown.then(|| i.text.clone()),
            attachments,
        });
    }
    let per_ticket = page.int(ATTACHMENTS_PER_TICKET).max(0) as usize;
    let view = TicketView {
        id: t.id,
        subject: t.subject.clone(),
        state: t.state.as_str(),
        department: name_of(&deps, t.department_id),
        created: show_time(lang, &t.created),
        closed: t.state == State::Closed,
        limits: limits(page, per_ticket.saturating_sub(t.attachment_count())),
        items,
        notice,
        error,
        key,
        text,
    };
    page.render_with_status(TAB, "ticket.html", &view, status)
}

#[get("/ticket/<id>?<created>&<replied>")]
fn show(
    page: Page<'_>,
    id: u64,
    created: Option<&str>,
    replied: Option<&str>,
) -> Result<Result<PageHtml, Status>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Err(s));
    }
    let Some(t) = model::client_ticket(&page.store(), page.client().id, id)? else {
        return Ok(Err(Status::NotFound));
    };
    let notice = if created.is_some() {
        Some(page.t("helpdesk-created"))
    } else if replied.is_some() {
        Some(page.t("helpdesk-replied"))
    } else {
        None
    };
    render_ticket(
        &page,
        t,
        notice,
        None,
        new_form_key(),
        String::new(),
        Status::Ok,
    )
    .map(Ok)
}

#[post("/ticket/<id>/reply", data = "<form>")]
fn reply(
    page: Page<'_>,
    _same_origin: SameOrigin,
    id: u64,
    form: Result<CheckedUpload, UploadRefused>,
) -> Result<Either<PageHtml, Either<Redirect, Status>>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Either::Right(Either::Right(s)));
    }
    let ns = page.store();
    let client = page.client();
    let Some(current) = model::client_ticket(&ns, client.id, id)? else {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    };
    let again = |msg: String, key: String, text: String, status: Status| {
        render_ticket(&page, current.clone(), None, Some(msg), key, text, status).map(Either::Left)
    };
    let upload = match form {
        Ok(CheckedUpload(u)) => u,
        Err(why) => {
            let (key, status) = upload_refusal(why);
            return again(page.t(key), new_form_key(), String::new(), status);
        }
    };
    let (fields, error) = read_fields(&upload, false);
    if let Some(key) = error {
        return again(
            page.t(key),
            fields.key,
            fields.text,
            Status::UnprocessableEntity,
        );
    }
    if current.state == State::Closed {
        return again(
            page.t("helpdesk-error-closed"),
            fields.key,
            fields.text,
            Status::Conflict,
        );
    }
    let per_ticket = page.int(ATTACHMENTS_PER_TICKET).max(0) as usize;
    let files_left = per_ticket.saturating_sub(current.attachment_count());
    let new_files = match read_files(&page, &upload, files_left) {
        Ok(f) => f,
        Err(msg) => {
            return again(msg, fields.key, fields.text, Status::UnprocessableEntity);
        }
    };
    let item = Item {
        number: 0,
        at: page.now_stamp(),
        channel: Channel::Portal,
        author: client.name.clone(),
        from_client: true,
        text: fields.text.clone(),
        department_id: current.department_id,
        attachments: Vec::new(),
    };
    let outcome = model::add_client_reply(
        &ns,
        client.id,
        id,
        &fields.key,
        page.now().timestamp(),
        &bounds(&page, REPLIES_PER_HOUR),
        item,
        new_files,
    )?;
    let ticket = match outcome {
        Ok(t) => t,
        Err(Refusal::Duplicate(_)) => {
            return Ok(Either::Right(Either::Left(Redirect::to(format!(
                "/helpdesk/ticket/{id}?replied=1"
            )))));
        }
        Err(Refusal::NotFound) => return Ok(Either::Right(Either::Right(Status::NotFound))),
        Err(why) => {
            let (key, status) = refusal_message(why);
            return again(page.t(key), fields.key, fields.text, status);
        }
    };
    page.audit("ticket_reply", Some(format!("ticket #{id}")));
    let deps = department_names(&page)?;
    let mut event = serde_json::json!({
        "client": ClientView::from(client),
        "ticket_id": id,
        "subject": ticket.subject,
        "from_client": true,
        "channel": Channel::Portal.as_str(),
        "author": client.name,
        "text": fields.text,
        "department": name_of(&deps, ticket.department_id),
    });
    let _ = page.run_hook(AFTER_TICKET_REPLY, &mut event);
    Ok(Either::Right(Either::Left(Redirect::to(format!(
        "/helpdesk/ticket/{id}?replied=1"
    )))))
}

// ----- downloads -----

#[get("/attachment/<id>")]
fn download(page: Page<'_>, id: u64) -> Result<Result<Download, Status>, Error> {
    if let Err(s) = available(&page) {
        return Ok(Err(s));
    }
    let Some((a, bytes)) = model::client_attachment(&page.store(), page.client().id, id)? else {
        return Ok(Err(Status::NotFound));
    };
    // Only clients attach files, to the items they write in the portal, which they always see.
    Ok(Ok(Download {
        name: a.name,
        content_type: a.content_type,
        bytes,
    }))
}

// ----- support requests -----

#[derive(Serialize)]
struct RequestView {
    key: String,
    subject: String,
    text: String,
    notice: Option<String>,
    error: Option<String>,
}

fn render_request(page: &Page<'_>, view: RequestView, status: Status) -> Result<PageHtml, Error> {
    page.render_with_status("information", "request.html", &view, status)
}

/// Support requests are offered while `ci_auth_requests_enable` is on; with a department for
/// CP requests the helpdesk takes them as tickets.
fn request_mode(page: &Page<'_>) -> Result<Result<(), Either<Redirect, Status>>, Error> {
    if !page.flag(REQUESTS_ENABLE) {
        return Ok(Err(Either::Right(Status::NotFound)));
    }
    if model::cp_department(&page.store())?.is_some() {
        return Ok(Err(Either::Left(Redirect::to("/helpdesk/new"))));
    }
    Ok(Ok(()))
}

#[get("/request?<sent>")]
fn request_form(
    page: Page<'_>,
    sent: Option<&str>,
) -> Result<Either<PageHtml, Either<Redirect, Status>>, Error> {
    if let Err(other) = request_mode(&page)? {
        return Ok(Either::Right(other));
    }
    let view = RequestView {
        key: new_form_key(),
        subject: String::new(),
        text: String::new(),
        notice: sent.map(|_| page.t("helpdesk-request-sent")),
        error: None,
    };
    render_request(&page, view, Status::Ok).map(Either::Left)
}

#[post("/request", data = "<form>")]
fn request_send(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedUpload, UploadRefused>,
) -> Result<Either<PageHtml, Either<Redirect, Status>>, Error> {
    if let Err(other) = request_mode(&page)? {
        return Ok(Either::Right(other));
    }
    let again = |f: &Fields, msg: String, status: Status| {
        let view = RequestView {
            key: f.key.clone(),
            subject: f.subject.clone(),
            text: f.text.clone(),
            notice: None,
            error: Some(msg),
        };
        render_request(&page, view, status).map(Either::Left)
    };
    let upload = match form {
        Ok(CheckedUpload(u)) => u,
        Err(why) => {
            let (key, status) = upload_refusal(why);
            let f = Fields {
                key: new_form_key(),
                subject: String::new(),
                text: String::new(),
            };
            return again(&f, page.t(key), status);
        }
    };
    let (fields, error) = read_fields(&upload, true);
    if let Some(key) = error {
        return again(&fields, page.t(key), Status::UnprocessableEntity);
    }
    if !upload.files.is_empty() {
        return again(
            &fields,
            page.t("helpdesk-error-form"),
            Status::UnprocessableEntity,
        );
    }
    let ns = page.store();
    let client = page.client();
    let operators: Vec<_> = model::operators(&ns)?
        .into_iter()
        .filter(|o| o.send_tasks_via_email && o.send_cp_requests)
        .collect();
    let task = Task {
        id: 0,
        plugin: String::new(),
        kind: "support_request".into(),
        created: page.now_stamp(),
        client_id: client.id,
        client_number: client.number.clone(),
        client_name: client.name.clone(),
        note: format!("{} — {}", fields.subject, fields.text),
        source_addr: page.source_addr().map(str::to_string),
        assigned: operators.iter().map(|o| o.name.clone()).collect(),
        done: None,
    };
    let outcome = model::file_request(
        &ns,
        client.id,
        &fields.key,
        page.now().timestamp(),
        page.int(TICKETS_PER_HOUR).max(1) as usize,
        task,
    )?;
    let task = match outcome {
        Ok(t) => t,
        Err(Refusal::Duplicate(_)) => {
            return Ok(Either::Right(Either::Left(Redirect::to(
                "/helpdesk/request?sent=1",
            ))));
        }
        Err(why) => {
            let (key, status) = refusal_message(why);
            return again(&fields, page.t(key), status);
        }
    };
    page.audit("support_request", Some(format!("task #{}", task.id)));
    // The operators with both flags and the forwarding addresses, each once.
    let mut recipients: Vec<String> = Vec::new();
    for to in operators
        .iter()
        .map(|o| o.email.clone())
        .chain(split_emails(&page.text(REQUESTS_FORWARD)))
    {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
            recipients.push(to);
        }
    }
    let body = format!(
        "Client {} ({}, #{}) sent a support request from the client portal.\n\nSubject: {}\n\n{}\n\nClient's e-mail: {}\nClient's phone: {}\nTask: #{} (portico tasks list){}\nSent: {}\n",
        client.number,
        client.name,
        client.id,
        fields.subject,
        fields.text,
        client.email.as_deref().unwrap_or("-"),
        client
            .mobile
            .as_deref()
            .or(client.phone.as_deref())
            .unwrap_or("-"),
        task.id,
        if task.assigned.is_empty() {
            String::new()
        } else {
            format!(", assigned to {}", task.assigned.join(", "))
        },
        task.created,
    );
    let subject = format!(
        "Support request from client {}: {}",
        client.number, fields.subject
    );
    for to in &recipients {
        if let Err(e) = page.queue_mail_to_staff(to, &subject, &body) {
            tracing::warn!(task = task.id, "support request not mailed to {to}: {e}");
        }
    }
    Ok(Either::Right(Either::Left(Redirect::to(
        "/helpdesk/request?sent=1",
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_show_their_contents_by_the_rules() {
        for sms in ["disabled", "gateway", "smpp"] {
            assert!(contents_shown(Channel::Email, sms));
            assert!(contents_shown(Channel::Portal, sms));
            assert!(!contents_shown(Channel::InPerson, sms));
            assert!(!contents_shown(Channel::Telephone, sms));
            assert_eq!(contents_shown(Channel::Sms, sms), sms != "disabled");
        }
    }
}
