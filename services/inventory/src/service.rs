//! The inventory service as one value: its command handlers, its read models and its
//! processes, wired together once.
//!
//! Everything that talks to inventory (GraphQL, the WMS API, the order service in-process, the
//! expiry process) shares one [`InventoryService`]. That matters: the stock handlers keep one
//! writer per stream, and two handler sets in one process would be two writers per stream —
//! correct (the store's revision check catches it) but conflicting under load.

use crate::handlers::locations::{LocationCheck, LocationHandlers};
use crate::handlers::StockHandlers;
use crate::process::expiry::{ExpiryProcess, HoldTracker};
use crate::projections::view::InventoryView;
use ichigen_shared::clock::Clock;
use ichigen_shared::projection::{self, ProjectionHandle, WaitError};
use ichigen_shared::store::{DynEventStore, Position};
use std::sync::Arc;
use std::time::Duration;

/// How long a read that asked for its own write waits at most.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// An open hold: who holds which units of a SKU at a location, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub owner: String,
    pub sku: String,
    pub location: String,
    pub reservation_id: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Handlers, view and processes of the inventory service.
#[derive(Clone)]

pub struct InventoryService {
    pub store: DynEventStore,
    pub clock: Arc<dyn Clock>,
    pub stock: StockHandlers,
    pub locations: LocationHandlers,
    /// The inventory view every read uses.
    pub view: Arc<InventoryView>,
    pub view_handle: ProjectionHandle,
    holds: Arc<HoldTracker>,
    holds_handle: ProjectionHandle,
}

impl InventoryService {
    /// Starts the read models (they replay the store, then follow it) and builds the handlers.
    /// Must run inside a Tokio runtime.
    pub fn start(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        let view = Arc::new(InventoryView::new());
        let view_handle = projection::spawn(store.clone(), view.clone());
        let holds = Arc::new(HoldTracker::default());
        let holds_handle = projection::spawn(store.clone(), holds.clone());
        let stock = StockHandlers::new(store.clone(), clock.clone())
            .with_location_check(LocationCheck::new(view.clone(), store.clone()));
        let locations = LocationHandlers::new(store.clone(), Some(view_handle.clone()));
        InventoryService {
            store,
            clock,
            stock,
            locations,
            view,
            view_handle,
            holds,
            holds_handle,
        }
    }

    /// Releases expired cart holds every `every` (the process is idempotent; see
    /// [`crate::process::expiry`]).
    pub fn spawn_expiry(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        ExpiryProcess::new(self.holds.clone(), self.stock.clone(), self.clock.clone()).spawn(every)
    }

    /// The expiry process for driving by hand (tests with a manual clock).
    pub fn expiry(&self) -> ExpiryProcess {
        ExpiryProcess::new(self.holds.clone(), self.stock.clone(), self.clock.clone())
    }

    /// Waits until the hold tracker has replayed the store (right after start it may not have).
    pub async fn holds_caught_up(&self) -> Result<(), WaitError> {
        self.holds_handle.wait_caught_up().await
    }

    /// Open holds (with or without an expiry) of owners starting with `owner_prefix`.
    pub fn holds_of(&self, owner_prefix: &str) -> Vec<Hold> {
        self.holds
            .holds_of(owner_prefix)
            .into_iter()
            .filter_map(|h| {
                let (sku, location) = h.stream.strip_prefix("inventory-")?.split_once('@')?;
                Some(Hold {
                    owner: h.owner,
                    sku: sku.to_string(),
                    location: location.to_string(),
                    reservation_id: h.reservation_id,
                    since: h.since,
                })
            })
            .collect()
    }

    /// The projections readiness waits for.
    pub fn projections(&self) -> Vec<ProjectionHandle> {
        vec![self.view_handle.clone(), self.holds_handle.clone()]
    }

    /// Read-your-writes: waits until the inventory view has applied `position` (a position a
    /// write returned). `None` returns at once.
    pub async fn wait_for(&self, position: Option<Position>) -> Result<(), WaitError> {
        match position {
            Some(p) => self.view_handle.wait_for(p, READ_YOUR_WRITES_TIMEOUT).await,
            None => Ok(()),
        }
    }
}
