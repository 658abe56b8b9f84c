//! Reservation throughput through the stock handlers on the embedded store (`make bench`):
//! a hot SKU (every client on one SKU × location) and a spread load (10,000 SKUs), each with
//! 1,000 concurrent clients reserving one unit at a time, durable acks, and an oversell check.
//! Median of `ICHIGEN_BENCH_RUNS` runs (default 3).

use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::InventoryService;
use ichigen_shared::auth::Actor;
use ichigen_shared::benchkit::{median, percentile, runs};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 1000;

/// Reserves `total` single units from `CLIENTS` clients over `skus` SKUs at one store; returns
/// reservations/s and p99 latency, after checking that nothing was oversold.
async fn run(skus: usize, total: usize, stock_per_sku: i64) -> (f64, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .expect("open"),
    );
    // The production path: the service's handlers, with the location check every command makes.
    let service = InventoryService::start(store.clone(), Arc::new(SystemClock));
    let meta = || Metadata::new(Actor::system("bench"));
    service
        .locations
        .execute(LocationCommand::Define(store_spec()), meta())
        .await
        .expect("define S1");
    let h = service.stock.clone();
    let receipts: Vec<_> = (0..skus)
        .map(|s| {
            let h = h.clone();
            tokio::spawn(async move {
                h.execute(
                    &format!("SKU-{s}"),
                    "S1",
                    vec![StockCommand::ReceiveGoods {
                        qty: stock_per_sku,
                        reference: None,
                    }],
                    Metadata::new(Actor::system("bench")),
                )
                .await
                .expect("receive")
            })
        })
        .collect();
    for r in receipts {
        r.await.expect("receipt");
    }
    let won = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let per_client = total / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let h = h.clone();
            let won = won.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let sku = format!("SKU-{}", (c * per_client + i) % skus);
                    let t = Instant::now();
                    let r = h
                        .execute(
                            &sku,
                            "S1",
                            vec![StockCommand::Reserve {
                                reservation_id: format!("c{c}-{i}"),
                                owner: format!("cart:{c}"),
                                qty: 1,
                                expires_at: None,
                            }],
                            meta(),
                        )
                        .await;
                    latencies.push(t.elapsed());
                    if r.is_ok() {
                        won.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    // Zero oversell: reserved per SKU never exceeds on hand, and sums to the successes.
    let mut reserved = 0;
    for s in 0..skus {
        let item = h.load(&format!("SKU-{s}"), "S1").await.expect("load");
        assert!(item.reserved <= item.on_hand, "oversold SKU-{s}");
        reserved += item.reserved;
    }
    assert_eq!(reserved as u64, won.load(Ordering::Relaxed));
    store.shutdown().await;
    latencies.sort();
    (rate, percentile(&latencies, 0.99))
}

fn store_spec() -> LocationSpec {
    LocationSpec {
        code: "S1".into(),
        name: "Store 1".into(),
        kind: LocationKind::Store,
        address: Address {
            line1: "1".into(),
            city: "Tokyo".into(),
            postal_code: "100-0001".into(),
            country: "JP".into(),
        },
        lat: 35.68,
        lon: 139.76,
        time_zone: "Asia/Tokyo".into(),
        capabilities: [Capability::Pickup].into_iter().collect(),
        pickup_hold_days: 3,
        daily_capacity: Some(100),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runs = runs();
    println!("### Reservations (embedded store, {CLIENTS} clients), median of {runs} runs\n");
    println!("| benchmark | reservations/s | p99 latency |");
    println!("|---|---|---|");
    for (name, skus, total, stock) in [
        (
            "hot SKU: one SKU × location",
            1usize,
            100_000usize,
            1_000_000i64,
        ),
        ("spread: 10,000 SKUs", 10_000, 200_000, 1_000),
    ] {
        let mut rates = Vec::new();
        let mut p99s = Vec::new();
        for _ in 0..runs {
            let (rate, p99) = rt.block_on(run(skus, total, stock));
            rates.push(rate);
            p99s.push(p99.as_secs_f64() * 1000.0);
        }
        println!("| {name} | {:.0} | {:.2} ms |", median(rates), median(p99s));
    }
}
