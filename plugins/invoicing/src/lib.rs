//! The Invoicing tab: a client's invoices, balance and payments.
//!
//! Built only on portico-core's plugin API v1 (`portico_core::plugin`): the registrar, the
//! `Page` guard and the client-scoped data it gives, the way a third-party plugin would be.

use portico_core::plugin::{
    Invoice, Manifest, Money, Page, PageHtml, Payment, PaymentMethod, Plugin, Registrar,
    SettingDef, Tab, show_date,
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
        r.cached_routes(routes());
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

/// Payments minus invoices. Totals that an amount cannot hold are an error (the page fails
/// and the log says why), never a wrapped or panicking sum.
fn balance(invoices: &[Invoice], payments: &[Payment]) -> Result<Money, &'static str> {
    let invoiced = Money::checked_sum(invoices.iter().map(|i| i.amount))
        .ok_or("the invoices total more than an amount can hold")?;
    let paid = Money::checked_sum(payments.iter().map(|p| p.amount))
        .ok_or("the payments total more than an amount can hold")?;
    paid.checked_sub(invoiced)
        .ok_or("the balance is more than an amount can hold")
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
    let balance = balance(&invoices, &payments)
        .map_err(|e| portico_core::Error::Internal(format!("client #{}: {e}", page.client().id)))?;
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
                issued: show_date(lang, i.issued),
                due: show_date(lang, i.due),
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
                date: show_date(lang, p.date),
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
    use super::*;

    fn invoice(id: u64, cents: i64) -> Invoice {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        Invoice {
            id,
            client_id: 1,
            number: format!("F{id}"),
            issued: day,
            due: day,
            amount: Money(cents),
            paid: false,
        }
    }

    fn payment(id: u64, cents: i64) -> Payment {
        Payment {
            id,
            client_id: 1,
            date: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).expect("date"),
            amount: Money(cents),
            method: PaymentMethod::Bank,
            reference: None,
        }
    }

    #[test]
    fn the_balance_is_payments_minus_invoices() {
        assert_eq!(
            balance(&[invoice(1, 1000), invoice(2, 550)], &[payment(1, 1200)]),
            Ok(Money(-350))
        );
    }

    #[test]
    fn totals_that_do_not_fit_are_an_error_not_a_wrap() {
        assert_eq!(
            balance(&[invoice(1, i64::MAX), invoice(2, 1)], &[]),
            Err("the invoices total more than an amount can hold")
        );
        assert_eq!(
            balance(&[], &[payment(1, i64::MIN), payment(2, -1)]),
            Err("the payments total more than an amount can hold")
        );
        assert_eq!(
            balance(&[invoice(1, -i64::MAX)], &[payment(1, i64::MAX)]),
            Err("the balance is more than an amount can hold")
        );
    }
}
