//! Every case of `tests/data/conformance/` (taken from Keptn's own tests, see PROVENANCE.md)
//! through the `keptn-native evaluate` binary, and every timeframe case through the resolver.

use serde_json::Value;

use super::{cli, write};

const CASES: &str = include_str!("../../data/conformance/lighthouse-cases.json");
const TIMEFRAMES: &str = include_str!("../../data/conformance/timeframe-cases.json");

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compares one expected field; returns a description of the mismatch.
fn check_field(path: &str, expected: &Value, actual: Option<&Value>, errors: &mut Vec<String>) {
    let actual = actual.unwrap_or(&Value::Null);
    let ok = match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => close(
            e.as_f64().unwrap_or(f64::NAN),
            a.as_f64().unwrap_or(f64::NAN),
        ),
        // An omitted message is Go's empty `omitempty` string.
        (Value::String(e), Value::Null) => e.is_empty(),
        (e, a) => e == a,
    };
    if !ok {
        errors.push(format!("{path}: expected {expected}, got {actual}"));
    }
}

fn check_targets(path: &str, expected: &Value, actual: Option<&Value>, errors: &mut Vec<String>) {
    let actual = actual.unwrap_or(&Value::Null);
    match (expected, actual) {
        (Value::Null, Value::Null) => {}
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (et, at)) in e.iter().zip(a).enumerate() {
                for (k, v) in et.as_object().into_iter().flatten() {
                    check_field(&format!("{path}[{i}].{k}"), v, at.get(k), errors);
                }
            }
        }
        _ => errors.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

fn check_case(case: &Value, data: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let exp = &case["expected"];
    let ev = &data["evaluation"];
    for (key, actual) in [
        ("result", data.get("result")),
        ("status", data.get("status")),
        ("evaluation_result", ev.get("result")),
        ("score", ev.get("score")),
        ("comparedEvents", ev.get("comparedEvents")),
    ] {
        if let Some(e) = exp.get(key) {
            check_field(key, e, actual, &mut errors);
        }
    }
    if let Some(m) = exp.get("message_contains").and_then(Value::as_str) {
        let got = data["message"].as_str().unwrap_or_default();
        // Keptn's message comes first, unchanged; our summary may follow on its own line.
        if !got.starts_with(m) || !(got.len() == m.len() || got[m.len()..].starts_with('\n')) {
            errors.push(format!("message: expected {m:?} first, got {got:?}"));
        }
    }
    if let Some(Value::Array(expected)) = exp.get("indicatorResults") {
        let actual: Vec<Value> = ev["indicatorResults"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if expected.len() != actual.len() {
            errors.push(format!(
                "indicatorResults: expected {} entries, got {}",
                expected.len(),
                actual.len()
            ));
        }
        for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
            for (k, v) in e.as_object().into_iter().flatten() {
                let path = format!("indicatorResults[{i}].{k}");
                match k.as_str() {
                    "metric" | "success" | "message" | "comparedValue" => {
                        check_field(&path, v, a["value"].get(k), &mut errors)
                    }
                    "value" => check_field(&path, v, a["value"].get("value"), &mut errors),
                    "passTargets" | "warningTargets" => {
                        check_targets(&path, v, a.get(k), &mut errors)
                    }
                    _ => check_field(&path, v, a.get(k), &mut errors),
                }
            }
        }
    }
    errors
}

#[test]
fn every_lighthouse_case_matches_keptn() {
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("cases");
    assert_eq!(cases.len(), 58, "the corpus has 58 cases");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let values = write(
            dir.path(),
            &format!("{name}.values.json"),
            case["values"].to_string(),
        );
        let previous = write(
            dir.path(),
            &format!("{name}.prev.json"),
            case["previous"].to_string(),
        );
        let mut args = vec![
            "--values".to_string(),
            values,
            "--previous".into(),
            previous,
            "--sli-status".into(),
            case["sli_status"].as_str().unwrap_or("succeeded").into(),
            "--sli-result".into(),
            case["sli_result"].as_str().unwrap_or("pass").into(),
            "--sli-message".into(),
            case["sli_message"].as_str().unwrap_or_default().into(),
        ];
        if let Some(slo) = case["slo"].as_str() {
            args.push("--slo".into());
            args.push(write(dir.path(), &format!("{name}.slo.yaml"), slo));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&argv);
        if !out.status.success() {
            failures.push(format!(
                "{name}: exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let data: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        for e in check_case(case, &data) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_timeframe_case_matches_go_utils() {
    use keptn_native::evaluation::timeframe::start_end;
    use keptn_native::keptn::time::parse_keptn;
    let cases: Vec<Value> = serde_json::from_str(TIMEFRAMES).expect("cases");
    assert_eq!(cases.len(), 14);
    for c in &cases {
        let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        let now =
            parse_keptn(c["now"].as_str().unwrap_or("2023-12-01T10:00:00.000Z")).expect("now");
        let got = start_end(&s("start"), &s("end"), &s("timeframe"), now);
        let name = s("name");
        if c["expected_error"].as_bool() == Some(true) {
            assert!(got.is_err(), "{name}: expected an error, got {got:?}");
        } else {
            let w = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(w.start, s("expected_start"), "{name}");
            assert_eq!(w.end, s("expected_end"), "{name}");
        }
    }
}
