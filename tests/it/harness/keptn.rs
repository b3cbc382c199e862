//! Plays the Keptn control plane's side on NATS: publishes triggered events the way the
//! shipyard-controller does and collects every reply by `triggeredid`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

/// A reply as received (the raw JSON CloudEvent).
pub type Reply = Value;

pub struct KeptnPeer {
    pub client: async_nats::Client,
    replies: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
}

impl KeptnPeer {
    /// Connects and subscribes to every Keptn event (`sh.keptn.>`).
    pub async fn connect(url: &str) -> KeptnPeer {
        Self::from_client(async_nats::connect(url).await.expect("connect to NATS")).await
    }

    /// Uses an already connected client (e.g. one with credentials).
    pub async fn from_client(client: async_nats::Client) -> KeptnPeer {
        let mut sub = client.subscribe("sh.keptn.>").await.expect("subscribe");
        client.flush().await.expect("flush");
        let replies: Arc<Mutex<HashMap<String, Vec<Reply>>>> = Arc::default();
        let r = Arc::clone(&replies);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(v) = serde_json::from_slice::<Value>(&msg.payload) else {
                    continue;
                };
                if let Some(tid) = v.get("triggeredid").and_then(Value::as_str) {
                    r.lock()
                        .expect("lock")
                        .entry(tid.to_string())
                        .or_default()
                        .push(v);
                }
            }
        });
        KeptnPeer { client, replies }
    }

    /// A triggered event as the shipyard-controller sends it.
    pub fn triggered(task: &str, data: Value) -> Value {
        json!({
            "specversion": "1.0",
            "id": uuid::Uuid::new_v4().to_string(),
            "source": "shipyard-controller",
            "type": format!("sh.keptn.event.{task}.triggered"),
            "datacontenttype": "application/json",
            "time": "2026-11-22T10:00:00.000Z",
            "shkeptncontext": uuid::Uuid::new_v4().to_string(),
            "gitcommitid": "0123456789abcdef",
            "data": data,
        })
    }

    /// Publishes a raw payload on the subject of its type.
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>) {
        self.client
            .publish(subject.to_string(), payload.into())
            .await
            .expect("publish");
        self.client.flush().await.expect("flush");
    }

    /// Publishes an event on subject = its type; returns its id.
    pub async fn publish(&self, event: &Value) -> String {
        let ty = event["type"].as_str().expect("type").to_string();
        self.publish_raw(&ty, serde_json::to_vec(event).expect("json"))
            .await;
        event["id"].as_str().unwrap_or_default().to_string()
    }

    /// Every reply seen so far for a triggered id.
    pub fn replies(&self, triggered_id: &str) -> Vec<Reply> {
        self.replies
            .lock()
            .expect("lock")
            .get(triggered_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `n` replies for `triggered_id` arrived (at most `limit`), then waits a
    /// little longer to catch any extra reply, and returns them all.
    pub async fn await_replies(&self, triggered_id: &str, n: usize, limit: Duration) -> Vec<Reply> {
        super::eventually(limit, || async { self.replies(triggered_id).len() >= n }).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.replies(triggered_id)
    }

    /// Replies of one kind (`started`, `finished`).
    pub fn of_kind(replies: &[Reply], kind: &str) -> Vec<Reply> {
        replies
            .iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(&format!(".{kind}")))
            })
            .cloned()
            .collect()
    }
}
