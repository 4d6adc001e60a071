//! Health, readiness and metrics: the routes an orchestrator and a monitoring system poll.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// `sqlite` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        store: None,
    })
}

/// The store answers and the actor tree runs; 503 `not_ready` when not.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::http::error::ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<web::Json<Health>> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::NotReady(format!("store: {e}")))?;
    // One client's failure does not make the node unready; the tree's own children do.
    if !state.hub.health().is_healthy() {
        return Err(ApiError::NotReady("the actor tree is down".into()));
    }
    Ok(web::Json(Health {
        status: "ok",
        store: Some(state.store.engine()),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
