//! The page cache (`core/src/web/page_cache.rs`): a page viewed again may be sent as it was
//! rendered, but never after anything it shows has changed, never to another session or client,
//! and never past the end of its session.

mod common;

use common::{Server, csrf_of};

/// A page viewed twice in a row, then after each kind of change.
#[tokio::test]
async fn a_page_viewed_again_shows_every_change_made_in_between() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (status, first) = s.get_text(&alice, "/").await;
    assert_eq!(status, 200);
    assert!(first.contains("Alice Nováková"), "{first}");
    let (status, again) = s.get_text(&alice, "/").await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "the same page, nothing changed"
    );

    // Another client with the same URI gets their own page, kept or not.
    let bob = s.login("bob", "bob-demo-pass").await;
    for _ in 0..2 {
        let (status, html) = s.get_text(&bob, "/").await;
        assert_eq!(status, 200);
        assert!(html.contains("Bob Dvořák") && !html.contains("Alice Nováková"));
    }
    // A second session of the same client has its own form token in its page.
    let alice2 = s.login("alice", "alice-demo-pass").await;
    let (_, other_session) = s.get_text(&alice2, "/").await;
    let (_, alice_again) = s.get_text(&alice, "/").await;
    assert_ne!(csrf_of(&other_session), csrf_of(&alice_again));
    assert_eq!(csrf_of(&alice_again), csrf_of(&first));

    // A setting (kept in memory as well as in the store).
    s.cli_ok(&["settings", "set", "ci_portal_name", "Zebra Net Portal"]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(
        html.contains("Zebra Net Portal"),
        "a changed setting shows at once"
    );

    // An import: a new invoice on the Invoicing tab, viewed just before.
    let (status, before) = s.get_text(&alice, "/invoicing/").await;
    assert_eq!(status, 200);
    assert!(!before.contains("CACHE-77"));
    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = tmp.path().join("b.json");
    std::fs::write(
        &bundle,
        r#"{"invoices": [{"id": 990001, "client_id": 1, "number": "CACHE-77", "issued": "2026-11-30", "due": "2026-12-14", "amount": 123}]}"#,
    )
    .expect("write");
    s.cli_ok(&["import", bundle.to_str().expect("path")]);
    let (_, after) = s.get_text(&alice, "/invoicing/").await;
    assert!(
        after.contains("CACHE-77"),
        "an imported invoice shows at once"
    );

    // The language switch (stored in the client's profile).
    let (_, services) = s.get_text(&alice, "/services/").await;
    assert!(services.contains("lang=\"en\""));
    let r = alice
        .post(s.url("/lang"))
        .form(&[
            ("lang", "cs"),
            ("next", "/services/"),
            ("csrf", csrf_of(&services).as_str()),
        ])
        .send()
        .await
        .expect("switch");
    assert_eq!(r.status(), 303);
    let (_, czech) = s.get_text(&alice, "/services/").await;
    assert!(czech.contains("lang=\"cs\"") && czech.contains("Informace"));
}

/// A kept page is no way around the session: once the session is over (here by idling past
/// its limit, which writes nothing to the store), the page is not sent.
#[tokio::test]
async fn a_kept_page_is_not_sent_once_its_session_is_over() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    for _ in 0..2 {
        assert_eq!(s.get_text(&alice, "/").await.0, 200);
    }
    s.advance_clock(31 * 60);
    let r = alice.get(s.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 303, "the idle session ended");
    assert_eq!(
        r.headers()["location"].to_str().expect("ascii"),
        "/sign/",
        "to the login page"
    );
}

/// Disabling a client ends their sessions; a page kept for one is not sent after.
#[tokio::test]
async fn a_kept_page_is_not_sent_after_the_client_is_disabled() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    for _ in 0..2 {
        assert_eq!(s.get_text(&alice, "/services/").await.0, 200);
    }
    s.cli_ok(&["client", "disable", "alice"]);
    let r = alice.get(s.url("/services/")).send().await.expect("get");
    assert_eq!(r.status(), 303);
}
