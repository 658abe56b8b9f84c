//! Random command sequences on a placed order keep the quantity and money identities.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use ichigen_shared::money::{Currency, Money};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;

const LOCATIONS: [&str; 4] = ["DC-EAST", "DC-WEST", "STORE-A", "STORE-B"];
const LINES: [&str; 3] = ["L1", "L2", "L3"];

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

#[derive(Debug, Clone)]
enum Op {
    Ship(usize, usize, i64, u8),
    Ready(i64, u8),
    PickUp(i64, u8),
    Deliver(u8),
    Cancel(Option<(usize, i64)>),
    Capture(i64, u8),
    Refund(i64, u8),
    Void,
    ShortPick(usize, usize, i64),
    Reassign(usize, usize, usize, i64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let line = 0usize..3;
    let loc = 0usize..4;
    let qty = prop_oneof![1 => -1i64..1, 6 => 1i64..4];
    prop_oneof![
        4 => (line.clone(), loc.clone(), qty.clone(), 0u8..6).prop_map(|(l, p, q, f)| Op::Ship(l, p, q, f)),
        2 => (qty.clone(), 0u8..4).prop_map(|(q, f)| Op::Ready(q, f)),
        2 => (qty.clone(), 0u8..4).prop_map(|(q, f)| Op::PickUp(q, f)),
        1 => (0u8..6).prop_map(Op::Deliver),
        2 => (line.clone(), qty.clone()).prop_map(|c| Op::Cancel(Some(c))),
        // Rarer: a whole-order cancel ends most of the interesting sequences.
        1 => Just(Op::Cancel(None)),
        2 => (-100i64..4000, 0u8..4).prop_map(|(a, r)| Op::Capture(a, r)),
        2 => (-100i64..4000, 0u8..4).prop_map(|(a, r)| Op::Refund(a, r)),
        1 => Just(Op::Void),
        1 => (line.clone(), loc.clone(), qty.clone()).prop_map(|(l, p, q)| Op::ShortPick(l, p, q)),
        2 => (line, loc.clone(), loc, qty, 0u8..6).prop_map(|(l, f, t, q, r)| Op::Reassign(l, f, t, q, r)),
    ]
}

fn command(op: &Op) -> OrderCommand {
    let lines = |l: usize, q: i64| vec![LineQty::new(LINES[l], q)];
    match op {
        Op::Ship(l, p, q, f) => OrderCommand::MarkShipped {
            fulfillment_id: format!("F{f}"),
            location: LOCATIONS[*p].into(),
            lines: lines(*l, *q),
            carrier: "C".into(),
            tracking: None,
        },
        Op::Ready(q, f) => OrderCommand::MarkReadyForPickup {
            fulfillment_id: format!("P{f}"),
            location: "STORE-A".into(),
            lines: lines(1, *q),
        },
        Op::PickUp(q, f) => OrderCommand::MarkPickedUp {
            fulfillment_id: format!("P{f}"),
            location: "STORE-A".into(),
            lines: lines(1, *q),
        },
        Op::Deliver(f) => OrderCommand::MarkDelivered {
            fulfillment_id: format!("F{f}"),
        },
        Op::Cancel(which) => OrderCommand::Cancel {
            lines: which.map(|(l, q)| lines(l, q)),
            reason: "PROP".into(),
        },
        Op::Capture(a, r) => OrderCommand::CapturePayment {
            amount: yen(*a),
            reference: format!("c{r}"),
        },
        Op::Refund(a, r) => OrderCommand::RefundPayment {
            amount: yen(*a),
            reference: format!("r{r}"),
            operation: None,
        },
        Op::Void => OrderCommand::VoidPayment,
        Op::ShortPick(l, p, q) => OrderCommand::MarkShortPicked {
            line_id: LINES[*l].into(),
            location: LOCATIONS[*p].into(),
            qty: *q,
        },
        Op::Reassign(l, f, t, q, r) => OrderCommand::ReassignLine {
            line_id: LINES[*l].into(),
            from_location: LOCATIONS[*f].into(),
            to_location: LOCATIONS[*t].into(),
            qty: *q,
            new_reservation_id: format!("new{r}"),
        },
    }
}

/// L1 shipped home (split DC-EAST / DC-WEST), L2 picked up at STORE-A, L3 endless aisle to
/// STORE-A from STORE-B; paid by an exchange credit of `credit` (if any) and the rest
/// authorized (no payment when the credit covers it all).
fn place(q1: i64, east: i64, q2: i64, q3: i64, credit: Option<i64>) -> PlaceOrder {
    let home = Delivery::Ship {
        lat: 35.66,
        lon: 139.70,
    };
    let priced = |id: &str, qty, price, delivery| PricedLine {
        line_id: id.into(),
        sku: format!("SKU-{id}"),
        title: "t".into(),
        qty,
        unit_price: yen(price),
        delivery,
    };
    let alloc = |line: &str, location: &str, qty, r: &str| ReservedAllocation {
        line_id: line.into(),
        location: location.into(),
        qty,
        reservation_id: r.into(),
    };
    let mut allocations = vec![];
    if east > 0 {
        allocations.push(alloc("L1", "DC-EAST", east, "a1"));
    }
    if q1 > east {
        allocations.push(alloc("L1", "DC-WEST", q1 - east, "a2"));
    }
    allocations.push(alloc("L2", "STORE-A", q2, "a3"));
    allocations.push(alloc("L3", "STORE-B", q3, "a4"));
    PlaceOrder {
        order_id: Uuid::from_u128(1),
        customer_id: None,
        placed_by: "cust".into(),
        channel: Channel::Web,
        lines: vec![
            priced("L1", q1, 100, home),
            priced(
                "L2",
                q2,
                250,
                Delivery::Pickup {
                    store: "STORE-A".into(),
                },
            ),
            priced(
                "L3",
                q3,
                1000,
                Delivery::ShipToStore {
                    store: "STORE-A".into(),
                    lat: 35.69,
                    lon: 139.70,
                },
            ),
        ],
        allocations,
        sourcing: vec![],
        payment: due(q1, q2, q3, credit).map(|due| PaymentAuthorization {
            payment_id: Uuid::from_u128(2),
            provider: "manual".into(),
            reference: "auth".into(),
            amount: yen(due),
        }),
        credit: credit.map(|c| OrderCredit {
            amount: yen(c),
            source: "rma:prop".into(),
        }),
        allow_partial: false,
        idempotency_key: "k".into(),
        request_fingerprint: "f".into(),
    }
}

/// What the customer's means of payment is authorized for: `None` when the credit covers it.
fn due(q1: i64, q2: i64, q3: i64, credit: Option<i64>) -> Option<i64> {
    let total = q1 * 100 + q2 * 250 + q3 * 1000;
    match credit {
        None => Some(total),
        Some(c) => (total > c).then_some(total - c),
    }
}

fn check(state: &Order) -> Result<(), TestCaseError> {
    let (mut open, mut cancelled, mut fulfilled, mut ready) = (0, 0, 0, 0);
    for l in &state.lines {
        prop_assert!(l.cancelled >= 0 && l.shipped >= 0 && l.picked_up >= 0 && l.ready >= 0);
        prop_assert!(l.cancelled + l.shipped + l.picked_up <= l.qty, "{l:?}");
        prop_assert!(l.delivered <= l.shipped, "{l:?}");
        prop_assert!(l.ready <= l.held(), "{l:?}");
        prop_assert!(l.allocations.iter().all(|a| a.open() >= 0), "{l:?}");
        // Every open unit is held somewhere or waiting after a short pick.
        prop_assert_eq!(l.unallocated(), 0, "{:?}", l);
        prop_assert!(l.short_picked.values().all(|q| *q > 0));
        if l.is_pickup() {
            prop_assert_eq!(l.shipped, 0);
        } else {
            prop_assert_eq!(l.picked_up + l.ready, 0);
        }
        open += l.open();
        cancelled += l.cancelled;
        fulfilled += l.fulfilled();
        ready += l.ready;
    }
    let p = state.payment.as_ref();
    let h = state.header.as_ref();
    let credit = state.credit().map_or(Decimal::ZERO, |c| c.amount.amount);
    // A payment exactly when the credit (if any) left something to pay.
    prop_assert_eq!(
        p.is_some(),
        state.credit().is_none() || h.is_some_and(|h| h.total.amount > credit)
    );
    if let Some(p) = p {
        prop_assert!(p.captured.amount >= Decimal::ZERO);
        prop_assert!(p.captured.amount <= p.authorized.amount);
        // The credit is never charged to the customer.
        prop_assert!(h.is_some_and(|h| p.captured.amount <= h.total.amount - credit));
        prop_assert!(p.refunded.amount <= p.captured.amount);
        prop_assert!(!p.voided || p.captured.amount.is_zero());
    }
    let status = state.status();
    let consistent = match status {
        Some(OrderStatus::Cancelled) => open == 0 && fulfilled == 0,
        Some(OrderStatus::Fulfilled | OrderStatus::PickedUp | OrderStatus::Delivered) => {
            open == 0 && fulfilled > 0
        }
        Some(OrderStatus::PartiallyFulfilled) => fulfilled > 0 && open > 0,
        Some(OrderStatus::ReadyForPickup) => fulfilled == 0 && open > 0 && ready == open,
        Some(OrderStatus::PartiallyCancelled) => fulfilled == 0 && cancelled > 0 && open > 0,
        Some(OrderStatus::Placed) => fulfilled == 0 && cancelled == 0 && open > 0,
        None => false,
    };
    prop_assert!(
        consistent,
        "{status:?}: open {open} cancelled {cancelled} fulfilled {fulfilled} ready {ready}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_sequences_keep_quantities_and_money_consistent(
        (q1, east) in (1i64..6).prop_flat_map(|q| (Just(q), 0..=q)),
        q2 in 1i64..4,
        q3 in 1i64..4,
        ops in proptest::collection::vec(op(), 1..60),
        credit in proptest::option::of(0i64..8000),
    ) {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut state = Order::default();
        let mut history = decide(&state, &OrderCommand::Place(Box::new(place(q1, east, q2, q3, credit))), now)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        for e in &history {
            state.apply(e);
        }
        // Per reservation: reserved, then released or consumed, never more than reserved.
        let mut ledger: BTreeMap<String, i64> = BTreeMap::new();
        for a in [("a1", east), ("a2", q1 - east), ("a3", q2), ("a4", q3)] {
            ledger.insert(a.0.into(), a.1);
        }
        check(&state)?;
        for op in &ops {
            let Ok(events) = decide(&state, &command(op), now) else { continue };
            for event in &events {
                match event {
                    OrderEvent::OrderLinesCancelled(e) => {
                        for r in &e.reservations_to_release {
                            *ledger.entry(r.reservation_id.clone()).or_default() -= r.qty;
                        }
                    }
                    OrderEvent::LineShortPicked(LineShortPicked { reservations_to_release, .. }) => {
                        for r in reservations_to_release {
                            *ledger.entry(r.reservation_id.clone()).or_default() -= r.qty;
                        }
                    }
                    OrderEvent::LineReassigned(e) => {
                        for r in &e.reservations_to_release {
                            *ledger.entry(r.reservation_id.clone()).or_default() -= r.qty;
                        }
                        *ledger.entry(e.new_reservation_id.clone()).or_default() += e.qty;
                    }
                    OrderEvent::OrderShipped(OrderShipped { consumed, .. })
                    | OrderEvent::OrderPickedUp(OrderPickedUp { consumed, .. }) => {
                        for u in consumed {
                            *ledger.entry(u.reservation_id.clone()).or_default() -= u.qty;
                        }
                    }
                    _ => {}
                }
                let captured_before = state.payment.as_ref().map(|p| p.captured);
                let data = event.payload_json().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back = OrderEvent::decode(event.event_type(), &data);
                prop_assert!(matches!(&back, Some(Ok(b)) if b == event));
                state.apply(event);
                history.push(event.clone());
                // A capture never charges for cancelled units.
                if let (OrderEvent::PaymentCaptured(_), Some(p), Some(payable)) =
                    (event, state.payment.as_ref(), state.payable())
                {
                    prop_assert!(captured_before != Some(p.captured));
                    prop_assert!(p.captured.amount - p.refunded.amount <= payable.amount);
                }
            }
            prop_assert!(ledger.values().all(|q| *q >= 0), "{ledger:?}");
            // What the ledger says is held is what the state says is held.
            let held: i64 = state.lines.iter().map(LineState::held).sum();
            prop_assert_eq!(held, ledger.values().sum::<i64>());
            check(&state)?;
        }
        prop_assert_eq!(Order::from_events(&history), state);
    }
}
