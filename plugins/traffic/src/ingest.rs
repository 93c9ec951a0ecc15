//! Reading traffic samples: `portico traffic import FILE` (CSV or JSON lines, streamed) and the
//! import bundle's `traffic` section. Each record is checked on its own; a bad one is rejected
//! with its line (or position) and reason, the good ones are kept.

use std::collections::HashMap;
use std::io::BufRead;

use portico_core::plugin::{Error, Namespace, OperatorCtx, Result, ServiceKind};
use serde::Deserialize;

use crate::store::{self, Counts, DAY, SLOT, Sample};

/// Samples written per flushed transaction.
const CHUNK: usize = 50_000;
/// Rejections quoted in the report (all are counted).
const QUOTED: usize = 20;
/// Longest line read (a longer one is rejected, not buffered whole).
const MAX_LINE: usize = 4096;

/// A record as read, before checks.
pub struct Rec {
    pub service: i128,
    pub time: i64,
    pub down: i128,
    pub up: i128,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRec {
    service_id: i128,
    time: JsonTime,
    down: i128,
    up: i128,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonTime {
    Unix(i64),
    Text(String),
}

fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| format!("time `{}` is neither RFC 3339 nor Unix time", cut(s)))
}

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn parse_int(name: &str, s: &str) -> std::result::Result<i128, String> {
    s.trim()
        .parse::<i128>()
        .map_err(|_| format!("{name} `{}` is not a whole number", cut(s)))
}

/// One CSV line `service_id,time,down,up`.
pub fn parse_csv(line: &str) -> std::result::Result<Rec, String> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 4 {
        return Err(format!(
            "expected 4 fields (service_id,time,down,up), found {}",
            f.len()
        ));
    }
    Ok(Rec {
        service: parse_int("service_id", f[0])?,
        time: parse_time(f[1])?,
        down: parse_int("down", f[2])?,
        up: parse_int("up", f[3])?,
    })
}

/// One JSON record `{"service_id":…,"time":…,"down":…,"up":…}`.
pub fn parse_json(text: &str) -> std::result::Result<Rec, String> {
    let r: JsonRec = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde's position is of the record's own text; the caller names the line.
        match msg.rsplit_once(" at line ") {
            Some((m, _)) => m.to_string(),
            None => msg,
        }
    })?;
    let time = match r.time {
        JsonTime::Unix(t) => t,
        JsonTime::Text(s) => parse_time(&s)?,
    };
    Ok(Rec {
        service: r.service_id,
        time,
        down: r.down,
        up: r.up,
    })
}

/// Where a record is: a file's line, or a bundle list's position.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Line(u64),
    Item(usize),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Line(n) => write!(f, "line {n}"),
            At::Item(i) => write!(f, "traffic[{i}]"),
        }
    }
}

/// Checks records and writes them in chunks.
pub struct Importer<'a, 'b> {
    ctx: &'a OperatorCtx<'b>,
    ns: Namespace,
    now: i64,
    raw_from: i64,
    dry_run: bool,
    /// Service id → its client, `None` when there is no such service (or it is not Internet).
    services: HashMap<u64, Option<u64>>,
    /// Per service: the last slot taken in this import, and where it was.
    last: HashMap<u64, (i64, At)>,
    chunk: Vec<Sample>,
    counts: Counts,
    pub read: u64,
    rejected: u64,
    reasons: Vec<String>,
}

impl<'a, 'b> Importer<'a, 'b> {
    pub fn new(ctx: &'a OperatorCtx<'b>, dry_run: bool) -> Importer<'a, 'b> {
        let now = ctx.now().timestamp();
        let days = ctx
            .setting(store::RAW_DAYS, None)
            .as_i64()
            .unwrap_or(7)
            .clamp(1, 366);
        Importer {
            ctx,
            ns: ctx.store(),
            now,
            raw_from: store::floor(now, DAY) - days * DAY,
            dry_run,
            services: HashMap::new(),
            last: HashMap::new(),
            chunk: Vec::with_capacity(CHUNK),
            counts: Counts::default(),
            read: 0,
            rejected: 0,
            reasons: Vec::new(),
        }
    }

    fn reject(&mut self, at: At, why: String) {
        self.rejected += 1;
        if self.reasons.len() < QUOTED {
            self.reasons.push(format!("{at}: {why}"));
        }
    }

    fn client_of(&mut self, service: u64) -> Result<Option<u64>> {
        if let Some(c) = self.services.get(&service) {
            return Ok(*c);
        }
        let c = self
            .ctx
            .service(service)?
            .filter(|s| s.service.kind == ServiceKind::Internet)
            .map(|s| s.service.client_id);
        self.services.insert(service, c);
        Ok(c)
    }

    /// Takes one record; `at` names it in a rejection ("line 7", "traffic[3]").
    pub fn take(&mut self, at: At, rec: std::result::Result<Rec, String>) -> Result<()> {
        self.read += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(why) => {
                self.reject(at, why);
                return Ok(());
            }
        };
        let Ok(service) = u64::try_from(rec.service) else {
            self.reject(at, format!("unknown service {}", rec.service));
            return Ok(());
        };
        if rec.down < 0 || rec.up < 0 {
            let which = if rec.down < 0 { "down" } else { "up" };
            self.reject(at, format!("negative counter ({which})"));
            return Ok(());
        }
        let (Ok(down), Ok(up)) = (u64::try_from(rec.down), u64::try_from(rec.up)) else {
            self.reject(at, "counter too large".into());
            return Ok(());
        };
        if rec.time < 0 {
            self.reject(at, "time before 1970".into());
            return Ok(());
        }
        if rec.time > self.now {
            self.reject(at, "time is in the future".into());
            return Ok(());
        }
        if self.client_of(service)?.is_none() {
            self.reject(
                at,
                format!("unknown service {service} (no Internet service with this id)"),
            );
            return Ok(());
        }
        let slot = store::floor(rec.time, SLOT);
        if let Some((prev, where_)) = self.last.get(&service)
            && slot <= *prev
        {
            let why = format!(
                "out of order: not in a later 5-minute slot than the previous sample of service {service} ({where_})"
            );
            self.reject(at, why);
            return Ok(());
        }
        self.last.insert(service, (slot, at));
        self.chunk.push(Sample {
            service,
            slot,
            down,
            up,
        });
        if self.chunk.len() >= CHUNK {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        if self.dry_run {
            self.counts.added += self.chunk.len() as u64;
        } else if !self.chunk.is_empty() {
            let c = store::write_chunk(&self.ns, &mut self.chunk, self.raw_from)?;
            self.counts.added += c.added;
            self.counts.replaced += c.replaced;
            self.counts.unchanged += c.unchanged;
        }
        self.chunk.clear();
        Ok(())
    }

    /// Writes what is left, drops raw samples past the window, sends due FUP mail; returns
    /// the report.
    pub fn finish(mut self, started: std::time::Instant) -> Result<String> {
        self.write()?;
        if !self.dry_run {
            let owners: HashMap<u64, u64> = self
                .services
                .iter()
                .filter_map(|(s, c)| c.map(|c| (*s, c)))
                .collect();
            store::remember_owners(&self.ns, &owners)?;
            let touched: Vec<u64> = self.last.keys().copied().collect();
            for s in &touched {
                store::prune_raw(&self.ns, *s, self.raw_from)?;
            }
            crate::fup::check_services(self.ctx, &touched)?;
        }
        let secs = started.elapsed().as_secs_f64();
        let mut out = if self.dry_run {
            format!(
                "dry run: {} samples read, {} would be taken, {} rejected",
                self.read, self.counts.added, self.rejected
            )
        } else {
            format!(
                "{} samples read in {:.2} s ({:.0}/s): {} added, {} replaced, {} unchanged, {} rejected",
                self.read,
                secs,
                self.read as f64 / secs.max(1e-9),
                self.counts.added,
                self.counts.replaced,
                self.counts.unchanged,
                self.rejected
            )
        };
        for r in &self.reasons {
            out.push_str("\n  ");
            out.push_str(r);
        }
        if self.rejected > self.reasons.len() as u64 {
            out.push_str(&format!(
                "\n  ... and {} more",
                self.rejected - self.reasons.len() as u64
            ));
        }
        Ok(out)
    }
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

/// By extension (`.csv`; `.jsonl`, `.ndjson`, `.json`), else by the first character that is
/// not blank (`{` is JSON lines).
pub fn detect(path: &std::path::Path, first: &[u8]) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Format::Csv,
        Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
        _ => match first.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::JsonLines,
            _ => Format::Csv,
        },
    }
}

/// `portico traffic import FILE [--dry-run]`: streams the file line by line.
pub fn import_file(ctx: &OperatorCtx<'_>, path: &str, dry_run: bool) -> Result<String> {
    let started = std::time::Instant::now();
    let path = ctx.operator_path(path);
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::Invalid(format!("cannot open {}: {e}", path.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let format = {
        let head = reader
            .fill_buf()
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        detect(&path, head)
    };
    let mut imp = Importer::new(ctx, dry_run);
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    let mut done = 0usize;
    loop {
        line.clear();
        let n = read_line(&mut reader, &mut line)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        done += n;
        number += 1;
        if number.is_multiple_of(65_536) {
            ctx.progress(done, total);
        }
        let at = At::Line(number);
        if line.len() > MAX_LINE {
            imp.take(at, Err(format!("line longer than {MAX_LINE} bytes")))?;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            imp.take(at, Err("not UTF-8 text".into()))?;
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if number == 1 && format == Format::Csv && text.starts_with("service_id") {
            continue;
        }
        let rec = match format {
            Format::Csv => parse_csv(text),
            Format::JsonLines => parse_json(text),
        };
        imp.take(at, rec)?;
    }
    ctx.progress(total, total);
    imp.finish(started)
}

/// Reads one line (up to and without its `\n`) but keeps at most `MAX_LINE + 1` bytes of it;
/// returns the bytes consumed (0 at the end).
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (take, end) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(out.len());
        let body = if end { take - 1 } else { take };
        out.extend_from_slice(&buf[..body.min(room)]);
        r.consume(take);
        consumed += take;
        if end {
            return Ok(consumed);
        }
    }
}

/// The bundle's `traffic` section: a list of records as in JSON lines.
pub fn import_section(ctx: &OperatorCtx<'_>, raw: &str, dry_run: bool) -> Result<String> {
    let started = std::time::Instant::now();
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw)
        .map_err(|e| Error::Invalid(format!("must be a list of samples: {e}")))?;
    let mut imp = Importer::new(ctx, dry_run);
    for (i, item) in items.iter().enumerate() {
        imp.take(At::Item(i), parse_json(item.get()))?;
    }
    imp.finish(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_records_parse_with_either_time() {
        let r = parse_csv("7,2026-11-01T10:05:00Z,100,20").expect("csv");
        assert_eq!(
            (r.service, r.time, r.down, r.up),
            (7, 1_793_527_500, 100, 20)
        );
        let r = parse_csv("7, 1793527500 ,100,20").expect("unix");
        assert_eq!(r.time, 1_793_527_500);
        let r =
            parse_json(r#"{"service_id":7,"time":"2026-11-01T11:05:00+01:00","down":1,"up":2}"#)
                .expect("json");
        assert_eq!(r.time, 1_793_527_500);
        assert_eq!(
            parse_csv("7,yesterday,1,2").err().as_deref(),
            Some("time `yesterday` is neither RFC 3339 nor Unix time")
        );
        assert_eq!(
            parse_csv("7,1,2").err().as_deref(),
            Some("expected 4 fields (service_id,time,down,up), found 3")
        );
        assert_eq!(
            parse_json(r#"{"service_id":7,"time":1,"down":1}"#)
                .err()
                .as_deref(),
            Some("missing field `up`")
        );
    }

    #[test]
    fn a_long_line_is_cut_not_buffered() {
        let text = format!("{}\nnext\n", "x".repeat(10_000));
        let mut r = std::io::BufReader::with_capacity(64, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut r, &mut line).expect("read"), 10_001);
        assert_eq!(line.len(), MAX_LINE + 1);
        line.clear();
        assert_eq!(read_line(&mut r, &mut line).expect("read"), 5);
        assert_eq!(line, b"next");
    }
}
