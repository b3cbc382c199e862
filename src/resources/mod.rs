//! Keptn resources (`slo.yaml`, `prometheus/sli.yaml`, locust files, charts) read for a
//! project / stage / service, from Keptn's resource-service or from a local directory (§8).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

pub mod keptn;

/// Where a resource is looked up: project level, stage level or service level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    pub project: String,
    pub stage: Option<String>,
    pub service: Option<String>,
}

impl ResourceScope {
    pub fn project(project: &str) -> Self {
        ResourceScope {
            project: project.into(),
            stage: None,
            service: None,
        }
    }
    pub fn stage(project: &str, stage: &str) -> Self {
        ResourceScope {
            project: project.into(),
            stage: Some(stage.into()),
            service: None,
        }
    }
    pub fn service(project: &str, stage: &str, service: &str) -> Self {
        ResourceScope {
            project: project.into(),
            stage: Some(stage.into()),
            service: Some(service.into()),
        }
    }
}

/// Errors other than "not found" (which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("invalid resource name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("could not read resource {uri}: {reason}")]
    Unavailable { uri: String, reason: String },
}

/// A source of Keptn resources.
#[async_trait]
pub trait ResourceStore: Send + Sync + 'static {
    /// Reads one resource; `Ok(None)` when it does not exist at that level.
    async fn get(
        &self,
        scope: &ResourceScope,
        uri: &str,
        git_commit_id: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ResourceError>;
}

/// Rejects names that could leave the resource tree (`..`, `~`, absolute paths), as the
/// resource-service does.
pub fn validate_name(name: &str) -> Result<(), ResourceError> {
    let bad = |why| Err(ResourceError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains("..") || name.contains('~') {
        return bad("contains `..` or `~`");
    }
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return bad("must be a relative path");
    }
    Ok(())
}

/// Resources in a local directory: `<root>/<project>[/<stage>[/<service>]]/<uri>`.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, scope: &ResourceScope, uri: &str) -> Result<PathBuf, ResourceError> {
        let mut p = self.root.clone();
        validate_name(&scope.project)?;
        p.push(&scope.project);
        for part in [&scope.stage, &scope.service].into_iter().flatten() {
            validate_name(part)?;
            p.push(part);
        }
        validate_name(uri)?;
        p.push(uri.trim_start_matches('/'));
        Ok(p)
    }
}

#[async_trait]
impl ResourceStore for LocalDir {
    async fn get(
        &self,
        scope: &ResourceScope,
        uri: &str,
        _git_commit_id: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ResourceError> {
        let path = self.path(scope, uri)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ResourceError::Unavailable {
                uri: uri.to_string(),
                reason: format!("{}: {e}", path.display()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_dir_reads_each_level_and_reports_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = dir.path().join("p/qa/s/prometheus");
        std::fs::create_dir_all(&svc).expect("mkdir");
        std::fs::write(svc.join("sli.yaml"), "x").expect("write");
        std::fs::write(dir.path().join("p/slo.yaml"), "y").expect("write");
        let store = LocalDir::new(dir.path());
        let got = store
            .get(
                &ResourceScope::service("p", "qa", "s"),
                "prometheus/sli.yaml",
                None,
            )
            .await
            .expect("ok");
        assert_eq!(got.as_deref(), Some(&b"x"[..]));
        let got = store
            .get(&ResourceScope::project("p"), "slo.yaml", None)
            .await
            .expect("ok");
        assert_eq!(got.as_deref(), Some(&b"y"[..]));
        let missing = store
            .get(&ResourceScope::stage("p", "qa"), "slo.yaml", None)
            .await
            .expect("ok");
        assert!(missing.is_none());
    }

    #[tokio::test]
    async fn names_cannot_escape_the_root() {
        let store = LocalDir::new("/tmp");
        for (scope, uri) in [
            (ResourceScope::project("p"), "../etc/passwd"),
            (ResourceScope::project(".."), "x"),
            (ResourceScope::project("p"), "/etc/passwd"),
            (ResourceScope::stage("p", "~root"), "x"),
        ] {
            assert!(matches!(
                store.get(&scope, uri, None).await,
                Err(ResourceError::InvalidName(..))
            ));
        }
    }
}
