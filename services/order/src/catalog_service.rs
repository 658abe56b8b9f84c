//! The catalog as one value: its handlers and its view, wired together once per process and
//! shared by the PIM API and, in-process, by order placement (which prices lines from the
//! view, after [`CatalogService::wait_for`] when it must see a given write).

use crate::handlers::catalog::CatalogHandlers;
use crate::projections::catalog::CatalogView;
use ichigen_shared::clock::Clock;
use ichigen_shared::projection::{self, ProjectionHandle, WaitError};
use ichigen_shared::store::{DynEventStore, Position};
use std::sync::Arc;
use std::time::Duration;

/// How long a read that asked for its own write waits at most.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Handlers and view of the catalog.
#[derive(Clone)]
pub struct CatalogService {
    pub store: DynEventStore,
    pub clock: Arc<dyn Clock>,
    pub handlers: CatalogHandlers,
    /// The catalog view every read uses.
    pub view: Arc<CatalogView>,
    pub view_handle: ProjectionHandle,
}

impl CatalogService {
    /// Starts the view (it replays the store, then follows it) and builds the handlers. Must
    /// run inside a Tokio runtime; once per process (one view is enough for every reader).
    pub fn start(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        let view = Arc::new(CatalogView::new());
        let view_handle = projection::spawn(store.clone(), view.clone());
        CatalogService {
            handlers: CatalogHandlers::new(store.clone()),
            store,
            clock,
            view,
            view_handle,
        }
    }

    /// The projections readiness waits for.
    pub fn projections(&self) -> Vec<ProjectionHandle> {
        vec![self.view_handle.clone()]
    }

    /// Read-your-writes: waits until the view has applied `position` (a position a write
    /// returned). `None` returns at once.
    pub async fn wait_for(&self, position: Option<Position>) -> Result<(), WaitError> {
        match position {
            Some(p) => self.view_handle.wait_for(p, READ_YOUR_WRITES_TIMEOUT).await,
            None => Ok(()),
        }
    }
}
