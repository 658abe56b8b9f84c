//! End-to-end test support: the event store conformance suite (run against every backend by
//! `tests/store_conformance.rs`) and helpers that start a real server on 127.0.0.1.

pub mod conformance;
pub mod server;
