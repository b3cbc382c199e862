//! A real `nats-server` (Debian package) on a free port, killed on drop; restartable on the
//! same port (and, with JetStream, the same store directory) to test reconnection.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_binary, free_port};

pub struct NatsServer {
    pub port: u16,
    bin: PathBuf,
    /// Extra arguments (authentication).
    args: Vec<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// Starts a server with JetStream, its store in a directory of its own that survives
    /// [`NatsServer::restart`].
    pub fn start_js() -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("js").display().to_string();
        let mut s = NatsServer {
            port: free_port(),
            bin: find_binary("nats-server")
                .expect("nats-server not found: apt-get install -y nats-server"),
            args: vec!["-js".into(), "-sd".into(), store],
            child: None,
            _dir: dir,
        };
        s.spawn();
        s
    }

    /// Starts a server with extra arguments, e.g. `["--user", "u", "--pass", "p"]`.
    pub fn start_with(args: &[&str]) -> NatsServer {
        let bin = find_binary("nats-server")
            .expect("nats-server not found: apt-get install -y nats-server");
        let mut s = NatsServer {
            port: free_port(),
            bin,
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
            _dir: tempfile::tempdir().expect("tempdir"),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A client connected to this server.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats-server")
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server and starts a new one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
