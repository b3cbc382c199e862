//! The Prometheus SLI provider (§7), as keptn-contrib/prometheus-service: `prometheus/sli.yaml`
//! merged project → stage → service, placeholder substitution, one instant query per SLI at
//! the end of the window, all SLIs concurrently.
//!
//! Unlike prometheus-service, values that come from events (labels, filters, names) cannot
//! change a query: inside a PromQL string literal they are escaped, outside one they must be
//! plain names (`[A-Za-z0-9_.:/-]`), otherwise the SLI fails with a clear message.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::keptn::payload::SliResult;

/// Serve-time settings of the evaluation task.
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Prometheus base URL, e.g. `http://prometheus-server.monitoring:80`.
    /// Variable `PROMETHEUS_ENDPOINT`; no default (evaluations with SLOs then fail their SLIs).
    #[arg(long, env = "PROMETHEUS_ENDPOINT")]
    pub prometheus_endpoint: Option<String>,
    /// Per-project Prometheus URLs, `project=url`, comma-separated.
    /// Variable `PROMETHEUS_PROJECT_ENDPOINTS`; default none.
    #[arg(long, env = "PROMETHEUS_PROJECT_ENDPOINTS", value_delimiter = ',')]
    pub prometheus_project_endpoints: Vec<String>,
    /// Basic-auth user for Prometheus. Variable `PROMETHEUS_USER`; default none.
    #[arg(long, env = "PROMETHEUS_USER")]
    pub prometheus_user: Option<String>,
    /// Basic-auth password for Prometheus. Variable `PROMETHEUS_PASSWORD`; default none.
    #[arg(long, env = "PROMETHEUS_PASSWORD", hide_env_values = true)]
    pub prometheus_password: Option<String>,
    /// Bearer token for Prometheus. Variable `PROMETHEUS_TOKEN`; default none.
    #[arg(long, env = "PROMETHEUS_TOKEN", hide_env_values = true)]
    pub prometheus_token: Option<String>,
    /// Timeout of one Prometheus query, seconds. Variable `PROMETHEUS_TIMEOUT_SECONDS`;
    /// default 30.
    #[arg(long, env = "PROMETHEUS_TIMEOUT_SECONDS")]
    pub prometheus_timeout_seconds: Option<u64>,
}

impl EvaluationConfig {
    /// Every problem with the settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(u) = &self.prometheus_endpoint
            && let Err(e) = check_url(u)
        {
            problems.push(format!("PROMETHEUS_ENDPOINT: {e}"));
        }
        for entry in &self.prometheus_project_endpoints {
            match entry.split_once('=') {
                Some((p, u)) if !p.trim().is_empty() => {
                    if let Err(e) = check_url(u.trim()) {
                        problems.push(format!("PROMETHEUS_PROJECT_ENDPOINTS {entry:?}: {e}"));
                    }
                }
                _ => problems.push(format!(
                    "PROMETHEUS_PROJECT_ENDPOINTS {entry:?}: expected project=url"
                )),
            }
        }
        if self.prometheus_password.is_some() && self.prometheus_user.is_none() {
            problems.push("PROMETHEUS_PASSWORD is set but PROMETHEUS_USER is not".into());
        }
        if self.prometheus_token.is_some() && self.prometheus_user.is_some() {
            problems
                .push("set either PROMETHEUS_USER/PASSWORD or PROMETHEUS_TOKEN, not both".into());
        }
        if self.prometheus_timeout_seconds == Some(0) {
            problems.push("PROMETHEUS_TIMEOUT_SECONDS must be at least 1".into());
        }
        problems
    }

    /// The provider settings these describe.
    pub fn prometheus(&self) -> PrometheusSettings {
        let auth = match (&self.prometheus_user, &self.prometheus_token) {
            (Some(u), _) => Auth::Basic {
                user: u.clone(),
                password: self.prometheus_password.clone().unwrap_or_default(),
            },
            (None, Some(t)) => Auth::Bearer(t.clone()),
            (None, None) => Auth::None,
        };
        PrometheusSettings {
            endpoint: self.prometheus_endpoint.clone(),
            per_project: self
                .prometheus_project_endpoints
                .iter()
                .filter_map(|e| e.split_once('='))
                .map(|(p, u)| (p.trim().to_string(), u.trim().to_string()))
                .collect(),
            auth,
            timeout: Duration::from_secs(self.prometheus_timeout_seconds.unwrap_or(30)),
        }
    }
}

fn check_url(u: &str) -> Result<(), String> {
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        Ok(url) => Err(format!("scheme {:?} is not http(s)", url.scheme())),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

/// How to authenticate to Prometheus.
#[derive(Clone, Default, PartialEq)]
pub enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

/// Where and how to query.
#[derive(Debug, Clone, Default)]
pub struct PrometheusSettings {
    pub endpoint: Option<String>,
    pub per_project: BTreeMap<String, String>,
    pub auth: Auth,
    pub timeout: Duration,
}

/// Why an `sli.yaml` cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SliConfigError {
    #[error("{level} prometheus/sli.yaml is not valid YAML{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Yaml {
        level: String,
        line: Option<usize>,
        message: String,
    },
    /// prometheus-service's text for a file without indicators.
    #[error("{0} prometheus/sli.yaml: missing required field: indicators")]
    NoIndicators(String),
}

#[derive(Deserialize)]
struct RawSli {
    #[serde(default)]
    indicators: Option<BTreeMap<String, YamlScalar>>,
}

/// A YAML scalar read into a Go `string` as prometheus-service's YAML decoder does: numbers and
/// booleans as written, `null` as `""`; lists and maps stay errors.
struct YamlScalar(String);

impl<'de> Deserialize<'de> for YamlScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::Null => Ok(YamlScalar(String::new())),
            serde_norway::Value::Bool(b) => Ok(YamlScalar(b.to_string())),
            serde_norway::Value::Number(n) => Ok(YamlScalar(n.to_string())),
            serde_norway::Value::String(s) => Ok(YamlScalar(s)),
            _ => Err(D::Error::custom("expected a query string")),
        }
    }
}

/// Merges `sli.yaml` files given in order project, stage, service (`None`: absent). Later keys
/// override earlier ones.
pub fn merge_sli_files(
    files: &[(&str, Option<&[u8]>)],
) -> Result<BTreeMap<String, String>, SliConfigError> {
    let mut out = BTreeMap::new();
    for (level, bytes) in files {
        let Some(bytes) = bytes else { continue };
        let text = String::from_utf8_lossy(bytes);
        let text = crate::untrusted::strip_bom(&text);
        crate::untrusted::check_yaml(text).map_err(|e| SliConfigError::Yaml {
            level: level.to_string(),
            line: e.line(),
            message: e.what(),
        })?;
        let raw: Option<RawSli> =
            serde_norway::from_str(text).map_err(|e| SliConfigError::Yaml {
                level: level.to_string(),
                line: e.location().map(|l| l.line()),
                message: crate::untrusted::printable(&e.to_string()).into_owned(),
            })?;
        let indicators = raw.and_then(|r| r.indicators).unwrap_or_default();
        if indicators.is_empty() {
            return Err(SliConfigError::NoIndicators(level.to_string()));
        }
        out.extend(indicators.into_iter().map(|(k, v)| (k, v.0)));
    }
    Ok(out)
}

/// What placeholders are replaced with (§7).
#[derive(Debug, Clone, Default)]
pub struct QueryContext {
    pub project: String,
    pub stage: String,
    pub service: String,
    /// `deploymentNames[0]` of the triggered event (may be empty).
    pub deployment: String,
    pub labels: BTreeMap<String, String>,
    /// The SLO's `filter:` block.
    pub filters: BTreeMap<String, String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Why a query could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "the value of {placeholder} ({value:?}) may only be used inside a quoted string in the query, or must be a plain name"
    )]
    Unsafe { placeholder: String, value: String },
    #[error("the value of {0} contains a backtick and cannot be used inside a `raw string`")]
    Backtick(String),
}

struct Sub {
    placeholder: String,
    value: String,
    /// Computed by us, not taken from an event.
    trusted: bool,
}

impl QueryContext {
    /// `$DEPLOYMENT`: a `deployment` label wins, then the event's deployment name, else
    /// `primary`.
    fn deployment(&self) -> String {
        if let Some(d) = self.labels.get("deployment") {
            return d.clone();
        }
        if self.deployment.is_empty() {
            "primary".into()
        } else {
            self.deployment.clone()
        }
    }

    fn subs(&self) -> Vec<Sub> {
        let mut subs = Vec::new();
        let ev = |p: String, v: String| Sub {
            placeholder: p,
            value: v,
            trusted: false,
        };
        for (k, v) in &self.filters {
            let v: String = v.chars().filter(|c| *c != '\'' && *c != '"').collect();
            subs.push(ev(format!("${k}"), v.clone()));
            subs.push(ev(format!("${}", k.to_uppercase()), v));
        }
        subs.push(ev("$PROJECT".into(), self.project.clone()));
        subs.push(ev("$STAGE".into(), self.stage.clone()));
        subs.push(ev("$SERVICE".into(), self.service.clone()));
        subs.push(ev("$DEPLOYMENT".into(), self.deployment()));
        // Longest label keys first so that `$LABEL.ab` is not read as `$LABEL.a` + "b".
        let mut labels: Vec<_> = self.labels.iter().collect();
        labels.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (k, v) in labels {
            subs.push(ev(format!("$LABEL.{k}"), v.clone()));
        }
        let secs = ((self.end - self.start).num_milliseconds() as f64 / 1000.0).ceil() as i64;
        subs.push(Sub {
            placeholder: "$DURATION_SECONDS".into(),
            value: format!("{secs}s"),
            trusted: true,
        });
        subs
    }

    /// Replaces the placeholders of a query template. Event values inside `"..."` or `'...'`
    /// are escaped; outside a string literal they must be plain names.
    pub fn render(&self, template: &str) -> Result<String, QueryError> {
        let subs = self.subs();
        let mut out = String::with_capacity(template.len() + 64);
        let mut quote: Option<char> = None;
        let mut chars = template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match (quote, c) {
                (Some(q), '\\') if q != '`' => {
                    out.push(c);
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                    continue;
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    out.push(c);
                    continue;
                }
                (None, '"' | '\'' | '`') => {
                    quote = Some(c);
                    out.push(c);
                    continue;
                }
                (_, '$') => {}
                _ => {
                    out.push(c);
                    continue;
                }
            }
            let rest = &template[i..];
            let Some(sub) = subs.iter().find(|s| rest.starts_with(&s.placeholder)) else {
                out.push(c);
                continue;
            };
            out.push_str(&escape(sub, quote)?);
            // skip the rest of the placeholder
            for _ in 1..sub.placeholder.chars().count() {
                chars.next();
            }
        }
        Ok(out)
    }
}

fn escape(sub: &Sub, quote: Option<char>) -> Result<String, QueryError> {
    match quote {
        Some('`') if sub.value.contains('`') => Err(QueryError::Backtick(sub.placeholder.clone())),
        Some('`') => Ok(sub.value.clone()),
        Some(q) => {
            let mut s = String::with_capacity(sub.value.len());
            for c in sub.value.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    c if c == q => {
                        s.push('\\');
                        s.push(c);
                    }
                    c => s.push(c),
                }
            }
            Ok(s)
        }
        None if sub.trusted => Ok(sub.value.clone()),
        None => {
            let plain = sub
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-'));
            if plain {
                Ok(sub.value.clone())
            } else {
                Err(QueryError::Unsafe {
                    placeholder: sub.placeholder.clone(),
                    value: sub.value.clone(),
                })
            }
        }
    }
}

/// Reads one instant-query answer: exactly one finite sample (§7's messages).
pub fn extract_value(body: &Value) -> Result<f64, String> {
    if body.get("status").and_then(Value::as_str) != Some("success") {
        let err = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(format!("unable to query prometheus api: {err}"));
    }
    let data = body.get("data").unwrap_or(&Value::Null);
    let ty = data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if ty != "vector" {
        return Err(format!(
            "prometheus api response is not a Vector: result type {ty:?}"
        ));
    }
    let samples = data
        .get("result")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match samples.len() {
        0 => return Err("query did not return any values".into()),
        1 => {}
        n => {
            return Err(format!(
                "query did return multiple values ({n} series; aggregate them, e.g. with sum())"
            ));
        }
    }
    let v = samples[0]
        .get("value")
        .and_then(|v| v.get(1))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<f64>().ok());
    match v {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err("query did not return valid values".into()),
    }
}

/// An SLI provider over one Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusProvider {
    client: reqwest::Client,
    settings: PrometheusSettings,
}

/// The result of retrieving all SLIs of an evaluation.
#[derive(Debug, Clone, Default)]
pub struct SliValues {
    pub values: Vec<SliResult>,
    /// The query sent per SLI (absent when none could be built).
    pub queries: BTreeMap<String, String>,
}

impl SliValues {
    /// prometheus-service's overall result: pass if all succeeded, fail if all failed (with
    /// "unable to retrieve metrics"), warning otherwise.
    pub fn result(&self) -> (&'static str, String) {
        let failed = self.values.iter().filter(|v| !v.success).count();
        if failed == 0 {
            ("pass", String::new())
        } else if failed == self.values.len() {
            ("fail", "unable to retrieve metrics".into())
        } else {
            ("warning", String::new())
        }
    }
}

impl PrometheusProvider {
    pub fn new(client: reqwest::Client, settings: PrometheusSettings) -> Self {
        PrometheusProvider { client, settings }
    }

    /// The Prometheus URL for a project (override, else the default).
    pub fn endpoint(&self, project: &str) -> Option<&str> {
        self.settings
            .per_project
            .get(project)
            .or(self.settings.endpoint.as_ref())
            .map(String::as_str)
    }

    /// Queries every SLI concurrently, in the order given.
    pub async fn get_slis(
        &self,
        indicators: &[String],
        templates: &BTreeMap<String, String>,
        ctx: &QueryContext,
    ) -> SliValues {
        let endpoint = self.endpoint(&ctx.project);
        let jobs = indicators.iter().map(|name| async move {
            let fail = |message: String| SliResult {
                metric: name.clone(),
                success: false,
                message,
                ..Default::default()
            };
            let Some(template) = templates.get(name) else {
                return (
                    fail(format!(
                        "unsupported SLI {name}: no query for it in prometheus/sli.yaml"
                    )),
                    None,
                );
            };
            let query = match ctx.render(template) {
                Ok(q) => q,
                Err(e) => return (fail(e.to_string()), None),
            };
            let Some(endpoint) = endpoint else {
                return (
                    fail("no Prometheus endpoint configured (PROMETHEUS_ENDPOINT)".into()),
                    Some(query),
                );
            };
            let r = match self.query(endpoint, &query, ctx.end).await {
                Ok(v) => SliResult {
                    metric: name.clone(),
                    value: v,
                    success: true,
                    ..Default::default()
                },
                Err(m) => fail(m),
            };
            (r, Some(query))
        });
        let mut out = SliValues::default();
        for (r, q) in futures::future::join_all(jobs).await {
            if let Some(q) = q {
                out.queries.insert(r.metric.clone(), q);
            }
            out.values.push(r);
        }
        out
    }

    /// One instant query at `time`.
    pub async fn query(
        &self,
        endpoint: &str,
        query: &str,
        time: DateTime<Utc>,
    ) -> Result<f64, String> {
        let url = format!("{}/api/v1/query", endpoint.trim_end_matches('/'));
        let t = format!("{:.3}", time.timestamp_millis() as f64 / 1000.0);
        let mut req = self
            .client
            .post(&url)
            .timeout(self.settings.timeout)
            .form(&[("query", query), ("time", t.as_str())]);
        req = match &self.settings.auth {
            Auth::None => req,
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("unable to query prometheus api: {}", e.without_url()))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&body) {
            Ok(v) if v.get("status").is_some() => extract_value(&v),
            _ => {
                let snippet: String = body.chars().take(200).collect();
                Err(format!(
                    "unable to query prometheus api: HTTP {status}: {snippet}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> QueryContext {
        let t = |s| crate::keptn::time::parse_keptn(s).expect("time");
        QueryContext {
            project: "fulltour".into(),
            stage: "qa".into(),
            service: "helloservice".into(),
            deployment: String::new(),
            labels: BTreeMap::from([("buildId".into(), "42".into())]),
            filters: BTreeMap::from([("handler".into(), "'items'".into())]),
            start: t("2023-12-01T10:00:00.000Z"),
            end: t("2023-12-01T10:02:00.500Z"),
        }
    }

    #[test]
    fn renders_keptn_placeholders() {
        let q = ctx()
            .render(r#"sum(rate(x{job="$SERVICE-$PROJECT-$STAGE",d="$DEPLOYMENT",b="$LABEL.buildId",h="$handler",H="$HANDLER"}[$DURATION_SECONDS]))"#)
            .expect("renders");
        assert_eq!(
            q,
            r#"sum(rate(x{job="helloservice-fulltour-qa",d="primary",b="42",h="items",H="items"}[121s]))"#
        );
        let mut c = ctx();
        c.deployment = "canary".into();
        assert_eq!(c.render("$DEPLOYMENT").expect("ok"), "canary");
        c.labels.insert("deployment".into(), "blue".into());
        assert_eq!(c.render("$DEPLOYMENT").expect("ok"), "blue");
    }

    #[test]
    fn event_values_cannot_leave_a_string_literal() {
        let mut c = ctx();
        c.labels
            .insert("evil".into(), r#"x"} or vector(1) or x{a=""#.into());
        let q = c.render(r#"up{a="$LABEL.evil"}"#).expect("escaped");
        assert_eq!(q, r#"up{a="x\"} or vector(1) or x{a=\""}"#);
        let q = c.render(r"up{a='$LABEL.evil'}").expect("escaped");
        assert_eq!(q, r#"up{a='x"} or vector(1) or x{a="'}"#);
        c.labels.insert("bs".into(), r#"a\"#.into());
        assert_eq!(
            c.render(r#"up{a="$LABEL.bs"}"#).expect("ok"),
            r#"up{a="a\\"}"#
        );
        // outside a literal only plain names are allowed
        let err = c.render("up{} or $LABEL.evil").expect_err("unsafe");
        assert!(matches!(err, QueryError::Unsafe { .. }), "{err}");
        assert_eq!(c.render("up_$LABEL.buildId").expect("plain"), "up_42");
        c.labels.insert("tick".into(), "a`b".into());
        assert!(c.render("up{a=`$LABEL.tick`}").is_err());
    }

    #[test]
    fn extracts_exactly_one_sample() {
        let vec = |r: Value| json!({"status":"success","data":{"resultType":"vector","result": r}});
        assert_eq!(
            extract_value(&vec(json!([{"metric":{},"value":[1, "0.25"]}]))),
            Ok(0.25)
        );
        assert_eq!(
            extract_value(&vec(json!([]))),
            Err("query did not return any values".into())
        );
        assert!(
            extract_value(&vec(json!([{"value":[1,"1"]},{"value":[1,"2"]}])))
                .expect_err("many")
                .starts_with("query did return multiple values")
        );
        assert_eq!(
            extract_value(&vec(json!([{"value":[1,"NaN"]}]))),
            Err("query did not return valid values".into())
        );
        assert!(
            extract_value(
                &json!({"status":"success","data":{"resultType":"scalar","result":[1,"1"]}})
            )
            .expect_err("scalar")
            .starts_with("prometheus api response is not a Vector")
        );
        assert_eq!(
            extract_value(&json!({"status":"error","errorType":"bad_data","error":"parse error"})),
            Err("unable to query prometheus api: parse error".into())
        );
    }

    #[test]
    fn sli_files_merge_and_validate() {
        let p = b"indicators:\n  a: up\n  b: down\n";
        let s = b"indicators:\n  b: sideways\n";
        let m = merge_sli_files(&[("project", Some(p)), ("stage", None), ("service", Some(s))])
            .expect("ok");
        assert_eq!(m["a"], "up");
        assert_eq!(m["b"], "sideways");
        assert!(matches!(
            merge_sli_files(&[("service", Some(b"spec_version: '1.0'\n"))]),
            Err(SliConfigError::NoIndicators(_))
        ));
        assert!(matches!(
            merge_sli_files(&[("stage", Some(b"indicators: [\n"))]),
            Err(SliConfigError::Yaml { line: Some(_), .. })
        ));
    }

    #[test]
    fn config_validation_reports_every_problem() {
        let c = EvaluationConfig {
            prometheus_endpoint: Some("ftp://x".into()),
            prometheus_project_endpoints: vec!["nope".into(), "p=http://ok".into()],
            prometheus_password: Some("pw".into()),
            prometheus_timeout_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(c.validate().len(), 4, "{:?}", c.validate());
        let ok = EvaluationConfig {
            prometheus_endpoint: Some("http://prom:9090".into()),
            prometheus_project_endpoints: vec!["p=http://other".into()],
            ..Default::default()
        };
        assert!(ok.validate().is_empty());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = PrometheusProvider::new(reqwest::Client::new(), ok.prometheus());
        assert_eq!(provider.endpoint("p"), Some("http://other"));
        assert_eq!(provider.endpoint("q"), Some("http://prom:9090"));
        assert!(!format!("{:?}", Auth::Bearer("secret".into())).contains("secret"));
    }

    #[test]
    fn sli_values_are_read_like_go_yaml_strings() {
        // prometheus-service decodes into map[string]string: scalars are their text.
        let m = merge_sli_files(&[(
            "service",
            Some(b"indicators:\n  one: 1\n  q: up\n".as_slice()),
        )])
        .expect("scalars accepted");
        assert_eq!(m["one"], "1");
        assert_eq!(m["q"], "up");
        assert!(
            merge_sli_files(&[("service", Some(b"indicators:\n  q: [a]\n".as_slice()))]).is_err()
        );
    }
}
