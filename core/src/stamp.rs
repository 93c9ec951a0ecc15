//! Times as the portal and its plugins store them (RFC 3339 UTC stamps, to the second) and as a
//! page shows them in its language.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

/// `2026-12-01T10:15:00Z`: the one form every stored time takes; stamps sort as times do.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stored stamp as `lang` writes a date and time to the minute: `2026-12-01 10:15 UTC`, in
/// Czech `1. 12. 2026 10:15 UTC`. Text that is not a stamp is shown as it is.
pub fn show_time(lang: &str, at: &str) -> String {
    shown(lang, at, "%Y-%m-%d %H:%M UTC", "%-d. %-m. %Y %H:%M UTC")
}

/// A date as `lang` writes it: `2026-12-01`, in Czech `1. 12. 2026`. Written with `format!`,
/// not chrono's `format` (which parses its pattern at every call: a page may show dozens).
pub fn show_date(lang: &str, d: NaiveDate) -> String {
    if lang == "cs" {
        format!("{}. {}. {}", d.day(), d.month(), d.year())
    } else {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}

/// [`show_time`] to the second, for records whose exact moment matters (consents).
pub fn show_time_seconds(lang: &str, at: &str) -> String {
    shown(
        lang,
        at,
        "%Y-%m-%d %H:%M:%S UTC",
        "%-d. %-m. %Y %H:%M:%S UTC",
    )
}

fn shown(lang: &str, at: &str, english: &str, czech: &str) -> String {
    match DateTime::parse_from_rfc3339(at) {
        Ok(t) => t
            .with_timezone(&Utc)
            .format(if lang == "cs" { czech } else { english })
            .to_string(),
        Err(_) => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_shown_in_the_pages_language() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).expect("date");
        assert_eq!(show_date("en", d), "2026-03-07");
        assert_eq!(show_date("cs", d), "7. 3. 2026");
    }

    #[test]
    fn stamps_are_shown_in_the_pages_language() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T09:05:07+00:00")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(stamp(t), "2026-12-01T09:05:07Z");
        assert_eq!(show_time("en", &stamp(t)), "2026-12-01 09:05 UTC");
        assert_eq!(show_time("cs", &stamp(t)), "1. 12. 2026 09:05 UTC");
        assert_eq!(
            show_time_seconds("en", &stamp(t)),
            "2026-12-01 09:05:07 UTC"
        );
        assert_eq!(
            show_time_seconds("cs", &stamp(t)),
            "1. 12. 2026 09:05:07 UTC"
        );
        // Another offset is shown in UTC, as the label says.
        assert_eq!(
            show_time("en", "2026-12-01T10:05:07+01:00"),
            "2026-12-01 09:05 UTC"
        );
        assert_eq!(show_time("cs", "not a time"), "not a time");
    }
}
