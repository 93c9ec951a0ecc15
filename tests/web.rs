//! The portal over real HTTP: login, tabs, settings that shape them, bad input, security.

mod common;

use common::{Server, csrf_of, raw_http, raw_status};

#[tokio::test]
async fn healthz_answers_json() {
    let s = Server::demo();
    let r = reqwest::get(s.url("/healthz")).await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.expect("body"),
        r#"{"status":"ok","maintenance":false,"suspended":false}"#
    );
}

#[tokio::test]
async fn portal_pages_send_anonymous_visitors_to_the_login_page() {
    let s = Server::demo();
    let c = s.client();
    for path in ["/", "/services/", "/invoicing/"] {
        let r = c.get(s.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/sign/", "{path}");
    }
}

#[tokio::test]
async fn alice_logs_in_by_number_or_username_and_sees_her_information() {
    let s = Server::demo();
    for login in ["1001", "alice", "ALICE"] {
        let c = s.login(login, "alice-demo-pass").await;
        let (status, html) = s.get_text(&c, "/").await;
        assert_eq!(status, 200);
        assert!(html.contains("Alice Nováková"), "name shown");
        // Private, invoice-group and global messages within validity; not the expired one.
        assert!(html.contains("Your new router is ready"));
        assert!(html.contains("Fiber is coming to your street"));
        assert!(html.contains("Planned network maintenance"));
        assert!(!html.contains("Holiday opening hours"));
        // Her group's supplier in the footer, the webmail button in the menu.
        assert!(html.contains("Example Net s.r.o."));
        assert!(html.contains("https://webmail.example.net/"));
    }
}

#[tokio::test]
async fn a_client_never_sees_another_clients_data() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&bob, "/").await;
    assert!(html.contains("Bob Dvořák"));
    assert!(
        !html.contains("Alice"),
        "alice's private message or name leaked to bob"
    );
    assert!(
        !html.contains("Fiber is coming"),
        "group 1 message shown to group 2"
    );
    assert!(html.contains("Your account manager"));
    let (_, inv) = s.get_text(&bob, "/invoicing/").await;
    assert!(inv.contains("1,990.00"), "bob's business tariff invoices");
    assert!(
        !inv.contains("299.00"),
        "alice's invoice amounts must not show"
    );
}

#[tokio::test]
async fn wrong_credentials_get_one_generic_message() {
    let s = Server::demo();
    let c = s.client();
    let mut bodies = vec![];
    for (u, p) in [
        ("alice", "wrong-pass"),
        ("nobody", "alice-demo-pass"),
        ("1003", "whatever1"),
    ] {
        let r = c
            .post(s.url("/sign/"))
            .form(&[("username", u), ("password", p)])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 401);
        let html = r.text().await.expect("body");
        assert!(html.contains("The login name or password is not correct."));
        bodies.push(html.replace(u, "USER"));
    }
    assert_eq!(
        bodies[0], bodies[1],
        "unknown user and wrong password look the same"
    );
}

#[tokio::test]
async fn incomplete_or_malformed_forms_re_render_in_the_clients_language() {
    let s = Server::demo();
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .header("Accept-Language", "cs-CZ,cs;q=0.9")
        .form(&[("username", "alice")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("Zadejte číslo klienta nebo přihlašovací jméno a heslo."),
        "{html}"
    );
    assert!(html.contains("lang=\"cs\""));

    // Not a form at all.
    let r = c
        .post(s.url("/sign/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'u', b'=', 0xff, 0xfe, b'&', b'p', b'=', 0xc3])
        .send()
        .await
        .expect("post");
    assert!(
        r.status().is_client_error(),
        "non-UTF-8 body: {}",
        r.status()
    );
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("The form could not be read")
    );
}

/// A login form of exactly `len` bytes (a wrong password padded with `a`).
fn login_body(len: usize) -> Vec<u8> {
    let mut body = b"username=alice&password=".to_vec();
    body.resize(len, b'a');
    body
}

fn form_post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /sign/ HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{headers}\r\n"
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[test]
fn oversized_bodies_are_refused_with_413_without_reading_them() {
    let s = Server::demo();
    let limit = 16 * 1024;
    // At the limit the form is read (a wrong password); one byte over it is refused.
    let r = raw_http(
        &s.base,
        &form_post(
            &format!("Content-Length: {limit}\r\nConnection: close\r\n"),
            &login_body(limit),
        ),
    );
    assert_eq!(raw_status(&r), 401, "{r}");
    let r = raw_http(
        &s.base,
        &form_post(
            &format!("Content-Length: {}\r\nConnection: close\r\n", limit + 1),
            &login_body(limit + 1),
        ),
    );
    assert_eq!(raw_status(&r), 413, "{r}");

    // 20 MB announced, 1 KiB sent, the connection kept open: the answer comes at once, so the
    // portal waits neither for the body nor for the first 16 KiB of it.
    let r = raw_http(
        &s.base,
        &form_post("Content-Length: 20000000\r\n", &login_body(1024)),
    );
    assert_eq!(raw_status(&r), 413, "{r}");
    assert!(
        r.contains("content-type: text/html"),
        "the themed error page: {r}"
    );

    // Without a length (chunked), reading stops at the limit: one 20 KiB chunk, never ended,
    // gets the login page's "could not be read" at once (the login takes its form leniently;
    // a handler taking `CheckedForm` would answer 413 here).
    let mut chunk = format!("{:x}\r\n", 20 * 1024).into_bytes();
    chunk.extend_from_slice(&login_body(20 * 1024));
    chunk.extend_from_slice(b"\r\n");
    let r = raw_http(
        &s.base,
        &form_post("Transfer-Encoding: chunked\r\n", &chunk),
    );
    assert_eq!(raw_status(&r), 400, "{r}");
    assert!(r.contains("The form could not be read"), "{r}");
}

#[tokio::test]
async fn services_show_via_dhcp_and_only_active_services() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&c, "/services/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Via DHCP"),
        "alice's internet is configured by DHCP"
    );
    assert!(html.contains("Basic 20"));
    assert!(html.contains("150 GB"), "FUP limit shown");
    assert!(
        !html.contains("Phone line (ended)"),
        "inactive service hidden"
    );
}

#[tokio::test]
async fn invoicing_tab_follows_its_settings_changed_while_running() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&c, "/invoicing/").await;
    assert_eq!(status, 200);
    assert!(html.contains("Balance"));
    assert!(html.contains("class=\"badge paid\""));
    let (_, info) = s.get_text(&c, "/").await;
    assert!(info.contains("href=\"/invoicing/\""));

    // Operator commands reach the running portal through its control socket.
    let (ok, out, err) = s.cli(&["settings", "set", "ci_display_balance", "off"]);
    assert!(ok, "{out}{err}");
    let (_, html) = s.get_text(&c, "/invoicing/").await;
    assert!(!html.contains("Balance"), "balance hidden");

    let (ok, _, err) = s.cli(&[
        "settings",
        "set",
        "ci_display_invoices_tab",
        "off",
        "--group",
        "1",
    ]);
    assert!(ok, "{err}");
    let (_, info) = s.get_text(&c, "/").await;
    assert!(
        !info.contains("href=\"/invoicing/\""),
        "tab gone from the menu"
    );
    let (status, _) = s.get_text(&c, "/invoicing/").await;
    assert_eq!(status, 404, "and its page with it");
    // Bob is in group 2: still has it.
    let bob = s.login("bob", "bob-demo-pass").await;
    let (status, _) = s.get_text(&bob, "/invoicing/").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cash_payments_and_supplier_contact_follow_settings() {
    let s = Server::demo();
    // Client 1006 (id 6) pays in cash in the demo; give them a password first.
    let (ok, _, err) = common::portico(
        &[
            "client",
            "set-password",
            "1006",
            "--data",
            s.data_dir().to_str().expect("path"),
        ],
        Some("cash-payer-pass\n"),
    );
    assert!(ok, "{err}");
    let c = s
        .login_one_time("1006", "cash-payer-pass", "Cash-Payer-2026-own")
        .await;
    let (_, html) = s.get_text(&c, "/invoicing/").await;
    assert!(html.contains("payment-cash"));
    s.cli_ok(&["settings", "set", "ci_display_cash_payments", "0"]);
    let (_, html) = s.get_text(&c, "/invoicing/").await;
    assert!(!html.contains("payment-cash"));
    let (_, html) = s.get_text(&c, "/").await;
    assert!(html.contains("class=\"supplier\""));
    s.cli_ok(&["settings", "set", "ci_display_supplier_contact", "false"]);
    let (_, html) = s.get_text(&c, "/").await;
    assert!(!html.contains("class=\"supplier\""));
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&c, "/").await;
    let csrf = csrf_of(&html);
    let r = c
        .post(s.url("/sign/out/"))
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "logout without the right token is refused");
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 200, "still logged in");
    let r = c
        .post(s.url("/sign/out/"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 303, "logged out");
}

#[tokio::test]
async fn a_stolen_cookie_is_useless_after_logout() {
    let s = Server::demo();
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    let set_cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let session = set_cookie.split(';').next().expect("pair").to_string();
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let ok = thief
        .get(s.url("/"))
        .header("Cookie", &session)
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    let (_, html) = s.get_text(&c, "/").await;
    c.post(s.url("/sign/out/"))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .expect("logout");
    let after = thief
        .get(s.url("/"))
        .header("Cookie", &session)
        .send()
        .await
        .expect("get");
    assert_eq!(after.status(), 303, "server forgot the session");
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let s = Server::demo();
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let r = c
        .post(s.url("/sign/"))
        .header("Origin", "https://evil.example")
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Logging in from another website is not allowed")
    );
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    for path in ["/", "/no-such-page", "/static/style.css", "/healthz"] {
        let r = c.get(s.url(path)).send().await.expect("get");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("object-src 'none'")
                && csp.contains("frame-ancestors 'none'")
                && csp.contains("base-uri"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
    }
    let r = c.get(s.url("/")).send().await.expect("get");
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn unknown_pages_get_the_themed_404_in_the_clients_language() {
    let s = Server::demo();
    let c = s.client();
    let r = c
        .get(s.url("/nowhere"))
        .header("Accept-Language", "cs")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let html = r.text().await.expect("body");
    assert!(html.contains("Stránka nenalezena"));
    assert!(html.contains("/static/style.css"), "themed");
    let signed_in = s.login("alice", "alice-demo-pass").await;
    let (status, html) = s.get_text(&signed_in, "/nowhere").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("menu-information"),
        "a logged-in client keeps the menu"
    );
}

#[tokio::test]
async fn language_switch_is_kept_in_the_profile() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&c, "/services/").await;
    assert!(html.contains("Services"));
    let csrf = csrf_of(&html);
    let r = c
        .post(s.url("/lang/"))
        .form(&[
            ("lang", "cs"),
            ("next", "/services/"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/services/");
    // A fresh browser (no language cookie, English Accept-Language) still gets Czech for alice.
    let other = s.login("alice", "alice-demo-pass").await;
    let r = other
        .get(s.url("/"))
        .header("Accept-Language", "en")
        .send()
        .await
        .expect("get");
    let html = r.text().await.expect("body");
    assert!(html.contains("Informace") && html.contains("lang=\"cs\""));
    // Open redirects are not followed.
    let r = c
        .post(s.url("/lang/"))
        .form(&[
            ("lang", "en"),
            ("next", "//evil.example/"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn maintenance_mode_shows_the_maintenance_page() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (ok, out, _) = s.cli(&["maintenance", "on"]);
    assert!(ok && out.contains("on"), "{out}");
    for path in ["/", "/sign/"] {
        let (status, html) = s.get_text(&c, path).await;
        assert_eq!(status, 503, "{path}");
        assert!(html.contains("The portal is under maintenance"), "{path}");
    }
    let (status, _) = s.get_text(&c, "/healthz").await;
    assert_eq!(status, 200);
    // Any case, and the other yes/no words settings take.
    s.cli_ok(&["maintenance", "OFF"]);
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 200);
    s.cli_ok(&["maintenance", "Yes"]);
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 503);
    let (ok, _, err) = s.cli(&["maintenance", "maybe"]);
    assert!(!ok && err.contains("`maybe` is not on or off"), "{err}");
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 503, "a refused value changes nothing");
    s.cli_ok(&["maintenance", "off"]);
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn clients_choose_a_login_name_when_the_setting_allows() {
    let s = Server::demo();
    let c = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&c, "/").await;
    assert!(
        html.contains("/profile/login-name/"),
        "demo turns the setting on"
    );
    let csrf = csrf_of(&html);
    let post = |name: &'static str| {
        let c = c.clone();
        let url = s.url("/profile/login-name/");
        let csrf = csrf.clone();
        async move {
            let r = c
                .post(url)
                .form(&[("username", name), ("csrf", csrf.as_str())])
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    let (status, html) = post("alice").await;
    assert_eq!(status, 422);
    assert!(html.contains("already taken"));
    let (status, html) = post("1x").await;
    assert_eq!(status, 422);
    assert!(html.contains("3 to 64"));
    let (status, html) = post("bobby.d").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Your login name was saved."));
    let again = s.login("bobby.d", "bob-demo-pass").await;
    let (_, html) = s.get_text(&again, "/").await;
    assert!(html.contains("Bob Dvořák"));

    s.cli_ok(&["settings", "set", "ci_enable_login_name_creation", "off"]);
    let (_, html) = s.get_text(&c, "/").await;
    assert!(!html.contains("/profile/login-name/"));
    let (status, _) = post("bobby2").await;
    assert_eq!(status, 404);
}

#[test]
fn static_paths_cannot_leave_the_theme_folder() {
    let s = Server::demo();
    let get = |path: &str| {
        raw_http(
            &s.base,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    // Rocket drops `..` segments that would climb above /static/, so what is left is looked
    // up (and not found) in the theme; a segment with an encoded `/` or a `\\` is refused.
    for (path, status) in [
        ("/static/../Cargo.toml", 404),
        ("/static/%2e%2e/%2e%2e/Cargo.toml", 404),
        ("/static/..%2fCargo.toml", 422),
        ("/static/..\\Cargo.toml", 422),
        ("/static/%2e%2e%5cCargo.toml", 422),
        ("/static/.%2e/.%2e/store/db", 404),
        ("/static/%2e%2e/theme.toml", 404),
        ("/static/..%2ftheme.toml", 422),
    ] {
        let r = get(path);
        assert_eq!(raw_status(&r), status, "{path}: {r}");
        assert!(
            r.contains("content-type: text/html"),
            "{path}: the themed error page, not a file: {r}"
        );
        for outside in ["[workspace]", "[package]", "segment_size", "The basic red"] {
            assert!(!r.contains(outside), "{path} leaked {outside}: {r}");
        }
    }
    // The same folder is reachable the normal way, and `..` inside it stays inside it.
    assert_eq!(raw_status(&get("/static/style.css")), 200);
    let r = get("/static/images/../style.css");
    assert_eq!(raw_status(&r), 200, "{r}");
    assert!(r.contains("content-type: text/css"), "{r}");
}
