//! PostgreSQL backend benchmarks (`make bench`), each against a baseline measured in the same
//! run on the same throwaway server (`ichigen_tests::postgres::TestPostgres`: initdb + pg_ctl
//! on 127.0.0.1, fsync and synchronous_commit on):
//!
//! 1. Append throughput and ack latency with 1, 16 and 256 concurrent writers (one event per
//!    append, durable acks), against plain tokio-postgres inserts of the same rows into a table
//!    with the same columns and unique indexes, with the same durability, in transactions of
//!    as many rows as there are writers (what group commit batches at best), one after another.
//! 2. Subscription lag, append ack → subscriber delivery, at a paced 5,000 events/s.
//!
//! Each figure is the median of `ICHIGEN_BENCH_RUNS` runs (default 3). Prints a Markdown table.
//! Needs PostgreSQL's server binaries (see `ichigen_tests::postgres::bin_dir`).

use ichigen_shared::auth::Actor;
use ichigen_shared::benchkit::{self, bench_event, median, runs, AppendRun};
use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore};
use ichigen_shared::store::{DynEventStore, EventStore};
use ichigen_tests::postgres::{bin_dir, TestPostgres};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

async fn client(pg: &TestPostgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// [`benchkit::append_run`] on the server's store, emptied first.
async fn append_run(pg: &TestPostgres, writers: usize, total: usize) -> AppendRun {
    client(pg)
        .await
        .batch_execute("TRUNCATE ichigen_events")
        .await
        .expect("truncate");
    let store: DynEventStore = Arc::new(
        PostgresStore::connect(&pg.url(), PostgresOptions::default())
            .await
            .expect("connect"),
    );
    let run = benchkit::append_run(&store, writers, total).await;
    store.shutdown().await;
    run
}

/// The baseline: the same rows in a table with the same columns and unique indexes, inserted
/// by one client in transactions of `batch` rows (one multi-row insert each), each committed
/// durably before the next.
async fn baseline_run(pg: &TestPostgres, batch: usize, total: usize) -> f64 {
    let c = client(pg).await;
    c.batch_execute(
        "DROP TABLE IF EXISTS baseline_events;
         CREATE TABLE baseline_events (LIKE ichigen_events INCLUDING ALL);
         SET synchronous_commit = on;",
    )
    .await
    .expect("baseline table");
    let actor = Actor::system("bench").to_compact();
    let started = Instant::now();
    let mut position = 0i64;
    let mut revisions = vec![0i64; batch.max(1)];
    while (position as usize) < total {
        let mut positions = Vec::with_capacity(batch);
        let mut streams = Vec::with_capacity(batch);
        let mut revs = Vec::with_capacity(batch);
        let mut ids = Vec::with_capacity(batch);
        let mut types = Vec::with_capacity(batch);
        let mut data = Vec::with_capacity(batch);
        let mut correlations = Vec::with_capacity(batch);
        let mut causations: Vec<Option<Uuid>> = Vec::with_capacity(batch);
        let mut actors = Vec::with_capacity(batch);
        let mut times = Vec::with_capacity(batch);
        for (s, revision) in revisions.iter_mut().enumerate() {
            position += 1;
            let e = bench_event(position as u64);
            positions.push(position);
            streams.push(format!("bench-{s}"));
            revs.push(*revision);
            ids.push(e.id);
            types.push(e.event_type);
            data.push(e.data);
            correlations.push(e.metadata.correlation_id);
            causations.push(None);
            actors.push(actor.clone());
            times.push(e.metadata.occurred_at);
            *revision += 1;
        }
        c.execute(
            "INSERT INTO baseline_events (position, stream, revision, id, type, data, \
             correlation_id, causation_id, actor, occurred_at) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
             $5::text[], $6::bytea[], $7::uuid[], $8::uuid[], $9::text[], $10::timestamptz[])",
            &[
                &positions,
                &streams,
                &revs,
                &ids,
                &types,
                &data,
                &correlations,
                &causations,
                &actors,
                &times,
            ],
        )
        .await
        .expect("insert");
    }
    position as f64 / started.elapsed().as_secs_f64()
}

/// [`benchkit::subscription_lag`] on the server's store.
async fn subscription_lag(
    pg: &TestPostgres,
    rate: u64,
    seconds: u64,
) -> (Duration, Duration, usize) {
    let store: DynEventStore = Arc::new(
        PostgresStore::connect(&pg.url(), PostgresOptions::default())
            .await
            .expect("connect"),
    );
    let lag = benchkit::subscription_lag(&store, rate, seconds).await;
    store.shutdown().await;
    (lag.p50, lag.p99, lag.delivered)
}

fn main() {
    if bin_dir().is_none() {
        eprintln!("postgres_store bench: PostgreSQL is not installed (no initdb); skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pg = TestPostgres::start();
    // Create the schema once.
    rt.block_on(async {
        PostgresStore::connect(&pg.url(), PostgresOptions::default())
            .await
            .expect("connect")
            .shutdown()
            .await
    });
    let runs = runs();
    println!("### Event store (PostgreSQL), median of {runs} runs\n");
    println!("| benchmark | Ichigen | baseline | ratio | p50 ack | p99 ack |");
    println!("|---|---|---|---|---|---|");
    for (writers, total) in [(1usize, 2_000usize), (16, 20_000), (256, 200_000)] {
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        let mut base = Vec::new();
        for _ in 0..runs {
            let r = rt.block_on(append_run(&pg, writers, total));
            rates.push(r.events_per_sec);
            p50s.push(r.p50.as_secs_f64() * 1000.0);
            p99s.push(r.p99.as_secs_f64() * 1000.0);
            base.push(rt.block_on(baseline_run(&pg, writers, total)));
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
    let mut counts = Vec::new();
    for _ in 0..runs {
        let (p50, p99, n) = rt.block_on(subscription_lag(&pg, 5_000, 3));
        p50s.push(p50.as_secs_f64() * 1000.0);
        p99s.push(p99.as_secs_f64() * 1000.0);
        counts.push(n as f64);
    }
    println!(
        "| subscription lag at 5,000 events/s ({} events): ack → delivery | p50 {:.3} ms, p99 {:.3} ms | – | – | – | – |",
        median(counts),
        median(p50s),
        median(p99s)
    );
}
