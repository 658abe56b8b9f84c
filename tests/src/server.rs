//! A real server for end-to-end tests: started in-process on 127.0.0.1 with a free port and a
//! fresh data directory, stopped at the end; plus a minimal HTTP/1.1 client so the tests speak
//! to it over a socket like any client would.

use ichigen_gateway::serve::{self, RunningServer, Target};
use ichigen_shared::config::Settings;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TEST_SECRET: &str = "end-to-end-test-secret-0123456789";

pub struct TestServer {
    pub running: RunningServer,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the all-in-one server on the embedded store in a fresh directory.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, Target::All).await
    }

    pub async fn start_in(dir: tempfile::TempDir, target: Target) -> TestServer {
        Self::start_with(dir, target, |_| {}).await
    }

    /// Starts with the test settings, changed by `tweak` (e.g. `demo.seed = true`).
    pub async fn start_with(
        dir: tempfile::TempDir,
        target: Target,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let clock = std::sync::Arc::new(ichigen_shared::clock::SystemClock);
        Self::start_with_clock(dir, target, tweak, clock).await
    }

    /// [`TestServer::start_with`] on a given clock (a `ManualClock` to move time forward).
    pub async fn start_with_clock(
        dir: tempfile::TempDir,
        target: Target,
        tweak: impl FnOnce(&mut Settings),
        clock: std::sync::Arc<dyn ichigen_shared::clock::Clock>,
    ) -> TestServer {
        let mut settings = Settings::default();
        settings.store.path = dir.path().to_path_buf();
        settings.http.bind = "127.0.0.1:0".into();
        settings.http.workers = 2;
        // A stop closes subscriptions at once; this bounds one that a request in flight holds.
        settings.http.shutdown_timeout_secs = 1;
        settings.auth.secret = TEST_SECRET.into();
        tweak(&mut settings);
        let running = serve::start_with_clock(settings.clone(), target, clock)
            .await
            .unwrap();
        TestServer {
            running,
            settings,
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn token(&self, role: &str, store: Option<&str>, sub: &str) -> String {
        ichigen_gateway::auth::JwtAuth::new(TEST_SECRET)
            .mint(
                role.parse().unwrap(),
                sub,
                store,
                chrono::Duration::hours(1),
            )
            .unwrap()
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self.dir
    }

    /// POST /graphql with an optional bearer token; returns status and JSON body.
    pub async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let res = request(self.addr(), "POST", "/graphql", &headers, body.as_bytes()).await;
        (res.status, res.json())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// A minimal WebSocket client (RFC 6455, text frames only) speaking `graphql-transport-ws`, so
/// subscriptions are tested over a real socket without another dependency.
pub struct GraphqlWs {
    stream: TcpStream,
}

impl GraphqlWs {
    /// Upgrades `GET /graphql` and sends `connection_init` with `payload`; returns the client
    /// and the server's first message (`connection_ack`, or an error/close).
    pub async fn connect(
        addr: SocketAddr,
        payload: serde_json::Value,
    ) -> (GraphqlWs, Option<serde_json::Value>) {
        Self::connect_with_protocol(addr, "graphql-transport-ws", payload).await
    }

    /// [`GraphqlWs::connect`] offering `protocol` (`graphql-ws` is the legacy
    /// subscriptions-transport-ws); the server must accept it.
    pub async fn connect_with_protocol(
        addr: SocketAddr,
        protocol: &str,
        payload: serde_json::Value,
    ) -> (GraphqlWs, Option<serde_json::Value>) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /graphql HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\
             sec-websocket-protocol: {protocol}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        while !response.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            response.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 101"), "upgrade refused: {text}");
        assert!(
            text.to_ascii_lowercase()
                .contains(&format!("sec-websocket-protocol: {protocol}")),
            "protocol not accepted: {text}"
        );
        let mut ws = GraphqlWs { stream };
        ws.send(serde_json::json!({ "type": "connection_init", "payload": payload }))
            .await;
        let first = ws.next().await;
        (ws, first)
    }

    pub async fn send(&mut self, message: serde_json::Value) {
        let payload = message.to_string().into_bytes();
        let mut frame = vec![0x81u8];
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next text message as JSON; `None` when the server closed the connection (the close
    /// reason, if any, is returned as `{"close": code, "reason": text}`).
    pub async fn next(&mut self) -> Option<serde_json::Value> {
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).await.ok()?;
            let opcode = head[0] & 0x0f;
            let mut len = (head[1] & 0x7f) as u64;
            if len == 126 {
                let mut ext = [0u8; 2];
                self.stream.read_exact(&mut ext).await.ok()?;
                len = u16::from_be_bytes(ext) as u64;
            } else if len == 127 {
                let mut ext = [0u8; 8];
                self.stream.read_exact(&mut ext).await.ok()?;
                len = u64::from_be_bytes(ext);
            }
            let mut body = vec![0u8; len as usize];
            self.stream.read_exact(&mut body).await.ok()?;
            match opcode {
                0x1 => return serde_json::from_slice(&body).ok(),
                0x8 => {
                    let code = body
                        .get(..2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .unwrap_or(0);
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or_default());
                    return Some(serde_json::json!({ "close": code, "reason": reason }));
                }
                _ => continue, // ping/pong/binary: not part of graphql-transport-ws here
            }
        }
    }
}
