//! A real `prometheus` server on a free port, with deterministic data backfilled by
//! `promtool tsdb create-blocks-from openmetrics` before it starts. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, find_binary, free_port};

pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// The binaries, or `None` with a message when prometheus is not installed.
    pub fn binaries() -> Option<(PathBuf, PathBuf)> {
        match (find_binary("prometheus"), find_binary("promtool")) {
            (Some(p), Some(t)) => Some((p, t)),
            _ => None,
        }
    }

    /// Backfills `openmetrics` (must end with `# EOF`) and starts prometheus on it.
    pub async fn start(openmetrics: &str) -> Prometheus {
        let (prom, promtool) =
            Self::binaries().expect("prometheus and promtool on PATH (apt-get install prometheus)");
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let input = dir.path().join("input.om");
        std::fs::write(&input, openmetrics).expect("write openmetrics");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").expect("write config");
        let port = free_port();
        let child = Command::new(&prom)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let url = format!("{}/-/ready", p.url());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let ready = eventually(Duration::from_secs(30), || {
            let (client, url) = (client.clone(), url.clone());
            async move { matches!(client.get(&url).send().await, Ok(r) if r.status().is_success()) }
        })
        .await;
        assert!(ready, "prometheus did not become ready on port {port}");
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One series: its labels (`a="b",c="d"`) and samples `(unix_seconds, value)`.
pub type Series = (String, Vec<(i64, f64)>);

/// OpenMetrics text for gauges: `(family, series)`.
pub fn openmetrics(families: &[(&str, Vec<Series>)]) -> String {
    let mut s = String::new();
    for (name, series) in families {
        s.push_str(&format!("# TYPE {name} gauge\n"));
        for (labels, samples) in series {
            for (t, v) in samples {
                s.push_str(&format!("{name}{{{labels}}} {v} {t}\n"));
            }
        }
    }
    s.push_str("# EOF\n");
    s
}
