//! A graceful stop does not wait for open subscriptions: their sockets close at once with
//! 1001 (going away), and the stop ends well within `http.shutdown_timeout_secs`.

use ichigen_gateway::serve::Target;
use ichigen_tests::server::{GraphqlWs, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_closes_open_subscriptions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| {
        s.http.shutdown_timeout_secs = 10;
    })
    .await;
    let admin = format!("Bearer {}", server.token("admin", None, "root"));
    let mut sockets = Vec::new();
    for (i, subscription) in [
        "subscription { availabilityChanged { sku available } }",
        "subscription { events { type } }",
    ]
    .into_iter()
    .enumerate()
    {
        let (mut ws, ack) =
            GraphqlWs::connect(server.addr(), json!({ "Authorization": admin })).await;
        assert_eq!(ack.unwrap()["type"], "connection_ack");
        ws.send(json!({ "id": format!("s{i}"), "type": "subscribe", "payload": { "query": subscription } }))
            .await;
        sockets.push(ws);
    }
    // The subscriptions are running: a ping is answered in between.
    sockets[0].send(json!({ "type": "ping" })).await;
    assert_eq!(sockets[0].next().await.unwrap()["type"], "pong");

    let started = Instant::now();
    let stop = tokio::spawn(server.stop());
    for ws in &mut sockets {
        let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the socket stayed open during the stop");
        assert_eq!(
            closed,
            Some(json!({ "close": 1001, "reason": "server shutting down" }))
        );
    }
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .expect("the stop waited for the subscriptions")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_protocol_runs_and_closes_on_stop_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir, Target::All, |s| {
        s.http.shutdown_timeout_secs = 10;
    })
    .await;
    let (mut ws, ack) =
        GraphqlWs::connect_with_protocol(server.addr(), "graphql-ws", json!({})).await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "start",
        "payload": { "query": "{ viewer { role } }" } }))
        .await;
    let data = ws.next().await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(
        data["payload"]["data"]["viewer"]["role"], "ANONYMOUS",
        "{data}"
    );
    assert_eq!(ws.next().await.unwrap()["type"], "complete");
    ws.send(json!({ "id": "2", "type": "start",
        "payload": { "query": "subscription { availabilityChanged { sku } }" } }))
        .await;
    let started = Instant::now();
    let stop = tokio::spawn(server.stop());
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the socket stayed open during the stop");
    assert_eq!(
        closed,
        Some(json!({ "close": 1001, "reason": "server shutting down" }))
    );
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}
