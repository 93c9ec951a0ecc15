//! The web server: one place that mounts everything (core routes, plugin routes, catchers,
//! security headers).

mod core_pages;
pub(crate) mod dynamic;
mod errors;
pub mod guards;
pub mod page;
mod password;
mod sign;

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
    let portal = Arc::new(portal);
    let mut rocket = rocket::custom(config)
        .manage(portal)
        .attach(SecurityHeaders)
        .mount("/", sign::routes())
        .mount("/", core_pages::routes())
        .mount("/", password::routes())
        .register("/", errors::catchers());
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
