//! Clients change their contact data on the Information tab (`ci_enable_client_data_change`):
//! checked field by field in both languages, refused or amended by the
//! `before_client_data_change` hook (the shipped example script, through the real form),
//! audited with old and new values, and with `ci_client_data_change_approval` kept pending
//! until an operator approves or rejects it with `portico changes`.

mod common;

use common::{Server, csrf_of};

const FIELDS: [&str; 11] = [
    "mailing_street",
    "mailing_city",
    "mailing_zip",
    "mailing_country",
    "invoicing_street",
    "invoicing_city",
    "invoicing_zip",
    "invoicing_country",
    "email",
    "phone",
    "mobile",
];

/// The form as the portal shows it now (its token and values), changed by `edits`; an
/// `invoicing_same` edit of "" unticks the box.
async fn form_with(
    s: &Server,
    c: &reqwest::Client,
    edits: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (status, html) = s.get_text(c, "/profile/data/").await;
    assert_eq!(status, 200, "{html}");
    let mut fields = vec![("csrf".to_string(), csrf_of(&html))];
    for f in FIELDS {
        fields.push((f.to_string(), field_value(&html, f)));
    }
    if html.contains("name=\"invoicing_same\" checked") {
        fields.push(("invoicing_same".into(), "on".into()));
    }
    for (k, v) in edits {
        fields.retain(|(f, _)| f != k);
        if *k != "invoicing_same" || !v.is_empty() {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    fields
}

async fn post(
    s: &Server,
    c: &reqwest::Client,
    path: &str,
    form: &[(String, String)],
) -> (u16, String) {
    let r = c.post(s.url(path)).form(form).send().await.expect("post");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// The value a form field shows.
fn field_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("field {name} in {html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("value") + 7;
    rest[v..].split('"').next().unwrap_or_default().to_string()
}

fn audit_of(s: &Server, kind: &str) -> Vec<String> {
    s.cli_ok(&["audit", "--client", "alice", "--kind", kind])
        .lines()
        .filter(|l| l.contains(" UTC  "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_setting_shows_the_form_and_a_valid_change_is_saved_once_and_audited() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(html.contains("href=\"/profile/data/\""), "{html}");
    let (status, html) = s.get_text(&alice, "/profile/data/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Change of contact data</h1>"), "{html}");
    let street = field_value(&html, "mailing_street");
    assert!(!street.is_empty() && html.contains("name=\"invoicing_same\" checked"));
    assert_eq!(field_value(&html, "email"), "alice@example.com");
    let before_off = form_with(&s, &alice, &[("email", "new@example.org")]).await;
    let old_phone = field_value(&html, "phone");
    let (_, cs) = s.get_text(&alice, "/profile/data/?lang=cs").await;
    assert!(cs.contains("<h1>Změna kontaktních údajů</h1>"), "{cs}");

    // Off for alice's group, through the setting's misspelt alias: no button, no page, no post.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_enable_cllient_data_change",
        "off",
        "--group",
        "1",
    ]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!html.contains("/profile/data/"), "{html}");
    let (status, _) = s.get_text(&alice, "/profile/data/").await;
    assert_eq!(status, 404);
    let (status, _) = post(&s, &alice, "/profile/data/", &before_off).await;
    assert_eq!(status, 404);
    s.cli_ok(&[
        "settings",
        "unset",
        "ci_enable_client_data_change",
        "--group",
        "1",
    ]);

    // Without the form token: refused, nothing stored.
    let mut no_token = form_with(&s, &alice, &[("email", "new@example.org")]).await;
    no_token.retain(|(k, _)| k != "csrf");
    let (status, _) = post(&s, &alice, "/profile/data/", &no_token).await;
    assert_eq!(status, 403);

    // A valid change: saved, shown, audited with the old and the new values.
    let form = form_with(
        &s,
        &alice,
        &[
            ("email", " alice.new@example.org "),
            ("phone", "+420 530 111 222"),
            ("invoicing_same", ""),
            ("invoicing_street", "Kounicova 5"),
            ("invoicing_city", "Brno"),
            ("invoicing_zip", "602 00"),
        ],
    )
    .await;
    let (status, html) = post(&s, &alice, "/profile/data/", &form).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Your contact data was saved."), "{html}");
    assert!(html.contains("<dd>alice.new@example.org</dd>"), "{html}");
    assert!(html.contains("<dd>+420 530 111 222</dd>"), "{html}");
    assert!(html.contains("Kounicova 5"), "{html}");
    let events = audit_of(&s, "ClientDataChanged");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("source=127.0.0.1")
            && events[0].contains(
                &format!("invoicing_address: (none) → \"Kounicova 5, 602 00, Brno\"; email: \"alice@example.com\" → \"alice.new@example.org\"; phone: \"{old_phone}\" → \"+420 530 111 222\"")
            ),
        "{events:?}"
    );
    // The forgotten-password lookup follows the new address.
    let shown = s.cli_ok(&["client", "show", "alice"]);
    assert!(shown.contains("alice.new@example.org"), "{shown}");

    // The same form again (a double submit): nothing changes, nothing is audited twice.
    let (status, html) = post(&s, &alice, "/profile/data/", &form).await;
    assert_eq!(status, 200);
    assert!(html.contains("nothing was changed"), "{html}");
    assert_eq!(audit_of(&s, "ClientDataChanged").len(), 1);

    // Removing the phone and going back to one address.
    let back = form_with(&s, &alice, &[("phone", ""), ("invoicing_same", "on")]).await;
    let (status, html) = post(&s, &alice, "/profile/data/", &back).await;
    assert_eq!(status, 200);
    assert!(!html.contains("+420 530 111 222"), "{html}");
    assert!(!html.contains("Kounicova"), "{html}");
}

#[tokio::test]
async fn bad_values_get_a_message_per_field_in_both_languages_and_nothing_is_stored() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let long_city = "B".repeat(61);
    let bad = form_with(
        &s,
        &alice,
        &[
            ("mailing_street", "  "),
            ("mailing_city", &long_city),
            ("mailing_zip", "602<00>"),
            ("email", "alice at example"),
            ("phone", "call me maybe"),
            ("mobile", "777\n123 456"),
            ("invoicing_same", ""),
            ("invoicing_street", "Kounicova 5"),
            ("invoicing_city", "Brno\u{7}"),
            ("invoicing_zip", ""),
        ],
    )
    .await;
    let en_messages = [
        ("mailing_street", "Fill this in."),
        ("mailing_city", "At most 60 characters."),
        (
            "mailing_zip",
            "A postcode has only letters, digits, spaces and dashes.",
        ),
        ("invoicing_city", "Use one line without special characters"),
        ("invoicing_zip", "Fill this in."),
        ("email", "This is not an e-mail address"),
        ("phone", "Enter a phone number: 6 to 15 digits"),
        ("mobile", "Use one line without special characters"),
    ];
    let (status, html) = post(&s, &alice, "/profile/data/", &bad).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("Please correct the fields marked below."));
    for (field, message) in en_messages {
        let at = html
            .find(&format!("id=\"{field}-error\">"))
            .unwrap_or_else(|| panic!("no message for {field}: {html}"));
        assert!(
            html[at..]
                .split("</p>")
                .next()
                .unwrap_or_default()
                .contains(message),
            "{field}: {}",
            &html[at..at + 200]
        );
        assert!(html.contains(&format!("aria-describedby=\"{field}-error\"")));
    }
    assert!(!html.contains("id=\"mailing_country-error\""));
    // What was typed is shown again, escaped.
    assert!(html.contains("value=\"602&lt;00&gt;\""), "{html}");
    let (status, html) = post(&s, &alice, "/profile/data/?lang=cs", &bad).await;
    assert_eq!(status, 422);
    for (field, message) in [
        ("mailing_street", "Vyplňte prosím."),
        ("mailing_city", "Nejvýše 60 znaků."),
        ("mailing_zip", "PSČ obsahuje jen písmena"),
        ("email", "Toto není e-mailová adresa"),
        ("phone", "Zadejte telefonní číslo"),
        ("mobile", "Použijte jeden řádek"),
    ] {
        let at = html
            .find(&format!("id=\"{field}-error\">"))
            .unwrap_or_else(|| panic!("no message for {field}"));
        assert!(
            html[at..]
                .split("</p>")
                .next()
                .unwrap_or_default()
                .contains(message),
            "{field}"
        );
    }
    // Too long for every field: the limit is named.
    let (status, html) = post(
        &s,
        &alice,
        "/profile/data/",
        &form_with(
            &s,
            &alice,
            &[
                ("email", &format!("{}@example.org", "a".repeat(250))),
                ("phone", &"1".repeat(21)),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("At most 254 characters."), "{html}");
    assert!(html.contains("At most 20 characters."), "{html}");

    // Nothing was stored and nothing audited.
    let (_, info) = s.get_text(&alice, "/").await;
    assert!(info.contains("<dd>alice@example.com</dd>"), "{info}");
    let street = bad
        .iter()
        .find(|(k, _)| k == "invoicing_street")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(!info.contains(&street), "{info}");
    assert!(audit_of(&s, "ClientDataChanged").is_empty());
}

#[tokio::test]
async fn the_example_script_refuses_and_amends_changes_made_in_the_form() {
    let scripts = tempfile::tempdir().expect("scripts");
    std::fs::copy(
        common::repo_root().join("scripts/examples/client-data-rule.rhai"),
        scripts.path().join("client-data-rule.rhai"),
    )
    .expect("copy example");
    let s = Server::demo_with(common::Options {
        scripts: Some(scripts.path().to_path_buf()),
        ..Default::default()
    });
    let hooks = s.cli_ok(&["hooks"]);
    assert!(
        hooks.contains("before_client_data_change") && hooks.contains("client-data-rule.rhai"),
        "{hooks}"
    );
    let alice = s.login("alice", "alice-demo-pass").await;

    // Veto: an address at the ISP's own domain, in the client's language; nothing stored.
    let isp = form_with(&s, &alice, &[("email", "Alice@Example.net")]).await;
    let (status, html) = post(&s, &alice, "/profile/data/", &isp).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("Please give an e-mail address outside example.net"),
        "{html}"
    );
    assert_eq!(field_value(&html, "email"), "Alice@Example.net");
    let (status, html) = post(&s, &alice, "/profile/data/?lang=cs", &isp).await;
    assert_eq!(status, 422);
    assert!(html.contains("Zadejte prosím e-mail mimo doménu example.net"));
    assert!(audit_of(&s, "ClientDataChanged").is_empty());

    // Amend: phone numbers are stored in one form.
    let (status, html) = post(
        &s,
        &alice,
        "/profile/data/",
        &form_with(
            &s,
            &alice,
            &[("phone", "777 123 456"), ("mobile", "00420 608-111-222")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<dd>+420777123456</dd>"), "{html}");
    assert!(html.contains("<dd>+420608111222</dd>"), "{html}");
    let events = audit_of(&s, "ClientDataChanged");
    assert_eq!(events.len(), 1);
    assert!(
        events[0].contains("→ \"+420777123456\"; mobile: \"")
            && events[0].ends_with("→ \"+420608111222\""),
        "{events:?}"
    );
}

/// `(id, line)` of the changes `portico changes list` prints.
fn pending(s: &Server) -> Vec<(u64, String)> {
    s.cli_ok(&["changes", "list"])
        .lines()
        .filter_map(|l| Some((l.split_whitespace().next()?.parse().ok()?, l.to_string())))
        .collect()
}

#[tokio::test]
async fn with_approval_a_change_waits_and_the_operator_decides_once() {
    let s = Server::demo();
    s.cli_ok(&["settings", "set", "ci_client_data_change_approval", "on"]);
    assert_eq!(
        s.cli_ok(&["changes", "list"]).trim(),
        "no changes wait for approval"
    );
    let alice = s.login("alice", "alice-demo-pass").await;
    let first = form_with(&s, &alice, &[("email", "first@example.org")]).await;
    let (status, html) = post(&s, &alice, "/profile/data/", &first).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Your change was sent for approval."),
        "{html}"
    );
    assert!(html.contains("is waiting for approval"), "{html}");
    assert!(
        html.contains("<dd>first@example.org</dd>"),
        "the value asked for"
    );
    assert!(
        html.contains("<dd>alice@example.com</dd>"),
        "still the stored one"
    );
    // A double submit keeps the one pending change.
    post(&s, &alice, "/profile/data/", &first).await;
    let list = pending(&s);
    assert_eq!(list.len(), 1, "{list:?}");
    let (id, line) = &list[0];
    assert!(line.contains("client 1001 (Alice Nováková)"), "{line}");
    let listed = s.cli_ok(&["changes", "list"]);
    assert!(
        listed.contains("email: \"alice@example.com\" → \"first@example.org\""),
        "{listed}"
    );
    // The form shows what was asked for.
    let (_, form) = s.get_text(&alice, "/profile/data/").await;
    assert_eq!(field_value(&form, "email"), "first@example.org");
    assert!(form.contains("id=\"dc-pending\""));
    // Her data export holds the change she asked for, as it stands.
    let (status, text) = s.get_text(&alice, "/gdpr/export.json").await;
    assert_eq!(status, 200);
    let export: serde_json::Value = serde_json::from_str(&text).expect("json");
    let change = &export["sections"]["data_change"];
    assert_eq!(change["status"], "pending", "{change}");
    assert_eq!(change["id"], *id, "{change}");
    assert_eq!(change["changes"]["email"], "first@example.org", "{change}");

    // Rejected with a reason: the client sees both; the data stays.
    let out = s.cli_ok(&[
        "changes",
        "reject",
        &id.to_string(),
        "--reason",
        "Please call us to confirm.",
    ]);
    assert!(out.contains("rejected"), "{out}");
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(html.contains("was rejected on"), "{html}");
    assert!(
        html.contains("Reason: Please call us to confirm."),
        "{html}"
    );
    assert!(html.contains("<dd>alice@example.com</dd>"));
    let (_, cs) = s.get_text(&alice, "/?lang=cs").await;
    assert!(cs.contains("byla zamítnuta dne"), "{cs}");
    let (ok, _, err) = s.cli(&["changes", "approve", &id.to_string()]);
    assert!(!ok && err.contains("no such pending change"), "{err}");
    let rejected = s.cli_ok(&[
        "audit",
        "--client",
        "alice",
        "--kind",
        "ClientDataChangeRejected",
    ]);
    assert!(
        rejected.contains(&format!(
            "change {id} rejected (Please call us to confirm.)"
        )),
        "{rejected}"
    );
    let (ok, _, err) = s.cli(&["changes", "reject", "12345"]);
    assert!(!ok && err.contains("no such pending change"), "{err}");

    // A new request replaces the one pending.
    let second = form_with(&s, &alice, &[("email", "second@example.org")]).await;
    post(&s, &alice, "/profile/data/", &second).await;
    let third = form_with(&s, &alice, &[("email", "third@example.org")]).await;
    post(&s, &alice, "/profile/data/", &third).await;
    let list = pending(&s);
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0].0;
    assert!(s.cli_ok(&["changes", "list"]).contains("third@example.org"));

    // Approved by eight operators at once: applied once.
    let data = s.data_dir();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let data = data.clone();
            std::thread::spawn(move || {
                common::portico(
                    &[
                        "changes",
                        "approve",
                        &id.to_string(),
                        "--data",
                        data.to_str().expect("utf-8"),
                    ],
                    None,
                )
            })
        })
        .collect();
    let results: Vec<(bool, String, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let approved = results.iter().filter(|(ok, _, _)| *ok).count();
    assert_eq!(approved, 1, "{results:?}");
    for (ok, _, err) in &results {
        assert!(*ok || err.contains("no such pending change"), "{err}");
    }
    let events = audit_of(&s, "ClientDataChanged");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains(&format!(
            "change {id} approved: email: \"alice@example.com\" → \"third@example.org\""
        )),
        "{events:?}"
    );
    assert!(
        events[0].contains(" source=- by="),
        "the operator is named: {events:?}"
    );
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(html.contains("<dd>third@example.org</dd>"), "{html}");
    assert!(html.contains("was approved on"), "{html}");
    assert!(pending(&s).is_empty());

    // Bad operator input: a clear error.
    let (ok, _, err) = s.cli(&["changes", "reject", "1", "--reason", "two\nlines"]);
    assert!(!ok && err.contains("--reason"), "{err}");
}

#[tokio::test]
async fn a_pending_change_survives_an_import_and_goes_with_its_client() {
    let s = Server::demo();
    s.cli_ok(&["settings", "set", "ci_client_data_change_approval", "on"]);
    let bob = s.login("bob", "bob-demo-pass").await;
    let form = form_with(&s, &bob, &[("mobile", "+420 777 000 111")]).await;
    assert_eq!(post(&s, &bob, "/profile/data/", &form).await.0, 200);
    let id = pending(&s)[0].0;

    // The billing system overwrites bob's record: the change still waits and, approved, is
    // applied over what the import wrote.
    let dir = tempfile::tempdir().expect("dir");
    let bundle = dir.path().join("bob.json");
    std::fs::write(
        &bundle,
        r#"{"clients": [{"id": 2, "number": "1002", "username": "bob", "name": "Bob Dvořák",
            "invoice_group_id": 2, "email": "bob@billing.example",
            "mailing_address": {"street": "Nová 1", "city": "Brno", "zip": "602 00", "country": "CZ"}}]}"#,
    )
    .expect("bundle");
    s.cli_ok(&["import", bundle.to_str().expect("utf-8")]);
    assert_eq!(pending(&s).len(), 1);
    s.cli_ok(&["changes", "approve", &id.to_string()]);
    let shown = s.cli_ok(&["client", "show", "bob"]);
    assert!(
        shown.contains("bob@billing.example") && shown.contains("+420 777 000 111"),
        "{shown}"
    );

    // A client the import deletes takes their pending change along.
    let form = form_with(&s, &bob, &[("mobile", "+420 777 000 222")]).await;
    assert_eq!(post(&s, &bob, "/profile/data/", &form).await.0, 200);
    assert_eq!(pending(&s).len(), 1);
    std::fs::write(&bundle, r#"{"delete": {"clients": [2]}}"#).expect("bundle");
    s.cli_ok(&["import", bundle.to_str().expect("utf-8")]);
    assert!(pending(&s).is_empty());
    assert_eq!(
        s.cli_ok(&["changes", "list"]).trim(),
        "no changes wait for approval"
    );
}

#[tokio::test]
async fn a_client_changes_their_data_at_most_twenty_times_an_hour() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    for i in 0..20 {
        let form = form_with(&s, &alice, &[("phone", &format!("+420 777 000 {i:03}"))]).await;
        let (status, html) = post(&s, &alice, "/profile/data/", &form).await;
        assert_eq!(status, 200, "{i}: {html}");
    }
    let form = form_with(&s, &alice, &[("phone", "+420 777 999 999")]).await;
    let (status, html) = post(&s, &alice, "/profile/data/", &form).await;
    assert_eq!(status, 429);
    assert!(html.contains("many times in the last hour"), "{html}");
    assert_eq!(audit_of(&s, "ClientDataChanged").len(), 20);
    // A form that changes nothing is still answered.
    let same = form_with(&s, &alice, &[]).await;
    assert_eq!(post(&s, &alice, "/profile/data/", &same).await.0, 200);
}
