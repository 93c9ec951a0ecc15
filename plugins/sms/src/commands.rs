//! `portico sms queue` (the outbox) and `portico sms send --client C --to NUMBER --text T`,
//! run directly or through the control socket. Also the demo's SMS settings.

use portico_core::plugin::{ClientView, CommandArgs, Error, OperatorCtx, Result};

use crate::model::{self, Accepted, NewSms};
use crate::{BEFORE_SMS_SEND, DEFAULT_COUNTRY, MAX_PARTS, gsm, phone};

const USAGE: &str = "usage: portico sms queue [--all]
       portico sms send --client C --to NUMBER --text T";

pub fn sms(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    match args.first().map(String::as_str) {
        Some("queue") => queue(ctx, &args[1..]),
        Some("send") => send(ctx, &args[1..]),
        _ => Err(Error::Invalid(USAGE.to_string())),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.replace(['\r', '\n'], " ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// The outbox (messages not yet handed to the gateway); with `--all`, the latest messages in
/// every state.
fn queue(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let opts = CommandArgs::parse(args, &[], &["--all"], USAGE)?;
    if let Some(w) = opts.words.first() {
        return Err(Error::Invalid(format!("unexpected `{w}`\n{USAGE}")));
    }
    let ns = ctx.store();
    let mut out = String::new();
    let line = |m: &model::Sms, next: Option<&str>| {
        let mut l = format!(
            "#{} {} to {} ({} part(s), {}) created {}",
            m.id,
            m.state.as_str(),
            m.to,
            m.parts,
            m.encoding.as_str(),
            m.created
        );
        if let Some(c) = m.client_id {
            l.push_str(&format!(" client #{c}"));
        }
        if m.attempts > 0 {
            l.push_str(&format!(" attempts {}", m.attempts));
        }
        if let Some(n) = next {
            l.push_str(&format!(" next attempt {n}"));
        }
        if let Some(e) = &m.error {
            l.push_str(&format!(" last error: {}", one_line(e, 200)));
        }
        l.push_str(&format!(": {}\n", one_line(&m.text, 60)));
        l
    };
    if opts.flag("--all") {
        let all = model::all_messages(&ns, 500)?;
        if all.is_empty() {
            return Ok("no messages\n".into());
        }
        for m in &all {
            out.push_str(&line(m, None));
        }
        return Ok(out);
    }
    let pending = model::outbox(&ns)?;
    if pending.is_empty() {
        return Ok("the SMS outbox is empty\n".into());
    }
    for (p, m) in &pending {
        match m {
            Some(m) => out.push_str(&line(m, Some(&p.next_attempt))),
            None => out.push_str(&format!("#{} (message missing)\n", p.id)),
        }
    }
    Ok(out)
}

/// An operator's SMS to a number, for a client: through the same checks, hook and outbox,
/// not counted against the client's quota.
fn send(ctx: &OperatorCtx<'_>, args: &[String]) -> Result<String> {
    let opts = CommandArgs::parse(args, &["--client", "--to", "--text"], &[], USAGE)?;
    if let Some(w) = opts.words.first() {
        return Err(Error::Invalid(format!("unexpected `{w}`\n{USAGE}")));
    }
    let (Some(who), Some(to), Some(text)) = (
        opts.value("--client"),
        opts.value("--to"),
        opts.value("--text"),
    ) else {
        return Err(Error::Invalid(USAGE.to_string()));
    };
    let client = ctx.find_client(who)?;
    let group = Some(client.invoice_group_id);
    let country = phone::country(ctx.setting(DEFAULT_COUNTRY, group).as_str().unwrap_or(""));
    let max = ctx.setting(MAX_PARTS, group).as_i64().unwrap_or(5).max(1) as usize;
    let check = |to: &str, text: &str| -> Result<String> {
        check_operator_sms(country, max, to, text).map_err(Error::Invalid)
    };
    let number = check(to, text)?;
    let mut event = serde_json::json!({
        "client": ClientView::from(&client),
        "to": number,
        "text": text,
        "origin": "operator",
    });
    ctx.run_hook(BEFORE_SMS_SEND, &mut event).map_err(|v| {
        Error::Invalid(format!(
            "refused by before_sms_send: {}",
            v.message_in("en")
        ))
    })?;
    let text = event["text"].as_str().unwrap_or("").to_string();
    let number = check(event["to"].as_str().unwrap_or(""), &text)?;
    let at = portico_core::plugin::stamp(ctx.now());
    let month = ctx.now().format("%Y-%m").to_string();
    let accepted = model::enqueue(
        &ctx.store(),
        &NewSms::from_operator(client.id, &number, &text, &month, &at),
    )?;
    match accepted {
        Accepted::New(id) | Accepted::Again(id) => {
            let parts = gsm::count(&text).parts;
            ctx.audit(
                Some(client.id),
                "sms queued by an operator",
                Some(format!("#{id} to {number}, {parts} part(s)")),
            );
            Ok(format!(
                "queued SMS #{id} to {number} ({parts} part(s)) for client {}\n",
                client.number
            ))
        }
        Accepted::OverQuota { .. } | Accepted::TooMany => {
            Err(Error::Invalid("over the quota".into()))
        }
    }
}

/// An operator's SMS (`portico sms send`, a helpdesk reply): the recipient in E.164, or why it
/// cannot go: not a number, an empty text, more parts than `max` (`sms_max_parts`).
pub(crate) fn check_operator_sms(
    country: Option<phonenumber::country::Id>,
    max: usize,
    to: &str,
    text: &str,
) -> std::result::Result<String, String> {
    let number = phone::normalize(to, country)
        .ok_or_else(|| format!("`{to}` is not a valid phone number"))?;
    if text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    let parts = gsm::count(text).parts;
    if parts > max || text.chars().count() > crate::web::MAX_TEXT_CHARS {
        return Err(format!(
            "the text takes {parts} parts; sms_max_parts allows {max}"
        ));
    }
    Ok(number)
}

/// The demo: the tab on, a monthly limit, and a gateway that points at nothing reachable, so
/// messages stay visibly queued.
pub fn demo(ctx: &OperatorCtx<'_>) -> Result<()> {
    ctx.set_own_setting(crate::ENABLE, None, "on")?;
    ctx.set_own_setting(crate::PER_MONTH, None, "20")?;
    ctx.set_own_setting(crate::GATEWAY_URL, None, "http://127.0.0.1:9/sms")?;
    let alice = ctx.find_client("alice")?;
    model::save_contact(
        &ctx.store(),
        alice.id,
        None,
        "Bob (neighbour)",
        "+420601123456",
    )?;
    Ok(())
}
