//! Configuration of `keptn-native serve`: one typed struct, read once from flags, environment
//! variables and an optional YAML file, in that order of precedence (a flag or variable beats
//! the file, the file beats the built-in default). Invalid configuration reports every problem
//! at once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::dispatch::EventFilter;
use crate::handlers::task_names;

/// A value that must never be printed (tokens, passwords).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How triggered events are consumed from NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerMode {
    /// Core NATS queue subscriptions: no redelivery; events published while the service is
    /// away are lost for it.
    Core,
    /// Durable JetStream consumers on Keptn's `keptn` stream: nothing is lost across restarts,
    /// replies carry a stable id that the stream deduplicates.
    Jetstream,
    /// JetStream when the server has it, core NATS otherwise.
    #[default]
    Auto,
}

impl ConsumerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerMode::Core => "core",
            ConsumerMode::Jetstream => "jetstream",
            ConsumerMode::Auto => "auto",
        }
    }
}

/// `serve` flags. Every field is optional here; defaults are applied in [`ServeArgs::resolve`]
/// after the YAML file, so that the file can set what flags and variables do not.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServeArgs {
    /// YAML configuration file with any of the options below (snake_case keys).
    #[arg(long, env = "KEPTN_NATIVE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Integration name: `source` of every reply and default queue group. [default: keptn-native]
    #[arg(long, env = "K8S_DEPLOYMENT_NAME")]
    pub name: Option<String>,

    /// NATS server URL. [default: nats://127.0.0.1:4222]
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Subjects to queue-subscribe to, comma separated. [default: sh.keptn.event.*.triggered]
    #[arg(long, env = "PUBSUB_TOPIC", value_delimiter = ',')]
    pub subjects: Option<Vec<String>>,

    /// NATS queue group; replicas in one group share the work. [default: the name]
    #[arg(long, env = "PUBSUB_GROUP")]
    pub queue_group: Option<String>,

    /// How events are consumed: `core` (queue subscriptions), `jetstream` (durable consumers
    /// on Keptn's `keptn` stream, exactly-once replies) or `auto` (JetStream when the server
    /// has it). [default: auto]
    #[arg(long, env = "NATS_CONSUMER", value_enum)]
    pub nats_consumer: Option<ConsumerMode>,

    /// Run a task again after a crash interrupted it (approval, evaluation and test are safe to
    /// repeat; deployment applies the same configuration again) instead of answering it
    /// `errored`. [default: true]
    #[arg(long, env = "RERUN_INTERRUPTED")]
    pub rerun_interrupted: Option<bool>,

    /// NATS user (with --nats-password).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,

    /// NATS password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,

    /// NATS token.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<Secret>,

    /// NATS credentials file (JWT + NKey seed).
    #[arg(long, env = "NATS_CREDS_FILE")]
    pub nats_creds_file: Option<PathBuf>,

    /// CA certificate (PEM) to verify the NATS server; turns TLS on.
    #[arg(long, env = "NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<PathBuf>,

    /// Require TLS to NATS even without a CA file (system roots). [default: false]
    #[arg(long, env = "NATS_TLS_REQUIRED")]
    pub nats_tls_required: Option<bool>,

    /// HTTP listen address for /events, /health, /ready, /metrics, /v1/approvals. [default: 0.0.0.0:8080]
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen: Option<SocketAddr>,

    /// Directory of the embedded store (journal, pending approvals). [default: ./data]
    #[arg(long, env = "DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Tasks to run natively, comma separated. [default: every task in `handlers::TASKS`]
    #[arg(long, env = "TASKS", value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,

    /// Task name aliases `name=task`, comma separated, e.g. `je-deployment=deployment,je-test=test`.
    #[arg(long, env = "TASK_ALIASES", value_delimiter = ',')]
    pub task_alias: Option<Vec<String>>,

    /// Only handle events of these projects (comma separated). [default: all]
    #[arg(long, env = "FILTER_PROJECTS", value_delimiter = ',')]
    pub filter_projects: Option<Vec<String>>,

    /// Only handle events of these stages. [default: all]
    #[arg(long, env = "FILTER_STAGES", value_delimiter = ',')]
    pub filter_stages: Option<Vec<String>>,

    /// Only handle events of these services. [default: all]
    #[arg(long, env = "FILTER_SERVICES", value_delimiter = ',')]
    pub filter_services: Option<Vec<String>>,

    /// Token required in the `x-token` header of /events and /v1/approvals. [default: none, open]
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,

    /// Log format. [default: text]
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// How long running tasks may take to finish at shutdown, e.g. `30s`. [default: 30s]
    #[arg(long, env = "SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,

    /// How long answered triggered ids are remembered for duplicate suppression. [default: 7d]
    #[arg(long, env = "JOURNAL_RETENTION")]
    pub journal_retention: Option<String>,

    /// Largest accepted HTTP request body, in bytes. [default: 1048576]
    #[arg(long, env = "MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Standalone mode: read resources (slo.yaml, prometheus/sli.yaml, test plans, charts) from
    /// `<dir>/<project>[/<stage>[/<service>]]/<uri>` and keep evaluation history in the
    /// embedded store. [default: none; resources come from Keptn]
    #[arg(long, env = "RESOURCES_DIR")]
    pub resources_dir: Option<PathBuf>,

    /// Keptn's API (e.g. `http://api-gateway-nginx.keptn/api`): resources and evaluation history
    /// are read through it, with KEPTN_API_TOKEN. [default: none; in-cluster services are used]
    #[arg(long, env = "KEPTN_API_ENDPOINT")]
    pub keptn_api_endpoint: Option<String>,

    /// Token for KEPTN_API_ENDPOINT (`x-token`).
    #[arg(long, env = "KEPTN_API_TOKEN", hide_env_values = true)]
    pub keptn_api_token: Option<Secret>,

    /// In-cluster resource-service. [default: http://resource-service:8080]
    #[arg(long, env = "RESOURCE_SERVICE")]
    pub resource_service: Option<String>,

    /// In-cluster mongodb-datastore (evaluation history). [default: http://mongodb-datastore:8080]
    #[arg(long, env = "MONGODB_DATASTORE")]
    pub datastore: Option<String>,

    /// Evaluation settings (YAML section `evaluation:`).
    #[command(flatten)]
    #[serde(default)]
    pub evaluation: crate::evaluation::prometheus::EvaluationConfig,

    /// Deployment settings (YAML section `deploy:`).
    #[command(flatten)]
    #[serde(default)]
    pub deploy: crate::deploy::DeployConfig,

    /// Load-test settings (YAML section `loadtest:`).
    #[command(flatten)]
    #[serde(default)]
    pub loadtest: crate::loadtest::LoadtestSettings,
}

/// Where Keptn resources and evaluation history come from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeptnConnection {
    /// A local directory; history in the embedded store.
    Standalone { resources_dir: PathBuf },
    /// Keptn's API gateway with a token.
    Api { endpoint: String, token: Secret },
    /// Keptn's services inside the cluster.
    InCluster {
        resource_service: String,
        datastore: String,
    },
}

/// NATS connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    pub creds_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_required: bool,
}

/// The resolved configuration of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub name: String,
    pub nats: NatsConfig,
    pub subjects: Vec<String>,
    pub queue_group: String,
    pub nats_consumer: ConsumerMode,
    pub rerun_interrupted: bool,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tasks: Vec<String>,
    pub task_aliases: Vec<(String, String)>,
    pub filter: EventFilter,
    pub api_token: Option<Secret>,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    pub journal_retention: Duration,
    pub max_body_bytes: usize,
    pub keptn: KeptnConnection,
    pub evaluation: crate::evaluation::prometheus::EvaluationConfig,
    pub deploy: crate::deploy::DeployConfig,
    pub loadtest: crate::loadtest::LoadtestSettings,
}

/// Lays the values set in `over` on top of `under` (a field set in both takes `over`'s).
/// Used for the per-task sections, whose flags and file keys share one struct.
pub fn overlay<T>(over: T, under: T) -> Result<T, String>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut base = serde_json::to_value(under).map_err(|e| e.to_string())?;
    let top = serde_json::to_value(over).map_err(|e| e.to_string())?;
    if let (Some(base), Some(top)) = (base.as_object_mut(), top.as_object()) {
        for (k, v) in top {
            let unset = v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
            if !unset {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(base).map_err(|e| e.to_string())
}

impl ServeConfig {
    /// A configuration for tests and embedding: NATS at `nats_url`, HTTP on a free loopback
    /// port, the store in `data_dir`.
    pub fn local(nats_url: &str, data_dir: impl Into<PathBuf>) -> ServeConfig {
        let args = ServeArgs {
            nats_url: Some(nats_url.to_string()),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: Some(data_dir.into()),
            ..ServeArgs::default()
        };
        // The defaults are valid.
        args.resolve(ServeArgs::default())
            .unwrap_or_else(|e| panic!("default configuration is invalid: {e:?}"))
    }
}

impl ServeArgs {
    /// Reads the YAML file named by `--config`, if any.
    pub fn load_file(&self) -> Result<ServeArgs, Vec<String>> {
        let Some(path) = &self.config else {
            return Ok(ServeArgs::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("config file {}: {e}", path.display())])?;
        serde_norway::from_str(&text)
            .map_err(|e| vec![format!("config file {}: {e}", path.display())])
    }

    /// Applies the file under the flags, then the defaults, and validates everything.
    pub fn resolve(self, file: ServeArgs) -> Result<ServeConfig, Vec<String>> {
        let mut problems = Vec::new();
        macro_rules! pick {
            ($f:ident) => {
                self.$f.or(file.$f)
            };
        }
        let name = pick!(name).unwrap_or_else(|| "keptn-native".into());
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            problems.push(format!("name {name:?} must be a non-empty word"));
        }
        let url = pick!(nats_url).unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        if !["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            problems.push(format!(
                "NATS_URL {url:?} must start with nats://, tls://, ws:// or wss://"
            ));
        }
        let nats = NatsConfig {
            url,
            user: pick!(nats_user),
            password: pick!(nats_password),
            token: pick!(nats_token),
            creds_file: pick!(nats_creds_file),
            tls_ca_file: pick!(nats_tls_ca_file),
            tls_required: pick!(nats_tls_required).unwrap_or(false),
        };
        if nats.user.is_some() != nats.password.is_some() {
            problems.push("NATS_USER and NATS_PASSWORD must be given together".into());
        }
        let auth_kinds = [
            nats.user.is_some(),
            nats.token.is_some(),
            nats.creds_file.is_some(),
        ];
        if auth_kinds.iter().filter(|b| **b).count() > 1 {
            problems.push(
                "use only one NATS authentication: user/password, token or credentials file".into(),
            );
        }
        for (what, p) in [
            ("NATS_CREDS_FILE", &nats.creds_file),
            ("NATS_TLS_CA_FILE", &nats.tls_ca_file),
        ] {
            if let Some(p) = p
                && !p.is_file()
            {
                problems.push(format!("{what} {} is not a readable file", p.display()));
            }
        }
        let subjects = pick!(subjects).unwrap_or_else(|| vec!["sh.keptn.event.*.triggered".into()]);
        let subjects: Vec<String> = subjects.into_iter().map(|s| s.trim().to_string()).collect();
        if subjects.is_empty() {
            problems.push("PUBSUB_TOPIC must name at least one subject".into());
        }
        for s in &subjects {
            if s.is_empty() || s.contains(char::is_whitespace) {
                problems.push(format!("subject {s:?} is not a valid NATS subject"));
            }
        }
        let queue_group = pick!(queue_group).unwrap_or_else(|| name.clone());
        let known = task_names();
        let tasks = pick!(tasks).unwrap_or_else(|| known.iter().map(|t| t.to_string()).collect());
        let tasks: Vec<String> = tasks.into_iter().map(|t| t.trim().to_string()).collect();
        for t in &tasks {
            if !known.contains(&t.as_str()) {
                problems.push(format!(
                    "TASKS: unknown task {t:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
        let mut task_aliases = Vec::new();
        for a in pick!(task_alias).unwrap_or_default() {
            let a = a.trim();
            if a.is_empty() {
                continue;
            }
            match a.split_once('=') {
                Some((alias, task)) if !alias.trim().is_empty() && known.contains(&task.trim()) => {
                    task_aliases.push((alias.trim().to_string(), task.trim().to_string()));
                }
                _ => problems.push(format!(
                    "TASK_ALIASES: {a:?} must be `name=task` with task one of {}",
                    known.join(", ")
                )),
            }
        }
        let duration =
            |what: &str, v: Option<String>, default: &str, problems: &mut Vec<String>| {
                let v = v.unwrap_or_else(|| default.to_string());
                humantime::parse_duration(&v).unwrap_or_else(|e| {
                    problems.push(format!(
                        "{what} {v:?} is not a duration like 30s or 7d: {e}"
                    ));
                    Duration::ZERO
                })
            };
        let shutdown_grace = duration(
            "SHUTDOWN_GRACE",
            pick!(shutdown_grace),
            "30s",
            &mut problems,
        );
        let journal_retention = duration(
            "JOURNAL_RETENTION",
            pick!(journal_retention),
            "7d",
            &mut problems,
        );
        let max_body_bytes = pick!(max_body_bytes).unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            problems.push(format!("MAX_BODY_BYTES {max_body_bytes} is below 1024"));
        }
        let api_token = pick!(api_token);
        if let Some(t) = &api_token
            && t.expose().len() < 8
        {
            problems.push("API_TOKEN must be at least 8 characters".into());
        }
        let http_url = |what: &str, v: &str, problems: &mut Vec<String>| {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                problems.push(format!("{what} {v:?} must be an http:// or https:// URL"));
            }
            v.trim_end_matches('/').to_string()
        };
        let keptn = match (pick!(resources_dir), pick!(keptn_api_endpoint)) {
            (Some(dir), _) => {
                if !dir.is_dir() {
                    problems.push(format!(
                        "RESOURCES_DIR {} is not a directory",
                        dir.display()
                    ));
                }
                KeptnConnection::Standalone { resources_dir: dir }
            }
            (None, Some(endpoint)) => {
                let endpoint = http_url("KEPTN_API_ENDPOINT", &endpoint, &mut problems);
                let token = pick!(keptn_api_token).unwrap_or_else(|| {
                    problems.push("KEPTN_API_ENDPOINT needs KEPTN_API_TOKEN".into());
                    Secret::new("")
                });
                KeptnConnection::Api { endpoint, token }
            }
            (None, None) => KeptnConnection::InCluster {
                resource_service: http_url(
                    "RESOURCE_SERVICE",
                    &pick!(resource_service)
                        .unwrap_or_else(|| "http://resource-service:8080".into()),
                    &mut problems,
                ),
                datastore: http_url(
                    "MONGODB_DATASTORE",
                    &pick!(datastore).unwrap_or_else(|| "http://mongodb-datastore:8080".into()),
                    &mut problems,
                ),
            },
        };
        let evaluation = overlay(self.evaluation, file.evaluation).unwrap_or_else(|e| {
            problems.push(format!("evaluation settings: {e}"));
            Default::default()
        });
        problems.extend(evaluation.validate());
        let deploy = overlay(self.deploy, file.deploy).unwrap_or_else(|e| {
            problems.push(format!("deploy settings: {e}"));
            Default::default()
        });
        problems.extend(deploy.validate());
        let loadtest = overlay(self.loadtest, file.loadtest).unwrap_or_else(|e| {
            problems.push(format!("loadtest settings: {e}"));
            Default::default()
        });
        problems.extend(loadtest.validate());
        let config = ServeConfig {
            loadtest,
            deploy,
            keptn,
            evaluation,
            name,
            nats,
            subjects,
            queue_group,
            nats_consumer: pick!(nats_consumer).unwrap_or_default(),
            rerun_interrupted: pick!(rerun_interrupted).unwrap_or(true),
            listen: pick!(listen).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            data_dir: pick!(data_dir).unwrap_or_else(|| PathBuf::from("./data")),
            tasks,
            task_aliases,
            filter: EventFilter {
                projects: pick!(filter_projects).unwrap_or_default(),
                stages: pick!(filter_stages).unwrap_or_default(),
                services: pick!(filter_services).unwrap_or_default(),
            },
            api_token,
            log_format: pick!(log_format).unwrap_or_default(),
            shutdown_grace,
            journal_retention,
            max_body_bytes,
        };
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = ServeArgs::default()
            .resolve(ServeArgs::default())
            .expect("valid");
        assert_eq!(c.name, "keptn-native");
        assert_eq!(c.queue_group, "keptn-native");
        assert_eq!(c.nats.url, "nats://127.0.0.1:4222");
        assert_eq!(c.subjects, vec!["sh.keptn.event.*.triggered"]);
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.tasks, task_names());
        assert_eq!(c.nats_consumer, ConsumerMode::Auto);
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: ServeArgs = serde_norway::from_str(
            "name: from-file\nnats_url: nats://file:4222\ntask_alias: [je-test=test]\n",
        )
        .expect("yaml");
        let flags = ServeArgs {
            nats_url: Some("nats://flag:4222".into()),
            ..ServeArgs::default()
        };
        let c = flags.resolve(file).expect("valid");
        assert_eq!(c.nats.url, "nats://flag:4222");
        assert_eq!(c.name, "from-file");
        assert_eq!(c.queue_group, "from-file");
        assert_eq!(c.task_aliases, vec![("je-test".into(), "test".into())]);
    }

    #[test]
    fn task_sections_merge_field_by_field() {
        let file: ServeArgs = serde_norway::from_str(
            "evaluation:\n  prometheus_endpoint: http://file:9090\n  prometheus_timeout_seconds: 7\n\
             deploy:\n  backend: helm\n",
        )
        .expect("yaml");
        let mut flags = ServeArgs::default();
        flags.evaluation.prometheus_endpoint = Some("http://flag:9090".into());
        let c = flags.resolve(file).expect("valid");
        assert_eq!(
            c.evaluation.prometheus_endpoint.as_deref(),
            Some("http://flag:9090")
        );
        assert_eq!(c.evaluation.prometheus_timeout_seconds, Some(7));
        assert_eq!(c.deploy.backend.as_deref(), Some("helm"));
        let bad: Result<ServeArgs, _> = serde_norway::from_str("deploy:\n  backnd: helm\n");
        assert!(bad.is_err(), "unknown keys in a section are errors");
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = ServeArgs {
            nats_url: Some("http://x".into()),
            nats_user: Some("u".into()),
            task_alias: Some(vec!["je-test".into(), "x=release".into()]),
            tasks: Some(vec!["approval".into(), "release".into()]),
            shutdown_grace: Some("soon".into()),
            api_token: Some(Secret::new("short")),
            nats_creds_file: Some("/nonexistent/creds".into()),
            ..ServeArgs::default()
        };
        let problems = bad.resolve(ServeArgs::default()).expect_err("invalid");
        let all = problems.join("\n");
        for needle in [
            "NATS_URL",
            "NATS_USER and NATS_PASSWORD",
            "\"je-test\"",
            "\"x=release\"",
            "unknown task \"release\"",
            "SHUTDOWN_GRACE",
            "API_TOKEN",
            "NATS_CREDS_FILE",
            "only one NATS authentication",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
    }

    #[test]
    fn unknown_file_keys_are_errors_and_secrets_do_not_print() {
        assert!(serde_norway::from_str::<ServeArgs>("nats_ulr: x\n").is_err());
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }
}
