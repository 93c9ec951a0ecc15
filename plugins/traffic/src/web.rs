//! The Traffic tab: one service's download and upload for a day, week, month or year as a
//! server-drawn SVG chart with totals and the same numbers in a table, the tariff's FUP limits
//! with what is used, and the FUP e-mail opt-in.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use portico_core::Error;
use portico_core::plugin::{
    CheckedForm, CsrfField, FormRefused, Page, PageHtml, SameOrigin, ServiceKind,
    ServiceWithTariff, id_key, show_date,
};
use portico_core::rocket::form::FromForm;
use portico_core::rocket::http::Status;
use portico_core::rocket::response::Redirect;
use portico_core::rocket::{Either, Route, get, post, routes};
use serde::Serialize;

use crate::chart::{self, Point};
use crate::fup;
use crate::store::{self, DAY, HOUR, Resolution, SLOT};

const TAB: &str = "traffic";

pub fn routes() -> Vec<Route> {
    routes![index, service, fup_mail]
}

/// Whether a service's traffic is shown to its client: an active Internet service whose tariff
/// does not hide traffic.
pub fn shown(s: &ServiceWithTariff) -> bool {
    s.service.kind == ServiceKind::Internet
        && s.service.active
        && !s.tariff.as_ref().is_some_and(|t| t.hide_traffic_in_portal)
}

/// The session client's services whose traffic is shown; none when the tab is off.
fn visible(page: &Page<'_>) -> Result<Vec<ServiceWithTariff>, Error> {
    if !page.flag("ci_display_graph_tab") {
        return Ok(Vec::new());
    }
    Ok(page.data().services()?.into_iter().filter(shown).collect())
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn parse(s: Option<&str>) -> Option<Period> {
        match s {
            None | Some("") | Some("month") => Some(Period::Month),
            Some("day") => Some(Period::Day),
            Some("week") => Some(Period::Week),
            Some("year") => Some(Period::Year),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
    }
    /// The first day of the period holding `d`, and the first day after it.
    fn span(self, d: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Day => (d, d + Duration::days(1)),
            Period::Week => {
                let from = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
                (from, from + Duration::days(7))
            }
            Period::Month => (fup::month_start(d), fup::next_month(d)),
            Period::Year => {
                let from = NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d);
                (
                    from,
                    NaiveDate::from_ymd_opt(d.year() + 1, 1, 1).unwrap_or(d),
                )
            }
        }
    }
    /// A day in the period before (`-1`) or after (`1`) the one starting at `from`.
    fn shift(self, from: NaiveDate, by: i32) -> NaiveDate {
        match self {
            Period::Day => from + Duration::days(i64::from(by)),
            Period::Week => from + Duration::days(7 * i64::from(by)),
            Period::Month if by < 0 => from
                .checked_sub_months(chrono::Months::new(1))
                .unwrap_or(from),
            Period::Month => fup::next_month(from),
            Period::Year => NaiveDate::from_ymd_opt(from.year() + by, 1, 1).unwrap_or(from),
        }
    }
}

// Months and clock times are written with `format!` rather than chrono's `format`, which parses
// its pattern at every call: a month's page writes some seventy labels (dates: `show_date`).

/// A month as `2026-10` (English) or `10/2026` (Czech).
fn show_month(lang: &str, d: NaiveDate) -> String {
    if lang == "cs" {
        format!("{}/{}", d.month(), d.year())
    } else {
        format!("{:04}-{:02}", d.year(), d.month())
    }
}

fn show_clock(t: DateTime<Utc>) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn time_of(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

#[derive(Serialize)]
struct Row {
    label: String,
    down: String,
    up: String,
    down_bytes: u64,
    up_bytes: u64,
}

#[derive(Serialize)]
struct Link {
    name: String,
    href: String,
    current: bool,
}

#[derive(Serialize)]
struct FupView {
    number: usize,
    used: String,
    limit: String,
    used_bytes: u64,
    limit_bytes: u64,
    percent: u64,
    over: bool,
    speed: String,
}

#[derive(Serialize)]
struct TrafficView {
    service_id: u64,
    service_name: String,
    services: Vec<Link>,
    periods: Vec<Link>,
    period: Period,
    period_label: String,
    prev: String,
    next: Option<String>,
    chart: String,
    rows: Vec<Row>,
    total_down: String,
    total_up: String,
    total: String,
    resolution: &'static str,
    fup: Vec<FupView>,
    fup_reset: String,
    fup_month: String,
    fup_mail: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[get("/?<saved>")]
fn index(page: Page<'_>, saved: Option<&str>) -> Result<Result<PageHtml, Status>, Error> {
    let services = visible(&page)?;
    let Some(first) = services.first() else {
        return Ok(Err(Status::NotFound));
    };
    let notice = saved_notice(&page, saved);
    render(
        &page,
        &services,
        first.service.id,
        Period::Month,
        None,
        notice,
        None,
        Status::Ok,
    )
    .map(Ok)
}

fn saved_notice(page: &Page<'_>, saved: Option<&str>) -> Option<String> {
    match saved {
        Some("on") => Some(page.t("traffic-fup-mail-on")),
        Some("off") => Some(page.t("traffic-fup-mail-off")),
        _ => None,
    }
}

#[get("/<id>?<period>&<date>&<saved>")]
fn service(
    page: Page<'_>,
    id: u64,
    period: Option<&str>,
    date: Option<&str>,
    saved: Option<&str>,
) -> Result<Result<PageHtml, Status>, Error> {
    let services = visible(&page)?;
    if !services.iter().any(|s| s.service.id == id) {
        return Ok(Err(Status::NotFound));
    }
    let Some(period) = Period::parse(period) else {
        return Ok(Err(Status::NotFound));
    };
    let day = match date.filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) if d.year() >= 1970 && d.year() <= 9000 => Some(d),
            _ => return Ok(Err(Status::NotFound)),
        },
    };
    let notice = saved_notice(&page, saved);
    render(&page, &services, id, period, day, notice, None, Status::Ok).map(Ok)
}

#[allow(clippy::too_many_arguments)]
fn render(
    page: &Page<'_>,
    services: &[ServiceWithTariff],
    id: u64,
    period: Period,
    day: Option<NaiveDate>,
    notice: Option<String>,
    error: Option<String>,
    status: Status,
) -> Result<PageHtml, Error> {
    let lang = page.lang();
    let ns = page.store();
    let now = page.now();
    let today = now.date_naive();
    let day = day.unwrap_or(today).min(today);
    let (from, to) = period.span(day);
    let Some(s) = services.iter().find(|s| s.service.id == id) else {
        return Err(Error::NotFound("service".into()));
    };
    let href = |p: Period, d: NaiveDate| format!("/traffic/{id}?period={}&date={d}", p.name());
    let (f, t) = (fup::unix(from), fup::unix(to));
    // The day view uses 5-minute samples while they are kept, hours before that.
    let raw_days = page.int(store::RAW_DAYS).clamp(1, 366);
    let raw_from = store::floor(now.timestamp(), DAY) - raw_days * DAY;
    let (res, buckets): (Resolution, Vec<i64>) = match period {
        Period::Day if f >= raw_from => (Resolution::Raw, (f..t).step_by(SLOT as usize).collect()),
        Period::Day | Period::Week => (Resolution::Hour, (f..t).step_by(HOUR as usize).collect()),
        Period::Month | Period::Year => (Resolution::Day, (f..t).step_by(DAY as usize).collect()),
    };
    let stored = store::series(&ns, id, res, f, t)?;
    // Buckets up to now: stored values, zero where nothing was recorded.
    let mut values: Vec<(i64, u64, u64)> = Vec::with_capacity(buckets.len());
    let mut it = stored.into_iter().peekable();
    for b in buckets.into_iter().filter(|b| *b <= now.timestamp()) {
        let mut v = (b, 0u64, 0u64);
        while let Some((at, d, u)) = it.peek().copied() {
            if at < b {
                it.next();
            } else {
                if at == b {
                    v = (b, d, u);
                    it.next();
                }
                break;
            }
        }
        values.push(v);
    }
    // A year is shown by month.
    if period == Period::Year {
        let mut months: Vec<(i64, u64, u64)> = Vec::new();
        for (at, d, u) in values {
            let m = fup::unix(fup::month_start(time_of(at).date_naive()));
            match months.last_mut() {
                Some(last) if last.0 == m => {
                    last.1 = last.1.saturating_add(d);
                    last.2 = last.2.saturating_add(u);
                }
                _ => months.push((m, d, u)),
            }
        }
        values = months;
    }
    let label = |at: i64, short: bool| {
        let t = time_of(at);
        match period {
            Period::Day => show_clock(t),
            Period::Week if short => {
                if lang == "cs" {
                    format!("{}. {}.", t.day(), t.month())
                } else {
                    format!("{:02}-{:02}", t.month(), t.day())
                }
            }
            Period::Week => format!("{} {}", show_date(lang, t.date_naive()), show_clock(t)),
            Period::Month if short => t.day().to_string(),
            Period::Month => show_date(lang, t.date_naive()),
            Period::Year => show_month(lang, t.date_naive()),
        }
    };
    let total_down = values.iter().map(|v| v.1).fold(0u64, u64::saturating_add);
    let total_up = values.iter().map(|v| v.2).fold(0u64, u64::saturating_add);
    let period_label = match period {
        Period::Day => show_date(lang, from),
        Period::Week => format!(
            "{} – {}",
            show_date(lang, from),
            show_date(lang, to - Duration::days(1))
        ),
        Period::Month => show_month(lang, from),
        Period::Year => from.year().to_string(),
    };
    let title = page.t_args(
        "traffic-chart-title",
        &[
            ("service", s.service.name.clone()),
            ("period", period_label.clone()),
        ],
    );
    let desc = page.t_args(
        "traffic-chart-desc",
        &[
            ("down", chart::bytes(lang, total_down)),
            ("up", chart::bytes(lang, total_up)),
        ],
    );
    let points: Vec<Point> = values
        .iter()
        .map(|(at, d, u)| Point {
            label: label(*at, true),
            down: *d,
            up: *u,
        })
        .collect();
    let download = page.t("traffic-download");
    let upload = page.t("traffic-upload");
    let svg = chart::svg(
        &points,
        &chart::Labels {
            title: &title,
            desc: &desc,
            download: &download,
            upload: &upload,
            lang,
        },
    );
    let rows = values
        .iter()
        .map(|(at, d, u)| Row {
            label: label(*at, false),
            down: chart::bytes(lang, *d),
            up: chart::bytes(lang, *u),
            down_bytes: *d,
            up_bytes: *u,
        })
        .collect();
    // FUP: always the current month.
    let month = fup::month_start(today);
    let used = fup::used_this_month(&ns, id, now)?;
    let fup_view = s
        .tariff
        .iter()
        .flat_map(|t| t.fup_limits.iter())
        .enumerate()
        .map(|(i, l)| {
            let limit = fup::limit_bytes(l);
            FupView {
                number: i + 1,
                used: chart::bytes(lang, used),
                limit: chart::bytes(lang, limit),
                used_bytes: used,
                limit_bytes: limit,
                percent: (u128::from(used) * 100 / u128::from(limit.max(1))).min(999) as u64,
                over: used >= limit,
                speed: format!("{} / {}", speed(l.download_kbps), speed(l.upload_kbps)),
            }
        })
        .collect();
    let next_day = period.shift(from, 1);
    let view = TrafficView {
        service_id: id,
        service_name: s.service.name.clone(),
        services: services
            .iter()
            .map(|x| Link {
                name: x.service.name.clone(),
                href: format!(
                    "/traffic/{}?period={}&date={day}",
                    x.service.id,
                    period.name()
                ),
                current: x.service.id == id,
            })
            .collect(),
        periods: [Period::Day, Period::Week, Period::Month, Period::Year]
            .into_iter()
            .map(|p| Link {
                name: page.t(&format!("traffic-period-{}", p.name())),
                href: href(p, day),
                current: p == period,
            })
            .collect(),
        period,
        period_label,
        prev: href(period, period.shift(from, -1)),
        next: (next_day <= today).then(|| href(period, next_day)),
        chart: svg,
        rows,
        total_down: chart::bytes(lang, total_down),
        total_up: chart::bytes(lang, total_up),
        total: chart::bytes(lang, total_down.saturating_add(total_up)),
        resolution: match (period, res) {
            (Period::Year, _) => "month",
            (_, Resolution::Raw) => "5min",
            (_, Resolution::Hour) => "hour",
            (_, Resolution::Day) => "day",
        },
        fup: fup_view,
        fup_reset: show_date(lang, fup::next_month(month)),
        fup_month: show_month(lang, month),
        fup_mail: fup::opted_in(&ns, page.client().id)?,
        notice,
        error,
    };
    page.render_with_status(TAB, "traffic.html", &view, status)
}

fn speed(kbps: u32) -> String {
    if kbps >= 1000 && kbps.is_multiple_of(1000) {
        format!("{} Mbit/s", kbps / 1000)
    } else {
        format!("{kbps} kbit/s")
    }
}

#[derive(FromForm)]
struct FupMailForm {
    csrf: Option<String>,
    /// The service page to go back to.
    service: Option<String>,
    mail: Option<String>,
}

impl CsrfField for FupMailForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[post("/fup-mail", data = "<form>")]
fn fup_mail(
    page: Page<'_>,
    _same_origin: SameOrigin,
    form: Result<CheckedForm<FupMailForm>, FormRefused<'_>>,
) -> Result<Either<Result<PageHtml, Status>, Redirect>, Error> {
    let services = visible(&page)?;
    let Some(first) = services.first() else {
        return Ok(Either::Left(Err(Status::NotFound)));
    };
    let form = match form {
        Ok(CheckedForm(f)) => f,
        Err(refused) => {
            let (key, status) = match refused {
                FormRefused::Token => ("traffic-error-expired", Status::Forbidden),
                ref other => ("traffic-error-form", other.status()),
            };
            let id = first.service.id;
            return render(
                &page,
                &services,
                id,
                Period::Month,
                None,
                None,
                Some(page.t(key)),
                status,
            )
            .map(|p| Either::Left(Ok(p)));
        }
    };
    // Back to the service the form was on, if it is one of the client's shown services.
    let back = form
        .service
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|id| services.iter().any(|s| s.service.id == *id));
    let on = matches!(form.mail.as_deref(), Some("on" | "true" | "1" | "yes"));
    let client = page.client().id;
    page.store().write(|tx| {
        if on {
            tx.put(fup::OPT_IN, &id_key(client), &true)
        } else {
            tx.delete(fup::OPT_IN, &id_key(client))
        }
    })?;
    page.audit(if on { "fup_mail_on" } else { "fup_mail_off" }, None);
    let saved = if on { "on" } else { "off" };
    Ok(Either::Right(Redirect::to(match back {
        Some(id) => format!("/traffic/{id}?saved={saved}"),
        None => format!("/traffic/?saved={saved}"),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_clock_times_are_written_per_language() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).expect("date");
        assert_eq!(show_month("en", d), "2026-03");
        assert_eq!(show_month("cs", d), "3/2026");
        let t = d.and_hms_opt(9, 5, 0).expect("time").and_utc();
        assert_eq!(show_clock(t), "09:05");
    }
}
