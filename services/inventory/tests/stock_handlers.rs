//! Stock handlers over the real embedded store: no oversell under concurrency (one writer per
//! stream, and two "processes" racing through optimistic concurrency), bundles and multi-location
//! reservations all or nothing, idempotent retries, bad input appending nothing.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use ichigen_inventory::domain::{InventoryError, StockCommand};
use ichigen_inventory::handlers::{HandlerError, ReserveLine, StockHandlers};
use ichigen_shared::auth::Actor;
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore};
use std::sync::Arc;

async fn store() -> (DynEventStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    (Arc::new(store), dir)
}

fn meta() -> Metadata {
    Metadata::new(Actor::system("test"))
}

async fn receive(h: &StockHandlers, sku: &str, loc: &str, qty: i64) {
    h.execute(
        sku,
        loc,
        vec![StockCommand::ReceiveGoods {
            qty,
            reference: Some("ASN-1".into()),
        }],
        meta(),
    )
    .await
    .unwrap();
}

fn reserve(id: &str, qty: i64) -> StockCommand {
    StockCommand::Reserve {
        reservation_id: id.into(),
        owner: format!("cart:{id}"),
        qty,
        expires_at: None,
    }
}

/// 64 concurrent reservers on the last 10 units, five times over: exactly 10 win each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_reservers_never_oversell() {
    let (store, _dir) = store().await;
    let h = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    for round in 0..5 {
        let sku = format!("SKU-RACE-{round}");
        receive(&h, &sku, "S1", 10).await;
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let h = h.clone();
                let sku = sku.clone();
                tokio::spawn(async move {
                    h.execute(&sku, "S1", vec![reserve(&format!("r{i}"), 1)], meta())
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(HandlerError::Refused {
                    error: InventoryError::InsufficientStock { .. },
                    ..
                }) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(won, 10, "round {round}");
        let state = h.load(&sku, "S1").await.unwrap();
        assert_eq!(
            (state.on_hand, state.reserved, state.available()),
            (10, 10, 0)
        );
    }
    store.shutdown().await;
}

/// Two handler sets on one store act like two processes: their writers race through the
/// store's expected-revision check, reload on conflict, and still never oversell.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_racing_never_oversell() {
    let (store, _dir) = store().await;
    let a = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    let b = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    receive(&a, "SKU-2P", "S1", 25).await;
    let tasks: Vec<_> = (0..80)
        .map(|i| {
            let h = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                h.execute("SKU-2P", "S1", vec![reserve(&format!("p{i}"), 1)], meta())
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 25);
    let state = a.load("SKU-2P", "S1").await.unwrap();
    assert_eq!(state.reserved, 25);
    assert_eq!(state.open_reservations().count(), 25);
    store.shutdown().await;
}

/// Two lines of one order on the same SKU × location are checked together.
#[tokio::test]
async fn a_bundle_is_all_or_nothing() {
    let (store, _dir) = store().await;
    let h = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    receive(&h, "SKU-B", "S1", 5).await;
    let lines = vec![
        ReserveLine {
            sku: "SKU-B".into(),
            location: "S1".into(),
            qty: 3,
        },
        ReserveLine {
            sku: "SKU-B".into(),
            location: "S1".into(),
            qty: 3,
        },
    ];
    let err = h
        .reserve_lines("order:1", &lines, None, meta())
        .await
        .unwrap_err();
    assert_eq!(err.refused.len(), 1);
    assert_eq!(err.refused[0].0, 1, "the second line is the one refused");
    assert_eq!(h.load("SKU-B", "S1").await.unwrap().reserved, 0);
    store.shutdown().await;
}

/// Lines at several locations: a shortage at one releases what the others reserved.
#[tokio::test]
async fn multi_location_reservation_leaves_nothing_behind_on_failure() {
    let (store, _dir) = store().await;
    let h = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    receive(&h, "SKU-M", "DC1", 10).await;
    receive(&h, "SKU-M", "S2", 1).await;
    let lines = vec![
        ReserveLine {
            sku: "SKU-M".into(),
            location: "DC1".into(),
            qty: 4,
        },
        ReserveLine {
            sku: "SKU-M".into(),
            location: "S2".into(),
            qty: 2,
        },
    ];
    let err = h
        .reserve_lines("order:2", &lines, None, meta())
        .await
        .unwrap_err();
    assert_eq!(err.refused[0].0, 1);
    assert_eq!(h.load("SKU-M", "DC1").await.unwrap().reserved, 0);
    assert_eq!(h.load("SKU-M", "S2").await.unwrap().reserved, 0);

    // With enough stock both lines hold.
    receive(&h, "SKU-M", "S2", 5).await;
    let ok = h
        .reserve_lines("order:3", &lines, None, meta())
        .await
        .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(h.load("SKU-M", "DC1").await.unwrap().reserved, 4);
    assert_eq!(h.load("SKU-M", "S2").await.unwrap().reserved, 2);
    store.shutdown().await;
}

/// A retried reservation changes nothing twice; bad input appends nothing.
#[tokio::test]
async fn retries_are_idempotent_and_bad_input_appends_nothing() {
    let (store, _dir) = store().await;
    let h = StockHandlers::new(store.clone(), Arc::new(SystemClock));
    receive(&h, "SKU-I", "S1", 5).await;
    let first = h
        .execute("SKU-I", "S1", vec![reserve("x", 2)], meta())
        .await
        .unwrap();
    assert_eq!(first.events.len(), 1);
    let again = h
        .execute("SKU-I", "S1", vec![reserve("x", 2)], meta())
        .await
        .unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.levels.reserved, 2);

    let before = read_whole_stream(store.as_ref(), "inventory-SKU-I@S1")
        .await
        .unwrap()
        .len();
    for bad in [reserve("y", 0), reserve("z", -1), reserve("w", i64::MAX)] {
        let err = h
            .execute("SKU-I", "S1", vec![bad], meta())
            .await
            .unwrap_err();
        match err {
            HandlerError::Refused { error, .. } => {
                assert!(matches!(
                    error.code(),
                    "INVALID_INPUT" | "INSUFFICIENT_STOCK"
                ))
            }
            other => panic!("unexpected {other}"),
        }
    }
    let after = read_whole_stream(store.as_ref(), "inventory-SKU-I@S1")
        .await
        .unwrap()
        .len();
    assert_eq!(before, after);
    store.shutdown().await;
}
