//! The inventory service's HTTP API: the WMS integration API, under `/api/inventory/v1`.
//!
//! A warehouse management system reports what physically happened (receipts, counts,
//! transfers, returns, ships); these routes turn each report into stock commands. JSON in and
//! out, camelCase fields; errors are problem details ([`problem`]) with a code per line.
//!
//! | route                             | body → command                                         |
//! |-----------------------------------|--------------------------------------------------------|
//! | `POST /receipts`                  | {sku, location, qty, reference?} → ReceiveGoods        |
//! | `POST /adjustments`               | {…, delta, reasonCode, reference?} → Adjust            |
//! | `POST /counts`                    | {…, counted} → CountCycle                              |
//! | `POST /on-hand`                   | {…, expectedOnHand, newOnHand} → CompareAndSet         |
//! | `POST /transfers/out`             | {…, qty, toLocation, transferId} → TransferOut         |
//! | `POST /transfers/expected`        | {…, qty, transferId} → ExpectIncoming                  |
//! | `POST /transfers/in`              | {…, qty, transferId} → TransferIn                      |
//! | `POST /returns`                   | {…, qty, rmaId} → ReceiveReturn                        |
//! | `POST /non-sellable`              | {…, qty, reason} → MoveToNonSellable                   |
//! | `POST /sellable`                  | {…, qty} → MoveToSellable                              |
//! | `POST /safety-stock`              | {…, qty} → SetSafetyStock                              |
//! | `POST /consumptions`              | {…, reservationId, qty} → Consume                      |
//! | `POST /movements/bulk`            | {lines: [{type, …}]}, ≤ 20,000 lines, each on its own  |
//! | `GET /stock/{location}/{sku}`     | current levels; `?atLeast=<position>` waits for it     |
//!
//! Every route needs a bearer token with role `WMS_INTEGRATION` (or `ADMIN`). Every POST needs
//! an `Idempotency-Key` (1–255 visible ASCII characters): see [`idempotency`].
//!
//! A single movement answers 200 `{sku, location, levels, position}` or a problem; a bulk
//! answers 200 `{accepted, rejected, position, lines: [{index, status, levels?, error?}]}`.

pub mod idempotency;
pub mod problem;
pub mod wms;

use crate::InventoryService;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures::StreamExt;
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::store::Position;
use ichigen_shared::telemetry::CorrelationId;
use problem::{Answer, Problem};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;
use wms::{Caller, Movement, Plan, Shape};

/// Where the WMS API lives.
pub const PREFIX: &str = "/api/inventory/v1";
/// The header that makes a POST safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;
/// Body limit of a single movement (a few hundred bytes in practice).
pub const SINGLE_BODY_LIMIT: usize = 64 * 1024;
/// Body limit of a bulk request: 20,000 lines of about 150 bytes, with room to spare.
pub const BULK_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Registers the WMS routes. Needs `web::Data<InventoryService>` and `web::Data<Arc<JwtAuth>>`
/// in the app data. Each route is its own resource (no scope), so that the routes do not
/// shadow anything else the gateway mounts under `/api/inventory`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    fn post<M: Movement>(cfg: &mut web::ServiceConfig, path: &str) {
        cfg.service(web::resource(format!("{PREFIX}{path}")).route(web::post().to(movement::<M>)));
    }
    post::<wms::Receipt>(cfg, "/receipts");
    post::<wms::Adjustment>(cfg, "/adjustments");
    post::<wms::Count>(cfg, "/counts");
    post::<wms::SetOnHand>(cfg, "/on-hand");
    post::<wms::TransferOut>(cfg, "/transfers/out");
    post::<wms::TransferExpected>(cfg, "/transfers/expected");
    post::<wms::TransferIn>(cfg, "/transfers/in");
    post::<wms::Return>(cfg, "/returns");
    post::<wms::NonSellable>(cfg, "/non-sellable");
    post::<wms::Sellable>(cfg, "/sellable");
    post::<wms::SafetyStock>(cfg, "/safety-stock");
    post::<wms::Consumption>(cfg, "/consumptions");
    cfg.service(web::resource(format!("{PREFIX}/movements/bulk")).route(web::post().to(bulk)));
    cfg.service(
        web::resource(format!("{PREFIX}/stock/{{location}}/{{sku}}")).route(web::get().to(stock)),
    );
}

/// One movement route.
async fn movement<M: Movement>(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<InventoryService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let prepared = async {
        let caller = authorize(&req, &auth)?;
        let key = idempotency_key(&req)?;
        let body = read_body(payload, SINGLE_BODY_LIMIT).await?;
        let parsed: M = serde_json::from_slice(&body).map_err(|e| Problem {
            field: wms::LineError::malformed(&e).field,
            ..Problem::new(400, "INVALID_INPUT", format!("the body is not valid: {e}"))
        })?;
        let plan = Plan {
            shape: Shape::Single,
            lines: vec![Ok(parsed.into_line())],
        };
        Ok::<_, Problem>((caller, key, body, plan))
    };
    match prepared.await {
        Ok((caller, key, body, plan)) => respond(&req, &service, caller, key, body, plan).await,
        Err(problem) => problem.answer().into_response(),
    }
}

/// `POST /movements/bulk`.
async fn bulk(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<InventoryService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let prepared = async {
        let caller = authorize(&req, &auth)?;
        let key = idempotency_key(&req)?;
        let body = read_body(payload, BULK_BODY_LIMIT).await?;
        let plan = wms::bulk_plan(&body)?;
        Ok::<_, Problem>((caller, key, body, plan))
    };
    match prepared.await {
        Ok((caller, key, body, plan)) => respond(&req, &service, caller, key, body, plan).await,
        Err(problem) => problem.answer().into_response(),
    }
}

/// Runs a parsed request under its key, in a task of its own: actix drops a handler whose
/// client hung up, and a request cancelled between its movements and its stored answer would
/// leave work for recovery; a detached task finishes and stores the answer for the retry.
async fn respond(
    req: &HttpRequest,
    service: &InventoryService,
    caller: Caller,
    key: String,
    body: web::Bytes,
    plan: Plan,
) -> HttpResponse {
    let keyed = idempotency::KeyedRequest {
        actor: caller.actor.clone(),
        key,
        fingerprint: idempotency::fingerprint(req.method().as_str(), req.path(), &body),
        method: req.method().to_string(),
        path: req.path().to_string(),
        correlation_id: caller.correlation_id,
    };
    let service = service.clone();
    let correlation_id = caller.correlation_id;
    let task = tokio::spawn(async move {
        let now = service.clock.now();
        let (service, plan, caller) = (&service, &plan, &caller);
        idempotency::run(&service.store, now, &keyed, |execution| async move {
            wms::execute(service, plan, caller, execution.request, execution.recover).await
        })
        .await
    });
    match task.await {
        Ok(answer) => answer.into_response(),
        Err(e) => {
            tracing::error!(%correlation_id, error = %e, "WMS request task failed");
            Problem::internal(500, correlation_id, "the request failed unexpectedly")
                .answer()
                .into_response()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StockAnswer {
    sku: String,
    location: String,
    levels: wms::LevelsBody,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StockQuery {
    at_least: Option<String>,
}

/// `GET /stock/{location}/{sku}`: the inventory view's levels, after waiting for `atLeast`.
async fn stock(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    service: web::Data<InventoryService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let (location, sku) = path.into_inner();
    let answer = async {
        let caller = authorize(&req, &auth)?;
        let query = web::Query::<StockQuery>::from_query(req.query_string())
            .map_err(|e| Problem::new(400, "INVALID_INPUT", e.to_string()))?;
        let at_least = match &query.at_least {
            None => None,
            Some(text) => Some(text.parse::<Position>().map_err(|e| {
                Problem::new(422, "INVALID_INPUT", e.to_string()).with_field("atLeast")
            })?),
        };
        service.wait_for(at_least).await.map_err(|e| {
            tracing::warn!(correlation_id = %caller.correlation_id, error = %e, "read-your-writes wait failed");
            Problem::internal(503, caller.correlation_id, format!("{e}; retry the read"))
        })?;
        let levels = service.view.levels(&sku, &location).ok_or_else(|| {
            Problem::new(
                404,
                "NOT_FOUND",
                format!("no stock of {sku:?} at location {location:?}"),
            )
        })?;
        Answer::json(
            200,
            &StockAnswer {
                sku,
                location,
                levels: levels.into(),
            },
        )
        .map_err(|e| Problem::internal(500, caller.correlation_id, e.to_string()))
    };
    match answer.await {
        Ok(answer) => answer.into_response(),
        Err(problem) => problem.answer().into_response(),
    }
}

/// The caller, if its token carries a WMS role: 401 without a valid token, 403 for another
/// role.
fn authorize(req: &HttpRequest, auth: &JwtAuth) -> Result<Caller, Problem> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| {
            v.to_str().map_err(|_| {
                Problem::new(
                    401,
                    "UNAUTHENTICATED",
                    "the Authorization header is not text",
                )
            })
        })
        .transpose()?;
    let actor: Actor = auth
        .actor_from_authorization(header)
        .map_err(|e| Problem::new(401, "UNAUTHENTICATED", e.to_string()))?;
    match actor.role {
        Role::WmsIntegration | Role::Admin => Ok(Caller {
            actor,
            correlation_id: correlation_id(req),
        }),
        Role::Anonymous => Err(Problem::new(
            401,
            "UNAUTHENTICATED",
            "a bearer token with role WMS_INTEGRATION is required",
        )),
        other => Err(Problem::new(
            403,
            "FORBIDDEN",
            format!("role {other} may not use the WMS API (WMS_INTEGRATION or ADMIN only)"),
        )),
    }
}

/// The gateway's correlation id for this request; a fresh one where no middleware set it.
fn correlation_id(req: &HttpRequest) -> Uuid {
    req.extensions()
        .get::<CorrelationId>()
        .map(|c| c.0)
        .unwrap_or_else(Uuid::new_v4)
}

/// The `Idempotency-Key` header: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<String, Problem> {
    let refuse = |detail: &str| {
        Problem::new(400, "IDEMPOTENCY_KEY_REQUIRED", detail).with_field(IDEMPOTENCY_KEY)
    };
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refuse(
            "every POST needs exactly one Idempotency-Key header (1-255 visible ASCII characters)",
        ));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(refuse(
            "the Idempotency-Key must be 1-255 visible ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Reads the body up to `limit` bytes (a problem beyond), so that every refusal, this one
/// included, is a problem body.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, Problem> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                400,
                "INVALID_INPUT",
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("the body exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
