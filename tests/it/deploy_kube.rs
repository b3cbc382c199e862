//! The kubernetes backend against a fake Kubernetes API server over real HTTP: a small axum
//! server written here that implements only the endpoints the backend uses, with scripted
//! rollout behaviours (there is no cluster here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keptn_native::deploy::kubernetes::KubernetesBackend;
use keptn_native::deploy::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, RollbackRequest,
};
use keptn_native::resources::LocalDir;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Success,
    ImagePull,
    CrashLoop,
    ProgressDeadline,
    Hang,
}

struct Fake {
    scenario: Scenario,
    deployments: HashMap<String, Value>,
    services: HashMap<String, Value>,
    replicasets: Vec<Value>,
    /// (method, path, content-type, body)
    requests: Vec<(String, String, String, Value)>,
    gets: u32,
}

type Shared = Arc<Mutex<Fake>>;

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
        ),
    )
        .into_response()
}

fn record(s: &Shared, method: &str, path: String, headers: &HeaderMap, body: &Bytes) -> Value {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    s.lock()
        .expect("lock")
        .requests
        .push((method.into(), path, ct, v.clone()));
    v
}

async fn patch_namespace(
    State(s): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&s, "PATCH", format!("/api/v1/namespaces/{name}"), &h, &body);
    axum::Json(v).into_response()
}

async fn patch_deployment(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(
        &s,
        "PATCH",
        format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        &h,
        &body,
    );
    let apply = h
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.contains("apply-patch"));
    let mut f = s.lock().expect("lock");
    let key = format!("{ns}/{name}");
    let stored = if apply {
        let generation = f
            .deployments
            .get(&key)
            .and_then(|d| d["metadata"]["generation"].as_i64())
            .unwrap_or(0)
            + 1;
        let mut d = v;
        d["metadata"]["generation"] = json!(generation);
        d
    } else {
        let Some(mut d) = f.deployments.get(&key).cloned() else {
            return not_found(&format!("deployments.apps {name:?}"));
        };
        let image = v["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
        d["metadata"]["generation"] = json!(d["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
        d
    };
    f.deployments.insert(key, stored.clone());
    f.gets = 0;
    axum::Json(stored).into_response()
}

/// A replace (what the rollback sends): stored as given, one generation later.
async fn put_deployment(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let mut v = record(
        &s,
        "PUT",
        format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        &h,
        &body,
    );
    let mut f = s.lock().expect("lock");
    let key = format!("{ns}/{name}");
    let Some(old) = f.deployments.get(&key) else {
        return not_found(&format!("deployments.apps {name:?}"));
    };
    v["metadata"]["generation"] = json!(old["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
    f.deployments.insert(key, v.clone());
    f.gets = 0;
    axum::Json(v).into_response()
}

async fn list_replicasets(State(s): State<Shared>) -> Response {
    let items = s.lock().expect("lock").replicasets.clone();
    axum::Json(
        json!({"kind": "ReplicaSetList", "apiVersion": "apps/v1", "metadata": {}, "items": items}),
    )
    .into_response()
}

async fn get_deployment(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let mut f = s.lock().expect("lock");
    let Some(mut d) = f.deployments.get(&format!("{ns}/{name}")).cloned() else {
        return not_found(&format!("deployments.apps {name:?}"));
    };
    f.gets += 1;
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    d["status"] = match (f.scenario, f.gets) {
        // First look: the previous rollout, complete, not yet the new generation (the trap).
        (_, 1) => {
            json!({"observedGeneration": generation - 1, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas})
        }
        (Scenario::Success, 2) => {
            json!({"observedGeneration": generation, "replicas": replicas + 1, "updatedReplicas": 1, "availableReplicas": replicas})
        }
        (Scenario::Success, _) => {
            json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas})
        }
        (Scenario::ProgressDeadline, _) => {
            json!({"observedGeneration": generation, "replicas": replicas + 1, "updatedReplicas": 1, "availableReplicas": replicas,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{name}-2\" has timed out progressing.")}]})
        }
        _ => {
            json!({"observedGeneration": generation, "replicas": replicas + 1, "updatedReplicas": 1, "availableReplicas": replicas})
        }
    };
    axum::Json(d).into_response()
}

async fn list_pods(State(s): State<Shared>, Path(ns): Path<String>) -> Response {
    let f = s.lock().expect("lock");
    let image = f
        .deployments
        .values()
        .next()
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
        .unwrap_or(Value::Null);
    let reason = match f.scenario {
        Scenario::ImagePull => "ErrImagePull",
        Scenario::CrashLoop => "CrashLoopBackOff",
        _ => "ContainerCreating",
    };
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": "old-pod", "namespace": ns}, "spec": {"containers": [{"name": "helloservice", "image": "old:v0"}]},
         "status": {"containerStatuses": [{"name": "helloservice", "image": "old:v0", "imageID": "", "ready": false, "restartCount": 9,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}},
        {"metadata": {"name": "new-pod", "namespace": ns}, "spec": {"containers": [{"name": "helloservice", "image": image}]},
         "status": {"containerStatuses": [{"name": "helloservice", "image": image, "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": "details from the kubelet"}}}]}}
    ]}))
    .into_response()
}

async fn patch_service(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(
        &s,
        "PATCH",
        format!("/api/v1/namespaces/{ns}/services/{name}"),
        &h,
        &body,
    );
    s.lock()
        .expect("lock")
        .services
        .insert(format!("{ns}/{name}"), v.clone());
    axum::Json(v).into_response()
}

async fn get_service(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match s
        .lock()
        .expect("lock")
        .services
        .get(&format!("{ns}/{name}"))
    {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => not_found(&format!("services {name:?}")),
    }
}

async fn fake_api(scenario: Scenario) -> (Shared, String) {
    let state: Shared = Arc::new(Mutex::new(Fake {
        scenario,
        deployments: HashMap::new(),
        services: HashMap::new(),
        replicasets: Vec::new(),
        requests: Vec::new(),
        gets: 0,
    }));
    let app = Router::new()
        .route(
            "/api/v1/namespaces/{name}",
            axum::routing::patch(patch_namespace),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(get_deployment)
                .patch(patch_deployment)
                .put(put_deployment),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/replicasets",
            get(list_replicasets),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}",
            get(get_service).patch(patch_service),
        )
        .route("/api/v1/namespaces/{ns}/pods", get(list_pods))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, url)
}

const MANIFESTS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: helloservice\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: helloservice}\n  template:\n    metadata:\n      labels: {app: helloservice}\n    spec:\n      containers:\n        - name: helloservice\n          image: ${IMAGE}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: helloservice\nspec:\n  selector: {app: helloservice}\n  ports:\n    - {name: http, port: 80, targetPort: 9000}\n";

fn backend(url: &str, resources: &std::path::Path, timeout: u64) -> KubernetesBackend {
    backend_with(
        url,
        resources,
        DeployConfig {
            kube_rollout_timeout_secs: Some(timeout),
            ..Default::default()
        },
    )
}

fn backend_with(url: &str, resources: &std::path::Path, cfg: DeployConfig) -> KubernetesBackend {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(url.parse().expect("uri"));
    let client = kube::Client::try_from(config).expect("client");
    KubernetesBackend::new(&cfg, client, Arc::new(LocalDir::new(resources)))
        .with_poll_interval(Duration::from_millis(50))
}

fn resources(with_manifests: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    if with_manifests {
        let p = dir.path().join("fulltour/qa/helloservice/kubernetes");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("helloservice.yaml"), MANIFESTS).expect("write");
    }
    dir
}

fn req() -> DeployRequest {
    DeployRequest {
        project: "fulltour".into(),
        stage: "qa".into(),
        service: "helloservice".into(),
        image: "ghcr.io/podtato-head/podtatoserver:v0.1.1".into(),
        strategy: "direct".into(),
        git_commit_id: None,
    }
}

#[tokio::test]
async fn kube_applies_manifests_waits_for_the_new_generation_and_reports_the_service_uri() {
    let (state, url) = fake_api(Scenario::Success).await;
    let res = resources(true);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        backend(&url, res.path(), 30).deploy(&req(), &CancellationToken::new()),
    )
    .await
    .expect("bounded")
    .expect("deploy");
    assert_eq!(r.uris_local, vec!["http://helloservice.fulltour-qa:80"]);
    let f = state.lock().expect("lock");
    assert!(
        f.gets >= 3,
        "waited past the stale status and the partial rollout: {}",
        f.gets
    );
    let paths: Vec<&str> = f.requests.iter().map(|(_, p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/fulltour-qa",
            "/apis/apps/v1/namespaces/fulltour-qa/deployments/helloservice",
            "/api/v1/namespaces/fulltour-qa/services/helloservice",
        ]
    );
    let (_, _, ct, body) = &f.requests[1];
    assert!(
        ct.contains("application/apply-patch+yaml"),
        "server-side apply: {ct}"
    );
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/podtato-head/podtatoserver:v0.1.1"
    );
    assert_eq!(body["metadata"]["namespace"], "fulltour-qa");
}

/// With namespace creation off (the chart's default, so that no cluster-wide permission on
/// Namespaces is needed) the backend never touches a Namespace.
#[tokio::test]
async fn kube_without_namespace_creation_applies_only_namespaced_objects() {
    let (state, url) = fake_api(Scenario::Success).await;
    let res = resources(true);
    let cfg = DeployConfig {
        kube_rollout_timeout_secs: Some(30),
        create_namespace: Some(false),
        ..Default::default()
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        backend_with(&url, res.path(), cfg).deploy(&req(), &CancellationToken::new()),
    )
    .await
    .expect("bounded")
    .expect("deploy");
    let f = state.lock().expect("lock");
    let paths: Vec<&str> = f.requests.iter().map(|(_, p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/apis/apps/v1/namespaces/fulltour-qa/deployments/helloservice",
            "/api/v1/namespaces/fulltour-qa/services/helloservice",
        ]
    );
}

#[tokio::test]
async fn kube_updates_the_image_of_an_existing_deployment_without_manifests() {
    let (state, url) = fake_api(Scenario::Success).await;
    state.lock().expect("lock").deployments.insert(
        "fulltour-qa/helloservice".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "helloservice", "namespace": "fulltour-qa", "generation": 4},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "helloservice"}},
                "template": {"metadata": {"labels": {"app": "helloservice"}}, "spec": {"containers": [{"name": "helloservice", "image": "old:v0"}]}}}}),
    );
    let res = resources(false);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        backend(&url, res.path(), 30).deploy(&req(), &CancellationToken::new()),
    )
    .await
    .expect("bounded")
    .expect("deploy");
    assert!(r.uris_local.is_empty(), "no Service, no URI");
    let f = state.lock().expect("lock");
    let (_, _, ct, body) = &f.requests[0];
    assert!(ct.contains("strategic-merge-patch"), "{ct}");
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "helloservice", "image": "ghcr.io/podtato-head/podtatoserver:v0.1.1"})
    );
}

async fn failing(scenario: Scenario, timeout: u64) -> (DeployError, Duration) {
    let (_state, url) = fake_api(scenario).await;
    let res = resources(true);
    let t = std::time::Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        backend(&url, res.path(), timeout).deploy(&req(), &CancellationToken::new()),
    )
    .await
    .expect("bounded")
    .expect_err("must fail");
    (e, t.elapsed())
}

#[tokio::test]
async fn kube_fails_fast_on_image_pull_errors() {
    let (e, took) = failing(Scenario::ImagePull, 60).await;
    let m = e.to_string();
    assert!(
        m.contains("ErrImagePull")
            && m.contains("new-pod")
            && m.contains("details from the kubelet"),
        "{m}"
    );
    assert!(
        took < Duration::from_secs(20),
        "fails fast, not after the 60 s timeout"
    );
}

#[tokio::test]
async fn kube_fails_fast_on_crash_loops() {
    let (e, _) = failing(Scenario::CrashLoop, 60).await;
    let m = e.to_string();
    assert!(
        m.contains("CrashLoopBackOff") && m.contains("new-pod"),
        "{m}"
    );
}

#[tokio::test]
async fn kube_fails_on_an_exceeded_progress_deadline() {
    let (e, _) = failing(Scenario::ProgressDeadline, 60).await;
    let m = e.to_string();
    assert!(
        m.contains("ProgressDeadlineExceeded") && m.contains("timed out progressing"),
        "{m}"
    );
}

#[tokio::test]
async fn kube_times_out_a_rollout_that_does_not_finish() {
    let (e, _) = failing(Scenario::Hang, 1).await;
    match e {
        DeployError::Timeout(d, why) => {
            assert_eq!(d, Duration::from_secs(1));
            assert!(
                why.contains("1 out of 2 new replicas"),
                "the last reason is reported: {why}"
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

fn rollback_req() -> RollbackRequest {
    RollbackRequest {
        project: "fulltour".into(),
        stage: "qa".into(),
        service: "helloservice".into(),
        strategy: "direct".into(),
        git_commit_id: None,
    }
}

fn template(image: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "helloservice"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    json!({"metadata": {"labels": labels},
        "spec": {"containers": [{"name": "helloservice", "image": image, "ports": [{"containerPort": 9000}]}]}})
}

fn replica_set(hash: &str, revision: u32, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("helloservice-{hash}"), "namespace": "fulltour-qa",
            "labels": {"app": "helloservice", "pod-template-hash": hash},
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "helloservice", "uid": "uid-1", "controller": true}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "helloservice", "pod-template-hash": hash}},
            "template": template(image, Some(hash))}})
}

/// The Deployment at revision 2 (v0.1.3), with its ReplicaSets.
fn with_history(state: &Shared, sets: Vec<Value>) {
    let mut f = state.lock().expect("lock");
    f.deployments.insert(
        "fulltour-qa/helloservice".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "helloservice", "namespace": "fulltour-qa", "uid": "uid-1", "resourceVersion": "7", "generation": 2,
                "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "helloservice"}},
                "template": template("ghcr.io/podtato-head/podtatoserver:v0.1.3", None)}}),
    );
    f.services.insert(
        "fulltour-qa/helloservice".into(),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "helloservice", "namespace": "fulltour-qa"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9000}]}}),
    );
    f.replicasets = sets;
}

#[tokio::test]
async fn kube_rollback_restores_the_previous_replica_set_template_and_waits() {
    let (state, url) = fake_api(Scenario::Success).await;
    with_history(
        &state,
        vec![
            replica_set("aaa", 1, "ghcr.io/podtato-head/podtatoserver:v0.1.1"),
            replica_set("bbb", 2, "ghcr.io/podtato-head/podtatoserver:v0.1.3"),
        ],
    );
    let res = resources(false);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        backend(&url, res.path(), 30).rollback(&rollback_req(), &CancellationToken::new()),
    )
    .await
    .expect("bounded")
    .expect("rollback");
    assert_eq!(r.image, "ghcr.io/podtato-head/podtatoserver:v0.1.1");
    assert_eq!(
        r.replaced.as_deref(),
        Some("ghcr.io/podtato-head/podtatoserver:v0.1.3")
    );
    assert_eq!(
        r.deployment.uris_local,
        vec!["http://helloservice.fulltour-qa:80"]
    );
    assert!(
        r.deployment.message.contains("revision 1"),
        "{}",
        r.deployment.message
    );
    let f = state.lock().expect("lock");
    assert!(f.gets >= 3, "waited for the rollout: {}", f.gets);
    let (method, path, _, body) = &f.requests[0];
    assert_eq!(
        (method.as_str(), path.as_str()),
        (
            "PUT",
            "/apis/apps/v1/namespaces/fulltour-qa/deployments/helloservice"
        )
    );
    assert_eq!(
        body["spec"]["template"],
        template("ghcr.io/podtato-head/podtatoserver:v0.1.1", None),
        "revision 1's template, without the ReplicaSet's pod-template-hash"
    );
    assert_eq!(
        body["metadata"]["resourceVersion"], "7",
        "a replace of the version read"
    );
    assert_eq!(f.requests.len(), 1, "nothing else was written");
}

#[tokio::test]
async fn kube_rollback_with_nothing_to_roll_back_to_says_so_and_writes_nothing() {
    let (state, url) = fake_api(Scenario::Success).await;
    let res = resources(false);
    let rollback = || async {
        tokio::time::timeout(
            Duration::from_secs(30),
            backend(&url, res.path(), 30).rollback(&rollback_req(), &CancellationToken::new()),
        )
        .await
        .expect("bounded")
    };
    match rollback().await {
        Err(e @ DeployError::NothingToRollBack(_)) => assert!(
            e.to_string()
                .contains("no Deployment fulltour-qa/helloservice"),
            "{e}"
        ),
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    // Only the current revision, and a ReplicaSet of another Deployment.
    let mut foreign = replica_set("zzz", 1, "other:v9");
    foreign["metadata"]["ownerReferences"][0]["name"] = json!("another");
    with_history(
        &state,
        vec![
            foreign,
            replica_set("bbb", 2, "ghcr.io/podtato-head/podtatoserver:v0.1.3"),
        ],
    );
    match rollback().await {
        Err(e @ DeployError::NothingToRollBack(_)) => {
            assert!(e.to_string().contains("revision 2 is the only one"), "{e}")
        }
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    assert!(
        state.lock().expect("lock").requests.is_empty(),
        "nothing was written"
    );
}
