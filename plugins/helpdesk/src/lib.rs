//! The Helpdesk tab and support requests: clients talk to the ISP from the portal, operators
//! answer from the `portico` command.
//!
//! - Operators (staff for routing) and departments; the department marked "use for CP
//!   requests" receives the tickets clients create. Without one the tab is not shown.
//! - Tickets: conversations of items (e-mail, SMS, in person, telephone, portal), with
//!   attachments from clients, replies by e-mail through the outbox.
//! - Support requests (no CP-requests department): a task for the operators plus mail.
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`).

mod commands;
mod files;
mod model;
mod web;

use std::sync::Arc;

use portico_core::plugin::{
    HookDef, Manifest, MenuButton, OperatorCommand, Plugin, Registrar, SettingDef, SettingType, Tab,
};

pub const ID: &str = "helpdesk";

pub const BEFORE_TICKET_CREATE: &str = "before_ticket_create";
pub const AFTER_TICKET_CREATE: &str = "after_ticket_create";
pub const AFTER_TICKET_REPLY: &str = "after_ticket_reply";

/// Settings (keys as ISPadmin names them where it has them).
pub const REQUESTS_ENABLE: &str = "ci_auth_requests_enable";
pub const REQUESTS_FORWARD: &str = "ci_auth_requests_forwarding_email";
pub const ATTACHMENT_MAX_KB: &str = "helpdesk_attachment_max_kb";
pub const ATTACHMENT_TYPES: &str = "helpdesk_attachment_types";
pub const ATTACHMENTS_PER_TICKET: &str = "helpdesk_attachments_per_ticket";
pub const TICKETS_PER_HOUR: &str = "helpdesk_tickets_per_hour";
pub const REPLIES_PER_HOUR: &str = "helpdesk_replies_per_hour";
pub const CLIENT_STORAGE_MB: &str = "helpdesk_client_storage_mb";

/// Largest attachment the size setting allows, and files in one message: together they give
/// the largest form body the plugin's routes read.
pub const MAX_ATTACHMENT_KB: i64 = 5 * 1024;
pub const FILES_PER_MESSAGE: usize = 3;

pub struct Helpdesk;

/// The plugin's one public constructor.
pub fn plugin() -> Box<dyn Plugin> {
    Box::new(Helpdesk)
}

impl Plugin for Helpdesk {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "Helpdesk",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(
            SettingDef::bool(
                REQUESTS_ENABLE,
                false,
                "Clients may send support requests from the Information tab (\"Create ticket\" when a department is used for CP requests).",
            )
            .per_invoice_group(),
        );
        r.setting(
            SettingDef::new(
                REQUESTS_FORWARD,
                SettingType::Emails,
                serde_json::Value::String(String::new()),
                "Copies of support requests go to these addresses (separated by , or ;), besides the operators with both --send-tasks-via-email and --send-cp-requests.",
            )
            .per_invoice_group(),
        );
        r.setting(SettingDef::int(
            ATTACHMENT_MAX_KB,
            2048,
            1,
            MAX_ATTACHMENT_KB,
            "Largest file a client may attach to a ticket, in KiB.",
        ));
        r.setting(SettingDef::text(
            ATTACHMENT_TYPES,
            "pdf png jpg jpeg gif txt",
            "File name extensions a client may attach (separated by spaces or commas).",
        ));
        r.setting(SettingDef::int(
            ATTACHMENTS_PER_TICKET,
            10,
            0,
            100,
            "Most files a client may attach to one ticket (0: no attachments).",
        ));
        r.setting(SettingDef::int(
            TICKETS_PER_HOUR,
            5,
            1,
            1000,
            "Most tickets and support requests one client may create in an hour.",
        ));
        r.setting(SettingDef::int(
            REPLIES_PER_HOUR,
            30,
            1,
            1000,
            "Most replies one client may write in an hour.",
        ));
        r.setting(SettingDef::int(
            CLIENT_STORAGE_MB,
            50,
            1,
            10_000,
            "Most MiB of attachments one client may store in all.",
        ));
        r.upload_limit((MAX_ATTACHMENT_KB as u64) * 1024 * FILES_PER_MESSAGE as u64 + 256 * 1024);
        r.tab(
            Tab::new("helpdesk", "helpdesk-tab", "/helpdesk/")
                .icon("helpdesk")
                .order(60)
                .visible_when(|v| model::cp_department(&v.store()).ok().flatten().is_some()),
        );
        r.information_button(MenuButton {
            id: "support-request",
            title_key: "helpdesk-send-request",
            icon: "helpdesk",
            order: 10,
            href: Arc::new(|v| {
                (v.flag(REQUESTS_ENABLE)
                    && model::cp_department(&v.store()).ok().flatten().is_none())
                .then(|| "/helpdesk/request".to_string())
            }),
            external: false,
        });
        r.information_button(MenuButton {
            id: "create-ticket",
            title_key: "helpdesk-create-ticket",
            icon: "helpdesk",
            order: 11,
            href: Arc::new(|v| {
                (v.flag(REQUESTS_ENABLE)
                    && model::cp_department(&v.store()).ok().flatten().is_some())
                .then(|| "/helpdesk/new".to_string())
            }),
            external: false,
        });
        r.declare_hook(
            HookDef::new(
                BEFORE_TICKET_CREATE,
                "A client creates a ticket in the portal; nothing is stored yet. A veto is shown to the client on the form and nothing is stored; subject, text and tags may be amended.",
            )
            .field("client", "the client (as in before_login)")
            .field("subject", "the ticket's subject")
            .field("text", "the client's text")
            .field("department", "the name of the department the ticket goes to")
            .field("tags", "an array of strings stored on the ticket (empty when the client creates it), shown to operators")
            .amendable("subject")
            .amendable("text")
            .amendable("tags"),
        );
        r.declare_hook(
            HookDef::new(
                AFTER_TICKET_CREATE,
                "A client created a ticket; it is stored.",
            )
            .field("client", "the client (as in before_login)")
            .field("ticket_id", "the ticket's number")
            .field("subject", "the subject as stored")
            .field("text", "the text as stored")
            .field("department", "the department's name")
            .field("tags", "the tags as stored")
            .field("attachments", "how many files came with it"),
        );
        r.declare_hook(
            HookDef::new(
                AFTER_TICKET_REPLY,
                "A reply was added to a ticket, by the client in the portal or by an operator (portico helpdesk reply); it is stored (and an e-mail reply queued).",
            )
            .field("client", "the ticket's client, or null")
            .field("ticket_id", "the ticket's number")
            .field("subject", "the ticket's subject")
            .field("from_client", "true when the client wrote it")
            .field("channel", "email, sms, in_person, telephone or portal")
            .field("author", "who wrote it")
            .field("text", "the reply's text")
            .field("department", "the department the reply came from")
            .field("sms", "null; a plugin that sends an operator's reply of channel sms to the client's mobile (the SMS plugin) sets it to a line saying what became of the SMS, which `portico helpdesk reply` prints")
            .amendable("sms"),
        );
        // What the helpdesk holds about a client goes into the GDPR plugin's data export (when
        // that plugin is built in).
        r.on_json_with_store("gdpr_export", true, |ns, event| {
            if let Some(id) = event["client"]["id"].as_u64()
                && let Ok(tickets) = model::export(ns, id)
            {
                event["sections"]["helpdesk_tickets"] = tickets;
            }
            Ok(())
        });
        r.routes(web::routes());
        r.template("tickets.html", include_str!("../templates/tickets.html"));
        r.template("ticket.html", include_str!("../templates/ticket.html"));
        r.template("new.html", include_str!("../templates/new.html"));
        r.template("request.html", include_str!("../templates/request.html"));
        r.template(
            "files_field.html",
            include_str!("../templates/files_field.html"),
        );
        r.asset(
            "helpdesk.css",
            &include_bytes!("../static/helpdesk.css")[..],
        );
        r.translations("en", include_str!("../i18n/en.ftl"));
        r.translations("cs", include_str!("../i18n/cs.ftl"));
        r.command(OperatorCommand {
            name: "operator",
            about: "add NAME --email E [--send-tasks-via-email] [--send-cp-requests], list, remove ID: staff who get support requests",
            run: Arc::new(commands::operator),
        });
        r.command(OperatorCommand {
            name: "helpdesk",
            about: "department add|list|set, tickets, show ID, create, reply ID, state ID, assign ID --client C, attachment ID",
            run: Arc::new(commands::helpdesk),
        });
        r.demo(commands::demo);
    }
}
