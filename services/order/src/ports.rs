//! What the order service needs of other services, as traits (design.md: "a service is used
//! through a trait with an in-process and an HTTP implementation").
//!
//! The order service depends on no other service crate. In the all-in-one process the gateway
//! hands it an adapter over the inventory service itself (`services/gateway/src/wiring.rs`);
//! a split deployment plugs an HTTP client in behind the same trait.

use crate::domain::sourcing::Candidate;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::Position;

/// One reservation the order asks inventory for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    /// Deterministic (`order:<uuid>#<n>`), so a retried placement reserves nothing twice.
    pub reservation_id: String,
    pub sku: String,
    pub location: String,
    pub qty: i64,
}

/// A reservation already made, to confirm, release or consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRef {
    pub reservation_id: String,
    pub sku: String,
    pub location: String,
}

/// Why inventory refused or could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryPortError {
    /// Some requests could not be reserved (index into the request, and why). Nothing stays
    /// reserved: the port is all or nothing.
    #[error("insufficient stock for {0:?}")]
    Refused(Vec<(usize, String)>),
    /// The inventory service is unreachable or failed; the outcome of a reserve is unknown
    /// (retry with the same reservation ids).
    #[error("inventory unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait InventoryPort: Send + Sync {
    /// Every active location with its capabilities, daily capacity (as
    /// `remaining_capacity`; the order service subtracts what it placed today) and ATP for
    /// `skus`, from the inventory view. A snapshot for sourcing: the reservation decides.
    async fn candidates(&self, skus: &[String]) -> Result<Vec<Candidate>, InventoryPortError>;

    /// Reserves every request or none, held until `expires_at` unless confirmed.
    async fn reserve(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        expires_at: Option<DateTime<Utc>>,
        metadata: Metadata,
    ) -> Result<Option<Position>, InventoryPortError>;

    /// Drops the expiry of holds (the order was recorded). Idempotent.
    async fn confirm(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError>;

    /// Takes `qty` of each reservation out of stock: the units left the building (shipped or
    /// handed over). Idempotency is the caller's: consume each shipment once (the order
    /// records which reservations a shipment used).
    async fn consume(
        &self,
        uses: &[(ReservationRef, i64)],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError>;

    /// Frees reservations (cancel, failed placement). Idempotent.
    async fn release(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError>;
}
