//! Latency of a trivial hook call through the dynamic-plugin boundary (target: ≤ 20 µs).
//!
//! Loads the example plugin `examples/outage-notice` (its built library, path in the
//! `PORTICO_BENCH_PLUGIN` environment variable: the `.so` file or a folder holding it), assembles
//! a portal on an in-memory store with it, and times `before_login` calls with
//! `outage_notice_block_logins` off (the handler returns at once), one by one with `Instant`:
//!
//! - `Library::hook` (the boundary: settings, JSON both ways, worker thread, FFI), on a plain
//!   thread and on a tokio worker, where the server calls it (`block_in_place`);
//! - `Hooks::run` with the typed `LoginEvent`, the whole dispatch a login pays;
//! - `Library::page` (the example's Outages tab, without the rendering);
//! - for comparison, the same dispatch to a compiled-in handler that does nothing, and the parts
//!   of the boundary measured alone (the JSON work, a round trip to a worker thread), each also
//!   in a variant a change to the loader could bring (no echo of an unchanged event, polling);
//! - under load, 64 tasks on a 2-worker tokio runtime as wrk drives the server: `Library::page`,
//!   and the round trip to a worker thread waited for in `block_in_place` (as the loader does)
//!   or awaited on a oneshot: calls/s, CPU per call, threads the process gained.
//!
//! ```sh
//! cargo build --release -p outage-notice
//! PORTICO_BENCH_PLUGIN=target/release/liboutage_notice.so \
//!     cargo bench -p portico-core --bench dylib_hook
//! ```
//!
//! `bench/plugins.sh` runs it and puts the result in its table. Environment: `N` (timed calls,
//! default 20000), `WARMUP` (default 2000). Lines starting `result ` are for scripts.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portico_core::internal::dylib::Library;
use portico_core::internal::hooks::{ClientView, LoginEvent};
use portico_core::internal::registry::{Manifest, Plugin, Registrar};
use portico_core::internal::store::Store;
use portico_core::internal::{DynamicPlugins, Portal, PortalOptions};
use portico_plugin_sdk::protocol::{
    Call, CallReply, HookReply, HookRequest, PageReply, PageRequest,
};
use serde_json::{Map, Value};

const TARGET_US: f64 = 20.0;
/// The text bench/plugins.sh sets, for the page call.
const NOTICE: &str =
    "Fibre cut in Brno-Líšeň: no Internet since 08:40, repair expected by 14:00. We are sorry.";

fn main() {
    let Some(lib_path) = std::env::var_os("PORTICO_BENCH_PLUGIN").map(PathBuf::from) else {
        println!("dylib_hook: PORTICO_BENCH_PLUGIN is not set; nothing measured. Run:");
        println!("  cargo build --release -p outage-notice");
        println!(
            "  PORTICO_BENCH_PLUGIN=target/release/liboutage_notice.so cargo bench -p portico-core --bench dylib_hook"
        );
        println!("(bench/plugins.sh does both.)");
        return;
    };
    // cargo runs benches in the package's folder (core/); a relative path may mean the
    // workspace root, where the command was typed.
    let lib_path = if lib_path.is_relative() && !lib_path.exists() {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(&lib_path)
    } else {
        lib_path
    };
    let n = env_number("N", 20_000);
    let warmup = env_number("WARMUP", 2_000);
    if let Err(e) = run(&lib_path, n, warmup) {
        eprintln!("dylib_hook: error: {e}");
        std::process::exit(1);
    }
}

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// A folder the loader accepts (not writable by group or others) holding only the library.
fn plugin_folder(path: &Path) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    if path.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp folder: {e}"))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod: {e}"))?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file", path.display()))?;
    let copy = dir.path().join(name);
    std::fs::copy(path, &copy).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod: {e}"))?;
    Ok((dir.path().to_path_buf(), Some(dir)))
}

fn options(plugins: Vec<Box<dyn Plugin>>, dynamic: Option<PathBuf>) -> PortalOptions {
    PortalOptions {
        dynamic: DynamicPlugins { dir: dynamic },
        ..PortalOptions::new(PathBuf::new(), plugins)
    }
}

/// A compiled-in plugin whose before_login handler does nothing: the dispatch without the
/// boundary.
struct NoopLogin;

impl Plugin for NoopLogin {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: "noop-login",
            name: "bench: no-op before_login",
            version: "0",
        }
    }
    fn register(&self, r: &mut Registrar) {
        r.on_json("before_login", |_| Ok(()));
    }
}

/// The event a login of the demo's Alice fires.
fn login_event() -> LoginEvent {
    LoginEvent {
        client: ClientView {
            id: 1,
            number: "1001".into(),
            username: Some("alice".into()),
            name: "Alice Nováková".into(),
            company: Some("Nováková s.r.o.".into()),
            email: Some("alice@example.com".into()),
            phone: Some("+420 601 234 567".into()),
            mobile: Some("+420 777 123 456".into()),
            invoice_group_id: 1,
            language: Some("cs".into()),
        },
        source_addr: Some("127.0.0.1".into()),
    }
}

struct Stats {
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// CPUs other processes kept busy meanwhile, on average (None where /proc cannot say).
    others: Option<f64>,
}

/// Busy CPU seconds: the whole machine (/proc/stat) and this process (/proc/self/stat). Linux
/// counts both in USER_HZ, 100 a second.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system (idle iowait) irq softirq steal
    let machine = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| cpu.get(i).copied().unwrap_or(0.0))
        .sum::<f64>();
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses: utime and stime are the 12th and 13th.
    let rest = me.rsplit_once(')')?.1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    Some((machine / 100.0, (f.get(11)? + f.get(12)?) / 100.0))
}

/// Times `n` calls of `f` one by one after `warmup` untimed ones; microseconds.
fn measure(n: usize, warmup: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..warmup {
        f();
    }
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f();
        ns.push(t.elapsed().as_nanos() as u64);
    }
    let wall = wall.elapsed().as_secs_f64();
    let others = match (cpu0, cpu_seconds()) {
        (Some((m0, p0)), Some((m1, p1))) if wall > 0.0 => {
            Some((((m1 - m0) - (p1 - p0)) / wall).max(0.0))
        }
        _ => None,
    };
    ns.sort_unstable();
    let us = |v: u64| v as f64 / 1000.0;
    let pct = |p: f64| us(ns[((ns.len() as f64 * p).ceil() as usize).clamp(1, ns.len()) - 1]);
    Stats {
        mean: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
        p50: pct(0.50),
        p99: pct(0.99),
        max: us(ns[ns.len() - 1]),
        others,
    }
}

fn row(what: &str, s: &Stats) {
    let others = s.others.map_or("?".to_string(), |o| format!("{o:.2}"));
    println!(
        "{what:<58} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {others:>7}",
        s.mean, s.p50, s.p99, s.max
    );
}

/// Runs `f` on a worker thread of a multi-thread tokio runtime, as a request handler would.
fn on_tokio_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    rt.block_on(async move { tokio::spawn(async move { f() }).await })
        .map_err(|e| format!("tokio task: {e}"))
}

/// What `Library::call` does around the FFI call, without it: a job through a bounded queue
/// shared by two worker threads (a mutex around the receiver) and the answer back on a
/// one-slot channel with a deadline. With `spin`, both sides poll their channel for up to that
/// long before they sleep on it (a possible change: a sleeping thread on an idle CPU takes
/// long to wake, in a VM above all).
fn thread_hop(n: usize, warmup: usize, spin: Option<Duration>) -> Stats {
    struct Job {
        input: Vec<u8>,
        reply: SyncSender<Vec<u8>>,
    }
    let (jobs, queue) = sync_channel::<Job>(256);
    let queue: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(queue));
    for _ in 0..2 {
        let queue = queue.clone();
        std::thread::spawn(move || {
            loop {
                let job = match queue.lock() {
                    Ok(rx) => match spin_then(spin, || rx.try_recv().ok()) {
                        Some(job) => job,
                        None => match rx.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                    },
                    Err(_) => return,
                };
                let _ = job.reply.send(job.input);
            }
        });
    }
    let payload = vec![0u8; 512];
    let stats = measure(n, warmup, || {
        let (reply, answer) = sync_channel(1);
        let job = Job {
            input: payload.clone(),
            reply,
        };
        if jobs.try_send(job).is_ok() && spin_then(spin, || answer.try_recv().ok()).is_none() {
            let _ = answer.recv_timeout(Duration::from_secs(2));
        }
    });
    drop(jobs);
    stats
}

/// Many calls at once, as under wrk: what the process spent.
struct Load {
    per_s: f64,
    /// CPU time of this process per call, in µs.
    cpu_us: f64,
    /// Threads the process gained meanwhile.
    threads: i64,
}

fn threads_now() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// `tasks` tasks on a 2-worker tokio runtime (the server's shape on this machine), each making
/// `call`s one after another for `secs`.
fn under_load<F, Fut>(tasks: usize, secs: f64, call: F) -> Result<Load, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let threads0 = threads_now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let call = Arc::new(call);
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let calls: u64 = rt.block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let call = call.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < until {
                        call().await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap_or(0);
        }
        total
    });
    let wall = start.elapsed().as_secs_f64();
    let threads = threads_now() - threads0;
    let cpu = match (cpu0, cpu_seconds()) {
        (Some((_, p0)), Some((_, p1))) => p1 - p0,
        _ => f64::NAN,
    };
    drop(rt);
    Ok(Load {
        per_s: calls as f64 / wall,
        cpu_us: cpu / calls.max(1) as f64 * 1e6,
        threads,
    })
}

/// A pool of two threads that answer each job with its input, like the loader's, for the
/// load comparison: `reply` is how the answer goes back.
type Reply = Box<dyn FnOnce(Vec<u8>) + Send>;

fn echo_pool() -> SyncSender<(Vec<u8>, Reply)> {
    let (jobs, queue) = sync_channel::<(Vec<u8>, Reply)>(256);
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..2 {
        let queue = queue.clone();
        std::thread::spawn(move || {
            loop {
                let job = match queue.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok((input, reply)) => reply(input),
                    Err(_) => return,
                }
            }
        });
    }
    jobs
}

/// Polls `f` for up to `spin`; `None` when it gave nothing in that time.
fn spin_then<T>(spin: Option<Duration>, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let spin = spin?;
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= spin {
            return None;
        }
        std::hint::spin_loop();
    }
}

/// The JSON work of one hook call on both sides of the boundary, on one thread: the host encodes
/// the call, the plugin decodes it and encodes its reply, the host decodes that. With
/// `echo_event` false the reply leaves the (unchanged) event out, as the protocol now does.
fn json_work(
    n: usize,
    warmup: usize,
    event: &Value,
    settings: &Map<String, Value>,
    echo_event: bool,
) -> Stats {
    measure(n, warmup, || {
        let call = Call::Hook(HookRequest {
            hook: "before_login".into(),
            event: event.clone(),
            settings: settings.clone(),
        });
        let input = serde_json::to_vec(&call).expect("encode call");
        let reply = match serde_json::from_slice::<Call>(&input).expect("decode call") {
            Call::Hook(req) => CallReply::Hook(HookReply::Continue {
                event: echo_event.then_some(req.event),
            }),
            Call::Page(_) => unreachable!("a hook call"),
        };
        let out = serde_json::to_vec(&reply).expect("encode reply");
        let back: CallReply = serde_json::from_slice(&out).expect("decode reply");
        std::hint::black_box(back);
    })
}

fn run(lib_path: &Path, n: usize, warmup: usize) -> Result<(), String> {
    let (dir, _keep) = plugin_folder(lib_path)?;
    let portal = Portal::assemble(Store::in_memory(), options(Vec::new(), Some(dir)))
        .map_err(|e| format!("assembling the portal: {e}"))?;
    if let Some(r) = portal.registry.refused.first() {
        return Err(format!("{} was refused: {}", r.file, r.reason));
    }
    let lib: Arc<Library> = portal
        .dynamic
        .iter()
        .find(|l| l.id == "outage-notice")
        .cloned()
        .ok_or("the library did not load as `outage-notice` (is it examples/outage-notice?)")?;
    if portal.settings.bool("outage_notice_block_logins", Some(1)) {
        return Err("outage_notice_block_logins is on; the trivial path needs it off".into());
    }
    let portal = Arc::new(portal);

    let typed = login_event();
    let event = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    // The call must do what it should before it is timed: continue, event unchanged.
    let mut check = event.clone();
    lib.hook("before_login", &mut check)
        .map_err(|v| format!("the hook refused the login: {}", v.message))?;
    if check != event {
        return Err(format!("the hook changed the event: {check}"));
    }
    let settings: Map<String, Value> = ["outage_notice_text", "outage_notice_block_logins"]
        .iter()
        .map(|k| (k.to_string(), portal.settings.value(k, Some(1))))
        .collect();

    println!(
        "dylib_hook: before_login through {} ({}), outage_notice_block_logins off",
        lib.id,
        lib.file.display()
    );
    println!(
        "{n} timed calls after {warmup} warm-up calls, one by one; {} CPUs; microseconds",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "(others: CPUs other processes kept busy meanwhile; well above 0, the figures are pessimistic)"
    );
    println!();
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "call", "mean", "p50", "p99", "max", "others"
    );

    // 1. The boundary on a plain thread.
    let dyn_plain = {
        let lib = lib.clone();
        let event = event.clone();
        measure(n, warmup, move || {
            let mut e = event.clone();
            let _ = std::hint::black_box(lib.hook("before_login", &mut e));
        })
    };
    row("Library::hook, plain thread", &dyn_plain);

    // 2. The boundary where the server calls it: a tokio worker (block_in_place).
    let dyn_tokio = {
        let lib = lib.clone();
        let event = event.clone();
        on_tokio_worker(move || {
            measure(n, warmup, move || {
                let mut e = event.clone();
                let _ = std::hint::black_box(lib.hook("before_login", &mut e));
            })
        })?
    };
    row("Library::hook, tokio worker (as the server)", &dyn_tokio);

    // 3. The whole dispatch of a login, typed event included.
    let run_plain = {
        let portal = portal.clone();
        let typed = typed.clone();
        measure(n, warmup, move || {
            let mut e = typed.clone();
            let _ = std::hint::black_box(portal.registry.hooks.run("before_login", &mut e));
        })
    };
    row("Hooks::run(LoginEvent) → dylib, plain thread", &run_plain);
    let run_tokio = {
        let portal = portal.clone();
        let typed = typed.clone();
        on_tokio_worker(move || {
            measure(n, warmup, move || {
                let mut e = typed.clone();
                let _ = std::hint::black_box(portal.registry.hooks.run("before_login", &mut e));
            })
        })?
    };
    row("Hooks::run(LoginEvent) → dylib, tokio worker", &run_tokio);

    // 3b. A page of the plugin (its Outages tab) through the boundary, without the rendering.
    let page_req = PageRequest {
        method: "GET".into(),
        path: "/".into(),
        query: BTreeMap::new(),
        form: BTreeMap::new(),
        client: typed.client.clone(),
        lang: "en".into(),
        settings: {
            let mut s = settings.clone();
            s.insert("outage_notice_text".into(), Value::from(NOTICE));
            s
        },
    };
    match lib.page(page_req.clone()) {
        Ok(PageReply::Render { template, .. }) if template == "outages.html" => {}
        other => return Err(format!("the page call answered {other:?}")),
    }
    let page_plain = {
        let lib = lib.clone();
        let req = page_req.clone();
        measure(n, warmup, move || {
            let _ = std::hint::black_box(lib.page(req.clone()));
        })
    };
    row("Library::page (GET /), plain thread", &page_plain);
    let page_tokio = {
        let lib = lib.clone();
        let req = page_req.clone();
        on_tokio_worker(move || {
            measure(n, warmup, move || {
                let _ = std::hint::black_box(lib.page(req.clone()));
            })
        })?
    };
    row("Library::page (GET /), tokio worker", &page_tokio);

    // 4. For comparison: a compiled-in handler that does nothing.
    let native = Portal::assemble(Store::in_memory(), options(vec![Box::new(NoopLogin)], None))
        .map_err(|e| format!("assembling the comparison portal: {e}"))?;
    let native_run = {
        let typed = typed.clone();
        measure(n, warmup, move || {
            let mut e = typed.clone();
            let _ = std::hint::black_box(native.registry.hooks.run("before_login", &mut e));
        })
    };
    row(
        "Hooks::run(LoginEvent) → compiled-in no-op (comparison)",
        &native_run,
    );

    // 5. Parts of the boundary alone.
    let json = json_work(n, warmup, &event, &settings, true);
    row("  part: JSON encode + decode, both sides", &json);
    let json_lean = json_work(n, warmup, &event, &settings, false);
    row(
        "  part: the same, reply without the unchanged event",
        &json_lean,
    );
    let hop = thread_hop(n, warmup, None);
    row(
        "  part: round trip to a worker thread (channels only)",
        &hop,
    );
    let hop_spin = thread_hop(n, warmup, Some(Duration::from_micros(50)));
    row("  part: the same, polling 50 µs before sleeping", &hop_spin);

    // 6. Under load: 64 requests at once on a 2-worker runtime, as wrk drives the server.
    println!();
    println!(
        "{:<58} {:>9} {:>9} {:>10}",
        "64 tasks on 2 tokio workers, 3 s each", "calls/s", "CPU µs", "+threads"
    );
    let load_row = |what: &str, l: &Load| {
        println!(
            "{what:<58} {:>9.0} {:>9.1} {:>10}",
            l.per_s, l.cpu_us, l.threads
        );
    };
    let page_load = {
        let lib = lib.clone();
        let req = page_req.clone();
        under_load(64, 3.0, move || {
            let lib = lib.clone();
            let req = req.clone();
            async move {
                let _ = std::hint::black_box(lib.page(req));
            }
        })?
    };
    load_row("Library::page (blocks in block_in_place)", &page_load);
    let jobs = echo_pool();
    let payload = vec![0u8; 1024];
    let blocking_load = {
        let jobs = jobs.clone();
        let payload = payload.clone();
        under_load(64, 3.0, move || {
            let jobs = jobs.clone();
            let payload = payload.clone();
            async move {
                tokio::task::block_in_place(|| {
                    let (tx, rx) = sync_channel(1);
                    let reply: Reply = Box::new(move |v| {
                        let _ = tx.send(v);
                    });
                    if jobs.try_send((payload, reply)).is_ok() {
                        let _ = rx.recv_timeout(Duration::from_secs(2));
                    }
                });
            }
        })?
    };
    load_row(
        "  part: hop, waiting in block_in_place (as now)",
        &blocking_load,
    );
    let async_load = {
        let jobs = jobs.clone();
        under_load(64, 3.0, move || {
            let jobs = jobs.clone();
            let payload = payload.clone();
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let reply: Reply = Box::new(move |v| {
                    let _ = tx.send(v);
                });
                if jobs.try_send((payload, reply)).is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
                }
            }
        })?
    };
    load_row(
        "  part: hop, awaiting a oneshot (possible change)",
        &async_load,
    );
    drop(jobs);

    let verdict = if dyn_tokio.mean <= TARGET_US && dyn_plain.mean <= TARGET_US {
        "PASS"
    } else {
        "FAIL"
    };
    println!();
    println!(
        "target: a trivial hook call through the dynamic boundary <= {TARGET_US} µs (mean, worse of plain thread and tokio worker): {:.2} µs: {verdict}",
        dyn_tokio.mean.max(dyn_plain.mean)
    );
    // For bench/plugins.sh.
    for (key, l) in [
        ("load_page", &page_load),
        ("load_hop_blocking", &blocking_load),
        ("load_hop_async", &async_load),
    ] {
        println!(
            "result {key} per_s={:.0} cpu_us={:.1} threads={}",
            l.per_s, l.cpu_us, l.threads
        );
    }
    for (key, s) in [
        ("hook_plain", &dyn_plain),
        ("hook_tokio", &dyn_tokio),
        ("run_plain", &run_plain),
        ("run_tokio", &run_tokio),
        ("run_native", &native_run),
        ("part_json", &json),
        ("part_json_lean", &json_lean),
        ("part_hop", &hop),
        ("part_hop_spin", &hop_spin),
        ("page_plain", &page_plain),
        ("page_tokio", &page_tokio),
    ] {
        println!(
            "result {key} mean={:.2} p50={:.2} p99={:.2} max={:.2} others={}",
            s.mean,
            s.p50,
            s.p99,
            s.max,
            s.others.map_or("?".to_string(), |o| format!("{o:.2}"))
        );
    }
    Ok(())
}
