//! What availability promises, placeOrder can sell: over random states — stock and safety
//! stock per SKU × location, capacities and what is already claimed of them today, locations
//! active or not with random capabilities, SKUs in the catalog, retired or unknown — every
//! quantity `availability` shows (ONLINE, and PICKUP at each store) is placed by an order for
//! exactly that quantity, one after the other, each order seeing what the previous ones took.
//! And what it does not show for a SKU, an order for it is refused.
//!
//! The real services in process (embedded store, inventory, catalog, order handlers, the
//! inventory's GraphQL part with the gateway's catalog port), no HTTP: 64 cases.

use async_graphql::{EmptySubscription, Request, Schema, Variables};
use ichigen_gateway::wiring::{CatalogSellable, InProcessInventory};
use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::graphql::{InventoryMutation, InventoryQuery, Sellable};
use ichigen_inventory::InventoryService;
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::Channel;
use ichigen_order::domain::sourcing::Delivery;
use ichigen_order::handlers::order::{LineRequest, OrderHandlers, PlaceRequest};
use ichigen_order::payment::ManualProvider;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::graphql::conventions::encode_id;
use ichigen_shared::graphql::RequestContext;
use ichigen_shared::money::Money;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;

const SKUS: [&str; 3] = ["SKU-A", "SKU-B", "SKU-C"];

#[derive(Debug, Clone)]
struct Site {
    store: bool,
    /// For a store: (PICKUP, SHIP, SHIP_FROM_STORE); a DC always has SHIP.
    caps: (bool, bool, bool),
    active: bool,
    capacity: Option<i64>,
    /// Units of today's capacity already claimed by earlier orders.
    claimed: i64,
    /// (on hand, safety stock) per SKU.
    stock: [(i64, i64); 3],
}

#[derive(Debug, Clone, Copy)]
enum InCatalog {
    Sold,
    Retired,
    Unknown,
}

fn site() -> impl Strategy<Value = Site> {
    (
        any::<bool>(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::bool::weighted(0.8),
        prop::option::weighted(0.6, 0i64..3),
        0i64..3,
        prop::array::uniform3((0i64..5, 0i64..3)),
    )
        .prop_map(|(store, caps, active, capacity, claimed, stock)| Site {
            store,
            caps,
            active,
            capacity,
            claimed,
            stock,
        })
}

fn in_catalog() -> impl Strategy<Value = InCatalog> {
    prop_oneof![
        3 => Just(InCatalog::Sold),
        1 => Just(InCatalog::Retired),
        1 => Just(InCatalog::Unknown),
    ]
}

struct World {
    _dir: tempfile::TempDir,
    inventory: InventoryService,
    orders: OrderHandlers,
    schema: Schema<InventoryQuery, InventoryMutation, EmptySubscription>,
}

fn code(i: usize) -> String {
    format!("L{i}")
}

fn system() -> Metadata {
    Metadata::new(Actor::system("test"))
}

async fn world(sites: &[Site], catalog_of: &[InCatalog; 3]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(SystemClock);
    let inventory = InventoryService::start(store.clone(), clock.clone());
    let catalog = CatalogService::start(store.clone(), clock.clone());
    for (i, s) in sites.iter().enumerate() {
        let mut capabilities = std::collections::BTreeSet::new();
        if s.store {
            let (pickup, ship, from_store) = s.caps;
            for (on, c) in [
                (pickup, Capability::Pickup),
                (ship, Capability::Ship),
                (from_store, Capability::ShipFromStore),
            ] {
                if on {
                    capabilities.insert(c);
                }
            }
        } else {
            capabilities.insert(Capability::Ship);
        }
        let spec = LocationSpec {
            code: code(i),
            name: code(i),
            kind: if s.store {
                LocationKind::Store
            } else {
                LocationKind::Dc
            },
            address: Address {
                line1: "1".into(),
                city: "Tokyo".into(),
                postal_code: "100-0001".into(),
                country: "JP".into(),
            },
            lat: 35.6 + i as f64 * 0.05,
            lon: 139.7,
            time_zone: "Asia/Tokyo".into(),
            capabilities,
            pickup_hold_days: 3,
            daily_capacity: s.capacity,
        };
        inventory
            .locations
            .execute(LocationCommand::Define(spec), system())
            .await
            .unwrap();
        for (k, (on_hand, safety)) in s.stock.iter().enumerate() {
            let mut commands = vec![StockCommand::SetSafetyStock { qty: *safety }];
            if *on_hand > 0 {
                commands.push(StockCommand::ReceiveGoods {
                    qty: *on_hand,
                    reference: None,
                });
            }
            inventory
                .stock
                .execute(SKUS[k], &code(i), commands, system())
                .await
                .unwrap();
        }
        // Orders placed earlier today took part of the capacity.
        if let Some(limit) = s.capacity {
            let today = inventory
                .view
                .location(&code(i))
                .unwrap()
                .spec
                .local_date(chrono::Utc::now());
            for n in 0..s.claimed.min(limit) {
                inventory
                    .placements
                    .capacity
                    .claim(
                        &code(i),
                        today,
                        &format!("order:earlier-{n}"),
                        limit,
                        system(),
                    )
                    .await
                    .unwrap();
            }
        }
        if !s.active {
            inventory
                .locations
                .execute(LocationCommand::Deactivate { code: code(i) }, system())
                .await
                .unwrap();
        }
    }
    let mut last = None;
    for (k, status) in catalog_of.iter().enumerate() {
        let active = match status {
            InCatalog::Sold => true,
            InCatalog::Retired => false,
            InCatalog::Unknown => continue,
        };
        let accepted = catalog
            .handlers
            .execute(
                SKUS[k],
                CatalogCommand::Upsert(ItemSpec {
                    title: SKUS[k].into(),
                    price: Money::parse("100", "JPY").unwrap(),
                    attributes: Default::default(),
                    active,
                }),
                system(),
            )
            .await
            .unwrap();
        last = accepted.position.or(last);
    }
    catalog.wait_for(last).await.unwrap();
    let orders = OrderHandlers::new(
        store,
        catalog.view.clone(),
        Arc::new(InProcessInventory(inventory.clone())),
        Arc::new(ManualProvider::new()),
        clock,
    );
    let schema = Schema::build(InventoryQuery, InventoryMutation, EmptySubscription)
        .data(inventory.clone())
        .data(Sellable(Arc::new(CatalogSellable(catalog.clone()))))
        .finish();
    let w = World {
        _dir: dir,
        inventory,
        orders,
        schema,
    };
    w.settled().await;
    w
}

impl World {
    /// Waits until the inventory and capacity views have the last event of their categories.
    async fn settled(&self) {
        let all = self.inventory.store.read_all(None, 100_000).await.unwrap();
        let last = |prefix: &str| {
            all.iter()
                .rev()
                .find(|e| e.stream.starts_with(prefix))
                .map(|e| e.position)
        };
        self.inventory
            .wait_for(last("inventory-").max(last("location-")))
            .await
            .unwrap();
        self.inventory
            .wait_for_capacity(last("capacity-"))
            .await
            .unwrap();
    }

    async fn availability(&self, sku: &str, store: Option<&str>) -> (i64, Value) {
        let query = "query($sku: String!, $channel: SalesChannel!, $store: ID) {
            availability(sku: $sku, channel: $channel, store: $store) {
                available locations { locationCode available } } }";
        let vars = match store {
            None => json!({ "sku": sku, "channel": "ONLINE" }),
            Some(s) => {
                json!({ "sku": sku, "channel": "PICKUP", "store": encode_id("Location", s).0 })
            }
        };
        let request = Request::new(query)
            .variables(Variables::from_json(vars))
            .data(RequestContext {
                actor: Actor {
                    role: Role::Customer,
                    subject: "c-1".into(),
                    store_id: None,
                },
                correlation_id: uuid::Uuid::new_v4(),
            });
        let response = self.schema.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().unwrap();
        let a = data["availability"].clone();
        (a["available"].as_i64().unwrap(), a)
    }

    async fn place(
        &self,
        key: &str,
        sku: &str,
        qty: i64,
        delivery: Delivery,
    ) -> Result<(), String> {
        let request = PlaceRequest {
            customer_id: Some("c-1".into()),
            channel: Channel::Web,
            lines: vec![LineRequest {
                sku: sku.into(),
                qty,
                delivery,
            }],
            allow_partial: false,
            idempotency_key: key.into(),
            credit: None,
        };
        let customer = Metadata::new(Actor {
            role: Role::Customer,
            subject: "c-1".into(),
            store_id: None,
        });
        let placed = self.orders.place(request, customer).await;
        self.settled().await;
        placed.map(|_| ()).map_err(|e| e.to_string())
    }
}

fn ship() -> Delivery {
    Delivery::Ship {
        lat: 35.68,
        lon: 139.76,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn an_order_for_what_availability_shows_succeeds(
        sites in prop::collection::vec(site(), 1..4),
        catalog_of in prop::array::uniform3(in_catalog()),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let w = world(&sites, &catalog_of).await;
            let mut n = 0;
            for (k, sku) in SKUS.iter().enumerate() {
                // ONLINE: the whole quantity shown, shipped.
                let (available, shown) = w.availability(sku, None).await;
                n += 1;
                if available > 0 {
                    let placed = w.place(&format!("o-{n}"), sku, available, ship()).await;
                    assert!(placed.is_ok(), "{sku}: shown {shown}, refused {placed:?}\n{sites:?}\n{catalog_of:?}");
                } else if !matches!(catalog_of[k], InCatalog::Sold) {
                    // Not sold: not shown, and refused.
                    let placed = w.place(&format!("o-{n}"), sku, 1, ship()).await;
                    assert!(placed.is_err(), "{sku} is not sold but was placed");
                }
                // PICKUP at every store.
                for i in 0..sites.len() {
                    let store = code(i);
                    let (available, shown) = w.availability(sku, Some(&store)).await;
                    if available == 0 {
                        continue;
                    }
                    n += 1;
                    let delivery = Delivery::Pickup { store: store.clone() };
                    let placed = w.place(&format!("o-{n}"), sku, available, delivery).await;
                    assert!(placed.is_ok(), "{sku} at {store}: shown {shown}, refused {placed:?}\n{sites:?}");
                }
            }
            w.inventory.shutdown().await;
            w.inventory.store.shutdown().await;
        });
    }
}
