//! The binary run the way the chart's pod runs it: as the non-root user 65532 with no
//! capabilities, every mount read-only except the data directory and a fresh `/tmp` (the
//! chart's emptyDir). A private mount namespace (`unshare -m`) and `setpriv` do it without a
//! container engine; both need root, so without root the test says so and does nothing.
//!
//! The helm backend must get as far as calling helm: the fake helm below (a shell script)
//! checks that it runs as 65532 and that the chart it was handed lies under `$TMPDIR`, and says
//! so on stderr, which the service puts into `deployment.finished`. With
//! `KEPTN_NATIVE_TEST_HELM` naming a real helm (.ci/run sets it), the script also runs
//! `helm show chart` on that file, under the same restrictions.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::harness::keptn::KeptnPeer;
use crate::harness::nats::NatsServer;
use crate::harness::{eventually, free_port, http};

const BIN: &str = env!("CARGO_BIN_EXE_keptn-native");
const UID: u32 = 65532;

/// Runs in the sandbox (as root, before dropping to 65532): makes every mount read-only,
/// mounts a tmpfs on /tmp, makes the data directory writable again, checks all of that as the
/// user, then execs the service as the user. Arguments: data dir, then the command.
const SANDBOX: &str = r#"set -eu
data="$1"; shift
for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
mount --bind "$data" "$data"
mount -o remount,bind,rw "$data"
as_user() { setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs "$@"; }
# Even root cannot write outside the data dir and /tmp now (the mounts are read-only).
if touch "$data/../root-is-writable" 2>/dev/null; then echo "SANDBOX: root writable"; exit 3; fi
as_user touch "$data/probe" /tmp/probe
rm -f "$data/probe" /tmp/probe
echo "SANDBOX-READY uid=$(as_user id -u)"
exec setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs "$@"
"#;

/// The fake helm: `helm upgrade --install <release> <chart> ...` fails on purpose after
/// reporting who ran it and where the chart was.
const FAKE_HELM: &str = r#"#!/bin/sh
chart="$4"
case "$chart" in
  "$TMPDIR"/*) where="under TMPDIR" ;;
  *) where="NOT under TMPDIR ($TMPDIR)" ;;
esac
[ -r "$chart" ] && readable=readable || readable=unreadable
echo "fake-helm: $1 as uid $(id -u), chart $where, $readable" >&2
if [ -n "${REAL_HELM:-}" ]; then
  "$REAL_HELM" show chart "$chart" 2>&1 | sed -n 's/^name: /real-helm read chart: /p' >&2
fi
exit 1
"#;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A minimal chart `hello` packaged as `hello.tgz` (the real helm can read it).
fn package_chart(dir: &Path) -> Vec<u8> {
    let src = dir.join("chart-src/hello");
    std::fs::create_dir_all(src.join("templates")).expect("mkdir");
    std::fs::write(
        src.join("Chart.yaml"),
        "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
    )
    .expect("write");
    std::fs::write(src.join("values.yaml"), "image: x\n").expect("write");
    let tgz = dir.join("hello.tgz");
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir.join("chart-src"))
        .arg("hello")
        .status()
        .expect("tar");
    assert!(ok.success());
    std::fs::read(&tgz).expect("read")
}

#[tokio::test]
async fn runs_as_the_pod_does_non_root_read_only_root_and_reaches_helm() {
    if !(is_root() && have("unshare") && have("setpriv") && have("tar")) {
        eprintln!("SKIPPED: needs root, unshare, setpriv and tar to build the sandbox");
        return;
    }
    // Outside /tmp: the sandbox mounts a fresh tmpfs there.
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = base.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    chown(&data, Some(UID), Some(UID)).expect("chown");
    let resources = base.path().join("resources");
    let charts = resources.join("fulltour/qa/hello/charts");
    std::fs::create_dir_all(&charts).expect("mkdir");
    std::fs::write(charts.join("hello.tgz"), package_chart(base.path())).expect("write");
    let helm = base.path().join("helm");
    write_exec(&helm, FAKE_HELM);
    // A copy the user can execute (the original may sit in root's home).
    let real_helm = match std::env::var_os("KEPTN_NATIVE_TEST_HELM") {
        Some(p) => {
            let copy = base.path().join("real-helm");
            std::fs::copy(&p, &copy).expect("copy helm");
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            copy.display().to_string()
        }
        None => String::new(),
    };

    let nats = NatsServer::start();
    let peer = KeptnPeer::connect(&nats.url()).await;
    let port = free_port();
    let name = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        SANDBOX,
        "sandbox",
    ])
    .arg(&data)
    .args([
        "env",
        "-i",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "TMPDIR=/tmp",
    ])
    .arg(format!("HOME={}", base.path().join("nohome").display()))
    .arg(format!("REAL_HELM={real_helm}"))
    .args([
        "HELM_CACHE_HOME=/tmp/helm/cache",
        "HELM_CONFIG_HOME=/tmp/helm/config",
        "HELM_DATA_HOME=/tmp/helm/data",
    ])
    .arg(format!("NATS_URL={}", nats.url()))
    .arg(format!("LISTEN_ADDR=127.0.0.1:{port}"))
    .arg(format!("DATA_DIR={}", data.display()))
    .arg(format!("RESOURCES_DIR={}", resources.display()))
    .arg(format!("K8S_DEPLOYMENT_NAME={name}"))
    .args([
        "TASKS=deployment",
        "KEPTN_NATIVE_DEPLOY_BACKEND=helm",
        "KEPTN_NATIVE_DEPLOY_CREATE_NAMESPACE=false",
    ])
    .arg(format!("KEPTN_NATIVE_HELM_BIN={}", helm.display()))
    .args([BIN, "serve"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn unshare");

    let url = format!("http://127.0.0.1:{port}/ready");
    let client = http();
    let ready = eventually(Duration::from_secs(20), || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    if !ready {
        let _ = child.start_kill();
        let out = child.wait_with_output().await.expect("output");
        panic!(
            "the service did not become ready in the sandbox\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let ev = KeptnPeer::triggered(
        "deployment",
        json!({"project": "fulltour", "stage": "qa", "service": "hello",
               "configurationChange": {"values": {"image": "ghcr.io/podtato-head/podtatoserver:v0.1.1"}}}),
    );
    let id = peer.publish(&ev).await;
    let replies = peer.await_replies(&id, 2, Duration::from_secs(30)).await;
    let finished = KeptnPeer::of_kind(&replies, "finished");
    assert_eq!(finished.len(), 1, "{replies:?}");
    let message = finished[0]["data"]["message"].as_str().unwrap_or_default();
    assert_eq!(finished[0]["data"]["status"], "errored", "{message}");
    assert!(
        message.contains("fake-helm: upgrade as uid 65532, chart under TMPDIR, readable"),
        "helm was not reached as the pod's user with the chart under TMPDIR: {message}"
    );
    if std::env::var_os("KEPTN_NATIVE_TEST_HELM").is_some() {
        assert!(
            message.contains("real-helm read chart: hello"),
            "the real helm could not read the chart in the sandbox: {message}"
        );
    }
    // The embedded store opened in the data directory, owned by the user.
    let files: Vec<_> = std::fs::read_dir(&data)
        .expect("read data dir")
        .filter_map(Result::ok)
        .collect();
    assert!(!files.is_empty(), "the store wrote nothing to the data dir");
    for f in &files {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(f.metadata().expect("meta").uid(), UID, "{:?}", f.path());
    }

    let _ = child.start_kill();
    let out = child.wait_with_output().await.expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SANDBOX-READY uid=65532"), "{stdout}");
}
