//! `portico theme context PAGE`: the variables a page template receives, taken from the real
//! page. A demo portal is built in memory with a themes folder whose page templates only write
//! out their context; each page is then requested through the real routes (logged in as the
//! demo client alice where the page needs it), so the list follows the code. Only the
//! descriptions are written here, and a variable without one says so.

use std::collections::BTreeMap;
use std::path::Path;

use portico_core::internal::passwords::{self, LinkPurpose};
use portico_core::internal::{Portal, demo, ops, store::Store, web};
use portico_core::rocket::http::{ContentType, Status};
use portico_core::rocket::local::blocking::Client;

/// A page: its name on the command line, its template and how it is reached.
struct PageSpec {
    name: &'static str,
    template: &'static str,
    path: &'static str,
    who: Who,
    about: &'static str,
}

#[derive(PartialEq)]
enum Who {
    Visitor,
    Alice,
}

const PAGES: &[PageSpec] = &[
    PageSpec {
        name: "login",
        template: "sign.html",
        path: "/sign/",
        who: Who::Visitor,
        about: "the login page",
    },
    PageSpec {
        name: "forgot",
        template: "forgot.html",
        path: "/sign/forgot/",
        who: Who::Visitor,
        about: "the \"forgot password\" form",
    },
    PageSpec {
        name: "password-link",
        template: "password_link.html",
        path: "/sign/password/<token>",
        who: Who::Visitor,
        about: "the page a password link in a mail opens",
    },
    PageSpec {
        name: "notice",
        template: "notice.html",
        path: "/sign/password/<expired token>",
        who: Who::Visitor,
        about: "short messages: \"check your e-mail\", \"this link does not work\"",
    },
    PageSpec {
        name: "information",
        template: "information.html",
        path: "/",
        who: Who::Alice,
        about: "the Information tab",
    },
    PageSpec {
        name: "services",
        template: "services.html",
        path: "/services/",
        who: Who::Alice,
        about: "the Services tab",
    },
    PageSpec {
        name: "invoices",
        template: "invoicing/invoices.html",
        path: "/invoicing/",
        who: Who::Alice,
        about: "the Invoicing tab, from the invoicing plugin",
    },
    PageSpec {
        name: "consents",
        template: "gdpr/consents.html",
        path: "/gdpr/",
        who: Who::Alice,
        about: "the GDPR tab, from the gdpr plugin",
    },
    PageSpec {
        name: "my-data",
        template: "gdpr/export.html",
        path: "/gdpr/export",
        who: Who::Alice,
        about: "\"View my data\" on the GDPR tab",
    },
    PageSpec {
        name: "tickets",
        template: "helpdesk/tickets.html",
        path: "/helpdesk/",
        who: Who::Alice,
        about: "the Helpdesk tab, from the helpdesk plugin",
    },
    PageSpec {
        name: "ticket",
        template: "helpdesk/ticket.html",
        path: "/helpdesk/ticket/1",
        who: Who::Alice,
        about: "one conversation of the Helpdesk tab, with the reply form",
    },
    PageSpec {
        name: "new-ticket",
        template: "helpdesk/new.html",
        path: "/helpdesk/new",
        who: Who::Alice,
        about: "\"New ticket\" on the Helpdesk tab",
    },
    PageSpec {
        name: "files",
        template: "files.html",
        path: "/files/",
        who: Who::Alice,
        about: "the Files tab (ci_display_documents_tab)",
    },
    PageSpec {
        name: "documents",
        template: "documents.html",
        path: "/documents/",
        who: Who::Alice,
        about: "the Documents tab (ci_display_contracts_tab)",
    },
    PageSpec {
        name: "data-change",
        template: "data_change.html",
        path: "/profile/data/",
        who: Who::Alice,
        about: "the form to change contact data, from the Information tab (ci_enable_client_data_change)",
    },
    PageSpec {
        name: "contact",
        template: "contact.html",
        path: "/contact/",
        who: Who::Alice,
        about: "the Contact tab (ci_contact_text)",
    },
    PageSpec {
        name: "password",
        template: "password.html",
        path: "/password/",
        who: Who::Alice,
        about: "the Password tab",
    },
    PageSpec {
        name: "error",
        template: "error.html",
        path: "/no-such-page",
        who: Who::Alice,
        about: "404, 403, 500… pages",
    },
    PageSpec {
        name: "maintenance",
        template: "maintenance.html",
        path: "/",
        who: Who::Visitor,
        about: "the maintenance page",
    },
    PageSpec {
        name: "suspended",
        template: "suspended.html",
        path: "/",
        who: Who::Visitor,
        about: "every page while the portal is suspended (portico suspend)",
    },
];

/// One line of the descriptions: a variable's path (`[]` is an element of a list, `*` any field
/// of the object before it) and what it is.
const DESCRIPTIONS: &[(&str, &str)] = &[
    ("lang", "Language of the page, `en` or `cs`."),
    ("languages", "Every offered language."),
    ("languages[]", "One language."),
    ("languages[].code", "Its code, `en` or `cs`."),
    ("languages[].name", "Its name in itself (`Čeština` for cs)."),
    ("languages[].current", "True for the page's language."),
    ("path", "Path of the current request."),
    ("year", "The current year."),
    (
        "theme",
        "The theme `ci_skin_theme` selects for this viewer.",
    ),
    (
        "portal_name",
        "`ci_portal_name`, or \"Client portal\" in the page's language when it is empty.",
    ),
    (
        "dev_reload",
        "True under `portico serve --dev`: the layout then adds the live reload script.",
    ),
    (
        "theme_generation",
        "How often the theme changed since start; the live reload script compares it.",
    ),
    ("client", "The logged-in client, or null."),
    ("client.id", "The client's id."),
    ("client.number", "The client number."),
    ("client.name", "The client's name."),
    ("client.username", "The login name, or null."),
    (
        "csrf",
        "The session's form token: a hidden field `csrf` of every POST form; empty when nobody is logged in.",
    ),
    (
        "supplier",
        "The invoice group's supplier (when `ci_display_supplier_contact` is on), or null.",
    ),
    ("supplier.*", "A field of the supplier's contact details."),
    (
        "menu",
        "The menu for this client, in order; empty when nobody is logged in.",
    ),
    ("menu[]", "One menu item."),
    ("menu[].id", "The item's id (the tab's id)."),
    (
        "menu[].title_key",
        "Message id of its title: `t(key=item.title_key)`.",
    ),
    ("menu[].icon", "Icon name."),
    ("menu[].href", "Where it links to."),
    (
        "menu[].external",
        "True when it opens another site (in a new tab).",
    ),
    ("menu[].active", "True for the current tab."),
    (
        "menu[].label",
        "The title itself for a custom button (`portico menu add`), already in the page's language; null for tabs and plugins' buttons (use `title_key`).",
    ),
    ("active_tab", "The id of the current tab, or empty."),
    (
        "extra",
        "Values plugins' render hooks added (tabs only); empty otherwise.",
    ),
    ("extra.*", "A value a plugin's render hook added."),
    ("page", "The page's own data (below)."),
    ("page.error", "An error message (translated), or null."),
    (
        "page.html",
        "The Contact text as sanitized HTML (Markdown rendered; no scripts or event attributes): output it with `| safe`.",
    ),
    (
        "page.files",
        "The files this client may download (their invoice group's and those of no group), by title.",
    ),
    ("page.files[]", "One file."),
    ("page.files[].id", "Its id: it downloads from `/files/ID`."),
    ("page.files[].title", "Its title."),
    ("page.files[].name", "The file name it is saved as."),
    ("page.files[].size", "Its size, e.g. `3.4 KiB`."),
    (
        "page.files[].added",
        "When it was added, formatted for the language.",
    ),
    (
        "page.documents",
        "The client's own documents marked display_in_cp, newest first.",
    ),
    ("page.documents[]", "One document."),
    (
        "page.documents[].id",
        "Its id: it downloads from `/documents/ID`.",
    ),
    ("page.documents[].title", "Its title."),
    ("page.documents[].name", "The file name it is saved as."),
    (
        "page.documents[].date",
        "Its date, formatted for the language.",
    ),
    (
        "page.data_change",
        "Data change on the Information tab: the button and the client's last change.",
    ),
    (
        "page.data_change.enabled",
        "True when `ci_enable_client_data_change` is on: show the \"Change my data\" button (`/profile/data/`).",
    ),
    (
        "page.data_change.status",
        "`pending`, `approved` or `rejected` (a decided change for 30 days), or null.",
    ),
    (
        "page.data_change.date",
        "When the change was asked for (pending) or decided, formatted for the language.",
    ),
    ("page.data_change.reason", "Why it was rejected, or null."),
    (
        "page.data_change.rows",
        "The values asked for: `label` (translated) and `value`.",
    ),
    ("page.data_change.rows[]", "One value asked for."),
    ("page.data_change.rows[].label", "Its label, translated."),
    ("page.data_change.rows[].value", "The value."),
    (
        "page.values",
        "The data-change form's values: as stored (or as asked for while a change is pending), or as typed when the form comes back with messages.",
    ),
    ("page.values.*", "One field's value, or null."),
    (
        "page.errors",
        "The data-change form's messages, by field name (`mailing_street`, `email`, …), translated.",
    ),
    ("page.errors.*", "The message for one field."),
    (
        "page.approval",
        "True when `ci_client_data_change_approval` is on: changes wait for an operator.",
    ),
    (
        "page.pending",
        "True when a change of this client waits for approval (a new one replaces it).",
    ),
    (
        "page.limits",
        "The longest value of each kind of field, in characters (for `maxlength`).",
    ),
    ("page.limits.*", "One limit."),
    (
        "page.message",
        "The operator's suspension message (plain text: let it be escaped).",
    ),
    ("page.notice", "A success message (translated), or null."),
    ("page.username", "The login name typed last."),
    (
        "page.can_reset",
        "True when the portal can send mail: show the link to `/sign/forgot/`.",
    ),
    (
        "page.mode",
        "`email` or `username` (`ci_forgotten_password`): what is asked for.",
    ),
    ("page.login", "What was typed last."),
    (
        "page.token",
        "The link's token; the form posts to `/sign/password/{{ page.token }}`.",
    ),
    (
        "page.create",
        "True for a \"create your password\" link, false for a reset.",
    ),
    ("page.min_length", "The shortest password accepted."),
    (
        "page.must_change",
        "True right after a login with a one-time password.",
    ),
    ("page.title", "The message's title, translated."),
    (
        "page.text",
        "On the notice page the message, translated; on the helpdesk's forms the text typed so far (kept after an error).",
    ),
    ("page.link", "Null, or a link to offer."),
    ("page.link.href", "Where the link goes."),
    ("page.link.text", "The link's text, translated."),
    (
        "page.client",
        "The whole client record (fields as in import.md).",
    ),
    (
        "page.client.*",
        "A field of the client record (see import.md); null when missing.",
    ),
    (
        "page.mailing_address",
        "The mailing address, or null when it is empty.",
    ),
    ("page.mailing_address.*", "A part of the address."),
    ("page.invoicing_address", "The invoicing address, or null."),
    ("page.invoicing_address.*", "A part of the address."),
    ("page.messages", "Messages valid today, newest first."),
    ("page.messages[]", "One message."),
    ("page.messages[].subject", "Its subject."),
    ("page.messages[].body", "Its text."),
    ("page.messages[].scope", "`private`, `group` or `global`."),
    ("page.messages[].valid_until", "Formatted date, or null."),
    (
        "page.panels",
        "Panels added by the info_panels hook (operator scripts, plugins); empty without one.",
    ),
    ("page.panels[]", "One panel."),
    ("page.panels[].title", "Its title."),
    ("page.panels[].text", "Its text, or null."),
    (
        "page.panels[].rows",
        "Rows of a table; empty when the panel has a text only.",
    ),
    ("page.panels[].rows[]", "One row."),
    ("page.panels[].rows[].label", "Its label."),
    ("page.panels[].rows[].value", "Its value."),
    (
        "page.can_set_login_name",
        "True when `ci_enable_login_name_creation` is on: show the login-name form.",
    ),
    ("page.services", "The client's active services."),
    ("page.services[]", "One service."),
    ("page.services[].name", "Service name."),
    (
        "page.services[].kind",
        "`internet`, `iptv`, `voip` or `other`.",
    ),
    ("page.services[].tariff", "Tariff name, or null."),
    ("page.services[].speed", "Download / upload speed, or null."),
    (
        "page.services[].fup",
        "Fair-use steps as text; empty when the tariff hides traffic.",
    ),
    (
        "page.services[].fup[]",
        "One step: data, then the speed past it.",
    ),
    (
        "page.services[].ip_address",
        "The address, or null (always null with DHCP).",
    ),
    ("page.services[].dhcp", "True when configured by DHCP."),
    ("page.services[].since", "Formatted start date, or null."),
    (
        "page.services[].buttons",
        "Plugins' buttons for this service (the Traffic plugin's \"Data transferred\"), in order; empty when none applies.",
    ),
    ("page.services[].buttons[]", "One button."),
    (
        "page.services[].buttons[].id",
        "Its id, unique on the page (`service-traffic-1`).",
    ),
    (
        "page.services[].buttons[].title_key",
        "Message id of its label.",
    ),
    ("page.services[].buttons[].icon", "Name of its icon."),
    ("page.services[].buttons[].href", "Where it links."),
    (
        "page.services[].buttons[].external",
        "True for a link out of the portal.",
    ),
    ("page.services[].buttons[].active", "Always false here."),
    (
        "page.services[].buttons[].label",
        "Always null here (use `title_key`).",
    ),
    ("page.currency", "The invoice group's currency."),
    ("page.invoices", "Invoices, newest first."),
    ("page.invoices[]", "One invoice."),
    ("page.invoices[].number", "Invoice number."),
    ("page.invoices[].issued", "Formatted issue date."),
    ("page.invoices[].due", "Formatted due date."),
    ("page.invoices[].amount", "Formatted amount."),
    ("page.invoices[].paid", "True when paid."),
    ("page.invoices[].overdue", "True when unpaid and past due."),
    (
        "page.balance",
        "Payments minus invoices, formatted; null when `ci_display_balance` is off.",
    ),
    ("page.balance_negative", "True when the client owes money."),
    ("page.payments", "Payments, newest first."),
    (
        "page.consents",
        "The consent documents that apply to the client.",
    ),
    ("page.consents[]", "One consent document."),
    ("page.consents[].id", "The document's id."),
    ("page.consents[].title", "Its title in the page's language."),
    ("page.consents[].required", "True for a required consent."),
    (
        "page.consents[].state",
        "`never_answered`, `given`, `outdated` (given for an older version) or `withdrawn`.",
    ),
    ("page.consents[].version", "The current version's number."),
    (
        "page.consents[].answered_version",
        "The version of the client's last answer, or null.",
    ),
    (
        "page.consents[].answered_at",
        "Formatted time of the client's last answer, or null.",
    ),
    (
        "page.consents[].lang",
        "The language of the text shown (`en` when there is no Czech text).",
    ),
    (
        "page.consents[].hash",
        "SHA-256 of the text shown; the form sends it back in `hash`.",
    ),
    (
        "page.consents[].seen",
        "The client's last record number of this document; the form sends it back in `seen`.",
    ),
    (
        "page.consents[].html",
        "The text as sanitized HTML (print it with `| safe`).",
    ),
    (
        "page.consents[].parts",
        "Optional parts the client may choose.",
    ),
    ("page.consents[].parts[]", "One optional part."),
    (
        "page.consents[].parts[].number",
        "Its number, sent as a `part` field when chosen.",
    ),
    ("page.consents[].parts[].label", "Its label."),
    (
        "page.consents[].parts[].chosen",
        "True when the client chose it.",
    ),
    (
        "page.history",
        "The client's consent changes, newest first.",
    ),
    ("page.history[]", "One change."),
    ("page.history[].number", "The record's number."),
    ("page.history[].at", "Formatted time."),
    ("page.history[].document", "The document's id."),
    (
        "page.history[].title",
        "The document's title as shown then.",
    ),
    ("page.history[].version", "The version."),
    ("page.history[].action", "`give`, `edit` or `withdraw`."),
    (
        "page.history[].choice",
        "The chosen parts, joined with `; `.",
    ),
    ("page.history[].actor", "`client` or `operator`."),
    (
        "page.erasure_requested",
        "Formatted time of the client's open erasure request, or null.",
    ),
    ("page.exported_at", "Formatted time of the export."),
    ("page.sections", "The export's sections, in order."),
    ("page.sections[]", "One section."),
    (
        "page.sections[].id",
        "Its name in the JSON file (`personal_data`…).",
    ),
    ("page.sections[].title", "Its title, translated."),
    (
        "page.sections[].items",
        "Its items (a service, an invoice…).",
    ),
    (
        "page.sections[].items[]",
        "One item: a list of named values.",
    ),
    ("page.sections[].items[][]", "One value."),
    ("page.sections[].items[][].name", "The value's name."),
    ("page.sections[].items[][].value", "The value as text."),
    ("page.payments[]", "One payment."),
    ("page.payments[].date", "Formatted date."),
    ("page.payments[].amount", "Formatted amount."),
    ("page.payments[].method", "`bank` or `cash`."),
    (
        "page.payments[].reference",
        "The payment's reference, or null.",
    ),
    (
        "page.shows_cash",
        "Whether cash payments are listed (`ci_display_cash_payments`).",
    ),
    (
        "page.buttons",
        "Buttons of plugins for the personal data (\"Send support request\" or \"Create ticket\").",
    ),
    ("page.buttons[]", "One button."),
    (
        "page.buttons[].id",
        "Its id (`support-request`, `create-ticket`).",
    ),
    ("page.buttons[].title_key", "Message id of its label."),
    ("page.buttons[].icon", "Name of its icon."),
    ("page.buttons[].href", "Where it links."),
    (
        "page.buttons[].external",
        "True when it opens another site.",
    ),
    ("page.buttons[].active", "Always false here."),
    (
        "page.buttons[].label",
        "Always null here (use `title_key`).",
    ),
    (
        "page.tickets",
        "The client's tickets, newest activity first.",
    ),
    ("page.tickets[]", "One ticket."),
    (
        "page.tickets[].id",
        "Its number (links go to /helpdesk/ticket/ID).",
    ),
    ("page.tickets[].subject", "Its subject."),
    ("page.tickets[].state", "`open`, `waiting` or `closed`."),
    ("page.tickets[].department", "The department's name."),
    ("page.tickets[].updated", "Formatted time of the last item."),
    (
        "page.tickets[].items",
        "How many items the conversation has.",
    ),
    ("page.id", "The ticket's number."),
    (
        "page.subject",
        "The ticket's subject; on a form, the subject typed so far.",
    ),
    ("page.state", "`open`, `waiting` or `closed`."),
    (
        "page.department",
        "The department's name (on the new-ticket form: where tickets go).",
    ),
    ("page.created", "Formatted time the ticket was created."),
    ("page.closed", "True when the ticket takes no replies."),
    ("page.items", "The conversation, oldest first."),
    ("page.items[]", "One item."),
    ("page.items[].number", "Its number within the ticket."),
    (
        "page.items[].channel",
        "`email`, `sms`, `in_person`, `telephone` or `portal` (written in the portal).",
    ),
    ("page.items[].at", "Formatted time."),
    ("page.items[].author", "Who wrote it."),
    ("page.items[].from_client", "True when the client wrote it."),
    ("page.items[].department", "The department it came from."),
    (
        "page.items[].text",
        "Its text, or null when the channel's contents are not shown (in person, telephone; SMS while `sms_notify` is disabled).",
    ),
    ("page.items[].attachments", "Files that came with it."),
    ("page.items[].attachments[]", "One file."),
    (
        "page.items[].attachments[].id",
        "Its number (download: /helpdesk/attachment/ID).",
    ),
    ("page.items[].attachments[].name", "Its (sanitized) name."),
    ("page.items[].attachments[].size", "Its size as text."),
    (
        "page.key",
        "The form's key: send it back in `key`, so a second submission of the same form is recognized.",
    ),
    ("page.limits", "What may be attached."),
    ("page.limits.max_kb", "Largest file in KiB."),
    ("page.limits.types", "Allowed extensions, joined with `, `."),
    (
        "page.limits.accept",
        "The same for the file input's `accept`.",
    ),
    (
        "page.limits.max_files",
        "How many files this form may take (0: no file input).",
    ),
    ("page.code", "The HTTP status."),
    ("page.title_key", "Message id of the title."),
    ("page.text_key", "Message id of the explanation."),
    (
        "page.has_logo",
        "True when the theme chain has `static/maintenance_logo.png`.",
    ),
];

/// How deep objects and lists are described (`page.client.mailing_address.street` is 4).
const DEPTH: usize = 4;
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// A Tera template that writes out every variable it receives, `DEPTH` levels deep, one record
/// per variable: path, kind, example. Lists are described by their first element.
fn dump_template() -> String {
    fn record(var: &str, path: &str) -> String {
        format!(
            "{path}{FIELD}{{% if {var} is none %}}null{{% elif {var} is map %}}object\
             {{% elif {var} is array %}}list{{% elif {var} is string %}}string\
             {{% elif {var} is bool %}}bool{{% elif {var} is number %}}number{{% else %}}other{{% endif %}}\
             {FIELD}{{% if {var} is map or {var} is array %}}{{{{ {var} | length }}}}\
             {{% elif {var} is string %}}{{{{ {var} | safe }}}}{{% elif {var} is none %}}{{% else %}}{{{{ {var} | str | safe }}}}{{% endif %}}{RECORD}"
        )
    }
    fn walk(var: &str, path: &str, level: usize) -> String {
        let mut out = record(var, path);
        if level < DEPTH {
            let (k, v, first) = (
                format!("k{level}"),
                format!("v{level}"),
                format!("f{level}"),
            );
            out.push_str(&format!(
                "{{% if {var} is map %}}{{% for {k}, {v} in {var} %}}{}{{% endfor %}}\
                 {{% elif {var} is array and {var} | length > 0 %}}{{% set {first} = {var} | first %}}{}{{% endif %}}",
                walk(&v, &format!("{path}.{{{{ {k} | safe }}}}"), level + 1),
                walk(&first, &format!("{path}[]"), level + 1),
            ));
        }
        out
    }
    format!(
        "{{% for k, v in __tera_context %}}{}{{% endfor %}}",
        walk("v", "{{ k | safe }}", 0)
    )
}

/// One variable of a page's context.
pub struct Variable {
    pub path: String,
    pub kind: String,
    pub example: String,
}

/// The description of a variable: its own, or that of `parent.*`.
pub fn description(path: &str) -> Option<&'static str> {
    if let Some((_, d)) = DESCRIPTIONS.iter().find(|(p, _)| *p == path) {
        return Some(d);
    }
    let mut prefix = path;
    while let Some(i) = prefix.rfind(['.', '[']) {
        prefix = &prefix[..i];
        let wildcard = format!("{prefix}.*");
        if let Some((_, d)) = DESCRIPTIONS.iter().find(|(p, _)| *p == wildcard) {
            return Some(d);
        }
    }
    None
}

/// The variables each page template receives, from the real pages of a demo portal.
fn contexts() -> Result<BTreeMap<&'static str, Vec<Variable>>, String> {
    let themes = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let dump = dump_template();
    for page in PAGES {
        let file = themes.path().join("default/templates").join(page.template);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&file, &dump).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let portal = Portal::assemble(
        Store::in_memory(),
        crate::portal_options(Path::new(""), Some(themes.path().to_path_buf()), None),
    )
    .map_err(|e| e.to_string())?;
    demo::seed(&portal).map_err(|e| e.to_string())?;
    let alice = ops::find_client(&portal, "alice").map_err(|e| e.to_string())?;
    let now = portal.clock.unix();
    let token = passwords::issue_token(&portal.store, alice.id, LinkPurpose::Reset, now, 3600)
        .map_err(|e| e.to_string())?;
    let rocket = web::build(portal, web::rocket_config(([127, 0, 0, 1], 0).into()));
    let client = Client::tracked(rocket).map_err(|e| e.to_string())?;
    let fetch = |path: &str| -> Result<String, String> {
        let r = client.get(path.to_string()).dispatch();
        r.into_string().ok_or_else(|| format!("{path}: no answer"))
    };
    let mut out = BTreeMap::new();
    // Visitors' pages first, then alice's, then maintenance and suspension (which hide the rest).
    for page in PAGES
        .iter()
        .filter(|p| p.who == Who::Visitor && !["maintenance", "suspended"].contains(&p.name))
    {
        let path = match page.name {
            "password-link" => format!("/sign/password/{token}"),
            "notice" => format!("/sign/password/{}", "0".repeat(64)),
            _ => page.path.to_string(),
        };
        out.insert(page.name, parse(&fetch(&path)?));
    }
    let login = client
        .post("/sign/")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password={}",
            demo::LOGINS[0].password
        ))
        .dispatch();
    if login.status() != Status::SeeOther {
        return Err(format!("demo login failed: {}", login.status()));
    }
    for page in PAGES.iter().filter(|p| p.who == Who::Alice) {
        out.insert(page.name, parse(&fetch(page.path)?));
    }
    client.post("/sign/out/").dispatch();
    let settings = &client
        .rocket()
        .state::<std::sync::Arc<Portal>>()
        .ok_or("no portal")?
        .settings;
    settings
        .set("maintenance_mode", None, "on")
        .map_err(|e| e.to_string())?;
    out.insert("maintenance", parse(&fetch("/")?));
    settings
        .set(
            "portal_suspended_message",
            None,
            "Closed for the annual audit.",
        )
        .map_err(|e| e.to_string())?;
    out.insert("suspended", parse(&fetch("/")?));
    Ok(out)
}

fn parse(dump: &str) -> Vec<Variable> {
    let mut vars: Vec<Variable> = dump
        .split(RECORD)
        .filter_map(|rec| {
            let mut fields = rec.split(FIELD);
            let path = fields.next()?.trim().to_string();
            let kind = fields.next()?.to_string();
            let example = fields.next()?.to_string();
            (!path.is_empty()).then_some(Variable {
                path,
                kind,
                example,
            })
        })
        .collect();
    vars.sort_by_key(|v| order(&v.path));
    vars.dedup_by(|a, b| a.path == b.path);
    vars
}

/// Variables every page has first, in the order the docs list them, then `page.*`.
fn order(path: &str) -> (usize, String) {
    let top = path.split(['.', '[']).next().unwrap_or(path);
    let rank = DESCRIPTIONS
        .iter()
        .position(|(p, _)| *p == top)
        .unwrap_or(DESCRIPTIONS.len());
    (rank, path.to_string())
}

fn example(v: &Variable) -> String {
    match v.kind.as_str() {
        "null" => "null".into(),
        "object" => format!("object with {} field(s)", v.example),
        "list" => format!("list of {}", v.example),
        "string" => {
            let one_line: String = v.example.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = one_line.chars().take(60).collect();
            if short.len() < one_line.len() {
                format!("\"{short}…\"")
            } else {
                format!("\"{short}\"")
            }
        }
        _ => v.example.clone(),
    }
}

/// Prints the variables of one page, or the list of pages.
pub fn run(page: Option<&str>) -> Result<(), String> {
    let list = || {
        say!("Pages (portico theme context PAGE):");
        for p in PAGES {
            say!("  {:<14} {:<24} {}", p.name, p.template, p.about);
        }
    };
    let Some(name) = page else {
        list();
        return Ok(());
    };
    let Some(spec) = PAGES.iter().find(|p| p.name == name) else {
        list();
        return Err(format!("unknown page `{name}`"));
    };
    let mut all = contexts()?;
    let vars = all.remove(spec.name).unwrap_or_default();
    let who = match spec.who {
        Who::Visitor => "nobody logged in",
        Who::Alice => "the demo client alice logged in",
    };
    say!(
        "{} ({}): GET {}, {who}; examples from the demo data",
        spec.template,
        spec.about,
        spec.path
    );
    let width = vars.iter().map(|v| v.path.len()).max().unwrap_or(0);
    for v in &vars {
        say!(
            "  {:<width$}  {:<6}  {}  e.g. {}",
            v.path,
            v.kind,
            description(&v.path).unwrap_or("(no description yet)"),
            example(v)
        );
    }
    Ok(())
}
