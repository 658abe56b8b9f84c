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
//! | `POST /counts`                    | {…, counted, reference?} → CountCycle                  |
//! | `POST /on-hand`                   | {…, expectedOnHand, newOnHand} → CompareAndSet         |
//! | `POST /transfers/out`             | {…, qty, toLocation, transferId} → TransferOut         |
//! | `POST /transfers/expected`        | {…, qty, transferId, fromLocation} → ExpectIncoming    |
//! | `POST /transfers/in`              | {…, qty, transferId} → TransferIn (once, in transit)   |
//! | `POST /returns`                   | {…, qty, rmaId, key} → ReceiveReturn (once per key)    |
//! | `POST /non-sellable`              | {…, qty, reason} → MoveToNonSellable                   |
//! | `POST /sellable`                  | {…, qty} → MoveToSellable                              |
//! | `POST /safety-stock`              | {…, qty} → SetSafetyStock                              |
//! | `POST /consumptions`              | {…, reservationId, qty} → Consume                      |
//! | `POST /movements/bulk`            | {lines: [{type, …}]}, ≤ 20,000 lines, each on its own  |
//! | `GET /stock/{location}/{sku}`     | current levels; `?atLeast=<position>` waits for it     |
//!
//! Every route needs a bearer token with role `WMS_INTEGRATION` (or `ADMIN`). Every POST needs
//! an `Idempotency-Key` (1–255 visible ASCII characters): see [`idempotency`]. The checks, the
//! problem bodies and the key protocol are every integration API's ([`ichigen_shared::http`]).
//!
//! A movement refused for its input (a quantity out of range, a malformed or over-long code or
//! reference, an unknown or inactive location) is answered before its key is claimed and
//! records nothing; so is a bulk whose every line is refused that way (its other lines' input
//! refusals are reported per line, in the recorded answer).
//!
//! A single movement answers 200 `{sku, location, levels, position}` or a problem; a bulk
//! answers 200 `{accepted, rejected, position, lines: [{index, status, levels?, error?}]}`.

pub mod idempotency;
pub mod problem;
pub mod wms;

use crate::InventoryService;
use actix_web::{web, HttpRequest, HttpResponse};
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::http::request::{
    at_least, authorize_integration, keyed_write, parse_body, wait_failed, KeyedWrite,
};
use problem::{Answer, LineError, Problem};
use serde::Serialize;
use std::sync::Arc;
use wms::{Movement, Plan, Shape};

pub use ichigen_shared::http::request::{IDEMPOTENCY_KEY, MAX_KEY_LEN};

/// Where the WMS API lives.
pub const PREFIX: &str = "/api/inventory/v1";
/// The API's name in refusals and logs.
const API: &str = "WMS";
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
        let write = keyed_write(&req, payload, &auth, API, SINGLE_BODY_LIMIT).await?;
        let parsed: M = parse_body(&write.body)?;
        let line = parsed.into_line();
        // Refused for its input: answered before the key is claimed, so nothing is recorded.
        wms::precheck(&service, &write.caller, &line)
            .await?
            .map_err(LineError::into_problem)?;
        let plan = Plan {
            shape: Shape::Single,
            lines: vec![Ok(line)],
        };
        Ok((write, plan))
    };
    respond(&service, prepared.await).await
}

/// `POST /movements/bulk`.
async fn bulk(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<InventoryService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let prepared = async {
        let write = keyed_write(&req, payload, &auth, API, BULK_BODY_LIMIT).await?;
        let mut plan = wms::bulk_plan(&write.body)?;
        wms::precheck_lines(&service, &write.caller, &mut plan).await?;
        Ok((write, plan))
    };
    match prepared.await {
        // Every line refused for its input: nothing would change, so nothing is recorded
        // (the key stays free for a corrected request).
        Ok((_, plan)) if plan.lines.iter().all(Result::is_err) => {
            match wms::render_refused(&plan) {
                Ok(answer) => answer.into_response(),
                Err(e) => Problem::new(500, "INTERNAL", e.to_string())
                    .answer()
                    .into_response(),
            }
        }
        prepared => respond(&service, prepared).await,
    }
}

/// Runs a parsed request under its key, in a task of its own (see
/// [`ichigen_shared::http::idempotency::KeyStreams::respond`]).
async fn respond(
    service: &InventoryService,
    prepared: Result<(KeyedWrite, Plan), Problem>,
) -> HttpResponse {
    let service = service.clone();
    let (store, now) = (service.store.clone(), service.clock.now());
    idempotency::WMS
        .respond(
            store,
            now,
            prepared,
            move |plan, caller, execution| async move {
                wms::execute(&service, &plan, &caller, execution).await
            },
        )
        .await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StockAnswer {
    sku: String,
    location: String,
    levels: wms::LevelsBody,
}

/// `GET /stock/{location}/{sku}`: the inventory view's levels, after waiting for `atLeast`.
async fn stock(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    service: web::Data<InventoryService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let (location, sku) = path.into_inner();
    // A location code, or the GraphQL id of a Location.
    let location = ichigen_shared::graphql::conventions::integration_key(
        ichigen_shared::graphql::conventions::node_type::LOCATION,
        &location,
    );
    let answer = async {
        let caller = authorize_integration(&req, &auth, API)?;
        let at_least = at_least(&req)?;
        service
            .wait_for(at_least)
            .await
            .map_err(|e| wait_failed(&caller, &e))?;
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
