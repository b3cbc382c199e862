//! The CloudEvent envelope of Keptn events (§1.1): decoding from structured JSON (NATS,
//! HTTP structured mode) or from a `cloudevents::Event` (HTTP binary mode), and encoding.
//!
//! Decoding is deliberately forgiving: whatever else is wrong (a bad `time`, a missing
//! `source`, a `data` that is not JSON or is nested too deep, a header that is not ASCII), the
//! event can still be answered as long as `id`, `type` and `shkeptncontext` can be read. The
//! reason is kept in [`Envelope::problem`] so that the `.finished` event can say what was
//! wrong. Both HTTP modes and NATS go through the same rules; an empty id is no id.

use chrono::{DateTime, Utc};
use cloudevents::event::{Data, ExtensionValue};
use cloudevents::{AttributesReader, Event};
use serde_json::Value;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::EventType;
use super::golike::{self, GoShape, normalize};
use super::payload::{EVENT_DATA_SHAPE, EventData};
use crate::untrusted::{self, RawObject};

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

    /// Decodes `data` into a task's typed payload, as Keptn's Go services decode it.
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

/// `data` read from its raw bytes. When it cannot be used (nested too deep, not JSON), the
/// scope fields (`project`, `stage`, `service`, `labels`) are still read from it where
/// possible, so that the errored reply can carry them.
fn parse_data(bytes: &[u8]) -> (Value, Option<String>) {
    match untrusted::parse_json(bytes) {
        Ok(v) => (v, None),
        Err(e) => (
            salvage_scope(bytes),
            Some(format!("`data` cannot be read: {e}")),
        ),
    }
}

/// `project`, `stage`, `service` and `labels` of a `data` object that cannot be read whole.
pub fn salvage_scope(bytes: &[u8]) -> Value {
    let Ok(obj) = RawObject::parse(bytes) else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for key in ["project", "stage", "service"] {
        if let Some(s) = obj.text(key) {
            out.insert(key.into(), Value::String(s));
        }
    }
    if let Some(labels) = obj
        .raw("labels")
        .and_then(|raw| untrusted::parse_json(raw).ok())
        .filter(Value::is_object)
    {
        out.insert("labels".into(), labels);
    }
    Value::Object(out)
}

/// The attributes of an event, read leniently from either HTTP mode or structured JSON.
#[derive(Debug, Default)]
struct Attributes {
    id: Option<String>,
    ty: Option<String>,
    source: Option<String>,
    time: Option<String>,
    keptn_context: Option<String>,
    triggered_id: Option<String>,
    git_commit_id: Option<String>,
}

/// Builds the envelope: `id` and `type` are required (an empty one is absent); everything
/// else that is wrong becomes a [`Envelope::problem`] so that the event is still answered.
fn assemble(
    a: Attributes,
    data: (Value, Option<String>),
    mut problems: Vec<String>,
) -> Result<Envelope, DecodeError> {
    let id = a.id.ok_or(DecodeError::MissingAttribute("id"))?;
    let ty = a.ty.ok_or(DecodeError::MissingAttribute("type"))?;
    if a.source.is_none() {
        problems.push("not a valid CloudEvent: it has no `source`".into());
    }
    let time = match a.time {
        None => None,
        Some(t) => match DateTime::parse_from_rfc3339(&t) {
            Ok(t) => Some(t.to_utc()),
            Err(_) => {
                problems.push(format!(
                    "not a valid CloudEvent: `time` {:?} is not an RFC 3339 timestamp",
                    untrusted::truncate(&untrusted::printable(&t), 64)
                ));
                None
            }
        },
    };
    let (data, data_problem) = data;
    problems.extend(data_problem);
    Ok(Envelope {
        id,
        source: a.source.unwrap_or_default(),
        ty,
        time,
        keptn_context: a.keptn_context,
        triggered_id: a.triggered_id,
        git_commit_id: a.git_commit_id,
        data,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

/// Decodes a structured-mode JSON CloudEvent (what Keptn publishes on NATS). Only the
/// top-level object has to be readable, up to `id` and `type`: a broken attribute or `data`
/// (even one cut off) costs only itself.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let (obj, broken) = RawObject::parse_partial(bytes);
    let mut problems = Vec::new();
    if let Some(e) = broken {
        // Answerable only if what came before the break names the event.
        if obj.text("id").is_none() || obj.text("type").is_none() {
            return Err(DecodeError::NotJson(e));
        }
        problems.push(format!("the event is not valid JSON: {e}"));
    }
    if obj.trailing {
        problems.push("not a valid CloudEvent: something follows the JSON object".into());
    }
    let attrs = Attributes {
        id: obj.text("id"),
        ty: obj.text("type"),
        source: obj.text("source"),
        time: obj.text("time"),
        keptn_context: obj.text("shkeptncontext"),
        triggered_id: obj.text("triggeredid"),
        git_commit_id: obj.text("gitcommitid"),
    };
    let data = match (obj.raw("data"), obj.raw("data_base64")) {
        (Some(raw), _) => parse_data(raw),
        (None, Some(_)) => match obj.text("data_base64").map(|b| BASE64.decode(b.trim())) {
            Some(Ok(bytes)) => parse_data(&bytes),
            _ => (Value::Null, Some("`data_base64` is not base64".to_string())),
        },
        (None, None) => (Value::Null, None),
    };
    assemble(attrs, data, problems)
}

/// Decodes a binary-mode HTTP CloudEvent: attributes in `ce-*` headers, `data` in the body.
/// Header values that are not ASCII are read lossily (and reported), never refused.
pub fn decode_binary(headers: &http::HeaderMap, body: &[u8]) -> Result<Envelope, DecodeError> {
    let mut problems = Vec::new();
    let mut header = |name: &str| {
        let v = headers.get(name)?;
        let s = match v.to_str() {
            Ok(s) => s.to_string(),
            Err(_) => {
                problems.push(format!("header {name} is not ASCII"));
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
        };
        (!s.trim().is_empty()).then_some(s)
    };
    let attrs = Attributes {
        id: header("ce-id"),
        ty: header("ce-type"),
        source: header("ce-source"),
        time: header("ce-time"),
        keptn_context: header("ce-shkeptncontext"),
        triggered_id: header("ce-triggeredid"),
        git_commit_id: header("ce-gitcommitid"),
    };
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        (Value::Null, None)
    } else {
        parse_data(body)
    };
    assemble(attrs, data, problems)
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
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.problem.is_none(), "{:?}", env.problem);
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

    /// A structured event whose `data` is replaced by raw bytes.
    fn with_raw_data(data: &[u8]) -> Vec<u8> {
        let mut v = triggered();
        v["data"] = json!("@@");
        let text = v.to_string();
        let (a, b) = text.split_once("\"@@\"").expect("marker");
        [a.as_bytes(), data, b.as_bytes()].concat()
    }

    #[test]
    fn broken_data_is_answered_with_a_problem_and_the_scope_kept() {
        let deep = format!(
            r#"{{"project":"sockshop","stage":"staging","service":"carts","x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (deep.into_bytes(), "nested 201 levels deep"),
            (
                br#"{"project":"sockshop","n":1e400}"#.to_vec(),
                "number out of range",
            ),
            (br#"{"project":"sockshop","s":"\ud800"}"#.to_vec(), "escape"),
            (
                b"{\"project\":\"sockshop\",\"s\":\"\xff\"}".to_vec(),
                "invalid unicode",
            ),
            (
                b"{\"project\":\"sockshop\",\"s\":\"a\x01b\"}".to_vec(),
                "control character",
            ),
            (
                br#"{"project":"sockshop","n":NaN}"#.to_vec(),
                "expected value",
            ),
        ];
        for (data, needle) in cases {
            let env = decode(&with_raw_data(&data)).expect("correlated");
            let problem = env.problem.clone().unwrap_or_default();
            assert!(problem.contains(needle), "{problem:?} lacks {needle:?}");
            assert_eq!(env.data["project"], "sockshop", "scope kept for the reply");
            let t = env.into_triggered().expect("answerable");
            assert_eq!(t.id, "t-1");
            // Whatever is kept can be stored and read back.
            let stored = serde_json::to_string(&t).expect("ser");
            assert!(serde_json::from_str::<TriggeredEvent>(&stored).is_ok());
        }
    }

    #[test]
    fn data_base64_is_read_and_limited_like_data() {
        let mut v = triggered();
        let data = v["data"].take();
        let o = v.as_object_mut().expect("object");
        o.remove("data");
        o.insert("data_base64".into(), json!(BASE64.encode(data.to_string())));
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.problem.is_none(), "{:?}", env.problem);
        assert_eq!(env.data["project"], "sockshop");
        let deep = format!("{}{}", "[".repeat(126), "]".repeat(126));
        v["data_base64"] = json!(BASE64.encode(deep));
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(
            env.problem
                .unwrap_or_default()
                .contains("nested 126 levels")
        );
        v["data_base64"] = json!("%%%");
        let env = decode(v.to_string().as_bytes()).expect("decodes");
        assert!(env.problem.unwrap_or_default().contains("not base64"));
    }

    #[test]
    fn empty_or_blank_ids_are_no_ids() {
        for id in [json!(""), json!("  "), json!(null), json!({"a": 1})] {
            let mut v = triggered();
            v["id"] = id;
            assert_eq!(
                decode(v.to_string().as_bytes()),
                Err(DecodeError::MissingAttribute("id"))
            );
        }
        let mut v = triggered();
        v["type"] = json!("");
        assert_eq!(
            decode(v.to_string().as_bytes()),
            Err(DecodeError::MissingAttribute("type"))
        );
    }

    fn headers(pairs: &[(&str, &[u8])]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_bytes(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn binary_mode_follows_the_same_rules() {
        let base: Vec<(&str, &[u8])> = vec![
            ("ce-specversion", b"1.0"),
            ("ce-id", b"b-1"),
            ("ce-type", b"sh.keptn.event.approval.triggered"),
            ("ce-source", b"shipyard-controller"),
            ("ce-time", b"2023-12-01T10:10:00Z"),
            ("ce-shkeptncontext", b"ctx-1"),
            ("content-type", b"application/json"),
        ];
        let body = br#"{"project":"p","stage":"s","service":"c"}"#;
        let env = decode_binary(&headers(&base), body).expect("decodes");
        assert!(env.problem.is_none(), "{:?}", env.problem);
        assert_eq!(env.keptn_context.as_deref(), Some("ctx-1"));
        assert_eq!(env.data["stage"], "s");

        let answered: Vec<(&str, &[u8], &str)> = vec![
            ("ce-time", b"yesterday", "not an RFC 3339 timestamp"),
            ("ce-source", b"", "no `source`"),
            ("ce-source", b"caf\xe9", "ce-source is not ASCII"),
        ];
        for (name, value, needle) in answered {
            let mut h = headers(&base);
            h.insert(name, http::HeaderValue::from_bytes(value).expect("value"));
            let env = decode_binary(&h, body).expect("correlated");
            let p = env.problem.clone().unwrap_or_default();
            assert!(p.contains(needle), "{p:?} lacks {needle:?}");
            assert!(env.into_triggered().is_some());
        }
        let mut h = headers(&base);
        h.insert("ce-id", http::HeaderValue::from_static(""));
        assert_eq!(
            decode_binary(&h, body),
            Err(DecodeError::MissingAttribute("id"))
        );
        let deep = format!("{}{}", "[".repeat(126), "]".repeat(126));
        let env = decode_binary(&headers(&base), deep.as_bytes()).expect("correlated");
        assert!(
            env.problem
                .unwrap_or_default()
                .contains("nested 126 levels")
        );
    }

    #[test]
    fn a_truncated_event_is_answered_when_id_type_and_context_came_first() {
        let full = triggered().to_string();
        let cut = &full.as_bytes()[..full.find("\"labels\"").expect("labels")];
        // serde_json orders members by name: data comes before id here, so build the cut
        // the way Go's SDK orders them (data last).
        let go_order = br#"{"specversion":"1.0","id":"t-2","type":"sh.keptn.event.approval.triggered","source":"s","shkeptncontext":"ctx-2","data":{"project":"p","stage":"#;
        let env = decode(go_order).expect("answerable");
        assert!(env.problem.unwrap_or_default().contains("not valid JSON"));
        assert_eq!(env.keptn_context.as_deref(), Some("ctx-2"));
        assert!(
            matches!(decode(cut), Err(DecodeError::NotJson(_))),
            "no id before the cut"
        );
    }
}
