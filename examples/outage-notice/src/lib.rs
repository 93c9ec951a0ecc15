//! Example Portico plugin: an "Outages" tab showing the operator's outage notice, and a switch
//! that refuses logins during an outage. Build it and drop the library into the plugin folder.

use portico_plugin_sdk::{
    Description, HookRequest, Host, PageReply, PageRequest, Plugin, SettingDecl, Veto,
    declare_plugin, flag, json, text,
};

const TEXT: &str = "outage_notice_text";
const TEXT_HELP: &str =
    "Text of the current outage notice; the Outages tab shows it and is hidden while it is empty.";
const BLOCK_LOGINS: &str = "outage_notice_block_logins";
const BLOCK_LOGINS_HELP: &str = "Refuse logins with the outage notice text while on.";

#[derive(Default)]
struct OutageNotice;

impl Plugin for OutageNotice {
    fn describe(&self) -> Description {
        Description::new("outage-notice", "Outage notice", env!("CARGO_PKG_VERSION"))
            .setting(SettingDecl::text(TEXT, "", TEXT_HELP).per_invoice_group())
            .setting(SettingDecl::bool(BLOCK_LOGINS, false, BLOCK_LOGINS_HELP).per_invoice_group())
            .tab("outages", "outage-notice-tab", &[TEXT])
            .handles("before_login")
            .template("outages.html", include_str!("../templates/outages.html"))
            .translations("en", include_str!("../i18n/en.ftl"))
            .translations("cs", include_str!("../i18n/cs.ftl"))
    }

    fn page(&self, req: &PageRequest, _host: &Host<'_>) -> PageReply {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => {
                PageReply::render("outages.html", json!({ "text": text(&req.settings, TEXT) }))
                    .in_tab("outages")
            }
            _ => PageReply::Status { code: 404 },
        }
    }

    fn hook(&self, req: &mut HookRequest, _host: &Host<'_>) -> Result<(), Veto> {
        if req.hook != "before_login" || !flag(&req.settings, BLOCK_LOGINS) {
            return Ok(());
        }
        Err(match text(&req.settings, TEXT) {
            "" => Veto::new("Logins are paused during an outage. Please try again later.").with(
                "cs",
                "Přihlašování je během výpadku pozastaveno. Zkuste to prosím později.",
            ),
            notice => Veto::new(notice),
        })
    }
}

#[cfg(not(feature = "wrong-abi"))]
declare_plugin!(OutageNotice);
#[cfg(feature = "wrong-abi")]
declare_plugin!(OutageNotice, abi_version = 999);
