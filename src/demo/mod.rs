//! `keptn-native demo`: the tutorial's "Production Quality Evaluations" step on one machine.
//!
//! Starts `nats-server` and `prometheus` (from PATH, free ports, a temporary directory), the
//! service in-process (process deployment backend, the tutorial's SLO/SLI and locust files as
//! local resources) and the delivery runner; delivers the good build (qa pass, promoted,
//! production pass), the slow build (qa fail, not promoted) and, unless `--tutorial`, a build
//! that is slow only in production (qa pass, production fail, rolled back by the production
//! `rollback` sequence the demo adds to the tutorial's shipyard), and explains what happened.
//! After each run it asks the sample service of each stage which image it is.

pub mod servers;

use std::collections::BTreeMap;
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
/// Good in qa, slow in production (see [`crate::sample_service`]).
pub const PRODUCTION_SLOW: &str = "ghcr.io/podtato-head/podtatoserver:v0.1.3";
pub const STAGES: [&str; 2] = ["qa", "production"];

/// The production `rollback` sequence the demo adds to the tutorial's shipyard, written as a
/// Keptn user writes it (§4.2: the selector matches the result of the delivery's last task).
pub const ROLLBACK_SEQUENCE: &str = r#"
        - name: "rollback"
          triggeredOn:
            - event: "production.delivery.finished"
              selector:
                match:
                  result: "fail"
          tasks:
            - name: "rollback"
"#;

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
    pub runs: Vec<DemoRun>,
    /// Whether the outcome is the expected one: the good build reaches production and passes,
    /// the slow build fails qa and is not promoted, and (without `--tutorial`) the build slow
    /// in production is rolled back so that production runs the good build again.
    pub as_expected: bool,
}

/// One delivery, and what each stage serves at its end.
#[derive(Debug, Clone, Serialize)]
pub struct DemoRun {
    #[serde(flatten)]
    pub report: RunReport,
    /// Stage -> the image its sample service says it is (`null` when nothing answers).
    pub running: BTreeMap<String, Option<String>>,
}

/// The builds the demo delivers, in order.
pub fn builds(tutorial: bool) -> &'static [&'static str] {
    if tutorial {
        &[GOOD, SLOW]
    } else {
        &[GOOD, SLOW, PRODUCTION_SLOW]
    }
}

/// The evaluation properties of the tutorial's shipyard.
const EVALUATION_TIMEFRAME: &str = "\n              properties:\n                timeframe: \"2m\"";

/// The shipyard and locust configuration the demo uses, with what was shortened.
pub fn variant(tutorial: bool) -> (String, String, Option<&'static str>) {
    if tutorial {
        (SHIPYARD.to_string(), LOCUST_CONF.to_string(), None)
    } else {
        (
            SHIPYARD.replace(EVALUATION_TIMEFRAME, "") + ROLLBACK_SEQUENCE,
            LOCUST_CONF.replace("run-time = 1m", "run-time = 15s"),
            Some(
                "short demo: load tests run 15s instead of 1m; each evaluation looks at its own \
                 load test (no timeframe, so Keptn's rule takes test.start..test.end) instead of \
                 the last 2m, so that one build's load never counts for the next; production \
                 gains a rollback sequence for a third build, v0.1.3. `--tutorial` runs the \
                 tutorial's own settings and its two builds",
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

/// `(stage, sequence, result)` of each sequence of a run.
fn path(r: &RunReport) -> Vec<(&str, &str, &str)> {
    r.sequences
        .iter()
        .map(|s| (s.stage.as_str(), s.sequence.as_str(), s.result.as_str()))
        .collect()
}

/// Whether the runs are the expected outcome (pure): per build, the sequences and what each
/// stage serves afterwards.
pub fn as_expected(runs: &[DemoRun]) -> bool {
    let running = |r: &DemoRun, qa: &str, production: &str| {
        r.running.get("qa") == Some(&Some(qa.to_string()))
            && r.running.get("production") == Some(&Some(production.to_string()))
    };
    let good_and_slow = |good: &DemoRun, slow: &DemoRun| {
        path(&good.report)
            == [
                ("qa", "delivery", "pass"),
                ("production", "delivery", "pass"),
            ]
            && running(good, GOOD, GOOD)
            && path(&slow.report) == [("qa", "delivery", "fail")]
            && running(slow, SLOW, GOOD)
    };
    match runs {
        [good, slow] => good_and_slow(good, slow),
        [good, slow, prod_slow] => {
            good_and_slow(good, slow)
                && path(&prod_slow.report)
                    == [
                        ("qa", "delivery", "pass"),
                        ("production", "delivery", "fail"),
                        ("production", "rollback", "pass"),
                    ]
                && running(prod_slow, PRODUCTION_SLOW, GOOD)
        }
        _ => false,
    }
}

/// The closing sentence.
pub fn verdict(runs: &[DemoRun]) -> &'static str {
    match (as_expected(runs), runs.len()) {
        (true, 2) => {
            "as in the tutorial: the good build passed both quality gates; the slow build failed qa and was not promoted"
        }
        (true, _) => {
            "as expected: v0.1.1 passed both quality gates; v0.1.2 failed qa and was not promoted; \
             v0.1.3 passed qa, failed production and was rolled back, so production runs v0.1.1 again"
        }
        (false, _) => "NOT as expected (see above)",
    }
}

/// One line per sequence and an explanation of each verdict.
pub fn explain(runs: &[DemoRun]) -> String {
    let mut out = String::new();
    for r in runs {
        let path: Vec<String> = path(&r.report)
            .into_iter()
            .map(|(stage, sequence, result)| match sequence {
                "delivery" => format!("{stage} {result}"),
                _ => format!("{stage} {sequence} {result}"),
            })
            .collect();
        let promoted = r.report.sequences.len() > 1;
        out.push_str(&format!(
            "{}: {}{}\n",
            r.report.image,
            path.join(" -> "),
            if promoted { "" } else { " (not promoted)" }
        ));
        for s in &r.report.sequences {
            out.push_str(&explain_sequence(s));
        }
        let running: Vec<String> = STAGES
            .iter()
            .map(|stage| {
                let image = r.running.get(*stage).cloned().flatten();
                format!("{stage} {}", image.as_deref().unwrap_or("nothing"))
            })
            .collect();
        out.push_str(&format!("  now running: {}\n", running.join(", ")));
    }
    out
}

/// Asks the sample service of each stage which image it is: the process backend's file_sd
/// target says where it listens, its `/version` says what it is.
pub async fn running(http: &reqwest::Client, sd_dir: &Path) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for stage in STAGES {
        let file = sd_dir.join(format!("{SERVICE}-{PROJECT}-{stage}.json"));
        let image = async {
            let sd: serde_json::Value =
                serde_json::from_slice(&tokio::fs::read(&file).await.ok()?).ok()?;
            let target = sd.pointer("/0/targets/0")?.as_str()?.to_string();
            let v: serde_json::Value = http
                .get(format!("http://{target}/version"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v.get("image")?.as_str().map(str::to_string)
        }
        .await;
        out.insert(stage.to_string(), image);
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

    let http = reqwest::Client::new();
    let mut runs = Vec::new();
    let mut failure = None;
    for image in builds(opts.tutorial).iter().copied() {
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
            Ok(report) => {
                let running = running(&http, &sd_dir).await;
                runs.push(DemoRun { report, running });
            }
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
    println!("{}", verdict(&runs));
    Ok(DemoSummary { runs, as_expected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_demo_evaluates_each_load_test_and_rolls_production_back() {
        let (short, conf, note) = variant(false);
        let s = Shipyard::parse(&short).expect("the short shipyard parses");
        for stage in STAGES {
            let eval = s
                .sequence(stage, "delivery")
                .and_then(|q| q.tasks.iter().find(|t| t.name == "evaluation").cloned())
                .expect("evaluation");
            assert!(eval.properties.get("timeframe").is_none(), "{eval:?}");
        }
        let rollback = s
            .sequence("production", "rollback")
            .expect("rollback sequence");
        assert_eq!(rollback.tasks.len(), 1);
        assert_eq!(rollback.tasks[0].name, "rollback");
        assert!(s.sequence("qa", "rollback").is_none());
        assert!(conf.contains("run-time = 15s"));
        assert!(note.is_some_and(|n| n.contains("v0.1.3")));

        let (tutorial, conf, note) = variant(true);
        assert_eq!(
            tutorial, SHIPYARD,
            "--tutorial keeps the shipyard unchanged"
        );
        assert_eq!(conf, LOCUST_CONF);
        assert!(note.is_none());
        assert_eq!(builds(true), [GOOD, SLOW]);
        assert_eq!(builds(false), [GOOD, SLOW, PRODUCTION_SLOW]);
    }
}
