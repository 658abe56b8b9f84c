//! Read models of the order service.

pub mod catalog;
pub mod order_status;
