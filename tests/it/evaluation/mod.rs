//! Evaluation: Keptn's conformance cases through the CLI, the timeframe cases, and the quality
//! gate against a real Prometheus.

mod conformance;
mod history;
mod nats;
mod prometheus;

use std::path::Path;
use std::process::Output;

/// Runs `keptn-native evaluate <args>` and returns its output.
pub fn cli(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_keptn-native"))
        .arg("evaluate")
        .args(args)
        .output()
        .expect("run keptn-native")
}

/// Writes a file into `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p.to_string_lossy().into_owned()
}
