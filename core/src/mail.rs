//! Outgoing mail through a durable outbox.
//!
//! Pages and operator commands only enqueue a job (flushed), so a client's answer never waits
//! for, or depends on, the SMTP server. A worker in the portal process sends due jobs over SMTP
//! (lettre, rustls), retrying with growing delays; a job still undelivered after its last try is
//! marked failed, logged for the operator and listed by `portico mail queue`.
//!
//! Password-link jobs hold no secret at rest: the single-use token is created at the moment of
//! each sending attempt (and revoked again if that attempt fails).

use std::collections::HashSet;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Client;
use crate::passwords::{self, LinkPurpose};
use crate::portal::Portal;
use crate::store::{Record, SEP, Store, decode, id_key};

/// Delays before the 2nd, 3rd, ... attempt; after the last one the job is marked failed.
pub const RETRY_DELAYS: &[i64] = &[30, 120, 600, 1800, 7200];
/// How often the worker looks for due jobs when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// The template purpose for password links (reset and "create your password").
pub const PURPOSE_NEW_PORTAL_PASSWORD: &str = "new_portal_password";
pub const PURPOSES: &[&str] = &[PURPOSE_NEW_PORTAL_PASSWORD];
/// The variable ISP operators know from ISPadmin templates.
pub const PASSWORD_LINK_VARIABLE: &str = "$CI_PASSWORD_LINK$";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailJob {
    PasswordLink {
        client_id: u64,
        purpose: LinkPurpose,
        lang: String,
    },
    /// A plain-text mail queued by a plugin (to the client of the request, or by an operator
    /// command to an address the operator gave).
    Plugin {
        plugin: String,
        #[serde(default)]
        client_id: Option<u64>,
        to: String,
        #[serde(default)]
        to_name: Option<String>,
        subject: String,
        body: String,
    },
}

impl MailJob {
    /// The client the mail is for, when it is for one.
    pub fn client_id(&self) -> Option<u64> {
        match self {
            MailJob::PasswordLink { client_id, .. } => Some(*client_id),
            MailJob::Plugin { client_id, .. } => *client_id,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub job: MailJob,
    pub created_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub failed: bool,
}

impl OutboxEntry {
    /// A job due now, not tried yet.
    fn new(id: u64, job: MailJob, now: i64) -> Self {
        OutboxEntry {
            id,
            job,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            failed: false,
        }
    }
}

impl Record for OutboxEntry {
    const TREE: &'static str = "mail_outbox";
    fn key(&self) -> Vec<u8> {
        id_key(self.id)
    }
}

/// An operator's template for one purpose, globally or for one invoice group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailTemplate {
    pub purpose: String,
    #[serde(default)]
    pub invoice_group_id: Option<u64>,
    pub subject: String,
    pub body: String,
}

impl Record for MailTemplate {
    const TREE: &'static str = "mail_templates";
    fn key(&self) -> Vec<u8> {
        template_key(&self.purpose, self.invoice_group_id)
    }
}

fn template_key(purpose: &str, group: Option<u64>) -> Vec<u8> {
    let mut k = purpose.as_bytes().to_vec();
    k.push(SEP);
    if let Some(g) = group {
        k.extend_from_slice(&g.to_be_bytes());
    }
    k
}

struct Builtin {
    subject: &'static str,
    body: &'static str,
}

fn builtin(lang: &str) -> Builtin {
    match lang {
        "cs" => Builtin {
            subject: "{% if reason == \"reset\" %}Obnovení hesla{% else %}Vytvořte si heslo{% endif %} do klientského portálu",
            body: "Dobrý den, {{ client.name }},\n\n\
{% if reason == \"reset\" %}někdo (nejspíš vy) požádal o nové heslo do klientského portálu.{% else %}pro přihlášení do klientského portálu si prosím vytvořte heslo.{% endif %}\n\
Heslo nastavíte na této adrese:\n\n$CI_PASSWORD_LINK$\n\n\
Odkaz platí {{ valid_minutes }} minut a lze jej použít jen jednou. Vaše číslo klienta je {{ client.number }}.\n\
Pokud jste o nic nežádali, tento e-mail ignorujte; vaše heslo zůstává beze změny.\n\n{{ sender_name }}\n",
        },
        _ => Builtin {
            subject: "{% if reason == \"reset\" %}Reset your{% else %}Create your{% endif %} client portal password",
            body: "Hello {{ client.name }},\n\n\
{% if reason == \"reset\" %}someone (probably you) asked for a new client portal password.{% else %}please create a password for the client portal.{% endif %}\n\
Set it at this address:\n\n$CI_PASSWORD_LINK$\n\n\
The link works once and for {{ valid_minutes }} minutes. Your client number is {{ client.number }}.\n\
If you did not ask for this, ignore this e-mail; your password stays as it was.\n\n{{ sender_name }}\n",
        },
    }
}

/// The variables a password-mail template may use, for messages.
pub const TEMPLATE_VARIABLES: &str =
    "client.name, client.number, reason, link, valid_minutes, sender_name and $CI_PASSWORD_LINK$";

/// Checks an operator's template before it is saved: Tera syntax, then a render against a
/// sample context (for a reset and for a new password, so both branches of an
/// `{% if reason == "reset" %}` are tried), so a template that names a variable the mail does
/// not have is refused with that name, as is an ISP-style `$CI_…$` variable other than
/// `$CI_PASSWORD_LINK$`.
pub fn validate_template(subject: &str, body: &str) -> Result<()> {
    for (what, src) in [("subject", subject), ("body", body)] {
        let mut t = tera::Tera::default();
        t.autoescape_on(Vec::<&str>::new());
        t.add_raw_template(what, src).map_err(|e| {
            Error::Invalid(format!("template {what}: {}", crate::theme::describe(&e)))
        })?;
        if let Some(unknown) = unknown_isp_variable(src) {
            return Err(Error::Invalid(format!(
                "template {what}: unknown variable `{unknown}`; the mail has {TEMPLATE_VARIABLES}"
            )));
        }
        let sample: Client = Client {
            id: 1,
            number: "1001".into(),
            username: None,
            name: "Alice Example".into(),
            company: None,
            mailing_address: Default::default(),
            invoicing_address: None,
            email: Some("alice@example.net".into()),
            phone: None,
            mobile: None,
            invoice_group_id: 1,
            language: None,
            portal_access: true,
        };
        for reason in [LinkPurpose::Reset, LinkPurpose::Create] {
            let ctx = context(
                &sample,
                reason,
                "https://portal.example.net/sign/password/x",
                60,
                "ISP",
            );
            if let Err(e) = t.render(what, &ctx) {
                let full = crate::theme::describe(&e);
                return Err(Error::Invalid(match variable_not_found(&full, src) {
                    Some(name) => format!(
                        "template {what}: unknown variable `{name}`; the mail has {TEMPLATE_VARIABLES}"
                    ),
                    None => format!("template {what} does not render: {full}"),
                }));
            }
        }
    }
    Ok(())
}

/// The name Tera's "Variable `x` is not defined" names, or for "Field `y` is not defined" the
/// whole path as written in `src` (`client.y`).
fn variable_not_found(message: &str, src: &str) -> Option<String> {
    let between = |prefix: &str| -> Option<String> {
        let rest = &message[message.find(prefix)? + prefix.len()..];
        let name = &rest[..rest.find('`')?];
        rest[name.len()..]
            .starts_with("` is not defined")
            .then(|| name.to_string())
    };
    if let Some(name) = between("Variable `") {
        return Some(name);
    }
    let field = between("Field `")?;
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = src.as_bytes();
    let needle = format!(".{field}");
    let mut from = 0;
    while let Some(pos) = src[from..].find(&needle).map(|p| p + from) {
        let end = pos + needle.len();
        if bytes.get(end).is_none_or(|b| !ident(*b)) {
            let start = src[..pos]
                .bytes()
                .rev()
                .take_while(|b| ident(*b) || *b == b'.')
                .count();
            return Some(src[pos - start..end].to_string());
        }
        from = end;
    }
    Some(field)
}

/// The first `$CI_…$` variable in a template other than the password link.
fn unknown_isp_variable(src: &str) -> Option<String> {
    let mut rest = src;
    while let Some(start) = rest.find("$CI_") {
        let after = &rest[start + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if after.as_bytes().get(len) == Some(&b'$') {
            let var = format!("${}$", &after[..len]);
            if var != PASSWORD_LINK_VARIABLE {
                return Some(var);
            }
            rest = &after[len + 1..];
        } else {
            rest = &after[len..];
        }
    }
    None
}

/// What a password mail's template sees.
fn context(
    client: &Client,
    reason: LinkPurpose,
    link: &str,
    valid_minutes: i64,
    sender_name: &str,
) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert(
        "client",
        &MailClient {
            name: &client.name,
            number: &client.number,
        },
    );
    ctx.insert(
        "reason",
        match reason {
            LinkPurpose::Reset => "reset",
            LinkPurpose::Create => "create",
        },
    );
    ctx.insert("link", link);
    ctx.insert("valid_minutes", &valid_minutes);
    ctx.insert("sender_name", sender_name);
    ctx
}

#[derive(Serialize)]
struct MailClient<'a> {
    name: &'a str,
    number: &'a str,
}

/// Renders subject and body for a client: the group's template, else the global one, else the
/// built-in one in the client's language. `$CI_PASSWORD_LINK$` and `{{ link }}` give the link.
pub fn render_password_mail(
    store: &Store,
    client: &Client,
    lang: &str,
    reason: LinkPurpose,
    link: &str,
    valid_minutes: i64,
    sender_name: &str,
) -> Result<(String, String)> {
    let ctx = context(client, reason, link, valid_minutes, sender_name);
    let custom = [Some(client.invoice_group_id), None]
        .into_iter()
        .find_map(|g| {
            store
                .get::<MailTemplate>(&template_key(PURPOSE_NEW_PORTAL_PASSWORD, g))
                .ok()
                .flatten()
        });
    let render = |subject: &str, body: &str| -> Result<(String, String)> {
        let s = tera::Tera::one_off(subject, &ctx, false)
            .map_err(|e| Error::Template(crate::theme::describe(&e)))?;
        let b = tera::Tera::one_off(body, &ctx, false)
            .map_err(|e| Error::Template(crate::theme::describe(&e)))?;
        Ok((
            s.replace(PASSWORD_LINK_VARIABLE, link)
                .trim()
                .replace(['\r', '\n'], " "),
            b.replace(PASSWORD_LINK_VARIABLE, link),
        ))
    };
    if let Some(t) = custom {
        match render(&t.subject, &t.body) {
            Ok(out) => return Ok(out),
            Err(e) => {
                tracing::error!(group = ?t.invoice_group_id, "mail template failed, using the built-in one: {e}")
            }
        }
    }
    let b = builtin(lang);
    render(b.subject, b.body)
}

/// Where password links point: ci_url, else ispadmin_server + /clientinterface/. Never the
/// request's Host header.
pub fn link_base(portal: &Portal) -> Option<String> {
    let ci_url = portal.settings.text("ci_url", None);
    let base = if !ci_url.is_empty() {
        ci_url
    } else {
        let server = portal.settings.text("ispadmin_server", None);
        if server.is_empty() {
            return None;
        }
        format!("{}/clientinterface/", server.trim_end_matches('/'))
    };
    Some(if base.ends_with('/') {
        base
    } else {
        format!("{base}/")
    })
}

/// Whether the portal may send mail at all (system_mail and system_mail_name are set).
pub fn sender(portal: &Portal) -> Option<(String, String)> {
    let addr = portal.settings.text("system_mail", None);
    let name = portal.settings.text("system_mail_name", None);
    (!addr.is_empty() && !name.is_empty()).then_some((addr, name))
}

/// Queues a job (flushed) and wakes the worker.
pub fn enqueue(portal: &Portal, job: MailJob) -> Result<u64> {
    enqueue_parts(
        &portal.store,
        &portal.mail_wakeup,
        portal.next_id(),
        portal.clock.unix(),
        job,
    )
}

/// [`enqueue`] from the parts of a portal (scripts hold these, not the portal).
pub fn enqueue_parts(
    store: &crate::store::Store,
    wakeup: &tokio::sync::Notify,
    id: u64,
    now: i64,
    job: MailJob,
) -> Result<u64> {
    let entry = OutboxEntry::new(id, job, now);
    store.write(|tx| tx.put(&entry))?;
    wakeup.notify_one();
    Ok(id)
}

/// When each client last got a "forgot password" mail queued (unix seconds, big-endian).
const LINK_REQUESTS_TREE: &str = "clientid_lastlinkrequest";

/// Queues a password-link mail unless the client got one less than `window` seconds ago. The
/// check and the queueing are one transaction: of any number of parallel requests in a window,
/// one queues a mail. Returns whether it did.
pub fn enqueue_link_unless_recent(
    portal: &Portal,
    client_id: u64,
    purpose: LinkPurpose,
    lang: &str,
    window: i64,
) -> Result<bool> {
    let now = portal.clock.unix();
    let id = portal.next_id();
    let key = id_key(client_id);
    let queued = portal.store.write(|tx| {
        if let Some(v) = tx.raw_get(LINK_REQUESTS_TREE, &key)?
            && let Ok(bytes) = <[u8; 8]>::try_from(v.as_slice())
        {
            let last = i64::from_be_bytes(bytes);
            if (last..last.saturating_add(window)).contains(&now) {
                return Ok(false);
            }
        }
        tx.set_raw(
            LINK_REQUESTS_TREE,
            key.clone(),
            Some(now.to_be_bytes().to_vec()),
        );
        let job = MailJob::PasswordLink {
            client_id,
            purpose,
            lang: lang.to_string(),
        };
        tx.put(&OutboxEntry::new(id, job, now))?;
        Ok(true)
    })?;
    if queued {
        portal.mail_wakeup.notify_one();
    }
    Ok(queued)
}

/// Whether a password-link job for this client is still waiting (so repeated requests do not
/// flood the client's mailbox).
pub fn has_pending_link(store: &Store, client_id: u64) -> Result<bool> {
    Ok(store.all_lenient::<OutboxEntry>()?.iter().any(|e| {
        !e.failed && matches!(e.job, MailJob::PasswordLink { client_id: c, .. } if c == client_id)
    }))
}

/// Cancels every password-link mail of a client still waiting in the outbox (inside the
/// caller's transaction): after a password change, a link sent later must not work.
pub fn cancel_link_jobs(tx: &mut crate::store::WriteTx<'_>, client_id: u64) -> Result<usize> {
    let mut n = 0;
    for entry in tx.scan_records::<OutboxEntry>()? {
        if !entry.failed
            && matches!(entry.job, MailJob::PasswordLink { client_id: c, .. } if c == client_id)
            && tx.delete::<OutboxEntry>(&entry.key())?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Forgets a deleted client inside the caller's transaction: their outbox entries (`keys`, found
/// by the caller) and when they last asked for a link.
pub(crate) fn forget_client_in(
    tx: &mut crate::store::WriteTx<'_>,
    client_id: u64,
    keys: &[Vec<u8>],
) -> Result<()> {
    for k in keys {
        tx.delete::<OutboxEntry>(k)?;
    }
    tx.set_raw(LINK_REQUESTS_TREE, id_key(client_id), None);
    Ok(())
}

/// Sends a mail again: a failed one gets a fresh round of attempts, a waiting one goes at once.
/// Returns the entry as it now stands.
pub fn retry(portal: &Portal, id: u64) -> Result<OutboxEntry> {
    let now = portal.clock.unix();
    let entry = portal.store.write(|tx| {
        let Some(mut e) = tx.get::<OutboxEntry>(&id_key(id))? else {
            return Err(no_such_mail(id));
        };
        e.failed = false;
        e.attempts = 0;
        e.next_attempt_at = now;
        tx.put(&e)?;
        Ok(e)
    })?;
    portal.mail_wakeup.notify_one();
    Ok(entry)
}

/// Takes a mail out of the outbox unsent. Returns the entry that went.
pub fn cancel(store: &Store, id: u64) -> Result<OutboxEntry> {
    store.write(|tx| {
        let Some(e) = tx.get::<OutboxEntry>(&id_key(id))? else {
            return Err(no_such_mail(id));
        };
        tx.delete::<OutboxEntry>(&id_key(id))?;
        Ok(e)
    })
}

/// Deletes the mail given up after its retries, only that created before `older_than` (unix
/// seconds) when given; returns how many went. One transaction: what the count says is gone.
pub fn purge_failed(store: &Store, older_than: Option<i64>) -> Result<usize> {
    store.write(|tx| {
        let mut n = 0;
        for e in tx.scan_records::<OutboxEntry>()? {
            if e.failed && older_than.is_none_or(|t| e.created_at < t) {
                tx.delete::<OutboxEntry>(&e.key())?;
                n += 1;
            }
        }
        Ok(n)
    })
}

fn no_such_mail(id: u64) -> Error {
    Error::Invalid(format!(
        "there is no mail #{id} in the outbox (see `portico mail queue`); nothing was changed"
    ))
}

/// Every readable outbox entry; one that does not decode is logged and left out.
pub fn queue(store: &Store) -> Result<Vec<OutboxEntry>> {
    store.all_lenient()
}

/// The outbox entries that decode, in id order. One that does not is logged (tree, key, cause)
/// the first time it is met and then passed over, so it neither stops the worker nor floods
/// the log; it stays stored for the operator to look at.
fn readable_entries(store: &Store, reported: &mut HashSet<Vec<u8>>) -> Result<Vec<OutboxEntry>> {
    let mut out = Vec::new();
    for (k, v) in store.scan_raw(OutboxEntry::TREE, &[])? {
        match decode::<OutboxEntry>(OutboxEntry::TREE, &k, &v) {
            Ok(e) => out.push(e),
            Err(e) => {
                if reported.insert(k) {
                    tracing::error!("mail outbox entry skipped: {e}");
                }
            }
        }
    }
    Ok(out)
}

/// Sends due jobs until the process ends.
pub async fn run_worker(portal: std::sync::Arc<Portal>) {
    portal
        .serving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reported = HashSet::new();
    loop {
        let now = portal.clock.unix();
        // A whole-outbox scan: off the async threads.
        let scanned = crate::store::off_async(|| readable_entries(&portal.store, &mut reported));
        let due: Vec<OutboxEntry> = match scanned {
            Ok(all) => all
                .into_iter()
                .filter(|e| !e.failed && e.next_attempt_at <= now)
                .collect(),
            Err(e) => {
                tracing::error!("mail outbox unreadable: {e}");
                vec![]
            }
        };
        for entry in due {
            attempt(&portal, entry).await;
        }
        tokio::select! {
            _ = portal.mail_wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn attempt(portal: &Portal, mut entry: OutboxEntry) {
    let result = match &entry.job {
        MailJob::PasswordLink {
            client_id,
            purpose,
            lang,
        } => send_password_link(portal, *client_id, *purpose, lang).await,
        MailJob::Plugin {
            to,
            to_name,
            subject,
            body,
            ..
        } => deliver(portal, to_name.clone(), to, subject.clone(), body.clone())
            .await
            .map(|()| to.clone()),
    };
    let store = &portal.store;
    let outcome = match result {
        Ok(to) => {
            tracing::info!(outbox_id = entry.id, to = %to, "mail sent");
            store.write(|tx| tx.delete::<OutboxEntry>(&entry.key()).map(|_| ()))
        }
        Err(err) => {
            entry.attempts += 1;
            entry.last_error = Some(err.clone());
            match RETRY_DELAYS.get(entry.attempts as usize - 1) {
                Some(delay) => {
                    entry.next_attempt_at = portal.clock.unix() + delay;
                    tracing::warn!(
                        outbox_id = entry.id,
                        attempt = entry.attempts,
                        "mail not sent, will retry in {delay} s: {err}"
                    );
                }
                None => {
                    entry.failed = true;
                    tracing::error!(
                        outbox_id = entry.id,
                        "mail undelivered after {} attempts, given up (see `portico mail queue`): {err}",
                        entry.attempts
                    );
                }
            }
            store.write(|tx| tx.put(&entry))
        }
    };
    if let Err(e) = outcome {
        tracing::error!("mail outbox not updated: {e}");
    }
}

async fn send_password_link(
    portal: &Portal,
    client_id: u64,
    purpose: LinkPurpose,
    lang: &str,
) -> std::result::Result<String, String> {
    let client = portal
        .store
        .get_id::<Client>(client_id)
        .map_err(|e| e.to_string())?
        .ok_or("the client no longer exists")?;
    let to = client
        .email
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or("the client has no e-mail address")?;
    // Checked before a token is issued, so a mail that cannot go out issues nothing.
    let (_, from_name) = sender(portal).ok_or("system_mail and system_mail_name must be set")?;
    let base = link_base(portal).ok_or("set ci_url (or ispadmin_server) so links can be built")?;
    portal
        .smtp_url
        .as_ref()
        .ok_or("no SMTP server configured (smtp_url in portico.toml or PORTICO_SMTP_URL)")?;
    let minutes = portal
        .settings
        .int("ci_password_link_validity_minutes", None);
    let now = portal.clock.unix();
    let token = passwords::issue_token(&portal.store, client_id, purpose, now, minutes * 60)
        .map_err(|e| e.to_string())?;
    let token_hash = crate::auth::token_hash(&token);
    let link = format!("{base}sign/password/{token}");
    let sent = async {
        let (subject, body) = render_password_mail(
            &portal.store,
            &client,
            lang,
            purpose,
            &link,
            minutes,
            &from_name,
        )
        .map_err(|e| e.to_string())?;
        deliver(portal, Some(client.name.clone()), &to, subject, body).await?;
        Ok::<_, String>(())
    }
    .await;
    match sent {
        Ok(()) => Ok(to),
        Err(e) => {
            // The link was never delivered: it must not stay valid.
            let _ = passwords::revoke_token(&portal.store, &token_hash);
            Err(e)
        }
    }
}

pub fn set_template(store: &Store, t: MailTemplate) -> Result<()> {
    if !PURPOSES.contains(&t.purpose.as_str()) {
        return Err(Error::Invalid(format!(
            "unknown purpose `{}`; known: {}",
            t.purpose,
            PURPOSES.join(", ")
        )));
    }
    validate_template(&t.subject, &t.body)?;
    store.write(|tx| tx.put(&t))
}

pub fn templates(store: &Store) -> Result<Vec<MailTemplate>> {
    store.all()
}

pub fn remove_template(store: &Store, purpose: &str, group: Option<u64>) -> Result<bool> {
    store.write(|tx| tx.delete::<MailTemplate>(&template_key(purpose, group)))
}

/// Sends one plain-text mail now over SMTP (quoted-printable, so links stay intact).
async fn deliver(
    portal: &Portal,
    to_name: Option<String>,
    to: &str,
    subject: String,
    body: String,
) -> std::result::Result<(), String> {
    let (from_addr, from_name) =
        sender(portal).ok_or("system_mail and system_mail_name must be set")?;
    let smtp_url = portal
        .smtp_url
        .clone()
        .ok_or("no SMTP server configured (smtp_url in portico.toml or PORTICO_SMTP_URL)")?;
    let from = Mailbox::new(
        Some(from_name),
        from_addr.parse().map_err(|e| format!("system_mail: {e}"))?,
    );
    let rcpt = Mailbox::new(
        to_name,
        to.parse().map_err(|e| format!("recipient address: {e}"))?,
    );
    let message = lettre::Message::builder()
        .from(from)
        .to(rcpt)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(
            Body::new_with_encoding(body, ContentTransferEncoding::QuotedPrintable)
                .map_err(|_| "mail body cannot be encoded")?,
        )
        .map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url)
        .map_err(|e| format!("smtp_url is not usable: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .map_err(|e| format!("SMTP: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        serde_json::from_value(serde_json::json!({
            "id": 1, "number": "1001", "name": "Alice <Nováková>", "invoice_group_id": 3
        }))
        .expect("client")
    }

    #[test]
    fn the_worker_passes_over_an_unreadable_entry_and_reports_it_once() {
        let s = Store::in_memory();
        let entry = |id: u64| OutboxEntry {
            id,
            job: MailJob::PasswordLink {
                client_id: 1,
                purpose: LinkPurpose::Create,
                lang: "en".into(),
            },
            created_at: 0,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            failed: false,
        };
        s.write(|tx| {
            tx.put(&entry(1))?;
            tx.put(&entry(3))?;
            // Written by a newer Portico: kept, not guessed at.
            tx.set_raw(OutboxEntry::TREE, id_key(2), Some(b"\x07{}".to_vec()));
            Ok(())
        })
        .expect("put");
        let mut reported = HashSet::new();
        let ids = |r: Result<Vec<OutboxEntry>>| -> Vec<u64> {
            r.expect("read").into_iter().map(|e| e.id).collect()
        };
        assert_eq!(ids(readable_entries(&s, &mut reported)), [1, 3]);
        assert_eq!(reported, HashSet::from([id_key(2)]));
        assert_eq!(ids(readable_entries(&s, &mut reported)), [1, 3]);
        assert_eq!(reported.len(), 1);
        assert!(
            s.get_raw(OutboxEntry::TREE, &id_key(2))
                .expect("raw")
                .is_some()
        );
    }

    #[test]
    fn built_in_mails_carry_the_link_in_both_languages() {
        let s = Store::in_memory();
        for lang in ["en", "cs"] {
            let (subject, body) = render_password_mail(
                &s,
                &client(),
                lang,
                LinkPurpose::Reset,
                "https://p.example/sign/password/abc",
                60,
                "ISP",
            )
            .expect("render");
            assert!(!subject.is_empty() && !subject.contains('\n'));
            assert!(
                body.contains("https://p.example/sign/password/abc"),
                "{body}"
            );
            assert!(
                body.contains("Alice <Nováková>"),
                "plain text, not escaped: {body}"
            );
            assert!(body.contains("1001"));
        }
    }

    #[test]
    fn group_template_beats_global_and_takes_the_isp_variable() {
        let s = Store::in_memory();
        set_template(
            &s,
            MailTemplate {
                purpose: PURPOSE_NEW_PORTAL_PASSWORD.into(),
                invoice_group_id: None,
                subject: "Global".into(),
                body: "G $CI_PASSWORD_LINK$".into(),
            },
        )
        .expect("set");
        let (subject, body) =
            render_password_mail(&s, &client(), "en", LinkPurpose::Create, "L1", 60, "ISP")
                .expect("render");
        assert_eq!((subject.as_str(), body.as_str()), ("Global", "G L1"));
        set_template(
            &s,
            MailTemplate {
                purpose: PURPOSE_NEW_PORTAL_PASSWORD.into(),
                invoice_group_id: Some(3),
                subject: "Hi {{ client.name }}".into(),
                body: "Use {{ link }} or $CI_PASSWORD_LINK$".into(),
            },
        )
        .expect("set");
        let (subject, body) =
            render_password_mail(&s, &client(), "en", LinkPurpose::Create, "L2", 60, "ISP")
                .expect("render");
        assert_eq!(subject, "Hi Alice <Nováková>");
        assert_eq!(body, "Use L2 or L2");
        let e = set_template(
            &s,
            MailTemplate {
                purpose: PURPOSE_NEW_PORTAL_PASSWORD.into(),
                invoice_group_id: None,
                subject: "{{ oops".into(),
                body: "".into(),
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("subject"), "{e}");
    }

    #[test]
    fn a_template_is_rendered_against_a_sample_before_it_is_saved() {
        let s = Store::in_memory();
        let set = |subject: &str, body: &str| {
            set_template(
                &s,
                MailTemplate {
                    purpose: PURPOSE_NEW_PORTAL_PASSWORD.into(),
                    invoice_group_id: None,
                    subject: subject.into(),
                    body: body.into(),
                },
            )
        };
        let e = set("Hi", "Dear {{ client.nmae }}, $CI_PASSWORD_LINK$").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "template body: unknown variable `client.nmae`; the mail has {TEMPLATE_VARIABLES}"
            )
        );
        // Only in the branch for new passwords: still found.
        let e = set(
            "{% if reason == \"reset\" %}Reset{% else %}{{ welcome }}{% endif %}",
            "x",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("template subject: unknown variable `welcome`"),
            "{e}"
        );
        let e = set("Hi", "$CI_PASSWORD_LINK$ $CI_CLIENT_NAME$").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("template body: unknown variable `$CI_CLIENT_NAME$`"),
            "{e}"
        );
        assert!(templates(&s).expect("list").is_empty(), "nothing was saved");
        set(
            "{{ sender_name }}: {{ client.number }}",
            "{{ client.name }} {{ link }} {{ valid_minutes }} {% if reason == \"reset\" %}r{% endif %} $CI_PASSWORD_LINK$",
        )
        .expect("every known variable");
    }
}
