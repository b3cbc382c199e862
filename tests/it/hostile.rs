//! Hostile and odd input over real NATS and HTTP (issue 16): one bad event never stops the
//! service, loses a reply, or grows its memory; a restart after any accepted event succeeds.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::eventually;
use crate::harness::keptn::KeptnPeer;
use crate::harness::nats::NatsServer;
use crate::harness::service::{Service, setup};

const WAIT: Duration = Duration::from_secs(10);

fn scope(extra: Value) -> Value {
    let mut d = json!({"project": "sockshop", "stage": "staging", "service": "carts",
                       "labels": {"buildId": "42"}});
    for (k, v) in extra.as_object().expect("object") {
        d[k] = v.clone();
    }
    d
}

/// `[[[ ... 1 ... ]]]`, `depth` levels.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A manual approval whose `data` carries `x` (raw JSON) `depth` levels deep.
fn manual_approval_data(depth: usize) -> String {
    format!(
        r#"{{"project":"sockshop","stage":"staging","service":"carts","result":"warning","approval":{{"warning":"manual"}},"x":{}}}"#,
        nested(depth)
    )
}

async fn approvals(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/v1/approvals"))
        .await
        .expect("list");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn finished_of(replies: &[Value]) -> Value {
    let f = KeptnPeer::of_kind(replies, "finished");
    assert_eq!(f.len(), 1, "exactly one .finished: {replies:?}");
    f[0].clone()
}

/// A binary-mode POST /events of a triggered approval with id `id`: the usual `ce-*` headers,
/// with `overrides` replacing or adding some.
async fn post_binary(
    base: &str,
    id: &str,
    overrides: &[(&str, &[u8])],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut map = reqwest::header::HeaderMap::new();
    let usual: [(&str, &[u8]); 6] = [
        ("ce-specversion", b"1.0"),
        ("ce-id", id.as_bytes()),
        ("ce-source", b"distributor"),
        ("ce-type", b"sh.keptn.event.approval.triggered"),
        ("ce-shkeptncontext", b"ctx"),
        ("content-type", b"application/json"),
    ];
    for (k, v) in usual.iter().chain(overrides) {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            reqwest::header::HeaderValue::from_bytes(v).expect("value"),
        );
    }
    reqwest::Client::new()
        .post(format!("{base}/events"))
        .headers(map)
        .body(body)
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn case1_deep_approval_data_never_bricks_the_journal_or_the_restart() {
    let (nats, mut svc, peer) = setup(|_| {}).await;
    let base = svc.base();

    // Binary mode, 126 levels: answered errored at once, never stored as pending.
    let id = uuid::Uuid::new_v4().to_string();
    let r = post_binary(&base, &id, &[], manual_approval_data(126).into_bytes()).await;
    assert_eq!(r.status(), 202);
    let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
    assert_eq!(f["data"]["status"], "errored");
    assert_eq!(f["data"]["project"], "sockshop", "scope kept");
    let msg = f["data"]["message"].as_str().expect("message");
    assert!(msg.contains("nested 127 levels deep"), "{msg}");

    // `data_base64` over NATS, same depth: the same answer.
    let mut b64 = KeptnPeer::triggered("approval", json!({}));
    let o = b64.as_object_mut().expect("object");
    o.remove("data");
    o.insert(
        "data_base64".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(manual_approval_data(126))),
    );
    let b64_id = peer.publish(&b64).await;
    let f = finished_of(&peer.await_replies(&b64_id, 2, WAIT).await);
    assert_eq!(f["data"]["status"], "errored");

    // 60 levels is within the limit: a pending approval, listed, and readable after a restart.
    let mut ok = KeptnPeer::triggered("approval", json!({}));
    ok["data"] = serde_json::from_str(&manual_approval_data(60)).expect("json");
    let ok_id = peer.publish(&ok).await;
    assert_eq!(peer.await_replies(&ok_id, 1, WAIT).await.len(), 1);
    assert!(
        eventually(WAIT, || async {
            approvals(&base).await.1.to_string().contains(&ok_id)
        })
        .await
    );
    svc.stop().await;
    drop(peer);

    // A row an older version stored for a deep approval (it cannot be decoded whole).
    {
        let conn = rusqlite::Connection::open(svc.data.path().join("keptn-native.db"))
            .expect("open journal");
        let row = format!(
            r#"{{"id":"legacy-deep","ty":"sh.keptn.event.approval.triggered","task":"approval","keptn_context":"ctx-legacy","git_commit_id":null,"source":"s","time":null,"data":{}}}"#,
            manual_approval_data(130)
        );
        conn.execute(
            "INSERT INTO journal (triggered_id, keptn_context, event_type, event, state, received_at, updated_at)
             VALUES ('legacy-deep', 'ctx-legacy', 'sh.keptn.event.approval.triggered', ?1, 'pending', 1, 1)",
            [row],
        )
        .expect("insert");
    }
    let peer = KeptnPeer::connect(&nats.url()).await;
    let app = Service::launch(&nats.url(), svc.data.path(), |_| {}).await;
    let base = format!("http://{}", app.http_addr);
    let (status, body) = approvals(&base).await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<&str> = body["approvals"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["triggeredid"].as_str())
        .collect();
    assert!(
        listed.contains(&ok_id.as_str()) && listed.contains(&"legacy-deep"),
        "{body}"
    );
    // Both can still be decided.
    for tid in [ok_id.as_str(), "legacy-deep"] {
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/approvals/{tid}"))
            .json(&json!({"result": "pass"}))
            .send()
            .await
            .expect("decide");
        assert_eq!(r.status(), 200, "{tid}");
        let f = finished_of(&peer.await_replies(tid, 1, WAIT).await);
        assert_eq!(f["data"]["result"], "pass");
        assert_eq!(f["data"]["project"], "sockshop");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn case4_correlatable_events_are_answered_in_every_mode() {
    let (_nats, svc, peer) = setup(|_| {}).await;
    let base = svc.base();
    let http = reqwest::Client::new();
    let broken_data: Vec<(&str, Vec<u8>)> = vec![
        (
            "nested",
            format!(r#"{{"project":"p","x":{}}}"#, nested(5000)).into_bytes(),
        ),
        ("1e400", br#"{"project":"p","x":1e400}"#.to_vec()),
        (
            "lone surrogate",
            br#"{"project":"p","x":"\udc00"}"#.to_vec(),
        ),
        (
            "invalid UTF-8",
            b"{\"project\":\"p\",\"x\":\"\xc3\x28\"}".to_vec(),
        ),
        (
            "control char",
            b"{\"project\":\"p\",\"x\":\"a\x02\"}".to_vec(),
        ),
        ("NaN", br#"{"project":"p","x":NaN}"#.to_vec()),
    ];
    for (what, data) in &broken_data {
        // Structured mode, over NATS and over HTTP.
        for over_http in [false, true] {
            let mut ev = KeptnPeer::triggered("approval", json!("@@"));
            let id = uuid::Uuid::new_v4().to_string();
            ev["id"] = json!(id);
            let text = ev.to_string();
            let (a, b) = text.split_once("\"@@\"").expect("marker");
            let bytes = [a.as_bytes(), data, b.as_bytes()].concat();
            if over_http {
                let r = http
                    .post(format!("{base}/events"))
                    .header("content-type", "application/cloudevents+json")
                    .body(bytes)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status(), 202, "{what}");
            } else {
                peer.publish_raw("sh.keptn.event.approval.triggered", bytes)
                    .await;
            }
            let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
            assert_eq!(f["data"]["status"], "errored", "{what}");
            assert_eq!(f["data"]["project"], "p", "{what}");
            assert!(
                f["data"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("`data` cannot be read")),
                "{what}: {f}"
            );
        }
        // Binary mode.
        let id = uuid::Uuid::new_v4().to_string();
        let r = post_binary(&base, &id, &[], data.clone()).await;
        assert_eq!(r.status(), 202, "binary {what}");
        let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
        assert_eq!(f["data"]["status"], "errored", "binary {what}");
    }

    // An event cut off inside `data` (members in Go's order: data last) is still answered.
    let id = uuid::Uuid::new_v4().to_string();
    let cut = format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"sh.keptn.event.approval.triggered","shkeptncontext":"ctx","data":{{"project":"p","stage":"#
    );
    peer.publish_raw("sh.keptn.event.approval.triggered", cut.into_bytes())
        .await;
    let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
    assert_eq!(f["data"]["status"], "errored");
    assert!(
        f["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{f}"
    );

    // Binary-mode attribute problems are answered, as structured mode answers them.
    let attribute_problems: Vec<(&str, &[u8], &str)> = vec![
        ("ce-time", b"yesterday", "RFC 3339"),
        ("ce-source", b"", "no `source`"),
        ("ce-source", b"distrib\xfctor", "not ASCII"),
    ];
    for (name, value, needle) in attribute_problems {
        let id = uuid::Uuid::new_v4().to_string();
        let r = post_binary(
            &base,
            &id,
            &[(name, value)],
            scope(json!({"result": "pass"})).to_string().into_bytes(),
        )
        .await;
        assert_eq!(r.status(), 202, "{name}");
        let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
        assert_eq!(f["data"]["status"], "errored");
        let msg = f["data"]["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{msg} lacks {needle}");
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
    }

    // An empty id is no id: refused in both modes, never answered with triggeredid "".
    let r = post_binary(
        &base,
        "",
        &[],
        scope(json!({"result": "pass"})).to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let mut empty = KeptnPeer::triggered("approval", scope(json!({"result": "pass"})));
    empty["id"] = json!("");
    let r = http
        .post(format!("{base}/events"))
        .json(&empty)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    peer.publish(&empty).await;
    // A later event is answered, so the empty ones were processed: none got a reply.
    let probe = KeptnPeer::triggered(
        "approval",
        scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let probe_id = peer.publish(&probe).await;
    assert_eq!(peer.await_replies(&probe_id, 2, WAIT).await.len(), 2);
    assert!(peer.replies("").is_empty());
}

/// A nats-server whose `max_payload` is `bytes`.
fn nats_with_max_payload(bytes: usize) -> (NatsServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, format!("max_payload: {bytes}\n")).expect("conf");
    let nats = NatsServer::start_with(&["-c", conf.to_str().expect("path")]);
    (nats, dir)
}

#[tokio::test]
async fn case5_replies_are_trimmed_below_the_servers_max_payload() {
    const MAX: usize = 64 * 1024;
    let (nats, _conf) = nats_with_max_payload(MAX);
    let svc = Service::start(&nats.url()).await;
    let peer = KeptnPeer::connect(&nats.url()).await;
    let base = svc.base();
    assert_eq!(
        peer.client.server_info().max_payload,
        MAX,
        "the server took the limit"
    );
    // Over HTTP (whose body limit is 1 MiB) a triggered event can be larger than what NATS
    // carries; everything it echoes is trimmed to fit.
    let huge = |c: char| c.to_string().repeat(200 * 1024);
    let auto = KeptnPeer::triggered(
        "approval",
        json!({"project": huge('p'), "stage": "staging", "service": "carts",
               "labels": {"big": huge('l'), "buildId": "42"},
               "result": "pass", "approval": {"pass": "automatic"}}),
    );
    let manual = KeptnPeer::triggered(
        "approval",
        json!({"project": "sockshop", "stage": "staging", "service": "carts",
               "labels": {"big": huge('l'), "buildId": "42"},
               "result": "warning", "approval": {"warning": "manual"}}),
    );
    for ev in [&auto, &manual] {
        let r = reqwest::Client::new()
            .post(format!("{base}/events"))
            .json(ev)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 202);
    }
    let auto_id = auto["id"].as_str().expect("id");
    let replies = peer.await_replies(auto_id, 2, WAIT).await;
    assert_eq!(replies.len(), 2, "started and finished both arrive");
    let f = finished_of(&replies);
    assert_eq!(f["data"]["result"], "pass");
    assert_eq!(f["data"]["labels"], json!({"buildId": "42"}));
    assert!(
        f["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reply trimmed to fit the 65536-byte message limit")),
        "{}",
        f["data"]["message"]
    );
    // The manual decision is sent, not lost.
    let manual_id = manual["id"].as_str().expect("id");
    assert_eq!(peer.await_replies(manual_id, 1, WAIT).await.len(), 1);
    assert!(
        eventually(WAIT, || async {
            approvals(&base).await.1.to_string().contains(manual_id)
        })
        .await
    );
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/approvals/{manual_id}"))
        .json(&json!({"result": "fail", "message": "m".repeat(100_000)}))
        .send()
        .await
        .expect("decide");
    assert_eq!(r.status(), 200);
    let f = finished_of(&peer.await_replies(manual_id, 2, WAIT).await);
    assert_eq!(f["data"]["result"], "fail");
    assert_eq!(f["data"]["project"], "sockshop");
}

/// A transport that refuses every reply.
struct Unreachable;

#[async_trait]
impl keptn_native::transport::EventSink for Unreachable {
    async fn publish(
        &self,
        event: &cloudevents::Event,
    ) -> Result<(), keptn_native::transport::PublishError> {
        use cloudevents::AttributesReader;
        Err(keptn_native::transport::PublishError {
            ty: event.ty().to_string(),
            reason: "maximum payload exceeded".into(),
        })
    }
}

#[tokio::test]
async fn case5_what_was_not_sent_is_never_recorded_as_sent() {
    use keptn_native::dispatch::{ApprovalError, Dispatcher, EventFilter};
    use keptn_native::handlers::{Registry, approval::ApprovalHandler};
    use keptn_native::keptn::{ReplyBuilder, ResultType, decode};
    use keptn_native::metrics::Metrics;
    use keptn_native::store::{JournalState, Store};

    let data = tempfile::tempdir().expect("tempdir");
    let store = Store::open(data.path()).expect("store");
    let mut registry = Registry::new();
    registry.register(Arc::new(ApprovalHandler));
    let metrics = Arc::new(Metrics::new(
        &mut prometheus_client::registry::Registry::default(),
    ));
    let d = Dispatcher::new(
        registry,
        ReplyBuilder::new("keptn-native"),
        Arc::new(Unreachable),
        store.clone(),
        metrics,
        EventFilter::default(),
    );
    let manual = KeptnPeer::triggered(
        "approval",
        scope(json!({"result": "warning", "approval": {"warning": "manual"}})),
    );
    let auto = KeptnPeer::triggered(
        "approval",
        scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    for ev in [&manual, &auto] {
        let env = decode(ev.to_string().as_bytes()).expect("decode");
        d.dispatch(env).await;
    }
    let manual_id = manual["id"].as_str().expect("id");
    let auto_id = auto["id"].as_str().expect("id");
    assert!(
        eventually(WAIT, || async {
            matches!(
                store.get(manual_id).await,
                Ok(Some((_, JournalState::Pending)))
            ) && !d.is_running(auto_id)
        })
        .await
    );
    // The .finished of the automatic approval was not sent: the journal keeps it open, so
    // the next start answers it.
    let (_, state) = store.get(auto_id).await.expect("get").expect("entry");
    assert_ne!(state, JournalState::Finished);
    // A decision that cannot be sent is refused and the approval stays pending.
    let e = d
        .decide_approval(manual_id, ResultType::Pass, "ok")
        .await
        .expect_err("not sent");
    assert!(matches!(e, ApprovalError::NotSent(_)), "{e}");
    let (_, state) = store.get(manual_id).await.expect("get").expect("entry");
    assert_eq!(state, JournalState::Pending);
}

#[tokio::test]
async fn case6_metric_labels_stay_bounded_whatever_types_arrive() {
    let (_nats, svc, peer) = setup(|c| c.subjects = vec!["sh.keptn.event.>".into()]).await;
    let url = format!("{}/metrics", svc.base());
    let before = reqwest::get(&url)
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    for i in 0..300 {
        let mut ev = KeptnPeer::triggered("approval", scope(json!({})));
        ev["type"] = json!(format!(
            "sh.keptn.event.t{i}-{}.triggered",
            "x".repeat(2000)
        ));
        peer.publish(&ev).await;
    }
    let probe = KeptnPeer::triggered(
        "approval",
        scope(json!({"result": "pass", "approval": {"pass": "automatic"}})),
    );
    let probe_id = peer.publish(&probe).await;
    assert_eq!(peer.await_replies(&probe_id, 2, WAIT).await.len(), 2);
    let counted = eventually(WAIT, || async {
        let m = reqwest::get(&url)
            .await
            .expect("m")
            .text()
            .await
            .expect("t");
        m.contains(r#"keptn_native_events_received_total{type="other",outcome="ignored"} 300"#)
    })
    .await;
    let after = reqwest::get(&url)
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(counted, "{after}");
    assert!(!after.contains("xxxxxxxx"), "no sender-chosen label value");
    assert!(
        after.len() < before.len() + 4096,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}

#[tokio::test]
async fn case2_3_deep_resources_are_refused_quickly_and_the_service_goes_on() {
    let resources = tempfile::tempdir().expect("tempdir");
    let dir = resources.path().join("sockshop/staging/carts");
    std::fs::create_dir_all(dir.join("locust")).expect("mkdir");
    // A locust literal 20,000 levels deep (used to overflow the stack and abort the process).
    let deep = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
    std::fs::write(
        dir.join("locust/locustfile.py"),
        format!(
            "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.post('/', json={deep})\n"
        ),
    )
    .expect("locustfile");
    // An SLO nested 60,000 levels deep (used to take 21 s to refuse).
    std::fs::write(
        dir.join("slo.yaml"),
        format!(
            "objectives: {}{}\n",
            "{a: ".repeat(60_000),
            "}".repeat(60_000)
        ),
    )
    .expect("slo");
    let path = resources.path().to_path_buf();
    let (_nats, svc, peer) = setup(move |c| {
        c.keptn = keptn_native::config::KeptnConnection::Standalone {
            resources_dir: path,
        };
        c.evaluation.prometheus_endpoint = Some("http://127.0.0.1:9".into());
    })
    .await;
    let test = KeptnPeer::triggered(
        "test",
        scope(json!({"test": {"teststrategy": "performance"},
                     "deployment": {"deploymentURIsLocal": ["http://carts.sockshop-staging:80"]}})),
    );
    let evaluation = KeptnPeer::triggered(
        "evaluation",
        scope(json!({"evaluation": {"timeframe": "5m"}})),
    );
    for (ev, needle) in [
        (
            &test,
            "locust/locustfile.py:5: literal nested more than 64 levels deep",
        ),
        (&evaluation, "nested more than 64 levels deep"),
    ] {
        let id = peer.publish(ev).await;
        let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
        assert_eq!(f["data"]["status"], "errored");
        let msg = f["data"]["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
    // (Each answer came within WAIT; refusing that SLO used to take 21 s.)
    let health = reqwest::get(format!("{}/health", svc.base()))
        .await
        .expect("health");
    assert!(health.status().is_success(), "the process is alive");
}

/// Runs the binary with `args` (bounded) and returns exit code, stdout and stderr.
async fn cli(args: Vec<String>) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::harness::exe())
                .args(&args)
                .output()
                .expect("run the binary")
        }),
    )
    .await
    .expect("in time")
    .expect("join");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn case7_files_written_differently_are_read_as_python_and_yaml_read_them() {
    let srv = crate::harness::http_target::HttpTarget::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let simple = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/')\n";
    let latin1: Vec<u8> = format!(
        "# -*- coding: latin-1 -*-\n{}",
        simple.replace("'/'", "'/', name='caf\u{e9}'")
    )
    .chars()
    .map(|c| c as u32 as u8)
    .collect();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("bom.py", format!("\u{feff}{simple}").into_bytes()),
        ("cr.py", simple.replace('\n', "\r").into_bytes()),
        (
            "formfeed.py",
            simple
                .replace("class U", "\u{c}\nclass U")
                .replace("    @task", "\u{c}    @task")
                .into_bytes(),
        ),
        ("latin1.py", latin1),
    ];
    let mut expected = 0;
    for (name, bytes) in variants {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let (code, stdout, stderr) = cli(vec![
            "loadtest".into(),
            "--host".into(),
            srv.url.clone(),
            "--locustfile".into(),
            path.display().to_string(),
            "--users".into(),
            "1".into(),
            "--iterations".into(),
            "3".into(),
            "--json".into(),
        ])
        .await;
        assert_eq!(code, Some(0), "{name}: {stderr}");
        let v: Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(v["total"]["requests"], 3, "{name}");
        expected += 3;
    }
    assert_eq!(srv.count(), expected);

    // Refusals name the file and the line, and never echo raw control characters.
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "latin1-undeclared.py",
            simple
                .replace("'/'", "'/caf\u{e9}'")
                .chars()
                .map(|c| c as u32 as u8)
                .collect(),
            "latin1-undeclared.py:5: not UTF-8 (byte 0xE9",
        ),
        (
            "control.py",
            format!("{simple}        print('\u{1b}[2J\u{7}')\n").into_bytes(),
            "control.py:6:",
        ),
    ];
    for (name, bytes, needle) in refused {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let (code, _, stderr) = cli(vec![
            "loadtest".into(),
            "--host".into(),
            srv.url.clone(),
            "--locustfile".into(),
            path.display().to_string(),
        ])
        .await;
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(
            !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
            "{name}: {stderr:?}"
        );
    }

    // An SLO with a byte-order mark is an SLO.
    let slo = dir.path().join("slo.yaml");
    std::fs::write(
        &slo,
        "\u{feff}objectives:\n  - sli: rt\n    pass:\n      - criteria: [\"<=200\"]\ntotal_score: {pass: \"90%\", warning: \"75%\"}\n",
    )
    .expect("slo");
    let values = dir.path().join("values.json");
    std::fs::write(
        &values,
        json!([{"metric": "rt", "value": 120.0, "success": true}]).to_string(),
    )
    .expect("values");
    let (code, stdout, stderr) = cli(vec![
        "evaluate".into(),
        "--slo".into(),
        slo.display().to_string(),
        "--values".into(),
        values.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["result"], "pass", "{v}");
    assert_eq!(v["evaluation"]["score"], 100.0);
}

#[tokio::test]
async fn case7_the_test_task_reads_locust_files_as_python_does() {
    let srv = crate::harness::http_target::HttpTarget::start().await;
    let resources = tempfile::tempdir().expect("tempdir");
    let simple = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/')\n";
    let good = resources.path().join("sockshop/staging/carts/locust");
    std::fs::create_dir_all(&good).expect("mkdir");
    // A byte-order mark, CR-only line ends and a form feed, in one file.
    std::fs::write(
        good.join("locustfile.py"),
        format!("\u{feff}{}", simple.replace("class U", "\u{c}\nclass U")).replace('\n', "\r"),
    )
    .expect("locustfile");
    std::fs::write(
        good.join("locust.conf"),
        "\u{feff}users = 1\r\niterations = 3\r\n",
    )
    .expect("conf");
    let bad = resources.path().join("sockshop/staging/orders/locust");
    std::fs::create_dir_all(&bad).expect("mkdir");
    let latin1: Vec<u8> = simple
        .replace("'/'", "'/caf\u{e9}'")
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    std::fs::write(bad.join("locustfile.py"), latin1).expect("locustfile");
    let path = resources.path().to_path_buf();
    let (_nats, _svc, peer) = setup(move |c| {
        c.keptn = keptn_native::config::KeptnConnection::Standalone {
            resources_dir: path,
        };
        c.loadtest.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let trigger = |service: &str| {
        let mut data = scope(json!({"test": {"teststrategy": "performance"},
                                    "deployment": {"deploymentURIsLocal": [srv.url.clone()]}}));
        data["service"] = json!(service);
        KeptnPeer::triggered("test", data)
    };
    let id = peer.publish(&trigger("carts")).await;
    let f = finished_of(&peer.await_replies(&id, 2, Duration::from_secs(30)).await);
    assert_eq!(f["data"]["status"], "succeeded", "{f}");
    assert_eq!(f["data"]["result"], "pass", "{f}");
    assert_eq!(srv.count(), 3);
    let id = peer.publish(&trigger("orders")).await;
    let f = finished_of(&peer.await_replies(&id, 2, WAIT).await);
    assert_eq!(f["data"]["status"], "errored");
    let msg = f["data"]["message"].as_str().expect("message");
    assert!(
        msg.contains("locust/locustfile.py:5: not UTF-8 (byte 0xE9 at column 30)"),
        "{msg}"
    );
}
