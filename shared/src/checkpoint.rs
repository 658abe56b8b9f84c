//! Stored checkpoints for process managers (design.md: "subscriptions with a stored checkpoint
//! and idempotent commands").
//!
//! A checkpoint is the last event of a stream `checkpoint-<process>`: one small event per
//! save. A process saves after it handled events (at most every [`Checkpoint::EVERY`]), and
//! resumes after the saved position on start. Because the process's commands are idempotent,
//! events between the last save and a crash are simply handled again.

use crate::envelope::{Actor, Metadata, NewEvent};
use crate::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EVENT_TYPE: &str = "CheckpointSaved.v1";

#[derive(Serialize, Deserialize)]
struct Saved {
    position: String,
}

/// The checkpoint of one process.
pub struct Checkpoint {
    store: DynEventStore,
    stream: String,
    last_saved: Option<(Position, Instant)>,
}

impl Checkpoint {
    /// How often a busy process saves at most.
    pub const EVERY: Duration = Duration::from_secs(1);

    pub fn new(store: DynEventStore, process: &str) -> Self {
        Checkpoint {
            store,
            stream: format!("checkpoint-{process}"),
            last_saved: None,
        }
    }

    /// The saved position (`None`: start from the beginning).
    pub async fn load(&mut self) -> Result<Option<Position>, StoreError> {
        let events = crate::store::read_whole_stream(self.store.as_ref(), &self.stream).await?;
        let position = events
            .last()
            .and_then(|e| serde_json::from_slice::<Saved>(&e.data).ok())
            .and_then(|s| s.position.parse().ok());
        self.last_saved = position.map(|p| (p, Instant::now()));
        Ok(position)
    }

    /// Saves `position` unless it was saved less than [`Self::EVERY`] ago (pass `force` when
    /// idle, so that the last events are not handled again after a restart).
    pub async fn save(&mut self, position: Position, force: bool) -> Result<(), StoreError> {
        if let Some((saved, at)) = self.last_saved {
            if saved >= position || (!force && at.elapsed() < Self::EVERY) {
                return Ok(());
            }
        }
        let event = NewEvent::json(
            Uuid::new_v4(),
            EVENT_TYPE,
            &Saved {
                position: position.to_string(),
            },
            Metadata::new(Actor::system("checkpoint")),
        )
        .map_err(|e| StoreError::Io(e.to_string()))?;
        self.store
            .append(&self.stream, ExpectedRevision::Any, vec![event])
            .await?;
        self.last_saved = Some((position, Instant::now()));
        Ok(())
    }
}
