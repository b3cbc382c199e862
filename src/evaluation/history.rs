//! Previous evaluation results for relative criteria (§6.5): the [`EvaluationHistory`] seam,
//! an in-memory implementation (tests, CLI) and Keptn's mongodb-datastore over HTTP.
//!
//! The embedded SQLite history (standalone mode) implements the same trait elsewhere.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::scoring::PreviousEvaluation;

/// Whose evaluations: project / stage / service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryScope {
    pub project: String,
    pub stage: String,
    pub service: String,
}

/// Why previous results could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Keptn's text when the datastore answers with a non-200 status.
    #[error("could not retrieve previous evaluation.finished events: {0}")]
    Unavailable(String),
    #[error("could not store evaluation result: {0}")]
    Store(String),
}

/// A source of previous `evaluation.finished` results.
#[async_trait]
pub trait EvaluationHistory: Send + Sync + 'static {
    /// Up to `limit` previous results of `scope`, newest first, whose `data.result` is one of
    /// `include` (`None`: any result). Invalidated evaluations are excluded.
    async fn previous(
        &self,
        scope: &HistoryScope,
        include: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<PreviousEvaluation>, HistoryError>;

    /// Records a result this service produced. `id` identifies it in `comparedEvents` later;
    /// `data` is the `evaluation.finished` data (`result`, `evaluation.indicatorResults`, ...).
    /// Keptn's datastore receives events over NATS, so it ignores this.
    async fn record(
        &self,
        scope: &HistoryScope,
        id: &str,
        data: &Value,
    ) -> Result<(), HistoryError>;
}

/// History kept in memory, newest last (tests, one-shot CLI runs).
#[derive(Debug, Default)]
pub struct InMemoryHistory {
    entries: Mutex<Vec<(HistoryScope, PreviousEvaluation)>>,
}

impl InMemoryHistory {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EvaluationHistory for InMemoryHistory {
    async fn previous(
        &self,
        scope: &HistoryScope,
        include: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<PreviousEvaluation>, HistoryError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| HistoryError::Unavailable("history lock poisoned".into()))?;
        Ok(entries
            .iter()
            .rev()
            .filter(|(s, _)| s == scope)
            .filter(|(_, p)| include.is_none_or(|inc| inc.contains(&p.result.as_str())))
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn record(
        &self,
        scope: &HistoryScope,
        id: &str,
        data: &Value,
    ) -> Result<(), HistoryError> {
        let event = serde_json::json!({"id": id, "data": data});
        let prev = PreviousEvaluation::from_event(&event).map_err(HistoryError::Store)?;
        self.entries
            .lock()
            .map_err(|_| HistoryError::Store("history lock poisoned".into()))?
            .push((scope.clone(), prev));
        Ok(())
    }
}

/// Keptn's mongodb-datastore: in-cluster `http://mongodb-datastore:8080`, or through the API
/// gateway `{KEPTN_API_ENDPOINT}/mongodb-datastore` with an `x-token`.
#[derive(Debug, Clone)]
pub struct DatastoreHistory {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl DatastoreHistory {
    /// `base` without trailing slash, e.g. `http://mongodb-datastore:8080`.
    pub fn new(client: reqwest::Client, base: impl Into<String>, token: Option<String>) -> Self {
        DatastoreHistory {
            client,
            base: base.into().trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The datastore filter lighthouse sends (§6.3).
    pub fn filter(scope: &HistoryScope, include: Option<&[&str]>) -> String {
        let mut f = format!(
            "data.project:{} AND data.stage:{} AND data.service:{}",
            scope.project, scope.stage, scope.service
        );
        if let Some(inc) = include {
            f.push_str(&format!(" AND data.result:{}", inc.join(",")));
        }
        f
    }
}

#[async_trait]
impl EvaluationHistory for DatastoreHistory {
    async fn previous(
        &self,
        scope: &HistoryScope,
        include: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<PreviousEvaluation>, HistoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let url = format!(
            "{}/event/type/sh.keptn.event.evaluation.finished",
            self.base
        );
        let mut req = self.client.get(&url).query(&[
            ("limit", limit.to_string()),
            ("excludeInvalidated", "true".to_string()),
            ("filter", Self::filter(scope, include)),
        ]);
        if let Some(t) = &self.token {
            req = req.header("x-token", t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| HistoryError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HistoryError::Unavailable(format!(
                "datastore answered HTTP {status}"
            )));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| HistoryError::Unavailable(format!("unreadable answer: {e}")))?;
        let events = body
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for e in events.iter().take(limit) {
            // An event that does not decode is skipped, as lighthouse does.
            if let Ok(p) = PreviousEvaluation::from_event(e) {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn record(&self, _: &HistoryScope, _: &str, _: &Value) -> Result<(), HistoryError> {
        Ok(())
    }
}

/// What every [`EvaluationHistory`] must do, as one check each implementation's tests run.
#[cfg(test)]
pub(crate) mod contract {
    use super::*;
    use serde_json::json;

    fn scope(svc: &str) -> HistoryScope {
        HistoryScope {
            project: "p".into(),
            stage: "qa".into(),
            service: svc.into(),
        }
    }

    /// Newest first, filtered by result, limited, per scope, with the indicator results kept.
    pub(crate) async fn check(h: &dyn EvaluationHistory) {
        for (id, result, v) in [
            ("e1", "pass", 1.0),
            ("e2", "fail", 2.0),
            ("e3", "warning", 3.0),
            ("e4", "pass", 4.0),
        ] {
            let data = json!({"result": result, "evaluation": {"indicatorResults": [
                {"score": 1, "status": "pass", "value": {"metric": "rt", "value": v, "success": true}}
            ]}});
            h.record(&scope("s"), id, &data).await.expect("record");
        }
        h.record(&scope("other"), "x", &json!({"result": "pass"}))
            .await
            .expect("record");
        let ids = |v: Vec<PreviousEvaluation>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        let prev = |include: Option<&'static [&'static str]>, limit| {
            let scope = scope("s");
            async move { h.previous(&scope, include, limit).await.expect("previous") }
        };
        assert_eq!(ids(prev(None, 10).await), ["e4", "e3", "e2", "e1"]);
        assert_eq!(ids(prev(Some(&["pass"]), 10).await), ["e4", "e1"]);
        assert_eq!(ids(prev(Some(&["pass", "warning"]), 2).await), ["e4", "e3"]);
        let newest = prev(None, 1).await;
        assert_eq!(newest[0].indicator_results.len(), 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(svc: &str) -> HistoryScope {
        HistoryScope {
            project: "p".into(),
            stage: "qa".into(),
            service: svc.into(),
        }
    }

    #[tokio::test]
    async fn in_memory_keeps_the_contract() {
        contract::check(&InMemoryHistory::new()).await;
    }

    #[test]
    fn datastore_filter_is_lighthouses() {
        assert_eq!(
            DatastoreHistory::filter(&scope("carts"), Some(&["pass", "warning"])),
            "data.project:p AND data.stage:qa AND data.service:carts AND data.result:pass,warning"
        );
    }
}
