//! Order types as GraphQL shows them.

use super::ORDER_TYPE;
use crate::domain::order::{Channel, LineState, Order};
use crate::domain::sourcing::Delivery;
use async_graphql::{Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ichigen_shared::graphql::conventions::{encode_id, node_type, MoneyObject};

/// Where an order stands, in the words retailers use.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "OrderStatus", remote = "crate::domain::order::OrderStatus")]
pub enum OrderStatusGql {
    Placed,
    PartiallyFulfilled,
    Fulfilled,
    ReadyForPickup,
    PickedUp,
    Delivered,
    Cancelled,
    PartiallyCancelled,
}

/// How a line reaches the customer.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeliveryMethod {
    /// Shipped to the customer's address.
    Ship,
    /// Collected at a store (BOPIS).
    Pickup,
    /// Endless aisle: shipped from the network to this store, collected there.
    ShipToStore,
}

/// A shipping address; the coordinates are what sourcing measures distances from.
#[derive(InputObject, Clone, Debug)]
pub struct ShippingAddressInput {
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Geocoded latitude; required for SHIP.
    pub lat: Option<f64>,
    /// Geocoded longitude; required for SHIP.
    pub lon: Option<f64>,
}

#[derive(InputObject, Clone, Debug)]
pub struct DeliveryInput {
    pub method: DeliveryMethod,
    /// SHIP: where to.
    pub address: Option<ShippingAddressInput>,
    /// PICKUP and SHIP_TO_STORE: the store (a Location id).
    pub store: Option<ID>,
}

#[derive(InputObject, Clone, Debug)]
pub struct OrderLineInput {
    pub sku: String,
    pub quantity: i64,
    pub delivery: DeliveryInput,
}

#[derive(InputObject, Clone, Debug)]
pub struct PlaceOrderInput {
    /// Makes the mutation safe to retry: the same key and input return the same order.
    pub idempotency_key: String,
    pub lines: Vec<OrderLineInput>,
    /// Accept the lines that can be sourced and cancel the rest (default: all or nothing).
    #[graphql(default = false)]
    pub allow_partial: bool,
    /// Store staff: the customer the order is for (optional for a walk-in).
    pub customer_id: Option<String>,
}

/// How a line is delivered, as recorded.
#[derive(SimpleObject)]
pub struct DeliveryObject {
    pub method: DeliveryMethod,
    pub store_code: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl From<&Delivery> for DeliveryObject {
    fn from(d: &Delivery) -> Self {
        match d {
            Delivery::Ship { lat, lon } => DeliveryObject {
                method: DeliveryMethod::Ship,
                store_code: None,
                lat: Some(*lat),
                lon: Some(*lon),
            },
            Delivery::Pickup { store } => DeliveryObject {
                method: DeliveryMethod::Pickup,
                store_code: Some(store.clone()),
                lat: None,
                lon: None,
            },
            Delivery::ShipToStore { store, lat, lon } => DeliveryObject {
                method: DeliveryMethod::ShipToStore,
                store_code: Some(store.clone()),
                lat: Some(*lat),
                lon: Some(*lon),
            },
        }
    }
}

/// Units of a line held or fulfilled at one location.
#[derive(SimpleObject)]
pub struct AllocationObject {
    pub location_code: String,
    pub quantity: i64,
    pub fulfilled: i64,
    pub released: i64,
}

pub struct OrderLineObject(pub LineState);

#[Object(name = "OrderLine")]
impl OrderLineObject {
    async fn line_id(&self) -> &str {
        &self.0.line_id
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn quantity(&self) -> i64 {
        self.0.qty
    }
    /// From the catalog at placement.
    async fn unit_price(&self) -> MoneyObject {
        self.0.unit_price.into()
    }
    async fn delivery(&self) -> DeliveryObject {
        (&self.0.delivery).into()
    }
    /// Where its units are held or were fulfilled from.
    async fn allocations(&self) -> Vec<AllocationObject> {
        self.0
            .allocations
            .iter()
            .map(|a| AllocationObject {
                location_code: a.location.clone(),
                quantity: a.qty,
                fulfilled: a.fulfilled,
                released: a.released,
            })
            .collect()
    }
    async fn shipped(&self) -> i64 {
        self.0.shipped
    }
    async fn ready_for_pickup(&self) -> i64 {
        self.0.ready
    }
    async fn picked_up(&self) -> i64 {
        self.0.picked_up
    }
    async fn delivered(&self) -> i64 {
        self.0.delivered
    }
    async fn cancelled(&self) -> i64 {
        self.0.cancelled
    }
}

/// The money side of an order.
#[derive(SimpleObject)]
pub struct PaymentObject {
    pub provider: String,
    pub authorized: MoneyObject,
    pub captured: MoneyObject,
    pub refunded: MoneyObject,
    pub voided: bool,
}

pub struct OrderObject(pub Order);

impl OrderObject {
    /// The order's record in the status view.
    fn record(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Option<crate::projections::order_status::OrderRecord>> {
        let Some(order_id) = self.0.header.as_ref().map(|h| h.order_id) else {
            return Ok(None);
        };
        Ok(super::service(ctx)?.status.get(order_id))
    }
}

#[Object(name = "Order")]
impl OrderObject {
    async fn id(&self) -> ID {
        let key = self
            .0
            .header
            .as_ref()
            .map(|h| h.order_id.to_string())
            .unwrap_or_default();
        encode_id(ORDER_TYPE, &key)
    }
    /// The order's UUID: how the event feed (`order-<rawId>` streams), the integration APIs
    /// and receipts name it, and the order number `findOrdersForReturn(orderNumber:)` takes.
    async fn raw_id(&self) -> String {
        self.0
            .header
            .as_ref()
            .map(|h| h.order_id.to_string())
            .unwrap_or_default()
    }
    async fn status(&self) -> Option<OrderStatusGql> {
        self.0.status().map(Into::into)
    }
    async fn customer_id(&self) -> Option<&str> {
        self.0.header.as_ref()?.customer_id.as_deref()
    }
    /// `WEB`, or the code of the store it was sold in (endless aisle).
    async fn channel(&self) -> Option<String> {
        Some(match &self.0.header.as_ref()?.channel {
            Channel::Web => "WEB".to_string(),
            Channel::Store(code) => code.clone(),
        })
    }
    async fn placed_at(&self) -> Option<DateTime<Utc>> {
        Some(self.0.header.as_ref()?.placed_at)
    }
    /// Every line as ordered, at catalog prices.
    async fn total(&self) -> Option<MoneyObject> {
        Some(self.0.header.as_ref()?.total.into())
    }
    /// What the customer owes from their own means of payment: the units not cancelled, less
    /// the exchange credit (never below zero).
    async fn payable(&self) -> Option<MoneyObject> {
        self.0.payable().map(Into::into)
    }
    /// Exchange credit (the value of returned units) that paid for part or all of the order;
    /// null for an ordinary order. `payment` covers only the rest, and is null when nothing
    /// was left to pay.
    async fn credit(&self) -> Option<MoneyObject> {
        self.0.credit().map(|c| c.amount.into())
    }
    async fn lines(&self) -> Vec<OrderLineObject> {
        self.0.lines.iter().cloned().map(OrderLineObject).collect()
    }
    async fn payment(&self) -> Option<PaymentObject> {
        let p = self.0.payment.as_ref()?;
        Some(PaymentObject {
            provider: p.provider.clone(),
            authorized: p.authorized.into(),
            captured: p.captured.into(),
            refunded: p.refunded.into(),
            voided: p.voided,
        })
    }
    /// The fulfillment orders (per location) with tracking and pickup codes, from the order
    /// status view (empty until it has seen them).
    async fn fulfillments(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<OrderFulfillmentObject>> {
        let Some(record) = self.record(ctx)? else {
            return Ok(vec![]);
        };
        Ok(record
            .fulfillments
            .iter()
            .map(|f| OrderFulfillmentObject {
                id: encode_id(node_type::FULFILLMENT_ORDER, &f.fulfillment_id.to_string()),
                raw_id: f.fulfillment_id.to_string(),
                location_code: f.location.clone(),
                kind: f.kind.as_str().to_string(),
                status: f.status.as_str().to_string(),
                destination_store_code: f.destination_store.clone(),
                carrier: f.carrier.clone(),
                tracking_number: f.tracking_number.clone(),
                pickup_code: f.pickup_code.clone(),
                pickup_expires_at: f.pickup_expires_at,
            })
            .collect())
    }

    /// Every event of the order and of its fulfillment orders, oldest first.
    async fn timeline(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<TimelineEntryObject>> {
        let Some(record) = self.record(ctx)? else {
            return Ok(vec![]);
        };
        Ok(record
            .timeline
            .iter()
            .map(|t| TimelineEntryObject {
                event_type: t.event_type.clone(),
                occurred_at: t.occurred_at,
                summary: t.summary.clone(),
                actor: t.actor.to_compact(),
                position: t.position.to_string(),
            })
            .collect())
    }

    /// The post-purchase messages sent so far.
    async fn updates(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<OrderUpdateObject>> {
        let Some(order_id) = self.0.header.as_ref().map(|h| h.order_id) else {
            return Ok(vec![]);
        };
        Ok(super::service(ctx)?
            .status
            .updates(order_id)
            .iter()
            .map(OrderUpdateObject::from)
            .collect())
    }

    /// Which locations were considered for each line, and why each was chosen or skipped.
    async fn sourcing(&self) -> Json<serde_json::Value> {
        Json(
            self.0
                .header
                .as_ref()
                .and_then(|h| serde_json::to_value(&h.sourcing).ok())
                .unwrap_or(serde_json::Value::Null),
        )
    }
}

/// One fulfillment order of an order, as the customer and staff follow it.
#[derive(SimpleObject)]
pub struct OrderFulfillmentObject {
    /// The fulfillment order's id (type `FulfillmentOrder`).
    pub id: ID,
    /// Its UUID, as the WMS fulfillment API names it (see `FulfillmentOrder.rawId`).
    pub raw_id: String,
    pub location_code: String,
    /// SHIP, PICKUP or SHIP_TO_STORE.
    pub kind: String,
    /// OPEN, PICKED, PACKED, SHIPPED, DELIVERED, READY_FOR_PICKUP, PICKED_UP, EXPIRED, CANCELLED.
    pub status: String,
    pub destination_store_code: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// Shown to the customer (and staff) once the order waits at the counter.
    pub pickup_code: Option<String>,
    pub pickup_expires_at: Option<DateTime<Utc>>,
}

/// One event in an order's life.
#[derive(SimpleObject)]
pub struct TimelineEntryObject {
    /// Versioned event type, e.g. `OrderShipped.v1`.
    #[graphql(name = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub summary: String,
    /// `ROLE:subject`.
    pub actor: String,
    /// Store position, opaque.
    pub position: String,
}

/// A post-purchase message (what retailers email or push after a purchase).
#[derive(SimpleObject, Clone)]
pub struct OrderUpdateObject {
    pub order_id: ID,
    /// ORDER_RECEIVED, CONFIRMED, SHIPPED, READY_FOR_PICKUP, PICKED_UP, DELIVERED, CANCELLED,
    /// REFUNDED.
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub position: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub store_code: Option<String>,
    pub pickup_code: Option<String>,
    pub pickup_expires_at: Option<DateTime<Utc>>,
    /// Cancelled value, refunded amount or confirmed amount.
    pub amount: Option<MoneyObject>,
    pub reason: Option<String>,
}

impl From<&crate::projections::order_status::OrderUpdate> for OrderUpdateObject {
    fn from(u: &crate::projections::order_status::OrderUpdate) -> Self {
        use crate::projections::order_status::OrderUpdateKind as K;
        let mut o = OrderUpdateObject {
            order_id: encode_id(ORDER_TYPE, &u.order_id.to_string()),
            kind: u.kind.as_str().to_string(),
            occurred_at: u.occurred_at,
            position: u.position.to_string(),
            carrier: None,
            tracking_number: None,
            store_code: None,
            pickup_code: None,
            pickup_expires_at: None,
            amount: None,
            reason: None,
        };
        match &u.kind {
            K::OrderReceived | K::Delivered { .. } => {}
            K::Confirmed { amount } | K::Refunded { amount } => o.amount = Some((*amount).into()),
            K::Shipped {
                carrier, tracking, ..
            } => {
                o.carrier = Some(carrier.clone());
                o.tracking_number = tracking.clone();
            }
            K::ReadyForPickup {
                store,
                pickup_code,
                expires_at,
                ..
            } => {
                o.store_code = Some(store.clone());
                o.pickup_code = pickup_code.clone();
                o.pickup_expires_at = *expires_at;
            }
            K::PickedUp { store, .. } => o.store_code = Some(store.clone()),
            K::Cancelled { reason, amount, .. } => {
                o.reason = Some(reason.clone());
                o.amount = Some((*amount).into());
            }
        }
        o
    }
}

/// A quantity of one order line (to cancel).
#[derive(InputObject, Clone, Debug)]
pub struct LineQuantityInput {
    pub line_id: String,
    pub quantity: i64,
}

#[derive(InputObject, Clone, Debug)]
pub struct CancelOrderInput {
    pub order_id: ID,
    /// The lines and quantities to cancel; omit to cancel everything not yet shipped.
    pub lines: Option<Vec<LineQuantityInput>>,
    /// Why, e.g. `CUSTOMER_REQUEST`.
    #[graphql(default_with = "\"CUSTOMER_REQUEST\".to_string()")]
    pub reason: String,
}
