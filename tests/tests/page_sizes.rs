//! `first: 500`, the documented largest page, with an ordinary selection passes the served
//! complexity limit on every connection; many aliases of a big page are still refused (README,
//! `graphql.complexity_limit`).

use ichigen_gateway::serve::Target;
use ichigen_tests::server::TestServer;
use serde_json::{json, Value};

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

const PAGE_INFO: &str = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";
const LOCATION: &str = "id code name kind address { city postalCode country } lat lon timeZone \
                        capabilities pickupHoldDays dailyCapacity active";
const MONEY: &str = "{ amount currency }";

/// Every connection of the schema with `first: 500` and what a client would select of its
/// items: their scalar fields and the small objects beside them.
fn full_pages() -> Vec<(&'static str, String)> {
    let s = location_id("TKY-SHIBUYA");
    vec![
        (
            "streamEvents",
            format!(
                r#"{{ streamEvents(stream: "location-TKY-SHIBUYA", first: 500) {{ {PAGE_INFO}
                edges {{ cursor node {{ id eventId stream revision position type data
                    correlationId causationId actor occurredAt }} }} }} }}"#
            ),
        ),
        (
            "locations",
            format!("{{ locations(first: 500) {{ {PAGE_INFO} edges {{ cursor node {{ {LOCATION} }} }} }} }}"),
        ),
        (
            "nearbyStores",
            format!(
                r#"{{ nearbyStores(sku: "TEE-M", lat: 35.66, lon: 139.70, radiusKm: 100, first: 500) {{
                {PAGE_INFO} edges {{ cursor node {{ locationCode available distanceKm
                    location {{ id code name pickupHoldDays }} }} }} }} }}"#
            ),
        ),
        (
            "stockLevels",
            format!(
                r#"{{ stockLevels(location: "{s}", first: 500) {{ {PAGE_INFO}
                edges {{ cursor node {{ id sku onHand reserved safetyStock available incoming
                    nonSellable locationCode condition resaleGrade location {{ id code name }} }} }} }} }}"#
            ),
        ),
        (
            "stockMovements",
            format!(
                r#"{{ stockMovements(sku: "TEE-M", location: "{s}", first: 500) {{ {PAGE_INFO}
                edges {{ cursor node {{ id type onHandDelta reservedDelta quantity reason
                    disposition returnUnitKey reference actor occurredAt position correlationId }} }} }} }}"#
            ),
        ),
        (
            "orders",
            format!(
                "{{ orders(first: 500) {{ {PAGE_INFO} edges {{ cursor node {{ id status customerId
                    channel placedAt total {MONEY} payable {MONEY}
                    lines {{ lineId sku title quantity unitPrice {MONEY} shipped cancelled }}
                    payment {{ provider authorized {MONEY} captured {MONEY} voided }}
                    fulfillments {{ id locationCode kind status trackingNumber }} }} }} }} }}"
            ),
        ),
        (
            "pickupQueue",
            format!(
                r#"{{ pickupQueue(store: "{s}", first: 500) {{ {PAGE_INFO} edges {{ cursor node {{
                    id orderId locationId locationCode kind status destinationStoreCode
                    destinationStoreId carrier trackingNumber pickupCode pickupExpiresAt
                    createdAt updatedAt lines {{ lineId sku quantity picked short cancelled }} }} }} }} }}"#
            ),
        ),
        (
            "shipFromStoreTasks",
            format!(
                r#"{{ shipFromStoreTasks(store: "{s}", first: 500) {{ {PAGE_INFO} edges {{ cursor node {{
                    id orderId locationId locationCode kind status destinationStoreCode
                    destinationStoreId carrier trackingNumber pickupCode pickupExpiresAt
                    createdAt updatedAt lines {{ lineId sku quantity picked short cancelled }} }} }} }} }}"#
            ),
        ),
        (
            "returns",
            format!(
                "{{ returns(first: 500) {{ {PAGE_INFO} edges {{ cursor node {{ id orderId customerId
                    requestedBy requestedAt note status refundedTotal {MONEY}
                    lines {{ id orderLineId sku title quantity received returnBy unitPrice {MONEY}
                             reason {{ code labelEn windowDays }} }} }} }} }} }}"
            ),
        ),
    ]
}

fn errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_page_with_an_ordinary_selection_works_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    // The served defaults: the limit under test is the one `ichigen serve` runs with.
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    let admin = server.token("admin", None, "root");
    let pages = full_pages();
    let sdl = ichigen_gateway::graphql::sdl();
    let connections = sdl.matches("Connection!").count();
    assert_eq!(
        pages.len(),
        connections,
        "a connection of the schema is not tried here"
    );
    for (name, query) in &pages {
        let (status, body) = server.graphql(Some(&admin), query, json!({})).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(errors(&body).is_empty(), "{name}: {body}");
        assert!(body["data"][name]["edges"].is_array(), "{name}: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_aliases_of_a_big_page_are_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |_| {}).await;
    let admin = server.token("admin", None, "root");
    let s = location_id("TKY-SHIBUYA");
    let aliases: String = (0..20)
        .map(|i| {
            format!(
                r#"a{i}: stockLevels(location: "{s}", first: 500) {{ edges {{ node {{ id }} }} }} "#
            )
        })
        .collect();
    let (status, body) = server
        .graphql(Some(&admin), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "{body}");
    let messages = errors(&body);
    assert!(messages.iter().any(|m| m.contains("too complex")), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{body}"
    );
    server.stop().await;
}
