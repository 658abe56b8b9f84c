//! The order aggregate, stream `order-<uuid>`.
//!
//! The handler does everything that needs I/O *before* deciding: it prices the lines from the
//! catalog, sources them ([`crate::domain::sourcing`]), reserves stock in inventory and has the
//! payment authorized, then passes the results in [`OrderCommand::Place`]. The decision here
//! checks that those results are consistent (every line fully allocated, payment equal to the
//! total less any exchange credit — none when the credit covers it all — one currency) and
//! records them; later commands move quantities through fulfilment and money through capture,
//! void and refund.
//!
//! Quantities are tracked per line and per allocation (one reservation at one location), so
//! that the status is a pure function of them ([`Order::status`]) and every cancellation,
//! shipment or short pick names exactly which reservations the handler must release or consume.
//!
//! Why one stream per order: every invariant here (cancelled + fulfilled ≤ ordered per line,
//! captured ≤ authorized, refunded ≤ captured) involves only this order's numbers, so the stream
//! revision check guards them under any concurrency.

mod decide;
mod error;
mod events;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ichigen_shared::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use decide::{decide, validate_credit, OrderCommand, PlaceOrder};
pub use error::OrderError;
pub use events::*;

use crate::domain::sourcing::{Allocation, Delivery, LineExplanation, SourcingLine};

/// At most this many units per line: more is a typo or an abuse, not a retail order.
pub const MAX_LINE_QTY: i64 = 10_000;
/// At most this many lines per order (keeps one order's stream and event small).
pub const MAX_LINES: usize = 500;
/// The cancellation reason recorded for lines a partial order could not source.
pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";

/// The stream of one order.
pub fn stream_name(order_id: Uuid) -> String {
    format!("order-{order_id}")
}

/// Where the order was taken: the storefront, or a store's app (endless aisle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Web,
    /// The store's code.
    Store(String),
}

/// A line as priced by the handler from the catalog (never from what the client sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricedLine {
    pub line_id: String,
    pub sku: String,
    pub title: String,
    pub qty: i64,
    pub unit_price: Money,
    pub delivery: Delivery,
}

impl PricedLine {
    /// What sourcing needs of the line.
    pub fn sourcing_line(&self) -> SourcingLine {
        SourcingLine {
            line_id: self.line_id.clone(),
            sku: self.sku.clone(),
            qty: self.qty,
            delivery: self.delivery.clone(),
        }
    }
}

/// Units of a line reserved at a location under one reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservedAllocation {
    pub line_id: String,
    pub location: String,
    pub qty: i64,
    pub reservation_id: String,
}

impl ReservedAllocation {
    /// A sourcing allocation once the handler reserved it in inventory.
    pub fn new(allocation: &Allocation, reservation_id: impl Into<String>) -> Self {
        ReservedAllocation {
            line_id: allocation.line_id.clone(),
            location: allocation.location.clone(),
            qty: allocation.qty,
            reservation_id: reservation_id.into(),
        }
    }
}

/// What the payment provider answered at placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAuthorization {
    pub payment_id: Uuid,
    pub provider: String,
    pub reference: String,
    pub amount: Money,
}

/// Credit that pays for part or all of an order before the customer's means of payment does:
/// the value of units returned for an exchange (`source` names where it comes from, e.g.
/// `rma:<rmaId>`). The order records it so that everything computed from money (what is
/// authorized, captured, refunded on a cancel) leaves it out: the customer is only ever charged,
/// and only ever refunded, what they paid themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCredit {
    /// Zero or more, in the order's currency.
    pub amount: Money,
    /// Non-blank: what the credit is owed for (the returns service passes `rma:<rmaId>`).
    pub source: String,
}

/// A quantity of one line (in commands and events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineQty {
    pub line_id: String,
    pub qty: i64,
}

impl LineQty {
    pub fn new(line_id: impl Into<String>, qty: i64) -> Self {
        LineQty {
            line_id: line_id.into(),
            qty,
        }
    }
}

/// Units of a reservation the order no longer needs: the handler releases them in inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRelease {
    pub line_id: String,
    pub reservation_id: String,
    pub location: String,
    pub qty: i64,
}

/// Units of a reservation that left the building: the handler consumes them in inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationUse {
    pub line_id: String,
    pub reservation_id: String,
    pub qty: i64,
}

/// The statuses retailers expect, derived from quantities by [`Order::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Placed,
    PartiallyFulfilled,
    Fulfilled,
    ReadyForPickup,
    PickedUp,
    Delivered,
    Cancelled,
    PartiallyCancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::PartiallyFulfilled => "PARTIALLY_FULFILLED",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::ReadyForPickup => "READY_FOR_PICKUP",
            OrderStatus::PickedUp => "PICKED_UP",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::PartiallyCancelled => "PARTIALLY_CANCELLED",
        }
    }
}

/// Units of a line under one reservation at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAllocation {
    pub location: String,
    pub reservation_id: String,
    /// Reserved at placement or reassignment.
    pub qty: i64,
    /// Shipped or picked up from it.
    pub fulfilled: i64,
    /// Given up (cancelled, short-picked, moved elsewhere).
    pub released: i64,
}

impl LineAllocation {
    /// Units still held here for the customer.
    pub fn open(&self) -> i64 {
        self.qty - self.fulfilled - self.released
    }
}

/// One line and where each of its units stands.
#[derive(Debug, Clone, PartialEq)]
pub struct LineState {
    pub line_id: String,
    pub sku: String,
    pub title: String,
    /// Ordered.
    pub qty: i64,
    pub unit_price: Money,
    pub delivery: Delivery,
    pub allocations: Vec<LineAllocation>,
    /// Units a location could not pick, by location, waiting for a new location or a cancel.
    pub short_picked: BTreeMap<String, i64>,
    pub shipped: i64,
    /// Staged at the pickup store, not yet picked up (or cancelled).
    pub ready: i64,
    pub picked_up: i64,
    pub delivered: i64,
    pub cancelled: i64,
}

impl LineState {
    /// Units neither cancelled nor fulfilled: what a cancel may still take.
    pub fn open(&self) -> i64 {
        self.qty - self.cancelled - self.shipped - self.picked_up
    }

    /// Units shipped or picked up.
    pub fn fulfilled(&self) -> i64 {
        self.shipped + self.picked_up
    }

    /// Units held for the customer at `location`.
    pub fn open_at(&self, location: &str) -> i64 {
        self.allocations
            .iter()
            .filter(|a| a.location == location)
            .map(LineAllocation::open)
            .sum()
    }

    /// Units held under open reservations, across locations.
    pub fn held(&self) -> i64 {
        self.allocations.iter().map(LineAllocation::open).sum()
    }

    /// Units allocated per location (held or already fulfilled there), for readers.
    pub fn allocated_by_location(&self) -> BTreeMap<&str, i64> {
        let mut by = BTreeMap::new();
        for a in &self.allocations {
            *by.entry(a.location.as_str()).or_insert(0) += a.qty - a.released;
        }
        by
    }

    /// Units short-picked and not yet resolved, across locations.
    pub fn short_picked_total(&self) -> i64 {
        self.short_picked.values().sum()
    }

    /// Open units neither held nor short-picked: only in the instant between a partial
    /// order's placement and its `OUT_OF_STOCK` cancellation (0 in any folded stream).
    pub fn unallocated(&self) -> i64 {
        self.open() - self.held() - self.short_picked_total()
    }

    pub fn is_pickup(&self) -> bool {
        matches!(self.delivery, Delivery::Pickup { .. })
    }
}

/// What placement recorded about the order as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderHeader {
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    pub placed_by: String,
    pub channel: Channel,
    pub currency: Currency,
    /// As ordered.
    pub total: Money,
    /// Value of every cancelled unit so far.
    pub cancelled_amount: Money,
    pub idempotency_key: String,
    pub request_fingerprint: String,
    pub placed_at: DateTime<Utc>,
    pub sourcing: Vec<LineExplanation>,
    /// Exchange credit applied at placement (see [`OrderCredit`]).
    pub credit: Option<OrderCredit>,
}

/// The money side of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub payment_id: Uuid,
    pub provider: String,
    pub reference: String,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
    pub voided: bool,
    /// By provider reference, to recognise a retried capture.
    pub captures: BTreeMap<String, Money>,
    /// By provider reference, to recognise a retried refund.
    pub refunds: BTreeMap<String, Money>,
    /// Refunds made under a caller's operation key (a return's `rma:<id>`, a cancellation's
    /// settlement), by that key: how a retried call is recognised *before* the provider is
    /// asked again, and where a caller finds the provider's reference of its refund.
    pub refund_operations: BTreeMap<String, OperationRefund>,
}

/// One refund recorded under an operation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRefund {
    pub amount: Money,
    /// The provider's reference for the refund.
    pub reference: String,
}

/// Which step a fulfillment id was used for (one id may be staged, then picked up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FulfillmentKind {
    Shipment,
    ReadyForPickup,
    PickUp,
}

/// A recorded fulfilment step, to answer retries and deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfillment {
    pub location: String,
    pub lines: Vec<LineQty>,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub delivered: bool,
}

/// The folded state of one order. `Default` is "no such order".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Order {
    pub header: Option<OrderHeader>,
    pub lines: Vec<LineState>,
    pub payment: Option<PaymentState>,
    pub fulfillments: BTreeMap<(FulfillmentKind, String), Fulfillment>,
    /// What each confirmed cancellation (`CancelConfirmed`, by operation) has recorded.
    pub cancel_operations: BTreeMap<String, CancelOperation>,
}

/// The parts of one confirmed cancellation recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelOperation {
    /// Reservations whose units it cancelled (as the fulfillment orders answered).
    pub reservations: std::collections::BTreeSet<String>,
    /// Whether its units that no location holds were recorded.
    pub unheld_recorded: bool,
}

impl Order {
    /// Folds a whole history.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a OrderEvent>) -> Self {
        let mut state = Order::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    pub fn exists(&self) -> bool {
        self.header.is_some()
    }

    pub fn line(&self, line_id: &str) -> Option<&LineState> {
        self.lines.iter().find(|l| l.line_id == line_id)
    }

    fn line_mut(&mut self, line_id: &str) -> Option<&mut LineState> {
        self.lines.iter_mut().find(|l| l.line_id == line_id)
    }

    /// What the customer owes from their own means of payment: the units not cancelled, less
    /// the exchange credit, never below zero (at placement, the authorization). Captures stop
    /// at it and a cancellation refunds what was captured beyond it, so the credit is neither
    /// charged nor paid out; a cancellation eats into the paid part first, the credit last.
    pub fn payable(&self) -> Option<Money> {
        let h = self.header.as_ref()?;
        let owed = h.total.checked_sub(h.cancelled_amount).ok()?;
        let Some(credit) = &h.credit else {
            return Some(owed);
        };
        let owed = owed.checked_sub(credit.amount).ok()?;
        Some(Money::new(
            owed.amount.max(rust_decimal::Decimal::ZERO),
            owed.currency,
        ))
    }

    /// The exchange credit applied at placement, if any.
    pub fn credit(&self) -> Option<&OrderCredit> {
        self.header.as_ref()?.credit.as_ref()
    }

    /// The status, derived from the line quantities (`None` before placement). Precedence:
    ///
    /// 1. nothing left uncancelled → `CANCELLED`;
    /// 2. every uncancelled unit fulfilled → `DELIVERED` if there were shipments and all of
    ///    them were delivered (pickups, if any, all picked up), `PICKED_UP` if every unit was
    ///    picked up, else `FULFILLED`;
    /// 3. some units fulfilled → `PARTIALLY_FULFILLED`;
    /// 4. nothing fulfilled but every open unit staged for pickup → `READY_FOR_PICKUP` (what
    ///    the customer must act on beats an earlier partial cancellation);
    /// 5. some units cancelled → `PARTIALLY_CANCELLED`;
    /// 6. otherwise `PLACED`.
    pub fn status(&self) -> Option<OrderStatus> {
        self.header.as_ref()?;
        let sum = |f: fn(&LineState) -> i64| self.lines.iter().map(f).sum::<i64>();
        let ordered = sum(|l| l.qty);
        let cancelled = sum(|l| l.cancelled);
        let shipped = sum(|l| l.shipped);
        let picked_up = sum(|l| l.picked_up);
        let delivered = sum(|l| l.delivered);
        let ready = sum(|l| l.ready);
        let active = ordered - cancelled;
        let fulfilled = shipped + picked_up;
        Some(if active <= 0 {
            OrderStatus::Cancelled
        } else if fulfilled >= active {
            if shipped > 0 && delivered >= shipped {
                OrderStatus::Delivered
            } else if shipped == 0 {
                OrderStatus::PickedUp
            } else {
                OrderStatus::Fulfilled
            }
        } else if fulfilled > 0 {
            OrderStatus::PartiallyFulfilled
        } else if ready >= active {
            OrderStatus::ReadyForPickup
        } else if cancelled > 0 {
            OrderStatus::PartiallyCancelled
        } else {
            OrderStatus::Placed
        })
    }

    /// Applies one event. Never fails: `decide` validated it before it was stored; saturating
    /// and clamped arithmetic only keeps a corrupt history from panicking.
    pub fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced(e) => {
                self.header = Some(OrderHeader {
                    order_id: e.order_id,
                    customer_id: e.customer_id.clone(),
                    placed_by: e.placed_by.clone(),
                    channel: e.channel.clone(),
                    currency: e.total.currency,
                    total: e.total,
                    cancelled_amount: Money::zero(e.total.currency),
                    idempotency_key: e.idempotency_key.clone(),
                    request_fingerprint: e.request_fingerprint.clone(),
                    placed_at: e.placed_at,
                    sourcing: e.sourcing.clone(),
                    credit: e.credit.clone(),
                });
                self.lines = e
                    .lines
                    .iter()
                    .map(|l| LineState {
                        line_id: l.line_id.clone(),
                        sku: l.sku.clone(),
                        title: l.title.clone(),
                        qty: l.qty,
                        unit_price: l.unit_price,
                        delivery: l.delivery.clone(),
                        allocations: e
                            .allocations
                            .iter()
                            .filter(|a| a.line_id == l.line_id)
                            .map(|a| LineAllocation {
                                location: a.location.clone(),
                                reservation_id: a.reservation_id.clone(),
                                qty: a.qty,
                                fulfilled: 0,
                                released: 0,
                            })
                            .collect(),
                        short_picked: BTreeMap::new(),
                        shipped: 0,
                        ready: 0,
                        picked_up: 0,
                        delivered: 0,
                        cancelled: 0,
                    })
                    .collect();
            }
            OrderEvent::OrderLinesCancelled(e) => {
                if let Some(operation) = &e.operation {
                    let recorded = self.cancel_operations.entry(operation.clone()).or_default();
                    recorded.reservations.extend(
                        e.reservations_to_release
                            .iter()
                            .map(|r| r.reservation_id.clone()),
                    );
                    let held: i64 = e.reservations_to_release.iter().map(|r| r.qty).sum();
                    let all: i64 = e.lines.iter().map(|l| l.qty).sum();
                    if all > held {
                        recorded.unheld_recorded = true;
                    }
                }
                for c in &e.lines {
                    if let Some(line) = self.line_mut(&c.line_id) {
                        line.cancelled = line.cancelled.saturating_add(c.qty);
                    }
                }
                self.release(&e.reservations_to_release);
                for s in &e.short_picked_cleared {
                    self.clear_short(&s.line_id, &s.location, s.qty);
                }
                if let Some(h) = &mut self.header {
                    add_money(&mut h.cancelled_amount, &e.amount);
                }
            }
            OrderEvent::OrderShipped(e) => {
                self.record(
                    FulfillmentKind::Shipment,
                    &e.fulfillment_id,
                    &e.location,
                    &e.lines,
                );
                if let Some(f) = self
                    .fulfillments
                    .get_mut(&(FulfillmentKind::Shipment, e.fulfillment_id.clone()))
                {
                    f.carrier = Some(e.carrier.clone());
                    f.tracking = e.tracking.clone();
                }
                for q in &e.lines {
                    if let Some(line) = self.line_mut(&q.line_id) {
                        line.shipped = line.shipped.saturating_add(q.qty);
                    }
                }
                self.consume(&e.consumed);
            }
            OrderEvent::OrderReadyForPickup(e) => {
                self.record(
                    FulfillmentKind::ReadyForPickup,
                    &e.fulfillment_id,
                    &e.location,
                    &e.lines,
                );
                for q in &e.lines {
                    if let Some(line) = self.line_mut(&q.line_id) {
                        line.ready = line.ready.saturating_add(q.qty);
                    }
                }
            }
            OrderEvent::OrderPickedUp(e) => {
                self.record(
                    FulfillmentKind::PickUp,
                    &e.fulfillment_id,
                    &e.location,
                    &e.lines,
                );
                for q in &e.lines {
                    if let Some(line) = self.line_mut(&q.line_id) {
                        line.picked_up = line.picked_up.saturating_add(q.qty);
                        line.ready = (line.ready - q.qty).max(0);
                    }
                }
                self.consume(&e.consumed);
            }
            OrderEvent::OrderDelivered(e) => {
                if let Some(f) = self
                    .fulfillments
                    .get_mut(&(FulfillmentKind::Shipment, e.fulfillment_id.clone()))
                {
                    f.delivered = true;
                }
                for q in &e.lines {
                    if let Some(line) = self.line_mut(&q.line_id) {
                        line.delivered = line.delivered.saturating_add(q.qty);
                    }
                }
            }
            OrderEvent::LineShortPicked(e) => {
                self.release(&e.reservations_to_release);
                if let Some(line) = self.line_mut(&e.line_id) {
                    *line.short_picked.entry(e.location.clone()).or_insert(0) += e.qty;
                }
            }
            OrderEvent::LineReassigned(e) => {
                self.clear_short(&e.line_id, &e.from_location, e.short_picked_cleared);
                self.release(&e.reservations_to_release);
                if let Some(line) = self.line_mut(&e.line_id) {
                    line.allocations.push(LineAllocation {
                        location: e.to_location.clone(),
                        reservation_id: e.new_reservation_id.clone(),
                        qty: e.qty,
                        fulfilled: 0,
                        released: 0,
                    });
                }
            }
            OrderEvent::PaymentAuthorized(e) => {
                let zero = Money::zero(e.amount.currency);
                self.payment = Some(PaymentState {
                    payment_id: e.payment_id,
                    provider: e.provider.clone(),
                    reference: e.reference.clone(),
                    authorized: e.amount,
                    captured: zero,
                    refunded: zero,
                    voided: false,
                    captures: BTreeMap::new(),
                    refunds: BTreeMap::new(),
                    refund_operations: BTreeMap::new(),
                });
            }
            OrderEvent::PaymentCaptured(e) => {
                if let Some(p) = &mut self.payment {
                    add_money(&mut p.captured, &e.amount);
                    p.captures.insert(e.reference.clone(), e.amount);
                }
            }
            OrderEvent::PaymentVoided(_) => {
                if let Some(p) = &mut self.payment {
                    p.voided = true;
                }
            }
            OrderEvent::PaymentRefunded(e) => {
                if let Some(p) = &mut self.payment {
                    add_money(&mut p.refunded, &e.amount);
                    p.refunds.insert(e.reference.clone(), e.amount);
                    if let Some(operation) = &e.operation {
                        p.refund_operations.insert(
                            operation.clone(),
                            OperationRefund {
                                amount: e.amount,
                                reference: e.reference.clone(),
                            },
                        );
                    }
                }
            }
        }
    }

    fn record(&mut self, kind: FulfillmentKind, id: &str, location: &str, lines: &[LineQty]) {
        self.fulfillments.insert(
            (kind, id.to_owned()),
            Fulfillment {
                location: location.to_owned(),
                lines: lines.to_vec(),
                carrier: None,
                tracking: None,
                delivered: false,
            },
        );
    }

    fn release(&mut self, releases: &[ReservationRelease]) {
        for r in releases {
            if let Some(line) = self.line_mut(&r.line_id) {
                if let Some(a) = line
                    .allocations
                    .iter_mut()
                    .find(|a| a.reservation_id == r.reservation_id)
                {
                    a.released = a.released.saturating_add(r.qty.min(a.open().max(0)));
                }
            }
        }
        // Staged units cannot outnumber the units still held (after a cancel or short pick).
        for line in &mut self.lines {
            line.ready = line.ready.min(line.held().max(0));
        }
    }

    fn consume(&mut self, uses: &[ReservationUse]) {
        for u in uses {
            if let Some(line) = self.line_mut(&u.line_id) {
                if let Some(a) = line
                    .allocations
                    .iter_mut()
                    .find(|a| a.reservation_id == u.reservation_id)
                {
                    a.fulfilled = a.fulfilled.saturating_add(u.qty.min(a.open().max(0)));
                }
            }
        }
    }

    fn clear_short(&mut self, line_id: &str, location: &str, qty: i64) {
        if let Some(line) = self.line_mut(line_id) {
            if let Some(left) = line.short_picked.get_mut(location) {
                *left = (*left - qty).max(0);
                if *left == 0 {
                    line.short_picked.remove(location);
                }
            }
        }
    }
}

/// `a += b`, leaving `a` as it was on a currency mismatch or overflow (decide refused those).
fn add_money(a: &mut Money, b: &Money) {
    if let Ok(sum) = a.checked_add(*b) {
        *a = sum;
    }
}
