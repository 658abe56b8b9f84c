//! Reactions to other services' events.
//!
//! - [`order_intake`]: `OrderPlaced` → one fulfillment order per location and kind of work;
//!   `LineReassigned` → one more at the new location.
//! - [`pickup_expiry`]: pickups not collected within the store's hold days expire.

pub mod order_intake;
pub mod pickup_expiry;
