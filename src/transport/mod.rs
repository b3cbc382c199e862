//! How events come in and replies go out. Replies go through an [`EventSink`], so that the
//! NATS transport used in-cluster and, later, the Keptn API used by a remote execution plane
//! are interchangeable.

use async_trait::async_trait;

pub mod jetstream;
pub mod nats;

/// A reply could not be handed to the transport.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish {ty}: {reason}")]
pub struct PublishError {
    pub ty: String,
    pub reason: String,
}

/// Where replies are published.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    async fn publish(&self, event: &cloudevents::Event) -> Result<(), PublishError>;

    /// The largest encoded event the transport carries (NATS: the server's `max_payload`).
    fn max_payload(&self) -> usize {
        usize::MAX
    }
}
