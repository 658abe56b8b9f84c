//! GraphiQL works offline: `GET /graphql` is a page that loads only this server's own assets,
//! each served with its content type; with GraphiQL off, nothing of it is served.

use ichigen_gateway::graphql::graphiql::{ASSETS, ASSETS_PATH};
use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, TestServer};
use std::net::SocketAddr;

/// Every `src` and `href` of the page.
fn references(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=", "href="] {
        for part in html.split(attribute).skip(1) {
            let quote = part.chars().next().unwrap();
            assert!(
                quote == '"' || quote == '\'',
                "unquoted {attribute} in {html}"
            );
            urls.push(part[1..].split(quote).next().unwrap().to_string());
        }
    }
    urls
}

async fn get(addr: SocketAddr, path: &str) -> ichigen_tests::server::Response {
    request(addr, "GET", path, &[("accept-encoding", "identity")], b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_loads_only_same_origin_assets_each_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| s.graphql.graphiql = true).await;
    let page = get(server.addr(), "/graphql").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = &page.headers["content-security-policy"];
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let html = page.text();
    assert!(html.contains(r#"<div id="graphiql">"#), "{html}");
    let urls = references(&html);
    let scripts: Vec<&String> = urls.iter().filter(|u| u.ends_with(".js")).collect();
    assert_eq!(
        scripts.len(),
        4,
        "React, ReactDOM, GraphiQL and our start: {urls:?}"
    );
    for url in &urls {
        if url == "data:," {
            continue; // the empty favicon, so that no request goes anywhere for one
        }
        assert!(
            url.starts_with(&format!("{ASSETS_PATH}/")) && !url.starts_with("//"),
            "{url} is not one of this server's assets"
        );
        let res = get(server.addr(), url).await;
        assert_eq!(res.status, 200, "{url}");
        let expected = if url.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(res.headers["content-type"], expected, "{url}");
        assert_eq!(res.headers["x-content-type-options"], "nosniff", "{url}");
        let name = url.rsplit('/').next().unwrap();
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        assert_eq!(res.body, asset.bytes, "{url}");
        if asset.immutable {
            assert!(res.headers["cache-control"].contains("immutable"), "{url}");
        }
    }
    // The bundle has the graphql-ws client the page's subscriptions use.
    let graphiql = ASSETS
        .iter()
        .find(|a| a.name.starts_with("graphiql-") && a.name.ends_with(".js"));
    assert!(String::from_utf8_lossy(graphiql.unwrap().bytes).contains("graphql-transport-ws"));
    // The licenses are served too; anything else is not there.
    let licenses = get(
        server.addr(),
        &format!("{ASSETS_PATH}/THIRD_PARTY_LICENSES.txt"),
    )
    .await;
    assert_eq!(
        (licenses.status, licenses.headers["content-type"].as_str()),
        (200, "text/plain; charset=utf-8")
    );
    assert_eq!(
        get(server.addr(), &format!("{ASSETS_PATH}/nope.js"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(server.addr(), &format!("{ASSETS_PATH}/../Cargo.toml"))
            .await
            .status,
        404
    );
    // Big assets are compressed for clients that take it.
    let gzip = request(
        server.addr(),
        "GET",
        &format!("{ASSETS_PATH}/graphiql-4.0.3.min.js"),
        &[("accept-encoding", "gzip")],
        b"",
    )
    .await;
    assert_eq!(
        gzip.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    let raw = ASSETS
        .iter()
        .find(|a| a.name == "graphiql-4.0.3.min.js")
        .unwrap();
    assert!(gzip.body.len() < raw.bytes.len() / 2, "{}", gzip.body.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_graphiql_off_neither_page_nor_assets_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| s.graphql.graphiql = false).await;
    assert_eq!(get(server.addr(), "/graphql").await.status, 404);
    for asset in ASSETS {
        let url = format!("{ASSETS_PATH}/{}", asset.name);
        assert_eq!(get(server.addr(), &url).await.status, 404, "{url}");
    }
    server.stop().await;
}

/// The page in a real browser, offline: GraphiQL renders, runs a query over POST and a
/// subscription over graphql-ws, both with a token typed into its Headers tab. Needs
/// Chromium, so it is skipped by default; run it with
/// `cargo nextest run -p ichigen-tests --test graphiql --run-ignored all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium (apt-get install chromium): run with --run-ignored all"]
async fn graphiql_runs_queries_and_subscriptions_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| {
        s.graphql.graphiql = true;
        s.demo.seed = true;
    })
    .await;
    let token = server.token("admin", None, "graphiql");
    let profile = tempfile::tempdir().unwrap();
    let mut chromium = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{}/graphql", server.addr()))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium is not installed");
    let devtools = cdp::devtools_port(chromium.stderr.take().unwrap()).await;
    let page = cdp::page_socket(devtools, &format!("http://{}/graphql", server.addr())).await;
    let mut cdp = cdp::Client::connect(devtools, &page).await;
    // The page may still be replacing about:blank: wait until it has loaded.
    for attempt in 0.. {
        let state = cdp
            .evaluate("location.pathname + ' ' + document.readyState + ' ' + typeof GraphiQL")
            .await;
        if state == "/graphql complete function" {
            break;
        }
        assert!(attempt < 100, "the page never loaded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let script = format!(
        r#"(async () => {{
            const until = async (what, timeout = 15000) => {{
                const end = Date.now() + timeout;
                for (;;) {{
                    const value = what();
                    if (value) return value;
                    if (Date.now() > end) throw new Error("timed out: " + what);
                    await new Promise(r => setTimeout(r, 50));
                }}
            }};
            const editor = await until(() => document.querySelector(".graphiql-query-editor .CodeMirror"));
            const tools = await until(() => {{
                const all = document.querySelectorAll(".graphiql-editor-tool .CodeMirror");
                return all.length >= 2 ? all : null;
            }});
            tools[1].CodeMirror.setValue(JSON.stringify({{ Authorization: "Bearer {token}" }}));
            const response = () => document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue();
            const run = async (query, expected) => {{
                editor.CodeMirror.setValue(query);
                await new Promise(r => setTimeout(r, 300));
                document.querySelector(".graphiql-execute-button").click();
                await until(() => response().includes(expected));
                const text = response();
                document.querySelector(".graphiql-execute-button").click(); // stops a subscription
                return text;
            }};
            const viewer = await run("{{ viewer {{ role subject }} }}", "ADMIN");
            const events = await run(
                'subscription {{ events(after: "0", categories: ["location"]) {{ type stream }} }}',
                "LocationDefined");
            return JSON.stringify({{ viewer, events }});
        }})()"#
    );
    let answer = tokio::time::timeout(std::time::Duration::from_secs(60), cdp.evaluate(&script))
        .await
        .expect("the page's script never answered");
    let answer: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|_| panic!("the page did not run: {answer}"));
    assert!(
        answer["viewer"]
            .as_str()
            .unwrap()
            .contains("\"role\": \"ADMIN\""),
        "{answer}"
    );
    assert!(
        answer["events"].as_str().unwrap().contains("location-"),
        "{answer}"
    );
    chromium.kill().await.unwrap();
    server.stop().await;
}

/// Just enough of the Chrome DevTools Protocol: find the page, evaluate a script in it.
mod cdp {
    use std::net::SocketAddr;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    /// The port of `DevTools listening on ws://127.0.0.1:<port>/…` on chromium's stderr.
    pub async fn devtools_port(stderr: tokio::process::ChildStderr) -> u16 {
        let mut lines = BufReader::new(stderr).lines();
        let find = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    let port = rest.split('/').next().unwrap().parse().unwrap();
                    // Keep draining stderr so chromium never blocks on it.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return port;
                }
            }
            panic!("chromium exited without a DevTools port");
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), find)
            .await
            .expect("no DevTools port from chromium")
    }

    /// The DevTools socket path of the page showing `url`.
    pub async fn page_socket(port: u16, url: &str) -> String {
        for _ in 0..100 {
            let pages = get_json(port, "/json/list").await;
            if let Some(page) = pages
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["type"] == "page" && p["url"] == url)
            {
                let ws = page["webSocketDebuggerUrl"].as_str().unwrap();
                return ws
                    .split_once(&format!("127.0.0.1:{port}"))
                    .unwrap()
                    .1
                    .to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("chromium never showed {url}");
    }

    /// GET of DevTools' HTTP endpoint, which keeps the connection open: read by length.
    async fn get_json(port: u16, path: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        loop {
            raw.push(stream.read_u8().await.unwrap());
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                stream.read_exact(&mut body).await.unwrap();
                return serde_json::from_slice(&body).unwrap();
            }
        }
    }

    pub struct Client {
        stream: TcpStream,
        next_id: u64,
    }

    impl Client {
        pub async fn connect(port: u16, path: &str) -> Client {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let head = format!(
                "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nupgrade: websocket\r\n\
                 connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 sec-websocket-version: 13\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut response = Vec::new();
            while !response.ends_with(b"\r\n\r\n") {
                response.push(stream.read_u8().await.unwrap());
            }
            assert!(
                response.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&response)
            );
            Client { stream, next_id: 1 }
        }

        /// Evaluates `expression` (a promise) in the page; its string value.
        pub async fn evaluate(&mut self, expression: &str) -> String {
            let id = self.next_id;
            self.next_id += 1;
            let message = serde_json::json!({ "id": id, "method": "Runtime.evaluate", "params": {
                "expression": expression, "awaitPromise": true, "returnByValue": true } });
            self.send(&message.to_string()).await;
            loop {
                let reply: serde_json::Value = serde_json::from_str(&self.receive().await).unwrap();
                if reply["id"] == id {
                    return match reply["result"]["result"]["value"].as_str() {
                        Some(value) => value.to_string(),
                        None => format!("no value: {reply}"),
                    };
                }
            }
        }

        async fn send(&mut self, text: &str) {
            let payload = text.as_bytes();
            let mut frame = vec![0x81u8];
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
            frame.extend_from_slice(&[0, 0, 0, 0]); // mask 0: the payload goes as it is
            frame.extend_from_slice(payload);
            self.stream.write_all(&frame).await.unwrap();
        }

        async fn receive(&mut self) -> String {
            let mut text = Vec::new();
            loop {
                let head = [
                    self.stream.read_u8().await.unwrap(),
                    self.stream.read_u8().await.unwrap(),
                ];
                let mut len = (head[1] & 0x7f) as u64;
                if len == 126 {
                    len = self.stream.read_u16().await.unwrap() as u64;
                } else if len == 127 {
                    len = self.stream.read_u64().await.unwrap();
                }
                let mut body = vec![0u8; len as usize];
                self.stream.read_exact(&mut body).await.unwrap();
                text.extend_from_slice(&body);
                if head[0] & 0x80 != 0 {
                    return String::from_utf8(text).unwrap();
                }
            }
        }
    }
}
