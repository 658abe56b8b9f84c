//! What the HTTP benches share: a keep-alive HTTP/1.1 exchange written by hand, so the load
//! generator costs the same in every bench and adds no client crate.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request on a keep-alive connection and reads one response; returns its body.
pub async fn exchange(conn: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    conn.write_all(request).await.expect("write");
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 2048];
    let (header_end, mut body) = loop {
        let n = conn.read(&mut byte).await.expect("read");
        assert!(n > 0, "server closed the connection");
        head.extend_from_slice(&byte[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = head.split_off(pos + 4);
            break (head, body);
        }
    };
    let text = String::from_utf8_lossy(&header_end).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("content-length"))
        .expect("responses carry a content-length");
    while body.len() < length {
        let n = conn.read(&mut byte).await.expect("read body");
        assert!(n > 0, "server closed mid-body");
        body.extend_from_slice(&byte[..n]);
    }
    body
}
