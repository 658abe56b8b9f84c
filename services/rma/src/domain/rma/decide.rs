//! Commands of a return and the pure decision that turns them into events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use ichigen_shared::ids::validate_sku;
use ichigen_shared::money::Money;
use uuid::Uuid;

use super::events::*;
use super::refund::{exchange_terms, refund_quote};
use super::{
    Decision, OrderFacts, OrderLineFacts, ReasonSnapshot, ReceivedLine, Rma, RmaLine, RmaStatus,
    AUTO_APPROVER, MAX_ID_CHARS, MAX_NOTE_CHARS, MAX_REQUEST_LINES, MAX_UNITS,
};
use crate::domain::error::{amount, at_most, invalid, quantity, text, RmaError};
use crate::domain::policy::{Disposition, Policy, ReturnReasonSpec};
use ichigen_shared::resale::{resale_price, resale_sku};

/// One line of a return request, as the customer or agent sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLine {
    pub order_line_id: String,
    pub qty: i64,
    pub reason_code: String,
}

impl RequestedLine {
    pub fn new(order_line_id: impl Into<String>, qty: i64, reason_code: impl Into<String>) -> Self {
        RequestedLine {
            order_line_id: order_line_id.into(),
            qty,
            reason_code: reason_code.into(),
        }
    }
}

/// A return request with the order facts the handler read before deciding.
///
/// The same order line may appear on several lines **with different reasons** (two pairs of
/// socks: one defective, one the wrong size); each becomes its own return line with its own
/// fee and shipping terms, and their quantities together must fit what is returnable. The same
/// line twice with the *same* reason is refused: the quantities belong on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestReturn {
    /// Derived by the handler from the caller's idempotency key, so a retry names the same
    /// return.
    pub rma_id: Uuid,
    pub order: OrderFacts,
    pub lines: Vec<RequestedLine>,
    /// The actor's subject (the customer, or the agent acting for them).
    pub requested_by: String,
    /// The customer's comment (may be empty).
    pub note: String,
}

/// What callers (storefront, store app, CS agents, WMS, the refund/exchange handlers) ask of
/// one return. Field names in errors are the camelCase names the APIs use (see [`RmaError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RmaCommand {
    Request(Box<RequestReturn>),
    /// Only while `REQUESTED`; again once approved, nothing happens.
    Approve {
        note: String,
        by: String,
    },
    /// Only while `REQUESTED`; `note` (the reason the customer is told) is required. Again once
    /// rejected, nothing happens.
    Reject {
        note: String,
        by: String,
    },
    /// Units arrived at `location`. Retried with the same `receipt_id` and content, nothing
    /// happens (a WMS retry is safe).
    Receive {
        receipt_id: String,
        location: String,
        lines: Vec<ReceivedLine>,
        /// Handed in by the customer in person (a store's counter) rather than sent back: no
        /// return shipping is ever deducted for these units.
        in_person: bool,
    },
    /// An inspector's grade for a received unit (must be active in the current policy). The
    /// same grade again is a retry; another grade is refused.
    Grade {
        unit_id: String,
        grade_code: String,
    },
    /// Refund every settleable unit ([`refund_quote`]); `refundable_left` is the order's
    /// `captured − refunded` as the handler read it. A retry with the same reference is a
    /// no-op.
    IssueRefund {
        refundable_left: Money,
        payment_reference: String,
    },
    /// Record the replacement order the handler placed for every settleable unit
    /// ([`super::exchange_terms`]). A retry with the same order and total is a no-op.
    RecordExchange {
        exchange_order_id: Uuid,
        replacement_total: Money,
    },
    /// Close a rejected return, or an approved one whose received units are all graded and
    /// settled (units never sent are given up).
    Close {
        by: String,
    },
}

/// Decides one command against the folded state. Pure: `policy` is the current policy
/// (reasons for a request, grades for a grading), `now` the request time. `Ok(vec![])` means
/// "already done" (an idempotent retry).
pub fn decide(
    state: &Rma,
    command: &RmaCommand,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<RmaEvent>, RmaError> {
    use RmaCommand as C;
    if let C::Request(r) = command {
        return request(state, r, policy, now);
    }
    let Some(header) = &state.header else {
        return Err(RmaError::RmaNotFound);
    };
    let currency = header.currency;
    match command {
        // Decided above, before the existence check.
        C::Request(r) => request(state, r, policy, now),
        C::Approve { note, by } => {
            text("by", by, MAX_ID_CHARS)?;
            at_most("note", note, MAX_NOTE_CHARS)?;
            match &state.decision {
                Some(Decision::Approved { .. }) => Ok(vec![]),
                Some(Decision::Rejected { .. }) => Err(RmaError::AlreadyDecided {
                    decision: "rejected",
                }),
                None => Ok(vec![ReturnApproved {
                    auto: false,
                    by: by.clone(),
                    note: note.clone(),
                }
                .into()]),
            }
        }
        C::Reject { note, by } => {
            text("by", by, MAX_ID_CHARS)?;
            text("note", note, MAX_NOTE_CHARS)?;
            match &state.decision {
                Some(Decision::Rejected { .. }) => Ok(vec![]),
                Some(Decision::Approved { .. }) => Err(RmaError::AlreadyDecided {
                    decision: "approved",
                }),
                None => Ok(vec![ReturnRejected {
                    by: by.clone(),
                    note: note.clone(),
                }
                .into()]),
            }
        }
        C::Receive {
            receipt_id,
            location,
            lines,
            in_person,
        } => receive(state, receipt_id, location, lines, *in_person),
        C::Grade {
            unit_id,
            grade_code,
        } => grade(state, unit_id, grade_code, policy),
        C::IssueRefund {
            refundable_left,
            payment_reference,
        } => {
            text("paymentReference", payment_reference, MAX_ID_CHARS)?;
            if state.refunds.contains_key(payment_reference) {
                return Ok(vec![]);
            }
            open(state, "refund")?;
            amount("refundableLeft", refundable_left, currency)?;
            let quote = refund_quote(state, *refundable_left)?;
            Ok(vec![RefundIssued {
                payment_reference: payment_reference.clone(),
                amount: quote.amount,
                units: quote.units.clone(),
                refundable_left: *refundable_left,
                breakdown: quote.breakdown(),
            }
            .into()])
        }
        C::RecordExchange {
            exchange_order_id,
            replacement_total,
        } => {
            if exchange_order_id.is_nil() {
                return Err(invalid("exchangeOrderId", "must not be the nil UUID"));
            }
            if let Some(previous) = state.exchanges.get(exchange_order_id) {
                return if previous == replacement_total {
                    Ok(vec![])
                } else {
                    Err(RmaError::ExchangeConflict {
                        exchange_order_id: exchange_order_id.to_string(),
                    })
                };
            }
            open(state, "exchange")?;
            amount("replacementTotal", replacement_total, currency)?;
            let terms = exchange_terms(state, *replacement_total)?;
            Ok(vec![ExchangeOrdered {
                exchange_order_id: *exchange_order_id,
                replacement_total: *replacement_total,
                credit: terms.credit,
                difference: terms.difference,
                units: terms.quote.units.clone(),
                breakdown: terms.quote.breakdown(),
            }
            .into()])
        }
        C::Close { by } => close(state, by),
    }
}

fn request(
    state: &Rma,
    r: &RequestReturn,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<RmaEvent>, RmaError> {
    if state.header.is_some() {
        // The same request again (a retry under the same id) is done; another is a conflict.
        return if same_request(state, r) {
            Ok(vec![])
        } else {
            Err(RmaError::RmaExists)
        };
    }
    if r.rma_id.is_nil() {
        return Err(invalid("rmaId", "must not be the nil UUID"));
    }
    text("requestedBy", &r.requested_by, MAX_ID_CHARS)?;
    at_most("note", &r.note, MAX_NOTE_CHARS)?;
    order_facts(&r.order)?;
    if r.lines.is_empty() {
        return Err(invalid("lines", "must not be empty"));
    }
    if r.lines.len() > MAX_REQUEST_LINES {
        return Err(invalid("lines", "has too many lines"));
    }
    let currency = r.order.currency;
    let mut taken: BTreeMap<&str, i64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut total_units = 0i64;
    let mut lines = Vec::with_capacity(r.lines.len());
    for (i, l) in r.lines.iter().enumerate() {
        let f = |name: &str| format!("lines.{i}.{name}");
        text(f("orderLineId"), &l.order_line_id, MAX_ID_CHARS)?;
        let order_line = r
            .order
            .lines
            .iter()
            .find(|ol| ol.line_id == l.order_line_id)
            .ok_or_else(|| RmaError::UnknownOrderLine {
                field: f("orderLineId"),
                order_line_id: l.order_line_id.clone(),
            })?;
        let reason = policy.active_reason(&f("reasonCode"), &l.reason_code)?;
        if !seen.insert((l.order_line_id.as_str(), l.reason_code.as_str())) {
            return Err(invalid(
                f("reasonCode"),
                "repeats an order line with the same reason: combine the quantities",
            ));
        }
        let qty = quantity(f("qty"), l.qty, 1, MAX_UNITS)?;
        let fulfilled_at = order_line
            .fulfilled_at
            .filter(|_| order_line.fulfilled_qty > 0)
            .ok_or_else(|| RmaError::NotFulfilled {
                field: f("orderLineId"),
                order_line_id: l.order_line_id.clone(),
            })?;
        let return_by = TimeDelta::try_days(reason.window_days)
            .and_then(|d| fulfilled_at.checked_add_signed(d))
            .ok_or_else(|| RmaError::Overflow {
                field: f("reasonCode"),
            })?;
        if now > return_by {
            return Err(RmaError::ReturnWindowClosed {
                field: f("reasonCode"),
                order_line_id: l.order_line_id.clone(),
                reason_code: reason.code.clone(),
                deadline: return_by,
            });
        }
        let earlier = taken.entry(order_line.line_id.as_str()).or_insert(0);
        let returnable = order_line
            .fulfilled_qty
            .saturating_sub(order_line.already_returned_qty)
            .saturating_sub(*earlier)
            .max(0);
        if qty > returnable {
            return Err(RmaError::ExceedsReturnable {
                field: f("qty"),
                order_line_id: l.order_line_id.clone(),
                requested: qty,
                returnable,
            });
        }
        *earlier += qty;
        total_units += qty;
        if total_units > MAX_UNITS {
            return Err(RmaError::InvalidQuantity {
                field: "lines".into(),
                value: total_units,
                min: 1,
                max: MAX_UNITS,
            });
        }
        lines.push(RmaLine {
            rma_line_id: format!("R{}", i + 1),
            order_line_id: order_line.line_id.clone(),
            sku: order_line.sku.clone(),
            title: order_line.title.clone(),
            unit_price: order_line.unit_price,
            qty,
            reason: snapshot(reason, currency, &f("reasonCode"))?,
            return_by,
        });
    }
    let auto = lines.iter().all(|l| l.reason.auto_approve);
    let mut events: Vec<RmaEvent> = vec![ReturnRequested {
        rma_id: r.rma_id,
        order_id: r.order.order_id,
        customer_id: r.order.customer_id.clone(),
        requested_by: r.requested_by.clone(),
        currency,
        lines,
        note: r.note.clone(),
        requested_at: now,
    }
    .into()];
    if auto {
        events.push(
            ReturnApproved {
                auto: true,
                by: AUTO_APPROVER.into(),
                note: String::new(),
            }
            .into(),
        );
    }
    Ok(events)
}

/// Whether `r` is the request the return was created from (same order, actor, note, lines).
fn same_request(state: &Rma, r: &RequestReturn) -> bool {
    let Some(h) = &state.header else {
        return false;
    };
    h.order_id == r.order.order_id
        && h.requested_by == r.requested_by
        && h.note == r.note
        && state.lines.len() == r.lines.len()
        && state.lines.iter().zip(&r.lines).all(|(s, l)| {
            s.line.order_line_id == l.order_line_id
                && s.line.qty == l.qty
                && s.line.reason.code == l.reason_code
        })
}

/// The order facts are the handler's, not the caller's; still, a decision on inconsistent
/// facts (mixed currencies, negative counts) would record nonsense, so they are checked.
fn order_facts(o: &OrderFacts) -> Result<(), RmaError> {
    amount("order.captured", &o.captured, o.currency)?;
    amount("order.refunded", &o.refunded, o.currency)?;
    for (j, l) in o.lines.iter().enumerate() {
        order_line_facts(j, l, o)?;
    }
    Ok(())
}

fn order_line_facts(j: usize, l: &OrderLineFacts, o: &OrderFacts) -> Result<(), RmaError> {
    let f = |name: &str| format!("order.lines.{j}.{name}");
    validate_sku(&l.sku).map_err(|reason| invalid(f("sku"), reason))?;
    amount(f("unitPrice"), &l.unit_price, o.currency)?;
    quantity(f("fulfilledQty"), l.fulfilled_qty, 0, i64::MAX)?;
    quantity(f("alreadyReturnedQty"), l.already_returned_qty, 0, i64::MAX)?;
    Ok(())
}

/// The reason as the return will keep it, with the shipping fee in the order's currency.
fn snapshot(
    reason: &ReturnReasonSpec,
    currency: ichigen_shared::money::Currency,
    field: &str,
) -> Result<ReasonSnapshot, RmaError> {
    let fee = reason.return_shipping_fee;
    let return_shipping_fee = if !reason.customer_pays_shipping || fee.amount.is_zero() {
        Money::zero(currency)
    } else if fee.currency == currency {
        fee
    } else {
        // A fee in yen cannot be deducted from a refund in dollars: the policy must say.
        return Err(RmaError::ReasonNotApplicable {
            field: field.to_owned(),
            code: reason.code.clone(),
            reason: "its return shipping fee is in another currency than the order",
        });
    };
    Ok(ReasonSnapshot {
        code: reason.code.clone(),
        label_ja: reason.label_ja.clone(),
        label_en: reason.label_en.clone(),
        window_days: reason.window_days,
        inspection_required: reason.inspection_required,
        restocking_fee_pct: reason.restocking_fee_pct,
        customer_pays_shipping: reason.customer_pays_shipping,
        return_shipping_fee,
        auto_approve: reason.auto_approve,
    })
}

fn receive(
    state: &Rma,
    receipt_id: &str,
    location: &str,
    lines: &[ReceivedLine],
    in_person: bool,
) -> Result<Vec<RmaEvent>, RmaError> {
    text("receiptId", receipt_id, MAX_ID_CHARS)?;
    text("location", location, MAX_ID_CHARS)?;
    if let Some(previous) = state.receipts.get(receipt_id) {
        return if previous.location == location && previous.lines == lines {
            Ok(vec![])
        } else {
            Err(RmaError::ReceiptConflict {
                receipt_id: receipt_id.to_owned(),
            })
        };
    }
    approved(state, "receive units of")?;
    if lines.is_empty() {
        return Err(invalid("lines", "must not be empty"));
    }
    let mut seen = BTreeSet::new();
    let mut units = Vec::new();
    for (k, r) in lines.iter().enumerate() {
        let f = |name: &str| format!("lines.{k}.{name}");
        let line = state
            .line(&r.rma_line_id)
            .ok_or_else(|| RmaError::UnknownRmaLine {
                field: f("rmaLineId"),
                rma_line_id: r.rma_line_id.clone(),
            })?;
        if !seen.insert(r.rma_line_id.as_str()) {
            return Err(invalid(f("rmaLineId"), "is listed twice"));
        }
        let qty = quantity(f("qty"), r.qty, 1, MAX_UNITS)?;
        if line.received + qty > line.line.qty {
            return Err(RmaError::AlreadyReceived {
                field: f("qty"),
                rma_line_id: r.rma_line_id.clone(),
                requested: line.line.qty,
                received: line.received,
                qty,
            });
        }
        units.extend(
            (line.received + 1..=line.received + qty).map(|n| ReceivedUnit {
                unit_id: format!("{}-{n}", line.line.rma_line_id),
                rma_line_id: line.line.rma_line_id.clone(),
                sku: line.line.sku.clone(),
                title: line.line.title.clone(),
            }),
        );
    }
    Ok(vec![ReturnReceived {
        receipt_id: receipt_id.to_owned(),
        location: location.to_owned(),
        lines: lines.to_vec(),
        units,
        in_person,
    }
    .into()])
}

fn grade(
    state: &Rma,
    unit_id: &str,
    grade_code: &str,
    policy: &Policy,
) -> Result<Vec<RmaEvent>, RmaError> {
    text("unitId", unit_id, MAX_ID_CHARS)?;
    text("gradeCode", grade_code, MAX_ID_CHARS)?;
    let unit = state.unit(unit_id).ok_or_else(|| RmaError::UnknownUnit {
        unit_id: unit_id.to_owned(),
    })?;
    if let Some(g) = &unit.grade {
        return if g.grade.code == grade_code {
            Ok(vec![])
        } else {
            Err(RmaError::AlreadyGraded {
                unit_id: unit_id.to_owned(),
                grade: g.grade.code.clone(),
            })
        };
    }
    open(state, "grade units of")?;
    let spec = policy.active_grade("gradeCode", grade_code)?;
    let line = state
        .line(&unit.rma_line_id)
        .ok_or_else(|| RmaError::UnknownUnit {
            unit_id: unit_id.to_owned(),
        })?;
    let (resale_sku, resale_price) = match spec.disposition {
        Disposition::Resale { price_factor } => {
            let sku = resale_sku(&unit.sku, &spec.code);
            validate_sku(&sku).map_err(|reason| RmaError::InvalidResaleSku {
                sku: sku.clone(),
                reason,
            })?;
            let price = resale_price(line.line.unit_price, price_factor).ok_or_else(|| {
                RmaError::Overflow {
                    field: "gradeCode".into(),
                }
            })?;
            (Some(sku), Some(price))
        }
        Disposition::Restock | Disposition::Dispose | Disposition::ReturnToVendor => (None, None),
    };
    Ok(vec![UnitGraded {
        unit_id: unit_id.to_owned(),
        rma_line_id: unit.rma_line_id.clone(),
        sku: unit.sku.clone(),
        title: line.line.title.clone(),
        location: unit.location.clone(),
        grade: super::GradeSnapshot {
            code: spec.code.clone(),
            label_ja: spec.label_ja.clone(),
            label_en: spec.label_en.clone(),
        },
        disposition: spec.disposition,
        resale_sku,
        resale_price,
    }
    .into()])
}

fn close(state: &Rma, by: &str) -> Result<Vec<RmaEvent>, RmaError> {
    text("by", by, MAX_ID_CHARS)?;
    let Some(status) = state.status() else {
        return Err(RmaError::RmaNotFound);
    };
    match status {
        RmaStatus::Closed => return Ok(vec![]),
        RmaStatus::Requested => {
            return Err(RmaError::WrongStatus {
                action: "close",
                status,
            })
        }
        _ => {}
    }
    let ungraded = state.units.iter().filter(|u| u.grade.is_none()).count();
    let unsettled = state
        .units
        .iter()
        .filter(|u| u.settlement.is_none())
        .count();
    if ungraded > 0 || unsettled > 0 {
        return Err(RmaError::NotReadyToClose {
            ungraded,
            unsettled,
        });
    }
    let refunded = state.refunded().ok_or(RmaError::RmaNotFound)?;
    Ok(vec![ReturnClosed {
        by: by.to_owned(),
        closed_from: status,
        units_requested: state.requested_units(),
        units_received: state.received_units(),
        refunded,
    }
    .into()])
}

/// Refuses a command on a closed return.
fn open(state: &Rma, action: &'static str) -> Result<(), RmaError> {
    if state.closed {
        Err(RmaError::WrongStatus {
            action,
            status: RmaStatus::Closed,
        })
    } else {
        Ok(())
    }
}

/// Refuses a command on a return that is not (or no longer) approved and open.
fn approved(state: &Rma, action: &'static str) -> Result<(), RmaError> {
    open(state, action)?;
    if matches!(state.decision, Some(Decision::Approved { .. })) {
        Ok(())
    } else {
        Err(RmaError::WrongStatus {
            action,
            status: state.status().unwrap_or(RmaStatus::Requested),
        })
    }
}
