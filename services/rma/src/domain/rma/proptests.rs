//! Properties of the refund arithmetic, and of random command sequences on one return.

use std::collections::BTreeSet;

use chrono::{TimeDelta, TimeZone, Utc};
use ichigen_shared::money::{Currency, Money};
use proptest::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::domain::policy::{decide_policy, default_policy, Policy};

/// A line for [`quote`]: price and fee in minor units, fee % in hundredths.
#[derive(Debug, Clone)]
struct LineSpec {
    price_minor: i64,
    qty: usize,
    pct_hundredths: i64,
    customer_pays: bool,
    shipping_minor: i64,
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        0i64..2_000_000,
        0usize..5,
        prop_oneof![Just(0i64), Just(1000), 0i64..=10_000],
        any::<bool>(),
        0i64..200_000,
    )
        .prop_map(
            |(price_minor, qty, pct_hundredths, customer_pays, shipping_minor)| LineSpec {
                price_minor,
                qty,
                pct_hundredths,
                customer_pays,
                shipping_minor,
            },
        )
}

fn minor(n: i64, currency: Currency) -> Money {
    Money::new(Decimal::new(n, currency.minor_units()), currency)
}

fn rma_line(i: usize, spec: &LineSpec, currency: Currency) -> RmaLine {
    RmaLine {
        rma_line_id: format!("R{}", i + 1),
        order_line_id: format!("L{}", i + 1),
        sku: format!("SKU-{i}"),
        title: "t".into(),
        unit_price: minor(spec.price_minor, currency),
        qty: spec.qty as i64,
        reason: ReasonSnapshot {
            code: "R".into(),
            label_ja: "r".into(),
            label_en: "r".into(),
            window_days: 30,
            inspection_required: false,
            restocking_fee_pct: Decimal::new(spec.pct_hundredths, 2),
            customer_pays_shipping: spec.customer_pays,
            return_shipping_fee: if spec.customer_pays {
                minor(spec.shipping_minor, currency)
            } else {
                Money::zero(currency)
            },
            auto_approve: true,
        },
        return_by: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never negative, never more than what the units are worth nor than the order can still
    /// refund; fees round down per line; the amounts stay in the currency's minor units.
    #[test]
    fn a_refund_never_exceeds_gross_or_what_is_left(
        specs in prop::collection::vec(line_spec(), 1..5),
        usd in any::<bool>(),
        charged in any::<bool>(),
        left_minor in -10_000i64..5_000_000,
    ) {
        let currency = if usd { Currency::USD } else { Currency::JPY };
        let lines: Vec<RmaLine> =
            specs.iter().enumerate().map(|(i, s)| rma_line(i, s, currency)).collect();
        let items: Vec<QuoteItem<'_>> = lines
            .iter()
            .zip(&specs)
            .map(|(l, s)| (l, (1..=s.qty).map(|n| format!("{}-{n}", l.rma_line_id)).collect(), true))
            .collect();
        let left = minor(left_minor, currency);
        let q = quote(currency, &items, charged, Some(left)).unwrap();
        let uncapped = quote(currency, &items, charged, None).unwrap();

        let zero = Decimal::ZERO;
        prop_assert!(q.amount.amount >= zero);
        prop_assert!(q.amount.amount <= q.gross.amount);
        prop_assert!(q.amount.amount <= left.amount.max(zero));
        prop_assert_eq!(q.amount.amount, uncapped.amount.amount.min(left.amount.max(zero)));
        prop_assert_eq!(q.capped, uncapped.amount.amount > left.amount.max(zero));
        prop_assert!(!uncapped.capped);
        prop_assert_eq!(
            uncapped.amount.amount,
            (q.gross.amount - q.restocking_fee.amount - q.shipping_fee.amount).max(zero)
        );
        let dp = currency.minor_units();
        for m in [q.gross, q.restocking_fee, q.shipping_fee, q.amount] {
            prop_assert_eq!(m.currency, currency);
            prop_assert!(m.amount.normalize().scale() <= dp, "{}", m);
        }
        // Each line's fee is the exact fee rounded down: ≤ exact, and less than a minor unit
        // below it.
        let unit = Decimal::new(1, dp);
        for l in &q.lines {
            let exact = l.gross.amount * l.restocking_fee_pct / Decimal::ONE_HUNDRED;
            prop_assert!(l.restocking_fee.amount <= exact);
            prop_assert!(exact - l.restocking_fee.amount < unit);
        }
        prop_assert!(q.restocking_fee.amount <= q.gross.amount);
        // Shipping: once, only if some covered line's customer pays, never after a charge.
        let payers: Vec<i64> = specs
            .iter()
            .filter(|s| s.customer_pays && s.qty > 0)
            .map(|s| s.shipping_minor)
            .collect();
        let expected_shipping = if charged { None } else { payers.iter().min().copied() };
        prop_assert_eq!(q.shipping_fee, minor(expected_shipping.unwrap_or(0), currency));
        let units: usize = specs.iter().map(|s| s.qty).sum();
        prop_assert_eq!(q.units.len(), units);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Receive(u8, i64, u8),
    Grade(u8, u8),
    Refund(u8),
    /// Another return (or a cancellation) of the same order refunds this much.
    Elsewhere(i64),
    Exchange(u8, i64),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0i64..4, 0u8..4).prop_map(|(l, q, r)| Op::Receive(l, q, r)),
        4 => (0u8..8, 0u8..7).prop_map(|(u, g)| Op::Grade(u, g)),
        3 => (0u8..4).prop_map(Op::Refund),
        1 => (0i64..6_000).prop_map(Op::Elsewhere),
        1 => (0u8..3, 0i64..10_000).prop_map(|(o, t)| Op::Exchange(o, t)),
        1 => Just(Op::Close),
    ]
}

const GRADES: [&str; 7] = [
    "NEW",
    "LIKE_NEW",
    "GOOD",
    "FAIR",
    "DAMAGED",
    "DEFECTIVE",
    "MINT",
];

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives in whatever order: units are received at most as requested, each unit
    /// is settled once, the return shipping is deducted once, refunds stay within what the
    /// order had left (so the order never refunds more than it captured), and the events fold
    /// back into the state they were decided on.
    #[test]
    fn random_sequences_keep_the_money_and_unit_invariants(
        ops in prop::collection::vec(op(), 1..40),
        captured in 0i64..25_000,
    ) {
        let mut policy = Policy::default();
        for c in default_policy() {
            for e in decide_policy(&policy, &c).unwrap() {
                policy.apply(&e);
            }
        }
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let line = |id: &str, price: i64| OrderLineFacts {
            line_id: id.into(),
            sku: format!("SKU-{id}"),
            title: id.into(),
            unit_price: yen(price),
            fulfilled_qty: 3,
            fulfilled_at: Some(now - TimeDelta::days(2)),
            already_returned_qty: 0,
        };
        let request = RequestReturn {
            rma_id: Uuid::from_u128(1),
            order: OrderFacts {
                order_id: Uuid::from_u128(2),
                customer_id: None,
                currency: Currency::JPY,
                lines: vec![line("L1", 2990), line("L2", 1999), line("L3", 9800)],
                captured: yen(captured),
                refunded: yen(0),
            },
            lines: vec![
                RequestedLine::new("L1", 3, "SIZE_FIT"),
                RequestedLine::new("L2", 2, "CHANGED_MIND"),
                RequestedLine::new("L3", 1, "WRONG_ITEM"),
            ],
            requested_by: "c".into(),
            note: String::new(),
        };
        let mut state = Rma::default();
        let mut history = Vec::new();
        let mut refunded_on_order = 0i64;
        for cmd in [
            RmaCommand::Request(Box::new(request)),
            RmaCommand::Approve { note: String::new(), by: "a".into() },
        ] {
            let events = decide(&state, &cmd, &policy, now).unwrap();
            for e in &events {
                state.apply(e);
            }
            history.extend(events);
        }
        for op in &ops {
            let left = yen((captured - refunded_on_order).max(0));
            let cmd = match op {
                Op::Receive(l, q, r) => RmaCommand::Receive {
                    receipt_id: format!("W{r}"),
                    location: "DC".into(),
                    lines: vec![ReceivedLine::new(format!("R{}", l + 1), *q)],
                    in_person: false,
                },
                Op::Grade(u, g) => RmaCommand::Grade {
                    unit_id: state
                        .units
                        .get(*u as usize)
                        .map_or_else(|| "R9-9".into(), |u| u.unit_id.clone()),
                    grade_code: GRADES[*g as usize].into(),
                },
                Op::Refund(r) => RmaCommand::IssueRefund {
                    refundable_left: left,
                    payment_reference: format!("pay-{r}"),
                },
                Op::Elsewhere(n) => {
                    refunded_on_order += (*n).min(captured - refunded_on_order).max(0);
                    continue;
                }
                Op::Exchange(o, t) => RmaCommand::RecordExchange {
                    exchange_order_id: Uuid::from_u128(100 + u128::from(*o)),
                    replacement_total: yen(*t),
                },
                Op::Close => RmaCommand::Close { by: "a".into() },
            };
            let Ok(events) = decide(&state, &cmd, &policy, now) else {
                continue;
            };
            for e in &events {
                if let RmaEvent::RefundIssued(r) = e {
                    prop_assert!(r.amount.amount >= Decimal::ZERO);
                    prop_assert!(r.amount.amount <= left.amount);
                    prop_assert!(r.amount.amount <= r.breakdown.gross.amount);
                    // The handler refunds it on the order.
                    refunded_on_order += r.amount.amount.to_i64().unwrap();
                }
                state.apply(e);
            }
            history.extend(events);
            prop_assert!(refunded_on_order <= captured);
            for l in &state.lines {
                prop_assert!(l.received <= l.line.qty);
            }
        }

        let mut settled = BTreeSet::new();
        let mut shipping_charges = 0;
        for e in &history {
            let (units, shipping) = match e {
                RmaEvent::RefundIssued(r) => (&r.units, r.breakdown.shipping_fee),
                RmaEvent::ExchangeOrdered(x) => (&x.units, x.breakdown.shipping_fee),
                _ => continue,
            };
            for u in units {
                prop_assert!(settled.insert(u.clone()), "unit {} settled twice", u);
                let unit = state.unit(u).unwrap();
                let line = state.line(&unit.rma_line_id).unwrap();
                prop_assert!(
                    !line.line.reason.inspection_required || unit.grade.is_some(),
                    "unit {} settled before its inspection", u
                );
            }
            if !shipping.amount.is_zero() {
                shipping_charges += 1;
            }
        }
        prop_assert!(shipping_charges <= 1);
        let unit_ids: BTreeSet<_> = state.units.iter().map(|u| u.unit_id.clone()).collect();
        prop_assert_eq!(unit_ids.len(), state.units.len());
        prop_assert_eq!(Rma::from_events(&history), state.clone());
        if state.closed {
            prop_assert!(state.units.iter().all(|u| u.grade.is_some() && u.settlement.is_some()));
        }
    }
}
