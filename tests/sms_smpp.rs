//! The SMS plugin's SMPP 3.4 sender against a real SMSC: the npm `smpp` package in server mode
//! (tests/smsc/smsc.js, installed by test.sh), which checks the bind credentials, records every
//! submit_sm and answers with delivery receipts. Delivery shown to the client, a wrong password
//! (queued, a logged reason), an SMSC outage across a portal restart (each message delivered
//! exactly once), a multipart message reassembled from its UDH, throttling retried, an invalid
//! destination failed. Also the benchmark (ignored; bench/sms.sh runs it in release).

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, csrf_of};
use serde_json::Value;

/// The test SMSC (node tests/smsc/smsc.js) and the JSON events it printed.
struct Smsc {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smsc {
    fn start(port: u16, env: &[(&str, &str)]) -> Smsc {
        let script = common::repo_root().join("tests/smsc/smsc.js");
        assert!(
            common::repo_root()
                .join("tests/smsc/node_modules/smpp")
                .exists(),
            "the smpp package must be installed: ./test.sh runs npm ci --prefix tests/smsc"
        );
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .env("SMSC_PORT", port.to_string())
            .env("SMSC_SYSTEM_ID", "portico")
            .env("SMSC_PASSWORD", "s3cret")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node");
        let stdout = child.stdout.take().expect("stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("events").push(v);
                }
            }
        });
        let s = Smsc { child, events };
        let start = Instant::now();
        while s.of("listening").is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "SMSC did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn of(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, kind: &str, count: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let e = self.of(kind);
            if e.len() >= count {
                return e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "expected {count} {kind} event(s), got {}: {:?}",
                e.len(),
                self.events.lock().expect("events")
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

fn smpp_portal(port: u16, password: &str) -> Server {
    let s = Server::demo();
    s.cli_ok(&[
        "settings",
        "set",
        "sms_smpp_url",
        &format!("smpp://portico:{password}@127.0.0.1:{port}"),
    ]);
    s.cli_ok(&["settings", "set", "sms_smpp_source_addr", "ExampleNet"]);
    s.cli_ok(&["settings", "set", "sms_notify", "smpp"]);
    s
}

fn key_of(html: &str) -> String {
    let marker = "name=\"key\" value=\"";
    let start = html.find(marker).expect("page has a key field") + marker.len();
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

async fn send(s: &Server, c: &reqwest::Client, to: &str, text: &str) {
    let (status, html) = s.get_text(c, "/sms/").await;
    assert_eq!(status, 200, "{html}");
    let (csrf, key) = (csrf_of(&html), key_of(&html));
    let r = c
        .post(s.url("/sms/send"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("key", key.as_str()),
            ("to", to),
            ("text", text),
            ("action", "send"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
}

/// Waits until `portico sms queue --all` shows message `id` in `state`.
async fn wait_for_state(s: &Server, id: u64, state: &str) -> String {
    let start = Instant::now();
    loop {
        let all = s.cli_ok(&["sms", "queue", "--all"]);
        if let Some(line) = all
            .lines()
            .find(|l| l.starts_with(&format!("#{id} {state} ")))
        {
            return line.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "#{id} is not {state}: {all}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_is_submitted_with_a_receipt_and_the_client_sees_it_delivered() {
    let port = common::free_port();
    let smsc = Smsc::start(port, &[]);
    let s = smpp_portal(port, "s3cret");
    let alice = s.login("alice", "alice-demo-pass").await;
    send(&s, &alice, "601 123 456", "Your router is ready").await;
    let submits = smsc.wait_for("submit", 1).await;
    let m = &submits[0];
    assert_eq!(m["to"], "420601123456");
    assert_eq!(m["text"], "Your router is ready");
    assert_eq!(m["from"], "ExampleNet");
    assert_eq!(m["source_ton"], 5);
    assert_eq!(m["registered"].as_u64().expect("registered") & 1, 1);
    assert_eq!(m["udh"], Value::Null);
    assert_eq!(smsc.of("bind")[0]["ok"], true);
    let line = wait_for_state(&s, 1, "delivered").await;
    assert!(line.contains("attempts 1"), "{line}");
    smsc.wait_for("deliver_sm_resp", 1).await;
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(
        page.contains("sms-state-delivered\">Delivered</span>"),
        "{page}"
    );
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
    assert_eq!(smsc.of("submit").len(), 1);
}

#[tokio::test]
async fn a_wrong_password_keeps_messages_queued_with_a_logged_reason() {
    let port = common::free_port();
    let smsc = Smsc::start(port, &[]);
    let s = smpp_portal(port, "wrong");
    s.cli_ok(&[
        "sms",
        "send",
        "--client",
        "alice",
        "--to",
        "601123456",
        "--text",
        "hi",
    ]);
    smsc.wait_for("bind", 2).await;
    assert!(smsc.of("bind").iter().all(|b| b["ok"] == false));
    assert!(smsc.of("submit").is_empty());
    let q = s.cli_ok(&["sms", "queue"]);
    assert!(q.starts_with("#1 queued"), "{q}");
    let log = s.log_text();
    assert!(
        log.contains("the SMSC refused the bind as `portico`: ESME_RINVPASWD (0x0000000e)"),
        "{log}"
    );
    // The password never reaches the log, nor `settings get`.
    assert!(!log.contains("wrong@"), "{log}");
    let shown = s.cli_ok(&["settings", "get", "sms_smpp_url"]);
    assert!(!shown.contains("wrong"), "{shown}");
    // The right password: the message goes out.
    s.cli_ok(&[
        "settings",
        "set",
        "sms_smpp_url",
        &format!("smpp://portico:s3cret@127.0.0.1:{port}"),
    ]);
    wait_for_state(&s, 1, "delivered").await;
    assert_eq!(smsc.of("submit").len(), 1);
}

#[tokio::test]
async fn an_smsc_outage_keeps_messages_queued_and_each_is_delivered_once_after_a_restart() {
    let port = common::free_port();
    let s = smpp_portal(port, "s3cret");
    let alice = s.login("alice", "alice-demo-pass").await;
    for i in 0..3 {
        send(&s, &alice, "+420601123456", &format!("outage {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let q = s.cli_ok(&["sms", "queue"]);
    assert_eq!(
        q.lines().filter(|l| l.contains(" queued ")).count(),
        3,
        "{q}"
    );
    assert!(s.log_text().contains("cannot connect to the SMSC"));
    // The portal restarts while the SMSC is still down.
    let data = s.stop();
    let s = Server::serve(data, common::Options::default());
    let smsc = Smsc::start(port, &[]);
    for id in 1..=3 {
        wait_for_state(&s, id, "delivered").await;
    }
    // And once more: nothing is sent again.
    let data = s.stop();
    let s = Server::serve(data, common::Options::default());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let texts: Vec<String> = smsc
        .of("submit")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_string())
        .collect();
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(sorted, ["outage 0", "outage 1", "outage 2"], "{texts:?}");
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
}

#[tokio::test]
async fn a_long_message_reassembles_from_its_parts_on_the_smsc() {
    let port = common::free_port();
    let smsc = Smsc::start(port, &[]);
    let s = smpp_portal(port, "s3cret");
    let alice = s.login("alice", "alice-demo-pass").await;
    let gsm: String = (0..330).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    send(&s, &alice, "+420601123456", &gsm).await;
    let czech = "Dobrý den, Šárko! ".repeat(8);
    send(&s, &alice, "+420601123456", &czech).await;
    let submits = smsc.wait_for("submit", 3 + 3).await;
    for (text, dc) in [(&gsm, 0), (&czech, 8)] {
        let mut parts: Vec<&Value> = submits
            .iter()
            .filter(|m| m["dc"] == dc && m["udh"] != Value::Null)
            .collect();
        assert_eq!(parts.len(), 3, "{submits:?}");
        let reference = &parts[0]["udh"]["ref"];
        assert!(parts.iter().all(|p| &p["udh"]["ref"] == reference));
        assert!(parts.iter().all(|p| p["udh"]["total"] == 3));
        assert!(
            parts
                .iter()
                .all(|p| p["esm"].as_u64().expect("esm") & 0x40 != 0)
        );
        parts.sort_by_key(|p| p["udh"]["seq"].as_u64());
        let whole: String = parts
            .iter()
            .map(|p| p["text"].as_str().expect("text"))
            .collect();
        assert_eq!(&whole, text);
    }
    wait_for_state(&s, 1, "delivered").await;
    wait_for_state(&s, 2, "delivered").await;
}

/// An operator's helpdesk reply of channel sms reaches the ticket client's mobile through the
/// outbox; without a client, or with SMS switched off, the reply is recorded and says why no SMS
/// went.
#[tokio::test]
async fn an_operators_sms_reply_in_the_helpdesk_reaches_the_clients_mobile() {
    let port = common::free_port();
    let smsc = Smsc::start(port, &[]);
    let s = smpp_portal(port, "s3cret");
    let mobile = s
        .cli_ok(&["client", "show", "alice"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("mobile: ").map(str::to_string))
        .expect("alice's mobile");
    let e164: String = mobile.chars().filter(|c| !c.is_whitespace()).collect();
    let out = s.cli_ok(&[
        "helpdesk",
        "reply",
        "1",
        "--channel",
        "sms",
        "--text",
        "Your line is fixed.",
    ]);
    assert!(out.contains("(sms) to ticket #1\n"), "{out}");
    assert!(
        out.ends_with(&format!("SMS #1 queued to {e164} (1 part(s))\n")),
        "{out}"
    );
    let submits = smsc.wait_for("submit", 1).await;
    assert_eq!(submits[0]["to"], e164.trim_start_matches('+'));
    assert_eq!(submits[0]["text"], "Your line is fixed.");
    wait_for_state(&s, 1, "delivered").await;

    // A ticket without a client: the item is recorded, no SMS.
    let created = s.cli_ok(&[
        "helpdesk",
        "create",
        "--subject",
        "Call back",
        "--text",
        "Please call.",
        "--email",
        "caller@example.org",
    ]);
    let id = created
        .split('#')
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .expect("ticket id")
        .to_string();
    let out = s.cli_ok(&[
        "helpdesk",
        "reply",
        &id,
        "--channel",
        "sms",
        "--text",
        "Hello",
    ]);
    assert!(
        out.ends_with("no SMS was sent: the ticket has no client\n"),
        "{out}"
    );
    // SMS switched off: recorded, no SMS.
    s.cli_ok(&["settings", "set", "sms_notify", "disabled"]);
    let out = s.cli_ok(&[
        "helpdesk",
        "reply",
        "1",
        "--channel",
        "sms",
        "--text",
        "Again",
    ]);
    assert!(
        out.ends_with("no SMS was sent: sms_notify is disabled\n"),
        "{out}"
    );
    let all = s.cli_ok(&["sms", "queue", "--all"]);
    assert_eq!(
        all.lines().filter(|l| l.starts_with('#')).count(),
        1,
        "{all}"
    );
    assert_eq!(smsc.wait_for("submit", 1).await.len(), 1);
}

#[tokio::test]
async fn throttling_is_retried_and_an_invalid_destination_fails_the_message() {
    let port = common::free_port();
    let smsc = Smsc::start(
        port,
        &[("SMSC_THROTTLE", "2"), ("SMSC_REFUSE", "420601999999")],
    );
    let s = smpp_portal(port, "s3cret");
    s.cli_ok(&[
        "sms",
        "send",
        "--client",
        "alice",
        "--to",
        "601123456",
        "--text",
        "one",
    ]);
    smsc.wait_for("throttled", 1).await;
    let line = wait_for_state(&s, 1, "delivered").await;
    assert!(line.contains("attempts"), "{line}");
    assert!(
        s.log_text().contains("ESME_RTHROTTLED (0x00000058)"),
        "{}",
        s.log_text()
    );
    assert_eq!(smsc.of("submit").len(), 1);
    s.cli_ok(&[
        "sms",
        "send",
        "--client",
        "alice",
        "--to",
        "601999999",
        "--text",
        "two",
    ]);
    let line = wait_for_state(&s, 2, "failed").await;
    assert!(
        line.contains("the SMSC refused it: ESME_RINVDSTADR (0x0000000b)"),
        "{line}"
    );
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Posts `count` messages from alice (texts `{prefix} {i}`) with `parallel` requests at once;
/// returns when each was accepted (ms since the epoch) by text.
async fn post_many(
    s: &Server,
    c: &reqwest::Client,
    prefix: &str,
    count: usize,
    parallel: usize,
    pace: Option<Duration>,
) -> Vec<(String, i64)> {
    let (_, html) = s.get_text(c, "/sms/").await;
    let csrf = csrf_of(&html);
    let url = s.url("/sms/send");
    let mut out = Vec::with_capacity(count);
    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(parallel) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (c, url, csrf) = (c.clone(), url.clone(), csrf.clone());
            let text = format!("{prefix} {i}");
            tasks.push(tokio::spawn(async move {
                let key = format!("bench-{text}-key").replace(' ', "-");
                let r = c
                    .post(&url)
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("key", key.as_str()),
                        ("to", "+420601123456"),
                        ("text", text.as_str()),
                        ("action", "send"),
                    ])
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status(), 303);
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis() as i64;
                (text, at)
            }));
        }
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        if let Some(pace) = pace {
            let due = pace * (out.len() as u32);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    out
}

/// The benchmark (bench/sms.sh runs it in release): sustained submission from the outbox to the
/// test SMSC, and the latency from a message's acceptance into the outbox to its submit_sm at
/// the SMSC (which answers submit_sm_resp at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/sms.sh"]
async fn bench_smpp_submission() {
    let backlog: usize = std::env::var("SMS_BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let paced: usize = std::env::var("SMS_BENCH_PACED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rate: u64 = std::env::var("SMS_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let port = common::free_port();
    let s = smpp_portal(port, "s3cret");
    s.cli_ok(&["settings", "set", "ci_sms_per_month", "0"]);
    s.cli_ok(&["settings", "set", "sms_per_hour", "10000"]);
    let alice = s.login("alice", "alice-demo-pass").await;

    // 1. A backlog queued while the SMSC is down, then drained: sustained submissions/s.
    let t0 = Instant::now();
    post_many(&s, &alice, "backlog", backlog, 8, None).await;
    let fill = t0.elapsed();
    let smsc = Smsc::start(port, &[("SMSC_RECEIPT", "none")]);
    let start = Instant::now();
    let got = loop {
        let n = smsc.of("submit");
        if n.len() >= backlog {
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{} of {backlog}",
            n.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let times: Vec<i64> = got.iter().map(|e| e["t"].as_i64().expect("t")).collect();
    let span_ms = (times.iter().max().expect("max") - times.iter().min().expect("min")).max(1);
    let drain_rate = (backlog as f64 - 1.0) * 1000.0 / span_ms as f64;

    // 2. Paced sends with the SMSC up: latency from acceptance (the form's 303) to submit_sm.
    let posted = post_many(
        &s,
        &alice,
        "paced",
        paced,
        4,
        Some(Duration::from_micros(1_000_000 / rate)),
    )
    .await;
    let start = Instant::now();
    while smsc.of("submit").len() < backlog + paced {
        assert!(start.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived: std::collections::HashMap<String, i64> = smsc
        .of("submit")
        .iter()
        .map(|e| {
            (
                e["text"].as_str().expect("text").to_string(),
                e["t"].as_i64().expect("t"),
            )
        })
        .collect();
    let mut lat: Vec<i64> = posted.iter().map(|(text, at)| arrived[text] - at).collect();
    lat.sort_unstable();
    // Exactly once each.
    assert_eq!(smsc.of("submit").len(), backlog + paced);
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| backlog queued over HTTP (8 parallel form posts) | {backlog} messages in {:.2} s ({:.0}/s) |",
        fill.as_secs_f64(),
        backlog as f64 / fill.as_secs_f64()
    );
    println!(
        "| sustained submission, outbox → SMSC (window {}) | **{drain_rate:.0} msg/s** ({backlog} in {span_ms} ms) |",
        64
    );
    println!(
        "| latency accepted → submit_sm at the SMSC, {paced} msgs at {rate}/s | p50 {} ms, p99 {} ms, max {} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
}
