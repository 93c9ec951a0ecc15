//! Dynamic plugins end to end: the example (`examples/outage-notice`) and a misbehaving fixture
//! (`tests/fixtures/misbehave-plugin`) are built with cargo, copied into a temporary plugin
//! folder and loaded by the real `portico` binary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Options, Server, csrf_of, repo_root};

/// Plugin builds share one target folder of their own (the test's own cargo may hold the
/// main one); one build at a time.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds a plugin crate and returns a copy of its library in a fresh folder of `dest`.
fn build_plugin(package: &str, features: &[&str], dest: &Path, file_name: &str) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let target = repo_root().join("target/plugin-tests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args([
            "build",
            "--quiet",
            "--locked",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p {package} failed");
    let built = target
        .join("debug")
        .join(format!("lib{}.so", package.replace('-', "_")));
    let to = dest.join(file_name);
    std::fs::copy(&built, &to).expect("copy library");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    to
}

/// A plugin folder only its owner may write, as the portal requires.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("plugin dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn with_plugins(dir: &Path) -> Server {
    Server::demo_with(Options {
        plugin_dir: Some(dir.to_path_buf()),
        ..Options::default()
    })
}

/// The text of `<p id="message">` in a misbehave page.
fn message(html: &str) -> String {
    let start = html.find("<p id=\"message\">").expect("message") + "<p id=\"message\">".len();
    html[start..start + html[start..].find("</p>").expect("end")].to_string()
}

#[tokio::test]
async fn the_example_plugin_adds_a_tab_a_setting_and_a_login_veto() {
    let dir = plugin_dir();
    build_plugin("outage-notice", &[], dir.path(), "liboutage_notice.so");
    let s = with_plugins(dir.path());
    assert!(
        s.log_text()
            .contains("dynamic plugin loaded plugin=outage-notice"),
        "{}",
        s.log_text()
    );

    // Hidden while the notice is empty: no menu entry, and the address answers 404.
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, home) = s.get_text(&alice, "/").await;
    assert!(!home.contains("href=\"/outage-notice/\""));
    assert_eq!(s.get_text(&alice, "/outage-notice/").await.0, 404);

    // A per-invoice-group setting it declares: Alice's group 1 gets a notice, Bob's does not.
    let (ok, out, err) = s.cli(&[
        "settings",
        "set",
        "outage_notice_text",
        "Fibre cut <Brno> & Blansko",
        "--group",
        "1",
    ]);
    assert!(ok, "{out}{err}");
    let (_, home) = s.get_text(&alice, "/").await;
    assert!(home.contains("href=\"/outage-notice/\""), "{home}");
    assert!(home.contains("Outages"));
    let (status, page) = s.get_text(&alice, "/outage-notice/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<p class=\"outage-notice\">Fibre cut &lt;Brno&gt; &amp; Blansko</p>"),
        "{page}"
    );
    assert!(
        page.contains("aria-current=\"page\""),
        "the tab is marked active: {page}"
    );
    let bob = s.login("bob", "bob-demo-pass").await;
    assert_eq!(s.get_text(&bob, "/outage-notice/").await.0, 404);

    // In Czech the tab has its Czech title.
    let (ok, out, err) = s.cli(&["settings", "set", "outage_notice_text", "Výpadek"]);
    assert!(ok, "{out}{err}");
    let r = bob
        .post(s.url("/lang"))
        .form(&[
            ("lang", "cs"),
            ("next", "/"),
            ("csrf", &csrf_of(&s.get_text(&bob, "/").await.1)),
        ])
        .send()
        .await
        .expect("switch language");
    assert_eq!(r.status(), 303);
    let (status, page) = s.get_text(&bob, "/outage-notice/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Výpadky"), "{page}");

    // The before_login veto: refused with the notice text, as 403, without a session.
    let (ok, out, err) = s.cli(&[
        "settings",
        "set",
        "outage_notice_block_logins",
        "on",
        "--group",
        "1",
    ]);
    assert!(ok, "{out}{err}");
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("Fibre cut &lt;Brno&gt; &amp; Blansko"),
        "{html}"
    );
    assert_eq!(s.get_text(&c, "/").await.0, 303, "no session was started");
    // Bob's group does not block.
    s.login("bob", "bob-demo-pass").await;

    // An empty notice refuses with the plugin's fallback, in the visitor's language.
    let (ok, out, err) = s.cli(&["settings", "set", "outage_notice_text", "", "--group", "1"]);
    assert!(ok, "{out}{err}");
    let r = s
        .client()
        .post(s.url("/sign/"))
        .header("Accept-Language", "cs")
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("Přihlašování je během výpadku pozastaveno."),
        "{html}"
    );

    let (ok, out, _) = s.cli(&["plugins", "list"]);
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.starts_with("outage-notice "))
        .expect("listed");
    assert!(line.contains("dynamic ("), "{line}");
    assert!(line.contains("liboutage_notice.so), loaded"), "{line}");
    assert!(out.contains("    tabs: outages\n"), "{out}");
    assert!(
        out.contains("    settings: outage_notice_text, outage_notice_block_logins\n"),
        "{out}"
    );
    let (ok, out, _) = s.cli(&["hooks"]);
    assert!(ok);
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("before_login ("))
        .take_while(|l| l.starts_with("before_login (") || l.starts_with("    "))
        .collect();
    assert_eq!(
        block.last(),
        Some(&"    handled by: outage-notice"),
        "{out}"
    );
}

#[tokio::test]
async fn libraries_that_do_not_fit_are_refused_and_the_portal_starts() {
    let dir = plugin_dir();
    build_plugin(
        "outage-notice",
        &["wrong-abi"],
        dir.path(),
        "libwrong_abi.so",
    );
    // A shared library without the entry symbol.
    let c_file = dir.path().join("nosym.c");
    std::fs::write(&c_file, "int not_a_plugin(void) { return 42; }\n").expect("c file");
    let so = dir.path().join("libnosym.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c_file)
        .status()
        .expect("gcc");
    assert!(status.success());
    std::fs::remove_file(&c_file).expect("rm");
    std::fs::write(dir.path().join("notes.txt"), "not a library\n").expect("text");

    let s = with_plugins(dir.path());
    let log = s.log_text();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dynamic plugin refused"))
        .collect();
    assert_eq!(refusals.len(), 3, "{log}");
    assert!(
        refusals.iter().any(|l| l
            .contains("built for plugin ABI version 999; this portal speaks version 1")
            && l.contains("libwrong_abi.so")),
        "{log}"
    );
    assert!(
        refusals.iter().any(|l| l
            .contains("no `portico_plugin_entry` symbol: not a Portico plugin")
            && l.contains("libnosym.so")),
        "{log}"
    );
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("not a loadable library") && l.contains("notes.txt")),
        "{log}"
    );
    let alice = s.login("alice", "alice-demo-pass").await;
    assert_eq!(s.get_text(&alice, "/").await.0, 200);
    assert_eq!(s.get_text(&alice, "/outage-notice/").await.0, 404);
    let (ok, out, _) = s.cli(&["plugins", "list"]);
    assert!(ok);
    assert_eq!(out.matches("refused:").count(), 3, "{out}");
}

#[tokio::test]
async fn a_plugin_folder_others_may_write_loads_nothing() {
    let dir = plugin_dir();
    build_plugin("outage-notice", &[], dir.path(), "liboutage_notice.so");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let s = with_plugins(dir.path());
    assert!(
        s.log_text().contains(
            "the plugin folder is writable by group or others (mode 777); no plugin loaded from it"
        ),
        "{}",
        s.log_text()
    );
    let (ok, out, err) = s.cli(&["settings", "get", "outage_notice_text"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("unknown setting `outage_notice_text`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_misbehaving_plugin_is_contained_then_disabled() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    for (key, value) in [
        ("plugin_max_failures", "4"),
        ("plugin_call_timeout_ms", "400"),
    ] {
        let (ok, out, err) = s.cli(&["settings", "set", key, value]);
        assert!(ok, "{out}{err}");
    }
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, page) = s.get_text(&alice, "/misbehave/").await;
    assert_eq!(status, 200);
    assert_eq!(message(&page), "fine");

    // 1: a panic in a page gives the themed error page; everything else keeps answering.
    let (status, page) = s.get_text(&alice, "/misbehave/panic").await;
    assert_eq!(status, 500);
    assert!(page.contains("Something went wrong"), "{page}");
    assert_eq!(s.get_text(&alice, "/healthz").await.0, 200);
    assert_eq!(s.get_text(&alice, "/invoicing/").await.0, 200);

    // 2: past the deadline the client gets a themed 504, in time.
    let started = Instant::now();
    let (status, page) = s.get_text(&alice, "/misbehave/sleep").await;
    assert_eq!(status, 504);
    assert!(page.contains("did not answer in time"), "{page}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(message(&s.get_text(&alice, "/misbehave/").await.1), "fine");

    let (ok, out, _) = s.cli(&["plugins", "list"]);
    assert!(ok);
    assert!(
        out.contains("libmisbehave.so), loaded, 2 failure(s) since start\n"),
        "{out}"
    );

    // 3: a panic in a before_login hook: the login goes on as if the plugin had no handler.
    let bob = s.login("bob", "bob-demo-pass").await;
    assert_eq!(s.get_text(&bob, "/").await.0, 200);

    // 4: a hook that answers past the deadline: the login waits for it (a hook runs on the
    // caller's thread), its answer is ignored and counted.
    let data = s.data_dir();
    let (ok, out, err) = common::portico(
        &[
            "client",
            "set-password",
            "1003",
            "--data",
            data.to_str().expect("utf-8"),
        ],
        Some("Slow-Turtle-Crossing-7\n"),
    );
    assert!(ok, "{out}{err}");
    let started = Instant::now();
    let r = s
        .client()
        .post(s.url("/sign/"))
        .form(&[("username", "1003"), ("password", "Slow-Turtle-Crossing-7")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303, "the login goes on without the late answer");
    assert!(started.elapsed() >= Duration::from_secs(3));

    // Four failures: disabled until restart. Its tab leaves the menu, its pages are gone,
    // the rest of the portal is untouched.
    let (status, _) = s.get_text(&alice, "/misbehave/").await;
    assert_eq!(status, 404);
    let (_, home) = s.get_text(&alice, "/").await;
    assert!(!home.contains("href=\"/misbehave/\""), "{home}");
    assert!(home.contains("href=\"/invoicing/\""));
    s.login("bob", "bob-demo-pass").await;
    let (ok, out, _) = s.cli(&["plugins", "list"]);
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.starts_with("misbehave "))
        .expect("listed");
    assert!(
        line.contains("disabled: 4 failures (last: answered after 3"),
        "{line}"
    );
    assert!(
        line.contains("past the deadline of 400 ms; answer ignored)"),
        "{line}"
    );
    let log = s.log_text();
    assert!(
        log.contains("plugin disabled until restart after 4 failures"),
        "{log}"
    );
    assert!(
        log.contains("plugin panicked: misbehave hook panic"),
        "{log}"
    );
    assert!(
        !log.contains("stack backtrace"),
        "plugin panics stay quiet: {log}"
    );
}

#[tokio::test]
async fn a_plugin_keeps_its_data_in_its_own_namespace_durably() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/misbehave/escape").await;
    let refused = "is not a tree name ([a-z0-9_-], at most 64); a plugin has only its own trees";
    assert_eq!(
        message(&page),
        format!(
            "refused: plugin `misbehave`: `../clients` {refused} | refused: plugin `misbehave`: `core:clients` {refused} | refused: plugin `misbehave`: `` {refused} | ok"
        )
    );
    for n in 1..=2 {
        let (_, page) = s.get_text(&alice, "/misbehave/counter").await;
        assert_eq!(message(&page), format!("visits={n}"));
    }
    // Acknowledged writes survive a restart.
    let data = s.stop();
    let s = Server::serve(
        data,
        Options {
            plugin_dir: Some(dir.path().to_path_buf()),
            ..Options::default()
        },
    );
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/misbehave/counter").await;
    assert_eq!(message(&page), "visits=3");
}

#[tokio::test]
async fn plugin_forms_need_the_session_token_and_this_origin() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let csrf = csrf_of(&s.get_text(&alice, "/misbehave/").await.1);
    let post = |fields: Vec<(&'static str, String)>| {
        alice.post(s.url("/misbehave/form")).form(&fields).send()
    };
    let r = post(vec![("text", "<b>hi</b>".into())])
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "no token");
    let r = post(vec![("text", "x".into()), ("csrf", "0".repeat(64))])
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "wrong token");
    let r = alice
        .post(s.url("/misbehave/form"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("text", "x"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "cross-site");
    let r = post(vec![("text", "<b>hi</b>".into()), ("csrf", csrf.clone())])
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert_eq!(
        message(&r.text().await.expect("body")),
        "posted=&lt;b&gt;hi&lt;/b&gt;"
    );
    let r = alice
        .get(s.url("/misbehave/redirect"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/misbehave/");
    // A menu button of a dynamic plugin, shown while its setting holds an address.
    let (_, home) = s.get_text(&alice, "/").await;
    assert!(!home.contains("menu-misbehave-help"));
    s.cli_ok(&[
        "settings",
        "set",
        "misbehave_help_url",
        "https://help.example.net/",
    ]);
    let (_, home) = s.get_text(&alice, "/").await;
    assert!(
        home.contains("<a href=\"https://help.example.net/\" class=\"menu-misbehave-help\""),
        "{home}"
    );
    // An external button says so to screen readers.
    assert!(home.contains(">Help<span class=\"sr-only\"> (opens in a new tab)</span></a>"));
    // Logged out, a plugin page sends the browser to the login page like any tab.
    let r = s
        .client()
        .get(s.url("/misbehave/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/sign/");
}

#[tokio::test]
async fn parallel_updates_through_the_host_lose_nothing() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let visits = (0..20).map(|_| {
        let c = alice.clone();
        let url = s.url("/misbehave/counter");
        tokio::spawn(async move {
            let html = c
                .get(url)
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("body");
            message(&html)
        })
    });
    let mut seen = Vec::new();
    for v in visits {
        seen.push(v.await.expect("task"));
    }
    seen.sort();
    let mut expected: Vec<String> = (1..=20).map(|n| format!("visits={n}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every visit counted once");
    // An oversized form is 413, like core's forms.
    let csrf = csrf_of(&s.get_text(&alice, "/misbehave/").await.1);
    let r = alice
        .post(s.url("/misbehave/form"))
        .form(&[("csrf", csrf.as_str()), ("text", &"x".repeat(20_000))])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn a_theme_overrides_a_dynamic_plugins_template_and_theme_check_knows_it() {
    let dir = plugin_dir();
    build_plugin("outage-notice", &[], dir.path(), "liboutage_notice.so");
    let themes = tempfile::tempdir().expect("themes");
    common::copy_tree(&repo_root().join("themes"), themes.path());
    let own = themes.path().join("default/templates/outage-notice");
    std::fs::create_dir_all(&own).expect("mkdir");
    std::fs::write(
        own.join("outages.html"),
        "{% extends \"plugins/outage-notice/outages.html\" %}\
         {% block title %}THEMED {{ super() }}{% endblock %}",
    )
    .expect("write");
    let themes_arg = themes.path().to_str().expect("utf-8");
    let plugins_arg = dir.path().to_str().expect("utf-8");
    let (ok, out, err) = common::portico(
        &[
            "theme",
            "check",
            "default",
            "--themes",
            themes_arg,
            "--plugin-dir",
            plugins_arg,
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "default: ok");
    let (ok, out, _) =
        common::portico(&["theme", "check", "default", "--themes", themes_arg], None);
    assert!(
        !ok,
        "without the plugin the override extends nothing: {out}"
    );
    assert!(out.contains("plugins/outage-notice/outages.html"), "{out}");

    let s = Server::demo_with(Options {
        themes: Some(themes.path().to_path_buf()),
        plugin_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "outage_notice_text", "Fibre cut"]);
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&alice, "/outage-notice/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>THEMED Outages"), "{html}");
    assert!(
        html.contains("<p class=\"outage-notice\">Fibre cut</p>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_dynamic_plugin_fires_the_hooks_it_declares_and_no_others() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/misbehave/ping?text=hello").await;
    assert_eq!(message(&page), "pinged=HELLO", "amended by its handler");
    let (_, page) = s.get_text(&alice, "/misbehave/ping?text=no").await;
    assert_eq!(message(&page), "vetoed=ping refused");
    let (_, page) = s.get_text(&alice, "/misbehave/fake-login").await;
    assert_eq!(
        message(&page),
        "error=plugin `misbehave` may fire only the hooks it declares, not `before_login`"
    );
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains(
            "before_misbehave_ping (declared by misbehave; may refuse)\n    The misbehave plugin pings itself.\n    event.text [amendable]: what was sent\n    handled by: misbehave\n"
        ),
        "{hooks}"
    );
}

#[tokio::test]
async fn a_plugin_hears_of_consent_changes_and_adds_to_the_data_export() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/misbehave/consent-seen").await;
    assert_eq!(message(&page), "none");
    // Alice withdraws the demo's required consent (confirmed); the listener hears of it.
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    let field = |name: &str| {
        let card = &html[html.find("id=\"consent-1\"").expect("consent 1")..];
        let marker = format!("name=\"{name}\" value=\"");
        let at = card.find(&marker).expect(name) + marker.len();
        card[at..at + card[at..].find('"').expect("end")].to_string()
    };
    let r = alice
        .post(s.url("/gdpr/consent"))
        .form(&[
            ("csrf", field("csrf").as_str()),
            ("document", "1"),
            ("version", field("version").as_str()),
            ("hash", field("hash").as_str()),
            ("seen", field("seen").as_str()),
            ("action", "withdraw"),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let (_, page) = s.get_text(&alice, "/misbehave/consent-seen").await;
    assert_eq!(message(&page), "withdraw 1 v1 by 1001");
    // The export has the plugin's section; the GDPR plugin's own sections stay its own.
    let (_, text) = s.get_text(&alice, "/gdpr/export.json").await;
    let export: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        export["sections"]["misbehave_notes"][0]["note"],
        "kept by misbehave"
    );
    assert_eq!(
        export["sections"]["personal_data"]["name"],
        "Alice Nováková"
    );
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains("event.required: whether the document is a required consent\n    handled by: misbehave\n"),
        "{hooks}"
    );
}

/// A multipart body of text fields, as the helpdesk's forms send them.
fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----portico-plugins-test";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

#[tokio::test]
async fn a_plugin_vetoes_and_amends_tickets_and_hears_of_replies() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    let alice = s.login("alice", "alice-demo-pass").await;
    let create = |subject: &'static str| {
        let (s, alice) = (&s, &alice);
        async move {
            let (_, html) = s.get_text(alice, "/helpdesk/new").await;
            let marker = "name=\"key\" value=\"";
            let at = html.find(marker).expect("key") + marker.len();
            let key = html[at..at + html[at..].find('"').expect("end")].to_string();
            let (ct, body) = multipart(&[
                ("csrf", &csrf_of(&html)),
                ("key", &key),
                ("subject", subject),
                ("text", "Hello"),
            ]);
            let r = alice
                .post(s.url("/helpdesk/new"))
                .header("Content-Type", ct)
                .body(body)
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    // A veto: the client reads the plugin's message, nothing is stored, no listener hears.
    let (status, body) = create("forbidden topic").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("role=\"alert\">Tickets about that are not taken here.</p>"),
        "{body}"
    );
    assert_eq!(
        s.cli_ok(&["helpdesk", "tickets", "--client", "alice"])
            .lines()
            .count(),
        2
    );
    let (_, page) = s.get_text(&alice, "/misbehave/ticket-seen").await;
    assert_eq!(
        message(&page),
        "after_ticket_create: none; after_ticket_reply: none"
    );
    // Amended subject, text and tags are stored; client and department are not amendable.
    let (status, body) = create("Router").await;
    assert_eq!(status, 303, "{body}");
    let shown = s.cli_ok(&["helpdesk", "show", "3"]);
    assert!(shown.starts_with("ticket #3 \"[web] Router\"\n"), "{shown}");
    assert!(shown.contains("department: Customer care\n"), "{shown}");
    assert!(shown.contains("client 1001 (Alice Nováková)"), "{shown}");
    assert!(
        shown.contains("tags: from-hook, Customer care\n"),
        "{shown}"
    );
    assert!(
        shown.contains("    Hello\n    (sent from the portal)\n"),
        "{shown}"
    );
    let (_, list) = s.get_text(&alice, "/helpdesk/").await;
    assert!(list.contains("[web] Router"), "{list}");
    // An operator's reply fires after_ticket_reply.
    s.cli_ok(&[
        "helpdesk",
        "reply",
        "3",
        "--text",
        "On it",
        "--channel",
        "sms",
    ]);
    let (_, page) = s.get_text(&alice, "/misbehave/ticket-seen").await;
    assert_eq!(
        message(&page),
        "after_ticket_create: #3 [web] Router by 1001 (2); after_ticket_reply: #3 [web] Router by 1001 (sms)"
    );
    // In Czech, the veto's Czech message.
    let (_, html) = s.get_text(&alice, "/").await;
    let r = alice
        .post(s.url("/lang"))
        .form(&[("csrf", csrf_of(&html).as_str()), ("lang", "cs")])
        .send()
        .await
        .expect("lang");
    assert_eq!(r.status(), 303);
    let (status, body) = create("forbidden again").await;
    assert_eq!(status, 422);
    assert!(
        body.contains("role=\"alert\">Požadavky na toto téma zde nepřijímáme.</p>"),
        "{body}"
    );
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains("event.tags [amendable]: an array of strings stored on the ticket"),
        "{hooks}"
    );
}

#[tokio::test]
async fn a_plugin_vetoes_and_amends_sms_and_hears_each_one_sent() {
    let dir = plugin_dir();
    build_plugin("misbehave-plugin", &[], dir.path(), "libmisbehave.so");
    let s = with_plugins(dir.path());
    // The portal's own /healthz as the HTTP gateway: a GET answered 200 is accepted.
    s.cli_ok(&["settings", "set", "sms_gateway_method", "GET"]);
    s.cli_ok(&[
        "settings",
        "set",
        "sms_gateway_url",
        &format!("{}/healthz?to={{to}}", s.base),
    ]);
    let alice = s.login("alice", "alice-demo-pass").await;
    let send = |text: &'static str| {
        let (s, alice) = (&s, &alice);
        async move {
            let (_, html) = s.get_text(alice, "/sms/").await;
            let marker = "name=\"key\" value=\"";
            let at = html.find(marker).expect("key") + marker.len();
            let key = html[at..at + html[at..].find('"').expect("end")].to_string();
            let r = alice
                .post(s.url("/sms/send"))
                .form(&[
                    ("csrf", csrf_of(&html).as_str()),
                    ("key", key.as_str()),
                    ("to", "601 123 456"),
                    ("text", text),
                    ("action", "send"),
                ])
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    // A veto: shown on the form, nothing queued or charged.
    let (status, page) = send("forbidden words").await;
    assert_eq!(status, 422);
    assert!(
        page.contains("role=\"alert\">Such messages are not sent from here.</p>"),
        "{page}"
    );
    assert!(page.contains("You can send 20 more"), "{page}");
    // An amended number that is not one is refused like the client's own.
    let (status, page) = send("bad number").await;
    assert_eq!(status, 422);
    assert!(page.contains("This is not a valid phone number."), "{page}");
    assert_eq!(s.cli_ok(&["sms", "queue", "--all"]), "no messages\n");

    // Amended text and recipient are what is queued, sent and heard of.
    let (status, _) = send("please redirect").await;
    assert_eq!(status, 303);
    let start = Instant::now();
    loop {
        let (_, page) = s.get_text(&alice, "/misbehave/sms-seen").await;
        let seen = message(&page);
        if seen != "after_sms_sent: none" {
            assert_eq!(
                seen,
                "after_sms_sent: #1 to +420601999999 &quot;please redirect (ISP)&quot; (1 part) by 1001"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = s.cli_ok(&["sms", "queue", "--all"]);
    assert!(all.starts_with("#1 sent to +420601999999 "), "{all}");
}
