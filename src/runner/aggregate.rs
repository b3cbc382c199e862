//! How the shipyard-controller aggregates one task's `.started`/`.finished` events (§3.6, pure).

use serde_json::Value;

/// The events seen for one task `.triggered`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskEvents {
    pub started: usize,
    /// `data` of each `.finished`, in arrival order.
    pub finished: Vec<Value>,
}

impl TaskEvents {
    /// Complete when `#finished == #started && #finished > 0`: a `.finished` without a
    /// `.started` never completes a task; two `.started` need two `.finished`.
    pub fn is_complete(&self) -> bool {
        !self.finished.is_empty() && self.finished.len() == self.started
    }

    /// Any correlating event seen (what stops the "no `.started`" timeout, §3.5).
    pub fn any(&self) -> bool {
        self.started > 0 || !self.finished.is_empty()
    }

    /// Aggregated `(result, status)`.
    pub fn outcome(&self) -> (String, String) {
        let field = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let results: Vec<String> = self.finished.iter().map(|d| field(d, "result")).collect();
        let statuses: Vec<String> = self.finished.iter().map(|d| field(d, "status")).collect();
        let mut result = if results.iter().any(|r| r != "pass" && r != "warning") {
            "fail"
        } else if results.iter().any(|r| r == "warning") {
            "warning"
        } else {
            "pass"
        };
        let status = if statuses.iter().any(|s| s == "errored") {
            "errored"
        } else if statuses.iter().any(|s| s == "aborted") {
            "aborted"
        } else if statuses.iter().all(|s| s == "succeeded") {
            "succeeded"
        } else {
            result = "fail";
            "unknown"
        };
        (result.to_string(), status.to_string())
    }
}

/// The sequence stops after a task whose result is `fail` or whose status is `errored`.
pub fn stops_sequence(result: &str, status: &str) -> bool {
    result == "fail" || status == "errored"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(started: usize, finished: &[(&str, &str)]) -> TaskEvents {
        TaskEvents {
            started,
            finished: finished
                .iter()
                .map(|(r, s)| json!({"result": r, "status": s}))
                .collect(),
        }
    }

    #[test]
    fn completion_counts_started_and_finished() {
        assert!(
            !ev(0, &[("pass", "succeeded")]).is_complete(),
            "finished without started"
        );
        assert!(!ev(2, &[("pass", "succeeded")]).is_complete());
        assert!(ev(2, &[("pass", "succeeded"), ("pass", "succeeded")]).is_complete());
        assert!(!ev(1, &[]).is_complete());
        assert!(ev(0, &[("pass", "succeeded")]).any());
        assert!(!ev(0, &[]).any());
    }

    #[test]
    fn results_and_statuses_aggregate_like_the_shipyard_controller() {
        let o = |f: &[(&str, &str)]| ev(f.len(), f).outcome();
        let s = |r: &str, st: &str| (r.to_string(), st.to_string());
        assert_eq!(
            o(&[("pass", "succeeded"), ("warning", "succeeded")]),
            s("warning", "succeeded")
        );
        assert_eq!(
            o(&[("pass", "succeeded"), ("", "succeeded")]),
            s("fail", "succeeded"),
            "empty result is fail"
        );
        assert_eq!(
            o(&[("pass", "succeeded"), ("pass", "errored")]),
            s("pass", "errored")
        );
        assert_eq!(
            o(&[("pass", "aborted"), ("pass", "succeeded")]),
            s("pass", "aborted")
        );
        assert_eq!(
            o(&[("pass", "succeeded"), ("pass", "")]),
            s("fail", "unknown"),
            "unknown forces fail"
        );
        assert_eq!(o(&[("failed", "succeeded")]), s("fail", "succeeded"));
        assert!(stops_sequence("fail", "succeeded"));
        assert!(stops_sequence("pass", "errored"));
        assert!(!stops_sequence("warning", "succeeded"));
    }
}
