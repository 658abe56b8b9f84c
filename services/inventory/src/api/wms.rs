//! The WMS movements: request bodies, their stock commands, execution line by line, and the
//! JSON answers.
//!
//! Every request, single or bulk, becomes a [`Plan`] of lines. A line is one
//! [`StockCommand`] on one SKU × location and is one job of [`crate::handlers::StockHandlers`]
//! on its own: lines are independent (a refused line does not undo its neighbours). Lines on
//! the same SKU × location are submitted one after the other, in request order, so that they
//! are decided in that order (a receipt before the transfer that ships it); different streams
//! run concurrently, bounded by [`CONCURRENCY`].
//!
//! A line either ends decided (accepted, or refused by the domain) or with a failure whose
//! outcome is unknown (a store error). Only decided lines can be reported; one unknown outcome
//! fails the whole request with 503 and leaves it unrecorded, so that its retry goes through
//! recovery (see [`super::idempotency`]), which finds out what landed.

use super::idempotency::line_causation_id;
use super::problem::{Answer, LineError, Problem};
use crate::domain::{StockCommand, StockEvent, StockItem, StockLevels};
use crate::handlers::HandlerError;
use crate::InventoryService;
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::graphql::conventions::{integration_key, node_type};
use ichigen_shared::http::bulk::{bulk_answer, recover_lines, run_lines, LineOutcome};
use ichigen_shared::http::idempotency::Execution;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

pub use ichigen_shared::http::Caller;

/// Most lines one bulk request may carry.
pub const MAX_BULK_LINES: usize = 20_000;
/// Streams worked on at once by one bulk request. Each stream's lines run one after the
/// other, so this bounds the jobs one request has queued at the stock writers.
pub const CONCURRENCY: usize = 512;

/// One stock command on one SKU × location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub location: String,
    pub command: StockCommand,
}

/// A request body that is one movement.
pub trait Movement: DeserializeOwned + Send + 'static {
    fn into_line(self) -> Line;
}

macro_rules! movement {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident : $ty:ty),* $(,)? } => |$s:ident| $command:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Deserialize, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub sku: String,
            pub location: String,
            $(pub $field: $ty,)*
        }

        impl Movement for $name {
            fn into_line(self) -> Line {
                let $s = self;
                // A location code, or the GraphQL id of a Location.
                let location = integration_key(node_type::LOCATION, &$s.location);
                Line {
                    command: $command,
                    sku: $s.sku,
                    location,
                }
            }
        }
    };
}

movement!(
    /// `POST /receipts`: goods received (an ASN line, a purchase order receipt).
    Receipt { qty: i64, reference: Option<String> }
    => |s| StockCommand::ReceiveGoods { qty: s.qty, reference: s.reference }
);
movement!(
    /// `POST /adjustments`: a signed correction with a reason code.
    Adjustment { delta: i64, reason_code: String, reference: Option<String> }
    => |s| StockCommand::Adjust {
        delta: s.delta,
        reason_code: s.reason_code,
        reference: s.reference,
    }
);
movement!(
    /// `POST /counts`: a cycle count (absolute), with the count sheet or task behind it.
    Count { counted: i64, reference: Option<String> }
    => |s| StockCommand::CountCycle { counted: s.counted, reference: s.reference }
);
movement!(
    /// `POST /on-hand`: compare-and-set of on hand.
    SetOnHand { expected_on_hand: i64, new_on_hand: i64 }
    => |s| StockCommand::CompareAndSet {
        expected_on_hand: s.expected_on_hand,
        new_on_hand: s.new_on_hand,
    }
);
movement!(
    /// `POST /transfers/out`: stock shipped to another defined, active location. The
    /// destination shows it as incoming (in transit) at once; a transfer id ships once.
    TransferOut { qty: i64, to_location: String, transfer_id: String }
    => |s| StockCommand::TransferOut {
        qty: s.qty,
        to_location: integration_key(node_type::LOCATION, &s.to_location),
        transfer_id: s.transfer_id,
    }
);
movement!(
    /// `POST /transfers/expected`: a transfer from `fromLocation` announced to its destination
    /// before it ships: incoming until the shipment is in transit (which takes its place, so
    /// the transfer counts once), never receivable by itself; idempotent per transfer id.
    TransferExpected { qty: i64, transfer_id: String, from_location: String }
    => |s| StockCommand::ExpectIncoming {
        qty: s.qty,
        transfer_id: s.transfer_id,
        from_location: integration_key(node_type::LOCATION, &s.from_location),
    }
);
movement!(
    /// `POST /transfers/in`: a transfer in transit here received, once, at most what shipped.
    TransferIn { qty: i64, transfer_id: String }
    => |s| StockCommand::TransferIn { qty: s.qty, transfer_id: s.transfer_id }
);
movement!(
    /// `POST /returns`: a customer return put back on the shelf. `key` names the returned unit
    /// (`<rmaId>/<unitId>`); a key already received at the location counts once.
    Return { qty: i64, rma_id: String, key: String }
    => |s| StockCommand::ReceiveReturn { qty: s.qty, rma_id: s.rma_id, key: s.key }
);
movement!(
    /// `POST /non-sellable`: damaged or quarantined stock taken out of sale.
    NonSellable { qty: i64, reason: String }
    => |s| StockCommand::MoveToNonSellable { qty: s.qty, reason: s.reason }
);
movement!(
    /// `POST /sellable`: non-sellable stock released back to sale.
    Sellable { qty: i64 } => |s| StockCommand::MoveToSellable { qty: s.qty }
);
movement!(
    /// `POST /safety-stock`: the buffer kept out of availability.
    SafetyStock { qty: i64 } => |s| StockCommand::SetSafetyStock { qty: s.qty }
);
movement!(
    /// `POST /consumptions`: the WMS confirms it shipped a reservation.
    Consumption { reservation_id: String, qty: i64 }
    => |s| StockCommand::Consume { reservation_id: s.reservation_id, qty: s.qty }
);

/// One line of `POST /movements/bulk`: the movement's body plus its `type`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkLine {
    Receipt(Receipt),
    Adjustment(Adjustment),
    Count(Count),
    SetOnHand(SetOnHand),
    TransferOut(TransferOut),
    TransferExpected(TransferExpected),
    TransferIn(TransferIn),
    Return(Return),
    NonSellable(NonSellable),
    Sellable(Sellable),
    SafetyStock(SafetyStock),
    Consumption(Consumption),
}

impl BulkLine {
    pub fn into_line(self) -> Line {
        match self {
            BulkLine::Receipt(m) => m.into_line(),
            BulkLine::Adjustment(m) => m.into_line(),
            BulkLine::Count(m) => m.into_line(),
            BulkLine::SetOnHand(m) => m.into_line(),
            BulkLine::TransferOut(m) => m.into_line(),
            BulkLine::TransferExpected(m) => m.into_line(),
            BulkLine::TransferIn(m) => m.into_line(),
            BulkLine::Return(m) => m.into_line(),
            BulkLine::NonSellable(m) => m.into_line(),
            BulkLine::Sellable(m) => m.into_line(),
            BulkLine::SafetyStock(m) => m.into_line(),
            BulkLine::Consumption(m) => m.into_line(),
        }
    }
}

/// Single movement or bulk: the shape of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Single,
    Bulk,
}

/// What a request asks for, line by line, in request order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub shape: Shape,
    pub lines: Vec<Result<Line, LineError>>,
}

/// How a decided line ended.
type Outcome = LineOutcome<LevelsDetail>;

/// What an accepted bulk line reports.
#[derive(Clone, Debug, Serialize)]
struct LevelsDetail {
    levels: LevelsBody,
}

/// The buckets as the API spells them.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelsBody {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub available: i64,
    pub incoming: i64,
    pub non_sellable: i64,
}

impl From<StockLevels> for LevelsBody {
    fn from(l: StockLevels) -> Self {
        LevelsBody {
            on_hand: l.on_hand,
            reserved: l.reserved,
            safety_stock: l.safety_stock,
            available: l.available,
            incoming: l.incoming,
            non_sellable: l.non_sellable,
        }
    }
}

/// A single movement's success.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MovementBody<'a> {
    sku: &'a str,
    location: &'a str,
    levels: LevelsBody,
    /// Pass as `atLeast` to a stock read to see this write; `null` when nothing changed.
    position: Option<String>,
}

fn internal(caller: &Caller, error: &dyn std::fmt::Display, status: u16) -> Problem {
    caller.unrecorded("WMS", error, status)
}

fn handler_problem(caller: &Caller, error: &HandlerError) -> Problem {
    let status = match error {
        HandlerError::Unreadable { .. } => 500,
        _ => 503,
    };
    internal(caller, error, status)
}

/// Executes `plan` and renders its answer. With `recover`, lines whose events are already in
/// their stream (tagged with the line's causation id by an earlier attempt) are reported from
/// there instead of being executed again.
pub(crate) async fn execute(
    service: &InventoryService,
    plan: &Plan,
    caller: &Caller,
    execution: Execution,
) -> Result<Answer, Problem> {
    let request = execution.request;
    let applied = if execution.recover {
        find_applied(service, plan, caller, request).await?
    } else {
        HashMap::new()
    };
    let outcomes = run_lines(
        &plan.lines,
        |line| (line.sku.as_str(), line.location.as_str()),
        &applied,
        CONCURRENCY,
        |index, line| run_line(service, line, caller, request, index),
    )
    .await?;
    render(plan, outcomes).map_err(|e| internal(caller, &e, 500))
}

async fn run_line(
    service: &InventoryService,
    line: &Line,
    caller: &Caller,
    request: Uuid,
    index: usize,
) -> Result<Outcome, Problem> {
    let metadata = caller.metadata(line_causation_id(request, index), service.clock.now());
    match service
        .stock
        .execute(
            &line.sku,
            &line.location,
            vec![line.command.clone()],
            metadata,
        )
        .await
    {
        Ok(accepted) => Ok(Outcome::Accepted {
            detail: LevelsDetail {
                levels: accepted.levels.into(),
            },
            position: accepted.position,
        }),
        Err(HandlerError::Refused { error, .. }) => {
            Ok(Outcome::Rejected(LineError::refusal(&error)))
        }
        Err(other) => Err(handler_problem(caller, &other)),
    }
}

/// The checks of a line that need no claim: the SKU and location, the command's own input and
/// the locations it names ([`crate::handlers::StockHandlers::precheck`]). `Ok(Err(_))` is the
/// line's refusal; `Err` a failure to look up a location (503, nothing recorded).
pub(crate) async fn precheck(
    service: &InventoryService,
    caller: &Caller,
    line: &Line,
) -> Result<Result<(), LineError>, Problem> {
    match service
        .stock
        .precheck(
            &line.sku,
            &line.location,
            std::slice::from_ref(&line.command),
        )
        .await
    {
        Ok(()) => Ok(Ok(())),
        Err(HandlerError::Refused { error, .. }) => Ok(Err(LineError::refusal(&error))),
        Err(other) => Err(handler_problem(caller, &other)),
    }
}

/// [`precheck`] for every line of a bulk: a refused line becomes its error in the plan.
pub(crate) async fn precheck_lines(
    service: &InventoryService,
    caller: &Caller,
    plan: &mut Plan,
) -> Result<(), Problem> {
    for slot in plan.lines.iter_mut() {
        if let Ok(line) = slot {
            if let Err(refused) = precheck(service, caller, line).await? {
                *slot = Err(refused);
            }
        }
    }
    Ok(())
}

/// The answer of a plan whose every line was refused before anything ran.
pub(crate) fn render_refused(plan: &Plan) -> Result<Answer, serde_json::Error> {
    let outcomes = plan
        .lines
        .iter()
        .map(|line| line.as_ref().err().cloned().map(Outcome::Rejected))
        .collect();
    render(plan, outcomes)
}

/// Recovery: the lines of `plan` whose events an earlier attempt appended, with the levels
/// right after them and the position of their last event. Reads each stream of the plan once
/// and folds it, so a found line reports exactly the levels its first attempt reached.
async fn find_applied(
    service: &InventoryService,
    plan: &Plan,
    caller: &Caller,
    request: Uuid,
) -> Result<HashMap<usize, Outcome>, Problem> {
    // A line whose target is malformed appended nothing; it is refused again.
    let stream_of = |line: &Line| {
        let valid = crate::domain::validate_sku(&line.sku).is_ok()
            && crate::domain::location::validate_code(&line.location).is_ok();
        valid.then(|| crate::domain::stream_name(&line.sku, &line.location))
    };
    recover_lines(
        &service.store,
        &super::idempotency::WMS,
        request,
        &plan.lines,
        stream_of,
        StockEvent::decode,
        StockItem::apply,
        |state| LevelsDetail {
            levels: StockLevels::of(state).into(),
        },
    )
    .await
    .map_err(|e| match e {
        FoldError::Store(_) => internal(caller, &e, 503),
        FoldError::Unreadable { .. } => internal(caller, &e, 500),
    })
}

fn render(plan: &Plan, outcomes: Vec<Option<Outcome>>) -> Result<Answer, serde_json::Error> {
    match plan.shape {
        Shape::Single => {
            let (Some(Ok(line)), Some(outcome)) =
                (plan.lines.first(), outcomes.into_iter().next().flatten())
            else {
                // A single movement always has its one line decided; anything else is a bug.
                return Ok(Problem::new(500, "INTERNAL", "no outcome for the movement").answer());
            };
            match outcome {
                Outcome::Accepted { detail, position } => Answer::json(
                    200,
                    &MovementBody {
                        sku: &line.sku,
                        location: &line.location,
                        levels: detail.levels,
                        position: position.map(|p| p.to_string()),
                    },
                ),
                Outcome::Rejected(e) => Ok(e.into_problem().answer()),
            }
        }
        Shape::Bulk => bulk_answer(outcomes),
    }
}

/// Parses a bulk body into a plan; `Err` for a body that is not `{ "lines": [...] }` or breaks
/// the line limits (nothing is executed or recorded then).
pub(crate) fn bulk_plan(body: &[u8]) -> Result<Plan, Problem> {
    let lines = ichigen_shared::http::request::bulk_lines(body, "lines", MAX_BULK_LINES)?
        .into_iter()
        .map(|value| {
            serde_json::from_value::<BulkLine>(value)
                .map(BulkLine::into_line)
                .map_err(|e| LineError::malformed(&e))
        })
        .collect();
    Ok(Plan {
        shape: Shape::Bulk,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_lines_parse_by_type_and_bad_lines_are_reported_alone() {
        let body = br#"{"lines":[
            {"type":"RECEIPT","sku":"A","location":"S1","qty":3},
            {"type":"SET_ON_HAND","sku":"A","location":"S1","expectedOnHand":3,"newOnHand":2},
            {"type":"TELEPORT","sku":"A","location":"S1"},
            {"type":"COUNT","sku":"A","location":"S1"}
        ]}"#;
        let plan = bulk_plan(body).unwrap();
        assert_eq!(plan.lines.len(), 4);
        assert_eq!(
            plan.lines[0].as_ref().unwrap().command,
            StockCommand::ReceiveGoods {
                qty: 3,
                reference: None
            }
        );
        assert!(matches!(
            plan.lines[1].as_ref().unwrap().command,
            StockCommand::CompareAndSet {
                expected_on_hand: 3,
                new_on_hand: 2
            }
        ));
        assert_eq!(
            plan.lines[2].as_ref().unwrap_err().field.as_deref(),
            Some("type")
        );
        assert_eq!(
            plan.lines[3].as_ref().unwrap_err().field.as_deref(),
            Some("counted")
        );
        assert_eq!(bulk_plan(br#"{"lines":[]}"#).unwrap_err().status, 422);
        assert_eq!(bulk_plan(b"[").unwrap_err().status, 400);
    }
}
