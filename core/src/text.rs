//! Text that came from clients or imports, made safe to print on an operator's terminal.
//!
//! A login name typed at the login form, a client name from the billing system or a mail
//! subject could carry ESC sequences (clear the screen, retitle the window, fake a prompt), a
//! CR that overwrites the start of its line, a LF that forges a line, or a bidi override that
//! reorders what the operator reads. Listings pass such fields through [`escape`] first.

use std::borrow::Cow;

/// Whether a character is escaped: C0 controls (tab, CR, LF and ESC among them), DEL, C1
/// controls (U+0080-U+009F), the line and paragraph separators and the bidi marks, embeddings,
/// overrides and isolates.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// One field for one line of a listing: each unsafe character as a visible escape (`\r`,
/// `\n`, `\t`, `\x1b`, `\u{202e}`), everything else as it is. Backslashes are left alone, so
/// ordinary values print unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_except(s, &[])
}

/// Like [`escape`] but keeps line breaks, for text that has lines of its own (a mail body).
pub fn escape_keeping_lines(s: &str) -> Cow<'_, str> {
    escape_except(s, &['\n'])
}

fn escape_except<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| unsafe_char(c) && !keep.contains(&c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) || keep.contains(&c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_visible_escapes() {
        assert_eq!(escape("\u{1b}[2Jroot"), "\\x1b[2Jroot");
        assert_eq!(escape("a\rb\nc\td\u{7}e\u{7f}"), "a\\rb\\nc\\td\\x07e\\x7f");
        assert_eq!(escape("x\u{85}y\u{9b}z"), "x\\u{85}y\\u{9b}z");
        assert_eq!(
            escape("invoice\u{202e}fdp.exe\u{2066}\u{2028}"),
            "invoice\\u{202e}fdp.exe\\u{2066}\\u{2028}"
        );
        assert_eq!(
            escape_keeping_lines("Hello\n\u{1b}]0;x\u{7}\r\n"),
            "Hello\n\\x1b]0;x\\x07\\r\n"
        );
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for s in ["Bob Dvořák", "C:\\path\\x1b", "žluťoučký kůň", "日本", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }
}
