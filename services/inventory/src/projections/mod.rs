//! Read models of the inventory service (projections fed by `ichigen_shared::projection::spawn`).
//!
//! - [`view`]: the inventory view — buckets per SKU × location, network and channel totals,
//!   nearest stores, per-location pages, and the change feed behind the GraphQL subscription.
//! - [`capacity`]: what each location claimed of its daily capacity per local day, and the
//!   open claims by owner.

pub mod capacity;
pub mod view;

pub use view::{Channel, ChannelAvailability, InventoryView, LocationAvailability, StockChange};
