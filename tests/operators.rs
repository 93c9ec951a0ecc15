//! Operator essentials: disabling and enabling clients (by command and by import), finding
//! clients, showing one, lifting a lockout and ending sessions — over the CLI against a real
//! store, with a running portal (through its control socket) and with a stopped one.

mod common;

use common::{Options, Server, Smtp, link_in};

const DISABLED_EN: &str =
    "Your access to the client portal is disabled. Please contact your Internet provider.";
const DISABLED_CS: &str = "Váš přístup do klientského portálu je zablokován. Obraťte se prosím na svého poskytovatele internetu.";

/// A demo portal wired to a real SMTP server, with ci_url pointing at itself.
fn portal_with_mail(smtp: &Smtp) -> Server {
    let s = Server::demo_with(Options {
        smtp_url: Some(smtp.url()),
        ..Options::default()
    });
    let base = format!("{}/", s.base);
    s.cli_ok(&["settings", "set", "ci_url", &base]);
    s
}

async fn try_login_in(
    s: &Server,
    user: &str,
    password: &str,
    lang: &str,
) -> (u16, String, Option<String>) {
    let r = s
        .client()
        .post(s.url("/sign/"))
        .header("Accept-Language", lang)
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

async fn try_login(s: &Server, user: &str, password: &str) -> (u16, String, Option<String>) {
    try_login_in(s, user, password, "en").await
}

/// The client's next request goes to the login page: the session is gone.
async fn assert_logged_out(s: &Server, c: &reqwest::Client) {
    let r = c.get(s.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 303, "the session ended");
    assert_eq!(r.headers()["location"], "/sign/");
}

async fn assert_logged_in(s: &Server, c: &reqwest::Client) {
    assert_eq!(s.get_text(c, "/").await.0, 200, "the session is alive");
}

/// The name of the OS user running the tests (and so the `portico` commands they start).
fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// The error line (the log may warn before it, e.g. about test-only environment variables).
fn last_line(err: &str) -> &str {
    err.trim().lines().last().unwrap_or("")
}

fn one_time_password_in(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.len() == 17 && w.matches('-').count() == 2)
        .expect("a one-time password is printed")
        .to_string()
}

/// Writes a bundle into the server's folder and imports it (through the control socket).
fn import(s: &Server, name: &str, json: &str) -> String {
    let file = s.data_dir().with_file_name(name);
    std::fs::write(&file, json).expect("write bundle");
    s.cli_ok(&["import", file.to_str().expect("path")])
}

fn alice_bundle(access: Option<bool>) -> String {
    let access = access.map_or(String::new(), |a| format!(r#", "portal_access": {a}"#));
    format!(
        r#"{{"clients": [{{"id": 1, "number": "1001", "username": "alice", "name": "Alice Nováková",
            "email": "alice@example.com", "invoice_group_id": 1{access}}}]}}"#
    )
}

#[tokio::test]
async fn a_disabled_client_cannot_log_in_or_use_links_sessions_or_one_time_passwords() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let session = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    // A reset link waiting in alice's mailbox.
    let c = s.client();
    let r = c
        .post(s.url("/sign/forgot/"))
        .form(&[("login", "alice@example.com")])
        .send()
        .await
        .expect("forgot");
    assert_eq!(r.status(), 200);
    let link = link_in(&smtp.wait_for(1).await[0])
        .trim_start_matches(&s.base)
        .to_string();
    assert_eq!(s.get_text(&c, &link).await.0, 200, "the link works before");

    let out = s.cli_ok(&["client", "disable", "alice", "--reason", "unpaid invoices"]);
    assert_eq!(
        out.trim(),
        "client 1001 (Alice Nováková) is disabled: they cannot log in until `portico client enable 1001`\n\
         ended 1 session(s), revoked 1 password link(s), cancelled 0 link mail(s)\n\
         reason: unpaid invoices"
    );
    assert_logged_out(&s, &session).await;
    assert_logged_in(&s, &bob).await;

    // The right password: refused with the message, in the client's language.
    let (status, html, _) = try_login(&s, "alice", "alice-demo-pass").await;
    assert_eq!(status, 403);
    assert!(html.contains(DISABLED_EN), "{html}");
    let (status, html, _) = try_login_in(&s, "1001", "alice-demo-pass", "cs").await;
    assert_eq!(status, 403);
    assert!(html.contains(DISABLED_CS), "{html}");
    // A wrong password says nothing about the account being disabled.
    let (status, html, _) = try_login(&s, "alice", "wrong-guess").await;
    assert_eq!(status, 401);
    assert!(html.contains("The login name or password is not correct."));
    assert!(!html.contains("disabled"), "{html}");

    // The link stopped working, and no new one is sent (the page looks the same).
    let (status, html) = s.get_text(&c, &link).await;
    assert_eq!(status, 410);
    assert!(html.contains("This link does not work"));
    let r = c
        .post(s.url("/sign/forgot/"))
        .form(&[("login", "alice@example.com")])
        .send()
        .await
        .expect("forgot");
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.cli_ok(&["mail", "queue"]).trim(),
        "the mail outbox is empty"
    );
    let (ok, _, err) = s.cli(&["client", "send-password-email", "alice"]);
    assert!(!ok);
    assert!(err.contains("client 1001 is disabled"), "{err}");

    // A one-time password given now is refused while disabled, and not spent.
    let out = s.cli_ok(&["client", "otp", "#1"]);
    assert!(
        out.contains(
            "The client is disabled: the password works only once they are enabled again."
        ),
        "{out}"
    );
    let otp = one_time_password_in(&out);
    let (status, html, _) = try_login(&s, "alice", &otp).await;
    assert_eq!(status, 403);
    assert!(html.contains(DISABLED_EN));

    let show = s.cli_ok(&["client", "show", "alice"]);
    assert!(
        show.contains("  portal access: disabled by an operator since ")
            && show.contains(" (reason: unpaid invoices)"),
        "{show}"
    );
    let listed = s.cli_ok(&["client", "list", "--disabled"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.starts_with("1001  Alice Nováková  login=alice")
            && listed.trim_end().ends_with("DISABLED by an operator"),
        "{listed}"
    );

    // Enabled again: the one-time password works (once), and so does logging in.
    let out = s.cli_ok(&["client", "enable", "1001"]);
    assert_eq!(
        out.trim(),
        "client 1001 (Alice Nováková) is enabled: they can log in again"
    );
    let (status, _, location) = try_login(&s, "alice", &otp).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/password/"));
    assert_eq!(
        s.cli_ok(&["client", "enable", "1001"]).trim(),
        "client 1001 (Alice Nováková) is not disabled; nothing was changed"
    );
    assert_eq!(
        s.cli_ok(&["client", "list", "--disabled"]).trim(),
        "no clients match"
    );

    let audit = s.cli_ok(&["audit", "--client", "alice"]);
    let me = os_user();
    for line in [
        format!(
            "ClientDisabled               client=1001 login=- source=- by={me}  by an operator: unpaid invoices"
        ),
        "LoginWhileDisabled           client=1001 login=- source=127.0.0.1\n".to_string(),
        format!(
            "ClientEnabled                client=1001 login=- source=- by={me}  by an operator"
        ),
    ] {
        assert!(audit.contains(&line), "{line} in\n{audit}");
    }
}

#[tokio::test]
async fn portal_access_false_in_an_import_disables_and_true_lifts_only_the_imports_block() {
    let s = Server::demo();
    let session = s.login("alice", "alice-demo-pass").await;
    let out = import(&s, "off.json", &alice_bundle(Some(false)));
    assert!(
        out.contains("\nportal access taken away from 1 client(s) (portal_access: false)"),
        "{out}"
    );
    assert_logged_out(&s, &session).await;
    let (status, html, _) = try_login(&s, "alice", "alice-demo-pass").await;
    assert_eq!(status, 403);
    assert!(html.contains(DISABLED_EN));

    // `enable` does not lift the import's block, and changes nothing.
    let (ok, _, err) = s.cli(&["client", "enable", "alice"]);
    assert!(!ok);
    assert_eq!(
        last_line(&err),
        "error: client 1001 (Alice Nováková) is disabled by the import (portal_access: false), not by an operator; an import that gives portal_access true (or leaves it out) enables them; nothing was changed"
    );
    // Both blocks at once; the import's `true` lifts only its own.
    s.cli_ok(&["client", "disable", "alice"]);
    let show = s.cli_ok(&["client", "show", "alice"]);
    assert!(
        show.contains("; disabled by the import (portal_access: false)\n"),
        "{show}"
    );
    let listed = s.cli_ok(&["client", "list", "--disabled"]);
    assert!(
        listed.contains("DISABLED by an operator and by the import"),
        "{listed}"
    );
    let out = import(&s, "on.json", &alice_bundle(Some(true)));
    assert!(
        out.contains("\nportal access given back to 1 client(s) by the import"),
        "{out}"
    );
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 403);
    s.cli_ok(&["client", "enable", "alice"]);
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 303);

    // Left out means `true`: the next import without the field gives access back.
    import(&s, "off.json", &alice_bundle(Some(false)));
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 403);
    let out = import(&s, "plain.json", &alice_bundle(None));
    assert!(out.contains("given back to 1 client(s)"), "{out}");
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 303);
    // An import that does not change it says nothing about access.
    let out = import(&s, "plain.json", &alice_bundle(None));
    assert!(!out.contains("portal access"), "{out}");

    let audit = s.cli_ok(&["audit", "--client", "1001"]);
    let me = os_user();
    assert!(
        audit.contains(&format!("ClientDisabled               client=1001 login=- source=- by={me}  by the import (portal_access: false)")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("ClientEnabled                client=1001 login=- source=- by={me}  by the import (portal_access: true)")),
        "{audit}"
    );
}

#[tokio::test]
async fn clients_are_found_by_text_group_lockout_and_state() {
    let s = Server::demo();
    let all = s.cli_ok(&["client", "list"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 51, "{all}");
    assert_eq!(
        lines[50],
        "… and 10 more (narrow with --search, --group, --locked or --disabled, or raise --limit)"
    );
    assert!(
        lines[0].starts_with(
            "1001  Alice Nováková  login=alice  email=alice@example.com  phone=+420 5"
        ),
        "{all}"
    );
    assert!(lines[0].contains("  group=1 ("), "{all}");
    assert!(lines[1].starts_with("1002  Bob Dvořák  login=bob"), "{all}");
    let five = s.cli_ok(&["client", "list", "--limit", "5"]);
    assert_eq!(five.lines().count(), 6);
    assert!(five.contains("… and 55 more"), "{five}");
    assert_eq!(
        s.cli_ok(&["client", "list", "--limit", "60"])
            .lines()
            .count(),
        60,
        "no hint when everything is shown"
    );

    // Search: number, login name, name, e-mail, phone, #ID; case-insensitive.
    let first = |args: &[&str]| {
        let mut all = vec!["client", "list"];
        all.extend(args);
        s.cli_ok(&all)
    };
    for (search, number) in [
        ("ALICE", "1001"),
        ("nováková", "1001"),
        ("BOB@example.COM", "1002"),
        ("#2", "1002"),
        ("1002", "1002"),
    ] {
        let out = first(&["--search", search]);
        assert_eq!(out.lines().count(), 1, "{search}: {out}");
        assert!(out.starts_with(&format!("{number}  ")), "{search}: {out}");
    }
    let bob = s.cli_ok(&["client", "show", "bob"]);
    let phone = bob
        .lines()
        .find_map(|l| l.strip_prefix("  phone: "))
        .expect("bob has a phone")
        .to_string();
    let out = first(&["--search", &phone]);
    assert!(out.starts_with("1002  "), "{phone}: {out}");
    assert_eq!(
        first(&["--search", "no such client anywhere"]).trim(),
        "no clients match"
    );

    let group2 = first(&["--group", "2"]);
    assert!(!group2.is_empty());
    assert!(
        group2
            .lines()
            .filter(|l| !l.starts_with('…'))
            .all(|l| l.contains("  group=2 (")),
        "{group2}"
    );
    assert!(group2.contains("1002  Bob Dvořák"));
    assert!(!group2.contains("1001  "));

    // Bad values: a clear error, non-zero exit.
    for (args, error) in [
        (
            vec!["client", "list", "--group", "99"],
            "error: no invoice group with id 99",
        ),
        (
            vec!["client", "list", "--limit", "0"],
            "error: --limit must be at least 1",
        ),
        (
            vec!["client", "show", "nobody"],
            "error: no client with number or login name `nobody` (use #ID for an internal id)",
        ),
        (
            vec!["client", "disable", "#999"],
            "error: no client with number or login name `#999` (use #ID for an internal id)",
        ),
        (
            vec!["client", "unlock", "nobody"],
            "error: no client with number or login name `nobody` (use #ID for an internal id)",
        ),
    ] {
        let (ok, out, err) = s.cli(&args);
        assert!(!ok && out.is_empty(), "{args:?}");
        assert_eq!(last_line(&err), error, "{args:?}");
    }
    assert_eq!(
        first(&["--disabled"]).trim(),
        "no clients match",
        "nothing changed"
    );

    // Lockout: --locked finds it, unlock lifts it at once.
    assert_eq!(first(&["--locked"]).trim(), "no clients match");
    for _ in 0..5 {
        try_login(&s, "alice", "wrong-guess").await;
    }
    let locked = first(&["--locked"]);
    assert_eq!(locked.lines().count(), 1, "{locked}");
    assert!(
        locked.starts_with("1001  ") && locked.contains("  LOCKED until "),
        "{locked}"
    );
    let show = s.cli_ok(&["client", "show", "alice"]);
    assert!(show.contains("  locked out: until "), "{show}");
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 403);
    let out = s.cli_ok(&["client", "unlock", "alice"]);
    assert!(
        out.starts_with("client 1001 (Alice Nováková) is unlocked (was locked until ")
            && out.trim_end().ends_with("): they can log in at once"),
        "{out}"
    );
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 303);
    assert_eq!(
        s.cli_ok(&["client", "unlock", "alice"]).trim(),
        "client 1001 (Alice Nováková) is not locked out; nothing was changed"
    );
    assert!(
        s.cli_ok(&["audit", "--client", "alice"])
            .contains("OperatorUnlock")
    );

    // Names from imports are escaped for the terminal.
    import(
        &s,
        "evil.json",
        r#"{"clients": [{"id": 500, "number": "9001", "name": "Evil\u001b[2J\u202eName", "invoice_group_id": 1}]}"#,
    );
    let out = first(&["--search", "9001"]);
    assert!(
        out.starts_with("9001  Evil\\x1b[2J\\u{202e}Name  login=-  email=-  phone=-  group=1"),
        "{out}"
    );
    assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}'));
}

#[tokio::test]
async fn show_tells_the_account_state_but_never_a_password_or_hash() {
    let smtp = Smtp::start();
    let s = portal_with_mail(&smtp);
    let _c = s.login("alice", "alice-demo-pass").await;
    s.cli_ok(&["settings", "set", "ci_login_lockout_attempts", "5"]);
    try_login(&s, "alice", "wrong-guess").await;
    let out = s.cli_ok(&["client", "show", "#1"]);
    let expect_start = "client 1001: Alice Nováková
  id in the billing system: #1
  login name: alice
  company: -
  e-mail: alice@example.com
";
    assert!(out.starts_with(expect_start), "{out}");
    for line in [
        "  invoice group: 1 (",
        "  password: set, last changed ",
        "  locked out: no (1 wrong password(s) in a row)\n",
        "  portal access: enabled\n",
        " from 127.0.0.1\n",
        "  live sessions: 1\n",
        "  pending password links: none\n",
        "  pending mails: none\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(out.contains("  last login: "), "{out}");
    assert!(!out.contains("$argon2") && !out.contains("alice-demo-pass"));

    // A one-time password (which ends the session) and a link: both show, no secret does.
    let otp = one_time_password_in(&s.cli_ok(&["client", "otp", "alice"]));
    let out = s.cli_ok(&["client", "show", "alice"]);
    assert!(
        out.contains("  password: set by an operator for one login (one-time), "),
        "{out}"
    );
    assert!(out.contains("  live sessions: 0\n"), "{out}");
    s.cli_ok(&["client", "send-password-email", "alice"]);
    let mail = smtp.wait_for(1).await.remove(0);
    let token = link_in(&mail)
        .rsplit('/')
        .next()
        .expect("token")
        .to_string();
    let out = s.cli_ok(&["client", "show", "alice"]);
    assert!(
        out.contains("  pending password links: 1 (Create, valid until "),
        "{out}"
    );
    assert!(!out.contains(&otp) && !out.contains(&token) && !out.contains("$argon2"));
}

#[tokio::test]
async fn sessions_are_listed_and_ended_and_the_commands_work_on_a_stopped_portal() {
    let s = Server::demo();
    assert_eq!(
        s.cli_ok(&["client", "sessions", "alice"]).trim(),
        "client 1001 (Alice Nováková) has no live sessions"
    );
    let first = s.login("alice", "alice-demo-pass").await;
    let second = s.login("1001", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let out = s.cli_ok(&["client", "sessions", "alice"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        "client 1001 (Alice Nováková) has 2 live session(s):"
    );
    assert!(
        lines[1].starts_with("  started ") && lines[1].contains(" UTC, last seen "),
        "{out}"
    );
    assert_eq!(
        s.cli_ok(&["client", "sessions", "alice", "--end"]).trim(),
        "ended 2 session(s) of client 1001 (Alice Nováková); their browsers get the login page at the next request"
    );
    assert_logged_out(&s, &first).await;
    assert_logged_out(&s, &second).await;
    assert_logged_in(&s, &bob).await;
    assert_eq!(
        s.cli_ok(&["client", "sessions", "alice", "--end"]).trim(),
        "client 1001 (Alice Nováková) has no sessions; nothing was changed"
    );
    assert!(s.cli_ok(&["audit", "--client", "alice"]).contains(&format!(
        "OperatorEndedSessions        client=1001 login=- source=- by={}  2 session(s)",
        os_user()
    )));

    // The same commands on the data folder of a stopped portal.
    let data = s.stop();
    let dir = data.path().join("portal");
    let dir = dir.to_str().expect("path");
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data", dir]);
        common::portico(&all, None)
    };
    let (ok, out, err) = run(&["client", "disable", "#1", "--reason", "moved away"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("client 1001 (Alice Nováková) is disabled"),
        "{out}"
    );
    let (ok, out, _) = run(&["client", "show", "alice"]);
    assert!(ok && out.contains(" (reason: moved away)"), "{out}");
    let (ok, out, _) = run(&["client", "list", "--disabled"]);
    assert!(ok && out.starts_with("1001  "), "{out}");
    let (ok, _, err) = run(&["client", "show", "nobody"]);
    assert!(!ok && err.contains("no client with number or login name `nobody`"));
    let s = Server::serve(data, Options::default());
    let (status, html, _) = try_login(&s, "alice", "alice-demo-pass").await;
    assert_eq!(status, 403);
    assert!(html.contains(DISABLED_EN));
    s.cli_ok(&["client", "enable", "alice"]);
    assert_eq!(try_login(&s, "alice", "alice-demo-pass").await.0, 303);
}
