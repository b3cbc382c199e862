//! Task handlers: one file per task, all implementing [`TaskHandler`], registered in
//! [`Registry::builtin`]-style lists by the app's build step.
//!
//! The dispatcher (`crate::dispatch`) owns the protocol: it sends `.started` before calling a
//! handler and turns whatever the handler returns (an outcome, an error, a panic) into exactly
//! one `.finished`. A handler only decides and does its task.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::keptn::{Finished, TriggeredEvent};

pub mod approval;
pub mod deployment;
pub mod evaluation;
pub mod test;

/// One triggered task handed to a handler.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub event: TriggeredEvent,
    /// Cancelled when the service shuts down: long tasks stop early and still return an outcome.
    pub cancel: CancellationToken,
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// Send this `.finished` now.
    Finished(Finished),
    /// The task waits for something outside (a manual approval); no `.finished` yet.
    Pending { reason: String },
}

/// A native implementation of one Keptn task.
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// The canonical task name (`approval`, `deployment`, `test`, `evaluation`).
    fn task(&self) -> &'static str;

    /// The message of the `.started` event, decided from the payload alone (pure).
    fn started_message(&self, _event: &TriggeredEvent) -> Option<String> {
        None
    }

    /// Does the task. An `Err` becomes `.finished` with `errored`/`fail` and the error chain
    /// as the message.
    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome>;
}

/// Maps task names (as they appear in event types) to handlers, through aliases.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
    aliases: HashMap<String, String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a handler under its canonical task name.
    pub fn register(&mut self, handler: Arc<dyn TaskHandler>) -> &mut Self {
        self.handlers.insert(handler.task().to_string(), handler);
        self
    }

    /// Makes `alias` (e.g. `je-test`) run the handler of `task` (e.g. `test`).
    pub fn alias(&mut self, alias: &str, task: &str) -> &mut Self {
        self.aliases.insert(alias.to_string(), task.to_string());
        self
    }

    /// The handler for a task name as received, if we own that task.
    pub fn resolve(&self, task: &str) -> Option<&Arc<dyn TaskHandler>> {
        let canonical = self.aliases.get(task).map(String::as_str).unwrap_or(task);
        self.handlers.get(canonical)
    }

    /// The task names (canonical and aliases) we answer, for subscriptions and logs.
    pub fn task_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .handlers
            .keys()
            .chain(
                self.aliases
                    .iter()
                    .filter(|(_, t)| self.handlers.contains_key(*t))
                    .map(|(a, _)| a),
            )
            .cloned()
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy(&'static str);

    #[async_trait]
    impl TaskHandler for Dummy {
        fn task(&self) -> &'static str {
            self.0
        }
        async fn handle(&self, _req: TaskRequest) -> anyhow::Result<TaskOutcome> {
            Ok(TaskOutcome::Finished(Finished::pass("")))
        }
    }

    #[test]
    fn aliases_resolve_to_registered_handlers_only() {
        let mut r = Registry::new();
        r.register(Arc::new(Dummy("test")))
            .alias("je-test", "test")
            .alias("je-deployment", "deployment");
        assert_eq!(r.resolve("test").map(|h| h.task()), Some("test"));
        assert_eq!(r.resolve("je-test").map(|h| h.task()), Some("test"));
        assert!(r.resolve("je-deployment").is_none());
        assert!(r.resolve("release").is_none());
        assert_eq!(r.task_names(), vec!["je-test", "test"]);
    }
}
