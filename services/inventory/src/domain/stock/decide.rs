//! Commands of a stock item and the pure decision that turns them into events.

use chrono::{DateTime, Utc};

use super::events::*;
use super::{ReservationStatus, ReturnOutcome, StockItem, TransferInStatus};
use crate::domain::error::{add, non_negative, optional_text, positive, text, InventoryError};
use ichigen_shared::validate::{MAX_CODE, MAX_ID, MAX_REFERENCE, MAX_TEXT};

/// What callers (WMS, staff, order process, expiry process) ask of one SKU × location.
/// Field names in errors are the camelCase names the APIs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockCommand {
    ReceiveGoods {
        qty: i64,
        reference: Option<String>,
    },
    /// `delta` is non-zero and may be negative; it may not take on hand below reserved.
    Adjust {
        delta: i64,
        reason_code: String,
        reference: Option<String>,
    },
    /// Absolute count; a count below reserved records a shortfall instead of refusing (the
    /// shelf is what it is). `reference` names the count sheet or task.
    CountCycle {
        counted: i64,
        reference: Option<String>,
    },
    /// "Set on hand to `new_on_hand` only if it is still `expected_on_hand`".
    CompareAndSet {
        expected_on_hand: i64,
        new_on_hand: i64,
    },
    /// Ships `qty` to `to_location` (a defined, active location other than this one: the
    /// handler checks that against the locations). A transfer id ships once from here; the same
    /// transfer again is a no-op, the id with other content a conflict.
    TransferOut {
        qty: i64,
        to_location: String,
        transfer_id: String,
    },
    /// Announces a transfer from `from_location` before it ships (`/transfers/expected`):
    /// counted in incoming until its shipment is in transit here; never receivable by itself.
    /// Idempotent per transfer id.
    ExpectIncoming {
        qty: i64,
        transfer_id: String,
        from_location: String,
    },
    /// The destination's side of a shipped transfer (sent by the handler right after the
    /// source's `TransferOut`, and by the checkpointed transfer process for whatever it
    /// missed): recorded once per transfer id, taking the place of an announcement.
    RecordInTransit {
        qty: i64,
        transfer_id: String,
        from_location: String,
    },
    /// Receives a transfer in transit here, once, at most what it shipped.
    TransferIn {
        qty: i64,
        transfer_id: String,
    },
    /// A returned unit put back into sellable stock. `key` names the unit (`<rmaId>/<unitId>`):
    /// a key already received here is a no-op, so the checkpointed returns process can send
    /// it again after a crash. Allowed on a SKU never stocked here (a resale SKU's first unit).
    ReceiveReturn {
        qty: i64,
        rma_id: String,
        key: String,
    },
    /// A returned unit that arrived here and is written off: `disposition` is
    /// [`WRITE_OFF_DISPOSITIONS`] (`DISPOSE`, `RETURN_TO_VENDOR`), `reason` the grade's reason.
    /// On hand does not change; the write-off is recorded in the stock ledger for audit and
    /// counted in [`StockItem::written_off`]. Idempotent per `key`, like `ReceiveReturn` (the
    /// two share the keys: a unit is either restocked or written off).
    WriteOffReturn {
        qty: i64,
        rma_id: String,
        key: String,
        disposition: String,
        reason: String,
    },
    MoveToNonSellable {
        qty: i64,
        reason: String,
    },
    MoveToSellable {
        qty: i64,
    },
    SetSafetyStock {
        qty: i64,
    },
    Reserve {
        reservation_id: String,
        owner: String,
        qty: i64,
        expires_at: Option<DateTime<Utc>>,
    },
    Confirm {
        reservation_id: String,
    },
    Release {
        reservation_id: String,
    },
    Consume {
        reservation_id: String,
        qty: i64,
    },
    /// "This reservation's consumed total must be at least `total`": consumes the difference
    /// (nothing when already there), with the checks of `Consume`. Unlike `Consume`, sending
    /// it twice takes nothing twice, so a process that replays its events (after a crash before
    /// its checkpoint) can send it again safely: the order process passes the cumulative units
    /// the order shipped from the reservation.
    ConsumeUpTo {
        reservation_id: String,
        total: i64,
    },
    /// Expires every open reservation whose `expires_at` is at or before the decision's `now`
    /// (the clock is a parameter of [`decide`], so tests drive it).
    ExpireReservations,
}

/// The dispositions a returned unit can be written off with. Restock and resale are not
/// write-offs: those units are received into stock ([`StockCommand::ReceiveReturn`]).
pub const WRITE_OFF_DISPOSITIONS: [&str; 2] = ["DISPOSE", "RETURN_TO_VENDOR"];

impl StockCommand {
    /// The checks that need no state: quantities in range, and every code, id and text by the
    /// one rule ([`ichigen_shared::validate::check_text`]). [`decide`] runs them first; the
    /// APIs run them before they claim an idempotency key, so that a request refused for its
    /// input records nothing.
    pub fn validate(&self) -> Result<(), InventoryError> {
        use StockCommand as C;
        let reference = |r: &Option<String>| optional_text("reference", r, MAX_REFERENCE);
        match self {
            C::ReceiveGoods { qty, reference: r } => {
                positive("qty", *qty)?;
                reference(r)
            }
            C::Adjust {
                delta,
                reason_code,
                reference: r,
            } => {
                if *delta == 0 {
                    return Err(InventoryError::InvalidInput {
                        field: "delta",
                        reason: "must not be zero",
                    });
                }
                text("reasonCode", reason_code, MAX_CODE)?;
                reference(r)
            }
            C::CountCycle {
                counted,
                reference: r,
            } => {
                non_negative("counted", *counted)?;
                reference(r)
            }
            C::CompareAndSet {
                expected_on_hand,
                new_on_hand,
            } => {
                non_negative("expectedOnHand", *expected_on_hand)?;
                non_negative("newOnHand", *new_on_hand)?;
                Ok(())
            }
            C::TransferOut {
                qty,
                to_location,
                transfer_id,
            } => {
                positive("qty", *qty)?;
                other_location("toLocation", to_location)?;
                text("transferId", transfer_id, MAX_REFERENCE)
            }
            C::ExpectIncoming {
                qty,
                transfer_id,
                from_location,
            }
            | C::RecordInTransit {
                qty,
                transfer_id,
                from_location,
            } => {
                positive("qty", *qty)?;
                text("transferId", transfer_id, MAX_REFERENCE)?;
                other_location("fromLocation", from_location)
            }
            C::TransferIn { qty, transfer_id } => {
                positive("qty", *qty)?;
                text("transferId", transfer_id, MAX_REFERENCE)
            }
            C::ReceiveReturn { qty, rma_id, key } => {
                positive("qty", *qty)?;
                text("rmaId", rma_id, MAX_REFERENCE)?;
                text("key", key, MAX_REFERENCE)
            }
            C::WriteOffReturn {
                qty,
                rma_id,
                key,
                disposition,
                reason,
            } => {
                positive("qty", *qty)?;
                text("rmaId", rma_id, MAX_REFERENCE)?;
                text("key", key, MAX_REFERENCE)?;
                if !WRITE_OFF_DISPOSITIONS.contains(&disposition.as_str()) {
                    return Err(InventoryError::InvalidInput {
                        field: "disposition",
                        reason: "must be DISPOSE or RETURN_TO_VENDOR",
                    });
                }
                text("reason", reason, MAX_TEXT)
            }
            C::MoveToNonSellable { qty, reason } => {
                positive("qty", *qty)?;
                text("reason", reason, MAX_TEXT)
            }
            C::MoveToSellable { qty } => positive("qty", *qty).map(drop),
            C::SetSafetyStock { qty } => non_negative("qty", *qty).map(drop),
            C::Reserve {
                reservation_id,
                owner,
                qty,
                ..
            } => {
                text("reservationId", reservation_id, MAX_ID)?;
                text("owner", owner, MAX_ID)?;
                positive("qty", *qty).map(drop)
            }
            C::Confirm { reservation_id } | C::Release { reservation_id } => {
                text("reservationId", reservation_id, MAX_ID)
            }
            C::Consume {
                reservation_id,
                qty,
            } => {
                positive("qty", *qty)?;
                text("reservationId", reservation_id, MAX_ID)
            }
            C::ConsumeUpTo {
                reservation_id,
                total,
            } => {
                positive("total", *total)?;
                text("reservationId", reservation_id, MAX_ID)
            }
            C::ExpireReservations => Ok(()),
        }
    }

    /// The other location a transfer names (its destination or its source), if any.
    pub fn other_location(&self) -> Option<(&'static str, &str)> {
        match self {
            StockCommand::TransferOut { to_location, .. } => Some(("toLocation", to_location)),
            StockCommand::ExpectIncoming { from_location, .. }
            | StockCommand::RecordInTransit { from_location, .. } => {
                Some(("fromLocation", from_location))
            }
            _ => None,
        }
    }

    /// Commands that only make sense on stock that exists here. Receipts, counts, announced
    /// transfers, returns (received or written off) and safety stock may be the first thing
    /// that happens to a SKU at a location — a resale SKU's first unit arrives as a return
    /// receipt — so they create the stock record; reservation commands name a reservation and
    /// fail on their own.
    fn needs_existing_stock(&self) -> bool {
        matches!(
            self,
            StockCommand::Adjust { .. }
                | StockCommand::TransferOut { .. }
                | StockCommand::MoveToNonSellable { .. }
                | StockCommand::MoveToSellable { .. }
                | StockCommand::Reserve { .. }
        )
    }
}

/// Decides one command against the folded state. Pure: no clock reads, no I/O; `now` is only
/// used for expiries. `Ok(vec![])` means "already done" (an idempotent retry).
pub fn decide(
    state: &StockItem,
    command: &StockCommand,
    now: DateTime<Utc>,
) -> Result<Vec<StockEvent>, InventoryError> {
    use StockCommand as C;
    let one = |e: StockEvent| Ok(vec![e]);
    command.validate()?;
    if !state.known && command.needs_existing_stock() {
        return Err(InventoryError::UnknownSku);
    }
    match command {
        C::ReceiveGoods { qty, reference } => {
            let qty = *qty;
            add("qty", state.on_hand, qty)?;
            one(GoodsReceived {
                qty,
                reference: reference.clone(),
            }
            .into())
        }
        C::Adjust {
            delta,
            reason_code,
            reference,
        } => {
            let on_hand_after = add("delta", state.on_hand, *delta)?;
            if *delta < 0 && on_hand_after < state.reserved {
                return Err(InventoryError::BelowReserved {
                    on_hand_after,
                    reserved: state.reserved,
                });
            }
            one(StockAdjusted {
                delta: *delta,
                reason_code: reason_code.clone(),
                reference: reference.clone(),
            }
            .into())
        }
        C::CountCycle { counted, reference } => {
            let counted = *counted;
            one(CycleCounted {
                counted,
                delta: counted - state.on_hand,
                shortfall: (state.reserved - counted).max(0),
                reference: reference.clone(),
            }
            .into())
        }
        C::CompareAndSet {
            expected_on_hand,
            new_on_hand,
        } => {
            let new_on_hand = *new_on_hand;
            if *expected_on_hand != state.on_hand {
                return Err(InventoryError::OnHandMismatch {
                    expected: *expected_on_hand,
                    actual: state.on_hand,
                });
            }
            if new_on_hand == state.on_hand {
                return Ok(vec![]);
            }
            one(OnHandSet {
                expected_on_hand: *expected_on_hand,
                new_on_hand,
                delta: new_on_hand - state.on_hand,
                shortfall: (state.reserved - new_on_hand).max(0),
            }
            .into())
        }
        C::TransferOut {
            qty,
            to_location,
            transfer_id,
        } => {
            let qty = *qty;
            if let Some(shipped) = state.transfers_out.get(transfer_id) {
                return if shipped.to_location == *to_location && shipped.qty == qty {
                    Ok(vec![])
                } else {
                    Err(transfer_conflict(transfer_id))
                };
            }
            take_unreserved(state, qty)?;
            one(TransferShipped {
                qty,
                to_location: to_location.clone(),
                transfer_id: transfer_id.clone(),
            }
            .into())
        }
        C::ExpectIncoming {
            qty,
            transfer_id,
            from_location,
        } => {
            let qty = *qty;
            if let Some(t) = state.transfers_in.get(transfer_id) {
                let same_source = t
                    .from_location
                    .as_deref()
                    .is_none_or(|f| f == from_location);
                return match t.status {
                    TransferInStatus::Announced if same_source && t.qty == qty => Ok(vec![]),
                    // Already shipped (or received): the shipment is what counts; announcing
                    // it late adds nothing.
                    TransferInStatus::InTransit | TransferInStatus::Received if same_source => {
                        Ok(vec![])
                    }
                    _ => Err(transfer_conflict(transfer_id)),
                };
            }
            add("qty", state.incoming, qty)?;
            one(IncomingExpected {
                qty,
                transfer_id: transfer_id.clone(),
                from_location: Some(from_location.clone()),
            }
            .into())
        }
        C::RecordInTransit {
            qty,
            transfer_id,
            from_location,
        } => {
            let qty = *qty;
            let announced = match state.transfers_in.get(transfer_id) {
                None => 0,
                // The shipment takes the announcement's place, whatever it said.
                Some(t) if t.status == TransferInStatus::Announced => t.qty,
                Some(t) => {
                    let same = t
                        .from_location
                        .as_deref()
                        .is_none_or(|f| f == from_location);
                    // Recorded before (the handler and the process both send it), or received
                    // already: nothing to do. The same id from elsewhere is another transfer.
                    let same_qty = t.status == TransferInStatus::Received || t.qty == qty;
                    return if same && same_qty {
                        Ok(vec![])
                    } else {
                        Err(transfer_conflict(transfer_id))
                    };
                }
            };
            add("qty", state.incoming, qty)?;
            one(TransferInTransit {
                qty,
                transfer_id: transfer_id.clone(),
                from_location: from_location.clone(),
                incoming_cleared: announced.min(state.incoming),
            }
            .into())
        }
        C::TransferIn { qty, transfer_id } => {
            let qty = *qty;
            let transfer = state.transfers_in.get(transfer_id);
            let in_transit = match transfer {
                Some(t) if t.status == TransferInStatus::InTransit => t,
                Some(t) if t.status == TransferInStatus::Received => {
                    return Err(InventoryError::TransferAlreadyReceived {
                        transfer_id: transfer_id.clone(),
                    })
                }
                _ => {
                    return Err(InventoryError::TransferNotInTransit {
                        transfer_id: transfer_id.clone(),
                    })
                }
            };
            if qty > in_transit.qty {
                return Err(InventoryError::TransferExceedsInTransit {
                    transfer_id: transfer_id.clone(),
                    requested: qty,
                    in_transit: in_transit.qty,
                });
            }
            add("qty", state.on_hand, qty)?;
            one(TransferReceived {
                qty,
                transfer_id: transfer_id.clone(),
                incoming_cleared: in_transit.qty.min(state.incoming),
                from_location: in_transit.from_location.clone(),
            }
            .into())
        }
        C::ReceiveReturn { qty, rma_id, key } => {
            let qty = *qty;
            if seen_return_key(state, key, ReturnOutcome::Received)? {
                return Ok(vec![]);
            }
            add("qty", state.on_hand, qty)?;
            one(ReturnReceived {
                qty,
                rma_id: rma_id.clone(),
                key: key.clone(),
            }
            .into())
        }
        C::WriteOffReturn {
            qty,
            rma_id,
            key,
            disposition,
            reason,
        } => {
            let qty = *qty;
            if seen_return_key(state, key, ReturnOutcome::WrittenOff)? {
                return Ok(vec![]);
            }
            add("qty", state.written_off, qty)?;
            one(ReturnWrittenOff {
                qty,
                rma_id: rma_id.clone(),
                key: key.clone(),
                disposition: disposition.clone(),
                reason: reason.clone(),
            }
            .into())
        }
        C::MoveToNonSellable { qty, reason } => {
            let qty = *qty;
            add("qty", state.non_sellable, qty)?;
            take_unreserved(state, qty)?;
            one(StockMovedToNonSellable {
                qty,
                reason: reason.clone(),
            }
            .into())
        }
        C::MoveToSellable { qty } => {
            let qty = *qty;
            if qty > state.non_sellable {
                return Err(InventoryError::InsufficientNonSellable {
                    requested: qty,
                    non_sellable: state.non_sellable,
                });
            }
            add("qty", state.on_hand, qty)?;
            one(StockMovedToSellable { qty }.into())
        }
        C::SetSafetyStock { qty } => {
            let qty = *qty;
            if qty == state.safety_stock {
                return Ok(vec![]);
            }
            one(SafetyStockSet { qty }.into())
        }
        C::Reserve {
            reservation_id,
            owner,
            qty,
            expires_at,
        } => reserve(state, reservation_id, owner, *qty, *expires_at, now),
        C::Confirm { reservation_id } => {
            let r = open_reservation(state, reservation_id)?;
            if r.status == ReservationStatus::Confirmed {
                return Ok(vec![]);
            }
            one(ReservationConfirmed {
                reservation_id: reservation_id.clone(),
            }
            .into())
        }
        C::Release { reservation_id } => {
            let r = state.reservations.get(reservation_id).ok_or_else(|| {
                InventoryError::ReservationNotFound {
                    reservation_id: reservation_id.clone(),
                }
            })?;
            match r.status {
                // A second release, or a release after the hold expired: the stock is already
                // free, which is what the caller wants; answering Ok keeps cancels retryable.
                ReservationStatus::Released | ReservationStatus::Expired => Ok(vec![]),
                ReservationStatus::Consumed => Err(closed(reservation_id, r.status)),
                ReservationStatus::Held | ReservationStatus::Confirmed => {
                    one(ReservationReleased {
                        reservation_id: reservation_id.clone(),
                        qty: r.quantity,
                    }
                    .into())
                }
            }
        }
        C::Consume {
            reservation_id,
            qty,
        } => consume(state, reservation_id, *qty),
        C::ConsumeUpTo {
            reservation_id,
            total,
        } => {
            let total = *total;
            let r = state.reservations.get(reservation_id).ok_or_else(|| {
                InventoryError::ReservationNotFound {
                    reservation_id: reservation_id.clone(),
                }
            })?;
            if total <= r.consumed {
                // Already there (a replay): closed or not, nothing to take.
                return Ok(vec![]);
            }
            consume(state, reservation_id, total - r.consumed)
        }
        C::ExpireReservations => Ok(state
            .open_reservations()
            .filter(|(_, r)| r.expires_at.is_some_and(|at| at <= now))
            .map(|(id, r)| {
                ReservationExpired {
                    reservation_id: id.clone(),
                    qty: r.quantity,
                }
                .into()
            })
            .collect()),
    }
}

fn reserve(
    state: &StockItem,
    reservation_id: &str,
    owner: &str,
    qty: i64,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<StockEvent>, InventoryError> {
    if let Some(existing) = state.reservations.get(reservation_id) {
        // Same id, owner and quantity: a retry of a Reserve that already happened (whatever
        // became of it since); the first expiry stands (a retry computes its own "now + hold",
        // which must not turn it into a conflict). Anything else reusing the id is a caller bug.
        return if existing.owner == owner && existing.requested == qty {
            Ok(vec![])
        } else {
            Err(InventoryError::ReservationConflict {
                reservation_id: reservation_id.to_owned(),
            })
        };
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(InventoryError::InvalidInput {
            field: "expiresAt",
            reason: "must be in the future",
        });
    }
    let available = state.available();
    if qty > available {
        return Err(InventoryError::InsufficientStock {
            requested: qty,
            available,
        });
    }
    Ok(vec![Reserved {
        reservation_id: reservation_id.to_owned(),
        owner: owner.to_owned(),
        qty,
        expires_at,
    }
    .into()])
}

/// Takes `qty` (≥ 1) of an open reservation out of stock: the checks `Consume` and
/// `ConsumeUpTo` share.
fn consume(
    state: &StockItem,
    reservation_id: &str,
    qty: i64,
) -> Result<Vec<StockEvent>, InventoryError> {
    let r = open_reservation(state, reservation_id)?;
    if qty > r.quantity {
        return Err(InventoryError::ExceedsReservation {
            requested: qty,
            reserved: r.quantity,
        });
    }
    // After a shortfall count the shelf may hold less than was promised: refuse rather than let
    // on hand go negative.
    if qty > state.on_hand {
        return Err(InventoryError::InsufficientStock {
            requested: qty,
            available: state.on_hand,
        });
    }
    Ok(vec![ReservationConsumed {
        reservation_id: reservation_id.to_owned(),
        qty,
    }
    .into()])
}

/// Whether the returned unit `key` was already handled here with `outcome` (a retry: the
/// caller answers with no events); the other outcome under the same key is a conflict.
/// Validated inputs are checked first, so a malformed retry is still refused as malformed.
fn seen_return_key(
    state: &StockItem,
    key: &str,
    outcome: ReturnOutcome,
) -> Result<bool, InventoryError> {
    match state.return_keys.get(key) {
        None => Ok(false),
        Some(done) if *done == outcome => Ok(true),
        Some(done) => Err(InventoryError::ReturnKeyConflict {
            key: key.to_owned(),
            outcome: match done {
                ReturnOutcome::Received => "received into stock",
                ReturnOutcome::WrittenOff => "written off",
            },
        }),
    }
}

/// The code of another location a command names: the location code rule, blamed on `field`.
fn other_location(field: &'static str, code: &str) -> Result<(), InventoryError> {
    crate::domain::location::validate_code(code).map_err(|e| match e {
        InventoryError::InvalidLocation { reason, .. } => {
            InventoryError::InvalidInput { field, reason }
        }
        other => other,
    })
}

fn transfer_conflict(transfer_id: &str) -> InventoryError {
    InventoryError::TransferConflict {
        transfer_id: transfer_id.to_owned(),
    }
}

/// Movements that take stock away may only take what is not promised.
fn take_unreserved(state: &StockItem, qty: i64) -> Result<(), InventoryError> {
    let on_hand_after = state.on_hand - qty;
    if on_hand_after < state.reserved || on_hand_after < 0 {
        return Err(InventoryError::BelowReserved {
            on_hand_after,
            reserved: state.reserved,
        });
    }
    Ok(())
}

fn closed(reservation_id: &str, status: ReservationStatus) -> InventoryError {
    InventoryError::ReservationClosed {
        reservation_id: reservation_id.to_owned(),
        status: status.as_str(),
    }
}

fn open_reservation<'a>(
    state: &'a StockItem,
    reservation_id: &str,
) -> Result<&'a super::Reservation, InventoryError> {
    let r = state.reservations.get(reservation_id).ok_or_else(|| {
        InventoryError::ReservationNotFound {
            reservation_id: reservation_id.to_owned(),
        }
    })?;
    if !r.status.is_open() {
        return Err(closed(reservation_id, r.status));
    }
    Ok(r)
}

/// Decides several commands on one SKU × location as one unit: each is decided against the
/// state after the previous ones' events, and the first refusal refuses them all (with its
/// index). This is how two lines of one order on the same SKU × location are checked together
/// — reserving 3 + 3 with 5 available fails as a whole instead of leaving 3 reserved.
pub fn decide_batch(
    state: &StockItem,
    commands: &[StockCommand],
    now: DateTime<Utc>,
) -> Result<Vec<StockEvent>, (usize, InventoryError)> {
    let mut scratch = state.clone();
    let mut events = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let decided = decide(&scratch, command, now).map_err(|e| (index, e))?;
        for event in &decided {
            scratch.apply(event);
        }
        events.extend(decided);
    }
    Ok(events)
}

/// Decides many independent commands in one go (the hot-SKU writer's queue): each is decided
/// against the state after the previously accepted ones, and a refusal affects only its own
/// command. On return `state` has folded every accepted event, so the writer can keep it as
/// its in-memory state once the append succeeds (and must reload it if the append fails).
pub fn decide_each(
    state: &mut StockItem,
    commands: &[StockCommand],
    now: DateTime<Utc>,
) -> Vec<Result<Vec<StockEvent>, InventoryError>> {
    commands
        .iter()
        .map(|command| {
            let decided = decide(state, command, now)?;
            for event in &decided {
                state.apply(event);
            }
            Ok(decided)
        })
        .collect()
}
