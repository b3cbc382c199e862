//! The `helm` backend: the tutorial's deployment without the Kubernetes Job.
//!
//! Reads the chart stored as the Keptn resource `charts/<service>.tgz` (service level), writes
//! it to a temporary file and runs
//! `helm upgrade --install <release> <chart> -n <namespace> [--create-namespace]
//! --set image=<image> --wait --timeout <secs>s`, then `helm get manifest` to find the released
//! Service and report `http://<service>.<namespace>:<port>`. helm is run as a child process
//! without a shell; arguments come from validated values only.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::manifest;
use super::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, DeployResult, render, request_vars,
    validate_name,
};
use crate::resources::{ResourceScope, ResourceStore};

/// Deploys with the helm CLI.
pub struct HelmBackend {
    bin: String,
    release: String,
    namespace: String,
    timeout: Duration,
    create_namespace: bool,
    resources: Arc<dyn ResourceStore>,
}

impl HelmBackend {
    pub fn new(config: &DeployConfig, resources: Arc<dyn ResourceStore>) -> Self {
        HelmBackend {
            bin: config.helm_bin().to_string(),
            release: config.helm_release().to_string(),
            namespace: config.namespace().to_string(),
            timeout: config.helm_timeout(),
            create_namespace: config.create_namespace(),
            resources,
        }
    }

    /// The arguments of `helm upgrade --install` (pure, for tests and logs).
    pub fn upgrade_args(
        &self,
        release: &str,
        chart: &str,
        namespace: &str,
        image: &str,
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "upgrade",
            "--install",
            release,
            chart,
            "--namespace",
            namespace,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.create_namespace {
            args.push("--create-namespace".into());
        }
        args.extend([
            "--set".to_string(),
            format!("image={image}"),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", self.timeout.as_secs()),
        ]);
        args
    }

    async fn helm(
        &self,
        args: &[String],
        cancel: &CancellationToken,
        limit: Duration,
    ) -> Result<String, DeployError> {
        let child = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DeployError::Failed(format!("could not run {:?}: {e}", self.bin)))?;
        let out = tokio::select! {
            _ = cancel.cancelled() => return Err(DeployError::Cancelled),
            r = tokio::time::timeout(limit, child.wait_with_output()) => match r {
                Err(_) => return Err(DeployError::Timeout(limit, format!("helm {}", args.first().map(String::as_str).unwrap_or("")))),
                Ok(r) => r.map_err(|e| DeployError::Failed(format!("helm: {e}")))?,
            },
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(DeployError::Failed(format!(
                "helm {} failed ({}): {}",
                args.first().map(String::as_str).unwrap_or(""),
                out.status,
                tail(stderr.trim(), 1000)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[async_trait]
impl DeployBackend for HelmBackend {
    fn name(&self) -> &'static str {
        "helm"
    }

    async fn deploy(
        &self,
        req: &DeployRequest,
        cancel: &CancellationToken,
    ) -> Result<DeployResult, DeployError> {
        req.validate()?;
        let vars = request_vars(req);
        let release = render(&self.release, &vars);
        let namespace = render(&self.namespace, &vars);
        validate_name("release", &release)?;
        validate_name("namespace", &namespace)?;

        let uri = format!("charts/{}.tgz", req.service);
        let scope = ResourceScope::service(&req.project, &req.stage, &req.service);
        let chart = self
            .resources
            .get(&scope, &uri, req.git_commit_id.as_deref())
            .await
            .map_err(|e| DeployError::Failed(e.to_string()))?
            .ok_or_else(|| {
                DeployError::Failed(format!(
                    "chart resource {uri} not found for {}/{}/{}",
                    req.project, req.stage, req.service
                ))
            })?;
        let dir = tempfile_dir()?;
        let chart_path = dir.path.join(format!("{}.tgz", req.service));
        tokio::fs::write(&chart_path, chart)
            .await
            .map_err(|e| DeployError::Failed(format!("could not write chart: {e}")))?;

        let args = self.upgrade_args(
            &release,
            &chart_path.display().to_string(),
            &namespace,
            &req.image,
        );
        tracing::info!(%release, %namespace, image = %req.image, "helm upgrade --install");
        // helm enforces --timeout itself; ours is a backstop for a helm that hangs.
        self.helm(&args, cancel, self.timeout + Duration::from_secs(30))
            .await?;

        let get = vec![
            "get".to_string(),
            "manifest".into(),
            release.clone(),
            "--namespace".into(),
            namespace.clone(),
        ];
        let text = self.helm(&get, cancel, Duration::from_secs(60)).await?;
        let docs = manifest::documents(&text).map_err(DeployError::Failed)?;
        let services = manifest::services(&docs);
        let uris_local: Vec<String> = manifest::local_uri(&services, &namespace)
            .into_iter()
            .collect();
        let message = match uris_local.first() {
            Some(u) => format!(
                "Successfully deployed {} as release {release} in {namespace}: {u}",
                req.image
            ),
            None => format!(
                "Successfully deployed {} as release {release} in {namespace} (the release has no Service, so no URI)",
                req.image
            ),
        };
        Ok(DeployResult {
            strategy: req.strategy.clone(),
            uris_public: Vec::new(),
            uris_local,
            names: vec![req.strategy.clone()],
            message,
        })
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A temporary directory removed on drop (std only; `tempfile` is a dev-dependency).
struct TempDir {
    path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Under `std::env::temp_dir()`, i.e. `$TMPDIR` (default `/tmp`): the chart mounts an emptyDir
/// there, the only writable place besides the data directory under a read-only root.
fn tempfile_dir() -> Result<TempDir, DeployError> {
    let path = std::env::temp_dir().join(format!("keptn-native-helm-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&path)
        .map_err(|e| DeployError::Failed(format!("could not create {}: {e}", path.display())))?;
    Ok(TempDir { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_namespace_can_be_turned_off() {
        let store: Arc<dyn ResourceStore> =
            Arc::new(crate::resources::LocalDir::new("/nonexistent"));
        let with = HelmBackend::new(&DeployConfig::default(), store.clone());
        let args = with.upgrade_args("r", "c.tgz", "p-s", "img:1");
        assert!(args.contains(&"--create-namespace".to_string()), "{args:?}");
        let without = HelmBackend::new(
            &DeployConfig {
                create_namespace: Some(false),
                ..Default::default()
            },
            store,
        );
        let args = without.upgrade_args("r", "c.tgz", "p-s", "img:1");
        assert!(
            !args.contains(&"--create-namespace".to_string()),
            "{args:?}"
        );
        assert_eq!(
            &args[..6],
            ["upgrade", "--install", "r", "c.tgz", "--namespace", "p-s"]
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("aébc", 3), "bc");
    }
}
