//! Previous results from Keptn's mongodb-datastore API. The datastore needs MongoDB, which
//! cannot run here, so a real HTTP server stands in for it at the HTTP boundary: it checks the
//! request lighthouse would send and answers a page of events.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use keptn_native::evaluation::history::{DatastoreHistory, EvaluationHistory, HistoryScope};

type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn datastore(State(log): State<Log>, req: Request) -> Response {
    let token = req
        .headers()
        .get("x-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    log.lock()
        .expect("lock")
        .push((req.uri().to_string(), token));
    if req.uri().path() != "/mongodb-datastore/event/type/sh.keptn.event.evaluation.finished" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if req
        .uri()
        .query()
        .unwrap_or_default()
        .contains("service%3Abroken")
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    axum::Json(json!({
        "events": [
            {"id": "e3", "data": {"result": "pass", "evaluation": {"indicatorResults": [
                {"score": 1, "value": {"metric": "rt", "value": 0.1, "success": true}, "status": "pass"}]}}},
            {"id": "e2", "data": {"result": "pass", "evaluation": {"indicatorResults": null}}},
            {"id": "e1", "data": {"result": "pass"}}
        ],
        "nextPageKey": "0", "totalCount": 3, "pageSize": 3
    }))
    .into_response()
}

#[tokio::test]
async fn datastore_history_sends_lighthouses_query() {
    let log: Log = Arc::default();
    let app = Router::new().fallback(datastore).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!(
        "http://{}/mongodb-datastore",
        listener.local_addr().expect("addr")
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h = DatastoreHistory::new(reqwest::Client::new(), base, Some("secret-token".into()));
    let scope = HistoryScope {
        project: "fulltour".into(),
        stage: "qa".into(),
        service: "helloservice".into(),
    };
    let got = h
        .previous(&scope, Some(&["pass", "warning"]), 2)
        .await
        .expect("ok");
    assert_eq!(
        got.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["e3", "e2"],
        "limited to 2"
    );
    assert_eq!(
        got[0].indicator_results[0].value.as_ref().expect("v").value,
        0.1
    );
    let (uri, token) = log.lock().expect("lock")[0].clone();
    assert_eq!(token.as_deref(), Some("secret-token"));
    assert!(uri.contains("limit=2"), "{uri}");
    assert!(uri.contains("excludeInvalidated=true"), "{uri}");
    assert!(
        uri.contains("filter=data.project%3Afulltour+AND+data.stage%3Aqa+AND+data.service%3Ahelloservice+AND+data.result%3Apass%2Cwarning"),
        "{uri}"
    );
    let broken = HistoryScope {
        service: "broken".into(),
        ..scope
    };
    let err = h.previous(&broken, None, 1).await.expect_err("500");
    assert!(
        err.to_string()
            .starts_with("could not retrieve previous evaluation.finished events"),
        "{err}"
    );
    server.abort();
}
