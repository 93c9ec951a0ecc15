//! The SMS plugin over HTTP against the real server: the Send SMS tab's visibility, the
//! server-side count on preview, refusals in English and Czech that charge nothing, the
//! durable outbox and the sent list, the monthly quota under 50 parallel sends, the telephone
//! directory (and another client's ids answering 404), and `portico sms`.

mod common;

use common::{Server, csrf_of};

/// The hidden `key` of the page's form.
fn key_of(html: &str) -> String {
    let marker = "name=\"key\" value=\"";
    let start = html.find(marker).expect("page has a key field") + marker.len();
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

/// The text of the page's error (role="alert").
fn alert(html: &str) -> String {
    let start = html
        .find("role=\"alert\">")
        .unwrap_or_else(|| panic!("an error on the page:\n{html}"))
        + "role=\"alert\">".len();
    html[start..start + html[start..].find("</p>").expect("end")].to_string()
}

/// Posts a form; returns (status, location, body).
async fn post(
    s: &Server,
    c: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let r = c.post(s.url(path)).form(fields).send().await.expect("post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_string())
        .unwrap_or_default();
    (status, location, r.text().await.expect("body"))
}

/// Opens the tab, fills its form (csrf and key from the page) and posts it.
async fn send(s: &Server, c: &reqwest::Client, fields: &[(&str, &str)]) -> (u16, String, String) {
    let (status, html) = s.get_text(c, "/sms/").await;
    assert_eq!(status, 200, "{html}");
    let (csrf, key) = (csrf_of(&html), key_of(&html));
    let mut all = vec![("csrf", csrf.as_str()), ("key", key.as_str())];
    all.extend_from_slice(fields);
    post(s, c, "/sms/send", &all).await
}

async fn switch_language(s: &Server, c: &reqwest::Client, lang: &str) {
    let (_, html) = s.get_text(c, "/").await;
    let r = c
        .post(s.url("/lang"))
        .form(&[("csrf", csrf_of(&html).as_str()), ("lang", lang)])
        .send()
        .await
        .expect("lang");
    assert_eq!(r.status(), 303);
}

fn queued(s: &Server) -> Vec<String> {
    let out = s.cli_ok(&["sms", "queue"]);
    if out == "the SMS outbox is empty\n" {
        Vec::new()
    } else {
        out.lines().map(str::to_string).collect()
    }
}

#[tokio::test]
async fn the_tab_shows_only_with_sms_notify_and_ci_sms_enable_per_group() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    // The demo: sms_notify = gateway, ci_sms_enable on.
    let (status, page) = s.get_text(&alice, "/sms/").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Send SMS</h1>"), "{page}");
    let (_, menu) = s.get_text(&alice, "/services/").await;
    assert!(menu.contains("href=\"/sms/\""), "{menu}");

    s.cli_ok(&["settings", "set", "sms_notify", "disabled"]);
    let (status, _) = s.get_text(&alice, "/sms/").await;
    assert_eq!(status, 404);
    let (status, _) = s.get_text(&alice, "/sms/directory").await;
    assert_eq!(status, 404);
    let (_, menu) = s.get_text(&alice, "/services/").await;
    assert!(!menu.contains("href=\"/sms/\""), "{menu}");

    // Per invoice group: off for alice's group (1), still on for bob's (2).
    s.cli_ok(&["settings", "set", "sms_notify", "smpp"]);
    s.cli_ok(&["settings", "set", "ci_sms_enable", "off", "--group", "1"]);
    let (status, _) = s.get_text(&alice, "/sms/").await;
    assert_eq!(status, 404);
    let (status, page) = s.get_text(&bob, "/sms/").await;
    assert_eq!(status, 200, "{page}");
    // A send to the hidden tab is refused and queues nothing.
    let (_, html) = s.get_text(&alice, "/").await;
    let (status, _, _) = post(
        &s,
        &alice,
        "/sms/send",
        &[
            ("csrf", &csrf_of(&html)),
            ("to", "+420601123456"),
            ("text", "hi"),
            ("action", "send"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    assert!(queued(&s).is_empty());

    // Czech title.
    switch_language(&s, &bob, "cs").await;
    let (_, page) = s.get_text(&bob, "/sms/").await;
    assert!(page.contains("<h1>Odeslat SMS</h1>"), "{page}");
}

#[tokio::test]
async fn a_message_is_counted_on_preview_queued_once_and_listed_with_its_state() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(
        page.contains("You can send 20 more SMS parts this month (of 20)."),
        "{page}"
    );
    assert!(
        page.contains("You have not sent any messages yet."),
        "{page}"
    );

    // Preview without script: the server counts (UCS-2 for Czech letters) and queues nothing.
    let text = "Dobrý den, zítra přijdu v 10:00.";
    let (status, _, page) = send(
        &s,
        &alice,
        &[("to", "601 123 456"), ("text", text), ("action", "preview")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Unicode (diacritics): characters 32, parts 1/5"),
        "{page}"
    );
    assert!(
        page.contains("The message goes to +420601123456."),
        "{page}"
    );
    assert!(queued(&s).is_empty());

    // A long GSM text: 161 characters are two parts.
    let long = "a".repeat(161);
    let (_, _, page) = send(
        &s,
        &alice,
        &[
            ("to", "+420601123456"),
            ("text", &long),
            ("action", "preview"),
        ],
    )
    .await;
    assert!(
        page.contains("Standard characters: characters 161, parts 2/5"),
        "{page}"
    );

    // Sending: one message for the same form posted twice.
    let (_, html) = s.get_text(&alice, "/sms/").await;
    let (csrf, key) = (csrf_of(&html), key_of(&html));
    let fields = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("to", "601 123 456"),
        ("text", "<b>Hello</b> from the portal"),
        ("action", "send"),
    ];
    let (status, location, body) = post(&s, &alice, "/sms/send", &fields).await;
    assert_eq!((status, location.as_str()), (303, "/sms/?sent=1"), "{body}");
    let (status, location, _) = post(&s, &alice, "/sms/send", &fields).await;
    assert_eq!((status, location.as_str()), (303, "/sms/?sent=1"));
    let (_, page) = s.get_text(&alice, &location).await;
    assert!(
        page.contains("Your message was accepted and waits to be sent."),
        "{page}"
    );
    assert!(page.contains("id=\"sms-1\""), "{page}");
    assert!(!page.contains("id=\"sms-2\""), "{page}");
    assert!(page.contains("sms-state-queued\">Queued</span>"), "{page}");
    assert!(page.contains("+420601123456"), "{page}");
    // Autoescaped.
    assert!(
        page.contains("&lt;b&gt;Hello&lt;&#x2F;b&gt;") || page.contains("&lt;b&gt;Hello&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>Hello"), "{page}");
    assert!(
        page.contains("You can send 19 more SMS parts this month (of 20)."),
        "{page}"
    );
    let q = queued(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with("#1 queued to +420601123456 (1 part(s), gsm7)")
            && q[0].contains("client #1"),
        "{q:?}"
    );

    // The outbox survives a restart.
    let data = s.stop();
    let s = Server::serve(data, common::Options::default());
    let q = queued(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(page.contains("id=\"sms-1\""), "{page}");
}

#[tokio::test]
async fn bad_input_is_refused_in_the_clients_language_and_costs_nothing() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let cases: [(&str, &str, u16, &str, &str); 4] = [
        (
            "12",
            "hi",
            422,
            "This is not a valid phone number. Write it with the +country code, or as a national number.",
            "Toto není platné telefonní číslo. Zadejte ho s předvolbou +země, nebo jako vnitrostátní číslo.",
        ),
        (
            "",
            "hi",
            422,
            "Choose a contact or type a phone number.",
            "Vyberte kontakt nebo zadejte telefonní číslo.",
        ),
        (
            "+420601123456",
            "   ",
            422,
            "Write the text of the message.",
            "Napište text zprávy.",
        ),
        (
            "+420601123456",
            "LONG",
            422,
            "The message is too long: at most 5 parts are allowed.",
            "Zpráva je příliš dlouhá: povoleno je nejvýše 5 částí.",
        ),
    ];
    // 6 parts of GSM text.
    let long = "x".repeat(153 * 5 + 1);
    for (lang, pick) in [("en", 3), ("cs", 4)] {
        switch_language(&s, &alice, lang).await;
        for case in &cases {
            let text = if case.1 == "LONG" {
                long.as_str()
            } else {
                case.1
            };
            let (status, _, page) = send(
                &s,
                &alice,
                &[("to", case.0), ("text", text), ("action", "send")],
            )
            .await;
            assert_eq!(status, case.2, "{case:?}");
            let want = if pick == 3 { case.3 } else { case.4 };
            assert_eq!(alert(&page), want, "{lang}");
        }
    }
    // The limit follows sms_max_parts.
    s.cli_ok(&["settings", "set", "sms_max_parts", "6"]);
    switch_language(&s, &alice, "en").await;
    let (status, _, _) = send(
        &s,
        &alice,
        &[("to", "+420601123456"), ("text", &long), ("action", "send")],
    )
    .await;
    assert_eq!(status, 303);
    // Over the quota: 20 - 6 = 14 left, a 15-part… make the limit 7.
    s.cli_ok(&["settings", "set", "ci_sms_per_month", "7"]);
    let two = "y".repeat(200);
    let (status, _, page) = send(
        &s,
        &alice,
        &[("to", "+420601123456"), ("text", &two), ("action", "send")],
    )
    .await;
    assert_eq!(status, 429, "{page}");
    assert_eq!(
        alert(&page),
        "Your monthly SMS limit does not allow this message: it takes 2 parts and 1 are left this month."
    );
    assert!(
        page.contains("You can send 1 more SMS parts this month (of 7)."),
        "{page}"
    );
    // Nothing queued or charged by any refusal: only the one accepted message.
    assert_eq!(queued(&s).len(), 1);
    // The hourly bound holds without a monthly limit too (and its refusal costs nothing).
    s.cli_ok(&["settings", "set", "ci_sms_per_month", "0"]);
    s.cli_ok(&["settings", "set", "sms_per_hour", "2"]);
    let (status, _, _) = send(
        &s,
        &alice,
        &[("to", "+420601123456"), ("text", "2nd"), ("action", "send")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _, page) = send(
        &s,
        &alice,
        &[("to", "+420601123456"), ("text", "3rd"), ("action", "send")],
    )
    .await;
    assert_eq!(status, 429, "{page}");
    assert_eq!(
        alert(&page),
        "You have sent too many messages this hour (at most 2). Please try again later."
    );
    assert_eq!(queued(&s).len(), 2);
    let log = s.log_text();
    assert!(log.contains("invalid number"), "a logged reason");
    assert!(log.contains("monthly quota exhausted"), "a logged reason");
}

#[tokio::test]
async fn fifty_parallel_sends_against_a_limit_of_ten_accept_exactly_ten() {
    let s = Server::demo();
    s.cli_ok(&["settings", "set", "ci_sms_per_month", "10"]);
    s.cli_ok(&["settings", "set", "sms_per_hour", "100"]);
    let alice = s.login("alice", "alice-demo-pass").await;
    // Fifty forms, each with its own key, posted at once.
    let mut forms = Vec::new();
    for _ in 0..50 {
        let (_, html) = s.get_text(&alice, "/sms/").await;
        forms.push((csrf_of(&html), key_of(&html)));
    }
    let mut tasks = Vec::new();
    for (csrf, key) in forms {
        let c = alice.clone();
        let url = s.url("/sms/send");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("key", key.as_str()),
                    ("to", "+420601123456"),
                    ("text", "race"),
                    ("action", "send"),
                ])
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        40,
        "{statuses:?}"
    );
    assert_eq!(queued(&s).len(), 10);
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(
        page.contains("You can send 0 more SMS parts this month (of 10)."),
        "{page}"
    );
}

#[tokio::test]
async fn the_directory_adds_edits_deletes_and_picks_and_is_the_clients_own() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    // The demo's contact is alice's (#1).
    let (status, page) = s.get_text(&alice, "/sms/directory").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h1>Telephone directory</h1>"), "{page}");
    assert!(page.contains("Bob (neighbour)"), "{page}");
    let csrf = csrf_of(&page);

    // Add: checked, normalized.
    let (status, _, page) = post(
        &s,
        &alice,
        "/sms/directory",
        &[("csrf", &csrf), ("name", "Mum"), ("number", "12")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(alert(&page).starts_with("This is not a valid phone number."));
    let (status, location, _) = post(
        &s,
        &alice,
        "/sms/directory",
        &[("csrf", &csrf), ("name", "Mum"), ("number", "602 111 222")],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/sms/directory?saved=1"));
    let (_, page) = s.get_text(&alice, "/sms/directory").await;
    assert!(page.contains("id=\"contact-2\""), "{page}");
    assert!(page.contains("+420602111222"), "{page}");

    // Edit.
    let (status, page) = s.get_text(&alice, "/sms/directory/2").await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"Mum\""), "{page}");
    let (status, _, _) = post(
        &s,
        &alice,
        "/sms/directory/2",
        &[
            ("csrf", &csrf),
            ("name", "Mother"),
            ("number", "+420 602 111 333"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = s.get_text(&alice, "/sms/directory").await;
    assert!(
        page.contains("Mother") && page.contains("+420602111333"),
        "{page}"
    );

    // Pick it when sending.
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(
        page.contains("<option value=\"2\">Mother (+420602111333)</option>"),
        "{page}"
    );
    let (status, location, _) = send(
        &s,
        &alice,
        &[("contact", "2"), ("text", "Hi mum"), ("action", "send")],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/sms/?sent=1"));
    let q = queued(&s);
    assert!(q[0].contains("to +420602111333"), "{q:?}");

    // Bob reaches none of alice's contacts: each answers 404 and changes nothing.
    let (_, bob_page) = s.get_text(&bob, "/sms/directory").await;
    let bob_csrf = csrf_of(&bob_page);
    assert!(!bob_page.contains("Mother"), "{bob_page}");
    let (status, _) = s.get_text(&bob, "/sms/directory/2").await;
    assert_eq!(status, 404);
    let (status, _, _) = post(
        &s,
        &bob,
        "/sms/directory/2",
        &[
            ("csrf", &bob_csrf),
            ("name", "Mine"),
            ("number", "+420602999999"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&s, &bob, "/sms/directory/2/delete", &[("csrf", &bob_csrf)]).await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        &s,
        &bob,
        &[("contact", "2"), ("text", "x"), ("action", "send")],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(queued(&s).len(), 1);
    let (status, _) = s.get_text(&bob, "/sms/directory/999").await;
    assert_eq!(status, 404);

    // Delete.
    let (status, location, _) =
        post(&s, &alice, "/sms/directory/2/delete", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/sms/directory?saved=deleted")
    );
    let (_, page) = s.get_text(&alice, &location).await;
    assert!(!page.contains("Mother"), "{page}");
    assert!(page.contains("The contact was deleted."), "{page}");
    // Without the form token: refused.
    let (status, _, _) = post(&s, &alice, "/sms/directory/1/delete", &[("csrf", "nope")]).await;
    assert_eq!(status, 403);
    let (_, page) = s.get_text(&alice, "/sms/directory").await;
    assert!(page.contains("Bob (neighbour)"), "{page}");
}

#[tokio::test]
async fn operators_queue_and_list_sms_from_the_command_line() {
    let s = Server::demo();
    let out = s.cli_ok(&[
        "sms",
        "send",
        "--client",
        "alice",
        "--to",
        "601123456",
        "--text",
        "Your router is ready",
    ]);
    assert_eq!(
        out,
        "queued SMS #1 to +420601123456 (1 part(s)) for client 1001\n"
    );
    let (ok, _, err) = s.cli(&[
        "sms", "send", "--client", "alice", "--to", "12", "--text", "x",
    ]);
    assert!(
        !ok && err.contains("`12` is not a valid phone number"),
        "{err}"
    );
    let q = queued(&s);
    assert_eq!(q.len(), 1);
    assert!(q[0].contains("Your router is ready"), "{q:?}");
    // An operator's message is not in the client's sent list nor on their quota.
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(
        page.contains("You have not sent any messages yet."),
        "{page}"
    );
    assert!(page.contains("You can send 20 more"), "{page}");
}

/// One request the gateway got: method, target, body, and the status it answered.
type Request = (String, String, String, u16);

/// A local HTTP gateway: records every request (method, target, body) and answers with the
/// status and body set in `answer`.
struct Gateway {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    answer: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
}

impl Gateway {
    fn start(status: u16, body: &str) -> Gateway {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let answer = std::sync::Arc::new(std::sync::Mutex::new((status, body.to_string())));
        let (r, a) = (requests.clone(), answer.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let (status, text) = a.lock().expect("lock").clone();
                r.lock().expect("lock").push((
                    method,
                    target,
                    String::from_utf8_lossy(&body).to_string(),
                    status,
                ));
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Gateway {
            port,
            requests,
            answer,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().expect("lock") = (status, body.to_string());
    }

    async fn wait_for(&self, count: usize) -> Vec<Request> {
        let start = std::time::Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= count {
                return r;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the gateway got {} requests, not {count}: {r:?}",
                r.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Waits until `portico sms queue --all` shows message `id` in `state`.
async fn wait_for_state(s: &Server, id: u64, state: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let all = s.cli_ok(&["sms", "queue", "--all"]);
        if let Some(line) = all
            .lines()
            .find(|l| l.starts_with(&format!("#{id} {state} ")))
        {
            return line.to_string();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "#{id} is not {state}: {all}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_http_gateway_gets_each_message_once_and_the_state_follows() {
    let gw = Gateway::start(200, "OK queued");
    let s = Server::demo();
    s.cli_ok(&[
        "settings",
        "set",
        "sms_gateway_url",
        &format!("http://127.0.0.1:{}/send?key=secret&to={{to}}", gw.port),
    ]);
    s.cli_ok(&["settings", "set", "sms_gateway_success_body", "OK"]);
    let alice = s.login("alice", "alice-demo-pass").await;
    for text in ["Dobrý den & vítejte \"doma\"", "second"] {
        let (status, _, _) = send(
            &s,
            &alice,
            &[("to", "601 123 456"), ("text", text), ("action", "send")],
        )
        .await;
        assert_eq!(status, 303);
    }
    let got = gw.wait_for(2).await;
    wait_for_state(&s, 1, "sent").await;
    wait_for_state(&s, 2, "sent").await;
    assert_eq!(got[0].0, "POST");
    assert_eq!(got[0].1, "/send?key=secret&to=%2B420601123456");
    let body: serde_json::Value = serde_json::from_str(&got[0].2).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({"to": "+420601123456", "text": "Dobrý den & vítejte \"doma\"", "id": "1"})
    );
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert_eq!(
        page.matches("sms-state-sent\">Sent</span>").count(),
        2,
        "{page}"
    );
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
    // Nothing is sent twice: not later, not after a restart.
    let data = s.stop();
    let s = Server::serve(data, common::Options::default());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(gw.requests().len(), 2);
    // The gateway's key in the URL never reaches the log.
    assert!(!s.log_text().contains("secret"));
}

#[tokio::test]
async fn a_gateway_outage_keeps_messages_queued_until_it_answers_and_a_refusal_fails_one() {
    let gw = Gateway::start(503, "busy");
    let s = Server::demo();
    s.cli_ok(&[
        "settings",
        "set",
        "sms_gateway_url",
        &format!("http://127.0.0.1:{}/sms", gw.port),
    ]);
    s.cli_ok(&["settings", "set", "sms_gateway_method", "POST"]);
    s.cli_ok(&["settings", "set", "sms_gateway_body", "to={to}&msg={text}"]);
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, _, _) = send(
        &s,
        &alice,
        &[
            ("to", "+420601123456"),
            ("text", "a b&c"),
            ("action", "send"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let got = gw.wait_for(1).await;
    assert_eq!(got[0].2, "to=%2B420601123456&msg=a+b%26c");
    let q = s.cli_ok(&["sms", "queue"]);
    let start = std::time::Instant::now();
    let mut q = q;
    while !q.contains("attempts 1") {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{q}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        q = s.cli_ok(&["sms", "queue"]);
    }
    assert!(
        q.starts_with("#1 queued") && q.contains("last error: gateway answered 503: busy"),
        "{q}"
    );
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(page.contains("sms-state-queued\">Queued</span>"), "{page}");

    // The gateway is back: the retry delivers it, once.
    gw.answer(200, "accepted");
    s.advance_clock(30);
    wait_for_state(&s, 1, "sent").await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let accepted = gw.requests().iter().filter(|r| r.3 == 200).count();
    assert_eq!(accepted, 1);

    // A refusal (invalid destination) fails the message; the client sees it.
    gw.answer(400, "invalid destination");
    let (status, _, _) = send(
        &s,
        &alice,
        &[("to", "+420601123457"), ("text", "x"), ("action", "send")],
    )
    .await;
    assert_eq!(status, 303);
    let line = wait_for_state(&s, 2, "failed").await;
    assert!(
        line.contains("gateway answered 400: invalid destination"),
        "{line}"
    );
    let (_, page) = s.get_text(&alice, "/sms/").await;
    assert!(page.contains("sms-state-failed\">Failed</span>"), "{page}");
    assert_eq!(s.cli_ok(&["sms", "queue"]), "the SMS outbox is empty\n");
}

/// The scripting example scripts/examples/sms-text-rule.rhai, loaded into a running portal:
/// the form's text loses its accents and gains the signature; a text over three messages is
/// vetoed with the script's message (nothing queued or charged).
#[tokio::test]
async fn the_sms_text_rule_script_example_amends_and_vetoes_through_the_form() {
    let dir = tempfile::tempdir().expect("scripts");
    std::fs::copy(
        common::repo_root().join("scripts/examples/sms-text-rule.rhai"),
        dir.path().join("sms-text-rule.rhai"),
    )
    .expect("copy");
    let s = Server::demo_with(common::Options {
        scripts: Some(dir.path().to_path_buf()),
        ..common::Options::default()
    });
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, _, _) = send(
        &s,
        &alice,
        &[
            ("to", "601 123 456"),
            ("text", "Výpadek v Blansku skončil."),
            ("action", "send"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let q = queued(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with("#1 queued to +420601123456 (1 part(s), gsm7)")
            && q[0].ends_with(": Vypadek v Blansku skoncil. -- Example Net"),
        "{q:?}"
    );
    let (_, page) = s.get_text(&alice, "/sms/").await;
    let left = page.contains("Vypadek v Blansku skoncil. -- Example Net");
    assert!(left, "{page}");

    let long = "a".repeat(450);
    let (status, _, html) = send(
        &s,
        &alice,
        &[("to", "601 123 456"), ("text", &long), ("action", "send")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert_eq!(
        alert(&html),
        "The text is longer than three messages (459 characters without accents)."
    );
    assert_eq!(queued(&s).len(), 1);
    switch_language(&s, &alice, "cs").await;
    let (status, _, html) = send(
        &s,
        &alice,
        &[("to", "601 123 456"), ("text", &long), ("action", "send")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert_eq!(
        alert(&html),
        "Text je delší než tři zprávy (459 znaků bez diakritiky)."
    );
    assert_eq!(queued(&s).len(), 1);
}
