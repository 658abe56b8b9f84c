//! The inventory GraphQL part through a schema of its own Query and Mutation over the real
//! embedded store: new vs resale stock (the `condition` filter and labels), and returned units
//! received or written off as the returns process sends them (once per unit key), as the stock
//! movements show them.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use async_graphql::{EmptySubscription, Request, Schema, Variables};
use ichigen_inventory::domain::{
    Address, Capability, InventoryError, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::graphql::{InventoryMutation, InventoryQuery, Sellable, SellableSkus};
use ichigen_inventory::handlers::{Accepted, HandlerError};
use ichigen_inventory::InventoryService;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::graphql::conventions::encode_id;
use ichigen_shared::graphql::RequestContext;
use ichigen_shared::resale::resale_sku;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

type InventorySchema = Schema<InventoryQuery, InventoryMutation, EmptySubscription>;

const STORE: &str = "S1";
const CLOSED: &str = "S9";
const NEW_SKU: &str = "TEE-M";

struct Env {
    _dir: tempfile::TempDir,
    service: InventoryService,
    schema: InventorySchema,
}

/// A catalog that sells these SKUs (and nothing else).
struct Sells(BTreeSet<String>);

#[async_trait::async_trait]
impl SellableSkus for Sells {
    async fn is_sellable(&self, sku: &str) -> bool {
        self.0.contains(sku)
    }
}

fn spec(code: &str) -> LocationSpec {
    LocationSpec {
        code: code.into(),
        name: format!("Store {code}"),
        kind: LocationKind::Store,
        address: Address {
            line1: "1-1 Marunouchi".into(),
            city: "Tokyo".into(),
            postal_code: "100-0005".into(),
            country: "JP".into(),
        },
        lat: 35.68,
        lon: 139.76,
        time_zone: "Asia/Tokyo".into(),
        capabilities: BTreeSet::from([Capability::Pickup, Capability::ShipFromStore]),
        pickup_hold_days: 3,
        daily_capacity: Some(100),
    }
}

fn system() -> Metadata {
    Metadata::new(Actor::system("returns-test"))
}

/// Store S1 (active, ships and offers pickup) and S9 (deactivated).
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let service = InventoryService::start(store, Arc::new(SystemClock));
    for code in [STORE, CLOSED] {
        service
            .locations
            .execute(LocationCommand::Define(spec(code)), system())
            .await
            .unwrap();
    }
    service
        .locations
        .execute(
            LocationCommand::Deactivate {
                code: CLOSED.into(),
            },
            system(),
        )
        .await
        .unwrap();
    let sold = [NEW_SKU.to_string(), resale_sku(NEW_SKU, "LIKE_NEW")];
    let schema = Schema::build(InventoryQuery, InventoryMutation, EmptySubscription)
        .data(service.clone())
        .data(Sellable(Arc::new(Sells(sold.into_iter().collect()))))
        .finish();
    Env {
        _dir: dir,
        service,
        schema,
    }
}

/// Runs one command as the returns process would, and waits until the view shows it.
async fn execute(
    env: &Env,
    sku: &str,
    location: &str,
    command: StockCommand,
) -> Result<Accepted, HandlerError> {
    let accepted = env
        .service
        .stock
        .execute(sku, location, vec![command], system())
        .await?;
    env.service.wait_for(accepted.position).await.unwrap();
    Ok(accepted)
}

fn receive_return(key: &str) -> StockCommand {
    StockCommand::ReceiveReturn {
        qty: 1,
        rma_id: "RMA-1".into(),
        key: key.into(),
    }
}

fn write_off(key: &str) -> StockCommand {
    StockCommand::WriteOffReturn {
        qty: 1,
        rma_id: "RMA-1".into(),
        key: key.into(),
        disposition: "DISPOSE".into(),
        reason: "STAINED".into(),
    }
}

fn admin() -> Actor {
    Actor {
        role: Role::Admin,
        subject: "admin-1".into(),
        store_id: None,
    }
}

fn location_id(code: &str) -> String {
    encode_id("Location", code).0
}

/// Runs one operation as `actor`; panics on errors, returns `data` as JSON.
async fn run(env: &Env, actor: &Actor, query: &str, variables: Value) -> Value {
    let request = Request::new(query)
        .variables(Variables::from_json(variables))
        .data(RequestContext {
            actor: actor.clone(),
            correlation_id: Uuid::new_v4(),
        });
    let response = env.schema.execute(request).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    response.data.into_json().unwrap()
}

/// New stock of TEE-M (5), one returned unit of its LIKE_NEW resale SKU (received twice, as
/// a re-delivery after a crash would), and one returned unit written off against TEE-M.
async fn stocked() -> (Env, String) {
    let env = env().await;
    let resale = resale_sku(NEW_SKU, "LIKE_NEW");
    execute(
        &env,
        NEW_SKU,
        STORE,
        StockCommand::ReceiveGoods {
            qty: 5,
            reference: Some("PO-1".into()),
        },
    )
    .await
    .unwrap();
    // The resale SKU was never stocked here: the first receipt creates its record.
    let first = execute(&env, &resale, STORE, receive_return("RMA-1/U1"))
        .await
        .unwrap();
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.levels.on_hand, 1);
    let again = execute(&env, &resale, STORE, receive_return("RMA-1/U1"))
        .await
        .unwrap();
    assert!(again.events.is_empty(), "a re-delivered unit is a no-op");
    assert_eq!((again.levels.on_hand, again.position), (1, None));
    let written_off = execute(&env, NEW_SKU, STORE, write_off("RMA-1/U2"))
        .await
        .unwrap();
    assert_eq!(written_off.levels.on_hand, 5, "a write-off is never stock");
    (env, resale)
}

/// `stockLevels` at S1 with `condition` (the argument left out for `None`).
async fn stock_levels(env: &Env, condition: Option<&str>, first: i32) -> Value {
    let (declare, pass) = match condition {
        Some(_) => (", $condition: StockCondition!", ", condition: $condition"),
        None => ("", ""),
    };
    let query = format!(
        "query($location: ID!, $first: Int{declare}) {{
            stockLevels(location: $location, first: $first{pass}) {{
                edges {{ node {{ sku onHand available condition resaleGrade }} }}
                pageInfo {{ hasNextPage }}
            }}
        }}"
    );
    let vars = json!({"location": location_id(STORE), "first": first, "condition": condition});
    run(env, &admin(), &query, vars).await["stockLevels"].clone()
}

fn skus(levels: &Value) -> Vec<&str> {
    levels["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sku"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn stock_levels_filter_new_and_resale_stock() {
    let (env, resale) = stocked().await;

    let any = stock_levels(&env, None, 10).await;
    assert_eq!(skus(&any), [NEW_SKU, resale.as_str()], "ANY is the default");

    let new = stock_levels(&env, Some("NEW"), 10).await;
    assert_eq!(
        new["edges"][0]["node"],
        json!({"sku": NEW_SKU, "onHand": 5, "available": 5, "condition": "NEW", "resaleGrade": null})
    );
    assert_eq!(skus(&new), [NEW_SKU]);

    let resale_only = stock_levels(&env, Some("RESALE"), 10).await;
    assert_eq!(
        resale_only["edges"][0]["node"],
        json!({
            "sku": resale, "onHand": 1, "available": 1,
            "condition": "RESALE", "resaleGrade": "LIKE_NEW"
        })
    );
    assert_eq!(skus(&resale_only).len(), 1);

    // Pages count matching rows: one NEW row is all there is, so nothing follows it.
    let page = stock_levels(&env, Some("NEW"), 1).await;
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    let page = stock_levels(&env, Some("ANY"), 1).await;
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn availability_labels_resale_stock() {
    let (env, resale) = stocked().await;
    let query = r#"query($sku: String!) {
        availability(sku: $sku) { sku available condition resaleGrade locations { locationCode } }
    }"#;
    let customer = Actor {
        role: Role::Customer,
        subject: "c-1".into(),
        store_id: None,
    };
    let data = run(&env, &customer, query, json!({"sku": resale})).await;
    assert_eq!(
        data["availability"],
        json!({
            "sku": resale, "available": 1, "condition": "RESALE", "resaleGrade": "LIKE_NEW",
            "locations": [{"locationCode": STORE}]
        })
    );
    let data = run(&env, &customer, query, json!({"sku": NEW_SKU})).await;
    assert_eq!(data["availability"]["condition"], "NEW");
    assert_eq!(data["availability"]["resaleGrade"], Value::Null);
    assert_eq!(data["availability"]["available"], 5);
}

#[tokio::test]
async fn stock_movements_show_returns_received_and_written_off() {
    let (env, resale) = stocked().await;
    let query = r#"query($sku: String!, $location: ID!) {
        stockMovements(sku: $sku, location: $location) {
            edges { node {
                type onHandDelta quantity reference reason disposition returnUnitKey
            } }
        }
    }"#;
    let movements = |data: &Value| data["stockMovements"]["edges"].as_array().unwrap().clone();
    let data = run(
        &env,
        &admin(),
        query,
        json!({"sku": resale, "location": location_id(STORE)}),
    )
    .await;
    let received = movements(&data);
    assert_eq!(received.len(), 1, "the re-delivered unit appended nothing");
    assert_eq!(
        received[0]["node"],
        json!({
            "type": "ReturnReceived.v1", "onHandDelta": 1, "quantity": 1, "reference": "RMA-1",
            "reason": null, "disposition": null, "returnUnitKey": "RMA-1/U1"
        })
    );
    let data = run(
        &env,
        &admin(),
        query,
        json!({"sku": NEW_SKU, "location": location_id(STORE)}),
    )
    .await;
    let history = movements(&data);
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1]["node"],
        json!({
            "type": "ReturnWrittenOff.v1", "onHandDelta": 0, "quantity": 1, "reference": "RMA-1",
            "reason": "STAINED", "disposition": "DISPOSE", "returnUnitKey": "RMA-1/U2"
        })
    );
}

#[tokio::test]
async fn returns_through_the_handlers_are_checked_like_other_commands() {
    let (env, resale) = stocked().await;
    // The written-off unit cannot also be received into stock.
    let refused = execute(&env, NEW_SKU, STORE, receive_return("RMA-1/U2"))
        .await
        .unwrap_err();
    assert!(matches!(
        refused.refusal(),
        Some(InventoryError::ReturnKeyConflict { .. })
    ));
    // A unit that reached a deactivated store can still be written off (it adds nothing to
    // sell), but not received into stock there.
    let written_off = execute(&env, &resale, CLOSED, write_off("RMA-2/U1"))
        .await
        .unwrap();
    assert_eq!(written_off.events.len(), 1);
    let refused = execute(&env, &resale, CLOSED, receive_return("RMA-2/U2"))
        .await
        .unwrap_err();
    assert!(matches!(
        refused.refusal(),
        Some(InventoryError::LocationInactive { .. })
    ));
    // The folded stock record counts the write-offs.
    let item = env.service.stock.load(NEW_SKU, STORE).await.unwrap();
    assert_eq!((item.on_hand, item.written_off), (5, 1));
}

#[tokio::test]
async fn availability_leaves_out_what_cannot_be_sold() {
    let (env, _) = stocked().await;
    let customer = Actor {
        role: Role::Customer,
        subject: "c-1".into(),
        store_id: None,
    };
    let query = r#"query($sku: String!) {
        availability(sku: $sku) { available locations { locationCode } }
        nearbyStores(sku: $sku, lat: 35.68, lon: 139.76) { edges { node { locationCode } } }
    }"#;
    // Stock the catalog does not sell (a receipt of an unknown SKU is accepted): not offered.
    execute(
        &env,
        "NOT-IN-CATALOG",
        STORE,
        StockCommand::ReceiveGoods {
            qty: 3,
            reference: None,
        },
    )
    .await
    .unwrap();
    let data = run(&env, &customer, query, json!({"sku": "NOT-IN-CATALOG"})).await;
    assert_eq!(
        data,
        json!({"availability": {"available": 0, "locations": []}, "nearbyStores": {"edges": []}})
    );
    // A store that has taken its daily capacity of orders today: not offered either.
    let data = run(&env, &customer, query, json!({"sku": NEW_SKU})).await;
    assert_eq!(data["availability"]["available"], 5);
    env.service
        .locations
        .execute(
            LocationCommand::Update {
                code: STORE.into(),
                patch: ichigen_inventory::domain::LocationPatch {
                    daily_capacity: Some(Some(1)),
                    ..Default::default()
                },
            },
            system(),
        )
        .await
        .unwrap();
    let today = env
        .service
        .view
        .location(STORE)
        .unwrap()
        .spec
        .local_date(chrono::Utc::now());
    let claimed = env
        .service
        .placements
        .capacity
        .claim(STORE, today, "order:x", 1, system())
        .await
        .unwrap();
    env.service
        .wait_for_capacity(claimed.position)
        .await
        .unwrap();
    let data = run(&env, &customer, query, json!({"sku": NEW_SKU})).await;
    assert_eq!(
        data,
        json!({"availability": {"available": 0, "locations": []}, "nearbyStores": {"edges": []}})
    );
}
