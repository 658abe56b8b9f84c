//! The test clock of a staging server (`clock.test_clock`): an ADMIN moves the server's time
//! forward through GraphQL and a BOPIS order left at the counter expires as it would days
//! later; nobody else may, a server without it refuses, and production refuses to start.

use ichigen_gateway::serve::{self, Target};
use ichigen_shared::config::{Environment, Settings};
use ichigen_tests::server::TestServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADVANCE: &str = "mutation($by: String!) { advanceTestClock(input: { by: $by }) {
    now offsetSeconds position errors { field code message } } }";
const CLOCK: &str = "{ serverClock { now testClock offsetSeconds offset } }";
const ORDER: &str = "query($id: ID!) { order(id: $id) { status
    fulfillments { id status pickupExpiresAt } payment { voided } } }";
const DAY: i64 = 86_400;

fn location_id(code: &str) -> String {
    ichigen_shared::graphql::conventions::encode_id("Location", code).to_string()
}

async fn staging(dir: tempfile::TempDir) -> TestServer {
    TestServer::start_with(dir, Target::All, |s| {
        s.demo.seed = true;
        s.deployment.environment = Environment::Staging;
        s.clock.test_clock = true;
    })
    .await
}

async fn gql(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    let (status, body) = server.graphql(Some(token), query, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn offset(server: &TestServer) -> i64 {
    let (_, body) = server.graphql(None, CLOCK, json!({})).await;
    body["data"]["serverClock"]["offsetSeconds"]
        .as_i64()
        .unwrap()
}

async fn wait_for_order(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let cs = server.token("cs-agent", None, "cs");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = gql(server, &cs, ORDER, json!({ "id": id })).await;
        if done(&body["data"]["order"]) {
            return body["data"]["order"].clone();
        }
        assert!(Instant::now() < deadline, "order never got there: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn knit_available(server: &TestServer) -> i64 {
    let (_, b) = server
        .graphql(
            None,
            "query($s: ID!) { availability(sku: \"KNIT-L\", channel: PICKUP, store: $s) { available } }",
            json!({ "s": location_id("TKY-SHINJUKU") }),
        )
        .await;
    b["data"]["availability"]["available"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_moves_time_and_an_uncollected_pickup_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = staging(dir).await;
    let admin = server.token("admin", None, "qa-lead");
    let before = knit_available(&server).await;
    // A BOPIS order, picked and waiting at the counter (the demo stores hold pickups 7 days).
    let alice = server.token("customer", None, "alice");
    let placed = gql(
        &server,
        &alice,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } errors { code } } }",
        json!({ "input": { "idempotencyKey": "noshow", "lines": [{ "sku": "KNIT-L", "quantity": 1,
            "delivery": { "method": "PICKUP", "store": location_id("TKY-SHINJUKU") } }] } }),
    )
    .await;
    let id = placed["data"]["placeOrder"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed}"))
        .to_string();
    let order = wait_for_order(&server, &id, |o| {
        o["fulfillments"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let fid = order["fulfillments"][0]["id"].as_str().unwrap().to_string();
    let clerk = server.token("store-staff", Some("TKY-SHINJUKU"), "clerk");
    for step in [
        "mutation($id: ID!) { pickFulfillment(input: { id: $id, lines: [{ lineId: \"L1\", picked: 1, short: 0 }] }) { errors { code } } }",
        "mutation($id: ID!) { markReadyForPickup(input: { id: $id }) { errors { code } } }",
    ] {
        let body = gql(&server, &clerk, step, json!({ "id": fid })).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    wait_for_order(&server, &id, |o| o["status"] == "READY_FOR_PICKUP").await;
    assert_eq!(knit_available(&server).await, before - 1);

    // Nobody but an ADMIN moves the clock, and a refusal changes nothing.
    for token in [
        alice.clone(),
        clerk.clone(),
        server.token("cs-agent", None, "cs"),
    ] {
        let body = gql(&server, &token, ADVANCE, json!({ "by": "P8D" })).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
    }
    let (_, anonymous) = server.graphql(None, ADVANCE, json!({ "by": "P8D" })).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    for bad in ["P1M", "PT0S", "eight days", "P400D"] {
        let body = gql(&server, &admin, ADVANCE, json!({ "by": bad })).await;
        let payload = &body["data"]["advanceTestClock"];
        assert_eq!(
            payload["errors"][0]["code"], "INVALID_INPUT",
            "{bad}: {body}"
        );
        assert_eq!(
            payload["errors"][0]["field"],
            json!(["input", "by"]),
            "{body}"
        );
        assert!(payload["now"].is_null(), "{body}");
    }
    assert_eq!(offset(&server).await, 0);

    // Four days on, the pickup is still held (7 days)...
    let wall = chrono::Utc::now();
    let body = gql(&server, &admin, ADVANCE, json!({ "by": "P4D" })).await;
    let payload = &body["data"]["advanceTestClock"];
    assert_eq!(payload["errors"], json!([]), "{body}");
    assert_eq!(payload["offsetSeconds"], 4 * DAY);
    let now: chrono::DateTime<chrono::Utc> = payload["now"].as_str().unwrap().parse().unwrap();
    assert!(
        (now - wall - chrono::Duration::days(4)).num_seconds().abs() < 60,
        "{now}"
    );
    let (_, clock) = server.graphql(None, CLOCK, json!({})).await;
    assert_eq!(clock["data"]["serverClock"]["testClock"], true);
    assert_eq!(clock["data"]["serverClock"]["offset"], "P4D");
    tokio::time::sleep(Duration::from_millis(2500)).await; // the expiry process looks every second
    let order = wait_for_order(&server, &id, |_| true).await;
    assert_eq!(order["status"], "READY_FOR_PICKUP", "{order}");

    // ...four more and it expires: stock released, payment voided.
    let body = gql(&server, &admin, ADVANCE, json!({ "by": "PT96H" })).await;
    assert_eq!(
        body["data"]["advanceTestClock"]["offsetSeconds"],
        8 * DAY,
        "{body}"
    );
    let order = wait_for_order(&server, &id, |o| {
        o["status"] == "CANCELLED" && o["payment"]["voided"] == true
    })
    .await;
    assert_eq!(order["fulfillments"][0]["status"], "EXPIRED", "{order}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while knit_available(&server).await != before {
        assert!(Instant::now() < deadline, "stock not released");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The offset is the deployment's: a restarted server starts on it.
    let dir = server.stop().await;
    let server = staging(dir).await;
    assert_eq!(offset(&server).await, 8 * DAY);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_test_clock_refuses_to_move_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir, Target::All).await;
    let admin = server.token("admin", None, "root");
    let body = gql(&server, &admin, ADVANCE, json!({ "by": "P4D" })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_ENABLED",
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    let (_, clock) = server.graphql(None, CLOCK, json!({})).await;
    assert_eq!(clock["data"]["serverClock"]["testClock"], false, "{clock}");
    assert_eq!(clock["data"]["serverClock"]["offsetSeconds"], 0);
    let events = gql(
        &server,
        &admin,
        "{ streamEvents(stream: \"testclock-offset\") { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        events["data"]["streamEvents"]["edges"],
        json!([]),
        "{events}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_with_a_test_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.store.path = dir.path().to_path_buf();
    settings.http.bind = "127.0.0.1:0".into();
    settings.auth.secret = ichigen_tests::server::TEST_SECRET.into();
    settings.deployment.environment = Environment::Production;
    settings.clock.test_clock = true;
    let Err(refused) = serve::start(settings.clone(), Target::All).await else {
        panic!("a production server started with a test clock");
    };
    assert!(refused.contains("clock.test_clock"), "{refused}");
    // Production without it starts.
    settings.clock.test_clock = false;
    let running = serve::start(settings, Target::All).await.unwrap();
    running.stop().await;
}
