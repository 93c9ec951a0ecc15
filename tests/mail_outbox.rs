//! Outbox control against a real SMTP server: `portico mail retry ID`, `mail cancel ID` and
//! `mail purge --failed [--older-than DAYS]`, with mail that failed while the server was down.

mod common;

use std::time::Duration;

use common::{Options, Server, Smtp, free_port};

/// The error line (the log may warn before it).
fn last_line(err: &str) -> &str {
    err.trim().lines().last().unwrap_or("")
}

/// Queues a "create your password" mail for a client; returns its outbox id.
fn queue_for(s: &Server, client: &str) -> String {
    let out = s.cli_ok(&["client", "send-password-email", client]);
    out.split("queued as outbox #")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("an outbox id in: {out}"))
        .to_string()
}

#[tokio::test]
async fn failed_mail_is_retried_cancelled_and_purged() {
    let port = free_port();
    let s = Server::demo_with(Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Options::default()
    });
    s.cli_ok(&["settings", "set", "ci_url", &format!("{}/", s.base)]);
    let alice = queue_for(&s, "alice");
    let bob = queue_for(&s, "bob");
    let third = queue_for(&s, "1003");

    // No SMTP server yet: every attempt fails until the mail is given up.
    let gave_up = Server::wait_for(Duration::from_secs(60), || {
        s.advance_clock(7300);
        let out = s.cli_ok(&["mail", "queue"]);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            out.matches("FAILED").count() == 3
        }
    })
    .await;
    assert!(gave_up.is_some(), "{}", s.cli(&["mail", "queue"]).1);

    assert_eq!(
        s.cli_ok(&["mail", "cancel", &bob]).trim(),
        format!("mail #{bob} is cancelled: it was taken out of the outbox unsent")
    );
    let queue = s.cli_ok(&["mail", "queue"]);
    assert!(!queue.contains(&format!("#{bob} ")), "{queue}");
    let (ok, _, err) = s.cli(&["mail", "cancel", &bob]);
    assert!(!ok);
    assert_eq!(
        last_line(&err),
        format!(
            "error: there is no mail #{bob} in the outbox (see `portico mail queue`); nothing was changed"
        )
    );
    let (ok, _, err) = s.cli(&["mail", "retry", "424242"]);
    assert!(!ok);
    assert!(
        last_line(&err).starts_with("error: there is no mail #424242 in the outbox"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&["mail", "purge"]);
    assert!(!ok);
    assert!(
        last_line(&err)
            .starts_with("error: purge takes only mail given up after its retries: give --failed"),
        "{err}"
    );
    // Queued less than a day ago (by the portal's clock): kept.
    assert_eq!(
        s.cli_ok(&["mail", "purge", "--failed", "--older-than", "1"])
            .trim(),
        "deleted 0 failed mail(s) older than 1 day(s)"
    );

    // The SMTP server is up: a retry sends Alice's mail at once; the other stays failed.
    let smtp = Smtp::start_on(port);
    assert_eq!(
        s.cli_ok(&["mail", "retry", &alice]).trim(),
        format!(
            "mail #{alice} is due now; the portal sends it in a moment (see `portico mail queue`)"
        )
    );
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.contains("alice@example.com"), "{mail}");
    assert!(mail.contains("/sign/password/"), "{mail}");
    let sent = Server::wait_for(Duration::from_secs(10), || {
        let gone = !s.cli_ok(&["mail", "queue"]).contains(&format!("#{alice} "));
        async move { gone }
    })
    .await;
    assert!(sent.is_some(), "{}", s.cli_ok(&["mail", "queue"]));
    let queue = s.cli_ok(&["mail", "queue"]);
    assert_eq!(queue.lines().count(), 1, "{queue}");
    assert!(
        queue.starts_with(&format!("#{third} ")) && queue.contains("FAILED"),
        "{queue}"
    );

    // Two days on, the failed one is old enough to purge.
    s.advance_clock(2 * 86_400);
    assert_eq!(
        s.cli_ok(&["mail", "purge", "--failed", "--older-than", "1"])
            .trim(),
        "deleted 1 failed mail(s) older than 1 day(s)"
    );
    assert_eq!(
        s.cli_ok(&["mail", "queue"]).trim(),
        "the mail outbox is empty"
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "cancelled and purged mail is never sent"
    );

    let audit = s.cli_ok(&["audit", "--limit", "10"]);
    for line in [
        "MailRetry                    client=- login=- source=- by=".to_string(),
        format!("  mail retry {alice}: mail #{alice} is due now"),
        format!("  mail cancel {bob}: mail #{bob} is cancelled"),
        "  mail purge --failed --older-than 1: deleted 1 failed mail(s) older than 1 day(s)"
            .to_string(),
        "  mail purge --failed --older-than 1: deleted 0 failed mail(s)".to_string(),
    ] {
        assert!(audit.contains(&line), "{line} in\n{audit}");
    }
}
