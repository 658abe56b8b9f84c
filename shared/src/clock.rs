//! Time as a dependency, so that expiry (reservations, pickup holds) is testable without sleeping,
//! and a staging server's time can be moved forward ([`TestClock`]).

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A staging server's clock that an administrator moves forward (`clock.test_clock`): a base
/// clock plus an offset that only grows. The offset is what every process of a deployment
/// agrees on (the gateway's `test_clock` keeps it in the event store and follows it); this
/// type only adds it. Reads are one atomic load, so every decision may ask it.
#[derive(Debug)]
pub struct TestClock<C: Clock = SystemClock> {
    base: C,
    offset_ms: AtomicI64,
}

impl<C: Clock> TestClock<C> {
    pub fn new(base: C) -> Self {
        TestClock {
            base,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// How far this clock is ahead of its base.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Acquire))
    }

    /// Moves the offset to `offset` if that is further ahead (never back); returns the offset
    /// now in force.
    pub fn advance_to(&self, offset: Duration) -> Duration {
        let wanted = offset.num_milliseconds();
        let before = self.offset_ms.fetch_max(wanted, Ordering::AcqRel);
        Duration::milliseconds(before.max(wanted))
    }
}

impl<C: Clock> Clock for TestClock<C> {
    fn now(&self) -> DateTime<Utc> {
        self.base.now() + self.offset()
    }
}

/// Any shared clock is a clock (so a [`TestClock`] can sit on the clock a server was given).
impl Clock for Arc<dyn Clock> {
    fn now(&self) -> DateTime<Utc> {
        self.as_ref().now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::hours(2));
        assert_eq!(clock.now(), start + Duration::hours(2));
    }

    #[test]
    fn a_test_clock_adds_its_offset_and_only_moves_forward() {
        let start = Utc::now();
        let base = ManualClock::new(start);
        let clock = TestClock::new(base.clone());
        assert_eq!(clock.now(), start);
        assert_eq!(clock.advance_to(Duration::days(3)), Duration::days(3));
        assert_eq!(clock.now(), start + Duration::days(3));
        // An older (smaller) offset, e.g. an event seen late, changes nothing.
        assert_eq!(clock.advance_to(Duration::days(1)), Duration::days(3));
        assert_eq!(clock.offset(), Duration::days(3));
        base.advance(Duration::hours(1));
        assert_eq!(clock.now(), start + Duration::days(3) + Duration::hours(1));
    }
}
