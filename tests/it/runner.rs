//! The runner against a real nats-server, with a small responder (written here) playing the
//! execution plane: it answers each task `.triggered` with `.started` and `.finished`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use keptn_native::keptn::decode;
use keptn_native::runner::shipyard::Shipyard;
use keptn_native::runner::{Collect, Delivery, Report, RunSpec, run_on_nats};
use serde_json::{Value, json};

use crate::harness::nats::NatsServer as Nats;

const SEED: &str = include_str!("../../assets/tutorial/shipyard.yaml");

type Decide = Arc<dyn Fn(&str, &Value) -> Option<&'static str> + Send + Sync>;

/// Answers task `.triggered` events; records every event type it sees.
async fn responder(nats: &Nats, decide: Decide) -> Arc<Mutex<Vec<(String, Value)>>> {
    let client = nats.client().await;
    let mut sub = client
        .subscribe("sh.keptn.event.>")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Ok(env) = decode(&msg.payload) else {
                continue;
            };
            log.lock()
                .expect("lock")
                .push((env.ty.clone(), env.data.clone()));
            let parts: Vec<&str> = env.ty.split('.').collect();
            if parts.len() != 5 || parts[4] != "triggered" {
                continue;
            }
            let task = parts[3].to_string();
            let Some(result) = decide(&task, &env.data) else {
                continue;
            };
            for (kind, data) in [
                (
                    "started",
                    json!({"project": env.data["project"], "stage": env.data["stage"], "service": env.data["service"], "status": "succeeded"}),
                ),
                (
                    "finished",
                    json!({"project": env.data["project"], "stage": env.data["stage"], "service": env.data["service"],
                    "status": "succeeded", "result": result, "message": format!("{task} {result}")}),
                ),
            ] {
                let ev = json!({
                    "specversion": "1.0", "id": uuid::Uuid::new_v4().to_string(), "source": "responder",
                    "type": format!("sh.keptn.event.{task}.{kind}"), "datacontenttype": "application/json",
                    "time": chrono::Utc::now().to_rfc3339(), "shkeptncontext": env.keptn_context,
                    "triggeredid": env.id, "data": data,
                });
                client
                    .publish(
                        ev["type"].as_str().unwrap_or_default().to_string(),
                        serde_json::to_vec(&ev).expect("json").into(),
                    )
                    .await
                    .expect("publish");
            }
        }
    });
    seen
}

fn spec(tag: &str) -> RunSpec {
    RunSpec {
        project: "fulltour".into(),
        service: "helloservice".into(),
        image: format!("ghcr.io/podtato-head/podtatoserver:{tag}"),
        labels: [("version".to_string(), tag.to_string())].into(),
        stage: None,
        sequence: "delivery".into(),
        task_timeout: Duration::from_secs(600),
    }
}

/// The slow build fails the evaluation (what the evaluation service would decide).
fn tutorial_responder() -> Decide {
    Arc::new(|task, data| {
        let slow = data["configurationChange"]["values"]["image"]
            .as_str()
            .is_some_and(|i| i.ends_with("v0.1.2"));
        Some(if task == "evaluation" && slow {
            "fail"
        } else {
            "pass"
        })
    })
}

#[tokio::test]
async fn good_build_is_promoted_to_production_over_nats() {
    let nats = Nats::start();
    let seen = responder(&nats, tutorial_responder()).await;
    let d = Delivery::new(
        Shipyard::parse(SEED).expect("seed"),
        spec("v0.1.1"),
        uuid::Uuid::new_v4().to_string(),
    );
    let mut sink = Collect::default();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        run_on_nats(&nats.url(), d, "img", &mut sink, Duration::from_secs(60)),
    )
    .await
    .expect("bounded")
    .expect("run");
    assert!(report.passed);
    let stages: Vec<(&str, &str)> = report
        .sequences
        .iter()
        .map(|s| (s.stage.as_str(), s.result.as_str()))
        .collect();
    assert_eq!(stages, [("qa", "pass"), ("production", "pass")]);
    assert_eq!(
        report.sequences[1]
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["approval", "je-deployment", "je-test", "evaluation"]
    );
    // The responder may see the last event a moment after the runner returns.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen
        .lock()
        .expect("lock")
        .iter()
        .any(|(t, _)| t == "sh.keptn.event.production.delivery.finished")
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    let types: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"sh.keptn.event.qa.delivery.finished"));
    assert!(types.contains(&"sh.keptn.event.production.delivery.triggered"));
    assert!(types.contains(&"sh.keptn.event.production.delivery.finished"));
    let eval = seen
        .iter()
        .find(|(t, d)| t == "sh.keptn.event.evaluation.triggered" && d["stage"] == "production")
        .expect("prod eval");
    assert_eq!(eval.1["evaluation"]["timeframe"], "2m");
    assert_eq!(eval.1["labels"]["version"], "v0.1.1");
    assert!(
        sink.0
            .iter()
            .any(|r| matches!(r, Report::SequenceFinished { stage, .. } if stage == "production"))
    );
}

#[tokio::test]
async fn slow_build_fails_qa_and_never_reaches_production() {
    let nats = Nats::start();
    let seen = responder(&nats, tutorial_responder()).await;
    let d = Delivery::new(
        Shipyard::parse(SEED).expect("seed"),
        spec("v0.1.2"),
        uuid::Uuid::new_v4().to_string(),
    );
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        run_on_nats(
            &nats.url(),
            d,
            "img",
            &mut Collect::default(),
            Duration::from_secs(60),
        ),
    )
    .await
    .expect("bounded")
    .expect("run");
    assert!(!report.passed);
    assert_eq!(report.sequences.len(), 1);
    assert_eq!(report.sequences[0].result, "fail");
    assert_eq!(
        report.sequences[0].tasks.last().map(|t| t.name.as_str()),
        Some("evaluation")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|(t, _)| t.contains("production"))
    );
}

#[tokio::test]
async fn cli_run_exits_zero_on_pass_and_one_on_fail() {
    let nats = Nats::start();
    let _seen = responder(&nats, tutorial_responder()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let shipyard = dir.path().join("shipyard.yaml");
    std::fs::write(&shipyard, SEED).expect("write");
    let summary = dir.path().join("summary.json");
    for (tag, code) in [("v0.1.1", 0), ("v0.1.2", 1)] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(crate::harness::exe())
                .args([
                    "run",
                    "--shipyard",
                    &shipyard.display().to_string(),
                    "--resources",
                    &dir.path().display().to_string(),
                    "--project",
                    "fulltour",
                    "--service",
                    "helloservice",
                    "--image",
                    &format!("ghcr.io/podtato-head/podtatoserver:{tag}"),
                    "--labels",
                    &format!("version={tag}"),
                    "--nats-url",
                    &nats.url(),
                    "--summary",
                    &summary.display().to_string(),
                ])
                .output(),
        )
        .await
        .expect("bounded")
        .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{tag}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("qa.delivery"), "timeline printed: {stdout}");
        let s: Value =
            serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
        assert_eq!(s["passed"], code == 0);
    }
    // Bad input is reported before anything is sent.
    let out = tokio::process::Command::new(crate::harness::exe())
        .args([
            "run",
            "--shipyard",
            "/nonexistent.yaml",
            "--resources",
            "/nonexistent",
            "--project",
            "Bad",
            "--service",
            "s",
            "--image",
            "a b",
        ])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shipyard")
            && err.contains("resources")
            && err.contains("project")
            && err.contains("image"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_nats_is_a_clear_error() {
    let port = crate::harness::free_port();
    let d = Delivery::new(
        Shipyard::parse(SEED).expect("seed"),
        spec("v0.1.1"),
        "ctx".into(),
    );
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        run_on_nats(
            &format!("nats://127.0.0.1:{port}"),
            d,
            "img",
            &mut Collect::default(),
            Duration::from_secs(5),
        ),
    )
    .await
    .expect("bounded");
    let e = r.expect_err("no server");
    assert!(e.to_string().contains("could not connect to NATS"), "{e}");
}

/// `run --serve`: the runner starts the service in-process and delivers through it (a
/// deployment and a manual-free approval), with no other service on the bus.
#[tokio::test]
async fn run_serve_delivers_through_an_in_process_service() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let shipyard = dir.path().join("shipyard.yaml");
    std::fs::write(
        &shipyard,
        "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nmetadata: {name: s}\nspec:\n  stages:\n    - name: qa\n      sequences:\n        - name: delivery\n          tasks:\n            - name: je-deployment\n            - name: approval\n              properties: {pass: automatic}\n",
    )
    .expect("shipyard");
    let resources = dir.path().join("resources");
    std::fs::create_dir_all(&resources).expect("mkdir");
    let summary = dir.path().join("summary.json");
    let out = tokio::process::Command::new(crate::harness::exe())
        .args(["run", "--serve", "--project", "p", "--service", "s"])
        .args(["--image", "ghcr.io/podtato-head/podtatoserver:v0.1.1"])
        .args(["--nats-url", &nats.url(), "--task-timeout", "20s"])
        .arg("--shipyard")
        .arg(&shipyard)
        .arg("--resources")
        .arg(&resources)
        .arg("--summary")
        .arg(&summary)
        .output()
        .await
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    let tasks = &s["sequences"][0]["tasks"];
    assert_eq!(tasks[0]["name"], "je-deployment");
    assert_eq!(tasks[0]["result"], "pass", "{s}");
    assert!(
        tasks[0]["message"]
            .as_str()
            .expect("message")
            .contains("is running on port")
    );
    assert_eq!(tasks[1]["name"], "approval");
    assert_eq!(tasks[1]["result"], "pass");
}
