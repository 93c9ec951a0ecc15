//! Operator scripts run by the one hook dispatch, on a portal assembled on an in-memory store:
//! the five shipped examples (three against hooks declared here with the fields the features
//! that fire them will give), the host API's bounds, failure counting and disabling, the
//! closed failure policy, reloads and `scripts check`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use portico_core::internal::hooks::{ClientView, InfoPanelsEvent, LoginEvent};
use portico_core::internal::ops::{self, OpRequest};
use portico_core::internal::store::Store;
use portico_core::internal::{Clock, Portal, PortalOptions};
use portico_core::plugin::{HookDef, Manifest, Plugin, Registrar, Veto};
use serde_json::{Value, json};

/// Declares the hooks of features not built yet, with the fields they are specified to have:
/// the helpdesk's `before_ticket_create`, the data-change and SMS hooks.
struct Future;

impl Plugin for Future {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: "future",
            name: "Hooks of features to come",
            version: "0.0.1",
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.declare_hook(
            HookDef::new("before_ticket_create", "A ticket is about to be created.")
                .field("client", "the client")
                .field("subject", "the subject")
                .field("text", "the text")
                .field("department", "the department")
                .field("tags", "tags (strings)")
                .amendable("subject")
                .amendable("text")
                .amendable("tags"),
        );
        r.declare_hook(
            HookDef::new(
                "before_client_data_change",
                "A client changes their contact data.",
            )
            .field("client", "the client")
            .field("changes", "changed fields and their new values")
            .amendable("changes"),
        );
        r.declare_hook(
            HookDef::new("before_sms_send", "An SMS is about to be sent.")
                .field("client", "the client")
                .field("to", "the number")
                .field("text", "the text")
                .amendable("text"),
        );
    }
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/examples")
}

fn today() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap()
}

fn portal_with(scripts: &Path) -> Portal {
    let mut opts = PortalOptions::new(std::env::temp_dir(), vec![Box::new(Future)]);
    opts.clock = Clock::fixed(today());
    opts.scripts_dir = Some(scripts.to_path_buf());
    let portal = Portal::assemble(Store::in_memory(), opts).expect("assemble");
    let bundle = json!({
        "invoice_groups": [{ "id": 1, "name": "Valley" }],
        "clients": [
            { "id": 7, "number": "1007", "name": "Eva", "invoice_group_id": 1,
              "mailing_address": { "street": "Polní 1", "city": "Blansko", "zip": "678 01", "country": "CZ" } },
            { "id": 8, "number": "1008", "name": "Jan", "invoice_group_id": 1,
              "mailing_address": { "street": "Husova 2", "city": "Brno", "zip": "602 00", "country": "CZ" } }
        ],
        "invoices": [
            { "id": 1, "client_id": 7, "number": "FV-OLD", "issued": "2026-04-01", "due": "2026-04-15", "amount": "450.00", "paid": false },
            { "id": 2, "client_id": 8, "number": "FV-NEW", "issued": "2026-06-01", "due": "2026-06-15", "amount": "450.00", "paid": false },
            { "id": 3, "client_id": 8, "number": "FV-PAID", "issued": "2026-01-01", "due": "2026-01-15", "amount": "450.00", "paid": true }
        ]
    });
    ops::execute(
        &portal,
        OpRequest::Import {
            json: bundle.to_string(),
            sync: false,
            dry_run: false,
        },
    )
    .expect("import");
    portal
}

fn view(portal: &Portal, number: &str) -> ClientView {
    let c = ops::find_client(portal, number).expect("client");
    ClientView::from(&c)
}

fn client_json(portal: &Portal, number: &str) -> Value {
    serde_json::to_value(view(portal, number)).expect("json")
}

#[test]
fn the_five_examples_do_what_docs_scripting_md_says() {
    let portal = portal_with(&examples_dir());
    let status = ops::execute(&portal, OpRequest::ScriptsStatus).expect("status");
    for (file, hook) in [
        ("client-data-rule.rhai", "before_client_data_change"),
        ("outage-panel.rhai", "info_panels"),
        ("sms-text-rule.rhai", "before_sms_send"),
        ("tag-outage-tickets.rhai", "before_ticket_create"),
        ("unpaid-invoices-login.rhai", "before_login"),
    ] {
        assert!(
            status.contains(&format!("{file}: active\n    hooks: {hook}\n")),
            "{file}: {status}"
        );
    }
    let hooks = &portal.registry.hooks;

    // 1. Logins of clients with an invoice unpaid for more than 60 days are refused.
    let mut eva = LoginEvent {
        client: view(&portal, "1007"),
        source_addr: None,
    };
    let veto = hooks.run("before_login", &mut eva).expect_err("veto");
    assert_eq!(
        veto.message,
        "Your access is suspended: invoice FV-OLD has been unpaid for more than 60 days. Please pay it or call us."
    );
    assert_eq!(
        veto.message_in("cs"),
        "Váš přístup je pozastaven: faktura FV-OLD není zaplacena déle než 60 dní. Uhraďte ji prosím nebo nám zavolejte."
    );
    let mut jan = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    assert_eq!(hooks.run("before_login", &mut jan), Ok(()));

    // 2. An outage line on the Information tab of one town, in the page's language.
    let panels = |number: &str, lang: &str| {
        let mut ev = InfoPanelsEvent {
            client: view(&portal, number),
            lang: lang.into(),
            panels: Vec::new(),
        };
        hooks.run("info_panels", &mut ev).expect("no veto");
        ev.panels
    };
    let en = panels("1007", "en");
    assert_eq!(en.len(), 1);
    assert_eq!(en[0]["title"], "Outage in Blansko");
    assert_eq!(panels("1007", "cs")[0]["title"], "Výpadek v Blansku");
    assert!(panels("1008", "en").is_empty(), "another town sees nothing");

    // 3. Tickets that mention an outage are tagged.
    let ticket = |subject: &str, text: &str| {
        let mut ev = json!({
            "client": client_json(&portal, "1007"),
            "subject": subject,
            "text": text,
            "department": "Support",
            "tags": ["internet"],
        });
        hooks
            .run_json("before_ticket_create", &mut ev)
            .expect("no veto");
        ev
    };
    let t = ticket("No internet", "Is there an OUTAGE in Blansko?");
    assert_eq!(t["tags"], json!(["internet", "outage"]));
    assert_eq!(t["subject"], "No internet");
    assert_eq!(t["department"], "Support");
    assert_eq!(ticket("Výpadek", "")["tags"], json!(["internet", "outage"]));
    assert_eq!(
        ticket("Invoice", "wrong amount")["tags"],
        json!(["internet"])
    );

    // 4. Data changes: phone numbers tidied, an e-mail at the ISP's domain refused.
    let mut change = json!({
        "client": client_json(&portal, "1007"),
        "changes": { "phone": "777 123 456", "mobile": "00420 608-111-222", "name": "Eva N." },
    });
    hooks
        .run_json("before_client_data_change", &mut change)
        .expect("no veto");
    assert_eq!(
        change["changes"],
        json!({ "phone": "+420777123456", "mobile": "+420608111222", "name": "Eva N." })
    );
    let mut bad = json!({
        "client": client_json(&portal, "1007"),
        "changes": { "email": "Eva@Example.net" },
    });
    let veto = hooks
        .run_json("before_client_data_change", &mut bad)
        .expect_err("veto");
    assert!(
        veto.message
            .starts_with("Please give an e-mail address outside example.net")
    );
    assert!(
        veto.message_in("cs")
            .starts_with("Zadejte prosím e-mail mimo doménu")
    );

    // 5. SMS texts without accents, signed, at most three messages long.
    let mut sms = json!({
        "client": client_json(&portal, "1007"),
        "to": "+420777123456",
        "text": "Výpadek v Blansku skončil. Žluťoučký kůň děkuje.",
    });
    hooks
        .run_json("before_sms_send", &mut sms)
        .expect("no veto");
    assert_eq!(
        sms["text"],
        "Vypadek v Blansku skoncil. Zlutoucky kun dekuje. -- Example Net"
    );
    assert_eq!(sms["to"], "+420777123456");
    let mut long = json!({
        "client": client_json(&portal, "1007"),
        "to": "+420777123456",
        "text": "x".repeat(450),
    });
    let veto = hooks
        .run_json("before_sms_send", &mut long)
        .expect_err("veto");
    assert!(
        veto.message
            .starts_with("The text is longer than three messages")
    );
    assert_eq!(
        long["text"],
        "x".repeat(450),
        "a vetoed event is not amended"
    );
}

fn write(dir: &Path, name: &str, source: &str) {
    std::fs::write(dir.join(name), source).expect("write script");
}

#[test]
fn scripts_cannot_change_what_they_may_not_amend_and_see_no_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    write(
        dir.path(),
        "meddle.rhai",
        r#"
        fn before_ticket_create(event) {
            event.client.number = "9999";
            event.department = "Sales";
            event.subject = "[" + event.client.invoice_group + "/" + event.client.city + "] " + event.subject;
            event.extra = "smuggled";
            let keys = event.client.keys();
            keys.sort();
            event.text = keys.reduce(|sum, k| sum + k + ",", "");
        }
        "#,
    );
    let portal = portal_with(dir.path());
    let mut ev = json!({
        "client": client_json(&portal, "1007"),
        "subject": "Hello",
        "text": "",
        "department": "Support",
        "tags": [],
    });
    portal
        .registry
        .hooks
        .run_json("before_ticket_create", &mut ev)
        .expect("no veto");
    assert_eq!(ev["client"], client_json(&portal, "1007"));
    assert_eq!(ev["department"], "Support");
    assert_eq!(ev["subject"], "[Valley/Blansko] Hello");
    assert!(ev.get("extra").is_none(), "{ev}");
    assert_eq!(
        ev["text"],
        "city,company,email,id,invoice_group,invoice_group_id,language,mobile,name,number,phone,username,zip,"
    );
}

/// Each hostile script is stopped well within a second, with the reason in the log line.
#[test]
fn hostile_scripts_are_stopped_counted_and_disabled() {
    let dir = tempfile::tempdir().expect("dir");
    let hostile = [
        ("loop.rhai", "fn before_login(event) { loop { } }"),
        (
            "recursion.rhai",
            "fn deeper(n) { deeper(n + 1) } fn before_login(event) { deeper(0) }",
        ),
        (
            "doubling.rhai",
            "fn before_login(event) { let s = \"x\"; loop { s += s; } }",
        ),
        (
            "array.rhai",
            "fn before_login(event) { let a = []; a.pad(100000000, 0); }",
        ),
        (
            "push.rhai",
            "fn before_login(event) { let a = []; loop { a.push(1); } }",
        ),
        (
            "unknown.rhai",
            "fn before_login(event) { launch_missiles(1) }",
        ),
        (
            "busy.rhai",
            "fn before_login(event) { let t = now(); while now() < t + 3600 { } }",
        ),
    ];
    for (name, source) in hostile {
        write(dir.path(), name, source);
    }
    let portal = portal_with(dir.path());
    portal
        .settings
        .set("script_max_failures", None, "3")
        .expect("set");
    let hooks = &portal.registry.hooks;
    for round in 1..=3 {
        let mut ev = LoginEvent {
            client: view(&portal, "1008"),
            source_addr: None,
        };
        let started = Instant::now();
        assert_eq!(hooks.run("before_login", &mut ev), Ok(()), "open policy");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(hostile.len() as u64 * 400),
            "round {round}: {took:?}"
        );
    }
    let status = ops::execute(&portal, OpRequest::ScriptsStatus).expect("status");
    for (name, why) in [
        // An empty loop reaches the operations limit before the deadline on a fast machine.
        (
            "loop.rhai",
            "ran past the deadline of 50 ms|ran too many operations",
        ),
        ("recursion.rhai", "called functions too deep"),
        ("doubling.rhai", "grew past its limit"),
        ("array.rhai", "grew past its limit"),
        // Ten thousand pushes may take longer than the deadline in a debug build.
        ("push.rhai", "grew past its limit|ran past the deadline"),
        ("unknown.rhai", "Function not found: launch_missiles"),
        ("busy.rhai", "ran past the deadline of 50 ms"),
    ] {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {status}"));
        assert!(
            line.starts_with(&format!(
                "{name}: disabled until edited: 3 failures in a row (last: "
            )) && why.split('|').any(|w| line.contains(w)),
            "{line}"
        );
    }
    assert!(
        status.contains("calls: 3, failures: 3 (3 in a row)"),
        "{status}"
    );
    // Disabled scripts are not called again.
    let mut ev = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    let started = Instant::now();
    assert_eq!(hooks.run("before_login", &mut ev), Ok(()));
    assert!(started.elapsed() < Duration::from_millis(20));
    // An edit brings a script back.
    write(
        dir.path(),
        "loop.rhai",
        "fn before_login(event) { veto(\"fixed\") }",
    );
    portal.scripts.reload();
    assert_eq!(hooks.run("before_login", &mut ev), Err(Veto::new("fixed")));
}

#[test]
fn import_eval_and_sleep_are_not_there() {
    let dir = tempfile::tempdir().expect("dir");
    let portal = portal_with(dir.path());
    let check = |source: &str| {
        ops::execute(
            &portal,
            OpRequest::ScriptsCheck {
                file: "x.rhai".into(),
                source: source.into(),
            },
        )
    };
    let e = check("import \"os\" as os;\nfn before_login(event) {}").expect_err("import");
    assert_eq!(
        e.to_string(),
        "x.rhai: does not compile: line 1, column 1: 'import' is a reserved keyword"
    );
    let e = check("fn before_login(event) {\n  eval(\"veto(1)\")\n}").expect_err("eval");
    assert!(
        e.to_string()
            .starts_with("x.rhai: does not compile: line 2, column 3:"),
        "{e}"
    );
    // sleep, parse_json and the time package are simply not registered: calling them fails.
    write(
        dir.path(),
        "sleepy.rhai",
        "fn before_login(event) { sleep(10); }",
    );
    portal.scripts.reload();
    let mut ev = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    let started = Instant::now();
    assert_eq!(portal.registry.hooks.run("before_login", &mut ev), Ok(()));
    assert!(started.elapsed() < Duration::from_millis(200));
    let status = ops::execute(&portal, OpRequest::ScriptsStatus).expect("status");
    assert!(status.contains("failures: 1 (1 in a row)"), "{status}");
}

#[test]
fn the_closed_policy_refuses_when_a_script_fails() {
    let dir = tempfile::tempdir().expect("dir");
    write(dir.path(), "bug.rhai", "fn before_login(event) { 1 / 0 }");
    let portal = portal_with(dir.path());
    let mut ev = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    assert_eq!(portal.registry.hooks.run("before_login", &mut ev), Ok(()));
    portal
        .settings
        .set("script_failure_policy", None, "closed")
        .expect("set");
    let veto = portal
        .registry
        .hooks
        .run("before_login", &mut ev)
        .expect_err("closed");
    assert_eq!(
        veto.message,
        "This cannot be done right now. Please try again later or contact us."
    );
    assert_eq!(
        veto.message_in("cs"),
        "Tuto akci teď nelze provést. Zkuste to prosím později nebo nás kontaktujte."
    );
    // An action that cannot be refused goes on.
    write(dir.path(), "bug.rhai", "fn info_panels(event) { 1 / 0 }");
    portal.scripts.reload();
    let mut panels = InfoPanelsEvent {
        client: view(&portal, "1008"),
        lang: "en".into(),
        panels: Vec::new(),
    };
    assert_eq!(
        portal.registry.hooks.run("info_panels", &mut panels),
        Ok(())
    );
}

#[test]
fn a_broken_edit_keeps_the_previous_version_and_a_removal_stops_it() {
    let dir = tempfile::tempdir().expect("dir");
    write(
        dir.path(),
        "a.rhai",
        "fn before_login(event) { veto(\"one\") }",
    );
    write(
        dir.path(),
        "b.rhai",
        "fn before_login(event) { veto(\"two\") }",
    );
    let portal = portal_with(dir.path());
    let hooks = &portal.registry.hooks;
    let mut ev = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    assert_eq!(hooks.run("before_login", &mut ev), Err(Veto::new("one")));
    write(
        dir.path(),
        "a.rhai",
        "fn before_login(event) { veto(\"one\" }",
    );
    let changes = portal.scripts.reload();
    assert_eq!(
        changes,
        vec!["a.rhai: compile error: line 1, column 37: Expecting ',' to separate the arguments to function call 'veto'".to_string()]
    );
    assert_eq!(hooks.run("before_login", &mut ev), Err(Veto::new("one")));
    let status = ops::execute(&portal, OpRequest::ScriptsStatus).expect("status");
    assert!(
        status.contains("a.rhai: compile error: line 1, column 37: Expecting ','")
            && status.contains("; the previous version stays active\n"),
        "{status}"
    );
    std::fs::remove_file(dir.path().join("a.rhai")).expect("rm");
    assert_eq!(portal.scripts.reload(), vec!["a.rhai: removed".to_string()]);
    assert_eq!(hooks.run("before_login", &mut ev), Err(Veto::new("two")));
    let hooks_text = ops::execute(&portal, OpRequest::Hooks).expect("hooks");
    assert!(
        hooks_text.contains("    handled by: script b.rhai\n"),
        "{hooks_text}"
    );
}

#[test]
fn send_mail_is_bounded_per_script_and_hour() {
    let dir = tempfile::tempdir().expect("dir");
    write(
        dir.path(),
        "mailer.rhai",
        r#"fn after_login(event) {
            let sent = 0;
            for i in 0..5 {
                if send_mail("noc@example.net", "Login of " + event.client.number, "at " + today()) { sent += 1; }
            }
            if send_mail("not an address", "x", "y") { sent += 100; }
            log("info", "sent " + sent);
            if sent != 2 { throw "sent " + sent; }
        }"#,
    );
    let portal = portal_with(dir.path());
    portal
        .settings
        .set("script_mail_per_hour", None, "2")
        .expect("set");
    let mut ev = LoginEvent {
        client: view(&portal, "1008"),
        source_addr: None,
    };
    assert_eq!(portal.registry.hooks.run("after_login", &mut ev), Ok(()));
    let queue = ops::execute(&portal, OpRequest::MailQueue).expect("queue");
    assert_eq!(queue.matches("noc@example.net").count(), 2, "{queue}");
    let status = ops::execute(&portal, OpRequest::ScriptsStatus).expect("status");
    assert!(status.contains("calls: 1, failures: 0"), "{status}");
}
