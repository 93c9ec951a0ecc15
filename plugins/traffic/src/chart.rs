//! The traffic chart: an SVG drawn on the server (no script), with axes, gridlines, units, a
//! legend, and a title and description for assistive technology.

use std::fmt::Write;

/// One bucket of the chart.
pub struct Point {
    /// Label under the axis (shown for some buckets only).
    pub label: String,
    pub down: u64,
    pub up: u64,
}

pub struct Labels<'a> {
    pub title: &'a str,
    pub desc: &'a str,
    pub download: &'a str,
    pub upload: &'a str,
    pub lang: &'a str,
}

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
pub const DOWN_COLOR: &str = "#1f63a8";
pub const UP_COLOR: &str = "#b3541e";

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes in decimal units (kB = 1000 B), in the page's language: three digits, or two and one
/// decimal (integer arithmetic: a month's page shows some seventy of these).
pub fn bytes(lang: &str, n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut unit = 0;
    let mut div: u128 = 1;
    while u128::from(n) >= div * 1000 && unit < UNITS.len() - 1 {
        div *= 1000;
        unit += 1;
    }
    let n = u128::from(n);
    let tenths = (n * 10 + div / 2) / div;
    if unit == 0 {
        format!("{n}\u{a0}B")
    } else if tenths >= 1000 {
        format!("{}\u{a0}{}", (n + div / 2) / div, UNITS[unit])
    } else {
        let point = if lang == "cs" { ',' } else { '.' };
        format!("{}{point}{}\u{a0}{}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// A coordinate written with one decimal through integer formatting: a month's chart writes a
/// few hundred of them, and `{:.1}` on an `f64` cost as much as the rest of the SVG.
struct C(f64);

impl std::fmt::Display for C {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round() as i64;
        let sign = if tenths < 0 { "-" } else { "" };
        let t = tenths.unsigned_abs();
        write!(f, "{sign}{}.{}", t / 10, t % 10)
    }
}

/// A round step (1, 2 or 5 × 10^k) so that `max` fits in about four of them.
fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 4.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    step.max(1.0) as u64
}

/// How many buckets apart the axis labels are (at most about 12 labels).
fn label_every(n: usize) -> usize {
    match n {
        0..=12 => 1,
        13..=31 => n.div_ceil(10).max(2),
        _ => n.div_ceil(12),
    }
}

pub fn svg(points: &[Point], l: &Labels<'_>) -> String {
    let n = points.len().max(1);
    let max = points
        .iter()
        .map(|p| p.down.max(p.up))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = nice_step(max);
    let ticks = max.div_ceil(step).max(1);
    let top_value = (step * ticks) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let y = |v: u64| TOP + ph - (v as f64 / top_value) * ph;
    let bw = pw / n as f64;
    let mut s = String::with_capacity(8192 + points.len() * 120);
    let _ = write!(
        s,
        r##"<svg class="traffic-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet"><title id="chart-title">{}</title><desc id="chart-desc">{}</desc>"##,
        esc(l.title),
        esc(l.desc)
    );
    // Gridlines and the value axis.
    s.push_str(r##"<g class="grid" font-size="12" fill="#333">"##);
    for i in 0..=ticks {
        let v = step * i;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#d0d0d0" stroke-width="1"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            C(yy),
            C(yy),
            LEFT - 6.0,
            C(yy + 4.0),
            esc(&bytes(l.lang, v))
        );
    }
    s.push_str("</g>");
    // The series.
    s.push_str(r#"<g class="series">"#);
    if points.len() <= 62 {
        for (i, p) in points.iter().enumerate() {
            let x = LEFT + bw * i as f64;
            let w = C((bw * 0.38).max(0.5));
            let _ = write!(
                s,
                r#"<rect class="down" x="{}" y="{}" width="{w}" height="{}" fill="{DOWN_COLOR}"/><rect class="up" x="{}" y="{}" width="{w}" height="{}" fill="{UP_COLOR}"/>"#,
                C(x + bw * 0.1),
                C(y(p.down)),
                C(TOP + ph - y(p.down)),
                C(x + bw * 0.5),
                C(y(p.up)),
                C(TOP + ph - y(p.up)),
            );
        }
    } else {
        let line = |pick: fn(&Point) -> u64| {
            let mut d = String::new();
            for (i, p) in points.iter().enumerate() {
                let x = LEFT + bw * (i as f64 + 0.5);
                let _ = write!(
                    d,
                    "{}{},{}",
                    if i == 0 { "M" } else { " L" },
                    C(x),
                    C(y(pick(p)))
                );
            }
            d
        };
        let down = line(|p| p.down);
        let _ = write!(
            s,
            r#"<path class="down-area" d="{down} L{},{} L{},{} Z" fill="{DOWN_COLOR}" fill-opacity="0.25" stroke="none"/><path class="down" d="{down}" fill="none" stroke="{DOWN_COLOR}" stroke-width="1.5"/><path class="up" d="{}" fill="none" stroke="{UP_COLOR}" stroke-width="1.5"/>"#,
            C(LEFT + bw * (points.len() as f64 - 0.5)),
            C(TOP + ph),
            C(LEFT + bw * 0.5),
            C(TOP + ph),
            line(|p| p.up)
        );
    }
    s.push_str("</g>");
    // The time axis.
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#333" stroke-width="1"/><g class="x-labels" font-size="12" fill="#333" text-anchor="middle">"##,
        W - RIGHT,
        C(TOP + ph),
        C(TOP + ph)
    );
    let every = label_every(points.len());
    for (i, p) in points.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = LEFT + bw * (i as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            C(x),
            C(TOP + ph + 18.0),
            esc(&p.label)
        );
    }
    s.push_str("</g>");
    // Legend.
    let _ = write!(
        s,
        r##"<g class="legend" font-size="13" fill="#222"><rect x="{LEFT}" y="8" width="14" height="14" fill="{DOWN_COLOR}"/><text x="{}" y="20">{}</text><rect x="{}" y="8" width="14" height="14" fill="{UP_COLOR}"/><text x="{}" y="20">{}</text></g></svg>"##,
        LEFT + 20.0,
        esc(l.download),
        LEFT + 180.0,
        LEFT + 200.0,
        esc(l.upload)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_decimal_and_localized() {
        assert_eq!(bytes("en", 999), "999\u{a0}B");
        assert_eq!(bytes("en", 1_500), "1.5\u{a0}kB");
        assert_eq!(bytes("cs", 12_340_000_000), "12,3\u{a0}GB");
        assert_eq!(bytes("en", 150_000_000_000), "150\u{a0}GB");
        assert_eq!(
            bytes("en", 99_960),
            "100\u{a0}kB",
            "rounded up to three digits"
        );
        assert_eq!(bytes("en", 99_940), "99.9\u{a0}kB");
        assert_eq!(bytes("en", u64::MAX), "18447\u{a0}PB");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1000), 500);
        for max in [1, 7, 999, 12_345_678, u64::MAX / 2] {
            let s = nice_step(max);
            let lead = s / 10u64.pow((s as f64).log10().floor() as u32);
            assert!([1, 2, 5, 10].contains(&lead), "{max}: {s}");
            assert!(max.div_ceil(s) <= 5, "{max}: {s}");
        }
    }

    #[test]
    fn coordinates_have_one_decimal() {
        assert_eq!(C(0.0).to_string(), "0.0");
        assert_eq!(C(12.34).to_string(), "12.3");
        assert_eq!(C(12.36).to_string(), "12.4");
        assert_eq!(C(-0.26).to_string(), "-0.3");
        assert_eq!(C(255.96).to_string(), "256.0");
    }

    #[test]
    fn the_svg_escapes_its_texts() {
        let out = svg(
            &[Point {
                label: "<b>".into(),
                down: 5,
                up: 1,
            }],
            &Labels {
                title: "a & b",
                desc: "\"x\"",
                download: "D",
                upload: "U",
                lang: "en",
            },
        );
        assert!(out.contains("<title id=\"chart-title\">a &amp; b</title>"));
        assert!(out.contains("&lt;b&gt;") && !out.contains("<b>"));
    }
}
