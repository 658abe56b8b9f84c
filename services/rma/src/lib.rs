//! Returns (RMA) and recommerce resale (streams `rma-…`).
//!
//! Every service crate reads the same way (see ARCHITECTURE.md): `domain` (pure decide/evolve),
//! `handlers` (load → decide → append, retry on conflict), `projections`, `process` (reactions
//! to other services' events), `api` (HTTP routes) and `graphql` (its part of the schema).
//! The modules arrive with the issue that gives the service its behaviour; until then the crate
//! is wired into the binary with its stream category (the gateway serves its status route).

/// The stream category this service owns: only this service appends to `rma-…` streams.
pub const CATEGORY: &str = "rma";

pub mod domain;
pub mod handlers;
