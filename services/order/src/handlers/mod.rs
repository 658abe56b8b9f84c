//! Command handlers of the order service.

pub mod cancel;
pub mod catalog;
pub mod order;
