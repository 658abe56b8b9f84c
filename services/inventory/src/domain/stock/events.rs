//! Events of a stock item stream (`inventory-<SKU>@<LOCATION>`).
//!
//! One payload struct per event, serialised camelCase; the store keeps the payload as the event
//! data and [`StockEvent::event_type`] (a versioned name, `Name.v1`) as its type, so a later
//! `Name.v2` can be added next to the old one and both stay readable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Goods receipt (purchase order, ASN): on hand grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoodsReceived {
    pub qty: i64,
    pub reference: Option<String>,
}

/// A manual correction with a reason code (damage found, theft, data fix) and its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockAdjusted {
    pub delta: i64,
    pub reason_code: String,
    pub reference: Option<String>,
}

/// An absolute count. `delta` is what the count changed; `shortfall` is how many reserved units
/// the count could not cover (0 normally) — recorded instead of letting on hand go below
/// reserved, so that someone can act on it (re-source the affected reservations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CycleCounted {
    pub counted: i64,
    pub delta: i64,
    pub shortfall: i64,
    /// The count sheet or task the count was recorded from. Absent in counts stored before
    /// counts took a reference (`serde(default)`), so those read as "no document".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A compare-and-set from an integration that syncs absolute numbers ("N if still M"). Same
/// shortfall rule as a count: the integration reports what is physically there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnHandSet {
    pub expected_on_hand: i64,
    pub new_on_hand: i64,
    pub delta: i64,
    pub shortfall: i64,
}

/// Stock left this location on a transfer; it becomes incoming at `to_location` (recorded there
/// as [`TransferInTransit`] by the transfer process). A transfer id ships once from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferShipped {
    pub qty: i64,
    pub to_location: String,
    pub transfer_id: String,
}

/// A transfer announced to arrive here from `from_location` before its source shipped it
/// (`POST /transfers/expected`): incoming grows by `qty` until the shipment's
/// [`TransferInTransit`] takes its place. It never lets stock be received by itself. Events
/// stored before announcements named their source have no `from_location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomingExpected {
    pub qty: i64,
    pub transfer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
}

/// A transfer shipped from `from_location` is on its way here: incoming grows by `qty` less
/// `incoming_cleared` (what an announcement of the same transfer already counted), so a
/// transfer is counted in incoming once. Recorded once per transfer id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferInTransit {
    pub qty: i64,
    pub transfer_id: String,
    pub from_location: String,
    pub incoming_cleared: i64,
}

/// A transfer arrived: on hand grows by `qty`, incoming shrinks by `incoming_cleared` (what the
/// transfer counted in incoming, recorded so projections need not recompute it; `qty` below
/// what was shipped means units lost on the way, and the transfer is closed all the same).
/// `from_location` is absent in receipts stored before transfers were checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferReceived {
    pub qty: i64,
    pub transfer_id: String,
    pub incoming_cleared: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
}

/// A customer return put back into sellable stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnReceived {
    pub qty: i64,
    pub rma_id: String,
    /// The returned unit's key (`<rmaId>/<unitId>`): recorded so that a re-delivered receipt
    /// of the same unit is recognised and counted once. Empty in events stored before keys
    /// existed (`serde(default)`), which therefore guard nothing.
    #[serde(default)]
    pub key: String,
}

/// A returned unit arrived at this location and was written off instead of restocked
/// (`disposition` `DISPOSE` or `RETURN_TO_VENDOR`, with the grade's `reason`). On hand does
/// not change — the unit never became stock — but the write-off is part of the location's
/// stock ledger, so that an audit of the SKU here sees every returned unit, kept or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnWrittenOff {
    pub qty: i64,
    pub rma_id: String,
    /// The returned unit's key, as in [`ReturnReceived::key`].
    pub key: String,
    pub disposition: String,
    pub reason: String,
}

/// Sellable stock found damaged or put into quality control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockMovedToNonSellable {
    pub qty: i64,
    pub reason: String,
}

/// Non-sellable stock released back to sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockMovedToSellable {
    pub qty: i64,
}

/// The buffer kept back from promising (ATP excludes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SafetyStockSet {
    pub qty: i64,
}

/// Stock promised to an owner (`cart:<id>`, `order-line:<uuid>`), optionally until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reserved {
    pub reservation_id: String,
    pub owner: String,
    pub qty: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The hold no longer expires (cart converted to an order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationConfirmed {
    pub reservation_id: String,
}

/// The remaining `qty` of the reservation is free again (cancel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationReleased {
    pub reservation_id: String,
    pub qty: i64,
}

/// `qty` of the reservation left the building (shipped or picked up): on hand and reserved
/// both shrink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationConsumed {
    pub reservation_id: String,
    pub qty: i64,
}

/// The hold ran out before it was confirmed; its remaining `qty` is free again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationExpired {
    pub reservation_id: String,
    pub qty: i64,
}

macro_rules! stock_events {
    ($($name:ident => $ty:literal),* $(,)?) => {
        /// Every event of a stock item stream.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum StockEvent {
            $( #[serde(rename = $ty)] $name($name), )*
        }

        impl StockEvent {
            /// Every event type with its payload's JSON schema: what the event catalogue
            /// (`docs/event-catalogue.md`) is generated from.
            pub fn catalogue() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($ty, schemars::schema_for!($name)), )* ]
            }

            /// The versioned event type stored next to the payload.
            pub fn event_type(&self) -> &'static str {
                match self { $( StockEvent::$name(_) => $ty, )* }
            }

            /// The payload as stored in the event's data (camelCase JSON).
            pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
                match self { $( StockEvent::$name(p) => serde_json::to_vec(p), )* }
            }

            /// Reads a stored event back from its type and data; `None` for a type this
            /// aggregate does not know (the stream has no such events today).
            pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $ty => Some(serde_json::from_slice(data).map(StockEvent::$name)), )*
                    _ => None,
                }
            }
        }

        $( impl From<$name> for StockEvent {
            fn from(p: $name) -> Self { StockEvent::$name(p) }
        } )*
    };
}

stock_events! {
    GoodsReceived => "GoodsReceived.v1",
    StockAdjusted => "StockAdjusted.v1",
    CycleCounted => "CycleCounted.v1",
    OnHandSet => "OnHandSet.v1",
    TransferShipped => "TransferShipped.v1",
    IncomingExpected => "IncomingExpected.v1",
    TransferInTransit => "TransferInTransit.v1",
    TransferReceived => "TransferReceived.v1",
    ReturnReceived => "ReturnReceived.v1",
    ReturnWrittenOff => "ReturnWrittenOff.v1",
    StockMovedToNonSellable => "StockMovedToNonSellable.v1",
    StockMovedToSellable => "StockMovedToSellable.v1",
    SafetyStockSet => "SafetyStockSet.v1",
    Reserved => "Reserved.v1",
    ReservationConfirmed => "ReservationConfirmed.v1",
    ReservationReleased => "ReservationReleased.v1",
    ReservationConsumed => "ReservationConsumed.v1",
    ReservationExpired => "ReservationExpired.v1",
}
