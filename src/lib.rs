//! keptn-native: a Keptn v1 execution-plane service that runs the tasks of a delivery
//! sequence (approval, deployment, test, evaluation) natively.
//!
//! Module map:
//! - [`keptn`]: the event protocol (pure): types, envelope, payloads, replies.
//! - [`handlers`]: one file per task (`approval`, `deployment`), the [`handlers::TaskHandler`] seam.
//! - [`deploy`]: deployment backends (`process`, `helm`, `kubernetes`) behind one trait.
//! - [`resources`]: Keptn resources from the resource-service or a local directory.
//! - [`runner`]: the local delivery runner (plays the shipyard-controller on NATS).
//! - [`sample_service`]: the tutorial's podtato-head stand-in.

pub mod cli;
pub mod deploy;
pub mod handlers;
pub mod keptn;
pub mod resources;
pub mod runner;
pub mod sample_service;
