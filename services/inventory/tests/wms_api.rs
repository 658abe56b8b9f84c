//! The WMS integration API over the real embedded store: every movement route, problem bodies,
//! credentials, and the idempotency guarantees — replay, reuse, restart, crash recovery, a
//! 10,000-line bulk and concurrent retries.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use actix_web::{test, web, App};
use ichigen_inventory::api::{self, idempotency};
use ichigen_inventory::domain::{
    stream_name, Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::InventoryService;
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::NewEvent;
use ichigen_shared::envelope::{Metadata, RecordedEvent};
use ichigen_shared::http::testing::{assert_problem, send, Reply};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{
    read_whole_stream, AppendResult, DynEventStore, EventStore, ExpectedRevision, Position,
    StoreError, SubscribeFrom, Subscription, SubscriptionFilter,
};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;

const SECRET: &str = "wms-api-test-secret-that-is-long-enough";
const WMS: &str = "wms-1";

struct Env {
    dir: tempfile::TempDir,
    store: DynEventStore,
    service: InventoryService,
    auth: Arc<JwtAuth>,
}

async fn start(dir: &Path) -> (DynEventStore, InventoryService) {
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let service = InventoryService::start(store.clone(), Arc::new(SystemClock));
    (store, service)
}

fn spec(code: &str, kind: LocationKind) -> LocationSpec {
    LocationSpec {
        code: code.into(),
        name: format!("Location {code}"),
        kind,
        address: Address {
            line1: "1-1 Marunouchi".into(),
            city: "Tokyo".into(),
            postal_code: "100-0005".into(),
            country: "JP".into(),
        },
        lat: 35.68,
        lon: 139.76,
        time_zone: "Asia/Tokyo".into(),
        capabilities: BTreeSet::from([Capability::Ship]),
        pickup_hold_days: 7,
        daily_capacity: Some(1000),
    }
}

fn system() -> Metadata {
    Metadata::new(Actor::system("test"))
}

/// A fresh store with locations S1 (store) and DC1 (DC).
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (store, service) = start(dir.path()).await;
    for (code, kind) in [("S1", LocationKind::Store), ("DC1", LocationKind::Dc)] {
        service
            .locations
            .execute(LocationCommand::Define(spec(code, kind)), system())
            .await
            .unwrap();
    }
    Env {
        dir,
        store,
        service,
        auth: Arc::new(JwtAuth::new(SECRET)),
    }
}

macro_rules! app {
    ($service:expr, $auth:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($service.clone()))
                .app_data(web::Data::new($auth.clone()))
                .configure(api::configure),
        )
        .await
    };
}

fn token(role: Role, subject: &str) -> String {
    JwtAuth::new(SECRET)
        .mint(role, subject, None, chrono::Duration::hours(1))
        .unwrap()
}

fn url(path: &str) -> String {
    format!("/api/inventory/v1{path}")
}

/// A POST with the WMS token and `key`.
fn post(path: &str, key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&url(path))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::WmsIntegration, WMS)),
        ))
        .insert_header(("Idempotency-Key", key))
        .set_payload(body.to_string())
}

async fn events(store: &DynEventStore, sku: &str, location: &str) -> Vec<RecordedEvent> {
    read_whole_stream(store.as_ref(), &stream_name(sku, location))
        .await
        .unwrap()
}

fn levels(
    on_hand: i64,
    reserved: i64,
    safety: i64,
    available: i64,
    incoming: i64,
    ns: i64,
) -> Value {
    json!({
        "onHand": on_hand, "reserved": reserved, "safetyStock": safety,
        "available": available, "incoming": incoming, "nonSellable": ns
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_movement_route_answers_with_levels() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let steps: Vec<(&str, Value, Value)> = vec![
        (
            "/receipts",
            json!({"sku": "SKU-A", "location": "S1", "qty": 10, "reference": "ASN-1"}),
            levels(10, 0, 0, 10, 0, 0),
        ),
        (
            "/adjustments",
            json!({"sku": "SKU-A", "location": "S1", "delta": -2, "reasonCode": "DAMAGED"}),
            levels(8, 0, 0, 8, 0, 0),
        ),
        (
            "/counts",
            json!({"sku": "SKU-A", "location": "S1", "counted": 7}),
            levels(7, 0, 0, 7, 0, 0),
        ),
        (
            "/on-hand",
            json!({"sku": "SKU-A", "location": "S1", "expectedOnHand": 7, "newOnHand": 9}),
            levels(9, 0, 0, 9, 0, 0),
        ),
        (
            "/transfers/out",
            json!({"sku": "SKU-A", "location": "S1", "qty": 2, "toLocation": "DC1", "transferId": "T-1"}),
            levels(7, 0, 0, 7, 0, 0),
        ),
        // T-1 is in transit at DC1 (incoming 2) since its out; T-2 is announced on top.
        (
            "/transfers/expected",
            json!({"sku": "SKU-A", "location": "DC1", "qty": 3, "transferId": "T-2", "fromLocation": "S1"}),
            levels(0, 0, 0, 0, 5, 0),
        ),
        (
            "/transfers/in",
            json!({"sku": "SKU-A", "location": "DC1", "qty": 2, "transferId": "T-1"}),
            levels(2, 0, 0, 2, 3, 0),
        ),
        (
            "/returns",
            json!({"sku": "SKU-A", "location": "S1", "qty": 1, "rmaId": "RMA-1", "key": "RMA-1/U1"}),
            levels(8, 0, 0, 8, 0, 0),
        ),
        (
            "/non-sellable",
            json!({"sku": "SKU-A", "location": "S1", "qty": 3, "reason": "QUARANTINE"}),
            levels(5, 0, 0, 5, 0, 3),
        ),
        (
            "/sellable",
            json!({"sku": "SKU-A", "location": "S1", "qty": 1}),
            levels(6, 0, 0, 6, 0, 2),
        ),
        (
            "/safety-stock",
            json!({"sku": "SKU-A", "location": "S1", "qty": 2}),
            levels(6, 0, 2, 4, 0, 2),
        ),
    ];
    for (i, (path, body, expected)) in steps.into_iter().enumerate() {
        let reply = send(&app, post(path, &format!("move-{i}"), &body).to_request()).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(reply.json["levels"], expected, "{path}");
        assert_eq!(reply.json["sku"], body["sku"]);
        assert_eq!(reply.json["location"], body["location"]);
        assert!(reply.json["position"].is_string(), "{path}");
    }
    // A checkout's hold, then the WMS confirms the ship.
    env.service
        .stock
        .execute(
            "SKU-A",
            "S1",
            vec![StockCommand::Reserve {
                reservation_id: "order-1#0".into(),
                owner: "order-1".into(),
                qty: 3,
                expires_at: None,
            }],
            system(),
        )
        .await
        .unwrap();
    let body = json!({"sku": "SKU-A", "location": "S1", "reservationId": "order-1#0", "qty": 2});
    let reply = send(&app, post("/consumptions", "ship-1", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"], levels(4, 1, 2, 1, 0, 2));

    // Read your write through the view.
    let position = reply.json["position"].as_str().unwrap().to_string();
    let read = test::TestRequest::get()
        .uri(&url(&format!("/stock/S1/SKU-A?atLeast={position}")))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::WmsIntegration, WMS)),
        ));
    let reply = send(&app, read.to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"], levels(4, 1, 2, 1, 0, 2));
    let read = test::TestRequest::get()
        .uri(&url("/stock/S1/SKU-NONE"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::Admin, "root")),
        ));
    assert_problem(&send(&app, read.to_request()).await, 404, "NOT_FOUND");
    let read = test::TestRequest::get()
        .uri(&url("/stock/S1/SKU-A?atLeast=soon"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::Admin, "root")),
        ));
    let reply = send(&app, read.to_request()).await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "atLeast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_problems_and_append_nothing() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let ok = json!({"sku": "SKU-B", "location": "S1", "qty": 5});
    assert_eq!(
        send(&app, post("/receipts", "b-1", &ok).to_request())
            .await
            .status,
        200
    );
    let before = events(&env.store, "SKU-B", "S1").await.len();

    let reply = send(
        &app,
        post(
            "/receipts",
            "b-2",
            &json!({"sku": "SKU-B", "location": "S1", "qty": 0}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "qty");
    assert!(reply.json["detail"].as_str().unwrap().contains("qty"));
    let reply = send(
        &app,
        post("/transfers/out", "b-3", &json!({"sku": "SKU-B", "location": "S1", "qty": 50, "toLocation": "DC1", "transferId": "T"}))
            .to_request(),
    )
    .await;
    assert_problem(&reply, 409, "INSUFFICIENT_STOCK");
    let reply = send(
        &app,
        post(
            "/on-hand",
            "b-4",
            &json!({"sku": "SKU-B", "location": "S1", "expectedOnHand": 4, "newOnHand": 1}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 409, "CONFLICT");
    assert_eq!(reply.json["field"], "expectedOnHand");
    assert_eq!(
        events(&env.store, "SKU-B", "S1").await.len(),
        before,
        "nothing appended"
    );

    // Unknown location: 404 on `location`; unknown SKU for a movement that needs stock: 404.
    let reply = send(
        &app,
        post(
            "/receipts",
            "b-5",
            &json!({"sku": "SKU-B", "location": "NOWHERE", "qty": 1}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(reply.json["field"], "location");
    let reply = send(
        &app,
        post(
            "/adjustments",
            "b-6",
            &json!({"sku": "SKU-NEW", "location": "S1", "delta": 1, "reasonCode": "X"}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(reply.json["field"], "sku");

    // An inactive location takes no count.
    env.service
        .locations
        .execute(LocationCommand::Deactivate { code: "S1".into() }, system())
        .await
        .unwrap();
    let reply = send(
        &app,
        post(
            "/counts",
            "b-7",
            &json!({"sku": "SKU-B", "location": "S1", "counted": 3}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 409, "LOCATION_INACTIVE");
    assert_eq!(events(&env.store, "SKU-B", "S1").await.len(), before);

    // A refusal decided on the stock is an answer too: the key replays it.
    let again = send(
        &app,
        post("/transfers/out", "b-3", &json!({"sku": "SKU-B", "location": "S1", "qty": 50, "toLocation": "DC1", "transferId": "T"}))
            .to_request(),
    )
    .await;
    assert!(again.replayed);
    assert_problem(&again, 409, "INSUFFICIENT_STOCK");
    // One refused for its input is not recorded: the key is free for the corrected request.
    let again = send(
        &app,
        post(
            "/counts",
            "b-7",
            &json!({"sku": "SKU-B", "location": "S1", "counted": 3}),
        )
        .to_request(),
    )
    .await;
    assert!(!again.replayed);
    assert_problem(&again, 409, "LOCATION_INACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_key_and_json_are_checked_first() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body = json!({"sku": "SKU-C", "location": "S1", "qty": 1});
    let bearer = |role, subject| format!("Bearer {}", token(role, subject));

    let no_key = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, WMS)))
        .set_payload(body.to_string());
    assert_problem(
        &send(&app, no_key.to_request()).await,
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
    );
    for bad_key in ["has space", &"k".repeat(256)] {
        let req = post("/receipts", bad_key, &body);
        assert_problem(
            &send(&app, req.to_request()).await,
            400,
            "IDEMPOTENCY_KEY_REQUIRED",
        );
    }

    let customer = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Authorization", bearer(Role::Customer, "c-1")))
        .insert_header(("Idempotency-Key", "c-1"))
        .set_payload(body.to_string());
    assert_problem(&send(&app, customer.to_request()).await, 403, "FORBIDDEN");

    let anonymous = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Idempotency-Key", "a-1"))
        .set_payload(body.to_string());
    assert_problem(
        &send(&app, anonymous.to_request()).await,
        401,
        "UNAUTHENTICATED",
    );
    let forged = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Authorization", "Bearer not.a.token"))
        .insert_header(("Idempotency-Key", "a-2"))
        .set_payload(body.to_string());
    assert_problem(
        &send(&app, forged.to_request()).await,
        401,
        "UNAUTHENTICATED",
    );
    let read = test::TestRequest::get().uri(&url("/stock/S1/SKU-C"));
    assert_problem(&send(&app, read.to_request()).await, 401, "UNAUTHENTICATED");

    let malformed = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, WMS)))
        .insert_header(("Idempotency-Key", "m-1"))
        .set_payload("{\"sku\": \"SKU-C\", \"location\": ");
    assert_problem(
        &send(&app, malformed.to_request()).await,
        400,
        "INVALID_INPUT",
    );
    // A malformed request is not recorded: the same key works once the body is fixed.
    let fixed = send(&app, post("/receipts", "m-1", &body).to_request()).await;
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    assert!(!fixed.replayed);

    // ADMIN may use the API too.
    let admin = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header(("Authorization", bearer(Role::Admin, "root")))
        .insert_header(("Idempotency-Key", "adm-1"))
        .set_payload(body.to_string());
    assert_eq!(send(&app, admin.to_request()).await.status, 200);
    assert!(events(&env.store, "SKU-C", "S1").await.len() == 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_answers_the_same_and_applies_once() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body = json!({"sku": "SKU-D", "location": "S1", "qty": 4});
    let first = send(&app, post("/receipts", "d-1", &body).to_request()).await;
    assert_eq!(first.status, 200);
    assert!(!first.replayed);
    for _ in 0..3 {
        let again = send(&app, post("/receipts", "d-1", &body).to_request()).await;
        assert!(again.replayed);
        assert_eq!(again.status, 200);
        assert_eq!(again.content_type, "application/json");
        assert_eq!(again.body, first.body, "byte for byte");
    }
    assert_eq!(events(&env.store, "SKU-D", "S1").await.len(), 1);

    // Another caller's identical key is another request.
    let other = test::TestRequest::post()
        .uri(&url("/receipts"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::WmsIntegration, "wms-2")),
        ))
        .insert_header(("Idempotency-Key", "d-1"))
        .set_payload(body.to_string());
    let other = send(&app, other.to_request()).await;
    assert!(!other.replayed);
    assert_eq!(other.json["levels"]["onHand"], 8);

    // The same key with another body (or another route) is refused, and changes nothing.
    let changed = json!({"sku": "SKU-D", "location": "S1", "qty": 5});
    assert_problem(
        &send(&app, post("/receipts", "d-1", &changed).to_request()).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_problem(
        &send(&app, post("/sellable", "d-1", &body).to_request()).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(events(&env.store, "SKU-D", "S1").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_a_restart() {
    let env = env().await;
    let body = json!({"sku": "SKU-E", "location": "S1", "qty": 6});
    let first = {
        let app = app!(env.service, env.auth);
        send(&app, post("/receipts", "e-1", &body).to_request()).await
    };
    assert_eq!(first.status, 200);
    let Env {
        dir,
        store,
        service,
        auth,
    } = env;
    store.shutdown().await;
    drop(service);
    drop(store);

    let (store, service) = start(dir.path()).await;
    let app = app!(service, auth);
    let again = send(&app, post("/receipts", "e-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(
        events(&store, "SKU-E", "S1").await.len(),
        1,
        "no second receipt"
    );
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_movement_and_answer_is_recovered() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let crash = |key: &str, path: &str, body: &Value| {
        let request = idempotency::request_id(WMS, key);
        let started = idempotency::WmsRequestStarted {
            fingerprint: idempotency::fingerprint("POST", &url(path), body.to_string().as_bytes()),
            // A process that died.
            instance: Uuid::new_v4(),
            started_at: chrono::Utc::now(),
            method: "POST".into(),
            path: url(path),
        };
        let store = env.store.clone();
        async move {
            let event = idempotency::WMS
                .started_event(&started, Uuid::new_v4(), system())
                .unwrap();
            store
                .append(
                    &idempotency::request_stream(request),
                    ExpectedRevision::NoStream,
                    vec![event],
                )
                .await
                .unwrap();
            request
        }
    };
    // What the dead process did for line `index` before it died.
    let applied = |request: Uuid, index: usize, sku: &str, qty: i64| {
        let service = env.service.clone();
        let sku = sku.to_string();
        async move {
            let metadata = Metadata {
                causation_id: Some(idempotency::line_causation_id(request, index)),
                ..system()
            };
            service
                .stock
                .execute(
                    &sku,
                    "S1",
                    vec![StockCommand::ReceiveGoods {
                        qty,
                        reference: None,
                    }],
                    metadata,
                )
                .await
                .unwrap();
        }
    };

    // A single receipt that landed but was never answered.
    let body = json!({"sku": "SKU-F", "location": "S1", "qty": 5});
    let request = crash("f-1", "/receipts", &body).await;
    applied(request, 0, "SKU-F", 5).await;
    let reply = send(&app, post("/receipts", "f-1", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.replayed, "the first answer actually given");
    assert_eq!(reply.json["levels"]["onHand"], 5, "not applied twice");
    assert_eq!(events(&env.store, "SKU-F", "S1").await.len(), 1);
    let again = send(&app, post("/receipts", "f-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!(again.body, reply.body);

    // A receipt that never landed is executed on recovery.
    let body = json!({"sku": "SKU-G", "location": "S1", "qty": 2});
    crash("g-1", "/receipts", &body).await;
    let reply = send(&app, post("/receipts", "g-1", &body).to_request()).await;
    assert_eq!(reply.json["levels"]["onHand"], 2);
    assert_eq!(events(&env.store, "SKU-G", "S1").await.len(), 1);

    // A bulk that died halfway: lines 0 and 2 landed, line 1 did not, line 3 is refused.
    let body = json!({"lines": [
        {"type": "RECEIPT", "sku": "SKU-H", "location": "S1", "qty": 5},
        {"type": "RECEIPT", "sku": "SKU-I", "location": "S1", "qty": 3},
        {"type": "RECEIPT", "sku": "SKU-H", "location": "S1", "qty": 2},
        {"type": "RECEIPT", "sku": "SKU-H", "location": "S1", "qty": -1},
    ]});
    let request = crash("h-1", "/movements/bulk", &body).await;
    applied(request, 0, "SKU-H", 5).await;
    applied(request, 2, "SKU-H", 2).await;
    let reply = send(&app, post("/movements/bulk", "h-1", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let lines = reply.json["lines"].as_array().unwrap();
    assert_eq!(lines[0]["levels"]["onHand"], 5, "levels as of the line");
    assert_eq!(lines[1]["levels"]["onHand"], 3);
    assert_eq!(lines[2]["levels"]["onHand"], 7);
    assert_eq!(lines[3]["status"], "REJECTED");
    assert_eq!(
        (
            reply.json["accepted"].clone(),
            reply.json["rejected"].clone()
        ),
        (json!(3), json!(1))
    );
    assert_eq!(events(&env.store, "SKU-H", "S1").await.len(), 2);
    assert_eq!(events(&env.store, "SKU-I", "S1").await.len(), 1);

    // An abandoned claim for another body: the key is taken.
    crash(
        "j-1",
        "/receipts",
        &json!({"sku": "SKU-J", "location": "S1", "qty": 1}),
    )
    .await;
    let reply = send(
        &app,
        post(
            "/receipts",
            "j-1",
            &json!({"sku": "SKU-J", "location": "S1", "qty": 9}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 422, "IDEMPOTENCY_KEY_REUSED");
    assert!(events(&env.store, "SKU-J", "S1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_ten_thousand_lines_reports_each_line() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let locations = ["S1", "DC1"];
    let mut lines = Vec::new();
    let mut expected: HashMap<(String, &str), i64> = HashMap::new();
    let mut bad = Vec::new();
    for i in 0..10_000usize {
        let sku = format!("SKU-{:03}", i % 100);
        let location = locations[(i / 100) % 2];
        let qty = (i % 7) as i64 + 1;
        let line = if i % 97 == 13 {
            bad.push((i, "INVALID_INPUT"));
            json!({"type": "RECEIPT", "sku": sku, "location": location, "qty": 0})
        } else if i % 211 == 5 {
            bad.push((i, "NOT_FOUND"));
            json!({"type": "RECEIPT", "sku": sku, "location": "NOWHERE", "qty": qty})
        } else if i == 4_321 {
            bad.push((i, "INVALID_INPUT"));
            json!({"type": "TELEPORT", "sku": sku, "location": location})
        } else {
            *expected.entry((sku.clone(), location)).or_default() += qty;
            json!({"type": "RECEIPT", "sku": sku, "location": location, "qty": qty})
        };
        lines.push(line);
    }
    // Lines of one stream are decided in request order: this ships out all that the receipts
    // before it brought in, which only works if they all came first.
    let total = expected[&("SKU-000".to_string(), "S1")];
    lines.push(
        json!({"type": "TRANSFER_OUT", "sku": "SKU-000", "location": "S1", "qty": total,
        "toLocation": "DC1", "transferId": "T-BULK"}),
    );
    expected.insert(("SKU-000".to_string(), "S1"), 0);

    let body = json!({ "lines": lines });
    let started = std::time::Instant::now();
    let reply = send(&app, post("/movements/bulk", "bulk-1", &body).to_request()).await;
    eprintln!("10,001-line bulk took {:?}", started.elapsed());
    assert_eq!(
        reply.status,
        200,
        "{}",
        &reply.body[..reply.body.len().min(500)]
    );
    let report = reply.json["lines"].as_array().unwrap();
    assert_eq!(report.len(), 10_001);
    for (i, line) in report.iter().enumerate() {
        assert_eq!(line["index"], i);
    }
    for (i, code) in &bad {
        assert_eq!(report[*i]["status"], "REJECTED", "line {i}");
        assert_eq!(report[*i]["error"]["code"], *code, "line {i}");
    }
    assert_eq!(report[13]["error"]["field"], "qty");
    assert_eq!(report[4_321]["error"]["field"], "type");
    assert_eq!(report[10_000]["status"], "ACCEPTED");
    assert_eq!(report[10_000]["levels"]["onHand"], 0);
    assert_eq!(reply.json["rejected"], bad.len());
    assert_eq!(reply.json["accepted"], 10_001 - bad.len());
    for ((sku, location), on_hand) in &expected {
        let item = env.service.stock.load(sku, location).await.unwrap();
        assert_eq!(item.on_hand, *on_hand, "{sku}@{location}");
    }

    // The whole report replays, and nothing is applied twice.
    let again = send(&app, post("/movements/bulk", "bulk-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!(again.body, reply.body);
    let item = env.service.stock.load("SKU-001", "S1").await.unwrap();
    assert_eq!(item.on_hand, expected[&("SKU-001".to_string(), "S1")]);

    // Beyond 20,000 lines the request is refused as a whole.
    let line = json!({"type": "SELLABLE", "sku": "X", "location": "S1", "qty": 1});
    let huge = json!({ "lines": vec![line; 20_001] });
    assert_problem(
        &send(&app, post("/movements/bulk", "bulk-2", &huge).to_request()).await,
        413,
        "TOO_MANY_LINES",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_execute_once() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    for round in 0..5 {
        let sku = format!("SKU-K{round}");
        let key = format!("k-{round}");
        let body = json!({"sku": sku, "location": "S1", "qty": 3});
        let replies = futures::future::join_all(
            (0..8).map(|_| send(&app, post("/receipts", &key, &body).to_request())),
        )
        .await;
        let fresh: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == 200 && !r.replayed)
            .collect();
        assert_eq!(fresh.len(), 1, "exactly one execution: {replies:?}");
        let busy = replies.iter().filter(|r| r.status == 409).count();
        eprintln!("round {round}: {busy} in progress, {} replayed", 7 - busy);
        for reply in &replies {
            match (reply.status, reply.replayed) {
                (200, true) => assert_eq!(reply.body, fresh[0].body),
                (200, false) => {}
                _ => assert_problem(reply, 409, "IDEMPOTENCY_IN_PROGRESS"),
            }
        }
        assert_eq!(events(&env.store, &sku, "S1").await.len(), 1);
        let last = send(&app, post("/receipts", &key, &body).to_request()).await;
        assert!(last.replayed);
        assert_eq!(last.body, fresh[0].body);
    }
}

/// A store in front of the embedded one that can fail the next stored answer, and that does
/// not call itself `embedded` (so claims of other processes are not taken over at once).
struct FlakyStore {
    inner: DynEventStore,
    fail_next_answer: AtomicBool,
}

#[async_trait::async_trait]
impl EventStore for FlakyStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events
            .iter()
            .any(|e| e.event_type == idempotency::COMPLETED)
            && self.fail_next_answer.swap(false, Ordering::SeqCst)
        {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, max_count).await
    }
    async fn read_all(
        &self,
        after: Option<Position>,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, max_count).await
    }
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: SubscriptionFilter,
    ) -> Result<Subscription, StoreError> {
        self.inner.subscribe(from, filter).await
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }
    async fn shutdown(&self) {
        self.inner.shutdown().await
    }
    fn backend_name(&self) -> &'static str {
        "flaky"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_stored_is_not_given_and_the_retry_recovers() {
    let env = env().await;
    let flaky = Arc::new(FlakyStore {
        inner: env.store.clone(),
        fail_next_answer: AtomicBool::new(true),
    });
    let store: DynEventStore = flaky.clone();
    let service = InventoryService::start(store.clone(), Arc::new(SystemClock));
    let app = app!(service, env.auth);
    let body = json!({"sku": "SKU-L", "location": "S1", "qty": 4});

    let failed = send(&app, post("/receipts", "l-1", &body).to_request()).await;
    assert_problem(&failed, 503, "INTERNAL");
    assert!(failed.json["correlationId"].is_string());
    assert_eq!(
        events(&store, "SKU-L", "S1").await.len(),
        1,
        "the receipt landed"
    );

    // This process's own unfinished claim is taken over at once, and the receipt is found.
    let retry = send(&app, post("/receipts", "l-1", &body).to_request()).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert!(!retry.replayed);
    assert_eq!(retry.json["levels"]["onHand"], 4);
    assert_eq!(events(&store, "SKU-L", "S1").await.len(), 1, "not twice");
    let replay = send(&app, post("/receipts", "l-1", &body).to_request()).await;
    assert!(replay.replayed);
    assert_eq!(replay.body, retry.body);

    // On a shared store, another process's fresh claim may still be running: hands off.
    let request = idempotency::request_id(WMS, "l-2");
    let started = idempotency::WmsRequestStarted {
        fingerprint: idempotency::fingerprint(
            "POST",
            &url("/receipts"),
            body.to_string().as_bytes(),
        ),
        instance: Uuid::new_v4(),
        started_at: chrono::Utc::now(),
        method: "POST".into(),
        path: url("/receipts"),
    };
    store
        .append(
            &idempotency::request_stream(request),
            ExpectedRevision::NoStream,
            vec![idempotency::WMS
                .started_event(&started, Uuid::new_v4(), system())
                .unwrap()],
        )
        .await
        .unwrap();
    assert_problem(
        &send(&app, post("/receipts", "l-2", &body).to_request()).await,
        409,
        "IDEMPOTENCY_IN_PROGRESS",
    );
    assert_eq!(events(&store, "SKU-L", "S1").await.len(), 1);
}

/// The store's head: embedded positions are gapless, so two heads tell how many events were
/// appended in between.
async fn head(store: &DynEventStore) -> Option<Position> {
    store.head().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_for_their_input_append_nothing_at_all() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let ok = json!({"sku": "SKU-R", "location": "S1", "qty": 5});
    assert_eq!(
        send(&app, post("/receipts", "r-0", &ok).to_request())
            .await
            .status,
        200
    );
    let before = head(&env.store).await;
    let refused: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/receipts",
            json!({"sku": "SKU-R", "location": "S1", "qty": 0}),
            422,
            "INVALID_INPUT",
            "qty",
        ),
        (
            "/receipts",
            json!({"sku": "SKU-R", "location": "S1", "qty": -1}),
            422,
            "INVALID_INPUT",
            "qty",
        ),
        (
            "/receipts",
            json!({"sku": "SKU-R", "location": "NOWHERE", "qty": 1}),
            404,
            "NOT_FOUND",
            "location",
        ),
        (
            "/receipts",
            json!({"sku": "SKU-R\n", "location": "S1", "qty": 1}),
            422,
            "INVALID_INPUT",
            "sku",
        ),
        (
            "/receipts",
            json!({"sku": "SKU-R", "location": "S1", "qty": 1, "reference": "ASN\n1"}),
            422,
            "INVALID_INPUT",
            "reference",
        ),
        (
            "/adjustments",
            json!({"sku": "SKU-R", "location": "S1", "delta": 1, "reasonCode": "x".repeat(65)}),
            422,
            "INVALID_INPUT",
            "reasonCode",
        ),
        (
            "/transfers/out",
            json!({"sku": "SKU-R", "location": "S1", "qty": 1, "toLocation": "NOWHERE", "transferId": "T-1"}),
            404,
            "NOT_FOUND",
            "toLocation",
        ),
        (
            "/counts",
            json!({"sku": "SKU-R", "location": "S1", "counted": -1}),
            422,
            "INVALID_INPUT",
            "counted",
        ),
    ];
    for (i, (path, body, status, code, field)) in refused.iter().enumerate() {
        let reply = send(&app, post(path, &format!("r-{}", i + 1), body).to_request()).await;
        assert_problem(&reply, *status, code);
        assert_eq!(reply.json["field"], *field, "{path} {body}");
    }
    // A bulk whose every line is refused for its input records nothing either.
    let bulk = json!({"lines": [
        {"type": "RECEIPT", "sku": "SKU-R", "location": "S1", "qty": 0},
        {"type": "RECEIPT", "sku": "SKU-R", "location": "NOWHERE", "qty": 1},
    ]});
    let reply = send(&app, post("/movements/bulk", "r-bulk", &bulk).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["rejected"], 2);
    assert_eq!(
        head(&env.store).await,
        before,
        "no WmsRequest events, no stock events"
    );
    // The keys are free: the corrected request under the same key goes through.
    let fixed = json!({"sku": "SKU-R", "location": "S1", "qty": 1});
    let reply = send(&app, post("/receipts", "r-1", &fixed).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_reference_in_a_bulk_line_is_that_lines_error() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    // 17 MiB: within the bulk body limit, far beyond any event the store takes.
    let huge = "x".repeat(17 * 1024 * 1024);
    let body = json!({"lines": [
        {"type": "RECEIPT", "sku": "SKU-L", "location": "S1", "qty": 1, "reference": huge},
        {"type": "RECEIPT", "sku": "SKU-L", "location": "S1", "qty": 2, "reference": "ASN-2"},
    ]});
    for attempt in 0..2 {
        let reply = send(&app, post("/movements/bulk", "long-1", &body).to_request()).await;
        assert_eq!(
            reply.status,
            200,
            "attempt {attempt}: {}",
            &reply.body[..200.min(reply.body.len())]
        );
        let line = &reply.json["lines"][0];
        assert_eq!(line["status"], "REJECTED");
        assert_eq!(line["error"]["code"], "INVALID_INPUT");
        assert_eq!(line["error"]["field"], "reference");
        assert_eq!(reply.json["lines"][1]["status"], "ACCEPTED");
        assert_eq!(reply.replayed, attempt == 1);
    }
    assert_eq!(events(&env.store, "SKU-L", "S1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_records_its_reference_document() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body =
        json!({"sku": "SKU-C", "location": "S1", "counted": 4, "reference": "COUNT-2026-12-04"});
    let reply = send(&app, post("/counts", "c-1", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = json!({"sku": "SKU-C", "location": "S1", "counted": 5});
    let reply = send(&app, post("/counts", "c-2", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stored = events(&env.store, "SKU-C", "S1").await;
    let data: Vec<Value> = stored
        .iter()
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect();
    assert_eq!(data[0]["reference"], "COUNT-2026-12-04");
    assert!(
        data[1].get("reference").is_none(),
        "absent, as in old counts"
    );
    // A count stored before counts had a reference still reads.
    let old = br#"{"counted":3,"delta":3,"shortfall":0}"#;
    let decoded = ichigen_inventory::domain::StockEvent::decode("CycleCounted.v1", old)
        .unwrap()
        .unwrap();
    assert!(matches!(
        decoded,
        ichigen_inventory::domain::StockEvent::CycleCounted(c) if c.reference.is_none()
    ));
}

/// GET the stock of `sku` at `location` (after `atLeast`, when given).
fn stock_req(location: &str, sku: &str, at_least: Option<&str>) -> test::TestRequest {
    let query = at_least.map_or(String::new(), |p| format!("?atLeast={p}"));
    test::TestRequest::get()
        .uri(&url(&format!("/stock/{location}/{sku}{query}")))
        .insert_header((
            "Authorization",
            format!("Bearer {}", token(Role::WmsIntegration, WMS)),
        ))
}

macro_rules! stock_of {
    ($app:expr, $location:expr, $sku:expr, $at_least:expr) => {
        send(&$app, stock_req($location, $sku, $at_least).to_request()).await
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_stock_once_from_out_to_in() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let receipt = json!({"sku": "SKU-T", "location": "S1", "qty": 10});
    assert_eq!(
        send(&app, post("/receipts", "t-0", &receipt).to_request())
            .await
            .status,
        200
    );
    let out = json!({"sku": "SKU-T", "location": "S1", "qty": 4, "toLocation": "DC1", "transferId": "TO-1"});
    let reply = send(&app, post("/transfers/out", "t-1", &out).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"]["onHand"], 6);
    // In transit at the destination right away.
    let dest = stock_of!(app, "DC1", "SKU-T", reply.json["position"].as_str());
    assert_eq!(
        dest.json["levels"],
        levels(0, 0, 0, 0, 4, 0),
        "{}",
        dest.body
    );

    // The same transfer id ships once.
    let again = json!({"sku": "SKU-T", "location": "S1", "qty": 3, "toLocation": "DC1", "transferId": "TO-1"});
    let reply = send(&app, post("/transfers/out", "t-2", &again).to_request()).await;
    assert_problem(&reply, 409, "CONFLICT");
    assert_eq!(reply.json["field"], "transferId");
    // To a location that does not exist, or to itself: refused, naming toLocation.
    for (key, to) in [("t-3", "NOWHERE"), ("t-4", "S1")] {
        let body = json!({"sku": "SKU-T", "location": "S1", "qty": 1, "toLocation": to, "transferId": format!("TO-{key}")});
        let reply = send(&app, post("/transfers/out", key, &body).to_request()).await;
        assert_problem(&reply, 404, "NOT_FOUND");
        assert_eq!(reply.json["field"], "toLocation");
    }
    // Never shipped: no stock from nothing.
    let never = json!({"sku": "SKU-T", "location": "DC1", "qty": 4, "transferId": "TO-NEVER"});
    let reply = send(&app, post("/transfers/in", "t-5", &never).to_request()).await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(reply.json["field"], "transferId");
    let never = json!({"sku": "SKU-NEW", "location": "DC1", "qty": 4, "transferId": "TO-NEVER"});
    let reply = send(&app, post("/transfers/in", "t-6", &never).to_request()).await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(stock_of!(app, "DC1", "SKU-NEW", None).status, 404);
    // More than shipped: refused.
    let more = json!({"sku": "SKU-T", "location": "DC1", "qty": 5, "transferId": "TO-1"});
    let reply = send(&app, post("/transfers/in", "t-7", &more).to_request()).await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "qty");
    // Received once.
    let inbound = json!({"sku": "SKU-T", "location": "DC1", "qty": 4, "transferId": "TO-1"});
    let reply = send(&app, post("/transfers/in", "t-8", &inbound).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"], levels(4, 0, 0, 4, 0, 0));
    let reply = send(&app, post("/transfers/in", "t-9", &inbound).to_request()).await;
    assert_problem(&reply, 409, "CONFLICT");
    assert_eq!(reply.json["field"], "transferId");

    // An announcement twice counts once, and is not receivable by itself.
    let announce = json!({"sku": "SKU-T", "location": "DC1", "qty": 2, "transferId": "TO-2", "fromLocation": "S1"});
    for key in ["t-10", "t-11"] {
        let reply = send(
            &app,
            post("/transfers/expected", key, &announce).to_request(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json["levels"]["incoming"], 2);
    }
    let early = json!({"sku": "SKU-T", "location": "DC1", "qty": 2, "transferId": "TO-2"});
    let reply = send(&app, post("/transfers/in", "t-12", &early).to_request()).await;
    assert_problem(&reply, 404, "NOT_FOUND");
    // Once shipped, it replaces the announcement: incoming still counts it once.
    let ship = json!({"sku": "SKU-T", "location": "S1", "qty": 2, "toLocation": "DC1", "transferId": "TO-2"});
    let reply = send(&app, post("/transfers/out", "t-13", &ship).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let dest = stock_of!(app, "DC1", "SKU-T", reply.json["position"].as_str());
    assert_eq!(
        dest.json["levels"],
        levels(4, 0, 0, 4, 2, 0),
        "{}",
        dest.body
    );
    let reply = send(&app, post("/transfers/in", "t-14", &early).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"], levels(6, 0, 0, 6, 0, 0));
    // A source that does not exist is refused for an announcement.
    let bad = json!({"sku": "SKU-T", "location": "DC1", "qty": 2, "transferId": "TO-3", "fromLocation": "NOWHERE"});
    let reply = send(&app, post("/transfers/expected", "t-15", &bad).to_request()).await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(reply.json["field"], "fromLocation");
    // Network stock: 10 received, and nothing created on the way.
    let s1 = stock_of!(app, "S1", "SKU-T", None);
    assert_eq!(s1.json["levels"]["onHand"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_an_inactive_location_is_refused() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let receipt = json!({"sku": "SKU-I", "location": "S1", "qty": 3});
    assert_eq!(
        send(&app, post("/receipts", "i-0", &receipt).to_request())
            .await
            .status,
        200
    );
    env.service
        .locations
        .execute(LocationCommand::Deactivate { code: "DC1".into() }, system())
        .await
        .unwrap();
    let out = json!({"sku": "SKU-I", "location": "S1", "qty": 1, "toLocation": "DC1", "transferId": "TI-1"});
    let reply = send(&app, post("/transfers/out", "i-1", &out).to_request()).await;
    assert_problem(&reply, 409, "LOCATION_INACTIVE");
    assert_eq!(reply.json["field"], "toLocation");
    assert_eq!(events(&env.store, "SKU-I", "S1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_transfer_ins_with_the_same_id_at_once_add_stock_once() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    for round in 0..5 {
        let sku = format!("SKU-C{round}");
        let receipt = json!({"sku": sku, "location": "S1", "qty": 5});
        assert_eq!(
            send(
                &app,
                post("/receipts", &format!("c{round}-0"), &receipt).to_request()
            )
            .await
            .status,
            200
        );
        let out = json!({"sku": sku, "location": "S1", "qty": 5, "toLocation": "DC1", "transferId": "TC"});
        assert_eq!(
            send(
                &app,
                post("/transfers/out", &format!("c{round}-1"), &out).to_request()
            )
            .await
            .status,
            200
        );
        let inbound = json!({"sku": sku, "location": "DC1", "qty": 5, "transferId": "TC"});
        let (a, b) = futures::join!(
            send(
                &app,
                post("/transfers/in", &format!("c{round}-a"), &inbound).to_request()
            ),
            send(
                &app,
                post("/transfers/in", &format!("c{round}-b"), &inbound).to_request()
            ),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
        let received = events(&env.store, &sku, "DC1")
            .await
            .iter()
            .filter(|e| &*e.event_type == "TransferReceived.v1")
            .count();
        assert_eq!(received, 1);
        let dest = stock_of!(app, "DC1", &sku, None);
        assert_eq!(dest.json["levels"]["onHand"], 5, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_cut_off_before_its_destination_is_recorded_by_the_transfer_process() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let receipt = json!({"sku": "SKU-P", "location": "S1", "qty": 5});
    assert_eq!(
        send(&app, post("/receipts", "p-0", &receipt).to_request())
            .await
            .status,
        200
    );
    // The source's half landed; the process crashed before the destination's half.
    let shipped = ichigen_inventory::domain::StockEvent::TransferShipped(
        ichigen_inventory::domain::stock::TransferShipped {
            qty: 3,
            to_location: "DC1".into(),
            transfer_id: "TP-1".into(),
        },
    );
    env.store
        .append(
            &stream_name("SKU-P", "S1"),
            ExpectedRevision::Exact(0),
            vec![NewEvent {
                id: Uuid::new_v4(),
                event_type: shipped.event_type().into(),
                data: shipped.payload_json().unwrap(),
                metadata: system(),
            }],
        )
        .await
        .unwrap();
    // The inventory service's own transfer process records it in transit at DC1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let dest = stock_of!(app, "DC1", "SKU-P", None);
        if dest.status == 200 && dest.json["levels"]["incoming"] == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never in transit: {}",
            dest.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let inbound = json!({"sku": "SKU-P", "location": "DC1", "qty": 3, "transferId": "TP-1"});
    let reply = send(&app, post("/transfers/in", "p-1", &inbound).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["levels"], levels(3, 0, 0, 3, 0, 0));
    let in_transit = events(&env.store, "SKU-P", "DC1")
        .await
        .iter()
        .filter(|e| &*e.event_type == "TransferInTransit.v1")
        .count();
    assert_eq!(in_transit, 1);
}

/// A WMS that got a location's id from GraphQL may use it wherever the API takes a location
/// code: the same stock moves as with the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_may_be_named_by_their_graphql_id() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let s1 = ichigen_shared::graphql::conventions::encode_id("Location", "S1").to_string();
    let dc1 = ichigen_shared::graphql::conventions::encode_id("Location", "DC1").to_string();
    let r = send(
        &app,
        post(
            "/receipts",
            "id-1",
            &json!({ "sku": "SKU-ID", "location": dc1, "qty": 5 }),
        )
        .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["location"], "DC1", "{}", r.body);
    let r = send(
        &app,
        post(
            "/transfers/out",
            "id-2",
            &json!({ "sku": "SKU-ID", "location": "DC1", "qty": 2, "transferId": "T-ID",
                     "toLocation": s1 }),
        )
        .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        events(&env.store, "SKU-ID", "S1").await.len(),
        1,
        "in transit at S1"
    );
    let position = r.json["position"].as_str().unwrap().to_string();
    let shown = send(
        &app,
        test::TestRequest::get()
            .uri(&url(&format!("/stock/{dc1}/SKU-ID?atLeast={position}")))
            .insert_header((
                "Authorization",
                format!("Bearer {}", token(Role::WmsIntegration, WMS)),
            ))
            .to_request(),
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.json["levels"]["onHand"], 3, "{}", shown.body);
}
