//! Fulfillment mutations: the store steps, for store staff at their own store and admins
//! anywhere. Each returns `{ fulfillmentOrder, position, errors { field code message } }`:
//! errors for what the caller can fix (nothing changed then), the position for `atLeast`.

use super::types::FulfillmentOrderObject;
use super::{acting_store, fulfillment_id, payload_errors, require_store_scope, service};
use crate::domain::{FulfillmentCommand, FulfillmentError, PickedLine};
use crate::service::new_pickup_code;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{
    internal_error, request_context, require_role, ErrorCode, UserError,
};

/// The result of a fulfillment mutation.
#[derive(SimpleObject, Default)]
pub struct FulfillmentOrderPayload {
    /// The fulfillment order after the mutation; null when it was refused.
    pub fulfillment_order: Option<FulfillmentOrderObject>,
    /// Store position of the write (null when nothing changed); pass as `atLeast`.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// What the picker found for one line.
#[derive(InputObject, Clone)]
pub struct PickLineInput {
    pub line_id: String,
    /// Units in hand.
    pub picked: i64,
    /// Units not found; `picked + short` must be the line's quantity.
    pub short: i64,
}

/// The pick of every line of a fulfillment order, at once.
#[derive(InputObject)]
pub struct PickFulfillmentInput {
    pub id: ID,
    pub lines: Vec<PickLineInput>,
}

#[derive(InputObject)]
pub struct PackFulfillmentInput {
    pub id: ID,
    /// Parcels packed (≥ 1).
    pub packages: i64,
}

#[derive(InputObject)]
pub struct ShipFulfillmentInput {
    pub id: ID,
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(InputObject)]
pub struct MarkReadyForPickupInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct HandOverPickupInput {
    pub id: ID,
    /// The code the customer shows (letters are compared in upper case).
    pub pickup_code: String,
}

#[derive(Default)]
pub struct FulfillmentMutation;

#[Object]
impl FulfillmentMutation {
    /// Store staff (the fulfillment's location) and ADMIN: what was picked and what was short,
    /// for every line. Short units leave this fulfillment order (re-sourced or refunded).
    async fn pick_fulfillment(
        &self,
        ctx: &Context<'_>,
        input: PickFulfillmentInput,
    ) -> async_graphql::Result<FulfillmentOrderPayload> {
        let lines = input
            .lines
            .into_iter()
            .map(|l| PickedLine {
                line_id: l.line_id,
                picked: l.picked,
                short: l.short,
            })
            .collect();
        step(ctx, &input.id, false, FulfillmentCommand::Pick { lines }).await
    }

    /// Store staff (the fulfillment's location) and ADMIN: packed into `packages` parcels.
    async fn pack_fulfillment(
        &self,
        ctx: &Context<'_>,
        input: PackFulfillmentInput,
    ) -> async_graphql::Result<FulfillmentOrderPayload> {
        let command = FulfillmentCommand::Pack {
            packages: input.packages,
        };
        step(ctx, &input.id, false, command).await
    }

    /// Store staff (the fulfillment's location) and ADMIN: handed to the carrier.
    async fn ship_fulfillment(
        &self,
        ctx: &Context<'_>,
        input: ShipFulfillmentInput,
    ) -> async_graphql::Result<FulfillmentOrderPayload> {
        let command = FulfillmentCommand::Ship {
            carrier: input.carrier,
            tracking_number: input.tracking_number,
        };
        step(ctx, &input.id, false, command).await
    }

    /// Store staff (the pickup store) and ADMIN: the order waits at the counter. Issues the
    /// pickup code (the customer is notified with it); the payload shows it to staff.
    async fn mark_ready_for_pickup(
        &self,
        ctx: &Context<'_>,
        input: MarkReadyForPickupInput,
    ) -> async_graphql::Result<FulfillmentOrderPayload> {
        let command = FulfillmentCommand::MarkReady {
            pickup_code: new_pickup_code(),
        };
        step(ctx, &input.id, true, command).await
    }

    /// Store staff (the pickup store) and ADMIN: handed over to the customer, who showed the
    /// pickup code. A wrong code changes nothing (error on `input.pickupCode`).
    async fn hand_over_pickup(
        &self,
        ctx: &Context<'_>,
        input: HandOverPickupInput,
    ) -> async_graphql::Result<FulfillmentOrderPayload> {
        let command = FulfillmentCommand::HandOver {
            pickup_code: input.pickup_code.trim().to_ascii_uppercase(),
        };
        step(ctx, &input.id, true, command).await
    }
}

fn refused(error: UserError) -> FulfillmentOrderPayload {
    FulfillmentOrderPayload {
        errors: vec![error],
        ..Default::default()
    }
}

/// Authorizes one step (role, then the store scope read from the fulfillment order's own
/// stream, so that the view's lag can never widen access) and runs it. `counter_step`: the
/// step happens at the pickup counter (the destination store of a SHIP_TO_STORE order).
async fn step(
    ctx: &Context<'_>,
    id: &ID,
    counter_step: bool,
    command: FulfillmentCommand,
) -> async_graphql::Result<FulfillmentOrderPayload> {
    let actor = require_role(ctx, &[Role::StoreStaff, Role::Admin])?;
    let id = match fulfillment_id(id, &["input", "id"]) {
        Ok(id) => id,
        Err(e) => return Ok(refused(e)),
    };
    let service = service(ctx)?;
    let (state, _) = service
        .handlers
        .load(id)
        .await
        .map_err(|e| internal_error(ctx, "cannot load the fulfillment order", &e))?;
    let Some(created) = &state.created else {
        let error = FulfillmentError::NotCreated;
        return Ok(refused(UserError::new(
            ErrorCode::NotFound,
            &["input", "id"],
            error.to_string(),
        )));
    };
    require_store_scope(
        actor,
        acting_store(
            created.kind,
            &created.location,
            created.destination_store.as_deref(),
            counter_step,
        ),
    )?;
    let metadata = request_context(ctx)?.metadata();
    let accepted = match service.handlers.execute(id, command, metadata).await {
        Ok(accepted) => accepted,
        Err(e) => {
            return Ok(FulfillmentOrderPayload {
                errors: payload_errors(ctx, e)?,
                ..Default::default()
            })
        }
    };
    let entry = service
        .entry_after(id, &accepted.state, accepted.position)
        .await
        .map_err(|e| internal_error(ctx, "cannot read the fulfillment order back", &e))?;
    Ok(FulfillmentOrderPayload {
        fulfillment_order: entry.map(FulfillmentOrderObject),
        position: accepted.position.map(|p| p.to_string()),
        errors: vec![],
    })
}
