//! The `evaluation` task (§6, §7): Keptn's lighthouse-service and prometheus-service in one
//! step. timeframe → `slo.yaml` → `prometheus/sli.yaml` (project → stage → service) →
//! Prometheus (all SLIs concurrently) → previous results → score → `evaluation.finished`.
//!
//! Verdicts and Keptn's fields are lighthouse's; each indicator also carries the query sent and
//! a one-line explanation, and the message ends with a readable summary.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;

use super::{BuildFuture, TaskContext, TaskHandler, TaskOutcome, TaskRequest, TaskSpec};
use crate::evaluation::Slo;
use crate::evaluation::history::{EvaluationHistory, HistoryScope};
use crate::evaluation::pipeline::{self, Measured};
use crate::evaluation::prometheus::{PrometheusProvider, QueryContext, merge_sli_files};
use crate::evaluation::scoring::{Evaluated, EvaluationInput};
use crate::evaluation::timeframe;
use crate::keptn::payload::EvaluationTriggered;
use crate::keptn::time::parse_keptn;
use crate::keptn::{Finished, ResultType, StatusType, TriggeredEvent};
use crate::resources::{ResourceScope, ResourceStore};

/// Keptn's API accepts events up to 64 KB; we stay below with room for the envelope.
pub const MAX_DATA_BYTES: usize = 60 * 1024;

/// `evaluation`: settings (Prometheus) in the `evaluation` section.
pub const TASK: TaskSpec = TaskSpec {
    name: "evaluation",
    section: Some("evaluation"),
    build,
    settled_by_others: false,
};

fn build(ctx: &TaskContext) -> BuildFuture<'_> {
    Box::pin(async {
        let prometheus = Arc::new(PrometheusProvider::new(
            ctx.http.clone(),
            ctx.config.evaluation.prometheus(),
        ));
        Ok(Arc::new(EvaluationHandler::new(
            Arc::clone(&ctx.resources),
            prometheus,
            Arc::clone(&ctx.history),
        )) as Arc<dyn TaskHandler>)
    })
}

/// Runs evaluations with already-built clients.
pub struct EvaluationHandler {
    resources: Arc<dyn ResourceStore>,
    prometheus: Arc<PrometheusProvider>,
    history: Arc<dyn EvaluationHistory>,
}

impl EvaluationHandler {
    /// `resources`: where `slo.yaml` and `prometheus/sli.yaml` are read (Keptn's
    /// resource-service or a local directory); `prometheus`: the SLI provider; `history`:
    /// previous results (Keptn's datastore or the embedded store) — results this handler
    /// produces are recorded there too.
    pub fn new(
        resources: Arc<dyn ResourceStore>,
        prometheus: Arc<PrometheusProvider>,
        history: Arc<dyn EvaluationHistory>,
    ) -> Self {
        EvaluationHandler {
            resources,
            prometheus,
            history,
        }
    }
}

fn status_of(s: &str) -> StatusType {
    match s {
        "succeeded" => StatusType::Succeeded,
        "aborted" => StatusType::Aborted,
        "unknown" => StatusType::Unknown,
        _ => StatusType::Errored,
    }
}

fn finished_from(e: &Evaluated) -> Finished {
    let result = ResultType::parse(&e.result).unwrap_or(ResultType::Fail);
    Finished::new(status_of(&e.status), result, e.message.clone()).with(
        "evaluation",
        serde_json::to_value(&e.evaluation).unwrap_or(Value::Null),
    )
}

/// An errored finish that still carries Keptn's `evaluation` block.
fn errored(message: String, start: &str, end: &str) -> Finished {
    finished_from(&pipeline::errored(message, start, end, None))
}

/// Keeps the data under Keptn's limit: our explanations go first, then our queries, then the
/// summary part of the message; Keptn's own fields are never touched.
pub fn fit_size(e: &mut Evaluated, keptn_message_len: usize) {
    let size = |e: &Evaluated| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0);
    if size(e) <= MAX_DATA_BYTES {
        return;
    }
    for r in e.evaluation.indicator_results.iter_mut().flatten() {
        r.explanation.clear();
    }
    if size(e) <= MAX_DATA_BYTES {
        return;
    }
    for r in e.evaluation.indicator_results.iter_mut().flatten() {
        r.query = None;
    }
    if size(e) <= MAX_DATA_BYTES {
        return;
    }
    let mut cut = keptn_message_len.min(e.message.len());
    while !e.message.is_char_boundary(cut) {
        cut -= 1;
    }
    e.message.truncate(cut);
}

#[async_trait]
impl TaskHandler for EvaluationHandler {
    fn task(&self) -> &'static str {
        TASK.name
    }

    async fn handle(&self, req: TaskRequest) -> anyhow::Result<TaskOutcome> {
        tokio::select! {
            out = self.evaluate_event(&req.event) => out,
            () = req.cancel.cancelled() => Ok(TaskOutcome::Finished(errored(
                "evaluation cancelled because the service is shutting down".into(),
                "",
                "",
            ))),
        }
    }
}

impl EvaluationHandler {
    async fn evaluate_event(&self, ev: &TriggeredEvent) -> anyhow::Result<TaskOutcome> {
        let data: EvaluationTriggered = match ev.payload() {
            Ok(d) => d,
            Err(e) => return Ok(TaskOutcome::Finished(errored(e, "", ""))),
        };
        let (project, stage, service) = (
            data.common.project.clone(),
            data.common.stage.clone(),
            data.common.service.clone(),
        );
        let window = match timeframe::resolve(&data, chrono::Utc::now()) {
            Ok(w) => w,
            Err(e) => return Ok(TaskOutcome::Finished(errored(e.to_string(), "", ""))),
        };
        let (start, end) = (window.start.as_str(), window.end.as_str());
        let commit = ev.git_commit_id.as_deref();
        let scope = ResourceScope::service(&project, &stage, &service);

        // slo.yaml (service level only, as lighthouse)
        let slo_raw = match self.resources.get(&scope, "slo.yaml", commit).await {
            Ok(r) => r,
            Err(e) => {
                return Ok(TaskOutcome::Finished(errored(
                    format!("error retrieving SLO file: {e}"),
                    start,
                    end,
                )));
            }
        };
        let slo = match pipeline::read_slo(slo_raw, &project, &stage, &service) {
            Ok(s) => s,
            Err(message) => return Ok(TaskOutcome::Finished(errored(message, start, end))),
        };

        let measured = match &slo {
            None => Measured::nothing(),
            Some(f) => self.retrieve_slis(&f.slo, &data, commit, start, end).await,
        };

        let previous = match &slo {
            Some(f) if measured.sli.status == "succeeded" => {
                let hscope = HistoryScope {
                    project: project.clone(),
                    stage: stage.clone(),
                    service: service.clone(),
                };
                let c = &f.slo.comparison;
                match self
                    .history
                    .previous(
                        &hscope,
                        c.included_results(),
                        c.number_of_previous_results(),
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        let e = pipeline::errored(e.to_string(), start, end, Some(&f.raw));
                        return Ok(TaskOutcome::Finished(finished_from(&e)));
                    }
                }
            }
            _ => Vec::new(),
        };

        let mut concluded = pipeline::conclude(
            EvaluationInput {
                project: &project,
                slo: slo.as_ref().map(|f| (&f.slo, f.raw.as_slice())),
                sli: &measured.sli,
                previous: &previous,
                time_start: start,
                time_end: end,
            },
            slo.as_ref().map(|f| &f.slo),
            &measured.queries,
        );
        let evaluated = &mut concluded.evaluated;
        fit_size(evaluated, concluded.keptn_message_len);
        tracing::info!(
            result = %evaluated.result,
            score = evaluated.evaluation.score,
            compared = previous.len(),
            "evaluation finished"
        );
        if slo.is_some() && evaluated.status == "succeeded" {
            let hscope = HistoryScope {
                project,
                stage,
                service,
            };
            let record = self
                .history
                .record(&hscope, &ev.id, &evaluated.to_data())
                .await
                .context("recording the evaluation result");
            if let Err(e) = record {
                tracing::warn!(error = %format!("{e:#}"), "evaluation result not recorded");
            }
        }
        Ok(TaskOutcome::Finished(finished_from(evaluated)))
    }

    /// prometheus-service's part: sli.yaml merged project → stage → service, then queries.
    async fn retrieve_slis(
        &self,
        slo: &Slo,
        data: &EvaluationTriggered,
        commit: Option<&str>,
        start: &str,
        end: &str,
    ) -> Measured {
        let c = &data.common;
        let levels = [
            ("project", ResourceScope::project(&c.project), None),
            ("stage", ResourceScope::stage(&c.project, &c.stage), commit),
            (
                "service",
                ResourceScope::service(&c.project, &c.stage, &c.service),
                commit,
            ),
        ];
        let mut files: Vec<(&str, Option<Vec<u8>>)> = Vec::new();
        for (level, scope, commit) in levels {
            match self
                .resources
                .get(&scope, "prometheus/sli.yaml", commit)
                .await
            {
                Ok(f) => files.push((level, f)),
                Err(e) => {
                    return Measured::errored(format!(
                        "could not read {level} prometheus/sli.yaml: {e}"
                    ));
                }
            }
        }
        let borrowed: Vec<(&str, Option<&[u8]>)> =
            files.iter().map(|(l, f)| (*l, f.as_deref())).collect();
        let templates = match merge_sli_files(&borrowed) {
            Ok(t) => t,
            Err(e) => return Measured::errored(e.to_string()),
        };
        let (Some(s), Some(e)) = (parse_keptn(start), parse_keptn(end)) else {
            return Measured::errored(format!("unreadable evaluation window {start} .. {end}"));
        };
        let ctx = QueryContext {
            project: c.project.clone(),
            stage: c.stage.clone(),
            service: c.service.clone(),
            deployment: data.deployment.names.first().cloned().unwrap_or_default(),
            labels: c.labels.clone(),
            filters: slo.filter.clone(),
            start: s,
            end: e,
        };
        pipeline::measure(&self.prometheus, slo, &templates, &ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{EvaluationDetails, IndicatorResult};

    fn big(n: usize) -> Evaluated {
        let r = IndicatorResult {
            status: "fail".into(),
            query: Some("q".repeat(200)),
            explanation: "e".repeat(200),
            ..Default::default()
        };
        Evaluated {
            status: "succeeded".into(),
            result: "fail".into(),
            message: format!("keptn\n{}", "s".repeat(100_000)),
            evaluation: EvaluationDetails {
                indicator_results: Some(vec![r; n]),
                ..Default::default()
            },
        }
    }

    #[test]
    fn trims_our_extras_before_keptns_fields() {
        // small enough once the summary is cut: explanations and queries go first
        let mut e = big(100);
        fit_size(&mut e, "keptn".len());
        assert_eq!(e.message, "keptn");
        let r = e.evaluation.indicator_results.as_ref().expect("results");
        assert_eq!(r.len(), 100, "Keptn's results are never dropped");
        assert!(
            r.iter()
                .all(|r| r.explanation.is_empty() && r.query.is_none())
        );
        assert!(serde_json::to_vec(&e).expect("json").len() <= MAX_DATA_BYTES);

        // already small: untouched
        let mut e = big(1);
        e.message = "keptn\nsummary".into();
        let before = e.clone();
        fit_size(&mut e, 5);
        assert_eq!(e, before);
    }
}
