//! palisaded: the filtering engine, the IKEv2 keying module and the userspace ESP data
//! plane joined into one service on a Linux host (docs/architecture.md).
//!
//! The binary is `src/main.rs`; the modules are a library so that tests can drive them.

pub mod clear_inbound;
pub mod config;
pub mod dataplane;
pub mod events;
pub mod ipsec_callout;
pub mod keying;
pub mod keylog;
pub mod metrics;
pub mod net;
pub mod sa_table;
pub mod scopes;
pub mod service;
pub mod socket_owners;
pub mod stats;
pub mod sys;
