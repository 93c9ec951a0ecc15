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
    let (ok, _, err) = s.cli(&[
        "settings",
        "set",
        "ci_password_forgot_per_address_per_hour",
        "1000",
    ]);
    assert!(ok, "{err}");
    let c = s.client();
    let mut answers = vec![];
    let mut took: [Vec<f64>; 2] = [vec![], vec![]];
    // Twenty tries each, interleaved: the first for bob queues a mail, the rest find a link
    // sent moments ago; none of that may show in the answer or its time.
    for _ in 0..20 {
        for (i, email) in ["nobody@example.org", "bob@example.com"].iter().enumerate() {
            let t = Instant::now();
            let (status, html) = post_form(&s, &c, "/sign/forgot/", &[("login", email)]).await;
            took[i].push(t.elapsed().as_secs_f64() * 1000.0);
            let main = html
                [html.find("<main").expect("main")..html.find("</main>").expect("/main")]
                .to_string();
            answers.push((status, main));
        }
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "same answer whether or not the account exists"
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (unknown, known) = (mean(&took[0]), mean(&took[1]));
    assert!(
        unknown >= 400.0 && known >= 400.0,
        "{unknown:.0} / {known:.0} ms"
    );
    assert!(
        (unknown - known).abs() < 50.0,
        "unknown {unknown:.1} ms vs known {known:.1} ms"
    );
    outbox_drained(&s).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "only bob got a mail, once: {mails:?}");
    assert!(mails[0].contains("bob@example.com"));
}

/// Waits until the portal has sent (or given up) everything it queued.
async fn outbox_drained(s: &Server) {
    let drained = Server::wait_for(Duration::from_secs(20), || async {
        let (ok, out, _) = s.cli(&["mail", "queue"]);
        ok && out.trim() == "the mail outbox is empty"
    })
    .await;
    assert!(drained.is_some(), "the outbox did not drain");
}

#[tokio::test]
async fn username_mode_and_the_link_only_with_a_sender() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    s.cli_ok(&["settings", "set", "ci_forgotten_password", "username"]);
    let c = s.client();
    let (_, form) = s.get_text(&c, "/sign/forgot/").await;
    assert!(form.contains("Your client number or login name"));
    post_form(&s, &c, "/sign/forgot/", &[("login", "1002")]).await;
    assert!(smtp.wait_for(1).await[0].contains("bob@example.com"));
    let (status, html) = post_form(&s, &c, "/sign/forgot/", &[("login", "")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("Fill in the field"));

    s.cli_ok(&["settings", "unset", "system_mail_name"]);
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
    s.cli_ok(&["settings", "unset", "ci_url"]);
    s.cli_ok(&[
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
    s.cli_ok(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    let c = s.client();
    let (status, html) =
        post_form(&s, &c, "/sign/forgot/", &[("login", "alice@example.com")]).await;
    assert_eq!(
        status, 200,
        "the client's answer does not depend on the SMTP server"
    );
    assert!(html.contains("Check your e-mail"));
    let failed_once = Server::wait_for(Duration::from_secs(10), || {
        let out = s.cli_ok(&["mail", "queue"]);
        async move { out.contains("1 attempt(s)") }
    })
    .await;
    assert!(
        failed_once.is_some(),
        "first attempt failed and is recorded"
    );
    let queue = s.cli_ok(&["mail", "queue"]);
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
    let queue = s.cli_ok(&["mail", "queue"]);
    assert!(queue.contains("empty"), "{queue}");
}

#[tokio::test]
async fn undeliverable_mail_is_given_up_after_its_retries_and_listed() {
    let port = free_port();
    let s = Server::demo_with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    post_form(
        &s,
        &s.client(),
        "/sign/forgot/",
        &[("login", "bob@example.com")],
    )
    .await;
    let gave_up = Server::wait_for(Duration::from_secs(30), || {
        s.advance_clock(7300);
        let out = s.cli_ok(&["mail", "queue"]);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            out.contains("FAILED")
        }
    })
    .await;
    assert!(gave_up.is_some(), "{}", s.cli(&["mail", "queue"]).1);
    let queue = s.cli_ok(&["mail", "queue"]);
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

    let audit = s.cli_ok(&["audit", "--client", "alice"]);
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
    let audit = s.cli_ok(&["audit"]);
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
    s.cli_ok(&["settings", "unset", "system_mail"]);
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
    s.cli_ok(&[
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

    s.cli_ok(&["settings", "set", "ci_url", "https://portal.example.net/"]);
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

/// The link from a fresh "forgot password" mail for `email`, as a path.
async fn reset_link(s: &Server, smtp: &Smtp, email: &str, mails_before: usize) -> String {
    let c = s.client();
    let (status, _) = post_form(s, &c, "/sign/forgot/", &[("login", email)]).await;
    assert_eq!(status, 200);
    let mail = smtp.wait_for(mails_before + 1).await.remove(mails_before);
    link_in(&mail).trim_start_matches(&s.base).to_string()
}

#[tokio::test]
async fn the_password_tab_honours_the_lockout_and_ends_the_guessing_session() {
    let s = Server::demo();
    let (ok, _, err) = s.cli(&["settings", "set", "ci_login_lockout_attempts", "3"]);
    assert!(ok, "{err}");
    let thief = s.login("alice", "alice-demo-pass").await;
    let owner = s.login("alice", "alice-demo-pass").await;
    let sr = &s;
    let guess = |c: reqwest::Client, current: &'static str| async move {
        let (_, page) = sr.get_text(&c, "/password/").await;
        let csrf = csrf_of(&page);
        post_form(
            sr,
            &c,
            "/password/",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("new", "Quiet-Forest-93"),
                ("repeat", "Quiet-Forest-93"),
            ],
        )
        .await
    };
    for _ in 0..2 {
        let (status, html) = guess(thief.clone(), "wrong-guess").await;
        assert_eq!(status, 422);
        assert!(html.contains("current password is not correct"), "{html}");
    }
    // The third wrong guess locks the account and ends the session that guessed.
    let (status, html) = guess(thief.clone(), "wrong-guess").await;
    assert_eq!(status, 403);
    assert!(html.contains("locked"), "{html}");
    let r = thief.get(s.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 303, "the guessing session ended");
    // While locked, even the right current password is refused, unverified, in every session.
    let (status, html) = guess(owner.clone(), "alice-demo-pass").await;
    assert_eq!(status, 403);
    assert!(html.contains("locked"), "{html}");
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 403);
    let audit = s.cli_ok(&["audit", "--client", "alice"]);
    assert!(audit.contains("LoginWhileLocked"), "{audit}");
    // After the lockout the right password works again on the tab.
    s.advance_clock(16 * 60);
    let (status, html) = guess(owner.clone(), "alice-demo-pass").await;
    assert_eq!(status, 200, "{html}");
}

#[tokio::test]
async fn every_password_change_revokes_outstanding_links() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    // An operator's one-time password kills a link sent before it.
    let link = reset_link(&s, &smtp, "alice@example.com", 0).await;
    let (ok, out, _) = s.cli(&["client", "otp", "alice"]);
    assert!(ok, "{out}");
    let c = s.client();
    assert_eq!(s.get_text(&c, &link).await.0, 410, "revoked by the OTP");

    // A change on the Password tab kills a link too.
    let link = reset_link(&s, &smtp, "bob@example.com", 1).await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, page) = s.get_text(&bob, "/password/").await;
    let (status, html) = post_form(
        &s,
        &bob,
        "/password/",
        &[
            ("csrf", &csrf_of(&page)),
            ("current", "bob-demo-pass"),
            ("new", "Copper-Kettle-57"),
            ("repeat", "Copper-Kettle-57"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(s.get_text(&c, &link).await.0, 410, "revoked by the change");

    // A newer link replaces an older one.
    s.advance_clock(11 * 60);
    let first = reset_link(&s, &smtp, "bob@example.com", 2).await;
    s.advance_clock(11 * 60);
    let second = reset_link(&s, &smtp, "bob@example.com", 3).await;
    assert_eq!(s.get_text(&c, &first).await.0, 410, "replaced");
    assert_eq!(s.get_text(&c, &second).await.0, 200);
}

#[tokio::test]
async fn one_link_or_one_time_password_used_twenty_times_at_once_works_once() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let link = reset_link(&s, &smtp, "alice@example.com", 0).await;
    let posts = (0..20).map(|i| {
        let c = s.client();
        let url = s.url(&link);
        async move {
            let pw = format!("Parallel-River-{i:02}x");
            c.post(url)
                .form(&[("new", pw.as_str()), ("repeat", pw.as_str())])
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    });
    let statuses = futures_join_all(posts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        19,
        "{statuses:?}"
    );

    let (ok, out, _) = s.cli(&["client", "otp", "bob"]);
    assert!(ok, "{out}");
    let otp = out
        .split_whitespace()
        .find(|w| w.len() == 17 && w.matches('-').count() == 2)
        .expect("printed")
        .to_string();
    let logins = (0..20).map(|_| {
        let c = s.client();
        let url = s.url("/sign/");
        let otp = otp.clone();
        async move {
            let r = c
                .post(url)
                .form(&[("username", "bob"), ("password", otp.as_str())])
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.headers().get("location").cloned())
        }
    });
    let results = futures_join_all(logins).await;
    let in_ = results
        .iter()
        .filter(|(st, loc)| *st == 303 && loc.as_ref().is_some_and(|l| l == "/password/"))
        .count();
    assert_eq!(in_, 1, "{results:?}");
    assert_eq!(
        results.iter().filter(|(st, _)| *st == 401).count(),
        19,
        "{results:?}"
    );
}

/// Runs futures concurrently on the test's runtime and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn forgot_password_floods_send_nothing_more_and_look_the_same() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    // Twenty requests at once for one client: one mail.
    let posts = (0..20).map(|_| {
        let c = s.client();
        let url = s.url("/sign/forgot/");
        async move {
            let r = c
                .post(url)
                .form(&[("login", "alice@example.com")])
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    });
    let answers = futures_join_all(posts).await;
    assert!(answers.iter().all(|a| *a == answers[0]), "all the same");
    assert_eq!(answers[0].0, 200);
    smtp.wait_for(1).await;
    outbox_drained(&s).await;
    assert_eq!(smtp.messages().len(), 1, "one mail per resend window");

    // One address: at most N requests an hour, for any accounts; the rest look the same.
    let (ok, _, err) = s.cli(&[
        "settings",
        "set",
        "ci_password_forgot_per_address_per_hour",
        "3",
    ]);
    assert!(ok, "{err}");
    s.advance_clock(3600);
    let c = s.client();
    let mut pages = vec![];
    for email in [
        "bob@example.com",
        "client1003@example.com",
        "client1004@example.com",
        "client1005@example.com",
    ] {
        pages.push(post_form(&s, &c, "/sign/forgot/", &[("login", email)]).await);
    }
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "the refused one looks the same"
    );
    smtp.wait_for(4).await;
    outbox_drained(&s).await;
    let mails_now = smtp.messages();
    assert_eq!(
        mails_now.len(),
        4,
        "alice's, then three within the address's hourly limit"
    );
    assert!(
        !mails_now
            .iter()
            .any(|m| m.contains("client1005@example.com"))
    );
}

#[tokio::test]
async fn guessing_from_one_address_slows_down_and_unknown_logins_lock_like_real_ones() {
    let s = Server::demo();
    let (ok, _, err) = s.cli(&["settings", "set", "ci_login_throttle_free_attempts", "3"]);
    assert!(ok, "{err}");
    // An unknown login name answers exactly like a real account, also when "locked".
    let mut real = vec![];
    let mut ghost = vec![];
    for round in 0..5 {
        if round > 0 {
            s.advance_clock(1000); // past any back-off of the address
        }
        let (st, html, _) = try_login(&s, "alice", "wrong-password").await;
        real.push((st, html.contains("temporarily locked")));
        let (st, html, _) = try_login(&s, "nobody-here", "wrong-password").await;
        ghost.push((st, html.contains("temporarily locked")));
    }
    assert_eq!(real, ghost);
    assert_eq!(real.last(), Some(&(401, true)), "the fifth locks: {real:?}");
    let (st, html, _) = try_login(&s, "nobody-here", "wrong-password").await;
    assert_eq!(st, 403);
    assert!(html.contains("temporarily locked"));

    // Quick wrong guesses from one address: after the free ones it must wait, and a throttled
    // attempt does not count against the account it names.
    s.advance_clock(3600);
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(try_login(&s, "bob", "wrong-password").await.0);
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 429], "{statuses:?}");
    let (st, html, _) = try_login(&s, "bob", "bob-demo-pass").await;
    assert_eq!(st, 429, "even the right password waits");
    assert!(
        html.contains("Too many unsuccessful logins from your network"),
        "{html}"
    );
    s.advance_clock(6);
    assert_eq!(
        try_login(&s, "bob", "bob-demo-pass").await.0,
        303,
        "four counted failures: not locked"
    );
}

#[tokio::test]
async fn a_logged_in_post_must_say_where_it_comes_from_and_carry_the_token() {
    let s = Server::demo();
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&c, "/password/").await;
    let csrf = csrf_of(&page);
    let session = {
        let r = s
            .client()
            .post(s.url("/sign/"))
            .form(&[("username", "alice"), ("password", "alice-demo-pass")])
            .send()
            .await
            .expect("login");
        r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_string()
    };
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (_, page) = {
        let r = bare
            .get(s.url("/password/"))
            .header("Cookie", &session)
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.expect("body"))
    };
    let token = csrf_of(&page);
    let post = |headers: Vec<(&'static str, String)>, token: String| {
        let mut r = bare
            .post(s.url("/password/"))
            .header("Cookie", &session)
            .form(&[
                ("csrf", token.as_str()),
                ("current", "wrong-password"),
                ("new", "Lantern-Harbour-31"),
                ("repeat", "Lantern-Harbour-31"),
            ]);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move { r.send().await.expect("post").status().as_u16() }
    };
    assert_eq!(
        post(vec![], token.clone()).await,
        403,
        "no Origin, Referer or Sec-Fetch-Site"
    );
    assert_eq!(
        post(
            vec![("Referer", format!("{}/password/", s.base))],
            token.clone()
        )
        .await,
        422,
        "a same-origin Referer is enough (the wrong current password answers 422)"
    );
    assert_eq!(
        post(
            vec![("Referer", "https://evil.example/x".into())],
            token.clone()
        )
        .await,
        403
    );
    assert_eq!(
        post(vec![("Origin", s.base.clone())], csrf.clone()).await,
        403,
        "another session's token"
    );
    // Logout and the language switch go through the same check.
    let r = c
        .post(s.url("/sign/out/"))
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert_eq!(s.get_text(&c, "/").await.0, 200, "still logged in");
}
