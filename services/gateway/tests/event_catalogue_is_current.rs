//! The committed `docs/event-catalogue.md` is what integrators read to know the events; this
//! test keeps it equal to the catalogue generated from the code (every event type, its owner,
//! version, fields and meaning), and checks that every event type the services write is in
//! it, so that it cannot drift.
//!
//! `make schema` (`ICHIGEN_UPDATE_SCHEMA=1 cargo test -p ichigen-gateway --test
//! event_catalogue_is_current`) rewrites the file instead of comparing.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

mod support;

use std::collections::BTreeSet;

const CATALOGUE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/event-catalogue.md");

#[test]
fn committed_event_catalogue_matches_the_code() {
    support::check_generated(CATALOGUE_FILE, &ichigen_gateway::catalogue::markdown());
}

#[test]
fn every_event_type_is_catalogued_once_with_a_meaning() {
    let events = ichigen_gateway::catalogue::events();
    let mut seen = BTreeSet::new();
    for e in &events {
        assert!(seen.insert(e.event_type), "{} twice", e.event_type);
        assert!(
            e.event_type
                .rsplit_once(".v")
                .is_some_and(|(_, v)| v.parse::<u32>().is_ok()),
            "{} is not a versioned type",
            e.event_type
        );
    }
    // Events each part of the product writes (one per aggregate and API is enough to catch a
    // whole list left out).
    for t in [
        "OrderPlaced.v1",
        "CatalogItemDefined.v1",
        "PimRequestCompleted.v1",
        "FulfillmentCreated.v1",
        "WmsFulfillmentRequestStarted.v1",
        "GoodsReceived.v1",
        "TransferInTransit.v1",
        "LocationDefined.v1",
        "CapacityClaimed.v1",
        "WmsRequestCompleted.v1",
        "ReturnRequested.v1",
        "ReturnUnitsReceived.v1",
        "ReturnReasonDefined.v1",
        "WmsReturnRequestCompleted.v1",
        "CheckpointSaved.v1",
        "TestClockAdvanced.v1",
    ] {
        assert!(seen.contains(t), "{t} is not in the catalogue");
    }
}

/// The hand-written guide (`docs/events.md`) names only event types that exist.
#[test]
fn the_guide_names_only_catalogued_event_types() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md"))
            .unwrap();
    let known: BTreeSet<&str> = ichigen_gateway::catalogue::events()
        .iter()
        .map(|e| e.event_type)
        .collect();
    let mut unknown = Vec::new();
    for word in guide.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        let word = word.trim_matches('.');
        if let Some((name, version)) = word.rsplit_once(".v") {
            if !name.is_empty()
                && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && version.parse::<u32>().is_ok()
                && !known.contains(word)
                // The guide's example of a future version a prefix filter also matches.
                && word != "OrderShipped.v2"
            {
                unknown.push(word.to_owned());
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/events.md names unknown event types: {unknown:?}"
    );
}
