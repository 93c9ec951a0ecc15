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
use crate::hooks::{RenderEvent, Veto};
use crate::i18n::LANGUAGES;
use crate::model::Client;
use crate::plugin::{ClientData, Namespace};
use crate::portal::Portal;
use crate::registry::ViewerCtx;
use crate::theme::{PageOutcome, PendingRender};

/// HTML for one viewer: never stored by caches.
pub struct PageHtml {
    body: Body,
    pub status: Status,
    pub private: bool,
}

enum Body {
    Ready(String),
    /// Kept by the page cache, shared with it.
    Kept(std::sync::Arc<[u8]>),
    /// Still rendering on the render pool; [`RenderedPages`] awaits it.
    Rendering(PendingRender),
}

impl PageHtml {
    /// A page whose HTML is ready.
    pub fn ready(html: String, status: Status) -> Self {
        PageHtml {
            body: Body::Ready(html),
            status,
            private: true,
        }
    }

    /// A page the page cache kept ([`super::page_cache`]): always a `200`.
    pub(crate) fn kept(html: std::sync::Arc<[u8]>) -> Self {
        PageHtml {
            body: Body::Kept(html),
            status: Status::Ok,
            private: true,
        }
    }

    pub(crate) fn rendering(pending: PendingRender, status: Status) -> Self {
        PageHtml {
            body: Body::Rendering(pending),
            status,
            private: true,
        }
    }
}

/// Where a page's render waits for [`RenderedPages`] (Rocket responders cannot wait).
#[derive(Default)]
struct RenderSlot(std::sync::Mutex<Option<PendingRender>>);

impl<'r> Responder<'r, 'static> for PageHtml {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut r = Response::build();
        r.status(self.status).header(ContentType::HTML);
        match self.body {
            Body::Ready(html) => {
                r.sized_body(html.len(), std::io::Cursor::new(html));
            }
            Body::Kept(html) => {
                r.sized_body(html.len(), std::io::Cursor::new(html));
            }
            Body::Rendering(pending) => {
                if let Ok(mut slot) = req.local_cache(RenderSlot::default).0.lock() {
                    *slot = Some(pending);
                }
            }
        }
        if self.private {
            r.header(Header::new("Cache-Control", "no-store"));
        }
        r.ok()
    }
}

/// Awaits the render of a page answered with a [`PageHtml`] still rendering, and sets it as
/// the body: the request's async thread serves others meanwhile.
pub struct RenderedPages;

#[rocket::async_trait]
impl rocket::fairing::Fairing for RenderedPages {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "rendered pages",
            kind: rocket::fairing::Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let pending = req
            .local_cache(RenderSlot::default)
            .0
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        let Some(pending) = pending else {
            return;
        };
        let (status, html) = match pending.wait().await {
            Ok(PageOutcome::Html { html, status }) => (
                status.and_then(Status::from_code).unwrap_or(res.status()),
                html,
            ),
            Ok(PageOutcome::Redirect(to)) => {
                res.set_status(Status::SeeOther);
                res.set_raw_header("Location", to);
                res.set_sized_body(0, std::io::Cursor::new(String::new()));
                return;
            }
            Ok(PageOutcome::Status(code)) => {
                let status = Status::from_code(code).unwrap_or(Status::InternalServerError);
                super::errors::error_page(status, req).finished().await
            }
            Err(e) => {
                tracing::error!("{e}");
                let status = Status::InternalServerError;
                (status, plain_html(status))
            }
        };
        res.set_status(status);
        match super::page_cache::keep(req, res, status, html) {
            Ok(kept) => res.set_sized_body(kept.len(), std::io::Cursor::new(kept)),
            Err(html) => res.set_sized_body(html.len(), std::io::Cursor::new(html)),
        }
    }
}

impl PageHtml {
    /// The status and HTML once rendered (for a page answered from inside another's response).
    async fn finished(self) -> (Status, String) {
        let pending = match self.body {
            Body::Ready(html) => return (self.status, html),
            Body::Kept(html) => return (self.status, String::from_utf8_lossy(&html).into_owned()),
            Body::Rendering(p) => p,
        };
        match pending.wait().await {
            Ok(PageOutcome::Html { html, status }) => (
                status.and_then(Status::from_code).unwrap_or(self.status),
                html,
            ),
            Ok(other) => {
                tracing::error!("an error page answered {other:?}");
                let status = Status::InternalServerError;
                (status, plain_html(status))
            }
            Err(e) => {
                tracing::error!("{e}");
                (self.status, plain_html(self.status))
            }
        }
    }
}

/// A bare page for when even the compiled-in template cannot render.
pub fn plain_html(status: Status) -> String {
    format!("<!doctype html><title>{status}</title><p>{status}</p>")
}

/// The render deadline (`theme_render_timeout_ms`).
pub fn render_timeout(portal: &Portal) -> std::time::Duration {
    let ms = portal.settings.int("theme_render_timeout_ms", None).max(1);
    std::time::Duration::from_millis(ms as u64)
}

/// Starts rendering a page through the viewer's theme on the render pool.
pub fn start_page(
    portal: &Portal,
    theme: &str,
    template: &str,
    ctx: tera::Context,
    status: Status,
) -> PageHtml {
    let pending = portal
        .themes
        .start_render(theme, template, ctx, render_timeout(portal));
    PageHtml::rendering(pending, status)
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

/// The language switcher's options with `lang` marked current, made once per language (a
/// template value shares its contents when copied).
fn language_options(lang: &str) -> tera::Value {
    static OPTIONS: std::sync::OnceLock<Vec<(&'static str, tera::Value)>> =
        std::sync::OnceLock::new();
    let options = OPTIONS.get_or_init(|| {
        LANGUAGES
            .iter()
            .map(|(current, _)| {
                let list: Vec<LanguageOption> = LANGUAGES
                    .iter()
                    .map(|(code, name)| LanguageOption {
                        code,
                        name,
                        current: code == current,
                    })
                    .collect();
                (*current, tera::Value::from_serializable(&list))
            })
            .collect()
    });
    options
        .iter()
        .find(|(code, _)| *code == lang)
        .map_or_else(|| tera::Value::from_serializable(&()), |(_, v)| v.clone())
}

/// The portal's name for an invoice group (or the public pages): `ci_portal_name`, or the
/// translated "Client portal" when it is empty.
pub fn portal_name(portal: &Portal, lang: &str, group: Option<u64>) -> String {
    let name = portal.settings.text("ci_portal_name", group);
    let name = name.trim();
    if name.is_empty() {
        portal.i18n.t(lang, "portal-title")
    } else {
        name.to_string()
    }
}

/// What every template may use: language, languages, theme, whether live reload is on, and when
/// logged in the client, the menu, the CSRF token and the supplier footer.
pub fn base_context(
    portal: &Portal,
    lang: &'static str,
    path: &str,
    viewer: Option<(&Client, &str)>,
) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("lang", lang);
    ctx.insert_value("languages", language_options(lang));
    ctx.insert("path", path);
    ctx.insert("year", &portal.clock.now().format("%Y").to_string());
    let group = viewer.map(|(c, _)| c.invoice_group_id);
    ctx.insert("theme", &portal.theme_for(group));
    ctx.insert("portal_name", &portal_name(portal, lang, group));
    ctx.insert("client", &serde_json::Value::Null);
    ctx.insert("csrf", "");
    ctx.insert("supplier", &serde_json::Value::Null);
    ctx.insert("menu", &Vec::<crate::registry::MenuItem>::new());
    ctx.insert("active_tab", "");
    ctx.insert("extra", &serde_json::Map::new());
    // `portico serve --dev`: the layout adds the live reload script (see `live_reload`).
    ctx.insert("dev_reload", &portal.dev_reload);
    ctx.insert("theme_generation", &portal.themes.generation());
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
            && let Ok(group) = portal.store.invoice_group(client.invoice_group_id)
            && let Some(g) = group.as_ref()
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
    Ok(start_page(
        portal,
        &portal.theme_for(None),
        template,
        ctx,
        status,
    ))
}

/// A logged-in client's page under construction. Tabs (core's and plugins') take this guard and
/// call [`Page::render`]. It belongs to the owner of the route that took it (`core` or a plugin
/// id): settings, store and audit events are that owner's.
pub struct Page<'r> {
    pub(crate) portal: &'r Arc<Portal>,
    pub(crate) client: Client,
    pub(crate) session: Session,
    pub(crate) csrf: String,
    pub(crate) lang: &'static str,
    pub(crate) path: String,
    pub(crate) owner: String,
    pub(crate) source_addr: Option<String>,
    pub(crate) user_agent: Option<String>,
}

/// Longest user agent a page keeps (the rest is cut off).
const MAX_USER_AGENT: usize = 512;

/// The plugin (or `core`) whose route is serving the request: the first segment of the
/// route's mount base.
fn route_owner(req: &Request<'_>) -> String {
    let base = req.route().map(|r| r.uri.base().to_string());
    match base.as_deref().map(|b| b.trim_matches('/')) {
        Some(b) if !b.is_empty() => b.split('/').next().unwrap_or("core").to_string(),
        _ => "core".to_string(),
    }
}

impl<'r> Page<'r> {
    /// A page for a signed-in session, which may still have to change its password.
    pub(crate) fn for_session(req: &'r Request<'_>, user: SessionUser) -> Outcome<Self, ()> {
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
            owner: route_owner(req),
            source_addr: guards::source_addr(req),
            user_agent: req
                .headers()
                .get_one("User-Agent")
                .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
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
    /// The logged-in client (no credential of any kind is part of it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Read-only data of the logged-in client: services, invoices, payments, messages.
    pub fn data(&self) -> ClientData<'_> {
        ClientData::new(&self.portal.store, &self.client, self.portal.clock.today())
    }

    /// The page's language (`en` or `cs`).
    pub fn lang(&self) -> &'static str {
        self.lang
    }

    /// The session's form token: put it in a hidden `csrf` field of every form (templates have
    /// it as `csrf`); take the form as `Result<CheckedForm<T>, FormRefused>`, which checks it.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The request path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client's address: the TCP peer, or what a trusted proxy says (as in the audit log).
    pub fn source_addr(&self) -> Option<&str> {
        self.source_addr.as_deref()
    }

    /// The browser's `User-Agent` header, at most 512 characters.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The id of the plugin serving this page.
    pub fn plugin_id(&self) -> &str {
        &self.owner
    }

    /// A setting (the plugin's own or core's) as it applies to the client's invoice group.
    pub fn setting(&self, key: &str) -> serde_json::Value {
        crate::plugin::setting_value(
            self.portal,
            &self.owner,
            key,
            Some(self.client.invoice_group_id),
        )
    }

    /// A yes/no setting as it applies to the client's invoice group.
    pub fn flag(&self, key: &str) -> bool {
        self.setting(key).as_bool().unwrap_or(false)
    }

    /// A text setting as it applies to the client's invoice group.
    pub fn text(&self, key: &str) -> String {
        match self.setting(key) {
            serde_json::Value::String(s) => s,
            _ => String::new(),
        }
    }

    /// A whole-number setting as it applies to the client's invoice group.
    pub fn int(&self, key: &str) -> i64 {
        self.setting(key).as_i64().unwrap_or(0)
    }

    /// A message in the page's language.
    pub fn t(&self, key: &str) -> String {
        self.portal.i18n.t(self.lang, key)
    }

    /// A message with arguments in the page's language.
    pub fn t_args(&self, key: &str, args: &[(&str, String)]) -> String {
        self.portal.i18n.text(self.lang, key, args)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.portal.clock.now()
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.portal.clock.today()
    }

    /// The current time as a stored stamp ([`crate::plugin::stamp`]).
    pub fn now_stamp(&self) -> String {
        crate::stamp::stamp(self.now())
    }

    /// A stored stamp as the page's language shows it, to the minute
    /// ([`crate::plugin::show_time`]).
    pub fn show_time(&self, at: &str) -> String {
        crate::stamp::show_time(self.lang, at)
    }

    /// The serving plugin's own store namespace.
    pub fn store(&self) -> Namespace {
        Namespace::new(self.portal.store.clone(), &self.owner)
    }

    /// An audit event of the serving plugin about the logged-in client.
    pub fn audit(&self, event: &str, detail: Option<String>) {
        crate::plugin::plugin_audit(
            self.portal,
            &self.owner,
            Some(self.client.id),
            event,
            detail,
        );
    }

    /// Queues a plain-text e-mail to the logged-in client (flushed); the outbox sends and
    /// retries it. Fails when the client has no e-mail address.
    pub fn queue_mail_to_client(&self, subject: &str, body: &str) -> Result<u64, Error> {
        let to = self
            .client
            .email
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::Invalid("the client has no e-mail address".into()))?;
        crate::plugin::queue_mail(
            self.portal,
            &self.owner,
            Some(self.client.id),
            &to,
            Some(self.client.name.clone()),
            subject,
            body,
        )
    }

    /// Queues a plain-text e-mail to the operator's address held in the e-mail setting `key`
    /// (the plugin's own, e.g. a contact for requests), about the logged-in client (flushed).
    /// Fails when the setting is not the plugin's own e-mail setting or is empty. The recipient
    /// is always the operator's choice, never the page's.
    pub fn queue_mail_to_operator(
        &self,
        key: &str,
        subject: &str,
        body: &str,
    ) -> Result<u64, Error> {
        let own_email =
            self.portal.settings.definition(key).is_ok_and(|d| {
                d.owner == self.owner && d.ty == crate::settings::SettingType::Email
            });
        if !own_email {
            return Err(Error::Invalid(format!(
                "`{key}` is not an e-mail setting of plugin `{}`",
                self.owner
            )));
        }
        let to = self.text(key);
        if to.trim().is_empty() {
            return Err(Error::Invalid(format!("`{key}` is empty")));
        }
        crate::plugin::queue_mail(
            self.portal,
            &self.owner,
            Some(self.client.id),
            &to,
            None,
            subject,
            body,
        )
    }

    /// Queues a plain-text e-mail about the logged-in client to a member of the ISP's staff
    /// (flushed). The address must come from the operator's configuration (the plugin's own
    /// records or settings), never from the request: this is not a way to mail anyone a client
    /// names.
    pub fn queue_mail_to_staff(&self, to: &str, subject: &str, body: &str) -> Result<u64, Error> {
        crate::plugin::queue_mail(
            self.portal,
            &self.owner,
            Some(self.client.id),
            to,
            None,
            subject,
            body,
        )
    }

    /// Fires a hook the plugin declared on a JSON event; another plugin's or core's is refused.
    pub fn run_hook(&self, name: &str, event: &mut serde_json::Value) -> Result<(), Veto> {
        self.portal
            .registry
            .hooks
            .fire_own(&self.owner, name, event)
    }

    /// Whether a registered tab is visible to this client (tabs hidden by a setting answer 404).
    pub fn tab_visible(&self, tab_id: &str) -> bool {
        let viewer = ViewerCtx::new(&self.client, &self.portal.settings, &self.portal.store);
        self.portal
            .registry
            .tabs
            .iter()
            .any(|(owner, t)| t.id == tab_id && (t.visible)(&viewer.for_owner(owner)))
    }

    /// Renders `template` inside the portal shell with `tab` marked active. The tab's own data
    /// is available to the template as `page`. A plugin's templates are found by their plain
    /// name (`invoices.html` → `invoicing/invoices.html`).
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
        let frame = self.frame();
        let theme = frame.theme.clone();
        let (template, ctx) = frame.finish(tab, template, page);
        Ok(start_page(self.portal, &theme, &template, ctx, status))
    }

    /// The page's shell without its tab's view: what [`PageFrame::finish`] completes, here or
    /// on a render thread.
    pub(crate) fn frame(&self) -> PageFrame {
        let portal = self.portal;
        let ctx = base_context(
            portal,
            self.lang,
            &self.path,
            Some((&self.client, &self.csrf)),
        );
        let viewer = ViewerCtx::new(&self.client, &portal.settings, &portal.store);
        // Until a one-time password is replaced there is nothing else to navigate to.
        let menu = (!self.session.must_change_password)
            .then(|| portal.registry.menu(&viewer, self.lang, ""));
        PageFrame {
            ctx,
            menu,
            tab_ids: portal.registry.tabs.iter().map(|(_, t)| t.id).collect(),
            owner: self.owner.clone(),
            client: crate::hooks::ClientView::from(&self.client),
            hooks: portal.registry.hooks.clone(),
            theme: portal.theme_for(Some(self.client.invoice_group_id)),
        }
    }
}

/// A logged-in page's shell (base context, menu, theme), built on the request's thread, that
/// takes the tab's view once it is known.
pub(crate) struct PageFrame {
    ctx: tera::Context,
    menu: Option<Vec<crate::registry::MenuItem>>,
    /// Ids of tabs (a menu item with one of these ids is a tab, else a button).
    tab_ids: Vec<&'static str>,
    owner: String,
    client: crate::hooks::ClientView,
    hooks: Arc<crate::hooks::Hooks>,
    pub theme: String,
}

impl PageFrame {
    /// The template's full name and its context, with `tab` marked active and `page` as the
    /// tab's view; plugins' render hooks add their `extra`.
    pub(crate) fn finish(
        mut self,
        tab: &str,
        template: &str,
        page: &impl Serialize,
    ) -> (String, tera::Context) {
        if let Some(mut menu) = self.menu.take() {
            for item in &mut menu {
                if self.tab_ids.contains(&item.id) {
                    item.active = item.id == tab;
                }
            }
            self.ctx.insert("menu", &menu);
        }
        self.ctx.insert("active_tab", tab);
        self.ctx.insert("page", page);
        let template = if self.owner == "core" {
            template.to_string()
        } else {
            format!("{}/{template}", self.owner)
        };
        if self.hooks.is_handled("render") {
            let mut event = RenderEvent {
                template: template.clone(),
                client: Some(self.client),
                extra: Default::default(),
            };
            // The render hook cannot refuse (the dispatch ignores a veto); additions are kept.
            let _ = self.hooks.run("render", &mut event);
            self.ctx.insert("extra", &event.extra);
        }
        (template, self.ctx)
    }
}
