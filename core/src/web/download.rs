//! Files to save: safe names, the type from the extension, and the `Content-Disposition` of a
//! download (RFC 6266), with the [`Download`] responder (never inline, never cached). Used by
//! core's Files and by plugins (the helpdesk's attachments).

use rocket::Request;
use rocket::http::{ContentType, Header};
use rocket::response::{self, Responder, Response};

/// Longest stored file name (in characters), extension included.
const MAX_NAME: usize = 100;

/// A file name safe to store and to show: the last path part only, no control characters,
/// only letters, digits, spaces and `._-()+`, no leading dots; at most 100 characters with
/// the extension kept. An empty result becomes `attachment`.
pub fn sanitize_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::new();
    for c in base.chars() {
        if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '(' | ')' | '+') {
            out.push(c);
        } else if (c == ' ' || c.is_whitespace() || !c.is_control()) && !out.ends_with('_') {
            out.push(if c == ' ' { ' ' } else { '_' });
        }
    }
    let trimmed = out.trim().trim_start_matches(['.', ' ']).to_string();
    let mut name = if trimmed.is_empty() || trimmed.chars().all(|c| c == '.' || c == '_') {
        "attachment".to_string()
    } else {
        trimmed
    };
    if name.chars().count() > MAX_NAME {
        let ext = extension(&name)
            .map(|e| format!(".{e}"))
            .filter(|e| e.chars().count() <= 10)
            .unwrap_or_default();
        let keep = MAX_NAME - ext.chars().count();
        name = name.chars().take(keep).collect::<String>() + ext.as_str();
    }
    name
}

/// The extension, lowercase, without the dot.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The type a file is served with, from its (allowed) extension; anything not known here is
/// served as bytes to save.
pub fn content_type(ext: &str) -> &'static str {
    match ext {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "log" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "zip" => "application/zip",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '(' | ')' | '+' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A file to save, never shown inline and never cached.
pub struct Download {
    /// A safe name ([`sanitize_name`]).
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl<'r> Responder<'r, 'static> for Download {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let ct = ContentType::parse_flexible(&self.content_type).unwrap_or(ContentType::Binary);
        Response::build()
            .header(ct)
            .header(Header::new(
                "Content-Disposition",
                content_disposition(&self.name),
            ))
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(self.bytes.len(), std::io::Cursor::new(self.bytes))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_name(".htaccess"), "htaccess");
        assert_eq!(sanitize_name("a\"b<script>.png"), "a_b_script_.png");
        assert_eq!(sanitize_name("smlouva č. 5.pdf"), "smlouva č. 5.pdf");
        assert_eq!(sanitize_name("line\r\nbreak.txt"), "line_break.txt");
        assert_eq!(sanitize_name(""), "attachment");
        assert_eq!(sanitize_name("..."), "attachment");
        let long = format!("{}.pdf", "x".repeat(300));
        let s = sanitize_name(&long);
        assert_eq!(s.chars().count(), 100);
        assert!(s.ends_with(".pdf"));
    }

    #[test]
    fn downloads_are_attachments_with_both_name_forms() {
        assert_eq!(
            content_disposition("zpráva \"1\".pdf"),
            "attachment; filename=\"zpr_va _1_.pdf\"; filename*=UTF-8''zpr%C3%A1va%20%221%22.pdf"
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("a.tar.GZ").as_deref(), Some("gz"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension(".pdf"), None);
    }
}
