//! Command handlers for stock: load → decide → append, through one writer per stream.
//!
//! A flash sale puts thousands of concurrent reservations on one SKU × location. Optimistic
//! retries would storm there (every loser reloads and tries again), so every command for a
//! stream goes to that stream's single in-process writer task. The writer keeps the folded state
//! in memory, takes whatever commands are queued, decides them in order against the running
//! state (a job's commands stand or fall together, as [`crate::domain::decide_batch`] decides
//! them), and appends all their events in one append ([`writer`]: the same writers serve the
//! capacity days, [`capacity`]). It still appends with the exact revision it knows,
//! so another process writing the same stream (one service per process on KurrentDB) causes a
//! `WrongExpectedVersion`, a reload and a fresh decision — never a lost update or an oversell.
//!
//! A writer with nothing to do for [`IDLE`] stops, so memory follows the hot set of streams.

pub mod capacity;
pub mod locations;
pub mod placement;
pub mod writer;

use crate::domain::{decide, InventoryError, StockCommand, StockEvent, StockItem, StockLevels};
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::{DynEventStore, Position, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// How long a stream writer waits for work before it stops.
pub const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The command was refused; `index` is the refused command's place in its job.
    #[error("command {index} refused: {error}")]
    Refused { index: usize, error: InventoryError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stream {stream} holds an event this build cannot read: {detail}")]
    Unreadable { stream: String, detail: String },
    #[error("stream {0} kept changing under concurrent writers; try again")]
    Contended(String),
    #[error("the inventory service is shutting down")]
    Closed,
}

/// What an accepted job did.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub events: Vec<StockEvent>,
    /// Store position reached (wait for it to read your write in the inventory view).
    pub position: Option<Position>,
    /// The stock item's buckets after the job.
    pub levels: StockLevels,
}

/// Stock item streams, as the writers see them.
pub struct Stock;

impl writer::StreamKind for Stock {
    type State = StockItem;
    type Command = StockCommand;
    type Event = StockEvent;
    type Summary = StockLevels;

    fn decode(event_type: &str, data: &[u8]) -> Option<Result<StockEvent, serde_json::Error>> {
        StockEvent::decode(event_type, data)
    }
    fn apply(state: &mut StockItem, event: &StockEvent) {
        state.apply(event)
    }
    fn decide(
        state: &StockItem,
        command: &StockCommand,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<StockEvent>, InventoryError> {
        decide(state, command, now)
    }
    fn event_type(event: &StockEvent) -> &'static str {
        event.event_type()
    }
    fn payload(event: &StockEvent) -> Result<Vec<u8>, serde_json::Error> {
        event.payload_json()
    }
    fn summary(state: &StockItem) -> StockLevels {
        StockLevels::of(state)
    }
}

/// The stock command side of the inventory service.
#[derive(Clone)]
pub struct StockHandlers {
    store: DynEventStore,
    writers: writer::Writers<Stock>,
    /// Refuses movements at unknown or inactive locations; `None` only in benches and tests of
    /// the writer itself.
    locations: Option<locations::LocationCheck>,
}

impl StockHandlers {
    pub fn new(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        StockHandlers {
            writers: writer::Writers::new(store.clone(), clock),
            store,
            locations: None,
        }
    }

    /// Checks every command's location first: defined, and active for movements and new
    /// reservations (closing out reservations stays possible at an inactive location).
    pub fn with_location_check(mut self, check: locations::LocationCheck) -> Self {
        self.locations = Some(check);
        self
    }

    /// Refuses bad identifiers and unusable locations before anything is queued.
    async fn check_target(
        &self,
        sku: &str,
        location: &str,
        commands: &[StockCommand],
    ) -> Result<(), HandlerError> {
        let refuse = |error| HandlerError::Refused { index: 0, error };
        crate::domain::validate_sku(sku).map_err(refuse)?;
        crate::domain::location::validate_code(location).map_err(|e| match e {
            InventoryError::InvalidLocation { reason, .. } => {
                refuse(InventoryError::InvalidInput {
                    field: "location",
                    reason,
                })
            }
            other => refuse(other),
        })?;
        if commands.is_empty() {
            return Err(refuse(InventoryError::InvalidInput {
                field: "commands",
                reason: "must not be empty",
            }));
        }
        for (index, command) in commands.iter().enumerate() {
            command
                .validate()
                .map_err(|error| HandlerError::Refused { index, error })?;
            if let Some((field, other)) = command.other_location() {
                if other == location {
                    return Err(HandlerError::Refused {
                        index,
                        error: InventoryError::UnknownOtherLocation {
                            field,
                            code: other.to_string(),
                        },
                    });
                }
            }
        }
        let Some(check) = &self.locations else {
            return Ok(());
        };
        match commands.iter().position(needs_active_location) {
            Some(index) => check
                .require_active(location)
                .await
                .map_err(|e| e.at_index(index))?,
            None => check.require_known(location).await?,
        }
        for (index, command) in commands.iter().enumerate() {
            if let Some((field, other)) = command.other_location() {
                // A transfer ships only to a location that takes stock now; the source of a
                // shipment or an announcement need only be defined.
                let active = matches!(command, StockCommand::TransferOut { .. });
                check
                    .require_other(field, other, active)
                    .await
                    .map_err(|e| e.at_index(index))?;
            }
        }
        Ok(())
    }

    /// The checks of [`Self::execute`] that change nothing: identifiers, the commands' own
    /// input ([`StockCommand::validate`]) and the locations they name. The WMS API runs them
    /// before it claims an idempotency key, so that a request refused for its input records
    /// nothing at all.
    pub async fn precheck(
        &self,
        sku: &str,
        location: &str,
        commands: &[StockCommand],
    ) -> Result<(), HandlerError> {
        self.check_target(sku, location, commands).await
    }

    /// Executes `commands` on one SKU × location as one unit (all accepted or none).
    ///
    /// A transfer shipped by the job is recorded in transit at its destination right away
    /// (so the answer's caller sees it as incoming there); if that second append fails, the
    /// transfer process ([`crate::process::transfers`]) records it from the shipment event.
    pub async fn execute(
        &self,
        sku: &str,
        location: &str,
        commands: Vec<StockCommand>,
        metadata: Metadata,
    ) -> Result<Accepted, HandlerError> {
        let accepted = self
            .execute_one(sku, location, commands, metadata.clone())
            .await?;
        for event in &accepted.events {
            if let StockEvent::TransferShipped(shipped) = event {
                let command = in_transit(location, shipped);
                let recorded = self
                    .execute_one(sku, &shipped.to_location, vec![command], metadata.clone())
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(sku, from = location, to = %shipped.to_location,
                        transfer = %shipped.transfer_id, error = %e,
                        "transfer not yet recorded in transit; the transfer process will");
                }
            }
        }
        Ok(accepted)
    }

    /// One job on one stream, without the follow-up of a shipped transfer.
    async fn execute_one(
        &self,
        sku: &str,
        location: &str,
        commands: Vec<StockCommand>,
        metadata: Metadata,
    ) -> Result<Accepted, HandlerError> {
        self.check_target(sku, location, &commands).await?;
        let stream = crate::domain::stream_name(sku, location);
        let decided = self.writers.submit(&stream, commands, metadata).await?;
        Ok(Accepted {
            events: decided.events,
            position: decided.position,
            levels: decided.summary,
        })
    }

    /// Reads a stock item's current state from the store (no writer involved).
    pub async fn load(&self, sku: &str, location: &str) -> Result<StockItem, HandlerError> {
        let stream = crate::domain::stream_name(sku, location);
        Ok(load(&self.store, &stream).await?.0)
    }
}

/// The destination's side of a shipment from `from`.
pub fn in_transit(from: &str, shipped: &crate::domain::stock::TransferShipped) -> StockCommand {
    StockCommand::RecordInTransit {
        qty: shipped.qty,
        transfer_id: shipped.transfer_id.clone(),
        from_location: from.to_string(),
    }
}

/// Commands that put stock into play at a location: refused where the location is inactive.
/// Releasing, confirming, consuming and expiring reservations, and shipping stock out on a
/// transfer, stay possible so that a closing store can be emptied; a transfer shipped before a
/// store closed is still recorded in transit there; writing off a returned unit adds nothing
/// to sell, so a unit that reached a closing store can still be recorded.
fn needs_active_location(command: &StockCommand) -> bool {
    !matches!(
        command,
        StockCommand::Release { .. }
            | StockCommand::Confirm { .. }
            | StockCommand::Consume { .. }
            | StockCommand::ConsumeUpTo { .. }
            | StockCommand::ExpireReservations
            | StockCommand::TransferOut { .. }
            | StockCommand::RecordInTransit { .. }
            | StockCommand::WriteOffReturn { .. }
    )
}

impl HandlerError {
    /// The same refusal, blamed on command `index` of the job.
    fn at_index(self, index: usize) -> Self {
        match self {
            HandlerError::Refused { error, .. } => HandlerError::Refused { index, error },
            other => other,
        }
    }

    /// The domain refusal, when this is one.
    pub fn refusal(&self) -> Option<&InventoryError> {
        match self {
            HandlerError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Loads and folds a stock stream: the state and the revision it reflects.
async fn load(
    store: &DynEventStore,
    stream: &str,
) -> Result<(StockItem, Option<u64>), HandlerError> {
    fold_stream(store, stream, StockEvent::decode, StockItem::apply).await
}

/// [`fold_stream`] with the state's own `apply` signature (what the writers use).
pub(crate) async fn load_stream<S: Default, E>(
    store: &DynEventStore,
    stream: &str,
    decode: ichigen_shared::aggregate::Decoder<E>,
    apply: fn(&mut S, &E),
) -> Result<(S, Option<u64>), HandlerError> {
    fold_stream(store, stream, decode, apply).await
}

/// Reads a whole stream and folds it ([`ichigen_shared::aggregate::fold_stream`]), with the
/// handlers' error.
pub(crate) async fn fold_stream<S: Default, E>(
    store: &DynEventStore,
    stream: &str,
    decode: ichigen_shared::aggregate::Decoder<E>,
    apply: fn(&mut S, &E),
) -> Result<(S, Option<u64>), HandlerError> {
    Ok(ichigen_shared::aggregate::fold_stream(store, stream, decode, apply).await?)
}

impl From<FoldError> for HandlerError {
    fn from(e: FoldError) -> Self {
        match e {
            FoldError::Store(e) => HandlerError::Store(e),
            FoldError::Unreadable { stream, detail } => HandlerError::Unreadable { stream, detail },
        }
    }
}

/// One line of a multi-line reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveLine {
    pub sku: String,
    pub location: String,
    pub qty: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("reservation refused: {}", .refused.iter().map(|(i, e)| format!("line {i}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct ReserveLinesError {
    /// The refused lines (index into the request) and why.
    pub refused: Vec<(usize, HandlerError)>,
}

impl StockHandlers {
    /// Reserves several lines across locations, all or nothing from the caller's view: lines on
    /// the same SKU × location are decided together in one job; if any stream refuses, the
    /// reservations already made are released before the error returns. Reservation ids are
    /// `<owner>#<line index>`.
    pub async fn reserve_lines(
        &self,
        owner: &str,
        lines: &[ReserveLine],
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        metadata: Metadata,
    ) -> Result<Vec<Accepted>, ReserveLinesError> {
        let mut groups: Vec<((String, String), Vec<usize>)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let key = (line.sku.clone(), line.location.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let attempts = groups.iter().map(|((sku, location), idx)| {
            let commands = idx
                .iter()
                .map(|i| StockCommand::Reserve {
                    reservation_id: format!("{owner}#{i}"),
                    owner: owner.to_string(),
                    qty: lines[*i].qty,
                    expires_at,
                })
                .collect();
            self.execute(sku, location, commands, metadata.clone())
        });
        let results = futures::future::join_all(attempts).await;
        if results.iter().all(Result::is_ok) {
            return Ok(results.into_iter().flatten().collect());
        }
        let mut refused = Vec::new();
        let mut undo = Vec::new();
        for (((sku, location), idx), result) in groups.iter().zip(results) {
            match result {
                Ok(_) => undo.push((sku, location, idx)),
                Err(HandlerError::Refused { index, error }) => refused.push((
                    idx.get(index).copied().unwrap_or(idx[0]),
                    HandlerError::Refused {
                        index: idx.get(index).copied().unwrap_or(idx[0]),
                        error,
                    },
                )),
                Err(other) => refused.push((idx[0], other)),
            }
        }
        for (sku, location, idx) in undo {
            let release = idx
                .iter()
                .map(|i| StockCommand::Release {
                    reservation_id: format!("{owner}#{i}"),
                })
                .collect();
            if let Err(e) = self.execute(sku, location, release, metadata.clone()).await {
                // Left for the expiry process: the hold has an expiry, or staff release it.
                tracing::error!(%sku, %location, error = %e, "could not undo a partial reservation");
            }
        }
        refused.sort_by_key(|(i, _)| *i);
        Err(ReserveLinesError { refused })
    }
}
