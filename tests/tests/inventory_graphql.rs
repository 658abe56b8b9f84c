//! The inventory through GraphQL on a real server: locations (ADMIN), staff stock corrections
//! scoped to their store, availability per channel and distance, read-your-writes, stock levels
//! and history, the live `availabilityChanged` feed, bad inputs, and the demo data set.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, GraphqlWs, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

const DEFINE: &str = "mutation($input: DefineLocationInput!) {
  defineLocation(input: $input) { location { id code active capabilities } position errors { field code message } }
}";

const COUNT: &str = "mutation($input: CountStockInput!) {
  countStock(input: $input) { stockLevel { sku locationCode onHand available } position errors { field code message } }
}";

const ADJUST: &str = "mutation($input: AdjustStockInput!) {
  adjustStock(input: $input) { stockLevel { onHand available } position errors { field code message } }
}";

const AVAILABILITY: &str = "query($sku: String!, $channel: SalesChannel!, $store: ID, $near: GeoPointInput, $atLeast: String) {
  availability(sku: $sku, channel: $channel, store: $store, near: $near, atLeast: $atLeast) {
    available locations { locationCode available distanceKm }
  }
}";

fn location_input(code: &str, kind: &str, lat: f64, lon: f64, capabilities: &[&str]) -> Value {
    json!({
        "code": code, "name": format!("{code} site"), "kind": kind,
        "address": { "line1": "1-1", "city": "Tokyo", "postalCode": "100-0001", "country": "JP" },
        "lat": lat, "lon": lon, "timeZone": "Asia/Tokyo", "capabilities": capabilities,
    })
}

struct World {
    server: TestServer,
    admin: String,
    /// Global ids by code.
    ids: std::collections::HashMap<String, String>,
}

impl World {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.server.graphql(token, query, variables).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    fn id(&self, code: &str) -> &str {
        &self.ids[code]
    }

    /// Counts `counted` units of `sku` at `code` as ADMIN; returns the write's position.
    async fn count(&self, code: &str, sku: &str, counted: i64) -> String {
        let body = self
            .gql(
                Some(&self.admin),
                COUNT,
                json!({ "input": { "location": self.id(code), "sku": sku, "counted": counted } }),
            )
            .await;
        let payload = &body["data"]["countStock"];
        assert_eq!(payload["errors"], json!([]), "{body}");
        payload["position"].as_str().unwrap().to_string()
    }
}

/// A DC in Tokyo, a Shibuya store (pickup + ship from store), a Yokohama store (pickup only),
/// and an Osaka store (pickup).
async fn world() -> World {
    let server = TestServer::start().await;
    let admin = server.token("admin", None, "ops");
    let mut world = World {
        server,
        admin,
        ids: Default::default(),
    };
    for (code, kind, lat, lon, caps) in [
        ("DC1", "DC", 35.70, 139.93, vec!["SHIP", "RETURNS"]),
        (
            "SHIBUYA",
            "STORE",
            35.6595,
            139.7005,
            vec!["PICKUP", "SHIP_FROM_STORE"],
        ),
        ("YOKOHAMA", "STORE", 35.4564, 139.6317, vec!["PICKUP"]),
        ("OSAKA", "STORE", 34.7025, 135.4959, vec!["PICKUP"]),
    ] {
        let body = world
            .gql(
                Some(&world.admin),
                DEFINE,
                json!({ "input": location_input(code, kind, lat, lon, &caps) }),
            )
            .await;
        let payload = &body["data"]["defineLocation"];
        assert_eq!(payload["errors"], json!([]), "{body}");
        assert_eq!(payload["location"]["active"], true);
        let id = payload["location"]["id"].as_str().unwrap().to_string();
        world.ids.insert(code.to_string(), id);
    }
    // Availability shows what the catalog sells: these SKUs are in it.
    for sku in ["TEE-M", "CHINO-L", "KNIT-S", "PARKA-M", "DENIM-M"] {
        world.sell(sku).await;
    }
    world
}

impl World {
    /// Puts `sku` into the catalog (active, 1990 JPY) through the PIM API.
    async fn sell(&self, sku: &str) {
        let auth = format!("Bearer {}", self.admin);
        let key = format!("sell-{sku}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key.as_str()),
        ];
        let body = br#"{"title":"Item","price":{"amount":"1990","currency":"JPY"}}"#;
        let path = format!("/api/order/v1/catalog/items/{sku}");
        let res = request(self.server.addr(), "PUT", &path, &headers, body).await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_are_managed_by_admin_and_listed_publicly() {
    let w = world().await;
    // Public list, by code.
    let body = w
        .gql(
            None,
            "{ locations(first: 10) { edges { node { code kind capabilities address { city } } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    let codes: Vec<&str> = body["data"]["locations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["DC1", "OSAKA", "SHIBUYA", "YOKOHAMA"]);

    // Only ADMIN defines; staff get FORBIDDEN and nothing is written.
    let staff = w.server.token("store-staff", Some("SHIBUYA"), "clerk");
    let body = w
        .gql(
            Some(&staff),
            DEFINE,
            json!({ "input": location_input("X1", "STORE", 35.0, 139.0, &["PICKUP"]) }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );

    // Bad input: typed error naming the field, nothing defined.
    let body = w
        .gql(
            Some(&w.admin),
            DEFINE,
            json!({ "input": location_input("X1", "STORE", 95.0, 139.0, &["PICKUP"]) }),
        )
        .await;
    let payload = &body["data"]["defineLocation"];
    assert_eq!(payload["location"], Value::Null);
    assert_eq!(payload["errors"][0]["code"], "INVALID_INPUT");
    assert_eq!(payload["errors"][0]["field"], json!(["input", "lat"]));
    // A duplicate code is a conflict.
    let body = w
        .gql(
            Some(&w.admin),
            DEFINE,
            json!({ "input": location_input("DC1", "DC", 35.0, 139.0, &["SHIP"]) }),
        )
        .await;
    assert_eq!(
        body["data"]["defineLocation"]["errors"][0]["code"],
        "CONFLICT"
    );

    // Update and deactivate.
    let body = w
        .gql(
            Some(&w.admin),
            "mutation($id: ID!) { updateLocation(input: { id: $id, name: \"Osaka Umeda\", pickupHoldDays: 5 }) { location { name pickupHoldDays } errors { code } } }",
            json!({ "id": w.id("OSAKA") }),
        )
        .await;
    assert_eq!(
        body["data"]["updateLocation"]["location"]["name"], "Osaka Umeda",
        "{body}"
    );
    assert_eq!(
        body["data"]["updateLocation"]["location"]["pickupHoldDays"],
        5
    );
    let body = w
        .gql(
            Some(&w.admin),
            "mutation($id: ID!) { deactivateLocation(id: $id) { location { active } errors { code } } }",
            json!({ "id": w.id("OSAKA") }),
        )
        .await;
    assert_eq!(
        body["data"]["deactivateLocation"]["location"]["active"],
        false
    );
    let body = w
        .gql(None, "{ locations { edges { node { code } } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["locations"]["edges"].as_array().unwrap().len(),
        3
    );
    let body = w
        .gql(
            None,
            "{ locations(activeOnly: false) { edges { node { code active } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["locations"]["edges"].as_array().unwrap().len(),
        4
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_per_channel_and_distance_reads_its_own_writes() {
    let w = world().await;
    w.count("DC1", "TEE-M", 100).await;
    w.count("SHIBUYA", "TEE-M", 5).await;
    w.count("YOKOHAMA", "TEE-M", 3).await;
    // The last write's position: the read waits for it instead of racing the view.
    let position = w.count("OSAKA", "TEE-M", 7).await;

    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "ONLINE", "atLeast": position }),
        )
        .await;
    let online = &body["data"]["availability"];
    // DC ships, Shibuya ships from store; Yokohama and Osaka are pickup only.
    assert_eq!(online["available"], 105, "{body}");
    let codes: Vec<&str> = online["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["locationCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["DC1", "SHIBUYA"]);

    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "PICKUP", "store": w.id("YOKOHAMA") }),
        )
        .await;
    assert_eq!(body["data"]["availability"]["available"], 3, "{body}");
    // The DC offers no pickup.
    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "PICKUP", "store": w.id("DC1") }),
        )
        .await;
    assert_eq!(body["data"]["availability"]["available"], 0);

    // Near Yokohama station: pickup stores nearest first with distances.
    let body = w
        .gql(
            None,
            "{ nearbyStores(sku: \"TEE-M\", lat: 35.4658, lon: 139.6223, radiusKm: 60) { edges { node { locationCode available distanceKm } } } }",
            json!({}),
        )
        .await;
    let stores = body["data"]["nearbyStores"]["edges"].as_array().unwrap();
    let codes: Vec<&str> = stores
        .iter()
        .map(|e| e["node"]["locationCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["YOKOHAMA", "SHIBUYA"], "{body}");
    let first_km = stores[0]["node"]["distanceKm"].as_f64().unwrap();
    assert!((0.5..3.0).contains(&first_km), "{first_km}");

    // Online, nearest first from Osaka.
    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "ONLINE", "near": { "lat": 34.70, "lon": 135.50 } }),
        )
        .await;
    let first = &body["data"]["availability"]["locations"][0];
    assert_eq!(first["locationCode"], "SHIBUYA", "{body}");
    assert!(first["distanceKm"].as_f64().unwrap() > 300.0);

    // Bad arguments are typed errors.
    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "PICKUP" }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], json!(["store"]));
    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "bad sku!", "channel": "ONLINE" }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], json!(["sku"]));
    let body = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "TEE-M", "channel": "ONLINE", "atLeast": "nope" }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], json!(["atLeast"]));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_correct_stock_at_their_own_store_only() {
    let w = world().await;
    w.count("SHIBUYA", "CHINO-L", 10).await;
    w.count("YOKOHAMA", "CHINO-L", 4).await;
    let clerk = w.server.token("store-staff", Some("SHIBUYA"), "clerk-7");

    let body = w
        .gql(
            Some(&clerk),
            ADJUST,
            json!({ "input": { "location": w.id("SHIBUYA"), "sku": "CHINO-L", "delta": -2, "reasonCode": "DAMAGED", "reference": "NOTE-12" } }),
        )
        .await;
    let payload = &body["data"]["adjustStock"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    assert_eq!(payload["stockLevel"]["onHand"], 8);

    // Another store: FORBIDDEN, and Yokohama's stock is untouched.
    let history = "query($loc: ID!) { stockMovements(sku: \"CHINO-L\", location: $loc) { edges { node { type onHandDelta reason reference actor } } } }";
    let before = w
        .gql(Some(&w.admin), history, json!({ "loc": w.id("YOKOHAMA") }))
        .await;
    let body = w
        .gql(
            Some(&clerk),
            ADJUST,
            json!({ "input": { "location": w.id("YOKOHAMA"), "sku": "CHINO-L", "delta": -1, "reasonCode": "DAMAGED" } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let body = w
        .gql(
            Some(&clerk),
            COUNT,
            json!({ "input": { "location": w.id("YOKOHAMA"), "sku": "CHINO-L", "counted": 0 } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let after = w
        .gql(Some(&w.admin), history, json!({ "loc": w.id("YOKOHAMA") }))
        .await;
    assert_eq!(before, after);
    // Nor may the clerk read another store's levels.
    let body = w
        .gql(
            Some(&clerk),
            "query($loc: ID!) { stockLevels(location: $loc) { edges { node { sku } } } }",
            json!({ "loc": w.id("YOKOHAMA") }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // Customers may not adjust at all.
    let customer = w.server.token("customer", None, "c-1");
    let body = w
        .gql(
            Some(&customer),
            ADJUST,
            json!({ "input": { "location": w.id("SHIBUYA"), "sku": "CHINO-L", "delta": 1, "reasonCode": "FOUND" } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // The history says who, why and with which document.
    let body = w
        .gql(Some(&clerk), history, json!({ "loc": w.id("SHIBUYA") }))
        .await;
    let edges = body["data"]["stockMovements"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "{body}");
    let adjusted = &edges[1]["node"];
    assert_eq!(adjusted["type"], "StockAdjusted.v1");
    assert_eq!(adjusted["onHandDelta"], -2);
    assert_eq!(adjusted["reason"], "DAMAGED");
    assert_eq!(adjusted["reference"], "NOTE-12");
    assert_eq!(adjusted["actor"], "STORE_STAFF:clerk-7@SHIBUYA");
    // A count takes its count sheet, and the history shows it (the first count had none).
    let body = w
        .gql(
            Some(&clerk),
            COUNT,
            json!({ "input": { "location": w.id("SHIBUYA"), "sku": "CHINO-L", "counted": 7, "reference": "SHEET-2026-12" } }),
        )
        .await;
    assert_eq!(body["data"]["countStock"]["errors"], json!([]), "{body}");
    let body = w
        .gql(Some(&clerk), history, json!({ "loc": w.id("SHIBUYA") }))
        .await;
    let edges = body["data"]["stockMovements"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["node"]["type"], "CycleCounted.v1");
    assert_eq!(edges[0]["node"]["reference"], Value::Null);
    assert_eq!(edges[2]["node"]["type"], "CycleCounted.v1");
    assert_eq!(edges[2]["node"]["reference"], "SHEET-2026-12", "{body}");
    // A reference with a line break is refused, naming it.
    let body = w
        .gql(
            Some(&clerk),
            COUNT,
            json!({ "input": { "location": w.id("SHIBUYA"), "sku": "CHINO-L", "counted": 7, "reference": "SHEET\n2" } }),
        )
        .await;
    let e = &body["data"]["countStock"]["errors"][0];
    assert_eq!(e["code"], "INVALID_INPUT", "{body}");
    assert_eq!(e["field"], json!(["input", "reference"]), "{body}");
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stock_inputs_are_typed_errors_and_append_nothing() {
    let w = world().await;
    let position = w.count("SHIBUYA", "KNIT-S", 3).await;
    let head = |w: &World| {
        let store = w.server.running.store.clone();
        async move { store.head().await.unwrap() }
    };
    assert_eq!(head(&w).await.unwrap().to_string(), position);
    let cases = [
        // (input, code, field)
        (
            json!({ "location": w.id("SHIBUYA"), "sku": "KNIT-S", "delta": 0, "reasonCode": "X" }),
            "INVALID_INPUT",
            json!(["input", "delta"]),
        ),
        (
            json!({ "location": w.id("SHIBUYA"), "sku": "KNIT-S", "delta": -5, "reasonCode": "X" }),
            "INSUFFICIENT_STOCK",
            json!(["input", "qty"]),
        ),
        (
            json!({ "location": w.id("SHIBUYA"), "sku": "KNIT-S", "delta": i64::MAX, "reasonCode": "X" }),
            "INVALID_INPUT",
            json!(["input", "delta"]),
        ),
        (
            json!({ "location": w.id("SHIBUYA"), "sku": "NEVER-SEEN", "delta": 1, "reasonCode": "X" }),
            "NOT_FOUND",
            json!(["input", "sku"]),
        ),
        (
            json!({ "location": w.id("SHIBUYA"), "sku": "KNIT-S", "delta": 1, "reasonCode": "" }),
            "INVALID_INPUT",
            json!(["input", "reasonCode"]),
        ),
        (
            json!({ "location": "bm90LWFuLWlk", "sku": "KNIT-S", "delta": 1, "reasonCode": "X" }),
            "INVALID_INPUT",
            json!(["input", "location"]),
        ),
    ];
    for (input, code, field) in cases {
        let body = w
            .gql(Some(&w.admin), ADJUST, json!({ "input": input }))
            .await;
        let payload = &body["data"]["adjustStock"];
        assert_eq!(payload["stockLevel"], Value::Null, "{body}");
        assert_eq!(payload["errors"][0]["code"], code, "{input}: {body}");
        assert_eq!(payload["errors"][0]["field"], field, "{input}: {body}");
    }
    // A location id for a code that was never defined.
    let ghost = ichigen_shared::graphql::conventions::encode_id("Location", "GHOST");
    let body = w
        .gql(
            Some(&w.admin),
            COUNT,
            json!({ "input": { "location": ghost.to_string(), "sku": "KNIT-S", "counted": 1 } }),
        )
        .await;
    assert_eq!(
        body["data"]["countStock"]["errors"][0]["code"], "NOT_FOUND",
        "{body}"
    );
    // A count at an inactive location.
    w.gql(
        Some(&w.admin),
        "mutation($id: ID!) { deactivateLocation(id: $id) { errors { code } } }",
        json!({ "id": w.id("SHIBUYA") }),
    )
    .await;
    let after_deactivation = head(&w).await;
    let body = w
        .gql(
            Some(&w.admin),
            COUNT,
            json!({ "input": { "location": w.id("SHIBUYA"), "sku": "KNIT-S", "counted": 1 } }),
        )
        .await;
    let error = &body["data"]["countStock"]["errors"][0];
    assert_eq!(error["code"], "LOCATION_INACTIVE", "{body}");
    assert_eq!(error["field"], json!(["input", "location"]));
    // Negative count.
    let body = w
        .gql(
            Some(&w.admin),
            COUNT,
            json!({ "input": { "location": w.id("YOKOHAMA"), "sku": "KNIT-S", "counted": -1 } }),
        )
        .await;
    assert_eq!(
        body["data"]["countStock"]["errors"][0]["field"],
        json!(["input", "counted"])
    );
    // Nothing was appended by any refused command.
    assert_eq!(head(&w).await, after_deactivation);
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_levels_page_through_a_location() {
    let w = world().await;
    for i in 0..7 {
        w.count("DC1", &format!("SKU-{i}"), 10 + i).await;
    }
    let query = "query($loc: ID!, $after: String) { stockLevels(location: $loc, first: 3, after: $after) { edges { cursor node { sku onHand available } } pageInfo { hasNextPage } } }";
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let body = w
            .gql(
                Some(&w.admin),
                query,
                json!({ "loc": w.id("DC1"), "after": after }),
            )
            .await;
        let conn = &body["data"]["stockLevels"];
        for edge in conn["edges"].as_array().unwrap() {
            seen.push((
                edge["node"]["sku"].as_str().unwrap().to_string(),
                edge["node"]["onHand"].as_i64().unwrap(),
            ));
            after = Some(edge["cursor"].as_str().unwrap().to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
    }
    let expected: Vec<(String, i64)> = (0..7).map(|i| (format!("SKU-{i}"), 10 + i)).collect();
    assert_eq!(seen, expected);
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_changes_arrive_over_graphql_ws() {
    let w = world().await;
    w.count("SHIBUYA", "PARKA-M", 2).await;
    let (mut ws, ack) = GraphqlWs::connect(w.server.addr(), json!({})).await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    ws.send(json!({
        "id": "1",
        "type": "subscribe",
        "payload": {
            "query": "subscription($locs: [ID!]) { availabilityChanged(skus: [\"PARKA-M\"], locations: $locs) { sku locationCode onHand available } }",
            "variables": { "locs": [w.id("SHIBUYA")] }
        }
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A change elsewhere is filtered out; the one asked for arrives.
    w.count("YOKOHAMA", "PARKA-M", 9).await;
    w.count("SHIBUYA", "PARKA-M", 6).await;
    // (The first count's change may still reach the view after the subscription began: only
    // Shibuya's changes ever arrive, the last of them the 6.)
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next["type"], "next", "{next}");
        let level = &next["payload"]["data"]["availabilityChanged"];
        assert_eq!(level["locationCode"], "SHIBUYA", "{next}");
        if level["onHand"] == 6 {
            break;
        }
        assert_eq!(level["onHand"], 2, "{next}");
    }
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_data_set_is_seeded_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    let (_, body) = server
        .graphql(
            None,
            "{ locations { edges { node { code } } } availability(sku: \"TEE-M\") { available } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["locations"]["edges"].as_array().unwrap().len(),
        6,
        "{body}"
    );
    let available = body["data"]["availability"]["available"].as_i64().unwrap();
    assert!(available > 0, "{body}");
    let head = server.running.store.head().await.unwrap();
    // A restart on the same data does not seed again.
    let dir = server.stop().await;
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    assert_eq!(server.running.store.head().await.unwrap(), head);
    let (_, again) = server
        .graphql(
            None,
            "{ availability(sku: \"TEE-M\") { available } }",
            json!({}),
        )
        .await;
    assert_eq!(again["data"]["availability"]["available"], available);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wms_tokens_reach_the_integration_api_only() {
    use ichigen_tests::server::request;
    let w = world().await;
    let wms = w.server.token("wms-integration", None, "wms-1");
    let auth = format!("Bearer {wms}");
    // The WMS receives goods through its API on the same server…
    let body = br#"{"sku":"DENIM-M","location":"DC1","qty":12,"reference":"ASN-1"}"#;
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "asn-1-line-1"),
    ];
    let res = request(
        w.server.addr(),
        "POST",
        "/api/inventory/v1/receipts",
        &headers,
        body,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let position = res.json()["position"].as_str().unwrap().to_string();
    // …and a storefront reads it right after, through GraphQL.
    let answer = w
        .gql(
            None,
            AVAILABILITY,
            json!({ "sku": "DENIM-M", "channel": "ONLINE", "atLeast": position }),
        )
        .await;
    assert_eq!(answer["data"]["availability"]["available"], 12, "{answer}");
    // A retry of the same request is answered the same and applied once.
    let again = request(
        w.server.addr(),
        "POST",
        "/api/inventory/v1/receipts",
        &headers,
        body,
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, res.body);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    // The WMS token opens nothing in GraphQL, not even public reads.
    let (status, refused) = w
        .server
        .graphql(
            Some(&wms),
            "{ locations { edges { node { code } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // And a storefront customer's token opens nothing in the WMS API.
    let customer = format!("Bearer {}", w.server.token("customer", None, "c-1"));
    let res = request(
        w.server.addr(),
        "POST",
        "/api/inventory/v1/receipts",
        &[
            ("authorization", customer.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", "k-2"),
        ],
        body,
    )
    .await;
    assert_eq!(res.status, 403, "{}", res.text());
    w.server.stop().await;
}
