//! The returns service's money paths (refunds across returns, a refund cut off between the
//! payment and its record) against a real embedded store and a recording order port.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ichigen_rma::domain::{OrderFacts, OrderLineFacts, ReceivedLine, RequestedLine, RmaCommand};
use ichigen_rma::ports::{
    CatalogPort, ExchangePlaced, ExchangeRequest, FoundOrder, LocationsPort, OrderHistoryEntry,
    OrdersPort, PortError, ResaleItem, ReturnedUnit, StockPort,
};
use ichigen_rma::RmaService;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::ManualClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::DynEventStore;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), Currency::JPY)
}

fn meta() -> Metadata {
    Metadata::new(ichigen_shared::envelope::Actor::system("rma-test"))
}

const ORDER: Uuid = Uuid::from_u128(0x77);

/// One order: L1, 4 units × ¥2,990 delivered, of which ¥9,000 captured. Refunds are recorded
/// per operation and capped like the order service caps them.
#[derive(Default)]
struct Orders {
    refunds: Mutex<BTreeMap<String, Money>>,
    /// The next new refund is paid, then the call fails (a crash before the return records it).
    fail_after_paying: AtomicBool,
    /// Replacement orders placed, by idempotency key.
    placed: Mutex<Vec<String>>,
}

impl Orders {
    fn refunded(&self) -> Decimal {
        self.refunds
            .lock()
            .unwrap()
            .values()
            .map(|m| m.amount)
            .sum()
    }
}

#[async_trait]
impl OrdersPort for Orders {
    async fn facts(&self, order_id: Uuid) -> Result<Option<OrderFacts>, PortError> {
        Ok((order_id == ORDER).then(|| OrderFacts {
            order_id: ORDER,
            customer_id: Some("cust-1".into()),
            currency: Currency::JPY,
            lines: vec![OrderLineFacts {
                line_id: "L1".into(),
                sku: "TEE-M".into(),
                title: "Tee".into(),
                unit_price: yen(2990),
                fulfilled_qty: 4,
                fulfilled_at: Some(now() - TimeDelta::days(1)),
                already_returned_qty: 0,
            }],
            captured: yen(9000),
            refunded: Money::new(self.refunded(), Currency::JPY),
        }))
    }

    async fn find(&self, _: Uuid) -> Result<Option<FoundOrder>, PortError> {
        Ok(None)
    }

    async fn orders_of_customer(&self, _: &str, _: usize) -> Result<Vec<FoundOrder>, PortError> {
        Ok(Vec::new())
    }

    async fn history(&self, _: Uuid) -> Result<Vec<OrderHistoryEntry>, PortError> {
        Ok(Vec::new())
    }

    async fn refund(
        &self,
        _: Uuid,
        operation: &str,
        amount: Money,
        _: Metadata,
    ) -> Result<String, PortError> {
        let mut refunds = self.refunds.lock().unwrap();
        if refunds.contains_key(operation) {
            return Ok(format!("ref-{operation}"));
        }
        let left = Decimal::from(9000) - refunds.values().map(|m| m.amount).sum::<Decimal>();
        if amount.amount > left {
            return Err(PortError::refused("CONFLICT", Some("amount"), "exceeds"));
        }
        refunds.insert(operation.to_owned(), amount);
        if self.fail_after_paying.swap(false, Ordering::SeqCst) {
            return Err(PortError::Unavailable("connection lost".into()));
        }
        Ok(format!("ref-{operation}"))
    }

    async fn refunded_under(&self, _: Uuid, operation: &str) -> Result<Option<Money>, PortError> {
        Ok(self.refunds.lock().unwrap().get(operation).copied())
    }

    /// A replacement of ¥2,000 per order (cheaper than the returned units), idempotent per
    /// key like the order service's placement.
    async fn place_exchange(
        &self,
        request: ExchangeRequest,
        _: Metadata,
    ) -> Result<ExchangePlaced, PortError> {
        tokio::task::yield_now().await;
        let mut placed = self.placed.lock().unwrap();
        if !placed.contains(&request.idempotency_key) {
            placed.push(request.idempotency_key.clone());
        }
        Ok(ExchangePlaced {
            order_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, request.idempotency_key.as_bytes()),
            total: yen(2000),
        })
    }
}

struct Nowhere;

#[async_trait]
impl StockPort for Nowhere {
    async fn receive(&self, _: &ReturnedUnit, _: Metadata) -> Result<(), PortError> {
        Ok(())
    }
    async fn write_off(
        &self,
        _: &ReturnedUnit,
        _: &str,
        _: &str,
        _: Metadata,
    ) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl CatalogPort for Nowhere {
    async fn ensure_resale_item(&self, _: &ResaleItem, _: Metadata) -> Result<(), PortError> {
        Ok(())
    }
}

impl LocationsPort for Nowhere {
    fn takes_returns(&self, code: &str) -> Option<bool> {
        (code == "S1").then_some(true)
    }
}

async fn service() -> (tempfile::TempDir, RmaService, Arc<Orders>) {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let orders = Arc::new(Orders::default());
    let svc = RmaService::start(
        store,
        Arc::new(ManualClock::new(now())),
        orders.clone(),
        Arc::new(Nowhere),
        Arc::new(Nowhere),
        Arc::new(Nowhere),
    );
    svc.handlers.policy().ensure_default(meta()).await.unwrap();
    (dir, svc, orders)
}

fn customer() -> Actor {
    Actor {
        role: Role::Customer,
        subject: "cust-1".into(),
        store_id: None,
    }
}

/// A WRONG_ITEM return (no inspection, no fees, auto-approved) of `qty` units, received at S1.
async fn received_return(svc: &RmaService, key: &str, qty: i64) -> Uuid {
    let requested = svc
        .request(
            &customer(),
            ORDER,
            vec![RequestedLine::new("L1", qty, "WRONG_ITEM")],
            String::new(),
            key,
            meta(),
        )
        .await
        .unwrap();
    let id = requested.state.header.as_ref().unwrap().rma_id;
    svc.execute(
        id,
        RmaCommand::Receive {
            receipt_id: format!("rc-{key}"),
            location: "S1".into(),
            lines: vec![ReceivedLine::new("R1", qty)],
            in_person: false,
        },
        meta(),
    )
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_of_one_order_never_exceed_what_was_captured() {
    let (_dir, svc, orders) = service().await;
    // Two returns of 2 units each: ¥5,980 each, ¥11,960 together, against ¥9,000 captured.
    let a = received_return(&svc, "a", 2).await;
    let b = received_return(&svc, "b", 2).await;
    let (ra, rb) = tokio::join!(svc.refund(a, meta()), svc.refund(b, meta()));
    let recorded: Decimal = [ra.unwrap(), rb.unwrap()]
        .iter()
        .flat_map(|r| r.state.refunds.values().map(|m| m.amount))
        .sum();
    // The first gets ¥5,980, the second what is left (¥3,020): capped, never more.
    assert_eq!(recorded, Decimal::from(9000));
    assert_eq!(orders.refunded(), Decimal::from(9000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_paid_but_not_recorded_is_recorded_with_the_same_amount_on_retry() {
    let (_dir, svc, orders) = service().await;
    // Someone else's return took most of the money first: this refund is capped.
    let first = received_return(&svc, "first", 2).await;
    svc.refund(first, meta()).await.unwrap();
    let id = received_return(&svc, "second", 2).await;
    orders.fail_after_paying.store(true, Ordering::SeqCst);
    assert!(svc.refund(id, meta()).await.is_err());
    let paid = orders.refunded();
    assert_eq!(paid, Decimal::from(9000));
    let (rma, _) = svc.handlers.load(id).await.unwrap();
    assert!(rma.refunds.is_empty());
    // The retry pays nothing more and records exactly what was paid (¥3,020, capped).
    let retried = svc.refund(id, meta()).await.unwrap();
    assert_eq!(orders.refunded(), paid);
    let amounts: Vec<Decimal> = retried.state.refunds.values().map(|m| m.amount).collect();
    assert_eq!(amounts, vec![Decimal::from(3020)]);
}

/// A refund and an exchange of the same units at once: the units are settled once, by one of
/// them; the other moves no money and places no order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_and_an_exchange_of_the_same_units_at_once_settle_them_once() {
    for round in 0..8 {
        let (_dir, svc, orders) = service().await;
        let id = received_return(&svc, &format!("r{round}"), 1).await;
        let lines = vec![ichigen_rma::ports::ExchangeLine {
            sku: "TEE-L".into(),
            qty: 1,
            delivery: ichigen_rma::ports::ExchangeDelivery::Pickup { store: "S1".into() },
        }];
        let (refund, exchange) =
            tokio::join!(svc.refund(id, meta()), svc.exchange(id, lines, meta()));
        assert!(
            refund.is_ok() != exchange.is_ok(),
            "round {round}: exactly one settles: {refund:?} / {exchange:?}"
        );
        let (rma, _) = svc.handlers.load(id).await.unwrap();
        let placed = orders.placed.lock().unwrap().len();
        if refund.is_ok() {
            // Refunded ¥2,990, nothing placed.
            assert_eq!((orders.refunded(), placed), (Decimal::from(2990), 0));
            assert!(rma.exchanges.is_empty());
        } else {
            // Exchanged for ¥2,000: one order, the ¥990 difference refunded.
            assert_eq!((orders.refunded(), placed), (Decimal::from(990), 1));
            assert_eq!(rma.refunds.len(), 0);
            assert_eq!(rma.exchanges.len(), 1);
        }
    }
}
