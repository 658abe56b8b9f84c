//! Fulfillment: pick, pack, ship, BOPIS pickup and ship-from-store (streams `fulfillment-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections`, `process` (reactions
//! to other services' events), `api` (HTTP routes) and `graphql` (its part of the schema).
//! Here: the pure [`domain`] (the fulfillment order state machine), its [`handlers`], the
//! [`process::order_intake`] that creates fulfillment orders from placed orders, the pickup
//! expiry, the [`projections::queues`] staff and the WMS work from, the [`service`] that wires
//! them once per process, the WMS fulfillment [`api`] and the store app's [`graphql`] part, and
//! [`cancellation`]: order cancellations decided by the fulfillment orders holding the units.

pub mod api;
pub mod cancellation;
pub mod domain;
pub mod graphql;
pub mod handlers;
pub mod process;
pub mod projections;
pub mod service;

pub use service::FulfillmentService;

/// The stream category this service owns: only this service appends to `fulfillment-…` streams.
pub const CATEGORY: &str = "fulfillment";

/// Every event the fulfillment service writes: fulfillment orders and the WMS fulfillment
/// API's idempotency keys (the event catalogue, `docs/event-catalogue.md`).
pub fn event_catalogue() -> Vec<ichigen_shared::catalogue::EventDoc> {
    let mut docs = ichigen_shared::catalogue::of_stream(
        "fulfillment",
        "fulfillment-<fulfillmentId>",
        domain::FulfillmentEvent::catalogue(),
    );
    docs.extend(api::wms::KEYS.catalogue("fulfillment"));
    docs
}
