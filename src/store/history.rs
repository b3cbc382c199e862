//! The embedded evaluation history: results this service produced, used for relative SLO
//! criteria when no Keptn datastore is connected (standalone mode).

use async_trait::async_trait;
use serde_json::Value;

use super::{EvaluationQuery, EvaluationRecord, Store};
use crate::evaluation::history::{EvaluationHistory, HistoryError, HistoryScope};
use crate::evaluation::scoring::PreviousEvaluation;

/// [`EvaluationHistory`] over the embedded store.
#[derive(Clone)]
pub struct StoreHistory {
    store: Store,
}

impl StoreHistory {
    pub fn new(store: Store) -> Self {
        StoreHistory { store }
    }
}

#[async_trait]
impl EvaluationHistory for StoreHistory {
    async fn previous(
        &self,
        scope: &HistoryScope,
        include: Option<&[&str]>,
        limit: usize,
    ) -> Result<Vec<PreviousEvaluation>, HistoryError> {
        let rows = self
            .store
            .evaluations(EvaluationQuery {
                project: scope.project.clone(),
                stage: scope.stage.clone(),
                service: scope.service.clone(),
                include: include.map(|i| i.iter().map(|s| s.to_string()).collect()),
                limit,
            })
            .await
            .map_err(|e| HistoryError::Unavailable(e.to_string()))?;
        rows.into_iter()
            .map(|(id, data)| {
                let data: Value = serde_json::from_str(&data)
                    .map_err(|e| HistoryError::Unavailable(e.to_string()))?;
                PreviousEvaluation::from_event(&serde_json::json!({"id": id, "data": data}))
                    .map_err(HistoryError::Unavailable)
            })
            .collect()
    }

    async fn record(
        &self,
        scope: &HistoryScope,
        id: &str,
        data: &Value,
    ) -> Result<(), HistoryError> {
        self.store
            .record_evaluation(EvaluationRecord {
                id: id.to_string(),
                project: scope.project.clone(),
                stage: scope.stage.clone(),
                service: scope.service.clone(),
                result: data
                    .get("result")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                data: data.to_string(),
            })
            .await
            .map_err(|e| HistoryError::Store(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(service: &str) -> HistoryScope {
        HistoryScope {
            project: "p".into(),
            stage: "qa".into(),
            service: service.into(),
        }
    }

    #[tokio::test]
    async fn keeps_the_contract_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::evaluation::history::contract::check(&StoreHistory::new(
            Store::open(dir.path()).expect("open"),
        ))
        .await;
        let reopened = StoreHistory::new(Store::open(dir.path()).expect("reopen"));
        let prev = reopened.previous(&scope("s"), None, 1).await.expect("prev");
        assert_eq!(prev[0].id, "e4");
        assert_eq!(prev[0].indicator_results.len(), 1);
    }
}
