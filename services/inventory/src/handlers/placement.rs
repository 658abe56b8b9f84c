//! An order placement's holds: every line's reservation and one unit of daily capacity per
//! location it takes stock from, all or nothing.
//!
//! The stock reservations and the capacity claims are separate streams, each decided by its
//! own aggregate (the SKU × location for stock, the location × local day for capacity, see
//! [`crate::domain::capacity`]); they are sent at once, so their appends share a group commit.
//! If any of them refuses, the others are given back before the refusal returns. A claim is
//! keyed by the placement's owner, so a retried placement claims nothing twice; the day is the
//! location's local date at the service clock's now, and a location without a capacity claims
//! nothing.

use super::capacity::CapacityHandlers;
use super::{Accepted, HandlerError, ReserveLine, StockHandlers};
use crate::domain::{InventoryError, StockCommand};
use crate::projections::view::InventoryView;
use chrono::NaiveDate;
use ichigen_shared::clock::Clock;
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::Position;
use std::sync::Arc;

/// One unit of a location's capacity on its local day.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayClaim {
    pub location: String,
    pub day: NaiveDate,
}

/// What a placement's holds took.
#[derive(Clone, Debug)]
pub struct PlacementHeld {
    /// Per SKU × location job (see [`StockHandlers::reserve_lines`]).
    pub accepted: Vec<Accepted>,
    /// Claims this call made (not those the owner already held): what to give back if the
    /// placement fails after all.
    pub claimed: Vec<DayClaim>,
    /// The highest position reached.
    pub position: Option<Position>,
}

/// Why a placement's holds were refused; nothing of them stays held.
#[derive(Debug, thiserror::Error)]
#[error("placement refused: stock {stock:?}, full {full:?}, failed {failed:?}")]
pub struct PlacementRefused {
    /// Refused lines (index into the request) and why; empty when stock was not the problem.
    pub stock: Vec<(usize, HandlerError)>,
    /// Locations whose day is full.
    pub full: Vec<DayClaim>,
    /// A claim that failed for another reason (a store outage: its outcome is unknown).
    pub failed: Option<HandlerError>,
}

/// Reserves placements (see the module documentation).
#[derive(Clone)]
pub struct Placements {
    pub stock: StockHandlers,
    pub capacity: CapacityHandlers,
    view: Arc<InventoryView>,
    clock: Arc<dyn Clock>,
}

impl Placements {
    pub fn new(
        stock: StockHandlers,
        capacity: CapacityHandlers,
        view: Arc<InventoryView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Placements {
            stock,
            capacity,
            view,
            clock,
        }
    }

    /// The claims a placement of `lines` needs now: one per distinct location with a daily
    /// capacity, for its local date, with the capacity as the limit.
    fn claims_for(&self, lines: &[ReserveLine]) -> Vec<(DayClaim, i64)> {
        let now = self.clock.now();
        let mut claims: Vec<(DayClaim, i64)> = Vec::new();
        for line in lines {
            if claims.iter().any(|(c, _)| c.location == line.location) {
                continue;
            }
            // An unknown location is refused by its stock line.
            let Some(location) = self.view.location(&line.location) else {
                continue;
            };
            if let Some(limit) = location.spec.daily_capacity {
                claims.push((
                    DayClaim {
                        location: line.location.clone(),
                        day: location.spec.local_date(now),
                    },
                    limit,
                ));
            }
        }
        claims
    }

    /// Reserves every line (ids `<owner>#<index>`, no expiry) and claims the capacity of each
    /// location for `owner`, all or nothing.
    pub async fn reserve(
        &self,
        owner: &str,
        lines: &[ReserveLine],
        metadata: Metadata,
    ) -> Result<PlacementHeld, PlacementRefused> {
        let claims = self.claims_for(lines);
        let claiming = claims.iter().map(|(c, limit)| {
            self.capacity
                .claim(&c.location, c.day, owner, *limit, metadata.clone())
        });
        let (stock, claimed) = futures::join!(
            self.stock
                .reserve_lines(owner, lines, None, metadata.clone()),
            futures::future::join_all(claiming),
        );
        let mut made = Vec::new();
        let mut full = Vec::new();
        let mut failed = None;
        let mut position = None;
        for ((claim, _), result) in claims.into_iter().zip(claimed) {
            match result {
                Ok(c) => {
                    position = position.max(c.position);
                    if c.newly {
                        made.push(claim);
                    }
                }
                Err(HandlerError::Refused {
                    error: InventoryError::CapacityExhausted { .. },
                    ..
                }) => full.push(claim),
                Err(e) => failed = Some(e),
            }
        }
        match stock {
            Ok(accepted) if full.is_empty() && failed.is_none() => {
                let position = accepted
                    .iter()
                    .filter_map(|a| a.position)
                    .max()
                    .max(position);
                Ok(PlacementHeld {
                    accepted,
                    claimed: made,
                    position,
                })
            }
            Ok(_) => {
                // Stock held, capacity not: give the stock back.
                self.release_lines(owner, lines, &metadata).await;
                self.release(owner, &made, metadata).await;
                Err(PlacementRefused {
                    stock: Vec::new(),
                    full,
                    failed,
                })
            }
            Err(refused) => {
                // reserve_lines released what it took.
                self.release(owner, &made, metadata).await;
                Err(PlacementRefused {
                    stock: refused.refused,
                    full,
                    failed,
                })
            }
        }
    }

    /// Gives back `owner`'s units of these days. Best effort: a unit left claimed by an outage
    /// is given back by the order service's sweep of unrecorded placements.
    pub async fn release(&self, owner: &str, claims: &[DayClaim], metadata: Metadata) {
        let releases = claims.iter().map(|c| {
            self.capacity
                .release(&c.location, c.day, owner, metadata.clone())
        });
        for (claim, result) in claims.iter().zip(futures::future::join_all(releases).await) {
            if let Err(e) = result {
                tracing::warn!(location = %claim.location, day = %claim.day, owner, error = %e,
                    "could not give back a capacity claim");
            }
        }
    }

    async fn release_lines(&self, owner: &str, lines: &[ReserveLine], metadata: &Metadata) {
        let releases = lines.iter().enumerate().map(|(i, line)| {
            self.stock.execute(
                &line.sku,
                &line.location,
                vec![StockCommand::Release {
                    reservation_id: format!("{owner}#{i}"),
                }],
                metadata.clone(),
            )
        });
        for result in futures::future::join_all(releases).await {
            if let Err(e) = result {
                tracing::error!(owner, error = %e, "could not undo a placement's reservation");
            }
        }
    }
}
