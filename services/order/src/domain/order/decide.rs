//! Commands of an order and the pure decision that turns them into events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;

use super::error::{non_empty, quantity, OrderError};
use super::events::*;
use super::{
    Channel, FulfillmentKind, LineAllocation, LineQty, LineState, Order, OrderCredit, OrderStatus,
    PaymentAuthorization, PaymentState, PricedLine, ReservationRelease, ReservationUse,
    ReservedAllocation, MAX_LINES, MAX_LINE_QTY, OUT_OF_STOCK,
};
use crate::domain::sourcing::{Delivery, LineExplanation};

/// Everything placement needs, computed by the handler before deciding (prices from the
/// catalog, allocations from sourcing and the reservations it made, the authorization).
///
/// `payment` is the authorization of what the customer owes beyond `credit`; it is `None`
/// exactly when a credit covers the whole payable amount (nothing to authorize). An order
/// without a credit always has one, even for a zero total (as before credits existed).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceOrder {
    pub order_id: uuid::Uuid,
    pub customer_id: Option<String>,
    /// The actor's subject (customer, or store associate for endless aisle).
    pub placed_by: String,
    pub channel: Channel,
    pub lines: Vec<PricedLine>,
    pub allocations: Vec<ReservedAllocation>,
    pub sourcing: Vec<LineExplanation>,
    pub payment: Option<PaymentAuthorization>,
    /// Exchange credit paying for part or all of the order.
    pub credit: Option<OrderCredit>,
    /// Whether lines that could not be sourced are cancelled (`OUT_OF_STOCK`) instead of
    /// refusing the order.
    pub allow_partial: bool,
    pub idempotency_key: String,
    /// A digest of the request as the client sent it: a retry with the same key must match.
    pub request_fingerprint: String,
}

/// What callers (storefront, store app, fulfilment, payment handler) ask of one order.
/// Field names in errors are the camelCase names the APIs use (see [`OrderError`]).
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place(Box<PlaceOrder>),
    /// A parcel left `location` with these units. Retried with the same `fulfillment_id` and
    /// content, it is a no-op.
    MarkShipped {
        fulfillment_id: String,
        location: String,
        lines: Vec<LineQty>,
        carrier: String,
        tracking: Option<String>,
    },
    /// Pickup units are staged at their store.
    MarkReadyForPickup {
        fulfillment_id: String,
        location: String,
        lines: Vec<LineQty>,
    },
    /// The customer took staged units.
    MarkPickedUp {
        fulfillment_id: String,
        location: String,
        lines: Vec<LineQty>,
    },
    /// The carrier delivered the shipment `fulfillment_id`.
    MarkDelivered {
        fulfillment_id: String,
    },
    /// Take money (on ship or pickup); `reference` is the provider's for this capture.
    CapturePayment {
        amount: Money,
        reference: String,
    },
    /// `None` cancels every unit not yet shipped or picked up.
    ///
    /// Decided on the order alone: for units whose fulfillment order already stopped them
    /// (an expired pickup, a short pick). A customer's or an agent's cancellation of units a
    /// location holds goes through the fulfillment orders first
    /// (`OrderHandlers::cancel`), which record it as [`OrderCommand::CancelConfirmed`]; this
    /// command also plans that cancellation without appending it.
    Cancel {
        lines: Option<Vec<LineQty>>,
        reason: String,
    },
    /// Records a cancellation the fulfillment orders decided: exactly the `held` units they
    /// cancelled (per reservation), plus `unheld` units no location holds (short-picked and
    /// waiting, or never allocated), which are the order's own to cancel. Each part is
    /// recorded once per `operation`: the cancel handler and the reaction to the fulfillment
    /// orders' `FulfillmentLinesCancelled` may both send it, in either order.
    CancelConfirmed {
        operation: String,
        held: Vec<ReservationRelease>,
        unheld: Vec<LineQty>,
        reason: String,
    },
    /// Release the whole authorization: only once the order is fully cancelled and nothing
    /// was captured.
    VoidPayment,
    /// Give back captured money; `reference` is the provider's for this refund. `operation`
    /// is the caller's key for it (recorded, so that a retry is recognised before the provider
    /// is asked again); reusing it for another refund is refused.
    RefundPayment {
        amount: Money,
        reference: String,
        operation: Option<String>,
    },
    /// Move units of a line to another location that reserved them as `new_reservation_id`
    /// (after a short pick, or by staff). Short-picked units at `from_location` go first.
    ReassignLine {
        line_id: String,
        from_location: String,
        to_location: String,
        qty: i64,
        new_reservation_id: String,
    },
    /// `location` could not pick `qty` units of the line: its reservations for them are given
    /// up and the units wait for a reassignment or a cancel.
    MarkShortPicked {
        line_id: String,
        location: String,
        qty: i64,
    },
}

/// Decides one command against the folded state. Pure: `now` is only recorded (placement
/// time). `Ok(vec![])` means "already done" (an idempotent retry).
pub fn decide(
    state: &Order,
    command: &OrderCommand,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, OrderError> {
    use OrderCommand as C;
    if let C::Place(p) = command {
        return place(state, p, now);
    }
    let Some(header) = &state.header else {
        return Err(OrderError::OrderNotFound);
    };
    let currency = header.currency;
    match command {
        // Decided above, before the existence check.
        C::Place(p) => place(state, p, now),
        C::MarkShipped {
            fulfillment_id,
            location,
            lines,
            carrier,
            tracking,
        } => {
            non_empty("carrier", carrier)?;
            if let Some(t) = tracking {
                non_empty("tracking", t)?;
            }
            let Some(steps) = fulfilment(
                state,
                FulfillmentKind::Shipment,
                fulfillment_id,
                location,
                lines,
            )?
            else {
                return Ok(vec![]);
            };
            Ok(vec![OrderShipped {
                fulfillment_id: fulfillment_id.clone(),
                location: location.clone(),
                lines: lines.clone(),
                carrier: carrier.clone(),
                tracking: tracking.clone(),
                consumed: consume(&steps, location),
            }
            .into()])
        }
        C::MarkReadyForPickup {
            fulfillment_id,
            location,
            lines,
        } => {
            if fulfilment(
                state,
                FulfillmentKind::ReadyForPickup,
                fulfillment_id,
                location,
                lines,
            )?
            .is_none()
            {
                return Ok(vec![]);
            }
            Ok(vec![OrderReadyForPickup {
                fulfillment_id: fulfillment_id.clone(),
                location: location.clone(),
                lines: lines.clone(),
            }
            .into()])
        }
        C::MarkPickedUp {
            fulfillment_id,
            location,
            lines,
        } => {
            let Some(steps) = fulfilment(
                state,
                FulfillmentKind::PickUp,
                fulfillment_id,
                location,
                lines,
            )?
            else {
                return Ok(vec![]);
            };
            Ok(vec![OrderPickedUp {
                fulfillment_id: fulfillment_id.clone(),
                location: location.clone(),
                lines: lines.clone(),
                consumed: consume(&steps, location),
            }
            .into()])
        }
        C::MarkDelivered { fulfillment_id } => {
            non_empty("fulfillmentId", fulfillment_id)?;
            let shipment = state
                .fulfillments
                .get(&(FulfillmentKind::Shipment, fulfillment_id.clone()))
                .ok_or_else(|| OrderError::UnknownFulfillment {
                    fulfillment_id: fulfillment_id.clone(),
                })?;
            if shipment.delivered {
                return Ok(vec![]);
            }
            Ok(vec![OrderDelivered {
                fulfillment_id: fulfillment_id.clone(),
                lines: shipment.lines.clone(),
            }
            .into()])
        }
        C::Cancel { lines, reason } => cancel(state, currency, lines.as_deref(), reason),
        C::CancelConfirmed {
            operation,
            held,
            unheld,
            reason,
        } => cancel_confirmed(state, currency, operation, held, unheld, reason),
        C::CapturePayment { amount, reference } => {
            let p = payment(state)?;
            non_empty("reference", reference)?;
            positive_amount("amount", amount, currency)?;
            if let Some(previous) = p.captures.get(reference) {
                return retry_of(previous, amount, reference);
            }
            if p.voided {
                return Err(OrderError::PaymentVoided);
            }
            // Never beyond the authorization, nor beyond what the customer still owes:
            // cancelled units are not charged (what was captured before a cancel is refunded).
            // Plain subtraction: every term is between 0 and the checked total, so none of
            // these differences can overflow.
            let not_captured = p.authorized.amount - p.captured.amount;
            let net_captured = p.captured.amount - p.refunded.amount;
            let owed = state.payable().map_or(Decimal::ZERO, |m| m.amount) - net_captured;
            let capturable = Money::new(not_captured.min(owed).max(Decimal::ZERO), currency);
            if amount.amount > capturable.amount {
                return Err(OrderError::CaptureExceedsAuthorized {
                    requested: *amount,
                    capturable,
                });
            }
            Ok(vec![PaymentCaptured {
                payment_id: p.payment_id,
                amount: *amount,
                reference: reference.clone(),
            }
            .into()])
        }
        C::VoidPayment => {
            let p = payment(state)?;
            if p.voided {
                return Ok(vec![]);
            }
            if !p.captured.amount.is_zero() {
                return Err(OrderError::VoidAfterCapture);
            }
            if state.status() != Some(OrderStatus::Cancelled) {
                return Err(OrderError::PaymentStillNeeded);
            }
            Ok(vec![PaymentVoided {
                payment_id: p.payment_id,
                amount: p.authorized,
            }
            .into()])
        }
        C::RefundPayment {
            amount,
            reference,
            operation,
        } => {
            let p = payment(state)?;
            non_empty("reference", reference)?;
            positive_amount("amount", amount, currency)?;
            if let Some(previous) = p.refunds.get(reference) {
                return retry_of(previous, amount, reference);
            }
            if let Some(operation) = operation {
                non_empty("operation", operation)?;
                // Same reference was answered above; another one under the same key is
                // another refund, not a retry.
                if p.refund_operations.contains_key(operation) {
                    return Err(OrderError::RefundOperationConflict {
                        operation: operation.clone(),
                    });
                }
            }
            let refundable = remaining(p.captured, p.refunded)?;
            if amount.amount > refundable.amount {
                return Err(OrderError::RefundExceedsCaptured {
                    requested: *amount,
                    refundable,
                });
            }
            Ok(vec![PaymentRefunded {
                payment_id: p.payment_id,
                amount: *amount,
                reference: reference.clone(),
                operation: operation.clone(),
            }
            .into()])
        }
        C::ReassignLine {
            line_id,
            from_location,
            to_location,
            qty,
            new_reservation_id,
        } => reassign(
            state,
            line_id,
            from_location,
            to_location,
            *qty,
            new_reservation_id,
        ),
        C::MarkShortPicked {
            line_id,
            location,
            qty,
        } => {
            let line = known_line(state, "lineId", line_id)?;
            non_empty("location", location)?;
            let qty = quantity("qty", *qty, 1, MAX_LINE_QTY)?;
            let available = line.open_at(location) - staged_at(line, location);
            if qty > available {
                return Err(exceeds("qty", line, qty, available));
            }
            Ok(vec![LineShortPicked {
                line_id: line_id.clone(),
                location: location.clone(),
                qty,
                reservations_to_release: release_newest(line, Some(location), qty),
            }
            .into()])
        }
    }
}

fn place(state: &Order, p: &PlaceOrder, now: DateTime<Utc>) -> Result<Vec<OrderEvent>, OrderError> {
    if let Some(h) = &state.header {
        // Same key: a retry of the same request is answered with nothing new; the same key on
        // a different request is a client bug worth telling apart from a plain conflict.
        if h.idempotency_key == p.idempotency_key {
            return if h.request_fingerprint == p.request_fingerprint {
                Ok(vec![])
            } else {
                Err(OrderError::IdempotencyKeyReused)
            };
        }
        return Err(OrderError::OrderExists);
    }
    non_empty("idempotencyKey", &p.idempotency_key)?;
    non_empty("requestFingerprint", &p.request_fingerprint)?;
    non_empty("placedBy", &p.placed_by)?;
    if let Some(c) = &p.customer_id {
        non_empty("customerId", c)?;
    }
    if let Channel::Store(code) = &p.channel {
        non_empty("channel", code)?;
    }
    let Some(first) = p.lines.first() else {
        return Err(invalid("lines", "must not be empty"));
    };
    if p.lines.len() > MAX_LINES {
        return Err(invalid("lines", "has too many lines"));
    }
    let currency = first.unit_price.currency;

    let mut total = Money::zero(currency);
    let mut line_ids = BTreeSet::new();
    for (i, l) in p.lines.iter().enumerate() {
        let f = |name: &str| format!("lines.{i}.{name}");
        non_empty(f("lineId"), &l.line_id)?;
        if !line_ids.insert(l.line_id.as_str()) {
            return Err(invalid(f("lineId"), "is used twice"));
        }
        non_empty(f("sku"), &l.sku)?;
        non_empty(f("title"), &l.title)?;
        quantity(f("qty"), l.qty, 1, MAX_LINE_QTY)?;
        if l.unit_price.currency != currency {
            return Err(OrderError::CurrencyMismatch {
                field: f("unitPrice"),
                expected: currency,
                actual: l.unit_price.currency,
            });
        }
        if l.unit_price.amount.is_sign_negative() && !l.unit_price.amount.is_zero() {
            return Err(invalid(f("unitPrice"), "must not be negative"));
        }
        minor_units(f("unitPrice"), &l.unit_price)?;
        delivery(f("delivery"), &l.delivery)?;
        let line_total = l
            .unit_price
            .checked_mul(l.qty)
            .map_err(|_| OrderError::Overflow { field: f("qty") })?;
        total = total
            .checked_add(line_total)
            .map_err(|_| OrderError::Overflow {
                field: "lines".into(),
            })?;
    }

    let mut allocated: BTreeMap<&str, i64> = BTreeMap::new();
    let mut reservation_ids = BTreeSet::new();
    for (j, a) in p.allocations.iter().enumerate() {
        let f = |name: &str| format!("allocations.{j}.{name}");
        let line = p
            .lines
            .iter()
            .find(|l| l.line_id == a.line_id)
            .ok_or_else(|| OrderError::UnknownLine {
                field: f("lineId"),
                line_id: a.line_id.clone(),
            })?;
        non_empty(f("location"), &a.location)?;
        non_empty(f("reservationId"), &a.reservation_id)?;
        if !reservation_ids.insert(a.reservation_id.as_str()) {
            return Err(invalid(f("reservationId"), "is used twice"));
        }
        quantity(f("qty"), a.qty, 1, MAX_LINE_QTY)?;
        if let Some(store) = line.delivery.pickup_store() {
            if a.location != store {
                return Err(OrderError::WrongDelivery {
                    field: f("location"),
                    line_id: line.line_id.clone(),
                    reason: "a pickup line is served by its store only",
                });
            }
        }
        let sum = allocated.entry(a.line_id.as_str()).or_insert(0);
        *sum += a.qty;
        if *sum > line.qty {
            return Err(OrderError::OverAllocated {
                field: f("qty"),
                line_id: line.line_id.clone(),
                qty: line.qty,
                allocated: *sum,
            });
        }
    }

    // Lines not fully allocated: refused, or cancelled as out of stock when allowed.
    let mut short = Vec::new();
    let mut short_amount = Money::zero(currency);
    for (i, l) in p.lines.iter().enumerate() {
        let got = allocated.get(l.line_id.as_str()).copied().unwrap_or(0);
        if got == l.qty {
            continue;
        }
        if !p.allow_partial {
            return Err(OrderError::LineNotFullyAllocated {
                field: format!("lines.{i}.qty"),
                line_id: l.line_id.clone(),
                requested: l.qty,
                allocated: got,
            });
        }
        short.push(LineQty::new(l.line_id.clone(), l.qty - got));
        short_amount = value(short_amount, l.unit_price, l.qty - got, "lines")?;
    }
    if allocated.values().all(|q| *q == 0) {
        return Err(OrderError::NothingSourced);
    }
    let payable = remaining(total, short_amount)?;
    // What the customer's means of payment must cover: the rest after the credit.
    let due = match &p.credit {
        None => Some(payable),
        Some(credit) => {
            validate_credit(credit, currency)?;
            let rest = remaining(payable, credit.amount)?;
            (rest.amount > Decimal::ZERO).then_some(rest)
        }
    };
    match (&p.payment, due) {
        (Some(pay), Some(due)) => {
            non_empty("payment.provider", &pay.provider)?;
            non_empty("payment.reference", &pay.reference)?;
            if pay.amount.currency != currency {
                return Err(OrderError::CurrencyMismatch {
                    field: "payment.amount".into(),
                    expected: currency,
                    actual: pay.amount.currency,
                });
            }
            if pay.amount.amount != due.amount {
                return Err(OrderError::PaymentAmountMismatch {
                    expected: due,
                    actual: pay.amount,
                });
            }
        }
        (None, None) => {}
        (None, Some(due)) => {
            return Err(OrderError::PaymentAmountMismatch {
                expected: due,
                actual: Money::zero(currency),
            })
        }
        // The credit covers everything: authorizing anything would charge the customer.
        (Some(pay), None) => {
            return Err(OrderError::PaymentAmountMismatch {
                expected: Money::zero(currency),
                actual: pay.amount,
            })
        }
    }

    let mut events: Vec<OrderEvent> = vec![OrderPlaced {
        order_id: p.order_id,
        customer_id: p.customer_id.clone(),
        placed_by: p.placed_by.clone(),
        channel: p.channel.clone(),
        lines: p.lines.clone(),
        allocations: p.allocations.clone(),
        sourcing: p.sourcing.clone(),
        total,
        idempotency_key: p.idempotency_key.clone(),
        request_fingerprint: p.request_fingerprint.clone(),
        placed_at: now,
        credit: p.credit.clone(),
    }
    .into()];
    if !short.is_empty() {
        events.push(
            OrderLinesCancelled {
                lines: short,
                reason: OUT_OF_STOCK.into(),
                amount: short_amount,
                reservations_to_release: vec![],
                short_picked_cleared: vec![],
                operation: None,
            }
            .into(),
        );
    }
    if let Some(pay) = &p.payment {
        events.push(
            PaymentAuthorized {
                payment_id: pay.payment_id,
                provider: pay.provider.clone(),
                reference: pay.reference.clone(),
                amount: pay.amount,
            }
            .into(),
        );
    }
    Ok(events)
}

/// Checks an exchange credit against the order's currency: a non-blank source, an amount of
/// zero or more in the order's currency and its minor units. Public so that the handler can
/// refuse a bad credit before it reserves anything.
pub fn validate_credit(credit: &OrderCredit, currency: Currency) -> Result<(), OrderError> {
    non_empty("credit.source", &credit.source)?;
    if credit.amount.currency != currency {
        return Err(OrderError::CurrencyMismatch {
            field: "credit.amount".into(),
            expected: currency,
            actual: credit.amount.currency,
        });
    }
    if credit.amount.amount < Decimal::ZERO {
        return Err(invalid("credit.amount", "must not be negative"));
    }
    minor_units("credit.amount".into(), &credit.amount)
}

/// Checks a ship / stage / pick-up step. `Ok(None)`: the same step was already recorded (a
/// retry). `Ok(Some(..))`: each requested line with its quantity.
fn fulfilment<'s>(
    state: &'s Order,
    kind: FulfillmentKind,
    fulfillment_id: &str,
    location: &str,
    lines: &[LineQty],
) -> Result<Option<Vec<(&'s LineState, i64)>>, OrderError> {
    non_empty("fulfillmentId", fulfillment_id)?;
    non_empty("location", location)?;
    if let Some(previous) = state.fulfillments.get(&(kind, fulfillment_id.to_owned())) {
        return if previous.location == location && previous.lines == lines {
            Ok(None)
        } else {
            Err(OrderError::FulfillmentConflict {
                fulfillment_id: fulfillment_id.to_owned(),
            })
        };
    }
    let steps = requested_lines(state, lines)?;
    for (k, (line, qty)) in steps.iter().enumerate() {
        let wrong = |field: String, reason| OrderError::WrongDelivery {
            field,
            line_id: line.line_id.clone(),
            reason,
        };
        let store = line.delivery.pickup_store();
        let available = match kind {
            FulfillmentKind::Shipment => {
                if store.is_some() {
                    return Err(wrong(
                        format!("lines.{k}.lineId"),
                        "a pickup line is picked up, not shipped",
                    ));
                }
                line.open_at(location)
            }
            FulfillmentKind::ReadyForPickup | FulfillmentKind::PickUp => {
                let Some(store) = store else {
                    return Err(wrong(
                        format!("lines.{k}.lineId"),
                        "only pickup lines are picked up",
                    ));
                };
                if store != location {
                    return Err(wrong(
                        "location".into(),
                        "the line is picked up at another store",
                    ));
                }
                if kind == FulfillmentKind::PickUp {
                    line.ready
                } else {
                    line.open_at(location) - line.ready
                }
            }
        };
        if *qty > available {
            return Err(exceeds(format!("lines.{k}.qty"), line, *qty, available));
        }
    }
    Ok(Some(steps))
}

/// The requested lines of a command, each known, listed once, with a quantity in range.
fn requested_lines<'s>(
    state: &'s Order,
    lines: &[LineQty],
) -> Result<Vec<(&'s LineState, i64)>, OrderError> {
    if lines.is_empty() {
        return Err(invalid("lines", "must not be empty"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(lines.len());
    for (k, q) in lines.iter().enumerate() {
        let line = known_line(state, format!("lines.{k}.lineId"), &q.line_id)?;
        if !seen.insert(q.line_id.as_str()) {
            return Err(invalid(format!("lines.{k}.lineId"), "is listed twice"));
        }
        out.push((
            line,
            quantity(format!("lines.{k}.qty"), q.qty, 1, MAX_LINE_QTY)?,
        ));
    }
    Ok(out)
}

/// The reservations a shipment or pickup uses at `location`, oldest first.
fn consume(steps: &[(&LineState, i64)], location: &str) -> Vec<ReservationUse> {
    let mut uses = Vec::new();
    for (line, qty) in steps {
        let mut left = *qty;
        for a in line.allocations.iter().filter(|a| a.location == location) {
            let take = a.open().min(left);
            if take > 0 {
                uses.push(ReservationUse {
                    line_id: line.line_id.clone(),
                    reservation_id: a.reservation_id.clone(),
                    qty: take,
                });
                left -= take;
            }
        }
    }
    uses
}

/// Releases `qty` held units of a line (at one location, or anywhere), newest reservation
/// first: the latest re-sourcing is the least settled.
fn release_newest(line: &LineState, location: Option<&str>, qty: i64) -> Vec<ReservationRelease> {
    let mut left = qty;
    let mut releases = Vec::new();
    for a in line.allocations.iter().rev() {
        if left == 0 {
            break;
        }
        if location.is_some_and(|l| l != a.location) {
            continue;
        }
        let take = a.open().min(left);
        if take > 0 {
            releases.push(ReservationRelease {
                line_id: line.line_id.clone(),
                reservation_id: a.reservation_id.clone(),
                location: a.location.clone(),
                qty: take,
            });
            left -= take;
        }
    }
    releases
}

fn cancel(
    state: &Order,
    currency: Currency,
    lines: Option<&[LineQty]>,
    reason: &str,
) -> Result<Vec<OrderEvent>, OrderError> {
    non_empty("reason", reason)?;
    let requests: Vec<(&LineState, i64)> = match lines {
        None => {
            let open: Vec<_> = state
                .lines
                .iter()
                .filter(|l| l.open() > 0)
                .map(|l| (l, l.open()))
                .collect();
            if open.is_empty() {
                // A second whole-order cancel is what the caller wants already done.
                return if state.status() == Some(OrderStatus::Cancelled) {
                    Ok(vec![])
                } else {
                    Err(OrderError::NothingToCancel)
                };
            }
            open
        }
        Some(lines) => {
            let requests = requested_lines(state, lines)?;
            for (k, (line, qty)) in requests.iter().enumerate() {
                if *qty > line.open() {
                    return Err(exceeds(format!("lines.{k}.qty"), line, *qty, line.open()));
                }
            }
            requests
        }
    };
    let mut amount = Money::zero(currency);
    let mut cancelled = Vec::new();
    let mut releases = Vec::new();
    let mut cleared = Vec::new();
    for (line, qty) in requests {
        // Units that hold nothing go first (short-picked, never allocated), then reservations.
        let mut left = qty;
        for (location, short) in &line.short_picked {
            let take = (*short).min(left);
            if take > 0 {
                cleared.push(ShortPickedCleared {
                    line_id: line.line_id.clone(),
                    location: location.clone(),
                    qty: take,
                });
                left -= take;
            }
        }
        left -= line.unallocated().max(0).min(left);
        releases.extend(release_newest(line, None, left));
        amount = value(amount, line.unit_price, qty, "lines")?;
        cancelled.push(LineQty::new(line.line_id.clone(), qty));
    }
    Ok(vec![OrderLinesCancelled {
        lines: cancelled,
        reason: reason.to_owned(),
        amount,
        reservations_to_release: releases,
        short_picked_cleared: cleared,
        operation: None,
    }
    .into()])
}

fn cancel_confirmed(
    state: &Order,
    currency: Currency,
    operation: &str,
    held: &[ReservationRelease],
    unheld: &[LineQty],
    reason: &str,
) -> Result<Vec<OrderEvent>, OrderError> {
    non_empty("reason", reason)?;
    non_empty("operation", operation)?;
    let recorded = state.cancel_operations.get(operation);
    let mut per_line: BTreeMap<String, i64> = BTreeMap::new();
    let mut releases = Vec::new();
    for h in held {
        if recorded.is_some_and(|r| r.reservations.contains(&h.reservation_id)) {
            continue;
        }
        let line = known_line(state, "held", &h.line_id)?;
        // The fulfillment order cancelled these units: they cannot have left since, so the
        // reservation still holds them; the clamp only guards a hand-written command.
        let open = line
            .allocations
            .iter()
            .find(|a| a.reservation_id == h.reservation_id)
            .map_or(0, LineAllocation::open);
        let take = h.qty.min(open);
        if take > 0 {
            releases.push(ReservationRelease {
                qty: take,
                ..h.clone()
            });
            *per_line.entry(h.line_id.clone()).or_default() += take;
        }
    }
    let mut cleared = Vec::new();
    if !recorded.is_some_and(|r| r.unheld_recorded) {
        for u in unheld {
            let line = known_line(state, "unheld", &u.line_id)?;
            let mut left = u.qty.min(line.open() - line.held()).max(0);
            let take = left;
            for (location, short) in &line.short_picked {
                let clear = (*short).min(left);
                if clear > 0 {
                    cleared.push(ShortPickedCleared {
                        line_id: line.line_id.clone(),
                        location: location.clone(),
                        qty: clear,
                    });
                    left -= clear;
                }
            }
            if take > 0 {
                *per_line.entry(u.line_id.clone()).or_default() += take;
            }
        }
    }
    if per_line.is_empty() {
        return Ok(vec![]);
    }
    let mut amount = Money::zero(currency);
    let mut lines = Vec::with_capacity(per_line.len());
    for (line_id, qty) in per_line {
        let line = known_line(state, "lines", &line_id)?;
        amount = value(amount, line.unit_price, qty, "lines")?;
        lines.push(LineQty::new(line_id, qty));
    }
    Ok(vec![OrderLinesCancelled {
        lines,
        reason: reason.to_owned(),
        amount,
        reservations_to_release: releases,
        short_picked_cleared: cleared,
        operation: Some(operation.to_owned()),
    }
    .into()])
}

fn reassign(
    state: &Order,
    line_id: &str,
    from_location: &str,
    to_location: &str,
    qty: i64,
    new_reservation_id: &str,
) -> Result<Vec<OrderEvent>, OrderError> {
    let line = known_line(state, "lineId", line_id)?;
    non_empty("fromLocation", from_location)?;
    non_empty("toLocation", to_location)?;
    non_empty("newReservationId", new_reservation_id)?;
    let qty = quantity("qty", qty, 1, MAX_LINE_QTY)?;
    let existing = state.lines.iter().find_map(|l| {
        l.allocations
            .iter()
            .find(|a| a.reservation_id == new_reservation_id)
            .map(|a| (l, a))
    });
    if let Some((l, a)) = existing {
        // The same reassignment again (a retry) is done; anything else reusing the id is a bug.
        return if l.line_id == line_id && a.location == to_location && a.qty == qty {
            Ok(vec![])
        } else {
            Err(OrderError::ReservationConflict {
                reservation_id: new_reservation_id.to_owned(),
            })
        };
    }
    if let Some(store) = line.delivery.pickup_store() {
        if store != to_location {
            return Err(OrderError::WrongDelivery {
                field: "toLocation".into(),
                line_id: line_id.to_owned(),
                reason: "a pickup line is served by its store only",
            });
        }
    }
    let short = line.short_picked.get(from_location).copied().unwrap_or(0);
    let available = short + line.open_at(from_location) - staged_at(line, from_location);
    if qty > available {
        return Err(exceeds("qty", line, qty, available));
    }
    let short_picked_cleared = short.min(qty);
    Ok(vec![LineReassigned {
        line_id: line_id.to_owned(),
        from_location: from_location.to_owned(),
        to_location: to_location.to_owned(),
        qty,
        new_reservation_id: new_reservation_id.to_owned(),
        short_picked_cleared,
        reservations_to_release: release_newest(
            line,
            Some(from_location),
            qty - short_picked_cleared,
        ),
    }
    .into()])
}

/// Units staged for pickup at `location` (they are promised to the customer at the counter).
fn staged_at(line: &LineState, location: &str) -> i64 {
    if line.delivery.pickup_store() == Some(location) {
        line.ready
    } else {
        0
    }
}

fn known_line<'s>(
    state: &'s Order,
    field: impl Into<String>,
    line_id: &str,
) -> Result<&'s LineState, OrderError> {
    state.line(line_id).ok_or_else(|| OrderError::UnknownLine {
        field: field.into(),
        line_id: line_id.to_owned(),
    })
}

fn payment(state: &Order) -> Result<&PaymentState, OrderError> {
    // Placement authorizes unless an exchange credit paid for everything.
    state.payment.as_ref().ok_or(OrderError::NoPayment)
}

/// A capture or refund retried with the same provider reference.
fn retry_of(
    previous: &Money,
    amount: &Money,
    reference: &str,
) -> Result<Vec<OrderEvent>, OrderError> {
    if previous == amount {
        Ok(vec![])
    } else {
        Err(OrderError::PaymentReferenceConflict {
            reference: reference.to_owned(),
        })
    }
}

/// `a − b`, both of the order's currency.
fn remaining(a: Money, b: Money) -> Result<Money, OrderError> {
    a.checked_sub(b).map_err(|_| OrderError::Overflow {
        field: "amount".into(),
    })
}

/// `sum + qty × unit price`, checked.
fn value(sum: Money, unit_price: Money, qty: i64, field: &str) -> Result<Money, OrderError> {
    unit_price
        .checked_mul(qty)
        .and_then(|v| sum.checked_add(v))
        .map_err(|_| OrderError::Overflow {
            field: field.to_owned(),
        })
}

fn exceeds(
    field: impl Into<String>,
    line: &LineState,
    requested: i64,
    available: i64,
) -> OrderError {
    OrderError::ExceedsAvailable {
        field: field.into(),
        line_id: line.line_id.clone(),
        requested,
        available: available.max(0),
    }
}

fn invalid(field: impl Into<String>, reason: &'static str) -> OrderError {
    OrderError::InvalidInput {
        field: field.into(),
        reason,
    }
}

/// An amount the provider can take: positive, in the order's currency, in its minor units.
fn positive_amount(field: &str, amount: &Money, currency: Currency) -> Result<(), OrderError> {
    if amount.currency != currency {
        return Err(OrderError::CurrencyMismatch {
            field: field.to_owned(),
            expected: currency,
            actual: amount.currency,
        });
    }
    if amount.amount <= Decimal::ZERO {
        return Err(invalid(field, "must be positive"));
    }
    minor_units(field.to_owned(), amount)
}

/// No more decimals than the currency has (no fractions of a yen): totals are then exact and
/// equal to what the provider can authorize.
fn minor_units(field: String, money: &Money) -> Result<(), OrderError> {
    if money.amount.normalize().scale() > money.currency.minor_units() {
        return Err(invalid(field, "has more decimals than the currency allows"));
    }
    Ok(())
}

fn delivery(field: String, d: &Delivery) -> Result<(), OrderError> {
    match d {
        Delivery::Pickup { store } => Ok(non_empty(field, store)?),
        Delivery::ShipToStore { store, lat, lon } => {
            non_empty(field.clone(), store)?;
            coordinates(field, *lat, *lon)
        }
        Delivery::Ship { lat, lon } => coordinates(field, *lat, *lon),
    }
}

fn coordinates(field: String, lat: f64, lon: f64) -> Result<(), OrderError> {
    let ok = lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon);
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "latitude/longitude out of range"))
    }
}
