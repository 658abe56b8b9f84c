//! The returns part of the GraphQL schema; the gateway merges it into its roots.
//!
//! - **Customers**: `returnPolicy`, `requestReturn` (their own delivered or picked-up lines),
//!   `returns` and `return(id)` (their own), `returnUpdates(returnId)`.
//! - **CS agents** (and admins): the queue `returns(filter…)`, `return(id)` with the order's
//!   history and the timeline, `approveReturn` / `rejectReturn`, `receiveReturn`,
//!   `gradeReturnUnit`, `refundReturn`, `exchangeReturn`, `closeReturn`, the policy
//!   (`defineReturnReason`, `retireReturnReason`, `defineConditionGrade`,
//!   `retireConditionGrade`), and `returnUpdates` for every return.
//! - **Store staff**: `findOrdersForReturn` (by order id or customer), `acceptCounterReturn`
//!   (requested, approved and received at their store in one step), `receiveReturn` and
//!   `gradeReturnUnit` at their store, and the returns received at or taken by their store.
//!
//! DC receipts come from the WMS through the integration API ([`crate::api`]). Who may act on
//! a return is decided from its stream (the write side), never from the view. Every mutation
//! returns `{ return, position, errors { field code message } }`; reads take `atLeast`.

mod mutation;
mod query;
mod subscription;
pub mod types;

pub use mutation::RmaMutation;
pub use query::RmaQuery;
pub use subscription::RmaSubscription;

use crate::domain::Rma;
use crate::service::{RmaService, ServiceError};
use async_graphql::{Context, ID};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::graphql::conventions::{
    self, decode_id, gql_error, internal_error, ErrorCode, UserError,
};
use uuid::Uuid;

/// The returns service, put into the schema's data by the gateway.
pub(crate) fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RmaService> {
    ctx.data_opt::<RmaService>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without the returns service (gateway wiring bug)",
        )
    })
}

/// The return id inside a return's global id; errors name `field`.
pub(crate) fn return_id(id: &ID, field: &[&str]) -> Result<Uuid, UserError> {
    let key = decode_id(types::RETURN_TYPE, id).map_err(|e| e.at(field))?;
    Uuid::parse_str(&key).map_err(|_| {
        UserError::invalid(
            field,
            format!("{:?} is not an id issued by this API", id.as_str()),
        )
    })
}

/// The order id inside an order's global id (the order service's ids); errors name `field`.
pub(crate) fn order_id(id: &ID, field: &[&str]) -> Result<Uuid, UserError> {
    let key = decode_id(types::ORDER_TYPE, id).map_err(|e| e.at(field))?;
    Uuid::parse_str(&key).map_err(|_| {
        UserError::invalid(
            field,
            format!("{:?} is not an id issued by this API", id.as_str()),
        )
    })
}

/// The location code inside a location id; errors name `field`.
pub(crate) fn location_code(id: &ID, field: &[&str]) -> Result<String, UserError> {
    decode_id(types::LOCATION_TYPE, id).map_err(|e| e.at(field))
}

/// Whether `actor` may see the return: its customer; store staff of a store that received
/// its units or whose associate took it; CS agents and admins.
pub(crate) fn may_read(actor: &Actor, rma: &Rma) -> bool {
    let Some(header) = &rma.header else {
        return false;
    };
    match actor.role {
        Role::Customer => header.customer_id.as_deref() == Some(actor.subject.as_str()),
        Role::StoreStaff => {
            header.requested_by == actor.subject
                || actor
                    .store_id
                    .as_deref()
                    .is_some_and(|store| rma.units.iter().any(|u| u.location == store))
        }
        Role::CsAgent | Role::Admin => true,
        _ => false,
    }
}

pub(crate) use ichigen_shared::graphql::conventions::require_store_scope;

/// Waits for `atLeast` (read-your-writes) before a read of the view.
pub(crate) async fn wait_at_least(
    ctx: &Context<'_>,
    at_least: Option<&str>,
) -> async_graphql::Result<()> {
    let service = service(ctx)?;
    conventions::wait_at_least(at_least, |p| service.wait_for(Some(p))).await
}

/// The API code of a refusal.
fn error_code(code: &str) -> ErrorCode {
    match code {
        "CONFLICT" => ErrorCode::Conflict,
        "NOT_FOUND" => ErrorCode::NotFound,
        "INSUFFICIENT_STOCK" => ErrorCode::InsufficientStock,
        "PAYMENT_DECLINED" => ErrorCode::PaymentDeclined,
        "LOCATION_INACTIVE" => ErrorCode::LocationInactive,
        "FORBIDDEN" => ErrorCode::Forbidden,
        _ => ErrorCode::InvalidInput,
    }
}

/// Refusals become payload errors (field under `input`); faults become a top-level error.
pub(crate) fn payload_errors(
    ctx: &Context<'_>,
    error: ServiceError,
) -> async_graphql::Result<Vec<UserError>> {
    if !error.is_refusal() {
        return Err(internal_error(ctx, "the returns command failed", &error));
    }
    // The domain says `qty` and `rmaLineId`; the GraphQL inputs spell them `quantity` and
    // `lineId`.
    Ok(vec![UserError::refusal(
        error_code(error.code()),
        error.field(),
        &[("qty", "quantity"), ("rmaLineId", "lineId")],
        error.to_string(),
    )])
}
