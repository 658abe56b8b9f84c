//! Read models of the fulfillment service.
//!
//! - [`queues`]: every fulfillment order's current state, and the work queues the store app and
//!   the WMS read (pickup counter, ship-from-store tasks, DC tasks).

pub mod queues;
