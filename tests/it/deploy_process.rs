//! The process backend against real child processes (the sample-service subcommand).

use std::time::Duration;

use keptn_native::deploy::process::ProcessBackend;
use keptn_native::deploy::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, RollbackRequest,
};
use tokio_util::sync::CancellationToken;

use crate::harness::{exe, http};

fn req(stage: &str, tag: &str) -> DeployRequest {
    DeployRequest {
        project: "fulltour".into(),
        stage: stage.into(),
        service: "helloservice".into(),
        image: format!("ghcr.io/podtato-head/podtatoserver:{tag}"),
        strategy: "direct".into(),
        git_commit_id: None,
    }
}

async fn version_at(uri: &str) -> Result<String, reqwest::Error> {
    let v: serde_json::Value = http()
        .get(format!("{uri}/version"))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["version"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn deploys_replaces_and_writes_file_sd_targets() {
    let sd = tempfile::tempdir().expect("tempdir");
    let cfg = DeployConfig {
        process_sd_dir: Some(sd.path().to_path_buf()),
        ..Default::default()
    };
    let backend = ProcessBackend::new(&cfg, http()).with_exe(exe());
    let cancel = CancellationToken::new();

    let first = backend
        .deploy(&req("qa", "v0.1.1"), &cancel)
        .await
        .expect("deploy v0.1.1");
    let uri1 = first.uris_local[0].clone();
    assert!(uri1.starts_with("http://127.0.0.1:"), "{uri1}");
    assert_eq!(first.strategy, "direct");
    assert_eq!(version_at(&uri1).await.expect("v1 answers"), "v0.1.1");
    let port1 = uri1.rsplit(':').next().expect("port").to_string();

    let sd_file = sd.path().join("helloservice-fulltour-qa.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sd_file).expect("sd file")).expect("json");
    assert_eq!(v[0]["targets"][0], format!("127.0.0.1:{port1}"));
    assert_eq!(v[0]["labels"]["job"], "helloservice-fulltour-qa");

    let second = backend
        .deploy(&req("qa", "v0.1.2"), &cancel)
        .await
        .expect("deploy v0.1.2");
    let uri2 = second.uris_local[0].clone();
    assert_ne!(uri1, uri2);
    assert_eq!(version_at(&uri2).await.expect("v2 answers"), "v0.1.2");
    assert!(
        version_at(&uri1).await.is_err(),
        "the previous version is stopped"
    );
    assert!(second.message.contains("stopped"), "{}", second.message);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sd_file).expect("sd file")).expect("json");
    assert_eq!(
        v[0]["targets"][0],
        format!("127.0.0.1:{}", uri2.rsplit(':').next().expect("port"))
    );

    // Another stage runs side by side.
    let prod = backend
        .deploy(&req("production", "v0.1.1"), &cancel)
        .await
        .expect("deploy prod");
    assert_eq!(
        version_at(&prod.uris_local[0]).await.expect("prod answers"),
        "v0.1.1"
    );
    assert_eq!(version_at(&uri2).await.expect("qa still answers"), "v0.1.2");

    backend.shutdown().await;
    assert!(
        version_at(&uri2).await.is_err(),
        "shutdown stops every process"
    );
    assert!(version_at(&prod.uris_local[0]).await.is_err());
}

#[tokio::test]
async fn a_process_that_exits_or_never_answers_fails_and_keeps_the_old_one() {
    let cfg = DeployConfig {
        process_ready_timeout_secs: Some(1),
        ..Default::default()
    };
    let good = ProcessBackend::new(&cfg, http()).with_exe(exe());
    let cancel = CancellationToken::new();
    let running = good
        .deploy(&req("qa", "v0.1.1"), &cancel)
        .await
        .expect("deploy");

    let exits = ProcessBackend::new(
        &DeployConfig {
            process_command: Some("/bin/false {port}".into()),
            ..cfg.clone()
        },
        http(),
    );
    match exits.deploy(&req("qa", "v0.1.1"), &cancel).await {
        Err(DeployError::Failed(m)) => assert!(m.contains("exited"), "{m}"),
        other => panic!("expected Failed, got {other:?}"),
    }

    let silent = ProcessBackend::new(
        &DeployConfig {
            process_command: Some("/bin/sleep 30 {port}".into()),
            ..cfg.clone()
        },
        http(),
    );
    let t = std::time::Instant::now();
    match silent.deploy(&req("qa", "v0.1.1"), &cancel).await {
        Err(DeployError::Timeout(d, _)) => assert_eq!(d, Duration::from_secs(1)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(20));

    let bad_image = good
        .deploy(
            &DeployRequest {
                image: "x;rm -rf /".into(),
                ..req("qa", "v1")
            },
            &cancel,
        )
        .await;
    assert!(matches!(bad_image, Err(DeployError::Invalid(_))));

    assert_eq!(
        version_at(&running.uris_local[0])
            .await
            .expect("old one still serves"),
        "v0.1.1"
    );
    good.shutdown().await;
}

#[tokio::test]
async fn cancellation_stops_the_wait() {
    let cfg = DeployConfig {
        process_command: Some("/bin/sleep 30 {port}".into()),
        process_ready_timeout_secs: Some(60),
        ..Default::default()
    };
    let b = ProcessBackend::new(&cfg, http());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        b.deploy(&req("qa", "v0.1.1"), &cancel),
    )
    .await
    .expect("returns soon after cancel");
    assert!(matches!(r, Err(DeployError::Cancelled)), "{r:?}");
}

/// The tutorial's SLI query finds a process deployment through the file_sd target, and the
/// slow build's response time is above the SLO's 0.2 s (real prometheus).
#[tokio::test]
async fn tutorial_slis_find_the_process_deployment_in_prometheus() {
    let sd = tempfile::tempdir().expect("tempdir");
    let prom = crate::harness::prometheus_sd::Prometheus::start(sd.path()).await;
    let cfg = DeployConfig {
        process_sd_dir: Some(sd.path().to_path_buf()),
        ..Default::default()
    };
    let backend = ProcessBackend::new(&cfg, http()).with_exe(exe());
    let r = backend
        .deploy(&req("qa", "v0.1.2"), &CancellationToken::new())
        .await
        .expect("deploy");
    let uri = r.uris_local[0].clone();
    let load = tokio::spawn(async move {
        let c = http();
        loop {
            let _ = c.get(format!("{uri}/")).send().await;
        }
    });
    let job = "helloservice-fulltour-qa";
    let sli = format!(
        "sum(rate(http_server_request_duration_seconds_sum{{method=\"GET\",route=\"/\",status_code=\"200\",job=\"{job}\"}}[10s])/rate(http_server_request_duration_seconds_count{{method=\"GET\",route=\"/\",status_code=\"200\",job=\"{job}\"}}[10s]))"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let value = loop {
        if let Some(v) = prom.query(&sli).await.filter(|v| v.is_finite()) {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the SLI never returned a value"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    load.abort();
    assert!(
        value > 0.2,
        "slow build response time {value} must fail the SLO (<=0.2)"
    );
    let goroutines = prom
        .query(&format!("go_goroutines{{job=\"{job}\"}}"))
        .await
        .expect("go_goroutines");
    assert!(goroutines >= 1.0);
    backend.shutdown().await;
}

fn rollback_req(stage: &str) -> RollbackRequest {
    RollbackRequest {
        project: "fulltour".into(),
        stage: stage.into(),
        service: "helloservice".into(),
        strategy: "direct".into(),
        git_commit_id: None,
    }
}

/// Production runs v0.1.1, then v0.1.3 (which fails there): the rollback starts v0.1.1 again
/// as a new process, moves the Prometheus target to it and stops v0.1.3; a second rollback has
/// nothing to go back to (v0.1.3 was rolled back), nor has a stage where nothing runs.
#[tokio::test]
async fn rollback_restarts_the_last_good_image_and_stops_the_failed_one() {
    let sd = tempfile::tempdir().expect("tempdir");
    let cfg = DeployConfig {
        process_sd_dir: Some(sd.path().to_path_buf()),
        ..Default::default()
    };
    let backend = ProcessBackend::new(&cfg, http()).with_exe(exe());
    let cancel = CancellationToken::new();
    backend
        .deploy(&req("production", "v0.1.1"), &cancel)
        .await
        .expect("deploy v0.1.1");
    // Another stage's history is its own.
    backend
        .deploy(&req("qa", "v0.1.2"), &cancel)
        .await
        .expect("deploy qa");
    let failed = backend
        .deploy(&req("production", "v0.1.3"), &cancel)
        .await
        .expect("deploy v0.1.3");
    let failed_uri = failed.uris_local[0].clone();
    assert_eq!(version_at(&failed_uri).await.expect("answers"), "v0.1.3");

    let r = backend
        .rollback(&rollback_req("production"), &cancel)
        .await
        .expect("rollback");
    assert_eq!(r.image, "ghcr.io/podtato-head/podtatoserver:v0.1.1");
    assert_eq!(
        r.replaced.as_deref(),
        Some("ghcr.io/podtato-head/podtatoserver:v0.1.3")
    );
    let uri = r.deployment.uris_local[0].clone();
    assert_ne!(uri, failed_uri, "a new process");
    assert_eq!(version_at(&uri).await.expect("restored answers"), "v0.1.1");
    assert!(
        version_at(&failed_uri).await.is_err(),
        "the failed version is stopped"
    );
    assert!(
        r.deployment.message.contains("from ghcr.io/podtato-head/podtatoserver:v0.1.3 to ghcr.io/podtato-head/podtatoserver:v0.1.1"),
        "{}",
        r.deployment.message
    );
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sd.path().join("helloservice-fulltour-production.json")).expect("sd file"),
    )
    .expect("json");
    assert_eq!(
        v[0]["targets"][0],
        uri.trim_start_matches("http://"),
        "Prometheus scrapes the restored version"
    );

    match backend.rollback(&rollback_req("production"), &cancel).await {
        Err(DeployError::NothingToRollBack(m)) => {
            assert!(m.contains("v0.1.1 is the only version"), "{m}")
        }
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    assert_eq!(
        version_at(&uri).await.expect("still answers"),
        "v0.1.1",
        "a refused rollback leaves the running version alone"
    );
    match backend.rollback(&rollback_req("dev"), &cancel).await {
        Err(e @ DeployError::NothingToRollBack(_)) => {
            assert!(
                e.to_string()
                    .contains("no version of fulltour/dev/helloservice runs"),
                "{e}"
            )
        }
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    backend.shutdown().await;
}
