//! The order service as one value: the catalog, the order handlers and their ports, built once
//! per process and shared by GraphQL, the integration API and the processes.

use crate::catalog_service::CatalogService;
use crate::handlers::order::OrderHandlers;
use crate::payment::PaymentProvider;
use crate::ports::{FulfillmentPort, InventoryPort};
use crate::process::fulfillment_reactions::FulfillmentReactions;
use crate::projections::order_status::OrderStatusView;
use ichigen_shared::clock::Clock;
use ichigen_shared::projection::ProjectionHandle;
use ichigen_shared::store::DynEventStore;
use ichigen_shared::tasks::{BackgroundTasks, Processes};
use std::sync::Arc;

#[derive(Clone)]
pub struct OrderService {
    pub store: DynEventStore,
    pub clock: Arc<dyn Clock>,
    pub catalog: CatalogService,
    pub orders: OrderHandlers,
    /// Orders with their fulfillment and payment state, timeline and post-purchase messages.
    pub status: Arc<OrderStatusView>,
    pub status_handle: ProjectionHandle,
    /// The background processes this service started, stopped by [`Self::shutdown`].
    tasks: BackgroundTasks,
}

impl OrderService {
    /// Starts the catalog view and builds the handlers over the given ports, without a
    /// fulfillment port or background processes (tests, tools, a benchmark's seeding). Must run
    /// inside a Tokio runtime.
    pub fn start(
        store: DynEventStore,
        clock: Arc<dyn Clock>,
        inventory: Arc<dyn InventoryPort>,
        payments: Arc<dyn PaymentProvider>,
    ) -> Self {
        let catalog = CatalogService::start(store.clone(), clock.clone());
        let orders = OrderHandlers::new(
            store.clone(),
            catalog.view.clone(),
            inventory,
            payments,
            clock.clone(),
        );
        let status = Arc::new(OrderStatusView::new());
        let status_handle = ichigen_shared::projection::spawn(store.clone(), status.clone());
        OrderService {
            store,
            clock,
            catalog,
            orders,
            status,
            status_handle,
            tasks: BackgroundTasks::default(),
        }
    }

    /// [`Self::start`] with the fulfillment port that decides cancellations and, with
    /// [`Processes::Run`], the service's processes: the fulfillment reactions (checkpointed:
    /// fulfillment steps → the order, the order's events → stock and payment) and the
    /// [`hold_sweep`](crate::process::hold_sweep). [`Self::shutdown`] stops them.
    pub fn start_with(
        store: DynEventStore,
        clock: Arc<dyn Clock>,
        inventory: Arc<dyn InventoryPort>,
        payments: Arc<dyn PaymentProvider>,
        fulfillment: Arc<dyn FulfillmentPort>,
        processes: Processes,
    ) -> Self {
        let service = Self::start(store, clock, inventory, payments).with_fulfillment(fulfillment);
        if processes == Processes::Run {
            let reactions = FulfillmentReactions::new(
                service.store.clone(),
                service.orders.clone(),
                service.clock.clone(),
            );
            service.tasks.push(reactions.spawn());
            service
                .tasks
                .push(crate::process::hold_sweep::spawn(service.orders.clone()));
        }
        service
    }

    /// Stops the background processes (idempotent, so one cut off mid-pass is done again by
    /// the next start). Call before closing the store.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// Whether the background processes are running (none started, or stopped: `false`).
    pub fn processes_running(&self) -> bool {
        self.tasks.running()
    }

    /// Cancels units a location holds through the fulfillment service, which decides whether
    /// they are still cancellable ([`crate::handlers::cancel`]).
    pub fn with_fulfillment(mut self, port: Arc<dyn FulfillmentPort>) -> Self {
        self.orders = self.orders.with_fulfillment(port);
        self
    }

    /// The projections readiness waits for.
    pub fn projections(&self) -> Vec<ProjectionHandle> {
        let mut all = self.catalog.projections();
        all.push(self.status_handle.clone());
        all
    }
}
