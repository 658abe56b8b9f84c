//! The step between the two halves of a transfer: a `TransferShipped` at the source becomes a
//! `TransferInTransit` at the destination.
//!
//! A transfer is decided by one aggregate per step: the source's stock stream decides the out
//! (stock not promised, destination defined and active, transfer id not used there), the
//! destination's stock stream records the transfer in transit exactly once (keyed by transfer
//! id), and later decides the in (only a transfer in transit there, once, at most what
//! shipped). The handler that appends the out records the in-transit right away
//! ([`crate::handlers::StockHandlers::execute`]); this process follows every `TransferShipped`
//! from a stored checkpoint and sends the same `RecordInTransit`, so a crash between the two
//! appends still gets the transfer to its destination. Sending it twice changes nothing (the
//! destination knows the transfer id), so replaying from an old checkpoint is harmless.

use crate::domain::{StockCommand, StockEvent};
use crate::handlers::{in_transit, HandlerError, StockHandlers};
use ichigen_shared::auth::Actor;
use ichigen_shared::checkpoint::Follower;
use ichigen_shared::envelope::{Metadata, RecordedEvent};
use ichigen_shared::store::{DynEventStore, StoreError, SubscriptionFilter};
use std::time::Duration;

/// The process's name (its checkpoint stream is `checkpoint-inventory-transfers`).
pub const NAME: &str = "inventory-transfers";
const SHIPPED: &str = "TransferShipped.";

#[derive(Debug, thiserror::Error)]
pub enum TransferProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Handler(#[from] HandlerError),
    #[error("{position}: {detail}")]
    Unreadable { position: String, detail: String },
}

impl TransferProcessError {
    /// An outage (retried from the checkpoint) rather than a refusal (skipped and logged).
    fn is_retryable(&self) -> bool {
        match self {
            TransferProcessError::Store(_) => true,
            TransferProcessError::Handler(e) => e.refusal().is_none(),
            TransferProcessError::Unreadable { .. } => false,
        }
    }
}

/// Follows shipments and records them in transit at their destinations.
#[derive(Clone)]
pub struct TransferProcess {
    store: DynEventStore,
    stock: StockHandlers,
}

impl TransferProcess {
    pub fn new(store: DynEventStore, stock: StockHandlers) -> Self {
        TransferProcess { store, stock }
    }

    /// Follows the store from the checkpoint until the task is aborted; after an outage it
    /// starts again from the checkpoint.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run(None).await {
                    tracing::warn!(error = %e, "transfer process stopped; restarting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    /// Handles shipments from the checkpoint until none arrives for `idle`; returns how many
    /// events it handled. For tests and tools.
    pub async fn run_until_idle(&self, idle: Duration) -> Result<usize, TransferProcessError> {
        self.run(Some(idle)).await
    }

    async fn run(&self, idle: Option<Duration>) -> Result<usize, TransferProcessError> {
        let filter = SubscriptionFilter::event_types([SHIPPED]);
        Follower::start(self.store.clone(), NAME, filter)
            .await?
            .run(
                idle,
                |event| async move { self.handle(&event).await },
                TransferProcessError::is_retryable,
                |position, event_type, e| {
                    tracing::error!(%position, event_type, error = %e,
                        "a shipped transfer could not be recorded at its destination; skipped")
                },
            )
            .await
    }

    /// Records the shipment one `TransferShipped` event names in transit at its destination.
    pub async fn handle(&self, event: &RecordedEvent) -> Result<(), TransferProcessError> {
        if event.category() != crate::CATEGORY || !event.event_type.starts_with(SHIPPED) {
            return Ok(());
        }
        let unreadable = |detail: String| TransferProcessError::Unreadable {
            position: event.position.to_string(),
            detail,
        };
        let shipped = match StockEvent::decode(&event.event_type, &event.data) {
            Some(Ok(StockEvent::TransferShipped(s))) => s,
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(unreadable(e.to_string())),
            None => return Err(unreadable("unknown event version".into())),
        };
        let (sku, from) = event
            .stream
            .strip_prefix("inventory-")
            .and_then(|rest| rest.split_once('@'))
            .ok_or_else(|| unreadable(format!("{} is not a stock stream", event.stream)))?;
        let metadata = Metadata::caused_by(event, Actor::system(NAME), event.metadata.occurred_at);
        let command: StockCommand = in_transit(from, &shipped);
        self.stock
            .execute(sku, &shipped.to_location, vec![command], metadata)
            .await?;
        Ok(())
    }
}
