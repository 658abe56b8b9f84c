//! In-process adapters between services: the all-in-one process hands each service the others
//! through the traits it declares (design.md: "a service is used through a trait with an
//! in-process and an HTTP implementation"), so no service crate depends on another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ichigen_inventory::domain::{Capability, LocationKind, StockCommand};
use ichigen_inventory::handlers::ReserveLine;
use ichigen_inventory::InventoryService;
use ichigen_order::domain::sourcing::{self, Candidate};
use ichigen_order::ports::{InventoryPort, InventoryPortError, ReservationRef, ReservationRequest};
use ichigen_shared::envelope::Metadata;
use ichigen_shared::store::Position;

/// The inventory service, as the order service sees it.
pub struct InProcessInventory(pub InventoryService);

#[async_trait]
impl InventoryPort for InProcessInventory {
    async fn candidates(&self, skus: &[String]) -> Result<Vec<Candidate>, InventoryPortError> {
        let view = &self.0.view;
        Ok(view
            .locations()
            .into_iter()
            .filter(|l| l.active)
            .map(|l| Candidate {
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
                remaining_capacity: l.spec.daily_capacity,
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
        // reserve_lines names the holds `<owner>#<index>`: the ids the order asked for.
        for (i, r) in requests.iter().enumerate() {
            if r.reservation_id != format!("{owner}#{i}") {
                return Err(InventoryPortError::Unavailable(format!(
                    "reservation id {} does not follow {owner}#{i}",
                    r.reservation_id
                )));
            }
        }
        let lines: Vec<ReserveLine> = requests
            .iter()
            .map(|r| ReserveLine {
                sku: r.sku.clone(),
                location: r.location.clone(),
                qty: r.qty,
            })
            .collect();
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

    async fn confirm(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        self.each(reservations, metadata, |id| StockCommand::Confirm {
            reservation_id: id,
        })
        .await
    }

    async fn consume(
        &self,
        uses: &[(ReservationRef, i64)],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        let calls = uses.iter().map(|(r, qty)| {
            self.0.stock.execute(
                &r.sku,
                &r.location,
                vec![StockCommand::Consume {
                    reservation_id: r.reservation_id.clone(),
                    qty: *qty,
                }],
                metadata.clone(),
            )
        });
        for result in futures::future::join_all(calls).await {
            result.map_err(|e| InventoryPortError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    async fn release(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
    ) -> Result<(), InventoryPortError> {
        self.each(reservations, metadata, |id| StockCommand::Release {
            reservation_id: id,
        })
        .await
    }
}

impl InProcessInventory {
    /// Sends one command per reservation, concurrently (different streams).
    async fn each(
        &self,
        reservations: &[ReservationRef],
        metadata: Metadata,
        command: fn(String) -> StockCommand,
    ) -> Result<(), InventoryPortError> {
        let calls = reservations.iter().map(|r| {
            self.0.stock.execute(
                &r.sku,
                &r.location,
                vec![command(r.reservation_id.clone())],
                metadata.clone(),
            )
        });
        for result in futures::future::join_all(calls).await {
            result.map_err(|e| InventoryPortError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }
}
