//! The Contact tab: `ci_contact_text` (global, or the client's invoice group's) as Markdown,
//! rendered to HTML and sanitized, once per text: the HTML is kept keyed by the text itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rocket::{Route, get, routes};
use serde::Serialize;

use super::page::{Page, PageHtml};
use crate::error::Error;

pub fn routes() -> Vec<Route> {
    routes![contact]
}

/// Texts whose HTML is kept (one per invoice group at most, in practice); past this the cache
/// starts again.
const CACHE_ENTRIES: usize = 64;

type Cache = Mutex<HashMap<String, Arc<str>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// The sanitized HTML of a Markdown text, rendered the first time this text is seen.
pub fn html(text: &str) -> Arc<str> {
    if let Ok(c) = cache().lock()
        && let Some(html) = c.get(text)
    {
        return html.clone();
    }
    let html: Arc<str> = render(text).into();
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHE_ENTRIES {
            c.clear();
        }
        c.insert(text.to_string(), html.clone());
    }
    html
}

/// Markdown to HTML (CommonMark with tables and strikethrough; headings one level down), then ammonia's sanitizer: no
/// script, style or event attribute survives, links keep only http(s), mailto and tel and get
/// `rel="noopener"`, images only http(s).
pub fn render(text: &str) -> String {
    use pulldown_cmark::{Event, HeadingLevel as H, Options, Parser, Tag, TagEnd, html};
    // The page's own title is the <h1>: the text's headings start one level below it.
    let lower = |l: H| match l {
        H::H1 => H::H2,
        H::H2 => H::H3,
        H::H3 => H::H4,
        H::H4 => H::H5,
        _ => H::H6,
    };
    let events =
        Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|ev| {
            match ev {
                Event::Start(Tag::Heading {
                    level,
                    id,
                    classes,
                    attrs,
                }) => Event::Start(Tag::Heading {
                    level: lower(level),
                    id,
                    classes,
                    attrs,
                }),
                Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level))),
                other => other,
            }
        });
    let mut raw = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut raw, events);
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto", "tel"].into())
        .link_rel(Some("noopener"))
        .clean(&raw)
        .to_string()
}

#[derive(Serialize)]
struct ContactView<'a> {
    html: &'a str,
}

#[get("/contact")]
fn contact(page: Page<'_>) -> Result<PageHtml, Error> {
    let text = page.text("ci_contact_text");
    if text.trim().is_empty() {
        return Err(Error::NotFound(
            "contact tab (ci_contact_text is empty)".into(),
        ));
    }
    let html = html(&text);
    page.render("contact", "contact.html", &ContactView { html: &html })
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered_and_made_inert() {
        let html = render(
            "# Call us\n\n**Mon–Fri** 8–16\n\n<script>alert(1)</script>\n\n\
             <b onclick=\"alert(2)\" onmouseover=x>hi</b> <img src=x onerror=alert(3)>\n\n\
             [ok](https://isp.example/) [bad](javascript:alert(4)) \
             <a href=\"JaVaScRiPt:alert(5)\">raw</a> <iframe src=\"https://x\"></iframe>",
        );
        assert!(html.contains("<h2>Call us</h2>"), "{html}");
        assert!(html.contains("<strong>Mon–Fri</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(1)"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("onmouseover"), "{html}");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("<iframe"), "{html}");
        assert!(
            html.contains("<a href=\"https://isp.example/\" rel=\"noopener\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("<b>hi</b>"), "{html}");
    }

    #[test]
    fn same_text_same_html_once() {
        let a = super::html("Same *text*");
        let b = super::html("Same *text*");
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
