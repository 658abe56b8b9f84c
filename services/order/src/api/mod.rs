//! The order service's HTTP API: the PIM catalog integration, under `/api/order/v1/catalog`.
//!
//! A PIM (product information management system) is the system of record for what a SKU is
//! and costs; it pushes items here, one at a time or in bulk. Orders price their lines from
//! this catalog, never from what a client sends. JSON in and out, camelCase fields; errors are
//! RFC 9457 problem details with a code and the field to blame, as in the WMS API
//! ([`ichigen_shared::http::problem`]).
//!
//! | route                     | body → command / answer                                          |
//! |---------------------------|------------------------------------------------------------------|
//! | `PUT /items/{sku}`        | {title, price: {amount, currency}, attributes?, active?} → Upsert |
//! | `POST /items/bulk`        | {items: [{sku, title, price, attributes?, active?}]}, ≤ 20,000   |
//! | `GET /items/{sku}`        | the item from the catalog view; `?atLeast=<position>` waits      |
//!
//! An upsert is **absolute**: the item becomes exactly what was sent (`attributes` omitted =
//! none, `active` omitted = `true`); sending the same content again changes nothing and answers
//! `position: null`. `price.amount` is a decimal string (`"1990"`, `"19.90"`), never a number.
//!
//! **Credentials.** A bearer token with role `WMS_INTEGRATION` — the role of every
//! system-to-system integration credential (WMS and PIM alike; a PIM gets a token of its own
//! subject, which scopes its keys) — or `ADMIN`. Anything else is 403, no token 401.
//!
//! **Idempotency.** Every PUT and POST needs an `Idempotency-Key` (1–255 visible ASCII
//! characters), stored in the event store under `pimrequest-<id>` ([`pim::PIM`]; the order
//! service owns that category): a retry answers the first answer byte for byte
//! (`Idempotent-Replayed: true`), across restarts; the key with another body is 422
//! `IDEMPOTENCY_KEY_REUSED`; see [`ichigen_shared::http::idempotency`].
//!
//! A single upsert answers 200 `{item, position}` or a problem; a bulk answers 200
//! `{accepted, rejected, position, lines: [{index, status, item?, error?}]}`, one line per item.

pub mod pim;

use crate::catalog_service::CatalogService;
use actix_web::{web, HttpRequest, HttpResponse};
use ichigen_shared::auth::jwt::JwtAuth;
use ichigen_shared::http::request::{
    at_least, authorize_integration, bulk_lines, keyed_write, parse_body, wait_failed,
};
use ichigen_shared::http::{Answer, Problem};
use pim::{ItemBody, Plan, Shape};
use std::sync::Arc;

/// Where the PIM API lives.
pub const PREFIX: &str = "/api/order/v1/catalog";
/// Body limit of a single upsert (an item with many attributes stays far below).
pub const SINGLE_BODY_LIMIT: usize = 256 * 1024;
/// Body limit of a bulk request: 20,000 items of about 1 KiB, with room to spare.
pub const BULK_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// The API's name in refusals and logs.
const API: &str = "PIM";

/// Registers the PIM routes. Needs `web::Data<CatalogService>` and `web::Data<Arc<JwtAuth>>`
/// in the app data. Each route is its own resource (no scope), so that the routes do not
/// shadow anything else the gateway mounts under `/api/order`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(format!("{PREFIX}/items/bulk")).route(web::post().to(bulk)));
    cfg.service(
        web::resource(format!("{PREFIX}/items/{{sku}}"))
            .route(web::put().to(upsert))
            .route(web::get().to(item)),
    );
}

/// `PUT /items/{sku}`.
async fn upsert(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<CatalogService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let sku = path.into_inner();
    let plan = move |body: &[u8]| {
        let parsed: ItemBody = parse_body(body)?;
        Ok(Plan {
            shape: Shape::Single,
            lines: vec![Ok(parsed.into_line(sku))],
        })
    };
    write(req, payload, &service, &auth, SINGLE_BODY_LIMIT, plan).await
}

/// `POST /items/bulk`.
async fn bulk(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<CatalogService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let plan = |body: &[u8]| {
        Ok(pim::bulk_plan(bulk_lines(
            body,
            "items",
            pim::MAX_BULK_ITEMS,
        )?))
    };
    write(req, payload, &service, &auth, BULK_BODY_LIMIT, plan).await
}

/// Every write: the shared checks, the route's `plan` of the body, then the plan under its
/// key in a task of its own (a client that hangs up does not cancel it halfway; see
/// [`ichigen_shared::http::idempotency::KeyStreams::respond`]).
async fn write(
    req: HttpRequest,
    payload: web::Payload,
    service: &CatalogService,
    auth: &JwtAuth,
    limit: usize,
    plan: impl FnOnce(&[u8]) -> Result<Plan, Problem>,
) -> HttpResponse {
    let prepared = match keyed_write(&req, payload, auth, API, limit).await {
        Ok(write) => plan(&write.body).map(|plan| (write, plan)),
        Err(problem) => Err(problem),
    };
    let (store, now) = (service.store.clone(), service.clock.now());
    let service = service.clone();
    let execute = move |plan: Plan, caller, execution| async move {
        pim::execute(&service, &plan, &caller, execution).await
    };
    pim::PIM.respond(store, now, prepared, execute).await
}

/// `GET /items/{sku}`: the catalog view's item (active or not), after waiting for `atLeast`.
async fn item(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<CatalogService>,
    auth: web::Data<Arc<JwtAuth>>,
) -> HttpResponse {
    let sku = path.into_inner();
    let answer = async {
        let caller = authorize_integration(&req, &auth, API)?;
        let at_least = at_least(&req)?;
        service
            .wait_for(at_least)
            .await
            .map_err(|e| wait_failed(&caller, &e))?;
        let Some(item) = service.view.get(&sku) else {
            let detail = format!("no catalog item {sku:?}");
            return Err(Problem::new(404, "NOT_FOUND", detail).with_field("sku"));
        };
        Answer::json(200, &pim::ItemAnswer::from(item))
            .map_err(|e| Problem::internal(500, caller.correlation_id, e.to_string()))
    };
    answer
        .await
        .unwrap_or_else(|problem| problem.answer())
        .into_response()
}
