//! The `process` backend: runs the service as a local child process on a free loopback port.
//!
//! Deploying starts the new version from the command template, waits until it answers HTTP on
//! `/`, then stops the previous version of the same project/stage/service (so a failed start
//! leaves the old one serving). It writes a Prometheus file_sd target file with the job label
//! `<service>-<project>-<stage>`, which is what the tutorial's SLI queries select on.
//! All children are killed by [`DeployBackend::shutdown`] and, as a last resort, on drop.
//!
//! Rolling back starts again the last image that ran in that project/stage/service before the
//! current one and was not itself rolled back (the backend keeps that history, in memory: its
//! processes do not outlive it either), then stops the failed one. An image is taken to have
//! passed when it was replaced by a later delivery rather than rolled back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, DeployResult, RollbackRequest,
    RollbackResult, render, request_vars,
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

/// One image that ran, in the order they started.
#[derive(Debug, Clone)]
struct Ran {
    image: String,
    strategy: String,
    /// Rolled back: never a rollback target again.
    rolled_back: bool,
}

/// The image to restore: the latest entry before the current one that was not rolled back and
/// is not the current image (pure).
fn rollback_target<'a>(history: &'a [Ran], current: &str) -> Option<&'a Ran> {
    let (_, before) = history.split_last()?;
    before
        .iter()
        .rev()
        .find(|r| !r.rolled_back && r.image != current)
}

/// Runs services as local processes.
pub struct ProcessBackend {
    command: String,
    exe: String,
    sd_dir: Option<PathBuf>,
    ready_timeout: Duration,
    http: reqwest::Client,
    running: Mutex<HashMap<Key, Running>>,
    history: Mutex<HashMap<Key, Vec<Ran>>>,
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
            history: Mutex::new(HashMap::new()),
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

    /// Starts `req.image`, waits until it answers, registers it for Prometheus and stops the
    /// version it replaces. Returns its port and the replaced `(image, port)`.
    async fn start(
        &self,
        req: &DeployRequest,
        cancel: &CancellationToken,
    ) -> Result<(u16, Option<(String, u16)>), DeployError> {
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
        Ok(match previous {
            Some(mut old) => {
                stop(&mut old.child).await;
                (port, Some((old.image, old.port)))
            }
            None => (port, None),
        })
    }

    /// Adds a started image to the history of its project/stage/service.
    async fn record(&self, req: &DeployRequest) {
        let key = (req.project.clone(), req.stage.clone(), req.service.clone());
        self.history.lock().await.entry(key).or_default().push(Ran {
            image: req.image.clone(),
            strategy: req.strategy.clone(),
            rolled_back: false,
        });
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
        let (port, previous) = self.start(req, cancel).await?;
        self.record(req).await;
        let mut message = format!("{} is running on port {port}", req.image);
        if let Some((image, old_port)) = previous {
            message.push_str(&format!("; stopped {image} on port {old_port}"));
        }
        Ok(result(req, port, message))
    }

    async fn rollback(
        &self,
        req: &RollbackRequest,
        cancel: &CancellationToken,
    ) -> Result<RollbackResult, DeployError> {
        req.validate()?;
        let key = (req.project.clone(), req.stage.clone(), req.service.clone());
        let current = self
            .running
            .lock()
            .await
            .get(&key)
            .map(|r| r.image.clone())
            .ok_or_else(|| {
                DeployError::NothingToRollBack(format!("no version of {} runs here", req.scope()))
            })?;
        let target = {
            let history = self.history.lock().await;
            let ran = history.get(&key).map(Vec::as_slice).unwrap_or_default();
            rollback_target(ran, &current).cloned().ok_or_else(|| {
                DeployError::NothingToRollBack(format!(
                    "{current} is the only version of {} that ran here",
                    req.scope()
                ))
            })?
        };
        let restore = DeployRequest {
            project: req.project.clone(),
            stage: req.stage.clone(),
            service: req.service.clone(),
            image: target.image.clone(),
            strategy: target.strategy.clone(),
            git_commit_id: req.git_commit_id.clone(),
        };
        tracing::info!(scope = %req.scope(), from = %current, to = %target.image, "rolling back");
        let (port, previous) = self.start(&restore, cancel).await?;
        {
            let mut history = self.history.lock().await;
            if let Some(last) = history.get_mut(&key).and_then(|h| h.last_mut()) {
                last.rolled_back = true;
            }
        }
        self.record(&restore).await;
        let mut message = format!(
            "rolled back {} from {current} to {}, running on port {port}",
            req.scope(),
            target.image
        );
        if let Some((image, old_port)) = previous {
            message.push_str(&format!("; stopped {image} on port {old_port}"));
        }
        Ok(RollbackResult {
            image: target.image,
            replaced: Some(current),
            deployment: result(&restore, port, message),
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

fn result(req: &DeployRequest, port: u16, message: String) -> DeployResult {
    DeployResult {
        strategy: req.strategy.clone(),
        uris_local: vec![format!("http://127.0.0.1:{port}")],
        uris_public: vec![format!("http://127.0.0.1:{port}")],
        names: vec![req.strategy.clone()],
        message,
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
    fn the_rollback_target_is_the_last_image_that_was_not_rolled_back() {
        let ran = |image: &str, rolled_back: bool| Ran {
            image: image.into(),
            strategy: "direct".into(),
            rolled_back,
        };
        assert!(rollback_target(&[], "a").is_none());
        assert!(rollback_target(&[ran("a", false)], "a").is_none());
        let h = [ran("a", false), ran("b", false), ran("c", false)];
        assert_eq!(
            rollback_target(&h, "c").map(|r| r.image.as_str()),
            Some("b")
        );
        // b failed and was rolled back to a; a redeploy of a then d fails: back to a, not b.
        let h = [
            ran("a", false),
            ran("b", true),
            ran("a", false),
            ran("d", false),
        ];
        assert_eq!(
            rollback_target(&h, "d").map(|r| r.image.as_str()),
            Some("a")
        );
        // The same image delivered again is no target for itself.
        let h = [ran("a", false), ran("a", false)];
        assert!(rollback_target(&h, "a").is_none());
    }

    #[test]
    fn sd_target_has_the_tutorial_job_label() {
        let v = sd_target(&req(), 1234);
        assert_eq!(v[0]["targets"][0], "127.0.0.1:1234");
        assert_eq!(v[0]["labels"]["job"], "helloservice-fulltour-qa");
        assert_eq!(v[0]["labels"]["instance"], "helloservice.fulltour-qa");
    }
}
