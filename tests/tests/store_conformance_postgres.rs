//! The conformance suite against the PostgreSQL backend, each check on a server of its own
//! (`initdb` + `pg_ctl` into a temp dir, see `ichigen_tests::postgres`). Where PostgreSQL is not
//! installed these tests are ignored: the runner reports them as skipped.

use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore};
use ichigen_shared::store::DynEventStore;
use ichigen_tests::conformance as suite;
use ichigen_tests::postgres::TestPostgres;
use std::sync::Arc;

async fn postgres() -> (TestPostgres, DynEventStore) {
    let server = TestPostgres::start();
    let store = PostgresStore::connect(&server.url(), PostgresOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", server.url()));
    (server, Arc::new(store))
}

macro_rules! conformance {
    ($($name:ident => $check:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
            async fn $name() {
                let (_server, store) = postgres().await;
                let check = $check;
                check(store.clone()).await;
                store.shutdown().await;
            }
        )*
    };
}

conformance! {
    append_and_read_back => suite::append_and_read_back;
    expected_revision_is_enforced => suite::expected_revision_is_enforced;
    optimistic_concurrency_with_32_racers => |s| suite::optimistic_concurrency_under_contention(s, 32);
    idempotent_retry => suite::idempotent_retry;
    global_order => suite::global_order;
    subscription_handover_under_writers => suite::subscription_handover_under_writers;
    filters_and_subscribe_from_end => suite::filters_and_subscribe_from_end;
    missing_stream_and_bad_appends => suite::missing_stream_and_bad_appends;
    head_tracks_appends => suite::head_tracks_appends;
    a_delivered_event_is_in_its_stream => suite::a_delivered_event_is_in_its_stream;
    event_id_is_unique_across_streams => suite::event_id_reused_in_other_stream;
    filtered_subscriptions_report_checkpoints => suite::filtered_subscriptions_report_checkpoints;
    checkpoints_reach_the_head => suite::checkpoints_reach_the_head;
}
