//! The pure order domain: decide(state, command, now) -> events and state.apply(event).
//!
//! - [`catalog`]: SKUs as PIM sends them (title, price, attributes, active), stream `catalog-<SKU>`.
//! - [`order`]: the order aggregate, stream `order-<uuid>`.
//! - [`sourcing`]: which location(s) serve each line, and why (pure, deterministic).

pub mod catalog;
pub mod order;
pub mod sourcing;
