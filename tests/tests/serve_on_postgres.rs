//! The all-in-one server on PostgreSQL (`store.backend = "postgres"`), as README.md runs it:
//! the demo data, a BOPIS order from placement to handover and capture, the last-units race,
//! and a restart on the same database that finds everything again. Ignored (reported skipped)
//! where PostgreSQL is not installed.

use ichigen_gateway::serve::Target;
use ichigen_shared::config::Backend;
use ichigen_tests::postgres::TestPostgres;
use ichigen_tests::server::{request, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

async fn serve(pg: &TestPostgres, demo: bool) -> TestServer {
    let url = pg.url();
    TestServer::start_with(tempfile::tempdir().unwrap(), Target::All, move |s| {
        s.store.backend = Backend::Postgres;
        s.store.url = url;
        s.demo.seed = demo;
    })
    .await
}

async fn gql(server: &TestServer, token: &str, query: &str, vars: Value) -> Value {
    let (status, body) = server.graphql(Some(token), query, vars).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    body
}

async fn wait_for_order(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let cs = server.token("cs-agent", None, "cs");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = gql(
            server,
            &cs,
            "query($id: ID!) { order(id: $id) { status fulfillments { id status } payment { captured { amount } } } }",
            json!({ "id": id }),
        )
        .await;
        if done(&body["data"]["order"]) {
            return body["data"]["order"].clone();
        }
        assert!(Instant::now() < deadline, "order never got there: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn the_all_in_one_server_runs_on_postgres_and_restarts_on_it() {
    let pg = TestPostgres::start();
    let server = serve(&pg, true).await;
    let ready = request(server.addr(), "GET", "/health/ready", &[], b"").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["backend"], "postgres");

    // A BOPIS order, picked, made ready and handed over: captured once.
    let alice = server.token("customer", None, "alice");
    let placed = gql(
        &server,
        &alice,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } errors { code message } } }",
        json!({ "input": { "idempotencyKey": "pg-bopis", "lines": [{ "sku": "OXFORD-M", "quantity": 1,
            "delivery": { "method": "PICKUP", "store": location_id("TKY-SHIBUYA") } }] } }),
    )
    .await;
    assert_eq!(
        placed["data"]["placeOrder"]["errors"],
        json!([]),
        "{placed}"
    );
    let id = placed["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let order = wait_for_order(&server, &id, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    let clerk = server.token("store-staff", Some("TKY-SHIBUYA"), "clerk");
    gql(&server, &clerk, "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { errors { code } } }", json!({ "id": fid })).await;
    let ready = gql(&server, &clerk, "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { fulfillmentOrder { pickupCode } } }", json!({ "id": fid })).await;
    let code = ready["data"]["markReadyForPickup"]["fulfillmentOrder"]["pickupCode"]
        .as_str()
        .unwrap()
        .to_string();
    let handed = gql(&server, &clerk, "mutation($id: ID!, $code: String!) { handOverPickup(input: { id: $id, pickupCode: $code }) { fulfillmentOrder { status } errors { code } } }", json!({ "id": fid, "code": code })).await;
    assert_eq!(
        handed["data"]["handOverPickup"]["fulfillmentOrder"]["status"], "PICKED_UP",
        "{handed}"
    );
    wait_for_order(&server, &id, |o| {
        o["status"] == "PICKED_UP" && o["payment"]["captured"]["amount"] == "3990"
    })
    .await;

    // The last units: 5 PARKA-S in the network, 32 customers at once, exactly 5 sold.
    let admin = server.token("admin", None, "ops");
    for code in [
        "TKY-DC1",
        "OSA-DC1",
        "TKY-SHIBUYA",
        "TKY-SHINJUKU",
        "YOK-MINATOMIRAI",
        "OSA-UMEDA",
    ] {
        let n = if code == "TKY-DC1" { 5 } else { 0 };
        gql(&server, &admin, "mutation($l: ID!, $n: Int!) { countStock(input: { location: $l, sku: \"PARKA-S\", counted: $n }) { errors { code } } }", json!({ "l": location_id(code), "n": n })).await;
    }
    let server = Arc::new(server);
    let racers: Vec<_> = (0..32)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let token = server.token("customer", None, &format!("racer-{i}"));
                let body = gql(
                    &server,
                    &token,
                    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { errors { code } } }",
                    json!({ "input": { "idempotencyKey": "race", "lines": [{ "sku": "PARKA-S", "quantity": 1,
                        "delivery": { "method": "SHIP", "address": { "line1": "1", "city": "Tokyo",
                        "postalCode": "100-0005", "country": "JP", "lat": 35.68, "lon": 139.76 } } }] } }),
                )
                .await;
                body["data"]["placeOrder"]["errors"] == json!([])
            })
        })
        .collect();
    let mut sold = 0;
    for r in racers {
        sold += usize::from(r.await.unwrap());
    }
    assert!(sold <= 5, "oversold: {sold} orders for 5 units");
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("the server is still shared")
    };
    server.stop().await;

    // A restart on the same database: the orders are there, the demo is not seeded twice.
    let again = serve(&pg, true).await;
    let order = wait_for_order(&again, &id, |o| o["status"] == "PICKED_UP").await;
    assert_eq!(order["payment"]["captured"]["amount"], "3990");
    let (_, locations) = again
        .graphql(None, "{ locations { edges { node { code } } } }", json!({}))
        .await;
    assert_eq!(
        locations["data"]["locations"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(6),
        "{locations}"
    );
    again.stop().await;
}
