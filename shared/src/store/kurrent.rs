//! KurrentDB / EventStoreDB backend of the event store port, over gRPC with the `kurrentdb`
//! client.
//!
//! How the port maps onto the server:
//!
//! * A stream of the port is a KurrentDB stream of the same name; revisions are KurrentDB stream
//!   revisions and positions are `$all` (commit, prepare) pairs, unchanged.
//! * Every event is written with the caller's event id, so KurrentDB's own idempotency check makes
//!   a retried append a no-op instead of a duplicate.
//! * The envelope travels as the event's custom metadata, a JSON object whose `$correlationId` and
//!   `$causationId` keys are the ones KurrentDB's system projections (`$by_correlation_id`) read.
//! * `$all` also holds the server's own events (stream names and event types starting with `$`:
//!   projection links, statistics, settings). The port only ever shows user events, so reads,
//!   `head` and subscriptions filter them out, server side where the protocol allows and client
//!   side always.

use super::{
    validate_append, AppendResult, EventStore, ExpectedRevision, Position, StoreError,
    SubscribeFrom, Subscription, SubscriptionFilter, SubscriptionItem,
};
use crate::auth::Actor;
use crate::envelope::{Metadata, NewEvent, RecordedEvent};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use kurrentdb as kdb;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Largest append we send in one request. The server refuses requests over its maximum append
/// size (1 MiB by default); staying at 1,000,000 bytes of payload leaves room for the gRPC and
/// protobuf framing our estimate does not count.
pub const MAX_APPEND_BYTES: usize = 1_000_000;

/// What one event costs in a request besides its data, metadata and type: id, content type,
/// protobuf field tags and lengths. An over-estimate, so that a planned chunk never exceeds the
/// server's limit.
pub const EVENT_OVERHEAD_BYTES: usize = 100;

/// Capacity of a subscription's delivery channel: enough to absorb a burst while the consumer
/// works, small enough that a stalled consumer applies back-pressure to the gRPC stream instead
/// of buffering the whole history in memory.
const SUBSCRIPTION_BUFFER: usize = 1024;

/// How often the client re-subscribes after the server drops a subscription before the
/// subscription ends with an error. Bounded rather than forever so that a persistent failure
/// (server gone for good, position rejected) reaches the consumer, which can resubscribe from its
/// checkpoint, instead of being retried silently.
const SUBSCRIPTION_RETRY_LIMIT: usize = 10;

/// Pause between those re-subscription attempts.
const SUBSCRIPTION_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Events per page when `head` scans `$all` backwards for the last user event.
const HEAD_PAGE: usize = 16;

/// The KurrentDB / EventStoreDB backend.
///
/// Cheap to share behind an `Arc`: the underlying client multiplexes every call over one gRPC
/// connection and reconnects (or rediscovers the leader of a cluster) by itself.
pub struct KurrentStore {
    client: kdb::Client,
    /// The connection string with any password masked, for error messages and logs.
    url: String,
    closed: AtomicBool,
    /// Flipped to `true` by [`EventStore::shutdown`]; every subscription task watches it and
    /// ends, so that its consumer sees the end of the subscription.
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for KurrentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KurrentStore")
            .field("url", &self.url)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl KurrentStore {
    /// Connects to the server at `url` (`esdb://host:2113?tls=false`, `kurrentdb://…`,
    /// `esdb+discover://…` for a cluster) and checks that it answers.
    ///
    /// The client itself connects lazily and would only fail at the first request, possibly after
    /// a long discovery. Probing here, within `connect_timeout`, turns a wrong address or a server
    /// that is down into one clear error at start-up rather than a hang or a failure on the first
    /// command. The probe reads the last event of `$all`, which is what subscriptions need the
    /// right to do anyway.
    pub async fn connect(url: &str, connect_timeout: Duration) -> Result<KurrentStore, StoreError> {
        let shown = redact_credentials(url);
        let settings: kdb::ClientSettings =
            url.parse().map_err(|e: kdb::ClientSettingsParseError| {
                // With a URL syntax error the parse error's message is the whole connection string,
                // password included: show only the syntax error then.
                let why = match e.error() {
                    Some(syntax) => syntax.to_string(),
                    None => e.message().to_string(),
                };
                StoreError::Unavailable(format!(
                    "invalid KurrentDB connection string {shown}: {why}"
                ))
            })?;
        let client = kdb::Client::new(settings).map_err(|e| {
            StoreError::Unavailable(format!("cannot create a KurrentDB client for {shown}: {e}"))
        })?;

        let probe = async {
            let options = kdb::ReadAllOptions::default()
                .position(kdb::StreamPosition::End)
                .max_count(1)
                .deadline(connect_timeout);
            let mut read = client.read_all(&options).await?;
            read.next().await.map(|_| ())
        };
        match tokio::time::timeout(connect_timeout, probe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot reach KurrentDB at {shown}: {e}"
                )))
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot reach KurrentDB at {shown}: no answer within {connect_timeout:?}"
                )))
            }
        }

        let (shutdown, _) = watch::channel(false);
        Ok(KurrentStore {
            client,
            url: shown,
            closed: AtomicBool::new(false),
            shutdown,
        })
    }

    fn ensure_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn unavailable(&self, operation: &str, e: kdb::Error) -> StoreError {
        let hint = match e {
            kdb::Error::AccessDenied => {
                " (the connection string's user lacks the right; reading $all needs an admin or \
                 ops user)"
            }
            _ => "",
        };
        StoreError::Unavailable(format!(
            "KurrentDB at {}: {operation} failed: {e}{hint}",
            self.url
        ))
    }

    /// Appends one planned chunk.
    async fn append_chunk(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<kdb::EventData>,
    ) -> Result<kdb::WriteResult, StoreError> {
        let options = kdb::AppendToStreamOptions::default().stream_state(stream_state(expected));
        self.client
            .append_to_stream(stream, &options, events)
            .await
            .map_err(|e| match wrong_expected_version(stream, expected, &e) {
                Some(conflict) => conflict,
                None => match e {
                    kdb::Error::ResourceDeleted => StoreError::Unavailable(format!(
                        "KurrentDB at {}: stream {stream} has been deleted on the server",
                        self.url
                    )),
                    other => self.unavailable(&format!("append to {stream}"), other),
                },
            })
    }

    /// The `$all` position of `stream`'s event at `revision`, for an append the server reports
    /// without a position (an idempotent replay of events already written).
    async fn position_of(
        &self,
        stream: &str,
        revision: u64,
    ) -> Result<Option<Position>, StoreError> {
        let events = self.read_stream(stream, revision, 1).await?;
        Ok(events
            .first()
            .filter(|e| e.revision == revision && e.position != UNKNOWN_POSITION)
            .map(|e| e.position))
    }
}

#[async_trait]
impl EventStore for KurrentStore {
    /// Appends `events`, split into several requests when they are too big for one.
    ///
    /// A split append is **not atomic across chunks**: the chunks are chained by expected
    /// revision (the first with the caller's expectation, each next one with `Exact` of the
    /// revision the previous one ended at), so no other writer can slip in between, but a failure
    /// after the first chunk leaves a prefix of the events written. Retrying the same append with
    /// the same event ids completes it: KurrentDB recognises the ids already written at that place
    /// in the stream and acknowledges them without writing them again. (Under
    /// `ExpectedRevision::Any` that recognition is best effort on the server's side.) Appends that
    /// fit in one request, which is every append of a normal command, stay atomic.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.ensure_open()?;
        validate_append(stream, &events)?;

        let mut encoded = Vec::with_capacity(events.len());
        let mut sizes = Vec::with_capacity(events.len());
        for event in &events {
            let (data, size) = encode_event(event)?;
            encoded.push(data);
            sizes.push(size);
        }
        let chunks = plan_chunks(&sizes, MAX_APPEND_BYTES)?;

        let mut remaining = encoded.into_iter();
        let mut expectation = expected;
        let mut last = None;
        for len in chunks {
            let chunk: Vec<kdb::EventData> = remaining.by_ref().take(len).collect();
            let written = self.append_chunk(stream, expectation, chunk).await?;
            expectation = ExpectedRevision::Exact(written.next_expected_version);
            last = Some(written);
        }
        // `plan_chunks` returns at least one chunk for a non-empty append, which
        // `validate_append` guarantees; this is only the typed way of saying so.
        let written = last.ok_or_else(|| StoreError::EmptyAppend(stream.to_string()))?;

        let next_expected = written.next_expected_version;
        let mut position = from_kdb_position(written.position);
        if position == Position::START {
            // The server answers an idempotent replay without a position; look up where the last
            // event really is, so that a caller waiting for projections to reach it does not
            // wait for nothing.
            if let Some(found) = self.position_of(stream, next_expected).await? {
                position = found;
            }
        }
        Ok(AppendResult {
            next_expected,
            position,
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.ensure_open()?;
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let options = kdb::ReadStreamOptions::default()
            .position(kdb::StreamPosition::Position(from))
            .forwards()
            .max_count(max_count);
        let operation = || format!("read of stream {stream}");

        let mut read = match self.client.read_stream(stream, &options).await {
            Ok(read) => read,
            Err(e) if is_missing_stream(&e) => return Ok(Vec::new()),
            Err(e) => return Err(self.unavailable(&operation(), e)),
        };
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(resolved)) => {
                    if let Some(event) = resolved.event {
                        out.push(decode_event(event));
                    }
                    if out.len() >= max_count {
                        return Ok(out);
                    }
                }
                Ok(None) => return Ok(out),
                Err(e) if is_missing_stream(&e) => return Ok(Vec::new()),
                Err(e) => return Err(self.unavailable(&operation(), e)),
            }
        }
    }

    /// Pages through `$all` until `max_count` user events are collected or the log ends.
    ///
    /// KurrentDB reads `$all` *from* a position inclusively, so the event at `after` comes back
    /// first and is skipped; the server-side filter drops most system events and the client-side
    /// check the rest.
    async fn read_all(
        &self,
        after: Option<Position>,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.ensure_open()?;
        let mut out = Vec::new();
        if max_count == 0 {
            return Ok(out);
        }
        let mut cursor = after;
        loop {
            let wanted = max_count - out.len();
            // One more than wanted when starting at a position: the event at it comes back again.
            let page = if cursor.is_some() {
                wanted.saturating_add(1)
            } else {
                wanted
            };
            let start = match cursor {
                Some(p) => kdb::StreamPosition::Position(to_kdb_position(p)),
                None => kdb::StreamPosition::Start,
            };
            let options = kdb::ReadAllOptions::default()
                .position(start)
                .forwards()
                .filter(exclude_system_events())
                .max_count(page);
            let mut read = self
                .client
                .read_all(&options)
                .await
                .map_err(|e| self.unavailable("read of $all", e))?;

            let mut received = 0usize;
            let mut fresh = 0usize;
            while let Some(resolved) = read
                .next()
                .await
                .map_err(|e| self.unavailable("read of $all", e))?
            {
                received += 1;
                let Some(event) = resolved.event else {
                    continue;
                };
                let position = from_kdb_position(event.position);
                if cursor.is_some_and(|c| position <= c) {
                    continue;
                }
                cursor = Some(position);
                fresh += 1;
                if is_system(event.stream_id(), &event.event_type) {
                    continue;
                }
                out.push(decode_event(event));
                if out.len() >= max_count {
                    return Ok(out);
                }
            }
            // A short page means the end of the log; a page of nothing new means the same even if
            // the server answered oddly, and guarantees the loop ends.
            if received < page || fresh == 0 {
                return Ok(out);
            }
        }
    }

    /// A catch-up subscription to `$all` with a server-side filter.
    ///
    /// The `kurrentdb` client re-subscribes by itself after a dropped connection (bounded by
    /// [`SUBSCRIPTION_RETRY_LIMIT`]), from the last event it delivered; a resubscription may hand
    /// that event over again, so the forwarding task drops every event at or before the last one
    /// it delivered. System events are never delivered; the server's filter checkpoints (one
    /// per window of scanned events) become [`SubscriptionItem::Checkpoint`]s.
    ///
    /// Waits for the server to confirm the subscription, so that an unreachable server or a
    /// refused start position fails here rather than as the first item.
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: SubscriptionFilter,
    ) -> Result<Subscription, StoreError> {
        self.ensure_open()?;
        let (start, last_delivered) = match from {
            SubscribeFrom::Start => (kdb::StreamPosition::Start, None),
            SubscribeFrom::End => (kdb::StreamPosition::End, None),
            SubscribeFrom::After(p) => (kdb::StreamPosition::Position(to_kdb_position(p)), Some(p)),
        };
        let options = kdb::SubscribeToAllOptions::default()
            .position(start)
            .filter(ServerFilter::for_subscription(&filter).to_kurrent())
            .retry_options(
                kdb::RetryOptions::default()
                    .retry_limit(SUBSCRIPTION_RETRY_LIMIT)
                    .retry_delay(SUBSCRIPTION_RETRY_DELAY),
            );
        let mut subscription = self.client.subscribe_to_all(&options).await;

        // The client subscribes lazily, at the first poll: poll until the confirmation.
        let mut first = None;
        loop {
            match subscription.next_subscription_event().await {
                Ok(kdb::SubscriptionEvent::Confirmed(_)) => break,
                Ok(kdb::SubscriptionEvent::EventAppeared(event)) => {
                    first = Some(event);
                    break;
                }
                Ok(_) => continue,
                Err(e) => return Err(self.unavailable("subscription to $all", e)),
            }
        }

        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let task = Forwarder {
            subscription,
            filter,
            last_delivered,
            last_sent: last_delivered,
            tx,
            shutdown: self.shutdown.subscribe(),
            url: self.url.clone(),
        };
        tokio::spawn(task.run(first));
        Ok(Subscription::from_channel(rx))
    }

    /// Scans `$all` backwards for the last user event.
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.ensure_open()?;
        // Exclusive upper bound of the next page; `None`: the end of the log.
        let mut cursor: Option<Position> = None;
        loop {
            let start = match cursor {
                Some(p) => kdb::StreamPosition::Position(to_kdb_position(p)),
                None => kdb::StreamPosition::End,
            };
            let options = kdb::ReadAllOptions::default()
                .position(start)
                .backwards()
                .filter(exclude_system_events())
                .max_count(HEAD_PAGE);
            let mut read = self
                .client
                .read_all(&options)
                .await
                .map_err(|e| self.unavailable("read of $all", e))?;

            let mut received = 0usize;
            let mut fresh = 0usize;
            while let Some(resolved) = read
                .next()
                .await
                .map_err(|e| self.unavailable("read of $all", e))?
            {
                received += 1;
                let Some(event) = resolved.event else {
                    continue;
                };
                let position = from_kdb_position(event.position);
                if cursor.is_some_and(|c| position >= c) {
                    continue;
                }
                cursor = Some(position);
                fresh += 1;
                if !is_system(event.stream_id(), &event.event_type) {
                    return Ok(Some(position));
                }
            }
            if received < HEAD_PAGE || fresh == 0 {
                return Ok(None);
            }
        }
    }

    /// Nothing to flush: every acknowledged append is already durable on the server. Marks the
    /// store closed and ends the running subscriptions.
    async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
    }

    fn backend_name(&self) -> &'static str {
        "kurrentdb"
    }
}

/// The task behind one [`Subscription`]: polls the client's subscription and forwards decoded
/// user events into the bounded channel.
struct Forwarder {
    subscription: kdb::Subscription,
    filter: SubscriptionFilter,
    last_delivered: Option<Position>,
    /// The last event or checkpoint handed to the consumer.
    last_sent: Option<Position>,
    tx: mpsc::Sender<Result<SubscriptionItem, StoreError>>,
    shutdown: watch::Receiver<bool>,
    url: String,
}

impl Forwarder {
    /// Runs until the consumer drops its end, the store shuts down or the subscription fails
    /// (after the client's own retries); a failure is forwarded as one error item.
    async fn run(mut self, first: Option<kdb::ResolvedEvent>) {
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            // A dropped store (no sender left) is not a shutdown: keep serving the consumer.
            if shutdown.wait_for(|closed| *closed).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(stopped);

        let mut pending = first;
        loop {
            let resolved = match pending.take() {
                Some(resolved) => resolved,
                None => tokio::select! {
                    _ = &mut stopped => return,
                    _ = self.tx.closed() => return,
                    next = self.subscription.next_subscription_event() => match next {
                        Ok(kdb::SubscriptionEvent::EventAppeared(resolved)) => resolved,
                        // The server scanned up to here: every matching event up to it was
                        // delivered (a checkpoint is the position of the last event scanned).
                        Ok(kdb::SubscriptionEvent::Checkpoint(position)) => {
                            let position = from_kdb_position(position);
                            if !passed(&mut self.last_delivered, &mut self.last_sent, position) {
                                continue;
                            }
                            let item = SubscriptionItem::Checkpoint(position);
                            tokio::select! {
                                sent = self.tx.send(Ok(item)) => if sent.is_err() { return },
                                _ = &mut stopped => return,
                            }
                            continue;
                        }
                        // Confirmations, caught-up/fell-behind notices. (A caught-up notice's
                        // position may be that of an event still to come: not a checkpoint.)
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!(url = %self.url, error = %e, "KurrentDB subscription to $all ended");
                            let error = StoreError::Unavailable(format!(
                                "KurrentDB at {}: subscription to $all failed: {e}",
                                self.url
                            ));
                            tokio::select! {
                                _ = self.tx.send(Err(error)) => {}
                                _ = &mut stopped => {}
                            }
                            return;
                        }
                    },
                },
            };
            let Some(event) = resolved.event else {
                continue;
            };
            let position = from_kdb_position(event.position);
            if !admit(
                &mut self.last_delivered,
                position,
                event.stream_id(),
                &event.event_type,
                &self.filter,
            ) {
                continue;
            }
            self.last_sent = Some(position);
            let decoded = SubscriptionItem::Event(decode_event(event));
            tokio::select! {
                sent = self.tx.send(Ok(decoded)) => if sent.is_err() { return },
                _ = &mut stopped => return,
            }
        }
    }
}

/// Whether a subscription delivers the event at `position`, advancing `last_delivered` past
/// everything it has seen (delivered or filtered) so that a redelivery after a resubscription is
/// recognised.
fn admit(
    last_delivered: &mut Option<Position>,
    position: Position,
    stream: &str,
    event_type: &str,
    filter: &SubscriptionFilter,
) -> bool {
    if last_delivered.is_some_and(|last| position <= last) {
        return false;
    }
    *last_delivered = Some(position);
    !is_system(stream, event_type) && filter.matches(stream, event_type)
}

/// Whether a server checkpoint at `position` is news to the consumer, i.e. beyond `last_sent`
/// (the last event or checkpoint it was given). Either way `last_delivered` moves up to it:
/// every matching event up to it was delivered, so a redelivery after a resubscription is
/// dropped.
fn passed(
    last_delivered: &mut Option<Position>,
    last_sent: &mut Option<Position>,
    position: Position,
) -> bool {
    if last_delivered.is_none_or(|last| position > last) {
        *last_delivered = Some(position);
    }
    if last_sent.is_some_and(|last| position <= last) {
        return false;
    }
    *last_sent = Some(position);
    true
}

/// KurrentDB's own events: projection links and state, settings, scavenges, users. Their streams
/// and types start with `$`, which the port forbids in user stream names.
fn is_system(stream: &str, event_type: &str) -> bool {
    stream.starts_with('$') || event_type.starts_with('$')
}

/// The server-side filter of reads: every event whose type does not start with `$`.
fn exclude_system_events() -> kdb::SubscriptionFilter {
    kdb::SubscriptionFilter::on_event_type().exclude_system_events()
}

/// The server-side part of a [`SubscriptionFilter`], kept as plain data so that it can be
/// checked without a server. It is a coarse pre-selection that saves bandwidth; the exact port
/// semantics ([`SubscriptionFilter::matches`] and the system-event rule) are applied again on
/// the client.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ServerFilter {
    /// Events of streams whose name starts with one of these prefixes.
    StreamPrefixes(Vec<String>),
    /// Events whose type starts with one of these prefixes.
    EventTypePrefixes(Vec<String>),
    /// Events whose type does not start with `$`.
    ExcludeSystemEvents,
}

impl ServerFilter {
    fn for_subscription(filter: &SubscriptionFilter) -> Self {
        match filter {
            // A stream of category `c` is named `c-…`. (A stream named exactly `c`, without a
            // dash, is not matched server side; Ichigen names every stream `category-id`.)
            SubscriptionFilter::Categories(categories) if !categories.is_empty() => {
                ServerFilter::StreamPrefixes(categories.iter().map(|c| format!("{c}-")).collect())
            }
            SubscriptionFilter::EventTypePrefixes(prefixes) if !prefixes.is_empty() => {
                ServerFilter::EventTypePrefixes(prefixes.clone())
            }
            // `All`, and empty lists, which the server would not accept as a filter and which
            // the client-side check turns into "nothing".
            _ => ServerFilter::ExcludeSystemEvents,
        }
    }

    fn to_kurrent(&self) -> kdb::SubscriptionFilter {
        match self {
            ServerFilter::StreamPrefixes(prefixes) => prefixes
                .iter()
                .fold(kdb::SubscriptionFilter::on_stream_name(), |f, p| {
                    f.add_prefix(p)
                }),
            ServerFilter::EventTypePrefixes(prefixes) => prefixes
                .iter()
                .fold(kdb::SubscriptionFilter::on_event_type(), |f, p| {
                    f.add_prefix(p)
                }),
            ServerFilter::ExcludeSystemEvents => exclude_system_events(),
        }
    }
}

/// The port's expectation as the client's stream state.
fn stream_state(expected: ExpectedRevision) -> kdb::StreamState {
    match expected {
        ExpectedRevision::Any => kdb::StreamState::Any,
        ExpectedRevision::NoStream => kdb::StreamState::NoStream,
        ExpectedRevision::StreamExists => kdb::StreamState::StreamExists,
        ExpectedRevision::Exact(revision) => kdb::StreamState::StreamRevision(revision),
    }
}

/// The port's conflict error for the server's wrong-expected-version answer, if it is one.
fn wrong_expected_version(
    stream: &str,
    expected: ExpectedRevision,
    error: &kdb::Error,
) -> Option<StoreError> {
    match error {
        kdb::Error::WrongExpectedVersion { current, .. } => {
            Some(StoreError::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual: match current {
                    kdb::CurrentRevision::Current(revision) => Some(*revision),
                    kdb::CurrentRevision::NoStream => None,
                },
            })
        }
        _ => None,
    }
}

/// A stream that does not exist, or no longer does (soft-deleted or tombstoned), reads as empty.
fn is_missing_stream(error: &kdb::Error) -> bool {
    matches!(
        error,
        kdb::Error::ResourceNotFound | kdb::Error::ResourceDeleted
    )
}

/// What the server sends for an event whose `$all` position it does not report (every position
/// field -1 on the wire).
const UNKNOWN_POSITION: Position = Position {
    commit: u64::MAX,
    prepare: u64::MAX,
};

fn to_kdb_position(p: Position) -> kdb::Position {
    kdb::Position {
        commit: p.commit,
        prepare: p.prepare,
    }
}

fn from_kdb_position(p: kdb::Position) -> Position {
    Position {
        commit: p.commit,
        prepare: p.prepare,
    }
}

/// Splits an append into chunks that each fit in one request: returns the number of events of
/// each chunk, in order, greedily filling each up to `limit` bytes (`sizes` are the events'
/// encoded sizes, see [`encode_event`]).
///
/// Planned entirely before anything is written, so that an event too large for any request
/// fails the append up front rather than after earlier chunks were written.
pub(crate) fn plan_chunks(sizes: &[usize], limit: usize) -> Result<Vec<usize>, StoreError> {
    let mut chunks = Vec::new();
    let mut count = 0usize;
    let mut bytes = 0usize;
    for &size in sizes {
        if size > limit {
            return Err(StoreError::EventTooLarge { size, limit });
        }
        if count > 0 && bytes + size > limit {
            chunks.push(count);
            count = 0;
            bytes = 0;
        }
        count += 1;
        bytes += size;
    }
    if count > 0 {
        chunks.push(count);
    }
    Ok(chunks)
}

/// The envelope as stored in an event's custom metadata.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct WireMetadata {
    #[serde(rename = "$correlationId")]
    correlation_id: String,
    #[serde(rename = "$causationId", skip_serializing_if = "Option::is_none")]
    causation_id: Option<String>,
    /// [`Actor::to_compact`].
    actor: String,
    /// RFC 3339 with as many fractional digits as needed, so that it reads back identical.
    #[serde(rename = "occurredAt")]
    occurred_at: String,
}

fn encode_metadata(metadata: &Metadata) -> Result<Vec<u8>, StoreError> {
    let wire = WireMetadata {
        correlation_id: metadata.correlation_id.to_string(),
        causation_id: metadata.causation_id.map(|id| id.to_string()),
        actor: metadata.actor.to_compact(),
        occurred_at: metadata
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    };
    serde_json::to_vec(&wire)
        .map_err(|e| StoreError::Io(format!("cannot encode event metadata: {e}")))
}

/// Reads the envelope back, tolerating anything: events written by older versions, by other
/// tools or by hand must stay readable, so a missing or garbled field falls back to a neutral
/// value (nil correlation id, no causation, a SYSTEM actor, the server's creation time) instead
/// of failing the read.
fn decode_metadata(raw: &[u8], created: DateTime<Utc>) -> Metadata {
    let value: serde_json::Value = serde_json::from_slice(raw).unwrap_or(serde_json::Value::Null);
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| value.get(*k).and_then(serde_json::Value::as_str))
    };
    let uuid = |keys: &[&str]| text(keys).and_then(|t| Uuid::parse_str(t).ok());
    Metadata {
        correlation_id: uuid(&["$correlationId", "correlationId"]).unwrap_or(Uuid::nil()),
        causation_id: uuid(&["$causationId", "causationId"]),
        actor: Actor::from_compact(text(&["actor"]).unwrap_or("")),
        occurred_at: text(&["occurredAt"])
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(created),
    }
}

/// The event as the client sends it, and its size as counted by [`plan_chunks`]: data, metadata
/// and type plus [`EVENT_OVERHEAD_BYTES`].
fn encode_event(event: &NewEvent) -> Result<(kdb::EventData, usize), StoreError> {
    let metadata = encode_metadata(&event.metadata)?;
    let size = event.data.len() + metadata.len() + event.event_type.len() + EVENT_OVERHEAD_BYTES;
    let data = encode_data(&event.event_type, &event.data)
        .id(event.id)
        .metadata(metadata.into());
    Ok((data, size))
}

/// The payload with the JSON content type whenever that keeps its bytes.
///
/// The client only offers `EventData::json`, which serializes a value itself, and
/// `EventData::binary`, which stores bytes as they are but marks them as not JSON (so the
/// server's UI and JavaScript projections would not see them as JSON). Payloads come already
/// encoded and must read back byte for byte, so the payload is re-serialized in document order
/// and sent as JSON only if that gives back exactly the same bytes, which is the case for
/// everything `serde_json` wrote, i.e. every event of [`NewEvent::json`]. Anything else
/// (pretty-printed or hand-written JSON, non-JSON bytes) goes as binary, unchanged.
fn encode_data(event_type: &str, data: &[u8]) -> kdb::EventData {
    if let Ok(value) = serde_json::from_slice::<OrderedJson>(data) {
        if serde_json::to_vec(&value).is_ok_and(|again| again == data) {
            if let Ok(json) = kdb::EventData::json(event_type, &value) {
                return json;
            }
        }
    }
    kdb::EventData::binary(event_type, data.to_vec().into())
}

/// Decodes a recorded event into the port's type.
fn decode_event(event: kdb::RecordedEvent) -> RecordedEvent {
    let metadata = decode_metadata(&event.custom_metadata, event.created);
    RecordedEvent {
        id: event.id,
        stream: Arc::from(event.stream_id()),
        revision: event.revision,
        position: from_kdb_position(event.position),
        event_type: Arc::from(event.event_type.as_str()),
        data: Arc::from(&event.data[..]),
        metadata,
    }
}

/// Masks the password of a connection string (`esdb://user:secret@host` →
/// `esdb://user:***@host`), so that it can appear in errors and logs.
fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Connection strings have no path worth the name; the authority runs to the query.
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A JSON value that keeps object members in document order (and duplicate keys), unlike
/// `serde_json::Value` without the `preserve_order` feature; see [`encode_data`].
#[derive(Clone, Debug, PartialEq)]
enum OrderedJson {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl Serialize for OrderedJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OrderedJson::Null => serializer.serialize_unit(),
            OrderedJson::Bool(b) => serializer.serialize_bool(*b),
            OrderedJson::I64(n) => serializer.serialize_i64(*n),
            OrderedJson::U64(n) => serializer.serialize_u64(*n),
            OrderedJson::F64(n) => serializer.serialize_f64(*n),
            OrderedJson::String(s) => serializer.serialize_str(s),
            OrderedJson::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            OrderedJson::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedJsonVisitor)
    }
}

struct OrderedJsonVisitor;

impl<'de> Visitor<'de> for OrderedJsonVisitor {
    type Value = OrderedJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedJson, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OrderedJson::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedJson, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(OrderedJson::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use chrono::TimeZone;
    use std::time::Instant;

    fn metadata() -> Metadata {
        Metadata {
            correlation_id: Uuid::new_v4(),
            causation_id: Some(Uuid::new_v4()),
            actor: Actor {
                role: Role::StoreStaff,
                subject: "u-7".into(),
                store_id: Some("S1".into()),
            },
            occurred_at: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).single().unwrap()
                + chrono::Duration::nanoseconds(123_456_789),
        }
    }

    fn event(data: &[u8]) -> NewEvent {
        NewEvent {
            id: Uuid::new_v4(),
            event_type: "StockReceived.v1".into(),
            data: data.to_vec(),
            metadata: metadata(),
        }
    }

    fn created() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).single().unwrap()
    }

    #[test]
    fn expected_revisions_map_to_stream_states() {
        assert_eq!(stream_state(ExpectedRevision::Any), kdb::StreamState::Any);
        assert_eq!(
            stream_state(ExpectedRevision::NoStream),
            kdb::StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedRevision::StreamExists),
            kdb::StreamState::StreamExists
        );
        assert_eq!(
            stream_state(ExpectedRevision::Exact(7)),
            kdb::StreamState::StreamRevision(7)
        );
    }

    #[test]
    fn wrong_expected_version_maps_current_revision() {
        let err = kdb::Error::WrongExpectedVersion {
            expected: kdb::StreamState::StreamRevision(2),
            current: kdb::CurrentRevision::Current(5),
        };
        match wrong_expected_version("order-1", ExpectedRevision::Exact(2), &err) {
            Some(StoreError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            }) => {
                assert_eq!(stream, "order-1");
                assert_eq!(expected, ExpectedRevision::Exact(2));
                assert_eq!(actual, Some(5));
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = kdb::Error::WrongExpectedVersion {
            expected: kdb::StreamState::StreamExists,
            current: kdb::CurrentRevision::NoStream,
        };
        match wrong_expected_version("order-1", ExpectedRevision::StreamExists, &err) {
            Some(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, None),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            wrong_expected_version("s", ExpectedRevision::Any, &kdb::Error::ConnectionClosed)
                .is_none()
        );
    }

    #[test]
    fn missing_and_deleted_streams_read_as_empty() {
        assert!(is_missing_stream(&kdb::Error::ResourceNotFound));
        assert!(is_missing_stream(&kdb::Error::ResourceDeleted));
        assert!(!is_missing_stream(&kdb::Error::ConnectionClosed));
    }

    #[test]
    fn chunks_fill_greedily_up_to_the_limit() {
        assert_eq!(plan_chunks(&[10, 20, 30], 100).unwrap(), vec![3]);
        assert_eq!(plan_chunks(&[40, 40, 40, 40], 100).unwrap(), vec![2, 2]);
        // Exactly at the limit still fits.
        assert_eq!(plan_chunks(&[50, 50, 1], 100).unwrap(), vec![2, 1]);
        assert_eq!(plan_chunks(&[100, 100], 100).unwrap(), vec![1, 1]);
        assert_eq!(plan_chunks(&[], 100).unwrap(), Vec::<usize>::new());
        let sizes = [300_000; 10];
        let chunks = plan_chunks(&sizes, MAX_APPEND_BYTES).unwrap();
        assert_eq!(chunks, vec![3, 3, 3, 1]);
        assert_eq!(chunks.iter().sum::<usize>(), sizes.len());
    }

    #[test]
    fn an_event_larger_than_the_limit_is_refused_before_anything_is_planned() {
        match plan_chunks(&[10, 101, 10], 100) {
            Err(StoreError::EventTooLarge { size, limit }) => {
                assert_eq!((size, limit), (101, 100));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_big_append_is_split_into_chunks_under_the_server_limit() {
        let data = vec![b'x'; 400_000];
        let events: Vec<NewEvent> = (0..5)
            .map(|_| {
                let mut e = event(b"");
                e.data = data.clone();
                e
            })
            .collect();
        let sizes: Vec<usize> = events.iter().map(|e| encode_event(e).unwrap().1).collect();
        for &size in &sizes {
            assert!(size > 400_000 + EVENT_OVERHEAD_BYTES);
        }
        let chunks = plan_chunks(&sizes, MAX_APPEND_BYTES).unwrap();
        assert_eq!(chunks, vec![2, 2, 1]);

        let huge = {
            let mut e = event(b"");
            e.data = vec![b'x'; MAX_APPEND_BYTES];
            e
        };
        let (_, size) = encode_event(&huge).unwrap();
        assert!(matches!(
            plan_chunks(&[size], MAX_APPEND_BYTES),
            Err(StoreError::EventTooLarge {
                limit: MAX_APPEND_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn encoded_size_counts_data_metadata_type_and_overhead() {
        let e = event(br#"{"sku":"A","qty":3}"#);
        let (data, size) = encode_event(&e).unwrap();
        let metadata = encode_metadata(&e.metadata).unwrap();
        assert_eq!(
            size,
            e.data.len() + metadata.len() + e.event_type.len() + EVENT_OVERHEAD_BYTES
        );
        let shown = format!("{data:?}");
        assert!(
            shown.contains(&e.id.to_string()),
            "event id is set: {shown}"
        );
    }

    #[test]
    fn metadata_round_trips_through_its_json_form() {
        let m = metadata();
        let raw = encode_metadata(&m).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(json["$correlationId"], m.correlation_id.to_string());
        assert_eq!(json["$causationId"], m.causation_id.unwrap().to_string());
        assert_eq!(json["actor"], "STORE_STAFF:u-7@S1");
        assert_eq!(json["occurredAt"], "2024-05-06T07:08:09.123456789Z");
        assert_eq!(decode_metadata(&raw, created()), m);

        let mut no_cause = m.clone();
        no_cause.causation_id = None;
        let raw = encode_metadata(&no_cause).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(json.get("$causationId").is_none());
        assert_eq!(decode_metadata(&raw, created()), no_cause);
    }

    #[test]
    fn garbled_or_missing_metadata_still_decodes() {
        for raw in [&b""[..], b"not json", b"[]", b"{}", b"null"] {
            let m = decode_metadata(raw, created());
            assert_eq!(m.correlation_id, Uuid::nil());
            assert_eq!(m.causation_id, None);
            assert_eq!(m.actor.role, Role::System);
            assert_eq!(m.occurred_at, created());
        }
        let raw = br#"{"$correlationId":"nope","$causationId":7,"actor":"WEIRD","occurredAt":"yesterday"}"#;
        let m = decode_metadata(raw, created());
        assert_eq!(m.correlation_id, Uuid::nil());
        assert_eq!(m.causation_id, None);
        assert_eq!(m.actor.role, Role::System);
        assert_eq!(m.occurred_at, created());

        // Keys without the `$` that some other writers use.
        let id = Uuid::new_v4();
        let raw = format!(r#"{{"correlationId":"{id}","occurredAt":"2024-01-01T00:00:00+02:00"}}"#);
        let m = decode_metadata(raw.as_bytes(), created());
        assert_eq!(m.correlation_id, id);
        assert_eq!(
            m.occurred_at,
            Utc.with_ymd_and_hms(2023, 12, 31, 22, 0, 0)
                .single()
                .unwrap()
        );
    }

    #[test]
    fn canonical_json_payloads_go_as_json_and_others_as_binary() {
        let json = encode_data(
            "T.v1",
            br#"{"z":1,"a":[true,null,-2,1.5,"\u00e9\n"],"z":2}"#,
        );
        // The duplicate key and the escape make this non-canonical: kept as binary.
        assert!(format!("{json:?}").contains("application/octet-stream"));

        let payload = serde_json::json!({"b": 1, "a": {"y": [1, 2.25, "x\"y"], "x": null}});
        let canonical = serde_json::to_vec(&payload).unwrap();
        let data = encode_data("T.v1", &canonical);
        assert!(format!("{data:?}").contains("application/json"));

        for other in [&b"{ \"a\": 1 }"[..], b"\xff\x00binary", b""] {
            let data = encode_data("T.v1", other);
            assert!(format!("{data:?}").contains("application/octet-stream"));
        }
    }

    #[test]
    fn ordered_json_keeps_document_order() {
        let raw = br#"{"z":1,"a":{"k":[1,-1,18446744073709551615,0.1]},"m":"s"}"#;
        let value: OrderedJson = serde_json::from_slice(raw).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), raw.to_vec());
    }

    #[test]
    fn subscription_filters_become_server_prefixes() {
        assert_eq!(
            ServerFilter::for_subscription(&SubscriptionFilter::categories(["inventory", "order"])),
            ServerFilter::StreamPrefixes(vec!["inventory-".into(), "order-".into()])
        );
        assert_eq!(
            ServerFilter::for_subscription(&SubscriptionFilter::event_types(["Stock"])),
            ServerFilter::EventTypePrefixes(vec!["Stock".into()])
        );
        assert_eq!(
            ServerFilter::for_subscription(&SubscriptionFilter::All),
            ServerFilter::ExcludeSystemEvents
        );
        assert_eq!(
            ServerFilter::for_subscription(&SubscriptionFilter::Categories(vec![])),
            ServerFilter::ExcludeSystemEvents
        );

        let shown = format!(
            "{:?}",
            ServerFilter::StreamPrefixes(vec!["inventory-".into()]).to_kurrent()
        );
        assert!(shown.contains("based_on_stream: true"), "{shown}");
        assert!(shown.contains("inventory-"), "{shown}");
        let shown = format!(
            "{:?}",
            ServerFilter::EventTypePrefixes(vec!["Stock".into()]).to_kurrent()
        );
        assert!(shown.contains("based_on_stream: false"), "{shown}");
        let shown = format!("{:?}", ServerFilter::ExcludeSystemEvents.to_kurrent());
        assert!(shown.contains("based_on_stream: false"), "{shown}");
        assert!(shown.contains("^[^\\\\$]"), "{shown}");
    }

    /// A server checkpoint reaches the consumer once, only when beyond what it was given, and
    /// makes a later redelivery of an event before it recognisable.
    #[test]
    fn server_checkpoints_are_passed_on_once_and_move_the_cursor() {
        let p = Position::sequence;
        let (mut delivered, mut sent) = (Some(p(10)), Some(p(10)));
        assert!(!passed(&mut delivered, &mut sent, p(10)));
        assert!(passed(&mut delivered, &mut sent, p(40)));
        assert_eq!((delivered, sent), (Some(p(40)), Some(p(40))));
        assert!(!passed(&mut delivered, &mut sent, p(40)));
        let inventory = SubscriptionFilter::categories(["inventory"]);
        assert!(!admit(
            &mut delivered,
            p(39),
            "inventory-A@S1",
            "StockReceived.v1",
            &inventory
        ));
        // A filtered event seen (not sent) does not hide the checkpoint at it.
        let (mut delivered, mut sent) = (Some(p(12)), Some(p(10)));
        assert!(passed(&mut delivered, &mut sent, p(12)));
        assert_eq!((delivered, sent), (Some(p(12)), Some(p(12))));
    }

    #[test]
    fn subscriptions_skip_redeliveries_system_events_and_filtered_events() {
        let p = Position::sequence;
        let all = SubscriptionFilter::All;
        let mut last = Some(p(10));
        assert!(!admit(&mut last, p(9), "order-1", "OrderPlaced.v1", &all));
        assert!(!admit(&mut last, p(10), "order-1", "OrderPlaced.v1", &all));
        assert!(admit(&mut last, p(11), "order-1", "OrderPlaced.v1", &all));
        assert_eq!(last, Some(p(11)));
        assert!(!admit(&mut last, p(12), "$ce-order", "$>", &all));
        assert!(!admit(&mut last, p(13), "order-1", "$metadata", &all));
        assert_eq!(last, Some(p(13)), "system events still advance the cursor");

        let inventory = SubscriptionFilter::categories(["inventory"]);
        let mut last = None;
        assert!(!admit(
            &mut last,
            p(1),
            "order-1",
            "OrderPlaced.v1",
            &inventory
        ));
        assert!(admit(
            &mut last,
            p(2),
            "inventory-A@S1",
            "StockReceived.v1",
            &inventory
        ));
        // A redelivery of a filtered-out event is still recognised.
        assert!(!admit(
            &mut last,
            p(1),
            "inventory-B",
            "StockReceived.v1",
            &inventory
        ));
        // Commit position first, then prepare.
        let mut last = Some(Position {
            commit: 5,
            prepare: 9,
        });
        assert!(admit(
            &mut last,
            Position {
                commit: 6,
                prepare: 1
            },
            "a-1",
            "E",
            &all
        ));
    }

    #[test]
    fn positions_convert_both_ways() {
        let p = Position {
            commit: 1234,
            prepare: 1200,
        };
        assert_eq!(from_kdb_position(to_kdb_position(p)), p);
        assert_eq!(from_kdb_position(kdb::Position::end()), UNKNOWN_POSITION);
    }

    #[test]
    fn system_events_are_recognised_by_stream_or_type() {
        assert!(is_system("$ce-order", "$>"));
        assert!(is_system("$$$settings", "$metadata"));
        assert!(is_system("order-1", "$metadata"));
        assert!(!is_system("order-1", "OrderPlaced.v1"));
    }

    #[test]
    fn passwords_are_masked_in_connection_strings() {
        assert_eq!(
            redact_credentials("esdb://admin:changeit@db1:2113,db2:2113?tls=true"),
            "esdb://admin:***@db1:2113,db2:2113?tls=true"
        );
        assert_eq!(
            redact_credentials("esdb://127.0.0.1:2113?tls=false"),
            "esdb://127.0.0.1:2113?tls=false"
        );
        assert_eq!(redact_credentials("esdb://ops@h"), "esdb://ops@h");
        assert_eq!(redact_credentials("garbage"), "garbage");
    }

    #[tokio::test]
    async fn a_malformed_connection_string_fails_fast_as_unavailable() {
        for url in [
            "not a url",
            "http://127.0.0.1:2113",
            "esdb://",
            "esdb://admin:secret@host:notaport",
        ] {
            let started = Instant::now();
            match KurrentStore::connect(url, Duration::from_secs(30)).await {
                Err(StoreError::Unavailable(message)) => {
                    assert!(message.contains("connection string"), "{url}: {message}");
                    assert!(!message.contains("secret"), "{url}: {message}");
                }
                Err(other) => panic!("{url}: unexpected error {other:?}"),
                Ok(store) => panic!("{url}: connected to {store:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(5), "{url}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_within_the_timeout() {
        // Nothing listens on port 1; whether the connection is refused or times out, the answer
        // is one clear error within the timeout.
        let url = "esdb://127.0.0.1:1?tls=false";
        let started = Instant::now();
        match KurrentStore::connect(url, Duration::from_secs(3)).await {
            Err(StoreError::Unavailable(message)) => {
                assert!(
                    message.starts_with("cannot reach KurrentDB at esdb://127.0.0.1:1"),
                    "{message}"
                );
            }
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(store) => panic!("connected to {store:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
