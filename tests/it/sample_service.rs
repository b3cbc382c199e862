//! The sample service as a real child process: versions, the slow build, and the metric
//! series the tutorial's SLIs query.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{exe, free_port, http, wait_for_port};

async fn start(version: &str) -> (tokio::process::Child, u16) {
    let port = free_port();
    let child = tokio::process::Command::new(exe())
        .args([
            "sample-service",
            "--port",
            &port.to_string(),
            "--version",
            version,
        ])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sample-service");
    wait_for_port(port, Duration::from_secs(10)).await;
    (child, port)
}

#[tokio::test]
async fn sample_service_reports_version_and_tutorial_metrics() {
    let (_child, port) = start("v0.1.1").await;
    let c = http();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        let body = c
            .get(format!("{base}/"))
            .send()
            .await
            .expect("get /")
            .text()
            .await
            .expect("body");
        assert!(body.contains("v0.1.1"), "{body}");
    }
    let v: serde_json::Value = c
        .get(format!("{base}/version"))
        .send()
        .await
        .expect("version")
        .json()
        .await
        .expect("json");
    assert_eq!(v["version"], "v0.1.1");
    c.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("first scrape");
    let m = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        m.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_count{")
                && l.contains(r#"method="GET""#)
                && l.contains(r#"route="/""#)
                && l.contains(r#"status_code="200""#)
                && l.ends_with(" 3")
        ),
        "{m}"
    );
    assert!(
        m.contains("http_server_request_duration_seconds_sum{"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with(r#"http_requests_total{status="success"} 4"#)),
        "3 x / + 1 x /version: {m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with(r#"promhttp_metric_handler_requests_total{code="200"} 2"#)),
        "{m}"
    );
    let goroutines: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("go_goroutines "))
        .and_then(|v| v.trim().parse().ok())
        .expect("go_goroutines");
    assert!(
        (1.0..=30.0).contains(&goroutines),
        "live tasks within the SLO's <=30: {goroutines}"
    );
}

#[tokio::test]
async fn the_slow_build_answers_slower_than_the_slo_allows() {
    let (_child, port) = start("v0.1.2").await;
    let c = http();
    let t = Instant::now();
    let body = c
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(body.contains("v0.1.2"));
    assert!(
        t.elapsed() > Duration::from_millis(200),
        "the killercoda SLO passes <=0.2s; took {:?}",
        t.elapsed()
    );
}
