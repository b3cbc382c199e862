//! The HTTP API: CloudEvents ingress (`POST /events`), probes, metrics and the manual
//! approval endpoints. Write endpoints require the `x-token` header when a token is set.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::dispatch::Dispatcher;
use crate::transport::nats::Connectivity;

mod approvals;
mod events;
mod probes;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub dispatcher: Arc<Dispatcher>,
    pub registry: Arc<Registry>,
    pub connectivity: Arc<Connectivity>,
    pub token: Option<Secret>,
}

/// Builds the router. `max_body` caps every request body.
pub fn router(state: ApiState, max_body: usize) -> Router {
    let protected = Router::new()
        .route("/events", post(events::receive))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{triggered_id}", post(approvals::decide))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(probes::metrics))
        .merge(protected)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Rejects requests without the configured token (constant-time comparison).
async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let given = req
            .headers()
            .get("x-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(expected.expose().as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "missing or wrong x-token header"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}
