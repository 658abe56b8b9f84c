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

/// Every event the inventory service writes: stock per SKU × location, locations, daily
/// capacity claims and the WMS API's idempotency keys (the event catalogue,
/// `docs/event-catalogue.md`).
pub fn event_catalogue() -> Vec<ichigen_shared::catalogue::EventDoc> {
    use domain::capacity::{CapacityClaimed, CapacityReleased};
    use domain::location::{
        LocationActivated, LocationDeactivated, LocationDefined, LocationUpdated,
    };
    use ichigen_shared::catalogue::{of_stream, EventDoc};
    let mut docs = of_stream(
        "inventory",
        "inventory-<SKU>@<LOCATION>",
        domain::StockEvent::catalogue(),
    );
    docs.extend([
        EventDoc::of::<LocationDefined>("LocationDefined.v1", "inventory", "location-<CODE>"),
        EventDoc::of::<LocationUpdated>("LocationUpdated.v1", "inventory", "location-<CODE>"),
        EventDoc::of::<LocationDeactivated>(
            "LocationDeactivated.v1",
            "inventory",
            "location-<CODE>",
        ),
        EventDoc::of::<LocationActivated>("LocationActivated.v1", "inventory", "location-<CODE>"),
        EventDoc::of::<CapacityClaimed>(
            "CapacityClaimed.v1",
            "inventory",
            "capacity-<LOCATION>@<local date>",
        ),
        EventDoc::of::<CapacityReleased>(
            "CapacityReleased.v1",
            "inventory",
            "capacity-<LOCATION>@<local date>",
        ),
    ]);
    docs.extend(api::idempotency::WMS.catalogue("inventory"));
    docs
}
