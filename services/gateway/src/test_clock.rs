//! The test clock of a staging deployment (`clock.test_clock`), like Stripe's test clocks: an
//! ADMIN moves the server's time forward (`advanceTestClock`) to see a pickup hold expire or a
//! return window close without waiting days.
//!
//! The offset lives in the event store, in the stream [`STREAM`] (category [`CATEGORY`]):
//! each advance appends [`TestClockAdvanced`] with the new total offset, decided on the
//! stream's revision so that two advances at once cannot lose one. Every process reads the
//! stream when it starts and follows it live, so that all of them run on the same time:
//! their clock is their base clock (the system's) plus the latest offset, which only grows.
//! Services read it through the `Arc<dyn Clock>` they already take; JWT expiry and event
//! metadata keep the wall clock.
//!
//! Production refuses the setting (`deployment.environment = "production"`, see
//! `shared::config`), and a server without it answers the mutation `NOT_ENABLED`.

use chrono::{DateTime, Duration, Utc};
use ichigen_shared::clock::{Clock, TestClock};
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::{
    read_whole_stream, DynEventStore, ExpectedRevision, Position, StoreError, SubscribeFrom,
    SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// The category the gateway owns for the test clock.
pub const CATEGORY: &str = "testclock";
/// The one stream of the test clock.
pub const STREAM: &str = "testclock-offset";
/// The event type of an advance.
pub const ADVANCED: &str = "TestClockAdvanced.v1";
/// Most one advance may move the clock (a typo of `P3000D` should not end the year).
pub const MAX_ADVANCE: Duration = Duration::days(366);

/// An ADMIN moved the staging server's test clock forward (only where `clock.test_clock` is
/// on): every process's clock is the system time plus the latest `offsetSeconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestClockAdvanced {
    /// This advance, in seconds (more than zero).
    pub by_seconds: i64,
    /// The total offset after it, in seconds.
    pub offset_seconds: i64,
}

/// Why an advance was refused (nothing was appended).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdvanceError {
    #[error("{0:?} is not an ISO-8601 duration of weeks, days, hours, minutes and seconds such as \"P3D\", \"PT36H\" or \"P1DT12H\"")]
    Malformed(String),
    #[error("the clock only moves forward: the duration must be more than zero")]
    NotForward,
    #[error("one advance may move the clock at most 366 days")]
    TooFar,
}

/// The decision, pure: the event that moves an offset of `current` by `by`.
pub fn decide(current: Duration, by: Duration) -> Result<TestClockAdvanced, AdvanceError> {
    if by <= Duration::zero() {
        return Err(AdvanceError::NotForward);
    }
    if by > MAX_ADVANCE {
        return Err(AdvanceError::TooFar);
    }
    Ok(TestClockAdvanced {
        by_seconds: by.num_seconds(),
        offset_seconds: current.num_seconds().saturating_add(by.num_seconds()),
    })
}

/// `P3D`, `PT36H`, `P1W`, `P1DT2H30M15S`: weeks, days, hours, minutes and whole seconds.
/// Years and months are refused (their length depends on the date).
pub fn parse_duration(text: &str) -> Result<Duration, AdvanceError> {
    let malformed = || AdvanceError::Malformed(text.to_string());
    let rest = text.trim().strip_prefix('P').ok_or_else(malformed)?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return Err(malformed()),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut parts = 0;
    let mut add = |part: &str, units: &[(char, i64)]| -> Result<(), AdvanceError> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            // Designators in order, each at most once.
            let (_, seconds) = allowed
                .by_ref()
                .find(|(d, _)| *d == c)
                .ok_or_else(malformed)?;
            let n: i64 = number.parse().map_err(|_| malformed())?;
            let add = n.checked_mul(*seconds).ok_or(AdvanceError::TooFar)?;
            total = total
                .checked_add(&Duration::seconds(add))
                .ok_or(AdvanceError::TooFar)?;
            number.clear();
            parts += 1;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(malformed())
        }
    };
    add(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(time) = time {
        add(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    if parts == 0 {
        return Err(malformed());
    }
    Ok(total)
}

/// `PT…` text of an offset, for answers (`P3DT4H`, `PT0S`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.num_seconds().max(0);
    let days = s / 86_400;
    s %= 86_400;
    let (h, m, sec) = (s / 3_600, (s % 3_600) / 60, s % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h > 0 || m > 0 || sec > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if sec > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{sec}S"));
        }
    }
    out
}

/// A failure of an advance.
#[derive(Debug, thiserror::Error)]
pub enum TestClockError {
    #[error(transparent)]
    Refused(#[from] AdvanceError),
    #[error("the test clock's stream could not be read or written: {0}")]
    Store(#[from] StoreError),
    #[error("an event of the test clock's stream is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("the test clock's stream kept changing under the advance; try again")]
    Contended,
}

/// This process's test clock: the shared offset, loaded, followed and advanced.
#[derive(Clone)]
pub struct TestClockService {
    store: DynEventStore,
    clock: Arc<TestClock<Arc<dyn Clock>>>,
}

impl TestClockService {
    /// Reads the stream to its end (so that this process starts on the deployment's time),
    /// then follows it for advances made anywhere. `base` is the time without the offset.
    pub async fn start(store: DynEventStore, base: Arc<dyn Clock>) -> Result<Self, TestClockError> {
        let clock = Arc::new(TestClock::new(base));
        let head = store.head().await?;
        let (offset, _) = load(&store).await?;
        clock.advance_to(offset);
        let service = TestClockService { store, clock };
        service.spawn_follower(head);
        Ok(service)
    }

    /// The clock every service of this process decides on.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// How far ahead of the base clock this process is.
    pub fn offset(&self) -> Duration {
        self.clock.offset()
    }

    /// Moves the deployment's clock forward by `by`: appends the advance (on the revision it
    /// was decided on), applies it here at once, and answers the new time and the position.
    pub async fn advance(
        &self,
        by: Duration,
        metadata: Metadata,
    ) -> Result<(DateTime<Utc>, Position), TestClockError> {
        for _ in 0..10 {
            let (current, revision) = load(&self.store).await?;
            let advanced = decide(current, by)?;
            let event = NewEvent::json(Uuid::new_v4(), ADVANCED, &advanced, metadata.clone())?;
            match self
                .store
                .append(STREAM, ExpectedRevision::after(revision), vec![event])
                .await
            {
                Ok(result) => {
                    self.clock
                        .advance_to(Duration::seconds(advanced.offset_seconds));
                    return Ok((self.clock.now(), result.position));
                }
                Err(e) if e.is_wrong_expected_version() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TestClockError::Contended)
    }

    /// Applies advances appended after `head` (by any process) as they come; on a store
    /// failure it subscribes again from the last one seen.
    fn spawn_follower(&self, head: Option<Position>) {
        let store = self.store.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let mut from = head.map_or(SubscribeFrom::Start, SubscribeFrom::After);
            loop {
                let filter = SubscriptionFilter::categories([CATEGORY]);
                let mut subscription = match store.subscribe(from, filter).await {
                    Ok(s) => s,
                    Err(StoreError::Closed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "test clock: cannot follow its stream; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    match subscription.next().await {
                        Some(Ok(event)) => {
                            from = SubscribeFrom::After(event.position);
                            if event.stream.as_ref() != STREAM {
                                continue;
                            }
                            match event.decode::<TestClockAdvanced>() {
                                Ok(a) => {
                                    clock.advance_to(Duration::seconds(a.offset_seconds));
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "test clock: unreadable advance skipped")
                                }
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "test clock: its subscription failed; resubscribing");
                            break;
                        }
                        // The store is shut down.
                        None => return,
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    }
}

/// The stream's offset (the largest recorded) and last revision.
async fn load(store: &DynEventStore) -> Result<(Duration, Option<u64>), TestClockError> {
    let events = read_whole_stream(store.as_ref(), STREAM).await?;
    let mut offset = 0i64;
    for event in &events {
        let advanced: TestClockAdvanced = event.decode()?;
        offset = offset.max(advanced.offset_seconds);
    }
    Ok((Duration::seconds(offset), events.last().map(|e| e.revision)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ichigen_shared::auth::Actor;
    use ichigen_shared::clock::ManualClock;
    use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};

    #[test]
    fn durations_parse_as_iso_8601_without_years_or_months() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("P3D"), Duration::days(3));
        assert_eq!(ok("PT36H"), Duration::hours(36));
        assert_eq!(ok("P1W"), Duration::days(7));
        assert_eq!(
            ok("P1DT2H30M15S"),
            Duration::days(1) + Duration::hours(2) + Duration::minutes(30) + Duration::seconds(15)
        );
        assert_eq!(ok("PT90M"), Duration::minutes(90));
        for bad in [
            "", "3D", "P", "PT", "P1M", "P1Y", "PT1D", "P1H", "P1.5D", "PT1S2H", "P-1D", "P1DD",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            format_duration(Duration::days(3) + Duration::hours(4)),
            "P3DT4H"
        );
        assert_eq!(format_duration(Duration::zero()), "PT0S");
        assert_eq!(format_duration(Duration::days(2)), "P2D");
    }

    #[test]
    fn an_advance_moves_forward_only_and_not_too_far() {
        let a = decide(Duration::days(1), Duration::days(3)).unwrap();
        assert_eq!(a.offset_seconds, 4 * 86_400);
        assert_eq!(
            decide(Duration::zero(), Duration::zero()),
            Err(AdvanceError::NotForward)
        );
        assert_eq!(
            decide(Duration::zero(), Duration::seconds(-5)),
            Err(AdvanceError::NotForward)
        );
        assert_eq!(
            decide(Duration::zero(), Duration::days(367)),
            Err(AdvanceError::TooFar)
        );
    }

    #[tokio::test]
    async fn every_process_follows_an_advance_and_a_new_one_starts_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynEventStore = Arc::new(
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
                .await
                .unwrap(),
        );
        let start = Utc::now();
        let base: Arc<dyn Clock> = Arc::new(ManualClock::new(start));
        // Two processes on one store (as with KurrentDB): one advances, the other follows.
        let one = TestClockService::start(store.clone(), base.clone())
            .await
            .unwrap();
        let other = TestClockService::start(store.clone(), base.clone())
            .await
            .unwrap();
        let metadata = Metadata::new(Actor::system("test"));
        let (now, _) = one
            .advance(Duration::days(3), metadata.clone())
            .await
            .unwrap();
        assert_eq!(now, start + Duration::days(3));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while other.clock().now() != start + Duration::days(3) {
            assert!(
                std::time::Instant::now() < deadline,
                "the other process never followed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Concurrent advances add up; none is lost.
        let (a, b) = tokio::join!(
            one.advance(Duration::hours(1), metadata.clone()),
            other.advance(Duration::hours(2), metadata.clone())
        );
        a.unwrap();
        b.unwrap();
        // A process started later starts on the deployment's time.
        let late = TestClockService::start(store.clone(), base.clone())
            .await
            .unwrap();
        assert_eq!(late.offset(), Duration::days(3) + Duration::hours(3));
        // Refusals append nothing.
        assert!(matches!(
            one.advance(Duration::zero(), metadata).await,
            Err(TestClockError::Refused(AdvanceError::NotForward))
        ));
        assert_eq!(
            read_whole_stream(store.as_ref(), STREAM)
                .await
                .unwrap()
                .len(),
            3
        );
        store.shutdown().await;
    }
}
