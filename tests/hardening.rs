//! What a security review asked for: the real source address behind proxies, a private data
//! folder and control socket, Secure cookies behind a TLS proxy.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{BIN, Options, Server, raw_http, raw_status};

/// Waits for a started portal's control socket, which opens just after the portal announces
/// itself.
fn ready(s: Server) -> Server {
    let socket = s.data_dir().join("control.sock");
    let start = std::time::Instant::now();
    // A socket left by the portal's previous run refuses connections until it is replaced.
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no control socket"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    s
}

/// A login as `user` with a wrong password, with extra header lines.
fn failed_login(s: &Server, user: &str, headers: &[&str]) -> u16 {
    let body = format!("username={user}&password=wrong-password");
    let mut req = String::from("POST /sign/ HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    raw_status(&raw_http(&s.base, req.as_bytes()))
}

/// The source address of the newest audit event.
fn last_source(s: &Server) -> String {
    let (ok, out, err) = s.cli(&["audit", "--limit", "1"]);
    assert!(ok, "{err}");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("source="))
        .unwrap_or_else(|| panic!("no source in {out}"))
        .to_string()
}

#[test]
fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let s = ready(Server::demo());
    let forged = ["X-Real-IP: 6.6.6.6", "X-Forwarded-For: 7.7.7.7"];
    assert_eq!(failed_login(&s, "mallory", &forged), 401);
    assert_eq!(
        last_source(&s),
        "127.0.0.1",
        "nothing is trusted by default"
    );

    let data = s.stop();
    std::fs::write(
        data.path().join("portico.toml"),
        "trusted_proxies = [\"127.0.0.1\"]\n",
    )
    .expect("write config");
    let s = ready(Server::serve(data, Options::default()));
    assert!(
        s.log_text()
            .contains("X-Forwarded-For and X-Real-IP are believed from 127.0.0.1"),
        "{}",
        s.log_text()
    );
    // The right-most hop that is not a trusted proxy; what the client wrote left of it is not
    // believed, and X-Forwarded-For wins over X-Real-IP.
    let chain = [
        "X-Real-IP: 6.6.6.6",
        "X-Forwarded-For: 9.9.9.9, 7.7.7.7",
        "X-Forwarded-For: 127.0.0.1",
    ];
    assert_eq!(failed_login(&s, "mallory", &chain), 401);
    assert_eq!(last_source(&s), "7.7.7.7");
    assert_eq!(failed_login(&s, "mallory", &["X-Real-IP: 6.6.6.6"]), 401);
    assert_eq!(last_source(&s), "6.6.6.6");
    assert_eq!(failed_login(&s, "mallory", &[]), 401);
    assert_eq!(last_source(&s), "127.0.0.1");
}

#[test]
fn trusted_proxies_come_comma_separated_from_the_environment_and_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |value: &str| {
        let out = Command::new(BIN)
            .args(["settings", "list", "--data"])
            .arg(dir.path().join("none"))
            .env("PORTICO_TRUSTED_PROXIES", value)
            .env("PORTICO_LOG", "warn")
            .current_dir(dir.path())
            .output()
            .expect("run portico");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("127.0.0.1, 10.0.0.0/8,fd00::/8");
    assert!(
        err.contains("there is no Portico data folder"),
        "the list is accepted: {err}"
    );
    let err = run("127.0.0.1, 10.0.0.0/33");
    assert!(
        err.contains("`10.0.0.0/33` is not an IP address or network"),
        "{err}"
    );
    assert!(err.contains("TRUSTED_PROXIES"), "names the variable: {err}");
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every folder and file under `dir` with its mode.
fn modes_under(dir: &Path) -> Vec<(String, u32, bool)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let is_dir = path.is_dir();
        out.push((path.display().to_string(), mode(&path), is_dir));
        if is_dir {
            out.extend(modes_under(&path));
        }
    }
    out
}

fn assert_store_private(data: &Path) {
    assert_eq!(mode(&data.join("store")), 0o700);
    let all = modes_under(&data.join("store"));
    assert!(
        all.iter().any(|(p, _, _)| p.ends_with("/db")),
        "sled's files are there: {all:?}"
    );
    for (path, mode, is_dir) in all {
        assert_eq!(mode, if is_dir { 0o700 } else { 0o600 }, "{path}");
    }
    let socket = data.join("control.sock");
    let meta = std::fs::symlink_metadata(&socket).expect("control socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&socket), 0o600);
}

#[test]
fn the_data_folder_store_and_control_socket_are_private() {
    let s = ready(Server::demo());
    let data = s.data_dir();
    assert_eq!(mode(&data), 0o700, "a new data folder");
    assert_store_private(&data);
    // The demo's files (`portico files add` copies) are private too.
    assert_eq!(mode(&data.join("files")), 0o700);
    let copies = modes_under(&data.join("files"));
    assert_eq!(copies.len(), 2, "{copies:?}");
    for (path, mode, _) in copies {
        assert_eq!(mode, 0o600, "{path}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["control.sock", "files", "scripts", "store"],
        "only the store, the files, the control socket and the demo's scripts folder"
    );

    // A store left readable by an older version is made private at the next start; the data
    // folder itself keeps the mode its owner gave it.
    let root = s.stop();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (path, _, is_dir) in modes_under(&data.join("store")) {
        let loose = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).expect("chmod");
    }
    std::fs::set_permissions(data.join("store"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let s = ready(Server::serve(root, Options::default()));
    assert_store_private(&data);
    assert_eq!(mode(&data), 0o755);
    drop(s);

    // `portico import` into a new folder, no portal running.
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = dir.path().join("fresh");
    let bundle = common::repo_root().join("docs/import-example.json");
    let (ok, _, err) = common::portico(
        &[
            "import",
            bundle.to_str().expect("utf-8"),
            "--data",
            fresh.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("store")), 0o700);
    for (path, mode, is_dir) in modes_under(&fresh.join("store")) {
        assert_eq!(mode, if is_dir { 0o700 } else { 0o600 }, "{path}");
    }
}

#[test]
fn a_request_over_64_mib_to_a_running_portal_is_refused_with_advice() {
    let s = ready(Server::demo());
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("big.json");
    let mut text = String::from("{\"clients\": [], \"padding\": \"");
    text.push_str(&"x".repeat(65 * 1024 * 1024));
    text.push_str("\"}");
    std::fs::write(&bundle, text).expect("write bundle");
    let (ok, _, err) = s.cli(&["import", bundle.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(
        err.contains(
            "error: the request is 66 MiB, more than the 64 MiB a running portal accepts through its control socket. \
             To import a bundle this big, stop the portal and run `portico import` again"
        ),
        "{err}"
    );
    assert!(
        err.contains("or split the bundle into smaller files"),
        "{err}"
    );

    // The portal itself stops reading at 64 MiB, whatever a client sends.
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(s.data_dir().join("control.sock"))
        .expect("connect");
    let _ = sock.write_all(&vec![b' '; 64 * 1024 * 1024 + 1]);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    sock.read_to_string(&mut reply).expect("reply");
    assert!(
        reply.starts_with(
            r#"{"ok":false,"text":"the request is larger than the 64 MiB a running portal accepts"#
        ),
        "{reply}"
    );
    // And it still serves the next operator command.
    let (ok, out, err) = s.cli(&["maintenance", "off"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "maintenance mode is off");
}

/// The session cookie a successful login as alice sets.
fn login_cookie(s: &Server) -> String {
    let body = "username=alice&password=alice-demo-pass";
    let r = raw_http(
        &s.base,
        format!(
            "POST /sign/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(raw_status(&r), 303, "{r}");
    let cookies: Vec<&str> = r
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .filter(|c| c.contains("portico_session="))
        .collect();
    assert_eq!(cookies.len(), 1, "{r}");
    cookies[0].to_string()
}

/// Name and sorted attributes of a Set-Cookie value, without the token.
fn shape(cookie: &str) -> (String, Vec<String>) {
    let mut parts = cookie.split(';').map(str::trim);
    let (name, token) = parts.next().expect("name").split_once('=').expect("=");
    assert_eq!(token.len(), 64, "{cookie}");
    let mut attrs: Vec<String> = parts.map(str::to_string).collect();
    attrs.sort();
    (name.to_string(), attrs)
}

#[test]
fn secure_cookies_true_marks_the_session_cookie_secure_behind_a_tls_proxy() {
    let s = ready(Server::demo());
    let (ok, _, err) = s.cli(&["settings", "unset", "ci_url"]);
    assert!(ok, "{err}");
    assert_eq!(
        shape(&login_cookie(&s)),
        (
            "portico_session".to_string(),
            vec!["HttpOnly".into(), "Path=/".into(), "SameSite=Lax".into()]
        ),
        "auto, without an https ci_url: not Secure"
    );

    let data = s.stop();
    std::fs::write(data.path().join("portico.toml"), "secure_cookies = true\n").expect("write");
    let s = ready(Server::serve(data, Options::default()));
    let (ok, out, err) = s.cli(&["settings", "get", "ci_url"]);
    assert!(ok && out.contains("(default)"), "{out}{err}");
    assert_eq!(
        shape(&login_cookie(&s)),
        (
            "__Host-portico_session".to_string(),
            vec![
                "HttpOnly".into(),
                "Path=/".into(),
                "SameSite=Lax".into(),
                "Secure".into()
            ]
        )
    );

    let data = s.stop();
    std::fs::write(data.path().join("portico.toml"), "secure_cookies = false\n").expect("write");
    let s = ready(Server::serve(data, Options::default()));
    s.cli_ok(&["settings", "set", "ci_url", "https://portal.example.net/"]);
    assert_eq!(shape(&login_cookie(&s)).0, "portico_session");
    assert!(
        s.log_text()
            .contains("secure_cookies = false: session cookies are not marked Secure"),
        "{}",
        s.log_text()
    );
}
