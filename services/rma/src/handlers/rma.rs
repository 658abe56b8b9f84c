//! Return streams (`rma-<uuid>`): requests, and every later step of a return.
//!
//! # What spans returns
//!
//! The domain checks one return against the numbers it is given. Two numbers span the returns
//! of an order, and the handler provides them:
//!
//! - **Units already taken per order line.** Two requests for the last returnable unit of a
//!   line, decided at once, would both see it free. So [`RmaHandlers::request`] serialises
//!   requests per order (a striped lock keyed by the order id) and, under that lock, computes
//!   each line's `already_returned_qty` from the order's other returns itself, replacing what
//!   the caller passed. The order's returns come from an in-memory index (order id → return
//!   ids) built from the store on first use ([`RmaHandlers::rebuild_index`]) and kept up to date
//!   by every request this process accepts.
//! - **Money already refunded.** The caller passes `refundable_left` to `IssueRefund`: the
//!   order's `captured − refunded`. Return refunds go through the order's payment
//!   ([`crate::service::RmaService::refund`]), so the order's `refunded` already includes them.
//!
//! The lock and the index are per process, which fits the embedded store (one process per data
//! directory). Several processes requesting returns of the same order against one KurrentDB
//! would each need to see the others' requests: that takes an order-level stream decided with
//! its revision, not this index.

use super::{PolicyHandlers, RmaExecuted, RmaHandlerError};
use crate::domain::rma::Decision;
use crate::domain::{
    decide, stream_name, OrderFacts, Policy, RequestReturn, RequestedLine, Rma, RmaCommand,
    RmaError, RmaEvent,
};
use chrono::{DateTime, Utc};
use ichigen_shared::aggregate::{self, fold_stream, Encoding, ExecuteError, FoldError, Start};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::ids::{category_of, ICHIGEN_NAMESPACE};
use ichigen_shared::money::{Currency, Money, MoneyError};
use ichigen_shared::store::{DynEventStore, Position};
use ichigen_shared::striped::StripedLock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const ENCODING: Encoding<RmaEvent> = Encoding {
    event_type: RmaEvent::event_type,
    payload: RmaEvent::payload_json,
};

/// Stripes of the per-order request lock: enough that unrelated orders rarely wait on each
/// other, few enough to allocate up front.
const REQUEST_STRIPES: usize = 256;

/// Events read per `read_all` page while rebuilding the index.
const READ_PAGE: usize = 4096;

/// The type prefix of the event that creates a return (every version of it names the order
/// and the return, which is all the index needs).
const REQUESTED_PREFIX: &str = "ReturnRequested.";

/// The return id of a request: the same caller and idempotency key always name the same
/// return, so a retried request lands on the stream the first attempt created and decides
/// nothing.
pub fn rma_id_for(requested_by: &str, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &ICHIGEN_NAMESPACE,
        format!("rma\n{requested_by}\n{idempotency_key}").as_bytes(),
    )
}

/// What the customer (or the agent acting for them) asks: a [`RequestReturn`] without the
/// return id (derived, see [`rma_id_for`]) and without the order facts (the caller's, passed
/// separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRequest {
    pub lines: Vec<RequestedLine>,
    /// The actor's subject.
    pub requested_by: String,
    /// The customer's comment (may be empty).
    pub note: String,
}

/// Order id → the returns requested for it, in the order this process learnt them. May name
/// a return whose request failed or is still in flight: readers load each stream and skip
/// what does not exist or belongs to another order.
#[derive(Default)]
struct ReturnsIndex {
    by_order: Mutex<HashMap<Uuid, Vec<Uuid>>>,
    /// Set once the store's history is in `by_order`: until then no request is decided, since
    /// it would not see the order's earlier returns.
    built: tokio::sync::OnceCell<()>,
}

impl ReturnsIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Uuid>>> {
        // The map holds plain ids and every update is one push or removal: a panic elsewhere
        // cannot leave it half-changed, so a poisoned lock is still usable.
        self.by_order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `rma_id` under `order_id`; `true` if it was not there.
    fn add(&self, order_id: Uuid, rma_id: Uuid) -> bool {
        let mut map = self.lock();
        let ids = map.entry(order_id).or_default();
        if ids.contains(&rma_id) {
            false
        } else {
            ids.push(rma_id);
            true
        }
    }

    fn remove(&self, order_id: Uuid, rma_id: Uuid) {
        let mut map = self.lock();
        if let Some(ids) = map.get_mut(&order_id) {
            ids.retain(|id| *id != rma_id);
            if ids.is_empty() {
                map.remove(&order_id);
            }
        }
    }

    fn of(&self, order_id: Uuid) -> Vec<Uuid> {
        self.lock().get(&order_id).cloned().unwrap_or_default()
    }
}

/// The returns' command side. Cheap to clone; clones share the request lock and the index, so
/// build it once per process (as the other services' handlers are).
#[derive(Clone)]
pub struct RmaHandlers {
    store: DynEventStore,
    clock: Arc<dyn Clock>,
    policy: PolicyHandlers,
    /// One request per order at a time in this process (striped by order id).
    requesting: Arc<StripedLock>,
    index: Arc<ReturnsIndex>,
}

impl RmaHandlers {
    pub fn new(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        RmaHandlers {
            policy: PolicyHandlers::new(store.clone()),
            store,
            clock,
            requesting: Arc::new(StripedLock::new(REQUEST_STRIPES)),
            index: Arc::new(ReturnsIndex::default()),
        }
    }

    /// One settlement per order at a time in this process: what a refund or an exchange may
    /// still give back spans the order's returns, so the service reads it, pays and records
    /// under this lock (the same one requests take). Never call [`Self::request`] while
    /// holding it.
    pub async fn lock_order(&self, order_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        self.requesting.lock(order_id).await
    }

    /// The policy handlers the returns decide against.
    pub fn policy(&self) -> &PolicyHandlers {
        &self.policy
    }

    /// A return and the revision it reflects (`Rma::default()` and `None`: no such return).
    pub async fn load(&self, rma_id: Uuid) -> Result<(Rma, Option<u64>), FoldError> {
        fold_stream(
            &self.store,
            &stream_name(rma_id),
            RmaEvent::decode,
            Rma::apply,
        )
        .await
    }

    /// Requests a return of `order`'s lines under `rma_id` (derive it with [`rma_id_for`]).
    ///
    /// What the caller supplies in `order` (read from the order service just before):
    /// - `order_id`, `customer_id`, `currency`;
    /// - per line: `line_id`, `sku`, `title`, `unit_price` (what was paid per unit),
    ///   `fulfilled_qty` (units delivered or picked up) and `fulfilled_at` (when; the return
    ///   windows start there). `already_returned_qty` is **ignored**: the handler computes it
    ///   from the order's other returns under the order's lock;
    /// - `captured` and `refunded` as the order has them (only validated here).
    ///
    /// Serialised per order in this process, so two requests for the last unit of a line
    /// cannot both be accepted. A retry under the same id with the same request decides no
    /// events and returns the return as it is (even if the window closed or the policy changed
    /// since); the same id with another request is refused (`RMA_EXISTS`).
    pub async fn request(
        &self,
        rma_id: Uuid,
        request: ReturnRequest,
        order: OrderFacts,
        metadata: Metadata,
    ) -> Result<RmaExecuted, RmaHandlerError> {
        self.ensure_index().await?;
        let order_id = order.order_id;
        let _serialised = self.requesting.lock(order_id).await;
        let (policy, _) = self.policy.load().await?;
        let taken = self.taken_by_returns(order_id, Some(rma_id)).await?;
        let mut order = order;
        for line in &mut order.lines {
            line.already_returned_qty = taken.get(&line.line_id).copied().unwrap_or(0);
        }
        let command = RmaCommand::Request(Box::new(RequestReturn {
            rma_id,
            order,
            lines: request.lines,
            requested_by: request.requested_by,
            note: request.note,
        }));
        let now = self.clock.now();
        // In the index before the append: a request cut off after its append (the caller
        // gave up) still counts for the next one. A stream that never came to be counts nothing.
        let added = self.index.add(order_id, rma_id);
        // The id is derived, so the stream is almost always new: decide on the empty state
        // first. A refusal there may be a retry whose conditions changed since (window
        // closed, reason retired): decide again on the stream as it is, which recognises it.
        let result = match self
            .run(rma_id, &command, &policy, now, Start::AssumeNew, &metadata)
            .await
        {
            Err(ExecuteError::Decide(_)) => {
                self.run(rma_id, &command, &policy, now, Start::Load, &metadata)
                    .await
            }
            other => other,
        };
        if added && matches!(result, Err(ExecuteError::Decide(_))) {
            // Refused: nothing was appended under this id for this order.
            self.index.remove(order_id, rma_id);
        }
        result.map_err(|e| RmaHandlerError::from_execute(e, Some(rma_id)))
    }

    /// Runs a command on an existing return: Approve, Reject, Receive, Grade (against the
    /// current policy), IssueRefund, RecordExchange, Close. A `Request` is passed on to
    /// [`Self::request`] (its `rma_id` must be `rma_id`), so it is serialised like any other.
    ///
    /// For `IssueRefund` the caller supplies `refundable_left`: the order's `captured −
    /// refunded` (which includes what returns refunded: they are paid through the order).
    pub async fn execute(
        &self,
        rma_id: Uuid,
        command: RmaCommand,
        metadata: Metadata,
    ) -> Result<RmaExecuted, RmaHandlerError> {
        let command = match command {
            RmaCommand::Request(r) => {
                if r.rma_id != rma_id {
                    return Err(RmaError::InvalidInput {
                        field: "rmaId".into(),
                        reason: "does not match the return the command is sent to",
                    }
                    .into());
                }
                let RequestReturn {
                    order,
                    lines,
                    requested_by,
                    note,
                    ..
                } = *r;
                let request = ReturnRequest {
                    lines,
                    requested_by,
                    note,
                };
                return self.request(rma_id, request, order, metadata).await;
            }
            other => other,
        };
        // Only a grade reads the policy (its grades); the rest need not pay for the read.
        let policy = match command {
            RmaCommand::Grade { .. } => self.policy.load().await?.0,
            _ => Policy::default(),
        };
        let now = self.clock.now();
        self.run(rma_id, &command, &policy, now, Start::Load, &metadata)
            .await
            .map_err(|e| RmaHandlerError::from_execute(e, Some(rma_id)))
    }

    /// The returns requested for `order_id` that this process knows of (the whole store's
    /// after the index is built; it is built here if it was not). May include ids whose
    /// request was refused or never appended: load each and skip those that do not exist.
    pub async fn returns_of(&self, order_id: Uuid) -> Result<Vec<Uuid>, RmaHandlerError> {
        self.ensure_index().await?;
        Ok(self.index.of(order_id))
    }

    /// Units of each order line (by order line id) taken by the order's returns that were not
    /// rejected, whatever their status (a closed return keeps its units). What
    /// [`Self::request`] puts in `already_returned_qty`; for display and quotes.
    pub async fn already_returned(
        &self,
        order_id: Uuid,
    ) -> Result<HashMap<String, i64>, RmaHandlerError> {
        self.ensure_index().await?;
        self.taken_by_returns(order_id, None).await
    }

    /// Money the order's returns refunded (`RefundIssued` amounts), in `currency` (the
    /// order's), for reports. Never add it to the order's `refunded`: return refunds are paid
    /// through the order, whose `refunded` counts them already.
    pub async fn refunded_total(
        &self,
        order_id: Uuid,
        currency: Currency,
    ) -> Result<Money, RmaHandlerError> {
        self.ensure_index().await?;
        let mut total = Money::zero(currency);
        for rma in self.returns_loaded(order_id).await? {
            for amount in rma.refunds.values() {
                total = total.checked_add(*amount).map_err(|e| match e {
                    MoneyError::CurrencyMismatch(..) => RmaError::CurrencyMismatch {
                        field: "currency".into(),
                        expected: amount.currency,
                        actual: currency,
                    },
                    _ => RmaError::Overflow {
                        field: "refunded".into(),
                    },
                })?;
            }
        }
        Ok(total)
    }

    /// Reads the store's history for every return request and adds what it finds to the index
    /// (merging, so requests accepted meanwhile stay). Runs by itself before the first request
    /// or query; call it at start-up to pay for it there. Returns how many returns it found.
    ///
    /// It pages through `read_all` up to the head seen at its start and keeps the
    /// `ReturnRequested` events of `rma-…` streams, as the projections replay (a filtered
    /// subscription could not tell when it has caught up). A request it cannot read is an
    /// error: an index missing a return would let its units be returned twice.
    pub async fn rebuild_index(&self) -> Result<usize, RmaHandlerError> {
        let found = self.scan_requests().await?;
        self.index.built.set(()).ok();
        Ok(found)
    }

    async fn ensure_index(&self) -> Result<(), RmaHandlerError> {
        self.index
            .built
            .get_or_try_init(|| async { self.scan_requests().await.map(|_| ()) })
            .await?;
        Ok(())
    }

    async fn scan_requests(&self) -> Result<usize, RmaHandlerError> {
        let Some(head) = self.store.head().await? else {
            return Ok(0);
        };
        let mut found: Vec<(Uuid, Uuid)> = Vec::new();
        let mut after: Option<Position> = None;
        while after.is_none_or(|a| a < head) {
            let page = self.store.read_all(after, READ_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            for e in &page {
                if category_of(&e.stream) != crate::CATEGORY
                    || !e.event_type.starts_with(REQUESTED_PREFIX)
                {
                    continue;
                }
                match RmaEvent::decode(&e.event_type, &e.data) {
                    Some(Ok(RmaEvent::ReturnRequested(r))) => found.push((r.order_id, r.rma_id)),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        return Err(FoldError::Unreadable {
                            stream: e.stream.to_string(),
                            detail: format!("{} at revision {}: {err}", e.event_type, e.revision),
                        }
                        .into())
                    }
                    None => {
                        return Err(FoldError::Unreadable {
                            stream: e.stream.to_string(),
                            detail: format!("unknown event type {}", e.event_type),
                        }
                        .into())
                    }
                }
            }
        }
        let count = found.len();
        for (order_id, rma_id) in found {
            self.index.add(order_id, rma_id);
        }
        Ok(count)
    }

    /// The order's returns as they are now (only those that exist and are for this order).
    async fn returns_loaded(&self, order_id: Uuid) -> Result<Vec<Rma>, RmaHandlerError> {
        let mut out = Vec::new();
        for rma_id in self.index.of(order_id) {
            let (rma, _) = self.load(rma_id).await?;
            if rma.header.as_ref().is_some_and(|h| h.order_id == order_id) {
                out.push(rma);
            }
        }
        Ok(out)
    }

    /// Units per order line taken by the order's returns that were not rejected, leaving out
    /// `except` (the return being requested: its retry must not count itself).
    async fn taken_by_returns(
        &self,
        order_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<HashMap<String, i64>, RmaHandlerError> {
        let mut taken: HashMap<String, i64> = HashMap::new();
        for rma in self.returns_loaded(order_id).await? {
            let skip = rma
                .header
                .as_ref()
                .is_some_and(|h| Some(h.rma_id) == except)
                || matches!(rma.decision, Some(Decision::Rejected { .. }));
            if skip {
                continue;
            }
            for l in &rma.lines {
                let qty = taken.entry(l.line.order_line_id.clone()).or_insert(0);
                *qty = qty.saturating_add(l.line.qty);
            }
        }
        Ok(taken)
    }

    async fn run(
        &self,
        rma_id: Uuid,
        command: &RmaCommand,
        policy: &Policy,
        now: DateTime<Utc>,
        start: Start,
        metadata: &Metadata,
    ) -> Result<RmaExecuted, ExecuteError<RmaError>> {
        aggregate::execute(
            &self.store,
            &stream_name(rma_id),
            RmaEvent::decode,
            Rma::apply,
            &ENCODING,
            start,
            metadata,
            |state| decide(state, command, policy, now),
        )
        .await
    }
}
