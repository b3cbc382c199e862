//! The Keptn v1 event protocol as pure code: event types, the CloudEvent envelope,
//! task payloads and the builders for `.started` / `.finished` replies.
//!
//! Nothing here does I/O. See `../shared/reference/keptn-protocol.md` §1–§2.

pub mod envelope;
pub mod event_type;
pub mod golike;
pub mod payload;
pub mod reply;
pub mod time;

pub use envelope::{Correlation, DecodeError, TriggeredEvent, decode};
pub use event_type::{EventKind, EventType};
pub use payload::{EventData, ResultType, StatusType};
pub use reply::{Finished, ReplyBuilder};

/// The Keptn spec version we stamp on every event we send (`gu:config/config.yaml`).
pub const SPEC_VERSION: &str = "0.2.4";
