//! Fulfillment commands: load → decide → append with the loaded revision, retry on conflict.
//!
//! Fulfillment orders see little contention (one store's staff, the WMS, the order process),
//! so plain optimistic concurrency is enough here; the hot-stream writer of the inventory
//! service would be overkill.

use crate::domain::{
    decide, stream_name, Fulfillment, FulfillmentCommand, FulfillmentError, FulfillmentEvent,
};
use ichigen_shared::aggregate::{self, fold_stream, Encoding, ExecuteError, FoldError, Start};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::{DynEventStore, Position, StoreError};
use std::sync::Arc;
use uuid::Uuid;

const ENCODING: Encoding<FulfillmentEvent> = Encoding {
    event_type: FulfillmentEvent::event_type,
    payload: FulfillmentEvent::payload_json,
};

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

    /// Runs a command ([`ichigen_shared::aggregate::execute`]). `Create` starts from an empty
    /// state and appends with `NoStream` (its id is derived, so the stream is almost always
    /// new); a retry finds the stream, reloads and decides again (no events).
    pub async fn execute(
        &self,
        fulfillment_id: Uuid,
        command: FulfillmentCommand,
        metadata: Metadata,
    ) -> Result<FulfillmentAccepted, FulfillmentHandlerError> {
        let start = match command {
            FulfillmentCommand::Create { .. } => Start::AssumeNew,
            _ => Start::Load,
        };
        let now = self.clock.now();
        let executed = aggregate::execute(
            &self.store,
            &stream_name(&fulfillment_id),
            FulfillmentEvent::decode,
            Fulfillment::apply,
            &ENCODING,
            start,
            &metadata,
            |state| decide(state, &command, now),
        )
        .await
        .map_err(|e| match e {
            ExecuteError::Decide(e) => FulfillmentHandlerError::Refused(e),
            ExecuteError::Fold(e) => FulfillmentHandlerError::Fold(e),
            ExecuteError::Store(e) => FulfillmentHandlerError::Store(e),
            ExecuteError::Encode(e) => FulfillmentHandlerError::Encode(e),
            ExecuteError::Contended(_) => FulfillmentHandlerError::Contended(fulfillment_id),
        })?;
        Ok(FulfillmentAccepted {
            events: executed.events,
            state: executed.state,
            position: executed.position,
        })
    }
}
