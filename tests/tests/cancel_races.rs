//! A cancellation racing the moment units leave the building, on a real server with the demo
//! data: `cancelOrder` against `handOverPickup` at the counter, against `shipFulfillment` by
//! store staff (ship-from-store), and against the WMS's `POST …/ship` of a DC order; each
//! concurrently and back to back in both orders, many rounds.
//!
//! Whatever left the building must be consumed and paid for; whatever was cancelled must never
//! be handed over or shipped. After every round the order, its fulfillment order, its payment
//! and the stock agree exactly: exactly one of the two requests was accepted, and the location's
//! on hand went down by exactly the units that left, with nothing left reserved.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent pairs per kind of work.
const RACED: usize = 12;
/// Back-to-back pairs per kind of work and order (leave first, cancel first).
const BACK_TO_BACK: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Work {
    /// BOPIS at TKY-SHIBUYA: pick, ready, then the handover races the cancel.
    Pickup,
    /// A SHIP order sourced from TKY-SHIBUYA's stock: staff pick and pack, then their ship
    /// races the cancel.
    StoreShip,
    /// A SHIP order from TKY-DC1: the WMS picks and packs, then its ship races the cancel.
    WmsShip,
}

impl Work {
    /// The SKU each kind of work uses, stocked only at its location (so sourcing is certain).
    fn sku(self) -> &'static str {
        match self {
            Work::Pickup => "KNIT-M",
            Work::StoreShip => "KNIT-L",
            Work::WmsShip => "KNIT-S",
        }
    }

    fn location(self) -> &'static str {
        match self {
            Work::Pickup | Work::StoreShip => "TKY-SHIBUYA",
            Work::WmsShip => "TKY-DC1",
        }
    }

    /// Order status once the units left.
    fn left_status(self) -> &'static str {
        match self {
            Work::Pickup => "PICKED_UP",
            Work::StoreShip | Work::WmsShip => "FULFILLED",
        }
    }

    /// Fulfillment status once the units left.
    fn fulfillment_left_status(self) -> &'static str {
        match self {
            Work::Pickup => "PICKED_UP",
            Work::StoreShip | Work::WmsShip => "SHIPPED",
        }
    }
}

const LOCATIONS: [&str; 6] = [
    "TKY-DC1",
    "OSA-DC1",
    "TKY-SHIBUYA",
    "TKY-SHINJUKU",
    "YOK-MINATOMIRAI",
    "OSA-UMEDA",
];
/// KNIT is 5990 JPY in the demo catalog.
const PRICE: &str = "5990";
const STOCK: i64 = 100;

const ORDER: &str = "query($id: ID!) { order(id: $id) { status lines { cancelled } fulfillments { id status } payment { captured { amount } voided } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } errors { field code message } } }";

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

/// The raw UUID the WMS API takes, from a GraphQL fulfillment order id.
fn raw_id(id: &str) -> String {
    ichigen_shared::graphql::conventions::decode_id("FulfillmentOrder", &id.to_string().into())
        .unwrap()
}

/// One order made ready for its units to leave.
struct Prepared {
    work: Work,
    customer: String,
    order_id: String,
    fulfillment_id: String,
    pickup_code: Option<String>,
}

async fn demo() -> Arc<TestServer> {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    // Each work's SKU only at its location, STOCK units.
    let admin = server.token("admin", None, "ops");
    for work in [Work::Pickup, Work::StoreShip, Work::WmsShip] {
        for code in LOCATIONS {
            let counted = if code == work.location() { STOCK } else { 0 };
            let (_, body) = server
                .graphql(
                    Some(&admin),
                    "mutation($l: ID!, $s: String!, $n: Int!) { countStock(input: { location: $l, sku: $s, counted: $n }) { errors { code } } }",
                    json!({ "l": location_id(code), "s": work.sku(), "n": counted }),
                )
                .await;
            assert_eq!(body["data"]["countStock"]["errors"], json!([]), "{body}");
        }
    }
    Arc::new(server)
}

async fn gql(server: &TestServer, token: &str, query: &str, vars: Value) -> Value {
    let (status, body) = server.graphql(Some(token), query, vars).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    body
}

/// POSTs to the WMS fulfillment API; the status and the body.
async fn wms(server: &TestServer, path: &str, key: &str, body: Value) -> (u16, Value) {
    let token = format!("Bearer {}", server.token("wms-integration", None, "wms-1"));
    let body = body.to_string();
    let res = request(
        server.addr(),
        "POST",
        &format!("/api/fulfillment/v1/fulfillments/{path}"),
        &[
            ("authorization", token.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        body.as_bytes(),
    )
    .await;
    (res.status, res.json())
}

/// Polls `order(id)` as CS until `done` holds.
async fn wait_for_order(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let cs = server.token("cs-agent", None, "cs");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = server.graphql(Some(&cs), ORDER, json!({ "id": id })).await;
        let order = &body["data"]["order"];
        if done(order) {
            return order.clone();
        }
        assert!(Instant::now() < deadline, "order never got there: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Places one order of 1 unit for `work` and takes it to the step before the units leave.
async fn prepare(server: &TestServer, work: Work, n: usize) -> Prepared {
    let customer = format!("racer-{work:?}-{n}");
    let token = server.token("customer", None, &customer);
    let delivery = match work {
        Work::Pickup => json!({ "method": "PICKUP", "store": location_id("TKY-SHIBUYA") }),
        Work::StoreShip | Work::WmsShip => json!({ "method": "SHIP", "address": {
            "line1": "1-2-3 Marunouchi", "city": "Tokyo", "postalCode": "100-0005",
            "country": "JP", "lat": 35.681, "lon": 139.767 } }),
    };
    let body = gql(
        server,
        &token,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id lines { allocations { locationCode } } } errors { code message } } }",
        json!({ "input": { "idempotencyKey": format!("k-{n}"),
            "lines": [{ "sku": work.sku(), "quantity": 1, "delivery": delivery }] } }),
    )
    .await;
    let payload = &body["data"]["placeOrder"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    assert_eq!(
        payload["order"]["lines"][0]["allocations"][0]["locationCode"],
        work.location(),
        "{body}"
    );
    let order_id = payload["order"]["id"].as_str().unwrap().to_string();
    let order = wait_for_order(server, &order_id, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fulfillment_id = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    let clerk = server.token("store-staff", Some("TKY-SHIBUYA"), "clerk");
    let mut pickup_code = None;
    match work {
        Work::Pickup | Work::StoreShip => {
            let body = gql(server, &clerk, "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { errors { code } } }", json!({ "id": fulfillment_id })).await;
            assert_eq!(
                body["data"]["pickFulfillment"]["errors"],
                json!([]),
                "{body}"
            );
            if work == Work::Pickup {
                let body = gql(server, &clerk, "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { fulfillmentOrder { pickupCode } errors { code } } }", json!({ "id": fulfillment_id })).await;
                pickup_code = Some(
                    body["data"]["markReadyForPickup"]["fulfillmentOrder"]["pickupCode"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            } else {
                let body = gql(server, &clerk, "mutation($id: ID!) { packFulfillment(input: { id: $id, packages: 1 }) { errors { code } } }", json!({ "id": fulfillment_id })).await;
                assert_eq!(
                    body["data"]["packFulfillment"]["errors"],
                    json!([]),
                    "{body}"
                );
            }
        }
        Work::WmsShip => {
            let fid = raw_id(&fulfillment_id);
            let (status, body) = wms(
                server,
                &format!("{fid}/pick"),
                &format!("pick-{n}"),
                json!({ "lines": [{ "lineId": "L1", "picked": 1, "short": 0 }] }),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = wms(
                server,
                &format!("{fid}/pack"),
                &format!("pack-{n}"),
                json!({ "packages": 1 }),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    Prepared {
        work,
        customer,
        order_id,
        fulfillment_id,
        pickup_code,
    }
}

/// The units leave: handed over, or shipped. Whether it was accepted.
async fn leave(server: &TestServer, p: &Prepared, n: usize) -> bool {
    let clerk = server.token("store-staff", Some("TKY-SHIBUYA"), "clerk");
    match p.work {
        Work::Pickup => {
            let body = gql(
                server,
                &clerk,
                "mutation($id: ID!, $code: String!) { handOverPickup(input: { id: $id, pickupCode: $code }) { fulfillmentOrder { status } errors { code } } }",
                json!({ "id": p.fulfillment_id, "code": p.pickup_code }),
            )
            .await;
            accepted(&body["data"]["handOverPickup"], &body)
        }
        Work::StoreShip => {
            let body = gql(
                server,
                &clerk,
                "mutation($id: ID!) { shipFulfillment(input: { id: $id, carrier: \"Sagawa\", trackingNumber: \"SG-1\" }) { fulfillmentOrder { status } errors { code } } }",
                json!({ "id": p.fulfillment_id }),
            )
            .await;
            accepted(&body["data"]["shipFulfillment"], &body)
        }
        Work::WmsShip => {
            let (status, body) = wms(
                server,
                &format!("{}/ship", raw_id(&p.fulfillment_id)),
                &format!("ship-{n}"),
                json!({ "carrier": "Yamato", "trackingNumber": format!("YM-{n}") }),
            )
            .await;
            match status {
                200 => true,
                409 => {
                    assert_eq!(body["code"], "CONFLICT", "{body}");
                    false
                }
                other => panic!("WMS ship answered {other}: {body}"),
            }
        }
    }
}

/// A staff mutation's payload: accepted, or refused with CONFLICT (the order was cancelled).
fn accepted(payload: &Value, body: &Value) -> bool {
    match payload["errors"].as_array().map(Vec::len) {
        Some(0) => true,
        Some(_) => {
            assert_eq!(payload["errors"][0]["code"], "CONFLICT", "{body}");
            false
        }
        None => panic!("no payload: {body}"),
    }
}

/// The customer cancels the whole order. Whether anything was cancelled.
async fn cancel(server: &TestServer, p: &Prepared) -> bool {
    let token = server.token("customer", None, &p.customer);
    let body = gql(server, &token, CANCEL, json!({ "id": p.order_id })).await;
    let payload = &body["data"]["cancelOrder"];
    match payload["errors"].as_array().map(Vec::len) {
        Some(0) => {
            assert_eq!(payload["order"]["status"], "CANCELLED", "{body}");
            true
        }
        Some(_) => {
            // Refused whole: nothing changed.
            assert_eq!(payload["order"], Value::Null, "{body}");
            // NOT_CANCELLABLE units, or NOTHING_TO_CANCEL once the order knows they left.
            assert_eq!(payload["errors"][0]["code"], "CONFLICT", "{body}");
            false
        }
        None => panic!("no payload: {body}"),
    }
}

/// Exactly one side won, and the order, the fulfillment and the payment agree with it.
async fn settled(server: &TestServer, p: &Prepared, left: bool, cancelled: bool) {
    if left == cancelled {
        let raw =
            ichigen_shared::graphql::conventions::decode_id("Order", &p.order_id.clone().into())
                .unwrap();
        for stream in [
            format!("order-{raw}"),
            format!("fulfillment-{}", raw_id(&p.fulfillment_id)),
        ] {
            let events =
                ichigen_shared::store::read_whole_stream(server.running.store.as_ref(), &stream)
                    .await
                    .unwrap();
            for e in events {
                eprintln!(
                    "{stream} {} {} {}",
                    e.revision,
                    e.event_type,
                    String::from_utf8_lossy(&e.data)
                );
            }
        }
    }
    assert!(
        left ^ cancelled,
        "{:?} {}: left = {left}, cancelled = {cancelled}",
        p.work,
        p.order_id
    );
    let order = wait_for_order(server, &p.order_id, |o| {
        if left {
            o["status"] == p.work.left_status() && o["payment"]["captured"]["amount"] == PRICE
        } else {
            o["status"] == "CANCELLED" && o["payment"]["voided"] == true
        }
    })
    .await;
    let fulfillment = &order["fulfillments"][0]["status"];
    if left {
        assert_eq!(fulfillment, p.work.fulfillment_left_status(), "{order}");
        assert_eq!(order["payment"]["voided"], false, "{order}");
        assert_eq!(order["lines"][0]["cancelled"], 0, "{order}");
    } else {
        assert_eq!(fulfillment, "CANCELLED", "{order}");
        assert_eq!(order["payment"]["captured"]["amount"], "0", "{order}");
        assert_eq!(order["lines"][0]["cancelled"], 1, "{order}");
    }
}

/// On hand and reserved of a work's SKU at its location, as the inventory view shows them.
async fn stock(server: &TestServer, work: Work) -> (i64, i64) {
    let admin = server.token("admin", None, "ops");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = server
            .graphql(
                Some(&admin),
                "query($l: ID!) { stockLevels(location: $l, first: 100) { edges { node { sku onHand reserved } } } }",
                json!({ "l": location_id(work.location()) }),
            )
            .await;
        if let Some(edges) = body["data"]["stockLevels"]["edges"].as_array() {
            let row = edges
                .iter()
                .map(|e| &e["node"])
                .find(|n| n["sku"] == work.sku())
                .unwrap_or_else(|| panic!("no {} row: {body}", work.sku()));
            return (
                row["onHand"].as_i64().unwrap(),
                row["reserved"].as_i64().unwrap(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "stock levels never answered: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs every round for one kind of work and checks the stock at the end.
async fn rounds(work: Work) {
    let server = demo().await;
    let mut n = 0;
    let mut left_total = 0;
    // Concurrent pairs: both requests leave at the same moment.
    for _ in 0..RACED {
        n += 1;
        let p = Arc::new(prepare(&server, work, n).await);
        let (a, b) = (server.clone(), server.clone());
        let (pa, pb) = (p.clone(), p.clone());
        let round = n;
        let leaving = tokio::spawn(async move { leave(&a, &pa, round).await });
        let cancelling = tokio::spawn(async move { cancel(&b, &pb).await });
        let (left, cancelled) = (leaving.await.unwrap(), cancelling.await.unwrap());
        settled(&server, &p, left, cancelled).await;
        left_total += i64::from(left);
    }
    // Back to back: the second request arrives before the order's process has caught up
    // with the first.
    for leave_first in [true, false] {
        for _ in 0..BACK_TO_BACK {
            n += 1;
            let p = prepare(&server, work, n).await;
            let (left, cancelled) = if leave_first {
                let left = leave(&server, &p, n).await;
                (left, cancel(&server, &p).await)
            } else {
                let cancelled = cancel(&server, &p).await;
                (leave(&server, &p, n).await, cancelled)
            };
            assert_eq!(left, leave_first, "{work:?}: the first request wins");
            settled(&server, &p, left, cancelled).await;
            left_total += i64::from(left);
        }
    }
    // Every unit that left was consumed; every cancelled one is back for sale.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (on_hand, reserved) = stock(&server, work).await;
        if (on_hand, reserved) == (STOCK - left_total, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{work:?}: on hand {on_hand}, reserved {reserved}; expected {} and 0 after {left_total} left",
            STOCK - left_total
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left_total >= BACK_TO_BACK as i64, "{work:?}: {left_total}");
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_pickup_handover_never_both_succeed() {
    rounds(Work::Pickup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_ship_from_store_never_both_succeed() {
    rounds(Work::StoreShip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_wms_shipment_never_both_succeed() {
    rounds(Work::WmsShip).await;
}
