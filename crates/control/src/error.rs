//! Errors: the codes a server answers with, and what can go wrong for a client.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// What kind of failure an error response reports; programs branch on it, people read
/// the message and the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The engine's access control refused the caller.
    AccessDenied,
    /// No such object, SA or layer.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// The request is malformed or names something invalid.
    InvalidRequest,
    /// The request line is longer than the server reads.
    RequestTooLarge,
    /// The policy file does not compile, or the engine refused it (nothing changed).
    PolicyError,
    /// The peers speak different protocol versions.
    UnsupportedVersion,
    /// This server does not do that (a daemon-only request to an engine-only server).
    Unsupported,
    /// The server has as many connections as it serves; try again.
    Busy,
    /// The server failed; its log says why.
    Internal,
    /// A code a newer server sent that this build does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it travels (`access_denied`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::PolicyError => "policy_error",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be connected.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket's path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before answering.
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// The server sent something that is not a protocol message.
    #[error("the daemon sent a malformed message: {0}")]
    Malformed(String),
    /// The server speaks another protocol version.
    #[error("the daemon speaks control protocol version {server}, this client version {client}")]
    Version {
        /// The server's version.
        server: u32,
        /// Ours.
        client: u32,
    },
    /// The server answered with an error.
    #[error("{message}")]
    Server {
        /// The error code.
        code: ErrorCode,
        /// What failed.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
}
