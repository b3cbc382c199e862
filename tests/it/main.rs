//! The one integration-test binary: each module tests one area against real servers started
//! by the harness.

mod harness;
mod loadtest;
