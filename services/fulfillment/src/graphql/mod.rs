//! The fulfillment part of the GraphQL schema; the gateway merges it into its roots.
//!
//! - Queries (store staff for their own store, CS agents and admins for any):
//!   `pickupQueue(store)` — what customers collect at the counter — and
//!   `shipFromStoreTasks(store)` — what the store picks, packs and ships; `fulfillmentOrder(id)`
//!   (staff of its store or its destination store, CS, admin).
//! - Mutations (store staff at their own store, admins anywhere): `pickFulfillment`,
//!   `packFulfillment`, `shipFulfillment`, `markReadyForPickup` (issues the pickup code) and
//!   `handOverPickup` (checks it). DC steps come from the WMS through the integration API
//!   ([`crate::api`]), not from here.
//!
//! Reads come from the in-memory queues ([`crate::projections::queues`]); who may act on a
//! fulfillment order is decided from its stream (the write side), never from the view. Every
//! write returns the store `position` it reached; reads take `atLeast: position`.

mod mutation;
mod query;
pub mod types;

pub use mutation::FulfillmentMutation;
pub use query::FulfillmentQuery;

use crate::domain::{FulfillmentError, FulfillmentKind};
use crate::handlers::FulfillmentHandlerError;
use crate::FulfillmentService;
use async_graphql::{Context, ID};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::graphql::conventions::{
    self, decode_id, gql_error, internal_error, ErrorCode, UserError,
};
use uuid::Uuid;

/// The fulfillment service, put into the schema's data by the gateway.
pub(crate) fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a FulfillmentService> {
    ctx.data_opt::<FulfillmentService>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without the fulfillment service (gateway wiring bug)",
        )
    })
}

/// The location code inside a location id (argument `field`).
pub(crate) fn location_code(id: &ID, field: &str) -> Result<String, UserError> {
    decode_id(types::LOCATION_TYPE, id).map_err(|e| e.at(&[field]))
}

/// The fulfillment id inside a fulfillment order id; errors name `field`.
pub(crate) fn fulfillment_id(id: &ID, field: &[&str]) -> Result<Uuid, UserError> {
    let key = decode_id(types::FULFILLMENT_ORDER_TYPE, id).map_err(|e| e.at(field))?;
    Uuid::parse_str(&key).map_err(|_| {
        UserError::invalid(
            field,
            format!("{:?} is not an id issued by this API", id.as_str()),
        )
    })
}

/// Store staff act for their own store only; other roles passed `require_role` already.
pub(crate) fn require_store_scope(actor: &Actor, location: &str) -> async_graphql::Result<()> {
    require_any_store_scope(actor, &[location])
}

/// Store staff act only if their store is one of `stores` (a SHIP_TO_STORE order concerns
/// both the shipping location and the destination store).
pub(crate) fn require_any_store_scope(actor: &Actor, stores: &[&str]) -> async_graphql::Result<()> {
    if actor.role == Role::StoreStaff
        && !actor
            .store_id
            .as_deref()
            .is_some_and(|own| stores.contains(&own))
    {
        return Err(gql_error(
            ErrorCode::Forbidden,
            format!(
                "store staff of {} may not act on location {}",
                actor.store_id.as_deref().unwrap_or("no store"),
                stores.join(" or ")
            ),
        ));
    }
    Ok(())
}

/// The store whose staff take a step: the location doing the work, except the counter steps
/// of a SHIP_TO_STORE order, which happen at its destination store.
pub(crate) fn acting_store<'a>(
    kind: FulfillmentKind,
    location: &'a str,
    destination: Option<&'a str>,
    counter_step: bool,
) -> &'a str {
    match (kind, counter_step, destination) {
        (FulfillmentKind::ShipToStore, true, Some(store)) => store,
        _ => location,
    }
}

/// Waits for `atLeast` (read-your-writes) before a read.
pub(crate) async fn wait_at_least(
    ctx: &Context<'_>,
    at_least: Option<&str>,
) -> async_graphql::Result<()> {
    let service = service(ctx)?;
    conventions::wait_at_least(at_least, |p| service.wait_for(Some(p))).await
}

/// The API code of a domain refusal.
pub(crate) fn error_code(error: &FulfillmentError) -> ErrorCode {
    match error.code() {
        "CONFLICT" => ErrorCode::Conflict,
        "NOT_FOUND" => ErrorCode::NotFound,
        _ => ErrorCode::InvalidInput,
    }
}

/// A domain refusal as a payload error, its field placed under `input`.
pub(crate) fn user_error(error: &FulfillmentError) -> UserError {
    UserError::refusal(error_code(error), error.field(), &[], error.to_string())
}

/// Refusals become payload errors; everything else is a top-level error.
pub(crate) fn payload_errors(
    ctx: &Context<'_>,
    error: FulfillmentHandlerError,
) -> async_graphql::Result<Vec<UserError>> {
    match error {
        FulfillmentHandlerError::Refused(error) => Ok(vec![user_error(&error)]),
        FulfillmentHandlerError::Contended(_) => Err(gql_error(
            ErrorCode::Conflict,
            "the fulfillment order changed under too many concurrent writers; try again",
        )),
        other => Err(internal_error(
            ctx,
            "the fulfillment command failed",
            &other,
        )),
    }
}
