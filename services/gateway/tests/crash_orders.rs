//! `ichigen serve` killed with SIGKILL while customers place orders, then restarted: every
//! retried request finds its order (or places it once), every order gets exactly its
//! fulfillment orders, and inventory holds exactly what the orders allocated — no duplicate
//! order, fulfillment order or reservation.

#![allow(clippy::unwrap_used)] // helpers of an integration test: a failed unwrap is a failed test

use ichigen_shared::auth::Role;
use ichigen_shared::config::DEV_SECRET;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn spawn_server(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ichigen"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env("ICHIGEN__LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "printed {line:?}");
    (child, addr)
}

fn token(role: Role, subject: &str) -> String {
    ichigen_gateway::auth::JwtAuth::new(DEV_SECRET)
        .mint(role, subject, None, chrono::Duration::hours(1))
        .unwrap()
}

/// POST /graphql; `None` when the connection fails (the server is down).
fn graphql(addr: &str, token: &str, query: &str, variables: Value) -> Option<Value> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "POST /graphql HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (_, json_body) = out.split_once("\r\n\r\n")?;
    serde_json::from_str(json_body).ok()
}

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  order { id lines { allocations { locationCode quantity } sku } } errors { code message } } }";

fn input(key: &str, n: usize) -> Value {
    let skus = ["TEE-M", "CHINO-L", "KNIT-M", "DENIM-S", "OXFORD-M"];
    json!({ "idempotencyKey": key, "lines": [{
        "sku": skus[n % skus.len()], "quantity": 1,
        "delivery": { "method": "SHIP", "address": { "line1": "1", "city": "Tokyo",
            "postalCode": "100-0001", "country": "JP", "lat": 35.68, "lon": 139.76 } } }] })
}

#[test]
fn a_sigkill_mid_flow_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(dir.path());
    let customer = token(Role::Customer, "crash-customer");
    let attempted: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let (addr, customer, attempted, stop) = (
                addr.clone(),
                customer.clone(),
                attempted.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let key = format!("crash-{c}-{n}");
                    attempted.lock().unwrap().push((key.clone(), n));
                    if graphql(&addr, &customer, PLACE, json!({ "input": input(&key, n) }))
                        .is_none()
                    {
                        return; // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let attempted = attempted.lock().unwrap().clone();
    assert!(attempted.len() > 6, "no load before the kill");

    // Restart on the same data (the demo data is not seeded twice) and retry every request.
    let (mut child, addr) = spawn_server(dir.path());
    let mut orders = BTreeMap::new();
    for (key, n) in &attempted {
        let body = graphql(&addr, &customer, PLACE, json!({ "input": input(key, *n) })).unwrap();
        let payload = &body["data"]["placeOrder"];
        assert_eq!(payload["errors"], json!([]), "{key}: {body}");
        let order = &payload["order"];
        let id = order["id"].as_str().unwrap().to_string();
        assert!(
            orders.insert(id, order.clone()).is_none(),
            "two keys, one order"
        );
    }

    // Every order gets exactly one fulfillment order per allocated location, once.
    let cs = token(Role::CsAgent, "cs");
    let admin = token(Role::Admin, "ops");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut fulfillment_ids = BTreeSet::new();
    for (id, order) in &orders {
        let locations: BTreeSet<String> = order["lines"][0]["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["locationCode"].as_str().unwrap().to_string())
            .collect();
        let fulfillments = loop {
            let body = graphql(
                &addr,
                &cs,
                "query($id: ID!) { order(id: $id) { fulfillments { id locationCode } } }",
                json!({ "id": id }),
            )
            .unwrap();
            let f = body["data"]["order"]["fulfillments"]
                .as_array()
                .unwrap()
                .clone();
            if f.len() >= locations.len() {
                break f;
            }
            assert!(Instant::now() < deadline, "no fulfillment for {id}: {body}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            fulfillments.len(),
            locations.len(),
            "{id}: {fulfillments:?}"
        );
        for f in fulfillments {
            assert!(fulfillment_ids.insert(f["id"].as_str().unwrap().to_string()));
        }
    }
    for id in &fulfillment_ids {
        let stream = format!("fulfillment-{}", decode(id));
        let body = graphql(
            &addr,
            &admin,
            "query($s: String!) { streamEvents(stream: $s) { edges { node { type } } } }",
            json!({ "s": stream }),
        )
        .unwrap();
        let created = body["data"]["streamEvents"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["type"] == "FulfillmentCreated.v1")
            .count();
        assert_eq!(created, 1, "{stream}: {body}");
    }

    // Inventory holds exactly what the orders allocated: no hold left from a cut-off attempt,
    // none taken twice.
    let mut allocated: BTreeMap<(String, String), i64> = BTreeMap::new();
    for order in orders.values() {
        for line in order["lines"].as_array().unwrap() {
            for a in line["allocations"].as_array().unwrap() {
                *allocated
                    .entry((
                        line["sku"].as_str().unwrap().to_string(),
                        a["locationCode"].as_str().unwrap().to_string(),
                    ))
                    .or_default() += a["quantity"].as_i64().unwrap();
            }
        }
    }
    for ((sku, location), qty) in &allocated {
        let loc_id = ichigen_shared::graphql::conventions::encode_id("Location", location);
        let body = graphql(
            &addr,
            &admin,
            "query($l: ID!) { stockLevels(location: $l, first: 100) { edges { node { sku reserved } } } }",
            json!({ "l": loc_id.to_string() }),
        )
        .unwrap();
        let reserved = body["data"]["stockLevels"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["sku"] == sku.as_str())
            .map(|e| e["node"]["reserved"].as_i64().unwrap())
            .unwrap_or_else(|| panic!("{sku} not at {location}: {body}"));
        assert_eq!(reserved, *qty, "{sku}@{location}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The key inside an opaque id (`base64url("Type:key")`).
fn decode(id: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    text.split_once(':').unwrap().1.to_string()
}
