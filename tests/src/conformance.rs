//! The event store conformance suite: one set of checks every backend must pass.
//!
//! Each check takes a store and works in streams of its own category (`c<uuid>`), so the suite
//! also runs against a shared KurrentDB that holds other data.

use futures::future::join_all;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::envelope::{Metadata, NewEvent, RecordedEvent};
use ichigen_shared::store::{
    DynEventStore, ExpectedRevision, Position, StoreError, SubscribeFrom, Subscription,
    SubscriptionFilter, SubscriptionItem,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use uuid::Uuid;

/// A fresh category for one check, so checks never see each other's events.
pub fn fresh_category() -> String {
    format!("c{}", Uuid::new_v4().simple())
}

pub fn event(event_type: &str, payload: serde_json::Value) -> NewEvent {
    let mut metadata = Metadata::new(Actor {
        role: Role::StoreStaff,
        subject: "u-1".into(),
        store_id: Some("S1".into()),
    });
    metadata.causation_id = Some(Uuid::new_v4());
    // Whole microseconds: what every backend keeps.
    metadata.occurred_at =
        chrono::DateTime::from_timestamp_micros(metadata.occurred_at.timestamp_micros())
            .unwrap_or_default();
    NewEvent {
        id: Uuid::new_v4(),
        event_type: event_type.into(),
        data: serde_json::to_vec(&payload).unwrap(),
        metadata,
    }
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| event("Tested.v1", serde_json::json!({ "i": i })))
        .collect()
}

async fn collect_until(
    sub: &mut ichigen_shared::store::Subscription,
    n: usize,
    timeout: Duration,
) -> Vec<RecordedEvent> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(Ok(e))) => got.push(e),
            Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
            Ok(None) => break,
            Err(_) => break,
        }
    }
    got
}

/// Appended events read back with every field, revision and position intact.
pub async fn append_and_read_back(store: DynEventStore) {
    let stream = format!("{}-1", fresh_category());
    let sent = events(3);
    let result = store
        .append(&stream, ExpectedRevision::NoStream, sent.clone())
        .await
        .unwrap();
    assert_eq!(result.next_expected, 2);
    let read = store.read_stream(&stream, 0, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (r, s)) in read.iter().zip(&sent).enumerate() {
        assert_eq!(r.id, s.id);
        assert_eq!(&*r.stream, stream);
        assert_eq!(r.revision, i as u64);
        assert_eq!(&*r.event_type, "Tested.v1");
        assert_eq!(&*r.data, s.data.as_slice());
        assert_eq!(r.metadata, s.metadata);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(read[2].position, result.position);
    // Paging from a revision.
    let tail = store.read_stream(&stream, 1, 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].revision, 1);
    // The head is at least the last write.
    assert!(store.head().await.unwrap().unwrap() >= result.position);
}

/// Any / NoStream / StreamExists / Exact, and the typed error carrying the actual revision.
pub async fn expected_revision_is_enforced(store: DynEventStore) {
    let stream = format!("{}-1", fresh_category());
    let wev = |r: Result<_, StoreError>, actual: Option<u64>| match r {
        Err(StoreError::WrongExpectedVersion { actual: a, .. }) => assert_eq!(a, actual),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    };
    wev(
        store
            .append(&stream, ExpectedRevision::StreamExists, events(1))
            .await,
        None,
    );
    wev(
        store
            .append(&stream, ExpectedRevision::Exact(0), events(1))
            .await,
        None,
    );
    store
        .append(&stream, ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    wev(
        store
            .append(&stream, ExpectedRevision::NoStream, events(1))
            .await,
        Some(0),
    );
    wev(
        store
            .append(&stream, ExpectedRevision::Exact(5), events(1))
            .await,
        Some(0),
    );
    let r = store
        .append(&stream, ExpectedRevision::Exact(0), events(2))
        .await
        .unwrap();
    assert_eq!(r.next_expected, 2);
    let r = store
        .append(&stream, ExpectedRevision::StreamExists, events(1))
        .await
        .unwrap();
    assert_eq!(r.next_expected, 3);
    let r = store
        .append(&stream, ExpectedRevision::Any, events(1))
        .await
        .unwrap();
    assert_eq!(r.next_expected, 4);
    assert_eq!(store.read_stream(&stream, 0, 100).await.unwrap().len(), 5);
}

/// N tasks race on one stream, round after round: exactly one wins each revision, the others
/// get WrongExpectedVersion, and the stream holds exactly the winners.
pub async fn optimistic_concurrency_under_contention(store: DynEventStore, racers: usize) {
    let stream = format!("{}-hot", fresh_category());
    let rounds = 20u64;
    let barrier = Arc::new(Barrier::new(racers));
    let tasks = (0..racers).map(|t| {
        let store = store.clone();
        let stream = stream.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut won = Vec::new();
            for round in 0..rounds {
                let expected = if round == 0 {
                    ExpectedRevision::NoStream
                } else {
                    ExpectedRevision::Exact(round - 1)
                };
                barrier.wait().await;
                let e = event("Raced.v1", serde_json::json!({ "task": t, "round": round }));
                let id = e.id;
                match store.append(&stream, expected, vec![e]).await {
                    Ok(r) => {
                        assert_eq!(r.next_expected, round);
                        won.push((round, id));
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => {}
                    Err(other) => panic!("unexpected error {other}"),
                }
                // Everyone finishes the round before the next starts.
                barrier.wait().await;
            }
            won
        })
    });
    let mut winners: HashMap<u64, Vec<Uuid>> = HashMap::new();
    for won in join_all(tasks).await {
        for (round, id) in won.unwrap() {
            winners.entry(round).or_default().push(id);
        }
    }
    for round in 0..rounds {
        assert_eq!(
            winners.get(&round).map(Vec::len),
            Some(1),
            "round {round}: exactly one winner"
        );
    }
    let stored = store.read_stream(&stream, 0, 1000).await.unwrap();
    assert_eq!(stored.len() as u64, rounds);
    for e in stored {
        assert_eq!(winners[&e.revision], vec![e.id]);
    }
}

/// Re-appending the same ids (an ambiguous failure's retry) writes nothing twice, even when the
/// retries race each other.
pub async fn idempotent_retry(store: DynEventStore) {
    let stream = format!("{}-1", fresh_category());
    let batch = events(3);
    let first = store
        .append(&stream, ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    let again = store
        .append(&stream, ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(again.next_expected, first.next_expected);
    let any = store
        .append(&stream, ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    assert_eq!(any.next_expected, 2);
    assert_eq!(store.read_stream(&stream, 0, 100).await.unwrap().len(), 3);
    // The same ids claimed at another place are a conflict, not a silent success.
    assert!(store
        .append(&stream, ExpectedRevision::Exact(7), batch.clone())
        .await
        .is_err());

    // Sixteen concurrent retries of one append: all succeed, one copy is stored.
    let stream = format!("{}-2", fresh_category());
    let batch = events(2);
    let tries = (0..16).map(|_| {
        let store = store.clone();
        let stream = stream.clone();
        let batch = batch.clone();
        tokio::spawn(async move {
            store
                .append(&stream, ExpectedRevision::NoStream, batch)
                .await
        })
    });
    for r in join_all(tries).await {
        assert_eq!(r.unwrap().unwrap().next_expected, 1);
    }
    let stored = store.read_stream(&stream, 0, 100).await.unwrap();
    assert_eq!(
        stored.iter().map(|e| e.id).collect::<Vec<_>>(),
        batch.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}

/// Concurrent writers to many streams: `$all` is one total order consistent with every
/// stream's order, and each event's position is the same through both reads.
pub async fn global_order(store: DynEventStore) {
    let before = store.head().await.unwrap();
    let cat = fresh_category();
    let writers = (0..8).map(|w| {
        let store = store.clone();
        let stream = format!("{cat}-{w}");
        tokio::spawn(async move {
            let mut last = None;
            for _ in 0..25 {
                let expected = ExpectedRevision::after(last);
                last = Some(
                    store
                        .append(&stream, expected, events(2))
                        .await
                        .unwrap()
                        .next_expected,
                );
            }
        })
    });
    for w in join_all(writers).await {
        w.unwrap();
    }
    let mut all = Vec::new();
    let mut after = before;
    loop {
        let page = store.read_all(after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        all.extend(page.into_iter().filter(|e| e.category() == cat));
    }
    assert_eq!(all.len(), 8 * 25 * 2);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let mut next_revision: HashMap<String, u64> = HashMap::new();
    for e in &all {
        let expected = next_revision.entry(e.stream.to_string()).or_insert(0);
        assert_eq!(e.revision, *expected, "stream order inside $all");
        *expected += 1;
    }
    for w in 0..8 {
        let stream = format!("{cat}-{w}");
        let by_stream = store.read_stream(&stream, 0, 1000).await.unwrap();
        let by_all: Vec<_> = all.iter().filter(|e| *e.stream == *stream).collect();
        assert_eq!(by_stream.len(), by_all.len());
        for (a, b) in by_stream.iter().zip(by_all) {
            assert_eq!((a.id, a.position), (b.id, b.position));
        }
    }
}

/// A catch-up subscription started while writers run delivers every matching event exactly
/// once, in order, across the switch from history to live.
pub async fn subscription_handover_under_writers(store: DynEventStore) {
    let start = store.head().await.unwrap();
    let cat = fresh_category();
    let per_writer = 150u64;
    let writers_n = 4;
    let writers: Vec<_> = (0..writers_n)
        .map(|w| {
            let store = store.clone();
            let stream = format!("{cat}-{w}");
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let expected = ExpectedRevision::after(i.checked_sub(1));
                    store.append(&stream, expected, events(1)).await.unwrap();
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    // Subscribe while the writers are mid-way.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = start.map_or(SubscribeFrom::Start, SubscribeFrom::After);
    let mut sub = store
        .subscribe(from, SubscriptionFilter::categories([cat.clone()]))
        .await
        .unwrap();
    let total = (per_writer * writers_n) as usize;
    let got = collect_until(&mut sub, total, Duration::from_secs(30)).await;
    for w in join_all(writers).await {
        w.unwrap();
    }
    assert_eq!(got.len(), total, "every event delivered");
    assert!(
        got.windows(2).all(|w| w[0].position < w[1].position),
        "in order, no duplicate"
    );
    let ids: HashSet<_> = got.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), total);
    // Nothing more arrives: no duplicate after the handover.
    let extra = collect_until(&mut sub, 1, Duration::from_millis(200)).await;
    assert!(extra.is_empty(), "no duplicate after handover: {extra:?}");
}

/// Category and event-type-prefix filters, and a subscription from the end.
pub async fn filters_and_subscribe_from_end(store: DynEventStore) {
    let cat_a = fresh_category();
    let cat_b = fresh_category();
    let mut from_end = store
        .subscribe(
            SubscribeFrom::End,
            SubscriptionFilter::categories([cat_a.clone()]),
        )
        .await
        .unwrap();
    let start = store.head().await.unwrap();
    store
        .append(
            &format!("{cat_a}-1"),
            ExpectedRevision::Any,
            vec![
                event("StockReceived.v1", serde_json::json!({})),
                event("StockAdjusted.v1", serde_json::json!({})),
                event("Reserved.v1", serde_json::json!({})),
            ],
        )
        .await
        .unwrap();
    store
        .append(
            &format!("{cat_b}-1"),
            ExpectedRevision::Any,
            vec![event("StockReceived.v2", serde_json::json!({}))],
        )
        .await
        .unwrap();
    let from = start.map_or(SubscribeFrom::Start, SubscribeFrom::After);

    let got = collect_until(&mut from_end, 3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|e| e.category() == cat_a));

    let mut by_type = store
        .subscribe(from, SubscriptionFilter::event_types(["StockReceived"]))
        .await
        .unwrap();
    let mut mine = Vec::new();
    // Other tests' events may match the prefix too; keep ours.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mine.len() < 2 && tokio::time::Instant::now() < deadline {
        for e in collect_until(&mut by_type, 1, Duration::from_millis(500)).await {
            assert!(e.event_type.starts_with("StockReceived"));
            if e.category() == cat_a || e.category() == cat_b {
                mine.push(e);
            }
        }
    }
    let types: Vec<_> = mine.iter().map(|e| e.event_type.to_string()).collect();
    assert_eq!(types, vec!["StockReceived.v1", "StockReceived.v2"]);
}

/// Items of `sub` (events and checkpoints) until `done` holds for the last one or `timeout`
/// passes.
async fn items_until(
    sub: &mut Subscription,
    timeout: Duration,
    done: impl Fn(&SubscriptionItem) -> bool,
) -> Vec<SubscriptionItem> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, sub.next_item()).await {
            Ok(Some(Ok(item))) => {
                let stop = done(&item);
                got.push(item);
                if stop {
                    return got;
                }
            }
            Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
            Ok(None) | Err(_) => return got,
        }
    }
}

fn position_of(item: &SubscriptionItem) -> Position {
    match item {
        SubscriptionItem::Event(e) => e.position,
        SubscriptionItem::Checkpoint(p) => *p,
    }
}

/// Appends one event of `cat_a`, then 300 of `cat_b` (more than a KurrentDB filter window);
/// returns the position of the first and of the last.
async fn one_taken_then_many_skipped(
    store: &DynEventStore,
    cat_a: &str,
    cat_b: &str,
) -> (Position, Position) {
    let taken = store
        .append(
            &format!("{cat_a}-1"),
            ExpectedRevision::Any,
            vec![event("Taken.v1", serde_json::json!({}))],
        )
        .await
        .unwrap()
        .position;
    let mut skipped = taken;
    for i in 0..6 {
        skipped = store
            .append(&format!("{cat_b}-{i}"), ExpectedRevision::Any, events(50))
            .await
            .unwrap()
            .position;
    }
    (taken, skipped)
}

/// Checks what every checkpoint promises: only the filter's events, in order, and a
/// checkpoint never below an event delivered before it.
fn assert_checkpoints_follow_events(items: &[SubscriptionItem], cat_a: &str) {
    for item in items {
        if let SubscriptionItem::Event(e) = item {
            assert_eq!(e.category(), cat_a, "only the filter's events: {item:?}");
        }
    }
    assert!(
        items
            .windows(2)
            .all(|w| position_of(&w[0]) <= position_of(&w[1])),
        "items in position order: {items:?}"
    );
}

/// A filtered subscription reports checkpoints past the events its filter skips, live and in
/// the catch-up, so a filtered consumer's position can follow the log. (KurrentDB sends one
/// per filter window of scanned events, so only "past the event taken" is common to both.)
pub async fn filtered_subscriptions_report_checkpoints(store: DynEventStore) {
    let cat_a = fresh_category();
    let cat_b = fresh_category();
    let filter = SubscriptionFilter::categories([cat_a.clone()]);
    let before = store.head().await.unwrap();
    let mut live = store
        .subscribe(SubscribeFrom::End, filter.clone())
        .await
        .unwrap();
    let (taken, _) = one_taken_then_many_skipped(&store, &cat_a, &cat_b).await;
    let past_taken =
        |item: &SubscriptionItem| matches!(item, SubscriptionItem::Checkpoint(p) if *p > taken);

    let items = items_until(&mut live, Duration::from_secs(15), past_taken).await;
    assert!(
        matches!(&items[..], [SubscriptionItem::Event(e), ..] if e.position == taken),
        "the event taken comes first: {items:?}"
    );
    assert!(
        items.last().is_some_and(past_taken),
        "no checkpoint past the skipped events: {items:?}"
    );
    assert_checkpoints_follow_events(&items, &cat_a);

    let from = before.map_or(SubscribeFrom::Start, SubscribeFrom::After);
    let mut catch_up = store.subscribe(from, filter).await.unwrap();
    let items = items_until(&mut catch_up, Duration::from_secs(15), past_taken).await;
    assert!(
        items
            .iter()
            .any(|i| matches!(i, SubscriptionItem::Event(e) if e.position == taken)),
        "the event taken is in the history: {items:?}"
    );
    assert!(
        items.last().is_some_and(past_taken),
        "no checkpoint past the skipped history: {items:?}"
    );
    assert_checkpoints_follow_events(&items, &cat_a);
    // `next` still hands out events only.
    let mut events_only = store
        .subscribe(from, SubscriptionFilter::categories([cat_a.clone()]))
        .await
        .unwrap();
    let got = collect_until(&mut events_only, 2, Duration::from_millis(500)).await;
    assert_eq!(
        got.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![taken]
    );
}

/// Embedded and PostgreSQL (one gapless log followed by position): the checkpoints reach the last event scanned exactly, at the end of the catch-up
/// and after every committed batch, so a filtered consumer reaches the store's head at once.
pub async fn checkpoints_reach_the_head(store: DynEventStore) {
    let cat_a = fresh_category();
    let cat_b = fresh_category();
    let filter = SubscriptionFilter::categories([cat_a.clone()]);
    let mut live = store
        .subscribe(SubscribeFrom::End, filter.clone())
        .await
        .unwrap();
    let (taken, skipped) = one_taken_then_many_skipped(&store, &cat_a, &cat_b).await;
    assert_eq!(store.head().await.unwrap(), Some(skipped));
    let at_head = |item: &SubscriptionItem| position_of(item) == skipped;
    let items = items_until(&mut live, Duration::from_secs(5), at_head).await;
    assert!(items.last().is_some_and(at_head), "live: {items:?}");
    assert_checkpoints_follow_events(&items, &cat_a);

    // History only: the catch-up ends with a checkpoint at the head.
    let mut catch_up = store
        .subscribe(SubscribeFrom::Start, filter.clone())
        .await
        .unwrap();
    let items = items_until(&mut catch_up, Duration::from_secs(5), at_head).await;
    assert!(items.last().is_some_and(at_head), "catch-up: {items:?}");
    let events: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            SubscriptionItem::Event(e) => Some(e.position),
            SubscriptionItem::Checkpoint(_) => None,
        })
        .collect();
    assert_eq!(events, vec![taken]);
    // Nothing after the head: no further checkpoint while nothing is written.
    let extra = items_until(&mut catch_up, Duration::from_millis(200), |_| true).await;
    assert!(extra.is_empty(), "{extra:?}");
    // An unfiltered subscription's last item is the last event: no checkpoint needed.
    let mut all = store
        .subscribe(SubscribeFrom::After(taken), SubscriptionFilter::All)
        .await
        .unwrap();
    let items = items_until(&mut all, Duration::from_secs(5), at_head).await;
    assert_eq!(items.len(), 300);
    assert!(items
        .iter()
        .all(|i| matches!(i, SubscriptionItem::Event(_))));
}

/// A stream that does not exist reads as empty; bad appends are typed errors that write nothing.
pub async fn missing_stream_and_bad_appends(store: DynEventStore) {
    let cat = fresh_category();
    assert!(store
        .read_stream(&format!("{cat}-missing"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    let stream = format!("{cat}-1");
    assert!(matches!(
        store.append(&stream, ExpectedRevision::Any, vec![]).await,
        Err(StoreError::EmptyAppend(_))
    ));
    assert!(matches!(
        store.append("", ExpectedRevision::Any, events(1)).await,
        Err(StoreError::InvalidStreamName(_))
    ));
    assert!(matches!(
        store
            .append("$system", ExpectedRevision::Any, events(1))
            .await,
        Err(StoreError::InvalidStreamName(_))
    ));
    let e = event("Tested.v1", serde_json::json!({}));
    assert!(matches!(
        store
            .append(&stream, ExpectedRevision::Any, vec![e.clone(), e])
            .await,
        Err(StoreError::DuplicateIdInAppend { .. })
    ));
    assert!(store.read_stream(&stream, 0, 10).await.unwrap().is_empty());
}

/// An event id may live in one stream only (embedded: enforced by a unique index).
pub async fn event_id_reused_in_other_stream(store: DynEventStore) {
    let cat = fresh_category();
    let e = event("Tested.v1", serde_json::json!({}));
    store
        .append(
            &format!("{cat}-a"),
            ExpectedRevision::NoStream,
            vec![e.clone()],
        )
        .await
        .unwrap();
    let other = store
        .append(&format!("{cat}-b"), ExpectedRevision::NoStream, vec![e])
        .await;
    assert!(matches!(
        other,
        Err(StoreError::EventIdInOtherStream { .. })
    ));
    assert!(store
        .read_stream(&format!("{cat}-b"), 0, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Head moves with appends; `read_all` after the head is empty.
pub async fn head_tracks_appends(store: DynEventStore) {
    let stream = format!("{}-1", fresh_category());
    let r = store
        .append(&stream, ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    let head: Position = store.head().await.unwrap().unwrap();
    assert!(head >= r.position);
}

/// A subscriber that reads the stream of an event it was just delivered sees that event: what
/// a process manager does (react to an event, load the aggregate, decide). The embedded store
/// delivers a batch before its stream index is updated, so its stream reads wait for the index.
pub async fn a_delivered_event_is_in_its_stream(store: DynEventStore) {
    let start = store.head().await.unwrap();
    let cat = fresh_category();
    let from = start.map_or(SubscribeFrom::Start, SubscribeFrom::After);
    let mut sub = store
        .subscribe(from, SubscriptionFilter::categories([cat.clone()]))
        .await
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            let stream = format!("{cat}-{w}");
            tokio::spawn(async move {
                for i in 0..100u64 {
                    let expected = ExpectedRevision::after(i.checked_sub(1));
                    store.append(&stream, expected, events(1)).await.unwrap();
                }
            })
        })
        .collect();
    for _ in 0..400 {
        let event = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("delivered in time")
            .unwrap()
            .unwrap();
        let read = store
            .read_stream(&event.stream, event.revision, 1)
            .await
            .unwrap();
        assert_eq!(
            read.first().map(|e| e.id),
            Some(event.id),
            "{}@{} delivered but not in its stream",
            event.stream,
            event.revision
        );
    }
    for w in join_all(writers).await {
        w.unwrap();
    }
}
