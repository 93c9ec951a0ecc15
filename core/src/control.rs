//! The local control socket (`DATA/control.sock`) through which operator commands reach a
//! running portal. One JSON request per connection, one JSON reply.
//!
//! Only the portal's own user gets in: the socket is mode 0600 from the moment it exists, each
//! connection's peer uid (SO_PEERCRED) must be the portal's, a request may be at most
//! [`MAX_REQUEST_BYTES`] and must arrive within [`READ_TIMEOUT`].

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::error::{Error, Result};
use crate::ops::{self, OpReply, OpRequest};
use crate::portal::Portal;

/// Requests larger than this are refused. Only an import bundle gets near it; a bigger one is
/// imported with the portal stopped (directly into the store), or split.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024 * 1024;

/// A connection must have sent its whole request within this time; one that sends nothing, or
/// trickles, is answered with an error and closed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

const MIB: u64 = 1024 * 1024;

/// How often a long command's progress is sent to the operator's terminal.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// What the socket accepts. [`serve`] uses [`Limits::standard`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: u64,
    pub read_timeout: Duration,
    /// The one peer uid that is served: the portal's own (effective) uid, the owner of the
    /// socket. Not the data folder's owner: a portal started by root on a folder owned by
    /// someone else must not take orders from that someone.
    pub uid: u32,
}

impl Limits {
    pub fn standard() -> Limits {
        Limits {
            max_request_bytes: MAX_REQUEST_BYTES,
            read_timeout: READ_TIMEOUT,
            uid: rustix::process::geteuid().as_raw(),
        }
    }
}

/// Serves the control socket until the process ends.
pub async fn serve(portal: Arc<Portal>) -> Result<()> {
    serve_with(portal, Limits::standard()).await
}

/// [`serve`] with other limits (tests use short ones).
pub async fn serve_with(portal: Arc<Portal>, limits: Limits) -> Result<()> {
    let path = Portal::control_socket_path(&portal.data_dir);
    let listener = bind_private(&path).map_err(|e| {
        Error::Internal(format!(
            "cannot open control socket {}: {e}",
            path.display()
        ))
    })?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket: {e}");
                continue;
            }
        };
        tokio::spawn(handle(stream, portal.clone(), limits));
    }
}

/// Binds the socket where nobody else can reach it: in a fresh 0700 folder beside its place,
/// made 0600 there, then renamed into place. So it is never reachable by others, whatever the
/// umask. We hold the store lock, so a socket or folder left here belongs to a process that is
/// gone.
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // Short: a socket path must fit in 108 bytes, and this one is no longer than the final one.
    let staging = dir.join(".ctl.new");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let bound = (|| {
        let tmp = staging.join("s");
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}

async fn handle(mut stream: UnixStream, portal: Arc<Portal>, limits: Limits) {
    let reply = match read_request(&mut stream, limits).await {
        Err(text) => OpReply { ok: false, text },
        Ok((req, uid)) => {
            // A long command reports progress: each report is one `{"progress":[done,total]}`
            // line before the reply, at most every PROGRESS_EVERY.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
            let task = tokio::spawn(run(portal, req, uid, tx));
            while let Some((done, total)) = rx.recv().await {
                let line = format!("{{\"progress\":[{done},{total}]}}\n");
                // A client that does not read its progress does not hold the command.
                let _ = tokio::time::timeout(
                    Duration::from_millis(50),
                    stream.write_all(line.as_bytes()),
                )
                .await;
            }
            task.await.unwrap_or_else(|e| {
                tracing::error!("operator command task failed: {e}");
                OpReply {
                    ok: false,
                    text: "the command failed; see the portal log".into(),
                }
            })
        }
    };
    let bytes = serde_json::to_vec(&reply).unwrap_or_default();
    // A client that does not read its reply does not hold the task either.
    let _ = tokio::time::timeout(limits.read_timeout, stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
}

fn release_memory(portal: &Portal) {
    let started = std::time::Instant::now();
    match portal
        .store
        .release_memory_after(portal.release_memory_after_writes)
    {
        Ok(true) => {
            if let Some(give_back) = portal.give_back_memory {
                give_back();
            }
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "store reopened after a bulk write to give back its memory"
            )
        }
        Ok(false) => {}
        Err(e) => tracing::error!("store reopen after a bulk write failed: {e}"),
    }
}

/// Checks who is asking, then reads one request within the size and time limits. Returns the
/// request and the asker's uid.
async fn read_request(
    stream: &mut UnixStream,
    limits: Limits,
) -> std::result::Result<(OpRequest, u32), String> {
    let uid = match stream.peer_cred() {
        Ok(cred) if cred.uid() == limits.uid => cred.uid(),
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = ?cred.pid(),
                "control socket: refused a connection from another user"
            );
            return Err(format!(
                "refused: operator commands must run as the portal's user (uid {}), not uid {}",
                limits.uid,
                cred.uid()
            ));
        }
        Err(e) => return Err(format!("refused: cannot tell who is asking ({e})")),
    };
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        limits.read_timeout,
        (&mut *stream)
            .take(limits.max_request_bytes + 1)
            .read_to_end(&mut buf),
    )
    .await;
    match read {
        Err(_) => {
            tracing::warn!(
                "control socket: no complete request within {} s; connection closed",
                limits.read_timeout.as_secs_f32()
            );
            Err(format!(
                "no complete request within {} s",
                limits.read_timeout.as_secs_f32()
            ))
        }
        Ok(Err(e)) => Err(format!("cannot read request: {e}")),
        Ok(Ok(_)) if buf.len() as u64 > limits.max_request_bytes => {
            Err(too_big(None, limits.max_request_bytes))
        }
        Ok(Ok(_)) => serde_json::from_slice(&buf)
            .map(|req| (req, uid))
            .map_err(|e| format!("bad request: {e}")),
    }
}

/// The operator's message for a request over the limit (`size` when known).
fn too_big(size: Option<u64>, max: u64) -> String {
    let size = size.map_or_else(
        || "larger than".to_string(),
        |s| format!("{} MiB, more than", s.div_ceil(MIB)),
    );
    let max = if max.is_multiple_of(MIB) {
        format!("{} MiB", max / MIB)
    } else {
        format!("{max} bytes")
    };
    format!(
        "the request is {size} the {max} a running portal accepts through its control socket. \
         To import a bundle this big, stop the portal and run `portico import` again (it then \
         writes to the data folder directly), or split the bundle into smaller files."
    )
}

/// Runs a request for the socket's peer: the audit log and the log line name that user.
async fn run(
    portal: Arc<Portal>,
    req: OpRequest,
    uid: u32,
    progress: tokio::sync::mpsc::UnboundedSender<(usize, usize)>,
) -> OpReply {
    let what = req.describe();
    let who = ops::Operator::from_uid(uid);
    let (answer, answered) = tokio::sync::oneshot::channel();
    let blocking = move || {
        let mut last: Option<std::time::Instant> = None;
        let result = ops::execute_with_progress(&portal, req, &who, &mut |done, total| {
            if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done >= total {
                last = Some(std::time::Instant::now());
                let _ = progress.send((done, total));
            }
        });
        // The operator gets the answer now; what follows only tidies up.
        drop(progress);
        let _ = answer.send(result);
        // After a bulk import the store gives back the memory sled keeps from its writes. On
        // this thread: the allocator returns freed memory to the system from the thread that
        // allocated it, and that is the one that ran the import.
        release_memory(&portal);
    };
    tokio::task::spawn_blocking(blocking);
    match answered.await {
        Ok(Ok(text)) => OpReply { ok: true, text },
        Ok(Err(e)) => OpReply {
            ok: false,
            text: e.to_string(),
        },
        Err(_) => {
            tracing::error!("operator command {what} failed: it stopped without an answer");
            OpReply {
                ok: false,
                text: "the command failed; see the portal log".into(),
            }
        }
    }
}

/// Sends one request to the portal running on `data_dir`.
pub fn request(data_dir: &Path, req: &OpRequest) -> Result<OpReply> {
    request_with_progress(data_dir, req, &mut |_, _| {})
}

/// [`request`], calling `progress(done, total)` as the portal reports how far it is.
pub fn request_with_progress(
    data_dir: &Path,
    req: &OpRequest,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<OpReply> {
    let body = serde_json::to_vec(req).map_err(|e| Error::Internal(e.to_string()))?;
    if body.len() as u64 > MAX_REQUEST_BYTES {
        return Err(Error::Invalid(too_big(
            Some(body.len() as u64),
            MAX_REQUEST_BYTES,
        )));
    }
    let path = Portal::control_socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        Error::Invalid(format!(
            "the data folder {} is in use by another process, and its control socket {} does not answer ({e}). \
             Is a portal still starting or stopping there? Try again, or stop that process.",
            data_dir.display(),
            path.display()
        ))
    })?;
    // The portal may answer before it has read everything (a refusal): its answer is what the
    // operator needs, so it is read even when sending failed.
    let sent = stream
        .write_all(&body)
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let mut out = Vec::new();
    let received = read_reply(stream, &mut out, progress);
    match serde_json::from_slice(&out) {
        Ok(reply) => Ok(reply),
        Err(_) if out.is_empty() && received.is_ok() => Err(Error::Invalid(format!(
            "the portal on {} closed the connection without an answer (is it stopping?). The command may or may not have been carried out: check, then try again.",
            data_dir.display()
        ))),
        Err(e) => {
            sent?;
            received?;
            Err(Error::Internal(format!("bad reply from the portal: {e}")))
        }
    }
}

/// Reads the portal's answer into `out`: progress lines go to `progress`, the rest (the
/// reply) is kept.
fn read_reply(
    stream: std::os::unix::net::UnixStream,
    out: &mut Vec<u8>,
    progress: &mut dyn FnMut(usize, usize),
) -> std::io::Result<()> {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct Progress {
        progress: (usize, usize),
    }
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.ends_with(b"\n")
            && let Ok(p) = serde_json::from_slice::<Progress>(&line)
        {
            progress(p.progress.0, p.progress.1);
            continue;
        }
        out.extend_from_slice(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::PortalOptions;
    use crate::store::Store;
    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    fn portal(dir: &Path) -> Arc<Portal> {
        Arc::new(
            Portal::assemble(Store::in_memory(), PortalOptions::new(dir, Vec::new()))
                .expect("assemble"),
        )
    }

    /// Serves a socket in a fresh folder with `limits`; returns the folder and socket path.
    async fn start(limits: Limits) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Portal::control_socket_path(dir.path());
        tokio::spawn(serve_with(portal(dir.path()), limits));
        let start = Instant::now();
        while !path.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "socket appears");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (dir, path)
    }

    fn limits() -> Limits {
        Limits {
            max_request_bytes: 1024,
            read_timeout: Duration::from_millis(300),
            ..Limits::standard()
        }
    }

    /// Sends `body` (then end of input) and returns the reply.
    async fn ask(path: &Path, body: &[u8]) -> OpReply {
        let mut s = UnixStream::connect(path).await.expect("connect");
        // The portal may close before reading everything: that is not the test's concern.
        let _ = s.write_all(body).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        serde_json::from_slice(&out).expect("a JSON reply")
    }

    #[test]
    fn the_limits_are_64_mib_and_30_seconds() {
        assert_eq!(MAX_REQUEST_BYTES, 64 * 1024 * 1024);
        assert_eq!(READ_TIMEOUT, Duration::from_secs(30));
        assert_eq!(Limits::standard().uid, rustix::process::geteuid().as_raw());
    }

    #[tokio::test]
    async fn the_socket_is_private_from_the_start_and_nothing_is_left_beside_it() {
        let (dir, path) = start(limits()).await;
        let meta = std::fs::symlink_metadata(&path).expect("socket");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["control.sock"]);
        let reply = ask(&path, br#"{"op":"plugins_list"}"#).await;
        assert!(reply.ok && reply.text.contains("core"), "{reply:?}");
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_answered_and_closed_after_the_timeout() {
        let (_dir, path) = start(limits()).await;
        let mut s = UnixStream::connect(&path).await.expect("connect");
        let started = Instant::now();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the portal closes an idle connection")
            .expect("read");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let reply: OpReply = serde_json::from_slice(&out).expect("reply");
        assert!(!reply.ok);
        assert_eq!(reply.text, "no complete request within 0.3 s");
    }

    #[tokio::test]
    async fn a_request_over_the_limit_is_refused_and_one_at_the_limit_is_served() {
        let (_dir, path) = start(limits()).await;
        let mut at_limit = br#"{"op":"plugins_list"}"#.to_vec();
        at_limit.resize(1024, b' ');
        let reply = ask(&path, &at_limit).await;
        assert!(reply.ok, "{reply:?}");
        at_limit.push(b' ');
        let reply = ask(&path, &at_limit).await;
        assert!(!reply.ok);
        assert!(
            reply
                .text
                .starts_with("the request is larger than the 1024 bytes a running portal accepts"),
            "{}",
            reply.text
        );
        assert!(reply.text.contains("stop the portal"), "{}", reply.text);
    }

    #[tokio::test]
    async fn another_user_is_refused() {
        let own = rustix::process::geteuid().as_raw();
        let (_dir, path) = start(Limits {
            uid: own.wrapping_add(1),
            ..limits()
        })
        .await;
        let reply = ask(&path, br#"{"op":"plugins_list"}"#).await;
        assert!(!reply.ok);
        assert_eq!(
            reply.text,
            format!(
                "refused: operator commands must run as the portal's user (uid {}), not uid {own}",
                own.wrapping_add(1)
            )
        );
    }

    #[test]
    fn the_client_refuses_a_request_over_64_mib_before_sending_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = "x".repeat(MAX_REQUEST_BYTES as usize);
        let e = request(
            dir.path(),
            &OpRequest::Import {
                json,
                sync: false,
                dry_run: false,
            },
        )
        .expect_err("too big");
        assert!(
            e.to_string().starts_with(
                "the request is 65 MiB, more than the 64 MiB a running portal accepts"
            ),
            "{e}"
        );
    }
}
