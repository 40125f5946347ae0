//! Prometheus text endpoint (helper OPS writes this).
