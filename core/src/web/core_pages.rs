//! Core's tabs (Information, Services), the login-name form, static files and `/healthz`.

use std::path::PathBuf;
use std::sync::Arc;

use rocket::form::FromForm;
use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::{Request, Route, State, get, post, routes};
use serde::Serialize;

use super::guards::{self, CheckedForm, CsrfField, FormRefused, SameOrigin, Viewer};
use super::page::{Page, PageHtml};
use crate::error::Error;
use crate::model::{Address, Client, LoginNameTaken, Message, Service, ServiceKind, Tariff};
use crate::portal::Portal;

pub fn routes() -> Vec<Route> {
    let mut all = routes![healthz, set_login_name, static_file, favicon];
    all.extend(super::page_cache::cached(routes![information, services]));
    all
}

#[get("/healthz")]
fn healthz(portal: &State<Arc<Portal>>) -> (ContentType, String) {
    let maintenance = guards::maintenance_on(portal);
    let suspended = guards::suspended_message(portal).is_some();
    (
        ContentType::JSON,
        format!("{{\"status\":\"ok\",\"maintenance\":{maintenance},\"suspended\":{suspended}}}"),
    )
}

#[derive(Serialize)]
struct MessageView {
    subject: String,
    body: String,
    scope: &'static str,
    valid_until: Option<String>,
}

#[derive(Serialize)]
struct InformationView {
    client: Client,
    mailing_address: Option<Address>,
    invoicing_address: Option<Address>,
    messages: Vec<MessageView>,
    can_set_login_name: bool,
    /// Plugins' buttons for the personal data (support request, ticket).
    buttons: Vec<crate::registry::MenuItem>,
    notice: Option<String>,
    error: Option<String>,
    /// Panels added by the `info_panels` hook (operator scripts, plugins).
    panels: Vec<PanelView>,
    /// The data-change button and the state of the client's last change.
    data_change: DataChangeInfo,
}

/// What the Information tab shows of data changes.
#[derive(Serialize, Default)]
struct DataChangeInfo {
    /// `ci_enable_client_data_change` is on: the "Change my data" button shows.
    enabled: bool,
    /// `pending`, `approved` or `rejected` (a decided change for 30 days after the decision).
    status: Option<&'static str>,
    /// When it was asked for (pending) or decided.
    date: String,
    reason: Option<String>,
    /// The values asked for.
    rows: Vec<PanelRow>,
}

fn data_change_info(page: &Page<'_>) -> Result<DataChangeInfo, Error> {
    use crate::data_change::{self as dc, ChangeStatus};
    let mut info = DataChangeInfo {
        enabled: page.flag(dc::SETTING),
        ..DataChangeInfo::default()
    };
    let Some(p) = dc::of_client(page.portal, page.client.id)? else {
        return Ok(info);
    };
    let now = page.portal.clock.unix();
    let when = match p.status {
        ChangeStatus::Pending => p.requested,
        _ => p.decided.unwrap_or(p.requested),
    };
    if p.status != ChangeStatus::Pending && now - when > dc::OUTCOME_SHOWN_DAYS * 86_400 {
        return Ok(info);
    }
    info.status = Some(match p.status {
        ChangeStatus::Pending => "pending",
        ChangeStatus::Approved => "approved",
        ChangeStatus::Rejected => "rejected",
    });
    info.date = chrono::DateTime::from_timestamp(when, 0)
        .map(|d| crate::stamp::show_date(page.lang, d.date_naive()))
        .unwrap_or_default();
    info.reason = p.reason.clone();
    let addr = |a: &Option<Address>| match a.as_ref().filter(|a| !a.is_empty()) {
        Some(a) => [
            a.street.as_str(),
            &format!("{} {}", a.zip, a.city),
            a.country.as_str(),
        ]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", "),
        None => page.t("dc-same-as-mailing"),
    };
    let c = &p.changes;
    let mut rows = Vec::new();
    if let Some(a) = &c.mailing_address {
        rows.push(("info-mailing-address", addr(&Some(a.clone()))));
    }
    if let Some(a) = &c.invoicing_address {
        rows.push(("info-invoicing-address", addr(a)));
    }
    for (key, v) in [
        ("info-email", &c.email),
        ("info-phone", &c.phone),
        ("info-mobile", &c.mobile),
    ] {
        if let Some(v) = v {
            rows.push((
                key,
                if v.is_empty() {
                    page.t("dc-removed")
                } else {
                    v.clone()
                },
            ));
        }
    }
    info.rows = rows
        .into_iter()
        .map(|(k, value)| PanelRow {
            label: page.t(k),
            value,
        })
        .collect();
    Ok(info)
}

/// One panel of the `info_panels` hook, checked: a title and a text or rows.
#[derive(Serialize, Debug, PartialEq)]
struct PanelView {
    title: String,
    text: Option<String>,
    rows: Vec<PanelRow>,
}

#[derive(Serialize, Debug, PartialEq)]
struct PanelRow {
    label: String,
    value: String,
}

/// Most panels shown, and the longest texts of one, so a script cannot flood the page.
const MAX_PANELS: usize = 20;
const MAX_PANEL_ROWS: usize = 50;
const MAX_PANEL_TEXT: usize = 4000;

fn panel_text(v: &serde_json::Value, max: usize) -> Option<String> {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    Some(text.chars().take(max).collect())
}

/// A panel as the hook left it, if it is one: `{ title, text }` or `{ title, rows }`.
fn panel_view(v: &serde_json::Value) -> Option<PanelView> {
    let title = panel_text(v.get("title")?, 200)?;
    let text = v.get("text").and_then(|t| panel_text(t, MAX_PANEL_TEXT));
    let rows: Vec<PanelRow> = v
        .get("rows")
        .and_then(|r| r.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|row| {
                    let pair = row.as_array()?;
                    Some(PanelRow {
                        label: panel_text(pair.first()?, 200)?,
                        value: panel_text(pair.get(1)?, 1000)?,
                    })
                })
                .take(MAX_PANEL_ROWS)
                .collect()
        })
        .unwrap_or_default();
    (text.is_some() || !rows.is_empty()).then_some(PanelView { title, text, rows })
}

/// Runs the `info_panels` hook for a client.
fn info_panels(hooks: &crate::hooks::Hooks, client: &Client, lang: &str) -> Vec<PanelView> {
    let mut event = crate::hooks::InfoPanelsEvent {
        client: crate::hooks::ClientView::from(client),
        lang: lang.to_string(),
        panels: Vec::new(),
    };
    let _ = hooks.run(crate::script::INFO_PANELS, &mut event);
    let mut panels = Vec::new();
    for p in &event.panels {
        match panel_view(p) {
            Some(v) if panels.len() < MAX_PANELS => panels.push(v),
            Some(_) => break,
            None => tracing::warn!(
                "an info panel without a title and a text or rows was left out: {}",
                crate::text::escape(&p.to_string().chars().take(200).collect::<String>())
            ),
        }
    }
    panels
}

fn message_view(lang: &str, m: Message) -> MessageView {
    MessageView {
        scope: match (m.client_id, m.invoice_group_id) {
            (Some(_), _) => "private",
            (None, Some(_)) => "group",
            (None, None) => "global",
        },
        valid_until: m.valid_until.map(|d| crate::stamp::show_date(lang, d)),
        subject: m.subject,
        body: m.body,
    }
}

pub(super) fn render_information(
    page: &Page<'_>,
    notice: Option<String>,
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let c = &page.client;
    let messages = page
        .portal
        .store
        .messages_for(c, page.portal.clock.today())?
        .into_iter()
        .map(|m| message_view(page.lang, m))
        .collect();
    let mut view = InformationView {
        client: c.clone(),
        mailing_address: (!c.mailing_address.is_empty()).then(|| c.mailing_address.clone()),
        invoicing_address: c.invoicing_address.clone().filter(|a| !a.is_empty()),
        messages,
        can_set_login_name: page.flag("ci_enable_login_name_creation"),
        buttons: page
            .portal
            .registry
            .information_buttons(&crate::registry::ViewerCtx::new(
                c,
                &page.portal.settings,
                &page.portal.store,
            )),
        notice,
        error,
        panels: Vec::new(),
        data_change: data_change_info(page)?,
    };
    let hooks = page.portal.registry.hooks.clone();
    if !hooks.is_handled(crate::script::INFO_PANELS) {
        return page.render_with_status("information", "information.html", &view, status);
    }
    // Scripts and plugins add their panels on the render thread, right before the render: a
    // slow one holds up no async worker (no hand-off either), and the page's deadline bounds it.
    // Each handler is stopped at its own deadline (`script_timeout_ms` for a script), so the
    // panels take at most that per handler; the render then has its own deadline.
    let handlers = hooks.handler_owners(crate::script::INFO_PANELS).len() as u32;
    let script_ms = page.portal.settings.int("script_timeout_ms", None).max(1) as u64;
    let limit = crate::theme::PrepareLimit {
        timeout: super::page::render_timeout(page.portal)
            .max(std::time::Duration::from_millis(script_ms + 100) * handlers.max(1)),
        on_overdue: Box::new(|| {
            tracing::warn!("the info_panels handlers ran past their deadlines")
        }),
    };
    let frame = page.frame();
    let theme = frame.theme.clone();
    let lang = page.lang;
    let job = move || {
        view.panels = info_panels(&hooks, &view.client, lang);
        let (template, ctx) = frame.finish("information", "information.html", &view);
        crate::theme::Prepared::Render {
            template,
            ctx: std::sync::Arc::new(ctx),
            status: Some(status.code),
        }
    };
    let pending = page.portal.themes.start_job(
        &theme,
        super::page::render_timeout(page.portal),
        Some(limit),
        job,
    );
    Ok(PageHtml::rendering(pending, status))
}

#[get("/")]
fn information(page: Page<'_>) -> Result<PageHtml, Error> {
    render_information(&page, None, None, Status::Ok)
}

#[derive(FromForm)]
struct LoginNameForm {
    username: Option<String>,
    csrf: Option<String>,
}

impl CsrfField for LoginNameForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Lets a client choose a custom login name when `ci_enable_login_name_creation` is on.
#[post("/profile/login-name", data = "<form>")]
fn set_login_name(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<LoginNameForm>, FormRefused<'_>>,
) -> Result<PageHtml, Status> {
    let fail = |e: Error| {
        tracing::error!("{e}");
        Status::InternalServerError
    };
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(FormRefused::Form(e)) if e.status() != Status::PayloadTooLarge => {
            return render_information(
                &page,
                None,
                Some(page.t("form-error-invalid")),
                Status::BadRequest,
            )
            .map_err(fail);
        }
        Err(refused) => return Err(refused.status()),
    };
    if !page.flag("ci_enable_login_name_creation") {
        return Err(Status::NotFound);
    }
    let wanted = form.username.as_deref().unwrap_or("").trim().to_string();
    let error_key = if wanted.is_empty() {
        Some("login-name-error-empty")
    } else if !crate::import::valid_login_name(&wanted) {
        Some("login-name-error-format")
    } else {
        None
    };
    if let Some(key) = error_key {
        return render_information(&page, None, Some(page.t(key)), Status::UnprocessableEntity)
            .map_err(fail);
    }
    // Checked and saved in one transaction on the client as stored now.
    let client = match page
        .portal
        .store
        .claim_login_name(page.client.id, &wanted)
        .map_err(fail)?
    {
        Ok(Some(client)) => client,
        Ok(None) => return Err(Status::NotFound),
        Err(LoginNameTaken) => {
            return render_information(
                &page,
                None,
                Some(page.t("login-name-error-taken")),
                Status::UnprocessableEntity,
            )
            .map_err(fail);
        }
    };
    let page = Page { client, ..page };
    render_information(&page, Some(page.t("login-name-saved")), None, Status::Ok).map_err(fail)
}

#[derive(Serialize)]
struct ServiceView {
    name: String,
    kind: ServiceKind,
    tariff: Option<String>,
    speed: Option<String>,
    fup: Vec<String>,
    /// An address, or `None` when the service is configured by DHCP.
    ip_address: Option<String>,
    dhcp: bool,
    since: Option<String>,
    /// Plugins' buttons for this service ("Data transferred").
    buttons: Vec<crate::registry::MenuItem>,
}

fn speed(down: u32, up: u32) -> String {
    let f = |kbps: u32| {
        if kbps >= 1000 && kbps.is_multiple_of(1000) {
            format!("{} Mbit/s", kbps / 1000)
        } else {
            format!("{kbps} kbit/s")
        }
    };
    format!("{} / {}", f(down), f(up))
}

#[get("/services")]
fn services(page: Page<'_>) -> Result<PageHtml, Error> {
    let store = &page.portal.store;
    let mut views = Vec::new();
    let viewer = crate::registry::ViewerCtx::new(&page.client, &page.portal.settings, store);
    for s in store
        .services_of(page.client.id)?
        .into_iter()
        .filter(|s: &Service| s.active)
    {
        let tariff = match s.tariff_id {
            Some(t) => store.get_id::<Tariff>(t)?,
            None => None,
        };
        let (speed_text, fup) = match &tariff {
            Some(t) if !t.hide_traffic_in_portal => (
                (t.download_kbps > 0).then(|| speed(t.download_kbps, t.upload_kbps)),
                t.fup_limits
                    .iter()
                    .map(|f| {
                        format!(
                            "{} GB → {}",
                            f.data_gb,
                            speed(f.download_kbps, f.upload_kbps)
                        )
                    })
                    .collect(),
            ),
            Some(t) => (
                (t.download_kbps > 0).then(|| speed(t.download_kbps, t.upload_kbps)),
                vec![],
            ),
            None => (None, vec![]),
        };
        let buttons = if page.portal.registry.service_buttons.is_empty() {
            Vec::new()
        } else {
            page.portal.registry.service_buttons(
                &viewer,
                &crate::plugin::ServiceWithTariff {
                    service: s.clone(),
                    tariff: tariff.clone(),
                },
            )
        };
        views.push(ServiceView {
            buttons,
            name: s.name,
            kind: s.kind,
            tariff: tariff.map(|t| t.name),
            speed: speed_text,
            fup,
            ip_address: if s.dhcp { None } else { s.ip_address },
            dhcp: s.dhcp,
            since: s.since.map(|d| crate::stamp::show_date(page.lang, d)),
        });
    }
    #[derive(Serialize)]
    struct ServicesView {
        services: Vec<ServiceView>,
    }
    page.render(
        "services",
        "services.html",
        &ServicesView { services: views },
    )
}

/// A file from the theme chain. `no-cache` makes browsers revalidate, so a designer's edit shows
/// on the next load.
struct Asset {
    bytes: std::borrow::Cow<'static, [u8]>,
    content_type: ContentType,
}

impl<'r> Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let bytes = self.bytes.into_owned();
        Response::build()
            .header(self.content_type)
            .header(Header::new("Cache-Control", "no-cache"))
            .sized_body(bytes.len(), std::io::Cursor::new(bytes))
            .ok()
    }
}

#[get("/static/<path..>")]
fn static_file(path: PathBuf, portal: &State<Arc<Portal>>, viewer: Viewer) -> Option<Asset> {
    let path = path.to_str()?.replace('\\', "/");
    // Reserved for `portico serve --dev` (served by `live_reload` when on, by nobody when off).
    if path == super::live_reload::SCRIPT {
        return None;
    }
    let group = viewer.signed_in.as_ref().map(|s| s.client.invoice_group_id);
    let theme = portal.theme_for(group);
    let bytes = portal.themes.asset(&theme, &path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        bytes,
        content_type,
    })
}

/// Browsers ask for `/favicon.ico` by themselves (pages link `/static/favicon.svg`): the theme's
/// `static/favicon.ico` when its chain has one, else a redirect to its `favicon.svg`.
#[get("/favicon.ico")]
fn favicon(
    portal: &State<Arc<Portal>>,
    viewer: Viewer,
) -> rocket::Either<Asset, rocket::response::Redirect> {
    let group = viewer.signed_in.as_ref().map(|s| s.client.invoice_group_id);
    match portal.themes.asset(&portal.theme_for(group), "favicon.ico") {
        Some(bytes) => rocket::Either::Left(Asset {
            bytes,
            content_type: ContentType::Icon,
        }),
        None => rocket::Either::Right(rocket::response::Redirect::found("/static/favicon.svg")),
    }
}
