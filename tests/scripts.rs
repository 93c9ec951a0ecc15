//! Operator scripts end to end, through the real `portico` binary over HTTP: the login veto and
//! Information-panel examples, hot reload of good and broken edits, hostile scripts stopped
//! while the portal serves other clients, and `portico scripts status|check` with the portal
//! running (control socket) and stopped.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Options, Server, portico, repo_root};

fn example(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("scripts/examples").join(name)).expect("example")
}

fn server_with_scripts(dir: &Path) -> Server {
    Server::demo_with(Options {
        scripts: Some(dir.to_path_buf()),
        ..Options::default()
    })
}

async fn try_login(s: &Server, user: &str, password: &str, lang: &str) -> (u16, String) {
    let r = s
        .client()
        .post(s.url("/sign/"))
        .header("Accept-Language", lang)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Waits until `scripts status` (through the control socket) says `wanted`.
async fn wait_for_status(s: &Server, wanted: &str) -> String {
    let start = Instant::now();
    loop {
        let out = s.cli_ok(&["scripts", "status"]);
        if out.contains(wanted) {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "status never said {wanted:?}: {out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_login_veto_example_refuses_in_both_languages() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("unpaid-invoices-login.rhai"),
        example("unpaid-invoices-login.rhai"),
    )
    .expect("write");
    let s = server_with_scripts(dir.path());
    // Alice has paid everything: she gets in.
    let (status, _) = try_login(&s, "alice", "alice-demo-pass", "en").await;
    assert_eq!(status, 303);
    // An invoice of hers issued 90 days ago and not paid, from the billing system.
    let issued = chrono::Utc::now().date_naive() - chrono::Days::new(90);
    let bundle = serde_json::json!({
        "format": "portico-import/1",
        "invoices": [{
            "id": 990001, "client_id": 1, "number": "FV-LATE-1",
            "issued": issued.to_string(), "due": (issued + chrono::Days::new(14)).to_string(),
            "amount": "450.00", "paid": false
        }]
    });
    let file = dir.path().join("late.json");
    std::fs::write(&file, bundle.to_string()).expect("bundle");
    s.cli_ok(&["import", file.to_str().expect("path")]);
    let (status, html) = try_login(&s, "alice", "alice-demo-pass", "en").await;
    assert_eq!(status, 403, "{html}");
    assert!(
        html.contains("Your access is suspended: invoice FV-LATE-1 has been unpaid for more than 60 days. Please pay it or call us."),
        "{html}"
    );
    let (status, html) = try_login(&s, "alice", "alice-demo-pass", "cs").await;
    assert_eq!(status, 403);
    assert!(
        html.contains("Váš přístup je pozastaven: faktura FV-LATE-1 není zaplacena déle než 60 dní. Uhraďte ji prosím nebo nám zavolejte."),
        "{html}"
    );
    // Bob is not touched; a wrong password is still a wrong password (the hook never runs).
    let (status, _) = try_login(&s, "bob", "bob-demo-pass", "en").await;
    assert_eq!(status, 303);
    let (status, html) = try_login(&s, "alice", "wrong", "en").await;
    assert_eq!(status, 401);
    assert!(!html.contains("FV-LATE-1"));
    let out = s.cli_ok(&["scripts", "status"]);
    assert!(
        out.contains("unpaid-invoices-login.rhai: active\n    hooks: before_login\n    calls: 4, failures: 0 (0 in a row)"),
        "{out}"
    );
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains("    handled by: script unpaid-invoices-login.rhai\n"),
        "{hooks}"
    );
}

async fn information(s: &Server, c: &reqwest::Client, lang: &str) -> String {
    let r = c
        .get(s.url("/"))
        .header("Accept-Language", lang)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("body")
}

#[tokio::test]
async fn the_outage_panel_shows_and_edits_apply_live_while_broken_ones_do_not() {
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("outage-panel.rhai");
    std::fs::write(&script, example("outage-panel.rhai")).expect("write");
    let s = server_with_scripts(dir.path());
    // Alice lives in Blansko: she sees the panel, rendered by the theme, in her language.
    let alice = s.login("alice", "alice-demo-pass").await;
    let html = information(&s, &alice, "en").await;
    assert!(
        html.contains("<h2 id=\"panel-1-heading\">Outage in Blansko</h2>\n  <p class=\"body\">Because of repairs to the line, the connection in Blansko may be down today between 13:00 and 15:00. We are sorry.</p>"),
        "{html}"
    );
    // Bob lives elsewhere.
    let bob = s.login("bob", "bob-demo-pass").await;
    let bob_html = information(&s, &bob, "en").await;
    assert!(!bob_html.contains("Blansko<br>") && !bob_html.contains("info-panel"));

    // A good edit is live within a second; what a script returns is escaped by the theme.
    std::fs::write(
        &script,
        r#"fn info_panels(event) {
            [#{ title: "Planned <works>", rows: [["When", "Friday"], ["Where", event.client.city]] }]
        }"#,
    )
    .expect("edit");
    let edited = Instant::now();
    let took = Server::wait_for(Duration::from_secs(3), || async {
        information(&s, &alice, "en")
            .await
            .contains("Planned &lt;works&gt;")
    })
    .await
    .expect("the edit applies");
    assert!(took < Duration::from_secs(1), "applied after {took:?}");
    let html = information(&s, &alice, "en").await;
    assert!(
        html.contains("<dt>When</dt><dd>Friday</dd><dt>Where</dt><dd>Blansko</dd>"),
        "{html}"
    );
    assert!(edited.elapsed() < Duration::from_secs(2));

    // A broken edit is reported with its line and column; the last good version stays.
    std::fs::write(&script, "fn info_panels(event) {\n  [#{ title: }]\n}\n").expect("edit");
    let status = wait_for_status(&s, "compile error").await;
    assert!(
        status.contains("outage-panel.rhai: compile error: line 2, column 14: ")
            && status.contains("; the previous version stays active\n    hooks: info_panels"),
        "{status}"
    );
    assert!(
        information(&s, &alice, "en")
            .await
            .contains("Planned &lt;works&gt;")
    );
    let log = s.log_text();
    assert!(
        log.contains(
            "script does not compile (the previous version stays active): line 2, column 14"
        ),
        "{log}"
    );

    // `scripts check` through the running portal.
    let (ok, out, err) = s.cli(&["scripts", "check", script.to_str().expect("path")]);
    assert!(!ok);
    assert!(
        err.contains("outage-panel.rhai: does not compile: line 2, column 14:"),
        "{err}{out}"
    );
    let good = dir.path().join("good.rhai.txt");
    std::fs::write(&good, example("unpaid-invoices-login.rhai")).expect("write");
    let out = s.cli_ok(&["scripts", "check", good.to_str().expect("path")]);
    assert!(
        out.ends_with("good.rhai.txt: compiles; handles before_login\n"),
        "{out}"
    );

    // Removing the file removes its panel.
    std::fs::remove_file(&script).expect("rm");
    let gone = Server::wait_for(Duration::from_secs(3), || async {
        !information(&s, &alice, "en").await.contains("info-panel")
    })
    .await;
    assert!(gone.is_some_and(|t| t < Duration::from_secs(1)), "{gone:?}");

    // With the portal stopped, status and check open the folders directly.
    std::fs::write(&script, example("outage-panel.rhai")).expect("write");
    let data = s.data_dir();
    let folder = s.stop();
    let data = data.to_str().expect("path");
    let scripts = dir.path().to_str().expect("path");
    let (ok, out, err) = portico(
        &["scripts", "status", "--data", data, "--scripts", scripts],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "outage-panel.rhai: active\n    hooks: info_panels\n    calls: 0, failures: 0"
        ),
        "{out}"
    );
    let (ok, out, err) = portico(
        &[
            "scripts",
            "check",
            script.to_str().expect("path"),
            "--data",
            data,
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.ends_with("outage-panel.rhai: compiles; handles info_panels\n"),
        "{out}"
    );
    drop(folder);
}

/// Each hostile script runs on Alice's Information page, one at a time (hot reload), with a
/// deadline of 300 ms so there is time to see that the portal serves others while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_scripts_are_stopped_within_a_second_while_others_are_served() {
    let dir = tempfile::tempdir().expect("dir");
    let s = server_with_scripts(dir.path());
    s.cli_ok(&["settings", "set", "script_timeout_ms", "300"]);
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let runtime: [(&str, &str, &str); 6] = [
        // An empty loop may reach the operations limit before the deadline.
        (
            "loop",
            "fn info_panels(event) { loop { } }",
            "ran too many operations|ran past the deadline of 300 ms",
        ),
        (
            "recursion",
            "fn deeper(n) { deeper(n + 1) }\nfn info_panels(event) { deeper(0) }",
            "called functions too deep",
        ),
        (
            "doubling",
            "fn info_panels(event) { let s = \"x\"; loop { s += s; } }",
            "grew past its limit",
        ),
        (
            "array",
            "fn info_panels(event) { let a = []; a.pad(1000000000, 0); }",
            "grew past its limit",
        ),
        (
            "unknown",
            "fn info_panels(event) { launch_missiles(1) }",
            "Function not found: launch_missiles",
        ),
        (
            "busy",
            "fn info_panels(event) { let t = now(); while now() < t + 3600 { } }",
            "ran past the deadline of 300 ms",
        ),
    ];
    for (i, (name, source, why)) in runtime.iter().enumerate() {
        let file = format!("{i}-{name}.rhai");
        std::fs::write(dir.path().join(&file), source).expect("write");
        wait_for_status(&s, &format!("{file}: active")).await;
        // Alice's page runs the script; meanwhile Bob's requests are answered.
        let page = {
            let s_url = s.url("/");
            let alice = alice.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = alice.get(s_url).send().await.expect("get");
                let status = r.status().as_u16();
                let body = r.text().await.expect("body");
                (status, body, started.elapsed())
            })
        };
        let mut served = 0;
        let mut slowest = Duration::ZERO;
        while !page.is_finished() {
            let started = Instant::now();
            let r = bob.get(s.url("/healthz")).send().await.expect("healthz");
            assert_eq!(r.status().as_u16(), 200);
            slowest = slowest.max(started.elapsed());
            served += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, body, took) = page.await.expect("join");
        assert_eq!(status, 200, "{name}: the page is served without the panel");
        assert!(!body.contains("info-panel"), "{name}");
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
        assert!(
            slowest < Duration::from_millis(500),
            "{name}: another client waited {slowest:?}"
        );
        if *name == "busy" {
            assert!(
                served >= 3,
                "{name}: only {served} requests served meanwhile"
            );
        }
        let status = s.cli_ok(&["scripts", "status"]);
        let line = status
            .lines()
            .skip_while(|l| !l.starts_with(&file))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(line.contains("failures: 1 (1 in a row)"), "{name}: {line}");
        let log = s.log_text();
        assert!(
            log.lines().any(|l| l.contains("script stopped")
                && l.contains(&file)
                && (l.contains("(line ") || l.contains("(in fn info_panels)"))
                && why.split('|').any(|w| l.contains(w))),
            "{name}: {why} not logged:\n{log}"
        );
        std::fs::remove_file(dir.path().join(&file)).expect("rm");
        wait_for_status(&s, "no scripts").await;
        println!("{name}: page {took:?}, {served} other requests meanwhile, slowest {slowest:?}");
    }
    // import and eval do not compile: the script never runs; the error names line and column.
    for (name, source, why) in [
        (
            "import",
            "import \"os\" as os;\nfn info_panels(event) { os::run(\"rm\") }",
            "compile error: line 1, column 1: 'import' is a reserved keyword; not loaded",
        ),
        (
            "eval",
            "fn info_panels(event) {\n  eval(\"[]\")\n}",
            "compile error: line 2, column 3: ",
        ),
    ] {
        let file = format!("{name}.rhai");
        std::fs::write(dir.path().join(&file), source).expect("write");
        let status = wait_for_status(&s, &format!("{file}: compile error")).await;
        assert!(status.contains(&format!("{file}: {why}")), "{status}");
        let started = Instant::now();
        let html = information(&s, &alice, "en").await;
        assert!(!html.contains("info-panel"));
        assert!(started.elapsed() < Duration::from_secs(1));
        std::fs::remove_file(dir.path().join(&file)).expect("rm");
        wait_for_status(&s, "no scripts").await;
    }
}
