//! Placing an order: price → source → reserve → authorize → record, all or nothing.
//!
//! The order id is derived from the caller and the idempotency key, so a retried request lands
//! on the same stream, the same reservation ids and the same payment id: every step is
//! idempotent, and a crash anywhere leaves either no order or the whole order. Holds a cut-off
//! placement left are freed by its retry (step 3) or, if the client never comes back, by
//! [`OrderHandlers::release_unrecorded_holds`] once they are older than [`HOLD`].
//!
//! 1. Load `order-<id>`: if it exists, the same request gets the recorded order back; another
//!    request under the same key is `IDEMPOTENCY_KEY_REUSED`.
//! 2. Price every line from the catalog view (never from the client); unknown or inactive
//!    SKUs are refused, naming the line.
//! 3. Free what an earlier, cut-off attempt left held, and reserve under a fresh owner.
//! 4. Source from a snapshot of the inventory view (`InventoryPort::candidates`) and reserve
//!    every allocation in one all-or-nothing call; if the stock moved since the snapshot,
//!    source again once from a fresh one.
//! 5. Authorize the total; a decline releases the holds.
//! 6. Decide and append `OrderPlaced` + `PaymentAuthorized` with `NoStream`.
//!
//! The holds carry no expiry, so nothing has to confirm them once the order is recorded: an
//! expiry would cost a confirmation append per SKU × location of every order (a third of the
//! store writes of a placement) only to cover the rare placement that is cut off and never
//! retried, which the sweep covers instead.

use crate::domain::order::{
    self, decide, Order, OrderCommand, OrderError, OrderEvent, PaymentAuthorization, PlaceOrder,
    PricedLine, ReservedAllocation,
};
use crate::domain::sourcing::{self, Delivery, SourcingError};
use crate::payment::{PaymentError, PaymentProvider};
use crate::ports::{InventoryPort, InventoryPortError, ReservationRef, ReservationRequest};
use crate::projections::catalog::CatalogView;
use chrono::Duration;
use ichigen_shared::aggregate::{self, fold_stream, Encoding, ExecuteError, FoldError, Start};
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use ichigen_shared::striped::StripedLock;
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
    /// Orders per location and day, subtracted from the candidates' daily capacity.
    capacity: Option<Arc<crate::projections::capacity::CapacityLedger>>,
    /// One placement per order id at a time in this process (striped by id): a retry racing
    /// its original would otherwise free the holds the original is about to record.
    placing: Arc<StripedLock>,
    /// Orders [`Self::release_unrecorded_holds`] found recorded (so each is read once), pruned
    /// to the orders that still hold stock.
    recorded: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
}

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
            capacity: None,
            placing: Arc::new(StripedLock::new(PLACING_STRIPES)),
            recorded: Arc::default(),
        }
    }

    /// Sources against what each location has left of its daily capacity today.
    pub fn with_capacity(
        mut self,
        ledger: Arc<crate::projections::capacity::CapacityLedger>,
    ) -> Self {
        self.capacity = Some(ledger);
        self
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
        let (existing, _) = self.load(order_id).await?;
        if let Some(header) = &existing.header {
            if header.request_fingerprint != fingerprint {
                return Err(OrderError::IdempotencyKeyReused.into());
            }
            return Ok(Placed {
                order_id,
                order: existing,
                position: None,
                replayed: true,
            });
        }
        let lines = self.price(&request)?;
        let sourcing_lines: Vec<_> = lines.iter().map(PricedLine::sourcing_line).collect();
        let skus: Vec<String> = {
            let mut s: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        // Holds a cut-off earlier attempt left (a crash between reserve and record): free them,
        // and take a fresh owner so that no reservation id of that attempt is reused.
        let base = format!("order:{order_id}");
        let leftovers = self.inventory.holds_of(&base).await?;
        let owner = if leftovers.is_empty() {
            base
        } else {
            let attempts: std::collections::BTreeSet<&String> =
                leftovers.iter().map(|h| &h.owner).collect();
            let refs: Vec<ReservationRef> =
                leftovers.iter().map(|h| h.reservation.clone()).collect();
            self.inventory.release(&refs, metadata.clone()).await?;
            format!("{base}~{}", attempts.len())
        };
        let expires_at = None;
        // Source from a snapshot, reserve; if stock moved in between, once more from a fresh one.
        let mut attempt = 0;
        let (plan, reserved) = loop {
            attempt += 1;
            let mut candidates = self.inventory.candidates(&skus).await?;
            if let Some(ledger) = &self.capacity {
                let today = self.clock.now().date_naive();
                for c in &mut candidates {
                    c.remaining_capacity -= ledger.taken(&c.code, today);
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
                .reserve(&owner, &requests, expires_at, metadata.clone())
                .await
            {
                Ok(_) => break (plan, reserved),
                Err(InventoryPortError::Refused(_)) if attempt < 2 => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let refs: Vec<ReservationRef> = reserved
            .iter()
            .map(|r| ReservationRef {
                reservation_id: r.reservation_id.clone(),
                sku: sku_of(&lines, &r.line_id),
                location: r.location.clone(),
            })
            .collect();
        let total = payable_total(&lines, &plan)?;
        let payment_id = Uuid::new_v5(&order_id, b"payment");
        let authorization = match self.payments.authorize(payment_id, &total).await {
            Ok(reference) => reference,
            Err(e) => {
                self.release_quietly(&refs, &metadata).await;
                return Err(e.into());
            }
        };
        let command = OrderCommand::Place(Box::new(PlaceOrder {
            order_id,
            customer_id: request.customer_id.clone(),
            placed_by,
            channel: request.channel.clone(),
            lines,
            allocations: reserved,
            sourcing: plan.explanation.clone(),
            payment: PaymentAuthorization {
                payment_id,
                provider: self.payments.name().to_string(),
                reference: authorization.0,
                amount: total,
            },
            allow_partial: request.allow_partial,
            idempotency_key: request.idempotency_key.clone(),
            request_fingerprint: fingerprint,
        }));
        let events = match decide(&existing, &command, self.clock.now()) {
            Ok(events) => events,
            Err(e) => {
                self.release_quietly(&refs, &metadata).await;
                return Err(e.into());
            }
        };
        let mut state = existing;
        let mut new_events = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            state.apply(event);
            new_events.push(NewEvent {
                // Derived: a retried append after an unknown outcome is deduplicated.
                id: ichigen_shared::ids::derived_event_id(&format!("{order_id}/placed"), i),
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
            // A concurrent retry of the same request recorded it first: answer with that.
            Err(StoreError::WrongExpectedVersion { .. }) => {
                let (order, _) = self.load(order_id).await?;
                return Ok(Placed {
                    order_id,
                    order,
                    position: None,
                    replayed: true,
                });
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
        let now = self.clock.now();
        let executed = aggregate::execute(
            &self.store,
            &order::stream_name(order_id),
            OrderEvent::decode,
            Order::apply,
            &ENCODING,
            Start::Load,
            &metadata,
            |state| decide(state, &command, now),
        )
        .await
        .map_err(|e| match e {
            ExecuteError::Decide(e) => PlaceError::Order(e),
            ExecuteError::Fold(e) => PlaceError::Fold(e),
            ExecuteError::Store(e) => PlaceError::Store(e),
            ExecuteError::Encode(e) => PlaceError::Encode(e),
            ExecuteError::Contended(stream) => PlaceError::Store(StoreError::Io(format!(
                "{stream} kept changing under concurrent writers; try again"
            ))),
        })?;
        Ok(Executed {
            events: executed.events,
            order: executed.state,
            position: executed.position,
        })
    }

    /// Frees the holds of placements that were never recorded: cut off between their
    /// reservation and their `OrderPlaced` (a crash) and never retried. Holds owned by
    /// `order:<id>` or `order:<id>~<k>`, older than [`HOLD`], whose order does not exist are
    /// released; each order is checked under its placement lock, so a retry in flight is never
    /// undercut. Returns how many holds were released. Run periodically by the gateway.
    pub async fn release_unrecorded_holds(&self, metadata: Metadata) -> Result<usize, PlaceError> {
        let cutoff = self.clock.now() - HOLD;
        let holds = self.inventory.holds_of("order:").await?;
        let mut holding = std::collections::HashSet::new();
        let mut stale: std::collections::BTreeMap<Uuid, Vec<ReservationRef>> =
            std::collections::BTreeMap::new();
        for hold in holds {
            let Some(order_id) = placement_of(&hold.owner) else {
                continue;
            };
            holding.insert(order_id);
            if hold.since <= cutoff {
                stale.entry(order_id).or_default().push(hold.reservation);
            }
        }
        self.recorded_orders().retain(|id| holding.contains(id));
        let mut released = 0;
        for (order_id, refs) in stale {
            if self.recorded_orders().contains(&order_id) {
                continue;
            }
            let _placing = self.placing.lock(order_id).await;
            let (order, _) = self.load(order_id).await?;
            if order.header.is_some() {
                self.recorded_orders().insert(order_id);
                continue;
            }
            tracing::warn!(%order_id, holds = refs.len(), "releasing the holds of a placement that was never recorded");
            self.inventory.release(&refs, metadata.clone()).await?;
            released += refs.len();
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

    async fn release_quietly(&self, refs: &[ReservationRef], metadata: &Metadata) {
        if let Err(e) = self.inventory.release(refs, metadata.clone()).await {
            // Freed by the retry, or by the sweep after HOLD.
            tracing::warn!(error = %e, "could not release the holds of a failed placement");
        }
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

/// A digest of what the client asked for: a retry under the same key must ask the same.
fn fingerprint(request: &PlaceRequest) -> String {
    let text = format!(
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
    Uuid::new_v5(&ichigen_shared::ids::ICHIGEN_NAMESPACE, text.as_bytes()).to_string()
}
