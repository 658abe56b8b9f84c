//! The PIM catalog API over the real embedded store: upserts read back, no-op re-sends,
//! problem bodies, credentials, and the idempotency guarantees — replay, reuse, restart, crash
//! recovery, a 10,000-item bulk and concurrent retries.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use actix_web::{test, web, App};
use ichigen_order::api::{self, pim};
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{stream_name, CatalogCommand, ItemSpec};
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::{Metadata, RecordedEvent};
use ichigen_shared::http::idempotency::{fingerprint, request_id, RequestStarted};
use ichigen_shared::http::testing::{assert_problem, send, Reply};
use ichigen_shared::money::Money;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore, ExpectedRevision};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

const SECRET: &str = "pim-api-test-secret-that-is-long-enough";
const PIM: &str = "pim-1";

struct Env {
    dir: tempfile::TempDir,
    store: DynEventStore,
    service: CatalogService,
    auth: Arc<JwtAuth>,
}

async fn start(dir: &Path) -> (DynEventStore, CatalogService) {
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let service = CatalogService::start(store.clone(), Arc::new(SystemClock));
    (store, service)
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (store, service) = start(dir.path()).await;
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

fn bearer(role: Role, subject: &str) -> String {
    let token = JwtAuth::new(SECRET)
        .mint(role, subject, None, chrono::Duration::hours(1))
        .unwrap();
    format!("Bearer {token}")
}

fn url(path: &str) -> String {
    format!("/api/order/v1/catalog{path}")
}

fn item(title: &str, amount: &str) -> Value {
    json!({"title": title, "price": {"amount": amount, "currency": "JPY"},
           "attributes": {"color": "red"}})
}

/// A PUT of `sku` with the PIM token and `key`.
fn put(sku: &str, key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::put()
        .uri(&url(&format!("/items/{sku}")))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, PIM)))
        .insert_header(("Idempotency-Key", key))
        .set_payload(body.to_string())
}

fn bulk(key: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&url("/items/bulk"))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, PIM)))
        .insert_header(("Idempotency-Key", key))
        .set_payload(body.to_string())
}

fn get(sku: &str, at_least: Option<&str>) -> test::TestRequest {
    let query = at_least
        .map(|p| format!("?atLeast={p}"))
        .unwrap_or_default();
    test::TestRequest::get()
        .uri(&url(&format!("/items/{sku}{query}")))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, PIM)))
}

async fn events(store: &DynEventStore, sku: &str) -> Vec<RecordedEvent> {
    read_whole_stream(store.as_ref(), &stream_name(sku))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_reads_back_and_the_same_content_again_changes_nothing() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let first = send(&app, put("TEE-1", "t-1", &item("Tee", "1990")).to_request()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(
        first.json["item"],
        json!({"sku": "TEE-1", "title": "Tee", "price": {"amount": "1990", "currency": "JPY"},
               "attributes": {"color": "red"}, "active": true})
    );
    let position = first.json["position"].as_str().unwrap().to_string();

    let read = send(&app, get("TEE-1", Some(&position)).to_request()).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json, first.json["item"]);
    assert_eq!(env.service.view.len(), 1);

    // The same content under a new key: accepted, nothing appended, no position.
    let again = send(&app, put("TEE-1", "t-2", &item("Tee", "1990")).to_request()).await;
    assert_eq!(again.status, 200);
    assert!(!again.replayed);
    assert_eq!(again.json["position"], Value::Null);
    assert_eq!(again.json["item"], first.json["item"]);
    assert_eq!(events(&env.store, "TEE-1").await.len(), 1);

    // A new price records only the price; the read sees it.
    let repriced = send(&app, put("TEE-1", "t-3", &item("Tee", "2490")).to_request()).await;
    let position = repriced.json["position"].as_str().unwrap().to_string();
    let stored = events(&env.store, "TEE-1").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(&*stored[1].event_type, "CatalogItemChanged.v1");
    let change: Value = serde_json::from_slice(&stored[1].data).unwrap();
    assert_eq!(
        change,
        json!({"sku": "TEE-1", "price": {"amount": "2490", "currency": "JPY"}})
    );
    assert_eq!(stored[1].metadata.actor.subject, PIM);
    let read = send(&app, get("TEE-1", Some(&position)).to_request()).await;
    assert_eq!(read.json["price"]["amount"], "2490");

    // Omitted attributes mean none (absolute), `active: false` deactivates.
    let off = json!({"title": "Tee", "price": {"amount": "2490", "currency": "JPY"},
                     "active": false});
    let reply = send(&app, put("TEE-1", "t-4", &off).to_request()).await;
    assert_eq!(reply.json["item"]["attributes"], json!({}));
    assert_eq!(reply.json["item"]["active"], false);
    let types: Vec<String> = events(&env.store, "TEE-1")
        .await
        .iter()
        .map(|e| e.event_type.to_string())
        .collect();
    assert_eq!(
        &types[2..],
        ["CatalogItemChanged.v1", "CatalogItemDeactivated.v1"]
    );

    assert_problem(
        &send(&app, get("NOPE", None).to_request()).await,
        404,
        "NOT_FOUND",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_problems_with_their_field_and_append_nothing() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let cases = [
        ("BAD-1", item("  ", "100"), 422, "title"),
        ("BAD-2", item(&"x".repeat(201), "100"), 422, "title"),
        ("BAD-3", item("Tee", "-1"), 422, "price"),
        ("BAD@4", item("Tee", "100"), 422, "sku"),
        (
            "BAD-5",
            json!({"price": {"amount": "1", "currency": "JPY"}}),
            400,
            "title",
        ),
        ("BAD-6", json!({"title": "Tee"}), 400, "price"),
    ];
    for (i, (sku, body, status, field)) in cases.iter().enumerate() {
        let reply = send(&app, put(sku, &format!("bad-{i}"), body).to_request()).await;
        assert_problem(&reply, *status, "INVALID_INPUT");
        assert_eq!(reply.json["field"], *field, "{sku}: {}", reply.body);
        assert!(events(&env.store, sku).await.is_empty(), "{sku}");
    }
    // A bad currency or a number for an amount is malformed JSON for a Money.
    let reply = send(
        &app,
        put(
            "BAD-7",
            "bad-7",
            &json!({"title": "T", "price": {"amount": 1, "currency": "JPY"}}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 400, "INVALID_INPUT");
    let reply = send(
        &app,
        put(
            "BAD-8",
            "bad-8",
            &json!({"title": "T", "price": {"amount": "1", "currency": "yen"}}),
        )
        .to_request(),
    )
    .await;
    assert_problem(&reply, 400, "INVALID_INPUT");
    assert_eq!(env.service.view.len(), 0);

    // A refused request is recorded (its answer replays); a malformed one is not, so the key
    // works once the body is fixed.
    let refused = send(&app, put("BAD-1", "bad-0", &item("  ", "100")).to_request()).await;
    assert!(refused.replayed);
    let fixed = send(&app, put("BAD-5", "bad-4", &item("Tee", "1")).to_request()).await;
    assert_eq!(fixed.status, 200, "{}", fixed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_key_are_checked_first() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body = item("Tee", "100");
    let anonymous = test::TestRequest::put()
        .uri(&url("/items/C-1"))
        .insert_header(("Idempotency-Key", "c-1"))
        .set_payload(body.to_string());
    assert_problem(
        &send(&app, anonymous.to_request()).await,
        401,
        "UNAUTHENTICATED",
    );
    let customer = test::TestRequest::put()
        .uri(&url("/items/C-1"))
        .insert_header(("Authorization", bearer(Role::Customer, "c-1")))
        .insert_header(("Idempotency-Key", "c-1"))
        .set_payload(body.to_string());
    assert_problem(&send(&app, customer.to_request()).await, 403, "FORBIDDEN");
    let read = test::TestRequest::get()
        .uri(&url("/items/C-1"))
        .insert_header(("Authorization", bearer(Role::Customer, "c-1")));
    assert_problem(&send(&app, read.to_request()).await, 403, "FORBIDDEN");
    let no_key = test::TestRequest::put()
        .uri(&url("/items/C-1"))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, PIM)))
        .set_payload(body.to_string());
    assert_problem(
        &send(&app, no_key.to_request()).await,
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
    );
    assert!(events(&env.store, "C-1").await.is_empty());

    let admin = test::TestRequest::put()
        .uri(&url("/items/C-1"))
        .insert_header(("Authorization", bearer(Role::Admin, "root")))
        .insert_header(("Idempotency-Key", "adm-1"))
        .set_payload(body.to_string());
    assert_eq!(send(&app, admin.to_request()).await.status, 200);
    assert_eq!(events(&env.store, "C-1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_answers_the_same_and_applies_once() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body = item("Mug", "800");
    let first = send(&app, put("MUG-1", "m-1", &body).to_request()).await;
    assert_eq!(first.status, 200);
    assert!(!first.replayed);
    // Another write in between: a replay still answers the first answer, byte for byte.
    send(&app, put("MUG-1", "m-2", &item("Mug", "900")).to_request()).await;
    for _ in 0..3 {
        let again = send(&app, put("MUG-1", "m-1", &body).to_request()).await;
        assert!(again.replayed);
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body, "byte for byte");
    }
    assert_eq!(
        events(&env.store, "MUG-1").await.len(),
        2,
        "price not set back"
    );

    // The key with another body, or another route, is refused and changes nothing.
    assert_problem(
        &send(&app, put("MUG-1", "m-1", &item("Mug", "700")).to_request()).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_problem(
        &send(&app, put("MUG-2", "m-1", &body).to_request()).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(events(&env.store, "MUG-1").await.len(), 2);
    assert!(events(&env.store, "MUG-2").await.is_empty());

    // Another caller's identical key is another request.
    let other = test::TestRequest::put()
        .uri(&url("/items/MUG-1"))
        .insert_header(("Authorization", bearer(Role::WmsIntegration, "pim-2")))
        .insert_header(("Idempotency-Key", "m-1"))
        .set_payload(body.to_string());
    let other = send(&app, other.to_request()).await;
    assert!(!other.replayed);
    assert_eq!(other.json["item"]["price"]["amount"], "800");
    assert_eq!(events(&env.store, "MUG-1").await.len(), 3);
    let keys = read_whole_stream(
        env.store.as_ref(),
        &pim::PIM.request_stream(request_id(PIM, "m-1")),
    )
    .await
    .unwrap();
    assert_eq!(&*keys[0].event_type, "PimRequestStarted.v1");
    assert!(keys[0].stream.starts_with("pimrequest-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_a_restart() {
    let env = env().await;
    let body = item("Cap", "1500");
    let first = {
        let app = app!(env.service, env.auth);
        send(&app, put("CAP-1", "r-1", &body).to_request()).await
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
    let again = send(&app, put("CAP-1", "r-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(events(&store, "CAP-1").await.len(), 1);
    // The view rebuilt from the store.
    service.view_handle.wait_caught_up().await.unwrap();
    assert_eq!(service.view.get("CAP-1").unwrap().title, "Cap");
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_upsert_and_answer_is_recovered() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let body = json!({"items": [
        {"sku": "REC-1", "title": "One", "price": {"amount": "1", "currency": "JPY"}},
        {"sku": "REC-2", "title": "Two", "price": {"amount": "2", "currency": "JPY"}},
        {"sku": "REC-1", "title": "One v2", "price": {"amount": "1", "currency": "JPY"}},
    ]});
    // A process claimed the key, applied lines 0 and 2, and died before answering.
    let request = request_id(PIM, "rec-1");
    let started = RequestStarted {
        fingerprint: fingerprint("POST", &url("/items/bulk"), body.to_string().as_bytes()),
        instance: Uuid::new_v4(),
        started_at: chrono::Utc::now(),
        method: "POST".into(),
        path: url("/items/bulk"),
    };
    let claim = pim::PIM
        .started_event(&started, Uuid::new_v4(), Metadata::new(Actor::system("t")))
        .unwrap();
    env.store
        .append(
            &pim::PIM.request_stream(request),
            ExpectedRevision::NoStream,
            vec![claim],
        )
        .await
        .unwrap();
    for (index, title) in [(0, "One"), (2, "One v2")] {
        let metadata = Metadata {
            causation_id: Some(pim::PIM.line_causation_id(request, index)),
            ..Metadata::new(Actor::system("t"))
        };
        let spec = ItemSpec {
            title: title.into(),
            price: Money::parse("1", "JPY").unwrap(),
            attributes: Default::default(),
            active: true,
        };
        env.service
            .handlers
            .execute("REC-1", CatalogCommand::Upsert(spec), metadata)
            .await
            .unwrap();
    }

    let reply = send(&app, bulk("rec-1", &body).to_request()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.replayed, "the first answer actually given");
    let lines = reply.json["lines"].as_array().unwrap();
    assert_eq!(lines[0]["item"]["title"], "One", "the item as of that line");
    assert_eq!(lines[1]["item"]["title"], "Two");
    assert_eq!(lines[2]["item"]["title"], "One v2");
    assert_eq!(reply.json["accepted"], 3);
    assert_eq!(
        events(&env.store, "REC-1").await.len(),
        2,
        "not applied twice"
    );
    assert_eq!(events(&env.store, "REC-2").await.len(), 1);
    let again = send(&app, bulk("rec-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!(again.body, reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_ten_thousand_items_reports_each_line() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    let mut items = Vec::new();
    let mut bad = Vec::new();
    for i in 0..10_000usize {
        let sku = format!("SKU-{i:05}");
        let amount = format!("{}", 100 + i);
        let entry = if i % 997 == 13 {
            bad.push((i, "title"));
            json!({"sku": sku, "title": "", "price": {"amount": amount, "currency": "JPY"}})
        } else if i % 1201 == 7 {
            bad.push((i, "price"));
            json!({"sku": sku, "title": "T", "price": {"amount": "-5", "currency": "JPY"}})
        } else if i == 4_321 {
            bad.push((i, "sku"));
            json!({"sku": "BAD SKU", "title": "T", "price": {"amount": "1", "currency": "JPY"}})
        } else if i == 5_000 {
            bad.push((i, "price"));
            json!({"sku": sku, "title": "T"})
        } else {
            json!({"sku": sku, "title": format!("Item {i}"),
                   "price": {"amount": amount, "currency": "JPY"},
                   "attributes": {"n": i.to_string()}})
        };
        items.push(entry);
    }
    // Items of one SKU run in request order: the last one wins.
    items.push(json!({"sku": "SKU-00000", "title": "Last word",
                      "price": {"amount": "1", "currency": "JPY"}}));
    let body = json!({ "items": items });
    let started = std::time::Instant::now();
    let reply = send(&app, bulk("bulk-1", &body).to_request()).await;
    eprintln!("10,001-item bulk took {:?}", started.elapsed());
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
    for (i, field) in &bad {
        assert_eq!(report[*i]["status"], "REJECTED", "line {i}");
        assert_eq!(report[*i]["error"]["code"], "INVALID_INPUT", "line {i}");
        assert_eq!(report[*i]["error"]["field"], *field, "line {i}");
        assert!(report[*i].get("item").is_none());
    }
    assert_eq!(report[1]["status"], "ACCEPTED");
    assert_eq!(report[1]["item"]["title"], "Item 1");
    assert_eq!(report[10_000]["item"]["title"], "Last word");
    assert_eq!(reply.json["rejected"], bad.len());
    assert_eq!(reply.json["accepted"], 10_001 - bad.len());

    let position = reply.json["position"].as_str().unwrap().parse().unwrap();
    env.service.wait_for(Some(position)).await.unwrap();
    // Every bad line leaves its SKU undefined (line 4,321 names another, malformed SKU).
    assert_eq!(env.service.view.len(), 10_000 - bad.len());
    assert_eq!(
        env.service.view.get("SKU-00000").unwrap().title,
        "Last word"
    );
    let (page, more) = env.service.view.list(Some("SKU-00001"), 2);
    assert_eq!(page[0].sku, "SKU-00002");
    assert!(more);

    // The whole report replays, and nothing is applied twice.
    let again = send(&app, bulk("bulk-1", &body).to_request()).await;
    assert!(again.replayed);
    assert_eq!(again.body, reply.body);
    assert_eq!(events(&env.store, "SKU-00000").await.len(), 2);

    // Beyond 20,000 items the request is refused as a whole.
    let entry = json!({"sku": "X", "title": "T", "price": {"amount": "1", "currency": "JPY"}});
    let huge = json!({ "items": vec![entry; 20_001] });
    assert_problem(
        &send(&app, bulk("bulk-2", &huge).to_request()).await,
        413,
        "TOO_MANY_LINES",
    );
    assert!(events(&env.store, "X").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_execute_once() {
    let env = env().await;
    let app = app!(env.service, env.auth);
    for round in 0..5 {
        let sku = format!("CON-{round}");
        let key = format!("k-{round}");
        let body = item("Tee", &format!("{}", 1000 + round));
        let replies = futures::future::join_all(
            (0..8).map(|_| send(&app, put(&sku, &key, &body).to_request())),
        )
        .await;
        let fresh: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == 200 && !r.replayed)
            .collect();
        assert_eq!(fresh.len(), 1, "exactly one execution: {replies:?}");
        for reply in &replies {
            match (reply.status, reply.replayed) {
                (200, true) => assert_eq!(reply.body, fresh[0].body),
                (200, false) => {}
                _ => assert_problem(reply, 409, "IDEMPOTENCY_IN_PROGRESS"),
            }
        }
        assert_eq!(events(&env.store, &sku).await.len(), 1);
        let keys = read_whole_stream(
            env.store.as_ref(),
            &pim::PIM.request_stream(request_id(PIM, &key)),
        )
        .await
        .unwrap();
        assert_eq!(keys.len(), 2, "one claim, one answer");
    }
}
