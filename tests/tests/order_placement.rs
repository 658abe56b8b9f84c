//! Placing orders in process on the real services (embedded store, inventory, catalog, the
//! manual payment provider): pricing from the catalog, sourcing across locations, all-or-nothing
//! reservations, idempotent retries, declines, and a race for the last units.

use ichigen_gateway::wiring::InProcessInventory;
use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::InventoryService;
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::Channel;
use ichigen_order::domain::sourcing::Delivery;
use ichigen_order::handlers::order::{
    order_id_for, reservation_id, LineRequest, OrderHandlers, PlaceError, PlaceRequest, HOLD,
};
use ichigen_order::payment::ManualProvider;
use ichigen_order::ports::{InventoryPort, ReservationRequest};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::{ManualClock, SystemClock};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    inventory: InventoryService,
    orders: OrderHandlers,
    /// The order handlers' clock (the sweep of unrecorded placements reads it).
    clock: ManualClock,
}

fn customer(id: &str) -> Metadata {
    Metadata::new(Actor {
        role: Role::Customer,
        subject: id.into(),
        store_id: None,
    })
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

/// A Tokyo DC, a Shibuya store (pickup, ship from store), an Osaka DC; two SKUs priced in JPY.
async fn world(decline_above: Option<i64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(SystemClock);
    let inventory = InventoryService::start(store.clone(), clock.clone());
    let catalog = CatalogService::start(store.clone(), clock.clone());
    let admin = || Metadata::new(Actor::system("test"));
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
            .execute(LocationCommand::Define(s), admin())
            .await
            .unwrap();
    }
    let mut last = None;
    for (sku, title, price) in [("TEE-M", "Tee M", "1990"), ("CAP", "Cap", "2500")] {
        let accepted = catalog
            .handlers
            .execute(
                sku,
                CatalogCommand::Upsert(ItemSpec {
                    title: title.into(),
                    price: Money::parse(price, "JPY").unwrap(),
                    attributes: Default::default(),
                    active: true,
                }),
                admin(),
            )
            .await
            .unwrap();
        last = accepted.position.or(last);
    }
    catalog.wait_for(last).await.unwrap();
    let payments = match decline_above {
        Some(limit) => ManualProvider::with_decline_above(limit.into()),
        None => ManualProvider::new(),
    };
    let order_clock = ManualClock::new(chrono::Utc::now());
    let orders = OrderHandlers::new(
        store,
        catalog.view.clone(),
        Arc::new(InProcessInventory(inventory.clone())),
        Arc::new(payments),
        Arc::new(order_clock.clone()),
    );
    World {
        _dir: dir,
        inventory,
        orders,
        clock: order_clock,
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
                Metadata::new(Actor::system("test")),
            )
            .await
            .unwrap();
        self.inventory.wait_for(accepted.position).await.unwrap();
    }

    /// Waits until the inventory view has the last stock event. (It follows inventory streams
    /// only, so the store's head, an order's event, is a position it never takes.)
    async fn stock_settled(&self) {
        let all = self.inventory.store.read_all(None, 100_000).await.unwrap();
        let last_stock = all
            .iter()
            .rev()
            .find(|e| e.stream.starts_with("inventory-"))
            .map(|e| e.position);
        self.inventory.wait_for(last_stock).await.unwrap();
    }

    async fn levels(&self, sku: &str, location: &str) -> (i64, i64) {
        let item = self.inventory.stock.load(sku, location).await.unwrap();
        (item.on_hand, item.reserved)
    }
}

fn ship_to_tokyo(sku: &str, qty: i64) -> LineRequest {
    LineRequest {
        sku: sku.into(),
        qty,
        delivery: Delivery::Ship {
            lat: 35.68,
            lon: 139.76,
        },
    }
}

fn request(key: &str, lines: Vec<LineRequest>) -> PlaceRequest {
    PlaceRequest {
        customer_id: Some("c-1".into()),
        channel: Channel::Web,
        lines,
        allow_partial: false,
        idempotency_key: key.into(),
        credit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_priced_sourced_reserved_and_authorized_once() {
    let w = world(None).await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    w.receive("CAP", "DC-TKY", 1).await;
    w.receive("CAP", "DC-OSA", 9).await;
    let req = request(
        "k-1",
        vec![ship_to_tokyo("TEE-M", 2), ship_to_tokyo("CAP", 1)],
    );
    let placed = w.orders.place(req.clone(), customer("c-1")).await.unwrap();
    assert!(!placed.replayed);
    let header = placed.order.header.as_ref().unwrap();
    // Priced from the catalog: 2 × 1990 + 2500.
    assert_eq!(header.total, Money::parse("6480", "JPY").unwrap());
    // One shipment from the Tokyo DC, which has both.
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
    assert_eq!(w.levels("CAP", "DC-TKY").await, (1, 1));
    assert_eq!(w.levels("CAP", "DC-OSA").await, (9, 0));
    // The retry is answered with the same order and reserves nothing more.
    let again = w.orders.place(req.clone(), customer("c-1")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order_id, placed.order_id);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
    // The same key with another body is refused and changes nothing.
    let other = request("k-1", vec![ship_to_tokyo("TEE-M", 3)]);
    let err = w.orders.place(other, customer("c-1")).await.unwrap_err();
    assert!(
        matches!(&err, PlaceError::Order(e) if e.code() == "CONFLICT" || e.field() == Some("idempotencyKey")),
        "{err}"
    );
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
}

/// A placement reads the order stream only when its owner still holds stock: a retry of an
/// order whose holds are all closed is first taken for a new order, and must still be
/// answered with the recorded order and leave no stock held, also when the stock it would
/// take is gone, and be refused with the key's other request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_orders_holds_closed_replays_and_holds_nothing() {
    use ichigen_order::ports::ReservationRef;
    let w = world(None).await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    let req = request("k-closed", vec![ship_to_tokyo("TEE-M", 2)]);
    let placed = w.orders.place(req.clone(), customer("c-1")).await.unwrap();
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
    // The order's holds are released (as the reactions do after a cancellation).
    let refs: Vec<ReservationRef> = placed
        .order
        .lines
        .iter()
        .flat_map(|l| {
            l.allocations.iter().map(|a| ReservationRef {
                reservation_id: a.reservation_id.clone(),
                sku: l.sku.clone(),
                location: a.location.clone(),
            })
        })
        .collect();
    w.orders
        .inventory()
        .release(&refs, Metadata::new(Actor::system("test")))
        .await
        .unwrap();
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 0));
    w.stock_settled().await;
    // The retry: the recorded order, nothing held.
    let again = w.orders.place(req.clone(), customer("c-1")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order_id, placed.order_id);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 0));
    // Another order takes all the stock: the retry still gets its order, not a shortage.
    w.orders
        .place(
            request("k-all", vec![ship_to_tokyo("TEE-M", 5)]),
            customer("c-1"),
        )
        .await
        .unwrap();
    w.stock_settled().await;
    let third = w.orders.place(req, customer("c-1")).await.unwrap();
    assert!(third.replayed);
    assert_eq!(third.order_id, placed.order_id);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 5));
    // The key with another request is refused, and holds nothing.
    let other = request("k-closed", vec![ship_to_tokyo("TEE-M", 1)]);
    let err = w.orders.place(other, customer("c-1")).await.unwrap_err();
    assert!(
        matches!(&err, PlaceError::Order(e) if e.field() == Some("idempotencyKey")),
        "{err}"
    );
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortages_unknown_skus_and_declines_leave_nothing_reserved() {
    let w = world(Some(10_000)).await;
    w.receive("TEE-M", "DC-TKY", 3).await;
    w.receive("CAP", "DC-TKY", 10).await;
    // More than the network has: a typed shortage naming the line; nothing reserved.
    let err = w
        .orders
        .place(
            request(
                "k-2",
                vec![ship_to_tokyo("CAP", 1), ship_to_tokyo("TEE-M", 4)],
            ),
            customer("c-2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlaceError::Sourcing(_)), "{err}");
    assert_eq!(w.levels("CAP", "DC-TKY").await, (10, 0));
    // Not in the catalog.
    let err = w
        .orders
        .place(
            request("k-3", vec![ship_to_tokyo("NOPE", 1)]),
            customer("c-2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlaceError::Catalog { index: 0, .. }), "{err}");
    // Declined above 10,000 JPY: 5 caps = 12,500; the holds are released.
    let err = w
        .orders
        .place(
            request("k-4", vec![ship_to_tokyo("CAP", 5)]),
            customer("c-2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlaceError::Payment(_)), "{err}");
    assert_eq!(w.levels("CAP", "DC-TKY").await, (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_for_the_last_units_never_oversell() {
    let w = Arc::new(world(None).await);
    w.receive("TEE-M", "DC-TKY", 3).await;
    w.receive("TEE-M", "S-SHIBUYA", 2).await;
    // 24 customers each want 1; 5 exist in the network.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.orders
                    .place(
                        request(&format!("race-{i}"), vec![ship_to_tokyo("TEE-M", 1)]),
                        customer(&format!("c-{i}")),
                    )
                    .await
            })
        })
        .collect();
    let mut placed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(PlaceError::Sourcing(_) | PlaceError::Inventory(_)) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    // A loser may lose twice to a view a moment behind the stock; whatever the race left is
    // then still for sale, so sell on until the network refuses: exactly the stock is sold.
    assert!(placed <= 5, "oversold: {placed}");
    w.stock_settled().await;
    for i in 0.. {
        let r = w
            .orders
            .place(
                request(&format!("after-{i}"), vec![ship_to_tokyo("TEE-M", 1)]),
                customer("late"),
            )
            .await;
        match r {
            Ok(_) => {
                placed += 1;
                w.stock_settled().await;
            }
            Err(PlaceError::Sourcing(_)) => break,
            Err(other) => panic!("unexpected: {other}"),
        }
        assert!(i < 5, "sold more than the stock");
    }
    assert_eq!(placed, 5);
    let (dc_on_hand, dc_reserved) = w.levels("TEE-M", "DC-TKY").await;
    let (st_on_hand, st_reserved) = w.levels("TEE-M", "S-SHIBUYA").await;
    assert!(dc_reserved <= dc_on_hand && st_reserved <= st_on_hand);
    assert_eq!(dc_reserved + st_reserved, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placed_orders_become_fulfillment_orders_exactly_once() {
    use ichigen_fulfillment::domain::{FulfillmentKind, FulfillmentStatus};
    use ichigen_fulfillment::handlers::FulfillmentHandlers;
    use ichigen_fulfillment::process::order_intake::{fulfillment_id, OrderIntake};
    let w = world(None).await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    w.receive("CAP", "S-SHIBUYA", 2).await;
    let lines = vec![
        ship_to_tokyo("TEE-M", 2),
        LineRequest {
            sku: "CAP".into(),
            qty: 1,
            delivery: Delivery::Pickup {
                store: "S-SHIBUYA".into(),
            },
        },
    ];
    let placed = w
        .orders
        .place(request("k-f", lines), customer("c-1"))
        .await
        .unwrap();
    let store = w.inventory.store.clone();
    let handlers = FulfillmentHandlers::new(store.clone(), Arc::new(SystemClock));
    let hold_days: ichigen_fulfillment::process::order_intake::HoldDays =
        Arc::new(|_| ichigen_fulfillment::process::order_intake::PickupHold {
            days: 3,
            time_zone: None,
        });
    let intake = OrderIntake::new(store.clone(), handlers.clone(), hold_days);
    let task = intake.clone().spawn();
    let ship = fulfillment_id(placed.order_id, "DC-TKY", FulfillmentKind::Ship, None);
    let pickup = fulfillment_id(placed.order_id, "S-SHIBUYA", FulfillmentKind::Pickup, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (a, _) = handlers.load(ship).await.unwrap();
        let (b, _) = handlers.load(pickup).await.unwrap();
        if a.created.is_some() && b.created.is_some() {
            assert_eq!(a.status, Some(FulfillmentStatus::Open));
            assert_eq!(a.lines["L1"].qty, 2);
            assert_eq!(
                b.lines["L2"].reservation_id,
                format!("order:{}#1", placed.order_id)
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "intake never created them"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    // Handling the same OrderPlaced again (a crash before the checkpoint, a replay) creates
    // nothing new.
    let order_events = store
        .read_stream(&format!("order-{}", placed.order_id), 0, 10)
        .await
        .unwrap();
    let placed_event = order_events
        .iter()
        .find(|e| e.event_type.starts_with("OrderPlaced."))
        .unwrap();
    let again = intake.handle(placed_event).await.unwrap();
    assert_eq!(again.len(), 2);
    for id in [ship, pickup] {
        let events = store
            .read_stream(&format!("fulfillment-{id}"), 0, 10)
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "created once: {id}");
    }
    // A restarted intake resumes after its checkpoint and creates nothing either.
    let head = store.head().await.unwrap();
    let task = intake.spawn();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    task.abort();
    assert_eq!(store.head().await.unwrap(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sourcing_respects_what_a_location_has_left_of_its_daily_capacity() {
    let w = world(None).await;
    // A small DC next door with room for one order a day.
    let mut small = spec(
        "DC-SMALL",
        LocationKind::Dc,
        35.681,
        139.767,
        &[Capability::Ship],
    );
    small.daily_capacity = Some(1);
    w.inventory
        .locations
        .execute(
            LocationCommand::Define(small),
            Metadata::new(Actor::system("t")),
        )
        .await
        .unwrap();
    w.receive("TEE-M", "DC-SMALL", 10).await;
    w.receive("TEE-M", "DC-TKY", 10).await;
    let orders = w.orders.clone();
    let first = orders
        .place(
            request("cap-1", vec![ship_to_tokyo("TEE-M", 1)]),
            customer("c-1"),
        )
        .await
        .unwrap();
    let loc = |p: &ichigen_order::handlers::order::Placed| {
        p.order.lines[0].allocations[0].location.clone()
    };
    assert_eq!(loc(&first), "DC-SMALL", "the nearest location first");
    // No waiting for any view: the claim decides, and a refused claim re-sources.
    let second = orders
        .place(
            request("cap-2", vec![ship_to_tokyo("TEE-M", 1)]),
            customer("c-2"),
        )
        .await
        .unwrap();
    assert_eq!(loc(&second), "DC-TKY", "DC-SMALL took its one order today");
    let skipped = &second.order.header.as_ref().unwrap().sourcing[0];
    assert!(
        format!("{skipped:?}").contains("NoCapacity"),
        "the explanation says why: {skipped:?}"
    );
}

/// Open holds under `order:` once the hold tracker shows `n` of them.
async fn order_holds(w: &World, n: usize) {
    let port = InProcessInventory(w.inventory.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let holds = port.holds_of("order:").await.unwrap();
        if holds.len() == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} order holds, the tracker shows {holds:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A placement cut off between its reservation and its record, and never retried, leaves holds
/// without an expiry: the sweep frees them once they are older than HOLD, and never touches the
/// holds of a recorded order.
#[tokio::test]
async fn holds_of_a_placement_never_recorded_are_released_by_the_sweep() {
    let w = world(None).await;
    w.receive("TEE-M", "DC-TKY", 5).await;
    w.orders
        .place(
            request("kept", vec![ship_to_tokyo("TEE-M", 2)]),
            customer("c-1"),
        )
        .await
        .unwrap();
    // The cut-off placement: reserved as place() reserves, but no OrderPlaced.
    let owner = format!("order:{}", order_id_for("c-2", "lost"));
    InProcessInventory(w.inventory.clone())
        .reserve(
            &owner,
            &[ReservationRequest {
                reservation_id: reservation_id(&owner, 0),
                sku: "TEE-M".into(),
                location: "DC-TKY".into(),
                qty: 1,
            }],
            None,
            customer("c-2"),
        )
        .await
        .unwrap();
    order_holds(&w, 2).await;
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 3));
    let sweep = || Metadata::new(Actor::system("test-sweep"));

    // Younger than HOLD: it may still be a placement in flight.
    assert_eq!(w.orders.release_unrecorded_holds(sweep()).await.unwrap(), 0);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 3));

    w.clock.advance(HOLD + chrono::Duration::minutes(1));
    assert_eq!(w.orders.release_unrecorded_holds(sweep()).await.unwrap(), 1);
    assert_eq!(
        w.levels("TEE-M", "DC-TKY").await,
        (5, 2),
        "the order's 2 stay held"
    );
    order_holds(&w, 1).await;
    assert_eq!(w.orders.release_unrecorded_holds(sweep()).await.unwrap(), 0);
    assert_eq!(w.levels("TEE-M", "DC-TKY").await, (5, 2));
}
