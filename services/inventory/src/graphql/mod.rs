//! The inventory part of the GraphQL schema; the gateway merges it into its roots.
//!
//! - Public (any caller): `locations`, `location`, `availability`, `nearbyStores`, and the
//!   `availabilityChanged` subscription. Storefronts and the store app read these.
//!   `availability` and `nearbyStores` promise only what `placeOrder` can sell: SKUs the
//!   catalog sells ([`SellableSkus`]) at locations with capacity left on their local day.
//! - Staff and admin: `stockLevels` and `stockMovements` (who, when, why, reference) — store
//!   staff for their own store only, CS agents and admins for every location.
//! - Mutations: ADMIN manages locations; store staff adjust, count and set safety stock at
//!   their own store (admins anywhere).
//!
//! Reads come from the in-memory inventory view. Every write returns the store `position` it
//! reached; reads take `atLeast: position` to wait until the view shows that write.

mod mutation;
mod query;
mod subscription;
pub mod types;

pub use mutation::InventoryMutation;
pub use query::InventoryQuery;
pub use subscription::InventorySubscription;

use crate::domain::InventoryError;
use crate::handlers::HandlerError;
use crate::InventoryService;
use async_graphql::{Context, ID};

use ichigen_shared::graphql::conventions::{
    self, decode_id, gql_error, internal_error, ErrorCode, UserError,
};

/// "Is this SKU sold?": the catalog's answer (known and active), which the inventory does not
/// own. Availability leaves out what it cannot promise a buyer, so it asks through this port;
/// the gateway wires it to the order service's catalog. Put into the schema's data as
/// [`Sellable`]. Async, so that an implementation can wait until its catalog has replayed
/// (right after a start, "not replayed yet" must not read as "not sold").
#[async_trait::async_trait]
pub trait SellableSkus: Send + Sync {
    async fn is_sellable(&self, sku: &str) -> bool;
}

/// The [`SellableSkus`] port in the schema's data.
#[derive(Clone)]
pub struct Sellable(pub std::sync::Arc<dyn SellableSkus>);

/// The sellable-SKU port, put into the schema's data by the gateway.
pub(crate) fn sellable<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a dyn SellableSkus> {
    ctx.data_opt::<Sellable>()
        .map(|s| s.0.as_ref())
        .ok_or_else(|| {
            gql_error(
                ErrorCode::Internal,
                "the schema was built without the catalog port (gateway wiring bug)",
            )
        })
}

/// The inventory service, put into the schema's data by the gateway.
pub(crate) fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a InventoryService> {
    ctx.data_opt::<InventoryService>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without the inventory service (gateway wiring bug)",
        )
    })
}

/// The location code inside a location id (argument `field`).
pub(crate) fn location_code(id: &ID, field: &str) -> Result<String, UserError> {
    decode_id(types::LOCATION_TYPE, id).map_err(|e| e.at(&[field]))
}

pub(crate) use ichigen_shared::graphql::conventions::require_store_scope;

/// Waits for `atLeast` (read-your-writes) before a read.
pub(crate) async fn wait_at_least(
    ctx: &Context<'_>,
    at_least: Option<&str>,
) -> async_graphql::Result<()> {
    let service = service(ctx)?;
    conventions::wait_at_least(at_least, |p| service.wait_for(Some(p))).await
}

/// Event metadata for a command this request causes (actor, correlation id).
pub(crate) fn request_context_metadata(
    ctx: &Context<'_>,
) -> async_graphql::Result<ichigen_shared::envelope::Metadata> {
    Ok(ichigen_shared::graphql::conventions::request_context(ctx)?.metadata())
}

/// The API code of a domain refusal.
pub(crate) fn error_code(error: &InventoryError) -> ErrorCode {
    match error.code() {
        "INSUFFICIENT_STOCK" => ErrorCode::InsufficientStock,
        "CONFLICT" => ErrorCode::Conflict,
        "NOT_FOUND" => ErrorCode::NotFound,
        "LOCATION_INACTIVE" => ErrorCode::LocationInactive,
        _ => ErrorCode::InvalidInput,
    }
}

/// A domain refusal as a payload error, its field placed under `input`.
pub(crate) fn user_error(error: &InventoryError) -> UserError {
    UserError::refusal(error_code(error), error.field(), &[], error.to_string())
}

/// Refusals become payload errors; everything else is a top-level error.
pub(crate) fn payload_errors(
    ctx: &Context<'_>,
    error: HandlerError,
) -> async_graphql::Result<Vec<UserError>> {
    match error {
        HandlerError::Refused { error, .. } => Ok(vec![user_error(&error)]),
        HandlerError::Contended(_) => Err(gql_error(
            ErrorCode::Conflict,
            "the stock changed under too many concurrent writers; try again",
        )),
        other => Err(internal_error(ctx, "the inventory command failed", &other)),
    }
}
