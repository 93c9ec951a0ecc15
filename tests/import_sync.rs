//! `portico import --sync`, explicit deletions and `--dry-run`, over the CLI against a running
//! demo portal (through its control socket) and the real store: a deleted client loses their
//! records, session, password link and plugin data; a dry run and a refused bundle change
//! nothing.

mod common;

use common::{Options, Server, Smtp, link_in};
use portico_core::internal::demo;
use portico_core::internal::model::{Client, Invoice, Message, Payment, Service};
use portico_core::internal::store::{Store, id_key};

/// The demo's clients as the billing system would export them, without the one with `drop_id`.
fn demo_clients_without(drop_id: u64) -> (String, usize) {
    let b = demo::bundle(chrono::Utc::now().date_naive());
    let kept: Vec<&Client> = b.clients.iter().filter(|c| c.id != drop_id).collect();
    (
        serde_json::json!({ "clients": kept }).to_string(),
        kept.len(),
    )
}

/// How many records of the demo bundle belong to client `id`: services, private messages,
/// invoices, payments.
fn demo_dependants(id: u64) -> [usize; 4] {
    let b = demo::bundle(chrono::Utc::now().date_naive());
    [
        b.services.iter().filter(|r| r.client_id == id).count(),
        b.messages
            .iter()
            .filter(|r| r.client_id == Some(id))
            .count(),
        b.invoices.iter().filter(|r| r.client_id == id).count(),
        b.payments.iter().filter(|r| r.client_id == id).count(),
    ]
}

fn write(s: &Server, name: &str, json: &str) -> String {
    let file = s.data_dir().with_file_name(name);
    std::fs::write(&file, json).expect("write bundle");
    file.to_str().expect("path").to_string()
}

/// The report's row for a collection, as numbers: created, updated, unchanged, deleted.
fn row(out: &str, collection: &str) -> Vec<usize> {
    out.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(collection))
                .then(|| words.map(|w| w.parse().expect("a count")).collect())
        })
        .unwrap_or_else(|| panic!("no row {collection} in\n{out}"))
}

async fn status_of(s: &Server, c: &reqwest::Client, path: &str) -> (u16, Option<String>) {
    let r = c.get(s.url(path)).send().await.expect("get");
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_string());
    (r.status().as_u16(), location)
}

#[tokio::test]
async fn sync_deletes_a_client_left_out_with_everything_that_hangs_on_them_and_a_dry_run_changes_nothing()
 {
    let smtp = Smtp::start();
    let s = Server::demo_with(Options {
        smtp_url: Some(smtp.url()),
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    // Alice (id 1) is logged in, has a password link waiting in her mailbox and a consent
    // recorded by the GDPR plugin (the demo gives her one).
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let stranger = s.client();
    let r = stranger
        .post(s.url("/sign/forgot/"))
        .form(&[("login", "alice@example.com")])
        .send()
        .await
        .expect("forgot");
    assert_eq!(r.status(), 200);
    let link = link_in(&smtp.wait_for(1).await[0])
        .trim_start_matches(&s.base)
        .to_string();
    assert_eq!(s.get_text(&stranger, &link).await.0, 200);
    assert!(
        s.cli_ok(&["gdpr", "history", "--client", "alice"])
            .contains("Processing of personal data")
    );

    let (json, kept) = demo_clients_without(1);
    let file = write(&s, "clients.json", &json);
    let [services, messages, invoices, payments] = demo_dependants(1);
    assert!(services > 0 && messages > 0 && invoices > 0 && payments > 0);
    let deleted = 1 + services + messages + invoices + payments;

    // The dry run reports what the import would do, and changes nothing.
    let dry = s.cli_ok(&["import", "--sync", "--dry-run", &file]);
    assert!(
        dry.starts_with(&format!(
            "dry run, nothing was changed: the bundle holds {kept} records; importing it would give 0 created, 0 updated, {kept} unchanged, {deleted} deleted\n"
        )),
        "{dry}"
    );
    assert_eq!(row(&dry, "clients"), [0, 0, kept, 1]);
    assert_eq!(row(&dry, "services"), [0, 0, 0, services]);
    assert_eq!(row(&dry, "messages"), [0, 0, 0, messages]);
    assert_eq!(row(&dry, "invoices"), [0, 0, 0, invoices]);
    assert_eq!(row(&dry, "payments"), [0, 0, 0, payments]);
    assert_eq!(row(&dry, "invoice_groups"), [0, 0, 0, 0]);
    assert_eq!(s.get_text(&alice, "/invoicing/").await.0, 200);
    assert_eq!(s.get_text(&stranger, &link).await.0, 200);
    assert!(s.cli_ok(&["client", "show", "alice"]).contains("1001"));
    assert!(!s.cli_ok(&["audit", "--kind", "import"]).contains("Import"));

    // A bundle that deletes what does not exist, or names a collection that is not one, is
    // refused as a whole.
    let bad = write(
        &s,
        "bad.json",
        r#"{"delete": {"invoices": [999999], "bills": [1], "clients": [1]}}"#,
    );
    let (ok, out, err) = s.cli(&["import", &bad]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("the bundle was rejected and nothing was changed; 2 problem(s):")
            && err.contains("delete.bills: not a collection; use one of invoice_groups, tariffs, clients, services, messages, invoices, payments")
            && err.contains("delete.invoices[0]: no invoice with id 999999 is stored"),
        "{err}"
    );
    assert_eq!(s.get_text(&alice, "/invoicing/").await.0, 200);

    let out = s.cli_ok(&["import", "--sync", &file]);
    assert!(
        out.starts_with(&format!("imported {kept} records in ")),
        "{out}"
    );
    assert!(
        out.lines().next().expect("line").ends_with(&format!(
            "0 created, 0 updated, {kept} unchanged, {deleted} deleted"
        )),
        "{out}"
    );
    assert_eq!(row(&out, "clients"), [0, 0, kept, 1]);
    assert_eq!(row(&out, "total"), [0, 0, kept, deleted]);

    // Her session ended, her pages and her link are gone; Bob is untouched.
    assert_eq!(
        status_of(&s, &alice, "/invoicing/").await,
        (303, Some("/sign/".to_string()))
    );
    assert_eq!(
        status_of(&s, &alice, "/").await,
        (303, Some("/sign/".to_string()))
    );
    assert_eq!(s.get_text(&stranger, &link).await.0, 410);
    let r = s
        .client()
        .post(s.url("/sign/"))
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 401);
    assert_eq!(s.get_text(&bob, "/invoicing/").await.0, 200);
    let (ok, _, err) = s.cli(&["client", "show", "1001"]);
    assert!(!ok);
    assert!(
        err.contains("no client with number or login name `1001`"),
        "{err}"
    );
    let audit = s.cli_ok(&["audit", "--kind", "import"]);
    assert!(
        audit.contains(&format!(
            "import --sync: imported {kept} records: 0 created, 0 updated, {kept} unchanged, {deleted} deleted"
        )),
        "{audit}"
    );

    // Without --sync the same bundle deletes nothing more; explicit deletions take a record
    // (and a deleted client's dependants) by id.
    let out = s.cli_ok(&["import", &file]);
    assert_eq!(row(&out, "total"), [0, 0, kept, 0]);
    let bob_invoice = demo::bundle(chrono::Utc::now().date_naive())
        .invoices
        .iter()
        .find(|i| i.client_id == 2)
        .expect("bob has invoices")
        .id;
    let explicit = write(
        &s,
        "delete.json",
        &format!(r#"{{"delete": {{"invoices": [{bob_invoice}]}}}}"#),
    );
    let out = s.cli_ok(&["import", &explicit]);
    assert_eq!(row(&out, "invoices"), [0, 0, 0, 1]);
    let (ok, _, err) = s.cli(&["import", &explicit]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "delete.invoices[0]: no invoice with id {bob_invoice} is stored"
        )),
        "{err}"
    );

    // In the store: nothing of Alice's is left, not even in the GDPR plugin's trees.
    let data = s.stop();
    let store = Store::open(&data.path().join("portal")).expect("open");
    assert!(store.get_id::<Client>(1).expect("get").is_none());
    assert!(store.services_of(1).expect("q").is_empty());
    assert!(store.invoices_of(1).expect("q").is_empty());
    assert!(store.payments_of(1).expect("q").is_empty());
    assert!(
        store
            .all::<Message>()
            .expect("all")
            .iter()
            .all(|m| m.client_id != Some(1))
    );
    assert!(
        store
            .all::<Service>()
            .expect("all")
            .iter()
            .all(|r| r.client_id != 1)
    );
    assert!(
        store
            .all::<Invoice>()
            .expect("all")
            .iter()
            .all(|r| r.client_id != 1 && r.id != bob_invoice)
    );
    assert!(
        store
            .all::<Payment>()
            .expect("all")
            .iter()
            .all(|r| r.client_id != 1)
    );
    assert!(
        store
            .get_raw("credentials", &id_key(1))
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get_raw("credentials", &id_key(2))
            .expect("get")
            .is_some()
    );
    for tree in ["clientid_sessions", "clientid_passwordtokens"] {
        let prefix = [id_key(1), vec![0xff]].concat();
        assert!(
            store.scan_raw(tree, &prefix).expect("scan").is_empty(),
            "{tree}"
        );
    }
    for tree in ["gdpr:evidence", "gdpr:latest"] {
        assert!(
            store.scan_raw(tree, &id_key(1)).expect("scan").is_empty(),
            "{tree}"
        );
    }
    assert!(
        store
            .get_raw("gdpr:last_record", &id_key(1))
            .expect("get")
            .is_none()
    );
}
