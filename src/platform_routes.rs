//! Routes every instance serves whatever its services: health, readiness, metrics and the API documentation.

use actix_web::{HttpResponse, get, web};
use clavis_core::{ClavisError, ErrorCode, Platform};
use serde_json::json;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "platform", responses((status = 200, description = "Alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "platform",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "1001 database unavailable", body = clavis_core::error::Problem),
    )
)]
#[get("/readyz")]
pub async fn readyz(platform: web::Data<Platform>) -> Result<HttpResponse, ClavisError> {
    if clavis_core::db::ping(&platform.db).await {
        Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
    } else {
        Err(ClavisError::new(ErrorCode::DatabaseUnavailable, "the database does not answer"))
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "platform", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(platform: web::Data<Platform>) -> HttpResponse {
    // Pool use is sampled when scraped: a gauge that is only as old as the scrape.
    if let Some((open, idle)) = clavis_core::db::pool_stats(&platform.db) {
        let busy = (open as usize).saturating_sub(idle);
        ::metrics::gauge!("clavis_db_pool_connections", "state" => "idle").set(idle as f64);
        ::metrics::gauge!("clavis_db_pool_connections", "state" => "busy").set(busy as f64);
    }
    let body = clavis_core::telemetry::metrics().map(|handle| handle.render()).unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// The API page matches `/api-docs/*` with a pattern; mounted last so other requests never try it.
pub fn configure_docs(cfg: &mut web::ServiceConfig) {
    cfg.service(
        utoipa_swagger_ui::SwaggerUi::new("/api-docs/{_:.*}").url("/api-docs/openapi.json", crate::openapi::document()),
    );
}
