//! Placing an order: price → source → reserve → authorize → record, all or nothing.
//!
//! The order id is derived from the caller and the idempotency key, so a retried request lands
//! on the same stream, the same reservation ids and the same payment id: every step is
//! idempotent, and a crash anywhere leaves either no order or the whole order. Holds a cut-off
//! placement left are freed by its retry (step 3) or, if the client never comes back, by
//! [`OrderHandlers::release_unrecorded_holds`] once they are older than [`HOLD`].
//!
//! 1. If the order's owner still holds stock, load `order-<id>`: if it exists, the same
//!    request gets the recorded order back; another request under the same key is
//!    `IDEMPOTENCY_KEY_REUSED`. Otherwise the order is assumed new and nothing is read (the
//!    read was a third of a placement's reads); a retry of a recorded order whose holds are all
//!    closed fails at the latest on the append (`NoStream`), releases what it took, and is then
//!    answered from the stream the same way.
//! 2. Price every line from the catalog view (never from the client); unknown or inactive
//!    SKUs are refused, naming the line.
//! 3. Free what an earlier, cut-off attempt left held (holds and capacity claims), and reserve
//!    under a fresh owner.
//! 4. Source from a snapshot of the inventory's views (`InventoryPort::candidates`: ATP and
//!    what each location has left of its daily capacity on its local day), then reserve every
//!    allocation and claim one unit of capacity per location in one all-or-nothing call
//!    (`InventoryPort::reserve_placement`): the claim, not the snapshot, decides capacity. If
//!    the stock moved since the snapshot, source again once from a fresh one; a location whose
//!    day filled up meanwhile is left out and the order sourced again, or refused
//!    (`CAPACITY_EXHAUSTED` when full locations are why a line is short).
//! 5. Authorize the total less any exchange credit ([`PlaceRequest::credit`]); nothing when
//!    the credit covers it all (the order then has no payment). A decline releases the holds.
//! 6. Decide and append `OrderPlaced` + `PaymentAuthorized` (if authorized) with `NoStream`.
//!
//! The holds carry no expiry, so nothing has to confirm them once the order is recorded: an
//! expiry would cost a confirmation append per SKU × location of every order (a third of the
//! store writes of a placement) only to cover the rare placement that is cut off and never
//! retried, which the sweep covers instead.
//!
//! **Refunds** ([`OrderHandlers::refund`]: returns; [`OrderHandlers::refund_cancelled_excess`]:
//! the settlement after a cancellation) run check → provider → append one at a time per order
//! in this process, so that two refunds of one order can never both reach the provider when
//! only one fits under what was captured.

pub use crate::domain::order::OrderCredit;
use crate::domain::order::{
    self, decide, validate_credit, Order, OrderCommand, OrderError, OrderEvent,
    PaymentAuthorization, PlaceOrder, PricedLine, ReservedAllocation,
};
use crate::domain::sourcing::{self, Delivery, SourcingError};
use crate::payment::{PaymentError, PaymentProvider, ProviderReference};
use crate::ports::{
    CapacityClaim, FulfillmentPort, InventoryPort, InventoryPortError, ReservationRef,
    ReservationRequest,
};
use crate::projections::catalog::CatalogView;
use chrono::Duration;
use ichigen_shared::aggregate::{self, fold_stream, Encoding, ExecuteError, FoldError, Start};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use ichigen_shared::striped::StripedLock;
use rust_decimal::Decimal;
use std::sync::Arc;
use uuid::Uuid;

const ENCODING: Encoding<OrderEvent> = Encoding {
    event_type: OrderEvent::event_type,
    payload: OrderEvent::payload_json,
};

/// How old the holds of a placement that never got recorded (a crash mid-request, never
/// retried) must be before [`OrderHandlers::release_unrecorded_holds`] frees them: far longer
/// than any placement takes.
pub const HOLD: Duration = Duration::minutes(15);

/// A line as the client asks for it (no price: prices come from the catalog).
#[derive(Debug, Clone, PartialEq)]
pub struct LineRequest {
    pub sku: String,
    pub qty: i64,
    pub delivery: Delivery,
}

/// A placement request.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceRequest {
    /// The customer the order is for (`None` for an anonymous endless-aisle sale).
    pub customer_id: Option<String>,
    pub channel: order::Channel,
    pub lines: Vec<LineRequest>,
    pub allow_partial: bool,
    pub idempotency_key: String,
    /// Exchange credit paying for part or all of the order: set only in process by the
    /// returns service (never from a storefront's input). Part of the request's fingerprint.
    pub credit: Option<OrderCredit>,
}

/// Why a placement was refused or failed. Refusals change nothing.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// Bad input or a rule of the order (field paths like `lines.0.qty`).
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("line {index}: SKU {sku} is {reason}")]
    Catalog {
        index: usize,
        sku: String,
        reason: &'static str,
    },
    /// Lines that cannot be sourced, or a delivery that cannot be served.
    #[error(transparent)]
    Sourcing(#[from] SourcingError),
    #[error("payment: {0}")]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Inventory(#[from] InventoryPortError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
}

/// Why a refund was refused or failed. Every refusal is decided before the provider is asked,
/// so a refusal moved no money and appended nothing.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// More than was captured and not yet refunded (what a refund may still give back).
    #[error("cannot refund {requested}: only {refundable} is still refundable")]
    ExceedsRefundable { requested: Money, refundable: Money },
    #[error("order {order_id} does not exist")]
    OrderNotFound { order_id: Uuid },
    /// The order has no payment: an exchange credit paid for all of it.
    #[error("order {order_id} has no payment to refund")]
    NoPayment { order_id: Uuid },
    #[error("the refund is in {actual}, the order is in {expected}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    #[error("the refund must be positive, got {amount}")]
    NonPositiveAmount { amount: Money },
    /// A blank operation key: without one a retry could not be told from a second refund.
    #[error("the refund's operation key must not be blank")]
    BlankOperation,
    /// The operation key already names a refund of another amount.
    #[error("operation {operation} already refunded {recorded}, not {requested}")]
    OperationReused {
        operation: String,
        recorded: Money,
        requested: Money,
    },
    /// Any other rule of the order (an amount finer than the currency's minor units, …).
    #[error(transparent)]
    Order(OrderError),
    #[error("payment: {0}")]
    Provider(#[from] PaymentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
}

impl RefundError {
    /// One of the shared `ErrorCode` wire values (`UserError.code`, problem bodies).
    pub fn code(&self) -> &'static str {
        match self {
            RefundError::ExceedsRefundable { .. }
            | RefundError::NoPayment { .. }
            | RefundError::OperationReused { .. } => "CONFLICT",
            RefundError::OrderNotFound { .. } => "NOT_FOUND",
            RefundError::CurrencyMismatch { .. }
            | RefundError::NonPositiveAmount { .. }
            | RefundError::BlankOperation => "INVALID_INPUT",
            RefundError::Order(e) => e.code(),
            RefundError::Provider(e) => e.code(),
            RefundError::Store(_) | RefundError::Fold(_) | RefundError::Encode(_) => "INTERNAL",
        }
    }

    /// The input to blame: `amount`, `orderId` or `operation` (`None` for the order's state).
    pub fn field(&self) -> Option<&str> {
        match self {
            RefundError::ExceedsRefundable { .. }
            | RefundError::CurrencyMismatch { .. }
            | RefundError::NonPositiveAmount { .. } => Some("amount"),
            RefundError::OrderNotFound { .. } => Some("orderId"),
            RefundError::BlankOperation | RefundError::OperationReused { .. } => Some("operation"),
            RefundError::Order(e) => e.field(),
            RefundError::NoPayment { .. }
            | RefundError::Provider(_)
            | RefundError::Store(_)
            | RefundError::Fold(_)
            | RefundError::Encode(_) => None,
        }
    }

    /// Whether the same call may succeed later (an outage), rather than be refused again. A
    /// retry must reuse the operation key: the provider then answers with its first refund.
    pub fn is_retryable(&self) -> bool {
        match self {
            RefundError::Provider(e) => matches!(e, PaymentError::Unavailable { .. }),
            RefundError::Store(_) | RefundError::Fold(_) => true,
            _ => false,
        }
    }
}

/// A placed (or re-found) order.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: Uuid,
    pub order: Order,
    /// Where the order's events reached (`None` when the request was a retry).
    pub position: Option<Position>,
    pub replayed: bool,
}

/// What a command on an existing order did.
#[derive(Debug, Clone)]
pub struct Executed {
    pub events: Vec<OrderEvent>,
    pub order: Order,
    pub position: Option<Position>,
}

/// The order command side.
#[derive(Clone)]
pub struct OrderHandlers {
    store: DynEventStore,
    catalog: Arc<CatalogView>,
    inventory: Arc<dyn InventoryPort>,
    payments: Arc<dyn PaymentProvider>,
    clock: Arc<dyn Clock>,
    /// Where cancellations of units a location holds are decided ([`Self::cancel`]).
    fulfillment: Option<Arc<dyn FulfillmentPort>>,
    /// One placement per order id at a time in this process (striped by id): a retry racing
    /// its original would otherwise free the holds the original is about to record.
    placing: Arc<StripedLock>,
    /// One refund per order id at a time in this process (striped by id): the cap check, the
    /// provider call and the append are one step, so two refunds (a return's, a cancellation's)
    /// cannot both pass the check on the same state and both reach the provider. Apart from
    /// `placing` so that a refund never waits for an unrelated placement on a shared stripe.
    refunding: Arc<StripedLock>,
    /// Orders [`Self::release_unrecorded_holds`] found recorded (so each is read once), pruned
    /// to the orders that still hold stock.
    recorded: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    /// Orders this process placed lately. The hold tracker follows the store a moment behind,
    /// so right after a placement it may not show the order's holds yet; a retry arriving
    /// then must still read the stream rather than be taken for a new order.
    recently_placed: Arc<std::sync::Mutex<RecentlyPlaced>>,
}

/// A bounded memory of placed order ids, oldest forgotten first. [`RECENTLY_PLACED`] ids are
/// more than a minute of placements at the benchmark's rates; the tracker's lag is not
/// measured, so a tracker that fell further behind than that would reopen the window (see
/// ARCHITECTURE.md).
struct RecentlyPlaced {
    ids: std::collections::HashSet<Uuid>,
    order: std::collections::VecDeque<Uuid>,
}

impl Default for RecentlyPlaced {
    /// Sized for [`RECENTLY_PLACED`] ids at once: growing by doubling rehashed every id on a
    /// placement's path, under the lock every placement takes.
    fn default() -> Self {
        RecentlyPlaced {
            ids: std::collections::HashSet::with_capacity(RECENTLY_PLACED + 1),
            order: std::collections::VecDeque::with_capacity(RECENTLY_PLACED + 1),
        }
    }
}

/// How many placed order ids [`RecentlyPlaced`] remembers.
const RECENTLY_PLACED: usize = 262_144;

impl RecentlyPlaced {
    fn insert(&mut self, id: Uuid) {
        if self.ids.insert(id) {
            self.order.push_back(id);
            if self.order.len() > RECENTLY_PLACED {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }
}

/// What a placement that was never recorded still holds.
#[derive(Default)]
struct Unrecorded {
    holds: Vec<ReservationRef>,
    /// By owner (the attempt that claimed them).
    claims: std::collections::BTreeMap<String, Vec<CapacityClaim>>,
}

/// Locations a placement leaves out for a full day before it gives up (each round of
/// re-sourcing leaves out at least one more).
const MAX_FULL_LOCATIONS: usize = 8;

/// Stripes of the placement lock.
const PLACING_STRIPES: usize = 256;

/// The order id of a request: the same caller and key always give the same order.
pub fn order_id_for(placed_by: &str, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &ichigen_shared::ids::ICHIGEN_NAMESPACE,
        format!("order\n{placed_by}\n{idempotency_key}").as_bytes(),
    )
}

/// The reservation id of the `n`-th allocation of a placement attempt by `owner`
/// (`order:<uuid>` for the first attempt, `order:<uuid>~<k>` after a cut-off one).
pub fn reservation_id(owner: &str, n: usize) -> String {
    format!("{owner}#{n}")
}

impl OrderHandlers {
    pub fn new(
        store: DynEventStore,
        catalog: Arc<CatalogView>,
        inventory: Arc<dyn InventoryPort>,
        payments: Arc<dyn PaymentProvider>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        OrderHandlers {
            store,
            catalog,
            inventory,
            payments,
            clock,
            fulfillment: None,
            placing: Arc::new(StripedLock::new(PLACING_STRIPES)),
            refunding: Arc::new(StripedLock::new(PLACING_STRIPES)),
            recorded: Arc::default(),
            recently_placed: Arc::default(),
        }
    }

    /// Cancels units a location holds through the fulfillment service
    /// ([`crate::handlers::cancel`]).
    pub fn with_fulfillment(mut self, port: Arc<dyn FulfillmentPort>) -> Self {
        self.fulfillment = Some(port);
        self
    }

    /// The fulfillment service, when this process can reach it.
    pub fn fulfillment(&self) -> Option<&Arc<dyn FulfillmentPort>> {
        self.fulfillment.as_ref()
    }

    /// The time commands are decided at.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Loads an order.
    pub async fn load(&self, order_id: Uuid) -> Result<(Order, Option<u64>), FoldError> {
        fold_stream(
            &self.store,
            &order::stream_name(order_id),
            OrderEvent::decode,
            Order::apply,
        )
        .await
    }

    /// Places an order (see the module documentation for the steps).
    pub async fn place(
        &self,
        request: PlaceRequest,
        metadata: Metadata,
    ) -> Result<Placed, PlaceError> {
        let placed_by = metadata.actor.subject.clone();
        let order_id = order_id_for(&placed_by, &request.idempotency_key);
        let fingerprint = fingerprint(&request);
        let _placing = self.placing.lock(order_id).await;
        // A recorded order that still holds stock has open holds under its owner: only then,
        // or when a step below fails, is the order stream read. A new order (nearly every
        // placement) costs no read.
        let base = format!("order:{order_id}");
        let leftovers = self.inventory.holds_of(&base).await?;
        let placed_lately = self
            .recently_placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .contains(&order_id);
        if placed_lately || !leftovers.is_empty() {
            if let Some(recorded) = self.recorded(order_id, &fingerprint).await? {
                return Ok(recorded);
            }
        }
        let attempt = self
            .place_new(
                order_id,
                request,
                fingerprint.clone(),
                base,
                leftovers,
                &metadata,
            )
            .await;
        match attempt {
            Ok(placed) => {
                self.recently_placed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(order_id);
                Ok(placed)
            }
            // A retry of an order recorded earlier whose holds are all closed (shipped,
            // cancelled) was taken for a new one: it failed somewhere (the stock it already
            // took, the payment, the append) and released what it held. Answer with the
            // recorded order, or say the key was used for another request.
            Err(e) => match self.recorded(order_id, &fingerprint).await? {
                Some(recorded) => Ok(recorded),
                None => Err(e),
            },
        }
    }

    /// The recorded order `order_id` if there is one (`None`): a replay when its request had
    /// this `fingerprint`, else `IDEMPOTENCY_KEY_REUSED`.
    async fn recorded(
        &self,
        order_id: Uuid,
        fingerprint: &str,
    ) -> Result<Option<Placed>, PlaceError> {
        let (existing, _) = self.load(order_id).await?;
        let Some(header) = &existing.header else {
            return Ok(None);
        };
        if header.request_fingerprint != fingerprint {
            return Err(OrderError::IdempotencyKeyReused.into());
        }
        Ok(Some(Placed {
            order_id,
            order: existing,
            position: None,
            replayed: true,
        }))
    }

    /// Steps 2–6 for an order assumed new (see the module documentation). Whatever fails
    /// after the reservation releases it; an append that finds the stream already there also
    /// releases it and fails (the caller then answers with the recorded order).
    async fn place_new(
        &self,
        order_id: Uuid,
        request: PlaceRequest,
        fingerprint: String,
        base: String,
        leftovers: Vec<crate::ports::OpenHold>,
        metadata: &Metadata,
    ) -> Result<Placed, PlaceError> {
        let metadata = metadata.clone();
        let placed_by = metadata.actor.subject.clone();
        let existing = Order::default();
        let lines = self.price(&request)?;
        // A bad credit is refused before anything is reserved (the domain checks it again).
        if let (Some(credit), Some(first)) = (&request.credit, lines.first()) {
            validate_credit(credit, first.unit_price.currency)?;
        }
        let sourcing_lines: Vec<_> = lines.iter().map(PricedLine::sourcing_line).collect();
        let skus: Vec<String> = {
            let mut s: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        // Holds a cut-off earlier attempt left (a crash between reserve and record): free them
        // and the capacity it claimed, and take a fresh owner so that no reservation id of that
        // attempt is reused.
        let owner = if leftovers.is_empty() {
            base
        } else {
            let attempts: std::collections::BTreeSet<&String> =
                leftovers.iter().map(|h| &h.owner).collect();
            let refs: Vec<ReservationRef> =
                leftovers.iter().map(|h| h.reservation.clone()).collect();
            self.inventory.release(&refs, metadata.clone()).await?;
            self.release_claims_of(order_id, &base, &metadata).await?;
            format!("{base}~{}", attempts.len())
        };
        // Source from a snapshot, then reserve the stock and claim each location's capacity
        // for its local day. If the stock moved in between, source once more from a fresh
        // snapshot; a location whose day filled up meanwhile is left out and the order sourced
        // again (a few times: each round leaves out at least one more location).
        let mut stock_retries = 0;
        let mut full: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let (plan, reserved, holds) = loop {
            let mut candidates = self.inventory.candidates(&skus).await?;
            for c in &mut candidates {
                if full.contains(&c.code) {
                    c.remaining_capacity = 0;
                }
            }
            let plan = sourcing::source(&sourcing_lines, &candidates, request.allow_partial)?;
            let reserved: Vec<ReservedAllocation> = plan
                .allocations
                .iter()
                .enumerate()
                .map(|(n, a)| ReservedAllocation::new(a, reservation_id(&owner, n)))
                .collect();
            let requests: Vec<ReservationRequest> = reserved
                .iter()
                .map(|r| ReservationRequest {
                    reservation_id: r.reservation_id.clone(),
                    sku: sku_of(&lines, &r.line_id),
                    location: r.location.clone(),
                    qty: r.qty,
                })
                .collect();
            match self
                .inventory
                .reserve_placement(&owner, &requests, metadata.clone())
                .await
            {
                Ok(holds) => break (plan, reserved, holds),
                Err(InventoryPortError::Refused(_)) if stock_retries < 1 => stock_retries += 1,
                Err(InventoryPortError::CapacityExhausted(locations))
                    if full.len() < MAX_FULL_LOCATIONS =>
                {
                    full.extend(locations)
                }
                Err(e) => return Err(e.into()),
            }
        };
        let claims = holds.claimed;
        let refs: Vec<ReservationRef> = reserved
            .iter()
            .map(|r| ReservationRef {
                reservation_id: r.reservation_id.clone(),
                sku: sku_of(&lines, &r.line_id),
                location: r.location.clone(),
            })
            .collect();
        let total = payable_total(&lines, &plan)?;
        let due = match &request.credit {
            None => Some(total),
            Some(credit) => {
                let rest = total
                    .checked_sub(credit.amount)
                    .map_err(|_| OrderError::Overflow {
                        field: "credit.amount".into(),
                    });
                match rest {
                    Ok(rest) => (rest.amount > Decimal::ZERO).then_some(rest),
                    Err(e) => {
                        self.release_quietly(&owner, &refs, &claims, &metadata)
                            .await;
                        return Err(e.into());
                    }
                }
            }
        };
        let payment_id = Uuid::new_v5(&order_id, b"payment");
        let payment = match due {
            // The credit pays for everything: nothing to authorize, the order has no payment.
            None => None,
            Some(due) => match self.payments.authorize(payment_id, &due).await {
                Ok(reference) => Some(PaymentAuthorization {
                    payment_id,
                    provider: self.payments.name().to_string(),
                    reference: reference.0,
                    amount: due,
                }),
                Err(e) => {
                    self.release_quietly(&owner, &refs, &claims, &metadata)
                        .await;
                    return Err(e.into());
                }
            },
        };
        let command = OrderCommand::Place(Box::new(PlaceOrder {
            order_id,
            customer_id: request.customer_id.clone(),
            placed_by,
            channel: request.channel.clone(),
            lines,
            allocations: reserved,
            sourcing: plan.explanation.clone(),
            payment,
            credit: request.credit.clone(),
            allow_partial: request.allow_partial,
            idempotency_key: request.idempotency_key.clone(),
            request_fingerprint: fingerprint,
        }));
        let events = match decide(&existing, &command, self.clock.now()) {
            Ok(events) => events,
            Err(e) => {
                self.release_quietly(&owner, &refs, &claims, &metadata)
                    .await;
                return Err(e.into());
            }
        };
        let mut state = existing;
        let mut new_events = Vec::with_capacity(events.len());
        for event in events.iter() {
            state.apply(event);
            new_events.push(NewEvent {
                // Fresh ids, not derived from the order: a retry of a recorded order whose
                // holds are all closed is taken for a new one (nothing was read), and its
                // append must then fail on `NoStream` rather than be deduplicated into a
                // success. `NoStream` alone keeps the order from being recorded twice.
                id: Uuid::new_v4(),
                event_type: event.event_type().to_string(),
                data: event
                    .payload_json()
                    .map_err(|e| PlaceError::Encode(e.to_string()))?,
                metadata: metadata.clone(),
            });
        }
        let appended = match self
            .store
            .append(
                &order::stream_name(order_id),
                ExpectedRevision::NoStream,
                new_events,
            )
            .await
        {
            Ok(appended) => appended,
            // The order exists: a retry of a recorded order taken for a new one. Free what
            // this attempt took, but never the recorded order's own holds: a reservation id it
            // shares with them (same id, SKU and location) was a no-op on their hold. The
            // caller answers with the recorded order.
            Err(e @ StoreError::WrongExpectedVersion { .. }) => {
                let (recorded, _) = self.load(order_id).await?;
                let theirs: std::collections::HashSet<(&str, &str, &str)> = recorded
                    .lines
                    .iter()
                    .flat_map(|l| {
                        l.allocations.iter().map(move |a| {
                            (
                                a.reservation_id.as_str(),
                                l.sku.as_str(),
                                a.location.as_str(),
                            )
                        })
                    })
                    .collect();
                let ours: Vec<ReservationRef> = refs
                    .iter()
                    .filter(|r| {
                        !theirs.contains(&(
                            r.reservation_id.as_str(),
                            r.sku.as_str(),
                            r.location.as_str(),
                        ))
                    })
                    .cloned()
                    .collect();
                // Claims this attempt made are its own: the recorded order's (same owner, same
                // day) were already held, so the claim was a no-op and is not among them.
                self.release_quietly(&owner, &ours, &claims, &metadata)
                    .await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Placed {
            order_id,
            order: state,
            position: Some(appended.position),
            replayed: false,
        })
    }

    /// Runs any command but `Place` on an existing order
    /// ([`ichigen_shared::aggregate::execute`]): load → decide → append with the loaded
    /// revision, reloading on a concurrent write. `events` is empty for a retry.
    pub async fn execute(
        &self,
        order_id: Uuid,
        command: OrderCommand,
        metadata: Metadata,
    ) -> Result<Executed, PlaceError> {
        self.run(order_id, &command, &metadata)
            .await
            .map_err(|e| match e {
                ExecuteError::Decide(e) => PlaceError::Order(e),
                ExecuteError::Fold(e) => PlaceError::Fold(e),
                ExecuteError::Store(e) => PlaceError::Store(e),
                ExecuteError::Encode(e) => PlaceError::Encode(e),
                ExecuteError::Contended(stream) => PlaceError::Store(contended(&stream)),
            })
    }

    async fn run(
        &self,
        order_id: Uuid,
        command: &OrderCommand,
        metadata: &Metadata,
    ) -> Result<Executed, ExecuteError<OrderError>> {
        let now = self.clock.now();
        let executed = aggregate::execute(
            &self.store,
            &order::stream_name(order_id),
            OrderEvent::decode,
            Order::apply,
            &ENCODING,
            Start::Load,
            metadata,
            |state| decide(state, command, now),
        )
        .await?;
        Ok(Executed {
            events: executed.events,
            order: executed.state,
            position: executed.position,
        })
    }

    /// Gives back `amount` of what the order's payment captured, for units returned: checks it
    /// fits, asks the provider under `operation`, then records `PaymentRefunded` — the three as
    /// one step per order in this process (see the module documentation), so concurrent
    /// refunds of one order reach the provider only while they fit.
    ///
    /// `operation` is the caller's stable key for this refund (`rma:<rmaId>`): the provider is
    /// idempotent per operation and the order records it, so a retried call (after a timeout,
    /// a crash before the append) is recognised before the provider is asked again: it appends
    /// nothing and returns `Executed { events: [], position: None }` with the order as it is.
    /// Either way the provider's reference is in
    /// `order.payment.refund_operations[operation].reference`.
    ///
    /// The cap is what was captured and not yet refunded. In another process the order's own
    /// check (refunded ≤ captured, by stream revision) still holds, but only after the provider
    /// was asked: run the refunds of one order in one process.
    pub async fn refund(
        &self,
        order_id: Uuid,
        operation: &str,
        amount: Money,
        metadata: Metadata,
    ) -> Result<Executed, RefundError> {
        if operation.trim().is_empty() {
            return Err(RefundError::BlankOperation);
        }
        let _refunding = self.refunding.lock(order_id).await;
        let (order, _) = self.load(order_id).await?;
        self.refund_locked(order_id, order, operation, amount, metadata)
            .await
    }

    /// After a cancellation: refunds what was captured beyond what the customer still owes
    /// ([`Order::payable`]: units not cancelled, less any exchange credit), computed and paid
    /// under the same per-order lock as [`Self::refund`], so a return's refund and this one
    /// cannot together pass the cap. `Ok(None)`: nothing to refund. The operation key is the
    /// refunded total it brings the order to (`refund:<orderId>:<total>`): a retry asks the
    /// same, a later cancellation more.
    pub async fn refund_cancelled_excess(
        &self,
        order_id: Uuid,
        metadata: Metadata,
    ) -> Result<Option<Executed>, RefundError> {
        let _refunding = self.refunding.lock(order_id).await;
        let (order, _) = self.load(order_id).await?;
        let Some(p) = &order.payment else {
            return Ok(None);
        };
        if p.voided {
            return Ok(None);
        }
        let payable = order.payable().map_or(Decimal::ZERO, |m| m.amount);
        let excess = p.captured.amount - p.refunded.amount - payable;
        if excess <= Decimal::ZERO {
            return Ok(None);
        }
        let target = p.refunded.amount + excess;
        let operation = format!("refund:{order_id}:{target}");
        let amount = Money::new(excess, p.captured.currency);
        self.refund_locked(order_id, order, &operation, amount, metadata)
            .await
            .map(Some)
    }

    /// The refund itself, with the order's refund lock held and `order` loaded under it.
    async fn refund_locked(
        &self,
        order_id: Uuid,
        order: Order,
        operation: &str,
        amount: Money,
        metadata: Metadata,
    ) -> Result<Executed, RefundError> {
        let Some(header) = &order.header else {
            return Err(RefundError::OrderNotFound { order_id });
        };
        let Some(payment) = &order.payment else {
            return Err(RefundError::NoPayment { order_id });
        };
        if amount.currency != header.currency {
            return Err(RefundError::CurrencyMismatch {
                expected: header.currency,
                actual: amount.currency,
            });
        }
        if amount.amount <= Decimal::ZERO {
            return Err(RefundError::NonPositiveAmount { amount });
        }
        if let Some(done) = payment.refund_operations.get(operation) {
            return if done.amount == amount {
                Ok(Executed {
                    events: vec![],
                    order,
                    position: None,
                })
            } else {
                Err(RefundError::OperationReused {
                    operation: operation.to_owned(),
                    recorded: done.amount,
                    requested: amount,
                })
            };
        }
        let refundable = Money::new(
            (payment.captured.amount - payment.refunded.amount).max(Decimal::ZERO),
            header.currency,
        );
        if amount.amount > refundable.amount {
            return Err(RefundError::ExceedsRefundable {
                requested: amount,
                refundable,
            });
        }
        // Every other rule of the order (minor units, …) before any money moves: decided on
        // the loaded state with a stand-in reference (the provider's is not known yet).
        let command = |reference: String| OrderCommand::RefundPayment {
            amount,
            reference,
            operation: Some(operation.to_owned()),
        };
        decide(
            &order,
            &command(format!("pending:{operation}")),
            self.clock.now(),
        )
        .map_err(refund_refusal)?;
        let provider_ref = ProviderReference(payment.reference.clone());
        let answer = self
            .payments
            .refund(&provider_ref, operation, &amount)
            .await?;
        self.run(order_id, &command(answer.0.clone()), &metadata)
            .await
            .map_err(|e| {
                // The provider refunded and the order did not record it: a store outage (a
                // retry with the same operation records the provider's answer), or a refund
                // by another process in between (the lock covers this one only).
                tracing::error!(%order_id, operation, reference = %answer, error = %e,
                    "the provider refunded but the order did not record it");
                match e {
                    ExecuteError::Decide(e) => refund_refusal(e),
                    ExecuteError::Fold(e) => RefundError::Fold(e),
                    ExecuteError::Store(e) => RefundError::Store(e),
                    ExecuteError::Encode(e) => RefundError::Encode(e),
                    ExecuteError::Contended(stream) => RefundError::Store(contended(&stream)),
                }
            })
    }

    /// Frees the holds of placements that were never recorded: cut off between their
    /// reservation and their `OrderPlaced` (a crash) and never retried. Holds and capacity
    /// claims owned by `order:<id>` or `order:<id>~<k>`, older than [`HOLD`], whose order does
    /// not exist are released; each order is checked under its placement lock, so a retry in
    /// flight is never undercut. Returns how many holds were released. Run periodically by the
    /// gateway.
    pub async fn release_unrecorded_holds(&self, metadata: Metadata) -> Result<usize, PlaceError> {
        let cutoff = self.clock.now() - HOLD;
        let holds = self.inventory.holds_of("order:").await?;
        let claims = self.inventory.capacity_claims_of("order:").await?;
        let mut holding = std::collections::HashSet::new();
        let mut stale: std::collections::BTreeMap<Uuid, Unrecorded> =
            std::collections::BTreeMap::new();
        for hold in holds {
            let Some(order_id) = placement_of(&hold.owner) else {
                continue;
            };
            holding.insert(order_id);
            if hold.since <= cutoff {
                stale
                    .entry(order_id)
                    .or_default()
                    .holds
                    .push(hold.reservation);
            }
        }
        for held in claims {
            let Some(order_id) = placement_of(&held.owner) else {
                continue;
            };
            holding.insert(order_id);
            if held.since <= cutoff {
                stale
                    .entry(order_id)
                    .or_default()
                    .claims
                    .entry(held.owner)
                    .or_default()
                    .push(held.claim);
            }
        }
        self.recorded_orders().retain(|id| holding.contains(id));
        let mut released = 0;
        for (order_id, unrecorded) in stale {
            if self.recorded_orders().contains(&order_id) {
                continue;
            }
            let _placing = self.placing.lock(order_id).await;
            let (order, _) = self.load(order_id).await?;
            if order.header.is_some() {
                self.recorded_orders().insert(order_id);
                continue;
            }
            tracing::warn!(%order_id, holds = unrecorded.holds.len(), claims = unrecorded.claims.len(),
                "releasing the holds of a placement that was never recorded");
            if !unrecorded.holds.is_empty() {
                self.inventory
                    .release(&unrecorded.holds, metadata.clone())
                    .await?;
            }
            for (owner, claims) in &unrecorded.claims {
                self.inventory
                    .release_capacity(owner, claims, metadata.clone())
                    .await?;
            }
            released += unrecorded.holds.len();
        }
        Ok(released)
    }

    fn recorded_orders(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Uuid>> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The payment provider (processes capture, void and refund through it).
    pub fn payments(&self) -> &Arc<dyn PaymentProvider> {
        &self.payments
    }

    /// The inventory port (processes release and consume through it).
    pub fn inventory(&self) -> &Arc<dyn InventoryPort> {
        &self.inventory
    }

    /// Every line priced from the catalog, with line ids `L1`, `L2`, … in request order.
    fn price(&self, request: &PlaceRequest) -> Result<Vec<PricedLine>, PlaceError> {
        if request.lines.is_empty() || request.lines.len() > order::MAX_LINES {
            return Err(OrderError::InvalidInput {
                field: "lines".into(),
                reason: "must hold 1 to 500 lines",
            }
            .into());
        }
        request
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                // Checked before sourcing, so that a huge quantity is bad input, not a shortage.
                if !(1..=order::MAX_LINE_QTY).contains(&line.qty) {
                    return Err(OrderError::InvalidQuantity {
                        field: format!("lines.{index}.qty"),
                        value: line.qty,
                        min: 1,
                        max: order::MAX_LINE_QTY,
                    }
                    .into());
                }
                // The one SKU rule first: a SKU with a line break is bad input, not unknown.
                if let Err(reason) = ichigen_shared::ids::validate_sku(&line.sku) {
                    return Err(OrderError::InvalidInput {
                        field: format!("lines.{index}.sku"),
                        reason,
                    }
                    .into());
                }
                let item = self
                    .catalog
                    .get(&line.sku)
                    .ok_or_else(|| PlaceError::Catalog {
                        index,
                        sku: line.sku.clone(),
                        reason: "not in the catalog",
                    })?;
                if !item.active {
                    return Err(PlaceError::Catalog {
                        index,
                        sku: line.sku.clone(),
                        reason: "not sold any more",
                    });
                }
                Ok(PricedLine {
                    line_id: format!("L{}", index + 1),
                    sku: item.sku,
                    title: item.title,
                    qty: line.qty,
                    unit_price: item.price,
                    delivery: line.delivery.clone(),
                })
            })
            .collect()
    }

    /// Frees what a failed placement by `owner` held: its reservations and the capacity
    /// claims it made.
    async fn release_quietly(
        &self,
        owner: &str,
        refs: &[ReservationRef],
        claims: &[CapacityClaim],
        metadata: &Metadata,
    ) {
        if let Err(e) = self.inventory.release(refs, metadata.clone()).await {
            // Freed by the retry, or by the sweep after HOLD.
            tracing::warn!(error = %e, "could not release the holds of a failed placement");
        }
        if claims.is_empty() {
            return;
        }
        if let Err(e) = self
            .inventory
            .release_capacity(owner, claims, metadata.clone())
            .await
        {
            tracing::warn!(error = %e, "could not give back the capacity of a failed placement");
        }
    }

    /// Gives back the capacity claims of every placement attempt of `order_id` (owners `base`
    /// and `base~k`): a retry after a cut-off attempt, before it claims under a fresh owner.
    async fn release_claims_of(
        &self,
        order_id: Uuid,
        base: &str,
        metadata: &Metadata,
    ) -> Result<(), PlaceError> {
        let mut by_owner: std::collections::BTreeMap<String, Vec<CapacityClaim>> =
            std::collections::BTreeMap::new();
        for held in self.inventory.capacity_claims_of(base).await? {
            if placement_of(&held.owner) == Some(order_id) {
                by_owner.entry(held.owner).or_default().push(held.claim);
            }
        }
        for (owner, claims) in by_owner {
            self.inventory
                .release_capacity(&owner, &claims, metadata.clone())
                .await?;
        }
        Ok(())
    }
}

/// The order of a placement's hold owner: `order:<id>` or `order:<id>~<k>` (a retry after a
/// cut-off attempt). Other owners under `order:` (re-sourcing holds, `order:<id>/…`) belong to
/// recorded orders and are not placements.
fn placement_of(owner: &str) -> Option<Uuid> {
    let rest = owner.strip_prefix("order:")?;
    let id = rest.split_once('~').map_or(rest, |(id, _)| id);
    id.parse().ok()
}

fn sku_of(lines: &[PricedLine], line_id: &str) -> String {
    lines
        .iter()
        .find(|l| l.line_id == line_id)
        .map(|l| l.sku.clone())
        .unwrap_or_default()
}

/// What the customer pays: every allocated unit at its catalog price (the domain checks the
/// authorization against the same rule).
fn payable_total(
    lines: &[PricedLine],
    plan: &sourcing::SourcingPlan,
) -> Result<ichigen_shared::money::Money, PlaceError> {
    let overflow = || OrderError::Overflow {
        field: "lines".into(),
    };
    let mut total: Option<ichigen_shared::money::Money> = None;
    for line in lines {
        let qty: i64 = plan
            .allocations
            .iter()
            .filter(|a| a.line_id == line.line_id)
            .map(|a| a.qty)
            .sum();
        let amount = line.unit_price.checked_mul(qty).map_err(|_| overflow())?;
        total = Some(match total {
            None => amount,
            Some(t) => t.checked_add(amount).map_err(|_| overflow())?,
        });
    }
    total.ok_or_else(|| {
        PlaceError::Order(OrderError::InvalidInput {
            field: "lines".into(),
            reason: "must not be empty",
        })
    })
}

fn contended(stream: &str) -> StoreError {
    StoreError::Io(format!(
        "{stream} kept changing under concurrent writers; try again"
    ))
}

/// An order's refusal of a refund, as the handler's typed refusal where there is one.
fn refund_refusal(e: OrderError) -> RefundError {
    match e {
        OrderError::RefundExceedsCaptured {
            requested,
            refundable,
        } => RefundError::ExceedsRefundable {
            requested,
            refundable,
        },
        other => RefundError::Order(other),
    }
}

/// A digest of what the client asked for: a retry under the same key must ask the same. A
/// request without a credit digests exactly as before credits existed, so retries of orders
/// placed earlier still match.
fn fingerprint(request: &PlaceRequest) -> String {
    let mut text = format!(
        "{:?}|{:?}|{}|{:?}",
        request.customer_id,
        request.channel,
        request.allow_partial,
        request
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.qty, format!("{:?}", l.delivery)))
            .collect::<Vec<_>>()
    );
    if let Some(credit) = &request.credit {
        // Normalised: `1000` and `1000.00` are the same credit.
        text.push_str(&format!(
            "|credit:{}:{}:{}",
            credit.amount.amount.normalize(),
            credit.amount.currency,
            credit.source
        ));
    }
    Uuid::new_v5(&ichigen_shared::ids::ICHIGEN_NAMESPACE, text.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(credit: Option<OrderCredit>) -> PlaceRequest {
        PlaceRequest {
            customer_id: Some("c-1".into()),
            channel: order::Channel::Web,
            lines: vec![LineRequest {
                sku: "TEE".into(),
                qty: 2,
                delivery: crate::domain::sourcing::Delivery::Ship {
                    lat: 35.68,
                    lon: 139.76,
                },
            }],
            allow_partial: false,
            idempotency_key: "k-1".into(),
            credit,
        }
    }

    fn credit(amount: &str, source: &str) -> Option<OrderCredit> {
        Some(OrderCredit {
            amount: Money::parse(amount, "JPY").expect("money"),
            source: source.into(),
        })
    }

    /// Orders placed before credits existed are retried with requests that have none: their
    /// fingerprint must still be the one recorded then (the digest as it was computed).
    #[test]
    fn a_request_without_credit_digests_as_before_credits_existed() {
        let r = request(None);
        let before = format!(
            "{:?}|{:?}|{}|{:?}",
            r.customer_id,
            r.channel,
            r.allow_partial,
            r.lines
                .iter()
                .map(|l| (l.sku.as_str(), l.qty, format!("{:?}", l.delivery)))
                .collect::<Vec<_>>()
        );
        let expected =
            Uuid::new_v5(&ichigen_shared::ids::ICHIGEN_NAMESPACE, before.as_bytes()).to_string();
        assert_eq!(fingerprint(&r), expected);
    }

    #[test]
    fn the_credit_is_part_of_the_fingerprint() {
        let plain = fingerprint(&request(None));
        let with = fingerprint(&request(credit("1000", "rma:1")));
        assert_ne!(plain, with);
        assert_eq!(with, fingerprint(&request(credit("1000.00", "rma:1"))));
        assert_ne!(with, fingerprint(&request(credit("1001", "rma:1"))));
        assert_ne!(with, fingerprint(&request(credit("1000", "rma:2"))));
    }

    #[test]
    fn refund_errors_name_their_code_field_and_retryability() {
        let exceeds = RefundError::ExceedsRefundable {
            requested: Money::parse("2", "JPY").expect("money"),
            refundable: Money::parse("1", "JPY").expect("money"),
        };
        assert_eq!(
            (exceeds.code(), exceeds.field()),
            ("CONFLICT", Some("amount"))
        );
        assert!(!exceeds.is_retryable());
        let outage = RefundError::Provider(PaymentError::Unavailable {
            detail: "down".into(),
        });
        assert_eq!(outage.code(), "PAYMENT_UNAVAILABLE");
        assert!(outage.is_retryable());
        assert!(RefundError::Store(StoreError::Io("x".into())).is_retryable());
        assert_eq!(
            refund_refusal(OrderError::RefundExceedsCaptured {
                requested: Money::parse("2", "JPY").expect("money"),
                refundable: Money::parse("1", "JPY").expect("money"),
            })
            .to_string(),
            exceeds.to_string()
        );
    }
}
