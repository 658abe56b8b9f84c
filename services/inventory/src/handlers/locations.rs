//! Location commands (ADMIN: define, update, activate, deactivate) and the location check every
//! stock command passes.
//!
//! Locations change rarely and are read on every stock command, so the check reads the
//! inventory view (in memory) and falls back to the location's own stream when the view has not
//! seen the code yet (a process that just started, or a location defined by another process).
//! A location command returns only after the view has applied it, so in one process a stock
//! command that follows a deactivation is always refused.

use crate::domain::{
    decide_location, location_stream_name, InventoryError, Location, LocationCommand,
    LocationEvent, LocationState,
};
use crate::projections::view::InventoryView;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::projection::ProjectionHandle;
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::HandlerError;

/// Reloads after a concurrent write to the same location before giving up.
const MAX_CONFLICT_RETRIES: usize = 8;
/// How long a location command waits for the view to show it.
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// What an accepted location command did.
#[derive(Clone, Debug)]
pub struct LocationAccepted {
    pub events: Vec<LocationEvent>,
    /// The location after the command.
    pub location: Location,
    /// Store position reached; `None` when the command changed nothing (a retry).
    pub position: Option<Position>,
}

/// The location command side.
#[derive(Clone)]
pub struct LocationHandlers {
    store: DynEventStore,
    /// The view to wait for after a write, so that what follows in this process sees it.
    view: Option<ProjectionHandle>,
}

impl LocationHandlers {
    pub fn new(store: DynEventStore, view: Option<ProjectionHandle>) -> Self {
        LocationHandlers { store, view }
    }

    /// Loads the location's stream, decides, appends with the revision it loaded (reloading on
    /// a concurrent write), and waits until the inventory view shows the result.
    pub async fn execute(
        &self,
        command: LocationCommand,
        metadata: Metadata,
    ) -> Result<LocationAccepted, HandlerError> {
        let code = match &command {
            LocationCommand::Define(spec) => spec.code.clone(),
            LocationCommand::Update { code, .. }
            | LocationCommand::Deactivate { code }
            | LocationCommand::Activate { code } => code.clone(),
        };
        let stream = location_stream_name(&code);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (mut state, revision) = load_location(&self.store, &stream).await?;
            let events = decide_location(&state, &command)
                .map_err(|error| HandlerError::Refused { index: 0, error })?;
            for event in &events {
                state.apply(event);
            }
            let location = state
                .location
                .clone()
                .ok_or_else(|| HandlerError::Refused {
                    index: 0,
                    error: InventoryError::UnknownLocation { code: code.clone() },
                })?;
            if events.is_empty() {
                return Ok(LocationAccepted {
                    events,
                    location,
                    position: None,
                });
            }
            let mut new_events = Vec::with_capacity(events.len());
            for event in &events {
                new_events.push(NewEvent {
                    id: Uuid::new_v4(),
                    event_type: event.event_type().to_string(),
                    data: event.payload_json().map_err(|e| HandlerError::Unreadable {
                        stream: stream.clone(),
                        detail: e.to_string(),
                    })?,
                    metadata: metadata.clone(),
                });
            }
            match self
                .store
                .append(&stream, ExpectedRevision::after(revision), new_events)
                .await
            {
                Ok(result) => {
                    if let Some(view) = &self.view {
                        // The write is durable; a slow view only delays the answer.
                        if let Err(e) = view.wait_for(result.position, VIEW_WAIT).await {
                            tracing::warn!(error = %e, "inventory view is behind a location write");
                        }
                    }
                    return Ok(LocationAccepted {
                        events,
                        location,
                        position: Some(result.position),
                    });
                }
                Err(ichigen_shared::store::StoreError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(HandlerError::Contended(stream))
    }

    /// The location as its own stream has it (not the view).
    pub async fn load(&self, code: &str) -> Result<Option<Location>, HandlerError> {
        Ok(load_location(&self.store, &location_stream_name(code))
            .await?
            .0
            .location)
    }
}

async fn load_location(
    store: &DynEventStore,
    stream: &str,
) -> Result<(LocationState, Option<u64>), HandlerError> {
    super::fold_stream(store, stream, LocationEvent::decode, LocationState::apply).await
}

/// Answers "may stock move at this location?" for the stock handlers.
#[derive(Clone)]
pub struct LocationCheck {
    view: Arc<InventoryView>,
    store: DynEventStore,
}

impl LocationCheck {
    pub fn new(view: Arc<InventoryView>, store: DynEventStore) -> Self {
        LocationCheck { view, store }
    }

    /// `Ok(())` when the location is defined and active; otherwise the typed refusal.
    pub async fn require_active(&self, code: &str) -> Result<(), HandlerError> {
        let active = match self.view.location_active(code) {
            Some(active) => Some(active),
            None => load_location(&self.store, &location_stream_name(code))
                .await?
                .0
                .location
                .map(|l| l.active),
        };
        let refuse = |error| Err(HandlerError::Refused { index: 0, error });
        match active {
            None => refuse(InventoryError::UnknownLocation {
                code: code.to_string(),
            }),
            Some(false) => refuse(InventoryError::LocationInactive {
                code: code.to_string(),
            }),
            Some(true) => Ok(()),
        }
    }

    /// The other location a command names (`field`: `toLocation`, `fromLocation`): defined,
    /// and active when `active`; refusals name the field.
    pub async fn require_other(
        &self,
        field: &'static str,
        code: &str,
        active: bool,
    ) -> Result<(), HandlerError> {
        let state = match self.view.location_active(code) {
            Some(state) => Some(state),
            None => load_location(&self.store, &location_stream_name(code))
                .await?
                .0
                .location
                .map(|l| l.active),
        };
        let refuse = |error| Err(HandlerError::Refused { index: 0, error });
        match state {
            None => refuse(InventoryError::UnknownOtherLocation {
                field,
                code: code.to_string(),
            }),
            Some(false) if active => refuse(InventoryError::OtherLocationInactive {
                field,
                code: code.to_string(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Whether the location is known at all (active or not).
    pub async fn require_known(&self, code: &str) -> Result<(), HandlerError> {
        if self.view.location_active(code).is_some() {
            return Ok(());
        }
        match load_location(&self.store, &location_stream_name(code))
            .await?
            .0
            .location
        {
            Some(_) => Ok(()),
            None => Err(HandlerError::Refused {
                index: 0,
                error: InventoryError::UnknownLocation {
                    code: code.to_string(),
                },
            }),
        }
    }
}
