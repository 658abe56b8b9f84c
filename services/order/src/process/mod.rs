//! Reactions to events (the order service's process managers).
//!
//! - [`fulfillment_reactions`]: fulfillment steps → the order (shipped, ready, picked up,
//!   delivered, expired, short-picked), and the order's own events → inventory (confirm,
//!   consume, release) and payment (capture, void, refund); a fulfillment order's cancellation
//!   of the order's units → the order's record of it.
//! - [`hold_sweep`]: frees what placements cut off before their record still hold.

pub mod fulfillment_reactions;
pub mod hold_sweep;
