//! `portico gdpr …`: consent documents (add, list, update, retire) and a client's evidence
//! (`history`, also as CSV). No command changes or deletes an evidence record. Also the demo's
//! consents.

use portico_core::plugin::{ClientView, CommandArgs as Args, Error, OperatorCtx, Result, stamp};

use crate::consent::{self, Actor, Doc, Outcome, Record, Version};

const USAGE: &str = "usage: portico gdpr consent add --title T --text-file F [--title-cs T --text-file-cs F] [--required] [--invoice-group G]
       portico gdpr consent list
       portico gdpr consent update ID --text-file F [--text-file-cs F]
       portico gdpr consent retire ID
       portico gdpr withdraw ID --client C
       portico gdpr history --client C [--csv]";

fn usage() -> Error {
    Error::Invalid(USAGE.into())
}

fn read_text(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("cannot read {path}: {e}")))
}

fn doc_id(word: Option<&String>) -> Result<u64> {
    word.and_then(|w| w.trim_start_matches('#').parse().ok())
        .ok_or_else(usage)
}

pub fn gdpr(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    match words.as_slice() {
        ["consent", "add", ..] => add(ctx, &args[2..]),
        ["consent", "list", ..] if args.len() == 2 => list(ctx),
        ["consent", "update", ..] => update(ctx, &args[2..]),
        ["consent", "retire", ..] => retire(ctx, &args[2..]),
        ["withdraw", ..] => withdraw(ctx, &args[1..]),
        ["history", ..] => history(ctx, &args[1..]),
        _ => Err(usage()),
    }
}

fn now(ctx: &OperatorCtx<'_>) -> String {
    stamp(ctx.now())
}

fn add(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(
        args,
        &[
            "--title",
            "--text-file",
            "--title-cs",
            "--text-file-cs",
            "--invoice-group",
        ],
        &["--required"],
        USAGE,
    )?;
    if !a.words.is_empty() {
        return Err(usage());
    }
    let (Some(title), Some(file)) = (a.value("--title"), a.value("--text-file")) else {
        return Err(Error::Invalid(format!(
            "--title and --text-file are needed\n{USAGE}"
        )));
    };
    if a.value("--title-cs").is_some() != a.value("--text-file-cs").is_some() {
        return Err(Error::Invalid(
            "--title-cs and --text-file-cs go together".into(),
        ));
    }
    let title = one_line(title, "--title")?;
    let title_cs = a
        .value("--title-cs")
        .map(|t| one_line(t, "--title-cs"))
        .transpose()?;
    let text = read_text(file)?;
    let text_cs = a.value("--text-file-cs").map(read_text).transpose()?;
    consent::check_texts(&text, text_cs.as_deref())?;
    let invoice_group = a
        .value("--invoice-group")
        .map(|g| {
            g.parse::<u64>().map_err(|_| {
                Error::Invalid(format!("--invoice-group {g}: not an invoice group id"))
            })
        })
        .transpose()?;
    if let Some(g) = invoice_group {
        ctx.invoice_group(g)?;
    }
    let doc = Doc {
        id: 0,
        title,
        title_cs,
        required: a.flag("--required"),
        invoice_group,
        retired: false,
        versions: vec![Version {
            number: 1,
            created: now(ctx),
            text,
            text_cs,
        }],
    };
    let id = consent::add_doc(&ctx.store(), doc)?;
    ctx.audit(
        None,
        "consent_document_added",
        Some(format!("document #{id}")),
    );
    let doc = consent::doc(&ctx.store(), id)?.ok_or_else(|| Error::NotFound(format!("#{id}")))?;
    Ok(format!("added {}", describe(&doc)))
}

fn one_line(text: &str, option: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() || t.contains(['\r', '\n']) || t.chars().count() > 200 {
        return Err(Error::Invalid(format!(
            "{option}: a title is one line of at most 200 characters"
        )));
    }
    Ok(t.to_string())
}

fn describe(d: &Doc) -> String {
    let v = d.current();
    let mut line = format!(
        "#{} \"{}\" version {} of {}, {}, {}",
        d.id,
        d.title,
        v.number,
        v.created,
        if d.required { "required" } else { "optional" },
        match d.invoice_group {
            Some(g) => format!("invoice group {g}"),
            None => "every invoice group".into(),
        },
    );
    if v.text_cs.is_some() {
        line.push_str(", en + cs");
    }
    let parts = consent::optional_parts(&v.text).len();
    if parts > 0 {
        line.push_str(&format!(", {parts} optional part(s)"));
    }
    if d.retired {
        line.push_str(", retired");
    }
    line.push('\n');
    line
}

fn list(ctx: &OperatorCtx<'_>) -> Result<String> {
    let docs = consent::all_docs(&ctx.store())?;
    if docs.is_empty() {
        return Ok("no consent documents\n".into());
    }
    Ok(docs.iter().map(describe).collect())
}

fn update(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--text-file", "--text-file-cs"], &[], USAGE)?;
    let [id] = a.words.as_slice() else {
        return Err(usage());
    };
    let id = doc_id(Some(id))?;
    let file = a
        .value("--text-file")
        .ok_or_else(|| Error::Invalid(format!("--text-file is needed\n{USAGE}")))?;
    let text = read_text(file)?;
    let text_cs = a.value("--text-file-cs").map(read_text).transpose()?;
    consent::check_texts(&text, text_cs.as_deref())?;
    let created = now(ctx);
    let doc = consent::change_doc(&ctx.store(), id, |doc| {
        if doc.retired {
            return Err(Error::Invalid(format!("consent document #{id} is retired")));
        }
        if doc.current().text_cs.is_some() && text_cs.is_none() {
            return Err(Error::Invalid(format!(
                "consent document #{id} has a Czech text; give the new one with --text-file-cs"
            )));
        }
        let v = doc.current();
        if v.text == text && v.text_cs == text_cs {
            return Err(Error::Invalid(
                "the text is the current version's; nothing to update".into(),
            ));
        }
        let number = v.number + 1;
        doc.versions.push(Version {
            number,
            created: created.clone(),
            text: text.clone(),
            text_cs: text_cs.clone(),
        });
        Ok(())
    })?;
    ctx.audit(
        None,
        "consent_document_updated",
        Some(format!("document #{id} version {}", doc.current().number)),
    );
    Ok(format!("updated {}", describe(&doc)))
}

fn retire(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let [id] = args else {
        return Err(usage());
    };
    let id = doc_id(Some(id))?;
    let doc = consent::change_doc(&ctx.store(), id, |doc| {
        if doc.retired {
            return Err(Error::Invalid(format!(
                "consent document #{id} is retired already"
            )));
        }
        doc.retired = true;
        Ok(())
    })?;
    ctx.audit(
        None,
        "consent_document_retired",
        Some(format!("document #{id}")),
    );
    Ok(format!("retired {}", describe(&doc)))
}

/// An operator records a withdrawal the client made another way (a letter, a call): a new
/// record with `operator` as the actor.
fn withdraw(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--client"], &[], USAGE)?;
    let ([id], Some(who)) = (a.words.as_slice(), a.value("--client")) else {
        return Err(usage());
    };
    let id = doc_id(Some(id))?;
    let client = ctx.find_client(who)?;
    let ns = ctx.store();
    let doc = consent::doc(&ns, id)?
        .filter(|d| d.applies_to(client.invoice_group_id))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "consent document #{id} for client {}",
                client.number
            ))
        })?;
    let seen = consent::latest_by_doc(&ns, client.id)?
        .into_iter()
        .find(|(d, _)| *d == id)
        .map_or(0, |(_, r)| r.number);
    let lang = client.language.as_deref().unwrap_or("en");
    let outcome = consent::record(
        &ns,
        &consent::Request {
            client_id: client.id,
            invoice_group: client.invoice_group_id,
            document: id,
            version: doc.current().number,
            hash: doc.shown(lang).hash,
            seen,
            withdraw: true,
            parts: Vec::new(),
            at: now(ctx),
            source_addr: None,
            user_agent: None,
            actor: Actor::Operator,
        },
    )?;
    let record = match outcome {
        Outcome::Recorded(r) => r,
        Outcome::Unchanged => {
            return Ok(format!(
                "client {} has not given consent #{id}; nothing recorded\n",
                client.number
            ));
        }
        Outcome::Refused(why) => {
            return Err(Error::Invalid(format!(
                "refused ({why:?}); nothing recorded"
            )));
        }
    };
    ctx.audit(
        Some(client.id),
        "consent_withdraw",
        Some(format!(
            "document #{id} version {} by an operator, record {}",
            record.version, record.number
        )),
    );
    let mut event = serde_json::json!({
        "client": ClientView::from(&client),
        "record": &record,
        "required": doc.required,
    });
    let _ = ctx.run_hook(crate::AFTER_CONSENT_CHANGE, &mut event);
    Ok(history_line(&record))
}

fn history(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let a = Args::parse(args, &["--client"], &["--csv"], USAGE)?;
    let (Some(who), true) = (a.value("--client"), a.words.is_empty()) else {
        return Err(usage());
    };
    let client = ctx.find_client(who)?;
    let records = consent::history(&ctx.store(), client.id)?;
    if a.flag("--csv") {
        let mut out = String::from(
            "record,at,client_number,document,version,title,lang,text_sha256,action,choice,actor,source_addr,user_agent\n",
        );
        for r in &records {
            let cells = [
                r.number.to_string(),
                r.at.clone(),
                client.number.clone(),
                r.document.to_string(),
                r.version.to_string(),
                r.title.clone(),
                r.lang.clone(),
                r.text_sha256.clone(),
                r.action.as_str().to_string(),
                r.choice.join("; "),
                actor(r.actor).to_string(),
                r.source_addr.clone().unwrap_or_default(),
                r.user_agent.clone().unwrap_or_default(),
            ];
            out.push_str(
                &cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
        return Ok(out);
    }
    if records.is_empty() {
        return Ok(format!("client {} has no consent records\n", client.number));
    }
    Ok(records.iter().map(history_line).collect())
}

fn actor(a: Actor) -> &'static str {
    match a {
        Actor::Client => "client",
        Actor::Operator => "operator",
    }
}

fn history_line(r: &Record) -> String {
    let choice = if r.choice.is_empty() {
        String::new()
    } else {
        format!(" [{}]", r.choice.join("; "))
    };
    format!(
        "{} {} {} #{} v{} \"{}\"{choice} by {} from {} ({}) lang {} sha256 {}\n",
        r.number,
        r.at,
        r.action.as_str(),
        r.document,
        r.version,
        r.title,
        actor(r.actor),
        r.source_addr.as_deref().unwrap_or("-"),
        r.user_agent.as_deref().unwrap_or("-"),
        r.lang,
        r.text_sha256,
    )
}

/// A CSV cell (RFC 4180 quoting). A cell that a spreadsheet would take for a formula starts
/// with `'`, so a user agent cannot run anything in the operator's spreadsheet.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The demo's consents: one required, one optional with two optional parts; alice has given
/// the required one.
pub fn demo(ctx: &OperatorCtx<'_>) -> Result<()> {
    let ns = ctx.store();
    let at = now(ctx);
    let required = consent::add_doc(
        &ns,
        Doc {
            id: 0,
            title: "Processing of personal data for the contract".into(),
            title_cs: Some("Zpracování osobních údajů pro smlouvu".into()),
            required: true,
            invoice_group: None,
            retired: false,
            versions: vec![Version {
                number: 1,
                created: at.clone(),
                text: include_str!("../demo/contract.en.md").into(),
                text_cs: Some(include_str!("../demo/contract.cs.md").into()),
            }],
        },
    )?;
    consent::add_doc(
        &ns,
        Doc {
            id: 0,
            title: "News and offers".into(),
            title_cs: Some("Novinky a nabídky".into()),
            required: false,
            invoice_group: None,
            retired: false,
            versions: vec![Version {
                number: 1,
                created: at.clone(),
                text: include_str!("../demo/news.en.md").into(),
                text_cs: Some(include_str!("../demo/news.cs.md").into()),
            }],
        },
    )?;
    let alice = ctx.find_client("alice")?;
    let doc = consent::doc(&ns, required)?.ok_or_else(|| Error::NotFound("demo consent".into()))?;
    let shown = doc.shown("en");
    let outcome = consent::record(
        &ns,
        &consent::Request {
            client_id: alice.id,
            invoice_group: alice.invoice_group_id,
            document: required,
            version: 1,
            hash: shown.hash,
            seen: 0,
            withdraw: false,
            parts: Vec::new(),
            at,
            source_addr: None,
            user_agent: Some("portico demo".into()),
            actor: Actor::Client,
        },
    )?;
    match outcome {
        Outcome::Recorded(_) => Ok(()),
        _ => Err(Error::Internal("the demo consent was not recorded".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
