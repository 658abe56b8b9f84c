//! Event store benchmarks (`make bench`), each against a baseline measured in the same run:
//!
//! 1. Append throughput and ack latency with 1, 16 and 256 concurrent writers (one event per
//!    append, durable acks), against a plain rusqlite loop writing the same rows with the same
//!    pragmas (WAL, synchronous=FULL) in transactions of the same size, and updating the same
//!    unsynced stream index after each commit.
//! 2. Subscription lag, append ack → subscriber delivery, at a paced 10,000 events/s.
//! 3. Replay: read all and fold, against a plain rusqlite SELECT loop over the same table.
//!
//! Each figure is the median of `ICHIGEN_BENCH_RUNS` runs (default 3). Prints a Markdown table.

use ichigen_shared::auth::Actor;
use ichigen_shared::benchkit::{self, bench_event, median, runs, AppendRun};
use ichigen_shared::store::embedded::{schema, EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, EventStore, ExpectedRevision};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// [`benchkit::append_run`] on a fresh embedded store.
async fn append_run(writers: usize, total: usize) -> AppendRun {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .expect("open"),
    );
    let run = benchkit::append_run(&store, writers, total).await;
    store.shutdown().await;
    run
}

/// The baseline: the same rows, pragmas and indexes, written by a plain loop in transactions of
/// `batch` rows, each committed (and synced) before the next.
fn baseline_run(batch: usize, total: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = rusqlite::Connection::open(dir.path().join("baseline.sqlite")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 4000; \
         PRAGMA cache_size = -65536;",
    )
    .expect("pragmas");
    conn.execute_batch(schema::LAYOUT).expect("layout");
    // The same two files as the store: the synced log and the unsynced stream index.
    conn.execute(
        "ATTACH DATABASE ?1 AS idx",
        [dir.path().join("baseline.index.sqlite").to_string_lossy()],
    )
    .expect("attach");
    conn.execute_batch("PRAGMA idx.journal_mode = WAL; PRAGMA idx.synchronous = OFF; PRAGMA idx.cache_size = -65536;")
        .expect("index pragmas");
    conn.execute_batch(schema::INDEX_LAYOUT)
        .expect("index layout");
    let actor = Actor::system("bench").to_compact();
    let started = Instant::now();
    let mut position = 0u64;
    let mut revisions = vec![0u64; batch.max(1)];
    while (position as usize) < total {
        let tx = conn.unchecked_transaction().expect("tx");
        {
            let mut insert = tx.prepare_cached(schema::INSERT).expect("prepare");
            for (s, revision) in revisions.iter_mut().enumerate() {
                position += 1;
                let e = bench_event(position);
                insert
                    .execute(params![
                        position as i64,
                        format!("bench-{s}"),
                        *revision as i64,
                        e.id.as_bytes().as_slice(),
                        e.event_type,
                        e.data,
                        e.metadata.correlation_id.as_bytes().as_slice(),
                        Option::<Vec<u8>>::None,
                        actor,
                        e.metadata.occurred_at.timestamp_micros(),
                    ])
                    .expect("insert");
                *revision += 1;
            }
        }
        tx.commit().expect("commit");
        schema::catch_up_index(&conn).expect("index");
    }
    position as f64 / started.elapsed().as_secs_f64()
}

/// [`benchkit::subscription_lag`] on a fresh embedded store.
async fn subscription_lag(rate: u64, seconds: u64) -> (Duration, Duration, Duration, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .expect("open"),
    );
    let lag = benchkit::subscription_lag(&store, rate, seconds).await;
    store.shutdown().await;
    (lag.p50, lag.p99, lag.end_to_end_p99, lag.delivered)
}

/// Writes `total` events (in 1,000-event appends over 1,000 streams), then times a full replay
/// that folds every event, and a plain SELECT loop over the same table.
async fn replay(total: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .expect("open");
    let chunk = 1000;
    let mut last: HashMap<usize, u64> = HashMap::new();
    for c in 0..(total / chunk) {
        let s = c % 1000;
        let events = (0..chunk).map(|i| bench_event(i as u64)).collect();
        let r = store
            .append(
                &format!("replay-{s}"),
                ExpectedRevision::after(last.get(&s).copied()),
                events,
            )
            .await
            .expect("append");
        last.insert(s, r.next_expected);
    }
    // Fold: events and bytes per stream, the shape of a projection rebuild.
    let started = Instant::now();
    let mut folded: HashMap<Arc<str>, (u64, u64)> = HashMap::new();
    let mut after = None;
    let mut n = 0usize;
    loop {
        let page = store.read_all(after, 8192).await.expect("read");
        let Some(tail) = page.last() else { break };
        after = Some(tail.position);
        for e in &page {
            let entry = folded.entry(e.stream.clone()).or_default();
            entry.0 += 1;
            entry.1 += e.data.len() as u64;
        }
        n += page.len();
    }
    let store_rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(n, total);
    store.shutdown().await;

    let conn = rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME)).expect("open");
    let started = Instant::now();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM events ORDER BY position",
            schema::COLUMNS
        ))
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    let mut folded: HashMap<String, (u64, u64)> = HashMap::new();
    let mut m = 0usize;
    while let Some(row) = rows.next().expect("row") {
        let stream: String = row.get(1).expect("stream");
        let data = row.get_ref(5).expect("data").as_blob().expect("blob").len();
        let entry = folded.entry(stream).or_default();
        entry.0 += 1;
        entry.1 += data as u64;
        m += 1;
    }
    let baseline_rate = m as f64 / started.elapsed().as_secs_f64();
    (store_rate, baseline_rate)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runs = runs();
    println!("### Event store (embedded), median of {runs} runs\n");
    println!("| benchmark | Ichigen | baseline | ratio | p50 ack | p99 ack |");
    println!("|---|---|---|---|---|---|");
    for (writers, total) in [(1usize, 4_000usize), (16, 40_000), (256, 400_000)] {
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        let mut base = Vec::new();
        for _ in 0..runs {
            let r = rt.block_on(append_run(writers, total));
            rates.push(r.events_per_sec);
            p50s.push(r.p50.as_secs_f64() * 1000.0);
            p99s.push(r.p99.as_secs_f64() * 1000.0);
            base.push(baseline_run(writers, total));
        }
        let (rate, base) = (median(rates), median(base));
        println!(
            "| append, {writers} writers (events/s) | {rate:.0} | {base:.0} | {:.2} | {:.2} ms | {:.2} ms |",
            rate / base,
            median(p50s),
            median(p99s)
        );
    }
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut e2e = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..runs {
        let (p50, p99, end_to_end, n) = rt.block_on(subscription_lag(10_000, 3));
        p50s.push(p50.as_secs_f64() * 1000.0);
        p99s.push(p99.as_secs_f64() * 1000.0);
        e2e.push(end_to_end.as_secs_f64() * 1000.0);
        counts.push(n as f64);
    }
    println!(
        "| subscription lag at 10,000 events/s ({} events): ack → delivery | p50 {:.3} ms, p99 {:.3} ms | – | – | – | – |",
        median(counts),
        median(p50s),
        median(p99s)
    );
    println!(
        "| … append call → delivery (includes the durable commit) | p99 {:.3} ms | – | – | – | – |",
        median(e2e)
    );
    let mut rates = Vec::new();
    let mut base = Vec::new();
    for _ in 0..runs {
        let (r, b) = rt.block_on(replay(1_000_000));
        rates.push(r);
        base.push(b);
    }
    let (rate, base) = (median(rates), median(base));
    println!(
        "| replay 1,000,000 events, read all + fold (events/s) | {rate:.0} | {base:.0} | {:.2} | – | – |",
        rate / base
    );
}
