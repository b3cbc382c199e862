//! A real HTTP server (axum on 127.0.0.1, port 0) to aim load at, with its own request counter.
//!
//! Routes: `GET /` (200 `ok`), `GET /delay/{ms}`, `GET /status/{code}`, `GET /broken` (the body
//! breaks off mid-stream), `POST /echo` (200, the request body back).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

pub struct HttpTarget {
    pub url: String,
    counter: Arc<AtomicU64>,
    stop: tokio_util::sync::CancellationToken,
}

impl HttpTarget {
    pub async fn start() -> HttpTarget {
        let counter = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/delay/{ms}",
                get(|Path(ms): Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "late"
                }),
            )
            .route(
                "/status/{code}",
                get(|Path(code): Path<u16>| async move {
                    StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
                }),
            )
            .route(
                "/broken",
                get(|| async {
                    use futures::StreamExt;
                    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                        Ok(Bytes::from_static(b"partial")),
                        Err(std::io::Error::other("boom")),
                    ];
                    // The error comes after the head and first chunk are on the wire.
                    let stream = futures::stream::iter(chunks).then(|c| async move {
                        if c.is_err() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        c
                    });
                    Body::from_stream(stream)
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
            .layer(axum::middleware::from_fn_with_state(
                counter.clone(),
                |State(c): State<Arc<AtomicU64>>,
                 req: axum::extract::Request,
                 next: axum::middleware::Next| async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        HttpTarget {
            url: format!("http://127.0.0.1:{port}"),
            counter,
            stop,
        }
    }

    /// Requests the server has received.
    pub fn count(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
