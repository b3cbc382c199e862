//! Typed views of Keptn event data (§2). Handlers deserialize the part they need from the
//! triggered event's `data` with [`super::golike`], which reads it as the Go side does:
//! unknown fields ignored, `null` = absent, field names matched case-insensitively. Each
//! type's [`GoShape`] lists the fields of its go-utils struct.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::golike::{Field, GoShape, GoStruct};

/// `EventData`'s fields (embedded in every task's data).
const EVENT_DATA: &[(&str, Field)] = &[
    ("project", Field::Plain),
    ("stage", Field::Plain),
    ("service", Field::Plain),
    ("labels", Field::StringMap),
    ("status", Field::Plain),
    ("result", Field::Plain),
    ("message", Field::Plain),
];

/// `v0_2_0.EventData`.
pub static EVENT_DATA_SHAPE: GoStruct = GoStruct(&[EVENT_DATA]);
static APPROVAL_SHAPE: GoStruct = GoStruct(&[&[("pass", Field::Plain), ("warning", Field::Plain)]]);
static DEPLOYMENT_SHAPE: GoStruct = GoStruct(&[&[
    ("deploymentURIsLocal", Field::StringList),
    ("deploymentURIsPublic", Field::StringList),
    ("deploymentstrategy", Field::Plain),
    ("deploymentNames", Field::StringList),
]]);
static CONFIGURATION_CHANGE_SHAPE: GoStruct = GoStruct(&[&[("values", Field::Plain)]]);
static TEST_SHAPE: GoStruct = GoStruct(&[&[
    ("teststrategy", Field::Plain),
    ("start", Field::Plain),
    ("end", Field::Plain),
]]);
static EVALUATION_SHAPE: GoStruct = GoStruct(&[&[
    ("start", Field::Plain),
    ("end", Field::Plain),
    ("timeframe", Field::Plain),
]]);
static APPROVAL_TRIGGERED_SHAPE: GoStruct = GoStruct(&[
    EVENT_DATA,
    &[
        ("approval", Field::Struct(&APPROVAL_SHAPE)),
        // Read apart, as approval-service reads it (see `ApprovalTriggered::evaluation_result`).
        ("evaluation", Field::Plain),
    ],
]);
static DEPLOYMENT_TRIGGERED_SHAPE: GoStruct = GoStruct(&[
    EVENT_DATA,
    &[
        (
            "configurationChange",
            Field::Struct(&CONFIGURATION_CHANGE_SHAPE),
        ),
        ("deployment", Field::Struct(&DEPLOYMENT_SHAPE)),
    ],
]);
static TEST_TRIGGERED_SHAPE: GoStruct = GoStruct(&[
    EVENT_DATA,
    &[
        ("test", Field::Struct(&TEST_SHAPE)),
        ("deployment", Field::Struct(&DEPLOYMENT_SHAPE)),
    ],
]);
static EVALUATION_TRIGGERED_SHAPE: GoStruct = GoStruct(&[
    EVENT_DATA,
    &[
        ("evaluation", Field::Struct(&EVALUATION_SHAPE)),
        ("test", Field::Struct(&TEST_SHAPE)),
        ("deployment", Field::Struct(&DEPLOYMENT_SHAPE)),
    ],
]);

impl GoShape for EventData {
    const SHAPE: &'static GoStruct = &EVENT_DATA_SHAPE;
}
impl GoShape for ApprovalTriggered {
    const SHAPE: &'static GoStruct = &APPROVAL_TRIGGERED_SHAPE;
}
impl GoShape for DeploymentTriggered {
    const SHAPE: &'static GoStruct = &DEPLOYMENT_TRIGGERED_SHAPE;
}
impl GoShape for TestTriggered {
    const SHAPE: &'static GoStruct = &TEST_TRIGGERED_SHAPE;
}
impl GoShape for EvaluationTriggered {
    const SHAPE: &'static GoStruct = &EVALUATION_TRIGGERED_SHAPE;
}

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
    /// Kept raw: approval-service decodes it separately and falls back to `""` when it does
    /// not decode.
    #[serde(default)]
    pub evaluation: Option<Value>,
}

impl ApprovalTriggered {
    /// `data.evaluation.result` as approval-service's `getResult` reads it: the whole data
    /// decoded as `EvaluationFinishedEventData`; any field of the wrong type there gives `""`.
    pub fn evaluation_result(&self) -> String {
        self.evaluation
            .as_ref()
            .and_then(|v| super::golike::from_value::<EvaluationSummary>(v).ok())
            .map(|e| e.result)
            .unwrap_or_default()
    }
}

/// The scalar part of `EvaluationDetails` (`data.evaluation` of `evaluation.finished`), with
/// Go's types, so that a value Go cannot decode is an error here too.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationSummary {
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub score: f64,
    #[serde(rename = "timeStart", default)]
    pub time_start: String,
    #[serde(rename = "timeEnd", default)]
    pub time_end: String,
    #[serde(rename = "sloFileContent", default)]
    pub slo_file_content: String,
    #[serde(rename = "indicatorResults", default)]
    pub indicator_results: Vec<Value>,
    #[serde(rename = "comparedEvents", default)]
    pub compared_events: Vec<String>,
}

static EVALUATION_SUMMARY_SHAPE: GoStruct = GoStruct(&[&[
    ("timeStart", Field::Plain),
    ("timeEnd", Field::Plain),
    ("result", Field::Plain),
    ("score", Field::Plain),
    ("sloFileContent", Field::Plain),
    ("indicatorResults", Field::Plain),
    ("comparedEvents", Field::StringList),
]]);

impl GoShape for EvaluationSummary {
    const SHAPE: &'static GoStruct = &EVALUATION_SUMMARY_SHAPE;
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
        assert_eq!(d.evaluation_result(), "warning");
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
