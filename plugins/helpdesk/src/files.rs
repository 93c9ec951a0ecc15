//! Attachments: what a client may upload (size, extension allow-list), the names they get, the
//! type they are served with, and the `Content-Disposition` of a download.

/// Moved to core, which serves its own files with them too.
pub use portico_core::plugin::download::{content_type, extension, sanitize_name};

/// The allow-list of the `helpdesk_attachment_types` setting.
pub fn allowed_types(setting: &str) -> Vec<String> {
    setting
        .split([',', ' ', ';'])
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

/// A human size: `512 B`, `3.4 KiB`, `2.0 MiB`.
pub fn size_text(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_allow_list() {
        assert_eq!(allowed_types("pdf, .PNG  jpg"), vec!["pdf", "png", "jpg"]);
        assert_eq!(extension("a.tar.GZ").as_deref(), Some("gz"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension(".pdf"), None);
    }
}
