//! Real Keptn events, replayed over NATS through the service. The corpus
//! (`tests/data/keptn-events/corpus.json`, built by `build.py` there) holds events collected
//! from Keptn's own repositories (Bridge fixtures, CLI and service tests, the spec's examples),
//! each with its provenance (repo, path, commit) and the answer Keptn's approval-service and
//! lighthouse give to it, derived from their code by `build.py`, not by this service.
//!
//! Only the event `id` is replaced (the fixtures reuse ids such as `test-event-id-1`, and the
//! service answers an id once); everything else is sent byte for byte as collected.

use std::time::Duration;

use serde_json::Value;

use crate::harness::keptn::KeptnPeer;
use crate::harness::service::setup;

#[derive(serde::Deserialize)]
struct Case {
    provenance: Value,
    event: Value,
    keptn_answer: Answer,
}

#[derive(serde::Deserialize)]
struct Answer {
    started: bool,
    #[serde(default)]
    started_message: Option<String>,
    finished: Option<Finished>,
}

#[derive(serde::Deserialize)]
struct Finished {
    status: String,
    result: String,
    #[serde(default)]
    message: Option<String>,
}

fn corpus() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keptn-events/corpus.json"
    );
    serde_json::from_slice(&std::fs::read(path).expect("corpus")).expect("corpus json")
}

/// The sum of `keptn_native_events_received_total` over every type, for one outcome.
fn received(metrics: &str, outcome: &str) -> u64 {
    let needle = format!("outcome=\"{outcome}\"}}");
    metrics
        .lines()
        .filter(|l| l.starts_with("keptn_native_events_received_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_keptn_events_are_answered_as_keptns_services_answer_them() {
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus has {} events", cases.len());
    // No SLO anywhere: lighthouse then passes every evaluation with a valid timeframe.
    let resources = tempfile::tempdir().expect("tempdir");
    let dir = resources.path().to_path_buf();
    let (_nats, svc, peer) = setup(|c| {
        c.subjects = vec!["sh.keptn.event.>".into()];
        c.keptn = keptn_native::config::KeptnConnection::Standalone { resources_dir: dir };
    })
    .await;

    let mut sent = Vec::new();
    for case in &cases {
        let mut ev = case.event.clone();
        let id = uuid::Uuid::new_v4().to_string();
        ev["id"] = Value::String(id.clone());
        peer.publish(&ev).await;
        sent.push(id);
    }

    let ignored = cases.iter().filter(|c| !c.keptn_answer.started).count() as u64;
    let metrics_url = format!("{}/metrics", svc.base());
    let all_ignored = crate::harness::eventually(Duration::from_secs(30), || async {
        let m = reqwest::get(&metrics_url)
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        received(&m, "ignored") >= ignored
    })
    .await;
    assert!(
        all_ignored,
        "not every event Keptn leaves alone was ignored"
    );

    let mut wrong = Vec::new();
    for (case, id) in cases.iter().zip(&sent) {
        let a = &case.keptn_answer;
        let expected = usize::from(a.started) + usize::from(a.finished.is_some());
        let replies = if expected == 0 {
            peer.replies(id)
        } else {
            peer.await_replies(id, expected, Duration::from_secs(20))
                .await
        };
        let started = KeptnPeer::of_kind(&replies, "started");
        let finished = KeptnPeer::of_kind(&replies, "finished");
        let mut problems = Vec::new();
        if started.len() != usize::from(a.started) {
            problems.push(format!("{} .started", started.len()));
        }
        if let (Some(m), Some(s)) = (&a.started_message, started.first())
            && s["data"]["message"] != m.as_str()
        {
            problems.push(format!("started message {}", s["data"]["message"]));
        }
        match (&a.finished, finished.as_slice()) {
            (None, []) => {}
            (Some(f), [got]) => {
                let d = &got["data"];
                if d["status"] != f.status.as_str() || d["result"] != f.result.as_str() {
                    problems.push(format!("finished {}/{}", d["status"], d["result"]));
                }
                let first = d["message"].as_str().unwrap_or("").lines().next();
                if let Some(m) = &f.message
                    && first != Some(m.as_str())
                {
                    problems.push(format!("message {first:?}"));
                }
                if d["project"] != case.event["data"]["project"] {
                    problems.push("project not copied".into());
                }
            }
            (_, got) => problems.push(format!("{} .finished", got.len())),
        }
        if !problems.is_empty() {
            wrong.push(format!(
                "{} from {}: {}",
                case.event["type"],
                case.provenance,
                problems.join(", ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} real events answered unlike Keptn:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
