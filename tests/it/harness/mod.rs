//! Test harness: real servers on free loopback ports, stopped on drop.

pub mod http_target;
