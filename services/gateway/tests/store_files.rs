//! The `ichigen` binary on a data directory whose log was emptied after it served writes: it
//! must not start (and report ready, and serve an empty history); it prints one error line and
//! exits 1. A new, empty directory still starts.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `ichigen serve` (with `extra` arguments) on a free port; returns the child and the
/// address it printed.
fn spawn_server(dir: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ichigen"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("ICHIGEN__LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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

/// One HTTP/1.1 request; returns the status and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(addr, "GET", "/health/ready", &[], "").0 != 200 {
        assert!(Instant::now() < deadline, "not ready in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit after SIGTERM: {exit:?}");
            return;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `ichigen serve` and expects it to exit by itself within 20 s. A server that starts
/// instead is stopped and fails the test.
fn serve_expecting_exit(dir: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ichigen"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server started on an emptied log: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
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
fn a_log_emptied_after_50_receipts_stops_the_server_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = spawn_server(dir.path(), &["--demo"]);
    wait_ready(&addr);
    let token = ichigen_gateway::auth::JwtAuth::new(ichigen_shared::config::DEV_SECRET)
        .mint(
            "wms-integration".parse().unwrap(),
            "wms-1",
            None,
            chrono::Duration::hours(1),
        )
        .unwrap();
    let auth = format!("Bearer {token}");
    for i in 0..50 {
        let key = format!("asn-{i}");
        let (status, body) = http(
            &addr,
            "POST",
            "/api/inventory/v1/receipts",
            &[
                ("authorization", &auth),
                ("idempotency-key", &key),
                ("content-type", "application/json"),
            ],
            r#"{"sku":"TEE-M","location":"TKY-DC1","qty":1}"#,
        );
        assert!((200..300).contains(&status), "receipt {i}: {status} {body}");
    }
    stop(child);

    let data = dir.path().join("data");
    std::fs::write(data.join("events.sqlite"), b"").unwrap();
    let line = one_error_line(&serve_expecting_exit(dir.path()));
    assert!(
        line.contains("corrupt") && line.contains("events.sqlite") && line.contains("empty"),
        "{line}"
    );
    // The index deleted as well: the marker written with the store still tells.
    std::fs::remove_file(data.join("events.index.sqlite")).unwrap();
    let line = one_error_line(&serve_expecting_exit(dir.path()));
    assert!(line.contains("STORE"), "{line}");

    // A genuinely new data directory starts.
    let fresh = tempfile::tempdir().unwrap();
    let (child, addr) = spawn_server(fresh.path(), &[]);
    wait_ready(&addr);
    stop(child);
}
