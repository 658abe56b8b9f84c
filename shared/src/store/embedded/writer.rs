//! The single writer: group commit for the embedded store.
//!
//! Every append goes through one thread that owns the only write connection. It takes whatever
//! appends are queued (up to a batch limit), checks each against its own expected revision,
//! writes the ones that pass in one SQLite transaction, syncs once, and only then answers each
//! caller. With many concurrent writers a batch holds hundreds of appends, so the cost of the
//! sync (the durable part) is shared; a lone writer still gets one transaction per append.
//!
//! Because one thread decides every revision, the revision check is an in-memory map lookup,
//! and the unique `(stream, revision)` index stays as a second guard.
//!
//! Idempotent retries are recognised without a global index on event ids (a random-key index
//! costs one scattered page write per event and halved throughput): a retry that expects an exact
//! revision (or no stream) is checked against the events at that place in the stream, as
//! KurrentDB does; any retry is also checked against the ids of the last
//! [`RECENT_IDS`] events, kept in memory and reloaded on open.
//!
//! A commit that fails (a full disk, an I/O error) answers every append of its batch at once
//! with [`StoreError::Unavailable`] and marks the store degraded ([`Health`]). What the batch
//! assumed in memory (revisions, recent ids, the next position) is undone from what the batch
//! itself recorded, never reloaded from disk or from the stream index, which may be failing
//! too: nothing here waits for the disk to recover. The head and the live feed move only after
//! a commit succeeded. Later appends are tried as they come; the store counts as recovered
//! once a probe passes ([`Writer::probe`]: room on the disk, and a small commit), run on a
//! health check and after a commit that passes while degraded. (A commit alone does not tell:
//! a full disk still takes one that fits in the WAL's existing space.)

use super::checkpointer::Checkpointer;
use super::health::Health;
use super::indexer::{Ack, Acks, Indexer};
use super::schema::{self, INSERT};
use crate::envelope::{NewEvent, RecordedEvent};
pub(super) use crate::store::queued::AppendRequest;
use crate::store::{AppendResult, ExpectedRevision, Position, StoreError};
use crate::telemetry::metrics::{self, Histogram, LATENCY_BUCKETS, SIZE_BUCKETS};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A batch of committed events, as broadcast to live subscribers.
pub(super) type CommittedBatch = crate::store::follow::Batch;

pub(super) enum Command {
    Append(AppendRequest),
    /// While the log is failing: try a small write (answered when tried), so that a store
    /// without appends finds out when the disk takes writes again.
    Probe(oneshot::Sender<()>),
    /// Finish what is queued, checkpoint the WAL and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Streams whose last revision the writer remembers. Bounded: past this many it forgets them
/// all and reloads on demand (one indexed lookup per stream).
const REVISION_CACHE_LIMIT: usize = 1_000_000;

/// How many recent event ids the writer remembers for idempotency checks.
pub(super) const RECENT_IDS: usize = 262_144;

/// Ids of the most recent events and their positions, oldest evicted first.
struct RecentIds {
    positions: HashMap<uuid::Uuid, u64>,
    order: std::collections::VecDeque<uuid::Uuid>,
    /// Ids inserted ever (so that a failed batch can take back its own).
    inserted: u64,
}

impl RecentIds {
    fn load(conn: &Connection, last: u64) -> rusqlite::Result<Self> {
        let mut recent = RecentIds {
            positions: HashMap::with_capacity(RECENT_IDS),
            order: std::collections::VecDeque::with_capacity(RECENT_IDS),
            inserted: 0,
        };
        let from = last.saturating_sub(RECENT_IDS as u64);
        let mut stmt =
            conn.prepare("SELECT id, position FROM events WHERE position > ?1 ORDER BY position")?;
        let rows = stmt.query_map([from as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, position) = row?;
            if let Ok(id) = uuid::Uuid::from_slice(&id) {
                recent.insert(id, position as u64);
            }
        }
        Ok(recent)
    }

    fn insert(&mut self, id: uuid::Uuid, position: u64) {
        if self.order.len() == RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.positions.remove(&old);
            }
        }
        self.positions.insert(id, position);
        self.order.push_back(id);
        self.inserted += 1;
    }

    /// Forgets the ids inserted since `mark` (a value of `inserted`): a batch that did not
    /// commit. (Older ids it evicted stay forgotten: the window is only shorter for a while.)
    fn forget_since(&mut self, mark: u64) {
        for _ in mark..self.inserted {
            if let Some(id) = self.order.pop_back() {
                self.positions.remove(&id);
            }
        }
        self.inserted = mark;
    }

    fn get(&self, id: &uuid::Uuid) -> Option<u64> {
        self.positions.get(id).copied()
    }
}

pub(super) struct Writer {
    conn: Connection,
    /// The exclusive lock on the data directory, released when the writer stops.
    lock: std::fs::File,
    /// Position the next event gets.
    next_position: u64,
    /// Last revision per stream (streams that exist). Sized for [`REVISION_CACHE_LIMIT`] up
    /// front and cleared when past it, so it never rehashes: a doubling rehashed every stream
    /// name on this thread, holding up every commit (50 ms at 460,000 streams in the orders
    /// benchmark). The buckets are reserved address space, touched only as streams arrive.
    revisions: HashMap<String, u64>,
    recent: RecentIds,
    /// Published after each commit: the last committed position.
    head: Arc<AtomicU64>,
    live: broadcast::Sender<CommittedBatch>,
    max_batch_events: usize,
    /// Indexes each committed batch and then answers its appends.
    indexer: Indexer,
    /// Copies the WALs back into their files; asks this thread to finish the log's.
    checkpointer: Checkpointer,
    batch_size: Arc<Histogram>,
    commit_latency: Arc<Histogram>,
    /// Set when a commit fails, cleared by a probe that passes.
    health: Arc<Health>,
    /// The file a probe writes to see that the disk has room.
    space_probe: std::path::PathBuf,
    /// When the last probe ran (probes after commits run at most every [`PROBE_EVERY`]).
    probed_at: Option<Instant>,
}

/// Least time between two probes made after commits while degraded.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The outcome of one append inside a batch: its own result, or an SQLite failure that dooms
/// the whole transaction.
type Outcome = Result<Result<AppendResult, StoreError>, rusqlite::Error>;

/// What a batch wrote while its transaction is open.
#[derive(Default)]
struct Written {
    /// The events, for the live feed once committed.
    events: Vec<RecordedEvent>,
    /// (append's index in the batch, the stream's revision before it): undone in reverse if
    /// the commit fails.
    undo: Vec<(usize, Option<u64>)>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        file: &std::path::Path,
        lock: std::fs::File,
        head: Arc<AtomicU64>,
        live: broadcast::Sender<CommittedBatch>,
        indexed: tokio::sync::watch::Sender<u64>,
        options: &super::EmbeddedOptions,
    ) -> Result<Self, StoreError> {
        let health = Arc::new(Health::default());
        let max_batch_events = options.max_batch_events;
        let last: Option<i64> = conn
            .query_row("SELECT max(position) FROM events", [], |r| r.get(0))
            .map_err(schema::io_error)?;
        let last = last.unwrap_or(0) as u64;
        head.store(last, Ordering::Release);
        let recent = RecentIds::load(&conn, last).map_err(schema::io_error)?;
        let m = metrics::global();
        let labels = [("backend", "embedded")];
        let append_latency = m.histogram(
            "ichigen_store_append_seconds",
            "Time from an append request to its durable acknowledgement.",
            LATENCY_BUCKETS,
            &labels,
        );
        let checkpointer = Checkpointer::start(file, options.wal_restart_pages, head.clone())?;
        // The index was brought up to the log when the store opened.
        let indexer = Indexer::start(
            file,
            last,
            append_latency,
            indexed,
            checkpointer.index.clone(),
            health.clone(),
        )?;
        Ok(Writer {
            conn,
            lock,
            next_position: last + 1,
            // A batch adds at most one stream per append, and at most `max_batch_events`
            // appends, before the limit is checked again.
            revisions: HashMap::with_capacity(
                REVISION_CACHE_LIMIT + max_batch_events.min(REVISION_CACHE_LIMIT),
            ),
            recent,
            head,
            live,
            max_batch_events,
            indexer,
            checkpointer,
            batch_size: m.histogram(
                "ichigen_store_commit_batch_events",
                "Events written per group commit.",
                SIZE_BUCKETS,
                &labels,
            ),
            commit_latency: m.histogram(
                "ichigen_store_commit_seconds",
                "Time to write and sync one group commit.",
                LATENCY_BUCKETS,
                &labels,
            ),
            health,
            space_probe: file.with_file_name(super::files::SPACE_PROBE_FILE_NAMES[0]),
            probed_at: None,
        })
    }

    /// Whether the store can write now (the writer's and the indexer's failures).
    pub(super) fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// The writer thread's loop: runs until shut down or every handle is dropped.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch: Vec<AppendRequest> = Vec::new();
        let mut probes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while shutdown.is_none() {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut events = 0;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append(req) => {
                        events += req.events.len();
                        batch.push(req);
                    }
                    Command::Probe(done) => probes.push(done),
                    Command::Shutdown(done) => shutdown = Some(done),
                }
                if events < self.max_batch_events && shutdown.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit_batch(std::mem::take(&mut batch));
            }
            if !probes.is_empty() {
                if self.health.log_failing() {
                    self.probe();
                }
                for done in probes.drain(..) {
                    let _ = done.send(());
                }
            }
            // Between batches: copy what is left of a long WAL, so the next batch restarts it.
            self.checkpointer.log.run_if_asked(&self.conn);
        }
        // Refuse what comes after the shutdown, then answer what was queued with Closed.
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Append(req) => {
                    let _ = req.reply.send(Err(StoreError::Closed));
                }
                Command::Probe(done) => {
                    let _ = done.send(());
                }
                Command::Shutdown(_) => {}
            }
        }
        // Answer everything committed before closing.
        self.indexer.finish();
        self.checkpointer.stop();
        // Fold the WAL into the database so the next open starts clean; failure is harmless.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        drop(self.conn);
        drop(self.live);
        drop(self.lock);
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        let started = Instant::now();
        let first_position = self.next_position;
        let recent_mark = self.recent.inserted;
        let mut written = Written::default();
        let result = (|| -> Result<Vec<Result<AppendResult, StoreError>>, rusqlite::Error> {
            let tx = self.conn.unchecked_transaction()?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for (i, req) in batch.iter().enumerate() {
                outcomes.push(Self::append_one(
                    &tx,
                    &mut self.revisions,
                    &mut self.recent,
                    &mut self.next_position,
                    i,
                    req,
                    &mut written,
                )?);
            }
            tx.commit()?;
            Ok(outcomes)
        })();
        match result {
            Ok(outcomes) => {
                self.commit_latency.observe_duration(started.elapsed());
                self.batch_size.observe(written.events.len() as f64);
                if !written.events.is_empty() {
                    self.head.store(self.next_position - 1, Ordering::Release);
                    // No receivers is fine: nobody subscribes live.
                    let _ = self.live.send(Arc::new(written.events));
                }
                // Answered by the indexer once the stream index covers the batch (ordered
                // behind earlier batches, so even a refusal never overtakes an earlier ack).
                let acks = batch
                    .into_iter()
                    .zip(outcomes)
                    .map(|(req, outcome)| Ack {
                        reply: req.reply,
                        outcome,
                        enqueued: req.enqueued,
                    })
                    .collect();
                self.indexer.submit(Acks {
                    upto: self.next_position - 1,
                    acks,
                });
                // Degraded, and a commit passed: does the disk take writes again?
                if self.health.log_failing()
                    && self.probed_at.is_none_or(|at| at.elapsed() >= PROBE_EVERY)
                {
                    self.probe();
                }
            }
            Err(e) => {
                if !self.health.log_failing() {
                    tracing::error!(error = %e, "group commit failed; the batch is refused and the store degraded");
                }
                self.health.log_failed(e.to_string());
                // Nothing of the batch is acknowledged: forget what it assumed, from its own
                // record (the disk, and so the index, may be failing too).
                for (i, previous) in written.undo.into_iter().rev() {
                    let stream = &batch[i].stream;
                    match previous {
                        Some(revision) => {
                            self.revisions.insert(stream.clone(), revision);
                        }
                        None => {
                            self.revisions.remove(stream);
                        }
                    }
                }
                self.recent.forget_since(recent_mark);
                self.next_position = first_position;
                let message = format!(
                    "cannot commit to the log ({e}); the append is not acknowledged: retry it \
                     with the same event ids"
                );
                for req in batch {
                    let _ = req
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
        // Past the bound: forget every revision, once the index can answer for them (not
        // while it is failing; the map's spare room takes the wait).
        if self.revisions.len() > REVISION_CACHE_LIMIT
            && self.indexer.wait_until(self.next_position - 1)
        {
            self.revisions.clear();
        }
    }

    /// While the log is failing: does the disk take writes again? It must have room
    /// ([`super::health::room_for_writes`]) and take a small durable commit (the store's
    /// `meta` table). Passing clears the failure.
    fn probe(&mut self) {
        self.probed_at = Some(Instant::now());
        if let Err(e) = super::health::room_for_writes(&self.space_probe) {
            self.health.log_failed(format!("no room on the disk ({e})"));
            return;
        }
        let tried = self.conn.execute_batch(
            "BEGIN IMMEDIATE; \
             INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', strftime('%s', 'now')); \
             COMMIT;",
        );
        match tried {
            Ok(()) => {
                if self.health.log_ok() {
                    tracing::info!("the log takes commits again");
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.health.log_failed(e.to_string());
            }
        }
    }

    /// Checks and writes one append inside the batch transaction.
    fn append_one(
        tx: &Transaction<'_>,
        revisions: &mut HashMap<String, u64>,
        recent: &mut RecentIds,
        next_position: &mut u64,
        index_in_batch: usize,
        req: &AppendRequest,
        written: &mut Written,
    ) -> Outcome {
        let current = match revisions.get(&req.stream) {
            Some(r) => Some(*r),
            None => {
                let found: Option<i64> = tx
                    .prepare_cached(
                        "SELECT revision FROM idx.streams WHERE stream = ?1 \
                         ORDER BY revision DESC LIMIT 1",
                    )?
                    .query_row([&req.stream], |r| r.get(0))
                    .optional()?;
                found.map(|r| r as u64)
            }
        };

        // A retry of an append already written succeeds without writing again.
        if let Some(position) = recent.get(&req.events[0].id) {
            return Self::replay_at_position(tx, req, current, position);
        }
        if !req.expected.is_met_by(current) {
            let at_place = match req.expected {
                ExpectedRevision::Exact(e) => Some(e + 1),
                ExpectedRevision::NoStream => Some(0),
                _ => None,
            };
            if let Some(first_revision) = at_place {
                if let Some(outcome) = Self::replay_at_revision(tx, req, first_revision)? {
                    return Ok(Ok(outcome));
                }
            }
            return Ok(Err(StoreError::WrongExpectedVersion {
                stream: req.stream.clone(),
                expected: req.expected,
                actual: current,
            }));
        }

        let first_revision = current.map_or(0, |r| r + 1);
        let stream: Arc<str> = Arc::from(req.stream.as_str());
        let mut insert = tx.prepare_cached(INSERT)?;
        for (i, event) in req.events.iter().enumerate() {
            let position = *next_position + i as u64;
            let revision = first_revision + i as u64;
            let m = &event.metadata;
            insert.execute(params![
                position as i64,
                req.stream,
                revision as i64,
                event.id.as_bytes().as_slice(),
                event.event_type,
                event.data,
                m.correlation_id.as_bytes().as_slice(),
                m.causation_id.as_ref().map(|c| c.as_bytes().to_vec()),
                m.actor.to_compact(),
                schema::micros(m.occurred_at),
            ])?;
            recent.insert(event.id, position);
            written.events.push(RecordedEvent {
                id: event.id,
                stream: stream.clone(),
                revision,
                position: Position::sequence(position),
                event_type: Arc::from(event.event_type.as_str()),
                data: Arc::from(event.data.as_slice()),
                metadata: m.clone(),
            });
        }
        let last_revision = first_revision + req.events.len() as u64 - 1;
        *next_position += req.events.len() as u64;
        written.undo.push((index_in_batch, current));
        revisions.insert(req.stream.clone(), last_revision);
        let position = Position::sequence(*next_position - 1);
        Ok(Ok(AppendResult {
            next_expected: last_revision,
            position,
        }))
    }

    /// The stored events of `req.stream` from `first_revision` on, as (id, position).
    fn stored_ids(
        tx: &Transaction<'_>,
        stream: &str,
        first_revision: u64,
        count: usize,
    ) -> rusqlite::Result<Vec<(Vec<u8>, i64)>> {
        tx.prepare_cached(
            "SELECT e.id, e.position FROM idx.streams i JOIN events e ON e.position = i.position \
             WHERE i.stream = ?1 AND i.revision >= ?2 ORDER BY i.revision LIMIT ?3",
        )?
        .query_map(params![stream, first_revision as i64, count as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
    }

    fn same_ids(stored: &[(Vec<u8>, i64)], events: &[NewEvent]) -> bool {
        stored.len() == events.len()
            && stored
                .iter()
                .zip(events)
                .all(|((id, _), e)| id.as_slice() == e.id.as_bytes())
    }

    /// A retry whose expectation pointed at `first_revision`: succeeds if exactly these events
    /// are stored there.
    fn replay_at_revision(
        tx: &Transaction<'_>,
        req: &AppendRequest,
        first_revision: u64,
    ) -> rusqlite::Result<Option<AppendResult>> {
        let stored = Self::stored_ids(tx, &req.stream, first_revision, req.events.len())?;
        if !Self::same_ids(&stored, &req.events) {
            return Ok(None);
        }
        Ok(Some(AppendResult {
            next_expected: first_revision + req.events.len() as u64 - 1,
            position: Position::sequence(stored.last().map_or(0, |(_, p)| *p as u64)),
        }))
    }

    /// The append's first event id was recently stored at `position`: the same events at a
    /// place the expectation allows succeed without writing; anything else is refused.
    fn replay_at_position(
        tx: &Transaction<'_>,
        req: &AppendRequest,
        current: Option<u64>,
        position: u64,
    ) -> rusqlite::Result<Result<AppendResult, StoreError>> {
        // An append's events have consecutive positions: read them straight from the log (they
        // may be in this very batch, not yet in the stream index).
        let stored: Vec<(String, i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT stream, revision, id FROM events WHERE position >= ?1 \
                 ORDER BY position LIMIT ?2",
            )?
            .query_map(params![position as i64, req.events.len() as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let wrong_version = || StoreError::WrongExpectedVersion {
            stream: req.stream.clone(),
            expected: req.expected,
            actual: current,
        };
        let Some((stream, first_revision, _)) = stored.first() else {
            return Ok(Err(wrong_version()));
        };
        if *stream != req.stream {
            return Ok(Err(StoreError::EventIdInOtherStream {
                id: req.events[0].id,
                stream: req.stream.clone(),
                existing_stream: stream.clone(),
            }));
        }
        let first_revision = *first_revision as u64;
        let same_events = stored.len() == req.events.len()
            && stored
                .iter()
                .zip(&req.events)
                .enumerate()
                .all(|(i, ((s, r, id), e))| {
                    *s == req.stream
                        && *r as u64 == first_revision + i as u64
                        && id.as_slice() == e.id.as_bytes()
                });
        let place_allowed = match req.expected {
            ExpectedRevision::Any | ExpectedRevision::StreamExists => true,
            ExpectedRevision::NoStream => first_revision == 0,
            ExpectedRevision::Exact(e) => first_revision == e + 1,
        };
        if same_events && place_allowed {
            return Ok(Ok(AppendResult {
                next_expected: first_revision + req.events.len() as u64 - 1,
                position: Position::sequence(position + req.events.len() as u64 - 1),
            }));
        }
        Ok(Err(wrong_version()))
    }
}
