//! The load generator and the `test` handler against a real local HTTP server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keptn_native::handlers::test::TestHandler;
use keptn_native::handlers::{TaskHandler, TaskOutcome, TaskRequest};
use keptn_native::keptn::{Finished, ResultType, StatusType, TriggeredEvent};
use keptn_native::loadtest::stats::ErrorClass;
use keptn_native::loadtest::{
    self, LoadtestMetrics, LoadtestSettings, PlanFile, Progress, Target, Workload,
};
use keptn_native::resources::LocalDir;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::http_target::{HttpTarget, closed_port};

/// Every test run is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

fn workload(yaml: &str) -> Workload {
    PlanFile::parse("t.yaml", yaml)
        .expect("parse")
        .select("t.yaml", "")
        .expect("select")
        .validate("t.yaml")
        .expect("valid")
}

async fn run(w: &Workload, url: &str) -> loadtest::RunResult {
    let target = Target::parse(url).expect("target");
    tokio::time::timeout(
        BOUND,
        loadtest::run(
            w,
            &target,
            CancellationToken::new(),
            Arc::new(Progress::default()),
        ),
    )
    .await
    .expect("run finished in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_count_matches_the_servers_own_counter() {
    let srv = HttpTarget::start().await;
    let w = workload(
        r#"
workloads:
  - users: 4
    iterations: 500
    requests:
      - { name: home, path: /, weight: 3 }
      - { name: echo, method: POST, path: /echo, json: { a: 1 }, weight: 1 }
"#,
    );
    let r = run(&w, &srv.url).await;
    assert_eq!(r.summary.total.requests, 500);
    assert_eq!(
        srv.count(),
        500,
        "server saw a different number of requests"
    );
    assert_eq!(
        r.summary.total.failure_count(),
        0,
        "{:?}",
        r.summary.total.failures
    );
    let names: Vec<(&str, u64)> = r
        .summary
        .by_name
        .iter()
        .map(|s| (s.name.as_str(), s.requests))
        .collect();
    assert_eq!(names.len(), 2);
    let home = names.iter().find(|n| n.0 == "home").expect("home").1;
    // Weighted 3:1 => ~375 of 500; allow generous randomness.
    assert!((300..=450).contains(&home), "home got {home}");
    assert!(r.summary.total.latency.max() > 0);
}

#[tokio::test]
async fn run_time_and_think_time_bound_a_closed_run() {
    let srv = HttpTarget::start().await;
    // 2 users, constant 0.2 s think time, 1 s: each user sends ~5 requests.
    let w = workload(
        "workloads:\n  - users: 2\n    wait_time: { constant: 0.2 }\n    run_time: 1s\n    requests: [ { path: / } ]\n",
    );
    let r = run(&w, &srv.url).await;
    let n = r.summary.total.requests;
    assert_eq!(srv.count(), n);
    assert!((6..=12).contains(&n), "expected ~10 requests, got {n}");
    assert!(!r.cancelled);
}

#[tokio::test]
async fn open_model_keeps_its_rate_and_counts_match() {
    let srv = HttpTarget::start().await;
    let w =
        workload("workloads:\n  - rate: 200\n    run_time: 1s\n    requests: [ { path: / } ]\n");
    let r = run(&w, &srv.url).await;
    let n = r.summary.total.requests;
    assert_eq!(srv.count(), n);
    assert!(
        (190..=201).contains(&n),
        "expected 200 requests at 200/s for 1 s, got {n}"
    );
}

#[tokio::test]
async fn open_model_measures_from_the_intended_start() {
    // One connection at a time to a 200 ms target, 10 requests scheduled 100 ms apart: the
    // server never takes more than ~200 ms, but requests queue, and the queueing is latency.
    let srv = HttpTarget::start().await;
    let w = workload(
        "workloads:\n  - rate: 10\n    max_in_flight: 1\n    iterations: 10\n    run_time: 5s\n    requests: [ { path: /delay/200 } ]\n",
    );
    let r = run(&w, &srv.url).await;
    assert_eq!(r.summary.total.requests, 10);
    let max_ms = r.summary.total.latency.max() as f64 / 1000.0;
    // Request i starts at 100 ms * i but completes at ~200 ms * (i + 1): the last waits ~1.1 s.
    assert!(
        max_ms > 900.0,
        "max latency {max_ms} ms: coordinated omission?"
    );
    let min_ms = r.summary.total.latency.min() as f64 / 1000.0;
    assert!((195.0..400.0).contains(&min_ms), "min latency {min_ms} ms");
}

#[tokio::test]
async fn errors_are_classified() {
    let srv = HttpTarget::start().await;
    for (path, class) in [
        ("/status/503", ErrorClass::Status(503)),
        ("/status/404", ErrorClass::Status(404)),
        ("/delay/2000", ErrorClass::Timeout),
        ("/broken", ErrorClass::BodyRead),
    ] {
        let w = workload(&format!(
            "workloads:\n  - iterations: 2\n    timeout: 300ms\n    requests: [ {{ path: \"{path}\" }} ]\n"
        ));
        let r = run(&w, &srv.url).await;
        assert_eq!(r.summary.total.requests, 2, "{path}");
        assert_eq!(
            r.summary.total.failures.get(&class),
            Some(&2),
            "{path}: {:?}",
            r.summary.total.failures
        );
        assert_eq!(r.summary.total.failure_count(), 2, "{path}");
        if class == ErrorClass::Timeout {
            // Timeouts are recorded at about the timeout.
            let ms = r.summary.total.latency.max() as f64 / 1000.0;
            assert!((290.0..1000.0).contains(&ms), "timeout latency {ms} ms");
        }
    }

    let refused = format!("http://127.0.0.1:{}", closed_port());
    let w = workload("workloads:\n  - iterations: 3\n    requests: [ { path: / } ]\n");
    let r = run(&w, &refused).await;
    assert_eq!(r.summary.total.requests, 3);
    assert_eq!(r.summary.total.failures.get(&ErrorClass::Connect), Some(&3));
}

#[tokio::test]
async fn cancel_stops_a_run_early() {
    let srv = HttpTarget::start().await;
    let w = workload(
        "workloads:\n  - users: 2\n    run_time: 60s\n    requests: [ { path: /delay/50 } ]\n",
    );
    let target = Target::parse(&srv.url).expect("target");
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let t0 = std::time::Instant::now();
    let r = tokio::time::timeout(
        BOUND,
        loadtest::run(&w, &target, cancel, Arc::new(Progress::default())),
    )
    .await
    .expect("stopped in time");
    assert!(r.cancelled);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(r.summary.total.requests > 0);
}

// ---- the handler, end to end -------------------------------------------------------------

const TUTORIAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tutorial");

fn copy_tutorial(root: &Path, level: &str) {
    let dir = root.join(level).join("locust");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in ["basic.py", "locust.conf"] {
        std::fs::copy(Path::new(TUTORIAL).join(f), dir.join(f)).expect("copy");
    }
}

fn event(stage: &str, uri: Option<&str>, teststrategy: &str) -> TriggeredEvent {
    let mut data = json!({
        "project": "fulltour", "stage": stage, "service": "helloservice",
        "labels": {"buildId": "1"}, "status": "succeeded", "result": "pass",
        "test": {"teststrategy": teststrategy},
        "deployment": {"deploymentstrategy": "direct", "deploymentNames": ["direct"]}
    });
    if let Some(u) = uri {
        data["deployment"]["deploymentURIsLocal"] = json!([u]);
    }
    TriggeredEvent {
        id: "4bb5a5a1-3b8b-4d2b-9a87-3f6b1d0c9a11".into(),
        ty: format!("sh.keptn.event.{stage}.je-test.triggered"),
        task: "je-test".into(),
        keptn_context: "2b8f5e4a-6c1d-4f7e-8a3b-9d0e1f2a3b4c".into(),
        git_commit_id: None,
        source: "shipyard-controller".into(),
        time: None,
        data,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    handler: TestHandler,
    registry: prometheus_client::registry::Registry,
}

fn setup(settings: LoadtestSettings) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = LoadtestMetrics::register(&mut registry);
    let handler = TestHandler::new(Arc::new(LocalDir::new(&root)), settings, metrics);
    Setup {
        _dir: dir,
        root,
        handler,
        registry,
    }
}

fn local_settings(max_run_time: &str) -> LoadtestSettings {
    LoadtestSettings {
        allowed_hosts: vec!["127.0.0.1".into()],
        max_run_time: Some(max_run_time.into()),
        ..Default::default()
    }
}

async fn handle(
    h: &TestHandler,
    ev: TriggeredEvent,
    cancel: CancellationToken,
) -> anyhow::Result<Finished> {
    let out = tokio::time::timeout(BOUND, h.handle(TaskRequest { event: ev, cancel }))
        .await
        .expect("handler answered in time")?;
    match out {
        TaskOutcome::Finished(f) => Ok(f),
        other => panic!("expected Finished, got {other:?}"),
    }
}

fn keptn_time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().expect("string");
    assert_eq!(s.len(), 24, "{s} is not 2006-01-02T15:04:05.000Z");
    assert!(s.ends_with('Z'));
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .into()
}

#[tokio::test]
async fn handler_runs_the_tutorial_locust_files_as_they_are() {
    let srv = HttpTarget::start().await;
    let s = setup(local_settings("2500ms"));
    copy_tutorial(&s.root, "fulltour/qa/helloservice");
    let f = handle(
        &s.handler,
        event("qa", Some(&srv.url), ""),
        CancellationToken::new(),
    )
    .await
    .expect("handled");
    assert_eq!(
        (f.status, f.result),
        (StatusType::Succeeded, ResultType::Pass),
        "{}",
        f.message
    );
    let test = &f.extra["test"];
    let (start, end) = (keptn_time(&test["start"]), keptn_time(&test["end"]));
    let took = (end - start).num_milliseconds();
    assert!((2400..6000).contains(&took), "run took {took} ms");
    // 10 users at spawn rate 1/s, between(5, 15) think time, cut to 2.5 s: users 0..2 start,
    // one request each.
    let n = test["stats"]["requests"].as_u64().expect("requests");
    assert_eq!(n, srv.count(), "generator and server disagree");
    assert_eq!(n, 3);
    assert_eq!(test["byName"][0]["name"], "/");
    assert!(
        test["source"]
            .as_str()
            .expect("source")
            .contains("locust/basic.py")
    );
    assert!(f.message.contains("does not exist"), "{}", f.message);
    assert!(f.message.contains("cut from 60s to 2.5s"), "{}", f.message);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.registry).expect("encode");
    assert!(
        text.contains(r#"keptn_native_loadtest_requests_total{project="fulltour",stage="qa",service="helloservice",name="/"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"keptn_native_loadtest_runs_total{project="fulltour",stage="qa",service="helloservice",result="pass"} 1"#), "{text}");
    assert!(text.contains("keptn_native_loadtest_running 0"), "{text}");
}

#[tokio::test]
async fn handler_uses_a_native_plan_by_teststrategy_and_its_thresholds() {
    let srv = HttpTarget::start().await;
    let s = setup(local_settings("30s"));
    let dir = s.root.join("fulltour/qa");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("loadtest.yaml"),
        r#"
workloads:
  - teststrategy: performance
    users: 2
    iterations: 40
    requests: [ { name: home, path: / } ]
    thresholds:
      - { metric: rps, min: 1000000, action: warn }
  - iterations: 10
    requests: [ { name: bad, path: /status/500 } ]
"#,
    )
    .expect("write");
    let f = handle(
        &s.handler,
        event("qa", Some(&srv.url), "performance"),
        CancellationToken::new(),
    )
    .await
    .expect("handled");
    assert_eq!(
        (f.status, f.result),
        (StatusType::Succeeded, ResultType::Warning),
        "{}",
        f.message
    );
    assert!(f.message.contains("< min 1000000"), "{}", f.message);
    assert_eq!(f.extra["test"]["stats"]["requests"], 40);
    assert_eq!(srv.count(), 40);

    // The default workload (no teststrategy) with default thresholds: 5xx fail the run.
    let f = handle(
        &s.handler,
        event("qa", Some(&srv.url), "functional"),
        CancellationToken::new(),
    )
    .await
    .expect("handled");
    assert_eq!(
        (f.status, f.result),
        (StatusType::Succeeded, ResultType::Fail),
        "{}",
        f.message
    );
    assert_eq!(f.extra["test"]["stats"]["failuresByClass"]["http_500"], 10);
    assert!(f.message.contains("http_500: 10"), "{}", f.message);
}

#[tokio::test]
async fn handler_error_paths_say_what_is_wrong() {
    let srv = HttpTarget::start().await;
    let s = setup(local_settings("2s"));
    copy_tutorial(&s.root, "fulltour/qa/helloservice");

    // Files uploaded to qa only (as in the tutorial's steps 2-4): production has none.
    let e = handle(
        &s.handler,
        event("production", Some(&srv.url), ""),
        CancellationToken::new(),
    )
    .await
    .expect_err("no files");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("no load test found") && msg.contains("stage production"),
        "{msg}"
    );

    // A target outside the allow-list is refused before any request.
    let e = handle(
        &s.handler,
        event("qa", Some("http://10.0.0.1:80"), ""),
        CancellationToken::new(),
    )
    .await
    .expect_err("not allowed");
    assert!(format!("{e:#}").contains("allow-list"), "{e:#}");
    assert_eq!(srv.count(), 0);

    // No deployment URI and no host in the plan.
    let e = handle(&s.handler, event("qa", None, ""), CancellationToken::new())
        .await
        .expect_err("no target");
    assert!(format!("{e:#}").contains("no target"), "{e:#}");

    // An unreachable target: errored/fail, with the times of the attempt.
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let f = handle(
        &s.handler,
        event("qa", Some(&refused), ""),
        CancellationToken::new(),
    )
    .await
    .expect("answered");
    assert_eq!(
        (f.status, f.result),
        (StatusType::Errored, ResultType::Fail)
    );
    assert!(f.message.contains("unreachable"), "{}", f.message);
    assert!(f.extra["test"]["start"].is_string());

    // A locustfile outside the subset: the error names file and line.
    let svc = s.root.join("fulltour/staging/helloservice/locust");
    std::fs::create_dir_all(&svc).expect("mkdir");
    std::fs::write(
        svc.join("locustfile.py"),
        "from locust import HttpUser, task\nimport random\n",
    )
    .expect("write");
    let e = handle(
        &s.handler,
        event("staging", Some(&srv.url), ""),
        CancellationToken::new(),
    )
    .await
    .expect_err("bad locustfile");
    assert!(
        format!("{e:#}").contains("locust/locustfile.py:2:"),
        "{e:#}"
    );

    // An invalid native plan: the error names the file.
    let stage = s.root.join("fulltour/dev");
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::write(stage.join("loadtest.yaml"), "workloads:\n  - users: many\n").expect("write");
    let e = handle(
        &s.handler,
        event("dev", Some(&srv.url), ""),
        CancellationToken::new(),
    )
    .await
    .expect_err("bad plan");
    assert!(format!("{e:#}").contains("loadtest.yaml"), "{e:#}");

    // Malformed event data.
    let mut ev = event("qa", Some(&srv.url), "");
    ev.data["deployment"] = json!("not an object");
    assert!(
        handle(&s.handler, ev, CancellationToken::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn handler_answers_when_shutdown_stops_the_run() {
    let srv = HttpTarget::start().await;
    let s = setup(local_settings("60s"));
    let dir = s.root.join("fulltour/qa");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("loadtest.yaml"),
        "workloads:\n  - users: 2\n    run_time: 60s\n    requests: [ { path: /delay/20 } ]\n",
    )
    .expect("write");
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.cancel();
    });
    let t0 = std::time::Instant::now();
    let f = handle(&s.handler, event("qa", Some(&srv.url), ""), cancel)
        .await
        .expect("answered");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (f.status, f.result),
        (StatusType::Errored, ResultType::Fail)
    );
    assert!(f.message.contains("stopped by shutdown"), "{}", f.message);
    keptn_time(&f.extra["test"]["end"]);
}

// ---- the CLI ------------------------------------------------------------------------------

#[tokio::test]
async fn cli_runs_a_plan_prints_json_and_exits_by_thresholds() {
    let srv = HttpTarget::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "workloads:\n  - requests: [ { path: / } ]\n  - teststrategy: bad\n    requests: [ { path: /status/500 } ]\n",
    )
    .expect("write");
    let bin = env!("CARGO_BIN_EXE_keptn-native");
    let run = |strategy: &'static str| {
        let (plan, url) = (plan.clone(), srv.url.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(["loadtest", "--host", &url, "--plan"])
                .arg(&plan)
                .args([
                    "--teststrategy",
                    strategy,
                    "--users",
                    "3",
                    "--iterations",
                    "30",
                    "--json",
                ])
                .output()
                .expect("run cli")
        })
    };
    let out = tokio::time::timeout(BOUND, run(""))
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total"]["requests"], 30);
    assert_eq!(v["result"], "pass");
    assert_eq!(srv.count(), 30);

    let out = tokio::time::timeout(BOUND, run("bad"))
        .await
        .expect("in time")
        .expect("join");
    assert_eq!(out.status.code(), Some(1), "failed requests fail the run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total"]["failuresByClass"]["http_500"], 30);

    // Unusable input: exit 2 and a message naming the problem.
    let out = std::process::Command::new(bin)
        .args(["loadtest", "--host", "https://x", "--plan"])
        .arg(&plan)
        .output()
        .expect("run cli");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http://"));
}

/// What a server saw of one request: method, path with query (as on the request line),
/// content type and body.
type Seen = (String, String, Option<String>, Vec<u8>);

/// A target that records every request.
async fn recording_target() -> (String, Arc<std::sync::Mutex<Vec<Seen>>>) {
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let s = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let s = Arc::clone(&s);
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let ct = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            s.lock()
                .expect("lock")
                .push((parts.method.to_string(), pq, ct, body.to_vec()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Locust idioms sent to a real server: what arrives is what locust (requests) sends, as
/// printed by requests 2.x `Session().prepare_request(...)` (method, `path_url`, body,
/// `Content-Type`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locust_idioms_send_what_locust_sends() {
    let (url, seen) = recording_target().await;
    let py = [
        "from locust import HttpUser, task",
        "class U(HttpUser):",
        "    @task()",
        "    def a(self):",
        "        self.client.post('/none', json=None)",
        "        self.client.post('/login', {'user': 'a b', 'pw': 'x&y'})",
        "        self.client.get('/café/ü?q=ä b&x=%41&y=%2F')",
        "        self.client.put('/raw', 'text')",
        "",
    ]
    .join("\n");
    let py = py.as_str();
    let lf = loadtest::locust::parse_locustfile("locust/x.py", py).expect("parses");
    let conf = loadtest::locust::LocustConf {
        iterations: Some(1),
        ..Default::default()
    };
    let w = loadtest::locust::to_workload(&conf, &lf);
    let r = run(&w, &url).await;
    assert_eq!(
        r.summary.total.failure_count(),
        0,
        "{:?}",
        r.summary.total.failures
    );
    let mut got = seen.lock().expect("lock").clone();
    got.sort();
    let form = "application/x-www-form-urlencoded".to_string();
    let mut want: Vec<Seen> = vec![
        ("POST".into(), "/none".into(), None, vec![]),
        (
            "POST".into(),
            "/login".into(),
            Some(form),
            b"user=a+b&pw=x%26y".to_vec(),
        ),
        (
            "GET".into(),
            "/caf%C3%A9/%C3%BC?q=%C3%A4%20b&x=A&y=%2F".into(),
            None,
            vec![],
        ),
        ("PUT".into(), "/raw".into(), None, b"text".to_vec()),
    ];
    want.sort();
    assert_eq!(got, want);
}
