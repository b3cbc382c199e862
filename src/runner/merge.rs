//! The shipyard-controller's payload rules (§4.3), exactly, including its quirks (pure).

use serde_json::{Map, Value};

/// `Merge(a, b)` of `kk:shipyard-controller/internal/common/utils.go`:
/// maps merge recursively (a key present in both with a non-null value in `a` recurses, else
/// `b`'s value is taken); strings: `b` wins; arrays: `b ++ a` (new entries first); `a` null:
/// `b`; numbers and bools: `a` is kept (first writer wins); type mismatch: `b` wins.
pub fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, bv) in b {
                let merged = match a.remove(&k) {
                    Some(av) if !av.is_null() => merge(av, bv),
                    _ => bv,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (Value::Array(a), Value::Array(mut b)) => {
            b.extend(a);
            Value::Array(b)
        }
        (Value::Null, b) => b,
        (Value::String(_), Value::String(b)) => Value::String(b),
        (a @ Value::Number(_), Value::Number(_)) => a,
        (a @ Value::Bool(_), Value::Bool(_)) => a,
        (_, b) => b,
    }
}

/// A task that already ran in the sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedTask {
    pub name: String,
    /// Merge of the data of all its `.finished` events.
    pub properties: Value,
    pub result: String,
    pub status: String,
}

/// The data of all `.finished` events of one task, merged in arrival order.
pub fn merge_finished(finished: &[Value]) -> Value {
    finished.iter().cloned().fold(Value::Null, merge)
}

/// `GetNextTriggeredEventData` without the next task's part: the sequence input, the scope,
/// everything the previous tasks reported, and `result`/`status` of the last one.
pub fn accumulated(
    input: &Value,
    scope: [(&str, &str); 3],
    previous: &[CompletedTask],
) -> Map<String, Value> {
    let mut payload = match input {
        Value::Object(m) => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    };
    if let Value::Object(m) = &mut payload {
        for (k, v) in scope {
            m.insert(k.into(), v.into());
        }
    }
    for prev in previous {
        // A `.finished` without data must not wipe the payload (a mismatch would replace it).
        if prev.properties.is_object() {
            payload = merge(payload, prev.properties.clone());
        }
    }
    let mut map = match payload {
        Value::Object(m) => m,
        // A task's `.finished` data replaced the whole object: impossible with object data.
        _ => Map::new(),
    };
    if let Some(last) = previous.last() {
        map.insert("result".into(), last.result.clone().into());
        map.insert("status".into(), last.status.clone().into());
    }
    if map.contains_key("message") {
        map.insert("message".into(), "".into());
    }
    map
}

/// The `data` of the next task's `.triggered` (§4.3): [`accumulated`] plus the task's shipyard
/// properties merged under `data.<task>`. When both are absent the key is left out rather than
/// sent as `null`, so that handlers can read `data.<task>` as an optional object.
pub fn next_triggered_data(
    input: &Value,
    scope: [(&str, &str); 3],
    previous: &[CompletedTask],
    next_task: &str,
    properties: &Value,
) -> Map<String, Value> {
    let mut map = accumulated(input, scope, previous);
    let own = map.remove(next_task).unwrap_or(Value::Null);
    let merged = merge(own, properties.clone());
    if !merged.is_null() {
        map.insert(next_task.into(), merged);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_rules_and_quirks() {
        // Slices: new entries first.
        assert_eq!(
            merge(json!(["a"]), json!(["b", "c"])),
            json!(["b", "c", "a"])
        );
        // Numbers and bools: first writer wins.
        assert_eq!(merge(json!(1), json!(2)), json!(1));
        assert_eq!(merge(json!(true), json!(false)), json!(true));
        // Strings: the new one wins.
        assert_eq!(merge(json!("a"), json!("b")), json!("b"));
        // Null on the left: take b; type mismatch: b wins.
        assert_eq!(merge(Value::Null, json!({"x": 1})), json!({"x": 1}));
        assert_eq!(merge(json!(1), json!("one")), json!("one"));
        assert_eq!(merge(json!({"a": 1}), json!([1])), json!([1]));
        // Maps recurse; null values in a are replaced.
        assert_eq!(
            merge(
                json!({"d": {"uris": ["old"], "n": 1, "s": "x"}, "k": null, "keep": true}),
                json!({"d": {"uris": ["new"], "n": 2, "s": "y"}, "k": "v", "add": 3})
            ),
            json!({"d": {"uris": ["new", "old"], "n": 1, "s": "y"}, "k": "v", "keep": true, "add": 3})
        );
    }

    fn done(name: &str, props: Value, result: &str) -> CompletedTask {
        CompletedTask {
            name: name.into(),
            properties: props,
            result: result.into(),
            status: "succeeded".into(),
        }
    }

    #[test]
    fn next_task_receives_everything_before_it() {
        let input = json!({
            "project": "fulltour", "stage": "qa", "service": "helloservice",
            "labels": {"version": "v0.1.1"},
            "configurationChange": {"values": {"image": "img:v0.1.1"}},
            "message": "from the user"
        });
        let prev = vec![
            done(
                "deployment",
                json!({"project": "fulltour", "message": "deployed", "result": "pass",
                "deployment": {"deploymentURIsLocal": ["http://a:1"], "deploymentstrategy": "direct"}}),
                "pass",
            ),
            done(
                "test",
                json!({"message": "tested", "test": {"start": "T1", "end": "T2"}, "result": "warning"}),
                "warning",
            ),
        ];
        let d = next_triggered_data(
            &input,
            [
                ("project", "fulltour"),
                ("stage", "qa"),
                ("service", "helloservice"),
            ],
            &prev,
            "evaluation",
            &json!({"timeframe": "2m"}),
        );
        assert_eq!(d["configurationChange"]["values"]["image"], "img:v0.1.1");
        assert_eq!(d["labels"]["version"], "v0.1.1");
        assert_eq!(d["deployment"]["deploymentURIsLocal"][0], "http://a:1");
        assert_eq!(d["test"]["end"], "T2");
        assert_eq!(d["evaluation"], json!({"timeframe": "2m"}));
        assert_eq!(d["result"], "warning", "result of the last task");
        assert_eq!(d["status"], "succeeded");
        assert_eq!(d["message"], "", "message is cleared");
        assert_eq!(d["stage"], "qa");
    }

    #[test]
    fn uris_accumulate_newest_first_across_stages_and_absent_properties_are_left_out() {
        let input = json!({"deployment": {"deploymentURIsLocal": ["http://qa:1"]}});
        let prev = vec![done(
            "deployment",
            json!({"deployment": {"deploymentURIsLocal": ["http://prod:2"]}}),
            "pass",
        )];
        let d = next_triggered_data(
            &input,
            [("project", "p"), ("stage", "production"), ("service", "s")],
            &prev,
            "test",
            &Value::Null,
        );
        assert_eq!(
            d["deployment"]["deploymentURIsLocal"],
            json!(["http://prod:2", "http://qa:1"])
        );
        assert!(!d.contains_key("test"));
        assert!(
            !d.contains_key("message"),
            "no message key, nothing to clear"
        );
    }

    #[test]
    fn a_finished_without_data_does_not_wipe_the_payload() {
        let input = json!({"labels": {"a": "b"}});
        let prev = vec![done("deployment", Value::Null, "pass")];
        let d = accumulated(
            &input,
            [("project", "p"), ("stage", "qa"), ("service", "s")],
            &prev,
        );
        assert_eq!(d["labels"]["a"], "b");
        assert_eq!(d["result"], "pass");
    }

    #[test]
    fn finished_events_of_one_task_merge_in_order() {
        let m = merge_finished(&[
            json!({"n": 1, "s": "a", "l": ["x"]}),
            json!({"n": 2, "s": "b", "l": ["y"]}),
        ]);
        assert_eq!(m, json!({"n": 1, "s": "b", "l": ["y", "x"]}));
    }
}
