//! Fulfillment queries: the store app's queues and one fulfillment order.

use super::types::FulfillmentOrderObject;
use super::{
    fulfillment_id, location_code, require_any_store_scope, require_store_scope, service,
    wait_at_least,
};
use crate::projections::queues::{FulfillmentQueues, QueueCursor, QueueEntry};
use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, ID};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{
    connection_complexity, forward_connection, require_role,
};

/// Who reads the queues: a store's staff (their own store) and the back office.
const READERS: &[Role] = &[Role::StoreStaff, Role::CsAgent, Role::Admin];

type QueuePage = Connection<OpaqueCursor<QueueCursor>, FulfillmentOrderObject>;

/// One of the queues' paged reads ([`FulfillmentQueues::pickup_queue`], …).
type QueueRead =
    fn(&FulfillmentQueues, &str, Option<QueueCursor>, usize) -> (Vec<QueueEntry>, bool);

#[derive(Default)]
pub struct FulfillmentQuery;

#[Object]
impl FulfillmentQuery {
    /// What customers will collect at `store`, oldest first: BOPIS orders to prepare (OPEN,
    /// PICKED) and waiting at the counter (READY_FOR_PICKUP), and SHIP_TO_STORE orders on
    /// their way (SHIPPED) or waiting. Store staff see their own store only.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn pickup_queue(
        &self,
        ctx: &Context<'_>,
        store: ID,
        first: Option<i32>,
        after: Option<String>,
        at_least: Option<String>,
    ) -> async_graphql::Result<QueuePage> {
        queue(
            ctx,
            &store,
            first,
            after,
            at_least,
            FulfillmentQueues::pickup_queue,
        )
        .await
    }

    /// What `store` must still pick, pack and ship (SHIP and SHIP_TO_STORE orders not yet
    /// shipped), oldest first. Store staff see their own store only.
    #[graphql(complexity = "connection_complexity(first, child_complexity)")]
    async fn ship_from_store_tasks(
        &self,
        ctx: &Context<'_>,
        store: ID,
        first: Option<i32>,
        after: Option<String>,
        at_least: Option<String>,
    ) -> async_graphql::Result<QueuePage> {
        queue(
            ctx,
            &store,
            first,
            after,
            at_least,
            FulfillmentQueues::ship_from_store_tasks,
        )
        .await
    }

    /// One fulfillment order, in whatever state: store staff of its location (or of its
    /// destination store), CS agents and admins. `null` when there is none.
    async fn fulfillment_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at_least: Option<String>,
    ) -> async_graphql::Result<Option<FulfillmentOrderObject>> {
        let actor = require_role(ctx, READERS)?;
        let id = fulfillment_id(&id, &["id"])?;
        wait_at_least(ctx, at_least.as_deref()).await?;
        let Some(entry) = service(ctx)?.queues.get(id) else {
            return Ok(None);
        };
        let mut stores = vec![entry.location.as_str()];
        stores.extend(entry.destination_store.as_deref());
        require_any_store_scope(actor, &stores)?;
        Ok(Some(FulfillmentOrderObject(entry)))
    }
}

/// One page of one of a store's queues, after the role and store checks.
async fn queue(
    ctx: &Context<'_>,
    store: &ID,
    first: Option<i32>,
    after: Option<String>,
    at_least: Option<String>,
    read: QueueRead,
) -> async_graphql::Result<QueuePage> {
    let actor = require_role(ctx, READERS)?;
    let code = location_code(store, "store")?;
    require_store_scope(actor, &code)?;
    wait_at_least(ctx, at_least.as_deref()).await?;
    let queues = &service(ctx)?.queues;
    forward_connection(
        after,
        first,
        |after: Option<QueueCursor>, limit| async move {
            let (entries, _) = read(queues, &code, after, limit);
            Ok(entries
                .into_iter()
                .map(|e| (e.cursor(), FulfillmentOrderObject(e)))
                .collect())
        },
    )
    .await
}
