//! Orders each location took per day: what sourcing subtracts from a location's daily
//! capacity.
//!
//! A projection of `OrderPlaced` (one order counts once per location it is allocated to).
//! Days are UTC days: the locations' time zones are IANA names, and the time zone database is
//! not embedded (see the closing note of the orders issue). It follows the store a moment
//! behind, so concurrent placements may exceed a capacity by the few orders in flight; capacity
//! is a planning limit, not an invariant like stock.

use chrono::{DateTime, NaiveDate, Utc};
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::SubscriptionFilter;
use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

/// The part of `OrderPlaced.v1` the ledger reads. Decoding only this skips the lines and the
/// sourcing explanation, most of the event, on every placement.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Placed {
    placed_at: DateTime<Utc>,
    allocations: Vec<Allocation>,
}

#[derive(serde::Deserialize)]
struct Allocation {
    location: String,
}

/// The event the ledger counts.
const ORDER_PLACED: &str = "OrderPlaced.v1";

#[derive(Default)]
pub struct CapacityLedger {
    taken: RwLock<HashMap<(String, NaiveDate), i64>>,
}

impl CapacityLedger {
    pub fn new() -> Self {
        CapacityLedger::default()
    }

    /// Orders `location` took on `day`.
    pub fn taken(&self, location: &str, day: NaiveDate) -> i64 {
        self.taken
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(location.to_string(), day))
            .copied()
            .unwrap_or(0)
    }
}

impl Projection for CapacityLedger {
    fn name(&self) -> &'static str {
        "order-capacity-ledger"
    }

    /// The whole order category (not just `OrderPlaced`), so that its position reaches the
    /// end of every order append and read-your-writes waits on it work.
    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::categories([crate::CATEGORY])
    }

    fn apply(&self, events: &[RecordedEvent]) {
        let mut taken = self.taken.write().unwrap_or_else(|p| p.into_inner());
        for recorded in events {
            if &*recorded.event_type != ORDER_PLACED {
                continue;
            }
            let placed: Placed = match serde_json::from_slice(&recorded.data) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(position = %recorded.position, error = %e,
                        "unreadable OrderPlaced skipped by the capacity ledger");
                    continue;
                }
            };
            let day = placed.placed_at.date_naive();
            let locations: BTreeSet<&str> = placed
                .allocations
                .iter()
                .map(|a| a.location.as_str())
                .collect();
            for location in locations {
                *taken.entry((location.to_string(), day)).or_insert(0) += 1;
            }
        }
    }
}
