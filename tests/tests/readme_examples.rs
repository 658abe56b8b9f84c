//! Every GraphQL example in README.md and docs/*.md is valid against the served schema: run
//! as an anonymous caller on a real server, none is refused as a whole (a parse or validation
//! error, which has no `path`). Field-level refusals (an anonymous caller may not cancel an
//! order, a placeholder is not an id) are expected and change nothing.

use ichigen_tests::server::TestServer;
use serde_json::json;

fn examples(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```graphql") => current = Some(String::new()),
            Some(_) if trimmed.starts_with("```") => out.extend(current.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_graphql_example_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files = vec![format!("{root}/README.md")];
    for entry in std::fs::read_dir(format!("{root}/docs")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            files.push(entry.path().display().to_string());
        }
    }
    let server = TestServer::start().await;
    let mut checked = 0;
    for file in &files {
        for example in examples(file) {
            // Subscriptions run over WebSocket, not POST: their fields are checked by the
            // subscription tests.
            if example.trim_start().starts_with("subscription") {
                continue;
            }
            let (_, body) = server.graphql(None, &example, json!({})).await;
            let whole = body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e.get("path").is_none())
                .collect::<Vec<_>>();
            assert!(
                whole.is_empty(),
                "{file}: an example the schema refuses:\n{example}\n{whole:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} examples found");
    server.stop().await;
}
