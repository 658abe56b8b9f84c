//! `orderUpdates(orderId)`: the post-purchase messages of one order, live.

use super::types::OrderUpdateObject;
use super::{may_read, service, ORDER_TYPE};
use async_graphql::{Context, Subscription, ID};
use futures::Stream;
use ichigen_shared::graphql::conventions::{
    decode_id, gql_error, internal_error, request_context, ErrorCode,
};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// Every post-purchase message of the order: those already sent, then each new one (order
    /// received, confirmed, shipped with tracking, ready for pickup with the code, picked up,
    /// delivered, cancelled, refunded). For the order's customer, staff of a store it involves,
    /// CS agents and admins.
    async fn order_updates(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = OrderUpdateObject>> {
        let actor = request_context(ctx)?.actor.clone();
        let not_found = || gql_error(ErrorCode::NotFound, "no such order");
        let id = decode_id(ORDER_TYPE, &order_id)?;
        let order_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
        let svc = service(ctx)?;
        let (order, _) = svc
            .orders
            .load(order_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the order", &e))?;
        if !may_read(&actor, &order) {
            return Err(not_found());
        }
        // Subscribe before reading the past, then skip what the past already covered.
        let receiver = svc.status.subscribe();
        let past = svc.status.updates(order_id);
        let last = past.last().map(|u| (u.position, u.kind.as_str()));
        let past: Vec<OrderUpdateObject> = past.iter().map(OrderUpdateObject::from).collect();
        let live = futures::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(update) if update.order_id == order_id => {
                        let seen = last.is_some_and(|(position, kind)| {
                            update.position < position
                                || (update.position == position && update.kind.as_str() == kind)
                        });
                        if !seen {
                            return Some((OrderUpdateObject::from(&update), receiver));
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "orderUpdates subscriber lagged");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Ok(futures::StreamExt::chain(futures::stream::iter(past), live))
    }
}
