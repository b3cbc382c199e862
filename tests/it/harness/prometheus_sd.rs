//! A real `prometheus` (PATH) on a free port, scraping file_sd targets from a directory every
//! second; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts prometheus with `file_sd_configs` reading `<sd_dir>/*.json`.
    pub async fn start(sd_dir: &Path) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: keptn-native\n    honor_labels: true\n    file_sd_configs:\n      - files: ['{}/*.json']\n        refresh_interval: 1s\n",
            sd_dir.display()
        );
        let cfg: PathBuf = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("config");
        let port = super::free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (apt-get install -y prometheus)");
        let p = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let http = super::http();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/-/ready", p.url())).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first sample of an instant query, if any.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let v: serde_json::Value = super::http()
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
