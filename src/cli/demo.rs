//! `keptn-native demo`: the tutorial end to end on this machine (see [`crate::demo`]).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::demo::{self, DemoOptions};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Use the tutorial's own shipyard and load settings unchanged (2m timeframes, 1m load tests).
    #[arg(long)]
    pub tutorial: bool,
    /// Write what happened as JSON to this file.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Keep the temporary directory with the servers' logs and data.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: DemoArgs) -> ExitCode {
    crate::telemetry::init_quiet();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keptn-native demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = DemoOptions {
        tutorial: args.tutorial,
        keep: args.keep,
    };
    match rt.block_on(demo::run(&opts)) {
        Err(e) => {
            eprintln!("keptn-native demo: {e:#}");
            ExitCode::from(2)
        }
        Ok(summary) => {
            if let Some(path) = &args.summary {
                let body = serde_json::to_vec_pretty(&summary).unwrap_or_default();
                if let Err(e) = std::fs::write(path, body) {
                    eprintln!("keptn-native demo: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if summary.as_expected {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
