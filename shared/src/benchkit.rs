//! What every `make bench` program shares: how many runs, the median of runs, latency
//! percentiles, and the event store runs (appends, subscription lag) every backend is measured
//! by. Kept in the library (not copied into each bench) so that every figure in
//! BENCHMARKS.md is computed the same way.

use crate::auth::Actor;
use crate::envelope::{Metadata, NewEvent};
use crate::store::{DynEventStore, ExpectedRevision, SubscribeFrom, SubscriptionFilter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Runs per benchmark: `ICHIGEN_BENCH_RUNS`, default 3 (the median of 3 is quoted).
pub fn runs() -> usize {
    std::env::var("ICHIGEN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3)
}

/// The median of the runs' results (the upper one of an even count); 0 for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The `p`-quantile (0.0–1.0, nearest rank) of latencies sorted ascending; 0 for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[idx]
}

/// The event every store benchmark appends: a small stock-like payload.
pub fn bench_event(i: u64) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: "Benchmarked.v1".into(),
        data: format!("{{\"sku\":\"SKU-{i}\",\"qty\":1,\"location\":\"S1\"}}").into_bytes(),
        metadata: Metadata::new(Actor::system("bench")),
    }
}

/// One append run: throughput and ack latencies.
pub struct AppendRun {
    pub events_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// `writers` tasks, each appending one event at a time to its own stream (`bench-<w>`) with
/// an exact expected revision, for `total` events.
pub async fn append_run(store: &DynEventStore, writers: usize, total: usize) -> AppendRun {
    let per_writer = total / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = format!("bench-{w}");
                let mut latencies = Vec::with_capacity(per_writer);
                let mut last = None;
                for i in 0..per_writer {
                    let t = Instant::now();
                    let r = store
                        .append(
                            &stream,
                            ExpectedRevision::after(last),
                            vec![bench_event(i as u64)],
                        )
                        .await
                        .expect("append");
                    latencies.push(t.elapsed());
                    last = Some(r.next_expected);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.expect("writer"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    AppendRun {
        events_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

/// What a paced subscription run measured.
pub struct Lag {
    /// Ack → delivery.
    pub p50: Duration,
    pub p99: Duration,
    /// Append call → delivery (includes the durable commit).
    pub end_to_end_p99: Duration,
    pub delivered: usize,
}

/// 10 writers paced to `rate` events/s for `seconds` (streams `lag<run>-<w>`), one subscriber
/// of the `lag…` categories from the end; lag = delivery time − ack time per event.
pub async fn subscription_lag(store: &DynEventStore, rate: u64, seconds: u64) -> Lag {
    let run = Uuid::new_v4().simple().to_string();
    let category = format!("lag{run}");
    let acked: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let delivered: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let mut sub = store
        .subscribe(
            SubscribeFrom::End,
            SubscriptionFilter::categories([category.clone()]),
        )
        .await
        .expect("subscribe");
    let total = (rate * seconds) as usize;
    let reader = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < total {
                match sub.next().await {
                    Some(Ok(e)) => {
                        delivered.lock().expect("lock").insert(e.id, Instant::now());
                        n += 1;
                    }
                    _ => break,
                }
            }
        })
    };
    let writers = 10u64;
    let interval = Duration::from_secs_f64(writers as f64 / rate as f64);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let acked = acked.clone();
            let sent = sent.clone();
            let stream = format!("{category}-{w}");
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut last = None;
                for i in 0..(rate * seconds / writers) {
                    tick.tick().await;
                    let e = bench_event(i);
                    let id = e.id;
                    sent.lock().expect("lock").insert(id, Instant::now());
                    let r = store
                        .append(&stream, ExpectedRevision::after(last), vec![e])
                        .await
                        .expect("append");
                    acked.lock().expect("lock").insert(id, Instant::now());
                    last = Some(r.next_expected);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let lags = |from: &HashMap<Uuid, Instant>| {
        let delivered = delivered.lock().expect("lock");
        let mut lags: Vec<Duration> = from
            .iter()
            .filter_map(|(id, t)| delivered.get(id).map(|d| d.saturating_duration_since(*t)))
            .collect();
        lags.sort();
        lags
    };
    let after_ack = lags(&acked.lock().expect("lock"));
    let end_to_end = lags(&sent.lock().expect("lock"));
    Lag {
        p50: percentile(&after_ack, 0.5),
        p99: percentile(&after_ack, 0.99),
        end_to_end_p99: percentile(&end_to_end, 0.99),
        delivered: after_ack.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![]), 0.0);
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
