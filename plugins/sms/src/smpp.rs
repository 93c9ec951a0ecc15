//! The SMPP 3.4 sender (`sms_notify = smpp`): one transceiver session to the SMSC of
//! `sms_smpp_url` (`smpp://system_id:password@host:port`), PDUs from the `rusmpp` crate.
//!
//! - bind_transceiver; a refused bind is logged with the SMSC's status (never the password)
//!   and tried again with growing delays, like a lost connection (1 s … 60 s);
//! - submit_sm with a delivery receipt asked for, up to [`WINDOW`] in flight; a long text as
//!   UDH-concatenated parts (the reference is the message id mod 256, the same on a retry), in
//!   GSM 7-bit (data_coding 0) or UCS-2 (8) as the client was charged;
//! - the answers are written in one flushed transaction per batch: a message whose parts are
//!   all accepted leaves the outbox as Sent with the SMSC's ids; ESME_RTHROTTLED,
//!   ESME_RMSGQFUL and other passing errors keep it queued (only its parts not yet accepted
//!   are sent again) and pause submissions briefly; a permanent error (ESME_RINVDSTADR, …)
//!   fails it with the reason;
//! - deliver_sm receipts (`stat:DELIVRD`, or the receipted_message_id TLV) turn a message
//!   Delivered (every part) or Failed; deliver_sm_resp is sent after the receipt is written,
//!   so an SMSC repeats a receipt the portal could not store;
//! - enquire_link after 30 s of silence; no answer in 10 s, or a submit_sm unanswered for
//!   30 s, ends the session (messages in flight stay queued and are sent on the next one).

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use portico_core::plugin::{WorkerCtx, stamp};
use rusmpp::extra::encoding::{gsm7bit::Gsm7BitUnpacked, ucs2::Ucs2};
use rusmpp::pdus::{BindTransceiver, SubmitSm};
use rusmpp::tlvs::TlvValue;
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{EsmClass, MessageState, Npi, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio_util::codec::{Decoder, Encoder};

use crate::gsm::{self, Encoding};
use crate::model::{self, Outcome, Receipt, Sms};
use crate::{SMPP_SOURCE_ADDR, SMPP_SOURCE_NPI, SMPP_SOURCE_TON, SMPP_URL, SMS_NOTIFY};

/// submit_sm PDUs in flight at once.
pub const WINDOW: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BIND_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TICK: Duration = Duration::from_millis(5);
const IDLE_ENQUIRE: Duration = Duration::from_secs(30);
const ENQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the outbox is looked at when the window has room but nothing was due.
const SCAN_EVERY: Duration = Duration::from_millis(100);
/// How often the settings are read again (a changed URL or sms_notify ends the session).
const SETTINGS_EVERY: Duration = Duration::from_secs(1);
/// Pause of new submissions after a throttling answer, and the message's retry delay.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Delays between sessions that failed (connect, bind, lost link), in seconds; the last repeats.
const BACKOFF: [u64; 6] = [1, 2, 5, 10, 30, 60];
/// Seconds before a message refused for a passing reason (not throttling) is tried again.
const RETRY_DELAYS: [i64; 6] = [5, 15, 60, 120, 300, 600];

/// Where and as whom to bind, from `sms_smpp_url` and the source settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    pub source: String,
    pub ton: u8,
    pub npi: u8,
}

impl std::fmt::Debug for Config {
    // The password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.system_id, self.host, self.port)
    }
}

/// Parses `smpp://system_id:password@host:port` (percent-encoding allowed in the user part).
pub fn parse_url(raw: &str) -> Result<(String, u16, String, String), String> {
    let url = url::Url::parse(raw.trim()).map_err(|_| {
        "sms_smpp_url is not a URL of the form smpp://system_id:password@host:port".to_string()
    })?;
    if url.scheme() != "smpp" {
        return Err("sms_smpp_url must start with smpp://".into());
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("sms_smpp_url has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port().unwrap_or(2775);
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let system_id = decode(url.username());
    let password = decode(url.password().unwrap_or(""));
    if system_id.is_empty() || system_id.len() > 15 {
        return Err("the system_id in sms_smpp_url must be 1 to 15 characters".into());
    }
    if password.len() > 8 {
        return Err("the password in sms_smpp_url may have at most 8 characters (SMPP 3.4)".into());
    }
    Ok((host, port, system_id, password))
}

fn config(ctx: &WorkerCtx) -> Result<Config, String> {
    let text = |k: &str| ctx.setting(k, None).as_str().unwrap_or("").to_string();
    let int = |k: &str, d: i64| ctx.setting(k, None).as_i64().unwrap_or(d);
    let raw = text(SMPP_URL);
    if raw.trim().is_empty() {
        return Err("sms_smpp_url is not set".into());
    }
    let (host, port, system_id, password) = parse_url(&raw)?;
    Ok(Config {
        host,
        port,
        system_id,
        password,
        source: text(SMPP_SOURCE_ADDR),
        ton: int(SMPP_SOURCE_TON, 5) as u8,
        npi: int(SMPP_SOURCE_NPI, 0) as u8,
    })
}

/// The SMSC's status by name, as operators look it up.
pub fn status_name(status: CommandStatus) -> String {
    let code: u32 = status.into();
    let name = format!("{status:?}");
    let name = match name.strip_prefix("EsmeR") {
        Some(rest) => format!("ESME_R{}", rest.to_ascii_uppercase()),
        None => name,
    };
    format!("{name} (0x{code:08x})")
}

/// Whether a refusal may pass (try again later) rather than fail the message.
fn passing(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRthrottled
            | CommandStatus::EsmeRmsgqful
            | CommandStatus::EsmeRsyserr
            | CommandStatus::EsmeRsubmitfail
            | CommandStatus::EsmeRxTAppn
            | CommandStatus::EsmeRinvbndsts
    )
}

/// Runs sessions while `sms_notify` is `smpp`; returns when it is something else.
pub fn run(ctx: &WorkerCtx) {
    let mut failures = 0usize;
    let mut last_problem = String::new();
    while ctx.setting(SMS_NOTIFY, None).as_str() == Some("smpp") {
        let cfg = match config(ctx) {
            Ok(c) => c,
            Err(e) => {
                if e != last_problem {
                    tracing::error!(plugin = "sms", "SMPP sender waits: {e}");
                    last_problem = e;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        match session(ctx, &cfg) {
            Ok(()) => {
                failures = 0;
                last_problem.clear();
            }
            Err(Ended { reason, bound }) => {
                if bound {
                    failures = 0;
                }
                let delay = BACKOFF[failures.min(BACKOFF.len() - 1)];
                failures += 1;
                tracing::warn!(
                    plugin = "sms",
                    smsc = ?cfg,
                    "SMPP session ended: {reason}; connecting again in {delay} s"
                );
                // Sleep in short steps so a settings change is noticed.
                let until = Instant::now() + Duration::from_secs(delay);
                while Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(100));
                    if ctx.setting(SMS_NOTIFY, None).as_str() != Some("smpp")
                        || config(ctx).ok().as_ref() != Some(&cfg)
                    {
                        break;
                    }
                }
            }
        }
    }
}

struct Ended {
    reason: String,
    bound: bool,
}

fn ended(reason: impl Into<String>, bound: bool) -> Ended {
    Ended {
        reason: reason.into(),
        bound,
    }
}

/// One message being handed over.
struct Working {
    sms: Sms,
    /// The SMSC's id of each part ("" until accepted).
    ids: Vec<String>,
    /// Parts sent and not answered yet.
    outstanding: usize,
    /// The worst answer so far: a passing reason, or a permanent one.
    later: Option<String>,
    failed: Option<String>,
    throttled: bool,
}

struct Link {
    stream: TcpStream,
    codec: CommandCodec,
    rx: BytesMut,
    tx: BytesMut,
    seq: u32,
}

impl Link {
    fn next_seq(&mut self) -> u32 {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        self.seq
    }

    fn queue(&mut self, command: Command) -> Result<(), String> {
        self.codec
            .encode(command, &mut self.tx)
            .map_err(|e| format!("cannot encode a PDU: {e}"))
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let out = self.tx.split();
        self.stream
            .write_all(&out)
            .map_err(|e| format!("write to the SMSC failed: {e}"))
    }

    /// Reads what arrived (waiting up to the socket's read timeout) and decodes every whole PDU.
    fn read(&mut self) -> Result<Vec<Command>, String> {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => return Err("the SMSC closed the connection".into()),
            Ok(n) => self.rx.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from the SMSC failed: {e}")),
        }
        let mut out = Vec::new();
        while let Some(c) = self
            .codec
            .decode(&mut self.rx)
            .map_err(|e| format!("the SMSC sent a PDU that cannot be read: {e}"))?
        {
            out.push(c);
        }
        Ok(out)
    }
}

fn octets<const MIN: usize, const MAX: usize>(s: &str) -> Result<COctetString<MIN, MAX>, String> {
    COctetString::from_string(s.to_string()).map_err(|e| format!("`{s}`: {e}"))
}

fn connect(cfg: &Config) -> Result<Link, Ended> {
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| ended(format!("cannot resolve the SMSC's host: {e}"), false))?
        .next()
        .ok_or_else(|| ended("the SMSC's host has no address", false))?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| ended(format!("cannot connect to the SMSC: {e}"), false))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(READ_TICK))
        .map_err(|e| ended(e.to_string(), false))?;
    let mut link = Link {
        stream,
        codec: CommandCodec::new(),
        rx: BytesMut::new(),
        tx: BytesMut::new(),
        seq: 0,
    };
    let bind = BindTransceiver::builder()
        .system_id(octets(&cfg.system_id).map_err(|e| ended(e, false))?)
        .password(octets(&cfg.password).map_err(|e| ended(e, false))?)
        .interface_version(rusmpp::values::InterfaceVersion::Smpp3_4)
        .build();
    let seq = link.next_seq();
    link.queue(Command::new(CommandStatus::EsmeRok, seq, bind))
        .map_err(|e| ended(e, false))?;
    link.flush().map_err(|e| ended(e, false))?;
    let deadline = Instant::now() + BIND_TIMEOUT;
    while Instant::now() < deadline {
        for c in link.read().map_err(|e| ended(e, false))? {
            if c.sequence_number() == seq
                && matches!(c.pdu(), Some(Pdu::BindTransceiverResp(_)) | None)
            {
                if c.status() != CommandStatus::EsmeRok {
                    return Err(ended(
                        format!(
                            "the SMSC refused the bind as `{}`: {}",
                            cfg.system_id,
                            status_name(c.status())
                        ),
                        false,
                    ));
                }
                tracing::info!(plugin = "sms", smsc = ?cfg, "bound to the SMSC as a transceiver");
                return Ok(link);
            }
        }
    }
    Err(ended("the SMSC did not answer the bind in time", false))
}

/// The submit_sm PDUs of a message, part by part (index, PDU).
fn pdus(cfg: &Config, sms: &Sms) -> Result<Vec<SubmitSm>, String> {
    let parts = gsm::split(&sms.text);
    let total = parts.len();
    let reference = (sms.id % 256) as u8;
    let mut out = Vec::with_capacity(total);
    for (i, part) in parts.iter().enumerate() {
        let (mut bytes, coding) = match sms.encoding {
            Encoding::Gsm7 => {
                let e = Gsm7BitUnpacked::new();
                (
                    e.encode_to_vec(part)
                        .map_err(|e| format!("not GSM 7-bit: {e:?}"))?,
                    e.data_coding(),
                )
            }
            Encoding::Ucs2 => {
                let e = Ucs2::new();
                (
                    e.encode_to_vec(part)
                        .map_err(|e| format!("not UCS-2: {e:?}"))?,
                    e.data_coding(),
                )
            }
        };
        let mut esm = EsmClass::default();
        if total > 1 {
            // IEI 0x00 (concatenated short message, 8-bit reference): ref, total, this part.
            let mut udh = vec![0x05, 0x00, 0x03, reference, total as u8, i as u8 + 1];
            udh.append(&mut bytes);
            bytes = udh;
            esm = esm.with_udhi_indicator();
        }
        let dest = sms.to.trim_start_matches('+');
        let sm = SubmitSm::builder()
            .source_addr_ton(Ton::from(cfg.ton))
            .source_addr_npi(Npi::from(cfg.npi))
            .source_addr(octets(&cfg.source)?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(octets(dest)?)
            .esm_class(esm)
            .registered_delivery(RegisteredDelivery::request_all())
            .data_coding(coding)
            .short_message(OctetString::from_vec(bytes).map_err(|e| format!("{e}"))?)
            .build();
        out.push(sm);
    }
    Ok(out)
}

/// A delivery receipt's message id and state, from the TLVs (receipted_message_id,
/// message_state) or the receipt text (`id:… stat:DELIVRD …`, in GSM/ASCII or UCS-2).
fn receipt(sm: &rusmpp::pdus::DeliverSm) -> Option<Receipt> {
    let raw = sm.short_message().as_ref();
    let text = if u8::from(sm.data_coding) == 8 {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(raw).to_string()
    };
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_string)
    };
    let mut id = field("id:");
    let mut stat = field("stat:");
    for tlv in sm.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(v)) => id = Some(v.as_str().to_string()),
            Some(TlvValue::MessageState(state)) if stat.is_none() => {
                stat = Some(
                    match state {
                        MessageState::Delivered => "DELIVRD",
                        MessageState::Expired => "EXPIRED",
                        MessageState::Deleted => "DELETED",
                        MessageState::Undeliverable => "UNDELIV",
                        MessageState::Rejected => "REJECTD",
                        MessageState::Accepted => "ACCEPTD",
                        _ => "UNKNOWN",
                    }
                    .to_string(),
                )
            }
            _ => {}
        }
    }
    let stat = stat?;
    // Not final yet (ENROUTE, ACCEPTD, …): nothing to record.
    if !matches!(
        stat.as_str(),
        "DELIVRD" | "EXPIRED" | "DELETED" | "UNDELIV" | "REJECTD"
    ) {
        return None;
    }
    Some(Receipt {
        smsc_id: id?,
        delivered: stat.eq_ignore_ascii_case("DELIVRD"),
        stat,
    })
}

fn session(ctx: &WorkerCtx, cfg: &Config) -> Result<(), Ended> {
    let mut link = connect(cfg)?;
    let ns = ctx.store();
    let mut working: HashMap<u64, Working> = HashMap::new();
    // seq → (message id, part index, when sent)
    let mut inflight: HashMap<u32, (u64, usize, Instant)> = HashMap::new();
    let mut last_heard = Instant::now();
    let mut enquire_sent: Option<Instant> = None;
    let mut last_scan = Instant::now() - SCAN_EVERY;
    let mut last_settings = Instant::now();
    let mut pause_until = Instant::now();
    let mut closing = false;
    let fail = |reason: String| ended(reason, true);
    loop {
        // The settings still name this SMSC?
        // (A changed one: nothing new is sent, the answers still awaited are read, then the
        // session unbinds.)
        if !closing && last_settings.elapsed() >= SETTINGS_EVERY {
            last_settings = Instant::now();
            closing = ctx.setting(SMS_NOTIFY, None).as_str() != Some("smpp")
                || config(ctx).ok().as_ref() != Some(cfg);
        }
        if closing && inflight.is_empty() {
            commit(ctx, &ns, &mut working, true)?;
            let seq = link.next_seq();
            let _ = link.queue(Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind));
            let _ = link.flush();
            return Ok(());
        }
        // Fill the window with due messages.
        let now = Instant::now();
        if !closing
            && inflight.len() < WINDOW
            && now >= pause_until
            && now - last_scan >= SCAN_EVERY
        {
            last_scan = now;
            let clock = ctx.now();
            let busy: HashSet<u64> = working.keys().copied().collect();
            let room = WINDOW - inflight.len();
            let mut taken = 0;
            for (pending, sms) in model::outbox(&ns).map_err(|e| fail(e.to_string()))? {
                if taken >= room {
                    break;
                }
                if busy.contains(&pending.id) {
                    continue;
                }
                let due = chrono::DateTime::parse_from_rfc3339(&pending.next_attempt)
                    .map_or(true, |t| t <= clock);
                if !due {
                    continue;
                }
                let Some(sms) = sms else { continue };
                let parts = match pdus(cfg, &sms) {
                    Ok(p) => p,
                    Err(reason) => {
                        // Cannot be encoded at all: fail it rather than retry for ever.
                        let reason = format!("cannot build the SMPP message: {reason}");
                        model::apply_smpp(
                            &ns,
                            &[(
                                sms.id,
                                Outcome::Failed {
                                    ids: Vec::new(),
                                    reason,
                                },
                            )],
                            &[],
                            &stamp(ctx.now()),
                        )
                        .map_err(|e| fail(e.to_string()))?;
                        continue;
                    }
                };
                let mut ids = sms.smsc_ids.clone();
                ids.resize(parts.len(), String::new());
                let mut outstanding = 0;
                for (i, pdu) in parts.into_iter().enumerate() {
                    if !ids[i].is_empty() {
                        continue;
                    }
                    let seq = link.next_seq();
                    link.queue(Command::new(CommandStatus::EsmeRok, seq, pdu))
                        .map_err(fail)?;
                    inflight.insert(seq, (sms.id, i, Instant::now()));
                    outstanding += 1;
                }
                taken += outstanding.max(1);
                working.insert(
                    sms.id,
                    Working {
                        sms,
                        ids,
                        outstanding,
                        later: None,
                        failed: None,
                        throttled: false,
                    },
                );
                if taken > 0 && inflight.len() >= WINDOW {
                    break;
                }
            }
            if taken == room {
                // The window filled: look again as soon as it has room.
                last_scan = Instant::now() - SCAN_EVERY;
            }
            link.flush().map_err(fail)?;
        }

        // Read what the SMSC said.
        let commands = link.read().map_err(fail)?;
        if !commands.is_empty() {
            last_heard = Instant::now();
            enquire_sent = None;
        }
        let mut receipts: Vec<Receipt> = Vec::new();
        let mut acks: Vec<Command> = Vec::new();
        for c in commands {
            let seq = c.sequence_number();
            match c.pdu() {
                Some(Pdu::SubmitSmResp(resp)) => {
                    let Some((id, part, _)) = inflight.remove(&seq) else {
                        continue;
                    };
                    let Some(w) = working.get_mut(&id) else {
                        continue;
                    };
                    w.outstanding = w.outstanding.saturating_sub(1);
                    if c.status() == CommandStatus::EsmeRok {
                        w.ids[part] = resp.message_id().as_str().to_string();
                    } else {
                        refused(w, c.status());
                    }
                }
                // An error answer (submit_sm_resp without a body, or generic_nack).
                Some(Pdu::GenericNack) | None
                    if c.status() != CommandStatus::EsmeRok && inflight.contains_key(&seq) =>
                {
                    if let Some((id, _, _)) = inflight.remove(&seq)
                        && let Some(w) = working.get_mut(&id)
                    {
                        w.outstanding = w.outstanding.saturating_sub(1);
                        refused(w, c.status());
                    }
                }
                Some(Pdu::DeliverSm(sm)) => {
                    if let Some(r) = receipt(sm) {
                        receipts.push(r);
                    }
                    acks.push(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::DeliverSmResp(Default::default()),
                    ));
                }
                Some(Pdu::EnquireLink) => {
                    link.queue(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::EnquireLinkResp,
                    ))
                    .map_err(fail)?;
                }
                Some(Pdu::Unbind) => {
                    let _ = link.queue(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp));
                    let _ = link.flush();
                    commit(ctx, &ns, &mut working, true)?;
                    return Err(fail("the SMSC unbound the session".into()));
                }
                _ => {}
            }
        }

        // Write what is settled (and the receipts) in one flushed transaction.
        let throttled = commit_with(ctx, &ns, &mut working, false, &receipts)?;
        if throttled {
            pause_until = Instant::now() + THROTTLE_PAUSE;
        }
        for a in acks {
            link.queue(a).map_err(fail)?;
        }
        link.flush().map_err(fail)?;

        // Keep the link alive; notice a dead one.
        if let Some(sent) = enquire_sent {
            if sent.elapsed() > ENQUIRE_TIMEOUT {
                commit(ctx, &ns, &mut working, true)?;
                return Err(fail("the SMSC did not answer enquire_link".into()));
            }
        } else if last_heard.elapsed() > IDLE_ENQUIRE {
            let seq = link.next_seq();
            link.queue(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink))
                .map_err(fail)?;
            link.flush().map_err(fail)?;
            enquire_sent = Some(Instant::now());
        }
        if inflight
            .values()
            .any(|(_, _, at)| at.elapsed() > SUBMIT_TIMEOUT)
        {
            commit(ctx, &ns, &mut working, true)?;
            return Err(fail("the SMSC did not answer a submit_sm in time".into()));
        }
    }
}

/// A part the SMSC did not accept: passing (throttled, busy) or for good.
fn refused(w: &mut Working, status: CommandStatus) {
    if passing(status) {
        if matches!(
            status,
            CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful
        ) {
            w.throttled = true;
        }
        w.later = Some(format!("the SMSC answered {}", status_name(status)));
    } else {
        w.failed = Some(format!("the SMSC refused it: {}", status_name(status)));
    }
}

fn commit(
    ctx: &WorkerCtx,
    ns: &portico_core::plugin::Namespace,
    working: &mut HashMap<u64, Working>,
    ending: bool,
) -> Result<(), Ended> {
    commit_with(ctx, ns, working, ending, &[]).map(|_| ())
}

/// Writes the messages whose parts are all answered (with `ending`, also the partial progress
/// of the others, which stay queued), then the receipts. Returns whether one was throttled.
fn commit_with(
    ctx: &WorkerCtx,
    ns: &portico_core::plugin::Namespace,
    working: &mut HashMap<u64, Working>,
    ending: bool,
    receipts: &[Receipt],
) -> Result<bool, Ended> {
    let settled: Vec<u64> = working
        .iter()
        .filter(|(_, w)| w.outstanding == 0 || ending)
        .map(|(id, _)| *id)
        .collect();
    if settled.is_empty() && receipts.is_empty() {
        return Ok(false);
    }
    let clock = ctx.now();
    let mut throttled = false;
    let mut outcomes = Vec::with_capacity(settled.len());
    for id in settled {
        let Some(w) = working.remove(&id) else {
            continue;
        };
        throttled |= w.throttled;
        let outcome = if let Some(reason) = w.failed {
            Outcome::Failed { ids: w.ids, reason }
        } else if w.ids.iter().all(|i| !i.is_empty()) {
            Outcome::Sent(w.ids)
        } else {
            let reason = w
                .later
                .unwrap_or_else(|| "the session ended before the SMSC answered".into());
            let delay = if w.throttled {
                THROTTLE_PAUSE.as_secs() as i64
            } else {
                RETRY_DELAYS[(w.sms.attempts as usize).min(RETRY_DELAYS.len() - 1)]
            };
            Outcome::Later {
                ids: w.ids,
                next: stamp(clock + chrono::Duration::seconds(delay)),
                reason,
            }
        };
        if let Outcome::Later { reason, .. } = &outcome {
            tracing::warn!(plugin = "sms", id, "SMS stays queued: {reason}");
        }
        outcomes.push((id, outcome));
    }
    let applied = model::apply_smpp(ns, &outcomes, receipts, &stamp(clock))
        .map_err(|e| ended(format!("cannot write the SMSC's answers: {e}"), true))?;
    for sms in &applied.failed {
        let reason = sms.error.clone().unwrap_or_default();
        tracing::warn!(
            plugin = "sms",
            id = sms.id,
            "the SMSC refused an SMS: {reason}"
        );
        ctx.audit(
            sms.client_id,
            "sms failed",
            Some(format!("#{}: {reason}", sms.id)),
        );
    }
    for sms in &applied.sent {
        tracing::debug!(plugin = "sms", id = sms.id, to = %sms.to, "SMS accepted by the SMSC");
        crate::sender::after_sent(ctx, sms);
    }
    if applied.unknown_receipts > 0 {
        tracing::debug!(
            plugin = "sms",
            "{} delivery receipt(s) for messages this portal does not know",
            applied.unknown_receipts
        );
    }
    Ok(throttled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url() {
        assert_eq!(
            parse_url("smpp://portico:s%40cret@smsc.example.net:2776").unwrap(),
            (
                "smsc.example.net".to_string(),
                2776,
                "portico".to_string(),
                "s@cret".to_string()
            )
        );
        assert_eq!(parse_url("smpp://a:b@h").unwrap().1, 2775);
        assert!(parse_url("http://a:b@h").is_err());
        assert!(parse_url("smpp://a:toolongpassword@h").is_err());
        assert!(parse_url("nonsense").is_err());
    }

    #[test]
    fn statuses_by_name() {
        assert_eq!(
            status_name(CommandStatus::EsmeRthrottled),
            "ESME_RTHROTTLED (0x00000058)"
        );
        assert!(passing(CommandStatus::EsmeRthrottled));
        assert!(!passing(CommandStatus::EsmeRinvdstadr));
    }

    #[test]
    fn long_texts_become_concatenated_parts() {
        let cfg = Config {
            host: "h".into(),
            port: 1,
            system_id: "s".into(),
            password: "p".into(),
            source: "ISP".into(),
            ton: 5,
            npi: 0,
        };
        let text = "a".repeat(300);
        let count = gsm::count(&text);
        let sms = Sms {
            id: 258,
            client_id: None,
            to: "+420601123456".into(),
            text: text.clone(),
            encoding: count.encoding,
            parts: count.parts as u32,
            state: model::State::Queued,
            created: String::new(),
            updated: String::new(),
            origin: "operator".into(),
            attempts: 0,
            error: None,
            smsc_ids: Vec::new(),
            delivered_parts: 0,
        };
        let p = pdus(&cfg, &sms).unwrap();
        assert_eq!(p.len(), 2);
        let first = p[0].short_message().as_ref().to_vec();
        assert_eq!(&first[..6], &[5, 0, 3, 2, 2, 1]);
        assert_eq!(first.len(), 6 + 153);
        assert_eq!(&p[1].short_message().as_ref()[..6], &[5, 0, 3, 2, 2, 2]);
        assert_eq!(p[0].destination_addr.as_str(), "420601123456");
    }
}
