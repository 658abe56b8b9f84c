//! Expiring pickups that were not collected: fulfillment orders READY_FOR_PICKUP whose store's
//! hold days ran out.
//!
//! [`PickupTracker`] is a projection of the pickups waiting at a counter with their expiry.
//! [`PickupExpiry`] asks it which are due at the clock's `now` and sends each `ExpirePickup`,
//! which the domain decides against the fulfillment order itself (a no-op when it is no longer
//! waiting or not due yet). Nothing is checkpointed: the tracker is rebuilt from the store on
//! start and expiring twice changes nothing, so a crash or a replay is harmless. What follows
//! an expiry (the order's lines cancelled, stock released, payment voided) is the order
//! process's reaction to `FulfillmentPickupExpired`.
//!
//! The clock is injected, so tests move a `ManualClock` past the hold days and call
//! [`PickupExpiry::run_once`]; `serve` runs [`PickupExpiry::spawn`].

use crate::domain::{FulfillmentCommand, FulfillmentEvent};
use crate::handlers::{FulfillmentHandlerError, FulfillmentHandlers};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Actor;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Metadata, RecordedEvent};
use ichigen_shared::projection::Projection;
use ichigen_shared::store::SubscriptionFilter;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The process's name (actor of the commands it sends).
pub const NAME: &str = "fulfillment-pickup-expiry";

#[derive(Default)]
struct Waiting {
    /// (expires at, fulfillment id), soonest first.
    due: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// A B-tree, so that many waiting pickups never cost one long rehash.
    by_id: BTreeMap<Uuid, DateTime<Utc>>,
}

impl Waiting {
    fn forget(&mut self, id: Uuid) {
        if let Some(at) = self.by_id.remove(&id) {
            self.due.remove(&(at, id));
        }
    }
}

/// Pickups waiting at a counter, with their expiry, from the fulfillment streams.
#[derive(Default)]
pub struct PickupTracker {
    waiting: Mutex<Waiting>,
}

impl PickupTracker {
    /// Fulfillment orders whose pickup is due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        let waiting = self.lock();
        waiting
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Pickups still tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget(&self, id: Uuid) {
        self.lock().forget(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Every update is a couple of map operations: a poisoned lock holds consistent data.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Projection for PickupTracker {
    fn name(&self) -> &'static str {
        "fulfillment-pickup-expiry"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let mut waiting = self.lock();
        for recorded in events {
            let Some(id) = recorded
                .stream
                .strip_prefix("fulfillment-")
                .and_then(|id| id.parse::<Uuid>().ok())
            else {
                continue;
            };
            match FulfillmentEvent::decode(&recorded.event_type, &recorded.data) {
                Some(Ok(FulfillmentEvent::ReadyForPickup(e))) => {
                    waiting.forget(id);
                    waiting.due.insert((e.expires_at, id));
                    waiting.by_id.insert(id, e.expires_at);
                }
                Some(Ok(FulfillmentEvent::PickedUp(_) | FulfillmentEvent::PickupExpired(_))) => {
                    waiting.forget(id);
                }
                // A cancellation may leave units waiting; the expiry then finds out for itself.
                _ => {}
            }
        }
    }
}

/// Sends `ExpirePickup` to every fulfillment order whose pickup is due.
pub struct PickupExpiry {
    pub tracker: Arc<PickupTracker>,
    handlers: FulfillmentHandlers,
    clock: Arc<dyn Clock>,
}

impl PickupExpiry {
    pub fn new(
        tracker: Arc<PickupTracker>,
        handlers: FulfillmentHandlers,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PickupExpiry {
            tracker,
            handlers,
            clock,
        }
    }

    /// One pass at the clock's `now`: returns how many pickups expired.
    pub async fn run_once(&self) -> Result<usize, FulfillmentHandlerError> {
        let now = self.clock.now();
        let mut expired = 0;
        for id in self.tracker.due(now) {
            let accepted = self
                .handlers
                .execute(
                    id,
                    FulfillmentCommand::ExpirePickup,
                    Metadata::new(Actor::system(NAME)),
                )
                .await?;
            expired += accepted.events.len();
            // Expired now, or no longer waiting (collected, cancelled): either way done.
            self.tracker.forget(id);
        }
        Ok(expired)
    }

    /// Runs a pass every `every` until the runtime stops.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "pickup expiry pass failed; retried next tick");
                }
            }
        })
    }
}
