//! Catalog commands: load the SKU's stream → decide → append with the loaded revision, and on a
//! concurrent write (another request, another process) reload and decide again.
//!
//! Catalog items change rarely and one at a time (a PIM export), so optimistic concurrency is
//! enough here: no per-stream writer as for hot stock items.

use crate::domain::catalog::{
    decide, stream_name, validate_sku, CatalogCommand, CatalogError, CatalogEvent, CatalogItem,
    CatalogState,
};
use ichigen_shared::aggregate::{fold_stream, FoldError};
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use uuid::Uuid;

/// Reloads after a concurrent write to the same item before giving up.
const MAX_CONFLICT_RETRIES: usize = 8;

/// Why a catalog command did not complete. Only `Refused` is the caller's to fix; the others
/// leave the outcome of an append unknown (`Store`) or cannot be fixed by retrying
/// (`Load(FoldError::Unreadable)`, an event this build cannot read).
#[derive(Debug, thiserror::Error)]
pub enum CatalogHandlerError {
    #[error("refused: {0}")]
    Refused(#[from] CatalogError),
    #[error(transparent)]
    Load(#[from] FoldError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("an event of {stream} cannot be encoded: {detail}")]
    Encode { stream: String, detail: String },
    #[error("stream {0} kept changing under concurrent writers; try again")]
    Contended(String),
}

impl CatalogHandlerError {
    /// Whether retrying the same command cannot help (an unreadable stream, an event that
    /// cannot be written).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CatalogHandlerError::Load(FoldError::Unreadable { .. })
                | CatalogHandlerError::Encode { .. }
        )
    }
}

/// What an accepted catalog command did.
#[derive(Clone, Debug)]
pub struct CatalogAccepted {
    /// The events appended (none when the command changed nothing).
    pub events: Vec<CatalogEvent>,
    /// The item after the command.
    pub item: CatalogItem,
    /// Store position reached; `None` when nothing was appended.
    pub position: Option<Position>,
}

/// The catalog command side of the order service.
#[derive(Clone)]
pub struct CatalogHandlers {
    store: DynEventStore,
}

impl CatalogHandlers {
    pub fn new(store: DynEventStore) -> Self {
        CatalogHandlers { store }
    }

    /// Decides `command` on `sku`'s item against its stream and appends the events.
    pub async fn execute(
        &self,
        sku: &str,
        command: CatalogCommand,
        metadata: Metadata,
    ) -> Result<CatalogAccepted, CatalogHandlerError> {
        validate_sku(sku)?;
        let stream = stream_name(sku);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (mut state, revision) = load(&self.store, &stream).await?;
            let events = decide(&state, sku, &command)?;
            for event in &events {
                state.apply(event);
            }
            let item = state.item.ok_or_else(|| CatalogError::UnknownItem {
                sku: sku.to_string(),
            })?;
            if events.is_empty() {
                return Ok(CatalogAccepted {
                    events,
                    item,
                    position: None,
                });
            }
            let mut new_events = Vec::with_capacity(events.len());
            for event in &events {
                new_events.push(NewEvent {
                    id: Uuid::new_v4(),
                    event_type: event.event_type().to_string(),
                    data: event
                        .payload_json()
                        .map_err(|e| CatalogHandlerError::Encode {
                            stream: stream.clone(),
                            detail: e.to_string(),
                        })?,
                    metadata: metadata.clone(),
                });
            }
            match self
                .store
                .append(&stream, ExpectedRevision::after(revision), new_events)
                .await
            {
                Ok(result) => {
                    return Ok(CatalogAccepted {
                        events,
                        item,
                        position: Some(result.position),
                    })
                }
                Err(StoreError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CatalogHandlerError::Contended(stream))
    }

    /// The item as its own stream has it (not the view); `None` if never defined.
    pub async fn load(&self, sku: &str) -> Result<Option<CatalogItem>, CatalogHandlerError> {
        validate_sku(sku)?;
        Ok(load(&self.store, &stream_name(sku)).await?.0.item)
    }
}

/// Loads and folds a catalog stream: the state and the revision it reflects.
pub(crate) async fn load(
    store: &DynEventStore,
    stream: &str,
) -> Result<(CatalogState, Option<u64>), CatalogHandlerError> {
    Ok(fold_stream(store, stream, CatalogEvent::decode, CatalogState::apply).await?)
}
