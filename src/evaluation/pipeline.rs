//! The one evaluation pipeline, shared by the `evaluation` task handler and
//! `keptn-native evaluate`: read the SLO as lighthouse does, measure the SLIs as
//! prometheus-service does, score (pure, [`super::scoring`]), and conclude (queries attached
//! to their results, the readable summary appended to Keptn's message).
//!
//! Where the inputs come from (Keptn's resource-service, a directory, files given on the
//! command line) is the caller's business; what is done with them is decided here only.

use std::collections::BTreeMap;

use super::prometheus::{PrometheusProvider, QueryContext};
use super::scoring::{Evaluated, EvaluationDetails, EvaluationInput, SliRetrieval};
use super::slo::Slo;

/// An SLO as lighthouse's `GetSLOs` returns it: parsed, with its raw bytes for
/// `sloFileContent`.
#[derive(Debug, Clone)]
pub struct SloFile {
    pub slo: Slo,
    pub raw: Vec<u8>,
}

/// Reads `slo.yaml` content as lighthouse does: an absent or empty file is "no SLO file"
/// (`None`, evaluated as a pass); a file that does not parse gives lighthouse's message, first
/// line exactly Keptn's, then the detail.
pub fn read_slo(
    raw: Option<Vec<u8>>,
    project: &str,
    stage: &str,
    service: &str,
) -> Result<Option<SloFile>, String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match Slo::parse(&raw) {
        Ok(slo) => Ok(Some(SloFile { slo, raw })),
        Err(e) => Err(format!(
            "error retrieving SLO file: Could not parse SLO file for service {service} in stage {stage} in project {project}\n{e}"
        )),
    }
}

/// The SLIs of one evaluation and the query sent for each.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub sli: SliRetrieval,
    pub queries: BTreeMap<String, String>,
}

impl Measured {
    /// What lighthouse sees when there is nothing to measure (no SLO file).
    pub fn nothing() -> Measured {
        Measured {
            sli: SliRetrieval {
                status: "succeeded".into(),
                result: "pass".into(),
                ..Default::default()
            },
            queries: BTreeMap::new(),
        }
    }

    /// A `get-sli.finished` with status `errored` (the provider could not run).
    pub fn errored(message: String) -> Measured {
        Measured {
            sli: SliRetrieval {
                status: "errored".into(),
                result: "fail".into(),
                message,
                values: Vec::new(),
            },
            queries: BTreeMap::new(),
        }
    }
}

/// prometheus-service's part: every SLI of the SLO, queried with `templates` (the merged
/// `sli.yaml`).
pub async fn measure(
    provider: &PrometheusProvider,
    slo: &Slo,
    templates: &BTreeMap<String, String>,
    ctx: &QueryContext,
) -> Measured {
    let indicators: Vec<String> = slo.objectives.iter().map(|o| o.sli.clone()).collect();
    let got = provider.get_slis(&indicators, templates, ctx).await;
    let (result, message) = got.result();
    Measured {
        sli: SliRetrieval {
            status: "succeeded".into(),
            result: result.into(),
            message,
            values: got.values,
        },
        queries: got.queries,
    }
}

/// The scored evaluation, ready to print or send.
#[derive(Debug, Clone)]
pub struct Concluded {
    pub evaluated: Evaluated,
    /// The readable summary (also the message's last line).
    pub summary: String,
    /// Length of Keptn's own part of the message (what must never be cut).
    pub keptn_message_len: usize,
}

/// Scores (lighthouse) and concludes: queries next to their results, the summary after
/// Keptn's message.
pub fn conclude(
    input: EvaluationInput<'_>,
    slo: Option<&Slo>,
    queries: &BTreeMap<String, String>,
) -> Concluded {
    let mut evaluated = super::scoring::evaluate(input);
    for r in evaluated.evaluation.indicator_results.iter_mut().flatten() {
        if let Some(m) = r.value.as_ref().map(|v| v.metric.clone()) {
            r.query = queries.get(&m).cloned();
        }
    }
    let keptn_message_len = evaluated.message.len();
    let summary = super::scoring::summary(slo, &evaluated);
    if !summary.is_empty() {
        evaluated.message = if evaluated.message.is_empty() {
            summary.clone()
        } else {
            format!("{}\n{summary}", evaluated.message)
        };
    }
    Concluded {
        evaluated,
        summary,
        keptn_message_len,
    }
}

/// lighthouse's errored `evaluation.finished` (`sendErroredFinishedEventWithMessage` and the
/// start handler's error event): the window, the SLO content if it was read, result `fail`,
/// no results, no compared events.
pub fn errored(message: String, start: &str, end: &str, slo_raw: Option<&[u8]>) -> Evaluated {
    use base64::Engine;
    Evaluated {
        status: "errored".into(),
        result: "fail".into(),
        message,
        evaluation: EvaluationDetails {
            time_start: start.into(),
            time_end: end.into(),
            result: "fail".into(),
            slo_file_content: slo_raw
                .map(|r| base64::engine::general_purpose::STANDARD.encode(r))
                .unwrap_or_default(),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_slo_file_is_no_slo_file() {
        // GetSLOs: `sloFile.ResourceContent == ""` -> ErrSLOFileNotFound.
        assert!(
            read_slo(Some(Vec::new()), "p", "s", "svc")
                .expect("ok")
                .is_none()
        );
        assert!(read_slo(None, "p", "s", "svc").expect("ok").is_none());
        let some = read_slo(Some(b" \n".to_vec()), "p", "s", "svc").expect("ok");
        assert!(some.is_some_and(|f| f.slo.objectives.is_empty()));
    }

    #[test]
    fn unparsable_slo_first_line_is_lighthouses() {
        let e = read_slo(Some(b"objectives: [".to_vec()), "p", "dev", "carts").expect_err("bad");
        assert_eq!(
            e.lines().next(),
            Some(
                "error retrieving SLO file: Could not parse SLO file for service carts in stage dev in project p"
            )
        );
        assert!(e.lines().count() > 1, "the detail follows: {e}");
    }

    #[test]
    fn errored_carries_the_slo_but_no_compared_events() {
        let e = errored("boom".into(), "a", "b", Some(b"x"));
        let d = e.to_data();
        assert_eq!(d["status"], "errored");
        assert_eq!(d["evaluation"]["sloFileContent"], "eA==");
        assert_eq!(d["evaluation"]["indicatorResults"], serde_json::Value::Null);
        assert!(d["evaluation"].get("comparedEvents").is_none());
    }
}
