//! `keptn-native demo` as a user runs it: real nats-server, real prometheus, real processes.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_promotes_the_good_build_and_stops_the_slow_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_keptn-native"))
        .arg("demo")
        .arg("--summary")
        .arg(&summary)
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("short demo"),
        "the shortening is stated: {stdout}"
    );
    // It ends in order: no warning or error from a client left connected to a stopped server.
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "the demo ends without warnings: {stderr}"
    );
    let stopped = stdout
        .find("stopped keptn-native")
        .expect("says what it stopped");
    let what_happened = stdout.find("== what happened").expect("summary");
    assert!(
        stopped < what_happened,
        "servers stop before the summary: {stdout}"
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary written")).expect("json");
    assert_eq!(s["as_expected"], true);
    let runs = s["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0]["image"],
        "ghcr.io/podtato-head/podtatoserver:v0.1.1"
    );
    let stages = |r: &Value| -> Vec<(String, String)> {
        r["sequences"]
            .as_array()
            .expect("sequences")
            .iter()
            .map(|q| {
                (
                    q["stage"].as_str().unwrap_or_default().to_string(),
                    q["result"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        stages(&runs[0]),
        [
            ("qa".into(), "pass".into()),
            ("production".into(), "pass".into())
        ]
    );
    assert_eq!(stages(&runs[1]), [("qa".to_string(), "fail".to_string())]);
    let qa_tasks = runs[0]["sequences"][0]["tasks"].as_array().expect("tasks");
    let names: Vec<&str> = qa_tasks.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["je-deployment", "je-test", "evaluation"]);
    for t in qa_tasks {
        assert_eq!(t["status"], "succeeded", "{t}");
        assert!(t["duration_ms"].is_u64());
    }
    let slow_eval = &runs[1]["sequences"][0]["tasks"][2];
    assert_eq!(slow_eval["name"], "evaluation");
    assert_eq!(slow_eval["result"], "fail");
    assert!(
        slow_eval["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP Response Time")),
        "{slow_eval}"
    );
}

#[test]
fn the_demo_says_how_to_install_a_missing_server() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_keptn-native"))
        .arg("demo")
        .env("PATH", empty.path())
        .output()
        .expect("run the demo");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`prometheus` is not installed")
            && err.contains("apt-get install -y prometheus"),
        "{err}"
    );
}
