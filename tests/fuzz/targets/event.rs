//! The event decoder: structured JSON (NATS, HTTP) and binary-mode bodies.

use keptn_native::keptn::envelope::{decode, decode_binary};
use keptn_native::keptn::reply::fit;
use keptn_native::keptn::{Finished, ReplyBuilder, TriggeredEvent};

pub const SEEDS: &[&[u8]] = &[
    br#"{"specversion":"1.0","id":"6de83495-4f83-481c-8dbe-fcceb2e0243b","source":"shipyard-controller","type":"sh.keptn.event.approval.triggered","datacontenttype":"application/json","time":"2023-12-01T10:10:00.000Z","shkeptncontext":"08735340-6f9e-4b32-97ff-3b6c292bc50i","gitcommitid":"abc","data":{"project":"sockshop","stage":"production","service":"carts","labels":{"buildId":"42"},"result":"pass","status":"succeeded","approval":{"pass":"manual","warning":"manual"}}}"#,
    br#"{"specversion":"1.0","id":"e1","source":"shipyard-controller","type":"sh.keptn.event.evaluation.triggered","time":"2023-12-01T10:10:00Z","shkeptncontext":"c1","data":{"project":"p","stage":"qa","service":"s","evaluation":{"timeframe":"5m"},"deployment":{"deploymentNames":["canary"]}}}"#,
    br#"{"specversion":"1.0","id":"t1","source":"shipyard-controller","type":"sh.keptn.event.je-test.triggered","shkeptncontext":"c1","data":{"project":"p","stage":"qa","service":"s","test":{"teststrategy":"performance"},"deployment":{"deploymentURIsLocal":["http://s.p-qa:80"]}}}"#,
    br#"{"specversion":"1.0","id":"f1","source":"bridge","type":"sh.keptn.event.approval.finished","shkeptncontext":"c1","triggeredid":"6de83495","data_base64":"eyJwcm9qZWN0IjoicCIsInJlc3VsdCI6InBhc3MifQ=="}"#,
    br#"{"project":"p","stage":"s","service":"c","result":"warning","approval":{"warning":"manual"},"labels":{"a":"b"}}"#,
];

pub const DICTIONARY: &[&str] = &[
    "\"",
    "\\",
    "\\ud800",
    "\\udc00\\ud800",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "null",
    "true",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"data\":",
    "\"id\":\"\"",
    "\"id\":7",
    "\"data_base64\":\"",
    "\"time\":\"yesterday\"",
    "\"shkeptncontext\":",
    "\"source\":null",
    "\"type\":\"sh.keptn.event.approval.triggered\"",
    "\u{0}",
    "\u{1b}[31m",
    "\t",
    "\r\n",
    "\"labels\":{\"k\":",
    "\"project\":",
    "   ",
];

/// Budget a reply must fit (what a test nats-server with `max_payload: 65536` carries).
const BUDGET: usize = 64 * 1024;

fn check_triggered(t: &TriggeredEvent, problem: Option<&str>) -> Result<(), String> {
    // The journal invariant: what is stored can be read back.
    let stored = serde_json::to_string(t).map_err(|e| format!("cannot store: {e}"))?;
    serde_json::from_str::<TriggeredEvent>(&stored)
        .map_err(|e| format!("stored event cannot be read back: {e}"))?;
    let f = Finished::errored(problem.unwrap_or("fuzz"));
    let reply = ReplyBuilder::new("keptn-native").finished(t, &f);
    let (reply, _) = fit(reply, BUDGET);
    let len = keptn_native::keptn::envelope::encode(&reply).len();
    // What a reply must carry unchanged. (The task name in the type is bounded in the
    // service: only configured task names are answered.)
    let correlation = t.id.len() + t.keptn_context.len() + t.task.len();
    if correlation < BUDGET / 4 && len > BUDGET {
        return Err(format!("reply of {len} bytes exceeds the budget"));
    }
    Ok(())
}

pub fn check(bytes: &[u8]) -> Result<(), String> {
    if let Ok(env) = decode(bytes) {
        if env.id.trim().is_empty() || env.ty.trim().is_empty() {
            return Err("accepted an event without id or type".into());
        }
        if let Some(p) = &env.problem {
            super::printable("problem", p)?;
        }
        let problem = env.problem.clone();
        if let Some(t) = env.into_triggered() {
            check_triggered(&t, problem.as_deref())?;
        }
    }
    let mut headers = http::HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "b-1"),
        ("ce-source", "distributor"),
        ("ce-type", "sh.keptn.event.approval.triggered"),
        ("ce-shkeptncontext", "ctx"),
    ] {
        headers.insert(k, http::HeaderValue::from_static(v));
    }
    let env = decode_binary(&headers, bytes)
        .map_err(|e| format!("binary mode with good headers refused: {e}"))?;
    let problem = env.problem.clone();
    let t = env
        .into_triggered()
        .ok_or("binary-mode triggered event not answerable")?;
    check_triggered(&t, problem.as_deref())
}
