//! NATS transport: the connection (retries the first connect, reconnects forever within about
//! half a second, logs every state change), the reply sink, and core-NATS consumption (queue
//! subscriptions, as Keptn's execution plane uses them, §3.1). JetStream consumption is in
//! [`super::jetstream`]; which of the two runs is decided once connected ([`ConsumerMode`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use cloudevents::AttributesReader;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::{EventSink, PublishError};
use crate::config::{ConsumerMode, NatsConfig};
use crate::dispatch::Dispatcher;
use crate::keptn::envelope::encode;
use crate::metrics::Metrics;

/// Messages buffered per subscription before NATS drops them (slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 262_144;

/// Events dispatched at once; beyond that, messages wait in the subscription buffer.
const MAX_IN_FLIGHT: usize = 4096;

/// The longest pause between two reconnection attempts (jitter comes on top).
const RECONNECT_CAP: Duration = Duration::from_millis(250);

/// The state the readiness probe reads: connected, and the subscriptions or consumers exist
/// (which also means the journal was recovered, so the store is usable).
#[derive(Debug, Default)]
pub struct Connectivity {
    connected: AtomicBool,
    consuming: AtomicBool,
    closed: AtomicBool,
    on_close: tokio::sync::Notify,
}

impl Connectivity {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }

    pub fn set_consuming(&self, yes: bool) {
        self.consuming.store(yes, Ordering::Relaxed);
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

/// The pause before reconnection attempt `attempt`: 0, then doubling from 25 ms up to
/// [`RECONNECT_CAP`], plus up to 100 ms of jitter so that replicas do not reconnect in step.
pub fn reconnect_delay(attempt: usize, jitter: f64) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let exp = 25u64.saturating_mul(1 << (attempt - 2).min(10));
    Duration::from_millis(exp).min(RECONNECT_CAP)
        + Duration::from_millis((jitter.clamp(0.0, 1.0) * 100.0) as u64)
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
        .reconnect_delay_callback(|attempt| reconnect_delay(attempt, fastrand::f64()))
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

/// Room left in `max_payload` for the headers of a JetStream publish (`Nats-Msg-Id`).
const HEADER_ROOM: usize = 256;

/// Publishes replies on NATS, subject = event type: through JetStream (stable
/// `Nats-Msg-Id`, waits for the stream's ack) once the consumer mode is JetStream, as a core
/// publish in core mode. A reply waits until the mode is known.
pub struct NatsSink {
    client: Client,
    js: async_nats::jetstream::Context,
    mode: watch::Receiver<Option<ConsumerMode>>,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
}

impl NatsSink {
    /// A sink that publishes on core NATS.
    pub fn new(client: Client) -> Self {
        let (_, mode) = watch::channel(Some(ConsumerMode::Core));
        let metrics = Arc::new(Metrics::new(&mut Default::default()));
        Self::with_mode(client, mode, metrics, CancellationToken::new())
    }

    /// `mode` says how to publish once known; `give_up` ends retries (at the end of the drain).
    pub fn with_mode(
        client: Client,
        mode: watch::Receiver<Option<ConsumerMode>>,
        metrics: Arc<Metrics>,
        give_up: CancellationToken,
    ) -> Self {
        NatsSink {
            js: async_nats::jetstream::new(client.clone()),
            client,
            mode,
            metrics,
            give_up,
        }
    }
}

#[async_trait]
impl EventSink for NatsSink {
    async fn publish(&self, event: &cloudevents::Event) -> Result<(), PublishError> {
        let ty = event.ty().to_string();
        let fail = |reason: String| PublishError {
            ty: ty.clone(),
            reason,
        };
        let mut mode = self.mode.clone();
        let known = tokio::select! {
            _ = self.give_up.cancelled() => None,
            m = mode.wait_for(Option::is_some) => m.ok().and_then(|m| *m),
        };
        match known {
            Some(ConsumerMode::Jetstream) => super::jetstream::publish(
                &self.js,
                ty.clone(),
                event.id(),
                encode(event).into(),
                &self.metrics,
                &self.give_up,
            )
            .await
            .map_err(fail),
            Some(_) => self
                .client
                .publish(ty.clone(), encode(event).into())
                .await
                .map_err(|e| fail(e.to_string())),
            None => Err(fail("shut down before connecting to NATS".into())),
        }
    }

    fn max_payload(&self) -> usize {
        let max = match self.client.server_info().max_payload {
            0 => DEFAULT_MAX_PAYLOAD,
            n => n,
        };
        if *self.mode.borrow() == Some(ConsumerMode::Jetstream) {
            max.saturating_sub(HEADER_ROOM)
        } else {
            max
        }
    }
}

/// Decides the consumer mode once connected: `auto` becomes JetStream when the server has it.
/// Waits for the connection (until `stop`, then `None`).
pub async fn resolve_mode(
    client: &Client,
    requested: ConsumerMode,
    stop: &CancellationToken,
) -> Option<ConsumerMode> {
    while client.connection_state() != async_nats::connection::State::Connected {
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let chosen = match requested {
        ConsumerMode::Auto => {
            if super::jetstream::available(client).await {
                ConsumerMode::Jetstream
            } else {
                ConsumerMode::Core
            }
        }
        other => other,
    };
    info!(
        requested = requested.as_str(),
        chosen = chosen.as_str(),
        "NATS consumer mode"
    );
    Some(chosen)
}

/// Queue-subscribes to every subject and dispatches each message in its own tracked task
/// until `stop` is cancelled; then unsubscribes, so that no new event is taken.
pub async fn consume(
    client: Client,
    subjects: Vec<String>,
    queue_group: String,
    dispatcher: Arc<Dispatcher>,
    connectivity: Arc<Connectivity>,
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
    // The server has the subscriptions once it answered a ping sent after them.
    client
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("cannot confirm the subscriptions: {e}"))?;
    connectivity.set_consuming(true);
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
    connectivity.set_consuming(false);
    for mut sub in merged.into_iter() {
        let _ = sub.unsubscribe().await;
    }
    info!("stopped taking new events");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_is_capped_with_jitter() {
        assert_eq!(reconnect_delay(1, 0.9), Duration::ZERO);
        assert_eq!(reconnect_delay(2, 0.0), Duration::from_millis(25));
        assert_eq!(reconnect_delay(3, 0.0), Duration::from_millis(50));
        assert_eq!(reconnect_delay(50, 0.0), RECONNECT_CAP);
        assert_eq!(
            reconnect_delay(50, 1.0),
            RECONNECT_CAP + Duration::from_millis(100)
        );
        for attempt in 0..100 {
            assert!(reconnect_delay(attempt, 1.0) <= Duration::from_millis(350));
        }
    }
}
