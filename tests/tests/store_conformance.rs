//! Runs the conformance suite against every backend: always the embedded store (a fresh data
//! directory per test), and KurrentDB on request. The KurrentDB tests are `#[ignore]`d, so the
//! runner reports them as skipped where no server runs (our build machines); run them with a
//! server and `ICHIGEN_TEST_KURRENTDB_URL` (README, "Event stores"):
//!
//! ```sh
//! ICHIGEN_TEST_KURRENTDB_URL="esdb://127.0.0.1:2113?tls=false" \
//!     cargo nextest run -p ichigen-tests --test store_conformance --run-ignored ignored-only
//! ```

use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::kurrent::KurrentStore;
use ichigen_shared::store::DynEventStore;
use ichigen_tests::conformance as suite;
use std::sync::Arc;
use std::time::Duration;

struct Embedded {
    store: DynEventStore,
    _dir: tempfile::TempDir,
}

async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    Embedded {
        store: Arc::new(store),
        _dir: dir,
    }
}

/// The KurrentDB named by `ICHIGEN_TEST_KURRENTDB_URL`. A test asked to run without it fails:
/// it must never pass without having run.
async fn kurrent() -> DynEventStore {
    let Ok(url) = std::env::var("ICHIGEN_TEST_KURRENTDB_URL") else {
        panic!(
            "set ICHIGEN_TEST_KURRENTDB_URL to the KurrentDB to test (README, \"Event stores\")"
        );
    };
    let store = KurrentStore::connect(&url, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("ICHIGEN_TEST_KURRENTDB_URL={url}: {e}"));
    Arc::new(store)
}

macro_rules! conformance {
    ($($name:ident => $check:expr;)*) => {
        mod embedded_backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let e = embedded().await;
                    let check = $check;
                    check(e.store.clone()).await;
                    e.store.shutdown().await;
                }
            )*
        }
        mod kurrentdb_backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[ignore = "needs a KurrentDB server: set ICHIGEN_TEST_KURRENTDB_URL and run with --run-ignored ignored-only"]
                async fn $name() {
                    let store = kurrent().await;
                    let check = $check;
                    check(store).await;
                }
            )*
        }
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
    filtered_subscriptions_report_checkpoints => suite::filtered_subscriptions_report_checkpoints;
}

/// Embedded-only: its checkpoints are exact (KurrentDB's come once per filter window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_checkpoints_reach_the_head() {
    let e = embedded().await;
    suite::checkpoints_reach_the_head(e.store.clone()).await;
    e.store.shutdown().await;
}

/// Embedded-only: its unique index makes an event id global, which KurrentDB does not promise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_event_id_is_unique_across_streams() {
    let e = embedded().await;
    suite::event_id_reused_in_other_stream(e.store.clone()).await;
}
