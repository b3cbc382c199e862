use std::process::ExitCode;

fn main() -> ExitCode {
    keptn_native::cli::main()
}
