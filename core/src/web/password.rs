//! Passwords in the browser: the Password tab, "forgot password" and the single-use links sent
//! by e-mail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Route, State, get, post, routes};
use serde::Serialize;

use super::guards::{
    CheckedForm, CsrfField, FormRefused, Lang, SameOrigin, SessionUser, Viewer, maintenance_on,
};
use super::page::{Page, PageHtml, render_public};
use super::sign::{SignView, find_client, render_sign};
use crate::audit::{Audit, AuditKind};
use crate::auth::{self, Credential};
use crate::error::Error;
use crate::lockout;
use crate::mail;
use crate::model::Client;
use crate::passwords::{self, LinkPurpose};
use crate::portal::Portal;

pub fn routes() -> Vec<Route> {
    routes![
        password_page,
        change_password,
        forgot_page,
        forgot,
        link_page,
        link_set
    ]
}

/// "Forgot password" answers take at least this long whether or not the account exists.
const FORGOT_ANSWER_TIME: Duration = Duration::from_millis(400);

fn internal(e: Error) -> Status {
    tracing::error!("{e}");
    Status::InternalServerError
}

/// The Password tab's guard: also admits a session that must replace a one-time password.
pub struct PasswordPage<'r>(Page<'r>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for PasswordPage<'r> {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match SessionUser::from_request(req).await {
            Outcome::Success(u) => Page::for_session(req, u).map(PasswordPage),
            Outcome::Forward(s) => Outcome::Forward(s),
            Outcome::Error(e) => Outcome::Error(e),
        }
    }
}

#[derive(Serialize, Default)]
struct PasswordView {
    must_change: bool,
    min_length: usize,
    error: Option<String>,
    notice: Option<String>,
}

fn render_password_tab(
    page: &Page<'_>,
    error: Option<String>,
    notice: Option<String>,
    status: Status,
) -> Result<PageHtml, Status> {
    let view = PasswordView {
        must_change: page.session.must_change_password,
        min_length: page.portal.password_min_length(),
        error,
        notice,
    };
    page.render_with_status("password", "password.html", &view, status)
        .map_err(internal)
}

#[get("/password")]
fn password_page(page: PasswordPage<'_>) -> Result<PageHtml, Status> {
    render_password_tab(&page.0, None, None, Status::Ok)
}

#[derive(FromForm)]
struct ChangeForm {
    csrf: Option<String>,
    current: Option<String>,
    new: Option<String>,
    repeat: Option<String>,
}

impl CsrfField for ChangeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The Fluent id of the reason a new password pair is refused, if it is.
fn new_password_problem(
    portal: &Portal,
    client: &Client,
    new: &str,
    repeat: &str,
) -> Option<&'static str> {
    if new.is_empty() {
        return Some("password-error-missing");
    }
    if new != repeat {
        return Some("password-error-mismatch");
    }
    let words = passwords::personal_words(client);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    passwords::check_new_password(new, portal.password_min_length(), &words)
        .err()
        .map(|w| w.message_id())
}

#[post("/password", data = "<form>")]
async fn change_password(
    page: PasswordPage<'_>,
    _same: SameOrigin,
    viewer: Viewer,
    form: Result<CheckedForm<ChangeForm>, FormRefused<'_>>,
) -> Result<PageHtml, Status> {
    let mut page = page.0;
    let portal = page.portal.clone();
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(FormRefused::Form(e)) if e.status() != Status::PayloadTooLarge => {
            return render_password_tab(
                &page,
                Some(page.t("form-error-invalid")),
                None,
                Status::BadRequest,
            );
        }
        Err(refused) => return Err(refused.status()),
    };
    let new = form.new.clone().unwrap_or_default();
    let repeat = form.repeat.clone().unwrap_or_default();
    if !page.session.must_change_password {
        let current = form.current.clone().unwrap_or_default();
        if current.is_empty() {
            return render_password_tab(
                &page,
                Some(page.t("password-error-current")),
                None,
                Status::UnprocessableEntity,
            );
        }
        // The same lockout as the login form: a stolen session must not become a way to guess
        // the password without limit. While locked nothing is verified.
        let now = portal.clock.unix();
        if lockout::is_locked(&portal.store, page.client.id, now).map_err(internal)? {
            portal.audit(Audit {
                client_id: Some(page.client.id),
                source: viewer.source_addr.as_deref(),
                detail: Some("password tab".into()),
                ..Audit::new(AuditKind::LoginWhileLocked)
            });
            return render_password_tab(
                &page,
                Some(page.t("sign-error-locked")),
                None,
                Status::Forbidden,
            );
        }
        let hash = portal
            .store
            .get_id::<Credential>(page.client.id)
            .map_err(internal)?
            .map(|c| c.password_hash);
        if !portal.hasher.verify(hash, current).await {
            portal.audit(Audit {
                client_id: Some(page.client.id),
                source: viewer.source_addr.as_deref(),
                detail: Some("password tab".into()),
                ..Audit::new(AuditKind::LoginFailed)
            });
            if lockout::record_failure(&portal.store, page.client.id, now, portal.lockout_policy())
                .map_err(internal)?
            {
                portal.audit(Audit {
                    client_id: Some(page.client.id),
                    source: viewer.source_addr.as_deref(),
                    detail: Some("password tab".into()),
                    ..Audit::new(AuditKind::Lockout)
                });
                // The session that guessed ends with the lockout.
                auth::end_session_by_hash(&portal.store, &page.session.id_hash)
                    .map_err(internal)?;
                let view = SignView {
                    error: Some(page.t("sign-error-locked")),
                    username: &page.client.number,
                    ..SignView::default()
                };
                return render_sign(&portal, page.lang, view, Status::Forbidden).map_err(internal);
            }
            return render_password_tab(
                &page,
                Some(page.t("password-error-current")),
                None,
                Status::UnprocessableEntity,
            );
        }
    }
    if let Some(key) = new_password_problem(&portal, &page.client, &new, &repeat) {
        return render_password_tab(&page, Some(page.t(key)), None, Status::UnprocessableEntity);
    }
    let hash = portal.hasher.hash(new).await.map_err(internal)?;
    // Other sessions, links and pending link mails end with the old password.
    auth::set_password(
        &portal.store,
        page.client.id,
        hash,
        portal.clock.unix(),
        false,
        Some(&page.session.id_hash),
    )
    .map_err(internal)?;
    lockout::clear(&portal.store, page.client.id).map_err(internal)?;
    if page.session.must_change_password {
        page.session.must_change_password = false;
        auth::update_session(&portal.store, &page.session).map_err(internal)?;
    }
    portal.audit(Audit {
        client_id: Some(page.client.id),
        source: viewer.source_addr.as_deref(),
        ..Audit::new(AuditKind::PasswordChanged)
    });
    render_password_tab(&page, None, Some(page.t("password-changed")), Status::Ok)
}

#[derive(Serialize)]
struct ForgotView<'a> {
    /// `email` or `username`, from ci_forgotten_password.
    mode: String,
    error: Option<String>,
    login: &'a str,
}

fn render_forgot(
    portal: &Portal,
    lang: &'static str,
    error: Option<String>,
    login: &str,
    status: Status,
) -> Result<PageHtml, Status> {
    let view = ForgotView {
        mode: portal.settings.text("ci_forgotten_password", None),
        error,
        login,
    };
    render_public(portal, lang, "/sign/forgot/", "forgot.html", &view, status).map_err(internal)
}

#[derive(Serialize)]
struct NoticeLink {
    href: String,
    text: String,
}

#[derive(Serialize)]
struct NoticeView {
    title: String,
    text: String,
    link: Option<NoticeLink>,
}

fn render_notice(
    portal: &Portal,
    lang: &'static str,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
    status: Status,
) -> Result<PageHtml, Status> {
    let view = NoticeView {
        title: portal.i18n.t(lang, title),
        text: portal.i18n.t(lang, text),
        link: link.map(|(href, key)| NoticeLink {
            href: href.to_string(),
            text: portal.i18n.t(lang, key),
        }),
    };
    render_public(portal, lang, "/sign/", "notice.html", &view, status).map_err(internal)
}

fn forgot_available(portal: &Portal) -> Result<(), Status> {
    if maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    if mail::sender(portal).is_none() {
        return Err(Status::NotFound);
    }
    Ok(())
}

#[get("/sign/forgot")]
fn forgot_page(portal: &State<Arc<Portal>>, lang: Lang) -> Result<PageHtml, Status> {
    forgot_available(portal)?;
    render_forgot(portal, lang.0, None, "", Status::Ok)
}

#[derive(FromForm)]
struct ForgotForm {
    login: Option<String>,
}

#[post("/sign/forgot", data = "<form>")]
async fn forgot(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    _same: SameOrigin,
    viewer: Viewer,
    form: Option<Form<ForgotForm>>,
) -> Result<PageHtml, Status> {
    let portal: &Portal = portal;
    let lang = lang.0;
    forgot_available(portal)?;
    let login = form
        .and_then(|f| f.login.clone())
        .unwrap_or_default()
        .trim()
        .to_string();
    if login.is_empty() {
        return render_forgot(
            portal,
            lang,
            Some(portal.i18n.t(lang, "forgot-error-missing")),
            "",
            Status::UnprocessableEntity,
        );
    }
    let started = Instant::now();
    let now = portal.clock.unix();
    // Floods get the same page and send nothing: one address may ask a bounded number of
    // times an hour, and each client gets at most one mail per resend window.
    let addr_key = viewer.source_addr.as_deref().unwrap_or("-");
    let per_addr = portal
        .settings
        .int("ci_password_forgot_per_address_per_hour", None)
        .max(1) as u32;
    let resend = portal.settings.int("ci_password_link_resend_minutes", None) * 60;
    if portal
        .throttles
        .forgot_by_addr
        .allow(addr_key, now, 3600, per_addr)
    {
        request_links(portal, lang, &login, viewer.source_addr.as_deref(), resend)?;
    } else {
        tracing::warn!(
            source = addr_key,
            "forgot-password request over the address's hourly limit; nothing sent"
        );
    }
    // Same answer, same time, whether or not anything was sent.
    if let Some(rest) = FORGOT_ANSWER_TIME.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    render_notice(
        portal,
        lang,
        "forgot-sent-title",
        "forgot-sent-text",
        Some(("/sign/", "forgot-back")),
        Status::Ok,
    )
}

/// Queues a reset link for each client the typed login or address names (those with an
/// e-mail address and no link in the last `resend` seconds), and audits the request.
fn request_links(
    portal: &Portal,
    lang: &'static str,
    login: &str,
    source: Option<&str>,
    resend: i64,
) -> Result<(), Status> {
    let clients = if portal.settings.text("ci_forgotten_password", None) == "username" {
        find_client(portal, login)
            .map_err(internal)?
            .into_iter()
            .collect()
    } else if crate::settings::is_email(login) {
        portal.store.clients_by_email(login).map_err(internal)?
    } else {
        vec![]
    };
    let mut queued = false;
    for client in clients
        .iter()
        .filter(|c| c.email.as_deref().is_some_and(|e| !e.is_empty()))
    {
        // A disabled client gets no link (and the page looks the same).
        if crate::access::is_disabled(&portal.store, client).map_err(internal)? {
            continue;
        }
        let mail_lang = client.language.clone().unwrap_or_else(|| lang.to_string());
        if !mail::enqueue_link_unless_recent(
            portal,
            client.id,
            LinkPurpose::Reset,
            &mail_lang,
            resend,
        )
        .map_err(internal)?
        {
            continue;
        }
        portal.audit(Audit {
            client_id: Some(client.id),
            source,
            ..Audit::new(AuditKind::ResetRequested)
        });
        queued = true;
    }
    if !queued {
        portal.audit(Audit {
            login: Some(login),
            source,
            detail: Some(
                "no mail sent (no such account, no e-mail, or a link sent moments ago)".into(),
            ),
            ..Audit::new(AuditKind::ResetRequested)
        });
    }
    Ok(())
}

#[derive(Serialize)]
struct LinkView<'a> {
    token: &'a str,
    create: bool,
    min_length: usize,
    error: Option<String>,
}

fn render_link_form(
    portal: &Portal,
    lang: &'static str,
    token: &str,
    purpose: LinkPurpose,
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Status> {
    let view = LinkView {
        token,
        create: purpose == LinkPurpose::Create,
        min_length: portal.password_min_length(),
        error,
    };
    render_public(
        portal,
        lang,
        "/sign/password/",
        "password_link.html",
        &view,
        status,
    )
    .map_err(internal)
}

fn invalid_link(portal: &Portal, lang: &'static str) -> Result<PageHtml, Status> {
    let forgot = if mail::sender(portal).is_some() {
        ("/sign/forgot/", "link-invalid-again")
    } else {
        ("/sign/", "forgot-back")
    };
    render_notice(
        portal,
        lang,
        "link-invalid-title",
        "link-invalid-text",
        Some(forgot),
        Status::Gone,
    )
}

#[get("/sign/password/<token>")]
fn link_page(portal: &State<Arc<Portal>>, lang: Lang, token: &str) -> Result<PageHtml, Status> {
    if maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    let Some(found) =
        passwords::find_token(&portal.store, token, portal.clock.unix()).map_err(internal)?
    else {
        return invalid_link(portal, lang.0);
    };
    match portal
        .store
        .get_id::<Client>(found.client_id)
        .map_err(internal)?
    {
        Some(c) if crate::access::is_disabled(&portal.store, &c).map_err(internal)? => {
            disabled_link(portal, lang.0)
        }
        Some(_) => render_link_form(portal, lang.0, token, found.purpose, None, Status::Ok),
        None => invalid_link(portal, lang.0),
    }
}

/// A live link of a disabled client (disabling revokes links, so only one that slipped in):
/// refused, and left unspent.
fn disabled_link(portal: &Portal, lang: &'static str) -> Result<PageHtml, Status> {
    render_notice(
        portal,
        lang,
        "link-disabled-title",
        "sign-error-disabled",
        Some(("/sign/", "forgot-back")),
        Status::Forbidden,
    )
}

#[derive(FromForm)]
struct LinkForm {
    new: Option<String>,
    repeat: Option<String>,
}

#[post("/sign/password/<token>", data = "<form>")]
async fn link_set(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    token: &str,
    _same: SameOrigin,
    viewer: Viewer,
    form: Option<Form<LinkForm>>,
) -> Result<PageHtml, Status> {
    let portal: &Portal = portal;
    let lang = lang.0;
    if maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    let Some(found) =
        passwords::find_token(&portal.store, token, portal.clock.unix()).map_err(internal)?
    else {
        return invalid_link(portal, lang);
    };
    let Some(client) = portal
        .store
        .get_id::<Client>(found.client_id)
        .map_err(internal)?
    else {
        return invalid_link(portal, lang);
    };
    if crate::access::is_disabled(&portal.store, &client).map_err(internal)? {
        return disabled_link(portal, lang);
    }
    let Some(form) = form else {
        return render_link_form(
            portal,
            lang,
            token,
            found.purpose,
            Some(portal.i18n.t(lang, "form-error-invalid")),
            Status::BadRequest,
        );
    };
    let new = form.new.clone().unwrap_or_default();
    let repeat = form.repeat.clone().unwrap_or_default();
    if let Some(key) = new_password_problem(portal, &client, &new, &repeat) {
        return render_link_form(
            portal,
            lang,
            token,
            found.purpose,
            Some(portal.i18n.t(lang, key)),
            Status::UnprocessableEntity,
        );
    }
    let hash = portal.hasher.hash(new).await.map_err(internal)?;
    // The link is checked and spent in the same step that sets the password: of two posts of
    // one link, exactly one sets anything.
    let now = portal.clock.unix();
    let spent = passwords::consume_token(&portal.store, token, now, |tx, t| {
        auth::set_password_in(tx, t.client_id, hash, now, false, None)?;
        lockout::clear_in(tx, t.client_id)
    })
    .map_err(internal)?;
    if spent.is_none() {
        return invalid_link(portal, lang);
    }
    portal.audit(Audit {
        client_id: Some(client.id),
        source: viewer.source_addr.as_deref(),
        ..Audit::new(AuditKind::ResetCompleted)
    });
    let view = SignView {
        notice: Some(portal.i18n.t(lang, "link-password-set")),
        username: &client.number,
        ..SignView::default()
    };
    render_sign(portal, lang, view, Status::Ok).map_err(internal)
}
