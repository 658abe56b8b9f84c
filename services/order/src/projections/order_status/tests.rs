//! The order status view fed with events the order domain decided and fulfillment events in
//! their stored JSON shape.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, ExpectedRevision};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::domain::order::{
    decide, stream_name, OrderCommand, PaymentAuthorization, PlaceOrder, PricedLine,
    ReservedAllocation,
};

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, 10, 0, 0).unwrap()
}

fn customer() -> Actor {
    Actor {
        role: Role::Customer,
        subject: "cust-1".into(),
        store_id: None,
    }
}

/// Hands out increasing positions and per-stream revisions, like the store.
#[derive(Default)]
struct Feed {
    seq: u64,
    revisions: HashMap<String, u64>,
}

impl Feed {
    fn raw(&mut self, stream: &str, event_type: &str, data: &[u8], actor: Actor) -> RecordedEvent {
        self.seq += 1;
        let revision = self.revisions.entry(stream.to_owned()).or_insert(0);
        let this = *revision;
        *revision += 1;
        let mut metadata = Metadata::new(actor);
        metadata.occurred_at = day(1) + chrono::Duration::minutes(self.seq as i64);
        RecordedEvent {
            id: Uuid::new_v4(),
            stream: Arc::from(stream),
            revision: this,
            position: Position::sequence(self.seq),
            event_type: Arc::from(event_type),
            data: Arc::from(data),
            metadata,
        }
    }

    fn order(&mut self, order_id: Uuid, event: &OrderEvent) -> RecordedEvent {
        let data = event.payload_json().unwrap();
        self.raw(
            &stream_name(order_id),
            event.event_type(),
            &data,
            customer(),
        )
    }

    fn fulfillment(
        &mut self,
        id: Uuid,
        event_type: &str,
        data: serde_json::Value,
    ) -> RecordedEvent {
        let data = serde_json::to_vec(&data).unwrap();
        let staff = Actor {
            role: Role::StoreStaff,
            subject: "staff-9".into(),
            store_id: Some("STORE-A".into()),
        };
        self.raw(&format!("fulfillment-{id}"), event_type, &data, staff)
    }
}

/// One order: its folded state, fed through `decide` so every event is one the write side
/// could have stored.
struct Scenario {
    order_id: Uuid,
    state: Order,
    feed: Feed,
    view: OrderStatusView,
}

const DC: &str = "DC-EAST";
const STORE: &str = "STORE-A";

fn ship_fid(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"ship")
}

fn pickup_fid(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"pickup")
}

/// L1: 2 × ¥1,000 shipped from DC-EAST; L2: 1 × ¥500 picked up at STORE-A.
fn placement(order_id: Uuid, customer_id: &str, placed_at_day: u32) -> (PlaceOrder, u32) {
    let line = |id: &str, sku: &str, qty, price, delivery| PricedLine {
        line_id: id.into(),
        sku: sku.into(),
        title: format!("{sku} title"),
        qty,
        unit_price: price,
        delivery,
    };
    let alloc = |line: &str, location: &str, qty, r: &str| ReservedAllocation {
        line_id: line.into(),
        location: location.into(),
        qty,
        reservation_id: r.into(),
    };
    (
        PlaceOrder {
            order_id,
            customer_id: Some(customer_id.into()),
            placed_by: customer_id.into(),
            channel: Channel::Web,
            lines: vec![
                line(
                    "L1",
                    "SKU1",
                    2,
                    yen(1000),
                    Delivery::Ship {
                        lat: 35.66,
                        lon: 139.70,
                    },
                ),
                line(
                    "L2",
                    "SKU2",
                    1,
                    yen(500),
                    Delivery::Pickup {
                        store: STORE.into(),
                    },
                ),
            ],
            allocations: vec![alloc("L1", DC, 2, "r1"), alloc("L2", STORE, 1, "r2")],
            sourcing: Vec::new(),
            payment: Some(PaymentAuthorization {
                payment_id: Uuid::from_u128(7),
                provider: "manual".into(),
                reference: format!("auth-{order_id}"),
                amount: yen(2500),
            }),
            credit: None,
            allow_partial: false,
            idempotency_key: format!("idem-{order_id}"),
            request_fingerprint: "fp".into(),
        },
        placed_at_day,
    )
}

impl Scenario {
    fn new() -> Self {
        let mut s = Scenario {
            order_id: Uuid::from_u128(0xA1),
            state: Order::default(),
            feed: Feed::default(),
            view: OrderStatusView::new(),
        };
        let events = s.place(s.order_id, "cust-1", 1);
        s.view.apply(&events);
        s
    }

    /// Decides a placement (its own state) and returns the recorded events.
    fn place(&mut self, order_id: Uuid, customer_id: &str, on_day: u32) -> Vec<RecordedEvent> {
        let (p, d) = placement(order_id, customer_id, on_day);
        let events = decide(&Order::default(), &OrderCommand::Place(Box::new(p)), day(d)).unwrap();
        let mut state = Order::default();
        for e in &events {
            state.apply(e);
        }
        if order_id == self.order_id {
            self.state = state;
        }
        events
            .iter()
            .map(|e| self.feed.order(order_id, e))
            .collect()
    }

    /// Decides a command on the scenario's order and returns the recorded events.
    fn order(&mut self, command: OrderCommand) -> Vec<RecordedEvent> {
        let events = decide(&self.state, &command, day(2)).unwrap();
        for e in &events {
            self.state.apply(e);
        }
        let id = self.order_id;
        events.iter().map(|e| self.feed.order(id, e)).collect()
    }

    fn fulfillment(
        &mut self,
        id: Uuid,
        event_type: &str,
        data: serde_json::Value,
    ) -> RecordedEvent {
        self.feed.fulfillment(id, event_type, data)
    }

    fn create(
        &mut self,
        id: Uuid,
        location: &str,
        kind: &str,
        line: &str,
        qty: i64,
    ) -> RecordedEvent {
        let order_id = self.order_id;
        self.fulfillment(
            id,
            "FulfillmentCreated.v1",
            json!({
                "fulfillmentId": id,
                "orderId": order_id,
                "location": location,
                "kind": kind,
                "destinationStore": null,
                "pickupHoldDays": 3,
                "lines": [{
                    "lineId": line, "sku": "SKU", "qty": qty, "reservationId": "r",
                    "picked": 0, "short": 0, "cancelled": 0
                }]
            }),
        )
    }

    fn apply(&self, events: &[RecordedEvent]) {
        self.view.apply(events);
    }

    fn record(&self) -> OrderRecord {
        self.view.get(self.order_id).unwrap()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.view
            .updates(self.order_id)
            .iter()
            .map(|u| u.kind.as_str())
            .collect()
    }
}

fn lq(line: &str, qty: i64) -> LineQty {
    LineQty::new(line, qty)
}

/// Takes the scenario through shipping L1 from the DC (both services' events).
fn ship_l1(s: &mut Scenario) -> Vec<RecordedEvent> {
    let fid = ship_fid(s.order_id);
    let mut events = vec![
        s.create(fid, DC, "SHIP", "L1", 2),
        s.fulfillment(
            fid,
            "FulfillmentLinesPicked.v1",
            json!({"lines": [{"lineId": "L1", "picked": 2, "short": 0}]}),
        ),
        s.fulfillment(fid, "FulfillmentPacked.v1", json!({"packages": 1})),
        s.fulfillment(
            fid,
            "FulfillmentShipped.v1",
            json!({"carrier": "YAMATO", "trackingNumber": "T-1"}),
        ),
    ];
    events.extend(s.order(OrderCommand::MarkShipped {
        fulfillment_id: fid.to_string(),
        location: DC.into(),
        lines: vec![lq("L1", 2)],
        carrier: "YAMATO".into(),
        tracking: Some("T-1".into()),
    }));
    events
}

/// Takes the scenario through staging L2 at the store (both services' events).
fn ready_l2(s: &mut Scenario) -> Vec<RecordedEvent> {
    let fid = pickup_fid(s.order_id);
    let mut events = vec![
        s.create(fid, STORE, "PICKUP", "L2", 1),
        s.fulfillment(
            fid,
            "FulfillmentLinesPicked.v1",
            json!({"lines": [{"lineId": "L2", "picked": 1, "short": 0}]}),
        ),
        s.fulfillment(
            fid,
            "FulfillmentReadyForPickup.v1",
            json!({"pickupCode": "K7Q2", "expiresAt": day(5)}),
        ),
    ];
    events.extend(s.order(OrderCommand::MarkReadyForPickup {
        fulfillment_id: fid.to_string(),
        location: STORE.into(),
        lines: vec![lq("L2", 1)],
    }));
    events
}

#[test]
fn status_combines_order_fulfillment_and_payment() {
    let mut s = Scenario::new();
    let r = s.record();
    assert_eq!(r.status, OrderStatus::Placed);
    assert_eq!(
        (
            r.customer_id.as_deref(),
            r.placed_by.as_str(),
            &r.channel,
            r.placed_at
        ),
        (Some("cust-1"), "cust-1", &Channel::Web, day(1))
    );
    let pay = r.payment().unwrap();
    assert_eq!(
        (pay.authorized, pay.captured, pay.voided),
        (yen(2500), yen(0), None)
    );

    let shipped = ship_l1(&mut s);
    s.apply(&shipped);
    let r = s.record();
    assert_eq!(r.status, OrderStatus::PartiallyFulfilled);
    let f = r.fulfillment(ship_fid(s.order_id)).unwrap();
    assert_eq!(
        (
            f.location.as_str(),
            f.kind,
            f.status,
            f.carrier.as_deref(),
            f.tracking_number.as_deref()
        ),
        (
            DC,
            FulfillmentType::Ship,
            FulfillmentProgress::Shipped,
            Some("YAMATO"),
            Some("T-1")
        )
    );
    assert_eq!(f.lines[0].picked, 2);
    let lines = r.lines();
    assert_eq!(lines[0].status, OrderStatus::Fulfilled);
    assert_eq!(lines[0].locations, vec![(DC.to_owned(), 2)]);
    assert_eq!(lines[0].fulfillment_ids, vec![ship_fid(s.order_id)]);
    assert_eq!(
        lines[0].tracking,
        vec![Tracking {
            fulfillment_id: ship_fid(s.order_id).to_string(),
            carrier: "YAMATO".into(),
            tracking_number: Some("T-1".into()),
        }]
    );
    assert_eq!(lines[1].status, OrderStatus::Placed);
    assert!(lines[1].tracking.is_empty());

    let staged = ready_l2(&mut s);
    s.apply(&staged);
    let r = s.record();
    let f = r.fulfillment(pickup_fid(s.order_id)).unwrap();
    assert_eq!(
        (
            f.status,
            f.pickup_code.as_deref(),
            f.pickup_expires_at,
            f.pickup_store()
        ),
        (
            FulfillmentProgress::ReadyForPickup,
            Some("K7Q2"),
            Some(day(5)),
            Some(STORE)
        )
    );
    assert_eq!(r.lines()[1].status, OrderStatus::ReadyForPickup);
    assert_eq!(r.status, OrderStatus::PartiallyFulfilled);

    let fid = pickup_fid(s.order_id);
    let mut done =
        vec![s.fulfillment(fid, "FulfillmentPickedUp.v1", json!({"pickedUpAt": day(3)}))];
    done.extend(s.order(OrderCommand::MarkPickedUp {
        fulfillment_id: fid.to_string(),
        location: STORE.into(),
        lines: vec![lq("L2", 1)],
    }));
    done.extend(s.order(OrderCommand::CapturePayment {
        amount: yen(2500),
        reference: "cap-1".into(),
    }));
    let sid = ship_fid(s.order_id);
    done.push(s.fulfillment(
        sid,
        "FulfillmentDelivered.v1",
        json!({"deliveredAt": day(4)}),
    ));
    done.extend(s.order(OrderCommand::MarkDelivered {
        fulfillment_id: sid.to_string(),
    }));
    s.apply(&done);
    let r = s.record();
    assert_eq!(r.status, OrderStatus::Delivered);
    assert_eq!(r.status, s.state.status().unwrap());
    assert_eq!(r.lines()[1].status, OrderStatus::PickedUp);
    assert_eq!(
        r.fulfillment(sid).unwrap().status,
        FulfillmentProgress::Delivered
    );
    assert_eq!(r.payment().unwrap().captured, yen(2500));
    assert_eq!(r.order, s.state);
    assert_eq!(s.view.order_of_fulfillment(sid), Some(s.order_id));
    // Each step once, though both services recorded it.
    assert_eq!(
        s.kinds(),
        [
            "ORDER_RECEIVED",
            "CONFIRMED",
            "SHIPPED",
            "READY_FOR_PICKUP",
            "PICKED_UP",
            "DELIVERED"
        ]
    );
}

#[test]
fn updates_are_derived_once_per_step() {
    let mut s = Scenario::new();
    let events = ship_l1(&mut s);
    s.apply(&events);
    let events = ready_l2(&mut s);
    s.apply(&events);
    assert_eq!(
        s.kinds(),
        ["ORDER_RECEIVED", "CONFIRMED", "SHIPPED", "READY_FOR_PICKUP"]
    );
    let updates = s.view.updates(s.order_id);
    assert_eq!(
        updates[1].kind,
        OrderUpdateKind::Confirmed { amount: yen(2500) }
    );
    assert_eq!(
        updates[2].kind,
        OrderUpdateKind::Shipped {
            fulfillment_id: ship_fid(s.order_id).to_string(),
            location: DC.into(),
            carrier: "YAMATO".into(),
            tracking: Some("T-1".into()),
        }
    );
    assert_eq!(
        updates[3].kind,
        OrderUpdateKind::ReadyForPickup {
            fulfillment_id: pickup_fid(s.order_id).to_string(),
            store: STORE.into(),
            pickup_code: Some("K7Q2".into()),
            expires_at: Some(day(5)),
        }
    );
    assert!(updates.windows(2).all(|w| w[0].position < w[1].position));
    assert!(updates
        .iter()
        .all(|u| u.order_id == s.order_id && u.customer_id.as_deref() == Some("cust-1")));
}

#[test]
fn an_order_only_shipment_is_announced_once() {
    let mut s = Scenario::new();
    let events = s.order(OrderCommand::MarkShipped {
        fulfillment_id: "parcel-1".into(),
        location: DC.into(),
        lines: vec![lq("L1", 1)],
        carrier: "SAGAWA".into(),
        tracking: None,
    });
    s.apply(&events);
    let events = s.order(OrderCommand::MarkShipped {
        fulfillment_id: "parcel-2".into(),
        location: DC.into(),
        lines: vec![lq("L1", 1)],
        carrier: "SAGAWA".into(),
        tracking: Some("S-2".into()),
    });
    s.apply(&events);
    let shipped: Vec<OrderUpdateKind> = s
        .view
        .updates(s.order_id)
        .into_iter()
        .filter(|u| u.kind.as_str() == "SHIPPED")
        .map(|u| u.kind)
        .collect();
    assert_eq!(shipped.len(), 2);
    assert!(matches!(
        &shipped[0],
        OrderUpdateKind::Shipped { tracking: None, fulfillment_id, .. } if fulfillment_id == "parcel-1"
    ));
    assert_eq!(s.record().status, OrderStatus::PartiallyFulfilled);
}

#[test]
fn cancellations_and_refunds_carry_their_amounts() {
    let mut s = Scenario::new();
    let mut events = s.order(OrderCommand::CapturePayment {
        amount: yen(2500),
        reference: "cap-1".into(),
    });
    events.extend(s.order(OrderCommand::Cancel {
        lines: Some(vec![lq("L2", 1)]),
        reason: "CUSTOMER_REQUEST".into(),
    }));
    events.extend(s.order(OrderCommand::RefundPayment {
        amount: yen(500),
        reference: "ref-1".into(),
        operation: None,
    }));
    s.apply(&events);
    assert_eq!(
        s.kinds(),
        ["ORDER_RECEIVED", "CONFIRMED", "CANCELLED", "REFUNDED"]
    );
    let updates = s.view.updates(s.order_id);
    assert_eq!(
        updates[2].kind,
        OrderUpdateKind::Cancelled {
            lines: vec![lq("L2", 1)],
            reason: "CUSTOMER_REQUEST".into(),
            amount: yen(500),
        }
    );
    assert_eq!(
        updates[3].kind,
        OrderUpdateKind::Refunded { amount: yen(500) }
    );
    let r = s.record();
    assert_eq!(r.status, OrderStatus::PartiallyCancelled);
    assert_eq!(r.lines()[1].status, OrderStatus::Cancelled);
    let pay = r.payment().unwrap();
    assert_eq!((pay.captured, pay.refunded), (yen(2500), yen(500)));

    // Cancelling the rest: a second CANCELLED, and the order is cancelled.
    let rest = s.order(OrderCommand::Cancel {
        lines: None,
        reason: "CUSTOMER_REQUEST".into(),
    });
    s.apply(&rest);
    assert_eq!(s.kinds().iter().filter(|k| **k == "CANCELLED").count(), 2);
    assert_eq!(s.record().status, OrderStatus::Cancelled);
}

#[test]
fn voided_payment_shows_the_amount() {
    let mut s = Scenario::new();
    let mut events = s.order(OrderCommand::Cancel {
        lines: None,
        reason: "CUSTOMER_REQUEST".into(),
    });
    events.extend(s.order(OrderCommand::VoidPayment));
    s.apply(&events);
    let r = s.record();
    assert_eq!(r.status, OrderStatus::Cancelled);
    assert_eq!(r.payment().unwrap().voided, Some(yen(2500)));
    assert_eq!(s.kinds(), ["ORDER_RECEIVED", "CONFIRMED", "CANCELLED"]);
}

#[test]
fn timeline_lists_every_event_in_position_order() {
    let mut s = Scenario::new();
    let shipped = ship_l1(&mut s);
    s.apply(&shipped);
    let r = s.record();
    // 2 at placement + 4 fulfillment + 1 order.
    assert_eq!(r.timeline.len(), 7);
    assert!(r.timeline.windows(2).all(|w| w[0].position < w[1].position));
    let types: Vec<&str> = r.timeline.iter().map(|t| t.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced.v1",
            "PaymentAuthorized.v1",
            "FulfillmentCreated.v1",
            "FulfillmentLinesPicked.v1",
            "FulfillmentPacked.v1",
            "FulfillmentShipped.v1",
            "OrderShipped.v1"
        ]
    );
    let fid = ship_fid(s.order_id);
    assert_eq!(r.timeline[0].source, TimelineSource::Order);
    assert_eq!(r.timeline[2].source, TimelineSource::Fulfillment(fid));
    assert_eq!(r.timeline[0].actor, customer());
    assert_eq!(r.timeline[3].actor.role, Role::StoreStaff);
    assert!(
        r.timeline[0].summary.contains("2500 JPY"),
        "{}",
        r.timeline[0].summary
    );
    assert!(
        r.timeline[5].summary.contains("T-1"),
        "{}",
        r.timeline[5].summary
    );
    assert!(
        r.timeline[6].summary.contains("L1 ×2"),
        "{}",
        r.timeline[6].summary
    );
    assert_eq!(r.timeline[6].occurred_at, shipped[4].metadata.occurred_at);
    assert_eq!(r.position, shipped[4].position);
    // The pickup code stays off the timeline.
    let staged = ready_l2(&mut s);
    s.apply(&staged);
    assert!(s
        .record()
        .timeline
        .iter()
        .all(|t| !t.summary.contains("K7Q2")));
}

#[test]
fn customers_see_their_orders_newest_first_in_pages() {
    let mut s = Scenario::new();
    let ids: Vec<Uuid> = (2..=4).map(|n| Uuid::from_u128(0xB0 + n)).collect();
    for (i, id) in ids.iter().enumerate() {
        let events = s.place(*id, "cust-1", 2 + i as u32);
        s.apply(&events);
    }
    let other = s.place(Uuid::from_u128(0xC0), "cust-2", 9);
    s.apply(&other);

    let (page, more) = s.view.by_customer("cust-1", None, 2);
    let got: Vec<Uuid> = page.iter().map(|r| r.order_id).collect();
    assert_eq!(got, [ids[2], ids[1]]);
    assert!(more);
    let (page, more) = s.view.by_customer("cust-1", Some(page[1].cursor()), 2);
    let got: Vec<Uuid> = page.iter().map(|r| r.order_id).collect();
    assert_eq!(got, [ids[0], s.order_id]);
    assert!(!more);
    assert_eq!(s.view.by_customer("cust-2", None, 10).0.len(), 1);
    assert_eq!(s.view.by_customer("nobody", None, 10), (vec![], false));
    assert_eq!(s.view.by_customer("cust-1", None, 0), (vec![], true));

    let (all, more) = s.view.all(None, 10);
    assert_eq!(all.len(), 5);
    assert!(!more);
    assert_eq!(all[0].order_id, Uuid::from_u128(0xC0));
    assert!(all.windows(2).all(|w| w[0].cursor() > w[1].cursor()));
    assert_eq!(s.view.len(), 5);
}

#[test]
fn updates_are_broadcast_to_listeners() {
    let mut s = Scenario::new();
    let events = ship_l1(&mut s);
    // Nobody listens: nothing is sent, and nothing fails.
    s.apply(&events[..1]);
    let mut rx = s.view.subscribe();
    s.apply(&events[1..]);
    let update = rx.try_recv().unwrap();
    assert_eq!(update.kind.as_str(), "SHIPPED");
    assert_eq!(update.order_id, s.order_id);
    assert_eq!(update.position, events[3].position);
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);

    let mut events = s.order(OrderCommand::Cancel {
        lines: Some(vec![lq("L2", 1)]),
        reason: "CUSTOMER_REQUEST".into(),
    });
    events.push(s.create(pickup_fid(s.order_id), STORE, "PICKUP", "L2", 1));
    s.apply(&events);
    assert_eq!(rx.try_recv().unwrap().kind.as_str(), "CANCELLED");
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn redelivered_events_change_nothing() {
    let mut s = Scenario::new();
    let events = ship_l1(&mut s);
    s.apply(&events);
    let before = s.record();
    s.apply(&events);
    assert_eq!(s.record(), before);
    assert_eq!(s.view.len(), 1);
}

#[test]
fn unknown_and_unreadable_events_are_skipped() {
    let mut s = Scenario::new();
    let before = s.record();
    let stray = Uuid::from_u128(0xDEAD);
    let stray_created = json!({
        "fulfillmentId": stray, "orderId": Uuid::from_u128(0xBEEF), "location": DC,
        "kind": "SHIP", "destinationStore": null, "pickupHoldDays": 3,
        "lines": [{"lineId": "L1", "sku": "SKU1", "qty": 1, "reservationId": "r"}]
    });
    let order_stream = stream_name(s.order_id);
    let unreadable = [
        // An order event that does not parse.
        s.feed
            .raw(&order_stream, "OrderShipped.v1", b"{not json", customer()),
        // An order stream that is not a UUID, and a stream of another category.
        s.feed.raw("order-42", "OrderPlaced.v1", b"{}", customer()),
        s.feed
            .raw("catalog-SKU1", "CatalogItemUpserted.v1", b"{}", customer()),
        s.feed.raw("nodash", "X.v1", b"{}", customer()),
        // An event of an order never placed.
        s.feed.order(
            Uuid::from_u128(0xBEEF),
            &OrderEvent::OrderDelivered(crate::domain::order::OrderDelivered {
                fulfillment_id: "x".into(),
                lines: vec![],
            }),
        ),
        // A fulfillment order of an unknown order, then its next step.
        s.fulfillment(stray, "FulfillmentCreated.v1", stray_created),
        s.fulfillment(stray, "FulfillmentPacked.v1", json!({"packages": 1})),
        // A step of a fulfillment order whose creation was never seen.
        s.fulfillment(Uuid::from_u128(0xF00D), "FulfillmentPacked.v1", json!({})),
        // A fulfillment payload that does not parse.
        s.fulfillment(
            ship_fid(s.order_id),
            "FulfillmentCreated.v1",
            json!({"orderId": 5}),
        ),
        // Binary garbage.
        s.feed.raw(
            &order_stream,
            "PaymentRefunded.v1",
            &[0xff, 0x00, 0x13],
            customer(),
        ),
    ];
    s.apply(&unreadable);
    assert_eq!(s.record(), before);
    assert_eq!(s.view.len(), 1);
    assert_eq!(s.view.order_of_fulfillment(stray), None);

    // A type this view does not know (a newer version) is kept on the timeline only.
    let newer = s
        .feed
        .raw(&order_stream, "OrderGiftWrapped.v1", b"{}", customer());
    s.apply(&[newer]);
    let r = s.record();
    assert_eq!(r.timeline.len(), before.timeline.len() + 1);
    assert_eq!(r.timeline.last().unwrap().summary, "OrderGiftWrapped");
    assert_eq!(
        (r.status, r.updates.len()),
        (before.status, before.updates.len())
    );
    // And the order still folds what follows.
    let events = ship_l1(&mut s);
    s.apply(&events);
    assert_eq!(s.record().status, OrderStatus::PartiallyFulfilled);
}

#[test]
fn the_view_follows_both_categories() {
    let filter = OrderStatusView::new().filter();
    assert!(filter.matches("order-1", "OrderPlaced.v1"));
    assert!(filter.matches("fulfillment-1", "FulfillmentCreated.v1"));
    assert!(!filter.matches("catalog-SKU1", "CatalogItemUpserted.v1"));
    assert!(!filter.matches("inventory-SKU1@DC", "Reserved.v1"));
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
    let mut s = Scenario::new();
    let placed = s.place(s.order_id, "cust-1", 1);
    for r in &placed {
        store
            .append(&r.stream, ExpectedRevision::Any, vec![new_event(r)])
            .await
            .unwrap();
    }
    let view = Arc::new(OrderStatusView::new());
    let handle = ichigen_shared::projection::spawn(store.clone(), view.clone());
    tokio::time::timeout(Duration::from_secs(10), handle.wait_caught_up())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.get(s.order_id).unwrap().status, OrderStatus::Placed);

    let mut rx = view.subscribe();
    let mut last = None;
    for r in ship_l1(&mut s) {
        last = Some(
            store
                .append(&r.stream, ExpectedRevision::Any, vec![new_event(&r)])
                .await
                .unwrap()
                .position,
        );
    }
    handle
        .wait_for(last.unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    let r = view.get(s.order_id).unwrap();
    assert_eq!(r.status, OrderStatus::PartiallyFulfilled);
    assert_eq!(r.timeline.len(), 7);
    let update = rx.try_recv().unwrap();
    assert_eq!(update.kind.as_str(), "SHIPPED");
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
    store.shutdown().await;
}

/// The usual placement (¥2,500) with an exchange credit of `credit`, the rest authorized;
/// `allocated_l1` of L1's 2 units sourced (the rest cancelled as out of stock).
fn credited(order_id: Uuid, credit: i64, allocated_l1: i64) -> Vec<RecordedEvent> {
    let (mut p, d) = placement(order_id, "cust-1", 1);
    p.allow_partial = true;
    p.allocations[0].qty = allocated_l1;
    let due = 500 + 1000 * allocated_l1 - credit;
    p.credit = Some(crate::domain::order::OrderCredit {
        amount: yen(credit),
        source: "rma:r-1".into(),
    });
    p.payment = (due > 0).then(|| PaymentAuthorization {
        amount: yen(due),
        ..p.payment.clone().unwrap()
    });
    let events = decide(&Order::default(), &OrderCommand::Place(Box::new(p)), day(d)).unwrap();
    let mut feed = Feed::default();
    events.iter().map(|e| feed.order(order_id, e)).collect()
}

#[test]
fn an_order_paid_by_credit_is_confirmed_once_with_what_the_customer_pays() {
    let view = OrderStatusView::new();
    let confirmed = |id: Uuid| -> Vec<(String, Option<Money>)> {
        view.updates(id)
            .iter()
            .map(|u| match &u.kind {
                OrderUpdateKind::Confirmed { amount } => (u.kind.as_str().into(), Some(*amount)),
                k => (k.as_str().into(), None),
            })
            .collect()
    };
    let received = || ("ORDER_RECEIVED".to_string(), None);
    let confirm = |n: i64| ("CONFIRMED".to_string(), Some(yen(n)));
    // Covered in full: no payment, confirmed by the placement at zero.
    let full = Uuid::from_u128(0xC1);
    let events = credited(full, 2500, 2);
    view.apply(&events);
    view.apply(&events);
    assert_eq!(confirmed(full), [received(), confirm(0)]);
    let r = view.get(full).unwrap();
    assert_eq!(r.payment(), None);
    assert_eq!(
        r.header().unwrap().credit.as_ref().unwrap().amount,
        yen(2500)
    );
    assert!(r.timeline[0].summary.contains("credit 2500 JPY (rma:r-1)"));
    // Partly covered: confirmed by the authorization of the rest, once.
    let part = Uuid::from_u128(0xC2);
    view.apply(&credited(part, 1000, 2));
    assert_eq!(confirmed(part), [received(), confirm(1500)]);
    // Out of stock brings the rest to zero: confirmed after the cancellation, at zero.
    let oos = Uuid::from_u128(0xC3);
    view.apply(&credited(oos, 1500, 1));
    assert_eq!(
        confirmed(oos),
        [received(), ("CANCELLED".into(), None), confirm(0)]
    );
    assert_eq!(view.get(oos).unwrap().payment(), None);
}
