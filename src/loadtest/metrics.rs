//! Load-test figures for Prometheus: registered into a registry the app owns (served on
//! `/metrics`), updated at the end of every run, so an evaluation can query what load the test
//! put on a service.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::stats::Summary;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    project: String,
    stage: String,
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    project: String,
    stage: String,
    service: String,
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    project: String,
    stage: String,
    service: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    project: String,
    stage: String,
    service: String,
    quantile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    project: String,
    stage: String,
    service: String,
    result: String,
}

/// The load-test metrics (names prefixed `keptn_native_loadtest_`).
#[derive(Debug, Clone, Default)]
pub struct LoadtestMetrics {
    requests: Family<NameLabels, Counter>,
    failures: Family<ClassLabels, Counter>,
    latency: Family<QuantileLabels, Gauge<f64, AtomicU64>>,
    rps: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
    runs: Family<ResultLabels, Counter>,
    running: Gauge,
}

impl LoadtestMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = LoadtestMetrics::default();
        registry.register(
            "keptn_native_loadtest_requests",
            "Requests sent by load tests, by request name",
            m.requests.clone(),
        );
        registry.register(
            "keptn_native_loadtest_failures",
            "Failed load-test requests, by class (connect, timeout, http_<status>, request, body_read)",
            m.failures.clone(),
        );
        registry.register(
            "keptn_native_loadtest_latency_seconds",
            "Latency quantiles of the last load test (all requests)",
            m.latency.clone(),
        );
        registry.register(
            "keptn_native_loadtest_requests_per_second",
            "Achieved request rate of the last load test",
            m.rps.clone(),
        );
        registry.register(
            "keptn_native_loadtest_runs",
            "Load tests finished, by result (pass, warning, fail, errored)",
            m.runs.clone(),
        );
        registry.register(
            "keptn_native_loadtest_running",
            "Load tests running now",
            m.running.clone(),
        );
        m
    }

    /// Counts a run as running until the guard is dropped.
    pub fn running(&self) -> RunningGuard {
        self.running.inc();
        RunningGuard(self.running.clone())
    }

    /// Records a finished run for a project/stage/service.
    pub fn finished(&self, scope: [&str; 3], summary: &Summary, result: &str) {
        let [project, stage, service] = scope.map(String::from);
        for s in &summary.by_name {
            self.requests
                .get_or_create(&NameLabels {
                    project: project.clone(),
                    stage: stage.clone(),
                    service: service.clone(),
                    name: s.name.clone(),
                })
                .inc_by(s.requests);
        }
        for (class, n) in &summary.total.failures {
            self.failures
                .get_or_create(&ClassLabels {
                    project: project.clone(),
                    stage: stage.clone(),
                    service: service.clone(),
                    class: class.to_string(),
                })
                .inc_by(*n);
        }
        let r = summary.total.report(summary.duration_secs);
        for (q, us) in [
            ("0.5", r.p50_us),
            ("0.9", r.p90_us),
            ("0.95", r.p95_us),
            ("0.99", r.p99_us),
            ("1", r.max_us),
        ] {
            self.latency
                .get_or_create(&QuantileLabels {
                    project: project.clone(),
                    stage: stage.clone(),
                    service: service.clone(),
                    quantile: q.into(),
                })
                .set(us as f64 / 1e6);
        }
        self.rps
            .get_or_create(&ScopeLabels {
                project: project.clone(),
                stage: stage.clone(),
                service: service.clone(),
            })
            .set(r.rps);
        self.runs
            .get_or_create(&ResultLabels {
                project,
                stage,
                service,
                result: result.into(),
            })
            .inc();
    }
}

/// Decrements the running gauge when dropped.
#[derive(Debug)]
pub struct RunningGuard(Gauge);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
