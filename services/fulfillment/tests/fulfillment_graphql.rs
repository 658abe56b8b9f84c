//! The fulfillment GraphQL part through a schema of its own Query and Mutation over the real
//! embedded store: store staff work their own store's queues (and no other), BOPIS codes are
//! issued and checked, queues follow statuses, uncollected pickups expire.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use async_graphql::{EmptySubscription, Request, Schema, Variables};
use chrono::Utc;
use ichigen_fulfillment::domain::{FulfillmentCommand, FulfillmentKind, FulfillmentLine};
use ichigen_fulfillment::graphql::{FulfillmentMutation, FulfillmentQuery};
use ichigen_fulfillment::FulfillmentService;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::{Clock, ManualClock};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::graphql::conventions::encode_id;
use ichigen_shared::graphql::RequestContext;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, Position};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

type FulfillmentSchema = Schema<FulfillmentQuery, FulfillmentMutation, EmptySubscription>;

const STORE_A: &str = "STORE-A";
const STORE_B: &str = "STORE-B";

struct Env {
    _dir: tempfile::TempDir,
    service: FulfillmentService,
    clock: ManualClock,
    schema: FulfillmentSchema,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let service = FulfillmentService::start(store, Arc::new(clock.clone()));
    let schema = Schema::build(FulfillmentQuery, FulfillmentMutation, EmptySubscription)
        .data(service.clone())
        .finish();
    Env {
        _dir: dir,
        service,
        clock,
        schema,
    }
}

fn staff(store: &str) -> Actor {
    Actor {
        role: Role::StoreStaff,
        subject: format!("staff-{store}"),
        store_id: Some(store.into()),
    }
}

fn actor(role: Role) -> Actor {
    Actor {
        role,
        subject: format!("{role}-1"),
        store_id: None,
    }
}

fn location(code: &str) -> String {
    encode_id("Location", code).0
}

fn gid(id: Uuid) -> String {
    encode_id("FulfillmentOrder", &id.to_string()).0
}

/// Runs one operation as `actor`; returns `(data, errors)` as JSON.
async fn run(env: &Env, actor: &Actor, query: &str, variables: Value) -> (Value, Vec<Value>) {
    let request = Request::new(query)
        .variables(Variables::from_json(variables))
        .data(RequestContext {
            actor: actor.clone(),
            correlation_id: Uuid::new_v4(),
        });
    let response = env.schema.execute(request).await;
    let errors = response
        .errors
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    (response.data.into_json().unwrap(), errors)
}

/// The `extensions.code` of the only error.
fn only_code(errors: &[Value]) -> &str {
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0]["extensions"]["code"].as_str().unwrap()
}

async fn create(env: &Env, location: &str, kind: FulfillmentKind) -> Uuid {
    let id = Uuid::new_v4();
    let destination = (kind == FulfillmentKind::ShipToStore).then(|| STORE_A.to_string());
    let command = FulfillmentCommand::Create {
        fulfillment_id: id,
        order_id: Uuid::new_v4(),
        location: location.into(),
        kind,
        destination_store: destination,
        pickup_hold_days: 2,
        pickup_time_zone: None,
        lines: vec![FulfillmentLine {
            line_id: "l1".into(),
            sku: "TEE-1".into(),
            qty: 2,
            reservation_id: "res-1".into(),
            picked: 0,
            short: 0,
            cancelled: 0,
        }],
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

const FIELDS: &str = "fulfillmentOrder { id orderId locationId locationCode kind status
    destinationStoreCode lines { lineId sku quantity picked short cancelled } carrier
    trackingNumber pickupCode pickupExpiresAt createdAt } position errors { field code message }";

const PICK: &str = "mutation($id: ID!, $picked: Int!, $short: Int!) {
    pickFulfillment(input: {id: $id, lines: [{lineId: \"l1\", picked: $picked, short: $short}]})
    { FIELDS } }";
const PACK: &str =
    "mutation($id: ID!) { packFulfillment(input: {id: $id, packages: 1}) { FIELDS } }";
const SHIP: &str = "mutation($id: ID!) {
    shipFulfillment(input: {id: $id, carrier: \"SAGAWA\", trackingNumber: \"T-1\"}) { FIELDS } }";
const READY: &str = "mutation($id: ID!) { markReadyForPickup(input: {id: $id}) { FIELDS } }";
const HAND_OVER: &str = "mutation($id: ID!, $code: String!) {
    handOverPickup(input: {id: $id, pickupCode: $code}) { FIELDS } }";
const PICKUP_QUEUE: &str = "query($store: ID!, $atLeast: String) {
    pickupQueue(store: $store, atLeast: $atLeast) { edges { node { id status } } } }";
const SFS_TASKS: &str = "query($store: ID!, $atLeast: String, $first: Int, $after: String) {
    shipFromStoreTasks(store: $store, atLeast: $atLeast, first: $first, after: $after) {
    edges { cursor node { id status } } pageInfo { hasNextPage } } }";
const ONE: &str = "query($id: ID!) { fulfillmentOrder(id: $id) {
    id status pickupCode carrier } }";

fn q(template: &str) -> String {
    template.replace("FIELDS", FIELDS)
}

/// Runs a mutation as `actor` and returns its payload (no top-level errors expected).
async fn mutate(env: &Env, actor: &Actor, template: &str, name: &str, vars: Value) -> Value {
    let (data, errors) = run(env, actor, &q(template), vars).await;
    assert!(errors.is_empty(), "{errors:?}");
    data[name].clone()
}

fn position(payload: &Value) -> String {
    payload["position"].as_str().unwrap().to_string()
}

/// Ids of a queue's page, after waiting for `at_least`.
async fn queue(env: &Env, query: &str, name: &str, store: &str, at_least: &str) -> Vec<String> {
    let vars = json!({"store": location(store), "atLeast": at_least});
    let (data, errors) = run(env, &staff(store), query, vars).await;
    assert!(errors.is_empty(), "{errors:?}");
    data[name]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_staff_pick_pack_and_ship_at_their_store_and_the_task_leaves_the_queue() {
    let env = env().await;
    let id = create(&env, STORE_A, FulfillmentKind::Ship).await;
    let me = staff(STORE_A);
    let tasks = queue(&env, SFS_TASKS, "shipFromStoreTasks", STORE_A, "0").await;
    assert_eq!(tasks, [gid(id)]);

    let picked = mutate(
        &env,
        &me,
        PICK,
        "pickFulfillment",
        json!({"id": gid(id), "picked": 2, "short": 0}),
    )
    .await;
    assert_eq!(picked["errors"], json!([]));
    let order = &picked["fulfillmentOrder"];
    assert_eq!(order["status"], "PICKED");
    assert_eq!(order["kind"], "SHIP");
    assert_eq!(order["locationCode"], STORE_A);
    assert_eq!(order["locationId"], location(STORE_A));
    assert_eq!(
        order["lines"],
        json!([{"lineId": "l1", "sku": "TEE-1", "quantity": 2, "picked": 2, "short": 0,
                "cancelled": 0}])
    );
    let order_id = env.service.queues.get(id).unwrap().order_id;
    assert_eq!(
        order["orderId"],
        encode_id("Order", &order_id.to_string()).0
    );
    assert!(order["createdAt"].is_string());
    // Still the store's work until shipped.
    let tasks = queue(
        &env,
        SFS_TASKS,
        "shipFromStoreTasks",
        STORE_A,
        &position(&picked),
    )
    .await;
    assert_eq!(tasks, [gid(id)]);

    let packed = mutate(&env, &me, PACK, "packFulfillment", json!({"id": gid(id)})).await;
    assert_eq!(packed["fulfillmentOrder"]["status"], "PACKED");
    let shipped = mutate(&env, &me, SHIP, "shipFulfillment", json!({"id": gid(id)})).await;
    let order = &shipped["fulfillmentOrder"];
    assert_eq!(
        (
            &order["status"],
            &order["carrier"],
            &order["trackingNumber"]
        ),
        (&json!("SHIPPED"), &json!("SAGAWA"), &json!("T-1"))
    );
    let tasks = queue(
        &env,
        SFS_TASKS,
        "shipFromStoreTasks",
        STORE_A,
        &position(&shipped),
    )
    .await;
    assert!(tasks.is_empty());

    // Shipping again with the same tracking number is a retry: no error, nothing written.
    let again = mutate(&env, &me, SHIP, "shipFulfillment", json!({"id": gid(id)})).await;
    assert_eq!(again["errors"], json!([]));
    assert_eq!(again["position"], Value::Null);
    assert_eq!(again["fulfillmentOrder"]["status"], "SHIPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_another_store_and_other_roles_are_refused() {
    let env = env().await;
    let id = create(&env, STORE_A, FulfillmentKind::Ship).await;
    let vars = json!({"id": gid(id), "picked": 2, "short": 0});
    let other = staff(STORE_B);

    let (data, errors) = run(&env, &other, &q(PICK), vars.clone()).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");
    assert_eq!(data, Value::Null);
    for query in [PICKUP_QUEUE, SFS_TASKS] {
        let (_, errors) = run(&env, &other, query, json!({"store": location(STORE_A)})).await;
        assert_eq!(only_code(&errors), "FORBIDDEN");
    }
    let (_, errors) = run(&env, &other, ONE, json!({"id": gid(id)})).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");

    // CS agents read any store but take no store steps; customers neither.
    let cs = actor(Role::CsAgent);
    let (data, errors) = run(&env, &cs, SFS_TASKS, json!({"store": location(STORE_A)})).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        data["shipFromStoreTasks"]["edges"][0]["node"]["id"],
        gid(id)
    );
    let (_, errors) = run(&env, &cs, &q(PICK), vars.clone()).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");
    let (_, errors) = run(&env, &actor(Role::Customer), ONE, json!({"id": gid(id)})).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");
    let (_, errors) = run(&env, &Actor::anonymous(), &q(PICK), vars.clone()).await;
    assert_eq!(only_code(&errors), "UNAUTHENTICATED");
    assert!(!env.service.queues.get(id).unwrap().status.is_final());

    // Admins act anywhere.
    let done = mutate(&env, &actor(Role::Admin), PICK, "pickFulfillment", vars).await;
    assert_eq!(done["fulfillmentOrder"]["status"], "PICKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_payload_errors_under_input() {
    let env = env().await;
    let id = create(&env, STORE_A, FulfillmentKind::Pickup).await;
    let me = staff(STORE_A);

    let cases = [
        (
            json!({"id": "garbage", "picked": 2, "short": 0}),
            "INVALID_INPUT",
            json!(["input", "id"]),
        ),
        (
            json!({"id": gid(Uuid::new_v4()), "picked": 2, "short": 0}),
            "NOT_FOUND",
            json!(["input", "id"]),
        ),
        (
            json!({"id": gid(id), "picked": 1, "short": 0}),
            "INVALID_INPUT",
            json!(["input", "lines"]),
        ),
        (
            json!({"id": gid(id), "picked": -1, "short": 3}),
            "INVALID_INPUT",
            json!(["input", "picked"]),
        ),
    ];
    for (vars, code, field) in cases {
        let payload = mutate(&env, &me, PICK, "pickFulfillment", vars.clone()).await;
        assert_eq!(payload["fulfillmentOrder"], Value::Null, "{vars}");
        assert_eq!(payload["errors"][0]["code"], code, "{vars}");
        assert_eq!(payload["errors"][0]["field"], field, "{vars}");
    }
    // A BOPIS order is never packed; nothing is ready before the pick.
    let payload = mutate(
        &env,
        &me,
        READY,
        "markReadyForPickup",
        json!({"id": gid(id)}),
    )
    .await;
    assert_eq!(payload["errors"][0]["code"], "CONFLICT");
    mutate(
        &env,
        &me,
        PICK,
        "pickFulfillment",
        json!({"id": gid(id), "picked": 2, "short": 0}),
    )
    .await;
    let payload = mutate(&env, &me, PACK, "packFulfillment", json!({"id": gid(id)})).await;
    assert_eq!(payload["errors"][0]["code"], "CONFLICT");
    assert_eq!(payload["errors"][0]["field"], json!(["input"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bopis_ready_shows_the_code_and_only_the_right_code_hands_over() {
    let env = env().await;
    let id = create(&env, STORE_A, FulfillmentKind::Pickup).await;
    let me = staff(STORE_A);
    assert_eq!(
        queue(&env, PICKUP_QUEUE, "pickupQueue", STORE_A, "0").await,
        [gid(id)]
    );
    // BOPIS work is the counter's, not the ship-from-store list's.
    assert!(queue(&env, SFS_TASKS, "shipFromStoreTasks", STORE_A, "0")
        .await
        .is_empty());

    mutate(
        &env,
        &me,
        PICK,
        "pickFulfillment",
        json!({"id": gid(id), "picked": 2, "short": 0}),
    )
    .await;
    let ready = mutate(
        &env,
        &me,
        READY,
        "markReadyForPickup",
        json!({"id": gid(id)}),
    )
    .await;
    assert_eq!(ready["errors"], json!([]));
    let order = &ready["fulfillmentOrder"];
    assert_eq!(order["status"], "READY_FOR_PICKUP");
    let code = order["pickupCode"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    let expires: chrono::DateTime<Utc> =
        order["pickupExpiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, env.clock.now() + chrono::Duration::days(2));
    assert_eq!(
        queue(
            &env,
            PICKUP_QUEUE,
            "pickupQueue",
            STORE_A,
            &position(&ready)
        )
        .await,
        [gid(id)]
    );

    // Staff and admins see the code; CS agents do not.
    let (data, _) = run(&env, &me, ONE, json!({"id": gid(id)})).await;
    assert_eq!(data["fulfillmentOrder"]["pickupCode"], code.as_str());
    let (data, errors) = run(&env, &actor(Role::CsAgent), ONE, json!({"id": gid(id)})).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(data["fulfillmentOrder"]["status"], "READY_FOR_PICKUP");
    assert_eq!(data["fulfillmentOrder"]["pickupCode"], Value::Null);

    let wrong = if code == "AAAAAA" { "BBBBBB" } else { "AAAAAA" };
    let refused = mutate(
        &env,
        &me,
        HAND_OVER,
        "handOverPickup",
        json!({"id": gid(id), "code": wrong}),
    )
    .await;
    assert_eq!(refused["fulfillmentOrder"], Value::Null);
    assert_eq!(
        (
            &refused["errors"][0]["code"],
            &refused["errors"][0]["field"]
        ),
        (&json!("INVALID_INPUT"), &json!(["input", "pickupCode"]))
    );
    // Staff of another store cannot hand it over, even with the code.
    let (_, errors) = run(
        &env,
        &staff(STORE_B),
        &q(HAND_OVER),
        json!({"id": gid(id), "code": code}),
    )
    .await;
    assert_eq!(only_code(&errors), "FORBIDDEN");

    // Typed in lower case with stray spaces: still the code.
    let typed = format!(" {} ", code.to_ascii_lowercase());
    let handed = mutate(
        &env,
        &me,
        HAND_OVER,
        "handOverPickup",
        json!({"id": gid(id), "code": typed}),
    )
    .await;
    assert_eq!(handed["errors"], json!([]));
    assert_eq!(handed["fulfillmentOrder"]["status"], "PICKED_UP");
    assert!(queue(
        &env,
        PICKUP_QUEUE,
        "pickupQueue",
        STORE_A,
        &position(&handed)
    )
    .await
    .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ship_to_store_counter_steps_belong_to_the_destination_store() {
    let env = env().await;
    let id = create(&env, "TKY-DC1", FulfillmentKind::ShipToStore).await;
    let dc_steps = [
        (
            PICK,
            "pickFulfillment",
            json!({"id": gid(id), "picked": 2, "short": 0}),
        ),
        (PACK, "packFulfillment", json!({"id": gid(id)})),
        (SHIP, "shipFulfillment", json!({"id": gid(id)})),
    ];
    // The destination's staff do not take the shipping location's steps.
    let (_, errors) = run(&env, &staff(STORE_A), &q(PICK), dc_steps[0].2.clone()).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");
    let mut last = Value::Null;
    for (template, name, vars) in dc_steps {
        last = mutate(&env, &actor(Role::Admin), template, name, vars).await;
        assert_eq!(last["errors"], json!([]));
    }
    // On its way to the store: in the store's pickup queue; the store's staff may look it up.
    assert_eq!(
        queue(&env, PICKUP_QUEUE, "pickupQueue", STORE_A, &position(&last)).await,
        [gid(id)]
    );
    let (data, errors) = run(&env, &staff(STORE_A), ONE, json!({"id": gid(id)})).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(data["fulfillmentOrder"]["status"], "SHIPPED");

    let (_, errors) = run(&env, &staff(STORE_B), &q(READY), json!({"id": gid(id)})).await;
    assert_eq!(only_code(&errors), "FORBIDDEN");
    let ready = mutate(
        &env,
        &staff(STORE_A),
        READY,
        "markReadyForPickup",
        json!({"id": gid(id)}),
    )
    .await;
    assert_eq!(ready["fulfillmentOrder"]["status"], "READY_FOR_PICKUP");
    assert_eq!(ready["fulfillmentOrder"]["destinationStoreCode"], STORE_A);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncollected_pickup_expires_after_the_hold_days_and_leaves_the_queue() {
    let env = env().await;
    let id = create(&env, STORE_A, FulfillmentKind::Pickup).await;
    let kept = create(&env, STORE_A, FulfillmentKind::Pickup).await;
    let me = staff(STORE_A);
    for f in [id, kept] {
        mutate(
            &env,
            &me,
            PICK,
            "pickFulfillment",
            json!({"id": gid(f), "picked": 2, "short": 0}),
        )
        .await;
    }
    let ready = mutate(
        &env,
        &me,
        READY,
        "markReadyForPickup",
        json!({"id": gid(id)}),
    )
    .await;
    env.service
        .wait_for(Some(position(&ready).parse::<Position>().unwrap()))
        .await
        .unwrap();
    let expiry = env.service.expiry();
    assert_eq!(expiry.run_once().await.unwrap(), 0, "not due yet");

    env.clock
        .advance(chrono::Duration::days(2) + chrono::Duration::minutes(1));
    assert_eq!(expiry.run_once().await.unwrap(), 1);
    let (state, _) = env.service.handlers.load(id).await.unwrap();
    assert_eq!(
        state.status,
        Some(ichigen_fulfillment::domain::FulfillmentStatus::Expired)
    );
    // The view follows; only the order still being prepared stays at the counter.
    let mut waited = 0;
    while env.service.queues.get(id).unwrap().status
        != ichigen_fulfillment::domain::FulfillmentStatus::Expired
    {
        waited += 1;
        assert!(waited < 500, "the queues never saw the expiry");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        queue(&env, PICKUP_QUEUE, "pickupQueue", STORE_A, "0").await,
        [gid(kept)]
    );
    let (data, _) = run(&env, &me, ONE, json!({"id": gid(id)})).await;
    assert_eq!(data["fulfillmentOrder"]["status"], "EXPIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_page_with_cursors() {
    let env = env().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(gid(create(&env, STORE_A, FulfillmentKind::Ship).await));
    }
    let me = staff(STORE_A);
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let vars = json!({"store": location(STORE_A), "first": 2, "after": after});
        let (data, errors) = run(&env, &me, SFS_TASKS, vars).await;
        assert!(errors.is_empty(), "{errors:?}");
        let page = &data["shipFromStoreTasks"];
        let edges = page["edges"].as_array().unwrap();
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
        );
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = edges.last().unwrap()["cursor"].clone();
    }
    assert_eq!(seen, ids);
    let (_, errors) = run(&env, &me, SFS_TASKS, json!({"store": "garbage"})).await;
    assert_eq!(only_code(&errors), "INVALID_INPUT");
}
