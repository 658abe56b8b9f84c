//! The embedded event store: SQLite (bundled, so a fresh machine needs nothing) in WAL mode.
//!
//! * **Durable acks.** `synchronous = FULL`: the WAL is synced before a commit returns, and an
//!   append is acknowledged only after its commit returned.
//! * **Group commit.** One writer thread ([`writer`]) batches concurrent appends into one
//!   transaction and one sync, checking each against its own expected revision.
//! * **Reads** run on a small pool of read connections on the blocking thread pool; WAL readers
//!   never wait for the writer.
//! * **Subscriptions** ([`crate::store::follow`]) catch up from the table, then follow the writer's broadcast of
//!   committed batches, with no gap and no duplicate at the handover.
//! * **One process per data directory**, enforced with an exclusive lock on `LOCK`.
//! * **A full or failing disk** fails appends at once with [`StoreError::Unavailable`] and
//!   marks the store degraded ([`health`]) until writes pass again; nothing acknowledged is
//!   lost, and nothing waits for the disk.

mod checkpointer;
pub mod files;
mod health;
mod indexer;
pub mod schema;
mod writer;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{
    AppendResult, EventStore, ExpectedRevision, Position, StoreError, SubscribeFrom, Subscription,
    SubscriptionFilter,
};
use async_trait::async_trait;
use rusqlite::{params, Connection};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use writer::{Command, CommittedBatch, Writer};

/// Tuning of the embedded store; the defaults suit a single host.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Most events one group commit takes (one append is never split).
    pub max_batch_events: usize,
    /// Appends waiting for the writer before callers are made to wait (back-pressure).
    pub queue_capacity: usize,
    /// Largest event payload accepted, in bytes.
    pub max_event_bytes: usize,
    /// Committed batches kept for live subscribers; one that falls further behind catches up
    /// from the table instead.
    pub live_buffer_batches: usize,
    /// WAL pages (4 KiB) past which a WAL is copied back and started over (see
    /// `checkpointer`): larger means fewer restarts and slower reads of a long WAL.
    pub wal_restart_pages: u32,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            max_batch_events: 8192,
            queue_capacity: 65_536,
            max_event_bytes: 4 * 1024 * 1024,
            live_buffer_batches: 4096,
            wal_restart_pages: checkpointer::RESTART_PAGES,
        }
    }
}

/// Handle to an open embedded store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    head: Arc<AtomicU64>,
    /// A receiver never read from, only resubscribed: the writer holds the one sender, so
    /// subscriptions see the feed close when the writer stops.
    live: Mutex<broadcast::Receiver<CommittedBatch>>,
    readers: ReaderPool,
    /// How far the stream index has got (the indexer publishes it after each batch).
    indexed: tokio::sync::watch::Receiver<u64>,
    health: Arc<health::Health>,
    max_event_bytes: usize,
}

/// Longest a stream read waits for the index to reach what was committed when it began (it
/// takes one index batch, milliseconds; this bounds a disk that hangs).
const INDEX_WAIT: Duration = Duration::from_secs(5);

/// Longest a health check waits for the writer's trial write.
const PROBE_WAIT: Duration = Duration::from_secs(2);

impl EmbeddedStore {
    /// The file the events live in, inside the data directory.
    pub const FILE_NAME: &'static str = "events.sqlite";

    /// Opens (or creates) the store in `dir`. Fails with [`StoreError::Locked`] if another
    /// process has it open, and with [`StoreError::Corrupt`] if the file is not an Ichigen
    /// store or the directory's files disagree: a missing or empty log where a store was
    /// (see [`files`]), a stream index that covers events the log lacks.
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, options))
            .await
            .map_err(|e| StoreError::Io(format!("opening the store panicked: {e}")))?
    }

    fn open_blocking(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Io(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock_path = dir.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: dir.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )))
            }
        }

        let marker = files::check_before_open(dir)?;
        let file = dir.join(Self::FILE_NAME);
        let (conn, store_id) = schema::open_writer(&file)?;
        files::settle_marker(dir, marker, store_id)?;
        let head = Arc::new(AtomicU64::new(0));
        let (indexed_tx, indexed) = tokio::sync::watch::channel(0u64);
        let (live_sender, live) = broadcast::channel(options.live_buffer_batches.max(16));
        // The writer owns the lock from here: it is released when the writer stops.
        let writer = Writer::new(
            conn,
            &file,
            lock,
            head.clone(),
            live_sender,
            indexed_tx,
            &options,
        )?;
        let health = writer.health();
        let (commands, rx) = mpsc::channel(options.queue_capacity.max(1));
        std::thread::Builder::new()
            .name("ichigen-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                commands,
                head,
                indexed,
                health,
                live: Mutex::new(live),
                readers: ReaderPool {
                    file,
                    idle: Mutex::new(Vec::new()),
                    permits: tokio::sync::Semaphore::new(MAX_READERS),
                },
                max_event_bytes: options.max_event_bytes,
            }),
        })
    }

    /// A new receiver of committed batches (sees batches committed from now on).
    fn live_receiver(&self) -> broadcast::Receiver<CommittedBatch> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resubscribe()
    }

    /// Reads on the blocking pool with a pooled connection. At most [`MAX_READERS`] reads run
    /// at once: thousands of concurrent reads (every stream's first load in a burst) would
    /// otherwise each open a connection of their own, which costs far more than the read.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let _permit = self
            .inner
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Io("the store is closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.readers.with(f))
            .await
            .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }

    async fn read_all_after(
        &self,
        after: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
                schema::COLUMNS
            ))?;
            let mut decoder = schema::RowDecoder::default();
            let rows = stmt.query_map(params![after as i64, max_count as i64], |r| {
                decoder.decode(r)
            })?;
            rows.collect()
        })
        .await
    }
}

/// Most reads running at once, and most read connections kept.
const MAX_READERS: usize = 16;

/// Read connections, opened on demand and kept for reuse.
struct ReaderPool {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
}

impl ReaderPool {
    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => schema::open_reader(&self.file)?,
        };
        let result = f(&conn).map_err(schema::io_error);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
        result
    }
}

#[async_trait]
impl crate::store::follow::Log for EmbeddedStore {
    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_after(after, max).await
    }

    fn live(&self) -> broadcast::Receiver<CommittedBatch> {
        self.live_receiver()
    }
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        crate::store::queued::submit(
            &self.inner.commands,
            Command::Append,
            stream,
            expected,
            events,
            self.inner.max_event_bytes,
        )
        .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Subscribers get a batch before its appenders' acks, which wait for the stream index.
        // A reader that reacts to an event it was delivered (a process manager loading the
        // aggregate) must see that event in the stream: wait until the index covers everything
        // committed when the read began (at most one index batch).
        // While the index cannot be updated (a full disk), it fails at once instead.
        let committed = self.inner.head.load(Ordering::Acquire);
        let mut indexed = self.inner.indexed.clone();
        if *indexed.borrow() < committed {
            let health = &self.inner.health;
            // A failing index is asked to try again now: the read waits for that one try.
            let failures = health.index_failures();
            if health.index_failing() {
                health.nudge_index();
            }
            let caught_up =
                indexed.wait_for(|upto| *upto >= committed || health.index_failures() > failures);
            match tokio::time::timeout(INDEX_WAIT, caught_up).await {
                Ok(Ok(upto)) if *upto >= committed => {}
                Ok(Ok(_)) => {
                    return Err(StoreError::Unavailable(
                        health
                            .problem()
                            .unwrap_or_else(|| "the stream index is behind the log".into()),
                    ))
                }
                Ok(Err(_)) => return Err(StoreError::Io("the stream index stopped".into())),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "the stream index did not reach position {committed} within {INDEX_WAIT:?}"
                    )))
                }
            }
        }
        let stream = stream.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(schema::READ_STREAM)?;
            let mut decoder = schema::RowDecoder::default();
            let rows = stmt.query_map(
                params![stream, from.min(i64::MAX as u64) as i64, max_count as i64],
                |r| decoder.decode(r),
            )?;
            rows.collect()
        })
        .await
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_after(after.map_or(0, |p| p.commit), max_count)
            .await
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: SubscriptionFilter,
    ) -> Result<Subscription, StoreError> {
        let start = match from {
            SubscribeFrom::Start => 0,
            SubscribeFrom::After(p) => p.commit,
            SubscribeFrom::End => self.inner.head.load(Ordering::Acquire),
        };
        Ok(crate::store::follow::spawn(self.clone(), start, filter))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        match self.inner.head.load(Ordering::Acquire) {
            0 => Ok(None),
            seq => Ok(Some(Position::sequence(seq))),
        }
    }

    /// `Err` while a commit to the log or an update of the stream index fails (see
    /// [`health`]). Each failing part is first asked to try again (the writer a small write,
    /// the indexer its update), so a store without appends is seen to recover too.
    async fn health(&self) -> Result<(), StoreError> {
        let health = &self.inner.health;
        if health.log_failing() {
            let (tried, done) = oneshot::channel();
            if self.inner.commands.try_send(Command::Probe(tried)).is_ok() {
                let _ = tokio::time::timeout(PROBE_WAIT, done).await;
            }
        }
        if health.index_failing() {
            // Ask the indexer to try again now, and wait for that try.
            let failures = health.index_failures();
            health.nudge_index();
            let mut indexed = self.inner.indexed.clone();
            let tried =
                indexed.wait_for(|_| !health.index_failing() || health.index_failures() > failures);
            let _ = tokio::time::timeout(PROBE_WAIT, tried).await;
        }
        match health.problem() {
            None => Ok(()),
            Some(why) => Err(StoreError::Unavailable(why)),
        }
    }

    async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Shutdown(done))
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
    }

    fn backend_name(&self) -> &'static str {
        "embedded"
    }
}
