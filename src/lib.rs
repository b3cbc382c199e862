//! keptn-native: a Keptn v1 execution-plane service that runs the tasks of a delivery
//! sequence (approval, deployment, test, evaluation) natively.
//!
//! Module map:
//! - [`keptn`]: the event protocol (pure): types, envelope, payloads, replies.

pub mod cli;
pub mod handlers;
pub mod keptn;
pub mod loadtest;
pub mod resources;
