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
use super::problem::{status_of, Answer, Problem};
use crate::domain::{InventoryError, StockCommand, StockEvent, StockItem, StockLevels};
use crate::handlers::HandlerError;
use crate::InventoryService;
use futures::StreamExt;
use ichigen_shared::envelope::{Actor, Metadata};
use ichigen_shared::store::{read_whole_stream, Position};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

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
                Line {
                    command: $command,
                    sku: $s.sku,
                    location: $s.location,
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
    /// `POST /counts`: a cycle count (absolute).
    Count { counted: i64 } => |s| StockCommand::CountCycle { counted: s.counted }
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
    /// `POST /transfers/out`: stock shipped to another location.
    TransferOut { qty: i64, to_location: String, transfer_id: String }
    => |s| StockCommand::TransferOut {
        qty: s.qty,
        to_location: s.to_location,
        transfer_id: s.transfer_id,
    }
);
movement!(
    /// `POST /transfers/expected`: a transfer announced to its destination.
    TransferExpected { qty: i64, transfer_id: String }
    => |s| StockCommand::ExpectIncoming { qty: s.qty, transfer_id: s.transfer_id }
);
movement!(
    /// `POST /transfers/in`: a transfer received.
    TransferIn { qty: i64, transfer_id: String }
    => |s| StockCommand::TransferIn { qty: s.qty, transfer_id: s.transfer_id }
);
movement!(
    /// `POST /returns`: a customer return put back on the shelf.
    Return { qty: i64, rma_id: String }
    => |s| StockCommand::ReceiveReturn { qty: s.qty, rma_id: s.rma_id }
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

/// The bulk body. Lines are kept as raw JSON first so that one malformed line is reported
/// as that line's error instead of failing the whole request.
#[derive(Deserialize)]
pub(crate) struct BulkBody {
    pub lines: Vec<serde_json::Value>,
}

/// A line's refusal, as reported: in a bulk answer's `error`, or as a single movement's
/// problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl LineError {
    fn refusal(error: &InventoryError) -> Self {
        LineError {
            code: error.code(),
            field: super::problem::api_field(error).map(str::to_string),
            message: error.to_string(),
        }
    }

    /// A bulk line that is not a movement (bad JSON shape). serde names the offending field
    /// only in its message; the common cases are picked out so clients can branch on them.
    pub(crate) fn malformed(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let field = if message.starts_with("unknown variant") || message.contains("field `type`") {
            Some("type".to_string())
        } else {
            message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name.to_string())
        };
        LineError {
            code: "INVALID_INPUT",
            field,
            message,
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

/// Who asked, for the events' metadata.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub correlation_id: Uuid,
}

/// How a decided line ended.
#[derive(Clone, Debug)]
enum Outcome {
    Accepted {
        levels: StockLevels,
        position: Option<Position>,
    },
    Rejected(LineError),
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkAnswer {
    accepted: usize,
    rejected: usize,
    /// The highest position any line reached (`atLeast` for reads); `null` if none wrote.
    position: Option<String>,
    lines: Vec<BulkLineAnswer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkLineAnswer {
    index: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    levels: Option<LevelsBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError>,
}

/// A failure whose outcome is unknown, or a stream this build cannot read: the request fails
/// unrecorded (see the module docs).
fn internal(caller: &Caller, error: &dyn std::fmt::Display, status: u16) -> Problem {
    tracing::error!(correlation_id = %caller.correlation_id, %error, "WMS request failed");
    Problem::internal(
        status,
        caller.correlation_id,
        "the request could not be completed; nothing was recorded under its Idempotency-Key, \
         so retry it with the same key",
    )
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
    request: Uuid,
    recover: bool,
) -> Result<Answer, Problem> {
    let applied = if recover {
        find_applied(service, plan, caller, request).await?
    } else {
        HashMap::new()
    };
    let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (index, line) in plan.lines.iter().enumerate() {
        if let Ok(line) = line {
            groups
                .entry((line.sku.as_str(), line.location.as_str()))
                .or_default()
                .push(index);
        }
    }
    let applied = &applied;
    let results: Vec<Vec<(usize, Result<Outcome, Problem>)>> =
        futures::stream::iter(groups.into_values().map(|indexes| async move {
            let mut done = Vec::with_capacity(indexes.len());
            for index in indexes {
                let outcome = match (applied.get(&index), &plan.lines[index]) {
                    (Some(found), _) => Ok(found.clone()),
                    (None, Ok(line)) => run_line(service, line, caller, request, index).await,
                    (None, Err(e)) => Ok(Outcome::Rejected(e.clone())),
                };
                let failed = outcome.is_err();
                done.push((index, outcome));
                // The stream's next lines wait for the retry: running them now would decide
                // them before a line whose outcome is unknown.
                if failed {
                    break;
                }
            }
            done
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; plan.lines.len()];
    for (index, result) in results.into_iter().flatten() {
        outcomes[index] = Some(result?);
    }
    for (index, line) in plan.lines.iter().enumerate() {
        if let Err(e) = line {
            outcomes[index] = Some(Outcome::Rejected(e.clone()));
        }
    }
    render(plan, outcomes).map_err(|e| internal(caller, &e, 500))
}

async fn run_line(
    service: &InventoryService,
    line: &Line,
    caller: &Caller,
    request: Uuid,
    index: usize,
) -> Result<Outcome, Problem> {
    let metadata = Metadata {
        correlation_id: caller.correlation_id,
        causation_id: Some(line_causation_id(request, index)),
        actor: caller.actor.clone(),
        occurred_at: service.clock.now(),
    };
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
            levels: accepted.levels,
            position: accepted.position,
        }),
        Err(HandlerError::Refused { error, .. }) => {
            Ok(Outcome::Rejected(LineError::refusal(&error)))
        }
        Err(other) => Err(handler_problem(caller, &other)),
    }
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
    let mut by_stream: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, line) in plan.lines.iter().enumerate() {
        let Ok(line) = line else { continue };
        // A line whose target is malformed appended nothing; it is refused again.
        if crate::domain::validate_sku(&line.sku).is_err()
            || crate::domain::location::validate_code(&line.location).is_err()
        {
            continue;
        }
        by_stream
            .entry(crate::domain::stream_name(&line.sku, &line.location))
            .or_default()
            .push(index);
    }
    let mut found = HashMap::new();
    for (stream, indexes) in by_stream {
        let wanted: HashMap<Uuid, usize> = indexes
            .iter()
            .map(|&i| (line_causation_id(request, i), i))
            .collect();
        let recorded = read_whole_stream(service.store.as_ref(), &stream)
            .await
            .map_err(|e| internal(caller, &e, 503))?;
        let mut state = StockItem::default();
        for r in &recorded {
            let event = match StockEvent::decode(&r.event_type, &r.data) {
                Some(Ok(event)) => event,
                Some(Err(e)) => return Err(internal(caller, &e, 500)),
                None => {
                    let e = format!("unknown event type {} in {stream}", r.event_type);
                    return Err(internal(caller, &e, 500));
                }
            };
            state.apply(&event);
            if let Some(&index) = r.metadata.causation_id.as_ref().and_then(|c| wanted.get(c)) {
                // A line's events are contiguous; the last one seen wins.
                found.insert(
                    index,
                    Outcome::Accepted {
                        levels: StockLevels::of(&state),
                        position: Some(r.position),
                    },
                );
            }
        }
    }
    Ok(found)
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
                Outcome::Accepted { levels, position } => Answer::json(
                    200,
                    &MovementBody {
                        sku: &line.sku,
                        location: &line.location,
                        levels: levels.into(),
                        position: position.map(|p| p.to_string()),
                    },
                ),
                Outcome::Rejected(e) => {
                    let mut problem = Problem::new(status_of(e.code), e.code, e.message);
                    problem.field = e.field;
                    Ok(problem.answer())
                }
            }
        }
        Shape::Bulk => {
            let mut answer = BulkAnswer {
                accepted: 0,
                rejected: 0,
                position: None,
                lines: Vec::with_capacity(outcomes.len()),
            };
            let mut highest: Option<Position> = None;
            for (index, outcome) in outcomes.into_iter().enumerate() {
                let line = match outcome {
                    Some(Outcome::Accepted { levels, position }) => {
                        answer.accepted += 1;
                        highest = highest.max(position);
                        BulkLineAnswer {
                            index,
                            status: "ACCEPTED",
                            levels: Some(levels.into()),
                            error: None,
                        }
                    }
                    Some(Outcome::Rejected(e)) => {
                        answer.rejected += 1;
                        BulkLineAnswer {
                            index,
                            status: "REJECTED",
                            levels: None,
                            error: Some(e),
                        }
                    }
                    None => {
                        return Ok(
                            Problem::new(500, "INTERNAL", "a bulk line has no outcome").answer()
                        )
                    }
                };
                answer.lines.push(line);
            }
            answer.position = highest.map(|p| p.to_string());
            Answer::json(200, &answer)
        }
    }
}

/// Parses a bulk body into a plan; `Err` for a body that is not `{ "lines": [...] }` or breaks
/// the line limits (nothing is executed or recorded then).
pub(crate) fn bulk_plan(body: &[u8]) -> Result<Plan, Problem> {
    let parsed: BulkBody = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            400,
            "INVALID_INPUT",
            format!("the body is not a bulk request: {e}"),
        )
        .with_field("lines")
    })?;
    if parsed.lines.is_empty() {
        return Err(Problem::new(
            422,
            "INVALID_INPUT",
            "a bulk request needs at least one line",
        )
        .with_field("lines"));
    }
    if parsed.lines.len() > MAX_BULK_LINES {
        return Err(Problem::new(
            413,
            "TOO_MANY_LINES",
            format!(
                "{} lines; a bulk request carries at most {MAX_BULK_LINES}: split it",
                parsed.lines.len()
            ),
        )
        .with_field("lines"));
    }
    let lines = parsed
        .lines
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
