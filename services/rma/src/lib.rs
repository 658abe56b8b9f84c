//! Returns (RMA) and recommerce resale (streams `rma-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections` (the returns view),
//! `process` (the stock disposition of graded units), `api` (the WMS receipt route) and
//! `graphql` (its part of the schema). [`ports`] names what the service needs of the order,
//! inventory and catalog services (the gateway implements them in-process), and [`service`]
//! holds it all together, with the operations that span services (refunds, exchanges,
//! counter returns).

/// The stream category this service owns: only this service appends to `rma-…` streams.
pub const CATEGORY: &str = "rma";

pub mod api;
pub mod domain;
pub mod graphql;
pub mod handlers;
pub mod ports;
pub mod process;
pub mod projections;
pub mod service;

pub use service::RmaService;

/// Every event the returns service writes: returns, the return policy and the WMS returns
/// API's idempotency keys (the event catalogue, `docs/event-catalogue.md`).
pub fn event_catalogue() -> Vec<ichigen_shared::catalogue::EventDoc> {
    use ichigen_shared::catalogue::of_stream;
    let mut docs = of_stream("rma", "rma-<rmaId>", domain::rma::RmaEvent::catalogue());
    docs.extend(of_stream(
        "rma",
        "rma-policy",
        domain::policy::PolicyEvent::catalogue(),
    ));
    docs.extend(api::KEYS.catalogue("rma"));
    docs
}
