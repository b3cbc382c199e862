//! The service's own Prometheus metrics, exposed on `GET /metrics` in text format.
//! Other parts (load tests) register their metrics into the same registry at build time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The event type of a task handled here, or `other`: never a value the sender chose
    /// freely, so the number of series stays bounded.
    pub r#type: String,
    /// handled | ignored | duplicate | rejected | settled
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyLabels {
    /// started | finished
    pub kind: &'static str,
    pub task: String,
    /// pass | warning | fail, empty for started
    pub result: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AckLabels {
    /// ack | nak | term
    pub kind: &'static str,
}

/// Handles to every metric the core updates.
pub struct Metrics {
    pub events: Family<EventLabels, Counter>,
    pub replies: Family<ReplyLabels, Counter>,
    pub publish_errors: Counter,
    pub handler_duration: Family<TaskLabels, Histogram>,
    pub in_flight: Gauge,
    pub pending_approvals: Gauge,
    pub nats_connected: Gauge,
    pub nats_reconnects: Counter,
    pub nats_slow_consumer: Counter,
    pub redeliveries: Counter,
    pub acks: Family<AckLabels, Counter>,
    pub duplicate_replies: Counter,
    pub outbox_backlog: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them (prefix `keptn_native_`).
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            events: Family::default(),
            replies: Family::default(),
            publish_errors: Counter::default(),
            handler_duration: Family::new_with_constructor(|| {
                // 1 ms .. ~30 min
                Histogram::new([
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                ])
            }),
            in_flight: Gauge::default(),
            pending_approvals: Gauge::default(),
            nats_connected: Gauge::default(),
            nats_reconnects: Counter::default(),
            nats_slow_consumer: Counter::default(),
            redeliveries: Counter::default(),
            acks: Family::default(),
            duplicate_replies: Counter::default(),
            outbox_backlog: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("keptn_native");
        r.register(
            "events_received",
            "Events received, by type and outcome",
            m.events.clone(),
        );
        r.register(
            "replies_sent",
            "Replies published, by kind, task, result and status",
            m.replies.clone(),
        );
        r.register(
            "publish_errors",
            "Replies that could not be published",
            m.publish_errors.clone(),
        );
        r.register(
            "handler_duration_seconds",
            "Time from .started to .finished, by task",
            m.handler_duration.clone(),
        );
        r.register(
            "tasks_in_flight",
            "Tasks started and not yet finished",
            m.in_flight.clone(),
        );
        r.register(
            "pending_approvals",
            "Manual approvals waiting for a decision",
            m.pending_approvals.clone(),
        );
        r.register(
            "nats_connected",
            "1 while the NATS connection is up",
            m.nats_connected.clone(),
        );
        r.register(
            "nats_reconnects",
            "NATS (re)connections after the first",
            m.nats_reconnects.clone(),
        );
        r.register(
            "nats_slow_consumer",
            "Times NATS dropped messages because the service fell behind",
            m.nats_slow_consumer.clone(),
        );
        r.register(
            "jetstream_redeliveries",
            "JetStream messages delivered more than once",
            m.redeliveries.clone(),
        );
        r.register(
            "jetstream_acks",
            "JetStream messages answered, by kind (ack, nak = redeliver, term = never again)",
            m.acks.clone(),
        );
        r.register(
            "duplicate_replies_dropped",
            "Replies sent again after a crash that the stream's duplicate window dropped",
            m.duplicate_replies.clone(),
        );
        r.register(
            "outbox_backlog",
            "Replies recorded and not yet acknowledged by NATS",
            m.outbox_backlog.clone(),
        );
        m
    }

    pub fn event(&self, ty: &str, outcome: &'static str) {
        self.events
            .get_or_create(&EventLabels {
                r#type: ty.to_string(),
                outcome,
            })
            .inc();
    }
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
