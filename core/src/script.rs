//! Operator scripts: `*.rhai` files in the scripts folder, compiled at start and again within a
//! second of an edit, run by the one hook dispatch ([`crate::hooks::Hooks`]) after compiled-in
//! and dynamic plugins. A script handles a hook by defining `fn <hook name>(event)`.
//!
//! Containment (the same policy as dynamic plugins, see [`crate::dylib`]):
//! - a raw engine with only the packages scripts need (no `sleep`, `eval`, `import`, JSON
//!   parsing, time or blob packages, no module resolver, no custom syntax);
//! - limits on operations, call levels, expression depth, string, array and map sizes, and a
//!   wall-clock deadline per call (`script_timeout_ms`) kept by `on_progress`;
//! - scripts get owned copies of data (the event, read-only views of its client), never a store
//!   handle; the host API is [`register_host_api`] and nothing more;
//! - an error or a broken limit stops the call, is logged with file and line and counted; the
//!   action goes on as if the hook had not vetoed (`script_failure_policy = open`) or is refused
//!   with a generic message (`closed`); after `script_max_failures` failures in a row the script
//!   is disabled until its file is edited.
//!
//! One compiled engine is shared by every call; each file's AST is compiled once per version.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rhai::packages::Package as _;
use rhai::{AST, Array, CallFnOptions, Dynamic, Engine, EvalAltResult, Map as RMap, Position};
use serde_json::Value;

use crate::hooks::{HookDef, Veto};
use crate::i18n::I18n;
use crate::portal::Clock;
use crate::settings::Settings;
use crate::store::Store;

/// The extension of a script file.
pub const EXTENSION: &str = "rhai";
/// The hook only scripts (and plugins) use to add panels to the Information tab.
pub const INFO_PANELS: &str = "info_panels";

/// Operations one call may run (the deadline usually stops a loop first).
const MAX_OPERATIONS: u64 = 5_000_000;
/// Nested function calls (recursion) in one call.
const MAX_CALL_LEVELS: usize = 24;
/// Nesting of expressions at the top level and inside functions.
const MAX_EXPR_DEPTH: usize = 64;
const MAX_FN_EXPR_DEPTH: usize = 32;
/// The longest string a script may build, in bytes.
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// The most elements of one array, and of one object map.
pub const MAX_ARRAY_LEN: usize = 10_000;
pub const MAX_MAP_LEN: usize = 2_000;
const MAX_VARIABLES: usize = 512;
const MAX_FUNCTIONS: usize = 256;
/// A script file larger than this is not compiled.
pub const MAX_SCRIPT_BYTES: u64 = 256 * 1024;
/// How often (in operations) the deadline is checked.
const DEADLINE_CHECK_EVERY: u64 = 32;

/// What scripts may reach: data to copy out, the outbox, the clock. Never given to a script
/// itself; host functions read from it on the script's behalf.
pub struct ScriptEnv {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub i18n: Arc<I18n>,
    pub mail_wakeup: Arc<tokio::sync::Notify>,
    pub last_id: Arc<AtomicU64>,
}

/// Counters of one script version (kept across a broken edit, fresh for a good one).
#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    in_row: AtomicU32,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
    disabled: Mutex<Option<String>>,
    /// When this script queued mail in the last hour (unix seconds).
    mail_times: Mutex<VecDeque<i64>>,
}

/// One script file as last read.
pub struct Script {
    /// The file name (`login.rhai`).
    pub name: String,
    /// The active compiled version, if any compiled.
    ast: Option<Arc<AST>>,
    /// Functions of the active version that take one argument (hook handlers by name).
    functions: HashSet<String>,
    /// Why the file as it is now does not compile (`line L, column C: message`).
    pub compile_error: Option<String>,
    /// A hash of the source that was last read, compiled or not.
    source_hash: u64,
    stats: Arc<Stats>,
}

impl Script {
    fn defines(&self, hook: &str) -> bool {
        self.ast.is_some() && self.functions.contains(hook)
    }

    /// Why the script is disabled, if it is.
    pub fn disabled_reason(&self) -> Option<String> {
        self.stats.disabled.lock().ok().and_then(|d| d.clone())
    }
}

/// The scripts as loaded now; swapped whole on reload.
#[derive(Default)]
struct Snapshot {
    scripts: Vec<Arc<Script>>,
    /// Every function name an active script defines.
    handled: HashSet<String>,
}

/// The scripts folder, the shared engine and the loaded scripts.
pub struct Scripts {
    dir: Option<PathBuf>,
    engine: Engine,
    env: Arc<ScriptEnv>,
    loaded: RwLock<Arc<Snapshot>>,
    /// Serialises reloads (the watcher and an operator may both ask).
    reloading: Mutex<()>,
    last_reload: Mutex<Option<DateTime<Utc>>>,
    /// Bumped after every reload (see [`Scripts::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

/// What one call of a script function came to.
enum Outcome {
    Done(Dynamic),
    Vetoed(Veto),
    Failed,
}

/// The call running on this thread: the host functions act for it.
struct CallCtx {
    script: Arc<Script>,
    client_id: Option<u64>,
    group: Option<u64>,
    deadline: Instant,
    veto: Option<Veto>,
}

thread_local! {
    static CALLS: RefCell<Vec<CallCtx>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the innermost call of this thread, if a script call is running.
fn with_call<R>(f: impl FnOnce(&mut CallCtx) -> R) -> Option<R> {
    CALLS.with(|c| c.borrow_mut().last_mut().map(f))
}

fn past_deadline() -> bool {
    CALLS.with(|c| {
        c.borrow()
            .last()
            .is_some_and(|call| Instant::now() >= call.deadline)
    })
}

/// Pops the call context even when the call unwinds.
struct CallGuard;
impl Drop for CallGuard {
    fn drop(&mut self) {
        CALLS.with(|c| {
            c.borrow_mut().pop();
        });
    }
}

/// The marker a `veto(...)` call stops the script with (termination cannot be caught by
/// `try`/`catch`; the veto is recorded in the call context before).
const VETO_MARK: &str = "portico-veto";
const DEADLINE_MARK: &str = "portico-deadline";

/// Builds the sandboxed engine with the host API bound to `env`.
fn build_engine(env: &Arc<ScriptEnv>) -> Engine {
    use rhai::packages::{
        ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage,
        BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage,
    };
    let mut engine = Engine::new_raw();
    // Only what scripts need: no LanguageCorePackage (it has sleep, parse_json, exit), no
    // time, blob, bit-field, debugging or function-pointer packages.
    engine.register_global_module(ArithmeticPackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(BasicStringPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_BYTES)
        .set_max_array_size(MAX_ARRAY_LEN)
        .set_max_map_size(MAX_MAP_LEN)
        .set_max_variables(MAX_VARIABLES)
        .set_max_functions(MAX_FUNCTIONS)
        .set_strict_variables(true);
    // `eval` is a keyword of the language, not a package function: refuse it at compile time.
    engine.disable_symbol("eval");
    engine.on_progress(|ops| {
        if ops % DEADLINE_CHECK_EVERY == 0 && past_deadline() {
            Some(Dynamic::from(DEADLINE_MARK))
        } else {
            None
        }
    });
    engine.on_print(|text| {
        let script = with_call(|c| c.script.name.clone()).unwrap_or_default();
        tracing::info!(script = %script, "{}", clip(text, 2000));
    });
    engine.on_debug(|text, _, pos| {
        let script = with_call(|c| c.script.name.clone()).unwrap_or_default();
        tracing::debug!(script = %script, line = pos.line().unwrap_or(0), "{}", clip(text, 2000));
    });
    register_host_api(&mut engine, env);
    engine
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn runtime_error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    ))
}

fn to_dyn<T: serde::Serialize>(value: &T) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// The host API: `veto`, `log`, `setting`, `services`, `invoices`, `payments`, `now`, `today`,
/// `days_since`, `send_mail`. Client data is always the event's client: a script cannot name
/// another one.
fn register_host_api(engine: &mut Engine, env: &Arc<ScriptEnv>) {
    fn stop_with_veto(veto: Veto) -> Result<(), Box<EvalAltResult>> {
        with_call(|c| c.veto = Some(veto));
        Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(VETO_MARK),
            Position::NONE,
        )))
    }
    engine.register_fn("veto", |message: &str| {
        stop_with_veto(Veto::new(clip(message, 2000)))
    });
    engine.register_fn("veto", |messages: RMap| {
        let texts: Vec<(String, String)> = messages
            .iter()
            .filter_map(|(lang, m)| {
                m.clone()
                    .into_string()
                    .ok()
                    .map(|m| (lang.to_string(), clip(&m, 2000)))
            })
            .collect();
        let Some(default) = texts
            .iter()
            .find(|(l, _)| l == "en")
            .or_else(|| texts.first())
            .map(|(_, m)| m.clone())
        else {
            return Err(runtime_error(
                "veto(#{ en: \"...\", cs: \"...\" }) needs at least one message",
            ));
        };
        let mut veto = Veto::new(default);
        for (lang, m) in texts {
            veto = veto.with(&lang, m);
        }
        stop_with_veto(veto)
    });
    engine.register_fn("log", |level: &str, text: &str| {
        let script = with_call(|c| c.script.name.clone()).unwrap_or_default();
        let text = clip(text, 2000);
        match level {
            "error" => tracing::error!(script = %script, "{text}"),
            "warn" | "warning" => tracing::warn!(script = %script, "{text}"),
            "debug" => tracing::debug!(script = %script, "{text}"),
            _ => tracing::info!(script = %script, "{text}"),
        }
    });
    let e = env.clone();
    engine.register_fn("setting", move |key: &str| -> Dynamic {
        let group = with_call(|c| c.group).flatten();
        match e.settings.definition(key) {
            Ok(def) if def.secret => {
                let script = with_call(|c| c.script.name.clone()).unwrap_or_default();
                tracing::warn!(script = %script, key, "a script asked for a secret setting: it gets nothing");
                Dynamic::UNIT
            }
            Ok(def) => to_dyn(&e.settings.value(def.key, group)),
            Err(_) => {
                let script = with_call(|c| c.script.name.clone()).unwrap_or_default();
                tracing::warn!(script = %script, key, "a script asked for a setting that does not exist");
                Dynamic::UNIT
            }
        }
    });
    let e = env.clone();
    engine.register_fn("services", move || -> Result<Array, Box<EvalAltResult>> {
        client_data(&e, |data| {
            data.services().map(|list| {
                list.iter()
                    .map(|s| {
                        let mut m = to_dyn(&s.service).try_cast::<RMap>().unwrap_or_default();
                        m.insert("tariff".into(), to_dyn(&s.tariff));
                        Dynamic::from_map(m)
                    })
                    .collect()
            })
        })
    });
    let e = env.clone();
    engine.register_fn("invoices", move || -> Result<Array, Box<EvalAltResult>> {
        client_data(&e, |data| {
            data.invoices()
                .map(|list| list.iter().map(to_dyn).collect())
        })
    });
    let e = env.clone();
    engine.register_fn("payments", move || -> Result<Array, Box<EvalAltResult>> {
        client_data(&e, |data| {
            data.payments()
                .map(|list| list.iter().map(to_dyn).collect())
        })
    });
    let e = env.clone();
    engine.register_fn("now", move || -> i64 { e.clock.unix() });
    let e = env.clone();
    engine.register_fn("today", move || -> String {
        e.clock.today().format("%Y-%m-%d").to_string()
    });
    let e = env.clone();
    engine.register_fn(
        "days_since",
        move |date: &str| -> Result<i64, Box<EvalAltResult>> {
            let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                runtime_error(format!(
                    "days_since: `{}` is not a YYYY-MM-DD date",
                    clip(date, 40)
                ))
            })?;
            Ok((e.clock.today() - d).num_days())
        },
    );
    let e = env.clone();
    engine.register_fn(
        "send_mail",
        move |to: &str, subject: &str, body: &str| -> bool { send_mail(&e, to, subject, body) },
    );
}

/// Read-only data of the event's client (an empty list when the event has none).
fn client_data(
    env: &ScriptEnv,
    f: impl FnOnce(&crate::plugin::ClientData<'_>) -> crate::Result<Array>,
) -> Result<Array, Box<EvalAltResult>> {
    let Some(id) = with_call(|c| c.client_id).flatten() else {
        return Ok(Array::new());
    };
    let client = match env.store.get_id::<crate::model::Client>(id) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(Array::new()),
        Err(e) => return Err(runtime_error(format!("client data unavailable: {e}"))),
    };
    let data = crate::plugin::ClientData::new(&env.store, &client, env.clock.today());
    let list = f(&data).map_err(|e| runtime_error(format!("client data unavailable: {e}")))?;
    if list.len() > MAX_ARRAY_LEN {
        return Err(runtime_error(
            "client data is larger than a script may hold",
        ));
    }
    Ok(list)
}

/// Queues one mail through the outbox for the script, within its hourly allowance
/// (`script_mail_per_hour`). The allowance is checked and spent under one lock, around the
/// flushed write.
fn send_mail(env: &ScriptEnv, to: &str, subject: &str, body: &str) -> bool {
    let Some((script, client_id)) = with_call(|c| (c.script.clone(), c.client_id)) else {
        return false;
    };
    let name = &script.name;
    let to = to.trim();
    if !crate::settings::is_email(to) {
        tracing::warn!(script = %name, "send_mail: `{}` is not an e-mail address; not queued", clip(to, 80));
        return false;
    }
    if subject.contains(['\r', '\n']) || subject.len() > 998 {
        tracing::warn!(script = %name, "send_mail: the subject must be one line; not queued");
        return false;
    }
    let allowance = env.settings.int("script_mail_per_hour", None).max(0) as usize;
    let now = env.clock.unix();
    let Ok(mut times) = script.stats.mail_times.lock() else {
        return false;
    };
    while times.front().is_some_and(|t| *t <= now - 3600) {
        times.pop_front();
    }
    if times.len() >= allowance {
        tracing::warn!(script = %name, allowance, "send_mail: the script queued its hourly allowance of mail (script_mail_per_hour); not queued");
        return false;
    }
    let micros = env.clock.now().timestamp_micros().max(0) as u64;
    let id = crate::audit::next_id(&env.last_id, micros);
    let job = crate::mail::MailJob::Plugin {
        plugin: format!("script {name}"),
        client_id,
        to: to.to_string(),
        to_name: None,
        subject: subject.to_string(),
        body: clip(body, MAX_STRING_BYTES),
    };
    match crate::mail::enqueue_parts(&env.store, &env.mail_wakeup, id, now, job) {
        Ok(_) => {
            times.push_back(now);
            tracing::info!(script = %name, "send_mail: queued a mail");
            true
        }
        Err(e) => {
            tracing::error!(script = %name, "send_mail: not queued: {e}");
            false
        }
    }
}

/// `line L, column C: message` of a compile error.
fn describe_parse_error(e: &rhai::ParseError) -> String {
    let pos = e.position();
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: {}", e.err_type()),
        (Some(l), None) => format!("line {l}: {}", e.err_type()),
        _ => e.err_type().to_string(),
    }
}

/// What `scripts check` says about a source: the hooks it handles and warnings, or why it does
/// not compile.
pub struct CheckReport {
    pub handles: Vec<String>,
    pub warnings: Vec<String>,
}

impl Scripts {
    /// Scripts from `dir` (none when `None` or missing), compiled now.
    pub fn new(env: ScriptEnv, dir: Option<PathBuf>) -> Arc<Scripts> {
        let env = Arc::new(env);
        let scripts = Arc::new(Scripts {
            engine: build_engine(&env),
            env,
            dir,
            loaded: RwLock::new(Arc::new(Snapshot::default())),
            reloading: Mutex::new(()),
            last_reload: Mutex::new(None),
            generation: Default::default(),
        });
        if let Some(dir) = &scripts.dir {
            if dir.is_dir() {
                scripts.reload();
            } else {
                tracing::warn!(dir = %dir.display(), "scripts folder not found; no scripts loaded");
            }
        }
        scripts
    }

    /// The scripts folder.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.loaded.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Every script as loaded now, in the order they run (by file name).
    pub fn list(&self) -> Vec<Arc<Script>> {
        self.snapshot().scripts.clone()
    }

    /// Whether an active script defines `fn <hook>(event)`.
    pub fn handles(&self, hook: &str) -> bool {
        self.snapshot().handled.contains(hook)
    }

    /// The scripts that handle `hook`, as `script <file>`.
    pub fn handler_names(&self, hook: &str) -> Vec<String> {
        self.snapshot()
            .scripts
            .iter()
            .filter(|s| s.defines(hook))
            .map(|s| format!("script {}", s.name))
            .collect()
    }

    /// Hook names a script's active version handles, among `hooks`.
    pub fn hooks_of(&self, script: &Script, hooks: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = hooks
            .iter()
            .filter(|h| script.defines(h))
            .map(|h| h.to_string())
            .collect();
        out.sort();
        out
    }

    /// Compiles a source with the portal's engine, without loading it.
    pub fn compile(&self, source: &str) -> Result<AST, String> {
        self.engine
            .compile(source)
            .map_err(|e| describe_parse_error(&e))
    }

    /// `portico scripts check`: compiles `source`; lists the hooks it handles among `hooks`
    /// and warns about functions that look like hooks but are not one, or take no event.
    pub fn check(&self, source: &str, hooks: &[&str]) -> Result<CheckReport, String> {
        let ast = self.compile(source)?;
        let mut handles = BTreeSet::new();
        let mut warnings = Vec::new();
        for f in ast.iter_functions() {
            let is_hook = hooks.contains(&f.name);
            match (is_hook, f.params.len()) {
                (true, 1) => {
                    handles.insert(f.name.to_string());
                }
                (true, n) => warnings.push(format!(
                    "fn {}: takes {n} parameters; a hook function takes one, the event: fn {}(event)",
                    f.name, f.name
                )),
                (false, _) => {
                    let near = hooks
                        .iter()
                        .map(|h| (strsim::damerau_levenshtein(h, f.name), *h))
                        .filter(|(d, _)| *d <= 2)
                        .min();
                    if let Some((_, h)) = near {
                        warnings.push(format!(
                            "fn {}: not a hook (did you mean {h}?)",
                            f.name
                        ));
                    } else if f.name.starts_with("before_") || f.name.starts_with("after_") {
                        warnings.push(format!(
                            "fn {}: not a hook (`portico hooks` lists them)",
                            f.name
                        ));
                    }
                }
            }
        }
        Ok(CheckReport {
            handles: handles.into_iter().collect(),
            warnings,
        })
    }

    /// Reads the folder again: changed files are compiled (a file that fails keeps its
    /// previous version active), new files added, removed ones dropped. Returns one line per
    /// change.
    pub fn reload(&self) -> Vec<String> {
        let Some(dir) = self.dir.clone() else {
            return Vec::new();
        };
        let _one_at_a_time = self.reloading.lock();
        let old = self.snapshot();
        let mut changes = Vec::new();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_script_file(p) && p.is_file())
                .collect(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), "cannot read the scripts folder: {e}");
                Vec::new()
            }
        };
        files.sort();
        let mut scripts = Vec::new();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let previous = old.scripts.iter().find(|s| s.name == name);
            let source = match read_source(&path) {
                Ok(s) => s,
                Err(why) => {
                    // Unreadable for a moment (an editor replacing it): keep what ran.
                    tracing::error!(script = %name, "{why}");
                    if let Some(p) = previous {
                        scripts.push(p.clone());
                    }
                    continue;
                }
            };
            let hash = hash_of(&source);
            if let Some(p) = previous
                && p.source_hash == hash
            {
                scripts.push(p.clone());
                continue;
            }
            match self.engine.compile(&source) {
                Ok(ast) => {
                    let functions = ast
                        .iter_functions()
                        .filter(|f| f.params.len() == 1 && f.this_type.is_none())
                        .map(|f| f.name.to_string())
                        .collect();
                    tracing::info!(script = %name, "script compiled and active");
                    changes.push(format!("{name}: compiled and active"));
                    scripts.push(Arc::new(Script {
                        name,
                        ast: Some(Arc::new(ast)),
                        functions,
                        compile_error: None,
                        source_hash: hash,
                        stats: Arc::new(Stats::default()),
                    }));
                }
                Err(e) => {
                    let why = describe_parse_error(&e);
                    let keeps = previous.is_some_and(|p| p.ast.is_some());
                    tracing::error!(
                        script = %name,
                        "script does not compile ({}): {why}",
                        if keeps { "the previous version stays active" } else { "not loaded" }
                    );
                    changes.push(format!("{name}: compile error: {why}"));
                    scripts.push(Arc::new(Script {
                        name,
                        ast: previous.and_then(|p| p.ast.clone()),
                        functions: previous.map(|p| p.functions.clone()).unwrap_or_default(),
                        compile_error: Some(why),
                        source_hash: hash,
                        stats: previous
                            .map(|p| p.stats.clone())
                            .unwrap_or_else(|| Arc::new(Stats::default())),
                    }));
                }
            }
        }
        for gone in old
            .scripts
            .iter()
            .filter(|o| !scripts.iter().any(|s| s.name == o.name))
        {
            tracing::info!(script = %gone.name, "script removed; no longer runs");
            changes.push(format!("{}: removed", gone.name));
        }
        let handled = scripts
            .iter()
            .filter(|s| s.ast.is_some())
            .flat_map(|s| s.functions.iter().cloned())
            .collect();
        let snapshot = Arc::new(Snapshot { scripts, handled });
        match self.loaded.write() {
            Ok(mut s) => *s = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut at) = self.last_reload.lock() {
            *at = Some(self.env.clock.now());
        }
        changes
    }

    /// A number that changes after every reload of the folder: what the scripts add to a page
    /// may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// When the folder was last read.
    pub fn last_reload(&self) -> Option<DateTime<Utc>> {
        self.last_reload.lock().ok().and_then(|a| *a)
    }

    /// Watches the folder and reloads within a second of an edit, a new file or a removal.
    pub fn watch(self: &Arc<Self>) -> crate::Result<Option<ScriptWatcher>> {
        use notify::Watcher as _;
        let Some(dir) = self.dir.clone() else {
            return Ok(None);
        };
        if !dir.is_dir() {
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && crate::theme::is_edit(&event.kind)
                && event.paths.iter().any(|p| is_script_file(p))
            {
                let _ = tx.send(());
            }
        })
        .map_err(|e| crate::Error::Internal(format!("cannot watch scripts: {e}")))?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| crate::Error::Internal(format!("cannot watch {}: {e}", dir.display())))?;
        let scripts = Arc::clone(self);
        std::thread::Builder::new()
            .name("script-watch".into())
            .spawn(move || {
                // An editor's save is several events: act once they are quiet for a moment.
                while rx.recv().is_ok() {
                    while rx.recv_timeout(Duration::from_millis(100)).is_ok() {}
                    scripts.reload();
                }
            })
            .map_err(|e| crate::Error::Internal(format!("cannot start the script watcher: {e}")))?;
        tracing::info!(dir = %dir.display(), "watching scripts for changes");
        Ok(Some(ScriptWatcher { _watcher: watcher }))
    }

    /// Runs `fn <hook>(event)` of every active script that defines it, in file-name order,
    /// after the other handlers. `after` puts back what a handler may not amend.
    pub(crate) fn run(&self, def: &HookDef, value: &mut Value) -> Result<(), Veto> {
        let snapshot = self.snapshot();
        if !snapshot.handled.contains(&def.name) {
            return Ok(());
        }
        // What every script's event adds to the client: looked up once per dispatch.
        let extra = client_extra(&self.env, value);
        for script in snapshot.scripts.iter().filter(|s| s.defines(&def.name)) {
            if script.disabled_reason().is_some() {
                continue;
            }
            // `value` changes only where a script's call succeeded, and then only in the
            // hook's amendable fields (see `take_amended`).
            match self.call(script, def, value, &extra) {
                Outcome::Done(ret) => {
                    if def.name == INFO_PANELS {
                        append_panels(script, ret, value);
                    }
                }
                Outcome::Vetoed(v) => {
                    let owner = format!("script {}", script.name);
                    if def.refusable {
                        tracing::info!(hook = %def.name, hook_owner = %owner, "action vetoed: {}", v.message);
                        return Err(v);
                    }
                    tracing::warn!(hook = %def.name, hook_owner = %owner, "a script tried to refuse an action that cannot be refused, ignored: {}", v.message);
                }
                Outcome::Failed => {
                    if def.refusable
                        && self.env.settings.text("script_failure_policy", None) == "closed"
                    {
                        return Err(self.generic_refusal());
                    }
                }
            }
        }
        Ok(())
    }

    fn generic_refusal(&self) -> Veto {
        Veto::new(self.env.i18n.t("en", "script-failed-refusal"))
            .with("cs", self.env.i18n.t("cs", "script-failed-refusal"))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.env.settings.int("script_timeout_ms", None).max(1) as u64)
    }

    /// One call of one script function on this thread (off the async workers), with the
    /// deadline; counted, timed, and on failure logged with file and line.
    fn call(
        &self,
        script: &Arc<Script>,
        def: &HookDef,
        value: &mut Value,
        extra: &RMap,
    ) -> Outcome {
        let hook = def.name.as_str();
        let Some(ast) = script.ast.clone() else {
            return Outcome::Done(Dynamic::UNIT);
        };
        let mut event = match rhai::serde::to_dynamic(&*value) {
            Ok(d) => d,
            Err(e) => {
                return self.failed(
                    script,
                    hook,
                    format!("event cannot be given to scripts: {e}"),
                    Duration::ZERO,
                );
            }
        };
        if !extra.is_empty()
            && let Some(mut map) = event.write_lock::<RMap>()
            && let Some(client) = map.get_mut("client")
            && let Some(mut c) = client.write_lock::<RMap>()
        {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        let shared = event.into_shared();
        let client_id = value
            .get("client")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_u64);
        let group = value
            .get("client")
            .and_then(|c| c.get("invoice_group_id"))
            .and_then(Value::as_u64);
        let timeout = self.timeout();
        let started = Instant::now();
        let result = crate::store::off_async(|| {
            CALLS.with(|c| {
                c.borrow_mut().push(CallCtx {
                    script: script.clone(),
                    client_id,
                    group,
                    deadline: started + timeout,
                    veto: None,
                })
            });
            let guard = CallGuard;
            let r = self.engine.call_fn_with_options::<Dynamic>(
                CallFnOptions::new().eval_ast(false).rewind_scope(true),
                &mut rhai::Scope::new(),
                &ast,
                hook,
                (shared.clone(),),
            );
            let veto = with_call(|c| c.veto.take()).flatten();
            drop(guard);
            (r, veto)
        });
        let elapsed = started.elapsed();
        let (result, veto) = result;
        if let Some(v) = veto {
            self.succeeded(script, elapsed);
            return Outcome::Vetoed(v);
        }
        match result {
            Ok(ret) => {
                if let Err(why) = take_amended(def, &shared, value) {
                    return self.failed(script, hook, why, elapsed);
                }
                self.succeeded(script, elapsed);
                Outcome::Done(ret)
            }
            Err(e) => {
                let why = describe_eval_error(&e, timeout, hook);
                self.failed(script, hook, why, elapsed)
            }
        }
    }

    fn record_time(&self, script: &Script, elapsed: Duration) {
        let ns = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
        script.stats.calls.fetch_add(1, Ordering::Relaxed);
        script.stats.total_ns.fetch_add(ns, Ordering::Relaxed);
        script.stats.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    fn succeeded(&self, script: &Script, elapsed: Duration) {
        self.record_time(script, elapsed);
        script.stats.in_row.store(0, Ordering::Relaxed);
    }

    fn failed(&self, script: &Script, hook: &str, why: String, elapsed: Duration) -> Outcome {
        self.record_time(script, elapsed);
        script.stats.failures.fetch_add(1, Ordering::Relaxed);
        let n = script.stats.in_row.fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.env.settings.int("script_max_failures", None).max(1) as u32;
        tracing::error!(script = %script.name, hook, failures_in_a_row = n, "script stopped: {}: {why}", script.name);
        if n >= max
            && let Ok(mut d) = script.stats.disabled.lock()
            && d.is_none()
        {
            let reason = format!("{n} failures in a row (last: {why})");
            tracing::error!(script = %script.name, "script disabled until it is edited, after {reason}");
            *d = Some(reason);
        }
        Outcome::Failed
    }

    /// `portico scripts status`: each script, its hooks, state, calls, failures and times.
    pub fn status(&self, hooks: &[&str]) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        match &self.dir {
            Some(d) if d.is_dir() => {
                let _ = writeln!(
                    out,
                    "scripts folder: {}",
                    crate::text::escape(&d.display().to_string())
                );
            }
            Some(d) => {
                let _ = writeln!(
                    out,
                    "scripts folder: {} (not found; no scripts)",
                    crate::text::escape(&d.display().to_string())
                );
            }
            None => {
                let _ = writeln!(out, "no scripts folder (give --scripts DIR or scripts_dir)");
            }
        }
        let list = self.list();
        if list.is_empty() {
            let _ = writeln!(out, "no scripts");
        }
        for s in &list {
            let state = match (s.disabled_reason(), &s.compile_error, s.ast.is_some()) {
                (Some(why), _, _) => format!("disabled until edited: {why}"),
                (None, Some(err), true) => {
                    format!("compile error: {err}; the previous version stays active")
                }
                (None, Some(err), false) => format!("compile error: {err}; not loaded"),
                (None, None, _) => "active".to_string(),
            };
            let hooks = self.hooks_of(s, hooks);
            let calls = s.stats.calls.load(Ordering::Relaxed);
            let total = s.stats.total_ns.load(Ordering::Relaxed);
            let mean = if calls == 0 {
                0.0
            } else {
                total as f64 / calls as f64 / 1e6
            };
            let max = s.stats.max_ns.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{}: {}\n    hooks: {}\n    calls: {calls}, failures: {} ({} in a row), mean {mean:.3} ms, max {max:.3} ms",
                crate::text::escape(&s.name),
                crate::text::escape(&state),
                if hooks.is_empty() {
                    "none".to_string()
                } else {
                    hooks.join(", ")
                },
                s.stats.failures.load(Ordering::Relaxed),
                s.stats.in_row.load(Ordering::Relaxed),
            );
        }
        if let Some(at) = self.last_reload() {
            let _ = writeln!(out, "last read: {}", at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        out
    }
}

/// Keeps the scripts folder watched; dropping it stops the watching.
pub struct ScriptWatcher {
    _watcher: notify::RecommendedWatcher,
}

fn is_script_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == EXTENSION)
        && !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}

fn read_source(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_SCRIPT_BYTES {
        return Err(format!(
            "larger than {} KiB; not compiled",
            MAX_SCRIPT_BYTES / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text; not compiled".to_string())
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The client fields scripts get beyond the hook's event: the invoice group's name and the
/// mailing address's town and postcode.
fn client_extra(env: &ScriptEnv, value: &Value) -> RMap {
    let mut extra = RMap::new();
    let Some(id) = value
        .get("client")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_u64)
    else {
        return extra;
    };
    let Some((group_id, city, zip)) = client_place(env, id) else {
        return extra;
    };
    let group = env
        .store
        .invoice_group(group_id)
        .ok()
        .and_then(|g| g.as_ref().as_ref().map(|g| g.name.clone()))
        .unwrap_or_default();
    extra.insert("invoice_group".into(), group.into());
    extra.insert("city".into(), city.into());
    extra.insert("zip".into(), zip.into());
    extra
}

/// A client's invoice group id, town and postcode.
type Place = (u64, String, String);

thread_local! {
    /// The last client `client_place` decoded on this thread, by its stored bytes: a page's
    /// hooks ask for the same client again and again, and decoding it is most of a trivial
    /// hook's cost. Compared byte for byte, so an edit is seen at once.
    static LAST_PLACE: std::cell::RefCell<Option<(Vec<u8>, Place)>> =
        const { std::cell::RefCell::new(None) };
}

/// The [`Place`] of a client.
fn client_place(env: &ScriptEnv, id: u64) -> Option<Place> {
    use crate::store::Record;
    let key = crate::store::id_key(id);
    let bytes = env
        .store
        .get_raw(crate::model::Client::TREE, &key)
        .ok()
        .flatten()?;
    if let Some(hit) = LAST_PLACE.with_borrow(|last| {
        last.as_ref()
            .filter(|(b, _)| *b == bytes)
            .map(|(_, place)| place.clone())
    }) {
        return Some(hit);
    }
    let client = env.store.get::<crate::model::Client>(&key).ok().flatten()?;
    let place = (
        client.invoice_group_id,
        client.mailing_address.city,
        client.mailing_address.zip,
    );
    LAST_PLACE.set(Some((bytes, place.clone())));
    Some(place)
}

/// What a broken limit or an error says, with the line where the script was.
/// Rhai stops a call on a limit or the deadline without knowing the line: the hook function
/// is named then.
fn describe_eval_error(e: &EvalAltResult, timeout: Duration, hook: &str) -> String {
    let line = |pos: Position| match pos.line() {
        Some(l) => format!(" (line {l})"),
        None => format!(" (in fn {hook})"),
    };
    // The innermost error says what happened; the outer ones where it was called from.
    let mut inner = e;
    let mut at = e.position();
    while let EvalAltResult::ErrorInFunctionCall(_, _, err, _) = inner {
        inner = err;
        if !inner.position().is_none() {
            at = inner.position();
        }
    }
    // The innermost place known (a termination may carry none).
    let line = |pos: Position| line(if pos.is_none() { at } else { pos });
    match inner {
        EvalAltResult::ErrorTerminated(mark, pos) if mark.to_string() == DEADLINE_MARK => {
            format!(
                "ran past the deadline of {} ms (script_timeout_ms){}",
                timeout.as_millis(),
                line(*pos)
            )
        }
        EvalAltResult::ErrorTooManyOperations(pos) => {
            format!(
                "ran too many operations (limit {MAX_OPERATIONS}){}",
                line(*pos)
            )
        }
        EvalAltResult::ErrorStackOverflow(pos) => format!(
            "called functions too deep (limit {MAX_CALL_LEVELS} levels){}",
            line(*pos)
        ),
        EvalAltResult::ErrorDataTooLarge(what, pos) => format!(
            "{what} grew past its limit (strings {} KiB, arrays {MAX_ARRAY_LEN}, maps {MAX_MAP_LEN}){}",
            MAX_STRING_BYTES / 1024,
            line(*pos)
        ),
        _ => {
            let pos = e.position();
            let mut text = e.to_string();
            // Display appends the position; say it our way.
            if let Some(cut) = text.rfind(" (line ") {
                text.truncate(cut);
            }
            format!("{text}{}", line(pos))
        }
    }
}

/// Copies the hook's amendable fields from the event a script was given back into `value`;
/// nothing else a script changed (or was given, like the client's extra fields) comes back.
/// A field the script removed comes back as null, which the hook's owner refuses to read.
fn take_amended(def: &HookDef, event: &Dynamic, value: &mut Value) -> Result<(), String> {
    if def.amendable.is_empty() {
        return Ok(());
    }
    let Some(map) = event.read_lock::<RMap>() else {
        return Err("the event was replaced by something that is not a map".into());
    };
    let Some(out) = value.as_object_mut() else {
        return Ok(());
    };
    for field in &def.amendable {
        let amended = match map.get(field.as_str()) {
            Some(v) => rhai::serde::from_dynamic::<Value>(v)
                .map_err(|e| format!("the amended event is unreadable: {e}"))?,
            None => Value::Null,
        };
        out.insert(field.clone(), amended);
    }
    Ok(())
}

/// Takes an `info_panels` function's return value: panels are appended to `event.panels`.
fn append_panels(script: &Script, ret: Dynamic, value: &mut Value) {
    if ret.is_unit() {
        return;
    }
    let panels = match rhai::serde::from_dynamic::<Value>(&ret) {
        Ok(Value::Array(list)) => list,
        Ok(Value::Object(one)) => vec![Value::Object(one)],
        _ => {
            tracing::warn!(script = %script.name, "info_panels returned neither an array of panels nor a panel; ignored");
            return;
        }
    };
    if let Some(list) = value.get_mut("panels").and_then(Value::as_array_mut) {
        list.extend(panels);
    }
}
