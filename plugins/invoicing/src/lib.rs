//! The Invoicing tab: a client's invoices, balance and payments.
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`): the registrar, the
//! `Page` guard and the client-scoped data it gives, the way a third-party plugin would be.

use portico_core::plugin::{
    Manifest, Money, Page, PageHtml, PaymentMethod, Plugin, Registrar, SettingDef, Tab,
};
use portico_core::rocket::{Route, get, routes};
use serde::Serialize;

pub const ID: &str = "invoicing";

pub struct Invoicing;

/// The plugin's one public constructor.
pub fn plugin() -> Box<dyn Plugin> {
    Box::new(Invoicing)
}

impl Plugin for Invoicing {
    fn manifest(&self) -> Manifest {
        Manifest {
            id: ID,
            name: "Invoicing",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn register(&self, r: &mut Registrar) {
        r.setting(
            SettingDef::bool("ci_display_invoices_tab", true, "Show the Invoicing tab.")
                .per_invoice_group(),
        );
        r.setting(
            SettingDef::bool(
                "ci_display_balance",
                true,
                "Show the client's balance on the Invoicing tab.",
            )
            .per_invoice_group(),
        );
        r.setting(
            SettingDef::bool(
                "ci_display_cash_payments",
                true,
                "List cash payments beside bank payments.",
            )
            .per_invoice_group(),
        );
        r.tab(
            Tab::new("invoicing", "nav-invoicing", "/invoicing/")
                .icon("invoice")
                .order(30)
                .visible_when(|v| v.flag("ci_display_invoices_tab")),
        );
        r.routes(routes());
        r.template("invoices.html", include_str!("../templates/invoices.html"));
        r.translations("en", include_str!("../i18n/en.ftl"));
        r.translations("cs", include_str!("../i18n/cs.ftl"));
    }
}

fn routes() -> Vec<Route> {
    routes![invoices]
}

#[derive(Serialize)]
struct InvoiceRow {
    number: String,
    issued: String,
    due: String,
    amount: String,
    paid: bool,
    overdue: bool,
}

#[derive(Serialize)]
struct PaymentRow {
    date: String,
    amount: String,
    method: PaymentMethod,
    reference: Option<String>,
}

#[derive(Serialize)]
struct InvoicingView {
    currency: String,
    invoices: Vec<InvoiceRow>,
    /// Present only when ci_display_balance is on.
    balance: Option<String>,
    balance_negative: bool,
    payments: Vec<PaymentRow>,
    shows_cash: bool,
}

fn date(lang: &str, d: chrono::NaiveDate) -> String {
    if lang == "cs" {
        d.format("%-d. %-m. %Y").to_string()
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

#[get("/")]
fn invoices(page: Page<'_>) -> Result<PageHtml, portico_core::Error> {
    if !page.tab_visible("invoicing") {
        return Err(portico_core::Error::NotFound("invoicing tab".into()));
    }
    let data = page.data();
    let today = page.today();
    let currency = data
        .invoice_group()?
        .map_or_else(|| "CZK".to_string(), |g| g.currency);
    let mut invoices = data.invoices()?;
    invoices.sort_by(|a, b| b.issued.cmp(&a.issued).then(b.id.cmp(&a.id)));
    let payments = data.payments()?;
    let invoiced: i64 = invoices.iter().map(|i| i.amount.0).sum();
    let paid: i64 = payments.iter().map(|p| p.amount.0).sum();
    let balance = Money(paid - invoiced);
    let shows_cash = page.flag("ci_display_cash_payments");
    let mut payments: Vec<_> = payments
        .into_iter()
        .filter(|p| shows_cash || p.method != PaymentMethod::Cash)
        .collect();
    payments.sort_by(|a, b| b.date.cmp(&a.date).then(b.id.cmp(&a.id)));
    let lang = page.lang();
    let view = InvoicingView {
        invoices: invoices
            .into_iter()
            .map(|i| InvoiceRow {
                overdue: !i.paid && i.due < today,
                number: i.number,
                issued: date(lang, i.issued),
                due: date(lang, i.due),
                amount: i.amount.display(lang),
                paid: i.paid,
            })
            .collect(),
        balance: page
            .flag("ci_display_balance")
            .then(|| balance.display(lang)),
        balance_negative: balance.0 < 0,
        payments: payments
            .into_iter()
            .map(|p| PaymentRow {
                date: date(lang, p.date),
                amount: p.amount.display(lang),
                method: p.method,
                reference: p.reference,
            })
            .collect(),
        shows_cash,
        currency,
    };
    page.render("invoicing", "invoices.html", &view)
}

#[cfg(test)]
mod tests {
    fn ids(ftl: &str) -> Vec<String> {
        let mut v = portico_core::plugin::message_ids(ftl);
        v.sort();
        v
    }

    #[test]
    fn english_and_czech_define_the_same_messages() {
        assert_eq!(
            ids(include_str!("../i18n/en.ftl")),
            ids(include_str!("../i18n/cs.ftl"))
        );
    }
}
