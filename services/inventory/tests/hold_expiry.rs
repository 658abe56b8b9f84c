//! Cart holds expire on a controllable clock: the process releases exactly the holds that ran
//! out, leaves confirmed and unexpiring ones, and a second pass changes nothing. The tracker
//! also reports every open hold to its owner until it closes.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use chrono::{Duration, Utc};
use ichigen_inventory::domain::StockCommand;
use ichigen_inventory::handlers::StockHandlers;
use ichigen_inventory::process::expiry::{ExpiryProcess, HoldTracker};
use ichigen_shared::auth::Actor;
use ichigen_shared::clock::{Clock, ManualClock};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::projection;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use std::sync::Arc;

fn reserve(id: &str, qty: i64, expires_at: Option<chrono::DateTime<Utc>>) -> StockCommand {
    StockCommand::Reserve {
        reservation_id: id.into(),
        owner: format!("cart:{id}"),
        qty,
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_holds_are_released_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = ManualClock::new(Utc::now());
    let h = StockHandlers::new(store.clone(), Arc::new(clock.clone()));
    let meta = || Metadata::new(Actor::system("test"));
    let now = clock.now();
    h.execute(
        "SKU-E",
        "S1",
        vec![
            StockCommand::ReceiveGoods {
                qty: 10,
                reference: None,
            },
            reserve("cart-a", 4, Some(now + Duration::minutes(15))),
            reserve("cart-b", 2, Some(now + Duration::minutes(15))),
            reserve("order-c", 3, None),
            reserve("cart-d", 1, Some(now + Duration::hours(2))),
        ],
        meta(),
    )
    .await
    .unwrap();
    // cart-b converts to an order in time: confirmed holds never expire.
    let last = h
        .execute(
            "SKU-E",
            "S1",
            vec![StockCommand::Confirm {
                reservation_id: "cart-b".into(),
            }],
            meta(),
        )
        .await
        .unwrap();

    let tracker = Arc::new(HoldTracker::default());
    let handle = projection::spawn(store.clone(), tracker.clone());
    handle
        .wait_for(last.position.unwrap(), std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(tracker.len(), 2, "cart-a and cart-d can still expire");
    let process = ExpiryProcess::new(tracker.clone(), h.clone(), Arc::new(clock.clone()));

    assert_eq!(process.run_once().await.unwrap(), 0, "nothing due yet");
    clock.advance(Duration::minutes(16));
    assert_eq!(process.run_once().await.unwrap(), 1, "cart-a ran out");
    let item = h.load("SKU-E", "S1").await.unwrap();
    assert_eq!((item.reserved, item.available()), (6, 4));
    assert_eq!(
        process.run_once().await.unwrap(),
        0,
        "a second pass changes nothing"
    );

    clock.advance(Duration::hours(2));
    assert_eq!(process.run_once().await.unwrap(), 1, "cart-d ran out");
    let item = h.load("SKU-E", "S1").await.unwrap();
    assert_eq!((item.reserved, item.available()), (5, 5));

    // Every open hold is reported to its owner, expiring or not: cart-b (confirmed) and
    // order-c (no expiry); a hold closes when consumption takes its last unit.
    let open = |t: &HoldTracker| {
        let mut ids: Vec<String> = t
            .holds_of("cart:")
            .into_iter()
            .map(|h| h.reservation_id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(open(&tracker), ["cart-b", "order-c"]);
    for (qty, still_open) in [(2, vec!["cart-b", "order-c"]), (1, vec!["cart-b"])] {
        let consumed = h
            .execute(
                "SKU-E",
                "S1",
                vec![StockCommand::Consume {
                    reservation_id: "order-c".into(),
                    qty,
                }],
                meta(),
            )
            .await
            .unwrap();
        handle
            .wait_for(
                consumed.position.unwrap(),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(open(&tracker), still_open);
    }
    store.shutdown().await;
}
