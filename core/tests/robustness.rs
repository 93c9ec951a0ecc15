//! What the security review of accounts and sessions asked for, on a portal assembled on an
//! in-memory store: operator listings that text from clients or imports cannot drive the
//! terminal, an audit log read page by page, single records that cannot be read and do not
//! take a feature down, and client changes that never overwrite what an import changed.

use std::sync::Arc;

use portico_core::internal::audit::{Audit, AuditKind};
use portico_core::internal::import;
use portico_core::internal::mail::{self, MailJob};
use portico_core::internal::model::{Client, LoginNameTaken, Message};
use portico_core::internal::ops::{self, OpRequest};
use portico_core::internal::settings::Settings;
use portico_core::internal::store::{Op, Record, Store, id_key};
use portico_core::internal::{Portal, PortalOptions};
use portico_core::rocket::http::{ContentType, Status};
use portico_core::rocket::local::blocking::Client as Browser;
use serde_json::json;

fn options() -> PortalOptions {
    PortalOptions::new(std::env::temp_dir(), vec![])
}

/// A portal with one invoice group and client 1007, whose name came from the billing system
/// with a carriage return and a right-to-left override in it.
fn portal() -> Portal {
    let portal = Portal::assemble(Store::in_memory(), options()).expect("assemble");
    import(&portal, "Eva\rMallory\u{202e}");
    portal
}

fn import(portal: &Portal, name: &str) {
    let bundle = json!({
        "invoice_groups": [{ "id": 1, "name": "Main" }],
        "clients": [
            { "id": 7, "number": "1007", "name": name, "invoice_group_id": 1, "email": "eva@example.com" },
            { "id": 8, "number": "1008", "name": "Petr", "invoice_group_id": 1 }
        ]
    });
    // Straight into the store: these tests read the audit log, which an operator's import
    // command would add to.
    let bundle = import::check(&portal.store, &bundle.to_string()).expect("valid");
    import::write(&portal.store, &bundle, &mut |_, _| {}).expect("import");
}

fn audit(portal: &Portal, client: Option<&str>, limit: usize, before: Option<u64>) -> String {
    ops::execute(
        portal,
        OpRequest::Audit {
            client: client.map(str::to_string),
            limit,
            before,
            kind: None,
            since: None,
            until: None,
        },
    )
    .expect("audit")
}

fn raw(store: &Store, tree: &'static str, key: Vec<u8>, value: &[u8]) {
    store
        .backend()
        .apply(&[Op {
            tree: tree.into(),
            key,
            value: Some(value.to_vec()),
        }])
        .expect("apply");
}

/// No character that a terminal acts on is left in operator output (line breaks between
/// lines aside).
fn assert_inert(out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{2066}'..='\u{2069}').contains(c))
        .chain(
            out.chars()
                .filter(|c| ('\u{202a}'..='\u{202e}').contains(c)),
        )
        .collect();
    assert!(bad.is_empty(), "{bad:?} in {out:?}");
}

#[test]
fn a_login_name_typed_at_the_login_form_cannot_drive_the_operators_terminal() {
    let rocket = portico_core::internal::web::build(
        portal(),
        portico_core::internal::web::rocket_config("127.0.0.1:0".parse().expect("addr")),
    );
    let browser = Browser::untracked(rocket).expect("rocket");
    // ESC [2J clears the screen; ESC ]0;...BEL retitles the window.
    let r = browser
        .post("/sign")
        .header(ContentType::Form)
        .body("username=%1B%5B2J%1B%5D0%3Bowned%07evil&password=guess")
        .dispatch();
    assert_eq!(r.status(), Status::Unauthorized);
    let portal = browser.rocket().state::<Arc<Portal>>().expect("portal");
    let out = audit(portal, None, 10, None);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(
            r"LoginFailed                  client=- login=\x1b[2J\x1b]0;owned\x07evil source="
        ),
        "{out}"
    );
    assert_inert(&out);
}

#[test]
fn mail_queue_and_client_listings_escape_control_characters() {
    let portal = portal();
    let out = ops::execute(
        &portal,
        OpRequest::OneTimePassword {
            client: "1007".into(),
        },
    )
    .expect("otp");
    assert!(
        out.starts_with(r"one-time password for client 1007 (Eva\rMallory\u{202e}): "),
        "{out}"
    );
    // Stored before subjects were checked, or by a plugin that let ESC through.
    let id = mail::enqueue(
        &portal,
        MailJob::Plugin {
            plugin: "desk".into(),
            client_id: Some(7),
            to: "eva@example.com".into(),
            to_name: None,
            subject: "Hi\r#1 sent OK\u{1b}[8m".into(),
            body: "x".into(),
        },
    )
    .expect("enqueue");
    let queue = ops::execute(&portal, OpRequest::MailQueue).expect("queue");
    assert!(
        queue.starts_with(&format!(
            r#"#{id} desk mail "Hi\r#1 sent OK\x1b[8m" for <eva@example.com>: pending, next try "#
        )),
        "{queue}"
    );
    assert_eq!(queue.lines().count(), 1, "{queue}");
    assert_inert(&queue);
    let e = ops::find_client(&portal, "\u{1b}[2J")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r"no client with number or login name `\x1b[2J` (use #ID for an internal id)"
    );
}

#[test]
fn settings_values_are_printed_escaped() {
    let portal = portal();
    let set = ops::execute(
        &portal,
        OpRequest::SettingsSet {
            key: "system_mail_name".into(),
            group: None,
            value: "ISP\u{1b}]0;owned\u{7}\u{9b}".into(),
        },
    )
    .expect("set");
    assert_eq!(set, r"system_mail_name = ISP\x1b]0;owned\x07\u{9b}");
    let get = ops::execute(
        &portal,
        OpRequest::SettingsGet {
            key: "system_mail_name".into(),
            group: None,
        },
    )
    .expect("get");
    assert_eq!(get, r"system_mail_name = ISP\x1b]0;owned\x07\u{9b}  (set)");
    let list = ops::execute(&portal, OpRequest::SettingsList).expect("list");
    assert!(
        list.contains("\nsystem_mail_name = ISP\\x1b]0;owned\\x07\\u{9b}\n"),
        "{list}"
    );
    assert_inert(&list);
}

#[test]
fn the_audit_log_is_read_page_by_page_newest_first() {
    let portal = portal();
    for (i, client) in [Some(7), None, Some(7), Some(8), Some(7)]
        .into_iter()
        .enumerate()
    {
        portal.audit(Audit {
            client_id: client,
            detail: Some(format!("event {i}")),
            ..Audit::new(AuditKind::Logout)
        });
    }
    let details = |out: &str| {
        out.lines()
            .filter_map(|l| l.split("  ").last())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let first = audit(&portal, None, 2, None);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "{first}");
    assert_eq!(details(&first)[..2], ["event 4", "event 3"]);
    let before: u64 = lines[2]
        .strip_prefix("(older events: portico audit --before ")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a hint for the next page: {first}"));
    let second = audit(&portal, None, 2, Some(before));
    assert_eq!(details(&second)[..2], ["event 2", "event 1"], "{second}");
    let hint = second.lines().last().expect("hint");
    let before: u64 = hint
        .trim_start_matches("(older events: portico audit --before ")
        .trim_end_matches(')')
        .parse()
        .expect("id");
    let last = audit(&portal, None, 2, Some(before));
    assert_eq!(
        details(&last),
        ["event 0"],
        "no hint on the last page: {last}"
    );
    // One client's events, through the client index.
    let eva = audit(&portal, Some("1007"), 2, None);
    assert_eq!(details(&eva)[..2], ["event 4", "event 2"], "{eva}");
    assert!(
        eva.lines()
            .last()
            .is_some_and(|l| l.starts_with("(older events: portico audit --client 1007 --before ")),
        "{eva}"
    );
    assert!(
        eva.lines().take(2).all(|l| l.contains(" client=1007 ")),
        "{eva}"
    );
    assert_eq!(audit(&portal, Some("1008"), 5, None).lines().count(), 1);
}

#[test]
fn one_unreadable_outbox_entry_does_not_stop_the_queue_listing() {
    let portal = portal();
    let id = mail::enqueue(
        &portal,
        MailJob::Plugin {
            plugin: "desk".into(),
            client_id: None,
            to: "eva@example.com".into(),
            to_name: None,
            subject: "Answered".into(),
            body: "x".into(),
        },
    )
    .expect("enqueue");
    raw(
        &portal.store,
        "mail_outbox",
        id_key(id + 1),
        b"\x01{\"id\":",
    );
    let queue = ops::execute(&portal, OpRequest::MailQueue).expect("queue");
    assert_eq!(queue.lines().count(), 1, "{queue}");
    assert!(
        queue.starts_with(&format!("#{id} desk mail \"Answered\"")),
        "{queue}"
    );
    assert_eq!(mail::has_pending_link(&portal.store, 7).ok(), Some(false));
}

#[test]
fn one_unreadable_message_does_not_hide_the_others() {
    let portal = portal();
    let store = &portal.store;
    let message = |id: u64, client_id: Option<u64>| Message {
        id,
        client_id,
        invoice_group_id: None,
        subject: format!("m{id}"),
        body: String::new(),
        valid_from: None,
        valid_until: None,
    };
    store
        .write(|tx| {
            tx.put(&message(1, Some(7)))?;
            tx.put(&message(2, None))?;
            tx.put(&message(3, None))
        })
        .expect("put");
    raw(store, Message::TREE, id_key(2), b"\x01{\"id\": \"two\"}");
    raw(store, Message::TREE, id_key(3), b"\x09{}");
    let eva = store.get_id::<Client>(7).expect("read").expect("eva");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
    let ids: Vec<u64> = store
        .messages_for(&eva, day)
        .expect("messages")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [1]);
}

#[test]
fn settings_load_skips_an_unreadable_value() {
    let portal = portal();
    ops::execute(
        &portal,
        OpRequest::SettingsSet {
            key: "system_mail_name".into(),
            group: None,
            value: "ISP".into(),
        },
    )
    .expect("set");
    let key = portal
        .store
        .scan_raw("settings", b"system_mail_name")
        .expect("scan")
        .remove(0)
        .0;
    raw(&portal.store, "settings", key, b"{not json");
    let defs: Vec<_> = portal.settings.definitions().cloned().collect();
    let settings = Settings::load(portal.store.clone(), defs).expect("load");
    assert_eq!(settings.text("system_mail_name", None), "");
    assert_eq!(settings.int("audit_retention_days", None), 365);
}

#[test]
fn a_language_switch_keeps_what_an_import_changed_meanwhile() {
    let portal = portal();
    let store = &portal.store;
    // What a page's guard read when the request began.
    let seen = store.get_id::<Client>(7).expect("read").expect("eva");
    import(&portal, "Eva Nováková");
    let saved = store
        .update_client(seen.id, |c| c.language = Some("cs".into()))
        .expect("update")
        .expect("exists");
    let stored = store.get_id::<Client>(7).expect("read").expect("eva");
    assert_eq!(stored, saved);
    assert_eq!(
        (stored.name.as_str(), stored.language.as_deref()),
        ("Eva Nováková", Some("cs"))
    );
    assert_eq!(store.update_client(99, |_| {}).expect("update"), None);
}

#[test]
fn a_login_name_is_checked_and_claimed_in_one_step() {
    let portal = portal();
    let store = &portal.store;
    let seen = store.get_id::<Client>(7).expect("read").expect("eva");
    import(&portal, "Eva Nováková");
    let claim = |id: u64, name: &str| {
        store
            .claim_login_name(id, name)
            .expect("claim")
            .map(|c| c.map(|c| (c.id, c.username, c.name)))
    };
    assert_eq!(
        claim(seen.id, "eva.n"),
        Ok(Some((7, Some("eva.n".into()), "Eva Nováková".into())))
    );
    assert_eq!(
        claim(8, "EVA.N"),
        Err(LoginNameTaken),
        "taken, whatever the case"
    );
    assert_eq!(
        claim(8, "1007"),
        Err(LoginNameTaken),
        "another client's number"
    );
    assert_eq!(
        claim(8, "1008"),
        Ok(Some((8, Some("1008".into()), "Petr".into()))),
        "their own number"
    );
    assert_eq!(claim(99, "ghost"), Ok(None));
    assert_eq!(
        store.client_by_username("eva.n").expect("q").map(|c| c.id),
        Some(7)
    );
}

/// Many clients claim one name at once: exactly one gets it. On sled, whose flushes keep
/// writers queueing, a check made outside the write lets several through.
#[test]
fn parallel_claims_of_one_login_name_give_it_to_one_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("sled");
    let portal = Portal::assemble(store, options()).expect("assemble");
    let clients: Vec<_> = (1..=16u64)
        .map(|i| json!({"id": i, "number": format!("{}", 1000 + i), "name": "C", "invoice_group_id": 1}))
        .collect();
    let bundle = json!({ "invoice_groups": [{ "id": 1, "name": "Main" }], "clients": clients });
    ops::execute(
        &portal,
        OpRequest::Import {
            json: bundle.to_string(),
            sync: false,
            dry_run: false,
        },
    )
    .expect("import");
    for round in 0..20 {
        let name = format!("wanted{round}");
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=16u64)
                .map(|id| {
                    let (store, name) = (&portal.store, &name);
                    s.spawn(move || store.claim_login_name(id, name).expect("claim").is_ok())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().expect("thread")))
                .sum()
        });
        assert_eq!(wins, 1, "{name}");
        let holders = portal
            .store
            .all::<Client>()
            .expect("all")
            .into_iter()
            .filter(|c| c.username.as_deref() == Some(name.as_str()))
            .count();
        assert_eq!(holders, 1, "{name}");
    }
}

#[test]
fn audit_retention_is_a_bounded_setting() {
    let portal = portal();
    let set = |v: &str| {
        ops::execute(
            &portal,
            OpRequest::SettingsSet {
                key: "audit_retention_days".into(),
                group: None,
                value: v.into(),
            },
        )
    };
    assert_eq!(portal.settings.int("audit_retention_days", None), 365);
    assert_eq!(set("30").expect("set"), "audit_retention_days = 30");
    assert_eq!(
        set("0").unwrap_err().to_string(),
        "audit_retention_days: `0` is not between 1 and 36500"
    );
    assert_eq!(
        set("36501").unwrap_err().to_string(),
        "audit_retention_days: `36501` is not between 1 and 36500"
    );
}
