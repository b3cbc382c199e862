//! The helm backend against a fake `helm` executable: a shell script written by the test that
//! records its arguments and prints a release manifest (there is no helm or cluster here).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use keptn_native::deploy::helm::HelmBackend;
use keptn_native::deploy::{
    DeployBackend, DeployConfig, DeployError, DeployRequest, RollbackRequest,
};
use keptn_native::resources::LocalDir;
use tokio_util::sync::CancellationToken;

const MANIFEST: &str = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: helloservice\nspec:\n  ports:\n    - port: 9000\n    - port: 80\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: helloservice\n";

/// Writes a fake helm that appends each call's arguments (one per line, then `--`) to
/// `<dir>/calls`, prints the manifest on `get manifest`, `<dir>/history.json` on `history`
/// (else fails like helm for an unknown release), `<dir>/values-<revision|current>.json` on
/// `get values`, and fails `upgrade` when `FAIL_UPGRADE` exists in `<dir>`.
fn fake_helm(dir: &Path) -> String {
    let calls = dir.join("calls");
    std::fs::write(dir.join("manifest.yaml"), MANIFEST).expect("manifest");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> {calls}; done\necho -- >> {calls}\n\
         if [ \"$1\" = upgrade ] && [ -e {dir}/FAIL_UPGRADE ]; then echo 'Error: UPGRADE FAILED: timed out waiting for the condition' >&2; exit 1; fi\n\
         if [ \"$1\" = upgrade ]; then cp \"$4\" {dir}/chart-seen.tgz; fi\n\
         if [ \"$1\" = history ]; then if [ -e {dir}/history.json ]; then cat {dir}/history.json; exit 0; fi; echo 'Error: release: not found' >&2; exit 1; fi\n\
         if [ \"$1\" = get ] && [ \"$2\" = values ]; then rev=current; prev=; for a in \"$@\"; do if [ \"$prev\" = --revision ]; then rev=$a; fi; prev=$a; done; cat {dir}/values-$rev.json; exit 0; fi\n\
         if [ \"$1\" = get ]; then cat {dir}/manifest.yaml; fi\nexit 0\n",
        calls = calls.display(),
        dir = dir.display()
    );
    let path = dir.join("helm");
    std::fs::write(&path, script).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

fn calls(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    text.split("--\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect()
}

fn setup() -> (tempfile::TempDir, tempfile::TempDir, HelmBackend) {
    let bin = tempfile::tempdir().expect("tempdir");
    let res = tempfile::tempdir().expect("tempdir");
    let charts = res.path().join("fulltour/qa/helloservice/charts");
    std::fs::create_dir_all(&charts).expect("mkdir");
    std::fs::write(charts.join("helloservice.tgz"), b"chart-bytes").expect("chart");
    let cfg = DeployConfig {
        helm_bin: Some(fake_helm(bin.path())),
        helm_timeout_secs: Some(120),
        ..Default::default()
    };
    let backend = HelmBackend::new(&cfg, Arc::new(LocalDir::new(res.path())));
    (bin, res, backend)
}

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

#[tokio::test]
async fn helm_upgrade_install_with_the_chart_resource_and_uri_from_the_service() {
    let (bin, _res, backend) = setup();
    let r = backend
        .deploy(&req(), &CancellationToken::new())
        .await
        .expect("deploy");
    assert_eq!(r.uris_local, vec!["http://helloservice.fulltour-qa:80"]);
    assert_eq!(r.names, vec!["direct"]);
    let c = calls(bin.path());
    assert_eq!(c.len(), 2, "{c:?}");
    let up = &c[0];
    assert_eq!(&up[..3], ["upgrade", "--install", "helloservice"]);
    assert!(up[3].ends_with("helloservice.tgz"));
    assert_eq!(
        &up[4..],
        [
            "--namespace",
            "fulltour-qa",
            "--create-namespace",
            "--set",
            "image=ghcr.io/podtato-head/podtatoserver:v0.1.1",
            "--wait",
            "--timeout",
            "120s"
        ]
    );
    assert_eq!(
        c[1],
        [
            "get",
            "manifest",
            "helloservice",
            "--namespace",
            "fulltour-qa"
        ]
    );
    assert_eq!(
        std::fs::read(bin.path().join("chart-seen.tgz")).expect("chart"),
        b"chart-bytes",
        "the stored chart was passed"
    );
}

#[tokio::test]
async fn helm_failures_and_missing_charts_are_reported_with_the_reason() {
    let (bin, _res, backend) = setup();
    std::fs::write(bin.path().join("FAIL_UPGRADE"), "").expect("flag");
    match backend.deploy(&req(), &CancellationToken::new()).await {
        Err(DeployError::Failed(m)) => assert!(
            m.contains("UPGRADE FAILED") && m.contains("timed out"),
            "{m}"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        calls(bin.path()).len(),
        1,
        "no get manifest after a failed upgrade"
    );

    let mut other = req();
    other.stage = "production".into();
    match backend.deploy(&other, &CancellationToken::new()).await {
        Err(DeployError::Failed(m)) => {
            assert!(m.contains("charts/helloservice.tgz not found"), "{m}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    let missing = HelmBackend::new(
        &DeployConfig {
            helm_bin: Some("/nonexistent/helm".into()),
            ..Default::default()
        },
        Arc::new(LocalDir::new(_res.path())),
    );
    match missing.deploy(&req(), &CancellationToken::new()).await {
        Err(DeployError::Failed(m)) => assert!(m.contains("could not run"), "{m}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn rollback_req() -> RollbackRequest {
    RollbackRequest {
        project: "fulltour".into(),
        stage: "qa".into(),
        service: "helloservice".into(),
        strategy: "direct".into(),
        git_commit_id: None,
    }
}

#[tokio::test]
async fn helm_rollback_goes_to_the_previous_good_revision_and_reports_its_image() {
    let (bin, _res, backend) = setup();
    let dir = bin.path();
    std::fs::write(
        dir.join("history.json"),
        r#"[{"revision":1,"status":"superseded","chart":"helloservice-0.1.0","app_version":"","description":"Install complete"},
            {"revision":2,"status":"failed","chart":"helloservice-0.1.0","app_version":"","description":"Upgrade failed"},
            {"revision":3,"status":"deployed","chart":"helloservice-0.1.0","app_version":"","description":"Upgrade complete"}]"#,
    )
    .expect("history");
    std::fs::write(
        dir.join("values-current.json"),
        r#"{"image":"ghcr.io/podtato-head/podtatoserver:v0.1.3"}"#,
    )
    .expect("values");
    std::fs::write(
        dir.join("values-1.json"),
        r#"{"image":"ghcr.io/podtato-head/podtatoserver:v0.1.1"}"#,
    )
    .expect("values");
    let r = backend
        .rollback(&rollback_req(), &CancellationToken::new())
        .await
        .expect("rollback");
    assert_eq!(r.image, "ghcr.io/podtato-head/podtatoserver:v0.1.1");
    assert_eq!(
        r.replaced.as_deref(),
        Some("ghcr.io/podtato-head/podtatoserver:v0.1.3")
    );
    assert_eq!(
        r.deployment.uris_local,
        vec!["http://helloservice.fulltour-qa:80"]
    );
    assert!(
        r.deployment.message.contains("revision 1"),
        "{}",
        r.deployment.message
    );
    let c = calls(dir);
    let rollback = c
        .iter()
        .find(|call| call[0] == "rollback")
        .expect("helm rollback ran");
    assert_eq!(
        rollback,
        &[
            "rollback",
            "helloservice",
            "1",
            "--namespace",
            "fulltour-qa",
            "--wait",
            "--timeout",
            "120s"
        ],
        "the failed revision 2 is skipped"
    );
    assert_eq!(
        c[0][..2],
        ["history", "helloservice"],
        "the history is read first"
    );
}

#[tokio::test]
async fn helm_rollback_with_nothing_to_roll_back_to_says_so_and_changes_nothing() {
    let (bin, _res, backend) = setup();
    // No release at all.
    match backend
        .rollback(&rollback_req(), &CancellationToken::new())
        .await
    {
        Err(e @ DeployError::NothingToRollBack(_)) => assert!(
            e.to_string()
                .contains("release helloservice does not exist in fulltour-qa"),
            "{e}"
        ),
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    // A single revision.
    std::fs::write(
        bin.path().join("history.json"),
        r#"[{"revision":1,"status":"deployed"}]"#,
    )
    .expect("history");
    match backend
        .rollback(&rollback_req(), &CancellationToken::new())
        .await
    {
        Err(e @ DeployError::NothingToRollBack(_)) => assert!(
            e.to_string().contains("no earlier successful revision")
                && e.to_string().contains("1 deployed"),
            "{e}"
        ),
        other => panic!("expected NothingToRollBack, got {other:?}"),
    }
    assert!(
        !calls(bin.path()).iter().any(|c| c[0] == "rollback"),
        "helm rollback never ran"
    );
}
