//! Events of a fulfillment order stream (`fulfillment-<uuid>`), camelCase JSON, versioned
//! type names.

use super::{FulfillmentKind, FulfillmentLine};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Created by the order process for one order × location, with the lines it fulfils.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentCreated {
    pub fulfillment_id: Uuid,
    pub order_id: Uuid,
    pub location: String,
    pub kind: FulfillmentKind,
    pub destination_store: Option<String>,
    pub pickup_hold_days: i64,
    /// The IANA zone of the store the customer collects at: its local days count the hold
    /// days. Absent in fulfillment orders created before holds were counted in local days
    /// (theirs are counted in 24-hour periods, as they were promised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_time_zone: Option<String>,
    pub lines: Vec<FulfillmentLine>,
}

/// What the picker found per line: `picked` units in hand, `short` units missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PickedLine {
    pub line_id: String,
    pub picked: i64,
    pub short: i64,
}

/// The picker's report: per line the units in hand and the units missing (a short pick,
/// which the order re-sources or cancels, and the inventory records against the location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinesPicked {
    pub lines: Vec<PickedLine>,
}

/// Packed for the carrier (SHIP and SHIP_TO_STORE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentPacked {
    pub packages: i64,
}

/// Handed to the carrier: the units left the building (the order captures their value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentShipped {
    pub carrier: String,
    pub tracking_number: String,
}

/// The carrier delivered the shipment (SHIP only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentDelivered {
    pub delivered_at: DateTime<Utc>,
}

/// At the counter: the customer is notified with the code and must collect by `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyForPickup {
    pub pickup_code: String,
    pub expires_at: DateTime<Utc>,
}

/// The customer showed the pickup code and took the units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PickedUp {
    pub picked_up_at: DateTime<Utc>,
}

/// Not collected in time: the order process releases the stock and voids the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PickupExpired {
    pub expired_at: DateTime<Utc>,
}

/// Units this location will no longer fulfil (the order was cancelled, or lines moved away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelledLine {
    pub line_id: String,
    pub qty: i64,
}

/// Units this location will no longer fulfil: the order's cancellation (with its `operation`),
/// or units moved to another location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentLinesCancelled {
    pub lines: Vec<CancelledLine>,
    pub reason: String,
    /// The order's cancellation this answers (`CancelUnits`), when the order asked: the order
    /// records the same operation, so that it records these units once and a crash between
    /// the two appends is mended by the order's reaction to this event. Absent on events
    /// written before the fulfillment order decided cancellations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

macro_rules! fulfillment_events {
    ($($name:ident => $ty:literal),* $(,)?) => {
        /// Every event of a fulfillment order stream.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum FulfillmentEvent {
            $( #[serde(rename = $ty)] $name($name), )*
        }

        impl FulfillmentEvent {
            /// Every event type with its payload's JSON schema: what the event catalogue
            /// (`docs/event-catalogue.md`) is generated from.
            pub fn catalogue() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($ty, schemars::schema_for!($name)), )* ]
            }

            /// The versioned event type stored next to the payload.
            pub fn event_type(&self) -> &'static str {
                match self { $( FulfillmentEvent::$name(_) => $ty, )* }
            }

            /// The payload as stored in the event's data (camelCase JSON).
            pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $( FulfillmentEvent::$name(p) => serde_json::to_vec(p), )* }
            }

            /// Reads a stored event back; `None` for a type this aggregate does not know.
            pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $ty => Some(serde_json::from_slice(data).map(FulfillmentEvent::$name)), )*
                    _ => None,
                }
            }
        }

        $( impl From<$name> for FulfillmentEvent {
            fn from(p: $name) -> Self { FulfillmentEvent::$name(p) }
        } )*
    };
}

fulfillment_events! {
    FulfillmentCreated => "FulfillmentCreated.v1",
    LinesPicked => "FulfillmentLinesPicked.v1",
    FulfillmentPacked => "FulfillmentPacked.v1",
    FulfillmentShipped => "FulfillmentShipped.v1",
    FulfillmentDelivered => "FulfillmentDelivered.v1",
    ReadyForPickup => "FulfillmentReadyForPickup.v1",
    PickedUp => "FulfillmentPickedUp.v1",
    PickupExpired => "FulfillmentPickupExpired.v1",
    FulfillmentLinesCancelled => "FulfillmentLinesCancelled.v1",
}
