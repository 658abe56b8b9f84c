//! Catalog commands: load the SKU's stream → decide → append with the loaded revision, and on a
//! concurrent write (another request, another process) reload and decide again
//! ([`ichigen_shared::aggregate::execute`]).
//!
//! Catalog items change rarely and one at a time (a PIM export), so optimistic concurrency is
//! enough here: no per-stream writer as for hot stock items.

use crate::domain::catalog::{
    decide, stream_name, validate_sku, CatalogCommand, CatalogError, CatalogEvent, CatalogItem,
    CatalogState,
};
use ichigen_shared::aggregate::{self, fold_stream, Encoding, ExecuteError, FoldError, Start};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::{DynEventStore, Position, StoreError};

const ENCODING: Encoding<CatalogEvent> = Encoding {
    event_type: CatalogEvent::event_type,
    payload: CatalogEvent::payload_json,
};

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
        let executed = aggregate::execute(
            &self.store,
            &stream,
            CatalogEvent::decode,
            CatalogState::apply,
            &ENCODING,
            Start::Load,
            &metadata,
            |state| decide(state, sku, &command),
        )
        .await
        .map_err(|e| match e {
            ExecuteError::Decide(e) => CatalogHandlerError::Refused(e),
            ExecuteError::Fold(e) => CatalogHandlerError::Load(e),
            ExecuteError::Store(e) => CatalogHandlerError::Store(e),
            ExecuteError::Encode(detail) => CatalogHandlerError::Encode {
                stream: stream.clone(),
                detail,
            },
            ExecuteError::Contended(stream) => CatalogHandlerError::Contended(stream),
        })?;
        let item = executed
            .state
            .item
            .ok_or_else(|| CatalogError::UnknownItem {
                sku: sku.to_string(),
            })?;
        Ok(CatalogAccepted {
            events: executed.events,
            item,
            position: executed.position,
        })
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
