//! The local delivery runner: plays the Keptn control plane's part on NATS so that a shipyard
//! can be delivered on one machine (`keptn-native run`).
//!
//! Pure parts: [`shipyard`] (parsing, triggers and selectors), [`merge`] (payload rules),
//! [`aggregate`] (task results), [`sequence`] (the state machine). I/O: [`drive`] runs a
//! [`sequence::Delivery`] against any [`Bus`] (publish) and stream of incoming events, with a
//! [`ReportSink`] for the timeline; [`run_on_nats`] connects it to NATS. The demo (and an
//! in-process service) plug in through [`run_on_nats`]'s URL and sink.

use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

pub mod aggregate;
pub mod merge;
pub mod sequence;
pub mod shipyard;

use crate::keptn::envelope::{decode, encode};
use cloudevents::AttributesReader;
pub use sequence::{Delivery, Report, RunSpec, SequenceSummary};

/// Where events are published.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, subject: String, payload: Vec<u8>) -> anyhow::Result<()>;
}

#[async_trait]
impl Bus for async_nats::Client {
    async fn publish(&self, subject: String, payload: Vec<u8>) -> anyhow::Result<()> {
        async_nats::Client::publish(self, subject, payload.into()).await?;
        Ok(())
    }
}

/// Receives the timeline as it happens.
pub trait ReportSink: Send {
    fn report(&mut self, report: &Report);
}

/// Collects reports (tests, the demo's summary).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Report>);

impl ReportSink for Collect {
    fn report(&mut self, report: &Report) {
        self.0.push(report.clone());
    }
}

/// The live timeline on a terminal: one line per step, with the time since start.
pub struct Timeline<W: Write + Send> {
    out: W,
    started: std::time::Instant,
    nats_hint: String,
}

impl<W: Write + Send> Timeline<W> {
    pub fn new(out: W, nats_url: &str) -> Self {
        Timeline {
            out,
            started: std::time::Instant::now(),
            nats_hint: nats_url.to_string(),
        }
    }
}

impl<W: Write + Send> ReportSink for Timeline<W> {
    fn report(&mut self, r: &Report) {
        let t = self.started.elapsed().as_secs_f64();
        let line = match r {
            Report::SequenceTriggered { stage, sequence } => {
                format!("▶ {stage}.{sequence} triggered")
            }
            Report::TaskTriggered { stage, task } => format!("  {stage} · {task:<14} triggered"),
            Report::TaskStarted { stage, task } => format!("  {stage} · {task:<14} started"),
            Report::WaitingForApproval {
                stage,
                task,
                keptn_context,
                triggered_id,
            } => format!(
                "  {stage} · {task:<14} WAITING for a manual approval. Approve or decline with the service's approval API, \
                 or publish sh.keptn.event.approval.finished on {} with shkeptncontext={keptn_context}, \
                 triggeredid={triggered_id}, data.result=pass|fail, data.status=succeeded",
                self.nats_hint
            ),
            Report::TaskFinished {
                stage,
                task,
                result,
                status,
                message,
                duration_ms,
            } => format!(
                "  {stage} · {task:<14} finished {result}/{status} in {:.1}s{}",
                *duration_ms as f64 / 1000.0,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
            Report::SequenceFinished {
                stage,
                sequence,
                result,
                status,
                message,
            } => format!(
                "■ {stage}.{sequence} {result}/{status}{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        };
        let _ = writeln!(self.out, "[{t:>7.1}s] {line}");
        let _ = self.out.flush();
    }
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub keptn_context: String,
    pub image: String,
    pub passed: bool,
    pub sequences: Vec<SequenceSummary>,
}

/// Why a run could not be carried out (as opposed to a sequence that failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS: {0}")]
    Nats(String),
    #[error("the event stream ended before the delivery finished")]
    StreamEnded,
    #[error("the delivery did not finish within {0:?}")]
    Deadline(Duration),
}

/// Runs `delivery` to the end: publishes its events on `bus`, feeds it `incoming` events and
/// ticks, reports to `sink`. `overall` bounds the whole run (a task that has `.started` never
/// times out in Keptn, so this is the only bound on a hung task).
pub async fn drive<S>(
    delivery: &mut Delivery,
    bus: &dyn Bus,
    incoming: &mut S,
    sink: &mut dyn ReportSink,
    overall: Duration,
) -> Result<(), RunError>
where
    S: Stream<Item = Vec<u8>> + Unpin + Send,
{
    let deadline = Instant::now() + overall;
    let first = delivery.start(Instant::now());
    execute(first, bus, sink).await?;
    while !delivery.is_done() {
        let wake = delivery
            .next_deadline()
            .map_or(deadline, |d| d.min(deadline));
        tokio::select! {
            msg = incoming.next() => {
                let Some(bytes) = msg else { return Err(RunError::StreamEnded) };
                let Ok(env) = decode(&bytes) else { continue };
                let actions = delivery.on_event(&env, Instant::now());
                execute(actions, bus, sink).await?;
            }
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    return Err(RunError::Deadline(overall));
                }
                let actions = delivery.on_tick(Instant::now());
                execute(actions, bus, sink).await?;
            }
        }
    }
    Ok(())
}

async fn execute(
    actions: Vec<sequence::Action>,
    bus: &dyn Bus,
    sink: &mut dyn ReportSink,
) -> Result<(), RunError> {
    for a in actions {
        match a {
            sequence::Action::Publish(ev) => {
                let subject = ev.ty().to_string();
                bus.publish(subject, encode(&ev))
                    .await
                    .map_err(|e| RunError::Nats(e.to_string()))?;
            }
            sequence::Action::Report(r) => sink.report(&r),
        }
    }
    Ok(())
}

/// Connects to NATS at `url`, subscribes to `sh.keptn.event.>` and drives the delivery.
pub async fn run_on_nats(
    url: &str,
    mut delivery: Delivery,
    image: &str,
    sink: &mut dyn ReportSink,
    overall: Duration,
) -> Result<RunReport, RunError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| RunError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let sub = client
        .subscribe("sh.keptn.event.>")
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    // The subscription must be registered before the first .triggered goes out.
    client
        .flush()
        .await
        .map_err(|e| RunError::Nats(e.to_string()))?;
    let mut incoming = sub.map(|m| m.payload.to_vec());
    let result = drive(&mut delivery, &client, &mut incoming, sink, overall).await;
    let _ = client.flush().await;
    result?;
    Ok(RunReport {
        keptn_context: delivery.keptn_context().to_string(),
        image: image.to_string(),
        passed: delivery.passed(),
        sequences: delivery.summary().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keptn::envelope::decode;
    use futures::channel::mpsc;
    use serde_json::{Value, json};
    use shipyard::Shipyard;
    use std::collections::BTreeMap;

    /// Publishes into a channel, as NATS would deliver to the execution plane.
    struct ChanBus(mpsc::UnboundedSender<Vec<u8>>);

    #[async_trait]
    impl Bus for ChanBus {
        async fn publish(&self, _subject: String, payload: Vec<u8>) -> anyhow::Result<()> {
            self.0.unbounded_send(payload)?;
            Ok(())
        }
    }

    const APPROVAL: &str = "apiVersion: spec.keptn.sh/0.2.4\nkind: Shipyard\nspec:\n  stages:\n    - name: production\n      sequences:\n        - name: delivery\n          tasks:\n            - name: approval\n              properties: {pass: manual, warning: manual}\n            - name: deployment\n";

    fn spec(timeout: Duration) -> RunSpec {
        RunSpec {
            project: "p".into(),
            service: "s".into(),
            image: "img:v1".into(),
            labels: BTreeMap::new(),
            stage: None,
            sequence: "delivery".into(),
            task_timeout: timeout,
        }
    }

    fn reply(trig: &crate::keptn::envelope::Envelope, kind: &str, data: Value) -> Vec<u8> {
        let task = trig.ty.split('.').nth(3).unwrap_or_default();
        serde_json::to_vec(&json!({
            "specversion": "1.0", "id": uuid::Uuid::new_v4().to_string(), "source": "t",
            "type": format!("sh.keptn.event.{task}.{kind}"), "time": "2024-01-01T00:00:00Z",
            "shkeptncontext": trig.keptn_context, "triggeredid": trig.id, "data": data,
        }))
        .unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn waits_at_a_manual_approval_without_timing_out_then_continues() {
        let (out_tx, mut out_rx) = mpsc::unbounded::<Vec<u8>>();
        let (in_tx, mut in_rx) = mpsc::unbounded::<Vec<u8>>();
        let mut delivery = Delivery::new(
            Shipyard::parse(APPROVAL).expect("shipyard"),
            spec(Duration::from_secs(600)),
            "ctx".into(),
        );
        let run = tokio::spawn(async move {
            let mut sink = Collect::default();
            let r = drive(
                &mut delivery,
                &ChanBus(out_tx),
                &mut in_rx,
                &mut sink,
                Duration::from_secs(36_000),
            )
            .await;
            (r, delivery, sink)
        });
        // The execution plane: approval gets only a .started; deployment is answered fully.
        let mut approval = None;
        while let Some(bytes) = out_rx.next().await {
            let env = decode(&bytes).expect("decode");
            if env.ty == "sh.keptn.event.approval.triggered" {
                assert_eq!(env.data["approval"]["pass"], "manual");
                in_tx
                    .unbounded_send(reply(&env, "started", json!({"status": "succeeded"})))
                    .expect("send");
                approval = Some(env);
                break;
            }
        }
        let approval = approval.expect("approval triggered");
        // Two hours pass: once a .started was seen there is no timeout.
        tokio::time::sleep(Duration::from_secs(7200)).await;
        assert!(!run.is_finished(), "still waiting for the approval");
        in_tx
            .unbounded_send(reply(
                &approval,
                "finished",
                json!({"result": "pass", "status": "succeeded"}),
            ))
            .expect("approve");
        while let Some(bytes) = out_rx.next().await {
            let env = decode(&bytes).expect("decode");
            if env.ty == "sh.keptn.event.deployment.triggered" {
                assert_eq!(env.data["result"], "pass");
                in_tx
                    .unbounded_send(reply(&env, "started", json!({})))
                    .expect("send");
                in_tx
                    .unbounded_send(reply(
                        &env,
                        "finished",
                        json!({"result": "pass", "status": "succeeded"}),
                    ))
                    .expect("send");
                break;
            }
        }
        let (r, delivery, sink) = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("bounded")
            .expect("join");
        r.expect("drive");
        assert!(delivery.passed());
        assert!(
            sink.0
                .iter()
                .any(|r| matches!(r, Report::WaitingForApproval { .. }))
        );
        let approval_task = &delivery.summary()[0].tasks[0];
        assert!(approval_task.duration_ms >= 7_200_000, "{approval_task:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_task_times_out_after_the_configured_wait() {
        let (out_tx, _out_rx) = mpsc::unbounded::<Vec<u8>>();
        let (_in_tx, mut in_rx) = mpsc::unbounded::<Vec<u8>>();
        let mut delivery = Delivery::new(
            Shipyard::parse(APPROVAL).expect("shipyard"),
            spec(Duration::from_secs(600)),
            "ctx".into(),
        );
        let start = Instant::now();
        let mut sink = Collect::default();
        drive(
            &mut delivery,
            &ChanBus(out_tx),
            &mut in_rx,
            &mut sink,
            Duration::from_secs(36_000),
        )
        .await
        .expect("drive");
        assert_eq!(start.elapsed(), Duration::from_secs(600));
        assert!(!delivery.passed());
        let s = &delivery.summary()[0];
        assert_eq!((s.result.as_str(), s.status.as_str()), ("fail", "errored"));
        assert!(
            s.message.contains("sh.keptn.event.approval.triggered"),
            "{}",
            s.message
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_overall_bound_ends_a_hung_run() {
        let (out_tx, mut out_rx) = mpsc::unbounded::<Vec<u8>>();
        let (in_tx, mut in_rx) = mpsc::unbounded::<Vec<u8>>();
        let mut delivery = Delivery::new(
            Shipyard::parse(APPROVAL).expect("shipyard"),
            spec(Duration::from_secs(600)),
            "ctx".into(),
        );
        let answer = tokio::spawn(async move {
            while let Some(bytes) = out_rx.next().await {
                let env = decode(&bytes).expect("decode");
                if env.ty.ends_with("approval.triggered") {
                    let _ = in_tx.unbounded_send(reply(&env, "started", json!({})));
                }
            }
            in_tx
        });
        let r = drive(
            &mut delivery,
            &ChanBus(out_tx),
            &mut in_rx,
            &mut Collect::default(),
            Duration::from_secs(3600),
        )
        .await;
        assert!(matches!(r, Err(RunError::Deadline(_))), "{r:?}");
        answer.abort();
    }
}
