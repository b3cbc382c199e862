//! The quality gate against a real Prometheus.
