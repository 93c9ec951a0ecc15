//! A compiled-in plugin written against `portico_core::plugin` only (the stable surface), run
//! inside a portal assembled on an in-memory store: its operator command, migration, own hook
//! point and what its settings may read.

use std::sync::Arc;

use portico_core::internal::ops::{self, OpRequest};
use portico_core::internal::store::Store;
use portico_core::internal::{Portal, PortalOptions};
use portico_core::plugin::{
    HookDef, Manifest, OperatorCommand, Plugin, Registrar, SettingDef, Veto, id_key,
};
use serde_json::json;

/// A small helpdesk-like plugin: a migration seeding a department, a command that opens a
/// ticket for a client the operator names, and a `before_ticket_create` hook it declares.
struct Desk;

impl Plugin for Desk {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: "desk",
            name: "Desk",
            version: "1.0.0",
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(SettingDef::text("desk_prefix", "T", "Ticket prefix."));
        r.migration(1, "desk: first department", |ns| {
            ns.put("departments", &id_key(1), &json!({"name": "Support"}))
        });
        r.declare_hook(
            HookDef::new("before_ticket_create", "A ticket is about to be created.")
                .field("client", "the client")
                .field("subject", "the subject")
                .amendable("subject"),
        );
        r.command(OperatorCommand {
            name: "deskmail",
            about: "deskmail TO SUBJECT",
            run: Arc::new(|ctx, args| {
                let [to, subject] = args else {
                    return Err(portico_core::Error::Invalid(
                        "usage: deskmail TO SUBJECT".into(),
                    ));
                };
                let id = ctx.queue_mail(to, subject, "Your ticket was answered.")?;
                Ok(format!("queued {}", id > 0))
            }),
        });
        r.command(OperatorCommand {
            name: "desk",
            about: "desk open CLIENT SUBJECT",
            run: Arc::new(|ctx, args| {
                let [verb, who, subject] = args else {
                    return Err(portico_core::Error::Invalid(
                        "usage: desk open CLIENT SUBJECT".into(),
                    ));
                };
                if verb != "open" {
                    return Err(portico_core::Error::Invalid(format!("unknown verb {verb}")));
                }
                let client = ctx.find_client(who)?;
                let mut event = json!({ "client": client.number, "subject": subject });
                ctx.run_hook("before_ticket_create", &mut event)
                    .map_err(|v| portico_core::Error::Invalid(v.message))?;
                let prefix = ctx.setting("desk_prefix", None);
                let foreign = ctx.setting("guard_word", None);
                let departments: Vec<(Vec<u8>, serde_json::Value)> =
                    ctx.store().scan("departments", &[])?;
                let ticket = json!({
                    "client": client.id,
                    "subject": event["subject"],
                    "department": departments[0].1["name"],
                });
                ctx.store().put("tickets", &id_key(client.id), &ticket)?;
                ctx.audit(Some(client.id), "ticket_opened", None);
                Ok(format!(
                    "{}{} {} (foreign setting: {foreign})",
                    prefix.as_str().unwrap_or(""),
                    client.id,
                    ticket
                ))
            }),
        });
    }
}

/// Another plugin that handles the desk's hook: it vetoes one word and tidies subjects, and
/// tries to change a field it may not amend.
struct Guard;

impl Plugin for Guard {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: "guard",
            name: "Guard",
            version: "1.0.0",
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(SettingDef::text(
            "guard_word",
            "outage",
            "A word refused in subjects.",
        ));
        r.on_json("before_ticket_create", |ev| {
            let subject = ev["subject"].as_str().unwrap_or("").trim().to_string();
            if subject.contains("outage") {
                return Err(Veto::new("no outage tickets").with("cs", "žádné výpadky"));
            }
            ev["subject"] = json!(subject.to_uppercase());
            ev["client"] = json!("someone-else");
            Ok(())
        });
    }
}

fn portal() -> Portal {
    let portal = Portal::assemble(
        Store::in_memory(),
        PortalOptions::new(std::env::temp_dir(), vec![Box::new(Desk), Box::new(Guard)]),
    )
    .expect("assemble");
    let bundle = json!({
        "invoice_groups": [{ "id": 1, "name": "Main" }],
        "clients": [{ "id": 7, "number": "1007", "name": "Eva", "invoice_group_id": 1 }]
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

#[test]
fn an_operator_command_works_through_its_context() {
    let portal = portal();
    let out = ops::execute(
        &portal,
        OpRequest::PluginCommand {
            args: vec![
                "desk".into(),
                "open".into(),
                "1007".into(),
                "  slow wifi ".into(),
            ],
        },
    )
    .expect("command");
    // Amended by the guard (trimmed, upper case); the client field it changed was restored;
    // a setting of another plugin reads as null.
    assert_eq!(
        out,
        r#"T7 {"client":7,"department":"Support","subject":"SLOW WIFI"} (foreign setting: null)"#
    );
    // The ticket landed in the plugin's own tree.
    let stored = portal
        .store
        .get_raw("desk:tickets", &id_key(7))
        .expect("read")
        .expect("stored");
    assert_eq!(
        String::from_utf8(stored).expect("utf-8"),
        r#"{"client":7,"department":"Support","subject":"SLOW WIFI"}"#
    );
    let audit = ops::execute(
        &portal,
        OpRequest::Audit {
            client: Some("1007".into()),
            limit: 5,
            before: None,
            kind: None,
            since: None,
            until: None,
        },
    )
    .expect("audit");
    assert!(audit.contains("desk: ticket_opened"), "{audit}");
}

#[test]
fn a_veto_on_a_declared_hook_stops_the_command() {
    let portal = portal();
    let e = ops::execute(
        &portal,
        OpRequest::PluginCommand {
            args: vec![
                "desk".into(),
                "open".into(),
                "1007".into(),
                "fibre outage".into(),
            ],
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "no outage tickets");
    assert_eq!(
        portal
            .store
            .get_raw("desk:tickets", &id_key(7))
            .expect("read"),
        None
    );
}

#[test]
fn unknown_commands_and_hooks_are_listed() {
    let portal = portal();
    let e = ops::execute(
        &portal,
        OpRequest::PluginCommand {
            args: vec!["nosuch".into()],
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown command `nosuch` (commands: demo, serve,"),
        "{e}"
    );
    assert!(e.to_string().ends_with(", deskmail, desk)"), "{e}");
    let hooks = ops::execute(&portal, OpRequest::Hooks).expect("hooks");
    assert!(
        hooks.contains(
            "before_ticket_create (declared by desk; may refuse)\n    A ticket is about to be created.\n    event.client: the client\n    event.subject [amendable]: the subject\n    handled by: guard\n"
        ),
        "{hooks}"
    );
    let plugins = ops::execute(&portal, OpRequest::PluginsList).expect("list");
    assert!(
        plugins.contains("desk 1.0.0 (Desk): compiled-in, loaded\n    settings: desk_prefix\n    declares hooks: before_ticket_create\n    commands: deskmail (deskmail TO SUBJECT), desk (desk open CLIENT SUBJECT)\n"),
        "{plugins}"
    );
}

#[test]
fn a_plugin_migration_runs_once_in_its_namespace() {
    let portal = portal();
    assert_eq!(portal.store.migration_level("desk").expect("level"), 1);
    assert_eq!(
        portal
            .store
            .get_raw("desk:departments", &id_key(1))
            .expect("read"),
        Some(br#"{"name":"Support"}"#.to_vec())
    );
}

#[test]
fn a_second_plugin_with_the_same_id_stops_assembly() {
    let e = Portal::assemble(
        Store::in_memory(),
        PortalOptions::new(std::env::temp_dir(), vec![Box::new(Desk), Box::new(Desk)]),
    )
    .err()
    .expect("refused");
    assert_eq!(
        e.to_string(),
        "plugin `desk`: a plugin with this id is registered already"
    );
}

#[test]
fn a_plugin_queues_mail_through_the_outbox_and_bad_headers_are_refused() {
    let portal = portal();
    let run = |args: &[&str]| {
        ops::execute(
            &portal,
            OpRequest::PluginCommand {
                args: std::iter::once("deskmail")
                    .chain(args.iter().copied())
                    .map(String::from)
                    .collect(),
            },
        )
    };
    assert_eq!(
        run(&["eva@example.com", "Ticket answered"]).expect("queued"),
        "queued true"
    );
    let e = run(&["eva@example.com", "Hi\r\nBcc: all@example.com"]).unwrap_err();
    assert_eq!(e.to_string(), "a mail subject is one line");
    let e = run(&["not-an-address", "Hi"]).unwrap_err();
    assert_eq!(e.to_string(), "`not-an-address` is not an e-mail address");
    let queue = ops::execute(&portal, OpRequest::MailQueue).expect("queue");
    assert_eq!(queue.lines().count(), 1, "{queue}");
    assert!(
        queue.contains("desk mail \"Ticket answered\" for <eva@example.com>: pending"),
        "{queue}"
    );
}
