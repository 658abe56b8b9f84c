//! Read models of the inventory service (projections fed by `ichigen_shared::projection::spawn`).
//!
//! - [`view`]: the inventory view — buckets per SKU × location, network and channel totals,
//!   nearest stores, per-location pages, and the change feed behind the GraphQL subscription.

pub mod view;

pub use view::{Channel, ChannelAvailability, InventoryView, LocationAvailability, StockChange};
