//! The integration tests: one binary, real servers started by the harness on free ports.

mod harness;

mod core;
mod evaluation;
mod process;
