//! Sourcing: which location(s) serve each line of an order, and why.
//!
//! A pure, deterministic function ([`source`]) from the order's lines and the candidate
//! locations (as the handler read them from inventory: activity, capabilities, today's remaining
//! capacity and ATP per SKU) to a [`SourcingPlan`]. No I/O: the handler reserves what the plan
//! says, and the order records the plan's [`LineExplanation`]s so that anyone can later see which
//! candidates were considered and why each was chosen or skipped.
//!
//! The rules, in the order they are applied:
//!
//! 1. **Pickup lines** (BOPIS) come from their store only: an unknown, inactive or
//!    non-pickup store, or one without capacity today, is an [`SourcingError::InvalidDelivery`]
//!    (the customer must choose another store). They are sourced first because they have no
//!    alternative; ship lines of the same SKU then see what the pickups left.
//! 2. **Ship lines** (to an address, or endless aisle to a store) are grouped by destination, in
//!    the order the destinations first appear. A location may serve them when it is active, can
//!    ship (a DC with `SHIP`, a store with `SHIP_FROM_STORE`), has capacity left today, and is
//!    not the destination store itself.
//! 3. **One shipment first:** the nearest location that covers every line of the destination
//!    serves them all.
//! 4. Otherwise **per line**, in line order: a location already shipping to this destination
//!    that has the full quantity (fewer parcels), else the nearest one with the full quantity.
//! 5. Only when no single location has the line's full quantity is the line **split**: the
//!    locations already shipping to this destination first, then nearest first, each giving
//!    what it has until the line is covered.
//! 6. ATP used by an earlier line is not available to a later one, so lines of one order on the
//!    same SKU are checked together.
//! 7. A line that cannot be fully sourced is short: the whole request fails with
//!    [`SourcingError::Shortage`] naming every short line, unless the caller allowed a partial
//!    order, in which case the plan allocates what can be sourced and lists the short lines.
//!
//! One order consumes one unit of a location's daily capacity however many lines it takes
//! from it, so a location with `remaining_capacity > 0` can serve any number of lines.
//! Distances are great-circle (haversine) from the delivery point; ties are broken by location
//! code, and candidates are ordered by code before anything else, so the same input in any
//! candidate order gives the same plan.

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Mean earth radius (IUGG), the radius the haversine distance uses.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// How one line reaches the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "method", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Delivery {
    /// Shipped to the customer's address (its geocoded point).
    Ship { lat: f64, lon: f64 },
    /// Buy online, pick up in store: served by that store only.
    Pickup { store: String },
    /// Endless aisle: shipped from anywhere in the network to this store (`lat`/`lon` are the
    /// store's), where the customer collects it.
    ShipToStore { store: String, lat: f64, lon: f64 },
}

impl Delivery {
    /// The pickup store, for pickup lines.
    pub fn pickup_store(&self) -> Option<&str> {
        match self {
            Delivery::Pickup { store } => Some(store),
            _ => None,
        }
    }

    /// Where a shipped line goes (`None` for pickup lines, which do not travel).
    pub fn destination(&self) -> Option<(f64, f64)> {
        match self {
            Delivery::Ship { lat, lon } | Delivery::ShipToStore { lat, lon, .. } => {
                Some((*lat, *lon))
            }
            Delivery::Pickup { .. } => None,
        }
    }
}

/// Distribution centre or store (mirrors inventory's `LocationKind`; the order crate does not
/// depend on the inventory crate, the handler maps one to the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocationKind {
    Dc,
    Store,
}

/// What a location can do for orders (mirrors inventory's `Capability`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    Ship,
    Pickup,
    ShipFromStore,
    Returns,
    Resale,
}

/// A location that might serve the order, as the handler read it just before sourcing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub code: String,
    pub kind: LocationKind,
    pub capabilities: BTreeSet<Capability>,
    pub lat: f64,
    pub lon: f64,
    pub active: bool,
    /// Orders it can still take today (daily capacity minus orders already taken).
    pub remaining_capacity: i64,
    /// Available to promise per SKU (a missing SKU has none).
    pub atp: BTreeMap<String, i64>,
}

impl Candidate {
    /// A DC ships with `SHIP`; a store ships only with `SHIP_FROM_STORE` (its `SHIP`, if any,
    /// is not what lets a shop floor pack parcels).
    pub fn can_ship(&self) -> bool {
        match self.kind {
            LocationKind::Dc => self.capabilities.contains(&Capability::Ship),
            LocationKind::Store => self.capabilities.contains(&Capability::ShipFromStore),
        }
    }

    /// ATP for a SKU, never negative (a missing SKU has none).
    pub fn atp_of(&self, sku: &str) -> i64 {
        self.atp.get(sku).copied().unwrap_or(0).max(0)
    }
}

/// One line to source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcingLine {
    pub line_id: String,
    pub sku: String,
    pub qty: i64,
    pub delivery: Delivery,
}

/// `qty` of a line from one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub line_id: String,
    pub location: String,
    pub qty: i64,
}

/// Why a candidate did not serve a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SkipReason {
    /// The location is deactivated.
    Inactive,
    /// It cannot ship (a DC without `SHIP`, a store without `SHIP_FROM_STORE`).
    NoCapability,
    /// No capacity left today.
    NoCapacity,
    /// It is the store the line is shipped to (endless aisle).
    Destination,
    /// No ATP for the SKU (after earlier lines of this order).
    NoStock,
    /// Some ATP, but not the full quantity, and another location had it.
    NotEnoughStock,
    /// It could have served the line, but a nearer location did.
    Farther,
    /// It could have served this line, but another location serves the whole destination in
    /// one shipment.
    NotNeeded,
    /// It was nearer, but a location already shipping to this destination had the quantity
    /// (one parcel fewer).
    Consolidated,
}

/// The decision about one candidate for one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "verdict", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Chosen { qty: i64 },
    Skipped { reason: SkipReason },
}

/// One candidate as it was considered for one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateVerdict {
    pub location: String,
    /// From the delivery point; `None` for pickup lines, which do not travel.
    pub distance_km: Option<f64>,
    /// ATP for the line's SKU when the line was considered (after earlier lines).
    pub available: i64,
    pub verdict: Verdict,
}

/// Every candidate considered for a line, in the order they were ranked (nearest first; for a
/// pickup line, only its store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineExplanation {
    pub line_id: String,
    pub considered: Vec<CandidateVerdict>,
}

/// A line that cannot be fully sourced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortLine {
    pub line_id: String,
    pub sku: String,
    pub requested: i64,
    pub sourceable: i64,
    /// Locations that had the SKU but no capacity left today (skipped `NO_CAPACITY`): when
    /// they are why the line is short, the refusal says so rather than "insufficient stock".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub full_locations: Vec<String>,
}

/// What [`source`] decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcingPlan {
    /// In line order; within a line, in the order the locations were taken.
    pub allocations: Vec<Allocation>,
    /// One per line, in line order.
    pub explanation: Vec<LineExplanation>,
    /// Lines not fully sourced; only ever non-empty when the caller allowed a partial order.
    pub short: Vec<ShortLine>,
}

impl SourcingPlan {
    /// The distinct locations the plan uses: each consumes one unit of its daily capacity.
    pub fn locations(&self) -> BTreeSet<&str> {
        self.allocations
            .iter()
            .map(|a| a.location.as_str())
            .collect()
    }

    /// Units allocated to a line.
    pub fn allocated(&self, line_id: &str) -> i64 {
        self.allocations
            .iter()
            .filter(|a| a.line_id == line_id)
            .map(|a| a.qty)
            .sum()
    }
}

/// Why a line's delivery cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryProblem {
    /// The pickup store is not among the known locations.
    UnknownStore,
    /// The pickup store is deactivated.
    StoreInactive,
    /// The location does not offer pickup.
    NoPickupCapability,
    /// The pickup store takes no more orders today.
    NoPickupCapacity,
    /// Latitude/longitude missing or out of range.
    InvalidCoordinates,
}

impl DeliveryProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryProblem::UnknownStore => "the pickup store is unknown",
            DeliveryProblem::StoreInactive => "the pickup store is inactive",
            DeliveryProblem::NoPickupCapability => "the location does not offer pickup",
            DeliveryProblem::NoPickupCapacity => "the pickup store takes no more orders today",
            DeliveryProblem::InvalidCoordinates => "latitude/longitude out of range",
        }
    }
}

/// Why nothing was planned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourcingError {
    /// Lines that cannot be fully sourced (all of them, so the caller can fix them at once).
    #[error("{} line(s) cannot be fully sourced", lines.len())]
    Shortage { lines: Vec<ShortLine> },
    #[error("line {line_id}: {}", reason.as_str())]
    InvalidDelivery {
        line_id: String,
        reason: DeliveryProblem,
    },
    /// A line is malformed (empty or duplicate id, empty SKU, quantity below 1).
    #[error("line {line_id:?}: {reason}")]
    InvalidLine {
        line_id: String,
        reason: &'static str,
    },
    /// Two candidates with the same code: the handler built the list wrong.
    #[error("location {code} is listed twice")]
    DuplicateLocation { code: String },
}

impl SourcingError {
    /// The stable code the API layers use (as `OrderError::code`).
    pub fn code(&self) -> &'static str {
        match self {
            SourcingError::Shortage { .. } => "INSUFFICIENT_STOCK",
            SourcingError::InvalidDelivery { .. } | SourcingError::InvalidLine { .. } => {
                "INVALID_INPUT"
            }
            SourcingError::DuplicateLocation { .. } => "INTERNAL",
        }
    }
}

/// Great-circle distance in km between two points in degrees.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().clamp(0.0, 1.0).asin()
}

/// Plans the order: see the module documentation for the rules.
pub fn source(
    lines: &[SourcingLine],
    candidates: &[Candidate],
    allow_partial: bool,
) -> Result<SourcingPlan, SourcingError> {
    validate(lines)?;
    let mut by_code: BTreeMap<&str, &Candidate> = BTreeMap::new();
    for c in candidates {
        if by_code.insert(c.code.as_str(), c).is_some() {
            return Err(SourcingError::DuplicateLocation {
                code: c.code.clone(),
            });
        }
    }
    let mut planner = Planner {
        by_code: &by_code,
        atp: by_code
            .values()
            .flat_map(|c| {
                c.atp
                    .iter()
                    .map(|(sku, q)| ((c.code.as_str(), sku.as_str()), (*q).max(0)))
            })
            .collect(),
        taken: vec![Vec::new(); lines.len()],
        explained: vec![Vec::new(); lines.len()],
    };

    // 1. Pickup lines: their store only.
    for (i, line) in lines.iter().enumerate() {
        if let Delivery::Pickup { store } = &line.delivery {
            planner.pickup(i, line, store)?;
        }
    }
    // 2. Ship lines, grouped by destination in order of first appearance.
    let mut groups: Vec<(DestinationKey, Vec<usize>)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(key) = DestinationKey::of(&line.delivery) {
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
    }
    for (key, members) in &groups {
        planner.ship_group(lines, key, members);
    }

    let mut plan = SourcingPlan {
        allocations: Vec::new(),
        explanation: Vec::new(),
        short: Vec::new(),
    };
    for (i, line) in lines.iter().enumerate() {
        let mut sourced = 0;
        for (location, qty) in &planner.taken[i] {
            sourced += qty;
            plan.allocations.push(Allocation {
                line_id: line.line_id.clone(),
                location: (*location).to_owned(),
                qty: *qty,
            });
        }
        let considered = std::mem::take(&mut planner.explained[i]);
        if sourced < line.qty {
            let full_locations = considered
                .iter()
                .filter(|v| {
                    v.available > 0
                        && v.verdict
                            == Verdict::Skipped {
                                reason: SkipReason::NoCapacity,
                            }
                })
                .map(|v| v.location.clone())
                .collect();
            plan.short.push(ShortLine {
                line_id: line.line_id.clone(),
                sku: line.sku.clone(),
                requested: line.qty,
                sourceable: sourced,
                full_locations,
            });
        }
        plan.explanation.push(LineExplanation {
            line_id: line.line_id.clone(),
            considered,
        });
    }
    if !plan.short.is_empty() && !allow_partial {
        return Err(SourcingError::Shortage { lines: plan.short });
    }
    Ok(plan)
}

fn validate(lines: &[SourcingLine]) -> Result<(), SourcingError> {
    let mut seen = BTreeSet::new();
    for line in lines {
        let invalid = |reason| SourcingError::InvalidLine {
            line_id: line.line_id.clone(),
            reason,
        };
        if line.line_id.trim().is_empty() {
            return Err(invalid("the line id must not be empty"));
        }
        if !seen.insert(line.line_id.as_str()) {
            return Err(invalid("the line id is used twice"));
        }
        if line.sku.trim().is_empty() {
            return Err(invalid("the SKU must not be empty"));
        }
        if line.qty < 1 {
            return Err(invalid("the quantity must be at least 1"));
        }
        if let Some((lat, lon)) = line.delivery.destination() {
            let ok = lat.is_finite()
                && lon.is_finite()
                && (-90.0..=90.0).contains(&lat)
                && (-180.0..=180.0).contains(&lon);
            if !ok {
                return Err(SourcingError::InvalidDelivery {
                    line_id: line.line_id.clone(),
                    reason: DeliveryProblem::InvalidCoordinates,
                });
            }
        }
    }
    Ok(())
}

/// Lines that travel to the same place may share a parcel. Coordinates compare by their bits:
/// the same address geocodes to the same numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DestinationKey {
    Address { lat: u64, lon: u64 },
    Store { store: String, lat: u64, lon: u64 },
}

impl DestinationKey {
    fn of(delivery: &Delivery) -> Option<Self> {
        match delivery {
            Delivery::Ship { lat, lon } => Some(DestinationKey::Address {
                lat: lat.to_bits(),
                lon: lon.to_bits(),
            }),
            Delivery::ShipToStore { store, lat, lon } => Some(DestinationKey::Store {
                store: store.clone(),
                lat: lat.to_bits(),
                lon: lon.to_bits(),
            }),
            Delivery::Pickup { .. } => None,
        }
    }

    fn store(&self) -> Option<&str> {
        match self {
            DestinationKey::Store { store, .. } => Some(store),
            DestinationKey::Address { .. } => None,
        }
    }
}

/// A candidate ranked for one destination.
struct Ranked<'a> {
    candidate: &'a Candidate,
    distance_km: f64,
    /// `Err` when it may not ship to this destination at all.
    eligible: Result<(), SkipReason>,
}

/// The working state of one [`source`] call.
struct Planner<'a> {
    by_code: &'a BTreeMap<&'a str, &'a Candidate>,
    /// Remaining ATP per (location, SKU), reduced as lines take it.
    atp: BTreeMap<(&'a str, &'a str), i64>,
    /// Per line (by index): (location, qty) taken, in order.
    taken: Vec<Vec<(&'a str, i64)>>,
    explained: Vec<Vec<CandidateVerdict>>,
}

impl<'a> Planner<'a> {
    fn available(&self, location: &str, sku: &str) -> i64 {
        self.atp.get(&(location, sku)).copied().unwrap_or(0)
    }

    fn take(&mut self, line: usize, location: &'a str, sku: &'a str, qty: i64) {
        if let Some(left) = self.atp.get_mut(&(location, sku)) {
            *left -= qty;
        }
        self.taken[line].push((location, qty));
    }

    fn pickup(
        &mut self,
        i: usize,
        line: &'a SourcingLine,
        store: &str,
    ) -> Result<(), SourcingError> {
        let problem = |reason| SourcingError::InvalidDelivery {
            line_id: line.line_id.clone(),
            reason,
        };
        let c = self
            .by_code
            .get(store)
            .copied()
            .ok_or(problem(DeliveryProblem::UnknownStore))?;
        if !c.active {
            return Err(problem(DeliveryProblem::StoreInactive));
        }
        if !c.capabilities.contains(&Capability::Pickup) {
            return Err(problem(DeliveryProblem::NoPickupCapability));
        }
        if c.remaining_capacity <= 0 {
            return Err(problem(DeliveryProblem::NoPickupCapacity));
        }
        let available = self.available(&c.code, &line.sku);
        let qty = available.min(line.qty);
        let verdict = if qty > 0 {
            self.take(i, &c.code, &line.sku, qty);
            Verdict::Chosen { qty }
        } else {
            Verdict::Skipped {
                reason: SkipReason::NoStock,
            }
        };
        self.explained[i].push(CandidateVerdict {
            location: c.code.clone(),
            distance_km: None,
            available,
            verdict,
        });
        Ok(())
    }

    fn rank(&self, key: &DestinationKey, (lat, lon): (f64, f64)) -> Vec<Ranked<'a>> {
        let mut ranked: Vec<Ranked<'a>> = self
            .by_code
            .values()
            .map(|&c| Ranked {
                candidate: c,
                distance_km: haversine_km(lat, lon, c.lat, c.lon),
                eligible: if !c.active {
                    Err(SkipReason::Inactive)
                } else if key.store() == Some(c.code.as_str()) {
                    Err(SkipReason::Destination)
                } else if !c.can_ship() {
                    Err(SkipReason::NoCapability)
                } else if c.remaining_capacity <= 0 {
                    Err(SkipReason::NoCapacity)
                } else {
                    Ok(())
                },
            })
            .collect();
        // `by_code` iterates by code and the sort is stable: equal distances stay in code order.
        ranked.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km));
        ranked
    }

    fn ship_group(&mut self, lines: &'a [SourcingLine], key: &DestinationKey, members: &[usize]) {
        let Some(point) = members
            .first()
            .and_then(|&i| lines.get(i))
            .and_then(|l| l.delivery.destination())
        else {
            return;
        };
        let ranked = self.rank(key, point);

        // What the whole destination needs per SKU, to find one location covering it all.
        let mut demand: BTreeMap<&str, i64> = BTreeMap::new();
        for &i in members {
            let e = demand.entry(lines[i].sku.as_str()).or_insert(0);
            *e = e.saturating_add(lines[i].qty);
        }
        let covers_all: BTreeSet<&str> = ranked
            .iter()
            .filter(|r| r.eligible.is_ok())
            .filter(|r| {
                demand
                    .iter()
                    .all(|(sku, q)| self.available(&r.candidate.code, sku) >= *q)
            })
            .map(|r| r.candidate.code.as_str())
            .collect();
        let single = ranked
            .iter()
            .find(|r| covers_all.contains(r.candidate.code.as_str()))
            .map(|r| r.candidate.code.as_str());

        // Locations already shipping to this destination, in the order they were chosen.
        let mut shipping: Vec<&'a str> = Vec::new();
        for &i in members {
            let line = &lines[i];
            let before: Vec<i64> = ranked
                .iter()
                .map(|r| self.available(&r.candidate.code, &line.sku))
                .collect();
            let mut chosen: BTreeMap<&str, i64> = BTreeMap::new();
            if let Some(s) = single {
                chosen.insert(s, line.qty);
            } else {
                // Whole line from one location: one already shipping here first, then nearest.
                let whole = ranked
                    .iter()
                    .zip(&before)
                    .filter(|(r, avail)| r.eligible.is_ok() && **avail >= line.qty)
                    .min_by_key(|(r, _)| !shipping.contains(&r.candidate.code.as_str()))
                    .map(|(r, _)| r.candidate.code.as_str());
                if let Some(loc) = whole {
                    chosen.insert(loc, line.qty);
                } else {
                    // Split: already-shipping first, then nearest, each giving what it has.
                    let mut order: Vec<(&'a str, i64)> = ranked
                        .iter()
                        .zip(&before)
                        .filter(|(r, avail)| r.eligible.is_ok() && **avail > 0)
                        .map(|(r, avail)| (r.candidate.code.as_str(), *avail))
                        .collect();
                    order.sort_by_key(|(loc, _)| !shipping.contains(loc));
                    let mut need = line.qty;
                    for (loc, avail) in order {
                        if need == 0 {
                            break;
                        }
                        let q = avail.min(need);
                        chosen.insert(loc, q);
                        need -= q;
                    }
                }
            }

            let mut considered = Vec::with_capacity(ranked.len());
            let mut order_taken: Vec<(&'a str, i64)> = Vec::new();
            let first_chosen_rank = ranked
                .iter()
                .position(|r| chosen.contains_key(r.candidate.code.as_str()));
            for (rank, (r, &available)) in ranked.iter().zip(&before).enumerate() {
                let code = r.candidate.code.as_str();
                let verdict = if let Some(&qty) = chosen.get(code) {
                    order_taken.push((code, qty));
                    Verdict::Chosen { qty }
                } else {
                    let reason = match r.eligible {
                        Err(reason) => reason,
                        Ok(()) if available == 0 => SkipReason::NoStock,
                        Ok(()) if single.is_some() => {
                            if covers_all.contains(code) {
                                SkipReason::Farther
                            } else if available >= line.qty {
                                SkipReason::NotNeeded
                            } else {
                                SkipReason::NotEnoughStock
                            }
                        }
                        Ok(()) if chosen.len() == 1 && available < line.qty => {
                            SkipReason::NotEnoughStock
                        }
                        // Nearer than what was chosen: a location already shipping here won.
                        Ok(()) if first_chosen_rank.is_some_and(|f| rank < f) => {
                            SkipReason::Consolidated
                        }
                        Ok(()) => SkipReason::Farther,
                    };
                    Verdict::Skipped { reason }
                };
                considered.push(CandidateVerdict {
                    location: code.to_owned(),
                    distance_km: Some(r.distance_km),
                    available,
                    verdict,
                });
            }
            // Take in the order decided (already-shipping first), not the ranking order.
            order_taken.sort_by_key(|(loc, _)| {
                (
                    shipping.iter().position(|s| s == loc).unwrap_or(usize::MAX),
                    ranked
                        .iter()
                        .position(|r| r.candidate.code == *loc)
                        .unwrap_or(usize::MAX),
                )
            });
            for (loc, qty) in order_taken {
                self.take(i, loc, &line.sku, qty);
                if !shipping.contains(&loc) {
                    shipping.push(loc);
                }
            }
            self.explained[i] = considered;
        }
    }
}
