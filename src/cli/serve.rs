//! `keptn-native serve`.

use std::process::ExitCode;

/// Placeholder until the service core lands.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> ExitCode {
    ExitCode::from(2)
}
