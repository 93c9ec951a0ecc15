//! Rendering a page through the theme: the base context every template gets, and the [`Page`]
//! guard that tabs (core's and plugins') render into.

use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use serde::Serialize;

use super::guards::{self, ClientUser, SessionUser};
use crate::auth::Session;
use crate::error::Error;
use crate::hooks::RenderEvent;
use crate::i18n::LANGUAGES;
use crate::model::{Client, InvoiceGroup};
use crate::portal::Portal;
use crate::registry::ViewerCtx;

/// HTML for one viewer: never stored by caches.
pub struct PageHtml {
    pub html: String,
    pub status: Status,
    pub private: bool,
}

impl<'r> Responder<'r, 'static> for PageHtml {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut r = Response::build();
        r.status(self.status)
            .header(ContentType::HTML)
            .sized_body(self.html.len(), std::io::Cursor::new(self.html));
        if self.private {
            r.header(Header::new("Cache-Control", "no-store"));
        }
        r.ok()
    }
}

/// Errors from handlers: logged in full, shown as the themed error page.
impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let status = match &self {
            Error::Invalid(_) => Status::BadRequest,
            Error::NotFound(_) => Status::NotFound,
            _ => Status::InternalServerError,
        };
        if status == Status::InternalServerError {
            tracing::error!("{self}");
        }
        Err(status)
    }
}

#[derive(Serialize)]
struct LanguageOption {
    code: &'static str,
    name: &'static str,
    current: bool,
}

#[derive(Serialize)]
struct ClientView<'a> {
    id: u64,
    number: &'a str,
    name: &'a str,
    username: Option<&'a str>,
}

/// What every template may use: language, languages, theme, and when logged in the client,
/// the menu, the CSRF token and the supplier footer.
pub fn base_context(
    portal: &Portal,
    lang: &'static str,
    path: &str,
    viewer: Option<(&Client, &str)>,
) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("lang", lang);
    ctx.insert(
        "languages",
        &LANGUAGES
            .iter()
            .map(|(code, name)| LanguageOption {
                code,
                name,
                current: *code == lang,
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert("path", path);
    ctx.insert("year", &portal.clock.now().format("%Y").to_string());
    let group = viewer.map(|(c, _)| c.invoice_group_id);
    ctx.insert("theme", &portal.theme_for(group));
    ctx.insert("client", &serde_json::Value::Null);
    ctx.insert("csrf", "");
    ctx.insert("supplier", &serde_json::Value::Null);
    ctx.insert("menu", &Vec::<crate::registry::MenuItem>::new());
    ctx.insert("active_tab", "");
    ctx.insert("extra", &serde_json::Map::new());
    if let Some((client, csrf)) = viewer {
        ctx.insert(
            "client",
            &ClientView {
                id: client.id,
                number: &client.number,
                name: &client.name,
                username: client.username.as_deref(),
            },
        );
        ctx.insert("csrf", csrf);
        if portal.settings.bool("ci_display_supplier_contact", group)
            && let Ok(Some(g)) = portal.store.get_id::<InvoiceGroup>(client.invoice_group_id)
        {
            ctx.insert("supplier", &g.supplier);
        }
    }
    ctx
}

/// Renders a page for a visitor who is not logged in (login, password links, notices) with the
/// globally chosen theme. The view is available to the template as `page`.
pub fn render_public(
    portal: &Portal,
    lang: &'static str,
    path: &str,
    template: &str,
    page: &impl Serialize,
    status: Status,
) -> Result<PageHtml, Error> {
    let mut ctx = base_context(portal, lang, path, None);
    ctx.insert("page", page);
    let html = portal
        .themes
        .render(&portal.theme_for(None), template, &ctx)?;
    Ok(PageHtml {
        html,
        status,
        private: true,
    })
}

/// A logged-in client's page under construction. Tabs take this guard and call [`Page::render`].
pub struct Page<'r> {
    pub portal: &'r Arc<Portal>,
    pub client: Client,
    pub session: Session,
    pub csrf: String,
    pub lang: &'static str,
    pub path: String,
}

impl<'r> Page<'r> {
    /// A page for a signed-in session, which may still have to change its password.
    pub fn for_session(req: &'r Request<'_>, user: SessionUser) -> Outcome<Self, ()> {
        let Some(portal) = guards::portal(req) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Page {
            portal,
            lang: guards::request_lang(req),
            path: req.uri().path().to_string(),
            csrf: user.session.csrf_token.clone(),
            client: user.client,
            session: user.session,
        })
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Page<'r> {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match ClientUser::from_request(req).await {
            Outcome::Success(u) => Page::for_session(
                req,
                SessionUser {
                    client: u.client,
                    session: u.session,
                },
            ),
            Outcome::Forward(s) => Outcome::Forward(s),
            Outcome::Error(e) => Outcome::Error(e),
        }
    }
}

impl Page<'_> {
    /// A setting as it applies to this client's invoice group.
    pub fn flag(&self, key: &str) -> bool {
        self.portal
            .settings
            .bool(key, Some(self.client.invoice_group_id))
    }

    pub fn t(&self, key: &str) -> String {
        self.portal.i18n.t(self.lang, key)
    }

    /// Whether a registered tab is visible to this client (tabs hidden by a setting answer 404).
    pub fn tab_visible(&self, tab_id: &str) -> bool {
        let viewer = ViewerCtx {
            client: &self.client,
            settings: &self.portal.settings,
        };
        self.portal
            .registry
            .tabs
            .iter()
            .any(|t| t.id == tab_id && (t.visible)(&viewer))
    }

    /// Renders `template` inside the portal shell with `tab` marked active. The tab's own data
    /// is available to the template as `page`.
    pub fn render(
        &self,
        tab: &str,
        template: &str,
        page: &impl Serialize,
    ) -> Result<PageHtml, Error> {
        self.render_with_status(tab, template, page, Status::Ok)
    }

    pub fn render_with_status(
        &self,
        tab: &str,
        template: &str,
        page: &impl Serialize,
        status: Status,
    ) -> Result<PageHtml, Error> {
        let portal = self.portal;
        let mut ctx = base_context(
            portal,
            self.lang,
            &self.path,
            Some((&self.client, &self.csrf)),
        );
        let viewer = ViewerCtx {
            client: &self.client,
            settings: &portal.settings,
        };
        // Until a one-time password is replaced there is nothing else to navigate to.
        if !self.session.must_change_password {
            ctx.insert("menu", &portal.registry.menu(&viewer, tab));
        }
        ctx.insert("active_tab", tab);
        ctx.insert("page", page);
        let hooks = &portal.registry.hooks.render;
        let mut event = RenderEvent {
            template: template.to_string(),
            client_id: Some(self.client.id),
            extra: Default::default(),
        };
        // A veto would leave the client with no page; what a hook adds is all we take.
        hooks.run_before_unrefusable("a page", &mut event);
        ctx.insert("extra", &event.extra);
        let theme = portal.theme_for(Some(self.client.invoice_group_id));
        let html = portal.themes.render(&theme, template, &ctx)?;
        hooks.run_after(&event);
        Ok(PageHtml {
            html,
            status,
            private: true,
        })
    }
}
