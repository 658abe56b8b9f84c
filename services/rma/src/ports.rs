//! What the returns service needs of the other services, as traits (design.md: "a service is
//! used through a trait with an in-process and an HTTP implementation"). The gateway's
//! `wiring` module implements them in-process; no service crate depends on another.
//!
//! - [`OrdersPort`]: the facts a return is decided against (what was paid and fulfilled), the
//!   order's history for agents, refunds through the order's payment, and the replacement order
//!   of an exchange.
//! - [`StockPort`]: graded units back into stock, or written off, at the receiving location.
//! - [`CatalogPort`]: the catalog item of a resale SKU, so it can be bought like any other.
//!
//! Every call that changes something is idempotent per the key the caller passes, because the
//! callers retry (a checkpointed process after a crash, a client after a timeout).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use uuid::Uuid;

use crate::domain::OrderFacts;

/// Why a port call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The other service refused (bad input or one of its rules); nothing changed there.
    /// `code` is a shared `ErrorCode` wire value (`INVALID_INPUT`, `NOT_FOUND`, `CONFLICT`),
    /// `field` the input field to blame if any.
    #[error("{message}")]
    Refused {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// The other service failed or is unreachable; the call may be retried as it was.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl PortError {
    pub fn refused(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        PortError::Refused {
            code,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// One entry of an order's history, for the agent's return detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderHistoryEntry {
    pub at: DateTime<Utc>,
    pub event_type: String,
    pub summary: String,
}

/// An order a store associate or an agent found, with what can still be returned of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundOrder {
    pub facts: OrderFacts,
    pub placed_at: DateTime<Utc>,
    /// The order's status as the order service names it (`DELIVERED`, `PICKED_UP`, …).
    pub status: String,
}

/// How a replacement line reaches the customer.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeDelivery {
    /// Shipped to the customer's geocoded address.
    Ship { lat: f64, lon: f64 },
    /// Collected at a store (BOPIS).
    Pickup { store: String },
}

/// One replacement line.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeLine {
    pub sku: String,
    pub qty: i64,
    pub delivery: ExchangeDelivery,
}

/// The replacement order of an exchange: placed for the return's customer, paid first by
/// `credit` (the returned units' value), reserved at once like any order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRequest {
    pub rma_id: Uuid,
    pub customer_id: Option<String>,
    pub lines: Vec<ExchangeLine>,
    pub credit: Money,
    /// Makes the placement idempotent: the same key places the same order.
    pub idempotency_key: String,
}

/// A placed (or re-found) replacement order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangePlaced {
    pub order_id: Uuid,
    /// The order's total (prices from the catalog).
    pub total: Money,
}

#[async_trait]
pub trait OrdersPort: Send + Sync {
    /// The order as a return sees it (`None`: no such order). `already_returned_qty` is left
    /// at zero: the returns handlers fill it in.
    async fn facts(&self, order_id: Uuid) -> Result<Option<OrderFacts>, PortError>;

    /// One order with what store staff see of it when they look it up (`None`: no such
    /// order).
    async fn find(&self, order_id: Uuid) -> Result<Option<FoundOrder>, PortError>;

    /// Orders of a customer, newest first, at most `limit` (store staff look a customer up).
    async fn orders_of_customer(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<FoundOrder>, PortError>;

    /// The order's own history, oldest first (empty for an unknown order).
    async fn history(&self, order_id: Uuid) -> Result<Vec<OrderHistoryEntry>, PortError>;

    /// Gives `amount` of the order's captured payment back, once per `operation`: a repeated
    /// operation returns the first answer (the provider's reference) and moves no money. A
    /// refund beyond what the order can still give back is `Refused` and changes nothing.
    async fn refund(
        &self,
        order_id: Uuid,
        operation: &str,
        amount: Money,
        metadata: Metadata,
    ) -> Result<String, PortError>;

    /// What the order already refunded under `operation` (`None`: nothing yet). A refund cut
    /// off between the payment and its record on the return is retried under the same
    /// operation; the retry adds this back to what is refundable, so it computes the same
    /// amount as the first attempt.
    async fn refunded_under(
        &self,
        order_id: Uuid,
        operation: &str,
    ) -> Result<Option<Money>, PortError>;

    /// Places the replacement order of an exchange (idempotent per `idempotency_key`).
    async fn place_exchange(
        &self,
        request: ExchangeRequest,
        metadata: Metadata,
    ) -> Result<ExchangePlaced, PortError>;
}

/// A returned unit arriving in the stock of a location. `key` names the unit
/// (`<rma id>/<unit id>`): the same key twice counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedUnit {
    pub sku: String,
    pub location: String,
    pub rma_id: Uuid,
    pub key: String,
}

#[async_trait]
pub trait StockPort: Send + Sync {
    /// One unit on hand (sellable) at the location; creates the stock record if the SKU was
    /// never stocked there (a resale SKU's first unit).
    async fn receive(&self, unit: &ReturnedUnit, metadata: Metadata) -> Result<(), PortError>;

    /// One unit that arrived at the location and is written off (`disposition` `DISPOSE` or
    /// `RETURN_TO_VENDOR`, with the grade's reason); on hand does not change.
    async fn write_off(
        &self,
        unit: &ReturnedUnit,
        disposition: &str,
        reason: &str,
        metadata: Metadata,
    ) -> Result<(), PortError>;
}

/// The catalog item of a resale SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResaleItem {
    pub resale_sku: String,
    pub original_sku: String,
    pub grade_code: String,
    /// "<original title> (<grade label>)".
    pub title: String,
    pub price: Money,
}

#[async_trait]
pub trait CatalogPort: Send + Sync {
    /// Makes the resale SKU a catalog item (active) if it is not one yet. An existing item
    /// keeps its price: the merchant may have repriced it, and every unit of a SKU sells at
    /// one price.
    async fn ensure_resale_item(
        &self,
        item: &ResaleItem,
        metadata: Metadata,
    ) -> Result<(), PortError>;
}

/// Which locations take returns (the inventory's locations and their `RETURNS` capability).
pub trait LocationsPort: Send + Sync {
    /// `None`: no such location; otherwise whether it takes returns (and is active).
    fn takes_returns(&self, code: &str) -> Option<bool>;
}
