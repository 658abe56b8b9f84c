//! The projection runtime: read models fed from the store.
//!
//! A read model implements [`Projection`] (interior mutability, so queries read it while the
//! runner applies events). [`spawn`] replays history with plain `read_all` pages up to the head
//! that the store had at start, then marks the projection caught up (what `/health/ready`
//! reports) and follows a filtered subscription from there.
//!
//! Every projection publishes the position it has applied, so a client that wrote at position
//! `p` can [`ProjectionHandle::wait_for`] `p` and then read its own write. The position follows
//! the log, not just the events the projection takes: replay pages and the subscription's
//! checkpoints ([`crate::store::SubscriptionItem::Checkpoint`]) move it over events its filter
//! skips, so any position a write returned (or the store's head) is reached, whichever read
//! model serves the read.

use crate::envelope::RecordedEvent;
use crate::store::{DynEventStore, Position, SubscribeFrom, SubscriptionFilter, SubscriptionItem};
use crate::telemetry::metrics;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A read model.
pub trait Projection: Send + Sync + 'static {
    /// Stable name, used in metrics and logs.
    fn name(&self) -> &'static str;

    /// Which events it takes.
    fn filter(&self) -> SubscriptionFilter;

    /// Applies events in order. Must not fail: an event the model cannot use is skipped (and
    /// logged by the model), because one bad event must not stop every read.
    fn apply(&self, events: &[RecordedEvent]);
}

/// Watches a running projection.
#[derive(Clone)]
pub struct ProjectionHandle {
    name: &'static str,
    position: watch::Receiver<Position>,
    caught_up: watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("projection {name} did not reach position {wanted} within {timeout:?} (at {reached})")]
    Timeout {
        name: &'static str,
        wanted: Position,
        reached: Position,
        timeout: Duration,
    },
    #[error("projection {0} stopped")]
    Stopped(&'static str),
}

impl ProjectionHandle {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Last position applied.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Whether the history that existed at start has been applied.
    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Waits until the projection has applied `position` (read-your-writes).
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.position.clone();
        let reached = async move { rx.wait_for(|p| *p >= position).await.map(|_| ()) };
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(WaitError::Stopped(self.name)),
            Err(_) => Err(WaitError::Timeout {
                name: self.name,
                wanted: position,
                reached: self.position(),
                timeout,
            }),
        }
    }

    /// Waits until caught up.
    pub async fn wait_caught_up(&self) -> Result<(), WaitError> {
        let mut rx = self.caught_up.clone();
        rx.wait_for(|c| *c)
            .await
            .map(|_| ())
            .map_err(|_| WaitError::Stopped(self.name))
    }
}

/// Events applied per call of [`Projection::apply`].
const BATCH: usize = 2048;

/// Starts feeding `projection` from `store` on the current tokio runtime.
pub fn spawn<P: Projection>(store: DynEventStore, projection: Arc<P>) -> ProjectionHandle {
    let name = projection.name();
    let (position_tx, position) = watch::channel(Position::START);
    let (caught_up_tx, caught_up) = watch::channel(false);
    tokio::spawn(async move {
        let m = metrics::global();
        let position_gauge = m.gauge(
            "ichigen_projection_position",
            "Commit position of the last event a projection applied.",
            &[("projection", name)],
        );
        let lag_gauge = m.gauge(
            "ichigen_projection_lag_milliseconds",
            "Age of the last event a projection applied, when it applied it.",
            &[("projection", name)],
        );
        let record = |last: &RecordedEvent| {
            position_gauge.store(last.position.commit as i64, Ordering::Relaxed);
            let age = chrono::Utc::now() - last.metadata.occurred_at;
            lag_gauge.store(age.num_milliseconds().max(0), Ordering::Relaxed);
        };
        let filter = projection.filter();
        let mut last: Option<Position> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            // Replay: read everything up to the head seen now, filtering here.
            let replayed: Result<(), crate::store::StoreError> = async {
                let head = store.head().await?;
                while let Some(head) = head {
                    if last.is_some_and(|l| l >= head) {
                        break;
                    }
                    let page = store.read_all(last, BATCH).await?;
                    let Some(tail) = page.last() else { break };
                    last = Some(tail.position);
                    record(tail);
                    let wanted: Vec<RecordedEvent> = page
                        .into_iter()
                        .filter(|e| filter.matches(&e.stream, &e.event_type))
                        .collect();
                    if !wanted.is_empty() {
                        projection.apply(&wanted);
                    }
                    let _ = position_tx.send(last.unwrap_or_default());
                }
                Ok(())
            }
            .await;
            if let Err(e) = replayed {
                tracing::warn!(projection = name, error = %e, "replay failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            let _ = caught_up_tx.send(true);

            // Live: follow the subscription, applying what is ready in one batch.
            let from = last.map_or(SubscribeFrom::Start, SubscribeFrom::After);
            let mut sub = match store.subscribe(from, filter.clone()).await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "subscribe failed; retrying");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let Some(first) = sub.next_item().await else {
                    // The store shut down.
                    return;
                };
                let mut failed = None;
                // The furthest checkpoint among the items taken: applied once the events
                // before it are.
                let mut checkpoint: Option<Position> = None;
                let mut next = Some(first);
                while let Some(item) = next.take() {
                    match item {
                        Ok(SubscriptionItem::Event(e)) => batch.push(e),
                        Ok(SubscriptionItem::Checkpoint(p)) => checkpoint = checkpoint.max(Some(p)),
                        Err(e) => failed = Some(e),
                    }
                    if failed.is_none() && batch.len() < BATCH {
                        next = sub.try_next_item();
                    }
                }
                let mut reached = checkpoint;
                if let Some(tail) = batch.last() {
                    projection.apply(&batch);
                    record(tail);
                    reached = reached.max(Some(tail.position));
                    batch.clear();
                }
                if let Some(reached) = reached.filter(|r| last.is_none_or(|l| *r > l)) {
                    last = Some(reached);
                    position_gauge.store(reached.commit as i64, Ordering::Relaxed);
                    let _ = position_tx.send(reached);
                }
                if let Some(e) = failed {
                    tracing::warn!(projection = name, error = %e, "subscription failed; resubscribing");
                    break;
                }
            }
            if position_tx.is_closed() && caught_up_tx.is_closed() {
                return;
            }
        }
    });
    ProjectionHandle {
        name,
        position,
        caught_up,
    }
}
