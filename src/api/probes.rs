//! `/health`, `/ready` and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ApiState;
use crate::metrics::render;

/// Liveness: the process serves HTTP.
pub async fn health() -> &'static str {
    "ok"
}

/// Readiness: 200 only while NATS is connected.
pub async fn ready(State(s): State<ApiState>) -> impl IntoResponse {
    if s.connectivity.is_connected() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NATS is not connected")
    }
}

pub async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&s.registry),
    )
}
