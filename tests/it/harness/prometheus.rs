//! A real `prometheus` server.
