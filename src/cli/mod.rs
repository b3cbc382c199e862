//! The command line: one binary, one subcommand per use. Each subcommand's arguments and
//! entry point live in their own file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod demo;
pub mod evaluate;
pub mod loadtest;
pub mod run;
pub mod sample_service;
pub mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "keptn-native",
    version,
    about = "Keptn tasks, natively: approval, deployment, test and evaluation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: answer Keptn task events from NATS and HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Evaluate SLOs like Keptn's quality gate, from SLI values or by querying Prometheus.
    Evaluate(Box<evaluate::EvaluateArgs>),
    /// Run a stand-in for the tutorial's podtato-head service (v0.1.2 is the slow build).
    SampleService(sample_service::SampleServiceArgs),
    /// Play the Keptn control plane on NATS: deliver an image through a shipyard's stages.
    Run(Box<run::RunArgs>),
    /// The tutorial end to end on this machine: nats-server, prometheus, the service, two builds.
    Demo(demo::DemoArgs),
    /// Generate HTTP load from a native plan or a locustfile, and judge it by its thresholds.
    Loadtest(Box<loadtest::LoadtestArgs>),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Evaluate(args) => evaluate::run(*args),
        Command::SampleService(args) => sample_service::run(args),
        Command::Run(args) => run::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Loadtest(args) => loadtest::run(*args),
    }
}
