//! Issue 9 over real HTTP: the Contact tab, the operator's custom buttons and portal
//! suspension.

mod common;

use common::{Server, csrf_of};

/// The menu of a page (between `<nav class="menu"` and `</nav>`).
fn menu_of(html: &str) -> &str {
    let start = html.find("<nav class=\"menu\"").expect("menu");
    let end = html[start..].find("</nav>").expect("menu end") + start;
    &html[start..end]
}

#[tokio::test]
async fn contact_tab_shows_the_markdown_text_and_goes_when_it_is_empty() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;

    // The demo's global text, rendered from Markdown, in the menu of both languages.
    let (status, html) = s.get_text(&alice, "/").await;
    assert_eq!(status, 200);
    assert!(menu_of(&html).contains("href=\"/contact/\""), "{html}");
    assert!(menu_of(&html).contains(">Contact<"));
    let (status, html) = s.get_text(&alice, "/contact/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Contact</h1>"), "{html}");
    assert!(html.contains("<h2>Customer care</h2>"), "{html}");
    assert!(html.contains("<strong>Monday to Friday</strong>"), "{html}");
    assert!(
        html.contains("<a href=\"https://status.example.net/\" rel=\"noopener\">"),
        "{html}"
    );
    assert!(html.contains("aria-current=\"page\""));
    let (status, html) = s.get_text(&alice, "/contact/?lang=cs").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Kontakt</h1>"), "{html}");

    // Bob's invoice group gets its own text, with everything that could run in it.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_contact_text",
        "--group",
        "2",
        "# Business desk\n\n<script>alert('x')</script>\n\n\
         [click](javascript:alert(1)) <a href=\"jAvAsCrIpT:alert(2)\">raw</a>\n\n\
         <img src=\"https://x.example/a.png\" onerror=\"alert(3)\"> \
         <p onclick=\"alert(4)\" style=\"color:red\">Call 530 000 200</p>\n\n\
         <iframe src=\"https://evil.example/\"></iframe>\n\n[mail](mailto:business@example.net)",
    ]);
    let (status, html) = s.get_text(&bob, "/contact/").await;
    assert_eq!(status, 200);
    let text = html
        .split("<section class=\"card contact-text\">")
        .nth(1)
        .expect("contact text")
        .split("</section>")
        .next()
        .expect("end");
    assert!(text.contains("<h2>Business desk</h2>"), "{text}");
    assert!(text.contains("Call 530 000 200"), "{text}");
    assert!(
        text.contains("<a href=\"mailto:business@example.net\" rel=\"noopener\">mail</a>"),
        "{text}"
    );
    for inert in [
        "<script",
        "alert",
        "javascript:",
        "onerror",
        "onclick",
        "style=",
        "<iframe",
    ] {
        assert!(!text.to_lowercase().contains(inert), "{inert} in {text}");
    }
    // Alice (group 1) still reads the global text.
    let (_, html) = s.get_text(&alice, "/contact/").await;
    assert!(html.contains("Customer care") && !html.contains("Business desk"));

    // No text: no tab, and its URL is not found. Bob's group keeps its own.
    s.cli_ok(&["settings", "set", "ci_contact_text", "  "]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!menu_of(&html).contains("/contact/"), "{html}");
    let (status, _) = s.get_text(&alice, "/contact/").await;
    assert_eq!(status, 404);
    let (status, _) = s.get_text(&bob, "/contact/").await;
    assert_eq!(status, 200);
    s.cli_ok(&["settings", "set", "ci_contact_text", "--group", "2", ""]);
    let (status, _) = s.get_text(&bob, "/contact/").await;
    assert_eq!(status, 404);
    // Anonymous visitors go to the login page.
    let r = s
        .client()
        .get(s.url("/contact/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn custom_buttons_are_added_listed_and_removed_while_the_portal_runs() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;

    // The demo's button: external, so marked for screen readers and opened without an opener.
    let (_, html) = s.get_text(&alice, "/").await;
    let menu = menu_of(&html);
    assert!(
        menu.contains(
            "<a href=\"https://speedtest.example.net/\" class=\"menu-custom\" \
             target=\"_blank\" rel=\"noopener noreferrer\">Speed test<span class=\"sr-only\"> \
             (opens in a new tab)</span></a>"
        ),
        "{menu}"
    );
    let (_, html) = s.get_text(&alice, "/?lang=cs").await;
    assert!(
        menu_of(&html)
            .contains(">Test rychlosti<span class=\"sr-only\"> (otevře se v nové záložce)</span>"),
        "{html}"
    );

    // Only web and mail addresses; a clear error for anything else, and nothing stored.
    for bad in [
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://files.example.net/",
        "https://",
    ] {
        let (ok, out, err) = s.cli(&["menu", "add", "--label", "Bad", "--url", bad]);
        assert!(!ok, "{bad} accepted: {out}");
        assert!(err.contains("--url"), "{bad}: {err}");
    }
    let (ok, _, err) = s.cli(&["menu", "add", "--label", " ", "--url", "https://x.example/"]);
    assert!(!ok && err.contains("--label: the label is empty"), "{err}");
    let (ok, _, err) = s.cli(&[
        "menu",
        "add",
        "--label",
        "G",
        "--url",
        "https://x.example/",
        "--invoice-group",
        "99",
    ]);
    assert!(!ok && err.contains("no invoice group 99"), "{err}");
    let list = s.cli_ok(&["menu", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");

    // A same-window link for group 2 only, first in the menu; a mail link for everyone.
    let out = s.cli_ok(&[
        "menu",
        "add",
        "--label",
        "Business help",
        "--label-cs",
        "Firemní podpora",
        "--url",
        "https://business.example.net/help",
        "--order",
        "5",
        "--invoice-group",
        "2",
    ]);
    assert!(out.contains("custom button 2 added"), "{out}");
    s.cli_ok(&[
        "menu",
        "add",
        "--label",
        "Write to us",
        "--url",
        "mailto:care@example.net",
    ]);
    let (_, html) = s.get_text(&bob, "/services/").await;
    let menu = menu_of(&html);
    let first = menu.find("<li>").expect("item");
    assert!(
        menu[first..].starts_with(
            "<li><a href=\"https://business.example.net/help\" class=\"menu-custom\">Business help</a>"
        ),
        "{menu}"
    );
    assert!(menu.contains("mailto:care@example.net"), "{menu}");
    let (_, html) = s.get_text(&bob, "/services/?lang=cs").await;
    assert!(menu_of(&html).contains(">Firemní podpora</a>"));
    let (_, html) = s.get_text(&alice, "/services/").await;
    let menu = menu_of(&html);
    assert!(!menu.contains("Business help"), "{menu}");
    assert!(menu.contains(">Write to us</a>"), "{menu}");

    let list = s.cli_ok(&["menu", "list"]);
    assert!(
        list.contains("2  order 5  Business help / cs: Firemní podpora  https://business.example.net/help  invoice group 2"),
        "{list}"
    );
    assert!(list.contains("1  order 60  Speed test"), "{list}");

    // Removed: gone from the next page.
    assert!(s.cli_ok(&["menu", "remove", "2"]).contains("removed"));
    let (_, html) = s.get_text(&bob, "/services/").await;
    assert!(!menu_of(&html).contains("Business help"));
    let (ok, _, err) = s.cli(&["menu", "remove", "2"]);
    assert!(!ok && err.contains("custom button 2"), "{err}");
    s.cli_ok(&["menu", "remove", "1"]);
    s.cli_ok(&["menu", "remove", "3"]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!menu_of(&html).contains("menu-custom"), "{html}");
    assert!(s.cli_ok(&["menu", "list"]).contains("no custom buttons"));
}

/// Every page a client can open in the demo, and the public ones.
const CLIENT_PAGES: &[&str] = &[
    "/",
    "/services/",
    "/contact/",
    "/password/",
    "/invoicing/",
    "/helpdesk/",
    "/helpdesk/new",
    "/gdpr/",
];

#[tokio::test]
async fn suspension_shows_the_message_on_every_page_until_resumed() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let csrf = csrf_of(&s.get_text(&alice, "/").await.1);
    let (ok, _, err) = s.cli(&["suspend", "--message", "  "]);
    assert!(!ok && err.contains("--message"), "{err}");

    let out = s.cli_ok(&[
        "suspend",
        "--message",
        "Portal closed for the <b>annual</b> audit until Monday.",
    ]);
    assert!(out.contains("suspended"), "{out}");
    let message = "Portal closed for the &lt;b&gt;annual&lt;/b&gt; audit until Monday.";
    let anonymous = s.client();
    let mut pages: Vec<(&reqwest::Client, &str)> =
        CLIENT_PAGES.iter().map(|p| (&alice, *p)).collect();
    pages.extend(
        [
            "/sign/",
            "/sign/forgot",
            "/sign/password/abc",
            "/",
            "/contact/",
            "/no-such-page",
        ]
        .iter()
        .map(|p| (&anonymous, *p)),
    );
    for (c, path) in pages {
        let (status, html) = s.get_text(c, path).await;
        assert_eq!(status, 503, "{path}");
        assert!(html.contains(message), "{path}: {html}");
        assert!(
            html.contains("<h1>The client portal is suspended</h1>"),
            "{path}"
        );
        assert!(html.contains("/static/style.css"), "themed: {path}");
        assert!(!html.contains("under maintenance"), "{path}");
    }
    // Czech, and a login or a form post changes nothing.
    let (status, html) = s.get_text(&anonymous, "/sign/?lang=cs").await;
    assert_eq!(status, 503);
    assert!(html.contains("Klientský portál je pozastaven"), "{html}");
    let r = anonymous
        .post(s.url("/sign"))
        .form(&[("username", "alice"), ("password", "alice-demo-pass")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("set-cookie").is_none());
    let r = alice
        .post(s.url("/profile/login-name"))
        .form(&[("username", "alice-new"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 503);
    // The theme's files stay reachable; /healthz says so.
    let (status, _) = s.get_text(&anonymous, "/static/style.css").await;
    assert_eq!(status, 200);
    let (status, body) = s.get_text(&anonymous, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"ok","maintenance":false,"suspended":true}"#
    );
    let shown = s.cli_ok(&["settings", "get", "portal_suspended_message"]);
    assert!(shown.contains("annual"), "{shown}");

    // Maintenance on top: the suspension message still wins (it says why).
    s.cli_ok(&["maintenance", "on"]);
    let (status, html) = s.get_text(&alice, "/").await;
    assert_eq!(status, 503);
    assert!(html.contains(message));
    s.cli_ok(&["maintenance", "off"]);

    assert!(s.cli_ok(&["resume"]).contains("open again"));
    for path in CLIENT_PAGES {
        let (status, html) = s.get_text(&alice, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("suspended"), "{path}");
    }
    let (status, _) = s.get_text(&anonymous, "/sign/").await;
    assert_eq!(status, 200);
    let (_, body) = s.get_text(&anonymous, "/healthz").await;
    assert_eq!(
        body,
        r#"{"status":"ok","maintenance":false,"suspended":false}"#
    );
    // The login name was not changed by the refused post.
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!html.contains("alice-new"));
    assert!(s.cli_ok(&["resume"]).contains("was not suspended"));
}

/// `(id, title)` of the files `portico files list` prints.
fn file_ids(s: &Server) -> Vec<(u64, String)> {
    s.cli_ok(&["files", "list"])
        .lines()
        .filter_map(|l| {
            let mut parts = l.split("  ");
            let id = parts.next()?.trim().parse().ok()?;
            Some((id, parts.next()?.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn files_are_shown_to_their_group_and_downloaded_as_attachments() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let ids = file_ids(&s);
    let id_of = |title: &str| {
        ids.iter()
            .find(|(_, t)| t.contains(title))
            .unwrap_or_else(|| panic!("{title} in {ids:?}"))
            .0
    };
    let (residential, business) = (id_of("residential"), id_of("business"));

    // The demo: one file per group, each seen only by its group.
    let (status, html) = s.get_text(&alice, "/files/").await;
    assert_eq!(status, 200);
    assert!(menu_of(&html).contains("href=\"/files/\""));
    assert!(html.contains("<h1>Files</h1>"), "{html}");
    assert!(
        html.contains(&format!("href=\"/files/{residential}\"")),
        "{html}"
    );
    assert!(html.contains("Terms of service (residential)"));
    assert!(!html.contains("Service level agreement"), "{html}");
    let (_, html) = s.get_text(&bob, "/files/?lang=cs").await;
    assert!(html.contains("<h1>Soubory</h1>"), "{html}");
    assert!(html.contains("Service level agreement (business)"));
    assert!(!html.contains("residential"), "{html}");

    let r = alice
        .get(s.url(&format!("/files/{residential}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"Terms of service 2026.txt\"; \
         filename*=UTF-8''Terms%20of%20service%202026.txt"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.expect("body").contains("terms of service"));

    // Another group's file, or no file: 404 either way, with no hint.
    for (c, id) in [(&alice, business), (&bob, residential), (&alice, 9999)] {
        let r = c
            .get(s.url(&format!("/files/{id}")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404, "{id}");
        assert!(r.headers().get("content-disposition").is_none());
    }
    let r = s
        .client()
        .get(s.url(&format!("/files/{residential}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303, "anonymous: to the login page");

    // A file for everyone, with an unsafe name; the original may go away.
    let dir = tempfile::tempdir().expect("dir");
    let original = dir.path().join("price \"list\"\r<2026>.pdf");
    std::fs::write(&original, b"%PDF-1.4 price list").expect("write");
    let out = s.cli_ok(&[
        "files",
        "add",
        original.to_str().expect("utf-8"),
        "--title",
        "Price list",
    ]);
    assert!(out.contains("application/pdf"), "{out}");
    std::fs::remove_file(&original).expect("remove original");
    let everyone = id_of_new(&s, "Price list");
    for c in [&alice, &bob] {
        let r = c
            .get(s.url(&format!("/files/{everyone}")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let cd = r.headers()["content-disposition"].to_str().expect("ascii");
        assert!(
            cd.starts_with("attachment; filename=\"price _list_2026_.pdf\""),
            "{cd}"
        );
        assert_eq!(
            r.bytes().await.expect("body").as_ref(),
            b"%PDF-1.4 price list"
        );
    }

    // Bad input: a clear error, nothing stored.
    let before = file_ids(&s).len();
    let (ok, _, err) = s.cli(&["files", "add", "/no/such/file.pdf"]);
    assert!(!ok && err.contains("/no/such/file.pdf"), "{err}");
    let some = dir.path().join("a.txt");
    std::fs::write(&some, "a").expect("write");
    let (ok, _, err) = s.cli(&[
        "files",
        "add",
        some.to_str().expect("utf-8"),
        "--invoice-group",
        "77",
    ]);
    assert!(!ok && err.contains("no invoice group 77"), "{err}");
    let (ok, _, err) = s.cli(&["files", "add", dir.path().to_str().expect("utf-8")]);
    assert!(!ok && err.contains("not a file"), "{err}");
    assert_eq!(file_ids(&s).len(), before);

    // A copy missing on disk: the themed 404, and the log says which.
    let copies = s.data_dir().join("files");
    for entry in std::fs::read_dir(&copies).expect("files folder") {
        let path = entry.expect("entry").path();
        if std::fs::read(&path).is_ok_and(|b| b == b"%PDF-1.4 price list") {
            std::fs::remove_file(&path).expect("remove copy");
        }
    }
    let (status, html) = s.get_text(&alice, &format!("/files/{everyone}")).await;
    assert_eq!(status, 404);
    assert!(
        html.contains("/static/style.css") && html.contains("menu"),
        "{html}"
    );
    assert!(
        s.log_text().contains("file missing on disk"),
        "{}",
        s.log_text()
    );

    // The setting hides the tab and its URLs for a group; the other group keeps them.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_display_documents_tab",
        "off",
        "--group",
        "1",
    ]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!menu_of(&html).contains("/files/"), "{html}");
    for path in ["/files/".to_string(), format!("/files/{residential}")] {
        let (status, _) = s.get_text(&alice, &path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = s.get_text(&bob, &format!("/files/{business}")).await;
    assert_eq!(status, 200);

    // Removed: gone from the tab and the URL.
    assert!(
        s.cli_ok(&["files", "remove", &business.to_string()])
            .contains("removed")
    );
    let (status, _) = s.get_text(&bob, &format!("/files/{business}")).await;
    assert_eq!(status, 404);
    let (_, html) = s.get_text(&bob, "/files/").await;
    assert!(!html.contains("Service level agreement"));
    let (ok, _, err) = s.cli(&["files", "remove", &business.to_string()]);
    assert!(!ok && err.contains(&format!("file {business}")), "{err}");
}

fn id_of_new(s: &Server, title: &str) -> u64 {
    file_ids(s)
        .into_iter()
        .find(|(_, t)| t == title)
        .unwrap_or_else(|| panic!("{title}"))
        .0
}

/// Every id-bearing URL of one client, opened as the other: 404 each time.
#[tokio::test]
async fn a_client_reaches_no_other_groups_file_by_its_id() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let links = |html: &str| -> Vec<String> {
        html.split("href=\"/files/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|id| !id.is_empty())
            .map(|id| format!("/files/{id}"))
            .collect()
    };
    let alice_links = links(&s.get_text(&alice, "/files/").await.1);
    let bob_links = links(&s.get_text(&bob, "/files/").await.1);
    assert_eq!(alice_links.len(), 1, "{alice_links:?}");
    assert_eq!(bob_links.len(), 1, "{bob_links:?}");
    for (owner, other, urls) in [(&alice, &bob, &alice_links), (&bob, &alice, &bob_links)] {
        for url in urls {
            let (status, _) = s.get_text(owner, url).await;
            assert_eq!(status, 200, "{url} for its owner");
            let (status, html) = s.get_text(other, url).await;
            assert_eq!(status, 404, "{url} for the other client");
            assert!(!html.contains("Terms of service") && !html.contains("agreement"));
        }
    }
}
