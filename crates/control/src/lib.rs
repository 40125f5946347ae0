//! palisade-control: the palisaded control API. Versioned requests and responses
//! ([`protocol`]) as newline-delimited JSON over a Unix socket, the server that checks
//! each peer's credentials and hands requests to a [`Handler`], the blocking client the
//! `palisade` command uses, and [`EngineService`], which answers the filtering engine's
//! requests as the caller so the engine's access control decides.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod credentials;
pub mod engine_service;
pub mod error;
pub mod field_values;
mod framing;
pub mod handler;
pub mod protocol;
pub mod server;

pub use client::{Client, EventStream};
pub use credentials::peer_caller;
pub use engine_service::EngineService;
pub use error::{ClientError, ErrorCode};
pub use handler::Handler;
pub use protocol::{
    ChildSaView, Export, Hello, IkeSaView, MAX_REQUEST_LINE, NatOriginal, NetEvent, PROTOCOL_NAME,
    PROTOCOL_VERSION, PolicyChange, PolicyChanges, Request, Response, SaCounters, Stats, Status,
};
pub use server::{ServerOptions, serve, serve_with};

/// Where palisaded listens by default.
pub const DEFAULT_SOCKET: &str = "/run/palisade/control.sock";
