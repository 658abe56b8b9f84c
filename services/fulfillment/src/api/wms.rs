//! The WMS fulfillment steps: request bodies, their commands, execution under the key, and
//! the JSON answers.
//!
//! Every write is one command on one fulfillment order. A store failure whose outcome is
//! unknown fails the request unrecorded, and its retry recovers: if the fulfillment order's
//! stream holds events carrying the request's causation id, the step happened and is reported
//! from there (the order as it stood right after them); otherwise it runs now. A step that was
//! already taken with the same content decides nothing in the domain, so even a retry under a
//! new key is harmless (`position: null`).

use crate::domain::{
    stream_name, Fulfillment, FulfillmentCommand, FulfillmentError, FulfillmentEvent,
    FulfillmentLine, PickedLine,
};
use crate::handlers::FulfillmentHandlerError;
use crate::projections::queues::QueueEntry;
use crate::FulfillmentService;
use chrono::{DateTime, Utc};
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::http::bulk::{recover_lines, LineOutcome};
use ichigen_shared::http::idempotency::{Execution, KeyStreams};
use ichigen_shared::http::{Answer, Caller, LineError, Problem, Refusal};
use ichigen_shared::store::Position;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream category of WMS fulfillment idempotency keys (owned by the fulfillment
/// service; the inventory WMS API has its own, `wmsrequest`).
pub const CATEGORY: &str = "wmsfulfillment";

/// The WMS fulfillment API's key streams (the event type names are stored: they never
/// change).
pub static KEYS: KeyStreams = KeyStreams {
    category: CATEGORY,
    started: "WmsFulfillmentRequestStarted.v1",
    response_part: "WmsFulfillmentRequestResponsePart.v1",
    completed: "WmsFulfillmentRequestCompleted.v1",
    api: "WMS fulfillment",
    stream_pattern: "wmsfulfillment-<key>",
};

impl Refusal for FulfillmentError {
    fn code(&self) -> &'static str {
        FulfillmentError::code(self)
    }

    fn field(&self) -> Option<&'static str> {
        FulfillmentError::field(self)
    }
}

/// One line of `POST /fulfillments/{id}/pick`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PickLineBody {
    pub line_id: String,
    pub picked: i64,
    pub short: i64,
}

/// `POST /fulfillments/{id}/pick`: every line once, `picked + short` = its quantity.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PickBody {
    pub lines: Vec<PickLineBody>,
}

/// `POST /fulfillments/{id}/pack`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackBody {
    pub packages: i64,
}

/// `POST /fulfillments/{id}/ship`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShipBody {
    pub carrier: String,
    pub tracking_number: String,
}

/// `POST /fulfillments/{id}/deliver`: nothing to say but that it arrived.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverBody {}

impl From<PickBody> for FulfillmentCommand {
    fn from(b: PickBody) -> Self {
        FulfillmentCommand::Pick {
            lines: b
                .lines
                .into_iter()
                .map(|l| PickedLine {
                    line_id: l.line_id,
                    picked: l.picked,
                    short: l.short,
                })
                .collect(),
        }
    }
}

/// One step on one fulfillment order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub fulfillment_id: Uuid,
    pub command: FulfillmentCommand,
}

/// A line of a fulfillment order as the API spells it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineAnswer {
    pub line_id: String,
    pub sku: String,
    /// Units still to fulfil here.
    pub quantity: i64,
    pub picked: i64,
    pub short: i64,
    pub cancelled: i64,
}

impl From<&FulfillmentLine> for LineAnswer {
    fn from(l: &FulfillmentLine) -> Self {
        LineAnswer {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            quantity: l.qty,
            picked: l.picked,
            short: l.short,
            cancelled: l.cancelled,
        }
    }
}

/// A fulfillment order as the WMS sees it (no pickup code: the counter is not the WMS's).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentAnswer {
    pub id: Uuid,
    pub order_id: Uuid,
    pub location: String,
    /// `SHIP`, `PICKUP`, `SHIP_TO_STORE`.
    pub kind: crate::domain::FulfillmentKind,
    pub destination_store: Option<String>,
    /// `OPEN`, `PICKED`, `PACKED`, `SHIPPED`, `DELIVERED`, …
    pub status: crate::domain::FulfillmentStatus,
    pub lines: Vec<LineAnswer>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

impl FulfillmentAnswer {
    /// `None` for a state that was never created (no answer to give).
    pub fn from_state(id: Uuid, state: &Fulfillment) -> Option<Self> {
        let created = state.created.as_ref()?;
        Some(FulfillmentAnswer {
            id,
            order_id: created.order_id,
            location: created.location.clone(),
            kind: created.kind,
            destination_store: created.destination_store.clone(),
            status: state.status?,
            lines: state.lines.values().map(LineAnswer::from).collect(),
            carrier: state.carrier.clone(),
            tracking_number: state.tracking_number.clone(),
        })
    }
}

impl From<&QueueEntry> for FulfillmentAnswer {
    fn from(e: &QueueEntry) -> Self {
        FulfillmentAnswer {
            id: e.fulfillment_id,
            order_id: e.order_id,
            location: e.location.clone(),
            kind: e.kind,
            destination_store: e.destination_store.clone(),
            status: e.status,
            lines: e.lines.iter().map(LineAnswer::from).collect(),
            carrier: e.carrier.clone(),
            tracking_number: e.tracking_number.clone(),
        }
    }
}

/// One entry of the task list: the fulfillment order and when it came in.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAnswer {
    #[serde(flatten)]
    pub fulfillment: FulfillmentAnswer,
    pub created_at: DateTime<Utc>,
}

/// `GET /tasks/{location}`: a page of the location's open outbound work, oldest first.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksAnswer {
    pub tasks: Vec<TaskAnswer>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A step's success.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepBody {
    fulfillment: FulfillmentAnswer,
    /// Pass as `atLeast` to a read to see this write; `null` when nothing changed.
    position: Option<String>,
}

fn internal(caller: &Caller, error: &dyn std::fmt::Display, status: u16) -> Problem {
    caller.unrecorded(KEYS.api, error, status)
}

fn fold_failure(caller: &Caller, e: &FoldError) -> Problem {
    caller.fold_failure(KEYS.api, e)
}

/// Executes `plan` under its key and renders the answer (see the module docs for recovery).
pub(crate) async fn execute(
    service: &FulfillmentService,
    plan: &Plan,
    caller: &Caller,
    execution: Execution,
) -> Result<Answer, Problem> {
    let id = plan.fulfillment_id;
    if execution.recover {
        let lines: [Result<Uuid, LineError>; 1] = [Ok(id)];
        let mut found = recover_lines(
            &service.store,
            &KEYS,
            execution.request,
            &lines,
            |id: &Uuid| Some(stream_name(id)),
            FulfillmentEvent::decode,
            Fulfillment::apply,
            |state: &Fulfillment| state.clone(),
        )
        .await
        .map_err(|e| fold_failure(caller, &e))?;
        if let Some(LineOutcome::Accepted { detail, position }) = found.remove(&0) {
            return render(caller, id, &detail, position);
        }
    }
    let causation_id = KEYS.line_causation_id(execution.request, 0);
    let metadata = caller.metadata(causation_id, service.clock.now());
    match service
        .handlers
        .execute(id, plan.command.clone(), metadata)
        .await
    {
        Ok(accepted) => render(caller, id, &accepted.state, accepted.position),
        Err(FulfillmentHandlerError::Refused(error)) => {
            let mut problem = Problem::refusal(&error);
            if error == FulfillmentError::NotCreated {
                problem.field = Some("id".to_string());
            }
            Ok(problem.answer())
        }
        Err(FulfillmentHandlerError::Fold(e)) => Err(fold_failure(caller, &e)),
        Err(e @ FulfillmentHandlerError::Encode(_)) => Err(internal(caller, &e, 500)),
        Err(e @ (FulfillmentHandlerError::Store(_) | FulfillmentHandlerError::Contended(_))) => {
            Err(internal(caller, &e, 503))
        }
    }
}

fn render(
    caller: &Caller,
    id: Uuid,
    state: &Fulfillment,
    position: Option<Position>,
) -> Result<Answer, Problem> {
    let Some(fulfillment) = FulfillmentAnswer::from_state(id, state) else {
        // An accepted step always leaves a created order; anything else is a bug.
        return Err(internal(
            caller,
            &"no fulfillment order after the step",
            500,
        ));
    };
    Answer::json(
        200,
        &StepBody {
            fulfillment,
            position: position.map(|p| p.to_string()),
        },
    )
    .map_err(|e| internal(caller, &e, 500))
}
