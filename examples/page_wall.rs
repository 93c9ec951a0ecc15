//! Where a logged-in page's time goes without the network: the standalone comparison for the
//! page figures of `bench/run.sh` (bench/README.md, "The page wall").
//!
//! Two demo portals are built in memory with the compiled-in plugins, the real routes and
//! Rocket's local client (no socket, no hyper, no kernel):
//!
//! - **theme**: the repository's `themes/` folder, as `portico demo` serves it (or the folder
//!   in `THEMES`, to compare another version of it);
//! - **layout**: the theme's layout (head, menu, footer) around page templates that write one
//!   line (`{{ client.name }}`);
//! - **bare**: those one-line pages in an empty layout, so the page does all its work
//!   (session, client, settings, menu, the tab's reads and context) but Tera has next to
//!   nothing to render.
//!
//! Each is logged in as alice; then each page is requested `N` times (after `WARMUP`) on one
//! thread and the mean wall time per request printed. theme − bare is the templates' share
//! (theme − layout the page's own template, layout − bare the layout's), bare − `/healthz` the
//! rest of the page's own work.
//!
//! ```sh
//! cargo run --release --example page_wall
//! ```

use std::path::Path;
use std::time::Instant;

use portico_core::internal::{Portal, PortalOptions, demo, store::Store, web};
use portico_core::rocket::http::{ContentType, Status};
use portico_core::rocket::local::blocking::Client;

/// The binary's own list of compiled-in plugins.
#[path = "../src/plugins.rs"]
mod plugins;

const PAGES: [&str; 4] = ["/healthz", "/", "/services/", "/invoicing/"];

/// The empty layout of the bare portal.
const BARE_LAYOUT: (&str, &str) = (
    "layout.html",
    "{% block title %}{% endblock title %}{% block head %}{% endblock head %}{% block content %}{% endblock content %}",
);

/// The one-line page templates (every one the timed pages use).
const ONE_LINE: [(&str, &str); 3] = [
    (
        "information.html",
        "{% extends \"layout.html\" %}{% block content %}{{ client.name }}{% endblock content %}",
    ),
    (
        "services.html",
        "{% extends \"layout.html\" %}{% block content %}{{ client.name }}{% endblock content %}",
    ),
    (
        "invoicing/invoices.html",
        "{% extends \"layout.html\" %}{% block content %}{{ client.name }}{% endblock content %}",
    ),
];

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A demo portal on an in-memory store with the given themes folder, alice logged in.
fn logged_in(themes: &Path) -> Client {
    let opts = PortalOptions {
        themes_dir: Some(themes.to_path_buf()),
        ..PortalOptions::new(std::env::temp_dir(), plugins::compiled_in())
    };
    let portal = Portal::assemble(Store::in_memory(), opts).expect("assemble the portal");
    demo::seed(&portal).expect("demo data");
    let rocket = web::build(portal, web::rocket_config(([127, 0, 0, 1], 0).into()));
    let client = Client::tracked(rocket).expect("local client");
    let login = client
        .post("/sign/")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password={}",
            demo::LOGINS[0].password
        ))
        .dispatch();
    assert_eq!(login.status(), Status::SeeOther, "alice logs in");
    drop(login);
    client
}

/// Mean µs per request of `path`, after checking it answers 200.
fn mean_us(client: &Client, path: &str, n: usize, warmup: usize) -> f64 {
    let first = client.get(path).dispatch();
    assert_eq!(first.status(), Status::Ok, "{path}");
    for _ in 0..warmup {
        std::hint::black_box(client.get(path).dispatch().into_bytes());
    }
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(client.get(path).dispatch().into_bytes());
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// A themes folder whose default theme has these templates (the rest come built in).
fn themes_with(templates: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in templates {
        let file = dir.path().join("default/templates").join(name);
        std::fs::create_dir_all(file.parent().expect("folder")).expect("create");
        std::fs::write(&file, text).expect("write");
    }
    dir
}

fn main() {
    let n = env_usize("N", 5_000);
    let warmup = env_usize("WARMUP", 500);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layout = themes_with(&ONE_LINE);
    let bare = themes_with(&[ONE_LINE.as_slice(), &[BARE_LAYOUT]].concat());
    let themes = std::env::var_os("THEMES").map_or_else(|| root.join("themes"), Into::into);
    let portals = [
        logged_in(&themes),
        logged_in(layout.path()),
        logged_in(bare.path()),
    ];
    println!("mean wall time per request on one thread, Rocket's local client, N={n}");
    println!();
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>10}",
        "page", "theme µs", "layout µs", "bare µs", "templates"
    );
    for path in PAGES {
        let [t, l, b] = portals.each_ref().map(|p| mean_us(p, path, n, warmup));
        println!(
            "{path:<14} {t:>9.1} {l:>9.1} {b:>9.1} {:>8.0} %",
            100.0 * (t - b) / t
        );
    }
}
