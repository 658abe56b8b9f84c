//! Given events, when a command, then events or an error.

use chrono::{DateTime, TimeZone, Utc};
use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::domain::sourcing::{CandidateVerdict, Verdict};
use OrderError as E;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn order_id() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

fn home() -> Delivery {
    Delivery::Ship {
        lat: 35.66,
        lon: 139.70,
    }
}

fn at_store(store: &str) -> Delivery {
    Delivery::Pickup {
        store: store.into(),
    }
}

fn line(id: &str, sku: &str, qty: i64, price: Money, delivery: Delivery) -> PricedLine {
    PricedLine {
        line_id: id.into(),
        sku: sku.into(),
        title: format!("{sku} title"),
        qty,
        unit_price: price,
        delivery,
    }
}

fn alloc(line: &str, location: &str, qty: i64, reservation: &str) -> ReservedAllocation {
    ReservedAllocation {
        line_id: line.into(),
        location: location.into(),
        qty,
        reservation_id: reservation.into(),
    }
}

/// L1: 2 × ¥1,000 shipped from DC-EAST (r1); L2: 1 × ¥500 picked up at STORE-A (r2).
fn place_order() -> PlaceOrder {
    PlaceOrder {
        order_id: order_id(),
        customer_id: Some("cust-1".into()),
        placed_by: "cust-1".into(),
        channel: Channel::Web,
        lines: vec![
            line("L1", "SKU1", 2, yen(1000), home()),
            line("L2", "SKU2", 1, yen(500), at_store("STORE-A")),
        ],
        allocations: vec![
            alloc("L1", "DC-EAST", 2, "r1"),
            alloc("L2", "STORE-A", 1, "r2"),
        ],
        sourcing: vec![LineExplanation {
            line_id: "L1".into(),
            considered: vec![CandidateVerdict {
                location: "DC-EAST".into(),
                distance_km: Some(24.0),
                available: 9,
                verdict: Verdict::Chosen { qty: 2 },
            }],
        }],
        payment: Some(PaymentAuthorization {
            payment_id: Uuid::from_u128(7),
            provider: "manual".into(),
            reference: "manual-auth-7".into(),
            amount: yen(2500),
        }),
        credit: None,
        allow_partial: false,
        idempotency_key: "idem-1".into(),
        request_fingerprint: "fp-1".into(),
    }
}

fn place(p: PlaceOrder) -> OrderCommand {
    OrderCommand::Place(Box::new(p))
}

fn when(state: &Order, cmd: OrderCommand) -> Result<Vec<OrderEvent>, E> {
    decide(state, &cmd, now())
}

/// Decides and applies; panics on a refusal.
fn then(state: &Order, cmd: OrderCommand) -> (Vec<OrderEvent>, Order) {
    let events = when(state, cmd).unwrap();
    let mut next = state.clone();
    for e in &events {
        next.apply(e);
    }
    (events, next)
}

fn placed() -> Order {
    then(&Order::default(), place(place_order())).1
}

fn types(events: &[OrderEvent]) -> Vec<&'static str> {
    events.iter().map(OrderEvent::event_type).collect()
}

fn ship(id: &str, location: &str, lines: &[(&str, i64)]) -> OrderCommand {
    OrderCommand::MarkShipped {
        fulfillment_id: id.into(),
        location: location.into(),
        lines: lines.iter().map(|(l, q)| LineQty::new(*l, *q)).collect(),
        carrier: "YAMATO".into(),
        tracking: Some("T-1".into()),
    }
}

fn ready(id: &str, location: &str, lines: &[(&str, i64)]) -> OrderCommand {
    OrderCommand::MarkReadyForPickup {
        fulfillment_id: id.into(),
        location: location.into(),
        lines: lines.iter().map(|(l, q)| LineQty::new(*l, *q)).collect(),
    }
}

fn picked_up(id: &str, location: &str, lines: &[(&str, i64)]) -> OrderCommand {
    OrderCommand::MarkPickedUp {
        fulfillment_id: id.into(),
        location: location.into(),
        lines: lines.iter().map(|(l, q)| LineQty::new(*l, *q)).collect(),
    }
}

fn cancel(lines: Option<&[(&str, i64)]>) -> OrderCommand {
    OrderCommand::Cancel {
        lines: lines.map(|ls| ls.iter().map(|(l, q)| LineQty::new(*l, *q)).collect()),
        reason: "CUSTOMER_REQUEST".into(),
    }
}

fn capture(n: i64, reference: &str) -> OrderCommand {
    OrderCommand::CapturePayment {
        amount: yen(n),
        reference: reference.into(),
    }
}

fn refund(n: i64, reference: &str) -> OrderCommand {
    OrderCommand::RefundPayment {
        amount: yen(n),
        reference: reference.into(),
        operation: None,
    }
}

fn place_err(f: impl FnOnce(&mut PlaceOrder)) -> E {
    let mut p = place_order();
    f(&mut p);
    when(&Order::default(), place(p)).unwrap_err()
}

fn field(e: &E) -> Option<&str> {
    e.field()
}

#[test]
fn place_records_the_order_and_the_authorization() {
    let (events, s) = then(&Order::default(), place(place_order()));
    assert_eq!(types(&events), ["OrderPlaced.v1", "PaymentAuthorized.v1"]);
    let OrderEvent::OrderPlaced(p) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!((p.total, p.placed_at), (yen(2500), now()));
    assert_eq!(s.status(), Some(OrderStatus::Placed));
    assert_eq!(s.payable(), Some(yen(2500)));
    let l1 = s.line("L1").unwrap();
    assert_eq!(
        l1.allocated_by_location(),
        [("DC-EAST", 2)].into_iter().collect()
    );
    assert_eq!((l1.open(), l1.held(), l1.unallocated()), (2, 2, 0));
    let pay = s.payment.as_ref().unwrap();
    assert_eq!((pay.authorized, pay.captured), (yen(2500), yen(0)));
    assert_eq!(s.header.as_ref().unwrap().sourcing.len(), 1);
    assert_eq!(
        stream_name(order_id()),
        "order-01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(Order::default().status(), None);
}

#[test]
fn place_is_idempotent_by_key_and_fingerprint() {
    let s = placed();
    assert_eq!(when(&s, place(place_order())), Ok(vec![]));
    let mut other = place_order();
    other.request_fingerprint = "fp-2".into();
    let e = when(&s, place(other)).unwrap_err();
    assert_eq!(
        (e.clone(), e.code(), field(&e)),
        (E::IdempotencyKeyReused, "CONFLICT", Some("idempotencyKey"))
    );
    let mut other = place_order();
    other.idempotency_key = "idem-2".into();
    assert_eq!(when(&s, place(other)), Err(E::OrderExists));
}

#[test]
fn place_refuses_zero_negative_and_huge_quantities() {
    for qty in [0, -1, MAX_LINE_QTY + 1] {
        let e = place_err(|p| p.lines[0].qty = qty);
        assert_eq!(
            e,
            E::InvalidQuantity {
                field: "lines.0.qty".into(),
                value: qty,
                min: 1,
                max: MAX_LINE_QTY
            }
        );
        assert_eq!(e.code(), "INVALID_INPUT");
    }
    // The maximum itself is fine.
    let mut p = place_order();
    p.lines[0].qty = MAX_LINE_QTY;
    p.allocations[0].qty = MAX_LINE_QTY;
    p.payment.as_mut().unwrap().amount = yen(MAX_LINE_QTY * 1000 + 500);
    assert!(when(&Order::default(), place(p)).is_ok());
}

#[test]
fn place_refuses_mixed_currencies() {
    let e = place_err(|p| p.lines[1].unit_price = Money::parse("5", "USD").unwrap());
    assert_eq!(
        e,
        E::CurrencyMismatch {
            field: "lines.1.unitPrice".into(),
            expected: Currency::JPY,
            actual: Currency::USD
        }
    );
    let e =
        place_err(|p| p.payment.as_mut().unwrap().amount = Money::parse("2500", "USD").unwrap());
    assert_eq!(field(&e), Some("payment.amount"));
}

#[test]
fn place_requires_the_payment_to_equal_the_total() {
    let e = place_err(|p| p.payment.as_mut().unwrap().amount = yen(2400));
    assert_eq!(
        e,
        E::PaymentAmountMismatch {
            expected: yen(2500),
            actual: yen(2400)
        }
    );
    assert_eq!(
        (e.code(), field(&e)),
        ("INVALID_INPUT", Some("payment.amount"))
    );
    // Equal amounts at different scales are equal.
    let mut p = place_order();
    p.payment.as_mut().unwrap().amount = Money::parse("2500.00", "JPY").unwrap();
    assert!(when(&Order::default(), place(p)).is_ok());
}

#[test]
fn place_refuses_overflowing_totals() {
    let e = place_err(|p| p.lines[0].unit_price = Money::new(Decimal::MAX, Currency::JPY));
    assert_eq!(
        e,
        E::Overflow {
            field: "lines.0.qty".into()
        }
    );
    // Each line fits; their sum does not.
    let e = place_err(|p| {
        p.lines[0].qty = 1;
        p.lines[0].unit_price = Money::new(Decimal::MAX, Currency::JPY);
        p.lines[1].unit_price = p.lines[0].unit_price;
    });
    assert_eq!(
        e,
        E::Overflow {
            field: "lines".into()
        }
    );
}

#[test]
fn place_requires_every_line_fully_allocated_unless_partial() {
    let e = place_err(|p| p.allocations[0].qty = 1);
    assert_eq!(
        e,
        E::LineNotFullyAllocated {
            field: "lines.0.qty".into(),
            line_id: "L1".into(),
            requested: 2,
            allocated: 1
        }
    );
    assert_eq!(e.code(), "INSUFFICIENT_STOCK");
    // Partial allowed: the missing unit is cancelled as out of stock and not paid for.
    let mut p = place_order();
    p.allow_partial = true;
    p.allocations[0].qty = 1;
    p.payment.as_mut().unwrap().amount = yen(1500);
    let (events, s) = then(&Order::default(), place(p.clone()));
    assert_eq!(
        types(&events),
        [
            "OrderPlaced.v1",
            "OrderLinesCancelled.v1",
            "PaymentAuthorized.v1"
        ]
    );
    let OrderEvent::OrderLinesCancelled(c) = &events[1] else {
        panic!()
    };
    assert_eq!(c.reason, OUT_OF_STOCK);
    assert_eq!(
        (c.lines.clone(), c.amount),
        (vec![LineQty::new("L1", 1)], yen(1000))
    );
    assert!(c.reservations_to_release.is_empty());
    assert_eq!(s.status(), Some(OrderStatus::PartiallyCancelled));
    assert_eq!(s.payable(), Some(yen(1500)));
    assert_eq!(s.line("L1").unwrap().open(), 1);
    // Partial, but the payment was for everything.
    p.payment.as_mut().unwrap().amount = yen(2500);
    assert!(matches!(
        when(&Order::default(), place(p.clone())),
        Err(E::PaymentAmountMismatch { .. })
    ));
    // Nothing sourced at all.
    p.allocations.clear();
    p.payment.as_mut().unwrap().amount = yen(0);
    assert_eq!(when(&Order::default(), place(p)), Err(E::NothingSourced));
}

/// A change to a valid placement that makes it invalid.
type Mutation = Box<dyn FnOnce(&mut PlaceOrder)>;

#[test]
fn place_validates_lines_allocations_and_ids() {
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|p| p.lines.clear()), "lines"),
        (
            Box::new(|p| p.lines[1].line_id = "L1".into()),
            "lines.1.lineId",
        ),
        (
            Box::new(|p| p.lines[0].line_id = " ".into()),
            "lines.0.lineId",
        ),
        (Box::new(|p| p.lines[0].sku = "".into()), "lines.0.sku"),
        (Box::new(|p| p.lines[0].title = "".into()), "lines.0.title"),
        (
            Box::new(|p| p.lines[0].unit_price = yen(-1)),
            "lines.0.unitPrice",
        ),
        (
            Box::new(|p| p.lines[0].unit_price = Money::parse("10.5", "JPY").unwrap()),
            "lines.0.unitPrice",
        ),
        (
            Box::new(|p| {
                p.lines[0].delivery = Delivery::Ship {
                    lat: 95.0,
                    lon: 0.0,
                }
            }),
            "lines.0.delivery",
        ),
        (
            Box::new(|p| p.lines[1].delivery = at_store("")),
            "lines.1.delivery",
        ),
        (
            Box::new(|p| p.allocations[0].line_id = "LX".into()),
            "allocations.0.lineId",
        ),
        (
            Box::new(|p| p.allocations[1].reservation_id = "r1".into()),
            "allocations.1.reservationId",
        ),
        (
            Box::new(|p| p.allocations[0].location = "".into()),
            "allocations.0.location",
        ),
        (Box::new(|p| p.allocations[0].qty = 3), "allocations.0.qty"),
        (Box::new(|p| p.allocations[0].qty = 0), "allocations.0.qty"),
        (
            Box::new(|p| p.allocations[1].location = "STORE-B".into()),
            "allocations.1.location",
        ),
        (
            Box::new(|p| p.idempotency_key = "".into()),
            "idempotencyKey",
        ),
        (
            Box::new(|p| p.request_fingerprint = "".into()),
            "requestFingerprint",
        ),
        (Box::new(|p| p.placed_by = "".into()), "placedBy"),
        (Box::new(|p| p.customer_id = Some("".into())), "customerId"),
        (
            Box::new(|p| p.channel = Channel::Store("".into())),
            "channel",
        ),
        (
            Box::new(|p| p.payment.as_mut().unwrap().reference = "".into()),
            "payment.reference",
        ),
        (
            Box::new(|p| p.payment.as_mut().unwrap().provider = "".into()),
            "payment.provider",
        ),
    ];
    for (mutate, expected) in cases {
        let e = place_err(mutate);
        assert_eq!(field(&e), Some(expected), "{e:?}");
    }
    let e = place_err(|p| p.allocations[0].line_id = "LX".into());
    assert_eq!(e.code(), "NOT_FOUND");
    let e = place_err(|p| p.lines = vec![p.lines[0].clone(); MAX_LINES + 1]);
    assert_eq!(field(&e), Some("lines"));
    // Endless aisle from a store: fine, and the channel is recorded.
    let mut p = place_order();
    p.channel = Channel::Store("STORE-A".into());
    p.placed_by = "associate-9".into();
    p.customer_id = None;
    let (_, s) = then(&Order::default(), place(p));
    assert_eq!(s.header.unwrap().channel, Channel::Store("STORE-A".into()));
}

#[test]
fn commands_on_a_missing_order_are_not_found() {
    let e = when(&Order::default(), cancel(None)).unwrap_err();
    assert_eq!(
        (e.clone(), e.code(), field(&e)),
        (E::OrderNotFound, "NOT_FOUND", None)
    );
    assert_eq!(
        when(&Order::default(), capture(1, "c")),
        Err(E::OrderNotFound)
    );
}

#[test]
fn shipping_consumes_reservations_and_moves_the_status() {
    let s = placed();
    let (events, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 2)]));
    let OrderEvent::OrderShipped(e) = &events[0] else {
        panic!()
    };
    assert_eq!(
        e.consumed,
        vec![ReservationUse {
            line_id: "L1".into(),
            reservation_id: "r1".into(),
            qty: 2
        }]
    );
    assert_eq!(s.status(), Some(OrderStatus::PartiallyFulfilled));
    let l1 = s.line("L1").unwrap();
    assert_eq!((l1.shipped, l1.open(), l1.held()), (2, 0, 0));
    // A retry is a no-op; the same id with other content is a conflict.
    assert_eq!(when(&s, ship("F1", "DC-EAST", &[("L1", 2)])), Ok(vec![]));
    assert_eq!(
        when(&s, ship("F1", "DC-EAST", &[("L1", 1)])),
        Err(E::FulfillmentConflict {
            fulfillment_id: "F1".into()
        })
    );
    // Nothing left to ship.
    let e = when(&s, ship("F2", "DC-EAST", &[("L1", 1)])).unwrap_err();
    assert_eq!(
        e,
        E::ExceedsAvailable {
            field: "lines.0.qty".into(),
            line_id: "L1".into(),
            requested: 1,
            available: 0
        }
    );
}

#[test]
fn shipping_refuses_wrong_lines_locations_and_inputs() {
    let s = placed();
    let e = when(&s, ship("F1", "STORE-A", &[("L2", 1)])).unwrap_err();
    assert!(matches!(e, E::WrongDelivery { .. }), "{e:?}");
    assert_eq!(field(&e), Some("lines.0.lineId"));
    // Not held at that location.
    let e = when(&s, ship("F1", "DC-WEST", &[("L1", 1)])).unwrap_err();
    assert!(
        matches!(e, E::ExceedsAvailable { available: 0, .. }),
        "{e:?}"
    );
    let e = when(&s, ship("F1", "DC-EAST", &[("L1", 3)])).unwrap_err();
    assert!(
        matches!(e, E::ExceedsAvailable { available: 2, .. }),
        "{e:?}"
    );
    let e = when(&s, ship("F1", "DC-EAST", &[("LX", 1)])).unwrap_err();
    assert_eq!((e.code(), field(&e)), ("NOT_FOUND", Some("lines.0.lineId")));
    let e = when(&s, ship("F1", "DC-EAST", &[("L1", 0)])).unwrap_err();
    assert_eq!(field(&e), Some("lines.0.qty"));
    let e = when(&s, ship("F1", "DC-EAST", &[("L1", 1), ("L1", 1)])).unwrap_err();
    assert_eq!(field(&e), Some("lines.1.lineId"));
    assert_eq!(
        field(&when(&s, ship("F1", "DC-EAST", &[])).unwrap_err()),
        Some("lines")
    );
    assert_eq!(
        field(&when(&s, ship("", "DC-EAST", &[("L1", 1)])).unwrap_err()),
        Some("fulfillmentId")
    );
    let mut cmd = ship("F1", "DC-EAST", &[("L1", 1)]);
    if let OrderCommand::MarkShipped { carrier, .. } = &mut cmd {
        carrier.clear();
    }
    assert_eq!(field(&when(&s, cmd).unwrap_err()), Some("carrier"));
}

#[test]
fn pickup_goes_through_ready_then_picked_up_and_delivery_completes_shipments() {
    let s = placed();
    // Not staged yet: nothing to pick up.
    let e = when(&s, picked_up("P1", "STORE-A", &[("L2", 1)])).unwrap_err();
    assert!(
        matches!(e, E::ExceedsAvailable { available: 0, .. }),
        "{e:?}"
    );
    // Staged at another store, or a ship line staged: refused.
    let e = when(&s, ready("P1", "STORE-B", &[("L2", 1)])).unwrap_err();
    assert_eq!(field(&e), Some("location"));
    let e = when(&s, ready("P1", "STORE-A", &[("L1", 1)])).unwrap_err();
    assert!(matches!(e, E::WrongDelivery { .. }));
    let (events, s) = then(&s, ready("P1", "STORE-A", &[("L2", 1)]));
    assert_eq!(types(&events), ["OrderReadyForPickup.v1"]);
    // L1 is still waiting to ship, so the order as a whole is not ready.
    assert_eq!(s.status(), Some(OrderStatus::Placed));
    assert_eq!(when(&s, ready("P1", "STORE-A", &[("L2", 1)])), Ok(vec![]));
    assert!(matches!(
        when(&s, ready("P2", "STORE-A", &[("L2", 1)])),
        Err(E::ExceedsAvailable { available: 0, .. })
    ));
    let (_, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 2)]));
    assert_eq!(s.status(), Some(OrderStatus::PartiallyFulfilled));
    let (events, s) = then(&s, picked_up("P1", "STORE-A", &[("L2", 1)]));
    let OrderEvent::OrderPickedUp(e) = &events[0] else {
        panic!()
    };
    assert_eq!(e.consumed[0].reservation_id, "r2");
    assert_eq!(s.status(), Some(OrderStatus::Fulfilled));
    assert_eq!(
        when(
            &s,
            OrderCommand::MarkDelivered {
                fulfillment_id: "P1".into()
            }
        ),
        Err(E::UnknownFulfillment {
            fulfillment_id: "P1".into()
        })
    );
    let deliver = || OrderCommand::MarkDelivered {
        fulfillment_id: "F1".into(),
    };
    let (events, s) = then(&s, deliver());
    assert_eq!(types(&events), ["OrderDelivered.v1"]);
    assert_eq!(s.status(), Some(OrderStatus::Delivered));
    assert_eq!(when(&s, deliver()), Ok(vec![]));
}

#[test]
fn pickup_only_orders_are_ready_then_picked_up() {
    let mut p = place_order();
    p.lines.remove(0);
    p.allocations.remove(0);
    p.payment.as_mut().unwrap().amount = yen(500);
    let s = then(&Order::default(), place(p)).1;
    let (_, s) = then(&s, ready("P1", "STORE-A", &[("L2", 1)]));
    assert_eq!(s.status(), Some(OrderStatus::ReadyForPickup));
    let (_, s) = then(&s, picked_up("P1", "STORE-A", &[("L2", 1)]));
    assert_eq!(s.status(), Some(OrderStatus::PickedUp));
}

#[test]
fn cancel_whole_order_releases_every_reservation_then_void() {
    let s = placed();
    let (events, s) = then(&s, cancel(None));
    let OrderEvent::OrderLinesCancelled(c) = &events[0] else {
        panic!()
    };
    assert_eq!(c.lines, vec![LineQty::new("L1", 2), LineQty::new("L2", 1)]);
    assert_eq!(c.amount, yen(2500));
    let released: Vec<(&str, &str, i64)> = c
        .reservations_to_release
        .iter()
        .map(|r| (r.reservation_id.as_str(), r.location.as_str(), r.qty))
        .collect();
    assert_eq!(released, vec![("r1", "DC-EAST", 2), ("r2", "STORE-A", 1)]);
    assert_eq!(s.status(), Some(OrderStatus::Cancelled));
    assert_eq!(s.payable(), Some(yen(0)));
    // Again: already done.
    assert_eq!(when(&s, cancel(None)), Ok(vec![]));
    let (events, s) = then(&s, OrderCommand::VoidPayment);
    assert_eq!(
        events,
        vec![OrderEvent::PaymentVoided(PaymentVoided {
            payment_id: Uuid::from_u128(7),
            amount: yen(2500)
        })]
    );
    assert_eq!(when(&s, OrderCommand::VoidPayment), Ok(vec![]));
    assert_eq!(when(&s, capture(1, "c1")), Err(E::PaymentVoided));
}

#[test]
fn cancel_lines_and_quantities() {
    let s = placed();
    let (events, s) = then(&s, cancel(Some(&[("L1", 1)])));
    let OrderEvent::OrderLinesCancelled(c) = &events[0] else {
        panic!()
    };
    assert_eq!((c.amount, c.reservations_to_release[0].qty), (yen(1000), 1));
    assert_eq!(s.status(), Some(OrderStatus::PartiallyCancelled));
    assert_eq!(s.line("L1").unwrap().allocated_by_location()["DC-EAST"], 1);
    // More than remains.
    assert_eq!(
        when(&s, cancel(Some(&[("L1", 2)]))),
        Err(E::ExceedsAvailable {
            field: "lines.0.qty".into(),
            line_id: "L1".into(),
            requested: 2,
            available: 1
        })
    );
    let e = when(&s, cancel(Some(&[("LX", 1)]))).unwrap_err();
    assert_eq!(
        e,
        E::UnknownLine {
            field: "lines.0.lineId".into(),
            line_id: "LX".into()
        }
    );
    assert_eq!(
        field(&when(&s, cancel(Some(&[("L1", 0)]))).unwrap_err()),
        Some("lines.0.qty")
    );
    assert_eq!(
        field(&when(&s, cancel(Some(&[]))).unwrap_err()),
        Some("lines")
    );
    let blank = OrderCommand::Cancel {
        lines: None,
        reason: " ".into(),
    };
    assert_eq!(field(&when(&s, blank).unwrap_err()), Some("reason"));
    // Cancelling the rest, line by line, ends cancelled.
    let (_, s) = then(&s, cancel(Some(&[("L1", 1), ("L2", 1)])));
    assert_eq!(s.status(), Some(OrderStatus::Cancelled));
}

#[test]
fn cancel_after_ship_is_refused_for_shipped_units() {
    let s = placed();
    let (_, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 2)]));
    assert!(matches!(
        when(&s, cancel(Some(&[("L1", 1)]))),
        Err(E::ExceedsAvailable { available: 0, .. })
    ));
    // A whole-order cancel takes what is left (L2), and the shipped part stays.
    let (events, s) = then(&s, cancel(None));
    let OrderEvent::OrderLinesCancelled(c) = &events[0] else {
        panic!()
    };
    assert_eq!(c.lines, vec![LineQty::new("L2", 1)]);
    assert_eq!(s.status(), Some(OrderStatus::Fulfilled));
    let e = when(&s, cancel(None)).unwrap_err();
    assert_eq!((e.clone(), e.code()), (E::NothingToCancel, "CONFLICT"));
    // Some shipped, nothing captured: the payment is still needed, void refused.
    assert_eq!(
        when(&s, OrderCommand::VoidPayment),
        Err(E::PaymentStillNeeded)
    );
}

#[test]
fn cancelling_ready_units_unstages_them() {
    let s = placed();
    let (_, s) = then(&s, ready("P1", "STORE-A", &[("L2", 1)]));
    let (_, s) = then(&s, cancel(Some(&[("L2", 1)])));
    assert_eq!(s.line("L2").unwrap().ready, 0);
    assert!(when(&s, picked_up("P1", "STORE-A", &[("L2", 1)])).is_err());
}

#[test]
fn capture_never_exceeds_the_authorization() {
    let s = placed();
    let (events, s) = then(&s, capture(2000, "cap-1"));
    assert_eq!(types(&events), ["PaymentCaptured.v1"]);
    assert_eq!(
        when(&s, capture(501, "cap-2")),
        Err(E::CaptureExceedsAuthorized {
            requested: yen(501),
            capturable: yen(500)
        })
    );
    assert_eq!(when(&s, capture(2000, "cap-1")), Ok(vec![]));
    assert_eq!(
        when(&s, capture(1, "cap-1")),
        Err(E::PaymentReferenceConflict {
            reference: "cap-1".into()
        })
    );
    let e = when(
        &s,
        OrderCommand::CapturePayment {
            amount: Money::parse("1", "USD").unwrap(),
            reference: "cap-3".into(),
        },
    )
    .unwrap_err();
    assert!(matches!(e, E::CurrencyMismatch { .. }));
    assert_eq!(
        field(&when(&s, capture(0, "cap-3")).unwrap_err()),
        Some("amount")
    );
    assert_eq!(
        field(&when(&s, capture(1, "")).unwrap_err()),
        Some("reference")
    );
    let (_, s) = then(&s, capture(500, "cap-2"));
    assert_eq!(s.payment.as_ref().unwrap().captured, yen(2500));
    // Captured: a void is refused, a refund is the way back.
    assert_eq!(
        when(&s, OrderCommand::VoidPayment),
        Err(E::VoidAfterCapture)
    );
}

#[test]
fn cancelled_units_are_not_captured() {
    let s = placed();
    let (_, s) = then(&s, cancel(Some(&[("L1", 1)])));
    assert_eq!(
        when(&s, capture(2500, "cap-1")),
        Err(E::CaptureExceedsAuthorized {
            requested: yen(2500),
            capturable: yen(1500)
        })
    );
    let (_, s) = then(&s, capture(1500, "cap-1"));
    assert!(matches!(
        when(&s, capture(1, "cap-2")),
        Err(E::CaptureExceedsAuthorized { .. })
    ));
    // Captured first, then cancelled: the refund is the way back, and it is bounded.
    let s = placed();
    let (_, s) = then(&s, capture(2500, "cap-1"));
    let (_, s) = then(&s, cancel(Some(&[("L2", 1)])));
    assert!(when(&s, refund(501, "rf-1")).is_ok());
    assert!(when(&s, refund(2501, "rf-1")).is_err());
}

#[test]
fn refund_never_exceeds_what_was_captured() {
    let s = placed();
    assert_eq!(
        when(&s, refund(1, "ref-1")),
        Err(E::RefundExceedsCaptured {
            requested: yen(1),
            refundable: yen(0)
        })
    );
    let (_, s) = then(&s, capture(1000, "cap-1"));
    let (events, s) = then(&s, refund(600, "ref-1"));
    assert_eq!(types(&events), ["PaymentRefunded.v1"]);
    let e = when(&s, refund(401, "ref-2")).unwrap_err();
    assert_eq!(
        e,
        E::RefundExceedsCaptured {
            requested: yen(401),
            refundable: yen(400)
        }
    );
    assert_eq!((e.code(), field(&e)), ("CONFLICT", Some("amount")));
    assert_eq!(when(&s, refund(600, "ref-1")), Ok(vec![]));
    let (_, s) = then(&s, refund(400, "ref-2"));
    assert_eq!(s.payment.as_ref().unwrap().refunded, yen(1000));
}

#[test]
fn void_only_when_fully_cancelled_and_nothing_captured() {
    let s = placed();
    assert_eq!(
        when(&s, OrderCommand::VoidPayment),
        Err(E::PaymentStillNeeded)
    );
    let (_, partly) = then(&s, cancel(Some(&[("L1", 1)])));
    assert_eq!(
        when(&partly, OrderCommand::VoidPayment),
        Err(E::PaymentStillNeeded)
    );
}

#[test]
fn short_pick_then_reassign_to_another_location() {
    let s = placed();
    let short = OrderCommand::MarkShortPicked {
        line_id: "L1".into(),
        location: "DC-EAST".into(),
        qty: 1,
    };
    let (events, s) = then(&s, short.clone());
    let OrderEvent::LineShortPicked(e) = &events[0] else {
        panic!()
    };
    assert_eq!(e.reservations_to_release[0].reservation_id, "r1");
    let l1 = s.line("L1").unwrap();
    assert_eq!((l1.held(), l1.short_picked_total(), l1.open()), (1, 1, 2));
    assert_eq!(s.status(), Some(OrderStatus::Placed));
    // Only one unit is still held there.
    assert!(matches!(
        when(
            &s,
            OrderCommand::MarkShortPicked {
                line_id: "L1".into(),
                location: "DC-EAST".into(),
                qty: 2
            }
        ),
        Err(E::ExceedsAvailable { available: 1, .. })
    ));
    let reassign = |qty, id: &str| OrderCommand::ReassignLine {
        line_id: "L1".into(),
        from_location: "DC-EAST".into(),
        to_location: "STORE-B".into(),
        qty,
        new_reservation_id: id.into(),
    };
    let (events, s) = then(&s, reassign(1, "r3"));
    let OrderEvent::LineReassigned(e) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (e.short_picked_cleared, e.reservations_to_release.len()),
        (1, 0)
    );
    assert_eq!(when(&s, reassign(1, "r3")), Ok(vec![]));
    assert_eq!(
        when(&s, reassign(1, "r1")),
        Err(E::ReservationConflict {
            reservation_id: "r1".into()
        })
    );
    let l1 = s.line("L1").unwrap();
    assert_eq!(
        l1.allocated_by_location(),
        [("DC-EAST", 1), ("STORE-B", 1)].into_iter().collect()
    );
    let (_, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 1)]));
    let (_, s) = then(&s, ship("F2", "STORE-B", &[("L1", 1)]));
    assert_eq!(s.line("L1").unwrap().open(), 0);
}

#[test]
fn reassigning_held_units_releases_them_and_cancel_takes_short_picks_first() {
    let s = placed();
    let (events, s) = then(
        &s,
        OrderCommand::ReassignLine {
            line_id: "L1".into(),
            from_location: "DC-EAST".into(),
            to_location: "DC-WEST".into(),
            qty: 2,
            new_reservation_id: "r9".into(),
        },
    );
    let OrderEvent::LineReassigned(e) = &events[0] else {
        panic!()
    };
    assert_eq!(e.reservations_to_release[0].qty, 2);
    assert_eq!(s.line("L1").unwrap().open_at("DC-WEST"), 2);
    // A pickup line stays at its store.
    let e = when(
        &s,
        OrderCommand::ReassignLine {
            line_id: "L2".into(),
            from_location: "STORE-A".into(),
            to_location: "STORE-B".into(),
            qty: 1,
            new_reservation_id: "r10".into(),
        },
    )
    .unwrap_err();
    assert_eq!(field(&e), Some("toLocation"));
    // Short pick at DC-WEST, then cancel one: the short-picked unit goes, the reservation stays.
    let (_, s) = then(
        &s,
        OrderCommand::MarkShortPicked {
            line_id: "L1".into(),
            location: "DC-WEST".into(),
            qty: 1,
        },
    );
    let (events, s) = then(&s, cancel(Some(&[("L1", 1)])));
    let OrderEvent::OrderLinesCancelled(c) = &events[0] else {
        panic!()
    };
    assert!(c.reservations_to_release.is_empty());
    assert_eq!(c.short_picked_cleared.len(), 1);
    let l1 = s.line("L1").unwrap();
    assert_eq!((l1.held(), l1.short_picked_total(), l1.open()), (1, 0, 1));
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let s = placed();
    let mut history = when(&Order::default(), place(place_order())).unwrap();
    let mut state = s;
    for cmd in [
        ship("F1", "DC-EAST", &[("L1", 1)]),
        OrderCommand::MarkDelivered {
            fulfillment_id: "F1".into(),
        },
        ready("P1", "STORE-A", &[("L2", 1)]),
        picked_up("P1", "STORE-A", &[("L2", 1)]),
        OrderCommand::MarkShortPicked {
            line_id: "L1".into(),
            location: "DC-EAST".into(),
            qty: 1,
        },
        OrderCommand::ReassignLine {
            line_id: "L1".into(),
            from_location: "DC-EAST".into(),
            to_location: "STORE-B".into(),
            qty: 1,
            new_reservation_id: "r3".into(),
        },
        capture(1500, "c1"),
        refund(100, "rf1"),
        cancel(Some(&[("L1", 1)])),
    ] {
        let (events, next) = then(&state, cmd);
        history.extend(events);
        state = next;
    }
    history.push(
        PaymentVoided {
            payment_id: Uuid::from_u128(7),
            amount: yen(1),
        }
        .into(),
    );
    let mut seen = std::collections::BTreeSet::new();
    for event in &history {
        let data = event.payload_json().unwrap();
        let back = OrderEvent::decode(event.event_type(), &data)
            .unwrap()
            .unwrap();
        assert_eq!(&back, event);
        seen.insert(event.event_type());
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert!(OrderEvent::decode("Nope.v1", b"{}").is_none());
    // Replaying the history (minus the synthetic void) gives the same state.
    history.pop();
    assert_eq!(Order::from_events(&history), state);
    let json = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(json["type"], "OrderPlaced.v1");
    assert_eq!(json["data"]["total"]["amount"], "2500");
    assert_eq!(json["data"]["channel"], "WEB");
    assert_eq!(json["data"]["lines"][1]["delivery"]["method"], "PICKUP");
}

#[test]
fn status_strings_are_what_retailers_expect() {
    let all = [
        (OrderStatus::Placed, "PLACED"),
        (OrderStatus::PartiallyFulfilled, "PARTIALLY_FULFILLED"),
        (OrderStatus::Fulfilled, "FULFILLED"),
        (OrderStatus::ReadyForPickup, "READY_FOR_PICKUP"),
        (OrderStatus::PickedUp, "PICKED_UP"),
        (OrderStatus::Delivered, "DELIVERED"),
        (OrderStatus::Cancelled, "CANCELLED"),
        (OrderStatus::PartiallyCancelled, "PARTIALLY_CANCELLED"),
    ];
    for (status, text) in all {
        assert_eq!(status.as_str(), text);
        assert_eq!(serde_json::to_value(status).unwrap(), text);
    }
}

#[test]
fn sourcing_results_convert_into_placement_inputs() {
    use crate::domain::sourcing::{source, Candidate, Capability, LocationKind};
    let p = place_order();
    let lines: Vec<_> = p.lines.iter().map(PricedLine::sourcing_line).collect();
    let candidates = [
        Candidate {
            code: "DC-EAST".into(),
            kind: LocationKind::Dc,
            capabilities: [Capability::Ship].into_iter().collect(),
            lat: 35.8,
            lon: 139.9,
            active: true,
            remaining_capacity: 5,
            atp: [("SKU1".to_owned(), 5)].into_iter().collect(),
        },
        Candidate {
            code: "STORE-A".into(),
            kind: LocationKind::Store,
            capabilities: [Capability::Pickup].into_iter().collect(),
            lat: 35.69,
            lon: 139.7,
            active: true,
            remaining_capacity: 5,
            atp: [("SKU2".to_owned(), 1)].into_iter().collect(),
        },
    ];
    let plan = source(&lines, &candidates, false).unwrap();
    let allocations: Vec<_> = plan
        .allocations
        .iter()
        .enumerate()
        .map(|(i, a)| ReservedAllocation::new(a, format!("r{}", i + 1)))
        .collect();
    let mut sorted = allocations.clone();
    sorted.sort_by(|a, b| a.line_id.cmp(&b.line_id));
    assert_eq!(sorted, p.allocations);
    let placement = PlaceOrder {
        allocations,
        sourcing: plan.explanation,
        ..p
    };
    assert!(when(&Order::default(), place(placement)).is_ok());
}

// ---- exchange credit ----

fn credit(n: i64) -> Option<OrderCredit> {
    Some(OrderCredit {
        amount: yen(n),
        source: "rma:r-1".into(),
    })
}

/// The usual placement (¥2,500) paid partly by a credit of `c`, the rest (`due`) authorized.
fn place_with_credit(c: i64, due: Option<i64>) -> PlaceOrder {
    let mut p = place_order();
    p.credit = credit(c);
    p.payment = due.map(|d| PaymentAuthorization {
        amount: yen(d),
        ..p.payment.clone().unwrap()
    });
    p
}

#[test]
fn a_credit_below_the_total_authorizes_only_the_rest_and_caps_captures() {
    let (events, s) = then(
        &Order::default(),
        place(place_with_credit(1000, Some(1500))),
    );
    assert_eq!(types(&events), ["OrderPlaced.v1", "PaymentAuthorized.v1"]);
    let OrderEvent::OrderPlaced(p) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((p.total, p.credit.clone()), (yen(2500), credit(1000)));
    assert_eq!(s.credit(), credit(1000).as_ref());
    assert_eq!(s.payable(), Some(yen(1500)));
    assert_eq!(s.payment.as_ref().unwrap().authorized, yen(1500));
    // Shipping everything still captures no more than the customer pays.
    let (_, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 2)]));
    assert_eq!(
        when(&s, capture(2000, "cap-1")),
        Err(E::CaptureExceedsAuthorized {
            requested: yen(2000),
            capturable: yen(1500)
        })
    );
    let (_, s) = then(&s, capture(1500, "cap-1"));
    // Cancelling L2 (¥500) eats into the paid part first: ¥500 of the ¥1,500 goes back.
    let (_, s) = then(&s, cancel(Some(&[("L2", 1)])));
    assert_eq!(s.payable(), Some(yen(1000)));
    let p = s.payment.as_ref().unwrap();
    assert_eq!(
        p.captured.amount - s.payable().unwrap().amount,
        Decimal::from(500)
    );
}

#[test]
fn a_credit_covering_the_total_places_an_order_without_payment() {
    for c in [2500, 4000] {
        let (events, s) = then(&Order::default(), place(place_with_credit(c, None)));
        assert_eq!(types(&events), ["OrderPlaced.v1"]);
        assert_eq!(s.payment, None);
        assert_eq!(s.payable(), Some(yen(0)));
        assert_eq!(s.status(), Some(OrderStatus::Placed));
        // It ships like any order; there is simply nothing to take, give back or release.
        let (_, s) = then(&s, ship("F1", "DC-EAST", &[("L1", 2)]));
        assert_eq!(s.line("L1").unwrap().shipped, 2);
        for cmd in [capture(1, "c"), refund(1, "r"), OrderCommand::VoidPayment] {
            let e = when(&s, cmd).unwrap_err();
            assert_eq!(
                (e.clone(), e.code(), field(&e)),
                (E::NoPayment, "CONFLICT", None)
            );
        }
    }
    // Covered, and yet an authorization: it would charge the customer.
    assert_eq!(
        when(&Order::default(), place(place_with_credit(2500, Some(1)))),
        Err(E::PaymentAmountMismatch {
            expected: yen(0),
            actual: yen(1)
        })
    );
    // Not covered, and no authorization.
    assert_eq!(
        when(&Order::default(), place(place_with_credit(2000, None))),
        Err(E::PaymentAmountMismatch {
            expected: yen(500),
            actual: yen(0)
        })
    );
    // Not covered, the whole total authorized.
    assert!(matches!(
        when(
            &Order::default(),
            place(place_with_credit(1000, Some(2500)))
        ),
        Err(E::PaymentAmountMismatch { .. })
    ));
}

#[test]
fn a_credit_must_be_non_negative_in_the_order_currency_with_a_source() {
    let usd = OrderCredit {
        amount: Money::parse("10", "USD").unwrap(),
        source: "rma:r-1".into(),
    };
    let cases: Vec<(Option<OrderCredit>, &str, &str)> = vec![
        (Some(usd), "INVALID_INPUT", "credit.amount"),
        (credit(-1), "INVALID_INPUT", "credit.amount"),
        (
            Some(OrderCredit {
                amount: yen(1),
                source: " ".into(),
            }),
            "INVALID_INPUT",
            "credit.source",
        ),
        (
            Some(OrderCredit {
                amount: Money::parse("0.5", "JPY").unwrap(),
                source: "rma:r-1".into(),
            }),
            "INVALID_INPUT",
            "credit.amount",
        ),
    ];
    for (c, code, f) in cases {
        let e = place_err(|p| p.credit = c.clone());
        assert_eq!((e.code(), field(&e)), (code, Some(f)), "{c:?}: {e:?}");
    }
    assert!(matches!(
        validate_credit(&credit(1).unwrap(), Currency::USD),
        Err(E::CurrencyMismatch { .. })
    ));
    // Zero is a credit of nothing: the whole total is authorized.
    let (events, _) = then(&Order::default(), place(place_with_credit(0, Some(2500))));
    assert_eq!(types(&events), ["OrderPlaced.v1", "PaymentAuthorized.v1"]);
}

#[test]
fn a_partial_order_pays_only_what_is_left_after_out_of_stock_and_credit() {
    // L1 gets 1 of 2 (¥1,000 out of stock): ¥1,500 payable, ¥1,000 of it by credit.
    let mut p = place_with_credit(1000, Some(500));
    p.allow_partial = true;
    p.allocations[0].qty = 1;
    let (events, s) = then(&Order::default(), place(p.clone()));
    assert_eq!(
        types(&events),
        [
            "OrderPlaced.v1",
            "OrderLinesCancelled.v1",
            "PaymentAuthorized.v1"
        ]
    );
    assert_eq!(s.payable(), Some(yen(500)));
    // A credit above what is left: no payment at all.
    p.credit = credit(1500);
    p.payment = None;
    let (events, s) = then(&Order::default(), place(p));
    assert_eq!(types(&events), ["OrderPlaced.v1", "OrderLinesCancelled.v1"]);
    assert_eq!(s.payable(), Some(yen(0)));
}

#[test]
fn placements_without_credit_keep_their_stored_form() {
    let events = when(&Order::default(), place(place_order())).unwrap();
    let data = events[0].payload_json().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert!(json.get("credit").is_none(), "{json}");
    // An OrderPlaced written before credits existed decodes with none.
    let back = OrderEvent::decode("OrderPlaced.v1", &data)
        .unwrap()
        .unwrap();
    assert_eq!(back, events[0]);
    let OrderEvent::OrderPlaced(p) = back else {
        panic!()
    };
    assert_eq!(p.credit, None);
    // With a credit, it is stored and read back.
    let events = when(&Order::default(), place(place_with_credit(700, Some(1800)))).unwrap();
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["data"]["credit"]["amount"]["amount"], "700");
    assert_eq!(json["data"]["credit"]["source"], "rma:r-1");
    let data = events[0].payload_json().unwrap();
    assert_eq!(
        OrderEvent::decode("OrderPlaced.v1", &data)
            .unwrap()
            .unwrap(),
        events[0]
    );
}

// ---- refunds under an operation key ----

fn refund_op(n: i64, reference: &str, operation: &str) -> OrderCommand {
    OrderCommand::RefundPayment {
        amount: yen(n),
        reference: reference.into(),
        operation: Some(operation.into()),
    }
}

#[test]
fn a_refund_records_its_operation_and_the_operation_names_one_refund() {
    let (_, s) = then(&placed(), capture(2500, "cap-1"));
    let (events, s) = then(&s, refund_op(600, "ref-1", "rma:1"));
    let OrderEvent::PaymentRefunded(r) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(r.operation.as_deref(), Some("rma:1"));
    let p = s.payment.as_ref().unwrap();
    assert_eq!(
        p.refund_operations.get("rma:1"),
        Some(&OperationRefund {
            amount: yen(600),
            reference: "ref-1".into()
        })
    );
    // The same refund again: nothing new. The operation for another refund: refused.
    assert_eq!(when(&s, refund_op(600, "ref-1", "rma:1")), Ok(vec![]));
    let e = when(&s, refund_op(600, "ref-2", "rma:1")).unwrap_err();
    assert_eq!(
        e,
        E::RefundOperationConflict {
            operation: "rma:1".into()
        }
    );
    assert_eq!((e.code(), field(&e)), ("CONFLICT", Some("operation")));
    assert_eq!(
        field(&when(&s, refund_op(1, "ref-3", " ")).unwrap_err()),
        Some("operation")
    );
    // Refunds without an operation (older events) record none.
    let (_, s) = then(&s, refund(100, "ref-4"));
    assert_eq!(s.payment.as_ref().unwrap().refund_operations.len(), 1);
    // Folded from the stored form, the same.
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["data"]["operation"], "rma:1");
}

fn confirmed(
    operation: &str,
    held: &[(&str, &str, &str, i64)],
    unheld: &[(&str, i64)],
) -> OrderCommand {
    OrderCommand::CancelConfirmed {
        operation: operation.into(),
        held: held
            .iter()
            .map(|(line, reservation, location, qty)| ReservationRelease {
                line_id: (*line).into(),
                reservation_id: (*reservation).into(),
                location: (*location).into(),
                qty: *qty,
            })
            .collect(),
        unheld: unheld.iter().map(|(l, q)| LineQty::new(*l, *q)).collect(),
        reason: "CUSTOMER_REQUEST".into(),
    }
}

#[test]
fn a_confirmed_cancellation_records_each_part_once_in_any_order() {
    let order = placed();
    // The fulfillment order's reaction records the held part first …
    let (events, after) = then(
        &order,
        confirmed("op-1", &[("L1", "r1", "DC-EAST", 1)], &[]),
    );
    let [OrderEvent::OrderLinesCancelled(e)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(e.operation.as_deref(), Some("op-1"));
    assert_eq!(e.amount, yen(1000));
    assert_eq!(e.reservations_to_release.len(), 1);
    assert_eq!(after.line("L1").unwrap().cancelled, 1);
    // … then the handler sends the whole: nothing is recorded twice.
    assert_eq!(
        when(
            &after,
            confirmed("op-1", &[("L1", "r1", "DC-EAST", 1)], &[])
        ),
        Ok(vec![])
    );
    // Another operation cancels more.
    let (_, more) = then(
        &after,
        confirmed("op-2", &[("L1", "r1", "DC-EAST", 1)], &[]),
    );
    assert_eq!(more.line("L1").unwrap().cancelled, 2);
    assert_eq!(more.line("L1").unwrap().held(), 0);
    // A reservation with nothing left open records nothing.
    assert_eq!(
        when(&more, confirmed("op-3", &[("L1", "r1", "DC-EAST", 1)], &[])),
        Ok(vec![])
    );
    // Unknown lines are refused.
    assert!(matches!(
        when(
            &order,
            confirmed("op-4", &[("L9", "r9", "DC-EAST", 1)], &[])
        ),
        Err(E::UnknownLine { .. })
    ));
}

#[test]
fn units_no_location_holds_are_the_orders_own_to_cancel_once() {
    // L1 short-picked at DC-EAST: both units wait for a new location.
    let (_, short) = then(
        &placed(),
        OrderCommand::MarkShortPicked {
            line_id: "L1".into(),
            location: "DC-EAST".into(),
            qty: 2,
        },
    );
    let (events, after) = then(&short, confirmed("op-1", &[], &[("L1", 2)]));
    let [OrderEvent::OrderLinesCancelled(e)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(e.short_picked_cleared.len(), 1);
    assert_eq!(after.line("L1").unwrap().cancelled, 2);
    assert_eq!(after.line("L1").unwrap().short_picked_total(), 0);
    assert_eq!(
        when(&after, confirmed("op-1", &[], &[("L1", 2)])),
        Ok(vec![])
    );
    // Held units are never taken as unheld ones.
    assert_eq!(
        when(&placed(), confirmed("op-2", &[], &[("L1", 2)])),
        Ok(vec![])
    );
}
