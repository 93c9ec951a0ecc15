//! Forms with files (`multipart/form-data`) for the routes of a plugin that registered an
//! upload limit ([`crate::registry::Registrar::upload_limit`]). The body is read up to that
//! limit (core's small form limit everywhere else), the session's form token is checked as for
//! every form, and the handler gets the text fields and the files in memory.

use rocket::data::{FromData, Outcome, ToByteUnit};
use rocket::http::Status;
use rocket::request::Request;

use super::FORM_LIMIT_BYTES;
use super::guards::{signed_in, tokens_match};

/// Longest text field of an upload form.
const MAX_TEXT_FIELD: usize = 64 * 1024;
/// Most parts (fields and files) an upload form may have.
const MAX_PARTS: usize = 64;

/// One uploaded file, as the browser sent it: its name is the browser's and is not safe to use
/// as a path or header as it is.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The form field it came in.
    pub field: String,
    pub file_name: String,
    /// The type the browser claimed (not checked).
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of an upload form.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub fields: Vec<(String, String)>,
    /// Files with a name and content; an empty file input is left out.
    pub files: Vec<UploadedFile>,
}

impl Upload {
    /// The first value of a text field.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An upload form whose `csrf` field is the session's token (see [`super::guards::CheckedForm`]).
/// Take it as `Result<CheckedUpload, UploadRefused>`.
pub struct CheckedUpload(pub Upload);

/// Why an upload form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefused {
    /// Not a readable `multipart/form-data` body.
    Form,
    /// Larger than the plugin's upload limit (or a text field over 64 KiB).
    TooLarge,
    /// A logged-in client's form without the session's token.
    Token,
}

impl UploadRefused {
    pub fn status(&self) -> Status {
        match self {
            UploadRefused::Form => Status::BadRequest,
            UploadRefused::TooLarge => Status::PayloadTooLarge,
            UploadRefused::Token => Status::Forbidden,
        }
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for CheckedUpload {
    type Error = UploadRefused;

    async fn from_data(req: &'r Request<'_>, data: rocket::Data<'r>) -> Outcome<'r, Self> {
        use rocket::outcome::Outcome as O;
        let refuse = |why: UploadRefused| O::Error((why.status(), why));
        let boundary = match req.content_type() {
            Some(ct) if ct.is_form_data() => ct.param("boundary").map(str::to_string),
            _ => None,
        };
        let Some(boundary) = boundary else {
            return refuse(UploadRefused::Form);
        };
        let limit = super::guards::portal(req)
            .and_then(|p| p.registry.upload_limit_for(req.uri().path().as_str()))
            .unwrap_or(FORM_LIMIT_BYTES);
        let body = match data.open(limit.bytes()).into_bytes().await {
            Ok(b) if b.is_complete() => b.into_inner(),
            Ok(_) => return refuse(UploadRefused::TooLarge),
            Err(_) => return refuse(UploadRefused::Form),
        };
        let upload = match parse(body, &boundary).await {
            Ok(u) => u,
            Err(why) => return refuse(why),
        };
        if let Some(s) = signed_in(req)
            && !tokens_match(upload.value("csrf").unwrap_or(""), &s.session.csrf_token)
        {
            return refuse(UploadRefused::Token);
        }
        O::Success(CheckedUpload(upload))
    }
}

async fn parse(body: Vec<u8>, boundary: &str) -> Result<Upload, UploadRefused> {
    let mut mp = multer::Multipart::with_reader(std::io::Cursor::new(body), boundary);
    let mut out = Upload::default();
    let mut parts = 0;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(UploadRefused::Form),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(UploadRefused::Form);
        }
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.essence_str().to_string());
        let bytes = field.bytes().await.map_err(|_| UploadRefused::Form)?;
        match file_name {
            Some(file_name) => {
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                out.files.push(UploadedFile {
                    field: name,
                    file_name,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            None => {
                if bytes.len() > MAX_TEXT_FIELD {
                    return Err(UploadRefused::TooLarge);
                }
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| UploadRefused::Form)?;
                out.fields.push((name, text));
            }
        }
    }
    Ok(out)
}
