//! Live reload for theme designers (`portico serve --dev`): pages carry a small script that
//! listens to `/dev/theme-events` (server-sent events) and loads the page again when the theme
//! changes — a template rebuilt, a CSS or image file edited (see [`Themes::subscribe`]).
//!
//! Without `--dev` none of it exists: [`routes`] is not mounted, so the script and the events
//! answer 404, and layouts see `dev_reload = false` and leave the script tag out. The script's
//! name is reserved: a theme's `static/portico-dev-reload.js` is never served.
//!
//! [`Themes::subscribe`]: crate::theme::Themes::subscribe

use std::sync::Arc;

use rocket::http::{ContentType, Header};
use rocket::response::stream::{Event, EventStream};
use rocket::response::{self, Responder, Response};
use rocket::tokio::select;
use rocket::{Request, Route, Shutdown, State, get, routes};

use crate::portal::Portal;

/// The script's name below `/static/`.
pub const SCRIPT: &str = "portico-dev-reload.js";

/// The event a page reloads on; its data is the theme's new generation.
const EVENT: &str = "theme-changed";

pub fn routes() -> Vec<Route> {
    routes![script, theme_events]
}

struct Script;

impl<'r> Responder<'r, 'static> for Script {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let js = include_str!("live_reload.js");
        Response::build()
            .header(ContentType::JavaScript)
            .header(Header::new("Cache-Control", "no-cache"))
            .sized_body(js.len(), std::io::Cursor::new(js))
            .ok()
    }
}

/// Served by core, before the theme's static files (a fully static path outranks
/// `/static/<path..>`), so no theme can replace it.
#[get("/static/portico-dev-reload.js")]
fn script() -> Script {
    Script
}

/// One `theme-changed` event per change of the theme, until the client goes away or the server
/// shuts down. `since` is the generation the page was rendered at (the script sends it): if the
/// theme changed between the page and this request, the event comes at once, so no edit is
/// missed.
#[get("/dev/theme-events?<since>")]
fn theme_events(
    portal: &State<Arc<Portal>>,
    since: Option<u64>,
    mut shutdown: Shutdown,
) -> EventStream![] {
    let mut changes = portal.themes.subscribe();
    EventStream! {
        let now = *changes.borrow_and_update();
        if since.is_some_and(|s| s != now) {
            yield Event::data(now.to_string()).event(EVENT);
        }
        loop {
            // An open stream must not hold up shutdown (SIGTERM) until the grace period ends.
            select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *changes.borrow_and_update();
                    yield Event::data(now.to_string()).event(EVENT);
                }
                _ = &mut shutdown => break,
            }
        }
    }
}
