//! Themed error pages. A failed login guard sends the browser to the login page; maintenance
//! mode shows the maintenance page; everything else gets the error page in the viewer's language.

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Catcher, Request, catch, catchers};
use serde::Serialize;

use super::guards::{self, request_lang};
use super::page::{PageHtml, base_context, plain_html, start_page};

pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized, must_change_password, maintenance, any_error]
}

#[catch(401)]
fn unauthorized() -> Redirect {
    Redirect::to("/sign/")
}

/// A session that logged in with a one-time password sees nothing but the password form.
#[catch(428)]
fn must_change_password() -> Redirect {
    Redirect::to("/password/")
}

#[derive(Serialize)]
struct MaintenanceView {
    has_logo: bool,
}

#[catch(503)]
fn maintenance(req: &Request<'_>) -> PageHtml {
    let Some(portal) = guards::portal(req) else {
        return plain(Status::ServiceUnavailable);
    };
    let lang = request_lang(req);
    let theme = portal.theme_for(None);
    let mut ctx = base_context(portal, lang, req.uri().path().as_str(), None);
    ctx.insert(
        "page",
        &MaintenanceView {
            has_logo: portal
                .themes
                .asset(&theme, "maintenance_logo.png")
                .is_some(),
        },
    );
    start_page(
        portal,
        &theme,
        "maintenance.html",
        ctx,
        Status::ServiceUnavailable,
    )
}

#[derive(Serialize)]
struct ErrorView {
    code: u16,
    title_key: &'static str,
    text_key: &'static str,
}

#[catch(default)]
fn any_error(status: Status, req: &Request<'_>) -> PageHtml {
    error_page(status, req)
}

/// The themed error page for a status, in the viewer's language (with their menu when they are
/// logged in).
pub(crate) fn error_page(status: Status, req: &Request<'_>) -> PageHtml {
    let Some(portal) = guards::portal(req) else {
        return plain(status);
    };
    let lang = request_lang(req);
    let (title_key, text_key) = match status.code {
        404 => ("error-404-title", "error-404-text"),
        403 => ("error-403-title", "error-403-text"),
        413 => ("error-413-title", "error-413-text"),
        400 | 422 => ("error-400-title", "error-400-text"),
        504 => ("error-504-title", "error-504-text"),
        _ => ("error-500-title", "error-500-text"),
    };
    let viewer = guards::signed_in(req);
    let mut ctx = base_context(
        portal,
        lang,
        req.uri().path().as_str(),
        viewer
            .as_ref()
            .map(|s| (&s.client, s.session.csrf_token.as_str())),
    );
    // A logged-in client keeps their menu on error pages (unless a new password comes first).
    if let Some(s) = viewer.as_ref().filter(|s| !s.session.must_change_password) {
        let v = crate::registry::ViewerCtx::new(&s.client, &portal.settings, &portal.store);
        ctx.insert("menu", &portal.registry.menu(&v, lang, ""));
    }
    ctx.insert(
        "page",
        &ErrorView {
            code: status.code,
            title_key,
            text_key,
        },
    );
    let theme = portal.theme_for(viewer.as_ref().map(|s| s.client.invoice_group_id));
    start_page(portal, &theme, "error.html", ctx, status)
}

fn plain(status: Status) -> PageHtml {
    PageHtml::ready(plain_html(status), status)
}
