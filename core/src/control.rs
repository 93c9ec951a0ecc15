//! The local control socket (`DATA/control.sock`, mode 0600) through which operator commands
//! reach a running portal. One JSON request per connection, one JSON reply.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::ops::{self, OpReply, OpRequest};
use crate::portal::Portal;

/// Requests larger than this (an import bundle, mostly) are refused.
const MAX_REQUEST_BYTES: u64 = 1024 * 1024 * 1024;

/// Serves the control socket until the process ends.
pub async fn serve(portal: Arc<Portal>) -> Result<()> {
    let path = Portal::control_socket_path(&portal.data_dir);
    // We hold the store lock, so a socket file left here belongs to a process that is gone.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
        Error::Internal(format!(
            "cannot open control socket {}: {e}",
            path.display()
        ))
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket: {e}");
                continue;
            }
        };
        let portal = portal.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let read = (&mut stream)
                .take(MAX_REQUEST_BYTES)
                .read_to_end(&mut buf)
                .await;
            let reply = match read {
                Err(e) => OpReply {
                    ok: false,
                    text: format!("cannot read request: {e}"),
                },
                Ok(_) => match serde_json::from_slice::<OpRequest>(&buf) {
                    Err(e) => OpReply {
                        ok: false,
                        text: format!("bad request: {e}"),
                    },
                    Ok(req) => {
                        let what = format!("{:?}", std::mem::discriminant(&req));
                        let res =
                            tokio::task::spawn_blocking(move || ops::execute(&portal, req)).await;
                        match res {
                            Ok(Ok(text)) => OpReply { ok: true, text },
                            Ok(Err(e)) => OpReply {
                                ok: false,
                                text: e.to_string(),
                            },
                            Err(e) => {
                                tracing::error!("operator command {what} failed: {e}");
                                OpReply {
                                    ok: false,
                                    text: "the command failed; see the portal log".into(),
                                }
                            }
                        }
                    }
                },
            };
            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Sends one request to the portal running on `data_dir`.
pub fn request(data_dir: &Path, req: &OpRequest) -> Result<OpReply> {
    let path = Portal::control_socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        Error::Invalid(format!(
            "the data folder {} is in use by another process, and its control socket {} does not answer ({e}). \
             Is a portal still starting or stopping there? Try again, or stop that process.",
            data_dir.display(),
            path.display()
        ))
    })?;
    let body = serde_json::to_vec(req).map_err(|e| Error::Internal(e.to_string()))?;
    stream.write_all(&body)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    serde_json::from_slice(&out)
        .map_err(|e| Error::Internal(format!("bad reply from the portal: {e}")))
}
