//! Latency of a trivial hook function in an operator script (target: ≤ 20 µs per call, AST
//! cached, engine reused), through the whole dispatch a request pays (`Hooks::run` with the
//! typed event), on a portal assembled on an in-memory store with the demo data:
//!
//! - `before_login` handled by `fn before_login(event) { }` (the event with its client goes to
//!   the script and back), and, for comparison, by nobody;
//! - `info_panels` handled by `scripts/examples/outage-panel.rhai` for a client of the town it
//!   names (one panel back) and of another town (none).
//!
//! ```sh
//! cargo bench -p portico-core --bench script_hook
//! ```
//!
//! `bench/scripts.sh` runs it. Environment: `N` (timed calls, default 20000), `WARMUP` (default
//! 2000). Lines starting `result ` are for scripts.

use std::time::Instant;

use portico_core::internal::hooks::{ClientView, InfoPanelsEvent, LoginEvent};
use portico_core::internal::store::Store;
use portico_core::internal::{Portal, PortalOptions, demo, ops};

const TARGET_US: f64 = 20.0;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn portal(scripts: Option<&std::path::Path>) -> Portal {
    let mut opts = PortalOptions::new(std::env::temp_dir(), Vec::new());
    opts.scripts_dir = scripts.map(|p| p.to_path_buf());
    let portal = Portal::assemble(Store::in_memory(), opts).expect("assemble");
    demo::seed(&portal).expect("demo data");
    portal
}

/// Mean and 99th percentile in µs of `n` timed calls after `warmup` untimed ones.
fn time(n: usize, warmup: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let mut each = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        each.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    let mean = each.iter().sum::<f64>() / n as f64;
    each.sort_by(f64::total_cmp);
    (mean, each[(n * 99 / 100).min(n - 1)])
}

fn main() {
    let n = env_usize("N", 20_000);
    let warmup = env_usize("WARMUP", 2_000);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("trivial.rhai"),
        "fn before_login(event) { }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("outage-panel.rhai"),
        include_str!("../../scripts/examples/outage-panel.rhai"),
    )
    .expect("write");
    let with = portal(Some(dir.path()));
    let without = portal(None);
    let alice = ClientView::from(&ops::find_client(&with, "alice").expect("alice"));
    let bob = ClientView::from(&ops::find_client(&with, "bob").expect("bob"));
    let login = |portal: &Portal| {
        let mut e = LoginEvent {
            client: alice.clone(),
            source_addr: Some("127.0.0.1".into()),
        };
        let _ = std::hint::black_box(portal.registry.hooks.run("before_login", &mut e));
    };
    let (mean, p99) = time(n, warmup, || login(&with));
    println!(
        "before_login, trivial script: mean {mean:.2} µs, p99 {p99:.2} µs (target ≤ {TARGET_US} µs)"
    );
    println!("result hook_script_mean_us={mean:.2}");
    println!("result hook_script_p99_us={p99:.2}");
    let (base, _) = time(n, warmup, || login(&without));
    println!("before_login, no handler: mean {base:.2} µs");
    println!("result hook_none_mean_us={base:.2}");
    for (who, client, key) in [
        ("Blansko", &alice, "panel"),
        ("another town", &bob, "nopanel"),
    ] {
        let (mean, p99) = time(n, warmup, || {
            let mut e = InfoPanelsEvent {
                client: client.clone(),
                lang: "en".into(),
                panels: Vec::new(),
            };
            let _ = std::hint::black_box(with.registry.hooks.run("info_panels", &mut e));
        });
        println!(
            "info_panels, outage-panel.rhai, client in {who}: mean {mean:.2} µs, p99 {p99:.2} µs"
        );
        println!("result info_panels_{key}_mean_us={mean:.2}");
    }
    let status = ops::execute(&with, ops::OpRequest::ScriptsStatus).expect("status");
    print!("{status}");
    assert_eq!(
        status.matches("failures: 0 (0 in a row)").count(),
        2,
        "a script failed: nothing useful was timed"
    );
    println!(
        "result hook_target_met={}",
        if mean <= TARGET_US { "yes" } else { "no" }
    );
}
