//! The projection runtime over the embedded store: replay of history up to the head seen at
//! start (then "caught up"), live events after, read-your-writes through `wait_for`, and only
//! the events its filter takes.

use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::{self, Projection};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, EventStore, ExpectedRevision, SubscriptionFilter};
use ichigen_tests::conformance::event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts events per stream of category `counted`.
#[derive(Default)]
struct Counter {
    per_stream: Mutex<HashMap<String, u64>>,
    seen_other: Mutex<u64>,
}

impl Projection for Counter {
    fn name(&self) -> &'static str {
        "test-counter"
    }
    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories(["counted"])
    }
    fn apply(&self, events: &[RecordedEvent]) {
        let mut map = self.per_stream.lock().unwrap();
        for e in events {
            if e.category() == "counted" {
                *map.entry(e.stream.to_string()).or_default() += 1;
            } else {
                *self.seen_other.lock().unwrap() += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_then_follows_and_reads_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    // History: 3000 counted events over 3 streams, interleaved with others.
    for i in 0..100u64 {
        for s in 0..3 {
            store
                .append(
                    &format!("counted-{s}"),
                    ExpectedRevision::Any,
                    (0..10)
                        .map(|j| event("Counted.v1", serde_json::json!({ "i": i, "j": j })))
                        .collect(),
                )
                .await
                .unwrap();
        }
        store
            .append(
                "other-1",
                ExpectedRevision::Any,
                vec![event("Other.v1", serde_json::json!({}))],
            )
            .await
            .unwrap();
    }
    let counter = Arc::new(Counter::default());
    let handle = projection::spawn(store.clone(), counter.clone());
    tokio::time::timeout(Duration::from_secs(20), handle.wait_caught_up())
        .await
        .unwrap()
        .unwrap();
    assert!(handle.is_caught_up());
    assert_eq!(
        counter.per_stream.lock().unwrap().values().sum::<u64>(),
        3000,
        "history replayed exactly once"
    );
    assert_eq!(*counter.seen_other.lock().unwrap(), 0, "filter applied");

    // Live: a write is visible once the projection reached its position.
    let written = store
        .append(
            "counted-9",
            ExpectedRevision::NoStream,
            vec![event("Counted.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    handle
        .wait_for(written.position, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        counter.per_stream.lock().unwrap().get("counted-9"),
        Some(&1)
    );
    assert!(handle.position() >= written.position);

    // A position that is never reached times out with a typed error.
    let far = ichigen_shared::store::Position::sequence(written.position.commit + 1_000);
    assert!(matches!(
        handle.wait_for(far, Duration::from_millis(50)).await,
        Err(projection::WaitError::Timeout { .. })
    ));
    store.shutdown().await;
}

/// A read model's position follows the log, not just the events it takes: a position its
/// filter skips (the last write was another category's) or the store's head is reached at
/// once, after the replay and live, so read-your-writes works whichever model serves the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_position_moves_over_events_the_filter_skips() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let store: DynEventStore = Arc::new(embedded.clone());
    let other = |n: u64| vec![event("Other.v1", serde_json::json!({ "n": n }))];
    store
        .append(
            "counted-1",
            ExpectedRevision::Any,
            vec![event("Counted.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    for n in 0..50 {
        store
            .append("other-1", ExpectedRevision::Any, other(n))
            .await
            .unwrap();
    }
    let counter = Arc::new(Counter::default());
    let handle = projection::spawn(store.clone(), counter.clone());
    handle.wait_caught_up().await.unwrap();
    assert_eq!(Some(handle.position()), embedded.head().await.unwrap());

    // Live: writes the model skips, one at a time and in a burst.
    for n in 0..20 {
        let skipped = store
            .append("other-2", ExpectedRevision::Any, other(n))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        handle
            .wait_for(skipped.position, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let burst: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(&format!("other-{}", n % 7), ExpectedRevision::Any, other(n))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in burst {
        w.await.unwrap();
    }
    let head = store.head().await.unwrap().unwrap();
    handle.wait_for(head, Duration::from_secs(2)).await.unwrap();
    assert_eq!(counter.per_stream.lock().unwrap().values().sum::<u64>(), 1);
    assert_eq!(*counter.seen_other.lock().unwrap(), 0);
    store.shutdown().await;
}
