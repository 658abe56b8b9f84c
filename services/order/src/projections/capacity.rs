//! Orders each location took per day: what sourcing subtracts from a location's daily
//! capacity.
//!
//! A projection of `OrderPlaced` (one order counts once per location it is allocated to).
//! Days are UTC days: the locations' time zones are IANA names, and the time zone database is
//! not embedded (see the closing note of the orders issue). It follows the store a moment
//! behind, so concurrent placements may exceed a capacity by the few orders in flight; capacity
//! is a planning limit, not an invariant like stock.

use crate::domain::order::OrderEvent;
use chrono::NaiveDate;
use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::projection::Projection;
use ichigen_shared::store::SubscriptionFilter;
use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

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
            let Some(Ok(OrderEvent::OrderPlaced(placed))) =
                OrderEvent::decode(&recorded.event_type, &recorded.data)
            else {
                continue;
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
