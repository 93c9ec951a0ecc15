//! Themes: live edits, broken edits, child and custom themes, theme check.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Options, Server, copy_tree, portico, raw_http, raw_status, repo_root};

const WAIT: Duration = Duration::from_secs(10);

/// How long the theme watcher must stay quiet after the rebuilds an edit should cause, to show
/// there is no further one: well over its 100 ms debounce plus a rebuild.
const QUIET: Duration = Duration::from_millis(1500);

/// Waits until the log has `count` lines containing `needle`, then checks that no further one
/// follows within [`QUIET`].
async fn expect_log_lines(s: &Server, needle: &str, count: usize) {
    let lines = || s.log_text().matches(needle).count();
    let reached = Server::wait_for(WAIT, || {
        let n = lines();
        async move { n >= count }
    })
    .await;
    assert!(
        reached.is_some(),
        "expected {count} `{needle}` line(s), got {}:\n{}",
        lines(),
        s.log_text()
    );
    let more = Server::wait_for(QUIET, || {
        let n = lines();
        async move { n > count }
    })
    .await;
    assert!(
        more.is_none(),
        "expected exactly {count} `{needle}` line(s), got {}:\n{}",
        lines(),
        s.log_text()
    );
}

/// A private copy of the repository's themes (plus test fixtures) to edit freely.
fn themes_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&repo_root().join("themes"), dir.path());
    copy_tree(&repo_root().join("tests/fixtures/themes"), dir.path());
    dir
}

/// Replaces a file by writing a sibling and renaming, as editors do.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn page_contains(s: &Server, c: &reqwest::Client, path: &str, needle: &str) -> bool {
    let (status, body) = s.get_text(c, path).await;
    status == 200 && body.contains(needle)
}

#[tokio::test]
async fn template_edits_show_up_and_broken_edits_keep_the_last_good_version() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    let sign = themes.path().join("default/templates/sign.html");
    let original = std::fs::read_to_string(&sign).expect("read");
    // Serve the page once so the theme is built before the edit (engines are built lazily).
    assert!(page_contains(&s, &c, "/sign/", "Log in").await);
    assert_eq!(s.log_text().matches("theme reloaded").count(), 0);

    let edited = original.replace("<h1>", "<p id=\"marker\">EDIT-ONE</p>\n  <h1>");
    save(&sign, &edited);
    let took = Server::wait_for(WAIT, || page_contains(&s, &c, "/sign/", "EDIT-ONE")).await;
    let took = took.expect("the edit was served");
    println!("template edit served after {} ms", took.as_millis());
    // One edit, one rebuild: reading templates during a rebuild must not trigger another.
    expect_log_lines(&s, "theme reloaded", 1).await;

    // Line 5 of the file gets an unclosed expression.
    let mut lines: Vec<&str> = edited.lines().collect();
    lines.insert(4, "<p>{{ page.username </p>");
    save(&sign, &lines.join("\n"));
    // The broken edit is logged once (one attempt, one error), and nothing is reloaded.
    expect_log_lines(&s, "edit not applied", 1).await;
    assert_eq!(s.log_text().matches("theme reloaded").count(), 1);
    let log = s.log_text();
    assert!(
        log.contains("sign.html:5:"),
        "log names file and line:\n{log}"
    );
    assert!(
        log.contains(&sign.display().to_string()),
        "log names the file path:\n{log}"
    );
    let (status, body) = s.get_text(&c, "/sign/").await;
    assert_eq!(status, 200);
    assert!(body.contains("EDIT-ONE"), "last good version still serving");

    save(&sign, &original.replace("<h1>", "<p>EDIT-TWO</p><h1>"));
    Server::wait_for(WAIT, || page_contains(&s, &c, "/sign/", "EDIT-TWO"))
        .await
        .expect("the repaired template is served");
    expect_log_lines(&s, "theme reloaded", 2).await;
    assert_eq!(s.log_text().matches("edit not applied").count(), 1);
}

#[tokio::test]
async fn css_and_image_edits_are_served_at_once() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    let css = themes.path().join("default/static/style.css");
    let mut text = std::fs::read_to_string(&css).expect("read");
    text.push_str("\n/* CSS-MARK */\n");
    save(&css, &text);
    let took = Server::wait_for(WAIT, || {
        page_contains(&s, &c, "/static/style.css", "CSS-MARK")
    })
    .await;
    println!("css edit served after {:?}", took.expect("css edit served"));
    let r = c.get(s.url("/static/style.css")).send().await.expect("get");
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache");

    let logo = themes.path().join("default/static/images/logo.svg");
    save(
        &logo,
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- LOGO-MARK --></svg>",
    );
    Server::wait_for(WAIT, || {
        page_contains(&s, &c, "/static/images/logo.svg", "LOGO-MARK")
    })
    .await
    .expect("image edit served");
    // No way out of the theme folder (sent raw: an HTTP client would resolve the `..`).
    for (path, status) in [
        ("/static/..%2F..%2Ftheme.toml", 422),
        ("/static/../theme.toml", 404),
        ("/static/%2e%2e/theme.toml", 404),
        ("/static/.hidden", 422),
    ] {
        let r = raw_http(
            &s.base,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(raw_status(&r), status, "{path}: {r}");
        assert!(
            !r.contains("The basic red"),
            "{path} served theme.toml: {r}"
        );
    }
}

#[tokio::test]
async fn colour_themes_change_only_colours_and_can_differ_per_invoice_group() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, red) = s.get_text(&alice, "/static/colors.css").await;
    assert!(red.contains("#b3122a"));
    let (ok, _, err) = s.cli(&["settings", "set", "ci_skin_theme", "blue"]);
    assert!(ok, "{err}");
    let (_, blue) = s.get_text(&alice, "/static/colors.css").await;
    assert!(blue.contains("#0b57a4"));
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(html.contains("theme-blue"));
    let (_, style) = s.get_text(&alice, "/static/style.css").await;
    let default_style =
        std::fs::read_to_string(repo_root().join("themes/default/static/style.css")).expect("read");
    assert_eq!(style, default_style, "blue reuses default's stylesheet");

    s.cli_ok(&["settings", "set", "ci_skin_theme", "green", "--group", "2"]);
    let (_, html) = s.get_text(&bob, "/").await;
    assert!(html.contains("theme-green"), "bob's group is green");
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(html.contains("theme-blue"), "alice's stays blue");
}

#[tokio::test]
async fn a_custom_theme_overrides_one_part_and_follows_default_changes() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    s.cli_ok(&["settings", "set", "ci_skin_theme", "company"]);
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, logo) = s.get_text(&c, "/static/images/logo.svg").await;
    assert!(logo.contains("company-logo"), "own logo");
    let (_, colors) = s.get_text(&c, "/static/colors.css").await;
    assert!(colors.contains("#b3122a"), "default's colours");
    let (_, services) = s.get_text(&c, "/services/").await;
    assert!(services.contains("Company Net services"), "own template");
    assert!(services.contains("Via DHCP"), "which extends default's");

    let layout = themes.path().join("default/templates/layout.html");
    let text = std::fs::read_to_string(&layout).expect("read");
    save(
        &layout,
        &text.replace(
            "<main id=\"main\">",
            "<main id=\"main\"><p>DEFAULT-CHANGED</p>",
        ),
    );
    Server::wait_for(WAIT, || {
        page_contains(&s, &c, "/services/", "DEFAULT-CHANGED")
    })
    .await
    .expect("company picks up default's change");
    assert!(page_contains(&s, &c, "/services/", "Company Net services").await);
}

#[tokio::test]
async fn a_broken_theme_falls_back_to_the_built_in_default() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    // A theme that does not build is refused when chosen...
    let (ok, _, err) = s.cli(&["settings", "set", "ci_skin_theme", "broken"]);
    assert!(!ok && err.contains("services.html:4:"), "{err}");
    // ...and one that breaks after it was chosen (before its first use) falls back.
    let (ok, _, err) = s.cli(&["settings", "set", "ci_skin_theme", "company"]);
    assert!(ok, "{err}");
    std::fs::copy(
        themes.path().join("broken/templates/services.html"),
        themes.path().join("company/templates/services.html"),
    )
    .expect("break company");
    let c = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&c, "/services/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Via DHCP"));
    assert!(!html.contains("company-logo"));
    assert!(
        s.log_text().contains("services.html:4:"),
        "{}",
        s.log_text()
    );
}

#[tokio::test]
async fn theme_check_lists_errors_with_file_and_line() {
    let themes = themes_copy();
    let dir = themes.path().to_str().expect("path");
    let (ok, out, _) = portico(&["theme", "check", "company", "--themes", dir], None);
    assert!(ok, "{out}");
    assert!(out.contains("company: ok"));
    let (ok, out, err) = portico(&["theme", "check", "--themes", dir], None);
    assert!(!ok);
    assert!(out.contains("broken: 1 error(s)"), "{out}");
    assert!(out.contains("services.html:4:"), "{out}");
    assert!(out.contains("broken/templates/services.html"), "{out}");
    assert!(
        out.contains("default: ok") && out.contains("blue: ok"),
        "{out}"
    );
    assert!(err.contains("1 of"), "{err}");
    // A misspelt parent is an error, not a silent fallback.
    std::fs::create_dir_all(themes.path().join("typo")).expect("mkdir");
    std::fs::write(
        themes.path().join("typo/theme.toml"),
        "extends = \"defualt\"\n",
    )
    .expect("write");
    let (ok, out, _) = portico(&["theme", "check", "typo", "--themes", dir], None);
    assert!(!ok && out.contains("extends `defualt`"), "{out}");
}

#[tokio::test]
async fn maintenance_page_shows_the_themes_logo_when_present() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    s.cli_ok(&["maintenance", "on"]);
    let c = s.client();
    let (status, html) = s.get_text(&c, "/").await;
    assert_eq!(status, 503);
    assert!(!html.contains("maintenance_logo.png"));
    // A tiny valid PNG (1x1).
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0,
        0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    std::fs::write(
        themes.path().join("default/static/maintenance_logo.png"),
        png,
    )
    .expect("write");
    let (_, html) = s.get_text(&c, "/").await;
    assert!(html.contains("/static/maintenance_logo.png"));
    let r = c
        .get(s.url("/static/maintenance_logo.png"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["content-type"], "image/png");
}

#[tokio::test]
async fn a_theme_overrides_a_plugin_template_under_the_plugin_id_and_can_extend_the_original() {
    let themes = themes_copy();
    let dir = themes.path().join("default/templates/invoicing");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("invoices.html"),
        "{% extends \"plugins/invoicing/invoices.html\" %}\
         {% block title %}THEMED {{ super() }}{% endblock %}",
    )
    .expect("write");
    // A plugin-less name cannot reach the plugin's template: `invoices.html` is nobody's.
    std::fs::write(
        themes.path().join("default/templates/invoices.html"),
        "NOT USED",
    )
    .expect("write");
    let s = Server::demo_with_themes(themes.path());
    let c = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&c, "/invoicing/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>THEMED Invoicing"), "{html}");
    assert!(
        html.contains("invoices-heading"),
        "the original body: {html}"
    );
    assert!(!html.contains("NOT USED"));
}

/// GET over HTTP; (status, body) with the body read as (lossy) text.
async fn get_lossy(s: &Server, c: &reqwest::Client, path: &str) -> (u16, String) {
    let r = c.get(s.url(path)).send().await.expect("get");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_static_symlink_out_of_the_theme_folder_is_refused() {
    let themes = themes_copy();
    let stat = themes.path().join("default/static");
    std::os::unix::fs::symlink("/etc/passwd", stat.join("x")).expect("symlink");
    // A symlink that stays inside the theme's static folder is fine.
    std::os::unix::fs::symlink("images/logo.svg", stat.join("logo-again.svg")).expect("symlink");
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    let (status, body) = get_lossy(&s, &c, "/static/x").await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("root:"), "{body}");
    let log = s.log_text();
    assert!(
        log.contains("leads out of the theme folder") && log.contains("static/x"),
        "one log line names theme and file:\n{log}"
    );
    assert!(log.contains("theme=default"), "{log}");
    let (status, body) = s.get_text(&c, "/static/logo-again.svg").await;
    assert_eq!(status, 200);
    assert!(body.contains("<svg"), "{body}");
    // Logged in, too: the theme of the client's group is looked up the same way.
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, body) = get_lossy(&s, &alice, "/static/x").await;
    assert_eq!(status, 404);
    assert!(!body.contains("root:"), "{body}");
}

#[tokio::test]
async fn a_static_folder_symlink_to_the_data_folder_does_not_serve_the_store() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    let data = s.data_dir();
    assert!(data.join("store/conf").is_file() || data.join("store/db").is_file());
    std::os::unix::fs::symlink(&data, themes.path().join("default/static/d")).expect("symlink");
    let c = s.client();
    for path in ["/static/d/store/db", "/static/d/store/conf"] {
        let (status, body) = get_lossy(&s, &c, path).await;
        assert_eq!(status, 404, "{path} served: {} bytes", body.len());
    }
    // The whole static folder as a symlink out of the theme folder is refused the same way.
    let blue = themes.path().join("blue/static");
    std::fs::remove_dir_all(&blue).expect("rm");
    std::os::unix::fs::symlink("/etc", &blue).expect("symlink");
    s.cli_ok(&["settings", "set", "ci_skin_theme", "blue"]);
    let (status, body) = get_lossy(&s, &c, "/static/passwd").await;
    assert_eq!(status, 404);
    assert!(!body.contains("root:"), "{body}");
}

#[tokio::test]
async fn a_template_symlink_out_of_the_theme_folder_is_skipped_and_reported() {
    let themes = themes_copy();
    let t = themes.path().join("default/templates");
    std::os::unix::fs::symlink("/etc/passwd", t.join("evil.html")).expect("symlink");
    let sign = t.join("sign.html");
    let text = std::fs::read_to_string(&sign).expect("read");
    std::fs::write(
        &sign,
        text.replace("<h1>", "<pre>{% include \"evil.html\" %}</pre><h1>"),
    )
    .expect("write");
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    let (status, body) = s.get_text(&c, "/sign/").await;
    assert_eq!(status, 200);
    assert!(!body.contains("root:"), "{body}");
    assert!(body.contains("name=\"password\""), "the login form: {body}");
    let log = s.log_text();
    assert!(
        log.contains("leads out of the theme folder")
            && log.contains("default/templates/evil.html"),
        "{log}"
    );

    let dir = themes.path().to_str().expect("path");
    let (ok, out, _) = portico(&["theme", "check", "default", "--themes", dir], None);
    assert!(!ok, "{out}");
    assert!(out.contains("default/templates/evil.html"), "{out}");
    assert!(out.contains("leads out of the theme folder"), "{out}");
    assert!(!out.contains("root:"), "{out}");
}

#[tokio::test]
async fn a_symlink_to_a_parent_themes_file_is_refused() {
    let themes = themes_copy();
    let base = themes.path().join("base/templates");
    std::fs::create_dir_all(&base).expect("mkdir");
    std::fs::write(
        base.join("extra.html"),
        "{% extends \"layout.html\" %}{% block content %}PARENT-LINKED{% endblock %}",
    )
    .expect("write");
    let kid = themes.path().join("kid");
    std::fs::create_dir_all(kid.join("templates")).expect("mkdir");
    std::fs::create_dir_all(kid.join("static")).expect("mkdir");
    std::fs::write(kid.join("theme.toml"), "extends = \"base\"\n").expect("write");
    std::os::unix::fs::symlink(
        "../../base/templates/extra.html",
        kid.join("templates/services.html"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(
        "../../default/static/colors.css",
        kid.join("static/colors.css"),
    )
    .expect("symlink");
    let s = Server::demo_with_themes(themes.path());
    s.cli_ok(&["settings", "set", "ci_skin_theme", "kid"]);
    let c = s.login("alice", "alice-demo-pass").await;
    let (status, body) = s.get_text(&c, "/services/").await;
    assert_eq!(status, 200);
    assert!(!body.contains("PARENT-LINKED"), "{body}");
    assert!(body.contains("Via DHCP"), "default's services page: {body}");
    let (status, _) = s.get_text(&c, "/static/colors.css").await;
    assert_eq!(status, 404, "a static symlink to the parent is refused too");

    let dir = themes.path().to_str().expect("path");
    let (ok, out, _) = portico(&["theme", "check", "kid", "--themes", dir], None);
    assert!(!ok, "{out}");
    assert!(out.contains("kid/templates/services.html"), "{out}");
    assert!(out.contains("kid/static/colors.css"), "{out}");
}

#[tokio::test]
async fn pages_link_a_favicon_and_the_colour_themes_recolour_logo_and_favicon() {
    let themes = themes_copy();
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    let (_, html) = s.get_text(&c, "/sign/").await;
    assert!(
        html.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"),
        "{html}"
    );
    let r = c.get(s.url("/favicon.ico")).send().await.expect("get");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/static/favicon.svg");
    let r = c
        .get(s.url("/static/favicon.svg"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");

    for theme in ["default", "orange", "blue", "green"] {
        s.cli_ok(&["settings", "set", "ci_skin_theme", theme]);
        let (_, colors) = s.get_text(&c, "/static/colors.css").await;
        let accent = colors
            .split("--accent:")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("--accent")
            .trim()
            .to_string();
        for file in ["/static/images/logo.svg", "/static/favicon.svg"] {
            let (status, svg) = s.get_text(&c, file).await;
            assert_eq!(status, 200, "{theme} {file}");
            assert!(
                svg.contains(&accent),
                "{theme}: {file} uses {accent}: {svg}"
            );
        }
    }

    // A theme's own favicon.ico is served as it is.
    std::fs::write(themes.path().join("green/static/favicon.ico"), b"ICO-MARK").expect("write");
    let r = c.get(s.url("/favicon.ico")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/x-icon");
    assert_eq!(r.text().await.expect("body"), "ICO-MARK");
}

#[tokio::test]
async fn a_page_template_can_add_to_the_head_block() {
    let themes = themes_copy();
    let t = themes.path().join("company/templates");
    std::fs::write(
        t.join("sign.html"),
        "{% extends \"default/sign.html\" %}\
         {% block head %}<link rel=\"stylesheet\" href=\"/static/extra.css\">{% endblock %}",
    )
    .expect("write");
    let s = Server::demo_with_themes(themes.path());
    s.cli_ok(&["settings", "set", "ci_skin_theme", "company"]);
    let (status, html) = s.get_text(&s.client(), "/sign/").await;
    assert_eq!(status, 200);
    let head = html.split("</head>").next().expect("head");
    assert!(
        head.contains("<link rel=\"stylesheet\" href=\"/static/colors.css\">")
            && head.ends_with("<link rel=\"stylesheet\" href=\"/static/extra.css\">\n"),
        "after the stylesheets, inside <head>: {html}"
    );
    assert!(html.contains("name=\"password\""), "the login form");
}

#[tokio::test]
async fn the_portal_name_setting_names_titles_logo_and_footer() {
    let s = Server::demo();
    let c = s.client();
    let (_, html) = s.get_text(&c, "/sign/").await;
    assert!(
        html.contains("<title>Log in – Client portal</title>"),
        "{html}"
    );
    assert!(html.contains("alt=\"Client portal\""), "{html}");
    assert!(html.contains("Client portal powered by Portico"), "{html}");

    s.cli_ok(&["settings", "set", "ci_portal_name", "Net & Co portal"]);
    let (_, html) = s.get_text(&c, "/sign/").await;
    assert!(
        html.contains("<title>Log in – Net &amp; Co portal</title>"),
        "{html}"
    );
    assert!(html.contains("alt=\"Net &amp; Co portal\""), "{html}");
    assert!(
        html.contains("Net &amp; Co portal powered by Portico"),
        "{html}"
    );
    assert!(!html.contains("Client portal"), "{html}");

    // Per invoice group: bob's group 2 gets its own name, alice (group 1) the global one.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_portal_name",
        "Bob's ISP",
        "--group",
        "2",
    ]);
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&bob, "/services/").await;
    assert!(
        html.contains("<title>Services – Bob&#39;s ISP</title>"),
        "{html}"
    );
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    assert!(
        html.contains("<title>Services – Net &amp; Co portal</title>"),
        "{html}"
    );

    // Empty again: the translation, in the page's language.
    s.cli_ok(&["settings", "set", "ci_portal_name", ""]);
    let (_, html) = s.get_text(&c, "/sign/?lang=cs").await;
    assert!(
        html.contains("<title>Přihlášení – Klientský portál</title>"),
        "{html}"
    );
}

#[tokio::test]
async fn lang_in_the_query_previews_a_page_without_changing_the_profile() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let r = alice
        .post(s.url("/lang/"))
        .form(&[
            ("lang", "en"),
            ("next", "/services/"),
            ("csrf", common::csrf_of(&html).as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);

    let r = alice
        .get(s.url("/services/?lang=cs"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none(), "no cookie is set");
    let html = r.text().await.expect("body");
    assert!(html.contains("<html lang=\"cs\">"), "{html}");
    assert!(
        html.contains("<title>Služby – Klientský portál</title>"),
        "{html}"
    );
    let (_, html) = s.get_text(&alice, "/services/").await;
    assert!(
        html.contains("<title>Services – Client portal</title>"),
        "{html}"
    );
    for ignored in [
        "/services/?lang=de",
        "/services/?lang=",
        "/services/?lang=cs-CZ",
    ] {
        let (status, html) = s.get_text(&alice, ignored).await;
        assert_eq!(status, 200, "{ignored}");
        assert!(html.contains("<title>Services –"), "{ignored}: {html}");
    }
    // The profile still says English: a new login from a Czech browser gets English.
    let fresh = s.client();
    let r = fresh
        .post(s.url("/sign/"))
        .header("Accept-Language", "cs")
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303);
    let r = fresh
        .get(s.url("/services/"))
        .header("Accept-Language", "cs")
        .send()
        .await
        .expect("get");
    let html = r.text().await.expect("body");
    assert!(
        html.contains("<title>Services – Client portal</title>"),
        "{html}"
    );

    // Public pages too, and the cookie is not touched.
    let visitor = s.client();
    let r = visitor
        .get(s.url("/sign/?lang=cs"))
        .send()
        .await
        .expect("get");
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.expect("body").contains("Přihlášení"));
    let (_, html) = s.get_text(&visitor, "/sign/").await;
    assert!(html.contains("<h1>Log in</h1>"), "{html}");
}

const SCRIPT_TAG: &str = "/static/portico-dev-reload.js";

/// A theme of the operator's must not stand in for core's live reload script.
fn plant_fake_reload_script(themes: &Path) {
    std::fs::write(
        themes.join("default/static/portico-dev-reload.js"),
        "/* THEME-FILE */",
    )
    .expect("write");
}

fn dev_server(themes: &Path) -> Server {
    Server::demo_with(Options {
        themes: Some(themes.to_path_buf()),
        dev: true,
        ..Options::default()
    })
}

/// The generation a page was rendered at, from its live reload script tag.
fn generation_of(html: &str) -> u64 {
    let marker = "data-generation=\"";
    let start = html.find(marker).expect("script tag with a generation") + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end].parse().expect("a number")
}

/// Reads server-sent events until a `theme-changed` one arrives; returns its data, or `None`
/// when none came within `limit`.
async fn next_theme_event(
    events: &mut reqwest::Response,
    buf: &mut String,
    limit: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            // `field:value` or `field: value` (comments, such as heartbeats, start with `:`).
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    let v = l.strip_prefix(name)?.strip_prefix(':')?;
                    Some(v.strip_prefix(' ').unwrap_or(v).to_string())
                })
            };
            if field("event").as_deref() == Some("theme-changed") {
                return Some(field("data").unwrap_or_default());
            }
        }
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("the event stream ended"),
            Ok(Err(e)) => panic!("reading events: {e}"),
            Err(_) => return None,
        }
    }
}

async fn open_events(s: &Server, c: &reqwest::Client, since: u64) -> reqwest::Response {
    let r = c
        .get(s.url(&format!("/dev/theme-events?since={since}")))
        .send()
        .await
        .expect("open events");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    r
}

#[tokio::test]
async fn without_dev_there_is_no_live_reload_script_or_event_stream() {
    let themes = themes_copy();
    plant_fake_reload_script(themes.path());
    let s = Server::demo_with_themes(themes.path());
    let c = s.client();
    for path in [SCRIPT_TAG, "/dev/theme-events", "/dev/theme-events?since=0"] {
        let (status, body) = s.get_text(&c, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains("THEME-FILE"), "{path}: the name is reserved");
    }
    let (_, sign) = s.get_text(&c, "/sign/").await;
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, home) = s.get_text(&alice, "/").await;
    let (_, missing) = s.get_text(&alice, "/no-such-page").await;
    s.cli_ok(&["maintenance", "on"]);
    let (_, maintenance) = s.get_text(&c, "/").await;
    for (name, html) in [
        ("sign", sign),
        ("home", home),
        ("404", missing),
        ("maintenance", maintenance),
    ] {
        assert!(html.contains("</html>"), "{name}: {html}");
        assert!(
            !html.contains("portico-dev-reload"),
            "{name} has the script: {html}"
        );
        assert!(!html.contains("<script"), "{name} has a script: {html}");
    }
}

#[tokio::test]
async fn with_dev_pages_get_the_script_and_css_and_template_edits_send_events() {
    let themes = themes_copy();
    plant_fake_reload_script(themes.path());
    let s = dev_server(themes.path());
    let c = s.client();

    let r = c.get(s.url(SCRIPT_TAG)).send().await.expect("get script");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let js = r.text().await.expect("body");
    assert!(
        js.contains("EventSource(") && !js.contains("THEME-FILE"),
        "core's script: {js}"
    );

    let (_, sign) = s.get_text(&c, "/sign/").await;
    let tag = format!("<script src=\"{SCRIPT_TAG}\" data-generation=\"");
    assert!(sign.contains(&tag), "{sign}");
    let alice = s.login("alice", "alice-demo-pass").await;
    for path in ["/", "/invoicing/", "/no-such-page"] {
        let (_, html) = s.get_text(&alice, path).await;
        assert!(html.contains(&tag), "{path}: {html}");
    }
    let since = generation_of(&sign);

    // A CSS edit needs no rebuild, but open pages must still reload.
    let mut events = open_events(&s, &c, since).await;
    let mut buf = String::new();
    let css = themes.path().join("default/static/colors.css");
    let text = std::fs::read_to_string(&css).expect("read");
    save(&css, &text.replace("#b3122a", "#123456"));
    let after_css = next_theme_event(&mut events, &mut buf, WAIT)
        .await
        .expect("a theme-changed event after the CSS edit");
    let after_css: u64 = after_css.parse().expect("generation");
    assert!(after_css > since);

    // A template edit: the event comes once the new version is what a page gets.
    let sign_file = themes.path().join("default/templates/sign.html");
    let original = std::fs::read_to_string(&sign_file).expect("read");
    save(
        &sign_file,
        &original.replace("<h1>", "<p>LIVE-EDIT</p><h1>"),
    );
    next_theme_event(&mut events, &mut buf, WAIT)
        .await
        .expect("a theme-changed event after the template edit");
    let (_, html) = s.get_text(&c, "/sign/").await;
    assert!(html.contains("LIVE-EDIT"), "{html}");
    let current = generation_of(&html);

    // A broken edit is not applied, so there is nothing to reload.
    save(
        &sign_file,
        &original.replace("<h1>", "<p>{{ broken </p><h1>"),
    );
    Server::wait_for(WAIT, || {
        let n = s.log_text().matches("edit not applied").count();
        async move { n > 0 }
    })
    .await
    .expect("the broken edit was seen");
    assert_eq!(next_theme_event(&mut events, &mut buf, QUIET).await, None);

    // A page rendered before the last change hears about it as soon as it connects.
    let mut late = open_events(&s, &c, since).await;
    let data = next_theme_event(&mut late, &mut String::new(), WAIT)
        .await
        .expect("an event at once for an outdated page");
    assert_eq!(data, current.to_string());
    // An up-to-date one does not.
    let mut fresh = open_events(&s, &c, current).await;
    s.cli_ok(&["maintenance", "on"]);
    let (status, html) = s.get_text(&c, "/").await;
    assert_eq!(status, 503);
    assert!(html.contains(&tag), "maintenance page: {html}");
    assert_eq!(
        next_theme_event(&mut fresh, &mut String::new(), Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test]
async fn sigterm_is_not_held_up_by_open_event_streams() {
    let mut s = Server::demo_with(Options {
        dev: true,
        ..Options::default()
    });
    let c = s.client();
    let _one = open_events(&s, &c, 0).await;
    let _two = open_events(&s, &c, 0).await;
    // Shutdown's grace period is 2 s: streams that ignored shutdown would wait it out.
    let took = s.terminate(Duration::from_millis(1500));
    let took = took.expect("the portal ended within 1.5 s of SIGTERM");
    println!("stopped {} ms after SIGTERM", took.as_millis());
}
