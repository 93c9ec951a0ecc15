//! Theme renders are contained: a template that loops cannot stop the portal, a template that
//! fails falls back to the compiled-in page, and a broken theme at start-up loses only the
//! broken template.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, copy_tree, portico, repo_root};

/// A private copy of the repository's themes to edit freely.
fn themes_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&repo_root().join("themes"), dir.path());
    dir
}

/// Puts `snippet` at the start of the content block of a default-theme template.
fn inject(themes: &Path, template: &str, snippet: &str) {
    let file = themes.join("default/templates").join(template);
    let src = std::fs::read_to_string(&file).expect("read template");
    let marker = "{% block content %}";
    assert!(src.contains(marker), "{template} has a content block");
    let edited = src.replacen(marker, &format!("{marker}{snippet}"), 1);
    std::fs::write(&file, edited).expect("write template");
}

/// 10^10 iterations that write a byte each: hours of work, well inside `range`'s limit.
const LOOP_WITH_OUTPUT: &str =
    "{% for i in range(end=100000) %}{% for j in range(end=100000) %}.{% endfor %}{% endfor %}";
/// The same without output: nothing the renderer writes can notice the deadline.
const LOOP_WITHOUT_OUTPUT: &str = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% set x = j %}{% endfor %}{% endfor %}";

fn quick_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Every other page answers within a second while `looping` requests are in flight.
async fn others_answer_meanwhile(s: &Server) {
    let c = quick_client();
    for path in [
        "/healthz",
        "/static/style.css",
        "/sign/forgot/",
        "/static/colors.css",
    ] {
        let start = Instant::now();
        let r = c.get(s.url(path)).send().await;
        let r = r.unwrap_or_else(|e| panic!("{path} did not answer within 1 s: {e}"));
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.expect("body");
        assert!(!body.is_empty(), "{path} has a body");
        println!("{path} answered in {} ms", start.elapsed().as_millis());
    }
}

async fn contained(snippet: &str) {
    let themes = themes_copy();
    inject(themes.path(), "sign.html", snippet);
    let mut s = Server::demo_with_themes(themes.path());

    // Eight clients hit the looping page at once.
    let mut loops = Vec::new();
    for _ in 0..8 {
        let url = s.url("/sign/");
        loops.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let start = Instant::now();
            let r = c.get(url).send().await.expect("the looping page answers");
            let status = r.status().as_u16();
            (status, r.text().await.expect("body"), start.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    others_answer_meanwhile(&s).await;
    for l in loops {
        let (status, body, took) = l.await.expect("task");
        // The fallback: the compiled-in page, whole.
        assert_eq!(status, 200);
        assert!(
            body.contains("name=\"username\""),
            "fallback sign page: {body}"
        );
        assert!(!body.contains("...."), "no output of the looping template");
        assert!(took < Duration::from_secs(3), "answered in {took:?}");
    }
    // Quarantined: the next request does not try the template again.
    let start = Instant::now();
    let r = quick_client()
        .get(s.url("/sign/"))
        .send()
        .await
        .expect("sign");
    assert_eq!(r.status(), 200);
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(200),
        "quarantined page took {took:?}"
    );
    others_answer_meanwhile(&s).await;
    let log = s.log_text();
    assert_eq!(
        log.matches("quarantined").count(),
        1,
        "logged once, with template and theme:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("quarantined"))
        .expect("line");
    assert!(
        line.contains("sign.html") && line.contains("default"),
        "{line}"
    );
    let status = s.cli_ok(&["theme", "status"]);
    assert!(
        status.contains("active theme: default (global)"),
        "{status}"
    );
    assert!(
        status.contains("quarantined (ran past the render deadline): sign.html"),
        "{status}"
    );

    let took = s.terminate(Duration::from_secs(10));
    assert!(took.is_some(), "SIGTERM stopped the portal within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_template_cannot_stop_the_portal() {
    contained(LOOP_WITH_OUTPUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_template_that_writes_nothing_cannot_stop_the_portal_either() {
    contained(LOOP_WITHOUT_OUTPUT).await;
}

/// The repository's themes plus the test fixtures (the `company` child theme).
fn themes_with_fixtures() -> tempfile::TempDir {
    let dir = themes_copy();
    copy_tree(&repo_root().join("tests/fixtures/themes"), dir.path());
    dir
}

#[tokio::test]
async fn a_theme_broken_at_start_loses_only_its_broken_templates() {
    let themes = themes_with_fixtures();
    let company = themes.path().join("company");
    // Company's own layout, with a mark, and its own colours.
    let layout = std::fs::read_to_string(themes.path().join("default/templates/layout.html"))
        .expect("layout");
    assert!(layout.contains("</body>"));
    std::fs::write(
        company.join("templates/layout.html"),
        layout.replace(
            "</body>",
            "<p id=\"company-footer\">Company layout</p>\n</body>",
        ),
    )
    .expect("write layout");
    std::fs::create_dir_all(company.join("static")).expect("static");
    std::fs::write(
        company.join("static/colors.css"),
        ":root { --brand: #123456; } /* company-colors */\n",
    )
    .expect("colors");
    let s = Server::demo_with_themes(themes.path());
    s.cli_ok(&["settings", "set", "ci_skin_theme", "company"]);
    let data = s.stop();

    // While the portal is down: a syntax error in one template, a runtime error in another.
    std::fs::copy(
        themes.path().join("broken/templates/services.html"),
        company.join("templates/services.html"),
    )
    .expect("break services");
    std::fs::write(
        company.join("templates/information.html"),
        "{% extends \"layout.html\" %}{% block content %}<p>{{ page.no_such_thing.deeper }}</p>{% endblock %}",
    )
    .expect("break information");

    let s = Server::serve(
        data,
        common::Options {
            themes: Some(themes.path().to_path_buf()),
            ..Default::default()
        },
    );
    let c = s.login("alice", "alice-demo-pass").await;
    // The template that does not parse: the next version in the chain, in company's layout.
    let (status, html) = s.get_text(&c, "/services/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Via DHCP"), "{html}");
    assert!(html.contains("company-footer"), "company's layout serves");
    assert!(!html.contains("Company Net services"));
    // The template that fails at render time: the compiled-in page in company's layout.
    for _ in 0..3 {
        let (status, html) = s.get_text(&c, "/").await;
        assert_eq!(status, 200);
        assert!(html.contains("<h1>Information</h1>"), "{html}");
        assert!(html.contains("company-footer"), "company's layout serves");
    }
    // The theme's static files keep being served.
    let (status, css) = s.get_text(&c, "/static/colors.css").await;
    assert_eq!(status, 200);
    assert!(css.contains("company-colors"), "{css}");
    let log = s.log_text();
    assert!(log.contains("services.html:4:"), "{log}");
    assert_eq!(
        log.matches("render failed").count(),
        1,
        "a render failure is logged once per template version:\n{log}"
    );
    assert!(log.contains("no_such_thing"), "{log}");
}

#[test]
fn theme_check_renders_every_page_with_demo_data_and_names_the_line() {
    let themes = themes_copy();
    let file = themes.path().join("default/templates/services.html");
    let src = std::fs::read_to_string(&file).expect("read");
    // Parses fine; fails only when rendered with a real context.
    std::fs::write(
        &file,
        src.replacen(
            "{% block content %}",
            "{% block content %}\n<p>{{ page.missing_thing }}</p>",
            1,
        ),
    )
    .expect("write");
    let dir = themes.path().to_str().expect("utf-8");
    let (ok, out, err) = portico(&["theme", "check", "default", "--themes", dir], None);
    assert!(!ok, "{out}{err}");
    assert!(out.contains("default: 1 error(s)"), "{out}");
    assert!(out.contains("`missing_thing` is not defined"), "{out}");
    assert!(out.contains("services.html:4:"), "the line: {out}");
    assert!(
        out.contains("default/templates/services.html"),
        "the file: {out}"
    );
    // A loop is reported as over the deadline.
    std::fs::write(&file, &src).expect("write");
    inject(themes.path(), "services.html", LOOP_WITHOUT_OUTPUT);
    let (ok, out, _) = portico(&["theme", "check", "default", "--themes", dir], None);
    assert!(!ok);
    assert!(out.contains("ran past the render deadline"), "{out}");
    // The shipped themes pass.
    let shipped = repo_root().join("themes");
    let (ok, out, err) = portico(
        &[
            "theme",
            "check",
            "--themes",
            shipped.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
}

#[tokio::test]
async fn the_reloader_refuses_an_edit_that_fails_with_demo_data_and_keeps_the_last_good_version() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    let wait = Duration::from_secs(20);
    let ready = Server::wait_for(wait, || {
        let log = s.log_text();
        async move { log.contains("theme edits are checked with") }
    })
    .await;
    assert!(ready.is_some(), "{}", s.log_text());
    // The demo renders come from a private in-memory portal: its migrations and its demo
    // logins (one of them failed on purpose) are not this portal's and stay out of its log.
    let log = s.log_text();
    assert_eq!(log.matches("migration: initial layout").count(), 1, "{log}");
    assert_eq!(log.matches("LoginFailed").count(), 0, "{log}");
    let c = s.client();
    let (status, _) = s.get_text(&c, "/sign/").await;
    assert_eq!(status, 200);
    let file = themes.path().join("default/templates/sign.html");
    let good = std::fs::read_to_string(&file).expect("read");
    let edit = |snippet: &str| {
        let text = good.replacen(
            "{% block content %}",
            &format!("{{% block content %}}{snippet}"),
            1,
        );
        let tmp = file.with_extension("swp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &file).expect("rename");
    };
    let refusals = |s: &Server| s.log_text().matches("edit not applied").count();

    // Parses, but fails with a real context: refused, the last good version serves.
    edit("<p id=\"mark\">{{ page.missing_thing }}</p>");
    let refused = Server::wait_for(wait, || {
        let n = refusals(&s);
        async move { n >= 1 }
    })
    .await;
    assert!(refused.is_some(), "{}", s.log_text());
    assert!(s.log_text().contains("sign.html:3:"), "{}", s.log_text());
    let (status, html) = s.get_text(&c, "/sign/").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"username\"") && !html.contains("id=\"mark\""));

    // Loops: refused too, and no client ever waits for it.
    edit(LOOP_WITH_OUTPUT);
    let refused = Server::wait_for(wait, || {
        let n = refusals(&s);
        async move { n >= 2 }
    })
    .await;
    assert!(refused.is_some(), "{}", s.log_text());
    assert!(s.log_text().contains("ran past the render deadline"));
    let start = Instant::now();
    let (status, html) = s.get_text(&c, "/sign/").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"username\""));
    assert!(start.elapsed() < Duration::from_millis(200));
    assert_eq!(s.log_text().matches("quarantined").count(), 0);

    // A good edit goes live.
    edit("<p id=\"mark\">EDIT-GOOD</p>");
    let live = Server::wait_for(wait, || {
        let c = c.clone();
        let url = s.url("/sign/");
        async move {
            let r = c.get(url).send().await.expect("get");
            r.text().await.expect("body").contains("EDIT-GOOD")
        }
    })
    .await;
    assert!(live.is_some(), "{}", s.log_text());
    let status = s.cli_ok(&["theme", "status"]);
    assert!(status.contains("last reload:"), "{status}");
    assert!(status.contains("default: applied"), "{status}");
}
