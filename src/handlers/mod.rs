//! Task handlers: one file per task, all implementing [`TaskHandler`], each declared by a
//! [`TaskSpec`] in the one list [`TASKS`]. Adding a task is a new file here and one line in
//! that list: configuration (known names, aliases, defaults), the app's build step, the
//! subscriptions and the dispatcher all loop over it.
//!
//! The dispatcher (`crate::dispatch`) owns the protocol: it sends `.started` before calling a
//! handler and turns whatever the handler returns (an outcome, an error, a panic) into exactly
//! one `.finished`. A handler only decides and does its task.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::deploy::Backends;
use crate::evaluation::history::EvaluationHistory;
use crate::keptn::{Finished, TriggeredEvent};
use crate::resources::ResourceStore;

pub mod approval;
pub mod deployment;
pub mod evaluation;
pub mod rollback;
pub mod test;

/// Every task keptn-native can run natively, in the order of the default `TASKS`.
pub const TASKS: &[TaskSpec] = &[
    approval::TASK,
    deployment::TASK,
    test::TASK,
    evaluation::TASK,
    rollback::TASK,
];

/// What a task declares about itself.
#[derive(Clone, Copy)]
pub struct TaskSpec {
    /// The canonical task name, as in `sh.keptn.event.<name>.triggered` and in `TASKS`.
    pub name: &'static str,
    /// The configuration section (YAML key and flag group) the task reads, if it has settings.
    pub section: Option<&'static str>,
    /// Builds the handler from the shared clients.
    pub build: BuildFn,
    /// Whether a `.finished` that someone else sends (Keptn's Bridge deciding an approval)
    /// settles a pending task of this kind. The service then also subscribes to that
    /// `.finished`.
    pub settled_by_others: bool,
}

impl std::fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSpec")
            .field("name", &self.name)
            .field("section", &self.section)
            .field("settled_by_others", &self.settled_by_others)
            .finish_non_exhaustive()
    }
}

/// What a builder returns.
pub type BuildFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<Arc<dyn TaskHandler>>> + Send + 'a>>;

/// Builds one task's handler from the shared context.
pub type BuildFn = for<'a> fn(&'a TaskContext) -> BuildFuture<'a>;

/// The registered task of that canonical name.
pub fn spec(name: &str) -> Option<&'static TaskSpec> {
    TASKS.iter().find(|t| t.name == name)
}

/// The canonical names of every registered task.
pub fn task_names() -> Vec<&'static str> {
    TASKS.iter().map(|t| t.name).collect()
}

/// The clients and settings every task is built from, made once by the app's build step.
/// Clients that several tasks share (the deployment backends, which remember what runs) are
/// built on first use and then shared.
pub struct TaskContext {
    pub config: ServeConfig,
    pub http: reqwest::Client,
    pub resources: Arc<dyn ResourceStore>,
    pub history: Arc<dyn EvaluationHistory>,
    metrics: Mutex<MetricsRegistry>,
    backends: OnceCell<Arc<Backends>>,
}

impl TaskContext {
    pub fn new(
        config: ServeConfig,
        http: reqwest::Client,
        resources: Arc<dyn ResourceStore>,
        history: Arc<dyn EvaluationHistory>,
        metrics: MetricsRegistry,
    ) -> TaskContext {
        TaskContext {
            config,
            http,
            resources,
            history,
            metrics: Mutex::new(metrics),
            backends: OnceCell::new(),
        }
    }

    /// Registers a task's own metrics on the service's registry.
    pub fn register_metrics<T>(&self, register: impl FnOnce(&mut MetricsRegistry) -> T) -> T {
        register(&mut self.metrics.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The metrics registry, with everything the tasks registered, once they are built.
    pub fn take_metrics(&self) -> MetricsRegistry {
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The deployment backends, built on first use and shared by the tasks that deploy.
    pub async fn backends(&self) -> anyhow::Result<Arc<Backends>> {
        self.backends
            .get_or_try_init(|| async {
                Backends::build(&self.config.deploy, &self.http, &self.resources)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
            .context("building the deployment backends")
    }

    /// Stops what the tasks started that outlives a task (deployed processes).
    pub async fn shutdown(&self) {
        if let Some(b) = self.backends.get() {
            b.shutdown().await;
        }
    }
}

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
    settled_by_others: HashSet<String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the handlers of the enabled tasks (configuration has checked the names) and
    /// adds the aliases.
    pub async fn build(
        ctx: &TaskContext,
        tasks: &[String],
        aliases: &[(String, String)],
    ) -> anyhow::Result<Registry> {
        let mut registry = Registry::new();
        for name in tasks {
            let spec = spec(name).with_context(|| format!("unknown task {name:?}"))?;
            let handler = (spec.build)(ctx)
                .await
                .with_context(|| format!("building the {name} task"))?;
            registry.register(handler);
            if spec.settled_by_others {
                registry.settled_by_others.insert(spec.name.to_string());
            }
        }
        for (alias, task) in aliases {
            registry.alias(alias, task);
        }
        Ok(registry)
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

    /// Whether a `.finished` of this task name (canonical or alias) sent by someone else settles
    /// a pending task of ours.
    pub fn settled_by_others(&self, task: &str) -> bool {
        self.resolve(task)
            .is_some_and(|h| self.settled_by_others.contains(h.task()))
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

    fn context() -> TaskContext {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir();
        TaskContext::new(
            ServeConfig::local("nats://127.0.0.1:4222", &dir),
            reqwest::Client::new(),
            Arc::new(crate::resources::LocalDir::new(&dir)),
            Arc::new(crate::evaluation::history::InMemoryHistory::new()),
            MetricsRegistry::default(),
        )
    }

    #[tokio::test]
    async fn every_registered_task_has_a_name_a_section_and_a_builder() {
        let ctx = context();
        let mut seen = HashSet::new();
        for spec in TASKS {
            assert!(
                !spec.name.is_empty() && !spec.name.contains(['.', ' ', '*', '>']),
                "{spec:?}: a task name is one subject token"
            );
            assert!(seen.insert(spec.name), "{} registered twice", spec.name);
            if let Some(section) = spec.section {
                let yaml = format!("{section}: {{}}\n");
                assert!(
                    serde_norway::from_str::<crate::config::ServeArgs>(&yaml).is_ok(),
                    "{}: section {section:?} is not a configuration section",
                    spec.name
                );
            }
            let handler = (spec.build)(&ctx).await.expect("builds");
            assert_eq!(handler.task(), spec.name, "the builder builds this task");
        }
        assert!(
            serde_norway::from_str::<crate::config::ServeArgs>("nosuchsection: {}\n").is_err(),
            "the section check can fail"
        );
        assert!(
            seen.contains("rollback") && seen.contains("deployment"),
            "{seen:?}"
        );
        assert_eq!(
            TASKS.iter().filter(|t| t.settled_by_others).count(),
            1,
            "only the approval is settled by someone else's .finished"
        );
    }

    #[tokio::test]
    async fn the_registry_builds_the_enabled_tasks_and_knows_who_settles() {
        let ctx = context();
        let r = Registry::build(
            &ctx,
            &["approval".into(), "test".into()],
            &[("manual-gate".into(), "approval".into())],
        )
        .await
        .expect("builds");
        assert_eq!(r.task_names(), vec!["approval", "manual-gate", "test"]);
        assert!(r.settled_by_others("approval"));
        assert!(r.settled_by_others("manual-gate"), "through the alias");
        assert!(!r.settled_by_others("test"));
        assert!(!r.settled_by_others("deployment"), "not enabled");
        let unknown = Registry::build(&ctx, &["release".into()], &[]).await;
        assert!(unknown.is_err_and(|e| format!("{e:#}").contains("unknown task \"release\"")));
    }

    #[test]
    fn an_unknown_name_in_tasks_is_a_configuration_error() {
        let args = crate::config::ServeArgs {
            tasks: Some(vec!["deployment".into(), "release".into()]),
            ..Default::default()
        };
        let problems = args
            .resolve(Default::default())
            .expect_err("release is not a task");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("TASKS: unknown task \"release\"")),
            "{problems:?}"
        );
        let all = crate::config::ServeArgs {
            tasks: Some(task_names().iter().map(|t| t.to_string()).collect()),
            ..Default::default()
        };
        assert!(
            all.resolve(Default::default()).is_ok(),
            "every registered name is known"
        );
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
