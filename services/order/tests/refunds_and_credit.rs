//! Refunds through the order's payment (what returns use) and exchange credit at placement, on
//! the real embedded store, the catalog, the order handlers, the fulfillment reactions and the
//! manual payment provider; inventory and fulfillment are in-memory fakes behind their ports.
//!
//! The provider is wrapped to count the refunds that reach it and to take a moment over each,
//! so that two refunds of one order that were not serialised would both pass the check on the
//! same state: the concurrent tests then see a provider call for a refund that did not fit.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_order::catalog_service::CatalogService;
use ichigen_order::domain::catalog::{CatalogCommand, ItemSpec};
use ichigen_order::domain::order::{
    self, Channel, LineQty, Order, OrderCommand, OrderError, OrderStatus,
};
use ichigen_order::domain::sourcing::{Candidate, Capability, Delivery, LocationKind};
use ichigen_order::handlers::order::{
    Executed, LineRequest, OrderCredit, OrderHandlers, PlaceError, PlaceRequest, Placed,
    RefundError,
};
use ichigen_order::payment::{ManualProvider, PaymentError, PaymentProvider, ProviderReference};
use ichigen_order::ports::{
    InventoryPort, InventoryPortError, OpenHold, ReservationRef, ReservationRequest,
};
use ichigen_order::process::fulfillment_reactions::FulfillmentReactions;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::clock::SystemClock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::money::Money;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore, Position};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const DC: &str = "DC-1";

// ---- fakes ----

/// One DC with plenty of every SKU; records what the order service asks.
#[derive(Default)]
struct FakeInventory {
    reserved: Mutex<Vec<(String, ReservationRequest)>>,
    consumed: Mutex<BTreeMap<String, i64>>,
    released: Mutex<Vec<String>>,
    /// The hold tracker has not caught up yet: `holds_of` sees nothing.
    lagging: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl InventoryPort for FakeInventory {
    async fn candidates(&self, skus: &[String]) -> Result<Vec<Candidate>, InventoryPortError> {
        Ok(vec![Candidate {
            code: DC.into(),
            kind: LocationKind::Dc,
            capabilities: [Capability::Ship].into_iter().collect(),
            lat: 35.70,
            lon: 139.93,
            active: true,
            remaining_capacity: 1_000_000,
            atp: skus.iter().map(|s| (s.clone(), 1_000)).collect(),
        }])
    }

    async fn reserve(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        _expires_at: Option<DateTime<Utc>>,
        _metadata: Metadata,
    ) -> Result<Option<Position>, InventoryPortError> {
        let mut reserved = self.reserved.lock().unwrap();
        reserved.extend(requests.iter().map(|r| (owner.to_owned(), r.clone())));
        Ok(None)
    }

    /// The holds reserved under the owner (or a retry's `~k` owner) and neither released nor
    /// consumed in full, as the inventory's hold tracker reports them.
    async fn holds_of(&self, owner_prefix: &str) -> Result<Vec<OpenHold>, InventoryPortError> {
        if self.lagging.load(Ordering::SeqCst) {
            return Ok(vec![]);
        }
        let released = self.released.lock().unwrap().clone();
        let consumed = self.consumed.lock().unwrap().clone();
        Ok(self
            .reserved
            .lock()
            .unwrap()
            .iter()
            .filter(|(owner, _)| {
                owner == owner_prefix || owner.starts_with(&format!("{owner_prefix}~"))
            })
            .filter(|(_, r)| {
                !released.contains(&r.reservation_id)
                    && consumed.get(&r.reservation_id).copied().unwrap_or(0) < r.qty
            })
            .map(|(owner, r)| OpenHold {
                owner: owner.clone(),
                reservation: ReservationRef {
                    reservation_id: r.reservation_id.clone(),
                    sku: r.sku.clone(),
                    location: r.location.clone(),
                },
                since: Utc::now(),
            })
            .collect())
    }

    async fn confirm(
        &self,
        _reservations: &[ReservationRef],
        _metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        Ok(())
    }

    async fn consume(
        &self,
        uses: &[(ReservationRef, i64)],
        _metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let mut consumed = self.consumed.lock().unwrap();
        for (r, total) in uses {
            consumed.insert(r.reservation_id.clone(), *total);
        }
        Ok(())
    }

    async fn release(
        &self,
        reservations: &[ReservationRef],
        _metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let mut released = self.released.lock().unwrap();
        released.extend(reservations.iter().map(|r| r.reservation_id.clone()));
        Ok(())
    }

    async fn record_short_pick(
        &self,
        _sku: &str,
        _location: &str,
        _qty: i64,
        _reference: &str,
        _metadata: Metadata,
    ) -> Result<i64, InventoryPortError> {
        Ok(0)
    }
}

/// The manual provider, counting the calls that reach it; a refund takes a moment (the window
/// in which an unserialised second refund would pass the same check).
#[derive(Default)]
struct CountingProvider {
    inner: ManualProvider,
    authorizations: AtomicUsize,
    refunds: AtomicUsize,
}

#[async_trait]
impl PaymentProvider for CountingProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn authorize(
        &self,
        payment_id: Uuid,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        self.authorizations.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize(payment_id, amount).await
    }

    async fn capture(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        self.inner.capture(reference, operation, amount).await
    }

    async fn void(&self, reference: &ProviderReference) -> Result<(), PaymentError> {
        self.inner.void(reference).await
    }

    async fn refund(
        &self,
        reference: &ProviderReference,
        operation: &str,
        amount: &Money,
    ) -> Result<ProviderReference, PaymentError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inner.refund(reference, operation, amount).await
    }
}

// ---- the world ----

struct World {
    _dir: tempfile::TempDir,
    store: DynEventStore,
    orders: OrderHandlers,
    reactions: FulfillmentReactions,
    inventory: Arc<FakeInventory>,
    provider: Arc<CountingProvider>,
}

fn yen(n: i64) -> Money {
    Money::new(Decimal::from(n), ichigen_shared::money::Currency::JPY)
}

fn customer() -> Metadata {
    Metadata::new(Actor {
        role: Role::Customer,
        subject: "c-1".into(),
        store_id: None,
    })
}

fn system() -> Metadata {
    Metadata::new(Actor::system("test"))
}

/// TEE at ¥1,990 and CAP at ¥2,500 in the catalog.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: DynEventStore = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(SystemClock);
    let catalog = CatalogService::start(store.clone(), clock.clone());
    let mut last = None;
    for (sku, price) in [("TEE", "1990"), ("CAP", "2500")] {
        let accepted = catalog
            .handlers
            .execute(
                sku,
                CatalogCommand::Upsert(ItemSpec {
                    title: sku.into(),
                    price: Money::parse(price, "JPY").unwrap(),
                    attributes: Default::default(),
                    active: true,
                }),
                system(),
            )
            .await
            .unwrap();
        last = accepted.position.or(last);
    }
    catalog.wait_for(last).await.unwrap();
    let inventory = Arc::new(FakeInventory::default());
    let provider = Arc::new(CountingProvider::default());
    let orders = OrderHandlers::new(
        store.clone(),
        catalog.view.clone(),
        inventory.clone(),
        provider.clone(),
        clock.clone(),
    );
    let reactions = FulfillmentReactions::new(store.clone(), orders.clone(), clock);
    World {
        _dir: dir,
        store,
        orders,
        reactions,
        inventory,
        provider,
    }
}

fn ship(sku: &str, qty: i64) -> LineRequest {
    LineRequest {
        sku: sku.into(),
        qty,
        delivery: Delivery::Ship {
            lat: 35.68,
            lon: 139.76,
        },
    }
}

fn request(key: &str, credit: Option<OrderCredit>) -> PlaceRequest {
    PlaceRequest {
        customer_id: Some("c-1".into()),
        channel: Channel::Web,
        // L1: 2 × TEE (¥3,980), L2: 1 × CAP (¥2,500): ¥6,480.
        lines: vec![ship("TEE", 2), ship("CAP", 1)],
        allow_partial: false,
        idempotency_key: key.into(),
        credit,
    }
}

fn credit(amount: Money) -> Option<OrderCredit> {
    Some(OrderCredit {
        amount,
        source: "rma:r-1".into(),
    })
}

impl World {
    async fn place(&self, key: &str, credit: Option<OrderCredit>) -> Placed {
        self.orders
            .place(request(key, credit), customer())
            .await
            .unwrap()
    }

    async fn order(&self, order_id: Uuid) -> Order {
        self.orders.load(order_id).await.unwrap().0
    }

    async fn stream_len(&self, order_id: Uuid) -> usize {
        read_whole_stream(self.store.as_ref(), &order::stream_name(order_id))
            .await
            .unwrap()
            .len()
    }

    async fn event_types(&self, order_id: Uuid) -> Vec<String> {
        read_whole_stream(self.store.as_ref(), &order::stream_name(order_id))
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_type.to_string())
            .collect()
    }

    /// Ships `lines` from the DC as fulfillment would report it, then lets the reactions
    /// consume the reservations and capture.
    async fn ship(&self, order_id: Uuid, fulfillment_id: &str, lines: &[(&str, i64)]) {
        self.orders
            .execute(
                order_id,
                OrderCommand::MarkShipped {
                    fulfillment_id: fulfillment_id.into(),
                    location: DC.into(),
                    lines: lines.iter().map(|(l, q)| LineQty::new(*l, *q)).collect(),
                    carrier: "YAMATO".into(),
                    tracking: Some("T-1".into()),
                },
                system(),
            )
            .await
            .unwrap();
        self.settle().await;
    }

    async fn cancel(&self, order_id: Uuid, lines: &[(&str, i64)]) {
        self.orders
            .execute(
                order_id,
                OrderCommand::Cancel {
                    lines: Some(lines.iter().map(|(l, q)| LineQty::new(*l, *q)).collect()),
                    reason: "CUSTOMER_REQUEST".into(),
                },
                system(),
            )
            .await
            .unwrap();
    }

    /// Runs the reactions until they are idle.
    async fn settle(&self) {
        self.reactions
            .run_until_idle(Duration::from_millis(300))
            .await
            .unwrap();
    }

    /// Takes `amount` of the order's authorization directly (staff capture), at the provider
    /// and on the order.
    async fn capture(&self, order_id: Uuid, amount: Money) {
        let order = self.order(order_id).await;
        let reference = ProviderReference(order.payment.unwrap().reference);
        let answer = self
            .provider
            .capture(&reference, "staff-capture", &amount)
            .await
            .unwrap();
        self.orders
            .execute(
                order_id,
                OrderCommand::CapturePayment {
                    amount,
                    reference: answer.0,
                },
                system(),
            )
            .await
            .unwrap();
    }

    /// A placed order whose ¥6,480 are all captured (both lines shipped).
    async fn captured_order(&self, key: &str) -> Uuid {
        let placed = self.place(key, None).await;
        self.ship(placed.order_id, "F1", &[("L1", 2), ("L2", 1)])
            .await;
        let order = self.order(placed.order_id).await;
        assert_eq!(order.payment.as_ref().unwrap().captured, yen(6480));
        placed.order_id
    }

    /// (authorized, captured, refunded) in the provider's books for the order's payment.
    fn books(&self, order: &Order) -> (Money, Money, Money) {
        let p = order.payment.as_ref().unwrap();
        let (a, c, r, _) = self
            .provider
            .inner
            .balance(&ProviderReference(p.reference.clone()))
            .unwrap();
        (a, c, r)
    }

    fn refunds_at_provider(&self) -> usize {
        self.provider.refunds.load(Ordering::SeqCst)
    }

    async fn refund(
        &self,
        order_id: Uuid,
        operation: &str,
        amount: Money,
    ) -> Result<Executed, RefundError> {
        self.orders
            .refund(order_id, operation, amount, system())
            .await
    }
}

/// The provider's reference of the refund made under `operation`.
fn reference_of(order: &Order, operation: &str) -> String {
    order.payment.as_ref().unwrap().refund_operations[operation]
        .reference
        .clone()
}

/// Runs `amounts` as concurrent refunds of one order (operation `rma:<i>`), released at once.
async fn race(
    w: &World,
    order_id: Uuid,
    amounts: &[i64],
) -> Vec<(i64, Result<Executed, RefundError>)> {
    let start = Arc::new(tokio::sync::Barrier::new(amounts.len()));
    let tasks: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, &amount)| {
            let (orders, start) = (w.orders.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let result = orders
                    .refund(order_id, &format!("rma:{i}"), yen(amount), system())
                    .await;
                (amount, result)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// ---- A: refunds ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_of_one_order_never_pass_what_was_captured() {
    let w = world().await;
    let order_id = w.captured_order("k-race").await;
    // Ten refunds of ¥1,000 against ¥6,480 captured: exactly six fit.
    let results = race(&w, order_id, &[1000; 10]).await;
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(ok, 6, "{results:?}");
    for (_, r) in &results {
        match r {
            Ok(executed) => assert_eq!(executed.events.len(), 1),
            Err(RefundError::ExceedsRefundable {
                requested,
                refundable,
            }) => assert_eq!((*requested, *refundable), (yen(1000), yen(480))),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    // Only the refunds that fit reached the provider, and its books agree with the order.
    assert_eq!(w.refunds_at_provider(), 6);
    let order = w.order(order_id).await;
    let p = order.payment.as_ref().unwrap();
    assert_eq!((p.captured, p.refunded), (yen(6480), yen(6000)));
    assert_eq!(p.refund_operations.len(), 6);
    assert_eq!(w.books(&order), (yen(6480), yen(6480), yen(6000)));
    assert_eq!(w.stream_len(order_id).await, 2 + 1 + 1 + 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_of_mixed_amounts_take_exactly_the_ones_that_fit() {
    let w = world().await;
    let order_id = w.captured_order("k-mixed").await;
    let amounts = [3000, 2500, 2000, 1500, 700, 400, 300, 100];
    let results = race(&w, order_id, &amounts).await;
    let mut refunded = 0;
    let mut refused = Vec::new();
    for (amount, r) in &results {
        match r {
            Ok(_) => refunded += amount,
            Err(RefundError::ExceedsRefundable {
                requested,
                refundable,
            }) => {
                assert_eq!(*requested, yen(*amount));
                assert!(
                    refundable.amount < requested.amount,
                    "{refundable} ≥ {requested}"
                );
                refused.push(*amount);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(refunded <= 6480, "{results:?}");
    assert!(!refused.is_empty(), "10,500 asked of 6,480");
    // Each refusal was right when it was made, and stays right: what is left now is less
    // than every refused amount (it only ever shrinks).
    let left = 6480 - refunded;
    assert!(
        refused.iter().all(|a| *a > left),
        "{left} left, refused {refused:?}"
    );
    assert_eq!(w.refunds_at_provider(), amounts.len() - refused.len());
    let order = w.order(order_id).await;
    assert_eq!(order.payment.as_ref().unwrap().refunded, yen(refunded));
    assert_eq!(w.books(&order), (yen(6480), yen(6480), yen(refunded)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refund_returns_the_same_and_appends_nothing() {
    let w = world().await;
    let order_id = w.captured_order("k-retry").await;
    let first = w.refund(order_id, "rma:1", yen(1000)).await.unwrap();
    assert_eq!(first.events.len(), 1);
    assert!(first.position.is_some());
    let reference = reference_of(&first.order, "rma:1");
    let len = w.stream_len(order_id).await;
    let calls = w.refunds_at_provider();

    let again = w.refund(order_id, "rma:1", yen(1000)).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.position, None);
    assert_eq!(reference_of(&again.order, "rma:1"), reference);
    assert_eq!(again.order, first.order);
    assert_eq!(w.stream_len(order_id).await, len);
    assert_eq!(
        w.refunds_at_provider(),
        calls,
        "a retry is answered before the provider"
    );
    // The key names one refund: another amount under it is refused.
    assert!(matches!(
        w.refund(order_id, "rma:1", yen(999)).await,
        Err(RefundError::OperationReused { ref operation, recorded, requested })
            if operation == "rma:1" && recorded == yen(1000) && requested == yen(999)
    ));

    // Cut off after the provider refunded, before the order recorded it: the retry gets the
    // provider's first answer and records it once.
    let payment = ProviderReference(first.order.payment.as_ref().unwrap().reference.clone());
    let at_provider = w
        .provider
        .refund(&payment, "rma:2", &yen(500))
        .await
        .unwrap();
    let retried = w.refund(order_id, "rma:2", yen(500)).await.unwrap();
    assert_eq!(retried.events.len(), 1);
    assert_eq!(reference_of(&retried.order, "rma:2"), at_provider.0);
    assert_eq!(w.books(&retried.order).2, yen(1500));
    assert_eq!(retried.order.payment.as_ref().unwrap().refunded, yen(1500));

    // A refund of everything that is left, then its retry: recognised, not "exceeds".
    let rest = w.refund(order_id, "rma:3", yen(4980)).await.unwrap();
    assert_eq!(rest.order.payment.as_ref().unwrap().refunded, yen(6480));
    let len = w.stream_len(order_id).await;
    let again = w.refund(order_id, "rma:3", yen(4980)).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(w.stream_len(order_id).await, len);
    assert!(matches!(
        w.refund(order_id, "rma:4", yen(1)).await,
        Err(RefundError::ExceedsRefundable { refundable, .. }) if refundable == yen(0)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_refusals_are_typed_and_change_nothing() {
    let w = world().await;
    let placed = w.place("k-refuse", None).await;
    let order_id = placed.order_id;
    let covered = w.place("k-covered", credit(yen(6480))).await.order_id;
    let head = w.store.head().await.unwrap();

    // Nothing captured yet: nothing to refund.
    let e = w.refund(order_id, "rma:1", yen(1)).await.unwrap_err();
    assert!(matches!(
        e,
        RefundError::ExceedsRefundable { requested, refundable }
            if requested == yen(1) && refundable == yen(0)
    ));
    assert_eq!((e.code(), e.field()), ("CONFLICT", Some("amount")));

    let cases: Vec<(Uuid, &str, Money, &str, Option<&str>)> = vec![
        (
            Uuid::from_u128(42),
            "rma:1",
            yen(1),
            "NOT_FOUND",
            Some("orderId"),
        ),
        (covered, "rma:1", yen(1), "CONFLICT", None),
        (
            order_id,
            "rma:1",
            Money::parse("1", "USD").unwrap(),
            "INVALID_INPUT",
            Some("amount"),
        ),
        (order_id, "rma:1", yen(0), "INVALID_INPUT", Some("amount")),
        (order_id, "rma:1", yen(-5), "INVALID_INPUT", Some("amount")),
        (order_id, " ", yen(1), "INVALID_INPUT", Some("operation")),
    ];
    for (id, operation, amount, code, field) in cases {
        let e = w.refund(id, operation, amount).await.unwrap_err();
        assert_eq!((e.code(), e.field()), (code, field), "{e:?}");
        assert!(!e.is_retryable());
    }
    assert!(matches!(
        w.refund(Uuid::from_u128(42), "rma:1", yen(1)).await,
        Err(RefundError::OrderNotFound { order_id }) if order_id == Uuid::from_u128(42)
    ));
    assert!(matches!(
        w.refund(covered, "rma:1", yen(1)).await,
        Err(RefundError::NoPayment { .. })
    ));
    assert!(matches!(
        w.refund(order_id, "rma:1", Money::parse("1", "USD").unwrap())
            .await,
        Err(RefundError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        w.refund(order_id, "rma:1", yen(-5)).await,
        Err(RefundError::NonPositiveAmount { amount }) if amount == yen(-5)
    ));
    assert!(matches!(
        w.refund(order_id, "", yen(1)).await,
        Err(RefundError::BlankOperation)
    ));

    // Captured: a fraction of a yen is refused by the order's rules, before the provider.
    w.capture(order_id, yen(6480)).await;
    let head_after_capture = w.store.head().await.unwrap();
    let e = w
        .refund(order_id, "rma:1", Money::parse("0.5", "JPY").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(e, RefundError::Order(OrderError::InvalidInput { .. })),
        "{e:?}"
    );
    assert_eq!((e.code(), e.field()), ("INVALID_INPUT", Some("amount")));
    let e = w.refund(order_id, "rma:1", yen(6481)).await.unwrap_err();
    assert!(matches!(
        e,
        RefundError::ExceedsRefundable { requested, refundable }
            if requested == yen(6481) && refundable == yen(6480)
    ));

    assert_eq!(
        w.refunds_at_provider(),
        0,
        "no refusal reached the provider"
    );
    assert!(head.is_some());
    assert_eq!(w.store.head().await.unwrap(), head_after_capture);
    assert_eq!(w.order(order_id).await.payment.unwrap().refunded, yen(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_refund_and_a_return_refund_cannot_both_pass_the_cap() {
    let w = world().await;
    for round in 0..4 {
        // ¥6,480 captured up front, then the CAP (¥2,500) cancelled: a ¥2,500 settlement is
        // due. A return refund of ¥5,000 at the same time: together ¥7,500 > ¥6,480.
        let order_id = w.place(&format!("k-both-{round}"), None).await.order_id;
        w.capture(order_id, yen(6480)).await;
        w.cancel(order_id, &[("L2", 1)]).await;
        let calls = w.refunds_at_provider();
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let (orders, s) = (w.orders.clone(), start.clone());
        let settle = tokio::spawn(async move {
            s.wait().await;
            orders.refund_cancelled_excess(order_id, system()).await
        });
        let (orders, s) = (w.orders.clone(), start.clone());
        let ret = tokio::spawn(async move {
            s.wait().await;
            orders
                .refund(order_id, "rma:ret", yen(5000), system())
                .await
        });
        let settled = settle.await.unwrap();
        let returned = ret.await.unwrap();
        let order = w.order(order_id).await;
        let refunded = order.payment.as_ref().unwrap().refunded;
        match (&settled, &returned) {
            // The settlement first: ¥3,980 left, the ¥5,000 return does not fit.
            (Ok(Some(_)), Err(RefundError::ExceedsRefundable { refundable, .. })) => {
                assert_eq!(*refundable, yen(3980));
                assert_eq!(refunded, yen(2500));
            }
            // The return first: the customer already got more back than the cancelled units.
            (Ok(None), Ok(_)) => assert_eq!(refunded, yen(5000)),
            other => panic!("round {round}: {other:?}"),
        }
        assert!(refunded.amount <= Decimal::from(6480));
        assert_eq!(w.refunds_at_provider() - calls, 1, "round {round}");
        assert_eq!(w.books(&order), (yen(6480), yen(6480), refunded));
        // The reactions then see the cancellation: they settle through the same path, and
        // nothing more goes back.
        w.settle().await;
        let after = w.order(order_id).await;
        assert_eq!(after.payment.as_ref().unwrap().refunded, refunded);
        assert_eq!(w.books(&after).2, refunded);
    }
}

// ---- B: exchange credit ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_below_the_total_authorizes_the_difference_and_captures_at_most_that() {
    let w = world().await;
    let placed = w.place("k-part", credit(yen(1480))).await;
    let order = &placed.order;
    assert_eq!(order.credit().unwrap().amount, yen(1480));
    assert_eq!(order.payable(), Some(yen(5000)));
    let p = order.payment.as_ref().unwrap();
    assert_eq!(p.authorized, yen(5000));
    assert_eq!(w.books(order), (yen(5000), yen(0), yen(0)));
    assert_eq!(
        w.event_types(placed.order_id).await,
        ["OrderPlaced.v1", "PaymentAuthorized.v1"]
    );
    // Everything ships: ¥6,480 of goods, ¥5,000 taken.
    w.ship(placed.order_id, "F1", &[("L1", 2), ("L2", 1)]).await;
    let order = w.order(placed.order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
    assert_eq!(order.payment.as_ref().unwrap().captured, yen(5000));
    assert_eq!(w.books(&order), (yen(5000), yen(5000), yen(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_refunds_only_what_the_customer_paid() {
    let w = world().await;
    // ¥6,480 with ¥3,000 of credit: ¥3,480 authorized.
    let order_id = w.place("k-cancel", credit(yen(3000))).await.order_id;
    // The TEEs (¥3,980) ship: ¥3,480 taken (all the customer pays).
    w.ship(order_id, "F1", &[("L1", 2)]).await;
    assert_eq!(w.order(order_id).await.payment.unwrap().captured, yen(3480));
    // The CAP (¥2,500) is cancelled: the customer keeps ¥3,980 of goods for ¥3,000 of credit
    // and ¥980 of money, so ¥2,500 goes back, through the refund path.
    w.cancel(order_id, &[("L2", 1)]).await;
    w.settle().await;
    let order = w.order(order_id).await;
    assert_eq!(order.payable(), Some(yen(980)));
    let p = order.payment.as_ref().unwrap();
    assert_eq!((p.captured, p.refunded), (yen(3480), yen(2500)));
    assert_eq!(
        p.refund_operations.keys().collect::<Vec<_>>(),
        [&format!("refund:{order_id}:2500")]
    );
    assert_eq!(w.books(&order), (yen(3480), yen(3480), yen(2500)));
    // A replay of every reaction from the start changes nothing.
    let len = w.stream_len(order_id).await;
    w.reactions
        .clone()
        .with_checkpoint("replay")
        .run_until_idle(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(w.stream_len(order_id).await, len);
    assert_eq!(w.books(&order), (yen(3480), yen(3480), yen(2500)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_covering_the_total_places_an_order_without_payment_that_still_ships() {
    let w = world().await;
    for (key, amount) in [("k-full", 6480), ("k-more", 9000)] {
        let placed = w.place(key, credit(yen(amount))).await;
        let order_id = placed.order_id;
        assert_eq!(placed.order.payment, None);
        assert_eq!(placed.order.payable(), Some(yen(0)));
        assert_eq!(w.event_types(order_id).await, ["OrderPlaced.v1"]);
        // Reserved like any order.
        let owner = format!("order:{order_id}");
        let reserved: Vec<_> = w
            .inventory
            .reserved
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| *o == owner)
            .map(|(_, r)| (r.sku.clone(), r.qty))
            .collect();
        assert_eq!(reserved, [("TEE".to_string(), 2), ("CAP".to_string(), 1)]);
        // Ships, consumes its reservations, and takes no money.
        w.ship(order_id, "F1", &[("L1", 2), ("L2", 1)]).await;
        let order = w.order(order_id).await;
        assert_eq!(order.status(), Some(OrderStatus::Fulfilled));
        assert_eq!(order.payment, None);
        let consumed = w.inventory.consumed.lock().unwrap().clone();
        assert_eq!(consumed.get(&format!("{owner}#0")), Some(&2));
        assert_eq!(consumed.get(&format!("{owner}#1")), Some(&1));
        assert_eq!(
            w.event_types(order_id).await,
            ["OrderPlaced.v1", "OrderShipped.v1"]
        );
    }
    assert_eq!(w.provider.authorizations.load(Ordering::SeqCst), 0);
    // Cancelling such an order has nothing to void or refund.
    let order_id = w.place("k-full-cancel", credit(yen(6480))).await.order_id;
    w.cancel(order_id, &[("L1", 2), ("L2", 1)]).await;
    w.settle().await;
    let order = w.order(order_id).await;
    assert_eq!(order.status(), Some(OrderStatus::Cancelled));
    assert_eq!(
        w.event_types(order_id).await,
        ["OrderPlaced.v1", "OrderLinesCancelled.v1"]
    );
    assert_eq!(w.refunds_at_provider(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_credit_is_refused_before_anything_is_reserved() {
    let w = world().await;
    let cases = [
        (credit(Money::parse("10", "USD").unwrap()), "credit.amount"),
        (credit(yen(-1)), "credit.amount"),
        (
            Some(OrderCredit {
                amount: yen(100),
                source: "  ".into(),
            }),
            "credit.source",
        ),
    ];
    for (i, (c, field)) in cases.into_iter().enumerate() {
        let key = format!("k-bad-{i}");
        let e = w
            .orders
            .place(request(&key, c), customer())
            .await
            .unwrap_err();
        let PlaceError::Order(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (e.code(), e.field()),
            ("INVALID_INPUT", Some(field)),
            "{e:?}"
        );
        let order_id = ichigen_order::handlers::order::order_id_for("c-1", &key);
        assert_eq!(w.stream_len(order_id).await, 0);
    }
    assert!(matches!(
        w.orders
            .place(
                request("k-bad-usd", credit(Money::parse("10", "USD").unwrap())),
                customer()
            )
            .await,
        Err(PlaceError::Order(OrderError::CurrencyMismatch { .. }))
    ));
    assert!(w.inventory.reserved.lock().unwrap().is_empty());
    assert_eq!(w.provider.authorizations.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_credit_replays_and_another_credit_reuses_the_key() {
    let w = world().await;
    let first = w.place("k-idem", credit(yen(1000))).await;
    assert!(!first.replayed);
    let head = w.store.head().await.unwrap();
    let same = w.place("k-idem", credit(yen(1000))).await;
    assert!(same.replayed);
    assert_eq!((same.order_id, &same.order), (first.order_id, &first.order));
    // The same amount written differently is the same credit.
    let same = w
        .place("k-idem", credit(Money::parse("1000.00", "JPY").unwrap()))
        .await;
    assert!(same.replayed);
    for other in [
        credit(yen(1001)),
        None,
        Some(OrderCredit {
            amount: yen(1000),
            source: "rma:r-2".into(),
        }),
    ] {
        let e = w
            .orders
            .place(request("k-idem", other.clone()), customer())
            .await
            .unwrap_err();
        assert!(
            matches!(e, PlaceError::Order(OrderError::IdempotencyKeyReused)),
            "{other:?}: {e:?}"
        );
    }
    assert_eq!(w.store.head().await.unwrap(), head);
    assert_eq!(w.provider.authorizations.load(Ordering::SeqCst), 1);
    // And the other way round: a key first used without a credit.
    w.place("k-plain", None).await;
    assert!(matches!(
        w.orders
            .place(request("k-plain", credit(yen(1))), customer())
            .await,
        Err(PlaceError::Order(OrderError::IdempotencyKeyReused))
    ));
}

/// Right after a placement the hold tracker may not show its holds yet. A retry arriving then
/// must still be answered from the stream: no second authorization, nothing reserved again,
/// and above all none of the recorded order's holds released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_before_the_tracker_saw_the_holds_replays_and_releases_nothing() {
    let w = world().await;
    let first = w.place("k-lag", None).await;
    let reserved = w.inventory.reserved.lock().unwrap().len();
    w.inventory.lagging.store(true, Ordering::SeqCst);
    let again = w.place("k-lag", None).await;
    assert!(again.replayed);
    assert_eq!(again.order_id, first.order_id);
    assert!(w.inventory.released.lock().unwrap().is_empty());
    assert_eq!(w.inventory.reserved.lock().unwrap().len(), reserved);
    assert_eq!(w.provider.authorizations.load(Ordering::SeqCst), 1);
}
