//! Reads the replies the way Keptn's shipyard-controller does: from the JetStream stream
//! `keptn` over `sh.keptn.>` (an ordered consumer from the first message), counting what the
//! stream kept per triggered id and kind. A copy the stream's duplicate window dropped is not
//! counted, exactly as the control plane never sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::Value;

#[derive(Default)]
struct Seen {
    /// (triggered id, kind) -> replies kept by the stream
    replies: HashMap<(String, String), Vec<Value>>,
}

pub struct StreamObserver {
    seen: Arc<Mutex<Seen>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Creates Keptn's stream as the shipyard-controller does (name `keptn`, subjects `sh.keptn.>`).
pub async fn keptn_stream(client: &async_nats::Client) -> jetstream::stream::Stream {
    jetstream::new(client.clone())
        .get_or_create_stream(jetstream::stream::Config {
            name: "keptn".into(),
            subjects: vec!["sh.keptn.>".into()],
            ..Default::default()
        })
        .await
        .expect("keptn stream")
}

impl StreamObserver {
    pub async fn start(client: &async_nats::Client) -> StreamObserver {
        let stream = keptn_stream(client).await;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "sh.keptn.event.>".into(),
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Some(msg) = messages.next().await {
                let Ok(msg) = msg else { continue };
                let Ok(v) = serde_json::from_slice::<Value>(&msg.payload) else {
                    continue;
                };
                let (Some(tid), Some(ty)) = (
                    v.get("triggeredid").and_then(Value::as_str),
                    v.get("type").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let kind = ty.rsplit('.').next().unwrap_or_default().to_string();
                s.lock()
                    .expect("lock")
                    .replies
                    .entry((tid.to_string(), kind))
                    .or_default()
                    .push(v);
            }
        });
        StreamObserver { seen, _task: task }
    }

    /// The replies of `kind` the stream kept for `triggered_id`.
    pub fn replies(&self, triggered_id: &str, kind: &str) -> Vec<Value> {
        self.seen
            .lock()
            .expect("lock")
            .replies
            .get(&(triggered_id.to_string(), kind.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn count(&self, triggered_id: &str, kind: &str) -> usize {
        self.replies(triggered_id, kind).len()
    }

    /// How many triggered ids have at least one reply of `kind`.
    pub fn answered(&self, kind: &str) -> usize {
        self.seen
            .lock()
            .expect("lock")
            .replies
            .keys()
            .filter(|(_, k)| k == kind)
            .count()
    }

    /// How many replies the stream kept beyond the first per (triggered id, kind).
    pub fn doubled(&self) -> usize {
        self.seen
            .lock()
            .expect("lock")
            .replies
            .values()
            .map(|v| v.len().saturating_sub(1))
            .sum()
    }
}
