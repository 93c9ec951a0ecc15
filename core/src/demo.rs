//! The demo ISP: three invoice groups, five tariffs, sixty clients with services, a year of
//! invoices and payments, and messages. Deterministic, with dates relative to `today` so the
//! demo always looks current.

use chrono::{Datelike, Months, NaiveDate};

use crate::import::Bundle;
use crate::model::*;

pub struct DemoLogin {
    pub client_number: &'static str,
    pub username: &'static str,
    pub password: &'static str,
}

pub const LOGINS: &[DemoLogin] = &[
    DemoLogin {
        client_number: "1001",
        username: "alice",
        password: "alice-demo-pass",
    },
    DemoLogin {
        client_number: "1002",
        username: "bob",
        password: "bob-demo-pass",
    },
];

/// Settings the demo turns on so every part of the portal shows.
pub const SETTINGS: &[(&str, &str)] = &[
    ("ci_webmail_url", "https://webmail.example.net/"),
    ("ci_url", "http://127.0.0.1:8000/"),
    ("system_mail", "portal@example.net"),
    ("system_mail_name", "Example Net client portal"),
    ("ci_enable_login_name_creation", "on"),
    // The Send SMS tab shows; its gateway points at nothing reachable (the sms plugin's demo).
    ("sms_notify", "gateway"),
    ("ci_contact_text", CONTACT_TEXT),
    ("ci_enable_client_data_change", "on"),
];

/// The Contact tab of the demo ISP (Markdown).
pub const CONTACT_TEXT: &str = "# Customer care\n\n\
**Monday to Friday** 8:00–18:00, **Saturday** 9:00–12:00\n\n\
- Phone: [+420 530 000 100](tel:+420530000100)\n\
- E-mail: [care@example.net](mailto:care@example.net)\n\
- Office: Hlavní 12, 602 00 Brno\n\n\
Outages are announced at [status.example.net](https://status.example.net/).\n";

pub const FIRST: &[&str] = &[
    "Jan",
    "Petra",
    "Tomáš",
    "Eva",
    "Martin",
    "Lucie",
    "Pavel",
    "Jana",
    "Ondřej",
    "Kateřina",
    "Jakub",
    "Tereza",
    "Lukáš",
    "Veronika",
    "David",
    "Markéta",
    "Michal",
    "Barbora",
    "Filip",
    "Zuzana",
];
pub const LAST: &[&str] = &[
    "Novák",
    "Svoboda",
    "Dvořák",
    "Černý",
    "Procházka",
    "Kučera",
    "Veselý",
    "Horák",
    "Němec",
    "Marek",
    "Pokorný",
    "Král",
    "Růžička",
    "Beneš",
    "Fiala",
    "Sedláček",
];
pub const STREETS: &[&str] = &[
    "Lipová",
    "Nádražní",
    "Školní",
    "Polní",
    "Zahradní",
    "Husova",
    "Komenského",
    "Palackého",
];
pub const TOWNS: &[(&str, &str)] = &[
    ("Brno", "602 00"),
    ("Tišnov", "666 01"),
    ("Kuřim", "664 34"),
    ("Blansko", "678 01"),
];

/// A small linear congruential generator: the demo (and the benchmark's bundle) must be the
/// same on every machine.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `n`.
    pub fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next(items.len())]
    }
}

fn addr(street: &str, no: usize, town: (&str, &str)) -> Address {
    Address {
        street: format!("{street} {no}"),
        city: town.0.into(),
        zip: town.1.into(),
        country: "CZ".into(),
    }
}

fn supplier(name: &str, web: &str, email: &str, phone: &str, company_id: &str) -> SupplierContact {
    SupplierContact {
        name: name.into(),
        address: addr("Technická", 12, ("Brno", "616 00")),
        company_id: company_id.into(),
        vat_id: format!("CZ{company_id}"),
        email: email.into(),
        phone: phone.into(),
        web: web.into(),
        bank_account: "123456789/0800".into(),
    }
}

/// Two files for the Files tab, one per invoice group (1: residential, 2: business). A portal
/// without a data folder (an in-memory one) gets none.
fn demo_files(portal: &crate::portal::Portal) -> crate::Result<()> {
    if portal.data_dir.as_os_str().is_empty() {
        return Ok(());
    }
    let files: [(&str, &str, u64, &str); 2] = [
        (
            "Terms of service 2026.txt",
            "Terms of service (residential)",
            1,
            "Example Net – terms of service for residential clients, valid from 1 January 2026.\n",
        ),
        (
            "Business SLA.txt",
            "Service level agreement (business)",
            2,
            "Example Net – service level agreement for business clients: 99.9 % availability.\n",
        ),
    ];
    // The originals are written next to the copies and go away once copied.
    let originals = crate::files::folder(&portal.data_dir).join(".demo");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&originals)?;
    }
    for (name, title, group, text) in files {
        let source = originals.join(name);
        std::fs::write(&source, text)?;
        crate::files::add(
            portal,
            crate::files::NewFile {
                path: source,
                title: Some(title.into()),
                invoice_group: Some(group),
            },
        )?;
    }
    std::fs::remove_dir_all(&originals)?;
    Ok(())
}

/// Alice's contract on the Documents tab: a one-page PDF, imported like a billing system's
/// document (its original goes away once copied). A portal without a data folder gets none.
fn demo_documents(portal: &crate::portal::Portal) -> crate::Result<()> {
    if portal.data_dir.as_os_str().is_empty() {
        return Ok(());
    }
    let alice = crate::ops::find_client(portal, "1001")?;
    let originals = crate::documents::folder(&portal.data_dir).join(".demo");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&originals)?;
    }
    let source = originals.join("Contract 2024-0017.pdf");
    std::fs::write(
        &source,
        one_page_pdf(&format!(
            "Example Net - contract for Internet service no. 2024-0017 - {}",
            alice.name
        )),
    )?;
    let mut documents = vec![crate::model::Document {
        id: 1,
        client_id: alice.id,
        title: "Contract for Internet service".into(),
        date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap_or_default(),
        file: source.to_string_lossy().into_owned(),
        display_in_cp: true,
        copy: None,
    }];
    let plan = crate::documents::copy_files(
        &portal.data_dir,
        &portal.store,
        &|| portal.next_id(),
        &mut documents,
        std::iter::empty(),
        false,
    )?;
    portal.store.write(|tx| tx.put(&documents[0]))?;
    plan.finish(&portal.data_dir);
    std::fs::remove_dir_all(&originals)?;
    Ok(())
}

/// A minimal valid PDF: one A4 page with one line of text (ASCII).
pub fn one_page_pdf(text: &str) -> Vec<u8> {
    let line: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .map(|c| match c {
            '(' | ')' | '\\' => ' ',
            c => c,
        })
        .collect();
    let content = format!("BT /F1 12 Tf 56 780 Td ({line}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

pub fn bundle(today: NaiveDate) -> Bundle {
    let mut rng = Lcg(2026);
    let mut b = Bundle {
        invoice_groups: vec![
            InvoiceGroup {
                id: 1,
                name: "Example Net – Residential".into(),
                currency: "CZK".into(),
                supplier: supplier(
                    "Example Net s.r.o.",
                    "https://www.example.net/",
                    "care@example.net",
                    "+420 530 000 100",
                    "12345678",
                ),
            },
            InvoiceGroup {
                id: 2,
                name: "Example Net – Business".into(),
                currency: "CZK".into(),
                supplier: supplier(
                    "Example Net s.r.o. – business desk",
                    "https://business.example.net/",
                    "business@example.net",
                    "+420 530 000 200",
                    "12345678",
                ),
            },
            InvoiceGroup {
                id: 3,
                name: "Valley WiFi".into(),
                currency: "CZK".into(),
                supplier: supplier(
                    "Valley WiFi z.s.",
                    "https://valley-wifi.example.org/",
                    "help@valley-wifi.example.org",
                    "+420 777 000 300",
                    "87654321",
                ),
            },
        ],
        tariffs: vec![
            tariff(
                1,
                "Basic 20",
                20_000,
                5_000,
                "299",
                vec![FupLimit {
                    data_gb: 150,
                    download_kbps: 5_000,
                    upload_kbps: 1_000,
                }],
                false,
            ),
            tariff(
                2,
                "Standard 100",
                100_000,
                20_000,
                "449",
                vec![FupLimit {
                    data_gb: 500,
                    download_kbps: 20_000,
                    upload_kbps: 5_000,
                }],
                false,
            ),
            tariff(3, "Fiber 500", 500_000, 100_000, "649", vec![], false),
            tariff(
                4,
                "Business 1000",
                1_000_000,
                1_000_000,
                "1990",
                vec![],
                true,
            ),
            tariff(
                5,
                "Valley Air 10",
                10_000,
                2_000,
                "250",
                vec![FupLimit {
                    data_gb: 60,
                    download_kbps: 2_000,
                    upload_kbps: 512,
                }],
                false,
            ),
        ],
        ..Bundle::default()
    };
    let mut service_id = 1;
    let mut invoice_id = 1;
    let mut payment_id = 1;
    for i in 0..60u64 {
        let id = i + 1;
        let (name, username, group, email) = match id {
            1 => (
                "Alice Nováková".to_string(),
                Some("alice".to_string()),
                1,
                "alice@example.com".to_string(),
            ),
            2 => (
                "Bob Dvořák".to_string(),
                Some("bob".to_string()),
                2,
                "bob@example.com".to_string(),
            ),
            _ => {
                let first = FIRST[rng.next(FIRST.len())];
                let last = LAST[rng.next(LAST.len())];
                let group = [1, 1, 1, 2, 3][rng.next(5)];
                (
                    format!("{first} {last}"),
                    None,
                    group,
                    format!("client{}@example.com", 1000 + id),
                )
            }
        };
        let town = TOWNS[rng.next(TOWNS.len())];
        let mailing = addr(STREETS[rng.next(STREETS.len())], 1 + rng.next(120), town);
        b.clients.push(Client {
            id,
            number: (1000 + id).to_string(),
            username,
            name,
            company: (group == 2)
                .then(|| "Dvořák Engineering s.r.o.".to_string())
                .filter(|_| id == 2),
            invoicing_address: (group == 2).then(|| addr("Průmyslová", 5, ("Brno", "627 00"))),
            mailing_address: mailing,
            email: Some(email),
            phone: Some(format!(
                "+420 5{:02} {:03} {:03}",
                id % 100,
                rng.next(1000),
                rng.next(1000)
            )),
            mobile: Some(format!(
                "+420 7{:02} {:03} {:03}",
                id % 100,
                rng.next(1000),
                rng.next(1000)
            )),
            invoice_group_id: group,
            language: None,
            portal_access: true,
        });
        let tariff_id: u64 = match group {
            2 => 4,
            3 => 5,
            _ => [1, 2, 2, 3][rng.next(4)],
        };
        let monthly = b.tariffs[(tariff_id - 1) as usize].price;
        let since = today - Months::new(14 + rng.next(30) as u32);
        b.services.push(Service {
            id: service_id,
            client_id: id,
            kind: ServiceKind::Internet,
            name: if group == 3 {
                "Wireless Internet".into()
            } else {
                "Internet".into()
            },
            tariff_id: Some(tariff_id),
            ip_address: Some(format!("100.64.{}.{}", id / 200, 10 + id % 200)),
            dhcp: id % 4 == 1,
            active: true,
            since: Some(since),
        });
        service_id += 1;
        if id % 3 == 1 {
            b.services.push(Service {
                id: service_id,
                client_id: id,
                kind: ServiceKind::Iptv,
                name: "TV Basic".into(),
                tariff_id: None,
                ip_address: None,
                dhcp: true,
                active: true,
                since: Some(since),
            });
            service_id += 1;
        }
        if id % 7 == 0 {
            b.services.push(Service {
                id: service_id,
                client_id: id,
                kind: ServiceKind::Voip,
                name: "Phone line (ended)".into(),
                tariff_id: None,
                ip_address: None,
                dhcp: false,
                active: false,
                since: Some(since),
            });
            service_id += 1;
        }
        for m in (0..12u32).rev() {
            let month = first_of_month(today) - Months::new(m);
            let issued = month;
            let due = issued + chrono::Days::new(14);
            let paid = m > 0 || id % 5 != 0;
            b.invoices.push(Invoice {
                id: invoice_id,
                client_id: id,
                number: format!("{}{:02}{:05}", issued.year(), issued.month(), invoice_id),
                issued,
                due,
                amount: monthly,
                paid,
            });
            invoice_id += 1;
            if paid && due <= today {
                let cash = id % 6 == 0;
                b.payments.push(Payment {
                    id: payment_id,
                    client_id: id,
                    date: due - chrono::Days::new(rng.next(10) as u64),
                    amount: monthly,
                    method: if cash {
                        PaymentMethod::Cash
                    } else {
                        PaymentMethod::Bank
                    },
                    reference: (!cash).then(|| format!("VS {}", 1000 + id)),
                });
                payment_id += 1;
            }
        }
    }
    b.messages = vec![
        Message {
            id: 1,
            client_id: None,
            invoice_group_id: None,
            subject: "Planned network maintenance".into(),
            body: format!(
                "On {} between 01:00 and 04:00 we upgrade the core router. Expect outages of a few minutes.",
                today + chrono::Days::new(7)
            ),
            valid_from: Some(today - chrono::Days::new(3)),
            valid_until: Some(today + chrono::Days::new(8)),
        },
        Message {
            id: 2,
            client_id: None,
            invoice_group_id: Some(1),
            subject: "Fiber is coming to your street".into(),
            body: "Ask us about Fiber 500: five times the speed for 200 CZK more a month.".into(),
            valid_from: None,
            valid_until: None,
        },
        Message {
            id: 3,
            client_id: Some(1),
            invoice_group_id: None,
            subject: "Your new router is ready".into(),
            body: "Alice, your Wi-Fi 6 router is waiting for you at our office on Technická 12."
                .into(),
            valid_from: Some(today - chrono::Days::new(1)),
            valid_until: Some(today + chrono::Days::new(30)),
        },
        Message {
            id: 4,
            client_id: None,
            invoice_group_id: None,
            subject: "Holiday opening hours (expired)".into(),
            body: "This message is past its validity and must not be shown.".into(),
            valid_from: Some(today - chrono::Days::new(60)),
            valid_until: Some(today - chrono::Days::new(30)),
        },
        Message {
            id: 5,
            client_id: None,
            invoice_group_id: Some(2),
            subject: "Your account manager".into(),
            body: "Business clients: call +420 530 000 200 for anything, any time.".into(),
            valid_from: None,
            valid_until: None,
        },
    ];
    b
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d)
}

fn tariff(
    id: u64,
    name: &str,
    down: u32,
    up: u32,
    price: &str,
    fup: Vec<FupLimit>,
    hide: bool,
) -> Tariff {
    Tariff {
        id,
        name: name.into(),
        download_kbps: down,
        upload_kbps: up,
        price: Money::parse(price).unwrap_or_default(),
        fup_limits: fup,
        hide_traffic_in_portal: hide,
    }
}

/// What the demo ISP holds, as `portico demo` prints it and the docs quote it: "3 invoice
/// groups, 5 tariffs, 60 clients, …".
pub fn summary(b: &Bundle) -> String {
    format!(
        "{} invoice groups, {} tariffs, {} clients, {} services, {} messages, {} invoices and {} payments",
        b.invoice_groups.len(),
        b.tariffs.len(),
        b.clients.len(),
        b.services.len(),
        b.messages.len(),
        b.invoices.len(),
        b.payments.len()
    )
}

/// Seeds a portal with the demo ISP (import, passwords, settings). Used by `portico demo`.
/// Returns [`summary`] of what it created.
pub fn seed(portal: &crate::portal::Portal) -> crate::Result<String> {
    let b = bundle(portal.clock.today());
    crate::import::write(&portal.store, &b, &mut |_, _| {})?;
    for login in LOGINS {
        // Demo passwords stay usable: they are the client's own, not operator one-time ones.
        let client = crate::ops::find_client(portal, login.client_number)?;
        let hash = crate::auth::hash_password(login.password)?;
        crate::auth::set_password(
            &portal.store,
            client.id,
            hash,
            portal.clock.unix(),
            false,
            None,
        )?;
    }
    for (k, v) in SETTINGS {
        portal.settings.set(k, None, v)?;
    }
    crate::menu::add(
        portal,
        crate::menu::NewButton {
            label: "Speed test".into(),
            label_cs: Some("Test rychlosti".into()),
            url: "https://speedtest.example.net/".into(),
            new_tab: true,
            order: Some(60),
            invoice_group: None,
        },
    )?;
    demo_files(portal)?;
    demo_documents(portal)?;
    for (owner, seed) in &portal.registry.demos {
        seed(&crate::plugin::OperatorCtx::new(portal, owner))?;
    }
    Ok(summary(&b))
}

/// The demo logins of a folder that holds the demo ISP, each with whether its demo password
/// still works (an operator may have given a one-time password, or the client chosen their
/// own). `None` when the folder does not hold the demo ISP.
pub fn logins(store: &crate::store::Store) -> Option<Vec<(&'static DemoLogin, bool)>> {
    LOGINS
        .iter()
        .map(|l| {
            let client = store
                .client_by_username(l.username)
                .ok()
                .flatten()
                .filter(|c| c.number == l.client_number)?;
            let works = store
                .get_id::<crate::auth::Credential>(client.id)
                .ok()
                .flatten()
                .is_some_and(|c| {
                    !c.one_time && crate::auth::verify_password(&c.password_hash, l.password)
                });
            Some((l, works))
        })
        .collect()
}

/// The example script the demo ships active: an outage notice on the Information tab of the
/// clients of one town (see docs/scripting.md).
pub const DEMO_SCRIPT: (&str, &str) = (
    "outage-panel.rhai",
    include_str!("../../scripts/examples/outage-panel.rhai"),
);

/// Writes the demo's scripts folder (a new demo data folder only; an edit is kept after).
pub fn write_scripts(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(DEMO_SCRIPT.0);
    if !file.exists() {
        std::fs::write(file, DEMO_SCRIPT.1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md and docs/operators.md quote the demo's counts; they come from [`summary`].
    /// The month's invoices fall due on its 15th, so before that there are fewer payments.
    #[test]
    fn the_docs_quote_the_demo_counts() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("date");
        let late = summary(&bundle(day(20)));
        let early = bundle(day(2)).payments.len();
        assert_ne!(early, bundle(day(20)).payments.len());
        for (name, text) in [
            ("README.md", include_str!("../../README.md")),
            ("docs/operators.md", include_str!("../../docs/operators.md")),
        ] {
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&late), "{name} must say: {late}");
            assert!(
                flat.contains(&format!("before the 15th of a month, {early} payments")),
                "{name} must say: before the 15th of a month, {early} payments"
            );
        }
    }
}
