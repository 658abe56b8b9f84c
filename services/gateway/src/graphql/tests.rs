//! Resolver and endpoint tests, through the schema as clients use it.

use super::*;
use crate::auth::JwtAuth;
use async_graphql::{Request, Response, Value};
use futures::StreamExt;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{EventStore, ExpectedRevision};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn actor(role: Role) -> Actor {
    Actor {
        role,
        subject: format!("{}-1", role.as_str().to_ascii_lowercase()),
        store_id: (role == Role::StoreStaff).then(|| "STORE-07".to_string()),
    }
}

fn as_actor(query: &str, actor: Actor) -> Request {
    Request::new(query).data(RequestContext {
        actor,
        correlation_id: Uuid::new_v4(),
    })
}

/// A schema for what needs no store: every resolver that reaches the store would fail with a
/// wiring error, which the tests below never provoke.
fn storeless_schema(settings: &GraphqlSettings) -> IchigenSchema {
    builder()
        .limit_depth(settings.depth_limit)
        .limit_complexity(settings.complexity_limit)
        .finish()
}

fn codes(response: &Response) -> Vec<String> {
    response
        .errors
        .iter()
        .map(
            |e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Enum(s)) => s.to_string(),
                other => format!("no code: {other:?} ({})", e.message),
            },
        )
        .collect()
}

fn data(response: Response) -> serde_json::Value {
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    response.data.into_json().unwrap()
}

#[tokio::test]
async fn viewer_reports_the_caller_even_anonymous() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let anonymous = schema
        .execute(as_actor(
            "{ viewer { role subject storeId } }",
            Actor::anonymous(),
        ))
        .await;
    assert_eq!(
        data(anonymous),
        json!({"viewer": {"role": "ANONYMOUS", "subject": "", "storeId": null}})
    );
    let staff = schema
        .execute(as_actor(
            "{ viewer { role subject storeId } }",
            actor(Role::StoreStaff),
        ))
        .await;
    assert_eq!(
        data(staff),
        json!({"viewer": {"role": "STORE_STAFF", "subject": "store_staff-1", "storeId": "STORE-07"}})
    );
}

#[tokio::test]
async fn a_request_without_context_is_refused_not_treated_as_anonymous() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let response = schema.execute("{ viewer { role } }").await;
    assert_eq!(codes(&response), vec!["INTERNAL"]);
}

#[tokio::test]
async fn stream_events_is_for_admins_only() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let query = r#"{ streamEvents(stream: "order-1") { edges { cursor } } }"#;
    let anonymous = schema.execute(as_actor(query, Actor::anonymous())).await;
    assert_eq!(codes(&anonymous), vec!["UNAUTHENTICATED"]);
    for role in [
        Role::Customer,
        Role::StoreStaff,
        Role::CsAgent,
        Role::WmsIntegration,
    ] {
        let response = schema.execute(as_actor(query, actor(role))).await;
        assert_eq!(codes(&response), vec!["FORBIDDEN"], "{role}");
    }
}

#[tokio::test]
async fn the_event_feed_is_for_admins_only() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let mut stream = schema.execute_stream(as_actor(
        "subscription { events { type } }",
        actor(Role::Customer),
    ));
    let first = stream.next().await.unwrap();
    assert_eq!(codes(&first), vec!["FORBIDDEN"]);
}

#[tokio::test]
async fn the_event_feed_refuses_both_filters_at_once() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let mut stream = schema.execute_stream(as_actor(
        r#"subscription { events(categories: ["order"], eventTypePrefixes: ["Stock"]) { type } }"#,
        actor(Role::Admin),
    ));
    let first = stream.next().await.unwrap();
    assert_eq!(codes(&first), vec!["INVALID_INPUT"]);
}

#[tokio::test]
async fn queries_beyond_the_depth_limit_are_rejected_with_a_code() {
    let schema = storeless_schema(&GraphqlSettings {
        depth_limit: 2,
        ..GraphqlSettings::default()
    });
    let ok = schema
        .execute(as_actor("{ viewer { role } }", Actor::anonymous()))
        .await;
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    let deep = schema
        .execute(as_actor(
            "{ __schema { queryType { fields { name } } } }",
            Actor::anonymous(),
        ))
        .await;
    assert_eq!(codes(&deep), vec!["INVALID_INPUT"]);
    assert!(deep.errors[0].message.contains("nested too deep"));
}

#[tokio::test]
async fn syntax_and_validation_errors_carry_a_code() {
    let schema = storeless_schema(&GraphqlSettings::default());
    for query in [
        "{ viewer { ",
        "{ nope }",
        "{ streamEvents { edges { cursor } } }",
    ] {
        let response = schema.execute(as_actor(query, actor(Role::Admin))).await;
        assert!(!response.errors.is_empty(), "{query}");
        assert!(
            codes(&response).iter().all(|c| c == "INVALID_INPUT"),
            "{query}: {:?}",
            response.errors
        );
    }
}

/// graphql-js's `getIntrospectionQuery()` with GraphiQL's nine levels of `ofType`: the default
/// limits must let GraphiQL and code generators introspect the schema.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name } } } } } } } } }
}
"#;

#[tokio::test]
async fn default_limits_admit_graphiql_introspection() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let response = schema
        .execute(as_actor(INTROSPECTION, Actor::anonymous()))
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
}

#[tokio::test]
async fn a_full_page_of_events_fits_the_default_complexity_but_more_does_not() {
    let schema = storeless_schema(&GraphqlSettings::default());
    let full = r#"{ streamEvents(stream: "order-1", first: 500) {
        pageInfo { hasNextPage endCursor }
        edges { cursor node { id eventId stream revision position type data correlationId
                              causationId actor occurredAt } } } }"#;
    // Validation passes; the resolver then refuses the anonymous caller.
    let response = schema.execute(as_actor(full, Actor::anonymous())).await;
    assert_eq!(codes(&response), vec!["UNAUTHENTICATED"]);

    let tight = storeless_schema(&GraphqlSettings {
        complexity_limit: 1_000,
        ..GraphqlSettings::default()
    });
    let response = tight.execute(as_actor(full, actor(Role::Admin))).await;
    assert_eq!(codes(&response), vec!["INVALID_INPUT"]);
    assert!(response.errors[0].message.contains("too complex"));
}

#[test]
fn the_sdl_shows_the_conventions_and_every_service_part() {
    let sdl = sdl();
    for expected in [
        "type UserError",
        "enum ErrorCode",
        "INSUFFICIENT_STOCK",
        "type Money {",
        "input MoneyInput",
        "type StoreEventConnection",
        "enum ViewerRole",
        "streamEvents(stream: String!, first: Int, after: String): StoreEventConnection!",
        "events(after: String, categories: [String!], eventTypePrefixes: [String!]): StoreEvent!",
        "scalar DateTime",
        "scalar JSON",
        "scalar UUID",
        "type Mutation {",
        "defineLocation(input: DefineLocationInput!): LocationPayload!",
        "availability(sku: String!, channel: SalesChannel! = ONLINE",
        "availabilityChanged(skus: [String!], locations: [ID!], condition: StockCondition! = ANY): StockLevel!",
        "LOCATION_INACTIVE",
        "requestReturn(input: RequestReturnInput!): ReturnPayload!",
        "returnUpdates(returnId: ID): ReturnUpdate!",
        "stockLevels(",
    ] {
        assert!(sdl.contains(expected), "missing {expected:?} in\n{sdl}");
    }
    assert_eq!(sdl, super::sdl(), "the SDL must be deterministic");
}

// ---- with a real store ----------------------------------------------------------------------

struct Fixture {
    schema: IchigenSchema,
    store: EmbeddedStore,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let dyn_store: ichigen_shared::store::DynEventStore = Arc::new(store.clone());
    let inventory = ichigen_inventory::InventoryService::start(
        dyn_store.clone(),
        Arc::new(ichigen_shared::clock::SystemClock),
    );
    let orders = ichigen_order::OrderService::start(
        dyn_store.clone(),
        Arc::new(ichigen_shared::clock::SystemClock),
        Arc::new(crate::wiring::InProcessInventory(inventory.clone())),
        Arc::new(ichigen_order::payment::ManualProvider::new()),
    );
    let fulfillment = ichigen_fulfillment::FulfillmentService::start(
        dyn_store.clone(),
        Arc::new(ichigen_shared::clock::SystemClock),
    );
    let returns = ichigen_rma::RmaService::start(
        dyn_store.clone(),
        Arc::new(ichigen_shared::clock::SystemClock),
        Arc::new(crate::returns_wiring::InProcessOrders(orders.clone())),
        Arc::new(crate::returns_wiring::InProcessStock(inventory.clone())),
        Arc::new(crate::returns_wiring::InProcessCatalog(
            orders.catalog.clone(),
        )),
        Arc::new(crate::returns_wiring::InProcessLocations(inventory.clone())),
    );
    let schema = build_schema(
        SchemaDeps {
            store: dyn_store,
            inventory,
            orders,
            fulfillment,
            returns,
            clock: clock::ServerClock {
                clock: Arc::new(ichigen_shared::clock::SystemClock),
                test_clock: None,
            },
        },
        &GraphqlSettings::default(),
    );
    Fixture {
        schema,
        store,
        _dir: dir,
    }
}

fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::json(
        Uuid::new_v4(),
        event_type,
        &json!({ "n": n }),
        Metadata::new(actor(Role::StoreStaff)),
    )
    .unwrap()
}

async fn append(
    store: &EmbeddedStore,
    stream: &str,
    event_type: &str,
    range: std::ops::Range<u64>,
) {
    let events = range.map(|n| event(event_type, n)).collect();
    store
        .append(stream, ExpectedRevision::Any, events)
        .await
        .unwrap();
}

#[tokio::test]
async fn store_head_follows_appends() {
    let f = fixture().await;
    let query = "{ storeHead }";
    let empty = f.schema.execute(as_actor(query, Actor::anonymous())).await;
    assert_eq!(data(empty), json!({"storeHead": null}));
    append(&f.store, "order-1", "OrderPlaced.v1", 0..3).await;
    let head = f.store.head().await.unwrap().unwrap().to_string();
    let after = f.schema.execute(as_actor(query, Actor::anonymous())).await;
    assert_eq!(data(after), json!({"storeHead": head}));
}

#[tokio::test]
async fn stream_events_pages_through_a_stream() {
    let f = fixture().await;
    append(&f.store, "order-1", "OrderPlaced.v1", 0..5).await;
    append(&f.store, "order-2", "OrderPlaced.v1", 0..2).await;

    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let query = format!(
            r#"{{ streamEvents(stream: "order-1", first: 2{}) {{
                pageInfo {{ hasNextPage endCursor }}
                edges {{ node {{ id revision type data stream actor occurredAt correlationId causationId }} }} }} }}"#,
            after
                .as_ref()
                .map(|a| format!(r#", after: "{a}""#))
                .unwrap_or_default()
        );
        let page = data(f.schema.execute(as_actor(&query, actor(Role::Admin))).await);
        let conn = &page["streamEvents"];
        for edge in conn["edges"].as_array().unwrap() {
            let node = &edge["node"];
            assert_eq!(node["stream"], "order-1");
            assert_eq!(node["type"], "OrderPlaced.v1");
            assert_eq!(node["actor"], "STORE_STAFF:store_staff-1@STORE-07");
            assert!(node["causationId"].is_null());
            seen.push((
                node["revision"].as_str().unwrap().to_string(),
                node["data"]["n"].as_u64().unwrap(),
            ));
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    let expected: Vec<(String, u64)> = (0..5).map(|n| (n.to_string(), n)).collect();
    assert_eq!(seen, expected);

    let missing = f
        .schema
        .execute(as_actor(
            r#"{ streamEvents(stream: "order-404") { edges { cursor } pageInfo { hasNextPage } } }"#,
            actor(Role::Admin),
        ))
        .await;
    assert_eq!(
        data(missing),
        json!({"streamEvents": {"edges": [], "pageInfo": {"hasNextPage": false}}})
    );
}

#[tokio::test]
async fn stream_events_rejects_bad_arguments_with_codes() {
    let f = fixture().await;
    for (query, field) in [
        (
            r#"{ streamEvents(stream: "order-1", first: 501) { edges { cursor } } }"#,
            "first",
        ),
        (
            r#"{ streamEvents(stream: "order-1", first: -1) { edges { cursor } } }"#,
            "first",
        ),
        (
            r#"{ streamEvents(stream: "order-1", after: "nope") { edges { cursor } } }"#,
            "after",
        ),
        (
            r#"{ streamEvents(stream: "$all") { edges { cursor } } }"#,
            "stream",
        ),
    ] {
        let response = f.schema.execute(as_actor(query, actor(Role::Admin))).await;
        assert_eq!(codes(&response), vec!["INVALID_INPUT"], "{query}");
        let field_ext = response.errors[0]
            .extensions
            .as_ref()
            .and_then(|x| x.get("field"))
            .cloned();
        assert_eq!(
            field_ext,
            Some(Value::List(vec![Value::from(field)])),
            "{query}"
        );
    }
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = Response> + Unpin),
) -> serde_json::Value {
    let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the feed delivers within 10s")
        .expect("the feed is open");
    data(response)["events"].clone()
}

#[tokio::test]
async fn the_event_feed_catches_up_then_goes_live() {
    let f = fixture().await;
    append(&f.store, "order-1", "OrderPlaced.v1", 0..2).await;
    append(&f.store, "inventory-SKU1@S1", "StockReceived.v1", 0..1).await;

    let mut feed = f.schema.execute_stream(as_actor(
        r#"subscription { events(after: "0", categories: ["order"]) { type position revision eventId } }"#,
        actor(Role::Admin),
    ));
    let first = next_event(&mut feed).await;
    let second = next_event(&mut feed).await;
    assert_eq!(first["type"], "OrderPlaced.v1");
    assert_eq!(
        (first["revision"].as_str(), second["revision"].as_str()),
        (Some("0"), Some("1"))
    );

    // Live: a filtered-out event, then one that matches.
    append(&f.store, "inventory-SKU1@S1", "StockReceived.v1", 1..2).await;
    append(&f.store, "order-1", "OrderShipped.v1", 0..1).await;
    let live = next_event(&mut feed).await;
    assert_eq!(live["type"], "OrderShipped.v1");

    // Resuming after the second event's position yields the live one next.
    let resume = format!(
        r#"subscription {{ events(after: "{}", eventTypePrefixes: ["Order"]) {{ type }} }}"#,
        second["position"].as_str().unwrap()
    );
    let mut resumed = f
        .schema
        .execute_stream(as_actor(&resume, actor(Role::Admin)));
    assert_eq!(next_event(&mut resumed).await["type"], "OrderShipped.v1");
}

#[tokio::test]
async fn the_event_feed_without_after_starts_at_the_end() {
    let f = fixture().await;
    append(&f.store, "order-1", "OrderPlaced.v1", 0..3).await;
    let mut feed = f.schema.execute_stream(as_actor(
        "subscription { events { type revision } }",
        actor(Role::Admin),
    ));
    // Start the subscription before appending: the stream is lazy until polled.
    let pending = tokio::time::timeout(Duration::from_millis(200), feed.next()).await;
    assert!(
        pending.is_err(),
        "history must not be replayed without `after`"
    );
    append(&f.store, "order-1", "OrderShipped.v1", 0..1).await;
    let live = next_event(&mut feed).await;
    assert_eq!(live, json!({"type": "OrderShipped.v1", "revision": "3"}));
}

#[tokio::test]
async fn the_event_feed_rejects_a_bad_position() {
    let f = fixture().await;
    let mut feed = f.schema.execute_stream(as_actor(
        r#"subscription { events(after: "yesterday") { type } }"#,
        actor(Role::Admin),
    ));
    let response = feed.next().await.unwrap();
    assert_eq!(codes(&response), vec!["INVALID_INPUT"]);
}

// ---- HTTP and WebSocket ---------------------------------------------------------------------

const SECRET: &str = "endpoint-test-secret-endpoint-test-secret";

fn app_parts(graphiql: bool) -> (IchigenSchema, Arc<JwtAuth>, GraphqlSettings) {
    let settings = GraphqlSettings {
        graphiql,
        ..GraphqlSettings::default()
    };
    (
        storeless_schema(&settings),
        Arc::new(JwtAuth::new(SECRET)),
        settings,
    )
}

/// The `/graphql` service as `serve` wires it (a macro: the service type cannot be named
/// without depending on actix-http).
macro_rules! app {
    ($graphiql:expr) => {{
        use actix_web::{web, App};
        let (schema, auth, settings) = app_parts($graphiql);
        actix_web::test::init_service(
            App::new()
                .app_data(web::Data::new(schema))
                .app_data(web::Data::new(auth))
                .app_data(web::Data::new(settings))
                .configure(configure),
        )
        .await
    }};
}

fn post(query: &str, authorization: Option<&str>) -> actix_web::test::TestRequest {
    let mut req = actix_web::test::TestRequest::post()
        .uri(GRAPHQL_PATH)
        .set_json(json!({ "query": query }));
    if let Some(value) = authorization {
        req = req.insert_header(("Authorization", value));
    }
    req
}

#[actix_web::test]
async fn http_post_runs_queries_as_the_token_holder() {
    let app = app!(false);
    let token = JwtAuth::new(SECRET)
        .mint(
            Role::StoreStaff,
            "u-7",
            Some("S1"),
            chrono::Duration::minutes(5),
        )
        .unwrap();
    let query = "{ viewer { role storeId } }";
    let resp = actix_web::test::call_service(
        &app,
        post(query, Some(&format!("Bearer {token}"))).to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = actix_web::test::read_body_json(resp).await;
    assert_eq!(
        body,
        json!({"data": {"viewer": {"role": "STORE_STAFF", "storeId": "S1"}}})
    );

    let resp = actix_web::test::call_service(&app, post(query, None).to_request()).await;
    let body: serde_json::Value = actix_web::test::read_body_json(resp).await;
    assert_eq!(body["data"]["viewer"]["role"], "ANONYMOUS");
}

#[actix_web::test]
async fn http_post_with_a_bad_token_is_401_with_a_graphql_error() {
    let app = app!(false);
    let other = JwtAuth::new("another-secret")
        .mint(Role::Admin, "root", None, chrono::Duration::minutes(5))
        .unwrap();
    for header in [
        format!("Bearer {other}"),
        "Basic abc".to_string(),
        "Bearer x.y.z".into(),
    ] {
        let resp = actix_web::test::call_service(
            &app,
            post("{ viewer { role } }", Some(&header)).to_request(),
        )
        .await;
        assert_eq!(resp.status(), 401, "{header}");
        assert!(resp.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = actix_web::test::read_body_json(resp).await;
        assert_eq!(body["data"], serde_json::Value::Null);
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(body["errors"][0]["message"].as_str().unwrap().len() > 10);
    }
}

#[actix_web::test]
async fn http_get_serves_graphiql_only_when_enabled() {
    let on = app!(true);
    let resp = actix_web::test::call_service(
        &on,
        actix_web::test::TestRequest::get()
            .uri(GRAPHQL_PATH)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = actix_web::test::read_body(resp).await;
    assert!(String::from_utf8_lossy(&html).contains("graphiql"));

    let off = app!(false);
    let resp = actix_web::test::call_service(
        &off,
        actix_web::test::TestRequest::get()
            .uri(GRAPHQL_PATH)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[test]
fn websocket_init_payload_carries_the_token() {
    use super::endpoint::{connection_actor, ws_auth_error};
    let auth = JwtAuth::new(SECRET);
    let token = auth
        .mint(Role::Admin, "root", None, chrono::Duration::minutes(5))
        .unwrap();
    let bearer = format!("Bearer {token}");
    for payload in [
        json!({ "Authorization": bearer }),
        json!({ "authorization": bearer }),
    ] {
        let actor = connection_actor(&auth, &payload, Actor::anonymous()).unwrap();
        assert_eq!(actor.role, Role::Admin);
    }
    // No token in the payload: the upgrade request's actor (anonymous here) stands.
    for payload in [json!({}), json!(null), json!({ "Authorization": null })] {
        assert_eq!(
            connection_actor(&auth, &payload, Actor::anonymous()).unwrap(),
            Actor::anonymous()
        );
    }
    let bad =
        connection_actor(&auth, &json!({ "Authorization": 42 }), Actor::anonymous()).unwrap_err();
    assert!(matches!(bad, crate::auth::AuthError::Malformed(_)));
    let expired = connection_actor(
        &auth,
        &json!({ "Authorization": "Bearer not.a.token" }),
        Actor::anonymous(),
    )
    .unwrap_err();
    let error = ws_auth_error(&expired);
    assert!(error.message.starts_with("UNAUTHENTICATED: "));
    assert!(error.message.len() <= 123);
}
