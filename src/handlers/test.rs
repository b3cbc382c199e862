//! The `test` task (and aliases such as `je-test`): generates HTTP load natively against the
//! freshly deployed service and answers with `test.start`/`test.end` and a compact summary.
//!
//! Plan resolution, at service, then stage, then project level (job-executor's order):
//! 1. the native plan (`loadtest.yaml` by default), workload chosen by `test.teststrategy`;
//! 2. else `locust/locust.conf` plus a locustfile: the conf's `locustfile` line mapped into
//!    `locust/`, else `locust/locustfile.py` (locust's default), else `locust/basic.py` (what
//!    the tutorial's job-executor config passed with `-f`, overriding the conf's dead
//!    `locustfile = /locust/locust.py` line).

use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;

use super::{BuildFuture, TaskContext, TaskHandler, TaskOutcome, TaskRequest, TaskSpec};
use crate::keptn::payload::TestTriggered;
use crate::keptn::{Finished, StatusType, TriggeredEvent};
use crate::loadtest::{
    self, LoadtestMetrics, LoadtestSettings, PlanFile, Progress, Target, Workload, locust, plan,
    report, target,
};
use crate::resources::{ResourceScope, ResourceStore};

/// `test`: settings in the `loadtest` section; its metrics join the service's.
pub const TASK: TaskSpec = TaskSpec {
    name: "test",
    section: Some("loadtest"),
    build,
    settled_by_others: false,
};

fn build(ctx: &TaskContext) -> BuildFuture<'_> {
    Box::pin(async {
        Ok(Arc::new(TestHandler::new(
            Arc::clone(&ctx.resources),
            ctx.config.loadtest.clone(),
            ctx.register_metrics(LoadtestMetrics::register),
        )) as Arc<dyn TaskHandler>)
    })
}

/// Handles `test.triggered`.
pub struct TestHandler {
    resources: Arc<dyn ResourceStore>,
    settings: LoadtestSettings,
    metrics: LoadtestMetrics,
}

impl TestHandler {
    /// `metrics` comes from [`LoadtestMetrics::register`] on the app's registry.
    pub fn new(
        resources: Arc<dyn ResourceStore>,
        settings: LoadtestSettings,
        metrics: LoadtestMetrics,
    ) -> Self {
        TestHandler {
            resources,
            settings,
            metrics,
        }
    }

    /// Reads `uri` at service, stage, then project level; returns the level it was found at.
    async fn find(
        &self,
        scopes: &[ResourceScope],
        uri: &str,
        commit: Option<&str>,
    ) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        for scope in scopes {
            if let Some(b) = self
                .resources
                .get(scope, uri, commit)
                .await
                .with_context(|| format!("reading resource {uri}"))?
            {
                let level = match (&scope.stage, &scope.service) {
                    (Some(_), Some(_)) => "service",
                    (Some(_), None) => "stage",
                    _ => "project",
                };
                return Ok(Some((format!("{uri} ({level} level)"), b)));
            }
        }
        Ok(None)
    }

    /// The workload to run and a description of where it came from.
    async fn resolve(
        &self,
        scopes: &[ResourceScope],
        commit: Option<&str>,
        teststrategy: &str,
        where_: &str,
    ) -> anyhow::Result<(Workload, String, Vec<String>)> {
        let plan_uri = self.settings.plan_resource();
        if let Some((src, bytes)) = self.find(scopes, plan_uri, commit).await? {
            let text = crate::untrusted::utf8_text(&bytes)
                .map_err(|e| anyhow!("{plan_uri}:{}: {e}; save the file as UTF-8", e.line))?;
            let plan = PlanFile::parse(plan_uri, text)?;
            let w = plan.select(plan_uri, teststrategy)?.validate(plan_uri)?;
            return Ok((w, src, Vec::new()));
        }
        let conf_uri = "locust/locust.conf";
        let mut notes = Vec::new();
        let conf = match self.find(scopes, conf_uri, commit).await? {
            Some((_, b)) => {
                let text = locust::source_text(conf_uri, &b)?;
                Some(locust::parse_conf(conf_uri, &text)?)
            }
            None => None,
        };
        let mut candidates = Vec::new();
        if let Some(named) = conf.as_ref().and_then(|c| c.locustfile.as_deref()) {
            let base = named.rsplit('/').next().unwrap_or(named);
            if !base.is_empty() && crate::resources::validate_name(base).is_ok() {
                candidates.push(format!("locust/{base}"));
            }
        }
        for c in ["locust/locustfile.py", "locust/basic.py"] {
            if !candidates.iter().any(|x| x == c) {
                candidates.push(c.to_string());
            }
        }
        for (i, uri) in candidates.iter().enumerate() {
            if let Some((src, b)) = self.find(scopes, uri, commit).await? {
                if i > 0
                    && let Some(named) = conf.as_ref().and_then(|c| c.locustfile.as_deref())
                {
                    notes.push(format!(
                        "locust.conf names locustfile {named:?}, which does not exist; ran {uri} as the job-executor's `-f` did"
                    ));
                }
                let text = locust::source_text(uri, &b)?;
                let lf = locust::parse_locustfile(uri, &text)?;
                let w = locust::to_workload(&conf.clone().unwrap_or_default(), &lf);
                return Ok((w, src, notes));
            }
        }
        Err(anyhow!(
            "no load test found for {where_}: none of {plan_uri}, {conf_uri} with a locustfile ({}) exists at service, stage or project level; upload one with `keptn add-resource`",
            candidates.join(", ")
        ))
    }
}

#[async_trait]
impl TaskHandler for TestHandler {
    fn task(&self) -> &'static str {
        TASK.name
    }

    fn started_message(&self, _event: &TriggeredEvent) -> Option<String> {
        Some("load test starting".into())
    }

    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome> {
        let ev = &req.event;
        let data: TestTriggered = ev
            .payload()
            .map_err(|e| anyhow!("invalid test.triggered data: {e}"))?;
        let c = &data.common;
        if c.project.is_empty() || c.stage.is_empty() || c.service.is_empty() {
            return Err(anyhow!(
                "test.triggered data must name project, stage and service"
            ));
        }
        let scopes = [
            ResourceScope::service(&c.project, &c.stage, &c.service),
            ResourceScope::stage(&c.project, &c.stage),
            ResourceScope::project(&c.project),
        ];
        let where_ = format!(
            "service {} in stage {} of project {}",
            c.service, c.stage, c.project
        );
        let (mut workload, source, mut notes) = self
            .resolve(
                &scopes,
                ev.git_commit_id.as_deref(),
                &data.test.teststrategy,
                &where_,
            )
            .await?;
        let url = data
            .target_uri()
            .filter(|u| !u.trim().is_empty())
            .map(str::to_string)
            .or_else(|| workload.host.clone())
            .ok_or_else(|| {
                anyhow!(
                    "no target for the load test: the event has no deployment.deploymentURIsLocal/deploymentURIsPublic and {source} sets no host"
                )
            })?;
        let target = Target::parse(&url)?;
        target::check_allowed(
            &target,
            &self.settings.allowed_hosts(),
            &[
                ("project", &c.project),
                ("stage", &c.stage),
                ("service", &c.service),
            ],
        )?;
        if let Some(note) = loadtest::apply_limits(&mut workload, &self.settings)
            .map_err(|e| anyhow!("{source}: {e}"))?
        {
            notes.push(note);
        }
        tracing::info!(target_url = %target.url, source = %source, "load test running");
        let guard = self.metrics.running();
        let result = loadtest::run(
            &workload,
            &target,
            req.cancel.clone(),
            Arc::new(Progress::default()),
        )
        .await;
        drop(guard);
        let verdict = plan::evaluate(&workload.thresholds, &result.summary);
        let total = &result.summary.total;
        let unreachable = total.requests > 0
            && total.failures.get(&loadtest::stats::ErrorClass::Connect) == Some(&total.requests);
        let test = report::compact(&result, &target.url, &source);
        let mut msg = format!(
            "load test from {source} against {}: {}",
            target.url,
            report::one_line(&result)
        );
        for n in &notes {
            msg.push_str("; ");
            msg.push_str(n);
        }
        let scope = [c.project.as_str(), c.stage.as_str(), c.service.as_str()];
        let finished = if result.cancelled {
            self.metrics.finished(scope, &result.summary, "errored");
            Finished::errored(format!(
                "load test stopped by shutdown after {:.1}s; {msg}",
                result.summary.duration_secs
            ))
        } else if unreachable {
            self.metrics.finished(scope, &result.summary, "errored");
            Finished::errored(format!(
                "target {} is unreachable: all {} connection attempts failed; {msg}",
                target.url, total.requests
            ))
        } else if total.requests == 0 {
            self.metrics.finished(scope, &result.summary, "errored");
            Finished::errored(format!("no request was sent; {msg}"))
        } else {
            self.metrics
                .finished(scope, &result.summary, verdict.result.as_str());
            if !verdict.breaches.is_empty() {
                msg.push_str("; thresholds not met: ");
                msg.push_str(&verdict.breaches.join(", "));
            }
            Finished::new(StatusType::Succeeded, verdict.result, msg)
        };
        Ok(TaskOutcome::Finished(finished.with("test", test)))
    }
}
