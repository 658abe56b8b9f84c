//! The PostgreSQL backend: one database that many Ichigen processes share.
//!
//! * **Appends** ([`writer`]): each process group-commits its appends in one writer task;
//!   every append transaction in the database takes one advisory lock first, so positions are
//!   assigned in commit order (gapless, never below one a reader has seen), revisions are
//!   checked against what is stored, and a retried append is recognised by its event ids from
//!   any process. Acknowledged = committed with `synchronous_commit = on`.
//! * **Reads** run on a small pool of connections.
//! * **Subscriptions** ([`tail`], [`crate::store::follow`]): one tail per process follows the
//!   log by position, woken by `LISTEN`/`NOTIFY` (and by a short poll, should a notification
//!   be lost), and broadcasts what it reads; a subscription catches up from the table, then
//!   follows that broadcast, with no gap and no duplicate at the handover.
//! * **Schema** ([`schema`]): created and migrated by the binary on start, versioned; a
//!   database newer than the binary is refused.

pub mod schema;
mod tail;
mod tls;
mod writer;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::store::{
    AppendResult, EventStore, ExpectedRevision, Position, StoreError, SubscribeFrom, Subscription,
    SubscriptionFilter,
};
use async_trait::async_trait;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio_postgres::Client;
use writer::{Command, Writer};

pub use writer::APPEND_LOCK;

/// Tuning of the PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// How long opening a connection may take (start-up fails after it).
    pub connect_timeout: Duration,
    /// Most events one group commit takes (one append is never split).
    pub max_batch_events: usize,
    /// Appends waiting for the writer before callers are made to wait (back-pressure).
    pub queue_capacity: usize,
    /// Largest event payload accepted, in bytes.
    pub max_event_bytes: usize,
    /// Read connections kept open (and most reads at once).
    pub readers: usize,
    /// CA certificates (PEM) to trust for TLS besides the system's and the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Batches the tail keeps for live subscribers; one that falls further behind catches up
    /// from the table instead.
    pub live_buffer_batches: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            connect_timeout: Duration::from_secs(5),
            max_batch_events: 8192,
            queue_capacity: 65_536,
            max_event_bytes: 4 * 1024 * 1024,
            readers: 8,
            ca_file: None,
            live_buffer_batches: 4096,
        }
    }
}

/// A committed page of the log, as the tail broadcasts it.
pub(crate) type Batch = crate::store::follow::Batch;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    readers: ReaderPool,
    /// Never read from, only resubscribed (the tail holds the sender).
    live: Mutex<broadcast::Receiver<Batch>>,
    max_event_bytes: usize,
    /// Stops the tail on shutdown.
    stop_tail: tokio::sync::watch::Sender<bool>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host:port/db`), creates or migrates the
    /// schema, and starts this process's writer and tail. Fails with
    /// [`StoreError::Unavailable`] when the database cannot be reached within the timeout and
    /// [`StoreError::Corrupt`] when its schema is newer than this binary.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("store.url is not a PostgreSQL URL: {e}"))
        })?;
        let tls = tls::MakeRustls::new(options.ca_file.as_deref())
            .map_err(|e| StoreError::Unavailable(format!("cannot set up TLS: {e}")))?;
        let connect = Arc::new(Connector {
            config,
            timeout: options.connect_timeout,
            tls,
        });
        let mut first = connect.connect().await?;
        schema::migrate(&mut first).await?;
        drop(first);
        let committed = Arc::new(Notify::new());
        let (commands, rx) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer::new(connect.clone(), options.max_batch_events, committed.clone());
        tokio::spawn(writer.run(rx));
        let readers = ReaderPool {
            connect: connect.clone(),
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(options.readers.max(1)),
            max_idle: options.readers.max(1),
        };
        let (live_sender, live) = broadcast::channel(options.live_buffer_batches.max(16));
        let (stop_tail, stopped) = tokio::sync::watch::channel(false);
        let store = PostgresStore {
            inner: Arc::new(Inner {
                commands,
                readers,
                live: Mutex::new(live),
                max_event_bytes: options.max_event_bytes,
                stop_tail,
            }),
        };
        let start = store.head().await?.map_or(0, |p| p.commit);
        tail::spawn(
            store.clone(),
            connect,
            start,
            live_sender,
            committed,
            stopped,
        );
        Ok(store)
    }

    /// Up to `max_count` events after the sequence number `after`, in order.
    async fn read_all_after(
        &self,
        after: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let conn = self.inner.readers.get().await?;
        let rows = conn
            .client
            .query(
                &conn.read_all,
                &[&(after.min(i64::MAX as u64) as i64), &(max_count as i64)],
            )
            .await
            .map_err(schema::store_error)?;
        let mut decoder = schema::RowDecoder::default();
        rows.iter().map(|r| decoder.decode(r)).collect()
    }
}

/// Opens connections to one database: with a timeout, the connection driven on its own task,
/// and durable commits asked for explicitly (a server configured otherwise must not weaken an
/// acknowledgement).
pub(crate) struct Connector {
    config: tokio_postgres::Config,
    timeout: Duration,
    tls: tls::MakeRustls,
}

impl Connector {
    async fn open(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                tls::RustlsStream<tokio_postgres::Socket>,
            >,
        ),
        StoreError,
    > {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.config.connect(self.tls.clone()))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "PostgreSQL at {} did not answer within {timeout:?}",
                    describe_hosts(&self.config)
                ))
            })?
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {}: {}",
                    describe_hosts(&self.config),
                    schema::describe(&e)
                ))
            })
    }

    /// A connection for queries and appends.
    pub(crate) async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.open().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        // Every query of the store is an index lookup or an index range scan. The planner's
        // statistics of a log that grows by thousands of rows a second lag behind it (a
        // statement prepared while the table looked empty kept a sequential scan: measured,
        // appends at 256 writers ran at an eighth of plain inserts), so it is told not to scan.
        client
            .batch_execute(
                "SET synchronous_commit = on; SET application_name = 'ichigen'; \
                 SET enable_seqscan = off",
            )
            .await
            .map_err(schema::store_error)?;
        Ok(client)
    }

    /// A connection that hands its notifications to the caller: one item per notification,
    /// the channel closing when the connection ends.
    pub(crate) async fn connect_listening(
        &self,
    ) -> Result<(Client, mpsc::UnboundedReceiver<()>), StoreError> {
        let (client, mut connection) = self.open().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if matches!(message, tokio_postgres::AsyncMessage::Notification(_))
                    && tx.send(()).is_err()
                {
                    return;
                }
            }
        });
        Ok((client, rx))
    }
}

/// `host:port` of the configured servers, for error lines (never the password).
fn describe_hosts(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A read connection and its statements, prepared once.
struct ReaderConn {
    client: Client,
    read_all: tokio_postgres::Statement,
    read_stream: tokio_postgres::Statement,
    head: tokio_postgres::Statement,
}

impl ReaderConn {
    async fn open(connect: &Connector) -> Result<Self, StoreError> {
        let client = connect.connect().await?;
        let all = format!(
            "SELECT {} FROM ichigen_events WHERE position > $1 ORDER BY position LIMIT $2",
            schema::COLUMNS
        );
        let stream = format!(
            "SELECT {} FROM ichigen_events WHERE stream = $1 AND revision >= $2 \
             ORDER BY revision LIMIT $3",
            schema::COLUMNS
        );
        let (read_all, read_stream, head) = futures::try_join!(
            client.prepare(&all),
            client.prepare(&stream),
            client.prepare("SELECT max(position) FROM ichigen_events"),
        )
        .map_err(schema::store_error)?;
        Ok(ReaderConn {
            client,
            read_all,
            read_stream,
            head,
        })
    }
}

/// Read connections, opened on demand and kept for reuse.
struct ReaderPool {
    connect: Arc<Connector>,
    idle: Mutex<Vec<ReaderConn>>,
    permits: tokio::sync::Semaphore,
    max_idle: usize,
}

/// A pooled read connection; back to the pool on drop unless it broke.
struct Pooled<'a> {
    pool: &'a ReaderPool,
    conn: Option<ReaderConn>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = ReaderConn;
    fn deref(&self) -> &ReaderConn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.client.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.pool.max_idle {
                    idle.push(conn);
                }
            }
        }
    }
}

impl ReaderPool {
    async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match pooled {
            Some(c) => c,
            None => ReaderConn::open(&self.connect).await?,
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

#[async_trait]
impl crate::store::follow::Log for PostgresStore {
    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_after(after, max).await
    }

    fn live(&self) -> broadcast::Receiver<Batch> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resubscribe()
    }
}

#[async_trait]
impl EventStore for PostgresStore {
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
        let conn = self.inner.readers.get().await?;
        let rows = conn
            .client
            .query(
                &conn.read_stream,
                &[
                    &stream,
                    &(from.min(i64::MAX as u64) as i64),
                    &(max_count.min(i64::MAX as usize) as i64),
                ],
            )
            .await
            .map_err(schema::store_error)?;
        let mut decoder = schema::RowDecoder::default();
        rows.iter().map(|r| decoder.decode(r)).collect()
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
        let head = match from {
            SubscribeFrom::End => self.head().await?.map_or(0, |p| p.commit),
            _ => 0,
        };
        let start = match from {
            SubscribeFrom::Start => 0,
            SubscribeFrom::After(p) => p.commit,
            SubscribeFrom::End => head,
        };
        Ok(crate::store::follow::spawn(self.clone(), start, filter))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let conn = self.inner.readers.get().await?;
        let head: Option<i64> = conn
            .client
            .query_one(&conn.head, &[])
            .await
            .map_err(schema::store_error)?
            .get(0);
        Ok(head.map(|p| Position::sequence(p as u64)))
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
        let _ = self.inner.stop_tail.send(true);
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
