//! Events of an order stream (`order-<uuid>`).
//!
//! One payload struct per event, serialised camelCase; the store keeps the payload as the event
//! data and [`OrderEvent::event_type`] (a versioned name, `Name.v1`) as its type, so a later
//! `Name.v2` can be added next to the old one and both stay readable.
//!
//! Events carry everything `apply` needs (which reservation each cancelled or shipped unit came
//! from), so folding never re-decides anything and the handler can read from the events what
//! to release or consume in inventory.

use chrono::{DateTime, Utc};
use ichigen_shared::money::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Channel, LineQty, OrderCredit, PricedLine, ReservationRelease, ReservationUse,
    ReservedAllocation,
};
use crate::domain::sourcing::LineExplanation;

/// The order exists: priced lines, where each unit is reserved, and why those locations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: Option<String>,
    /// The actor's subject: the customer themself, or the store associate (endless aisle).
    pub placed_by: String,
    pub channel: Channel,
    pub lines: Vec<PricedLine>,
    pub allocations: Vec<ReservedAllocation>,
    /// The sourcing decision as it was made, candidate by candidate.
    pub sourcing: Vec<LineExplanation>,
    /// Σ qty × unit price over every line as ordered (before any out-of-stock cancellation).
    pub total: Money,
    pub idempotency_key: String,
    pub request_fingerprint: String,
    pub placed_at: DateTime<Utc>,
    /// Exchange credit that pays for part or all of the order: the authorization (if any) is
    /// for what is left. Absent in events written before credits existed and in orders without
    /// one (`default`, and not written when `None`, so those payloads stay as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<OrderCredit>,
}

/// Quantities of lines cancelled. `amount` is their value (qty × unit price), recorded so that
/// readers need not recompute it; `reservations_to_release` is what the handler releases in
/// inventory; `short_picked_cleared` are short-picked units given up (they hold no reservation).
/// Units cancelled beyond both were never allocated (a partial order's `OUT_OF_STOCK` lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLinesCancelled {
    pub lines: Vec<LineQty>,
    pub reason: String,
    pub amount: Money,
    pub reservations_to_release: Vec<ReservationRelease>,
    pub short_picked_cleared: Vec<ShortPickedCleared>,
    /// The cancellation operation the fulfillment orders decided first (`CancelConfirmed`):
    /// their `FulfillmentLinesCancelled` carry the same, so each of its parts is recorded here
    /// once. Absent for cancellations no fulfillment order had to agree to (expired pickups,
    /// out of stock) and on events written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Short-picked units of a line at a location that are no longer waiting for a new location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortPickedCleared {
    pub line_id: String,
    pub location: String,
    pub qty: i64,
}

/// A parcel left `location`. `consumed` names the reservations it used (the handler consumes
/// them in inventory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    pub fulfillment_id: String,
    pub location: String,
    pub lines: Vec<LineQty>,
    pub carrier: String,
    pub tracking: Option<String>,
    pub consumed: Vec<ReservationUse>,
}

/// Pickup units are staged at the store and the customer can come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderReadyForPickup {
    pub fulfillment_id: String,
    pub location: String,
    pub lines: Vec<LineQty>,
}

/// The customer took staged units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPickedUp {
    pub fulfillment_id: String,
    pub location: String,
    pub lines: Vec<LineQty>,
    pub consumed: Vec<ReservationUse>,
}

/// The carrier delivered a shipment (its lines copied here for readers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDelivered {
    pub fulfillment_id: String,
    pub lines: Vec<LineQty>,
}

/// A location could not pick `qty` units: their reservations are released and the units wait
/// for a new location ([`LineReassigned`]) or a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineShortPicked {
    pub line_id: String,
    pub location: String,
    pub qty: i64,
    pub reservations_to_release: Vec<ReservationRelease>,
}

/// `qty` units of a line move from one location to another (re-sourced after a short pick, or
/// moved by staff); the new location holds `new_reservation_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineReassigned {
    pub line_id: String,
    pub from_location: String,
    pub to_location: String,
    pub qty: i64,
    pub new_reservation_id: String,
    /// Short-picked units at `from_location` this reassignment resolves.
    pub short_picked_cleared: i64,
    /// Open reservations at `from_location` given up for the rest.
    pub reservations_to_release: Vec<ReservationRelease>,
}

/// The provider authorized the order's amount (at placement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAuthorized {
    pub payment_id: Uuid,
    pub provider: String,
    pub reference: String,
    pub amount: Money,
}

/// Money taken (on ship or pickup). `reference` is the provider's for this capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCaptured {
    pub payment_id: Uuid,
    pub amount: Money,
    pub reference: String,
}

/// The authorization was released without taking anything; `amount` is what was authorized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentVoided {
    pub payment_id: Uuid,
    pub amount: Money,
}

/// Captured money given back. `reference` is the provider's for this refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub amount: Money,
    pub reference: String,
    /// The caller's operation key (`rma:<id>`, a cancellation's settlement), recorded so that
    /// a retried refund is recognised before the provider is asked again. Absent in older
    /// events and in refunds made without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

macro_rules! order_events {
    ($($name:ident => $ty:literal),* $(,)?) => {
        /// Every event of an order stream.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum OrderEvent {
            $( #[serde(rename = $ty)] $name($name), )*
        }

        impl OrderEvent {
            /// Every event type with its payload's JSON schema: what the event catalogue
            /// (`docs/event-catalogue.md`) is generated from.
            pub fn catalogue() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($ty, schemars::schema_for!($name)), )* ]
            }

            /// The versioned event type stored next to the payload.
            pub fn event_type(&self) -> &'static str {
                match self { $( OrderEvent::$name(_) => $ty, )* }
            }

            /// The payload as stored in the event's data (camelCase JSON).
            pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $( OrderEvent::$name(p) => serde_json::to_vec(p), )* }
            }

            /// Reads a stored event back from its type and data; `None` for a type this
            /// aggregate does not know.
            pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $ty => Some(serde_json::from_slice(data).map(OrderEvent::$name)), )*
                    _ => None,
                }
            }
        }

        $( impl From<$name> for OrderEvent {
            fn from(p: $name) -> Self { OrderEvent::$name(p) }
        } )*
    };
}

order_events! {
    OrderPlaced => "OrderPlaced.v1",
    OrderLinesCancelled => "OrderLinesCancelled.v1",
    OrderShipped => "OrderShipped.v1",
    OrderReadyForPickup => "OrderReadyForPickup.v1",
    OrderPickedUp => "OrderPickedUp.v1",
    OrderDelivered => "OrderDelivered.v1",
    LineShortPicked => "LineShortPicked.v1",
    LineReassigned => "LineReassigned.v1",
    PaymentAuthorized => "PaymentAuthorized.v1",
    PaymentCaptured => "PaymentCaptured.v1",
    PaymentVoided => "PaymentVoided.v1",
    PaymentRefunded => "PaymentRefunded.v1",
}
