//! The event envelope: what every event carries besides its payload.
//!
//! Event types are versioned names (`StockReceived.v1`). A new shape gets a new version; the old
//! version stays decodable (upcast in the service's `domain::events`), because the store is
//! never rewritten.

use crate::store::Position;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

pub use crate::auth::Actor;

/// Who caused an event, why and when; recorded with every event in every backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Shared by every event that one outside request led to, across services.
    pub correlation_id: Uuid,
    /// The event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    /// When the fact happened in the business (may precede the append, e.g. a WMS scan).
    pub occurred_at: DateTime<Utc>,
}

impl Metadata {
    /// Metadata for a new request with a fresh correlation id.
    pub fn new(actor: Actor) -> Self {
        Metadata {
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            actor,
            occurred_at: Utc::now(),
        }
    }

    /// Metadata for an event caused by `cause`: same correlation, causation = the cause's id.
    pub fn caused_by(cause: &RecordedEvent, actor: Actor, occurred_at: DateTime<Utc>) -> Self {
        Metadata {
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.id),
            actor,
            occurred_at,
        }
    }
}

/// An event to append. The id is always set: random for fresh facts, derived (UUID v5) where a
/// command's retry must produce the same id so the store can deduplicate it.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: Uuid,
    /// Versioned type name, e.g. `StockReceived.v1`.
    pub event_type: String,
    /// JSON payload.
    pub data: Vec<u8>,
    pub metadata: Metadata,
}

impl NewEvent {
    /// Serializes a payload into a new event. JSON encoding of our own types cannot fail, but
    /// the error is still returned rather than unwrapped.
    pub fn json<T: Serialize>(
        id: Uuid,
        event_type: impl Into<String>,
        payload: &T,
        metadata: Metadata,
    ) -> Result<Self, serde_json::Error> {
        Ok(NewEvent {
            id,
            event_type: event_type.into(),
            data: serde_json::to_vec(payload)?,
            metadata,
        })
    }
}

/// An event as stored: with its stream, revision in that stream and global position.
///
/// Text and payload are reference counted so that fanning an event out to many subscribers does
/// not copy it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub stream: Arc<str>,
    /// 0-based index of the event in its stream.
    pub revision: u64,
    pub position: Position,
    pub event_type: Arc<str>,
    pub data: Arc<[u8]>,
    pub metadata: Metadata,
}

impl RecordedEvent {
    /// The stream's category: the part before the first `-` (`inventory` for
    /// `inventory-SKU1@S1`).
    pub fn category(&self) -> &str {
        crate::ids::category_of(&self.stream)
    }

    /// The unversioned event name (`StockReceived` for `StockReceived.v1`).
    pub fn event_name(&self) -> &str {
        split_event_type(&self.event_type).0
    }

    /// The version of the event type (1 for `StockReceived.v1`; 1 when unversioned).
    pub fn event_version(&self) -> u32 {
        split_event_type(&self.event_type).1
    }

    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

/// Splits `Name.vN` into its name and version.
pub fn split_event_type(event_type: &str) -> (&str, u32) {
    match event_type.rsplit_once(".v") {
        Some((name, v)) => match v.parse() {
            Ok(v) => (name, v),
            Err(_) => (event_type, 1),
        },
        None => (event_type, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_split_into_name_and_version() {
        assert_eq!(split_event_type("StockReceived.v2"), ("StockReceived", 2));
        assert_eq!(split_event_type("StockReceived"), ("StockReceived", 1));
        assert_eq!(split_event_type("Odd.vx"), ("Odd.vx", 1));
    }
}
