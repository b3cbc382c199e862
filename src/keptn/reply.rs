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

/// How long a message stays when a reply must shrink.
const TRIMMED_MESSAGE_BYTES: usize = 8 * 1024;
/// How long an echoed `project`, `stage` or `service` stays when a reply must shrink.
const TRIMMED_SCOPE_BYTES: usize = 256;
/// The largest echoed label (name and value) kept when a reply must shrink.
const TRIMMED_LABEL_BYTES: usize = 1024;
/// Room kept for the note that says what was trimmed.
const NOTE_BYTES: usize = 512;

/// Makes a reply fit in `budget` bytes of structured JSON (NATS' max payload), trimming in
/// this order until it fits: the message (to 8 KiB), echoed labels over 1 KiB, echoed
/// project/stage/service over 256 bytes, the task's own fields (largest first), the other
/// labels (largest first), the message again (to 512 bytes), and the echoed `gitcommitid`. Status, result and the correlation attributes are never touched.
/// Returns the reply and, if anything was trimmed, what (that note also ends the message).
pub fn fit(mut event: Event, budget: usize) -> (Event, Option<String>) {
    let size = super::envelope::encode(&event).len();
    if size <= budget {
        return (event, None);
    }
    let (ct, _schema, data) = event.take_data();
    let ct = ct.unwrap_or_else(|| "application/json".into());
    let mut data = match data {
        Some(cloudevents::Data::Json(Value::Object(m))) => m,
        other => {
            if let Some(d) = other {
                event.set_data(ct, d);
            }
            return (event, None);
        }
    };
    let overhead = size.saturating_sub(json_len(&data));
    let target = budget.saturating_sub(NOTE_BYTES);
    let fits = |m: &Map<String, Value>| overhead + json_len(m) <= target;
    let mut done: Vec<String> = Vec::new();

    // First what is oversized: the message, single huge labels, huge scope names.
    if cut_string(&mut data, "message", TRIMMED_MESSAGE_BYTES) {
        done.push(format!("message cut to {TRIMMED_MESSAGE_BYTES} bytes"));
    }
    if !fits(&data)
        && let Some(Value::Object(labels)) = data.get_mut("labels")
    {
        let before = labels.len();
        labels.retain(|k, v| k.len() + v.as_str().map_or(0, str::len) <= TRIMMED_LABEL_BYTES);
        if labels.len() < before {
            done.push(format!(
                "{} echoed label(s) over {TRIMMED_LABEL_BYTES} bytes dropped",
                before - labels.len()
            ));
        }
    }
    if !fits(&data) {
        for key in ["project", "stage", "service"] {
            if cut_string(&mut data, key, TRIMMED_SCOPE_BYTES) {
                done.push(format!("echoed {key} cut to {TRIMMED_SCOPE_BYTES} bytes"));
            }
        }
    }
    // Then the task's own fields, largest first.
    if !fits(&data) {
        const KEEP: [&str; 7] = [
            "project", "stage", "service", "labels", "status", "result", "message",
        ];
        let own: Vec<String> = data
            .keys()
            .filter(|k| !KEEP.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut extra = Map::new();
        for k in own {
            if let Some(v) = data.remove(&k) {
                extra.insert(k, v);
            }
        }
        let excess = (overhead + json_len(&data) + json_len(&extra)).saturating_sub(target);
        let before: Vec<String> = extra.keys().cloned().collect();
        drop_largest(&mut extra, excess);
        let dropped: Vec<&str> = before
            .iter()
            .filter(|k| !extra.contains_key(*k))
            .map(|k| crate::untrusted::truncate(k, 40))
            .collect();
        if !dropped.is_empty() {
            done.push(format!("field(s) {} dropped", dropped.join(", ")));
        }
        data.extend(extra);
    }
    // Then the other labels, largest first.
    if !fits(&data) {
        let rest = json_len(&data);
        if let Some(Value::Object(labels)) = data.get_mut("labels") {
            let n = drop_largest(labels, (overhead + rest).saturating_sub(target));
            if n > 0 {
                done.push(format!("{n} echoed label(s) dropped"));
            }
        }
    }
    if !fits(&data) && cut_string(&mut data, "message", NOTE_BYTES) {
        done.push(format!("message cut to {NOTE_BYTES} bytes"));
    }
    if !fits(&data) && event.extension("gitcommitid").is_some() {
        event.remove_extension("gitcommitid");
        done.push("gitcommitid dropped".into());
    }
    let note = format!(
        "[reply trimmed to fit the {budget}-byte message limit: {}]",
        done.join("; ")
    );
    if let Some(Value::String(m)) = data.get_mut("message") {
        if !m.is_empty() {
            m.push(' ');
        }
        m.push_str(&note);
    }
    event.set_data(ct, Value::Object(data));
    (event, Some(note))
}

fn json_len(m: &Map<String, Value>) -> usize {
    serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0)
}

/// Cuts a string member to `max` bytes; `true` if it was longer.
fn cut_string(m: &mut Map<String, Value>, key: &str, max: usize) -> bool {
    match m.get_mut(key) {
        Some(Value::String(s)) if s.len() > max => {
            let keep = crate::untrusted::truncate(s, max).len();
            s.truncate(keep);
            true
        }
        _ => false,
    }
}

/// Removes the largest members until at least `excess` bytes are gone; returns how many.
fn drop_largest(m: &mut Map<String, Value>, excess: usize) -> usize {
    let mut sizes: Vec<(usize, String)> = m
        .iter()
        .map(|(k, v)| {
            let len = serde_json::to_vec(v).map(|v| v.len()).unwrap_or(0);
            (k.len() + len + 4, k.clone())
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
    let (mut freed, mut n) = (0, 0);
    for (size, key) in sizes {
        if freed >= excess {
            break;
        }
        m.remove(&key);
        freed += size;
        n += 1;
    }
    n
}

/// `project`, `stage`, `service` and `labels` of the triggered event, copied as they were.
/// Names are read as Keptn's Go services read them (`"Project"` is the project).
fn scope_of(t: &TriggeredEvent) -> Map<String, Value> {
    let data = super::golike::normalize(&t.data, &super::payload::EVENT_DATA_SHAPE);
    let mut m = Map::new();
    for key in ["project", "stage", "service", "labels"] {
        if let Some(v) = data.get(key) {
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

    #[test]
    fn fit_leaves_small_replies_alone_and_trims_big_ones_below_the_budget() {
        let rb = ReplyBuilder::new("keptn-native");
        let f = Finished::pass("ok");
        let (ev, note) = fit(rb.finished(&trig(), &f), 1 << 20);
        assert!(note.is_none());
        assert_eq!(Envelope::from_event(&ev).data["message"], "ok");

        let mut t = trig();
        let huge = "x".repeat(900_000);
        t.data["labels"] = json!({"big": huge, "small": "kept"});
        t.data["project"] = json!("p".repeat(300_000));
        let f = Finished::errored("m".repeat(100_000))
            .with("test", json!({"log": "l".repeat(200_000)}));
        let budget = 64 * 1024;
        let (ev, note) = fit(rb.finished(&t, &f), budget);
        let bytes = encode(&ev);
        assert!(bytes.len() <= budget, "{} > {budget}", bytes.len());
        let note = note.expect("trimmed");
        let env = Envelope::from_event(&ev);
        assert_eq!(env.data["status"], "errored");
        assert_eq!(env.data["result"], "fail");
        assert_eq!(env.triggered_id.as_deref(), Some("t-9"));
        assert_eq!(env.keptn_context.as_deref(), Some("ctx"));
        assert_eq!(env.data["labels"], json!({"small": "kept"}));
        assert_eq!(
            env.data["project"].as_str().map(str::len),
            Some(TRIMMED_SCOPE_BYTES)
        );
        assert!(env.data.get("test").is_none(), "our own big field goes too");
        let message = env.data["message"].as_str().expect("message");
        assert!(message.ends_with(&note), "{note}");
        assert!(
            note.contains("1 echoed label(s) over 1024 bytes dropped"),
            "{note}"
        );
        assert!(note.contains("field(s) test dropped"), "{note}");
    }
}
