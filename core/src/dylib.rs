//! Dynamic plugins: libraries loaded from the plugin folder at start, through the C ABI of
//! `portico-plugin-sdk` (one entry symbol returning a vtable; JSON buffers both ways, each freed
//! by the side that allocated it).
//!
//! Safety rules kept here, the only place in core with `unsafe`:
//! - the ABI version (the vtable's first field) and the SDK version are checked before any
//!   other call; a library that fails either is refused and none of its functions is called;
//! - a library is never unloaded (leaked on purpose), so its code and statics outlive every
//!   call;
//! - nothing unwinds across the boundary: the SDK catches panics on its side, host callbacks
//!   catch them on ours.
//!
//! Calls run on a small pool of threads per plugin, never on the async threads, each with a
//! deadline (`plugin_call_timeout_ms`). A panic, an error reply or a missed deadline counts as
//! a failure; after `plugin_max_failures` the plugin is disabled until restart.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use portico_plugin_sdk::abi::{self, HostApi, PluginVtable, RawBuf};
use portico_plugin_sdk::protocol::{
    Call, CallReply, Description, HookReply, HookRequest, HostReply, HostRequest, PageReply,
    PageRequest,
};
use serde_json::{Map, Value};

use crate::hooks::Veto;
use crate::plugin::Namespace;
use crate::settings::Settings;
use crate::store::Store;

/// Threads per plugin that make its calls (a thread stuck past its deadline is replaced).
const WORKERS: usize = 2;

/// What the portal lends loaded plugins once it is assembled.
pub(crate) struct HostEnv {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub hooks: Arc<crate::hooks::Hooks>,
}

/// Why a call did not give an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The plugin is disabled (until restart) after too many failures.
    Disabled,
    /// The call ran past its deadline.
    Timeout,
    /// The plugin panicked or answered an error.
    Failed(String),
}

struct Job {
    input: Vec<u8>,
    ctx: HostCtx,
    /// A thread waiting with a deadline.
    reply: SyncSender<Vec<u8>>,
}

/// A hook call running on its caller's thread, watched for its deadline.
struct InFlight {
    id: u64,
    started: Instant,
    /// Already counted as a failure for running past the deadline.
    counted: bool,
}

/// One loaded dynamic plugin.
pub struct Library {
    pub id: String,
    pub file: PathBuf,
    pub sdk_version: String,
    pub description: Description,
    vtable: &'static PluginVtable,
    jobs: SyncSender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    failures: AtomicU32,
    disabled: Mutex<Option<String>>,
    env: OnceLock<HostEnv>,
    inflight: Mutex<Vec<InFlight>>,
    next_call: AtomicU64,
}

/// A library that was not loaded, and why (one log line each).
pub struct Refused {
    pub file: PathBuf,
    pub reason: String,
}

/// Loads every library in `dir`. A folder writable by group or others loads nothing.
pub fn load_dir(dir: &Path) -> (Vec<Arc<Library>>, Vec<Refused>) {
    let mut loaded = Vec::new();
    let mut refused = Vec::new();
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            refused.push(Refused {
                file: dir.to_path_buf(),
                reason: "the plugin folder is not a folder; no plugin loaded".into(),
            });
            return (loaded, refused);
        }
        Err(e) => {
            refused.push(Refused {
                file: dir.to_path_buf(),
                reason: format!("the plugin folder cannot be read ({e}); no plugin loaded"),
            });
            return (loaded, refused);
        }
    };
    if meta.permissions().mode() & 0o022 != 0 {
        refused.push(Refused {
            file: dir.to_path_buf(),
            reason: format!(
                "the plugin folder is writable by group or others (mode {:o}); no plugin loaded from it (chmod go-w it)",
                meta.permissions().mode() & 0o777
            ),
        });
        return (loaded, refused);
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect(),
        Err(e) => {
            refused.push(Refused {
                file: dir.to_path_buf(),
                reason: format!("the plugin folder cannot be listed ({e})"),
            });
            return (loaded, refused);
        }
    };
    files.sort();
    for file in files {
        match load(&file) {
            Ok(lib) => loaded.push(lib),
            Err(reason) => refused.push(Refused { file, reason }),
        }
    }
    (loaded, refused)
}

/// Whether a plugin built with SDK `theirs` speaks to a host built with SDK `ours`: the same
/// major version (the same minor while the major is 0).
fn sdk_compatible(ours: &str, theirs: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(ours), parts(theirs)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

fn load(file: &Path) -> Result<Arc<Library>, String> {
    if let Ok(m) = std::fs::metadata(file)
        && m.permissions().mode() & 0o022 != 0
    {
        return Err("writable by group or others; not loaded (chmod go-w it)".into());
    }
    // SAFETY: loading runs the library's initialisers. The folder is the operator's and not
    // writable by others (checked above); loading a library is what this feature is.
    let lib = unsafe { libloading::Library::new(file) }
        .map_err(|e| format!("not a loadable library: {e}"))?;
    // SAFETY: the symbol's type is fixed by the SDK's ABI rule (EntryFn in every version).
    let entry: abi::EntryFn = unsafe {
        *lib.get::<abi::EntryFn>(abi::ENTRY_SYMBOL)
            .map_err(|_| "no `portico_plugin_entry` symbol: not a Portico plugin".to_string())?
    };
    // SAFETY: the entry function takes nothing and returns a pointer to a static vtable.
    let ptr = unsafe { entry() };
    if ptr.is_null() {
        return Err("its entry function returned nothing".into());
    }
    // SAFETY: every ABI version starts the vtable with the u32 version; read only that first.
    let abi_version = unsafe { std::ptr::read(ptr.cast::<u32>()) };
    if abi_version != abi::ABI_VERSION {
        return Err(format!(
            "built for plugin ABI version {abi_version}; this portal speaks version {} (rebuild it with portico-plugin-sdk {})",
            abi::ABI_VERSION,
            abi::SDK_VERSION
        ));
    }
    // SAFETY: the version matched, so the whole vtable has this layout; it is static in a
    // library we never unload.
    let vtable: &'static PluginVtable = unsafe { &*ptr };
    // SAFETY: a 'static string of the library.
    let sdk_version = unsafe { vtable.sdk_version.to_string_lossy() };
    if !sdk_compatible(abi::SDK_VERSION, &sdk_version) {
        return Err(format!(
            "built with portico-plugin-sdk {sdk_version}, which this portal (SDK {}) does not speak",
            abi::SDK_VERSION
        ));
    }
    // SAFETY: describe takes nothing and returns a buffer of the library's, freed by its free.
    let bytes = unsafe {
        let buf = (vtable.describe)();
        let bytes = buf.as_slice().to_vec();
        (vtable.free)(buf);
        bytes
    };
    let description: Description = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(_) => {
            let why = serde_json::from_slice::<CallReply>(&bytes)
                .ok()
                .and_then(|r| match r {
                    CallReply::Error(e) => Some(e),
                    _ => None,
                })
                .unwrap_or_else(|| "its description is not readable".into());
            return Err(why);
        }
    };
    // Never unloaded: its code must outlive every call and every thread that made one.
    std::mem::forget(lib);
    let (jobs, queue) = sync_channel::<Job>(256);
    let library = Arc::new(Library {
        id: description.id.clone(),
        file: file.to_path_buf(),
        sdk_version,
        description,
        vtable,
        jobs,
        queue: Arc::new(Mutex::new(queue)),
        failures: AtomicU32::new(0),
        disabled: Mutex::new(None),
        env: OnceLock::new(),
        inflight: Mutex::new(Vec::new()),
        next_call: AtomicU64::new(0),
    });
    for _ in 0..WORKERS {
        library.spawn_worker();
    }
    Ok(library)
}

/// What the plugin's store requests are answered from, for the length of one call.
struct HostCtx {
    ns: Namespace,
    hooks: Option<Arc<crate::hooks::Hooks>>,
}

unsafe extern "C" fn host_call(ctx: *const c_void, input: *const u8, len: usize) -> RawBuf {
    let reply = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() || input.is_null() {
            return HostReply::Error("null argument".into());
        }
        // SAFETY: ctx is the HostCtx on the calling worker's stack, alive for the call; the
        // plugin passes `len` readable bytes.
        let (ctx, bytes) = unsafe {
            (
                &*(ctx.cast::<HostCtx>()),
                std::slice::from_raw_parts(input, len),
            )
        };
        match serde_json::from_slice::<HostRequest>(bytes) {
            Ok(HostRequest::RunHook { hook, mut event }) => match &ctx.hooks {
                Some(hooks) if hooks.may_fire(ctx.ns.plugin_id(), &hook).is_err() => {
                    HostReply::Error(format!(
                        "plugin `{}` may fire only the hooks it declares, not `{hook}`",
                        ctx.ns.plugin_id()
                    ))
                }
                Some(hooks) => match hooks.run_json(&hook, &mut event) {
                    Ok(()) => HostReply::Hook(HookReply::Continue { event: Some(event) }),
                    Err(v) => HostReply::Hook(HookReply::Veto {
                        message: v.message,
                        translations: v.translations,
                    }),
                },
                None => HostReply::Error("the portal is not assembled yet".into()),
            },
            Ok(req) => answer(&ctx.ns, req),
            Err(e) => HostReply::Error(format!("unreadable request: {e}")),
        }
    }))
    .unwrap_or_else(|_| HostReply::Error("the portal failed to answer".into()));
    RawBuf::from_vec(serde_json::to_vec(&reply).unwrap_or_default())
}

unsafe extern "C" fn host_free(buf: RawBuf) {
    // SAFETY: only buffers made by host_call (our allocator) come back here.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { buf.into_vec() })));
}

fn answer(ns: &Namespace, req: HostRequest) -> HostReply {
    let result = match req {
        HostRequest::RunHook { .. } => Ok(HostReply::Error("answered by host_call".into())),
        HostRequest::Get { tree, key } => {
            ns.get::<Value>(&tree, key.as_bytes()).map(HostReply::Value)
        }
        HostRequest::Scan { tree, prefix } => ns.scan::<Value>(&tree, prefix.as_bytes()).map(|v| {
            HostReply::Entries(
                v.into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect(),
            )
        }),
        HostRequest::Write { changes, expect } => ns
            .write(|tx| {
                for e in &expect {
                    if tx.get::<Value>(&e.tree, e.key.as_bytes())? != e.value {
                        return Ok(false);
                    }
                }
                for c in &changes {
                    match &c.value {
                        Some(v) => tx.put(&c.tree, c.key.as_bytes(), v)?,
                        None => tx.delete(&c.tree, c.key.as_bytes())?,
                    }
                }
                Ok(true)
            })
            .map(|done| {
                if done {
                    HostReply::Done
                } else {
                    HostReply::Conflict
                }
            }),
    };
    result.unwrap_or_else(|e| HostReply::Error(e.public_message()))
}

/// Makes one call into the library on this thread: the request bytes in, a copy of its reply
/// out (the library's buffer goes back to its own free).
fn invoke(vtable: &'static PluginVtable, ctx: &HostCtx, input: &[u8]) -> Vec<u8> {
    let host = HostApi {
        ctx: (ctx as *const HostCtx).cast(),
        call: host_call,
        free: host_free,
    };
    // SAFETY: the vtable passed the version check; `host`, `ctx` and `input` live until the
    // call returns; the reply is the library's and goes back to its free after we copied it.
    unsafe {
        let buf = (vtable.call)(&host, input.as_ptr(), input.len());
        let bytes = buf.as_slice().to_vec();
        (vtable.free)(buf);
        bytes
    }
}

impl Library {
    fn spawn_worker(self: &Arc<Self>) {
        let queue = self.queue.clone();
        let vtable = self.vtable;
        let id = self.id.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("plugin-{id}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(rx) => match rx.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let ctx = job.ctx;
                    let out = invoke(vtable, &ctx, &job.input);
                    // The caller may have given up (deadline); then nobody listens.
                    let _ = job.reply.send(out);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(plugin = %self.id, "cannot start a plugin thread: {e}");
        }
    }

    /// Hands the portal's store and settings to the plugin (once, after assembly).
    pub(crate) fn attach(&self, env: HostEnv) {
        let _ = self.env.set(env);
    }

    /// Why the plugin is disabled, if it is.
    pub fn disabled_reason(&self) -> Option<String> {
        self.disabled.lock().ok().and_then(|d| d.clone())
    }

    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    fn limit(&self, key: &str, fallback: i64) -> i64 {
        self.env
            .get()
            .map_or(fallback, |e| e.settings.int(key, None))
    }

    fn record_failure(self: &Arc<Self>, what: &str) {
        let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.limit("plugin_max_failures", 10).max(1) as u32;
        tracing::error!(plugin = %self.id, failures = n, "plugin call failed: {what}");
        if n >= max
            && let Ok(mut d) = self.disabled.lock()
            && d.is_none()
        {
            let reason = format!("{n} failures (last: {what})");
            tracing::error!(plugin = %self.id, "plugin disabled until restart after {reason}");
            *d = Some(reason);
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.limit("plugin_call_timeout_ms", 2000).max(1) as u64)
    }

    /// The call as bytes and what its host calls are answered from, unless the plugin is
    /// disabled.
    fn prepare(&self, call: &Call) -> Result<(Vec<u8>, HostCtx), CallError> {
        if self.disabled_reason().is_some() {
            return Err(CallError::Disabled);
        }
        let Some(env) = self.env.get() else {
            return Err(CallError::Failed("the portal is not assembled yet".into()));
        };
        let input = serde_json::to_vec(call).map_err(|e| CallError::Failed(e.to_string()))?;
        let ctx = HostCtx {
            ns: Namespace::new(env.store.clone(), &self.id),
            hooks: Some(env.hooks.clone()),
        };
        Ok((input, ctx))
    }

    /// Reads a reply; an error reply or an unreadable one counts as a failure.
    fn finish(self: &Arc<Self>, bytes: &[u8]) -> Result<CallReply, CallError> {
        match serde_json::from_slice::<CallReply>(bytes) {
            Ok(CallReply::Error(e)) => {
                self.record_failure(&e);
                Err(CallError::Failed(e))
            }
            Ok(reply) => Ok(reply),
            Err(e) => {
                let what = format!("unreadable reply: {e}");
                self.record_failure(&what);
                Err(CallError::Failed(what))
            }
        }
    }

    fn missed_deadline(self: &Arc<Self>, timeout: Duration) -> CallError {
        self.record_failure(&format!("no answer within {} ms", timeout.as_millis()));
        // That thread may be stuck for good: start another so the pool stays whole.
        // Bounded: after plugin_max_failures the plugin is disabled.
        self.spawn_worker();
        CallError::Timeout
    }

    fn enqueue(self: &Arc<Self>, job: Job) -> Result<(), CallError> {
        if self.jobs.try_send(job).is_err() {
            self.record_failure("too many calls waiting");
            return Err(CallError::Timeout);
        }
        Ok(())
    }

    /// Makes one call on the plugin's threads and waits for it (at most the deadline) without
    /// holding up an async worker.
    fn call_pooled(self: &Arc<Self>, call: &Call) -> Result<CallReply, CallError> {
        let (input, ctx) = self.prepare(call)?;
        let timeout = self.timeout();
        let (reply, answer) = sync_channel(1);
        self.enqueue(Job { input, ctx, reply })?;
        let bytes = crate::store::off_async(|| answer.recv_timeout(timeout))
            .map_err(|_| self.missed_deadline(timeout))?;
        self.finish(&bytes)
    }

    /// Counts once each call on a caller's thread that has run past the deadline (it cannot
    /// be stopped; counting it lets a plugin that hangs get disabled while it hangs).
    fn count_overdue(self: &Arc<Self>, timeout: Duration) {
        let overdue = match self.inflight.lock() {
            Ok(mut calls) => calls
                .iter_mut()
                .filter(|c| !c.counted && c.started.elapsed() > timeout)
                .map(|c| c.counted = true)
                .count(),
            Err(_) => 0,
        };
        for _ in 0..overdue {
            self.record_failure(&format!(
                "a hook call has been running for more than {} ms",
                timeout.as_millis()
            ));
        }
    }

    /// Makes one call on the caller's thread (off the async workers): the fast path for hooks,
    /// with no hand-over to another thread. A call that answers after the deadline is counted
    /// as a failure and its answer ignored; one that hangs is counted by the next call, so a
    /// hanging plugin is disabled all the same.
    fn call_direct(self: &Arc<Self>, call: &Call) -> Result<CallReply, CallError> {
        let timeout = self.timeout();
        self.count_overdue(timeout);
        let (input, ctx) = self.prepare(call)?;
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        if let Ok(mut calls) = self.inflight.lock() {
            calls.push(InFlight {
                id,
                started,
                counted: false,
            });
        }
        let bytes = crate::store::off_async(|| invoke(self.vtable, &ctx, &input));
        let counted = match self.inflight.lock() {
            Ok(mut calls) => {
                let counted = calls.iter().find(|c| c.id == id).is_some_and(|c| c.counted);
                calls.retain(|c| c.id != id);
                counted
            }
            Err(_) => false,
        };
        if started.elapsed() > timeout {
            if !counted {
                self.record_failure(&format!(
                    "answered after {} ms, past the deadline of {} ms; answer ignored",
                    started.elapsed().as_millis(),
                    timeout.as_millis()
                ));
            }
            return Err(CallError::Timeout);
        }
        self.finish(&bytes)
    }

    /// The plugin's own settings as they apply to an invoice group.
    pub(crate) fn settings_for(&self, group: Option<u64>) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(env) = self.env.get() {
            for s in &self.description.settings {
                out.insert(s.key.clone(), env.settings.value(&s.key, group));
            }
        }
        out
    }

    fn page_reply(self: &Arc<Self>, reply: CallReply) -> Result<PageReply, CallError> {
        match reply {
            CallReply::Page(p) => Ok(p),
            other => {
                let what = format!("answered a page request with {other:?}");
                self.record_failure(&what);
                Err(CallError::Failed(what))
            }
        }
    }

    /// Serves a page request, waiting on this thread (tools, benchmarks).
    pub fn page(self: &Arc<Self>, req: PageRequest) -> Result<PageReply, CallError> {
        let reply = self.call_pooled(&Call::Page(req))?;
        self.page_reply(reply)
    }

    /// Serves a page request on this thread: the web server calls it on a render thread,
    /// whose waiter keeps the deadline (see [`Library::page_overdue`]), and renders the answer
    /// on the same thread.
    pub fn page_here(self: &Arc<Self>, req: PageRequest) -> Result<PageReply, CallError> {
        let (input, ctx) = self.prepare(&Call::Page(req))?;
        let bytes = invoke(self.vtable, &ctx, &input);
        let reply = self.finish(&bytes)?;
        self.page_reply(reply)
    }

    /// A page call made with [`Library::page_here`] ran past the deadline: counted as a
    /// failure (its late answer is dropped).
    pub fn page_overdue(self: &Arc<Self>) {
        self.record_failure(&format!(
            "no answer within {} ms",
            self.timeout().as_millis()
        ));
    }

    /// The deadline of one call (`plugin_call_timeout_ms`).
    pub fn call_timeout(&self) -> Duration {
        self.timeout()
    }

    /// Runs the plugin's handler of a hook on the JSON event. A failure is logged and counted,
    /// and the action goes on as if the plugin had no handler.
    pub fn hook(self: &Arc<Self>, hook: &str, event: &mut Value) -> Result<(), Veto> {
        let group = event
            .get("client")
            .and_then(|c| c.get("invoice_group_id"))
            .and_then(Value::as_u64);
        let req = HookRequest {
            hook: hook.to_string(),
            event: event.clone(),
            settings: self.settings_for(group),
        };
        match self.call_direct(&Call::Hook(req)) {
            Ok(CallReply::Hook(HookReply::Continue { event: amended })) => {
                // No event back means the handler left it as it was.
                if let Some(amended) = amended {
                    *event = amended;
                }
                Ok(())
            }
            Ok(CallReply::Hook(HookReply::Veto {
                message,
                translations,
            })) => Err(Veto {
                message,
                translations,
            }),
            Ok(other) => {
                self.record_failure(&format!("answered a hook with {other:?}"));
                Ok(())
            }
            Err(CallError::Disabled) => Ok(()),
            Err(e) => {
                tracing::warn!(plugin = %self.id, hook, "hook handler skipped: {e:?}");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_versions_must_match_in_their_leading_part() {
        assert!(sdk_compatible("0.1.0", "0.1.7"));
        assert!(!sdk_compatible("0.1.0", "0.2.0"));
        assert!(sdk_compatible("1.2.0", "1.0.3"));
        assert!(!sdk_compatible("1.2.0", "2.0.0"));
        assert!(!sdk_compatible("1.2.0", "garbage"));
    }

    #[test]
    fn a_folder_writable_by_others_loads_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("x.so"), b"not a library").expect("write");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let (loaded, refused) = load_dir(dir.path());
        assert!(loaded.is_empty());
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0]
                .reason
                .starts_with("the plugin folder is writable by group or others (mode 777)"),
            "{}",
            refused[0].reason
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let (_, refused) = load_dir(dir.path());
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].reason.starts_with("not a loadable library"),
            "{}",
            refused[0].reason
        );
    }
}
