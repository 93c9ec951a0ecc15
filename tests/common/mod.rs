//! Test harness: runs the real `portico` binary on a temp data folder and talks to it over HTTP.
#![allow(dead_code)]

pub mod forms;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_portico");

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `portico ARGS` to completion with optional stdin; returns (success, stdout, stderr).
pub fn portico(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("PORTICO_LOG", "warn")
        // The harness's own variable, not a setting: the portal would warn about it.
        .env_remove("PORTICO_TEST_PYTHON")
        .current_dir(std::env::temp_dir())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn portico");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait portico");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running portal on a temp data folder, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    data: Option<tempfile::TempDir>,
    pub log: PathBuf,
    pub themes: PathBuf,
}

/// How to start a test portal.
#[derive(Default, Clone)]
pub struct Options {
    pub themes: Option<PathBuf>,
    pub smtp_url: Option<String>,
    /// Folder of dynamic plugins (`--plugin-dir`).
    pub plugin_dir: Option<PathBuf>,
    /// `--dev`: live reload of open pages when the theme changes.
    pub dev: bool,
    /// Operator scripts folder (`--scripts`).
    pub scripts: Option<PathBuf>,
    /// `--test-release-memory-after N`: reopen the store after an operator command once N
    /// records were written.
    pub release_memory_after: Option<u64>,
}

impl Server {
    /// `portico demo` on a fresh folder with the repository's themes.
    pub fn demo() -> Server {
        Self::demo_with(Options::default())
    }

    pub fn demo_with_themes(themes: &Path) -> Server {
        Self::demo_with(Options {
            themes: Some(themes.to_path_buf()),
            ..Options::default()
        })
    }

    pub fn demo_with(opts: Options) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        Self::start("demo", data, opts)
    }

    /// `portico demo` in a folder the test prepared (the portal's cwd: a `portico.toml` there is
    /// read); the store goes into its `portal` subfolder.
    pub fn demo_in(data: tempfile::TempDir, opts: Options) -> Server {
        Self::start("demo", data, opts)
    }

    /// `portico serve` on an existing data folder (from [`Server::stop`]).
    pub fn serve(data: tempfile::TempDir, opts: Options) -> Server {
        Self::start("serve", data, opts)
    }

    /// Stops the portal and hands back its data folder for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data.take().expect("data folder")
    }

    /// Sends SIGTERM and waits at most `limit` for the portal to exit; returns how long it
    /// took, or `None` if it was still running (it is killed then).
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM failed");
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    fn root(&self) -> &Path {
        self.data.as_ref().expect("data folder").path()
    }

    /// Moves the portal's clock forward (tests only: `--test-clock-offset-file`).
    pub fn advance_clock(&self, seconds: i64) {
        let file = self.root().join("clock-offset");
        let now: i64 = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        // Replaced whole (a rename), never truncated and rewritten: the portal reads the file at
        // every clock reading, and a read between the two would see no offset at all.
        let next = self.root().join("clock-offset.next");
        std::fs::write(&next, (now + seconds).to_string()).expect("write clock offset");
        std::fs::rename(&next, &file).expect("replace clock offset");
    }

    fn start(mode: &str, data: tempfile::TempDir, opts: Options) -> Server {
        let themes = opts
            .themes
            .clone()
            .unwrap_or_else(|| repo_root().join("themes"));
        let themes = themes.as_path();
        let log = data.path().join(format!(
            "portal-{}.log",
            std::process::id() as u64 * 1000 + rand_suffix()
        ));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.env_remove("PORTICO_TEST_PYTHON")
            .args([mode, "--bind", "127.0.0.1:0", "--data"])
            .arg(data.path().join("portal"))
            .arg("--themes")
            .arg(themes)
            .arg("--test-clock-offset-file")
            .arg(data.path().join("clock-offset"))
            .env("PORTICO_LOG", "info")
            .env_remove("PORTICO_SMTP_URL")
            .current_dir(data.path())
            .stdout(Stdio::piped())
            .stderr(log_file);
        if let Some(url) = &opts.smtp_url {
            cmd.env("PORTICO_SMTP_URL", url);
        }
        if let Some(dir) = &opts.plugin_dir {
            cmd.arg("--plugin-dir").arg(dir);
        }
        if opts.dev {
            cmd.arg("--dev");
        }
        if let Some(dir) = &opts.scripts {
            cmd.arg("--scripts").arg(dir);
        }
        if let Some(n) = opts.release_memory_after {
            cmd.arg("--test-release-memory-after").arg(n.to_string());
        }
        let mut child = cmd.spawn().expect("spawn portico");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Portico is serving at ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('/')
                        .to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "portal did not start; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            base,
            data: Some(data),
            log,
            themes: themes.to_path_buf(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("portal")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an operator command against this portal's data folder (it goes through the socket).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let data = self.data_dir();
        let mut all: Vec<&str> = args.to_vec();
        all.push("--data");
        all.push(data.to_str().expect("utf-8 path"));
        portico(&all, None)
    }

    /// Runs an operator command that must succeed; returns what it printed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "portico {} failed: {err}{out}", args.join(" "));
        out
    }

    /// A browser-like HTTP client with its own cookie jar that does not follow redirects. Like
    /// a browser it says where its posts come from (`Origin`: this portal).
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "Origin",
            reqwest::header::HeaderValue::from_str(&self.base).expect("origin"),
        );
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A client logged in as `user`.
    pub async fn login(&self, user: &str, password: &str) -> reqwest::Client {
        let c = self.client();
        let r = c
            .post(self.url("/sign/"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .expect("post login");
        assert_eq!(r.status(), 303, "login as {user} should redirect");
        c
    }

    /// Logs in with an operator-set (one-time) password and chooses `own` as the new password,
    /// as the portal requires before showing anything else.
    pub async fn login_one_time(&self, user: &str, one_time: &str, own: &str) -> reqwest::Client {
        let c = self.login(user, one_time).await;
        let (status, html) = self.get_text(&c, "/password/").await;
        assert_eq!(status, 200);
        let r = c
            .post(self.url("/password/"))
            .form(&[
                ("csrf", csrf_of(&html).as_str()),
                ("new", own),
                ("repeat", own),
            ])
            .send()
            .await
            .expect("post password");
        assert_eq!(r.status(), 200, "new password accepted");
        c
    }

    pub async fn get_text(&self, c: &reqwest::Client, path: &str) -> (u16, String) {
        let r = c.get(self.url(path)).send().await.expect("get");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Waits until `f` returns true, checking every 25 ms for at most `limit`; returns the time it took.
    pub async fn wait_for<F, Fut>(limit: Duration, mut f: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < limit {
            if f().await {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A real SMTP server (Python's aiosmtpd from the test venv) writing each mail to a maildir.
pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    match std::env::var_os("PORTICO_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join(".venv/bin/python"),
    }
}

impl Smtp {
    pub fn start() -> Smtp {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Smtp {
        let dir = tempfile::tempdir().expect("maildir");
        let child = Command::new(python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd must be installed: ./test.sh creates .venv with it");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every received mail, raw, with quoted-printable bodies decoded.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(|raw| decode_quoted_printable(&String::from_utf8_lossy(&raw)))
            .collect()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= count {
                return m;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "expected {count} mail(s), got {}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Soft line breaks removed and `=XX` bytes decoded (good enough for test mails).
pub fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password link in a mail.
pub fn link_in(mail: &str) -> String {
    let at = mail
        .find("/sign/password/")
        .expect("mail has a password link");
    let start = mail[..at].rfind("http").expect("absolute link");
    let token_start = at + "/sign/password/".len();
    mail[start..token_start + 64].to_string()
}

/// The CSRF token in a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a csrf field") + marker.len();
    html[start..start + 64].to_string()
}

/// Copies a folder tree (for editing themes in a test without touching the repository).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Sends `request` byte for byte over a new TCP connection to the portal at `base`
/// (`http://host:port`) and returns what comes back until the server closes (at most 10 s).
/// For input an HTTP client would normalise (`..` in paths) or never send.
pub fn raw_http(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP response (0 when there is none).
pub fn raw_status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
