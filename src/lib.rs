//! keptn-native: a Keptn v1 execution-plane service that runs the tasks of a delivery
//! sequence (approval, deployment, test, evaluation, rollback) natively.
//!
//! Module map:
//! - [`keptn`]: the event protocol (pure): types, envelope, payloads, replies.
//! - [`dispatch`]: every incoming event's outcome; the `.started`/`.finished` protocol.
//! - [`handlers`]: one file per task, behind the `TaskHandler` trait, registered in `TASKS`.
//! - [`approval`]: the approval-service's rules (pure), for the handler and the runner.
//! - [`store`]: the embedded SQLite journal and pending approvals.
//! - [`transport`]: NATS in, replies out.
//! - [`api`]: the HTTP API (events, probes, metrics, approvals).
//! - [`evaluation`]: the quality gate: SLO model, scoring, timeframe, history, Prometheus SLIs.
//! - [`resources`]: Keptn resources (SLO, SLI, plans, charts) from Keptn or a directory.
//! - [`fault`]: deterministic crash points for tests (`KEPTN_NATIVE_FAULT`).
//! - [`config`], [`telemetry`], [`metrics`], [`app`]: configuration, logs, metrics, wiring.
//! - [`loadtest`]: the native load generator: plans, locust translation, engine, statistics.
//! - [`deploy`]: deployment backends (`process`, `helm`, `kubernetes`) behind one trait.
//! - [`demo`]: the tutorial end to end on one machine.
//! - [`runner`]: the local delivery runner (plays the shipyard-controller on NATS).
//! - [`sample_service`]: the tutorial's podtato-head stand-in.
//! - [`cli`]: the subcommands of the binary.
//! - [`untrusted`]: limits and normalisation applied to outside input before it is parsed.

pub mod api;
pub mod app;
pub mod approval;
pub mod cli;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod dispatch;
pub mod evaluation;
pub mod fault;
pub mod handlers;
pub mod keptn;
pub mod loadtest;
pub mod metrics;
pub mod resources;
pub mod runner;
pub mod sample_service;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod untrusted;
