//! Command handlers of the order service.

pub mod catalog;
pub mod order;
