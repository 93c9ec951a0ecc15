//! Consent documents, their versions, and the evidence of every change a client's consent went
//! through. Evidence is append-only: [`record`] is the one function that writes it, and it never
//! overwrites a record; nothing in the plugin changes one. It goes only with the client: when an
//! import deletes the client, [`forget_client`] removes their records.

use portico_core::plugin::{Error, Namespace, NamespaceTx, Result, compound_key, id_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Consent documents by id.
pub const DOCS: &str = "docs";
/// Counters: the next document id, the next task id.
pub const META: &str = "meta";
/// Evidence records: `client id ++ SEP ++ record number` (numbers per client, from 1).
pub const EVIDENCE: &str = "evidence";
/// The client's last record number: `client id`.
const LAST_RECORD: &str = "last_record";
/// The client's latest record of each document: `client id ++ SEP ++ document id` → number.
const LATEST: &str = "latest";

/// A line of a consent text that offers an optional part: `[optional] Label`.
const OPTIONAL_MARK: &str = "[optional]";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Doc {
    pub id: u64,
    pub title: String,
    #[serde(default)]
    pub title_cs: Option<String>,
    pub required: bool,
    /// Applies only to clients of this invoice group; `None`: to every client.
    #[serde(default)]
    pub invoice_group: Option<u64>,
    #[serde(default)]
    pub retired: bool,
    /// Oldest first; never empty.
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub number: u32,
    /// RFC 3339, UTC.
    pub created: String,
    /// Markdown.
    pub text: String,
    #[serde(default)]
    pub text_cs: Option<String>,
}

/// What a client is shown of a document's current version in one language.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub lang: &'static str,
    pub title: String,
    /// The Markdown source, with the optional parts' lines.
    pub text: String,
    /// SHA-256 of the title and the text exactly as shown.
    pub hash: String,
    pub parts: Vec<String>,
}

impl Doc {
    pub fn current(&self) -> &Version {
        // Documents are created with a version and only ever get more.
        &self.versions[self.versions.len() - 1]
    }

    pub fn applies_to(&self, invoice_group: u64) -> bool {
        !self.retired && self.invoice_group.is_none_or(|g| g == invoice_group)
    }

    /// The current version as shown in `lang` (Czech falls back to English when the document
    /// has no Czech text).
    pub fn shown(&self, lang: &str) -> Shown {
        let v = self.current();
        let (lang, title, text) = match (lang, &v.text_cs) {
            ("cs", Some(text)) => (
                "cs",
                self.title_cs.clone().unwrap_or_else(|| self.title.clone()),
                text.clone(),
            ),
            _ => ("en", self.title.clone(), v.text.clone()),
        };
        Shown {
            lang,
            hash: text_hash(&title, &text),
            parts: optional_parts(&text),
            title,
            text,
        }
    }

    /// Every language the current version is shown in.
    pub fn all_shown(&self) -> Vec<Shown> {
        let mut out = vec![self.shown("en")];
        if self.current().text_cs.is_some() {
            out.push(self.shown("cs"));
        }
        out
    }
}

/// SHA-256 (hex) of a title and a text exactly as a client is shown them.
pub fn text_hash(title: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(title.as_bytes());
    h.update(b"\n\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// The labels of the optional parts a text offers, in order.
pub fn optional_parts(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(OPTIONAL_MARK))
        .map(|label| label.trim().to_string())
        .collect()
}

/// The text without the lines of its optional parts (they are shown as checkboxes).
pub fn body_without_parts(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().starts_with(OPTIONAL_MARK))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a new version's texts: not empty, and the same optional parts in both languages.
pub fn check_texts(text: &str, text_cs: Option<&str>) -> Result<()> {
    if text.trim().is_empty() || text_cs.is_some_and(|t| t.trim().is_empty()) {
        return Err(Error::Invalid("a consent text is empty".into()));
    }
    if optional_parts(text).iter().any(String::is_empty) {
        return Err(Error::Invalid(format!(
            "an `{OPTIONAL_MARK}` line has no label"
        )));
    }
    if let Some(cs) = text_cs
        && optional_parts(cs).len() != optional_parts(text).len()
    {
        return Err(Error::Invalid(format!(
            "the English text has {} optional part(s) and the Czech text {}; they must match",
            optional_parts(text).len(),
            optional_parts(cs).len()
        )));
    }
    Ok(())
}

pub fn all_docs(ns: &Namespace) -> Result<Vec<Doc>> {
    Ok(ns
        .scan::<Doc>(DOCS, b"")?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

pub fn doc(ns: &Namespace, id: u64) -> Result<Option<Doc>> {
    ns.get(DOCS, &id_key(id))
}

/// A new document with its first version; returns its id.
pub fn add_doc(ns: &Namespace, mut doc: Doc) -> Result<u64> {
    ns.write(|tx| {
        let id: u64 = tx.get(META, b"next_doc")?.unwrap_or(1);
        tx.put(META, b"next_doc", &(id + 1))?;
        doc.id = id;
        tx.put(DOCS, &id_key(id), &doc)?;
        Ok(id)
    })
}

/// Changes a document (a new version, retired) in one step; `f` may refuse.
pub fn change_doc(ns: &Namespace, id: u64, f: impl FnOnce(&mut Doc) -> Result<()>) -> Result<Doc> {
    ns.write(|tx| {
        let mut doc: Doc = tx
            .get(DOCS, &id_key(id))?
            .ok_or_else(|| Error::NotFound(format!("consent document #{id}")))?;
        f(&mut doc)?;
        tx.put(DOCS, &id_key(id), &doc)?;
        Ok(doc)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Give,
    Edit,
    Withdraw,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Give => "give",
            Action::Edit => "edit",
            Action::Withdraw => "withdraw",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Client,
    Operator,
}

/// One change of a client's consent, kept for good.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Per client, from 1.
    pub number: u64,
    pub client_id: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub document: u64,
    pub version: u32,
    /// The language, title and SHA-256 of the text the client was shown.
    pub lang: String,
    pub title: String,
    pub text_sha256: String,
    pub action: Action,
    /// The optional parts chosen: their numbers (from 1) and labels as shown; empty after a
    /// withdrawal.
    pub parts: Vec<usize>,
    pub choice: Vec<String>,
    pub source_addr: Option<String>,
    pub user_agent: Option<String>,
    pub actor: Actor,
}

/// A client's standing on one document, from their latest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    NeverAnswered,
    Given,
    /// Given for an older version: the client is asked again.
    Outdated,
    Withdrawn,
}

pub fn state_of(doc: &Doc, latest: Option<&Record>) -> State {
    match latest {
        None => State::NeverAnswered,
        Some(r) if r.action == Action::Withdraw => State::Withdrawn,
        Some(r) if r.version == doc.current().number => State::Given,
        Some(_) => State::Outdated,
    }
}

/// Every record of a client, oldest first.
pub fn history(ns: &Namespace, client_id: u64) -> Result<Vec<Record>> {
    Ok(ns
        .scan::<Record>(EVIDENCE, &id_key(client_id))?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// The latest record of each document for a client, by document id.
pub fn latest_by_doc(ns: &Namespace, client_id: u64) -> Result<Vec<(u64, Record)>> {
    let mut latest: Vec<(u64, Record)> = Vec::new();
    for r in history(ns, client_id)? {
        match latest.iter_mut().find(|(d, _)| *d == r.document) {
            Some(slot) => slot.1 = r,
            None => latest.push((r.document, r)),
        }
    }
    Ok(latest)
}

/// What a client (or an operator for them) asks for.
pub struct Request {
    pub client_id: u64,
    pub invoice_group: u64,
    pub document: u64,
    /// The version and the hash of the text on the page the request came from.
    pub version: u32,
    pub hash: String,
    /// The client's latest record number of this document when the page was shown (0: none).
    pub seen: u64,
    /// Give (or edit, when the current version is given already) or withdraw.
    pub withdraw: bool,
    /// Numbers (from 1) of the optional parts chosen.
    pub parts: Vec<usize>,
    pub at: String,
    pub source_addr: Option<String>,
    pub user_agent: Option<String>,
    pub actor: Actor,
}

/// Why nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such document for this client (a forged id, another group's document).
    Unknown,
    Retired,
    /// The page showed another version or text than the current one.
    Stale,
    /// Another change was recorded since the page was shown.
    Changed,
    /// A part number the document does not offer.
    BadPart,
}

pub enum Outcome {
    Recorded(Box<Record>),
    /// The change is already in place (a double submission, or nothing to change).
    Unchanged,
    Refused(Refusal),
}

/// Checks a request against the current document and the client's latest record and, when it
/// changes something, appends the record: the check and the append are one store transaction,
/// flushed before this returns.
pub fn record(ns: &Namespace, req: &Request) -> Result<Outcome> {
    ns.write(|tx| {
        let Some(doc) = tx.get::<Doc>(DOCS, &id_key(req.document))? else {
            return Ok(Outcome::Refused(Refusal::Unknown));
        };
        if doc.invoice_group.is_some_and(|g| g != req.invoice_group) {
            return Ok(Outcome::Refused(Refusal::Unknown));
        }
        if doc.retired {
            return Ok(Outcome::Refused(Refusal::Retired));
        }
        let Some(shown) = doc
            .all_shown()
            .into_iter()
            .find(|s| s.hash == req.hash)
            .filter(|_| req.version == doc.current().number)
        else {
            return Ok(Outcome::Refused(Refusal::Stale));
        };
        let mut parts = req.parts.clone();
        parts.sort_unstable();
        parts.dedup();
        if parts.iter().any(|&p| p == 0 || p > shown.parts.len()) {
            return Ok(Outcome::Refused(Refusal::BadPart));
        }
        let choice: Vec<String> = if req.withdraw {
            Vec::new()
        } else {
            parts.iter().map(|&p| shown.parts[p - 1].clone()).collect()
        };
        let latest_key = compound_key(&[&id_key(req.client_id), &id_key(doc.id)]);
        let latest_number: u64 = tx.get(LATEST, &latest_key)?.unwrap_or(0);
        let latest: Option<Record> = match latest_number {
            0 => None,
            n => tx.get(
                EVIDENCE,
                &compound_key(&[&id_key(req.client_id), &id_key(n)]),
            )?,
        };
        let state = state_of(&doc, latest.as_ref());
        // A double submission, or a request for what is already in place, records nothing.
        let already = if req.withdraw {
            matches!(state, State::Withdrawn | State::NeverAnswered)
        } else {
            state == State::Given && latest.as_ref().is_some_and(|r| r.parts == parts)
        };
        if already {
            return Ok(Outcome::Unchanged);
        }
        if latest_number != req.seen {
            return Ok(Outcome::Refused(Refusal::Changed));
        }
        let action = match (req.withdraw, state) {
            (true, _) => Action::Withdraw,
            (false, State::Given) => Action::Edit,
            (false, _) => Action::Give,
        };
        let number: u64 = tx
            .get::<u64>(LAST_RECORD, &id_key(req.client_id))?
            .unwrap_or(0)
            + 1;
        let key = compound_key(&[&id_key(req.client_id), &id_key(number)]);
        if tx.get::<serde_json::Value>(EVIDENCE, &key)?.is_some() {
            return Err(Error::Internal(format!(
                "evidence record {number} of client #{} exists; refusing to overwrite it",
                req.client_id
            )));
        }
        let rec = Record {
            number,
            client_id: req.client_id,
            at: req.at.clone(),
            document: doc.id,
            version: doc.current().number,
            lang: shown.lang.to_string(),
            title: shown.title.clone(),
            text_sha256: shown.hash.clone(),
            action,
            parts: if req.withdraw { Vec::new() } else { parts },
            choice,
            source_addr: req.source_addr.clone(),
            user_agent: req.user_agent.clone(),
            actor: req.actor,
        };
        tx.put(EVIDENCE, &key, &rec)?;
        tx.put(LAST_RECORD, &id_key(req.client_id), &number)?;
        tx.put(LATEST, &latest_key, &number)?;
        Ok(Outcome::Recorded(Box::new(rec)))
    })
}

/// Removes a deleted client's consent records, inside the transaction that deletes the client.
pub fn forget_client(tx: &mut NamespaceTx<'_, '_>, client_id: u64) -> Result<()> {
    let prefix = compound_key(&[&id_key(client_id), &[]]);
    tx.delete_prefix(EVIDENCE, &prefix)?;
    tx.delete_prefix(LATEST, &prefix)?;
    tx.delete(LAST_RECORD, &id_key(client_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parts_are_the_marked_lines() {
        let text = "We ask.\n\n[optional] News by e-mail\n  [optional]   Offers by SMS  \nEnd.";
        assert_eq!(
            optional_parts(text),
            vec!["News by e-mail".to_string(), "Offers by SMS".to_string()]
        );
        assert_eq!(body_without_parts(text), "We ask.\n\nEnd.");
        assert!(check_texts(text, Some("[optional] a\n[optional] b")).is_ok());
        assert!(check_texts(text, Some("[optional] a")).is_err());
        assert!(check_texts("[optional]\n", None).is_err());
        assert!(check_texts("  ", None).is_err());
    }

    #[test]
    fn the_hash_covers_title_and_text() {
        assert_ne!(text_hash("a", "b"), text_hash("a", "b "));
        assert_ne!(text_hash("a", "b"), text_hash("a ", "b"));
        assert_eq!(text_hash("a", "b").len(), 64);
    }
}
