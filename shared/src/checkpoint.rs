//! Stored checkpoints for process managers (design.md: "subscriptions with a stored checkpoint
//! and idempotent commands").
//!
//! A checkpoint is the last event of a stream `checkpoint-<process>`: one small event per
//! save. A process saves after it handled events (at most every [`Checkpoint::EVERY`]), and
//! resumes after the saved position on start. Because the process's commands are idempotent,
//! events between the last save and a crash are simply handled again.

use crate::envelope::{Actor, Metadata, NewEvent, RecordedEvent};
use crate::store::{
    DynEventStore, ExpectedRevision, Position, StoreError, SubscribeFrom, Subscription,
    SubscriptionFilter, SubscriptionItem,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EVENT_TYPE: &str = "CheckpointSaved.v1";

/// How far a process manager got: it resumes after this position. Bookkeeping, not a
/// business fact.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct Saved {
    /// A store position, as the store gives it (opaque).
    position: String,
}

/// The catalogue of the checkpoint streams' event.
pub fn catalogue() -> Vec<crate::catalogue::EventDoc> {
    vec![crate::catalogue::EventDoc::of::<Saved>(
        EVENT_TYPE,
        "each process manager, in its own stream",
        "checkpoint-<process>",
    )]
}

/// A process's subscription, resumed from its checkpoint and saving it as it goes: the loop
/// every process manager runs (`while let Some(event) = follower.next(None).await { handle;
/// follower.handled(position) }`).
///
/// # When it saves
///
/// At most every [`Checkpoint::EVERY`] while busy, and once the process is idle, so that a
/// restart does not handle the last events again. "Idle" means no event within
/// [`Follower::IDLE`]: under steady load the subscription's buffer is empty between nearly
/// every two events, and saving whenever it was momentarily empty cost one checkpoint append
/// per event handled (measured: one `CheckpointSaved` per order placed in the orders bench).
pub struct Follower {
    checkpoint: Checkpoint,
    subscription: Subscription,
    /// Handled (or passed by a checkpoint) but not yet covered by a save.
    unsaved: Option<Position>,
    /// When the last event was handed out.
    last_event: tokio::time::Instant,
}

impl Follower {
    /// How long the subscription must stay quiet before the last handled event is saved.
    pub const IDLE: Duration = Duration::from_millis(100);

    /// Subscribes to `filter` after `process`'s saved checkpoint (from the start if none).
    pub async fn start(
        store: DynEventStore,
        process: &str,
        filter: SubscriptionFilter,
    ) -> Result<Self, StoreError> {
        let mut checkpoint = Checkpoint::new(store.clone(), process);
        let from = match checkpoint.load().await? {
            Some(p) => SubscribeFrom::After(p),
            None => SubscribeFrom::Start,
        };
        let subscription = store.subscribe(from, filter).await?;
        Ok(Follower {
            checkpoint,
            subscription,
            unsaved: None,
            last_event: tokio::time::Instant::now(),
        })
    }

    /// The next event. `None` when the store shut down, or when `stop_after_idle` is given and
    /// no event came for that long (for tests and tools that run a process until it is done;
    /// the checkpoint is saved before that wait).
    ///
    /// The subscription's checkpoints move a position not yet saved up to them (every event
    /// before a checkpoint was handed out, and so handled, before it), so the save made when
    /// the process goes quiet also covers the events its filter skipped since. They never cause
    /// a save of their own: saving appends an event, which would bring the next checkpoint.
    pub async fn next(
        &mut self,
        stop_after_idle: Option<Duration>,
    ) -> Option<Result<RecordedEvent, StoreError>> {
        let mut idle_until = None;
        loop {
            if let Some(ready) = self.subscription.try_next_item() {
                match self.take(ready) {
                    Some(event) => return Some(event),
                    None => continue,
                }
            }
            if self.unsaved.is_some() {
                // Quiet means no event (checkpoints do not count) since the last one.
                let quiet_at = self.last_event + Self::IDLE;
                match tokio::time::timeout_at(quiet_at, self.subscription.next_item()).await {
                    Ok(Some(item)) => match self.take(item) {
                        Some(event) => return Some(event),
                        None => continue,
                    },
                    Ok(None) => return None,
                    Err(_) => {
                        let at = self.unsaved.unwrap_or_default();
                        if let Err(e) = self.checkpoint.save(at, true).await {
                            return Some(Err(e));
                        }
                        self.unsaved = None;
                    }
                }
            }
            let item = match stop_after_idle {
                None => self.subscription.next_item().await,
                Some(idle) => {
                    let until =
                        *idle_until.get_or_insert_with(|| tokio::time::Instant::now() + idle);
                    tokio::time::timeout_at(until, self.subscription.next_item())
                        .await
                        .ok()
                        .flatten()
                }
            };
            match self.take(item?) {
                Some(event) => return Some(event),
                None => continue,
            }
        }
    }

    /// An event (or error) for the caller; a checkpoint is noted and gives `None`.
    fn take(
        &mut self,
        item: Result<SubscriptionItem, StoreError>,
    ) -> Option<Result<RecordedEvent, StoreError>> {
        match item {
            Ok(SubscriptionItem::Event(event)) => {
                self.last_event = tokio::time::Instant::now();
                Some(Ok(event))
            }
            Ok(SubscriptionItem::Checkpoint(position)) => {
                if let Some(unsaved) = &mut self.unsaved {
                    *unsaved = (*unsaved).max(position);
                }
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// The loop of a process manager: every event to `handle`, in order, each then recorded
    /// as handled; `stop_after_idle` as for [`Self::next`]. Returns how many events it handled.
    ///
    /// An error for which `retryable` holds (an outage) stops the run and is returned, so the
    /// caller restarts from the checkpoint and the event is handled again. Any other error
    /// would come back every time (a rule refused the effect): `skipped` reports it (with the
    /// event's position and type) and the
    /// event counts as handled, so that it does not hold up every event after it.
    pub async fn run<E, Fut>(
        mut self,
        stop_after_idle: Option<Duration>,
        mut handle: impl FnMut(RecordedEvent) -> Fut,
        retryable: impl Fn(&E) -> bool,
        skipped: impl Fn(Position, &str, &E),
    ) -> Result<usize, E>
    where
        E: From<StoreError>,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        let mut handled = 0;
        while let Some(event) = self.next(stop_after_idle).await {
            let event = event?;
            let (position, event_type) = (event.position, event.event_type.clone());
            match handle(event).await {
                Ok(()) => {}
                Err(e) if retryable(&e) => return Err(e),
                Err(e) => skipped(position, &event_type, &e),
            }
            handled += 1;
            self.handled(position).await?;
        }
        Ok(handled)
    }

    /// Records that the event at `position` is handled (saved with the next save).
    pub async fn handled(&mut self, position: Position) -> Result<(), StoreError> {
        self.unsaved = Some(position);
        self.checkpoint.save(position, false).await?;
        if self
            .checkpoint
            .last_saved
            .is_some_and(|(saved, _)| saved >= position)
        {
            self.unsaved = None;
        }
        Ok(())
    }
}

/// The checkpoint of one process.
pub struct Checkpoint {
    store: DynEventStore,
    stream: String,
    last_saved: Option<(Position, Instant)>,
}

impl Checkpoint {
    /// How often a busy process saves at most.
    pub const EVERY: Duration = Duration::from_secs(1);

    pub fn new(store: DynEventStore, process: &str) -> Self {
        Checkpoint {
            store,
            stream: format!("checkpoint-{process}"),
            last_saved: None,
        }
    }

    /// The saved position (`None`: start from the beginning).
    pub async fn load(&mut self) -> Result<Option<Position>, StoreError> {
        let events = crate::store::read_whole_stream(self.store.as_ref(), &self.stream).await?;
        let position = events
            .last()
            .and_then(|e| serde_json::from_slice::<Saved>(&e.data).ok())
            .and_then(|s| s.position.parse().ok());
        self.last_saved = position.map(|p| (p, Instant::now()));
        Ok(position)
    }

    /// Saves `position` unless it was saved less than [`Self::EVERY`] ago (pass `force` when
    /// idle, so that the last events are not handled again after a restart).
    pub async fn save(&mut self, position: Position, force: bool) -> Result<(), StoreError> {
        if let Some((saved, at)) = self.last_saved {
            if saved >= position || (!force && at.elapsed() < Self::EVERY) {
                return Ok(());
            }
        }
        let event = NewEvent::json(
            Uuid::new_v4(),
            EVENT_TYPE,
            &Saved {
                position: position.to_string(),
            },
            Metadata::new(Actor::system("checkpoint")),
        )
        .map_err(|e| StoreError::Io(e.to_string()))?;
        self.store
            .append(&self.stream, ExpectedRevision::Any, vec![event])
            .await?;
        self.last_saved = Some((position, Instant::now()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! [`Follower`] against a real embedded store.
    use super::*;
    use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
    use std::sync::Arc;

    fn event(n: usize) -> NewEvent {
        NewEvent::json(
            Uuid::new_v4(),
            "Ticked.v1",
            &serde_json::json!({ "n": n }),
            Metadata::new(Actor::system("test")),
        )
        .expect("encode")
    }

    async fn saves(store: &DynEventStore, process: &str) -> usize {
        crate::store::read_whole_stream(store.as_ref(), &format!("checkpoint-{process}"))
            .await
            .expect("read checkpoints")
            .len()
    }

    #[tokio::test]
    async fn a_burst_costs_one_save_when_busy_and_one_when_idle_and_a_restart_resumes_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: DynEventStore = Arc::new(
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
                .await
                .expect("open"),
        );
        let burst = 200;
        for n in 0..burst {
            store
                .append("tick-1", ExpectedRevision::Any, vec![event(n)])
                .await
                .expect("append");
        }
        let filter = SubscriptionFilter::event_types(["Ticked."]);
        let mut follower = Follower::start(store.clone(), "ticker", filter.clone())
            .await
            .expect("start");
        let mut handled = 0;
        while let Some(e) = follower.next(Some(Duration::from_millis(300))).await {
            let e = e.expect("event");
            handled += 1;
            follower.handled(e.position).await.expect("handled");
        }
        assert_eq!(handled, burst);
        // The first event is saved at once (nothing was saved yet), the rest once idle: not
        // one save per event.
        let saved = saves(&store, "ticker").await;
        assert!(
            (1..=3).contains(&saved),
            "{saved} checkpoint saves for {burst} events"
        );
        // A restart resumes after the last handled event.
        let mut again = Follower::start(store.clone(), "ticker", filter)
            .await
            .expect("restart");
        assert!(again.next(Some(Duration::from_millis(300))).await.is_none());
        store.shutdown().await;
    }

    /// The save made when the process goes quiet covers the events its filter skipped after
    /// its last one (the subscription's checkpoints), and the saves do not feed themselves:
    /// each appends an event the filter skips, which brings another checkpoint.
    #[tokio::test]
    async fn the_idle_save_covers_skipped_events_without_saving_for_its_own_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: DynEventStore = Arc::new(
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
                .await
                .expect("open"),
        );
        for n in 0..20 {
            store
                .append("tick-1", ExpectedRevision::Any, vec![event(n)])
                .await
                .expect("append");
        }
        let mut skipped = Position::START;
        for n in 0..30 {
            let other = NewEvent::json(
                Uuid::new_v4(),
                "Tocked.v1",
                &serde_json::json!({ "n": n }),
                Metadata::new(Actor::system("test")),
            )
            .expect("encode");
            skipped = store
                .append("tock-1", ExpectedRevision::Any, vec![other])
                .await
                .expect("append")
                .position;
        }
        let filter = SubscriptionFilter::event_types(["Ticked."]);
        let mut follower = Follower::start(store.clone(), "ticker", filter.clone())
            .await
            .expect("start");
        let mut handled = 0;
        while let Some(e) = follower.next(Some(Duration::from_millis(400))).await {
            handled += 1;
            follower
                .handled(e.expect("event").position)
                .await
                .expect("handled");
        }
        assert_eq!(handled, 20);
        let mut checkpoint = Checkpoint::new(store.clone(), "ticker");
        // Past the skipped events (and the first save's own event, which came meanwhile),
        // not past the idle save's.
        let saved_at = checkpoint.load().await.expect("load").expect("saved");
        let head = store.head().await.expect("head").expect("not empty");
        assert!(
            saved_at >= skipped && saved_at < head,
            "{saved_at} of {head}"
        );
        let saved = saves(&store, "ticker").await;
        assert!((1..=3).contains(&saved), "{saved} saves");
        // Quiet now: no save follows the last one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(saves(&store, "ticker").await, saved);
        store.shutdown().await;
    }
}
