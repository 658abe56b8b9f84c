//! The event store port: the one interface every backend honours (design.md, "Event store
//! semantics"), and the shared pieces of its contract.
//!
//! * [`embedded`]: SQLite in WAL mode with a group-committing single writer; the default.
//! * [`kurrent`]: EventStoreDB / KurrentDB over gRPC, for clusters.
//! * [`postgres`]: PostgreSQL, one database shared by many processes.
//!
//! Both pass the same conformance suite (`tests/src/conformance.rs`).

pub mod embedded;
mod follow;
pub mod kurrent;
pub mod postgres;
mod queued;

use crate::envelope::{NewEvent, RecordedEvent};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the appender believes about the stream before its append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this revision.
    Exact(u64),
}

impl ExpectedRevision {
    /// The expectation that holds for a stream whose last revision is `current` (`None`: no
    /// stream), i.e. what a handler that just loaded the stream passes.
    pub fn after(current: Option<u64>) -> Self {
        match current {
            Some(r) => ExpectedRevision::Exact(r),
            None => ExpectedRevision::NoStream,
        }
    }

    /// Whether a stream whose last revision is `current` satisfies this expectation.
    pub fn is_met_by(self, current: Option<u64>) -> bool {
        match (self, current) {
            (ExpectedRevision::Any, _) => true,
            (ExpectedRevision::NoStream, None) => true,
            (ExpectedRevision::StreamExists, Some(_)) => true,
            (ExpectedRevision::Exact(e), Some(c)) => e == c,
            _ => false,
        }
    }
}

/// A point in the total order of all events.
///
/// KurrentDB addresses `$all` by a (commit, prepare) pair of log positions; the embedded store
/// uses its gapless sequence number for both. Positions compare by commit, then prepare.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub commit: u64,
    pub prepare: u64,
}

impl Position {
    /// Before the first event.
    pub const START: Position = Position {
        commit: 0,
        prepare: 0,
    };

    /// The position of the `seq`-th event of the embedded store.
    pub const fn sequence(seq: u64) -> Self {
        Position {
            commit: seq,
            prepare: seq,
        }
    }
}

/// Text form `commit.prepare` (or just `n` when both are equal), used in HTTP headers, GraphQL
/// and checkpoints; clients treat it as opaque.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == self.prepare {
            write!(f, "{}", self.commit)
        } else {
            write!(f, "{}.{}", self.commit, self.prepare)
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a store position (expected `n` or `commit.prepare`)")]
pub struct BadPosition(pub String);

impl FromStr for Position {
    type Err = BadPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(s.to_string());
        match s.split_once('.') {
            Some((c, p)) => Ok(Position {
                commit: c.parse().map_err(|_| bad())?,
                prepare: p.parse().map_err(|_| bad())?,
            }),
            None => Ok(Position::sequence(s.parse().map_err(|_| bad())?)),
        }
    }
}

/// The result of a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Revision of the last event now in the stream: pass it as `Exact` to append next.
    pub next_expected: u64,
    /// Global position of the last event written: a client that waits for a projection to
    /// reach it reads its own write.
    pub position: Position,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "wrong expected revision on stream {stream}: expected {expected:?}, actual {actual:?}"
    )]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedRevision,
        /// The stream's last revision (`None`: no stream).
        actual: Option<u64>,
    },
    #[error(transparent)]
    InvalidStreamName(#[from] crate::ids::StreamNameError),
    #[error("an append must carry at least one event (stream {0})")]
    EmptyAppend(String),
    #[error("event id {id} appears twice in one append to {stream}")]
    DuplicateIdInAppend { stream: String, id: uuid::Uuid },
    #[error("event id {id} is already used in stream {existing_stream}, not {stream}")]
    EventIdInOtherStream {
        id: uuid::Uuid,
        stream: String,
        existing_stream: String,
    },
    #[error("event of {size} bytes is larger than the store accepts ({limit} bytes)")]
    EventTooLarge { size: usize, limit: usize },
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("data directory {path} is in use by another process")]
    Locked { path: String },
    #[error("event store data is corrupt or not an Ichigen store: {0}")]
    Corrupt(String),
    #[error("event store I/O failed: {0}")]
    Io(String),
    #[error("the event store is shut down")]
    Closed,
}

impl StoreError {
    pub fn is_wrong_expected_version(&self) -> bool {
        matches!(self, StoreError::WrongExpectedVersion { .. })
    }
}

/// Which events a subscription delivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SubscriptionFilter {
    /// Every event.
    #[default]
    All,
    /// Events of streams in these categories (`inventory` matches `inventory-…`).
    Categories(Vec<String>),
    /// Events whose type starts with one of these prefixes (`StockReceived` matches every
    /// version of it). Prefixes, because that is what KurrentDB filters by server side.
    EventTypePrefixes(Vec<String>),
}

impl SubscriptionFilter {
    pub fn categories<S: Into<String>>(cats: impl IntoIterator<Item = S>) -> Self {
        SubscriptionFilter::Categories(cats.into_iter().map(Into::into).collect())
    }

    pub fn event_types<S: Into<String>>(prefixes: impl IntoIterator<Item = S>) -> Self {
        SubscriptionFilter::EventTypePrefixes(prefixes.into_iter().map(Into::into).collect())
    }

    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        match self {
            SubscriptionFilter::All => true,
            SubscriptionFilter::Categories(cats) => {
                let category = crate::ids::category_of(stream);
                cats.iter().any(|c| c == category)
            }
            SubscriptionFilter::EventTypePrefixes(prefixes) => {
                prefixes.iter().any(|p| event_type.starts_with(p.as_str()))
            }
        }
    }
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// From the first event ever written.
    Start,
    /// From the first event after this position (a checkpoint).
    After(Position),
    /// Only events written from now on.
    End,
}

/// What a subscription delivers.
#[derive(Clone, Debug)]
pub enum SubscriptionItem {
    /// The next matching event.
    Event(RecordedEvent),
    /// Every matching event up to this position has been delivered: the subscription scanned
    /// past events its filter skips. A filtered consumer advances its own position by it
    /// (read-your-writes waits, stored checkpoints) while nothing it takes is written; without
    /// it, a read model would stand still at its last matching event, below the store's head.
    Checkpoint(Position),
}

/// A catch-up subscription: first the history, then live events, with no gap and no duplicate
/// between the two. Ends with an error item if the backend fails; dropping it unsubscribes.
///
/// Besides events it carries [`SubscriptionItem::Checkpoint`]s: the embedded store sends one
/// after each page or committed batch it scanned whose last events the filter skipped (and so
/// at the end of the catch-up), KurrentDB after every filter window the server scanned (and
/// when the subscription caught up). A checkpoint is never below an event delivered before it.
/// [`Subscription::next`] passes them over, for consumers that only want events;
/// [`Subscription::next_item`] hands them out.
pub struct Subscription {
    rx: mpsc::Receiver<Result<SubscriptionItem, StoreError>>,
}

impl Subscription {
    /// Backends build a subscription from the receiving end of their delivery channel.
    pub fn from_channel(rx: mpsc::Receiver<Result<SubscriptionItem, StoreError>>) -> Self {
        Subscription { rx }
    }

    /// The next event (checkpoints are passed over); `None` when the store is shut down.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            match self.rx.recv().await? {
                Ok(SubscriptionItem::Event(e)) => return Some(Ok(e)),
                Ok(SubscriptionItem::Checkpoint(_)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next event if one is ready now (lets consumers apply what is ready as one batch);
    /// checkpoints are passed over.
    pub fn try_next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            match self.rx.try_recv().ok()? {
                Ok(SubscriptionItem::Event(e)) => return Some(Ok(e)),
                Ok(SubscriptionItem::Checkpoint(_)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next event or checkpoint; `None` when the store is shut down.
    pub async fn next_item(&mut self) -> Option<Result<SubscriptionItem, StoreError>> {
        self.rx.recv().await
    }

    /// The next event or checkpoint if one is ready now.
    pub fn try_next_item(&mut self) -> Option<Result<SubscriptionItem, StoreError>> {
        self.rx.try_recv().ok()
    }
}

/// The port. Every method is cancel-safe in the sense that dropping the future never leaves a
/// half-written append: an append is either acknowledged or not, and a retry with the same
/// event ids is deduplicated.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if `expected` holds. Re-appending events whose
    /// ids are already at that place in the stream succeeds without writing them again.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Up to `max_count` events of `stream` from revision `from` on, in order. A stream that
    /// does not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `max_count` events of all streams strictly after `after` (`None`: from the start),
    /// in global order.
    async fn read_all(
        &self,
        after: Option<Position>,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// A catch-up subscription over all streams.
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: SubscriptionFilter,
    ) -> Result<Subscription, StoreError>;

    /// Position of the last event written, `None` for an empty store.
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// Whether the store takes appends now (what readiness reports): `Err` while it cannot,
    /// e.g. an embedded store whose disk is full or failing, or an unreachable server. By
    /// default, whether it answers [`EventStore::head`].
    async fn health(&self) -> Result<(), StoreError> {
        self.head().await.map(|_| ())
    }

    /// Flushes and closes; further calls fail with [`StoreError::Closed`].
    async fn shutdown(&self);

    /// `embedded` or `kurrentdb`, for logs and `/health`.
    fn backend_name(&self) -> &'static str;
}

/// Shared handle used everywhere.
pub type DynEventStore = Arc<dyn EventStore>;

/// Reads a whole stream (paging through it).
pub async fn read_whole_stream(
    store: &dyn EventStore,
    stream: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 4096;
    let mut out = Vec::new();
    loop {
        let page = store.read_stream(stream, out.len() as u64, PAGE).await?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// Checks what every backend checks before an append reaches it.
pub(crate) fn validate_append(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    crate::ids::validate_stream_name(stream)?;
    if events.is_empty() {
        return Err(StoreError::EmptyAppend(stream.to_string()));
    }
    if events.len() > 1 {
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        for e in events {
            if !seen.insert(e.id) {
                return Err(StoreError::DuplicateIdInAppend {
                    stream: stream.to_string(),
                    id: e.id,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_revision_semantics() {
        use ExpectedRevision::*;
        assert!(Any.is_met_by(None) && Any.is_met_by(Some(3)));
        assert!(NoStream.is_met_by(None) && !NoStream.is_met_by(Some(0)));
        assert!(StreamExists.is_met_by(Some(0)) && !StreamExists.is_met_by(None));
        assert!(Exact(2).is_met_by(Some(2)) && !Exact(2).is_met_by(Some(3)));
        assert!(!Exact(0).is_met_by(None));
        assert_eq!(ExpectedRevision::after(None), NoStream);
        assert_eq!(ExpectedRevision::after(Some(4)), Exact(4));
    }

    #[test]
    fn positions_round_trip_through_text_and_order() {
        for p in [
            Position::sequence(42),
            Position {
                commit: 10,
                prepare: 7,
            },
        ] {
            assert_eq!(p.to_string().parse::<Position>(), Ok(p));
        }
        assert!("x".parse::<Position>().is_err());
        assert!(Position::sequence(2) > Position::sequence(1));
        assert!(
            Position {
                commit: 2,
                prepare: 0
            } > Position {
                commit: 1,
                prepare: 9
            }
        );
    }

    #[test]
    fn filters_match_category_or_type_prefix() {
        let f = SubscriptionFilter::categories(["inventory"]);
        assert!(f.matches("inventory-SKU1@S1", "StockReceived.v1"));
        assert!(!f.matches("order-1", "OrderPlaced.v1"));
        let f = SubscriptionFilter::event_types(["Stock"]);
        assert!(f.matches("inventory-x", "StockReceived.v1"));
        assert!(!f.matches("inventory-x", "Reserved.v1"));
        assert!(SubscriptionFilter::All.matches("a", "b"));
    }
}
