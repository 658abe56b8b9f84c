//! Events of a return stream (`rma-<uuid>`).
//!
//! One payload struct per event, serialised camelCase; [`RmaEvent::event_type`] is the stored,
//! versioned type (`Name.v1`). Each event is readable on its own in a customer-service timeline:
//! it names the units with their SKU, the reason or grade with its labels, and the money with
//! its breakdown, so a reader never has to re-derive what the decision saw.

use chrono::{DateTime, Utc};
use ichigen_shared::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::refund::QuotedLine;
use super::{GradeSnapshot, ReceivedLine, RmaLine};
use crate::domain::policy::Disposition;

/// A return was requested: every line with what later steps need, snapshotted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnRequested {
    pub rma_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    /// The actor's subject: the customer themself or a customer-service agent.
    pub requested_by: String,
    pub currency: Currency,
    pub lines: Vec<RmaLine>,
    /// The customer's comment (may be empty).
    pub note: String,
    pub requested_at: DateTime<Utc>,
}

/// The return may be sent back. `auto`: the policy approved it (every reason auto-approves),
/// `by` is then [`super::AUTO_APPROVER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnApproved {
    pub auto: bool,
    pub by: String,
    pub note: String,
}

/// The return is refused; `note` tells the customer why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnRejected {
    pub by: String,
    pub note: String,
}

/// A unit received back, with the id it keeps from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedUnit {
    pub unit_id: String,
    pub rma_line_id: String,
    pub sku: String,
    pub title: String,
}

/// Units arrived at `location` (a DC or a store) under the WMS's or the store's `receipt_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReceived {
    pub receipt_id: String,
    pub location: String,
    /// The receipt as sent (to recognise a retry).
    pub lines: Vec<ReceivedLine>,
    pub units: Vec<ReceivedUnit>,
    /// Handed in at a counter, not shipped back: no return shipping is deducted for these
    /// units. Absent (false) on receipts written before; a counter receipt of then is known by
    /// its id (`counter:<rmaId>`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_person: bool,
}

/// An inspector graded a unit; its disposition is fixed from here. For a resale, the resale
/// SKU and price the unit is sold under (the process that moves stock reads them here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitGraded {
    pub unit_id: String,
    pub rma_line_id: String,
    pub sku: String,
    pub title: String,
    /// Where the unit is (where it was received).
    pub location: String,
    pub grade: GradeSnapshot,
    pub disposition: Disposition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resale_sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resale_price: Option<Money>,
}

/// How an amount given back (refund or exchange credit) was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettlementBreakdown {
    /// Σ unit price over the units covered.
    pub gross: Money,
    /// Σ per line of its reason's fee, rounded down to minor units.
    pub restocking_fee: Money,
    /// The customer-paid return shipping (once per return; zero otherwise).
    pub shipping_fee: Money,
    /// Whether the amount was cut to what the order still had to refund.
    pub capped: bool,
    pub lines: Vec<QuotedLine>,
}

/// Money went back to the customer for `units` (each unit is refunded at most once).
/// `amount` may be zero (fees took it all, or the order had nothing left to refund): the units
/// are settled all the same, so the return can close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundIssued {
    /// The payment provider's reference for this refund (a retry with it decides nothing).
    pub payment_reference: String,
    pub amount: Money,
    pub units: Vec<String>,
    /// What the order could still refund when this was decided (the cap).
    pub refundable_left: Money,
    pub breakdown: SettlementBreakdown,
}

/// A replacement order was placed for `units`: their value (`credit`, the refund formula
/// without the cap) goes towards it; `difference = replacement_total − credit` (positive: the
/// customer pays it; negative: it is refunded to them, by the handler, on the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeOrdered {
    pub exchange_order_id: Uuid,
    pub replacement_total: Money,
    pub credit: Money,
    pub difference: Money,
    pub units: Vec<String>,
    pub breakdown: SettlementBreakdown,
}

/// Nothing more happens to this return. The counts and the refunded total summarise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnClosed {
    pub by: String,
    /// The status it was closed from (`REJECTED`, `REFUNDED`, `APPROVED` when nothing came, …).
    pub closed_from: super::RmaStatus,
    pub units_requested: i64,
    pub units_received: i64,
    pub refunded: Money,
}

macro_rules! rma_events {
    ($($name:ident => $ty:literal),* $(,)?) => {
        /// Every event of a return stream.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum RmaEvent {
            $( #[serde(rename = $ty)] $name($name), )*
        }

        impl RmaEvent {
            /// Every event type with its payload's JSON schema: what the event catalogue
            /// (`docs/event-catalogue.md`) is generated from.
            pub fn catalogue() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($ty, schemars::schema_for!($name)), )* ]
            }

            /// The versioned event type stored next to the payload.
            pub fn event_type(&self) -> &'static str {
                match self { $( RmaEvent::$name(_) => $ty, )* }
            }

            /// The payload as stored in the event's data (camelCase JSON).
            pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $( RmaEvent::$name(p) => serde_json::to_vec(p), )* }
            }

            /// Reads a stored event back from its type and data; `None` for a type this
            /// aggregate does not know.
            pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $ty => Some(serde_json::from_slice(data).map(RmaEvent::$name)), )*
                    _ => None,
                }
            }

            /// [`Self::decode`] of a recorded event. Event types are named apart from other
            /// services': units received back are `ReturnUnitsReceived.v1`, since the inventory
            /// already has `ReturnReceived.v1`.
            pub fn decode_recorded(
                event: &ichigen_shared::envelope::RecordedEvent,
            ) -> Option<Result<Self, serde_json::Error>> {
                Self::decode(&event.event_type, &event.data)
            }
        }

        $( impl From<$name> for RmaEvent {
            fn from(p: $name) -> Self { RmaEvent::$name(p) }
        } )*
    };
}

rma_events! {
    ReturnRequested => "ReturnRequested.v1",
    ReturnApproved => "ReturnApproved.v1",
    ReturnRejected => "ReturnRejected.v1",
    ReturnReceived => "ReturnUnitsReceived.v1",
    UnitGraded => "UnitGraded.v1",
    RefundIssued => "RefundIssued.v1",
    ExchangeOrdered => "ExchangeOrdered.v1",
    ReturnClosed => "ReturnClosed.v1",
}
