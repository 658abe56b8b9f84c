//! The pure inventory domain: decide(state, command, now) → events, and state.apply(event).
//!
//! No I/O here (ARCHITECTURE.md: domain code is pure). Handlers load a stream, fold it with
//! `apply`, call `decide`, and append with the revision they loaded; everything that must hold
//! — no oversell, no negative stock, typed refusals — is decided in this module so that it is
//! tested without a store.
//!
//! - [`stock`]: one aggregate per SKU × location (`inventory-<SKU>@<LOCATION>`): buckets,
//!   movements and reservations; [`decide_batch`] (all-or-nothing bundles) and
//!   [`decide_each`] (the hot-SKU writer's queue).
//! - [`location`]: DCs and stores (`location-<CODE>`).
//! - [`error`]: [`InventoryError`] with its API code and field.

pub mod capacity;
pub mod error;
pub mod location;
pub mod stock;

pub use error::InventoryError;
pub use location::{
    decide_location, location_stream_name, Address, Capability, Location, LocationCommand,
    LocationEvent, LocationKind, LocationPatch, LocationSpec, LocationState,
};
pub use stock::{
    decide, decide_batch, decide_each, stream_name, validate_sku, Reservation, ReservationStatus,
    ReturnOutcome, StockCommand, StockEvent, StockItem, StockLevels, WRITE_OFF_DISPOSITIONS,
};
