//! A small real HTTP server standing in for Keptn's resource-service (§8): it serves files by
//! their in-cluster path (`/v1/project/p/stage/s/service/svc/resource/prometheus%2Fsli.yaml`)
//! as `{"resourceContent": base64}`, answers 404 otherwise, can be told to fail with a status,
//! and logs every request path and query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;

#[derive(Default)]
struct Inner {
    files: HashMap<String, Vec<u8>>,
    fail_with: Option<u16>,
    log: Vec<String>,
}

#[derive(Clone)]
pub struct ResourceService {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    _task: Arc<tokio::task::JoinHandle<()>>,
}

/// The in-cluster path of a resource (URI encoded once).
pub fn path(project: &str, stage: Option<&str>, service: Option<&str>, uri: &str) -> String {
    let mut p = format!("/v1/project/{project}");
    if let Some(s) = stage {
        p.push_str(&format!("/stage/{s}"));
        if let Some(svc) = service {
            p.push_str(&format!("/service/{svc}"));
        }
    }
    p.push_str(&format!("/resource/{}", uri.replace('/', "%2F")));
    p
}

async fn serve(State(inner): State<Arc<Mutex<Inner>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let mut g = inner.lock().expect("lock");
    g.log.push(req.uri().to_string());
    if let Some(code) = g.fail_with {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, format!("{{\"code\":{code},\"message\":\"Could not check out branch containing stage config\"}}")).into_response();
    }
    match g.files.get(&path) {
        Some(b) => {
            let content = base64::engine::general_purpose::STANDARD.encode(b);
            axum::Json(serde_json::json!({"resourceURI": path, "resourceContent": content}))
                .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            "{\"code\":404,\"message\":\"Resource not found\"}",
        )
            .into_response(),
    }
}

impl ResourceService {
    pub async fn start() -> ResourceService {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(serve).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ResourceService {
            inner,
            url,
            _task: Arc::new(task),
        }
    }

    pub fn put(&self, path: String, content: impl Into<Vec<u8>>) {
        self.inner
            .lock()
            .expect("lock")
            .files
            .insert(path, content.into());
    }

    pub fn fail_with(&self, status: u16) {
        self.inner.lock().expect("lock").fail_with = Some(status);
    }

    pub fn log(&self) -> Vec<String> {
        self.inner.lock().expect("lock").log.clone()
    }
}

impl Drop for ResourceService {
    fn drop(&mut self) {
        if Arc::strong_count(&self._task) == 1 {
            self._task.abort();
        }
    }
}
