//! `POST /events`: a CloudEvent in structured mode (JSON body) or binary mode (`ce-*`
//! headers), as Keptn's distributor delivers it; handled exactly like a NATS message.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::ApiState;
use crate::dispatch::Outcome;
use crate::keptn::envelope::decode_binary;

pub async fn receive(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    // Binary mode when the attributes come as headers; the body is then only `data`.
    let outcome = if headers.contains_key("ce-specversion") || headers.contains_key("ce-id") {
        match decode_binary(&headers, &body) {
            Ok(env) => s.dispatcher.dispatch(env).await,
            Err(e) => s.dispatcher.reject(&e, body.len()),
        }
    } else {
        s.dispatcher.dispatch_bytes(&body).await
    };
    let status = match &outcome {
        Outcome::Handled | Outcome::Settled => StatusCode::ACCEPTED,
        Outcome::Duplicate | Outcome::Ignored(_) => StatusCode::OK,
        Outcome::Rejected(_) => StatusCode::BAD_REQUEST,
        Outcome::Retry(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let reason = match &outcome {
        Outcome::Ignored(r) | Outcome::Rejected(r) | Outcome::Retry(r) => Some(r.clone()),
        _ => None,
    };
    (
        status,
        Json(json!({"outcome": outcome.label(), "reason": reason})),
    )
}
