//! HTTP routes of the fulfillment service, mounted under `/api/fulfillment`.

use actix_web::{web, HttpResponse};
use ichigen_shared::store::DynEventStore;

/// Mounts the routes; expects `web::Data<DynEventStore>` in app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/fulfillment", web::get().to(status));
}

/// Which service answers, the category it owns and the store it writes to.
async fn status(store: web::Data<DynEventStore>) -> HttpResponse {
    match store.head().await {
        Ok(head) => HttpResponse::Ok().json(serde_json::json!({
            "service": "fulfillment",
            "category": super::CATEGORY,
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
