use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, ExpectedRevision};
use proptest::prelude::*;
use tokio::sync::broadcast::error::TryRecvError;
use uuid::Uuid;

use super::*;
use crate::domain::location::{
    LocationActivated, LocationDeactivated, LocationDefined, LocationUpdated,
};
use crate::domain::stock::*;
use crate::domain::{
    decide, location_stream_name, stream_name, Address, LocationPatch, LocationSpec, StockCommand,
    StockItem,
};

/// Hands out increasing positions, like the store.
#[derive(Default)]
struct Feed {
    seq: u64,
}

impl Feed {
    fn raw(&mut self, stream: &str, event_type: &str, data: &[u8]) -> RecordedEvent {
        self.seq += 1;
        RecordedEvent {
            id: Uuid::new_v4(),
            stream: Arc::from(stream),
            revision: 0,
            position: Position::sequence(self.seq),
            event_type: Arc::from(event_type),
            data: Arc::from(data),
            metadata: Metadata::new(Actor::system("test")),
        }
    }

    fn stock(&mut self, sku: &str, location: &str, event: impl Into<StockEvent>) -> RecordedEvent {
        let event = event.into();
        let data = event.payload_json().unwrap();
        self.raw(&stream_name(sku, location), event.event_type(), &data)
    }

    fn location(&mut self, code: &str, event: LocationEvent) -> RecordedEvent {
        let data = event.payload_json().unwrap();
        self.raw(&location_stream_name(code), event.event_type(), &data)
    }

    fn define(
        &mut self,
        code: &str,
        kind: LocationKind,
        caps: &[Capability],
        lat: f64,
        lon: f64,
    ) -> RecordedEvent {
        self.location(
            code,
            LocationEvent::LocationDefined(LocationDefined {
                spec: spec(code, kind, caps, lat, lon),
            }),
        )
    }

    fn receive(&mut self, sku: &str, location: &str, qty: i64) -> RecordedEvent {
        self.stock(
            sku,
            location,
            GoodsReceived {
                qty,
                reference: None,
            },
        )
    }
}

fn spec(code: &str, kind: LocationKind, caps: &[Capability], lat: f64, lon: f64) -> LocationSpec {
    LocationSpec {
        code: code.into(),
        name: format!("Location {code}"),
        kind,
        address: Address {
            line1: "1-1".into(),
            city: "Tokyo".into(),
            postal_code: "100-0001".into(),
            country: "JP".into(),
        },
        lat,
        lon,
        time_zone: "Asia/Tokyo".into(),
        capabilities: caps.iter().copied().collect(),
        pickup_hold_days: 7,
        daily_capacity: Some(100),
    }
}

fn reserve(id: &str, qty: i64) -> Reserved {
    Reserved {
        reservation_id: id.into(),
        owner: format!("cart:{id}"),
        qty,
        expires_at: None,
    }
}

fn codes(list: &[LocationAvailability]) -> Vec<&str> {
    list.iter().map(|l| l.location.as_str()).collect()
}

use Capability::{Pickup, Ship, ShipFromStore};
use LocationKind::{Dc, Store};

#[test]
fn every_event_kind_moves_the_buckets_like_stock_item() {
    let history: Vec<StockEvent> = vec![
        GoodsReceived {
            qty: 100,
            reference: Some("PO-1".into()),
        }
        .into(),
        StockAdjusted {
            delta: -5,
            reason_code: "DAMAGE".into(),
            reference: None,
        }
        .into(),
        IncomingExpected {
            qty: 30,
            transfer_id: "T1".into(),
            from_location: None,
        }
        .into(),
        TransferReceived {
            qty: 20,
            transfer_id: "T1".into(),
            incoming_cleared: 20,
            from_location: None,
        }
        .into(),
        ReturnReceived {
            qty: 3,
            rma_id: "RMA-1".into(),
            key: "RMA-1/U1".into(),
        }
        .into(),
        ReturnWrittenOff {
            qty: 2,
            rma_id: "RMA-1".into(),
            key: "RMA-1/U2".into(),
            disposition: "DISPOSE".into(),
            reason: "BROKEN".into(),
        }
        .into(),
        StockMovedToNonSellable {
            qty: 4,
            reason: "QC".into(),
        }
        .into(),
        StockMovedToSellable { qty: 1 }.into(),
        SafetyStockSet { qty: 10 }.into(),
        reserve("r1", 15).into(),
        reserve("r2", 5).into(),
        ReservationConfirmed {
            reservation_id: "r1".into(),
        }
        .into(),
        ReservationConsumed {
            reservation_id: "r1".into(),
            qty: 5,
        }
        .into(),
        ReservationReleased {
            reservation_id: "r2".into(),
            qty: 5,
        }
        .into(),
        reserve("r3", 7).into(),
        ReservationExpired {
            reservation_id: "r3".into(),
            qty: 7,
        }
        .into(),
        TransferShipped {
            qty: 8,
            to_location: "DC-2".into(),
            transfer_id: "T2".into(),
        }
        .into(),
        CycleCounted {
            counted: 90,
            delta: -15,
            shortfall: 0,
            reference: None,
        }
        .into(),
        OnHandSet {
            expected_on_hand: 90,
            new_on_hand: 85,
            delta: -5,
            shortfall: 0,
        }
        .into(),
        SafetyStockSet { qty: 80 }.into(),
    ];
    let kinds: BTreeSet<&str> = history.iter().map(|e| e.event_type()).collect();
    assert_eq!(kinds.len(), 17, "every StockEvent kind is exercised");

    let view = InventoryView::new();
    let mut feed = Feed::default();
    for (i, event) in history.iter().enumerate() {
        view.apply(&[feed.stock("SKU-1", "DC-1", event.clone())]);
        let expected = StockLevels::of(&StockItem::from_events(&history[..=i]));
        assert_eq!(
            view.levels("SKU-1", "DC-1"),
            Some(expected),
            "after {event:?}"
        );
    }
    // The end state, spelled out: 85 on hand, r1's 10 still reserved, safety stock above
    // what is free so nothing is available.
    assert_eq!(
        view.levels("SKU-1", "DC-1"),
        Some(StockLevels {
            on_hand: 85,
            reserved: 10,
            safety_stock: 80,
            available: 0,
            incoming: 10,
            non_sellable: 3,
        })
    );
    assert_eq!(view.levels("SKU-1", "DC-2"), None);
    assert_eq!(view.levels("SKU-2", "DC-1"), None);
    assert_eq!((view.row_count(), view.sku_count()), (1, 1));
}

#[derive(Debug, Clone)]
enum Op {
    Receive(i64),
    Adjust(i64),
    Count(i64),
    Cas(i64),
    TransferOut(i64),
    Expect(i64),
    TransferIn(i64),
    Return(u8, i64),
    WriteOff(u8, i64),
    ToNonSellable(i64),
    ToSellable(i64),
    Safety(i64),
    Reserve(u8, i64, Option<i64>),
    Confirm(u8),
    Release(u8),
    Consume(u8, i64),
    /// Advance the clock by this many minutes, then expire.
    Expire(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let qty = 1i64..40;
    prop_oneof![
        2 => qty.clone().prop_map(Op::Receive),
        1 => (-30i64..30).prop_map(Op::Adjust),
        1 => (0i64..60).prop_map(Op::Count),
        1 => (0i64..60).prop_map(Op::Cas),
        1 => qty.clone().prop_map(Op::TransferOut),
        1 => qty.clone().prop_map(Op::Expect),
        1 => qty.clone().prop_map(Op::TransferIn),
        1 => (0u8..6, qty.clone()).prop_map(|(n, q)| Op::Return(n, q)),
        1 => (0u8..6, qty.clone()).prop_map(|(n, q)| Op::WriteOff(n, q)),
        1 => qty.clone().prop_map(Op::ToNonSellable),
        1 => qty.clone().prop_map(Op::ToSellable),
        1 => (0i64..20).prop_map(Op::Safety),
        4 => (0u8..8, 1i64..15, proptest::option::of(1i64..120))
            .prop_map(|(id, q, e)| Op::Reserve(id, q, e)),
        1 => (0u8..8).prop_map(Op::Confirm),
        2 => (0u8..8).prop_map(Op::Release),
        2 => (0u8..8, 1i64..10).prop_map(|(id, q)| Op::Consume(id, q)),
        1 => (0i64..90).prop_map(Op::Expire),
    ]
}

fn command(op: &Op, on_hand: i64, now: chrono::DateTime<Utc>) -> StockCommand {
    let id = |n: &u8| format!("r{n}");
    match op {
        Op::Receive(q) => StockCommand::ReceiveGoods {
            qty: *q,
            reference: None,
        },
        Op::Adjust(d) => StockCommand::Adjust {
            delta: *d,
            reason_code: "PROP".into(),
            reference: None,
        },
        Op::Count(c) => StockCommand::CountCycle {
            counted: *c,
            reference: None,
        },
        Op::Cas(n) => StockCommand::CompareAndSet {
            expected_on_hand: on_hand,
            new_on_hand: *n,
        },
        Op::TransferOut(q) => StockCommand::TransferOut {
            qty: *q,
            to_location: "DC-9".into(),
            transfer_id: "T".into(),
        },
        Op::Expect(q) => StockCommand::ExpectIncoming {
            qty: *q,
            transfer_id: "T".into(),
            from_location: "DC-2".into(),
        },
        Op::TransferIn(q) => StockCommand::TransferIn {
            qty: *q,
            transfer_id: "T".into(),
        },
        Op::Return(n, q) => StockCommand::ReceiveReturn {
            qty: *q,
            rma_id: "rma".into(),
            key: format!("rma/u{n}"),
        },
        Op::WriteOff(n, q) => StockCommand::WriteOffReturn {
            qty: *q,
            rma_id: "rma".into(),
            key: format!("rma/u{n}"),
            disposition: "RETURN_TO_VENDOR".into(),
            reason: "PROP".into(),
        },
        Op::ToNonSellable(q) => StockCommand::MoveToNonSellable {
            qty: *q,
            reason: "QC".into(),
        },
        Op::ToSellable(q) => StockCommand::MoveToSellable { qty: *q },
        Op::Safety(q) => StockCommand::SetSafetyStock { qty: *q },
        Op::Reserve(n, q, e) => StockCommand::Reserve {
            reservation_id: id(n),
            owner: format!("cart:{n}"),
            qty: *q,
            expires_at: e.map(|m| now + chrono::Duration::minutes(m)),
        },
        Op::Confirm(n) => StockCommand::Confirm {
            reservation_id: id(n),
        },
        Op::Release(n) => StockCommand::Release {
            reservation_id: id(n),
        },
        Op::Consume(n, q) => StockCommand::Consume {
            reservation_id: id(n),
            qty: *q,
        },
        Op::Expire(_) => StockCommand::ExpireReservations,
    }
}

const PROP_SKUS: [&str; 2] = ["SKU-A", "SKU-B"];
const PROP_LOCATIONS: [&str; 3] = ["DC-1", "ST-1", "ST-2"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random valid histories (commands decided against a StockItem per SKU × location),
    /// applied in random batch sizes: every row equals the StockItem fold, and the network
    /// totals are the per-location sums over the active locations.
    #[test]
    fn buckets_match_stock_item_for_random_histories(
        ops in proptest::collection::vec((0usize..6, op()), 1..120),
        batch in 1usize..20,
        st2_inactive in any::<bool>(),
    ) {
        let mut now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut items: HashMap<(usize, usize), StockItem> = HashMap::new();
        let mut feed = Feed::default();
        let mut recorded = vec![
            feed.define("DC-1", Dc, &[Ship], 35.0, 139.0),
            feed.define("ST-1", Store, &[Pickup], 35.1, 139.1),
            feed.define("ST-2", Store, &[Pickup, ShipFromStore], 35.2, 139.2),
        ];
        if st2_inactive {
            recorded.push(feed.location(
                "ST-2",
                LocationEvent::LocationDeactivated(LocationDeactivated { code: "ST-2".into() }),
            ));
        }
        for (target, op) in &ops {
            if let Op::Expire(m) = op {
                now += chrono::Duration::minutes(*m);
            }
            let key = (target % 2, target / 2);
            // A row exists once an event of it was stored.
            let mut item = items.get(&key).cloned().unwrap_or_default();
            let Ok(events) = decide(&item, &command(op, item.on_hand, now), now) else {
                continue;
            };
            if events.is_empty() {
                continue;
            }
            for event in events {
                item.apply(&event);
                recorded.push(feed.stock(PROP_SKUS[key.0], PROP_LOCATIONS[key.1], event));
            }
            items.insert(key, item);
        }
        let view = InventoryView::new();
        for chunk in recorded.chunks(batch) {
            view.apply(chunk);
        }
        for (s, sku) in PROP_SKUS.iter().enumerate() {
            let mut totals = StockLevels {
                on_hand: 0, reserved: 0, safety_stock: 0, available: 0, incoming: 0, non_sellable: 0,
            };
            for (l, location) in PROP_LOCATIONS.iter().enumerate() {
                let expected = items.get(&(s, l)).map(StockLevels::of);
                prop_assert_eq!(view.levels(sku, location), expected);
                if let Some(e) = expected {
                    if !(st2_inactive && *location == "ST-2") {
                        totals.on_hand += e.on_hand;
                        totals.reserved += e.reserved;
                        totals.safety_stock += e.safety_stock;
                        totals.available += e.available;
                        totals.incoming += e.incoming;
                        totals.non_sellable += e.non_sellable;
                    }
                }
            }
            let seen = (0..3).any(|l| items.contains_key(&(s, l)));
            prop_assert_eq!(view.network_totals(sku), seen.then_some(totals));
        }
        prop_assert_eq!(view.row_count(), items.len());
    }
}

#[test]
fn undecodable_events_are_skipped_without_panicking() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    view.apply(&[
        feed.raw("inventory-SKU-1@DC-1", "GoodsReceived.v1", b"{not json"),
        feed.raw(
            "inventory-SKU-1@DC-1",
            "GoodsReceived.v1",
            br#"{"qty":"many"}"#,
        ),
        feed.raw("inventory-SKU-1@DC-1", "Mystery.v1", b"{}"),
        feed.raw("inventory-SKU-1", "GoodsReceived.v1", br#"{"qty":1}"#),
        feed.raw("inventory-@DC-1", "GoodsReceived.v1", br#"{"qty":1}"#),
        feed.raw("inventory-SKU-1@", "GoodsReceived.v1", br#"{"qty":1}"#),
        feed.raw("location-DC-1", "LocationDefined.v1", b"[]"),
        feed.raw("location-DC-1", "LocationRenamed.v1", b"{}"),
        feed.raw("location-", "LocationActivated.v1", br#"{"code":""}"#),
        feed.raw("order-1", "OrderPlaced.v1", b"{}"),
        feed.raw("noprefix", "X.v1", b"{}"),
    ]);
    assert_eq!((view.row_count(), view.sku_count()), (0, 0));
    assert!(view.locations().is_empty());
    // A good event in the same batch as bad ones still applies.
    view.apply(&[
        feed.raw("inventory-SKU-1@DC-1", "GoodsReceived.v1", b"{oops"),
        feed.receive("SKU-1", "DC-1", 4),
    ]);
    assert_eq!(view.levels("SKU-1", "DC-1").map(|l| l.on_hand), Some(4));
    // SKU split at the first '@'.
    view.apply(&[feed.raw("inventory-SKU-2@ST@X", "GoodsReceived.v1", br#"{"qty":2}"#)]);
    assert_eq!(view.levels("SKU-2", "ST@X").map(|l| l.on_hand), Some(2));
}

/// The network used by the channel tests.
fn network(view: &InventoryView, feed: &mut Feed) {
    view.apply(&[
        feed.define("DC-1", Dc, &[Ship], 35.0, 139.0),
        feed.define("DC-2", Dc, &[Ship], 34.0, 135.0),
        feed.location(
            "DC-2",
            LocationEvent::LocationDeactivated(LocationDeactivated {
                code: "DC-2".into(),
            }),
        ),
        feed.define("ST-A", Store, &[Pickup, ShipFromStore], 35.1, 139.1),
        feed.define("ST-B", Store, &[Pickup], 35.2, 139.2),
        feed.define("ST-C", Store, &[ShipFromStore], 35.3, 139.3),
        feed.receive("SKU-1", "ST-C", 5),
        feed.receive("SKU-1", "DC-1", 10),
        feed.receive("SKU-1", "DC-2", 7),
        feed.receive("SKU-1", "ST-A", 3),
        feed.receive("SKU-1", "ST-B", 4),
        // A location the view has no definition for: never active.
        feed.receive("SKU-1", "ST-Z", 9),
        // SKU-2: all of DC-1's stock promised.
        feed.receive("SKU-2", "DC-1", 5),
        feed.stock("SKU-2", "DC-1", reserve("r1", 5)),
    ]);
}

#[test]
fn online_counts_active_shipping_locations_only() {
    let view = InventoryView::new();
    network(&view, &mut Feed::default());
    let online = view.availability("SKU-1", &Channel::Online);
    // DC-1 (SHIP), ST-A and ST-C (SHIP_FROM_STORE); not DC-2 (inactive), ST-B (pickup only),
    // ST-Z (undefined).
    assert_eq!(codes(&online.locations), ["DC-1", "ST-A", "ST-C"]);
    assert_eq!(online.available, 18);
    assert!(online.locations.iter().all(|l| l.distance_km.is_none()));
    assert_eq!(online.locations[0].available, 10);
    // Nothing available: total 0 and no locations listed.
    let none = view.availability("SKU-2", &Channel::Online);
    assert_eq!((none.available, none.locations.len()), (0, 0));
    let unknown = view.availability("NOPE", &Channel::Online);
    assert_eq!((unknown.available, unknown.locations.len()), (0, 0));
}

#[test]
fn online_ships_by_the_rule_sourcing_ships_by() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    // A store whose only shipping capability is SHIP cannot ship a parcel (sourcing needs
    // SHIP_FROM_STORE of a store), so ONLINE must not promise its stock.
    view.apply(&[
        feed.define("ST-S", Store, &[Pickup, Ship], 35.0, 139.0),
        feed.receive("SKU-1", "ST-S", 2),
    ]);
    let online = view.availability("SKU-1", &Channel::Online);
    assert_eq!((online.available, online.locations.len()), (0, 0));
    assert_eq!(
        view.availability("SKU-1", &Channel::Store("ST-S".into()))
            .available,
        2
    );
}

#[test]
fn store_channel_needs_an_active_pickup_location() {
    let view = InventoryView::new();
    network(&view, &mut Feed::default());
    let store = |code: &str| view.availability("SKU-1", &Channel::Store(code.into()));
    let b = store("ST-B");
    assert_eq!(b.available, 4);
    assert_eq!(codes(&b.locations), ["ST-B"]);
    assert_eq!(store("ST-A").available, 3);
    for code in ["ST-C", "DC-2", "ST-Z", "NOWHERE", "DC-1"] {
        let a = store(code);
        assert_eq!((a.available, a.locations.len()), (0, 0), "{code}");
    }
}

#[test]
fn location_changes_move_channels_and_totals() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    network(&view, &mut feed);
    // ST-B learns to ship from store: now online.
    view.apply(&[feed.location(
        "ST-B",
        LocationEvent::LocationUpdated(LocationUpdated {
            code: "ST-B".into(),
            changes: LocationPatch {
                capabilities: Some([Pickup, ShipFromStore].into_iter().collect()),
                ..Default::default()
            },
        }),
    )]);
    let online = view.availability("SKU-1", &Channel::Online);
    assert_eq!(codes(&online.locations), ["DC-1", "ST-A", "ST-B", "ST-C"]);
    assert_eq!(online.available, 22);
    // ST-B closes: out of every channel and of the network totals, but its row stays.
    view.apply(&[feed.location(
        "ST-B",
        LocationEvent::LocationDeactivated(LocationDeactivated {
            code: "ST-B".into(),
        }),
    )]);
    assert_eq!(view.availability("SKU-1", &Channel::Online).available, 18);
    assert_eq!(
        view.availability("SKU-1", &Channel::Store("ST-B".into()))
            .available,
        0
    );
    assert_eq!(view.network_totals("SKU-1").map(|t| t.on_hand), Some(18));
    assert_eq!(view.levels("SKU-1", "ST-B").map(|l| l.on_hand), Some(4));
    // DC-2 reopens.
    view.apply(&[feed.location(
        "DC-2",
        LocationEvent::LocationActivated(LocationActivated {
            code: "DC-2".into(),
        }),
    )]);
    assert_eq!(view.availability("SKU-1", &Channel::Online).available, 25);
    assert_eq!(view.network_totals("SKU-1").map(|t| t.on_hand), Some(25));
}

#[test]
fn network_totals_sum_available_per_active_location() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    network(&view, &mut feed);
    view.apply(&[
        // DC-1: safety stock above on hand → 0 available there; must not eat ST-A's.
        feed.stock("SKU-1", "DC-1", SafetyStockSet { qty: 50 }),
        feed.stock("SKU-1", "ST-A", reserve("r9", 1)),
        feed.stock(
            "SKU-1",
            "ST-A",
            IncomingExpected {
                qty: 6,
                transfer_id: "T".into(),
                from_location: None,
            },
        ),
        feed.stock(
            "SKU-1",
            "ST-B",
            StockMovedToNonSellable {
                qty: 1,
                reason: "QC".into(),
            },
        ),
    ]);
    // Active: DC-1 (10, safety 50 → 0), ST-A (3 − 1 → 2), ST-B (3 → 3), ST-C (5 → 5).
    assert_eq!(
        view.network_totals("SKU-1"),
        Some(StockLevels {
            on_hand: 21,
            reserved: 1,
            safety_stock: 50,
            available: 10,
            incoming: 6,
            non_sellable: 1,
        })
    );
    assert_eq!(view.network_totals("NOPE"), None);
    // A SKU only at inactive / undefined locations is known, with nothing in the network.
    view.apply(&[feed.receive("SKU-3", "DC-2", 4)]);
    assert_eq!(
        view.network_totals("SKU-3")
            .map(|t| (t.on_hand, t.available)),
        Some((0, 0))
    );
}

#[test]
fn haversine_distances() {
    // One degree along a meridian: 2πR / 360.
    let degree = 2.0 * std::f64::consts::PI * EARTH_RADIUS_KM / 360.0;
    assert!((haversine_km(35.0, 139.0, 36.0, 139.0) - degree).abs() < 1e-9);
    // Equator to pole: a quarter of the circumference.
    let quarter = std::f64::consts::PI * EARTH_RADIUS_KM / 2.0;
    assert!((haversine_km(0.0, 10.0, 90.0, 10.0) - quarter).abs() < 1e-6);
    assert_eq!(haversine_km(35.0, 139.0, 35.0, 139.0), 0.0);
    // Antipodes: half the circumference.
    let half = std::f64::consts::PI * EARTH_RADIUS_KM;
    assert!((haversine_km(0.0, 0.0, 0.0, 180.0) - half).abs() < 1e-6);
}

/// Stores around an origin at (35.0, 139.0).
fn stores_around(view: &InventoryView, feed: &mut Feed) {
    view.apply(&[
        feed.define("DC-0", Dc, &[Ship], 35.0, 139.0),
        // Defined before ST-N2 so that id order differs from code order.
        feed.define("ST-N3", Store, &[Pickup], 35.05, 139.0),
        feed.define("ST-N2", Store, &[Pickup, ShipFromStore], 35.05, 139.0),
        feed.define("ST-N1", Store, &[Pickup, ShipFromStore], 35.01, 139.0),
        feed.define("ST-FAR", Store, &[Pickup], 36.0, 139.0),
        feed.define("ST-EMPTY", Store, &[Pickup], 35.001, 139.0),
        feed.define("ST-NOPICK", Store, &[ShipFromStore], 35.002, 139.0),
        feed.define("ST-OFF", Store, &[Pickup], 35.003, 139.0),
        feed.location(
            "ST-OFF",
            LocationEvent::LocationDeactivated(LocationDeactivated {
                code: "ST-OFF".into(),
            }),
        ),
    ]);
    let mut stock = Vec::new();
    for (code, qty) in [
        ("DC-0", 100),
        ("ST-N3", 3),
        ("ST-N2", 2),
        ("ST-N1", 1),
        ("ST-FAR", 9),
        ("ST-NOPICK", 4),
        ("ST-OFF", 5),
    ] {
        stock.push(feed.receive("SKU-1", code, qty));
    }
    stock.push(feed.receive("SKU-1", "ST-EMPTY", 2));
    stock.push(feed.stock("SKU-1", "ST-EMPTY", reserve("r1", 2)));
    view.apply(&stock);
}

#[test]
fn nearby_stores_are_active_pickup_stores_with_stock_nearest_first() {
    let view = InventoryView::new();
    stores_around(&view, &mut Feed::default());
    let near = view.nearby_stores("SKU-1", 35.0, 139.0, 50.0, 10);
    assert_eq!(codes(&near), ["ST-N1", "ST-N2", "ST-N3"]);
    let d1 = near[0].distance_km.unwrap();
    assert!((d1 - haversine_km(35.0, 139.0, 35.01, 139.0)).abs() < 1e-12);
    assert!((1.1..1.12).contains(&d1), "{d1}");
    assert_eq!(near[1].distance_km, near[2].distance_km);
    assert_eq!(near[2].available, 3);
    // Radius is inclusive of what is inside it, and wider radii reach further.
    assert_eq!(
        codes(&view.nearby_stores("SKU-1", 35.0, 139.0, 200.0, 10)),
        ["ST-N1", "ST-N2", "ST-N3", "ST-FAR"]
    );
    assert_eq!(
        codes(&view.nearby_stores("SKU-1", 35.0, 139.0, 2.0, 10)),
        ["ST-N1"]
    );
    assert_eq!(
        codes(&view.nearby_stores("SKU-1", 35.0, 139.0, 200.0, 2)),
        ["ST-N1", "ST-N2"]
    );
    assert!(view.nearby_stores("SKU-1", 35.0, 139.0, 0.5, 10).is_empty());
    assert!(view.nearby_stores("SKU-1", 35.0, 139.0, 50.0, 0).is_empty());
    assert!(view.nearby_stores("NOPE", 35.0, 139.0, 50.0, 10).is_empty());
}

#[test]
fn availability_near_orders_by_distance_then_code() {
    let view = InventoryView::new();
    stores_around(&view, &mut Feed::default());
    let online = view.availability_near("SKU-1", &Channel::Online, 35.0, 139.0);
    // DC-0 at the origin, then the ship-from-store stores; ST-NOPICK ships from store too.
    assert_eq!(
        codes(&online.locations),
        ["DC-0", "ST-NOPICK", "ST-N1", "ST-N2"]
    );
    assert_eq!(online.available, 107);
    assert_eq!(online.locations[0].distance_km, Some(0.0));
    // From the far end the order turns around.
    let from_north = view.availability_near("SKU-1", &Channel::Online, 36.0, 139.0);
    assert_eq!(
        codes(&from_north.locations),
        ["ST-N2", "ST-N1", "ST-NOPICK", "DC-0"]
    );
    // Same spot, same distance: by code (ST-N3 was defined first).
    view.apply(&[Feed { seq: 100 }.location(
        "ST-N3",
        LocationEvent::LocationUpdated(LocationUpdated {
            code: "ST-N3".into(),
            changes: LocationPatch {
                capabilities: Some([Pickup, ShipFromStore].into_iter().collect()),
                ..Default::default()
            },
        }),
    )]);
    let tie = view.availability_near("SKU-1", &Channel::Online, 35.05, 139.0);
    assert_eq!(codes(&tie.locations)[..2], ["ST-N2", "ST-N3"]);
    let store = view.availability_near("SKU-1", &Channel::Store("ST-FAR".into()), 35.0, 139.0);
    assert_eq!(codes(&store.locations), ["ST-FAR"]);
    assert!((store.locations[0].distance_km.unwrap() - 111.195).abs() < 0.01);
}

#[test]
fn stock_at_pages_a_location_in_sku_order() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    let mut events = Vec::new();
    for (i, sku) in ["b", "d", "a", "c", "e"].iter().enumerate() {
        events.push(feed.receive(sku, "ST-1", i as i64 + 1));
        events.push(feed.receive(sku, "ST-2", 100));
    }
    events.push(feed.receive("aa", "ST-2", 1));
    view.apply(&events);
    let page = |after: Option<&str>, first| {
        let (rows, more) = view.stock_at("ST-1", after, first);
        let skus: Vec<String> = rows.iter().map(|(s, _)| s.clone()).collect();
        (skus, more)
    };
    assert_eq!(page(None, 2), (vec!["a".into(), "b".into()], true));
    assert_eq!(page(Some("b"), 2), (vec!["c".into(), "d".into()], true));
    assert_eq!(page(Some("d"), 2), (vec!["e".into()], false));
    assert_eq!(page(Some("e"), 2), (vec![], false));
    // A cursor between SKUs (or of a SKU that is not here) still pages correctly.
    assert_eq!(page(Some("aa"), 1), (vec!["b".into()], true));
    assert_eq!(page(None, 0), (vec![], true));
    assert_eq!(page(None, 10).0.len(), 5);
    let (rows, _) = view.stock_at("ST-1", Some("c"), 1);
    assert_eq!(rows[0].0, "d");
    assert_eq!(rows[0].1.on_hand, 2);
    assert_eq!(view.stock_at("ST-2", None, 10).0.len(), 6);
    assert_eq!(view.stock_at("NOWHERE", None, 10), (vec![], false));
}

#[test]
fn stock_at_where_pages_over_matching_rows_only() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    let events: Vec<_> = ["a", "b-R-GOOD", "c", "d-R-GOOD", "e", "f"]
        .iter()
        .map(|sku| feed.receive(sku, "ST-1", 1))
        .collect();
    view.apply(&events);
    let resale = |sku: &str| sku.contains("-R-");
    let page = |after: Option<&str>, first| {
        let (rows, more) = view.stock_at_where("ST-1", after, first, resale);
        let skus: Vec<String> = rows.into_iter().map(|(s, _)| s).collect();
        (skus, more)
    };
    // "More follow" is about matching rows: after d-R-GOOD only new SKUs remain.
    assert_eq!(page(None, 1), (vec!["b-R-GOOD".into()], true));
    assert_eq!(page(Some("b-R-GOOD"), 1), (vec!["d-R-GOOD".into()], false));
    assert_eq!(page(None, 5).0.len(), 2);
    let (all, _) = view.stock_at_where("ST-1", None, 10, |_| true);
    assert_eq!(all, view.stock_at("ST-1", None, 10).0);
}

#[test]
fn locations_are_folded_and_sorted() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    view.apply(&[
        feed.define("ST-B", Store, &[Pickup], 1.0, 2.0),
        feed.define("DC-1", Dc, &[Ship], 3.0, 4.0),
        feed.receive("SKU-1", "ST-UNDEFINED", 1),
        feed.location(
            "ST-B",
            LocationEvent::LocationUpdated(LocationUpdated {
                code: "ST-B".into(),
                changes: LocationPatch {
                    name: Some("Renamed".into()),
                    ..Default::default()
                },
            }),
        ),
        feed.location(
            "ST-B",
            LocationEvent::LocationDeactivated(LocationDeactivated {
                code: "ST-B".into(),
            }),
        ),
    ]);
    let all = view.locations();
    let all_codes: Vec<&str> = all.iter().map(|l| l.spec.code.as_str()).collect();
    assert_eq!(all_codes, ["DC-1", "ST-B"]);
    let b = view.location("ST-B").unwrap();
    assert_eq!(b.spec.name, "Renamed");
    assert!(!b.active);
    assert!(view.location("DC-1").unwrap().active);
    assert_eq!(view.location("ST-UNDEFINED"), None);
    assert_eq!(view.location("NOWHERE"), None);
}

#[test]
fn change_feed_sends_one_change_per_row_per_batch() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    // Nobody listening: nothing is queued for a later subscriber.
    view.apply(&[feed.receive("SKU-0", "DC-1", 1)]);
    let mut rx = view.subscribe();
    let batch = vec![
        feed.receive("SKU-1", "DC-1", 5),                      // 2
        feed.receive("SKU-2", "DC-1", 1),                      // 3
        feed.stock("SKU-1", "DC-1", reserve("r1", 2)),         // 4
        feed.define("DC-1", Dc, &[Ship], 35.0, 139.0),         // 5: no stock change
        feed.raw("inventory-SKU-1@DC-1", "Mystery.v1", b"{}"), // 6: skipped
    ];
    view.apply(&batch);
    let first = rx.try_recv().unwrap();
    assert_eq!((&*first.sku, &*first.location), ("SKU-2", "DC-1"));
    assert_eq!(first.position, Position::sequence(3));
    assert_eq!(first.levels.on_hand, 1);
    let second = rx.try_recv().unwrap();
    assert_eq!((&*second.sku, &*second.location), ("SKU-1", "DC-1"));
    assert_eq!(second.position, Position::sequence(4));
    assert_eq!(
        second.levels,
        StockLevels {
            on_hand: 5,
            reserved: 2,
            safety_stock: 0,
            available: 3,
            incoming: 0,
            non_sellable: 0,
        }
    );
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    // Location-only and undecodable batches change no row.
    view.apply(&[
        feed.define("DC-2", Dc, &[Ship], 35.0, 139.0),
        feed.raw("inventory-SKU-1@DC-1", "GoodsReceived.v1", b"nope"),
    ]);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    // The same row at another location is another change.
    view.apply(&[
        feed.receive("SKU-1", "DC-2", 7),
        feed.receive("SKU-1", "DC-1", 1),
    ]);
    let a = rx.try_recv().unwrap();
    let b = rx.try_recv().unwrap();
    assert_eq!((&*a.location, a.levels.on_hand), ("DC-2", 7));
    assert_eq!(
        (&*b.location, b.levels.on_hand, b.levels.available),
        ("DC-1", 6, 4)
    );
    assert!(a.position < b.position);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn change_feed_lags_a_slow_receiver() {
    let view = InventoryView::new();
    let mut feed = Feed::default();
    let mut rx = view.subscribe();
    let batch: Vec<_> = (0..CHANGE_FEED_CAPACITY + 10)
        .map(|i| feed.receive(&format!("SKU-{i}"), "DC-1", 1))
        .collect();
    view.apply(&batch);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Lagged(10))));
}

#[test]
fn memory_per_row_stays_small() {
    let view = InventoryView::new();
    assert!(view.heap_bytes() < 1024);
    let mut feed = Feed::default();
    let locations: Vec<String> = (0..10).map(|l| format!("ST-{l:02}")).collect();
    let mut events: Vec<_> = locations
        .iter()
        .map(|c| feed.define(c, Store, &[Pickup], 35.0, 139.0))
        .collect();
    for s in 0..2000 {
        for l in &locations {
            events.push(feed.receive(&format!("SKU-{s:06}"), l, 1));
        }
    }
    for chunk in events.chunks(2048) {
        view.apply(chunk);
    }
    assert_eq!((view.row_count(), view.sku_count()), (20_000, 2000));
    let per_row = view.heap_bytes() / view.row_count();
    assert!((48..150).contains(&per_row), "{per_row} bytes per row");
}

#[test]
fn projection_identity() {
    let view = InventoryView::default();
    assert_eq!(view.name(), "inventory-view");
    let filter = view.filter();
    assert_eq!(
        filter,
        SubscriptionFilter::categories(["inventory", "location"])
    );
    assert!(filter.matches("inventory-SKU-1@DC-1", "GoodsReceived.v1"));
    assert!(filter.matches("location-DC-1", "LocationDefined.v1"));
    assert!(!filter.matches("order-1", "OrderPlaced.v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_view_replays_then_follows_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let new_event = |r: &RecordedEvent| NewEvent {
        id: Uuid::new_v4(),
        event_type: r.event_type.to_string(),
        data: r.data.to_vec(),
        metadata: r.metadata.clone(),
    };
    let mut feed = Feed::default();
    let history = [
        feed.define("DC-1", Dc, &[Ship], 35.0, 139.0),
        feed.receive("SKU-1", "DC-1", 10),
        feed.raw("order-1", "OrderPlaced.v1", b"{}"),
        feed.stock("SKU-1", "DC-1", reserve("r1", 4)),
    ];
    for r in &history {
        store
            .append(&r.stream, ExpectedRevision::Any, vec![new_event(r)])
            .await
            .unwrap();
    }
    let view = Arc::new(InventoryView::new());
    let handle = ichigen_shared::projection::spawn(store.clone(), view.clone());
    tokio::time::timeout(Duration::from_secs(10), handle.wait_caught_up())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.levels("SKU-1", "DC-1")
            .map(|l| (l.on_hand, l.available)),
        Some((10, 6))
    );
    assert_eq!(view.availability("SKU-1", &Channel::Online).available, 6);

    let mut rx = view.subscribe();
    let live = feed.receive("SKU-1", "DC-1", 5);
    let written = store
        .append(&live.stream, ExpectedRevision::Any, vec![new_event(&live)])
        .await
        .unwrap();
    handle
        .wait_for(written.position, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(view.levels("SKU-1", "DC-1").map(|l| l.on_hand), Some(15));
    let change = rx.try_recv().unwrap();
    assert_eq!(change.position, written.position);
    assert_eq!(change.levels.available, 11);
    store.shutdown().await;
}
