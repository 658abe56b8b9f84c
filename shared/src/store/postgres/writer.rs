//! The appender of one process: group commit under the database's append lock.
//!
//! **Positions subscribers can trust.** Every appender, in every process, writes inside a
//! transaction that first takes one transaction-level advisory lock ([`APPEND_LOCK`]), reads
//! the last position and numbers its events from there. So transactions that append run one at
//! a time in the whole database, and PostgreSQL releases that lock only after the commit is
//! durable and visible: the next appender's positions follow the last committed ones, with no
//! gap and never below a position a reader has already seen. (The sequence-gap problem of
//! concurrent inserts — a transaction that drew 101 commits after one that drew 102 — cannot
//! happen: nobody draws a position without the lock.)
//!
//! **Group commit.** The lock makes appends sequential, so each process batches: its one
//! writer task takes every append queued (up to a limit), checks each against its expected
//! revision and the ids already stored, inserts the accepted ones with one statement, commits
//! once (`synchronous_commit = on`: durable before the answer) and answers every caller. Under
//! load a transaction carries hundreds of appends.
//!
//! **Revisions and retries.** Under the lock the stored state cannot change, so the revision
//! check reads it directly (the last revision of each stream in the batch, and which of the
//! batch's event ids are stored already) and `(stream, revision)` stays unique as a second
//! guard. An append whose ids are stored at the place its expectation names (or anywhere, for
//! `Any`) succeeds without writing — a retry after a lost answer, from this process or
//! another.

use super::schema::store_error;
use crate::envelope::NewEvent;
pub(super) use crate::store::queued::AppendRequest;
use crate::store::{AppendResult, ExpectedRevision, Position, StoreError};
use crate::telemetry::metrics::{self, Histogram, LATENCY_BUCKETS, SIZE_BUCKETS};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

/// The transaction-level advisory lock every append takes (`ICHGAPND`).
pub const APPEND_LOCK: i64 = 0x4943_4847_4150_4e44;

/// The channel appenders notify on commit; every process's tail listens to it.
pub const CHANNEL: &str = "ichigen_events";

/// How long one group commit may take before its appenders are answered `Unavailable` (the
/// connection is then dropped and opened again; a retry with the same ids is safe).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) enum Command {
    Append(AppendRequest),
    /// Finish what is queued, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Opens the appender's connection (the writer reopens it after a failure).
pub(super) type Connect = Arc<super::Connector>;

pub(super) struct Writer {
    connect: Connect,
    client: Option<Conn>,
    max_batch_events: usize,
    /// Woken after every commit: this process's tail reads what was committed at once.
    committed: Arc<Notify>,
    batch_size: Arc<Histogram>,
    latency: Arc<Histogram>,
    /// The last revision of streams this writer saw, as of position `known_head` (see
    /// [`Writer::try_commit`]); `None` after a failure, when nothing is known.
    known: Known,
}

/// Stream revisions as of a head: what the writer need not read again while nobody else
/// appends. Cleared past [`KNOWN_STREAMS`] streams (they are read again on demand).
#[derive(Default)]
struct Known {
    head: Option<u64>,
    revisions: HashMap<String, u64>,
}

/// Most streams the writer keeps the revision of.
const KNOWN_STREAMS: usize = 1_000_000;

/// What is stored of one event id: where it is.
#[derive(Clone)]
struct Stored {
    stream: String,
    revision: u64,
    position: u64,
}

impl Writer {
    pub(super) fn new(connect: Connect, max_batch_events: usize, committed: Arc<Notify>) -> Self {
        let m = metrics::global();
        Writer {
            connect,
            client: None,
            max_batch_events: max_batch_events.max(1),
            committed,
            known: Known::default(),
            batch_size: m.histogram(
                "ichigen_store_commit_batch_events",
                "Events written per group commit.",
                SIZE_BUCKETS,
                &[("backend", "postgres")],
            ),
            latency: m.histogram(
                "ichigen_store_append_seconds",
                "Time from an append request to its durable acknowledgement.",
                LATENCY_BUCKETS,
                &[("backend", "postgres")],
            ),
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while shutdown.is_none() {
            let Some(first) = rx.recv().await else { break };
            let mut batch = Vec::new();
            let mut events = 0;
            let mut next = Some(first);
            while let Some(c) = next.take() {
                match c {
                    Command::Append(a) => {
                        events += a.events.len();
                        batch.push(a);
                    }
                    Command::Shutdown(done) => shutdown = Some(done),
                }
                if shutdown.is_none() && events < self.max_batch_events {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit_batch(batch).await;
            }
        }
        // Anything still queued after a shutdown is refused, not left hanging.
        rx.close();
        while let Ok(c) = rx.try_recv() {
            if let Command::Append(a) = c {
                let _ = a.reply.send(Err(StoreError::Closed));
            }
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    async fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        let outcome = match self.attempt(&batch, false).await {
            // An event id is stored already (a retry under `Any`, from this process or another):
            // the transaction rolled back; decide again knowing where every id is.
            Err(Failure::IdStored) => self.attempt(&batch, true).await,
            other => other,
        };
        let outcome = outcome.map_err(|f| match f {
            Failure::Store(e) => e,
            Failure::IdStored => {
                StoreError::Unavailable("an event id was stored twice concurrently".into())
            }
        });
        match outcome {
            Ok(results) => {
                let events: usize = batch.iter().map(|a| a.events.len()).sum();
                self.batch_size.observe(events as f64);
                self.committed.notify_one();
                for (a, result) in batch.into_iter().zip(results) {
                    self.latency.observe(a.enqueued.elapsed().as_secs_f64());
                    let _ = a.reply.send(result);
                }
            }
            Err(e) => {
                // The transaction's outcome is unknown to the callers (it may have committed
                // before the connection broke): they retry with the same ids, which is safe.
                tracing::warn!(error = %e, "PostgreSQL group commit failed");
                self.client = None;
                self.known = Known::default();
                let text = e.to_string();
                for a in batch {
                    let _ = a.reply.send(Err(StoreError::Unavailable(text.clone())));
                }
            }
        }
    }

    /// [`Self::try_commit`] within [`COMMIT_TIMEOUT`].
    async fn attempt(
        &mut self,
        batch: &[AppendRequest],
        check_ids: bool,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, Failure> {
        match tokio::time::timeout(COMMIT_TIMEOUT, self.try_commit(batch, check_ids)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Store(StoreError::Unavailable(format!(
                "PostgreSQL did not commit within {COMMIT_TIMEOUT:?}"
            )))),
        }
    }

    async fn conn(&mut self) -> Result<&Conn, StoreError> {
        if self.client.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.client = None;
            let client = self.connect.connect().await?;
            self.client = Some(Conn::prepare(client).await?);
        }
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))
    }

    /// One transaction for the batch; the per-append results, or a failure of the whole.
    ///
    /// Two round trips as a rule: the statements of each half are pipelined (sent together,
    /// run by the server one after another, each on a snapshot taken after the lock was
    /// granted). The first reads the head and the revisions it does not know: of streams
    /// appended to since its last commit (by other processes: a range of the log, empty while
    /// nobody else writes) and of streams it has not seen. Event ids are looked up only for
    /// appends whose expectation failed (a retry at its place?) or, with `check_ids`, for all;
    /// otherwise the unique index on ids is the check, and a retry it catches comes back as
    /// [`Failure::IdStored`]. Any failure drops the connection, so no transaction is ever left
    /// half open on it.
    async fn try_commit(
        &mut self,
        batch: &[AppendRequest],
        check_ids: bool,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, Failure> {
        // Taken: whatever fails from here leaves nothing known (read again next time).
        let known = std::mem::take(&mut self.known);
        let known_head = known.head;
        let unknown: Vec<&str> = {
            let mut s: Vec<&str> = batch
                .iter()
                .map(|a| a.stream.as_str())
                .filter(|s| known_head.is_none() || !known.revisions.contains_key(*s))
                .collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let c = self.conn().await?;
        // Nothing known: every stream of the batch is probed, and the changed range is empty
        // (reading it from the start would scan the whole log).
        let since = known_head.map_or(i64::MAX, |h| h as i64);
        let lock_key: [&(dyn ToSql + Sync); 1] = [&APPEND_LOCK];
        let since_param: [&(dyn ToSql + Sync); 1] = [&since];
        let stream_param: [&(dyn ToSql + Sync); 1] = [&unknown];
        let (_, _, head, changed, probed) = futures::try_join!(
            c.client.execute(&c.begin, &[]),
            c.client.execute(&c.lock, &lock_key),
            c.client.query_one(&c.head, &[]),
            c.client.query(&c.changed, &since_param),
            c.client.query(&c.revisions, &stream_param),
        )
        .map_err(store_error)?;
        let head: i64 = head.get(0);
        let mut revisions: HashMap<String, u64> = if known_head.is_some() {
            known.revisions
        } else {
            HashMap::new()
        };
        if known_head.is_some() {
            for row in changed {
                let revision: i64 = row.get(1);
                revisions.insert(row.get(0), revision as u64);
            }
        }
        for row in probed {
            let revision: Option<i64> = row.get(1);
            match revision {
                Some(r) => revisions.insert(row.get(0), r as u64),
                None => revisions.remove(row.get::<_, &str>(0)),
            };
        }
        // Which appends need to know where their ids are stored.
        let lookup: Vec<Uuid> = batch
            .iter()
            .filter(|a| check_ids || !a.expected.is_met_by(revisions.get(&a.stream).copied()))
            .flat_map(|a| a.events.iter().map(|e| e.id))
            .collect();
        let mut stored: HashMap<Uuid, Stored> = HashMap::new();
        if !lookup.is_empty() {
            let id_param: [&(dyn ToSql + Sync); 1] = [&lookup];
            for row in c
                .client
                .query(&c.ids, &id_param)
                .await
                .map_err(store_error)?
            {
                let revision: i64 = row.get(2);
                let position: i64 = row.get(3);
                stored.insert(
                    row.get(0),
                    Stored {
                        stream: row.get(1),
                        revision: revision as u64,
                        position: position as u64,
                    },
                );
            }
        }

        let mut rows = Rows::default();
        let mut next_position = head as u64 + 1;
        let mut results = Vec::with_capacity(batch.len());
        for a in batch {
            let current = revisions.get(&a.stream).copied();
            let result = match replay(a, current, &stored) {
                Some(result) => result,
                None if !a.expected.is_met_by(current) => Err(StoreError::WrongExpectedVersion {
                    stream: a.stream.clone(),
                    expected: a.expected,
                    actual: current,
                }),
                None => {
                    let first_revision = current.map_or(0, |r| r + 1);
                    for (i, e) in a.events.iter().enumerate() {
                        let position = next_position + i as u64;
                        let revision = first_revision + i as u64;
                        rows.push(&a.stream, revision, position, e);
                        stored.insert(
                            e.id,
                            Stored {
                                stream: a.stream.clone(),
                                revision,
                                position,
                            },
                        );
                    }
                    let last_revision = first_revision + a.events.len() as u64 - 1;
                    next_position += a.events.len() as u64;
                    revisions.insert(a.stream.clone(), last_revision);
                    Ok(AppendResult {
                        next_expected: last_revision,
                        position: Position::sequence(next_position - 1),
                    })
                }
            };
            results.push(result);
        }
        if rows.is_empty() {
            c.client
                .execute(&c.commit, &[])
                .await
                .map_err(store_error)?;
        } else {
            let last = (next_position - 1).to_string();
            let columns: [&(dyn ToSql + Sync); 10] = [
                &rows.position,
                &rows.stream,
                &rows.revision,
                &rows.id,
                &rows.event_type,
                &rows.data,
                &rows.correlation_id,
                &rows.causation_id,
                &rows.actor,
                &rows.occurred_at,
            ];
            let notice: [&(dyn ToSql + Sync); 2] = [&CHANNEL, &last];
            // The notification is delivered to every listener when (and only if) the
            // transaction commits. A failed insert aborts the transaction, so the COMMIT after
            // it rolls back.
            let inserted = futures::try_join!(
                c.client.execute(&c.insert, &columns),
                c.client.execute(&c.notify, &notice),
                c.client.execute(&c.commit, &[]),
            );
            if let Err(e) = inserted {
                let id_taken = e.as_db_error().is_some_and(|d| {
                    d.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                        && d.constraint() == Some("ichigen_events_id")
                });
                if id_taken && !check_ids && !c.client.is_closed() {
                    return Err(Failure::IdStored);
                }
                return Err(store_error(e).into());
            }
        }
        if revisions.len() <= KNOWN_STREAMS {
            self.known = Known {
                head: Some(next_position - 1),
                revisions,
            };
        }
        Ok(results)
    }
}

/// Why a group commit failed.
enum Failure {
    /// An event id of the batch is stored already: decide again with every id looked up.
    IdStored,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// The writer's connection and its statements, prepared once.
struct Conn {
    client: Client,
    begin: Statement,
    lock: Statement,
    head: Statement,
    changed: Statement,
    revisions: Statement,
    ids: Statement,
    insert: Statement,
    notify: Statement,
    commit: Statement,
}

impl Conn {
    async fn prepare(client: Client) -> Result<Self, StoreError> {
        let (begin, lock, head, changed, revisions, ids, insert, notify, commit) =
            futures::try_join!(
                client.prepare("BEGIN"),
                client.prepare("SELECT pg_advisory_xact_lock($1)"),
                client.prepare("SELECT coalesce(max(position), 0) FROM ichigen_events"),
                // The streams appended to after a position: what others wrote since our commit.
                client.prepare(
                    "SELECT stream, max(revision) FROM ichigen_events WHERE position > $1 \
                 GROUP BY stream"
                ),
                // One index probe per stream (a GROUP BY over `stream = ANY(…)` may scan the table).
                client.prepare(
                    "SELECT s.stream, (SELECT e.revision FROM ichigen_events e \
                 WHERE e.stream = s.stream ORDER BY e.revision DESC LIMIT 1) \
                 FROM unnest($1::text[]) AS s(stream)"
                ),
                client.prepare(
                    "SELECT e.id, e.stream, e.revision, e.position \
                 FROM unnest($1::uuid[]) AS i(id) JOIN ichigen_events e ON e.id = i.id"
                ),
                client.prepare(
                    "INSERT INTO ichigen_events (position, stream, revision, id, type, data, \
                 correlation_id, causation_id, actor, occurred_at) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
                 $5::text[], $6::bytea[], $7::uuid[], $8::uuid[], $9::text[], $10::timestamptz[])"
                ),
                client.prepare("SELECT pg_notify($1, $2)"),
                client.prepare("COMMIT"),
            )
            .map_err(store_error)?;
        Ok(Conn {
            client,
            begin,
            lock,
            head,
            changed,
            revisions,
            ids,
            insert,
            notify,
            commit,
        })
    }
}

/// An append whose first event id is stored already: the same events at a place its
/// expectation allows are a retry, answered without writing; anything else is refused. `None`
/// when none of its ids is stored (a new append).
fn replay(
    a: &AppendRequest,
    current: Option<u64>,
    stored: &HashMap<Uuid, Stored>,
) -> Option<Result<AppendResult, StoreError>> {
    let found: Vec<Option<&Stored>> = a.events.iter().map(|e| stored.get(&e.id)).collect();
    let (k, elsewhere) = found
        .iter()
        .enumerate()
        .find_map(|(k, s)| s.map(|s| (k, s)))?;
    if elsewhere.stream != a.stream {
        return Some(Err(StoreError::EventIdInOtherStream {
            id: a.events[k].id,
            stream: a.stream.clone(),
            existing_stream: elsewhere.stream.clone(),
        }));
    }
    let wrong = || {
        Some(Err(StoreError::WrongExpectedVersion {
            stream: a.stream.clone(),
            expected: a.expected,
            actual: current,
        }))
    };
    // All of them, in this stream, one after another from the first.
    let Some(first) = found[0] else {
        return wrong();
    };
    let contiguous = found.iter().enumerate().all(|(i, s)| {
        s.is_some_and(|s| s.stream == a.stream && s.revision == first.revision + i as u64)
    });
    let at_place = match a.expected {
        ExpectedRevision::NoStream => first.revision == 0,
        ExpectedRevision::Exact(e) => first.revision == e + 1,
        ExpectedRevision::Any | ExpectedRevision::StreamExists => true,
    };
    if !(contiguous && at_place) {
        return wrong();
    }
    let last = found.last().copied().flatten()?;
    Some(Ok(AppendResult {
        next_expected: last.revision,
        position: Position::sequence(last.position),
    }))
}

/// The accepted events of a batch as column arrays, for one `unnest` insert.
#[derive(Default)]
struct Rows {
    position: Vec<i64>,
    stream: Vec<String>,
    revision: Vec<i64>,
    id: Vec<Uuid>,
    event_type: Vec<String>,
    data: Vec<Vec<u8>>,
    correlation_id: Vec<Uuid>,
    causation_id: Vec<Option<Uuid>>,
    actor: Vec<String>,
    occurred_at: Vec<DateTime<Utc>>,
}

impl Rows {
    fn push(&mut self, stream: &str, revision: u64, position: u64, e: &NewEvent) {
        self.position.push(position as i64);
        self.stream.push(stream.to_owned());
        self.revision.push(revision as i64);
        self.id.push(e.id);
        self.event_type.push(e.event_type.clone());
        self.data.push(e.data.clone());
        self.correlation_id.push(e.metadata.correlation_id);
        self.causation_id.push(e.metadata.causation_id);
        self.actor.push(e.metadata.actor.to_compact());
        self.occurred_at.push(e.metadata.occurred_at);
    }

    fn is_empty(&self) -> bool {
        self.position.is_empty()
    }
}
