//! The pure fulfillment domain: one fulfillment order per order × location, stream
//! `fulfillment-<uuid>`.
//!
//! A fulfillment order is the work one location does for one order: a DC or a store picks,
//! packs and ships (SHIP), or a store picks and hands over at the counter (PICKUP, BOPIS), or a
//! location ships to a store where the customer collects (SHIP_TO_STORE, endless aisle). The
//! steps are a small state machine; what may happen next depends only on the state, so it is
//! decided here without I/O and tested without a store.
//!
//! Quantities are per order line. A short pick (the shelf had less than the system said)
//! removes the missing units from this fulfillment order and records them, so that the order
//! service re-sources them elsewhere or cancels and refunds them, and the inventory service
//! records the discrepancy against the location.

mod decide;
mod events;
#[cfg(test)]
mod tests;

pub use decide::{decide, pickup_expiry, FulfillmentCommand, FulfillmentError};
pub use events::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stream of one fulfillment order.
pub fn stream_name(fulfillment_id: &uuid::Uuid) -> String {
    format!("fulfillment-{fulfillment_id}")
}

/// What kind of work the location does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentKind {
    /// Pick, pack, ship to the customer (DC or ship-from-store).
    Ship,
    /// Pick, then the customer collects at this store (BOPIS).
    Pickup,
    /// Pick, pack, ship to a store where the customer collects (endless aisle to store).
    ShipToStore,
}

/// Where a fulfillment order stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentStatus {
    /// Created, nothing picked yet.
    Open,
    Picked,
    Packed,
    Shipped,
    Delivered,
    /// Waiting at the store's counter with a pickup code.
    ReadyForPickup,
    PickedUp,
    /// Not collected within the store's hold days: stock released, payment voided.
    Expired,
    /// Nothing left to do: every unit was cancelled or short-picked.
    Cancelled,
}

impl FulfillmentStatus {
    /// No further step is possible.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            FulfillmentStatus::Delivered
                | FulfillmentStatus::PickedUp
                | FulfillmentStatus::Expired
                | FulfillmentStatus::Cancelled
        )
    }
}

/// One order line's part of the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentLine {
    pub line_id: String,
    pub sku: String,
    /// Units to fulfil here (after short picks and cancellations).
    pub qty: i64,
    /// The inventory reservation that holds them at this location.
    pub reservation_id: String,
    #[serde(default)]
    pub picked: i64,
    #[serde(default)]
    pub short: i64,
    #[serde(default)]
    pub cancelled: i64,
}

/// The folded state of one fulfillment order (`None` until created).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fulfillment {
    pub created: Option<Created>,
    pub status: Option<FulfillmentStatus>,
    pub lines: BTreeMap<String, FulfillmentLine>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub pickup_code: Option<String>,
    pub pickup_expires_at: Option<DateTime<Utc>>,
    /// What each order cancellation (`CancelUnits`, by its operation) took from this order:
    /// how a retried cancellation is answered with the units it cancelled the first time.
    pub cancel_operations: BTreeMap<String, Vec<CancelledLine>>,
}

/// What a fulfillment order was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub fulfillment_id: uuid::Uuid,
    pub order_id: uuid::Uuid,
    pub location: String,
    pub kind: FulfillmentKind,
    /// The store a SHIP_TO_STORE order goes to.
    pub destination_store: Option<String>,
    pub pickup_hold_days: i64,
    /// The collecting store's IANA zone (`None` for orders created before it was recorded).
    pub pickup_time_zone: Option<String>,
}

impl Fulfillment {
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a FulfillmentEvent>) -> Self {
        let mut state = Fulfillment::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// Whether units can still be cancelled: nothing has left the building or been handed
    /// over, and the order is not finished.
    pub fn is_cancellable(&self) -> bool {
        use FulfillmentStatus as S;
        matches!(
            self.status,
            Some(S::Open | S::Picked | S::Packed | S::ReadyForPickup)
        )
    }

    /// Units of `line_id` the cancellation `operation` took here (0 if it took none).
    pub fn cancelled_by(&self, operation: &str, line_id: &str) -> i64 {
        self.cancel_operations.get(operation).map_or(0, |lines| {
            lines
                .iter()
                .filter(|l| l.line_id == line_id)
                .map(|l| l.qty)
                .sum()
        })
    }

    /// Units still to be handed to the customer (ordered here, not short, not cancelled).
    pub fn remaining(&self) -> i64 {
        self.lines.values().map(|l| l.qty).sum()
    }

    pub fn apply(&mut self, event: &FulfillmentEvent) {
        use FulfillmentEvent as E;
        match event {
            E::FulfillmentCreated(e) => {
                self.created = Some(Created {
                    fulfillment_id: e.fulfillment_id,
                    order_id: e.order_id,
                    location: e.location.clone(),
                    kind: e.kind,
                    destination_store: e.destination_store.clone(),
                    pickup_hold_days: e.pickup_hold_days,
                    pickup_time_zone: e.pickup_time_zone.clone(),
                });
                self.status = Some(FulfillmentStatus::Open);
                self.lines = e
                    .lines
                    .iter()
                    .map(|l| (l.line_id.clone(), l.clone()))
                    .collect();
            }
            E::LinesPicked(e) => {
                for p in &e.lines {
                    if let Some(line) = self.lines.get_mut(&p.line_id) {
                        line.picked = line.picked.saturating_add(p.picked);
                        line.short = line.short.saturating_add(p.short);
                        line.qty = line.qty.saturating_sub(p.short);
                    }
                }
                self.status = Some(if self.remaining() == 0 {
                    FulfillmentStatus::Cancelled
                } else {
                    FulfillmentStatus::Picked
                });
            }
            E::FulfillmentPacked(_) => self.status = Some(FulfillmentStatus::Packed),
            E::FulfillmentShipped(e) => {
                self.status = Some(FulfillmentStatus::Shipped);
                self.carrier = Some(e.carrier.clone());
                self.tracking_number = Some(e.tracking_number.clone());
            }
            E::FulfillmentDelivered(_) => self.status = Some(FulfillmentStatus::Delivered),
            E::ReadyForPickup(e) => {
                self.status = Some(FulfillmentStatus::ReadyForPickup);
                self.pickup_code = Some(e.pickup_code.clone());
                self.pickup_expires_at = Some(e.expires_at);
            }
            E::PickedUp(_) => self.status = Some(FulfillmentStatus::PickedUp),
            E::PickupExpired(_) => self.status = Some(FulfillmentStatus::Expired),
            E::FulfillmentLinesCancelled(e) => {
                if let Some(operation) = &e.operation {
                    self.cancel_operations
                        .entry(operation.clone())
                        .or_default()
                        .extend(e.lines.iter().cloned());
                }
                for c in &e.lines {
                    if let Some(line) = self.lines.get_mut(&c.line_id) {
                        line.cancelled = line.cancelled.saturating_add(c.qty);
                        line.qty = line.qty.saturating_sub(c.qty);
                        line.picked = line.picked.min(line.qty);
                    }
                }
                if self.remaining() == 0 {
                    self.status = Some(FulfillmentStatus::Cancelled);
                }
            }
        }
    }
}
