//! The binary as a process: configuration errors, signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::nats::NatsServer;
use crate::harness::{eventually, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_keptn-native");

#[test]
fn invalid_configuration_lists_every_problem_and_exits_2() {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--nats-url",
            "http://nats:4222",
            "--task-alias",
            "je-test",
            "--shutdown-grace",
            "soon",
        ])
        .env_remove("NATS_URL")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NATS_URL \"http://nats:4222\""), "{err}");
    assert!(err.contains("TASK_ALIASES: \"je-test\""), "{err}");
    assert!(err.contains("SHUTDOWN_GRACE \"soon\""), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "nats_url: nats://x:4222\nlisten_addr: 1\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `listen_addr`"));
}

/// `keptn-native serve` on NATS `nats_url`, HTTP on `port`, the store in `data`; killed on drop.
fn serve(nats_url: &str, port: u16, data: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--nats-url",
        nats_url,
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("--data-dir")
    .arg(data)
    .stdout(Stdio::null())
    .kill_on_drop(true);
    cmd
}

/// Whether the service on `port` becomes ready within 10 s.
async fn ready(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/ready");
    eventually(Duration::from_secs(10), || async {
        reqwest::get(&url)
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await
}

#[tokio::test]
async fn sigterm_drains_and_exits_0() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = serve(&nats.url(), port, dir.path())
        .env("API_TOKEN", "a-token-that-must-not-be-logged")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(ready(port).await);
    let pid = child.id().expect("pid");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut err = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .await
        .expect("read");
    assert!(err.contains("shut down"), "{err}");
    assert!(!err.contains("a-token-that-must-not-be-logged"));
}

/// A service killed (SIGKILL) while a load test runs: with re-runs off, the next start answers
/// the task as interrupted, with one `.finished` to the one `.started`.
#[tokio::test]
async fn a_task_cut_off_by_a_killed_process_is_answered_after_restart() {
    use crate::harness::http_target::HttpTarget;
    use crate::harness::keptn::KeptnPeer;
    use serde_json::json;

    let nats = NatsServer::start();
    let target = HttpTarget::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let resources = tempfile::tempdir().expect("tempdir");
    let svc = resources.path().join("p/qa/s");
    std::fs::create_dir_all(&svc).expect("mkdir");
    std::fs::write(
        svc.join("loadtest.yaml"),
        "workloads:\n  - users: 1\n    wait_time: { constant: 0.2 }\n    run_time: 60s\n    requests: [ { path: / } ]\n",
    )
    .expect("plan");
    let spawn = |port: u16| {
        serve(&nats.url(), port, data.path())
            .arg("--resources-dir")
            .arg(resources.path())
            .env("LOADTEST_ALLOWED_HOSTS", "127.0.0.1")
            .env("RERUN_INTERRUPTED", "false")
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let port = free_port();
    let mut first = spawn(port);
    assert!(ready(port).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let peer = KeptnPeer::connect(&nats.url()).await;
    let ev = KeptnPeer::triggered(
        "test",
        json!({"project": "p", "stage": "qa", "service": "s",
               "deployment": {"deploymentURIsLocal": [target.url]}}),
    );
    let id = peer.publish(&ev).await;
    let started = peer.await_replies(&id, 1, Duration::from_secs(10)).await;
    assert_eq!(
        KeptnPeer::of_kind(&started, "started").len(),
        1,
        "{started:?}"
    );
    // The load test is running: the target sees requests.
    assert!(eventually(Duration::from_secs(10), || async { target.count() > 0 }).await);
    first.start_kill().expect("kill -9");
    let _ = first.wait().await;
    assert!(KeptnPeer::of_kind(&peer.replies(&id), "finished").is_empty());

    let port = free_port();
    let _second = spawn(port);
    assert!(ready(port).await);
    let replies = peer.await_replies(&id, 2, Duration::from_secs(10)).await;
    assert_eq!(
        KeptnPeer::of_kind(&replies, "started").len(),
        1,
        "{replies:?}"
    );
    let finished = KeptnPeer::of_kind(&replies, "finished");
    assert_eq!(finished.len(), 1, "{replies:?}");
    assert_eq!(finished[0]["data"]["status"], "errored");
    assert_eq!(finished[0]["data"]["result"], "fail");
    assert!(
        finished[0]["data"]["message"]
            .as_str()
            .expect("message")
            .contains("interrupted")
    );
    assert_eq!(finished[0]["triggeredid"], id.as_str());
}
