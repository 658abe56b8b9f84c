//! Order cancellations, decided by the fulfillment orders that hold the units.
//!
//! Whether a unit can still be cancelled is a fact of the fulfillment order (has it been
//! shipped, handed over at the counter, expired?), not of the order: the order learns of a
//! shipment or a handover only when its process catches up. So a cancellation of units a
//! location holds is decided here first, on the fulfillment order's stream (its revision
//! check serialises it with a concurrent ship or handover: one of the two wins), and the
//! order then records exactly the units this answered. A cancel and a handover can never both
//! succeed.
//!
//! The order service reaches this through its `FulfillmentPort` (in the all-in-one process the
//! gateway's adapter calls [`OrderCancellation::cancel`] directly).

use crate::domain::{CancelledLine, FulfillmentCommand, FulfillmentError, FulfillmentKind};
use crate::handlers::{FulfillmentHandlerError, FulfillmentHandlers};
use crate::process::order_intake::{self, IntakeError, OrderIntake};
use ichigen_shared::envelope::Metadata;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Units of one order line the order wants to stop, as it holds them: at `location`, under
/// `reservation_id`, for this kind of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitsToCancel {
    pub line_id: String,
    pub location: String,
    pub kind: FulfillmentKind,
    /// The store a SHIP_TO_STORE line goes to.
    pub destination_store: Option<String>,
    pub reservation_id: String,
    pub qty: i64,
}

/// What the fulfillment order answered for one [`UnitsToCancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Units cancelled under the operation (now or by an earlier call with the same one).
    pub cancelled: i64,
    /// Why the rest was not: the fulfillment order's status (`SHIPPED`, `PICKED_UP`, …), or
    /// `None` when nothing of it was left there to stop.
    pub refused: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CancellationError {
    #[error(transparent)]
    Handler(#[from] FulfillmentHandlerError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// The order's units are in no fulfillment order (they should be: the intake creates one
    /// per placed allocation).
    #[error(
        "no fulfillment order of order {order_id} holds line {line_id} under {reservation_id}"
    )]
    NotFound {
        order_id: Uuid,
        line_id: String,
        reservation_id: String,
    },
}

/// Cancels order units on the fulfillment orders holding them.
#[derive(Clone)]
pub struct OrderCancellation {
    handlers: FulfillmentHandlers,
    intake: OrderIntake,
}

impl OrderCancellation {
    pub fn new(handlers: FulfillmentHandlers, intake: OrderIntake) -> Self {
        OrderCancellation { handlers, intake }
    }

    /// Asks each fulfillment order holding some of `units` to cancel them under `operation`
    /// (one command per fulfillment order). The answer has one outcome per entry of `units`,
    /// in order. The same operation again cancels nothing more and answers the same, so the
    /// caller may retry after any failure.
    pub async fn cancel(
        &self,
        order_id: Uuid,
        units: &[UnitsToCancel],
        reason: &str,
        operation: &str,
        metadata: Metadata,
    ) -> Result<Vec<CancelOutcome>, CancellationError> {
        // Which fulfillment order holds each entry.
        let mut by_fulfillment: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
        let mut ensured = false;
        for (i, u) in units.iter().enumerate() {
            let id = match self.holder(order_id, u).await? {
                Some(id) => id,
                None if !ensured => {
                    // The intake has not reached the order yet: create its fulfillment orders
                    // now (the intake's own commands, so its later run changes nothing).
                    self.intake.ensure_order(order_id).await?;
                    ensured = true;
                    self.holder(order_id, u)
                        .await?
                        .ok_or_else(|| not_found(order_id, u))?
                }
                None => return Err(not_found(order_id, u)),
            };
            by_fulfillment.entry(id).or_default().push(i);
        }
        let mut outcomes = vec![
            CancelOutcome {
                cancelled: 0,
                refused: None,
            };
            units.len()
        ];
        for (id, entries) in by_fulfillment {
            let lines = entries
                .iter()
                .map(|&i| CancelledLine {
                    line_id: units[i].line_id.clone(),
                    qty: units[i].qty,
                })
                .collect();
            let command = FulfillmentCommand::CancelUnits {
                operation: operation.to_owned(),
                lines,
                reason: reason.to_owned(),
            };
            let (state, refused) = match self.handlers.execute(id, command, metadata.clone()).await
            {
                Ok(done) => (done.state, None),
                Err(FulfillmentHandlerError::Refused(FulfillmentError::WrongStatus {
                    status,
                    ..
                })) => {
                    let (state, _) = self.handlers.load(id).await?;
                    (state, Some(status_name(status)))
                }
                Err(e) => return Err(e.into()),
            };
            // Entries of one line share what the operation took of it, first come first.
            let mut left: BTreeMap<&str, i64> = BTreeMap::new();
            for &i in &entries {
                let line = units[i].line_id.as_str();
                let pool = left
                    .entry(line)
                    .or_insert_with(|| state.cancelled_by(operation, line));
                let cancelled = (*pool).min(units[i].qty);
                *pool -= cancelled;
                outcomes[i] = CancelOutcome {
                    cancelled,
                    refused: if cancelled < units[i].qty {
                        refused.clone()
                    } else {
                        None
                    },
                };
            }
        }
        Ok(outcomes)
    }

    /// The fulfillment order holding `u`'s units: the placement's one for its group, or the
    /// one the intake created for a re-sourced reservation. `None` while neither exists.
    async fn holder(
        &self,
        order_id: Uuid,
        u: &UnitsToCancel,
    ) -> Result<Option<Uuid>, CancellationError> {
        let candidates = [
            order_intake::fulfillment_id(
                order_id,
                &u.location,
                u.kind,
                u.destination_store.as_deref(),
            ),
            order_intake::reassigned_fulfillment_id(order_id, &u.reservation_id),
        ];
        for id in candidates {
            let (state, _) = self.handlers.load(id).await?;
            if state
                .lines
                .get(&u.line_id)
                .is_some_and(|l| l.reservation_id == u.reservation_id)
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

fn not_found(order_id: Uuid, u: &UnitsToCancel) -> CancellationError {
    CancellationError::NotFound {
        order_id,
        line_id: u.line_id.clone(),
        reservation_id: u.reservation_id.clone(),
    }
}

/// The status as the APIs spell it.
fn status_name(status: crate::domain::FulfillmentStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{status:?}"))
}
