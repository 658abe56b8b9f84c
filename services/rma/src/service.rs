//! The returns service as one value: handlers, the returns view and the ports to the other
//! services, built once per process and shared by GraphQL, the WMS API and the processes.
//!
//! # Money spans returns
//!
//! A refund may give back at most what the order still has captured, across every return of
//! the order, and the order records each refund (through its payment port). So a refund reads
//! the order's facts, computes the quote, pays through the order and records the refund on the
//! return, all under the order's lock ([`RmaHandlers::lock_order`], the one requests take): two
//! returns of one order never both spend the same money. The order checks the cap again when
//! it records the refund, so even a second process could not pay beyond it; it would be
//! refused there.
//!
//! Every payment operation is named after the return and how many settlements it has
//! (`rma:<id>:refund:<n>`), so a retry after a crash between paying and recording pays
//! nothing twice: the order answers the same operation with its first answer.

use crate::domain::rma::COUNTER_RECEIPT;
use crate::domain::{
    exchange_terms, refund_quote, OrderFacts, ReceivedLine, RequestedLine, Rma, RmaCommand,
    RmaError,
};
use crate::handlers::{rma_id_for, ReturnRequest, RmaExecuted, RmaHandlerError, RmaHandlers};
use crate::ports::{
    CatalogPort, ExchangeLine, ExchangeRequest, LocationsPort, OrdersPort, PortError, StockPort,
};
use crate::process::disposition::DispositionProcess;
use crate::projections::ReturnsView;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use ichigen_shared::projection::{ProjectionHandle, WaitError};
use ichigen_shared::store::{DynEventStore, Position};
use ichigen_shared::tasks::{BackgroundTasks, Processes};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a read waits for the returns view to reach a write's position.
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// Why a returns operation failed. `Handler` refusals and `Port` refusals are the caller's to
/// fix; the rest are faults (retry as it was).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Handler(#[from] RmaHandlerError),
    /// The order, stock or catalog service refused or failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// No such order, or (for a customer) not theirs: the two look the same, so that a
    /// customer cannot probe other customers' order ids.
    #[error("order {0} does not exist")]
    OrderNotFound(Uuid),
}

impl From<RmaError> for ServiceError {
    fn from(e: RmaError) -> Self {
        ServiceError::Handler(RmaHandlerError::Refused(e))
    }
}

impl ServiceError {
    /// A shared `ErrorCode` wire value (`INVALID_INPUT`, `NOT_FOUND`, `CONFLICT`, `INTERNAL`).
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Handler(e) => e.code(),
            ServiceError::Port(PortError::Refused { code, .. }) => code,
            ServiceError::Port(PortError::Unavailable(_)) => "INTERNAL",
            ServiceError::OrderNotFound(_) => "NOT_FOUND",
        }
    }

    /// The input field to blame (a camelCase path such as `lines.0.qty`), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Handler(e) => e.field(),
            ServiceError::Port(PortError::Refused { field, .. }) => field.as_deref(),
            ServiceError::Port(PortError::Unavailable(_)) => None,
            ServiceError::OrderNotFound(_) => Some("orderId"),
        }
    }

    /// Whether the caller can fix it (a payload error) rather than a fault.
    pub fn is_refusal(&self) -> bool {
        self.code() != "INTERNAL"
    }
}

/// What the returns service uses of the other services.
pub struct RmaPorts {
    pub orders: Arc<dyn OrdersPort>,
    pub stock: Arc<dyn StockPort>,
    pub catalog: Arc<dyn CatalogPort>,
    pub locations: Arc<dyn LocationsPort>,
}

/// A counter return: what store staff accept in one step.
#[derive(Debug, Clone)]
pub struct CounterReturn {
    pub order_id: Uuid,
    pub lines: Vec<RequestedLine>,
    pub note: String,
    pub idempotency_key: String,
}

#[derive(Clone)]
pub struct RmaService {
    pub store: DynEventStore,
    pub clock: Arc<dyn Clock>,
    pub handlers: RmaHandlers,
    pub view: Arc<ReturnsView>,
    pub view_handle: ProjectionHandle,
    pub orders: Arc<dyn OrdersPort>,
    stock: Arc<dyn StockPort>,
    catalog: Arc<dyn CatalogPort>,
    locations: Arc<dyn LocationsPort>,
    /// The background processes this service started, stopped by [`Self::shutdown`].
    tasks: BackgroundTasks,
}

impl RmaService {
    /// Builds the handlers and starts the returns view, without background processes (tests
    /// drive [`Self::disposition`] by hand). Must run inside a Tokio runtime.
    pub fn start(
        store: DynEventStore,
        clock: Arc<dyn Clock>,
        orders: Arc<dyn OrdersPort>,
        stock: Arc<dyn StockPort>,
        catalog: Arc<dyn CatalogPort>,
        locations: Arc<dyn LocationsPort>,
    ) -> Self {
        let handlers = RmaHandlers::new(store.clone(), clock.clone());
        let (view, view_handle) = ReturnsView::spawn(store.clone());
        RmaService {
            store,
            clock,
            handlers,
            view,
            view_handle,
            orders,
            stock,
            catalog,
            locations,
            tasks: BackgroundTasks::default(),
        }
    }

    /// [`Self::start`] and, with [`Processes::Run`], the stock disposition process
    /// (checkpointed; keyed by unit): graded units go back to stock, into resale stock, or are
    /// written off. [`Self::shutdown`] stops it.
    pub fn start_with(
        store: DynEventStore,
        clock: Arc<dyn Clock>,
        ports: RmaPorts,
        processes: Processes,
    ) -> Self {
        let service = Self::start(
            store,
            clock,
            ports.orders,
            ports.stock,
            ports.catalog,
            ports.locations,
        );
        if processes == Processes::Run {
            service.tasks.push(service.disposition().spawn());
        }
        service
    }

    /// Stops the background processes. Call before closing the store.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// Whether the background processes are running (none started, or stopped: `false`).
    pub fn processes_running(&self) -> bool {
        self.tasks.running()
    }

    /// Units may only be received where returns are taken: refused (nothing changes) at an
    /// unknown location or one without the `RETURNS` capability.
    fn check_receiving(&self, location: &str) -> Result<(), ServiceError> {
        match self.locations.takes_returns(location) {
            Some(true) => Ok(()),
            Some(false) => Err(PortError::refused(
                "INVALID_INPUT",
                Some("location"),
                format!("location {location} does not take returns"),
            )
            .into()),
            None => Err(PortError::refused(
                "NOT_FOUND",
                Some("location"),
                format!("location {location} does not exist"),
            )
            .into()),
        }
    }

    /// The projections readiness waits for.
    pub fn projections(&self) -> Vec<ProjectionHandle> {
        vec![self.view_handle.clone()]
    }

    /// The stock disposition process over this service's ports.
    pub fn disposition(&self) -> DispositionProcess {
        DispositionProcess::new(self.store.clone(), self.stock.clone(), self.catalog.clone())
    }

    /// Waits until the returns view reached `position` (read-your-writes for `atLeast`).
    pub async fn wait_for(&self, position: Option<Position>) -> Result<(), WaitError> {
        match position {
            Some(p) => self.view_handle.wait_for(p, VIEW_WAIT).await,
            None => Ok(()),
        }
    }

    /// The order a return would be for, as `actor` may see it: a customer sees only their
    /// own orders (anyone else's is "not found").
    pub async fn order_facts(
        &self,
        actor: &Actor,
        order_id: Uuid,
    ) -> Result<OrderFacts, ServiceError> {
        let facts = self
            .orders
            .facts(order_id)
            .await?
            .ok_or(ServiceError::OrderNotFound(order_id))?;
        if actor.role == Role::Customer && facts.customer_id.as_deref() != Some(&actor.subject) {
            return Err(ServiceError::OrderNotFound(order_id));
        }
        Ok(facts)
    }

    /// A customer (their own order) or an agent requests a return. The return id is derived
    /// from the actor and `idempotency_key`, so a retried request decides nothing new.
    pub async fn request(
        &self,
        actor: &Actor,
        order_id: Uuid,
        lines: Vec<RequestedLine>,
        note: String,
        idempotency_key: &str,
        metadata: Metadata,
    ) -> Result<RmaExecuted, ServiceError> {
        if idempotency_key.trim().is_empty() {
            return Err(RmaError::InvalidInput {
                field: "idempotencyKey".into(),
                reason: "must not be empty",
            }
            .into());
        }
        let facts = self.order_facts(actor, order_id).await?;
        let rma_id = rma_id_for(&actor.subject, idempotency_key);
        let request = ReturnRequest {
            lines,
            requested_by: actor.subject.clone(),
            note,
        };
        Ok(self
            .handlers
            .request(rma_id, request, facts, metadata)
            .await?)
    }

    /// Store staff accept a return at their counter: requested, approved (by them, unless the
    /// reasons approve it already) and every requested unit received at `store`, in one step.
    /// Retried with the same key, each step is a no-op.
    pub async fn accept_at_counter(
        &self,
        staff: &Actor,
        store: &str,
        counter: CounterReturn,
        metadata: Metadata,
    ) -> Result<RmaExecuted, ServiceError> {
        self.check_receiving(store)?;
        let requested = self
            .request(
                staff,
                counter.order_id,
                counter.lines,
                counter.note,
                &counter.idempotency_key,
                metadata.clone(),
            )
            .await?;
        let rma_id = rma_id_of(&requested.state)?;
        let approved = self
            .handlers
            .execute(
                rma_id,
                RmaCommand::Approve {
                    note: format!("accepted at the counter of {store}"),
                    by: staff.subject.clone(),
                },
                metadata.clone(),
            )
            .await?;
        let lines: Vec<ReceivedLine> = approved
            .state
            .lines
            .iter()
            .filter(|l| l.line.qty > l.received)
            .map(|l| ReceivedLine::new(l.line.rma_line_id.clone(), l.line.qty - l.received))
            .collect();
        if lines.is_empty() {
            return Ok(approved);
        }
        let received = self
            .handlers
            .execute(
                rma_id,
                RmaCommand::Receive {
                    receipt_id: format!("{COUNTER_RECEIPT}{rma_id}"),
                    location: store.to_owned(),
                    lines,
                    in_person: true,
                },
                metadata,
            )
            .await?;
        Ok(received)
    }

    /// Refunds every settleable unit of the return through the order's payment (see the
    /// module documentation for how the cap holds across returns).
    pub async fn refund(
        &self,
        rma_id: Uuid,
        metadata: Metadata,
    ) -> Result<RmaExecuted, ServiceError> {
        let order_id = self.order_of(rma_id).await?;
        let _settling = self.handlers.lock_order(order_id).await;
        let (rma, _) = self
            .handlers
            .load(rma_id)
            .await
            .map_err(RmaHandlerError::from)?;
        let facts = self
            .orders
            .facts(order_id)
            .await?
            .ok_or(ServiceError::OrderNotFound(order_id))?;
        let operation = format!("rma:{rma_id}:refund:{}", rma.refunds.len() + 1);
        // A retry of a refund paid but not recorded here: what it paid is refundable again
        // for this computation, so the quote (and the operation's amount) comes out the same.
        let paid_before = self.orders.refunded_under(order_id, &operation).await?;
        let mut left = facts.refundable_left();
        if let Some(paid) = paid_before {
            left = Money::new(left.amount + paid.amount, left.currency);
        }
        let quote = refund_quote(&rma, left)?;
        let payment_reference = if quote.amount.amount.is_zero() {
            // Nothing left to give back (fees ate it, or the cap is reached): no payment
            // operation, but the units are settled.
            format!("{operation}:nothing-to-pay")
        } else {
            self.orders
                .refund(order_id, &operation, quote.amount, metadata.clone())
                .await?
        };
        Ok(self
            .handlers
            .execute(
                rma_id,
                RmaCommand::IssueRefund {
                    refundable_left: left,
                    payment_reference,
                },
                metadata,
            )
            .await?)
    }

    /// Exchanges every settleable unit for a replacement order, placed for the return's
    /// customer and paid first by the units' value. When the replacement costs more, its own
    /// payment authorizes the difference; when less, the difference is refunded on the
    /// original order.
    pub async fn exchange(
        &self,
        rma_id: Uuid,
        lines: Vec<ExchangeLine>,
        metadata: Metadata,
    ) -> Result<RmaExecuted, ServiceError> {
        let order_id = self.order_of(rma_id).await?;
        let _settling = self.handlers.lock_order(order_id).await;
        let (rma, _) = self
            .handlers
            .load(rma_id)
            .await
            .map_err(RmaHandlerError::from)?;
        let header = rma
            .header
            .as_ref()
            .ok_or(RmaHandlerError::NotFound(rma_id))?;
        let credit = exchange_terms(&rma, Money::zero(header.currency))?.credit;
        let n = rma.exchanges.len() + 1;
        let placed = self
            .orders
            .place_exchange(
                ExchangeRequest {
                    rma_id,
                    customer_id: header.customer_id.clone(),
                    lines,
                    credit,
                    idempotency_key: format!("rma:{rma_id}:exchange:{n}"),
                },
                metadata.clone(),
            )
            .await?;
        let terms = exchange_terms(&rma, placed.total)?;
        if terms.difference.amount.is_sign_negative() && !terms.difference.amount.is_zero() {
            // Like a refund, never more than the order still has captured: the units' value
            // may exceed the money taken (an exchange credit paid part of them), and the order
            // would refuse it, after the replacement order was placed. A retry adds back what
            // this operation paid already, so it asks the same amount again.
            let operation = format!("rma:{rma_id}:exchange:{n}:difference");
            let mut left = self
                .orders
                .facts(order_id)
                .await?
                .ok_or(ServiceError::OrderNotFound(order_id))?
                .refundable_left()
                .amount;
            if let Some(paid) = self.orders.refunded_under(order_id, &operation).await? {
                left += paid.amount;
            }
            let due = Money::new(
                (-terms.difference.amount).min(left),
                terms.difference.currency,
            );
            if !due.amount.is_zero() {
                self.orders
                    .refund(order_id, &operation, due, metadata.clone())
                    .await?;
            }
        }
        Ok(self
            .handlers
            .execute(
                rma_id,
                RmaCommand::RecordExchange {
                    exchange_order_id: placed.order_id,
                    replacement_total: placed.total,
                },
                metadata,
            )
            .await?)
    }

    /// Any other command on an existing return (approve, reject, receive, grade, close).
    pub async fn execute(
        &self,
        rma_id: Uuid,
        command: RmaCommand,
        metadata: Metadata,
    ) -> Result<RmaExecuted, ServiceError> {
        if let RmaCommand::Receive { location, .. } = &command {
            self.check_receiving(location)?;
        }
        Ok(self.handlers.execute(rma_id, command, metadata).await?)
    }

    /// The return as the write side has it (`None`: no such return).
    pub async fn load(&self, rma_id: Uuid) -> Result<Option<Rma>, ServiceError> {
        let (rma, _) = self
            .handlers
            .load(rma_id)
            .await
            .map_err(RmaHandlerError::from)?;
        Ok(rma.exists().then_some(rma))
    }

    async fn order_of(&self, rma_id: Uuid) -> Result<Uuid, ServiceError> {
        let rma = self
            .load(rma_id)
            .await?
            .ok_or(RmaHandlerError::NotFound(rma_id))?;
        rma_order(&rma).ok_or_else(|| RmaHandlerError::NotFound(rma_id).into())
    }
}

fn rma_order(rma: &Rma) -> Option<Uuid> {
    rma.header.as_ref().map(|h| h.order_id)
}

fn rma_id_of(rma: &Rma) -> Result<Uuid, ServiceError> {
    rma.header.as_ref().map(|h| h.rma_id).ok_or_else(|| {
        ServiceError::Port(PortError::Unavailable("a request left no return".into()))
    })
}
