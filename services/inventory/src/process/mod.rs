//! Reactions of the inventory service to events (its own or other services').

pub mod expiry;
