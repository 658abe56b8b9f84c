//! The stream indexer: a second thread that brings the stream index up to the log and only then
//! acknowledges the appends of each group commit.
//!
//! Indexing a batch takes about a third of the work of a commit (one index page per stream
//! touched). Doing it here lets the writer write and sync the next batch meanwhile, on the other
//! core. Acks still wait for the index, so a caller that reads its stream after the ack finds its
//! events.
//!
//! When the index cannot be updated (a full or failing disk), the batch's appends are answered
//! at once all the same: their events are durable in the log, which is the truth, so they are
//! acknowledged (an error would have the caller retry something that is done). The store is
//! marked degraded, and until the index is up to the log again a stream read fails with
//! [`StoreError::Unavailable`] rather than miss an acknowledged event (see
//! `EmbeddedStore::read_stream`); the writer's revision checks do not depend on it (see
//! `writer`). The thread tries again with a growing pause (at most a second), or at once when a
//! reader asks, without waiting for new work.

use super::checkpointer::Finish;
use super::health::{room_for_writes, Health};
use super::schema;
use crate::store::{AppendResult, StoreError};
use crate::telemetry::metrics::Histogram;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One append's answer, sent once its batch is indexed.
pub(super) struct Ack {
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
    pub outcome: Result<AppendResult, StoreError>,
    pub enqueued: Instant,
}

/// The answers of one committed batch, and the log position it reached.
pub(super) struct Acks {
    pub upto: u64,
    pub acks: Vec<Ack>,
}

pub(super) struct Indexer {
    jobs: Option<mpsc::Sender<Acks>>,
    indexed: Arc<AtomicU64>,
    health: Arc<Health>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread; the index is already caught up to `indexed_upto` (done on open).
    pub(super) fn start(
        file: &Path,
        indexed_upto: u64,
        append_latency: Arc<Histogram>,
        published: tokio::sync::watch::Sender<u64>,
        finish: Arc<Finish>,
        health: Arc<Health>,
    ) -> Result<Self, StoreError> {
        let conn = schema::open_indexer(file)?;
        let indexed = Arc::new(AtomicU64::new(indexed_upto));
        published.send_replace(indexed_upto);
        let (jobs, rx) = mpsc::channel();
        let thread = {
            let (indexed, health) = (indexed.clone(), health.clone());
            let thread = Thread {
                conn,
                indexed,
                append_latency,
                published,
                health,
                space_probe: file.with_file_name(super::files::SPACE_PROBE_FILE_NAMES[1]),
            };
            std::thread::Builder::new()
                .name("ichigen-store-index".into())
                .spawn(move || thread.run(rx, indexed_upto, &finish))
                .map_err(|e| StoreError::Io(format!("cannot start the indexer thread: {e}")))?
        };
        Ok(Indexer {
            jobs: Some(jobs),
            indexed,
            health,
            thread: Some(thread),
        })
    }

    /// Hands a committed batch's answers over.
    pub(super) fn submit(&self, acks: Acks) {
        let Some(jobs) = &self.jobs else { return };
        if let Err(mpsc::SendError(acks)) = jobs.send(acks) {
            // The thread is gone (it never exits while the writer runs): the events are durable
            // but unindexed, so the callers get an ambiguous failure and may retry.
            for ack in acks.acks {
                let _ = ack.reply.send(Err(StoreError::Io(
                    "stream indexer stopped; retry the append".into(),
                )));
            }
        }
    }

    /// Blocks until the index covers `position` (the writer needs it before it trusts the index
    /// for a stream's revision again); `false` at once if it cannot get there now (the index
    /// is failing, or the thread stopped).
    pub(super) fn wait_until(&self, position: u64) -> bool {
        while self.indexed.load(Ordering::Acquire) < position {
            if self.health.index_failing() || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }

    /// Indexes and answers everything submitted, then stops the thread.
    pub(super) fn finish(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread's state.
struct Thread {
    conn: Connection,
    indexed: Arc<AtomicU64>,
    append_latency: Arc<Histogram>,
    published: tokio::sync::watch::Sender<u64>,
    health: Arc<Health>,
    /// The file the room probe writes (see `health`).
    space_probe: std::path::PathBuf,
}

/// First pause before indexing is tried again after a failure; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// While failing, how often the thread looks whether a reader asked for a retry.
const NUDGE_POLL: Duration = Duration::from_millis(5);

impl Thread {
    /// After an update passed: whether the index counts as sound (it was not failing, or the
    /// disk has room again: see `health`).
    fn recovered(&self) -> bool {
        if !self.health.index_failing() {
            return true;
        }
        if let Err(e) = room_for_writes(&self.space_probe) {
            self.health
                .index_failed(format!("no room on the disk ({e})"));
            return false;
        }
        self.health.index_ok();
        tracing::info!("the stream index is up to the log again");
        true
    }

    fn run(self, rx: mpsc::Receiver<Acks>, indexed_upto: u64, finish: &Finish) {
        // The log position the index must reach: the last batch handed over.
        let mut committed = indexed_upto;
        let mut pause = FIRST_PAUSE;
        // While failing: when to try again even if nothing new comes (or sooner, if a reader
        // asks).
        let mut retry_at: Option<Instant> = None;
        loop {
            let first = match retry_at {
                None => match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                },
                Some(at) => match rx.recv_timeout(NUDGE_POLL) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !(self.health.take_index_nudge() || Instant::now() >= at) {
                            continue;
                        }
                        None
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            let mut jobs: Vec<Acks> = first.into_iter().collect();
            jobs.extend(rx.try_iter());
            committed = jobs.iter().map(|j| j.upto).fold(committed, u64::max);
            // The log is committed; the index follows before anyone is told.
            match schema::catch_up_index(&self.conn) {
                Ok(()) => {
                    // Degraded: up to the log again, but is there room for the next update?
                    match self.recovered() {
                        true => {
                            retry_at = None;
                            pause = FIRST_PAUSE;
                        }
                        false => {
                            retry_at = Some(Instant::now() + pause);
                            pause = (pause * 2).min(MAX_PAUSE);
                        }
                    }
                    self.indexed.store(committed, Ordering::Release);
                    // Stream readers wait on this (see `EmbeddedStore::read_stream`).
                    self.published.send_replace(committed);
                }
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    if !self.health.index_failing() {
                        tracing::error!(error = %e, "stream index update failed; stream reads fail until it passes");
                    }
                    self.health.index_failed(e.to_string());
                    // Wake stream readers waiting for the index: they fail now, not later.
                    self.published.send_modify(|_| {});
                    retry_at = Some(Instant::now() + pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
            // Durable in the log either way (see the module docs).
            for job in jobs {
                for ack in job.acks {
                    self.append_latency.observe_duration(ack.enqueued.elapsed());
                    let _ = ack.reply.send(ack.outcome);
                }
            }
            // After the answers: copy what is left of a long index WAL (see `checkpointer`).
            finish.run_if_asked(&self.conn);
        }
    }
}
