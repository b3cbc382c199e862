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

/// Readiness: 200 only while NATS is connected and the subscriptions or JetStream consumers
/// exist (they are made after the journal was recovered, so the store is usable too).
pub async fn ready(State(s): State<ApiState>) -> impl IntoResponse {
    if !s.connectivity.is_connected() {
        (StatusCode::SERVICE_UNAVAILABLE, "NATS is not connected")
    } else if !s.connectivity.is_consuming() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "recovering the journal or creating the subscriptions",
        )
    } else {
        (StatusCode::OK, "ready")
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
