//! The quality gate against a real Prometheus holding deterministic data (backfilled), with
//! a real HTTP server standing in for Keptn's resource-service: the tutorial's SLO and SLIs
//! give `pass` for a fast service and `fail` for a slow one, and every error path answers.

use std::sync::Arc;

use serde_json::{Value, json};

use keptn_native::evaluation::history::InMemoryHistory;
use keptn_native::evaluation::prometheus::{PrometheusProvider, PrometheusSettings};
use keptn_native::handlers::evaluation::EvaluationHandler;
use keptn_native::handlers::{TaskHandler, TaskOutcome, TaskRequest};
use keptn_native::keptn::{Finished, ResultType, StatusType, TriggeredEvent};
use keptn_native::resources::keptn::KeptnResources;

use super::{cli, write};
use crate::harness::free_port;
use crate::harness::prometheus::{Prometheus, openmetrics};
use crate::harness::resource_service::{ResourceService, path};

pub(super) const SLO: &str = include_str!("../../../assets/tutorial/slo.yaml");
pub(super) const SLI: &str = include_str!("../../../assets/tutorial/sli.yaml");
/// 2024-01-01T10:10:00Z: the end of every evaluation window here.
const T_END: i64 = 1_704_103_800;
pub(super) const START: &str = "2024-01-01T10:08:00.000Z";
pub(super) const END: &str = "2024-01-01T10:10:00.000Z";

/// 2 requests/s for 20 minutes before T_END; `fast` answers in 50 ms, `slow` in 350 ms.
pub(super) fn data() -> String {
    let t0 = T_END - 1200;
    let times: Vec<i64> = (0..=80).map(|i| t0 + i * 15).collect();
    let series = |f: &dyn Fn(i64) -> f64| times.iter().map(|t| (*t, f(*t))).collect::<Vec<_>>();
    let http =
        |svc: &str| format!(r#"job="{svc}-fulltour-qa",method="GET",route="/",status_code="200""#);
    let job = |svc: &str| format!(r#"job="{svc}-fulltour-qa""#);
    let mut sum = Vec::new();
    let mut count = Vec::new();
    let mut requests = Vec::new();
    let mut routines = Vec::new();
    for (svc, latency) in [("fast", 0.05), ("slow", 0.35)] {
        sum.push((http(svc), series(&|t| 2.0 * latency * (t - t0) as f64)));
        count.push((http(svc), series(&|t| 2.0 * (t - t0) as f64)));
        requests.push((
            format!(r#"{},status="success""#, job(svc)),
            series(&|t| 2.0 * (t - t0) as f64),
        ));
        routines.push((job(svc), series(&|_| 8.0)));
    }
    requests.push((
        format!(r#"{},status="error""#, job("fast")),
        series(&|_| 0.0),
    ));
    openmetrics(&[
        ("http_server_request_duration_seconds_sum", sum),
        ("http_server_request_duration_seconds_count", count),
        ("http_requests_total", requests),
        ("go_goroutines", routines),
    ])
}

struct Setup {
    prometheus: Prometheus,
    resources: ResourceService,
    history: Arc<InMemoryHistory>,
}

impl Setup {
    async fn new() -> Setup {
        let prometheus = Prometheus::start(&data()).await;
        let resources = ResourceService::start().await;
        resources.put(path("fulltour", None, None, "prometheus/sli.yaml"), SLI);
        for svc in ["fast", "slow"] {
            resources.put(path("fulltour", Some("qa"), Some(svc), "slo.yaml"), SLO);
        }
        Setup {
            prometheus,
            resources,
            history: Arc::new(InMemoryHistory::new()),
        }
    }

    fn handler_for(&self, prometheus_url: &str) -> EvaluationHandler {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        EvaluationHandler::new(
            Arc::new(KeptnResources::in_cluster(
                client.clone(),
                &self.resources.url,
            )),
            Arc::new(PrometheusProvider::new(
                client,
                PrometheusSettings {
                    endpoint: Some(prometheus_url.to_string()),
                    timeout: std::time::Duration::from_secs(10),
                    ..Default::default()
                },
            )),
            self.history.clone(),
        )
    }

    fn handler(&self) -> EvaluationHandler {
        self.handler_for(&self.prometheus.url())
    }
}

fn event(id: &str, service: &str, data: Value) -> TriggeredEvent {
    let mut d = json!({
        "project": "fulltour", "stage": "qa", "service": service,
        "labels": {"buildId": "7"},
        "evaluation": {"start": START, "end": END},
        "deployment": {"deploymentNames": ["direct"]}
    });
    if let (Some(d), Some(extra)) = (d.as_object_mut(), data.as_object()) {
        for (k, v) in extra {
            d.insert(k.clone(), v.clone());
        }
    }
    TriggeredEvent {
        id: id.into(),
        ty: "sh.keptn.event.qa.evaluation.triggered".into(),
        task: "evaluation".into(),
        keptn_context: format!("ctx-{id}"),
        git_commit_id: Some("c0ffee".into()),
        source: "test".into(),
        time: None,
        data: d,
    }
}

async fn run(h: &EvaluationHandler, ev: TriggeredEvent) -> Finished {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        h.handle(TaskRequest {
            event: ev,
            cancel: Default::default(),
        }),
    )
    .await
    .expect("handler answers in time")
    .expect("handler returns an outcome");
    match out {
        TaskOutcome::Finished(f) => f,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn indicators(f: &Finished) -> Vec<Value> {
    f.extra["evaluation"]["indicatorResults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_gate_passes_fast_and_fails_slow_service() {
    if Prometheus::binaries().is_none() {
        panic!("prometheus is not installed: apt-get install -y prometheus");
    }
    let s = Setup::new().await;
    let h = s.handler();

    let fast = run(&h, event("fast-1", "fast", json!({}))).await;
    assert_eq!(
        (fast.status, fast.result),
        (StatusType::Succeeded, ResultType::Pass),
        "{}",
        fast.message
    );
    let ev = &fast.extra["evaluation"];
    assert_eq!(ev["result"], "pass");
    assert_eq!(ev["score"], 100.0);
    assert_eq!(
        (ev["timeStart"].as_str(), ev["timeEnd"].as_str()),
        (Some(START), Some(END))
    );
    assert_eq!(ev["sloFileContent"], base64_of(SLO));
    let r = indicators(&fast);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[0]["value"]["metric"],
        "http_response_time_seconds_main_page_sum"
    );
    let rt = r[0]["value"]["value"].as_f64().expect("value");
    assert!((rt - 0.05).abs() < 1e-9, "response time {rt}");
    assert_eq!(r[0]["status"], "pass");
    assert_eq!(r[0]["keySli"], true);
    let q = r[0]["query"].as_str().expect("query");
    assert!(
        q.contains(r#"job="fast-fulltour-qa""#) && q.contains("[120s]"),
        "{q}"
    );
    assert_eq!(
        r[0]["explanation"],
        "0.05 <= 0.2 (pass criterion <=0.2 met) (key SLI)"
    );
    assert_eq!(r[2]["value"]["value"], 8.0);
    assert!(
        fast.message
            .starts_with("Quality gate pass: score 100 (pass >= 80, warning >= 50)."),
        "{}",
        fast.message
    );
    // gitCommitID reached the resource-service for the service-level files
    assert!(
        s.resources.log().iter().any(|l| l
            == "/v1/project/fulltour/stage/qa/service/fast/resource/slo.yaml?gitCommitID=c0ffee"),
        "{:?}",
        s.resources.log()
    );

    let slow = run(&h, event("slow-1", "slow", json!({}))).await;
    assert_eq!(
        (slow.status, slow.result),
        (StatusType::Succeeded, ResultType::Fail)
    );
    assert!(
        slow.message.starts_with(
            "Evaluation failed due to key_sli objective 'HTTP Response Time': failed evaluation with score 0.000000\nQuality gate fail: score 66.67"
        ),
        "{}",
        slow.message
    );
    assert!(
        slow.message
            .contains("FAIL HTTP Response Time: 0.35 > 0.2 (pass criterion <=0.2 violated)"),
        "{}",
        slow.message
    );
    let r = indicators(&slow);
    assert_eq!(r[0]["status"], "fail");
    assert_eq!(slow.extra["evaluation"]["result"], "fail");

    // A second fast evaluation compares with the first (relative throughput criterion).
    let again = run(&h, event("fast-2", "fast", json!({}))).await;
    assert_eq!(again.result, ResultType::Pass);
    assert_eq!(
        again.extra["evaluation"]["comparedEvents"],
        json!(["fast-1"])
    );
    let r = indicators(&again);
    let tp = &r[1];
    assert_eq!(tp["value"]["metric"], "request_throughput");
    let compared = tp["value"]["comparedValue"].as_f64().expect("compared");
    let target = tp["passTargets"][0]["targetValue"]
        .as_f64()
        .expect("target");
    assert!(
        compared > 1.5,
        "compared with the first run's throughput: {compared}"
    );
    assert!(
        (target - compared * 0.2).abs() < 1e-9,
        ">=-80% of {compared} is {target}"
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sli_error_is_reported_per_indicator() {
    let s = Setup::new().await;
    s.resources.put(
        path("fulltour", Some("qa"), Some("odd"), "slo.yaml"),
        "objectives:\n  - sli: nodata\n    pass: [{criteria: [\"<1\"]}]\n  - sli: several\n    pass: [{criteria: [\"<1\"]}]\n  - sli: broken\n    pass: [{criteria: [\"<1\"]}]\n  - sli: nan\n    pass: [{criteria: [\"<1\"]}]\n  - sli: unknown\n    pass: [{criteria: [\"<1\"]}]\n  - sli: injected\n    pass: [{criteria: [\"<=8\"]}]\ntotal_score:\n  pass: \"90%\"\n",
    );
    s.resources.put(
        path("fulltour", Some("qa"), Some("odd"), "prometheus/sli.yaml"),
        "indicators:\n  nodata: nonexistent_metric{job=\"$SERVICE\"}\n  several: http_requests_total{job=\"fast-fulltour-qa\"}\n  broken: sum(\n  nan: vector(0)/vector(0)\n  injected: go_goroutines{job=\"fast-$PROJECT-$STAGE\",x!=\"$LABEL.evil\"}\n",
    );
    let evil = r#"x"} or vector(100) or up{a=""#;
    let f = run(
        &s.handler(),
        event("odd-1", "odd", json!({"labels": {"evil": evil}})),
    )
    .await;
    let r = indicators(&f);
    let msg = |i: usize| {
        r[i]["value"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(msg(0), "query did not return any values");
    assert!(
        msg(1).starts_with("query did return multiple values (2 series"),
        "{}",
        msg(1)
    );
    assert!(
        msg(2).starts_with("unable to query prometheus api: "),
        "{}",
        msg(2)
    );
    assert_eq!(msg(3), "query did not return valid values");
    assert!(msg(4).starts_with("unsupported SLI unknown"), "{}", msg(4));
    // the label could not leave its string literal: the query still returns the one series
    assert_eq!(r[5]["value"]["success"], true, "{}", r[5]);
    assert_eq!(r[5]["value"]["value"], 8.0);
    assert!(
        r[5]["query"]
            .as_str()
            .expect("q")
            .contains(r#"x!="x\"} or vector(100) or up{a=\"""#)
    );
    assert_eq!(
        r[0]["explanation"],
        "no value: query did not return any values"
    );
    assert_eq!(f.result, ResultType::Fail);
    assert_eq!(f.status, StatusType::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_fails_the_gate_with_a_clear_message() {
    let s = Setup::new().await;
    let h = s.handler_for(&format!("http://127.0.0.1:{}", free_port()));
    let f = run(&h, event("down-1", "fast", json!({}))).await;
    assert_eq!(
        (f.status, f.result),
        (StatusType::Succeeded, ResultType::Fail)
    );
    assert!(
        f.message.starts_with(
            "lighthouse failed because SLI failed with message unable to retrieve metrics"
        ),
        "{}",
        f.message
    );
    for r in indicators(&f) {
        assert!(
            r["value"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("unable to query prometheus api"),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_problems_answer_without_querying() {
    let resources = ResourceService::start().await;
    let s = Setup {
        prometheus: Prometheus::start(&data()).await,
        resources: resources.clone(),
        history: Arc::new(InMemoryHistory::new()),
    };
    let h = s.handler();
    // missing slo.yaml: Keptn's pass
    let f = run(&h, event("none-1", "nothing", json!({}))).await;
    assert_eq!(
        (f.status, f.result),
        (StatusType::Succeeded, ResultType::Pass)
    );
    assert_eq!(
        f.message,
        "no evaluation performed by lighthouse because no SLO file configured for project fulltour"
    );
    assert_eq!(f.extra["evaluation"]["result"], "pass");
    // invalid slo.yaml: errored, names the line
    resources.put(
        path("fulltour", Some("qa"), Some("bad"), "slo.yaml"),
        "objectives:\n  - sli: a\n    weight: heavy\n",
    );
    let f = run(&h, event("bad-1", "bad", json!({}))).await;
    assert_eq!(
        (f.status, f.result),
        (StatusType::Errored, ResultType::Fail)
    );
    // lighthouse's computeObjectives: "error retrieving SLO file: " + GetSLOs' error
    assert_eq!(
        f.message.lines().next(),
        Some(
            "error retrieving SLO file: Could not parse SLO file for service bad in stage qa in project fulltour"
        ),
        "{}",
        f.message
    );
    assert!(f.message.contains("line 3"), "{}", f.message);
    // no timeframe at all
    let f = run(&h, event("tf-1", "bad", json!({"evaluation": {}}))).await;
    assert_eq!(f.status, StatusType::Errored);
    assert_eq!(
        f.message,
        "evaluation.triggered event does not contain evaluation timeframe"
    );
    // resource-service failing
    resources.fail_with(500);
    let f = run(&h, event("rs-1", "fast", json!({}))).await;
    assert_eq!(
        (f.status, f.result),
        (StatusType::Errored, ResultType::Fail)
    );
    assert!(
        f.message.starts_with("error retrieving SLO file: "),
        "{}",
        f.message
    );
    assert!(f.message.contains("HTTP 500"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_queries_prometheus_and_sets_the_exit_code() {
    let prometheus = Prometheus::start(&data()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let slo = write(dir.path(), "slo.yaml", SLO);
    let sli = write(dir.path(), "sli.yaml", SLI);
    let url = prometheus.url();
    let args = |svc: &'static str| {
        vec![
            "--slo".to_string(),
            slo.clone(),
            "--sli".into(),
            sli.clone(),
            "--prometheus".into(),
            url.clone(),
            "--project".into(),
            "fulltour".into(),
            "--stage".into(),
            "qa".into(),
            "--service".into(),
            svc.into(),
            "--start".into(),
            START.into(),
            "--end".into(),
            END.into(),
            "--fail-on".into(),
            "fail".into(),
        ]
    };
    let run_cli = |svc| {
        let a = args(svc);
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = tokio::task::block_in_place(|| cli(&argv));
        let data: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code(),
            data,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, data, stderr) = run_cli("fast");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(data["result"], "pass");
    assert_eq!(
        data["evaluation"]["indicatorResults"][0]["value"]["value"],
        0.05
    );
    let (code, data, stderr) = run_cli("slow");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(data["result"], "fail");
    assert!(stderr.contains("Quality gate fail"), "{stderr}");
    // unusable input: exit 2
    let out = cli(&[
        "--slo",
        "/nonexistent/slo.yaml",
        "--values",
        "/nonexistent/v.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read SLO file"));
}
