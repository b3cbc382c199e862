//! Manual approvals: `GET /v1/approvals` lists the pending ones, `POST /v1/approvals/{id}`
//! with `{"result": "pass"|"fail"}` decides one and sends its `approval.finished`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cloudevents::AttributesReader;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::dispatch::ApprovalError;
use crate::keptn::ResultType;
use crate::store::JournalState;

pub async fn list(State(s): State<ApiState>) -> (StatusCode, Json<Value>) {
    match s.dispatcher.store().open_entries().await {
        Ok(entries) => {
            let items: Vec<Value> = entries
                .into_iter()
                .filter(|e| e.state == JournalState::Pending)
                .map(|e| {
                    let scope = e.event.scope();
                    json!({
                        "triggeredid": e.event.id,
                        "shkeptncontext": e.event.keptn_context,
                        "type": e.event.ty,
                        "project": scope.project,
                        "stage": scope.stage,
                        "service": scope.service,
                        "labels": scope.labels,
                        "result": scope.result,
                        "reason": e.reason,
                        "since": chrono::DateTime::from_timestamp_millis(e.received_at_ms)
                            .map(crate::keptn::time::format_keptn),
                    })
                })
                .collect();
            (StatusCode::OK, Json(json!({ "approvals": items })))
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    result: String,
    #[serde(default)]
    message: String,
}

pub async fn decide(
    State(s): State<ApiState>,
    Path(triggered_id): Path<String>,
    body: Result<Json<Decision>, axum::extract::rejection::JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let Json(d) = match body {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": format!("body must be {{\"result\":\"pass\"|\"fail\"}}: {e}")}),
                ),
            );
        }
    };
    let result = match d.result.as_str() {
        "pass" => ResultType::Pass,
        "fail" => ResultType::Fail,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": format!("result must be \"pass\" or \"fail\", not {other:?}")}),
                ),
            );
        }
    };
    match s
        .dispatcher
        .decide_approval(&triggered_id, result, &d.message)
        .await
    {
        Ok(ev) => (
            StatusCode::OK,
            Json(json!({"triggeredid": triggered_id, "result": d.result, "event_id": ev.id()})),
        ),
        Err(ApprovalError::NotPending(id)) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no pending approval with triggered id {id}")})),
        ),
        Err(e @ ApprovalError::NotSent(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        ),
    }
}
