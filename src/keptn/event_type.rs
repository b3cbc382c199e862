//! Parsing of Keptn event types (`sh.keptn.event.<task>.<kind>`), §1.2.

use std::fmt;

const PREFIX: &str = "sh.keptn.event.";

/// The last segment of a task event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Triggered,
    Started,
    StatusChanged,
    Finished,
    Invalidated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Triggered => "triggered",
            EventKind::Started => "started",
            EventKind::StatusChanged => "status.changed",
            EventKind::Finished => "finished",
            EventKind::Invalidated => "invalidated",
        }
    }
}

/// A parsed Keptn event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType {
    /// `sh.keptn.event.<task>.<kind>`: what an execution-plane service answers.
    Task { task: String, kind: EventKind },
    /// `sh.keptn.event.<stage>.<sequence>.<triggered|finished|...>`: never answered by a task service.
    Sequence {
        stage: String,
        sequence: String,
        kind: String,
    },
    /// Anything else (`sh.keptn.log.error`, foreign types).
    Other(String),
}

impl EventType {
    /// Parses a type string. Never fails: unknown shapes become [`EventType::Other`].
    pub fn parse(ty: &str) -> EventType {
        let Some(rest) = ty.strip_prefix(PREFIX) else {
            return EventType::Other(ty.to_string());
        };
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return EventType::Other(ty.to_string());
        }
        match parts.as_slice() {
            [task, kind] => {
                let kind = match *kind {
                    "triggered" => EventKind::Triggered,
                    "started" => EventKind::Started,
                    "finished" => EventKind::Finished,
                    "invalidated" => EventKind::Invalidated,
                    _ => return EventType::Other(ty.to_string()),
                };
                EventType::Task {
                    task: (*task).to_string(),
                    kind,
                }
            }
            [task, "status", "changed"] => EventType::Task {
                task: (*task).to_string(),
                kind: EventKind::StatusChanged,
            },
            [stage, sequence, kind] => EventType::Sequence {
                stage: (*stage).to_string(),
                sequence: (*sequence).to_string(),
                kind: (*kind).to_string(),
            },
            _ => EventType::Other(ty.to_string()),
        }
    }

    /// The type string of a task event.
    pub fn task(task: &str, kind: EventKind) -> String {
        format!("{PREFIX}{task}.{}", kind.as_str())
    }

    /// The type string of a sequence event.
    pub fn sequence(stage: &str, sequence: &str, kind: &str) -> String {
        format!("{PREFIX}{stage}.{sequence}.{kind}")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Task { task, kind } => f.write_str(&EventType::task(task, *kind)),
            EventType::Sequence {
                stage,
                sequence,
                kind,
            } => f.write_str(&EventType::sequence(stage, sequence, kind)),
            EventType::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_events_have_five_parts() {
        assert_eq!(
            EventType::parse("sh.keptn.event.je-deployment.triggered"),
            EventType::Task {
                task: "je-deployment".into(),
                kind: EventKind::Triggered
            }
        );
        assert_eq!(
            EventType::parse("sh.keptn.event.approval.finished"),
            EventType::Task {
                task: "approval".into(),
                kind: EventKind::Finished
            }
        );
    }

    #[test]
    fn status_changed_is_a_task_event() {
        assert_eq!(
            EventType::parse("sh.keptn.event.test.status.changed"),
            EventType::Task {
                task: "test".into(),
                kind: EventKind::StatusChanged
            }
        );
    }

    #[test]
    fn six_parts_are_sequence_events() {
        assert_eq!(
            EventType::parse("sh.keptn.event.qa.delivery.triggered"),
            EventType::Sequence {
                stage: "qa".into(),
                sequence: "delivery".into(),
                kind: "triggered".into()
            }
        );
    }

    #[test]
    fn everything_else_is_other() {
        for ty in [
            "sh.keptn.log.error",
            "sh.keptn.event.approval",
            "sh.keptn.event.approval.done",
            "sh.keptn.event..triggered",
            "com.example.thing",
            "sh.keptn.event.a.b.c.d",
        ] {
            assert!(matches!(EventType::parse(ty), EventType::Other(_)), "{ty}");
        }
    }

    #[test]
    fn round_trips_to_string() {
        for ty in [
            "sh.keptn.event.test.triggered",
            "sh.keptn.event.test.status.changed",
            "sh.keptn.event.qa.delivery.finished",
        ] {
            assert_eq!(EventType::parse(ty).to_string(), ty);
        }
    }
}
