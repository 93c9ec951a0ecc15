//! The GDPR tab: consent documents the operator defines, the consents a client gives, edits and
//! withdraws (with append-only evidence of every change), the client's data export and their
//! erasure request.
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`).

mod commands;
mod consent;
mod export;
mod markdown;
mod tasks;
mod web;

use std::sync::Arc;

use portico_core::plugin::{
    HookDef, Manifest, OperatorCommand, Plugin, Registrar, SettingDef, Tab,
};

pub const ID: &str = "gdpr";

/// Fired after every recorded consent change.
pub const AFTER_CONSENT_CHANGE: &str = "after_consent_change";
/// Fired while a client's data export is assembled; handlers add sections.
pub const EXPORT_HOOK: &str = "gdpr_export";
/// Where erasure requests are mailed.
pub const CONTACT_EMAIL: &str = "gdpr_contact_email";

pub struct Gdpr;

/// The plugin's one public constructor.
pub fn plugin() -> Box<dyn Plugin> {
    Box::new(Gdpr)
}

impl Plugin for Gdpr {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "GDPR",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(
            SettingDef::email(
                CONTACT_EMAIL,
                "Where a client's erasure request is mailed (it is also listed by `portico tasks list`).",
            )
            .per_invoice_group(),
        );
        r.tab(
            Tab::new("gdpr", "gdpr-tab", "/gdpr/")
                .icon("gdpr")
                .order(70),
        );
        r.declare_hook(
            HookDef::new(
                AFTER_CONSENT_CHANGE,
                "A client's consent was given, edited or withdrawn (by the client or an operator); the evidence record is stored.",
            )
            .field("client", "the client (as in before_login)")
            .field("record", "the evidence record: number, at, document, version, lang, title, text_sha256, action (give, edit, withdraw), parts, choice, source_addr, user_agent, actor (client, operator)")
            .field("required", "whether the document is a required consent"),
        );
        r.declare_hook(
            HookDef::new(
                EXPORT_HOOK,
                "A client downloads their data. Handlers add their own sections to `sections` (a name not taken by the GDPR plugin's own sections) with what they hold about the client.",
            )
            .field("client", "the client (as in before_login)")
            .field("sections", "an object of sections added by handlers")
            .amendable("sections"),
        );
        r.routes(web::routes());
        r.template("consents.html", include_str!("../templates/consents.html"));
        r.template("withdraw.html", include_str!("../templates/withdraw.html"));
        r.template("export.html", include_str!("../templates/export.html"));
        r.asset("gdpr.css", &include_bytes!("../static/gdpr.css")[..]);
        r.translations("en", include_str!("../i18n/en.ftl"));
        r.translations("cs", include_str!("../i18n/cs.ftl"));
        r.command(OperatorCommand {
            name: "gdpr",
            about: "consent add|list|update|retire, withdraw ID --client C, history --client C [--csv]",
            run: Arc::new(commands::gdpr),
        });
        r.demo(commands::demo);
        r.on_client_deleted(forget_client);
    }
}

/// What the plugin keeps about a client goes with the client: consent records, and an open
/// erasure request is marked done.
fn forget_client(
    tx: &mut portico_core::plugin::NamespaceTx<'_, '_>,
    client_id: u64,
) -> portico_core::plugin::Result<()> {
    consent::forget_client(tx, client_id)?;
    let now = portico_core::plugin::stamp(chrono::Utc::now());
    tasks::client_deleted(tx, client_id, &now)
}
