//! On a real server: daily capacity is decided by the claim (concurrent placements never take
//! more orders at a location than its capacity on its local day), a location without a
//! capacity takes every order, availability shows only what `placeOrder` can sell, the order
//! input follows the one SKU rule, and the inventory's hold expiry runs in the served server.

use chrono::{Duration, Utc};
use ichigen_gateway::serve::Target;
use ichigen_inventory::domain::StockCommand;
use ichigen_shared::auth::Actor;
use ichigen_shared::clock::{Clock, ManualClock};
use ichigen_shared::envelope::Metadata;
use ichigen_tests::server::{request, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;

const PLACE: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id lines { allocations { locationCode quantity } } }
    errors { field code message }
  }
}";

const DEFINE: &str = "mutation($input: DefineLocationInput!) {
  defineLocation(input: $input) { location { code dailyCapacity } errors { field code message } }
}";

const AVAILABILITY: &str = "query($sku: String!) {
  availability(sku: $sku) { available locations { locationCode available } }
}";

struct World {
    server: TestServer,
    admin: String,
}

impl World {
    async fn start() -> World {
        Self::on(TestServer::start().await)
    }

    fn on(server: TestServer) -> World {
        let admin = server.token("admin", None, "ops");
        World { server, admin }
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.server.graphql(Some(token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A DC at (`lat`, `lon`) that ships, with `capacity` orders a day (`None`: the field
    /// left out).
    async fn dc(&self, code: &str, lat: f64, lon: f64, capacity: Option<i64>) -> Value {
        let mut input = json!({
            "code": code, "name": code, "kind": "DC",
            "address": { "line1": "1-1", "city": "Tokyo", "postalCode": "100-0001", "country": "JP" },
            "lat": lat, "lon": lon, "timeZone": "Asia/Tokyo", "capabilities": ["SHIP"],
        });
        if let Some(c) = capacity {
            input["dailyCapacity"] = json!(c);
        }
        let body = self
            .gql(&self.admin, DEFINE, json!({ "input": input }))
            .await;
        let payload = &body["data"]["defineLocation"];
        assert_eq!(payload["errors"], json!([]), "{body}");
        payload["location"].clone()
    }

    async fn wms(&self, path: &str, key: &str, body: Value) -> Value {
        let auth = format!("Bearer {}", self.admin);
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ];
        let res = request(
            self.server.addr(),
            "POST",
            &format!("/api/inventory/v1{path}"),
            &headers,
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()
    }

    async fn receive(&self, sku: &str, location: &str, qty: i64) -> String {
        let key = format!("rcv-{sku}-{location}-{qty}");
        let body = json!({ "sku": sku, "location": location, "qty": qty });
        self.wms("/receipts", &key, body).await["position"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Puts `sku` into the catalog through the PIM API (`active` as given).
    async fn sell(&self, sku: &str, active: bool) {
        let auth = format!("Bearer {}", self.admin);
        let key = format!("sell-{sku}-{active}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key.as_str()),
        ];
        let body = json!({"title": "Item", "price": {"amount": "1000", "currency": "JPY"}, "active": active});
        let path = format!("/api/order/v1/catalog/items/{sku}");
        let res = request(
            self.server.addr(),
            "PUT",
            &path,
            &headers,
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }

    /// Reserved units of `sku` at `location`, as the WMS API answers a no-op safety-stock
    /// write (`probe` makes its key fresh).
    async fn reserved(&self, sku: &str, location: &str, probe: usize) -> i64 {
        let key = format!("probe-{sku}-{location}-{probe}");
        let body = json!({"sku": sku, "location": location, "qty": 0});
        self.wms("/safety-stock", &key, body).await["levels"]["reserved"]
            .as_i64()
            .unwrap()
    }

    async fn place(&self, customer: &str, key: &str, sku: &str, qty: i64) -> Value {
        let token = self.server.token("customer", None, customer);
        let input = json!({ "idempotencyKey": key, "lines": [ship_line(sku, qty)] });
        let body = self.gql(&token, PLACE, json!({ "input": input })).await;
        body["data"]["placeOrder"].clone()
    }
}

fn ship_line(sku: &str, qty: i64) -> Value {
    json!({ "sku": sku, "quantity": qty, "delivery": { "method": "SHIP",
        "address": { "line1": "1-2-3 Marunouchi", "city": "Tokyo", "postalCode": "100-0005",
                     "country": "JP", "lat": 35.681, "lon": 139.767 } } })
}

/// The locations a placed order took stock from.
fn locations_of(payload: &Value) -> Vec<String> {
    payload["order"]["lines"][0]["allocations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["locationCode"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_location_never_takes_more_orders_than_its_daily_capacity() {
    let w = World::start().await;
    // CAP-A (10 a day) next to the customers, FREE (no capacity given: unlimited) far away;
    // CAP-B (10 a day) is the only one with SKU-B.
    let free = w.dc("FREE", 34.70, 135.50, None).await;
    assert_eq!(free["dailyCapacity"], Value::Null, "left out = unlimited");
    w.dc("CAP-A", 35.68, 139.77, Some(10)).await;
    w.dc("CAP-B", 35.69, 139.76, Some(10)).await;
    w.sell("SKU-A", true).await;
    w.sell("SKU-B", true).await;
    w.receive("SKU-A", "CAP-A", 1000).await;
    w.receive("SKU-A", "FREE", 1000).await;
    w.receive("SKU-B", "CAP-B", 1000).await;

    // 100 concurrent orders of SKU-A: CAP-A takes exactly 10, the rest are re-sourced to FREE.
    let placed = futures::future::join_all((0..100).map(|i| {
        let w = &w;
        async move {
            w.place(&format!("a-{i}"), &format!("k-{i}"), "SKU-A", 1)
                .await
        }
    }))
    .await;
    let mut at = std::collections::BTreeMap::<String, usize>::new();
    for p in &placed {
        assert_eq!(p["errors"], json!([]), "{p}");
        for l in locations_of(p) {
            *at.entry(l).or_default() += 1;
        }
    }
    assert_eq!(at.get("CAP-A"), Some(&10), "{at:?}");
    assert_eq!(
        at.get("FREE"),
        Some(&90),
        "a location without capacity takes orders: {at:?}"
    );

    // 100 concurrent orders of SKU-B: only CAP-B has it; 10 are placed, 90 refused, naming
    // the line and the reason.
    let placed = futures::future::join_all((0..100).map(|i| {
        let w = &w;
        async move {
            w.place(&format!("b-{i}"), &format!("k-{i}"), "SKU-B", 1)
                .await
        }
    }))
    .await;
    let ok = placed.iter().filter(|p| p["errors"] == json!([])).count();
    assert_eq!(ok, 10);
    for p in placed.iter().filter(|p| p["errors"] != json!([])) {
        let e = &p["errors"][0];
        assert_eq!(e["code"], "CAPACITY_EXHAUSTED", "{p}");
        assert_eq!(e["field"], json!(["input", "lines", "0"]), "{p}");
        assert!(e["message"].as_str().unwrap().contains("CAP-B"), "{p}");
        assert_eq!(p["order"], Value::Null);
    }
    // The stock of the refused orders is not held.
    let body = w
        .gql(&w.admin, AVAILABILITY, json!({ "sku": "SKU-B" }))
        .await;
    assert_eq!(
        body["data"]["availability"]["locations"],
        json!([]),
        "CAP-B is full today"
    );
    assert_eq!(w.reserved("SKU-B", "CAP-B", 0).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_shows_only_what_place_order_can_sell() {
    let w = World::start().await;
    w.dc("DC1", 35.68, 139.77, Some(1)).await;
    w.dc("DC2", 34.70, 135.50, None).await;
    w.sell("SOLD", true).await;
    w.sell("RETIRED", false).await;
    // Receipts of SKUs the catalog does not know, or no longer sells, are accepted…
    w.receive("UNKNOWN", "DC2", 5).await;
    w.receive("RETIRED", "DC2", 5).await;
    w.receive("SOLD", "DC1", 2).await;
    let position = w.receive("SOLD", "DC2", 3).await;
    // …but not offered.
    for sku in ["UNKNOWN", "RETIRED"] {
        let body = w.gql(&w.admin, AVAILABILITY, json!({ "sku": sku })).await;
        assert_eq!(
            body["data"]["availability"],
            json!({"available": 0, "locations": []}),
            "{sku}"
        );
        let p = w.place("c-1", &format!("try-{sku}"), sku, 1).await;
        assert_eq!(p["errors"][0]["code"], "NOT_FOUND", "{p}");
        assert_eq!(
            p["errors"][0]["field"],
            json!(["input", "lines", "0", "sku"])
        );
    }
    let query =
        "query($sku: String!, $at: String) { availability(sku: $sku, atLeast: $at) { available } }";
    let body = w
        .gql(&w.admin, query, json!({ "sku": "SOLD", "at": position }))
        .await;
    assert_eq!(body["data"]["availability"]["available"], 5);
    // DC1 takes one order a day: after it, availability leaves DC1 out.
    let p = w.place("c-1", "first", "SOLD", 1).await;
    assert_eq!(locations_of(&p), ["DC1"], "{p}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let body = w
            .gql(&w.admin, AVAILABILITY, json!({ "sku": "SOLD" }))
            .await;
        let a = &body["data"]["availability"];
        if a["locations"] == json!([{"locationCode": "DC2", "available": 3}]) {
            assert_eq!(a["available"], 3);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DC1 still offered: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // What it shows can be ordered.
    let p = w.place("c-2", "second", "SOLD", 3).await;
    assert_eq!(p["errors"], json!([]), "{p}");
    assert_eq!(locations_of(&p), ["DC2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sku_with_a_line_break_is_refused_not_trimmed() {
    let w = World::start().await;
    w.dc("DC1", 35.68, 139.77, None).await;
    w.sell("TEE-M", true).await;
    w.receive("TEE-M", "DC1", 5).await;
    for bad in ["TEE-M\n", " TEE-M", "TEE-M\r\n"] {
        let p = w.place("c-1", &format!("nl-{}", bad.len()), bad, 1).await;
        assert_eq!(p["order"], Value::Null, "{p}");
        assert_eq!(p["errors"][0]["code"], "INVALID_INPUT", "{p}");
        assert_eq!(
            p["errors"][0]["field"],
            json!(["input", "lines", "0", "sku"]),
            "{p}"
        );
    }
    assert_eq!(w.reserved("TEE-M", "DC1", 0).await, 0, "nothing reserved");
    // A bogus time zone is refused by defineLocation.
    let input = json!({
        "code": "BAD-TZ", "name": "x", "kind": "DC",
        "address": { "line1": "1-1", "city": "Tokyo", "postalCode": "100-0001", "country": "JP" },
        "lat": 35.0, "lon": 139.0, "timeZone": "Asia/Tokio", "capabilities": ["SHIP"],
    });
    let body = w.gql(&w.admin, DEFINE, json!({ "input": input })).await;
    let e = &body["data"]["defineLocation"]["errors"][0];
    assert_eq!(e["code"], "INVALID_INPUT", "{body}");
    assert_eq!(e["field"], json!(["input", "timeZone"]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_server_releases_holds_that_expire() {
    let clock = ManualClock::new(Utc::now());
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with_clock(dir, Target::All, |_| {}, Arc::new(clock.clone())).await;
    let w = World::on(server);
    w.dc("DC1", 35.68, 139.77, None).await;
    w.receive("SKU-H", "DC1", 5).await;
    // A hold with an expiry, as re-sourcing after a short pick makes them, in the served
    // server's own inventory service.
    let held = w
        .server
        .running
        .inventory()
        .stock
        .execute(
            "SKU-H",
            "DC1",
            vec![StockCommand::Reserve {
                reservation_id: "order:x/resource:y:L1#0".into(),
                owner: "order:x/resource:y:L1".into(),
                qty: 3,
                expires_at: Some(clock.now() + Duration::minutes(15)),
            }],
            Metadata::new(Actor::system("test")),
        )
        .await
        .unwrap();
    assert_eq!(held.levels.reserved, 3);
    assert!(w.server.running.inventory().processes_running());
    // Before its expiry nothing happens; after it, the service's own expiry process frees it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(w.reserved("SKU-H", "DC1", 0).await, 3);
    clock.advance(Duration::minutes(16));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        if w.reserved("SKU-H", "DC1", n).await == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hold was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let inventory = w.server.running.inventory().clone();
    w.server.stop().await;
    assert!(!inventory.processes_running(), "stopped with the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pickup_is_held_until_local_midnight_of_its_last_hold_day() {
    // 23:50 in Tokyo on 2026-12-04: the day a pickup is made ready does not count.
    let ready_at = chrono::DateTime::parse_from_rfc3339("2026-12-04T14:50:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = ManualClock::new(ready_at);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_clock(
        dir,
        Target::All,
        |s| s.demo.seed = true,
        Arc::new(clock.clone()),
    )
    .await;
    let w = World::on(server);
    let store = ichigen_shared::graphql::conventions::encode_id("Location", "TKY-SHINJUKU").0;
    let alice = w.server.token("customer", None, "alice");
    let input = json!({ "idempotencyKey": "hold-1", "lines": [{ "sku": "KNIT-L", "quantity": 1,
        "delivery": { "method": "PICKUP", "store": store } }] });
    let body = w.gql(&alice, PLACE, json!({ "input": input })).await;
    let order_id = body["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let clerk = w.server.token("store-staff", Some("TKY-SHINJUKU"), "clerk");
    let query = "query($id: ID!) { order(id: $id) { fulfillments { id } } }";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fid = loop {
        let body = w.gql(&alice, query, json!({ "id": order_id })).await;
        if let Some(id) = body["data"]["order"]["fulfillments"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fulfillment: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let pick = "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { errors { code } } }";
    let body = w.gql(&clerk, pick, json!({ "id": fid })).await;
    assert_eq!(
        body["data"]["pickFulfillment"]["errors"],
        json!([]),
        "{body}"
    );
    let ready = "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { fulfillmentOrder { pickupExpiresAt } errors { code } } }";
    let body = w.gql(&clerk, ready, json!({ "id": fid })).await;
    // TKY-SHINJUKU holds 7 days (demo), counted in Tokyo days after Dec 4: collectable
    // through Dec 11, expired at 00:00 Tokyo on Dec 12 (15:00 UTC on Dec 11), not 7 × 24 h
    // after 23:50.
    assert_eq!(
        body["data"]["markReadyForPickup"]["fulfillmentOrder"]["pickupExpiresAt"],
        "2026-12-11T15:00:00+00:00",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_capacity_is_a_number_or_null_for_unlimited() {
    let w = World::start().await;
    let dc = w.dc("DC1", 35.68, 139.77, Some(5)).await;
    assert_eq!(dc["dailyCapacity"], 5);
    let update = "mutation($input: UpdateLocationInput!) {
      updateLocation(input: $input) { location { dailyCapacity } errors { field code } } }";
    let id = ichigen_shared::graphql::conventions::encode_id("Location", "DC1").0;
    // Another field only: the capacity stays.
    let body = w
        .gql(
            &w.admin,
            update,
            json!({ "input": { "id": id, "name": "Tokyo DC" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateLocation"]["location"]["dailyCapacity"], 5,
        "{body}"
    );
    // null: unlimited.
    let body = w
        .gql(
            &w.admin,
            update,
            json!({ "input": { "id": id, "dailyCapacity": null } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateLocation"]["location"]["dailyCapacity"],
        Value::Null,
        "{body}"
    );
    let body = w
        .gql(
            &w.admin,
            update,
            json!({ "input": { "id": id, "dailyCapacity": -1 } }),
        )
        .await;
    let e = &body["data"]["updateLocation"]["errors"][0];
    assert_eq!(e["code"], "INVALID_INPUT", "{body}");
    assert_eq!(e["field"], json!(["input", "dailyCapacity"]), "{body}");
}
