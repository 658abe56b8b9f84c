//! In-process adapters between services: the all-in-one process hands each service the others
//! through the traits it declares (design.md: "a service is used through a trait with an
//! in-process and an HTTP implementation"), so no service crate depends on another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_fulfillment::cancellation::{self, OrderCancellation};
use ichigen_fulfillment::domain::FulfillmentKind;
use ichigen_fulfillment::process::order_intake;
use ichigen_inventory::domain::{Capability, LocationKind, StockCommand, StockEvent};
#[cfg(doc)]
use ichigen_inventory::handlers::placement::Placements;
use ichigen_inventory::handlers::{HandlerError, ReserveLine};
use ichigen_inventory::InventoryService;
use ichigen_order::domain::sourcing::{self, Candidate};
use ichigen_order::ports::{
    CancelOutcome, CapacityClaim, FulfillmentPort, FulfillmentPortError, HeldClaim, InventoryPort,
    InventoryPortError, OpenHold, PlacementHolds, ReservationRef, ReservationRequest,
    UnitsToCancel, WorkKind,
};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::Position;
use uuid::Uuid;

/// The reason code a short pick's stock adjustment carries.
pub const SHORT_PICK: &str = "SHORT_PICK";

/// A store's pickup hold as the fulfillment intake needs it: its hold days and time zone
/// (an unknown store: 3 days, counted in 24-hour periods).
pub fn pickup_hold(
    view: &ichigen_inventory::projections::view::InventoryView,
    code: &str,
) -> order_intake::PickupHold {
    match view.location(code) {
        Some(l) => order_intake::PickupHold {
            days: l.spec.pickup_hold_days,
            time_zone: Some(l.spec.time_zone),
        },
        None => order_intake::PickupHold {
            days: 3,
            time_zone: None,
        },
    }
}

/// The catalog, as the inventory's availability sees it: a SKU is sellable when the catalog
/// has it active (what `placeOrder` prices). Waits until the catalog view has replayed the
/// store (right after a start), so that "not replayed yet" never reads as "not sold".
pub struct CatalogSellable(pub ichigen_order::catalog_service::CatalogService);

#[async_trait]
impl ichigen_inventory::graphql::SellableSkus for CatalogSellable {
    async fn is_sellable(&self, sku: &str) -> bool {
        if let Err(e) = self.0.view_handle.wait_caught_up().await {
            tracing::warn!(error = %e, "catalog view not caught up; availability may miss SKUs");
        }
        self.0.view.sells(sku)
    }
}

/// The inventory service, as the order service sees it.
pub struct InProcessInventory(pub InventoryService);

#[async_trait]
impl InventoryPort for InProcessInventory {
    /// `remaining_capacity` is the location's capacity less what placements claimed on its
    /// local day (the capacity view), `i64::MAX` without a capacity.
    async fn candidates(&self, skus: &[String]) -> Result<Vec<Candidate>, InventoryPortError> {
        let view = &self.0.view;
        Ok(view
            .locations()
            .into_iter()
            .filter(|l| l.active)
            .map(|l| Candidate {
                remaining_capacity: self.0.capacity_left(&l).unwrap_or(i64::MAX),
                atp: skus
                    .iter()
                    .filter_map(|sku| {
                        let available = view.levels(sku, &l.spec.code)?.available;
                        (available > 0).then(|| (sku.clone(), available))
                    })
                    .collect(),
                code: l.spec.code,
                kind: match l.spec.kind {
                    LocationKind::Dc => sourcing::LocationKind::Dc,
                    LocationKind::Store => sourcing::LocationKind::Store,
                },
                capabilities: l
                    .spec
                    .capabilities
                    .iter()
                    .map(|c| match c {
                        Capability::Ship => sourcing::Capability::Ship,
                        Capability::Pickup => sourcing::Capability::Pickup,
                        Capability::ShipFromStore => sourcing::Capability::ShipFromStore,
                        Capability::Returns => sourcing::Capability::Returns,
                        Capability::Resale => sourcing::Capability::Resale,
                    })
                    .collect(),
                lat: l.spec.lat,
                lon: l.spec.lon,
                active: l.active,
            })
            .collect())
    }

    /// Stock reservations and capacity claims together ([`Placements::reserve`]); a full day
    /// is `CapacityExhausted` naming the locations.
    async fn reserve_placement(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        metadata: Metadata,
    ) -> Result<PlacementHolds, InventoryPortError> {
        let lines = reserve_lines_of(owner, requests)?;
        match self.0.placements.reserve(owner, &lines, metadata).await {
            Ok(held) => Ok(PlacementHolds {
                position: held.position,
                claimed: held
                    .claimed
                    .into_iter()
                    .map(|c| CapacityClaim {
                        location: c.location,
                        day: c.day,
                    })
                    .collect(),
            }),
            Err(refused) => {
                if let Some(e) = refused.failed {
                    return Err(InventoryPortError::Unavailable(e.to_string()));
                }
                if refused.stock.iter().any(|(_, e)| e.refusal().is_none()) {
                    return Err(InventoryPortError::Unavailable(format!(
                        "reservation failed: {:?}",
                        refused.stock
                    )));
                }
                if !refused.stock.is_empty() {
                    return Err(InventoryPortError::Refused(
                        refused
                            .stock
                            .iter()
                            .map(|(i, e)| (*i, e.to_string()))
                            .collect(),
                    ));
                }
                Err(InventoryPortError::CapacityExhausted(
                    refused.full.into_iter().map(|c| c.location).collect(),
                ))
            }
        }
    }

    async fn release_capacity(
        &self,
        owner: &str,
        claims: &[CapacityClaim],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let releases = claims.iter().map(|c| {
            self.0
                .placements
                .capacity
                .release(&c.location, c.day, owner, metadata.clone())
        });
        collect(futures::future::join_all(releases).await)
    }

    async fn capacity_claims_of(
        &self,
        owner_prefix: &str,
    ) -> Result<Vec<HeldClaim>, InventoryPortError> {
        Ok(self
            .0
            .capacity
            .claims_of(owner_prefix)
            .into_iter()
            .map(|c| HeldClaim {
                owner: c.key,
                claim: CapacityClaim {
                    location: c.location,
                    day: c.day,
                },
                since: c.since,
            })
            .collect())
    }

    async fn reserve(
        &self,
        owner: &str,
        requests: &[ReservationRequest],
        expires_at: Option<DateTime<Utc>>,
        metadata: Metadata,
    ) -> Result<Option<Position>, InventoryPortError> {
        let lines = reserve_lines_of(owner, requests)?;
        match self
            .0
            .stock
            .reserve_lines(owner, &lines, expires_at, metadata)
            .await
        {
            Ok(accepted) => Ok(accepted.iter().filter_map(|a| a.position).max()),
            Err(e) => {
                let refused = e
                    .refused
                    .iter()
                    .map(|(i, err)| (*i, err.to_string()))
                    .collect::<Vec<_>>();
                if e.refused.iter().all(|(_, err)| err.refusal().is_some()) {
                    Err(InventoryPortError::Refused(refused))
                } else {
                    Err(InventoryPortError::Unavailable(e.to_string()))
                }
            }
        }
    }

    async fn holds_of(&self, owner_prefix: &str) -> Result<Vec<OpenHold>, InventoryPortError> {
        self.0
            .holds_caught_up()
            .await
            .map_err(|e| InventoryPortError::Unavailable(e.to_string()))?;
        Ok(self
            .0
            .holds_of(owner_prefix)
            .into_iter()
            .map(|h| OpenHold {
                owner: h.owner,
                reservation: ReservationRef {
                    reservation_id: h.reservation_id,
                    sku: h.sku,
                    location: h.location,
                },
                since: h.since,
            })
            .collect())
    }

    async fn confirm(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let commands = reservations.iter().map(|r| {
            let command = StockCommand::Confirm {
                reservation_id: r.reservation_id.clone(),
            };
            (r, command)
        });
        self.each(commands, metadata).await
    }

    async fn consume(
        &self,
        uses: &[(ReservationRef, i64)],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        // Cumulative totals (see the trait): ConsumeUpTo takes only what is not taken yet.
        let commands = uses.iter().map(|(r, total)| {
            let command = StockCommand::ConsumeUpTo {
                reservation_id: r.reservation_id.clone(),
                total: *total,
            };
            (r, command)
        });
        self.each(commands, metadata).await
    }

    async fn release(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let commands = reservations.iter().map(|r| {
            let command = StockCommand::Release {
                reservation_id: r.reservation_id.clone(),
            };
            (r, command)
        });
        self.each(commands, metadata).await
    }

    /// An `Adjust { delta: −n, reason_code: SHORT_PICK, reference }`, where `n` is the short
    /// quantity capped at what no other reservation holds: an adjustment may not take on hand
    /// below reserved, and a cycle count would overwrite the whole count with a guess. The
    /// other holds on the missing units short-pick in their turn and record the rest.
    ///
    /// Idempotent by `reference`: the stock stream is searched for an adjustment with it first
    /// (short picks are rare, so reading the stream is affordable). One order process per
    /// deployment sends these, so the check and the append do not race.
    async fn record_short_pick(
        &self,
        sku: &str,
        location: &str,
        qty: i64,
        reference: &str,
        metadata: Metadata,
    ) -> Result<i64, InventoryPortError> {
        let stream = ichigen_inventory::domain::stream_name(sku, location);
        let events = ichigen_shared::store::read_whole_stream(self.0.store.as_ref(), &stream)
            .await
            .map_err(|e| InventoryPortError::Unavailable(e.to_string()))?;
        let recorded = events.iter().any(|e| {
            matches!(
                StockEvent::decode(&e.event_type, &e.data),
                Some(Ok(StockEvent::StockAdjusted(a)))
                    if a.reason_code == SHORT_PICK && a.reference.as_deref() == Some(reference)
            )
        });
        if recorded || qty <= 0 {
            return Ok(0);
        }
        let item = self
            .0
            .stock
            .load(sku, location)
            .await
            .map_err(|e| InventoryPortError::Unavailable(e.to_string()))?;
        let take = qty.min(item.unreserved());
        if take < qty {
            tracing::warn!(
                sku,
                location,
                short = qty,
                recorded = take,
                "short pick larger than the unreserved stock; the rest is left to other picks"
            );
        }
        if take == 0 {
            return Ok(0);
        }
        let result = self
            .0
            .stock
            .execute(
                sku,
                location,
                vec![StockCommand::Adjust {
                    delta: -take,
                    reason_code: SHORT_PICK.into(),
                    reference: Some(reference.to_owned()),
                }],
                metadata,
            )
            .await;
        collect(vec![result])?;
        Ok(take)
    }
}

/// The order's requests as reservation lines. `reserve_lines` names the holds
/// `<owner>#<index>`: the ids the order must have asked for.
fn reserve_lines_of(
    owner: &str,
    requests: &[ReservationRequest],
) -> Result<Vec<ReserveLine>, InventoryPortError> {
    for (i, r) in requests.iter().enumerate() {
        if r.reservation_id != format!("{owner}#{i}") {
            return Err(InventoryPortError::Unavailable(format!(
                "reservation id {} does not follow {owner}#{i}",
                r.reservation_id
            )));
        }
    }
    Ok(requests
        .iter()
        .map(|r| ReserveLine {
            sku: r.sku.clone(),
            location: r.location.clone(),
            qty: r.qty,
        })
        .collect())
}

/// Maps the handlers' answers: a domain refusal is `Refused` (retrying will not help), anything
/// else `Unavailable`.
fn collect<T>(results: Vec<Result<T, HandlerError>>) -> Result<(), InventoryPortError> {
    let mut refused = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(_) => {}
            Err(e) if e.refusal().is_some() => refused.push((i, e.to_string())),
            Err(e) => return Err(InventoryPortError::Unavailable(e.to_string())),
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(InventoryPortError::Refused(refused))
    }
}

/// The fulfillment service, as the order service sees it.
pub struct InProcessFulfillment(pub OrderCancellation);

#[async_trait]
impl FulfillmentPort for InProcessFulfillment {
    async fn cancel_units(
        &self,
        order_id: Uuid,
        units: &[UnitsToCancel],
        reason: &str,
        operation: &str,
        metadata: Metadata,
    ) -> Result<Vec<CancelOutcome>, FulfillmentPortError> {
        let units: Vec<cancellation::UnitsToCancel> = units
            .iter()
            .map(|u| {
                let (kind, destination_store) = match &u.work {
                    WorkKind::Ship => (FulfillmentKind::Ship, None),
                    WorkKind::Pickup => (FulfillmentKind::Pickup, None),
                    WorkKind::ShipToStore { store } => {
                        (FulfillmentKind::ShipToStore, Some(store.clone()))
                    }
                };
                cancellation::UnitsToCancel {
                    line_id: u.line_id.clone(),
                    location: u.location.clone(),
                    kind,
                    destination_store,
                    reservation_id: u.reservation_id.clone(),
                    qty: u.qty,
                }
            })
            .collect();
        let outcomes = self
            .0
            .cancel(order_id, &units, reason, operation, metadata)
            .await
            .map_err(|e| FulfillmentPortError::Unavailable(e.to_string()))?;
        Ok(outcomes
            .into_iter()
            .map(|o| CancelOutcome {
                cancelled: o.cancelled,
                refused: o.refused,
            })
            .collect())
    }
}

impl InProcessInventory {
    /// Sends one command per reservation, concurrently (different streams).
    async fn each<'r>(
        &self,
        commands: impl IntoIterator<Item = (&'r ReservationRef, StockCommand)>,
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let calls = commands.into_iter().map(|(r, command)| {
            self.0
                .stock
                .execute(&r.sku, &r.location, vec![command], metadata.clone())
        });
        collect(futures::future::join_all(calls).await)
    }
}
