//! Whether the embedded store can write now: set by the writer when a commit to the log fails
//! (a full disk, an I/O error) and by the indexer when the stream index cannot be updated;
//! cleared by the writer's next passing probe (room on the disk and a small commit: see
//! `writer`) and by the indexer's next update. Readiness reads it
//! ([`crate::store::EventStore::health`]).
//!
//! A degraded store keeps trying: every append is still attempted (each fails fast), the
//! indexer retries on its own, and a health check asks both to try again, so the store reports
//! itself ready again as soon as the disk takes writes, with or without traffic. A part counts
//! as recovered only when [`room_for_writes`] passes too: a full disk still takes a write that
//! fits in space a file already has (the WALs' frames of a failed commit), which says nothing
//! about the next.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Room a probe must find on the disk before a degraded part counts as writable again.
const PROBE_BYTES: usize = 1 << 20;

/// Whether the disk has room: [`PROBE_BYTES`] written to `probe` and synced (then removed).
pub(super) fn room_for_writes(probe: &Path) -> std::io::Result<()> {
    let written = std::fs::File::create(probe).and_then(|mut file| {
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(probe);
    written
}

#[derive(Default)]
pub(super) struct Health {
    log: Part,
    index: Part,
    /// Failed index updates so far: a reader that asked for a retry waits for the next one.
    index_failures: AtomicU64,
    /// Set by a reader (or a health check) that needs the index now: the failing indexer then
    /// tries again without waiting out its pause.
    index_nudged: AtomicBool,
}

/// One part's failure: a flag for the hot path, the reason for the report.
#[derive(Default)]
struct Part {
    failing: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Part {
    fn failed(&self, why: String) {
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.failing.store(true, Ordering::Release);
    }

    /// Clears a failure (one atomic load when there is none); whether there was one.
    fn ok(&self) -> bool {
        if !self.failing.load(Ordering::Acquire) {
            return false;
        }
        self.failing.store(false, Ordering::Release);
        self.why.lock().unwrap_or_else(|p| p.into_inner()).take();
        true
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    fn why(&self) -> Option<String> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Health {
    pub(super) fn log_failed(&self, why: String) {
        self.log.failed(why);
    }

    /// After a probe passed; whether the log had been failing.
    pub(super) fn log_ok(&self) -> bool {
        self.log.ok()
    }

    pub(super) fn log_failing(&self) -> bool {
        self.log.failing()
    }

    pub(super) fn index_failed(&self, why: String) {
        self.index.failed(why);
        self.index_failures.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn index_failures(&self) -> u64 {
        self.index_failures.load(Ordering::Acquire)
    }

    /// Asks a failing indexer to try again now.
    pub(super) fn nudge_index(&self) {
        self.index_nudged.store(true, Ordering::Release);
    }

    /// Whether someone asked for a retry since the last call.
    pub(super) fn take_index_nudge(&self) -> bool {
        self.index_nudged.swap(false, Ordering::AcqRel)
    }

    /// After the index was brought up to the log; whether it had been failing.
    pub(super) fn index_ok(&self) -> bool {
        self.index.ok()
    }

    pub(super) fn index_failing(&self) -> bool {
        self.index.failing()
    }

    /// What is wrong, if anything.
    pub(super) fn problem(&self) -> Option<String> {
        match (self.log.why(), self.index.why()) {
            (None, None) => None,
            (Some(log), None) => Some(format!("cannot commit to the log: {log}")),
            (None, Some(index)) => Some(format!("cannot update the stream index: {index}")),
            (Some(log), Some(index)) => Some(format!(
                "cannot commit to the log: {log}; cannot update the stream index: {index}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_found_and_the_probe_left_behind_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probe = dir.path().join("space-probe.log");
        room_for_writes(&probe).expect("room");
        assert!(!probe.exists());
        assert!(room_for_writes(&dir.path().join("missing/probe")).is_err());
    }

    #[test]
    fn a_failure_is_reported_until_the_next_success() {
        let health = Health::default();
        assert_eq!(health.problem(), None);
        assert!(!health.log_ok());
        health.log_failed("database or disk is full".into());
        health.index_failed("disk I/O error".into());
        let problem = health.problem().expect("a problem");
        assert!(
            problem.contains("log: database or disk is full"),
            "{problem}"
        );
        assert!(problem.contains("index: disk I/O error"), "{problem}");
        assert_eq!(health.index_failures(), 1);
        assert!(!health.take_index_nudge());
        health.nudge_index();
        assert!(health.take_index_nudge() && !health.take_index_nudge());
        assert!(health.log_ok());
        assert!(health.index_failing());
        assert!(health.index_ok());
        assert_eq!(health.problem(), None);
        assert!(!health.log_failing() && !health.index_failing());
    }
}
