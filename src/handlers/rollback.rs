//! The `rollback` task (and aliases such as `je-rollback`): puts back, with the backend
//! configured for the project/stage, the version that ran before the failed one, and reports
//! what runs now: `data.rollback.image` (and `replaced`), and `data.deployment` with its URIs
//! like `deployment.finished` (§2.3). With nothing to roll back to, it finishes `errored`
//! with the reason.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;

use super::{BuildFuture, TaskContext, TaskHandler, TaskOutcome, TaskRequest, TaskSpec};
use crate::deploy::{Backends, RollbackRequest};
use crate::keptn::payload::DeploymentTriggered;
use crate::keptn::{Finished, TriggeredEvent};

/// `rollback`: settings in the `deploy` section; it shares the backends (and so the process
/// backend's history) with `deployment`.
pub const TASK: TaskSpec = TaskSpec {
    name: "rollback",
    section: Some("deploy"),
    build,
    settled_by_others: false,
};

fn build(ctx: &TaskContext) -> BuildFuture<'_> {
    Box::pin(async {
        let backends = ctx.backends().await?;
        Ok(Arc::new(RollbackHandler { backends }) as Arc<dyn TaskHandler>)
    })
}

/// The native rollback handler.
pub struct RollbackHandler {
    backends: Arc<Backends>,
}

impl RollbackHandler {
    pub fn new(backends: Arc<Backends>) -> Self {
        RollbackHandler { backends }
    }
}

/// Decodes the request (pure): the scope, and the strategy of the deployment being rolled
/// back (`direct` when the event carries none).
pub fn request_of(event: &TriggeredEvent) -> Result<RollbackRequest, String> {
    let data: DeploymentTriggered = event
        .payload()
        .map_err(|e| format!("invalid rollback.triggered data: {e}"))?;
    for (what, v) in [
        ("project", &data.common.project),
        ("stage", &data.common.stage),
        ("service", &data.common.service),
    ] {
        if v.is_empty() {
            return Err(format!("data.{what} is missing"));
        }
    }
    let strategy = match data.deployment.strategy.as_str() {
        "" => "direct".to_string(),
        s => s.to_string(),
    };
    Ok(RollbackRequest {
        project: data.common.project,
        stage: data.common.stage,
        service: data.common.service,
        strategy,
        git_commit_id: event.git_commit_id.clone(),
    })
}

#[async_trait]
impl TaskHandler for RollbackHandler {
    fn task(&self) -> &'static str {
        TASK.name
    }

    fn started_message(&self, event: &TriggeredEvent) -> Option<String> {
        let req = request_of(event).ok()?;
        Some(format!("Rolling back {}", req.scope()))
    }

    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome> {
        let rreq = match request_of(&req.event) {
            Ok(r) => r,
            Err(msg) => return Ok(TaskOutcome::Finished(Finished::errored(msg))),
        };
        let backend = match self.backends.select(&rreq.project, &rreq.stage) {
            Ok(b) => b,
            Err(e) => return Ok(TaskOutcome::Finished(Finished::errored(e.to_string()))),
        };
        tracing::info!(backend = backend.name(), scope = %rreq.scope(), "rolling back");
        match backend.rollback(&rreq, &req.cancel).await {
            Ok(done) => {
                let deployment =
                    serde_json::to_value(&done.deployment).context("encoding data.deployment")?;
                let rollback = serde_json::to_value(&done).context("encoding data.rollback")?;
                Ok(TaskOutcome::Finished(
                    Finished::pass(done.deployment.message.clone())
                        .with("deployment", deployment)
                        .with("rollback", rollback),
                ))
            }
            Err(e) => Ok(TaskOutcome::Finished(Finished::errored(format!(
                "{} backend could not roll back {}: {e}",
                backend.name(),
                rreq.scope()
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(data: serde_json::Value) -> TriggeredEvent {
        TriggeredEvent {
            id: "t1".into(),
            ty: "sh.keptn.event.rollback.triggered".into(),
            task: "rollback".into(),
            keptn_context: "ctx".into(),
            git_commit_id: None,
            source: "test".into(),
            time: None,
            data,
        }
    }

    #[test]
    fn the_request_carries_the_scope_and_the_strategy_of_what_is_rolled_back() {
        let r = request_of(&event(
            json!({"project": "p", "stage": "production", "service": "s",
            "deployment": {"deploymentstrategy": "blue_green_service"}}),
        ))
        .expect("valid");
        assert_eq!(r.scope(), "p/production/s");
        assert_eq!(r.strategy, "blue_green_service");
        let plain = request_of(&event(
            json!({"project": "p", "stage": "qa", "service": "s"}),
        ))
        .expect("valid");
        assert_eq!(plain.strategy, "direct");
        assert!(
            request_of(&event(json!({"project": "p", "service": "s"})))
                .is_err_and(|e| e.contains("data.stage"))
        );
        assert!(request_of(&event(json!({"project": 3}))).is_err());
    }
}
