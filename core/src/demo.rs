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
];

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

/// Seeds a portal with the demo ISP (import, passwords, settings). Used by `portico demo`.
pub fn seed(portal: &crate::portal::Portal) -> crate::Result<String> {
    let b = bundle(portal.clock.today());
    let report = crate::import::write(&portal.store, &b, &mut |_, _| {})?;
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
    for (owner, seed) in &portal.registry.demos {
        seed(&crate::plugin::OperatorCtx::new(portal, owner))?;
    }
    Ok(report.to_string())
}
