//! The inventory service as one value: its command handlers, its read models and its
//! processes, wired together once.
//!
//! Everything that talks to inventory (GraphQL, the WMS API, the order service in-process, the
//! expiry process) shares one [`InventoryService`]. That matters: the stock handlers keep one
//! writer per stream, and two handler sets in one process would be two writers per stream —
//! correct (the store's revision check catches it) but conflicting under load.

use crate::handlers::capacity::CapacityHandlers;
use crate::handlers::locations::{LocationCheck, LocationHandlers};
use crate::handlers::placement::Placements;
use crate::handlers::StockHandlers;
use crate::process::expiry::{ExpiryProcess, HoldTracker};
use crate::process::transfers::TransferProcess;
use crate::projections::capacity::CapacityView;
use crate::projections::view::InventoryView;
use ichigen_shared::clock::Clock;
use ichigen_shared::projection::{self, ProjectionHandle, WaitError};
use ichigen_shared::store::{DynEventStore, Position};
use ichigen_shared::tasks::BackgroundTasks;
use std::sync::Arc;
use std::time::Duration;

/// How long a read that asked for its own write waits at most.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the expiry process looks for holds that ran out (a look at the soonest expiry,
/// so cheap; a released hold is at most this late).
pub const EXPIRY_EVERY: Duration = Duration::from_secs(1);

pub use ichigen_shared::tasks::Processes;

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
    /// Order placements' holds: stock and daily capacity, all or nothing.
    pub placements: Placements,
    /// The inventory view every read uses.
    pub view: Arc<InventoryView>,
    pub view_handle: ProjectionHandle,
    /// What each location claimed of its daily capacity (planning and availability; the claim
    /// decides).
    pub capacity: Arc<CapacityView>,
    capacity_handle: ProjectionHandle,
    holds: Arc<HoldTracker>,
    holds_handle: ProjectionHandle,
    /// The background processes this service started, stopped by [`Self::shutdown`].
    tasks: BackgroundTasks,
}

impl InventoryService {
    /// Starts the read models (they replay the store, then follow it), builds the handlers and
    /// starts the service's background processes: the hold expiry (every [`EXPIRY_EVERY`]) and
    /// the transfer process. Must run inside a Tokio runtime; [`Self::shutdown`] stops them.
    pub fn start(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        Self::start_with(store, clock, Processes::Run)
    }

    /// [`Self::start`], with or without the background processes.
    pub fn start_with(store: DynEventStore, clock: Arc<dyn Clock>, processes: Processes) -> Self {
        let view = Arc::new(InventoryView::new());
        let view_handle = projection::spawn(store.clone(), view.clone());
        let holds = Arc::new(HoldTracker::default());
        let holds_handle = projection::spawn(store.clone(), holds.clone());
        let stock = StockHandlers::new(store.clone(), clock.clone())
            .with_location_check(LocationCheck::new(view.clone(), store.clone()));
        let locations = LocationHandlers::new(store.clone(), Some(view_handle.clone()));
        let capacity = Arc::new(CapacityView::new());
        let capacity_handle = projection::spawn(store.clone(), capacity.clone());
        let placements = Placements::new(
            stock.clone(),
            CapacityHandlers::new(store.clone(), clock.clone()),
            view.clone(),
            clock.clone(),
        );
        let service = InventoryService {
            store,
            clock,
            stock,
            locations,
            placements,
            view,
            view_handle,
            capacity,
            capacity_handle,
            holds,
            holds_handle,
            tasks: BackgroundTasks::default(),
        };
        if processes == Processes::Run {
            let expiry = service.expiry().spawn(EXPIRY_EVERY);
            let transfers = TransferProcess::new(service.store.clone(), service.stock.clone());
            service.tasks.push(expiry);
            service.tasks.push(transfers.spawn());
        }
        service
    }

    /// Stops the background processes [`Self::start`] started (each is idempotent, so one cut
    /// off mid-pass is simply done again by the next start). Call before closing the store.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// Whether the background processes are running (none started, or stopped: `false`).
    pub fn processes_running(&self) -> bool {
        self.tasks.running()
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
        vec![
            self.view_handle.clone(),
            self.holds_handle.clone(),
            self.capacity_handle.clone(),
        ]
    }

    /// Waits until the capacity view has applied `position` (a position a capacity claim or
    /// release returned). `None` returns at once.
    pub async fn wait_for_capacity(&self, position: Option<Position>) -> Result<(), WaitError> {
        match position {
            Some(p) => {
                self.capacity_handle
                    .wait_for(p, READ_YOUR_WRITES_TIMEOUT)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Orders `location` can still take on its local day at the clock's now (`None`:
    /// unlimited), from the capacity view (a moment behind the claims, which decide).
    pub fn capacity_left(&self, location: &crate::domain::Location) -> Option<i64> {
        self.left_of(
            &location.spec.code,
            location.spec.daily_capacity,
            location.spec.tz(),
        )
    }

    fn left_of(
        &self,
        code: &str,
        limit: Option<i64>,
        tz: ichigen_shared::local_day::Tz,
    ) -> Option<i64> {
        let limit = limit?;
        let today = ichigen_shared::local_day::local_date(tz, self.clock.now());
        Some((limit - self.capacity.used(code, today)).max(0))
    }

    /// Whether the location `code` can take another order today (unknown locations cannot).
    pub fn takes_orders_today(&self, code: &str) -> bool {
        self.view
            .with_location(code, |l| (l.spec.daily_capacity, l.spec.tz()))
            .is_some_and(|(limit, tz)| self.left_of(code, limit, tz).is_none_or(|left| left > 0))
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
