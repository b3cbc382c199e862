//! The `process` backend: runs the service as a local child process on a free loopback port.
//!
//! Deploying starts the new version from the command template, waits until it answers HTTP on
//! `/`, then stops the previous version of the same project/stage/service (so a failed start
//! leaves the old one serving). It writes a Prometheus file_sd target file with the job label
//! `<service>-<project>-<stage>`, which is what the tutorial's SLI queries select on.
//! All children are killed by [`ProcessBackend::shutdown`] and, as a last resort, on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, DeployResult, render, request_vars,
};

/// A running deployment.
#[derive(Debug)]
struct Running {
    child: Child,
    port: u16,
    image: String,
}

/// Key: (project, stage, service).
type Key = (String, String, String);

/// Runs services as local processes.
pub struct ProcessBackend {
    command: String,
    exe: String,
    sd_dir: Option<PathBuf>,
    ready_timeout: Duration,
    http: reqwest::Client,
    running: Mutex<HashMap<Key, Running>>,
}

impl ProcessBackend {
    /// `http` is used for the readiness probe (plain HTTP on 127.0.0.1).
    pub fn new(config: &DeployConfig, http: reqwest::Client) -> Self {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "keptn-native".into());
        ProcessBackend {
            command: config.process_command().to_string(),
            exe,
            sd_dir: config.process_sd_dir.clone(),
            ready_timeout: config.process_ready_timeout(),
            http,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Overrides what `{exe}` stands for (tests run the library from a test binary).
    pub fn with_exe(mut self, exe: impl Into<String>) -> Self {
        self.exe = exe.into();
        self
    }

    /// The port of the running deployment, if any.
    pub async fn port_of(&self, project: &str, stage: &str, service: &str) -> Option<u16> {
        let key = (project.to_string(), stage.to_string(), service.to_string());
        self.running.lock().await.get(&key).map(|r| r.port)
    }

    fn argv(&self, req: &DeployRequest, port: u16) -> Vec<String> {
        let port = port.to_string();
        let mut vars = request_vars(req);
        vars.insert("port", &port);
        vars.insert("exe", &self.exe);
        // Split first, then substitute: a value can never add arguments.
        self.command
            .split_whitespace()
            .map(|part| render(part, &vars))
            .collect()
    }

    async fn wait_ready(
        &self,
        child: &mut Child,
        port: u16,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| DeployError::Failed(e.to_string()))?
            {
                return Err(DeployError::Failed(format!(
                    "process exited with {status} before answering on {url}"
                )));
            }
            let last = match self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(DeployError::Timeout(
                    self.ready_timeout,
                    format!("{url}: {last}"),
                ));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

#[async_trait]
impl DeployBackend for ProcessBackend {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn deploy(
        &self,
        req: &DeployRequest,
        cancel: &CancellationToken,
    ) -> Result<DeployResult, DeployError> {
        req.validate()?;
        let port = free_port()?;
        let argv = self.argv(req, port);
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| DeployError::Config("process command is empty".into()))?;
        tracing::info!(project = %req.project, stage = %req.stage, service = %req.service,
            image = %req.image, port, %program, "starting process");
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DeployError::Failed(format!("could not start {program:?}: {e}")))?;

        if let Err(e) = self.wait_ready(&mut child, port, cancel).await {
            stop(&mut child).await;
            return Err(e);
        }

        let key = (req.project.clone(), req.stage.clone(), req.service.clone());
        let previous = self.running.lock().await.insert(
            key,
            Running {
                child,
                port,
                image: req.image.clone(),
            },
        );
        if let Some(dir) = &self.sd_dir {
            write_sd_target(dir, req, port).await?;
        }
        let mut message = format!("{} is running on port {port}", req.image);
        if let Some(mut old) = previous {
            stop(&mut old.child).await;
            message.push_str(&format!("; stopped {} on port {}", old.image, old.port));
        }
        Ok(DeployResult {
            strategy: req.strategy.clone(),
            uris_local: vec![format!("http://127.0.0.1:{port}")],
            uris_public: vec![format!("http://127.0.0.1:{port}")],
            names: vec![req.strategy.clone()],
            message,
        })
    }

    /// Stops every process this backend started.
    async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        for ((project, stage, service), mut r) in running.drain() {
            tracing::info!(%project, %stage, %service, image = %r.image, "stopping deployed process");
            stop(&mut r.child).await;
        }
    }
}

impl Drop for ProcessBackend {
    fn drop(&mut self) {
        // kill_on_drop on each Child does the work; this only makes the intent visible.
        if let Ok(mut running) = self.running.try_lock() {
            for r in running.values_mut() {
                let _ = r.child.start_kill();
            }
        }
    }
}

async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

fn free_port() -> Result<u16, DeployError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DeployError::Failed(format!("no free port: {e}")))
}

/// The job label the tutorial's SLIs select on.
pub fn job_label(req: &DeployRequest) -> String {
    format!("{}-{}-{}", req.service, req.project, req.stage)
}

/// The file_sd JSON for one target. `instance` names the service, not the process, as a
/// Kubernetes Service address would: each new version continues the same series (a counter
/// reset, which `rate()` handles), so an SLI window spanning a version change divides one
/// series instead of adding up the old process's `0/0 = NaN`.
pub fn sd_target(req: &DeployRequest, port: u16) -> serde_json::Value {
    serde_json::json!([{
        "targets": [format!("127.0.0.1:{port}")],
        "labels": {
            "job": job_label(req),
            "instance": format!("{}.{}-{}", req.service, req.project, req.stage),
            "keptn_project": req.project,
            "keptn_stage": req.stage,
            "keptn_service": req.service,
        }
    }])
}

/// Writes `<dir>/<job>.json` atomically (Prometheus may read it at any moment).
async fn write_sd_target(dir: &Path, req: &DeployRequest, port: u16) -> Result<(), DeployError> {
    let io = |e: std::io::Error| {
        DeployError::Failed(format!(
            "could not write file_sd target in {}: {e}",
            dir.display()
        ))
    };
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let name = job_label(req);
    let tmp = dir.join(format!(".{name}.json.tmp"));
    let body = serde_json::to_vec_pretty(&sd_target(req, port)).unwrap_or_default();
    tokio::fs::write(&tmp, body).await.map_err(io)?;
    tokio::fs::rename(&tmp, dir.join(format!("{name}.json")))
        .await
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DeployRequest {
        DeployRequest {
            project: "fulltour".into(),
            stage: "qa".into(),
            service: "helloservice".into(),
            image: "ghcr.io/podtato-head/podtatoserver:v0.1.1".into(),
            strategy: "direct".into(),
            git_commit_id: None,
        }
    }

    #[test]
    fn argv_substitutes_after_splitting() {
        let cfg = DeployConfig {
            process_command: Some("{exe} run --image {image} --port={port} {tag}".into()),
            ..Default::default()
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let b = ProcessBackend::new(&cfg, reqwest::Client::new()).with_exe("/bin/x");
        let mut r = req();
        r.image = "img:has space".into(); // never valid, but splitting must not depend on it
        assert_eq!(
            b.argv(&r, 4242),
            vec![
                "/bin/x",
                "run",
                "--image",
                "img:has space",
                "--port=4242",
                "has space"
            ]
        );
    }

    #[test]
    fn sd_target_has_the_tutorial_job_label() {
        let v = sd_target(&req(), 1234);
        assert_eq!(v[0]["targets"][0], "127.0.0.1:1234");
        assert_eq!(v[0]["labels"]["job"], "helloservice-fulltour-qa");
        assert_eq!(v[0]["labels"]["instance"], "helloservice.fulltour-qa");
    }
}
