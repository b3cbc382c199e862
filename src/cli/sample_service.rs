//! `keptn-native sample-service`: the tutorial's podtato-head stand-in (see
//! [`crate::sample_service`]).

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sample_service::{SampleConfig, serve};

#[derive(Debug, clap::Args)]
pub struct SampleServiceArgs {
    /// Port to listen on (127.0.0.1). 0 picks a free one, printed on start.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Version reported by the service; `v0.1.2` is the slow build.
    #[arg(long, default_value = "v0.1.1")]
    pub version: String,
    /// Delay of `/` in milliseconds (default: 500 for v0.1.2, and for v0.1.3 in production; 0
    /// otherwise).
    #[arg(long)]
    pub delay_ms: Option<u64>,
    /// The stage it runs in (the deployment says so); v0.1.3 is slow only in `production`.
    #[arg(long)]
    pub stage: Option<String>,
    /// The full image reference it stands for, reported by `/version`.
    #[arg(long)]
    pub image: Option<String>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

pub fn run(args: SampleServiceArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sample-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind((args.bind, args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "sample-service: cannot listen on {}:{}: {e}",
                    args.bind, args.port
                );
                return ExitCode::FAILURE;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            eprintln!("sample-service {} listening on http://{addr}", args.version);
        }
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            s.cancel();
        });
        let config = SampleConfig {
            version: args.version,
            image: args.image,
            stage: args.stage,
            delay: args.delay_ms.map(Duration::from_millis),
        };
        match serve(listener, config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sample-service: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
