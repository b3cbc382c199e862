//! Benchmark target for `bench/loadtest.sh`: a single-threaded axum server on 127.0.0.1.
//!
//! `bench_target PORT [DELAY_MS]`: `GET /` answers `ok` after DELAY_MS (default 0). On SIGINT
//! or SIGTERM it prints the number of requests it served (`served N`) and, with a delay, the
//! mean delay it actually slept (`mean_delay_ms X`; tokio's timer rounds up to the next ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

#[derive(Clone)]
struct St {
    served: Arc<AtomicU64>,
    /// Sum of the delays actually slept, in µs (the timer rounds up).
    slept_us: Arc<AtomicU64>,
    delay: Duration,
}

async fn root(State(s): State<St>) -> &'static str {
    if !s.delay.is_zero() {
        let t0 = std::time::Instant::now();
        tokio::time::sleep(s.delay).await;
        let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        s.slept_us.fetch_add(us, Ordering::Relaxed);
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
        slept_us: Arc::new(AtomicU64::new(0)),
        delay,
    };
    let served = st.served.clone();
    let slept = st.slept_us.clone();
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
    let n = served.load(Ordering::Relaxed);
    println!("served {n}");
    if n > 0 {
        println!(
            "mean_delay_ms {:.3}",
            slept.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0
        );
    }
}
