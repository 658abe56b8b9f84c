//! Real-time multi-location inventory: stock ledger, reservations and the inventory view (streams `inventory-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections`, `process` (reactions
//! to other services' events), `api` (HTTP routes) and `graphql` (its part of the schema).
//!
//! Streams it owns: `inventory-<SKU>@<LOCATION>` ([`CATEGORY`]), `location-<CODE>`
//! ([`LOCATION_CATEGORY`]) and `wmsrequest-<id>` (the WMS API's idempotency records,
//! [`api::idempotency::CATEGORY`]). Start it with [`InventoryService::start`].

pub mod api;
pub mod domain;
pub mod graphql;
pub mod handlers;
pub mod process;
pub mod projections;
pub mod service;

pub use service::{Hold, InventoryService};

/// The stream category of stock (SKU × location): only this service appends to `inventory-…`.
pub const CATEGORY: &str = "inventory";

/// The inventory service also owns the locations (`location-<CODE>`): stock and sourcing are
/// decided against them, so they live with the service that decides.
pub const LOCATION_CATEGORY: &str = "location";
