//! `Idempotency-Key` of the WMS API: the shared protocol of [`ichigen_shared::http::idempotency`]
//! (claim, replay, reuse, in-progress, takeover; read its module docs) with the WMS API's key
//! streams, `wmsrequest-<request id>` ([`CATEGORY`], owned by the inventory service), and its
//! event type names, which are stored and so never change.
//!
//! What is the WMS API's own is **recovery** (`super::wms::execute` with `recover`): it reads
//! each stock stream the request touches and reports a line whose causation id
//! ([`line_causation_id`]) is there as ACCEPTED, with the levels right after that line's events
//! (the same levels the first attempt computed) and the position of its last event (at or
//! before the first attempt's, and enough for read-your-writes). Every other line is executed
//! now. Lines of one stream still run in request order. Nothing acknowledged is applied twice;
//! nothing unacknowledged is lost.
//!
//! **Limits.** A line accepted without events (setting safety stock to its current value, a
//! compare-and-set to the same value) leaves nothing to recognise, so recovery decides it again
//! — harmless, as it changed nothing. Recovery reads whole stock streams: slow on a stream
//! with a long history, but it only runs after a crash or a store failure.

use ichigen_shared::http::idempotency::KeyStreams;
use uuid::Uuid;

pub use ichigen_shared::http::idempotency::{
    fingerprint, is_in_flight, request_id, Execution, KeyStreamError, KeyedRequest,
    RequestStarted as WmsRequestStarted, TAKEOVER_AFTER,
};

/// The stream category of WMS idempotency keys (owned by the inventory service).
pub const CATEGORY: &str = "wmsrequest";
pub const STARTED: &str = "WmsRequestStarted.v1";
pub const RESPONSE_PART: &str = "WmsRequestResponsePart.v1";
pub const COMPLETED: &str = "WmsRequestCompleted.v1";

/// The WMS API's key streams.
pub static WMS: KeyStreams = KeyStreams {
    category: CATEGORY,
    started: STARTED,
    response_part: RESPONSE_PART,
    completed: COMPLETED,
    api: "WMS",
    stream_pattern: "wmsrequest-<key>",
};

/// The key's stream.
pub fn request_stream(request: Uuid) -> String {
    WMS.request_stream(request)
}

/// The causation id every event of line `index` of `request` carries.
pub fn line_causation_id(request: Uuid, index: usize) -> Uuid {
    WMS.line_causation_id(request, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wms_keys_keep_their_stored_names() {
        let r = request_id("wms-1", "k");
        assert!(request_stream(r).starts_with("wmsrequest-"));
        assert_eq!(WMS.started, "WmsRequestStarted.v1");
        assert_eq!(WMS.completed, "WmsRequestCompleted.v1");
    }
}
