//! Benchmark target for `bench/loadtest.sh`: a single-threaded axum server on 127.0.0.1.
//!
//! `bench_target PORT [DELAY_MS]`: `GET /` answers `ok` after DELAY_MS (default 0). On SIGINT
//! or SIGTERM it prints the number of requests it served (`served N`) to stdout and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

#[derive(Clone)]
struct St {
    served: Arc<AtomicU64>,
    delay: Duration,
}

async fn root(State(s): State<St>) -> &'static str {
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    s.served.fetch_add(1, Ordering::Relaxed);
    "ok"
}

#[allow(clippy::expect_used, clippy::unwrap_used)]
fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: bench_target PORT [DELAY_MS]");
    let delay = Duration::from_millis(args.next().and_then(|d| d.parse().ok()).unwrap_or(0));
    let st = St {
        served: Arc::new(AtomicU64::new(0)),
        delay,
    };
    let served = st.served.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = Router::new().route("/", get(root)).with_state(st);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = shutdown => {}
        }
    });
    println!("served {}", served.load(Ordering::Relaxed));
}
