//! The `helm` backend: the tutorial's deployment without the Kubernetes Job.
//!
//! Reads the chart stored as the Keptn resource `charts/<service>.tgz` (service level), writes
//! it to a temporary file and runs
//! `helm upgrade --install <release> <chart> -n <namespace> [--create-namespace]
//! --set image=<image> --wait --timeout <secs>s`, then `helm get manifest` to find the released
//! Service and report `http://<service>.<namespace>:<port>`. helm is run as a child process
//! without a shell; arguments come from validated values only.
//!
//! Rolling back reads `helm history`, picks the latest `superseded` revision below the
//! `deployed` one (a failed upgrade is never a target), runs `helm rollback <release>
//! <revision> --wait`, and reports the image from `helm get values` and the URI as above.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::manifest;
use super::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, DeployResult, RollbackRequest,
    RollbackResult, render, request_vars, validate_name,
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

    /// The release and namespace of a project/stage/service, validated.
    fn release_of(&self, vars: &super::Vars<'_>) -> Result<(String, String), DeployError> {
        let release = render(&self.release, vars);
        let namespace = render(&self.namespace, vars);
        validate_name("release", &release)?;
        validate_name("namespace", &namespace)?;
        Ok((release, namespace))
    }

    /// `http://<service>.<namespace>:<port>` of the release's Service, if it has one.
    async fn local_uris(
        &self,
        release: &str,
        namespace: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>, DeployError> {
        let get = vec![
            "get".to_string(),
            "manifest".into(),
            release.to_string(),
            "--namespace".into(),
            namespace.to_string(),
        ];
        let text = self.helm(&get, cancel, Duration::from_secs(60)).await?;
        let docs = manifest::documents(&text).map_err(DeployError::Failed)?;
        let services = manifest::services(&docs);
        Ok(manifest::local_uri(&services, namespace)
            .into_iter()
            .collect())
    }

    /// The `image` value of a revision (the current one when `None`).
    async fn image_of(
        &self,
        release: &str,
        namespace: &str,
        revision: Option<u64>,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, DeployError> {
        let mut args: Vec<String> = [
            "get",
            "values",
            release,
            "--namespace",
            namespace,
            "--output",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(r) = revision {
            args.extend(["--revision".into(), r.to_string()]);
        }
        let text = self.helm(&args, cancel, Duration::from_secs(60)).await?;
        let values: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        Ok(values
            .get("image")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string))
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
        let (release, namespace) = self.release_of(&request_vars(req))?;

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

        let uris_local = self.local_uris(&release, &namespace, cancel).await?;
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

    async fn rollback(
        &self,
        req: &RollbackRequest,
        cancel: &CancellationToken,
    ) -> Result<RollbackResult, DeployError> {
        req.validate()?;
        let (release, namespace) = self.release_of(&req.vars())?;
        let history_args: Vec<String> = [
            "history",
            &release,
            "--namespace",
            &namespace,
            "--max",
            "256",
            "--output",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let history: Vec<Revision> = match self
            .helm(&history_args, cancel, Duration::from_secs(60))
            .await
        {
            Ok(text) => serde_json::from_str(text.trim()).map_err(|e| {
                DeployError::Failed(format!("helm history of {release}: unexpected output: {e}"))
            })?,
            Err(DeployError::Failed(m)) if m.contains("not found") => {
                return Err(DeployError::NothingToRollBack(format!(
                    "release {release} does not exist in {namespace}"
                )));
            }
            Err(e) => return Err(e),
        };
        let target = rollback_revision(&history).ok_or_else(|| {
            DeployError::NothingToRollBack(format!(
                "release {release} in {namespace} has no earlier successful revision (revisions: {})",
                history
                    .iter()
                    .map(|r| format!("{} {}", r.revision, r.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let replaced = self.image_of(&release, &namespace, None, cancel).await?;
        let args: Vec<String> = [
            "rollback".to_string(),
            release.clone(),
            target.to_string(),
            "--namespace".into(),
            namespace.clone(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", self.timeout.as_secs()),
        ]
        .into();
        tracing::info!(%release, %namespace, revision = target, "helm rollback");
        self.helm(&args, cancel, self.timeout + Duration::from_secs(30))
            .await?;
        let image = self
            .image_of(&release, &namespace, Some(target), cancel)
            .await?
            .unwrap_or_else(|| format!("revision {target} of {release}"));
        let uris_local = self.local_uris(&release, &namespace, cancel).await?;
        Ok(RollbackResult::in_cluster(
            req,
            &format!("release {release} in {namespace} to revision {target}"),
            image,
            replaced,
            uris_local,
        ))
    }
}

/// One entry of `helm history --output json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Revision {
    pub revision: u64,
    #[serde(default)]
    pub status: String,
}

/// The revision `helm rollback` restores (pure): the latest `superseded` one below the
/// `deployed` one. `None` when there is none (a single revision, or only failed ones).
pub fn rollback_revision(history: &[Revision]) -> Option<u64> {
    let current = history
        .iter()
        .filter(|r| r.status == "deployed")
        .map(|r| r.revision)
        .max()?;
    history
        .iter()
        .filter(|r| r.revision < current && r.status == "superseded")
        .map(|r| r.revision)
        .max()
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
    fn rollback_goes_to_the_latest_superseded_revision_below_the_deployed_one() {
        let h = |v: &[(u64, &str)]| -> Vec<Revision> {
            v.iter()
                .map(|(r, s)| Revision {
                    revision: *r,
                    status: s.to_string(),
                })
                .collect()
        };
        assert_eq!(
            rollback_revision(&h(&[(1, "superseded"), (2, "superseded"), (3, "deployed")])),
            Some(2)
        );
        assert_eq!(
            rollback_revision(&h(&[(1, "superseded"), (2, "failed"), (3, "deployed")])),
            Some(1),
            "a failed upgrade is never a target"
        );
        assert_eq!(rollback_revision(&h(&[(1, "deployed")])), None);
        assert_eq!(
            rollback_revision(&h(&[(1, "failed"), (2, "deployed")])),
            None
        );
        assert_eq!(
            rollback_revision(&h(&[(1, "superseded"), (2, "failed")])),
            None
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("aébc", 3), "bc");
    }
}
