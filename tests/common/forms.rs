//! Multipart forms as the portal's upload forms take them (the helpdesk's ticket and reply
//! forms): the body, the form's one-time key, and "open the page, fill its form, post it".

use super::{Server, csrf_of};

/// A `multipart/form-data` body by hand: text fields, then files (field, file name, bytes).
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----portico-test-boundary-7d1a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The hidden `key` of the page's form.
pub fn key_of(html: &str) -> String {
    let marker = "name=\"key\" value=\"";
    let start = html.find(marker).expect("page has a key field") + marker.len();
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

/// Posts a multipart form; returns (status, location, body).
pub async fn post(
    s: &Server,
    c: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> (u16, String, String) {
    let (ct, body) = multipart(fields, files);
    let r = c
        .post(s.url(path))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_string())
        .unwrap_or_default();
    (status, location, r.text().await.expect("body"))
}

/// Opens `form_page`, fills its form (csrf and key from the page) and posts it to `action`.
pub async fn submit(
    s: &Server,
    c: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> (u16, String, String) {
    let (status, html) = s.get_text(c, form_page).await;
    assert_eq!(status, 200, "{form_page}: {html}");
    let (csrf, key) = (csrf_of(&html), key_of(&html));
    let mut all = vec![("csrf", csrf.as_str()), ("key", key.as_str())];
    all.extend_from_slice(fields);
    post(s, c, action, &all, files).await
}
