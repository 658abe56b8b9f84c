//! The returns view fed with events the return domain decided, recorded the way the store
//! records them (increasing positions, per-stream revisions, metadata with actor and time).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::ExpectedRevision;
use rust_decimal::Decimal;
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::domain::{
    decide, decide_policy, default_policy, stream_name, OrderFacts, OrderLineFacts, Policy,
    PolicyEvent, ReceivedLine, RequestReturn, RequestedLine, RmaCommand,
};

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, 10, 0, 0).unwrap()
}

fn actor(role: Role, subject: &str) -> Actor {
    Actor {
        role,
        subject: subject.into(),
        store_id: None,
    }
}

fn agent() -> Actor {
    actor(Role::CsAgent, "agent-7")
}

fn wms() -> Actor {
    actor(Role::WmsIntegration, "wms-east")
}

fn policy() -> Policy {
    let mut p = Policy::default();
    for command in default_policy() {
        for e in decide_policy(&p, &command).unwrap() {
            p.apply(&e);
        }
    }
    p
}

fn policy_events() -> Vec<PolicyEvent> {
    let mut p = Policy::default();
    let mut out = Vec::new();
    for command in default_policy() {
        for e in decide_policy(&p, &command).unwrap() {
            p.apply(&e);
            out.push(e);
        }
    }
    out
}

/// L1: 3 × ¥2,990 T-shirts, L2: 1 × ¥9,800 jeans, both delivered on day 1 and captured.
fn order_facts(order_id: Uuid, customer_id: &str) -> OrderFacts {
    let line = |id: &str, sku: &str, price: i64, qty: i64| OrderLineFacts {
        line_id: id.into(),
        sku: sku.into(),
        title: format!("{sku} title"),
        unit_price: yen(price),
        fulfilled_qty: qty,
        fulfilled_at: Some(day(1)),
        already_returned_qty: 0,
    };
    OrderFacts {
        order_id,
        customer_id: Some(customer_id.into()),
        currency: Currency::JPY,
        lines: vec![
            line("L1", "TSHIRT-M", 2990, 3),
            line("L2", "JEANS-30", 9800, 1),
        ],
        captured: yen(3 * 2990 + 9800),
        refunded: yen(0),
    }
}

fn rma(n: u128) -> Uuid {
    Uuid::from_u128(0xAA00 + n)
}

fn order(n: u128) -> Uuid {
    Uuid::from_u128(0x0D00 + n)
}

/// Hands out increasing positions and per-stream revisions, like the store.
#[derive(Default)]
struct Feed {
    seq: u64,
    revisions: HashMap<String, u64>,
}

impl Feed {
    fn raw(
        &mut self,
        stream: &str,
        event_type: &str,
        data: &[u8],
        actor: Actor,
        at: DateTime<Utc>,
    ) -> RecordedEvent {
        self.seq += 1;
        let revision = self.revisions.entry(stream.to_owned()).or_insert(0);
        let this = *revision;
        *revision += 1;
        let mut metadata = Metadata::new(actor);
        metadata.occurred_at = at;
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
}

/// Returns driven through `decide`, so every event is one the write side could have stored,
/// recorded by a [`Feed`] and applied to the view.
struct Returns {
    feed: Feed,
    policy: Policy,
    states: HashMap<Uuid, Rma>,
    view: ReturnsView,
    /// The clock: every step happens a minute after the previous one.
    now: DateTime<Utc>,
}

impl Returns {
    fn new() -> Self {
        Returns {
            feed: Feed::default(),
            policy: policy(),
            states: HashMap::new(),
            view: ReturnsView::new(),
            now: day(2),
        }
    }

    /// Decides `command` on the return at the current time, records and applies the events.
    fn step(&mut self, rma_id: Uuid, command: RmaCommand, by: Actor) -> Vec<RecordedEvent> {
        let events = self.decided(rma_id, command, by);
        self.view.apply(&events);
        events
    }

    /// Decides and records without applying to the view.
    fn decided(&mut self, rma_id: Uuid, command: RmaCommand, by: Actor) -> Vec<RecordedEvent> {
        self.now += TimeDelta::minutes(1);
        let state = self.states.entry(rma_id).or_default();
        let events = decide(state, &command, &self.policy, self.now).unwrap();
        assert!(!events.is_empty(), "{command:?} decided nothing");
        let mut recorded = Vec::new();
        for e in &events {
            state.apply(e);
            let data = e.payload_json().unwrap();
            recorded.push(self.feed.raw(
                &stream_name(rma_id),
                e.event_type(),
                &data,
                by.clone(),
                self.now,
            ));
        }
        recorded
    }

    /// A request on `on_day` by the order's customer.
    fn request(
        &mut self,
        rma_id: Uuid,
        order_id: Uuid,
        customer: &str,
        on_day: u32,
        lines: &[(&str, i64, &str)],
    ) -> Vec<RecordedEvent> {
        self.now = day(on_day);
        let command = RmaCommand::Request(Box::new(RequestReturn {
            rma_id,
            order: order_facts(order_id, customer),
            lines: lines
                .iter()
                .map(|(l, q, r)| RequestedLine::new(*l, *q, *r))
                .collect(),
            requested_by: customer.into(),
            note: String::new(),
        }));
        // `step` adds its minute: requested at `on_day` 10:00 exactly.
        self.now -= TimeDelta::minutes(1);
        self.step(rma_id, command, actor(Role::Customer, customer))
    }

    fn approve(&mut self, rma_id: Uuid) -> Vec<RecordedEvent> {
        let command = RmaCommand::Approve {
            note: "OK".into(),
            by: "agent-7".into(),
        };
        self.step(rma_id, command, agent())
    }

    fn reject(&mut self, rma_id: Uuid) -> Vec<RecordedEvent> {
        let command = RmaCommand::Reject {
            note: "Worn".into(),
            by: "agent-7".into(),
        };
        self.step(rma_id, command, agent())
    }

    fn receive(
        &mut self,
        rma_id: Uuid,
        receipt: &str,
        location: &str,
        lines: &[(&str, i64)],
    ) -> Vec<RecordedEvent> {
        let command = RmaCommand::Receive {
            receipt_id: receipt.into(),
            location: location.into(),
            lines: lines
                .iter()
                .map(|(l, q)| ReceivedLine::new(*l, *q))
                .collect(),
            in_person: false,
        };
        self.step(rma_id, command, wms())
    }

    fn grade(&mut self, rma_id: Uuid, unit: &str, code: &str) -> Vec<RecordedEvent> {
        let command = RmaCommand::Grade {
            unit_id: unit.into(),
            grade_code: code.into(),
        };
        self.step(rma_id, command, actor(Role::StoreStaff, "inspector-3"))
    }

    fn refund(&mut self, rma_id: Uuid) -> Vec<RecordedEvent> {
        let command = RmaCommand::IssueRefund {
            refundable_left: yen(3 * 2990 + 9800),
            payment_reference: format!("pay-{rma_id}"),
        };
        self.step(rma_id, command, actor(Role::System, "system"))
    }

    fn close(&mut self, rma_id: Uuid) -> Vec<RecordedEvent> {
        let command = RmaCommand::Close {
            by: "agent-7".into(),
        };
        self.step(rma_id, command, agent())
    }

    fn status(&self, rma_id: Uuid) -> RmaStatus {
        self.view.get(rma_id).unwrap().status
    }

    fn timeline_len(&self, rma_id: Uuid) -> usize {
        self.view.get(rma_id).unwrap().timeline.len()
    }
}

/// Drains what a receiver holds now.
fn drain(rx: &mut broadcast::Receiver<ReturnUpdate>) -> Vec<ReturnUpdate> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(u) => out.push(u),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Runs a SIZE_FIT return of 2 T-shirts through its whole life, checking the status and the
/// timeline's length after each step.
fn lifecycle(r: &mut Returns, id: Uuid) {
    r.request(id, order(1), "cust-1", 3, &[("L1", 2, "SIZE_FIT")]);
    assert_eq!(
        (r.status(id), r.timeline_len(id)),
        (RmaStatus::Requested, 1)
    );
    r.approve(id);
    assert_eq!((r.status(id), r.timeline_len(id)), (RmaStatus::Approved, 2));
    r.receive(id, "WMS-1", "DC-EAST", &[("R1", 2)]);
    assert_eq!((r.status(id), r.timeline_len(id)), (RmaStatus::Received, 3));
    r.grade(id, "R1-1", "LIKE_NEW");
    assert_eq!((r.status(id), r.timeline_len(id)), (RmaStatus::Received, 4));
    r.grade(id, "R1-2", "NEW");
    assert_eq!(
        (r.status(id), r.timeline_len(id)),
        (RmaStatus::Inspected, 5)
    );
    r.refund(id);
    assert_eq!((r.status(id), r.timeline_len(id)), (RmaStatus::Refunded, 6));
    r.close(id);
    assert_eq!((r.status(id), r.timeline_len(id)), (RmaStatus::Closed, 7));
}

// ---------------------------------------------------------------------------------------------
// One return's life

#[test]
fn a_return_is_followed_from_request_to_close() {
    let mut r = Returns::new();
    let id = rma(1);
    lifecycle(&mut r, id);

    let record = r.view.get(id).unwrap();
    // The fold is the domain's own: the record's state is what the write side holds.
    assert_eq!(&record.rma, r.states.get(&id).unwrap());
    assert_eq!(record.rma.refunded(), Some(yen(2 * 2990 - 800)));
    assert_eq!(
        (
            record.rma_id,
            record.order_id,
            record.customer_id.as_deref(),
            record.requested_by.as_str(),
            record.requested_at,
        ),
        (id, order(1), Some("cust-1"), "cust-1", day(3))
    );
    assert_eq!(record.reason_codes, ["SIZE_FIT"]);
    assert_eq!(record.locations, ["DC-EAST"]);
    assert_eq!(record.cursor(), (day(3), id));

    let types: Vec<&str> = record
        .timeline
        .iter()
        .map(|t| t.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ReturnRequested.v1",
            "ReturnApproved.v1",
            "ReturnUnitsReceived.v1",
            "UnitGraded.v1",
            "UnitGraded.v1",
            "RefundIssued.v1",
            "ReturnClosed.v1",
        ]
    );
    let actors: Vec<&str> = record.timeline.iter().map(|t| t.actor.as_str()).collect();
    assert_eq!(
        actors,
        [
            "cust-1",
            "agent-7",
            "wms-east",
            "inspector-3",
            "inspector-3",
            "system",
            "agent-7"
        ]
    );
    let positions: Vec<u64> = record.timeline.iter().map(|t| t.position.commit).collect();
    assert_eq!(positions, [1, 2, 3, 4, 5, 6, 7]);
    // `at` is the business time of each event: one minute apart from the request on.
    for (i, t) in record.timeline.iter().enumerate() {
        assert_eq!(t.at, day(3) + TimeDelta::minutes(i as i64));
    }
    assert_eq!(record.updated_at, day(3) + TimeDelta::minutes(6));
    assert_eq!(record.position, Position::sequence(7));

    let summaries: Vec<&str> = record.timeline.iter().map(|t| t.summary.as_str()).collect();
    assert_eq!(
        summaries[0],
        "Return of 2 unit(s) requested by cust-1: TSHIRT-M ×2 (SIZE_FIT)"
    );
    assert_eq!(summaries[1], "Approved by agent-7: OK");
    assert_eq!(
        summaries[2],
        "2 unit(s) received at DC-EAST (receipt WMS-1): TSHIRT-M ×2"
    );
    assert!(
        summaries[3].starts_with("R1-1 (TSHIRT-M) at DC-EAST graded LIKE_NEW: resale as "),
        "{}",
        summaries[3]
    );
    assert_eq!(
        summaries[4],
        "R1-2 (TSHIRT-M) at DC-EAST graded NEW: back to stock"
    );
    assert!(
        summaries[5].starts_with(&format!("{} refunded for 2 unit(s)", yen(5180))),
        "{}",
        summaries[5]
    );
    assert!(
        summaries[6].starts_with("Closed by agent-7 from REFUNDED: 2 of 2 unit(s) received"),
        "{}",
        summaries[6]
    );
    assert_eq!(r.view.len(), 1);
}

#[test]
fn rejection_and_auto_approval_are_statuses_of_the_fold() {
    let mut r = Returns::new();
    r.request(rma(1), order(1), "cust-1", 3, &[("L1", 1, "CHANGED_MIND")]);
    r.reject(rma(1));
    assert_eq!(r.status(rma(1)), RmaStatus::Rejected);
    assert_eq!(
        r.view.get(rma(1)).unwrap().timeline[1].summary,
        "Rejected by agent-7: Worn"
    );

    // DEFECTIVE auto-approves: two events from one request, both on the timeline.
    let events = r.request(rma(2), order(2), "cust-2", 3, &[("L2", 1, "DEFECTIVE")]);
    assert_eq!(events.len(), 2);
    let record = r.view.get(rma(2)).unwrap();
    assert_eq!(record.status, RmaStatus::Approved);
    assert_eq!(
        record.timeline[1].summary,
        "Approved by the return policy: every reason is approved at once"
    );
}

#[test]
fn redelivered_events_are_applied_once() {
    let mut r = Returns::new();
    let mut events = r.request(rma(1), order(1), "cust-1", 3, &[("L1", 2, "SIZE_FIT")]);
    events.extend(r.approve(rma(1)));
    let mut rx = r.view.subscribe();
    // The store delivers at least once: a replay overlapping what was applied changes nothing.
    r.view.apply(&events);
    let record = r.view.get(rma(1)).unwrap();
    assert_eq!(record.timeline.len(), 2);
    assert_eq!(record.status, RmaStatus::Approved);
    assert!(drain(&mut rx).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Listings

/// Eight returns over days 3–9 (G and H on the same instant):
///
/// | id | customer | order | reasons              | day | status    | location |
/// |----|----------|-------|----------------------|-----|-----------|----------|
/// | A  | cust-1   | O1    | SIZE_FIT             | 3   | RECEIVED  | DC-EAST  |
/// | B  | cust-2   | O2    | DEFECTIVE            | 4   | RECEIVED  | STORE-A  |
/// | C  | cust-1   | O3    | CHANGED_MIND         | 5   | REQUESTED |          |
/// | D  | cust-3   | O4    | WRONG_ITEM, SIZE_FIT | 6   | REQUESTED |          |
/// | E  | cust-2   | O2    | WRONG_ITEM           | 7   | APPROVED  |          |
/// | F  | cust-1   | O1    | SIZE_FIT             | 8   | REJECTED  |          |
/// | G  | cust-4   | O5    | DEFECTIVE            | 9   | APPROVED  |          |
/// | H  | cust-4   | O6    | DEFECTIVE            | 9   | APPROVED  |          |
struct Listing {
    r: Returns,
}

const A: u128 = 1;
const B: u128 = 2;
const C: u128 = 3;
const D: u128 = 4;
const E: u128 = 5;
const F: u128 = 6;
const G: u128 = 7;
const H: u128 = 8;

impl Listing {
    fn new() -> Self {
        let mut r = Returns::new();
        r.request(rma(A), order(1), "cust-1", 3, &[("L1", 2, "SIZE_FIT")]);
        r.approve(rma(A));
        r.receive(rma(A), "WMS-1", "DC-EAST", &[("R1", 2)]);
        r.request(rma(B), order(2), "cust-2", 4, &[("L1", 1, "DEFECTIVE")]);
        r.receive(rma(B), "POS-1", "STORE-A", &[("R1", 1)]);
        r.request(rma(C), order(3), "cust-1", 5, &[("L2", 1, "CHANGED_MIND")]);
        r.request(
            rma(D),
            order(4),
            "cust-3",
            6,
            &[("L1", 1, "WRONG_ITEM"), ("L2", 1, "SIZE_FIT")],
        );
        r.request(rma(E), order(2), "cust-2", 7, &[("L2", 1, "WRONG_ITEM")]);
        r.request(rma(F), order(1), "cust-1", 8, &[("L1", 1, "SIZE_FIT")]);
        r.reject(rma(F));
        r.request(rma(G), order(5), "cust-4", 9, &[("L1", 1, "DEFECTIVE")]);
        r.request(rma(H), order(6), "cust-4", 9, &[("L1", 1, "DEFECTIVE")]);
        let statuses = [
            (A, RmaStatus::Received),
            (B, RmaStatus::Received),
            (C, RmaStatus::Requested),
            (D, RmaStatus::Requested),
            (E, RmaStatus::Approved),
            (F, RmaStatus::Rejected),
            (G, RmaStatus::Approved),
            (H, RmaStatus::Approved),
        ];
        for (n, status) in statuses {
            assert_eq!(r.status(rma(n)), status, "return {n}");
        }
        Listing { r }
    }

    /// Every match of `filter` (one big page), as return numbers.
    fn all(&self, filter: &ReturnFilter) -> Vec<u128> {
        let (page, has_next) = self.r.view.queue(filter, None, 100);
        assert!(!has_next);
        numbers(&page)
    }
}

fn numbers(records: &[ReturnRecord]) -> Vec<u128> {
    records
        .iter()
        .map(|r| r.rma_id.as_u128() - 0xAA00)
        .collect()
}

#[test]
fn the_queue_lists_newest_first_with_ties_broken_by_id() {
    let l = Listing::new();
    assert_eq!(l.r.view.len(), 8);
    assert_eq!(l.all(&ReturnFilter::default()), [H, G, F, E, D, C, B, A]);
}

#[test]
fn the_queue_filters_by_status() {
    let l = Listing::new();
    let by = |statuses: Vec<RmaStatus>| ReturnFilter {
        statuses: Some(statuses),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&by(vec![RmaStatus::Requested])), [D, C]);
    // Several statuses merge into one newest-first list.
    assert_eq!(
        l.all(&by(vec![RmaStatus::Received, RmaStatus::Approved])),
        [H, G, E, B, A]
    );
    // A status named twice lists its returns once.
    assert_eq!(
        l.all(&by(vec![RmaStatus::Rejected, RmaStatus::Rejected])),
        [F]
    );
    assert!(l.all(&by(vec![RmaStatus::Closed])).is_empty());
    assert!(l.all(&by(Vec::new())).is_empty());
}

#[test]
fn the_queue_filters_by_customer_order_reason_and_location() {
    let l = Listing::new();
    let customer = |c: &str| ReturnFilter {
        customer_id: Some(c.into()),
        ..ReturnFilter::default()
    };
    // A customer's own list.
    assert_eq!(l.all(&customer("cust-1")), [F, C, A]);
    assert!(l.all(&customer("nobody")).is_empty());
    let order_filter = ReturnFilter {
        order_id: Some(order(2)),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&order_filter), [E, B]);
    let reason = |c: &str| ReturnFilter {
        reason_code: Some(c.into()),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&reason("SIZE_FIT")), [F, D, A]);
    assert_eq!(l.all(&reason("WRONG_ITEM")), [E, D]);
    let location = |c: &str| ReturnFilter {
        location: Some(c.into()),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&location("STORE-A")), [B]);
    assert_eq!(l.all(&location("DC-EAST")), [A]);
    // Conditions are ANDed, whichever index answers first.
    let mine_waiting = ReturnFilter {
        customer_id: Some("cust-1".into()),
        statuses: Some(vec![RmaStatus::Requested, RmaStatus::Rejected]),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&mine_waiting), [F, C]);
    let contradictory = ReturnFilter {
        customer_id: Some("cust-1".into()),
        order_id: Some(order(2)),
        ..ReturnFilter::default()
    };
    assert!(l.all(&contradictory).is_empty());
    let size_fit_of_cust_1 = ReturnFilter {
        customer_id: Some("cust-1".into()),
        reason_code: Some("SIZE_FIT".into()),
        order_id: Some(order(1)),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&size_fit_of_cust_1), [F, A]);
}

#[test]
fn the_queue_filters_by_request_dates_half_open() {
    let l = Listing::new();
    let between = |from: Option<u32>, to: Option<u32>| ReturnFilter {
        requested_from: from.map(day),
        requested_to: to.map(day),
        ..ReturnFilter::default()
    };
    // Day 4 included, day 7 (E) excluded.
    assert_eq!(l.all(&between(Some(4), Some(7))), [D, C, B]);
    assert_eq!(l.all(&between(Some(8), None)), [H, G, F]);
    assert_eq!(l.all(&between(None, Some(4))), [A]);
    assert!(l.all(&between(Some(5), Some(5))).is_empty());
    // An inverted range is empty, not a panic.
    assert!(l.all(&between(Some(7), Some(4))).is_empty());
    let (page, has_next) =
        l.r.view
            .queue(&between(Some(7), None), Some((day(5), rma(C))), 10);
    assert!(page.is_empty() && !has_next);
    // Dates combine with the other conditions.
    let filter = ReturnFilter {
        customer_id: Some("cust-2".into()),
        requested_from: Some(day(5)),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&filter), [E]);
}

#[test]
fn pages_continue_from_the_cursor_without_repeats() {
    let l = Listing::new();
    let view = &l.r.view;
    let everything = ReturnFilter::default();
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let (page, has_next) = view.queue(&everything, after, 3);
        pages.push((page.len(), has_next));
        after = page.last().map(ReturnRecord::cursor);
        seen.extend(numbers(&page));
        if !has_next {
            break;
        }
    }
    // G and H share `requested_at`: the id keeps them apart across pages.
    assert_eq!(pages, [(3, true), (3, true), (2, false)]);
    assert_eq!(seen, [H, G, F, E, D, C, B, A]);

    // A page boundary right between the two returns of the same instant.
    let (page, has_next) = view.queue(&everything, None, 1);
    assert_eq!((numbers(&page), has_next), (vec![H], true));
    let (page, _) = view.queue(&everything, Some(page[0].cursor()), 1);
    assert_eq!(numbers(&page), [G]);

    // Filtered paging: the customer's own list, two at a time.
    let mine = ReturnFilter {
        customer_id: Some("cust-1".into()),
        ..ReturnFilter::default()
    };
    let (page, has_next) = view.queue(&mine, None, 2);
    assert_eq!((numbers(&page), has_next), (vec![F, C], true));
    let (page, has_next) = view.queue(&mine, page.last().map(ReturnRecord::cursor), 2);
    assert_eq!((numbers(&page), has_next), (vec![A], false));

    // `has_next` counts only returns that pass the filter.
    let requested = ReturnFilter {
        statuses: Some(vec![RmaStatus::Requested]),
        ..ReturnFilter::default()
    };
    let (page, has_next) = view.queue(&requested, None, 2);
    assert_eq!((numbers(&page), has_next), (vec![D, C], false));
    // `first = 0` answers only whether anything matches.
    let (page, has_next) = view.queue(&requested, None, 0);
    assert!(page.is_empty() && has_next);
}

#[test]
fn by_order_lists_the_orders_returns_oldest_first() {
    let l = Listing::new();
    assert_eq!(numbers(&l.r.view.by_order(order(2))), [B, E]);
    assert_eq!(numbers(&l.r.view.by_order(order(1))), [A, F]);
    assert!(l.r.view.by_order(order(99)).is_empty());
}

#[test]
fn a_status_change_moves_the_return_between_queues() {
    let mut l = Listing::new();
    let requested = ReturnFilter {
        statuses: Some(vec![RmaStatus::Requested]),
        ..ReturnFilter::default()
    };
    let approved = ReturnFilter {
        statuses: Some(vec![RmaStatus::Approved]),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&requested), [D, C]);
    l.r.approve(rma(C));
    assert_eq!(l.all(&requested), [D]);
    assert_eq!(l.all(&approved), [H, G, E, C]);
    l.r.receive(rma(C), "POS-9", "STORE-B", &[("R1", 1)]);
    assert!(!l.all(&approved).contains(&C));
    let at_store_b = ReturnFilter {
        location: Some("STORE-B".into()),
        statuses: Some(vec![RmaStatus::Received]),
        ..ReturnFilter::default()
    };
    assert_eq!(l.all(&at_store_b), [C]);
}

// ---------------------------------------------------------------------------------------------
// Live updates

#[test]
fn a_subscriber_receives_every_change_in_order() {
    let mut r = Returns::new();
    let mut rx = r.view.subscribe();
    let id = rma(1);
    lifecycle(&mut r, id);
    let updates = drain(&mut rx);
    let seen: Vec<(&str, RmaStatus)> = updates
        .iter()
        .map(|u| (u.event_type.as_str(), u.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("ReturnRequested.v1", RmaStatus::Requested),
            ("ReturnApproved.v1", RmaStatus::Approved),
            ("ReturnUnitsReceived.v1", RmaStatus::Received),
            ("UnitGraded.v1", RmaStatus::Received),
            ("UnitGraded.v1", RmaStatus::Inspected),
            ("RefundIssued.v1", RmaStatus::Refunded),
            ("ReturnClosed.v1", RmaStatus::Closed),
        ]
    );
    let record = r.view.get(id).unwrap();
    for (u, t) in updates.iter().zip(&record.timeline) {
        assert_eq!(
            (u.rma_id, u.order_id, u.customer_id.as_deref()),
            (id, order(1), Some("cust-1"))
        );
        assert_eq!(
            (&u.summary, u.at, u.position),
            (&t.summary, t.at, t.position)
        );
    }

    // A listener that joins later gets only what happens after it joined.
    let mut late = r.view.subscribe();
    r.request(rma(2), order(2), "cust-2", 4, &[("L2", 1, "WRONG_ITEM")]);
    let late_updates = drain(&mut late);
    assert_eq!(late_updates.len(), 2);
    assert!(late_updates.iter().all(|u| u.rma_id == rma(2)));
    assert_eq!(late_updates[1].status, RmaStatus::Approved);
}

// ---------------------------------------------------------------------------------------------
// What the view skips

#[test]
fn the_policy_stream_and_other_categories_are_ignored() {
    let mut r = Returns::new();
    let view = &r.view;
    assert!(view
        .filter()
        .matches("rma-policy", "ReturnReasonDefined.v1"));
    assert!(view
        .filter()
        .matches(&stream_name(rma(1)), "ReturnRequested.v1"));
    assert!(!view
        .filter()
        .matches(&format!("order-{}", order(1)), "OrderPlaced.v1"));

    let mut rx = r.view.subscribe();
    let policy: Vec<RecordedEvent> = policy_events()
        .iter()
        .map(|e| {
            r.feed.raw(
                POLICY_STREAM,
                e.event_type(),
                &e.payload_json().unwrap(),
                actor(Role::Admin, "admin"),
                day(1),
            )
        })
        .collect();
    assert!(!policy.is_empty());
    r.view.apply(&policy);

    // A real return request, but in another category's stream: not this view's.
    let request = r.decided(
        rma(1),
        RmaCommand::Request(Box::new(RequestReturn {
            rma_id: rma(1),
            order: order_facts(order(1), "cust-1"),
            lines: vec![RequestedLine::new("L1", 1, "SIZE_FIT")],
            requested_by: "cust-1".into(),
            note: String::new(),
        })),
        actor(Role::Customer, "cust-1"),
    );
    let elsewhere: Vec<RecordedEvent> = request
        .iter()
        .map(|e| RecordedEvent {
            stream: Arc::from(format!("order-{}", rma(1)).as_str()),
            ..e.clone()
        })
        .collect();
    r.view.apply(&elsewhere);
    assert!(r.view.is_empty());
    assert!(r.view.get(rma(1)).is_none());
    assert!(drain(&mut rx).is_empty());

    // The same request in its own stream is taken.
    r.view.apply(&request);
    assert_eq!(r.view.len(), 1);
    assert_eq!(drain(&mut rx).len(), 1);
}

#[test]
fn undecodable_events_are_skipped_and_later_events_still_apply() {
    let mut r = Returns::new();
    let id = rma(1);
    r.request(id, order(1), "cust-1", 3, &[("L1", 2, "SIZE_FIT")]);
    let mut rx = r.view.subscribe();
    let stream = stream_name(id);
    let bad = vec![
        // A known type whose payload does not parse.
        r.feed.raw(
            &stream,
            "ReturnApproved.v1",
            br#"{"auto":"yes"}"#,
            agent(),
            day(3),
        ),
        // A type this view does not know.
        r.feed
            .raw(&stream, "ReturnTeleported.v1", b"{}", agent(), day(3)),
        // Not JSON at all.
        r.feed
            .raw(&stream, "ReturnClosed.v1", b"\xff\x00", agent(), day(3)),
        // A stream id that is not a UUID.
        r.feed.raw(
            "rma-not-a-uuid",
            "ReturnApproved.v1",
            br#"{"auto":false,"by":"agent-7","note":""}"#,
            agent(),
            day(3),
        ),
        // A valid event of a return whose request the view never saw.
        r.feed.raw(
            &stream_name(rma(2)),
            "ReturnApproved.v1",
            br#"{"auto":false,"by":"agent-7","note":""}"#,
            agent(),
            day(3),
        ),
    ];
    r.view.apply(&bad);
    let record = r.view.get(id).unwrap();
    assert_eq!(
        (record.status, record.timeline.len()),
        (RmaStatus::Requested, 1)
    );
    assert_eq!(r.view.len(), 1);
    assert!(drain(&mut rx).is_empty());

    // The stream goes on after the skipped revisions.
    let approved = r.approve(id);
    assert_eq!(approved[0].revision, 4);
    let record = r.view.get(id).unwrap();
    assert_eq!(
        (record.status, record.timeline.len()),
        (RmaStatus::Approved, 2)
    );
    assert_eq!(drain(&mut rx).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Fed by the runtime from a real store

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_view_replays_then_follows_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let new_event = |e: &RecordedEvent| NewEvent {
        id: Uuid::new_v4(),
        event_type: e.event_type.to_string(),
        data: e.data.to_vec(),
        metadata: e.metadata.clone(),
    };
    let mut r = Returns::new();
    let mut history: Vec<RecordedEvent> = policy_events()
        .iter()
        .map(|e| {
            r.feed.raw(
                POLICY_STREAM,
                e.event_type(),
                &e.payload_json().unwrap(),
                actor(Role::Admin, "admin"),
                day(1),
            )
        })
        .collect();
    history.extend(r.request(rma(1), order(1), "cust-1", 3, &[("L1", 2, "SIZE_FIT")]));
    for e in &history {
        store
            .append(&e.stream, ExpectedRevision::Any, vec![new_event(e)])
            .await
            .unwrap();
    }

    let (view, handle) = ReturnsView::spawn(store.clone());
    tokio::time::timeout(Duration::from_secs(10), handle.wait_caught_up())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.len(), 1);
    assert_eq!(view.get(rma(1)).unwrap().status, RmaStatus::Requested);

    let mut rx = view.subscribe();
    let mut last = None;
    for e in r.approve(rma(1)) {
        last = Some(
            store
                .append(&e.stream, ExpectedRevision::Any, vec![new_event(&e)])
                .await
                .unwrap()
                .position,
        );
    }
    handle
        .wait_for(last.unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    let record = view.get(rma(1)).unwrap();
    assert_eq!(record.status, RmaStatus::Approved);
    assert_eq!(record.timeline.len(), 2);
    assert_eq!(record.position, last.unwrap());
    let update = rx.try_recv().unwrap();
    assert_eq!(
        (update.rma_id, update.status),
        (rma(1), RmaStatus::Approved)
    );
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
    store.shutdown().await;
}
