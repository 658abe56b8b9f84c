//! `http.max_body_bytes` bounds every route of a real server before the body is read: a
//! declared length over it is refused at once, a chunked body as soon as it passes it, for
//! GraphQL (JSON and multipart) and the integration APIs alike; bodies under it still work.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, TestServer};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 64 * 1024;

async fn server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    TestServer::start_with(dir, Target::All, |s| s.http.max_body_bytes = LIMIT).await
}

/// Status, headers (lower-case) and body of one response read off `stream`: the head, then
/// `content-length` bytes, without waiting for the connection to close.
async fn read_response(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = serde_json::from_slice(&raw[end + 4..end + 4 + length])
                        .unwrap_or(Value::Null);
                    return (status, head, body);
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before a whole response: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    // A server that reads the whole body first would never answer: the bodies below are
    // never finished.
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no answer while the body was still unsent")
}

/// Sends only the head of a request that declares `length` bytes, and reads the answer.
async fn declared(
    server: &TestServer,
    path: &str,
    content_type: &str,
    length: usize,
) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    read_response(&mut stream).await
}

/// Sends a chunked body of `chunks` × 16 KiB (`start` first), never the final chunk, and
/// reads the answer. `extra_headers` are whole header lines.
async fn chunked(
    server: &TestServer,
    path: &str,
    content_type: &str,
    extra_headers: &str,
    start: &[u8],
    chunks: usize,
) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n{extra_headers}transfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let write = |data: &[u8]| {
        let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
        frame.extend_from_slice(data);
        frame.extend_from_slice(b"\r\n");
        frame
    };
    stream.write_all(&write(start)).await.unwrap();
    let filler = vec![b' '; 16 * 1024];
    for _ in 0..chunks {
        // The server may close once it has answered: stop writing then.
        if stream.write_all(&write(&filler)).await.is_err() {
            break;
        }
    }
    read_response(&mut stream).await
}

fn assert_graphql_413(answer: &(u16, String, Value)) {
    let (status, head, body) = answer;
    assert_eq!(*status, 413, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("65536 bytes"),
        "{body}"
    );
}

fn assert_problem_413(answer: &(u16, String, Value)) {
    let (status, head, body) = answer;
    assert_eq!(*status, 413, "{head}\n{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE", "{body}");
    assert_eq!(body["status"], 413, "{body}");
}

const MULTIPART: &str = "multipart/form-data; boundary=xyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_bodies_over_the_limit_are_413_before_they_are_read() {
    let server = server().await;
    // A declared length over the limit: refused without a byte of the body.
    assert_graphql_413(&declared(&server, "/graphql", "application/json", 17 << 20).await);
    assert_graphql_413(&declared(&server, "/graphql", "application/json", LIMIT + 1).await);
    assert_graphql_413(&declared(&server, "/graphql", MULTIPART, 256 << 20).await);
    // Chunked: refused once the limit is passed, though the body never ends.
    let json_start = br#"{"query": "{ viewer { role } }", "variables": {"pad": ""#;
    assert_graphql_413(&chunked(&server, "/graphql", "application/json", "", json_start, 64).await);
    let multipart_start = b"--xyz\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n";
    assert_graphql_413(&chunked(&server, "/graphql", MULTIPART, "", multipart_start, 64).await);
    // The server is fine afterwards.
    let (status, body) = server.graphql(None, "{ viewer { role } }", json!({})).await;
    assert_eq!(
        (status, &body["data"]["viewer"]["role"]),
        (200, &json!("ANONYMOUS"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_api_bodies_over_the_limit_are_413_problems() {
    let server = server().await;
    let admin = format!("Bearer {}", server.token("admin", None, "root"));
    // The bulk routes' own limits are 32 and 64 MiB: http.max_body_bytes bounds them.
    for path in [
        "/api/inventory/v1/movements/bulk",
        "/api/order/v1/catalog/items/bulk",
    ] {
        assert_problem_413(&declared(&server, path, "application/json", 1 << 20).await);
        // With credentials and a key, so that the route goes on to read the body.
        let headers = format!("authorization: {admin}\r\nidempotency-key: big-{path}\r\n");
        assert_problem_413(
            &chunked(
                &server,
                path,
                "application/json",
                &headers,
                b"{\"lines\": [",
                64,
            )
            .await,
        );
    }
    // Anything else too, even a route that never reads a body.
    assert_problem_413(&declared(&server, "/health/live", "text/plain", LIMIT + 1).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_under_the_limit_still_work() {
    let server = server().await;
    // JSON, padded (a comment in the query) close to the limit.
    let query = format!("# {}\n{{ viewer {{ role }} }}", "x".repeat(LIMIT - 200));
    let (status, body) = server.graphql(None, &query, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["role"], "ANONYMOUS", "{body}");
    // Multipart (the GraphQL multipart request spec).
    let multipart = "--xyz\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n\
        {\"query\": \"{ viewer { role } }\"}\r\n--xyz\r\ncontent-disposition: form-data; \
        name=\"map\"\r\n\r\n{}\r\n--xyz--\r\n";
    let res = request(
        server.addr(),
        "POST",
        "/graphql",
        &[("content-type", MULTIPART)],
        multipart.as_bytes(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["data"]["viewer"]["role"], "ANONYMOUS");
    // Chunked, finished within the limit.
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let query = br#"{"query": "{ viewer { role } }"}"#;
    let message = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        query.len(),
        String::from_utf8_lossy(query)
    );
    stream.write_all(message.as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert_eq!(
        body["data"]["viewer"]["role"], "ANONYMOUS",
        "{head}\n{body}"
    );
    // The integration API.
    let admin = format!("Bearer {}", server.token("admin", None, "root"));
    let res = request(
        server.addr(),
        "PUT",
        "/api/order/v1/catalog/items/TEE-M",
        &[
            ("authorization", admin.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", "under-the-limit"),
        ],
        br#"{"title": "Tee M", "price": {"amount": "1990", "currency": "JPY"}}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    server.stop().await;
}
