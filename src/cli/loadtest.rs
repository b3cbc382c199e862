//! `keptn-native loadtest`: run a native plan or a locustfile from the command line, with a
//! live progress line on a terminal, a summary table (or JSON) at the end, and the exit code
//! from the thresholds (0 pass or warning, 1 fail, 2 unusable input).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use crate::keptn::ResultType;
use crate::loadtest::{self, PlanFile, Progress, Target, Workload, locust, plan, report};

/// Arguments of `keptn-native loadtest`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["plan", "locustfile"]))]
pub struct LoadtestArgs {
    /// Target base URL (http://host:port[/base]); default: the plan's or locust.conf's host.
    #[arg(long)]
    pub host: Option<String>,
    /// A native plan (YAML).
    #[arg(long)]
    pub plan: Option<std::path::PathBuf>,
    /// Workload of the plan to run (its `teststrategy`).
    #[arg(long, requires = "plan")]
    pub teststrategy: Option<String>,
    /// A locustfile in the supported subset.
    #[arg(long)]
    pub locustfile: Option<std::path::PathBuf>,
    /// A locust.conf (users, spawn-rate, run-time, host).
    #[arg(long, requires = "locustfile")]
    pub locust_conf: Option<std::path::PathBuf>,
    /// Closed model: concurrent users.
    #[arg(long, short = 'u')]
    pub users: Option<u32>,
    /// Closed model: users started per second.
    #[arg(long, short = 'r')]
    pub spawn_rate: Option<f64>,
    /// Run time (`30s`, `2m`, `1h30m`).
    #[arg(long, short = 't')]
    pub run_time: Option<String>,
    /// Stop after this many tasks.
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Open model: start this many requests per second (latency from the intended start).
    #[arg(long, conflicts_with_all = ["users", "spawn_rate"])]
    pub rate: Option<f64>,
    /// Remove the plan's think time (closed model, maximum throughput).
    #[arg(long)]
    pub no_wait: bool,
    /// Runtime worker threads (default: number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LoadtestArgs) -> ExitCode {
    // One thread: a current-thread runtime (no work-stealing overhead, no cross-thread wakeups).
    let mut rt = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run_async(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_bytes(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Builds the workload from files and flags.
fn workload(args: &LoadtestArgs) -> anyhow::Result<Workload> {
    let mut w = if let Some(p) = &args.plan {
        let name = p.display().to_string();
        let plan = PlanFile::parse(&name, &read(p)?)?;
        plan.select(&name, args.teststrategy.as_deref().unwrap_or(""))?
            .validate(&name)?
    } else if let Some(f) = &args.locustfile {
        let conf = match &args.locust_conf {
            Some(c) => {
                let name = c.display().to_string();
                locust::parse_conf(&name, &locust::source_text(&name, &read_bytes(c)?)?)?
            }
            None => locust::LocustConf::default(),
        };
        let name = f.display().to_string();
        let lf = locust::parse_locustfile(&name, &locust::source_text(&name, &read_bytes(f)?)?)?;
        locust::to_workload(&conf, &lf)
    } else {
        return Err(anyhow!("give --plan or --locustfile"));
    };
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(anyhow!("--rate must be > 0"));
        }
        w.model = plan::Model::Open {
            rate,
            max_in_flight: match w.model {
                plan::Model::Open { max_in_flight, .. } => max_in_flight,
                plan::Model::Closed { .. } => 1000,
            },
        };
    }
    if let plan::Model::Closed {
        users,
        spawn_rate,
        wait,
    } = w.model
    {
        let users = args.users.unwrap_or(users);
        if users == 0 {
            return Err(anyhow!("--users must be > 0"));
        }
        let spawn_rate = match args.spawn_rate {
            Some(r) if r.is_finite() && r > 0.0 => r,
            Some(_) => return Err(anyhow!("--spawn-rate must be > 0")),
            None => spawn_rate,
        };
        w.model = plan::Model::Closed {
            users,
            spawn_rate,
            wait: if args.no_wait { None } else { wait },
        };
    }
    if let Some(t) = &args.run_time {
        w.run_time = Some(
            plan::parse_duration(t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| anyhow!("--run-time {t:?} is not like `30s`, `2m`, `1h30m`"))?,
        );
    }
    if let Some(i) = args.iterations {
        w.iterations = Some(i);
        if args.run_time.is_none() {
            w.run_time = None;
        }
    }
    Ok(w)
}

async fn run_async(args: LoadtestArgs) -> anyhow::Result<ExitCode> {
    let w = workload(&args)?;
    let url = args
        .host
        .clone()
        .or_else(|| w.host.clone())
        .ok_or_else(|| anyhow!("no target: give --host (or `host` in the plan / locust.conf)"))?;
    let target = Target::parse(&url)?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let progress = Arc::new(Progress::default());
    let ticker = std::io::stderr().is_terminal().then(|| {
        let progress = progress.clone();
        let done = cancel.child_token();
        let stop = done.clone();
        let h = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut last = (t0, 0u64);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = done.cancelled() => break,
                }
                let now = Instant::now();
                let n = progress.requests.load(Ordering::Relaxed);
                let rate = (n - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, n);
                eprint!(
                    "\r[{:>5.0}s] users {:>5} | requests {:>10} | failures {:>8} | {:>9.1} req/s   ",
                    t0.elapsed().as_secs_f64(),
                    progress.users.load(Ordering::Relaxed),
                    n,
                    progress.failures.load(Ordering::Relaxed),
                    rate
                );
            }
            eprintln!();
        });
        (stop, h)
    });
    let result = loadtest::run(&w, &target, cancel.clone(), progress).await;
    if let Some((stop, h)) = ticker {
        stop.cancel();
        let _ = h.await;
    }
    let verdict = plan::evaluate(&w.thresholds, &result.summary);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&result, &target.url, &verdict))?
        );
    } else {
        print!("{}", report::table(&result));
        println!(
            "Result: {}{}",
            verdict.result.as_str(),
            if verdict.breaches.is_empty() {
                String::new()
            } else {
                format!(" ({})", verdict.breaches.join(", "))
            }
        );
    }
    Ok(match verdict.result {
        ResultType::Fail => ExitCode::from(1),
        _ if result.cancelled => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}
