//! Themes: Tera templates and static files found through a lookup chain
//! (active theme → its parents → plugin defaults → core defaults compiled into the binary).
//!
//! Each theme's engine is built off to the side and swapped in only when every template parses,
//! so a bad edit never reaches clients: the last good engine keeps serving and the error is
//! logged with file and line. Templates see only their context: Tera 2 has no environment
//! access, and we register nothing that reads files, environment or the store.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rust_embed::RustEmbed;

use crate::error::{Error, Result};
use crate::i18n::I18n;
use crate::render_pool::{DeadlineWriter, RenderPool};

/// The shipped default theme, compiled in so the portal renders even without a themes folder.
#[derive(RustEmbed)]
#[folder = "../themes/default/"]
struct CoreDefault;

pub const DEFAULT_THEME: &str = "default";
const MAX_CHAIN: usize = 8;

/// A theme's `theme.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeManifest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extends: Option<String>,
}

/// One built theme: its Tera instance, the chain of theme folders it was built from, and what
/// went wrong with this version of it (each logged once).
pub struct Engine {
    pub name: String,
    pub chain: Vec<String>,
    tera: tera::Tera,
    pub built_at: chrono::DateTime<chrono::Utc>,
    /// Theme templates left out because they do not build (the next version in the chain
    /// serves instead), with the error.
    pub build_errors: Vec<String>,
    /// Render-time failures by template: logged once per version, listed by `theme status`.
    failures: Mutex<BTreeMap<String, String>>,
    /// Templates that ran past the render deadline: not tried again until the theme is edited.
    quarantined: Mutex<BTreeSet<String>>,
    /// Lets a render skip the lock while nothing is quarantined (the usual case).
    any_quarantined: AtomicBool,
    /// Template name → the file (or built-in) it came from, for error messages.
    origins: HashMap<String, String>,
}

/// Plugin contributions that sit between themes and core defaults.
#[derive(Default, Clone)]
pub struct Builtins {
    /// (owner, template name, source)
    pub templates: Vec<(&'static str, String, Cow<'static, str>)>,
    pub assets: Vec<(String, Cow<'static, [u8]>)>,
}

pub struct Themes {
    dir: Option<PathBuf>,
    builtins: Builtins,
    i18n: Arc<I18n>,
    engines: RwLock<HashMap<String, Arc<Engine>>>,
    /// Built from compiled-in templates only: the fallback when a theme's template fails to render.
    safe: Arc<Engine>,
    /// Where every render runs, never on the threads that accept requests.
    pool: Arc<RenderPool>,
    /// The outcome of the last reload, for `portico theme status`.
    last_reload: Mutex<Option<ReloadReport>>,
    /// While on, every render's template and context is kept (for [`Sample`]s).
    recording: AtomicBool,
    recorded: Arc<Mutex<Vec<(String, tera::Context)>>>,
    /// Demo contexts the reloader renders a new version with before it goes live.
    samples: RwLock<Arc<Vec<Sample>>>,
    /// The render deadline pages were last given, which checks use too.
    timeout_ms: std::sync::atomic::AtomicU64,
    /// Counts the changes clients would see: a rebuilt theme, an edited CSS or image file.
    generation: tokio::sync::watch::Sender<u64>,
}

/// A page template with a context it receives, in one language.
#[derive(Clone)]
pub struct Sample {
    pub template: String,
    pub lang: &'static str,
    pub ctx: tera::Context,
}

/// What the last reload did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadReport {
    pub at: chrono::DateTime<chrono::Utc>,
    /// (theme, errors): empty errors means the new version went live.
    pub themes: Vec<(String, Vec<String>)>,
}

/// A built theme's state, for `portico theme status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineStatus {
    pub theme: String,
    pub chain: Vec<String>,
    pub built_at: chrono::DateTime<chrono::Utc>,
    pub build_errors: Vec<String>,
    pub render_errors: Vec<(String, String)>,
    pub quarantined: Vec<String>,
}

pub fn valid_theme_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A relative path inside a theme folder with no way out of it.
pub(crate) fn safe_relative(path: &str) -> Option<&str> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'));
    ok.then_some(path)
}

/// Editor droppings and hidden files that must not trigger or take part in a reload.
pub fn is_temp_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
}

fn register_functions(tera: &mut tera::Tera, i18n: Arc<I18n>) {
    // Messages without arguments as template values, made once per engine: most of a page's
    // text, looked up on every request without formatting or copying (a value's text is shared).
    let plain: HashMap<&'static str, HashMap<String, tera::Value>> = crate::i18n::LANGUAGES
        .iter()
        .map(|(lang, _)| {
            let messages = i18n
                .plain_messages(lang)
                .map(|(id, text)| (id.to_string(), tera::Value::from(text)))
                .collect();
            (*lang, messages)
        })
        .collect();
    // `t(key="...", name=value...)`: a translated message in the page's `lang`.
    tera.register_function("t", move |kwargs: tera::Kwargs, state: &tera::State| {
        let key: &str = kwargs.must_get::<&str>("key")?;
        let lang = state.get::<tera::Value>("lang")?;
        let lang = lang
            .as_ref()
            .and_then(tera::Value::as_str)
            .unwrap_or(crate::i18n::FALLBACK);
        let has_args = kwargs.iter().any(|(k, _)| k.as_str() != Some("key"));
        if !has_args {
            if let Some(text) = plain.get(lang).and_then(|m| m.get(key)) {
                return tera::TeraResult::Ok(text.clone());
            }
            return tera::TeraResult::Ok(tera::Value::from(i18n.t(lang, key)));
        }
        let args: Vec<(String, String)> = kwargs
            .iter()
            .filter(|(k, _)| k.as_str() != Some("key"))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        let args: Vec<(&str, String)> = args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        tera::TeraResult::Ok(tera::Value::from(i18n.text(lang, key, &args)))
    });
}

/// Why a render gave no page.
enum RenderFailure {
    /// It ran past its deadline (and was stopped at its next write).
    Overdue,
    Failed(String),
}

impl Engine {
    fn new(
        name: &str,
        chain: Vec<String>,
        tera: tera::Tera,
        build_errors: Vec<String>,
        origins: HashMap<String, String>,
    ) -> Self {
        Engine {
            origins,
            name: name.to_string(),
            chain,
            tera,
            built_at: chrono::Utc::now(),
            build_errors,
            failures: Mutex::new(BTreeMap::new()),
            quarantined: Mutex::new(BTreeSet::new()),
            any_quarantined: AtomicBool::new(false),
        }
    }

    fn is_quarantined(&self, template: &str) -> bool {
        self.any_quarantined.load(Ordering::Acquire)
            && self.quarantined.lock().is_ok_and(|q| q.contains(template))
    }

    /// Stops trying a template that ran past its deadline (logged once per version).
    fn quarantine(&self, template: &str, timeout: Duration) {
        let new = self
            .quarantined
            .lock()
            .is_ok_and(|mut q| q.insert(template.to_string()));
        if new {
            self.any_quarantined.store(true, Ordering::Release);
            tracing::error!(
                theme = %self.name,
                template,
                "render ran past its deadline of {} ms: template quarantined; the compiled-in page serves instead until the theme is edited again",
                timeout.as_millis()
            );
        }
    }

    /// Remembers a render-time failure (logged once per version).
    fn note_failure(&self, template: &str, message: &str) {
        let new = self.failures.lock().is_ok_and(|mut f| {
            f.insert(template.to_string(), message.to_string())
                .is_none()
        });
        if new {
            tracing::error!(
                theme = %self.name,
                template,
                "render failed; serving the compiled-in page instead (logged once until the theme is edited): {message}"
            );
        }
    }

    /// Renders into a buffer that stops the render at its first write after `deadline`.
    fn render_until(
        &self,
        template: &str,
        ctx: &tera::Context,
        deadline: Instant,
    ) -> std::result::Result<String, RenderFailure> {
        let mut out = DeadlineWriter::new(deadline);
        match self.tera.render_to(template, ctx, &mut out) {
            Ok(()) => String::from_utf8(out.out).map_err(|e| RenderFailure::Failed(e.to_string())),
            Err(_) if out.overdue => Err(RenderFailure::Overdue),
            Err(e) => Err(RenderFailure::Failed(describe(&e))),
        }
    }

    /// The compiled-in version of a page template, which extends the theme's own layout.
    fn builtin_alias(&self, template: &str) -> Option<String> {
        [format!("core/{template}"), format!("plugins/{template}")]
            .into_iter()
            .find(|name| self.tera.contains_template(name))
    }

    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            theme: self.name.clone(),
            chain: self.chain.clone(),
            built_at: self.built_at,
            build_errors: self.build_errors.clone(),
            render_errors: self
                .failures
                .lock()
                .map(|f| f.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            quarantined: self
                .quarantined
                .lock()
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Renders a page on a render thread: the theme's template; if it fails, the compiled-in page
/// inside the theme's layout; if that fails too, or the template ran past its deadline (or
/// did so before), the compiled-in page as a whole.
fn render_contained(
    engine: &Engine,
    safe: &Engine,
    template: &str,
    ctx: &tera::Context,
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    if !engine.is_quarantined(template) {
        match engine.render_until(template, ctx, deadline) {
            Ok(html) => return Ok(html),
            Err(RenderFailure::Overdue) => engine.quarantine(template, timeout),
            Err(RenderFailure::Failed(e)) => {
                engine.note_failure(template, &e);
                if let Some(alias) = engine.builtin_alias(template)
                    && let Ok(html) = engine.render_until(&alias, ctx, deadline)
                {
                    return Ok(html);
                }
            }
        }
    }
    safe.tera
        .render(template, ctx)
        .map_err(|e| Error::Template(describe(&e)))
}

/// Renders every sample with `engine` on a thread of its own, each within `timeout`. Returns
/// each distinct failure with file and line, and the first template past the deadline (the
/// check stops there: that thread may not come back).
fn check_renders(engine: Arc<Engine>, samples: Arc<Vec<Sample>>, timeout: Duration) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let checker = {
        let (engine, samples) = (engine.clone(), samples.clone());
        std::thread::Builder::new()
            .name("theme-check".into())
            .spawn(move || {
                for s in samples.iter() {
                    let deadline = Instant::now() + timeout;
                    if tx
                        .send(engine.render_until(&s.template, &s.ctx, deadline))
                        .is_err()
                    {
                        return;
                    }
                }
            })
    };
    if let Err(e) = checker {
        return vec![format!("cannot start a check thread: {e}")];
    }
    let mut errors: Vec<String> = Vec::new();
    for s in samples.iter() {
        let failure = match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(_)) => continue,
            Ok(Err(RenderFailure::Failed(e))) => with_origins(&e, &engine.origins),
            Ok(Err(RenderFailure::Overdue)) | Err(_) => {
                let origin = engine.origins.get(&s.template).cloned().unwrap_or_default();
                errors.push(format!(
                    "`{}` ({}) ran past the render deadline of {} ms with demo data\n  file: {origin}",
                    s.template,
                    s.lang,
                    timeout.as_millis()
                ));
                break;
            }
        };
        if !errors.contains(&failure) {
            errors.push(failure);
        }
    }
    errors
}

/// How a page ends: its HTML (with a status, when the page chose one), a redirect, or an error
/// status to answer with the themed error page.
#[derive(Debug)]
pub enum PageOutcome {
    Html { html: String, status: Option<u16> },
    Redirect(String),
    Status(u16),
}

/// What a page job ([`Themes::start_job`]) gives the renderer: a template with its context, or
/// an outcome that needs no render.
pub enum Prepared {
    Render {
        template: String,
        ctx: Arc<tera::Context>,
        status: Option<u16>,
    },
    Done(PageOutcome),
}

/// A job's own deadline (before its render starts), and what to do when it runs past it.
pub struct PrepareLimit {
    pub timeout: Duration,
    pub on_overdue: Box<dyn FnOnce() + Send>,
}

/// What the render of a page is (set once the job knows it): for the fallback and quarantine.
type RenderSource = Arc<OnceLock<(String, Arc<tera::Context>)>>;

/// A page being rendered on the render pool. Waiting for it takes at most about twice the
/// deadline (queue time, then render time; plus the job's own time before its render, if it
/// has one) and always gives an outcome: the template's page, or the compiled-in fallback.
pub struct PendingRender {
    answer: Option<tokio::sync::oneshot::Receiver<Result<PageOutcome>>>,
    /// When a render thread took the job.
    started: Arc<OnceLock<Instant>>,
    /// When its render began (after the job's own work, if any).
    render_started: Arc<OnceLock<Instant>>,
    source: RenderSource,
    prepare: Option<PrepareLimit>,
    queued_at: Instant,
    timeout: Duration,
    engine: Arc<Engine>,
    safe: Arc<Engine>,
    pool: Arc<RenderPool>,
}

/// The answer, unless `until` comes first.
async fn wait_until<T>(
    answer: &mut tokio::sync::oneshot::Receiver<T>,
    until: Instant,
) -> std::result::Result<
    std::result::Result<T, tokio::sync::oneshot::error::RecvError>,
    tokio::time::error::Elapsed,
> {
    tokio::time::timeout_at(until.into(), answer).await
}

impl PendingRender {
    pub async fn wait(mut self) -> Result<PageOutcome> {
        let Some(mut answer) = self.answer.take() else {
            tracing::warn!("render queue full; serving the compiled-in page");
            return self.give_up();
        };
        match wait_until(&mut answer, self.queued_at + self.timeout).await {
            Ok(Ok(result)) => return result,
            Ok(Err(_)) => return self.give_up(),
            Err(_) => {}
        }
        // The job may have started late (a busy pool): it gets its whole deadline.
        let Some(started) = self.started.get().copied() else {
            let quarantined = self
                .source
                .get()
                .is_some_and(|(t, _)| self.engine.is_quarantined(t));
            if !quarantined {
                self.pool.note_saturated();
            }
            return self.give_up();
        };
        if let Some(limit) = &self.prepare {
            match wait_until(&mut answer, started + limit.timeout).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return self.give_up(),
                Err(_) => {}
            }
        }
        let Some(render_started) = self.render_started.get().copied() else {
            // The job's own work ran past its deadline.
            if let Some(limit) = self.prepare.take() {
                (limit.on_overdue)();
            }
            self.pool.replace_overdue();
            return Ok(PageOutcome::Status(504));
        };
        if let Ok(Ok(result)) = wait_until(&mut answer, render_started + self.timeout).await {
            return result;
        }
        // Running past its deadline and writing nothing that could stop it.
        if let Some((template, _)) = self.source.get() {
            self.engine.quarantine(template, self.timeout);
        }
        self.pool.replace_overdue();
        self.give_up()
    }

    /// The compiled-in page, rendered here (it is ours and quick); 503 for a job that never
    /// got as far as its template.
    fn give_up(&self) -> Result<PageOutcome> {
        let Some((template, ctx)) = self.source.get() else {
            return Ok(PageOutcome::Status(503));
        };
        let html = self
            .safe
            .tera
            .render(template, ctx)
            .map_err(|e| Error::Template(describe(&e)))?;
        Ok(PageOutcome::Html { html, status: None })
    }
}

impl Themes {
    pub fn new(dir: Option<PathBuf>, builtins: Builtins, i18n: Arc<I18n>) -> Result<Self> {
        let safe = Arc::new(
            build_engine(None, DEFAULT_THEME, &builtins, &i18n).map_err(|e| {
                Error::Template(format!(
                    "compiled-in templates do not build: {}",
                    e.join("\n")
                ))
            })?,
        );
        Ok(Themes {
            dir,
            builtins,
            i18n,
            engines: RwLock::new(HashMap::new()),
            safe,
            pool: RenderPool::per_core(),
            last_reload: Mutex::new(None),
            recording: AtomicBool::new(false),
            recorded: Arc::new(Mutex::new(Vec::new())),
            samples: RwLock::new(Arc::new(Vec::new())),
            timeout_ms: std::sync::atomic::AtomicU64::new(250),
            generation: tokio::sync::watch::Sender::new(0),
        })
    }

    /// How many times the theme changed (a theme was rebuilt, a static file edited) since start.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Tells the receiver about every later change (see [`Themes::generation`]).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn changed(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Names of theme folders present on disk.
    pub fn available(&self) -> Vec<String> {
        let mut names = vec![];
        if let Some(dir) = &self.dir
            && let Ok(rd) = std::fs::read_dir(dir)
        {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if e.path().is_dir() && valid_theme_name(&n) {
                    names.push(n);
                }
            }
        }
        if !names.iter().any(|n| n == DEFAULT_THEME) {
            names.push(DEFAULT_THEME.into());
        }
        names.sort();
        names
    }

    /// The engine for a theme, building it on first use. An unknown or broken theme falls back
    /// to the compiled-in default so clients always get a page.
    pub fn engine(&self, theme: &str) -> Arc<Engine> {
        if let Some(e) = self.engines.read().ok().and_then(|m| m.get(theme).cloned()) {
            return e;
        }
        match self.build(theme) {
            Ok(engine) => {
                for e in &engine.build_errors {
                    tracing::error!(
                        theme,
                        "template left out, the next version in the chain serves instead: {e}"
                    );
                }
                let engine = Arc::new(engine);
                // Requests racing to build the same theme all use the first one built.
                match self.engines.write() {
                    Ok(mut m) => m.entry(theme.to_string()).or_insert(engine).clone(),
                    Err(_) => engine,
                }
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(theme, "theme does not build: {e}");
                }
                // Remember the fallback so a broken theme is not rebuilt on every request;
                // the watcher retries after the next edit.
                if let Ok(mut m) = self.engines.write() {
                    m.insert(theme.to_string(), self.safe.clone());
                }
                self.safe.clone()
            }
        }
    }

    fn build(&self, theme: &str) -> std::result::Result<Engine, Vec<String>> {
        if !valid_theme_name(theme) {
            return Err(vec![format!(
                "`{theme}` is not a theme name (lowercase letters, digits, - and _)"
            )]);
        }
        build_engine(self.dir.as_deref(), theme, &self.builtins, &self.i18n)
    }

    /// Builds a theme without installing it; returns every error with file and line.
    pub fn check(&self, theme: &str) -> Vec<String> {
        match self.build(theme) {
            Ok(engine) => engine.build_errors,
            Err(e) => e,
        }
    }

    /// Builds a theme without installing it and renders every sample with it, each within
    /// `timeout`; returns every error with file and line, and every template past the deadline.
    pub fn check_rendering(
        &self,
        theme: &str,
        samples: Vec<Sample>,
        timeout: Duration,
    ) -> Vec<String> {
        match self.build(theme) {
            Ok(engine) if engine.build_errors.is_empty() => {
                check_renders(Arc::new(engine), Arc::new(samples), timeout)
            }
            Ok(engine) => engine.build_errors,
            Err(e) => e,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed).max(1))
    }

    /// Rebuilds every theme in use. A version with errors does not replace a good one: the
    /// last good version keeps serving. (One that is degraded already, since start-up, is
    /// replaced by any version that builds at all.)
    pub fn reload(&self) {
        let names: Vec<String> = match self.engines.read() {
            Ok(m) => m.keys().cloned().collect(),
            Err(_) => return,
        };
        let mut report = ReloadReport {
            at: chrono::Utc::now(),
            themes: vec![],
        };
        for name in names {
            let current = self.engines.read().ok().and_then(|m| m.get(&name).cloned());
            let current_good = current
                .as_ref()
                .is_some_and(|c| c.build_errors.is_empty() && !Arc::ptr_eq(c, &self.safe));
            let samples = self.samples.read().map(|s| s.clone()).unwrap_or_default();
            // A version that builds is rendered with the demo contexts before it goes live.
            let built = self.build(&name).map(|engine| {
                let engine = Arc::new(engine);
                if engine.build_errors.is_empty() && !samples.is_empty() {
                    let errors = check_renders(engine.clone(), samples, self.timeout());
                    (engine, errors)
                } else {
                    let errors = engine.build_errors.clone();
                    (engine, errors)
                }
            });
            let errors = match built {
                Ok((engine, errors)) if errors.is_empty() || !current_good => {
                    for e in &errors {
                        tracing::error!(theme = %name, "theme has errors; the failing templates fall back to the next version in the chain: {e}");
                    }
                    if let Ok(mut m) = self.engines.write() {
                        m.insert(name.clone(), engine);
                    }
                    self.changed();
                    tracing::info!(theme = %name, "theme reloaded");
                    errors
                }
                Ok((_, errors)) => {
                    for e in &errors {
                        tracing::error!(theme = %name, "edit not applied, last good version still serving: {e}");
                    }
                    errors
                }
                Err(errors) => {
                    for e in &errors {
                        tracing::error!(theme = %name, "edit not applied, last good version still serving: {e}");
                    }
                    errors
                }
            };
            report.themes.push((name, errors));
        }
        if let Ok(mut last) = self.last_reload.lock() {
            *last = Some(report);
        }
    }

    /// Starts rendering a page on the render pool with a deadline of `timeout`; await the
    /// result with [`PendingRender::wait`].
    pub fn start_render(
        &self,
        theme: &str,
        template: &str,
        ctx: tera::Context,
        timeout: Duration,
    ) -> PendingRender {
        let ctx = Arc::new(ctx);
        // Known from the start: a render that never gets a thread still has its fallback.
        let source: RenderSource = Arc::new(OnceLock::new());
        let _ = source.set((template.to_string(), ctx.clone()));
        let template = template.to_string();
        self.start(theme, timeout, None, source, move || Prepared::Render {
            template,
            ctx,
            status: None,
        })
    }

    /// Starts a page job on the render pool: `prepare` works out the template and context (a
    /// dynamic plugin's call, say) on the render thread, within its own deadline, and the
    /// render follows on the same thread; await the outcome with [`PendingRender::wait`].
    pub fn start_job(
        &self,
        theme: &str,
        timeout: Duration,
        prepare_limit: Option<PrepareLimit>,
        prepare: impl FnOnce() -> Prepared + Send + 'static,
    ) -> PendingRender {
        self.start(
            theme,
            timeout,
            prepare_limit,
            Arc::new(OnceLock::new()),
            prepare,
        )
    }

    fn start(
        &self,
        theme: &str,
        timeout: Duration,
        prepare_limit: Option<PrepareLimit>,
        source: RenderSource,
        prepare: impl FnOnce() -> Prepared + Send + 'static,
    ) -> PendingRender {
        let engine = self.engine(theme);
        self.timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
        let started = Arc::new(OnceLock::new());
        let render_started = Arc::new(OnceLock::new());
        let queued_at = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let whole = timeout * 2 + prepare_limit.as_ref().map_or(Duration::ZERO, |l| l.timeout);
        let recorder = self
            .recording
            .load(Ordering::Relaxed)
            .then(|| self.recorded.clone());
        let job = {
            let (engine, safe) = (engine.clone(), self.safe.clone());
            let (started, render_started, source) =
                (started.clone(), render_started.clone(), source.clone());
            move || {
                // Nobody waits for a job that waited in the queue past its deadline.
                if tx.is_closed() || queued_at.elapsed() > whole {
                    return;
                }
                let _ = started.set(Instant::now());
                let outcome = match prepare() {
                    Prepared::Done(outcome) => Ok(outcome),
                    Prepared::Render {
                        template,
                        ctx,
                        status,
                    } => {
                        if let Some(r) = recorder
                            && let Ok(mut r) = r.lock()
                        {
                            r.push((template.clone(), (*ctx).clone()));
                        }
                        let _ = source.set((template.clone(), ctx.clone()));
                        let _ = render_started.set(Instant::now());
                        render_contained(&engine, &safe, &template, &ctx, timeout)
                            .map(|html| PageOutcome::Html { html, status })
                    }
                };
                let _ = tx.send(outcome);
            }
        };
        let queued = self.pool.submit(queued_at + whole, job).is_ok();
        PendingRender {
            answer: queued.then_some(rx),
            started,
            render_started,
            source,
            prepare: prepare_limit,
            queued_at,
            timeout,
            engine,
            safe: self.safe.clone(),
            pool: self.pool.clone(),
        }
    }

    /// Starts or stops keeping every render's template and context.
    pub fn record(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    /// The renders kept while recording.
    pub fn recorded(&self) -> Vec<(String, tera::Context)> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Gives the reloader demo contexts to render new versions with (see `web::samples`).
    pub fn set_samples(&self, samples: Vec<Sample>) {
        if let Ok(mut s) = self.samples.write() {
            *s = Arc::new(samples);
        }
    }

    /// State of every built theme, for `portico theme status`.
    pub fn status(&self) -> (Vec<EngineStatus>, Option<ReloadReport>) {
        let mut engines: Vec<EngineStatus> = self
            .engines
            .read()
            .map(|m| m.values().map(|e| e.status()).collect())
            .unwrap_or_default();
        engines.sort_by(|a, b| a.theme.cmp(&b.theme));
        let last = self.last_reload.lock().ok().and_then(|r| r.clone());
        (engines, last)
    }

    /// A static file for a theme: the theme's own, a parent's, a plugin's, or core's. A file on
    /// disk must lie inside its theme's own `static/` folder once symlinks are resolved: one that
    /// leads out (to `/etc/passwd`, the data folder, another theme) is refused with a log line,
    /// and the request gets nothing (404), not a parent's file.
    pub fn asset(&self, theme: &str, path: &str) -> Option<Cow<'static, [u8]>> {
        let path = safe_relative(path)?;
        let engine = self.engine(theme);
        if let Some(dir) = &self.dir {
            for t in &engine.chain {
                let file = dir.join(t).join("static").join(path);
                let Ok(real) = std::fs::canonicalize(&file) else {
                    continue;
                };
                if let Err(reason) = inside_theme(dir, t, "static", &real) {
                    tracing::warn!(theme = %t, file = %file.display(), "refused: {reason}");
                    return None;
                }
                if let Ok(bytes) = std::fs::read(&real) {
                    return Some(Cow::Owned(bytes));
                }
            }
        }
        if let Some((_, bytes)) = self.builtins.assets.iter().rev().find(|(p, _)| p == path) {
            return Some(bytes.clone());
        }
        CoreDefault::get(&format!("static/{path}")).map(|f| f.data)
    }

    /// Every symlink in the theme's chain (its own folder and its parents') that leads out of
    /// the folder it is in, as `path: reason`. Such files are never served or loaded;
    /// `portico theme check` reports them as errors.
    pub fn refused_links(&self, theme: &str) -> Vec<String> {
        let Some(dir) = self.dir.as_deref() else {
            return vec![];
        };
        let Ok(chain) = theme_chain(Some(dir), theme) else {
            // `check` reports a broken chain.
            return vec![];
        };
        let mut out = vec![];
        for t in &chain {
            for sub in ["templates", "static"] {
                for (path, reason) in walk_theme_folder(dir, t, sub).refused {
                    out.push(format!("{}: {reason}", path.display()));
                }
            }
        }
        out
    }

    /// Watches the themes folder and reloads on template changes. CSS and images need no reload:
    /// they are read from disk on every request, so their edits only count as a change (see
    /// [`Themes::subscribe`]). Returns the watcher, which must be kept alive.
    pub fn watch(self: &Arc<Self>) -> Result<Option<ThemeWatcher>> {
        use notify::Watcher as _;
        let Some(dir) = self.dir.clone() else {
            return Ok(None);
        };
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "themes folder not found; using compiled-in default theme only");
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::channel::<Change>();
        let root = dir.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && is_edit(&event.kind)
            {
                for change in event.paths.iter().filter_map(|p| classify(&root, p)) {
                    let _ = tx.send(change);
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot watch themes: {e}")))?;
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .map_err(|e| Error::Internal(format!("cannot watch {}: {e}", dir.display())))?;
        let themes = Arc::clone(self);
        std::thread::spawn(move || {
            // An editor's save is several events: act once they have been quiet for a moment.
            // The thread ends when the watcher (the sender) is dropped.
            while let Ok(first) = rx.recv() {
                let mut seen = vec![first];
                while let Ok(more) = rx.recv_timeout(Duration::from_millis(100)) {
                    seen.push(more);
                }
                if seen.contains(&Change::Rebuild) {
                    themes.reload();
                }
                if seen.contains(&Change::Static) {
                    themes.changed();
                }
            }
        });
        tracing::info!(dir = %dir.display(), "watching themes for changes");
        Ok(Some(ThemeWatcher { _watcher: watcher }))
    }
}

/// Keeps the themes folder watched; dropping it stops the watching.
pub struct ThemeWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Writes, creations, removals and renames are edits. Reads are not: a rebuild reads every
/// template, so reacting to reads would rebuild forever.
pub(crate) fn is_edit(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// What an edited file needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    /// CSS, images…: read from disk on every request, so only open pages need to know.
    Static,
    /// Templates and `theme.toml`.
    Rebuild,
}

/// `path` is in the themes folder `root`; a static file is `<theme>/static/…`.
fn classify(root: &Path, path: &Path) -> Option<Change> {
    let in_static = || {
        let rel = path.strip_prefix(root).unwrap_or(path);
        rel.components()
            .nth(1)
            .is_some_and(|c| c.as_os_str() == "static")
    };
    if needs_rebuild(path) {
        Some(Change::Rebuild)
    } else if !is_temp_file(path) && in_static() {
        Some(Change::Static)
    } else {
        None
    }
}

/// Templates and theme manifests need a rebuild; editor droppings do not.
fn needs_rebuild(path: &Path) -> bool {
    !is_temp_file(path)
        && matches!(
            path.extension().and_then(|x| x.to_str()),
            Some("html" | "toml" | "txt")
        )
}

/// Tera's error with its cause chain and report (which carries template name, line and column).
pub fn describe(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// The chain of theme folders from `theme` up to its root, read from each `theme.toml`.
pub fn theme_chain(dir: Option<&Path>, theme: &str) -> std::result::Result<Vec<String>, String> {
    let mut chain = vec![theme.to_string()];
    let Some(dir) = dir else {
        return Ok(chain);
    };
    if theme != DEFAULT_THEME && !dir.join(theme).is_dir() {
        return Err(format!("theme `{theme}` not found in {}", dir.display()));
    }
    let mut current = theme.to_string();
    loop {
        let manifest_path = dir.join(&current).join("theme.toml");
        let manifest: ThemeManifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?
            }
            Err(_) => ThemeManifest::default(),
        };
        let parent = match manifest.extends {
            Some(p) => p,
            None if current != DEFAULT_THEME => DEFAULT_THEME.to_string(),
            None => break,
        };
        if !valid_theme_name(&parent) {
            return Err(format!(
                "{}: `{parent}` is not a theme name",
                manifest_path.display()
            ));
        }
        if parent != DEFAULT_THEME && !dir.join(&parent).is_dir() {
            return Err(format!(
                "{}: extends `{parent}`, which is not a folder in {}",
                manifest_path.display(),
                dir.display()
            ));
        }
        if chain.contains(&parent) {
            return Err(format!(
                "{}: themes extend each other in a circle",
                manifest_path.display()
            ));
        }
        chain.push(parent.clone());
        if chain.len() > MAX_CHAIN {
            return Err(format!(
                "theme `{theme}` extends more than {MAX_CHAIN} levels deep"
            ));
        }
        current = parent;
    }
    Ok(chain)
}

/// Why `real` (a canonical path) is not inside `<dir>/<theme>/<sub>`, the theme's own folder:
/// a symlink may point anywhere inside it, but not out of it (not even into a parent theme: a
/// child extends its parent through `extends` in `theme.toml`).
fn inside_theme(
    dir: &Path,
    theme: &str,
    sub: &str,
    real: &Path,
) -> std::result::Result<(), String> {
    let own = dir.join(theme);
    let root = std::fs::canonicalize(own.join(sub))
        .map_err(|e| format!("{}: {e}", own.join(sub).display()))?;
    let theme_root = std::fs::canonicalize(&own).map_err(|e| format!("{}: {e}", own.display()))?;
    if root.starts_with(&theme_root) && real.starts_with(&root) {
        Ok(())
    } else {
        Err(format!(
            "symlink leads out of the theme folder (to {}); only links within {theme}/{sub}/ are followed",
            real.display()
        ))
    }
}

/// The files of one theme's `templates/` or `static/` folder, symlinks resolved.
#[derive(Default)]
struct ThemeFolder {
    /// (path as found, canonical path) of each file inside the folder.
    files: Vec<(PathBuf, PathBuf)>,
    /// (path as found, why) of each entry that leads out of it.
    refused: Vec<(PathBuf, String)>,
    /// Entries that cannot be resolved (a dangling symlink), with the error.
    broken: Vec<(PathBuf, String)>,
}

/// Walks `<dir>/<theme>/<sub>`, skipping editor leftovers. A symlink (to a file or a folder)
/// is followed only while it stays inside the folder; a folder reached twice through links is
/// walked once, so link loops end.
fn walk_theme_folder(dir: &Path, theme: &str, sub: &str) -> ThemeFolder {
    let mut out = ThemeFolder::default();
    let root = dir.join(theme).join(sub);
    if !root.exists() {
        return out;
    }
    let mut seen: Vec<PathBuf> = vec![];
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let real_dir = match std::fs::canonicalize(&d) {
            Ok(r) => r,
            Err(e) => {
                out.broken.push((d, e.to_string()));
                continue;
            }
        };
        if let Err(reason) = inside_theme(dir, theme, sub, &real_dir) {
            out.refused.push((d, reason));
            continue;
        }
        if seen.contains(&real_dir) {
            continue;
        }
        seen.push(real_dir);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if is_temp_file(&path) {
                continue;
            }
            let real = match std::fs::canonicalize(&path) {
                Ok(r) => r,
                Err(e) => {
                    out.broken.push((path, e.to_string()));
                    continue;
                }
            };
            if real.is_dir() {
                stack.push(path);
            } else if let Err(reason) = inside_theme(dir, theme, sub, &real) {
                out.refused.push((path, reason));
            } else {
                out.files.push((path, real));
            }
        }
    }
    out
}

/// Templates of one theme folder: (name relative to templates/, file path, source). A symlink
/// that leads out of the theme's `templates/` folder is skipped and logged.
fn theme_templates(
    dir: &Path,
    theme: &str,
) -> std::result::Result<Vec<(String, PathBuf, String)>, String> {
    let root = dir.join(theme).join("templates");
    let folder = walk_theme_folder(dir, theme, "templates");
    for (path, reason) in &folder.refused {
        tracing::warn!(theme = %theme, file = %path.display(), "template not loaded: {reason}");
    }
    let is_template =
        |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("html" | "txt"));
    if let Some((path, e)) = folder.broken.iter().find(|(p, _)| is_template(p)) {
        return Err(format!("{}: {e}", path.display()));
    }
    let mut out = vec![];
    for (path, real) in folder.files {
        if !is_template(&path) {
            continue;
        }
        let name = path
            .strip_prefix(&root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        let src = std::fs::read_to_string(&real).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((name, path, src));
    }
    Ok(out)
}

fn build_engine(
    dir: Option<&Path>,
    theme: &str,
    builtins: &Builtins,
    i18n: &Arc<I18n>,
) -> std::result::Result<Engine, Vec<String>> {
    let chain = theme_chain(dir, theme).map_err(|e| vec![e])?;
    // name → every version (source, where it came from), the one that wins last.
    let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut aliases: Vec<(String, String, String)> = vec![];
    for file in CoreDefault::iter() {
        if let Some(name) = file.strip_prefix("templates/")
            && let Some(f) = CoreDefault::get(&file)
        {
            let src = String::from_utf8_lossy(&f.data).into_owned();
            let origin = format!("(built-in) themes/default/templates/{name}");
            aliases.push((format!("core/{name}"), src.clone(), origin.clone()));
            by_name
                .entry(name.to_string())
                .or_default()
                .push((src, origin));
        }
    }
    for (owner, name, src) in &builtins.templates {
        let origin = format!("(built-in) plugin {owner}: {name}");
        // A theme may override `<id>/<name>`; the plugin's own version stays `plugins/<id>/<name>`.
        aliases.push((format!("plugins/{name}"), src.to_string(), origin.clone()));
        by_name
            .entry(name.clone())
            .or_default()
            .push((src.to_string(), origin));
    }
    if let Some(dir) = dir {
        for (depth, t) in chain.iter().enumerate().rev() {
            for (name, path, src) in theme_templates(dir, t).map_err(|e| vec![e])? {
                let origin = path.display().to_string();
                // Parents are also reachable as `<parent>/<name>`, so a child can extend the
                // very template it overrides.
                if depth > 0 {
                    aliases.push((format!("{t}/{name}"), src.clone(), origin.clone()));
                }
                by_name.entry(name).or_default().push((src, origin));
            }
        }
    }
    // A theme file that does not build is left out, and the next version in the chain (a
    // parent's or the compiled-in one) serves in its place; the rest of the theme goes live.
    let mut left_out: BTreeSet<String> = BTreeSet::new();
    let mut errors = vec![];
    loop {
        let mut origins: HashMap<String, String> = HashMap::new();
        let mut all: Vec<(String, String)> = vec![];
        for (name, versions) in &by_name {
            if let Some((src, origin)) = versions.iter().rev().find(|(_, o)| !left_out.contains(o))
            {
                origins.insert(name.clone(), origin.clone());
                all.push((name.clone(), src.clone()));
            }
        }
        for (name, src, origin) in &aliases {
            if !origins.contains_key(name) && !left_out.contains(origin) {
                origins.insert(name.clone(), origin.clone());
                all.push((name.clone(), src.clone()));
            }
        }
        let mut tera = tera::Tera::new();
        tera.autoescape_on([".html", ".htm", ".xml"]);
        register_functions(&mut tera, i18n.clone());
        let Err(e) = tera.add_raw_templates(all) else {
            return Ok(Engine::new(theme, chain, tera, errors, origins));
        };
        let message = describe(&e);
        let culprits: Vec<String> = origins
            .iter()
            .filter(|(name, origin)| !origin.starts_with("(built-in)") && mentions(&message, name))
            .map(|(_, origin)| origin.clone())
            .collect();
        errors.push(with_origins(&message, &origins));
        if culprits.is_empty() {
            return Err(errors);
        }
        left_out.extend(culprits);
    }
}

/// Whether a Tera error message is about the template `name`.
fn mentions(message: &str, name: &str) -> bool {
    message.contains(&format!("{name}:"))
        || message.contains(&format!("'{name}'"))
        || message.contains(&format!("`{name}`"))
}

/// Tera names templates by their logical name; operators need the file. Append it.
fn with_origins(message: &str, origins: &HashMap<String, String>) -> String {
    let mut files: Vec<&String> = origins
        .iter()
        .filter(|(name, _)| mentions(message, name))
        .map(|(_, origin)| origin)
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        message.to_string()
    } else {
        format!(
            "{message}\n  file: {}",
            files
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn theme_folder_walk_follows_inside_links_refuses_outside_ones_and_ends_on_loops() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let t = dir.join("mine/templates");
        std::fs::create_dir_all(t.join("parts")).expect("mkdir");
        std::fs::create_dir_all(dir.join("default/templates")).expect("mkdir");
        std::fs::write(t.join("parts/box.html"), "box").expect("write");
        std::fs::write(dir.join("default/templates/x.html"), "parent").expect("write");
        symlink("parts/box.html", t.join("alias.html")).expect("symlink");
        symlink(".", t.join("loop")).expect("symlink");
        symlink("..", t.join("parts/up")).expect("symlink");
        symlink("../../default/templates/x.html", t.join("x.html")).expect("symlink");
        symlink("/etc", t.join("etc")).expect("symlink");

        let mut names: Vec<String> = theme_templates(dir, "mine")
            .expect("templates")
            .into_iter()
            .map(|(name, _, src)| format!("{name}={src}"))
            .collect();
        names.sort();
        assert_eq!(names, ["alias.html=box", "parts/box.html=box"]);

        let mut refused: Vec<String> = walk_theme_folder(dir, "mine", "templates")
            .refused
            .into_iter()
            .map(|(p, _)| p.strip_prefix(dir).expect("inside").display().to_string())
            .collect();
        refused.sort();
        assert_eq!(refused, ["mine/templates/etc", "mine/templates/x.html"]);
    }
}
