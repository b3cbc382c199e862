//! Deterministic fault points for crash tests: with `KEPTN_NATIVE_FAULT=<step>` the process
//! exits at once (no drain, no flush, exit code 86) the first time it reaches that step of the
//! reply protocol, as if it had been killed there. Unset, every point is a no-op.
//!
//! Steps, in protocol order: `after-accepted` (journal entry committed, message not yet
//! acked), `after-started-published`, `after-started-committed`, `after-finished-recorded`
//! (the `.finished` is in the outbox, not yet published), `after-finished-published`.

use std::sync::OnceLock;

/// The variable that arms a fault point.
pub const FAULT_ENV: &str = "KEPTN_NATIVE_FAULT";

/// The exit code of a process stopped by a fault point.
pub const FAULT_EXIT_CODE: i32 = 86;

fn armed_step() -> Option<&'static str> {
    static STEP: OnceLock<Option<String>> = OnceLock::new();
    STEP.get_or_init(|| std::env::var(FAULT_ENV).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// Whether the fault point `step` is armed (to make its preconditions durable first).
pub fn armed(step: &str) -> bool {
    armed_step() == Some(step)
}

/// Exits the process at once if `step` is the armed fault point.
pub fn point(step: &str) {
    if armed(step) {
        tracing::error!(step, "fault point reached: exiting without cleanup");
        std::process::exit(FAULT_EXIT_CODE);
    }
}
