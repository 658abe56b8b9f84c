//! GraphQL objects of the returns service: a return with its lines, units, settlements and
//! timeline; the return policy; orders found for a return.

use crate::domain::rma::{Decision, Settlement};
use crate::domain::{ConditionGrade, Disposition, Policy, ReturnReason, Rma, RmaStatus};
use crate::ports::{FoundOrder, OrderHistoryEntry};
use crate::projections::{ReturnRecord, ReturnTimelineEntry, ReturnUpdate};
use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::node_type;
use ichigen_shared::graphql::conventions::{
    encode_id, internal_error, request_context, MoneyObject,
};
use ichigen_shared::money::Money;
use std::collections::HashMap;

/// The type name in a return's global id.
pub const RETURN_TYPE: &str = node_type::RETURN;
/// The order service's type name (an order's id is the order service's).
pub const ORDER_TYPE: &str = node_type::ORDER;
/// The inventory service's type name of a location id.
pub const LOCATION_TYPE: &str = node_type::LOCATION;

/// Where a return stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ReturnStatus")]
pub enum ReturnStatusGql {
    /// Waiting for an agent's decision.
    Requested,
    /// Approved; nothing received yet.
    Approved,
    Rejected,
    /// Some units arrived, others are still expected.
    PartiallyReceived,
    /// Every unit arrived; some wait for a grade.
    Received,
    /// Every unit arrived and is graded; waiting for the refund or exchange.
    Inspected,
    /// Every unit arrived and is settled, at least partly by a refund.
    Refunded,
    /// Every unit arrived and is settled by exchanges only.
    Exchanged,
    Closed,
}

impl From<RmaStatus> for ReturnStatusGql {
    fn from(s: RmaStatus) -> Self {
        match s {
            RmaStatus::Requested => ReturnStatusGql::Requested,
            RmaStatus::Approved => ReturnStatusGql::Approved,
            RmaStatus::Rejected => ReturnStatusGql::Rejected,
            RmaStatus::PartiallyReceived => ReturnStatusGql::PartiallyReceived,
            RmaStatus::Received => ReturnStatusGql::Received,
            RmaStatus::Inspected => ReturnStatusGql::Inspected,
            RmaStatus::Refunded => ReturnStatusGql::Refunded,
            RmaStatus::Exchanged => ReturnStatusGql::Exchanged,
            RmaStatus::Closed => ReturnStatusGql::Closed,
        }
    }
}

impl From<ReturnStatusGql> for RmaStatus {
    fn from(s: ReturnStatusGql) -> Self {
        match s {
            ReturnStatusGql::Requested => RmaStatus::Requested,
            ReturnStatusGql::Approved => RmaStatus::Approved,
            ReturnStatusGql::Rejected => RmaStatus::Rejected,
            ReturnStatusGql::PartiallyReceived => RmaStatus::PartiallyReceived,
            ReturnStatusGql::Received => RmaStatus::Received,
            ReturnStatusGql::Inspected => RmaStatus::Inspected,
            ReturnStatusGql::Refunded => RmaStatus::Refunded,
            ReturnStatusGql::Exchanged => RmaStatus::Exchanged,
            ReturnStatusGql::Closed => RmaStatus::Closed,
        }
    }
}

/// What happens to a unit of a grade.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Disposition")]
pub enum DispositionGql {
    /// Back to sellable stock of the original SKU at the receiving location.
    Restock,
    /// Sold again as a resale SKU at original price × factor.
    Resale,
    /// Written off.
    Dispose,
    /// Written off here and sent back to the supplier.
    ReturnToVendor,
}

impl From<&Disposition> for DispositionGql {
    fn from(d: &Disposition) -> Self {
        match d {
            Disposition::Restock => DispositionGql::Restock,
            Disposition::Resale { .. } => DispositionGql::Resale,
            Disposition::Dispose => DispositionGql::Dispose,
            Disposition::ReturnToVendor => DispositionGql::ReturnToVendor,
        }
    }
}

fn money(m: &Money) -> MoneyObject {
    MoneyObject::from(*m)
}

/// A return reason of the policy.
#[derive(SimpleObject)]
#[graphql(name = "ReturnReason")]
pub struct ReturnReasonObject {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    /// Days after delivery or pickup during which the reason may be chosen.
    pub window_days: i64,
    /// Units must be graded before they are refunded or exchanged.
    pub inspection_required: bool,
    /// Percentage of the returned value kept by the merchant, as a decimal string.
    pub restocking_fee_percent: String,
    pub customer_pays_shipping: bool,
    /// Deducted once per return when the customer pays the return shipping and sent the
    /// units back; never for units handed in at a store's counter.
    pub return_shipping_fee: MoneyObject,
    /// A request with only auto-approving reasons is approved at once.
    pub auto_approve: bool,
    /// Retired reasons are kept for the returns that used them, but not offered.
    pub active: bool,
}

impl From<&ReturnReason> for ReturnReasonObject {
    fn from(r: &ReturnReason) -> Self {
        let s = &r.spec;
        ReturnReasonObject {
            code: s.code.clone(),
            label_ja: s.label_ja.clone(),
            label_en: s.label_en.clone(),
            window_days: s.window_days,
            inspection_required: s.inspection_required,
            restocking_fee_percent: s.restocking_fee_pct.to_string(),
            customer_pays_shipping: s.customer_pays_shipping,
            return_shipping_fee: money(&s.return_shipping_fee),
            auto_approve: s.auto_approve,
            active: r.active,
        }
    }
}

/// A condition grade of the policy.
#[derive(SimpleObject)]
#[graphql(name = "ConditionGrade")]
pub struct ConditionGradeObject {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub disposition: DispositionGql,
    /// For RESALE: the share of the original price a resale unit sells at (decimal string).
    pub price_factor: Option<String>,
    pub active: bool,
}

impl From<&ConditionGrade> for ConditionGradeObject {
    fn from(g: &ConditionGrade) -> Self {
        let s = &g.spec;
        ConditionGradeObject {
            code: s.code.clone(),
            label_ja: s.label_ja.clone(),
            label_en: s.label_en.clone(),
            disposition: (&s.disposition).into(),
            price_factor: match &s.disposition {
                Disposition::Resale { price_factor } => Some(price_factor.to_string()),
                _ => None,
            },
            active: g.active,
        }
    }
}

/// The return policy: reasons customers choose from and grades inspectors give.
#[derive(SimpleObject)]
#[graphql(name = "ReturnPolicy")]
pub struct ReturnPolicyObject {
    pub reasons: Vec<ReturnReasonObject>,
    pub grades: Vec<ConditionGradeObject>,
}

impl From<&Policy> for ReturnPolicyObject {
    fn from(p: &Policy) -> Self {
        ReturnPolicyObject {
            reasons: p.reasons.values().map(Into::into).collect(),
            grades: p.grades.values().map(Into::into).collect(),
        }
    }
}

/// A return line: units of one order line returned for one reason.
#[derive(SimpleObject)]
#[graphql(name = "ReturnLine")]
pub struct ReturnLineObject {
    /// `R1`, `R2`, … (what receipts name).
    pub id: String,
    pub order_line_id: String,
    pub sku: String,
    pub title: String,
    /// What the customer paid per unit.
    pub unit_price: MoneyObject,
    pub quantity: i64,
    pub received: i64,
    /// The reason as it was when the return was requested.
    pub reason: ReturnReasonObject,
    /// The end of the reason's return window.
    pub return_by: DateTime<Utc>,
}

/// A grade given to a unit.
#[derive(SimpleObject)]
#[graphql(name = "UnitGrade")]
pub struct UnitGradeObject {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub disposition: DispositionGql,
    /// The SKU the unit is sold again as (RESALE only).
    pub resale_sku: Option<String>,
    pub resale_price: Option<MoneyObject>,
}

/// How a unit's value went back.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnitSettlement {
    Refunded,
    Exchanged,
}

/// One physical unit received back.
#[derive(SimpleObject)]
#[graphql(name = "ReturnUnit")]
pub struct ReturnUnitObject {
    /// `R1-1`, `R1-2`, …
    pub id: String,
    pub line_id: String,
    pub sku: String,
    /// The receiving location (where its disposition moves stock).
    pub location: ID,
    pub location_code: String,
    pub receipt_id: String,
    pub grade: Option<UnitGradeObject>,
    pub settlement: Option<UnitSettlement>,
    /// The replacement order it was exchanged for.
    pub exchange_order_id: Option<ID>,
}

/// A refund of the return.
#[derive(SimpleObject)]
#[graphql(name = "ReturnRefund")]
pub struct ReturnRefundObject {
    /// The payment provider's reference.
    pub payment_reference: String,
    pub amount: MoneyObject,
}

/// An exchange of the return.
#[derive(SimpleObject)]
#[graphql(name = "ReturnExchange")]
pub struct ReturnExchangeObject {
    pub order_id: ID,
    pub replacement_total: MoneyObject,
}

/// The agent's (or the policy's) decision.
#[derive(SimpleObject)]
#[graphql(name = "ReturnDecision")]
pub struct ReturnDecisionObject {
    pub approved: bool,
    /// Approved by the reasons' auto-approval rule.
    pub automatic: bool,
    pub by: String,
    pub note: String,
}

/// One event of the return's history.
#[derive(SimpleObject)]
#[graphql(name = "ReturnTimelineEntry")]
pub struct ReturnTimelineObject {
    pub at: DateTime<Utc>,
    /// The event type (`ReturnRequested`, `UnitGraded`, …).
    pub event: String,
    pub summary: String,
    /// Who did it (a subject, or a process name).
    pub actor: String,
}

impl From<&ReturnTimelineEntry> for ReturnTimelineObject {
    fn from(e: &ReturnTimelineEntry) -> Self {
        ReturnTimelineObject {
            at: e.at,
            event: event_name(&e.event_type),
            summary: e.summary.clone(),
            actor: e.actor.clone(),
        }
    }
}

/// One event of the order's history.
#[derive(SimpleObject)]
#[graphql(name = "OrderHistoryEntry")]
pub struct OrderHistoryObject {
    pub at: DateTime<Utc>,
    pub event: String,
    pub summary: String,
}

impl From<OrderHistoryEntry> for OrderHistoryObject {
    fn from(e: OrderHistoryEntry) -> Self {
        OrderHistoryObject {
            at: e.at,
            event: event_name(&e.event_type),
            summary: e.summary,
        }
    }
}

/// `UnitGraded.v1` → `UnitGraded` (the envelope's own split).
fn event_name(event_type: &str) -> String {
    ichigen_shared::envelope::split_event_type(event_type)
        .0
        .to_owned()
}

/// A return: the write side's state, with the view's timeline when the view has it.
pub struct ReturnObject {
    pub rma: Rma,
    pub timeline: Vec<ReturnTimelineEntry>,
}

impl ReturnObject {
    pub fn from_state(rma: Rma) -> Self {
        ReturnObject {
            rma,
            timeline: Vec::new(),
        }
    }

    pub fn from_record(record: ReturnRecord) -> Self {
        ReturnObject {
            rma: record.rma,
            timeline: record.timeline,
        }
    }

    fn header(&self) -> async_graphql::Result<&crate::domain::rma::RmaHeader> {
        self.rma
            .header
            .as_ref()
            .ok_or_else(|| async_graphql::Error::new("a return without its request"))
    }
}

#[Object(name = "Return")]
impl ReturnObject {
    async fn id(&self) -> async_graphql::Result<ID> {
        Ok(encode_id(RETURN_TYPE, &self.header()?.rma_id.to_string()))
    }
    /// The return's UUID: the `rmaId` of the WMS returns API
    /// (`/api/returns/v1/returns/{rmaId}`, which takes `id` too) and of the event feed
    /// (`rma-<rawId>` streams).
    async fn raw_id(&self) -> async_graphql::Result<String> {
        Ok(self.header()?.rma_id.to_string())
    }
    async fn order_id(&self) -> async_graphql::Result<ID> {
        Ok(encode_id(ORDER_TYPE, &self.header()?.order_id.to_string()))
    }
    async fn customer_id(&self) -> async_graphql::Result<Option<&str>> {
        Ok(self.header()?.customer_id.as_deref())
    }
    /// The customer, or the agent or associate who asked for them.
    async fn requested_by(&self) -> async_graphql::Result<&str> {
        Ok(&self.header()?.requested_by)
    }
    async fn requested_at(&self) -> async_graphql::Result<DateTime<Utc>> {
        Ok(self.header()?.requested_at)
    }
    async fn note(&self) -> async_graphql::Result<&str> {
        Ok(&self.header()?.note)
    }
    async fn status(&self) -> Option<ReturnStatusGql> {
        self.rma.status().map(Into::into)
    }
    async fn decision(&self) -> Option<ReturnDecisionObject> {
        self.rma.decision.as_ref().map(|d| match d {
            Decision::Approved { auto, by, note } => ReturnDecisionObject {
                approved: true,
                automatic: *auto,
                by: by.clone(),
                note: note.clone(),
            },
            Decision::Rejected { by, note } => ReturnDecisionObject {
                approved: false,
                automatic: false,
                by: by.clone(),
                note: note.clone(),
            },
        })
    }
    async fn lines(&self) -> Vec<ReturnLineObject> {
        self.rma
            .lines
            .iter()
            .map(|l| {
                let line = &l.line;
                let r = &line.reason;
                ReturnLineObject {
                    id: line.rma_line_id.clone(),
                    order_line_id: line.order_line_id.clone(),
                    sku: line.sku.clone(),
                    title: line.title.clone(),
                    unit_price: money(&line.unit_price),
                    quantity: line.qty,
                    received: l.received,
                    reason: ReturnReasonObject {
                        code: r.code.clone(),
                        label_ja: r.label_ja.clone(),
                        label_en: r.label_en.clone(),
                        window_days: r.window_days,
                        inspection_required: r.inspection_required,
                        restocking_fee_percent: r.restocking_fee_pct.to_string(),
                        customer_pays_shipping: r.customer_pays_shipping,
                        return_shipping_fee: money(&r.return_shipping_fee),
                        auto_approve: r.auto_approve,
                        active: true,
                    },
                    return_by: line.return_by,
                }
            })
            .collect()
    }
    async fn units(&self) -> Vec<ReturnUnitObject> {
        self.rma
            .units
            .iter()
            .map(|u| ReturnUnitObject {
                id: u.unit_id.clone(),
                line_id: u.rma_line_id.clone(),
                sku: u.sku.clone(),
                location: encode_id(LOCATION_TYPE, &u.location),
                location_code: u.location.clone(),
                receipt_id: u.receipt_id.clone(),
                grade: u.grade.as_ref().map(|g| UnitGradeObject {
                    code: g.grade.code.clone(),
                    label_ja: g.grade.label_ja.clone(),
                    label_en: g.grade.label_en.clone(),
                    disposition: (&g.disposition).into(),
                    resale_sku: g.resale_sku.clone(),
                    resale_price: g.resale_price.as_ref().map(money),
                }),
                settlement: u.settlement.as_ref().map(|s| match s {
                    Settlement::Refunded { .. } => UnitSettlement::Refunded,
                    Settlement::Exchanged { .. } => UnitSettlement::Exchanged,
                }),
                exchange_order_id: u.settlement.as_ref().and_then(|s| match s {
                    Settlement::Exchanged { exchange_order_id } => {
                        Some(encode_id(ORDER_TYPE, &exchange_order_id.to_string()))
                    }
                    Settlement::Refunded { .. } => None,
                }),
            })
            .collect()
    }
    async fn refunds(&self) -> Vec<ReturnRefundObject> {
        self.rma
            .refunds
            .iter()
            .map(|(reference, amount)| ReturnRefundObject {
                payment_reference: reference.clone(),
                amount: money(amount),
            })
            .collect()
    }
    /// Every refund of this return added up.
    async fn refunded_total(&self) -> async_graphql::Result<MoneyObject> {
        let currency = self.header()?.currency;
        let total = self
            .rma
            .refunds
            .values()
            .fold(Money::zero(currency), |sum, m| {
                Money::new(sum.amount + m.amount, currency)
            });
        Ok(money(&total))
    }
    async fn exchanges(&self) -> Vec<ReturnExchangeObject> {
        self.rma
            .exchanges
            .iter()
            .map(|(order_id, total)| ReturnExchangeObject {
                order_id: encode_id(ORDER_TYPE, &order_id.to_string()),
                replacement_total: money(total),
            })
            .collect()
    }
    /// Every event of the return, oldest first (from the returns view).
    async fn timeline(&self) -> Vec<ReturnTimelineObject> {
        self.timeline.iter().map(Into::into).collect()
    }
    /// The order's own history, oldest first: for CS agents, store staff and admins (empty
    /// for customers, who read their order directly).
    async fn order_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OrderHistoryObject>> {
        let actor = &request_context(ctx)?.actor;
        if actor.role == Role::Customer {
            return Ok(Vec::new());
        }
        let order_id = self.header()?.order_id;
        let history = super::service(ctx)?
            .orders
            .history(order_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the order's history", &e))?;
        Ok(history.into_iter().map(Into::into).collect())
    }
}

/// A line of an order found for a return, with what is still returnable.
#[derive(SimpleObject)]
#[graphql(name = "ReturnableLine")]
pub struct ReturnableLineObject {
    pub order_line_id: String,
    pub sku: String,
    pub title: String,
    pub unit_price: MoneyObject,
    /// Units delivered or picked up.
    pub fulfilled: i64,
    /// Units already taken by other returns (not rejected).
    pub already_returned: i64,
    /// `fulfilled − alreadyReturned`.
    pub returnable: i64,
    /// When it was delivered or picked up (the return windows start there).
    pub fulfilled_at: Option<DateTime<Utc>>,
}

/// An order a store associate or agent looked up to take a return.
#[derive(SimpleObject)]
#[graphql(name = "ReturnableOrder", complex)]
pub struct ReturnableOrderObject {
    pub order_id: ID,
    pub customer_id: Option<String>,
    pub placed_at: DateTime<Utc>,
    /// The order's status (`DELIVERED`, `PICKED_UP`, …).
    pub status: String,
    pub captured: MoneyObject,
    pub refunded: MoneyObject,
    pub lines: Vec<ReturnableLineObject>,
    #[graphql(skip)]
    pub order_uuid: uuid::Uuid,
}

#[ComplexObject]
impl ReturnableOrderObject {
    /// The order's returns so far.
    async fn returns(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ReturnObject>> {
        Ok(super::service(ctx)?
            .view
            .by_order(self.order_uuid)
            .into_iter()
            .map(ReturnObject::from_record)
            .collect())
    }
}

impl ReturnableOrderObject {
    pub fn new(found: FoundOrder, taken: &HashMap<String, i64>) -> Self {
        let f = found.facts;
        ReturnableOrderObject {
            order_id: encode_id(ORDER_TYPE, &f.order_id.to_string()),
            customer_id: f.customer_id.clone(),
            placed_at: found.placed_at,
            status: found.status,
            captured: money(&f.captured),
            refunded: money(&f.refunded),
            lines: f
                .lines
                .iter()
                .map(|l| {
                    let already = taken.get(&l.line_id).copied().unwrap_or(0);
                    ReturnableLineObject {
                        order_line_id: l.line_id.clone(),
                        sku: l.sku.clone(),
                        title: l.title.clone(),
                        unit_price: money(&l.unit_price),
                        fulfilled: l.fulfilled_qty,
                        already_returned: already,
                        returnable: (l.fulfilled_qty - already).max(0),
                        fulfilled_at: l.fulfilled_at,
                    }
                })
                .collect(),
            order_uuid: f.order_id,
        }
    }
}

/// One change of a return, as `returnUpdates` sends it.
#[derive(SimpleObject)]
#[graphql(name = "ReturnUpdate")]
pub struct ReturnUpdateObject {
    pub return_id: ID,
    pub order_id: ID,
    pub status: Option<ReturnStatusGql>,
    pub event: String,
    pub summary: String,
    pub at: DateTime<Utc>,
}

impl From<&ReturnUpdate> for ReturnUpdateObject {
    fn from(u: &ReturnUpdate) -> Self {
        ReturnUpdateObject {
            return_id: encode_id(RETURN_TYPE, &u.rma_id.to_string()),
            order_id: encode_id(ORDER_TYPE, &u.order_id.to_string()),
            status: Some(u.status.into()),
            event: event_name(&u.event_type),
            summary: u.summary.clone(),
            at: u.at,
        }
    }
}
