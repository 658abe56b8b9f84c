//! Inventory mutations: locations (ADMIN) and store-level stock corrections (staff at their own
//! store, admins anywhere). Each returns a payload with `errors { field code message }` for
//! what the caller can fix, and the store `position` the write reached.

use super::types::{DefineLocationInput, LocationObject, StockLevelObject, UpdateLocationInput};
use super::{
    location_code, payload_errors, request_context_metadata, require_store_scope, service,
};
use crate::domain::{LocationCommand, LocationSpec, StockCommand};
use crate::handlers::locations::LocationAccepted;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use ichigen_shared::auth::Role;
use ichigen_shared::graphql::conventions::{require_role, UserError};

/// The result of a location mutation.
#[derive(SimpleObject, Default)]
pub struct LocationPayload {
    /// The location after the mutation; null when it was refused.
    pub location: Option<LocationObject>,
    /// Store position of the write (null when nothing changed); pass as `atLeast`.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// The result of a stock mutation.
#[derive(SimpleObject, Default)]
pub struct StockPayload {
    /// The SKU's buckets at the location after the mutation; null when it was refused.
    pub stock_level: Option<StockLevelObject>,
    /// Store position of the write (null when nothing changed); pass as `atLeast`.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// A correction of on hand by a signed delta, with its reason.
#[derive(InputObject)]
pub struct AdjustStockInput {
    pub location: ID,
    pub sku: String,
    /// Non-zero; negative takes stock away (never below what is reserved).
    pub delta: i64,
    /// Why, e.g. `DAMAGED`, `FOUND`, `THEFT`, `DATA_FIX`.
    pub reason_code: String,
    /// The document behind it.
    pub reference: Option<String>,
}

/// An absolute count of the shelf.
#[derive(InputObject)]
pub struct CountStockInput {
    pub location: ID,
    pub sku: String,
    /// What is physically there (≥ 0). A count below what is reserved records the shortfall.
    pub counted: i64,
    /// The count sheet or task behind it (shown as the movement's `reference`).
    pub reference: Option<String>,
}

/// The buffer kept back from promising.
#[derive(InputObject)]
pub struct SetSafetyStockInput {
    pub location: ID,
    pub sku: String,
    /// ≥ 0.
    pub quantity: i64,
}

#[derive(Default)]
pub struct InventoryMutation;

#[Object]
impl InventoryMutation {
    /// ADMIN: a new DC or store.
    async fn define_location(
        &self,
        ctx: &Context<'_>,
        input: DefineLocationInput,
    ) -> async_graphql::Result<LocationPayload> {
        require_role(ctx, &[Role::Admin])?;
        let spec: LocationSpec = input.into();
        location_command(ctx, LocationCommand::Define(spec)).await
    }

    /// ADMIN: change what describes a location (only the fields given).
    async fn update_location(
        &self,
        ctx: &Context<'_>,
        input: UpdateLocationInput,
    ) -> async_graphql::Result<LocationPayload> {
        require_role(ctx, &[Role::Admin])?;
        let code = match location_code(&input.id, "id") {
            Ok(code) => code,
            Err(e) => return Ok(refused(e.under(&["input"]))),
        };
        let patch = input.patch();
        location_command(ctx, LocationCommand::Update { code, patch }).await
    }

    /// ADMIN: the location stops taking movements and reservations (history stays).
    async fn deactivate_location(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<LocationPayload> {
        require_role(ctx, &[Role::Admin])?;
        match location_code(&id, "id") {
            Ok(code) => location_command(ctx, LocationCommand::Deactivate { code }).await,
            Err(e) => Ok(refused(e)),
        }
    }

    /// ADMIN: the location takes movements and reservations again.
    async fn activate_location(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<LocationPayload> {
        require_role(ctx, &[Role::Admin])?;
        match location_code(&id, "id") {
            Ok(code) => location_command(ctx, LocationCommand::Activate { code }).await,
            Err(e) => Ok(refused(e)),
        }
    }

    /// Store staff (own store) and ADMIN: correct on hand by a delta with a reason code.
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        input: AdjustStockInput,
    ) -> async_graphql::Result<StockPayload> {
        let command = StockCommand::Adjust {
            delta: input.delta,
            reason_code: input.reason_code,
            reference: input.reference,
        };
        stock_command(ctx, &input.location, &input.sku, command).await
    }

    /// Store staff (own store) and ADMIN: record a cycle count (absolute).
    async fn count_stock(
        &self,
        ctx: &Context<'_>,
        input: CountStockInput,
    ) -> async_graphql::Result<StockPayload> {
        let command = StockCommand::CountCycle {
            counted: input.counted,
            reference: input.reference,
        };
        stock_command(ctx, &input.location, &input.sku, command).await
    }

    /// Store staff (own store) and ADMIN: set the safety stock kept back from promising.
    async fn set_safety_stock(
        &self,
        ctx: &Context<'_>,
        input: SetSafetyStockInput,
    ) -> async_graphql::Result<StockPayload> {
        let command = StockCommand::SetSafetyStock {
            qty: input.quantity,
        };
        stock_command(ctx, &input.location, &input.sku, command).await
    }
}

fn refused(error: UserError) -> LocationPayload {
    LocationPayload {
        errors: vec![error],
        ..Default::default()
    }
}

async fn location_command(
    ctx: &Context<'_>,
    command: LocationCommand,
) -> async_graphql::Result<LocationPayload> {
    let metadata = request_context_metadata(ctx)?;
    match service(ctx)?.locations.execute(command, metadata).await {
        Ok(LocationAccepted {
            location, position, ..
        }) => Ok(LocationPayload {
            location: Some(LocationObject(location)),
            position: position.map(|p| p.to_string()),
            errors: vec![],
        }),
        Err(e) => Ok(LocationPayload {
            errors: payload_errors(ctx, e)?,
            ..Default::default()
        }),
    }
}

/// Authorizes (role, then store scope) and runs one stock command.
async fn stock_command(
    ctx: &Context<'_>,
    location: &ID,
    sku: &str,
    command: StockCommand,
) -> async_graphql::Result<StockPayload> {
    let actor = require_role(ctx, &[Role::StoreStaff, Role::Admin])?;
    let code = match location_code(location, "location") {
        Ok(code) => code,
        Err(e) => {
            return Ok(StockPayload {
                errors: vec![e.under(&["input"])],
                ..Default::default()
            })
        }
    };
    require_store_scope(actor, &code)?;
    let metadata = request_context_metadata(ctx)?;
    match service(ctx)?
        .stock
        .execute(sku, &code, vec![command], metadata)
        .await
    {
        Ok(accepted) => Ok(StockPayload {
            stock_level: Some(StockLevelObject::new(sku, &code, accepted.levels)),
            position: accepted.position.map(|p| p.to_string()),
            errors: vec![],
        }),
        Err(e) => Ok(StockPayload {
            errors: payload_errors(ctx, e)?,
            ..Default::default()
        }),
    }
}
