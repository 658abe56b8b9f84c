//! Order management: placing, sourcing, payment and cancellation of orders (streams `order-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections`, `process` (reactions
//! to other services' events), `api` (HTTP routes) and `graphql` (its part of the schema).

pub mod api;
pub mod catalog_service;
pub mod domain;
pub mod graphql;
pub mod handlers;
pub mod payment;
pub mod ports;
pub mod process;
pub mod projections;
pub mod service;

/// The stream category this service owns: only this service appends to `order-…` streams.
pub const CATEGORY: &str = "order";

pub use service::OrderService;

/// The catalog (`catalog-<SKU>`) is owned by the order service: orders price their lines from
/// it, never from what a client sends.
pub const CATALOG_CATEGORY: &str = "catalog";

/// Every event the order service writes: orders, catalog items and the PIM API's idempotency
/// keys (the event catalogue, `docs/event-catalogue.md`).
pub fn event_catalogue() -> Vec<ichigen_shared::catalogue::EventDoc> {
    use domain::catalog::{self, *};
    use ichigen_shared::catalogue::{of_stream, EventDoc};
    let mut docs = of_stream(
        "order",
        "order-<orderId>",
        domain::order::OrderEvent::catalogue(),
    );
    docs.extend([
        EventDoc::of::<CatalogItemDefined>(catalog::DEFINED, "order", "catalog-<SKU>"),
        EventDoc::of::<CatalogItemChanged>(catalog::CHANGED, "order", "catalog-<SKU>"),
        EventDoc::of::<CatalogItemDeactivated>(catalog::DEACTIVATED, "order", "catalog-<SKU>"),
        EventDoc::of::<CatalogItemActivated>(catalog::ACTIVATED, "order", "catalog-<SKU>"),
    ]);
    docs.extend(api::pim::PIM.catalogue("order"));
    docs
}
