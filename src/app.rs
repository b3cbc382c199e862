//! Builds the service from its configuration (store, metrics, handlers, NATS, HTTP API),
//! runs it, and owns the shutdown: stop taking events, let running tasks finish within the
//! grace period, flush the last replies.
//!
//! Tests and the `run`/`demo` commands start the whole service in-process with [`start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::api::{self, ApiState};
use crate::config::{KeptnConnection, ServeConfig};
use crate::dispatch::Dispatcher;
use crate::evaluation::history::{DatastoreHistory, EvaluationHistory};
use crate::handlers::{self, TaskContext};
use crate::keptn::{EventKind, EventType, ReplyBuilder};
use crate::metrics::Metrics;
use crate::resources::keptn::KeptnResources;
use crate::resources::{LocalDir, ResourceStore};
use crate::store::Store;
use crate::store::history::StoreHistory;
use crate::transport::nats::{self, NatsSink};

/// A running service.
pub struct RunningApp {
    /// Where the HTTP API listens (useful with port 0).
    pub http_addr: SocketAddr,
    pub dispatcher: Arc<Dispatcher>,
    stop: CancellationToken,
    done: JoinHandle<()>,
}

impl RunningApp {
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
        if let Err(e) = self.done.await {
            error!(error = %e, "shutdown task failed");
        }
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
    info!(tasks = ?registry.task_names(), "tasks handled natively");

    let (client, connectivity) = nats::connect(&config.nats, &config.name, Arc::clone(&metrics))
        .await
        .context("connecting to NATS")?;
    let dispatcher = Dispatcher::new(
        registry,
        ReplyBuilder::new(&config.name),
        Arc::new(NatsSink::new(client.clone())),
        store.clone(),
        metrics,
        config.filter.clone(),
    );
    dispatcher
        .recover()
        .await
        .context("recovering the journal")?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.listen))?;
    let http_addr = listener.local_addr()?;
    let closing = Arc::clone(&connectivity);
    let state = ApiState {
        dispatcher: Arc::clone(&dispatcher),
        registry: Arc::new(metrics_registry),
        connectivity,
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
    let consumer = tokio::spawn(nats::consume(
        client.clone(),
        subjects,
        config.queue_group.clone(),
        Arc::clone(&dispatcher),
        messages.clone(),
        stop.clone(),
    ));

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
        match consumer.await {
            Ok(Err(e)) => error!(error = %format!("{e:#}"), "NATS consumer failed"),
            Err(e) => error!(error = %e, "NATS consumer panicked"),
            Ok(Ok(())) => {}
        }
        messages.close();
        messages.wait().await;
        d.drain(grace).await;
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
    })
}
