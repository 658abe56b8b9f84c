//! The order part of the GraphQL schema: `placeOrder` (storefront customers and store staff for
//! endless aisle), `order(id)` with its status, lines, payment and sourcing explanation.
//!
//! Who sees an order: its customer, the staff of a store the order involves (placed there,
//! sourced there, or picked up there), CS agents and admins. Anyone else gets `NOT_FOUND`, so
//! that order ids cannot be probed.

mod mutation;
mod query;
mod subscription;
pub mod types;

pub use mutation::OrderMutation;
pub use query::OrderQuery;
pub use subscription::OrderSubscription;

use crate::domain::order::{Channel, Order};
use crate::domain::sourcing::Delivery;
use crate::OrderService;
use async_graphql::Context;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::graphql::conventions::{gql_error, ErrorCode};

/// GraphQL type name of an order: the type part of its global id.
pub const ORDER_TYPE: &str = ichigen_shared::graphql::conventions::node_type::ORDER;

pub(crate) fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a OrderService> {
    ctx.data_opt::<OrderService>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "the schema was built without the order service (gateway wiring bug)",
        )
    })
}

/// Whether `actor` may read `order`.
pub(crate) fn may_read(actor: &Actor, order: &Order) -> bool {
    let Some(header) = &order.header else {
        return false;
    };
    match actor.role {
        Role::CsAgent | Role::Admin | Role::System => true,
        Role::Customer => header.customer_id.as_deref() == Some(actor.subject.as_str()),
        Role::StoreStaff => {
            let Some(store) = actor.store_id.as_deref() else {
                return false;
            };
            header.channel == Channel::Store(store.to_string())
                || order.lines.iter().any(|l| {
                    l.allocations.iter().any(|a| a.location == store)
                        || matches!(&l.delivery,
                            Delivery::Pickup { store: s } | Delivery::ShipToStore { store: s, .. }
                            if s == store)
                })
        }
        Role::WmsIntegration | Role::Anonymous => false,
    }
}
