//! The fulfillment service's HTTP API: the WMS fulfillment integration, under
//! `/api/fulfillment/v1`.
//!
//! A DC's warehouse management system does the physical work of SHIP and SHIP_TO_STORE
//! orders; it fetches its task list and confirms each step here. Store steps are done by staff
//! in GraphQL instead ([`crate::graphql`]). JSON in and out, camelCase fields; errors are RFC
//! 9457 problem details with a code and the field to blame, as in the other integration APIs
//! ([`ichigen_shared::http::problem`]).
//!
//! | route                                | body → command / answer                            |
//! |--------------------------------------|----------------------------------------------------|
//! | `GET /tasks/{location}`              | `?first=&after=&atLeast=` → {tasks, nextCursor}    |
//! | `POST /fulfillments/{id}/pick`       | {lines: [{lineId, picked, short}]} → Pick          |
//! | `POST /fulfillments/{id}/pack`       | {packages} → Pack                                  |
//! | `POST /fulfillments/{id}/ship`       | {carrier, trackingNumber} → Ship                   |
//! | `POST /fulfillments/{id}/deliver`    | {} (or no body) → Deliver                          |
//!
//! The task list holds the location's SHIP and SHIP_TO_STORE orders not yet shipped (OPEN,
//! PICKED, PACKED), oldest first; `first` defaults to 50 (at most 500), `after` is the
//! previous page's `nextCursor`.
//!
//! A step answers 200 `{fulfillment: {id, orderId, location, kind, destinationStore, status,
//! lines: [{lineId, sku, quantity, picked, short, cancelled}], carrier, trackingNumber},
//! position}` or a problem: the wrong status for the step 409 `CONFLICT`, an unknown
//! fulfillment 404 `NOT_FOUND` (field `id`), bad quantities (`picked + short` ≠ the line's
//! quantity, a line missing or unknown) 422 `INVALID_INPUT` (field `lines`, `packages`, …).
//! Repeating a step with the same content changes nothing and answers `position: null`.
//!
//! **Ids.** `{id}` is the fulfillment order's UUID (what tasks and events carry; GraphQL shows
//! it as `FulfillmentOrder.rawId`) or its GraphQL id; `{location}` a location code or its
//! GraphQL id.
//!
//! **Credentials.** A bearer token with role `WMS_INTEGRATION` or `ADMIN`; anything else is
//! 403, no token 401.
//!
//! **Idempotency.** Every POST needs an `Idempotency-Key` (1–255 visible ASCII characters),
//! stored in the event store under `wmsfulfillment-<id>` ([`wms::KEYS`]; the fulfillment
//! service owns that category): a retry answers the first answer byte for byte
//! (`Idempotent-Replayed: true`), across restarts; the key with another body or path is 422
//! `IDEMPOTENCY_KEY_REUSED`; see [`ichigen_shared::http::idempotency`].

pub mod wms;

use crate::domain::FulfillmentCommand;
use crate::projections::queues::QueueCursor;
use crate::FulfillmentService;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::connection::{CursorType, OpaqueCursor};
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::graphql::conventions::{integration_key, node_type};
use ichigen_shared::http::request::{authorize_integration, keyed_write, parse_body, wait_failed};
use ichigen_shared::http::{Answer, Problem};
use ichigen_shared::store::Position;
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;
use wms::{DeliverBody, PackBody, PickBody, Plan, ShipBody, TaskAnswer, TasksAnswer};

/// Where the WMS fulfillment API lives.
pub const PREFIX: &str = "/api/fulfillment/v1";
/// Body limit of a step (a pick of a few hundred lines stays far below).
pub const BODY_LIMIT: usize = 256 * 1024;
/// Tasks per page when the WMS gives no `first`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest `first`: bounds the work one request can ask for.
pub const MAX_PAGE_SIZE: usize = 500;
/// The API's name in refusals and logs.
const API: &str = "WMS fulfillment";

/// Registers the WMS fulfillment routes. Needs `web::Data<FulfillmentService>` and
/// `web::Data<Arc<JwtAuth>>` in the app data. Each route is its own resource (no scope), so
/// that the routes do not shadow anything else the gateway mounts under `/api/fulfillment`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(format!("{PREFIX}/tasks/{{location}}")).route(web::get().to(tasks)));
    cfg.service(
        web::resource(format!("{PREFIX}/fulfillments/{{id}}/pick")).route(web::post().to(pick)),
    );
    cfg.service(
        web::resource(format!("{PREFIX}/fulfillments/{{id}}/pack")).route(web::post().to(pack)),
    );
    cfg.service(
        web::resource(format!("{PREFIX}/fulfillments/{{id}}/ship")).route(web::post().to(ship)),
    );
    cfg.service(
        web::resource(format!("{PREFIX}/fulfillments/{{id}}/deliver"))
            .route(web::post().to(deliver)),
    );
}

/// `POST /fulfillments/{id}/pick`.
async fn pick(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<FulfillmentService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let command = |body: &[u8]| parse_body::<PickBody>(body).map(FulfillmentCommand::from);
    step(req, path, payload, &service, &auth, command).await
}

/// `POST /fulfillments/{id}/pack`.
async fn pack(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<FulfillmentService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let command = |body: &[u8]| {
        parse_body::<PackBody>(body).map(|b| FulfillmentCommand::Pack {
            packages: b.packages,
        })
    };
    step(req, path, payload, &service, &auth, command).await
}

/// `POST /fulfillments/{id}/ship`.
async fn ship(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<FulfillmentService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let command = |body: &[u8]| {
        parse_body::<ShipBody>(body).map(|b| FulfillmentCommand::Ship {
            carrier: b.carrier,
            tracking_number: b.tracking_number,
        })
    };
    step(req, path, payload, &service, &auth, command).await
}

/// `POST /fulfillments/{id}/deliver`: the body may be `{}` or empty.
async fn deliver(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<FulfillmentService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let command = |body: &[u8]| {
        if !body.iter().all(u8::is_ascii_whitespace) {
            parse_body::<DeliverBody>(body)?;
        }
        Ok(FulfillmentCommand::Deliver)
    };
    step(req, path, payload, &service, &auth, command).await
}

/// The fulfillment id in the path: the UUID (`FulfillmentOrder.rawId` in GraphQL) or the
/// GraphQL id itself. A malformed one names nothing that exists (404, field `id`), refused
/// before anything is recorded.
fn path_id(text: &str) -> Result<Uuid, Problem> {
    let key = integration_key(node_type::FULFILLMENT_ORDER, text);
    Uuid::parse_str(&key).map_err(|_| {
        Problem::new(
            404,
            "NOT_FOUND",
            format!("no fulfillment order {text:?}: give its UUID (rawId) or its GraphQL id"),
        )
        .with_field("id")
    })
}

/// Every step: the shared checks (credentials, key, body limit), the id and the body, then the
/// command under its key in a task of its own (a client that hangs up does not cancel it
/// halfway; see [`ichigen_shared::http::idempotency::KeyStreams::respond`]).
async fn step(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: &FulfillmentService,
    auth: &JwtAuth,
    command: impl FnOnce(&[u8]) -> Result<FulfillmentCommand, Problem>,
) -> HttpResponse {
    let prepared = match keyed_write(&req, payload, auth, API, BODY_LIMIT).await {
        Ok(write) => path_id(&path)
            .and_then(|fulfillment_id| {
                Ok(Plan {
                    fulfillment_id,
                    command: command(&write.body)?,
                })
            })
            .map(|plan| (write, plan)),
        Err(problem) => Err(problem),
    };
    let (store, now) = (service.store.clone(), service.clock.now());
    let service = service.clone();
    let execute = move |plan: Plan, caller, execution| async move {
        wms::execute(&service, &plan, &caller, execution).await
    };
    wms::KEYS.respond(store, now, prepared, execute).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TasksQuery {
    first: Option<String>,
    after: Option<String>,
    at_least: Option<String>,
}

/// `GET /tasks/{location}`: the location's open outbound work from the queues, after waiting
/// for `atLeast`.
async fn tasks(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<FulfillmentService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    // A location code, or a GraphQL Location id.
    let location = integration_key(node_type::LOCATION, &path.into_inner());
    let answer = async {
        let caller = authorize_integration(&req, &auth, API)?;
        let query = web::Query::<TasksQuery>::from_query(req.query_string())
            .map_err(|e| Problem::new(400, "INVALID_INPUT", e.to_string()))?
            .into_inner();
        let first = page_size(query.first.as_deref())?;
        let after = query
            .after
            .as_deref()
            .map(|text| {
                OpaqueCursor::<QueueCursor>::decode_cursor(text)
                    .map(|c| c.0)
                    .map_err(|_| {
                        Problem::new(
                            422,
                            "INVALID_INPUT",
                            format!("{text:?} is not a cursor returned by this API"),
                        )
                        .with_field("after")
                    })
            })
            .transpose()?;
        let at_least = query
            .at_least
            .map(|text| {
                text.parse::<Position>().map_err(|e| {
                    Problem::new(422, "INVALID_INPUT", e.to_string()).with_field("atLeast")
                })
            })
            .transpose()?;
        service
            .wait_for(at_least)
            .await
            .map_err(|e| wait_failed(&caller, &e))?;
        let (entries, more) = service.queues.dc_tasks(&location, after, first);
        let next_cursor = more
            .then(|| entries.last())
            .flatten()
            .map(|e| OpaqueCursor(e.cursor()).encode_cursor());
        let body = TasksAnswer {
            tasks: entries
                .iter()
                .map(|e| TaskAnswer {
                    fulfillment: e.into(),
                    created_at: e.created_at,
                })
                .collect(),
            next_cursor,
        };
        Answer::json(200, &body)
            .map_err(|e| Problem::internal(500, caller.correlation_id, e.to_string()))
    };
    answer
        .await
        .unwrap_or_else(|problem| problem.answer())
        .into_response()
}

/// `first`: [`DEFAULT_PAGE_SIZE`] when absent, 1 to [`MAX_PAGE_SIZE`] otherwise.
fn page_size(first: Option<&str>) -> Result<usize, Problem> {
    let Some(text) = first else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(Problem::new(
            422,
            "INVALID_INPUT",
            format!("`first` must be a number from 1 to {MAX_PAGE_SIZE} (got {text:?})"),
        )
        .with_field("first")),
    }
}
