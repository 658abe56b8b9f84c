//! The reactions between order, fulfillment, inventory and payment.
//!
//! One process follows two categories from a stored checkpoint
//! (`checkpoint-order-fulfillment-reactions`):
//!
//! **Fulfillment events → order commands** (read by their JSON shape: the order crate does not
//! depend on the fulfillment crate). The fulfillment stream is folded up to the event to know
//! its order, location, kind and what is left of each line.
//!
//! | fulfillment event | order command |
//! |---|---|
//! | `FulfillmentShipped` | `MarkShipped` (the lines left to fulfil) |
//! | `FulfillmentReadyForPickup` (PICKUP) | `MarkReadyForPickup` |
//! | `FulfillmentPickedUp` (PICKUP) | `MarkPickedUp` |
//! | `FulfillmentDelivered`, `FulfillmentPickedUp` (SHIP_TO_STORE) | `MarkDelivered` |
//! | `FulfillmentPickupExpired` | `Cancel` the units still held at the store (`PICKUP_EXPIRED`) |
//! | `FulfillmentLinesPicked` with short units | `MarkShortPicked`, the discrepancy recorded in inventory, then `ReassignLine` to locations that reserved the units, else `Cancel` (`OUT_OF_STOCK`) |
//! | `FulfillmentLinesCancelled` of an order cancellation (with an `operation`) | `CancelConfirmed` of those units, if the cancel handler did not record them (it stopped between its two appends) |
//!
//! **Order events → side effects**, so that every side effect follows from a recorded fact
//! whoever caused it (this process, a customer's cancel, staff):
//!
//! | order event | side effects |
//! |---|---|
//! | `OrderShipped`, `OrderPickedUp` | consume the reservations; capture the units' value |
//! | `OrderLinesCancelled` | release; void or refund |
//! | `LineShortPicked` | release |
//! | `LineReassigned` | confirm the new reservation; release and cancel at the old location |
//!
//! **Idempotency.** Events between the last checkpoint and a crash are handled again, and a
//! replay from the start handles everything again; nothing may happen twice:
//!
//! - order commands `MarkShipped` / `MarkReadyForPickup` / `MarkPickedUp` / `MarkDelivered`
//!   are no-ops when repeated with the same fulfillment id and lines; `ReassignLine` is keyed by
//!   its new reservation id, derived from the fulfillment and line; the expiry and out-of-stock
//!   `Cancel`s take only what is still held at (or waiting for) the location, which is nothing
//!   once done; `MarkShortPicked` is skipped when the order stream already has a
//!   `LineShortPicked` of that line caused by the same fulfillment event;
//! - inventory: consumption is by cumulative totals (`ConsumeUpTo`); a reservation is released
//!   only once the order holds none of its units (release is idempotent, and a partial release
//!   would free units still promised: the port releases whole reservations); confirmations are
//!   idempotent; the short-pick adjustment is keyed by its reference;
//! - payment: a capture's provider operation is keyed by the fulfillment step, and skipped when
//!   the order stream already has a `PaymentCaptured` caused by the same order event; a refund's
//!   operation is keyed by the refunded total it brings the order to, and recorded on the
//!   order, so a retry is recognised before the provider is asked; a void is idempotent. The
//!   provider answers a repeated operation with its first reference, which the order then
//!   recognises as recorded.
//! - fulfillment: nothing is sent. A cancellation of units a location holds is decided by
//!   its fulfillment order before the order records it ([`crate::handlers::cancel`]); every
//!   other cancellation follows from the fulfillment order having stopped already (an expired
//!   pickup, a short pick).
//!
//! A refusal by a domain (an event that no longer fits the order) is logged and the event is
//! skipped; anything else (store, unreachable service) stops the run, which restarts from the
//! checkpoint after a pause.

use crate::domain::order::{
    self, LineQty, LineState, Order, OrderCommand, OrderEvent, OrderStatus, OUT_OF_STOCK,
};
use crate::domain::sourcing::{self, SourcingLine};
use crate::handlers::order::{OrderHandlers, PlaceError, RefundError, HOLD};
use crate::payment::{PaymentError, ProviderReference};
use crate::ports::{FulfillmentPortError, InventoryPortError, ReservationRef, ReservationRequest};
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::checkpoint::Follower;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Actor, Metadata, RecordedEvent};
use ichigen_shared::money::Money;
use ichigen_shared::store::{read_whole_stream, DynEventStore, StoreError, SubscriptionFilter};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The process's name (its checkpoint stream is `checkpoint-order-fulfillment-reactions`).
pub const NAME: &str = "order-fulfillment-reactions";
/// Why units of a pickup that was not collected were cancelled.
pub const PICKUP_EXPIRED: &str = "PICKUP_EXPIRED";

#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    #[error("event at {position} is unreadable: {detail}")]
    Unreadable { position: String, detail: String },
    #[error(transparent)]
    Order(#[from] PlaceError),
    #[error(transparent)]
    Inventory(#[from] InventoryPortError),
    #[error("payment: {0}")]
    Payment(#[from] PaymentError),
    #[error("refund: {0}")]
    Refund(#[from] RefundError),
    #[error(transparent)]
    Fulfillment(#[from] FulfillmentPortError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fold(#[from] FoldError),
}

impl ReactionError {
    /// Whether handling the event again may succeed (an outage) rather than be refused again
    /// (a rule of a domain): the run stops and retries the former, skips the latter.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReactionError::Unreadable { .. } => false,
            ReactionError::Order(e) => matches!(
                e,
                PlaceError::Store(_)
                    | PlaceError::Fold(_)
                    | PlaceError::Inventory(InventoryPortError::Unavailable(_))
                    | PlaceError::Payment(PaymentError::Unavailable { .. })
            ),
            ReactionError::Inventory(e) => matches!(e, InventoryPortError::Unavailable(_)),
            ReactionError::Payment(e) => matches!(e, PaymentError::Unavailable { .. }),
            ReactionError::Refund(e) => e.is_retryable(),
            ReactionError::Fulfillment(_) | ReactionError::Store(_) | ReactionError::Fold(_) => {
                true
            }
        }
    }
}

// ---- fulfillment events by their JSON shape ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedShape {
    order_id: Uuid,
    location: String,
    kind: String,
    lines: Vec<CreatedLineShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedLineShape {
    line_id: String,
    sku: String,
    qty: i64,
    reservation_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PickedShape {
    lines: Vec<PickedLineShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PickedLineShape {
    line_id: String,
    short: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelledShape {
    lines: Vec<LineQty>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    operation: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippedShape {
    carrier: String,
    tracking_number: String,
}

/// A fulfillment order as this process needs it, folded up to one event.
struct FulfillmentShape {
    id: Uuid,
    order_id: Uuid,
    location: String,
    kind: String,
    /// line id → (sku, units left to fulfil).
    lines: BTreeMap<String, (String, i64)>,
    /// line id → the reservation holding its units here.
    reservations: BTreeMap<String, String>,
}

impl FulfillmentShape {
    /// The lines with units left, as order commands name them.
    fn lines_left(&self) -> Vec<LineQty> {
        self.lines
            .iter()
            .filter(|(_, (_, qty))| *qty > 0)
            .map(|(id, (_, qty))| LineQty::new(id.clone(), *qty))
            .collect()
    }
}

/// The event types the reactions handle ([`FulfillmentReactions::handle`]). The subscription
/// takes only these: every placement's `OrderPlaced` and `PaymentAuthorized` (the bulk of the
/// order category) would otherwise be delivered, decoded and ignored.
const REACTS_TO: [&str; 12] = [
    "FulfillmentShipped.",
    "FulfillmentLinesCancelled.",
    "FulfillmentReadyForPickup.",
    "FulfillmentPickedUp.",
    "FulfillmentDelivered.",
    "FulfillmentPickupExpired.",
    "FulfillmentLinesPicked.",
    "OrderShipped.",
    "OrderPickedUp.",
    "OrderLinesCancelled.",
    "LineShortPicked.",
    "LineReassigned.",
];

/// Follows fulfillment and order events and applies their consequences (module docs).
#[derive(Clone)]
pub struct FulfillmentReactions {
    store: DynEventStore,
    orders: OrderHandlers,
    clock: Arc<dyn Clock>,
    checkpoint: String,
}

impl FulfillmentReactions {
    pub fn new(store: DynEventStore, orders: OrderHandlers, clock: Arc<dyn Clock>) -> Self {
        FulfillmentReactions {
            store,
            orders,
            clock,
            checkpoint: NAME.to_owned(),
        }
    }

    /// The same process under another checkpoint name: a fresh name replays the whole history
    /// (what a lost checkpoint does; tests use it to prove that a replay changes nothing).
    pub fn with_checkpoint(mut self, name: impl Into<String>) -> Self {
        self.checkpoint = name.into();
        self
    }

    /// Follows the store from the checkpoint until the runtime stops; restarts after a pause
    /// when an event cannot be handled for now (skipping it would lose a reaction).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run(None).await {
                    tracing::warn!(error = %e, "order fulfillment reactions stopped; restarting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    /// Handles events from the checkpoint until none arrives for `idle` (including the events
    /// its own commands cause); returns how many it handled. For tests and tools.
    pub async fn run_until_idle(&self, idle: Duration) -> Result<usize, ReactionError> {
        self.run(Some(idle)).await
    }

    async fn run(&self, idle: Option<Duration>) -> Result<usize, ReactionError> {
        let filter = SubscriptionFilter::event_types(REACTS_TO);
        Follower::start(self.store.clone(), &self.checkpoint, filter)
            .await?
            .run(
                idle,
                |event| async move { self.handle(&event).await },
                ReactionError::is_retryable,
                |position, event_type, e| {
                    tracing::warn!(
                        %position,
                        event_type,
                        error = %e,
                        "reaction refused; event skipped"
                    )
                },
            )
            .await
    }

    /// Reacts to one event (any other event is ignored).
    pub async fn handle(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let name = event.event_name();
        tracing::debug!(event_type = %event.event_type, position = %event.position, "reacting");
        match event.category() {
            "fulfillment" => match name {
                "FulfillmentShipped" => self.on_shipped(event).await,
                "FulfillmentReadyForPickup" => self.on_ready(event).await,
                "FulfillmentPickedUp" => self.on_picked_up(event).await,
                "FulfillmentDelivered" => self.on_delivered(event).await,
                "FulfillmentPickupExpired" => self.on_pickup_expired(event).await,
                "FulfillmentLinesPicked" => self.on_lines_picked(event).await,
                "FulfillmentLinesCancelled" => self.on_fulfillment_cancelled(event).await,
                _ => Ok(()),
            },
            c if c == crate::CATEGORY => {
                let Some(Ok(decoded)) = OrderEvent::decode(&event.event_type, &event.data) else {
                    return Ok(());
                };
                let order_id = order_id_of(event)?;
                match decoded {
                    // A placement's holds carry no expiry: nothing to confirm.
                    OrderEvent::OrderPlaced(_) => Ok(()),
                    OrderEvent::OrderShipped(e) => {
                        let ids = e.consumed.iter().map(|u| u.reservation_id.clone());
                        self.on_fulfilled(order_id, event, "ship", &e.fulfillment_id, &e.lines, ids)
                            .await
                    }
                    OrderEvent::OrderPickedUp(e) => {
                        let ids = e.consumed.iter().map(|u| u.reservation_id.clone());
                        self.on_fulfilled(
                            order_id,
                            event,
                            "pickup",
                            &e.fulfillment_id,
                            &e.lines,
                            ids,
                        )
                        .await
                    }
                    OrderEvent::OrderLinesCancelled(e) => {
                        let ids: BTreeSet<String> = e
                            .reservations_to_release
                            .iter()
                            .map(|r| r.reservation_id.clone())
                            .collect();
                        self.on_released(order_id, event, &ids).await?;
                        self.settle_payment(order_id, event).await
                    }
                    OrderEvent::LineShortPicked(e) => {
                        let ids = e
                            .reservations_to_release
                            .iter()
                            .map(|r| r.reservation_id.clone())
                            .collect();
                        let (order, _) = self.orders.load(order_id).await?;
                        self.sync_reservations(&order, &ids, self.metadata(event))
                            .await
                    }
                    OrderEvent::LineReassigned(e) => {
                        let (order, _) = self.orders.load(order_id).await?;
                        if let Some(line) = order.line(&e.line_id) {
                            let new = ReservationRef {
                                reservation_id: e.new_reservation_id.clone(),
                                sku: line.sku.clone(),
                                location: e.to_location.clone(),
                            };
                            self.tolerate(
                                self.orders
                                    .inventory()
                                    .confirm(&[new], self.metadata(event))
                                    .await,
                            )?;
                        }
                        let ids = e
                            .reservations_to_release
                            .iter()
                            .map(|r| r.reservation_id.clone())
                            .collect();
                        self.on_released(order_id, event, &ids).await
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    // ---- fulfillment → order ----

    async fn on_shipped(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let f = self.fulfillment_at(event).await?;
        let shipped: ShippedShape = decode(event)?;
        let lines = f.lines_left();
        if lines.is_empty() {
            return Ok(());
        }
        let command = OrderCommand::MarkShipped {
            fulfillment_id: f.id.to_string(),
            location: f.location.clone(),
            lines,
            carrier: shipped.carrier,
            tracking: Some(shipped.tracking_number),
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    async fn on_ready(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let f = self.fulfillment_at(event).await?;
        // SHIP_TO_STORE units were shipped already; their arrival is no order step.
        if f.kind != "PICKUP" || f.lines_left().is_empty() {
            return Ok(());
        }
        let command = OrderCommand::MarkReadyForPickup {
            fulfillment_id: f.id.to_string(),
            location: f.location.clone(),
            lines: f.lines_left(),
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    async fn on_picked_up(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let f = self.fulfillment_at(event).await?;
        let command = match f.kind.as_str() {
            "PICKUP" if !f.lines_left().is_empty() => OrderCommand::MarkPickedUp {
                fulfillment_id: f.id.to_string(),
                location: f.location.clone(),
                lines: f.lines_left(),
            },
            // Collected at the destination store: the shipment reached the customer.
            "SHIP_TO_STORE" => OrderCommand::MarkDelivered {
                fulfillment_id: f.id.to_string(),
            },
            _ => return Ok(()),
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    async fn on_delivered(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let f = self.fulfillment_at(event).await?;
        let command = OrderCommand::MarkDelivered {
            fulfillment_id: f.id.to_string(),
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    async fn on_pickup_expired(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let f = self.fulfillment_at(event).await?;
        let (order, _) = self.orders.load(f.order_id).await?;
        // Only what is still held at the store: nothing once the cancel is recorded.
        let lines: Vec<LineQty> = f
            .lines
            .iter()
            .filter_map(|(id, (_, left))| {
                let line = order.line(id)?;
                let qty = (*left).min(line.open_at(&f.location)).min(line.open());
                (qty > 0).then(|| LineQty::new(id.clone(), qty))
            })
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        let command = OrderCommand::Cancel {
            lines: Some(lines),
            reason: PICKUP_EXPIRED.into(),
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    /// An order cancellation the fulfillment order decided: the order records the same units
    /// under the same operation (nothing, when the cancel handler already did).
    async fn on_fulfillment_cancelled(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let cancelled: CancelledShape = decode(event)?;
        let Some(operation) = cancelled.operation else {
            return Ok(());
        };
        let f = self.fulfillment_at(event).await?;
        let held = cancelled
            .lines
            .iter()
            .filter_map(|l| {
                Some(order::ReservationRelease {
                    line_id: l.line_id.clone(),
                    reservation_id: f.reservations.get(&l.line_id)?.clone(),
                    location: f.location.clone(),
                    qty: l.qty,
                })
            })
            .collect();
        let command = OrderCommand::CancelConfirmed {
            operation,
            held,
            unheld: vec![],
            reason: if cancelled.reason.trim().is_empty() {
                "CANCELLED".to_owned()
            } else {
                cancelled.reason
            },
        };
        self.orders
            .execute(f.order_id, command, self.metadata(event))
            .await?;
        Ok(())
    }

    async fn on_lines_picked(&self, event: &RecordedEvent) -> Result<(), ReactionError> {
        let picked: PickedShape = decode(event)?;
        if picked.lines.iter().all(|l| l.short <= 0) {
            return Ok(());
        }
        let f = self.fulfillment_at(event).await?;
        let metadata = self.metadata(event);
        let earlier = self.caused_by(f.order_id, event).await?;
        for short in picked.lines.iter().filter(|l| l.short > 0) {
            let Some((sku, _)) = f.lines.get(&short.line_id) else {
                continue;
            };
            // 1. The order gives up the units at this location (once per pick event).
            let marked = earlier.iter().any(|e| {
                matches!(
                    OrderEvent::decode(&e.event_type, &e.data),
                    Some(Ok(OrderEvent::LineShortPicked(s))) if s.line_id == short.line_id
                )
            });
            if !marked {
                let (order, _) = self.orders.load(f.order_id).await?;
                let Some(line) = order.line(&short.line_id) else {
                    continue;
                };
                let staged = if line.delivery.pickup_store() == Some(f.location.as_str()) {
                    line.ready
                } else {
                    0
                };
                // Units cancelled meanwhile need no new home.
                let qty = short.short.min(line.open_at(&f.location) - staged);
                if qty > 0 {
                    self.orders
                        .execute(
                            f.order_id,
                            OrderCommand::MarkShortPicked {
                                line_id: short.line_id.clone(),
                                location: f.location.clone(),
                                qty,
                            },
                            metadata.clone(),
                        )
                        .await?;
                }
            }
            // The reservations given up are released before the discrepancy is recorded (an
            // adjustment may only take what no reservation holds); the reaction to
            // `LineShortPicked` does the same again, which is harmless.
            let (order, _) = self.orders.load(f.order_id).await?;
            if let Some(line) = order.line(&short.line_id) {
                let ids = line
                    .allocations
                    .iter()
                    .filter(|a| a.location == f.location)
                    .map(|a| a.reservation_id.clone())
                    .collect();
                self.sync_reservations(&order, &ids, metadata.clone())
                    .await?;
            }
            // 2. The shelf had less than the books: recorded against the location.
            let reference = format!("short-pick:{}:{}", f.id, short.line_id);
            self.tolerate(
                self.orders
                    .inventory()
                    .record_short_pick(sku, &f.location, short.short, &reference, metadata.clone())
                    .await
                    .map(|_| ()),
            )?;
            // 3. A new home for the waiting units, or a cancellation.
            self.resolve_short(f.order_id, f.id, &f.location, &short.line_id, event)
                .await?;
        }
        Ok(())
    }

    /// Re-sources the units of a line waiting after a short pick at `location`, or cancels
    /// them (`OUT_OF_STOCK`; the cancellation's reaction voids or refunds).
    async fn resolve_short(
        &self,
        order_id: Uuid,
        fulfillment_id: Uuid,
        location: &str,
        line_id: &str,
        event: &RecordedEvent,
    ) -> Result<(), ReactionError> {
        let (order, _) = self.orders.load(order_id).await?;
        let Some(line) = order.line(line_id) else {
            return Ok(());
        };
        let waiting = line.short_picked.get(location).copied().unwrap_or(0);
        if waiting <= 0 {
            return Ok(());
        }
        let metadata = self.metadata(event);
        if let Some(plan) = self.resource(line, location, waiting).await? {
            let owner = format!("order:{order_id}/resource:{fulfillment_id}:{line_id}");
            let requests: Vec<ReservationRequest> = plan
                .iter()
                .enumerate()
                .map(|(n, (to, qty))| ReservationRequest {
                    reservation_id: format!("{owner}#{n}"),
                    sku: line.sku.clone(),
                    location: to.clone(),
                    qty: *qty,
                })
                .collect();
            // The expiry is derived from the event, so that a retry asks for the same hold
            // (a reservation is recognised by its content); only a replay long after the
            // event, whose hold expired anyway, asks for a fresh one.
            let mut expires_at = event.metadata.occurred_at + HOLD;
            if expires_at <= self.clock.now() {
                expires_at = self.clock.now() + HOLD;
            }
            match self
                .orders
                .inventory()
                .reserve(&owner, &requests, Some(expires_at), metadata.clone())
                .await
            {
                Ok(_) => {
                    for r in requests {
                        let command = OrderCommand::ReassignLine {
                            line_id: line_id.to_owned(),
                            from_location: location.to_owned(),
                            to_location: r.location,
                            qty: r.qty,
                            new_reservation_id: r.reservation_id,
                        };
                        self.orders
                            .execute(order_id, command, metadata.clone())
                            .await?;
                    }
                    return Ok(());
                }
                // The stock moved since the snapshot: no new home after all.
                Err(InventoryPortError::Refused(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let command = OrderCommand::Cancel {
            lines: Some(vec![LineQty::new(line_id, waiting)]),
            reason: OUT_OF_STOCK.into(),
        };
        self.orders.execute(order_id, command, metadata).await?;
        Ok(())
    }

    /// Where `qty` units of the line could come from instead of `location`: (location, qty)
    /// pairs, or `None` when the network has not got them (a pickup line has no other store).
    async fn resource(
        &self,
        line: &LineState,
        location: &str,
        qty: i64,
    ) -> Result<Option<Vec<(String, i64)>>, ReactionError> {
        if line.is_pickup() {
            return Ok(None);
        }
        let candidates: Vec<_> = self
            .orders
            .inventory()
            .candidates(std::slice::from_ref(&line.sku))
            .await?
            .into_iter()
            .filter(|c| c.code != location)
            .collect();
        let wanted = SourcingLine {
            line_id: line.line_id.clone(),
            sku: line.sku.clone(),
            qty,
            delivery: line.delivery.clone(),
        };
        Ok(sourcing::source(&[wanted], &candidates, false)
            .ok()
            .map(|plan| {
                plan.allocations
                    .into_iter()
                    .map(|a| (a.location, a.qty))
                    .collect()
            }))
    }

    // ---- order → inventory, payment, fulfillment ----

    /// Units shipped or handed over: consume their reservations, capture their value.
    async fn on_fulfilled(
        &self,
        order_id: Uuid,
        event: &RecordedEvent,
        step: &str,
        fulfillment_id: &str,
        lines: &[LineQty],
        reservations: impl Iterator<Item = String>,
    ) -> Result<(), ReactionError> {
        let (order, _) = self.orders.load(order_id).await?;
        let ids: BTreeSet<String> = reservations.collect();
        self.sync_reservations(&order, &ids, self.metadata(event))
            .await?;
        let Some(payment) = &order.payment else {
            return Ok(());
        };
        if payment.voided {
            return Ok(());
        }
        let already = self
            .caused_by(order_id, event)
            .await?
            .iter()
            .any(|e| e.event_type.starts_with("PaymentCaptured."));
        if already {
            return Ok(());
        }
        let currency = payment.authorized.currency;
        let mut value = Decimal::ZERO;
        for q in lines {
            if let Some(line) = order.line(&q.line_id) {
                value += line.unit_price.amount * Decimal::from(q.qty);
            }
        }
        // Never more than the order's rules allow (see the CapturePayment decision).
        let not_captured = payment.authorized.amount - payment.captured.amount;
        let net = payment.captured.amount - payment.refunded.amount;
        let owed = order.payable().map_or(Decimal::ZERO, |m| m.amount) - net;
        let amount = value.min(not_captured).min(owed);
        if amount <= Decimal::ZERO {
            return Ok(());
        }
        let amount = Money::new(amount, currency);
        let operation = format!("{step}:{fulfillment_id}");
        let reference = self
            .orders
            .payments()
            .capture(
                &ProviderReference(payment.reference.clone()),
                &operation,
                &amount,
            )
            .await?;
        self.orders
            .execute(
                order_id,
                OrderCommand::CapturePayment {
                    amount,
                    reference: reference.0,
                },
                self.metadata(event),
            )
            .await?;
        Ok(())
    }

    /// Units given up (cancelled, moved): release what the order no longer holds. Their
    /// fulfillment orders stopped them already (see the module documentation).
    async fn on_released(
        &self,
        order_id: Uuid,
        event: &RecordedEvent,
        ids: &BTreeSet<String>,
    ) -> Result<(), ReactionError> {
        let (order, _) = self.orders.load(order_id).await?;
        self.sync_reservations(&order, ids, self.metadata(event))
            .await
    }

    /// After a cancellation: void a fully cancelled order with nothing captured; refund what
    /// was captured beyond what the customer still owes
    /// ([`OrderHandlers::refund_cancelled_excess`]). An order an exchange credit paid for in
    /// full has no payment: nothing to settle.
    async fn settle_payment(
        &self,
        order_id: Uuid,
        event: &RecordedEvent,
    ) -> Result<(), ReactionError> {
        let (order, _) = self.orders.load(order_id).await?;
        let Some(p) = &order.payment else {
            return Ok(());
        };
        if p.voided {
            return Ok(());
        }
        let reference = ProviderReference(p.reference.clone());
        if order.status() == Some(OrderStatus::Cancelled) && p.captured.amount.is_zero() {
            self.orders.payments().void(&reference).await?;
            self.orders
                .execute(order_id, OrderCommand::VoidPayment, self.metadata(event))
                .await?;
            return Ok(());
        }
        // Under the order's refund lock, computed on the state read under it: a return's
        // refund running at the same time cannot make the two pass what was captured.
        self.orders
            .refund_cancelled_excess(order_id, self.metadata(event))
            .await?;
        Ok(())
    }

    /// Brings inventory in line with the order for these reservations: consumed up to what
    /// was fulfilled from each, and released once the order holds none of its units.
    async fn sync_reservations(
        &self,
        order: &Order,
        ids: &BTreeSet<String>,
        metadata: Metadata,
    ) -> Result<(), ReactionError> {
        let mut consume = Vec::new();
        let mut release = Vec::new();
        for line in &order.lines {
            for a in line
                .allocations
                .iter()
                .filter(|a| ids.contains(&a.reservation_id))
            {
                let r = ReservationRef {
                    reservation_id: a.reservation_id.clone(),
                    sku: line.sku.clone(),
                    location: a.location.clone(),
                };
                if a.fulfilled > 0 {
                    consume.push((r.clone(), a.fulfilled));
                }
                if a.open() == 0 && a.fulfilled < a.qty {
                    release.push(r);
                }
            }
        }
        tracing::debug!(?ids, ?consume, ?release, "syncing reservations");
        let inventory = self.orders.inventory();
        if !consume.is_empty() {
            self.tolerate(inventory.consume(&consume, metadata.clone()).await)?;
        }
        if !release.is_empty() {
            self.tolerate(inventory.release(&release, metadata).await)?;
        }
        Ok(())
    }

    // ---- helpers ----

    /// A refusal from inventory is logged (the stock already moved on: released, expired),
    /// an outage is returned (retried).
    fn tolerate(&self, result: Result<(), InventoryPortError>) -> Result<(), ReactionError> {
        match result {
            Err(InventoryPortError::Refused(refused)) => {
                tracing::warn!(?refused, "inventory refused a reaction; left as it is");
                Ok(())
            }
            other => Ok(other?),
        }
    }

    fn metadata(&self, event: &RecordedEvent) -> Metadata {
        Metadata::caused_by(event, Actor::system(NAME), event.metadata.occurred_at)
    }

    /// The order's events caused by `event` (what an earlier run already did about it).
    async fn caused_by(
        &self,
        order_id: Uuid,
        event: &RecordedEvent,
    ) -> Result<Vec<RecordedEvent>, ReactionError> {
        Ok(
            read_whole_stream(self.store.as_ref(), &order::stream_name(order_id))
                .await?
                .into_iter()
                .filter(|e| e.metadata.causation_id == Some(event.id))
                .collect(),
        )
    }

    /// The fulfillment order of `event`, folded up to and including it.
    async fn fulfillment_at(
        &self,
        event: &RecordedEvent,
    ) -> Result<FulfillmentShape, ReactionError> {
        let unreadable = |detail: String| ReactionError::Unreadable {
            position: event.position.to_string(),
            detail,
        };
        let id: Uuid = event
            .stream
            .strip_prefix("fulfillment-")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| unreadable(format!("{} is not a fulfillment stream", event.stream)))?;
        let events = self
            .store
            .read_stream(&event.stream, 0, event.revision as usize + 1)
            .await?;
        let mut shape: Option<FulfillmentShape> = None;
        for e in events.iter().take_while(|e| e.revision <= event.revision) {
            match e.event_name() {
                "FulfillmentCreated" => {
                    let c: CreatedShape = decode(e)?;
                    shape = Some(FulfillmentShape {
                        id,
                        order_id: c.order_id,
                        location: c.location,
                        kind: c.kind,
                        reservations: c
                            .lines
                            .iter()
                            .map(|l| (l.line_id.clone(), l.reservation_id.clone()))
                            .collect(),
                        lines: c
                            .lines
                            .into_iter()
                            .map(|l| (l.line_id, (l.sku, l.qty)))
                            .collect(),
                    });
                }
                "FulfillmentLinesPicked" => {
                    let p: PickedShape = decode(e)?;
                    if let Some(s) = &mut shape {
                        for l in p.lines {
                            if let Some((_, qty)) = s.lines.get_mut(&l.line_id) {
                                *qty = (*qty - l.short).max(0);
                            }
                        }
                    }
                }
                "FulfillmentLinesCancelled" => {
                    let c: CancelledShape = decode(e)?;
                    if let Some(s) = &mut shape {
                        for l in c.lines {
                            if let Some((_, qty)) = s.lines.get_mut(&l.line_id) {
                                *qty = (*qty - l.qty).max(0);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        shape.ok_or_else(|| unreadable("the fulfillment order has no FulfillmentCreated".into()))
    }
}

/// The order of an order stream's event.
fn order_id_of(event: &RecordedEvent) -> Result<Uuid, ReactionError> {
    event
        .stream
        .strip_prefix("order-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ReactionError::Unreadable {
            position: event.position.to_string(),
            detail: format!("{} is not an order stream", event.stream),
        })
}

fn decode<T: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<T, ReactionError> {
    event.decode().map_err(|e| ReactionError::Unreadable {
        position: event.position.to_string(),
        detail: e.to_string(),
    })
}
