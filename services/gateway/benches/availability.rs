//! Availability through GraphQL against a plain actix-web handler (`make bench`).
//!
//! The all-in-one server (`serve::start`, embedded store, 2 HTTP workers) answers
//! `availability(sku)` over POST /graphql; the baseline is a bare actix-web handler, in the
//! same process and with the same worker count, that answers the same question from an
//! inventory view over the same store and serialises it with serde. Both are driven by the
//! same keep-alive HTTP/1.1 clients on this machine, in the same run, so the ratio shows what
//! GraphQL (parse, validate, execute, auth context) costs over the bare minimum.
//!
//! 10,000 SKUs at 6 locations (2 DCs ship, 4 stores, 2 of which ship from store); each request
//! asks for a random SKU. Median of `ICHIGEN_BENCH_RUNS` runs (default 3).

mod support;

use actix_web::{web, App, HttpResponse, HttpServer};
use ichigen_gateway::serve::{self, Target};
use ichigen_inventory::domain::{
    Address, Capability, LocationCommand, LocationKind, LocationSpec, StockCommand,
};
use ichigen_inventory::projections::view::{Channel, InventoryView};
use ichigen_inventory::InventoryService;
use ichigen_shared::auth::Actor;
use ichigen_shared::benchkit::{median, percentile, runs};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::config::Settings;
use ichigen_shared::envelope::Metadata;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::exchange;
use tokio::net::TcpStream;

const SKUS: usize = 10_000;
const CLIENTS: usize = 32;
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

const LOCATIONS: &[(&str, LocationKind, f64, f64, &[Capability])] = &[
    ("DC-E", LocationKind::Dc, 35.70, 139.93, &[Capability::Ship]),
    ("DC-W", LocationKind::Dc, 34.62, 135.45, &[Capability::Ship]),
    (
        "S-1",
        LocationKind::Store,
        35.66,
        139.70,
        &[Capability::Pickup, Capability::ShipFromStore],
    ),
    (
        "S-2",
        LocationKind::Store,
        35.69,
        139.70,
        &[Capability::Pickup],
    ),
    (
        "S-3",
        LocationKind::Store,
        35.46,
        139.63,
        &[Capability::Pickup, Capability::ShipFromStore],
    ),
    (
        "S-4",
        LocationKind::Store,
        34.70,
        135.50,
        &[Capability::Pickup],
    ),
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    actix_web::rt::System::with_tokio_rt(|| runtime).block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::default();
    settings.store.path = dir.path().to_path_buf();
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = 2;
    let server = serve::start(settings, Target::All).await.expect("server");
    let service = InventoryService::start(server.store.clone(), Arc::new(SystemClock));
    let seeded = Instant::now();
    seed(&service).await;
    // Both views must show every receipt before anything is measured.
    let head = server.store.head().await.expect("head").expect("events");
    service
        .view_handle
        .wait_for(head, Duration::from_secs(60))
        .await
        .expect("bench view");
    println!(
        "seeded {} SKUs x {} locations in {:.1} s",
        SKUS,
        LOCATIONS.len(),
        seeded.elapsed().as_secs_f64()
    );

    let baseline = start_baseline(service.view.clone());
    let graphql_addr = server.addr;
    // The server's own view replays the same store; wait for it through a query.
    wait_until_seeded(graphql_addr).await;

    let mut results: Vec<(f64, Duration, f64, Duration)> = Vec::new();
    for run in 0..runs() {
        let (g_qps, g_p99) = drive(graphql_addr, graphql_request).await;
        let (b_qps, b_p99) = drive(baseline.0, baseline_request).await;
        println!(
            "run {run}: graphql {g_qps:.0} q/s p99 {:.2} ms | plain actix {b_qps:.0} q/s p99 {:.2} ms",
            g_p99.as_secs_f64() * 1e3,
            b_p99.as_secs_f64() * 1e3
        );
        results.push((g_qps, g_p99, b_qps, b_p99));
    }
    let g_qps = median(results.iter().map(|r| r.0).collect());
    let g_p99 = median(results.iter().map(|r| r.1.as_secs_f64() * 1e3).collect());
    let b_qps = median(results.iter().map(|r| r.2).collect());
    let b_p99 = median(results.iter().map(|r| r.3.as_secs_f64() * 1e3).collect());
    println!();
    println!("| availability, {CLIENTS} keep-alive clients, 2 HTTP workers | queries/s | p99 |");
    println!("|---|---|---|");
    println!("| GraphQL `availability(sku)` | {g_qps:.0} | {g_p99:.2} ms |");
    println!("| plain actix-web handler (baseline) | {b_qps:.0} | {b_p99:.2} ms |");
    println!("| ratio GraphQL / baseline | {:.2} | |", g_qps / b_qps);
    baseline.1.stop(true).await;
    server.stop().await;
}

async fn seed(service: &InventoryService) {
    let meta = || Metadata::new(Actor::system("bench"));
    for &(code, kind, lat, lon, caps) in LOCATIONS {
        let spec = LocationSpec {
            code: code.into(),
            name: code.into(),
            kind,
            address: Address {
                line1: "1".into(),
                city: "Tokyo".into(),
                postal_code: "100-0001".into(),
                country: "JP".into(),
            },
            lat,
            lon,
            time_zone: "Asia/Tokyo".into(),
            capabilities: caps.iter().copied().collect(),
            pickup_hold_days: 3,
            daily_capacity: Some(100),
        };
        service
            .locations
            .execute(LocationCommand::Define(spec), meta())
            .await
            .expect("define");
    }
    let tasks: Vec<_> = (0..SKUS)
        .map(|s| {
            let stock = service.stock.clone();
            tokio::spawn(async move {
                for (l, (code, ..)) in LOCATIONS.iter().enumerate() {
                    stock
                        .execute(
                            &format!("SKU-{s}"),
                            code,
                            vec![StockCommand::ReceiveGoods {
                                qty: ((s + l) % 9) as i64 + 1,
                                reference: None,
                            }],
                            Metadata::new(Actor::system("bench")),
                        )
                        .await
                        .expect("receive");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("seed task");
    }
}

/// The baseline: the same view lookup behind a bare actix-web route.
fn start_baseline(view: Arc<InventoryView>) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(view.clone()))
            .route("/availability/{sku}", web::get().to(baseline_handler))
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
    view: web::Data<Arc<InventoryView>>,
    sku: web::Path<String>,
) -> HttpResponse {
    let answer = view.availability(&sku, &Channel::Online);
    let locations: Vec<_> = answer
        .locations
        .iter()
        .map(|l| serde_json::json!({ "locationCode": l.location, "available": l.available }))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "sku": sku.as_str(), "available": answer.available, "locations": locations
    }))
}

fn graphql_request(addr: SocketAddr, sku: usize) -> Vec<u8> {
    let body = format!(
        "{{\"query\":\"{{ availability(sku: \\\"SKU-{sku}\\\") {{ sku available locations {{ locationCode available }} }} }}\"}}"
    );
    format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn baseline_request(addr: SocketAddr, sku: usize) -> Vec<u8> {
    format!("GET /availability/SKU-{sku} HTTP/1.1\r\nhost: {addr}\r\n\r\n").into_bytes()
}

async fn wait_until_seeded(addr: SocketAddr) {
    let last = SKUS - 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    loop {
        let body = exchange(&mut conn, &graphql_request(addr, last)).await;
        let text = String::from_utf8_lossy(&body);
        if text.contains("\"available\":") && !text.contains("\"available\":0") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server view never caught up: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `CLIENTS` keep-alive connections asking for random SKUs: queries/s and p99 latency over
/// `MEASURE` after `WARMUP`.
async fn drive(addr: SocketAddr, make: fn(SocketAddr, usize) -> Vec<u8>) -> (f64, Duration) {
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                let mut latencies = Vec::new();
                let mut seed = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                loop {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let request = make(addr, (seed % SKUS as u64) as usize);
                    let sent = Instant::now();
                    let body = exchange(&mut conn, &request).await;
                    assert!(body.windows(9).any(|w| w == b"available"), "bad answer");
                    let now = Instant::now();
                    if now - start > WARMUP + MEASURE {
                        return latencies;
                    }
                    if now - start > WARMUP {
                        latencies.push(now - sent);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    all.sort();
    (
        all.len() as f64 / MEASURE.as_secs_f64(),
        percentile(&all, 0.99),
    )
}
