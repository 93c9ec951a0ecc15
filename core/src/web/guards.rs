//! Request guards, layered: the portal state → the viewer's session → the logged-in client →
//! a [`Page`](super::page::Page) a tab can render into.

use std::sync::Arc;

use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::{self, Session};
use crate::i18n;
use crate::model::Client;
use crate::portal::Portal;

pub const LANG_COOKIE: &str = "portico_lang";

pub fn portal<'r>(req: &'r Request<'_>) -> Option<&'r Arc<Portal>> {
    req.rocket().state::<Arc<Portal>>()
}

/// The session and client behind the request's cookie, looked up once per request.
#[derive(Clone)]
pub struct SignedIn {
    pub session: Session,
    pub client: Client,
}

pub fn signed_in<'r>(req: &'r Request<'_>) -> &'r Option<SignedIn> {
    req.local_cache(|| {
        let portal = portal(req)?;
        let token = req
            .cookies()
            .get(portal.session_cookie_name())?
            .value()
            .to_string();
        let now = portal.clock.unix();
        // Read before the store: see `SignedInMemo`.
        let generation = portal.store.write_generation();
        if let Some(seen) = portal.signed_in_memo.get(&token, generation, now, portal) {
            return Some(seen);
        }
        let found = look_up(portal, &token, now);
        if let Some(s) = &found {
            portal.signed_in_memo.put(&token, generation, s);
        }
        found
    })
}

/// The session behind `token` and its client, from the store.
fn look_up(portal: &Portal, token: &str, now: i64) -> Option<SignedIn> {
    let session = match auth::find_session(&portal.store, token, now, portal.session_policy()) {
        Ok(s) => s?,
        Err(e) => {
            tracing::error!("session lookup failed: {e}");
            return None;
        }
    };
    match portal.store.get_id::<Client>(session.client_id) {
        // Disabling a client ends their sessions; one that a login started at the same
        // moment ends here, at its first request.
        Ok(Some(client)) if crate::access::is_disabled(&portal.store, &client).unwrap_or(true) => {
            if let Err(e) = auth::end_session_by_hash(&portal.store, &session.id_hash) {
                tracing::error!("ending a disabled client's session failed: {e}");
            }
            None
        }
        Ok(Some(client)) => Some(SignedIn { session, client }),
        Ok(None) => None,
        Err(e) => {
            tracing::error!("client lookup failed: {e}");
            None
        }
    }
}

/// Sessions and their clients as last read from the store, each with the store's write
/// generation read before it was read: while the generation is the same, no write of any kind
/// has happened, so the session still exists, its client is as read and is not disabled.
/// What changes with the clock alone, the session's idle and absolute limits and the minute's
/// refresh of its last use, is checked at every request as before. At most [`MEMO_SESSIONS`].
#[derive(Default)]
pub struct SignedInMemo(std::sync::Mutex<std::collections::HashMap<Vec<u8>, (u64, SignedIn)>>);

/// Sessions the memo holds before it starts again.
const MEMO_SESSIONS: usize = 1024;

impl SignedInMemo {
    fn get(&self, token: &str, generation: u64, now: i64, portal: &Portal) -> Option<SignedIn> {
        let memo = self.0.lock().ok()?;
        let (seen_at, s) = memo.get(&auth::token_hash(token))?;
        let current = *seen_at == generation
            && s.session.is_live(now, portal.session_policy())
            && !auth::last_seen_due(&s.session, now);
        current.then(|| s.clone())
    }

    fn put(&self, token: &str, generation: u64, s: &SignedIn) {
        if let Ok(mut memo) = self.0.lock() {
            if memo.len() >= MEMO_SESSIONS {
                memo.clear();
            }
            memo.insert(auth::token_hash(token), (generation, s.clone()));
        }
    }
}

/// The language for this request: `?lang=` (a preview of the page in that language, for this
/// request only), else the client's profile, else the switcher's cookie, else the browser's
/// Accept-Language, else English. Languages the portal does not offer are ignored.
pub fn request_lang(req: &Request<'_>) -> &'static str {
    if let Some(Ok(wanted)) = req.query_value::<&str>("lang")
        && let Some((code, _)) = i18n::LANGUAGES.iter().find(|(c, _)| *c == wanted)
    {
        return code;
    }
    if let Some(s) = signed_in(req)
        && let Some(l) = &s.client.language
        && let Some((code, _)) = i18n::LANGUAGES.iter().find(|(c, _)| c == l)
    {
        return code;
    }
    cookie_or_header_lang(req.cookies(), req.headers().get_one("Accept-Language"))
}

pub fn cookie_or_header_lang(cookies: &CookieJar<'_>, accept: Option<&str>) -> &'static str {
    if let Some(c) = cookies.get(LANG_COOKIE)
        && let Some((code, _)) = i18n::LANGUAGES.iter().find(|(l, _)| *l == c.value())
    {
        return code;
    }
    accept.and_then(i18n::negotiate).unwrap_or(i18n::FALLBACK)
}

pub fn maintenance_on(portal: &Portal) -> bool {
    portal.settings.bool("maintenance_mode", None)
}

/// The operator's message while the portal is suspended (`portal_suspended_message` not empty).
pub fn suspended_message(portal: &Portal) -> Option<String> {
    let message = portal.settings.text("portal_suspended_message", None);
    let message = message.trim();
    (!message.is_empty()).then(|| message.to_string())
}

/// The request's language as a guard.
pub struct Lang(pub &'static str);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Lang {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Lang(request_lang(req)))
    }
}

/// A logged-in client. Forwards with 401 (the catcher sends the browser to the login page);
/// during maintenance fails with 503 (the catcher shows the maintenance page); a client who
/// logged in with a one-time password fails with 428 (the catcher sends them to the password
/// form) until they have chosen their own.
pub struct ClientUser {
    pub client: Client,
    pub session: Session,
}

/// Like [`ClientUser`], but also admits a session that must change its password first.
pub struct SessionUser {
    pub client: Client,
    pub session: Session,
}

fn session_user(req: &Request<'_>) -> Outcome<SessionUser, ()> {
    let Some(portal) = portal(req) else {
        return Outcome::Error((Status::InternalServerError, ()));
    };
    if maintenance_on(portal) {
        return Outcome::Error((Status::ServiceUnavailable, ()));
    }
    match signed_in(req) {
        Some(s) => Outcome::Success(SessionUser {
            client: s.client.clone(),
            session: s.session.clone(),
        }),
        None => Outcome::Forward(Status::Unauthorized),
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionUser {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        session_user(req)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientUser {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match session_user(req) {
            Outcome::Success(u) if u.session.must_change_password => {
                Outcome::Error((Status::PreconditionRequired, ()))
            }
            Outcome::Success(u) => Outcome::Success(ClientUser {
                client: u.client,
                session: u.session,
            }),
            Outcome::Forward(s) => Outcome::Forward(s),
            Outcome::Error(e) => Outcome::Error(e),
        }
    }
}

/// Where a form post came from: this portal's own pages, or another origin (and which).
pub struct Provenance {
    pub same_origin: bool,
    pub origin: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Provenance {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Provenance {
            same_origin: is_same_origin(req),
            origin: req.headers().get_one("Origin").map(str::to_string),
        })
    }
}

/// Refuses state-changing requests that a browser marks as coming from another site.
/// `Sec-Fetch-Site` is trusted when present; otherwise `Origin` must match `Host`.
pub struct SameOrigin;

pub fn is_same_origin(req: &Request<'_>) -> bool {
    match req.headers().get_one("Sec-Fetch-Site") {
        Some("same-origin" | "none") => return true,
        Some(_) => return false,
        None => {}
    }
    let host = req.headers().get_one("Host");
    // The scheme and host of an Origin or Referer must be this portal's.
    let matches = |url: &str| {
        url.split_once("://").is_some_and(|(_, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            Some(authority) == host
        })
    };
    match (
        req.headers().get_one("Origin"),
        req.headers().get_one("Referer"),
    ) {
        (Some("null"), _) => false,
        (Some(origin), _) => matches(origin),
        (None, Some(referer)) => matches(referer),
        (None, None) => true,
    }
}

/// Whether a request says where it comes from at all (Sec-Fetch-Site, Origin or Referer).
fn has_provenance(req: &Request<'_>) -> bool {
    ["Sec-Fetch-Site", "Origin", "Referer"]
        .iter()
        .any(|h| req.headers().get_one(h).is_some())
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        // Browsers always say where a form post comes from; for a logged-in client, a post
        // that says nothing is refused (belt and braces beside the form token).
        let anonymous_ok = has_provenance(req) || signed_in(req).is_none();
        if anonymous_ok && is_same_origin(req) {
            Outcome::Success(SameOrigin)
        } else {
            // Only the first two path segments: a password link's path carries its token.
            let path: Vec<&str> = req.uri().path().segments().take(2).collect();
            tracing::warn!(path = %path.join("/"), "refused a cross-site form post");
            Outcome::Error((Status::Forbidden, ()))
        }
    }
}

/// A form that carries the session's token in a `csrf` field.
pub trait CsrfField {
    fn csrf(&self) -> Option<&str>;
}

impl CsrfField for std::collections::HashMap<String, String> {
    fn csrf(&self) -> Option<&str> {
        self.get("csrf").map(String::as_str)
    }
}

/// Why a checked form was refused.
#[derive(Debug)]
pub enum FormRefused<'r> {
    /// The body is not the form (too large: `status()` is 413).
    Form(rocket::form::Errors<'r>),
    /// A logged-in client's form without the session's token.
    Token,
}

impl FormRefused<'_> {
    pub fn status(&self) -> Status {
        match self {
            FormRefused::Form(e) => e.status(),
            FormRefused::Token => Status::Forbidden,
        }
    }
}

/// The one check of the form token for every state-changing form: when the request belongs
/// to a live session, the form's `csrf` field must be that session's token. Handlers take
/// `Result<CheckedForm<T>, FormRefused>` and never compare tokens themselves.
pub struct CheckedForm<T>(pub T);

#[rocket::async_trait]
impl<'r, T: rocket::form::FromForm<'r> + CsrfField + Send + 'r> rocket::data::FromData<'r>
    for CheckedForm<T>
{
    type Error = FormRefused<'r>;

    async fn from_data(
        req: &'r Request<'_>,
        data: rocket::Data<'r>,
    ) -> rocket::data::Outcome<'r, Self> {
        use rocket::outcome::Outcome as O;
        match rocket::form::Form::<T>::from_data(req, data).await {
            O::Success(form) => {
                let form = form.into_inner();
                match signed_in(req) {
                    Some(s) if !tokens_match(form.csrf().unwrap_or(""), &s.session.csrf_token) => {
                        O::Error((Status::Forbidden, FormRefused::Token))
                    }
                    _ => O::Success(CheckedForm(form)),
                }
            }
            O::Error((status, e)) => O::Error((status, FormRefused::Form(e))),
            O::Forward(f) => O::Forward(f),
        }
    }
}

/// Constant-time comparison for tokens.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The client's source address for logs and hooks: the TCP peer, or what a trusted proxy says
/// in `X-Forwarded-For` / `X-Real-IP` ([`Portal::client_source`]). Rocket's own `client_ip()`
/// believes `X-Real-IP` from anyone, so it is not used (and its `ip_header` is off).
pub fn source_addr(req: &Request<'_>) -> Option<String> {
    let peer = req.remote()?.ip();
    let Some(portal) = portal(req) else {
        return Some(peer.to_canonical().to_string());
    };
    let forwarded_for: Vec<&str> = req.headers().get("X-Forwarded-For").collect();
    let real_ip = req.headers().get_one("X-Real-IP");
    Some(
        portal
            .client_source(peer, &forwarded_for, real_ip)
            .to_string(),
    )
}

/// What handlers outside the logged-in pages need to know about the request: who (if anyone)
/// is signed in, where it came from, and whether it arrived over TLS.
pub struct Viewer {
    pub signed_in: Option<SignedIn>,
    pub source_addr: Option<String>,
    pub tls: bool,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewer {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Viewer {
            signed_in: signed_in(req).clone(),
            source_addr: source_addr(req),
            tls: req.rocket().config().tls_enabled(),
        })
    }
}
