//! The Send SMS tab: clients send SMS from the portal through the ISP's gateway (SMPP or an
//! HTTP gateway), with a monthly quota counted in parts, and keep a telephone directory.
//!
//! - Every message goes through a durable outbox in the plugin's namespace; the quota is
//!   checked and consumed in the same transaction that queues the message.
//! - The tab shows only when core's `sms_notify` is not `disabled` and `ci_sms_enable` is on
//!   (per invoice group).
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`).

mod commands;
pub mod gsm;
pub mod helpdesk;
pub mod model;
pub mod phone;
mod sender;
pub mod smpp;
mod web;

use std::sync::Arc;

use portico_core::plugin::{
    HookDef, Manifest, OperatorCommand, Plugin, Registrar, SettingDef, SettingType, Tab, ViewerCtx,
};

pub const ID: &str = "sms";

/// Core's setting (declared by core): disabled | gateway | smpp.
pub const SMS_NOTIFY: &str = "sms_notify";

pub const ENABLE: &str = "ci_sms_enable";
pub const PER_MONTH: &str = "ci_sms_per_month";
pub const MAX_PARTS: &str = "sms_max_parts";
pub const PER_HOUR: &str = "sms_per_hour";
pub const DEFAULT_COUNTRY: &str = "sms_default_country";
pub const SMPP_URL: &str = "sms_smpp_url";
pub const SMPP_SOURCE_ADDR: &str = "sms_smpp_source_addr";
pub const SMPP_SOURCE_TON: &str = "sms_smpp_source_ton";
pub const SMPP_SOURCE_NPI: &str = "sms_smpp_source_npi";
pub const GATEWAY_URL: &str = "sms_gateway_url";
pub const GATEWAY_METHOD: &str = "sms_gateway_method";
pub const GATEWAY_BODY: &str = "sms_gateway_body";
pub const GATEWAY_SUCCESS_STATUS: &str = "sms_gateway_success_status";
pub const GATEWAY_SUCCESS_BODY: &str = "sms_gateway_success_body";

pub const BEFORE_SMS_SEND: &str = "before_sms_send";
pub const AFTER_SMS_SENT: &str = "after_sms_sent";

/// Most parts `sms_max_parts` may allow (the UDH reference counts to 255).
pub const MAX_PARTS_LIMIT: i64 = 255;

pub struct Sms;

/// The plugin's one public constructor.
pub fn plugin() -> Box<dyn Plugin> {
    Box::new(Sms)
}

/// Whether the Send SMS tab is shown to this viewer.
fn visible(v: &ViewerCtx<'_>) -> bool {
    v.text(SMS_NOTIFY) != "disabled" && v.flag(ENABLE)
}

impl Plugin for Sms {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "SMS",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(
            SettingDef::bool(
                ENABLE,
                false,
                "Clients may send SMS from the portal (the Send SMS tab; also needs sms_notify other than disabled).",
            )
            .per_invoice_group(),
        );
        r.setting(
            SettingDef::int(
                PER_MONTH,
                0,
                0,
                1_000_000,
                "Most SMS parts one client may send from the portal in a calendar month (0: no limit). A message is counted when it is accepted into the outbox.",
            )
            .per_invoice_group(),
        );
        r.setting(SettingDef::int(
            PER_HOUR,
            30,
            1,
            10_000,
            "Most messages one client may send from the portal in a clock hour (a bound also without a monthly limit).",
        ));
        r.setting(SettingDef::int(
            MAX_PARTS,
            5,
            1,
            MAX_PARTS_LIMIT,
            "Most parts one SMS may take (a part is 160 GSM characters, or 70 with diacritics; 153 and 67 in a long message).",
        ));
        r.setting(SettingDef::text(
            DEFAULT_COUNTRY,
            "CZ",
            "Two-letter country code (ISO 3166) for numbers typed without +country prefix.",
        ));
        r.setting(
            SettingDef::text(
                SMPP_URL,
                "",
                "The SMSC for sms_notify = smpp: smpp://system_id:password@host:port (a secret: shown only as set).",
            )
            .secret(),
        );
        r.setting(SettingDef::text(
            SMPP_SOURCE_ADDR,
            "",
            "Sender of SMPP messages (a number or an alphanumeric name); empty: the SMSC's default.",
        ));
        r.setting(SettingDef::int(
            SMPP_SOURCE_TON,
            5,
            0,
            6,
            "Type of number of the SMPP sender (0 unknown, 1 international, 5 alphanumeric).",
        ));
        r.setting(SettingDef::int(
            SMPP_SOURCE_NPI,
            0,
            0,
            18,
            "Numbering plan of the SMPP sender (0 unknown, 1 E.164).",
        ));
        r.setting(SettingDef::url(
            GATEWAY_URL,
            "The HTTP gateway for sms_notify = gateway; {to}, {text} and {id} in it are replaced (URL-encoded).",
        ));
        r.setting(SettingDef::new(
            GATEWAY_METHOD,
            SettingType::Choice(&["POST", "GET"]),
            serde_json::Value::String("POST".into()),
            "How the HTTP gateway is called.",
        ));
        r.setting(SettingDef::text(
            GATEWAY_BODY,
            "{\"to\":\"{to}\",\"text\":\"{text}\",\"id\":\"{id}\"}",
            "Body of a POST to the HTTP gateway; {to}, {text} and {id} are replaced (JSON-escaped when the body starts with { , else URL-encoded).",
        ));
        r.setting(SettingDef::text(
            GATEWAY_SUCCESS_STATUS,
            "2xx",
            "HTTP statuses that mean the gateway accepted a message: numbers or 2xx-style classes, separated by spaces or commas.",
        ));
        r.setting(SettingDef::text(
            GATEWAY_SUCCESS_BODY,
            "",
            "Text the gateway's answer must contain to count as accepted (empty: the status decides).",
        ));
        r.tab(
            Tab::new("sms", "sms-tab", "/sms/")
                .icon("sms")
                .order(65)
                .visible_when(visible),
        );
        r.declare_hook(
            HookDef::new(
                BEFORE_SMS_SEND,
                "A client (or an operator) sends an SMS; nothing is queued or counted yet. A veto is shown to the client on the form; the text and the recipient may be amended (they are checked again).",
            )
            .field("client", "the client (as in before_login), or null")
            .field("to", "the recipient in E.164 (+420601123456)")
            .field("text", "the message's text")
            .field("origin", "portal or operator")
            .amendable("to")
            .amendable("text"),
        );
        r.declare_hook(
            HookDef::new(
                AFTER_SMS_SENT,
                "The gateway accepted a message (each message once).",
            )
            .field("client", "the client (as in before_login), or null")
            .field("id", "the message's number")
            .field("to", "the recipient in E.164")
            .field("text", "the message's text")
            .field("parts", "how many parts it took"),
        );
        r.routes(web::routes());
        r.template("send.html", include_str!("../templates/send.html"));
        r.template(
            "directory.html",
            include_str!("../templates/directory.html"),
        );
        r.template("contact.html", include_str!("../templates/contact.html"));
        r.asset("sms.css", &include_bytes!("../static/sms.css")[..]);
        r.asset("sms.js", &include_bytes!("../static/sms.js")[..]);
        r.translations("en", include_str!("../i18n/en.ftl"));
        r.translations("cs", include_str!("../i18n/cs.ftl"));
        r.command(OperatorCommand {
            name: "sms",
            about: "queue [--all], send --client C --to NUMBER --text T",
            run: Arc::new(commands::sms),
        });
        r.worker("sender", sender::run);
        // An operator's helpdesk reply of channel sms is sent (when the helpdesk is built in).
        r.on_json_with_ctx("after_ticket_reply", true, |ctx, event| {
            helpdesk::after_ticket_reply(ctx, event);
            Ok(())
        });
        r.demo(commands::demo);
    }
}
