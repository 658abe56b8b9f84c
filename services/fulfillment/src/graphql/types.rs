//! The fulfillment's GraphQL object types. Domain types are mirrored here (not annotated in
//! `domain`) so that the domain stays free of API concerns.

use crate::projections::queues::QueueEntry;
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::encode_id;
use ichigen_shared::graphql::conventions::node_type;
use ichigen_shared::graphql::RequestContext;

/// GraphQL type name of a fulfillment order: the type part of its global id.
pub const FULFILLMENT_ORDER_TYPE: &str = node_type::FULFILLMENT_ORDER;
/// The order service's type name, so that `orderId` can be passed to `order(id:)`.
pub const ORDER_TYPE: &str = node_type::ORDER;
/// The inventory service's type name of a location (its `LOCATION_TYPE`): location ids here
/// are the ones `location(id:)` and the inventory queries take.
pub const LOCATION_TYPE: &str = node_type::LOCATION;

/// What kind of work the location does.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FulfillmentKind", remote = "crate::domain::FulfillmentKind")]
pub enum FulfillmentKindGql {
    /// Pick, pack, ship to the customer (DC or ship-from-store).
    Ship,
    /// Pick, then the customer collects at this store (BOPIS).
    Pickup,
    /// Pick, pack, ship to a store where the customer collects.
    ShipToStore,
}

/// Where a fulfillment order stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(
    name = "FulfillmentStatus",
    remote = "crate::domain::FulfillmentStatus"
)]
pub enum FulfillmentStatusGql {
    /// Created, nothing picked yet.
    Open,
    Picked,
    Packed,
    Shipped,
    Delivered,
    /// Waiting at the store's counter with a pickup code.
    ReadyForPickup,
    PickedUp,
    /// Not collected within the store's hold days.
    Expired,
    /// Nothing left to do: every unit was cancelled or short-picked.
    Cancelled,
}

/// One order line's part of the work.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "FulfillmentLine")]
pub struct FulfillmentLineObject {
    /// The order line.
    pub line_id: String,
    pub sku: String,
    /// Units still to fulfil here (after short picks and cancellations).
    pub quantity: i64,
    pub picked: i64,
    /// Units the picker did not find (re-sourced or refunded by the order service).
    pub short: i64,
    pub cancelled: i64,
}

/// The work one location does for one order.
pub struct FulfillmentOrderObject(pub QueueEntry);

#[Object(name = "FulfillmentOrder")]
impl FulfillmentOrderObject {
    async fn id(&self) -> ID {
        encode_id(FULFILLMENT_ORDER_TYPE, &self.0.fulfillment_id.to_string())
    }

    /// The fulfillment order's UUID: what the WMS fulfillment API's paths
    /// (`/api/fulfillment/v1/fulfillments/{id}/…`), its task list and the event feed
    /// (`fulfillment-<rawId>` streams) name it by. The API takes `id` too.
    async fn raw_id(&self) -> String {
        self.0.fulfillment_id.to_string()
    }

    /// The order's id (pass it to `order(id:)`).
    async fn order_id(&self) -> ID {
        encode_id(ORDER_TYPE, &self.0.order_id.to_string())
    }

    /// The location doing the work, as an inventory location id.
    async fn location_id(&self) -> ID {
        encode_id(LOCATION_TYPE, &self.0.location)
    }

    /// The location's code (`TKY-DC1`, `STORE-SHIBUYA`).
    async fn location_code(&self) -> &str {
        &self.0.location
    }

    async fn kind(&self) -> FulfillmentKindGql {
        self.0.kind.into()
    }

    async fn status(&self) -> FulfillmentStatusGql {
        self.0.status.into()
    }

    /// SHIP_TO_STORE: the store the customer collects at (its code).
    async fn destination_store_code(&self) -> Option<&str> {
        self.0.destination_store.as_deref()
    }

    /// SHIP_TO_STORE: the store the customer collects at, as a location id.
    async fn destination_store_id(&self) -> Option<ID> {
        self.0
            .destination_store
            .as_deref()
            .map(|s| encode_id(LOCATION_TYPE, s))
    }

    async fn lines(&self) -> Vec<FulfillmentLineObject> {
        self.0
            .lines
            .iter()
            .map(|l| FulfillmentLineObject {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                quantity: l.qty,
                picked: l.picked,
                short: l.short,
                cancelled: l.cancelled,
            })
            .collect()
    }

    async fn carrier(&self) -> Option<&str> {
        self.0.carrier.as_deref()
    }

    async fn tracking_number(&self) -> Option<&str> {
        self.0.tracking_number.as_deref()
    }

    /// The code the customer shows at the counter. Only store staff and admins see it: it is
    /// what hands the goods over, so a CS agent's screen (or a leaked one) must not carry it.
    async fn pickup_code(&self, ctx: &Context<'_>) -> Option<&str> {
        let role = ctx.data_opt::<RequestContext>().map(|r| r.actor.role);
        match role {
            Some(Role::StoreStaff | Role::Admin) => self.0.pickup_code.as_deref(),
            _ => None,
        }
    }

    /// When an uncollected pickup expires (stock released, payment voided): local midnight at
    /// the collecting store after the last of its `pickupHoldDays`, counted in the store's
    /// `timeZone` from the day after the pickup was made ready.
    async fn pickup_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.pickup_expires_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When its last step happened.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
