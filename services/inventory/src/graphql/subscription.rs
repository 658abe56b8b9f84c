//! `availabilityChanged`: live stock levels for the SKUs and locations a screen shows.

use super::types::{StockCondition, StockLevelObject};
use super::{location_code, service};
use async_graphql::{Context, Subscription, ID};
use futures::Stream;
use ichigen_shared::graphql::conventions::{request_context, UserError};
use std::collections::HashSet;
use tokio::sync::broadcast::error::RecvError;

/// Most SKUs or locations one subscription may name.
const MAX_FILTER: usize = 1000;

#[derive(Default)]
pub struct InventorySubscription;

#[Subscription]
impl InventorySubscription {
    /// A SKU × location's buckets each time they change (after the inventory view applied
    /// the change), for the given SKUs and/or locations (omit one to take all of it). Public,
    /// like availability. A client that falls far behind skips to the newest changes.
    /// `condition` keeps changes of new SKUs only (NEW), of resale SKUs only (RESALE: graded
    /// returns) or both (ANY, the default), on top of the other filters.
    async fn availability_changed(
        &self,
        ctx: &Context<'_>,
        skus: Option<Vec<String>>,
        locations: Option<Vec<ID>>,
        #[graphql(default_with = "StockCondition::Any")] condition: StockCondition,
    ) -> async_graphql::Result<impl Stream<Item = StockLevelObject>> {
        request_context(ctx)?;
        if skus.as_ref().is_some_and(|s| s.len() > MAX_FILTER) {
            return Err(UserError::invalid(
                &["skus"],
                format!("at most {MAX_FILTER} SKUs per subscription"),
            )
            .into());
        }
        if locations.as_ref().is_some_and(|l| l.len() > MAX_FILTER) {
            return Err(UserError::invalid(
                &["locations"],
                format!("at most {MAX_FILTER} locations per subscription"),
            )
            .into());
        }
        let skus: Option<HashSet<String>> = skus.map(|s| s.into_iter().collect());
        let locations: Option<HashSet<String>> = match locations {
            Some(ids) => Some(
                ids.iter()
                    .map(|id| location_code(id, "locations"))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let receiver = service(ctx)?.view.subscribe();
        Ok(futures::stream::unfold(receiver, move |mut receiver| {
            let skus = skus.clone();
            let locations = locations.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok(change) => {
                            let wanted = skus.as_ref().is_none_or(|s| s.contains(&*change.sku))
                                && locations
                                    .as_ref()
                                    .is_none_or(|l| l.contains(&*change.location))
                                && condition.matches(&change.sku);
                            if wanted {
                                let level = StockLevelObject::new(
                                    &change.sku,
                                    &change.location,
                                    change.levels,
                                );
                                return Some((level, receiver));
                            }
                        }
                        Err(RecvError::Lagged(skipped)) => {
                            tracing::debug!(skipped, "availabilityChanged subscriber lagged");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}
