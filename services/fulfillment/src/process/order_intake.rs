//! Order intake: creates the fulfillment orders of every placed order, exactly once.
//!
//! Follows `OrderPlaced` events from a stored checkpoint. For each order it groups the
//! allocations by location and kind of work (SHIP, PICKUP, SHIP_TO_STORE to one store) and
//! creates one fulfillment order per group. The fulfillment id is derived from the order id
//! and the group, and `Create` with the same content is a no-op, so handling an event again
//! (after a crash between the create and the checkpoint, or a replay) changes nothing.
//!
//! `LineReassigned` (units of a line re-sourced to another location after a short pick, or
//! moved by staff) creates one more fulfillment order at the new location, for those units
//! only, named by the new reservation ([`reassigned_fulfillment_id`]): a location that already
//! works on the order keeps its own fulfillment order untouched.
//!
//! The fulfillment service does not depend on the order crate: it reads `OrderPlaced.v1` and
//! `LineReassigned.v1` by their published JSON shape, taking only the fields they need.

use crate::domain::{FulfillmentCommand, FulfillmentKind, FulfillmentLine};
use crate::handlers::{FulfillmentHandlerError, FulfillmentHandlers};
use ichigen_shared::checkpoint::Follower;
use ichigen_shared::envelope::{Actor, Metadata, RecordedEvent};
use ichigen_shared::store::{DynEventStore, StoreError, SubscriptionFilter};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The process's name (its checkpoint stream is `checkpoint-fulfillment-order-intake`).
pub const NAME: &str = "fulfillment-order-intake";

/// How long a store holds pickups: its hold days and its IANA time zone, whose local days
/// count them (from the inventory service's locations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupHold {
    pub days: i64,
    pub time_zone: Option<String>,
}

/// The pickup hold of a store, by code.
pub type HoldDays = Arc<dyn Fn(&str) -> PickupHold + Send + Sync>;

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
struct Reassigned {
    line_id: String,
    to_location: String,
    qty: i64,
    new_reservation_id: String,
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

/// The fulfillment id of units re-sourced under `reservation_id` (see the module docs).
pub fn reassigned_fulfillment_id(order_id: Uuid, reservation_id: &str) -> Uuid {
    Uuid::new_v5(
        &order_id,
        format!("fulfillment\nreassigned\n{reservation_id}").as_bytes(),
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

    /// Creates the fulfillment orders of one `OrderPlaced` or `LineReassigned`; returns their
    /// ids.
    pub async fn handle(&self, event: &RecordedEvent) -> Result<Vec<Uuid>, IntakeError> {
        if event.event_type.starts_with("LineReassigned.") {
            return self.handle_reassigned(event).await.map(|id| vec![id]);
        }
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
            let hold = (self.hold_days)(hold_store);
            let command = FulfillmentCommand::Create {
                fulfillment_id: id,
                order_id: order.order_id,
                pickup_hold_days: hold.days.clamp(1, 30),
                pickup_time_zone: hold.time_zone,
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

    /// Creates every fulfillment order of one order now, as this process will (or did) when it
    /// reaches the order's `OrderPlaced` and `LineReassigned` events: the same ids and the same
    /// content, so whichever comes second changes nothing. An order cancellation that reaches
    /// the fulfillment orders before this process does uses it, so that the cancellation is
    /// decided by the fulfillment order too, never by the order alone. Returns the ids.
    pub async fn ensure_order(&self, order_id: Uuid) -> Result<Vec<Uuid>, IntakeError> {
        let stream = format!("order-{order_id}");
        let events = ichigen_shared::store::read_whole_stream(self.store.as_ref(), &stream).await?;
        let mut created = Vec::new();
        for event in events.iter().filter(|e| {
            e.event_type.starts_with("OrderPlaced.") || e.event_type.starts_with("LineReassigned.")
        }) {
            created.extend(self.handle(event).await?);
        }
        Ok(created)
    }

    /// One more fulfillment order at the new location, for the reassigned units.
    async fn handle_reassigned(&self, event: &RecordedEvent) -> Result<Uuid, IntakeError> {
        let unreadable = |detail: String| IntakeError::Unreadable {
            position: event.position.to_string(),
            detail,
        };
        let moved: Reassigned =
            serde_json::from_slice(&event.data).map_err(|e| unreadable(e.to_string()))?;
        let order_id: Uuid = event
            .stream
            .strip_prefix("order-")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| unreadable(format!("stream {} is not an order", event.stream)))?;
        // The line's SKU and delivery are in the order's first event.
        let first = self.store.read_stream(&event.stream, 0, 1).await?;
        let placed = first
            .iter()
            .find(|e| e.event_type.starts_with("OrderPlaced."))
            .ok_or_else(|| unreadable("the order has no OrderPlaced".into()))?;
        let order: PlacedOrder =
            serde_json::from_slice(&placed.data).map_err(|e| unreadable(e.to_string()))?;
        let line = order
            .lines
            .iter()
            .find(|l| l.line_id == moved.line_id)
            .ok_or_else(|| unreadable(format!("unknown line {}", moved.line_id)))?;
        let (kind, destination) = match &line.delivery {
            PlacedDelivery::Ship {} => (FulfillmentKind::Ship, None),
            PlacedDelivery::Pickup {} => (FulfillmentKind::Pickup, None),
            PlacedDelivery::ShipToStore { store } => {
                (FulfillmentKind::ShipToStore, Some(store.clone()))
            }
        };
        let id = reassigned_fulfillment_id(order_id, &moved.new_reservation_id);
        let hold_store = destination.as_deref().unwrap_or(&moved.to_location);
        let hold = (self.hold_days)(hold_store);
        let command = FulfillmentCommand::Create {
            fulfillment_id: id,
            order_id,
            pickup_hold_days: hold.days.clamp(1, 30),
            pickup_time_zone: hold.time_zone,
            location: moved.to_location.clone(),
            kind,
            destination_store: destination,
            lines: vec![FulfillmentLine {
                line_id: moved.line_id.clone(),
                sku: line.sku.clone(),
                qty: moved.qty,
                reservation_id: moved.new_reservation_id.clone(),
                picked: 0,
                short: 0,
                cancelled: 0,
            }],
        };
        let metadata = Metadata::caused_by(event, Actor::system(NAME), event.metadata.occurred_at);
        self.handlers.execute(id, command, metadata).await?;
        Ok(id)
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
        let filter = SubscriptionFilter::event_types(["OrderPlaced.", "LineReassigned."]);
        // Every failure is retried: skipping an order would lose its fulfillment orders.
        Follower::start(self.store.clone(), NAME, filter)
            .await?
            .run(
                None,
                |event| async move { self.handle(&event).await.map(|_| ()) },
                |_| true,
                |_, _, _| {},
            )
            .await
            .map(|_| ())
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
