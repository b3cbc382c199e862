//! Shipyard 0.2.x (§4.1), parsed with serde_norway, and the trigger rules of §4.2 (pure).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Shipyard {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub spec: Spec,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Spec {
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Stage {
    pub name: String,
    #[serde(default)]
    pub sequences: Vec<Sequence>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Sequence {
    pub name: String,
    #[serde(rename = "triggeredOn", default)]
    pub triggered_on: Vec<Trigger>,
    #[serde(default)]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Trigger {
    pub event: String,
    #[serde(default)]
    pub selector: Option<Selector>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Selector {
    #[serde(rename = "match", default)]
    pub match_: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Task {
    pub name: String,
    #[serde(rename = "triggeredAfter", default)]
    pub triggered_after: Option<String>,
    /// Any YAML map; `Null` when absent.
    #[serde(default)]
    pub properties: Value,
}

impl Task {
    /// `triggeredAfter` as a duration (Go `time.ParseDuration` syntax), zero when absent.
    pub fn delay(&self) -> Result<Duration, String> {
        match &self.triggered_after {
            None => Ok(Duration::ZERO),
            Some(s) => parse_go_duration(s),
        }
    }
}

/// Why a shipyard is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShipyardError {
    #[error("invalid shipyard YAML: {0}")]
    Yaml(String),
    #[error("invalid shipyard: {0}")]
    Invalid(String),
}

impl Shipyard {
    /// Parses and checks a shipyard: kind, apiVersion `spec.keptn.sh/0.2.x`, unique non-empty
    /// stage names, parseable `triggeredAfter`.
    pub fn parse(yaml: &str) -> Result<Shipyard, ShipyardError> {
        let yaml = crate::untrusted::strip_bom(yaml);
        crate::untrusted::check_yaml(yaml).map_err(|e| ShipyardError::Yaml(e.to_string()))?;
        let s: Shipyard = serde_norway::from_str(yaml).map_err(|e| {
            ShipyardError::Yaml(crate::untrusted::printable(&e.to_string()).into_owned())
        })?;
        let mut problems = Vec::new();
        if s.kind != "Shipyard" {
            problems.push(format!("kind is {:?}, expected \"Shipyard\"", s.kind));
        }
        let version_ok = s
            .api_version
            .strip_prefix("spec.keptn.sh/")
            .and_then(|v| v.strip_prefix("0."))
            .and_then(|v| v.split('.').next())
            .and_then(|minor| minor.parse::<u32>().ok())
            .is_some_and(|minor| minor >= 2);
        if !version_ok {
            problems.push(format!(
                "apiVersion {:?} is not spec.keptn.sh/0.2 or later",
                s.api_version
            ));
        }
        if s.spec.stages.is_empty() {
            problems.push("no stages".into());
        }
        let mut seen = std::collections::HashSet::new();
        for st in &s.spec.stages {
            if st.name.is_empty() || !seen.insert(st.name.as_str()) {
                problems.push(format!("stage name {:?} is empty or repeated", st.name));
            }
            for sq in &st.sequences {
                for t in &sq.tasks {
                    if let Err(e) = t.delay() {
                        problems.push(format!(
                            "{}.{}.{}: triggeredAfter: {e}",
                            st.name, sq.name, t.name
                        ));
                    }
                    if !(t.properties.is_null() || t.properties.is_object()) {
                        problems.push(format!(
                            "{}.{}.{}: properties must be a map",
                            st.name, sq.name, t.name
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(ShipyardError::Invalid(problems.join("; ")))
        }
    }

    /// The sequence `name` of `stage`, with the built-in single-task `evaluation` sequence (§4.1).
    pub fn sequence(&self, stage: &str, name: &str) -> Option<Sequence> {
        let st = self.spec.stages.iter().find(|s| s.name == stage)?;
        if let Some(sq) = st.sequences.iter().find(|s| s.name == name) {
            return Some(sq.clone());
        }
        (name == "evaluation").then(|| Sequence {
            name: "evaluation".into(),
            triggered_on: Vec::new(),
            tasks: vec![Task {
                name: "evaluation".into(),
                triggered_after: None,
                properties: Value::Null,
            }],
        })
    }

    /// The sequences to trigger after `<stage>.<sequence>.finished` (§4.2, exact):
    /// no selector fires on pass or warning; a selector fires when the result equals
    /// `match.result` or `match["<lastTask>.result"]`.
    pub fn triggered_by(
        &self,
        stage: &str,
        sequence: &str,
        result: &str,
        last_task: &str,
    ) -> Vec<(String, String)> {
        let event = format!("{stage}.{sequence}.finished");
        let mut out = Vec::new();
        for st in &self.spec.stages {
            for sq in &st.sequences {
                for t in &sq.triggered_on {
                    if t.event != event {
                        continue;
                    }
                    let fire = match t.selector.as_ref().and_then(|s| s.match_.as_ref()) {
                        None => result == "pass" || result == "warning",
                        Some(m) => {
                            m.get("result").is_some_and(|r| r == result)
                                || m.get(&format!("{last_task}.result"))
                                    .is_some_and(|r| r == result)
                        }
                    };
                    if fire {
                        out.push((st.name.clone(), sq.name.clone()));
                    }
                }
            }
        }
        out
    }
}

/// Go `time.ParseDuration` for the units a shipyard uses: `ns us µs ms s m h`, concatenated
/// (`1h30m`), decimals allowed (`1.5s`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../assets/tutorial/shipyard.yaml");

    #[test]
    fn parses_the_tutorial_seed() {
        let s = Shipyard::parse(SEED).expect("seed shipyard");
        let qa = s.sequence("qa", "delivery").expect("qa.delivery");
        let names: Vec<&str> = qa.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["je-deployment", "je-test", "evaluation"]);
        assert_eq!(qa.tasks[2].properties["timeframe"], "2m");
        assert_eq!(
            s.sequence("production", "delivery")
                .map(|q| q.tasks[0].name.clone())
                .as_deref(),
            Some("approval")
        );
        assert_eq!(
            s.sequence("qa", "evaluation").map(|q| q.tasks.len()),
            Some(1),
            "built-in evaluation"
        );
        assert!(s.sequence("qa", "rollback").is_none());
    }

    #[test]
    fn rejects_bad_shipyards_with_every_reason() {
        let bad = "apiVersion: spec.keptn.sh/0.1.0\nkind: Other\nspec:\n  stages: []\n";
        let e = Shipyard::parse(bad).expect_err("invalid");
        let m = e.to_string();
        assert!(
            m.contains("kind") && m.contains("apiVersion") && m.contains("no stages"),
            "{m}"
        );
        assert!(matches!(
            Shipyard::parse("spec: ["),
            Err(ShipyardError::Yaml(_))
        ));
    }

    const SELECTORS: &str = r#"
apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
spec:
  stages:
    - name: qa
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: qa.delivery.finished}]
        - name: rollback
          triggeredOn:
            - event: qa.delivery.finished
              selector: {match: {result: fail}}
        - name: cleanup
          triggeredOn:
            - event: qa.delivery.finished
              selector: {match: {release.result: failed}}
        - name: audit
          triggeredOn:
            - event: qa.delivery.finished
              selector: {match: {release.result: warning}}
"#;

    #[test]
    fn triggers_follow_the_exact_selector_rules() {
        let s = Shipyard::parse(SELECTORS).expect("parse");
        let fired = |r: &str, last: &str| -> Vec<String> {
            s.triggered_by("qa", "delivery", r, last)
                .into_iter()
                .map(|(st, sq)| format!("{st}.{sq}"))
                .collect()
        };
        // No selector: pass or warning (not only pass as the spec says).
        assert_eq!(fired("pass", "release"), ["production.delivery"]);
        assert_eq!(
            fired("warning", "release"),
            ["production.delivery", "production.audit"]
        );
        // `release.result` only matches when release was the last task that ran.
        assert_eq!(fired("warning", "deployment"), ["production.delivery"]);
        // `failed` never matches; `fail` does.
        assert_eq!(fired("fail", "release"), ["production.rollback"]);
        assert!(
            s.triggered_by("production", "delivery", "pass", "x")
                .is_empty()
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5 minutes").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
