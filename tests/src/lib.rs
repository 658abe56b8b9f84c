//! End-to-end test support: the event store conformance suite (run against every backend by
//! `tests/store_conformance.rs`), helpers that start a real server on 127.0.0.1, a throwaway
//! PostgreSQL server (`postgres`) and a tiny file system to fill (`tinyfs`).

pub mod conformance;
/// The throwaway PostgreSQL server (kept in the shared crate so the benchmarks use it too).
pub use ichigen_shared::test_postgres as postgres;
pub mod server;
pub mod tinyfs;
