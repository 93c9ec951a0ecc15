//! Getting in safely: lockout, password links by e-mail through a real SMTP server, operator
//! one-time passwords, the Password tab, sessions and the audit log.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Server, Smtp, csrf_of, free_port, link_in};

/// A demo portal wired to a real SMTP server, with ci_url pointing at itself.
fn portal_with_mail(smtp: &Smtp) -> Server {
    let s = Server::demo_with(Options {
        smtp_url: Some(smtp.url()),
        ..Options::default()
    });
    let base = format!("{}/", s.base);
    let (ok, _, err) = s.cli(&["settings", "set", "ci_url", &base]);
    assert!(ok, "{err}");
    s
}

async fn post_form(
    s: &Server,
    c: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let r = c.post(s.url(path)).form(fields).send().await.expect("post");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

async fn try_login(s: &Server, user: &str, password: &str) -> (u16, String, Option<String>) {
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_string());
    (status, r.text().await.expect("body"), location)
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_link_in_the_mail() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let c = s.client();
    let (_, sign) = s.get_text(&c, "/sign/").await;
    assert!(sign.contains("Did you forget your password? Or you do not have one yet?"));
    let (status, form) = s.get_text(&c, "/sign/forgot/").await;
    assert_eq!(status, 200);
    assert!(form.contains("type=\"email\""), "e-mail mode by default");

    let (status, answer) =
        post_form(&s, &c, "/sign/forgot/", &[("login", "Alice@Example.com")]).await;
    assert_eq!(status, 200);
    assert!(answer.contains("Check your e-mail"));
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(
        mail.contains("portal@example.net"),
        "from system_mail: {mail}"
    );
    assert!(
        mail.contains("Example Net client portal"),
        "from system_mail_name"
    );
    assert!(mail.contains("alice@example.com"));
    let link = link_in(&mail);
    assert!(
        link.starts_with(&format!("{}/sign/password/", s.base)),
        "built from ci_url: {link}"
    );
    let path = link.trim_start_matches(&s.base).to_string();

    let (status, page) = s.get_text(&c, &path).await;
    assert_eq!(status, 200);
    assert!(page.contains("Set a new password"));
    for (new, repeat, reason) in [
        ("Sunny-Meadow-42", "Sunny-Meadow-43", "not the same"),
        ("short", "short", "too short"),
        ("password123", "password123", "too common"),
        ("", "", "Enter the new password twice"),
    ] {
        let (status, html) = post_form(&s, &c, &path, &[("new", new), ("repeat", repeat)]).await;
        assert_eq!(status, 422, "{reason}");
        assert!(html.contains(reason), "{reason}: {html}");
    }
    let (status, html) = post_form(
        &s,
        &c,
        &path,
        &[("new", "Sunny-Meadow-42"), ("repeat", "Sunny-Meadow-42")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Your password is set"));

    assert_eq!(try_login(&s, "alice", "Sunny-Meadow-42").await.0, 303);
    assert_eq!(
        try_login(&s, "alice", "alice-demo-pass").await.0,
        401,
        "old password gone"
    );
    // Single use.
    let (status, html) = s.get_text(&c, &path).await;
    assert_eq!(status, 410);
    assert!(html.contains("This link does not work"));
    let (status, _) = post_form(
        &s,
        &c,
        &path,
        &[("new", "Other-Meadow-77"), ("repeat", "Other-Meadow-77")],
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(
        try_login(&s, "alice", "Sunny-Meadow-42").await.0,
        303,
        "nothing changed by the reuse"
    );
    // Forged tokens.
    let (status, _) = s
        .get_text(&c, &format!("/sign/password/{}", "ab".repeat(32)))
        .await;
    assert_eq!(status, 410);
}

#[tokio::test]
async fn unknown_accounts_get_the_same_answer_in_the_same_time_and_no_mail() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let c = s.client();
    let mut answers = vec![];
    for email in ["nobody@example.org", "bob@example.com"] {
        let t = Instant::now();
        let (status, html) = post_form(&s, &c, "/sign/forgot/", &[("login", email)]).await;
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(400),
            "{email} answered in {took:?}"
        );
        let main = html[html.find("<main").expect("main")..html.find("</main>").expect("/main")]
            .to_string();
        answers.push((status, main));
    }
    assert_eq!(
        answers[0], answers[1],
        "same answer whether or not the account exists"
    );
    let mails = smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 1, "only bob got a mail: {mails:?}");
    assert!(mails[0].contains("bob@example.com"));
}

#[tokio::test]
async fn username_mode_and_the_link_only_with_a_sender() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    s.cli(&["settings", "set", "ci_forgotten_password", "username"]);
    let c = s.client();
    let (_, form) = s.get_text(&c, "/sign/forgot/").await;
    assert!(form.contains("Your client number or login name"));
    post_form(&s, &c, "/sign/forgot/", &[("login", "1002")]).await;
    assert!(smtp.wait_for(1).await[0].contains("bob@example.com"));
    let (status, html) = post_form(&s, &c, "/sign/forgot/", &[("login", "")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("Fill in the field"));

    s.cli(&["settings", "unset", "system_mail_name"]);
    let (_, sign) = s.get_text(&c, "/sign/").await;
    assert!(!sign.contains("/sign/forgot/"));
    let (status, _) = s.get_text(&c, "/sign/forgot/").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn password_links_expire() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let c = s.client();
    post_form(&s, &c, "/sign/forgot/", &[("login", "alice@example.com")]).await;
    let link = link_in(&smtp.wait_for(1).await[0]);
    let path = link.trim_start_matches(&s.base).to_string();
    assert_eq!(s.get_text(&c, &path).await.0, 200);
    s.advance_clock(61 * 60);
    let (status, html) = s.get_text(&c, &path).await;
    assert_eq!(status, 410);
    assert!(html.contains("expired"));

    // Without ci_url, links are built from ispadmin_server (never from the Host header).
    s.cli(&["settings", "unset", "ci_url"]);
    s.cli(&[
        "settings",
        "set",
        "ispadmin_server",
        "https://billing.example.net",
    ]);
    post_form(&s, &c, "/sign/forgot/", &[("login", "bob@example.com")]).await;
    let mails = smtp.wait_for(2).await;
    let bob = mails
        .iter()
        .find(|m| m.contains("bob@example.com"))
        .expect("bob's mail");
    assert!(
        link_in(bob).starts_with("https://billing.example.net/clientinterface/sign/password/"),
        "{}",
        link_in(bob)
    );
}

#[tokio::test]
async fn mail_waits_in_the_outbox_while_smtp_is_down_and_survives_a_restart() {
    let port = free_port();
    let s = Server::demo_with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Options::default()
    });
    s.cli(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    let c = s.client();
    let (status, html) =
        post_form(&s, &c, "/sign/forgot/", &[("login", "alice@example.com")]).await;
    assert_eq!(
        status, 200,
        "the client's answer does not depend on the SMTP server"
    );
    assert!(html.contains("Check your e-mail"));
    let failed_once = Server::wait_for(Duration::from_secs(10), || {
        let (_, out, _) = s.cli(&["mail", "queue"]);
        async move { out.contains("1 attempt(s)") }
    })
    .await;
    assert!(
        failed_once.is_some(),
        "first attempt failed and is recorded"
    );
    let (_, queue, _) = s.cli(&["mail", "queue"]);
    assert!(
        queue.contains("pending") && queue.contains("SMTP"),
        "{queue}"
    );
    assert!(
        !queue.contains("/sign/password/"),
        "no link (secret) in the outbox"
    );

    let data = s.stop();
    let smtp = Smtp::start_on(port);
    let s = Server::serve(
        data,
        Options {
            smtp_url: Some(smtp.url()),
            ..Options::default()
        },
    );
    s.advance_clock(31);
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.contains("alice@example.com"));
    let (_, queue, _) = s.cli(&["mail", "queue"]);
    assert!(queue.contains("empty"), "{queue}");
}

#[tokio::test]
async fn undeliverable_mail_is_given_up_after_its_retries_and_listed() {
    let port = free_port();
    let s = Server::demo_with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Options::default()
    });
    s.cli(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    post_form(
        &s,
        &s.client(),
        "/sign/forgot/",
        &[("login", "bob@example.com")],
    )
    .await;
    let gave_up = Server::wait_for(Duration::from_secs(30), || {
        s.advance_clock(7300);
        let (_, out, _) = s.cli(&["mail", "queue"]);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            out.contains("FAILED")
        }
    })
    .await;
    assert!(gave_up.is_some(), "{}", s.cli(&["mail", "queue"]).1);
    let (_, queue, _) = s.cli(&["mail", "queue"]);
    assert!(queue.contains("6 attempt(s)"), "{queue}");
    assert!(s.log_text().contains("mail undelivered after 6 attempts"));
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_client_not_the_address() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    // Failures in a row reset on success.
    for _ in 0..4 {
        assert_eq!(try_login(&s, "alice", "wrong").await.0, 401);
    }
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 303);
    for _ in 0..4 {
        try_login(&s, "alice", "wrong").await;
    }
    let (status, html, _) = try_login(&s, "1001", "wrong").await;
    assert_eq!(status, 401);
    assert!(
        html.contains("temporarily locked"),
        "the fifth failure locks"
    );
    let (status, html, _) = try_login(&s, "alice", "alice-demo-pass").await;
    assert_eq!(status, 403, "locked even with the right password");
    assert!(html.contains("temporarily locked"));
    assert!(
        !html.contains("not correct"),
        "nothing said about the password"
    );
    assert_eq!(
        try_login(&s, "bob", "bob-demo-pass").await.0,
        303,
        "per client"
    );

    // "Forgot password" still works while locked.
    post_form(
        &s,
        &s.client(),
        "/sign/forgot/",
        &[("login", "alice@example.com")],
    )
    .await;
    assert!(smtp.wait_for(1).await[0].contains("alice@example.com"));

    s.advance_clock(14 * 60);
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 403);
    s.advance_clock(61);
    assert_eq!(
        try_login(&s, "alice", "alice-demo-pass").await.0,
        303,
        "unlocked after 15 minutes"
    );

    let (_, audit, _) = s.cli(&["audit", "--client", "alice"]);
    for kind in [
        "LoginOk",
        "LoginFailed",
        "Lockout",
        "LoginWhileLocked",
        "ResetRequested",
    ] {
        assert!(audit.contains(kind), "{kind} in\n{audit}");
    }
    assert!(
        !audit.contains("alice-demo-pass") && !audit.contains("wrong"),
        "no passwords in the audit"
    );
}

#[tokio::test]
async fn a_one_time_password_works_once_and_forces_a_new_password() {
    let s = Server::demo();
    let (ok, out, _) = s.cli(&["client", "otp", "alice"]);
    assert!(ok, "{out}");
    let otp = out
        .split_whitespace()
        .find(|w| w.len() == 17 && w.matches('-').count() == 2)
        .expect("printed once")
        .to_string();
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", otp.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/password/");
    for path in ["/", "/services/", "/invoicing/"] {
        let r = c.get(s.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(
            r.headers()["location"],
            "/password/",
            "{path}: nothing else before a new password"
        );
    }
    let (_, page) = s.get_text(&c, "/password/").await;
    assert!(page.contains("one-time password"));
    assert!(
        !page.contains("name=\"current\""),
        "no current password asked"
    );
    assert!(!page.contains("menu-information"), "no menu yet");
    let csrf = csrf_of(&page);
    let (status, html) = post_form(
        &s,
        &c,
        "/password/",
        &[
            ("csrf", &csrf),
            ("new", "Harbour-Lights-81"),
            ("repeat", "Harbour-Lights-81"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(s.get_text(&c, "/").await.0, 200);
    assert_eq!(
        try_login(&s, "alice", &otp).await.0,
        401,
        "the one-time password is spent"
    );
    assert_eq!(try_login(&s, "alice", "Harbour-Lights-81").await.0, 303);
    let (_, audit, _) = s.cli(&["audit"]);
    assert!(audit.contains("OperatorOneTimePassword") && !audit.contains(&otp));
}

#[tokio::test]
async fn operator_set_passwords_are_one_time_too_and_mail_needs_a_sender_and_an_address() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let data = s.data_dir();
    let data = data.to_str().expect("path");
    let (ok, out, _) = common::portico(
        &["client", "set-password", "bob", "--data", data],
        Some("Operator-Chosen-1\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("works for one login"));
    let c = s.login("bob", "Operator-Chosen-1").await;
    assert_eq!(
        s.get_text(&c, "/").await.0,
        303,
        "must choose a new password first"
    );
    assert_eq!(
        try_login(&s, "bob", "Operator-Chosen-1").await.0,
        401,
        "used up"
    );

    let (ok, out, err) = s.cli(&["client", "send-password-email", "1003"]);
    assert!(ok, "{err}");
    assert!(out.contains("queued"), "{out}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(
        mail.contains("Create your client portal password"),
        "{mail}"
    );
    let link = link_in(&mail);
    let path = link.trim_start_matches(&s.base).to_string();
    let (status, page) = s.get_text(&s.client(), &path).await;
    assert_eq!(status, 200);
    assert!(page.contains("Create your password"));

    // A client without an e-mail address.
    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = tmp.path().join("b.json");
    std::fs::write(
        &bundle,
        r#"{"clients": [{"id": 500, "number": "9500", "name": "No Mail", "invoice_group_id": 1}]}"#,
    )
    .expect("write");
    assert!(s.cli(&["import", bundle.to_str().expect("path")]).0);
    let (ok, _, err) = s.cli(&["client", "send-password-email", "9500"]);
    assert!(!ok && err.contains("has no e-mail address"), "{err}");
    s.cli(&["settings", "unset", "system_mail"]);
    let (ok, _, err) = s.cli(&["client", "send-password-email", "1003"]);
    assert!(!ok && err.contains("system_mail"), "{err}");
}

#[tokio::test]
async fn an_invoice_group_template_shapes_the_mail() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let tmp = tempfile::tempdir().expect("tmp");
    let body = tmp.path().join("body.txt");
    std::fs::write(
        &body,
        "Dear {{ client.name }}, set your password here: $CI_PASSWORD_LINK$ -- Residential team",
    )
    .expect("write");
    let (ok, _, err) = s.cli(&[
        "mail",
        "template",
        "set",
        "new_portal_password",
        "--subject",
        "Residential portal access",
        "--body-file",
        body.to_str().expect("path"),
        "--group",
        "1",
    ]);
    assert!(ok, "{err}");
    post_form(
        &s,
        &s.client(),
        "/sign/forgot/",
        &[("login", "alice@example.com")],
    )
    .await;
    post_form(
        &s,
        &s.client(),
        "/sign/forgot/",
        &[("login", "bob@example.com")],
    )
    .await;
    let mails = smtp.wait_for(2).await;
    let alice = mails
        .iter()
        .find(|m| m.contains("alice@example.com"))
        .expect("alice's mail");
    let bob = mails
        .iter()
        .find(|m| m.contains("bob@example.com"))
        .expect("bob's mail");
    assert!(alice.contains("Residential portal access") && alice.contains("Residential team"));
    assert!(link_in(alice).contains("/sign/password/"));
    assert!(
        !bob.contains("Residential team"),
        "group 2 keeps the built-in text"
    );
    let (ok, _, err) = s.cli(&[
        "mail",
        "template",
        "set",
        "new_portal_password",
        "--subject",
        "{{ broken",
        "--body-file",
        body.to_str().expect("path"),
    ]);
    assert!(!ok && err.contains("subject"), "{err}");
}

#[tokio::test]
async fn the_password_tab_checks_its_rules_and_ends_other_sessions() {
    let s = Server::demo();
    let here = s.login("alice", "alice-demo-pass").await;
    let elsewhere = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&here, "/password/").await;
    assert!(page.contains("menu-password"));
    let csrf = csrf_of(&page);
    let long = "a quiet river runs under the old stone bridge every single morning ".repeat(2);
    for (current, new, repeat, reason) in [
        (
            "wrong-current",
            "Harbour-Lights-81",
            "Harbour-Lights-81",
            "current password is not correct",
        ),
        (
            "alice-demo-pass",
            "Harbour-Lights-81",
            "Harbour-Lights-82",
            "not the same",
        ),
        ("alice-demo-pass", "abc", "abc", "too short"),
        ("alice-demo-pass", "qwertyuiop", "qwertyuiop", "too common"),
    ] {
        let (status, html) = post_form(
            &s,
            &here,
            "/password/",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("new", new),
                ("repeat", repeat),
            ],
        )
        .await;
        assert_eq!(status, 422, "{reason}");
        assert!(html.contains(reason), "{reason}");
    }
    let (status, _) = post_form(
        &s,
        &here,
        "/password/",
        &[
            ("csrf", "forged"),
            ("current", "alice-demo-pass"),
            ("new", &long),
            ("repeat", &long),
        ],
    )
    .await;
    assert_eq!(status, 403, "CSRF");
    let (status, html) = post_form(
        &s,
        &here,
        "/password/",
        &[
            ("csrf", &csrf),
            ("current", "alice-demo-pass"),
            ("new", &long),
            ("repeat", &long),
        ],
    )
    .await;
    assert_eq!(status, 200, "{} characters accepted", long.len());
    assert!(html.contains("Other devices were logged out"));
    assert_eq!(s.get_text(&here, "/").await.0, 200, "this session stays");
    assert_eq!(
        s.get_text(&elsewhere, "/").await.0,
        303,
        "the other one ended"
    );
    assert_eq!(
        try_login(&s, "alice", &long).await.0,
        303,
        "no truncation: the whole phrase is the password"
    );
    assert_eq!(try_login(&s, "alice", &long[..64]).await.0, 401);
}

#[tokio::test]
async fn logout_can_forward_and_tls_portals_get_host_prefixed_secure_cookies() {
    let s = Server::demo();
    s.cli(&[
        "settings",
        "set",
        "ci_forward_url_after_logout",
        "https://www.example.net/bye",
    ]);
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&c, "/").await;
    let r = c
        .post(s.url("/sign/out/"))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.headers()["location"], "https://www.example.net/bye");

    s.cli(&["settings", "set", "ci_url", "https://portal.example.net/"]);
    let r = s
        .client()
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    let cookie = r.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cookie.starts_with("__Host-portico_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}
