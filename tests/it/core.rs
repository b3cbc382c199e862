//! The service core over real NATS: the reply protocol, approvals, duplicates, malformed
//! input, the HTTP API, restarts and reconnection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::harness::eventually;
use crate::harness::keptn::KeptnPeer;
use crate::harness::nats::NatsServer;
use crate::harness::service::{Service, setup};

const WAIT: Duration = Duration::from_secs(10);

fn scope() -> Value {
    json!({"project": "sockshop", "stage": "staging", "service": "carts", "labels": {"buildId": "42"}})
}

fn with_scope(extra: Value) -> Value {
    let mut d = scope();
    for (k, v) in extra.as_object().expect("object") {
        d[k] = v.clone();
    }
    d
}

/// Asserts the correlation every reply must carry (§1.3).
fn assert_correlated(reply: &Value, triggered: &Value, kind: &str) {
    let task = triggered["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("sh.keptn.event."))
        .and_then(|t| t.strip_suffix(".triggered"))
        .expect("task type");
    assert_eq!(reply["type"], format!("sh.keptn.event.{task}.{kind}"));
    assert_eq!(reply["triggeredid"], triggered["id"]);
    assert_eq!(reply["shkeptncontext"], triggered["shkeptncontext"]);
    assert_eq!(reply["gitcommitid"], triggered["gitcommitid"]);
    assert_eq!(reply["source"], "keptn-native");
    assert_eq!(reply["specversion"], "1.0");
    assert_eq!(reply["shkeptnspecversion"], "0.2.4");
    assert_ne!(reply["id"], triggered["id"]);
    assert!(
        reply["time"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
    for key in ["project", "stage", "service"] {
        assert_eq!(reply["data"][key], triggered["data"][key], "{key}");
    }
    assert_eq!(reply["data"]["labels"], triggered["data"]["labels"]);
}

#[tokio::test]
async fn approval_cases_follow_keptns_approval_service() {
    let (_nats, _svc, peer) = setup(|_| {}).await;
    let auto_manual = json!({"pass": "automatic", "warning": "manual"});
    // (data, finished result if it finishes at once, started message)
    let cases = [
        (
            json!({"result": "pass", "approval": auto_manual}),
            Some("pass"),
            "Approval strategy for result 'pass': automatic",
        ),
        (
            json!({"result": "warning", "approval": auto_manual}),
            None,
            "Approval strategy for result 'warning': manual",
        ),
        (
            json!({"result": "warning", "approval": {"pass": "automatic", "warning": "automatic"}}),
            Some("pass"),
            "Approval strategy for result 'warning': automatic",
        ),
        (
            json!({"result": "fail", "approval": auto_manual}),
            Some("fail"),
            "Approval strategy for result 'fail': automatic",
        ),
        (
            json!({"result": "pass"}),
            None,
            "Approval strategy for result 'pass': manual",
        ),
        (
            json!({"approval": auto_manual, "evaluation": {"result": "pass", "score": 100}}),
            Some("pass"),
            "Approval strategy for result 'pass': automatic",
        ),
        (
            json!({"approval": auto_manual}),
            None,
            "Approval strategy for result '': manual",
        ),
    ];
    let mut sent = Vec::new();
    for (data, _, _) in &cases {
        let ev = KeptnPeer::triggered("approval", with_scope(data.clone()));
        peer.publish(&ev).await;
        sent.push(ev);
    }
    for ((data, finish, message), ev) in cases.iter().zip(&sent) {
        let id = ev["id"].as_str().expect("id");
        let expected = if finish.is_some() { 2 } else { 1 };
        let replies = peer.await_replies(id, expected, WAIT).await;
        let started = KeptnPeer::of_kind(&replies, "started");
        let finished = KeptnPeer::of_kind(&replies, "finished");
        assert_eq!(started.len(), 1, "{data}: {replies:?}");
        assert_correlated(&started[0], ev, "started");
        assert_eq!(started[0]["data"]["status"], "succeeded");
        assert_eq!(started[0]["data"]["message"], *message, "{data}");
        match finish {
            Some(result) => {
                assert_eq!(finished.len(), 1, "{data}: {replies:?}");
                assert_correlated(&finished[0], ev, "finished");
                assert_eq!(finished[0]["data"]["result"], *result, "{data}");
                assert_eq!(finished[0]["data"]["status"], "succeeded");
            }
            None => assert!(finished.is_empty(), "{data} must wait: {replies:?}"),
        }
    }
}

#[tokio::test]
async fn custom_task_names_work_through_aliases() {
    let (_nats, _svc, peer) = setup(|c| {
        c.task_aliases = vec![("my-gate".into(), "approval".into())];
    })
    .await;
    let ev = KeptnPeer::triggered(
        "my-gate",
        with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let id = peer.publish(&ev).await;
    let replies = peer.await_replies(&id, 2, WAIT).await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_correlated(&KeptnPeer::of_kind(&replies, "started")[0], &ev, "started");
    assert_correlated(
        &KeptnPeer::of_kind(&replies, "finished")[0],
        &ev,
        "finished",
    );
}

/// `rollback` is registered like any task (here through an alias): with nothing deployed it
/// answers `errored` with the reason, never silence.
#[tokio::test]
async fn a_rollback_with_nothing_to_roll_back_to_is_answered_errored() {
    let (_nats, _svc, peer) = setup(|c| {
        c.task_aliases = vec![("je-rollback".into(), "rollback".into())];
    })
    .await;
    let ev = KeptnPeer::triggered("je-rollback", scope());
    let id = peer.publish(&ev).await;
    let replies = peer.await_replies(&id, 2, WAIT).await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    let started = &KeptnPeer::of_kind(&replies, "started")[0];
    assert_correlated(started, &ev, "started");
    assert_eq!(
        started["data"]["message"],
        "Rolling back sockshop/staging/carts"
    );
    let finished = &KeptnPeer::of_kind(&replies, "finished")[0];
    assert_correlated(finished, &ev, "finished");
    assert_eq!(finished["data"]["status"], "errored");
    assert_eq!(finished["data"]["result"], "fail");
    assert_eq!(
        finished["data"]["message"],
        "process backend could not roll back sockshop/staging/carts: nothing to roll back to: \
         no version of sockshop/staging/carts runs here"
    );
}

#[tokio::test]
async fn unknown_tasks_and_sequence_events_get_no_reply() {
    // Subscribe to everything, so that sequence events really reach the dispatcher.
    let (_nats, svc, peer) = setup(|c| c.subjects = vec!["sh.keptn.event.>".into()]).await;
    let unknown = KeptnPeer::triggered("release", scope());
    let mut sequence = KeptnPeer::triggered("approval", scope());
    sequence["type"] = json!("sh.keptn.event.staging.delivery.triggered");
    let mut seq_approval = KeptnPeer::triggered("approval", scope());
    seq_approval["type"] = json!("sh.keptn.event.approval.delivery.triggered");
    let ids = [
        peer.publish(&unknown).await,
        peer.publish(&sequence).await,
        peer.publish(&seq_approval).await,
    ];
    // A handled event afterwards proves the earlier ones were processed (and ignored).
    let probe = KeptnPeer::triggered("approval", with_scope(json!({"result": "fail"})));
    let probe_id = peer.publish(&probe).await;
    assert_eq!(peer.await_replies(&probe_id, 2, WAIT).await.len(), 2);
    for id in &ids {
        assert!(peer.replies(id).is_empty(), "no reply expected for {id}");
    }
    let metrics = reqwest::get(format!("{}/metrics", svc.base()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    // Types that are not ours share one label value.
    assert!(
        metrics.contains(r#"keptn_native_events_received_total{type="other",outcome="ignored"} 3"#),
        "{metrics}"
    );
    assert!(!metrics.contains("release"), "{metrics}");
}

#[tokio::test]
async fn malformed_events_get_an_errored_reply_when_they_can_be_correlated() {
    let (_nats, svc, peer) = setup(|_| {}).await;

    // Wrongly typed payload: approval is a string.
    let wrong = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "pass", "approval": "yes"})),
    );
    // Not a valid CloudEvent (time is not RFC 3339) but correlatable.
    let mut bad_time = KeptnPeer::triggered("approval", with_scope(json!({"result": "pass"})));
    bad_time["time"] = json!("yesterday at noon");
    // No data at all.
    let mut no_data = KeptnPeer::triggered("approval", json!({}));
    no_data.as_object_mut().expect("object").remove("data");
    for ev in [&wrong, &bad_time, &no_data] {
        peer.publish(ev).await;
    }
    let expectations = [
        (
            &wrong,
            "invalid `data` of sh.keptn.event.approval.triggered",
        ),
        (&bad_time, "not a valid CloudEvent"),
        (&no_data, "no `data` object"),
    ];
    for (ev, needle) in expectations {
        let id = ev["id"].as_str().expect("id");
        let replies = peer.await_replies(id, 2, WAIT).await;
        assert_eq!(replies.len(), 2, "{replies:?}");
        let finished = &KeptnPeer::of_kind(&replies, "finished")[0];
        assert_eq!(finished["data"]["status"], "errored");
        assert_eq!(finished["data"]["result"], "fail");
        let message = finished["data"]["message"].as_str().expect("message");
        assert!(
            message.contains(needle),
            "{message:?} should contain {needle:?}"
        );
        assert_eq!(finished["triggeredid"], ev["id"]);
    }

    // Uncorrelatable: not JSON, no shkeptncontext. No reply; counted as rejected.
    peer.publish_raw("sh.keptn.event.approval.triggered", b"{not json".to_vec())
        .await;
    let mut no_ctx = KeptnPeer::triggered("approval", with_scope(json!({"result": "pass"})));
    no_ctx
        .as_object_mut()
        .expect("object")
        .remove("shkeptncontext");
    let no_ctx_id = peer.publish(&no_ctx).await;
    let url = format!("{}/metrics", svc.base());
    let counted = eventually(WAIT, || async {
        let m = reqwest::get(&url).await.expect("metrics").text().await.expect("text");
        m.contains(r#"keptn_native_events_received_total{type="other",outcome="rejected"} 1"#)
            && m.contains(r#"keptn_native_events_received_total{type="sh.keptn.event.approval.triggered",outcome="rejected"} 1"#)
    })
    .await;
    assert!(counted, "rejections are counted");
    assert!(peer.replies(&no_ctx_id).is_empty());
}

#[tokio::test]
async fn a_second_delivery_of_the_same_triggered_id_gets_no_second_reply() {
    let (_nats, _svc, peer) = setup(|_| {}).await;
    let ev = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let id = peer.publish(&ev).await;
    peer.await_replies(&id, 2, WAIT).await;
    peer.publish(&ev).await;
    peer.publish(&ev).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = peer.replies(&id);
    assert_eq!(
        KeptnPeer::of_kind(&replies, "started").len(),
        1,
        "{replies:?}"
    );
    assert_eq!(
        KeptnPeer::of_kind(&replies, "finished").len(),
        1,
        "{replies:?}"
    );
}

async fn pending_ids(base: &str, token: Option<&str>) -> Vec<String> {
    let mut req = reqwest::Client::new().get(format!("{base}/v1/approvals"));
    if let Some(t) = token {
        req = req.header("x-token", t);
    }
    let body: Value = req.send().await.expect("list").json().await.expect("json");
    body["approvals"]
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["triggeredid"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn manual_approval_through_the_api_with_token() {
    let token = "s3cret-token-for-tests";
    let (_nats, svc, peer) = setup(|c| {
        c.api_token = Some(keptn_native::config::Secret::new(token));
    })
    .await;
    let ev = KeptnPeer::triggered(
        "approval",
        with_scope(
            json!({"result": "warning", "approval": {"pass": "automatic", "warning": "manual"}}),
        ),
    );
    let id = peer.publish(&ev).await;
    assert_eq!(peer.await_replies(&id, 1, WAIT).await.len(), 1);
    let base = svc.base();
    let http = reqwest::Client::new();

    // The token is enforced on reads and writes.
    let r = http
        .get(format!("{base}/v1/approvals"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/v1/approvals/{id}"))
        .header("x-token", "wrong-token-value")
        .json(&json!({"result": "pass"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    assert!(
        peer.replies(&id).len() == 1,
        "no decision without the token"
    );

    let listed = eventually(WAIT, || async {
        pending_ids(&base, Some(token)).await.contains(&id)
    })
    .await;
    assert!(listed, "pending approval is listed");
    let r = http
        .post(format!("{base}/v1/approvals/{id}"))
        .header("x-token", token)
        .json(&json!({"result": "maybe"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{base}/v1/approvals/{id}"))
        .header("x-token", token)
        .json(&json!({"result": "fail", "message": "not today"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let replies = peer.await_replies(&id, 2, WAIT).await;
    let finished = KeptnPeer::of_kind(&replies, "finished");
    assert_eq!(finished.len(), 1, "{replies:?}");
    assert_correlated(&finished[0], &ev, "finished");
    assert_eq!(finished[0]["data"]["result"], "fail");
    assert_eq!(finished[0]["data"]["status"], "succeeded");
    assert_eq!(finished[0]["data"]["message"], "not today");
    // Decided once only.
    let r = http
        .post(format!("{base}/v1/approvals/{id}"))
        .header("x-token", token)
        .json(&json!({"result": "pass"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    assert!(!pending_ids(&base, Some(token)).await.contains(&id));
}

#[tokio::test]
async fn an_approval_finished_sent_by_the_bridge_settles_a_pending_approval() {
    let (_nats, svc, peer) = setup(|_| {}).await;
    let ev = KeptnPeer::triggered("approval", with_scope(json!({"result": "pass"})));
    let id = peer.publish(&ev).await;
    peer.await_replies(&id, 1, WAIT).await;
    let base = svc.base();
    assert!(
        eventually(WAIT, || async {
            pending_ids(&base, None).await.contains(&id)
        })
        .await
    );
    let bridge = json!({
        "specversion": "1.0", "id": uuid::Uuid::new_v4().to_string(),
        "source": "https://github.com/keptn/keptn/bridge#approval.finished",
        "type": "sh.keptn.event.approval.finished", "time": "2026-11-22T10:05:00.000Z",
        "contenttype": "application/json",
        "shkeptncontext": ev["shkeptncontext"], "triggeredid": id,
        "data": with_scope(json!({"result": "pass", "status": "succeeded", "message": ""})),
    });
    peer.publish(&bridge).await;
    assert!(
        eventually(WAIT, || async {
            !pending_ids(&base, None).await.contains(&id)
        })
        .await
    );
    // The service itself sends no second finished.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let finished = KeptnPeer::of_kind(&peer.replies(&id), "finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["source"], bridge["source"]);
}

#[tokio::test]
async fn pending_approvals_survive_a_restart() {
    let (nats, mut svc, peer) = setup(|_| {}).await;
    let ev = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "warning", "approval": {"warning": "manual"}})),
    );
    let id = peer.publish(&ev).await;
    peer.await_replies(&id, 1, WAIT).await;
    let base = svc.base();
    assert!(
        eventually(WAIT, || async {
            pending_ids(&base, None).await.contains(&id)
        })
        .await
    );
    svc.stop().await;

    let app = Service::launch(&nats.url(), svc.data.path(), |_| {}).await;
    let base = format!("http://{}", app.http_addr);
    assert_eq!(pending_ids(&base, None).await, vec![id.clone()]);
    // The restart sent nothing for the pending approval.
    assert_eq!(peer.replies(&id).len(), 1);
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/approvals/{id}"))
        .json(&json!({"result": "pass"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let replies = peer.await_replies(&id, 2, WAIT).await;
    let finished = KeptnPeer::of_kind(&replies, "finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["data"]["result"], "pass");
    app.shutdown().await;
}

#[tokio::test]
async fn tasks_left_unfinished_by_a_dead_process_are_answered_at_start() {
    use keptn_native::keptn::decode;
    use keptn_native::store::{JournalState, Store};
    let nats = NatsServer::start();
    let peer = KeptnPeer::connect(&nats.url()).await;
    let data = tempfile::tempdir().expect("tempdir");
    // What a process that died leaves in its journal: one task whose .started was sent,
    // one accepted just before it died (its .started may not have gone out).
    let started = KeptnPeer::triggered("approval", with_scope(json!({"result": "pass"})));
    let accepted = KeptnPeer::triggered("approval", with_scope(json!({"result": "pass"})));
    {
        let store = Store::open(data.path()).expect("store");
        for (ev, state) in [
            (&started, JournalState::Started),
            (&accepted, JournalState::Accepted),
        ] {
            let t = decode(ev.to_string().as_bytes())
                .expect("decode")
                .into_triggered()
                .expect("triggered");
            assert!(store.accept(&t).await.expect("accept"));
            store.mark(&t.id, state, None).await.expect("mark");
        }
    }
    // With re-runs off, an interrupted task is answered `errored`.
    let app = Service::launch(&nats.url(), data.path(), |c| c.rerun_interrupted = false).await;
    for (ev, n) in [(&started, 1), (&accepted, 2)] {
        let id = ev["id"].as_str().expect("id");
        let replies = peer.await_replies(id, n, WAIT).await;
        assert_eq!(replies.len(), n, "{replies:?}");
        let finished = &KeptnPeer::of_kind(&replies, "finished")[0];
        assert_correlated(finished, ev, "finished");
        assert_eq!(finished["data"]["status"], "errored");
        assert_eq!(finished["data"]["result"], "fail");
        assert!(
            finished["data"]["message"]
                .as_str()
                .expect("msg")
                .contains("interrupted")
        );
    }
    app.shutdown().await;
    // Answered once: a second start sends nothing more.
    let app = Service::launch(&nats.url(), data.path(), |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.replies(started["id"].as_str().expect("id")).len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn events_endpoint_takes_structured_and_binary_mode_and_enforces_the_token() {
    let token = "another-long-token";
    let (_nats, svc, peer) = setup(|c| {
        c.api_token = Some(keptn_native::config::Secret::new(token));
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/events", svc.base());

    let structured = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let r = http.post(&url).json(&structured).send().await.expect("req");
    assert_eq!(r.status(), 401, "token required");
    let r = http
        .post(&url)
        .header("x-token", token)
        .header("content-type", "application/cloudevents+json")
        .body(structured.to_string())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 202);
    let replies = peer
        .await_replies(structured["id"].as_str().expect("id"), 2, WAIT)
        .await;
    assert_eq!(replies.len(), 2, "{replies:?}");

    let id = uuid::Uuid::new_v4().to_string();
    let ctx = uuid::Uuid::new_v4().to_string();
    let r = http
        .post(&url)
        .header("x-token", token)
        .header("ce-specversion", "1.0")
        .header("ce-id", &id)
        .header("ce-source", "distributor")
        .header("ce-type", "sh.keptn.event.approval.triggered")
        .header("ce-time", "2026-11-22T10:00:00Z")
        .header("ce-shkeptncontext", &ctx)
        .header("ce-gitcommitid", "feedbeef")
        .header("content-type", "application/json")
        .body(with_scope(json!({"result": "fail"})).to_string())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 202);
    let replies = peer.await_replies(&id, 2, WAIT).await;
    let finished = KeptnPeer::of_kind(&replies, "finished");
    assert_eq!(finished.len(), 1, "{replies:?}");
    assert_eq!(finished[0]["shkeptncontext"], ctx.as_str());
    assert_eq!(finished[0]["gitcommitid"], "feedbeef");
    assert_eq!(finished[0]["data"]["result"], "fail");
    assert_eq!(finished[0]["data"]["service"], "carts");

    let r = http
        .post(&url)
        .header("x-token", token)
        .body("nonsense")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let big = "x".repeat(2 << 20);
    let r = http
        .post(&url)
        .header("x-token", token)
        .body(big)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 413, "bodies are limited");
}

#[tokio::test]
async fn the_service_reconnects_after_a_nats_restart_and_keeps_answering() {
    let mut nats = NatsServer::start();
    let svc = Service::start(&nats.url()).await;
    nats.restart();
    let ready = format!("{}/ready", svc.base());
    // Readiness follows the connection.
    assert!(
        eventually(WAIT, || async {
            reqwest::get(&ready)
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peer = KeptnPeer::connect(&nats.url()).await;
    let ev = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let id = peer.publish(&ev).await;
    let replies = peer.await_replies(&id, 2, WAIT).await;
    assert_eq!(replies.len(), 2, "{replies:?}");

    nats.stop();
    assert!(
        eventually(WAIT, || async {
            reqwest::get(&ready)
                .await
                .map(|r| r.status() == 503)
                .unwrap_or(false)
        })
        .await,
        "not ready while NATS is down"
    );
}

/// A handler that panics, to prove a panic costs no reply.
struct Panicking;

#[async_trait]
impl keptn_native::handlers::TaskHandler for Panicking {
    fn task(&self) -> &'static str {
        "deployment"
    }
    async fn handle(
        &self,
        _req: keptn_native::handlers::TaskRequest,
    ) -> anyhow::Result<keptn_native::handlers::TaskOutcome> {
        panic!("simulated bug in a handler")
    }
}

#[tokio::test]
async fn a_panicking_handler_still_gets_its_finished_and_the_dispatcher_goes_on() {
    use keptn_native::dispatch::{Dispatcher, EventFilter, Outcome};
    use keptn_native::handlers::Registry;
    use keptn_native::keptn::ReplyBuilder;
    use keptn_native::metrics::Metrics;
    use keptn_native::store::Store;
    use keptn_native::transport::nats::NatsSink;

    let nats = NatsServer::start();
    let peer = KeptnPeer::connect(&nats.url()).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let data = tempfile::tempdir().expect("tempdir");
    let mut registry = Registry::new();
    registry.register(Arc::new(Panicking));
    let mut prom = prometheus_client::registry::Registry::default();
    let d = Dispatcher::new(
        registry,
        ReplyBuilder::new("keptn-native"),
        Arc::new(NatsSink::new(client.clone())),
        Store::open(data.path()).expect("store"),
        Arc::new(Metrics::new(&mut prom)),
        EventFilter::default(),
    );
    for _ in 0..2 {
        let ev = KeptnPeer::triggered("deployment", scope());
        let outcome = d.dispatch_bytes(ev.to_string().as_bytes()).await;
        assert_eq!(outcome, Outcome::Handled);
        client.flush().await.expect("flush");
        let replies = peer
            .await_replies(ev["id"].as_str().expect("id"), 2, WAIT)
            .await;
        let finished = KeptnPeer::of_kind(&replies, "finished");
        assert_eq!(finished.len(), 1, "{replies:?}");
        assert_eq!(finished[0]["data"]["status"], "errored");
        assert!(
            finished[0]["data"]["message"]
                .as_str()
                .expect("message")
                .contains("simulated bug in a handler")
        );
    }
}

#[tokio::test]
async fn nats_user_password_and_token_authentication() {
    use keptn_native::config::Secret;
    for (server_args, good, bad) in [
        (
            vec!["--user", "keptn", "--pass", "s3cret-pass"],
            (Some("keptn"), Some("s3cret-pass"), None),
            (Some("keptn"), Some("wrong-pass"), None),
        ),
        (
            vec!["--auth", "tok-123456"],
            (None, None, Some("tok-123456")),
            (None, None, Some("tok-wrong")),
        ),
    ] {
        let nats = NatsServer::start_with(&server_args);
        let auth =
            |c: &mut keptn_native::config::ServeConfig,
             (user, pass, token): (Option<&str>, Option<&str>, Option<&str>)| {
                c.nats.user = user.map(String::from);
                c.nats.password = pass.map(Secret::new);
                c.nats.token = token.map(Secret::new);
            };
        let mut svc = Service::start_with(&nats.url(), |c| auth(c, good)).await;
        let opts = match good {
            (Some(u), Some(p), _) => {
                async_nats::ConnectOptions::with_user_and_password(u.into(), p.into())
            }
            (_, _, Some(t)) => async_nats::ConnectOptions::with_token(t.into()),
            _ => async_nats::ConnectOptions::new(),
        };
        let peer = KeptnPeer::from_client(opts.connect(nats.url()).await.expect("connect")).await;
        let ev = KeptnPeer::triggered(
            "approval",
            with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
        );
        let id = peer.publish(&ev).await;
        assert_eq!(
            peer.await_replies(&id, 2, WAIT).await.len(),
            2,
            "{server_args:?}"
        );
        svc.stop().await;

        // Wrong credentials: the service starts (it keeps retrying) but is never ready.
        let data = tempfile::tempdir().expect("tempdir");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = keptn_native::config::ServeConfig::local(&nats.url(), data.path());
        auth(&mut config, bad);
        let app = keptn_native::app::start(config).await.expect("starts");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = reqwest::get(format!("http://{}/ready", app.http_addr))
            .await
            .expect("ready");
        assert_eq!(r.status(), 503, "{server_args:?}");
        app.shutdown().await;
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` command.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=keptn-native test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test]
async fn nats_over_tls_verified_with_a_ca_file() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certificates(certs.path());
    let p = |f: &str| certs.path().join(f).to_string_lossy().into_owned();
    let nats = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        &p("server.crt"),
        "--tlskey",
        &p("server.key"),
    ]);
    let ca = certs.path().join("ca.crt");
    let mut svc = Service::start_with(&nats.url(), |c| c.nats.tls_ca_file = Some(ca.clone())).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(nats.url())
        .await
        .expect("TLS client");
    let peer = KeptnPeer::from_client(client).await;
    let ev = KeptnPeer::triggered(
        "approval",
        with_scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let id = peer.publish(&ev).await;
    assert_eq!(peer.await_replies(&id, 2, WAIT).await.len(), 2);
    svc.stop().await;

    // Without the CA the server's certificate is not trusted: never ready.
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = keptn_native::config::ServeConfig::local(&nats.url(), data.path());
    config.nats.tls_required = true;
    let app = keptn_native::app::start(config).await.expect("starts");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = reqwest::get(format!("http://{}/ready", app.http_addr))
        .await
        .expect("ready");
    assert_eq!(r.status(), 503);
    app.shutdown().await;
}
