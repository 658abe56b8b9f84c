//! What every HTTP route shares: a correlation id per request, latency metrics, the body
//! limit ([`body_limit`]), health and Prometheus metrics endpoints.

pub mod body_limit;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use ichigen_shared::projection::ProjectionHandle;
use ichigen_shared::store::DynEventStore;
use ichigen_shared::telemetry::metrics::{self, LATENCY_BUCKETS};
use ichigen_shared::telemetry::{CorrelationId, CORRELATION_HEADER};
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// The projections whose catch-up makes the process ready.
#[derive(Clone, Default)]
pub struct Readiness {
    pub projections: Vec<ProjectionHandle>,
}

/// Mounts `/health/live`, `/health/ready` and `/metrics`. Expects `web::Data<Readiness>` and
/// `web::Data<DynEventStore>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(prometheus));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

/// Ready once the store takes writes ([`ichigen_shared::store::EventStore::health`]: not while
/// its disk is full or failing, nor while a server is unreachable) and every projection has
/// applied the history that existed when it started; 503 with what is missing otherwise.
async fn ready(readiness: web::Data<Readiness>, store: web::Data<DynEventStore>) -> HttpResponse {
    let lagging: Vec<&str> = readiness
        .projections
        .iter()
        .filter(|p| !p.is_caught_up())
        .map(|p| p.name())
        .collect();
    let store_ok = match store.health().await {
        Ok(()) => store.head().await,
        Err(e) => Err(e),
    };
    match (&store_ok, lagging.is_empty()) {
        (Ok(head), true) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "backend": store.backend_name(),
            "head": head.map(|p| p.to_string()),
        })),
        _ => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "not ready",
            "store": store_ok.err().map(|e| e.to_string()),
            "catchingUp": lagging,
        })),
    }
}

/// Mounts `GET /api/<service>`: which service answers in this process, the stream category it
/// owns and the store it writes to. One handler for every service, parameterised by category.
pub fn service_status(cfg: &mut web::ServiceConfig, category: &'static str) {
    cfg.route(
        &format!("/api/{category}"),
        web::get().to(move |store: web::Data<DynEventStore>| status(category, store)),
    );
}

async fn status(category: &'static str, store: web::Data<DynEventStore>) -> HttpResponse {
    match store.head().await {
        Ok(head) => HttpResponse::Ok().json(serde_json::json!({
            "service": category,
            "category": category,
            "backend": store.backend_name(),
            "head": head.map(|p| p.to_string()),
        })),
        Err(e) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "type": "about:blank",
            "title": "event store unavailable",
            "status": 503,
            "code": "STORE_UNAVAILABLE",
            "detail": e.to_string(),
        })),
    }
}

async fn prometheus() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::global().render())
}

/// Middleware: takes the correlation id from `X-Correlation-Id` (or makes one), puts it in the
/// request extensions and on the request span, echoes it in the response, and records latency
/// per route pattern and status.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let correlation = req
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::new_v4);
    req.extensions_mut().insert(CorrelationId(correlation));
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let span = tracing::info_span!("http", %method, %route, correlation_id = %correlation);
    let mut res = next.call(req).instrument(span).await?;
    let status = res.status().as_u16().to_string();
    metrics::global()
        .histogram(
            "ichigen_http_request_seconds",
            "HTTP request latency by route and status.",
            LATENCY_BUCKETS,
            &[("route", &route), ("method", &method), ("status", &status)],
        )
        .observe_duration(started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&correlation.to_string()) {
        res.headers_mut()
            .insert(HeaderName::from_static(CORRELATION_HEADER), value);
    }
    Ok(res)
}
