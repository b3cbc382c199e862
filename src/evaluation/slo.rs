//! The `slo.yaml` model (§6.1) with lighthouse's defaults (`parseSLO`), and parse errors that
//! name the problem and, for YAML errors, the line.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::untrusted;

/// A parsed `slo.yaml`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub spec_version: String,
    /// `filter:` (becomes the SLI provider's custom filters).
    pub filter: BTreeMap<String, String>,
    pub comparison: Comparison,
    pub objectives: Vec<Objective>,
    /// `None` when the file has no `total_score` block.
    pub total_score: Option<TotalScore>,
}

/// The `comparison` block, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `single_result`, `several_results` (anything else compares 3 results, as Keptn does).
    pub compare_with: String,
    /// `all`, `pass` or `pass_or_warn` (lower-cased).
    pub include_result_with_score: String,
    pub number_of_comparison_results: i64,
    /// `avg`, `p50`, `p90`, `p95` (anything else aggregates to 0, as Keptn does).
    pub aggregate_function: String,
}

impl Comparison {
    /// How many previous evaluations relative criteria compare with (§6.1).
    pub fn number_of_previous_results(&self) -> usize {
        match self.compare_with.as_str() {
            "single_result" => 1,
            "several_results" => usize::try_from(self.number_of_comparison_results).unwrap_or(0),
            _ => 3,
        }
    }

    /// Which previous results count, as a datastore result filter: `None` = all.
    pub fn included_results(&self) -> Option<&'static [&'static str]> {
        match self.include_result_with_score.as_str() {
            "pass" => Some(&["pass"]),
            "pass_or_warn" => Some(&["pass", "warning"]),
            _ => None,
        }
    }
}

/// One objective. `pass`/`warning` are `None` when the key is absent or null, which Keptn
/// reports differently (`null`) from an empty list (`[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub sli: String,
    pub display_name: String,
    pub key_sli: bool,
    /// Never 0 (0 or missing becomes 1).
    pub weight: i64,
    pub pass: Option<Vec<CriteriaSet>>,
    pub warning: Option<Vec<CriteriaSet>>,
}

impl Objective {
    /// The name Keptn uses in messages: the display name, else the SLI.
    pub fn name(&self) -> &str {
        if self.display_name.is_empty() {
            &self.sli
        } else {
            &self.display_name
        }
    }

    pub fn has_pass(&self) -> bool {
        self.pass.as_ref().is_some_and(|p| !p.is_empty())
    }
}

/// One `- criteria: [...]` entry: all of its criteria must hold (AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CriteriaSet {
    pub criteria: Vec<String>,
}

/// `total_score`: percentages as written (`"90%"`, `90`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TotalScore {
    pub pass: String,
    pub warning: String,
}

/// Why an SLO file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("slo.yaml is not valid YAML for an SLO{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Yaml {
        line: Option<usize>,
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSlo {
    #[serde(deserialize_with = "scalar_string")]
    spec_version: String,
    #[serde(deserialize_with = "null_default")]
    filter: BTreeMap<String, ScalarString>,
    comparison: Option<RawComparison>,
    #[serde(deserialize_with = "null_default")]
    objectives: Vec<Option<RawObjective>>,
    total_score: Option<RawTotalScore>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawComparison {
    #[serde(deserialize_with = "scalar_string")]
    compare_with: String,
    #[serde(deserialize_with = "scalar_string")]
    include_result_with_score: String,
    #[serde(deserialize_with = "null_default")]
    number_of_comparison_results: i64,
    #[serde(deserialize_with = "scalar_string")]
    aggregate_function: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawObjective {
    #[serde(deserialize_with = "scalar_string")]
    sli: String,
    #[serde(rename = "displayName", deserialize_with = "scalar_string")]
    display_name: String,
    #[serde(deserialize_with = "null_default")]
    key_sli: bool,
    #[serde(deserialize_with = "null_default")]
    weight: i64,
    pass: Option<Vec<Option<RawCriteriaSet>>>,
    warning: Option<Vec<Option<RawCriteriaSet>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCriteriaSet {
    #[serde(deserialize_with = "null_default")]
    criteria: Vec<ScalarString>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTotalScore {
    #[serde(deserialize_with = "scalar_string")]
    pass: String,
    #[serde(deserialize_with = "scalar_string")]
    warning: String,
}

/// A YAML scalar read as its text, as Go's yaml decoder does for `string` fields
/// (`pass: 90` is the string "90").
#[derive(Debug, Clone, Default)]
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_norway::Value::deserialize(d)?;
        match v {
            serde_norway::Value::Null => Ok(ScalarString(String::new())),
            serde_norway::Value::Bool(b) => Ok(ScalarString(b.to_string())),
            serde_norway::Value::Number(n) => Ok(ScalarString(n.to_string())),
            serde_norway::Value::String(s) => Ok(ScalarString(s)),
            _ => Err(D::Error::custom("expected a string")),
        }
    }
}

fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(ScalarString::deserialize(d)?.0)
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn sets(raw: Option<Vec<Option<RawCriteriaSet>>>) -> Option<Vec<CriteriaSet>> {
    raw.map(|v| {
        v.into_iter()
            .flatten()
            .map(|s| CriteriaSet {
                criteria: s.criteria.into_iter().map(|c| c.0).collect(),
            })
            .collect()
    })
}

impl Slo {
    /// Parses `slo.yaml` bytes and applies Keptn's defaults.
    pub fn parse(bytes: &[u8]) -> Result<Slo, SloError> {
        let text = untrusted::utf8_text(bytes).map_err(|e| SloError::Yaml {
            line: Some(e.line),
            message: e.to_string(),
        })?;
        untrusted::check_yaml(text).map_err(|e| SloError::Yaml {
            line: e.line(),
            message: e.what(),
        })?;
        let raw: RawSlo = if text.trim().is_empty() {
            RawSlo::default()
        } else {
            serde_norway::from_str::<Option<RawSlo>>(text)
                .map_err(|e| SloError::Yaml {
                    line: e.location().map(|l| l.line()),
                    message: untrusted::printable(&e.to_string()).into_owned(),
                })?
                .unwrap_or_default()
        };
        let comparison = match raw.comparison {
            None => Comparison {
                compare_with: "single_result".into(),
                include_result_with_score: "all".into(),
                number_of_comparison_results: 1,
                aggregate_function: "avg".into(),
            },
            Some(c) => Comparison {
                compare_with: c.compare_with,
                include_result_with_score: if c.include_result_with_score.is_empty() {
                    "all".into()
                } else {
                    c.include_result_with_score.to_lowercase()
                },
                number_of_comparison_results: if c.number_of_comparison_results == 0 {
                    3
                } else {
                    c.number_of_comparison_results
                },
                aggregate_function: if c.aggregate_function.is_empty() {
                    "avg".into()
                } else {
                    c.aggregate_function
                },
            },
        };
        let objectives = raw
            .objectives
            .into_iter()
            .flatten()
            .map(|o| Objective {
                sli: o.sli,
                display_name: o.display_name,
                key_sli: o.key_sli,
                weight: if o.weight == 0 { 1 } else { o.weight },
                pass: sets(o.pass),
                warning: sets(o.warning),
            })
            .collect();
        Ok(Slo {
            spec_version: raw.spec_version,
            filter: raw.filter.into_iter().map(|(k, v)| (k, v.0)).collect(),
            comparison,
            objectives,
            total_score: raw.total_score.map(|t| TotalScore {
                pass: t.pass,
                warning: t.warning,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_comparison_block() {
        let slo = Slo::parse(
            b"objectives:\n  - sli: a\n  - null\n  - sli: b\n    weight: 2\ntotal_score:\n  pass: 90%\n  warning: 75\n",
        )
        .expect("parses");
        assert_eq!(slo.comparison.compare_with, "single_result");
        assert_eq!(slo.comparison.include_result_with_score, "all");
        assert_eq!(slo.comparison.number_of_comparison_results, 1);
        assert_eq!(slo.comparison.aggregate_function, "avg");
        assert_eq!(slo.objectives.len(), 2, "null objective dropped");
        assert_eq!(slo.objectives[0].weight, 1);
        assert_eq!(slo.objectives[1].weight, 2);
        assert!(slo.objectives[0].pass.is_none());
        let ts = slo.total_score.expect("total score");
        assert_eq!((ts.pass.as_str(), ts.warning.as_str()), ("90%", "75"));
    }

    #[test]
    fn defaults_inside_partial_comparison_block() {
        let slo = Slo::parse(b"comparison:\n  compare_with: several_results\n  include_result_with_score: PASS\nobjectives: []\n")
            .expect("parses");
        assert_eq!(slo.comparison.include_result_with_score, "pass");
        assert_eq!(slo.comparison.number_of_comparison_results, 3);
        assert_eq!(slo.comparison.aggregate_function, "avg");
        assert_eq!(slo.comparison.number_of_previous_results(), 3);
        assert_eq!(slo.comparison.included_results(), Some(&["pass"][..]));
    }

    #[test]
    fn compare_with_decides_how_many_results() {
        let mut c = Slo::parse(
            b"comparison:\n  compare_with: single_result\n  number_of_comparison_results: 5\n",
        )
        .expect("parses")
        .comparison;
        assert_eq!(c.number_of_previous_results(), 1);
        c.compare_with = "several_results".into();
        assert_eq!(c.number_of_previous_results(), 5);
        c.compare_with = String::new();
        assert_eq!(c.number_of_previous_results(), 3);
    }

    #[test]
    fn empty_lists_differ_from_absent() {
        let slo =
            Slo::parse(b"objectives:\n  - sli: a\n    pass: []\n    warning:\n").expect("parses");
        assert_eq!(slo.objectives[0].pass, Some(vec![]));
        assert_eq!(slo.objectives[0].warning, None);
        assert!(!slo.objectives[0].has_pass());
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let err =
            Slo::parse(b"objectives:\n  - sli: a\n    pass: [\n  bad: : x\n").expect_err("invalid");
        let SloError::Yaml { line, .. } = &err;
        assert!(line.is_some());
        assert!(err.to_string().contains("line"), "{err}");
        let err = Slo::parse(b"invalid").expect_err("not a mapping");
        assert!(
            matches!(err, SloError::Yaml { line: Some(1), .. }),
            "{err:?}"
        );
        let err =
            Slo::parse(b"objectives:\n  - sli: a\n    weight: heavy\n").expect_err("bad weight");
        assert!(
            matches!(err, SloError::Yaml { line: Some(3), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn empty_file_has_no_objectives() {
        let slo = Slo::parse(b"  \n").expect("parses");
        assert!(slo.objectives.is_empty());
        assert!(slo.total_score.is_none());
    }

    #[test]
    fn a_byte_order_mark_is_fine_and_deep_nesting_is_refused_before_parsing() {
        let slo = Slo::parse(b"\xEF\xBB\xBFobjectives:\n  - sli: a\n").expect("BOM");
        assert_eq!(slo.objectives.len(), 1);
        let deep = format!(
            "objectives:\n  - {}{}\n",
            "{a: ".repeat(60_000),
            "}".repeat(60_000)
        );
        let err = Slo::parse(deep.as_bytes()).expect_err("too deep");
        assert_eq!(
            err.to_string(),
            "slo.yaml is not valid YAML for an SLO (line 2): nested more than 64 levels deep"
        );
        let err = Slo::parse(b"objectives:\n  - sli: \xE9\n").expect_err("latin-1");
        assert!(err.to_string().contains("(line 2): not UTF-8"), "{err}");
    }
}
