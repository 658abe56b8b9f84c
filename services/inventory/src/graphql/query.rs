//! Inventory queries.

use super::types::{
    Availability, GeoPointInput, LocationAvailabilityObject, LocationObject, SalesChannel,
    StockCondition, StockLevelObject, StockMovementObject,
};
use super::{location_code, require_store_scope, sellable, service, wait_at_least};
use crate::domain::{stream_name, validate_sku, StockEvent};
use crate::projections::view::Channel;
use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, ID};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{
    connection_complexity, forward_connection, internal_error, request_context, require_role,
    UserError,
};

/// Largest radius `nearbyStores` searches (half the earth's circumference).
const MAX_RADIUS_KM: f64 = 20_000.0;

#[derive(Default)]
pub struct InventoryQuery;

#[Object]
impl InventoryQuery {
    /// Every location (DCs and stores), by code. Public: storefronts list pickup stores.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn locations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Only active locations (the default) or all")] active_only: Option<bool>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<String>, LocationObject>> {
        request_context(ctx)?;
        let view = &service(ctx)?.view;
        let active_only = active_only.unwrap_or(true);
        forward_connection(after, first, |after: Option<String>, limit| async move {
            Ok(view
                .locations()
                .into_iter()
                .filter(|l| !active_only || l.active)
                .filter(|l| after.as_ref().is_none_or(|a| l.spec.code > *a))
                .take(limit)
                .map(|l| (l.spec.code.clone(), LocationObject(l)))
                .collect())
        })
        .await
    }

    /// One location by id.
    async fn location(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<LocationObject>> {
        request_context(ctx)?;
        let code = location_code(&id, "id")?;
        Ok(service(ctx)?.view.location(&code).map(LocationObject))
    }

    /// What can be promised for a SKU: ONLINE (every active location that ships) or PICKUP at
    /// `store`. With `near`, locations come nearest first with their distance. `atLeast`
    /// waits until a write's position is visible (read-your-writes). Only what `placeOrder`
    /// can sell is shown: nothing for a SKU the catalog does not sell (unknown or inactive),
    /// and no location that has taken its daily capacity of orders today (its local day).
    async fn availability(
        &self,
        ctx: &Context<'_>,
        sku: String,
        #[graphql(default_with = "SalesChannel::Online")] channel: SalesChannel,
        store: Option<ID>,
        near: Option<GeoPointInput>,
        at_least: Option<String>,
    ) -> async_graphql::Result<Availability> {
        request_context(ctx)?;
        validate_sku(&sku).map_err(|e| UserError::invalid(&["sku"], e.to_string()))?;
        let channel_key = match (channel, store) {
            (SalesChannel::Online, None) => Channel::Online,
            (SalesChannel::Pickup, Some(id)) => Channel::Store(location_code(&id, "store")?),
            (SalesChannel::Online, Some(_)) => {
                return Err(
                    UserError::invalid(&["store"], "`store` is only for channel PICKUP").into(),
                )
            }
            (SalesChannel::Pickup, None) => {
                return Err(UserError::invalid(&["store"], "channel PICKUP needs a `store`").into())
            }
        };
        let point = near.map(|p| p.validate("near")).transpose()?;
        wait_at_least(ctx, at_least.as_deref()).await?;
        let service = service(ctx)?;
        if !sellable(ctx)?.is_sellable(&sku).await {
            return Ok(Availability {
                sku,
                channel,
                available: 0,
                locations: Vec::new(),
            });
        }
        let view = &service.view;
        let answer = match point {
            Some((lat, lon)) => view.availability_near(&sku, &channel_key, lat, lon),
            None => view.availability(&sku, &channel_key),
        };
        let locations: Vec<_> = answer
            .locations
            .into_iter()
            .filter(|l| service.takes_orders_today(&l.location))
            .collect();
        Ok(Availability {
            sku,
            channel,
            available: locations
                .iter()
                .fold(0i64, |sum, l| sum.saturating_add(l.available)),
            locations: locations
                .into_iter()
                .map(LocationAvailabilityObject)
                .collect(),
        })
    }

    /// Active pickup stores within `radiusKm` of a point that have the SKU available and can
    /// take an order today (capacity left on their local day), nearest first; none for a SKU
    /// the catalog does not sell.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn nearby_stores(
        &self,
        ctx: &Context<'_>,
        sku: String,
        lat: f64,
        lon: f64,
        #[graphql(default = 50.0)] radius_km: f64,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<usize>, LocationAvailabilityObject>> {
        request_context(ctx)?;
        validate_sku(&sku).map_err(|e| UserError::invalid(&["sku"], e.to_string()))?;
        let (lat, lon) = GeoPointInput { lat, lon }
            .validate("")
            .map_err(|e| UserError::invalid(&[e.field[1].as_str()], e.message))?;
        if !(radius_km.is_finite() && radius_km > 0.0 && radius_km <= MAX_RADIUS_KM) {
            return Err(UserError::invalid(
                &["radiusKm"],
                format!("radiusKm must be above 0 and at most {MAX_RADIUS_KM}"),
            )
            .into());
        }
        let service = service(ctx)?;
        let view = &service.view;
        let sold = sellable(ctx)?.is_sellable(&sku).await;
        forward_connection(after, first, |after: Option<usize>, limit| async move {
            let skip = after.map_or(0, |i| i + 1);
            if !sold {
                return Ok(Vec::new());
            }
            Ok(view
                .nearby_stores_where(
                    &sku,
                    lat,
                    lon,
                    radius_km,
                    skip.saturating_add(limit),
                    |code| service.takes_orders_today(code),
                )
                .into_iter()
                .enumerate()
                .skip(skip)
                .map(|(i, a)| (i, LocationAvailabilityObject(a)))
                .collect())
        })
        .await
    }

    /// Staff and admin: every SKU's buckets at one location, by SKU. Store staff see their
    /// own store only. `condition` keeps new SKUs only (NEW), resale SKUs only (RESALE: graded
    /// returns, named `<sku>-R-<GRADE>`) or both (ANY, the default); pages and `hasNextPage`
    /// count the matching rows only.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn stock_levels(
        &self,
        ctx: &Context<'_>,
        location: ID,
        first: Option<i32>,
        after: Option<String>,
        at_least: Option<String>,
        #[graphql(default_with = "StockCondition::Any")] condition: StockCondition,
    ) -> async_graphql::Result<Connection<OpaqueCursor<String>, StockLevelObject>> {
        let actor = require_role(ctx, &[Role::StoreStaff, Role::CsAgent, Role::Admin])?;
        let code = location_code(&location, "location")?;
        require_store_scope(actor, &code)?;
        wait_at_least(ctx, at_least.as_deref()).await?;
        let view = &service(ctx)?.view;
        forward_connection(after, first, |after: Option<String>, limit| async move {
            let (rows, _) =
                view.stock_at_where(&code, after.as_deref(), limit, |sku| condition.matches(sku));
            Ok(rows
                .into_iter()
                .map(|(sku, levels)| {
                    let node = StockLevelObject::new(&sku, &code, levels);
                    (sku, node)
                })
                .collect())
        })
        .await
    }

    /// Staff and admin: the history of one SKU at one location, oldest first — who did what,
    /// when, why and with which document.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn stock_movements(
        &self,
        ctx: &Context<'_>,
        sku: String,
        location: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<u64>, StockMovementObject>> {
        let actor = require_role(ctx, &[Role::StoreStaff, Role::CsAgent, Role::Admin])?;
        let code = location_code(&location, "location")?;
        require_store_scope(actor, &code)?;
        validate_sku(&sku).map_err(|e| UserError::invalid(&["sku"], e.to_string()))?;
        let store = &service(ctx)?.store;
        let stream = stream_name(&sku, &code);
        forward_connection(after, first, |after: Option<u64>, limit| async move {
            let from = after.map_or(0, |rev| rev.saturating_add(1));
            let events = store
                .read_stream(&stream, from, limit)
                .await
                .map_err(|e| internal_error(ctx, "cannot read the stock history", &e))?;
            Ok(events
                .into_iter()
                .filter_map(|r| {
                    let event = StockEvent::decode(&r.event_type, &r.data)?.ok()?;
                    Some((r.revision, StockMovementObject(r, event)))
                })
                .collect())
        })
        .await
    }
}
