//! The whole event catalogue (`docs/event-catalogue.md`): every service's events, the process
//! managers' checkpoints and the gateway's test clock, rendered by
//! [`ichigen_shared::catalogue::render`]. `make schema` writes it; a test compares it.

use ichigen_shared::catalogue::{self, EventDoc};

/// Every event type the product writes.
pub fn events() -> Vec<EventDoc> {
    let mut all = ichigen_order::event_catalogue();
    all.extend(ichigen_inventory::event_catalogue());
    all.extend(ichigen_fulfillment::event_catalogue());
    all.extend(ichigen_rma::event_catalogue());
    all.extend(ichigen_shared::checkpoint::catalogue());
    all.push(EventDoc::of::<crate::test_clock::TestClockAdvanced>(
        crate::test_clock::ADVANCED,
        "the gateway (test clock)",
        crate::test_clock::STREAM,
    ));
    all
}

/// The catalogue as Markdown.
pub fn markdown() -> String {
    catalogue::render(&events())
}
