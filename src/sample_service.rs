//! A small HTTP service that stands in for the tutorial's podtato-head server (for the
//! `process` deployment backend and the demo).
//!
//! It answers `/` (an HTML page naming its version), `/version` (JSON: version, image, stage),
//! and `/metrics` with the
//! series the tutorial's SLIs query: `http_server_request_duration_seconds_{sum,count,bucket}`
//! with `method`, `route`, `status_code`; `http_requests_total{status}`; `go_goroutines` (the
//! number of live tokio tasks of this process); `promhttp_metric_handler_requests_total{code}`.
//! Version `v0.1.2` is the tutorial's slow build: `/` takes [`SLOW_BUILD_DELAY`], above the
//! killercoda SLO's `<=0.2` s pass criterion on the response time. Version `v0.1.3` behaves
//! well in qa and is slow only in production: "services can and will act differently in
//! production". The service learns its stage from the deployment (`--stage`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The tag of the tutorial's slow build.
pub const SLOW_VERSION: &str = "v0.1.2";
/// How long the slow build takes to answer `/`.
pub const SLOW_BUILD_DELAY: Duration = Duration::from_millis(500);
/// The tag of the build that is slow only in production.
pub const PRODUCTION_SLOW_VERSION: &str = "v0.1.3";
/// The stage in which [`PRODUCTION_SLOW_VERSION`] is slow.
pub const PRODUCTION: &str = "production";

type Labels = Vec<(String, String)>;

fn new_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

struct Metrics {
    registry: Registry,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    requests: Family<Labels, Counter>,
    goroutines: Gauge,
    promhttp: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let duration: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(new_histogram);
        let requests = Family::<Labels, Counter>::default();
        let goroutines = Gauge::default();
        let promhttp = Family::<Labels, Counter>::default();
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests",
            duration.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by outcome",
            requests.clone(),
        );
        registry.register(
            "go_goroutines",
            "Live tasks of this process (podtato-head reports goroutines)",
            goroutines.clone(),
        );
        registry.register(
            "promhttp_metric_handler_requests",
            "Scrapes of /metrics by HTTP status code",
            promhttp.clone(),
        );
        Metrics {
            registry,
            duration,
            requests,
            goroutines,
            promhttp,
        }
    }
}

struct AppState {
    version: String,
    image: Option<String>,
    stage: Option<String>,
    delay: Duration,
    metrics: Metrics,
}

/// Settings of the sample service.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    pub version: String,
    /// The full image reference it stands for, reported by `/version`.
    pub image: Option<String>,
    /// The stage it was deployed to, reported by `/version`.
    pub stage: Option<String>,
    /// Delay of `/`; `None` = [`SLOW_BUILD_DELAY`] for [`SLOW_VERSION`] anywhere and for
    /// [`PRODUCTION_SLOW_VERSION`] in production, none otherwise.
    pub delay: Option<Duration>,
}

impl SampleConfig {
    pub fn delay(&self) -> Duration {
        let slow = self.version == SLOW_VERSION
            || (self.version == PRODUCTION_SLOW_VERSION
                && self.stage.as_deref() == Some(PRODUCTION));
        self.delay.unwrap_or(if slow {
            SLOW_BUILD_DELAY
        } else {
            Duration::ZERO
        })
    }
}

/// The sample service's routes.
pub fn router(config: &SampleConfig) -> Router {
    let state = Arc::new(AppState {
        version: config.version.clone(),
        image: config.image.clone(),
        stage: config.stage.clone(),
        delay: config.delay(),
        metrics: Metrics::new(),
    });
    Router::new()
        .route("/", get(index))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: SampleConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(&config))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn index(State(s): State<Arc<AppState>>) -> Html<String> {
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    Html(format!(
        "<html><head><title>podtato-head</title></head><body><h1>Hello from podtato-head</h1>\
         <p>version {}</p></body></html>",
        s.version
    ))
}

async fn version(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({ "version": s.version, "image": s.image, "stage": s.stage }))
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    s.metrics
        .goroutines
        .set(i64::try_from(alive).unwrap_or(i64::MAX));
    s.metrics
        .promhttp
        .get_or_create(&vec![("code".into(), "200".into())])
        .inc();
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &s.metrics.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Records duration and outcome of every request except scrapes of `/metrics`.
async fn observe(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    if route == "/metrics" {
        return resp;
    }
    let code = resp.status();
    s.metrics
        .duration
        .get_or_create(&vec![
            ("method".into(), method),
            ("route".into(), route),
            ("status_code".into(), code.as_u16().to_string()),
        ])
        .observe(started.elapsed().as_secs_f64());
    let status = if code.is_client_error() || code.is_server_error() {
        "error"
    } else {
        "success"
    };
    s.metrics
        .requests
        .get_or_create(&vec![("status".into(), status.into())])
        .inc();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_slow_build_is_slow_by_default() {
        let c = |v: &str| SampleConfig {
            version: v.into(),
            image: None,
            stage: None,
            delay: None,
        };
        assert_eq!(c("v0.1.2").delay(), SLOW_BUILD_DELAY);
        let in_stage = |v: &str, stage: &str| SampleConfig {
            stage: Some(stage.into()),
            ..c(v)
        };
        assert_eq!(in_stage("v0.1.2", "qa").delay(), SLOW_BUILD_DELAY);
        assert_eq!(in_stage("v0.1.3", "qa").delay(), Duration::ZERO);
        assert_eq!(in_stage("v0.1.3", "production").delay(), SLOW_BUILD_DELAY);
        assert_eq!(
            c("v0.1.3").delay(),
            Duration::ZERO,
            "no stage, not production"
        );
        assert_eq!(in_stage("v0.1.1", "production").delay(), Duration::ZERO);
        assert!(
            SLOW_BUILD_DELAY > Duration::from_millis(200),
            "must fail the SLO's <=0.2s"
        );
        assert_eq!(c("v0.1.1").delay(), Duration::ZERO);
    }
}
