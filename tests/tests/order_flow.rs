//! The reactions between order, fulfillment, inventory and payment, in process on the real
//! services (embedded store, manual clock, manual payment provider): shipping from a DC, BOPIS
//! pickup and no-show expiry, short picks re-sourced or cancelled, cancellations before
//! shipping, and a replay of the whole history that changes nothing.

use chrono::{Duration as Days, Utc};
use ichigen_fulfillment::cancellation::OrderCancellation;
use ichigen_fulfillment::domain::{
    FulfillmentCommand, FulfillmentError, FulfillmentKind, FulfillmentStatus, PickedLine,
};
use ichigen_fulfillment::handlers::{FulfillmentHandlerError, FulfillmentHandlers};
use ichigen_fulfillment::process::order_intake::{
    fulfillment_id, reassigned_fulfillment_id, HoldDays, OrderIntake, PickupHold,
};
use ichigen_fulfillment::process::pickup_expiry::{PickupExpiry, PickupTracker};
use ichigen_gateway::wiring::{InProcessFulfillment, InProcessInventory};
use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand, StockEvent,
};
use ichigen_inventory::InventoryService;
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::{Channel, LineQty, Order, OrderStatus};
use ichigen_order::domain::sourcing::Delivery;
use ichigen_order::handlers::order::{LineRequest, OrderHandlers, PlaceRequest};
use ichigen_order::payment::ManualProvider;
use ichigen_order::process::fulfillment_reactions::FulfillmentReactions;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::ManualClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    store: DynEventStore,
    clock: ManualClock,
    inventory: InventoryService,
    orders: OrderHandlers,
    payments: Arc<ManualProvider>,
    fulfillment: FulfillmentHandlers,
    reactions: FulfillmentReactions,
    expiry: PickupExpiry,
    intake: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.intake.abort();
    }
}

fn customer() -> Metadata {
    Metadata::new(Actor {
        role: Role::Customer,
        subject: "c-1".into(),
        store_id: None,
    })
}

fn staff() -> Metadata {
    Metadata::new(Actor::system("test"))
}

fn spec(code: &str, kind: LocationKind, lat: f64, lon: f64, caps: &[Capability]) -> LocationSpec {
    LocationSpec {
        code: code.into(),
        name: code.into(),
        kind,
        address: Address {
            line1: "1".into(),
            city: "Tokyo".into(),
            postal_code: "100-0001".into(),
            country: "JP".into(),
        },
        lat,
        lon,
        time_zone: "Asia/Tokyo".into(),
        capabilities: caps.iter().copied().collect(),
        pickup_hold_days: 3,
        daily_capacity: Some(1000),
    }
}

fn jpy(amount: &str) -> Money {
    Money::parse(amount, "JPY").unwrap()
}

/// A Tokyo DC, a Shibuya store (pickup, ship from store), an Osaka DC; TEE-M at 1990 JPY and
/// CAP at 2500 JPY; the intake running, the reactions and the pickup expiry driven by hand.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let dyn_clock: Arc<dyn ichigen_shared::clock::Clock> = Arc::new(clock.clone());
    let inventory = InventoryService::start(store.clone(), dyn_clock.clone());
    let catalog = CatalogService::start(store.clone(), dyn_clock.clone());
    for s in [
        spec(
            "DC-TKY",
            LocationKind::Dc,
            35.70,
            139.93,
            &[Capability::Ship],
        ),
        spec(
            "S-SHIBUYA",
            LocationKind::Store,
            35.66,
            139.70,
            &[Capability::Pickup, Capability::ShipFromStore],
        ),
        spec(
            "DC-OSA",
            LocationKind::Dc,
            34.62,
            135.45,
            &[Capability::Ship],
        ),
    ] {
        inventory
            .locations
            .execute(LocationCommand::Define(s), staff())
            .await
            .unwrap();
    }
    let mut last = None;
    for (sku, price) in [("TEE-M", "1990"), ("CAP", "2500")] {
        let accepted = catalog
            .handlers
            .execute(
                sku,
                CatalogCommand::Upsert(ItemSpec {
                    title: sku.into(),
                    price: jpy(price),
                    attributes: Default::default(),
                    active: true,
                }),
                staff(),
            )
            .await
            .unwrap();
        last = accepted.position.or(last);
    }
    catalog.wait_for(last).await.unwrap();
    let payments = Arc::new(ManualProvider::new());
    let orders = OrderHandlers::new(
        store.clone(),
        catalog.view.clone(),
        Arc::new(InProcessInventory(inventory.clone())),
        payments.clone(),
        dyn_clock.clone(),
    );
    let fulfillment = FulfillmentHandlers::new(store.clone(), dyn_clock.clone());
    let hold_days: HoldDays = Arc::new(|_| PickupHold {
        days: 3,
        time_zone: None,
    });
    let intake_process = OrderIntake::new(store.clone(), fulfillment.clone(), hold_days);
    let orders = orders.with_fulfillment(Arc::new(InProcessFulfillment(OrderCancellation::new(
        fulfillment.clone(),
        intake_process.clone(),
    ))));
    let intake = intake_process.spawn();
    let reactions = FulfillmentReactions::new(store.clone(), orders.clone(), dyn_clock.clone());
    let tracker = Arc::new(PickupTracker::default());
    ichigen_shared::projection::spawn(store.clone(), tracker.clone());
    let expiry = PickupExpiry::new(tracker, fulfillment.clone(), dyn_clock);
    World {
        _dir: dir,
        store,
        clock,
        inventory,
        orders,
        payments,
        fulfillment,
        reactions,
        expiry,
        intake,
    }
}

fn ship(sku: &str, qty: i64) -> LineRequest {
    LineRequest {
        sku: sku.into(),
        qty,
        delivery: Delivery::Ship {
            lat: 35.68,
            lon: 139.76,
        },
    }
}

fn pickup(sku: &str, qty: i64) -> LineRequest {
    LineRequest {
        sku: sku.into(),
        qty,
        delivery: Delivery::Pickup {
            store: "S-SHIBUYA".into(),
        },
    }
}

impl World {
    async fn receive(&self, sku: &str, location: &str, qty: i64) {
        let accepted = self
            .inventory
            .stock
            .execute(
                sku,
                location,
                vec![StockCommand::ReceiveGoods {
                    qty,
                    reference: None,
                }],
                staff(),
            )
            .await
            .unwrap();
        self.inventory.wait_for(accepted.position).await.unwrap();
    }

    /// (on hand, reserved) of a SKU at a location, from its stream.
    async fn levels(&self, sku: &str, location: &str) -> (i64, i64) {
        let item = self.inventory.stock.load(sku, location).await.unwrap();
        (item.on_hand, item.reserved)
    }

    async fn place(&self, key: &str, lines: Vec<LineRequest>) -> Uuid {
        let placed = self
            .orders
            .place(
                PlaceRequest {
                    customer_id: Some("c-1".into()),
                    channel: Channel::Web,
                    lines,
                    allow_partial: false,
                    idempotency_key: key.into(),
                    credit: None,
                },
                customer(),
            )
            .await
            .unwrap();
        placed.order_id
    }

    async fn order(&self, order_id: Uuid) -> Order {
        self.orders.load(order_id).await.unwrap().0
    }

    /// Waits until the intake created the fulfillment order.
    async fn created(&self, id: Uuid) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (f, _) = self.fulfillment.load(id).await.unwrap();
            if f.created.is_some() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "fulfillment {id} never created"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn run(&self, id: Uuid, command: FulfillmentCommand) {
        self.fulfillment
            .execute(id, command, staff())
            .await
            .unwrap();
    }

    /// Lets the reactions handle everything written so far (and what they cause).
    async fn react(&self) {
        self.reactions
            .run_until_idle(Duration::from_millis(300))
            .await
            .unwrap();
    }

    async fn pick(&self, id: Uuid, lines: &[(&str, i64, i64)]) {
        let lines = lines
            .iter()
            .map(|(line_id, picked, short)| PickedLine {
                line_id: (*line_id).into(),
                picked: *picked,
                short: *short,
            })
            .collect();
        self.run(id, FulfillmentCommand::Pick { lines }).await;
    }

    async fn pack_and_ship(&self, id: Uuid, tracking: &str) {
        self.run(id, FulfillmentCommand::Pack { packages: 1 }).await;
        self.run(
            id,
            FulfillmentCommand::Ship {
                carrier: "YAMATO".into(),
                tracking_number: tracking.into(),
            },
        )
        .await;
    }

    /// (authorized, captured, refunded, voided) at the provider.
    fn books(&self, order: &Order) -> (Money, Money, Money, bool) {
        let p = order.payment.as_ref().unwrap();
        self.payments
            .balance(&ichigen_order::payment::ProviderReference(
                p.reference.clone(),
            ))
            .unwrap()
    }

    async fn count(&self, stream: &str, event_type: &str) -> usize {
        read_whole_stream(self.store.as_ref(), stream)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event_type.starts_with(event_type))
            .count()
    }
}

fn dc_tky(order_id: Uuid) -> Uuid {
    fulfillment_id(order_id, "DC-TKY", FulfillmentKind::Ship, None)
}

fn shibuya_pickup(order_id: Uuid) -> Uuid {
    fulfillment_id(order_id, "S-SHIBUYA", FulfillmentKind::Pickup, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_order_shipped_from_a_dc_consumes_its_stock_and_is_captured_once() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    let order_id = w.place("ship-1", vec![ship("TEE-M", 2)]).await;
    let f = dc_tky(order_id);
    w.created(f).await;
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));

    w.pick(f, &[("L1", 2, 0)]).await;
    w.pack_and_ship(f, "T-1").await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
    // Consumed: on hand and reserved both down by the shipped units.
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (3, 0));
    let p = order.payment.as_ref().unwrap();
    assert_eq!(p.captured, jpy("3980"));
    assert_eq!(w.books(&order).1, jpy("3980"));

    w.run(f, FulfillmentCommand::Deliver).await;
    w.react().await;
    assert_eq!(
        w.order(order_id).await.status(),
        Some(OrderStatus::Delivered)
    );
    // Handling everything again changes nothing.
    w.reactions
        .clone()
        .with_checkpoint("replay-ship")
        .run_until_idle(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (3, 0));
    let order = w.order(order_id).await;
    assert_eq!(order.payment.as_ref().unwrap().captured, jpy("3980"));
    assert_eq!(w.books(&order).1, jpy("3980"));
    let stream = format!("order-{order_id}");
    assert_eq!(w.count(&stream, "PaymentCaptured.").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bopis_order_is_handed_over_with_its_code_and_captured() {
    let w = world().await;
    w.receive("CAP", "S-SHIBUYA", 2).await;
    let order_id = w.place("bopis-1", vec![pickup("CAP", 1)]).await;
    let f = shibuya_pickup(order_id);
    w.created(f).await;
    w.pick(f, &[("L1", 1, 0)]).await;
    w.run(
        f,
        FulfillmentCommand::MarkReady {
            pickup_code: "K7Q2ZX".into(),
        },
    )
    .await;
    w.react().await;
    assert_eq!(
        w.order(order_id).await.status(),
        Some(OrderStatus::ReadyForPickup)
    );
    // The wrong code hands nothing over.
    let wrong = w
        .fulfillment
        .execute(
            f,
            FulfillmentCommand::HandOver {
                pickup_code: "AAAA".into(),
            },
            staff(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        wrong,
        FulfillmentHandlerError::Refused(FulfillmentError::WrongPickupCode)
    ));
    w.run(
        f,
        FulfillmentCommand::HandOver {
            pickup_code: "K7Q2ZX".into(),
        },
    )
    .await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::PickedUp));
    assert_eq!(w.levels("CAP", "S-SHIBUYA").await, (1, 0));
    assert_eq!(order.payment.as_ref().unwrap().captured, jpy("2500"));
    assert_eq!(w.books(&order).1, jpy("2500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bopis_no_show_expires_releases_the_stock_and_voids_the_payment() {
    let w = world().await;
    w.receive("CAP", "S-SHIBUYA", 2).await;
    let order_id = w.place("bopis-2", vec![pickup("CAP", 1)]).await;
    let f = shibuya_pickup(order_id);
    w.created(f).await;
    w.pick(f, &[("L1", 1, 0)]).await;
    w.run(
        f,
        FulfillmentCommand::MarkReady {
            pickup_code: "NOSHOW1".into(),
        },
    )
    .await;
    w.react().await;
    // Wait until the tracker saw the pickup.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.expiry.tracker.is_empty() {
        assert!(std::time::Instant::now() < deadline, "pickup never tracked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Not due within the store's 3 hold days.
    w.clock.advance(Days::days(2));
    assert_eq!(w.expiry.run_once().await.unwrap(), 0);
    w.clock.advance(Days::days(2));
    assert_eq!(w.expiry.run_once().await.unwrap(), 1);
    assert_eq!(w.expiry.run_once().await.unwrap(), 0);
    let (state, _) = w.fulfillment.load(f).await.unwrap();
    assert_eq!(state.status, Some(FulfillmentStatus::Expired));
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(w.levels("CAP", "S-SHIBUYA").await, (2, 0));
    assert!(order.payment.as_ref().unwrap().voided);
    assert!(w.books(&order).3, "voided at the provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_is_resourced_to_another_location() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 2).await;
    w.receive("TEE-M", "DC-OSA", 5).await;
    let order_id = w.place("short-1", vec![ship("TEE-M", 2)]).await;
    let f = dc_tky(order_id);
    w.created(f).await;
    // The shelf was empty.
    w.pick(f, &[("L1", 0, 2)]).await;
    w.react().await;
    let order = w.order(order_id).await;
    let line = order.line("L1").unwrap();
    assert!(line.short_picked.is_empty(), "{:?}", line.short_picked);
    assert_eq!(line.open_at("DC-OSA"), 2);
    // The discrepancy is recorded against the Tokyo DC; Osaka holds the units now.
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (0, 0));
    assert_eq!(w.levels("TEE-M", "DC-OSA").await, (5, 2));
    let adjusted = read_whole_stream(w.store.as_ref(), "inventory-TEE-M@DC-TKY")
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match StockEvent::decode(&e.event_type, &e.data) {
            Some(Ok(StockEvent::StockAdjusted(a))) => Some(a),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(adjusted.len(), 1);
    assert_eq!(
        (adjusted[0].delta, adjusted[0].reason_code.as_str()),
        (-2, "SHORT_PICK")
    );
    // A new fulfillment order at Osaka, which ships.
    let reservation = format!("order:{order_id}/resource:{f}:L1#0");
    let osaka = reassigned_fulfillment_id(order_id, &reservation);
    w.created(osaka).await;
    w.pick(osaka, &[("L1", 2, 0)]).await;
    w.pack_and_ship(osaka, "T-OSA").await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
    assert_eq!(w.levels("TEE-M", "DC-OSA").await, (3, 0));
    assert_eq!(order.payment.as_ref().unwrap().captured, jpy("3980"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_with_no_stock_elsewhere_is_cancelled_and_voided() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 2).await;
    let order_id = w.place("short-2", vec![ship("TEE-M", 2)]).await;
    let f = dc_tky(order_id);
    w.created(f).await;
    w.pick(f, &[("L1", 0, 2)]).await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(order.line("L1").unwrap().cancelled, 2);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (0, 0));
    assert!(order.payment.as_ref().unwrap().voided);
    assert!(w.books(&order).3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_short_pick_cancels_the_missing_unit_and_ships_the_rest() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 3).await;
    let order_id = w.place("short-3", vec![ship("TEE-M", 2)]).await;
    let f = dc_tky(order_id);
    w.created(f).await;
    w.pick(f, &[("L1", 1, 1)]).await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::PartiallyCancelled));
    // One unit less on the shelf, recorded.
    assert_eq!(w.levels("TEE-M", "DC-TKY").await.0, 2);
    w.pack_and_ship(f, "T-2").await;
    w.react().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
    // The shipped unit consumed, the cancelled one released.
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (1, 0));
    let p = order.payment.as_ref().unwrap();
    assert_eq!((p.captured, p.voided), (jpy("1990"), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_shipping_releases_stock_cancels_fulfillment_and_settles_payment() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    w.receive("CAP", "DC-TKY", 5).await;

    // Whole order.
    let whole = w
        .place("cancel-1", vec![ship("TEE-M", 2), ship("CAP", 1)])
        .await;
    w.created(dc_tky(whole)).await;
    w.orders
        .cancel(whole, None, "CUSTOMER_REQUEST", customer())
        .await
        .unwrap();
    w.react().await;
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 0));
    assert_eq!(w.levels("CAP", "DC-TKY").await, (5, 0));
    let (state, _) = w.fulfillment.load(dc_tky(whole)).await.unwrap();
    assert_eq!(state.status, Some(FulfillmentStatus::Cancelled));
    let order = w.order(whole).await;
    assert!(order.payment.as_ref().unwrap().voided);
    assert!(w.books(&order).3);

    // One line of another order.
    let partial = w
        .place("cancel-2", vec![ship("TEE-M", 2), ship("CAP", 1)])
        .await;
    let f = dc_tky(partial);
    w.created(f).await;
    w.orders
        .cancel(
            partial,
            Some(vec![LineQty::new("L2", 1)]),
            "CUSTOMER_REQUEST",
            customer(),
        )
        .await
        .unwrap();
    w.react().await;
    assert_eq!(w.levels("CAP", "DC-TKY").await, (5, 0));
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
    let (state, _) = w.fulfillment.load(f).await.unwrap();
    assert_eq!(
        (state.lines["L1"].qty, state.lines["L2"].qty),
        (2, 0),
        "only the cancelled line left the fulfillment order"
    );
    let order = w.order(partial).await;
    assert_eq!(order.status(), Some(OrderStatus::PartiallyCancelled));
    assert!(!order.payment.as_ref().unwrap().voided);
    // The rest ships and only its value is captured.
    w.pick(f, &[("L1", 2, 0)]).await;
    w.pack_and_ship(f, "T-3").await;
    w.react().await;
    let order = w.order(partial).await;
    assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
    assert_eq!(order.payment.as_ref().unwrap().captured, jpy("3980"));
    assert_eq!(w.books(&order).1, jpy("3980"));
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_reaction_changes_nothing() {
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 2).await;
    w.receive("TEE-M", "DC-OSA", 5).await;
    w.receive("CAP", "S-SHIBUYA", 2).await;
    // A shipment re-sourced after a short pick, a pickup handed over, a pickup cancelled.
    let shipped = w.place("replay-1", vec![ship("TEE-M", 2)]).await;
    let f = dc_tky(shipped);
    w.created(f).await;
    w.pick(f, &[("L1", 0, 2)]).await;
    w.react().await;
    let osaka = reassigned_fulfillment_id(shipped, &format!("order:{shipped}/resource:{f}:L1#0"));
    w.created(osaka).await;
    w.pick(osaka, &[("L1", 2, 0)]).await;
    w.pack_and_ship(osaka, "T-R").await;
    let picked_up = w.place("replay-2", vec![pickup("CAP", 1)]).await;
    let p = shibuya_pickup(picked_up);
    w.created(p).await;
    w.pick(p, &[("L1", 1, 0)]).await;
    w.run(
        p,
        FulfillmentCommand::MarkReady {
            pickup_code: "RPLY1".into(),
        },
    )
    .await;
    w.react().await;
    w.run(
        p,
        FulfillmentCommand::HandOver {
            pickup_code: "RPLY1".into(),
        },
    )
    .await;
    let cancelled = w.place("replay-3", vec![pickup("CAP", 1)]).await;
    w.created(shibuya_pickup(cancelled)).await;
    w.orders
        .cancel(cancelled, None, "CUSTOMER_REQUEST", customer())
        .await
        .unwrap();
    w.react().await;

    let snapshot = || async {
        let mut s = Vec::new();
        for (sku, loc) in [
            ("TEE-M", "DC-TKY"),
            ("TEE-M", "DC-OSA"),
            ("CAP", "S-SHIBUYA"),
        ] {
            let item = w.inventory.stock.load(sku, loc).await.unwrap();
            s.push(format!("{sku}@{loc}: {} {}", item.on_hand, item.reserved));
        }
        for id in [shipped, picked_up, cancelled] {
            let stream = format!("order-{id}");
            let n = read_whole_stream(w.store.as_ref(), &stream)
                .await
                .unwrap()
                .len();
            let order = w.order(id).await;
            s.push(format!(
                "{stream}: {n} {:?} {:?}",
                order.status(),
                w.books(&order)
            ));
        }
        for id in [f, osaka, p, shibuya_pickup(cancelled)] {
            let stream = format!("fulfillment-{id}");
            let n = read_whole_stream(w.store.as_ref(), &stream)
                .await
                .unwrap()
                .len();
            s.push(format!("{stream}: {n}"));
        }
        s
    };
    let before = snapshot().await;
    assert!(
        before.iter().any(|l| l.contains("Some(Fulfilled)")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|l| l.contains("Some(PickedUp)")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|l| l.contains("Some(Cancelled)")),
        "{before:?}"
    );
    // A lost checkpoint: every event handled again, twice.
    for name in ["replay-a", "replay-b"] {
        let handled = w
            .reactions
            .clone()
            .with_checkpoint(name)
            .run_until_idle(Duration::from_millis(300))
            .await
            .unwrap();
        assert!(handled > 10, "replayed {handled}");
        assert_eq!(snapshot().await, before);
    }
    assert_eq!(
        w.count(&format!("order-{shipped}"), "PaymentCaptured.")
            .await,
        1
    );
    assert_eq!(
        w.count(&format!("order-{picked_up}"), "PaymentCaptured.")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_cut_off_after_the_fulfillment_decided_is_recorded_by_the_reaction() {
    use ichigen_order::ports::{UnitsToCancel, WorkKind};
    let w = world().await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    let id = w.place("cut-off", vec![ship("TEE-M", 2)]).await;
    // The fulfillment order decides the cancellation before the intake even created it …
    let units = [UnitsToCancel {
        line_id: "L1".into(),
        location: "DC-TKY".into(),
        work: WorkKind::Ship,
        reservation_id: format!("order:{id}#0"),
        qty: 2,
    }];
    let port = w.orders.fulfillment().unwrap().clone();
    let outcomes = port
        .cancel_units(id, &units, "CUSTOMER_REQUEST", "op-cut", customer())
        .await
        .unwrap();
    assert_eq!(outcomes[0].cancelled, 2);
    // … and the process stops before the order records it. Asking again answers the same.
    let again = port
        .cancel_units(id, &units, "CUSTOMER_REQUEST", "op-cut", customer())
        .await
        .unwrap();
    assert_eq!(again, outcomes);
    let (state, _) = w.fulfillment.load(dc_tky(id)).await.unwrap();
    assert_eq!(state.status, Some(FulfillmentStatus::Cancelled));
    assert_eq!(w.order(id).await.status(), Some(OrderStatus::Placed));
    // The order's reaction to the fulfillment's event records it, releases and voids.
    w.react().await;
    let order = w.order(id).await;
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert!(order.payment.as_ref().unwrap().voided);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 0));
    assert_eq!(
        w.count(&format!("order-{id}"), "OrderLinesCancelled").await,
        1
    );
    // A retried request finds nothing left to cancel; the intake's own create changes nothing.
    let retried = w
        .orders
        .cancel(id, None, "CUSTOMER_REQUEST", customer())
        .await
        .unwrap();
    assert!(retried.executed.events.is_empty());
    w.react().await;
    assert_eq!(
        w.count(&format!("fulfillment-{}", dc_tky(id)), "FulfillmentCreated")
            .await,
        1
    );
}
