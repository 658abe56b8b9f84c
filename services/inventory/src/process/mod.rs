//! Reactions of the inventory service to events (its own or other services'), started by
//! [`crate::InventoryService::start`] and stopped by its `shutdown`.
//!
//! - [`expiry`]: holds with an expiry that ran out are released.
//! - [`transfers`]: a shipped transfer is recorded in transit at its destination.

pub mod expiry;
pub mod transfers;
