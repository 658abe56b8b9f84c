//! The returns service's HTTP API: the WMS return receipts, under `/api/returns/v1`.
//!
//! A DC's warehouse management system receives returned parcels; it looks up what a return
//! expects and confirms what arrived. Stores receive at the counter in GraphQL instead. JSON
//! in and out, camelCase fields; errors are RFC 9457 problem details with a code and the field
//! to blame, as in the other integration APIs ([`ichigen_shared::http::problem`]).
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /returns/{rmaId}` | → `{return}` (404 if unknown) |
//! | `POST /returns/{rmaId}/receipts` | `{receiptId, location, lines: [{rmaLineId, qty}]}` → `{return, position}` |
//!
//! `return` is `{id, orderId, status, lines: [{rmaLineId, sku, title, qty, received}], units:
//! [{unitId, rmaLineId, sku, location, receiptId, grade, disposition}]}`. A receipt of units
//! not approved, more than requested, or of a receipt id already used with other content is a
//! problem (409 `CONFLICT` / 422 `INVALID_INPUT`, with the field); nothing is recorded then.
//!
//! **Ids.** `{rmaId}` is the return's UUID (GraphQL shows it as `Return.rawId`) or its
//! GraphQL id; `location` a location code or its GraphQL id.
//!
//! **Credentials.** A bearer token with role `WMS_INTEGRATION` or `ADMIN`.
//!
//! **Idempotency.** Twice over: the `receiptId` is recorded on the return's own stream, so
//! the same receipt again changes nothing, even under another key and after a restart; and
//! every POST needs an `Idempotency-Key`, stored under `wmsreturn-<id>`, so a retry answers
//! the first answer byte for byte (`Idempotent-Replayed: true`) across restarts.

use crate::domain::{stream_name, ReceivedLine, Rma, RmaCommand, RmaEvent};
use crate::handlers::RmaHandlerError;
use crate::service::{RmaService, ServiceError};
use actix_web::{web, HttpRequest, HttpResponse};
use ichigen_shared::aggregate::FoldError;
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::graphql::conventions::{integration_key, node_type};
use ichigen_shared::http::bulk::{recover_lines, LineOutcome};
use ichigen_shared::http::idempotency::{Execution, KeyStreams};
use ichigen_shared::http::request::{authorize_integration, keyed_write, parse_body};
use ichigen_shared::http::{Answer, Caller, LineError, Problem};
use ichigen_shared::store::Position;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Where the returns API lives.
pub const PREFIX: &str = "/api/returns/v1";
/// Body limit of a receipt.
pub const BODY_LIMIT: usize = 256 * 1024;
/// The API's name in refusals and logs.
const API: &str = "WMS returns";

/// The stream category of the returns API's idempotency keys (owned by the returns service).
pub const KEY_CATEGORY: &str = "wmsreturn";

/// The returns API's key streams (the event type names are stored: they never change).
pub static KEYS: KeyStreams = KeyStreams {
    category: KEY_CATEGORY,
    started: "WmsReturnRequestStarted.v1",
    response_part: "WmsReturnRequestResponsePart.v1",
    completed: "WmsReturnRequestCompleted.v1",
    api: API,
    stream_pattern: "wmsreturn-<key>",
};

/// Registers the routes. Needs `web::Data<RmaService>` and `web::Data<Arc<JwtAuth>>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(format!("{PREFIX}/returns/{{id}}")).route(web::get().to(show)));
    cfg.service(
        web::resource(format!("{PREFIX}/returns/{{id}}/receipts")).route(web::post().to(receipt)),
    );
}

/// One line of a receipt.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptLineBody {
    pub rma_line_id: String,
    pub qty: i64,
}

/// `POST /returns/{rmaId}/receipts`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptBody {
    /// The WMS's id of this receipt (unique per return).
    pub receipt_id: String,
    /// The receiving location's code (or its GraphQL `Location` id).
    pub location: String,
    pub lines: Vec<ReceiptLineBody>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LineAnswer {
    pub rma_line_id: String,
    pub sku: String,
    pub title: String,
    pub qty: i64,
    pub received: i64,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UnitAnswer {
    pub unit_id: String,
    pub rma_line_id: String,
    pub sku: String,
    pub location: String,
    pub receipt_id: String,
    pub grade: Option<String>,
    pub disposition: Option<&'static str>,
}

/// A return as the WMS sees it.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReturnAnswer {
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: &'static str,
    pub lines: Vec<LineAnswer>,
    pub units: Vec<UnitAnswer>,
}

impl ReturnAnswer {
    pub fn from_state(rma: &Rma) -> Option<Self> {
        let header = rma.header.as_ref()?;
        Some(ReturnAnswer {
            id: header.rma_id,
            order_id: header.order_id,
            status: rma.status()?.as_str(),
            lines: rma
                .lines
                .iter()
                .map(|l| LineAnswer {
                    rma_line_id: l.line.rma_line_id.clone(),
                    sku: l.line.sku.clone(),
                    title: l.line.title.clone(),
                    qty: l.line.qty,
                    received: l.received,
                })
                .collect(),
            units: rma
                .units
                .iter()
                .map(|u| UnitAnswer {
                    unit_id: u.unit_id.clone(),
                    rma_line_id: u.rma_line_id.clone(),
                    sku: u.sku.clone(),
                    location: u.location.clone(),
                    receipt_id: u.receipt_id.clone(),
                    grade: u.grade.as_ref().map(|g| g.grade.code.clone()),
                    disposition: u.grade.as_ref().map(|g| g.disposition.as_str()),
                })
                .collect(),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptAnswer {
    #[serde(rename = "return")]
    rma: ReturnAnswer,
    /// Pass as `atLeast` to a read to see this write; `null` when nothing changed.
    position: Option<String>,
}

#[derive(Serialize)]
struct ShowAnswer {
    #[serde(rename = "return")]
    rma: ReturnAnswer,
}

/// What a receipt request asks, once parsed.
#[derive(Clone, Debug)]
struct Plan {
    rma_id: Uuid,
    command: RmaCommand,
}

/// The return id in the path: the UUID (`Return.rawId` in GraphQL) or the GraphQL id
/// itself. A malformed one names nothing that exists (404, field `id`).
fn path_id(text: &str) -> Result<Uuid, Problem> {
    let key = integration_key(node_type::RETURN, text);
    Uuid::parse_str(&key).map_err(|_| {
        Problem::new(
            404,
            "NOT_FOUND",
            format!("no return {text:?}: give its UUID (rawId) or its GraphQL id"),
        )
        .with_field("id")
    })
}

fn not_found(rma_id: Uuid) -> Problem {
    Problem::new(404, "NOT_FOUND", format!("return {rma_id} does not exist")).with_field("id")
}

/// `GET /returns/{rmaId}`.
async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<RmaService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let answer = async {
        let caller = authorize_integration(&req, &auth, API)?;
        let rma_id = path_id(&path)?;
        let rma = service
            .load(rma_id)
            .await
            .map_err(|e| internal(&caller, &e, 503))?;
        let rma = rma
            .as_ref()
            .and_then(ReturnAnswer::from_state)
            .ok_or_else(|| not_found(rma_id))?;
        Answer::json(200, &ShowAnswer { rma }).map_err(|e| internal(&caller, &e, 500))
    }
    .await;
    match answer {
        Ok(a) => a.into_response(),
        Err(p) => p.answer().into_response(),
    }
}

/// `POST /returns/{rmaId}/receipts`: the shared checks (credentials, key, body limit), the id
/// and the body, then the receipt under its key in a task of its own.
async fn receipt(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<RmaService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let prepared = match keyed_write(&req, payload, &auth, API, BODY_LIMIT).await {
        Ok(write) => path_id(&path)
            .and_then(|rma_id| {
                let body: ReceiptBody = parse_body(&write.body)?;
                Ok(Plan {
                    rma_id,
                    command: RmaCommand::Receive {
                        receipt_id: body.receipt_id,
                        location: integration_key(node_type::LOCATION, &body.location),
                        lines: body
                            .lines
                            .into_iter()
                            .map(|l| ReceivedLine::new(l.rma_line_id, l.qty))
                            .collect(),
                        in_person: false,
                    },
                })
            })
            .map(|plan| (write, plan)),
        Err(problem) => Err(problem),
    };
    let (store, now) = (service.store.clone(), service.clock.now());
    let service = service.get_ref().clone();
    let execute = move |plan: Plan, caller, execution| async move {
        execute(&service, &plan, &caller, execution).await
    };
    KEYS.respond(store, now, prepared, execute).await
}

/// Runs the receipt under its key. A store failure whose outcome is unknown fails the request
/// unrecorded; its retry first looks for events carrying the request's causation id on the
/// return's stream and reports from there.
async fn execute(
    service: &RmaService,
    plan: &Plan,
    caller: &Caller,
    execution: Execution,
) -> Result<Answer, Problem> {
    let id = plan.rma_id;
    if execution.recover {
        let lines: [Result<Uuid, LineError>; 1] = [Ok(id)];
        let mut found = recover_lines(
            &service.store,
            &KEYS,
            execution.request,
            &lines,
            |id: &Uuid| Some(stream_name(*id)),
            RmaEvent::decode,
            Rma::apply,
            |state: &Rma| state.clone(),
        )
        .await
        .map_err(|e| fold_failure(caller, &e))?;
        if let Some(LineOutcome::Accepted { detail, position }) = found.remove(&0) {
            return render(caller, &detail, position);
        }
    }
    let causation_id = KEYS.line_causation_id(execution.request, 0);
    let metadata = caller.metadata(causation_id, service.clock.now());
    match service.execute(id, plan.command.clone(), metadata).await {
        Ok(accepted) => render(caller, &accepted.state, accepted.position),
        Err(e) if e.is_refusal() => {
            let mut problem = LineError {
                code: e.code(),
                field: e.field().map(str::to_owned),
                message: e.to_string(),
            }
            .into_problem();
            if matches!(e, ServiceError::Handler(RmaHandlerError::NotFound(_))) {
                problem.field = Some("id".into());
            }
            Ok(problem.answer())
        }
        Err(ServiceError::Handler(RmaHandlerError::Fold(e))) => Err(fold_failure(caller, &e)),
        Err(e) => Err(internal(caller, &e, 503)),
    }
}

fn render(caller: &Caller, state: &Rma, position: Option<Position>) -> Result<Answer, Problem> {
    let Some(rma) = ReturnAnswer::from_state(state) else {
        return Err(internal(caller, &"no return after the receipt", 500));
    };
    Answer::json(
        200,
        &ReceiptAnswer {
            rma,
            position: position.map(|p| p.to_string()),
        },
    )
    .map_err(|e| internal(caller, &e, 500))
}

fn internal(caller: &Caller, error: &dyn std::fmt::Display, status: u16) -> Problem {
    caller.unrecorded(API, error, status)
}

fn fold_failure(caller: &Caller, e: &FoldError) -> Problem {
    caller.fold_failure(API, e)
}
