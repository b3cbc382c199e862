//! The integration-test binary: real servers (nats-server, child processes, HTTP on port 0)
//! started by the harness.

mod harness;

mod delivery_local;
mod deploy_helm;
mod deploy_kube;
mod deploy_process;
mod runner;
mod sample_service;
