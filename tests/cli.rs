//! Operator commands: import, settings, passwords, and reaching a running portal.

mod common;

use common::{Server, portico, repo_root};

fn data_arg(dir: &std::path::Path) -> String {
    dir.to_str().expect("utf-8 path").to_string()
}

const GOOD: &str = r#"{
  "format": "portico-import/1",
  "invoice_groups": [{"id": 1, "name": "Main", "supplier": {"name": "Test ISP", "email": "noc@isp.example"}}],
  "tariffs": [{"id": 1, "name": "Net 100", "download_kbps": 100000, "upload_kbps": 20000, "price": "399",
               "fup_limits": [{"data_gb": 300, "download_kbps": 10000, "upload_kbps": 2000}]}],
  "clients": [
    {"id": 1, "number": "501", "name": "Eva Test", "invoice_group_id": 1, "email": "eva@example.com", "language": "cs"},
    {"id": 2, "number": "502", "username": "petr", "name": "Petr Test", "invoice_group_id": 1}
  ],
  "services": [{"id": 1, "client_id": 1, "kind": "internet", "name": "Internet", "tariff_id": 1, "ip_address": "192.0.2.10"}],
  "messages": [{"id": 1, "subject": "Hello everyone"}],
  "invoices": [{"id": 1, "client_id": 1, "number": "2026001", "issued": "2026-01-01", "due": "2026-01-15", "amount": 399}],
  "payments": [{"id": 1, "client_id": 1, "date": "2026-01-10", "amount": "399.00", "method": "bank"}]
}"#;

fn write_bundle(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write bundle");
    p.to_str().expect("path").to_string()
}

#[test]
fn import_is_idempotent_and_reports_counts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let file = write_bundle(tmp.path(), "good.json", GOOD);
    for (round, clients) in [(0, "clients 2 0 0 0"), (1, "clients 0 0 2 0")] {
        let (ok, out, err) = portico(&["import", &file, "--data", &data], None);
        assert!(ok, "{err}");
        assert!(out.starts_with("imported 8 records in "), "{out}");
        // The report's row: created, updated, unchanged, deleted.
        let rows: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert!(rows.iter().any(|r| r == clients), "round {round}: {out}");
    }
    let store =
        portico_core::internal::store::Store::open(std::path::Path::new(&data)).expect("open");
    assert_eq!(
        store
            .count::<portico_core::internal::model::Client>()
            .expect("count"),
        2
    );
    assert_eq!(
        store
            .client_by_username("PETR")
            .expect("find")
            .map(|c| c.id),
        Some(2)
    );
}

#[test]
fn a_bundle_with_bad_records_is_rejected_whole_with_paths() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let file = write_bundle(tmp.path(), "good.json", GOOD);
    assert!(portico(&["import", &file, "--data", &data], None).0);

    // Rename Eva and add three broken clients: nothing of it may land.
    let mut bundle: serde_json::Value = serde_json::from_str(GOOD).expect("json");
    let clients = bundle["clients"].as_array_mut().expect("clients");
    clients[0]["name"] = "Eva Renamed".into();
    clients.push(serde_json::json!({"id": 3, "number": "503", "name": "X", "invoice_group_id": 1, "email": "nope"}));
    clients.push(serde_json::json!({"id": 4, "number": "501", "name": "Y", "invoice_group_id": 7}));
    clients.push(
        serde_json::json!({"id": 5, "number": "505", "name": "Z", "invoice_group_id": "one"}),
    );
    let bad = write_bundle(tmp.path(), "bad.json", &bundle.to_string());
    let (ok, out, err) = portico(&["import", &bad, "--data", &data], None);
    assert!(!ok, "{out}");
    assert!(err.contains("rejected and nothing was changed"), "{err}");
    assert!(
        err.contains("clients[2].email: not an e-mail address"),
        "{err}"
    );
    assert!(
        err.contains("clients[3].invoice_group_id: no invoice group with id 7"),
        "{err}"
    );
    assert!(
        err.contains("clients[4].invoice_group_id: invalid type"),
        "{err}"
    );

    let store =
        portico_core::internal::store::Store::open(std::path::Path::new(&data)).expect("open");
    let eva = store.client_by_number("501").expect("find").expect("eva");
    assert_eq!(
        eva.name, "Eva Test",
        "the valid change in a rejected bundle did not land"
    );
    assert_eq!(
        store
            .count::<portico_core::internal::model::Client>()
            .expect("count"),
        2
    );
}

#[test]
fn unreadable_files_get_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let (ok, _, err) = portico(&["import", "/nonexistent.json", "--data", &data], None);
    assert!(
        !ok && err.contains("cannot read /nonexistent.json"),
        "{err}"
    );
    let bad = write_bundle(tmp.path(), "bad.json", r#"{"clients": [{"id": 1}]}"#);
    let (ok, _, err) = portico(&["import", &bad, "--data", &data], None);
    assert!(!ok && err.contains("missing field"), "{err}");
    assert!(
        !std::path::Path::new(&data).exists(),
        "a rejected bundle leaves no data folder behind"
    );
    let not_json = write_bundle(tmp.path(), "x.json", "clients: []");
    let (ok, _, err) = portico(&["import", &not_json, "--data", &data], None);
    assert!(!ok && err.contains("not an import bundle"), "{err}");
    let latin1 = tmp.path().join("latin1.json");
    std::fs::write(&latin1, b"{\"clients\": [{\"name\": \"\xe9\"}]}").expect("write");
    let (ok, _, err) = portico(
        &["import", latin1.to_str().expect("path"), "--data", &data],
        None,
    );
    assert!(!ok && err.contains("not UTF-8"), "{err}");
}

#[test]
fn settings_are_typed_and_errors_say_why() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let file = write_bundle(tmp.path(), "good.json", GOOD);
    assert!(portico(&["import", &file, "--data", &data], None).0);

    let (ok, out, _) = portico(&["settings", "list", "--data", &data], None);
    assert!(ok);
    for key in [
        "ci_enable_login_name_creation",
        "ci_skin_theme",
        "ci_webmail_url",
        "ci_display_graph_tab",
        "ci_display_invoices_tab",
        "ci_display_balance",
        "ci_display_cash_payments",
        "ci_display_documents_tab",
        "ci_display_contracts_tab",
        "ci_display_supplier_contact",
        "ci_enable_client_data_change",
        "ci_url",
        "ispadmin_server",
        "system_mail",
        "system_mail_name",
    ] {
        assert!(out.contains(&format!("{key} = ")), "{key} listed");
    }
    let (ok, out, _) = portico(
        &[
            "settings",
            "set",
            "ci_enable_cllient_data_change",
            "yes",
            "--data",
            &data,
        ],
        None,
    );
    assert!(
        ok && out.contains("ci_enable_client_data_change = true"),
        "{out}"
    );
    let (ok, out, _) = portico(
        &[
            "settings",
            "get",
            "ci_enable_client_data_change",
            "--data",
            &data,
        ],
        None,
    );
    assert!(ok && out.contains("true  (set)"), "{out}");
    let (ok, _, err) = portico(
        &[
            "settings",
            "set",
            "ci_display_balance",
            "perhaps",
            "--data",
            &data,
        ],
        None,
    );
    assert!(
        !ok && err.contains("ci_display_balance: `perhaps` is not a yes/no value"),
        "{err}"
    );
    let (ok, _, err) = portico(
        &["settings", "set", "ci_url", "portal", "--data", &data],
        None,
    );
    assert!(!ok && err.contains("http"), "{err}");
    let (ok, _, err) = portico(
        &["settings", "set", "system_mail", "x@", "--data", &data],
        None,
    );
    assert!(!ok && err.contains("e-mail"), "{err}");
    let (ok, _, err) = portico(
        &["settings", "get", "ci_display_balanse", "--data", &data],
        None,
    );
    assert!(!ok && err.contains("unknown setting"), "{err}");
    let (ok, _, err) = portico(
        &[
            "settings",
            "set",
            "ci_display_balance",
            "off",
            "--group",
            "9",
            "--data",
            &data,
        ],
        None,
    );
    assert!(!ok && err.contains("no invoice group with id 9"), "{err}");
    let (ok, out, _) = portico(
        &[
            "settings",
            "set",
            "ci_display_balance",
            "off",
            "--group",
            "1",
            "--data",
            &data,
        ],
        None,
    );
    assert!(ok, "{out}");
    let (_, out, _) = portico(
        &[
            "settings",
            "get",
            "ci_display_balance",
            "--group",
            "1",
            "--data",
            &data,
        ],
        None,
    );
    assert!(out.contains("false  (set for invoice group 1)"), "{out}");
    let (_, out, _) = portico(
        &["settings", "get", "ci_display_balance", "--data", &data],
        None,
    );
    assert!(out.contains("true  (default)"), "{out}");
    let (ok, _, err) = portico(
        &[
            "settings", "unset", "ci_url", "--group", "1", "--data", &data,
        ],
        None,
    );
    assert!(!ok && err.contains("global setting"), "{err}");
    let (ok, _, err) = portico(
        &[
            "settings",
            "get",
            "ci_display_balance",
            "--group",
            "77",
            "--data",
            &data,
        ],
        None,
    );
    assert!(!ok && err.contains("no invoice group with id 77"), "{err}");
    let (ok, _, err) = portico(
        &[
            "settings",
            "set",
            "ci_skin_theme",
            "purple",
            "--data",
            &data,
        ],
        None,
    );
    assert!(
        !ok && err.contains("theme `purple` cannot be used"),
        "{err}"
    );
}

#[test]
fn operator_commands_need_an_existing_data_folder() {
    let (ok, _, err) = portico(
        &["settings", "list", "--data", "/tmp/portico-no-such-folder"],
        None,
    );
    assert!(!ok && err.contains("no Portico data folder"), "{err}");
}

#[test]
fn set_password_reads_stdin_and_never_echoes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let file = write_bundle(tmp.path(), "good.json", GOOD);
    assert!(portico(&["import", &file, "--data", &data], None).0);
    let (ok, out, err) = portico(
        &["client", "set-password", "petr", "--data", &data],
        Some("short\n"),
    );
    assert!(!ok && err.contains("at least 8"), "{err}");
    let secret = "a-long-secret-Ω-phrase";
    let (ok, out2, err2) = portico(
        &["client", "set-password", "petr", "--data", &data],
        Some(&format!("{secret}\n")),
    );
    assert!(ok, "{err2}");
    assert!(out2.contains("password set for client 502"));
    for text in [&out, &err, &out2, &err2] {
        assert!(
            !text.contains(secret) && !text.contains("short"),
            "password echoed: {text}"
        );
    }
    let (ok, _, err) = portico(
        &["client", "set-password", "nobody", "--data", &data],
        Some("whatever-long\n"),
    );
    assert!(
        !ok && err.contains("no client with number or login name `nobody`"),
        "{err}"
    );
}

#[tokio::test]
async fn operator_commands_reach_a_running_portal() {
    let s = Server::demo();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = write_bundle(
        tmp.path(),
        "msg.json",
        r#"{"messages": [{"id": 99, "subject": "Imported while running"}]}"#,
    );
    let (ok, out, err) = s.cli(&["import", &file]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("a portal is running"), "{err}");
    let c = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&c, "/").await;
    assert!(html.contains("Imported while running"));

    let (ok, out, _) = common::portico(
        &[
            "client",
            "set-password",
            "alice",
            "--data",
            s.data_dir().to_str().expect("path"),
        ],
        Some("alice-new-password\n"),
    );
    assert!(ok, "{out}");
    let c = s.client();
    let r = c
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", "alice-new-password")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303);
    let (ok, _, err) = s.cli(&["settings", "set", "ci_url", "not a url"]);
    assert!(
        !ok && err.contains("http"),
        "errors come back through the socket: {err}"
    );
}

#[test]
fn a_locked_folder_without_a_control_socket_is_explained() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let _held = portico_core::internal::store::Store::open(&data).expect("hold the store");
    let (ok, _, err) = portico(&["settings", "list", "--data", &data_arg(&data)], None);
    assert!(!ok);
    assert!(
        err.contains("in use by another process") && err.contains("control socket"),
        "{err}"
    );
    let (ok, _, err) = portico(
        &["serve", "--data", &data_arg(&data), "--bind", "127.0.0.1:0"],
        None,
    );
    assert!(
        !ok && err.contains("already used by another Portico process"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["serve", "--help"],
        vec!["import", "--help"],
        vec!["settings", "--help"],
        vec!["settings", "set", "--help"],
        vec!["client", "set-password", "--help"],
        vec!["maintenance", "--help"],
        vec!["theme", "check", "--help"],
    ] {
        let (ok, out, _) = portico(&args, None);
        assert!(ok && out.contains("Usage: portico"), "{args:?}: {out}");
    }
    let _ = repo_root();
}

#[test]
fn serve_reads_portico_toml_and_environment_and_warns_about_unknown_keys() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("from-config");
    let config = tmp.path().join("portico.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"{}\"\nbind = \"127.0.0.1:0\"\ncolour = \"red\"\nstore_cache_mb = 16\n",
            data.display()
        ),
    )
    .expect("write config");
    let mut child = std::process::Command::new(common::BIN)
        .args([
            "serve",
            "--init",
            "--config",
            config.to_str().expect("path"),
        ])
        .env("PORTICO_THEMES", repo_root().join("themes"))
        .env("PORTICO_BOGUS", "1")
        .env("PORTICO_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let first = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.starts_with("Portico is serving at http://127.0.0.1:"),
        "{first}"
    );
    assert!(data.join("store").exists(), "data folder from portico.toml");
    assert!(err.contains("unknown key `colour` ignored"), "{err}");
    assert!(
        err.contains("PORTICO_BOGUS is not a Portico setting"),
        "{err}"
    );
    let (ok, _, err) = portico(&["serve", "--config", "/nonexistent/portico.toml"], None);
    assert!(
        !ok && err.contains("config file /nonexistent/portico.toml not found"),
        "{err}"
    );
    // A page cache too small for sled to work is refused before anything opens.
    let out = std::process::Command::new(common::BIN)
        .args(["client", "list", "--config", config.to_str().expect("path")])
        .env("PORTICO_STORE_CACHE_MB", "2")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("configuration: store_cache_mb is 2 MiB; give 8 to 65536 (default 48)"),
        "{err}"
    );
    // So is a page cache of rendered pages past its bound.
    let out = std::process::Command::new(common::BIN)
        .args(["client", "list", "--config", config.to_str().expect("path")])
        .env("PORTICO_PAGE_CACHE_MB", "5000")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "configuration: page_cache_mb is 5000 MiB; give 0 to 1024 (default 4, 0 turns it off)"
        ),
        "{err}"
    );
}

#[test]
fn the_audit_log_pages_back_with_before() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_arg(&tmp.path().join("data"));
    let file = write_bundle(tmp.path(), "good.json", GOOD);
    assert!(portico(&["import", &file, "--data", &data], None).0);
    for who in ["501", "502", "501"] {
        let (ok, _, err) = portico(&["client", "otp", who, "--data", &data], None);
        assert!(ok, "{err}");
    }
    let (ok, first, err) = portico(&["audit", "--limit", "2", "--data", &data], None);
    assert!(ok, "{err}");
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "{first}");
    assert!(lines[0].contains("OperatorOneTimePassword") && lines[0].contains("client=501 "));
    assert!(lines[1].contains("client=502 "), "{first}");
    let before = lines[2]
        .strip_prefix("(older events: portico audit --before ")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a hint for the next page: {first}"));
    let (ok, older, err) = portico(
        &["audit", "--limit", "2", "--before", before, "--data", &data],
        None,
    );
    assert!(ok, "{err}");
    // The last page: the first one-time password, and the import before it.
    let older: Vec<&str> = older.lines().collect();
    assert_eq!(older.len(), 2, "{older:?}");
    assert!(older[0].contains("client=501 "), "{older:?}");
    assert!(
        older[1].contains("Import ")
            && older[1].ends_with(": 8 created, 0 updated, 0 unchanged, 0 deleted"),
        "{older:?}"
    );
    let (ok, eva, err) = portico(&["audit", "--client", "501", "--data", &data], None);
    assert!(ok, "{err}");
    assert_eq!(eva.lines().count(), 2, "{eva}");
    assert!(eva.lines().all(|l| l.contains("client=501 ")), "{eva}");
}

#[test]
fn theme_context_lists_each_pages_variables_from_the_real_page() {
    let (ok, out, err) = portico(&["theme", "context"], None);
    assert!(ok, "{err}");
    let pages: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for page in [
        "login",
        "information",
        "services",
        "invoices",
        "error",
        "maintenance",
    ] {
        assert!(pages.contains(&page), "{page} listed: {out}");
    }
    let (ok, out, err) = portico(&["theme", "context", "nosuch"], None);
    assert!(!ok && err.contains("unknown page `nosuch`"), "{err}");
    assert!(
        out.contains("information.html"),
        "the pages are listed: {out}"
    );

    // Every page: the variables of base_context, the page's own, each described.
    for page in &pages {
        let (ok, out, err) = portico(&["theme", "context", page], None);
        assert!(ok, "{page}: {err}");
        for var in ["lang ", "portal_name ", "theme ", "menu ", "page "] {
            assert!(
                out.lines().any(|l| l.trim_start().starts_with(var)),
                "{page} has {var}: {out}"
            );
        }
        assert!(!out.contains("(no description yet)"), "{page}: {out}");
    }
    let (_, out, _) = portico(&["theme", "context", "information"], None);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .to_string()
    };
    assert!(line("client.name").contains("\"Alice Nováková\""), "{out}");
    assert!(line("portal_name").contains("\"Client portal\""), "{out}");
    assert!(line("page.messages[].subject").contains("string"), "{out}");
    assert!(line("page.can_set_login_name").contains("bool"), "{out}");
    let (_, out, _) = portico(&["theme", "context", "invoices"], None);
    assert!(out.contains("page.invoices[].overdue"), "{out}");
    assert!(
        out.contains("page.currency") && out.contains("\"CZK\""),
        "{out}"
    );
    let (_, out, _) = portico(&["theme", "context", "login"], None);
    assert!(out.contains("page.can_reset"), "{out}");
    assert!(!out.contains("page.services"), "{out}");
}
