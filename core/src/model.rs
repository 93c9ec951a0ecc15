//! The ISP's data as the portal keeps it: invoice groups, tariffs, clients, services, messages,
//! invoices and payments. Ids are the billing system's own ids, so imports upsert by them.
//! Credentials live apart from clients (see `auth`) so a client record can go into a template.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::store::{Record, id_key, index_key};

pub mod trees {
    pub const CLIENTNUMBER_CLIENTID: &str = "clientnumber_clientid";
    pub const USERNAME_CLIENTID: &str = "username_clientid";
    pub const EMAIL_CLIENTIDS: &str = "email_clientids";
    pub const INVOICEGROUPID_CLIENTIDS: &str = "invoicegroupid_clientids";
    pub const CLIENTID_SERVICEIDS: &str = "clientid_serviceids";
    pub const CLIENTID_MESSAGEIDS: &str = "clientid_messageids";
    pub const INVOICEGROUPID_MESSAGEIDS: &str = "invoicegroupid_messageids";
    pub const GLOBAL_MESSAGEIDS: &str = "global_messageids";
    pub const CLIENTID_INVOICEIDS: &str = "clientid_invoiceids";
    pub const CLIENTID_PAYMENTIDS: &str = "clientid_paymentids";
}

/// Another client has the wanted login name (or it is another client's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginNameTaken;

/// Owner key of the global-messages index.
pub const GLOBAL_OWNER: &[u8] = b"global";

/// An amount in hundredths of the currency unit. Read from a JSON number or string with at most
/// two decimals ("1234.5", 1234.50, "-12"); written as a string such as "1234.50".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(pub i64);

impl Money {
    pub fn parse(s: &str) -> Option<Money> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let frac: i64 = format!("{frac:0<2}").parse().ok()?;
        let cents = whole.checked_mul(100)?.checked_add(frac)?;
        Some(Money(if neg { -cents } else { cents }))
    }

    /// The sum, or `None` when it does not fit (amounts never wrap).
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The difference, or `None` when it does not fit.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// The total of many amounts, or `None` when it (or any running total) does not fit.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money(0), |total, m| total.checked_add(m))
    }

    /// Plain form with two decimals and a dot, as used in data files.
    pub fn plain(&self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Human form for a language: thousands grouped, the language's decimal mark.
    pub fn display(&self, lang: &str) -> String {
        let plain = self.plain();
        let (whole, frac) = plain.split_once('.').unwrap_or((&plain, "00"));
        let (sign, whole) = match whole.strip_prefix('-') {
            Some(w) => ("-", w),
            None => ("", whole),
        };
        let (group, mark) = if lang == "cs" {
            ('\u{a0}', ',')
        } else {
            (',', '.')
        };
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}{mark}{frac}")
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.plain())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let text = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected an amount such as \"1234.50\" or 1234.5, found {other}"
                )));
            }
        };
        Money::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not an amount (digits, optional minus, at most two decimals)"
            ))
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub zip: String,
    pub country: String,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.street.is_empty() && self.city.is_empty() && self.zip.is_empty()
    }
}

/// The supplier's contact details printed in the portal footer for clients of the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupplierContact {
    pub name: String,
    pub address: Address,
    /// Company registration number (IČ).
    pub company_id: String,
    /// VAT number (DIČ).
    pub vat_id: String,
    pub email: String,
    pub phone: String,
    pub web: String,
    pub bank_account: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceGroup {
    pub id: u64,
    pub name: String,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default)]
    pub supplier: SupplierContact,
}

fn default_currency() -> String {
    "CZK".into()
}

impl Record for InvoiceGroup {
    const TREE: &'static str = "invoicegroups";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
}

/// One fair-use step: past `data_gb` in a month the speed drops to the given rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FupLimit {
    pub data_gb: u32,
    pub download_kbps: u32,
    pub upload_kbps: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub download_kbps: u32,
    #[serde(default)]
    pub upload_kbps: u32,
    #[serde(default)]
    pub price: Money,
    #[serde(default)]
    pub fup_limits: Vec<FupLimit>,
    /// "Do not show transferred data and FUP in the Client portal".
    #[serde(default)]
    pub hide_traffic_in_portal: bool,
}

impl Record for Tariff {
    const TREE: &'static str = "tariffs";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub id: u64,
    /// The number the ISP gives the client; always a valid login.
    pub number: String,
    /// Optional custom login name.
    #[serde(default)]
    pub username: Option<String>,
    pub name: String,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub mailing_address: Address,
    /// Where invoices go when it differs from the mailing address.
    #[serde(default)]
    pub invoicing_address: Option<Address>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    pub invoice_group_id: u64,
    /// `en`, `cs`, ... or none to follow the browser.
    #[serde(default)]
    pub language: Option<String>,
    /// The billing system's say on portal access: `false` disables the client like
    /// `portico client disable` does, until an import gives `true` (or leaves it out). The
    /// operator's own block is kept apart (see `access`).
    #[serde(default = "yes")]
    pub portal_access: bool,
}

/// What plugins, scripts and hooks see of a client: no credential of any kind.
impl From<&Client> for portico_plugin_sdk::protocol::ClientView {
    fn from(c: &Client) -> Self {
        portico_plugin_sdk::protocol::ClientView {
            id: c.id,
            number: c.number.clone(),
            username: c.username.clone(),
            name: c.name.clone(),
            company: c.company.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            mobile: c.mobile.clone(),
            invoice_group_id: c.invoice_group_id,
            language: c.language.clone(),
        }
    }
}

impl Client {
    pub fn normalized_username(name: &str) -> String {
        name.trim().to_lowercase()
    }
}

impl Record for Client {
    const TREE: &'static str = "clients";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![
            (
                trees::CLIENTNUMBER_CLIENTID,
                index_key(self.number.as_bytes(), &self.key()),
            ),
            (
                trees::INVOICEGROUPID_CLIENTIDS,
                index_key(&id_key(self.invoice_group_id), &self.key()),
            ),
        ];
        if let Some(u) = &self.username {
            let u = Client::normalized_username(u);
            out.push((
                trees::USERNAME_CLIENTID,
                index_key(u.as_bytes(), &self.key()),
            ));
        }
        if let Some(e) = self.email.as_deref().filter(|e| !e.is_empty()) {
            let e = e.trim().to_lowercase();
            out.push((trees::EMAIL_CLIENTIDS, index_key(e.as_bytes(), &self.key())));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Internet,
    Iptv,
    Voip,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: u64,
    pub client_id: u64,
    pub kind: ServiceKind,
    pub name: String,
    #[serde(default)]
    pub tariff_id: Option<u64>,
    #[serde(default)]
    pub ip_address: Option<String>,
    /// "Client configuration via DHCP": the portal shows "Via DHCP" instead of an address.
    #[serde(default)]
    pub dhcp: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub since: Option<NaiveDate>,
}

fn yes() -> bool {
    true
}

impl Record for Service {
    const TREE: &'static str = "services";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![(
            trees::CLIENTID_SERVICEIDS,
            index_key(&id_key(self.client_id), &self.key()),
        )]
    }
}

/// Who a message is for: one client, one invoice group, or everybody (neither set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: u64,
    #[serde(default)]
    pub client_id: Option<u64>,
    #[serde(default)]
    pub invoice_group_id: Option<u64>,
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

impl Message {
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_until.is_none_or(|u| day <= u)
    }
}

impl Record for Message {
    const TREE: &'static str = "messages";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        let owner = match (self.client_id, self.invoice_group_id) {
            (Some(c), _) => (trees::CLIENTID_MESSAGEIDS, id_key(c)),
            (None, Some(g)) => (trees::INVOICEGROUPID_MESSAGEIDS, id_key(g)),
            (None, None) => (trees::GLOBAL_MESSAGEIDS, GLOBAL_OWNER.to_vec()),
        };
        vec![(owner.0, index_key(&owner.1, &self.key()))]
    }
}

/// A file the operator offers on the Files tab (`portico files add`), copied into the data
/// folder's `files/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorFile {
    pub id: u64,
    pub title: String,
    /// The safe name it is downloaded as.
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Its file name under the data folder's `files/`.
    pub stored_as: String,
    /// Unix seconds.
    pub added: i64,
    /// Shown only to this invoice group's clients; `None`: to everyone.
    #[serde(default)]
    pub invoice_group_id: Option<u64>,
}

impl Record for OperatorFile {
    const TREE: &'static str = "operatorfiles";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
}

/// An operator's link in the portal menu (`portico menu add`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomButton {
    pub id: u64,
    /// The label in English (and in any language without its own).
    pub label: String,
    /// The label in Czech, when it differs.
    #[serde(default)]
    pub label_cs: Option<String>,
    /// An http(s) or mailto address.
    pub url: String,
    /// Opens in a new browser tab.
    #[serde(default)]
    pub new_tab: bool,
    /// Position in the menu among the tabs (Information 10, Services 20, Password 80, Webmail
    /// 900); lower comes first.
    pub order: i32,
    /// Shown only to this invoice group's clients; `None`: to everyone.
    #[serde(default)]
    pub invoice_group_id: Option<u64>,
}

impl Record for CustomButton {
    const TREE: &'static str = "custombuttons";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoice {
    pub id: u64,
    pub client_id: u64,
    pub number: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub amount: Money,
    #[serde(default)]
    pub paid: bool,
}

impl Record for Invoice {
    const TREE: &'static str = "invoices";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![(
            trees::CLIENTID_INVOICEIDS,
            index_key(&id_key(self.client_id), &self.key()),
        )]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Cash,
    Bank,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub id: u64,
    pub client_id: u64,
    pub date: NaiveDate,
    pub amount: Money,
    pub method: PaymentMethod,
    #[serde(default)]
    pub reference: Option<String>,
}

impl Record for Payment {
    const TREE: &'static str = "payments";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
    fn index_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![(
            trees::CLIENTID_PAYMENTIDS,
            index_key(&id_key(self.client_id), &self.key()),
        )]
    }
}

/// Queries the pages need, kept beside the model so every page asks the same way.
impl crate::store::Store {
    pub fn client_by_number(&self, number: &str) -> crate::Result<Option<Client>> {
        Ok(self
            .by_index::<Client>(trees::CLIENTNUMBER_CLIENTID, number.as_bytes())?
            .into_iter()
            .next())
    }

    pub fn client_by_username(&self, username: &str) -> crate::Result<Option<Client>> {
        let u = Client::normalized_username(username);
        Ok(self
            .by_index::<Client>(trees::USERNAME_CLIENTID, u.as_bytes())?
            .into_iter()
            .next())
    }

    /// Every client with this e-mail address (households often share one).
    pub fn clients_by_email(&self, email: &str) -> crate::Result<Vec<Client>> {
        self.by_index(
            trees::EMAIL_CLIENTIDS,
            email.trim().to_lowercase().as_bytes(),
        )
    }

    pub fn services_of(&self, client_id: u64) -> crate::Result<Vec<Service>> {
        self.by_index(trees::CLIENTID_SERVICEIDS, &id_key(client_id))
    }

    pub fn invoices_of(&self, client_id: u64) -> crate::Result<Vec<Invoice>> {
        self.by_index(trees::CLIENTID_INVOICEIDS, &id_key(client_id))
    }

    pub fn payments_of(&self, client_id: u64) -> crate::Result<Vec<Payment>> {
        self.by_index(trees::CLIENTID_PAYMENTIDS, &id_key(client_id))
    }

    /// An invoice group, read once and kept until invoice groups change: every page of a
    /// client may show its supplier.
    pub fn invoice_group(&self, id: u64) -> crate::Result<std::sync::Arc<Option<InvoiceGroup>>> {
        self.shared(&format!("invoicegroup:{id}"), |store| {
            store.get_id::<InvoiceGroup>(id)
        })
    }

    /// Messages a client may see on `day`: their own, their invoice group's and global ones,
    /// newest (highest id) first. A message that cannot be read is logged and left out, so one
    /// bad record does not take the information page down for every client.
    pub fn messages_for(&self, client: &Client, day: NaiveDate) -> crate::Result<Vec<Message>> {
        let mut all: Vec<Message> =
            self.by_index_lenient(trees::CLIENTID_MESSAGEIDS, &id_key(client.id))?;
        // The group's and the global messages are the same for many clients: read once.
        let group = client.invoice_group_id;
        let shared = self.shared(&format!("messages:group:{group}"), |store| {
            let mut shared: Vec<Message> =
                store.by_index_lenient(trees::INVOICEGROUPID_MESSAGEIDS, &id_key(group))?;
            shared
                .extend(store.by_index_lenient::<Message>(trees::GLOBAL_MESSAGEIDS, GLOBAL_OWNER)?);
            Ok(shared)
        })?;
        all.extend(shared.iter().cloned());
        all.retain(|m| m.is_valid_on(day));
        all.sort_by_key(|m| std::cmp::Reverse(m.id));
        Ok(all)
    }

    /// Changes fields of a client as stored now, in one transaction: a copy read earlier (by a
    /// page's guard) never overwrites what an import changed meanwhile. Returns the client as
    /// saved, or `None` when there is no such client.
    pub fn update_client(
        &self,
        id: u64,
        change: impl FnOnce(&mut Client),
    ) -> crate::Result<Option<Client>> {
        self.write(|tx| {
            let Some(mut client) = tx.get::<Client>(&id_key(id))? else {
                return Ok(None);
            };
            change(&mut client);
            tx.put(&client)?;
            Ok(Some(client))
        })
    }

    /// Gives a client a custom login name unless another client has it as login name or client
    /// number; checked and saved in one transaction, so two clients never both get one name.
    /// `Ok(Err(LoginNameTaken))` when it is taken, `Ok(Ok(None))` when the client is gone.
    pub fn claim_login_name(
        &self,
        id: u64,
        name: &str,
    ) -> crate::Result<Result<Option<Client>, LoginNameTaken>> {
        self.write(|tx| {
            let normalized = Client::normalized_username(name);
            for (index, owner) in [
                (trees::USERNAME_CLIENTID, normalized.as_bytes()),
                (trees::CLIENTNUMBER_CLIENTID, name.as_bytes()),
            ] {
                if let Some(other) = tx.by_index_first::<Client>(index, owner)?
                    && other.id != id
                {
                    return Ok(Err(LoginNameTaken));
                }
            }
            let Some(mut client) = tx.get::<Client>(&id_key(id))? else {
                return Ok(Ok(None));
            };
            client.username = Some(name.to_string());
            tx.put(&client)?;
            Ok(Ok(Some(client)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn message(id: u64, group: Option<u64>, subject: &str) -> Message {
        Message {
            id,
            client_id: None,
            invoice_group_id: group,
            subject: subject.into(),
            body: String::new(),
            valid_from: None,
            valid_until: None,
        }
    }

    /// Shared messages and invoice groups are read once and kept, but never past a write.
    #[test]
    fn shared_reads_follow_every_write() {
        let store = Store::in_memory();
        let client: Client = serde_json::from_value(serde_json::json!({
            "id": 7, "number": "7", "name": "Seven", "invoice_group_id": 1
        }))
        .expect("client");
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("day");
        let subjects = |store: &Store| -> Vec<String> {
            let messages = store.messages_for(&client, day).expect("messages");
            messages.into_iter().map(|m| m.subject).collect()
        };
        assert!(subjects(&store).is_empty());
        store
            .write(|tx| tx.put(&message(1, None, "global")))
            .expect("put");
        assert_eq!(subjects(&store), ["global"]);
        store
            .write(|tx| tx.put(&message(2, Some(1), "group")))
            .expect("put");
        store
            .write(|tx| tx.put(&message(3, Some(2), "other group")))
            .expect("put");
        assert_eq!(subjects(&store), ["group", "global"]);
        store
            .write(|tx| tx.put(&message(1, None, "changed")))
            .expect("put");
        assert_eq!(subjects(&store), ["group", "changed"]);
        store
            .write(|tx| tx.delete::<Message>(&id_key(2)).map(|_| ()))
            .expect("delete");
        assert_eq!(subjects(&store), ["changed"]);
        store
            .put_many(&[message(4, None, "bulk")])
            .expect("put_many");
        assert_eq!(subjects(&store), ["bulk", "changed"]);

        assert!(store.invoice_group(1).expect("group").is_none());
        let group = InvoiceGroup {
            id: 1,
            name: "Home".into(),
            currency: "CZK".into(),
            supplier: SupplierContact::default(),
        };
        store.write(|tx| tx.put(&group)).expect("put");
        let read = store.invoice_group(1).expect("group");
        assert_eq!(
            read.as_ref().as_ref().map(|g| g.name.as_str()),
            Some("Home")
        );
    }

    #[test]
    fn money_parses_and_prints() {
        assert_eq!(Money::parse("1234.5"), Some(Money(123450)));
        assert_eq!(Money::parse("-12"), Some(Money(-1200)));
        assert_eq!(Money::parse("0.05"), Some(Money(5)));
        assert_eq!(Money::parse("1.234"), None);
        assert_eq!(Money::parse("abc"), None);
        assert_eq!(Money::parse(".5"), None);
        assert_eq!(Money(123450).plain(), "1234.50");
        assert_eq!(Money(-5).plain(), "-0.05");
        assert_eq!(Money(123456789).display("en"), "1,234,567.89");
        assert_eq!(Money(-123456).display("cs"), "-1\u{a0}234,56");
    }
}
