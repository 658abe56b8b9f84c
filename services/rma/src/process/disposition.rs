//! Stock disposition: where a graded unit goes, exactly once.
//!
//! Follows `UnitGraded` events from a stored checkpoint ([`Follower`]) and, by the grade's
//! disposition, at the location that received the unit:
//!
//! | disposition | effect |
//! |---|---|
//! | `RESTOCK` | one unit of the original SKU on hand |
//! | `RESALE` | the resale SKU becomes a catalog item (original price × factor) if it is not one, then one unit of it on hand |
//! | `DISPOSE`, `RETURN_TO_VENDOR` | one unit written off in the location's stock ledger, with the grade |
//!
//! Every effect is keyed by the unit (`<rma id>/<unit id>`), so an event handled again after a
//! crash between the effect and the checkpoint changes nothing. The catalog item comes before
//! the stock, so a resale unit is never available while it cannot be bought.
//!
//! An outage (store, unreachable service) stops the run, which restarts from the checkpoint
//! after a pause. A refusal by the inventory or the catalog (a rule of theirs, such as a
//! location deactivated since the unit arrived) would be refused again forever: it is logged
//! as an error and the event skipped, as the order's reactions do, so that one unit does not
//! hold up the stock of every later return.

use crate::domain::{Disposition, RmaEvent};
use crate::ports::{CatalogPort, PortError, ResaleItem, ReturnedUnit, StockPort};
use ichigen_shared::checkpoint::Follower;
use ichigen_shared::envelope::{Actor, Metadata, RecordedEvent};
use ichigen_shared::store::{DynEventStore, StoreError, SubscriptionFilter};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The process's name (its checkpoint stream is `checkpoint-rma-disposition`).
pub const NAME: &str = "rma-disposition";

/// The event type prefix it follows.
const GRADED: &str = "UnitGraded.";

#[derive(Debug, thiserror::Error)]
pub enum DispositionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
    /// An event this process must handle but cannot read: stop rather than lose a unit.
    #[error("cannot read {event_type} at {position}: {detail}")]
    Unreadable {
        event_type: String,
        position: String,
        detail: String,
    },
}

impl DispositionError {
    /// Whether handling the event again may succeed (an outage, an unreadable event to fix)
    /// rather than be refused again (a rule of the inventory or the catalog): the run stops
    /// and retries the former, skips the latter.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, DispositionError::Port(PortError::Refused { .. }))
    }
}

/// The disposition process (see the module documentation).
#[derive(Clone)]
pub struct DispositionProcess {
    store: DynEventStore,
    stock: Arc<dyn StockPort>,
    catalog: Arc<dyn CatalogPort>,
}

impl DispositionProcess {
    pub fn new(
        store: DynEventStore,
        stock: Arc<dyn StockPort>,
        catalog: Arc<dyn CatalogPort>,
    ) -> Self {
        DispositionProcess {
            store,
            stock,
            catalog,
        }
    }

    /// Follows the store from the checkpoint until the runtime stops. An event that failed for
    /// an outage is retried after a pause rather than skipped: skipping would lose a unit's
    /// stock (refusals are skipped, see the module documentation).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run(None).await {
                    tracing::warn!(error = %e, "return disposition stopped; restarting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    /// Handles events from the checkpoint until none arrives for `idle`; returns how many it
    /// handled. For tests and tools.
    pub async fn run_until_idle(&self, idle: Duration) -> Result<usize, DispositionError> {
        self.run(Some(idle)).await
    }

    async fn run(&self, idle: Option<Duration>) -> Result<usize, DispositionError> {
        let filter = SubscriptionFilter::event_types([GRADED]);
        Follower::start(self.store.clone(), NAME, filter)
            .await?
            .run(
                idle,
                |event| async move { self.handle(&event).await },
                DispositionError::is_retryable,
                |position, event_type, e| {
                    tracing::error!(
                        %position,
                        event_type,
                        error = %e,
                        "a graded unit's disposition was refused; skipped (record its stock by hand)"
                    )
                },
            )
            .await
    }

    /// Disposes of the unit one `UnitGraded` event names (other events are ignored).
    pub async fn handle(&self, event: &RecordedEvent) -> Result<(), DispositionError> {
        if event.category() != crate::CATEGORY || !event.event_type.starts_with(GRADED) {
            return Ok(());
        }
        let unreadable = |detail: String| DispositionError::Unreadable {
            event_type: event.event_type.to_string(),
            position: event.position.to_string(),
            detail,
        };
        let graded = match RmaEvent::decode(&event.event_type, &event.data) {
            Some(Ok(RmaEvent::UnitGraded(g))) => g,
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(unreadable(e.to_string())),
            None => return Err(unreadable("unknown event version".into())),
        };
        let rma_id: Uuid = event
            .stream
            .strip_prefix("rma-")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| unreadable(format!("stream {} is not a return", event.stream)))?;
        let metadata = Metadata::caused_by(event, Actor::system(NAME), event.metadata.occurred_at);
        let key = format!("{rma_id}/{}", graded.unit_id);
        let unit = |sku: &str| ReturnedUnit {
            sku: sku.to_owned(),
            location: graded.location.clone(),
            rma_id,
            key: key.clone(),
        };
        match &graded.disposition {
            Disposition::Restock => self.stock.receive(&unit(&graded.sku), metadata).await?,
            Disposition::Resale { .. } => {
                let (Some(resale_sku), Some(price)) = (&graded.resale_sku, graded.resale_price)
                else {
                    return Err(unreadable(
                        "a resale grade without resale SKU or price".into(),
                    ));
                };
                let item = ResaleItem {
                    resale_sku: resale_sku.clone(),
                    original_sku: graded.sku.clone(),
                    grade_code: graded.grade.code.clone(),
                    title: format!("{} ({})", graded.title, graded.grade.label_en),
                    price,
                };
                self.catalog
                    .ensure_resale_item(&item, metadata.clone())
                    .await?;
                self.stock.receive(&unit(resale_sku), metadata).await?;
            }
            Disposition::Dispose | Disposition::ReturnToVendor => {
                let reason = format!("grade {} ({})", graded.grade.code, graded.grade.label_en);
                self.stock
                    .write_off(
                        &unit(&graded.sku),
                        graded.disposition.as_str(),
                        &reason,
                        metadata,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
