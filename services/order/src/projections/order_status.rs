//! `OrderStatusView`: what a customer, a store associate or a CS agent sees of an order — the
//! order's own state, the fulfillment orders working on it, a timeline of every event, and the
//! post-purchase messages (order received, confirmed, shipped, …) derived from those events.
//!
//! # Why one view over two categories
//!
//! An order's status lives in its own stream (`order-<uuid>`), but where a parcel is, its
//! tracking number and the pickup code live in the fulfillment orders (`fulfillment-<uuid>`).
//! Combining them on the read side keeps both write sides independent, and one projection over
//! both categories sees their events in the one global order, so the timeline needs no merge.
//!
//! The order part is folded with the domain's own [`Order::apply`], so the view cannot disagree
//! with the write side about quantities or status. The order crate does not depend on the
//! fulfillment crate: fulfillment events are read by their published JSON shape (event type +
//! camelCase payload), taking only the fields shown here. A fulfillment stream is mapped to its
//! order by its `FulfillmentCreated.v1`; fulfillment events of orders the view does not know
//! (or of streams whose creation it never saw) are skipped with a debug log.
//!
//! # Post-purchase messages
//!
//! Each message retailers send after purchase is an [`OrderUpdate`], kept in the order's record
//! ([`OrderStatusView::updates`]) and published on a broadcast channel
//! ([`OrderStatusView::subscribe`], only when someone listens) for the `orderUpdates`
//! subscription. A shipment is reported by the fulfillment service (`FulfillmentShipped`) and
//! then recorded on the order (`OrderShipped`); the customer must get one message, so shipped,
//! ready-for-pickup, picked-up and delivered messages are announced once per fulfillment id
//! (and a shipment once per tracking number), whichever of the two events comes first.
//!
//! # Reads
//!
//! Every read copies what it returns out of a shared lock (records are a few kilobytes), so no
//! caller holds the lock while it serialises a response. Listings page newest first by
//! `(placed_at, order_id)`, the cursor [`OrderRecord::cursor`] returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use ichigen_shared::envelope::{Actor, RecordedEvent};
use ichigen_shared::money::Money;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::{Position, SubscriptionFilter};
use serde::Deserialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::order::{
    Channel, FulfillmentKind as OrderFulfillmentStep, LineQty, LineState, Order, OrderEvent,
    OrderHeader, OrderStatus,
};
use crate::domain::sourcing::Delivery;

#[cfg(test)]
mod tests;

/// The fulfillment service's stream category (`fulfillment-<uuid>`). Named here rather than
/// imported: the order crate does not depend on the fulfillment crate.
pub const FULFILLMENT_CATEGORY: &str = "fulfillment";

/// Updates buffered per subscriber before a slow one sees `RecvError::Lagged`.
pub const UPDATE_FEED_CAPACITY: usize = 1024;

/// A cursor of the order listings: `(placed_at, order_id)`.
pub type OrderCursor = (DateTime<Utc>, Uuid);

/// The kind of work a fulfillment order does (the fulfillment service's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentType {
    /// Picked, packed and shipped to the customer.
    Ship,
    /// Picked and collected by the customer at this store (BOPIS).
    Pickup,
    /// Shipped to a store where the customer collects it.
    ShipToStore,
    /// A kind this view does not know yet (a newer fulfillment service).
    #[serde(other)]
    Other,
}

impl FulfillmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentType::Ship => "SHIP",
            FulfillmentType::Pickup => "PICKUP",
            FulfillmentType::ShipToStore => "SHIP_TO_STORE",
            FulfillmentType::Other => "OTHER",
        }
    }
}

/// Where a fulfillment order stands, as the fulfillment service's events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfillmentProgress {
    Open,
    Picked,
    Packed,
    Shipped,
    Delivered,
    ReadyForPickup,
    PickedUp,
    Expired,
    Cancelled,
}

impl FulfillmentProgress {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentProgress::Open => "OPEN",
            FulfillmentProgress::Picked => "PICKED",
            FulfillmentProgress::Packed => "PACKED",
            FulfillmentProgress::Shipped => "SHIPPED",
            FulfillmentProgress::Delivered => "DELIVERED",
            FulfillmentProgress::ReadyForPickup => "READY_FOR_PICKUP",
            FulfillmentProgress::PickedUp => "PICKED_UP",
            FulfillmentProgress::Expired => "EXPIRED",
            FulfillmentProgress::Cancelled => "CANCELLED",
        }
    }
}

/// One order line's part of a fulfillment order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfillmentLineView {
    pub line_id: String,
    pub sku: String,
    /// Units still to fulfil here (after short picks and cancellations).
    pub qty: i64,
    pub picked: i64,
    pub short: i64,
    pub cancelled: i64,
}

/// A fulfillment order working on the order: where, what kind, how far, and what the customer
/// needs (tracking, pickup code and until when).
#[derive(Debug, Clone, PartialEq)]
pub struct FulfillmentOrderView {
    pub fulfillment_id: Uuid,
    /// The location doing the work.
    pub location: String,
    pub kind: FulfillmentType,
    /// The store a SHIP_TO_STORE order goes to.
    pub destination_store: Option<String>,
    pub status: FulfillmentProgress,
    pub lines: Vec<FulfillmentLineView>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub pickup_code: Option<String>,
    pub pickup_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FulfillmentOrderView {
    /// Where the customer collects (PICKUP: the location; SHIP_TO_STORE: the destination).
    pub fn pickup_store(&self) -> Option<&str> {
        match self.kind {
            FulfillmentType::Pickup => Some(&self.location),
            FulfillmentType::ShipToStore => self.destination_store.as_deref(),
            FulfillmentType::Ship | FulfillmentType::Other => None,
        }
    }

    fn remaining(&self) -> i64 {
        self.lines.iter().map(|l| l.qty).sum()
    }
}

/// A parcel's tracking, as a line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// The fulfillment id the shipment was recorded under.
    pub fulfillment_id: String,
    pub carrier: String,
    pub tracking_number: Option<String>,
}

/// One line as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineView {
    pub line_id: String,
    pub sku: String,
    pub title: String,
    pub qty: i64,
    pub unit_price: Money,
    pub delivery: Delivery,
    /// The line's own status, by [`Order::status`]'s rules applied to this line alone.
    pub status: OrderStatus,
    pub cancelled: i64,
    pub shipped: i64,
    /// Staged at the pickup store, not yet collected.
    pub ready: i64,
    pub picked_up: i64,
    pub delivered: i64,
    /// Units a location could not pick, waiting for another location or a cancel.
    pub short_picked: i64,
    /// Units allocated per location (held or already fulfilled there), by location code.
    pub locations: Vec<(String, i64)>,
    /// Fulfillment orders that carry the line.
    pub fulfillment_ids: Vec<Uuid>,
    /// Every shipment that carried units of the line.
    pub tracking: Vec<Tracking>,
}

/// The money side, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSummary {
    pub payment_id: Uuid,
    pub provider: String,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
    /// The authorization released without capture (what was authorized), if it was voided.
    pub voided: Option<Money>,
}

/// Which stream an event of the timeline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineSource {
    Order,
    Fulfillment(Uuid),
}

/// One event of the order or of one of its fulfillment orders.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// Versioned event type, e.g. `OrderShipped.v1`.
    pub event_type: String,
    pub source: TimelineSource,
    pub occurred_at: DateTime<Utc>,
    pub position: Position,
    /// One human-readable sentence (no pickup codes: the timeline is shown to staff too).
    pub summary: String,
    pub actor: Actor,
}

/// What a post-purchase message says.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderUpdateKind {
    /// The order was placed.
    OrderReceived,
    /// The payment was authorized: the order is confirmed. `amount` is zero for an order an
    /// exchange credit paid for in full (confirmed by its placement, no payment).
    Confirmed {
        amount: Money,
    },
    /// A parcel left (`tracking` is `None` only when the order was marked shipped without one).
    Shipped {
        fulfillment_id: String,
        location: String,
        carrier: String,
        tracking: Option<String>,
    },
    /// Units wait at `store`. Code and expiry come from the fulfillment order; `None` only when
    /// the order recorded the step without a fulfillment order the view knows.
    ReadyForPickup {
        fulfillment_id: String,
        store: String,
        pickup_code: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    },
    PickedUp {
        fulfillment_id: String,
        store: String,
    },
    Delivered {
        fulfillment_id: String,
    },
    /// Units cancelled, with the reason (`OUT_OF_STOCK`, `CUSTOMER_REQUEST`, …) and their value.
    Cancelled {
        lines: Vec<LineQty>,
        reason: String,
        amount: Money,
    },
    Refunded {
        amount: Money,
    },
}

impl OrderUpdateKind {
    /// The message's name as the schema spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderUpdateKind::OrderReceived => "ORDER_RECEIVED",
            OrderUpdateKind::Confirmed { .. } => "CONFIRMED",
            OrderUpdateKind::Shipped { .. } => "SHIPPED",
            OrderUpdateKind::ReadyForPickup { .. } => "READY_FOR_PICKUP",
            OrderUpdateKind::PickedUp { .. } => "PICKED_UP",
            OrderUpdateKind::Delivered { .. } => "DELIVERED",
            OrderUpdateKind::Cancelled { .. } => "CANCELLED",
            OrderUpdateKind::Refunded { .. } => "REFUNDED",
        }
    }
}

/// A post-purchase message about one order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderUpdate {
    pub order_id: Uuid,
    /// The order's customer, so a subscription can check the owner without a lookup.
    pub customer_id: Option<String>,
    pub kind: OrderUpdateKind,
    pub occurred_at: DateTime<Utc>,
    /// Position of the event it was derived from.
    pub position: Position,
}

/// Everything the view knows about one order (an owned copy).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    pub placed_by: String,
    pub channel: Channel,
    pub placed_at: DateTime<Utc>,
    /// [`Order::status`] of the folded order.
    pub status: OrderStatus,
    /// The order folded with the domain's own `apply`: lines, allocations, payment, steps.
    pub order: Order,
    /// Its fulfillment orders, in the order they were created.
    pub fulfillments: Vec<FulfillmentOrderView>,
    /// Every event of the order and its fulfillment orders, in position order.
    pub timeline: Vec<TimelineEntry>,
    /// The post-purchase messages so far, in position order.
    pub updates: Vec<OrderUpdate>,
    /// Position of the last event applied to the record.
    pub position: Position,
    pub updated_at: DateTime<Utc>,
}

impl OrderRecord {
    /// The listing cursor of this order.
    pub fn cursor(&self) -> OrderCursor {
        (self.placed_at, self.order_id)
    }

    /// The order's header as placement recorded it.
    pub fn header(&self) -> Option<&OrderHeader> {
        self.order.header.as_ref()
    }

    /// Payment amounts (`None` before the authorization is recorded).
    pub fn payment(&self) -> Option<PaymentSummary> {
        let p = self.order.payment.as_ref()?;
        Some(PaymentSummary {
            payment_id: p.payment_id,
            provider: p.provider.clone(),
            authorized: p.authorized,
            captured: p.captured,
            refunded: p.refunded,
            voided: p.voided.then_some(p.authorized),
        })
    }

    pub fn fulfillment(&self, fulfillment_id: Uuid) -> Option<&FulfillmentOrderView> {
        self.fulfillments
            .iter()
            .find(|f| f.fulfillment_id == fulfillment_id)
    }

    /// Every line with its own status, locations, fulfillment orders and tracking.
    pub fn lines(&self) -> Vec<LineView> {
        self.order
            .lines
            .iter()
            .map(|line| LineView {
                line_id: line.line_id.clone(),
                sku: line.sku.clone(),
                title: line.title.clone(),
                qty: line.qty,
                unit_price: line.unit_price,
                delivery: line.delivery.clone(),
                status: self.line_status(line),
                cancelled: line.cancelled,
                shipped: line.shipped,
                ready: line.ready,
                picked_up: line.picked_up,
                delivered: line.delivered,
                short_picked: line.short_picked_total(),
                locations: line
                    .allocated_by_location()
                    .into_iter()
                    .map(|(l, q)| (l.to_owned(), q))
                    .collect(),
                fulfillment_ids: self
                    .fulfillments
                    .iter()
                    .filter(|f| f.lines.iter().any(|l| l.line_id == line.line_id))
                    .map(|f| f.fulfillment_id)
                    .collect(),
                tracking: self.tracking_of(&line.line_id),
            })
            .collect()
    }

    /// The line's status by the order's own rules: an order of this line alone. The header is
    /// copied without the sourcing explanations, which `status` does not read.
    fn line_status(&self, line: &LineState) -> OrderStatus {
        let Some(h) = &self.order.header else {
            return self.status;
        };
        let alone = Order {
            header: Some(OrderHeader {
                order_id: h.order_id,
                customer_id: None,
                placed_by: String::new(),
                channel: h.channel.clone(),
                currency: h.currency,
                total: h.total,
                cancelled_amount: h.cancelled_amount,
                idempotency_key: String::new(),
                request_fingerprint: String::new(),
                placed_at: h.placed_at,
                sourcing: Vec::new(),
                credit: h.credit.clone(),
            }),
            lines: vec![line.clone()],
            payment: None,
            fulfillments: BTreeMap::new(),
            cancel_operations: BTreeMap::new(),
        };
        alone.status().unwrap_or(self.status)
    }

    /// Shipments of the order that carried the line, then fulfillment orders with tracking
    /// that carry it (when the order has not recorded their shipment yet).
    fn tracking_of(&self, line_id: &str) -> Vec<Tracking> {
        let mut out: Vec<Tracking> = self
            .order
            .fulfillments
            .iter()
            .filter(|((step, _), f)| {
                *step == OrderFulfillmentStep::Shipment
                    && f.lines.iter().any(|q| q.line_id == line_id)
            })
            .filter_map(|((_, id), f)| {
                Some(Tracking {
                    fulfillment_id: id.clone(),
                    carrier: f.carrier.clone()?,
                    tracking_number: f.tracking.clone(),
                })
            })
            .collect();
        for f in &self.fulfillments {
            let id = f.fulfillment_id.to_string();
            let (Some(carrier), Some(number)) = (&f.carrier, &f.tracking_number) else {
                continue;
            };
            if f.lines.iter().any(|l| l.line_id == line_id)
                && !out.iter().any(|t| t.fulfillment_id == id)
            {
                out.push(Tracking {
                    fulfillment_id: id,
                    carrier: carrier.clone(),
                    tracking_number: Some(number.clone()),
                });
            }
        }
        out
    }
}

/// The order status read model (projection `order-status-view`, categories `order` and
/// `fulfillment`). Share it in an `Arc`; every read returns owned values.
pub struct OrderStatusView {
    state: RwLock<State>,
    updates: broadcast::Sender<OrderUpdate>,
}

/// One order with what the view needs besides the public record.
struct Entry {
    record: OrderRecord,
    /// Last revision of the order stream applied: a redelivered event is ignored.
    order_revision: Option<u64>,
    /// Last revision applied per fulfillment stream.
    fulfillment_revisions: HashMap<Uuid, u64>,
    /// Messages already sent, by `step:key` (see the module docs on duplicates).
    announced: HashSet<String>,
}

/// The maps that grow with every order are B-trees of boxed records: a hash map doubles by
/// moving every record at once, which held the view's lock (and stalled a Tokio worker) for
/// 200 ms at 115,000 orders in the orders benchmark; a B-tree grows a node at a time.
#[derive(Default)]
struct State {
    orders: BTreeMap<Uuid, Box<Entry>>,
    /// Fulfillment id → order id, from `FulfillmentCreated`.
    fulfillment_orders: BTreeMap<Uuid, Uuid>,
    by_customer: HashMap<String, BTreeSet<OrderCursor>>,
    all: BTreeSet<OrderCursor>,
}

// ---------------------------------------------------------------------------------------------
// Fulfillment events by their stored JSON shape (only the fields this view reads).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FCreated {
    order_id: Uuid,
    location: String,
    kind: FulfillmentType,
    #[serde(default)]
    destination_store: Option<String>,
    lines: Vec<FCreatedLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FCreatedLine {
    line_id: String,
    sku: String,
    qty: i64,
    #[serde(default)]
    picked: i64,
    #[serde(default)]
    short: i64,
    #[serde(default)]
    cancelled: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FPicked {
    lines: Vec<FPickedLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FPickedLine {
    line_id: String,
    picked: i64,
    short: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FPacked {
    #[serde(default)]
    packages: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FShipped {
    carrier: String,
    tracking_number: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FReady {
    pickup_code: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FCancelled {
    lines: Vec<FCancelledLine>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FCancelledLine {
    line_id: String,
    qty: i64,
}

/// A fulfillment event this view understands.
enum FulfillmentFact {
    Created(FCreated),
    Picked(FPicked),
    Packed(FPacked),
    Shipped(FShipped),
    Delivered,
    Ready(FReady),
    PickedUp,
    Expired,
    Cancelled(FCancelled),
}

impl FulfillmentFact {
    /// `None` for a type this view does not know; `Some(Err)` for an unreadable payload.
    fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
        fn json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, serde_json::Error> {
            serde_json::from_slice(data)
        }
        Some(match event_type {
            "FulfillmentCreated.v1" => json(data).map(FulfillmentFact::Created),
            "FulfillmentLinesPicked.v1" => json(data).map(FulfillmentFact::Picked),
            "FulfillmentPacked.v1" => json(data).map(FulfillmentFact::Packed),
            "FulfillmentShipped.v1" => json(data).map(FulfillmentFact::Shipped),
            "FulfillmentDelivered.v1" => Ok(FulfillmentFact::Delivered),
            "FulfillmentReadyForPickup.v1" => json(data).map(FulfillmentFact::Ready),
            "FulfillmentPickedUp.v1" => Ok(FulfillmentFact::PickedUp),
            "FulfillmentPickupExpired.v1" => Ok(FulfillmentFact::Expired),
            "FulfillmentLinesCancelled.v1" => json(data).map(FulfillmentFact::Cancelled),
            _ => return None,
        })
    }
}

/// An event of a batch, decoded before the write lock is taken. `None` events are of a type
/// the view does not know: they still belong on the timeline (a newer version of a fact).
enum Decoded<'a> {
    Order {
        order_id: Uuid,
        event: Option<OrderEvent>,
        recorded: &'a RecordedEvent,
    },
    Fulfillment {
        fulfillment_id: Uuid,
        fact: Option<FulfillmentFact>,
        recorded: &'a RecordedEvent,
    },
}

fn decode(recorded: &RecordedEvent) -> Option<Decoded<'_>> {
    let stream: &str = &recorded.stream;
    let skip = |why: &str, error: Option<&serde_json::Error>| {
        tracing::warn!(
            stream,
            event_type = %recorded.event_type,
            position = %recorded.position,
            error = error.map(tracing::field::display),
            "order status view: {why}; event skipped"
        );
    };
    let Some((category, id)) = stream.split_once('-') else {
        tracing::debug!(stream, "order status view: not a stream of its categories");
        return None;
    };
    let is_order = category == crate::CATEGORY;
    if !is_order && category != FULFILLMENT_CATEGORY {
        tracing::debug!(stream, "order status view: not a stream of its categories");
        return None;
    }
    let Ok(id) = Uuid::parse_str(id) else {
        skip("stream id is not a UUID", None);
        return None;
    };
    if is_order {
        let event = match OrderEvent::decode(&recorded.event_type, &recorded.data) {
            Some(Ok(event)) => Some(event),
            Some(Err(e)) => {
                skip("undecodable order event", Some(&e));
                return None;
            }
            None => None,
        };
        Some(Decoded::Order {
            order_id: id,
            event,
            recorded,
        })
    } else {
        let fact = match FulfillmentFact::decode(&recorded.event_type, &recorded.data) {
            Some(Ok(fact)) => Some(fact),
            Some(Err(e)) => {
                skip("undecodable fulfillment event", Some(&e));
                return None;
            }
            None => None,
        };
        Some(Decoded::Fulfillment {
            fulfillment_id: id,
            fact,
            recorded,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Summaries.

fn qty_list(lines: impl IntoIterator<Item = (String, i64)>) -> String {
    let mut out = String::new();
    for (i, (line, qty)) in lines.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{line} ×{qty}");
    }
    out
}

fn line_qtys(lines: &[LineQty]) -> String {
    qty_list(lines.iter().map(|q| (q.line_id.clone(), q.qty)))
}

fn order_summary(event: &OrderEvent) -> String {
    match event {
        OrderEvent::OrderPlaced(e) => {
            let units: i64 = e.lines.iter().map(|l| l.qty).sum();
            let credit = e
                .credit
                .as_ref()
                .map(|c| format!(", credit {} ({})", c.amount, c.source))
                .unwrap_or_default();
            format!(
                "Order placed: {units} unit(s) in {} line(s), total {}{credit}",
                e.lines.len(),
                e.total
            )
        }
        OrderEvent::OrderLinesCancelled(e) => format!(
            "Cancelled {} ({}), {}",
            line_qtys(&e.lines),
            e.reason,
            e.amount
        ),
        OrderEvent::OrderShipped(e) => format!(
            "Shipped from {} by {}{}: {}",
            e.location,
            e.carrier,
            e.tracking
                .as_ref()
                .map(|t| format!(" (tracking {t})"))
                .unwrap_or_default(),
            line_qtys(&e.lines)
        ),
        OrderEvent::OrderReadyForPickup(e) => format!(
            "Ready for pickup at {}: {}",
            e.location,
            line_qtys(&e.lines)
        ),
        OrderEvent::OrderPickedUp(e) => {
            format!("Picked up at {}: {}", e.location, line_qtys(&e.lines))
        }
        OrderEvent::OrderDelivered(e) => format!("Delivered: {}", line_qtys(&e.lines)),
        OrderEvent::LineShortPicked(e) => {
            format!("{} could not pick {} ×{}", e.location, e.line_id, e.qty)
        }
        OrderEvent::LineReassigned(e) => format!(
            "{} ×{} moved from {} to {}",
            e.line_id, e.qty, e.from_location, e.to_location
        ),
        OrderEvent::PaymentAuthorized(e) => {
            format!("Payment of {} authorized ({})", e.amount, e.provider)
        }
        OrderEvent::PaymentCaptured(e) => format!("Payment of {} captured", e.amount),
        OrderEvent::PaymentVoided(e) => format!("Payment authorization of {} voided", e.amount),
        OrderEvent::PaymentRefunded(e) => format!("{} refunded", e.amount),
    }
}

fn fulfillment_summary(fact: &FulfillmentFact, f: &FulfillmentOrderView) -> String {
    match fact {
        FulfillmentFact::Created(c) => format!(
            "Fulfillment order created at {} ({}{}): {}",
            c.location,
            c.kind.as_str(),
            c.destination_store
                .as_ref()
                .map(|s| format!(" to {s}"))
                .unwrap_or_default(),
            qty_list(c.lines.iter().map(|l| (l.line_id.clone(), l.qty)))
        ),
        FulfillmentFact::Picked(p) => {
            let short: Vec<(String, i64)> = p
                .lines
                .iter()
                .filter(|l| l.short > 0)
                .map(|l| (l.line_id.clone(), l.short))
                .collect();
            let picked = qty_list(p.lines.iter().map(|l| (l.line_id.clone(), l.picked)));
            if short.is_empty() {
                format!("Picked at {}: {picked}", f.location)
            } else {
                format!(
                    "Picked at {}: {picked}; short {}",
                    f.location,
                    qty_list(short)
                )
            }
        }
        FulfillmentFact::Packed(p) => {
            format!("Packed at {} ({} package(s))", f.location, p.packages)
        }
        FulfillmentFact::Shipped(s) => format!(
            "Shipped from {} by {} (tracking {})",
            f.location, s.carrier, s.tracking_number
        ),
        FulfillmentFact::Delivered => "Delivered by the carrier".to_owned(),
        FulfillmentFact::Ready(r) => format!(
            "Ready for pickup at {} until {}",
            f.pickup_store().unwrap_or(&f.location),
            r.expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        FulfillmentFact::PickedUp => format!(
            "Collected by the customer at {}",
            f.pickup_store().unwrap_or(&f.location)
        ),
        FulfillmentFact::Expired => format!(
            "Not collected in time at {}: pickup expired",
            f.pickup_store().unwrap_or(&f.location)
        ),
        FulfillmentFact::Cancelled(c) => format!(
            "{} will not fulfil {} ({})",
            f.location,
            qty_list(c.lines.iter().map(|l| (l.line_id.clone(), l.qty))),
            c.reason
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Applying events.

impl Entry {
    fn timeline(&mut self, recorded: &RecordedEvent, source: TimelineSource, summary: String) {
        let entry = TimelineEntry {
            event_type: recorded.event_type.to_string(),
            source,
            occurred_at: recorded.metadata.occurred_at,
            position: recorded.position,
            summary,
            actor: recorded.metadata.actor.clone(),
        };
        let timeline = &mut self.record.timeline;
        // Events arrive in position order; the search only guards against a store that does
        // not deliver them so.
        if timeline
            .last()
            .is_none_or(|last| last.position <= entry.position)
        {
            timeline.push(entry);
        } else {
            let at = timeline.partition_point(|t| t.position <= entry.position);
            timeline.insert(at, entry);
        }
        if self.record.position < recorded.position {
            self.record.position = recorded.position;
            self.record.updated_at = recorded.metadata.occurred_at;
        }
    }

    /// Records a message unless `keys` were all announced before: returns it for the feed.
    fn announce(
        &mut self,
        keys: &[String],
        kind: OrderUpdateKind,
        recorded: &RecordedEvent,
    ) -> Option<OrderUpdate> {
        if keys.iter().any(|k| self.announced.contains(k)) {
            return None;
        }
        self.announced.extend(keys.iter().cloned());
        let update = OrderUpdate {
            order_id: self.record.order_id,
            customer_id: self.record.customer_id.clone(),
            kind,
            occurred_at: recorded.metadata.occurred_at,
            position: recorded.position,
        };
        self.record.updates.push(update.clone());
        Some(update)
    }

    /// Pickup code and expiry of a fulfillment order the view knows by this id's text.
    fn pickup_of(&self, fulfillment_id: &str) -> (Option<String>, Option<DateTime<Utc>>) {
        self.record
            .fulfillments
            .iter()
            .find(|f| f.fulfillment_id.to_string() == fulfillment_id)
            .map_or((None, None), |f| {
                (f.pickup_code.clone(), f.pickup_expires_at)
            })
    }

    fn apply_order(&mut self, event: &OrderEvent, recorded: &RecordedEvent) -> Vec<OrderUpdate> {
        self.record.order.apply(event);
        if let Some(status) = self.record.order.status() {
            self.record.status = status;
        }
        self.timeline(recorded, TimelineSource::Order, order_summary(event));
        let mut out = Vec::new();
        let mut announce = |entry: &mut Entry, keys: Vec<String>, kind| {
            out.extend(entry.announce(&keys, kind, recorded));
        };
        match event {
            OrderEvent::OrderPlaced(_) => announce(
                self,
                vec!["received".into()],
                OrderUpdateKind::OrderReceived,
            ),
            OrderEvent::PaymentAuthorized(e) => announce(
                self,
                vec![format!("confirmed:{}", e.payment_id)],
                OrderUpdateKind::Confirmed { amount: e.amount },
            ),
            OrderEvent::OrderShipped(e) => {
                let mut keys = vec![format!("shipped:{}", e.fulfillment_id)];
                if let Some(t) = &e.tracking {
                    keys.push(format!("tracking:{}:{t}", e.carrier));
                }
                announce(
                    self,
                    keys,
                    OrderUpdateKind::Shipped {
                        fulfillment_id: e.fulfillment_id.clone(),
                        location: e.location.clone(),
                        carrier: e.carrier.clone(),
                        tracking: e.tracking.clone(),
                    },
                )
            }
            OrderEvent::OrderReadyForPickup(e) => {
                let (pickup_code, expires_at) = self.pickup_of(&e.fulfillment_id);
                announce(
                    self,
                    vec![format!("ready:{}", e.fulfillment_id)],
                    OrderUpdateKind::ReadyForPickup {
                        fulfillment_id: e.fulfillment_id.clone(),
                        store: e.location.clone(),
                        pickup_code,
                        expires_at,
                    },
                )
            }
            OrderEvent::OrderPickedUp(e) => announce(
                self,
                vec![format!("pickedup:{}", e.fulfillment_id)],
                OrderUpdateKind::PickedUp {
                    fulfillment_id: e.fulfillment_id.clone(),
                    store: e.location.clone(),
                },
            ),
            OrderEvent::OrderDelivered(e) => announce(
                self,
                vec![format!("delivered:{}", e.fulfillment_id)],
                OrderUpdateKind::Delivered {
                    fulfillment_id: e.fulfillment_id.clone(),
                },
            ),
            OrderEvent::OrderLinesCancelled(e) => announce(
                self,
                // Every cancellation is its own message.
                vec![format!("cancelled:{}", recorded.position)],
                OrderUpdateKind::Cancelled {
                    lines: e.lines.clone(),
                    reason: e.reason.clone(),
                    amount: e.amount,
                },
            ),
            OrderEvent::PaymentRefunded(e) => announce(
                self,
                vec![format!("refunded:{}", e.reference)],
                OrderUpdateKind::Refunded { amount: e.amount },
            ),
            OrderEvent::LineShortPicked(_)
            | OrderEvent::LineReassigned(_)
            | OrderEvent::PaymentCaptured(_)
            | OrderEvent::PaymentVoided(_) => {}
        }
        // An exchange credit that pays for everything means no `PaymentAuthorized` will come:
        // the placement itself confirms the order (after its out-of-stock cancellation, if
        // any, which is what can bring the rest to zero). Once, by key.
        if matches!(
            event,
            OrderEvent::OrderPlaced(_) | OrderEvent::OrderLinesCancelled(_)
        ) {
            let order = &self.record.order;
            let covered = order.credit().is_some()
                && order.payment.is_none()
                && order.payable().is_some_and(|p| p.amount.is_zero());
            if let (true, Some(h)) = (covered, &order.header) {
                let amount = Money::zero(h.currency);
                announce(
                    self,
                    vec!["confirmed:credit".into()],
                    OrderUpdateKind::Confirmed { amount },
                );
            }
        }
        out
    }

    /// Applies a fulfillment event to the fulfillment order `id` of this order.
    fn apply_fulfillment(
        &mut self,
        id: Uuid,
        fact: &FulfillmentFact,
        recorded: &RecordedEvent,
    ) -> Vec<OrderUpdate> {
        let at = recorded.metadata.occurred_at;
        if let FulfillmentFact::Created(c) = fact {
            if self.record.fulfillment(id).is_none() {
                self.record.fulfillments.push(FulfillmentOrderView {
                    fulfillment_id: id,
                    location: c.location.clone(),
                    kind: c.kind,
                    destination_store: c.destination_store.clone(),
                    status: FulfillmentProgress::Open,
                    lines: c
                        .lines
                        .iter()
                        .map(|l| FulfillmentLineView {
                            line_id: l.line_id.clone(),
                            sku: l.sku.clone(),
                            qty: l.qty,
                            picked: l.picked,
                            short: l.short,
                            cancelled: l.cancelled,
                        })
                        .collect(),
                    carrier: None,
                    tracking_number: None,
                    pickup_code: None,
                    pickup_expires_at: None,
                    created_at: at,
                    updated_at: at,
                });
            }
        }
        let Some(f) = self
            .record
            .fulfillments
            .iter_mut()
            .find(|f| f.fulfillment_id == id)
        else {
            return Vec::new();
        };
        f.updated_at = at;
        match fact {
            FulfillmentFact::Created(_) => {}
            FulfillmentFact::Picked(p) => {
                for picked in &p.lines {
                    if let Some(line) = f.lines.iter_mut().find(|l| l.line_id == picked.line_id) {
                        line.picked = line.picked.saturating_add(picked.picked);
                        line.short = line.short.saturating_add(picked.short);
                        line.qty = line.qty.saturating_sub(picked.short);
                    }
                }
                f.status = if f.remaining() == 0 {
                    FulfillmentProgress::Cancelled
                } else {
                    FulfillmentProgress::Picked
                };
            }
            FulfillmentFact::Packed(_) => f.status = FulfillmentProgress::Packed,
            FulfillmentFact::Shipped(s) => {
                f.status = FulfillmentProgress::Shipped;
                f.carrier = Some(s.carrier.clone());
                f.tracking_number = Some(s.tracking_number.clone());
            }
            FulfillmentFact::Delivered => f.status = FulfillmentProgress::Delivered,
            FulfillmentFact::Ready(r) => {
                f.status = FulfillmentProgress::ReadyForPickup;
                f.pickup_code = Some(r.pickup_code.clone());
                f.pickup_expires_at = Some(r.expires_at);
            }
            FulfillmentFact::PickedUp => f.status = FulfillmentProgress::PickedUp,
            FulfillmentFact::Expired => f.status = FulfillmentProgress::Expired,
            FulfillmentFact::Cancelled(c) => {
                for cancelled in &c.lines {
                    if let Some(line) = f.lines.iter_mut().find(|l| l.line_id == cancelled.line_id)
                    {
                        line.cancelled = line.cancelled.saturating_add(cancelled.qty);
                        line.qty = line.qty.saturating_sub(cancelled.qty);
                        line.picked = line.picked.min(line.qty);
                    }
                }
                if f.remaining() == 0 {
                    f.status = FulfillmentProgress::Cancelled;
                }
            }
        }
        let view = f.clone();
        self.timeline(
            recorded,
            TimelineSource::Fulfillment(id),
            fulfillment_summary(fact, &view),
        );
        let key = id.to_string();
        let store = view.pickup_store().unwrap_or(&view.location).to_owned();
        let (keys, kind) = match fact {
            FulfillmentFact::Shipped(s) => (
                vec![
                    format!("shipped:{key}"),
                    format!("tracking:{}:{}", s.carrier, s.tracking_number),
                ],
                OrderUpdateKind::Shipped {
                    fulfillment_id: key.clone(),
                    location: view.location.clone(),
                    carrier: s.carrier.clone(),
                    tracking: Some(s.tracking_number.clone()),
                },
            ),
            FulfillmentFact::Ready(r) => (
                vec![format!("ready:{key}")],
                OrderUpdateKind::ReadyForPickup {
                    fulfillment_id: key.clone(),
                    store,
                    pickup_code: Some(r.pickup_code.clone()),
                    expires_at: Some(r.expires_at),
                },
            ),
            FulfillmentFact::PickedUp => (
                vec![format!("pickedup:{key}")],
                OrderUpdateKind::PickedUp {
                    fulfillment_id: key.clone(),
                    store,
                },
            ),
            FulfillmentFact::Delivered => (
                vec![format!("delivered:{key}")],
                OrderUpdateKind::Delivered {
                    fulfillment_id: key.clone(),
                },
            ),
            // Expiry and cancellation reach the customer as the order's own cancellation.
            FulfillmentFact::Created(_)
            | FulfillmentFact::Picked(_)
            | FulfillmentFact::Packed(_)
            | FulfillmentFact::Expired
            | FulfillmentFact::Cancelled(_) => return Vec::new(),
        };
        self.announce(&keys, kind, recorded).into_iter().collect()
    }
}

impl State {
    fn apply(&mut self, decoded: Decoded<'_>, out: &mut Vec<OrderUpdate>) {
        match decoded {
            Decoded::Order {
                order_id,
                event,
                recorded,
            } => self.apply_order(order_id, event.as_ref(), recorded, out),
            Decoded::Fulfillment {
                fulfillment_id,
                fact,
                recorded,
            } => self.apply_fulfillment(fulfillment_id, fact.as_ref(), recorded, out),
        }
    }

    fn apply_order(
        &mut self,
        order_id: Uuid,
        event: Option<&OrderEvent>,
        recorded: &RecordedEvent,
        out: &mut Vec<OrderUpdate>,
    ) {
        if let (Some(OrderEvent::OrderPlaced(p)), false) =
            (event, self.orders.contains_key(&order_id))
        {
            let cursor = (p.placed_at, order_id);
            self.all.insert(cursor);
            if let Some(customer) = &p.customer_id {
                self.by_customer
                    .entry(customer.clone())
                    .or_default()
                    .insert(cursor);
            }
            self.orders.insert(
                order_id,
                Box::new(Entry {
                    record: OrderRecord {
                        order_id,
                        customer_id: p.customer_id.clone(),
                        placed_by: p.placed_by.clone(),
                        channel: p.channel.clone(),
                        placed_at: p.placed_at,
                        status: OrderStatus::Placed,
                        order: Order::default(),
                        fulfillments: Vec::new(),
                        timeline: Vec::new(),
                        updates: Vec::new(),
                        position: recorded.position,
                        updated_at: recorded.metadata.occurred_at,
                    },
                    order_revision: None,
                    fulfillment_revisions: HashMap::new(),
                    announced: HashSet::new(),
                }),
            );
        }
        let Some(entry) = self.orders.get_mut(&order_id) else {
            tracing::warn!(
                stream = %recorded.stream,
                event_type = %recorded.event_type,
                position = %recorded.position,
                "order status view: event of an order never placed; skipped"
            );
            return;
        };
        if entry.order_revision.is_some_and(|r| recorded.revision <= r) {
            return;
        }
        entry.order_revision = Some(recorded.revision);
        match event {
            Some(event) => out.extend(entry.apply_order(event, recorded)),
            None => {
                tracing::debug!(
                    event_type = %recorded.event_type,
                    "order status view: unknown order event type; on the timeline only"
                );
                let summary = recorded.event_name().to_owned();
                entry.timeline(recorded, TimelineSource::Order, summary);
            }
        }
    }

    fn apply_fulfillment(
        &mut self,
        fulfillment_id: Uuid,
        fact: Option<&FulfillmentFact>,
        recorded: &RecordedEvent,
        out: &mut Vec<OrderUpdate>,
    ) {
        let order_id = match (fact, self.fulfillment_orders.get(&fulfillment_id)) {
            (_, Some(order_id)) => *order_id,
            (Some(FulfillmentFact::Created(c)), None) => {
                if !self.orders.contains_key(&c.order_id) {
                    tracing::debug!(
                        %fulfillment_id,
                        order_id = %c.order_id,
                        "order status view: fulfillment order of an unknown order; skipped"
                    );
                    return;
                }
                self.fulfillment_orders.insert(fulfillment_id, c.order_id);
                c.order_id
            }
            (_, None) => {
                tracing::debug!(
                    %fulfillment_id,
                    event_type = %recorded.event_type,
                    "order status view: event of an unknown fulfillment order; skipped"
                );
                return;
            }
        };
        let Some(entry) = self.orders.get_mut(&order_id) else {
            return;
        };
        let last = entry.fulfillment_revisions.get(&fulfillment_id).copied();
        if last.is_some_and(|r| recorded.revision <= r) {
            return;
        }
        entry
            .fulfillment_revisions
            .insert(fulfillment_id, recorded.revision);
        match fact {
            Some(fact) => out.extend(entry.apply_fulfillment(fulfillment_id, fact, recorded)),
            None => {
                tracing::debug!(
                    event_type = %recorded.event_type,
                    "order status view: unknown fulfillment event type; on the timeline only"
                );
                let summary = recorded.event_name().to_owned();
                entry.timeline(
                    recorded,
                    TimelineSource::Fulfillment(fulfillment_id),
                    summary,
                );
            }
        }
    }

    /// Up to `first` orders of `index`, newest first, strictly before `after`.
    fn page(
        &self,
        index: Option<&BTreeSet<OrderCursor>>,
        after: Option<OrderCursor>,
        first: usize,
    ) -> (Vec<OrderRecord>, bool) {
        let Some(index) = index else {
            return (Vec::new(), false);
        };
        let upper = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut newest_first = index.range((Bound::Unbounded, upper)).rev();
        let page = newest_first
            .by_ref()
            .take(first)
            .filter_map(|(_, id)| self.orders.get(id).map(|e| e.record.clone()))
            .collect();
        (page, newest_first.next().is_some())
    }
}

impl Default for OrderStatusView {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderStatusView {
    pub fn new() -> Self {
        let (updates, _) = broadcast::channel(UPDATE_FEED_CAPACITY);
        OrderStatusView {
            state: RwLock::new(State::default()),
            updates,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// One order, with its fulfillment orders, timeline and messages.
    pub fn get(&self, order_id: Uuid) -> Option<OrderRecord> {
        self.read().orders.get(&order_id).map(|e| e.record.clone())
    }

    /// A customer's orders, newest first, strictly after the cursor `after` (an earlier page's
    /// last [`OrderRecord::cursor`]); and whether more follow.
    pub fn by_customer(
        &self,
        customer_id: &str,
        after: Option<OrderCursor>,
        first: usize,
    ) -> (Vec<OrderRecord>, bool) {
        let s = self.read();
        s.page(s.by_customer.get(customer_id), after, first)
    }

    /// Every order, newest first (customer service), paged like [`Self::by_customer`].
    pub fn all(&self, after: Option<OrderCursor>, first: usize) -> (Vec<OrderRecord>, bool) {
        let s = self.read();
        s.page(Some(&s.all), after, first)
    }

    /// The post-purchase messages of one order so far (empty for an unknown order).
    pub fn updates(&self, order_id: Uuid) -> Vec<OrderUpdate> {
        self.read()
            .orders
            .get(&order_id)
            .map(|e| e.record.updates.clone())
            .unwrap_or_default()
    }

    /// Every post-purchase message from now on, for every order: the subscription filters by
    /// order and checks the caller. A receiver more than [`UPDATE_FEED_CAPACITY`] behind gets
    /// `Lagged` (and can re-read [`Self::updates`]).
    pub fn subscribe(&self) -> broadcast::Receiver<OrderUpdate> {
        self.updates.subscribe()
    }

    /// The order a fulfillment order works for, once its creation was applied.
    pub fn order_of_fulfillment(&self, fulfillment_id: Uuid) -> Option<Uuid> {
        self.read().fulfillment_orders.get(&fulfillment_id).copied()
    }

    /// How many orders the view holds.
    pub fn len(&self) -> usize {
        self.read().orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().orders.is_empty()
    }
}

impl Projection for OrderStatusView {
    fn name(&self) -> &'static str {
        "order-status-view"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY, FULFILLMENT_CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let decoded: Vec<Decoded<'_>> = events.iter().filter_map(decode).collect();
        if decoded.is_empty() {
            return;
        }
        let mut published = Vec::new();
        {
            let mut s = self.write();
            for d in decoded {
                s.apply(d, &mut published);
            }
        }
        // Sent after the lock is released; skipped when nobody listens (a replay).
        if self.updates.receiver_count() > 0 {
            for update in published {
                let _ = self.updates.send(update);
            }
        }
    }
}
