//! What went wrong, said in two lines: what failed, and what to do about it; and the
//! exit code that tells scripts which kind of failure it was.

use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

use palisade_control::ClientError;

/// The request failed: the daemon refused it, or the policy file is wrong.
pub const EXIT_FAILED: u8 = 1;
/// The command line is wrong (clap uses 2 too).
pub const EXIT_USAGE: u8 = 2;
/// The daemon could not be reached or spoke nonsense.
pub const EXIT_UNREACHABLE: u8 = 3;

/// A failure to report.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
    exit: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>, hint: impl Into<String>, exit: u8) -> Failure {
        Failure {
            message: message.into(),
            hint: Some(hint.into()),
            exit,
        }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure::new(message, hint, EXIT_USAGE)
    }

    /// A client error, with what the command was doing and where the socket is.
    pub fn client(e: ClientError, socket: &Path) -> Failure {
        let socket = socket.display();
        match e {
            ClientError::Connect { path, source } => {
                let hint = match source.kind() {
                    ErrorKind::NotFound => "is palisaded running? start it with `systemctl start palisaded` or `palisaded --config ...`; if it listens elsewhere, give --socket or set PALISADE_SOCKET".to_owned(),
                    ErrorKind::ConnectionRefused => "the socket exists but nothing listens on it: palisaded has stopped; start it with `systemctl start palisaded`".to_owned(),
                    ErrorKind::PermissionDenied => "the socket's permissions refuse you: run as root, or as a member of the group that owns the socket".to_owned(),
                    _ => "check that the path is palisaded's control socket (--socket, PALISADE_SOCKET)".to_owned(),
                };
                Failure::new(
                    format!("cannot connect to {path}: {source}"),
                    hint,
                    EXIT_UNREACHABLE,
                )
            }
            ClientError::Server {
                code,
                message,
                hint,
            } => Failure {
                message: format!("{message} ({code})"),
                hint,
                exit: EXIT_FAILED,
            },
            ClientError::Version { server, client } => Failure::new(
                format!(
                    "palisaded at {socket} speaks control protocol version {server}, this palisade version {client}"
                ),
                "use the palisade command of the same release as the running palisaded",
                EXIT_UNREACHABLE,
            ),
            ClientError::Closed => Failure::new(
                format!("palisaded at {socket} closed the connection without answering"),
                "its log (`journalctl -u palisaded`) says why",
                EXIT_UNREACHABLE,
            ),
            other @ (ClientError::Malformed(_) | ClientError::Io(_)) => Failure::new(
                format!("talking to {socket}: {other}"),
                "check that the socket is palisaded's and that palisade and palisaded are of one release",
                EXIT_UNREACHABLE,
            ),
        }
    }

    /// Prints the failure to standard error and returns its exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
        ExitCode::from(self.exit)
    }
}
