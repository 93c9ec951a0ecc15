//! Logging in and out, and the language switcher (which works before and after login).

use std::sync::Arc;

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::{Either, Route, State, get, post, routes};
use serde::Serialize;

use super::guards::{
    CheckedForm, CsrfField, FormRefused, LANG_COOKIE, Lang, Provenance, SameOrigin, Viewer,
    maintenance_on,
};
use super::page::{PageHtml, render_public};
use crate::audit::{Audit, AuditKind};
use crate::auth::{self, Credential};
use crate::error::Error;
use crate::hooks::{ClientView, LoginEvent, LogoutEvent};
use crate::i18n;
use crate::lockout;
use crate::model::Client;
use crate::portal::Portal;

pub fn routes() -> Vec<Route> {
    routes![sign_page, sign_in, sign_out, switch_language]
}

#[derive(Serialize, Default)]
pub(super) struct SignView<'a> {
    pub error: Option<String>,
    pub notice: Option<String>,
    pub username: &'a str,
    /// The "forgot password" link shows only when the portal can send mail.
    pub can_reset: bool,
}

pub(super) fn render_sign(
    portal: &Portal,
    lang: &'static str,
    view: SignView<'_>,
    status: Status,
) -> Result<PageHtml, Error> {
    let view = SignView {
        can_reset: crate::mail::sender(portal).is_some(),
        ..view
    };
    render_public(portal, lang, "/sign/", "sign.html", &view, status)
}

fn internal(e: Error) -> Status {
    tracing::error!("{e}");
    Status::InternalServerError
}

#[get("/sign")]
fn sign_page(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    viewer: Viewer,
) -> Result<Either<PageHtml, Redirect>, Status> {
    if maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    if viewer.signed_in.is_some() {
        return Ok(Either::Right(Redirect::to("/")));
    }
    render_sign(portal, lang.0, SignView::default(), Status::Ok)
        .map(Either::Left)
        .map_err(internal)
}

/// Lenient on purpose: missing fields are reported on the page in the client's language, and
/// extra fields (such as `send` and `_do` from an ISP's own login form) are ignored.
#[derive(FromForm)]
struct SignForm {
    username: Option<String>,
    password: Option<String>,
}

/// Finds the client a login name refers to: a client number, or a custom username.
pub(super) fn find_client(portal: &Portal, login: &str) -> Result<Option<Client>, Error> {
    if let Some(c) = portal.store.client_by_number(login)? {
        return Ok(Some(c));
    }
    portal.store.client_by_username(login)
}

/// Whether a login posted from another origin (the ISP's own website) is accepted.
fn cross_origin_login_allowed(portal: &Portal, origin: Option<&str>) -> bool {
    if !portal
        .settings
        .bool("ci_login_form_allow_cross_origin", None)
    {
        return false;
    }
    let allowed = portal.settings.text("ci_login_form_allowed_origins", None);
    let list: Vec<&str> = allowed
        .split([',', ' '])
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .collect();
    list.is_empty() || origin.is_some_and(|o| list.contains(&o.trim_end_matches('/')))
}

#[post("/sign", data = "<form>")]
async fn sign_in(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    cookies: &CookieJar<'_>,
    provenance: Provenance,
    viewer: Viewer,
    form: Option<Form<SignForm>>,
) -> Result<Either<PageHtml, Redirect>, Status> {
    let portal: &Portal = portal;
    let lang = lang.0;
    if maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    let page = |key: &str, login: &str, status: Status| {
        let view = SignView {
            error: Some(portal.i18n.t(lang, key)),
            username: login,
            ..SignView::default()
        };
        render_sign(portal, lang, view, status)
            .map(Either::Left)
            .map_err(internal)
    };
    if !provenance.same_origin && !cross_origin_login_allowed(portal, provenance.origin.as_deref())
    {
        tracing::warn!(origin = ?provenance.origin, "refused a login posted from another website");
        return page("sign-error-cross-origin", "", Status::Forbidden);
    }
    let Some(form) = form else {
        return page("sign-error-form", "", Status::BadRequest);
    };
    let login = form.username.as_deref().unwrap_or("").trim().to_string();
    let password = form.password.clone().unwrap_or_default();
    if login.is_empty() || password.is_empty() {
        return page("sign-error-missing", &login, Status::UnprocessableEntity);
    }
    let now = portal.clock.unix();
    let source = viewer.source_addr.as_deref();
    // In front of the per-client lockout: an address that keeps guessing waits longer and
    // longer, so one address cannot lock out account after account. Nothing is verified or
    // counted against any account meanwhile.
    let addr_key = source.unwrap_or("-");
    if let Some(wait) = portal.throttles.logins_by_addr.blocked_for(addr_key, now) {
        tracing::warn!(
            source = addr_key,
            "login refused: the address must wait {wait} s"
        );
        return page("sign-error-throttled", &login, Status::TooManyRequests);
    }
    let client = find_client(portal, &login).map_err(internal)?;
    // A login name without an account is counted and "locked" exactly like an account, so
    // the lockout message tells nobody which accounts exist.
    let ghost = crate::model::Client::normalized_username(&login);
    let (credential, locked) = match &client {
        Some(c) => (
            portal.store.get_id::<Credential>(c.id).map_err(internal)?,
            lockout::is_locked(&portal.store, c.id, now).map_err(internal)?,
        ),
        None => (
            None,
            portal
                .throttles
                .unknown_logins
                .blocked_for(&ghost, now)
                .is_some(),
        ),
    };
    // Unknown client, no password yet, wrong password and locked account all cost one argon2
    // verification, so the answer's timing tells nothing.
    let ok = portal
        .hasher
        .verify(
            credential.as_ref().map(|c| c.password_hash.clone()),
            password,
        )
        .await;
    let audit = |kind, client_id: Option<u64>| {
        portal.audit(Audit {
            client_id,
            login: client_id.is_none().then_some(login.as_str()),
            source,
            ..Audit::new(kind)
        })
    };
    if locked {
        audit(AuditKind::LoginWhileLocked, client.as_ref().map(|c| c.id));
        return page("sign-error-locked", &login, Status::Forbidden);
    }
    let (client, credential) = match (ok, client, credential) {
        (true, Some(c), Some(cred)) => (c, cred),
        (_, client, _) => {
            let free = portal
                .settings
                .int("ci_login_throttle_free_attempts", None)
                .max(1) as u32;
            portal.throttles.logins_by_addr.failure_with_backoff(
                addr_key,
                now,
                15 * 60,
                free,
                15 * 60,
            );
            let policy = portal.lockout_policy();
            let mut key = "sign-error-credentials";
            if let Some(c) = &client {
                audit(AuditKind::LoginFailed, Some(c.id));
                if lockout::record_failure(&portal.store, c.id, now, policy).map_err(internal)? {
                    audit(AuditKind::Lockout, Some(c.id));
                    key = "sign-error-locked";
                }
            } else {
                audit(AuditKind::LoginFailed, None);
                if portal.throttles.unknown_logins.failure_with_lockout(
                    &ghost,
                    now,
                    policy.attempts,
                    policy.seconds,
                ) {
                    audit(AuditKind::Lockout, None);
                    key = "sign-error-locked";
                }
            }
            return page(key, &login, Status::Unauthorized);
        }
    };
    // Said only after the right password, so it tells nobody without it whether the account
    // exists or is disabled. A one-time password is not spent by this refusal.
    if crate::access::is_disabled(&portal.store, &client).map_err(internal)? {
        audit(AuditKind::LoginWhileDisabled, Some(client.id));
        return page("sign-error-disabled", &login, Status::Forbidden);
    }
    let mut event = LoginEvent {
        client: ClientView::from(&client),
        source_addr: viewer.source_addr.clone(),
    };
    if let Err(veto) = portal.registry.hooks.run("before_login", &mut event) {
        let view = SignView {
            error: Some(veto.message_in(lang).to_string()),
            username: &login,
            ..SignView::default()
        };
        return render_sign(portal, lang, view, Status::Forbidden)
            .map(Either::Left)
            .map_err(internal);
    }
    lockout::clear(&portal.store, client.id).map_err(internal)?;
    // A one-time password is spent by this login, checked and deleted in one step: of any
    // number of parallel logins with it, one gets in. The client must then choose their own.
    if credential.one_time
        && !auth::consume_one_time(&portal.store, client.id, &credential.password_hash)
            .map_err(internal)?
    {
        audit(AuditKind::LoginFailed, Some(client.id));
        return page("sign-error-credentials", &login, Status::Unauthorized);
    }
    // A fresh session id at every login; the old one (if any) ends.
    if let Some(old) = cookies.get(portal.session_cookie_name()) {
        auth::end_session(&portal.store, old.value()).map_err(internal)?;
    }
    let max_sessions = portal.settings.int("session_max_per_client", None).max(1) as usize;
    let token = auth::start_session_with(
        &portal.store,
        client.id,
        now,
        credential.one_time,
        max_sessions,
    )
    .map_err(internal)?;
    cookies.add(session_cookie(portal, token));
    audit(AuditKind::LoginOk, Some(client.id));
    let _ = portal.registry.hooks.run("after_login", &mut event);
    Ok(Either::Right(Redirect::to(if credential.one_time {
        "/password/"
    } else {
        "/"
    })))
}

/// HttpOnly always; Secure and `__Host-` when clients reach the portal over TLS. SameSite=Lax so
/// that links into the portal from the ISP's site or a mail keep the client logged in, while
/// cross-site posts and embedded requests do not carry it.
fn session_cookie(portal: &Portal, token: String) -> Cookie<'static> {
    Cookie::build((portal.session_cookie_name(), token))
        .http_only(true)
        .secure(portal.serves_tls())
        .same_site(SameSite::Lax)
        .path("/")
        .build()
}

#[derive(FromForm)]
struct TokenForm {
    csrf: Option<String>,
}

impl CsrfField for TokenForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[post("/sign/out", data = "<form>")]
fn sign_out(
    portal: &State<Arc<Portal>>,
    cookies: &CookieJar<'_>,
    _same_origin: SameOrigin,
    viewer: Viewer,
    form: Result<CheckedForm<TokenForm>, FormRefused<'_>>,
) -> Result<Redirect, Status> {
    // The form guard has checked the session's token.
    if let Err(refused) = form {
        return Err(refused.status());
    }
    if let Some(s) = &viewer.signed_in {
        if let Some(c) = cookies.get(portal.session_cookie_name()) {
            auth::end_session(&portal.store, c.value()).map_err(internal)?;
        }
        let mut event = LogoutEvent {
            client: ClientView::from(&s.client),
        };
        let _ = portal.registry.hooks.run("after_logout", &mut event);
        portal.audit(Audit {
            client_id: Some(s.client.id),
            source: viewer.source_addr.as_deref(),
            ..Audit::new(AuditKind::Logout)
        });
    }
    cookies.remove(Cookie::build(portal.session_cookie_name()).path("/"));
    let forward = portal.settings.text("ci_forward_url_after_logout", None);
    Ok(Redirect::to(if forward.is_empty() {
        "/sign/".to_string()
    } else {
        forward
    }))
}

#[derive(FromForm)]
struct LangForm {
    lang: Option<String>,
    next: Option<String>,
    csrf: Option<String>,
}

impl CsrfField for LangForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Only local paths are followed back, so the switcher cannot be used as an open redirect.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

#[post("/lang", data = "<form>")]
fn switch_language(
    portal: &State<Arc<Portal>>,
    cookies: &CookieJar<'_>,
    _same_origin: SameOrigin,
    viewer: Viewer,
    form: Result<CheckedForm<LangForm>, FormRefused<'_>>,
) -> Result<Redirect, Status> {
    // The form guard has checked a logged-in client's token.
    let CheckedForm(form) = form.map_err(|e| match e {
        FormRefused::Form(e) if e.status() != Status::PayloadTooLarge => Status::BadRequest,
        refused => refused.status(),
    })?;
    let lang = form.lang.as_deref().unwrap_or("");
    if !i18n::is_supported(lang) {
        return Err(Status::UnprocessableEntity);
    }
    if let Some(s) = &viewer.signed_in {
        // The profile is what decides a client's language, so the switch is stored there
        // (on the record as stored now, so nothing an import changed meanwhile is lost).
        portal
            .store
            .update_client(s.client.id, |c| c.language = Some(lang.to_string()))
            .map_err(internal)?;
    }
    cookies.add(
        Cookie::build((LANG_COOKIE, lang.to_string()))
            .path("/")
            .same_site(SameSite::Lax)
            .max_age(rocket::time::Duration::days(365))
            .build(),
    );
    Ok(Redirect::to(local_path(form.next.as_deref())))
}
