//! The all-in-one server over real sockets: health, readiness, metrics, correlation ids, the
//! GraphQL endpoint with bearer tokens, and the services' status routes.

use ichigen_tests::server::{request, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_correlation() {
    let server = TestServer::start().await;
    let live = request(server.addr(), "GET", "/health/live", &[], b"").await;
    assert_eq!(live.status, 200);
    let ready = request(server.addr(), "GET", "/health/ready", &[], b"").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["backend"], "embedded");

    let id = "0b7f6a1c-58a4-4f55-8a9c-3b1d2e4f5a6b";
    let echoed = request(
        server.addr(),
        "GET",
        "/health/live",
        &[("x-correlation-id", id)],
        b"",
    )
    .await;
    assert_eq!(
        echoed.headers.get("x-correlation-id").map(String::as_str),
        Some(id)
    );
    let fresh = request(server.addr(), "GET", "/health/live", &[], b"").await;
    assert!(uuid::Uuid::parse_str(&fresh.headers["x-correlation-id"]).is_ok());

    let metrics = request(server.addr(), "GET", "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("ichigen_http_request_seconds_bucket{route=\"/health/live\""),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_viewer_with_and_without_tokens() {
    let server = TestServer::start().await;
    let query = "{ viewer { role subject storeId } }";
    let (status, body) = server.graphql(None, query, serde_json::json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["viewer"]["role"], "ANONYMOUS");

    let token = server.token("store-staff", Some("S1"), "clerk-7");
    let (_, body) = server
        .graphql(Some(&token), query, serde_json::json!({}))
        .await;
    assert_eq!(body["data"]["viewer"]["role"], "STORE_STAFF");
    assert_eq!(body["data"]["viewer"]["storeId"], "S1");
    assert_eq!(body["data"]["viewer"]["subject"], "clerk-7");

    let (status, body) = server
        .graphql(Some("not-a-token"), query, serde_json::json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // ADMIN-only reads are refused to others with a typed code.
    let (_, body) = server
        .graphql(
            Some(&token),
            "{ streamEvents(stream: \"inventory-x\") { edges { node { type } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_in_all_in_one_mode() {
    let server = TestServer::start().await;
    for service in ["order", "inventory", "fulfillment", "rma"] {
        let res = request(server.addr(), "GET", &format!("/api/{service}"), &[], b"").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.json()["category"], service);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_service_target_mounts_only_its_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir, ichigen_gateway::serve::Target::Inventory).await;
    assert_eq!(
        request(server.addr(), "GET", "/api/inventory", &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        request(server.addr(), "GET", "/api/order", &[], b"")
            .await
            .status,
        404
    );
    let gql = request(
        server.addr(),
        "POST",
        "/graphql",
        &[("content-type", "application/json")],
        b"{\"query\":\"{ viewer { role } }\"}",
    )
    .await;
    assert_eq!(gql.status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_feed_subscription_over_graphql_ws() {
    use ichigen_shared::store::ExpectedRevision;
    use ichigen_tests::conformance::event;
    use ichigen_tests::server::GraphqlWs;

    let server = TestServer::start().await;
    let admin = server.token("admin", None, "ops");
    let (mut ws, ack) = GraphqlWs::connect(
        server.addr(),
        serde_json::json!({ "Authorization": format!("Bearer {admin}") }),
    )
    .await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    ws.send(serde_json::json!({
        "id": "1",
        "type": "subscribe",
        "payload": { "query": "subscription { events(after: \"0\", categories: [\"wstest\"]) { stream type position } }" }
    }))
    .await;
    // A write after subscribing arrives over the socket.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    server
        .running
        .store
        .append(
            "wstest-1",
            ExpectedRevision::NoStream,
            vec![event("WsTested.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["events"]["stream"], "wstest-1");
    assert_eq!(next["payload"]["data"]["events"]["type"], "WsTested.v1");

    // A bad token in connection_init is refused with the code in the close reason.
    let (_, refused) = GraphqlWs::connect(
        server.addr(),
        serde_json::json!({ "Authorization": "Bearer nope" }),
    )
    .await;
    let refused = refused.unwrap();
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or("")
            .contains("UNAUTHENTICATED"),
        "{refused}"
    );
    server.stop().await;
}
