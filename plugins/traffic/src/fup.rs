//! FUP: a tariff's data limits per calendar month (UTC), counted as download + upload, and the
//! e-mail a client may opt in to when usage passes 80 % and 100 % of a limit (once per month
//! and threshold).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use portico_core::plugin::{FupLimit, Namespace, OperatorCtx, Result, ServiceKind, id_key};

use crate::store::{self, Resolution};

/// Tree: client id → `true` when the client wants FUP e-mails.
pub const OPT_IN: &str = "fup_mail";
/// Tree: service ++ month start ++ limit index ++ threshold → when the mail was queued.
const SENT: &str = "fup_sent";
/// Thresholds that send a mail, in percent.
pub const THRESHOLDS: [u8; 2] = [80, 100];

pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

pub fn next_month(d: NaiveDate) -> NaiveDate {
    let m = month_start(d);
    m.checked_add_months(chrono::Months::new(1)).unwrap_or(m)
}

pub fn unix(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .timestamp()
}

/// Bytes one limit allows (decimal gigabytes).
pub fn limit_bytes(l: &FupLimit) -> u64 {
    u64::from(l.data_gb) * 1_000_000_000
}

/// Download + upload of `service` in the calendar month holding `now`.
pub fn used_this_month(ns: &Namespace, service: u64, now: DateTime<Utc>) -> Result<u64> {
    let from = month_start(now.date_naive());
    let to = next_month(from);
    Ok(
        store::series(ns, service, Resolution::Day, unix(from), unix(to))?
            .iter()
            .map(|(_, d, u)| d.saturating_add(*u))
            .fold(0u64, u64::saturating_add),
    )
}

pub fn opted_in(ns: &Namespace, client: u64) -> Result<bool> {
    Ok(ns.get::<bool>(OPT_IN, &id_key(client))?.unwrap_or(false))
}

fn sent_key(service: u64, month: i64, limit: usize, threshold: u8) -> Vec<u8> {
    let mut k = store::key(service, month).to_vec();
    k.push(limit.min(255) as u8);
    k.push(threshold);
    k
}

/// After an import: for each service whose client opted in, mails each threshold of each limit
/// passed this month that was not mailed yet. Marking a threshold as mailed is checked and done
/// in one transaction, so parallel imports send it once.
pub fn check_services(ctx: &OperatorCtx<'_>, services: &[u64]) -> Result<()> {
    let ns = ctx.store();
    let now = ctx.now();
    let month = month_start(now.date_naive());
    for &id in services {
        let Some(s) = ctx.service(id)? else { continue };
        let Some(tariff) = s.tariff.as_ref() else {
            continue;
        };
        if tariff.fup_limits.is_empty()
            || tariff.hide_traffic_in_portal
            || s.service.kind != ServiceKind::Internet
            || !opted_in(&ns, s.service.client_id)?
        {
            continue;
        }
        let Some(client) = ctx.client_by_id(s.service.client_id)? else {
            continue;
        };
        if !ctx
            .setting("ci_display_graph_tab", Some(client.invoice_group_id))
            .as_bool()
            .unwrap_or(false)
        {
            continue;
        }
        let used = used_this_month(&ns, id, now)?;
        for (i, limit) in tariff.fup_limits.iter().enumerate() {
            let allowed = limit_bytes(limit);
            if allowed == 0 {
                continue;
            }
            for t in THRESHOLDS {
                if u128::from(used) * 100 < u128::from(allowed) * u128::from(t) {
                    continue;
                }
                let key = sent_key(id, unix(month), i, t);
                let fresh = ns.write(|tx| {
                    if tx.get_bytes(SENT, &key)?.is_some() {
                        return Ok(false);
                    }
                    tx.put(SENT, &key, &now.timestamp())?;
                    Ok(true)
                })?;
                if !fresh {
                    continue;
                }
                let lang = match client.language.as_deref() {
                    Some("cs") => "cs",
                    _ => "en",
                };
                let args = [
                    ("service", s.service.name.clone()),
                    ("percent", t.to_string()),
                    ("used", crate::chart::bytes(lang, used)),
                    ("limit", crate::chart::bytes(lang, allowed)),
                    (
                        "reset",
                        portico_core::plugin::show_date(lang, next_month(month)),
                    ),
                ];
                let subject = ctx.t_args(lang, "traffic-fup-mail-subject", &args);
                let mut body = ctx.t_args(lang, "traffic-fup-mail-body", &args);
                if let Some(link) = ctx.portal_link(&format!("traffic/{id}")) {
                    body.push_str("\n\n");
                    body.push_str(&link);
                }
                if let Err(e) = ctx.queue_mail_to_client(&client, &subject, &body) {
                    tracing::warn!(service = id, "FUP mail not queued: {e}");
                    // Not sent: the next import tries again.
                    ns.delete(SENT, &key)?;
                } else {
                    ctx.audit(
                        Some(client.id),
                        "fup_mail",
                        Some(format!("service {id}: {t} % of limit {}", i + 1)),
                    );
                }
            }
        }
    }
    Ok(())
}
