//! `keptn-native run`: delivers an image through a shipyard, playing the Keptn control plane
//! on NATS against a keptn-native service running elsewhere (see [`crate::runner`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::runner::shipyard::{Shipyard, parse_go_duration};
use crate::runner::{Delivery, RunSpec, Timeline, run_on_nats};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The shipyard file (Keptn shipyard 0.2.x).
    #[arg(long)]
    pub shipyard: PathBuf,
    /// The resources directory the service reads (`<dir>/<project>/<stage>/<service>/...`);
    /// checked to exist so that a typo is caught before anything is triggered.
    #[arg(long)]
    pub resources: PathBuf,
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub service: String,
    /// The image to deliver (`data.configurationChange.values.image`).
    #[arg(long)]
    pub image: String,
    /// Labels, `k=v` separated by commas.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// The stage to start in (default: the shipyard's first stage).
    #[arg(long)]
    pub stage: Option<String>,
    /// The sequence to trigger.
    #[arg(long, default_value = "delivery")]
    pub sequence: String,
    /// NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// How long a task may wait for its first `.started`/`.finished` (Go duration; Keptn: 10m).
    #[arg(long, default_value = "10m")]
    pub task_timeout: String,
    /// Upper bound of the whole run (Go duration).
    #[arg(long, default_value = "1h")]
    pub max_duration: String,
    /// Also write the run's summary as JSON to this file.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Start a keptn-native service in this process (standalone: resources from --resources,
    /// `je-deployment`/`je-test` aliases, process deployments) instead of using one running
    /// elsewhere.
    #[arg(long)]
    pub serve: bool,
    /// With --serve: the Prometheus the evaluations query.
    #[arg(long, env = "PROMETHEUS_ENDPOINT")]
    pub prometheus: Option<String>,
    /// With --serve: where deployed processes are registered for Prometheus (file_sd).
    #[arg(long)]
    pub sd_dir: Option<PathBuf>,
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, String> {
    labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("label {l:?} is not k=v"))
        })
        .collect()
}

pub fn run(args: RunArgs) -> ExitCode {
    match prepare(&args) {
        Err(problems) => {
            for p in problems {
                eprintln!("keptn-native run: {p}");
            }
            ExitCode::from(2)
        }
        Ok((delivery, overall)) => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("keptn-native run: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut sink = Timeline::new(std::io::stdout(), &args.nats_url);
            println!(
                "delivering {} to {}/{} (keptn context {})",
                args.image,
                args.project,
                args.service,
                delivery.keptn_context()
            );
            let report = rt.block_on(async {
                let service = if args.serve {
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    let work = match tempfile::Builder::new()
                        .prefix("keptn-native-run-")
                        .tempdir()
                    {
                        Ok(w) => w,
                        Err(e) => {
                            return Err(crate::runner::RunError::Nats(format!(
                                "cannot create a work directory: {e}"
                            )));
                        }
                    };
                    let mut config = crate::demo::service_config(
                        &args.nats_url,
                        work.path(),
                        &args.resources,
                        args.sd_dir
                            .as_deref()
                            .unwrap_or(&work.path().join("file_sd")),
                        args.prometheus
                            .as_deref()
                            .unwrap_or("http://127.0.0.1:9090"),
                    );
                    if args.sd_dir.is_none() {
                        config.deploy.process_sd_dir = None;
                    }
                    match crate::app::start(config).await {
                        Ok(s) if s.ready(std::time::Duration::from_secs(30)).await => {
                            Some((s, work))
                        }
                        Ok(_) => {
                            return Err(crate::runner::RunError::Nats(
                                "the in-process service did not become ready within 30 s".into(),
                            ));
                        }
                        Err(e) => {
                            return Err(crate::runner::RunError::Nats(format!(
                                "cannot start the in-process service: {e:#}"
                            )));
                        }
                    }
                } else {
                    None
                };
                let report =
                    run_on_nats(&args.nats_url, delivery, &args.image, &mut sink, overall).await;
                if let Some((s, _work)) = service {
                    s.shutdown().await;
                }
                report
            });
            match report {
                Err(e) => {
                    eprintln!("keptn-native run: {e}");
                    ExitCode::FAILURE
                }
                Ok(report) => {
                    if let Some(path) = &args.summary {
                        let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
                        if let Err(e) = std::fs::write(path, body) {
                            eprintln!("keptn-native run: cannot write {}: {e}", path.display());
                        }
                    }
                    let last = report.sequences.last();
                    println!(
                        "{}: last sequence {}",
                        if report.passed { "PASSED" } else { "FAILED" },
                        last.map(|s| format!(
                            "{}.{} {}/{}",
                            s.stage, s.sequence, s.result, s.status
                        ))
                        .unwrap_or_default()
                    );
                    if report.passed {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

/// Reads and checks everything before connecting; reports every problem at once.
fn prepare(args: &RunArgs) -> Result<(Delivery, Duration), Vec<String>> {
    let mut problems = Vec::new();
    let shipyard = match std::fs::read_to_string(&args.shipyard) {
        Err(e) => {
            problems.push(format!(
                "cannot read shipyard {}: {e}",
                args.shipyard.display()
            ));
            None
        }
        Ok(text) => match Shipyard::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("{}: {e}", args.shipyard.display()));
                None
            }
        },
    };
    if !args.resources.is_dir() {
        problems.push(format!(
            "resources directory {} does not exist",
            args.resources.display()
        ));
    }
    for (what, v) in [("project", &args.project), ("service", &args.service)] {
        if let Err(e) = crate::deploy::validate_name(what, v) {
            problems.push(e.to_string());
        }
    }
    if let Err(e) = crate::deploy::validate_image(&args.image) {
        problems.push(e.to_string());
    }
    let labels = parse_labels(&args.labels)
        .map_err(|e| problems.push(e))
        .unwrap_or_default();
    let task_timeout = parse_go_duration(&args.task_timeout)
        .map_err(|e| problems.push(format!("--task-timeout: {e}")))
        .unwrap_or_default();
    let overall = parse_go_duration(&args.max_duration)
        .map_err(|e| problems.push(format!("--max-duration: {e}")))
        .unwrap_or_default();
    if let (Some(s), Some(stage)) = (&shipyard, &args.stage)
        && !s.spec.stages.iter().any(|st| &st.name == stage)
    {
        problems.push(format!("stage {stage:?} is not in the shipyard"));
    }
    match shipyard {
        Some(shipyard) if problems.is_empty() => {
            let spec = RunSpec {
                project: args.project.clone(),
                service: args.service.clone(),
                image: args.image.clone(),
                labels,
                stage: args.stage.clone(),
                sequence: args.sequence.clone(),
                task_timeout,
            };
            Ok((
                Delivery::new(shipyard, spec, uuid::Uuid::new_v4().to_string()),
                overall,
            ))
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_bad_ones_are_reported() {
        let l = parse_labels(&["image=x".into(), "version=v0.1.1".into()]).expect("labels");
        assert_eq!(l["version"], "v0.1.1");
        assert!(parse_labels(&["novalue".into()]).is_err());
        assert!(parse_labels(&["=v".into()]).is_err());
    }
}
