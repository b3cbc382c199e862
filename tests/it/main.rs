//! The integration tests: one binary, real servers (nats-server, prometheus, child processes,
//! HTTP on port 0) started by the harness on free ports.

mod harness;

mod core;
mod delivery_local;
mod demo;
mod deploy_helm;
mod deploy_kube;
mod deploy_process;
mod evaluation;
mod exactly_once;
mod hostile;
mod keptn_corpus;
mod loadtest;
mod pod_sandbox;
mod process;
mod runner;
mod sample_service;
