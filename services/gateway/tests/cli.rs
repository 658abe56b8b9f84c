//! The `ichigen` binary as an operator meets it: one clear error line and a non-zero exit for
//! bad configuration, a locked or corrupt data directory and an unreachable KurrentDB or
//! PostgreSQL; graceful
//! shutdown on SIGTERM; `token` and `schema`.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ichigen(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ichigen"));
    cmd.args(args).current_dir(dir).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ichigen: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_string()
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ichigen(
        &["serve"],
        &[("ICHIGEN__HTTP__BIND", "not-an-address")],
        dir.path(),
    );
    assert!(one_error_line(&out).contains("http.bind"));
    let out = ichigen(
        &["serve"],
        &[("ICHIGEN__STORE__BACKEND", "mysql")],
        dir.path(),
    );
    assert!(one_error_line(&out).contains("mysql"));
    let out = ichigen(&["serve", "--config", "missing.toml"], &[], dir.path());
    assert!(one_error_line(&out).contains("missing.toml"));
    // A test clock moves every process's time: production refuses it.
    let out = ichigen(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("ICHIGEN__DEPLOYMENT__ENVIRONMENT", "production"),
            ("ICHIGEN__CLOCK__TEST_CLOCK", "true"),
        ],
        dir.path(),
    );
    assert!(one_error_line(&out).contains("clock.test_clock"));
}

#[test]
fn unreachable_kurrentdb_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ichigen(
        &["serve"],
        &[
            ("ICHIGEN__STORE__BACKEND", "kurrentdb"),
            ("ICHIGEN__STORE__URL", "esdb://127.0.0.1:1?tls=false"),
            ("ICHIGEN__STORE__CONNECT_TIMEOUT_MS", "1500"),
        ],
        dir.path(),
    );
    assert!(one_error_line(&out).contains("KurrentDB"));
}

#[test]
fn an_unreachable_or_misnamed_postgresql_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ichigen(
        &["serve"],
        &[
            ("ICHIGEN__STORE__BACKEND", "postgres"),
            (
                "ICHIGEN__STORE__URL",
                "postgres://ichigen@127.0.0.1:1/ichigen",
            ),
            ("ICHIGEN__STORE__CONNECT_TIMEOUT_MS", "1500"),
        ],
        dir.path(),
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("PostgreSQL") && line.contains("127.0.0.1:1"),
        "{line}"
    );
    // A KurrentDB URL (the default) is no PostgreSQL URL.
    let out = ichigen(
        &["serve"],
        &[("ICHIGEN__STORE__BACKEND", "postgres")],
        dir.path(),
    );
    assert!(one_error_line(&out).contains("postgres://"));
}

#[test]
fn corrupt_data_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("events.sqlite"), vec![7u8; 8192]).unwrap();
    let out = ichigen(&["serve", "--bind", "127.0.0.1:0"], &[], dir.path());
    assert!(one_error_line(&out).contains("corrupt"));
}

/// Starts `ichigen serve` on a free port; returns the child and the address it printed.
fn spawn_server(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ichigen"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env("ICHIGEN__LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "printed {line:?}");
    (child, addr)
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn second_server_on_same_data_is_refused_and_sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(dir.path());
    assert!(get(&addr, "/health/ready").starts_with("HTTP/1.1 200"));

    let out = ichigen(&["serve", "--bind", "127.0.0.1:0"], &[], dir.path());
    assert!(one_error_line(&out).contains("in use"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    // The lock is released: the data directory opens again.
    let (mut again, addr) = spawn_server(dir.path());
    assert!(get(&addr, "/health/live").starts_with("HTTP/1.1 200"));
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn token_and_schema_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = ichigen(
        &["token", "--role", "store-staff", "--store", "S1"],
        &[],
        dir.path(),
    );
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let actor = ichigen_gateway::auth::JwtAuth::new(ichigen_shared::config::DEV_SECRET)
        .verify(token.trim())
        .unwrap();
    assert_eq!(actor.store_id.as_deref(), Some("S1"));

    let out = ichigen(&["token", "--role", "store-staff"], &[], dir.path());
    assert!(!one_error_line(&out).is_empty());
    let out = ichigen(&["token", "--role", "root"], &[], dir.path());
    assert!(one_error_line(&out).contains("root"));

    let out = ichigen(&["schema"], &[], dir.path());
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        ichigen_gateway::graphql::sdl()
    );
}

#[test]
fn help_describes_serve_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let out = ichigen(&["--help"], &[], dir.path());
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let serve = help
        .lines()
        .find(|l| l.trim_start().starts_with("serve "))
        .unwrap_or_else(|| panic!("no serve line in\n{help}"));
    assert!(
        serve.ends_with("or one part of it per process (`--target`)"),
        "the summary of serve is cut off: {serve:?}"
    );
    for args in [&["serve", "--help"][..], &["help", "serve"][..]] {
        let out = ichigen(args, &[], dir.path());
        assert!(out.status.success());
        let long = String::from_utf8(out.stdout).unwrap();
        for expected in [
            "--target all",
            "one part per process",
            "/health/ready",
            "SIGTERM or SIGINT",
            "http.shutdown_timeout_secs",
        ] {
            assert!(
                long.contains(expected),
                "{args:?}: missing {expected:?} in\n{long}"
            );
        }
    }
}

/// A graphql-ws client over a plain socket, just enough to hold a subscription open.
fn subscribe(addr: &str, query: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /graphql HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\
         sec-websocket-protocol: graphql-transport-ws\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let send = |s: &mut TcpStream, text: String| {
        let payload = text.into_bytes();
        assert!(payload.len() < 126);
        let mut frame = vec![0x81u8, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(&payload); // mask 0: the payload goes as it is
        s.write_all(&frame).unwrap();
    };
    send(&mut s, r#"{"type":"connection_init"}"#.to_string());
    assert!(read_frame(&mut s).1.contains("connection_ack"));
    send(
        &mut s,
        format!(r#"{{"id":"1","type":"subscribe","payload":{{"query":"{query}"}}}}"#),
    );
    s
}

/// One frame: its opcode and payload as text.
fn read_frame(s: &mut TcpStream) -> (u8, String) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut len = (head[1] & 0x7f) as usize;
    if len == 126 {
        let mut ext = [0u8; 2];
        s.read_exact(&mut ext).unwrap();
        len = u16::from_be_bytes(ext) as usize;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head[0] & 0x0f, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn sigterm_closes_open_subscriptions_and_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(dir.path());
    // GraphiQL's case: a browser holding a subscription open (shutdown timeout: 10 s).
    let mut socket = subscribe(
        &addr,
        "subscription { availabilityChanged { sku available } }",
    );
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (opcode, close) = loop {
        match read_frame(&mut socket) {
            (0x9 | 0xa, _) => continue, // pings
            frame => break frame,
        }
    };
    assert_eq!(opcode, 0x8, "a close frame, got {close:?}");
    assert!(close.ends_with("server shutting down"), "{close:?}");
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "no exit {:?} after SIGTERM",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "SIGTERM took {:?} with a subscription open",
        started.elapsed()
    );
}
