//! `order(id)`.

use super::types::OrderObject;
use super::{may_read, service, ORDER_TYPE};
use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{
    connection_complexity, decode_id, forward_connection, internal_error, request_context,
    require_role,
};
use uuid::Uuid;

#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One order, for its customer, the staff of a store it involves, CS and admins (null
    /// for anyone else, as for an order that does not exist). Read from the order's own
    /// stream, so a client sees its placement at once.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<OrderObject>> {
        let actor = &request_context(ctx)?.actor;
        let key = decode_id(ORDER_TYPE, &id)?;
        let Ok(order_id) = Uuid::parse_str(&key) else {
            return Ok(None);
        };
        let (order, _) = service(ctx)?
            .orders
            .load(order_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the order", &e))?;
        Ok(may_read(actor, &order).then_some(OrderObject(order)))
    }

    /// Orders, newest first: a customer's own, or every order for CS agents and admins. Read
    /// from the order status view (`atLeast` waits for a write's position).
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        at_least: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<(DateTime<Utc>, Uuid)>, OrderObject>> {
        let actor = require_role(ctx, &[Role::Customer, Role::CsAgent, Role::Admin])?.clone();
        let svc = service(ctx)?;
        ichigen_shared::graphql::conventions::wait_at_least(at_least.as_deref(), |p| {
            svc.status_handle
                .wait_for(p, std::time::Duration::from_secs(5))
        })
        .await?;
        forward_connection(after, first, |after, limit| async move {
            let (records, _) = match actor.role {
                Role::Customer => svc.status.by_customer(&actor.subject, after, limit),
                _ => svc.status.all(after, limit),
            };
            Ok(records
                .into_iter()
                .map(|r| (r.cursor(), OrderObject(r.order)))
                .collect())
        })
        .await
    }
}
