//! Returns queries: the policy, one return, the queue, and orders found for a return.

use super::types::{ReturnObject, ReturnPolicyObject, ReturnStatusGql, ReturnableOrderObject};
use super::{location_code, may_read, order_id, return_id, service, wait_at_least};
use crate::projections::{ReturnCursor, ReturnFilter};
use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{
    connection_complexity, forward_connection, gql_error, internal_error, request_context,
    require_role, ErrorCode, UserError,
};

/// Orders a customer look-up returns at most.
const CUSTOMER_ORDERS: usize = 20;

#[derive(Default)]
pub struct RmaQuery;

#[Object]
impl RmaQuery {
    /// The return policy: the reasons a customer may choose and the grades inspectors give
    /// (retired ones included, marked `active: false`). For everyone, signed in or not: a
    /// storefront shows it before the customer signs in.
    async fn return_policy(&self, ctx: &Context<'_>) -> async_graphql::Result<ReturnPolicyObject> {
        request_context(ctx)?;
        let (policy, _) = service(ctx)?
            .handlers
            .policy()
            .load()
            .await
            .map_err(|e| internal_error(ctx, "cannot read the return policy", &e))?;
        Ok(ReturnPolicyObject::from(&policy))
    }

    /// One return, for its customer, staff of a store that received it or took it, CS and
    /// admins (null for anyone else, as for a return that does not exist). Read from the
    /// return's own stream, so a client sees its write at once; the timeline comes from the
    /// returns view (`atLeast` waits for a write's position).
    #[graphql(name = "return")]
    async fn return_(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at_least: Option<String>,
    ) -> async_graphql::Result<Option<ReturnObject>> {
        let actor = &request_context(ctx)?.actor;
        let rma_id = return_id(&id, &["id"])?;
        wait_at_least(ctx, at_least.as_deref()).await?;
        let svc = service(ctx)?;
        let Some(rma) = svc
            .load(rma_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the return", &e))?
        else {
            return Ok(None);
        };
        if !may_read(actor, &rma) {
            return Ok(None);
        }
        let timeline = svc.view.get(rma_id).map(|r| r.timeline).unwrap_or_default();
        Ok(Some(ReturnObject { rma, timeline }))
    }

    /// Returns, newest first. CS agents and admins see every return and filter the queue;
    /// customers see their own (`customerId` is theirs, whatever is passed); store staff
    /// see the returns received at their store (`location` is theirs).
    #[allow(clippy::too_many_arguments)] // each filter is one GraphQL argument
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn returns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<Vec<ReturnStatusGql>>,
        customer_id: Option<String>,
        order_id: Option<ID>,
        reason_code: Option<String>,
        location: Option<ID>,
        requested_from: Option<DateTime<Utc>>,
        requested_to: Option<DateTime<Utc>>,
        at_least: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<ReturnCursor>, ReturnObject>> {
        let actor = require_role(
            ctx,
            &[Role::Customer, Role::StoreStaff, Role::CsAgent, Role::Admin],
        )?
        .clone();
        let mut filter = ReturnFilter {
            statuses: status.map(|s| s.into_iter().map(Into::into).collect()),
            customer_id,
            order_id: order_id
                .map(|id| super::order_id(&id, &["orderId"]))
                .transpose()?,
            reason_code,
            location: location
                .map(|id| location_code(&id, &["location"]))
                .transpose()?,
            requested_from,
            requested_to,
        };
        match actor.role {
            Role::Customer => filter.customer_id = Some(actor.subject.clone()),
            Role::StoreStaff => filter.location = actor.store_id.clone(),
            _ => {}
        }
        wait_at_least(ctx, at_least.as_deref()).await?;
        let svc = service(ctx)?;
        forward_connection(after, first, |after, limit| async move {
            let (records, _) = svc.view.queue(&filter, after, limit);
            Ok(records
                .into_iter()
                .map(|r| (r.cursor(), ReturnObject::from_record(r)))
                .collect())
        })
        .await
    }

    /// Store staff, CS agents and admins: find an order to take a return, by its id (the
    /// order id printed on the receipt, or its GraphQL id) or by customer (their latest
    /// orders). Each comes with what is still returnable per line.
    async fn find_orders_for_return(
        &self,
        ctx: &Context<'_>,
        order_number: Option<String>,
        customer_id: Option<String>,
    ) -> async_graphql::Result<Vec<ReturnableOrderObject>> {
        require_role(ctx, &[Role::StoreStaff, Role::CsAgent, Role::Admin])?;
        let svc = service(ctx)?;
        let found = match (order_number, customer_id) {
            (Some(number), None) => {
                let text = number.trim();
                let id = match uuid::Uuid::parse_str(text) {
                    Ok(id) => id,
                    Err(_) => order_id(&ID(text.to_owned()), &["orderNumber"])?,
                };
                // Only staff, CS and admins get here: every order is theirs to look up.
                svc.orders
                    .find(id)
                    .await
                    .map_err(|e| internal_error(ctx, "cannot read the order", &e))?
                    .into_iter()
                    .collect()
            }
            (None, Some(customer)) => svc
                .orders
                .orders_of_customer(customer.trim(), CUSTOMER_ORDERS)
                .await
                .map_err(|e| internal_error(ctx, "cannot read the customer's orders", &e))?,
            _ => {
                return Err(UserError::invalid(
                    &["orderNumber"],
                    "give exactly one of `orderNumber` and `customerId`",
                )
                .into())
            }
        };
        let mut out = Vec::with_capacity(found.len());
        for order in found {
            let taken = svc
                .handlers
                .already_returned(order.facts.order_id)
                .await
                .map_err(|e| internal_error(ctx, "cannot read the order's returns", &e))?;
            out.push(ReturnableOrderObject::new(order, &taken));
        }
        Ok(out)
    }
}

/// A location the caller acts for: staff's own store, or the `location` argument (required
/// for other roles). A missing or malformed argument is the caller's to fix (the inner
/// `UserError`, for the payload); another store than staff's own is a top-level FORBIDDEN.
pub(crate) fn acting_location(
    actor: &ichigen_shared::auth::Actor,
    location: Option<&ID>,
    field: &[&str],
) -> async_graphql::Result<Result<String, UserError>> {
    match (actor.role, location) {
        (Role::StoreStaff, None) => actor.store_id.clone().map(Ok).ok_or_else(|| {
            gql_error(
                ErrorCode::Forbidden,
                "store staff without a store may not act",
            )
        }),
        (_, Some(id)) => match location_code(id, field) {
            Ok(code) => {
                super::require_store_scope(actor, &code)?;
                Ok(Ok(code))
            }
            Err(e) => Ok(Err(e)),
        },
        (_, None) => Ok(Err(UserError::invalid(field, "name the location"))),
    }
}
