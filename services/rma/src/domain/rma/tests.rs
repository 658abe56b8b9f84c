//! Given events, when a command, then events or an error.
//!
//! `decide` takes the state by reference, so a refusal cannot have changed it; the tests that
//! check refusals also check that folding nothing leaves the state as it was given.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::domain::error::RmaError as E;
use crate::domain::policy::{
    decide_policy, default_policy, ConditionGradeSpec, Disposition, Policy, PolicyCommand,
    ReturnReasonSpec,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn days_ago(n: i64) -> DateTime<Utc> {
    now() - TimeDelta::days(n)
}

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn usd(s: &str) -> Money {
    Money::parse(s, "USD").unwrap()
}

fn rma_id() -> Uuid {
    Uuid::from_u128(0x0fed_cba9_8765_4321_0fed_cba9_8765_4321)
}

fn order_id() -> Uuid {
    Uuid::from_u128(42)
}

fn with_policy(policy: &mut Policy, command: PolicyCommand) {
    for e in decide_policy(policy, &command).unwrap() {
        policy.apply(&e);
    }
}

fn policy() -> Policy {
    let mut p = Policy::default();
    for c in default_policy() {
        with_policy(&mut p, c);
    }
    p
}

fn order_line(
    id: &str,
    sku: &str,
    price: Money,
    fulfilled: i64,
    days: Option<i64>,
) -> OrderLineFacts {
    OrderLineFacts {
        line_id: id.into(),
        sku: sku.into(),
        title: format!("{sku} title"),
        unit_price: price,
        fulfilled_qty: fulfilled,
        fulfilled_at: days.map(days_ago),
        already_returned_qty: 0,
    }
}

/// L1: 3 × ¥2,990 delivered 5 days ago; L2: 1 × ¥9,800 delivered 20 days ago; L3: a cap not
/// shipped yet; L4: 3 × ¥1,999 delivered 3 days ago. Everything delivered was captured.
fn order() -> OrderFacts {
    OrderFacts {
        order_id: order_id(),
        customer_id: Some("cust-1".into()),
        currency: Currency::JPY,
        lines: vec![
            order_line("L1", "TSHIRT-M", yen(2990), 3, Some(5)),
            order_line("L2", "JEANS-30", yen(9800), 1, Some(20)),
            order_line("L3", "CAP", yen(1500), 0, None),
            order_line("L4", "SOCKS", yen(1999), 3, Some(3)),
        ],
        captured: yen(24_767),
        refunded: yen(0),
    }
}

fn request_of(order: OrderFacts, lines: &[(&str, i64, &str)]) -> RequestReturn {
    RequestReturn {
        rma_id: rma_id(),
        order,
        lines: lines
            .iter()
            .map(|(l, q, r)| RequestedLine::new(*l, *q, *r))
            .collect(),
        requested_by: "cust-1".into(),
        note: "サイズが小さかったです".into(),
    }
}

fn request(lines: &[(&str, i64, &str)]) -> RmaCommand {
    RmaCommand::Request(Box::new(request_of(order(), lines)))
}

fn approve(by: &str) -> RmaCommand {
    RmaCommand::Approve {
        note: "OK".into(),
        by: by.into(),
    }
}

fn reject(note: &str) -> RmaCommand {
    RmaCommand::Reject {
        note: note.into(),
        by: "agent-7".into(),
    }
}

fn receive(receipt: &str, lines: &[(&str, i64)]) -> RmaCommand {
    RmaCommand::Receive {
        receipt_id: receipt.into(),
        location: "DC-EAST".into(),
        lines: lines
            .iter()
            .map(|(l, q)| ReceivedLine::new(*l, *q))
            .collect(),
        in_person: false,
    }
}

fn grade(unit: &str, code: &str) -> RmaCommand {
    RmaCommand::Grade {
        unit_id: unit.into(),
        grade_code: code.into(),
    }
}

fn refund(left: Money, reference: &str) -> RmaCommand {
    RmaCommand::IssueRefund {
        refundable_left: left,
        payment_reference: reference.into(),
    }
}

fn exchange(id: u128, total: Money) -> RmaCommand {
    RmaCommand::RecordExchange {
        exchange_order_id: Uuid::from_u128(id),
        replacement_total: total,
    }
}

fn close() -> RmaCommand {
    RmaCommand::Close {
        by: "agent-7".into(),
    }
}

fn when_with(state: &Rma, cmd: RmaCommand, policy: &Policy) -> Result<Vec<RmaEvent>, E> {
    decide(state, &cmd, policy, now())
}

fn when(state: &Rma, cmd: RmaCommand) -> Result<Vec<RmaEvent>, E> {
    when_with(state, cmd, &policy())
}

/// Decides and applies; panics on a refusal.
fn then_with(state: &Rma, cmd: RmaCommand, policy: &Policy) -> (Vec<RmaEvent>, Rma) {
    let events = when_with(state, cmd, policy).unwrap();
    let mut next = state.clone();
    for e in &events {
        next.apply(e);
    }
    (events, next)
}

fn then(state: &Rma, cmd: RmaCommand) -> (Vec<RmaEvent>, Rma) {
    then_with(state, cmd, &policy())
}

/// Folds a sequence of accepted commands.
fn given(cmds: impl IntoIterator<Item = RmaCommand>) -> Rma {
    cmds.into_iter().fold(Rma::default(), |s, c| then(&s, c).1)
}

/// Refused, and nothing to apply.
fn refused(state: &Rma, cmd: RmaCommand) -> E {
    when(state, cmd).unwrap_err()
}

fn types(events: &[RmaEvent]) -> Vec<&'static str> {
    events.iter().map(RmaEvent::event_type).collect()
}

fn refund_issued(events: &[RmaEvent]) -> &RefundIssued {
    match events {
        [RmaEvent::RefundIssued(r)] => r,
        _ => panic!("{events:?}"),
    }
}

/// 2 × T-shirt, wrong size: customer pays ¥800 shipping, inspection, agent approval.
fn size_fit_approved() -> Rma {
    given([request(&[("L1", 2, "SIZE_FIT")]), approve("agent-7")])
}

// ---------------------------------------------------------------------------------------------
// Request

#[test]
fn a_request_snapshots_what_later_steps_need() {
    let (events, s) = then(&Rma::default(), request(&[("L1", 2, "SIZE_FIT")]));
    assert_eq!(types(&events), ["ReturnRequested.v1"]);
    let RmaEvent::ReturnRequested(r) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(
        (
            r.rma_id,
            r.order_id,
            r.customer_id.as_deref(),
            r.requested_at
        ),
        (rma_id(), order_id(), Some("cust-1"), now())
    );
    let line = &r.lines[0];
    assert_eq!(
        (
            line.rma_line_id.as_str(),
            line.order_line_id.as_str(),
            line.sku.as_str(),
            line.title.as_str(),
            line.unit_price,
            line.qty
        ),
        ("R1", "L1", "TSHIRT-M", "TSHIRT-M title", yen(2990), 2)
    );
    assert_eq!(
        line.reason,
        ReasonSnapshot {
            code: "SIZE_FIT".into(),
            label_ja: "サイズが合わない".into(),
            label_en: "Size or fit".into(),
            window_days: 30,
            inspection_required: true,
            restocking_fee_pct: Decimal::ZERO,
            customer_pays_shipping: true,
            return_shipping_fee: yen(800),
            auto_approve: false,
        }
    );
    assert_eq!(line.return_by, days_ago(5) + TimeDelta::days(30));
    assert_eq!(s.status(), Some(RmaStatus::Requested));
    assert_eq!(Rma::default().status(), None);
    assert_eq!(
        stream_name(rma_id()),
        "rma-0fedcba9-8765-4321-0fed-cba987654321"
    );
}

#[test]
fn merchant_fault_reasons_are_approved_at_once() {
    let (events, s) = then(
        &Rma::default(),
        request(&[("L1", 1, "DEFECTIVE"), ("L2", 1, "WRONG_ITEM")]),
    );
    assert_eq!(types(&events), ["ReturnRequested.v1", "ReturnApproved.v1"]);
    assert_eq!(
        events[1],
        RmaEvent::ReturnApproved(ReturnApproved {
            auto: true,
            by: AUTO_APPROVER.into(),
            note: String::new(),
        })
    );
    assert_eq!(s.status(), Some(RmaStatus::Approved));
    let RmaEvent::ReturnRequested(r) = &events[0] else {
        panic!()
    };
    // The merchant pays: no fee in the snapshot, whatever the policy holds.
    assert_eq!(r.lines[0].reason.return_shipping_fee, yen(0));
    // One reason that needs an agent is enough to wait for one.
    let events = when(
        &Rma::default(),
        request(&[("L1", 1, "DEFECTIVE"), ("L4", 1, "CHANGED_MIND")]),
    )
    .unwrap();
    assert_eq!(types(&events), ["ReturnRequested.v1"]);
}

#[test]
fn a_request_is_idempotent_under_its_id() {
    let s = given([request(&[("L1", 2, "SIZE_FIT")])]);
    assert_eq!(when(&s, request(&[("L1", 2, "SIZE_FIT")])), Ok(vec![]));
    // Even when the policy changed since: the retry is recognised before anything is checked.
    let mut retired = policy();
    with_policy(
        &mut retired,
        PolicyCommand::RetireReason {
            code: "SIZE_FIT".into(),
        },
    );
    assert_eq!(
        when_with(&s, request(&[("L1", 2, "SIZE_FIT")]), &retired),
        Ok(vec![])
    );
    let e = refused(&s, request(&[("L1", 1, "SIZE_FIT")]));
    assert_eq!(
        (e.clone(), e.code(), e.field()),
        (E::RmaExists, "CONFLICT", Some("rmaId"))
    );
}

#[test]
fn the_same_order_line_may_be_returned_for_two_reasons() {
    let (events, s) = then(
        &Rma::default(),
        request(&[("L1", 1, "DEFECTIVE"), ("L1", 2, "SIZE_FIT")]),
    );
    assert_eq!(types(&events), ["ReturnRequested.v1"]);
    assert_eq!(s.lines.len(), 2);
    assert_eq!(s.lines[1].line.rma_line_id, "R2");
    assert_eq!(s.requested_units(), 3);
}

#[test]
fn request_refusals_name_the_field() {
    let empty = Rma::default();
    let cases: Vec<(RmaCommand, &str, &str, &str)> = vec![
        (request(&[]), "lines", "INVALID_INPUT", "INVALID_INPUT"),
        (
            request(&[("L9", 1, "DEFECTIVE")]),
            "lines.0.orderLineId",
            "NOT_FOUND",
            "UNKNOWN_ORDER_LINE",
        ),
        (
            request(&[("L1", 1, "DEFECTIVE"), ("L3", 1, "DEFECTIVE")]),
            "lines.1.orderLineId",
            "CONFLICT",
            "NOT_FULFILLED",
        ),
        (
            request(&[("L1", 0, "DEFECTIVE")]),
            "lines.0.qty",
            "INVALID_INPUT",
            "INVALID_QUANTITY",
        ),
        (
            request(&[("L1", -1, "DEFECTIVE")]),
            "lines.0.qty",
            "INVALID_INPUT",
            "INVALID_QUANTITY",
        ),
        (
            request(&[("L1", MAX_UNITS + 1, "DEFECTIVE")]),
            "lines.0.qty",
            "INVALID_INPUT",
            "INVALID_QUANTITY",
        ),
        (
            request(&[("L1", 4, "DEFECTIVE")]),
            "lines.0.qty",
            "CONFLICT",
            "EXCEEDS_RETURNABLE",
        ),
        (
            request(&[("L1", 1, "NO_SUCH_REASON")]),
            "lines.0.reasonCode",
            "NOT_FOUND",
            "UNKNOWN_REASON",
        ),
        (
            request(&[("L1", 1, "")]),
            "lines.0.reasonCode",
            "NOT_FOUND",
            "UNKNOWN_REASON",
        ),
        (
            request(&[("L1", 1, "DEFECTIVE"), ("L1", 1, "DEFECTIVE")]),
            "lines.1.reasonCode",
            "INVALID_INPUT",
            "INVALID_INPUT",
        ),
        (
            request(&[("L2", 1, "CHANGED_MIND")]),
            "lines.0.reasonCode",
            "CONFLICT",
            "RETURN_WINDOW_CLOSED",
        ),
    ];
    for (cmd, field, code, kind) in cases {
        let e = refused(&empty, cmd.clone());
        assert_eq!(
            (e.field(), e.code(), e.kind()),
            (Some(field), code, kind),
            "{cmd:?} → {e}"
        );
    }
    assert_eq!(empty, Rma::default());
}

#[test]
fn returnable_counts_other_returns_and_earlier_lines_of_the_request() {
    let cmd = |already: i64, qty: i64| {
        let mut facts = order();
        facts.lines[0].already_returned_qty = already;
        RmaCommand::Request(Box::new(request_of(facts, &[("L1", qty, "SIZE_FIT")])))
    };
    assert!(when(&Rma::default(), cmd(2, 1)).is_ok());
    assert_eq!(
        refused(&Rma::default(), cmd(2, 2)),
        E::ExceedsReturnable {
            field: "lines.0.qty".into(),
            order_line_id: "L1".into(),
            requested: 2,
            returnable: 1
        }
    );
    // Fulfilled 3: 2 for one reason leave 1 for the next line.
    assert_eq!(
        refused(
            &Rma::default(),
            request(&[("L1", 2, "DEFECTIVE"), ("L1", 2, "SIZE_FIT")])
        ),
        E::ExceedsReturnable {
            field: "lines.1.qty".into(),
            order_line_id: "L1".into(),
            requested: 2,
            returnable: 1
        }
    );
    // More already returned than fulfilled (facts from a race) reads as nothing returnable.
    let e = refused(&Rma::default(), cmd(5, 1));
    assert!(matches!(e, E::ExceedsReturnable { returnable: 0, .. }));
}

#[test]
fn the_window_is_the_reasons_and_ends_inclusively() {
    // L2 was delivered 20 days ago: a 14-day reason is closed, a 30-day one is open.
    assert_eq!(
        refused(&Rma::default(), request(&[("L2", 1, "CHANGED_MIND")])),
        E::ReturnWindowClosed {
            field: "lines.0.reasonCode".into(),
            order_line_id: "L2".into(),
            reason_code: "CHANGED_MIND".into(),
            deadline: days_ago(6),
        }
    );
    assert!(when(&Rma::default(), request(&[("L2", 1, "SIZE_FIT")])).is_ok());
    // Exactly at the deadline is still inside; a second later is not.
    let at = |delivered: DateTime<Utc>| {
        let mut facts = order();
        facts.lines[1].fulfilled_at = Some(delivered);
        RmaCommand::Request(Box::new(request_of(facts, &[("L2", 1, "CHANGED_MIND")])))
    };
    assert!(when(&Rma::default(), at(days_ago(14))).is_ok());
    assert!(matches!(
        refused(&Rma::default(), at(days_ago(14) - TimeDelta::seconds(1))),
        E::ReturnWindowClosed { .. }
    ));
    // Delivered units without a delivery time cannot be placed in a window: not fulfilled.
    let mut facts = order();
    facts.lines[0].fulfilled_at = None;
    let e = refused(
        &Rma::default(),
        RmaCommand::Request(Box::new(request_of(facts, &[("L1", 1, "DEFECTIVE")]))),
    );
    assert_eq!(e.kind(), "NOT_FULFILLED");
}

#[test]
fn retired_reasons_are_not_offered() {
    let mut p = policy();
    with_policy(
        &mut p,
        PolicyCommand::RetireReason {
            code: "SIZE_FIT".into(),
        },
    );
    let e = when_with(&Rma::default(), request(&[("L1", 1, "SIZE_FIT")]), &p).unwrap_err();
    assert_eq!(
        (e.field(), e.code(), e.kind()),
        (
            Some("lines.0.reasonCode"),
            "INVALID_INPUT",
            "REASON_RETIRED"
        )
    );
}

#[test]
fn request_inputs_and_order_facts_are_checked() {
    let with = |f: &dyn Fn(&mut RequestReturn)| {
        let mut r = request_of(order(), &[("L1", 1, "DEFECTIVE")]);
        f(&mut r);
        refused(&Rma::default(), RmaCommand::Request(Box::new(r)))
    };
    assert_eq!(
        with(&|r| r.requested_by = " ".into()).field(),
        Some("requestedBy")
    );
    assert_eq!(with(&|r| r.note = "あ".repeat(1001)).field(), Some("note"));
    assert_eq!(with(&|r| r.rma_id = Uuid::nil()).field(), Some("rmaId"));
    let e = with(&|r| r.order.lines[0].unit_price = usd("10"));
    assert_eq!(
        e,
        E::CurrencyMismatch {
            field: "order.lines.0.unitPrice".into(),
            expected: Currency::JPY,
            actual: Currency::USD
        }
    );
    assert_eq!(
        with(&|r| r.order.lines[0].unit_price = yen(-1)).field(),
        Some("order.lines.0.unitPrice")
    );
    assert_eq!(
        with(&|r| r.order.lines[1].sku = "BAD SKU".into()).field(),
        Some("order.lines.1.sku")
    );
    assert_eq!(
        with(&|r| r.order.captured = usd("1")).field(),
        Some("order.captured")
    );
    assert_eq!(
        with(&|r| r.lines = vec![RequestedLine::new("L1", 1, "DEFECTIVE"); 101]).field(),
        Some("lines")
    );
    // A 1,000-unit cap over the whole return, not only per line.
    let mut big = order();
    big.lines[0].fulfilled_qty = 900;
    big.lines[3].fulfilled_qty = 900;
    let e = refused(
        &Rma::default(),
        RmaCommand::Request(Box::new(request_of(
            big,
            &[("L1", 600, "DEFECTIVE"), ("L4", 600, "DEFECTIVE")],
        ))),
    );
    assert_eq!((e.field(), e.kind()), (Some("lines"), "INVALID_QUANTITY"));
}

#[test]
fn a_shipping_fee_in_another_currency_cannot_price_the_return() {
    let mut facts = order();
    facts.currency = Currency::USD;
    facts.captured = usd("0");
    facts.refunded = usd("0");
    for l in &mut facts.lines {
        l.unit_price = usd("19.99");
    }
    // SIZE_FIT charges ¥800: not deductible from dollars.
    let e = refused(
        &Rma::default(),
        RmaCommand::Request(Box::new(request_of(
            facts.clone(),
            &[("L1", 1, "SIZE_FIT")],
        ))),
    );
    assert_eq!(
        (e.field(), e.kind()),
        (Some("lines.0.reasonCode"), "REASON_NOT_APPLICABLE")
    );
    // A merchant-paid reason has no fee to convert.
    assert!(when(
        &Rma::default(),
        RmaCommand::Request(Box::new(request_of(facts, &[("L1", 1, "DEFECTIVE")])))
    )
    .is_ok());
}

// ---------------------------------------------------------------------------------------------
// Approve / reject

#[test]
fn approve_once_then_retries_are_no_ops() {
    let s = given([request(&[("L1", 2, "SIZE_FIT")])]);
    let (events, s) = then(&s, approve("agent-7"));
    assert_eq!(
        events,
        vec![RmaEvent::ReturnApproved(ReturnApproved {
            auto: false,
            by: "agent-7".into(),
            note: "OK".into()
        })]
    );
    assert_eq!(s.status(), Some(RmaStatus::Approved));
    assert_eq!(when(&s, approve("agent-7")), Ok(vec![]));
    assert_eq!(when(&s, approve("agent-8")), Ok(vec![]));
    let e = refused(&s, reject("no"));
    assert_eq!(
        (e.clone(), e.code()),
        (
            E::AlreadyDecided {
                decision: "approved"
            },
            "CONFLICT"
        )
    );
    // An auto-approved return is approved too.
    let auto = given([request(&[("L1", 1, "DEFECTIVE")])]);
    assert_eq!(when(&auto, approve("agent-7")), Ok(vec![]));
}

#[test]
fn reject_needs_a_note_and_is_final() {
    let s = given([request(&[("L1", 2, "SIZE_FIT")])]);
    assert_eq!(refused(&s, reject(" ")).field(), Some("note"));
    let (events, s) = then(&s, reject("タグが外されているため返品できません"));
    assert_eq!(types(&events), ["ReturnRejected.v1"]);
    assert_eq!(s.status(), Some(RmaStatus::Rejected));
    assert_eq!(when(&s, reject("again")), Ok(vec![]));
    assert_eq!(
        refused(&s, approve("agent-7")),
        E::AlreadyDecided {
            decision: "rejected"
        }
    );
}

#[test]
fn decision_inputs_are_checked() {
    let s = given([request(&[("L1", 2, "SIZE_FIT")])]);
    let long = RmaCommand::Approve {
        note: "x".repeat(MAX_NOTE_CHARS + 1),
        by: "agent-7".into(),
    };
    assert_eq!(refused(&s, long).field(), Some("note"));
    let fits = RmaCommand::Approve {
        note: "x".repeat(MAX_NOTE_CHARS),
        by: "agent-7".into(),
    };
    assert!(when(&s, fits).is_ok());
    assert_eq!(refused(&s, approve("")).field(), Some("by"));
    assert_eq!(refused(&Rma::default(), approve("a")), E::RmaNotFound);
}

// ---------------------------------------------------------------------------------------------
// Receive

#[test]
fn units_are_received_with_stable_ids() {
    let s = size_fit_approved();
    let (events, s) = then(&s, receive("WMS-1", &[("R1", 1)]));
    assert_eq!(
        events,
        vec![RmaEvent::ReturnReceived(ReturnReceived {
            receipt_id: "WMS-1".into(),
            location: "DC-EAST".into(),
            lines: vec![ReceivedLine::new("R1", 1)],
            units: vec![ReceivedUnit {
                unit_id: "R1-1".into(),
                rma_line_id: "R1".into(),
                sku: "TSHIRT-M".into(),
                title: "TSHIRT-M title".into(),
            }],
            in_person: false,
        })]
    );
    assert_eq!(s.status(), Some(RmaStatus::PartiallyReceived));
    let (events, s) = then(&s, receive("WMS-2", &[("R1", 1)]));
    let RmaEvent::ReturnReceived(r) = &events[0] else {
        panic!()
    };
    assert_eq!(r.units[0].unit_id, "R1-2");
    assert_eq!(s.status(), Some(RmaStatus::Received));
    assert_eq!(s.unit("R1-2").unwrap().location, "DC-EAST");
}

#[test]
fn a_unit_is_received_once_and_a_wms_retry_is_safe() {
    let s = given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        receive("WMS-1", &[("R1", 2)]),
    ]);
    assert_eq!(when(&s, receive("WMS-1", &[("R1", 2)])), Ok(vec![]));
    let e = refused(&s, receive("WMS-2", &[("R1", 1)]));
    assert_eq!(
        (e.clone(), e.code(), e.kind()),
        (
            E::AlreadyReceived {
                field: "lines.0.qty".into(),
                rma_line_id: "R1".into(),
                requested: 2,
                received: 2,
                qty: 1
            },
            "CONFLICT",
            "ALREADY_RECEIVED"
        )
    );
    let e = refused(&s, receive("WMS-1", &[("R1", 1)]));
    assert_eq!((e.code(), e.field()), ("CONFLICT", Some("receiptId")));
    let mut elsewhere = receive("WMS-1", &[("R1", 2)]);
    if let RmaCommand::Receive { location, .. } = &mut elsewhere {
        *location = "STORE-A".into();
    }
    assert_eq!(refused(&s, elsewhere).kind(), "RECEIPT_CONFLICT");
    // Over-receiving in one receipt too.
    let e = refused(&size_fit_approved(), receive("WMS-1", &[("R1", 3)]));
    assert_eq!(e.kind(), "ALREADY_RECEIVED");
}

#[test]
fn receive_needs_an_approved_open_return_and_good_lines() {
    let requested = given([request(&[("L1", 2, "SIZE_FIT")])]);
    assert_eq!(
        refused(&requested, receive("W", &[("R1", 1)])),
        E::WrongStatus {
            action: "receive units of",
            status: RmaStatus::Requested
        }
    );
    let rejected = given([request(&[("L1", 2, "SIZE_FIT")]), reject("no")]);
    let e = refused(&rejected, receive("W", &[("R1", 1)]));
    assert_eq!(
        (e.to_string().as_str(), e.code()),
        (
            "cannot receive units of a return that is REJECTED",
            "CONFLICT"
        )
    );
    let s = size_fit_approved();
    let cases: Vec<(RmaCommand, &str)> = vec![
        (receive("W", &[]), "lines"),
        (receive("W", &[("R9", 1)]), "lines.0.rmaLineId"),
        (receive("W", &[("R1", 1), ("R1", 1)]), "lines.1.rmaLineId"),
        (receive("W", &[("R1", 0)]), "lines.0.qty"),
        (receive("", &[("R1", 1)]), "receiptId"),
    ];
    for (cmd, field) in cases {
        assert_eq!(refused(&s, cmd.clone()).field(), Some(field), "{cmd:?}");
    }
    assert_eq!(refused(&s, receive("W", &[("R9", 1)])).code(), "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// Grade

fn received_size_fit() -> Rma {
    given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        receive("WMS-1", &[("R1", 2)]),
    ])
}

#[test]
fn grading_for_resale_derives_the_sku_and_price() {
    let (events, s) = then(&received_size_fit(), grade("R1-1", "LIKE_NEW"));
    assert_eq!(
        events,
        vec![RmaEvent::UnitGraded(UnitGraded {
            unit_id: "R1-1".into(),
            rma_line_id: "R1".into(),
            sku: "TSHIRT-M".into(),
            title: "TSHIRT-M title".into(),
            location: "DC-EAST".into(),
            grade: GradeSnapshot {
                code: "LIKE_NEW".into(),
                label_ja: "新品同様".into(),
                label_en: "Like new".into(),
            },
            disposition: Disposition::Resale {
                price_factor: "0.8".parse().unwrap()
            },
            resale_sku: Some("TSHIRT-M-R-LIKE_NEW".into()),
            // ¥2,990 × 0.8 = ¥2,392
            resale_price: Some(yen(2392)),
        })]
    );
    assert_eq!(s.status(), Some(RmaStatus::Received));
    let (events, s) = then(&s, grade("R1-2", "NEW"));
    let RmaEvent::UnitGraded(g) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (g.disposition, g.resale_sku.as_deref(), g.resale_price),
        (Disposition::Restock, None, None)
    );
    assert_eq!(s.status(), Some(RmaStatus::Inspected));
}

#[test]
fn a_grade_is_final_and_a_retry_is_a_no_op() {
    let s = then(&received_size_fit(), grade("R1-1", "GOOD")).1;
    assert_eq!(when(&s, grade("R1-1", "GOOD")), Ok(vec![]));
    let e = refused(&s, grade("R1-1", "FAIR"));
    assert_eq!(
        (e.clone(), e.code(), e.field()),
        (
            E::AlreadyGraded {
                unit_id: "R1-1".into(),
                grade: "GOOD".into()
            },
            "CONFLICT",
            Some("unitId")
        )
    );
}

#[test]
fn grading_needs_a_received_unit_and_an_active_grade() {
    let partly = given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        receive("WMS-1", &[("R1", 1)]),
    ]);
    for unit in ["R1-2", "R9-1", "nope"] {
        let e = refused(&partly, grade(unit, "GOOD"));
        assert_eq!(
            (e.code(), e.kind()),
            ("NOT_FOUND", "UNKNOWN_UNIT"),
            "{unit}"
        );
    }
    let e = refused(&partly, grade("R1-1", "MINT"));
    assert_eq!((e.code(), e.field()), ("NOT_FOUND", Some("gradeCode")));
    let mut p = policy();
    with_policy(
        &mut p,
        PolicyCommand::RetireGrade {
            code: "FAIR".into(),
        },
    );
    let e = when_with(&partly, grade("R1-1", "FAIR"), &p).unwrap_err();
    assert_eq!(e.kind(), "GRADE_RETIRED");
    assert_eq!(refused(&partly, grade("", "GOOD")).field(), Some("unitId"));
}

#[test]
fn a_long_sku_gets_a_shortened_valid_resale_sku() {
    let mut p = policy();
    with_policy(
        &mut p,
        PolicyCommand::DefineGrade(ConditionGradeSpec {
            code: "REFURBISHED_GRADE_A".into(),
            label_ja: "整備済み品 A".into(),
            label_en: "Refurbished, grade A".into(),
            disposition: Disposition::Resale {
                price_factor: "0.75".parse().unwrap(),
            },
        }),
    );
    let mut facts = order();
    // 49 characters: `-R-LIKE_NEW` would fit (60), `-R-REFURBISHED_GRADE_A` does not (71).
    facts.lines[0].sku = "ORGANIC-COTTON-CREWNECK-TSHIRT-LONGSLEEVE-XL-BLUE".into();
    let long_sku = facts.lines[0].sku.clone();
    let s = given([
        RmaCommand::Request(Box::new(request_of(facts, &[("L1", 2, "DEFECTIVE")]))),
        receive("W", &[("R1", 2)]),
    ]);
    let (events, s) = then_with(&s, grade("R1-1", "REFURBISHED_GRADE_A"), &p);
    let RmaEvent::UnitGraded(g) = &events[0] else {
        panic!()
    };
    let resale = g.resale_sku.clone().unwrap();
    assert_eq!(ichigen_shared::ids::validate_sku(&resale), Ok(()));
    assert_eq!(resale.len(), 64);
    assert!(resale.starts_with("ORGANIC-COTTON-CREWNECK-T"));
    assert_eq!(
        ichigen_shared::resale::resale_grade(&resale).as_deref(),
        Some("REFURBISHED_GRADE_A")
    );
    assert_eq!(g.sku, long_sku, "the event keeps the original");
    // ¥2,990 × 0.75 = ¥2,242.5 → ¥2,242 (half-even).
    assert_eq!(g.resale_price, Some(yen(2242)));
    // The other unit of the same SKU and grade lands on the same resale SKU.
    let (events, _) = then_with(&s, grade("R1-2", "REFURBISHED_GRADE_A"), &p);
    let RmaEvent::UnitGraded(g2) = &events[0] else {
        panic!()
    };
    assert_eq!(g2.resale_sku.as_deref(), Some(resale.as_str()));
}

#[test]
fn policy_changes_do_not_alter_an_open_return() {
    let s = received_size_fit();
    // The business drops SIZE_FIT's shipping fee, then retires the reason altogether.
    let mut p = policy();
    let mut spec: ReturnReasonSpec = p.reason("SIZE_FIT").unwrap().spec.clone();
    spec.customer_pays_shipping = false;
    with_policy(&mut p, PolicyCommand::DefineReason(spec));
    with_policy(
        &mut p,
        PolicyCommand::RetireReason {
            code: "SIZE_FIT".into(),
        },
    );
    let s = then_with(&s, grade("R1-1", "GOOD"), &p).1;
    let s = then_with(&s, grade("R1-2", "GOOD"), &p).1;
    let (events, _) = then_with(&s, refund(yen(24_767), "pay-1"), &p);
    assert_eq!(refund_issued(&events).breakdown.shipping_fee, yen(800));
}

// ---------------------------------------------------------------------------------------------
// Refund

#[test]
fn inspected_reasons_refund_only_graded_units() {
    let s = received_size_fit();
    assert_eq!(
        refused(&s, refund(yen(24_767), "pay-1")),
        E::NothingToSettle
    );
    assert_eq!(refund_quote(&s, yen(24_767)), Err(E::NothingToSettle));
    let s = then(&s, grade("R1-1", "LIKE_NEW")).1;
    let q = refund_quote(&s, yen(24_767)).unwrap();
    assert_eq!(q.units, ["R1-1"]);
    assert_eq!(
        (
            q.gross,
            q.restocking_fee,
            q.shipping_fee,
            q.amount,
            q.capped
        ),
        (yen(2990), yen(0), yen(800), yen(2190), false)
    );
}

#[test]
fn uninspected_reasons_refund_on_receipt() {
    let s = given([
        request(&[("L2", 1, "WRONG_ITEM")]),
        receive("W", &[("R1", 1)]),
    ]);
    let (events, s) = then(&s, refund(yen(24_767), "pay-1"));
    let r = refund_issued(&events);
    assert_eq!(
        (r.amount, r.units.clone()),
        (yen(9800), vec!["R1-1".to_string()])
    );
    assert_eq!(r.breakdown.shipping_fee, yen(0));
    assert_eq!(s.status(), Some(RmaStatus::Refunded));
    // Settled but not yet dispositioned: the return cannot close until graded.
    assert_eq!(
        refused(&s, close()),
        E::NotReadyToClose {
            ungraded: 1,
            unsettled: 0
        }
    );
    let s = then(&s, grade("R1-1", "NEW")).1;
    assert_eq!(types(&then(&s, close()).0), ["ReturnClosed.v1"]);
}

#[test]
fn partial_quantities_are_refunded_as_they_arrive_and_shipping_is_charged_once() {
    let s = given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        receive("WMS-1", &[("R1", 1)]),
        grade("R1-1", "GOOD"),
    ]);
    let (events, s) = then(&s, refund(yen(24_767), "pay-1"));
    let first = refund_issued(&events);
    assert_eq!(
        (
            first.amount,
            first.breakdown.gross,
            first.breakdown.shipping_fee
        ),
        (yen(2190), yen(2990), yen(800))
    );
    assert!(s.shipping_fee_charged);
    assert_eq!(s.status(), Some(RmaStatus::PartiallyReceived));
    // A retry of the same refund decides nothing; a second refund has nothing to cover.
    assert_eq!(when(&s, refund(yen(22_577), "pay-1")), Ok(vec![]));
    assert_eq!(
        refused(&s, refund(yen(22_577), "pay-2")),
        E::NothingToSettle
    );
    let s = given_from(s, [receive("WMS-2", &[("R1", 1)]), grade("R1-2", "GOOD")]);
    let (events, s) = then(&s, refund(yen(22_577), "pay-2"));
    let second = refund_issued(&events);
    assert_eq!(
        (
            second.amount,
            second.breakdown.shipping_fee,
            second.units.clone()
        ),
        (yen(2990), yen(0), vec!["R1-2".to_string()])
    );
    assert_eq!(s.refunded(), Some(yen(5180)));
    assert_eq!(s.status(), Some(RmaStatus::Refunded));
    let u = s.unit("R1-1").unwrap();
    assert_eq!(
        u.settlement,
        Some(Settlement::Refunded {
            payment_reference: "pay-1".into()
        })
    );
}

fn given_from(state: Rma, cmds: impl IntoIterator<Item = RmaCommand>) -> Rma {
    cmds.into_iter().fold(state, |s, c| then(&s, c).1)
}

#[test]
fn restocking_fees_round_down_in_yen() {
    // 3 × ¥1,999 changed mind: gross ¥5,997, 10 % = ¥599.7 → ¥599 (the customer keeps the
    // fraction); shipping ¥800; back: ¥4,598.
    let s = given([
        request(&[("L4", 3, "CHANGED_MIND")]),
        approve("agent-7"),
        receive("W", &[("R1", 3)]),
        grade("R1-1", "NEW"),
        grade("R1-2", "NEW"),
        grade("R1-3", "LIKE_NEW"),
    ]);
    let q = refund_quote(&s, yen(24_767)).unwrap();
    assert_eq!(
        (q.gross, q.restocking_fee, q.shipping_fee, q.amount),
        (yen(5997), yen(599), yen(800), yen(4598))
    );
    assert_eq!(q.lines[0].restocking_fee_pct, Decimal::from(10));
    // Per line, on the line's gross: one unit alone would be ¥199.9 → ¥199.
    let one = given([
        request(&[("L4", 1, "CHANGED_MIND")]),
        approve("a"),
        receive("W", &[("R1", 1)]),
        grade("R1-1", "NEW"),
    ]);
    assert_eq!(
        refund_quote(&one, yen(24_767)).unwrap().restocking_fee,
        yen(199)
    );
}

/// A US storefront's policy and order: a 15 % fee and $7.50 return shipping.
fn usd_return(qty: i64) -> (Rma, Policy) {
    let mut p = policy();
    with_policy(
        &mut p,
        PolicyCommand::DefineReason(ReturnReasonSpec {
            code: "CHANGED_MIND_US".into(),
            label_ja: "お客様都合（米国）".into(),
            label_en: "Changed mind (US)".into(),
            window_days: 30,
            inspection_required: true,
            restocking_fee_pct: "15".parse().unwrap(),
            customer_pays_shipping: true,
            return_shipping_fee: usd("7.50"),
            auto_approve: true,
        }),
    );
    let facts = OrderFacts {
        order_id: order_id(),
        customer_id: None,
        currency: Currency::USD,
        lines: vec![order_line("L1", "MUG", usd("19.99"), 3, Some(2))],
        captured: usd("59.97"),
        refunded: usd("0"),
    };
    let mut s = then_with(
        &Rma::default(),
        RmaCommand::Request(Box::new(request_of(
            facts,
            &[("L1", qty, "CHANGED_MIND_US")],
        ))),
        &p,
    )
    .1;
    s = then_with(&s, receive("W", &[("R1", qty)]), &p).1;
    for n in 1..=qty {
        s = then_with(&s, grade(&format!("R1-{n}"), "GOOD"), &p).1;
    }
    (s, p)
}

#[test]
fn restocking_fees_round_down_in_a_two_decimal_currency() {
    // 3 × $19.99 = $59.97; 15 % = $8.9955 → $8.99 (half-even would say $9.00); shipping $7.50.
    let (s, p) = usd_return(3);
    let q = refund_quote(&s, usd("59.97")).unwrap();
    assert_eq!(
        (
            q.gross,
            q.restocking_fee,
            q.shipping_fee,
            q.amount,
            q.capped
        ),
        (usd("59.97"), usd("8.99"), usd("7.50"), usd("43.48"), false)
    );
    let (events, _) = then_with(&s, refund(usd("59.97"), "pay-1"), &p);
    assert_eq!(refund_issued(&events).amount, usd("43.48"));
    // 1 × $19.99: 15 % = $2.9985 → $2.99; back $9.50.
    let (one, _) = usd_return(1);
    let q = refund_quote(&one, usd("59.97")).unwrap();
    assert_eq!((q.restocking_fee, q.amount), (usd("2.99"), usd("9.50")));
    // The cap is in the order's currency.
    assert!(matches!(
        refund_quote(&one, yen(100)),
        Err(E::CurrencyMismatch { .. })
    ));
}

#[test]
fn a_fee_larger_than_the_refund_leaves_zero_not_a_debt() {
    let mut facts = order();
    facts.lines[3].unit_price = yen(500);
    let s = given([
        RmaCommand::Request(Box::new(request_of(facts, &[("L4", 1, "CHANGED_MIND")]))),
        approve("a"),
        receive("W", &[("R1", 1)]),
        grade("R1-1", "NEW"),
    ]);
    // ¥500 − ¥50 fee − ¥800 shipping: nothing back, and the unit is settled.
    let (events, s) = then(&s, refund(yen(24_767), "none-1"));
    let r = refund_issued(&events);
    assert_eq!((r.amount, r.breakdown.restocking_fee), (yen(0), yen(50)));
    assert_eq!(s.status(), Some(RmaStatus::Refunded));
}

#[test]
fn merchant_fault_and_convenience_lines_in_one_refund() {
    // DEFECTIVE (no fee, merchant ships) + CHANGED_MIND (10 %, customer ships ¥800): the
    // shipping fee is deducted once, the fee only on its own line.
    let s = given([
        request(&[("L1", 1, "DEFECTIVE"), ("L4", 2, "CHANGED_MIND")]),
        approve("agent-7"),
        receive("W", &[("R1", 1), ("R2", 2)]),
        grade("R1-1", "DEFECTIVE"),
        grade("R2-1", "NEW"),
        grade("R2-2", "NEW"),
    ]);
    let q = refund_quote(&s, yen(24_767)).unwrap();
    assert_eq!(q.units, ["R1-1", "R2-1", "R2-2"]);
    // Gross 2,990 + 3,998 = 6,988; fee 10 % of 3,998 = 399.8 → 399; shipping 800.
    assert_eq!(
        (q.gross, q.restocking_fee, q.shipping_fee, q.amount),
        (yen(6988), yen(399), yen(800), yen(5789))
    );
    assert_eq!(
        q.lines
            .iter()
            .map(|l| (l.rma_line_id.as_str(), l.qty, l.restocking_fee))
            .collect::<Vec<_>>(),
        [("R1", 1, yen(0)), ("R2", 2, yen(399))]
    );
    let g = s.unit("R1-1").unwrap().grade.clone().unwrap();
    assert_eq!(g.disposition, Disposition::ReturnToVendor);
}

#[test]
fn refunds_are_capped_at_what_the_order_can_still_refund() {
    // Another return (and a cancellation) already gave back most of what was captured: the
    // handler passes what is left, and this return gives back no more.
    let s = given([
        request(&[("L2", 1, "WRONG_ITEM")]),
        receive("W", &[("R1", 1)]),
    ]);
    let mut facts = order();
    facts.captured = yen(12_000);
    facts.refunded = yen(9_000);
    let left = facts.refundable_left();
    assert_eq!(left, yen(3000));
    let (events, s) = then(&s, refund(left, "pay-1"));
    let r = refund_issued(&events);
    assert_eq!(
        (
            r.amount,
            r.breakdown.gross,
            r.breakdown.capped,
            r.refundable_left
        ),
        (yen(3000), yen(9800), true, yen(3000))
    );
    assert_eq!(s.refunded(), Some(yen(3000)));
    // Nothing left at all: the unit is settled for ¥0.
    let s = given([
        request(&[("L2", 1, "WRONG_ITEM")]),
        receive("W", &[("R1", 1)]),
    ]);
    facts.refunded = yen(13_000);
    assert_eq!(facts.refundable_left(), yen(0));
    let r = when(&s, refund(facts.refundable_left(), "pay-1")).unwrap();
    assert_eq!(
        (refund_issued(&r).amount, refund_issued(&r).breakdown.capped),
        (yen(0), true)
    );
}

#[test]
fn refund_inputs_are_checked() {
    let s = given([
        request(&[("L2", 1, "WRONG_ITEM")]),
        receive("W", &[("R1", 1)]),
    ]);
    assert_eq!(
        refused(&s, refund(yen(100), " ")).field(),
        Some("paymentReference")
    );
    let e = refused(&s, refund(usd("100"), "p"));
    assert_eq!(
        (e.field(), e.kind()),
        (Some("refundableLeft"), "CURRENCY_MISMATCH")
    );
    assert_eq!(
        refused(&s, refund(yen(-1), "p")).field(),
        Some("refundableLeft")
    );
    assert_eq!(
        refused(&Rma::default(), refund(yen(1), "p")),
        E::RmaNotFound
    );
    let rejected = given([request(&[("L1", 2, "SIZE_FIT")]), reject("no")]);
    assert_eq!(refused(&rejected, refund(yen(1), "p")), E::NothingToSettle);
}

// ---------------------------------------------------------------------------------------------
// Exchange

#[test]
fn an_exchange_credits_the_units_and_records_the_difference() {
    let s = given([
        request(&[("L1", 1, "SIZE_FIT")]),
        approve("agent-7"),
        receive("W", &[("R1", 1)]),
        grade("R1-1", "NEW"),
    ]);
    // Credit ¥2,990 − ¥800 shipping = ¥2,190; the size L costs ¥2,990: the customer pays ¥800.
    let terms = exchange_terms(&s, yen(2990)).unwrap();
    assert_eq!((terms.credit, terms.difference), (yen(2190), yen(800)));
    let (events, s) = then(&s, exchange(7, yen(2990)));
    assert_eq!(
        events,
        vec![RmaEvent::ExchangeOrdered(ExchangeOrdered {
            exchange_order_id: Uuid::from_u128(7),
            replacement_total: yen(2990),
            credit: yen(2190),
            difference: yen(800),
            units: vec!["R1-1".into()],
            breakdown: terms.quote.breakdown(),
        })]
    );
    assert_eq!(s.status(), Some(RmaStatus::Exchanged));
    assert_eq!(when(&s, exchange(7, yen(2990))), Ok(vec![]));
    let e = refused(&s, exchange(7, yen(1000)));
    assert_eq!((e.code(), e.field()), ("CONFLICT", Some("exchangeOrderId")));
    assert_eq!(refused(&s, exchange(8, yen(1000))), E::NothingToSettle);
    assert_eq!(refused(&s, refund(yen(24_767), "p")), E::NothingToSettle);
    assert_eq!(s.refunded(), Some(yen(0)));
    let closed = then(&s, close()).0;
    let RmaEvent::ReturnClosed(c) = &closed[0] else {
        panic!()
    };
    assert_eq!(c.closed_from, RmaStatus::Exchanged);
}

#[test]
fn a_cheaper_replacement_leaves_a_refund_due_and_the_credit_is_not_capped() {
    let s = given([
        request(&[("L2", 1, "WRONG_ITEM")]),
        receive("W", &[("R1", 1)]),
    ]);
    let terms = exchange_terms(&s, yen(7800)).unwrap();
    assert_eq!((terms.credit, terms.difference), (yen(9800), yen(-2000)));
    assert!(!terms.quote.capped);
    assert_eq!(exchange_difference(yen(100), yen(100)), Ok(yen(0)));
    assert!(exchange_difference(yen(100), usd("1")).is_err());
    let e = refused(&s, exchange(0, yen(1)));
    assert_eq!(e.field(), Some("exchangeOrderId"));
    let e = refused(&s, exchange(9, Money::parse("1.5", "JPY").unwrap()));
    assert_eq!(e.field(), Some("replacementTotal"));
}

// ---------------------------------------------------------------------------------------------
// Close and the whole life

#[test]
fn close_when_rejected_or_when_everything_received_is_settled() {
    let rejected = given([request(&[("L1", 2, "SIZE_FIT")]), reject("no")]);
    let (events, closed) = then(&rejected, close());
    assert_eq!(
        events,
        vec![RmaEvent::ReturnClosed(ReturnClosed {
            by: "agent-7".into(),
            closed_from: RmaStatus::Rejected,
            units_requested: 2,
            units_received: 0,
            refunded: yen(0),
        })]
    );
    assert_eq!(closed.status(), Some(RmaStatus::Closed));
    assert_eq!(when(&closed, close()), Ok(vec![]));

    let requested = given([request(&[("L1", 2, "SIZE_FIT")])]);
    assert_eq!(
        refused(&requested, close()),
        E::WrongStatus {
            action: "close",
            status: RmaStatus::Requested
        }
    );
    // Approved, nothing ever sent back: closing gives the units up.
    assert!(when(&size_fit_approved(), close()).is_ok());

    let s = received_size_fit();
    assert_eq!(
        refused(&s, close()),
        E::NotReadyToClose {
            ungraded: 2,
            unsettled: 2
        }
    );
    let s = given_from(s, [grade("R1-1", "GOOD"), grade("R1-2", "FAIR")]);
    assert_eq!(
        refused(&s, close()),
        E::NotReadyToClose {
            ungraded: 0,
            unsettled: 2
        }
    );
    let s = given_from(s, [refund(yen(24_767), "pay-1")]);
    let (events, s) = then(&s, close());
    let RmaEvent::ReturnClosed(c) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (c.closed_from, c.units_received, c.refunded),
        (RmaStatus::Refunded, 2, yen(5180))
    );
    // After closing only retries pass.
    assert_eq!(when(&s, refund(yen(1), "pay-1")), Ok(vec![]));
    assert_eq!(when(&s, receive("WMS-1", &[("R1", 2)])), Ok(vec![]));
    assert_eq!(when(&s, grade("R1-1", "GOOD")), Ok(vec![]));
    assert_eq!(
        refused(&s, refund(yen(1), "pay-2")),
        E::WrongStatus {
            action: "refund",
            status: RmaStatus::Closed
        }
    );
    assert_eq!(refused(&s, close_by("")).field(), Some("by"));
}

fn close_by(by: &str) -> RmaCommand {
    RmaCommand::Close { by: by.into() }
}

#[test]
fn a_partly_received_return_closes_once_what_came_is_settled() {
    let s = given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        receive("W", &[("R1", 1)]),
        grade("R1-1", "GOOD"),
        refund(yen(24_767), "pay-1"),
    ]);
    assert_eq!(s.status(), Some(RmaStatus::PartiallyReceived));
    let (events, s) = then(&s, close());
    let RmaEvent::ReturnClosed(c) = &events[0] else {
        panic!()
    };
    assert_eq!((c.units_requested, c.units_received), (2, 1));
    assert_eq!(
        refused(&s, receive("W2", &[("R1", 1)])),
        E::WrongStatus {
            action: "receive units of",
            status: RmaStatus::Closed
        }
    );
}

#[test]
fn every_event_round_trips_and_folds_to_the_same_state() {
    let cmds = vec![
        request(&[("L1", 2, "SIZE_FIT"), ("L2", 1, "WRONG_ITEM")]),
        approve("agent-7"),
        receive("W1", &[("R1", 1), ("R2", 1)]),
        grade("R1-1", "LIKE_NEW"),
        grade("R2-1", "DAMAGED"),
        refund(yen(24_767), "pay-1"),
        receive("W2", &[("R1", 1)]),
        grade("R1-2", "NEW"),
        exchange(5, yen(3500)),
        close(),
    ];
    let mut state = Rma::default();
    let mut history = Vec::new();
    for c in cmds {
        let (events, next) = then(&state, c);
        history.extend(events);
        state = next;
    }
    assert_eq!(
        types(&history),
        [
            "ReturnRequested.v1",
            "ReturnApproved.v1",
            "ReturnUnitsReceived.v1",
            "UnitGraded.v1",
            "UnitGraded.v1",
            "RefundIssued.v1",
            "ReturnUnitsReceived.v1",
            "UnitGraded.v1",
            "ExchangeOrdered.v1",
            "ReturnClosed.v1",
        ]
    );
    let decoded: Vec<RmaEvent> = history
        .iter()
        .map(|e| {
            RmaEvent::decode(e.event_type(), &e.payload_json().unwrap())
                .unwrap()
                .unwrap()
        })
        .collect();
    assert_eq!(decoded, history);
    assert_eq!(Rma::from_events(&decoded), state);
    assert!(RmaEvent::decode("Nope.v1", b"{}").is_none());
    // Money is a decimal string, statuses and dispositions are SCREAMING_SNAKE.
    let json = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(json["type"], "ReturnRequested.v1");
    assert_eq!(
        json["data"]["lines"][0]["reason"]["returnShippingFee"],
        serde_json::json!({"amount": "800", "currency": "JPY"})
    );
    let closed = serde_json::to_value(history.last().unwrap()).unwrap();
    // Refunded and exchanged units: REFUNDED (EXCHANGED only when no unit was refunded).
    assert_eq!(closed["data"]["closedFrom"], "REFUNDED");
}

#[test]
fn units_handed_in_at_a_counter_pay_no_return_shipping() {
    let counter = |receipt: &str| RmaCommand::Receive {
        receipt_id: receipt.into(),
        location: "STORE-A".into(),
        lines: vec![ReceivedLine::new("R1", 1)],
        in_person: true,
    };
    // SIZE_FIT: the customer pays ¥800 return shipping, when they ship the parcel.
    let s = given([
        request(&[("L1", 2, "SIZE_FIT")]),
        approve("agent-7"),
        counter("counter:1"),
        grade("R1-1", "GOOD"),
    ]);
    let (events, s) = then(&s, refund(yen(24_767), "pay-1"));
    let first = refund_issued(&events);
    assert_eq!(
        (first.breakdown.shipping_fee, first.amount),
        (yen(0), yen(2990))
    );
    assert!(!s.shipping_fee_charged);
    // The second unit comes by parcel: now the shipping is deducted, once.
    let s = given_from(s, [receive("WMS-2", &[("R1", 1)]), grade("R1-2", "GOOD")]);
    let (events, _) = then(&s, refund(yen(21_777), "pay-2"));
    assert_eq!(refund_issued(&events).breakdown.shipping_fee, yen(800));
    // A counter receipt recorded before `inPerson` existed is known by its id.
    let old = br#"{"receiptId":"counter:9","location":"STORE-A","lines":[{"rmaLineId":"R1","qty":1}],"units":[{"unitId":"R1-1","rmaLineId":"R1","sku":"TSHIRT-M","title":"t"}]}"#;
    let Some(Ok(event)) = RmaEvent::decode("ReturnUnitsReceived.v1", old) else {
        panic!("an old receipt must still read")
    };
    let mut s = given([request(&[("L1", 2, "SIZE_FIT")]), approve("agent-7")]);
    s.apply(&event);
    assert!(s.receipts["counter:9"].in_person);
}
