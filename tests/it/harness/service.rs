//! keptn-native itself, started in-process on a free port with a temporary data directory.

use keptn_native::app::{self, RunningApp};
use keptn_native::config::ServeConfig;

pub struct Service {
    pub app: Option<RunningApp>,
    pub data: tempfile::TempDir,
}

impl Service {
    pub async fn start(nats_url: &str) -> Service {
        Self::start_with(nats_url, |_| {}).await
    }

    pub async fn start_with(nats_url: &str, tweak: impl FnOnce(&mut ServeConfig)) -> Service {
        let data = tempfile::tempdir().expect("tempdir");
        let app = Self::launch(nats_url, data.path(), tweak).await;
        Service {
            app: Some(app),
            data,
        }
    }

    /// Starts a service on an existing data directory (to test restarts).
    pub async fn launch(
        nats_url: &str,
        data_dir: &std::path::Path,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> RunningApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ServeConfig::local(nats_url, data_dir);
        tweak(&mut config);
        let app = app::start(config).await.expect("service starts");
        // Ready once NATS is connected and subscriptions are in place.
        let url = format!("http://{}/ready", app.http_addr);
        let ok = super::eventually(std::time::Duration::from_secs(10), || async {
            reqwest::get(&url)
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        })
        .await;
        assert!(ok, "service did not become ready");
        // The subscription is made right after start; give the server a moment to register it.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        app
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.app.as_ref().expect("running").http_addr)
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

/// A nats-server, the service configured by `tweak`, and a peer playing Keptn's side.
pub async fn setup(
    tweak: impl FnOnce(&mut ServeConfig),
) -> (super::nats::NatsServer, Service, super::keptn::KeptnPeer) {
    let nats = super::nats::NatsServer::start();
    let svc = Service::start_with(&nats.url(), tweak).await;
    let peer = super::keptn::KeptnPeer::connect(&nats.url()).await;
    (nats, svc, peer)
}
