//! Builds the service from its configuration (store, metrics, handlers, NATS, HTTP API),
//! runs it, and owns the shutdown: stop taking events, let running tasks finish within the
//! grace period, flush the last replies.
//!
//! Tests and the `run`/`demo` commands start the whole service in-process with [`start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::api::{self, ApiState};
use crate::config::{ConsumerMode, KeptnConnection, ServeConfig};
use crate::dispatch::Dispatcher;
use crate::evaluation::history::{DatastoreHistory, EvaluationHistory};
use crate::handlers::{self, TaskContext};
use crate::keptn::{EventKind, EventType, ReplyBuilder};
use crate::metrics::Metrics;
use crate::resources::keptn::KeptnResources;
use crate::resources::{LocalDir, ResourceStore};
use crate::store::Store;
use crate::store::history::StoreHistory;
use crate::transport::jetstream;
use crate::transport::nats::{self, NatsSink};

/// A running service.
pub struct RunningApp {
    /// Where the HTTP API listens (useful with port 0).
    pub http_addr: SocketAddr,
    pub dispatcher: Arc<Dispatcher>,
    stop: CancellationToken,
    done: JoinHandle<()>,
    /// Set when a part died (consumer, HTTP server) instead of being stopped.
    failed: Arc<AtomicBool>,
    connectivity: Arc<nats::Connectivity>,
}

impl RunningApp {
    /// Waits (at most `within`) until the service takes events: connected, journal
    /// recovered, subscriptions or consumers in place. `false` if that did not happen in time.
    pub async fn ready(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !(self.connectivity.is_connected() && self.connectivity.is_consuming()) {
            if tokio::time::Instant::now() >= deadline || self.stop.is_cancelled() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Starts the graceful shutdown.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// A token that starts the shutdown when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Waits until the service has shut down.
    pub async fn wait(self) {
        self.wait_status().await;
    }

    /// Waits until the service has shut down; `false` if it stopped because a part of it died
    /// (the NATS consumer or the HTTP server), so that the process can exit non-zero.
    pub async fn wait_status(self) -> bool {
        if let Err(e) = self.done.await {
            error!(error = %e, "shutdown task failed");
            return false;
        }
        !self.failed.load(Ordering::Relaxed)
    }

    /// Stops and waits.
    pub async fn shutdown(self) {
        self.stop();
        self.wait().await;
    }
}

/// The clients every handler shares, built once.
struct Clients {
    http: reqwest::Client,
    resources: Arc<dyn ResourceStore>,
    history: Arc<dyn EvaluationHistory>,
}

impl Clients {
    fn build(config: &ServeConfig, store: &Store) -> anyhow::Result<Clients> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keptn-native/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let (resources, history): (Arc<dyn ResourceStore>, Arc<dyn EvaluationHistory>) =
            match &config.keptn {
                KeptnConnection::Standalone { resources_dir } => (
                    Arc::new(LocalDir::new(resources_dir)),
                    Arc::new(StoreHistory::new(store.clone())),
                ),
                KeptnConnection::Api { endpoint, token } => (
                    Arc::new(KeptnResources::gateway(
                        http.clone(),
                        endpoint,
                        token.expose().to_string(),
                    )),
                    Arc::new(DatastoreHistory::new(
                        http.clone(),
                        format!("{endpoint}/mongodb-datastore"),
                        Some(token.expose().to_string()),
                    )),
                ),
                KeptnConnection::InCluster {
                    resource_service,
                    datastore,
                } => (
                    Arc::new(KeptnResources::in_cluster(http.clone(), resource_service)),
                    Arc::new(DatastoreHistory::new(http.clone(), datastore.clone(), None)),
                ),
            };
        Ok(Clients {
            http,
            resources,
            history,
        })
    }
}

/// The subjects to subscribe to: the configured ones, plus the `.finished` of every task name
/// whose pending tasks a `.finished` from someone else settles (approvals decided in Keptn's
/// Bridge settle here too).
fn subjects(config: &ServeConfig, registry: &handlers::Registry) -> Vec<String> {
    let mut subjects = config.subjects.clone();
    for name in registry.task_names() {
        if registry.settled_by_others(&name) {
            let s = EventType::task(&name, EventKind::Finished);
            if !subjects.contains(&s) {
                subjects.push(s);
            }
        }
    }
    subjects
}

/// The subjects a JetStream consumer is made for: the default wildcard
/// `sh.keptn.event.*.triggered` becomes the `.triggered` subject of every handled task name,
/// so that the stream only delivers what this service answers.
fn durable_subjects(subjects: &[String], registry: &handlers::Registry) -> Vec<String> {
    let mut out = Vec::new();
    for s in subjects {
        if s == "sh.keptn.event.*.triggered" {
            for name in registry.task_names() {
                out.push(EventType::task(&name, EventKind::Triggered));
            }
        } else {
            out.push(s.clone());
        }
    }
    out.dedup();
    out
}

/// Decides the consumer mode once connected, recovers the journal, then consumes until
/// `stop`. An error here ends the service (non-zero exit).
#[allow(clippy::too_many_arguments)]
async fn consume(
    client: async_nats::Client,
    config: ServeConfig,
    subjects: Vec<String>,
    durable: Vec<String>,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    connectivity: Arc<nats::Connectivity>,
    mode_tx: tokio::sync::watch::Sender<Option<ConsumerMode>>,
    messages: TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let Some(mode) = nats::resolve_mode(&client, config.nats_consumer, &stop).await else {
        return Ok(());
    };
    dispatcher.set_redelivery(mode == ConsumerMode::Jetstream);
    dispatcher.set_rerun_interrupted(config.rerun_interrupted);
    let _ = mode_tx.send(Some(mode));
    dispatcher
        .recover()
        .await
        .context("recovering the journal")?;
    if mode == ConsumerMode::Jetstream {
        jetstream::consume(
            client,
            durable,
            config.queue_group.clone(),
            dispatcher,
            metrics,
            connectivity,
            messages,
            stop,
        )
        .await
    } else {
        nats::consume(
            client,
            subjects,
            config.queue_group.clone(),
            dispatcher,
            connectivity,
            messages,
            stop,
        )
        .await
    }
}

/// Builds and starts the service.
pub async fn start(config: ServeConfig) -> anyhow::Result<RunningApp> {
    let mut metrics_registry = MetricsRegistry::default();
    let metrics = Arc::new(Metrics::new(&mut metrics_registry));
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let clients = Clients::build(&config, &store)?;
    let tasks = Arc::new(TaskContext::new(
        config.clone(),
        clients.http,
        clients.resources,
        clients.history,
        metrics_registry,
    ));
    let registry = handlers::Registry::build(&tasks, &config.tasks, &config.task_aliases).await?;
    let metrics_registry = tasks.take_metrics();
    let subjects = subjects(&config, &registry);
    let durable = durable_subjects(&subjects, &registry);
    info!(tasks = ?registry.task_names(), "tasks handled natively");

    let (client, connectivity) = nats::connect(&config.nats, &config.name, Arc::clone(&metrics))
        .await
        .context("connecting to NATS")?;
    let (mode_tx, mode_rx) = tokio::sync::watch::channel(None);
    // Replies still unsent when the drain is over stay in the outbox for the next start.
    let give_up = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        registry,
        ReplyBuilder::new(&config.name),
        Arc::new(NatsSink::with_mode(
            client.clone(),
            mode_rx,
            Arc::clone(&metrics),
            give_up.clone(),
        )),
        store.clone(),
        Arc::clone(&metrics),
        config.filter.clone(),
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.listen))?;
    let http_addr = listener.local_addr()?;
    let closing = Arc::clone(&connectivity);
    let state = ApiState {
        dispatcher: Arc::clone(&dispatcher),
        registry: Arc::new(metrics_registry),
        connectivity: Arc::clone(&connectivity),
        token: config.api_token.clone(),
    };
    let stop = CancellationToken::new();
    let http = tokio::spawn(
        axum::serve(listener, api::router(state, config.max_body_bytes))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    info!(%http_addr, "HTTP API listening");

    let messages = TaskTracker::new();
    let failed = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(consume(
        client.clone(),
        config.clone(),
        subjects,
        durable,
        Arc::clone(&dispatcher),
        metrics,
        Arc::clone(&connectivity),
        mode_tx,
        messages.clone(),
        stop.clone(),
    ));
    // A consumer or HTTP server that ends while the service is not stopping means the service
    // is deaf: stop it and exit non-zero rather than run on.
    let (consumer, http) = {
        let watch = |what: &'static str, task: JoinHandle<anyhow::Result<()>>| {
            let stop = stop.clone();
            let failed = Arc::clone(&failed);
            tokio::spawn(async move {
                let r = task.await;
                let problem = match r {
                    Ok(Ok(())) if stop.is_cancelled() => None,
                    Ok(Ok(())) => Some("stopped unexpectedly".to_string()),
                    Ok(Err(e)) => Some(format!("{e:#}")),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(p) = problem {
                    error!(error = %p, "{what} died; shutting down");
                    failed.store(true, Ordering::Relaxed);
                    stop.cancel();
                }
            })
        };
        let http = tokio::spawn(async move { http.await?.map_err(anyhow::Error::from) });
        (watch("NATS consumer", consumer), watch("HTTP server", http))
    };

    let pruner = {
        let stop = stop.clone();
        let retention = config.journal_retention;
        tokio::spawn(async move {
            loop {
                match store.prune_finished(retention).await {
                    Ok(n) if n > 0 => info!(entries = n, "pruned old journal entries"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "journal pruning failed"),
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
            }
        })
    };

    let grace = config.shutdown_grace;
    let d = Arc::clone(&dispatcher);
    let stopping = stop.clone();
    let done = tokio::spawn(async move {
        stopping.cancelled().await;
        info!("shutting down: no new events");
        let _ = consumer.await;
        messages.close();
        messages.wait().await;
        // Replies of tasks answered at the end of the grace period get a few seconds more.
        let give_up_later = {
            let give_up = give_up.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace + Duration::from_secs(5)).await;
                give_up.cancel();
            })
        };
        d.drain(grace).await;
        give_up_later.abort();
        tasks.shutdown().await;
        let _ = pruner.await;
        let _ = http.await;
        nats::close(&client, &closing, Duration::from_secs(5)).await;
        info!("shut down");
    });
    Ok(RunningApp {
        http_addr,
        dispatcher,
        stop,
        done,
        failed,
        connectivity,
    })
}
