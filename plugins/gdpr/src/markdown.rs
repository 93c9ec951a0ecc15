//! Consent texts are Markdown, rendered for the page without anything that could run or load:
//! raw HTML is dropped, images become their description, and links keep only web, mail and
//! local addresses (any other link is shown as its text).

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// HTML of a Markdown text, safe to insert into a page. Headings start at `<h4>`, below the
/// page's, the section's and the consent's own.
pub fn render(text: &str) -> String {
    let mut dropped_link = false;
    let events = Parser::new_ext(text, Options::empty()).filter_map(move |ev| match ev {
        Event::Html(_) | Event::InlineHtml(_) => None,
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link { dest_url, .. }) if !safe_url(&dest_url) => {
            dropped_link = true;
            None
        }
        Event::End(TagEnd::Link) if dropped_link => {
            dropped_link = false;
            None
        }
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: lower(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(lower(level)))),
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H4,
        HeadingLevel::H2 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

fn safe_url(url: &CowStr<'_>) -> bool {
    let u = url.trim().to_ascii_lowercase();
    u.starts_with("https://")
        || u.starts_with("http://")
        || u.starts_with("mailto:")
        || (u.starts_with('/') && !u.starts_with("//"))
        || u.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_renders_without_html_scripts_or_images() {
        let html = render(
            "# Title\n\nSome **bold** text.\n\n<script>alert(1)</script>\n\n<b onclick=x>hi</b> \
             [ok](https://example.net/) [bad](javascript:alert(1)) ![pic](https://x/y.png)",
        );
        assert!(html.contains("<h4>Title</h4>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.net/\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("bad"), "{html}");
        assert!(html.contains("pic"), "{html}");
    }

    #[test]
    fn text_is_escaped() {
        let html = render("a < b & \"c\"");
        assert!(html.contains("a &lt; b &amp; \"c\""), "{html}");
    }
}
