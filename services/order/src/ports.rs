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

/// An open hold and its owner (`order:<id>` for a placement, `order:<id>~<k>` for a retry of
/// a cut-off one), reserved at `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHold {
    pub owner: String,
    pub reservation: ReservationRef,
    pub since: DateTime<Utc>,
}

/// One unit of a location's daily capacity on its local day (the date in the location's time
/// zone), claimed by a placement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CapacityClaim {
    pub location: String,
    pub day: chrono::NaiveDate,
}

/// An open capacity claim and its owner, claimed at `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub owner: String,
    pub claim: CapacityClaim,
    pub since: DateTime<Utc>,
}

/// What a placement's holds took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementHolds {
    pub position: Option<Position>,
    /// The claims this call made (not those the owner already held): what to give back when
    /// the placement fails after all.
    pub claimed: Vec<CapacityClaim>,
}

/// Why inventory refused or could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryPortError {
    /// Some requests could not be reserved (index into the request, and why). Nothing stays
    /// reserved: the port is all or nothing.
    #[error("insufficient stock for {0:?}")]
    Refused(Vec<(usize, String)>),
    /// These locations have taken as many orders as their daily capacity allows today.
    /// Nothing stays reserved or claimed.
    #[error("no capacity left today at {0:?}")]
    CapacityExhausted(Vec<String>),
    /// The inventory service is unreachable or failed; the outcome of a reserve is unknown
    /// (retry with the same reservation ids).
    #[error("inventory unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait InventoryPort: Send + Sync {
    /// Every active location with its capabilities, what is left of its daily capacity on its
    /// local day (`remaining_capacity`; `i64::MAX` for no limit) and ATP for `skus`, from the
    /// inventory's views. A snapshot for sourcing: the reservation and the claim decide.
    async fn candidates(&self, skus: &[String]) -> Result<Vec<Candidate>, InventoryPortError>;

    /// A placement's holds: reserves every request (ids `<owner>#<n>`, no expiry) and claims
    /// one unit of daily capacity per location for `owner`, all or nothing; a location whose
    /// day is full refuses with [`InventoryPortError::CapacityExhausted`]. Keyed by the owner,
    /// so a retry claims nothing twice. The default is an inventory without capacities.
    async fn reserve_placement(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        metadata: Metadata,
    ) -> Result<PlacementHolds, InventoryPortError> {
        let position = self.reserve(owner, requests, None, metadata).await?;
        Ok(PlacementHolds {
            position,
            claimed: Vec::new(),
        })
    }

    /// Gives back `owner`'s claims (a placement that failed, or was never recorded).
    /// Idempotent.
    async fn release_capacity(
        &self,
        _owner: &str,
        _claims: &[CapacityClaim],
        _metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        Ok(())
    }

    /// Open capacity claims of owners starting with `owner_prefix` (may lag a moment behind).
    async fn capacity_claims_of(
        &self,
        _owner_prefix: &str,
    ) -> Result<Vec<HeldClaim>, InventoryPortError> {
        Ok(Vec::new())
    }

    /// Reserves every request or none, held until `expires_at` unless confirmed.
    async fn reserve(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        expires_at: Option<DateTime<Utc>>,
        metadata: Metadata,
    ) -> Result<Option<Position>, InventoryPortError>;

    /// Open holds of owners starting with `owner_prefix`: what a cut-off placement attempt
    /// left held, or what placements that were never recorded still hold. May lag a moment
    /// behind the writes.
    async fn holds_of(&self, owner_prefix: &str) -> Result<Vec<OpenHold>, InventoryPortError>;

    /// Drops the expiry of holds (the order was recorded). Idempotent.
    async fn confirm(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError>;

    /// Brings each reservation's consumed total up to the given **cumulative** number of units
    /// (what the order has shipped or handed over from it so far): the units left the building.
    /// A total already reached consumes nothing, so a process replaying its events may call it
    /// again with the same totals; the order state gives them (`LineAllocation::fulfilled`).
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

    /// Records that a pick at `location` found `qty` units of `sku` fewer than the books said
    /// (a short pick): on hand goes down by what is not promised to other reservations (their
    /// own picks will find the rest missing and record it). `reference` names the short pick
    /// (fulfillment and line); recording the same reference again records nothing. Returns the
    /// units taken off on hand by this call.
    async fn record_short_pick(
        &self,
        sku: &str,
        location: &str,
        qty: i64,
        reference: &str,
        metadata: Metadata,
    ) -> Result<i64, InventoryPortError>;
}

/// How the units of a line reach the customer, as the fulfillment service groups its work
/// (with the order's id and the location, it names the fulfillment order of placed units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkKind {
    Ship,
    Pickup,
    ShipToStore { store: String },
}

impl WorkKind {
    /// How the fulfillment service groups the work of a line delivered this way.
    pub fn of(delivery: &crate::domain::sourcing::Delivery) -> Self {
        use crate::domain::sourcing::Delivery;
        match delivery {
            Delivery::Ship { .. } => WorkKind::Ship,
            Delivery::Pickup { .. } => WorkKind::Pickup,
            Delivery::ShipToStore { store, .. } => WorkKind::ShipToStore {
                store: store.clone(),
            },
        }
    }
}

/// Units of one order line the order asks the fulfillment service to stop: held at
/// `location` under `reservation_id`, for this kind of work (with the order's id, the
/// fulfillment service finds the fulfillment order holding them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitsToCancel {
    pub line_id: String,
    pub location: String,
    pub work: WorkKind,
    pub reservation_id: String,
    pub qty: i64,
}

/// The fulfillment order's answer for one [`UnitsToCancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Units it cancelled under the operation (now, or by an earlier call with the same one).
    pub cancelled: i64,
    /// Why it did not cancel the rest: its status (`SHIPPED`, `PICKED_UP`, `EXPIRED`, …), or
    /// `None` when nothing more of the line was left there.
    pub refused: Option<String>,
}

/// Why the fulfillment service could not be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FulfillmentPortError {
    /// The fulfillment service is unreachable or failed; the call may be retried as is.
    #[error("fulfillment unavailable: {0}")]
    Unavailable(String),
}

/// What the order service asks of the fulfillment service (the order crate depends on no other
/// service crate; the gateway implements this over the fulfillment service).
#[async_trait]
pub trait FulfillmentPort: Send + Sync {
    /// Cancels `units` on the fulfillment orders holding them, under `operation`: each
    /// fulfillment order decides (units already shipped or handed over are refused, see
    /// [`CancelOutcome::refused`]), so a cancellation and a shipment or handover never both
    /// succeed. One outcome per entry of `units`, in order. The same `operation` again cancels
    /// nothing more and answers the same.
    async fn cancel_units(
        &self,
        order_id: uuid::Uuid,
        units: &[UnitsToCancel],
        reason: &str,
        operation: &str,
        metadata: Metadata,
    ) -> Result<Vec<CancelOutcome>, FulfillmentPortError>;
}
