//! The web server: one place that mounts everything (core routes, plugin routes, catchers,
//! security headers).

mod contact;
mod core_pages;
mod data_change;
mod documents;
pub mod download;
pub(crate) mod dynamic;
mod errors;
mod files;
pub mod form_key;
pub mod guards;
pub mod live_reload;
pub mod page;
pub mod page_cache;
mod password;
pub mod samples;
mod sign;
pub mod upload;

use std::sync::Arc;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Build, Request, Response, Rocket};

use crate::portal::Portal;

pub use guards::{ClientUser, Lang, SameOrigin};
pub use page::{Page, PageHtml, base_context};

/// Form bodies larger than this are refused with 413.
pub const FORM_LIMIT_BYTES: u64 = 16 * 1024;

/// Builds the Rocket application. Plugin routes are taken out of the registry and mounted under
/// their base paths.
pub fn build(mut portal: Portal, config: rocket::Config) -> Rocket<Build> {
    let plugin_routes = std::mem::take(&mut portal.registry.routes);
    let dev_reload = portal.dev_reload;
    let portal = Arc::new(portal);
    let mut rocket = rocket::custom(config)
        .manage(portal)
        .attach(SecurityHeaders)
        .attach(BodyLimits)
        .attach(Suspension)
        .attach(page::RenderedPages)
        .mount("/", rocket::routes![too_large, suspended])
        .mount("/", contact::routes())
        .mount("/", files::routes())
        .mount("/", documents::routes())
        .mount("/", data_change::routes())
        .mount("/", sign::routes())
        .mount("/", core_pages::routes())
        .mount("/", password::routes())
        .register("/", errors::catchers());
    if dev_reload {
        rocket = rocket.mount("/", live_reload::routes());
    }
    for (base, routes) in plugin_routes {
        rocket = rocket.mount(base, routes);
    }
    rocket
}

/// Rocket configuration for a bind address, with our limits and Rocket's own logging off
/// (we log through tracing).
pub fn rocket_config(addr: std::net::SocketAddr) -> rocket::Config {
    let limits = rocket::data::Limits::default()
        .limit("form", rocket::data::ByteUnit::from(FORM_LIMIT_BYTES))
        .limit("data-form", rocket::data::ByteUnit::from(FORM_LIMIT_BYTES))
        .limit("string", rocket::data::ByteUnit::from(FORM_LIMIT_BYTES))
        .limit("json", rocket::data::ByteUnit::Mebibyte(1));
    rocket::Config {
        address: addr.ip(),
        port: addr.port(),
        limits,
        // Rocket would take `client_ip()` from X-Real-IP whoever sent it; the source address
        // comes from `guards::source_addr`, which believes only trusted proxies.
        ip_header: None,
        log_level: rocket::config::LogLevel::Off,
        cli_colors: false,
        ident: rocket::config::Ident::none(),
        shutdown: rocket::config::Shutdown {
            grace: 2,
            mercy: 2,
            ..Default::default()
        },
        ..rocket::Config::default()
    }
}

/// Refuses a form or JSON body that is over its limit by its declared `Content-Length`, before
/// a byte of it is read: the request goes to a route that answers 413 (the themed error page).
/// Without this the body would be read up to the limit first, and a handler that takes its
/// form leniently (`Option<Form<_>>`: a form it cannot read is reported on the page) would
/// answer 400. A body sent without a length (chunked) still stops being read at the limit and
/// gets what the handler makes of that.
struct BodyLimits;

#[rocket::async_trait]
impl Fairing for BodyLimits {
    fn info(&self) -> Info {
        Info {
            name: "body limits",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut rocket::Data<'_>) {
        let Some(declared) = req
            .headers()
            .get_one("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            return;
        };
        let kind = match req.content_type() {
            Some(c) if c.is_form() => "form",
            Some(c) if c.is_form_data() => "data-form",
            Some(c) if c.is_json() => "json",
            _ => return,
        };
        let Some(limit) = req.limits().get(kind) else {
            return;
        };
        let mut limit = limit.as_u64();
        if kind == "data-form"
            && let Some(upload) = req
                .rocket()
                .state::<Arc<Portal>>()
                .and_then(|p| p.registry.upload_limit_for(req.uri().path().as_str()))
        {
            limit = upload;
        }
        if declared > limit {
            let path: Vec<&str> = req.uri().path().segments().take(2).collect();
            tracing::warn!(
                path = %path.join("/"),
                declared,
                limit,
                "refused a request body over its limit"
            );
            req.set_method(rocket::http::Method::Get);
            req.set_uri(rocket::uri!(too_large));
        }
    }
}

/// Where [`BodyLimits`] sends a request whose declared body is over its limit.
#[rocket::get("/__portico/too-large")]
fn too_large() -> rocket::http::Status {
    rocket::http::Status::PayloadTooLarge
}

/// While the portal is suspended (`portico suspend`), sends every request except static files,
/// the favicon and `/healthz` to [`suspended`]: every client page, the login and password pages
/// and plugins' pages alike, whatever guards their routes use.
struct Suspension;

/// Where [`Suspension`] sends requests.
const SUSPENDED_PATH: &str = "/__portico/suspended";

#[rocket::async_trait]
impl Fairing for Suspension {
    fn info(&self) -> Info {
        Info {
            name: "portal suspension",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut rocket::Data<'_>) {
        let Some(portal) = req.rocket().state::<Arc<Portal>>() else {
            return;
        };
        if guards::suspended_message(portal).is_none() {
            return;
        }
        let path = req.uri().path();
        if path.starts_with("/static/") || path == "/healthz" || path == "/favicon.ico" {
            return;
        }
        // The query stays: `?lang=` still chooses the page's language.
        let target = match req.uri().query() {
            Some(q) => format!("{SUSPENDED_PATH}?{q}"),
            None => SUSPENDED_PATH.to_string(),
        };
        let uri = rocket::http::uri::Origin::parse_owned(target)
            .unwrap_or_else(|_| rocket::uri!(suspended));
        req.set_method(rocket::http::Method::Get);
        req.set_uri(uri);
    }
}

/// The suspension page: the operator's message in the theme (the viewer's invoice group's when
/// they are logged in), status 503.
#[rocket::get("/__portico/suspended")]
fn suspended(portal: &rocket::State<Arc<Portal>>, lang: Lang, viewer: guards::Viewer) -> PageHtml {
    #[derive(serde::Serialize)]
    struct SuspendedView {
        message: String,
    }
    let status = rocket::http::Status::ServiceUnavailable;
    // Resumed between the fairing and here: still answer as suspended, once.
    let message = guards::suspended_message(portal).unwrap_or_default();
    let group = viewer.signed_in.as_ref().map(|s| s.client.invoice_group_id);
    let mut ctx = base_context(portal, lang.0, SUSPENDED_PATH, None);
    ctx.insert("page", &SuspendedView { message });
    let mut html = page::start_page(
        portal,
        &portal.theme_for(group),
        "suspended.html",
        ctx,
        status,
    );
    html.private = true;
    html
}

/// Security headers on every response, error pages included.
struct SecurityHeaders;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, _req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new(
            "Content-Security-Policy",
            CONTENT_SECURITY_POLICY,
        ));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Cross-Origin-Opener-Policy", "same-origin"));
    }
}
