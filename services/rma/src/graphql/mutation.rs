//! Returns mutations. Each returns `{ return, position, errors { field code message } }`:
//! errors for what the caller can fix (nothing changed then), the position for `atLeast`.

use super::query::acting_location;
use super::types::{ReturnObject, ReturnPolicyObject};
use super::{may_read, order_id, payload_errors, require_store_scope, return_id, service};
use crate::domain::{
    ConditionGradeSpec, Disposition, PolicyCommand, ReceivedLine, RequestedLine, ReturnReasonSpec,
    RmaCommand,
};
use crate::handlers::RmaExecuted;
use crate::ports::{ExchangeDelivery, ExchangeLine};
use crate::service::{CounterReturn, ServiceError};
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::graphql::conventions::{
    gql_error, internal_error, request_context, require_role, ErrorCode, MoneyInput, UserError,
};
use rust_decimal::Decimal;
use uuid::Uuid;

/// The result of a return mutation.
#[derive(SimpleObject, Default)]
pub struct ReturnPayload {
    /// The return after the mutation; null when it was refused.
    #[graphql(name = "return")]
    pub rma: Option<ReturnObject>,
    /// Store position of the write (null when nothing changed); pass as `atLeast`.
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// The result of a policy mutation.
#[derive(SimpleObject, Default)]
pub struct ReturnPolicyPayload {
    pub policy: Option<ReturnPolicyObject>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

/// Units of one order line to return, for one reason.
#[derive(InputObject, Clone)]
pub struct ReturnLineInput {
    pub order_line_id: String,
    pub quantity: i64,
    /// A reason code of the return policy (`returnPolicy.reasons`).
    pub reason_code: String,
}

#[derive(InputObject)]
pub struct RequestReturnInput {
    /// The order's id.
    pub order_id: ID,
    pub lines: Vec<ReturnLineInput>,
    /// The customer's comment.
    #[graphql(default)]
    pub note: String,
    /// The same key again answers the same return (a retry creates nothing new).
    pub idempotency_key: String,
}

#[derive(InputObject)]
pub struct AcceptCounterReturnInput {
    pub order_id: ID,
    pub lines: Vec<ReturnLineInput>,
    #[graphql(default)]
    pub note: String,
    pub idempotency_key: String,
    /// The receiving store; staff receive at their own store (leave it out), admins name it.
    pub location: Option<ID>,
}

#[derive(InputObject)]
pub struct DecideReturnInput {
    pub id: ID,
    /// What the customer is told (required to reject).
    #[graphql(default)]
    pub note: String,
}

/// Units of a return line that arrived.
#[derive(InputObject, Clone)]
pub struct ReceivedLineInput {
    /// The return line (`R1`, …).
    pub line_id: String,
    pub quantity: i64,
}

#[derive(InputObject)]
pub struct ReceiveReturnInput {
    pub id: ID,
    /// Unique per return: the same receipt again changes nothing.
    pub receipt_id: String,
    /// Staff receive at their own store (leave it out); others name the location.
    pub location: Option<ID>,
    pub lines: Vec<ReceivedLineInput>,
}

#[derive(InputObject)]
pub struct GradeReturnUnitInput {
    pub id: ID,
    /// The unit (`R1-1`, …).
    pub unit_id: String,
    /// A grade code of the return policy (`returnPolicy.grades`).
    pub grade_code: String,
}

#[derive(InputObject)]
pub struct ReturnIdInput {
    pub id: ID,
}

/// How a replacement line reaches the customer.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExchangeDeliveryMethod {
    /// Shipped to the address at `latitude`/`longitude`.
    Ship,
    /// Collected at `store`.
    Pickup,
}

#[derive(InputObject, Clone)]
pub struct ExchangeLineInput {
    pub sku: String,
    pub quantity: i64,
    pub method: ExchangeDeliveryMethod,
    /// PICKUP: the store's location id.
    pub store: Option<ID>,
    /// SHIP: the geocoded address.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(InputObject)]
pub struct ExchangeReturnInput {
    pub id: ID,
    pub lines: Vec<ExchangeLineInput>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DispositionInput {
    Restock,
    Resale,
    Dispose,
    ReturnToVendor,
}

#[derive(InputObject)]
pub struct DefineReturnReasonInput {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub window_days: i64,
    pub inspection_required: bool,
    /// Decimal string, 0–100.
    pub restocking_fee_percent: String,
    pub customer_pays_shipping: bool,
    pub return_shipping_fee: MoneyInput,
    pub auto_approve: bool,
}

#[derive(InputObject)]
pub struct DefineConditionGradeInput {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub disposition: DispositionInput,
    /// RESALE only: decimal string, 0 < factor ≤ 1.
    pub price_factor: Option<String>,
}

#[derive(InputObject)]
pub struct RetirePolicyCodeInput {
    pub code: String,
}

#[derive(Default)]
pub struct RmaMutation;

#[Object]
impl RmaMutation {
    /// A customer (their own order) or a CS agent asks to return delivered or picked-up
    /// units. Approved at once when every reason auto-approves.
    async fn request_return(
        &self,
        ctx: &Context<'_>,
        input: RequestReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::Customer, Role::CsAgent, Role::Admin])?;
        let order = match order_id(&input.order_id, &["input", "orderId"]) {
            Ok(id) => id,
            Err(e) => return Ok(refused(e)),
        };
        let metadata = request_context(ctx)?.metadata();
        let result = service(ctx)?
            .request(
                actor,
                order,
                requested_lines(input.lines),
                input.note,
                &input.idempotency_key,
                metadata,
            )
            .await;
        respond(ctx, result)
    }

    /// Store staff take a return at their counter (an online order too): requested,
    /// approved and every unit received at their store, in one step. Grade the units next.
    async fn accept_counter_return(
        &self,
        ctx: &Context<'_>,
        input: AcceptCounterReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::StoreStaff, Role::Admin])?;
        let store = match acting_location(actor, input.location.as_ref(), &["input", "location"])? {
            Ok(store) => store,
            Err(e) => return Ok(refused(e)),
        };
        let order = match order_id(&input.order_id, &["input", "orderId"]) {
            Ok(id) => id,
            Err(e) => return Ok(refused(e)),
        };
        let metadata = request_context(ctx)?.metadata();
        let counter = CounterReturn {
            order_id: order,
            lines: requested_lines(input.lines),
            note: input.note,
            idempotency_key: input.idempotency_key,
        };
        let result = service(ctx)?
            .accept_at_counter(actor, &store, counter, metadata)
            .await;
        respond(ctx, result)
    }

    /// CS agents and admins approve a requested return.
    async fn approve_return(
        &self,
        ctx: &Context<'_>,
        input: DecideReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let command = RmaCommand::Approve {
            note: input.note,
            by: actor.subject.clone(),
        };
        command_on(ctx, &input.id, command).await
    }

    /// CS agents and admins reject a requested return; `note` (what the customer is told) is
    /// required.
    async fn reject_return(
        &self,
        ctx: &Context<'_>,
        input: DecideReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let command = RmaCommand::Reject {
            note: input.note,
            by: actor.subject.clone(),
        };
        command_on(ctx, &input.id, command).await
    }

    /// Units of an approved return arrived: store staff at their store, CS agents and admins
    /// anywhere (DCs confirm through the WMS API).
    async fn receive_return(
        &self,
        ctx: &Context<'_>,
        input: ReceiveReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::StoreStaff, Role::CsAgent, Role::Admin])?;
        let location =
            match acting_location(actor, input.location.as_ref(), &["input", "location"])? {
                Ok(location) => location,
                Err(e) => return Ok(refused(e)),
            };
        let command = RmaCommand::Receive {
            receipt_id: input.receipt_id,
            location,
            lines: input
                .lines
                .into_iter()
                .map(|l| ReceivedLine::new(l.line_id, l.quantity))
                .collect(),
            in_person: false,
        };
        command_on(ctx, &input.id, command).await
    }

    /// An inspector grades a received unit: store staff for units received at their store,
    /// CS agents and admins for any. The grade's disposition then moves the unit: back to
    /// stock, into resale stock, or written off.
    async fn grade_return_unit(
        &self,
        ctx: &Context<'_>,
        input: GradeReturnUnitInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::StoreStaff, Role::CsAgent, Role::Admin])?;
        let rma_id = match return_id(&input.id, &["input", "id"]) {
            Ok(id) => id,
            Err(e) => return Ok(refused(e)),
        };
        if actor.role == Role::StoreStaff {
            let rma = service(ctx)?
                .load(rma_id)
                .await
                .map_err(|e| internal_error(ctx, "cannot read the return", &e))?;
            if let Some(unit) = rma.as_ref().and_then(|r| r.unit(&input.unit_id)) {
                require_store_scope(actor, &unit.location)?;
            }
        }
        let command = RmaCommand::Grade {
            unit_id: input.unit_id,
            grade_code: input.grade_code,
        };
        run(ctx, rma_id, command).await
    }

    /// CS agents and admins refund every received unit not yet settled (graded first where
    /// the reason requires an inspection): what was paid, less the restocking fee and the
    /// customer-paid return shipping (for units sent back, not handed in at a counter), never
    /// more than the order still has captured across all its returns.
    async fn refund_return(
        &self,
        ctx: &Context<'_>,
        input: ReturnIdInput,
    ) -> async_graphql::Result<ReturnPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let rma_id = match return_id(&input.id, &["input", "id"]) {
            Ok(id) => id,
            Err(e) => return Ok(refused(e)),
        };
        let metadata = request_context(ctx)?.metadata();
        let result = service(ctx)?.refund(rma_id, metadata).await;
        respond(ctx, result)
    }

    /// CS agents and admins exchange every received unit not yet settled for replacement
    /// lines: a new order for the customer, reserved at once, paid first by the units'
    /// value. A dearer replacement's order authorizes the difference; a cheaper one's
    /// difference is refunded on the original order.
    async fn exchange_return(
        &self,
        ctx: &Context<'_>,
        input: ExchangeReturnInput,
    ) -> async_graphql::Result<ReturnPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let rma_id = match return_id(&input.id, &["input", "id"]) {
            Ok(id) => id,
            Err(e) => return Ok(refused(e)),
        };
        let lines = match exchange_lines(input.lines) {
            Ok(lines) => lines,
            Err(e) => return Ok(refused(e)),
        };
        let metadata = request_context(ctx)?.metadata();
        let result = service(ctx)?.exchange(rma_id, lines, metadata).await;
        respond(ctx, result)
    }

    /// CS agents and admins close a rejected return, or an approved one whose received units
    /// are all settled (units never sent are given up).
    async fn close_return(
        &self,
        ctx: &Context<'_>,
        input: ReturnIdInput,
    ) -> async_graphql::Result<ReturnPayload> {
        let actor = require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let command = RmaCommand::Close {
            by: actor.subject.clone(),
        };
        command_on(ctx, &input.id, command).await
    }

    /// ADMIN and CS: create or replace a return reason (active afterwards).
    async fn define_return_reason(
        &self,
        ctx: &Context<'_>,
        input: DefineReturnReasonInput,
    ) -> async_graphql::Result<ReturnPolicyPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let fee = match input.return_shipping_fee.parse_non_negative() {
            Ok(m) => m,
            Err(e) => return Ok(policy_refused(e.under(&["input", "returnShippingFee"]))),
        };
        let pct = match decimal(&input.restocking_fee_percent, "restockingFeePercent") {
            Ok(d) => d,
            Err(e) => return Ok(policy_refused(e)),
        };
        let command = PolicyCommand::DefineReason(ReturnReasonSpec {
            code: input.code,
            label_ja: input.label_ja,
            label_en: input.label_en,
            window_days: input.window_days,
            inspection_required: input.inspection_required,
            restocking_fee_pct: pct,
            customer_pays_shipping: input.customer_pays_shipping,
            return_shipping_fee: fee,
            auto_approve: input.auto_approve,
        });
        policy_command(ctx, command).await
    }

    /// ADMIN and CS: stop offering a reason (returns that used it keep it).
    async fn retire_return_reason(
        &self,
        ctx: &Context<'_>,
        input: RetirePolicyCodeInput,
    ) -> async_graphql::Result<ReturnPolicyPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        policy_command(ctx, PolicyCommand::RetireReason { code: input.code }).await
    }

    /// ADMIN and CS: create or replace a condition grade (active afterwards).
    async fn define_condition_grade(
        &self,
        ctx: &Context<'_>,
        input: DefineConditionGradeInput,
    ) -> async_graphql::Result<ReturnPolicyPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        let disposition = match (input.disposition, input.price_factor.as_deref()) {
            (DispositionInput::Resale, Some(text)) => match decimal(text, "priceFactor") {
                Ok(price_factor) => Disposition::Resale { price_factor },
                Err(e) => return Ok(policy_refused(e)),
            },
            (DispositionInput::Resale, None) => {
                return Ok(policy_refused(UserError::invalid(
                    &["input", "priceFactor"],
                    "a RESALE grade needs a price factor",
                )))
            }
            (_, Some(_)) => {
                return Ok(policy_refused(UserError::invalid(
                    &["input", "priceFactor"],
                    "only a RESALE grade has a price factor",
                )))
            }
            (DispositionInput::Restock, None) => Disposition::Restock,
            (DispositionInput::Dispose, None) => Disposition::Dispose,
            (DispositionInput::ReturnToVendor, None) => Disposition::ReturnToVendor,
        };
        let command = PolicyCommand::DefineGrade(ConditionGradeSpec {
            code: input.code,
            label_ja: input.label_ja,
            label_en: input.label_en,
            disposition,
        });
        policy_command(ctx, command).await
    }

    /// ADMIN and CS: stop using a grade (units graded with it keep it).
    async fn retire_condition_grade(
        &self,
        ctx: &Context<'_>,
        input: RetirePolicyCodeInput,
    ) -> async_graphql::Result<ReturnPolicyPayload> {
        require_role(ctx, &[Role::CsAgent, Role::Admin])?;
        policy_command(ctx, PolicyCommand::RetireGrade { code: input.code }).await
    }
}

fn requested_lines(lines: Vec<ReturnLineInput>) -> Vec<RequestedLine> {
    lines
        .into_iter()
        .map(|l| RequestedLine::new(l.order_line_id, l.quantity, l.reason_code))
        .collect()
}

fn exchange_lines(lines: Vec<ExchangeLineInput>) -> Result<Vec<ExchangeLine>, UserError> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let index = i.to_string();
            let at = |field: &str| -> Vec<String> {
                vec!["input".into(), "lines".into(), index.clone(), field.into()]
            };
            let path = |field: &str| at(field);
            let delivery = match l.method {
                ExchangeDeliveryMethod::Ship => match (l.latitude, l.longitude) {
                    (Some(lat), Some(lon)) => ExchangeDelivery::Ship { lat, lon },
                    _ => {
                        let p = path("latitude");
                        let p: Vec<&str> = p.iter().map(String::as_str).collect();
                        return Err(UserError::invalid(
                            &p,
                            "SHIP needs the address's latitude and longitude",
                        ));
                    }
                },
                ExchangeDeliveryMethod::Pickup => {
                    let p = path("store");
                    let p: Vec<&str> = p.iter().map(String::as_str).collect();
                    let Some(store) = l.store.as_ref() else {
                        return Err(UserError::invalid(&p, "PICKUP needs the store"));
                    };
                    ExchangeDelivery::Pickup {
                        store: super::location_code(store, &p)?,
                    }
                }
            };
            Ok(ExchangeLine {
                sku: l.sku,
                qty: l.quantity,
                delivery,
            })
        })
        .collect()
}

fn decimal(text: &str, field: &str) -> Result<Decimal, UserError> {
    text.trim().parse::<Decimal>().map_err(|_| {
        UserError::invalid(
            &["input", field],
            format!("{text:?} is not a decimal number such as \"10.5\""),
        )
    })
}

fn refused(error: UserError) -> ReturnPayload {
    ReturnPayload {
        errors: vec![error],
        ..Default::default()
    }
}

fn policy_refused(error: UserError) -> ReturnPolicyPayload {
    ReturnPolicyPayload {
        errors: vec![error],
        ..Default::default()
    }
}

/// A command on the return named by `id` (after the caller's role check).
async fn command_on(
    ctx: &Context<'_>,
    id: &ID,
    command: RmaCommand,
) -> async_graphql::Result<ReturnPayload> {
    match return_id(id, &["input", "id"]) {
        Ok(rma_id) => run(ctx, rma_id, command).await,
        Err(e) => Ok(refused(e)),
    }
}

async fn run(
    ctx: &Context<'_>,
    rma_id: Uuid,
    command: RmaCommand,
) -> async_graphql::Result<ReturnPayload> {
    let metadata = request_context(ctx)?.metadata();
    let result = service(ctx)?.execute(rma_id, command, metadata).await;
    respond(ctx, result)
}

/// The payload of an executed command; a return the caller may not see is reported as not
/// found (as the query does), though the command ran only if its role allowed it.
fn respond(
    ctx: &Context<'_>,
    result: Result<RmaExecuted, ServiceError>,
) -> async_graphql::Result<ReturnPayload> {
    match result {
        Ok(done) => {
            let actor: &Actor = &request_context(ctx)?.actor;
            if !may_read(actor, &done.state) && actor.role != Role::StoreStaff {
                return Err(gql_error(ErrorCode::NotFound, "no such return"));
            }
            Ok(ReturnPayload {
                rma: Some(ReturnObject::from_state(done.state)),
                position: done.position.map(|p| p.to_string()),
                errors: Vec::new(),
            })
        }
        Err(e) => Ok(ReturnPayload {
            errors: payload_errors(ctx, e)?,
            ..Default::default()
        }),
    }
}

async fn policy_command(
    ctx: &Context<'_>,
    command: PolicyCommand,
) -> async_graphql::Result<ReturnPolicyPayload> {
    let metadata = request_context(ctx)?.metadata();
    match service(ctx)?
        .handlers
        .policy()
        .execute(command, metadata)
        .await
    {
        Ok(done) => Ok(ReturnPolicyPayload {
            policy: Some(ReturnPolicyObject::from(&done.state)),
            position: done.position.map(|p| p.to_string()),
            errors: Vec::new(),
        }),
        Err(e) => Ok(ReturnPolicyPayload {
            errors: payload_errors(ctx, e.into())?,
            ..Default::default()
        }),
    }
}
