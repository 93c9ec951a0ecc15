//! The outbox's sender: a worker thread (started by `portico serve`) that hands queued
//! messages to the gateway `sms_notify` names.
//!
//! - `gateway`: one HTTP request per message (`sms_gateway_url`, `sms_gateway_method`,
//!   `sms_gateway_body`), accepted when the status matches `sms_gateway_success_status` and
//!   the answer contains `sms_gateway_success_body`.
//! - `smpp`: an SMPP 3.4 transceiver session ([`crate::smpp`]), with delivery receipts.
//!
//! A message leaves the outbox in the same flushed write that marks it sent, before the next
//! one is tried, so a restart never sends an accepted message again — except one whose
//! acceptance was not yet written when the process died (the `{id}` placeholder lets a
//! gateway drop such a repeat). Passing failures (no connection, 5xx, 408, 429) are retried
//! with growing delays (up to 10 minutes apart) for as long as it takes; other 4xx answers
//! fail the message.

use std::time::Duration;

use portico_core::plugin::{ClientView, WorkerCtx, stamp};

use crate::model::{self, Sms};
use crate::{
    AFTER_SMS_SENT, GATEWAY_BODY, GATEWAY_METHOD, GATEWAY_SUCCESS_BODY, GATEWAY_SUCCESS_STATUS,
    GATEWAY_URL, SMS_NOTIFY,
};

const POLL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_secs(15);
/// Seconds before the n-th retry; the last repeats.
const RETRY_DELAYS: [i64; 6] = [5, 15, 60, 120, 300, 600];
/// Longest answer body read from a gateway.
const MAX_ANSWER: usize = 64 * 1024;

pub fn run(ctx: WorkerCtx) {
    let http = match reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                plugin = "sms",
                "no HTTP client, the SMS gateway sender stops: {e}"
            );
            return;
        }
    };
    loop {
        let mode = ctx.setting(SMS_NOTIFY, None);
        match mode.as_str() {
            Some("gateway") => {
                if let Err(e) = drain(&ctx, &http) {
                    tracing::error!(plugin = "sms", "SMS outbox: {e}");
                }
            }
            // Returns when sms_notify is no longer smpp.
            Some("smpp") => crate::smpp::run(&ctx),
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

fn drain(ctx: &WorkerCtx, http: &reqwest::blocking::Client) -> portico_core::Result<()> {
    let ns = ctx.store();
    let url = ctx
        .setting(GATEWAY_URL, None)
        .as_str()
        .unwrap_or("")
        .to_string();
    if url.is_empty() {
        return Ok(());
    }
    for (pending, sms) in model::outbox(&ns)? {
        let now = ctx.now();
        let due =
            chrono::DateTime::parse_from_rfc3339(&pending.next_attempt).map_or(true, |t| t <= now);
        if !due {
            continue;
        }
        let Some(sms) = sms else {
            model::mark_failed(&ns, pending.id, &stamp(now), "message missing")?;
            continue;
        };
        match attempt(ctx, http, &url, &sms) {
            Outcome::Accepted => {
                if model::mark_sent(&ns, sms.id, &stamp(ctx.now()))? {
                    tracing::info!(plugin = "sms", id = sms.id, to = %sms.to, "SMS accepted by the gateway");
                    after_sent(ctx, &sms);
                }
            }
            Outcome::Refused(reason) => {
                tracing::warn!(
                    plugin = "sms",
                    id = sms.id,
                    "the gateway refused an SMS: {reason}"
                );
                model::mark_failed(&ns, sms.id, &stamp(ctx.now()), &reason)?;
                ctx.audit(
                    sms.client_id,
                    "sms failed",
                    Some(format!("#{}: {reason}", sms.id)),
                );
            }
            Outcome::Later(reason) => {
                let delay = RETRY_DELAYS[(sms.attempts as usize).min(RETRY_DELAYS.len() - 1)];
                let next = ctx.now() + chrono::Duration::seconds(delay);
                let n = model::retry_later(&ns, sms.id, &stamp(ctx.now()), &stamp(next), &reason)?;
                tracing::warn!(
                    plugin = "sms",
                    id = sms.id,
                    attempt = n,
                    "SMS not sent, will retry in {delay} s: {reason}"
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn after_sent(ctx: &WorkerCtx, sms: &Sms) {
    let client = sms
        .client_id
        .and_then(|id| ctx.client(id).ok().flatten())
        .map(|c| serde_json::to_value(ClientView::from(&c)).unwrap_or_default());
    let mut event = serde_json::json!({
        "client": client,
        "id": sms.id,
        "to": sms.to,
        "text": sms.text,
        "parts": sms.parts,
    });
    let _ = ctx.run_hook(AFTER_SMS_SENT, &mut event);
}

enum Outcome {
    Accepted,
    Refused(String),
    Later(String),
}

/// `{to}`, `{text}` and `{id}` replaced by the encoded values.
fn fill(template: &str, sms: &Sms, encode: impl Fn(&str) -> String) -> String {
    template
        .replace("{to}", &encode(&sms.to))
        .replace("{text}", &encode(&sms.text))
        .replace("{id}", &encode(&sms.id.to_string()))
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn json_encode(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
}

/// Whether a status matches the success rule (`2xx`, `200 202`, …).
pub fn status_matches(rule: &str, status: u16) -> bool {
    let rule = if rule.trim().is_empty() { "2xx" } else { rule };
    rule.split([' ', ',', ';'])
        .filter(|w| !w.is_empty())
        .any(|w| match w.to_ascii_lowercase().strip_suffix("xx") {
            Some(class) => class.parse::<u16>().is_ok_and(|c| status / 100 == c),
            None => w.parse::<u16>().is_ok_and(|s| s == status),
        })
}

fn attempt(ctx: &WorkerCtx, http: &reqwest::blocking::Client, url: &str, sms: &Sms) -> Outcome {
    let text = |k: &str| ctx.setting(k, None).as_str().unwrap_or("").to_string();
    let url = fill(url, sms, url_encode);
    let request = if text(GATEWAY_METHOD) == "GET" {
        http.get(&url)
    } else {
        let template = text(GATEWAY_BODY);
        let json = template.trim_start().starts_with('{');
        let (body, ct) = if json {
            (fill(&template, sms, json_encode), "application/json")
        } else {
            (
                fill(&template, sms, url_encode),
                "application/x-www-form-urlencoded",
            )
        };
        http.post(&url).header("Content-Type", ct).body(body)
    };
    let answer = match request.send() {
        Ok(a) => a,
        // The URL may hold a key: the error is logged without it.
        Err(e) => {
            return Outcome::Later(format!("no answer from the gateway: {}", e.without_url()));
        }
    };
    let status = answer.status().as_u16();
    let mut body = answer.text().unwrap_or_default();
    body.truncate(
        body.char_indices()
            .nth(MAX_ANSWER)
            .map_or(body.len(), |(i, _)| i),
    );
    let want_body = text(GATEWAY_SUCCESS_BODY);
    if status_matches(&text(GATEWAY_SUCCESS_STATUS), status)
        && (want_body.is_empty() || body.contains(&want_body))
    {
        return Outcome::Accepted;
    }
    let snippet: String = body.chars().take(200).collect();
    let reason = format!("gateway answered {status}: {snippet}");
    if status >= 500 || status == 408 || status == 429 || (200..300).contains(&status) {
        // A 2xx that does not match the rule is not a refusal we understand: try again.
        Outcome::Later(reason)
    } else {
        Outcome::Refused(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_rule() {
        assert!(status_matches("2xx", 200));
        assert!(status_matches("", 202));
        assert!(!status_matches("2xx", 302));
        assert!(status_matches("200, 202", 202));
        assert!(!status_matches("200 202", 201));
        assert_eq!(json_encode("a\"b\n"), "a\\\"b\\n");
        assert_eq!(url_encode("a b&č"), "a+b%26%C4%8D");
    }
}
