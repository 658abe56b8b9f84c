//! Fulfillment commands: load → decide → append with the loaded revision, retry on conflict.
//!
//! Fulfillment orders see little contention (one store's staff, the WMS, the order process),
//! so plain optimistic concurrency is enough here; the hot-stream writer of the inventory
//! service would be overkill.

use crate::domain::{
    decide, stream_name, Fulfillment, FulfillmentCommand, FulfillmentError, FulfillmentEvent,
};
use ichigen_shared::aggregate::{fold_stream, FoldError};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use std::sync::Arc;
use uuid::Uuid;

/// Reloads after a concurrent write before giving up.
const MAX_CONFLICT_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum FulfillmentHandlerError {
    #[error(transparent)]
    Refused(#[from] FulfillmentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
    #[error("fulfillment {0} kept changing under concurrent writers; try again")]
    Contended(Uuid),
}

/// What an accepted command did.
#[derive(Debug, Clone)]
pub struct FulfillmentAccepted {
    pub events: Vec<FulfillmentEvent>,
    /// The fulfillment order after the command.
    pub state: Fulfillment,
    /// Store position reached; `None` when the command changed nothing (a retry).
    pub position: Option<Position>,
}

#[derive(Clone)]
pub struct FulfillmentHandlers {
    store: DynEventStore,
    clock: Arc<dyn Clock>,
}

impl FulfillmentHandlers {
    pub fn new(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        FulfillmentHandlers { store, clock }
    }

    pub async fn load(
        &self,
        fulfillment_id: Uuid,
    ) -> Result<(Fulfillment, Option<u64>), FulfillmentHandlerError> {
        Ok(fold_stream(
            &self.store,
            &stream_name(&fulfillment_id),
            FulfillmentEvent::decode,
            Fulfillment::apply,
        )
        .await?)
    }

    pub async fn execute(
        &self,
        fulfillment_id: Uuid,
        command: FulfillmentCommand,
        metadata: Metadata,
    ) -> Result<FulfillmentAccepted, FulfillmentHandlerError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (mut state, revision) = self.load(fulfillment_id).await?;
            let events = decide(&state, &command, self.clock.now())?;
            for e in &events {
                state.apply(e);
            }
            if events.is_empty() {
                return Ok(FulfillmentAccepted {
                    events,
                    state,
                    position: None,
                });
            }
            let mut new_events = Vec::with_capacity(events.len());
            for e in &events {
                new_events.push(NewEvent {
                    id: Uuid::new_v4(),
                    event_type: e.event_type().to_string(),
                    data: e
                        .payload_json()
                        .map_err(|e| FulfillmentHandlerError::Encode(e.to_string()))?,
                    metadata: metadata.clone(),
                });
            }
            match self
                .store
                .append(
                    &stream_name(&fulfillment_id),
                    ExpectedRevision::after(revision),
                    new_events,
                )
                .await
            {
                Ok(appended) => {
                    return Ok(FulfillmentAccepted {
                        events,
                        state,
                        position: Some(appended.position),
                    })
                }
                Err(StoreError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FulfillmentHandlerError::Contended(fulfillment_id))
    }
}
