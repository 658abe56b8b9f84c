//! `placeOrder`.

use super::service;
use super::types::{
    CancelOrderInput, DeliveryMethod, OrderLineInput, OrderObject, PlaceOrderInput,
};
use crate::domain::order::Channel;
use crate::domain::order::{LineQty, OrderError};
use crate::domain::sourcing::{Delivery, DeliveryProblem, SourcingError};
use crate::handlers::cancel::CancelError;
use crate::handlers::order::{LineRequest, PlaceError, PlaceRequest};
use crate::ports::InventoryPortError;
use async_graphql::{Context, Object, SimpleObject};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::graphql::conventions::{
    decode_id, gql_error, internal_error, request_context, require_role, ErrorCode, UserError,
};

/// Longest idempotency key accepted.
const MAX_KEY: usize = 255;

#[derive(SimpleObject, Default)]
pub struct PlaceOrderPayload {
    /// The order (also when the request was a retry of one already placed).
    pub order: Option<OrderObject>,
    /// Store position of the placement (null for a retry); pass as `atLeast` to reads.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(Default)]
pub struct PlaceMutation;

#[derive(Default)]
pub struct CancelMutation;

/// The order service's mutations.
#[derive(async_graphql::MergedObject, Default)]
pub struct OrderMutation(PlaceMutation, CancelMutation);

#[Object]
impl PlaceMutation {
    /// A customer orders from the storefront, or store staff sell from the network (endless
    /// aisle: SHIP to the customer, or SHIP_TO_STORE to their store). Prices come from the
    /// catalog; every line is sourced and reserved, and the total authorized, or nothing
    /// happens. Retrying with the same `idempotencyKey` and input returns the same order.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceOrderInput,
    ) -> async_graphql::Result<PlaceOrderPayload> {
        let actor = require_role(ctx, &[Role::Customer, Role::StoreStaff])?.clone();
        let refused = |errors: Vec<UserError>| {
            Ok(PlaceOrderPayload {
                errors,
                ..Default::default()
            })
        };
        let key = input.idempotency_key.trim();
        if key.is_empty() || key.len() > MAX_KEY {
            return refused(vec![UserError::invalid(
                &["input", "idempotencyKey"],
                format!("must be 1 to {MAX_KEY} characters"),
            )]);
        }
        let (customer_id, channel) = match actor.role {
            Role::StoreStaff => {
                let store = actor.store_id.clone().unwrap_or_default();
                (input.customer_id.clone(), Channel::Store(store))
            }
            _ => {
                if input
                    .customer_id
                    .as_ref()
                    .is_some_and(|c| *c != actor.subject)
                {
                    return Err(gql_error(
                        ErrorCode::Forbidden,
                        "customers order for themselves only",
                    ));
                }
                (Some(actor.subject.clone()), Channel::Web)
            }
        };
        let svc = service(ctx)?;
        let mut lines = Vec::with_capacity(input.lines.len());
        let mut errors = Vec::new();
        for (i, line) in input.lines.iter().enumerate() {
            match delivery(ctx, &actor, i, line).await {
                // As given: a SKU with surrounding whitespace or a line break is refused by
                // the one SKU rule (naming the line), never silently trimmed into another.
                Ok(delivery) => lines.push(LineRequest {
                    sku: line.sku.clone(),
                    qty: line.quantity,
                    delivery,
                }),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return refused(errors);
        }
        let request = PlaceRequest {
            customer_id,
            channel,
            lines,
            allow_partial: input.allow_partial,
            idempotency_key: key.to_string(),
            // Exchange credit is set only in process by the returns service.
            credit: None,
        };
        let metadata = request_context(ctx)?.metadata();
        match svc.orders.place(request, metadata).await {
            Ok(placed) => Ok(PlaceOrderPayload {
                order: Some(OrderObject(placed.order)),
                position: placed.position.map(|p| p.to_string()),
                errors: vec![],
            }),
            Err(e) => match place_errors(e) {
                Ok(errors) => refused(errors),
                Err(e) => Err(internal_error(ctx, "the order could not be placed", &e)),
            },
        }
    }
}

#[derive(SimpleObject, Default)]
pub struct CancelOrderPayload {
    pub order: Option<OrderObject>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[Object]
impl CancelMutation {
    /// Cancels a whole order or lines/quantities of it that have not shipped or been picked
    /// up: its customer, CS agents and admins. Each location holding units decides first:
    /// units it already shipped or handed over are not cancelled and come back in `errors`
    /// (`CONFLICT`, with the line's field), next to the order as it now stands; when no unit
    /// could be cancelled, nothing changed and `order` is null. Stock is released and the
    /// payment voided or refunded by the order's processes.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        input: CancelOrderInput,
    ) -> async_graphql::Result<CancelOrderPayload> {
        let actor = require_role(ctx, &[Role::Customer, Role::CsAgent, Role::Admin])?.clone();
        let refused = |e: UserError| {
            Ok(CancelOrderPayload {
                errors: vec![e],
                ..Default::default()
            })
        };
        let order_id = match decode_id(super::ORDER_TYPE, &input.order_id)
            .map_err(|e| e.at(&["input", "orderId"]))
            .and_then(|k| {
                uuid::Uuid::parse_str(&k)
                    .map_err(|_| UserError::invalid(&["input", "orderId"], "not an order id"))
            }) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        let svc = service(ctx)?;
        let (order, _) = svc
            .orders
            .load(order_id)
            .await
            .map_err(|e| internal_error(ctx, "cannot read the order", &e))?;
        if !super::may_read(&actor, &order) {
            return refused(UserError::new(
                ErrorCode::NotFound,
                &["input", "orderId"],
                "no such order",
            ));
        }
        let lines = input.lines.map(|lines| {
            lines
                .into_iter()
                .map(|l| LineQty {
                    line_id: l.line_id,
                    qty: l.quantity,
                })
                .collect()
        });
        let metadata = request_context(ctx)?.metadata();
        let refusal = |e: &OrderError| {
            UserError::refusal(
                match e.code() {
                    "NOT_FOUND" => ErrorCode::NotFound,
                    "CONFLICT" => ErrorCode::Conflict,
                    _ => ErrorCode::InvalidInput,
                },
                e.field(),
                &[("qty", "quantity")],
                e.to_string(),
            )
        };
        match svc
            .orders
            .cancel(order_id, lines, &input.reason, metadata)
            .await
        {
            Ok(done) => Ok(CancelOrderPayload {
                order: Some(OrderObject(done.executed.order)),
                position: done.executed.position.map(|p| p.to_string()),
                errors: done.not_cancelled.iter().map(refusal).collect(),
            }),
            Err(CancelError::Order(e)) => refused(refusal(&e)),
            Err(e) => Err(internal_error(ctx, "the order could not be cancelled", &e)),
        }
    }
}

/// The delivery of line `i`, checked against who is ordering.
async fn delivery(
    ctx: &Context<'_>,
    actor: &Actor,
    i: usize,
    line: &OrderLineInput,
) -> Result<Delivery, UserError> {
    let index = i.to_string();
    let at = |rest: &[&str]| {
        let mut path = vec!["input", "lines", index.as_str(), "delivery"];
        path.extend_from_slice(rest);
        path.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let invalid = |rest: &[&str], message: &str| {
        let path = at(rest);
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        UserError::invalid(&refs, message)
    };
    let store = |id: &Option<async_graphql::ID>| -> Result<String, UserError> {
        let id = id
            .as_ref()
            .ok_or_else(|| invalid(&["store"], "this delivery method needs a store"))?;
        decode_id("Location", id).map_err(|e| invalid(&["store"], &e.message))
    };
    match line.delivery.method {
        DeliveryMethod::Ship => {
            let address = line
                .delivery
                .address
                .as_ref()
                .ok_or_else(|| invalid(&["address"], "SHIP needs an address"))?;
            let (Some(lat), Some(lon)) = (address.lat, address.lon) else {
                return Err(invalid(
                    &["address", "lat"],
                    "SHIP needs the address's coordinates (lat and lon)",
                ));
            };
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                return Err(invalid(&["address", "lat"], "must be between -90 and 90"));
            }
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                return Err(invalid(&["address", "lon"], "must be between -180 and 180"));
            }
            Ok(Delivery::Ship { lat, lon })
        }
        DeliveryMethod::Pickup => Ok(Delivery::Pickup {
            store: store(&line.delivery.store)?,
        }),
        DeliveryMethod::ShipToStore => {
            let code = store(&line.delivery.store)?;
            if actor.role != Role::StoreStaff || actor.store_id.as_deref() != Some(&code) {
                return Err(UserError::new(
                    ErrorCode::Forbidden,
                    &at(&["store"])
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                    "SHIP_TO_STORE is for store staff ordering to their own store",
                ));
            }
            let svc = service(ctx).map_err(|e| invalid(&["store"], &e.message))?;
            let located = svc
                .orders
                .inventory()
                .candidates(&[])
                .await
                .ok()
                .and_then(|c| c.into_iter().find(|c| c.code == code));
            match located {
                Some(c) => Ok(Delivery::ShipToStore {
                    store: code,
                    lat: c.lat,
                    lon: c.lon,
                }),
                None => Err(invalid(&["store"], "unknown or inactive store")),
            }
        }
    }
}

/// Refusals as payload errors (`Ok`); faults as `Err` (top-level `INTERNAL`).
fn place_errors(e: PlaceError) -> Result<Vec<UserError>, PlaceError> {
    let line_path = |line_id: &str, rest: &[&str]| -> Vec<String> {
        let index = line_id
            .strip_prefix('L')
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(line_id.to_string(), |n| n.saturating_sub(1).to_string());
        let mut path = vec!["input".to_string(), "lines".to_string(), index];
        path.extend(rest.iter().map(|s| s.to_string()));
        path
    };
    let err = |code: ErrorCode, field: Vec<String>, message: String| UserError {
        field,
        code,
        message,
    };
    Ok(match e {
        PlaceError::Order(e) => {
            let code = match e.code() {
                "NOT_FOUND" => ErrorCode::NotFound,
                "CONFLICT" => ErrorCode::Conflict,
                "INSUFFICIENT_STOCK" => ErrorCode::InsufficientStock,
                _ => ErrorCode::InvalidInput,
            };
            // The domain says `qty`; the GraphQL input says `quantity`.
            vec![UserError::refusal(
                code,
                e.field(),
                &[("qty", "quantity")],
                e.to_string(),
            )]
        }
        PlaceError::Catalog { index, sku, reason } => vec![err(
            ErrorCode::NotFound,
            vec![
                "input".into(),
                "lines".into(),
                index.to_string(),
                "sku".into(),
            ],
            format!("SKU {sku} is {reason}"),
        )],
        PlaceError::Sourcing(SourcingError::Shortage { lines }) => lines
            .iter()
            .map(|l| {
                if l.full_locations.is_empty() {
                    err(
                        ErrorCode::InsufficientStock,
                        line_path(&l.line_id, &["quantity"]),
                        format!(
                            "only {} of {} {} can be sourced",
                            l.sourceable, l.requested, l.sku
                        ),
                    )
                } else {
                    // The stock is there, but where it is takes no more orders today.
                    err(
                        ErrorCode::CapacityExhausted,
                        line_path(&l.line_id, &[]),
                        format!(
                            "only {} of {} {} can be sourced: {} take no more orders today",
                            l.sourceable,
                            l.requested,
                            l.sku,
                            l.full_locations.join(", ")
                        ),
                    )
                }
            })
            .collect(),
        PlaceError::Sourcing(SourcingError::InvalidDelivery {
            line_id,
            reason: DeliveryProblem::NoPickupCapacity,
        }) => vec![err(
            ErrorCode::CapacityExhausted,
            line_path(&line_id, &["delivery", "store"]),
            DeliveryProblem::NoPickupCapacity.as_str().to_string(),
        )],
        PlaceError::Sourcing(SourcingError::InvalidDelivery { line_id, reason }) => vec![err(
            ErrorCode::InvalidInput,
            line_path(&line_id, &["delivery", "store"]),
            reason.as_str().to_string(),
        )],
        PlaceError::Inventory(InventoryPortError::CapacityExhausted(locations)) => vec![err(
            ErrorCode::CapacityExhausted,
            vec!["input".into(), "lines".into()],
            format!(
                "{} took their last orders for today while this order was placed; try again",
                locations.join(", ")
            ),
        )],
        PlaceError::Sourcing(SourcingError::InvalidLine { line_id, reason }) => vec![err(
            ErrorCode::InvalidInput,
            line_path(&line_id, &["quantity"]),
            reason.to_string(),
        )],
        PlaceError::Inventory(InventoryPortError::Refused(_)) => vec![err(
            ErrorCode::InsufficientStock,
            vec!["input".into(), "lines".into()],
            "the stock was taken by other orders; try again".into(),
        )],
        PlaceError::Payment(e) if e.code() == "PAYMENT_DECLINED" => vec![err(
            ErrorCode::PaymentDeclined,
            vec!["input".into()],
            e.to_string(),
        )],
        other => return Err(other),
    })
}
