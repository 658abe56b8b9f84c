//! `placeOrder` and `order(id)` through GraphQL on a real server with the demo data set
//! (2 DCs, 4 stores, 18 SKUs with JPY prices).

use ichigen_gateway::serve::Target;
use ichigen_tests::server::TestServer;
use serde_json::{json, Value};

const PLACE: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status customerId channel total { amount currency }
            lines { lineId sku quantity unitPrice { amount } delivery { method storeCode } allocations { locationCode quantity } }
            payment { provider authorized { amount currency } captured { amount } } }
    position
    errors { field code message }
  }
}";

const ORDER: &str = "query($id: ID!) { order(id: $id) { id status lines { sku quantity } } }";

async fn demo() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    TestServer::start_with(dir, Target::All, |s| s.demo.seed = true).await
}

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

fn ship_line(sku: &str, qty: i64) -> Value {
    json!({ "sku": sku, "quantity": qty, "delivery": { "method": "SHIP",
        "address": { "line1": "1-2-3 Marunouchi", "city": "Tokyo", "postalCode": "100-0005",
                     "country": "JP", "lat": 35.681, "lon": 139.767 } } })
}

async fn place(server: &TestServer, token: &str, input: Value) -> Value {
    let (status, body) = server
        .graphql(Some(token), PLACE, json!({ "input": input }))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_places_an_order_priced_from_the_catalog_once() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    let input = json!({ "idempotencyKey": "cart-1", "lines": [ship_line("TEE-M", 2)] });
    let body = place(&server, &alice, input.clone()).await;
    let payload = &body["data"]["placeOrder"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    let order = &payload["order"];
    assert_eq!(order["status"], "PLACED");
    assert_eq!(order["customerId"], "alice");
    assert_eq!(order["channel"], "WEB");
    // 2 × 1990 JPY from the catalog, authorized in full.
    assert_eq!(
        order["total"],
        json!({ "amount": "3980", "currency": "JPY" })
    );
    assert_eq!(order["payment"]["authorized"]["amount"], "3980");
    assert_eq!(order["payment"]["captured"]["amount"], "0");
    let allocated: i64 = order["lines"][0]["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(allocated, 2);
    assert!(payload["position"].is_string());
    // The retry returns the same order and places nothing new.
    let again = place(&server, &alice, input).await;
    assert_eq!(again["data"]["placeOrder"]["order"]["id"], order["id"]);
    assert_eq!(again["data"]["placeOrder"]["position"], Value::Null);
    // The owner reads it; another customer cannot (null, as if it did not exist).
    let id = order["id"].as_str().unwrap();
    let (_, mine) = server
        .graphql(Some(&alice), ORDER, json!({ "id": id }))
        .await;
    assert_eq!(mine["data"]["order"]["status"], "PLACED", "{mine}");
    let bob = server.token("customer", None, "bob");
    let (_, theirs) = server.graphql(Some(&bob), ORDER, json!({ "id": id })).await;
    assert_eq!(theirs["data"]["order"], Value::Null, "{theirs}");
    let cs = server.token("cs-agent", None, "agent-1");
    let (_, cs_view) = server.graphql(Some(&cs), ORDER, json!({ "id": id })).await;
    assert_eq!(cs_view["data"]["order"]["id"], order["id"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_typed_errors_and_change_nothing() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    let head = server.running.store.head().await.unwrap();
    let cases = [
        (
            json!({ "idempotencyKey": "b1", "lines": [ship_line("TEE-M", 0)] }),
            "INVALID_INPUT",
        ),
        (
            json!({ "idempotencyKey": "b2", "lines": [ship_line("TEE-M", 1_000_000)] }),
            "INVALID_INPUT",
        ),
        (
            json!({ "idempotencyKey": "b3", "lines": [ship_line("NO-SUCH-SKU", 1)] }),
            "NOT_FOUND",
        ),
        (
            json!({ "idempotencyKey": "b4", "lines": [{ "sku": "TEE-M", "quantity": 1,
                "delivery": { "method": "SHIP", "address": { "line1": "x", "city": "Tokyo",
                "postalCode": "1", "country": "JP" } } }] }),
            "INVALID_INPUT",
        ),
        (
            json!({ "idempotencyKey": "b5", "lines": [{ "sku": "TEE-M", "quantity": 1,
                "delivery": { "method": "PICKUP", "store": location_id("TKY-DC1") } }] }),
            "INVALID_INPUT",
        ),
        (
            json!({ "idempotencyKey": "b6", "lines": [ship_line("PARKA-L", 5000)] }),
            "INSUFFICIENT_STOCK",
        ),
    ];
    for (input, code) in cases {
        let body = place(&server, &alice, input.clone()).await;
        let payload = &body["data"]["placeOrder"];
        assert_eq!(payload["order"], Value::Null, "{input}: {body}");
        assert_eq!(payload["errors"][0]["code"], code, "{input}: {body}");
        let field = payload["errors"][0]["field"].as_array().unwrap();
        assert_eq!(field[0], "input", "{body}");
    }
    // A customer cannot use endless aisle, nor order for someone else.
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "b7", "customerId": "bob", "lines": [ship_line("TEE-M", 1)] }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // Nothing was appended by any of them.
    assert_eq!(server.running.store.head().await.unwrap(), head);
    // A replayed key with a different body is refused.
    let first = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "k", "lines": [ship_line("TEE-M", 1)] }),
    )
    .await;
    assert_eq!(first["data"]["placeOrder"]["errors"], json!([]), "{first}");
    let reused = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "k", "lines": [ship_line("TEE-M", 2)] }),
    )
    .await;
    assert_eq!(
        reused["data"]["placeOrder"]["errors"][0]["field"],
        json!(["input", "idempotencyKey"]),
        "{reused}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_staff_sell_from_the_network_to_the_customer_or_their_store() {
    let server = demo().await;
    let clerk = server.token("store-staff", Some("TKY-SHINJUKU"), "clerk-1");
    // Endless aisle, shipped to this store for pickup.
    let body = place(
        &server,
        &clerk,
        json!({ "idempotencyKey": "ea-1", "customerId": "carol", "lines": [{
            "sku": "DENIM-M", "quantity": 1,
            "delivery": { "method": "SHIP_TO_STORE", "store": location_id("TKY-SHINJUKU") } }] }),
    )
    .await;
    let payload = &body["data"]["placeOrder"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    assert_eq!(payload["order"]["channel"], "TKY-SHINJUKU");
    assert_eq!(payload["order"]["customerId"], "carol");
    let line = &payload["order"]["lines"][0];
    assert_eq!(line["delivery"]["method"], "SHIP_TO_STORE");
    // Sourced from elsewhere in the network, never from the destination store itself.
    for a in line["allocations"].as_array().unwrap() {
        assert_ne!(a["locationCode"], "TKY-SHINJUKU", "{body}");
    }
    // Endless aisle to the customer's home.
    let body = place(
        &server,
        &clerk,
        json!({ "idempotencyKey": "ea-2", "lines": [ship_line("KNIT-S", 1)] }),
    )
    .await;
    assert_eq!(body["data"]["placeOrder"]["errors"], json!([]), "{body}");
    // Not to another store.
    let body = place(
        &server,
        &clerk,
        json!({ "idempotencyKey": "ea-3", "lines": [{ "sku": "DENIM-M", "quantity": 1,
            "delivery": { "method": "SHIP_TO_STORE", "store": location_id("OSA-UMEDA") } }] }),
    )
    .await;
    let error = &body["data"]["placeOrder"]["errors"][0];
    assert_eq!(error["code"], "FORBIDDEN", "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_list_cancel_and_follow_their_orders() {
    use ichigen_tests::server::GraphqlWs;
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    let before = chino_available(&server).await;
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "c-1", "lines": [ship_line("CHINO-M", 1), ship_line("TEE-L", 2)] }),
    )
    .await;
    let order = &body["data"]["placeOrder"]["order"];
    let id = order["id"].as_str().unwrap().to_string();
    let position = body["data"]["placeOrder"]["position"].as_str().unwrap();
    // Her orders, read from the status view once it has the placement.
    let (_, list) = server
        .graphql(
            Some(&alice),
            "query($p: String) { orders(first: 10, atLeast: $p) { edges { node { id status } } } }",
            json!({ "p": position }),
        )
        .await;
    let edges = list["data"]["orders"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{list}");
    assert_eq!(edges[0]["node"]["id"], id.as_str());
    // Bob sees none of it, and cannot cancel it.
    let bob = server.token("customer", None, "bob");
    let (_, none) = server
        .graphql(
            Some(&bob),
            "{ orders { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(none["data"]["orders"]["edges"], json!([]));
    let cancel = "mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { order { status lines { lineId cancelled } } position errors { field code message } } }";
    let (_, refused) = server
        .graphql(Some(&bob), cancel, json!({ "input": { "orderId": id } }))
        .await;
    assert_eq!(
        refused["data"]["cancelOrder"]["errors"][0]["code"],
        "NOT_FOUND"
    );
    // Follow it live while Alice cancels one line, then the rest.
    let (mut ws, ack) = GraphqlWs::connect(
        server.addr(),
        json!({ "Authorization": format!("Bearer {alice}") }),
    )
    .await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { orderUpdates(orderId: $id) { kind amount { amount } reason } }",
        "variables": { "id": id } } }))
        .await;
    let (_, partial) = server
        .graphql(
            Some(&alice),
            cancel,
            json!({ "input": { "orderId": id, "lines": [{ "lineId": "L2", "quantity": 2 }] } }),
        )
        .await;
    let payload = &partial["data"]["cancelOrder"];
    assert_eq!(payload["errors"], json!([]), "{partial}");
    assert_eq!(payload["order"]["status"], "PARTIALLY_CANCELLED");
    // Cancelling more than is left is a typed error.
    let (_, too_much) = server
        .graphql(
            Some(&alice),
            cancel,
            json!({ "input": { "orderId": id, "lines": [{ "lineId": "L2", "quantity": 1 }] } }),
        )
        .await;
    assert_eq!(
        too_much["data"]["cancelOrder"]["order"],
        Value::Null,
        "{too_much}"
    );
    assert!(!too_much["data"]["cancelOrder"]["errors"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, all) = server
        .graphql(Some(&alice), cancel, json!({ "input": { "orderId": id } }))
        .await;
    assert_eq!(
        all["data"]["cancelOrder"]["order"]["status"], "CANCELLED",
        "{all}"
    );
    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("an update in time")
            .unwrap();
        assert_eq!(next["type"], "next", "{next}");
        kinds.push(
            next["payload"]["data"]["orderUpdates"]["kind"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        kinds,
        ["ORDER_RECEIVED", "CONFIRMED", "CANCELLED", "CANCELLED"]
    );
    // The order's reactions release the stock: what Alice held is available again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let chino_at = order["lines"][0]["allocations"][0]["locationCode"]
        .as_str()
        .unwrap()
        .to_string();
    while chino_available(&server).await != before {
        if std::time::Instant::now() > deadline {
            let admin = server.token("admin", None, "ops");
            let (_, history) = server
                .graphql(
                    Some(&admin),
                    "query($l: ID!) { stockMovements(sku: \"CHINO-M\", location: $l) { edges { node { type reservedDelta reference actor } } } }",
                    json!({ "l": location_id(&chino_at) }),
                )
                .await;
            let (_, o) = server
                .graphql(Some(&admin), "query($id: ID!) { order(id: $id) { status lines { lineId cancelled allocations { locationCode quantity released } } timeline { type summary } } }", json!({ "id": id }))
                .await;
            let oid = {
                use base64::Engine;
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&id)
                    .unwrap();
                String::from_utf8(raw)
                    .unwrap()
                    .split_once(':')
                    .unwrap()
                    .1
                    .to_string()
            };
            let (_, events) = server
                .graphql(Some(&admin), "query($s: String!) { streamEvents(stream: $s) { edges { node { type data } } } }", json!({ "s": format!("order-{oid}") }))
                .await;
            panic!("the stock was not released: {history}\n{o}\n{events}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await;
}

async fn chino_available(server: &TestServer) -> i64 {
    let (_, body) = server
        .graphql(
            None,
            "{ availability(sku: \"CHINO-M\") { available } }",
            json!({}),
        )
        .await;
    body["data"]["availability"]["available"].as_i64().unwrap()
}

/// Polls `order(id)` as CS until `done` holds (processes run asynchronously).
async fn wait_for_order(
    server: &TestServer,
    id: &str,
    query: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let cs = server.token("cs-agent", None, "cs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, body) = server.graphql(Some(&cs), query, json!({ "id": id })).await;
        if done(&body["data"]["order"]) {
            return body["data"]["order"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order never got there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bopis_end_to_end_pick_ready_handover_capture() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "bopis-1", "lines": [{ "sku": "OXFORD-M", "quantity": 1,
            "delivery": { "method": "PICKUP", "store": location_id("TKY-SHIBUYA") } }] }),
    )
    .await;
    assert_eq!(body["data"]["placeOrder"]["errors"], json!([]), "{body}");
    let id = body["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = "query($id: ID!) { order(id: $id) { status fulfillments { id kind status pickupCode } payment { captured { amount } } } }";
    let order = wait_for_order(&server, &id, q, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(order["fulfillments"][0]["kind"], "PICKUP");
    let clerk = server.token("store-staff", Some("TKY-SHIBUYA"), "clerk");
    // The clerk sees it in the store's pickup queue.
    let (_, queue) = server
        .graphql(
            Some(&clerk),
            "query($s: ID!) { pickupQueue(store: $s) { edges { node { id status } } } }",
            json!({ "s": location_id("TKY-SHIBUYA") }),
        )
        .await;
    let queued: Vec<&Value> = queue["data"]["pickupQueue"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert!(queued.contains(&&json!(fid)), "{queue}");
    // Another store's clerk cannot touch it.
    let other = server.token("store-staff", Some("OSA-UMEDA"), "clerk-2");
    let pick = "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { fulfillmentOrder { status } errors { code field } } }";
    let (_, refused) = server
        .graphql(Some(&other), pick, json!({ "id": fid }))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let (_, picked) = server
        .graphql(Some(&clerk), pick, json!({ "id": fid }))
        .await;
    assert_eq!(
        picked["data"]["pickFulfillment"]["fulfillmentOrder"]["status"], "PICKED",
        "{picked}"
    );
    let (_, ready) = server
        .graphql(
            Some(&clerk),
            "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { fulfillmentOrder { status pickupCode } errors { code } } }",
            json!({ "id": fid }),
        )
        .await;
    let code = ready["data"]["markReadyForPickup"]["fulfillmentOrder"]["pickupCode"]
        .as_str()
        .unwrap()
        .to_string();
    // The customer's order says READY_FOR_PICKUP with the code.
    let order = wait_for_order(&server, &id, q, |o| o["status"] == "READY_FOR_PICKUP").await;
    assert_eq!(order["fulfillments"][0]["pickupCode"], code.as_str());
    let handover = "mutation($id: ID!, $code: String!) { handOverPickup(input: { id: $id, pickupCode: $code }) { fulfillmentOrder { status } errors { code field } } }";
    let (_, wrong) = server
        .graphql(
            Some(&clerk),
            handover,
            json!({ "id": fid, "code": "WRONG1" }),
        )
        .await;
    assert_eq!(
        wrong["data"]["handOverPickup"]["errors"][0]["field"],
        json!(["input", "pickupCode"]),
        "{wrong}"
    );
    let (_, right) = server
        .graphql(Some(&clerk), handover, json!({ "id": fid, "code": code }))
        .await;
    assert_eq!(
        right["data"]["handOverPickup"]["fulfillmentOrder"]["status"], "PICKED_UP",
        "{right}"
    );
    // Picked up and paid: the authorization is captured once, for the price (3990 JPY).
    let order = wait_for_order(&server, &id, q, |o| {
        o["status"] == "PICKED_UP" && o["payment"]["captured"]["amount"] == "3990"
    })
    .await;
    assert_eq!(order["fulfillments"][0]["status"], "PICKED_UP");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_order_shipped_by_the_dc_through_the_wms_api_is_delivered_and_captured() {
    use ichigen_tests::server::request;
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    // An address next to the Tokyo DC (Ichikawa): the DC is the nearest location that ships.
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "dc-1", "lines": [{ "sku": "PARKA-M", "quantity": 1,
            "delivery": { "method": "SHIP", "address": { "line1": "2-1", "city": "Ichikawa",
                "postalCode": "272-0001", "country": "JP", "lat": 35.70, "lon": 139.93 } } }] }),
    )
    .await;
    assert_eq!(body["data"]["placeOrder"]["errors"], json!([]), "{body}");
    let order = &body["data"]["placeOrder"]["order"];
    assert_eq!(
        order["lines"][0]["allocations"][0]["locationCode"], "TKY-DC1",
        "{body}"
    );
    let id = order["id"].as_str().unwrap().to_string();
    // The WMS finds the task in the DC's list.
    let wms = format!("Bearer {}", server.token("wms-integration", None, "wms-1"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
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
        let tasks = res.json()["tasks"].as_array().unwrap().clone();
        if let Some(t) = tasks.into_iter().next() {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "no DC task");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let fid = task["id"].as_str().unwrap().to_string();
    // The shape README.md shows for a task.
    let keys: Vec<&str> = task
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "carrier",
            "createdAt",
            "destinationStore",
            "id",
            "kind",
            "lines",
            "location",
            "orderId",
            "status",
            "trackingNumber"
        ],
        "{task}"
    );
    let mut line_keys: Vec<&str> = task["lines"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    line_keys.sort_unstable();
    assert_eq!(
        line_keys,
        ["cancelled", "lineId", "picked", "quantity", "short", "sku"],
        "{task}"
    );
    // The task names the fulfillment order by the UUID GraphQL shows as `rawId`.
    let cs = server.token("cs-agent", None, "cs");
    let (_, ids) = server
        .graphql(
            Some(&cs),
            "query($id: ID!) { order(id: $id) { rawId fulfillments { id rawId } } }",
            json!({ "id": id }),
        )
        .await;
    let shown = &ids["data"]["order"];
    assert_eq!(shown["fulfillments"][0]["rawId"], fid.as_str(), "{ids}");
    assert_eq!(
        ichigen_shared::graphql::conventions::encode_id("Order", shown["rawId"].as_str().unwrap())
            .to_string(),
        id
    );
    // The task list takes the location's GraphQL id as well as its code.
    let by_location_id = request(
        server.addr(),
        "GET",
        &format!("/api/fulfillment/v1/tasks/{}", location_id("TKY-DC1")),
        &[("authorization", wms.as_str())],
        b"",
    )
    .await;
    assert_eq!(by_location_id.status, 200, "{}", by_location_id.text());
    assert_eq!(by_location_id.json()["tasks"][0]["id"], fid.as_str());
    // The WMS API takes the GraphQL id as well as the UUID.
    let graphql_fid = shown["fulfillments"][0]["id"].as_str().unwrap().to_string();
    let step = |path: &str, key: &str, body: Value| {
        let wms = wms.clone();
        let path = format!("/api/fulfillment/v1/fulfillments/{fid}/{path}");
        let key = key.to_string();
        let addr = server.addr();
        async move {
            let body = body.to_string();
            let res = request(
                addr,
                "POST",
                &path,
                &[
                    ("authorization", wms.as_str()),
                    ("content-type", "application/json"),
                    ("idempotency-key", key.as_str()),
                ],
                body.as_bytes(),
            )
            .await;
            assert_eq!(res.status, 200, "{path}: {}", res.text());
            res.json()
        }
    };
    let picked = request(
        server.addr(),
        "POST",
        &format!("/api/fulfillment/v1/fulfillments/{graphql_fid}/pick"),
        &[
            ("authorization", wms.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", "p-0"),
        ],
        json!({ "lines": [{ "lineId": "L1", "picked": 1, "short": 0 }] })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(picked.status, 200, "{}", picked.text());
    assert_eq!(picked.json()["fulfillment"]["id"], fid.as_str());
    // Sent again under the UUID: the same pick, nothing new.
    step(
        "pick",
        "p-1",
        json!({ "lines": [{ "lineId": "L1", "picked": 1, "short": 0 }] }),
    )
    .await;
    step("pack", "k-1", json!({ "packages": 1 })).await;
    let shipped = step(
        "ship",
        "s-1",
        json!({ "carrier": "Yamato", "trackingNumber": "4455-6677-8899" }),
    )
    .await;
    assert_eq!(shipped["fulfillment"]["status"], "SHIPPED", "{shipped}");
    step("deliver", "d-1", json!({})).await;
    // The order follows: delivered, tracked, captured once at the catalog price (9990 JPY).
    let q = "query($id: ID!) { order(id: $id) { status fulfillments { trackingNumber } payment { captured { amount } } updates { kind trackingNumber } } }";
    let order = wait_for_order(&server, &id, q, |o| {
        o["status"] == "DELIVERED" && o["payment"]["captured"]["amount"] == "9990"
    })
    .await;
    assert_eq!(order["fulfillments"][0]["trackingNumber"], "4455-6677-8899");
    let kinds: Vec<&str> = order["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ORDER_RECEIVED", "CONFIRMED", "SHIPPED", "DELIVERED"],
        "{order}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_customers_racing_for_the_last_units_never_oversell() {
    let server = demo().await;
    // Few units left in the network: 6 at the Tokyo DC, none anywhere else.
    let admin = server.token("admin", None, "ops");
    for (code, counted) in [
        ("TKY-DC1", 6),
        ("OSA-DC1", 0),
        ("TKY-SHIBUYA", 0),
        ("TKY-SHINJUKU", 0),
        ("YOK-MINATOMIRAI", 0),
        ("OSA-UMEDA", 0),
    ] {
        let (_, body) = server
            .graphql(
                Some(&admin),
                "mutation($l: ID!, $n: Int!) { countStock(input: { location: $l, sku: \"PARKA-S\", counted: $n }) { position errors { code } } }",
                json!({ "l": location_id(code), "n": counted }),
            )
            .await;
        assert_eq!(body["data"]["countStock"]["errors"], json!([]), "{body}");
    }
    let head = server
        .running
        .store
        .head()
        .await
        .unwrap()
        .unwrap()
        .to_string();
    // How many PARKA-S the network can ship right now.
    let (_, body) = server
        .graphql(
            None,
            "query($p: String) { availability(sku: \"PARKA-S\", atLeast: $p) { available } }",
            json!({ "p": head }),
        )
        .await;
    let stock = body["data"]["availability"]["available"].as_i64().unwrap();
    assert_eq!(stock, 6, "{body}");
    let server = std::sync::Arc::new(server);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let token = server.token("customer", None, &format!("racer-{i}"));
                let body = place(
                    &server,
                    &token,
                    json!({ "idempotencyKey": "race", "lines": [ship_line("PARKA-S", 1)] }),
                )
                .await;
                body["data"]["placeOrder"]["errors"] == json!([])
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() {
            won += 1;
        }
    }
    assert!(won <= stock, "oversold: {won} orders for {stock} units");
    // What the race did not sell is still for sale (losers lost to a moment-old view), and
    // nothing is ever sold beyond the stock.
    let late = server.token("customer", None, "late");
    let mut more = 0;
    for n in 0..=stock {
        let body = place(
            &server,
            &late,
            json!({ "idempotencyKey": format!("late-{n}"), "lines": [ship_line("PARKA-S", 1)] }),
        )
        .await;
        if body["data"]["placeOrder"]["errors"] != json!([]) {
            let code = &body["data"]["placeOrder"]["errors"][0]["code"];
            assert_eq!(code, "INSUFFICIENT_STOCK", "{body}");
            break;
        }
        more += 1;
    }
    assert_eq!(won + more, stock, "exactly the stock is sold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_larger_than_any_location_is_split_across_two() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    // TEE-M: 6 stock locations; ask for more than the biggest holds but less than the network.
    let admin = server.token("admin", None, "ops");
    let mut biggest = 0;
    let mut total = 0;
    for code in ["TKY-DC1", "OSA-DC1", "TKY-SHIBUYA", "YOK-MINATOMIRAI"] {
        let (_, body) = server
            .graphql(
                Some(&admin),
                "query($l: ID!) { stockLevels(location: $l, first: 50) { edges { node { sku available } } } }",
                json!({ "l": location_id(code) }),
            )
            .await;
        let available = body["data"]["stockLevels"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["sku"] == "TEE-M")
            .map_or(0, |e| e["node"]["available"].as_i64().unwrap());
        biggest = biggest.max(available);
        total += available;
    }
    assert!(total > biggest, "demo stock is spread");
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "split", "lines": [ship_line("TEE-M", biggest + 1)] }),
    )
    .await;
    let payload = &body["data"]["placeOrder"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    let allocations = payload["order"]["lines"][0]["allocations"]
        .as_array()
        .unwrap();
    assert!(allocations.len() >= 2, "split: {body}");
    let sum: i64 = allocations
        .iter()
        .map(|a| a["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, biggest + 1);
}

const FULFILLMENTS: &str = "query($id: ID!) { order(id: $id) { status lines { lineId cancelled allocations { locationCode quantity released } } fulfillments { id kind status locationCode trackingNumber } payment { captured { amount } voided } } }";

async fn staff_step(server: &TestServer, store: &str, mutation: &str, vars: Value) -> Value {
    let clerk = server.token("store-staff", Some(store), "clerk");
    let (_, body) = server.graphql(Some(&clerk), mutation, vars).await;
    assert!(body["errors"].is_null(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bopis_no_show_expires_on_the_clock_releases_stock_and_voids() {
    let clock = std::sync::Arc::new(ichigen_shared::clock::ManualClock::new(chrono::Utc::now()));
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with_clock(dir, Target::All, |s| s.demo.seed = true, clock.clone()).await;
    let before = {
        let (_, b) = server
            .graphql(None, "query($s: ID!) { availability(sku: \"KNIT-L\", channel: PICKUP, store: $s) { available } }", json!({ "s": location_id("TKY-SHINJUKU") }))
            .await;
        b["data"]["availability"]["available"].as_i64().unwrap()
    };
    assert!(before > 0);
    let alice = server.token("customer", None, "alice");
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "noshow", "lines": [{ "sku": "KNIT-L", "quantity": 1,
            "delivery": { "method": "PICKUP", "store": location_id("TKY-SHINJUKU") } }] }),
    )
    .await;
    let id = body["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let order = wait_for_order(&server, &id, FULFILLMENTS, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    staff_step(&server, "TKY-SHINJUKU", "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { errors { code } } }", json!({ "id": fid })).await;
    staff_step(
        &server,
        "TKY-SHINJUKU",
        "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { errors { code } } }",
        json!({ "id": fid }),
    )
    .await;
    wait_for_order(&server, &id, FULFILLMENTS, |o| {
        o["status"] == "READY_FOR_PICKUP"
    })
    .await;
    // The store holds pickups 7 days (demo); the customer never comes.
    clock.advance(chrono::Duration::days(8));
    let order = wait_for_order(&server, &id, FULFILLMENTS, |o| {
        o["status"] == "CANCELLED" && o["payment"]["voided"] == true
    })
    .await;
    assert_eq!(order["fulfillments"][0]["status"], "EXPIRED", "{order}");
    // The unit is back on sale at the store.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, b) = server
            .graphql(None, "query($s: ID!) { availability(sku: \"KNIT-L\", channel: PICKUP, store: $s) { available } }", json!({ "s": location_id("TKY-SHINJUKU") }))
            .await;
        if b["data"]["availability"]["available"].as_i64() == Some(before) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stock not released: {b}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ship_from_store_by_staff_and_a_short_pick_resourced_elsewhere() {
    let server = demo().await;
    let alice = server.token("customer", None, "alice");
    // Shibuya ships from store and is nearest to Marunouchi: it gets both lines.
    let body = place(
        &server,
        &alice,
        json!({ "idempotencyKey": "sfs", "lines": [ship_line("TEE-L", 1), ship_line("CHINO-M", 1)] }),
    )
    .await;
    let order = &body["data"]["placeOrder"]["order"];
    assert_eq!(
        order["lines"][0]["allocations"][0]["locationCode"], "TKY-SHIBUYA",
        "{body}"
    );
    let id = order["id"].as_str().unwrap().to_string();
    let order = wait_for_order(&server, &id, FULFILLMENTS, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    // The clerk finds it among the store's ship-from-store tasks.
    let clerk = server.token("store-staff", Some("TKY-SHIBUYA"), "clerk");
    let (_, tasks) = server
        .graphql(
            Some(&clerk),
            "query($s: ID!) { shipFromStoreTasks(store: $s) { edges { node { id } } } }",
            json!({ "s": location_id("TKY-SHIBUYA") }),
        )
        .await;
    assert!(tasks.to_string().contains(&fid), "{tasks}");
    // CHINO-M is not on the shelf: short pick. TEE-L ships from the store.
    staff_step(&server, "TKY-SHIBUYA", "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }, { lineId: \"L2\", picked: 0, short: 1 }] }) { errors { code } } }", json!({ "id": fid })).await;
    staff_step(&server, "TKY-SHIBUYA", "mutation($id: ID!) { packFulfillment(input: { id: $id, packages: 1 }) { errors { code } } }", json!({ "id": fid })).await;
    staff_step(&server, "TKY-SHIBUYA", "mutation($id: ID!) { shipFulfillment(input: { id: $id, carrier: \"Sagawa\", trackingNumber: \"SG-1\" }) { errors { code } } }", json!({ "id": fid })).await;
    // The short unit is re-sourced to another location (a new fulfillment order there), and
    // the shipped unit is captured (1990 JPY).
    let order = wait_for_order(&server, &id, FULFILLMENTS, |o| {
        o["fulfillments"].as_array().is_some_and(|f| f.len() == 2)
            && o["payment"]["captured"]["amount"] == "1990"
    })
    .await;
    let other = order["fulfillments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] != fid.as_str())
        .unwrap()
        .clone();
    assert_ne!(other["locationCode"], "TKY-SHIBUYA", "{order}");
    assert_eq!(order["status"], "PARTIALLY_FULFILLED", "{order}");
    // The discrepancy is recorded against Shibuya.
    let admin = server.token("admin", None, "ops");
    let (_, history) = server
        .graphql(Some(&admin), "query($l: ID!) { stockMovements(sku: \"CHINO-M\", location: $l) { edges { node { type reason } } } }", json!({ "l": location_id("TKY-SHIBUYA") }))
        .await;
    assert!(history.to_string().contains("SHORT_PICK"), "{history}");
    server.stop().await;
}
