//! Logging in and out, and the language switcher (which works before and after login).

use std::sync::Arc;

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::{Either, Route, State, get, post, routes, uri};
use serde::Serialize;

use super::guards::{self, LANG_COOKIE, Lang, SameOrigin, Viewer, tokens_match};
use super::page::{PageHtml, base_context};
use crate::auth::{self, Credential, SESSION_COOKIE};
use crate::error::Error;
use crate::hooks::{LoginEvent, LogoutEvent};
use crate::i18n;
use crate::model::Client;
use crate::portal::Portal;

pub fn routes() -> Vec<Route> {
    routes![sign_page, sign_in, sign_out, switch_language]
}

#[derive(Serialize)]
struct SignView<'a> {
    error: Option<String>,
    username: &'a str,
}

fn render_sign(
    portal: &Portal,
    lang: &'static str,
    error: Option<String>,
    username: &str,
    status: Status,
) -> Result<PageHtml, Error> {
    let mut ctx = base_context(portal, lang, "/sign/", None);
    ctx.insert("page", &SignView { error, username });
    let html = portal
        .themes
        .render(&portal.theme_for(None), "sign.html", &ctx)?;
    Ok(PageHtml {
        html,
        status,
        private: true,
    })
}

#[get("/sign")]
fn sign_page(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    viewer: Viewer,
) -> Result<Either<PageHtml, Redirect>, Status> {
    if guards::maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    if viewer.signed_in.is_some() {
        return Ok(Either::Right(Redirect::to(uri!("/"))));
    }
    render_sign(portal, lang.0, None, "", Status::Ok)
        .map(Either::Left)
        .map_err(|e| {
            tracing::error!("{e}");
            Status::InternalServerError
        })
}

/// Lenient on purpose: missing fields are reported on the page in the client's language, and
/// extra fields (such as `send` and `_do` from an ISP's own login form) are ignored.
#[derive(FromForm)]
struct SignForm {
    username: Option<String>,
    password: Option<String>,
}

/// Finds the client a login name refers to: a client number, or a custom username.
fn find_client(portal: &Portal, login: &str) -> Result<Option<Client>, Error> {
    if let Some(c) = portal.store.client_by_number(login)? {
        return Ok(Some(c));
    }
    portal.store.client_by_username(login)
}

#[post("/sign", data = "<form>")]
async fn sign_in(
    portal: &State<Arc<Portal>>,
    lang: Lang,
    cookies: &CookieJar<'_>,
    _same_origin: SameOrigin,
    viewer: Viewer,
    form: Option<Form<SignForm>>,
) -> Result<Either<PageHtml, Redirect>, Status> {
    let portal: &Portal = portal;
    let fail = |e: Error| {
        tracing::error!("{e}");
        Status::InternalServerError
    };
    if guards::maintenance_on(portal) {
        return Err(Status::ServiceUnavailable);
    }
    let lang = lang.0;
    let Some(form) = form else {
        let msg = portal.i18n.t(lang, "sign-error-form");
        return render_sign(portal, lang, Some(msg), "", Status::BadRequest)
            .map(Either::Left)
            .map_err(fail);
    };
    let login = form.username.as_deref().unwrap_or("").trim().to_string();
    let password = form.password.clone().unwrap_or_default();
    if login.is_empty() || password.is_empty() {
        let msg = portal.i18n.t(lang, "sign-error-missing");
        return render_sign(portal, lang, Some(msg), &login, Status::UnprocessableEntity)
            .map(Either::Left)
            .map_err(fail);
    }
    let client = find_client(portal, &login).map_err(fail)?;
    let hash = match &client {
        Some(c) => portal
            .store
            .get_id::<Credential>(c.id)
            .map_err(fail)?
            .map(|cred| cred.password_hash),
        None => None,
    };
    // Unknown client, no password yet and wrong password all cost one argon2 verification and
    // get the same message.
    let ok = portal.hasher.verify(hash, password).await;
    let client = match (ok, client) {
        (true, Some(c)) => c,
        _ => {
            tracing::info!(login = %login, source = ?viewer.source_addr, "login failed");
            let msg = portal.i18n.t(lang, "sign-error-credentials");
            return render_sign(portal, lang, Some(msg), &login, Status::Unauthorized)
                .map(Either::Left)
                .map_err(fail);
        }
    };
    let mut event = LoginEvent {
        client_id: client.id,
        client_number: client.number.clone(),
        source_addr: viewer.source_addr.clone(),
    };
    if let Err(veto) = portal.registry.hooks.login.run_before(&mut event) {
        return render_sign(portal, lang, Some(veto.message), &login, Status::Forbidden)
            .map(Either::Left)
            .map_err(fail);
    }
    // A fresh session id at every login; the old one (if any) ends.
    if let Some(old) = cookies.get(SESSION_COOKIE) {
        auth::end_session(&portal.store, old.value()).map_err(fail)?;
    }
    let token = auth::start_session(&portal.store, client.id, portal.clock.unix()).map_err(fail)?;
    cookies.add(session_cookie(token, viewer.tls));
    tracing::info!(client = client.id, source = ?event.source_addr, "login");
    portal.registry.hooks.login.run_after(&event);
    Ok(Either::Right(Redirect::to(uri!("/"))))
}

/// HttpOnly always; Secure when served over TLS. SameSite=Lax so that links into the portal
/// from the ISP's site or a mail keep the client logged in, while cross-site posts don't carry it.
fn session_cookie(token: String, tls: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .secure(tls)
        .same_site(SameSite::Lax)
        .path("/")
        .build()
}

#[derive(FromForm)]
struct TokenForm {
    csrf: Option<String>,
}

#[post("/sign/out", data = "<form>")]
fn sign_out(
    portal: &State<Arc<Portal>>,
    cookies: &CookieJar<'_>,
    _same_origin: SameOrigin,
    viewer: Viewer,
    form: Option<Form<TokenForm>>,
) -> Result<Redirect, Status> {
    if let Some(s) = &viewer.signed_in {
        let sent = form.and_then(|f| f.csrf.clone()).unwrap_or_default();
        if !tokens_match(&sent, &s.session.csrf_token) {
            return Err(Status::Forbidden);
        }
        if let Some(c) = cookies.get(SESSION_COOKIE) {
            auth::end_session(&portal.store, c.value()).map_err(|e| {
                tracing::error!("{e}");
                Status::InternalServerError
            })?;
        }
        portal.registry.hooks.logout.run_after(&LogoutEvent {
            client_id: s.client.id,
        });
        tracing::info!(client = s.client.id, "logout");
    }
    cookies.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok(Redirect::to("/sign/"))
}

#[derive(FromForm)]
struct LangForm {
    lang: Option<String>,
    next: Option<String>,
    csrf: Option<String>,
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
    form: Option<Form<LangForm>>,
) -> Result<Redirect, Status> {
    let Some(form) = form else {
        return Err(Status::BadRequest);
    };
    let lang = form.lang.as_deref().unwrap_or("");
    if !i18n::is_supported(lang) {
        return Err(Status::UnprocessableEntity);
    }
    if let Some(s) = &viewer.signed_in {
        if !tokens_match(form.csrf.as_deref().unwrap_or(""), &s.session.csrf_token) {
            return Err(Status::Forbidden);
        }
        // The profile is what decides a client's language, so the switch is stored there.
        let mut client = s.client.clone();
        client.language = Some(lang.to_string());
        portal.store.write(|tx| tx.put(&client)).map_err(|e| {
            tracing::error!("{e}");
            Status::InternalServerError
        })?;
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
