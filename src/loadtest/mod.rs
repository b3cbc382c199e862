//! Native load generation for the `test` task (in place of locust in a Kubernetes Job).
//!
//! - [`plan`]: the YAML plan model, its validation and the thresholds (pure).
//! - [`locust`]: translation of `locust.conf` + a locustfile subset into a plan (pure).
//! - [`target`]: target URL and the host allow-list (pure).
//! - [`engine`]: the generator (tokio + hyper, closed and open models).
//! - [`stats`]: HDR histograms and counts per request name.
//! - [`report`]: summary table, JSON, the compact `data.test` summary.
//! - [`metrics`]: load-test figures for `/metrics`.

use std::time::Duration;

use serde::Deserialize;

pub mod engine;
pub mod locust;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod stats;
pub mod target;

pub use engine::{Progress, RunResult, run};
pub use metrics::LoadtestMetrics;
pub use plan::{PlanFile, Workload};
pub use target::Target;

/// Serve-time settings of the `test` task.
#[derive(Debug, Clone, Default, clap::Args, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadtestSettings {
    /// Host patterns load may be aimed at (`name`, `*.suffix`, `*`, optional `:port`;
    /// `{project}`, `{stage}`, `{service}` are replaced from the event). Variable
    /// `LOADTEST_ALLOWED_HOSTS` (comma-separated). Default: `*.{project}-{stage}`,
    /// `*.{project}-{stage}.svc`, `*.{project}-{stage}.svc.cluster.local`.
    #[arg(
        long = "loadtest-allowed-hosts",
        env = "LOADTEST_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Longest a test may run; longer plans are cut to it (and say so). Variable
    /// `LOADTEST_MAX_RUN_TIME`. Default `30m`.
    #[arg(long = "loadtest-max-run-time", env = "LOADTEST_MAX_RUN_TIME")]
    pub max_run_time: Option<String>,
    /// Most closed-model users a plan may ask for. Variable `LOADTEST_MAX_USERS`. Default 1000.
    #[arg(long = "loadtest-max-users", env = "LOADTEST_MAX_USERS")]
    pub max_users: Option<u32>,
    /// Highest open-model rate (requests/s) a plan may ask for. Variable `LOADTEST_MAX_RATE`.
    /// Default 5000.
    #[arg(long = "loadtest-max-rate", env = "LOADTEST_MAX_RATE")]
    pub max_rate: Option<f64>,
    /// Resource name of the native plan. Variable `LOADTEST_PLAN_RESOURCE`. Default
    /// `loadtest.yaml`.
    #[arg(long = "loadtest-plan-resource", env = "LOADTEST_PLAN_RESOURCE")]
    pub plan_resource: Option<String>,
}

/// Default of [`LoadtestSettings::max_run_time`].
pub const DEFAULT_MAX_RUN_TIME: Duration = Duration::from_secs(30 * 60);

impl LoadtestSettings {
    /// Every problem with the settings.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(s) = &self.max_run_time
            && plan::parse_duration(s).is_none_or(|d| d.is_zero())
        {
            p.push(format!(
                "LOADTEST_MAX_RUN_TIME {s:?} is not a duration like `30m`"
            ));
        }
        if self.max_users == Some(0) {
            p.push("LOADTEST_MAX_USERS must be > 0".into());
        }
        if let Some(r) = self.max_rate
            && !(r.is_finite() && r > 0.0)
        {
            p.push(format!("LOADTEST_MAX_RATE must be > 0, got {r}"));
        }
        if let Some(r) = &self.plan_resource
            && let Err(e) = crate::resources::validate_name(r)
        {
            p.push(format!("LOADTEST_PLAN_RESOURCE: {e}"));
        }
        for h in &self.allowed_hosts {
            if h.trim().is_empty() || h.contains('/') {
                p.push(format!(
                    "LOADTEST_ALLOWED_HOSTS entry {h:?} must be a host pattern like `*.ns` or `host:port`"
                ));
            }
        }
        p
    }

    pub fn allowed_hosts(&self) -> Vec<String> {
        if self.allowed_hosts.is_empty() {
            target::DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            self.allowed_hosts.clone()
        }
    }

    pub fn max_run_time(&self) -> Duration {
        self.max_run_time
            .as_deref()
            .and_then(plan::parse_duration)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_MAX_RUN_TIME)
    }

    pub fn max_users(&self) -> u32 {
        self.max_users.unwrap_or(1000)
    }

    pub fn max_rate(&self) -> f64 {
        self.max_rate.unwrap_or(5000.0)
    }

    pub fn plan_resource(&self) -> &str {
        self.plan_resource.as_deref().unwrap_or("loadtest.yaml")
    }
}

/// Applies the service's limits to a workload (pure): too many users or too high a rate is an
/// error; a run time over the limit is cut, and the returned note says so.
pub fn apply_limits(w: &mut Workload, s: &LoadtestSettings) -> Result<Option<String>, String> {
    match w.model {
        plan::Model::Closed { users, .. } if users > s.max_users() => {
            return Err(format!(
                "the plan asks for {users} users, more than LOADTEST_MAX_USERS={}",
                s.max_users()
            ));
        }
        plan::Model::Open { rate, .. } if rate > s.max_rate() => {
            return Err(format!(
                "the plan asks for {rate} requests/s, more than LOADTEST_MAX_RATE={}",
                s.max_rate()
            ));
        }
        _ => {}
    }
    let max = s.max_run_time();
    match w.run_time {
        Some(d) if d > max => {
            w.run_time = Some(max);
            Ok(Some(format!(
                "run time cut from {}s to {}s by LOADTEST_MAX_RUN_TIME",
                d.as_secs_f64(),
                max.as_secs_f64()
            )))
        }
        None => {
            w.run_time = Some(max);
            Ok(None)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate_and_default() {
        let s = LoadtestSettings::default();
        assert!(s.validate().is_empty());
        assert_eq!(s.max_run_time(), DEFAULT_MAX_RUN_TIME);
        assert_eq!(s.allowed_hosts().len(), 3);
        assert_eq!(s.plan_resource(), "loadtest.yaml");
        let bad = LoadtestSettings {
            allowed_hosts: vec!["http://x/".into()],
            max_run_time: Some("soon".into()),
            max_users: Some(0),
            max_rate: Some(-1.0),
            plan_resource: Some("../x".into()),
        };
        assert_eq!(bad.validate().len(), 5, "{:?}", bad.validate());
    }

    #[test]
    fn limits_reject_or_cut() {
        let lf = locust::parse_locustfile(
            "f",
            "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/')\n",
        )
        .expect("lf");
        let conf = locust::LocustConf {
            users: Some(50),
            run_time: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        let s = LoadtestSettings {
            max_users: Some(10),
            ..Default::default()
        };
        let mut w = locust::to_workload(&conf, &lf);
        assert!(
            apply_limits(&mut w, &s)
                .expect_err("too many")
                .contains("50 users")
        );
        let s = LoadtestSettings {
            max_run_time: Some("2s".into()),
            ..Default::default()
        };
        let note = apply_limits(&mut w, &s).expect("ok").expect("note");
        assert!(note.contains("3600s to 2s"), "{note}");
        assert_eq!(w.run_time, Some(Duration::from_secs(2)));
        // Iterations without a run time still get the cap as a bound.
        w.run_time = None;
        assert_eq!(apply_limits(&mut w, &s).expect("ok"), None);
        assert_eq!(w.run_time, Some(Duration::from_secs(2)));
    }
}
