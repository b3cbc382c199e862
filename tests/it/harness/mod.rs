//! Starts what the integration tests need, on free loopback ports, killed on drop.

#![allow(dead_code)]

pub mod nats;
pub mod prometheus;

use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts TCP connections on `port` (bounded).
pub async fn wait_for_port(port: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on port {port} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reqwest client for plain HTTP on loopback.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_keptn-native")
}
