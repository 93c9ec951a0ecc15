//! Demo contexts for the page templates, taken from real requests: a private in-memory portal
//! with the demo data answers a demo client's visit to every page it has (logged out and in,
//! with and without a form error), and each context a template receives is recorded. `theme
//! check` and the theme reloader render a theme with these in every language, so a template
//! that breaks with real data is found before a client sees it.

use rocket::http::{ContentType, Header};
use rocket::local::asynchronous::Client;

use crate::error::{Error, Result};
use crate::i18n::LANGUAGES;
use crate::portal::Portal;
use crate::store::Store;
use crate::theme::Sample;

/// Adds the demo data to `portal` (an in-memory one, made for this), visits every page it has
/// and returns each page template's context, once per language.
pub async fn collect(portal: Portal) -> Result<Vec<Sample>> {
    crate::demo::seed(&portal)?;
    let themes = portal.themes.clone();
    themes.record(true);
    let rocket = super::build(
        portal,
        super::rocket_config(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
    );
    let client = Client::tracked(rocket)
        .await
        .map_err(|e| Error::Internal(format!("sample portal: {e}")))?;
    let login = &crate::demo::LOGINS[0];
    let post_login = |password: &'static str| {
        client
            .post("/sign/")
            .header(ContentType::Form)
            .header(Header::new("Host", "localhost"))
            .body(format!("username={}&password={password}", login.username))
    };
    // Logged out: the login page (plain and with an error), the forgotten-password page,
    // an error page.
    for path in ["/sign/", "/sign/forgot/", "/no-such-page"] {
        client.get(path).dispatch().await;
    }
    post_login("not-the-password").dispatch().await;
    // Logged in: every tab in the menu, the password tab, an error page with the menu.
    post_login(login.password).dispatch().await;
    client.get("/").dispatch().await;
    let tabs: Vec<String> = themes
        .recorded()
        .iter()
        .filter_map(|(_, ctx)| {
            ctx.get("menu")
                .and_then(|m| m.as_array())
                .map(<[_]>::to_vec)
        })
        .flatten()
        .filter(|item| item.get_from_path("external").and_then(|v| v.as_bool()) != Some(true))
        .filter_map(|item| {
            item.get_from_path("href")
                .and_then(|h| h.as_str())
                .map(str::to_string)
        })
        .collect();
    for path in tabs
        .iter()
        .map(String::as_str)
        .chain(["/password/", "/no-such-page"])
    {
        client.get(path.to_string()).dispatch().await;
    }
    themes.record(false);
    let mut samples = Vec::new();
    for (template, ctx) in themes.recorded() {
        for (lang, _) in LANGUAGES {
            let mut ctx = ctx.clone();
            ctx.insert("lang", lang);
            samples.push(Sample {
                template: template.clone(),
                lang,
                ctx,
            });
        }
    }
    Ok(samples)
}

/// Samples from a fresh in-memory portal assembled with `options` (its data folder unused).
///
/// The private portal's own events (its migrations, the demo's logins and audit rows, a failed
/// login of its client 1) are not the running portal's: they stay out of the log, which would
/// otherwise show a failed login that never happened. Its errors come back as the result.
pub fn collect_blocking(options: crate::portal::PortalOptions) -> Result<Vec<Sample>> {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        let portal = Portal::assemble(Store::in_memory(), options)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("sample runtime: {e}")))?;
        runtime.block_on(collect(portal))
    })
}
