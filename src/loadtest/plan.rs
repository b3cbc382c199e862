//! The native load-test plan (pure): the YAML model stored as a Keptn resource, its
//! validation into a runnable [`Workload`], the choice of workload by `test.teststrategy`,
//! and the thresholds that decide the result.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::Summary;

/// A plan file: one or more workloads, chosen by `test.teststrategy`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Optional marker, for humans; any value is accepted.
    #[serde(default)]
    pub version: Option<String>,
    pub workloads: Vec<WorkloadSpec>,
}

/// One workload as written in YAML.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Matched against `data.test.teststrategy`; absent = the default workload.
    #[serde(default)]
    pub teststrategy: Option<String>,
    /// Target when the event carries no deployment URI (e.g. `http://svc.ns:80`).
    #[serde(default)]
    pub host: Option<String>,
    /// Closed model: concurrent users (default 1).
    #[serde(default)]
    pub users: Option<u32>,
    /// Closed model: users started per second (default: all at once).
    #[serde(default)]
    pub spawn_rate: Option<f64>,
    /// Closed model: pause after each task.
    #[serde(default)]
    pub wait_time: Option<WaitTime>,
    /// Open model: requests started per second, whatever the target does.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open model: most requests in flight at once (default 1000); beyond it starts queue.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// How long to run (`30s`, `2m`, `1h30m`); default 1m unless `iterations` is set.
    #[serde(default)]
    pub run_time: Option<String>,
    /// Stop after this many tasks in total.
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Per-request timeout (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Single-request tasks, picked by weight.
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
    /// Thresholds; absent = `error_ratio` must be 0 (locust's exit-code rule).
    #[serde(default)]
    pub thresholds: Option<Vec<Threshold>>,
}

/// Think time after each task (locust's `wait_time`). In YAML: `{between: [a, b]}`,
/// `{constant: x}` or `{constant_throughput: x}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "WaitTimeSpec")]
pub enum WaitTime {
    /// Uniformly random between the two bounds, in seconds.
    Between([f64; 2]),
    /// Always this many seconds.
    Constant(f64),
    /// Each user runs at most this many tasks per second (pads the task's own time).
    ConstantThroughput(f64),
}

/// The YAML shape of [`WaitTime`]: exactly one key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitTimeSpec {
    between: Option<[f64; 2]>,
    constant: Option<f64>,
    constant_throughput: Option<f64>,
}

impl TryFrom<WaitTimeSpec> for WaitTime {
    type Error = String;
    fn try_from(s: WaitTimeSpec) -> Result<Self, String> {
        match (s.between, s.constant, s.constant_throughput) {
            (Some(b), None, None) => Ok(WaitTime::Between(b)),
            (None, Some(c), None) => Ok(WaitTime::Constant(c)),
            (None, None, Some(t)) => Ok(WaitTime::ConstantThroughput(t)),
            _ => Err("wait_time needs exactly one of `between: [a, b]`, `constant: x`, `constant_throughput: x`".into()),
        }
    }
}

/// One request as written in YAML.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Statistics are grouped by this name (default: `METHOD path`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body.
    #[serde(default)]
    pub body: Option<String>,
    /// JSON body (sets `content-type: application/json`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    #[serde(default = "one")]
    pub weight: u32,
}

fn default_method() -> String {
    "GET".into()
}
fn one() -> u32 {
    1
}

/// A metric a threshold looks at, over all requests or one request name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// failures / requests
    ErrorRatio,
    Failures,
    Requests,
    /// requests per second
    Rps,
    P50Ms,
    P90Ms,
    P95Ms,
    P99Ms,
    MaxMs,
}

impl Metric {
    /// The name as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ErrorRatio => "error_ratio",
            Metric::Failures => "failures",
            Metric::Requests => "requests",
            Metric::Rps => "rps",
            Metric::P50Ms => "p50_ms",
            Metric::P90Ms => "p90_ms",
            Metric::P95Ms => "p95_ms",
            Metric::P99Ms => "p99_ms",
            Metric::MaxMs => "max_ms",
        }
    }
}

/// What happens when a threshold is not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Fail,
    Warn,
}

/// `metric` must be `<= max` and/or `>= min`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub metric: Metric,
    /// Only this request name (default: all requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default)]
    pub action: Action,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub name: String,
    pub method: http::Method,
    /// Origin-form path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: bytes::Bytes,
}

/// What a user does once per iteration: its requests in order, then the think time.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    pub weight: u32,
    pub requests: Vec<Request>,
}

/// How load is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// `users` loops, each started `1/spawn_rate` s after the previous one.
    Closed {
        users: u32,
        spawn_rate: f64,
        wait: Option<WaitTime>,
    },
    /// Tasks started at a constant rate, latency measured from the intended start.
    Open { rate: f64, max_in_flight: u32 },
}

/// A validated, runnable workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub host: Option<String>,
    pub model: Model,
    pub run_time: Option<Duration>,
    pub iterations: Option<u64>,
    pub timeout: Duration,
    pub tasks: Vec<Task>,
    pub thresholds: Vec<Threshold>,
}

/// A problem in a plan, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {what}")]
pub struct PlanError {
    pub file: String,
    pub what: String,
}

/// Default run time when neither run time nor iterations are given.
pub const DEFAULT_RUN_TIME: Duration = Duration::from_secs(60);
/// Longest per-request timeout a plan may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The rule locust applies by default: any failed request fails the run.
pub fn default_thresholds() -> Vec<Threshold> {
    vec![Threshold {
        metric: Metric::ErrorRatio,
        request: None,
        max: Some(0.0),
        min: None,
        action: Action::Fail,
    }]
}

/// Parses locust-style durations: `90`, `30s`, `2m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        let n: f64 = num.parse().ok()?;
        total += n * unit;
        num.clear();
    }
    if !num.is_empty() {
        return None;
    }
    Duration::try_from_secs_f64(total).ok()
}

impl PlanFile {
    /// Parses YAML; errors carry serde's line and column.
    pub fn parse(file: &str, text: &str) -> Result<PlanFile, PlanError> {
        let text = crate::untrusted::strip_bom(text);
        crate::untrusted::check_yaml(text).map_err(|e| PlanError {
            file: file.into(),
            what: e.to_string(),
        })?;
        serde_norway::from_str(text).map_err(|e| PlanError {
            file: file.into(),
            what: format!(
                "{} (see docs/loadtest.md for the plan schema)",
                crate::untrusted::printable(&e.to_string())
            ),
        })
    }

    /// The workload for `teststrategy`: an exact match, else the one without `teststrategy`.
    pub fn select(&self, file: &str, teststrategy: &str) -> Result<&WorkloadSpec, PlanError> {
        let wanted = teststrategy.trim();
        self.workloads
            .iter()
            .find(|w| !wanted.is_empty() && w.teststrategy.as_deref() == Some(wanted))
            .or_else(|| self.workloads.iter().find(|w| w.teststrategy.is_none()))
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .workloads
                    .iter()
                    .filter_map(|w| w.teststrategy.as_deref())
                    .collect();
                PlanError {
                    file: file.into(),
                    what: format!(
                        "no workload for teststrategy {wanted:?} and no default workload (one without `teststrategy`); workloads: {known:?}"
                    ),
                }
            })
    }
}

impl WorkloadSpec {
    /// Checks every field and returns a runnable workload, or every problem found.
    pub fn validate(&self, file: &str) -> Result<Workload, PlanError> {
        let mut problems = Vec::new();
        let model = match self.rate {
            Some(rate) => {
                if !(rate.is_finite() && rate > 0.0) {
                    problems.push(format!("rate must be > 0, got {rate}"));
                }
                if self.users.is_some() || self.spawn_rate.is_some() || self.wait_time.is_some() {
                    problems.push(
                        "`rate` (open model) cannot be combined with `users`, `spawn_rate` or `wait_time` (closed model)".into(),
                    );
                }
                let max_in_flight = self.max_in_flight.unwrap_or(1000);
                if max_in_flight == 0 {
                    problems.push("max_in_flight must be > 0".into());
                }
                Model::Open {
                    rate,
                    max_in_flight,
                }
            }
            None => {
                let users = self.users.unwrap_or(1);
                if users == 0 {
                    problems.push("users must be > 0".into());
                }
                let spawn_rate = self.spawn_rate.unwrap_or(f64::from(users.max(1)));
                if !(spawn_rate.is_finite() && spawn_rate > 0.0) {
                    problems.push(format!("spawn_rate must be > 0, got {spawn_rate}"));
                }
                if let Some(w) = &self.wait_time
                    && let Err(e) = check_wait(w)
                {
                    problems.push(e);
                }
                if self.max_in_flight.is_some() {
                    problems.push("`max_in_flight` only applies with `rate`".into());
                }
                Model::Closed {
                    users,
                    spawn_rate,
                    wait: self.wait_time,
                }
            }
        };
        let run_time = match &self.run_time {
            Some(s) => match parse_duration(s) {
                Some(d) if !d.is_zero() => Some(d),
                _ => {
                    problems.push(format!(
                        "run_time {s:?} is not a duration like `30s`, `2m`, `1h30m`"
                    ));
                    None
                }
            },
            None if self.iterations.is_some() => None,
            None => Some(DEFAULT_RUN_TIME),
        };
        if self.iterations == Some(0) {
            problems.push("iterations must be > 0".into());
        }
        let timeout = match &self.timeout {
            Some(s) => match parse_duration(s) {
                Some(d) if !d.is_zero() && d <= MAX_TIMEOUT => d,
                _ => {
                    problems.push(format!(
                        "timeout {s:?} is not a duration like `5s` (at most 1h)"
                    ));
                    DEFAULT_TIMEOUT
                }
            },
            None => DEFAULT_TIMEOUT,
        };
        if self.requests.is_empty() {
            problems.push("`requests` is empty: give at least one request".into());
        }
        let mut tasks = Vec::new();
        for (i, r) in self.requests.iter().enumerate() {
            match r.to_request() {
                Ok(req) => {
                    if r.weight == 0 {
                        problems.push(format!("requests[{i}].weight must be > 0"));
                    }
                    tasks.push(Task {
                        name: req.name.clone(),
                        weight: r.weight,
                        requests: vec![req],
                    })
                }
                Err(e) => problems.push(format!("requests[{i}]: {e}")),
            }
        }
        let thresholds = self.thresholds.clone().unwrap_or_else(default_thresholds);
        for (i, t) in thresholds.iter().enumerate() {
            if t.max.is_none() && t.min.is_none() {
                problems.push(format!("thresholds[{i}] needs `max` or `min`"));
            }
        }
        if !problems.is_empty() {
            return Err(PlanError {
                file: file.into(),
                what: problems.join("; "),
            });
        }
        Ok(Workload {
            host: self.host.clone(),
            model,
            run_time,
            iterations: self.iterations,
            timeout,
            tasks,
            thresholds,
        })
    }
}

fn check_wait(w: &WaitTime) -> Result<(), String> {
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    match *w {
        WaitTime::Between([a, b]) if ok(a) && ok(b) && a <= b => Ok(()),
        WaitTime::Constant(x) if ok(x) => Ok(()),
        WaitTime::ConstantThroughput(x) if ok(x) && x > 0.0 => Ok(()),
        _ => Err(format!(
            "wait_time {w:?} needs non-negative numbers (between: min <= max)"
        )),
    }
}

impl RequestSpec {
    fn to_request(&self) -> Result<Request, String> {
        let method = http::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid method {:?}", self.method))?;
        let mut headers = Vec::new();
        for (k, v) in &self.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("invalid header name {k:?}"))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|_| format!("invalid value for header {k:?}"))?;
            headers.push((name, value));
        }
        let body = match (&self.body, &self.json) {
            (Some(_), Some(_)) => return Err("give `body` or `json`, not both".into()),
            (Some(b), None) => bytes::Bytes::from(b.clone()),
            (None, Some(j)) => {
                if !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
                    headers.push((
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    ));
                }
                bytes::Bytes::from(j.to_string())
            }
            (None, None) => bytes::Bytes::new(),
        };
        let path = check_path(&self.path)?;
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {}", method, path));
        Ok(Request {
            name,
            method,
            path,
            headers,
            body,
        })
    }
}

/// A request path must be origin-form (`/x?y`): the host comes from the target only, so a plan
/// cannot point requests past the allow-list.
pub fn check_path(path: &str) -> Result<String, String> {
    let p = if path.is_empty() { "/" } else { path };
    if !p.starts_with('/') || p.starts_with("//") {
        return Err(format!(
            "path {path:?} must start with `/` (absolute URLs are not allowed: the host is the test target)"
        ));
    }
    p.parse::<http::uri::PathAndQuery>()
        .map_err(|_| format!("path {path:?} is not a valid URL path"))?;
    Ok(p.to_string())
}

/// The result a set of thresholds gives, with the reason for each breach.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub result: crate::keptn::ResultType,
    pub breaches: Vec<String>,
}

/// Evaluates thresholds against a run's statistics (pure). A threshold naming a request
/// that was never sent counts as breached: the plan and the run disagree.
pub fn evaluate(thresholds: &[Threshold], summary: &Summary) -> Verdict {
    use crate::keptn::ResultType;
    let mut result = ResultType::Pass;
    let mut breaches = Vec::new();
    for t in thresholds {
        let stats = match &t.request {
            None => Some(&summary.total),
            Some(n) => summary.by_name.iter().find(|s| &s.name == n),
        };
        let label = match &t.request {
            Some(n) => format!("{}[{n}]", t.metric.as_str()),
            None => t.metric.as_str().to_string(),
        };
        let reason = match stats {
            None => Some(format!(
                "{label}: no request named {:?} was sent",
                t.request
            )),
            Some(s) => {
                let v = s.metric(t.metric, summary.duration_secs);
                if v.is_nan() {
                    Some(format!("{label}: no data"))
                } else if let Some(max) = t.max.filter(|m| v > *m) {
                    Some(format!("{label} = {v:.4} > max {max}"))
                } else {
                    t.min
                        .filter(|m| v < *m)
                        .map(|min| format!("{label} = {v:.4} < min {min}"))
                }
            }
        };
        if let Some(r) = reason {
            match t.action {
                Action::Fail => result = ResultType::Fail,
                Action::Warn if result == ResultType::Pass => result = ResultType::Warning,
                Action::Warn => {}
            }
            breaches.push(format!(
                "{r} ({})",
                if t.action == Action::Fail {
                    "fail"
                } else {
                    "warn"
                }
            ));
        }
    }
    Verdict { result, breaches }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keptn::ResultType;
    use crate::loadtest::stats::{NameStats, Summary};

    const PLAN: &str = r#"
workloads:
  - teststrategy: performance
    users: 20
    spawn_rate: 5
    wait_time: { between: [0.5, 1.5] }
    run_time: 2m
    requests:
      - { name: home, path: /, weight: 3 }
      - name: order
        method: post
        path: /api/order?x=1
        headers: { x-test: "1" }
        json: { item: 42 }
    thresholds:
      - { metric: error_ratio, max: 0.01 }
      - { metric: p95_ms, max: 300, action: warn }
  - run_time: 30s
    rate: 50
    requests: [ { path: /health } ]
"#;

    #[test]
    fn plan_parses_selects_and_validates() {
        let plan = PlanFile::parse("loadtest.yaml", PLAN).expect("parse");
        let w = plan
            .select("loadtest.yaml", "performance")
            .expect("select")
            .validate("loadtest.yaml")
            .expect("valid");
        assert_eq!(
            w.model,
            Model::Closed {
                users: 20,
                spawn_rate: 5.0,
                wait: Some(WaitTime::Between([0.5, 1.5]))
            }
        );
        assert_eq!(w.run_time, Some(Duration::from_secs(120)));
        assert_eq!(w.tasks.len(), 2);
        assert_eq!(w.tasks[0].weight, 3);
        let order = &w.tasks[1].requests[0];
        assert_eq!(order.method, http::Method::POST);
        assert_eq!(order.path, "/api/order?x=1");
        assert_eq!(&order.body[..], br#"{"item":42}"#);
        assert!(
            order
                .headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/json")
        );
        assert_eq!(w.thresholds.len(), 2);

        // Unknown strategy falls back to the default workload (the open one).
        let d = plan
            .select("f", "functional")
            .expect("default")
            .validate("f")
            .expect("valid");
        assert_eq!(
            d.model,
            Model::Open {
                rate: 50.0,
                max_in_flight: 1000
            }
        );
        assert_eq!(d.tasks[0].name, "GET /health");
        assert_eq!(d.thresholds, default_thresholds());
    }

    #[test]
    fn selection_without_default_names_the_workloads() {
        let plan = PlanFile::parse(
            "f",
            "workloads:\n  - teststrategy: perf\n    requests: [{path: /}]\n",
        )
        .expect("parse");
        let e = plan.select("f", "functional").expect_err("none");
        assert!(
            e.what.contains("\"functional\"") && e.what.contains("perf"),
            "{e}"
        );
    }

    #[test]
    fn invalid_plans_report_every_problem() {
        let bad = r#"
workloads:
  - users: 0
    rate: -1
    run_time: forever
    timeout: 0s
    iterations: 0
    requests:
      - { path: "http://evil.example/", }
      - { path: /, method: "G E T" }
      - { path: /, body: x, json: 1 }
    thresholds: [ { metric: rps } ]
"#;
        let e = PlanFile::parse("p.yaml", bad).expect("parse").workloads[0]
            .validate("p.yaml")
            .expect_err("invalid");
        for needle in [
            "rate must be > 0",
            "cannot be combined",
            "run_time \"forever\"",
            "timeout \"0s\"",
            "iterations must be > 0",
            "must start with `/`",
            "invalid method",
            "not both",
            "needs `max` or `min`",
        ] {
            assert!(e.what.contains(needle), "missing {needle:?} in {e}");
        }
        assert!(e.to_string().starts_with("p.yaml: "));
    }

    #[test]
    fn yaml_errors_and_unknown_fields_are_reported_with_location() {
        let e = PlanFile::parse("p.yaml", "workloads:\n  - userz: 3\n    requests: []\n")
            .expect_err("unknown field");
        assert!(e.what.contains("userz") && e.what.contains("line"), "{e}");
        assert!(PlanFile::parse("p.yaml", "workloads: [").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m30s"), Some(Duration::from_secs(150)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in [
            "", "m", "10x", "5 m", "-3", "1h30", "1e300", "1e300h", "NaN", "inf",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    fn summary(requests: u64, failures: u64, p95_ms: f64, secs: f64) -> Summary {
        let mut total = NameStats::new("Total");
        for i in 0..requests {
            let us = if i < requests * 95 / 100 {
                1000
            } else {
                (p95_ms * 1000.0) as u64 * 2
            };
            total.record_ok(us);
        }
        for _ in 0..failures {
            total.record_failure(super::super::stats::ErrorClass::Timeout, 1000);
        }
        let mut home = total.clone();
        home.name = "home".into();
        Summary {
            duration_secs: secs,
            total,
            by_name: vec![home],
            start_lag: None,
        }
    }

    #[test]
    fn thresholds_decide_pass_warning_fail() {
        let ths = vec![
            Threshold {
                metric: Metric::ErrorRatio,
                request: None,
                max: Some(0.05),
                min: None,
                action: Action::Fail,
            },
            Threshold {
                metric: Metric::Rps,
                request: Some("home".into()),
                max: None,
                min: Some(50.0),
                action: Action::Warn,
            },
        ];
        // 100 ok + 0 failures over 1 s: 100 rps, pass.
        let v = evaluate(&ths, &summary(100, 0, 1.0, 1.0));
        assert_eq!((v.result, v.breaches.len()), (ResultType::Pass, 0));
        // 100 requests over 4 s = 25 rps < 50: warning only.
        let v = evaluate(&ths, &summary(100, 0, 1.0, 4.0));
        assert_eq!(v.result, ResultType::Warning);
        assert!(v.breaches[0].contains("< min 50"), "{:?}", v.breaches);
        // 10 failures of 110 > 5 %: fail (and the warning still listed).
        let v = evaluate(&ths, &summary(100, 10, 1.0, 4.0));
        assert_eq!((v.result, v.breaches.len()), (ResultType::Fail, 2));
        // The default rule: one failure fails.
        assert_eq!(
            evaluate(&default_thresholds(), &summary(100, 1, 1.0, 1.0)).result,
            ResultType::Fail
        );
        assert_eq!(
            evaluate(&default_thresholds(), &summary(100, 0, 1.0, 1.0)).result,
            ResultType::Pass
        );
        // Unknown request name or no data is a breach, not a silent pass.
        let t = vec![Threshold {
            metric: Metric::P95Ms,
            request: Some("nope".into()),
            max: Some(1.0),
            min: None,
            action: Action::Fail,
        }];
        assert_eq!(
            evaluate(&t, &summary(10, 0, 1.0, 1.0)).result,
            ResultType::Fail
        );
        let t = vec![Threshold {
            metric: Metric::P95Ms,
            request: None,
            max: Some(1.0),
            min: None,
            action: Action::Warn,
        }];
        assert_eq!(
            evaluate(&t, &summary(0, 0, 1.0, 1.0)).result,
            ResultType::Warning
        );
        // p95 over the limit.
        let t = vec![Threshold {
            metric: Metric::P99Ms,
            request: None,
            max: Some(1.5),
            min: None,
            action: Action::Fail,
        }];
        assert_eq!(
            evaluate(&t, &summary(100, 0, 10.0, 1.0)).result,
            ResultType::Fail
        );
    }
}
