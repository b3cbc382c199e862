//! The demo's own `nats-server` and `prometheus`: found on PATH, started on free loopback
//! ports in a temporary directory, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A child server, killed on drop.
pub struct ChildServer {
    pub name: &'static str,
    pub port: u16,
    _child: Child,
}

impl ChildServer {
    /// Stops the server and waits until it has exited.
    pub async fn stop(mut self) {
        let _ = self._child.kill().await;
    }
}

/// Finds an executable on PATH (and the sbin directories Debian installs servers to).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Every missing server, with how to install it.
pub fn missing() -> Vec<String> {
    ["nats-server", "prometheus"]
        .into_iter()
        .filter(|n| find(n).is_none())
        .map(|n| {
            format!(
                "`{n}` is not installed (scripts/setup.sh installs it; or on Debian/Ubuntu: apt-get install -y {n})"
            )
        })
        .collect()
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_tcp(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not start listening on 127.0.0.1:{port} within 30 s")
}

/// Starts `nats-server` on a free port.
pub async fn nats(dir: &Path) -> anyhow::Result<ChildServer> {
    let bin = find("nats-server").context("nats-server not found")?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("nats-server.log"))?;
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting nats-server")?;
    wait_tcp(port, "nats-server").await?;
    Ok(ChildServer {
        name: "nats-server",
        port,
        _child: child,
    })
}

/// Starts `prometheus` scraping the file_sd targets in `sd_dir` every second.
pub async fn prometheus(dir: &Path, sd_dir: &Path) -> anyhow::Result<ChildServer> {
    let bin = find("prometheus").context("prometheus not found")?;
    let port = free_port()?;
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: keptn-native-demo\n    honor_labels: true\n    \
             file_sd_configs:\n      - files: ['{}/*.json']\n        refresh_interval: 1s\n",
            sd_dir.display()
        ),
    )?;
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting prometheus")?;
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/-/ready"))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(ChildServer {
                name: "prometheus",
                port,
                _child: child,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "prometheus did not become ready within 30 s (see {})",
        dir.join("prometheus.log").display()
    )
}
