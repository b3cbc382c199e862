//! The CloudEvent envelope of Keptn events (§1.1): decoding from structured JSON (NATS,
//! HTTP structured mode) or from a `cloudevents::Event` (HTTP binary mode), and encoding.
//!
//! Decoding is deliberately forgiving: when the strict CloudEvents decode fails (a bad `time`,
//! a missing `source`), the event can still be answered as long as `id`, `type` and
//! `shkeptncontext` can be read. The reason is kept in [`Envelope::problem`] so that the
//! `.finished` event can say what was wrong.

use chrono::{DateTime, Utc};
use cloudevents::event::{Data, ExtensionValue};
use cloudevents::{AttributesReader, Event};
use serde_json::Value;

use super::EventType;
use super::golike::{self, GoShape, normalize};
use super::payload::{EVENT_DATA_SHAPE, EventData};

/// Why an event could not be correlated at all (no reply is possible).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("payload is not a JSON object: {0}")]
    NotJson(String),
    #[error("event has no usable `{0}` attribute")]
    MissingAttribute(&'static str),
}

/// A decoded Keptn event: the attributes a task service needs, and the `data` object.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub time: Option<DateTime<Utc>>,
    pub keptn_context: Option<String>,
    pub triggered_id: Option<String>,
    pub git_commit_id: Option<String>,
    pub data: Value,
    /// Set when the event is not a valid CloudEvent / Keptn event but could still be correlated.
    pub problem: Option<String>,
}

/// The minimum needed to answer an event: everything a reply copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    pub id: String,
    pub ty: String,
    pub keptn_context: String,
    pub git_commit_id: Option<String>,
}

/// A `.triggered` task event we are going to answer. It is also what the journal keeps, so
/// that replies can be sent after a restart.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TriggeredEvent {
    pub id: String,
    /// The type as received (with the task name the shipyard used, e.g. `je-test`).
    pub ty: String,
    /// The task name as received (`je-test`).
    pub task: String,
    pub keptn_context: String,
    pub git_commit_id: Option<String>,
    pub source: String,
    pub time: Option<DateTime<Utc>>,
    /// The whole `data` object (`Value::Null` when it was absent or unreadable).
    pub data: Value,
}

impl TriggeredEvent {
    /// The common part of `data`, read as Keptn reads it (null = absent, names without regard
    /// to case) and leniently: fields of the wrong type are dropped rather than failing, so
    /// that a reply can always carry project/stage/service.
    pub fn scope(&self) -> EventData {
        let data = normalize(&self.data, &EVENT_DATA_SHAPE);
        let s = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let labels = data
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        EventData {
            project: s("project"),
            stage: s("stage"),
            service: s("service"),
            labels,
            status: s("status"),
            result: s("result"),
            message: s("message"),
        }
    }

    /// Decodes `data` into a task's typed payload.
    pub fn payload<T: serde::de::DeserializeOwned + GoShape>(&self) -> Result<T, String> {
        if !self.data.is_object() {
            return Err("event has no `data` object".to_string());
        }
        golike::from_value(&self.data).map_err(|e| format!("invalid `data` of {}: {e}", self.ty))
    }

    pub fn correlation(&self) -> Correlation {
        Correlation {
            id: self.id.clone(),
            ty: self.ty.clone(),
            keptn_context: self.keptn_context.clone(),
            git_commit_id: self.git_commit_id.clone(),
        }
    }
}

impl Envelope {
    pub fn event_type(&self) -> EventType {
        EventType::parse(&self.ty)
    }

    /// Builds a [`TriggeredEvent`] when this is a task `.triggered` event with a Keptn context.
    pub fn into_triggered(self) -> Option<TriggeredEvent> {
        let EventType::Task { task, kind } = self.event_type() else {
            return None;
        };
        if kind != super::EventKind::Triggered {
            return None;
        }
        Some(TriggeredEvent {
            id: self.id,
            ty: self.ty,
            task,
            keptn_context: self.keptn_context?,
            git_commit_id: self.git_commit_id,
            source: self.source,
            time: self.time,
            data: self.data,
        })
    }

    /// Converts a strictly decoded CloudEvent.
    pub fn from_event(ev: &Event) -> Envelope {
        let ext = |name: &str| {
            ev.extension(name)
                .map(|v| match v {
                    ExtensionValue::String(s) => s.clone(),
                    ExtensionValue::Boolean(b) => b.to_string(),
                    ExtensionValue::Integer(i) => i.to_string(),
                })
                .filter(|s| !s.is_empty())
        };
        let (data, problem) = match ev.data() {
            None => (Value::Null, None),
            Some(Data::Json(v)) => (v.clone(), None),
            Some(Data::String(s)) => parse_data(s.as_bytes()),
            Some(Data::Binary(b)) => parse_data(b),
        };
        Envelope {
            id: ev.id().to_string(),
            source: ev.source().to_string(),
            ty: ev.ty().to_string(),
            time: ev.time().copied(),
            keptn_context: ext("shkeptncontext"),
            triggered_id: ext("triggeredid"),
            git_commit_id: ext("gitcommitid"),
            data,
            problem,
        }
    }
}

fn parse_data(bytes: &[u8]) -> (Value, Option<String>) {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (v, None),
        Err(e) => (Value::Null, Some(format!("`data` is not valid JSON: {e}"))),
    }
}

/// Decodes a structured-mode JSON CloudEvent (what Keptn publishes on NATS).
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    // Keptn's Go services read the envelope into a plain struct: the spec version is not
    // checked, `null` attributes are absent and names match without regard to case.
    let strict = match as_keptn_reads_it(bytes) {
        Some(v) => serde_json::from_value::<Event>(v),
        None => serde_json::from_slice::<Event>(bytes),
    };
    match strict {
        Ok(ev) => from_strict(&ev),
        Err(e) => decode_lenient(bytes, &e.to_string()),
    }
}

fn from_strict(ev: &Event) -> Result<Envelope, DecodeError> {
    let env = Envelope::from_event(ev);
    if env.id.is_empty() {
        return Err(DecodeError::MissingAttribute("id"));
    }
    Ok(env)
}

/// The envelope with what Keptn tolerates made canonical: attribute names lower-cased,
/// `null` attributes dropped, any `specversion` read as `1.0`. `None` when nothing changed
/// (or the input is not a JSON object).
fn as_keptn_reads_it(bytes: &[u8]) -> Option<Value> {
    let Value::Object(obj) = serde_json::from_slice::<Value>(bytes).ok()? else {
        return None;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in &obj {
        if v.is_null() {
            continue;
        }
        out.insert(k.to_ascii_lowercase(), v.clone());
    }
    if out.get("specversion").and_then(Value::as_str) != Some("0.3") {
        out.insert("specversion".into(), Value::String("1.0".into()));
    }
    let out = Value::Object(out);
    (out != Value::Object(obj)).then_some(out)
}

/// Reads what can be read from a JSON object that is not a valid CloudEvent.
fn decode_lenient(bytes: &[u8], strict_error: &str) -> Result<Envelope, DecodeError> {
    let raw: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let obj = raw
        .as_object()
        .ok_or_else(|| DecodeError::NotJson("top level is not an object".into()))?;
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let id = s("id").ok_or(DecodeError::MissingAttribute("id"))?;
    let ty = s("type").ok_or(DecodeError::MissingAttribute("type"))?;
    let time = s("time").and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.to_utc()));
    Ok(Envelope {
        id,
        source: s("source").unwrap_or_default(),
        ty,
        time,
        keptn_context: s("shkeptncontext"),
        triggered_id: s("triggeredid"),
        git_commit_id: s("gitcommitid"),
        data: obj.get("data").cloned().unwrap_or(Value::Null),
        problem: Some(format!("not a valid CloudEvent: {strict_error}")),
    })
}

/// Encodes an event as structured-mode JSON.
pub fn encode(ev: &Event) -> Vec<u8> {
    // Serializing a cloudevents::Event with JSON data cannot fail.
    serde_json::to_vec(ev).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn triggered() -> Value {
        json!({
            "specversion": "1.0", "id": "t-1", "source": "shipyard-controller",
            "type": "sh.keptn.event.approval.triggered", "datacontenttype": "application/json",
            "time": "2023-12-01T10:10:00.000Z",
            "shkeptncontext": "ctx-1", "gitcommitid": "abc",
            "data": {"project": "sockshop", "stage": "staging", "service": "carts",
                     "labels": {"buildId": "42", "n": 3}}
        })
    }

    #[test]
    fn decodes_a_shipyard_controller_event() {
        let env = decode(triggered().to_string().as_bytes()).expect("decodes");
        assert_eq!(env.id, "t-1");
        assert_eq!(env.keptn_context.as_deref(), Some("ctx-1"));
        assert_eq!(env.git_commit_id.as_deref(), Some("abc"));
        assert!(env.problem.is_none());
        let t = env.into_triggered().expect("triggered");
        assert_eq!(t.task, "approval");
        let scope = t.scope();
        assert_eq!(scope.project, "sockshop");
        assert_eq!(scope.labels.len(), 1, "non-string labels are dropped");
    }

    #[test]
    fn accepts_go_model_contenttype() {
        let mut v = triggered();
        let o = v.as_object_mut().expect("object");
        o.remove("datacontenttype");
        o.insert("contenttype".into(), json!("application/json"));
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.problem.is_none());
        assert_eq!(env.data["service"], "carts");
    }

    #[test]
    fn bad_time_is_still_correlated_with_a_problem() {
        let mut v = triggered();
        v["time"] = json!("yesterday");
        let env = decode(v.to_string().as_bytes()).expect("correlated");
        assert!(
            env.problem
                .as_deref()
                .unwrap_or("")
                .contains("not a valid CloudEvent")
        );
        assert_eq!(env.into_triggered().map(|t| t.id).as_deref(), Some("t-1"));
    }

    #[test]
    fn specversion_is_not_checked_like_keptn() {
        for version in ["0.2", "", "2.0"] {
            let mut v = triggered();
            v["specversion"] = json!(version);
            let env = decode(v.to_string().as_bytes()).expect("decodes");
            assert!(env.problem.is_none(), "{version}: {:?}", env.problem);
            assert_eq!(env.keptn_context.as_deref(), Some("ctx-1"));
        }
        let mut v = triggered();
        v.as_object_mut().expect("object").remove("specversion");
        assert!(
            decode(v.to_string().as_bytes())
                .expect("decodes")
                .problem
                .is_none()
        );
    }

    #[test]
    fn null_attributes_and_folded_names_are_read_like_go() {
        let mut v = triggered();
        let o = v.as_object_mut().expect("object");
        o.insert("triggeredid".into(), json!(null));
        let ctx = o.remove("shkeptncontext").expect("ctx");
        o.insert("shKeptnContext".into(), ctx);
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.problem.is_none(), "{:?}", env.problem);
        assert_eq!(env.keptn_context.as_deref(), Some("ctx-1"));
        assert_eq!(env.triggered_id, None);
    }

    #[test]
    fn uncorrelatable_input_is_an_error() {
        assert!(matches!(decode(b"not json"), Err(DecodeError::NotJson(_))));
        assert!(matches!(decode(b"[1,2]"), Err(DecodeError::NotJson(_))));
        assert_eq!(
            decode(br#"{"type":"sh.keptn.event.test.triggered"}"#),
            Err(DecodeError::MissingAttribute("id"))
        );
    }

    #[test]
    fn triggered_without_context_cannot_be_answered() {
        let mut v = triggered();
        v.as_object_mut().expect("object").remove("shkeptncontext");
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.into_triggered().is_none());
    }
}
