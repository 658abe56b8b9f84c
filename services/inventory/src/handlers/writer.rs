//! One in-process writer task per stream, for every kind of stream the inventory decides on
//! (stock items, capacity days): see the module documentation of [`super`] for why.
//!
//! A writer keeps the folded state in memory, takes whatever jobs are queued, decides them in
//! order against the running state (a job's commands stand or fall together), and appends all
//! their events in one append with the exact revision it knows; a `WrongExpectedVersion`
//! (another process wrote the stream) reloads and decides again. A writer with nothing to do
//! for [`super::IDLE`] stops.

use super::{load_stream, HandlerError, IDLE};
use crate::domain::InventoryError;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most jobs one append carries.
const MAX_JOBS_PER_APPEND: usize = 1024;
/// Reloads after a conflict with another process before giving up.
const MAX_CONFLICT_RETRIES: usize = 8;

/// A kind of stream: its state, commands, events, and what a job answers with.
pub trait StreamKind: Send + Sync + 'static {
    type State: Default + Clone + Send + 'static;
    type Command: Send + 'static;
    type Event: Clone + Send + 'static;
    /// What an accepted job reports of the state after it (stock levels, …).
    type Summary: Send + 'static;

    fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self::Event, serde_json::Error>>;
    fn apply(state: &mut Self::State, event: &Self::Event);
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Self::Event>, InventoryError>;
    fn event_type(event: &Self::Event) -> &'static str;
    fn payload(event: &Self::Event) -> Result<Vec<u8>, serde_json::Error>;
    fn summary(state: &Self::State) -> Self::Summary;
}

/// What an accepted job did.
pub struct Decided<K: StreamKind> {
    pub events: Vec<K::Event>,
    /// `None` when the job changed nothing (a retry).
    pub position: Option<Position>,
    pub summary: K::Summary,
}

struct Job<K: StreamKind> {
    commands: Vec<K::Command>,
    metadata: Metadata,
    reply: oneshot::Sender<Result<Decided<K>, HandlerError>>,
}

/// The writers of one kind of stream, started on demand.
pub struct Writers<K: StreamKind> {
    store: DynEventStore,
    clock: Arc<dyn Clock>,
    writers: Arc<Mutex<HashMap<String, mpsc::Sender<Job<K>>>>>,
}

impl<K: StreamKind> Clone for Writers<K> {
    fn clone(&self) -> Self {
        Writers {
            store: self.store.clone(),
            clock: self.clock.clone(),
            writers: self.writers.clone(),
        }
    }
}

impl<K: StreamKind> Writers<K> {
    pub fn new(store: DynEventStore, clock: Arc<dyn Clock>) -> Self {
        Writers {
            store,
            clock,
            writers: Arc::default(),
        }
    }

    pub fn store(&self) -> &DynEventStore {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Queues `commands` as one job on `stream`'s writer and waits for its answer.
    pub async fn submit(
        &self,
        stream: &str,
        commands: Vec<K::Command>,
        metadata: Metadata,
    ) -> Result<Decided<K>, HandlerError> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            commands,
            metadata,
            reply,
        };
        // A writer that just stopped for idleness refuses the send: start a new one.
        for _ in 0..2 {
            let sender = self.writer_for(stream);
            match sender.send(job).await {
                Ok(()) => return answer.await.map_err(|_| HandlerError::Closed)?,
                Err(mpsc::error::SendError(returned)) => {
                    job = returned;
                    self.forget_writer(stream, &sender);
                }
            }
        }
        Err(HandlerError::Closed)
    }

    fn writer_for(&self, stream: &str) -> mpsc::Sender<Job<K>> {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = writers.get(stream) {
            if !sender.is_closed() {
                return sender.clone();
            }
        }
        let (sender, rx) = mpsc::channel(4096);
        writers.insert(stream.to_string(), sender.clone());
        let writer = StreamWriter::<K> {
            store: self.store.clone(),
            clock: self.clock.clone(),
            stream: stream.to_string(),
            loaded: None,
        };
        tokio::spawn(writer.run(rx));
        sender
    }

    fn forget_writer(&self, stream: &str, dead: &mpsc::Sender<Job<K>>) {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if writers.get(stream).is_some_and(|s| s.same_channel(dead)) {
            writers.remove(stream);
        }
    }
}

struct StreamWriter<K: StreamKind> {
    store: DynEventStore,
    clock: Arc<dyn Clock>,
    stream: String,
    /// The folded state and the revision it reflects, once loaded.
    loaded: Option<(K::State, Option<u64>)>,
}

type Decision<K> =
    Result<(Vec<<K as StreamKind>::Event>, <K as StreamKind>::Summary), (usize, InventoryError)>;

impl<K: StreamKind> StreamWriter<K> {
    async fn run(mut self, mut rx: mpsc::Receiver<Job<K>>) {
        loop {
            let first = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(job)) => job,
                // Idle or every handle dropped: stop. Jobs sent after this see a closed channel.
                _ => return,
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_JOBS_PER_APPEND {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.handle(jobs).await;
        }
    }

    /// Decides every job against the running state and appends the accepted ones together.
    async fn handle(&mut self, jobs: Vec<Job<K>>) {
        let mut attempts = 0;
        loop {
            let (mut state, revision) = match self.loaded.take() {
                Some(loaded) => loaded,
                None => match load_stream(&self.store, &self.stream, K::decode, K::apply).await {
                    Ok(loaded) => loaded,
                    Err(e) => return fail_all(jobs, e),
                },
            };
            let now = self.clock.now();
            let mut decisions: Vec<Decision<K>> = Vec::with_capacity(jobs.len());
            let mut new_events = Vec::new();
            // Decided in place: if the append fails the state is dropped and reloaded, so no
            // copy of a hot stream's state (thousands of reservations) is made per batch.
            for job in &jobs {
                let decided = match job.commands.as_slice() {
                    [single] => K::decide(&state, single, now).map_err(|e| (0, e)),
                    // A bundle is decided on a scratch copy: all or nothing.
                    many => decide_bundle::<K>(&state, many, now),
                };
                match decided {
                    Ok(events) => {
                        for event in &events {
                            K::apply(&mut state, event);
                            match K::payload(event) {
                                Ok(data) => new_events.push(NewEvent {
                                    id: Uuid::new_v4(),
                                    event_type: K::event_type(event).to_string(),
                                    data,
                                    metadata: job.metadata.clone(),
                                }),
                                Err(e) => {
                                    return fail_all(
                                        jobs,
                                        HandlerError::Unreadable {
                                            stream: self.stream.clone(),
                                            detail: e.to_string(),
                                        },
                                    )
                                }
                            }
                        }
                        decisions.push(Ok((events, K::summary(&state))));
                    }
                    Err((index, error)) => decisions.push(Err((index, error))),
                }
            }
            if new_events.is_empty() {
                // Only refusals and no-op retries: nothing to write.
                self.loaded = Some((state, revision));
                return answer(jobs, decisions, None);
            }
            match self
                .store
                .append(&self.stream, ExpectedRevision::after(revision), new_events)
                .await
            {
                Ok(result) => {
                    self.loaded = Some((state, Some(result.next_expected)));
                    return answer(jobs, decisions, Some(result.position));
                }
                Err(StoreError::WrongExpectedVersion { .. }) if attempts < MAX_CONFLICT_RETRIES => {
                    // Another process wrote the stream: reload and decide again.
                    attempts += 1;
                    self.loaded = None;
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    return fail_all(jobs, HandlerError::Contended(self.stream.clone()))
                }
                Err(e) => {
                    // Unknown outcome (the append may have landed): reload next time.
                    self.loaded = None;
                    return fail_all(jobs, HandlerError::Store(e));
                }
            }
        }
    }
}

/// Several commands as one unit: each decided against the state after the previous ones'
/// events; the first refusal refuses them all, with its index.
fn decide_bundle<K: StreamKind>(
    state: &K::State,
    commands: &[K::Command],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<K::Event>, (usize, InventoryError)> {
    let mut scratch = state.clone();
    let mut events = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let decided = K::decide(&scratch, command, now).map_err(|e| (index, e))?;
        for event in &decided {
            K::apply(&mut scratch, event);
        }
        events.extend(decided);
    }
    Ok(events)
}

fn answer<K: StreamKind>(
    jobs: Vec<Job<K>>,
    decisions: Vec<Decision<K>>,
    position: Option<Position>,
) {
    for (job, decision) in jobs.into_iter().zip(decisions) {
        let outcome = match decision {
            Ok((events, summary)) => Ok(Decided {
                position: if events.is_empty() { None } else { position },
                events,
                summary,
            }),
            Err((index, error)) => Err(HandlerError::Refused { index, error }),
        };
        let _ = job.reply.send(outcome);
    }
}

/// Answers every job with the same failure (store errors are not `Clone`, so each gets the
/// failure rebuilt from its text, keeping its kind where it matters to callers).
fn fail_all<K: StreamKind>(jobs: Vec<Job<K>>, error: HandlerError) {
    let message = error.to_string();
    let rebuild = |e: &HandlerError| match e {
        HandlerError::Contended(s) => HandlerError::Contended(s.clone()),
        HandlerError::Closed => HandlerError::Closed,
        HandlerError::Unreadable { stream, detail } => HandlerError::Unreadable {
            stream: stream.clone(),
            detail: detail.clone(),
        },
        _ => HandlerError::Store(StoreError::Io(message.clone())),
    };
    let mut jobs = jobs.into_iter();
    if let Some(first) = jobs.next() {
        for job in jobs {
            let _ = job.reply.send(Err(rebuild(&error)));
        }
        let _ = first.reply.send(Err(error));
    }
}
