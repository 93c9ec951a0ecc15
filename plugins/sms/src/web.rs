//! The Send SMS tab (form with a server-side count on preview, the quota left, the sent list)
//! and the telephone directory.

use portico_core::Error;
use portico_core::plugin::{
    CheckedForm, ClientView, CsrfField, FormRefused, Page, PageHtml, SameOrigin, is_form_key,
    new_form_key, show_time,
};
use portico_core::rocket::form::FromForm;
use portico_core::rocket::http::Status;
use portico_core::rocket::response::Redirect;
use portico_core::rocket::{Either, Route, get, post, routes};
use serde::Serialize;

use crate::gsm::{self, Count};
use crate::model::{self, Accepted, ContactChange, NewSms};
use crate::phone;
use crate::{BEFORE_SMS_SEND, DEFAULT_COUNTRY, MAX_PARTS, PER_HOUR, PER_MONTH};

const TAB: &str = "sms";
/// Longest text a form may carry (characters), whatever `sms_max_parts` allows.
pub const MAX_TEXT_CHARS: usize = 2000;

type Answer = Result<Either<PageHtml, Either<Redirect, Status>>, Error>;

pub fn routes() -> Vec<Route> {
    routes![
        tab,
        send,
        directory,
        contact_add,
        contact_form,
        contact_save,
        contact_delete
    ]
}

fn month(page: &Page<'_>) -> String {
    page.now().format("%Y-%m").to_string()
}

/// The tab's pages exist only while the tab is shown.
fn available(page: &Page<'_>) -> bool {
    page.tab_visible(TAB)
}

fn limit(page: &Page<'_>) -> u64 {
    page.int(PER_MONTH).max(0) as u64
}

fn max_parts(page: &Page<'_>) -> usize {
    page.int(MAX_PARTS).clamp(1, crate::MAX_PARTS_LIMIT) as usize
}

// ----- the tab -----

#[derive(Serialize, Default)]
struct Fields {
    key: String,
    to: String,
    contact: String,
    text: String,
}

#[derive(Serialize)]
struct ContactRow {
    id: u64,
    name: String,
    number: String,
    selected: bool,
}

#[derive(Serialize)]
struct SentRow {
    id: u64,
    to: String,
    text: String,
    parts: u32,
    state: &'static str,
    created: String,
    updated: String,
}

#[derive(Serialize)]
struct SendView {
    fields: Fields,
    error: Option<String>,
    notice: Option<String>,
    /// The server's count of the text (shown after a preview or an error).
    count: Option<Count>,
    max_parts: usize,
    /// Parts left this month; `None` without a limit.
    remaining: Option<u64>,
    limit: u64,
    contacts: Vec<ContactRow>,
    sent: Vec<SentRow>,
}

fn render_tab(
    page: &Page<'_>,
    fields: Fields,
    error: Option<String>,
    notice: Option<String>,
    count: Option<Count>,
    status: Status,
) -> Result<PageHtml, Error> {
    let ns = page.store();
    let client = page.client();
    let limit = limit(page);
    let remaining = if limit > 0 {
        Some(limit.saturating_sub(model::used_parts(&ns, client.id, &month(page))?))
    } else {
        None
    };
    let selected: Option<u64> = fields.contact.parse().ok();
    let contacts = model::contacts(&ns, client.id)?
        .into_iter()
        .map(|c| ContactRow {
            selected: Some(c.id) == selected,
            id: c.id,
            name: c.name,
            number: c.number,
        })
        .collect();
    let lang = page.lang();
    let sent = model::messages_of_client(&ns, client.id)?
        .into_iter()
        .filter(|m| m.origin == "portal")
        .take(100)
        .map(|m| SentRow {
            id: m.id,
            to: m.to,
            text: m.text,
            parts: m.parts,
            state: m.state.as_str(),
            created: show_time(lang, &m.created),
            updated: show_time(lang, &m.updated),
        })
        .collect();
    let view = SendView {
        fields,
        error,
        notice,
        count,
        max_parts: max_parts(page),
        remaining,
        limit,
        contacts,
        sent,
    };
    page.render_with_status(TAB, "send.html", &view, status)
}

#[get("/?<sent>")]
fn tab(page: Page<'_>, sent: Option<u64>) -> Answer {
    if !available(&page) {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let notice = sent.map(|_| page.t("sms-queued"));
    let fields = Fields {
        key: new_form_key(),
        ..Fields::default()
    };
    render_tab(&page, fields, None, notice, None, Status::Ok).map(Either::Left)
}

#[derive(FromForm)]
struct SendForm {
    csrf: Option<String>,
    key: Option<String>,
    contact: Option<String>,
    to: Option<String>,
    text: Option<String>,
    action: Option<String>,
}

impl CsrfField for SendForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

fn form_refusal(refused: &FormRefused<'_>) -> (&'static str, Status) {
    match refused {
        FormRefused::Token => ("sms-error-expired", Status::Forbidden),
        other => ("sms-error-form", other.status()),
    }
}

/// Why a text cannot be sent, as a message key with its arguments.
fn check_text(page: &Page<'_>, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some(page.t("sms-error-empty"));
    }
    let max = max_parts(page);
    if text.chars().count() > MAX_TEXT_CHARS || gsm::count(text).parts > max {
        return Some(page.t_args("sms-error-too-long", &[("parts", max.to_string())]));
    }
    None
}

#[post("/send", data = "<form>")]
fn send(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<SendForm>, FormRefused<'_>>,
) -> Answer {
    if !available(&page) {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let client_id = page.client().id;
    let form = match form {
        Ok(CheckedForm(form)) => form,
        Err(refused) => {
            let (key, status) = form_refusal(&refused);
            tracing::info!(
                plugin = "sms",
                client = client_id,
                reason = key,
                "SMS form refused"
            );
            let fields = Fields {
                key: new_form_key(),
                ..Fields::default()
            };
            return render_tab(&page, fields, Some(page.t(key)), None, None, status)
                .map(Either::Left);
        }
    };
    let key = form
        .key
        .filter(|k| is_form_key(k))
        .unwrap_or_else(new_form_key);
    let text = form.text.unwrap_or_default().replace("\r\n", "\n");
    let contact_field = form.contact.unwrap_or_default().trim().to_string();
    let typed = form.to.unwrap_or_default();
    let fields = Fields {
        key: key.clone(),
        to: typed.chars().take(phone::MAX_INPUT * 2).collect(),
        contact: contact_field.clone(),
        text: text.chars().take(MAX_TEXT_CHARS * 2).collect(),
    };
    let count = (!text.is_empty()).then(|| gsm::count(&text));
    let refuse = |fields: Fields, message: String, reason: &str, status: Status| {
        tracing::info!(
            plugin = "sms",
            client = client_id,
            reason,
            "SMS refused before the outbox"
        );
        render_tab(&page, fields, Some(message), None, count, status).map(Either::Left)
    };

    // The recipient: a contact of this client's directory, else the typed number.
    let ns = page.store();
    let country = phone::country(&page.text(DEFAULT_COUNTRY));
    let to = if !contact_field.is_empty() {
        let contact = match contact_field.parse::<u64>() {
            Ok(id) => model::contact(&ns, client_id, id)?,
            Err(_) => None,
        };
        match contact {
            Some(c) => c.number,
            None => return Ok(Either::Right(Either::Right(Status::NotFound))),
        }
    } else {
        match phone::normalize(&typed, country) {
            Some(n) => n,
            None if typed.trim().is_empty() => {
                return refuse(
                    fields,
                    page.t("sms-error-no-recipient"),
                    "no recipient",
                    Status::UnprocessableEntity,
                );
            }
            None => {
                return refuse(
                    fields,
                    page.t("sms-error-number"),
                    "invalid number",
                    Status::UnprocessableEntity,
                );
            }
        }
    };
    if let Some(message) = check_text(&page, &text) {
        return refuse(
            fields,
            message,
            "text empty or too long",
            Status::UnprocessableEntity,
        );
    }
    if form.action.as_deref() == Some("preview") {
        let notice = Some(page.t_args("sms-preview-to", &[("to", to)]));
        return render_tab(&page, fields, None, notice, count, Status::Ok).map(Either::Left);
    }

    let mut event = serde_json::json!({
        "client": ClientView::from(page.client()),
        "to": to,
        "text": text,
        "origin": "portal",
    });
    if let Err(veto) = page.run_hook(BEFORE_SMS_SEND, &mut event) {
        let message = veto.message_in(page.lang()).to_string();
        return refuse(
            fields,
            message,
            "vetoed by before_sms_send",
            Status::UnprocessableEntity,
        );
    }
    // What handlers amended is checked as the client's input is.
    let to = match event["to"]
        .as_str()
        .and_then(|n| phone::normalize(n, country))
    {
        Some(n) => n,
        None => {
            return refuse(
                fields,
                page.t("sms-error-number"),
                "before_sms_send gave an invalid number",
                Status::UnprocessableEntity,
            );
        }
    };
    let text = event["text"].as_str().unwrap_or("").to_string();
    if let Some(message) = check_text(&page, &text) {
        return refuse(
            fields,
            message,
            "before_sms_send gave an empty or long text",
            Status::UnprocessableEntity,
        );
    }

    let at = page.now_stamp();
    let month = month(&page);
    let accepted = model::enqueue(
        &ns,
        &NewSms {
            client_id: Some(client_id),
            to: &to,
            text: &text,
            origin: "portal",
            form_key: Some(&key),
            charge: true,
            month: &month,
            limit: limit(&page),
            per_hour: page.int(PER_HOUR).max(1) as u64,
            hour: &page.now().format("%Y-%m-%dT%H").to_string(),
            now: &at,
        },
    )?;
    match accepted {
        Accepted::New(id) => {
            page.audit(
                "sms queued",
                Some(format!(
                    "#{id} to {to}, {} part(s)",
                    gsm::count(&text).parts
                )),
            );
            Ok(Either::Right(Either::Left(Redirect::to(format!(
                "/sms/?sent={id}"
            )))))
        }
        Accepted::Again(id) => Ok(Either::Right(Either::Left(Redirect::to(format!(
            "/sms/?sent={id}"
        ))))),
        Accepted::TooMany => refuse(
            fields,
            page.t_args(
                "sms-error-too-many",
                &[("count", page.int(PER_HOUR).to_string())],
            ),
            "hourly bound reached",
            Status::TooManyRequests,
        ),
        Accepted::OverQuota { left } => {
            let needed = gsm::count(&text).parts;
            refuse(
                fields,
                page.t_args(
                    "sms-error-quota",
                    &[("left", left.to_string()), ("parts", needed.to_string())],
                ),
                "monthly quota exhausted",
                Status::TooManyRequests,
            )
        }
    }
}

// ----- the telephone directory -----

#[derive(Serialize)]
struct DirectoryView {
    contacts: Vec<ContactRow>,
    name: String,
    number: String,
    error: Option<String>,
    notice: Option<String>,
    max: usize,
}

fn render_directory(
    page: &Page<'_>,
    name: String,
    number: String,
    error: Option<String>,
    notice: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let contacts = model::contacts(&page.store(), page.client().id)?
        .into_iter()
        .map(|c| ContactRow {
            id: c.id,
            name: c.name,
            number: c.number,
            selected: false,
        })
        .collect();
    let view = DirectoryView {
        contacts,
        name,
        number,
        error,
        notice,
        max: model::MAX_CONTACTS,
    };
    page.render_with_status(TAB, "directory.html", &view, status)
}

#[get("/directory?<saved>")]
fn directory(page: Page<'_>, saved: Option<&str>) -> Answer {
    if !available(&page) {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let notice = match saved {
        Some("deleted") => Some(page.t("sms-contact-deleted")),
        Some(_) => Some(page.t("sms-contact-saved")),
        None => None,
    };
    render_directory(
        &page,
        String::new(),
        String::new(),
        None,
        notice,
        Status::Ok,
    )
    .map(Either::Left)
}

#[derive(FromForm)]
struct ContactForm {
    csrf: Option<String>,
    name: Option<String>,
    number: Option<String>,
}

impl CsrfField for ContactForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A contact's name and number as they will be stored, or the message that refuses them.
fn check_contact(page: &Page<'_>, name: &str, number: &str) -> Result<(String, String), String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > model::MAX_CONTACT_NAME
        || name.contains(['\r', '\n'])
    {
        return Err(page.t_args(
            "sms-error-contact-name",
            &[("max", model::MAX_CONTACT_NAME.to_string())],
        ));
    }
    let country = phone::country(&page.text(DEFAULT_COUNTRY));
    match phone::normalize(number, country) {
        Some(n) => Ok((name.to_string(), n)),
        None => Err(page.t("sms-error-number")),
    }
}

#[post("/directory", data = "<form>")]
fn contact_add(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<ContactForm>, FormRefused<'_>>,
) -> Answer {
    if !available(&page) {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(refused) => {
            let (key, status) = form_refusal(&refused);
            return render_directory(
                &page,
                String::new(),
                String::new(),
                Some(page.t(key)),
                None,
                status,
            )
            .map(Either::Left);
        }
    };
    let name = form.name.unwrap_or_default();
    let number = form.number.unwrap_or_default();
    let keep = |s: &str| s.chars().take(200).collect::<String>();
    let (clean_name, clean_number) = match check_contact(&page, &name, &number) {
        Ok(v) => v,
        Err(message) => {
            return render_directory(
                &page,
                keep(&name),
                keep(&number),
                Some(message),
                None,
                Status::UnprocessableEntity,
            )
            .map(Either::Left);
        }
    };
    match model::save_contact(
        &page.store(),
        page.client().id,
        None,
        &clean_name,
        &clean_number,
    )? {
        ContactChange::Saved(_) => Ok(Either::Right(Either::Left(Redirect::to(
            "/sms/directory?saved=1",
        )))),
        ContactChange::TooMany => render_directory(
            &page,
            keep(&name),
            keep(&number),
            Some(page.t_args(
                "sms-error-contacts-full",
                &[("max", model::MAX_CONTACTS.to_string())],
            )),
            None,
            Status::UnprocessableEntity,
        )
        .map(Either::Left),
        ContactChange::NotFound => Ok(Either::Right(Either::Right(Status::NotFound))),
    }
}

#[derive(Serialize)]
struct ContactView {
    id: u64,
    name: String,
    number: String,
    error: Option<String>,
}

/// Contact `id` of the session client's directory, while the tab is shown; `None` (a 404 for
/// the caller, no hint whether it exists) otherwise.
fn own_contact(page: &Page<'_>, id: u64) -> Result<Option<model::Contact>, Error> {
    if !available(page) {
        return Ok(None);
    }
    model::contact(&page.store(), page.client().id, id)
}

#[get("/directory/<id>")]
fn contact_form(page: Page<'_>, id: u64) -> Answer {
    let Some(c) = own_contact(&page, id)? else {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    };
    let view = ContactView {
        id: c.id,
        name: c.name,
        number: c.number,
        error: None,
    };
    page.render(TAB, "contact.html", &view).map(Either::Left)
}

#[post("/directory/<id>", data = "<form>")]
fn contact_save(
    page: Page<'_>,
    _same_origin: SameOrigin,
    id: u64,
    form: Result<CheckedForm<ContactForm>, FormRefused<'_>>,
) -> Answer {
    if own_contact(&page, id)?.is_none() {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let ns = page.store();
    let client_id = page.client().id;
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(refused) => {
            let (key, status) = form_refusal(&refused);
            let view = ContactView {
                id,
                name: String::new(),
                number: String::new(),
                error: Some(page.t(key)),
            };
            return page
                .render_with_status(TAB, "contact.html", &view, status)
                .map(Either::Left);
        }
    };
    let name = form.name.unwrap_or_default();
    let number = form.number.unwrap_or_default();
    match check_contact(&page, &name, &number) {
        Ok((n, num)) => match model::save_contact(&ns, client_id, Some(id), &n, &num)? {
            ContactChange::Saved(_) => Ok(Either::Right(Either::Left(Redirect::to(
                "/sms/directory?saved=1",
            )))),
            _ => Ok(Either::Right(Either::Right(Status::NotFound))),
        },
        Err(message) => {
            let view = ContactView {
                id,
                name: name.chars().take(200).collect(),
                number: number.chars().take(200).collect(),
                error: Some(message),
            };
            page.render_with_status(TAB, "contact.html", &view, Status::UnprocessableEntity)
                .map(Either::Left)
        }
    }
}

#[derive(FromForm)]
struct DeleteForm {
    csrf: Option<String>,
}

impl CsrfField for DeleteForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[post("/directory/<id>/delete", data = "<form>")]
fn contact_delete(
    page: Page<'_>,
    _same_origin: SameOrigin,
    id: u64,
    form: Result<CheckedForm<DeleteForm>, FormRefused<'_>>,
) -> Answer {
    if own_contact(&page, id)?.is_none() {
        return Ok(Either::Right(Either::Right(Status::NotFound)));
    }
    let ns = page.store();
    let client_id = page.client().id;
    if let Err(refused) = form {
        let (key, status) = form_refusal(&refused);
        return render_directory(
            &page,
            String::new(),
            String::new(),
            Some(page.t(key)),
            None,
            status,
        )
        .map(Either::Left);
    }
    if model::delete_contact(&ns, client_id, id)? {
        Ok(Either::Right(Either::Left(Redirect::to(
            "/sms/directory?saved=deleted",
        ))))
    } else {
        Ok(Either::Right(Either::Right(Status::NotFound)))
    }
}
