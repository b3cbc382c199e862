//! The `kubernetes` backend (`kube` crate).
//!
//! With manifests (the Keptn resource `kubernetes/<service>.yaml` by default, `${IMAGE}`
//! replaced by the image): creates the namespace if needed (unless `create_namespace` is off)
//! and server-side applies every object
//! (field manager `keptn-native`, forced). Without: patches the image of the existing
//! Deployment `<service>` (the container named like the service, else the first one).
//! Then waits like `kubectl rollout status` ([`rollout_state`]) with a timeout, failing fast on
//! image pull errors, crash loops and an exceeded progress deadline ([`pod_failure`]), and
//! reports `http://<service>.<namespace>:<port>` from the Service.
//!
//! Rolling back does what `kubectl rollout undo` does: among the Deployment's ReplicaSets
//! (the revision history Kubernetes keeps), the one with the highest revision below the
//! current one and another pod template ([`previous_template`]) gives back its template
//! (without `pod-template-hash`); the Deployment is replaced with it, and the rollout is waited
//! for as above.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodTemplateSpec, Service};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::manifest;
use super::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, DeployResult, RollbackRequest,
    RollbackResult, Vars, render, request_vars, validate_name,
};
use crate::resources::{ResourceScope, ResourceStore};

const FIELD_MANAGER: &str = "keptn-native";

/// Deploys to Kubernetes through its API.
pub struct KubernetesBackend {
    client: Client,
    resources: Arc<dyn ResourceStore>,
    namespace: String,
    manifest: String,
    timeout: Duration,
    create_namespace: bool,
    poll: Duration,
}

impl KubernetesBackend {
    pub fn new(config: &DeployConfig, client: Client, resources: Arc<dyn ResourceStore>) -> Self {
        KubernetesBackend {
            client,
            resources,
            namespace: config.namespace().to_string(),
            manifest: config.kube_manifest().to_string(),
            timeout: config.kube_rollout_timeout(),
            create_namespace: config.create_namespace(),
            poll: Duration::from_secs(2),
        }
    }

    /// How often the rollout is checked (default 2 s).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    async fn apply_manifests(
        &self,
        namespace: &str,
        text: &str,
    ) -> Result<Option<String>, DeployError> {
        let docs = manifest::documents(text).map_err(DeployError::Failed)?;
        if docs.is_empty() {
            return Err(DeployError::Failed(
                "the manifest resource has no objects".into(),
            ));
        }
        if self.create_namespace {
            let ns_api: Api<Namespace> = Api::all(self.client.clone());
            let ns =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            ns_api
                .patch(namespace, &apply_params(), &Patch::Apply(&ns))
                .await
                .map_err(|e| api_error(&format!("apply Namespace {namespace}"), e))?;
        }
        let mut deployment = None;
        for mut doc in docs {
            let (ar, namespaced) = api_resource(&doc)?;
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    DeployError::Failed(format!(
                        "a {} in the manifest has no metadata.name",
                        ar.kind
                    ))
                })?
                .to_string();
            if namespaced && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert("namespace".into(), namespace.into());
            }
            let obj: DynamicObject = serde_json::from_value(doc)
                .map_err(|e| DeployError::Failed(format!("{} {name}: {e}", ar.kind)))?;
            let api: Api<DynamicObject> = if namespaced {
                Api::namespaced_with(self.client.clone(), namespace, &ar)
            } else {
                Api::all_with(self.client.clone(), &ar)
            };
            api.patch(&name, &apply_params(), &Patch::Apply(&obj))
                .await
                .map_err(|e| api_error(&format!("apply {} {name}", ar.kind), e))?;
            if ar.kind == "Deployment" && deployment.is_none() {
                deployment = Some(name);
            }
        }
        Ok(deployment)
    }

    async fn set_image(&self, namespace: &str, name: &str, image: &str) -> Result<(), DeployError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let current = api
            .get_opt(name)
            .await
            .map_err(|e| api_error(&format!("get Deployment {namespace}/{name}"), e))?
            .ok_or_else(|| {
                DeployError::Failed(format!(
                    "no manifests resource and no existing Deployment {namespace}/{name} whose image could be updated"
                ))
            })?;
        let containers = current
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| {
                p.containers
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let container = containers
            .iter()
            .find(|c| *c == name)
            .or_else(|| containers.first())
            .ok_or_else(|| {
                DeployError::Failed(format!("Deployment {namespace}/{name} has no containers"))
            })?;
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}});
        api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| api_error(&format!("update image of Deployment {namespace}/{name}"), e))?;
        Ok(())
    }

    async fn wait_rollout(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let d = deployments
                .get(name)
                .await
                .map_err(|e| api_error(&format!("get Deployment {namespace}/{name}"), e))?;
            let waiting = match rollout_state(&d) {
                RolloutState::Done => return Ok(()),
                RolloutState::Failed(why) => {
                    return Err(DeployError::Failed(format!(
                        "Deployment {namespace}/{name}: {why}"
                    )));
                }
                RolloutState::Waiting(why) => why,
            };
            if let Some(selector) = selector_of(&d) {
                let list = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|e| api_error(&format!("list pods of {namespace}/{name}"), e))?;
                if let Some(why) = pod_failure(&list.items, image) {
                    return Err(DeployError::Failed(format!(
                        "Deployment {namespace}/{name}: {why}"
                    )));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DeployError::Timeout(
                    self.timeout,
                    format!("Deployment {namespace}/{name}: {waiting}"),
                ));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// The Deployment of a service: the first one in its manifests, else `<service>`.
    async fn deployment_name(
        &self,
        vars: &Vars<'_>,
        scope: &ResourceScope,
        service: &str,
        commit: Option<&str>,
    ) -> Result<String, DeployError> {
        let uri = render(&self.manifest, vars);
        let Some(bytes) = self
            .resources
            .get(scope, &uri, commit)
            .await
            .map_err(|e| DeployError::Failed(e.to_string()))?
        else {
            return Ok(service.to_string());
        };
        let text = String::from_utf8_lossy(&bytes);
        let docs = manifest::documents(&text).map_err(DeployError::Failed)?;
        Ok(docs
            .iter()
            .find(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
            .and_then(|d| d.pointer("/metadata/name").and_then(Value::as_str))
            .unwrap_or(service)
            .to_string())
    }

    async fn local_uri(
        &self,
        namespace: &str,
        service: &str,
    ) -> Result<Option<String>, DeployError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let Some(svc) = api
            .get_opt(service)
            .await
            .map_err(|e| api_error(&format!("get Service {namespace}/{service}"), e))?
        else {
            return Ok(None);
        };
        let value = serde_json::to_value(&svc).unwrap_or_default();
        Ok(manifest::local_uri(
            &manifest::services(&[value]),
            namespace,
        ))
    }
}

#[async_trait]
impl DeployBackend for KubernetesBackend {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn deploy(
        &self,
        req: &DeployRequest,
        cancel: &CancellationToken,
    ) -> Result<DeployResult, DeployError> {
        req.validate()?;
        let vars = request_vars(req);
        let namespace = render(&self.namespace, &vars);
        validate_name("namespace", &namespace)?;
        let uri = render(&self.manifest, &vars);
        let scope = ResourceScope::service(&req.project, &req.stage, &req.service);
        let manifests = self
            .resources
            .get(&scope, &uri, req.git_commit_id.as_deref())
            .await
            .map_err(|e| DeployError::Failed(e.to_string()))?;
        let work = async {
            let deployment = match manifests {
                Some(bytes) => {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| DeployError::Failed(format!("{uri} is not UTF-8")))?
                        .replace("${IMAGE}", &req.image);
                    tracing::info!(%namespace, resource = %uri, image = %req.image, "server-side apply");
                    self.apply_manifests(&namespace, &text)
                        .await?
                        .unwrap_or_else(|| req.service.clone())
                }
                None => {
                    tracing::info!(%namespace, deployment = %req.service, image = %req.image, "updating image");
                    self.set_image(&namespace, &req.service, &req.image).await?;
                    req.service.clone()
                }
            };
            self.wait_rollout(&namespace, &deployment, &req.image, cancel)
                .await?;
            Ok::<_, DeployError>(deployment)
        };
        let deployment = tokio::select! {
            _ = cancel.cancelled() => return Err(DeployError::Cancelled),
            r = work => r?,
        };
        let uris_local: Vec<String> = self
            .local_uri(&namespace, &req.service)
            .await?
            .into_iter()
            .collect();
        Ok(DeployResult {
            strategy: req.strategy.clone(),
            uris_public: Vec::new(),
            message: format!(
                "Successfully deployed {} as Deployment {namespace}/{deployment}",
                req.image
            ),
            uris_local,
            names: vec![req.strategy.clone()],
        })
    }

    async fn rollback(
        &self,
        req: &RollbackRequest,
        cancel: &CancellationToken,
    ) -> Result<RollbackResult, DeployError> {
        req.validate()?;
        let vars = req.vars();
        let namespace = render(&self.namespace, &vars);
        validate_name("namespace", &namespace)?;
        let scope = ResourceScope::service(&req.project, &req.stage, &req.service);
        let name = self
            .deployment_name(&vars, &scope, &req.service, req.git_commit_id.as_deref())
            .await?;
        let work = async {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
            let current = api
                .get_opt(&name)
                .await
                .map_err(|e| api_error(&format!("get Deployment {namespace}/{name}"), e))?
                .ok_or_else(|| {
                    DeployError::NothingToRollBack(format!(
                        "there is no Deployment {namespace}/{name}"
                    ))
                })?;
            let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &namespace);
            let mut params = ListParams::default();
            if let Some(selector) = selector_of(&current) {
                params = params.labels(&selector);
            }
            let sets = rs_api
                .list(&params)
                .await
                .map_err(|e| api_error(&format!("list ReplicaSets of {namespace}/{name}"), e))?;
            let (revision, template) = previous_template(&current, &sets.items).map_err(|why| {
                DeployError::NothingToRollBack(format!("Deployment {namespace}/{name}: {why}"))
            })?;
            let replaced = template_image(current.spec.as_ref().map(|s| &s.template), &name);
            let image = template_image(Some(&template), &name).unwrap_or_default();
            let mut restored = current;
            if let Some(spec) = restored.spec.as_mut() {
                spec.template = template;
            }
            restored.status = None;
            tracing::info!(%namespace, deployment = %name, revision, %image, "rollout undo");
            // A replace, not a patch: the whole template of that revision comes back, and the
            // resourceVersion makes a concurrent change fail instead of being overwritten.
            api.replace(&name, &PostParams::default(), &restored)
                .await
                .map_err(|e| api_error(&format!("restore Deployment {namespace}/{name}"), e))?;
            self.wait_rollout(&namespace, &name, &image, cancel).await?;
            Ok::<_, DeployError>((revision, image, replaced))
        };
        let (revision, image, replaced) = tokio::select! {
            _ = cancel.cancelled() => return Err(DeployError::Cancelled),
            r = work => r?,
        };
        let uris_local: Vec<String> = self
            .local_uri(&namespace, &req.service)
            .await?
            .into_iter()
            .collect();
        Ok(RollbackResult::in_cluster(
            req,
            &format!("Deployment {namespace}/{name} to revision {revision}"),
            image,
            replaced,
            uris_local,
        ))
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

fn api_error(what: &str, e: kube::Error) -> DeployError {
    match e {
        kube::Error::Api(s) => DeployError::Failed(format!("{what}: {} ({})", s.message, s.code)),
        other => DeployError::Failed(format!("{what}: {other}")),
    }
}

/// The kinds the manifests may contain: `(apiVersion, kind) -> (plural, namespaced)`.
const KINDS: &[(&str, &str, &str, bool)] = &[
    ("apps/v1", "Deployment", "deployments", true),
    ("apps/v1", "StatefulSet", "statefulsets", true),
    ("v1", "Service", "services", true),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Secret", "secrets", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("networking.k8s.io/v1", "Ingress", "ingresses", true),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
];

fn api_resource(doc: &Value) -> Result<(ApiResource, bool), DeployError> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (_, _, plural, namespaced) = KINDS
        .iter()
        .find(|(v, k, _, _)| *v == api_version && *k == kind)
        .ok_or_else(|| {
            DeployError::Failed(format!(
                "unsupported object {api_version}/{kind} in the manifests (supported: {})",
                KINDS
                    .iter()
                    .map(|(v, k, _, _)| format!("{v}/{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok((ApiResource::from_gvk_with_plural(&gvk, plural), *namespaced))
}

fn selector_of(d: &Deployment) -> Option<String> {
    let labels = d.spec.as_ref()?.selector.match_labels.as_ref()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// A pod template as a revision compares it: without the `pod-template-hash` label the
/// ReplicaSet controller adds.
fn without_hash(mut t: PodTemplateSpec) -> PodTemplateSpec {
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    t
}

/// The template `kubectl rollout undo` restores (pure): among the ReplicaSets the Deployment
/// owns, the highest revision below the current one (the Deployment's revision annotation,
/// else the highest) whose template differs from the current template.
pub fn previous_template(
    d: &Deployment,
    sets: &[ReplicaSet],
) -> Result<(i64, PodTemplateSpec), String> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let owned: Vec<(i64, &ReplicaSet)> = sets
        .iter()
        .filter(|rs| {
            rs.metadata.owner_references.iter().flatten().any(|o| {
                o.kind == "Deployment"
                    && o.name == name
                    && d.metadata.uid.as_ref().is_none_or(|uid| *uid == o.uid)
            })
        })
        .filter_map(|rs| Some((revision_of(&rs.metadata)?, rs)))
        .collect();
    let current = revision_of(&d.metadata)
        .or_else(|| owned.iter().map(|(r, _)| *r).max())
        .ok_or("it has no rollout history (no ReplicaSet with a revision)")?;
    let current_template = d.spec.as_ref().map(|s| without_hash(s.template.clone()));
    owned
        .iter()
        .filter(|(r, _)| *r < current)
        .filter_map(|(r, rs)| {
            let t = without_hash(rs.spec.as_ref()?.template.clone()?);
            (Some(&t) != current_template.as_ref()).then_some((*r, t))
        })
        .max_by_key(|(r, _)| *r)
        .ok_or_else(|| format!("revision {current} is the only one in its rollout history"))
}

/// The image of the container named like the Deployment, else of the first container.
fn template_image(t: Option<&PodTemplateSpec>, name: &str) -> Option<String> {
    let containers = &t?.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == name)
        .or_else(|| containers.first())
        .and_then(|c| c.image.clone())
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    Done,
    Waiting(String),
    Failed(String),
}

/// `kubectl rollout status` for a Deployment (`kubectl/pkg/polymorphichelpers/rollout_status.go`),
/// pure: the controller must have observed the current generation; a `Progressing` condition
/// with reason `ProgressDeadlineExceeded` fails; then all replicas must be updated, old ones
/// gone, and the updated ones available.
pub fn rollout_state(d: &Deployment) -> RolloutState {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return RolloutState::Waiting("no status yet".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutState::Waiting(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return RolloutState::Failed(format!(
            "exceeded its progress deadline (ProgressDeadlineExceeded){}",
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return RolloutState::Waiting(format!(
            "{updated} out of {wanted} new replicas have been updated"
        ));
    }
    if total > updated {
        return RolloutState::Waiting(format!(
            "{} old replicas are pending termination",
            total - updated
        ));
    }
    if available < updated {
        return RolloutState::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    RolloutState::Done
}

/// Reasons that will not fix themselves within a rollout.
const FATAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The first fatal container state among pods running `image` (pods of older versions are not
/// this deployment's problem).
pub fn pod_failure(pods: &[Pod], image: &str) -> Option<String> {
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let runs_image = pod.spec.as_ref().is_some_and(|s| {
            s.containers
                .iter()
                .any(|c| c.image.as_deref() == Some(image))
        });
        if !runs_image {
            continue;
        }
        let Some(status) = pod.status.as_ref() else {
            continue;
        };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in all {
            let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = w.reason.as_deref().unwrap_or_default();
            if FATAL_WAITING.contains(&reason) {
                return Some(format!(
                    "pod {name} container {}: {reason}{}",
                    cs.name,
                    w.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(v: Value) -> Deployment {
        serde_json::from_value(v).expect("deployment")
    }

    #[test]
    fn rollout_status_like_kubectl() {
        let base = |status: Value| {
            dep(
                json!({"metadata": {"name": "d", "generation": 2}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {}}, "status": status}),
            )
        };
        // The previous rollout's completion does not count: generation not yet observed.
        assert!(
            matches!(rollout_state(&base(json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}))), RolloutState::Waiting(m) if m.contains("observed"))
        );
        assert!(
            matches!(rollout_state(&base(json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2}))), RolloutState::Waiting(m) if m.contains("1 out of 2"))
        );
        assert!(
            matches!(rollout_state(&base(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}))), RolloutState::Waiting(m) if m.contains("pending termination"))
        );
        assert!(
            matches!(rollout_state(&base(json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}))), RolloutState::Waiting(m) if m.contains("available"))
        );
        assert_eq!(
            rollout_state(&base(
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
            )),
            RolloutState::Done
        );
        let stuck = base(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"d-1\" has timed out progressing."}]}),
        );
        assert!(
            matches!(rollout_state(&stuck), RolloutState::Failed(m) if m.contains("ProgressDeadlineExceeded") && m.contains("timed out"))
        );
    }

    #[test]
    fn fatal_pod_states_of_the_new_image_only() {
        let pod = |image: &str, reason: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]},
                "status": {"containerStatuses": [{"name": "c", "image": image, "imageID": "", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": reason, "message": "back-off pulling image"}}}]}}))
            .expect("pod")
        };
        assert!(
            pod_failure(&[pod("img:v2", "ImagePullBackOff")], "img:v2")
                .is_some_and(|m| m.contains("ImagePullBackOff") && m.contains("back-off"))
        );
        assert!(
            pod_failure(&[pod("img:v2", "CrashLoopBackOff")], "img:v2")
                .is_some_and(|m| m.contains("CrashLoopBackOff"))
        );
        assert!(
            pod_failure(&[pod("img:v1", "CrashLoopBackOff")], "img:v2").is_none(),
            "old version's pods are ignored"
        );
        assert!(pod_failure(&[pod("img:v2", "ContainerCreating")], "img:v2").is_none());
    }

    #[test]
    fn undo_restores_the_previous_revision_with_another_template() {
        let tpl = |image: &str, hash: &str| {
            json!({"metadata": {"labels": {"app": "d", "pod-template-hash": hash}},
                "spec": {"containers": [{"name": "d", "image": image}]}})
        };
        let rs = |name: &str, rev: u32, image: &str, owner: &str| -> ReplicaSet {
            serde_json::from_value(json!({"metadata": {"name": name,
                "annotations": {REVISION: rev.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": "u1"}]},
                "spec": {"selector": {}, "template": tpl(image, name)}}))
            .expect("rs")
        };
        let d = dep(
            json!({"metadata": {"name": "d", "uid": "u1", "annotations": {REVISION: "3"}},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "d", "image": "img:v3"}]}}}}),
        );
        let sets = [
            rs("d-1", 1, "img:v1", "d"),
            rs("d-2", 2, "img:v2", "d"),
            rs("d-3", 3, "img:v3", "d"),
            rs("other-9", 2, "img:x", "other"),
        ];
        let (rev, t) = previous_template(&d, &sets).expect("previous");
        assert_eq!(rev, 2);
        assert_eq!(template_image(Some(&t), "d").as_deref(), Some("img:v2"));
        assert!(
            !t.metadata
                .and_then(|m| m.labels)
                .is_some_and(|l| l.contains_key("pod-template-hash")),
            "the hash label is the ReplicaSet's, not the template's"
        );
        // Revision 2 has the current template (a redeploy of the same image): go to 1.
        let same = [
            rs("d-1", 1, "img:v1", "d"),
            rs("d-2", 2, "img:v3", "d"),
            rs("d-3", 3, "img:v3", "d"),
        ];
        assert_eq!(previous_template(&d, &same).map(|(r, _)| r), Ok(1));
        assert!(
            previous_template(&d, &[rs("d-3", 3, "img:v3", "d")])
                .is_err_and(|e| e.contains("only one"))
        );
        let mut fresh = d.clone();
        fresh.metadata.annotations = None;
        assert!(previous_template(&fresh, &[]).is_err_and(|e| e.contains("no rollout history")));
    }

    #[test]
    fn only_known_kinds_are_applied() {
        let (ar, ns) =
            api_resource(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})).expect("known");
        assert_eq!(
            (ar.plural.as_str(), ar.group.as_str(), ns),
            ("deployments", "apps", true)
        );
        let (ar, _) = api_resource(&json!({"apiVersion": "v1", "kind": "Service"})).expect("known");
        assert_eq!(
            (ar.plural.as_str(), ar.group.as_str(), ar.version.as_str()),
            ("services", "", "v1")
        );
        assert!(
            api_resource(
                &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding"})
            )
            .is_err()
        );
    }
}
