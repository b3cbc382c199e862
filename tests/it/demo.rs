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
    assert_eq!(runs.len(), 3, "v0.1.1, v0.1.2, v0.1.3");
    assert_eq!(
        runs[0]["image"],
        "ghcr.io/podtato-head/podtatoserver:v0.1.1"
    );
    let stages = |r: &Value| -> Vec<String> {
        r["sequences"]
            .as_array()
            .expect("sequences")
            .iter()
            .map(|q| format!("{} {} {}", q["stage"], q["sequence"], q["result"]).replace('"', ""))
            .collect()
    };
    let image = |tag: &str| format!("ghcr.io/podtato-head/podtatoserver:{tag}");
    // What each stage's sample service said it is, after each run.
    let running = |r: &Value| {
        (
            r["running"]["qa"].clone(),
            r["running"]["production"].clone(),
        )
    };
    assert_eq!(
        stages(&runs[0]),
        ["qa delivery pass", "production delivery pass"]
    );
    assert_eq!(
        running(&runs[0]),
        (image("v0.1.1").into(), image("v0.1.1").into())
    );
    assert_eq!(stages(&runs[1]), ["qa delivery fail"]);
    assert_eq!(
        running(&runs[1]),
        (image("v0.1.2").into(), image("v0.1.1").into()),
        "v0.1.2 is not promoted"
    );
    assert_eq!(runs[2]["image"], image("v0.1.3"));
    assert_eq!(
        stages(&runs[2]),
        [
            "qa delivery pass",
            "production delivery fail",
            "production rollback pass"
        ]
    );
    assert_eq!(
        running(&runs[2]),
        (image("v0.1.3").into(), image("v0.1.1").into()),
        "production runs v0.1.1 again"
    );
    let prod_eval = &runs[2]["sequences"][1]["tasks"][3];
    assert_eq!(prod_eval["name"], "evaluation");
    assert!(
        prod_eval["message"]
            .as_str()
            .is_some_and(|m| m.contains("FAIL HTTP Response Time")),
        "v0.1.3 fails production on its response time: {prod_eval}"
    );
    let rollback = &runs[2]["sequences"][2]["tasks"][0];
    assert_eq!(rollback["name"], "rollback");
    assert_eq!(rollback["result"], "pass");
    assert!(
        rollback["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!(
                "from {} to {}",
                image("v0.1.3"),
                image("v0.1.1")
            ))),
        "{rollback}"
    );
    assert!(
        stdout.contains("v0.1.3 passed qa, failed production and was rolled back"),
        "the closing summary says so: {stdout}"
    );
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
