//! Capacity claims: one writer per location × local day ([`crate::domain::capacity`]), like
//! stock items, so a busy location's claims queue at its day's writer and are decided and
//! appended together instead of storming on conflicts.

use super::writer::{StreamKind, Writers};
use super::HandlerError;
use crate::domain::capacity::{
    capacity_stream_name, decide_capacity, CapacityCommand, CapacityDay, CapacityEvent,
};
use crate::domain::InventoryError;
use chrono::NaiveDate;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::{DynEventStore, Position};
use std::sync::Arc;

/// Capacity day streams, as the writers see them.
pub struct Capacity;

impl StreamKind for Capacity {
    type State = CapacityDay;
    type Command = CapacityCommand;
    type Event = CapacityEvent;
    /// Units claimed after the job.
    type Summary = i64;

    fn decode(event_type: &str, data: &[u8]) -> Option<Result<CapacityEvent, serde_json::Error>> {
        CapacityEvent::decode(event_type, data)
    }
    fn apply(state: &mut CapacityDay, event: &CapacityEvent) {
        state.apply(event)
    }
    fn decide(
        state: &CapacityDay,
        command: &CapacityCommand,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CapacityEvent>, InventoryError> {
        decide_capacity(state, command)
    }
    fn event_type(event: &CapacityEvent) -> &'static str {
        event.event_type()
    }
    fn payload(event: &CapacityEvent) -> Result<Vec<u8>, serde_json::Error> {
        event.payload_json()
    }
    fn summary(state: &CapacityDay) -> i64 {
        state.used()
    }
}

/// What a claim did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// `false` when `key` already held a unit of that day (a retry): nothing to give back for
    /// this attempt if it fails.
    pub newly: bool,
    pub position: Option<Position>,
}

/// The capacity command side of the inventory service.
#[derive(Clone)]
pub struct CapacityHandlers {
    writers: Writers<Capacity>,
}

impl CapacityHandlers {
    pub fn new(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        CapacityHandlers {
            writers: Writers::new(store, clock),
        }
    }

    /// One unit of `location`'s capacity on its local `day` for `key`, if fewer than `limit`
    /// are claimed (else `CapacityExhausted`).
    pub async fn claim(
        &self,
        location: &str,
        day: NaiveDate,
        key: &str,
        limit: i64,
        metadata: Metadata,
    ) -> Result<Claimed, HandlerError> {
        let command = CapacityCommand::Claim {
            location: location.to_string(),
            day,
            key: key.to_string(),
            limit,
        };
        let decided = self
            .writers
            .submit(
                &capacity_stream_name(location, day),
                vec![command],
                metadata,
            )
            .await?;
        Ok(Claimed {
            newly: !decided.events.is_empty(),
            position: decided.position,
        })
    }

    /// Gives `key`'s unit of `location`'s `day` back (nothing when it holds none).
    pub async fn release(
        &self,
        location: &str,
        day: NaiveDate,
        key: &str,
        metadata: Metadata,
    ) -> Result<Option<Position>, HandlerError> {
        let command = CapacityCommand::Release {
            key: key.to_string(),
        };
        let decided = self
            .writers
            .submit(
                &capacity_stream_name(location, day),
                vec![command],
                metadata,
            )
            .await?;
        Ok(decided.position)
    }
}
