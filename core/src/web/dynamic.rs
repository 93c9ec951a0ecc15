//! Dynamic plugins in the portal: what they registered (from their description) and the routes
//! under `/<id>/` that pass a logged-in client's request to them and render their answer
//! through the theme chain.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, post, routes};
use serde_json::Value;

use portico_plugin_sdk::protocol::{Description, PageReply, PageRequest, SettingKind};

use super::guards::{CheckedForm, FormRefused, SameOrigin};
use super::page::{Page, PageFrame, PageHtml, render_timeout};
use crate::dylib::{CallError, Library};
use crate::hooks::{ClientView, HookDef};
use crate::registry::{Manifest, MenuButton, PluginKind, Refusal, Registrar, Registry, Tab};
use crate::settings::{SettingDef, SettingType};
use crate::theme::{PageOutcome, PrepareLimit, Prepared};

/// Strings of a dynamic plugin live as long as the process (libraries are never unloaded).
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Loads every library of the plugin folder and registers those that pass every check. A
/// refused library is logged once and listed by `portico plugins list`; the portal starts
/// without it.
pub(crate) fn register_dir(registry: &mut Registry, dir: &Path) -> Vec<Arc<Library>> {
    let (libs, refused) = crate::dylib::load_dir(dir);
    let refuse = |registry: &mut Registry, file: &Path, reason: String| {
        tracing::error!(file = %file.display(), "dynamic plugin refused: {reason}");
        registry.refused.push(Refusal {
            file: file.display().to_string(),
            reason,
        });
    };
    for r in refused {
        refuse(registry, &r.file, r.reason);
    }
    let mut loaded = Vec::new();
    for lib in libs {
        let outcome = registrar_for(&lib, registry).and_then(|(manifest, r)| {
            registry
                .add(
                    manifest,
                    PluginKind::Dynamic {
                        file: lib.file.display().to_string(),
                    },
                    r,
                )
                .map_err(|e| e.to_string())
        });
        match outcome {
            Ok(()) => {
                tracing::info!(plugin = %lib.id, file = %lib.file.display(), version = %lib.description.version, "dynamic plugin loaded");
                loaded.push(lib);
            }
            Err(reason) => refuse(registry, &lib.file, reason),
        }
    }
    loaded
}

fn setting_def(d: &portico_plugin_sdk::protocol::SettingDecl) -> Result<SettingDef, String> {
    let key = leak(&d.key);
    let description = leak(&d.description);
    let def = match d.kind {
        SettingKind::Bool => {
            SettingDef::bool(key, d.default.as_bool().unwrap_or(false), description)
        }
        SettingKind::Text => SettingDef::text(key, d.default.as_str().unwrap_or(""), description),
        SettingKind::Int => SettingDef::int(
            key,
            d.default.as_i64().unwrap_or(0),
            d.min.unwrap_or(i64::MIN),
            d.max.unwrap_or(i64::MAX),
            description,
        ),
        SettingKind::Url | SettingKind::Email => {
            let mut def = if d.kind == SettingKind::Url {
                SettingDef::url(key, description)
            } else {
                SettingDef::email(key, description)
            };
            if let Some(text) = d.default.as_str() {
                def.default = Value::String(text.to_string());
            }
            def
        }
        SettingKind::Choice => {
            let words: Vec<&'static str> = d.choices.iter().map(|c| leak(c)).collect();
            SettingDef::new(
                key,
                SettingType::Choice(Box::leak(words.into_boxed_slice())),
                d.default.clone(),
                description,
            )
        }
    };
    // The default must be a value of the declared type.
    let raw = match &def.default {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    def.parse(&raw)
        .map_err(|e| format!("setting `{}`: its default is invalid: {e}", d.key))?;
    let key_ok = !d.key.is_empty()
        && d.key.len() <= 64
        && d.key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !key_ok {
        return Err(format!("setting key `{}` is not [a-z0-9_]", d.key));
    }
    Ok(if d.per_invoice_group {
        def.per_invoice_group()
    } else {
        def
    })
}

/// Turns a plugin's description into what a compiled-in plugin would have registered, after
/// the checks only a description needs (languages, templates that build, hooks that exist).
fn registrar_for(lib: &Arc<Library>, registry: &Registry) -> Result<(Manifest, Registrar), String> {
    let d: &Description = &lib.description;
    if !crate::registry::valid_plugin_id(&d.id) {
        return Err(format!(
            "its id `{}` does not match [a-z][a-z0-9-]{{1,31}}",
            d.id
        ));
    }
    if registry.plugins.iter().any(|p| p.id == d.id) {
        return Err(format!(
            "plugin `{}`: a plugin with this id is registered already",
            d.id
        ));
    }
    let id = leak(&d.id);
    let manifest = Manifest {
        id,
        name: leak(&d.name),
        version: leak(&d.version),
    };
    let mut r = Registrar::new(id);
    for s in &d.settings {
        r.setting(setting_def(s).map_err(|e| format!("plugin `{id}`: {e}"))?);
    }
    for t in &d.tabs {
        let path = if t.path.is_empty() {
            "/"
        } else {
            t.path.as_str()
        };
        if !path.starts_with('/') {
            return Err(format!(
                "plugin `{id}`: tab `{}` path must start with /",
                t.id
            ));
        }
        let keys = t.visible_when.clone();
        let weak = Arc::downgrade(lib);
        let icon = if t.icon.is_empty() { &t.id } else { &t.icon };
        r.tab(
            Tab::new(leak(&t.id), leak(&t.title_key), format!("/{id}{path}"))
                .icon(leak(icon))
                .order(t.order)
                .visible_when(move |v| {
                    weak.upgrade()
                        .is_some_and(|l| l.disabled_reason().is_none())
                        && keys.iter().all(|k| v.is_on(k))
                }),
        );
    }
    for b in &d.menu_buttons {
        let key = b.href_setting.clone();
        let weak = Arc::downgrade(lib);
        r.menu_button(MenuButton {
            id: leak(&b.id),
            title_key: leak(&b.title_key),
            icon: leak(&b.icon),
            order: b.order,
            href: Arc::new(move |v| {
                let url = v.text(&key);
                let live = weak
                    .upgrade()
                    .is_some_and(|l| l.disabled_reason().is_none());
                (live && !url.is_empty()).then_some(url)
            }),
            external: b.external,
        });
    }
    for h in &d.declares_hooks {
        let mut def = HookDef::new(&h.name, &h.description);
        for (f, text) in &h.fields {
            def = def.field(f, text);
        }
        for a in &h.amendable {
            def = def.amendable(a);
        }
        r.declare_hook(def);
    }
    for hook in &d.hooks {
        let declared = registry.hooks.definition(hook).is_some()
            || d.declares_hooks.iter().any(|h| &h.name == hook);
        if !declared {
            return Err(format!(
                "plugin `{id}`: handles hook `{hook}`, which nobody declares (`portico hooks` lists them)"
            ));
        }
        let lib = lib.clone();
        let name = hook.clone();
        r.on_json(hook, move |event| lib.hook(&name, event));
    }
    for (lang, ftl) in &d.translations {
        let Some((code, _)) = crate::i18n::LANGUAGES.iter().find(|(c, _)| c == lang) else {
            return Err(format!(
                "plugin `{id}`: translations for `{lang}`, which the portal does not offer"
            ));
        };
        r.translations(code, ftl.clone());
    }
    // Its messages must not clash with anyone's, and its templates must build, or the whole
    // portal would fail to start because of it.
    let all = registry
        .translations
        .iter()
        .map(|(l, s)| (*l, s.as_ref()))
        .chain(r.translations.iter().map(|(l, s)| (*l, s.as_ref())));
    let i18n =
        crate::i18n::I18n::new(all).map_err(|e| format!("plugin `{id}`: translations: {e}"))?;
    for (name, src) in &d.templates {
        r.template(name, src.clone());
    }
    let mut templates = registry.templates.clone();
    templates.extend(
        r.templates
            .iter()
            .map(|(n, s)| (id, format!("{id}/{n}"), s.clone())),
    );
    crate::theme::Themes::new(
        None,
        crate::theme::Builtins {
            templates,
            assets: Vec::new(),
        },
        Arc::new(i18n),
    )
    .map_err(|e| format!("plugin `{id}`: templates: {e}"))?;
    r.routes(routes![page_get, page_post]);
    Ok((manifest, r))
}

/// Every query parameter of the request, decoded.
struct QueryPairs(BTreeMap<String, String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for QueryPairs {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let pairs = req
            .uri()
            .query()
            .map(|q| {
                q.segments()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Outcome::Success(QueryPairs(pairs))
    }
}

type Reply = Result<PageHtml, Status>;

#[get("/<path..>", rank = 50)]
async fn page_get(page: Page<'_>, path: PathBuf, query: QueryPairs) -> Reply {
    serve(&page, "GET", &path, query.0, BTreeMap::new()).await
}

#[post("/<path..>", data = "<form>", rank = 50)]
async fn page_post(
    page: Page<'_>,
    _same_origin: SameOrigin,
    path: PathBuf,
    query: QueryPairs,
    form: Result<CheckedForm<HashMap<String, String>>, FormRefused<'_>>,
) -> Reply {
    // The form guard checked the session's token; too large is 413, a bad token 403.
    let CheckedForm(form) = form.map_err(|e| e.status())?;
    let mut fields: BTreeMap<String, String> = form.into_iter().collect();
    fields.remove("csrf");
    serve(&page, "POST", &path, query.0, fields).await
}

async fn serve(
    page: &Page<'_>,
    method: &str,
    path: &Path,
    query: BTreeMap<String, String>,
    form: BTreeMap<String, String>,
) -> Reply {
    let lib = page
        .portal
        .dynamic
        .iter()
        .find(|l| l.id == page.plugin_id())
        .cloned()
        .ok_or(Status::NotFound)?;
    if lib.disabled_reason().is_some() {
        return Err(Status::NotFound);
    }
    let tabs: Vec<String> = lib.description.tabs.iter().map(|t| t.id.clone()).collect();
    // A plugin whose tabs are all hidden for this client has no pages for them either.
    if !tabs.is_empty() && !tabs.iter().any(|t| page.tab_visible(t)) {
        return Err(Status::NotFound);
    }
    let mut sub = String::new();
    for seg in path.iter() {
        sub.push('/');
        sub.push_str(&seg.to_string_lossy());
    }
    if sub.is_empty() {
        sub.push('/');
    }
    let req = PageRequest {
        method: method.to_string(),
        path: sub,
        query,
        form,
        client: ClientView::from(page.client()),
        lang: page.lang().to_string(),
        settings: lib.settings_for(Some(page.client().invoice_group_id)),
    };
    let frame = page.frame();
    let theme = frame.theme.clone();
    let portal = page.portal;
    let limit = PrepareLimit {
        timeout: lib.call_timeout(),
        on_overdue: Box::new({
            let lib = lib.clone();
            move || lib.page_overdue()
        }),
    };
    // The call and the render run on one render thread, one after the other.
    let job = move || answer(&lib, req, frame, &tabs);
    let pending = portal
        .themes
        .start_job(&theme, render_timeout(portal), Some(limit), job);
    Ok(PageHtml::rendering(pending, Status::Ok))
}

/// Calls the plugin and turns its answer into what the renderer does next.
fn answer(lib: &Arc<Library>, req: PageRequest, frame: PageFrame, tabs: &[String]) -> Prepared {
    let status = |code: u16| Prepared::Done(PageOutcome::Status(code));
    match lib.page_here(req) {
        Err(CallError::Timeout) => status(504),
        Err(CallError::Disabled) => status(404),
        Err(CallError::Failed(_)) => status(500),
        Ok(PageReply::Render {
            template,
            context,
            tab,
            status: code,
        }) => {
            if !lib.description.templates.contains_key(&template) {
                tracing::error!(plugin = %lib.id, template, "a plugin asked for a template it does not have");
                return status(500);
            }
            let code = code.filter(|c| (200..=599).contains(c));
            let tab = tab.filter(|t| tabs.contains(t)).unwrap_or_default();
            let (template, ctx) = frame.finish(&tab, &template, &context);
            Prepared::Render {
                template,
                ctx: Arc::new(ctx),
                status: code,
            }
        }
        Ok(PageReply::Redirect { to }) => {
            if to.starts_with('/') && !to.starts_with("//") && !to.contains(['\\', '\r', '\n']) {
                Prepared::Done(PageOutcome::Redirect(to))
            } else {
                tracing::error!(plugin = %lib.id, "a plugin asked to redirect outside the portal; refused");
                status(500)
            }
        }
        Ok(PageReply::Status { code }) => status(if (400..=599).contains(&code) {
            code
        } else {
            500
        }),
    }
}
