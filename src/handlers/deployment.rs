//! The `deployment` task (and aliases such as `je-deployment`): deploys
//! `data.configurationChange.values.image` with the backend configured for the project/stage
//! and reports `data.deployment` (§2.3) the way helm-service did.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;

use super::{BuildFuture, TaskContext, TaskHandler, TaskOutcome, TaskRequest, TaskSpec};
use crate::deploy::{Backends, DeployError, DeployRequest};
use crate::keptn::payload::DeploymentTriggered;
use crate::keptn::{Finished, TriggeredEvent};

/// `deployment`: settings in the `deploy` section; the backends are shared with the tasks
/// that act on what was deployed.
pub const TASK: TaskSpec = TaskSpec {
    name: "deployment",
    section: Some("deploy"),
    build,
    settled_by_others: false,
};

fn build(ctx: &TaskContext) -> BuildFuture<'_> {
    Box::pin(async {
        let backends = ctx.backends().await?;
        Ok(Arc::new(DeploymentHandler::shared(backends)) as Arc<dyn TaskHandler>)
    })
}

/// The native deployment handler.
pub struct DeploymentHandler {
    backends: Arc<Backends>,
}

impl DeploymentHandler {
    /// `backends` are already built (see [`crate::deploy`]).
    pub fn new(backends: Backends) -> Self {
        Self::shared(Arc::new(backends))
    }

    /// A handler on backends that other tasks use too.
    pub fn shared(backends: Arc<Backends>) -> Self {
        DeploymentHandler { backends }
    }
}

/// Decodes the request (pure). The strategy comes from `data.deployment.deploymentstrategy`,
/// else from the shipyard properties under `data.<task>` (e.g. `data.je-deployment`), else
/// `direct`.
pub fn request_of(event: &TriggeredEvent) -> Result<DeployRequest, String> {
    let data: DeploymentTriggered = event
        .payload()
        .map_err(|e| format!("invalid deployment.triggered data: {e}"))?;
    let image = data
        .image()
        .filter(|i| !i.is_empty())
        .ok_or(
            "no image to deploy: data.configurationChange.values.image is missing or not a string",
        )?
        .to_string();
    let from_props = event
        .data
        .get(&event.task)
        .and_then(|p| p.get("deploymentstrategy"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let strategy = [data.deployment.strategy.as_str(), from_props]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("direct")
        .to_string();
    for (what, v) in [
        ("project", &data.common.project),
        ("stage", &data.common.stage),
        ("service", &data.common.service),
    ] {
        if v.is_empty() {
            return Err(format!("data.{what} is missing"));
        }
    }
    Ok(DeployRequest {
        project: data.common.project,
        stage: data.common.stage,
        service: data.common.service,
        image,
        strategy,
        git_commit_id: event.git_commit_id.clone(),
    })
}

#[async_trait]
impl TaskHandler for DeploymentHandler {
    fn task(&self) -> &'static str {
        TASK.name
    }

    fn started_message(&self, event: &TriggeredEvent) -> Option<String> {
        let req = request_of(event).ok()?;
        Some(format!("Deploying {}", req.image))
    }

    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome> {
        let dreq = match request_of(&req.event) {
            Ok(r) => r,
            Err(msg) => return Ok(TaskOutcome::Finished(Finished::errored(msg))),
        };
        let backend = match self.backends.select(&dreq.project, &dreq.stage) {
            Ok(b) => b,
            Err(e) => return Ok(TaskOutcome::Finished(Finished::errored(e.to_string()))),
        };
        tracing::info!(backend = backend.name(), image = %dreq.image, "deploying");
        match backend.deploy(&dreq, &req.cancel).await {
            Ok(result) => {
                let deployment =
                    serde_json::to_value(&result).context("encoding data.deployment")?;
                Ok(TaskOutcome::Finished(
                    Finished::pass(result.message.clone()).with("deployment", deployment),
                ))
            }
            Err(e @ DeployError::Cancelled) => Ok(TaskOutcome::Finished(Finished::errored(
                format!("{} backend: {e}", backend.name()),
            ))),
            Err(e) => Ok(TaskOutcome::Finished(Finished::errored(format!(
                "{} backend could not deploy {}: {e}",
                backend.name(),
                dreq.image
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;

    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::deploy::{DeployBackend, DeployConfig, DeployResult};
    use crate::keptn::{ResultType, StatusType};

    fn event(task: &str, data: Value) -> TriggeredEvent {
        TriggeredEvent {
            id: "t1".into(),
            ty: format!("sh.keptn.event.{task}.triggered"),
            task: task.into(),
            keptn_context: "ctx".into(),
            git_commit_id: Some("abc".into()),
            source: "test".into(),
            time: None,
            data,
        }
    }

    /// Records requests; fails when the image ends in `:bad`.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<DeployRequest>>);

    #[async_trait]
    impl DeployBackend for Recorder {
        fn name(&self) -> &'static str {
            "process"
        }
        async fn deploy(
            &self,
            req: &DeployRequest,
            _c: &CancellationToken,
        ) -> Result<DeployResult, DeployError> {
            self.0.lock().expect("lock").push(req.clone());
            if req.image.ends_with(":bad") {
                return Err(DeployError::Failed("boom".into()));
            }
            Ok(DeployResult {
                strategy: req.strategy.clone(),
                uris_local: vec!["http://127.0.0.1:1".into()],
                uris_public: vec![],
                names: vec!["direct".into()],
                message: "ok".into(),
            })
        }
    }

    fn data(image: Option<&str>) -> Value {
        let mut d = json!({"project": "p", "stage": "qa", "service": "s",
            "je-deployment": {"deploymentstrategy": "user_managed"}});
        if let Some(i) = image {
            d["configurationChange"] = json!({"values": {"image": i}});
        }
        d
    }

    async fn run(handler: &DeploymentHandler, ev: TriggeredEvent) -> Finished {
        let out = handler
            .handle(TaskRequest {
                event: ev,
                cancel: CancellationToken::new(),
            })
            .await
            .expect("handle");
        match out {
            TaskOutcome::Finished(f) => f,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn deploys_and_reports_data_deployment() {
        let rec = Arc::new(Recorder::default());
        let h = DeploymentHandler::new(Backends::new(DeployConfig::default()).with(rec.clone()));
        let f = run(&h, event("je-deployment", data(Some("img:v1")))).await;
        assert_eq!(f.result, ResultType::Pass);
        assert_eq!(
            f.extra["deployment"]["deploymentURIsLocal"][0],
            "http://127.0.0.1:1"
        );
        assert_eq!(f.extra["deployment"]["deploymentNames"][0], "direct");
        let seen = rec.0.lock().expect("lock").clone();
        assert_eq!(seen[0].image, "img:v1");
        assert_eq!(
            seen[0].strategy, "user_managed",
            "strategy from shipyard properties"
        );
        assert_eq!(seen[0].git_commit_id.as_deref(), Some("abc"));
    }

    #[tokio::test]
    async fn missing_image_unknown_backend_and_failure_are_errored_with_reasons() {
        let rec = Arc::new(Recorder::default());
        let h = DeploymentHandler::new(Backends::new(DeployConfig::default()).with(rec.clone()));
        let f = run(&h, event("deployment", data(None))).await;
        assert_eq!(
            (f.status, f.result),
            (StatusType::Errored, ResultType::Fail)
        );
        assert!(
            f.message.contains("configurationChange.values.image"),
            "{}",
            f.message
        );

        let f = run(&h, event("deployment", data(Some("img:bad")))).await;
        assert_eq!(f.status, StatusType::Errored);
        assert!(
            f.message.contains("boom") && f.message.contains("img:bad"),
            "{}",
            f.message
        );

        let cfg = DeployConfig {
            backend: Some("helm".into()),
            ..Default::default()
        };
        let h = DeploymentHandler::new(Backends::new(cfg).with(rec));
        let f = run(&h, event("deployment", data(Some("img:v1")))).await;
        assert_eq!(f.status, StatusType::Errored);
        assert!(
            f.message.contains("\"helm\"") && f.message.contains("not available"),
            "{}",
            f.message
        );

        let cfg = DeployConfig {
            backend: Some("kubernetes".into()),
            ..Default::default()
        };
        let h = DeploymentHandler::new(
            Backends::new(cfg).without("kubernetes", "no service account token mounted"),
        );
        let f = run(&h, event("deployment", data(Some("img:v1")))).await;
        assert_eq!(f.status, StatusType::Errored);
        assert!(
            f.message.contains("\"kubernetes\"")
                && f.message.contains("no service account token mounted"),
            "{}",
            f.message
        );
    }
}
