//! Issue 9, item 1 over real HTTP: the Traffic tab (chart, totals, table, FUP), what hides it,
//! `portico traffic import` with bad records and re-imports, the bundle's `traffic` section,
//! the access-control crawl and the FUP e-mails.

mod common;

use common::{Options, Server, Smtp, csrf_of, free_port};

/// The menu of a page (between `<nav class="menu"` and `</nav>`).
fn menu_of(html: &str) -> &str {
    let start = html.find("<nav class=\"menu\"").expect("menu");
    let end = html[start..].find("</nav>").expect("menu end") + start;
    &html[start..end]
}

/// The id in the first "Data transferred" link of the Services page.
fn traffic_link(html: &str) -> Option<u64> {
    let button = html.find("id=\"service-traffic-")?;
    let at = html[button..].find("href=\"/traffic/")? + button + "href=\"/traffic/".len();
    html[at..].split('"').next()?.parse().ok()
}

/// Sum of the table's `data-bytes` cells (download, upload).
fn table_sums(html: &str) -> (u64, u64) {
    let body = html
        .split("<tbody>")
        .nth(1)
        .expect("table body")
        .split("</tbody>")
        .next()
        .expect("end");
    let (mut d, mut u) = (0u64, 0u64);
    for row in body.split("<tr>").skip(1) {
        let cells: Vec<u64> = row
            .split("data-bytes=\"")
            .skip(1)
            .map(|c| c.split('"').next().expect("value").parse().expect("number"))
            .collect();
        assert_eq!(cells.len(), 2, "{row}");
        d += cells[0];
        u += cells[1];
    }
    (d, u)
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).expect("end") + from;
    &html[from..to]
}

#[tokio::test]
async fn the_traffic_tab_draws_a_chart_with_totals_a_table_and_fup_and_hides_where_it_must() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;

    // The menu has the tab in both languages; Services has the button on the Internet service.
    let (status, html) = s.get_text(&alice, "/").await;
    assert_eq!(status, 200);
    assert!(menu_of(&html).contains("href=\"/traffic/\""), "{html}");
    assert!(menu_of(&html).contains(">Traffic<"));
    let (_, html) = s.get_text(&alice, "/?lang=cs").await;
    assert!(menu_of(&html).contains(">Provoz<"), "{html}");
    let (_, html) = s.get_text(&alice, "/services/?lang=en").await;
    let id = traffic_link(&html).expect("a Data transferred button");
    assert!(html.contains(">Data transferred</a>"), "{html}");
    assert_eq!(
        html.matches("id=\"service-traffic-").count(),
        1,
        "only on Internet"
    );

    // The month: an SVG with title and description, totals, and a table with the same numbers.
    let (status, html) = s
        .get_text(&alice, &format!("/traffic/{id}?period=month"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<svg class=\"traffic-chart\""), "{html}");
    assert!(html.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""));
    assert!(html.contains("<title id=\"chart-title\">Data transferred by Internet: "));
    let (down, up) = table_sums(&html);
    assert!(down > 0 && up > 0 && down > up, "{down} {up}");
    let total_down = between(&html, "<dd id=\"total-down\">", "</dd>");
    // The month's total is near 92 % of alice's limit (the demo puts her near it).
    let (_, fup) = html.split_once("id=\"fup\"").expect("a FUP section");
    let limit: u64 = between(fup, "max=\"", "\"").parse().expect("limit");
    let used: u64 = between(fup, "value=\"", "\"").parse().expect("used");
    assert_eq!(
        used,
        down + up,
        "FUP counts this month's download and upload"
    );
    let share = used as f64 / limit as f64;
    assert!((0.85..0.99).contains(&share), "{share}");
    assert!(fup.contains("The count starts again on "), "{fup}");
    assert!(total_down.ends_with("GB"), "{total_down}");
    assert!(!between(&html, "<tfoot>", "</tfoot>").is_empty());
    // Other periods and Czech.
    for (q, rows) in [
        ("period=year", 0),
        ("period=week", 0),
        ("period=day&date=2020-01-01", 24),
    ] {
        let (status, html) = s.get_text(&alice, &format!("/traffic/{id}?{q}")).await;
        assert_eq!(status, 200, "{q}");
        if rows > 0 {
            assert_eq!(
                between(&html, "<tbody>", "</tbody>")
                    .matches("<tr>")
                    .count(),
                rows
            );
            assert_eq!(table_sums(&html), (0, 0), "nothing in 2020");
        }
    }
    let (_, html) = s
        .get_text(&alice, &format!("/traffic/{id}?period=day"))
        .await;
    assert!(
        html.contains("Values per 5 minutes (UTC)."),
        "recent days are raw"
    );
    let (status, html) = s.get_text(&alice, &format!("/traffic/{id}?lang=cs")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Provoz</h1>"), "{html}");
    assert!(html.contains("Stahování"));
    for bad in ["period=hour", "date=2026-13-01", "date=yesterday"] {
        let (status, _) = s.get_text(&alice, &format!("/traffic/{id}?{bad}")).await;
        assert_eq!(status, 404, "{bad}");
    }

    // Bob's tariff hides traffic: no tab, no button, 404 for the tab and his service.
    let (_, html) = s.get_text(&bob, "/").await;
    assert!(!menu_of(&html).contains("/traffic/"), "{html}");
    let (_, html) = s.get_text(&bob, "/services/").await;
    assert_eq!(traffic_link(&html), None);
    assert_eq!(s.get_text(&bob, "/traffic/").await.0, 404);

    // ci_display_graph_tab off for alice's group: everything goes.
    s.cli_ok(&[
        "settings",
        "set",
        "ci_display_graph_tab",
        "--group",
        "1",
        "false",
    ]);
    let (_, html) = s.get_text(&alice, "/").await;
    assert!(!menu_of(&html).contains("/traffic/"), "{html}");
    let (_, html) = s.get_text(&alice, "/services/").await;
    assert_eq!(traffic_link(&html), None);
    let (status, html) = s.get_text(&alice, &format!("/traffic/{id}")).await;
    assert_eq!(status, 404);
    assert!(html.contains("<html"), "a themed 404");
    assert_eq!(s.get_text(&alice, "/traffic/").await.0, 404);
}

#[tokio::test]
async fn import_keeps_good_records_rejects_bad_ones_by_line_and_a_reimport_changes_nothing() {
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let id = traffic_link(&html).expect("alice's service");
    let dir = tempfile::tempdir().expect("tempdir");
    // Five days ago, outside the demo's history? No: inside; use a day far back instead.
    let day = "2025-06-01";
    let csv = dir.path().join("t.csv");
    std::fs::write(
        &csv,
        format!(
            "service_id,time,down,up\n\
             {id},{day}T10:00:00Z,1000,100\n\
             {id},{day}T10:05:00Z,-5,100\n\
             999999,{day}T10:05:00Z,1,1\n\
             {id},2999-01-01T00:00:00Z,1,1\n\
             {id},{day}T09:00:00Z,1,1\n\
             {id},{day}T10:05:00+00:00,2000,200\n\
             {id},not a time,1,1\n\
             {id},1748772600,4000,400\n\
             \n\
             2,{day}T10:00:00Z,1,1\n"
        ),
    )
    .expect("write");
    let out = s.cli_ok(&["traffic", "import", csv.to_str().expect("path")]);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert!(
        lines[0].starts_with("9 samples read in ")
            && lines[0].ends_with(": 3 added, 0 replaced, 0 unchanged, 6 rejected"),
        "{out}"
    );
    assert_eq!(
        &lines[1..],
        [
            "  line 3: negative counter (down)",
            "  line 4: unknown service 999999 (no Internet service with this id)",
            "  line 5: time is in the future",
            &format!(
                "  line 6: out of order: not in a later 5-minute slot than the previous sample of service {id} (line 2)"
            ),
            "  line 8: time `not a time` is neither RFC 3339 nor Unix time",
            "  line 11: unknown service 2 (no Internet service with this id)",
        ],
        "{out}"
    );
    let path = format!("/traffic/{id}?period=day&date={day}");
    let (_, before) = s.get_text(&alice, &path).await;
    assert_eq!(table_sums(&before), (7000, 700), "the three good samples");
    // The same file again: nothing is added or counted twice.
    let out = s.cli_ok(&["traffic", "import", csv.to_str().expect("path")]);
    assert!(
        out.contains(": 0 added, 0 replaced, 3 unchanged, 6 rejected"),
        "{out}"
    );
    let (_, after) = s.get_text(&alice, &path).await;
    assert_eq!(table_sums(&after), (7000, 700));
    let month = format!("/traffic/{id}?period=month&date={day}");
    let (_, m) = s.get_text(&alice, &month).await;
    assert_eq!(table_sums(&m), (7000, 700), "the day rollup too");

    // JSON lines (detected by content), with a new sample and a corrected recent one.
    let recent = chrono::Utc::now() - chrono::Duration::hours(30);
    let recent_slot = recent.timestamp() / 300 * 300;
    let jsonl = dir.path().join("t.data");
    let write_jsonl = |down: u64| {
        std::fs::write(
            &jsonl,
            format!(
                "{{\"service_id\":{id},\"time\":\"{day}T11:00:00Z\",\"down\":5,\"up\":5}}\n\
                 {{\"service_id\":{id},\"time\":{recent_slot},\"down\":{down},\"up\":0}}\n\
                 {{\"service_id\":{id},\"time\":1,\"down\":1}}\n"
            ),
        )
        .expect("write")
    };
    let date = chrono::DateTime::from_timestamp(recent_slot, 0)
        .expect("time")
        .date_naive();
    let recent_day = format!("/traffic/{id}?period=day&date={date}");
    let (_, html) = s.get_text(&alice, &recent_day).await;
    let (demo_down, _) = table_sums(&html);
    write_jsonl(123);
    let out = s.cli_ok(&["traffic", "import", jsonl.to_str().expect("path")]);
    // The recent slot was in the demo: within the raw window it is replaced.
    assert!(
        out.contains(": 1 added, 1 replaced, 0 unchanged, 1 rejected"),
        "{out}"
    );
    assert!(out.contains("  line 3: missing field `up`"), "{out}");
    let (_, html) = s.get_text(&alice, &recent_day).await;
    let (new_down, _) = table_sums(&html);
    let slot_label = chrono::DateTime::from_timestamp(recent_slot, 0)
        .expect("t")
        .format("<th scope=\"row\">%H:%M</th><td data-bytes=\"123\">")
        .to_string();
    assert!(html.contains(&slot_label), "{slot_label}");
    let out = s.cli_ok(&["traffic", "import", jsonl.to_str().expect("path")]);
    assert!(
        out.contains(": 0 added, 0 replaced, 2 unchanged, 1 rejected"),
        "{out}"
    );
    let (_, html) = s.get_text(&alice, &recent_day).await;
    assert_eq!(table_sums(&html).0, new_down, "unchanged by the re-import");
    assert_ne!(demo_down, new_down);

    // Missing file, bad usage.
    let (ok, _, err) = s.cli(&["traffic", "import", "/nonexistent/t.csv"]);
    assert!(!ok);
    assert!(err.contains("cannot open /nonexistent/t.csv"), "{err}");
    let (ok, _, err) = s.cli(&["traffic", "export"]);
    assert!(
        !ok && err.contains("usage: portico traffic import FILE"),
        "{err}"
    );

    // The bundle's `traffic` section, with a bad record by position.
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        format!(
            "{{\"traffic\":[{{\"service_id\":{id},\"time\":\"{day}T12:00:00Z\",\"down\":10,\"up\":1}},\
             {{\"service_id\":{id},\"time\":\"{day}T12:05:00Z\",\"down\":-1,\"up\":1}}]}}"
        ),
    )
    .expect("write");
    let out = s.cli_ok(&["import", bundle.to_str().expect("path")]);
    assert!(
        out.contains("\ntraffic: 2 samples read in ")
            && out.contains(": 1 added, 0 replaced, 0 unchanged, 1 rejected\n  traffic[1]: negative counter (down)"),
        "{out}"
    );
    let (_, html) = s.get_text(&alice, &path).await;
    assert_eq!(table_sums(&html), (7015, 706));
    std::fs::write(&bundle, "{\"traffic\":{\"service_id\":1}}").expect("write");
    let (ok, _, err) = s.cli(&["import", bundle.to_str().expect("path")]);
    assert!(!ok);
    assert!(err.contains("`traffic` must be a list"), "{err}");
}

#[tokio::test]
async fn a_client_reaches_only_their_own_services_traffic() {
    let s = Server::demo();
    // Bob's tariff hides traffic in the demo; give him one that shows it for the crawl.
    s.cli_ok(&["settings", "set", "ci_display_graph_tab", "true"]);
    let bundle = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        bundle.path(),
        r#"{"tariffs":[{"id":4,"name":"Business 1000","download_kbps":1000000,"upload_kbps":1000000,"price":"1990","fup_limits":[],"hide_traffic_in_portal":false}]}"#,
    )
    .expect("write");
    s.cli_ok(&["import", bundle.path().to_str().expect("path")]);
    let alice = s.login("alice", "alice-demo-pass").await;
    let bob = s.login("bob", "bob-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let a = traffic_link(&html).expect("alice's");
    let (_, html) = s.get_text(&bob, "/services/").await;
    let b = traffic_link(&html).expect("bob's");
    assert_ne!(a, b);
    let urls = |id: u64| {
        vec![
            format!("/traffic/{id}"),
            format!("/traffic/{id}?period=day"),
            format!("/traffic/{id}?period=week&date=2026-01-05"),
            format!("/traffic/{id}?period=month"),
            format!("/traffic/{id}?period=year"),
            format!("/traffic/{id}?saved=on"),
        ]
    };
    for (who, own, other) in [(&alice, a, b), (&bob, b, a)] {
        for u in urls(own) {
            assert_eq!(s.get_text(who, &u).await.0, 200, "{u}");
        }
        for u in urls(other) {
            let (status, html) = s.get_text(who, &u).await;
            assert_eq!(status, 404, "{u}");
            assert!(!html.contains("chart-title"), "{u}");
        }
        // Ids that are no service, or not an Internet one (alice's TV is service 2).
        for u in ["/traffic/2", "/traffic/999999", "/traffic/0"] {
            assert_eq!(s.get_text(who, u).await.0, 404, "{u}");
        }
    }
    // The opt-in form cannot send alice back to bob's page.
    let (_, html) = s.get_text(&alice, &format!("/traffic/{a}")).await;
    let csrf = csrf_of(&html);
    let r = alice
        .post(s.url("/traffic/fup-mail"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("service", &b.to_string()),
            ("mail", "on"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"].to_str().expect("location"),
        "/traffic/?saved=on"
    );
}

#[tokio::test]
async fn fup_mail_is_sent_once_per_threshold_and_month() {
    let port = free_port();
    let smtp = Smtp::start_on(port);
    let s = Server::demo_with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Options::default()
    });
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let id = traffic_link(&html).expect("alice's service");
    let (_, html) = s.get_text(&alice, &format!("/traffic/{id}")).await;
    let limit: u64 = between(
        html.split_once("id=\"fup\"").expect("fup").1,
        "max=\"",
        "\"",
    )
    .parse()
    .expect("limit");
    assert!(!html.contains("id=\"fup-mail\" name=\"mail\" value=\"on\" checked"));
    // Opting in needs the form token.
    let r = alice
        .post(s.url("/traffic/fup-mail"))
        .form(&[("csrf", "forged"), ("mail", "on")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let csrf = csrf_of(&html);
    let r = alice
        .post(s.url("/traffic/fup-mail"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("service", &id.to_string()),
            ("mail", "on"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 303);
    let (_, html) = s.get_text(&alice, &format!("/traffic/{id}?saved=on")).await;
    assert!(
        html.contains("id=\"fup-mail\" name=\"mail\" value=\"on\" checked"),
        "{html}"
    );
    assert!(html.contains("We will e-mail you when you pass 80 % and 100 % of a limit."));

    // Two imports at once of a sample each that keep her above 80 %: one mail.
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now().timestamp() / 300 * 300;
    let file = |name: &str, t: i64, down: u64| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{id},{t},{down},0\n")).expect("write");
        p.to_str().expect("path").to_string()
    };
    // The demo filled every slot up to the last full one; these are new slots.
    let f1 = file("a.csv", now, 1);
    let f2 = file("b.csv", now, 1);
    let (r1, r2) = std::thread::scope(|sc| {
        let h1 = sc.spawn(|| s.cli(&["traffic", "import", &f1]));
        let h2 = sc.spawn(|| s.cli(&["traffic", "import", &f2]));
        (h1.join().expect("a"), h2.join().expect("b"))
    });
    assert!(r1.0 && r2.0, "{r1:?} {r2:?}");
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = common::decode_quoted_printable(&mails[0]);
    assert!(
        text.contains("Subject: Internet: 80 % of your data limit used"),
        "{text}"
    );
    // Past 100 %: the second mail, once.
    let f3 = file("c.csv", now, limit / 5);
    s.cli_ok(&["traffic", "import", &f3]);
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    let subjects: Vec<String> = mails
        .iter()
        .map(|m| {
            common::decode_quoted_printable(m)
                .lines()
                .find(|l| l.starts_with("Subject: "))
                .expect("subject")
                .to_string()
        })
        .collect();
    assert!(
        subjects.contains(&"Subject: Internet: 100 % of your data limit used".to_string()),
        "{subjects:?}"
    );
    s.cli_ok(&["traffic", "import", &f3]);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 2, "no mail twice");
    let (_, html) = s.get_text(&alice, &format!("/traffic/{id}")).await;
    assert!(
        html.contains("The limit is reached: the speed is"),
        "{html}"
    );
}

/// After a bulk import the portal reopens its store to give back the memory sled keeps from the
/// writes (bench/README.md). Pages asked for while it imports and reopens all answer, a session
/// from before goes on, the import's numbers are there, writes go on, and a small command after
/// it does not reopen again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_reopens_the_store_and_nothing_is_refused_or_lost() {
    const REOPENED: &str = "store reopened after a bulk write";
    let s = Server::demo_with(Options {
        release_memory_after: Some(100),
        ..Options::default()
    });
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let id = traffic_link(&html).expect("alice's service");
    assert_eq!(s.log_text().matches(REOPENED).count(), 0);

    // 3,000 samples from 2025-01-01 (10.4 days, each hour and day written: some 260 records).
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("t.csv");
    let start = 1_735_689_600u64; // 2025-01-01T00:00:00Z
    let mut text = String::from("service_id,time,down,up\n");
    for i in 0..3000u64 {
        text.push_str(&format!("{id},{},1000,100\n", start + i * 300));
    }
    std::fs::write(&csv, text).expect("write");

    // Pages keep answering while it imports and reopens.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (c, url, done) = (alice.clone(), s.url("/traffic/"), done.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.get(&url).send().await.expect("get");
                statuses.push(r.status().as_u16());
            }
            statuses
        })
    };
    let args: Vec<String> = [
        "traffic",
        "import",
        csv.to_str().expect("path"),
        "--data",
        s.data_dir().to_str().expect("path"),
    ]
    .map(String::from)
    .to_vec();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        common::portico(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
    })
    .await
    .expect("cli");
    assert!(
        ok && out.contains("3000 samples read") && out.contains(": 3000 added"),
        "{out}{err}"
    );
    let reopened = Server::wait_for(std::time::Duration::from_secs(20), || async {
        s.log_text().contains(REOPENED)
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = reader.await.expect("reader");
    assert!(reopened.is_some(), "{}", s.log_text());
    assert!(
        !statuses.is_empty() && statuses.iter().all(|c| *c == 200),
        "{statuses:?}"
    );

    // The session from before, the numbers of the import, and a new write (a login).
    let (status, html) = s
        .get_text(
            &alice,
            &format!("/traffic/{id}?period=month&date=2025-01-15"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(table_sums(&html), (3_000_000, 300_000));
    let bob = s.login("bob", "bob-demo-pass").await;
    assert_eq!(s.get_text(&bob, "/").await.0, 200);

    // A command of a few records does not reopen it again.
    s.cli_ok(&["settings", "set", "traffic_raw_days", "8"]);
    s.cli_ok(&["settings", "set", "traffic_raw_days", "7"]);
    assert_eq!(
        s.log_text().matches(REOPENED).count(),
        1,
        "{}",
        s.log_text()
    );
}

/// The first import of a new portal may carry traffic: a bundle with a `traffic` section
/// creates the data folder and stores its samples (the plugin's section is known before the
/// store exists); its dry run creates nothing.
#[test]
fn a_bundle_with_traffic_starts_a_new_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bundle: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("docs/import-example.json"))
            .expect("example"),
    )
    .expect("json");
    bundle["traffic"] = serde_json::json!([
        {"service_id": 1000, "time": "2025-06-01T10:00:00Z", "down": 1000, "up": 100},
        {"service_id": 1000, "time": "2025-06-01T10:05:00Z", "down": 2000, "up": 200},
        {"service_id": 4242, "time": "2025-06-01T10:05:00Z", "down": 1, "up": 1}
    ]);
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle.to_string()).expect("write");
    let data = dir.path().join("portal");
    let (file, data) = (file.to_str().expect("path"), data.to_str().expect("path"));

    let (ok, out, err) = common::portico(&["import", file, "--dry-run", "--data", data], None);
    assert!(ok, "{out}{err}");
    // A dry run checks samples against the services stored before the bundle: this new
    // folder has none yet (docs/traffic.md says so).
    assert!(out.contains("traffic: dry run: 3 samples read"), "{out}");
    assert!(
        !std::path::Path::new(data).exists(),
        "a dry run creates nothing"
    );

    let (ok, out, err) = common::portico(&["import", file, "--data", data], None);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(": 2 added, 0 replaced, 0 unchanged, 1 rejected"),
        "{out}"
    );
    assert!(
        out.contains("traffic[2]: unknown service 4242 (no Internet service with this id)"),
        "{out}"
    );
}

/// Old-layout traffic (one record per sample in `raw`, per hour in `hour`, per day in `day`,
/// as written before migration 1) for one service and day.
fn write_old_day(
    tx: &mut portico_core::internal::store::WriteTx<'_>,
    service: u64,
    day: i64,
    samples: &[(usize, u64, u64)],
    keep_raw: bool,
) {
    let key = |t: i64| [service.to_be_bytes(), (t as u64).to_be_bytes()].concat();
    let pair = |d: u64, u: u64| [d.to_be_bytes(), u.to_be_bytes()].concat();
    let (mut down, mut up, mut mask) = (0, 0, [0u8; 36]);
    let mut hours = std::collections::BTreeMap::<i64, (u64, u64)>::new();
    for &(slot, d, u) in samples {
        let t = day + slot as i64 * 300;
        down += d;
        up += u;
        mask[slot / 8] |= 1 << (slot % 8);
        let h = hours.entry(t / 3600 * 3600).or_default();
        *h = (h.0 + d, h.1 + u);
        if keep_raw {
            tx.set_raw("traffic:raw", key(t), Some(pair(d, u)));
        }
    }
    for (h, (d, u)) in hours {
        tx.set_raw("traffic:hour", key(h), Some(pair(d, u)));
    }
    tx.set_raw(
        "traffic:day",
        key(day),
        Some([pair(down, up), mask.to_vec()].concat()),
    );
}

#[tokio::test]
async fn a_store_of_one_record_per_sample_is_migrated_when_the_portal_starts() {
    use portico_core::internal::store::Store;
    let s = Server::demo();
    let alice = s.login("alice", "alice-demo-pass").await;
    let (_, html) = s.get_text(&alice, "/services/").await;
    let id = traffic_link(&html).expect("alice's service");
    let data = s.stop();

    // Alice's traffic as an older portal wrote it: a day long past (hours only) and yesterday
    // (within the raw window, so with its samples).
    let day_start = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let old = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).expect("date");
    {
        let store = Store::open(&data.path().join("portal")).expect("open");
        let prefix = id.to_be_bytes();
        let mut new_layout = Vec::new();
        for tree in ["traffic:days", "traffic:raw_days"] {
            let pairs = store.backend().scan_prefix(tree, &prefix).expect("scan");
            assert!(tree.ends_with("raw_days") || !pairs.is_empty(), "{tree}");
            new_layout.extend(pairs.into_iter().map(|(k, _)| (tree, k)));
        }
        store
            .write(|tx| {
                for (tree, k) in new_layout {
                    tx.set_raw(tree, k, None);
                }
                write_old_day(
                    tx,
                    id,
                    day_start(old),
                    &[(120, 1000, 100), (121, 2000, 200)],
                    false,
                );
                write_old_day(
                    tx,
                    id,
                    day_start(yesterday),
                    &[(0, 1000, 10), (1, 2000, 20)],
                    true,
                );
                tx.set_raw("meta", b"migration\xfftraffic".to_vec(), None);
                Ok(())
            })
            .expect("write the old layout");
    }

    let s = Server::serve(data, Options::default());
    let alice = s.login("alice", "alice-demo-pass").await;
    let log = s.log_text();
    assert!(
        log.contains("migration: traffic: one record per service and day"),
        "{log}"
    );
    assert!(
        log.contains("migration: traffic: done, 2 days rewritten"),
        "{log}"
    );
    let view =
        |period: &str, d: chrono::NaiveDate| format!("/traffic/{id}?period={period}&date={d}");
    let (_, html) = s.get_text(&alice, &view("day", old)).await;
    assert_eq!(table_sums(&html), (3000, 300), "the old day's hours");
    assert!(html.contains("<th scope=\"row\">10:00</th><td data-bytes=\"3000\">"));
    let (_, html) = s.get_text(&alice, &view("month", old)).await;
    assert_eq!(table_sums(&html), (3000, 300), "the old day's total");
    let (_, html) = s.get_text(&alice, &view("day", yesterday)).await;
    assert_eq!(table_sums(&html), (3000, 30), "yesterday's samples");
    assert!(html.contains("<th scope=\"row\">00:05</th><td data-bytes=\"2000\">"));

    // The masks came along: nothing is counted twice; the raw samples too: a changed one is
    // replaced and its day corrected.
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("again.csv");
    let (o, y) = (day_start(old), day_start(yesterday));
    std::fs::write(
        &csv,
        format!(
            "{id},{},1000,100\n{id},{},2000,200\n{id},{y},1000,10\n{id},{},2500,20\n",
            o + 36_000,
            o + 36_300,
            y + 300
        ),
    )
    .expect("write");
    let out = s.cli_ok(&["traffic", "import", csv.to_str().expect("path")]);
    assert!(
        out.contains(": 0 added, 1 replaced, 3 unchanged, 0 rejected"),
        "{out}"
    );
    let (_, html) = s.get_text(&alice, &view("week", yesterday)).await;
    assert_eq!(table_sums(&html), (3500, 30), "yesterday's hour, corrected");
    let (_, html) = s.get_text(&alice, &view("month", old)).await;
    assert_eq!(table_sums(&html), (3000, 300));

    let data = s.stop();
    let store = Store::open(&data.path().join("portal")).expect("open");
    for tree in ["traffic:raw", "traffic:hour", "traffic:day"] {
        assert!(
            store
                .backend()
                .scan_prefix(tree, &[])
                .expect("scan")
                .is_empty(),
            "{tree} is emptied"
        );
    }
}
