//! The committed `schema.graphql` is the API contract clients generate code from and reviewers
//! read; this test keeps it equal to what the gateway serves, so that no schema change slips
//! through unseen.
//!
//! `make schema` (`ICHIGEN_UPDATE_SCHEMA=1 cargo test -p ichigen-gateway --test
//! schema_is_current`) rewrites the file instead of comparing.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

use std::path::Path;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql");

#[test]
fn committed_schema_matches_the_served_one() {
    let current = ichigen_gateway::graphql::sdl();
    let path = Path::new(SCHEMA_FILE);
    if std::env::var("ICHIGEN_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, &current).expect("write schema.graphql");
        return;
    }
    let Ok(committed) = std::fs::read_to_string(path) else {
        panic!("{SCHEMA_FILE} is missing: run `make schema` and commit the result");
    };
    if committed != current {
        let first_difference = committed
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(current.lines().count()));
        panic!(
            "schema.graphql is out of date (first difference at line {}): run `make schema` \
             and commit the result",
            first_difference + 1
        );
    }
}
