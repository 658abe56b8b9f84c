//! Cancelling units of an order: decided by the fulfillment orders that hold them, then
//! recorded on the order.
//!
//! Whether a unit can still be cancelled depends on what its location did with it (shipped?
//! handed over at the counter?), which the order learns only when its process catches up. So
//! [`OrderHandlers::cancel`] plans the cancellation on the order (which units, under which
//! reservations), asks the fulfillment orders holding them to cancel them
//! ([`FulfillmentPort::cancel_units`]; each decides on its own stream, so a concurrent ship or
//! handover either wins or loses there, never both), and records exactly what they cancelled
//! as `CancelConfirmed`. Units no location holds (short-picked and waiting, never allocated)
//! are the order's alone and are recorded with them.
//!
//! The fulfillment orders and the order record one *operation* (derived from the order's
//! revision and the request): if the process stops between the two appends, the order's
//! reaction to the fulfillment orders' `FulfillmentLinesCancelled` records the same parts,
//! and a retry of the request asks again under the same operation and gets the same answer.

use super::order::{Executed, OrderHandlers, PlaceError};
use crate::domain::order::{
    decide, LineQty, OrderCommand, OrderError, OrderEvent, ReservationRelease,
};
use crate::ports::{FulfillmentPortError, UnitsToCancel, WorkKind};
use ichigen_shared::envelope::Metadata;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a cancellation did: the order after it, and the units it could not cancel because
/// their fulfillment had moved on (each an [`OrderError::NotCancellable`]).
#[derive(Debug, Clone)]
pub struct Cancelled {
    pub executed: Executed,
    pub not_cancelled: Vec<OrderError>,
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// Refused: nothing was cancelled (an input error, or every unit already left).
    #[error(transparent)]
    Order(OrderError),
    #[error(transparent)]
    Fulfillment(#[from] FulfillmentPortError),
    /// The store failed (reading or appending the order).
    #[error(transparent)]
    Handler(#[from] PlaceError),
    /// The process was built without a fulfillment port: it cannot cancel units a location
    /// holds.
    #[error("this process cannot reach the fulfillment service")]
    NoFulfillmentPort,
}

impl CancelError {
    /// Whether the same request may succeed later (an outage) rather than be refused again.
    pub fn is_retryable(&self) -> bool {
        match self {
            CancelError::Order(_) | CancelError::NoFulfillmentPort => false,
            CancelError::Fulfillment(_) => true,
            CancelError::Handler(e) => matches!(e, PlaceError::Store(_) | PlaceError::Fold(_)),
        }
    }
}

impl OrderHandlers {
    /// Cancels `lines` (quantities per line; `None`: every unit not yet shipped or picked up)
    /// for `reason`. See the module documentation. Units whose fulfillment already shipped
    /// or handed them over are not cancelled and are named in [`Cancelled::not_cancelled`];
    /// when no unit at all could be cancelled, the first of them is the error and nothing
    /// was appended.
    pub async fn cancel(
        &self,
        order_id: Uuid,
        lines: Option<Vec<LineQty>>,
        reason: &str,
        metadata: Metadata,
    ) -> Result<Cancelled, CancelError> {
        let (order, revision) = self.load(order_id).await.map_err(PlaceError::from)?;
        let request = OrderCommand::Cancel {
            lines: lines.clone(),
            reason: reason.to_owned(),
        };
        let planned = decide(&order, &request, self.now()).map_err(CancelError::Order)?;
        let Some(OrderEvent::OrderLinesCancelled(plan)) = planned.into_iter().next() else {
            // Already what the caller wants (a whole-order cancel again).
            return Ok(Cancelled {
                executed: Executed {
                    events: vec![],
                    order,
                    position: None,
                },
                not_cancelled: vec![],
            });
        };
        let operation = operation_id(order_id, revision, lines.as_deref(), reason);
        let mut unheld: BTreeMap<String, i64> = BTreeMap::new();
        for l in &plan.lines {
            *unheld.entry(l.line_id.clone()).or_default() += l.qty;
        }
        for r in &plan.reservations_to_release {
            *unheld.entry(r.line_id.clone()).or_default() -= r.qty;
        }
        let field_of = |line_id: &str| match &lines {
            Some(lines) => lines
                .iter()
                .position(|l| l.line_id == line_id)
                .map_or_else(|| "lines".to_owned(), |k| format!("lines.{k}.qty")),
            None => "orderId".to_owned(),
        };
        let mut held = Vec::new();
        let mut not_cancelled = Vec::new();
        if !plan.reservations_to_release.is_empty() {
            let port = self.fulfillment().ok_or(CancelError::NoFulfillmentPort)?;
            let units: Vec<UnitsToCancel> = plan
                .reservations_to_release
                .iter()
                .map(|r| UnitsToCancel {
                    line_id: r.line_id.clone(),
                    location: r.location.clone(),
                    work: order
                        .line(&r.line_id)
                        .map_or(WorkKind::Ship, |l| WorkKind::of(&l.delivery)),
                    reservation_id: r.reservation_id.clone(),
                    qty: r.qty,
                })
                .collect();
            let outcomes = port
                .cancel_units(order_id, &units, reason, &operation, metadata.clone())
                .await?;
            for (r, outcome) in plan.reservations_to_release.iter().zip(outcomes) {
                if outcome.cancelled > 0 {
                    held.push(ReservationRelease {
                        qty: outcome.cancelled.min(r.qty),
                        ..r.clone()
                    });
                }
                if outcome.cancelled < r.qty {
                    not_cancelled.push(OrderError::NotCancellable {
                        field: field_of(&r.line_id),
                        line_id: r.line_id.clone(),
                        qty: r.qty - outcome.cancelled,
                        why: match outcome.refused {
                            Some(status) => {
                                format!("their fulfillment at {} is {status}", r.location)
                            }
                            None => format!("they are no longer held at {}", r.location),
                        },
                    });
                }
            }
        }
        let unheld: Vec<LineQty> = unheld
            .into_iter()
            .filter(|(_, qty)| *qty > 0)
            .map(|(line_id, qty)| LineQty::new(line_id, qty))
            .collect();
        if held.is_empty() && unheld.is_empty() {
            return Err(CancelError::Order(
                not_cancelled
                    .into_iter()
                    .next()
                    .unwrap_or(OrderError::NothingToCancel),
            ));
        }
        let command = OrderCommand::CancelConfirmed {
            operation,
            held,
            unheld,
            reason: reason.to_owned(),
        };
        let executed = self.execute(order_id, command, metadata).await?;
        Ok(Cancelled {
            executed,
            not_cancelled,
        })
    }
}

/// The operation a cancellation is recorded under: the same request on the same order
/// revision gives the same one (a retry), anything else another.
fn operation_id(
    order_id: Uuid,
    revision: Option<u64>,
    lines: Option<&[LineQty]>,
    reason: &str,
) -> String {
    let mut request = format!("cancel\n{revision:?}\n{reason}\n");
    match lines {
        None => request.push_str("all"),
        Some(lines) => {
            for l in lines {
                request.push_str(&format!("{}={};", l.line_id, l.qty));
            }
        }
    }
    format!("cancel:{}", Uuid::new_v5(&order_id, request.as_bytes()))
}
