//! Reactions to events (the order service's process managers).
//!
//! - [`fulfillment_reactions`]: fulfillment steps → the order (shipped, ready, picked up,
//!   delivered, expired, short-picked), and the order's own events → inventory (confirm,
//!   consume, release), payment (capture, void, refund) and fulfillment (cancel units).

pub mod fulfillment_reactions;
