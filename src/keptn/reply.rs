//! Builders for the `.started` and `.finished` replies (§1.3): a stable id (see
//! [`reply_id`]), `shkeptncontext` copied, `triggeredid` = the triggered event's id, `gitcommitid` copied,
//! project/stage/service/labels copied, `source` = the integration name.

use chrono::Utc;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use serde_json::{Map, Value};

use super::envelope::TriggeredEvent;
use super::{EventKind, EventType, ResultType, SPEC_VERSION, StatusType};

/// What a handler reports when a task ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub status: StatusType,
    pub result: ResultType,
    pub message: String,
    /// Task-specific fields merged into `data` (e.g. `"evaluation": {...}`, `"test": {...}`).
    pub extra: Map<String, Value>,
}

impl Finished {
    pub fn new(status: StatusType, result: ResultType, message: impl Into<String>) -> Self {
        Finished {
            status,
            result,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(StatusType::Succeeded, ResultType::Pass, message)
    }

    /// The shape every failure to do the task takes: `errored` + `fail`, so that the
    /// shipyard-controller stops the sequence (§3.6).
    pub fn errored(message: impl Into<String>) -> Self {
        Self::new(StatusType::Errored, ResultType::Fail, message)
    }

    /// Adds a task-specific field to `data`.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }
}

/// Builds replies on behalf of one integration.
#[derive(Debug, Clone)]
pub struct ReplyBuilder {
    source: String,
}

impl ReplyBuilder {
    pub fn new(source: impl Into<String>) -> Self {
        ReplyBuilder {
            source: source.into(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// `.started` with `status: succeeded` (what approval-service and helm-service send).
    pub fn started(&self, t: &TriggeredEvent, message: Option<&str>) -> Event {
        let mut data = scope_of(t);
        data.insert("status".into(), StatusType::Succeeded.as_str().into());
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            data.insert("message".into(), m.into());
        }
        self.reply(t, EventKind::Started, data)
    }

    /// `.finished` with status, result, message and the task's own fields.
    pub fn finished(&self, t: &TriggeredEvent, f: &Finished) -> Event {
        let mut data = scope_of(t);
        for (k, v) in &f.extra {
            data.insert(k.clone(), v.clone());
        }
        data.insert("status".into(), f.status.as_str().into());
        data.insert("result".into(), f.result.as_str().into());
        data.insert("message".into(), f.message.clone().into());
        self.reply(t, EventKind::Finished, data)
    }

    /// Any reply of the given kind to `t`, with `data` as given.
    pub fn reply(&self, t: &TriggeredEvent, kind: EventKind, data: Map<String, Value>) -> Event {
        let mut b = EventBuilderV10::new()
            .id(reply_id(&t.id, kind))
            .source(self.source.as_str())
            .ty(EventType::task(&t.task, kind))
            .time(Utc::now())
            .extension("shkeptncontext", t.keptn_context.as_str())
            .extension("triggeredid", t.id.as_str())
            .extension("shkeptnspecversion", SPEC_VERSION)
            .data("application/json", Value::Object(data));
        if let Some(c) = &t.git_commit_id {
            b = b.extension("gitcommitid", c.as_str());
        }
        // The builder only fails on missing id/source/type, which are always set here.
        b.build().unwrap_or_default()
    }
}

/// The namespace of reply ids (a fixed random UUID; changing it changes every reply id).
const REPLY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5c1e_7a4b_2d3f_4e8a_9b61_0f7c_d2e4_a813);

/// The id of the reply of `kind` to the triggered event `triggered_id`: a UUID v5 of both, so
/// that a reply sent again after a crash carries the same id (and the same `Nats-Msg-Id`), and
/// the stream's duplicate window drops the copy.
pub fn reply_id(triggered_id: &str, kind: EventKind) -> String {
    let name = format!("{triggered_id}/{}", kind.as_str());
    uuid::Uuid::new_v5(&REPLY_NAMESPACE, name.as_bytes()).to_string()
}

/// `project`, `stage`, `service` and `labels` of the triggered event, copied as they were.
fn scope_of(t: &TriggeredEvent) -> Map<String, Value> {
    let mut m = Map::new();
    for key in ["project", "stage", "service", "labels"] {
        if let Some(v) = t.data.get(key).filter(|v| !v.is_null()) {
            m.insert(key.to_string(), v.clone());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ids_are_stable_per_triggered_id_and_kind() {
        let a = reply_id("t-1", EventKind::Started);
        assert_eq!(a, reply_id("t-1", EventKind::Started));
        assert_ne!(a, reply_id("t-1", EventKind::Finished));
        assert_ne!(a, reply_id("t-2", EventKind::Started));
        assert_eq!(
            uuid::Uuid::parse_str(&a).map(|u| u.get_version_num()),
            Ok(5)
        );
    }
    use crate::keptn::envelope::{Envelope, decode, encode};
    use serde_json::json;

    fn trig() -> TriggeredEvent {
        decode(
            json!({
                "specversion": "1.0", "id": "t-9", "source": "shipyard-controller",
                "type": "sh.keptn.event.je-test.triggered", "time": "2023-12-01T10:10:00Z",
                "shkeptncontext": "ctx", "gitcommitid": "c0ffee",
                "data": {"project": "p", "stage": "qa", "service": "s", "labels": {"a": "b"},
                         "result": "pass", "message": "old", "test": {"teststrategy": "x"}}
            })
            .to_string()
            .as_bytes(),
        )
        .expect("decodes")
        .into_triggered()
        .expect("triggered")
    }

    #[test]
    fn started_copies_correlation_and_scope() {
        let rb = ReplyBuilder::new("keptn-native");
        let ev = rb.started(&trig(), Some("go"));
        let env = Envelope::from_event(&ev);
        assert_eq!(env.ty, "sh.keptn.event.je-test.started");
        assert_eq!(env.triggered_id.as_deref(), Some("t-9"));
        assert_eq!(env.keptn_context.as_deref(), Some("ctx"));
        assert_eq!(env.git_commit_id.as_deref(), Some("c0ffee"));
        assert_eq!(env.source, "keptn-native");
        assert_ne!(env.id, "t-9");
        assert_eq!(
            env.data,
            json!({"project": "p", "stage": "qa", "service": "s", "labels": {"a": "b"},
                   "status": "succeeded", "message": "go"})
        );
    }

    #[test]
    fn finished_carries_status_result_and_extra() {
        let rb = ReplyBuilder::new("keptn-native");
        let f = Finished::errored("boom").with("test", json!({"start": "a"}));
        let bytes = encode(&rb.finished(&trig(), &f));
        let raw: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(raw["shkeptnspecversion"], "0.2.4");
        assert_eq!(raw["specversion"], "1.0");
        assert!(raw["time"].is_string());
        assert_eq!(raw["data"]["status"], "errored");
        assert_eq!(raw["data"]["result"], "fail");
        assert_eq!(raw["data"]["message"], "boom");
        assert_eq!(raw["data"]["test"]["start"], "a");
        assert_eq!(raw["data"]["stage"], "qa");
    }
}
