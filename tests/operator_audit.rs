//! Operators leave a trace: every state-changing operator command is in the audit log with its
//! kind, the OS user who ran it and a summary, and in the portal's log as one line; `portico
//! audit` filters by kind, client and dates, and refuses what it cannot read.

mod common;

use common::Server;

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

/// The error line (the log may warn before it).
fn last_line(err: &str) -> &str {
    err.trim().lines().last().unwrap_or("")
}

fn events(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.contains(" UTC  ")).collect()
}

#[tokio::test]
async fn every_state_changing_operator_command_is_audited_with_the_os_user() {
    let s = Server::demo();
    let me = os_user();
    let before = s.cli_ok(&["audit", "--limit", "1000"]);

    // Read-only commands leave no event.
    s.cli_ok(&["settings", "get", "ci_url"]);
    s.cli_ok(&["client", "list", "--limit", "3"]);
    s.cli_ok(&["mail", "queue"]);
    s.cli_ok(&["menu", "list"]);
    s.cli_ok(&["files", "list"]);
    assert_eq!(s.cli_ok(&["audit", "--limit", "1000"]), before);

    let base = format!("{}/", s.base);
    s.cli_ok(&["settings", "set", "ci_url", &base]);
    s.cli_ok(&["settings", "set", "ci_skin_theme", "default"]);
    s.cli_ok(&["settings", "unset", "ci_skin_theme"]);
    s.cli_ok(&["maintenance", "on"]);
    s.cli_ok(&["maintenance", "OFF"]);
    let body = s.data_dir().with_file_name("body.txt");
    std::fs::write(&body, "Hello {{ client.name }}: $CI_PASSWORD_LINK$").expect("body");
    let body = body.to_str().expect("path");
    s.cli_ok(&[
        "mail",
        "template",
        "set",
        "new_portal_password",
        "--subject",
        "Your password",
        "--body-file",
        body,
    ]);
    s.cli_ok(&["mail", "template", "unset", "new_portal_password"]);
    s.cli_ok(&["client", "disable", "bob", "--reason", "moved"]);
    s.cli_ok(&["client", "enable", "bob"]);
    s.cli_ok(&["tasks", "list"]);
    s.cli_ok(&["suspend", "--message", "Back at noon"]);
    s.cli_ok(&["resume"]);
    s.cli_ok(&[
        "menu",
        "add",
        "--label",
        "Speed test",
        "--url",
        "https://speed.example/",
    ]);
    let menu_id = s
        .cli_ok(&["menu", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .expect("a button id");
    s.cli_ok(&["menu", "remove", &menu_id.to_string()]);
    let file = s.data_dir().with_file_name("terms.txt");
    std::fs::write(&file, "terms").expect("file");
    let added = s.cli_ok(&["files", "add", file.to_str().expect("path")]);
    let file_id = added
        .split_whitespace()
        .nth(1)
        .expect("file id")
        .to_string();
    s.cli_ok(&["files", "remove", &file_id]);

    let audit = s.cli_ok(&["audit", "--limit", "40"]);
    let expected = [
        format!(
            "SettingChanged               client=- login=- source=- by={me}  settings set ci_url: ci_url = {base}"
        ),
        format!(
            "ThemeChanged                 client=- login=- source=- by={me}  settings set ci_skin_theme: ci_skin_theme = default"
        ),
        format!(
            "ThemeChanged                 client=- login=- source=- by={me}  settings unset ci_skin_theme: ci_skin_theme is back to default"
        ),
        format!(
            "Maintenance                  client=- login=- source=- by={me}  maintenance on: maintenance mode is on"
        ),
        format!(
            "Maintenance                  client=- login=- source=- by={me}  maintenance off: maintenance mode is off"
        ),
        format!(
            "MailTemplateChanged          client=- login=- source=- by={me}  mail template set new_portal_password: template new_portal_password saved"
        ),
        format!(
            "MailTemplateChanged          client=- login=- source=- by={me}  mail template unset new_portal_password: template new_portal_password removed; the next one in line applies"
        ),
        format!(
            "ClientDisabled               client=1002 login=- source=- by={me}  by an operator: moved"
        ),
        format!(
            "ClientEnabled                client=1002 login=- source=- by={me}  by an operator"
        ),
        format!("PluginCommand                client=- login=- source=- by={me}  tasks list"),
        format!(
            "Suspension                   client=- login=- source=- by={me}  suspend: the portal is suspended: clients see your message (portico resume ends it)"
        ),
        format!(
            "Suspension                   client=- login=- source=- by={me}  resume: the portal is open again"
        ),
        format!(
            "MenuChanged                  client=- login=- source=- by={me}  menu add https://speed.example/: custom button {menu_id} added"
        ),
        format!(
            "MenuChanged                  client=- login=- source=- by={me}  menu remove {menu_id}: custom button {menu_id} removed"
        ),
        format!(
            "FilesChanged                 client=- login=- source=- by={me}  files add {}: file {file_id} added: \"terms.txt\" (text/plain; charset=utf-8, 5 B)",
            file.display()
        ),
        format!(
            "FilesChanged                 client=- login=- source=- by={me}  files remove {file_id}: file {file_id} removed"
        ),
    ];
    let lines = events(&audit);
    assert_eq!(
        lines.len(),
        expected.len() + events(&before).len(),
        "{audit}"
    );
    // Newest first.
    for (line, want) in lines.iter().zip(expected.iter().rev()) {
        assert!(line.ends_with(want.as_str()), "{line}\nwanted …{want}");
    }

    // The portal's log has one line per operator command, naming the user.
    let log = s.log_text();
    for command in [
        "settings set ci_url",
        "maintenance on",
        "maintenance off",
        "client disable bob",
        "tasks list",
        "settings get ci_url",
    ] {
        let n = log
            .lines()
            .filter(|l| {
                l.contains("operator command")
                    && l.contains(&format!("operator={me}"))
                    && l.ends_with(&format!("command={command}"))
            })
            .count();
        assert_eq!(n, 1, "{command} in\n{log}");
    }

    // A refused command changes nothing and leaves no event; its refusal is logged.
    std::fs::write(
        s.data_dir().with_file_name("bad.txt"),
        "Hello {{ client.nmae }}",
    )
    .expect("body");
    let bad = s.data_dir().with_file_name("bad.txt");
    let (ok, _, err) = s.cli(&[
        "mail",
        "template",
        "set",
        "new_portal_password",
        "--subject",
        "S",
        "--body-file",
        bad.to_str().expect("path"),
    ]);
    assert!(!ok);
    assert_eq!(
        last_line(&err),
        "error: template body: unknown variable `client.nmae`; the mail has client.name, client.number, reason, link, valid_minutes, sender_name and $CI_PASSWORD_LINK$"
    );
    let (ok, _, err) = s.cli(&[
        "mail",
        "template",
        "set",
        "new_portal_password",
        "--subject",
        "S",
        "--body-file",
        body,
        "--group",
        "99",
    ]);
    assert!(!ok);
    assert_eq!(
        last_line(&err),
        "error: there is no invoice group with id 99"
    );
    assert_eq!(
        s.cli_ok(&["mail", "template", "list"]).trim(),
        "no templates of your own; the built-in ones (English, Czech) apply"
    );
    assert_eq!(
        events(&s.cli_ok(&["audit", "--limit", "30"])).len(),
        lines.len()
    );
    assert!(
        s.log_text()
            .contains("operator command refused: there is no invoice group with id 99")
    );
}

#[tokio::test]
async fn audit_filters_by_kind_client_and_dates_and_refuses_what_it_cannot_read() {
    let s = Server::demo();
    s.cli_ok(&["maintenance", "on"]);
    s.cli_ok(&["maintenance", "off"]);
    s.cli_ok(&["client", "disable", "alice"]);
    s.login("bob", "bob-demo-pass").await;

    let out = s.cli_ok(&["audit", "--kind", "maintenance"]);
    assert_eq!(events(&out).len(), 2, "{out}");
    assert!(events(&out).iter().all(|l| l.contains("  Maintenance ")));
    // As printed or as stored, in any case.
    assert_eq!(
        s.cli_ok(&["audit", "--kind", "client_disabled"])
            .lines()
            .count(),
        1
    );
    assert_eq!(s.cli_ok(&["audit", "--kind", "LoginOk"]).lines().count(), 1);
    assert_eq!(
        s.cli_ok(&["audit", "--kind", "LoginOk", "--client", "alice"])
            .trim(),
        "no audit events"
    );
    let bobs = s.cli_ok(&["audit", "--client", "#2"]);
    assert!(
        bobs.contains("LoginOk") && bobs.contains("client=1002 "),
        "{bobs}"
    );

    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| (today + chrono::Duration::days(d)).to_string();
    let all = events(&s.cli_ok(&["audit"])).len();
    assert_eq!(all, 4);
    assert_eq!(
        events(&s.cli_ok(&["audit", "--since", &day(0), "--until", &day(0)])).len(),
        all,
        "--until takes the whole day"
    );
    assert_eq!(
        s.cli_ok(&["audit", "--since", &day(1)]).trim(),
        "no audit events"
    );
    assert_eq!(
        s.cli_ok(&["audit", "--until", &day(-1)]).trim(),
        "no audit events"
    );
    assert_eq!(
        events(&s.cli_ok(&["audit", "--since", &format!("{} 00:00", day(0))])).len(),
        all
    );
    // Paging keeps the filter.
    let page = s.cli_ok(&["audit", "--kind", "Maintenance", "--limit", "1"]);
    let hint = page.lines().last().expect("hint");
    assert!(
        hint.starts_with("(older events: portico audit --kind Maintenance --before "),
        "{page}"
    );

    for (args, message) in [
        (
            vec!["audit", "--since", "2026-13-01"],
            "error: --since `2026-13-01` is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (UTC); nothing was listed",
        ),
        (
            vec!["audit", "--until", "yesterday"],
            "error: --until `yesterday` is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (UTC); nothing was listed",
        ),
        (
            vec!["audit", "--since", "2026-02-02", "--until", "2026-02-01"],
            "error: --since is after --until: no event can match; nothing was listed",
        ),
        (
            vec!["audit", "--client", "nobody"],
            "error: no client with number or login name `nobody` (use #ID for an internal id)",
        ),
    ] {
        let (ok, out, err) = s.cli(&args);
        assert!(!ok, "{args:?}: {out}");
        assert_eq!(last_line(&err), message, "{args:?}");
    }
    let (ok, _, err) = s.cli(&["audit", "--kind", "logins"]);
    assert!(!ok);
    assert!(
        last_line(&err).starts_with(
            "error: --kind `logins` is not a kind of audit event; kinds: LoginOk, LoginFailed,"
        ),
        "{err}"
    );
}

/// Starts `portico demo` on `data`, returns what it printed up to and including the last demo
/// login (or the serving line when there are none), and stops it.
fn demo_output(data: &std::path::Path, logins: usize) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(common::BIN)
        .args(["demo", "--bind", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--themes")
        .arg(common::repo_root().join("themes"))
        .env("PORTICO_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut out = String::new();
    let mut seen = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("  100") {
            seen += 1;
        }
        if seen == logins {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    out
}

#[test]
fn demo_prints_what_it_created_and_no_password_that_stopped_working() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("demo");
    let first = demo_output(&data, 2);
    let summary = portico_core::internal::demo::summary(&portico_core::internal::demo::bundle(
        chrono::Utc::now().date_naive(),
    ));
    assert!(
        first.contains(&format!("\nDemo ISP created: {summary}\n")),
        "{first}"
    );
    assert!(first.ends_with(
        "Demo logins (client number or login name / password):\n  1001 or alice  /  alice-demo-pass\n  1002 or bob  /  bob-demo-pass\n"
    ), "{first}");

    let (ok, _, err) = common::portico(
        &[
            "client",
            "otp",
            "alice",
            "--data",
            data.to_str().expect("path"),
        ],
        None,
    );
    assert!(ok, "{err}");
    let again = demo_output(&data, 2);
    assert!(!again.contains("Demo ISP created"), "{again}");
    assert!(!again.contains("alice-demo-pass"), "{again}");
    assert!(
        again.ends_with(
            "  1001 or alice  /  (the demo password no longer works: it was changed in this folder)\n  1002 or bob  /  bob-demo-pass\n"
        ),
        "{again}"
    );
}
