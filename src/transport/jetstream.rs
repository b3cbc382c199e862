//! JetStream transport: durable consumption of the handled subjects from the stream that
//! captures `sh.keptn.>` (Keptn's `keptn` stream, created with Keptn's own name and subjects
//! when it is missing), and replies published with a stable `Nats-Msg-Id` and a wait for the
//! stream's ack.
//!
//! The protocol with the stream:
//! - one durable pull consumer per handled subject, named after the queue group (NATS 2.9,
//!   which Keptn ships, allows one filter per consumer), starting at new messages;
//! - a message is acked once the dispatcher has its outcome, which for a triggered event means
//!   its journal entry is committed; a journal failure naks it (redelivered), an event that
//!   cannot be correlated is terminated; while the dispatcher works, the claim is kept with
//!   in-progress acks;
//! - a reply is published with `Nats-Msg-Id` = its CloudEvent id; a copy sent again after a
//!   crash is dropped by the stream's duplicate window (and counted).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::nats::Connectivity;
use crate::dispatch::{Dispatcher, Outcome};
use crate::metrics::{AckLabels, Metrics};

/// The stream the shipyard-controller keeps (`kk:shipyard-controller/internal/nats/connection.go`).
pub const KEPTN_STREAM: &str = "keptn";
/// Its subjects (`kk:shipyard-controller/main.go`).
pub const KEPTN_SUBJECTS: &str = "sh.keptn.>";

/// How long the server waits for an ack before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Unacked messages per consumer (the dispatcher's own limit is lower).
const MAX_ACK_PENDING: i64 = 20_000;
/// Messages dispatched at once, over all consumers.
const MAX_IN_FLIGHT: usize = 4096;
/// Delay before a nakked message comes back.
const NAK_DELAY: Duration = Duration::from_secs(1);

/// Whether the server has JetStream for this account (a short request; `false` on any error).
pub async fn available(client: &async_nats::Client) -> bool {
    // A raw request: the account info of older servers (2.9, as Keptn ships) lacks fields the
    // client's typed answer requires. Without JetStream nobody answers (no responders), or the
    // answer is an error.
    let info = client.request("$JS.API.INFO", bytes::Bytes::new());
    match tokio::time::timeout(Duration::from_secs(3), info).await {
        Ok(Ok(msg)) => serde_json::from_slice::<serde_json::Value>(&msg.payload)
            .map(|v| v.get("error").is_none())
            .unwrap_or(false),
        _ => false,
    }
}

/// The name of the stream that captures Keptn's events: the existing one, or `keptn`,
/// created as the shipyard-controller creates it.
pub async fn ensure_stream(js: &jetstream::Context) -> anyhow::Result<String> {
    if let Ok(name) = js.stream_by_subject("sh.keptn.event.any.triggered").await {
        return Ok(name);
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: KEPTN_STREAM.to_string(),
        subjects: vec![KEPTN_SUBJECTS.to_string()],
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the JetStream stream {KEPTN_STREAM}: {e}"))?;
    info!(
        stream = KEPTN_STREAM,
        subjects = KEPTN_SUBJECTS,
        "created the stream"
    );
    Ok(KEPTN_STREAM.to_string())
}

/// The durable consumer name for `subject` in `group`: `<group>-<task>-<kind>` for
/// `sh.keptn.event.<task>.<kind>` (wildcards spelled `any`/`all`), only characters NATS allows.
pub fn consumer_name(group: &str, subject: &str) -> String {
    let tail = subject.strip_prefix("sh.keptn.event.").unwrap_or(subject);
    let tail = tail
        .replace('*', "any")
        .replace('>', "all")
        .replace('.', "-");
    format!("{group}-{tail}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn ensure_consumer(
    js: &jetstream::Context,
    group: &str,
    subject: &str,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let stream_name = ensure_stream(js).await?;
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open stream {stream_name}: {e}"))?;
    let name = consumer_name(group, subject);
    stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: subject.to_string(),
                deliver_policy: DeliverPolicy::New,
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create consumer {name} on {stream_name}: {e}"))
}

/// Pulls one consumer's messages into `out`, recreating the consumer (and the stream) when
/// the server lost it, until `stop`. Reports on `ready` once the consumer exists.
async fn pull_subject(
    js: jetstream::Context,
    group: String,
    subject: String,
    out: mpsc::Sender<jetstream::Message>,
    ready: mpsc::Sender<()>,
    stop: CancellationToken,
) {
    let mut announced = false;
    while !stop.is_cancelled() {
        let messages = match ensure_consumer(&js, &group, &subject).await {
            Ok(c) => c.stream().max_messages_per_batch(256).messages().await,
            Err(e) => {
                warn!(%subject, error = %format!("{e:#}"), "JetStream consumer not available; retrying");
                retry_pause(&stop).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                warn!(%subject, error = %e, "cannot pull from the consumer; retrying");
                retry_pause(&stop).await;
                continue;
            }
        };
        if !announced {
            info!(%subject, consumer = %consumer_name(&group, &subject), "consuming from JetStream");
            let _ = ready.send(()).await;
            announced = true;
        }
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                n = messages.next() => n,
            };
            match next {
                Some(Ok(msg)) => {
                    if out.send(msg).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    use async_nats::jetstream::consumer::pull::MessagesErrorKind as K;
                    match e.kind() {
                        // Transient: the pull goes on by itself after a reconnect.
                        K::MissingHeartbeat | K::Pull | K::NoResponders | K::Other => {
                            debug!(%subject, error = %e, "pull interrupted")
                        }
                        _ => {
                            warn!(%subject, error = %e, "consumer lost; recreating it");
                            break;
                        }
                    }
                }
                None => break,
            }
        }
        retry_pause(&stop).await;
    }
}

async fn retry_pause(stop: &CancellationToken) {
    let pause = Duration::from_millis(200 + fastrand::u64(0..200));
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(pause) => {}
    }
}

/// Consumes `subjects` through durable consumers of `group` and dispatches each message in
/// its own tracked task until `stop`. Marks `connectivity` consuming once every consumer
/// exists.
#[allow(clippy::too_many_arguments)]
pub async fn consume(
    client: async_nats::Client,
    subjects: Vec<String>,
    group: String,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    connectivity: Arc<Connectivity>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let js = jetstream::new(client);
    let (tx, mut rx) = mpsc::channel::<jetstream::Message>(1024);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subjects.len().max(1));
    let pullers = TaskTracker::new();
    for subject in &subjects {
        pullers.spawn(pull_subject(
            js.clone(),
            group.clone(),
            subject.clone(),
            tx.clone(),
            ready_tx.clone(),
            stop.clone(),
        ));
    }
    pullers.close();
    drop(tx);
    drop(ready_tx);
    let mut waiting = subjects.len();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            Some(()) = ready_rx.recv(), if waiting > 0 => {
                waiting -= 1;
                if waiting == 0 {
                    connectivity.set_consuming(true);
                }
                continue;
            }
            m = rx.recv() => match m {
                Some(m) => m,
                None => {
                    if stop.is_cancelled() {
                        break;
                    }
                    anyhow::bail!("every JetStream consumer stopped");
                }
            },
        };
        let d = Arc::clone(&dispatcher);
        let metrics = Arc::clone(&metrics);
        tracker.spawn(async move {
            handle(d, &metrics, msg).await;
            drop(permit);
        });
    }
    connectivity.set_consuming(false);
    pullers.wait().await;
    info!("stopped taking new events");
    Ok(())
}

/// Dispatches one message, keeping its claim while that takes, then acks, naks or
/// terminates it according to the outcome.
async fn handle(dispatcher: Arc<Dispatcher>, metrics: &Metrics, msg: jetstream::Message) {
    if let Ok(info) = msg.info()
        && info.delivered > 1
    {
        metrics.redeliveries.inc();
        debug!(delivered = info.delivered, "redelivered message");
    }
    let outcome = {
        let dispatch = dispatcher.dispatch_bytes(&msg.payload);
        tokio::pin!(dispatch);
        loop {
            tokio::select! {
                o = &mut dispatch => break o,
                _ = tokio::time::sleep(ACK_WAIT / 3) => {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        debug!(error = %e, "in-progress ack failed");
                    }
                }
            }
        }
    };
    let (kind, label) = match &outcome {
        Outcome::Retry(_) => (AckKind::Nak(Some(NAK_DELAY)), "nak"),
        Outcome::Rejected(_) => (AckKind::Term, "term"),
        _ => (AckKind::Ack, "ack"),
    };
    match msg.ack_with(kind).await {
        Ok(()) => {
            metrics.acks.get_or_create(&AckLabels { kind: label }).inc();
        }
        // The message comes back after the ack wait; the journal answers it as a duplicate.
        Err(e) => warn!(error = %e, "cannot acknowledge a message; it will be redelivered"),
    }
}

/// Publishes a reply through JetStream: `Nats-Msg-Id` = `id`, waiting for the stream's ack,
/// retried with a capped backoff until it is stored or `give_up` is cancelled.
pub async fn publish(
    js: &jetstream::Context,
    subject: String,
    id: &str,
    payload: bytes::Bytes,
    metrics: &Metrics,
    give_up: &CancellationToken,
) -> Result<(), String> {
    let mut pause = Duration::from_millis(50);
    let mut logged = false;
    loop {
        let attempt = async {
            let ack = js
                .send_publish(
                    subject.clone(),
                    PublishMessage::build()
                        .payload(payload.clone())
                        .message_id(id),
                )
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        let err = tokio::select! {
            _ = give_up.cancelled() => return Err("shutting down before the stream acknowledged it".into()),
            r = attempt => match r {
                Ok(ack) => {
                    if ack.duplicate {
                        metrics.duplicate_replies.inc();
                        debug!(%subject, id, "the stream dropped a copy of a reply sent before");
                    }
                    if logged {
                        info!(%subject, id, "reply published after retrying");
                    }
                    return Ok(());
                }
                Err(e) => e,
            },
        };
        if !logged {
            error!(%subject, id, error = %err, "reply not acknowledged by the stream; retrying");
            logged = true;
        }
        tokio::select! {
            _ = give_up.cancelled() => return Err(err),
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(1000));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_follow_the_group_and_subject() {
        assert_eq!(
            consumer_name("keptn-native", "sh.keptn.event.approval.triggered"),
            "keptn-native-approval-triggered"
        );
        assert_eq!(
            consumer_name("keptn-native", "sh.keptn.event.*.triggered"),
            "keptn-native-any-triggered"
        );
        assert_eq!(consumer_name("a.b c", "x.>"), "a_b_c-x-all");
    }
}
