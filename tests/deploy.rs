//! Safe starts and stops, and Portico behind Debian's nginx as a TLS proxy with
//! contrib/nginx.conf.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Options, Server, free_port, portico, repo_root};

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn themes() -> String {
    repo_root().join("themes").to_string_lossy().into_owned()
}

#[test]
fn serve_refuses_a_folder_without_a_store_unless_init() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("typo/data");
    let (ok, out, err) = portico(
        &["serve", "--data", arg(&missing), "--bind", "127.0.0.1:0"],
        None,
    );
    assert!(!ok && out.is_empty());
    assert!(
        err.starts_with(&format!(
            "error: there is no Portico store in {}. Check --data",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("portico serve --init --data"), "{err}");
    assert!(err.contains("portico restore FILE --data"), "{err}");
    // An empty folder (say, a disk that is not mounted) is refused the same way.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let (ok, _, err) = portico(
        &["serve", "--data", arg(&empty), "--bind", "127.0.0.1:0"],
        None,
    );
    assert!(!ok && err.contains("there is no Portico store in"), "{err}");
    assert_eq!(names_in(tmp.path()), ["empty"], "nothing was created");
    assert!(names_in(&empty).is_empty());

    // --init creates it and serves.
    let mut child = Command::new(common::BIN)
        .env_remove("PORTICO_TEST_PYTHON")
        .args([
            "serve",
            "--init",
            "--data",
            arg(&empty),
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--themes", &themes()])
        .env("PORTICO_LOG", "warn")
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("Portico is serving at "), "{line}");
    assert!(empty.join("store").is_dir());
}

#[test]
fn a_failed_start_leaves_no_new_folder_behind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--bind", &port]);
        let (ok, _, err) = portico(&all, None);
        assert!(!ok, "{args:?} must fail");
        err
    };
    let themes = themes();
    // Port in use: serve --init on a new folder, demo on a new folder, --init on an empty one.
    let new = tmp.path().join("new/data");
    let err = run(&["serve", "--init", "--data", arg(&new), "--themes", &themes]);
    assert!(err.contains(&format!("cannot serve on {port}")), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
    let demo = tmp.path().join("demo");
    let err = run(&["demo", "--data", arg(&demo), "--themes", &themes]);
    assert!(err.contains("Address already in use"), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    run(&[
        "serve",
        "--init",
        "--data",
        arg(&empty),
        "--themes",
        &themes,
    ]);
    assert_eq!(names_in(tmp.path()), ["empty"], "no new folder");
    assert!(names_in(&empty).is_empty(), "the empty folder stays empty");

    // A bad configuration.
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "bind = \"localhost\"\n").expect("write");
    let (ok, _, err) = portico(
        &[
            "serve",
            "--init",
            "--config",
            arg(&config),
            "--data",
            arg(&new),
        ],
        None,
    );
    assert!(!ok && err.contains("configuration:"), "{err}");
    assert_eq!(names_in(tmp.path()), ["bad.toml", "empty"]);

    // A start that fails on an existing store leaves the store as it was.
    drop(taken);
    let s = Server::demo();
    let data = s.data_dir();
    let root = s.stop();
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blocker.local_addr().expect("addr").to_string();
    let (ok, _, _) = portico(
        &[
            "serve",
            "--data",
            arg(&data),
            "--bind",
            &port,
            "--themes",
            &themes,
        ],
        None,
    );
    assert!(!ok);
    assert!(data.join("store").is_dir(), "the store is kept");
    let (ok, out, err) = portico(&["client", "show", "1001", "--data", arg(&data)], None);
    assert!(
        ok && out.contains("Alice"),
        "the store still serves: {err}{out}"
    );
    drop(root);
}

/// Opens a request that is still being sent: a login form whose body trickles in.
fn trickling_request(base: &str) -> std::thread::JoinHandle<()> {
    let addr = base.trim_start_matches("http://").to_string();
    let mut tcp = std::net::TcpStream::connect(&addr).expect("connect");
    let head = format!(
        "POST /sign/ HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9000\r\n\r\nusername=alice&password="
    );
    tcp.write_all(head.as_bytes()).expect("send");
    std::thread::spawn(move || {
        // A byte every 100 ms: the request would take 15 minutes.
        while tcp.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[tokio::test]
async fn sigterm_stops_the_portal_within_10_s_with_requests_running_and_cleans_up() {
    let mut s = Server::demo();
    let socket = s.data_dir().join("control.sock");
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no control socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = s.login("bob", "bob-demo-pass").await;
    let _slow: Vec<_> = (0..3).map(|_| trickling_request(&s.base)).collect();
    // A connection that sent half a request line, and one kept alive after a page.
    let mut half =
        std::net::TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
    half.write_all(b"GET /serv").expect("send");
    let (status, _) = s.get_text(&c, "/").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let took = s
        .terminate(Duration::from_secs(10))
        .expect("the portal stopped within 10 s of SIGTERM");
    println!("stopped {} ms after SIGTERM", took.as_millis());
    assert!(!socket.exists(), "the control socket is removed");
    let log = s.log_text();
    let stopped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Portico stopped after"))
        .collect();
    assert_eq!(stopped.len(), 1, "{log}");
    assert!(
        stopped[0].contains("store flushed, control socket removed"),
        "{}",
        stopped[0]
    );
    // Operator commands now say plainly that no portal runs there (they open the store).
    let (ok, out, err) = portico(
        &["settings", "get", "ci_url", "--data", arg(&s.data_dir())],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("ci_url = "), "{out}");
}

// ---------------------------------------------------------------------------------------------
// nginx

/// Debian's nginx, if installed (test.sh installs it).
fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// nginx in the foreground as one process (`master_process off`), stopped when dropped.
struct Nginx {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// contrib/nginx.conf with the test's ports, certificate and proxy source address put in place
/// of the example values. Each example value must be there, so the test follows the file.
fn site_config(https: u16, http: u16, portal: u16, cert: &Path, key: &Path) -> String {
    let mut site = std::fs::read_to_string(repo_root().join("contrib/nginx.conf"))
        .expect("contrib/nginx.conf");
    for (from, to) in [
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        ("listen [::]:80;", String::new()),
        ("listen 443 ssl;", format!("listen 127.0.0.1:{https} ssl;")),
        ("listen [::]:443 ssl;", String::new()),
        (
            "/etc/letsencrypt/live/portal.example.net/fullchain.pem",
            cert.display().to_string(),
        ),
        (
            "/etc/letsencrypt/live/portal.example.net/privkey.pem",
            key.display().to_string(),
        ),
        // nginx talks to the portal from 127.0.0.2, the one trusted proxy; the test's own
        // direct requests come from 127.0.0.1, an address the portal does not trust.
        (
            "proxy_pass http://127.0.0.1:8000;",
            format!("proxy_pass http://127.0.0.1:{portal};\n        proxy_bind 127.0.0.2;"),
        ),
    ] {
        assert!(site.contains(from), "contrib/nginx.conf has `{from}`");
        site = site.replace(from, &to);
    }
    site
}

fn start_nginx(bin: &Path, dir: &Path, site: &str, https: u16) -> Nginx {
    std::fs::create_dir_all(dir.join("tmp")).expect("mkdir");
    std::fs::write(dir.join("portico.conf"), site).expect("write site");
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp/body;\n  \
         proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  \
         uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  \
         include {d}/portico.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("write config");
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nginx did not start: {}",
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nginx
}

/// A self-signed certificate for 127.0.0.1 made with the openssl binary; returns the PEM
/// certificate, the key and the certificate in DER (for the client's trust store).
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let (cert, key, der) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("cert.der"),
    );
    // A server certificate, not a CA one (webpki refuses a CA certificate as a server's).
    let config = dir.join("openssl.cnf");
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n\
         [dn]\nCN = 127.0.0.1\n\
         [leaf]\nbasicConstraints = critical, CA:FALSE\nsubjectAltName = IP:127.0.0.1\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .expect("write openssl.cnf");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed (test.sh installs it)");
    assert!(ok.success(), "openssl req");
    let ok = Command::new("openssl")
        .args(["x509", "-outform", "DER"])
        .arg("-in")
        .arg(&cert)
        .arg("-out")
        .arg(&der)
        .status()
        .expect("openssl x509");
    assert!(ok.success(), "openssl x509");
    (cert, key, std::fs::read(&der).expect("der"))
}

/// One HTTPS request over a new connection from `from`, trusting only `cert_der`; returns the
/// status and the raw head and body.
async fn https(from: Ipv4Addr, port: u16, cert_der: &[u8], request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert_der.to_vec()))
        .expect("trust the test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind the client's address");
    let tcp = socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await
        .expect("connect to nginx");
    let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the test certificate");
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    (common::raw_status(&text), text)
}

/// The value of every `Set-Cookie` header of a raw response.
fn set_cookies(response: &str) -> Vec<String> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_string())
        })
        .collect()
}

fn audit_newest(s: &Server) -> String {
    let out = s.cli_ok(&["audit", "--limit", "1"]);
    out.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_tls_the_cookie_is_secure_and_only_the_proxy_says_who_the_client_is() {
    let Some(nginx_bin) = nginx_binary() else {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED: nginx is not installed (/usr/sbin/nginx). Run ./test.sh, which installs\n\
             Debian's nginx, to run the TLS proxy test.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    };
    let root = tempfile::tempdir().expect("tmp");
    std::fs::write(
        root.path().join("portico.toml"),
        "trusted_proxies = [\"127.0.0.2\"]\nsecure_cookies = true\n",
    )
    .expect("write portico.toml");
    let s = Server::demo_in(root, Options::default());
    let portal_port: u16 = s
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("portal port");

    let work = tempfile::tempdir().expect("tmp");
    let (cert, key, der) = make_certificate(work.path());
    let (port, http_port) = (free_port(), free_port());
    let site = site_config(port, http_port, portal_port, &cert, &key);
    let nginx = start_nginx(&nginx_bin, &work.path().join("nginx"), &site, port);
    let client = Ipv4Addr::new(127, 0, 0, 5);
    let host = format!("127.0.0.1:{port}");

    // Plain HTTP is sent to HTTPS.
    let plain = common::raw_http(
        &format!("http://127.0.0.1:{http_port}"),
        format!("GET /services/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(common::raw_status(&plain), 301, "{plain}");
    assert!(
        plain.contains("Location: https://127.0.0.1/services/"),
        "{plain}"
    );

    // The login page through the proxy, with HSTS from nginx and Portico's own headers.
    let (status, page) = https(
        client,
        port,
        &der,
        &format!("GET /sign/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let head = page
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        head.contains("strict-transport-security: max-age=63072000"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");

    // A login through the proxy, with forged address headers that nginx must replace.
    let body = "username=alice&password=alice-demo-pass";
    let (status, reply) = https(
        client,
        port,
        &der,
        &format!(
            "POST /sign/ HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             X-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.8\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 303, "{reply}\n{}", nginx.error_log());
    let cookies = set_cookies(&reply);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-portico_session="))
        .unwrap_or_else(|| panic!("a __Host- session cookie: {cookies:?}"));
    for attribute in ["Secure", "HttpOnly", "Path=/"] {
        assert!(
            session.split(';').any(|a| a.trim() == attribute),
            "{attribute} in {session}"
        );
    }
    let newest = audit_newest(&s);
    assert!(newest.contains("LoginOk"), "{newest}");
    assert!(
        newest.contains("source=127.0.0.5"),
        "the address nginx saw, not the forged ones nor the proxy's: {newest}"
    );

    // The session works through the proxy.
    let cookie = session.split(';').next().expect("cookie");
    let (status, page) = https(
        client,
        port,
        &der,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Alice"), "{page}");

    // Straight to the portal from an address that is not a trusted proxy: the same forged
    // headers are ignored and the peer's address is recorded.
    let forged = format!(
        "POST /sign/ HTTP/1.1\r\nHost: 127.0.0.1:{portal_port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 32\r\n\
         X-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.8\r\n\
         Connection: close\r\n\r\nusername=alice&password=wrong-pw"
    );
    let direct = common::raw_http(&s.base, forged.as_bytes());
    assert_eq!(common::raw_status(&direct), 401, "{direct}");
    let newest = audit_newest(&s);
    assert!(newest.contains("LoginFailed"), "{newest}");
    assert!(newest.contains("source=127.0.0.1"), "{newest}");
    assert!(!newest.contains("198.51.100"), "{newest}");
    drop(nginx);
}
