//! # Plugin API v1: the stable surface of portico-core
//!
//! Everything a compiled-in feature plugin may touch is in this module, and nothing more:
//!
//! - **Registration**: [`Plugin`], [`Manifest`], [`Registrar`] (tabs, menu buttons, settings,
//!   routes under `/<id>/`, templates `<id>/<name>`, static files `/static/<id>/…`,
//!   translations, migrations, hooks by name, operator commands).
//! - **Its own store**: a [`Namespace`] of `<id>:` trees. A plugin cannot name core's trees or
//!   another plugin's: the prefix is added by the namespace, and tree names are plain words.
//! - **The client of the request**, read-only and without credentials: [`Page::client`] and
//!   [`Page::data`] (services with tariffs, invoices, payments, messages). No call on a page
//!   takes a client id.
//! - **Operator side**: commands get an [`OperatorCtx`], the one place that may look up any
//!   client, because an operator named them.
//! - Settings (its own, and core's read-only), translations, the clock, its own audit events
//!   and queueing an e-mail through the outbox.
//!
//! No credentials, sessions, password links, hasher, SMTP settings or raw store: those live in
//! `portico_core::internal`, which is not part of this API and not for plugins.
//!
//! A plugin that tries to reach the raw store does not compile:
//!
//! ```compile_fail
//! // The store module is internal to core; plugins only get a Namespace.
//! use portico_core::store::Store;
//! ```
//!
//! ```compile_fail
//! // A Namespace is made by the portal for the plugin it belongs to, never by a plugin.
//! fn steal(store: portico_core::internal::store::Store) -> portico_core::plugin::Namespace {
//!     portico_core::plugin::Namespace::new(store, "invoicing")
//! }
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::audit::{AuditEvent, AuditKind};
pub use crate::error::{Error, Result};
pub use crate::hooks::{
    ClientView, HookDef, ImportEvent, InfoPanelsEvent, LoginEvent, LogoutEvent, RenderEvent,
    SettingChangeEvent, Veto,
};
/// Message ids of a Fluent file, for a plugin's test that its languages define the same ones.
pub use crate::i18n::message_ids;
pub use crate::model::{
    Address, Client, FupLimit, Invoice, InvoiceGroup, Message, Money, Payment, PaymentMethod,
    Service, ServiceKind, SupplierContact, Tariff,
};
pub use crate::registry::{
    ClientCleanup, ImportSection, Manifest, MenuButton, MenuLink, OperatorCommand, Plugin,
    Registrar, ServiceButton, Tab, ViewerCtx,
};
pub use crate::settings::{Scope, SettingDef, SettingType, is_email, split_emails};
pub use crate::stamp::{show_date, show_time, show_time_seconds, stamp};
pub use crate::tasks::Task;
/// Safe file names, types and downloads (`Content-Disposition: attachment`).
pub use crate::web::download::{self, Download};
pub use crate::web::form_key::{is_form_key, new_form_key};
pub use crate::web::guards::{CheckedForm, CsrfField, FormRefused, SameOrigin};
pub use crate::web::page::{Page, PageHtml};
pub use crate::web::upload::{CheckedUpload, Upload, UploadRefused, UploadedFile};

use crate::portal::Portal;
use crate::store::{SEP, Store, WriteTx};

/// Longest tree name inside a namespace.
const MAX_TREE_NAME: usize = 64;

/// A plugin's own key-value store: trees named `<plugin id>:<tree>`. Values are JSON. Every
/// write is atomic and flushed before it returns.
#[derive(Clone)]
pub struct Namespace {
    store: Store,
    owner: String,
}

impl Namespace {
    pub(crate) fn new(store: Store, owner: &str) -> Self {
        Namespace {
            store,
            owner: owner.to_string(),
        }
    }

    /// The plugin this namespace belongs to.
    pub fn plugin_id(&self) -> &str {
        &self.owner
    }

    /// The stored name of one of the plugin's trees. Names are `[a-z0-9_-]{1,64}`, so a
    /// namespace cannot reach `core`'s trees or `<other>:` trees.
    fn tree(&self, name: &str) -> Result<String> {
        let ok = !name.is_empty()
            && name.len() <= MAX_TREE_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Invalid(format!(
                "plugin `{}`: `{name}` is not a tree name ([a-z0-9_-], at most {MAX_TREE_NAME}); a plugin has only its own trees",
                self.owner
            )));
        }
        Ok(format!("{}:{name}", self.owner))
    }

    /// One value, if present.
    pub fn get<T: DeserializeOwned>(&self, tree: &str, key: &[u8]) -> Result<Option<T>> {
        let tree = self.tree(tree)?;
        match self.store.get_raw(&tree, key)? {
            Some(bytes) => Ok(Some(decode(&tree, key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        tree: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>> {
        let tree = self.tree(tree)?;
        self.store
            .scan_raw(&tree, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let value = decode(&tree, &k, &v)?;
                Ok((k, value))
            })
            .collect()
    }

    /// Runs `f` with a transaction: everything it writes lands at once and is flushed before
    /// this returns; reads inside see the writes before them, and no other write runs in
    /// between, so a check and the change it allows (a quota, a single-use code) are one step.
    /// Do every change through `tx`: another write started inside `f` (`put`, `page.audit`,
    /// queueing mail) is refused with an error.
    pub fn write<R>(&self, f: impl FnOnce(&mut NamespaceTx<'_, '_>) -> Result<R>) -> Result<R> {
        self.store.write(|tx| f(&mut NamespaceTx { tx, ns: self }))
    }

    /// Writes one value (flushed).
    pub fn put<T: Serialize>(&self, tree: &str, key: &[u8], value: &T) -> Result<()> {
        self.write(|tx| tx.put(tree, key, value))
    }

    /// Removes one value (flushed).
    pub fn delete(&self, tree: &str, key: &[u8]) -> Result<()> {
        self.write(|tx| tx.delete(tree, key))
    }

    /// Bytes stored with [`NamespaceTx::put_bytes`] (a file), as they were.
    pub fn get_bytes(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tree = self.tree(tree)?;
        self.store.get_raw(&tree, key)
    }

    /// At most `limit` entries whose key starts with `prefix` and is at least `from`, in key
    /// order, as stored bytes (values written with [`NamespaceTx::put_bytes`]). A range of a
    /// time series is one call: `prefix` the series, `from` its first key.
    pub fn scan_bytes_from(
        &self,
        tree: &str,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tree = self.tree(tree)?;
        // The backend reads keys above `after`: the key just below `from` is `from` with its
        // trailing bytes decremented (keys of one series have the same length).
        let after = key_before(from);
        self.store
            .scan_limited_raw(&tree, prefix, after.as_deref(), limit)
    }

    /// The tasks this plugin filed for one client (open and done), oldest first.
    pub fn tasks_of_client(&self, client_id: u64) -> Result<Vec<Task>> {
        Ok(crate::tasks::all(&self.store)?
            .into_iter()
            .filter(|t| t.plugin == self.owner && t.client_id == client_id)
            .collect())
    }
}

/// The greatest key of the same length below `key` (`None` for all zero bytes).
fn key_before(key: &[u8]) -> Option<Vec<u8>> {
    let mut k = key.to_vec();
    for i in (0..k.len()).rev() {
        if k[i] > 0 {
            k[i] -= 1;
            for b in &mut k[i + 1..] {
                *b = 0xff;
            }
            return Some(k);
        }
    }
    None
}

fn decode<T: DeserializeOwned>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        tree: tree.to_string(),
        key: hex::encode(key),
        cause: e.to_string(),
    })
}

/// Changes to one namespace that land together.
pub struct NamespaceTx<'t, 's> {
    tx: &'t mut WriteTx<'s>,
    ns: &'t Namespace,
}

impl NamespaceTx<'_, '_> {
    pub fn get<T: DeserializeOwned>(&self, tree: &str, key: &[u8]) -> Result<Option<T>> {
        let tree = self.ns.tree(tree)?;
        match self.tx.raw_get(&tree, key)? {
            Some(bytes) => Ok(Some(decode(&tree, key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&mut self, tree: &str, key: &[u8], value: &T) -> Result<()> {
        let tree = self.ns.tree(tree)?;
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
        self.tx.set_raw(&tree, key.to_vec(), Some(bytes));
        Ok(())
    }

    pub fn delete(&mut self, tree: &str, key: &[u8]) -> Result<()> {
        let tree = self.ns.tree(tree)?;
        self.tx.set_raw(&tree, key.to_vec(), None);
        Ok(())
    }

    /// Bytes stored with [`NamespaceTx::put_bytes`], as this transaction sees them.
    pub fn get_bytes(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tree = self.ns.tree(tree)?;
        self.tx.raw_get(&tree, key)
    }

    /// Stores bytes as they are (a file the client uploaded), not as JSON.
    pub fn put_bytes(&mut self, tree: &str, key: &[u8], bytes: Vec<u8>) -> Result<()> {
        let tree = self.ns.tree(tree)?;
        self.tx.set_raw(&tree, key.to_vec(), Some(bytes));
        Ok(())
    }

    /// Files a task for an operator (`portico tasks list` shows it) in this transaction: it
    /// lands together with the plugin's own changes, or not at all. `id` and `plugin` are set
    /// here.
    pub fn file_task(&mut self, task: Task) -> Result<Task> {
        crate::tasks::file(self.tx, &self.ns.owner, task)
    }

    /// A task this plugin filed, as it is now (done or not).
    pub fn task(&self, id: u64) -> Result<Option<Task>> {
        Ok(crate::tasks::get_tx(self.tx, id)?.filter(|t| t.plugin == self.ns.owner))
    }

    /// Marks a task this plugin filed as done at `at` (RFC 3339), adding `why` to its note; a
    /// task that is done already, or another plugin's, is left as it is.
    pub fn finish_task(&mut self, id: u64, at: &str, why: &str) -> Result<()> {
        crate::tasks::finish(self.tx, &self.ns.owner, id, at, why)
    }

    /// The keys that start with `prefix`, as the tree stands in this transaction, in order.
    pub fn keys(&self, tree: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let tree = self.ns.tree(tree)?;
        self.tx.raw_keys(&tree, prefix)
    }

    /// Removes every entry whose key starts with `prefix` (as the tree stands in this
    /// transaction); returns how many went.
    pub fn delete_prefix(&mut self, tree: &str, prefix: &[u8]) -> Result<usize> {
        let tree = self.ns.tree(tree)?;
        let keys = self.tx.raw_keys(&tree, prefix)?;
        let n = keys.len();
        for k in keys {
            self.tx.set_raw(&tree, k, None);
        }
        Ok(n)
    }
}

/// Runs every plugin's [`ClientCleanup`] for a deleted client inside the caller's transaction.
pub(crate) fn clean_client_in(
    store: &Store,
    tx: &mut WriteTx<'_>,
    cleanups: &[(&'static str, crate::registry::ClientCleanup)],
    client_id: u64,
) -> Result<()> {
    for (owner, cleanup) in cleanups {
        let ns = Namespace::new(store.clone(), owner);
        cleanup(&mut NamespaceTx { tx, ns: &ns }, client_id)?;
    }
    Ok(())
}

/// Options of a plugin's operator command line: `--name value` (or `--name=value`) pairs,
/// `--flag`s and plain words, in the form every `portico` command takes them.
pub struct CommandArgs {
    /// The plain words, in order.
    pub words: Vec<String>,
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl CommandArgs {
    /// Splits `args`: names in `with_value` take a value, names in `flags` take none; another
    /// `--option` is refused with `usage`, as is an option given twice.
    pub fn parse(
        args: &[String],
        with_value: &[&str],
        flags: &[&str],
        usage: &str,
    ) -> Result<CommandArgs> {
        let mut out = CommandArgs {
            words: Vec::new(),
            values: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            if with_value.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| Error::Invalid(format!("{name} needs a value")))?,
                };
                if out.values.iter().any(|(n, _)| n == name) {
                    return Err(Error::Invalid(format!("{name} is given twice")));
                }
                out.values.push((name.to_string(), value));
            } else if flags.contains(&name) && inline.is_none() {
                out.flags.push(name.to_string());
            } else if name.starts_with("--") {
                return Err(Error::Invalid(format!("unknown option {name}\n{usage}")));
            } else {
                out.words.push(a.clone());
            }
        }
        Ok(out)
    }

    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `--flag` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

/// Big-endian bytes of an id, so keys sort in numeric order.
pub fn id_key(id: u64) -> Vec<u8> {
    crate::store::id_key(id)
}

/// Joins key parts with a byte that never occurs in UTF-8.
pub fn compound_key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(p);
    }
    out
}

/// A service with its tariff, as the client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceWithTariff {
    pub service: Service,
    pub tariff: Option<Tariff>,
}

/// Read-only views of core data for one client: the request's client on a page, or the client
/// an operator named.
pub struct ClientData<'a> {
    store: &'a Store,
    client: &'a Client,
    today: NaiveDate,
}

impl<'a> ClientData<'a> {
    pub(crate) fn new(store: &'a Store, client: &'a Client, today: NaiveDate) -> Self {
        ClientData {
            store,
            client,
            today,
        }
    }

    pub fn client(&self) -> &Client {
        self.client
    }

    pub fn invoice_group(&self) -> Result<Option<InvoiceGroup>> {
        self.store.get_id(self.client.invoice_group_id)
    }

    /// Every service of the client (active or not) with its tariff.
    pub fn services(&self) -> Result<Vec<ServiceWithTariff>> {
        self.store
            .services_of(self.client.id)?
            .into_iter()
            .map(|service| {
                let tariff = match service.tariff_id {
                    Some(t) => self.store.get_id::<Tariff>(t)?,
                    None => None,
                };
                Ok(ServiceWithTariff { service, tariff })
            })
            .collect()
    }

    pub fn invoices(&self) -> Result<Vec<Invoice>> {
        self.store.invoices_of(self.client.id)
    }

    pub fn payments(&self) -> Result<Vec<Payment>> {
        self.store.payments_of(self.client.id)
    }

    /// Messages the client may see today (their own, their group's, global), newest first.
    pub fn messages(&self) -> Result<Vec<Message>> {
        self.store.messages_for(self.client, self.today)
    }

    /// The audit events of the client's account (logins, failures, resets, plugins' events),
    /// newest first, at most `limit`. Events carry no password or token.
    pub fn audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        crate::audit::list(self.store, Some(self.client.id), None, limit)
    }

    /// Every document the portal holds about the client, also those not shown in the portal
    /// (`display_in_cp` off), newest first: what they are, not where their files lie.
    pub fn documents(&self) -> Result<Vec<ClientDocument>> {
        let mut docs: Vec<ClientDocument> = self
            .store
            .documents_of(self.client.id)?
            .into_iter()
            .map(|d| ClientDocument {
                id: d.id,
                title: d.title,
                date: d.date,
                shown_in_portal: d.display_in_cp,
            })
            .collect();
        docs.sort_by(|a, b| b.date.cmp(&a.date).then(b.id.cmp(&a.id)));
        Ok(docs)
    }

    /// The client's change of their contact data waiting for approval, or the last one an
    /// operator decided.
    pub fn data_change(&self) -> Result<Option<ClientDataChange>> {
        let Some(c) = self
            .store
            .get::<crate::data_change::PendingChange>(&id_key(self.client.id))?
        else {
            return Ok(None);
        };
        let when = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(crate::stamp::stamp);
        Ok(Some(ClientDataChange {
            id: c.id,
            requested: when(c.requested).unwrap_or_default(),
            status: match c.status {
                crate::data_change::ChangeStatus::Pending => "pending",
                crate::data_change::ChangeStatus::Approved => "approved",
                crate::data_change::ChangeStatus::Rejected => "rejected",
            },
            changes: serde_json::to_value(&c.changes)
                .map_err(|e| Error::Internal(e.to_string()))?,
            decided: c.decided.and_then(when),
            reason: c.reason,
        }))
    }
}

/// One of the client's documents, as [`ClientData::documents`] lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientDocument {
    pub id: u64,
    pub title: String,
    pub date: NaiveDate,
    pub shown_in_portal: bool,
}

/// A change of the client's contact data ([`ClientData::data_change`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientDataChange {
    pub id: u64,
    /// A stamp ([`stamp`]).
    pub requested: String,
    /// `pending`, `approved` or `rejected`.
    pub status: &'static str,
    /// The fields asked for, with their new values.
    pub changes: serde_json::Value,
    pub decided: Option<String>,
    pub reason: Option<String>,
}

/// Settings a plugin may read: its own and core's.
pub(crate) fn readable_setting(portal: &Portal, owner: &str, key: &str) -> bool {
    match portal.settings.definition(key) {
        Ok(def) => def.owner == owner || def.owner == "core",
        Err(_) => false,
    }
}

pub(crate) fn setting_value(
    portal: &Portal,
    owner: &str,
    key: &str,
    group: Option<u64>,
) -> serde_json::Value {
    if readable_setting(portal, owner, key) {
        portal.settings.value(key, group)
    } else {
        tracing::error!(
            plugin = owner,
            key,
            "a plugin asked for a setting that is neither its own nor core's"
        );
        serde_json::Value::Null
    }
}

/// Records a plugin's own audit event.
pub(crate) fn plugin_audit(
    portal: &Portal,
    owner: &str,
    client_id: Option<u64>,
    event: &str,
    detail: Option<String>,
) {
    let what: String = event.chars().take(64).collect();
    portal.audit(crate::audit::Audit {
        client_id,
        detail: Some(match detail {
            Some(d) => format!(
                "{owner}: {what}: {}",
                d.chars().take(512).collect::<String>()
            ),
            None => format!("{owner}: {what}"),
        }),
        ..crate::audit::Audit::new(crate::audit::AuditKind::Plugin)
    });
}

/// What an operator command of a plugin may use.
pub struct OperatorCtx<'a> {
    portal: &'a Portal,
    owner: &'a str,
    cwd: Option<std::path::PathBuf>,
    progress: Option<std::cell::RefCell<&'a mut dyn FnMut(usize, usize)>>,
}

impl<'a> OperatorCtx<'a> {
    pub(crate) fn new(portal: &'a Portal, owner: &'a str) -> Self {
        OperatorCtx {
            portal,
            owner,
            cwd: None,
            progress: None,
        }
    }

    /// A command's context with the operator's working folder and a progress display.
    pub(crate) fn for_command(
        portal: &'a Portal,
        owner: &'a str,
        cwd: Option<std::path::PathBuf>,
        progress: &'a mut dyn FnMut(usize, usize),
    ) -> Self {
        OperatorCtx {
            portal,
            owner,
            cwd,
            progress: Some(std::cell::RefCell::new(progress)),
        }
    }

    /// A path the operator typed, as the portal must open it: a relative path is taken from
    /// the folder the operator ran `portico` in (the portal runs as the same user on the same
    /// machine; the control socket makes sure of that).
    pub fn operator_path(&self, path: &str) -> std::path::PathBuf {
        let p = std::path::Path::new(path);
        match &self.cwd {
            Some(cwd) if p.is_relative() => cwd.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// Reports how far a long command is (`done` of `total` units, e.g. bytes of a file): the
    /// operator's terminal shows a progress bar. Cheap; call it as often as is handy.
    pub fn progress(&self, done: usize, total: usize) {
        if let Some(p) = &self.progress
            && let Ok(mut f) = p.try_borrow_mut()
        {
            (*f)(done, total);
        }
    }

    pub fn store(&self) -> Namespace {
        Namespace::new(self.portal.store.clone(), self.owner)
    }

    pub(crate) fn portal(&self) -> &Portal {
        self.portal
    }

    /// A link into the portal for mail: `ci_url` (else `ispadmin_server` +
    /// `/clientinterface/`) joined with `path` (`helpdesk/ticket/3`); `None` when neither
    /// setting is filled in. Never built from a request's Host header.
    pub fn portal_link(&self, path: &str) -> Option<String> {
        crate::mail::link_base(self.portal).map(|base| {
            format!(
                "{}/{}",
                base.trim_end_matches('/'),
                path.trim_start_matches('/')
            )
        })
    }

    /// Queues a plain-text e-mail to a client's own address (flushed): the outbox sends and
    /// retries it, and `mail queue` shows it under the client. Fails when the client has no
    /// e-mail address.
    pub fn queue_mail_to_client(&self, client: &Client, subject: &str, body: &str) -> Result<u64> {
        let to = client
            .email
            .clone()
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                Error::Invalid(format!("client {} has no e-mail address", client.number))
            })?;
        queue_mail(
            self.portal,
            self.owner,
            Some(client.id),
            &to,
            Some(client.name.clone()),
            subject,
            body,
        )
    }

    /// A setting (the plugin's own or core's) for an invoice group, or the global value.
    pub fn setting(&self, key: &str, group: Option<u64>) -> serde_json::Value {
        setting_value(self.portal, self.owner, key, group)
    }

    /// Sets one of the plugin's own settings (globally, or for an invoice group), checked as
    /// `portico settings set` checks it. For demo data; operators use `portico settings`.
    pub fn set_own_setting(&self, key: &str, group: Option<u64>, raw: &str) -> Result<()> {
        let own = self
            .portal
            .settings
            .definition(key)
            .is_ok_and(|d| d.owner == self.owner);
        if !own {
            return Err(Error::Invalid(format!(
                "`{key}` is not a setting of plugin `{}`",
                self.owner
            )));
        }
        self.portal.settings.set(key, group, raw).map(|_| ())
    }

    /// The client an operator named: client number, login name or `#id`.
    pub fn find_client(&self, who: &str) -> Result<Client> {
        crate::ops::find_client(self.portal, who)
    }

    /// The invoice group with this id, or an error naming the id when there is none (for
    /// commands that take `--invoice-group G`).
    pub fn invoice_group(&self, id: u64) -> Result<InvoiceGroup> {
        self.portal
            .store
            .get_id::<InvoiceGroup>(id)?
            .ok_or_else(|| Error::Invalid(format!("there is no invoice group {id}")))
    }

    /// The service with this id and its tariff (any client's: the operator named it), or
    /// `None` when there is none.
    pub fn service(&self, id: u64) -> Result<Option<ServiceWithTariff>> {
        let Some(service) = self.portal.store.get_id::<Service>(id)? else {
            return Ok(None);
        };
        let tariff = match service.tariff_id {
            Some(t) => self.portal.store.get_id::<Tariff>(t)?,
            None => None,
        };
        Ok(Some(ServiceWithTariff { service, tariff }))
    }

    /// The client with this id, if any.
    pub fn client_by_id(&self, id: u64) -> Result<Option<Client>> {
        self.portal.store.get_id::<Client>(id)
    }

    /// A message with arguments in a language.
    pub fn t_args(&self, lang: &str, key: &str, args: &[(&str, String)]) -> String {
        self.portal.i18n.text(lang, key, args)
    }

    /// Read-only data of a client the operator named.
    pub fn client_data<'c>(&'c self, client: &'c Client) -> ClientData<'c> {
        ClientData::new(&self.portal.store, client, self.portal.clock.today())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.portal.clock.now()
    }

    pub fn t(&self, lang: &str, key: &str) -> String {
        self.portal.i18n.t(lang, key)
    }

    /// An audit event of this plugin (`portico audit` lists it).
    pub fn audit(&self, client_id: Option<u64>, event: &str, detail: Option<String>) {
        plugin_audit(self.portal, self.owner, client_id, event, detail);
    }

    /// Queues a plain-text e-mail (flushed); the outbox sends and retries it.
    pub fn queue_mail(&self, to: &str, subject: &str, body: &str) -> Result<u64> {
        queue_mail(self.portal, self.owner, None, to, None, subject, body)
    }

    /// Fires a hook this plugin declared; another plugin's or core's is refused.
    pub fn run_hook(
        &self,
        name: &str,
        event: &mut serde_json::Value,
    ) -> std::result::Result<(), Veto> {
        self.portal.registry.hooks.fire_own(self.owner, name, event)
    }
}

/// What a hook handler registered with [`Registrar::on_json_with_ctx`] may use: its plugin's
/// store, settings (its own and core's) and the clock.
pub struct HookCtx<'a> {
    pub(crate) ns: &'a Namespace,
    /// `None` only before the portal has loaded its settings (no hook runs then).
    pub(crate) env: Option<&'a HookEnv>,
}

/// The portal's settings, clock and hooks, for [`HookCtx`].
pub struct HookEnv {
    pub(crate) settings: std::sync::Arc<crate::settings::Settings>,
    pub(crate) clock: crate::portal::Clock,
    /// Weak: the hooks hold the handlers that hold this.
    pub(crate) hooks: std::sync::Weak<crate::hooks::Hooks>,
}

impl HookCtx<'_> {
    pub fn store(&self) -> &Namespace {
        self.ns
    }

    /// A setting (the plugin's own or core's) for an invoice group, or the global value.
    pub fn setting(&self, key: &str, group: Option<u64>) -> serde_json::Value {
        let Some(env) = self.env else {
            return serde_json::Value::Null;
        };
        match env.settings.definition(key) {
            Ok(def) if def.owner == self.ns.owner || def.owner == "core" => {
                env.settings.value(key, group)
            }
            _ => {
                tracing::error!(
                    plugin = %self.ns.owner,
                    key,
                    "a plugin asked for a setting that is neither its own nor core's"
                );
                serde_json::Value::Null
            }
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.env.map_or_else(Utc::now, |e| e.clock.now())
    }

    /// Fires one of the plugin's own hooks (e.g. the SMS plugin's `before_sms_send` for the
    /// SMS it is about to queue).
    pub fn run_hook(
        &self,
        name: &str,
        event: &mut serde_json::Value,
    ) -> std::result::Result<(), Veto> {
        match self.env.and_then(|e| e.hooks.upgrade()) {
            Some(hooks) => hooks.fire_own(&self.ns.owner, name, event),
            None => Ok(()),
        }
    }
}

/// What a plugin's background worker may use: its own store, settings (its own and core's),
/// the clock, its audit events and its own hooks. Made by the portal for the worker's plugin.
pub struct WorkerCtx {
    pub(crate) portal: std::sync::Arc<Portal>,
    pub(crate) owner: &'static str,
}

impl WorkerCtx {
    pub fn store(&self) -> Namespace {
        Namespace::new(self.portal.store.clone(), self.owner)
    }

    /// A setting (the plugin's own or core's) for an invoice group, or the global value.
    pub fn setting(&self, key: &str, group: Option<u64>) -> serde_json::Value {
        setting_value(&self.portal, self.owner, key, group)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.portal.clock.now()
    }

    /// An audit event of this plugin (`portico audit` lists it).
    pub fn audit(&self, client_id: Option<u64>, event: &str, detail: Option<String>) {
        plugin_audit(&self.portal, self.owner, client_id, event, detail);
    }

    /// A client by id (for a hook's `client` field), if there is one.
    pub fn client(&self, id: u64) -> Result<Option<Client>> {
        self.portal.store.get_id::<Client>(id)
    }

    /// Fires a hook this plugin declared; another plugin's or core's is refused.
    pub fn run_hook(
        &self,
        name: &str,
        event: &mut serde_json::Value,
    ) -> std::result::Result<(), Veto> {
        self.portal.registry.hooks.fire_own(self.owner, name, event)
    }
}

pub(crate) fn queue_mail(
    portal: &Portal,
    owner: &str,
    client_id: Option<u64>,
    to: &str,
    to_name: Option<String>,
    subject: &str,
    body: &str,
) -> Result<u64> {
    let to = to.trim();
    if !crate::settings::is_email(to) {
        return Err(Error::Invalid(format!("`{to}` is not an e-mail address")));
    }
    if subject.contains(['\r', '\n']) {
        return Err(Error::Invalid("a mail subject is one line".into()));
    }
    crate::mail::enqueue(
        portal,
        crate::mail::MailJob::Plugin {
            plugin: owner.to_string(),
            client_id,
            to: to.to_string(),
            to_name,
            subject: subject.to_string(),
            body: body.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_prefix_takes_stored_and_pending_keys_with_the_prefix_only() {
        let store = Store::in_memory();
        let ns = Namespace::new(store.clone(), "gdpr");
        for k in [&b"a1"[..], b"a2", b"b1"] {
            ns.put("t", k, &1u8).expect("put");
        }
        let gone = ns
            .write(|tx| {
                tx.put("t", b"a3", &2u8)?;
                tx.delete("t", b"a1")?;
                tx.delete_prefix("t", b"a")
            })
            .expect("write");
        assert_eq!(gone, 2, "a2 as stored and a3 of this transaction");
        let left: Vec<Vec<u8>> = ns
            .scan::<u8>("t", b"")
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, [b"b1".to_vec()]);
    }

    #[test]
    fn a_namespace_reaches_only_its_own_trees() {
        let store = Store::in_memory();
        store
            .write(|tx| {
                tx.set_raw("clients", b"k".to_vec(), Some(b"secret".to_vec()));
                tx.set_raw("other:t", b"k".to_vec(), Some(b"1".to_vec()));
                Ok(())
            })
            .expect("seed");
        let ns = Namespace::new(store.clone(), "helpdesk");
        ns.put("tickets", b"1", &serde_json::json!({"subject": "hi"}))
            .expect("put");
        assert_eq!(
            store.get_raw("helpdesk:tickets", b"1").expect("raw"),
            Some(br#"{"subject":"hi"}"#.to_vec())
        );
        for bad in [
            "",
            "../clients",
            "other:t",
            ":t",
            "Tickets",
            "a/b",
            &"x".repeat(65),
        ] {
            let e = ns.get::<serde_json::Value>(bad, b"k").unwrap_err();
            assert!(e.to_string().contains("is not a tree name"), "{bad}: {e}");
        }
        // A plain name is the plugin's own tree, never core's tree of that name.
        assert_eq!(
            ns.get::<serde_json::Value>("clients", b"k").expect("own"),
            None
        );
    }

    #[test]
    fn a_write_inside_a_write_is_refused_not_a_deadlock() {
        let ns = Namespace::new(Store::in_memory(), "desk");
        let e = ns
            .write(|tx| {
                tx.put("t", b"1", &1)?;
                ns.put("t", b"2", &2)
            })
            .unwrap_err();
        assert!(e.to_string().contains("inside another one"), "{e}");
        // Nothing of the failed write landed, and the next write works.
        assert_eq!(ns.get::<i32>("t", b"1").expect("get"), None);
        ns.put("t", b"3", &3).expect("put");
        assert_eq!(ns.get::<i32>("t", b"3").expect("get"), Some(3));
    }

    #[test]
    fn check_and_consume_is_one_step() {
        let ns = Namespace::new(Store::in_memory(), "sms");
        ns.put("quota", b"c1", &2u32).expect("seed");
        let spend = || {
            ns.write(|tx| {
                let left: u32 = tx.get("quota", b"c1")?.unwrap_or(0);
                if left == 0 {
                    return Ok(false);
                }
                tx.put("quota", b"c1", &(left - 1))?;
                Ok(true)
            })
            .expect("write")
        };
        let spent = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20).map(|_| s.spawn(spend)).collect();
            handles
                .into_iter()
                .filter(|_| true)
                .map(|h| h.join().expect("thread"))
                .filter(|ok| *ok)
                .count()
        });
        assert_eq!(spent, 2);
    }
}
