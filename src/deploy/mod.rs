//! Deployment backends: how the `deployment` task puts an image into a stage.
//!
//! One trait, [`DeployBackend`] (deploy, and roll back to what ran before), three
//! implementations chosen per project/stage by
//! [`DeployConfig`]: [`process`] (a local child process; the default), [`helm`]
//! (`helm upgrade --install` of the chart stored as a Keptn resource) and [`kubernetes`]
//! (server-side apply with the `kube` crate, rollout wait like `kubectl rollout status`).
//! A backend that is configured but not built is reported clearly. The pure parts
//! (templates, image validation, backend selection, Service-port lookup in manifests) live here
//! and in [`manifest`], with unit tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub mod helm;
pub mod kubernetes;
pub mod manifest;
pub mod process;

/// What to deploy, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    pub project: String,
    pub stage: String,
    pub service: String,
    /// The full image reference, e.g. `ghcr.io/podtato-head/podtatoserver:v0.1.1`.
    pub image: String,
    /// `deploymentstrategy` from the event (`direct` when absent).
    pub strategy: String,
    /// The Keptn config-repo commit of the triggered event, for resource reads.
    pub git_commit_id: Option<String>,
}

impl DeployRequest {
    /// Checks everything an event put into the request before any backend uses it.
    pub fn validate(&self) -> Result<(), DeployError> {
        validate_image(&self.image)?;
        validate_name("project", &self.project)?;
        validate_name("stage", &self.stage)?;
        validate_name("service", &self.service)
    }

    /// The tag of the image (`latest` when there is none; the digest when given `@sha256:...`).
    pub fn tag(&self) -> &str {
        image_tag(&self.image)
    }
}

/// What to roll back: the service of a project and stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRequest {
    pub project: String,
    pub stage: String,
    pub service: String,
    /// The strategy reported in `data.deployment` (`direct` when the event has none).
    pub strategy: String,
    /// The Keptn config-repo commit of the triggered event, for resource reads.
    pub git_commit_id: Option<String>,
}

impl RollbackRequest {
    pub fn validate(&self) -> Result<(), DeployError> {
        validate_name("project", &self.project)?;
        validate_name("stage", &self.stage)?;
        validate_name("service", &self.service)
    }

    /// The variables of the templates (no image: that is what the backend finds out).
    pub fn vars(&self) -> Vars<'_> {
        HashMap::from([
            ("project", self.project.as_str()),
            ("stage", self.stage.as_str()),
            ("service", self.service.as_str()),
        ])
    }

    /// `<project>/<stage>/<service>`, for messages.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}", self.project, self.stage, self.service)
    }
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackResult {
    /// The image that runs now.
    pub image: String,
    /// The image that was rolled back, when the backend knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// Where the restored version answers, as `data.deployment`.
    #[serde(skip)]
    pub deployment: DeployResult,
}

impl RollbackResult {
    /// The result of a rollback done in a cluster: `what` was rolled back (e.g. "release x in
    /// ns to revision 2"), `image` runs now, reachable at `uris_local`.
    pub fn in_cluster(
        req: &RollbackRequest,
        what: &str,
        image: String,
        replaced: Option<String>,
        uris_local: Vec<String>,
    ) -> RollbackResult {
        let message = format!(
            "Rolled back {what}: {image} runs{}{}",
            replaced
                .as_ref()
                .map(|r| format!(" instead of {r}"))
                .unwrap_or_default(),
            uris_local
                .first()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        );
        RollbackResult {
            image,
            replaced,
            deployment: DeployResult {
                strategy: req.strategy.clone(),
                uris_public: Vec::new(),
                uris_local,
                names: vec![req.strategy.clone()],
                message,
            },
        }
    }
}

/// `data.deployment` of `deployment.finished` (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployResult {
    #[serde(rename = "deploymentstrategy")]
    pub strategy: String,
    #[serde(rename = "deploymentURIsLocal")]
    pub uris_local: Vec<String>,
    #[serde(rename = "deploymentURIsPublic")]
    pub uris_public: Vec<String>,
    #[serde(rename = "deploymentNames")]
    pub names: Vec<String>,
    /// A human sentence for the `.finished` message.
    #[serde(skip)]
    pub message: String,
}

/// Why a deployment did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("invalid deployment request: {0}")]
    Invalid(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Failed(String),
    #[error("deployment did not become ready within {0:?}: {1}")]
    Timeout(Duration, String),
    #[error("deployment cancelled (service shutting down)")]
    Cancelled,
    #[error("nothing to roll back to: {0}")]
    NothingToRollBack(String),
}

/// A way to deploy a service.
#[async_trait]
pub trait DeployBackend: Send + Sync + 'static {
    /// The backend's name as used in configuration (`process`, `helm`, `kubernetes`).
    fn name(&self) -> &'static str;

    /// Deploys, waits until the new version is ready, and says where it answers.
    async fn deploy(
        &self,
        req: &DeployRequest,
        cancel: &CancellationToken,
    ) -> Result<DeployResult, DeployError>;

    /// Puts back the version that ran before the current one (the `rollback` task), waits
    /// until it is ready, and says what runs now and where it answers.
    async fn rollback(
        &self,
        req: &RollbackRequest,
        _cancel: &CancellationToken,
    ) -> Result<RollbackResult, DeployError> {
        Err(DeployError::Config(format!(
            "the {} backend cannot roll back {}",
            self.name(),
            req.scope()
        )))
    }

    /// Stops what the backend itself keeps running (the process backend's children) when the
    /// service shuts down. Backends that hand their work to a cluster have nothing to stop.
    async fn shutdown(&self) {}
}

/// Serve-time settings of the deployment task.
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Backend used when no `--deploy-backend-for` rule matches: `process`, `helm` or
    /// `kubernetes`. Env `KEPTN_NATIVE_DEPLOY_BACKEND`. Default `process`.
    #[arg(long = "deploy-backend", env = "KEPTN_NATIVE_DEPLOY_BACKEND")]
    pub backend: Option<String>,

    /// Per project/stage backends, comma separated `project/stage=backend` rules; `*` matches
    /// any project or stage, the first matching rule wins. Env
    /// `KEPTN_NATIVE_DEPLOY_BACKEND_FOR`. Default: none.
    #[arg(
        long = "deploy-backend-for",
        env = "KEPTN_NATIVE_DEPLOY_BACKEND_FOR",
        value_delimiter = ','
    )]
    pub backend_for: Vec<String>,

    /// Process backend: command template, split on whitespace (no shell), with `{exe}` (this
    /// binary), `{image}`, `{tag}`, `{port}`, `{project}`, `{stage}`, `{service}`. Env
    /// `KEPTN_NATIVE_PROCESS_COMMAND`. Default
    /// `{exe} sample-service --port {port} --version {tag} --stage {stage} --image {image}`.
    #[arg(long = "process-command", env = "KEPTN_NATIVE_PROCESS_COMMAND")]
    pub process_command: Option<String>,

    /// Process backend: directory for Prometheus file_sd target files
    /// (`<service>-<project>-<stage>.json`). Env `KEPTN_NATIVE_PROCESS_SD_DIR`. Default: none
    /// (no target files written).
    #[arg(long = "process-sd-dir", env = "KEPTN_NATIVE_PROCESS_SD_DIR")]
    pub process_sd_dir: Option<std::path::PathBuf>,

    /// Process backend: seconds to wait for the new process to answer HTTP. Env
    /// `KEPTN_NATIVE_PROCESS_READY_TIMEOUT`. Default 30.
    #[arg(
        long = "process-ready-timeout",
        env = "KEPTN_NATIVE_PROCESS_READY_TIMEOUT"
    )]
    pub process_ready_timeout_secs: Option<u64>,

    /// Helm backend: the helm executable. Env `KEPTN_NATIVE_HELM_BIN`. Default `helm`.
    #[arg(long = "helm-bin", env = "KEPTN_NATIVE_HELM_BIN")]
    pub helm_bin: Option<String>,

    /// Helm backend: release name template (`{project}`, `{stage}`, `{service}`). Env
    /// `KEPTN_NATIVE_HELM_RELEASE`. Default `{service}` (as the tutorial's job config).
    #[arg(long = "helm-release", env = "KEPTN_NATIVE_HELM_RELEASE")]
    pub helm_release: Option<String>,

    /// Helm and kubernetes backends: namespace template. Env `KEPTN_NATIVE_DEPLOY_NAMESPACE`.
    /// Default `{project}-{stage}`.
    #[arg(long = "deploy-namespace", env = "KEPTN_NATIVE_DEPLOY_NAMESPACE")]
    pub namespace: Option<String>,

    /// Helm and kubernetes backends: create the target namespace when it is missing (helm
    /// `--create-namespace`; the kubernetes backend applies a Namespace). Set it to false when
    /// the namespaces are made by the platform team, so the service needs no cluster-wide
    /// permission on Namespaces. Env `KEPTN_NATIVE_DEPLOY_CREATE_NAMESPACE`. Default true.
    #[arg(
        long = "deploy-create-namespace",
        env = "KEPTN_NATIVE_DEPLOY_CREATE_NAMESPACE"
    )]
    pub create_namespace: Option<bool>,

    /// Helm backend: seconds given to `helm upgrade --wait --timeout`. Env
    /// `KEPTN_NATIVE_HELM_TIMEOUT`. Default 300.
    #[arg(long = "helm-timeout", env = "KEPTN_NATIVE_HELM_TIMEOUT")]
    pub helm_timeout_secs: Option<u64>,

    /// Kubernetes backend: the Keptn resource (service level) holding the service's manifests,
    /// multi-document YAML in which `${IMAGE}` is replaced by the image; `{service}` is
    /// substituted in the name. When absent, the image of the existing Deployment `<service>`
    /// is updated. Env `KEPTN_NATIVE_KUBE_MANIFEST`. Default `kubernetes/{service}.yaml`.
    #[arg(long = "kube-manifest", env = "KEPTN_NATIVE_KUBE_MANIFEST")]
    pub kube_manifest: Option<String>,

    /// Kubernetes backend: seconds to wait for the rollout (like `kubectl rollout status
    /// --timeout`). Env `KEPTN_NATIVE_KUBE_ROLLOUT_TIMEOUT`. Default 300.
    #[arg(
        long = "kube-rollout-timeout",
        env = "KEPTN_NATIVE_KUBE_ROLLOUT_TIMEOUT"
    )]
    pub kube_rollout_timeout_secs: Option<u64>,
}

pub const DEFAULT_PROCESS_COMMAND: &str =
    "{exe} sample-service --port {port} --version {tag} --stage {stage} --image {image}";
const BACKENDS: [&str; 3] = ["process", "helm", "kubernetes"];

impl DeployConfig {
    pub fn default_backend(&self) -> &str {
        self.backend.as_deref().unwrap_or("process")
    }
    pub fn process_command(&self) -> &str {
        self.process_command
            .as_deref()
            .unwrap_or(DEFAULT_PROCESS_COMMAND)
    }
    pub fn process_ready_timeout(&self) -> Duration {
        Duration::from_secs(self.process_ready_timeout_secs.unwrap_or(30))
    }
    pub fn helm_bin(&self) -> &str {
        self.helm_bin.as_deref().unwrap_or("helm")
    }
    pub fn helm_release(&self) -> &str {
        self.helm_release.as_deref().unwrap_or("{service}")
    }
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("{project}-{stage}")
    }
    pub fn create_namespace(&self) -> bool {
        self.create_namespace.unwrap_or(true)
    }
    pub fn helm_timeout(&self) -> Duration {
        Duration::from_secs(self.helm_timeout_secs.unwrap_or(300))
    }
    pub fn kube_manifest(&self) -> &str {
        self.kube_manifest
            .as_deref()
            .unwrap_or("kubernetes/{service}.yaml")
    }
    pub fn kube_rollout_timeout(&self) -> Duration {
        Duration::from_secs(self.kube_rollout_timeout_secs.unwrap_or(300))
    }

    /// Every problem in the configuration.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !BACKENDS.contains(&self.default_backend()) {
            problems.push(format!(
                "deploy-backend: unknown backend {:?} (expected one of {})",
                self.default_backend(),
                BACKENDS.join(", ")
            ));
        }
        for rule in &self.backend_for {
            if let Err(e) = BackendRule::parse(rule) {
                problems.push(format!("deploy-backend-for: {e}"));
            }
        }
        let cmd = self.process_command();
        if cmd.split_whitespace().next().is_none() {
            problems.push("process-command: empty".into());
        }
        if !cmd.contains("{port}") {
            problems.push("process-command: must contain {port}".into());
        }
        for (what, t) in [
            ("process-command", cmd),
            ("helm-release", self.helm_release()),
            ("deploy-namespace", self.namespace()),
            ("kube-manifest", self.kube_manifest()),
        ] {
            if let Err(e) = check_template(t) {
                problems.push(format!("{what}: {e}"));
            }
        }
        if self.process_ready_timeout_secs == Some(0) {
            problems.push("process-ready-timeout: must be > 0".into());
        }
        if self.kube_rollout_timeout_secs == Some(0) {
            problems.push("kube-rollout-timeout: must be > 0".into());
        }
        if self.helm_timeout_secs == Some(0) {
            problems.push("helm-timeout: must be > 0".into());
        }
        problems
    }

    /// Whether any project/stage can select `backend` (e.g. to build a Kubernetes client only
    /// when it is needed).
    pub fn uses_backend(&self, backend: &str) -> bool {
        self.default_backend() == backend
            || self
                .backend_for
                .iter()
                .filter_map(|r| BackendRule::parse(r).ok())
                .any(|r| r.backend == backend)
    }

    /// The backend name for a project and stage.
    pub fn backend_for(&self, project: &str, stage: &str) -> String {
        self.backend_for
            .iter()
            .filter_map(|r| BackendRule::parse(r).ok())
            .find(|r| r.matches(project, stage))
            .map(|r| r.backend)
            .unwrap_or_else(|| self.default_backend().to_string())
    }
}

/// One `project/stage=backend` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BackendRule {
    project: String,
    stage: String,
    backend: String,
}

impl BackendRule {
    fn parse(s: &str) -> Result<BackendRule, String> {
        let (scope, backend) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected project/stage=backend"))?;
        let (project, stage) = scope
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected project/stage=backend"))?;
        let backend = backend.trim();
        if !BACKENDS.contains(&backend) {
            return Err(format!("{s:?}: unknown backend {backend:?}"));
        }
        if project.trim().is_empty() || stage.trim().is_empty() {
            return Err(format!("{s:?}: empty project or stage (use *)"));
        }
        Ok(BackendRule {
            project: project.trim().into(),
            stage: stage.trim().into(),
            backend: backend.into(),
        })
    }
    fn matches(&self, project: &str, stage: &str) -> bool {
        (self.project == "*" || self.project == project)
            && (self.stage == "*" || self.stage == stage)
    }
}

/// The variables of a template.
pub type Vars<'a> = HashMap<&'static str, &'a str>;

/// The variables every template sees for a request.
pub fn request_vars(req: &DeployRequest) -> Vars<'_> {
    HashMap::from([
        ("project", req.project.as_str()),
        ("stage", req.stage.as_str()),
        ("service", req.service.as_str()),
        ("image", req.image.as_str()),
        ("tag", req.tag()),
    ])
}

const KNOWN_VARS: [&str; 7] = ["exe", "image", "tag", "port", "project", "stage", "service"];

fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in {t:?}"))?;
        let name = &after[..end];
        if !KNOWN_VARS.contains(&name) {
            return Err(format!(
                "unknown variable {{{name}}} (known: {})",
                KNOWN_VARS.join(", ")
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Replaces `{name}` by its value; unknown names are left as they are.
pub fn render(template: &str, vars: &Vars<'_>) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// The tag of an image reference: after the last `:` of the last path segment, `latest` when none.
pub fn image_tag(image: &str) -> &str {
    if let Some((_, digest)) = image.split_once('@') {
        return digest;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t).unwrap_or("latest")
}

/// An image reference comes from an event: only the characters of a Docker reference are
/// allowed, so that it can be passed as an argument or substituted into a manifest safely.
pub fn validate_image(image: &str) -> Result<(), DeployError> {
    if image.is_empty() {
        return Err(DeployError::Invalid("image is empty".into()));
    }
    if image.len() > 512 {
        return Err(DeployError::Invalid(
            "image reference longer than 512".into(),
        ));
    }
    if image.starts_with('-') {
        return Err(DeployError::Invalid(format!(
            "image {image:?} must not start with `-`"
        )));
    }
    if let Some(c) = image
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/:@".contains(*c)))
    {
        return Err(DeployError::Invalid(format!(
            "image {image:?} contains {c:?}; allowed: letters, digits, `._-/:@`"
        )));
    }
    Ok(())
}

/// Project/stage/service become file names, namespaces and release names: Keptn's own rule
/// (lowercase letters, digits, `-`) is enforced here too.
pub fn validate_name(what: &str, name: &str) -> Result<(), DeployError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(DeployError::Invalid(format!(
            "{what} {name:?} is not a valid Keptn name (lowercase letters, digits, `-`)"
        )))
    }
}

/// The backends, by name, and the rules to choose between them.
#[derive(Clone)]
pub struct Backends {
    config: DeployConfig,
    by_name: HashMap<&'static str, Arc<dyn DeployBackend>>,
    /// Backends that could not be built, with the reason (reported per deployment).
    unavailable: HashMap<&'static str, String>,
}

impl Backends {
    pub fn new(config: DeployConfig) -> Self {
        Backends {
            config,
            by_name: HashMap::new(),
            unavailable: HashMap::new(),
        }
    }

    /// Every backend the configuration can select; a Kubernetes client only when a
    /// project/stage uses the kubernetes backend. Without cluster credentials (e.g. no role
    /// bound, so no token mounted) the service still starts, and each kubernetes deployment
    /// reports why it cannot run.
    pub async fn build(
        config: &DeployConfig,
        http: &reqwest::Client,
        resources: &Arc<dyn crate::resources::ResourceStore>,
    ) -> anyhow::Result<Backends> {
        let mut backends = Backends::new(config.clone())
            .with(Arc::new(process::ProcessBackend::new(config, http.clone())))
            .with(Arc::new(helm::HelmBackend::new(
                config,
                Arc::clone(resources),
            )));
        if config.uses_backend("kubernetes") {
            match kube::Client::try_default().await {
                Ok(kube) => {
                    backends = backends.with(Arc::new(kubernetes::KubernetesBackend::new(
                        config,
                        kube,
                        Arc::clone(resources),
                    )));
                }
                Err(e) => {
                    let why = format!(
                        "no Kubernetes client (in-cluster service account token or kubeconfig): {e}"
                    );
                    tracing::warn!(reason = %why, "kubernetes deployment backend unavailable");
                    backends = backends.without("kubernetes", why);
                }
            }
        }
        Ok(backends)
    }

    pub fn with(mut self, backend: Arc<dyn DeployBackend>) -> Self {
        self.by_name.insert(backend.name(), backend);
        self
    }

    /// Records why a configured backend could not be built (e.g. no cluster credentials), so
    /// that the service still runs its other tasks and each deployment says why it failed.
    pub fn without(mut self, name: &'static str, reason: impl Into<String>) -> Self {
        self.unavailable.insert(name, reason.into());
        self
    }

    /// Stops what the backends keep running.
    pub async fn shutdown(&self) {
        for b in self.by_name.values() {
            b.shutdown().await;
        }
    }

    /// The backend configured for this project/stage.
    pub fn select(
        &self,
        project: &str,
        stage: &str,
    ) -> Result<Arc<dyn DeployBackend>, DeployError> {
        let name = self.config.backend_for(project, stage);
        self.by_name.get(name.as_str()).cloned().ok_or_else(|| {
            if let Some(why) = self.unavailable.get(name.as_str()) {
                return DeployError::Config(format!(
                    "backend {name:?} is configured for {project}/{stage} but not available: {why}"
                ));
            }
            let mut have: Vec<&str> = self.by_name.keys().copied().collect();
            have.sort();
            DeployError::Config(format!(
                "backend {name:?} is configured for {project}/{stage} but not available (available: {})",
                if have.is_empty() { "none".into() } else { have.join(", ") }
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_image_references() {
        assert_eq!(
            image_tag("ghcr.io/podtato-head/podtatoserver:v0.1.2"),
            "v0.1.2"
        );
        assert_eq!(image_tag("localhost:5000/app"), "latest");
        assert_eq!(image_tag("app@sha256:abc"), "sha256:abc");
        assert_eq!(image_tag("app"), "latest");
    }

    #[test]
    fn images_with_shell_or_yaml_characters_are_rejected() {
        assert!(validate_image("ghcr.io/podtato-head/podtatoserver:v0.1.1").is_ok());
        for bad in [
            "",
            "a b",
            "x;rm -rf /",
            "--set=foo",
            "img\n",
            "a$(b)",
            "a{b}",
        ] {
            assert!(validate_image(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backend_rules_first_match_wins_with_wildcards() {
        let c = DeployConfig {
            backend: Some("helm".into()),
            backend_for: vec!["shop/production=kubernetes".into(), "*/qa=process".into()],
            ..Default::default()
        };
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.backend_for("shop", "production"), "kubernetes");
        assert_eq!(c.backend_for("other", "qa"), "process");
        assert_eq!(c.backend_for("other", "production"), "helm");
        assert_eq!(DeployConfig::default().backend_for("a", "b"), "process");
        assert!(
            c.uses_backend("kubernetes") && c.uses_backend("helm") && c.uses_backend("process")
        );
        assert!(!DeployConfig::default().uses_backend("kubernetes"));
    }

    #[test]
    fn validate_reports_every_problem() {
        let c = DeployConfig {
            backend: Some("docker".into()),
            backend_for: vec!["nope".into(), "a/b=ftp".into()],
            process_command: Some("run {imag}".into()),
            helm_timeout_secs: Some(0),
            ..Default::default()
        };
        let p = c.validate();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p.iter().any(|m| m.contains("docker")));
        assert!(p.iter().any(|m| m.contains("{imag}")));
        assert!(p.iter().any(|m| m.contains("{port}")));
    }

    #[test]
    fn render_substitutes_known_variables() {
        let req = DeployRequest {
            project: "fulltour".into(),
            stage: "qa".into(),
            service: "helloservice".into(),
            image: "img:v1".into(),
            strategy: "direct".into(),
            git_commit_id: None,
        };
        let vars = request_vars(&req);
        assert_eq!(
            render("{project}-{stage}/{service}:{tag}", &vars),
            "fulltour-qa/helloservice:v1"
        );
    }

    #[test]
    fn names_must_be_keptn_names() {
        assert!(validate_name("stage", "qa-1").is_ok());
        for bad in ["", "../x", "QA", "a b", "-a"] {
            assert!(validate_name("stage", bad).is_err(), "{bad:?}");
        }
    }
}
