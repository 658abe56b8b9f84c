//! Read-your-writes on the served API: any position a write returned, or `storeHead`, passed as
//! `atLeast` makes every read wait only until the model that serves it has got there — also
//! when the last write is one that model does not take (a read model's position follows the
//! log through the subscription's checkpoints). On an idle server each such read answers at
//! once, not after the 5 s wait and an INTERNAL error.

use ichigen_gateway::serve::Target;
use ichigen_shared::graphql::conventions::encode_id;
use ichigen_shared::store::ExpectedRevision;
use ichigen_tests::conformance::event;
use ichigen_tests::server::{request, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Far below the 5 s a read waits for a position before it gives up.
const AT_ONCE: Duration = Duration::from_millis(1000);

fn location_id(code: &str) -> String {
    encode_id("Location", code).to_string()
}

/// The GraphQL reads that take `atLeast`, each with the role that may run it.
const READS: [(&str, &str); 4] = [
    (
        "availability",
        "query($p: String) { availability(sku: \"TEE-M\", channel: ONLINE, atLeast: $p) { available } }",
    ),
    (
        "stockLevels",
        "query($p: String, $loc: ID!) { stockLevels(location: $loc, first: 5, atLeast: $p) { edges { node { sku } } } }",
    ),
    (
        "orders",
        "query($p: String) { orders(first: 5, atLeast: $p) { edges { node { id } } } }",
    ),
    (
        "returns",
        "query($p: String) { returns(first: 5, atLeast: $p) { edges { node { id } } } }",
    ),
];

/// Runs `query` with `atLeast: position`; returns the body and how long it took.
async fn timed_read(
    server: &TestServer,
    token: &str,
    query: &str,
    position: &str,
) -> (Value, Duration) {
    let started = Instant::now();
    let (status, body) = server
        .graphql(
            Some(token),
            query,
            json!({ "p": position, "loc": location_id("TKY-DC1") }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (body, started.elapsed())
}

/// `GET /api/inventory/v1/stock/TKY-DC1/TEE-M?atLeast=position`: status, body, time.
async fn timed_stock(server: &TestServer, position: &str) -> (u16, Value, Duration) {
    let token = server.token("wms-integration", None, "wms-1");
    let auth = format!("Bearer {token}");
    let started = Instant::now();
    let res = request(
        server.addr(),
        "GET",
        &format!("/api/inventory/v1/stock/TKY-DC1/TEE-M?atLeast={position}"),
        &[("authorization", auth.as_str())],
        b"",
    )
    .await;
    (res.status, res.json(), started.elapsed())
}

async fn store_head(server: &TestServer) -> String {
    let (_, body) = server.graphql(None, "{ storeHead }", json!({})).await;
    body["data"]["storeHead"]
        .as_str()
        .unwrap_or_else(|| panic!("no storeHead: {body}"))
        .to_string()
}

async fn demo() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_head_as_at_least_answers_every_read_at_once() {
    let server = demo().await;
    let admin = server.token("admin", None, "admin-1");
    // The last event is one no read model takes, as after a write of another service.
    server
        .running
        .store
        .append(
            "probe-1",
            ExpectedRevision::Any,
            vec![event("Probed.v1", json!({}))],
        )
        .await
        .unwrap();
    let head = store_head(&server).await;
    for (name, query) in READS {
        let (body, took) = timed_read(&server, &admin, query, &head).await;
        assert!(body.get("errors").is_none(), "{name}: {body}");
        assert!(
            took < AT_ONCE,
            "{name} with atLeast = storeHead took {took:?}"
        );
    }
    let (status, body, took) = timed_stock(&server, &head).await;
    assert_eq!(status, 200, "{body}");
    assert!(took < AT_ONCE, "WMS GET /stock took {took:?}");
    // The head moved on meanwhile (background processes save checkpoints): still at once.
    let head = store_head(&server).await;
    for (name, query) in READS {
        let (body, took) = timed_read(&server, &admin, query, &head).await;
        assert!(body.get("errors").is_none(), "{name}: {body}");
        assert!(took < AT_ONCE, "{name} took {took:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_orders_position_answers_availability_and_the_wms_stock_read() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    let head = store_head(&server).await;
    let (before, _) = timed_read(&server, &alice, READS[0].1, &head).await;
    let available_before = before["data"]["availability"]["available"]
        .as_i64()
        .unwrap_or_else(|| panic!("{before}"));
    let (_, placed) = server
        .graphql(
            Some(&alice),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
                position errors { code message } } }",
            json!({ "input": { "idempotencyKey": "ryw-1", "lines": [{ "sku": "TEE-M",
                "quantity": 2, "delivery": { "method": "SHIP", "address": {
                "line1": "1-2-3 Marunouchi", "city": "Tokyo", "postalCode": "100-0005",
                "country": "JP", "lat": 35.681, "lon": 139.767 } } }] } }),
        )
        .await;
    let payload = &placed["data"]["placeOrder"];
    assert_eq!(payload["errors"], json!([]), "{placed}");
    // The order's own event (OrderPlaced) is the last one written: the inventory view does
    // not take it, yet its position is what the caller holds.
    let position = payload["position"].as_str().unwrap().to_string();

    let (body, took) = timed_read(&server, &alice, READS[0].1, &position).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(took < AT_ONCE, "availability took {took:?}");
    assert_eq!(
        body["data"]["availability"]["available"].as_i64(),
        Some(available_before - 2),
        "the placement's holds are seen: {body}"
    );
    let (status, stock, took) = timed_stock(&server, &position).await;
    assert_eq!(status, 200, "{stock}");
    assert!(took < AT_ONCE, "WMS GET /stock took {took:?}");
    server.stop().await;
}
