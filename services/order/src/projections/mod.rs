//! Read models of the order service.

pub mod catalog;
