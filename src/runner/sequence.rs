//! The sequence state machine of the local runner (pure: no I/O, time passed in).
//!
//! [`Delivery`] plays the shipyard-controller for one Keptn context: it emits the sequence and
//! task `.triggered` events, counts correlating `.started`/`.finished` events (§3.6), stops a
//! sequence on `fail`/`errored`, times out a task that gets no correlating event (§3.5),
//! publishes `<stage>.<sequence>.finished` and queues the sequences its `triggeredOn` rules
//! select (§4.2, §4.4). The I/O loop in [`super::drive`] feeds it events and ticks.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::Utc;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::aggregate::{TaskEvents, stops_sequence};
use super::merge::{CompletedTask, accumulated, merge_finished, next_triggered_data};
use super::shipyard::{Sequence, Shipyard};
use crate::keptn::envelope::Envelope;
use crate::keptn::{EventKind, EventType, SPEC_VERSION};

/// The `source` of events the runner sends.
pub const SOURCE: &str = "keptn-native-runner";

/// What to deliver.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub project: String,
    pub service: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// First stage (default: the shipyard's first stage).
    pub stage: Option<String>,
    /// First sequence (default `delivery`).
    pub sequence: String,
    /// How long a task `.triggered` may wait for any correlating event (Keptn: 10m).
    pub task_timeout: Duration,
}

/// Something the I/O loop must do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Publish `event` on NATS subject = its type.
    Publish(Box<Event>),
    Report(Report),
}

/// What happened, for the timeline and the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    SequenceTriggered {
        stage: String,
        sequence: String,
    },
    TaskTriggered {
        stage: String,
        task: String,
    },
    TaskStarted {
        stage: String,
        task: String,
    },
    WaitingForApproval {
        stage: String,
        task: String,
        keptn_context: String,
        triggered_id: String,
    },
    TaskFinished {
        stage: String,
        task: String,
        result: String,
        status: String,
        message: String,
        duration_ms: u64,
    },
    SequenceFinished {
        stage: String,
        sequence: String,
        result: String,
        status: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    pub name: String,
    pub result: String,
    pub status: String,
    pub message: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceSummary {
    pub stage: String,
    pub sequence: String,
    pub result: String,
    pub status: String,
    pub message: String,
    pub tasks: Vec<TaskSummary>,
}

#[derive(Debug)]
struct TaskExec {
    name: String,
    triggered_id: String,
    triggered_at: Instant,
    events: TaskEvents,
    waiting_reported: bool,
    /// An approval that Keptn's approval rules leave to a person (known from its data).
    manual_approval: bool,
}

#[derive(Debug)]
struct Exec {
    stage: String,
    sequence: Sequence,
    triggered_id: String,
    input: Value,
    next: usize,
    previous: Vec<CompletedTask>,
    task: Option<TaskExec>,
    dispatch_at: Option<Instant>,
    summary: SequenceSummary,
}

#[derive(Debug)]
struct Queued {
    stage: String,
    sequence: String,
    input: Map<String, Value>,
}

/// One delivery (one Keptn context) through the shipyard.
#[derive(Debug)]
pub struct Delivery {
    shipyard: Shipyard,
    spec: RunSpec,
    keptn_context: String,
    queue: VecDeque<Queued>,
    current: Option<Exec>,
    finished: Vec<SequenceSummary>,
}

impl Delivery {
    pub fn new(shipyard: Shipyard, spec: RunSpec, keptn_context: String) -> Self {
        let stage = spec
            .stage
            .clone()
            .or_else(|| shipyard.spec.stages.first().map(|s| s.name.clone()))
            .unwrap_or_default();
        let mut input = Map::new();
        input.insert("project".into(), spec.project.clone().into());
        input.insert("stage".into(), stage.clone().into());
        input.insert("service".into(), spec.service.clone().into());
        if !spec.labels.is_empty() {
            input.insert(
                "labels".into(),
                serde_json::to_value(&spec.labels).unwrap_or_default(),
            );
        }
        input.insert(
            "configurationChange".into(),
            serde_json::json!({"values": {"image": spec.image}}),
        );
        let queue = VecDeque::from([Queued {
            stage,
            sequence: spec.sequence.clone(),
            input,
        }]);
        Delivery {
            shipyard,
            spec,
            keptn_context,
            queue,
            current: None,
            finished: Vec::new(),
        }
    }

    pub fn keptn_context(&self) -> &str {
        &self.keptn_context
    }

    /// Starts the first queued sequence.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.start_next(now, &mut out);
        out
    }

    /// True when no sequence runs and none is queued.
    pub fn is_done(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// Sequences finished so far, in order.
    pub fn summary(&self) -> &[SequenceSummary] {
        &self.finished
    }

    /// The run passed when the last sequence finished with `pass` or `warning`.
    pub fn passed(&self) -> bool {
        self.finished
            .last()
            .is_some_and(|s| (s.result == "pass" || s.result == "warning") && s.status != "errored")
    }

    /// When [`Delivery::on_tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let exec = self.current.as_ref()?;
        if let Some(at) = exec.dispatch_at {
            return Some(at);
        }
        let t = exec.task.as_ref()?;
        (!t.events.any()).then(|| t.triggered_at + self.spec.task_timeout)
    }

    /// Delayed dispatches (`triggeredAfter`) and the "no `.started`" timeout.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(exec) = self.current.as_mut() else {
            return out;
        };
        if exec.dispatch_at.is_some_and(|at| now >= at) {
            exec.dispatch_at = None;
            self.dispatch(now, &mut out);
            return out;
        }
        let timed_out = exec
            .task
            .as_ref()
            .filter(|t| !t.events.any() && now >= t.triggered_at + self.spec.task_timeout)
            .map(|t| t.name.clone());
        if let Some(task) = timed_out {
            let message = format!(
                "sequence timed out while waiting for task {} to receive a correlating .started or .finished event",
                EventType::task(&task, EventKind::Triggered)
            );
            // No follow-up sequences after a timeout (§3.5).
            self.finish_sequence(now, "fail", "errored", &message, None, &mut out);
        }
        out
    }

    /// A Keptn event seen on the bus.
    pub fn on_event(&mut self, env: &Envelope, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if env.keptn_context.as_deref() != Some(self.keptn_context.as_str()) {
            return out;
        }
        let EventType::Task { task, kind } = EventType::parse(&env.ty) else {
            return out;
        };
        let Some(exec) = self.current.as_mut() else {
            return out;
        };
        let Some(t) = exec.task.as_mut() else {
            return out;
        };
        if task != t.name || env.triggered_id.as_deref() != Some(t.triggered_id.as_str()) {
            return out;
        }
        match kind {
            EventKind::Started => {
                t.events.started += 1;
                out.push(Action::Report(Report::TaskStarted {
                    stage: exec.stage.clone(),
                    task: t.name.clone(),
                }));
            }
            EventKind::Finished => t.events.finished.push(env.data.clone()),
            _ => return out,
        }
        if t.events.is_complete() {
            self.complete_task(now, &mut out);
        } else if t.manual_approval
            && t.events.started > t.events.finished.len()
            && !t.waiting_reported
        {
            t.waiting_reported = true;
            out.push(Action::Report(Report::WaitingForApproval {
                stage: exec.stage.clone(),
                task: t.name.clone(),
                keptn_context: self.keptn_context.clone(),
                triggered_id: t.triggered_id.clone(),
            }));
        }
        out
    }

    fn start_next(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(q) = self.queue.pop_front() else {
            return;
        };
        let triggered_id = uuid::Uuid::new_v4().to_string();
        let ty = EventType::sequence(&q.stage, &q.sequence, "triggered");
        out.push(Action::Publish(Box::new(event(
            &ty,
            &triggered_id,
            &self.keptn_context,
            None,
            q.input.clone(),
        ))));
        out.push(Action::Report(Report::SequenceTriggered {
            stage: q.stage.clone(),
            sequence: q.sequence.clone(),
        }));
        let summary = SequenceSummary {
            stage: q.stage.clone(),
            sequence: q.sequence.clone(),
            result: String::new(),
            status: String::new(),
            message: String::new(),
            tasks: Vec::new(),
        };
        let seq = self.shipyard.sequence(&q.stage, &q.sequence);
        let unknown = seq.is_none();
        self.current = Some(Exec {
            stage: q.stage.clone(),
            sequence: seq.unwrap_or(Sequence {
                name: q.sequence.clone(),
                triggered_on: vec![],
                tasks: vec![],
            }),
            triggered_id,
            input: Value::Object(q.input),
            next: 0,
            previous: Vec::new(),
            task: None,
            dispatch_at: None,
            summary,
        });
        if unknown {
            let message = format!(
                "Unable to start sequence {}: no sequence {:?} in stage {:?} of the shipyard",
                ty, q.sequence, q.stage
            );
            self.finish_sequence(now, "fail", "errored", &message, None, out);
        } else {
            self.advance(now, out);
        }
    }

    /// Moves to the next task (or finishes the sequence when there is none).
    fn advance(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(exec) = self.current.as_mut() else {
            return;
        };
        let Some(task) = exec.sequence.tasks.get(exec.next) else {
            let (result, status, message) = exec
                .summary
                .tasks
                .last()
                .map(|t| (t.result.clone(), t.status.clone(), t.message.clone()))
                .unwrap_or_else(|| ("pass".into(), "succeeded".into(), String::new()));
            let last = exec.previous.last().map(|t| t.name.clone());
            self.finish_sequence(now, &result, &status, &message, last, out);
            return;
        };
        let delay = task.delay().unwrap_or_default();
        if delay.is_zero() {
            self.dispatch(now, out);
        } else {
            exec.dispatch_at = Some(now + delay);
        }
    }

    fn dispatch(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(exec) = self.current.as_mut() else {
            return;
        };
        let Some(task) = exec.sequence.tasks.get(exec.next).cloned() else {
            return;
        };
        exec.next += 1;
        let data = next_triggered_data(
            &exec.input,
            [
                ("project", &self.spec.project),
                ("stage", &exec.stage),
                ("service", &self.spec.service),
            ],
            &exec.previous,
            &task.name,
            &task.properties,
        );
        let manual_approval = crate::approval::waits_for_a_person(&task.name, &data);
        let id = uuid::Uuid::new_v4().to_string();
        let ty = EventType::task(&task.name, EventKind::Triggered);
        out.push(Action::Publish(Box::new(event(
            &ty,
            &id,
            &self.keptn_context,
            None,
            data,
        ))));
        out.push(Action::Report(Report::TaskTriggered {
            stage: exec.stage.clone(),
            task: task.name.clone(),
        }));
        exec.task = Some(TaskExec {
            name: task.name,
            triggered_id: id,
            triggered_at: now,
            events: TaskEvents::default(),
            waiting_reported: false,
            manual_approval,
        });
    }

    fn complete_task(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(exec) = self.current.as_mut() else {
            return;
        };
        let Some(t) = exec.task.take() else { return };
        let (result, status) = t.events.outcome();
        let properties = merge_finished(&t.events.finished);
        let message = t
            .events
            .finished
            .iter()
            .filter_map(|d| d.get("message").and_then(Value::as_str))
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let duration_ms =
            u64::try_from(now.duration_since(t.triggered_at).as_millis()).unwrap_or(u64::MAX);
        out.push(Action::Report(Report::TaskFinished {
            stage: exec.stage.clone(),
            task: t.name.clone(),
            result: result.clone(),
            status: status.clone(),
            message: message.clone(),
            duration_ms,
        }));
        exec.summary.tasks.push(TaskSummary {
            name: t.name.clone(),
            result: result.clone(),
            status: status.clone(),
            message: message.clone(),
            duration_ms,
        });
        exec.previous.push(CompletedTask {
            name: t.name.clone(),
            properties,
            result: result.clone(),
            status: status.clone(),
        });
        if stops_sequence(&result, &status) {
            self.finish_sequence(now, &result, &status, &message, Some(t.name), out);
        } else {
            self.advance(now, out);
        }
    }

    /// Sends `<stage>.<sequence>.finished`, queues follow-ups (only when `last_task` is given:
    /// normal completion), and starts the next queued sequence.
    fn finish_sequence(
        &mut self,
        now: Instant,
        result: &str,
        status: &str,
        message: &str,
        last_task: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let Some(mut exec) = self.current.take() else {
            return;
        };
        let mut data = Map::new();
        data.insert("project".into(), self.spec.project.clone().into());
        data.insert("stage".into(), exec.stage.clone().into());
        data.insert("service".into(), self.spec.service.clone().into());
        if let Some(labels) = exec.input.get("labels") {
            data.insert("labels".into(), labels.clone());
        }
        data.insert("status".into(), status.into());
        data.insert("result".into(), result.into());
        data.insert("message".into(), message.into());
        let ty = EventType::sequence(&exec.stage, &exec.sequence.name, "finished");
        let id = uuid::Uuid::new_v4().to_string();
        out.push(Action::Publish(Box::new(event(
            &ty,
            &id,
            &self.keptn_context,
            Some(&exec.triggered_id),
            data,
        ))));
        out.push(Action::Report(Report::SequenceFinished {
            stage: exec.stage.clone(),
            sequence: exec.sequence.name.clone(),
            result: result.into(),
            status: status.into(),
            message: message.into(),
        }));
        exec.summary.result = result.into();
        exec.summary.status = status.into();
        exec.summary.message = message.into();
        if let Some(last) = last_task {
            for (stage, sequence) in
                self.shipyard
                    .triggered_by(&exec.stage, &exec.sequence.name, result, &last)
            {
                let mut input = accumulated(
                    &exec.input,
                    [
                        ("project", &self.spec.project),
                        ("stage", &stage),
                        ("service", &self.spec.service),
                    ],
                    &exec.previous,
                );
                input.insert("stage".into(), stage.clone().into());
                self.queue.push_back(Queued {
                    stage,
                    sequence,
                    input,
                });
            }
        }
        self.finished.push(std::mem::replace(
            &mut exec.summary,
            SequenceSummary {
                stage: String::new(),
                sequence: String::new(),
                result: String::new(),
                status: String::new(),
                message: String::new(),
                tasks: vec![],
            },
        ));
        self.start_next(now, out);
    }
}

/// A Keptn CloudEvent as the shipyard-controller sends it.
fn event(
    ty: &str,
    id: &str,
    keptn_context: &str,
    triggered_id: Option<&str>,
    data: Map<String, Value>,
) -> Event {
    let mut b = EventBuilderV10::new()
        .id(id)
        .source(SOURCE)
        .ty(ty)
        .time(Utc::now())
        .extension("shkeptncontext", keptn_context)
        .extension("shkeptnspecversion", SPEC_VERSION)
        .data("application/json", Value::Object(data));
    if let Some(t) = triggered_id {
        b = b.extension("triggeredid", t);
    }
    // The builder only fails on missing id/source/type, which are always set here.
    b.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keptn::envelope::Envelope;
    use cloudevents::AttributesReader;
    use cloudevents::event::Data;
    use serde_json::json;

    const SHIPYARD: &str = include_str!("../../assets/tutorial/shipyard.yaml");

    fn spec() -> RunSpec {
        RunSpec {
            project: "fulltour".into(),
            service: "helloservice".into(),
            image: "ghcr.io/podtato-head/podtatoserver:v0.1.1".into(),
            labels: BTreeMap::from([("version".into(), "v0.1.1".into())]),
            stage: None,
            sequence: "delivery".into(),
            task_timeout: Duration::from_secs(600),
        }
    }

    /// The tutorial's delivery, context `ctx`.
    fn delivery() -> Delivery {
        Delivery::new(
            Shipyard::parse(SHIPYARD).expect("shipyard"),
            spec(),
            "ctx".into(),
        )
    }

    fn published(actions: &[Action]) -> Vec<Event> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Publish(e) => Some((**e).clone()),
                _ => None,
            })
            .collect()
    }

    fn data(e: &Event) -> Value {
        match e.data() {
            Some(Data::Json(v)) => v.clone(),
            _ => Value::Null,
        }
    }

    fn reply(t: &Event, kind: &str, d: Value) -> Envelope {
        let task = t
            .ty()
            .trim_start_matches("sh.keptn.event.")
            .trim_end_matches(".triggered");
        Envelope {
            id: uuid::Uuid::new_v4().to_string(),
            source: "svc".into(),
            ty: format!("sh.keptn.event.{task}.{kind}"),
            time: None,
            keptn_context: Some("ctx".into()),
            triggered_id: Some(t.id().to_string()),
            git_commit_id: None,
            data: d,
            problem: None,
        }
    }

    fn last_task_triggered(actions: &[Action]) -> Event {
        published(actions)
            .into_iter()
            .rev()
            .find(|e| e.ty().ends_with(".triggered") && e.ty().matches('.').count() == 4)
            .expect("a task triggered")
    }

    /// Answers every task with started + finished(result) and returns all actions.
    fn answer(
        d: &mut Delivery,
        first: Vec<Action>,
        result_for: impl Fn(&str, &str) -> &'static str,
    ) -> Vec<Action> {
        let mut all = first.clone();
        let mut pending = first;
        let now = Instant::now();
        while !d.is_done() {
            let t = last_task_triggered(&pending);
            let td = data(&t);
            let task = t.ty().split('.').nth(3).unwrap_or_default().to_string();
            let stage = td["stage"].as_str().unwrap_or_default().to_string();
            let mut a = d.on_event(&reply(&t, "started", json!({})), now);
            let extra = if task == "je-deployment" {
                json!({"deployment": {"deploymentURIsLocal": [format!("http://{stage}:1")]}})
            } else {
                json!({})
            };
            let mut fd = json!({"result": result_for(&stage, &task), "status": "succeeded", "message": format!("{task} done")});
            fd = super::super::merge::merge(fd, extra);
            a.extend(d.on_event(&reply(&t, "finished", fd), now));
            all.extend(a.clone());
            pending = a;
        }
        all
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_reported_only_for_approvals_a_person_must_decide() {
        let manual = SHIPYARD.replace("pass: \"automatic\"", "pass: \"manual\"");
        for (shipyard, expect_wait) in [(SHIPYARD.to_string(), false), (manual, true)] {
            let mut d = Delivery::new(
                Shipyard::parse(&shipyard).expect("shipyard"),
                spec(),
                "ctx".into(),
            );
            let now = Instant::now();
            let mut pending = d.start(now);
            loop {
                let t = last_task_triggered(&pending);
                let started = d.on_event(&reply(&t, "started", json!({})), now);
                if t.ty() == "sh.keptn.event.approval.triggered" {
                    let waiting = started
                        .iter()
                        .any(|a| matches!(a, Action::Report(Report::WaitingForApproval { .. })));
                    assert_eq!(waiting, expect_wait);
                    break;
                }
                pending = d.on_event(
                    &reply(
                        &t,
                        "finished",
                        json!({"result": "pass", "status": "succeeded"}),
                    ),
                    now,
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn good_build_is_promoted_and_data_flows_between_tasks_and_stages() {
        let mut d = delivery();
        let first = d.start(Instant::now());
        let all = answer(&mut d, first, |_, _| "pass");
        assert!(d.passed());
        let seqs: Vec<(String, String)> = d
            .summary()
            .iter()
            .map(|s| (s.stage.clone(), s.result.clone()))
            .collect();
        assert_eq!(
            seqs,
            [
                ("qa".into(), "pass".into()),
                ("production".into(), "pass".into())
            ]
        );
        let evs = published(&all);
        let types: Vec<&str> = evs.iter().map(|e| e.ty()).collect();
        assert_eq!(
            types,
            [
                "sh.keptn.event.qa.delivery.triggered",
                "sh.keptn.event.je-deployment.triggered",
                "sh.keptn.event.je-test.triggered",
                "sh.keptn.event.evaluation.triggered",
                "sh.keptn.event.qa.delivery.finished",
                "sh.keptn.event.production.delivery.triggered",
                "sh.keptn.event.approval.triggered",
                "sh.keptn.event.je-deployment.triggered",
                "sh.keptn.event.je-test.triggered",
                "sh.keptn.event.evaluation.triggered",
                "sh.keptn.event.production.delivery.finished",
            ]
        );
        let eval = data(&evs[3]);
        assert_eq!(eval["evaluation"]["timeframe"], "2m");
        assert_eq!(eval["configurationChange"]["values"]["image"], spec().image);
        assert_eq!(eval["deployment"]["deploymentURIsLocal"][0], "http://qa:1");
        assert_eq!(eval["message"], "");
        let qa_finished = &evs[4];
        assert_eq!(
            qa_finished.extension("triggeredid").map(|v| v.to_string()),
            Some(evs[0].id().to_string())
        );
        let approval = data(&evs[6]);
        assert_eq!(approval["stage"], "production");
        assert_eq!(
            approval["result"], "pass",
            "qa result reaches the production approval"
        );
        assert_eq!(approval["approval"]["pass"], "automatic");
        let prod_eval = data(&evs[9]);
        assert_eq!(
            prod_eval["deployment"]["deploymentURIsLocal"],
            json!(["http://production:1", "http://qa:1"])
        );
        assert_eq!(d.summary()[1].tasks.len(), 4);
    }

    /// The demo's shipyard: the tutorial's plus a production `rollback` sequence triggered on
    /// `production.delivery.finished` with the selector `result: fail`.
    #[tokio::test(start_paused = true)]
    async fn the_rollback_sequence_runs_only_after_a_failed_production_delivery() {
        let (shipyard, _, _) = crate::demo::variant(false);
        let run = |fail_in: Option<&'static str>| {
            let mut d = Delivery::new(
                Shipyard::parse(&shipyard).expect("demo shipyard"),
                spec(),
                "ctx".into(),
            );
            let first = d.start(Instant::now());
            let all = answer(&mut d, first, move |stage, task| {
                if Some(stage) == fail_in && task == "evaluation" {
                    "fail"
                } else {
                    "pass"
                }
            });
            let seqs: Vec<(String, String, String)> = d
                .summary()
                .iter()
                .map(|s| (s.stage.clone(), s.sequence.clone(), s.result.clone()))
                .collect();
            let rollbacks: Vec<Value> = published(&all)
                .iter()
                .filter(|e| e.ty() == "sh.keptn.event.rollback.triggered")
                .map(data)
                .collect();
            (seqs, rollbacks)
        };
        let s = |stage: &str, seq: &str, result: &str| {
            (stage.to_string(), seq.to_string(), result.to_string())
        };

        let (seqs, rollbacks) = run(None);
        assert_eq!(
            seqs,
            [
                s("qa", "delivery", "pass"),
                s("production", "delivery", "pass")
            ]
        );
        assert!(rollbacks.is_empty(), "never after a passing delivery");

        let (seqs, rollbacks) = run(Some("qa"));
        assert_eq!(seqs, [s("qa", "delivery", "fail")]);
        assert!(
            rollbacks.is_empty(),
            "a failed qa delivery is not production's"
        );

        let (seqs, rollbacks) = run(Some("production"));
        assert_eq!(
            seqs,
            [
                s("qa", "delivery", "pass"),
                s("production", "delivery", "fail"),
                s("production", "rollback", "pass")
            ]
        );
        assert_eq!(rollbacks.len(), 1);
        assert_eq!(rollbacks[0]["stage"], "production");
        assert_eq!(
            rollbacks[0]["configurationChange"]["values"]["image"],
            spec().image,
            "the rollback sees what was delivered"
        );
        assert_eq!(rollbacks[0]["result"], "fail");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_qa_gate_stops_and_is_not_promoted() {
        let mut d = delivery();
        let first = d.start(Instant::now());
        answer(&mut d, first, |_, task| {
            if task == "evaluation" { "fail" } else { "pass" }
        });
        assert_eq!(d.summary().len(), 1);
        assert_eq!(d.summary()[0].result, "fail");
        assert!(!d.passed());
    }

    #[tokio::test(start_paused = true)]
    async fn errored_task_stops_the_sequence_at_once_but_errored_pass_still_promotes() {
        let mut d = delivery();
        let now = Instant::now();
        let a = d.start(now);
        let t = last_task_triggered(&a);
        d.on_event(&reply(&t, "started", json!({})), now);
        let a = d.on_event(
            &reply(
                &t,
                "finished",
                json!({"result": "pass", "status": "errored", "message": "x"}),
            ),
            now,
        );
        assert_eq!(d.summary()[0].tasks.len(), 1);
        assert_eq!(d.summary()[0].status, "errored");
        let types: Vec<String> = published(&a).iter().map(|e| e.ty().to_string()).collect();
        assert!(!types.iter().any(|t| t.contains("je-test")), "{types:?}");
        // Keptn's quirk (§3.6): triggers look at the result only, so errored + pass promotes.
        assert!(
            types.contains(&"sh.keptn.event.production.delivery.triggered".to_string()),
            "{types:?}"
        );
        assert!(!d.is_done());
    }

    #[tokio::test(start_paused = true)]
    async fn finished_without_started_does_not_complete_but_prevents_the_timeout() {
        let mut d = delivery();
        let t0 = Instant::now();
        let a = d.start(t0);
        let t = last_task_triggered(&a);
        let a = d.on_event(
            &reply(
                &t,
                "finished",
                json!({"result": "pass", "status": "succeeded"}),
            ),
            t0,
        );
        assert!(published(&a).is_empty(), "not complete without .started");
        assert_eq!(d.next_deadline(), None);
        assert!(d.on_tick(t0 + Duration::from_secs(3600)).is_empty());
        // The .started arriving late completes it.
        let a = d.on_event(&reply(&t, "started", json!({})), t0);
        assert!(
            published(&a)
                .iter()
                .any(|e| e.ty() == "sh.keptn.event.je-test.triggered")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_without_any_answer_times_out_without_follow_ups() {
        let mut d = delivery();
        let t0 = Instant::now();
        d.start(t0);
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(600)));
        assert!(d.on_tick(t0 + Duration::from_secs(599)).is_empty());
        let a = d.on_tick(t0 + Duration::from_secs(600));
        let evs = published(&a);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].ty(), "sh.keptn.event.qa.delivery.finished");
        let dd = data(&evs[0]);
        assert_eq!(
            (dd["result"].as_str(), dd["status"].as_str()),
            (Some("fail"), Some("errored"))
        );
        assert_eq!(
            dd["message"],
            "sequence timed out while waiting for task sh.keptn.event.je-deployment.triggered to receive a correlating .started or .finished event"
        );
        assert!(d.is_done());
    }

    #[tokio::test(start_paused = true)]
    async fn events_of_other_contexts_or_triggers_are_ignored_and_unknown_sequences_error() {
        let mut d = delivery();
        let now = Instant::now();
        let a = d.start(now);
        let t = last_task_triggered(&a);
        let mut other = reply(&t, "started", json!({}));
        other.keptn_context = Some("other".into());
        assert!(d.on_event(&other, now).is_empty());
        let mut wrong = reply(&t, "started", json!({}));
        wrong.triggered_id = Some("nope".into());
        assert!(d.on_event(&wrong, now).is_empty());

        let mut s = spec();
        s.sequence = "rollback".into();
        let mut d = Delivery::new(
            Shipyard::parse(SHIPYARD).expect("shipyard"),
            s,
            "ctx".into(),
        );
        let a = d.start(now);
        assert!(d.is_done());
        assert!(d.summary()[0].message.contains("Unable to start sequence"));
        assert_eq!(published(&a).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn triggered_after_delays_the_dispatch() {
        let y = "apiVersion: spec.keptn.sh/0.2.4\nkind: Shipyard\nspec:\n  stages:\n    - name: qa\n      sequences:\n        - name: delivery\n          tasks:\n            - name: deployment\n              triggeredAfter: 30s\n";
        let mut d = Delivery::new(Shipyard::parse(y).expect("shipyard"), spec(), "ctx".into());
        let t0 = Instant::now();
        let a = d.start(t0);
        assert_eq!(published(&a).len(), 1, "only the sequence triggered");
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(30)));
        let a = d.on_tick(t0 + Duration::from_secs(30));
        assert_eq!(published(&a)[0].ty(), "sh.keptn.event.deployment.triggered");
    }
}
