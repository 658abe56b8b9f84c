//! Commands of a fulfillment order and the pure decision that turns them into events.
//!
//! The steps per kind:
//!
//! | kind | steps |
//! |---|---|
//! | SHIP | OPEN → pick → PICKED → pack → PACKED → ship → SHIPPED → deliver → DELIVERED |
//! | PICKUP | OPEN → pick → PICKED → ready → READY_FOR_PICKUP → hand over → PICKED_UP (or EXPIRED) |
//! | SHIP_TO_STORE | OPEN → pick → PICKED → pack → PACKED → ship → SHIPPED → ready (arrived at the store) → READY_FOR_PICKUP → hand over → PICKED_UP (or EXPIRED) |
//!
//! Cancelling units is possible until they leave (shipped) or are handed over. Repeating the
//! step that was just taken with the same content is a retry and decides nothing (`Ok(vec![])`).

use super::events::*;
use super::{Fulfillment, FulfillmentKind, FulfillmentLine, FulfillmentStatus};
use chrono::{DateTime, Duration, Utc};
use thiserror::Error;
use uuid::Uuid;

/// Longest carrier name, tracking number, pickup code or reason accepted.
const MAX_TEXT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FulfillmentCommand {
    Create {
        fulfillment_id: Uuid,
        order_id: Uuid,
        location: String,
        kind: FulfillmentKind,
        destination_store: Option<String>,
        /// Local days of the collecting store a pickup waits once ready (see
        /// [`pickup_expiry`]), 1–30.
        pickup_hold_days: i64,
        /// The collecting store's IANA zone (a name the tz database does not know counts
        /// the hold in 24-hour periods, as orders created before zones were recorded).
        pickup_time_zone: Option<String>,
        lines: Vec<FulfillmentLine>,
    },
    /// Every line once: `picked + short` must be the line's quantity.
    Pick {
        lines: Vec<PickedLine>,
    },
    Pack {
        packages: i64,
    },
    Ship {
        carrier: String,
        tracking_number: String,
    },
    Deliver,
    /// At the counter (PICKUP after the pick, SHIP_TO_STORE once it arrived): the customer is
    /// notified with `pickup_code` and has the location's hold days to collect.
    MarkReady {
        pickup_code: String,
    },
    /// The customer shows the code at the counter.
    HandOver {
        pickup_code: String,
    },
    /// The expiry process: expires the order if its hold ran out at `now` (else nothing).
    ExpirePickup,
    /// Units this location will no longer fulfil; `None` = all that is left.
    Cancel {
        lines: Option<Vec<CancelledLine>>,
        reason: String,
    },
    /// The order's cancellation, decided here because only the fulfillment order knows
    /// whether its units are still in the building: refused once they are shipped or handed
    /// over (or the order expired), otherwise takes up to `qty` of each line (what is left
    /// of it), recorded under `operation` so that the same operation again takes nothing
    /// more and the order records the units exactly once.
    CancelUnits {
        operation: String,
        lines: Vec<CancelledLine>,
        reason: String,
    },
}

/// Why a fulfillment command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FulfillmentError {
    #[error("{field} is invalid: {reason}")]
    InvalidInput {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{field} must be at least {min}, got {value}")]
    InvalidQuantity {
        field: &'static str,
        value: i64,
        min: i64,
    },
    #[error("the fulfillment order does not exist")]
    NotCreated,
    #[error("the fulfillment order already exists with other content")]
    AlreadyCreated,
    #[error("line {0} is not part of this fulfillment order")]
    UnknownLine(String),
    #[error("line {line_id}: {reason}")]
    LineMismatch {
        line_id: String,
        reason: &'static str,
    },
    #[error("cannot {action} a fulfillment order that is {status:?}")]
    WrongStatus {
        action: &'static str,
        status: FulfillmentStatus,
    },
    #[error("cannot {action} a {kind:?} fulfillment order")]
    WrongKind {
        action: &'static str,
        kind: FulfillmentKind,
    },
    #[error("the pickup code does not match")]
    WrongPickupCode,
}

impl FulfillmentError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        use FulfillmentError::*;
        match self {
            InvalidInput { .. } | InvalidQuantity { .. } | LineMismatch { .. } => "INVALID_INPUT",
            WrongPickupCode => "INVALID_INPUT",
            NotCreated | UnknownLine(_) => "NOT_FOUND",
            AlreadyCreated | WrongStatus { .. } | WrongKind { .. } => "CONFLICT",
        }
    }

    /// The input field to blame (camelCase, as the APIs name it).
    pub fn field(&self) -> Option<&'static str> {
        use FulfillmentError::*;
        match self {
            InvalidInput { field, .. } | InvalidQuantity { field, .. } => Some(field),
            UnknownLine(_) | LineMismatch { .. } => Some("lines"),
            WrongPickupCode => Some("pickupCode"),
            NotCreated | AlreadyCreated | WrongStatus { .. } | WrongKind { .. } => None,
        }
    }
}

/// When a pickup made ready at `ready_at` expires: **N hold days** are the N local days of the
/// collecting store after the day it was made ready (that day itself does not count, however
/// late in it the pickup became ready), so the customer may collect it until local midnight at
/// the end of the Nth following day. Ready Monday 15:00 with 3 hold days: collectable through
/// Thursday, expired at Friday 00:00, store time. The end of a local day is its real midnight
/// (a day across a DST change is 23 or 25 hours). Without a zone the tz database knows (orders
/// created before zones were recorded), N × 24 hours from `ready_at`, as those were promised.
/// `days` is clamped to 1–30.
pub fn pickup_expiry(ready_at: DateTime<Utc>, days: i64, time_zone: Option<&str>) -> DateTime<Utc> {
    let days = days.clamp(1, 30);
    time_zone
        .and_then(ichigen_shared::local_day::time_zone)
        .and_then(|tz| {
            let n = u32::try_from(days).ok()?;
            ichigen_shared::local_day::end_of_nth_day(tz, ready_at, n)
        })
        .unwrap_or_else(|| ready_at + Duration::days(days))
}

/// Decides one command. Pure: `now` is a parameter (expiry and hold days).
pub fn decide(
    state: &Fulfillment,
    command: &FulfillmentCommand,
    now: DateTime<Utc>,
) -> Result<Vec<FulfillmentEvent>, FulfillmentError> {
    use FulfillmentCommand as C;
    use FulfillmentStatus as S;
    if let C::Create {
        fulfillment_id,
        order_id,
        location,
        kind,
        destination_store,
        pickup_hold_days,
        pickup_time_zone,
        lines,
    } = command
    {
        let created = FulfillmentCreated {
            fulfillment_id: *fulfillment_id,
            order_id: *order_id,
            location: location.clone(),
            kind: *kind,
            destination_store: destination_store.clone(),
            pickup_hold_days: *pickup_hold_days,
            pickup_time_zone: pickup_time_zone.clone(),
            lines: lines.clone(),
        };
        return create(state, created);
    }
    let (Some(created), Some(status)) = (&state.created, state.status) else {
        return Err(FulfillmentError::NotCreated);
    };
    let kind = created.kind;
    let one = |e: FulfillmentEvent| Ok(vec![e]);
    match command {
        C::Create { .. } => Ok(vec![]), // handled above
        C::Pick { lines } => {
            if status == S::Picked && picked_matches(state, lines) {
                return Ok(vec![]);
            }
            require(status, &[S::Open], "pick")?;
            check_pick(state, lines)?;
            one(LinesPicked {
                lines: lines.clone(),
            }
            .into())
        }
        C::Pack { packages } => {
            if kind == FulfillmentKind::Pickup {
                return Err(FulfillmentError::WrongKind {
                    action: "pack",
                    kind,
                });
            }
            if status == S::Packed {
                return Ok(vec![]);
            }
            require(status, &[S::Picked], "pack")?;
            if *packages < 1 {
                return Err(FulfillmentError::InvalidQuantity {
                    field: "packages",
                    value: *packages,
                    min: 1,
                });
            }
            one(FulfillmentPacked {
                packages: *packages,
            }
            .into())
        }
        C::Ship {
            carrier,
            tracking_number,
        } => {
            if kind == FulfillmentKind::Pickup {
                return Err(FulfillmentError::WrongKind {
                    action: "ship",
                    kind,
                });
            }
            if status == S::Shipped && state.tracking_number.as_ref() == Some(tracking_number) {
                return Ok(vec![]);
            }
            require(status, &[S::Packed], "ship")?;
            text("carrier", carrier)?;
            text("trackingNumber", tracking_number)?;
            one(FulfillmentShipped {
                carrier: carrier.clone(),
                tracking_number: tracking_number.clone(),
            }
            .into())
        }
        C::Deliver => {
            if kind != FulfillmentKind::Ship {
                return Err(FulfillmentError::WrongKind {
                    action: "deliver",
                    kind,
                });
            }
            if status == S::Delivered {
                return Ok(vec![]);
            }
            require(status, &[S::Shipped], "deliver")?;
            one(FulfillmentDelivered { delivered_at: now }.into())
        }
        C::MarkReady { pickup_code } => {
            let ready_from = match kind {
                FulfillmentKind::Pickup => S::Picked,
                FulfillmentKind::ShipToStore => S::Shipped,
                FulfillmentKind::Ship => {
                    return Err(FulfillmentError::WrongKind {
                        action: "mark ready for pickup",
                        kind,
                    })
                }
            };
            if status == S::ReadyForPickup && state.pickup_code.as_ref() == Some(pickup_code) {
                return Ok(vec![]);
            }
            require(status, &[ready_from], "mark ready for pickup")?;
            check_pickup_code(pickup_code)?;
            let expires_at = pickup_expiry(
                now,
                created.pickup_hold_days,
                created.pickup_time_zone.as_deref(),
            );
            one(ReadyForPickup {
                pickup_code: pickup_code.clone(),
                expires_at,
            }
            .into())
        }
        C::HandOver { pickup_code } => {
            if status == S::PickedUp {
                return Ok(vec![]);
            }
            require(status, &[S::ReadyForPickup], "hand over")?;
            if state.pickup_code.as_ref() != Some(pickup_code) {
                return Err(FulfillmentError::WrongPickupCode);
            }
            one(PickedUp { picked_up_at: now }.into())
        }
        C::ExpirePickup => {
            let due = state.pickup_expires_at.is_some_and(|at| at <= now);
            if status == S::ReadyForPickup && due {
                one(PickupExpired { expired_at: now }.into())
            } else {
                // Not due, or already collected/expired: nothing to do (the process retries).
                Ok(vec![])
            }
        }
        C::Cancel { lines, reason } => {
            text("reason", reason)?;
            require(
                status,
                &[S::Open, S::Picked, S::Packed, S::ReadyForPickup],
                "cancel",
            )?;
            let cancelled = match lines {
                None => state
                    .lines
                    .values()
                    .filter(|l| l.qty > 0)
                    .map(|l| CancelledLine {
                        line_id: l.line_id.clone(),
                        qty: l.qty,
                    })
                    .collect(),
                Some(lines) => {
                    for c in lines {
                        let line = state
                            .lines
                            .get(&c.line_id)
                            .ok_or_else(|| FulfillmentError::UnknownLine(c.line_id.clone()))?;
                        if c.qty < 1 {
                            return Err(FulfillmentError::InvalidQuantity {
                                field: "qty",
                                value: c.qty,
                                min: 1,
                            });
                        }
                        if c.qty > line.qty {
                            return Err(FulfillmentError::LineMismatch {
                                line_id: c.line_id.clone(),
                                reason: "cancels more than is left to fulfil",
                            });
                        }
                    }
                    lines.clone()
                }
            };
            if cancelled.is_empty() {
                return Ok(vec![]);
            }
            one(FulfillmentLinesCancelled {
                lines: cancelled,
                reason: reason.clone(),
                operation: None,
            }
            .into())
        }
        C::CancelUnits {
            operation,
            lines,
            reason,
        } => cancel_units(state, status, operation, lines, reason),
    }
}

fn cancel_units(
    state: &Fulfillment,
    status: FulfillmentStatus,
    operation: &str,
    lines: &[CancelledLine],
    reason: &str,
) -> Result<Vec<FulfillmentEvent>, FulfillmentError> {
    text("operation", operation)?;
    text("reason", reason)?;
    if state.cancel_operations.contains_key(operation) {
        // The same cancellation again (a retry, or the order's recovery): already decided.
        return Ok(vec![]);
    }
    if lines.is_empty() {
        return Err(FulfillmentError::InvalidInput {
            field: "lines",
            reason: "must not be empty",
        });
    }
    let mut taken = Vec::with_capacity(lines.len());
    for c in lines {
        let line = state
            .lines
            .get(&c.line_id)
            .ok_or_else(|| FulfillmentError::UnknownLine(c.line_id.clone()))?;
        if c.qty < 1 {
            return Err(FulfillmentError::InvalidQuantity {
                field: "qty",
                value: c.qty,
                min: 1,
            });
        }
        let already: i64 = taken
            .iter()
            .filter(|t: &&CancelledLine| t.line_id == c.line_id)
            .map(|t| t.qty)
            .sum();
        let take = c.qty.min(line.qty - already);
        if take > 0 {
            taken.push(CancelledLine {
                line_id: c.line_id.clone(),
                qty: take,
            });
        }
    }
    if !state.is_cancellable() {
        return Err(FulfillmentError::WrongStatus {
            action: "cancel",
            status,
        });
    }
    if taken.is_empty() {
        // Nothing of these lines is left here (short-picked meanwhile): nothing to stop.
        return Ok(vec![]);
    }
    Ok(vec![FulfillmentLinesCancelled {
        lines: taken,
        reason: reason.to_owned(),
        operation: Some(operation.to_owned()),
    }
    .into()])
}

fn create(
    state: &Fulfillment,
    created: FulfillmentCreated,
) -> Result<Vec<FulfillmentEvent>, FulfillmentError> {
    if let Some(existing) = &state.created {
        // The process manager may create twice after a crash: the same content is a retry.
        let same = existing.fulfillment_id == created.fulfillment_id
            && existing.order_id == created.order_id
            && existing.location == created.location
            && existing.kind == created.kind;
        return if same {
            Ok(vec![])
        } else {
            Err(FulfillmentError::AlreadyCreated)
        };
    }
    text("location", &created.location)?;
    if created.lines.is_empty() {
        return Err(FulfillmentError::InvalidInput {
            field: "lines",
            reason: "must not be empty",
        });
    }
    if !(1..=30).contains(&created.pickup_hold_days) {
        return Err(FulfillmentError::InvalidInput {
            field: "pickupHoldDays",
            reason: "must be between 1 and 30",
        });
    }
    match (created.kind, &created.destination_store) {
        (FulfillmentKind::ShipToStore, None) => {
            return Err(FulfillmentError::InvalidInput {
                field: "destinationStore",
                reason: "a SHIP_TO_STORE order needs the store it goes to",
            })
        }
        (FulfillmentKind::Ship | FulfillmentKind::Pickup, Some(_)) => {
            return Err(FulfillmentError::InvalidInput {
                field: "destinationStore",
                reason: "only SHIP_TO_STORE orders go to a store",
            })
        }
        _ => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for line in &created.lines {
        text("lineId", &line.line_id)?;
        text("sku", &line.sku)?;
        text("reservationId", &line.reservation_id)?;
        if line.qty < 1 {
            return Err(FulfillmentError::InvalidQuantity {
                field: "qty",
                value: line.qty,
                min: 1,
            });
        }
        if line.picked != 0 || line.short != 0 || line.cancelled != 0 {
            return Err(FulfillmentError::LineMismatch {
                line_id: line.line_id.clone(),
                reason: "a new line has nothing picked, short or cancelled",
            });
        }
        if !seen.insert(&line.line_id) {
            return Err(FulfillmentError::LineMismatch {
                line_id: line.line_id.clone(),
                reason: "appears twice",
            });
        }
    }
    Ok(vec![created.into()])
}

/// Every line reported once, with `picked + short` equal to what is left of it.
fn check_pick(state: &Fulfillment, lines: &[PickedLine]) -> Result<(), FulfillmentError> {
    let mut seen = std::collections::BTreeSet::new();
    for p in lines {
        let line = state
            .lines
            .get(&p.line_id)
            .ok_or_else(|| FulfillmentError::UnknownLine(p.line_id.clone()))?;
        if p.picked < 0 || p.short < 0 {
            return Err(FulfillmentError::InvalidQuantity {
                field: if p.picked < 0 { "picked" } else { "short" },
                value: p.picked.min(p.short),
                min: 0,
            });
        }
        if p.picked.checked_add(p.short) != Some(line.qty) {
            return Err(FulfillmentError::LineMismatch {
                line_id: p.line_id.clone(),
                reason: "picked + short must equal the line's quantity",
            });
        }
        if !seen.insert(&p.line_id) {
            return Err(FulfillmentError::LineMismatch {
                line_id: p.line_id.clone(),
                reason: "appears twice",
            });
        }
    }
    if let Some(missing) = state
        .lines
        .values()
        .find(|l| l.qty > 0 && !seen.contains(&l.line_id))
    {
        return Err(FulfillmentError::LineMismatch {
            line_id: missing.line_id.clone(),
            reason: "every line must be reported by the pick",
        });
    }
    Ok(())
}

/// A repeated pick report: the same quantities as the pick already recorded.
fn picked_matches(state: &Fulfillment, lines: &[PickedLine]) -> bool {
    lines.len()
        == state
            .lines
            .values()
            .filter(|l| l.picked + l.short > 0)
            .count()
        && lines.iter().all(|p| {
            state
                .lines
                .get(&p.line_id)
                .is_some_and(|l| l.picked == p.picked && l.short == p.short)
        })
}

fn require(
    status: FulfillmentStatus,
    allowed: &[FulfillmentStatus],
    action: &'static str,
) -> Result<(), FulfillmentError> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(FulfillmentError::WrongStatus { action, status })
    }
}

fn text(field: &'static str, value: &str) -> Result<(), FulfillmentError> {
    if value.trim().is_empty() {
        Err(FulfillmentError::InvalidInput {
            field,
            reason: "must not be empty",
        })
    } else if value.chars().count() > MAX_TEXT {
        Err(FulfillmentError::InvalidInput {
            field,
            reason: "is too long",
        })
    } else {
        Ok(())
    }
}

/// 4–12 ASCII letters or digits: read out at a counter and typed by staff.
fn check_pickup_code(code: &str) -> Result<(), FulfillmentError> {
    if (4..=12).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(FulfillmentError::InvalidInput {
            field: "pickupCode",
            reason: "must be 4 to 12 letters or digits",
        })
    }
}
