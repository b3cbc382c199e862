//! The quality-gate decision, pure: lighthouse's `evaluateObjectives` + `calculateScore` and
//! the post-processing of `processGetSliFinishedEvent` (§6.3, §6.4), bit for bit, plus what
//! Keptn does not give: a one-line explanation per indicator and a readable summary.
//!
//! Input: the SLO (parsed and raw), the SLI retrieval (status, result, message, values) and the
//! previous evaluations (already filtered and limited, newest first). Output: the
//! `evaluation.finished` data in Keptn's field names.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::criteria::{CriteriaError, Criterion};
use super::slo::{Comparison, CriteriaSet, Objective, Slo};
use crate::keptn::payload::SliResult;

/// `SLITarget`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SliTarget {
    #[serde(default)]
    pub criteria: String,
    #[serde(rename = "targetValue", default)]
    pub target_value: f64,
    #[serde(default)]
    pub violated: bool,
}

/// `SLIEvaluationResult`, plus our `query` and `explanation` (ignored by Keptn's decoders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IndicatorResult {
    #[serde(default)]
    pub score: f64,
    #[serde(default)]
    pub value: Option<SliResult>,
    #[serde(rename = "displayName", default)]
    pub display_name: String,
    #[serde(rename = "passTargets", default)]
    pub pass_targets: Option<Vec<SliTarget>>,
    #[serde(rename = "warningTargets", default)]
    pub warning_targets: Option<Vec<SliTarget>>,
    #[serde(rename = "keySli", default)]
    pub key_sli: bool,
    #[serde(default)]
    pub status: String,
    /// The query sent to the SLI provider (ours, not Keptn's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// One line for people, e.g. `0.31 > 0.2 (pass criterion <=0.2 violated)` (ours).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub explanation: String,
}

/// `EvaluationDetails` (`data.evaluation` of `evaluation.finished`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EvaluationDetails {
    #[serde(rename = "timeStart", default)]
    pub time_start: String,
    #[serde(rename = "timeEnd", default)]
    pub time_end: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub score: f64,
    #[serde(rename = "sloFileContent", default)]
    pub slo_file_content: String,
    #[serde(rename = "indicatorResults", default)]
    pub indicator_results: Option<Vec<IndicatorResult>>,
    #[serde(
        rename = "comparedEvents",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub compared_events: Vec<String>,
}

/// The `get-sli.finished` part the evaluation reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SliRetrieval {
    pub status: String,
    pub result: String,
    pub message: String,
    pub values: Vec<SliResult>,
}

/// A previous `evaluation.finished` event, reduced to what comparisons need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreviousEvaluation {
    pub id: String,
    /// `data.result`.
    pub result: String,
    pub indicator_results: Vec<IndicatorResult>,
}

impl PreviousEvaluation {
    /// Reads a CloudEvent (`{id, data: {result, evaluation: {indicatorResults}}}`). Fields that
    /// do not decode are treated as absent, as Go's decoder would drop the event's parts.
    pub fn from_event(event: &Value) -> Result<PreviousEvaluation, String> {
        let id = event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let data = event.get("data").unwrap_or(&Value::Null);
        let result = data
            .get("result")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let indicator_results = match data
            .get("evaluation")
            .and_then(|e| e.get("indicatorResults"))
        {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value::<Vec<Option<IndicatorResult>>>(v.clone())
                .map_err(|e| format!("previous event {id:?}: indicatorResults: {e}"))?
                .into_iter()
                .flatten()
                .collect(),
        };
        Ok(PreviousEvaluation {
            id,
            result,
            indicator_results,
        })
    }
}

/// What the evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    /// For Keptn's "no SLO file configured for project <p>" message.
    pub project: &'a str,
    /// The parsed SLO and its raw bytes; `None` when the service has no `slo.yaml`.
    pub slo: Option<(&'a Slo, &'a [u8])>,
    pub sli: &'a SliRetrieval,
    pub previous: &'a [PreviousEvaluation],
    pub time_start: &'a str,
    pub time_end: &'a str,
}

/// The `evaluation.finished` data the evaluation decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluated {
    pub status: String,
    pub result: String,
    pub message: String,
    pub evaluation: EvaluationDetails,
}

impl Evaluated {
    /// The `data` object: `{result, status, message, evaluation}`.
    pub fn to_data(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Runs the whole evaluation for one `get-sli.finished` (§6.3).
pub fn evaluate(input: EvaluationInput<'_>) -> Evaluated {
    let base = EvaluationDetails {
        time_start: input.time_start.to_string(),
        time_end: input.time_end.to_string(),
        result: "pass".into(),
        ..Default::default()
    };
    let out = |status: &str, result: &str, message: String, evaluation| Evaluated {
        status: status.into(),
        result: result.into(),
        message,
        evaluation,
    };
    match input.sli.status.as_str() {
        "aborted" => {
            return out(
                "errored",
                "fail",
                "evaluation performed by lighthouse was aborted".into(),
                base,
            );
        }
        "errored" => {
            return out(
                "errored",
                "fail",
                format!(
                    "evaluation performed by lighthouse received an unexpected error: {}",
                    input.sli.message
                ),
                base,
            );
        }
        _ => {}
    }
    let Some((slo, raw)) = input.slo else {
        return out(
            "succeeded",
            "pass",
            format!(
                "no evaluation performed by lighthouse because no SLO file configured for project {}",
                input.project
            ),
            base,
        );
    };
    let slo_file_content = base64::engine::general_purpose::STANDARD.encode(raw);
    let compared_events: Vec<String> = input.previous.iter().map(|p| p.id.clone()).collect();

    let objectives = evaluate_objectives(slo, &input.sli.values, input.previous);
    let mut evaluation = EvaluationDetails {
        slo_file_content,
        compared_events,
        ..base
    };
    let scored = match objectives {
        Err(message) => {
            evaluation.result = "fail".into();
            return out("succeeded", "fail", message, evaluation);
        }
        Ok(o) => o,
    };
    let has_objectives = !slo.objectives.is_empty();
    evaluation.indicator_results = scored.results;
    if !has_objectives {
        evaluation.result = "fail".into();
    }
    let mut verdict = match calculate_score(&scored.score, slo, &mut evaluation) {
        Ok(v) => v,
        Err(message) => {
            // lighthouse's sendErroredFinishedEventWithMessage: a fresh evaluation block with
            // the window and the SLO, but no results and no compared events.
            let e = EvaluationDetails {
                result: "fail".into(),
                score: 0.0,
                indicator_results: None,
                compared_events: Vec::new(),
                ..evaluation
            };
            return out("errored", "fail", message.to_string(), e);
        }
    };
    if verdict.message.is_empty() {
        verdict.message = scored.leftover_message;
    }
    if !has_objectives {
        verdict.result = "fail";
        evaluation.result = "fail".into();
        verdict.message = "lighthouse failed because no SLO objective was provided".into();
    } else if input.sli.result == "fail" {
        verdict.result = "fail";
        verdict.message = format!(
            "lighthouse failed because SLI failed with message {}",
            input.sli.message
        );
    }
    out("succeeded", verdict.result, verdict.message, evaluation)
}

/// What `evaluateObjectives` returns besides the results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreState {
    pub maximum: f64,
    /// Set when a key SLI failed: `(name, message)`.
    pub key_sli_failed: Option<(String, String)>,
}

struct Scored {
    results: Option<Vec<IndicatorResult>>,
    score: ScoreState,
    leftover_message: String,
}

fn evaluate_objectives(
    slo: &Slo,
    values: &[SliResult],
    previous: &[PreviousEvaluation],
) -> Result<Scored, String> {
    if slo.objectives.is_empty() {
        return Ok(Scored {
            results: None,
            score: ScoreState {
                maximum: 100.0,
                key_sli_failed: None,
            },
            leftover_message: String::new(),
        });
    }
    let mut remaining: Vec<SliResult> = values.to_vec();
    let mut state = ScoreState::default();
    let mut results = Vec::with_capacity(slo.objectives.len());
    for o in &slo.objectives {
        if o.has_pass() {
            state.maximum += o.weight as f64;
        }
        let prev: Vec<&IndicatorResult> = previous
            .iter()
            .flat_map(|e| e.indicator_results.iter())
            .filter(|r| r.value.as_ref().is_some_and(|v| v.metric == o.sli))
            .collect();
        // Go removes the found value by moving the last one into its place.
        let value = remaining
            .iter()
            .position(|v| v.metric == o.sli)
            .map(|i| remaining.swap_remove(i));
        let mut r = IndicatorResult {
            value,
            display_name: o.display_name.clone(),
            ..Default::default()
        };
        if !o.has_pass() {
            r.status = "info".into();
            results.push(unscored(r, o, &prev, &slo.comparison));
            continue;
        }
        let usable = r.value.as_ref().is_some_and(|v| v.success);
        if !usable {
            let v = r.value.take().unwrap_or_else(|| SliResult {
                metric: o.sli.clone(),
                success: false,
                message: "no value received from SLI provider".into(),
                ..Default::default()
            });
            if o.key_sli {
                state.key_sli_failed = Some((o.display_name.clone(), v.message.clone()));
            }
            r.value = Some(v);
            r.status = "fail".into();
            r.score = 0.0;
            results.push(unscored(r, o, &prev, &slo.comparison));
            continue;
        }
        let Some(v) = r.value.as_mut() else {
            continue;
        };
        let pass_sets = o.pass.as_deref().unwrap_or_default();
        let (passed, pass_targets) = eval_or(v, pass_sets, &prev, &slo.comparison)
            .map_err(|e| format!("error with {}: {e}", o.name()))?;
        if passed {
            r.score = o.weight as f64;
            r.status = "pass".into();
        }
        let warning_sets = o.warning.as_deref().unwrap_or_default();
        let mut warned = false;
        if !warning_sets.is_empty() {
            // An unparsable warning criterion is not an error: lighthouse ignores the error and
            // reports no warning targets at all (an empty list) and no warning.
            let (w, t) = eval_or(v, warning_sets, &prev, &slo.comparison)
                .unwrap_or((false, Some(Vec::new())));
            warned = w;
            r.warning_targets = t;
            if !passed && warned {
                r.score = 0.5 * o.weight as f64;
                r.status = "warning".into();
            }
        }
        r.pass_targets = pass_targets;
        r.key_sli = o.key_sli;
        if !passed && !warned {
            if o.key_sli {
                state.key_sli_failed = Some((
                    o.display_name.clone(),
                    format!("failed evaluation with score {:.6}", r.score),
                ));
            }
            r.status = "fail".into();
            r.score = 0.0;
        }
        r.explanation = explain(
            o,
            &r,
            aggregate(&prev, &slo.comparison.aggregate_function).1,
        );
        results.push(r);
    }
    let leftover_message = if remaining.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = remaining.iter().map(|v| v.metric.as_str()).collect();
        format!(
            "Lighthouse received additional SLIs, which are not specified as SLO: {} . Please consider using them as an SLO.",
            names.join(", ")
        )
    };
    Ok(Scored {
        results: Some(results),
        score: state,
        leftover_message,
    })
}

/// Completes an indicator that is not scored against its criteria (an info objective, or one
/// without a usable value): every target violated, and the explanation.
fn unscored(
    mut r: IndicatorResult,
    o: &Objective,
    prev: &[&IndicatorResult],
    cmp: &Comparison,
) -> IndicatorResult {
    r.pass_targets = empty_targets(o.pass.as_deref(), prev, cmp);
    r.warning_targets = empty_targets(o.warning.as_deref(), prev, cmp);
    r.explanation = explain(o, &r, aggregate(prev, &cmp.aggregate_function).1);
    r
}

/// Targets of an objective that could not be evaluated: all violated, with the target values
/// Keptn reports (fixed value, or the aggregate for relative criteria). Criteria that do not
/// parse are left out (lighthouse's `getEmptyTargets` skips them). Always a list, `[]` when
/// the objective has no such criteria (lighthouse allocates it).
fn empty_targets(
    sets: Option<&[CriteriaSet]>,
    prev: &[&IndicatorResult],
    cmp: &Comparison,
) -> Option<Vec<SliTarget>> {
    let sets = sets.unwrap_or_default();
    let (agg, _) = aggregate(prev, &cmp.aggregate_function);
    Some(
        sets.iter()
            .flat_map(|s| s.criteria.iter())
            .filter_map(|c| {
                let co = Criterion::parse(c).ok()?;
                Some(SliTarget {
                    criteria: c.clone(),
                    target_value: if co.relative { agg } else { co.value },
                    violated: true,
                })
            })
            .collect(),
    )
}

/// OR over criteria sets; every set is evaluated so that all targets are reported. `None`
/// targets when no criterion exists (Go's nil slice).
fn eval_or(
    v: &mut SliResult,
    sets: &[CriteriaSet],
    prev: &[&IndicatorResult],
    cmp: &Comparison,
) -> Result<(bool, Option<Vec<SliTarget>>), CriteriaError> {
    let mut satisfied = false;
    let mut targets: Option<Vec<SliTarget>> = None;
    for set in sets {
        let mut all = true;
        for c in &set.criteria {
            let mut t = SliTarget {
                criteria: c.clone(),
                ..Default::default()
            };
            let ok = eval_single(v, c, prev, cmp, &mut t)?;
            t.violated = !ok;
            all &= ok;
            targets.get_or_insert_with(Vec::new).push(t);
        }
        satisfied |= all;
    }
    Ok((satisfied, targets))
}

fn eval_single(
    v: &mut SliResult,
    criterion: &str,
    prev: &[&IndicatorResult],
    cmp: &Comparison,
    target: &mut SliTarget,
) -> Result<bool, CriteriaError> {
    let co = Criterion::parse(criterion)?;
    let (agg, skip) = aggregate(prev, &cmp.aggregate_function);
    v.compared_value = agg;
    if !co.relative {
        target.target_value = co.value;
        return Ok(co.op.holds(v.value, co.value));
    }
    if skip {
        return Ok(true);
    }
    let t = co.target(agg);
    target.target_value = t;
    Ok(co.op.holds(v.value, t))
}

/// The aggregate of the successful previous values, and whether there was none to use.
fn aggregate(prev: &[&IndicatorResult], function: &str) -> (f64, bool) {
    let mut vals: Vec<f64> = prev
        .iter()
        .filter_map(|r| r.value.as_ref())
        .filter(|v| v.success)
        .map(|v| v.value)
        .collect();
    if vals.is_empty() {
        return (0.0, true);
    }
    let q = match function {
        "avg" => return (vals.iter().sum::<f64>() / vals.len() as f64, false),
        "p50" => 0.5,
        "p90" => 0.9,
        "p95" => 0.95,
        _ => return (0.0, false),
    };
    vals.sort_by(f64::total_cmp);
    (percentile(&vals, q), false)
}

/// lighthouse's `calculatePercentile` over sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let pos = q * (n as f64 + 1.0);
    if pos < 1.0 {
        sorted[0]
    } else if pos >= n as f64 {
        sorted[n - 1]
    } else {
        let i = pos as usize;
        let (lo, hi) = (sorted[i - 1], sorted[i]);
        lo + (pos - pos.floor()) * (hi - lo)
    }
}

struct Verdict {
    result: &'static str,
    message: String,
}

/// Why no score can be computed; the texts are Keptn's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("no target score defined")]
    NoTarget,
    #[error("could not parse pass target percentage")]
    Pass,
    #[error("could not parse warning target percentage")]
    Warning,
}

fn parse_pct(s: &str) -> Option<f64> {
    s.strip_suffix('%').unwrap_or(s).parse::<f64>().ok()
}

fn calculate_score(
    state: &ScoreState,
    slo: &Slo,
    evaluation: &mut EvaluationDetails,
) -> Result<Verdict, ScoreError> {
    let ts = slo
        .total_score
        .as_ref()
        .filter(|t| !t.pass.is_empty())
        .ok_or(ScoreError::NoTarget)?;
    let pass_pct = parse_pct(&ts.pass).ok_or(ScoreError::Pass)?;
    let warn_pct = if ts.warning.is_empty() {
        None
    } else {
        Some(parse_pct(&ts.warning).ok_or(ScoreError::Warning)?)
    };
    if state.maximum == 0.0 {
        evaluation.result = "pass".into();
        evaluation.score = 100.0;
        return Ok(Verdict {
            result: "pass",
            message: String::new(),
        });
    }
    let total: f64 = evaluation
        .indicator_results
        .iter()
        .flatten()
        .filter(|r| r.pass_targets.as_ref().is_some_and(|t| !t.is_empty()))
        .map(|r| r.score)
        .sum();
    let pct = 100.0 * (total / state.maximum);
    evaluation.score = pct;
    let (result, message) = match (&state.key_sli_failed, warn_pct) {
        (None, _) if pct >= pass_pct => ("pass", String::new()),
        (None, Some(w)) if pct >= w => (
            "warning",
            format!(
                "Evaluation returned a warning: the calculated score of {} is close to the warning target value of {}",
                go_float(pct),
                go_float(w)
            ),
        ),
        (None, Some(w)) => (
            "fail",
            format!(
                "Evaluation failed since the calculated score of {} is below the warning value of {}",
                go_float(pct),
                go_float(w)
            ),
        ),
        (Some((name, msg)), _) => (
            "fail",
            format!("Evaluation failed due to key_sli objective '{name}': {msg}"),
        ),
        (None, None) => (
            "fail",
            format!(
                "Evaluation failed since the calculated score of {} is below the target value of {}",
                go_float(pct),
                go_float(pass_pct)
            ),
        ),
    };
    evaluation.result = result.into();
    Ok(Verdict { result, message })
}

/// Formats a float as Go's `%v` does (shortest representation; exponent form below 1e-4 and
/// from 1e21 on, with at least two exponent digits).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let a = f.abs();
    if f == 0.0 || (1e-4..1e21).contains(&a) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// A number for people: integers as such, others with up to 4 significant decimals.
pub fn human(f: f64) -> String {
    if !f.is_finite() || f == f.trunc() && f.abs() < 1e15 {
        return go_float(f);
    }
    let decimals = if f.abs() >= 1.0 {
        2
    } else {
        (4 - f.abs().log10().floor() as i32).clamp(2, 12) as usize - 1
    };
    let s = format!("{f:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn describe_target(value: f64, t: &SliTarget, kind: &str, no_history: bool) -> String {
    match Criterion::parse(&t.criteria) {
        Ok(co) if co.relative && no_history => format!(
            "{} ({kind} criterion {} met: no previous results to compare with)",
            human(value),
            t.criteria
        ),
        Ok(co) => {
            let rel = if co.relative {
                ", relative to previous results"
            } else {
                ""
            };
            if t.violated {
                format!(
                    "{} {} {} ({kind} criterion {} violated{rel})",
                    human(value),
                    co.op.negated(),
                    human(t.target_value),
                    t.criteria
                )
            } else {
                format!(
                    "{} {} {} ({kind} criterion {} met{rel})",
                    human(value),
                    co.op.as_str(),
                    human(t.target_value),
                    t.criteria
                )
            }
        }
        Err(e) => format!("{kind} criterion {:?}: {e}", t.criteria),
    }
}

/// The one-line explanation of an indicator result.
fn explain(o: &Objective, r: &IndicatorResult, no_history: bool) -> String {
    let key = if o.key_sli { " (key SLI)" } else { "" };
    let Some(v) = r.value.as_ref() else {
        return "no value received from SLI provider (informational, not scored)".into();
    };
    if !v.success {
        let m = if v.message.is_empty() {
            "no value"
        } else {
            v.message.as_str()
        };
        return match r.status.as_str() {
            "info" => format!("no value: {m} (informational, not scored)"),
            _ => format!("no value: {m}{key}"),
        };
    }
    let passes = r.pass_targets.as_deref().unwrap_or_default();
    let warns = r.warning_targets.as_deref().unwrap_or_default();
    let list = |ts: &[SliTarget], kind: &str, violated: bool| -> Vec<String> {
        ts.iter()
            .filter(|t| t.violated == violated)
            .map(|t| describe_target(v.value, t, kind, no_history))
            .collect()
    };
    match r.status.as_str() {
        "info" => format!("{} (informational, not scored)", human(v.value)),
        "pass" => {
            let met = list(passes, "pass", false);
            format!("{}{key}", met.join("; "))
        }
        "warning" => {
            let mut parts = list(passes, "pass", true);
            parts.extend(list(warns, "warning", false));
            format!("{}{key}", parts.join("; "))
        }
        _ => {
            let mut parts = list(passes, "pass", true);
            parts.extend(list(warns, "warning", true));
            format!("{}{key}", parts.join("; "))
        }
    }
}

/// A summary for people of an evaluation: the verdict, the score against its thresholds and
/// each objective that did not pass, with why.
pub fn summary(slo: Option<&Slo>, e: &Evaluated) -> String {
    let Some(slo) = slo else {
        return String::new();
    };
    let results = e
        .evaluation
        .indicator_results
        .as_deref()
        .unwrap_or_default();
    if results.is_empty() {
        return String::new();
    }
    let thresholds = slo
        .total_score
        .as_ref()
        .map(|t| {
            let w = if t.warning.is_empty() {
                String::new()
            } else {
                format!(", warning >= {}", t.warning.trim_end_matches('%'))
            };
            format!(" (pass >= {}{w})", t.pass.trim_end_matches('%'))
        })
        .unwrap_or_default();
    let mut s = format!(
        "Quality gate {}: score {}{thresholds}.",
        e.result,
        human(e.evaluation.score)
    );
    let name = |r: &IndicatorResult| {
        if r.display_name.is_empty() {
            r.value
                .as_ref()
                .map(|v| v.metric.clone())
                .unwrap_or_default()
        } else {
            r.display_name.clone()
        }
    };
    for status in ["fail", "warning"] {
        for r in results.iter().filter(|r| r.status == status) {
            s.push_str(&format!(
                " {} {}: {}.",
                status.to_uppercase(),
                name(r),
                r.explanation
            ));
        }
    }
    let passed: Vec<String> = results
        .iter()
        .filter(|r| r.status == "pass")
        .map(name)
        .collect();
    if !passed.is_empty() {
        s.push_str(&format!(" Passed: {}.", passed.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sli(metric: &str, value: f64) -> SliResult {
        SliResult {
            metric: metric.into(),
            value,
            success: true,
            ..Default::default()
        }
    }

    fn run(slo_text: &str, values: Vec<SliResult>, previous: &[PreviousEvaluation]) -> Evaluated {
        let slo = Slo::parse(slo_text.as_bytes()).expect("slo");
        let sli = SliRetrieval {
            status: "succeeded".into(),
            result: "pass".into(),
            values,
            ..Default::default()
        };
        evaluate(EvaluationInput {
            project: "p",
            slo: Some((&slo, slo_text.as_bytes())),
            sli: &sli,
            previous,
            time_start: "s",
            time_end: "e",
        })
    }

    const TUTORIAL: &str = "objectives:\n  - sli: rt\n    displayName: HTTP Response Time\n    key_sli: true\n    pass:\n      - criteria: [\"<=0.2\"]\n    warning:\n      - criteria: [\"<=0.1\"]\n  - sli: tp\n    pass:\n      - criteria: [\">=-80%\"]\n  - sli: gr\n    key_sli: true\n    pass:\n      - criteria: [\"<=30\"]\ntotal_score:\n  pass: \"80%\"\n  warning: \"50%\"\n";

    #[test]
    fn fast_service_passes_with_explanations() {
        let e = run(
            TUTORIAL,
            vec![sli("rt", 0.05), sli("tp", 10.0), sli("gr", 8.0)],
            &[],
        );
        assert_eq!(
            (e.status.as_str(), e.result.as_str()),
            ("succeeded", "pass")
        );
        assert_eq!(e.evaluation.score, 100.0);
        let r = e.evaluation.indicator_results.expect("results");
        assert_eq!(
            r[0].explanation,
            "0.05 <= 0.2 (pass criterion <=0.2 met) (key SLI)"
        );
        assert_eq!(
            r[1].explanation,
            "10 (pass criterion >=-80% met: no previous results to compare with)"
        );
    }

    #[test]
    fn slow_key_sli_fails_the_gate_and_says_why() {
        let e = run(
            TUTORIAL,
            vec![sli("rt", 0.31), sli("tp", 10.0), sli("gr", 8.0)],
            &[],
        );
        assert_eq!(e.result, "fail");
        assert_eq!(
            e.message,
            "Evaluation failed due to key_sli objective 'HTTP Response Time': failed evaluation with score 0.000000"
        );
        let r = e.evaluation.indicator_results.as_ref().expect("results");
        assert_eq!(
            r[0].explanation,
            "0.31 > 0.2 (pass criterion <=0.2 violated); 0.31 > 0.1 (warning criterion <=0.1 violated) (key SLI)"
        );
        let s = summary(Some(&Slo::parse(TUTORIAL.as_bytes()).expect("slo")), &e);
        assert!(
            s.starts_with("Quality gate fail: score 66.67 (pass >= 80, warning >= 50)."),
            "{s}"
        );
        assert!(s.contains("FAIL HTTP Response Time: 0.31 > 0.2"), "{s}");
    }

    #[test]
    fn warning_scores_half_and_relative_uses_history() {
        let slo = "objectives:\n  - sli: a\n    pass:\n      - criteria: [\"<=+10%\"]\n    warning:\n      - criteria: [\"<=+50%\"]\ntotal_score:\n  pass: \"90%\"\n  warning: \"50%\"\n";
        let prev = PreviousEvaluation {
            id: "x".into(),
            result: "pass".into(),
            indicator_results: vec![IndicatorResult {
                value: Some(sli("a", 200.0)),
                ..Default::default()
            }],
        };
        let e = run(slo, vec![sli("a", 250.0)], std::slice::from_ref(&prev));
        assert_eq!(e.result, "warning");
        assert_eq!(e.evaluation.score, 50.0);
        assert_eq!(e.evaluation.compared_events, vec!["x".to_string()]);
        assert_eq!(
            e.message,
            "Evaluation returned a warning: the calculated score of 50 is close to the warning target value of 50"
        );
        let r = &e.evaluation.indicator_results.as_ref().expect("r")[0];
        assert_eq!(r.pass_targets.as_ref().expect("t")[0].target_value, 220.0);
        assert_eq!(r.value.as_ref().expect("v").compared_value, 200.0);
    }

    fn previous(id: &str, metric: &str, value: f64) -> PreviousEvaluation {
        PreviousEvaluation {
            id: id.into(),
            result: "pass".into(),
            indicator_results: vec![IndicatorResult {
                value: Some(sli(metric, value)),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn errored_before_scoring_reports_no_compared_events() {
        // calculateScore fails ("no target score defined") -> sendErroredFinishedEventWithMessage:
        // window and SLO content, result fail, score 0, no results, no comparedEvents.
        let slo = "objectives:\n  - sli: a\n    pass:\n      - criteria: [\"<10\"]\n";
        let e = run(slo, vec![sli("a", 1.0)], &[previous("p1", "a", 2.0)]);
        assert_eq!((e.status.as_str(), e.result.as_str()), ("errored", "fail"));
        assert_eq!(e.message, "no target score defined");
        assert!(e.evaluation.compared_events.is_empty());
        assert!(e.evaluation.indicator_results.is_none());
        assert_eq!(
            (e.evaluation.result.as_str(), e.evaluation.score),
            ("fail", 0.0)
        );
        assert!(!e.evaluation.slo_file_content.is_empty());
        let data = e.to_data();
        assert!(data["evaluation"].get("comparedEvents").is_none(), "{data}");
        for (pass, msg) in [
            ("x%", "could not parse pass target percentage"),
            ("", "no target score defined"),
        ] {
            let slo = format!(
                "objectives:\n  - sli: a\n    pass:\n      - criteria: [\"<10\"]\ntotal_score:\n  pass: \"{pass}\"\n"
            );
            let e = run(&slo, vec![sli("a", 1.0)], &[previous("p1", "a", 2.0)]);
            assert_eq!((e.status.as_str(), e.message.as_str()), ("errored", msg));
            assert!(e.evaluation.compared_events.is_empty());
        }
    }

    #[test]
    fn criteria_error_while_scoring_keeps_compared_events() {
        // evaluateObjectives fails on a pass criterion: status succeeded, result fail, the
        // compared events and SLO are still reported, no indicator results.
        let slo = "objectives:\n  - sli: a\n    displayName: A\n    pass:\n      - criteria: [\"=>5\"]\ntotal_score:\n  pass: \"90%\"\n";
        let e = run(slo, vec![sli("a", 1.0)], &[previous("p1", "a", 2.0)]);
        assert_eq!(
            (e.status.as_str(), e.result.as_str()),
            ("succeeded", "fail")
        );
        assert_eq!(
            e.message,
            "error with A: could not parse criteria target value"
        );
        assert_eq!(e.evaluation.compared_events, vec!["p1".to_string()]);
        assert!(e.evaluation.indicator_results.is_none());
        assert_eq!(e.evaluation.result, "fail");
    }

    #[test]
    fn unparsable_criteria_are_dropped_from_empty_targets() {
        // getEmptyTargets skips criteria parseCriteriaString rejects: for an info objective and
        // for an objective without a value.
        let slo = "objectives:\n  - sli: info\n    warning:\n      - criteria: [\"=>5\", \"<7\"]\n  - sli: missing\n    pass:\n      - criteria: [\"<600ms\", \"<=+10%\", \"|3\"]\n    warning:\n      - criteria: [\"bad\"]\ntotal_score:\n  pass: \"90%\"\n";
        let e = run(
            slo,
            vec![sli("info", 1.0)],
            &[previous("p1", "missing", 200.0)],
        );
        let r = e.evaluation.indicator_results.as_ref().expect("results");
        let crit = |t: &Option<Vec<SliTarget>>| -> Vec<(String, f64)> {
            t.iter()
                .flatten()
                .map(|t| (t.criteria.clone(), t.target_value))
                .collect()
        };
        assert_eq!(r[0].status, "info");
        assert_eq!(crit(&r[0].warning_targets), vec![("<7".to_string(), 7.0)]);
        assert_eq!(r[0].pass_targets, Some(vec![]));
        assert_eq!(r[1].status, "fail");
        assert_eq!(
            crit(&r[1].pass_targets),
            vec![("<=+10%".to_string(), 200.0)]
        );
        assert_eq!(r[1].warning_targets, Some(vec![]));
    }

    #[test]
    fn unparsable_warning_criterion_means_no_warning_and_no_warning_targets() {
        // The error of the warning evaluation is ignored: isWarning=false, targets [].
        let slo = "objectives:\n  - sli: a\n    pass:\n      - criteria: [\"<1\"]\n    warning:\n      - criteria: [\"<10\", \"=>5\"]\ntotal_score:\n  pass: \"90%\"\n  warning: \"40%\"\n";
        let e = run(slo, vec![sli("a", 5.0)], &[]);
        let r = &e.evaluation.indicator_results.as_ref().expect("results")[0];
        assert_eq!(r.status, "fail");
        assert_eq!(r.score, 0.0);
        assert_eq!(r.warning_targets, Some(vec![]));
        assert_eq!(
            e.to_data()["evaluation"]["indicatorResults"][0]["warningTargets"],
            serde_json::json!([])
        );
        assert_eq!(e.result, "fail");
        // the same warning set on a passing value: still pass, targets still []
        let e = run(slo, vec![sli("a", 0.5)], &[]);
        let r = &e.evaluation.indicator_results.as_ref().expect("results")[0];
        assert_eq!(
            (r.status.as_str(), r.warning_targets.clone()),
            ("pass", Some(vec![]))
        );
    }

    #[test]
    fn leftover_slis_are_named_in_go_order() {
        let slo = "objectives:\n  - sli: b\n    pass:\n      - criteria: [\"<1\"]\ntotal_score:\n  pass: \"90%\"\n";
        let e = run(
            slo,
            vec![sli("a", 0.0), sli("b", 0.0), sli("c", 0.0), sli("d", 0.0)],
            &[],
        );
        assert_eq!(e.result, "pass");
        assert_eq!(
            e.message,
            "Lighthouse received additional SLIs, which are not specified as SLO: a, d, c . Please consider using them as an SLO."
        );
    }

    #[test]
    fn percentile_matches_lighthouse() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.5);
        assert_eq!(percentile(&v, 0.95), 10.0);
        assert_eq!(percentile(&[3.0], 0.5), 3.0);
    }

    #[test]
    fn go_float_matches_percent_v() {
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(75.3), "75.3");
        assert_eq!(go_float(66.66666666666667), "66.66666666666667");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.0), "0");
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(0.30000000000000004), "0.3");
        assert_eq!(human(212.346), "212.35");
        assert_eq!(human(600.0), "600");
        assert_eq!(human(0.000123456), "0.0001235");
    }
}
