//! The stock disposition process against a real embedded store, with recording ports.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ichigen_rma::domain::{OrderFacts, OrderLineFacts, ReceivedLine, RequestedLine, RmaCommand};
use ichigen_rma::handlers::{rma_id_for, ReturnRequest, RmaHandlers};
use ichigen_rma::ports::{CatalogPort, PortError, ResaleItem, ReturnedUnit, StockPort};
use ichigen_rma::process::disposition::DispositionProcess;
use ichigen_shared::clock::ManualClock;
use ichigen_shared::envelope::{Actor, Metadata};
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn meta() -> Metadata {
    Metadata::new(Actor::system("rma-test"))
}

/// Every call the process made, in order.
#[derive(Default)]
struct Calls {
    log: Mutex<Vec<String>>,
    /// Stock calls to fail before answering (a stock service that is down for a while).
    failures_left: AtomicUsize,
}

impl Calls {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

struct Stock(Arc<Calls>);

#[async_trait]
impl StockPort for Stock {
    async fn receive(&self, unit: &ReturnedUnit, _: Metadata) -> Result<(), PortError> {
        if self
            .0
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::Unavailable("stock service down".into()));
        }
        self.0.log.lock().unwrap().push(format!(
            "receive {} @{} {}",
            unit.sku, unit.location, unit.key
        ));
        Ok(())
    }

    async fn write_off(
        &self,
        unit: &ReturnedUnit,
        disposition: &str,
        reason: &str,
        _: Metadata,
    ) -> Result<(), PortError> {
        self.0.log.lock().unwrap().push(format!(
            "write-off {} @{} {} {disposition} {reason}",
            unit.sku, unit.location, unit.key
        ));
        Ok(())
    }
}

struct Catalog(Arc<Calls>);

#[async_trait]
impl CatalogPort for Catalog {
    async fn ensure_resale_item(&self, item: &ResaleItem, _: Metadata) -> Result<(), PortError> {
        self.0.log.lock().unwrap().push(format!(
            "catalog {} {} {}",
            item.resale_sku, item.price, item.title
        ));
        Ok(())
    }
}

/// A delivered order line of 3 × ¥2,990.
fn order() -> OrderFacts {
    OrderFacts {
        order_id: Uuid::from_u128(7),
        customer_id: Some("cust-1".into()),
        currency: Currency::JPY,
        lines: vec![OrderLineFacts {
            line_id: "L1".into(),
            sku: "TSHIRT-M".into(),
            title: "Tee".into(),
            unit_price: yen(2990),
            fulfilled_qty: 3,
            fulfilled_at: Some(now() - TimeDelta::days(2)),
            already_returned_qty: 0,
        }],
        captured: yen(8970),
        refunded: yen(0),
    }
}

/// A return of three units received at S1 and graded NEW, LIKE_NEW and DAMAGED.
async fn graded_return(store: &DynEventStore) -> Uuid {
    let rma = RmaHandlers::new(store.clone(), Arc::new(ManualClock::new(now())));
    rma.policy().ensure_default(meta()).await.unwrap();
    let id = rma_id_for("cust-1", "k1");
    let request = ReturnRequest {
        lines: vec![RequestedLine::new("L1", 3, "DEFECTIVE")],
        requested_by: "cust-1".into(),
        note: String::new(),
    };
    rma.request(id, request, order(), meta()).await.unwrap();
    rma.execute(
        id,
        RmaCommand::Receive {
            receipt_id: "RC1".into(),
            location: "S1".into(),
            lines: vec![ReceivedLine::new("R1", 3)],
            in_person: false,
        },
        meta(),
    )
    .await
    .unwrap();
    for (unit, grade) in [("R1-1", "NEW"), ("R1-2", "LIKE_NEW"), ("R1-3", "DAMAGED")] {
        rma.execute(
            id,
            RmaCommand::Grade {
                unit_id: unit.into(),
                grade_code: grade.into(),
            },
            meta(),
        )
        .await
        .unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_graded_unit_goes_where_its_grade_says_once_and_a_failure_is_retried_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let id = graded_return(&store).await;
    let calls = Arc::new(Calls::default());
    // The stock service is down for the first call: the run stops at that event.
    calls.failures_left.store(1, Ordering::SeqCst);
    let process = DispositionProcess::new(
        store.clone(),
        Arc::new(Stock(calls.clone())),
        Arc::new(Catalog(calls.clone())),
    );
    assert!(process
        .run_until_idle(Duration::from_millis(300))
        .await
        .is_err());
    assert!(calls.log().is_empty(), "{:?}", calls.log());
    // Back up: every unit, in grading order; the resale item before its stock.
    let handled = process
        .run_until_idle(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(handled, 3);
    assert_eq!(
        calls.log(),
        vec![
            format!("receive TSHIRT-M @S1 {id}/R1-1"),
            "catalog TSHIRT-M-R-LIKE_NEW 2392 JPY Tee (Like new)".to_string(),
            format!("receive TSHIRT-M-R-LIKE_NEW @S1 {id}/R1-2"),
            format!(
                "write-off TSHIRT-M @S1 {id}/R1-3 DISPOSE grade DAMAGED (Damaged, not sellable)"
            ),
        ]
    );
    // A restart resumes after its checkpoint: nothing is disposed of twice.
    let again = DispositionProcess::new(
        store.clone(),
        Arc::new(Stock(calls.clone())),
        Arc::new(Catalog(calls.clone())),
    );
    assert_eq!(
        again
            .run_until_idle(Duration::from_millis(300))
            .await
            .unwrap(),
        0
    );
    assert_eq!(calls.log().len(), 4);
    store.shutdown().await;
}
