//! What a person does in a browser: headless Debian Chromium driven through chromedriver.

mod common;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use common::{Options, Server};

/// chromedriver on a free local port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// chromedriver runs in its own process group; ending the group also ends any Chromium it
    /// started, even when a test failed before closing its session.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver must be installed (Debian packages chromium and chromium-driver; .ci/run installs them)");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,800", "--lang=en-US",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": {"intl.accept_languages": "en-US,en"}
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("start a Chromium session");
    (
        Driver {
            child,
            url,
            _profile: profile,
        },
        client,
    )
}

/// The portal's login form, or the ISP's own form (plain field names, a `send` button).
enum LoginForm {
    Portal,
    Isp,
}

/// Types a login and password into a login form and submits it.
async fn fill_login(c: &Client, form: LoginForm, user: &str, password: &str) {
    let (user_field, password_field, submit) = match form {
        LoginForm::Portal => ("#username", "#password", "button.primary"),
        LoginForm::Isp => (
            "input[name=username]",
            "input[name=password]",
            "input[name=send]",
        ),
    };
    for (css, text) in [(user_field, user), (password_field, password)] {
        c.find(Locator::Css(css))
            .await
            .expect(css)
            .send_keys(text)
            .await
            .expect("type");
    }
    c.find(Locator::Css(submit))
        .await
        .expect(submit)
        .click()
        .await
        .expect("click");
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn alice_logs_in_reads_a_message_opens_invoicing_switches_to_czech_and_logs_out() {
    let s = Server::demo();
    let (driver, c) = browser().await;
    let _ = &driver.url;

    c.goto(&s.url("/")).await.expect("open portal");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/sign/"),
        "sent to the login page"
    );
    assert_eq!(text_of(&c, "h1").await, "Log in");
    fill_login(&c, LoginForm::Portal, "alice", "alice-demo-pass").await;

    assert_eq!(c.current_url().await.expect("url").path(), "/");
    assert_eq!(text_of(&c, ".client-name").await, "Alice Nováková");
    let messages = text_of(&c, ".messages").await;
    assert!(messages.contains("Your new router is ready"), "{messages}");

    c.find(Locator::Css("a.menu-invoicing"))
        .await
        .expect("menu")
        .click()
        .await
        .expect("click");
    wait_for_path(&c, "/invoicing/").await;
    assert_eq!(c.current_url().await.expect("url").path(), "/invoicing/");
    assert_eq!(text_of(&c, "h1").await, "Invoicing");
    assert!(text_of(&c, "table.invoices").await.contains("299.00"));

    c.find(Locator::Css("button.lang-cs"))
        .await
        .expect("switcher")
        .click()
        .await
        .expect("click");
    wait_for_text(&c, "h1", "Vyúčtování")
        .await
        .expect("the page in Czech");
    assert_eq!(
        c.current_url().await.expect("url").path(),
        "/invoicing/",
        "stays on the page"
    );
    assert_eq!(text_of(&c, "h1").await, "Vyúčtování");
    let lang = c
        .execute("return document.documentElement.lang", vec![])
        .await
        .expect("js");
    assert_eq!(lang, serde_json::json!("cs"));

    c.find(Locator::Css("form[action='/sign/out/'] button"))
        .await
        .expect("logout")
        .click()
        .await
        .expect("click");
    // The click may return before the browser has followed the logout's redirect.
    wait_for_path(&c, "/sign/").await;
    let url = c.current_url().await.expect("url");
    assert!(
        url.path().ends_with("/sign/"),
        "{url}: {}",
        c.source().await.expect("source")
    );
    assert_eq!(text_of(&c, "h1").await, "Přihlášení");
    c.goto(&s.url("/invoicing/")).await.expect("back");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/sign/"),
        "logged out for real"
    );
    c.close().await.expect("close");
}

/// Runs axe-core (WCAG 2 A and AA rules: labels, contrast, `lang`, names...) on the open page;
/// returns the violations as "rule: count" lines.
async fn axe_violations(c: &Client) -> Vec<String> {
    let axe = common::repo_root().join("tests/a11y/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&axe)
        .expect("axe-core must be installed: ./test.sh runs npm ci in tests/a11y");
    c.execute(&source, vec![]).await.expect("inject axe");
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})\
               .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.length + ' (' + v.nodes[0].target + ')')))\
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("run axe");
    serde_json::from_value(result).expect("list of violations")
}

#[tokio::test]
async fn pages_fit_a_360_pixel_phone_screen() {
    let s = Server::demo();
    let (_driver, c) = browser().await;
    c.set_window_size(360, 740).await.expect("resize");
    c.goto(&s.url("/sign/")).await.expect("open");
    assert_eq!(axe_violations(&c).await, Vec::<String>::new(), "/sign/");
    fill_login(&c, LoginForm::Portal, "1001", "alice-demo-pass").await;
    for path in [
        "/",
        "/services/",
        "/invoicing/",
        "/gdpr/",
        "/gdpr/export",
        "/helpdesk/",
        "/helpdesk/new",
        "/helpdesk/ticket/1",
        "/contact/",
        "/contact/?lang=cs",
        "/files/",
        "/files/?lang=cs",
        "/documents/",
        "/documents/?lang=cs",
        "/profile/data/",
        "/profile/data/?lang=cs",
        "/password/",
    ] {
        c.goto(&s.url(path)).await.expect("open");
        let fits = c
            .execute(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth",
                vec![],
            )
            .await
            .expect("js");
        assert_eq!(
            fits,
            serde_json::json!(true),
            "{path} scrolls sideways at 360 px"
        );
        // Every form control has a label or an accessible name.
        let unlabelled = c
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden])')]\
                   .filter(i => !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).length",
                vec![],
            )
            .await
            .expect("js");
        assert_eq!(unlabelled, serde_json::json!(0), "{path}");
        assert_eq!(axe_violations(&c).await, Vec::<String>::new(), "{path}");
    }
    // The data-change form with a message at a field.
    c.goto(&s.url("/profile/data/")).await.expect("open");
    let email = c
        .find(fantoccini::Locator::Id("email"))
        .await
        .expect("email field");
    email.clear().await.expect("clear");
    email.send_keys("not an address").await.expect("type");
    click(&c, "form.stack button[type=submit]").await;
    wait_for_text(&c, "#email-error", "not an e-mail address")
        .await
        .expect("the field's message");
    fits_and_passes_axe(&c, "/profile/data/ with a message").await;
    c.goto(&s.url("/no-such-page")).await.expect("open");
    assert_eq!(axe_violations(&c).await, Vec::<String>::new(), "404 page");
    // The suspension page, to a client and to a visitor, in both languages.
    s.cli_ok(&[
        "suspend",
        "--message",
        "The portal is closed today for the annual audit. Call us at +420 530 000 100.",
    ]);
    for path in ["/", "/?lang=cs"] {
        c.goto(&s.url(path)).await.expect("open");
        fits_and_passes_axe(&c, &format!("suspended {path}")).await;
    }
    c.delete_all_cookies().await.expect("cookies");
    c.goto(&s.url("/sign/")).await.expect("open");
    fits_and_passes_axe(&c, "suspended /sign/").await;
    assert!(text_of(&c, "main").await.contains("annual audit"));
    c.close().await.expect("close");
}

/// Serves one HTML page on `localhost` (a different site from the portal's 127.0.0.1).
fn serve_isp_page(html: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                html.len(),
                html
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://localhost:{port}")
}

async fn log_in_from_the_isp_site(c: &Client, isp: &str) -> String {
    c.goto(&format!("{isp}/"))
        .await
        .expect("open the ISP's page");
    fill_login(c, LoginForm::Isp, "alice", "alice-demo-pass").await;
    // The click returns before the browser has left the ISP's page; wait until it has.
    let start = Instant::now();
    while c
        .current_url()
        .await
        .expect("url")
        .as_str()
        .starts_with(isp)
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the form did not submit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait()
        .for_element(Locator::Css("main"))
        .await
        .expect("portal page");
    c.source().await.expect("source")
}

#[tokio::test]
async fn the_isps_own_login_form_works_only_when_allowed() {
    let s = Server::demo();
    // Exactly the form the ISP puts on its website.
    let isp = serve_isp_page(format!(
        r#"<!doctype html><html><body><h1>Example Net</h1>
<form action="{}/sign/" method="post">
  <input type="text" name="username"> <input type="password" name="password">
  <input type="submit" name="send" value="Log in"> <input type="hidden" name="_do" value="signInForm-submit">
</form></body></html>"#,
        s.base
    ));
    let (_driver, c) = browser().await;

    let refused = log_in_from_the_isp_site(&c, &isp).await;
    assert!(
        refused.contains("Logging in from another website is not allowed"),
        "off by default"
    );

    let (ok, _, err) = s.cli(&["settings", "set", "ci_login_form_allow_cross_origin", "on"]);
    assert!(ok, "{err}");
    let page = log_in_from_the_isp_site(&c, &isp).await;
    assert!(
        page.contains("Alice Nováková"),
        "logged in through the ISP's form"
    );
    assert_eq!(c.current_url().await.expect("url").path(), "/");
    c.find(Locator::Css("form[action='/sign/out/'] button"))
        .await
        .expect("logout")
        .click()
        .await
        .expect("click");

    s.cli_ok(&[
        "settings",
        "set",
        "ci_login_form_allowed_origins",
        "https://www.example.net",
    ]);
    let refused = log_in_from_the_isp_site(&c, &isp).await;
    assert!(
        refused.contains("Logging in from another website is not allowed"),
        "origin not on the list: {refused}"
    );
    s.cli_ok(&[
        "settings",
        "set",
        "ci_login_form_allowed_origins",
        &format!("https://www.example.net, {isp}"),
    ]);
    let page = log_in_from_the_isp_site(&c, &isp).await;
    assert!(
        page.contains("Alice Nováková"),
        "origin on the list: {page}"
    );
    c.close().await.expect("close");
}

/// Waits until the page's path ends with `suffix` and the page has loaded, polling for at most
/// 5 s (a click may return before the browser has followed a redirect); the caller then checks.
async fn wait_for_path(c: &Client, suffix: &str) {
    let start = Instant::now();
    loop {
        let url = c.current_url().await.expect("url");
        let loaded = c
            .execute("return document.readyState", vec![])
            .await
            .expect("js")
            == serde_json::json!("complete");
        if (url.path().ends_with(suffix) && loaded) || start.elapsed() > Duration::from_secs(5) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `css` once it contains `needle`, polling the open page for at most 5 s (the page
/// must change by itself: nothing here reloads it).
async fn wait_for_text(c: &Client, css: &str, needle: &str) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(5) {
        let text = c
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                vec![serde_json::json!(css)],
            )
            .await
            .expect("js");
        last = text.as_str().unwrap_or("").to_string();
        if last.contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

#[tokio::test]
async fn with_dev_an_open_page_reloads_itself_when_the_theme_changes() {
    // A themes folder with one child theme of the (compiled-in) default.
    let themes = tempfile::tempdir().expect("themes");
    let studio = themes.path().join("studio");
    std::fs::create_dir_all(studio.join("templates")).expect("mkdir");
    std::fs::create_dir_all(studio.join("static")).expect("mkdir");
    std::fs::write(studio.join("theme.toml"), "extends = \"default\"\n").expect("write");
    let sign = studio.join("templates/sign.html");
    let template = |text: &str| {
        format!(
            "{{% extends \"core/sign.html\" %}}\
             {{% block content %}}<p id=\"studio-mark\">{text}</p>{{{{ super() }}}}{{% endblock %}}"
        )
    };
    std::fs::write(&sign, template("Studio one")).expect("write");
    let s = Server::demo_with(Options {
        themes: Some(themes.path().to_path_buf()),
        dev: true,
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "ci_skin_theme", "studio"]);
    let (_driver, c) = browser().await;

    c.goto(&s.url("/sign/")).await.expect("open");
    assert_eq!(text_of(&c, "#studio-mark").await, "Studio one");
    assert_eq!(
        axe_violations(&c).await,
        Vec::<String>::new(),
        "/sign/ with --dev"
    );

    // A template edit, saved in place.
    std::fs::write(&sign, template("Studio two")).expect("edit");
    if let Err(shown) = wait_for_text(&c, "#studio-mark", "Studio two").await {
        panic!(
            "the page did not reload after the template edit; it shows {shown:?}; log:\n{}",
            s.log_text()
        );
    }

    // A CSS edit needs no rebuild; the page reloads too and shows the new style.
    c.execute("window.beforeCssEdit = true;", vec![])
        .await
        .expect("js");
    std::fs::write(
        studio.join("static/colors.css"),
        ":root { --accent: #204080; --accent-dark: #102040; --accent-soft: #eef2fa; --on-accent: #ffffff; }\n\
         #studio-mark::after { content: \" (restyled)\"; }\n",
    )
    .expect("write css");
    let start = Instant::now();
    loop {
        let reloaded = c
            .execute("return window.beforeCssEdit === undefined;", vec![])
            .await
            .expect("js");
        if reloaded == serde_json::json!(true) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the page did not reload after the CSS edit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = c
        .execute(
            "return getComputedStyle(document.getElementById('studio-mark'), '::after').content;",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(after, serde_json::json!("\" (restyled)\""));
    assert_eq!(text_of(&c, "#studio-mark").await, "Studio two");
    assert_eq!(
        axe_violations(&c).await,
        Vec::<String>::new(),
        "/sign/ restyled"
    );

    // A page that answered a form is fetched again with GET: the form is not sent twice.
    fill_login(&c, LoginForm::Portal, "alice", "wrong-password").await;
    c.wait()
        .for_element(Locator::Css("#sign-error"))
        .await
        .expect("the failed login's page");
    std::fs::write(&sign, template("Studio three")).expect("edit");
    if let Err(shown) = wait_for_text(&c, "#studio-mark", "Studio three").await {
        panic!("the page did not reload after a form was sent; it shows {shown:?}");
    }
    let errors = c
        .execute(
            "return document.querySelectorAll('#sign-error').length;",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(errors, serde_json::json!(0), "a fresh login page");
    let audit = s.cli_ok(&["audit", "--client", "alice"]);
    assert_eq!(
        audit.matches("LoginFailed").count(),
        1,
        "the login was not sent again:\n{audit}"
    );
    c.close().await.expect("close");
}

async fn click(c: &Client, css: &str) {
    // The element may be on a page that is still loading (the answer to a form just sent).
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

/// Whether the open page fits the window and passes axe-core.
async fn fits_and_passes_axe(c: &Client, what: &str) {
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(fits, serde_json::json!(true), "{what} scrolls sideways");
    assert_eq!(axe_violations(c).await, Vec::<String>::new(), "{what}");
}

/// Submits a form with the button `css` and waits for the next page's notice.
async fn submit(c: &Client, css: &str, notice: &str) {
    let before = c.current_url().await.expect("url");
    click(c, css).await;
    let start = Instant::now();
    loop {
        let state = c
            .execute(
                "return [document.readyState, location.href, (document.querySelector('p.notice') || {}).textContent || '', document.querySelector(arguments[0]) === null]",
                vec![serde_json::json!(css)],
            )
            .await
            .expect("js");
        let done = state[0] == "complete"
            && (state[1] != before.as_str() || state[3] == true)
            && state[2].as_str().unwrap_or("").contains(notice);
        if done {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no page after {css}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn gdpr_consents_are_given_withdrawn_and_asked_again_on_a_phone() {
    let s = Server::demo();
    let (_driver, c) = browser().await;
    c.set_window_size(360, 740).await.expect("resize");
    c.goto(&s.url("/sign/")).await.expect("open");
    fill_login(&c, LoginForm::Portal, "bob", "bob-demo-pass").await;
    click(&c, "a.menu-gdpr").await;
    wait_for_text(&c, "#consent-2 .badge.state", "Not answered yet")
        .await
        .expect("the GDPR tab");
    assert!(
        text_of(&c, "#consent-2 .badge.state")
            .await
            .contains("Not answered yet"),
        "bob has not answered"
    );
    fits_and_passes_axe(&c, "/gdpr/").await;

    // Give the optional consent with e-mail news only.
    click(&c, "#consent-2-part-1").await;
    submit(
        &c,
        "#consent-2 button[value=give]",
        "Your consent was recorded.",
    )
    .await;
    assert_eq!(text_of(&c, "#consent-2 .badge.state").await, "Given");
    let checked = c
        .execute(
            "return [document.getElementById('consent-2-part-1').checked, document.getElementById('consent-2-part-2').checked]",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(checked, serde_json::json!([true, false]));
    fits_and_passes_axe(&c, "/gdpr/ after giving").await;

    // Withdraw it: the history shows both, with their version.
    submit(
        &c,
        "#consent-2 button[value=withdraw]",
        "Your withdrawal was recorded.",
    )
    .await;
    assert_eq!(text_of(&c, "#consent-2 .badge.state").await, "Withdrawn");
    let rows = c
        .execute(
            "return [...document.querySelectorAll('table.consent-history tbody tr')].map(r => [...r.cells].map(td => td.textContent.trim()).slice(1, 5))",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(
        rows,
        serde_json::json!([
            ["News and offers", "1", "Withdrawn", ""],
            ["News and offers", "1", "Given", "News and offers by e-mail"]
        ])
    );

    // Give it again, then the operator publishes version 2: bob is asked again.
    c.goto(&s.url("/gdpr/")).await.expect("open");
    submit(
        &c,
        "#consent-2 button[value=give]",
        "Your consent was recorded.",
    )
    .await;
    assert_eq!(text_of(&c, "#consent-2 .badge.state").await, "Given");
    let dir = tempfile::tempdir().expect("tmp");
    let en = dir.path().join("v2.md");
    let cs = dir.path().join("v2.cs.md");
    std::fs::write(
        &en,
        "Version two.\n\n[optional] By e-mail\n[optional] By SMS",
    )
    .expect("write");
    std::fs::write(&cs, "Verze dvě.\n\n[optional] E-mailem\n[optional] SMS").expect("write");
    s.cli_ok(&[
        "gdpr",
        "consent",
        "update",
        "2",
        "--text-file",
        en.to_str().expect("utf-8"),
        "--text-file-cs",
        cs.to_str().expect("utf-8"),
    ]);
    c.goto(&s.url("/gdpr/")).await.expect("open");
    assert!(
        text_of(&c, "#consent-2 .badge.state")
            .await
            .contains("older version"),
        "asked again"
    );
    assert!(
        text_of(&c, "#consent-2 .consent-text")
            .await
            .contains("Version two.")
    );
    submit(
        &c,
        "#consent-2 button[value=give]",
        "Your consent was recorded.",
    )
    .await;
    assert_eq!(text_of(&c, "#consent-2 .badge.state").await, "Given");
    let versions = c
        .execute(
            "return [...document.querySelectorAll('table.consent-history tbody tr')].map(r => r.cells[2].textContent.trim())",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(versions, serde_json::json!(["2", "1", "1", "1"]));

    // The required consent asks before it is withdrawn; the question passes axe too.
    c.goto(&s.url("/gdpr/")).await.expect("open");
    submit(
        &c,
        "#consent-1 button[value=give]",
        "Your consent was recorded.",
    )
    .await;
    submit(&c, "#consent-1 button[value=withdraw]", "").await;
    wait_for_text(&c, "h1", "Withdraw a required consent?")
        .await
        .expect("the question");
    fits_and_passes_axe(&c, "withdraw question").await;
    click(&c, ".confirm-withdraw a.button").await;
    wait_for_text(&c, "#consent-1 .badge.state", "Given")
        .await
        .expect("kept");

    // The readable export.
    c.goto(&s.url("/gdpr/export")).await.expect("open");
    assert!(
        text_of(&c, "#section-personal_data")
            .await
            .contains("Bob Dvořák")
    );
    fits_and_passes_axe(&c, "/gdpr/export").await;
    c.close().await.expect("close");
}

#[tokio::test]
async fn alice_asks_the_helpdesk_an_operator_answers_by_email_and_she_reads_it_on_a_phone() {
    let smtp = common::Smtp::start();
    let s = Server::demo_with(Options {
        smtp_url: Some(smtp.url()),
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    let file = tempfile::tempdir().expect("tmp");
    let photo = file.path().join("router lights.png");
    std::fs::write(&photo, b"\x89PNG\r\n\x1a\n not really a picture").expect("write");
    let (_driver, c) = browser().await;
    c.set_window_size(360, 740).await.expect("resize");
    c.goto(&s.url("/sign/")).await.expect("open");
    fill_login(&c, LoginForm::Portal, "alice", "alice-demo-pass").await;
    click(&c, "a.menu-helpdesk").await;
    wait_for_text(&c, "#ticket-1 .ticket-subject", "Slow connection")
        .await
        .expect("the Helpdesk tab");
    fits_and_passes_axe(&c, "/helpdesk/").await;
    click(&c, "#new-ticket").await;
    wait_for_text(&c, "h1", "New ticket")
        .await
        .expect("the form");
    fits_and_passes_axe(&c, "/helpdesk/new").await;
    for (css, text) in [
        ("#subject", "No internet since noon"),
        ("#text", "All lights on the router are red."),
        ("#files", photo.to_str().expect("utf-8")),
    ] {
        c.find(Locator::Css(css))
            .await
            .expect(css)
            .send_keys(text)
            .await
            .expect("type");
    }
    submit(
        &c,
        "#new-ticket-form button.primary",
        "Your ticket was created.",
    )
    .await;
    assert_eq!(text_of(&c, ".ticket-title").await, "No internet since noon");
    assert_eq!(
        text_of(&c, "#item-1 .attachments a").await,
        "router lights.png"
    );
    fits_and_passes_axe(&c, "the new ticket").await;

    // The operator answers by e-mail through the CLI; the mail carries the link.
    let out = s.cli_ok(&[
        "helpdesk",
        "reply",
        "3",
        "--text",
        "A technician is on his way.",
        "--author",
        "Jana Operátorová",
    ]);
    assert!(out.contains("with the link to the conversation"), "{out}");
    let mails = smtp.wait_for(1).await;
    let link = format!("{}/helpdesk/ticket/3", s.base);
    assert!(
        mails[0].contains("You can view the entire conversation in the Client portal.")
            && mails[0].contains(&link),
        "{}",
        mails[0]
    );
    c.goto(&link).await.expect("open the link");
    wait_for_text(&c, "#item-2 .item-text", "A technician is on his way.")
        .await
        .expect("the reply");
    assert_eq!(text_of(&c, "#item-2 .author").await, "Jana Operátorová");
    fits_and_passes_axe(&c, "the ticket with the reply").await;

    // Alice answers from the phone.
    c.find(Locator::Css("#text"))
        .await
        .expect("reply field")
        .send_keys("Thank you, I will be at home.")
        .await
        .expect("type");
    submit(&c, "#reply-form button.primary", "Your reply was sent.").await;
    assert_eq!(
        text_of(&c, "#item-3 .item-text").await,
        "Thank you, I will be at home."
    );

    // Without a department for CP requests: a support request from the Information tab.
    s.cli_ok(&[
        "helpdesk",
        "department",
        "set",
        "1",
        "--cp-requests",
        "false",
    ]);
    c.goto(&s.url("/")).await.expect("open");
    assert_eq!(
        text_of(&c, "#info-support-request").await,
        "Send support request"
    );
    fits_and_passes_axe(&c, "/ with the support request button").await;
    click(&c, "#info-support-request").await;
    wait_for_text(&c, "h1", "Support request")
        .await
        .expect("the request form");
    fits_and_passes_axe(&c, "/helpdesk/request").await;
    for (css, text) in [
        ("#subject", "Faster tariff"),
        ("#text", "200 Mb/s, please."),
    ] {
        c.find(Locator::Css(css))
            .await
            .expect(css)
            .send_keys(text)
            .await
            .expect("type");
    }
    submit(
        &c,
        "#request-form button.primary",
        "Your support request was sent.",
    )
    .await;
    let tasks = s.cli_ok(&["tasks", "list"]);
    assert!(
        tasks.contains("support request from client 1001 (Alice Nováková), assigned to Jana Operátorová, open: Faster tariff — 200 Mb/s, please."),
        "{tasks}"
    );
    c.close().await.expect("close");
}

#[tokio::test]
async fn alice_opens_a_months_traffic_chart_from_services_on_a_phone() {
    let s = Server::demo();
    let (_driver, c) = browser().await;
    c.set_window_size(360, 740).await.expect("resize");
    c.goto(&s.url("/sign/")).await.expect("open");
    fill_login(&c, LoginForm::Portal, "alice", "alice-demo-pass").await;
    wait_for_text(&c, "h1", "Information")
        .await
        .expect("logged in");
    c.goto(&s.url("/services/")).await.expect("open");
    click(&c, "#service-traffic-1").await;
    wait_for_text(&c, "h1", "Traffic")
        .await
        .expect("the Traffic tab");
    // The month's chart: an SVG with its title, bars for each day so far, and the legend.
    let svg = c
        .execute(
            "const s = document.querySelector('svg.traffic-chart');\
             const r = s.getBoundingClientRect();\
             return [s.querySelector('title').textContent, s.querySelectorAll('rect.down').length,\
                     s.querySelectorAll('rect.up').length, Math.round(r.width), \
                     [...s.querySelectorAll('.legend text')].map(t => t.textContent).join('|'),\
                     s.querySelectorAll('.grid text').length]",
            vec![],
        )
        .await
        .expect("svg");
    let days = chrono::Utc::now()
        .format("%-d")
        .to_string()
        .parse::<u64>()
        .expect("day");
    assert!(
        svg[0]
            .as_str()
            .expect("title")
            .starts_with("Data transferred by Internet: "),
        "{svg}"
    );
    assert_eq!(
        svg[1],
        serde_json::json!(days),
        "one download bar a day so far: {svg}"
    );
    assert_eq!(svg[2], serde_json::json!(days), "{svg}");
    assert!(svg[3].as_u64().expect("width") <= 360, "{svg}");
    assert_eq!(svg[4], "Download|Upload");
    assert!(svg[5].as_u64().expect("ticks") >= 2, "{svg}");
    // The table holds the same days, and its sums are the totals shown.
    let sums = c
        .execute(
            "const rows = [...document.querySelectorAll('#traffic-table tbody tr')];\
             const sum = i => rows.reduce((a, r) => a + Number(r.querySelectorAll('td')[i].dataset.bytes), 0);\
             return [rows.length, sum(0), sum(1), document.querySelector('#total-down').textContent,\
                     document.querySelector('#traffic-table tfoot td').textContent]",
            vec![],
        )
        .await
        .expect("table");
    assert_eq!(sums[0], serde_json::json!(days), "{sums}");
    let down = sums[1].as_f64().expect("sum");
    let shown = sums[3].as_str().expect("total").replace('\u{a0}', " ");
    let (value, unit) = shown.split_once(' ').expect("value and unit");
    let scale = match unit {
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => panic!("unit {other}"),
    };
    let value: f64 = value.parse().expect("number");
    assert!(
        (value * scale - down).abs() <= 0.05 * scale + 0.005 * down,
        "{shown} vs {down}"
    );
    assert_eq!(sums[4], sums[3], "the table's footer has the total");
    // The FUP bar, and the page passes axe and fits the phone; also in Czech and the other views.
    let meter = c
        .execute(
            "const m = document.querySelector('#fup meter'); return [m.value / m.max, m.labels.length]",
            vec![],
        )
        .await
        .expect("meter");
    assert!(meter[0].as_f64().expect("share") > 0.8, "{meter}");
    assert_eq!(meter[1], serde_json::json!(1));
    fits_and_passes_axe(&c, "/traffic/ month").await;
    click(&c, "summary").await;
    fits_and_passes_axe(&c, "/traffic/ month with the table open").await;
    let here = c.current_url().await.expect("url").to_string();
    let base = here.split('?').next().expect("url");
    for q in ["period=day", "period=week", "period=year", "lang=cs"] {
        c.goto(&format!("{base}?{q}")).await.expect("open");
        fits_and_passes_axe(&c, &format!("traffic {q}")).await;
    }
    c.close().await.expect("close");
}

#[tokio::test]
async fn alice_sends_an_sms_and_keeps_a_directory_on_a_phone() {
    let s = Server::demo();
    let (_driver, c) = browser().await;
    c.set_window_size(360, 740).await.expect("resize");
    c.goto(&s.url("/sign/")).await.expect("open");
    fill_login(&c, LoginForm::Portal, "1001", "alice-demo-pass").await;
    click(&c, "a.menu-sms").await;
    wait_for_text(&c, "h1", "Send SMS").await.expect("the tab");
    fits_and_passes_axe(&c, "/sms/").await;

    // The counter follows the text while she types (GSM, then UCS-2 with a háček).
    let area = c.find(Locator::Css("#text")).await.expect("text");
    area.send_keys(&"a".repeat(161)).await.expect("type");
    wait_for_text(
        &c,
        "#sms-count-text",
        "Standard characters: characters 161, parts 2/5",
    )
    .await
    .expect("GSM count");
    area.send_keys("ř").await.expect("type");
    wait_for_text(
        &c,
        "#sms-count-text",
        "Unicode (diacritics): characters 162, parts 3/5",
    )
    .await
    .expect("UCS-2 count");
    c.find(Locator::Css("#to"))
        .await
        .expect("to")
        .send_keys("601 123 456")
        .await
        .expect("type");
    submit(&c, "#sms-send", "Your message was accepted").await;
    assert!(text_of(&c, "#sms-1").await.contains("Queued"));
    fits_and_passes_axe(&c, "/sms/ with a sent message").await;

    // The directory and its edit form.
    click(&c, "#sms-directory").await;
    wait_for_text(&c, "h1", "Telephone directory")
        .await
        .expect("directory");
    fits_and_passes_axe(&c, "/sms/directory").await;
    c.find(Locator::Css("#name"))
        .await
        .expect("name")
        .send_keys("Mum")
        .await
        .expect("type");
    c.find(Locator::Css("#number"))
        .await
        .expect("number")
        .send_keys("602 111 222")
        .await
        .expect("type");
    submit(&c, "#contact-add-form button", "The contact was saved.").await;
    c.goto(&s.url("/sms/directory/1")).await.expect("open");
    fits_and_passes_axe(&c, "/sms/directory/1").await;
    c.close().await.expect("close");
}
