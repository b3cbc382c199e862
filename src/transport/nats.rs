//! NATS transport (core NATS, as Keptn's execution plane uses it, §3.1): queue subscriptions
//! on the triggered subjects, replies published on subject = event type, a connection that
//! retries the first connect and reconnects forever, logging every state change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use cloudevents::AttributesReader;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::{EventSink, PublishError};
use crate::config::NatsConfig;
use crate::dispatch::Dispatcher;
use crate::keptn::envelope::encode;
use crate::metrics::Metrics;

/// Messages buffered per subscription before NATS drops them (slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 262_144;

/// Events dispatched at once; beyond that, messages wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 4096;

/// The connection state the readiness probe reads.
#[derive(Debug, Default)]
pub struct Connectivity {
    connected: AtomicBool,
    closed: AtomicBool,
    on_close: tokio::sync::Notify,
}

impl Connectivity {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn mark_closed(&self) {
        self.connected.store(false, Ordering::Relaxed);
        self.closed.store(true, Ordering::Relaxed);
        self.on_close.notify_waiters();
    }

    /// Waits until the connection is closed for good (after [`close`]).
    async fn closed(&self) {
        let notified = self.on_close.notified();
        if !self.closed.load(Ordering::Relaxed) {
            notified.await;
        }
    }
}

/// Ends the connection in order at shutdown: sends what is buffered, then drains and closes
/// it, so that servers stopped afterwards (as `demo` and `run --serve` do) see a client that
/// has already left instead of one that warns and reconnects. Bounded by `limit`.
pub async fn close(client: &Client, connectivity: &Connectivity, limit: std::time::Duration) {
    if !connectivity.is_connected() {
        warn!("NATS is not connected at shutdown; replies not yet sent are lost");
        return;
    }
    let closing = async {
        if let Err(e) = client.flush().await {
            warn!(error = %e, "NATS flush failed at shutdown; the last replies may be lost");
        }
        if client.drain().await.is_ok() {
            connectivity.closed().await;
        }
    };
    if tokio::time::timeout(limit, closing).await.is_err() {
        warn!("NATS did not close within {limit:?}; the last replies may be lost");
    }
}

/// Connects to NATS. Returns at once: the first connection is retried in the background.
pub async fn connect(
    cfg: &NatsConfig,
    name: &str,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Client, Arc<Connectivity>)> {
    let state = Arc::new(Connectivity::default());
    let cb_state = Arc::clone(&state);
    let url = cfg.url.clone();
    let first = Arc::new(AtomicBool::new(true));
    let mut opts = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        // Core NATS has no flow control: a burst must fit in the client's buffer while the
        // dispatcher works through it (see MAX_IN_FLIGHT), or messages are dropped.
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(move |event| {
            let state = Arc::clone(&cb_state);
            let metrics = Arc::clone(&metrics);
            let first = Arc::clone(&first);
            let url = url.clone();
            async move {
                match event {
                    Event::Connected => {
                        state.connected.store(true, Ordering::Relaxed);
                        metrics.nats_connected.set(1);
                        if !first.swap(false, Ordering::Relaxed) {
                            metrics.nats_reconnects.inc();
                        }
                        info!(nats.url = %url, "NATS connected");
                    }
                    Event::Disconnected => {
                        state.connected.store(false, Ordering::Relaxed);
                        metrics.nats_connected.set(0);
                        warn!(nats.url = %url, "NATS disconnected; reconnecting");
                    }
                    Event::Closed => {
                        state.mark_closed();
                        metrics.nats_connected.set(0);
                        info!("NATS connection closed");
                    }
                    Event::Draining => debug!("NATS connection draining"),
                    Event::LameDuckMode => warn!("NATS server entered lame duck mode"),
                    Event::SlowConsumer(sid) => {
                        metrics.nats_slow_consumer.inc();
                        error!(sid, "NATS slow consumer: messages were dropped")
                    }
                    other => warn!(event = %other, "NATS event"),
                }
            }
        });
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        opts = opts.user_and_password(user.clone(), password.expose().to_string());
    }
    if let Some(token) = &cfg.token {
        opts = opts.token(token.expose().to_string());
    }
    if let Some(creds) = &cfg.creds_file {
        opts = opts.credentials_file(creds).await.map_err(|e| {
            anyhow::anyhow!("cannot read NATS credentials file {}: {e}", creds.display())
        })?;
    }
    if let Some(ca) = &cfg.tls_ca_file {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if cfg.tls_required {
        opts = opts.require_tls(true);
    }
    info!(nats.url = %cfg.url, "connecting to NATS");
    let client = opts.connect(cfg.url.as_str()).await?;
    Ok((client, state))
}

/// NATS' default `max_payload`, assumed until the server has told its own.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// Publishes replies on NATS, subject = event type.
pub struct NatsSink {
    client: Client,
}

impl NatsSink {
    pub fn new(client: Client) -> Self {
        NatsSink { client }
    }
}

#[async_trait]
impl EventSink for NatsSink {
    async fn publish(&self, event: &cloudevents::Event) -> Result<(), PublishError> {
        let ty = event.ty().to_string();
        self.client
            .publish(ty.clone(), encode(event).into())
            .await
            .map_err(|e| PublishError {
                ty,
                reason: e.to_string(),
            })
    }

    fn max_payload(&self) -> usize {
        match self.client.server_info().max_payload {
            0 => DEFAULT_MAX_PAYLOAD,
            n => n,
        }
    }
}

/// Queue-subscribes to every subject and dispatches each message in its own tracked task
/// until `stop` is cancelled; then unsubscribes, so that no new event is taken.
pub async fn consume(
    client: Client,
    subjects: Vec<String>,
    queue_group: String,
    dispatcher: Arc<Dispatcher>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut subs = Vec::new();
    for subject in &subjects {
        let sub = client
            .queue_subscribe(subject.clone(), queue_group.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot subscribe to {subject}: {e}"))?;
        info!(%subject, queue_group = %queue_group, "subscribed");
        subs.push(sub);
    }
    let mut merged = futures::stream::select_all(subs);
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            msg = merged.next() => {
                let Some(msg) = msg else { break };
                debug!(subject = %msg.subject, bytes = msg.payload.len(), "message");
                let d = Arc::clone(&dispatcher);
                tracker.spawn(async move {
                    d.dispatch_bytes(&msg.payload).await;
                    drop(permit);
                });
            }
        }
    }
    for mut sub in merged.into_iter() {
        let _ = sub.unsubscribe().await;
    }
    info!("stopped taking new events");
    Ok(())
}
