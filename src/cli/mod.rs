//! The command line: one binary, one subcommand per use. Each subcommand's arguments and
//! entry point live in their own file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod loadtest;
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
    /// Generate HTTP load from a native plan or a locustfile, and judge it by its thresholds.
    Loadtest(Box<loadtest::LoadtestArgs>),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Loadtest(args) => loadtest::run(*args),
    }
}
