//! Returns (RMA) and recommerce resale end to end: through GraphQL (and the WMS receipt API)
//! on a real server with the demo data set (2 DCs, 4 stores, 18 SKUs with JPY prices). Orders
//! are placed and fulfilled the way customers and staff do it (BOPIS handed over at the
//! counter, or shipped by the DC through the WMS API), then returned, received, graded,
//! refunded or exchanged, and closed.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{request, GraphqlWs, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a test waits for an asynchronous process (order reactions, stock disposition,
/// views) before it fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// Shibuya takes returns and sells resale stock (demo data set).
const SHIBUYA: &str = "TKY-SHIBUYA";
/// Shinjuku takes returns (no resale).
const SHINJUKU: &str = "TKY-SHINJUKU";

const RETURN_FIELDS: &str = "fragment R on Return {
  rawId
  id orderId customerId requestedBy status
  decision { approved automatic by note }
  lines { id orderLineId sku quantity received unitPrice { amount currency } reason { code } }
  units { id lineId sku locationCode receiptId
          grade { code disposition resaleSku resalePrice { amount } }
          settlement exchangeOrderId }
  refunds { paymentReference amount { amount currency } }
  refundedTotal { amount currency }
  exchanges { orderId replacementTotal { amount } }
}";

const PLACE: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status customerId total { amount currency }
            lines { lineId sku quantity unitPrice { amount } allocations { locationCode quantity } } }
    errors { field code message }
  }
}";

const ORDER: &str = "query($id: ID!) { order(id: $id) {
  id status customerId total { amount } payable { amount } credit { amount }
  lines { lineId sku quantity unitPrice { amount } allocations { locationCode quantity } pickedUp delivered }
  fulfillments { id kind status locationCode }
  payment { authorized { amount } captured { amount } refunded { amount } voided }
} }";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn demo() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await
}

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

/// The key inside an opaque GraphQL id (`base64url("<Type>:<key>")`).
fn id_key(id: &str) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("{id:?} is not an opaque id: {e}"));
    String::from_utf8(raw)
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_string()
}

fn amount(money: &Value) -> &str {
    money["amount"]
        .as_str()
        .unwrap_or_else(|| panic!("not money: {money}"))
}

/// POST /graphql; the status must be 200.
async fn gql(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    let (status, body) = server.graphql(Some(token), query, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The input type of each returns mutation.
fn input_type(mutation: &str) -> &'static str {
    match mutation {
        "requestReturn" => "RequestReturnInput",
        "acceptCounterReturn" => "AcceptCounterReturnInput",
        "approveReturn" | "rejectReturn" => "DecideReturnInput",
        "receiveReturn" => "ReceiveReturnInput",
        "gradeReturnUnit" => "GradeReturnUnitInput",
        "refundReturn" | "closeReturn" => "ReturnIdInput",
        "exchangeReturn" => "ExchangeReturnInput",
        other => panic!("not a returns mutation: {other}"),
    }
}

/// A returns mutation; the whole response body (for top-level errors).
async fn mutate_raw(server: &TestServer, token: &str, mutation: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: {}!) {{ {mutation}(input: $input) {{ return {{ ...R }} position errors {{ field code message }} }} }} {RETURN_FIELDS}",
        input_type(mutation)
    );
    gql(server, token, &query, json!({ "input": input })).await
}

/// A returns mutation's payload (`{ return position errors }`); no top-level error allowed.
async fn mutate(server: &TestServer, token: &str, mutation: &str, input: Value) -> Value {
    let body = mutate_raw(server, token, mutation, input).await;
    assert!(body["errors"].is_null(), "{mutation}: {body}");
    body["data"][mutation].clone()
}

/// A returns mutation that must succeed; its payload.
async fn accepted(server: &TestServer, token: &str, mutation: &str, input: Value) -> Value {
    let payload = mutate(server, token, mutation, input).await;
    assert_eq!(payload["errors"], json!([]), "{mutation}: {payload}");
    assert!(payload["return"].is_object(), "{mutation}: {payload}");
    payload
}

/// A returns mutation that must be refused with one typed error; that error.
async fn refused(server: &TestServer, token: &str, mutation: &str, input: Value) -> Value {
    let payload = mutate(server, token, mutation, input).await;
    assert_eq!(payload["return"], Value::Null, "{mutation}: {payload}");
    assert_eq!(payload["position"], Value::Null, "{mutation}: {payload}");
    let errors = payload["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{mutation}: {payload}");
    errors[0].clone()
}

/// `return(id)` as `token` sees it, after the view reached `at_least`.
async fn read_return(server: &TestServer, token: &str, id: &str, at_least: Option<&str>) -> Value {
    let query = format!(
        "query($id: ID!, $p: String) {{ return(id: $id, atLeast: $p) {{ ...R timeline {{ event summary actor }} orderHistory {{ event }} }} }} {RETURN_FIELDS}"
    );
    let body = gql(server, token, &query, json!({ "id": id, "p": at_least })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["return"].clone()
}

fn pickup_line(sku: &str, qty: i64, store: &str) -> Value {
    json!({ "sku": sku, "quantity": qty,
            "delivery": { "method": "PICKUP", "store": location_id(store) } })
}

async fn place(server: &TestServer, token: &str, input: Value) -> Value {
    let body = gql(server, token, PLACE, json!({ "input": input })).await;
    let payload = body["data"]["placeOrder"].clone();
    assert_eq!(payload["errors"], json!([]), "{body}");
    payload["order"].clone()
}

/// Polls `order(id)` as CS until `done` holds.
async fn wait_for_order(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let cs = server.token("cs-agent", None, "cs-poll");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = gql(server, &cs, ORDER, json!({ "id": id })).await;
        let order = &body["data"]["order"];
        if done(order) {
            return order.clone();
        }
        assert!(Instant::now() < deadline, "order never got there: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The order as CS sees it now.
async fn order(server: &TestServer, id: &str) -> Value {
    let cs = server.token("cs-agent", None, "cs-read");
    let body = gql(server, &cs, ORDER, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["order"].clone()
}

/// Store staff prepare the order's pickup at `store` and hand it over; returns once the order
/// is PICKED_UP and what it owes is captured.
async fn hand_over(server: &TestServer, order_id: &str, store: &str) -> Value {
    let placed = wait_for_order(server, order_id, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = placed["fulfillments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(placed["fulfillments"][0]["locationCode"], store, "{placed}");
    let clerk = server.token("store-staff", Some(store), "pickup-clerk");
    let body = gql(
        server,
        &clerk,
        "query($id: ID!) { fulfillmentOrder(id: $id) { lines { lineId quantity } } }",
        json!({ "id": fid }),
    )
    .await;
    let picks: Vec<Value> = body["data"]["fulfillmentOrder"]["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|l| json!({ "lineId": l["lineId"], "picked": l["quantity"], "short": 0 }))
        .collect();
    let picked = gql(
        server,
        &clerk,
        "mutation($id: ID!, $lines: [PickLineInput!]!) { pickFulfillment(input: { id: $id, lines: $lines }) { fulfillmentOrder { status } errors { code message } } }",
        json!({ "id": fid, "lines": picks }),
    )
    .await;
    assert_eq!(
        picked["data"]["pickFulfillment"]["fulfillmentOrder"]["status"], "PICKED",
        "{picked}"
    );
    let ready = gql(
        server,
        &clerk,
        "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { fulfillmentOrder { pickupCode } errors { code message } } }",
        json!({ "id": fid }),
    )
    .await;
    let code = ready["data"]["markReadyForPickup"]["fulfillmentOrder"]["pickupCode"]
        .as_str()
        .unwrap_or_else(|| panic!("{ready}"))
        .to_string();
    let handed = gql(
        server,
        &clerk,
        "mutation($id: ID!, $code: String!) { handOverPickup(input: { id: $id, pickupCode: $code }) { fulfillmentOrder { status } errors { code message } } }",
        json!({ "id": fid, "code": code }),
    )
    .await;
    assert_eq!(
        handed["data"]["handOverPickup"]["fulfillmentOrder"]["status"], "PICKED_UP",
        "{handed}"
    );
    wait_for_order(server, order_id, |o| {
        o["status"] == "PICKED_UP"
            && (o["payment"].is_null()
                || o["payment"]["captured"]["amount"] == o["payable"]["amount"])
    })
    .await
}

/// A customer's BOPIS order at `store`, placed, prepared and picked up; its id.
async fn picked_up_order(
    server: &TestServer,
    customer: &str,
    key: &str,
    store: &str,
    lines: &[(&str, i64)],
) -> String {
    let token = server.token("customer", None, customer);
    let lines: Vec<Value> = lines
        .iter()
        .map(|(sku, qty)| pickup_line(sku, *qty, store))
        .collect();
    let placed = place(
        server,
        &token,
        json!({ "idempotencyKey": key, "lines": lines }),
    )
    .await;
    let id = placed["id"].as_str().unwrap().to_string();
    hand_over(server, &id, store).await;
    id
}

/// One SKU's buckets at a location as admin sees them in `stockLevels` (None: no row), among
/// the SKUs of `condition` (NEW, RESALE or ANY).
async fn stock_level(
    server: &TestServer,
    store: &str,
    sku: &str,
    condition: &str,
) -> Option<Value> {
    let admin = server.token("admin", None, "ops");
    let body = gql(
        server,
        &admin,
        "query($l: ID!, $c: StockCondition!) { stockLevels(location: $l, first: 100, condition: $c) { edges { node { sku onHand reserved available condition resaleGrade } } } }",
        json!({ "l": location_id(store), "c": condition }),
    )
    .await;
    let edges = body["data"]["stockLevels"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    edges
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| n["sku"] == sku)
}

fn on_hand(level: &Option<Value>) -> i64 {
    level.as_ref().map_or(0, |l| l["onHand"].as_i64().unwrap())
}

fn reserved(level: &Option<Value>) -> i64 {
    level
        .as_ref()
        .map_or(0, |l| l["reserved"].as_i64().unwrap())
}

/// Polls the SKU's buckets at `store` until `done` holds.
async fn wait_for_stock(
    server: &TestServer,
    store: &str,
    sku: &str,
    done: impl Fn(&Option<Value>) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let level = stock_level(server, store, sku, "ANY").await;
        if done(&level) {
            return level;
        }
        assert!(
            Instant::now() < deadline,
            "stock of {sku} at {store} never got there: {level:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The SKU's stock movements at `store`, oldest first.
async fn movements(server: &TestServer, store: &str, sku: &str) -> Vec<Value> {
    let admin = server.token("admin", None, "ops");
    let body = gql(
        server,
        &admin,
        "query($s: String!, $l: ID!) { stockMovements(sku: $s, location: $l, first: 100) { edges { node { type onHandDelta quantity reason disposition returnUnitKey reference } } } }",
        json!({ "s": sku, "l": location_id(store) }),
    )
    .await;
    body["data"]["stockMovements"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Events appended after `head`, leaving out process checkpoints (processes save those on
/// their own schedule; they are not a command's doing).
async fn appended_since(
    server: &TestServer,
    head: Option<ichigen_shared::store::Position>,
) -> Vec<String> {
    let events = server.running.store.read_all(head, 10_000).await.unwrap();
    events
        .iter()
        .map(|e| format!("{} {}", e.stream, e.event_type))
        .filter(|e| !e.starts_with("checkpoint-"))
        .collect()
}

/// A return request that must be accepted; the payload.
async fn request_return(
    server: &TestServer,
    token: &str,
    order_id: &str,
    key: &str,
    lines: Value,
) -> Value {
    accepted(
        server,
        token,
        "requestReturn",
        json!({ "orderId": order_id, "idempotencyKey": key, "lines": lines }),
    )
    .await
}

fn return_line(order_line: &str, qty: i64, reason: &str) -> Value {
    json!({ "orderLineId": order_line, "quantity": qty, "reasonCode": reason })
}

/// Store staff of `store` receive units of the return at their store.
async fn receive_at(
    server: &TestServer,
    store: &str,
    id: &str,
    receipt: &str,
    lines: &[(&str, i64)],
) -> Value {
    let clerk = server.token("store-staff", Some(store), "returns-clerk");
    let lines: Vec<Value> = lines
        .iter()
        .map(|(line, qty)| json!({ "lineId": line, "quantity": qty }))
        .collect();
    accepted(
        server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": receipt, "lines": lines }),
    )
    .await
}

/// Store staff of `store` grade a unit received there.
async fn grade_at(server: &TestServer, store: &str, id: &str, unit: &str, grade: &str) -> Value {
    let clerk = server.token("store-staff", Some(store), "inspector");
    accepted(
        server,
        &clerk,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": unit, "gradeCode": grade }),
    )
    .await
}

fn unit<'a>(rma: &'a Value, unit_id: &str) -> &'a Value {
    rma["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == unit_id)
        .unwrap_or_else(|| panic!("no unit {unit_id}: {rma}"))
}

fn events_of(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap_or_else(|| panic!("not a timeline: {timeline}"))
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Restock and refund
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_defective_unit_is_received_restocked_refunded_and_closed() {
    let server = demo().await;
    let sku = "OXFORD-M";
    let initial = on_hand(&stock_level(&server, SHIBUYA, sku, "ANY").await);
    assert!(initial >= 2, "demo stock of {sku} at {SHIBUYA}: {initial}");
    let order_id = picked_up_order(&server, "alice", "r1", SHIBUYA, &[(sku, 2)]).await;
    // The pickup consumed both units.
    wait_for_stock(&server, SHIBUYA, sku, |l| {
        on_hand(l) == initial - 2 && reserved(l) == 0
    })
    .await;
    let alice = server.token("customer", None, "alice");
    // One of the two is defective: approved at once by the policy.
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-1",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let rma = &requested["return"];
    let id = rma["id"].as_str().unwrap().to_string();
    assert_eq!(rma["status"], "APPROVED", "{requested}");
    assert_eq!(rma["decision"]["approved"], true);
    assert_eq!(rma["decision"]["automatic"], true);
    assert_eq!(rma["orderId"], order_id.as_str());
    assert_eq!(rma["customerId"], "alice");
    assert_eq!(rma["lines"][0]["id"], "R1");
    assert_eq!(rma["lines"][0]["sku"], sku);
    assert_eq!(rma["lines"][0]["quantity"], 1);
    assert_eq!(amount(&rma["lines"][0]["unitPrice"]), "3990");
    // The same request again answers the same return and appends nothing.
    let again = request_return(
        &server,
        &alice,
        &order_id,
        "ret-1",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    assert_eq!(again["return"]["id"], id.as_str());
    assert_eq!(again["position"], Value::Null, "{again}");
    // Shibuya's staff receive it at their counter and grade it as new.
    let received = receive_at(&server, SHIBUYA, &id, "SHB-RCPT-1", &[("R1", 1)]).await;
    assert_eq!(received["return"]["status"], "RECEIVED", "{received}");
    let u = unit(&received["return"], "R1-1");
    assert_eq!(u["locationCode"], SHIBUYA);
    assert_eq!(u["sku"], sku);
    assert_eq!(u["grade"], Value::Null);
    let graded = grade_at(&server, SHIBUYA, &id, "R1-1", "NEW").await;
    assert_eq!(graded["return"]["status"], "INSPECTED", "{graded}");
    let g = &unit(&graded["return"], "R1-1")["grade"];
    assert_eq!(g["code"], "NEW");
    assert_eq!(g["disposition"], "RESTOCK");
    assert_eq!(g["resaleSku"], Value::Null);
    // The disposition puts the unit back on the shelf it came back to, once.
    wait_for_stock(&server, SHIBUYA, sku, |l| on_hand(l) == initial - 1).await;
    let rma_uuid = id_key(&id);
    let receipts: Vec<Value> = movements(&server, SHIBUYA, sku)
        .await
        .into_iter()
        .filter(|m| m["type"] == "ReturnReceived.v1")
        .collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["onHandDelta"], 1);
    assert_eq!(
        receipts[0]["returnUnitKey"],
        format!("{rma_uuid}/R1-1").as_str()
    );
    // CS refunds the full unit price through the order's payment.
    let cs = server.token("cs-agent", None, "agent-1");
    let refunded = accepted(&server, &cs, "refundReturn", json!({ "id": id })).await;
    let rma = &refunded["return"];
    assert_eq!(rma["status"], "REFUNDED", "{refunded}");
    assert_eq!(amount(&rma["refundedTotal"]), "3990");
    assert_eq!(rma["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(amount(&rma["refunds"][0]["amount"]), "3990");
    assert_eq!(unit(rma, "R1-1")["settlement"], "REFUNDED");
    let o = order(&server, &order_id).await;
    assert_eq!(amount(&o["payment"]["captured"]), "7980", "{o}");
    assert_eq!(amount(&o["payment"]["refunded"]), "3990", "{o}");
    // Alice is told, on her order's post-purchase messages.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = gql(
            &server,
            &alice,
            "query($id: ID!) { order(id: $id) { updates { kind amount { amount } } } }",
            json!({ "id": order_id }),
        )
        .await;
        let updates = body["data"]["order"]["updates"].as_array().unwrap().clone();
        if let Some(u) = updates.iter().find(|u| u["kind"] == "REFUNDED") {
            assert_eq!(amount(&u["amount"]), "3990", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no REFUNDED message: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Nothing is left to refund on this return.
    let e = refused(&server, &cs, "refundReturn", json!({ "id": id })).await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert_eq!(
        amount(&order(&server, &order_id).await["payment"]["refunded"]),
        "3990"
    );
    // Closed; the timeline lists every step, and the customer reads it too.
    let closed = accepted(&server, &cs, "closeReturn", json!({ "id": id })).await;
    assert_eq!(closed["return"]["status"], "CLOSED", "{closed}");
    let position = closed["position"].as_str().unwrap().to_string();
    let mine = read_return(&server, &alice, &id, Some(&position)).await;
    assert_eq!(mine["status"], "CLOSED", "{mine}");
    assert_eq!(
        events_of(&mine["timeline"]),
        [
            "ReturnRequested",
            "ReturnApproved",
            "ReturnUnitsReceived",
            "UnitGraded",
            "RefundIssued",
            "ReturnClosed"
        ],
        "{mine}"
    );
    // The agent sees the order's own history beside it; the customer reads her order.
    assert_eq!(mine["orderHistory"], json!([]), "{mine}");
    let theirs = gql(
        &server,
        &cs,
        "query($id: ID!) { return(id: $id) { orderHistory { event } } }",
        json!({ "id": id }),
    )
    .await;
    let history = events_of(&theirs["data"]["return"]["orderHistory"]);
    assert!(
        history.iter().any(|e| e.starts_with("OrderPlaced")),
        "{theirs}"
    );
    // Bob cannot see it.
    let bob = server.token("customer", None, "bob");
    assert_eq!(read_return(&server, &bob, &id, None).await, Value::Null);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2 + 3. Resale and write-offs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graded_units_become_resale_stock_another_customer_buys_or_are_written_off() {
    let server = demo().await;
    let sku = "DENIM-M";
    let resale = "DENIM-M-R-LIKE_NEW";
    let initial = on_hand(&stock_level(&server, SHIBUYA, sku, "ANY").await);
    let order_id = picked_up_order(&server, "alice", "r2", SHIBUYA, &[(sku, 3)]).await;
    let after_pickup = initial - 3;
    wait_for_stock(&server, SHIBUYA, sku, |l| {
        on_hand(l) == after_pickup && reserved(l) == 0
    })
    .await;
    // Too big: an agent approves the return of all three.
    let alice = server.token("customer", None, "alice");
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-2",
        json!([return_line("L1", 3, "SIZE_FIT")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    assert_eq!(requested["return"]["status"], "REQUESTED", "{requested}");
    let cs = server.token("cs-agent", None, "agent-1");
    let approved = accepted(
        &server,
        &cs,
        "approveReturn",
        json!({ "id": id, "note": "ok" }),
    )
    .await;
    assert_eq!(approved["return"]["status"], "APPROVED", "{approved}");
    assert_eq!(approved["return"]["decision"]["automatic"], false);
    assert_eq!(approved["return"]["decision"]["by"], "agent-1");
    receive_at(&server, SHIBUYA, &id, "SHB-2", &[("R1", 3)]).await;
    // One like new (resale at 80%), one damaged (disposed), one defective (back to vendor).
    let graded = grade_at(&server, SHIBUYA, &id, "R1-1", "LIKE_NEW").await;
    let g = &unit(&graded["return"], "R1-1")["grade"];
    assert_eq!(g["disposition"], "RESALE", "{graded}");
    assert_eq!(g["resaleSku"], resale);
    assert_eq!(amount(&g["resalePrice"]), "6392");
    grade_at(&server, SHIBUYA, &id, "R1-2", "DAMAGED").await;
    let graded = grade_at(&server, SHIBUYA, &id, "R1-3", "DEFECTIVE").await;
    assert_eq!(graded["return"]["status"], "INSPECTED", "{graded}");
    assert_eq!(
        unit(&graded["return"], "R1-3")["grade"]["disposition"],
        "RETURN_TO_VENDOR"
    );
    // The resale unit is on hand at Shibuya under its own SKU, filtered as RESALE.
    let level = wait_for_stock(&server, SHIBUYA, resale, |l| on_hand(l) == 1).await;
    let level = level.unwrap();
    assert_eq!(level["condition"], "RESALE", "{level}");
    assert_eq!(level["resaleGrade"], "LIKE_NEW");
    assert_eq!(level["available"], 1);
    assert!(stock_level(&server, SHIBUYA, resale, "RESALE")
        .await
        .is_some());
    assert!(stock_level(&server, SHIBUYA, resale, "NEW").await.is_none());
    assert!(stock_level(&server, SHIBUYA, sku, "NEW").await.is_some());
    assert!(stock_level(&server, SHIBUYA, sku, "RESALE").await.is_none());
    // The write-offs are in Shibuya's ledger of the original SKU; on hand did not change.
    let rma_uuid = id_key(&id);
    let deadline = Instant::now() + PATIENCE;
    let write_offs = loop {
        let w: Vec<Value> = movements(&server, SHIBUYA, sku)
            .await
            .into_iter()
            .filter(|m| m["type"] == "ReturnWrittenOff.v1")
            .collect();
        if w.len() >= 2 {
            break w;
        }
        assert!(Instant::now() < deadline, "no write-offs: {w:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(write_offs.len(), 2, "{write_offs:?}");
    let by_unit = |key: &str| {
        write_offs
            .iter()
            .find(|m| m["returnUnitKey"] == format!("{rma_uuid}/{key}").as_str())
            .unwrap_or_else(|| panic!("no write-off of {key}: {write_offs:?}"))
    };
    assert_eq!(by_unit("R1-2")["disposition"], "DISPOSE");
    assert_eq!(by_unit("R1-2")["onHandDelta"], 0);
    assert!(
        by_unit("R1-2")["reason"]
            .as_str()
            .is_some_and(|r| r.contains("DAMAGED")),
        "{write_offs:?}"
    );
    assert_eq!(by_unit("R1-3")["disposition"], "RETURN_TO_VENDOR");
    assert_eq!(
        on_hand(&stock_level(&server, SHIBUYA, sku, "ANY").await),
        after_pickup,
        "a written-off or resale unit is not new stock"
    );
    // Anyone sees it available for pickup at Shibuya, labelled as resale.
    let (_, body) = server
        .graphql(
            None,
            "query($s: ID!) { availability(sku: \"DENIM-M-R-LIKE_NEW\", channel: PICKUP, store: $s) { available condition resaleGrade } }",
            json!({ "s": location_id(SHIBUYA) }),
        )
        .await;
    assert_eq!(
        body["data"]["availability"],
        json!({ "available": 1, "condition": "RESALE", "resaleGrade": "LIKE_NEW" }),
        "{body}"
    );
    // Bob buys it like any other SKU, at the resale price from the catalog.
    let bob = server.token("customer", None, "bob");
    let bought = place(
        &server,
        &bob,
        json!({ "idempotencyKey": "resale-1", "lines": [pickup_line(resale, 1, SHIBUYA)] }),
    )
    .await;
    assert_eq!(bought["customerId"], "bob");
    assert_eq!(bought["lines"][0]["sku"], resale);
    assert_eq!(amount(&bought["lines"][0]["unitPrice"]), "6392", "{bought}");
    assert_eq!(amount(&bought["total"]), "6392");
    assert_eq!(
        bought["lines"][0]["allocations"],
        json!([{ "locationCode": SHIBUYA, "quantity": 1 }])
    );
    // There was one: a second is refused.
    let (_, body) = server
        .graphql(
            Some(&bob),
            PLACE,
            json!({ "input": { "idempotencyKey": "resale-2", "lines": [pickup_line(resale, 1, SHIBUYA)] } }),
        )
        .await;
    assert_eq!(
        body["data"]["placeOrder"]["errors"][0]["code"], "INSUFFICIENT_STOCK",
        "{body}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Reject
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_return_cannot_be_received_and_frees_its_units() {
    let server = demo().await;
    let order_id = picked_up_order(&server, "alice", "r4", SHIBUYA, &[("KNIT-M", 1)]).await;
    let alice = server.token("customer", None, "alice");
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-4",
        json!([return_line("L1", 1, "CHANGED_MIND")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    assert_eq!(requested["return"]["status"], "REQUESTED", "{requested}");
    assert_eq!(requested["return"]["decision"], Value::Null);
    let position = requested["position"].as_str().unwrap().to_string();
    // It waits in the agents' queue.
    let cs = server.token("cs-agent", None, "agent-1");
    let queue = gql(
        &server,
        &cs,
        "query($p: String) { returns(status: [REQUESTED], atLeast: $p) { edges { node { id status } } } }",
        json!({ "p": position }),
    )
    .await;
    let edges = queue["data"]["returns"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{queue}");
    assert_eq!(edges[0]["node"]["id"], id.as_str());
    // While it is pending, its unit is taken.
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        json!({ "orderId": order_id, "idempotencyKey": "ret-4b", "lines": [return_line("L1", 1, "DEFECTIVE")] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    // Receiving before a decision is refused.
    let clerk = server.token("store-staff", Some(SHIBUYA), "clerk");
    let e = refused(
        &server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": "early", "lines": [{ "lineId": "R1", "quantity": 1 }] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    // A rejection needs a note for the customer.
    let e = refused(&server, &cs, "rejectReturn", json!({ "id": id })).await;
    assert_eq!(e["code"], "INVALID_INPUT", "{e}");
    assert_eq!(e["field"], json!(["input", "note"]), "{e}");
    let rejected = accepted(
        &server,
        &cs,
        "rejectReturn",
        json!({ "id": id, "note": "worn and washed: not returnable" }),
    )
    .await;
    let rma = &rejected["return"];
    assert_eq!(rma["status"], "REJECTED", "{rejected}");
    assert_eq!(rma["decision"]["approved"], false);
    assert_eq!(rma["decision"]["note"], "worn and washed: not returnable");
    // Rejected: it can be neither approved nor received any more.
    let e = refused(&server, &cs, "approveReturn", json!({ "id": id })).await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    let head = server.running.store.head().await.unwrap();
    let e = refused(
        &server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": "late", "lines": [{ "lineId": "R1", "quantity": 1 }] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("rejected"),
        "{e}"
    );
    assert_eq!(appended_since(&server, head).await, Vec::<String>::new());
    // The unit is returnable again: the clerk sees it, and a new request is accepted.
    let found = gql(
        &server,
        &clerk,
        "query($n: String) { findOrdersForReturn(orderNumber: $n) { orderId lines { orderLineId fulfilled alreadyReturned returnable } } }",
        json!({ "n": order_id }),
    )
    .await;
    assert_eq!(
        found["data"]["findOrdersForReturn"][0]["lines"][0],
        json!({ "orderLineId": "L1", "fulfilled": 1, "alreadyReturned": 0, "returnable": 1 }),
        "{found}"
    );
    let again = request_return(
        &server,
        &alice,
        &order_id,
        "ret-4c",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    assert_ne!(again["return"]["id"], id.as_str());
    assert_eq!(again["return"]["status"], "APPROVED", "{again}");
    // The rejected one is closed by the agent.
    let closed = accepted(&server, &cs, "closeReturn", json!({ "id": id })).await;
    assert_eq!(closed["return"]["status"], "CLOSED", "{closed}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Exchanges
// ---------------------------------------------------------------------------------------------

/// A return of one unit of `order_id`'s line L1 (DEFECTIVE), received and graded NEW at
/// Shibuya; its id.
async fn defective_unit_inspected(
    server: &TestServer,
    customer: &str,
    order_id: &str,
    key: &str,
) -> String {
    let token = server.token("customer", None, customer);
    let requested = request_return(
        server,
        &token,
        order_id,
        key,
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    receive_at(server, SHIBUYA, &id, &format!("{key}-rcpt"), &[("R1", 1)]).await;
    let graded = grade_at(server, SHIBUYA, &id, "R1-1", "NEW").await;
    assert_eq!(graded["return"]["status"], "INSPECTED", "{graded}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_for_a_dearer_or_a_cheaper_item_settle_the_difference() {
    let server = demo().await;
    let order_id = picked_up_order(&server, "alice", "r5", SHIBUYA, &[("CHINO-M", 2)]).await;
    let cs = server.token("cs-agent", None, "agent-1");
    // Dearer: CHINO-M (4990) for PARKA-M (9990), collected at Shibuya.
    let parka_before = stock_level(&server, SHIBUYA, "PARKA-M", "ANY").await;
    let first = defective_unit_inspected(&server, "alice", &order_id, "ex-1").await;
    // Replacements that cannot be had are refused, and no order is placed for them.
    let pickup = |sku: &str, qty: i64| json!({ "id": first, "lines": [{ "sku": sku, "quantity": qty, "method": "PICKUP", "store": location_id(SHIBUYA) }] });
    let e = refused(&server, &cs, "exchangeReturn", pickup("NO-SUCH-SKU", 1)).await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(e["field"], json!(["input", "lines", "0", "sku"]), "{e}");
    let e = refused(&server, &cs, "exchangeReturn", pickup("PARKA-M", 500)).await;
    assert_eq!(e["code"], "INSUFFICIENT_STOCK", "{e}");
    let e = refused(
        &server,
        &cs,
        "exchangeReturn",
        json!({ "id": first, "lines": [{ "sku": "PARKA-M", "quantity": 1, "method": "SHIP" }] }),
    )
    .await;
    assert_eq!(e["code"], "INVALID_INPUT", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "latitude"]),
        "{e}"
    );
    let alice = server.token("customer", None, "alice");
    let mine = gql(
        &server,
        &alice,
        "{ orders(first: 50) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        mine["data"]["orders"]["edges"].as_array().unwrap().len(),
        1,
        "{mine}"
    );
    let exchanged = accepted(
        &server,
        &cs,
        "exchangeReturn",
        json!({ "id": first, "lines": [{ "sku": "PARKA-M", "quantity": 1, "method": "PICKUP", "store": location_id(SHIBUYA) }] }),
    )
    .await;
    let rma = &exchanged["return"];
    assert_eq!(rma["status"], "EXCHANGED", "{exchanged}");
    let exchanges = rma["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 1, "{exchanged}");
    assert_eq!(amount(&exchanges[0]["replacementTotal"]), "9990");
    let dearer_id = exchanges[0]["orderId"].as_str().unwrap().to_string();
    let u = unit(rma, "R1-1");
    assert_eq!(u["settlement"], "EXCHANGED");
    assert_eq!(u["exchangeOrderId"], dearer_id.as_str());
    assert_eq!(amount(&rma["refundedTotal"]), "0");
    // The replacement is Alice's order, reserved at Shibuya at once; her card pays only the
    // difference.
    let dearer = order(&server, &dearer_id).await;
    assert_eq!(dearer["customerId"], "alice", "{dearer}");
    assert_eq!(dearer["status"], "PLACED", "{dearer}");
    assert_eq!(amount(&dearer["total"]), "9990");
    assert_eq!(amount(&dearer["credit"]), "4990");
    assert_eq!(amount(&dearer["payable"]), "5000");
    assert_eq!(amount(&dearer["payment"]["authorized"]), "5000", "{dearer}");
    assert_eq!(amount(&dearer["payment"]["captured"]), "0");
    assert_eq!(
        dearer["lines"][0]["allocations"],
        json!([{ "locationCode": SHIBUYA, "quantity": 1 }]),
        "{dearer}"
    );
    let parka_reserved = reserved(&parka_before) + 1;
    wait_for_stock(&server, SHIBUYA, "PARKA-M", |l| {
        reserved(l) == parka_reserved
    })
    .await;
    // No money moved on the original order.
    let original = order(&server, &order_id).await;
    assert_eq!(amount(&original["payment"]["refunded"]), "0", "{original}");
    // Cheaper: the other CHINO-M (4990) for TEE-L (1990): 3000 back on the original order.
    let second = defective_unit_inspected(&server, "alice", &order_id, "ex-2").await;
    let exchanged = accepted(
        &server,
        &cs,
        "exchangeReturn",
        json!({ "id": second, "lines": [{ "sku": "TEE-L", "quantity": 1, "method": "PICKUP", "store": location_id(SHIBUYA) }] }),
    )
    .await;
    let rma = &exchanged["return"];
    assert_eq!(rma["status"], "EXCHANGED", "{exchanged}");
    let cheaper_id = rma["exchanges"][0]["orderId"].as_str().unwrap().to_string();
    assert_ne!(cheaper_id, dearer_id);
    assert_eq!(amount(&rma["exchanges"][0]["replacementTotal"]), "1990");
    let cheaper = order(&server, &cheaper_id).await;
    assert_eq!(cheaper["customerId"], "alice");
    assert_eq!(amount(&cheaper["payable"]), "0", "{cheaper}");
    assert_eq!(
        cheaper["payment"],
        Value::Null,
        "nothing left to pay: {cheaper}"
    );
    assert_eq!(
        cheaper["lines"][0]["allocations"],
        json!([{ "locationCode": SHIBUYA, "quantity": 1 }])
    );
    let original = order(&server, &order_id).await;
    assert_eq!(amount(&original["payment"]["captured"]), "9980");
    assert_eq!(
        amount(&original["payment"]["refunded"]),
        "3000",
        "{original}"
    );
    // Nothing is left to settle on either return: no second exchange, no refund.
    let e = refused(
        &server,
        &cs,
        "exchangeReturn",
        json!({ "id": second, "lines": [{ "sku": "TEE-L", "quantity": 1, "method": "PICKUP", "store": location_id(SHIBUYA) }] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    let e = refused(&server, &cs, "refundReturn", json!({ "id": first })).await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    // Alice collects both replacements. Money given back for their units is capped by
    // what their own payments captured: the credit was never money taken.
    hand_over(&server, &dearer_id, SHIBUYA).await;
    hand_over(&server, &cheaper_id, SHIBUYA).await;
    let dearer = order(&server, &dearer_id).await;
    assert_eq!(amount(&dearer["payment"]["captured"]), "5000", "{dearer}");
    // The parka (9990: 4990 credit + 5000 card) exchanged for a tee (1990): 8000 would be
    // due, but only the 5000 her card paid can go back.
    let back = defective_unit_inspected(&server, "alice", &dearer_id, "ex-3").await;
    let exchanged = accepted(
        &server,
        &cs,
        "exchangeReturn",
        json!({ "id": back, "lines": [{ "sku": "TEE-L", "quantity": 1, "method": "PICKUP", "store": location_id(SHIBUYA) }] }),
    )
    .await;
    assert_eq!(exchanged["return"]["status"], "EXCHANGED", "{exchanged}");
    let dearer = order(&server, &dearer_id).await;
    assert_eq!(amount(&dearer["payment"]["refunded"]), "5000", "{dearer}");
    // The tee paid entirely by credit: its refund gives back nothing, yet settles the unit.
    let tee = defective_unit_inspected(&server, "alice", &cheaper_id, "ex-4").await;
    let refunded = accepted(&server, &cs, "refundReturn", json!({ "id": tee })).await;
    assert_eq!(refunded["return"]["status"], "REFUNDED", "{refunded}");
    assert_eq!(
        amount(&refunded["return"]["refundedTotal"]),
        "0",
        "{refunded}"
    );
    assert_eq!(order(&server, &cheaper_id).await["payment"], Value::Null);
    // Across all of it, no order gave back more than it captured.
    for id in [&order_id, &dearer_id] {
        let o = order(&server, id).await;
        let captured: i64 = amount(&o["payment"]["captured"]).parse().unwrap();
        let refunded: i64 = amount(&o["payment"]["refunded"]).parse().unwrap();
        assert!(refunded <= captured, "{o}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. An online order returned at a store counter
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_shipped_by_the_dc_is_returned_at_a_store_counter() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    // Shipped to an address next to the Tokyo DC, by the DC, through the WMS API.
    let placed = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "dc-1", "lines": [{ "sku": "PARKA-M", "quantity": 1,
            "delivery": { "method": "SHIP", "address": { "line1": "2-1", "city": "Ichikawa",
                "postalCode": "272-0001", "country": "JP", "lat": 35.70, "lon": 139.93 } } }] }),
    )
    .await;
    assert_eq!(
        placed["lines"][0]["allocations"][0]["locationCode"], "TKY-DC1",
        "{placed}"
    );
    let order_id = placed["id"].as_str().unwrap().to_string();
    let wms = format!("Bearer {}", server.token("wms-integration", None, "wms-1"));
    let deadline = Instant::now() + PATIENCE;
    let task = loop {
        let res = request(
            server.addr(),
            "GET",
            "/api/fulfillment/v1/tasks/TKY-DC1",
            &[("authorization", wms.as_str())],
            b"",
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text());
        if let Some(t) = res.json()["tasks"].as_array().unwrap().first() {
            break t.clone();
        }
        assert!(Instant::now() < deadline, "no DC task");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let fid = task["id"].as_str().unwrap().to_string();
    for (step, key, body) in [
        (
            "pick",
            "p-1",
            json!({ "lines": [{ "lineId": "L1", "picked": 1, "short": 0 }] }),
        ),
        ("pack", "k-1", json!({ "packages": 1 })),
        (
            "ship",
            "s-1",
            json!({ "carrier": "Yamato", "trackingNumber": "4455-6677-8899" }),
        ),
        ("deliver", "d-1", json!({})),
    ] {
        let body = body.to_string();
        let res = request(
            server.addr(),
            "POST",
            &format!("/api/fulfillment/v1/fulfillments/{fid}/{step}"),
            &[
                ("authorization", wms.as_str()),
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(res.status, 200, "{step}: {}", res.text());
    }
    wait_for_order(&server, &order_id, |o| {
        o["status"] == "DELIVERED" && o["payment"]["captured"]["amount"] == "9990"
    })
    .await;
    // Alice brings it to Shinjuku. The clerk finds her order by her customer id.
    let clerk = server.token("store-staff", Some(SHINJUKU), "clerk-7");
    let found = gql(
        &server,
        &clerk,
        "query($c: String) { findOrdersForReturn(customerId: $c) { orderId customerId status captured { amount } refunded { amount } lines { orderLineId sku unitPrice { amount } fulfilled alreadyReturned returnable } } }",
        json!({ "c": "alice" }),
    )
    .await;
    let orders = found["data"]["findOrdersForReturn"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(orders.len(), 1, "{found}");
    let o = &orders[0];
    assert_eq!(o["orderId"], order_id.as_str());
    assert_eq!(o["status"], "DELIVERED");
    assert_eq!(amount(&o["captured"]), "9990");
    assert_eq!(
        o["lines"][0],
        json!({ "orderLineId": "L1", "sku": "PARKA-M", "unitPrice": { "amount": "9990" },
                "fulfilled": 1, "alreadyReturned": 0, "returnable": 1 })
    );
    let shinjuku_before = on_hand(&stock_level(&server, SHINJUKU, "PARKA-M", "ANY").await);
    // Requested, approved and received at Shinjuku in one step.
    let input = json!({ "orderId": order_id, "idempotencyKey": "counter-1",
        "lines": [return_line("L1", 1, "SIZE_FIT")], "note": "too small" });
    let counter = accepted(&server, &clerk, "acceptCounterReturn", input.clone()).await;
    let rma = &counter["return"];
    let id = rma["id"].as_str().unwrap().to_string();
    assert_eq!(rma["status"], "RECEIVED", "{counter}");
    assert_eq!(rma["customerId"], "alice");
    assert_eq!(rma["requestedBy"], "clerk-7");
    assert_eq!(rma["decision"]["approved"], true);
    assert_eq!(rma["decision"]["by"], "clerk-7");
    assert_eq!(unit(rma, "R1-1")["locationCode"], SHINJUKU);
    // Retried (the tablet lost the answer): the same return, nothing new.
    let retried = accepted(&server, &clerk, "acceptCounterReturn", input).await;
    assert_eq!(retried["return"]["id"], id.as_str());
    assert_eq!(retried["return"]["units"].as_array().unwrap().len(), 1);
    assert_eq!(retried["position"], Value::Null, "{retried}");
    // Another store's staff neither see nor grade it; Shinjuku's grade it.
    let umeda = server.token("store-staff", Some("OSA-UMEDA"), "clerk-9");
    assert_eq!(read_return(&server, &umeda, &id, None).await, Value::Null);
    let body = mutate_raw(
        &server,
        &umeda,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-1", "gradeCode": "NEW" }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    grade_at(&server, SHINJUKU, &id, "R1-1", "NEW").await;
    // Back on Shinjuku's shelf (where it was received), not the DC's.
    wait_for_stock(&server, SHINJUKU, "PARKA-M", |l| {
        on_hand(l) == shinjuku_before + 1
    })
    .await;
    // Size/fit makes the customer pay return shipping, but nothing was shipped: the unit was
    // handed in at the counter, so the whole 9990 JPY goes back.
    let cs = server.token("cs-agent", None, "agent-1");
    let refunded = accepted(&server, &cs, "refundReturn", json!({ "id": id })).await;
    assert_eq!(
        amount(&refunded["return"]["refundedTotal"]),
        "9990",
        "{refunded}"
    );
    assert_eq!(
        amount(&order(&server, &order_id).await["payment"]["refunded"]),
        "9990"
    );
    // Shinjuku's list of returns received there has it; Umeda's does not.
    let position = refunded["position"].as_str().unwrap();
    let listed = |token: String| {
        let server = &server;
        async move {
            let body = gql(
                server,
                &token,
                "query($p: String) { returns(atLeast: $p) { edges { node { id } } } }",
                json!({ "p": position }),
            )
            .await;
            body["data"]["returns"]["edges"].clone()
        }
    };
    assert_eq!(
        listed(clerk.clone()).await,
        json!([{ "node": { "id": id } }])
    );
    assert_eq!(listed(umeda.clone()).await, json!([]));
    // Alice sees the return in her list.
    let position = refunded["position"].as_str().unwrap();
    let mine = gql(
        &server,
        &alice,
        "query($p: String) { returns(atLeast: $p) { edges { node { id status } } } }",
        json!({ "p": position }),
    )
    .await;
    assert_eq!(
        mine["data"]["returns"]["edges"],
        json!([{ "node": { "id": id, "status": "REFUNDED" } }]),
        "{mine}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Refund arithmetic across returns
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_deduct_fees_once_and_never_exceed_what_was_captured() {
    let server = demo().await;
    // The terms a customer is shown.
    let shopper = server.token("customer", None, "alice");
    let policy = gql(
        &server,
        &shopper,
        "{ returnPolicy { reasons { code windowDays inspectionRequired restockingFeePercent customerPaysShipping returnShippingFee { amount currency } autoApprove active } grades { code disposition priceFactor active } } }",
        json!({}),
    )
    .await;
    let policy = &policy["data"]["returnPolicy"];
    let reason = |code: &str| {
        policy["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .unwrap_or_else(|| panic!("no reason {code}: {policy}"))
            .clone()
    };
    assert_eq!(
        reason("CHANGED_MIND"),
        json!({ "code": "CHANGED_MIND", "windowDays": 14, "inspectionRequired": true,
                "restockingFeePercent": "10", "customerPaysShipping": true,
                "returnShippingFee": { "amount": "800", "currency": "JPY" },
                "autoApprove": false, "active": true })
    );
    assert_eq!(reason("DEFECTIVE")["autoApprove"], true);
    assert_eq!(amount(&reason("DEFECTIVE")["returnShippingFee"]), "0");
    let grade = |code: &str| {
        policy["grades"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["code"] == code)
            .unwrap_or_else(|| panic!("no grade {code}: {policy}"))
            .clone()
    };
    assert_eq!(
        grade("LIKE_NEW"),
        json!({ "code": "LIKE_NEW", "disposition": "RESALE", "priceFactor": "0.8", "active": true })
    );
    assert_eq!(grade("DAMAGED")["disposition"], "DISPOSE");
    assert_eq!(grade("NEW")["priceFactor"], Value::Null);
    // 4 × KNIT-M at 5990 = 23960 captured.
    let order_id = picked_up_order(&server, "alice", "r7", SHIBUYA, &[("KNIT-M", 4)]).await;
    let alice = server.token("customer", None, "alice");
    let cs = server.token("cs-agent", None, "agent-1");
    // Return A: two units, changed mind (10% restocking fee, 800 JPY shipping).
    let a = request_return(
        &server,
        &alice,
        &order_id,
        "ret-a",
        json!([return_line("L1", 2, "CHANGED_MIND")]),
    )
    .await;
    let a = a["return"]["id"].as_str().unwrap().to_string();
    accepted(&server, &cs, "approveReturn", json!({ "id": a })).await;
    // The first unit arrives alone.
    let partial = receive_at(&server, SHIBUYA, &a, "A-1", &[("R1", 1)]).await;
    assert_eq!(
        partial["return"]["status"], "PARTIALLY_RECEIVED",
        "{partial}"
    );
    // Not inspected yet: nothing to refund.
    let e = refused(&server, &cs, "refundReturn", json!({ "id": a })).await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    grade_at(&server, SHIBUYA, &a, "R1-1", "NEW").await;
    // 5990 − 599 (10%) − 800 (shipping) = 4591.
    let first = accepted(&server, &cs, "refundReturn", json!({ "id": a })).await;
    assert_eq!(amount(&first["return"]["refundedTotal"]), "4591", "{first}");
    assert_eq!(first["return"]["status"], "PARTIALLY_RECEIVED");
    // The second unit: the fee again, the shipping not (one parcel, deducted once).
    receive_at(&server, SHIBUYA, &a, "A-2", &[("R1", 1)]).await;
    // Not closable while a received unit waits for its grade and refund.
    let e = refused(&server, &cs, "closeReturn", json!({ "id": a })).await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    grade_at(&server, SHIBUYA, &a, "R1-2", "NEW").await;
    let second = accepted(&server, &cs, "refundReturn", json!({ "id": a })).await;
    let rma = &second["return"];
    assert_eq!(rma["status"], "REFUNDED", "{second}");
    let amounts: Vec<&str> = rma["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| amount(&r["amount"]))
        .collect();
    let mut sorted = amounts.clone();
    sorted.sort();
    assert_eq!(sorted, ["4591", "5391"], "{second}");
    assert_eq!(amount(&rma["refundedTotal"]), "9982");
    assert_eq!(
        amount(&order(&server, &order_id).await["payment"]["refunded"]),
        "9982"
    );
    accepted(&server, &cs, "closeReturn", json!({ "id": a })).await;
    // Three requests race for the last two units: exactly two are accepted.
    let tries = [
        ("ret-b", "DEFECTIVE"),
        ("ret-c", "WRONG_ITEM"),
        ("ret-d", "DAMAGED_IN_TRANSIT"),
    ];
    let answers = futures::future::join_all(tries.iter().map(|(key, reason)| {
        mutate(
            &server,
            &alice,
            "requestReturn",
            json!({ "orderId": order_id, "idempotencyKey": key, "lines": [return_line("L1", 1, reason)] }),
        )
    }))
    .await;
    let mut winners = Vec::new();
    for answer in &answers {
        if answer["errors"] == json!([]) {
            assert_eq!(answer["return"]["status"], "APPROVED", "{answer}");
            winners.push(answer["return"]["id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(answer["errors"][0]["code"], "CONFLICT", "{answer}");
            assert_eq!(
                answer["errors"][0]["field"],
                json!(["input", "lines", "0", "quantity"]),
                "{answer}"
            );
        }
    }
    assert_eq!(winners.len(), 2, "{answers:?}");
    for (n, id) in winners.iter().enumerate() {
        receive_at(&server, SHIBUYA, id, &format!("W-{n}"), &[("R1", 1)]).await;
        grade_at(&server, SHIBUYA, id, "R1-1", "NEW").await;
    }
    // Both refunded at the same moment: no fee, no shipping for these reasons.
    let (first, second) = tokio::join!(
        accepted(&server, &cs, "refundReturn", json!({ "id": winners[0] })),
        accepted(&server, &cs, "refundReturn", json!({ "id": winners[1] })),
    );
    assert_eq!(amount(&first["return"]["refundedTotal"]), "5990", "{first}");
    assert_eq!(
        amount(&second["return"]["refundedTotal"]),
        "5990",
        "{second}"
    );
    // 9982 + 5990 + 5990 = 21962 of 23960 captured; the order agrees with its returns.
    let o = order(&server, &order_id).await;
    assert_eq!(amount(&o["payment"]["captured"]), "23960", "{o}");
    assert_eq!(amount(&o["payment"]["refunded"]), "21962", "{o}");
    let mut last = String::new();
    for id in &winners {
        let closed = accepted(&server, &cs, "closeReturn", json!({ "id": id })).await;
        assert_eq!(closed["return"]["status"], "CLOSED", "{closed}");
        last = closed["position"].as_str().unwrap().to_string();
    }
    // The agents' queue filters the order's returns.
    let queue = |filter: &'static str| {
        let server = &server;
        let cs = cs.clone();
        let order_id = order_id.clone();
        let last = last.clone();
        async move {
            let body = gql(
                server,
                &cs,
                &format!(
                    "query($o: ID, $p: String) {{ returns({filter}, atLeast: $p) {{ edges {{ node {{ id status }} }} }} }}"
                ),
                json!({ "o": order_id, "p": last }),
            )
            .await;
            body["data"]["returns"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .len()
        }
    };
    assert_eq!(queue("orderId: $o").await, 3);
    assert_eq!(queue("orderId: $o, reasonCode: \"CHANGED_MIND\"").await, 1);
    assert_eq!(queue("orderId: $o, status: [CLOSED]").await, 3);
    assert_eq!(queue("orderId: $o, status: [REQUESTED, APPROVED]").await, 0);
    assert_eq!(queue("orderId: $o, customerId: \"bob\"").await, 0);
    // The order's returns, for the clerk.
    let clerk = server.token("store-staff", Some(SHIBUYA), "clerk");
    let found = gql(
        &server,
        &clerk,
        "query($n: String) { findOrdersForReturn(orderNumber: $n) { refunded { amount } lines { returnable alreadyReturned } returns { id } } }",
        json!({ "n": order_id }),
    )
    .await;
    let f = &found["data"]["findOrdersForReturn"][0];
    assert_eq!(amount(&f["refunded"]), "21962", "{found}");
    assert_eq!(f["lines"][0]["returnable"], 0);
    assert_eq!(f["lines"][0]["alreadyReturned"], 4);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Bad inputs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_return_commands_are_typed_errors_and_append_nothing() {
    let clock = std::sync::Arc::new(ichigen_shared::clock::ManualClock::new(chrono::Utc::now()));
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with_clock(dir, Target::All, |s| s.demo.seed = true, clock.clone()).await;
    let order_id = picked_up_order(&server, "alice", "r8", SHIBUYA, &[("OXFORD-M", 2)]).await;
    let alice = server.token("customer", None, "alice");
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-8",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    receive_at(&server, SHIBUYA, &id, "R8-1", &[("R1", 1)]).await;
    let head = server.running.store.head().await.unwrap();
    let request = |key: &str, line: Value| json!({ "orderId": order_id, "idempotencyKey": key, "lines": [line] });
    // More than is returnable (2 picked up, 1 already on a return).
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        request("b1", return_line("L1", 2, "DEFECTIVE")),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "quantity"]),
        "{e}"
    );
    // A line that is not on the order.
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        request("b2", return_line("L9", 1, "DEFECTIVE")),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "orderLineId"]),
        "{e}"
    );
    // An unknown reason.
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        request("b3", return_line("L1", 1, "DONT_LIKE_IT")),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "reasonCode"]),
        "{e}"
    );
    // Zero units.
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        request("b4", return_line("L1", 0, "DEFECTIVE")),
    )
    .await;
    assert_eq!(e["code"], "INVALID_INPUT", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "quantity"]),
        "{e}"
    );
    // Bob returning Alice's order: as if it did not exist.
    let bob = server.token("customer", None, "bob");
    let e = refused(
        &server,
        &bob,
        "requestReturn",
        request("b5", return_line("L1", 1, "DEFECTIVE")),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(e["field"], json!(["input", "orderId"]), "{e}");
    // A grade that is not in the policy.
    let clerk = server.token("store-staff", Some(SHIBUYA), "clerk");
    let e = refused(
        &server,
        &clerk,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-1", "gradeCode": "MINT" }),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(e["field"], json!(["input", "gradeCode"]), "{e}");
    // A unit that was never received.
    let e = refused(
        &server,
        &clerk,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-2", "gradeCode": "NEW" }),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(e["field"], json!(["input", "unitId"]), "{e}");
    // A second receipt of the unit: more than was requested.
    let e = refused(
        &server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": "R8-2", "lines": [{ "lineId": "R1", "quantity": 1 }] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "quantity"]),
        "{e}"
    );
    // The first receipt id again with other content.
    let e = refused(
        &server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": "R8-1", "lines": [{ "lineId": "R1", "quantity": 2 }] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert_eq!(e["field"], json!(["input", "receiptId"]), "{e}");
    // A return line that does not exist.
    let e = refused(
        &server,
        &clerk,
        "receiveReturn",
        json!({ "id": id, "receiptId": "R8-3", "lines": [{ "lineId": "R7", "quantity": 1 }] }),
    )
    .await;
    assert_eq!(e["code"], "NOT_FOUND", "{e}");
    assert_eq!(e["field"], json!(["input", "lines", "0", "lineId"]), "{e}");
    // Shinjuku's staff receiving for Shibuya, or grading what Shibuya received.
    let other = server.token("store-staff", Some(SHINJUKU), "clerk-2");
    let body = mutate_raw(
        &server,
        &other,
        "receiveReturn",
        json!({ "id": id, "receiptId": "R8-4", "location": location_id(SHIBUYA),
                "lines": [{ "lineId": "R1", "quantity": 1 }] }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let body = mutate_raw(
        &server,
        &other,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-1", "gradeCode": "NEW" }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // An agent must name where the units arrived, as a location id of a location that takes
    // returns.
    let cs = server.token("cs-agent", None, "agent-1");
    let receipt = |location: Option<String>| {
        json!({ "id": id, "receiptId": "R8-5", "location": location,
                "lines": [{ "lineId": "R1", "quantity": 1 }] })
    };
    for (location, code) in [
        (None, "INVALID_INPUT"),
        (Some("TKY-DC1".to_string()), "INVALID_INPUT"),
        (Some(location_id("NOWHERE")), "NOT_FOUND"),
    ] {
        let e = refused(&server, &cs, "receiveReturn", receipt(location.clone())).await;
        assert_eq!(e["code"], code, "{location:?}: {e}");
        assert_eq!(
            e["field"],
            json!(["input", "location"]),
            "{location:?}: {e}"
        );
    }
    // A customer cannot act as staff or agent.
    let body = mutate_raw(&server, &alice, "refundReturn", json!({ "id": id })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // An id that is not a return's.
    let e = refused(
        &server,
        &clerk,
        "gradeReturnUnit",
        json!({ "id": order_id, "unitId": "R1-1", "gradeCode": "NEW" }),
    )
    .await;
    assert_eq!(e["code"], "INVALID_INPUT", "{e}");
    assert_eq!(e["field"], json!(["input", "id"]), "{e}");
    // Forty days later the 30-day window for a defect has closed.
    clock.advance(chrono::Duration::days(40));
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        request("b6", return_line("L1", 1, "DEFECTIVE")),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    assert_eq!(
        e["field"],
        json!(["input", "lines", "0", "reasonCode"]),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("window"), "{e}");
    // None of them appended anything.
    assert_eq!(appended_since(&server, head).await, Vec::<String>::new());
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. WMS receipts across a restart
// ---------------------------------------------------------------------------------------------

async fn wms_receipt(
    server: &TestServer,
    rma_uuid: &str,
    key: &str,
    body: &Value,
) -> ichigen_tests::server::Response {
    let wms = format!("Bearer {}", server.token("wms-integration", None, "wms-1"));
    let body = body.to_string();
    request(
        server.addr(),
        "POST",
        &format!("/api/returns/v1/returns/{rma_uuid}/receipts"),
        &[
            ("authorization", wms.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        body.as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wms_receipt_is_idempotent_across_a_restart() {
    let server = demo().await;
    let order_id = picked_up_order(&server, "alice", "r9", SHIBUYA, &[("TEE-L", 2)]).await;
    let alice = server.token("customer", None, "alice");
    // Alice posts both back to the Tokyo DC.
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-9",
        json!([return_line("L1", 2, "DEFECTIVE")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    let rma_uuid = id_key(&id);
    let receipt = json!({ "receiptId": "DC-RCPT-1", "location": "TKY-DC1",
        "lines": [{ "rmaLineId": "R1", "qty": 2 }] });
    let first = wms_receipt(&server, &rma_uuid, "wms-key-1", &receipt).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let answer = first.json();
    assert_eq!(answer["return"]["id"], rma_uuid.as_str(), "{answer}");
    assert_eq!(answer["return"]["status"], "RECEIVED", "{answer}");
    assert_eq!(answer["return"]["units"].as_array().unwrap().len(), 2);
    assert_eq!(answer["return"]["units"][0]["location"], "TKY-DC1");
    assert!(answer["position"].is_string(), "{answer}");
    assert!(!first.headers.contains_key("idempotent-replayed"));
    // Only the WMS (or an admin) confirms receipts here.
    let body = receipt.to_string();
    for (token, status) in [
        (Some(server.token("customer", None, "alice")), 403),
        (
            Some(server.token("store-staff", Some(SHIBUYA), "clerk")),
            403,
        ),
        (None, 401),
    ] {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("content-type", "application/json"),
            ("idempotency-key", "not-wms"),
        ];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let res = request(
            server.addr(),
            "POST",
            &format!("/api/returns/v1/returns/{rma_uuid}/receipts"),
            &headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(res.status, status, "{}", res.text());
    }
    // A location that does not take returns (or does not exist) is refused.
    let bad = wms_receipt(
        &server,
        &rma_uuid,
        "wms-key-bad",
        &json!({ "receiptId": "DC-RCPT-X", "location": "NOWHERE", "lines": [{ "rmaLineId": "R1", "qty": 1 }] }),
    )
    .await;
    assert_eq!(bad.status, 404, "{}", bad.text());
    // CS grades the first unit at the DC: back into the DC's stock.
    let dc_before = on_hand(&stock_level(&server, "TKY-DC1", "TEE-L", "ANY").await);
    let cs = server.token("cs-agent", None, "agent-1");
    accepted(
        &server,
        &cs,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-1", "gradeCode": "NEW" }),
    )
    .await;
    wait_for_stock(&server, "TKY-DC1", "TEE-L", |l| on_hand(l) == dc_before + 1).await;
    // Restart on the same data directory.
    let dir = server.stop().await;
    let server = TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await;
    // The same request under the same key: the first answer, byte for byte.
    let replay = wms_receipt(&server, &rma_uuid, "wms-key-1", &receipt).await;
    assert_eq!(replay.status, 200, "{}", replay.text());
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true"),
        "{:?}",
        replay.headers
    );
    assert_eq!(replay.body, first.body);
    // The same receipt under a new key changes nothing: the receipt id is on the return.
    let head = server.running.store.head().await.unwrap();
    let again = wms_receipt(&server, &rma_uuid, "wms-key-2", &receipt).await;
    assert_eq!(again.status, 200, "{}", again.text());
    let again = again.json();
    assert_eq!(again["position"], Value::Null, "{again}");
    let units = |answer: &Value| -> Vec<(String, String, String)> {
        answer["return"]["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let text = |k: &str| u[k].as_str().unwrap().to_string();
                (text("unitId"), text("location"), text("receiptId"))
            })
            .collect()
    };
    assert_eq!(units(&again), units(&answer), "{again}");
    let rma_events: Vec<String> = appended_since(&server, head)
        .await
        .into_iter()
        .filter(|e| e.starts_with("rma-"))
        .collect();
    assert_eq!(rma_events, Vec::<String>::new());
    // The same receipt id with other content is a conflict.
    let conflict = wms_receipt(
        &server,
        &rma_uuid,
        "wms-key-3",
        &json!({ "receiptId": "DC-RCPT-1", "location": "TKY-DC1", "lines": [{ "rmaLineId": "R1", "qty": 1 }] }),
    )
    .await;
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert!(conflict.text().contains("CONFLICT"), "{}", conflict.text());
    // GraphQL agrees: two units at the DC.
    let rma = read_return(&server, &cs, &id, None).await;
    assert_eq!(rma["status"], "RECEIVED", "{rma}");
    let units = rma["units"].as_array().unwrap();
    assert_eq!(units.len(), 2, "{rma}");
    assert!(units
        .iter()
        .all(|u| u["locationCode"] == "TKY-DC1" && u["receiptId"] == "DC-RCPT-1"));
    let shown = request(
        server.addr(),
        "GET",
        &format!("/api/returns/v1/returns/{rma_uuid}"),
        &[(
            "authorization",
            format!("Bearer {}", server.token("wms-integration", None, "wms-1")).as_str(),
        )],
        b"",
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["return"]["lines"][0]["received"], 2);
    // GraphQL shows the UUID the WMS API names the return by, and the API takes the GraphQL
    // id just as well (a WMS that got the id from GraphQL needs no decoding).
    assert_eq!(rma["rawId"], rma_uuid.as_str(), "{rma}");
    let by_graphql_id = request(
        server.addr(),
        "GET",
        &format!("/api/returns/v1/returns/{id}"),
        &[(
            "authorization",
            format!("Bearer {}", server.token("wms-integration", None, "wms-1")).as_str(),
        )],
        b"",
    )
    .await;
    assert_eq!(by_graphql_id.status, 200, "{}", by_graphql_id.text());
    assert_eq!(by_graphql_id.json(), shown.json());
    // The restarted server still knows both units are taken by the return.
    let e = refused(
        &server,
        &alice,
        "requestReturn",
        json!({ "orderId": order_id, "idempotencyKey": "ret-9b", "lines": [return_line("L1", 1, "DEFECTIVE")] }),
    )
    .await;
    assert_eq!(e["code"], "CONFLICT", "{e}");
    // The second unit graded after the restart: the disposition, resumed from its
    // checkpoint, counts each unit once (it handles events in order, so the first unit's
    // grade, if handled again, was handled before the second's shows).
    accepted(
        &server,
        &cs,
        "gradeReturnUnit",
        json!({ "id": id, "unitId": "R1-2", "gradeCode": "NEW" }),
    )
    .await;
    wait_for_stock(&server, "TKY-DC1", "TEE-L", |l| on_hand(l) >= dc_before + 2).await;
    assert_eq!(
        on_hand(&stock_level(&server, "TKY-DC1", "TEE-L", "ANY").await),
        dc_before + 2
    );
    let received: Vec<Value> = movements(&server, "TKY-DC1", "TEE-L")
        .await
        .into_iter()
        .filter(|m| m["type"] == "ReturnReceived.v1")
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. returnUpdates
// ---------------------------------------------------------------------------------------------

async fn next_update(ws: &mut GraphqlWs) -> Value {
    let message = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .expect("an update in time")
        .expect("the connection is open");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["returnUpdates"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_follows_the_return_live() {
    let server = demo().await;
    let order_id = picked_up_order(&server, "alice", "r10", SHIBUYA, &[("CHINO-M", 1)]).await;
    let alice = server.token("customer", None, "alice");
    let requested = request_return(
        &server,
        &alice,
        &order_id,
        "ret-10",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let id = requested["return"]["id"].as_str().unwrap().to_string();
    // The view has the request and the approval before Alice subscribes.
    let position = requested["position"].as_str().unwrap();
    read_return(&server, &alice, &id, Some(position)).await;
    let subscription = "subscription($id: ID) { returnUpdates(returnId: $id) { returnId orderId status event summary } }";
    // Bob may not follow it.
    let bob = server.token("customer", None, "bob");
    let (mut theirs, ack) = GraphqlWs::connect(
        server.addr(),
        json!({ "Authorization": format!("Bearer {bob}") }),
    )
    .await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    theirs
        .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription, "variables": { "id": id } } }))
        .await;
    let denied = tokio::time::timeout(PATIENCE, theirs.next())
        .await
        .unwrap()
        .unwrap();
    // An execution error: `next` with the error, then `complete`.
    assert_eq!(denied["type"], "next", "{denied}");
    assert_eq!(denied["payload"]["data"], Value::Null, "{denied}");
    assert_eq!(
        denied["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{denied}"
    );
    let (mut ws, ack) = GraphqlWs::connect(
        server.addr(),
        json!({ "Authorization": format!("Bearer {alice}") }),
    )
    .await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription, "variables": { "id": id } } }))
        .await;
    // The past first.
    let requested = next_update(&mut ws).await;
    assert_eq!(requested["event"], "ReturnRequested", "{requested}");
    assert_eq!(requested["returnId"], id.as_str());
    assert_eq!(requested["orderId"], order_id.as_str());
    let approved = next_update(&mut ws).await;
    assert_eq!(approved["event"], "ReturnApproved", "{approved}");
    assert_eq!(approved["status"], "APPROVED");
    // CS follows every return from now on (customers may not).
    let all = "subscription { returnUpdates { returnId event status } }";
    ws.send(json!({ "id": "2", "type": "subscribe", "payload": { "query": all } }))
        .await;
    let denied = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(denied["id"], "2", "{denied}");
    assert_eq!(
        denied["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{denied}"
    );
    let complete = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(complete, json!({ "id": "2", "type": "complete" }));
    let cs = server.token("cs-agent", None, "agent-1");
    let (mut agent, ack) = GraphqlWs::connect(
        server.addr(),
        json!({ "Authorization": format!("Bearer {cs}") }),
    )
    .await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    agent
        .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": all } }))
        .await;
    // Then each step as it happens.
    receive_at(&server, SHIBUYA, &id, "S10", &[("R1", 1)]).await;
    let received = next_update(&mut ws).await;
    assert_eq!(received["event"], "ReturnUnitsReceived", "{received}");
    assert_eq!(received["status"], "RECEIVED");
    grade_at(&server, SHIBUYA, &id, "R1-1", "GOOD").await;
    let graded = next_update(&mut ws).await;
    assert_eq!(graded["event"], "UnitGraded", "{graded}");
    assert_eq!(graded["status"], "INSPECTED");
    accepted(&server, &cs, "refundReturn", json!({ "id": id })).await;
    let refunded = next_update(&mut ws).await;
    assert_eq!(refunded["event"], "RefundIssued", "{refunded}");
    assert_eq!(refunded["status"], "REFUNDED");
    assert!(
        refunded["summary"].as_str().unwrap().contains("4990"),
        "{refunded}"
    );
    accepted(&server, &cs, "closeReturn", json!({ "id": id })).await;
    let closed = next_update(&mut ws).await;
    assert_eq!(closed["event"], "ReturnClosed", "{closed}");
    assert_eq!(closed["status"], "CLOSED");
    // The agent's feed got the steps since it subscribed (it may have started after the
    // receipt), in order, up to the close.
    let steps = [
        "ReturnUnitsReceived",
        "UnitGraded",
        "RefundIssued",
        "ReturnClosed",
    ];
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("ReturnClosed") {
        let update = next_update(&mut agent).await;
        assert_eq!(update["returnId"], id.as_str(), "{update}");
        seen.push(update["event"].as_str().unwrap().to_string());
    }
    assert!(
        steps.ends_with(&seen.iter().map(String::as_str).collect::<Vec<_>>()),
        "{seen:?}"
    );
    assert!(seen.len() >= 3, "the agent missed live steps: {seen:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 11. A refused disposition does not hold up the others
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_graded_at_a_closed_store_does_not_hold_up_other_returns() {
    let server = demo().await;
    let at_shinjuku = picked_up_order(&server, "alice", "c1", SHINJUKU, &[("OXFORD-M", 1)]).await;
    let at_shibuya = picked_up_order(&server, "bob", "c2", SHIBUYA, &[("OXFORD-M", 1)]).await;
    let alice = server.token("customer", None, "alice");
    let bob = server.token("customer", None, "bob");
    let first = request_return(
        &server,
        &alice,
        &at_shinjuku,
        "c1",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let first = first["return"]["id"].as_str().unwrap().to_string();
    let second = request_return(
        &server,
        &bob,
        &at_shibuya,
        "c2",
        json!([return_line("L1", 1, "DEFECTIVE")]),
    )
    .await;
    let second = second["return"]["id"].as_str().unwrap().to_string();
    receive_at(&server, SHINJUKU, &first, "c1", &[("R1", 1)]).await;
    receive_at(&server, SHIBUYA, &second, "c2", &[("R1", 1)]).await;
    // Shinjuku closes with Alice's unit still ungraded; an agent grades it as new, which the
    // inventory cannot take into the stock of an inactive location.
    let admin = server.token("admin", None, "ops");
    let closed = gql(
        &server,
        &admin,
        "mutation($id: ID!) { deactivateLocation(id: $id) { location { active } errors { code } } }",
        json!({ "id": location_id(SHINJUKU) }),
    )
    .await;
    assert_eq!(
        closed["data"]["deactivateLocation"]["location"]["active"], false,
        "{closed}"
    );
    // (Both pickups consumed their reservations first.)
    let shinjuku_before =
        on_hand(&wait_for_stock(&server, SHINJUKU, "OXFORD-M", |l| reserved(l) == 0).await);
    let shibuya_before =
        on_hand(&wait_for_stock(&server, SHIBUYA, "OXFORD-M", |l| reserved(l) == 0).await);
    let cs = server.token("cs-agent", None, "agent-1");
    accepted(
        &server,
        &cs,
        "gradeReturnUnit",
        json!({ "id": first, "unitId": "R1-1", "gradeCode": "NEW" }),
    )
    .await;
    // Bob's unit, graded after it at Shibuya, is back on Shibuya's shelf all the same.
    grade_at(&server, SHIBUYA, &second, "R1-1", "NEW").await;
    wait_for_stock(&server, SHIBUYA, "OXFORD-M", |l| {
        on_hand(l) == shibuya_before + 1
    })
    .await;
    assert_eq!(
        on_hand(&stock_level(&server, SHINJUKU, "OXFORD-M", "ANY").await),
        shinjuku_before
    );
    server.stop().await;
}
