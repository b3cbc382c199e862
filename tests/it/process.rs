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

#[tokio::test]
async fn sigterm_drains_and_exits_0() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--nats-url",
            &nats.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("API_TOKEN", "a-token-that-must-not-be-logged")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let ready = format!("http://127.0.0.1:{port}/ready");
    assert!(
        eventually(Duration::from_secs(10), || async {
            reqwest::get(&ready)
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        })
        .await
    );
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
