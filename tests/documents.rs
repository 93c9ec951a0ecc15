//! The Documents tab (`ci_display_contracts_tab`): the client's own contracts and documents
//! from the import bundle, listed only when `display_in_cp`, downloaded as attachments from the
//! copy the import made; every other id is 404 with no hint.

mod common;

use std::path::Path;

use common::Server;

fn menu_of(html: &str) -> &str {
    let start = html.find("<nav").unwrap_or(0);
    let end = html[start..]
        .find("</nav>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// Writes a bundle file and imports it; returns what `portico import` printed (or its error).
fn import(s: &Server, dir: &Path, bundle: &serde_json::Value, extra: &[&str]) -> (bool, String) {
    let file = dir.join("bundle.json");
    std::fs::write(&file, bundle.to_string()).expect("bundle");
    let mut args = vec!["import", file.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let (ok, out, err) = s.cli(&args);
    (ok, format!("{out}{err}"))
}

/// The ids of `/documents/ID` links on a page.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"/documents/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| !id.is_empty())
        .map(|id| format!("/documents/{id}"))
        .collect()
}

fn copies(s: &Server) -> usize {
    std::fs::read_dir(s.data_dir().join("documents"))
        .map(|d| {
            d.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn the_demo_shows_alice_her_contract_and_nobody_else() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let (status, html) = s.get_text(&alice, "/documents/").await;
    assert_eq!(status, 200);
    assert!(menu_of(&html).contains("href=\"/documents/\""), "{html}");
    assert!(html.contains("<h1>Documents</h1>"), "{html}");
    assert!(html.contains("Contract for Internet service"), "{html}");
    assert!(html.contains("Dated 2024-03-01"), "{html}");
    let (_, cs) = s.get_text(&alice, "/documents/?lang=cs").await;
    assert!(
        cs.contains("<h1>Dokumenty</h1>") && cs.contains("Ze dne 1. 3. 2024"),
        "{cs}"
    );
    let mine = links(&html);
    assert_eq!(mine, ["/documents/1"]);
    let r = alice.get(s.url("/documents/1")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"Contract 2024-0017.pdf\"; filename*=UTF-8''Contract%202024-0017.pdf"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.bytes().await.expect("body");
    assert!(body.starts_with(b"%PDF-1.4") && body.ends_with(b"%%EOF\n"));

    let (status, html) = s.get_text(&bob, "/documents/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("There are no documents for you right now."),
        "{html}"
    );
    let (status, html) = s.get_text(&bob, "/documents/1").await;
    assert_eq!(status, 404);
    assert!(!html.contains("Contract"), "{html}");
    let r = s
        .client()
        .get(s.url("/documents/1"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303, "anonymous: to the login page");
}

#[tokio::test]
async fn imported_documents_are_copied_listed_when_shown_and_reached_only_by_their_client() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_string()
    };
    let annex = file("annex <1>.txt", "Annex 1: the router stays ours.\n");
    let bob_contract = file("bob.pdf", "%PDF-1.4 bob's contract");
    let bob_internal = file("internal.txt", "not for the client");
    let bundle = serde_json::json!({
        "documents": [
            { "id": 10, "client_id": 1, "title": "Annex 1 <b>to the contract</b>", "date": "2026-02-03", "file": annex, "display_in_cp": true },
            { "id": 11, "client_id": 2, "title": "Business contract", "date": "2025-12-01", "file": bob_contract, "display_in_cp": true },
            { "id": 12, "client_id": 2, "title": "Internal note", "date": "2025-12-02", "file": bob_internal, "display_in_cp": false }
        ]
    });
    let before = copies(&s);
    let (ok, out) = import(&s, dir.path(), &bundle, &["--dry-run"]);
    assert!(ok && out.contains("dry run"), "{out}");
    assert_eq!(copies(&s), before, "a dry run copies nothing");
    let (ok, out) = import(&s, dir.path(), &bundle, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("documents"), "{out}");
    assert_eq!(copies(&s), before + 2, "the hidden document is not copied");
    // The originals may go away.
    for f in [&annex, &bob_contract, &bob_internal] {
        std::fs::remove_file(f).expect("remove original");
    }
    let (_, html) = s.get_text(&alice, "/documents/").await;
    assert!(
        html.contains("Annex 1 &lt;b&gt;to the contract&lt;/b&gt;"),
        "{html}"
    );
    let alice_links = links(&html);
    assert_eq!(
        alice_links,
        ["/documents/10", "/documents/1"],
        "newest first"
    );
    let r = alice.get(s.url("/documents/10")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"annex _1_.txt\"; filename*=UTF-8''annex%20_1_.txt"
    );
    assert_eq!(
        r.text().await.expect("body"),
        "Annex 1: the router stays ours.\n"
    );
    let (_, html) = s.get_text(&bob, "/documents/").await;
    assert!(
        html.contains("Business contract") && !html.contains("Internal note"),
        "{html}"
    );
    let bob_links = links(&html);
    assert_eq!(bob_links, ["/documents/11"]);

    // Every id-bearing URL of one client, opened as the other, and the hidden one: 404.
    for (owner, other, urls) in [(&alice, &bob, &alice_links), (&bob, &alice, &bob_links)] {
        for url in urls {
            assert_eq!(s.get_text(owner, url).await.0, 200, "{url} for its owner");
            let (status, html) = s.get_text(other, url).await;
            assert_eq!(status, 404, "{url} for the other client");
            assert!(
                !html.contains("contract") && !html.contains("Annex"),
                "{html}"
            );
        }
    }
    for url in ["/documents/12", "/documents/999"] {
        assert_eq!(s.get_text(&bob, url).await.0, 404, "{url}");
    }

    // The same bundle again, with the originals gone: the copies stay, nothing changes.
    let (ok, out) = import(&s, dir.path(), &bundle, &[]);
    assert!(
        ok && out.contains("0 created, 0 updated, 3 unchanged"),
        "{out}"
    );
    assert_eq!(copies(&s), before + 2);
    // A changed file is copied again, and the old copy goes.
    let again = file(
        "annex <1>.txt",
        "Annex 1, second edition: the router stays ours.\n",
    );
    let (ok, out) = import(&s, dir.path(), &bundle, &[]);
    assert!(
        ok && out.contains("0 created, 1 updated, 2 unchanged"),
        "{out}"
    );
    assert_eq!(copies(&s), before + 2, "the replaced copy is removed");
    let r = alice.get(s.url("/documents/10")).send().await.expect("get");
    assert_eq!(
        r.text().await.expect("body"),
        "Annex 1, second edition: the router stays ours.\n"
    );

    // Bad records: each named, nothing changed.
    let bad = serde_json::json!({ "documents": [
        { "id": 20, "client_id": 1, "title": "Relative", "date": "2026-01-01", "file": "contract.pdf", "display_in_cp": true },
        { "id": 21, "client_id": 1, "title": "Missing", "date": "2026-01-01", "file": "/no/such/file.pdf", "display_in_cp": true },
        { "id": 22, "client_id": 999, "title": "Nobody's", "date": "2026-01-01", "file": again, "display_in_cp": true },
        { "id": 23, "client_id": 1, "title": " ", "date": "2026-13-01", "file": again },
        { "id": 24, "client_id": 1, "title": "A folder", "date": "2026-01-01", "file": dir.path().to_str().expect("utf-8"), "display_in_cp": true }
    ]});
    let (ok, out) = import(&s, dir.path(), &bad, &[]);
    assert!(!ok, "{out}");
    for want in [
        "documents[0].file: `contract.pdf` is not an absolute path",
        "documents[1].file: `/no/such/file.pdf`",
        "documents[2].client_id: no client with id 999",
        "documents[3].date: not a date",
        "documents[4].file:",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert_eq!(links(&s.get_text(&alice, "/documents/").await.1).len(), 2);

    // A copy missing on disk: the themed 404, and the log says which.
    for entry in std::fs::read_dir(s.data_dir().join("documents")).expect("folder") {
        let path = entry.expect("entry").path();
        if std::fs::read(&path).is_ok_and(|b| b.starts_with(b"Annex 1")) {
            std::fs::remove_file(&path).expect("remove copy");
        }
    }
    let (status, html) = s.get_text(&alice, "/documents/10").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("/static/style.css") && html.contains("menu"),
        "{html}"
    );
    assert!(
        s.log_text().contains("document missing on disk"),
        "{}",
        s.log_text()
    );

    // The setting hides the tab and its URLs for a group; the other group keeps them.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_display_contracts_tab",
        "off",
        "--group",
        "1",
    ]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!menu_of(&html).contains("/documents/"), "{html}");
    for path in ["/documents/", "/documents/1"] {
        assert_eq!(s.get_text(&alice, path).await.0, 404, "{path}");
    }
    assert_eq!(s.get_text(&bob, "/documents/11").await.0, 200);
    s.cli_ok(&[
        "settings",
        "unset",
        "ci_display_contracts_tab",
        "--group",
        "1",
    ]);

    // --sync with documents: [] deletes them all, and their copies.
    let (ok, out) = import(
        &s,
        dir.path(),
        &serde_json::json!({ "documents": [] }),
        &["--sync"],
    );
    assert!(ok, "{out}");
    assert_eq!(copies(&s), 0, "{out}");
    assert_eq!(s.get_text(&alice, "/documents/1").await.0, 404);
    let (_, html) = s.get_text(&bob, "/documents/").await;
    assert!(links(&html).is_empty());
}
