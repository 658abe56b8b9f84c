//! Order intake: creates the fulfillment orders of every placed order, exactly once.
//!
//! Follows `OrderPlaced` events from a stored checkpoint. For each order it groups the
//! allocations by location and kind of work (SHIP, PICKUP, SHIP_TO_STORE to one store) and
//! creates one fulfillment order per group. The fulfillment id is derived from the order id
//! and the group, and `Create` with the same content is a no-op, so handling an event again
//! (after a crash between the create and the checkpoint, or a replay) changes nothing.
//!
//! The fulfillment service does not depend on the order crate: it reads `OrderPlaced.v1` by its
//! published JSON shape, taking only the fields it needs.

use crate::domain::{FulfillmentCommand, FulfillmentKind, FulfillmentLine};
use crate::handlers::{FulfillmentHandlerError, FulfillmentHandlers};
use ichigen_shared::checkpoint::Checkpoint;
use ichigen_shared::envelope::{Actor, Metadata, RecordedEvent};
use ichigen_shared::store::{DynEventStore, StoreError, SubscribeFrom, SubscriptionFilter};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The process's name (its checkpoint stream is `checkpoint-fulfillment-order-intake`).
pub const NAME: &str = "fulfillment-order-intake";

/// Pickup hold days of a store (from the inventory service's locations).
pub type HoldDays = Arc<dyn Fn(&str) -> i64 + Send + Sync>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlacedOrder {
    order_id: Uuid,
    lines: Vec<PlacedLine>,
    allocations: Vec<PlacedAllocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlacedLine {
    line_id: String,
    sku: String,
    delivery: PlacedDelivery,
}

#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "SCREAMING_SNAKE_CASE")]
enum PlacedDelivery {
    Ship {},
    Pickup {},
    ShipToStore { store: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlacedAllocation {
    line_id: String,
    location: String,
    qty: i64,
    reservation_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("OrderPlaced at {position} is unreadable: {detail}")]
    Unreadable { position: String, detail: String },
    #[error(transparent)]
    Fulfillment(#[from] FulfillmentHandlerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The fulfillment id of one group of an order: stable across replays.
pub fn fulfillment_id(
    order_id: Uuid,
    location: &str,
    kind: FulfillmentKind,
    destination: Option<&str>,
) -> Uuid {
    Uuid::new_v5(
        &order_id,
        format!(
            "fulfillment\n{location}\n{kind:?}\n{}",
            destination.unwrap_or("")
        )
        .as_bytes(),
    )
}

#[derive(Clone)]
pub struct OrderIntake {
    store: DynEventStore,
    handlers: FulfillmentHandlers,
    hold_days: HoldDays,
}

impl OrderIntake {
    pub fn new(store: DynEventStore, handlers: FulfillmentHandlers, hold_days: HoldDays) -> Self {
        OrderIntake {
            store,
            handlers,
            hold_days,
        }
    }

    /// Creates the fulfillment orders of one `OrderPlaced`; returns their ids.
    pub async fn handle(&self, event: &RecordedEvent) -> Result<Vec<Uuid>, IntakeError> {
        let order: PlacedOrder =
            serde_json::from_slice(&event.data).map_err(|e| IntakeError::Unreadable {
                position: event.position.to_string(),
                detail: e.to_string(),
            })?;
        let lines: BTreeMap<&str, &PlacedLine> = order
            .lines
            .iter()
            .map(|l| (l.line_id.as_str(), l))
            .collect();
        // (location, kind, destination) → lines, in a stable order.
        let mut groups: BTreeMap<(String, u8, Option<String>), Vec<FulfillmentLine>> =
            BTreeMap::new();
        for a in &order.allocations {
            let Some(line) = lines.get(a.line_id.as_str()) else {
                return Err(IntakeError::Unreadable {
                    position: event.position.to_string(),
                    detail: format!("allocation for unknown line {}", a.line_id),
                });
            };
            let (kind, destination) = match &line.delivery {
                PlacedDelivery::Ship {} => (0, None),
                PlacedDelivery::Pickup {} => (1, None),
                PlacedDelivery::ShipToStore { store } => (2, Some(store.clone())),
            };
            groups
                .entry((a.location.clone(), kind, destination))
                .or_default()
                .push(FulfillmentLine {
                    line_id: a.line_id.clone(),
                    sku: line.sku.clone(),
                    qty: a.qty,
                    reservation_id: a.reservation_id.clone(),
                    picked: 0,
                    short: 0,
                    cancelled: 0,
                });
        }
        let mut created = Vec::with_capacity(groups.len());
        for ((location, kind, destination), lines) in groups {
            let kind = match kind {
                0 => FulfillmentKind::Ship,
                1 => FulfillmentKind::Pickup,
                _ => FulfillmentKind::ShipToStore,
            };
            let id = fulfillment_id(order.order_id, &location, kind, destination.as_deref());
            let hold_store = destination.as_deref().unwrap_or(&location);
            let command = FulfillmentCommand::Create {
                fulfillment_id: id,
                order_id: order.order_id,
                pickup_hold_days: (self.hold_days)(hold_store).clamp(1, 30),
                location,
                kind,
                destination_store: destination,
                lines: merge_lines(lines),
            };
            let metadata =
                Metadata::caused_by(event, Actor::system(NAME), event.metadata.occurred_at);
            self.handlers.execute(id, command, metadata).await?;
            created.push(id);
        }
        Ok(created)
    }

    /// Follows the store from the checkpoint until the runtime stops. A failing event is
    /// retried (with a pause) rather than skipped: skipping would lose a fulfillment order.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run().await {
                    tracing::warn!(error = %e, "order intake stopped; restarting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    async fn run(&self) -> Result<(), IntakeError> {
        let mut checkpoint = Checkpoint::new(self.store.clone(), NAME);
        let from = match checkpoint.load().await? {
            Some(p) => SubscribeFrom::After(p),
            None => SubscribeFrom::Start,
        };
        let mut subscription = self
            .store
            .subscribe(from, SubscriptionFilter::event_types(["OrderPlaced."]))
            .await?;
        let mut last_handled = None;
        loop {
            let next = match subscription.try_next() {
                Some(next) => Some(next),
                None => {
                    // Idle: make sure the checkpoint covers everything handled so far.
                    if let Some(at) = last_handled {
                        checkpoint.save(at, true).await?;
                    }
                    subscription.next().await
                }
            };
            let Some(event) = next else { return Ok(()) };
            let event = event?;
            self.handle(&event).await?;
            last_handled = Some(event.position);
            checkpoint.save(event.position, false).await?;
        }
    }
}

/// Two allocations of one line at one location become one fulfillment line (the quantities
/// add up; the first reservation id names it — the order domain allocates a line once per
/// location, so this is a safety net).
fn merge_lines(lines: Vec<FulfillmentLine>) -> Vec<FulfillmentLine> {
    let mut merged: Vec<FulfillmentLine> = Vec::with_capacity(lines.len());
    for line in lines {
        match merged.iter_mut().find(|l| l.line_id == line.line_id) {
            Some(existing) => existing.qty += line.qty,
            None => merged.push(line),
        }
    }
    merged
}
