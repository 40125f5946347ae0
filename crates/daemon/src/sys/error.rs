//! Errors of the OS layer. Each names what was attempted (the syscall or the command
//! line) and on what (device, socket, table), because "Operation not permitted" alone
//! does not tell an operator which of a dozen setup steps failed.

use std::io;
use std::process::ExitStatus;

/// A failed step of setting up or tearing down the data plane.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A system call (or a /proc write) failed.
    #[error("{call} on {object}: {error}")]
    Syscall {
        /// The call, e.g. `socket(AF_INET, SOCK_RAW, IPPROTO_ESP)`.
        call: &'static str,
        /// What it was applied to, e.g. `pal0` or `NFQUEUE 20545`.
        object: String,
        /// The OS's answer.
        error: io::Error,
    },
    /// A program (`ip`, `nft`, `iptables`) could not be started at all.
    #[error("cannot run `{program}`: {error} (is it installed? scripts/lib/deps.sh installs it)")]
    Spawn {
        /// The program's name.
        program: String,
        /// Why it did not start.
        error: io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The whole command line, as it could be pasted into a shell.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr (trimmed), which is where iproute2, nft and
        /// iptables say why.
        stderr: String,
    },
    /// A value given to the OS layer that it cannot use.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// Which value, e.g. `TUN device name`.
        what: String,
        /// What is wrong and what would do.
        detail: String,
    },
    /// Output from the kernel or a tool that does not parse as documented.
    #[error("{what}: {detail}")]
    Protocol {
        /// Which exchange, e.g. `NFQUEUE 20545 packet`.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl SysError {
    /// A closure for `map_err` that names the call and its object.
    pub fn syscall(
        call: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(io::Error) -> Self {
        let object = object.into();
        move |error| SysError::Syscall {
            call,
            object,
            error,
        }
    }

    /// The `io::ErrorKind` underneath, for callers that react to, say, `WouldBlock`.
    pub fn kind(&self) -> Option<io::ErrorKind> {
        match self {
            SysError::Syscall { error, .. } | SysError::Spawn { error, .. } => Some(error.kind()),
            SysError::Command { .. } | SysError::Invalid { .. } | SysError::Protocol { .. } => None,
        }
    }
}

/// For the APIs that return `io::Result` (the per-packet ones): keeps the error's kind,
/// so `WouldBlock` and `Interrupted` still match, while the message names the call.
pub(crate) fn io_context(call: &'static str, object: &str) -> impl FnOnce(io::Error) -> io::Error {
    let object = object.to_owned();
    move |error| {
        let kind = error.kind();
        io::Error::new(
            kind,
            SysError::Syscall {
                call,
                object,
                error,
            },
        )
    }
}
