//! Typed views of Keptn event data (§2). Handlers deserialize the part they need from the
//! triggered event's `data`; unknown fields are ignored, as the Go side does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `data.status` (`gu:pkg/lib/v0_2_0/status.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusType {
    Succeeded,
    Errored,
    Unknown,
    Aborted,
}

impl StatusType {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusType::Succeeded => "succeeded",
            StatusType::Errored => "errored",
            StatusType::Unknown => "unknown",
            StatusType::Aborted => "aborted",
        }
    }
}

/// `data.result` (`gu:pkg/lib/v0_2_0/result.go`). Keptn only ever produces `fail`, never `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultType {
    Pass,
    Warning,
    Fail,
}

impl ResultType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::Pass => "pass",
            ResultType::Warning => "warning",
            ResultType::Fail => "fail",
        }
    }

    /// Parses a result string; anything unknown (including empty) is `None`.
    pub fn parse(s: &str) -> Option<ResultType> {
        match s {
            "pass" => Some(ResultType::Pass),
            "warning" => Some(ResultType::Warning),
            "fail" => Some(ResultType::Fail),
            _ => None,
        }
    }
}

/// The common part of every task event (`EventData`, §2.1). `status` and `result` are kept as
/// strings because triggered events may carry values we must pass on unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stage: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `data.approval` of `approval.triggered` (§2.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStrategy {
    #[serde(default)]
    pub pass: String,
    #[serde(default)]
    pub warning: String,
}

/// `approval.triggered` data (§2.2): the common part, the strategy and, for the
/// `evaluation.result` fallback (keptn/keptn#4391), the evaluation of the previous task.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApprovalTriggered {
    #[serde(flatten)]
    pub common: EventData,
    #[serde(default)]
    pub approval: ApprovalStrategy,
    #[serde(default)]
    pub evaluation: Option<EvaluationSummary>,
}

/// The part of `data.evaluation` that later tasks read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationSummary {
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub score: Option<f64>,
}

/// `data.deployment` on triggered events (§2.3, §2.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetails {
    #[serde(
        rename = "deploymentURIsLocal",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub uris_local: Vec<String>,
    #[serde(
        rename = "deploymentURIsPublic",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uris_public: Vec<String>,
    #[serde(rename = "deploymentstrategy", default)]
    pub strategy: String,
    #[serde(
        rename = "deploymentNames",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
}

/// `data.configurationChange` (§2.3): the image is `values.image`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationChange {
    #[serde(default)]
    pub values: serde_json::Map<String, Value>,
}

/// `deployment.triggered` data (§2.3).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeploymentTriggered {
    #[serde(flatten)]
    pub common: EventData,
    #[serde(rename = "configurationChange", default)]
    pub configuration_change: ConfigurationChange,
    #[serde(default)]
    pub deployment: DeploymentDetails,
}

impl DeploymentTriggered {
    /// `configurationChange.values.image`, as the CLI and shipyard-controller set it.
    pub fn image(&self) -> Option<&str> {
        self.configuration_change
            .values
            .get("image")
            .and_then(Value::as_str)
    }
}

/// `data.test` on `test.triggered` (§2.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestDetails {
    #[serde(default)]
    pub teststrategy: String,
    /// Present on `test.finished` and on later tasks' triggered events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `test.triggered` data (§2.4).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestTriggered {
    #[serde(flatten)]
    pub common: EventData,
    #[serde(default)]
    pub test: TestDetails,
    #[serde(default)]
    pub deployment: DeploymentDetails,
}

impl TestTriggered {
    /// `deploymentURIsLocal[0]`, else `deploymentURIsPublic[0]` (jmeter-service's rule; lists
    /// carry the newest entry first, §4.3).
    pub fn target_uri(&self) -> Option<&str> {
        self.deployment
            .uris_local
            .first()
            .or_else(|| self.deployment.uris_public.first())
            .map(String::as_str)
    }
}

/// `data.evaluation` on `evaluation.triggered` (§2.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationTriggeredDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
}

/// `evaluation.triggered` data (§2.5).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationTriggered {
    #[serde(flatten)]
    pub common: EventData,
    #[serde(default)]
    pub evaluation: EvaluationTriggeredDetails,
    #[serde(default)]
    pub test: TestDetails,
    #[serde(default)]
    pub deployment: DeploymentDetails,
}

/// One SLI value as an SLI provider returns it (`get-sli.finished` `indicatorValues`, §2.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliResult {
    pub metric: String,
    #[serde(default)]
    pub value: f64,
    #[serde(rename = "comparedValue", default)]
    pub compared_value: f64,
    #[serde(default)]
    pub success: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `get-sli.triggered` `data.get-sli` (§2.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetSliTriggered {
    #[serde(rename = "sliProvider", default)]
    pub sli_provider: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<String>,
    #[serde(
        rename = "customFilters",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub custom_filters: Vec<SliFilter>,
}

/// A `{key, value}` custom filter from the SLO's `filter:` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliFilter {
    pub key: String,
    pub value: String,
}

/// `get-sli.finished` `data.get-sli` (§2.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetSliFinished {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(
        rename = "indicatorValues",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub indicator_values: Vec<SliResult>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approval_triggered_reads_strategy_and_evaluation() {
        let d: ApprovalTriggered = serde_json::from_value(json!({
            "project": "sockshop", "stage": "staging", "service": "carts",
            "labels": {"buildId": "42"}, "result": "warning", "status": "succeeded",
            "approval": {"pass": "automatic", "warning": "manual"},
            "evaluation": {"result": "warning", "score": 80}
        }))
        .expect("decodes");
        assert_eq!(d.common.labels["buildId"], "42");
        assert_eq!(d.approval.warning, "manual");
        assert_eq!(d.evaluation.map(|e| e.result).as_deref(), Some("warning"));
    }

    #[test]
    fn deployment_uris_may_be_null() {
        let d: DeploymentTriggered = serde_json::from_value(json!({
            "project": "p", "stage": "s", "service": "svc",
            "configurationChange": {"values": {"image": "ghcr.io/x/y:v1"}},
            "deployment": {"deploymentURIsLocal": null, "deploymentstrategy": "direct"}
        }))
        .expect("decodes");
        assert!(d.deployment.uris_local.is_empty());
        assert_eq!(d.image(), Some("ghcr.io/x/y:v1"));
    }

    #[test]
    fn test_target_prefers_local_then_public() {
        let mut t = TestTriggered::default();
        assert_eq!(t.target_uri(), None);
        t.deployment.uris_public = vec!["http://public".into()];
        assert_eq!(t.target_uri(), Some("http://public"));
        t.deployment.uris_local = vec!["http://new".into(), "http://old".into()];
        assert_eq!(t.target_uri(), Some("http://new"));
    }
}
