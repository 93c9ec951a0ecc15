//! The GDPR tab over HTTP: consents given, edited and withdrawn with their evidence, refusals
//! that record nothing, one record for a double submission, the data export, the erasure
//! request, and operator commands that cannot alter evidence.

mod common;

use std::collections::BTreeSet;

use common::{Server, csrf_of};

/// The hidden fields of a consent's form on the GDPR tab: (version, hash, seen).
fn form_of(html: &str, doc: u64) -> (String, String, String) {
    let start = html
        .find(&format!("id=\"consent-{doc}\""))
        .unwrap_or_else(|| panic!("consent {doc} on the page:\n{html}"));
    let card = &html[start..];
    let card = &card[..card.find("</article>").expect("end of the card")];
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = card.find(&marker).expect(name) + marker.len();
        card[at..at + card[at..].find('"').expect("end")].to_string()
    };
    (field("version"), field("hash"), field("seen"))
}

async fn post_consent(
    s: &Server,
    c: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let r = c
        .post(s.url("/gdpr/consent"))
        .header("User-Agent", "gdpr-test-agent/1.0")
        .form(fields)
        .send()
        .await
        .expect("post consent");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_string())
        .unwrap_or_default();
    (status, location, r.text().await.expect("body"))
}

/// Gives, edits or withdraws consent `doc` as the GDPR tab's form would; returns (status,
/// location, body).
async fn act(
    s: &Server,
    c: &reqwest::Client,
    doc: u64,
    action: &str,
    parts: &[&str],
    confirm: bool,
) -> (u16, String, String) {
    let (_, html) = s.get_text(c, "/gdpr/").await;
    let (version, hash, seen) = form_of(&html, doc);
    let csrf = csrf_of(&html);
    let doc = doc.to_string();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("document", doc.as_str()),
        ("version", version.as_str()),
        ("hash", hash.as_str()),
        ("seen", seen.as_str()),
        ("action", action),
    ];
    for p in parts {
        fields.push(("part", p));
    }
    if confirm {
        fields.push(("confirm", "yes"));
    }
    post_consent(s, c, &fields).await
}

/// Alice's evidence as CSV lines without the header.
fn history_csv(s: &Server, who: &str) -> Vec<String> {
    s.cli_ok(&["gdpr", "history", "--client", who, "--csv"])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn text_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write text");
    path.to_str().expect("utf-8").to_string()
}

#[tokio::test]
async fn give_edit_withdraw_and_a_new_version_asks_again() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    let (status, html) = s.get_text(&bob, "/gdpr/").await;
    assert_eq!(status, 200);
    assert!(html.contains("News and offers"), "{html}");
    assert!(html.contains("Not answered yet"), "{html}");
    assert!(html.contains("No changes yet."), "{html}");

    // Give the optional consent with its first part, then change the choice, then withdraw.
    let (status, location, _) = act(&s, &bob, 2, "give", &["1"], false).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=give"));
    let (_, html) = s.get_text(&bob, "/gdpr/?saved=give").await;
    assert!(html.contains("Your consent was recorded."), "{html}");
    assert!(html.contains("state-given"), "{html}");
    let (status, location, _) = act(&s, &bob, 2, "give", &["1", "2"], false).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=edit"));
    // An optional consent is withdrawn without a question.
    let (status, location, _) = act(&s, &bob, 2, "withdraw", &[], false).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=withdraw"));

    let csv = history_csv(&s, "bob");
    assert_eq!(csv.len(), 3, "{csv:?}");
    assert!(csv[0].starts_with("1,") && csv[0].contains(",1002,2,1,News and offers,en,"));
    assert!(
        csv[0].contains(",give,News and offers by e-mail,client,127.0.0.1,"),
        "{}",
        csv[0]
    );
    assert!(
        csv[1].contains(",edit,News and offers by e-mail; Offers by SMS,client,"),
        "{}",
        csv[1]
    );
    assert!(
        csv[2].contains(",withdraw,,client,127.0.0.1,"),
        "{}",
        csv[2]
    );
    assert!(
        csv[0].ends_with(",127.0.0.1,gdpr-test-agent/1.0"),
        "{}",
        csv[0]
    );
    let hash = csv[0].split(',').nth(7).expect("hash").to_string();
    assert_eq!(hash.len(), 64);

    // The client sees the same history on the tab, newest first, with versions.
    let (_, html) = s.get_text(&bob, "/gdpr/").await;
    let history = &html[html.find("consent-history").expect("history table")..];
    let withdraw_at = history.find("record-withdraw").expect("withdraw row");
    let give_at = history.find("record-give").expect("give row");
    assert!(withdraw_at < give_at, "newest first");

    // A new version of the required consent asks alice (who gave version 1) again.
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    assert!(html.contains("state-given"), "{html}");
    let dir = tempfile::tempdir().expect("tmp");
    let en = text_file(&dir, "v2.md", "We now also process **traffic data**.");
    let cs = text_file(&dir, "v2.cs.md", "Nově zpracováváme i **provozní údaje**.");
    let out = s.cli_ok(&[
        "gdpr",
        "consent",
        "update",
        "1",
        "--text-file",
        &en,
        "--text-file-cs",
        &cs,
    ]);
    assert!(out.contains("version 2"), "{out}");
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    assert!(html.contains("state-outdated"), "{html}");
    assert!(html.contains("<strong>traffic data</strong>"), "{html}");
    assert!(html.contains("Give consent to this version"), "{html}");
    let (status, location, _) = act(&s, &alice, 1, "give", &[], false).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=give"));
    let csv = history_csv(&s, "alice");
    assert_eq!(csv.len(), 2, "{csv:?}");
    assert!(csv[0].contains(",1001,1,1,"), "{}", csv[0]);
    assert!(csv[1].contains(",1001,1,2,"), "{}", csv[1]);
    assert_ne!(
        csv[0].split(',').nth(7),
        csv[1].split(',').nth(7),
        "each version's own text hash"
    );
    // In Czech the same consent shows the Czech text.
    let (_, html) = s.get_text(&alice, "/gdpr/?lang=cs").await;
    assert!(html.contains("provozní údaje"), "{html}");
    assert!(html.contains("Udělen"), "{html}");
}

#[tokio::test]
async fn withdrawing_a_required_consent_is_confirmed_first() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, _, html) = act(&s, &alice, 1, "withdraw", &[], false).await;
    assert_eq!(status, 200);
    assert!(html.contains("Withdraw a required consent?"), "{html}");
    assert!(html.contains("we can no longer provide them"), "{html}");
    assert_eq!(history_csv(&s, "alice").len(), 1, "nothing recorded yet");
    let (status, location, _) = act(&s, &alice, 1, "withdraw", &[], true).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=withdraw"));
    let csv = history_csv(&s, "alice");
    assert_eq!(csv.len(), 2);
    assert!(csv[1].contains(",withdraw,"), "{}", csv[1]);
}

#[tokio::test]
async fn forged_stale_and_retired_requests_are_refused_and_record_nothing() {
    let s = Server::demo();
    let dir = tempfile::tempdir().expect("tmp");
    let text = text_file(&dir, "g2.md", "Only for group 2.");
    s.cli_ok(&[
        "gdpr",
        "consent",
        "add",
        "--title",
        "Group two",
        "--text-file",
        &text,
        "--invoice-group",
        "2",
    ]);
    // A group that does not exist is refused, and nothing is added.
    let (ok, out, err) = s.cli(&[
        "gdpr",
        "consent",
        "add",
        "--title",
        "Nobody's",
        "--text-file",
        &text,
        "--invoice-group",
        "999",
    ]);
    assert!(
        !ok && err.contains("there is no invoice group 999"),
        "{out}{err}"
    );
    assert!(!s.cli_ok(&["gdpr", "consent", "list"]).contains("Nobody's"));
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    assert!(
        !html.contains("Group two"),
        "another group's document is not shown"
    );
    let csrf = csrf_of(&html);
    let (version, hash, seen) = form_of(&html, 2);
    let before = history_csv(&s, "alice");
    let refused = |fields: Vec<(&'static str, String)>| {
        let s = &s;
        let alice = &alice;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_consent(s, alice, &fields).await
        }
    };
    let base = |doc: &str, version: &str, hash: &str, part: Option<&str>| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("document", doc.to_string()),
            ("version", version.to_string()),
            ("hash", hash.to_string()),
            ("seen", seen.clone()),
            ("action", "give".to_string()),
        ];
        if let Some(p) = part {
            f.push(("part", p.to_string()));
        }
        f
    };
    for (fields, status, message) in [
        (
            base("999", &version, &hash, None),
            422,
            "There is no such consent for you.",
        ),
        (
            base("abc", &version, &hash, None),
            422,
            "There is no such consent for you.",
        ),
        (
            base("3", "1", &hash, None),
            422,
            "There is no such consent for you.",
        ),
        (
            base("2", "7", &hash, None),
            409,
            "has changed since the page was shown",
        ),
        (
            base("2", &version, &"0".repeat(64), None),
            409,
            "has changed since the page was shown",
        ),
        (base("2", &version, &hash, Some("3")), 422, "does not offer"),
        (base("2", &version, &hash, Some("x")), 422, "does not offer"),
    ] {
        let (got, _, body) = refused(fields.clone()).await;
        assert_eq!(got, status, "{fields:?}");
        assert!(body.contains(message), "{fields:?}: {body}");
        assert!(body.contains("Nothing was recorded."), "{body}");
    }
    // A missing or wrong form token: refused with the message, 403.
    let mut wrong = base("2", &version, &hash, None);
    wrong[0].1 = "0".repeat(64);
    let (got, _, body) = refused(wrong).await;
    assert_eq!(got, 403);
    assert!(body.contains("The form has expired"), "{body}");
    // In Czech for a Czech page.
    let r = alice
        .post(s.url("/gdpr/consent?lang=cs"))
        .form(&base("999", &version, &hash, None))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("Takový souhlas pro vás neexistuje."),
        "{body}"
    );

    // The page was shown; then the operator publishes a new text: the old form is stale.
    let v2 = text_file(
        &dir,
        "news2.md",
        "New text.\n\n[optional] By e-mail\n[optional] By SMS",
    );
    let v2cs = text_file(
        &dir,
        "news2.cs.md",
        "Nový text.\n\n[optional] E-mailem\n[optional] SMS",
    );
    s.cli_ok(&[
        "gdpr",
        "consent",
        "update",
        "2",
        "--text-file",
        &v2,
        "--text-file-cs",
        &v2cs,
    ]);
    let (got, _, body) = refused(base("2", &version, &hash, Some("1"))).await;
    assert_eq!(got, 409);
    assert!(
        body.contains("has changed since the page was shown"),
        "{body}"
    );
    // A retired document cannot be given.
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    let (version, hash, _) = form_of(&html, 2);
    s.cli_ok(&["gdpr", "consent", "retire", "2"]);
    let (got, _, body) = refused(base("2", &version, &hash, None)).await;
    assert_eq!(got, 409);
    assert!(body.contains("no longer in use"), "{body}");
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    assert!(
        !html.contains("id=\"consent-2\""),
        "a retired document is not shown"
    );

    assert_eq!(history_csv(&s, "alice"), before, "nothing was recorded");
    // Another client's history is not reachable: every page is the logged-in client's.
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&bob, "/gdpr/").await;
    assert!(
        html.contains("No changes yet."),
        "bob sees none of alice's history"
    );
}

#[tokio::test]
async fn a_double_submission_records_one_change() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&bob, "/gdpr/").await;
    let csrf = csrf_of(&html);
    let (version, hash, seen) = form_of(&html, 2);
    let fields = vec![
        ("csrf", csrf),
        ("document", "2".to_string()),
        ("version", version),
        ("hash", hash),
        ("seen", seen),
        ("action", "give".to_string()),
        ("part", "2".to_string()),
    ];
    let posts: Vec<_> = (0..20)
        .map(|_| {
            let c = bob.clone();
            let url = s.url("/gdpr/consent");
            let fields = fields.clone();
            tokio::spawn(async move {
                let r = c.post(url).form(&fields).send().await.expect("post");
                let status = r.status().as_u16();
                let location = r
                    .headers()
                    .get("location")
                    .map(|l| l.to_str().expect("location").to_string());
                (status, location)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for p in posts {
        outcomes.push(p.await.expect("task"));
    }
    let given = outcomes
        .iter()
        .filter(|(_, l)| l.as_deref() == Some("/gdpr/?saved=give"))
        .count();
    let unchanged = outcomes
        .iter()
        .filter(|(_, l)| l.as_deref() == Some("/gdpr/?saved=unchanged"))
        .count();
    assert_eq!((given, unchanged), (1, 19), "{outcomes:?}");
    assert_eq!(history_csv(&s, "bob").len(), 1);
}

#[tokio::test]
async fn an_acknowledged_change_survives_a_crash() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    let (status, location, _) = act(&s, &bob, 2, "give", &["1"], false).await;
    assert_eq!((status, location.as_str()), (303, "/gdpr/?saved=give"));
    // SIGKILL right after the answer: no shutdown, no flush but the one before the answer.
    let data = s.stop();
    let s = Server::serve(data, common::Options::default());
    let csv = history_csv(&s, "bob");
    assert_eq!(csv.len(), 1, "{csv:?}");
}

/// Every string value in a JSON document.
fn strings(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_export_holds_the_clients_data_and_nothing_of_anyone_else() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    act(&s, &bob, 2, "give", &["2"], false).await;
    let alice = s.login("alice", "alice-demo-pass").await;
    act(&s, &alice, 2, "give", &["1"], false).await;

    let export = |c: reqwest::Client| {
        let url = s.url("/gdpr/export.json");
        async move {
            let r = c.get(url).send().await.expect("export");
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()
                    .get("cache-control")
                    .map(|v| v.to_str().expect("h")),
                Some("no-store")
            );
            assert!(
                r.headers()["content-disposition"]
                    .to_str()
                    .expect("h")
                    .starts_with("attachment")
            );
            let text = r.text().await.expect("body");
            let json: serde_json::Value = serde_json::from_str(&text).expect("json");
            (text, json)
        }
    };
    let (alice_text, alice_json) = export(alice.clone()).await;
    let (_, bob_json) = export(bob.clone()).await;
    let sections = &alice_json["sections"];
    assert_eq!(sections["personal_data"]["name"], "Alice Nováková");
    assert_eq!(sections["personal_data"]["email"], "alice@example.com");
    for name in [
        "services",
        "invoices",
        "payments",
        "messages",
        "documents",
        "account_events",
    ] {
        assert!(
            sections[name].as_array().is_some_and(|a| !a.is_empty()),
            "{name}: {}",
            sections[name]
        );
    }
    let history = sections["consent_history"].as_array().expect("history");
    assert_eq!(
        history.len(),
        2,
        "the demo's consent and the one given here"
    );
    assert_eq!(sections["consents"].as_array().expect("consents").len(), 2);
    // Documents: what they are, not where their files lie; no change of data was asked for.
    let document = &sections["documents"][0];
    assert!(
        document["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{document}"
    );
    assert!(
        document.get("file").is_none() && document.get("copy").is_none(),
        "{document}"
    );
    assert!(sections.get("data_change").is_none());

    // Every value of bob's own data (not shared with alice: tariffs, currencies, dates…) is
    // absent from alice's export.
    let mut bob_values = BTreeSet::new();
    for name in [
        "personal_data",
        "services",
        "invoices",
        "payments",
        "consent_history",
    ] {
        strings(&bob_json["sections"][name], &mut bob_values);
    }
    let mut alice_own = BTreeSet::new();
    for name in [
        "personal_data",
        "services",
        "invoices",
        "payments",
        "consent_history",
        "consents",
    ] {
        strings(&sections[name], &mut alice_own);
    }
    let unique: Vec<&String> = bob_values
        .iter()
        .filter(|v| !alice_own.contains(*v) && v.len() > 2)
        .collect();
    assert!(unique.len() >= 10, "bob has unique values: {unique:?}");
    for v in &unique {
        assert!(
            !alice_text.contains(v.as_str()),
            "bob's {v:?} is in alice's export"
        );
    }
    for id in ["\"client_id\": 2,", "\"id\": 2,\n    \"invoice_group_id\""] {
        assert!(!alice_text.contains(id), "{id}");
    }
    // No secrets: no session cookie, no form token, no password hash.
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    let csrf = csrf_of(&html);
    assert!(!alice_text.contains(&csrf), "the form token");
    for secret in ["$argon2", "password", "token", "csrf", "hash\""] {
        assert!(!alice_text.to_lowercase().contains(secret), "{secret}");
    }

    // The readable page shows the same data.
    let (status, html) = s.get_text(&alice, "/gdpr/export").await;
    assert_eq!(status, 200);
    for text in [
        "Personal data",
        "Alice Nováková",
        "alice@example.com",
        "History of consents",
        "Events of your account",
        "Documents",
    ] {
        assert!(html.contains(text), "{text}");
    }
    // (The page's footer shows the ISP's own address; the client's data is in `main`.)
    let main = &html[html.find("<main").expect("main")..html.find("</main>").expect("main")];
    for v in &unique {
        assert!(!main.contains(v.as_str()), "bob's {v:?} is on alice's page");
    }
}

#[tokio::test]
async fn an_erasure_request_is_a_task_and_a_mail() {
    let s = Server::demo();
    s.cli_ok(&["settings", "set", "gdpr_contact_email", "dpo@example.net"]);
    assert_eq!(s.cli_ok(&["tasks", "list"]), "no open tasks\n");
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    let csrf = csrf_of(&html);
    // Ten at once (a double click, a retrying browser): the open-request check and the
    // filing are one transaction, so exactly one request is filed.
    let posts: Vec<_> = (0..10)
        .map(|_| {
            let (alice, url, csrf) = (alice.clone(), s.url("/gdpr/erasure"), csrf.clone());
            tokio::spawn(async move {
                alice
                    .post(url)
                    .form(&[("csrf", csrf.as_str()), ("note", "Please erase my data.")])
                    .send()
                    .await
                    .expect("post")
                    .status()
            })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.expect("task"), 303);
    }
    let tasks = s.cli_ok(&["tasks", "list"]);
    assert_eq!(tasks.lines().count(), 1, "one request: {tasks}");
    assert!(
        tasks.contains(
            "erasure request from client 1001 (Alice Nováková), open: Please erase my data."
        ),
        "{tasks}"
    );
    let (_, html) = s.get_text(&alice, "/gdpr/").await;
    assert!(html.contains("Your erasure request of"), "{html}");
    let queue = s.cli_ok(&["mail", "queue"]);
    assert!(
        queue.contains("GDPR erasure request from client 1001")
            && queue.contains("dpo@example.net"),
        "{queue}"
    );
    let done = s.cli_ok(&["tasks", "done", "1"]);
    assert!(done.contains("done"), "{done}");
    assert_eq!(s.cli_ok(&["tasks", "list"]), "no open tasks\n");
}

#[tokio::test]
async fn operator_commands_cannot_alter_evidence() {
    let s = Server::demo();
    let bob = s.login("bob", "bob-demo-pass").await;
    act(&s, &bob, 2, "give", &["1"], false).await;
    let before = (history_csv(&s, "alice"), history_csv(&s, "bob"));
    assert_eq!((before.0.len(), before.1.len()), (1, 1));
    let dir = tempfile::tempdir().expect("tmp");
    let text = text_file(&dir, "t.md", "Changed text.");
    let import = common::repo_root()
        .join("docs/import-example.json")
        .to_str()
        .expect("utf-8")
        .to_string();
    // Every command the plugin has, and attempts at ones it does not have.
    for args in [
        vec!["gdpr", "consent", "list"],
        vec![
            "gdpr",
            "consent",
            "update",
            "1",
            "--text-file",
            &text,
            "--text-file-cs",
            &text,
        ],
        vec!["gdpr", "consent", "update", "2", "--text-file", &text],
        vec!["gdpr", "consent", "retire", "1"],
        vec![
            "gdpr",
            "consent",
            "add",
            "--title",
            "X",
            "--text-file",
            &text,
            "--required",
        ],
        vec!["gdpr", "history", "--client", "alice"],
        vec!["tasks", "list", "--all"],
        // Core's commands reach no plugin's store; an import included.
        vec!["import", &import],
        vec!["settings", "set", "gdpr_contact_email", "dpo@example.net"],
        vec!["audit", "--client", "alice"],
    ] {
        let (_, out, err) = s.cli(&args);
        assert!(!err.contains("panicked"), "{args:?}: {err}{out}");
    }
    for args in [
        vec!["gdpr", "history", "delete", "--client", "alice"],
        vec!["gdpr", "history", "--client", "alice", "--clear"],
        vec!["gdpr", "record", "delete", "1"],
        vec!["gdpr", "consent", "delete", "1"],
        vec!["gdpr", "evidence", "edit", "1"],
    ] {
        let (ok, _, err) = s.cli(&args);
        assert!(!ok, "{args:?} is refused");
        assert!(
            err.contains("usage") || err.contains("unknown option"),
            "{args:?}: {err}"
        );
    }
    // An operator may add a record (a withdrawal the client sent by letter), never change one.
    let out = s.cli_ok(&["gdpr", "withdraw", "2", "--client", "bob"]);
    assert!(
        out.starts_with("2 ") && out.contains(" withdraw #2 v1 ") && out.contains(" by operator "),
        "{out}"
    );
    let mut after_bob = before.1.clone();
    after_bob.push(history_csv(&s, "bob")[1].clone());
    assert!(
        after_bob[1].contains(",withdraw,,operator,,"),
        "{}",
        after_bob[1]
    );
    let out = s.cli_ok(&["gdpr", "withdraw", "2", "--client", "bob"]);
    assert!(out.contains("nothing recorded"), "{out}");
    let before = (before.0, after_bob);
    // The documents changed; the records of what was shown then did not.
    assert_eq!((history_csv(&s, "alice"), history_csv(&s, "bob")), before);
    // A text file named relative to where the command runs, while the portal runs elsewhere.
    let name = format!("gdpr-text-{}.md", std::process::id());
    let relative = std::env::temp_dir().join(&name);
    std::fs::write(&relative, "Relative text.").expect("write");
    let (ok, out, err) = common::portico(
        &[
            "gdpr",
            "consent",
            "add",
            "--title",
            "Relative",
            "--text-file",
            &name,
            "--title-cs",
            "Relativní",
            "--text-file-cs",
            &name,
            "--data",
            s.data_dir().to_str().expect("utf-8"),
        ],
        None,
    );
    let _ = std::fs::remove_file(&relative);
    assert!(ok, "{err}{out}");
    assert!(out.contains("\"Relative\" version 1"), "{out}");
    let list = s.cli_ok(&["gdpr", "consent", "list"]);
    assert!(
        list.contains("#1 ") && list.contains("version 2") && list.contains("retired"),
        "{list}"
    );
}

#[tokio::test]
async fn the_hooks_are_listed() {
    let s = Server::demo();
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains("after_consent_change (declared by gdpr"),
        "{hooks}"
    );
    assert!(hooks.contains("gdpr_export (declared by gdpr"), "{hooks}");
    let plugins = s.cli_ok(&["plugins", "list"]);
    assert!(
        plugins.contains("gdpr 0.1.0 (GDPR): compiled-in, loaded"),
        "{plugins}"
    );
}
