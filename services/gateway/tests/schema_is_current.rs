//! The committed `schema.graphql` is the API contract clients generate code from and reviewers
//! read; this test keeps it equal to what the gateway serves, so that no schema change slips
//! through unseen.
//!
//! `make schema` (`ICHIGEN_UPDATE_SCHEMA=1 cargo test -p ichigen-gateway --test
//! schema_is_current`) rewrites the file instead of comparing.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

mod support;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql");

#[test]
fn committed_schema_matches_the_served_one() {
    support::check_generated(SCHEMA_FILE, &ichigen_gateway::graphql::sdl());
}
