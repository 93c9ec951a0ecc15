//! Writes a large, realistic import bundle (docs/import.md, format `portico-import/1`) to
//! standard output, for the benchmark in `bench/run.sh`.
//!
//! ```text
//! cargo run --release --example gen_bench_bundle -- --clients 100000 --invoices 1000000 > bundle.json
//! ```
//!
//! The bundle has 3 invoice groups, 5 tariffs, N clients with one Internet service each, M
//! invoices spread evenly over the clients (a monthly series per client, newest this month),
//! one payment per 4 invoices, and a few messages: global, one per invoice group, one private to
//! client id 1 and one expired. Client id 1 is "Alice Nováková", number 1001, login `alice`.
//! Client numbers are `1000 + id`. The content is deterministic for a given N, M and date.
//!
//! `--invalid parse` or `--invalid check` appends one bad payment (a wrong amount, or a payment
//! for a client that does not exist) so that `portico import` stops after parsing, or after
//! checking, without writing: the benchmark uses this to time the import's phases.
//! `--today YYYY-MM-DD` fixes the date the invoices and messages are relative to.
//!
//! Only `std` and `serde_json`; records are streamed, so memory stays small at any size.

use std::io::{self, BufWriter, Write};

use serde_json::{Value, json};

// The demo ISP's names and places, so bench data looks like the demo.
use portico_core::internal::demo::{FIRST, LAST, Lcg, STREETS, TOWNS};
const COMPANIES: &[&str] = &[
    "Engineering s.r.o.",
    "Stavby a.s.",
    "Pekařství s.r.o.",
    "Autoservis s.r.o.",
    "Účetnictví s.r.o.",
];

/// (id, name, download kbps, upload kbps, monthly price in hundredths, FUP (GB, down, up), hide traffic)
type TariffRow = (
    u64,
    &'static str,
    u32,
    u32,
    i64,
    Option<(u32, u32, u32)>,
    bool,
);
const TARIFFS: &[TariffRow] = &[
    (
        1,
        "Basic 20",
        20_000,
        5_000,
        29_900,
        Some((150, 5_000, 1_000)),
        false,
    ),
    (
        2,
        "Standard 100",
        100_000,
        20_000,
        44_900,
        Some((500, 20_000, 5_000)),
        false,
    ),
    (3, "Fiber 500", 500_000, 100_000, 64_900, None, false),
    (
        4,
        "Business 1000",
        1_000_000,
        1_000_000,
        199_000,
        None,
        true,
    ),
    (
        5,
        "Valley Air 10",
        10_000,
        2_000,
        25_000,
        Some((60, 2_000, 512)),
        false,
    ),
];

/// A calendar date as days since 1970-01-01 (proleptic Gregorian).
#[derive(Clone, Copy, PartialEq, PartialOrd)]
struct Day(i64);

impl Day {
    fn from_ymd(y: i64, m: u32, d: u32) -> Day {
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = m as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146097 + doe - 719468)
    }

    fn ymd(self) -> (i64, u32, u32) {
        let z = self.0 + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (
            if m <= 2 {
                yoe + era * 400 + 1
            } else {
                yoe + era * 400
            },
            m,
            d,
        )
    }

    fn today() -> Day {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Day((secs / 86_400) as i64)
    }

    fn parse(s: &str) -> Option<Day> {
        let mut it = s.splitn(3, '-');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| Day::from_ymd(y, m, d))
    }

    fn plus(self, days: i64) -> Day {
        Day(self.0 + days)
    }

    /// The first day of the month `back` months before this day's month.
    fn first_of_month_back(self, back: i64) -> Day {
        let (y, m, _) = self.ymd();
        let months = y * 12 + (m as i64 - 1) - back;
        Day::from_ymd(months.div_euclid(12), (months.rem_euclid(12) + 1) as u32, 1)
    }

    fn iso(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}-{m:02}-{d:02}")
    }
}

fn money(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    let a = hundredths.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn address(street: &str, no: usize, town: (&str, &str)) -> Value {
    json!({"street": format!("{street} {no}"), "city": town.0, "zip": town.1, "country": "CZ"})
}

fn supplier(name: &str, web: &str, email: &str, phone: &str, company_id: &str) -> Value {
    json!({
        "name": name,
        "address": address("Technická", 12, ("Brno", "616 00")),
        "company_id": company_id,
        "vat_id": format!("CZ{company_id}"),
        "email": email,
        "phone": phone,
        "web": web,
        "bank_account": "123456789/0800",
    })
}

struct Args {
    clients: u64,
    invoices: u64,
    invalid: Option<String>,
    today: Day,
}

fn usage() -> ! {
    eprintln!(
        "usage: gen_bench_bundle [--clients N] [--invoices M] [--today YYYY-MM-DD] [--invalid parse|check] > bundle.json"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        clients: 100_000,
        invoices: 1_000_000,
        invalid: None,
        today: Day::today(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else { usage() };
        match flag.as_str() {
            "--clients" => a.clients = value.parse().unwrap_or_else(|_| usage()),
            "--invoices" => a.invoices = value.parse().unwrap_or_else(|_| usage()),
            "--today" => a.today = Day::parse(&value).unwrap_or_else(|| usage()),
            "--invalid" if value == "parse" || value == "check" => a.invalid = Some(value),
            _ => usage(),
        }
    }
    if a.clients == 0 {
        eprintln!("--clients must be at least 1");
        std::process::exit(2);
    }
    a
}

/// Writes `"name":[` records `]` with one record per line.
struct Section<'w, W: Write> {
    out: &'w mut W,
    first: bool,
}

impl<'w, W: Write> Section<'w, W> {
    fn open(out: &'w mut W, name: &str, leading_comma: bool) -> io::Result<Self> {
        if leading_comma {
            out.write_all(b",\n")?;
        }
        write!(out, "\"{name}\":[")?;
        Ok(Section { out, first: true })
    }

    fn push(&mut self, record: &Value) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, record).map_err(io::Error::other)
    }

    fn close(self) -> io::Result<()> {
        self.out.write_all(b"\n]")
    }
}

fn main() {
    let args = parse_args();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = write_bundle(&mut out, &args).and_then(|()| out.flush());
    if let Err(e) = result {
        eprintln!("gen_bench_bundle: cannot write the bundle: {e}");
        std::process::exit(1);
    }
}

fn write_bundle<W: Write>(out: &mut W, a: &Args) -> io::Result<()> {
    let today = a.today;
    let mut rng = Lcg(2026);
    out.write_all(b"{\"format\":\"portico-import/1\",\n")?;

    let mut s = Section::open(out, "invoice_groups", false)?;
    s.push(&json!({
        "id": 1, "name": "Example Net – Residential", "currency": "CZK",
        "supplier": supplier("Example Net s.r.o.", "https://www.example.net/",
            "care@example.net", "+420 530 000 100", "12345678"),
    }))?;
    s.push(&json!({
        "id": 2, "name": "Example Net – Business", "currency": "CZK",
        "supplier": supplier("Example Net s.r.o. – business desk", "https://business.example.net/",
            "business@example.net", "+420 530 000 200", "12345678"),
    }))?;
    s.push(&json!({
        "id": 3, "name": "Valley WiFi", "currency": "CZK",
        "supplier": supplier("Valley WiFi z.s.", "https://valley-wifi.example.org/",
            "help@valley-wifi.example.org", "+420 777 000 300", "87654321"),
    }))?;
    s.close()?;

    let mut s = Section::open(out, "tariffs", true)?;
    for &(id, name, down, up, price, fup, hide) in TARIFFS {
        let fup: Vec<Value> = fup
            .map(|(gb, d, u)| json!({"data_gb": gb, "download_kbps": d, "upload_kbps": u}))
            .into_iter()
            .collect();
        s.push(&json!({
            "id": id, "name": name, "download_kbps": down, "upload_kbps": up,
            "price": money(price), "fup_limits": fup, "hide_traffic_in_portal": hide,
        }))?;
    }
    s.close()?;

    // Clients first (remembering each one's group and tariff for services and invoices).
    let n = a.clients;
    let mut tariff_of: Vec<u8> = Vec::with_capacity(n as usize);
    let mut since_of: Vec<Day> = Vec::with_capacity(n as usize);
    let mut s = Section::open(out, "clients", true)?;
    for id in 1..=n {
        let number = 1000 + id;
        let (name, username, group) = match id {
            1 => (
                "Alice Nováková".to_string(),
                Some("alice".to_string()),
                1u64,
            ),
            2 => ("Bob Dvořák".to_string(), Some("bob".to_string()), 2),
            _ => {
                let first = rng.pick(FIRST);
                let last = rng.pick(LAST);
                let group = rng.pick(&[1u64, 1, 1, 2, 3]);
                // Every tenth client has chosen a login name.
                let username = (id % 10 == 0).then(|| format!("client{number}"));
                (format!("{first} {last}"), username, group)
            }
        };
        let town = rng.pick(TOWNS);
        let mailing = address(rng.pick(STREETS), 1 + rng.next(150), town);
        let mut c = json!({
            "id": id,
            "number": number.to_string(),
            "name": name,
            "mailing_address": mailing,
            "email": if id == 1 { "alice@example.com".to_string() } else { format!("client{number}@example.com") },
            "phone": format!("+420 5{:02} {:03} {:03}", id % 100, rng.next(1000), rng.next(1000)),
            "mobile": format!("+420 7{:02} {:03} {:03}", id % 100, rng.next(1000), rng.next(1000)),
            "invoice_group_id": group,
        });
        if let Some(u) = username {
            c["username"] = json!(u);
        }
        if group == 2 {
            let surname = name.rsplit(' ').next().unwrap_or("Nový");
            c["company"] = json!(format!("{surname} {}", rng.pick(COMPANIES)));
            c["invoicing_address"] =
                address("Průmyslová", 1 + (id as usize % 40), ("Brno", "627 00"));
        }
        if id % 3 == 0 {
            c["language"] = json!("cs");
        }
        s.push(&c)?;
        let tariff: u8 = match group {
            2 => 4,
            3 => 5,
            _ => rng.pick(&[1u8, 2, 2, 3]),
        };
        tariff_of.push(tariff);
        since_of.push(today.first_of_month_back(14 + rng.next(60) as i64));
    }
    s.close()?;

    // One Internet service per client, with an address from 100.64.0.0/10.
    let mut s = Section::open(out, "services", true)?;
    for id in 1..=n {
        let i = (id - 1) as usize;
        let tariff = tariff_of[i];
        let ip = format!(
            "100.{}.{}.{}",
            64 + (id >> 16) % 64,
            (id >> 8) & 255,
            id & 255
        );
        s.push(&json!({
            "id": id,
            "client_id": id,
            "kind": "internet",
            "name": if tariff == 5 { "Wireless Internet" } else { "Internet" },
            "tariff_id": tariff,
            "ip_address": ip,
            "dhcp": id % 4 == 1,
            "active": id % 50 != 0,
            "since": since_of[i].iso(),
        }))?;
    }
    s.close()?;

    let mut s = Section::open(out, "messages", true)?;
    s.push(&json!({
        "id": 1, "subject": "Planned network maintenance",
        "body": format!("On {} between 01:00 and 04:00 we upgrade the core router. Expect outages of a few minutes.", today.plus(7).iso()),
        "valid_from": today.plus(-3).iso(), "valid_until": today.plus(8).iso(),
    }))?;
    s.push(&json!({
        "id": 2, "invoice_group_id": 1, "subject": "Fiber is coming to your street",
        "body": "Ask us about Fiber 500: five times the speed for 200 CZK more a month.",
    }))?;
    s.push(&json!({
        "id": 3, "invoice_group_id": 2, "subject": "Your account manager",
        "body": "Business clients: call +420 530 000 200 for anything, any time.",
    }))?;
    s.push(&json!({
        "id": 4, "invoice_group_id": 3, "subject": "New access point on the church tower",
        "body": "Clients in the valley get a stronger signal from this week. No action needed.",
        "valid_until": today.plus(20).iso(),
    }))?;
    s.push(&json!({
        "id": 5, "client_id": 1, "subject": "Your new router is ready",
        "body": "Alice, your Wi-Fi 6 router is waiting for you at our office on Technická 12.",
        "valid_from": today.plus(-1).iso(), "valid_until": today.plus(30).iso(),
    }))?;
    s.push(&json!({
        "id": 6, "subject": "Holiday opening hours (expired)",
        "body": "This message is past its validity and must not be shown.",
        "valid_from": today.plus(-60).iso(), "valid_until": today.plus(-30).iso(),
    }))?;
    s.close()?;

    // Invoices: client c gets a monthly series (the first M % N clients one more), the newest
    // issued this month. All but the newest are paid, and the newest too for most clients.
    let m = a.invoices;
    let per = m / n;
    let extra = m % n;
    let mut invoice_id = 0u64;
    let mut s = Section::open(out, "invoices", true)?;
    for c in 1..=n {
        let count = per + u64::from(c <= extra);
        let price = TARIFFS[(tariff_of[(c - 1) as usize] - 1) as usize].4;
        for back in (0..count).rev() {
            invoice_id += 1;
            let issued = today.first_of_month_back(back as i64);
            let due = issued.plus(14);
            let paid = back > 0 || (c % 5 != 0 && due <= today);
            let (y, mo, _) = issued.ymd();
            s.push(&json!({
                "id": invoice_id,
                "client_id": c,
                "number": format!("{y}{mo:02}{invoice_id:07}"),
                "issued": issued.iso(),
                "due": due.iso(),
                "amount": money(price),
                "paid": paid,
            }))?;
        }
    }
    s.close()?;

    // One payment per 4 invoices: clients pay a quarter at a time, a few days before it is due.
    let mut s = Section::open(out, "payments", true)?;
    let mut payment_id = 0u64;
    let mut invoice_id = 0u64;
    for c in 1..=n {
        let count = per + u64::from(c <= extra);
        let price = TARIFFS[(tariff_of[(c - 1) as usize] - 1) as usize].4;
        for back in (0..count).rev() {
            invoice_id += 1;
            if invoice_id % 4 != 1 {
                continue;
            }
            payment_id += 1;
            let due = today.first_of_month_back(back as i64).plus(14);
            let cash = c % 6 == 0;
            let mut p = json!({
                "id": payment_id,
                "client_id": c,
                "date": due.plus(-(rng.next(10) as i64)).iso(),
                "amount": money(price * 4),
                "method": if cash { "cash" } else { "bank" },
            });
            if !cash {
                p["reference"] = json!(format!("VS {}", 1000 + c));
            }
            s.push(&p)?;
        }
    }
    match a.invalid.as_deref() {
        // Rejected while parsing: the whole bundle is parsed, nothing is checked or written.
        Some("parse") => s.push(&json!({
            "id": payment_id + 1, "client_id": 1, "date": today.iso(),
            "amount": "not-an-amount", "method": "bank",
        }))?,
        // Rejected while checking: the whole bundle is parsed and checked, nothing is written.
        Some("check") => s.push(&json!({
            "id": payment_id + 1, "client_id": n + 1_000_000, "date": today.iso(),
            "amount": "1.00", "method": "bank",
        }))?,
        _ => {}
    }
    s.close()?;
    out.write_all(b"}\n")
}
