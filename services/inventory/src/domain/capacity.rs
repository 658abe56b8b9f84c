//! A location's daily capacity: one aggregate per location and local day, stream
//! `capacity-<LOCATION>@<YYYY-MM-DD>` (the date in the location's time zone).
//!
//! Why an aggregate of its own: "a location never takes more orders than its capacity in its
//! local day" spans every order placed there that day, so it is decided by one stream whose
//! revision check serialises the claims. Each placement claims one unit per location it takes
//! stock from, keyed by its owner (`order:<uuid>`), so a retried claim is recognised and counts
//! once; a placement that fails releases what it claimed. Cancelling an order does not give
//! its unit back: the location took the order that day.
//!
//! The limit is reference data (the location's `daily_capacity`), sent with each claim by the
//! handler that read it: a lowered capacity refuses the next claim, and claims made under the
//! old limit stand.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::{text, InventoryError};
use ichigen_shared::validate::MAX_ID;

/// The stream category of capacity days (owned by the inventory service).
pub const CATEGORY: &str = "capacity";

/// The stream of one location's capacity on one local day.
pub fn capacity_stream_name(location: &str, day: NaiveDate) -> String {
    format!("{CATEGORY}-{location}@{}", day.format("%Y-%m-%d"))
}

/// The location and day a capacity stream is about.
pub fn parse_capacity_stream(stream: &str) -> Option<(&str, NaiveDate)> {
    let rest = stream.strip_prefix(CATEGORY)?.strip_prefix('-')?;
    let (location, day) = rest.rsplit_once('@')?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    (!location.is_empty()).then_some((location, day))
}

/// The folded state of one location's day: the owners holding a unit of its capacity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapacityDay {
    pub claimed: BTreeSet<String>,
}

impl CapacityDay {
    pub fn apply(&mut self, event: &CapacityEvent) {
        match event {
            CapacityEvent::CapacityClaimed(e) => {
                self.claimed.insert(e.key.clone());
            }
            CapacityEvent::CapacityReleased(e) => {
                self.claimed.remove(&e.key);
            }
        }
    }

    /// Units claimed (one per owner).
    pub fn used(&self) -> i64 {
        i64::try_from(self.claimed.len()).unwrap_or(i64::MAX)
    }
}

/// What a placement asks of a location's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapacityCommand {
    /// One unit for `key`, if fewer than `limit` are claimed; the same key again is a no-op.
    /// `location` and `day` name the stream, for the refusal.
    Claim {
        location: String,
        day: NaiveDate,
        key: String,
        limit: i64,
    },
    /// Gives `key`'s unit back (a placement that failed); nothing when it holds none.
    Release { key: String },
}

/// One unit claimed by `key` while the limit was `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityClaimed {
    pub key: String,
    pub limit: i64,
}

/// `key`'s unit given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReleased {
    pub key: String,
}

/// Every event of a capacity stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CapacityEvent {
    #[serde(rename = "CapacityClaimed.v1")]
    CapacityClaimed(CapacityClaimed),
    #[serde(rename = "CapacityReleased.v1")]
    CapacityReleased(CapacityReleased),
}

impl CapacityEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            CapacityEvent::CapacityClaimed(_) => "CapacityClaimed.v1",
            CapacityEvent::CapacityReleased(_) => "CapacityReleased.v1",
        }
    }

    pub fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            CapacityEvent::CapacityClaimed(p) => serde_json::to_vec(p),
            CapacityEvent::CapacityReleased(p) => serde_json::to_vec(p),
        }
    }

    pub fn decode(event_type: &str, data: &[u8]) -> Option<Result<Self, serde_json::Error>> {
        Some(match event_type {
            "CapacityClaimed.v1" => serde_json::from_slice(data).map(Self::CapacityClaimed),
            "CapacityReleased.v1" => serde_json::from_slice(data).map(Self::CapacityReleased),
            _ => return None,
        })
    }
}

/// Decides a capacity command. Pure.
pub fn decide_capacity(
    state: &CapacityDay,
    command: &CapacityCommand,
) -> Result<Vec<CapacityEvent>, InventoryError> {
    match command {
        CapacityCommand::Claim {
            location,
            day,
            key,
            limit,
        } => {
            text("key", key, MAX_ID)?;
            if state.claimed.contains(key) {
                return Ok(vec![]);
            }
            if state.used() >= *limit {
                return Err(InventoryError::CapacityExhausted {
                    location: location.clone(),
                    day: *day,
                });
            }
            Ok(vec![CapacityEvent::CapacityClaimed(CapacityClaimed {
                key: key.clone(),
                limit: *limit,
            })])
        }
        CapacityCommand::Release { key } => {
            text("key", key, MAX_ID)?;
            Ok(if state.claimed.contains(key) {
                vec![CapacityEvent::CapacityReleased(CapacityReleased {
                    key: key.clone(),
                })]
            } else {
                vec![]
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default()
    }

    fn claim(key: &str, limit: i64) -> CapacityCommand {
        CapacityCommand::Claim {
            location: "S1".into(),
            day: day(),
            key: key.into(),
            limit,
        }
    }

    fn run(state: &mut CapacityDay, command: &CapacityCommand) -> Result<usize, InventoryError> {
        let events = decide_capacity(state, command)?;
        for e in &events {
            state.apply(e);
        }
        Ok(events.len())
    }

    #[test]
    fn a_day_takes_its_limit_once_per_key() {
        let mut s = CapacityDay::default();
        assert_eq!(run(&mut s, &claim("order:a", 2)), Ok(1));
        assert_eq!(
            run(&mut s, &claim("order:a", 2)),
            Ok(0),
            "a retry counts once"
        );
        assert_eq!(run(&mut s, &claim("order:b", 2)), Ok(1));
        let full = run(&mut s, &claim("order:c", 2)).unwrap_err();
        assert_eq!(
            full,
            InventoryError::CapacityExhausted {
                location: "S1".into(),
                day: day()
            }
        );
        assert_eq!(
            (full.code(), full.field()),
            ("CAPACITY_EXHAUSTED", Some("location"))
        );
        // A failed placement gives its unit back; the next one takes it.
        let release = CapacityCommand::Release {
            key: "order:b".into(),
        };
        assert_eq!(run(&mut s, &release), Ok(1));
        assert_eq!(run(&mut s, &release), Ok(0));
        assert_eq!(run(&mut s, &claim("order:c", 2)), Ok(1));
        // Zero takes nothing.
        assert!(run(&mut CapacityDay::default(), &claim("order:d", 0)).is_err());
        assert!(run(&mut s, &claim("bad\nkey", 9)).is_err());
    }

    #[test]
    fn streams_name_location_and_local_day() {
        let stream = capacity_stream_name("TKY-DC1", day());
        assert_eq!(stream, "capacity-TKY-DC1@2026-12-04");
        assert_eq!(parse_capacity_stream(&stream), Some(("TKY-DC1", day())));
        assert_eq!(parse_capacity_stream("capacity-X@nope"), None);
        assert_eq!(parse_capacity_stream("inventory-A@B"), None);
    }

    #[test]
    fn events_round_trip() {
        for e in [
            CapacityEvent::CapacityClaimed(CapacityClaimed {
                key: "order:a".into(),
                limit: 3,
            }),
            CapacityEvent::CapacityReleased(CapacityReleased {
                key: "order:a".into(),
            }),
        ] {
            let data = e.payload_json().unwrap_or_default();
            let back = CapacityEvent::decode(e.event_type(), &data).and_then(Result::ok);
            assert_eq!(back, Some(e));
        }
    }
}
