//! `keptn-native evaluate`: a Keptn-compatible quality gate on the command line.
//!
//! Offline form (also the conformance contract): SLI values from a file.
//! `keptn-native evaluate [--slo FILE] --values FILE [--previous FILE] [--sli-status S]
//! [--sli-result R] [--sli-message M] [--start T --end T]`
//!
//! Prometheus form, for any CI pipeline:
//! `keptn-native evaluate --slo FILE --sli FILE --prometheus URL --project P --stage S
//! --service SVC (--timeframe 5m | --start T --end T)`
//!
//! Both print the `evaluation.finished` `data` object as JSON on stdout and a one-line summary
//! on stderr. Exit 0; 2 on unusable input; with `--fail-on`, 1 when the verdict reaches it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::evaluation::pipeline::{self, Measured};
use crate::evaluation::prometheus::{PrometheusProvider, QueryContext, merge_sli_files};
use crate::evaluation::timeframe::start_end;
use crate::evaluation::{
    Evaluated, EvaluationConfig, EvaluationInput, PreviousEvaluation, SliRetrieval, Slo,
};
use crate::keptn::payload::SliResult;
use crate::keptn::time::parse_keptn;

/// Which verdict makes the command exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Exit 1 on `warning` or `fail`.
    Warning,
    /// Exit 1 on `fail` only.
    Fail,
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The slo.yaml; without it the result is Keptn's for a service without an SLO file.
    #[arg(long)]
    pub slo: Option<PathBuf>,
    /// JSON array of SLI results `[{"metric","value","success","message"}]` (offline form).
    #[arg(long, conflicts_with_all = ["sli", "prometheus"])]
    pub values: Option<PathBuf>,
    /// JSON array of earlier evaluation.finished CloudEvents, newest first, used as given.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Status of the SLI retrieval (offline form).
    #[arg(long, default_value = "succeeded")]
    pub sli_status: String,
    /// Result of the SLI retrieval (offline form).
    #[arg(long, default_value = "pass")]
    pub sli_result: String,
    /// Message of the SLI retrieval (offline form).
    #[arg(long, default_value = "")]
    pub sli_message: String,
    /// Start of the evaluation window (Keptn time format or RFC 3339).
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// End of the evaluation window.
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// Window ending now, a Go duration such as `5m` (Prometheus form).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub timeframe: Option<String>,
    /// The prometheus/sli.yaml (Prometheus form).
    #[arg(long, requires_all = ["prometheus", "project", "stage", "service"])]
    pub sli: Option<PathBuf>,
    /// Prometheus base URL (Prometheus form).
    #[arg(long, requires = "sli")]
    pub prometheus: Option<String>,
    /// Basic-auth user for Prometheus.
    #[arg(long, env = "PROMETHEUS_USER")]
    pub prometheus_user: Option<String>,
    /// Basic-auth password for Prometheus.
    #[arg(long, env = "PROMETHEUS_PASSWORD", hide_env_values = true)]
    pub prometheus_password: Option<String>,
    /// Bearer token for Prometheus.
    #[arg(long, env = "PROMETHEUS_TOKEN", hide_env_values = true)]
    pub prometheus_token: Option<String>,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub stage: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    /// `$DEPLOYMENT` in queries (default `primary`).
    #[arg(long, default_value = "")]
    pub deployment: String,
    /// A label for `$LABEL.<key>`, as key=value (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Turn the verdict into the exit code.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

/// Runs the command.
pub fn run(args: EvaluateArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(evaluate_command(&args)) {
        Ok(out) => {
            match serde_json::to_string_pretty(&out.evaluated) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            if !out.summary.is_empty() {
                eprintln!("{}", out.summary);
            }
            let failed = |r: &str| match args.fail_on {
                None => false,
                Some(FailOn::Warning) => r != "pass",
                Some(FailOn::Fail) => r == "fail",
            };
            if failed(&out.evaluated.result)
                || (args.fail_on.is_some() && out.evaluated.status != "succeeded")
            {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the command produced.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub evaluated: Evaluated,
    pub summary: String,
    /// The `data` object printed.
    pub data: Value,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, String> {
    let bytes = read(path, what)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{what} {} is not valid: {e}", path.display()))
}

/// The command without printing: both forms, through the service's evaluation pipeline.
pub async fn evaluate_command(args: &EvaluateArgs) -> Result<CommandOutput, String> {
    let slo_raw = match &args.slo {
        Some(p) => Some(read(p, "SLO file")?),
        None => None,
    };
    let slo = pipeline::read_slo(
        slo_raw,
        args.project.as_deref().unwrap_or_default(),
        args.stage.as_deref().unwrap_or_default(),
        args.service.as_deref().unwrap_or_default(),
    )?;
    let previous: Vec<PreviousEvaluation> = match &args.previous {
        Some(p) => read_json::<Vec<Value>>(p, "previous evaluations")?
            .iter()
            .map(PreviousEvaluation::from_event)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let (measured, window) = if let Some(values) = &args.values {
        let values: Vec<SliResult> = read_json(values, "SLI values")?;
        let measured = Measured {
            sli: SliRetrieval {
                status: args.sli_status.clone(),
                result: args.sli_result.clone(),
                message: args.sli_message.clone(),
                values,
            },
            queries: BTreeMap::new(),
        };
        let window = (
            args.start.clone().unwrap_or_default(),
            args.end.clone().unwrap_or_default(),
        );
        (measured, window)
    } else if let Some(sli_path) = &args.sli {
        prometheus_form(args, sli_path, slo.as_ref().map(|f| &f.slo)).await?
    } else {
        return Err("give either --values FILE, or --sli FILE with --prometheus URL".into());
    };
    let concluded = pipeline::conclude(
        EvaluationInput {
            project: args.project.as_deref().unwrap_or_default(),
            slo: slo.as_ref().map(|f| (&f.slo, f.raw.as_slice())),
            sli: &measured.sli,
            previous: &previous,
            time_start: &window.0,
            time_end: &window.1,
        },
        slo.as_ref().map(|f| &f.slo),
        &measured.queries,
    );
    let data = concluded.evaluated.to_data();
    Ok(CommandOutput {
        evaluated: concluded.evaluated,
        summary: concluded.summary,
        data,
    })
}

async fn prometheus_form(
    args: &EvaluateArgs,
    sli_path: &Path,
    slo: Option<&Slo>,
) -> Result<(Measured, (String, String)), String> {
    let now = chrono::Utc::now();
    let w = start_end(
        args.start.as_deref().unwrap_or_default(),
        args.end.as_deref().unwrap_or_default(),
        args.timeframe.as_deref().unwrap_or_default(),
        now,
    )
    .map_err(|e| e.to_string())?;
    let Some(slo) = slo else {
        // Keptn's answer for a service without SLO: no query needed.
        return Ok((Measured::nothing(), (w.start, w.end)));
    };
    let sli_raw = read(sli_path, "SLI file")?;
    let templates = merge_sli_files(&[("service", Some(&sli_raw))]).map_err(|e| e.to_string())?;
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("--label {l:?}: expected key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let parse = |s: &str| parse_keptn(s).ok_or_else(|| format!("invalid time {s:?}"));
    let ctx = QueryContext {
        project: args.project.clone().unwrap_or_default(),
        stage: args.stage.clone().unwrap_or_default(),
        service: args.service.clone().unwrap_or_default(),
        deployment: args.deployment.clone(),
        labels,
        filters: slo.filter.clone(),
        start: parse(&w.start)?,
        end: parse(&w.end)?,
    };
    // The same settings, checks and authentication as `serve`.
    let config = EvaluationConfig {
        prometheus_endpoint: args.prometheus.clone(),
        prometheus_user: args.prometheus_user.clone(),
        prometheus_password: args.prometheus_password.clone(),
        prometheus_token: args.prometheus_token.clone(),
        ..Default::default()
    };
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let provider = PrometheusProvider::new(client, config.prometheus());
    let measured = pipeline::measure(&provider, slo, &templates, &ctx).await;
    Ok((measured, (w.start, w.end)))
}
