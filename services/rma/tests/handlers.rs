//! The returns handlers against a real embedded store in a temporary directory.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ichigen_rma::domain::{
    default_policy, stream_name, OrderFacts, OrderLineFacts, PolicyCommand, ReceivedLine,
    RequestedLine, RmaCommand, RmaError, RmaStatus, POLICY_STREAM,
};
use ichigen_rma::handlers::{
    rma_id_for, PolicyHandlers, ReturnRequest, RmaExecuted, RmaHandlerError, RmaHandlers,
};
use ichigen_shared::clock::ManualClock;
use ichigen_shared::envelope::{Actor, Metadata};
use ichigen_shared::money::{Currency, Money};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, DynEventStore};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
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

fn order_id() -> Uuid {
    Uuid::from_u128(0x1234)
}

/// L1: 3 × ¥2,990 delivered 5 days ago; L2: the last unit, 1 × ¥9,800 delivered 2 days ago.
fn order() -> OrderFacts {
    let line = |id: &str, sku: &str, price: i64, qty: i64, days: i64| OrderLineFacts {
        line_id: id.into(),
        sku: sku.into(),
        title: format!("{sku} title"),
        unit_price: yen(price),
        fulfilled_qty: qty,
        fulfilled_at: Some(now() - TimeDelta::days(days)),
        already_returned_qty: 0,
    };
    OrderFacts {
        order_id: order_id(),
        customer_id: Some("cust-1".into()),
        currency: Currency::JPY,
        lines: vec![
            line("L1", "TSHIRT-M", 2990, 3, 5),
            line("L2", "JEANS-30", 9800, 1, 2),
        ],
        captured: yen(18_770),
        refunded: yen(0),
    }
}

fn ask(lines: &[(&str, i64, &str)]) -> ReturnRequest {
    ReturnRequest {
        lines: lines
            .iter()
            .map(|(l, q, r)| RequestedLine::new(*l, *q, *r))
            .collect(),
        requested_by: "cust-1".into(),
        note: "サイズが小さかったです".into(),
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: DynEventStore,
    clock: ManualClock,
    rma: RmaHandlers,
}

async fn open(dir: &std::path::Path) -> DynEventStore {
    Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default())
            .await
            .unwrap(),
    )
}

/// A fresh store with the default policy.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let clock = ManualClock::new(now());
    let rma = RmaHandlers::new(store.clone(), Arc::new(clock.clone()));
    rma.policy().ensure_default(meta()).await.unwrap();
    Env {
        dir,
        store,
        clock,
        rma,
    }
}

impl Env {
    async fn revision(&self, stream: &str) -> Option<u64> {
        read_whole_stream(self.store.as_ref(), stream)
            .await
            .unwrap()
            .last()
            .map(|e| e.revision)
    }

    async fn request(
        &self,
        key: &str,
        lines: &[(&str, i64, &str)],
    ) -> Result<RmaExecuted, RmaHandlerError> {
        self.rma
            .request(rma_id_for("cust-1", key), ask(lines), order(), meta())
            .await
    }
}

fn refused(result: Result<RmaExecuted, RmaHandlerError>) -> RmaError {
    match result {
        Err(RmaHandlerError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_is_seeded_once_by_concurrent_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let policy = PolicyHandlers::new(store.clone());
            tokio::spawn(async move { policy.ensure_default(meta()).await })
        })
        .collect();
    let mut seeded = 0;
    for task in tasks {
        let executed = task.await.unwrap().unwrap();
        if !executed.events.is_empty() {
            seeded += 1;
            assert_eq!(executed.events.len(), default_policy().len());
            assert!(executed.position.is_some());
        } else {
            assert!(executed.position.is_none());
        }
    }
    assert_eq!(seeded, 1);
    let stored = read_whole_stream(store.as_ref(), POLICY_STREAM)
        .await
        .unwrap();
    assert_eq!(stored.len(), default_policy().len());

    let policy = PolicyHandlers::new(store.clone());
    let (loaded, revision) = policy.load().await.unwrap();
    assert_eq!(revision, Some(default_policy().len() as u64 - 1));
    assert_eq!(loaded.active_reasons().count(), 5);
    assert_eq!(loaded.active_grades().count(), 6);

    // An administrator's change survives the next start.
    let retired = policy
        .execute(
            PolicyCommand::RetireReason {
                code: "CHANGED_MIND".into(),
            },
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(retired.events.len(), 1);
    let again = policy.ensure_default(meta()).await.unwrap();
    assert!(again.events.is_empty() && again.position.is_none());
    let (loaded, _) = policy.load().await.unwrap();
    assert!(loaded.reason("CHANGED_MIND").is_some_and(|r| !r.active));
}

#[tokio::test]
async fn request_approve_receive_grade_refund_is_stored_and_reloads() {
    let env = env().await;
    let id = rma_id_for("cust-1", "key-1");
    let requested = env
        .request("key-1", &[("L1", 1, "SIZE_FIT")])
        .await
        .unwrap();
    assert_eq!(requested.state.status(), Some(RmaStatus::Requested));
    assert!(requested.position.is_some());

    let step = |command: RmaCommand| {
        let rma = env.rma.clone();
        async move { rma.execute(id, command, meta()).await.unwrap() }
    };
    step(RmaCommand::Approve {
        note: "OK".into(),
        by: "agent-7".into(),
    })
    .await;
    step(RmaCommand::Receive {
        receipt_id: "RCPT-1".into(),
        location: "TKY-DC1".into(),
        lines: vec![ReceivedLine::new("R1", 1)],
        in_person: false,
    })
    .await;
    let graded = step(RmaCommand::Grade {
        unit_id: "R1-1".into(),
        grade_code: "LIKE_NEW".into(),
    })
    .await;
    assert_eq!(graded.state.status(), Some(RmaStatus::Inspected));
    let refunded = step(RmaCommand::IssueRefund {
        refundable_left: order().refundable_left(),
        payment_reference: "PAY-R-1".into(),
    })
    .await;
    assert_eq!(refunded.state.status(), Some(RmaStatus::Refunded));
    // ¥2,990 less the ¥800 return shipping the customer pays for SIZE_FIT.
    assert_eq!(refunded.state.refunded(), Some(yen(2190)));
    assert_eq!(env.revision(&stream_name(id)).await, Some(4));
    let before = refunded.state;

    // Another process on the same data: everything is read back from the store.
    let Env {
        dir, store, clock, ..
    } = env;
    store.shutdown().await;
    drop(store);
    let store = open(dir.path()).await;
    let rma = RmaHandlers::new(store.clone(), Arc::new(clock));
    let (loaded, revision) = rma.load(id).await.unwrap();
    assert_eq!(loaded, before);
    assert_eq!(revision, Some(4));
    assert_eq!(rma.rebuild_index().await.unwrap(), 1);
    assert_eq!(rma.returns_of(order_id()).await.unwrap(), vec![id]);
    assert_eq!(
        rma.already_returned(order_id()).await.unwrap(),
        HashMap::from([("L1".to_string(), 1)])
    );
    assert_eq!(
        rma.refunded_total(order_id(), Currency::JPY).await.unwrap(),
        yen(2190)
    );
    let closed = rma
        .execute(
            id,
            RmaCommand::Close {
                by: "agent-7".into(),
            },
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(closed.state.status(), Some(RmaStatus::Closed));
    store.shutdown().await;
}

#[tokio::test]
async fn a_retried_request_decides_nothing_even_after_the_window_closed() {
    let env = env().await;
    let id = rma_id_for("cust-1", "key-1");
    let first = env
        .request("key-1", &[("L1", 2, "DEFECTIVE")])
        .await
        .unwrap();
    assert_eq!(first.events.len(), 2, "requested and auto-approved");
    let stream = stream_name(id);
    let revision = env.revision(&stream).await;
    let head = env.store.head().await.unwrap();

    let retry = env
        .request("key-1", &[("L1", 2, "DEFECTIVE")])
        .await
        .unwrap();
    assert!(retry.events.is_empty() && retry.position.is_none());
    assert_eq!(retry.state, first.state);

    // Decided on the empty state first, the retry would now be refused (the window closed):
    // the handler recognises the existing return instead.
    env.clock.advance(TimeDelta::days(60));
    let late = env
        .request("key-1", &[("L1", 2, "DEFECTIVE")])
        .await
        .unwrap();
    assert!(late.events.is_empty());
    assert_eq!(late.state, first.state);

    // The same key with another request is a conflict, not a second return.
    env.clock.advance(TimeDelta::days(-60));
    let other = refused(env.request("key-1", &[("L1", 3, "DEFECTIVE")]).await);
    assert_eq!(other, RmaError::RmaExists);

    assert_eq!(env.revision(&stream).await, revision);
    assert_eq!(env.store.head().await.unwrap(), head);
    assert_eq!(env.rma.returns_of(order_id()).await.unwrap(), vec![id]);
    assert_eq!(
        env.rma.already_returned(order_id()).await.unwrap(),
        HashMap::from([("L1".to_string(), 2)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_the_last_unit_accept_exactly_one() {
    let env = env().await;
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let rma = env.rma.clone();
            tokio::spawn(async move {
                let id = rma_id_for("cust-1", &format!("key-{n}"));
                let result = rma
                    .request(id, ask(&[("L2", 1, "DEFECTIVE")]), order(), meta())
                    .await;
                (id, result)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        let (id, result) = task.await.unwrap();
        match result {
            Ok(executed) => {
                assert!(!executed.events.is_empty());
                accepted.push(id);
            }
            Err(e) => {
                assert_eq!(e.kind(), "EXCEEDS_RETURNABLE", "{e}");
                assert_eq!(e.code(), "CONFLICT");
                assert_eq!(e.field(), Some("lines.0.qty"));
                assert_eq!(env.revision(&stream_name(id)).await, None);
            }
        }
    }
    assert_eq!(accepted.len(), 1);
    assert_eq!(env.rma.returns_of(order_id()).await.unwrap(), accepted);

    // A second process on the same store builds its index from the store and sees it too.
    let other = RmaHandlers::new(env.store.clone(), Arc::new(env.clock.clone()));
    let e = refused(
        other
            .request(
                rma_id_for("cust-1", "key-later"),
                ask(&[("L2", 1, "DEFECTIVE")]),
                order(),
                meta(),
            )
            .await,
    );
    assert!(matches!(
        e,
        RmaError::ExceedsReturnable { returnable: 0, .. }
    ));
}

#[tokio::test]
async fn a_rejected_return_frees_its_units() {
    let env = env().await;
    let first = rma_id_for("cust-1", "key-1");
    env.request("key-1", &[("L2", 1, "CHANGED_MIND")])
        .await
        .unwrap();
    refused(env.request("key-2", &[("L2", 1, "CHANGED_MIND")]).await);
    env.rma
        .execute(
            first,
            RmaCommand::Reject {
                note: "タグが外されています".into(),
                by: "agent-7".into(),
            },
            meta(),
        )
        .await
        .unwrap();
    assert!(env
        .rma
        .already_returned(order_id())
        .await
        .unwrap()
        .is_empty());
    let second = env
        .request("key-3", &[("L2", 1, "CHANGED_MIND")])
        .await
        .unwrap();
    assert_eq!(second.state.status(), Some(RmaStatus::Requested));
}

#[tokio::test]
async fn a_refused_command_appends_nothing() {
    let env = env().await;
    let id = rma_id_for("cust-1", "key-1");
    env.request("key-1", &[("L1", 1, "SIZE_FIT")])
        .await
        .unwrap();
    let stream = stream_name(id);
    let revision = env.revision(&stream).await;
    let head = env.store.head().await.unwrap();

    // Not approved yet: nothing can be received.
    let e = refused(
        env.rma
            .execute(
                id,
                RmaCommand::Receive {
                    receipt_id: "RCPT-1".into(),
                    location: "TKY-DC1".into(),
                    lines: vec![ReceivedLine::new("R1", 1)],
                    in_person: false,
                },
                meta(),
            )
            .await,
    );
    assert_eq!(e.kind(), "WRONG_STATUS");
    // Nothing received: no unit to grade.
    let e = refused(
        env.rma
            .execute(
                id,
                RmaCommand::Grade {
                    unit_id: "R1-1".into(),
                    grade_code: "GOOD".into(),
                },
                meta(),
            )
            .await,
    );
    assert_eq!(e.kind(), "UNKNOWN_UNIT");
    // More than the line has.
    let e = refused(env.request("key-2", &[("L1", 3, "SIZE_FIT")]).await);
    assert!(matches!(
        e,
        RmaError::ExceedsReturnable { returnable: 2, .. }
    ));
    assert_eq!(
        env.revision(&stream_name(rma_id_for("cust-1", "key-2")))
            .await,
        None
    );
    // A command for a return that does not exist.
    let missing = Uuid::from_u128(7);
    let e = env
        .rma
        .execute(
            missing,
            RmaCommand::Approve {
                note: String::new(),
                by: "agent-7".into(),
            },
            meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RmaHandlerError::NotFound(id) if id == missing));
    assert_eq!((e.code(), e.kind()), ("NOT_FOUND", "RMA_NOT_FOUND"));

    assert_eq!(env.revision(&stream).await, revision);
    assert_eq!(env.revision(&stream_name(missing)).await, None);
    assert_eq!(env.store.head().await.unwrap(), head);
    assert_eq!(env.rma.returns_of(order_id()).await.unwrap(), vec![id]);
}
