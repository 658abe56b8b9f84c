//! A response's fields come in the query's order (GraphQL spec, "Serialization Format"), on
//! the served endpoint, also when a field waits (`order(id:)` reads the order's stream) and the
//! fields after it do not.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, TestServer};
use serde_json::json;

/// The raw response text of `query` as `token`.
async fn raw(
    server: &TestServer,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> String {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let auth = format!("Bearer {token}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let res = request(server.addr(), "POST", "/graphql", &headers, body.as_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_answer_fields_in_the_querys_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    let alice = server.token("customer", None, "alice");
    let placed = raw(
        &server,
        &alice,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } errors { code } } }",
        json!({ "input": { "idempotencyKey": "order-of-fields", "lines": [{ "sku": "TEE-M",
            "quantity": 1, "delivery": { "method": "SHIP", "address": { "line1": "1-2-3 Marunouchi",
            "city": "Tokyo", "postalCode": "100-0005", "country": "JP", "lat": 35.681, "lon": 139.767 } } }] } }),
    )
    .await;
    let placed: serde_json::Value = serde_json::from_str(&placed).unwrap();
    let id = placed["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed}"))
        .to_string();

    let query = "query($id: ID!) {
        order(id: $id) { status id lines { quantity sku } }
        viewer { subject role }
        locations(first: 1) { edges { node { name code } } }
    }";
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(raw(&server, &alice, query, json!({ "id": id })).await);
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0], "identical requests, different answers");
        let at = |key: &str| {
            answer
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("no {key} in {answer}"))
        };
        assert!(
            at("order") < at("viewer") && at("viewer") < at("locations"),
            "{answer}"
        );
        assert!(
            at("status") < at("id") && at("id") < at("lines"),
            "{answer}"
        );
        assert!(at("quantity") < at("sku"), "{answer}");
        assert!(at("subject") < at("role"), "{answer}");
        assert!(at("name") < at("code"), "{answer}");
    }
    server.stop().await;
}
