//! The return aggregate (RMA), stream `rma-<uuid>`.
//!
//! A return is requested for delivered or picked-up lines of one order, approved (by an agent,
//! or at once when every reason auto-approves) or rejected, received unit by unit at a DC or a
//! store, graded by an inspector (which fixes each unit's disposition: restock, resale,
//! dispose, return to vendor), and settled by a refund or an exchange; then it is closed.
//!
//! The handler does the I/O *before* deciding: it loads the order and computes
//! [`OrderFacts`] (what was paid and fulfilled, what other returns already take), loads the
//! [`Policy`](super::policy::Policy), and passes both in. The request *snapshots* every fact
//! later steps need (SKU, title and price of each line, the reason's fee, shipping terms and
//! inspection flag), so neither a policy change nor a catalog change alters an open return.
//!
//! Why one stream per return: every invariant here (received ≤ requested per line, a unit
//! graded once, refunded or exchanged once, the return shipping fee charged once) involves only
//! this return's numbers, so the stream revision check guards them. What spans returns — the
//! quantity still returnable on an order line, the money still refundable on the order — comes
//! in from the handler ([`OrderLineFacts::already_returned_qty`], `refundable_left`).
//!
//! Statuses are derived from the facts ([`Rma::status`]), never stored.

mod decide;
mod events;
#[cfg(test)]
mod proptests;
mod refund;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use decide::{decide, RequestReturn, RequestedLine, RmaCommand};
pub use events::*;
pub use refund::{
    exchange_difference, exchange_terms, quote, refund_quote, ExchangeTerms, QuoteItem, QuotedLine,
    RefundQuote,
};

use super::policy::Disposition;

/// At most this many lines per request (a return is a parcel, not a warehouse).
pub const MAX_REQUEST_LINES: usize = 100;
/// At most this many units per return: each unit gets its own id and grade, so a return of
/// thousands of units is a B2B process this aggregate is not built for.
pub const MAX_UNITS: i64 = 1_000;
/// Notes (customer comment, approval and rejection notes) are at most this long.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Ids and references given by callers (receipt ids, payment references, actors).
pub const MAX_ID_CHARS: usize = 200;
/// `by` of a `ReturnApproved { auto: true }`: the policy approved it, not a person.
pub const AUTO_APPROVER: &str = "policy";
/// How a store's counter names its receipt of a return (`counter:<rmaId>`): on receipts
/// written before `ReturnReceived` said `inPerson`, this prefix is what tells a counter
/// receipt from a parcel.
pub const COUNTER_RECEIPT: &str = "counter:";

/// The stream of one return.
pub fn stream_name(rma_id: Uuid) -> String {
    format!("rma-{rma_id}")
}

/// What the order service knows about one order line, as the handler read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineFacts {
    pub line_id: String,
    pub sku: String,
    pub title: String,
    /// What the customer paid per unit.
    pub unit_price: Money,
    /// Units delivered or picked up.
    pub fulfilled_qty: i64,
    /// When the line was (last) delivered or picked up; the return windows start here.
    pub fulfilled_at: Option<DateTime<Utc>>,
    /// Units already taken by other returns of this order that were not rejected.
    pub already_returned_qty: i64,
}

/// What the order service knows about the order a return is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    pub currency: Currency,
    pub lines: Vec<OrderLineFacts>,
    /// Money taken from the customer so far.
    pub captured: Money,
    /// Money given back so far (by every return, and by cancellations).
    pub refunded: Money,
}

impl OrderFacts {
    /// `captured − refunded`, never below zero: what any refund may still give back (pass it as
    /// `refundable_left` to [`refund_quote`] and `IssueRefund`).
    pub fn refundable_left(&self) -> Money {
        let left = self
            .captured
            .amount
            .checked_sub(self.refunded.amount)
            .unwrap_or(Decimal::ZERO);
        Money::new(left.max(Decimal::ZERO), self.currency)
    }
}

/// The reason of a return line as it was when the return was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonSnapshot {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub window_days: i64,
    pub inspection_required: bool,
    pub restocking_fee_pct: Decimal,
    pub customer_pays_shipping: bool,
    /// In the order's currency; zero when the merchant pays the return shipping.
    pub return_shipping_fee: Money,
    pub auto_approve: bool,
}

/// One line of a return: units of one order line returned for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RmaLine {
    /// `R1`, `R2`, … in the order of the request.
    pub rma_line_id: String,
    pub order_line_id: String,
    pub sku: String,
    pub title: String,
    /// What the customer paid per unit (what a refund gives back, before fees).
    pub unit_price: Money,
    pub qty: i64,
    pub reason: ReasonSnapshot,
    /// The end of the reason's window, for readers (the request was checked against it).
    pub return_by: DateTime<Utc>,
}

/// Units of a return line in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedLine {
    pub rma_line_id: String,
    pub qty: i64,
}

impl ReceivedLine {
    pub fn new(rma_line_id: impl Into<String>, qty: i64) -> Self {
        ReceivedLine {
            rma_line_id: rma_line_id.into(),
            qty,
        }
    }
}

/// A grade as it was when a unit was graded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GradeSnapshot {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
}

/// Where a return stands, derived from its facts by [`Rma::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RmaStatus {
    /// Waiting for an agent's decision.
    Requested,
    /// Approved; nothing received yet.
    Approved,
    Rejected,
    /// Some requested units arrived, others are still expected.
    PartiallyReceived,
    /// Every requested unit arrived; some wait for a grade.
    Received,
    /// Every unit arrived and is graded; waiting for the refund or exchange.
    Inspected,
    /// Every unit arrived and is settled, at least partly by a refund.
    Refunded,
    /// Every unit arrived and is settled by exchanges only.
    Exchanged,
    Closed,
}

impl RmaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RmaStatus::Requested => "REQUESTED",
            RmaStatus::Approved => "APPROVED",
            RmaStatus::Rejected => "REJECTED",
            RmaStatus::PartiallyReceived => "PARTIALLY_RECEIVED",
            RmaStatus::Received => "RECEIVED",
            RmaStatus::Inspected => "INSPECTED",
            RmaStatus::Refunded => "REFUNDED",
            RmaStatus::Exchanged => "EXCHANGED",
            RmaStatus::Closed => "CLOSED",
        }
    }
}

impl fmt::Display for RmaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request recorded about the return as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmaHeader {
    pub rma_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    pub requested_by: String,
    pub currency: Currency,
    pub note: String,
    pub requested_at: DateTime<Utc>,
}

/// A return line and how many of its units arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineState {
    pub line: RmaLine,
    pub received: i64,
}

/// The agent's (or the policy's) decision on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved {
        auto: bool,
        by: String,
        note: String,
    },
    Rejected {
        by: String,
        note: String,
    },
}

/// What an inspector decided for a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitGrade {
    pub grade: GradeSnapshot,
    pub disposition: Disposition,
    pub resale_sku: Option<String>,
    pub resale_price: Option<Money>,
}

/// How a unit's value went back to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Refunded { payment_reference: String },
    Exchanged { exchange_order_id: Uuid },
}

/// One physical unit received back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUnit {
    /// `R1-1`, `R1-2`, …: the line, then the unit's rank among that line's received units.
    pub unit_id: String,
    pub rma_line_id: String,
    pub sku: String,
    /// Where it was received (and where its disposition moves stock).
    pub location: String,
    pub receipt_id: String,
    pub grade: Option<UnitGrade>,
    pub settlement: Option<Settlement>,
}

/// A recorded receipt, to recognise a WMS retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub location: String,
    pub lines: Vec<ReceivedLine>,
    /// Handed in person at a counter (see `ReturnReceived::in_person`).
    pub in_person: bool,
}

/// The folded state of one return. `Default` is "no such return".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rma {
    pub header: Option<RmaHeader>,
    pub lines: Vec<LineState>,
    pub decision: Option<Decision>,
    /// In the order they were received.
    pub units: Vec<ReturnUnit>,
    pub receipts: BTreeMap<String, Receipt>,
    /// Refunds by payment reference (amount given back).
    pub refunds: BTreeMap<String, Money>,
    /// Exchanges by replacement order id (the replacement's total).
    pub exchanges: BTreeMap<Uuid, Money>,
    /// Whether a settlement already deducted the customer-paid return shipping.
    pub shipping_fee_charged: bool,
    pub closed: bool,
}

impl Rma {
    /// Folds a whole history.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a RmaEvent>) -> Self {
        let mut state = Rma::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    pub fn exists(&self) -> bool {
        self.header.is_some()
    }

    pub fn line(&self, rma_line_id: &str) -> Option<&LineState> {
        self.lines
            .iter()
            .find(|l| l.line.rma_line_id == rma_line_id)
    }

    pub fn unit(&self, unit_id: &str) -> Option<&ReturnUnit> {
        self.units.iter().find(|u| u.unit_id == unit_id)
    }

    fn unit_mut(&mut self, unit_id: &str) -> Option<&mut ReturnUnit> {
        self.units.iter_mut().find(|u| u.unit_id == unit_id)
    }

    /// Units requested over every line.
    pub fn requested_units(&self) -> i64 {
        self.lines.iter().map(|l| l.line.qty).sum()
    }

    /// Units received over every line.
    pub fn received_units(&self) -> i64 {
        self.lines.iter().map(|l| l.received).sum()
    }

    /// Money given back by refunds so far.
    pub fn refunded(&self) -> Option<Money> {
        let currency = self.header.as_ref()?.currency;
        let sum = self.refunds.values().map(|m| m.amount).sum();
        Some(Money::new(sum, currency))
    }

    /// Units that a refund or exchange would cover now: received, not settled yet, and graded
    /// when their reason requires an inspection. In the order they were received.
    pub fn settleable_units(&self) -> Vec<&ReturnUnit> {
        self.units
            .iter()
            .filter(|u| u.settlement.is_none())
            .filter(|u| {
                u.grade.is_some()
                    || self
                        .line(&u.rma_line_id)
                        .is_some_and(|l| !l.line.reason.inspection_required)
            })
            .collect()
    }

    /// The status (`None` before the request). Precedence:
    ///
    /// 1. closed → `CLOSED`; 2. rejected → `REJECTED`; 3. undecided → `REQUESTED`;
    /// 4. nothing received → `APPROVED`; 5. fewer received than requested →
    ///    `PARTIALLY_RECEIVED`; 6. every unit settled → `EXCHANGED` if only by exchanges, else
    ///    `REFUNDED`; 7. every unit graded → `INSPECTED`; 8. otherwise `RECEIVED`.
    pub fn status(&self) -> Option<RmaStatus> {
        self.header.as_ref()?;
        let received = self.received_units();
        Some(if self.closed {
            RmaStatus::Closed
        } else {
            match &self.decision {
                None => RmaStatus::Requested,
                Some(Decision::Rejected { .. }) => RmaStatus::Rejected,
                Some(Decision::Approved { .. }) if received == 0 => RmaStatus::Approved,
                Some(Decision::Approved { .. }) if received < self.requested_units() => {
                    RmaStatus::PartiallyReceived
                }
                Some(Decision::Approved { .. }) => {
                    if self.units.iter().all(|u| u.settlement.is_some()) {
                        let exchanged_only = self
                            .units
                            .iter()
                            .all(|u| matches!(u.settlement, Some(Settlement::Exchanged { .. })));
                        if exchanged_only {
                            RmaStatus::Exchanged
                        } else {
                            RmaStatus::Refunded
                        }
                    } else if self.units.iter().all(|u| u.grade.is_some()) {
                        RmaStatus::Inspected
                    } else {
                        RmaStatus::Received
                    }
                }
            }
        })
    }

    /// Applies one event. Never fails: `decide` validated it before it was stored; unknown
    /// lines or units (a corrupt history) are skipped rather than panicking.
    pub fn apply(&mut self, event: &RmaEvent) {
        match event {
            RmaEvent::ReturnRequested(e) => {
                self.header = Some(RmaHeader {
                    rma_id: e.rma_id,
                    order_id: e.order_id,
                    customer_id: e.customer_id.clone(),
                    requested_by: e.requested_by.clone(),
                    currency: e.currency,
                    note: e.note.clone(),
                    requested_at: e.requested_at,
                });
                self.lines = e
                    .lines
                    .iter()
                    .map(|l| LineState {
                        line: l.clone(),
                        received: 0,
                    })
                    .collect();
            }
            RmaEvent::ReturnApproved(e) => {
                self.decision = Some(Decision::Approved {
                    auto: e.auto,
                    by: e.by.clone(),
                    note: e.note.clone(),
                });
            }
            RmaEvent::ReturnRejected(e) => {
                self.decision = Some(Decision::Rejected {
                    by: e.by.clone(),
                    note: e.note.clone(),
                });
            }
            RmaEvent::ReturnReceived(e) => {
                self.receipts.insert(
                    e.receipt_id.clone(),
                    Receipt {
                        location: e.location.clone(),
                        lines: e.lines.clone(),
                        in_person: e.in_person || e.receipt_id.starts_with(COUNTER_RECEIPT),
                    },
                );
                for r in &e.lines {
                    if let Some(l) = self
                        .lines
                        .iter_mut()
                        .find(|l| l.line.rma_line_id == r.rma_line_id)
                    {
                        l.received = l.received.saturating_add(r.qty);
                    }
                }
                self.units.extend(e.units.iter().map(|u| ReturnUnit {
                    unit_id: u.unit_id.clone(),
                    rma_line_id: u.rma_line_id.clone(),
                    sku: u.sku.clone(),
                    location: e.location.clone(),
                    receipt_id: e.receipt_id.clone(),
                    grade: None,
                    settlement: None,
                }));
            }
            RmaEvent::UnitGraded(e) => {
                if let Some(u) = self.unit_mut(&e.unit_id) {
                    u.grade = Some(UnitGrade {
                        grade: e.grade.clone(),
                        disposition: e.disposition,
                        resale_sku: e.resale_sku.clone(),
                        resale_price: e.resale_price,
                    });
                }
            }
            RmaEvent::RefundIssued(e) => {
                self.refunds.insert(e.payment_reference.clone(), e.amount);
                self.settle(&e.units, &e.breakdown.shipping_fee, || {
                    Settlement::Refunded {
                        payment_reference: e.payment_reference.clone(),
                    }
                });
            }
            RmaEvent::ExchangeOrdered(e) => {
                self.exchanges
                    .insert(e.exchange_order_id, e.replacement_total);
                self.settle(&e.units, &e.breakdown.shipping_fee, || {
                    Settlement::Exchanged {
                        exchange_order_id: e.exchange_order_id,
                    }
                });
            }
            RmaEvent::ReturnClosed(_) => self.closed = true,
        }
    }

    fn settle(&mut self, units: &[String], shipping_fee: &Money, how: impl Fn() -> Settlement) {
        for id in units {
            if let Some(u) = self.unit_mut(id) {
                u.settlement = Some(how());
            }
        }
        if !shipping_fee.amount.is_zero() {
            self.shipping_fee_charged = true;
        }
    }
}
