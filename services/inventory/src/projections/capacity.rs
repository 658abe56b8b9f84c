//! What each location has claimed of its daily capacity, per local day, and the open claims by
//! owner: the read side of [`crate::domain::capacity`].
//!
//! Decisions are never made here (a claim is decided on its capacity day's stream); this view
//! answers "how much is left today" for sourcing's candidates and for availability, which
//! leaves a full location out, and lists claims by owner so that the order service can give
//! back those of placements that were never recorded. It follows the store a moment behind.
//! Days more than [`KEEP_DAYS`] before the newest day seen are forgotten, so it holds a few
//! days of claims, not all of history.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Days, NaiveDate, Utc};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::SubscriptionFilter;

use crate::domain::capacity::{parse_capacity_stream, CapacityEvent, CATEGORY};

/// Days kept before the newest day seen (a placement cut off before midnight is still swept
/// the next day).
pub const KEEP_DAYS: u64 = 2;

/// A claim as [`CapacityView::claims_of`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub key: String,
    pub location: String,
    pub day: NaiveDate,
    /// When it was claimed (the event's time).
    pub since: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    /// location → day → units claimed (looked up by `&str`, no allocation per read).
    /// B-trees, not hash maps: they grow with every day and owner, and a hash map's doubling
    /// would move them all under the write lock.
    used: BTreeMap<String, BTreeMap<NaiveDate, i64>>,
    /// key → (location, day) → claimed at.
    by_key: BTreeMap<String, BTreeMap<(String, NaiveDate), DateTime<Utc>>>,
    newest: Option<NaiveDate>,
}

/// The capacity read model.
#[derive(Default)]
pub struct CapacityView {
    state: RwLock<State>,
}

impl CapacityView {
    pub fn new() -> Self {
        CapacityView::default()
    }

    /// Units of `location`'s capacity claimed on its local `day`.
    pub fn used(&self, location: &str, day: NaiveDate) -> i64 {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.used
            .get(location)
            .and_then(|days| days.get(&day))
            .copied()
            .unwrap_or(0)
    }

    /// Open claims of owners starting with `prefix`.
    pub fn claims_of(&self, prefix: &str) -> Vec<HeldClaim> {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.by_key
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .flat_map(|(key, claims)| {
                claims.iter().map(|((location, day), since)| HeldClaim {
                    key: key.clone(),
                    location: location.clone(),
                    day: *day,
                    since: *since,
                })
            })
            .collect()
    }
}

impl State {
    fn forget_before(&mut self, oldest: NaiveDate) {
        self.used.retain(|_, days| {
            days.retain(|day, _| *day >= oldest);
            !days.is_empty()
        });
        self.by_key.retain(|_, claims| {
            claims.retain(|(_, day), _| *day >= oldest);
            !claims.is_empty()
        });
    }
}

impl Projection for CapacityView {
    fn name(&self) -> &'static str {
        "inventory-capacity"
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        let before = s.newest;
        for recorded in events {
            let Some((location, day)) = parse_capacity_stream(&recorded.stream) else {
                continue;
            };
            let Some(Ok(event)) = CapacityEvent::decode(&recorded.event_type, &recorded.data)
            else {
                tracing::warn!(position = %recorded.position, "unreadable capacity event skipped");
                continue;
            };
            if s.newest.is_none_or(|n| day > n) {
                s.newest = Some(day);
            }
            let place = (location.to_string(), day);
            match event {
                CapacityEvent::CapacityClaimed(e) => {
                    let claims = s.by_key.entry(e.key).or_default();
                    if claims
                        .insert(place.clone(), recorded.metadata.occurred_at)
                        .is_none()
                    {
                        *s.used.entry(place.0).or_default().entry(day).or_insert(0) += 1;
                    }
                }
                CapacityEvent::CapacityReleased(e) => {
                    let removed = s
                        .by_key
                        .get_mut(&e.key)
                        .and_then(|claims| claims.remove(&place))
                        .is_some();
                    if s.by_key.get(&e.key).is_some_and(BTreeMap::is_empty) {
                        s.by_key.remove(&e.key);
                    }
                    if removed {
                        if let Some(used) = s.used.get_mut(location).and_then(|d| d.get_mut(&day)) {
                            *used = (*used - 1).max(0);
                        }
                    }
                }
            }
        }
        if s.newest != before {
            if let Some(oldest) = s
                .newest
                .and_then(|n| n.checked_sub_days(Days::new(KEEP_DAYS)))
            {
                s.forget_before(oldest);
            }
        }
    }
}
