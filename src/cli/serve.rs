//! `keptn-native serve`: the service.

use std::process::ExitCode;

use tracing::{error, info};

pub use crate::config::ServeArgs;

/// Resolves the configuration (exit 2 listing every problem), then runs until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> ExitCode {
    let file = match args.load_file() {
        Ok(f) => f,
        Err(problems) => return config_error(&problems),
    };
    let config = match args.resolve(file) {
        Ok(c) => c,
        Err(problems) => return config_error(&problems),
    };
    crate::telemetry::init(config.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match crate::app::start(config).await {
            Ok(app) => app,
            Err(e) => {
                error!(error = %format!("{e:#}"), "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let stop = app.stop_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            info!("signal received");
            stop.cancel();
        });
        if app.wait_status().await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

fn config_error(problems: &[String]) -> ExitCode {
    eprintln!("invalid configuration:");
    for p in problems {
        eprintln!("  - {p}");
    }
    ExitCode::from(2)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
