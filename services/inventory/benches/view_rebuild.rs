//! The inventory view at catalogue scale: 1,000,000 SKU × location rows (100,000 SKUs × 10
//! locations), one `GoodsReceived.v1` each, plus the 10 `LocationDefined.v1`.
//!
//! 1. Setup: the events are written to a fresh embedded store by 4,096 concurrent appends (one
//!    stream per row, so one event per append; the writer group-commits them).
//! 2. Rebuild: `projection::spawn` on a new view until `wait_caught_up`, median of
//!    `ICHIGEN_BENCH_RUNS` runs (default 3).
//! 3. Baseline: the same events applied straight to a new view (no store), median of the same
//!    number of runs; the ratio says what the store's replay costs on top of the apply.
//! 4. Memory of a view holding the 1M rows. The workspace forbids `unsafe`, so there is no
//!    counting `#[global_allocator]` here; the figure is the view's own capacity-based
//!    `heap_bytes()` (exact for its vectors, hash tables and strings, estimated for its B-trees,
//!    no allocator overhead), cross-checked by the process's resident-set growth while the first
//!    pure-apply view is built (Linux `/proc/self/statm`, 4 KiB pages).
//! 5. Reads on the built view, one thread: `levels` and `availability(Online)` per second.
//!
//! Prints a Markdown table.

use ichigen_inventory::domain::location::LocationDefined;
use ichigen_inventory::domain::stock::GoodsReceived;
use ichigen_inventory::domain::{
    location_stream_name, stream_name, Address, Capability, LocationEvent, LocationKind,
    LocationSpec, StockEvent,
};
use ichigen_inventory::projections::{Channel, InventoryView};
use ichigen_shared::auth::Actor;
use ichigen_shared::benchkit::{median, percentile, runs};
use ichigen_shared::envelope::{Metadata, NewEvent, RecordedEvent};
use ichigen_shared::projection::{self, Projection};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{DynEventStore, ExpectedRevision, Position};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SKUS: usize = 100_000;
const LOCATIONS: [&str; 10] = [
    "DC-01", "DC-02", "ST-01", "ST-02", "ST-03", "ST-04", "ST-05", "ST-06", "ST-07", "ST-08",
];
const ROWS: usize = SKUS * LOCATIONS.len();
const EVENTS: usize = ROWS + LOCATIONS.len();
/// Appends in flight while writing the store.
const APPENDERS: usize = 4096;
/// Events per `apply` in the pure baseline: the runtime's batch size.
const BATCH: usize = 2048;

fn sku(row: usize) -> String {
    format!("SKU-{:06}", row / LOCATIONS.len())
}

/// (stream, event type, data) of location `l`'s definition.
fn location_event(l: usize) -> (String, &'static str, Vec<u8>) {
    let code = LOCATIONS[l];
    let dc = code.starts_with("DC");
    let capabilities = if dc {
        [Capability::Ship].into_iter().collect()
    } else {
        [Capability::Pickup, Capability::ShipFromStore]
            .into_iter()
            .collect()
    };
    let event = LocationEvent::LocationDefined(LocationDefined {
        spec: LocationSpec {
            code: code.into(),
            name: format!("Location {code}"),
            kind: if dc {
                LocationKind::Dc
            } else {
                LocationKind::Store
            },
            address: Address {
                line1: "1-1".into(),
                city: "Tokyo".into(),
                postal_code: "100-0001".into(),
                country: "JP".into(),
            },
            lat: 35.6 + l as f64 * 0.01,
            lon: 139.7 + l as f64 * 0.01,
            time_zone: "Asia/Tokyo".into(),
            capabilities,
            pickup_hold_days: 7,
            daily_capacity: Some(500),
        },
    });
    (
        location_stream_name(code),
        event.event_type(),
        event.payload_json().expect("json"),
    )
}

/// (stream, event type, data) of row `i`'s receipt.
fn stock_event(i: usize) -> (String, &'static str, Vec<u8>) {
    let event = StockEvent::GoodsReceived(GoodsReceived {
        qty: 1 + (i % 50) as i64,
        reference: None,
    });
    (
        stream_name(&sku(i), LOCATIONS[i % LOCATIONS.len()]),
        event.event_type(),
        event.payload_json().expect("json"),
    )
}

fn new_event((_, event_type, data): &(String, &'static str, Vec<u8>)) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: event_type.to_string(),
        data: data.clone(),
        metadata: Metadata::new(Actor::system("bench")),
    }
}

/// Writes every event; returns the store and how long it took.
async fn setup(dir: &std::path::Path) -> (DynEventStore, Duration) {
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default())
            .await
            .expect("open"),
    );
    let started = Instant::now();
    for l in 0..LOCATIONS.len() {
        let e = location_event(l);
        store
            .append(&e.0, ExpectedRevision::NoStream, vec![new_event(&e)])
            .await
            .expect("append location");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|_| {
            let store = store.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ROWS {
                        break;
                    }
                    let e = stock_event(i);
                    store
                        .append(&e.0, ExpectedRevision::NoStream, vec![new_event(&e)])
                        .await
                        .expect("append stock");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("appender");
    }
    (store, started.elapsed())
}

/// One rebuild through the store: events/s.
async fn rebuild(store: &DynEventStore) -> (f64, Arc<InventoryView>) {
    let view = Arc::new(InventoryView::new());
    let started = Instant::now();
    let handle = projection::spawn(store.clone(), view.clone());
    handle.wait_caught_up().await.expect("caught up");
    let elapsed = started.elapsed();
    assert_eq!(view.row_count(), ROWS);
    assert_eq!(view.sku_count(), SKUS);
    (EVENTS as f64 / elapsed.as_secs_f64(), view)
}

/// Live: one durable append at a time (a new row each), timed from the append call to the
/// view having applied it (`wait_for` its position), and from the ack to applied. Returns
/// (p50, p99) of both, in that order.
async fn live_latency(store: &DynEventStore) -> [Duration; 4] {
    const LIVE: usize = 2_000;
    let view = Arc::new(InventoryView::new());
    let handle = projection::spawn(store.clone(), view.clone());
    handle.wait_caught_up().await.expect("caught up");
    let mut total = Vec::with_capacity(LIVE);
    let mut after_ack = Vec::with_capacity(LIVE);
    for i in 0..LIVE {
        let e = stock_event(ROWS + i * LOCATIONS.len());
        let started = Instant::now();
        let appended = store
            .append(&e.0, ExpectedRevision::NoStream, vec![new_event(&e)])
            .await
            .expect("append live");
        let acked = Instant::now();
        handle
            .wait_for(appended.position, Duration::from_secs(5))
            .await
            .expect("view applies the live event");
        total.push(started.elapsed());
        after_ack.push(acked.elapsed());
    }
    total.sort();
    after_ack.sort();
    [
        percentile(&total, 0.5),
        percentile(&total, 0.99),
        percentile(&after_ack, 0.5),
        percentile(&after_ack, 0.99),
    ]
}

/// The events as the store would deliver them, in batches of [`BATCH`].
fn recorded_batches() -> Vec<Vec<RecordedEvent>> {
    let metadata = Metadata::new(Actor::system("bench"));
    let all = (0..LOCATIONS.len())
        .map(location_event)
        .chain((0..ROWS).map(stock_event))
        .enumerate()
        .map(|(n, (stream, event_type, data))| RecordedEvent {
            id: Uuid::new_v4(),
            stream: Arc::from(stream),
            revision: 0,
            position: Position::sequence(n as u64 + 1),
            event_type: Arc::from(event_type),
            data: Arc::from(data),
            metadata: metadata.clone(),
        });
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    for e in all {
        batch.push(e);
        if batch.len() == BATCH {
            batches.push(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Pure apply: events/s, and the view.
fn pure_apply(batches: &[Vec<RecordedEvent>]) -> (f64, InventoryView) {
    let view = InventoryView::new();
    let started = Instant::now();
    for batch in batches {
        view.apply(batch);
    }
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    assert_eq!(view.row_count(), ROWS);
    (rate, view)
}

/// Resident set size, from `/proc/self/statm` (4 KiB pages).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runs = runs();
    let rows = ROWS as f64;

    // Pure apply first, while the heap is still small, so that the RSS growth of the first
    // view is the view.
    let batches = recorded_batches();
    let rss_before = rss_bytes();
    let (first_rate, pure) = pure_apply(&batches);
    let rss_growth = rss_bytes()
        .zip(rss_before)
        .map(|(after, before)| after.saturating_sub(before));
    let heap = pure.heap_bytes();
    let mut pure_rates = vec![first_rate];
    for _ in 1..runs {
        pure_rates.push(pure_apply(&batches).0);
    }
    drop(batches);

    // Reads on the built view.
    let skus: Vec<String> = (0..SKUS).map(|s| sku(s * LOCATIONS.len())).collect();
    const READS: usize = 1_000_000;
    let started = Instant::now();
    for q in 0..READS {
        black_box(pure.levels(&skus[(q * 7919) % SKUS], LOCATIONS[q % LOCATIONS.len()]));
    }
    let levels_rate = READS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for q in 0..READS {
        black_box(pure.availability(&skus[(q * 7919) % SKUS], &Channel::Online));
    }
    let availability_rate = READS as f64 / started.elapsed().as_secs_f64();

    // The store.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, setup_time) = rt.block_on(setup(dir.path()));
    let mut rebuild_rates = Vec::new();
    for _ in 0..runs {
        let (rate, view) = rt.block_on(rebuild(&store));
        rebuild_rates.push(rate);
        // The rebuilt view equals the pure one (every 997th row).
        for i in (0..ROWS).step_by(997) {
            let (s, l) = (sku(i), LOCATIONS[i % LOCATIONS.len()]);
            assert_eq!(view.levels(&s, l), pure.levels(&s, l), "{s}@{l}");
        }
    }
    let live = rt.block_on(live_latency(&store));
    rt.block_on(store.shutdown());

    let pure_rate = median(pure_rates);
    let rebuild_rate = median(rebuild_rates);
    println!(
        "### Inventory view: {ROWS} rows ({SKUS} SKUs × {} locations), {EVENTS} events, median of {runs} runs\n",
        LOCATIONS.len()
    );
    println!("| benchmark | result |");
    println!("|---|---|");
    println!(
        "| setup: write {EVENTS} events, {APPENDERS} concurrent appends | {:.1} s ({:.0} events/s) |",
        setup_time.as_secs_f64(),
        EVENTS as f64 / setup_time.as_secs_f64()
    );
    println!(
        "| rebuild: `projection::spawn` → `wait_caught_up` | {:.2} s ({rebuild_rate:.0} events/s) |",
        EVENTS as f64 / rebuild_rate
    );
    println!(
        "| baseline: pure apply, batches of {BATCH} (no store) | {:.2} s ({pure_rate:.0} events/s) |",
        EVENTS as f64 / pure_rate
    );
    println!(
        "| rebuild ÷ pure apply (throughput ratio) | {:.2} |",
        rebuild_rate / pure_rate
    );
    println!(
        "| view heap, `heap_bytes()` (capacity-based) | {:.1} MB = {:.1} bytes/row |",
        mb(heap),
        heap as f64 / rows
    );
    match rss_growth {
        Some(g) => println!(
            "| view RSS growth while built (allocator overhead included) | {:.1} MB = {:.1} bytes/row |",
            mb(g),
            g as f64 / rows
        ),
        None => println!("| view RSS growth | n/a (no /proc/self/statm) |"),
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| live: append call → applied in the view (2,000 sequential appends) | p50 {:.3} ms, p99 {:.3} ms |",
        ms(live[0]),
        ms(live[1])
    );
    println!(
        "| live: durable ack → applied in the view | p50 {:.3} ms, p99 {:.3} ms |",
        ms(live[2]),
        ms(live[3])
    );
    println!("| reads, 1 thread: `levels` | {levels_rate:.0} /s |");
    println!(
        "| reads, 1 thread: `availability(Online)` (10 locations) | {availability_rate:.0} /s |"
    );
}
