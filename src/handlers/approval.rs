//! The `approval` task, with exactly the semantics of Keptn's approval-service (§5):
//! automatic approvals finish at once, `fail` finishes with `fail`, everything else waits for
//! a person (the HTTP API or Keptn's Bridge sends the `approval.finished`). The rules
//! themselves are pure, in [`crate::approval`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildFuture, TaskContext, TaskHandler, TaskOutcome, TaskRequest, TaskSpec};
use crate::approval::{ApprovalDecision, decide};
use crate::keptn::payload::ApprovalTriggered;
use crate::keptn::{Finished, StatusType, TriggeredEvent};

/// `approval`: no settings; an `approval.finished` sent by someone else (Keptn's Bridge)
/// settles a pending one.
pub const TASK: TaskSpec = TaskSpec {
    name: crate::approval::TASK,
    section: None,
    build,
    settled_by_others: true,
};

fn build(_ctx: &TaskContext) -> BuildFuture<'_> {
    Box::pin(async { Ok(Arc::new(ApprovalHandler) as Arc<dyn TaskHandler>) })
}

/// The native approval handler.
#[derive(Debug, Default)]
pub struct ApprovalHandler;

impl ApprovalHandler {
    fn decision(event: &TriggeredEvent) -> Result<ApprovalDecision, String> {
        event.payload::<ApprovalTriggered>().map(|d| decide(&d))
    }
}

#[async_trait]
impl TaskHandler for ApprovalHandler {
    fn task(&self) -> &'static str {
        TASK.name
    }

    fn started_message(&self, event: &TriggeredEvent) -> Option<String> {
        Self::decision(event).ok().map(|d| d.started_message())
    }

    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome> {
        let d = Self::decision(&req.event).map_err(anyhow::Error::msg)?;
        Ok(match d.finish_with {
            Some(result) => TaskOutcome::Finished(Finished::new(StatusType::Succeeded, result, "")),
            None => TaskOutcome::Pending {
                reason: d.started_message(),
            },
        })
    }
}
