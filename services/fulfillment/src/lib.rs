//! Fulfillment: pick, pack, ship, BOPIS pickup and ship-from-store (streams `fulfillment-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections`, `process` (reactions
//! to other services' events), `api` (HTTP routes) and `graphql` (its part of the schema).
//! So far: the pure [`domain`] (the fulfillment order state machine), its [`handlers`] and the
//! [`process::order_intake`] that creates fulfillment orders from placed orders.

pub mod domain;
pub mod handlers;
pub mod process;
pub mod projections;

/// The stream category this service owns: only this service appends to `fulfillment-…` streams.
pub const CATEGORY: &str = "fulfillment";
