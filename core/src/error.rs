//! One error type for the whole engine. Each error knows what a client or operator may be told
//! (`public_message`) and what goes to the log (its `Display`, which may carry paths and causes).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data folder {path} is in use by another process")]
    StoreLocked { path: PathBuf },
    #[error("store: {0}")]
    Store(String),
    #[error("stored value in tree `{tree}` at key {key} cannot be decoded: {cause}")]
    Corrupt {
        tree: String,
        key: String,
        cause: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("template: {0}")]
    Template(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What may be shown to whoever caused the error. Internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Invalid(m) => m.clone(),
            Error::NotFound(m) => format!("not found: {m}"),
            Error::StoreLocked { .. } => self.to_string(),
            _ => "internal error; the operator can find details in the log".to_string(),
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}
