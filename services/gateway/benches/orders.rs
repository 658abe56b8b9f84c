//! Orders placed end to end through GraphQL against a plain actix-web handler (`make bench`).
//!
//! The all-in-one server (`serve::start`, `Target::All`, embedded store, 2 HTTP workers)
//! takes `placeOrder` over POST /graphql: JWT, GraphQL parse/validate/execute, pricing from
//! the catalog view, sourcing from the inventory view, reservation (one append per
//! SKU × location), payment authorization and the `OrderPlaced` append — with the server's own
//! processes (fulfillment intake, order reactions, projections) following every order live, as
//! in production.
//!
//! The baseline, in the same run and the same process, is a second stack wired exactly as
//! `serve::start` wires `Target::All` (same services, same in-process adapters, same
//! processes) on its own store, with a bare actix-web route (2 workers) that takes the same
//! order as plain JSON, calls the same `OrderHandlers::place` and answers with serde. So the
//! baseline does the same reservation and event-store work; the ratio shows what the gateway
//! (auth, GraphQL, middleware) costs over it.
//!
//! 2,000 SKUs with catalog prices, stocked at 6 locations (2 DCs, 4 stores) with far more units
//! than the runs take. Each store is seeded before its stack starts, by services on a runtime
//! of their own that is dropped afterwards (as a PIM and a WMS would have loaded it), so only
//! the stack under test follows the store while orders are measured; the stack replays the
//! seeded store on start. Each client is a keep-alive HTTP/1.1 connection placing orders of 1–3
//! random lines (80 % SHIP to a random address around Tokyo or Osaka, 20 % PICKUP at a store),
//! each under a fresh idempotency key, for `MEASURE` after `WARMUP`; only orders answered with
//! `errors: []` count. Median of `ICHIGEN_BENCH_RUNS` runs (default 3).
//!
//! Then, where PostgreSQL's server binaries are installed (and `ICHIGEN_BENCH_POSTGRES` is not
//! `0`), the same GraphQL load against the all-in-one server on a throwaway PostgreSQL
//! (`store.backend = "postgres"`, seeded the same way), at 64 clients, interleaved with a fresh
//! all-in-one server on the embedded store (seeded the same way, so both start equal): the
//! ratio of the two in the same run. `ICHIGEN_BENCH_POSTGRES=only` runs just that comparison.
//!
//! For diagnosis: `ICHIGEN_BENCH_CLIENTS=64` (comma-separated client counts),
//! `ICHIGEN_BENCH_SECONDS=30` (a longer measurement) and `ICHIGEN_BENCH_TIMELINE=1` (orders,
//! p99 and the slowest order of every second, to tell a steady queue from stalls).

mod support;

use actix_web::{web, App, HttpResponse, HttpServer};
use ichigen_gateway::auth::JwtAuth;
use ichigen_gateway::serve::{self, Target};
use ichigen_gateway::wiring::{InProcessFulfillment, InProcessInventory};
use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::InventoryService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::Channel;
use ichigen_order::domain::sourcing::Delivery;
use ichigen_order::handlers::order::{LineRequest, PlaceRequest};
use ichigen_order::OrderService;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::benchkit::{median, percentile, runs};
use ichigen_shared::clock::{Clock, SystemClock};
use ichigen_shared::config::Settings;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use ichigen_shared::store::{DynEventStore, Position};
use ichigen_shared::tasks::Processes;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::exchange;
use tokio::net::TcpStream;

const SKUS: usize = 2_000;
const CLIENT_COUNTS: [usize; 2] = [16, 64];
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
const SECRET: &str = "orders-bench-secret-0123456789abcdef";
/// Units per SKU × location: far more than all runs together take.
const UNITS: i64 = 1_000_000;

/// (code, kind, lat, lon, capabilities)
type BenchLocation = (&'static str, LocationKind, f64, f64, &'static [Capability]);

const LOCATIONS: &[BenchLocation] = &[
    (
        "TKY-DC1",
        LocationKind::Dc,
        35.6983,
        139.9320,
        &[Capability::Ship, Capability::Returns],
    ),
    (
        "OSA-DC1",
        LocationKind::Dc,
        34.6167,
        135.4460,
        &[Capability::Ship, Capability::Returns],
    ),
    (
        "TKY-SHIBUYA",
        LocationKind::Store,
        35.6595,
        139.7005,
        &[Capability::Pickup, Capability::ShipFromStore],
    ),
    (
        "TKY-SHINJUKU",
        LocationKind::Store,
        35.6909,
        139.7003,
        &[Capability::Pickup],
    ),
    (
        "YOK-MINATOMIRAI",
        LocationKind::Store,
        35.4564,
        139.6317,
        &[Capability::Pickup, Capability::ShipFromStore],
    ),
    (
        "OSA-UMEDA",
        LocationKind::Store,
        34.7025,
        135.4959,
        &[Capability::Pickup],
    ),
];
const PICKUP_STORES: &[&str] = &[
    "TKY-SHIBUYA",
    "TKY-SHINJUKU",
    "YOK-MINATOMIRAI",
    "OSA-UMEDA",
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    actix_web::rt::System::with_tokio_rt(|| runtime).block_on(bench());
}

/// One measured phase: orders/s, p50, p99, failures.
#[derive(Clone, Debug)]
struct Phase {
    rate: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
    /// Latencies of the orders answered in each second of the measurement.
    per_second: Vec<Vec<Duration>>,
}

async fn bench() {
    if std::env::var("ICHIGEN_BENCH_POSTGRES").as_deref() == Ok("only") {
        on_postgres().await;
        return;
    }
    // The system under test: the all-in-one server, started on a store seeded beforehand (it
    // replays it on start, as after any restart).
    let dir = seeded_store();
    let mut settings = bench_settings();
    settings.store.path = dir.path().to_path_buf();
    let started = Instant::now();
    let server = serve::start(settings, Target::All).await.expect("server");
    let client_counts = client_counts();
    let tokens = tokens(*client_counts.iter().max().expect("counts"));
    let graphql = server.addr;
    // The server's views replay the seeded store: wait until an order goes through.
    wait_until_orderable(graphql, Api::Graphql, &tokens).await;
    println!(
        "server started on a store seeded with {SKUS} SKUs x {} locations, orderable after {:.1} s",
        LOCATIONS.len(),
        started.elapsed().as_secs_f64()
    );

    // The baseline: the same stack on its own store, seeded the same way, behind a plain
    // actix-web route.
    let base_dir = seeded_store();
    let mut base_settings = Settings::default();
    base_settings.store.path = base_dir.path().to_path_buf();
    let base_store = serve::open_store(&base_settings)
        .await
        .expect("baseline store");
    let orders = start_stack(base_store.clone());
    let (baseline, baseline_handle) = start_baseline(orders);
    wait_until_orderable(baseline, Api::Plain, &tokens).await;
    println!("baseline started");

    let timeline = std::env::var_os("ICHIGEN_BENCH_TIMELINE").is_some();
    let mut results: Vec<Vec<(Phase, Phase)>> = vec![Vec::new(); client_counts.len()];
    for run in 0..runs() {
        for (i, &clients) in client_counts.iter().enumerate() {
            let tag = format!("r{run}c{clients}");
            let g = drive(graphql, clients, &tag, tokens.clone(), Api::Graphql).await;
            settle(&server.store).await;
            let b = drive(baseline, clients, &tag, tokens.clone(), Api::Plain).await;
            settle(&base_store).await;
            println!(
                "run {run}, {clients:>2} clients: graphql {:.0} orders/s p50 {:.2} ms p99 {:.2} ms \
                 ({} failed) | plain actix {:.0} orders/s p50 {:.2} ms p99 {:.2} ms ({} failed)",
                g.rate,
                ms(g.p50),
                ms(g.p99),
                g.failed,
                b.rate,
                ms(b.p50),
                ms(b.p99),
                b.failed
            );
            if timeline {
                print_timeline("graphql", &g);
                print_timeline("plain actix", &b);
            }
            results[i].push((g, b));
        }
    }
    println!();
    println!("| clients | GraphQL orders/s | p50 | p99 | plain actix orders/s | p50 | p99 | ratio | failed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, clients) in client_counts.iter().enumerate() {
        let r = &results[i];
        let med = |f: &dyn Fn(&(Phase, Phase)) -> f64| median(r.iter().map(f).collect());
        let g_rate = med(&|x| x.0.rate);
        let b_rate = med(&|x| x.1.rate);
        println!(
            "| {clients} | {g_rate:.0} | {:.2} ms | {:.2} ms | {b_rate:.0} | {:.2} ms | {:.2} ms | {:.2} | {} / {} |",
            med(&|x| ms(x.0.p50)),
            med(&|x| ms(x.0.p99)),
            med(&|x| ms(x.1.p50)),
            med(&|x| ms(x.1.p99)),
            g_rate / b_rate,
            r.iter().map(|x| x.0.failed).sum::<usize>(),
            r.iter().map(|x| x.1.failed).sum::<usize>(),
        );
    }
    report_store_work(&server.store, timeline).await;
    baseline_handle.stop(true).await;
    base_store.shutdown().await;
    server.stop().await;
    drop(dir);
    if std::env::var("ICHIGEN_BENCH_POSTGRES").as_deref() != Ok("0") {
        on_postgres().await;
    }
}

/// Customers' tokens for `n` clients.
fn tokens(n: usize) -> Arc<Vec<String>> {
    Arc::new(
        (0..n)
            .map(|c| {
                JwtAuth::new(SECRET)
                    .mint(
                        Role::Customer,
                        &customer(c),
                        None,
                        chrono::Duration::hours(2),
                    )
                    .expect("token")
            })
            .collect(),
    )
}

/// The server's settings for the bench (2 HTTP workers, the bench's secret).
fn bench_settings() -> Settings {
    let mut settings = Settings::default();
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = 2;
    settings.http.shutdown_timeout_secs = 1;
    settings.auth.secret = SECRET.into();
    settings
}

/// The GraphQL load at 64 clients on the all-in-one server on PostgreSQL, interleaved with a
/// fresh one on the embedded store, both seeded alike, so that both are measured under the same
/// conditions.
async fn on_postgres() {
    if ichigen_shared::test_postgres::bin_dir().is_none() {
        println!("PostgreSQL is not installed (no initdb): the PostgreSQL comparison is skipped");
        return;
    }
    let tokens = tokens(64);
    let embedded_dir = seeded_store();
    let mut embedded_settings = bench_settings();
    embedded_settings.store.path = embedded_dir.path().to_path_buf();
    let embedded = serve::start(embedded_settings, Target::All)
        .await
        .expect("embedded server");
    wait_until_orderable(embedded.addr, Api::Graphql, &tokens).await;
    let pg = ichigen_shared::test_postgres::TestPostgres::start();
    let url = pg.url();
    {
        let url = url.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("seeding runtime");
            runtime.block_on(async move {
                let store: DynEventStore = Arc::new(
                    ichigen_shared::store::postgres::PostgresStore::connect(
                        &url,
                        Default::default(),
                    )
                    .await
                    .expect("seed store"),
                );
                seed_through_second_instance(&store).await;
                store.shutdown().await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        })
        .join()
        .expect("seeding thread");
    }
    let mut settings = Settings::default();
    settings.store.backend = ichigen_shared::config::Backend::Postgres;
    settings.store.url = url;
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = 2;
    settings.http.shutdown_timeout_secs = 1;
    settings.auth.secret = SECRET.into();
    let server = serve::start(settings, Target::All)
        .await
        .expect("server on PostgreSQL");
    wait_until_orderable(server.addr, Api::Graphql, &tokens).await;
    let mut pairs = Vec::new();
    for run in 0..runs() {
        let tag = format!("pg{run}");
        let p = drive(server.addr, 64, &tag, tokens.clone(), Api::Graphql).await;
        settle(&server.store).await;
        let e = drive(
            embedded.addr,
            64,
            &format!("e{tag}"),
            tokens.clone(),
            Api::Graphql,
        )
        .await;
        settle(&embedded.store).await;
        println!(
            "run {run}, 64 clients: PostgreSQL {:.0} orders/s p50 {:.2} ms p99 {:.2} ms ({} failed) \
             | embedded {:.0} orders/s p99 {:.2} ms",
            p.rate,
            ms(p.p50),
            ms(p.p99),
            p.failed,
            e.rate,
            ms(e.p99)
        );
        pairs.push((p, e));
    }
    let med = |f: &dyn Fn(&(Phase, Phase)) -> f64| median(pairs.iter().map(f).collect());
    let (p_rate, e_rate) = (med(&|x| x.0.rate), med(&|x| x.1.rate));
    println!();
    println!("| store | GraphQL orders/s (64 clients) | p50 | p99 | ratio to embedded | failed |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| PostgreSQL | {p_rate:.0} | {:.2} ms | {:.2} ms | {:.2} | {} |",
        med(&|x| ms(x.0.p50)),
        med(&|x| ms(x.0.p99)),
        p_rate / e_rate,
        pairs.iter().map(|x| x.0.failed).sum::<usize>()
    );
    println!(
        "| embedded | {e_rate:.0} | {:.2} ms | {:.2} ms | 1.00 | {} |",
        med(&|x| ms(x.1.p50)),
        med(&|x| ms(x.1.p99)),
        pairs.iter().map(|x| x.1.failed).sum::<usize>()
    );
    server.stop().await;
    embedded.stop().await;
}

/// The client counts measured: `ICHIGEN_BENCH_CLIENTS` (comma-separated), default 16 and 64.
fn client_counts() -> Vec<usize> {
    std::env::var("ICHIGEN_BENCH_CLIENTS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty() && v.iter().all(|n| *n > 0))
        .unwrap_or_else(|| CLIENT_COUNTS.to_vec())
}

/// How long each phase is measured: `ICHIGEN_BENCH_SECONDS`, default [`MEASURE`].
fn measure() -> Duration {
    std::env::var("ICHIGEN_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .map_or(MEASURE, Duration::from_secs)
}

/// `ICHIGEN_BENCH_TIMELINE=1`: orders, p99 and the slowest order per second of a phase, to
/// tell a steady queue from stalls.
fn print_timeline(label: &str, phase: &Phase) {
    for (second, latencies) in phase.per_second.iter().enumerate() {
        let mut sorted = latencies.clone();
        sorted.sort();
        println!(
            "  {label} second {second}: {} orders, p99 {:.2} ms, max {:.2} ms",
            sorted.len(),
            ms(percentile(&sorted, 0.99)),
            ms(sorted.last().copied().unwrap_or_default())
        );
    }
}

/// A fresh store directory seeded with the bench's locations, catalog and stock by an
/// inventory and order service of its own, on a runtime of its own that is then dropped, so
/// nothing of the seeding instance (its views, its processes) runs while orders are measured.
fn seeded_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("seeding runtime");
        runtime.block_on(async move {
            let mut settings = Settings::default();
            settings.store.path = path;
            let store = serve::open_store(&settings).await.expect("seed store");
            seed_through_second_instance(&store).await;
            store.shutdown().await;
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
    })
    .join()
    .expect("seeding thread");
    dir
}

/// What the GraphQL server's store holds per order placed (seeding included: 12,000
/// `GoodsReceived` and 2,000 catalog events), and the events per group commit of both stacks'
/// writers from the metrics registry: the per-order store work quoted in BENCHMARKS.md. With
/// `timeline`, also the store's commit and append latency histograms.
async fn report_store_work(store: &DynEventStore, timeline: bool) {
    let mut by_type: std::collections::BTreeMap<String, u64> = Default::default();
    let mut after = None;
    loop {
        let page = store.read_all(after, 10_000).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        for e in &page {
            *by_type.entry(e.event_type.to_string()).or_default() += 1;
        }
    }
    let orders = by_type.get("OrderPlaced.v1").copied().unwrap_or(0);
    println!();
    println!("store events of the GraphQL server ({orders} orders placed):");
    for (event_type, n) in &by_type {
        println!(
            "  {event_type}: {n} ({:.2} per order)",
            *n as f64 / orders.max(1) as f64
        );
    }
    let metrics = ichigen_shared::telemetry::metrics::global().render();
    let total = |suffix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("ichigen_store_commit_batch_events{suffix}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    println!(
        "events per group commit (both stacks, whole process): {:.2}",
        total("_sum") / total("_count").max(1.0)
    );
    if timeline {
        for line in metrics.lines().filter(|l| {
            l.starts_with("ichigen_store_commit_seconds_bucket")
                || l.starts_with("ichigen_store_append_seconds_bucket")
        }) {
            println!("  {line}");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn customer(c: usize) -> String {
    format!("bench-customer-{c}")
}

/// Seeds through an inventory and order service of its own over `store` (it writes streams
/// nobody else writes yet), then waits for its own views.
async fn seed_through_second_instance(store: &DynEventStore) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let inventory = InventoryService::start_with(
        store.clone(),
        clock.clone(),
        ichigen_inventory::service::Processes::None,
    );
    let orders = OrderService::start(
        store.clone(),
        clock,
        Arc::new(InProcessInventory(inventory.clone())),
        Arc::new(ichigen_order::payment::ManualProvider::new()),
    );
    seed(&inventory, &orders).await;
}

async fn seed(inventory: &InventoryService, orders: &OrderService) {
    let meta = || Metadata::new(Actor::system("bench-seed"));
    for &(code, kind, lat, lon, caps) in LOCATIONS {
        let spec = LocationSpec {
            code: code.into(),
            name: code.into(),
            kind,
            address: Address {
                line1: "1-1-1".into(),
                city: "Tokyo".into(),
                postal_code: "100-0001".into(),
                country: "JP".into(),
            },
            lat,
            lon,
            time_zone: "Asia/Tokyo".into(),
            capabilities: caps.iter().copied().collect(),
            pickup_hold_days: 7,
            daily_capacity: Some(10_000_000),
        };
        inventory
            .locations
            .execute(LocationCommand::Define(spec), meta())
            .await
            .expect("define");
    }
    // Catalog first, then stock; the last SKU (the probe's, see `wait_until_orderable`) is
    // written after all others in both, so a view that knows it knows everything.
    let (first, last) = (0..SKUS - 1, SKUS - 1);
    let tasks: Vec<_> = first
        .clone()
        .map(|s| {
            let catalog = orders.catalog.handlers.clone();
            tokio::spawn(async move { upsert(&catalog, s).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("seed task");
    }
    let catalog_head = upsert(&orders.catalog.handlers, last).await;
    let tasks: Vec<_> = first
        .map(|s| {
            let stock = inventory.stock.clone();
            tokio::spawn(async move { receive(&stock, s).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("seed task");
    }
    let stock_head = receive(&inventory.stock, last).await;
    // This instance's own views follow the store too: let them finish before anything runs.
    inventory
        .view_handle
        .wait_for(stock_head, Duration::from_secs(120))
        .await
        .expect("seed inventory view");
    orders
        .catalog
        .view_handle
        .wait_for(catalog_head, Duration::from_secs(120))
        .await
        .expect("seed catalog view");
}

async fn upsert(catalog: &ichigen_order::handlers::catalog::CatalogHandlers, s: usize) -> Position {
    let price = Money::parse(&format!("{}", 990 + (s % 50) * 100), "JPY").expect("price");
    catalog
        .execute(
            &format!("SKU-{s}"),
            CatalogCommand::Upsert(ItemSpec {
                title: format!("Bench item {s}"),
                price,
                attributes: Default::default(),
                active: true,
            }),
            Metadata::new(Actor::system("bench-seed")),
        )
        .await
        .expect("catalog")
        .position
        .expect("a new item is written")
}

/// Stocks SKU `s` at every location (the last location last); returns the last position.
async fn receive(stock: &ichigen_inventory::handlers::StockHandlers, s: usize) -> Position {
    let mut last = None;
    for (code, ..) in LOCATIONS {
        last = stock
            .execute(
                &format!("SKU-{s}"),
                code,
                vec![StockCommand::ReceiveGoods {
                    qty: UNITS,
                    reference: None,
                }],
                Metadata::new(Actor::system("bench-seed")),
            )
            .await
            .expect("receive")
            .position;
    }
    last.expect("receipts are written")
}

/// The baseline stack: what `serve::start` builds for `Target::All`, without the HTTP server
/// (each service's own start-up with its processes).
fn start_stack(store: DynEventStore) -> OrderService {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let inventory = InventoryService::start(store.clone(), clock.clone());
    let view = inventory.view.clone();
    let hold_days: ichigen_fulfillment::process::order_intake::HoldDays =
        Arc::new(move |code: &str| ichigen_gateway::wiring::pickup_hold(&view, code));
    let fulfillment = ichigen_fulfillment::FulfillmentService::start_with(
        store.clone(),
        clock.clone(),
        hold_days,
        Processes::Run,
    );
    OrderService::start_with(
        store,
        clock,
        Arc::new(InProcessInventory(inventory)),
        Arc::new(ichigen_order::payment::ManualProvider::new()),
        Arc::new(InProcessFulfillment(fulfillment.cancellation())),
        Processes::Run,
    )
}

#[derive(Deserialize)]
struct PlainOrder {
    customer: String,
    key: String,
    lines: Vec<PlainLine>,
}

#[derive(Deserialize)]
struct PlainLine {
    sku: String,
    qty: i64,
    #[serde(default)]
    ship: Option<(f64, f64)>,
    #[serde(default)]
    pickup: Option<String>,
}

/// The baseline route: the same order as plain JSON, straight into `OrderHandlers::place`.
fn start_baseline(orders: OrderService) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(orders.clone()))
            .route("/orders", web::post().to(baseline_handler))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .expect("bind baseline");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (addr, handle)
}

async fn baseline_handler(
    orders: web::Data<OrderService>,
    body: web::Json<PlainOrder>,
) -> HttpResponse {
    let body = body.into_inner();
    let lines = body
        .lines
        .into_iter()
        .map(|l| LineRequest {
            sku: l.sku,
            qty: l.qty,
            delivery: match (l.ship, l.pickup) {
                (Some((lat, lon)), _) => Delivery::Ship { lat, lon },
                (None, Some(store)) => Delivery::Pickup { store },
                (None, None) => Delivery::Ship {
                    lat: f64::NAN,
                    lon: f64::NAN,
                },
            },
        })
        .collect();
    let actor = Actor {
        role: Role::Customer,
        subject: body.customer.clone(),
        store_id: None,
    };
    let request = PlaceRequest {
        customer_id: Some(body.customer),
        channel: Channel::Web,
        lines,
        allow_partial: false,
        idempotency_key: body.key,
        credit: None,
    };
    match orders.orders.place(request, Metadata::new(actor)).await {
        Ok(placed) => HttpResponse::Ok().json(serde_json::json!({
            "order": { "id": placed.order_id.to_string(), "status": "PLACED" },
            "position": placed.position.map(|p| p.to_string()),
            "errors": [],
        })),
        Err(e) => HttpResponse::Ok().json(serde_json::json!({
            "order": null,
            "errors": [{ "message": e.to_string() }],
        })),
    }
}

/// One random order: (sku index, qty) lines and a delivery.
struct OrderShape {
    lines: Vec<(usize, i64)>,
    delivery: BenchDelivery,
}

enum BenchDelivery {
    Ship(f64, f64),
    Pickup(&'static str),
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_order(rng: &mut Rng) -> OrderShape {
    let count = 1 + rng.below(3);
    let mut lines: Vec<(usize, i64)> = Vec::with_capacity(count);
    while lines.len() < count {
        let sku = rng.below(SKUS);
        if lines.iter().all(|(s, _)| *s != sku) {
            lines.push((sku, 1 + rng.below(2) as i64));
        }
    }
    let delivery = if rng.below(5) == 0 {
        BenchDelivery::Pickup(PICKUP_STORES[rng.below(PICKUP_STORES.len())])
    } else if rng.below(3) == 0 {
        // Around Osaka.
        BenchDelivery::Ship(34.55 + rng.unit() * 0.3, 135.35 + rng.unit() * 0.3)
    } else {
        // Around Tokyo.
        BenchDelivery::Ship(35.55 + rng.unit() * 0.3, 139.55 + rng.unit() * 0.4)
    };
    OrderShape { lines, delivery }
}

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id status } position errors { code message } } }";

fn graphql_request(addr: SocketAddr, token: &str, key: &str, order: &OrderShape) -> Vec<u8> {
    let delivery = match &order.delivery {
        BenchDelivery::Ship(lat, lon) => format!(
            "{{\"method\":\"SHIP\",\"address\":{{\"line1\":\"1-2-3\",\"city\":\"Tokyo\",\
             \"postalCode\":\"100-0005\",\"country\":\"JP\",\"lat\":{lat},\"lon\":{lon}}}}}"
        ),
        BenchDelivery::Pickup(store) => format!(
            "{{\"method\":\"PICKUP\",\"store\":\"{}\"}}",
            *ichigen_shared::graphql::conventions::encode_id("Location", store)
        ),
    };
    let lines: Vec<String> = order
        .lines
        .iter()
        .map(|(sku, qty)| {
            format!("{{\"sku\":\"SKU-{sku}\",\"quantity\":{qty},\"delivery\":{delivery}}}")
        })
        .collect();
    let body = format!(
        "{{\"query\":\"{PLACE}\",\"variables\":{{\"input\":{{\"idempotencyKey\":\"{key}\",\"lines\":[{}]}}}}}}",
        lines.join(",")
    );
    format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn baseline_request(addr: SocketAddr, customer: &str, key: &str, order: &OrderShape) -> Vec<u8> {
    let delivery = match &order.delivery {
        BenchDelivery::Ship(lat, lon) => format!("\"ship\":[{lat},{lon}]"),
        BenchDelivery::Pickup(store) => format!("\"pickup\":\"{store}\""),
    };
    let lines: Vec<String> = order
        .lines
        .iter()
        .map(|(sku, qty)| format!("{{\"sku\":\"SKU-{sku}\",\"qty\":{qty},{delivery}}}"))
        .collect();
    let body = format!(
        "{{\"customer\":\"{customer}\",\"key\":\"{key}\",\"lines\":[{}]}}",
        lines.join(",")
    );
    format!(
        "POST /orders HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Which door the orders go through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// POST /graphql `placeOrder` on the server, with a customer's bearer token.
    Graphql,
    /// POST /orders on the baseline route, the customer named in the body.
    Plain,
}

impl Api {
    /// One request: `c` is the client (its customer), `key` the idempotency key.
    fn request(
        self,
        addr: SocketAddr,
        tokens: &[String],
        c: usize,
        key: &str,
        order: &OrderShape,
    ) -> Vec<u8> {
        match self {
            Api::Graphql => graphql_request(addr, &tokens[c], key, order),
            Api::Plain => baseline_request(addr, &customer(c), key, order),
        }
    }
}

fn placed(body: &[u8]) -> bool {
    body.windows(12).any(|w| w == b"\"errors\":[]}")
        || body.windows(11).any(|w| w == b"\"errors\":[]")
}

/// Places a probe order until it succeeds: every view the order path reads has caught up.
async fn wait_until_orderable(addr: SocketAddr, api: Api, tokens: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    for attempt in 0.. {
        let order = OrderShape {
            // The SKU seeded last, at the location stocked last.
            lines: vec![(SKUS - 1, 1)],
            delivery: BenchDelivery::Pickup("OSA-UMEDA"),
        };
        let request = api.request(addr, tokens, 0, &format!("probe-{attempt}"), &order);
        let body = exchange(&mut conn, &request).await;
        if placed(&body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "views never caught up: {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the store's head stops moving: the processes that follow orders (fulfillment
/// intake, hold confirmation) have caught up, so the next phase does not pay for this one.
async fn settle(store: &DynEventStore) {
    let mut last = store.head().await.expect("head");
    let mut still = 0;
    while still < 5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let head = store.head().await.expect("head");
        if head == last {
            still += 1;
        } else {
            still = 0;
            last = head;
        }
    }
}

/// `clients` keep-alive connections placing random orders for [`measure`] after `WARMUP`.
async fn drive(
    addr: SocketAddr,
    clients: usize,
    tag: &str,
    tokens: Arc<Vec<String>>,
    api: Api,
) -> Phase {
    let measure = measure();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let tag = tag.to_string();
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                // (answered at, since the measurement began; latency)
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                let mut rng = Rng((c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                for n in 0u64.. {
                    let order = random_order(&mut rng);
                    let request = api.request(addr, &tokens, c, &format!("{tag}-{c}-{n}"), &order);
                    let sent = Instant::now();
                    let body = exchange(&mut conn, &request).await;
                    let now = Instant::now();
                    if now - start > WARMUP + measure {
                        break;
                    }
                    if now - start > WARMUP {
                        if placed(&body) {
                            latencies.push((now - start - WARMUP, now - sent));
                        } else {
                            if failed == 0 {
                                eprintln!("failed order: {}", String::from_utf8_lossy(&body));
                            }
                            failed += 1;
                        }
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per_second = vec![Vec::new(); measure.as_secs() as usize];
    let mut failed = 0;
    for t in tasks {
        let (latencies, f) = t.await.expect("client");
        for (at, latency) in latencies {
            if let Some(second) = per_second.get_mut(at.as_secs() as usize) {
                second.push(latency);
            }
            all.push(latency);
        }
        failed += f;
    }
    all.sort();
    Phase {
        rate: all.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        failed,
        per_second,
    }
}
