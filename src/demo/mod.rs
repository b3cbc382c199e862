//! `keptn-native demo`: the tutorial's "Production Quality Evaluations" step on one machine.
//!
//! Starts `nats-server` and `prometheus` (from PATH, free ports, a temporary directory), the
//! service in-process (process deployment backend, the tutorial's SLO/SLI and locust files as
//! local resources) and the delivery runner; delivers the good build (qa pass, promoted,
//! production pass) and the slow build (qa fail, not promoted), and explains what happened.

pub mod servers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::app;
use crate::config::{KeptnConnection, ServeConfig};
use crate::runner::sequence::SequenceSummary;
use crate::runner::shipyard::Shipyard;
use crate::runner::{Delivery, RunReport, RunSpec, Timeline, run_on_nats};

const SHIPYARD: &str = include_str!("../../assets/tutorial/shipyard.yaml");
const SLO: &str = include_str!("../../assets/tutorial/slo.yaml");
const SLI: &str = include_str!("../../assets/tutorial/sli.yaml");
const LOCUSTFILE: &str = include_str!("../../assets/tutorial/basic.py");
const LOCUST_CONF: &str = include_str!("../../assets/tutorial/locust.conf");

pub const PROJECT: &str = "fulltour";
pub const SERVICE: &str = "helloservice";
pub const GOOD: &str = "ghcr.io/podtato-head/podtatoserver:v0.1.1";
pub const SLOW: &str = "ghcr.io/podtato-head/podtatoserver:v0.1.2";

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// The tutorial's own shipyard and locust settings (2m timeframes, 1m load), unchanged.
    pub tutorial: bool,
    /// Keep the temporary directory (logs, data) and print where it is.
    pub keep: bool,
}

/// What the demo writes with `--summary`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub runs: Vec<RunReport>,
    /// Whether the outcome is the tutorial's: the good build reaches production and passes,
    /// the slow build fails qa and is not promoted.
    pub as_expected: bool,
}

/// The shipyard and locust configuration the demo uses, with what was shortened.
pub fn variant(tutorial: bool) -> (String, String, Option<&'static str>) {
    if tutorial {
        (SHIPYARD.to_string(), LOCUST_CONF.to_string(), None)
    } else {
        (
            SHIPYARD.replace("timeframe: \"2m\"", "timeframe: \"1m\""),
            LOCUST_CONF.replace("run-time = 1m", "run-time = 15s"),
            Some(
                "short demo: load tests run 15s instead of 1m and evaluations look at the last \
                 1m instead of 2m (Keptn's minimum); `--tutorial` runs the tutorial's own settings",
            ),
        )
    }
}

/// Writes the resources the service reads: `<dir>/fulltour/...`.
pub fn write_resources(dir: &Path, locust_conf: &str) -> anyhow::Result<()> {
    let project = dir.join(PROJECT);
    std::fs::create_dir_all(project.join("prometheus"))?;
    std::fs::write(project.join("prometheus/sli.yaml"), SLI)?;
    for stage in ["qa", "production"] {
        let svc = project.join(stage).join(SERVICE);
        std::fs::create_dir_all(svc.join("locust"))?;
        std::fs::write(svc.join("slo.yaml"), SLO)?;
        std::fs::write(svc.join("locust/basic.py"), LOCUSTFILE)?;
        std::fs::write(svc.join("locust/locust.conf"), locust_conf)?;
    }
    Ok(())
}

/// The service configuration the demo runs: standalone resources, the process backend
/// registering its targets for Prometheus, the tutorial's task names.
pub fn service_config(
    nats_url: &str,
    work: &Path,
    resources: &Path,
    sd_dir: &Path,
    prometheus_url: &str,
) -> ServeConfig {
    let mut c = ServeConfig::local(nats_url, work.join("service-data"));
    c.keptn = KeptnConnection::Standalone {
        resources_dir: resources.to_path_buf(),
    };
    c.task_aliases = vec![
        ("je-deployment".into(), "deployment".into()),
        ("je-test".into(), "test".into()),
    ];
    c.evaluation.prometheus_endpoint = Some(prometheus_url.to_string());
    c.deploy.process_sd_dir = Some(sd_dir.to_path_buf());
    c.shutdown_grace = Duration::from_secs(5);
    configure_test(&mut c);
    c
}

/// The load tests may only target the local processes the demo deploys.
fn configure_test(c: &mut ServeConfig) {
    c.loadtest.allowed_hosts = vec!["127.0.0.1".into()];
}

/// Whether the runs are the tutorial's expected outcome.
pub fn as_expected(runs: &[RunReport]) -> bool {
    let stages = |r: &RunReport| -> Vec<(String, String)> {
        r.sequences
            .iter()
            .map(|s| (s.stage.clone(), s.result.clone()))
            .collect()
    };
    match runs {
        [good, slow] => {
            stages(good)
                == [
                    ("qa".into(), "pass".into()),
                    ("production".into(), "pass".into()),
                ]
                && stages(slow) == [("qa".into(), "fail".into())]
        }
        _ => false,
    }
}

/// One line per sequence and an explanation of each verdict.
pub fn explain(runs: &[RunReport]) -> String {
    let mut out = String::new();
    for r in runs {
        let path: Vec<String> = r
            .sequences
            .iter()
            .map(|s| format!("{} {}", s.stage, s.result))
            .collect();
        let promoted = r.sequences.len() > 1;
        out.push_str(&format!(
            "{}: {}{}\n",
            r.image,
            path.join(" -> "),
            if promoted { "" } else { " (not promoted)" }
        ));
        for s in &r.sequences {
            out.push_str(&explain_sequence(s));
        }
    }
    out
}

fn explain_sequence(s: &SequenceSummary) -> String {
    let mut out = String::new();
    for t in &s.tasks {
        let why = t.message.lines().last().unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:<14} {:<7} {:>7.1}s  {}\n",
            s.stage,
            t.name,
            t.result,
            t.duration_ms as f64 / 1000.0,
            why
        ));
    }
    out
}

/// Runs the demo; progress goes to stdout.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<DemoSummary> {
    let missing = servers::missing();
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    let tmp = tempfile::Builder::new()
        .prefix("keptn-native-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let work: PathBuf = tmp.path().to_path_buf();
    let (shipyard_text, locust_conf, note) = variant(opts.tutorial);
    let resources = work.join("resources");
    let sd_dir = work.join("file_sd");
    std::fs::create_dir_all(&sd_dir)?;
    write_resources(&resources, &locust_conf)?;
    let shipyard = Shipyard::parse(&shipyard_text).map_err(anyhow::Error::msg)?;
    if let Some(n) = note {
        println!("note: {n}");
    }

    let nats = servers::nats(&work).await?;
    let prometheus = servers::prometheus(&work, &sd_dir).await?;
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let prometheus_url = format!("http://127.0.0.1:{}", prometheus.port);
    println!(
        "nats-server on {nats_url}, prometheus on {prometheus_url}, files in {}",
        work.display()
    );
    let config = service_config(&nats_url, &work, &resources, &sd_dir, &prometheus_url);
    let service = app::start(config).await.context("starting the service")?;
    if !service.ready(Duration::from_secs(30)).await {
        anyhow::bail!("the service did not become ready within 30 s");
    }
    println!("keptn-native serving on http://{}", service.http_addr);

    let mut runs = Vec::new();
    let mut failure = None;
    for image in [GOOD, SLOW] {
        println!("\n== delivering {image} to {PROJECT}/{SERVICE}");
        let spec = RunSpec {
            project: PROJECT.into(),
            service: SERVICE.into(),
            image: image.into(),
            labels: Default::default(),
            stage: None,
            sequence: "delivery".into(),
            task_timeout: Duration::from_secs(600),
        };
        let delivery = Delivery::new(shipyard.clone(), spec, uuid::Uuid::new_v4().to_string());
        let mut sink = Timeline::new(std::io::stdout(), &nats_url);
        match run_on_nats(
            &nats_url,
            delivery,
            image,
            &mut sink,
            Duration::from_secs(900),
        )
        .await
        {
            Ok(report) => runs.push(report),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // In order: the service first (it answers what is running, stops the sample services and
    // leaves NATS cleanly), then the servers it used.
    service.shutdown().await;
    prometheus.stop().await;
    nats.stop().await;
    println!("\nstopped keptn-native and the sample services, then nats-server and prometheus");
    if opts.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    if let Some(e) = failure {
        return Err(anyhow::Error::new(e).context("the delivery could not be run"));
    }
    println!("\n== what happened\n{}", explain(&runs));
    let as_expected = as_expected(&runs);
    println!(
        "{}",
        if as_expected {
            "as in the tutorial: the good build passed both quality gates; the slow build failed qa and was not promoted"
        } else {
            "NOT as in the tutorial (see above)"
        }
    );
    Ok(DemoSummary { runs, as_expected })
}
