//! The sweep of unrecorded placements: a placement cut off before its record and never
//! retried leaves holds without an expiry (and capacity claims); every [`SWEEP_EVERY`] the
//! order service frees those older than [`crate::handlers::order::HOLD`]
//! ([`OrderHandlers::release_unrecorded_holds`]: one look at the open order holds, and one
//! order read per unchecked placement).

use crate::handlers::order::OrderHandlers;
use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::Metadata;
use std::time::Duration;

/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Starts the sweep on the current runtime.
pub fn spawn(handlers: OrderHandlers) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let metadata = Metadata::new(Actor::system("order-hold-sweep"));
            if let Err(e) = handlers.release_unrecorded_holds(metadata).await {
                tracing::warn!(error = %e, "sweep of unrecorded placements failed; next pass retries");
            }
        }
    })
}
