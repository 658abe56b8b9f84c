//! `order(id)`.

use super::types::OrderObject;
use super::{may_read, service, ORDER_TYPE};
use async_graphql::{Context, Object, ID};
use ichigen_shared::graphql::conventions::{decode_id, internal_error, request_context};
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
}
