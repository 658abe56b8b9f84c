//! A small Prometheus registry: counters, gauges and fixed-bucket histograms on atomics.
//!
//! Hand-written rather than a crate because we need a dozen series and the text exposition
//! format is tiny; every update is a few relaxed atomic adds, cheap enough for the append path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Latency buckets in seconds: 50µs to 10s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Size buckets (events per batch).
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
];

pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound plus +Inf.
    counts: Vec<AtomicU64>,
    /// Sum in millionths, so that it stays an integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let idx = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[idx].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

#[derive(Clone)]
enum Series {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
    Histogram(Arc<Histogram>),
}

struct Family {
    help: &'static str,
    kind: &'static str,
    series: BTreeMap<String, Series>,
}

/// The process-wide registry.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The registry `/metrics` renders.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// The series of `name` with these labels, made on first use.
    fn entry(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
    ) -> Series {
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",");
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        family.series.entry(key).or_insert_with(make).clone()
    }

    // A name reused with another kind is a programming error; such a caller gets a detached
    // series (counted nowhere) rather than a panic in production.

    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<AtomicU64> {
        match self.entry(name, help, "counter", labels, || {
            Series::Counter(Arc::default())
        }) {
            Series::Counter(c) => c,
            _ => Arc::default(),
        }
    }

    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<AtomicI64> {
        match self.entry(
            name,
            help,
            "gauge",
            labels,
            || Series::Gauge(Arc::default()),
        ) {
            Series::Gauge(g) => g,
            _ => Arc::default(),
        }
    }

    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        labels: &[(&str, &str)],
    ) -> Arc<Histogram> {
        match self.entry(name, help, "histogram", labels, || {
            Series::Histogram(Arc::new(Histogram::new(bounds)))
        }) {
            Series::Histogram(h) => h,
            _ => Arc::new(Histogram::new(bounds)),
        }
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, series) in &family.series {
                let braces = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{labels}}}")
                };
                match series {
                    Series::Counter(c) => {
                        let _ = writeln!(out, "{name}{braces} {}", c.load(Ordering::Relaxed));
                    }
                    Series::Gauge(g) => {
                        let _ = writeln!(out, "{name}{braces} {}", g.load(Ordering::Relaxed));
                    }
                    Series::Histogram(h) => h.render(&mut out, name, labels),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let reg = Registry::default();
        let h = reg.histogram("t_latency_seconds", "test", LATENCY_BUCKETS, &[("op", "x")]);
        h.observe(0.0002);
        h.observe(0.003);
        h.observe(20.0);
        let text = reg.render();
        assert!(text.contains("# TYPE t_latency_seconds histogram"));
        assert!(text.contains("t_latency_seconds_bucket{op=\"x\",le=\"0.00025\"} 1"));
        assert!(text.contains("t_latency_seconds_bucket{op=\"x\",le=\"0.005\"} 2"));
        assert!(text.contains("t_latency_seconds_bucket{op=\"x\",le=\"+Inf\"} 3"));
        assert!(text.contains("t_latency_seconds_count{op=\"x\"} 3"));
    }

    #[test]
    fn counters_and_gauges_are_shared_per_label_set() {
        let reg = Registry::default();
        reg.counter("t_total", "test", &[("a", "1")])
            .fetch_add(2, Ordering::Relaxed);
        reg.counter("t_total", "test", &[("a", "1")])
            .fetch_add(3, Ordering::Relaxed);
        reg.gauge("t_gauge", "test", &[])
            .store(-4, Ordering::Relaxed);
        let text = reg.render();
        assert!(text.contains("t_total{a=\"1\"} 5"));
        assert!(text.contains("t_gauge -4"));
    }
}
