//! Exactly once on JetStream: no lost and no doubled reply across restarts of the service
//! (graceful and killed at each step of the protocol), broker restarts and replicas. Replies
//! are counted as Keptn's shipyard-controller reads them: from the `keptn` stream.

use std::process::Stdio;
use std::time::Duration;

use keptn_native::config::ConsumerMode;
use serde_json::{Value, json};

use crate::harness::keptn::KeptnPeer;
use crate::harness::nats::NatsServer;
use crate::harness::service::Service;
use crate::harness::stream::StreamObserver;
use crate::harness::{eventually, exe, free_port};

const WAIT: Duration = Duration::from_secs(20);

fn auto_approval() -> Value {
    KeptnPeer::triggered(
        "approval",
        json!({"project": "p", "stage": "s", "service": "svc",
               "result": "pass", "approval": {"pass": "automatic"}}),
    )
}

/// Waits until every id has one `.finished` in the stream, then asserts exactly one
/// `.started` and one `.finished` each.
async fn assert_exactly_once(observer: &StreamObserver, ids: &[String]) {
    let all = eventually(WAIT, || async {
        ids.iter().all(|id| observer.count(id, "finished") >= 1)
    })
    .await;
    let missing: Vec<_> = ids
        .iter()
        .filter(|id| observer.count(id, "finished") == 0)
        .collect();
    assert!(
        all,
        "{} of {} not answered: {missing:?}",
        missing.len(),
        ids.len()
    );
    for id in ids {
        assert_eq!(observer.count(id, "started"), 1, "started of {id}");
        assert_eq!(observer.count(id, "finished"), 1, "finished of {id}");
    }
    assert_eq!(observer.doubled(), 0);
}

#[tokio::test]
async fn events_published_while_the_service_was_down_are_answered_when_it_is_back() {
    let nats = NatsServer::start_js();
    let client = nats.client().await;
    let observer = StreamObserver::start(&client).await;
    // Default mode (auto) picks JetStream: only that can answer what was sent meanwhile.
    let mut svc = Service::start(&nats.url()).await;
    svc.stop().await;
    let peer = KeptnPeer::connect(&nats.url()).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(peer.publish(&auto_approval()).await);
    }
    let app = Service::launch(&nats.url(), svc.data.path(), |_| {}).await;
    assert_exactly_once(&observer, &ids).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_broker_restart_loses_no_event_published_before_the_service_reconnected() {
    let mut nats = NatsServer::start_js();
    let svc = Service::start_with(&nats.url(), |c| c.nats_consumer = ConsumerMode::Jetstream).await;
    nats.restart();
    // Published at once: the service is still reconnecting.
    let client = nats.client().await;
    let observer = StreamObserver::start(&client).await;
    let peer = KeptnPeer::from_client(client).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(peer.publish(&auto_approval()).await);
    }
    assert_exactly_once(&observer, &ids).await;
    let ready = format!("{}/ready", svc.base());
    assert_eq!(reqwest::get(&ready).await.expect("ready").status(), 200);
}

#[tokio::test]
async fn three_replicas_with_duplicate_deliveries_answer_every_event_once() {
    let nats = NatsServer::start_js();
    let client = nats.client().await;
    let observer = StreamObserver::start(&client).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            Service::start_with(&nats.url(), |c| c.nats_consumer = ConsumerMode::Jetstream).await,
        );
    }
    let peer = KeptnPeer::from_client(client).await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let ev = auto_approval();
        // Every event twice: the control plane re-sending it, or a redelivery.
        ids.push(peer.publish(&ev).await);
        peer.publish(&ev).await;
    }
    assert_exactly_once(&observer, &ids).await;
    for mut r in replicas {
        r.stop().await;
    }
}

/// `keptn-native serve` in JetStream mode as a child process, with a fault point armed.
fn serve(
    nats: &str,
    port: u16,
    data: &std::path::Path,
    group: &str,
    fault: Option<&str>,
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(exe());
    cmd.args(["serve", "--nats-url", nats, "--nats-consumer", "jetstream"])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--queue-group",
            group,
        ])
        .arg("--data-dir")
        .arg(data)
        .env_remove("KEPTN_NATIVE_FAULT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(f) = fault {
        cmd.env("KEPTN_NATIVE_FAULT", f);
    }
    cmd.spawn().expect("spawn keptn-native")
}

async fn wait_ready(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/ready");
    eventually(WAIT, || async {
        reqwest::get(&url)
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await
}

/// A counter of the service on `port` (0 if absent).
async fn counter(port: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_process_killed_at_any_step_of_the_protocol_answers_exactly_once_after_restart() {
    let nats = NatsServer::start_js();
    let client = nats.client().await;
    let observer = StreamObserver::start(&client).await;
    let peer = KeptnPeer::from_client(client).await;
    // (fault point, copies the stream must drop after the restart, re-run after restart)
    let steps = [
        ("after-accepted", 0, true),
        ("after-started-published", 1, true),
        ("after-started-committed", 0, true),
        ("after-finished-recorded", 0, false),
        ("after-finished-published", 1, false),
    ];
    for (step, dropped, rerun) in steps {
        let data = tempfile::tempdir().expect("tempdir");
        let group = format!("kill-{step}");
        let port = free_port();
        let mut first = serve(&nats.url(), port, data.path(), &group, Some(step));
        assert!(wait_ready(port).await, "{step}: not ready");
        let ev = auto_approval();
        let id = peer.publish(&ev).await;
        let status = tokio::time::timeout(WAIT, first.wait())
            .await
            .expect("the fault point stops the process")
            .expect("exit status");
        assert_eq!(status.code(), Some(86), "{step}: {status}");

        let port = free_port();
        let mut second = serve(&nats.url(), port, data.path(), &group, None);
        assert!(wait_ready(port).await, "{step}: restart not ready");
        let name = "keptn_native_duplicate_replies_dropped_total ";
        let settled = eventually(WAIT, || async {
            observer.count(&id, "finished") >= 1 && counter(port, name).await >= dropped as f64
        })
        .await;
        assert!(settled, "{step}: no .finished in the stream");
        assert_eq!(observer.count(&id, "started"), 1, "{step}: started");
        assert_eq!(observer.count(&id, "finished"), 1, "{step}: finished");
        assert_eq!(
            counter(port, name).await,
            dropped as f64,
            "{step}: copies dropped"
        );
        let finished = &observer.replies(&id, "finished")[0];
        assert_eq!(finished["data"]["result"], "pass", "{step}: {finished}");
        let message = finished["data"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            message.starts_with(keptn_native::dispatch::RERUN_NOTE),
            rerun,
            "{step}: {message}"
        );
        let _ = second.start_kill();
        let _ = second.wait().await;
    }
}
