//! The fulfillment service as one value: its command handlers, its read models and its
//! processes, wired together once.
//!
//! GraphQL (store staff), the WMS fulfillment API and the pickup expiry all share one
//! [`FulfillmentService`], so that every read is served by the same in-memory queues and every
//! write's position can be waited for on them (read-your-writes).

use crate::cancellation::OrderCancellation;
use crate::domain::{stream_name, Fulfillment};
use crate::handlers::FulfillmentHandlers;
use crate::process::order_intake::{HoldDays, OrderIntake, PickupHold};
use crate::process::pickup_expiry::{PickupExpiry, PickupTracker};
use crate::projections::queues::{FulfillmentQueues, QueueEntry};
use ichigen_shared::clock::Clock;
use ichigen_shared::projection::{self, ProjectionHandle, WaitError};
use ichigen_shared::store::{DynEventStore, Position, StoreError};
use ichigen_shared::tasks::{BackgroundTasks, Processes};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a read that asked for its own write waits at most.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Characters of a pickup code: no 0/O or 1/I, which staff confuse when a customer reads the
/// code out or shows it on a cracked phone screen. 32 of them, so 5 random bits pick one
/// without bias.
pub const PICKUP_CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Length of a pickup code: 32^6 ≈ 10^9 codes, far beyond guessing at a counter, short enough
/// to read out.
pub const PICKUP_CODE_LEN: usize = 6;

/// A fresh pickup code, e.g. `K7QH3M`.
///
/// The randomness comes from a v4 UUID (whose first six bytes are fully random), so no random
/// number crate is needed. Codes need not be unique: a code is only ever checked against the
/// one fulfillment order it was issued for.
pub fn new_pickup_code() -> String {
    let bytes = Uuid::new_v4().into_bytes();
    bytes[..PICKUP_CODE_LEN]
        .iter()
        .map(|b| char::from(PICKUP_CODE_ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// Handlers, queues and processes of the fulfillment service.
#[derive(Clone)]
pub struct FulfillmentService {
    pub store: DynEventStore,
    pub clock: Arc<dyn Clock>,
    pub handlers: FulfillmentHandlers,
    /// The queues every read uses (pickup counter, ship-from-store, DC tasks, by id).
    pub queues: Arc<FulfillmentQueues>,
    pub queues_handle: ProjectionHandle,
    pickups: Arc<PickupTracker>,
    pickups_handle: ProjectionHandle,
    /// Creates the fulfillment orders of placed orders (a process where [`Processes::Run`];
    /// also used directly by an order cancellation that arrives first).
    intake: OrderIntake,
    /// The background processes this service started, stopped by [`Self::shutdown`].
    tasks: BackgroundTasks,
}

/// How often the pickup expiry looks for holds that ran out (a look at the soonest expiry, so
/// cheap; an expired pickup is at most this late).
pub const PICKUP_EXPIRY_EVERY: Duration = Duration::from_secs(1);

impl FulfillmentService {
    /// Starts the read models (they replay the store, then follow it) and builds the handlers,
    /// without background processes, every store holding pickups 3 days of UTC: for tests and
    /// tools. Must run inside a Tokio runtime.
    pub fn start(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        let hold: HoldDays = Arc::new(|_| PickupHold {
            days: 3,
            time_zone: None,
        });
        Self::start_with(store, clock, hold, Processes::None)
    }

    /// Starts the read models and builds the handlers; with [`Processes::Run`] also the
    /// service's processes: the order intake (placed orders → fulfillment orders, from a stored
    /// checkpoint) and the pickup expiry (every [`PICKUP_EXPIRY_EVERY`]). `hold_days` tells
    /// each store's pickup hold (the inventory service knows its locations).
    pub fn start_with(
        store: DynEventStore,
        clock: Arc<dyn Clock>,
        hold_days: HoldDays,
        processes: Processes,
    ) -> Self {
        let queues = Arc::new(FulfillmentQueues::new());
        let queues_handle = projection::spawn(store.clone(), queues.clone());
        let pickups = Arc::new(PickupTracker::default());
        let pickups_handle = projection::spawn(store.clone(), pickups.clone());
        let handlers = FulfillmentHandlers::new(store.clone(), clock.clone());
        let intake = OrderIntake::new(store.clone(), handlers.clone(), hold_days);
        let service = FulfillmentService {
            store,
            clock,
            handlers,
            queues,
            queues_handle,
            pickups,
            pickups_handle,
            intake,
            tasks: BackgroundTasks::default(),
        };
        if processes == Processes::Run {
            service.tasks.push(service.intake.clone().spawn());
            service
                .tasks
                .push(service.expiry().spawn(PICKUP_EXPIRY_EVERY));
        }
        service
    }

    /// Stops the background processes (each is idempotent: one cut off mid-pass is done again
    /// by the next start). Call before closing the store.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// Whether the background processes are running (none started, or stopped: `false`).
    pub fn processes_running(&self) -> bool {
        self.tasks.running()
    }

    /// Order cancellations, decided by the fulfillment orders that hold the units (what the
    /// order service's `FulfillmentPort` calls).
    pub fn cancellation(&self) -> OrderCancellation {
        OrderCancellation::new(self.handlers.clone(), self.intake.clone())
    }

    /// The expiry process for driving by hand (tests with a manual clock).
    pub fn expiry(&self) -> PickupExpiry {
        PickupExpiry::new(
            self.pickups.clone(),
            self.handlers.clone(),
            self.clock.clone(),
        )
    }

    /// The projections readiness waits for.
    pub fn projections(&self) -> Vec<ProjectionHandle> {
        vec![self.queues_handle.clone(), self.pickups_handle.clone()]
    }

    /// Read-your-writes: waits until the queues (and the pickup tracker, so that an expiry
    /// pass sees a pickup that was just made ready) have applied `position`, a position a
    /// write returned. `None` returns at once.
    pub async fn wait_for(&self, position: Option<Position>) -> Result<(), WaitError> {
        let Some(p) = position else {
            return Ok(());
        };
        self.queues_handle
            .wait_for(p, READ_YOUR_WRITES_TIMEOUT)
            .await?;
        self.pickups_handle
            .wait_for(p, READ_YOUR_WRITES_TIMEOUT)
            .await
    }

    /// The fulfillment order as the queues show it once they have applied `position`.
    ///
    /// A write that changed nothing (a retry) has no position; if the queues have not seen the
    /// order yet, it is built from `state` (the write side's fold) with the creation time read
    /// from the stream, so that a payload always shows the order.
    pub async fn entry_after(
        &self,
        fulfillment_id: Uuid,
        state: &Fulfillment,
        position: Option<Position>,
    ) -> Result<Option<QueueEntry>, EntryError> {
        self.wait_for(position).await?;
        if let Some(entry) = self.queues.get(fulfillment_id) {
            // Without a position, the view may still lag behind another request's write: only
            // an entry that agrees with the write side's fold is shown.
            let current = match position {
                Some(p) => entry.position >= p,
                None => {
                    Some(entry.status) == state.status && entry.pickup_code == state.pickup_code
                }
            };
            if current {
                return Ok(Some(entry));
            }
        }
        let (Some(created), Some(status)) = (&state.created, state.status) else {
            return Ok(None);
        };
        let stream = stream_name(&fulfillment_id);
        let first = self.store.read_stream(&stream, 0, 1).await?;
        let Some(first) = first.first() else {
            return Ok(None);
        };
        Ok(Some(QueueEntry {
            fulfillment_id,
            order_id: created.order_id,
            location: created.location.clone(),
            kind: created.kind,
            destination_store: created.destination_store.clone(),
            status,
            lines: state.lines.values().cloned().collect(),
            created_at: first.metadata.occurred_at,
            updated_at: self.clock.now(),
            pickup_code: state.pickup_code.clone(),
            pickup_expires_at: state.pickup_expires_at,
            carrier: state.carrier.clone(),
            tracking_number: state.tracking_number.clone(),
            position: position.unwrap_or(first.position),
        }))
    }
}

/// Why [`FulfillmentService::entry_after`] could not show the order.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_codes_are_six_unambiguous_characters() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let code = new_pickup_code();
            assert_eq!(code.len(), PICKUP_CODE_LEN);
            assert!(code.bytes().all(|b| PICKUP_CODE_ALPHABET.contains(&b)));
            assert!(!code.contains(['0', 'O', '1', 'I']));
            seen.insert(code);
        }
        assert!(seen.len() > 990, "codes repeat too often: {}", seen.len());
    }
}
