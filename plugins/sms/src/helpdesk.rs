//! An operator's helpdesk reply of channel `sms` (`portico helpdesk reply ID --channel sms`)
//! goes to the ticket client's mobile through the outbox, like `portico sms send`: checked,
//! through `before_sms_send`, not charged to the client's quota. The helpdesk declares
//! `after_ticket_reply`; this handler says in its `sms` field what became of the SMS.

use portico_core::plugin::{ClientView, HookCtx};
use serde_json::Value;

use crate::model::{self, Accepted, NewSms};
use crate::{BEFORE_SMS_SEND, DEFAULT_COUNTRY, MAX_PARTS, SMS_NOTIFY, gsm, phone};

/// The `after_ticket_reply` handler.
pub fn after_ticket_reply(ctx: &HookCtx<'_>, event: &mut Value) {
    if event["channel"] != "sms" || event["from_client"] != false {
        return;
    }
    let line = match send(ctx, event) {
        Ok(line) => line,
        Err(why) => {
            tracing::warn!(ticket = %event["ticket_id"], "helpdesk reply not sent as SMS: {why}");
            format!("no SMS was sent: {why}")
        }
    };
    event["sms"] = Value::String(line);
}

fn send(ctx: &HookCtx<'_>, event: &Value) -> Result<String, String> {
    if ctx.setting(SMS_NOTIFY, None).as_str() == Some("disabled") {
        return Err("sms_notify is disabled".into());
    }
    let client: ClientView = serde_json::from_value(event["client"].clone())
        .map_err(|_| "the ticket has no client".to_string())?;
    let group = Some(client.invoice_group_id);
    let mobile = client
        .mobile
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| format!("client {} has no mobile number", client.number))?;
    let country = phone::country(ctx.setting(DEFAULT_COUNTRY, group).as_str().unwrap_or(""));
    let max = ctx.setting(MAX_PARTS, group).as_i64().unwrap_or(5).max(1) as usize;
    let check = |to: &str, text: &str| crate::commands::check_operator_sms(country, max, to, text);
    let text = event["text"].as_str().unwrap_or("");
    let number = check(&mobile, text)?;
    let mut sms = serde_json::json!({
        "client": client,
        "to": number,
        "text": text,
        "origin": "operator",
    });
    ctx.run_hook(BEFORE_SMS_SEND, &mut sms)
        .map_err(|v| format!("refused by before_sms_send: {}", v.message_in("en")))?;
    let text = sms["text"].as_str().unwrap_or("").to_string();
    let number = check(sms["to"].as_str().unwrap_or(""), &text)?;
    let now = ctx.now();
    let at = portico_core::plugin::stamp(now);
    let month = now.format("%Y-%m").to_string();
    let accepted = model::enqueue(
        ctx.store(),
        &NewSms::from_operator(client.id, &number, &text, &month, &at),
    )
    .map_err(|e| format!("the outbox refused it: {e}"))?;
    match accepted {
        Accepted::New(id) | Accepted::Again(id) => Ok(format!(
            "SMS #{id} queued to {number} ({} part(s))",
            gsm::count(&text).parts
        )),
        Accepted::OverQuota { .. } | Accepted::TooMany => Err("over the quota".into()),
    }
}
