//! The stream indexer: a second thread that brings the stream index up to the log and only then
//! acknowledges the appends of each group commit.
//!
//! Indexing a batch takes about a third of the work of a commit (one index page per stream
//! touched). Doing it here lets the writer write and sync the next batch meanwhile, on the other
//! core. Acks still wait for the index, so a caller that reads its stream after the ack finds its
//! events.

use super::checkpointer::Finish;
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
    ) -> Result<Self, StoreError> {
        let conn = schema::open_indexer(file)?;
        let indexed = Arc::new(AtomicU64::new(indexed_upto));
        published.send_replace(indexed_upto);
        let (jobs, rx) = mpsc::channel();
        let shared = indexed.clone();
        let thread = std::thread::Builder::new()
            .name("ichigen-store-index".into())
            .spawn(move || run(conn, rx, shared, append_latency, published, &finish))
            .map_err(|e| StoreError::Io(format!("cannot start the indexer thread: {e}")))?;
        Ok(Indexer {
            jobs: Some(jobs),
            indexed,
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
    /// for a stream's revision again).
    pub(super) fn wait_until(&self, position: u64) {
        while self.indexed.load(Ordering::Acquire) < position {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Indexes and answers everything submitted, then stops the thread.
    pub(super) fn finish(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Acks>,
    indexed: Arc<AtomicU64>,
    append_latency: Arc<Histogram>,
    published: tokio::sync::watch::Sender<u64>,
    finish: &Finish,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let upto = jobs.iter().map(|j| j.upto).max().unwrap_or(0);
        let mut delay = Duration::from_millis(10);
        // The log is committed; the index must follow before anyone is told. A failure here
        // (disk full) is retried until it passes, holding the acks.
        while let Err(e) = schema::catch_up_index(&conn) {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "stream index update failed; retrying");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(1));
        }
        indexed.store(upto, Ordering::Release);
        // Stream readers wait on this (see `EmbeddedStore::read_stream`).
        published.send_replace(upto);
        for job in jobs {
            for ack in job.acks {
                append_latency.observe_duration(ack.enqueued.elapsed());
                let _ = ack.reply.send(ack.outcome);
            }
        }
        // After the answers: copy what is left of a long index WAL (see `checkpointer`).
        finish.run_if_asked(&conn);
    }
}
