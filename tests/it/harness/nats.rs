//! A real `nats-server` (/usr/sbin/nats-server or PATH) on a free port, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nats {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nats {
    pub async fn start() -> Nats {
        let bin = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".to_string()
        } else {
            "nats-server".to_string()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_port();
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let nats = Nats {
            child,
            port,
            _dir: dir,
        };
        super::wait_for_port(port, Duration::from_secs(10)).await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats")
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
