//! `portico import FILE.json`: the billing system's data as one JSON bundle (docs/import.md).
//!
//! Every record is checked before anything is written, and every problem is reported with its
//! path (`clients[17].email: not an e-mail address`). A bundle with any problem changes nothing.
//! A valid bundle is upserted by id, so importing the same bundle twice leaves the same state.
//! Records go only when the bundle says so: `--sync` makes each collection the bundle holds
//! exactly the bundle's content, and `"delete"` names records to remove. A deleted client takes
//! their dependants with them (services, invoices, payments, private messages, credentials,
//! sessions, links, queued mail, plugin data), in one transaction per batch of clients.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::model::{
    Client, Invoice, InvoiceGroup, Message, Money, Payment, Service, Tariff, trees,
};
use crate::settings::is_email;
use crate::store::{Changes, Record, Store, WriteTx, id_key, index_key};

/// Records written per store transaction.
const CHUNK: usize = 4096;
/// Problems listed in full; the rest are counted.
const MAX_LISTED: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle<'a> {
    #[serde(default)]
    format: Option<String>,
    #[serde(default, borrow, deserialize_with = "section")]
    invoice_groups: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    tariffs: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    clients: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    services: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    invoices: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow, deserialize_with = "section")]
    payments: Option<Vec<&'a RawValue>>,
    /// Records to delete: collection name → ids.
    #[serde(default)]
    delete: BTreeMap<String, Vec<u64>>,
}

/// A section that is present must be a list (`null` is refused); an absent one is `None`.
fn section<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<&'de RawValue>>, D::Error> {
    Vec::<&'de RawValue>::deserialize(d).map(Some)
}

/// The collections of a bundle, in the order they are written.
pub const COLLECTIONS: [&str; 7] = [
    "invoice_groups",
    "tariffs",
    "clients",
    "services",
    "messages",
    "invoices",
    "payments",
];
const GROUPS: usize = 0;
const TARIFFS: usize = 1;
const CLIENTS: usize = 2;
const SERVICES: usize = 3;
const MESSAGES: usize = 4;
const INVOICES: usize = 5;
const PAYMENTS: usize = 6;
/// How one record of each collection is named in messages.
const SINGULAR: [&str; 7] = [
    "invoice group",
    "tariff",
    "client",
    "service",
    "message",
    "invoice",
    "payment",
];
/// The store tree of each collection.
const TREES: [&str; 7] = [
    InvoiceGroup::TREE,
    Tariff::TREE,
    Client::TREE,
    Service::TREE,
    Message::TREE,
    Invoice::TREE,
    Payment::TREE,
];
/// A client's dependants: collection and the index that lists a client's records.
const CLIENT_DEPENDANTS: [(usize, &str); 4] = [
    (SERVICES, trees::CLIENTID_SERVICEIDS),
    (MESSAGES, trees::CLIENTID_MESSAGEIDS),
    (INVOICES, trees::CLIENTID_INVOICEIDS),
    (PAYMENTS, trees::CLIENTID_PAYMENTIDS),
];
/// Clients deleted per store transaction (each with all of their dependants).
const CLIENTS_PER_TX: usize = 64;

/// How an import runs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Each collection present in the bundle becomes exactly the bundle's content.
    #[serde(default)]
    pub sync: bool,
    /// Check and count, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Ids, sorted: a set that costs 8 bytes an id.
#[derive(Debug, Default, Clone)]
pub struct IdSet(Vec<u64>);

impl IdSet {
    fn from_unsorted(mut ids: Vec<u64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        IdSet(ids)
    }
    pub fn contains(&self, id: u64) -> bool {
        self.0.binary_search(&id).is_ok()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().copied()
    }
}

pub const FORMAT: &str = "portico-import/1";

/// A checked bundle, ready to write, with the deletions it makes.
#[derive(Debug, Default)]
pub struct Bundle {
    pub invoice_groups: Vec<InvoiceGroup>,
    pub tariffs: Vec<Tariff>,
    pub clients: Vec<Client>,
    pub services: Vec<Service>,
    pub messages: Vec<Message>,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    /// Every record the import deletes, per collection (in [`COLLECTIONS`] order): those named
    /// under `"delete"`, those `--sync` removes, and the dependants of deleted clients and groups.
    pub deletions: [IdSet; 7],
}

impl Bundle {
    pub fn len(&self) -> usize {
        self.invoice_groups.len()
            + self.tariffs.len()
            + self.clients.len()
            + self.services.len()
            + self.messages.len()
            + self.invoices.len()
            + self.payments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an import wrote (or, in a dry run, would write).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// Records in the bundle.
    pub records: usize,
    /// Per collection, in [`COLLECTIONS`] order.
    pub changes: [Changes; 7],
    pub deleted: [usize; 7],
    /// Clients whose `portal_access` this import changed: (client id, access now). A client
    /// new to the store counts when it arrives with `false`.
    #[serde(default)]
    pub access_changes: Vec<(u64, bool)>,
    #[serde(default)]
    pub dry_run: bool,
}

impl ImportReport {
    /// Records in the bundle.
    pub fn total(&self) -> usize {
        self.records
    }

    pub fn deleted_total(&self) -> usize {
        self.deleted.iter().sum()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>10}",
            "", "created", "updated", "unchanged", "deleted"
        )?;
        let mut sum = [0usize; 4];
        for (k, name) in COLLECTIONS.iter().enumerate() {
            let c = self.changes[k];
            let row = [c.created, c.updated, c.unchanged, self.deleted[k]];
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
            writeln!(
                f,
                "{:<16}{:>10}{:>10}{:>11}{:>10}",
                name, row[0], row[1], row[2], row[3]
            )?;
        }
        write!(
            f,
            "{:<16}{:>10}{:>10}{:>11}{:>10}",
            "total", sum[0], sum[1], sum[2], sum[3]
        )?;
        let taken = self.access_changes.iter().filter(|(_, a)| !a).count();
        let given = self.access_changes.len() - taken;
        let would = if self.dry_run { "would be " } else { "" };
        if taken > 0 {
            write!(
                f,
                "\nportal access {would}taken away from {taken} client(s) (portal_access: false)"
            )?;
        }
        if given > 0 {
            write!(
                f,
                "\nportal access {would}given back to {given} client(s) by the import"
            )?;
        }
        Ok(())
    }
}

struct Problems(Vec<String>, usize);

impl Problems {
    fn add(&mut self, path: impl std::fmt::Display, msg: impl std::fmt::Display) {
        if self.0.len() < MAX_LISTED {
            self.0.push(format!("{path}: {msg}"));
        }
        self.1 += 1;
    }
}

/// Parses one section; returns the records that parsed and, for each, its index in the file
/// (so later problems name the right record even when an earlier one failed to parse).
fn parse_list<T: DeserializeOwned>(
    section: &str,
    raw: &[&RawValue],
    problems: &mut Problems,
) -> (Vec<T>, Vec<usize>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut positions = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let de = &mut serde_json::Deserializer::from_str(r.get());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => {
                out.push(v);
                positions.push(i);
            }
            Err(e) => {
                let inner = e.path().to_string();
                let path = if inner == "." {
                    format!("{section}[{i}]")
                } else {
                    format!("{section}[{i}].{inner}")
                };
                problems.add(
                    path,
                    clean_serde_message(&inner, &e.into_inner().to_string()),
                );
            }
        }
    }
    (out, positions)
}

/// Index in the file of each parsed record, per section.
#[derive(Default)]
struct Positions {
    invoice_groups: Vec<usize>,
    tariffs: Vec<usize>,
    clients: Vec<usize>,
    services: Vec<usize>,
    messages: Vec<usize>,
    invoices: Vec<usize>,
    payments: Vec<usize>,
}

/// serde_json appends " at line 1 column 57", which means nothing to an operator here; and
/// chrono's date errors do not say that a date was expected.
fn clean_serde_message(field: &str, m: &str) -> String {
    let m = match m.rfind(" at line ") {
        Some(pos) => &m[..pos],
        None => m,
    };
    let date_fields = [
        "issued",
        "due",
        "date",
        "since",
        "valid_from",
        "valid_until",
    ];
    let last = field.rsplit('.').next().unwrap_or(field);
    if date_fields.contains(&last) && !m.starts_with("invalid type") {
        return format!("not a date: use YYYY-MM-DD ({m})");
    }
    m.to_string()
}

fn check_ids(
    section: &str,
    ids: impl Iterator<Item = u64>,
    positions: &[usize],
    problems: &mut Problems,
) {
    let mut seen = HashSet::new();
    for (id, &i) in ids.zip(positions) {
        if id == 0 {
            problems.add(
                format!("{section}[{i}].id"),
                "must be a positive whole number",
            );
        } else if !seen.insert(id) {
            problems.add(
                format!("{section}[{i}].id"),
                format!("id {id} appears more than once"),
            );
        }
    }
}

/// Whether a reference holds: the record is in the bundle, or stored and not deleted by it.
fn exists<R: Record>(
    in_bundle: &HashSet<u64>,
    deleted: &IdSet,
    store: &Store,
    id: u64,
) -> Result<bool> {
    Ok(in_bundle.contains(&id)
        || (!deleted.contains(id) && store.get_raw(R::TREE, &id_key(id))?.is_some()))
}

/// "no client with id 5", saying so when the import itself deletes it.
fn missing(what: &str, id: u64, deleted: &IdSet) -> String {
    if deleted.contains(id) {
        format!("{what} {id} is deleted by this import")
    } else {
        format!("no {what} with id {id}")
    }
}

/// A custom login name: 3 to 64 of letters, digits and `._-@`, starting with a letter.
pub fn valid_login_name(u: &str) -> bool {
    (3..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        && u.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
}

/// Parses and checks a bundle against itself and the store (an upsert, no `--sync`). Returns
/// every problem on failure.
pub fn check(store: &Store, json: &str) -> Result<Bundle> {
    check_with(store, json, ImportOptions::default())
}

/// [`check`] with options: with `sync`, the records of each collection the bundle holds that
/// the bundle leaves out are planned for deletion.
pub fn check_with(store: &Store, json: &str, opts: ImportOptions) -> Result<Bundle> {
    if !json.trim_start().starts_with('{') {
        return Err(Error::Invalid(
            "the file is not an import bundle: it must hold one JSON object (see docs/import.md)"
                .into(),
        ));
    }
    let raw: RawBundle = serde_json::from_str(json).map_err(|e| {
        Error::Invalid(format!(
            "the file is not an import bundle: {e} (see docs/import.md for the format)"
        ))
    })?;
    if let Some(f) = &raw.format
        && f != FORMAT
    {
        return Err(Error::Invalid(format!(
            "format: `{f}` is not supported; expected `{FORMAT}`"
        )));
    }
    let sections = [
        &raw.invoice_groups,
        &raw.tariffs,
        &raw.clients,
        &raw.services,
        &raw.messages,
        &raw.invoices,
        &raw.payments,
    ];
    let present = sections.map(Option::is_some);
    let list = |k: usize| sections[k].as_deref().unwrap_or(&[]);
    let mut p = Problems(vec![], 0);
    let mut pos = Positions::default();
    let mut b = Bundle::default();
    (b.invoice_groups, pos.invoice_groups) = parse_list("invoice_groups", list(GROUPS), &mut p);
    (b.tariffs, pos.tariffs) = parse_list("tariffs", list(TARIFFS), &mut p);
    (b.clients, pos.clients) = parse_list("clients", list(CLIENTS), &mut p);
    (b.services, pos.services) = parse_list("services", list(SERVICES), &mut p);
    (b.messages, pos.messages) = parse_list("messages", list(MESSAGES), &mut p);
    (b.invoices, pos.invoices) = parse_list("invoices", list(INVOICES), &mut p);
    (b.payments, pos.payments) = parse_list("payments", list(PAYMENTS), &mut p);
    // Records that failed to parse still count as present for references, so one bad field
    // does not also produce "no client with id ..." for everything that points at it.
    let known = KnownIds {
        groups: raw_ids(list(GROUPS)),
        tariffs: raw_ids(list(TARIFFS)),
        clients: raw_ids(list(CLIENTS)),
    };
    let in_bundle: [IdSet; 7] = [
        IdSet::from_unsorted(b.invoice_groups.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.tariffs.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.clients.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.services.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.messages.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.invoices.iter().map(|r| r.id).collect()),
        IdSet::from_unsorted(b.payments.iter().map(|r| r.id).collect()),
    ];
    b.deletions = plan_deletions(store, &raw.delete, &in_bundle, &present, opts.sync, &mut p)?;
    check_records(store, &b, &pos, &known, &mut p)?;
    if p.1 > 0 {
        let mut msg = format!(
            "the bundle was rejected and nothing was changed; {} problem(s):\n",
            p.1
        );
        for line in &p.0 {
            msg.push_str("  ");
            // Problems quote values from the file, which must not drive the terminal.
            msg.push_str(&crate::text::escape(line));
            msg.push('\n');
        }
        if p.1 > p.0.len() {
            msg.push_str(&format!("  ... and {} more\n", p.1 - p.0.len()));
        }
        return Err(Error::Invalid(msg.trim_end().to_string()));
    }
    Ok(b)
}

/// The ids a store index lists for one owner (its record keys are ids).
fn index_ids(store: &Store, index: &str, owner: u64) -> Result<Vec<u64>> {
    let prefix = index_key(&id_key(owner), &[]);
    Ok(store
        .scan_raw(index, &prefix)?
        .into_iter()
        .filter_map(|(k, _)| {
            <[u8; 8]>::try_from(&k[prefix.len()..])
                .ok()
                .map(u64::from_be_bytes)
        })
        .collect())
}

/// Calls `f` with every id stored in a record tree, in batches, so a large tree is never held
/// in memory as a whole.
fn for_each_stored_id(store: &Store, tree: &str, mut f: impl FnMut(u64)) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store
            .backend()
            .scan_prefix_limited(tree, &[], after.as_deref(), CHUNK)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (k, _) in &batch {
            if let Ok(id) = <[u8; 8]>::try_from(k.as_slice()) {
                f(u64::from_be_bytes(id));
            }
        }
        if batch.len() < CHUNK {
            return Ok(());
        }
    }
}

/// What the import deletes: the records named under `"delete"` (each must be stored and not
/// also imported), with `sync` every stored record of a present collection that the bundle
/// leaves out, and the dependants of deleted clients (their services, invoices, payments and
/// private messages) and of deleted invoice groups (their messages). A record the bundle
/// holds is never deleted: a dependant in the bundle moves to its new owner. A deleted group
/// that stored clients still belong to, or a deleted tariff that stored services still use,
/// is a problem.
fn plan_deletions(
    store: &Store,
    explicit: &BTreeMap<String, Vec<u64>>,
    in_bundle: &[IdSet; 7],
    present: &[bool; 7],
    sync: bool,
    p: &mut Problems,
) -> Result<[IdSet; 7]> {
    let mut del: [BTreeSet<u64>; 7] = Default::default();
    for (name, ids) in explicit {
        let Some(k) = COLLECTIONS.iter().position(|c| c == name) else {
            p.add(
                format!("delete.{name}"),
                format!("not a collection; use one of {}", COLLECTIONS.join(", ")),
            );
            continue;
        };
        for (i, &id) in ids.iter().enumerate() {
            let at = format!("delete.{name}[{i}]");
            if in_bundle[k].contains(id) {
                p.add(
                    at,
                    format!(
                        "{} {id} is also in {name}: a record is either imported or deleted",
                        SINGULAR[k]
                    ),
                );
            } else if store.get_raw(TREES[k], &id_key(id))?.is_none() {
                p.add(at, format!("no {} with id {id} is stored", SINGULAR[k]));
            } else {
                del[k].insert(id);
            }
        }
    }
    if sync {
        for k in 0..COLLECTIONS.len() {
            if present[k] {
                for_each_stored_id(store, TREES[k], |id| {
                    if !in_bundle[k].contains(id) {
                        del[k].insert(id);
                    }
                })?;
            }
        }
    }
    let clients: Vec<u64> = del[CLIENTS].iter().copied().collect();
    for c in clients {
        for (k, index) in CLIENT_DEPENDANTS {
            for id in index_ids(store, index, c)? {
                if !in_bundle[k].contains(id) {
                    del[k].insert(id);
                }
            }
        }
    }
    let groups: Vec<u64> = del[GROUPS].iter().copied().collect();
    for g in groups {
        for id in index_ids(store, trees::INVOICEGROUPID_MESSAGEIDS, g)? {
            if !in_bundle[MESSAGES].contains(id) {
                del[MESSAGES].insert(id);
            }
        }
        // Clients in the bundle are checked against the groups that stay with their record.
        for c in index_ids(store, trees::INVOICEGROUPID_CLIENTIDS, g)? {
            if !del[CLIENTS].contains(&c) && !in_bundle[CLIENTS].contains(c) {
                let number = store
                    .get_id::<Client>(c)?
                    .map_or_else(|| format!("#{c}"), |cl| cl.number);
                p.add(
                    "invoice_groups",
                    format!(
                        "invoice group {g} would be deleted, but client {number} (id {c}) still belongs to it; delete that client or move it to another group in the same import"
                    ),
                );
            }
        }
    }
    if !del[TARIFFS].is_empty() {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch =
                store
                    .backend()
                    .scan_prefix_limited(Service::TREE, &[], after.as_deref(), CHUNK)?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            after = Some(last.clone());
            for (k, v) in &batch {
                let s: Service = crate::store::decode(Service::TREE, k, v)?;
                if let Some(t) = s.tariff_id
                    && del[TARIFFS].contains(&t)
                    && !del[SERVICES].contains(&s.id)
                    && !in_bundle[SERVICES].contains(s.id)
                {
                    p.add(
                        "tariffs",
                        format!(
                            "tariff {t} would be deleted, but service {} of client id {} still uses it; delete that service or give it another tariff in the same import",
                            s.id, s.client_id
                        ),
                    );
                }
            }
            if batch.len() < CHUNK {
                break;
            }
        }
    }
    Ok(del.map(|set| IdSet(set.into_iter().collect())))
}

/// Ids present in the bundle, read leniently from the raw records.
struct KnownIds {
    groups: HashSet<u64>,
    tariffs: HashSet<u64>,
    clients: HashSet<u64>,
}

fn raw_ids(raw: &[&RawValue]) -> HashSet<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    raw.iter()
        .filter_map(|r| serde_json::from_str::<IdOnly>(r.get()).ok())
        .map(|r| r.id)
        .collect()
}

fn check_records(
    store: &Store,
    b: &Bundle,
    pos: &Positions,
    known: &KnownIds,
    p: &mut Problems,
) -> Result<()> {
    let del = &b.deletions;
    check_ids(
        "invoice_groups",
        b.invoice_groups.iter().map(|r| r.id),
        &pos.invoice_groups,
        p,
    );
    check_ids("tariffs", b.tariffs.iter().map(|r| r.id), &pos.tariffs, p);
    check_ids("clients", b.clients.iter().map(|r| r.id), &pos.clients, p);
    let (groups, tariffs, clients) = (&known.groups, &known.tariffs, &known.clients);
    check_ids(
        "services",
        b.services.iter().map(|r| r.id),
        &pos.services,
        p,
    );
    check_ids(
        "messages",
        b.messages.iter().map(|r| r.id),
        &pos.messages,
        p,
    );
    check_ids(
        "invoices",
        b.invoices.iter().map(|r| r.id),
        &pos.invoices,
        p,
    );
    check_ids(
        "payments",
        b.payments.iter().map(|r| r.id),
        &pos.payments,
        p,
    );

    for (i, g) in b.invoice_groups.iter().enumerate() {
        let i = pos.invoice_groups[i];
        if g.name.trim().is_empty() {
            p.add(format!("invoice_groups[{i}].name"), "must not be empty");
        }
        if !g.supplier.email.is_empty() && !is_email(&g.supplier.email) {
            p.add(
                format!("invoice_groups[{i}].supplier.email"),
                "not an e-mail address",
            );
        }
    }
    for (i, t) in b.tariffs.iter().enumerate() {
        let i = pos.tariffs[i];
        if t.name.trim().is_empty() {
            p.add(format!("tariffs[{i}].name"), "must not be empty");
        }
    }
    let mut numbers: HashMap<&str, u64> = HashMap::new();
    let all_numbers: HashMap<&str, u64> = b
        .clients
        .iter()
        .map(|c| (c.number.as_str(), c.id))
        .collect();
    let mut usernames: HashMap<String, u64> = HashMap::new();
    for (i, c) in b.clients.iter().enumerate() {
        let i = pos.clients[i];
        let at = |f: &str| format!("clients[{i}].{f}");
        if c.number.trim().is_empty()
            || c.number.len() > 32
            || c.number.chars().any(char::is_whitespace)
        {
            p.add(at("number"), "must be 1 to 32 characters without spaces");
        } else if let Some(other) = numbers.insert(&c.number, c.id) {
            p.add(
                at("number"),
                format!(
                    "client number {} is also used by client id {other}",
                    c.number
                ),
            );
        } else if let Some(other) = store.client_by_number(&c.number)?
            && other.id != c.id
            && !del[CLIENTS].contains(other.id)
            && !b
                .clients
                .iter()
                .any(|x| x.id == other.id && x.number != c.number)
        {
            p.add(
                at("number"),
                format!(
                    "client number {} belongs to client id {} already",
                    c.number, other.id
                ),
            );
        }
        if let Some(u) = &c.username {
            if !valid_login_name(u) {
                p.add(
                    at("username"),
                    "must be 3 to 64 letters, digits or . _ - @, starting with a letter",
                );
            } else if let Some(owner) = all_numbers
                .get(u.as_str())
                .copied()
                .or(store
                    .client_by_number(u)?
                    .map(|o| o.id)
                    .filter(|o| !del[CLIENTS].contains(*o)))
                .filter(|owner| *owner != c.id)
            {
                // At login a client number wins, so this name could never log anyone in.
                p.add(
                    at("username"),
                    format!("{u} is the client number of client id {owner}"),
                );
            } else {
                let norm = Client::normalized_username(u);
                if let Some(other) = usernames.insert(norm.clone(), c.id) {
                    p.add(
                        at("username"),
                        format!("username {u} is also used by client id {other}"),
                    );
                } else if let Some(other) = store.client_by_username(&norm)?
                    && other.id != c.id
                    && !del[CLIENTS].contains(other.id)
                    // Fine only if this bundle gives the current owner another name.
                    && !b.clients.iter().any(|x| {
                        x.id == other.id
                            && x.username
                                .as_deref()
                                .is_some_and(|xu| Client::normalized_username(xu) != norm)
                    })
                {
                    p.add(
                        at("username"),
                        format!("username {u} belongs to client id {} already", other.id),
                    );
                }
            }
        }
        if c.name.trim().is_empty() {
            p.add(at("name"), "must not be empty");
        }
        if let Some(e) = &c.email
            && !e.is_empty()
            && !is_email(e)
        {
            p.add(at("email"), "not an e-mail address");
        }
        if let Some(l) = &c.language
            && !crate::i18n::is_supported(l)
        {
            let offered: Vec<&str> = crate::i18n::LANGUAGES.iter().map(|(c, _)| *c).collect();
            p.add(
                at("language"),
                format!("`{l}` is not offered; use one of {}", offered.join(", ")),
            );
        }
        if !exists::<InvoiceGroup>(groups, &del[GROUPS], store, c.invoice_group_id)? {
            p.add(
                at("invoice_group_id"),
                missing("invoice group", c.invoice_group_id, &del[GROUPS]),
            );
        }
    }
    let client_ok = |id: u64| exists::<Client>(clients, &del[CLIENTS], store, id);
    let no_client = |id: u64| missing("client", id, &del[CLIENTS]);
    for (i, s) in b.services.iter().enumerate() {
        let i = pos.services[i];
        if !client_ok(s.client_id)? {
            p.add(format!("services[{i}].client_id"), no_client(s.client_id));
        }
        if let Some(t) = s.tariff_id
            && !exists::<Tariff>(tariffs, &del[TARIFFS], store, t)?
        {
            p.add(
                format!("services[{i}].tariff_id"),
                missing("tariff", t, &del[TARIFFS]),
            );
        }
        if let Some(ip) = &s.ip_address
            && ip.parse::<IpAddr>().is_err()
        {
            p.add(
                format!("services[{i}].ip_address"),
                format!("`{ip}` is not an IP address"),
            );
        }
        if s.name.trim().is_empty() {
            p.add(format!("services[{i}].name"), "must not be empty");
        }
    }
    for (i, m) in b.messages.iter().enumerate() {
        let i = pos.messages[i];
        let at = |f: &str| format!("messages[{i}].{f}");
        if m.client_id.is_some() && m.invoice_group_id.is_some() {
            p.add(
                at("client_id"),
                "set client_id or invoice_group_id, not both (neither means global)",
            );
        }
        if let Some(c) = m.client_id
            && !client_ok(c)?
        {
            p.add(at("client_id"), no_client(c));
        }
        if let Some(g) = m.invoice_group_id
            && !exists::<InvoiceGroup>(groups, &del[GROUPS], store, g)?
        {
            p.add(
                at("invoice_group_id"),
                missing("invoice group", g, &del[GROUPS]),
            );
        }
        if let (Some(f), Some(u)) = (m.valid_from, m.valid_until)
            && u < f
        {
            p.add(at("valid_until"), "is before valid_from");
        }
        if m.subject.trim().is_empty() {
            p.add(at("subject"), "must not be empty");
        }
    }
    for (i, inv) in b.invoices.iter().enumerate() {
        let i = pos.invoices[i];
        if !client_ok(inv.client_id)? {
            p.add(format!("invoices[{i}].client_id"), no_client(inv.client_id));
        }
        if inv.due < inv.issued {
            p.add(format!("invoices[{i}].due"), "is before the issue date");
        }
        if inv.number.trim().is_empty() {
            p.add(format!("invoices[{i}].number"), "must not be empty");
        }
    }
    for (i, pay) in b.payments.iter().enumerate() {
        let i = pos.payments[i];
        if !client_ok(pay.client_id)? {
            p.add(format!("payments[{i}].client_id"), no_client(pay.client_id));
        }
    }
    check_totals(store, b, pos, p)
}

/// A client's running totals while the bundle is checked: `None` once a total no longer fits.
struct Totals {
    invoiced: Option<Money>,
    paid: Option<Money>,
    /// The client's last record in the bundle, named if the balance does not fit.
    last: String,
}

/// A client's totals, started by `start` the first time the client is met.
fn totals(
    clients: &mut HashMap<u64, Totals>,
    client_id: u64,
    start: impl Fn(u64) -> Result<Totals>,
) -> Result<&mut Totals> {
    Ok(match clients.entry(client_id) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => v.insert(start(client_id)?),
    })
}

/// Every client's invoices and payments (those stored and kept, plus the bundle's) must total
/// within what an amount can hold, and so must the balance, or the client's pages could not
/// show them. The first record that crosses the limit is named.
fn check_totals(store: &Store, b: &Bundle, pos: &Positions, p: &mut Problems) -> Result<()> {
    let replaced_invoices: HashSet<u64> = b.invoices.iter().map(|r| r.id).collect();
    let replaced_payments: HashSet<u64> = b.payments.iter().map(|r| r.id).collect();
    let stored =
        !store.backend().is_empty(Invoice::TREE)? || !store.backend().is_empty(Payment::TREE)?;
    let start = |client_id: u64| -> Result<Totals> {
        let (mut invoiced, mut paid) = (Some(Money(0)), Some(Money(0)));
        if stored {
            // Stored records the bundle does not replace stay, so they count.
            invoiced = Money::checked_sum(
                store
                    .invoices_of(client_id)?
                    .into_iter()
                    .filter(|r| {
                        !replaced_invoices.contains(&r.id) && !b.deletions[INVOICES].contains(r.id)
                    })
                    .map(|r| r.amount),
            );
            paid = Money::checked_sum(
                store
                    .payments_of(client_id)?
                    .into_iter()
                    .filter(|r| {
                        !replaced_payments.contains(&r.id) && !b.deletions[PAYMENTS].contains(r.id)
                    })
                    .map(|r| r.amount),
            );
        }
        Ok(Totals {
            invoiced,
            paid,
            last: String::new(),
        })
    };
    let mut clients: HashMap<u64, Totals> = HashMap::new();
    let beyond = |amount: Money| {
        if amount.0 < 0 {
            format!("less than {}", Money(i64::MIN).plain())
        } else {
            format!("more than {}", Money(i64::MAX).plain())
        }
    };
    for (i, inv) in b.invoices.iter().enumerate() {
        let path = format!("invoices[{}].amount", pos.invoices[i]);
        let t = totals(&mut clients, inv.client_id, start)?;
        if let Some(sum) = t.invoiced {
            t.invoiced = sum.checked_add(inv.amount);
            if t.invoiced.is_none() {
                p.add(
                    &path,
                    format!("the client's invoices would total {}", beyond(inv.amount)),
                );
            }
        }
        t.last = path;
    }
    for (i, pay) in b.payments.iter().enumerate() {
        let path = format!("payments[{}].amount", pos.payments[i]);
        let t = totals(&mut clients, pay.client_id, start)?;
        if let Some(sum) = t.paid {
            t.paid = sum.checked_add(pay.amount);
            if t.paid.is_none() {
                p.add(
                    &path,
                    format!("the client's payments would total {}", beyond(pay.amount)),
                );
            }
        }
        t.last = path;
    }
    let mut ids: Vec<&u64> = clients.keys().collect();
    ids.sort();
    for id in ids {
        let t = &clients[id];
        if let (Some(invoiced), Some(paid)) = (t.invoiced, t.paid)
            && paid.checked_sub(invoiced).is_none()
        {
            p.add(
                &t.last,
                "the client's balance (payments minus invoices) would be out of range",
            );
        }
    }
    Ok(())
}

/// A login name and a language the client chose in the portal are theirs: a bundle that leaves
/// them out (the billing system usually does not know them) keeps the stored ones. Also notes
/// each client whose `portal_access` the bundle changes.
fn keep_portal_fields(
    store: &Store,
    clients: &[Client],
    access_changes: &mut Vec<(u64, bool)>,
) -> Result<Vec<Client>> {
    clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let old = store.get_id::<Client>(c.id)?;
            if old.as_ref().is_none_or(|o| o.portal_access) != c.portal_access {
                access_changes.push((c.id, c.portal_access));
            }
            if let Some(old) = old {
                c.username = c.username.or(old.username);
                c.language = c.language.or(old.language);
            }
            Ok(c)
        })
        .collect()
}

/// Writes a checked bundle in chunks, calling `progress(done, total)` after each, and flushes.
pub fn write(
    store: &Store,
    b: &Bundle,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportReport> {
    write_with(store, b, &[], false, progress)
}

/// [`write`] with the plugins' client cleanups; with `dry_run`, counts what the import would
/// do and writes nothing. Deletions come first: each batch of clients goes with all of their
/// dependants in one transaction. Everything is flushed before this returns.
pub fn write_with(
    store: &Store,
    b: &Bundle,
    cleanups: &[(&'static str, crate::registry::ClientCleanup)],
    dry_run: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportReport> {
    let apply = !dry_run;
    if apply {
        delete_planned(store, &b.deletions, cleanups)?;
    }
    let total = b.len();
    let mut done = 0;
    fn put_all<R: Record>(
        store: &Store,
        items: &[R],
        apply: bool,
        done: &mut usize,
        total: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Changes> {
        let mut sum = Changes::default();
        for chunk in items.chunks(CHUNK) {
            let c = store.upsert_many(chunk, apply)?;
            sum.created += c.created;
            sum.updated += c.updated;
            sum.unchanged += c.unchanged;
            *done += chunk.len();
            progress(*done, total);
        }
        Ok(sum)
    }
    let mut access_changes = Vec::new();
    let clients = keep_portal_fields(store, &b.clients, &mut access_changes)?;
    let report = ImportReport {
        records: total,
        changes: [
            put_all(store, &b.invoice_groups, apply, &mut done, total, progress)?,
            put_all(store, &b.tariffs, apply, &mut done, total, progress)?,
            put_all(store, &clients, apply, &mut done, total, progress)?,
            put_all(store, &b.services, apply, &mut done, total, progress)?,
            put_all(store, &b.messages, apply, &mut done, total, progress)?,
            put_all(store, &b.invoices, apply, &mut done, total, progress)?,
            put_all(store, &b.payments, apply, &mut done, total, progress)?,
        ],
        deleted: b.deletions.each_ref().map(IdSet::len),
        access_changes,
        dry_run,
    };
    if apply {
        // A client the billing system cuts off loses their sessions, links and link mails now,
        // with the same flush, not at their next request. (The session guard, the login and
        // the link pages check `portal_access` too, so nothing slips in between the writes.)
        for (id, _) in report.access_changes.iter().filter(|(_, access)| !access) {
            store.write_unflushed(|tx| crate::access::cut_off_in(tx, *id).map(|_| ()))?;
        }
        store.flush()?;
    }
    Ok(report)
}

/// Deletes what [`plan_deletions`] planned (unflushed; the import flushes at its end).
fn delete_planned(
    store: &Store,
    del: &[IdSet; 7],
    cleanups: &[(&'static str, crate::registry::ClientCleanup)],
) -> Result<()> {
    // Mail queued for deleted clients, found in one pass over the outbox.
    let mut mail: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    if !del[CLIENTS].is_empty() {
        for e in store.all_lenient::<crate::mail::OutboxEntry>()? {
            if let Some(c) = e.job.client_id()
                && del[CLIENTS].contains(c)
            {
                mail.entry(c).or_default().push(e.key());
            }
        }
    }
    for chunk in del[CLIENTS].0.chunks(CLIENTS_PER_TX) {
        store.write_unflushed(|tx| {
            for &c in chunk {
                delete_client_in(store, tx, c, del, mail.get(&c), cleanups)?;
            }
            Ok(())
        })?;
    }
    // What is left: records deleted by name or by --sync whose owner stays.
    for k in [PAYMENTS, INVOICES, MESSAGES, SERVICES, TARIFFS, GROUPS] {
        for chunk in del[k].0.chunks(CHUNK) {
            store.write_unflushed(|tx| {
                for &id in chunk {
                    delete_record_in(tx, k, id)?;
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn delete_record_in(tx: &mut WriteTx<'_>, k: usize, id: u64) -> Result<bool> {
    let key = id_key(id);
    match k {
        GROUPS => tx.delete::<InvoiceGroup>(&key),
        TARIFFS => tx.delete::<Tariff>(&key),
        CLIENTS => tx.delete::<Client>(&key),
        SERVICES => tx.delete::<Service>(&key),
        MESSAGES => tx.delete::<Message>(&key),
        INVOICES => tx.delete::<Invoice>(&key),
        _ => tx.delete::<Payment>(&key),
    }
}

/// Deletes a client with everything that hangs on them, inside the caller's transaction: the
/// dependants the plan deletes (a dependant the bundle moves to another client stays), their
/// password, lockout, operator block, sessions, password links, queued mail and what plugins
/// keep about them.
fn delete_client_in(
    store: &Store,
    tx: &mut WriteTx<'_>,
    c: u64,
    del: &[IdSet; 7],
    mail: Option<&Vec<Vec<u8>>>,
    cleanups: &[(&'static str, crate::registry::ClientCleanup)],
) -> Result<()> {
    let key = id_key(c);
    for (k, index) in CLIENT_DEPENDANTS {
        for record_key in tx.index_record_keys(index, &key)? {
            if let Ok(id) = <[u8; 8]>::try_from(record_key.as_slice()).map(u64::from_be_bytes)
                && del[k].contains(id)
            {
                delete_record_in(tx, k, id)?;
            }
        }
    }
    tx.delete::<Client>(&key)?;
    tx.delete::<crate::auth::Credential>(&key)?;
    tx.delete::<crate::lockout::LoginFailures>(&key)?;
    tx.delete::<crate::access::AccessBlock>(&key)?;
    crate::auth::end_sessions_in(tx, c, None)?;
    crate::passwords::revoke_client_tokens(tx, c)?;
    crate::mail::forget_client_in(tx, c, mail.map_or(&[][..], Vec::as_slice))?;
    crate::plugin::clean_client_in(store, tx, cleanups, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "invoice_groups": [{"id": 1, "name": "Main"}],
      "clients": [
        {"id": 10, "number": "1001", "name": "Alice", "invoice_group_id": 1, "email": "a@x.example"},
        {"id": 11, "number": "1002", "name": "Bob", "invoice_group_id": 1}
      ],
      "invoices": [{"id": 5, "client_id": 10, "number": "F1", "issued": "2026-01-01", "due": "2026-01-15", "amount": "10.5"}]
    }"#;

    #[test]
    fn good_bundle_imports_idempotently() {
        let store = Store::in_memory();
        let b = check(&store, GOOD).expect("valid");
        write(&store, &b, &mut |_, _| {}).expect("write");
        let b = check(&store, GOOD).expect("still valid against its own data");
        let r = write(&store, &b, &mut |_, _| {}).expect("write again");
        assert_eq!(r.total(), 4);
        assert_eq!(store.count::<Client>().expect("count"), 2);
        assert_eq!(store.invoices_of(10).expect("invoices").len(), 1);
    }

    #[test]
    fn bad_records_are_reported_with_paths_and_change_nothing() {
        let store = Store::in_memory();
        let bad = r#"{
          "invoice_groups": [{"id": 1, "name": "Main"}],
          "clients": [
            {"id": 10, "number": "1001", "name": "Alice", "invoice_group_id": 1, "email": "not-mail"},
            {"id": 11, "number": "1001", "name": "Bob", "invoice_group_id": 9}
          ],
          "services": [{"id": 1, "client_id": 10, "kind": "internet", "name": "Net", "ip_address": "10.0.0.300"}]
        }"#;
        let e = check(&store, bad).unwrap_err().to_string();
        assert!(e.contains("clients[0].email: not an e-mail address"), "{e}");
        assert!(
            e.contains("clients[1].number: client number 1001 is also used"),
            "{e}"
        );
        assert!(
            e.contains("clients[1].invoice_group_id: no invoice group with id 9"),
            "{e}"
        );
        assert!(e.contains("services[0].ip_address"), "{e}");
        assert_eq!(store.count::<Client>().expect("count"), 0);
    }

    #[test]
    fn type_errors_name_the_field() {
        let store = Store::in_memory();
        let bad =
            r#"{"clients": [{"id": 1, "number": "1", "name": "A", "invoice_group_id": "x"}]}"#;
        let e = check(&store, bad).unwrap_err().to_string();
        assert!(
            e.contains("clients[0].invoice_group_id: invalid type"),
            "{e}"
        );
        let bad = r#"{"clients": [{"id": 1, "number": "1", "name": "A", "invoice_group_id": 1, "nmae": 2}]}"#;
        let e = check(&store, bad).unwrap_err().to_string();
        assert!(e.contains("clients[0]") && e.contains("nmae"), "{e}");
    }

    #[test]
    fn a_changed_client_number_moves_its_index() {
        let store = Store::in_memory();
        let b = check(&store, GOOD).expect("valid");
        write(&store, &b, &mut |_, _| {}).expect("write");
        let renumbered = GOOD.replace("\"1001\"", "\"2001\"");
        let b = check(&store, &renumbered).expect("valid");
        write(&store, &b, &mut |_, _| {}).expect("write");
        assert!(store.client_by_number("1001").expect("lookup").is_none());
        assert_eq!(
            store
                .client_by_number("2001")
                .expect("lookup")
                .map(|c| c.id),
            Some(10)
        );
    }

    #[test]
    fn problems_name_the_record_as_it_stands_in_the_file() {
        let store = Store::in_memory();
        let bad = r#"{
          "invoice_groups": [{"id": 1, "name": "Main"}],
          "clients": [
            {"id": 10, "number": "1001", "name": "A", "invoice_group_id": "x"},
            {"id": 11, "number": "1002", "name": "B", "invoice_group_id": 1, "email": "nope"}
          ],
          "invoices": [{"id": 1, "client_id": 10, "number": "F", "issued": "2026-13-01", "due": "2026-01-01", "amount": null}]
        }"#;
        let e = check(&store, bad).unwrap_err().to_string();
        assert!(e.contains("clients[1].email: not an e-mail address"), "{e}");
        assert!(!e.contains("clients[0].email"), "{e}");
        assert!(
            e.contains("invoices[0].issued: not a date: use YYYY-MM-DD"),
            "{e}"
        );
        let e = check(&store, "[1, 2]").unwrap_err().to_string();
        assert!(e.contains("one JSON object"), "{e}");
    }

    /// `n` invoices of client 10 with the given amounts, ids from `first_id`.
    fn invoices(first_id: u64, amounts: &[&str]) -> String {
        let list: Vec<String> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                format!(
                    r#"{{"id": {}, "client_id": 10, "number": "F{i}", "issued": "2026-01-01", "due": "2026-01-15", "amount": "{a}"}}"#,
                    first_id + i as u64
                )
            })
            .collect();
        format!(
            r#"{{"invoice_groups": [{{"id": 1, "name": "Main"}}],
              "clients": [{{"id": 10, "number": "1001", "name": "Alice", "invoice_group_id": 1}}],
              "invoices": [{}]}}"#,
            list.join(",")
        )
    }

    const HALF: &str = "50000000000000000.00";

    #[test]
    fn amounts_whose_total_would_overflow_are_refused_with_the_record() {
        let store = Store::in_memory();
        let e = check(&store, &invoices(1, &["1.00", HALF, "2.00", HALF]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the bundle was rejected and nothing was changed; 1 problem(s):\n  invoices[3].amount: the client's invoices would total more than 92233720368547758.07"
        );
        let negative = format!("-{HALF}");
        let e = check(&store, &invoices(1, &[&negative, &negative]))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("invoices[1].amount: the client's invoices would total less than -92233720368547758.08"),
            "{e}"
        );
        // Stored invoices that stay count; one the bundle replaces does not.
        write(
            &store,
            &check(&store, &invoices(1, &[HALF])).expect("valid"),
            &mut |_, _| {},
        )
        .expect("write");
        let e = check(&store, &invoices(2, &[HALF]))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("invoices[0].amount: the client's invoices would total more than 92233720368547758.07"),
            "{e}"
        );
        check(&store, &invoices(1, &[HALF])).expect("replaces invoice 1");
        // Payments far above the invoices: the balance would not fit.
        let e = check(
            &store,
            &invoices(1, &[&negative]).replace(
                r#""invoices""#,
                &format!(
                    r#""payments": [{{"id": 1, "client_id": 10, "date": "2026-01-02", "amount": "{HALF}", "method": "bank"}}], "invoices""#
                ),
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("payments[0].amount: the client's balance (payments minus invoices) would be out of range"),
            "{e}"
        );
    }

    #[test]
    fn problems_quoting_the_file_do_not_carry_control_characters() {
        let store = Store::in_memory();
        let bad = GOOD.replace(
            r#""name": "Bob""#,
            r#""name": "Bob", "language": "\u001b[2J""#,
        );
        let e = check(&store, &bad).unwrap_err().to_string();
        assert!(
            e.contains("clients[1].language: `\\x1b[2J` is not offered"),
            "{e}"
        );
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn portal_chosen_login_names_and_languages_survive_an_import() {
        let store = Store::in_memory();
        write(&store, &check(&store, GOOD).expect("valid"), &mut |_, _| {}).expect("write");
        let mut alice = store.client_by_number("1001").expect("q").expect("alice");
        alice.username = Some("ally".into());
        alice.language = Some("cs".into());
        store.write(|tx| tx.put(&alice)).expect("portal change");
        write(&store, &check(&store, GOOD).expect("valid"), &mut |_, _| {}).expect("re-import");
        let alice = store.client_by_number("1001").expect("q").expect("alice");
        assert_eq!(
            (alice.username.as_deref(), alice.language.as_deref()),
            (Some("ally"), Some("cs"))
        );
        // Another client may not take the name meanwhile.
        let taken = GOOD.replace(r#""name": "Bob""#, r#""name": "Bob", "username": "ALLY""#);
        let e = check(&store, &taken).unwrap_err().to_string();
        assert!(e.contains("belongs to client id 10"), "{e}");
        let number = GOOD.replace(r#""name": "Bob""#, r#""name": "Bob", "username": "1001""#);
        assert!(
            check(&store, &number).is_err(),
            "a username may not be another client's number"
        );
    }

    /// Two clients of group 1, each with a service, an invoice, a payment and a message.
    const TWO: &str = r#"{
      "invoice_groups": [{"id": 1, "name": "Main"}, {"id": 2, "name": "Other"}],
      "tariffs": [{"id": 1, "name": "Net"}],
      "clients": [
        {"id": 10, "number": "1001", "name": "Alice", "invoice_group_id": 1},
        {"id": 11, "number": "1002", "name": "Bob", "invoice_group_id": 1}
      ],
      "services": [
        {"id": 1, "client_id": 10, "kind": "internet", "name": "Net", "tariff_id": 1},
        {"id": 2, "client_id": 11, "kind": "internet", "name": "Net"}
      ],
      "messages": [
        {"id": 1, "client_id": 10, "subject": "To Alice"},
        {"id": 2, "client_id": 11, "subject": "To Bob"},
        {"id": 3, "invoice_group_id": 2, "subject": "To group 2"},
        {"id": 4, "subject": "To all"}
      ],
      "invoices": [
        {"id": 1, "client_id": 10, "number": "F1", "issued": "2026-01-01", "due": "2026-01-15", "amount": "10"},
        {"id": 2, "client_id": 11, "number": "F2", "issued": "2026-01-01", "due": "2026-01-15", "amount": "20"}
      ],
      "payments": [
        {"id": 1, "client_id": 10, "date": "2026-01-02", "amount": "10", "method": "bank"},
        {"id": 2, "client_id": 11, "date": "2026-01-02", "amount": "20", "method": "bank"}
      ]
    }"#;

    fn import_opts(store: &Store, json: &str, sync: bool, dry_run: bool) -> Result<ImportReport> {
        let b = check_with(store, json, ImportOptions { sync, dry_run })?;
        write_with(store, &b, &[], dry_run, &mut |_, _| {})
    }

    fn counts(store: &Store) -> [usize; 7] {
        [
            store.count::<InvoiceGroup>().expect("count"),
            store.count::<Tariff>().expect("count"),
            store.count::<Client>().expect("count"),
            store.count::<Service>().expect("count"),
            store.count::<Message>().expect("count"),
            store.count::<Invoice>().expect("count"),
            store.count::<Payment>().expect("count"),
        ]
    }

    #[test]
    fn the_report_counts_created_updated_and_unchanged() {
        let store = Store::in_memory();
        let r = import_opts(&store, TWO, false, false).expect("first");
        assert_eq!(
            r.changes[CLIENTS],
            Changes {
                created: 2,
                updated: 0,
                unchanged: 0
            }
        );
        assert_eq!(r.changes[MESSAGES].created, 4);
        let again = TWO.replace("\"Bob\"", "\"Robert\"");
        let r = import_opts(&store, &again, false, false).expect("again");
        assert_eq!(
            r.changes[CLIENTS],
            Changes {
                created: 0,
                updated: 1,
                unchanged: 1
            }
        );
        assert_eq!(
            r.changes[INVOICES],
            Changes {
                created: 0,
                updated: 0,
                unchanged: 2
            }
        );
        assert_eq!(r.deleted, [0; 7]);
    }

    #[test]
    fn sync_deletes_a_client_absent_from_the_bundle_with_their_dependants() {
        let store = Store::in_memory();
        import_opts(&store, TWO, false, false).expect("first");
        // Bob (11) is gone from the clients; the other sections are left out of the bundle.
        let only_alice = r#"{"clients": [{"id": 10, "number": "1001", "name": "Alice", "invoice_group_id": 1}]}"#;
        let before = counts(&store);
        let dry = import_opts(&store, only_alice, true, true).expect("dry run");
        assert_eq!(counts(&store), before, "a dry run changes nothing");
        assert_eq!(dry.deleted, [0, 0, 1, 1, 1, 1, 1]);
        let r = import_opts(&store, only_alice, true, false).expect("sync");
        assert_eq!(r.deleted, dry.deleted);
        assert_eq!(
            r.changes[CLIENTS],
            Changes {
                created: 0,
                updated: 0,
                unchanged: 1
            }
        );
        assert_eq!(counts(&store), [2, 1, 1, 1, 3, 1, 1]);
        assert!(store.client_by_number("1002").expect("q").is_none());
        assert!(store.invoices_of(11).expect("q").is_empty());
        assert!(store.services_of(11).expect("q").is_empty());
        // Without --sync the same bundle deletes nothing.
        import_opts(&store, TWO, false, false).expect("back");
        let r = import_opts(&store, only_alice, false, false).expect("upsert");
        assert_eq!(r.deleted, [0; 7]);
    }

    #[test]
    fn explicit_deletions_are_checked_and_take_dependants() {
        let store = Store::in_memory();
        import_opts(&store, TWO, false, false).expect("first");
        let e = import_opts(
            &store,
            r#"{"delete": {"invoices": [1, 99], "clients": [10], "bills": [1]},
                "invoices": [{"id": 1, "client_id": 11, "number": "F1", "issued": "2026-01-01", "due": "2026-01-15", "amount": "10"}]}"#,
            false,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "delete.bills: not a collection; use one of invoice_groups, tariffs, clients"
            ),
            "{e}"
        );
        assert!(
            e.contains("delete.invoices[0]: invoice 1 is also in invoices"),
            "{e}"
        );
        assert!(
            e.contains("delete.invoices[1]: no invoice with id 99 is stored"),
            "{e}"
        );
        let e = import_opts(
            &store,
            r#"{"delete": {"clients": [10]},
                "payments": [{"id": 9, "client_id": 10, "date": "2026-01-02", "amount": "1", "method": "cash"}]}"#,
            false,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("payments[0].client_id: client 10 is deleted by this import"),
            "{e}"
        );
        let e = import_opts(
            &store,
            r#"{"delete": {"invoice_groups": [1], "tariffs": [1]}}"#,
            false,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "invoice group 1 would be deleted, but client 1001 (id 10) still belongs to it"
            ),
            "{e}"
        );
        assert!(
            e.contains("tariff 1 would be deleted, but service 1 of client id 10 still uses it"),
            "{e}"
        );
        assert_eq!(
            counts(&store),
            [2, 1, 2, 2, 4, 2, 2],
            "refused bundles change nothing"
        );

        // A dependant the bundle moves to another client stays.
        let r = import_opts(
            &store,
            r#"{"delete": {"clients": [10], "invoice_groups": [2]},
                "invoices": [{"id": 1, "client_id": 11, "number": "F1", "issued": "2026-01-01", "due": "2026-01-15", "amount": "10"}]}"#,
            false,
            false,
        )
        .expect("delete");
        assert_eq!(r.deleted, [1, 0, 1, 1, 2, 0, 1]);
        assert_eq!(
            r.changes[INVOICES],
            Changes {
                created: 0,
                updated: 1,
                unchanged: 0
            }
        );
        assert_eq!(counts(&store), [1, 1, 1, 1, 2, 2, 1]);
        assert_eq!(store.invoices_of(11).expect("q").len(), 2);
    }
}
