//! The one place where every incoming event gets its outcome: handled (exactly one `.started`,
//! then exactly one `.finished`), ignored (not ours), duplicate, settled (an approval decided
//! elsewhere) or rejected (cannot be correlated; logged and counted).
//!
//! Handlers only decide and do their task; this module owns the protocol: the journal write
//! before `.started`, turning handler errors and panics into `errored`/`fail`, pending
//! approvals, recovery after a crash, and the drain at shutdown.
//!
//! Replies have stable ids (UUID v5 of the triggered id and the kind), and a `.finished` is
//! recorded in the journal (the outbox) before it is published, so that recovery sends exactly
//! what is missing, with the same id: the JetStream transport's duplicate window drops a copy
//! that did go out before the crash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudevents::AttributesReader;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, info_span, warn};

use crate::fault;
use crate::handlers::{Registry, TaskHandler, TaskOutcome, TaskRequest};
use crate::keptn::envelope::{Envelope, encode};
use crate::keptn::reply::fit;
use crate::keptn::{
    DecodeError, EventKind, EventType, Finished, ReplyBuilder, ResultType, StatusType,
    TriggeredEvent, decode,
};
use crate::metrics::{Metrics, ReplyLabels, TaskLabels};
use crate::store::{JournalState, Store};
use crate::transport::{EventSink, PublishError};

/// How often a reply is tried before it counts as not sent.
const PUBLISH_ATTEMPTS: u32 = 3;

/// The metric label of every event type that is not a task handled here.
pub const OTHER: &str = "other";

/// What happened to one incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `.started` sent; `.finished` follows (or the approval is now pending).
    Handled,
    /// The triggered id was already answered.
    Duplicate,
    /// A pending approval was settled by an `approval.finished` someone else sent.
    Settled,
    /// Not ours: another service owns it, or it is not a task event.
    Ignored(String),
    /// Cannot be answered at all.
    Rejected(String),
    /// Not taken now (the journal could not record it); the transport redelivers it.
    Retry(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Handled => "handled",
            Outcome::Duplicate => "duplicate",
            Outcome::Settled => "settled",
            Outcome::Ignored(_) => "ignored",
            Outcome::Rejected(_) => "rejected",
            Outcome::Retry(_) => "retry",
        }
    }
}

/// Optional filters: an empty list lets everything through.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub projects: Vec<String>,
    pub stages: Vec<String>,
    pub services: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, project: &str, stage: &str, service: &str) -> bool {
        let ok = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        ok(&self.projects, project) && ok(&self.stages, stage) && ok(&self.services, service)
    }
}

/// A manual approval decision could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no pending approval with triggered id {0}")]
    NotPending(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the decision could not be sent, so the approval is still pending: {0}")]
    NotSent(PublishError),
}

/// Routes events to handlers and owns the reply protocol.
pub struct Dispatcher {
    registry: Registry,
    replies: ReplyBuilder,
    sink: Arc<dyn EventSink>,
    store: Store,
    metrics: Arc<Metrics>,
    filter: EventFilter,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Started, not yet finished: whoever removes an entry sends its `.finished`.
    in_flight: Mutex<HashMap<String, TriggeredEvent>>,
    /// The transport redelivers what is not taken (JetStream): without the journal, an event
    /// is left for later instead of being answered without duplicate protection.
    redelivery: AtomicBool,
    /// Whether recovery runs an interrupted task again (else answers it `errored`).
    rerun: AtomicBool,
}

/// How the message of a task run again after an interruption begins.
pub const RERUN_NOTE: &str =
    "keptn-native was interrupted while running this task and ran it again. ";

impl Dispatcher {
    pub fn new(
        registry: Registry,
        replies: ReplyBuilder,
        sink: Arc<dyn EventSink>,
        store: Store,
        metrics: Arc<Metrics>,
        filter: EventFilter,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            registry,
            replies,
            sink,
            store,
            metrics,
            filter,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            in_flight: Mutex::new(HashMap::new()),
            redelivery: AtomicBool::new(false),
            rerun: AtomicBool::new(true),
        })
    }

    /// Whether recovery runs interrupted tasks again (the default) or answers them `errored`.
    pub fn set_rerun_interrupted(&self, yes: bool) {
        self.rerun.store(yes, Ordering::Relaxed);
    }

    /// Tells the dispatcher that the transport redelivers events it does not take.
    pub fn set_redelivery(&self, yes: bool) {
        self.redelivery.store(yes, Ordering::Relaxed);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Decodes and dispatches a structured-mode JSON event (NATS, HTTP structured mode).
    pub async fn dispatch_bytes(self: &Arc<Self>, payload: &[u8]) -> Outcome {
        match decode(payload) {
            Ok(env) => self.dispatch(env).await,
            Err(e) => self.reject(&e, payload.len()),
        }
    }

    /// Counts and logs an event that cannot be correlated (no reply is possible).
    pub fn reject(&self, e: &DecodeError, bytes: usize) -> Outcome {
        warn!(error = %e, bytes, "rejected an event that cannot be correlated");
        self.metrics.event(OTHER, "rejected");
        Outcome::Rejected(e.to_string())
    }

    /// Dispatches a decoded event.
    pub async fn dispatch(self: &Arc<Self>, env: Envelope) -> Outcome {
        let label = self.type_label(&env);
        let outcome = self.route(env).await;
        if let Outcome::Rejected(why) = &outcome {
            warn!(event.type = %label, reason = %why, "rejected an event");
        }
        self.metrics.event(&label, outcome.label());
        outcome
    }

    /// The `type` metric label: the event type for tasks handled here (a set the
    /// configuration bounds), [`OTHER`] for everything else, whatever the sender chose.
    fn type_label(&self, env: &Envelope) -> String {
        match env.event_type() {
            EventType::Task { task, kind } if self.registry.resolve(&task).is_some() => {
                EventType::task(&task, kind)
            }
            _ => OTHER.to_string(),
        }
    }

    async fn route(self: &Arc<Self>, env: Envelope) -> Outcome {
        match env.event_type() {
            EventType::Task {
                task,
                kind: EventKind::Triggered,
            } => {
                let Some(handler) = self.registry.resolve(&task).cloned() else {
                    return Outcome::Ignored(format!("task {task} is not handled here"));
                };
                let problem = env.problem.clone();
                let id = env.id.clone();
                let Some(ev) = env.into_triggered() else {
                    return Outcome::Rejected(format!(
                        "triggered event {id} has no shkeptncontext, so no reply can be correlated"
                    ));
                };
                let scope = ev.scope();
                if !self
                    .filter
                    .matches(&scope.project, &scope.stage, &scope.service)
                {
                    return Outcome::Ignored("filtered out by project/stage/service".into());
                }
                self.start(ev, handler, problem).await
            }
            EventType::Task {
                task,
                kind: EventKind::Finished,
            } if self.registry.settled_by_others(&task) => {
                if env.source == self.replies.source() {
                    // Our own .finished, back from the subscription.
                    return Outcome::Ignored("our own reply".into());
                }
                self.settle_external(env).await
            }
            EventType::Sequence { .. } => {
                Outcome::Ignored("sequence events are not answered".into())
            }
            _ => Outcome::Ignored("not a triggered task event".into()),
        }
    }

    async fn start(
        self: &Arc<Self>,
        ev: TriggeredEvent,
        handler: Arc<dyn TaskHandler>,
        problem: Option<String>,
    ) -> Outcome {
        let span = info_span!("task", event.id = %ev.id, event.type = %ev.ty,
                              keptn.context = %ev.keptn_context, task = %ev.task);
        let this = Arc::clone(self);
        async move {
            match this.store.accept(&ev).await {
                Ok(true) => fault::point("after-accepted"),
                Ok(false) => {
                    info!("duplicate delivery, already answered");
                    return Outcome::Duplicate;
                }
                Err(e) if this.redelivery.load(Ordering::Relaxed) => {
                    error!(error = %e, "journal unavailable; the event will be redelivered");
                    return Outcome::Retry(format!("journal unavailable: {e}"));
                }
                // Without the journal we cannot suppress duplicates or recover, but the
                // control plane still needs its reply.
                Err(e) => error!(error = %e, "journal unavailable; answering without it"),
            }
            if this.in_flight_insert(&ev).is_some() {
                return Outcome::Duplicate;
            }
            let message = match &problem {
                Some(_) => None,
                None => handler.started_message(&ev),
            };
            if this
                .publish(
                    &ev.task,
                    this.replies.started(&ev, message.as_deref()),
                    None,
                )
                .await
                .is_ok()
            {
                fault::point("after-started-published");
                this.store.set_state(&ev.id, JournalState::Started, None);
                if fault::armed("after-started-committed") {
                    let _ = this.store.flush().await;
                    fault::point("after-started-committed");
                }
                info!("started");
            }
            if let Some(p) = problem {
                this.finish(&ev, Finished::errored(p)).await;
                return Outcome::Handled;
            }
            let runner = Arc::clone(&this);
            this.tracker
                .spawn(async move { runner.run(ev, handler, false).await }.in_current_span());
            Outcome::Handled
        }
        .instrument(span)
        .await
    }

    /// Runs the handler and sends its `.finished`. `resumed`: a run after an interruption,
    /// which the message says.
    async fn run(
        self: Arc<Self>,
        ev: TriggeredEvent,
        handler: Arc<dyn TaskHandler>,
        resumed: bool,
    ) {
        let begun = Instant::now();
        let req = TaskRequest {
            event: ev.clone(),
            cancel: self.cancel.child_token(),
        };
        let task = handler.task();
        let outcome = tokio::spawn(async move { handler.handle(req).await }).await;
        let finished = match outcome {
            Ok(Ok(TaskOutcome::Finished(f))) => f,
            Ok(Ok(TaskOutcome::Pending { reason })) => {
                self.in_flight_remove(&ev.id);
                if let Err(e) = self
                    .store
                    .mark(&ev.id, JournalState::Pending, Some(reason.clone()))
                    .await
                {
                    error!(error = %e, "cannot record the pending approval; it will not survive a restart");
                }
                self.metrics.pending_approvals.inc();
                info!(%reason, "waiting for a manual decision");
                return;
            }
            Ok(Err(e)) => {
                warn!(error = %format!("{e:#}"), "task failed");
                Finished::errored(format!("{e:#}"))
            }
            Err(join) if join.is_panic() => {
                let panic = join.into_panic();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                error!(panic = %what, "handler panicked");
                Finished::errored(format!("internal error in the {task} handler: {what}"))
            }
            Err(_) => Finished::errored(format!("the {task} handler was cancelled")),
        };
        self.metrics
            .handler_duration
            .get_or_create(&TaskLabels {
                task: task.to_string(),
            })
            .observe(begun.elapsed().as_secs_f64());
        let mut finished = finished;
        if resumed {
            finished.message = format!("{RERUN_NOTE}{}", finished.message);
        }
        self.finish(&ev, finished).await;
    }

    /// Sends the `.finished` of an in-flight task, unless someone already did.
    async fn finish(&self, ev: &TriggeredEvent, f: Finished) {
        if self.in_flight_remove(&ev.id).is_none() {
            return;
        }
        self.send_finished(ev, &f).await;
        info!(status = f.status.as_str(), result = f.result.as_str(), message = %f.message, "finished");
    }

    /// Records a `.finished` in the outbox, publishes it, and marks it sent. If recording
    /// fails the reply is still published (the control plane needs it more than we need the
    /// record); if publishing fails it stays in the outbox for the next start.
    async fn send_finished(&self, ev: &TriggeredEvent, f: &Finished) {
        // Trimmed first, so that what is recorded is what goes out, then and after a crash.
        let (reply, _) = fit(self.replies.finished(ev, f), self.sink.max_payload());
        if let Err(e) = self
            .store
            .record_reply(
                &ev.id,
                String::from_utf8_lossy(&encode(&reply)).into_owned(),
            )
            .await
        {
            error!(error = %e, "cannot record the .finished before publishing it");
        }
        fault::point("after-finished-recorded");
        if self
            .deliver_recorded(&ev.id, &ev.task, reply, Some(f))
            .await
            .is_err()
        {
            // Not recorded as sent: the next start sends it from the outbox.
            warn!("the .finished could not be sent; it stays in the outbox");
        }
    }

    /// Publishes a recorded `.finished` and marks it sent once NATS has it.
    async fn deliver_recorded(
        &self,
        id: &str,
        task: &str,
        reply: cloudevents::Event,
        f: Option<&Finished>,
    ) -> Result<cloudevents::Event, PublishError> {
        self.metrics.outbox_backlog.inc();
        let sent = self.publish(task, reply, f).await;
        self.metrics.outbox_backlog.dec();
        if sent.is_ok() {
            fault::point("after-finished-published");
            self.store.set_state(id, JournalState::Finished, None);
        }
        sent
    }

    fn in_flight_insert(&self, ev: &TriggeredEvent) -> Option<TriggeredEvent> {
        let prev = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ev.id.clone(), ev.clone());
        if prev.is_none() {
            self.metrics.in_flight.inc();
        }
        prev
    }

    fn in_flight_remove(&self, id: &str) -> Option<TriggeredEvent> {
        let removed = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if removed.is_some() {
            self.metrics.in_flight.dec();
        }
        removed
    }

    /// Publishes a reply, trimmed to what the transport carries, retrying a failed publish
    /// a few times. An error means the reply was not sent.
    async fn publish(
        &self,
        task: &str,
        event: cloudevents::Event,
        f: Option<&Finished>,
    ) -> Result<cloudevents::Event, PublishError> {
        let (event, trimmed) = fit(event, self.sink.max_payload());
        if let Some(note) = trimmed {
            warn!(event.type = %event.ty(), %note, "reply trimmed to fit the transport");
        }
        let labels = ReplyLabels {
            kind: if f.is_some() { "finished" } else { "started" },
            task: task.to_string(),
            result: f.map(|f| f.result.as_str()).unwrap_or(""),
            status: f
                .map(|f| f.status.as_str())
                .unwrap_or(StatusType::Succeeded.as_str()),
        };
        let mut attempt = 0;
        loop {
            match self.sink.publish(&event).await {
                Ok(()) => {
                    self.metrics.replies.get_or_create(&labels).inc();
                    return Ok(event);
                }
                Err(e) => {
                    self.metrics.publish_errors.inc();
                    attempt += 1;
                    if attempt >= PUBLISH_ATTEMPTS {
                        error!(error = %e, event.type = %event.ty(), "reply not published");
                        return Err(e);
                    }
                    warn!(error = %e, attempt, "publishing a reply failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }

    /// An `approval.finished` sent by someone else (Keptn's Bridge) settles our pending approval.
    async fn settle_external(&self, env: Envelope) -> Outcome {
        let Some(tid) = env.triggered_id else {
            return Outcome::Ignored("approval.finished without triggeredid".into());
        };
        match self.store.settle(&tid, None).await {
            Ok(Some(_)) => {
                self.metrics.pending_approvals.dec();
                info!(triggered_id = %tid, source = %env.source, "pending approval settled elsewhere");
                Outcome::Settled
            }
            Ok(None) => Outcome::Ignored("not a pending approval of ours".into()),
            Err(e) => {
                error!(error = %e, "cannot settle approval");
                Outcome::Ignored(format!("store error: {e}"))
            }
        }
    }

    /// Decides a pending manual approval: sends its `approval.finished`.
    pub async fn decide_approval(
        &self,
        triggered_id: &str,
        result: ResultType,
        message: &str,
    ) -> Result<cloudevents::Event, ApprovalError> {
        let not_pending = || ApprovalError::NotPending(triggered_id.to_string());
        let ev = match self.store.get(triggered_id).await? {
            Some((ev, JournalState::Pending)) => ev,
            _ => return Err(not_pending()),
        };
        let f = Finished::new(StatusType::Succeeded, result, message);
        let reply = self.replies.finished(&ev, &f);
        // The decision and its reply are recorded in one step: whoever wins the settle sends it.
        let json = String::from_utf8_lossy(&encode(&reply)).into_owned();
        self.store
            .settle(triggered_id, Some(json))
            .await?
            .ok_or_else(not_pending)?;
        self.metrics.pending_approvals.dec();
        fault::point("after-finished-recorded");
        let reply = match self
            .deliver_recorded(&ev.id, &ev.task, reply, Some(&f))
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                // Not sent, so not decided: the approval stays pending.
                self.store
                    .mark(triggered_id, JournalState::Pending, None)
                    .await?;
                self.metrics.pending_approvals.inc();
                return Err(ApprovalError::NotSent(e));
            }
        };
        info!(
            triggered_id,
            result = result.as_str(),
            "manual approval decided"
        );
        Ok(reply)
    }

    /// Sends what a previous process left unsent, and counts pending approvals:
    /// - a recorded `.finished` (outbox) is sent again as it was;
    /// - an entry whose `.started` may not have gone out gets it (same id: a copy that did
    ///   go out is dropped by the stream);
    /// - an interrupted task is answered `errored`, saying so.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let entries = self.store.open_entries().await?;
        for entry in entries {
            let ev = &entry.event;
            match entry.state {
                JournalState::Pending => {
                    self.metrics.pending_approvals.inc();
                }
                JournalState::Finishing => {
                    match entry
                        .reply
                        .as_deref()
                        .map(serde_json::from_str::<cloudevents::Event>)
                    {
                        Some(Ok(reply)) => {
                            if self
                                .deliver_recorded(&ev.id, &ev.task, reply, None)
                                .await
                                .is_ok()
                            {
                                info!(event.id = %ev.id, task = %ev.task, "sent a recorded .finished again");
                            }
                        }
                        other => {
                            let why = match other {
                                Some(Err(e)) => e.to_string(),
                                _ => "missing".into(),
                            };
                            error!(event.id = %ev.id, error = %why, "recorded .finished unreadable; answering errored");
                            self.send_finished(
                                ev,
                                &Finished::errored(
                                    "keptn-native was interrupted while sending this task's result, \
                                     and the recorded result could not be read back",
                                ),
                            )
                            .await;
                        }
                    }
                }
                JournalState::Accepted | JournalState::Started => {
                    let handler = self.registry.resolve(&ev.task).cloned();
                    if entry.state == JournalState::Accepted {
                        let message = handler.as_ref().and_then(|h| h.started_message(ev));
                        // Sent or not, the .finished below is what the control plane needs.
                        let _ = self
                            .publish(&ev.task, self.replies.started(ev, message.as_deref()), None)
                            .await;
                    }
                    if let Some(handler) = handler.filter(|_| self.rerun.load(Ordering::Relaxed))
                        && self.in_flight_insert(ev).is_none()
                    {
                        warn!(event.id = %ev.id, task = %ev.task, keptn.context = %ev.keptn_context,
                              "running a task again that the previous process did not finish");
                        let runner = Arc::clone(self);
                        let ev = ev.clone();
                        let span = info_span!("task", event.id = %ev.id, event.type = %ev.ty,
                                              keptn.context = %ev.keptn_context, task = %ev.task);
                        self.tracker
                            .spawn(runner.run(ev, handler, true).instrument(span));
                        continue;
                    }
                    let f = Finished::errored(
                        "keptn-native was interrupted while this task ran (the process stopped \
                         before the task finished); the task was not completed",
                    );
                    self.send_finished(ev, &f).await;
                    warn!(event.id = %ev.id, task = %ev.task, keptn.context = %ev.keptn_context,
                          "answered a task interrupted by the previous process");
                }
                JournalState::Finished => {}
            }
        }
        self.store.flush().await?;
        Ok(())
    }

    /// Stops handlers: signals cancellation, waits up to `grace` for running tasks, then
    /// answers whatever is still running with `errored`.
    pub async fn drain(&self, grace: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            let left: Vec<TriggeredEvent> = self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            warn!(
                tasks = left.len(),
                "grace period over; answering running tasks as errored"
            );
            for ev in left {
                self.finish(
                    &ev,
                    Finished::errored(format!(
                        "keptn-native shut down before the {} task finished (grace period {}s)",
                        ev.task,
                        grace.as_secs()
                    )),
                )
                .await;
            }
        }
        if let Err(e) = self.store.flush().await {
            error!(error = %e, "journal flush at shutdown failed");
        }
    }

    /// Whether a triggered id is still running.
    pub fn is_running(&self, triggered_id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(triggered_id)
    }
}
