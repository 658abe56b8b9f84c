//! Reactions to other services' events.
//!
//! - [`order_intake`]: `OrderPlaced` → one fulfillment order per location and kind of work.

pub mod order_intake;
