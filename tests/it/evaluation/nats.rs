//! `evaluation.triggered` over real NATS through the whole service in standalone mode
//! (resources from a directory, history in the embedded store), against a real Prometheus.

use std::time::Duration;

use serde_json::json;

use super::prometheus::{END, SLI, SLO, START, data};
use crate::harness::keptn::KeptnPeer;
use crate::harness::nats::NatsServer;
use crate::harness::prometheus::Prometheus;
use crate::harness::service::Service;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn evaluation_over_nats_gives_keptns_verdicts_and_compares_with_history() {
    let prometheus = Prometheus::start(&data()).await;
    let nats = NatsServer::start();
    let resources = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(resources.path().join("fulltour/prometheus")).expect("mkdir");
    std::fs::write(resources.path().join("fulltour/prometheus/sli.yaml"), SLI).expect("sli");
    for svc in ["fast", "slow"] {
        let dir = resources.path().join(format!("fulltour/qa/{svc}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("slo.yaml"), SLO).expect("slo");
    }
    let dir = resources.path().to_path_buf();
    let prom_url = prometheus.url();
    let _svc = Service::start_with(&nats.url(), move |c| {
        c.keptn = keptn_native::config::KeptnConnection::Standalone { resources_dir: dir };
        c.evaluation.prometheus_endpoint = Some(prom_url);
    })
    .await;
    let peer = KeptnPeer::connect(&nats.url()).await;
    let trigger = |svc: &str| {
        KeptnPeer::triggered(
            "evaluation",
            json!({"project": "fulltour", "stage": "qa", "service": svc,
                   "evaluation": {"start": START, "end": END}}),
        )
    };
    let mut results = Vec::new();
    for svc in ["fast", "slow", "fast"] {
        let ev = trigger(svc);
        let id = peer.publish(&ev).await;
        let replies = peer.await_replies(&id, 2, WAIT).await;
        let finished = KeptnPeer::of_kind(&replies, "finished");
        assert_eq!(finished.len(), 1, "{replies:?}");
        assert_eq!(KeptnPeer::of_kind(&replies, "started").len(), 1);
        results.push((id, finished[0]["data"].clone()));
    }
    let (first_id, fast) = &results[0];
    assert_eq!(fast["result"], "pass", "{fast}");
    assert_eq!(fast["status"], "succeeded");
    assert_eq!(fast["evaluation"]["score"], 100.0);
    assert_eq!(fast["evaluation"]["timeStart"], START);
    assert_eq!(fast["evaluation"]["timeEnd"], END);
    assert!(
        fast["evaluation"]["sloFileContent"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let (_, slow) = &results[1];
    assert_eq!(slow["result"], "fail", "{slow}");
    assert_eq!(slow["status"], "succeeded");
    assert!(
        slow["message"]
            .as_str()
            .expect("message")
            .contains("key_sli"),
        "{slow}"
    );
    // The third evaluation compares with the first one of the same service, from the embedded store.
    let (_, again) = &results[2];
    assert_eq!(again["evaluation"]["comparedEvents"], json!([first_id]));
}
