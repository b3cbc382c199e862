//! The approval-service's rules (§5), pure: which strategy applies to a result and whether the
//! approval finishes at once or waits for a person. The `approval` task handler answers with
//! them; the local runner uses them to tell a manual approval from an automatic one.

use crate::keptn::ResultType;

use crate::keptn::payload::ApprovalTriggered;

/// The task's name in shipyards and event types.
pub const TASK: &str = "approval";

/// What the approval-service does for one `approval.triggered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// The result being approved (`data.result`, else `data.evaluation.result`).
    pub result: String,
    /// The strategy that applies, for the `.started` message only: as written in the
    /// shipyard (approval-service prints it verbatim), `manual` when none is given.
    pub strategy: String,
    /// `Some(result)` to finish at once, `None` to wait for a manual decision.
    pub finish_with: Option<ResultType>,
}

impl ApprovalDecision {
    pub fn started_message(&self) -> String {
        format!(
            "Approval strategy for result '{}': {}",
            self.result, self.strategy
        )
    }
}

/// The approval-service's decision, from `kk:approval-service/.../approval_triggered_event_handler.go`.
pub fn decide(data: &ApprovalTriggered) -> ApprovalDecision {
    let mut result = data.common.result.clone();
    if result.is_empty() {
        result = data.evaluation_result();
    }
    let strategy_of = |s: &str| {
        if s.is_empty() {
            "manual".to_string()
        } else {
            s.to_string()
        }
    };
    let strategy = match result.as_str() {
        "pass" => strategy_of(&data.approval.pass),
        "warning" => strategy_of(&data.approval.warning),
        "fail" => "automatic".to_string(),
        _ => "manual".to_string(),
    };
    let finish_with = match (result.as_str(), strategy.as_str()) {
        ("pass" | "warning", "automatic") => Some(ResultType::Pass),
        ("fail", _) => Some(ResultType::Fail),
        _ => None,
    };
    ApprovalDecision {
        result,
        strategy,
        finish_with,
    }
}

/// Whether a task about to be triggered with `data` is an approval that Keptn's rules leave
/// to a person.
pub fn waits_for_a_person(task: &str, data: &serde_json::Map<String, serde_json::Value>) -> bool {
    task == TASK
        && crate::keptn::golike::from_value::<ApprovalTriggered>(&serde_json::Value::Object(
            data.clone(),
        ))
        .is_ok_and(|d| decide(&d).finish_with.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(v: serde_json::Value) -> ApprovalDecision {
        decide(&crate::keptn::golike::from_value(&v).expect("decodes"))
    }

    #[test]
    fn pass_and_warning_follow_their_strategy() {
        let s = json!({"pass": "automatic", "warning": "manual"});
        let pass = d(json!({"result": "pass", "approval": s}));
        assert_eq!(pass.finish_with, Some(ResultType::Pass));
        assert_eq!(
            pass.started_message(),
            "Approval strategy for result 'pass': automatic"
        );
        let warn = d(json!({"result": "warning", "approval": s}));
        assert_eq!(warn.finish_with, None);
        assert_eq!(warn.strategy, "manual");
        let warn_auto = d(json!({"result": "warning", "approval": {"warning": "automatic"}}));
        assert_eq!(warn_auto.finish_with, Some(ResultType::Pass));
    }

    #[test]
    fn fail_finishes_with_fail_whatever_the_strategy() {
        let f = d(json!({"result": "fail", "approval": {"pass": "manual", "warning": "manual"}}));
        assert_eq!(f.finish_with, Some(ResultType::Fail));
        assert_eq!(f.strategy, "automatic");
    }

    #[test]
    fn missing_strategy_means_manual() {
        let p = d(json!({"result": "pass"}));
        assert_eq!(p.finish_with, None);
        assert_eq!(p.strategy, "manual");
        let odd = d(json!({"result": "pass", "approval": {"pass": "Automatic"}}));
        assert_eq!(odd.finish_with, None, "strategy match is exact");
        assert_eq!(
            odd.started_message(),
            "Approval strategy for result 'pass': Automatic",
            "approval-service prints the strategy as written"
        );
    }

    #[test]
    fn empty_result_falls_back_to_evaluation_result() {
        let e = d(json!({"approval": {"pass": "automatic"}, "evaluation": {"result": "pass"}}));
        assert_eq!(e.result, "pass");
        assert_eq!(e.finish_with, Some(ResultType::Pass));
        let none = d(json!({"approval": {"pass": "automatic"}}));
        assert_eq!(none.result, "");
        assert_eq!(none.finish_with, None);
        assert_eq!(
            none.started_message(),
            "Approval strategy for result '': manual"
        );
    }

    #[test]
    fn null_task_properties_are_absent_like_go() {
        // Keptn <= 0.13 sends `"approval": null` for a task without shipyard properties.
        let n = d(json!({"result": "pass", "approval": null, "evaluation": null, "labels": null}));
        assert_eq!(n.finish_with, None, "no strategy: manual, not an error");
        let folded = d(json!({"Result": "warning", "Approval": {"Warning": "automatic"}}));
        assert_eq!(folded.finish_with, Some(ResultType::Pass));
    }

    #[test]
    fn undecodable_evaluation_gives_no_fallback_result() {
        // getResult decodes the data as EvaluationFinishedEventData; a type error means "".
        let e = d(json!({"approval": {"pass": "automatic"},
                         "evaluation": {"result": "pass", "score": "high"}}));
        assert_eq!(e.result, "");
        assert_eq!(e.finish_with, None);
        let null_score = d(json!({"approval": {"pass": "automatic"},
                                  "evaluation": {"result": "pass", "score": null}}));
        assert_eq!(null_score.finish_with, Some(ResultType::Pass));
    }
}
