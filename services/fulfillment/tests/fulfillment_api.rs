//! The WMS fulfillment API over the real embedded store: the DC steps and the task list, the
//! idempotency guarantees, problem bodies for bad inputs, and credentials.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use actix_web::{test, web, App};
use ichigen_fulfillment::api;
use ichigen_fulfillment::domain::{
    stream_name, FulfillmentCommand, FulfillmentKind, FulfillmentLine,
};
use ichigen_fulfillment::FulfillmentService;
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::{Metadata, RecordedEvent};
use ichigen_shared::http::idempotency::{fingerprint, request_id, RequestStarted};
use ichigen_shared::http::testing::{assert_problem, send};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore, ExpectedRevision};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

const SECRET: &str = "wms-fulfillment-api-test-secret-long-enough";
const WMS: &str = "wms-1";
const DC: &str = "TKY-DC1";

struct Env {
    _dir: tempfile::TempDir,
    store: DynEventStore,
    service: FulfillmentService,
    auth: Arc<JwtAuth>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let service = FulfillmentService::start(store.clone(), Arc::new(SystemClock));
    Env {
        _dir: dir,
        store,
        service,
        auth: Arc::new(JwtAuth::new(SECRET)),
    }
}

macro_rules! app {
    ($env:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($env.service.clone()))
                .app_data(web::Data::new($env.auth.clone()))
                .configure(api::configure),
        )
        .await
    };
}

fn line(line_id: &str, sku: &str, qty: i64) -> FulfillmentLine {
    FulfillmentLine {
        line_id: line_id.into(),
        sku: sku.into(),
        qty,
        reservation_id: format!("res-{line_id}"),
        picked: 0,
        short: 0,
        cancelled: 0,
    }
}

/// Creates a fulfillment order directly (what the order intake does) and returns its id.
async fn create(env: &Env, location: &str, kind: FulfillmentKind) -> Uuid {
    let id = Uuid::new_v4();
    let destination = (kind == FulfillmentKind::ShipToStore).then(|| "STORE-A".to_string());
    let command = FulfillmentCommand::Create {
        fulfillment_id: id,
        order_id: Uuid::new_v4(),
        location: location.into(),
        kind,
        destination_store: destination,
        pickup_hold_days: 3,
        pickup_time_zone: None,
        lines: vec![line("l1", "TEE-1", 2), line("l2", "CAP-1", 1)],
    };
    let accepted = env
        .service
        .handlers
        .execute(id, command, Metadata::new(Actor::system("test")))
        .await
        .unwrap();
    env.service.wait_for(accepted.position).await.unwrap();
    id
}

fn bearer(role: Role, subject: &str, store: Option<&str>) -> String {
    let token = JwtAuth::new(SECRET)
        .mint(role, subject, store, chrono::Duration::hours(1))
        .unwrap();
    format!("Bearer {token}")
}

fn wms() -> String {
    bearer(Role::WmsIntegration, WMS, None)
}

fn post(id: &str, step: &str, key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/api/fulfillment/v1/fulfillments/{id}/{step}"))
        .insert_header(("Authorization", wms()))
        .insert_header(("Idempotency-Key", key))
        .set_payload(body.to_string())
}

fn tasks(location: &str, query: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(&format!("/api/fulfillment/v1/tasks/{location}{query}"))
        .insert_header(("Authorization", wms()))
}

fn full_pick() -> Value {
    json!({"lines": [{"lineId": "l1", "picked": 2, "short": 0},
                     {"lineId": "l2", "picked": 1, "short": 0}]})
}

async fn events(store: &DynEventStore, id: Uuid) -> Vec<RecordedEvent> {
    read_whole_stream(store.as_ref(), &stream_name(&id))
        .await
        .unwrap()
}

fn task_ids(reply: &Value) -> Vec<String> {
    reply["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc_steps_pick_pack_ship_deliver_and_the_task_list_follows() {
    let env = env().await;
    let app = app!(env);
    let id = create(&env, DC, FulfillmentKind::Ship).await;
    let listed = send(&app, tasks(DC, "").to_request()).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(task_ids(&listed.json), [id.to_string()]);
    let task = &listed.json["tasks"][0];
    assert_eq!(task["status"], "OPEN");
    assert_eq!(task["kind"], "SHIP");
    assert_eq!(task["location"], DC);
    assert!(task["createdAt"].is_string());
    assert_eq!(
        task["lines"][0],
        json!({"lineId": "l1", "sku": "TEE-1", "quantity": 2, "picked": 0, "short": 0,
               "cancelled": 0})
    );

    // One unit of l1 was not on the shelf: it leaves this fulfillment order.
    let short_pick = json!({"lines": [{"lineId": "l1", "picked": 1, "short": 1},
                                      {"lineId": "l2", "picked": 1, "short": 0}]});
    let picked = send(
        &app,
        post(&id.to_string(), "pick", "p-1", &short_pick).to_request(),
    )
    .await;
    assert_eq!(picked.status, 200, "{}", picked.body);
    assert_eq!(picked.content_type, "application/json");
    let f = &picked.json["fulfillment"];
    assert_eq!(f["id"], id.to_string());
    assert_eq!(f["status"], "PICKED");
    assert_eq!(
        (&f["lines"][0]["quantity"], &f["lines"][0]["short"]),
        (&json!(1), &json!(1))
    );
    assert!(picked.json["position"].is_string());

    let packed = send(
        &app,
        post(&id.to_string(), "pack", "p-2", &json!({"packages": 2})).to_request(),
    )
    .await;
    assert_eq!(
        packed.json["fulfillment"]["status"], "PACKED",
        "{}",
        packed.body
    );

    let ship = json!({"carrier": "YAMATO", "trackingNumber": "1234-5678"});
    let shipped = send(
        &app,
        post(&id.to_string(), "ship", "p-3", &ship).to_request(),
    )
    .await;
    assert_eq!(shipped.status, 200, "{}", shipped.body);
    let f = &shipped.json["fulfillment"];
    assert_eq!(
        (&f["status"], &f["carrier"], &f["trackingNumber"]),
        (&json!("SHIPPED"), &json!("YAMATO"), &json!("1234-5678"))
    );
    let position = shipped.json["position"].as_str().unwrap();

    // Shipped: no longer the DC's work.
    let listed = send(
        &app,
        tasks(DC, &format!("?atLeast={position}")).to_request(),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(task_ids(&listed.json).is_empty());

    // `deliver` takes `{}` or no body at all.
    let delivered = test::TestRequest::post()
        .uri(&format!("/api/fulfillment/v1/fulfillments/{id}/deliver"))
        .insert_header(("Authorization", wms()))
        .insert_header(("Idempotency-Key", "p-4"))
        .to_request();
    let delivered = send(&app, delivered).await;
    assert_eq!(delivered.status, 200, "{}", delivered.body);
    assert_eq!(delivered.json["fulfillment"]["status"], "DELIVERED");

    let stored = events(&env.store, id).await;
    let types: Vec<&str> = stored.iter().map(|e| &*e.event_type).collect();
    assert_eq!(
        types,
        [
            "FulfillmentCreated.v1",
            "FulfillmentLinesPicked.v1",
            "FulfillmentPacked.v1",
            "FulfillmentShipped.v1",
            "FulfillmentDelivered.v1"
        ]
    );
    // Who did it, and under which request (the causation id recovery looks for).
    assert_eq!(stored[1].metadata.actor.subject, WMS);
    assert_eq!(stored[1].metadata.actor.role, Role::WmsIntegration);
    assert!(stored[1].metadata.causation_id.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_step_replays_its_first_answer_and_changes_nothing_twice() {
    let env = env().await;
    let app = app!(env);
    let id = create(&env, DC, FulfillmentKind::Ship).await;
    let first = send(
        &app,
        post(&id.to_string(), "pick", "k-1", &full_pick()).to_request(),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(!first.replayed);

    let again = send(
        &app,
        post(&id.to_string(), "pick", "k-1", &full_pick()).to_request(),
    )
    .await;
    assert!(again.replayed);
    assert_eq!((again.status, &again.body), (200, &first.body));

    // The same key for another request.
    let other = json!({"packages": 1});
    let reused = send(
        &app,
        post(&id.to_string(), "pack", "k-1", &other).to_request(),
    )
    .await;
    assert_problem(&reused, 422, "IDEMPOTENCY_KEY_REUSED");

    // The same pick under a new key: accepted, nothing appended.
    let resent = send(
        &app,
        post(&id.to_string(), "pick", "k-2", &full_pick()).to_request(),
    )
    .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert!(!resent.replayed);
    assert_eq!(resent.json["position"], Value::Null);
    assert_eq!(resent.json["fulfillment"]["status"], "PICKED");
    assert_eq!(events(&env.store, id).await.len(), 2);

    // A refusal is an answer too: replayed as it was given.
    let early = json!({"carrier": "YAMATO", "trackingNumber": "1"});
    let refused = send(
        &app,
        post(&id.to_string(), "ship", "k-3", &early).to_request(),
    )
    .await;
    assert_problem(&refused, 409, "CONFLICT");
    let replayed = send(
        &app,
        post(&id.to_string(), "ship", "k-3", &early).to_request(),
    )
    .await;
    assert!(replayed.replayed);
    assert_eq!(replayed.body, refused.body);

    // Keys live in the fulfillment service's own key streams.
    let key_stream = ichigen_fulfillment::api::wms::KEYS
        .request_stream(ichigen_shared::http::idempotency::request_id(WMS, "k-1"));
    assert!(key_stream.starts_with("wmsfulfillment-"));
    let recorded = read_whole_stream(env.store.as_ref(), &key_stream)
        .await
        .unwrap();
    let types: Vec<&str> = recorded.iter().map(|e| &*e.event_type).collect();
    assert_eq!(
        types,
        [
            "WmsFulfillmentRequestStarted.v1",
            "WmsFulfillmentRequestCompleted.v1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_problems_with_their_field_and_append_nothing() {
    let env = env().await;
    let app = app!(env);
    let id = create(&env, DC, FulfillmentKind::Ship).await;
    let id_text = id.to_string();

    // picked + short must be the line's quantity.
    let mismatch = json!({"lines": [{"lineId": "l1", "picked": 1, "short": 0},
                                    {"lineId": "l2", "picked": 1, "short": 0}]});
    let reply = send(&app, post(&id_text, "pick", "b-1", &mismatch).to_request()).await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "lines");
    assert!(reply.json["detail"].as_str().unwrap().contains("l1"));

    // Every line must be reported; unknown lines are refused.
    let missing = json!({"lines": [{"lineId": "l1", "picked": 2, "short": 0}]});
    let reply = send(&app, post(&id_text, "pick", "b-2", &missing).to_request()).await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    let unknown = json!({"lines": [{"lineId": "l9", "picked": 1, "short": 0}]});
    let reply = send(&app, post(&id_text, "pick", "b-3", &unknown).to_request()).await;
    assert_eq!(reply.json["field"], "lines", "{}", reply.body);

    // The wrong status for the step.
    let reply = send(
        &app,
        post(&id_text, "pack", "b-4", &json!({"packages": 1})).to_request(),
    )
    .await;
    assert_problem(&reply, 409, "CONFLICT");
    let reply = send(
        &app,
        post(&id_text, "deliver", "b-5", &json!({})).to_request(),
    )
    .await;
    assert_problem(&reply, 409, "CONFLICT");

    // Unknown and malformed ids.
    let nobody = Uuid::new_v4().to_string();
    let reply = send(
        &app,
        post(&nobody, "pick", "b-6", &full_pick()).to_request(),
    )
    .await;
    assert_problem(&reply, 404, "NOT_FOUND");
    assert_eq!(reply.json["field"], "id");
    let reply = send(
        &app,
        post("not-a-uuid", "pick", "b-7", &full_pick()).to_request(),
    )
    .await;
    assert_problem(&reply, 404, "NOT_FOUND");

    // Malformed bodies name their field.
    let reply = send(&app, post(&id_text, "pack", "b-8", &json!({})).to_request()).await;
    assert_problem(&reply, 400, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "packages");
    let reply = send(
        &app,
        post(&id_text, "deliver", "b-9", &json!({"when": "now"})).to_request(),
    )
    .await;
    assert_problem(&reply, 400, "INVALID_INPUT");

    // No key: refused before anything runs.
    let no_key = test::TestRequest::post()
        .uri(&format!("/api/fulfillment/v1/fulfillments/{id}/pick"))
        .insert_header(("Authorization", wms()))
        .set_payload(full_pick().to_string())
        .to_request();
    assert_problem(&send(&app, no_key).await, 400, "IDEMPOTENCY_KEY_REQUIRED");

    assert_eq!(events(&env.store, id).await.len(), 1, "nothing appended");

    // Now picked: packages must be at least 1, and a BOPIS order is not packed at all.
    let ok = send(
        &app,
        post(&id_text, "pick", "b-10", &full_pick()).to_request(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let reply = send(
        &app,
        post(&id_text, "pack", "b-11", &json!({"packages": 0})).to_request(),
    )
    .await;
    assert_problem(&reply, 422, "INVALID_INPUT");
    assert_eq!(reply.json["field"], "packages");
    let reply = send(
        &app,
        post(
            &id_text,
            "ship",
            "b-12",
            &json!({"carrier": "", "trackingNumber": "1"}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 409, "CONFLICT");

    let bopis = create(&env, "STORE-A", FulfillmentKind::Pickup)
        .await
        .to_string();
    let ok = send(
        &app,
        post(&bopis, "pick", "b-13", &full_pick()).to_request(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let reply = send(
        &app,
        post(&bopis, "pack", "b-14", &json!({"packages": 1})).to_request(),
    )
    .await;
    assert_problem(&reply, 409, "CONFLICT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_integration_and_admin_credentials_are_accepted() {
    let env = env().await;
    let app = app!(env);
    let id = create(&env, DC, FulfillmentKind::Ship).await;
    let uri = format!("/api/fulfillment/v1/fulfillments/{id}/pick");
    let with = |auth: Option<String>, key: &str| {
        let mut req = test::TestRequest::post()
            .uri(&uri)
            .insert_header(("Idempotency-Key", key))
            .set_payload(full_pick().to_string());
        if let Some(auth) = auth {
            req = req.insert_header(("Authorization", auth));
        }
        req.to_request()
    };
    assert_problem(&send(&app, with(None, "c-1")).await, 401, "UNAUTHENTICATED");
    assert_problem(
        &send(&app, with(Some("Bearer not-a-token".into()), "c-2")).await,
        401,
        "UNAUTHENTICATED",
    );
    for (role, store) in [
        (Role::Customer, None),
        (Role::StoreStaff, Some("STORE-A")),
        (Role::CsAgent, None),
    ] {
        let reply = send(&app, with(Some(bearer(role, "someone", store)), "c-3")).await;
        assert_problem(&reply, 403, "FORBIDDEN");
        let get = test::TestRequest::get()
            .uri(&format!("/api/fulfillment/v1/tasks/{DC}"))
            .insert_header(("Authorization", bearer(role, "someone", store)))
            .to_request();
        assert_problem(&send(&app, get).await, 403, "FORBIDDEN");
    }
    let get = test::TestRequest::get()
        .uri(&format!("/api/fulfillment/v1/tasks/{DC}"))
        .to_request();
    assert_problem(&send(&app, get).await, 401, "UNAUTHENTICATED");
    assert_eq!(events(&env.store, id).await.len(), 1);

    let admin = send(&app, with(Some(bearer(Role::Admin, "root", None)), "c-4")).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    let stored = events(&env.store, id).await;
    assert_eq!(stored[1].metadata.actor.role, Role::Admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_list_pages_oldest_first_and_holds_only_outbound_work() {
    let env = env().await;
    let app = app!(env);
    let a = create(&env, DC, FulfillmentKind::Ship).await;
    let b = create(&env, DC, FulfillmentKind::ShipToStore).await;
    let c = create(&env, DC, FulfillmentKind::Ship).await;
    // Work elsewhere, and counter work, is not this DC's task list.
    create(&env, "OSA-DC2", FulfillmentKind::Ship).await;
    create(&env, DC, FulfillmentKind::Pickup).await;

    let first = send(&app, tasks(DC, "?first=2").to_request()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(task_ids(&first.json), [a.to_string(), b.to_string()]);
    assert_eq!(first.json["tasks"][1]["destinationStore"], "STORE-A");
    let cursor = first.json["nextCursor"].as_str().unwrap();
    let rest = send(
        &app,
        tasks(DC, &format!("?first=2&after={cursor}")).to_request(),
    )
    .await;
    assert_eq!(task_ids(&rest.json), [c.to_string()]);
    assert_eq!(rest.json["nextCursor"], Value::Null);

    let none = send(&app, tasks("NOWHERE", "").to_request()).await;
    assert_eq!(none.status, 200);
    assert!(task_ids(&none.json).is_empty());

    for (query, field) in [
        ("?first=0", "first"),
        ("?first=501", "first"),
        ("?first=x", "first"),
        ("?after=garbage", "after"),
        ("?atLeast=x", "atLeast"),
    ] {
        let reply = send(&app, tasks(DC, query).to_request()).await;
        assert_problem(&reply, 422, "INVALID_INPUT");
        assert_eq!(reply.json["field"], field, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_step_and_its_answer_is_recovered() {
    let env = env().await;
    let app = app!(env);
    let id = create(&env, DC, FulfillmentKind::Ship).await;
    let ok = send(
        &app,
        post(&id.to_string(), "pick", "r-0", &full_pick()).to_request(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // A process claimed key r-1 for the pack, packed, and died before storing the answer.
    let path = format!("/api/fulfillment/v1/fulfillments/{id}/pack");
    let body = json!({"packages": 3});
    let request = request_id(WMS, "r-1");
    let started = RequestStarted {
        fingerprint: fingerprint("POST", &path, body.to_string().as_bytes()),
        instance: Uuid::new_v4(),
        started_at: chrono::Utc::now(),
        method: "POST".into(),
        path: path.clone(),
    };
    let claim = api::wms::KEYS
        .started_event(&started, Uuid::new_v4(), Metadata::new(Actor::system("t")))
        .unwrap();
    env.store
        .append(
            &api::wms::KEYS.request_stream(request),
            ExpectedRevision::NoStream,
            vec![claim],
        )
        .await
        .unwrap();
    let metadata = Metadata {
        causation_id: Some(api::wms::KEYS.line_causation_id(request, 0)),
        ..Metadata::new(Actor::system("t"))
    };
    let packed = env
        .service
        .handlers
        .execute(id, FulfillmentCommand::Pack { packages: 3 }, metadata)
        .await
        .unwrap();
    // Meanwhile the parcel left (another request).
    let ship = json!({"carrier": "YAMATO", "trackingNumber": "9"});
    let shipped = send(
        &app,
        post(&id.to_string(), "ship", "r-2", &ship).to_request(),
    )
    .await;
    assert_eq!(shipped.status, 200, "{}", shipped.body);

    // The retry reports the pack as it happened, not a conflict with today's state.
    let retry = test::TestRequest::post()
        .uri(&path)
        .insert_header(("Authorization", wms()))
        .insert_header(("Idempotency-Key", "r-1"))
        .set_payload(body.to_string())
        .to_request();
    let reply = send(&app, retry).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.replayed, "the first answer actually given");
    assert_eq!(reply.json["fulfillment"]["status"], "PACKED");
    assert_eq!(
        reply.json["position"],
        packed.position.unwrap().to_string().as_str()
    );
    assert_eq!(events(&env.store, id).await.len(), 4, "not packed twice");
}
