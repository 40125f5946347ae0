//! The callouts' [`SocketOwners`] on a Linux host: the kernel's socket diagnostics for a
//! flow's local socket and its user, the user database for the user's groups, /proc for
//! the program (sys/sock_diag.rs). One netlink socket per thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{debug, warn};

use crate::ipsec_callout::{Flow, LocalOwner, SocketOwners, SocketOwnersFactory};
use crate::sys::SockDiag;
use crate::sys::sock_diag::{ProgramFinder, groups_of};

/// Users whose groups are remembered; past it the memory starts again.
const GROUPS_BOUND: usize = 1024;

/// The lookups of one thread.
#[derive(Debug)]
pub struct KernelSocketOwners {
    /// None when the netlink socket could not be opened: every lookup finds nothing.
    diag: Option<SockDiag>,
    groups: HashMap<u32, Vec<u32>>,
    programs: ProgramFinder,
    /// Said once per thread: the capabilities to read /proc are missing.
    warned_denied: bool,
}

impl KernelSocketOwners {
    /// Opens this thread's netlink socket.
    pub fn open() -> KernelSocketOwners {
        let diag = SockDiag::open()
            .map_err(|e| {
                warn!(error = %e, "socket diagnostics unavailable: ALE_USER_ID and ALE_APP_ID conditions match nothing");
            })
            .ok();
        KernelSocketOwners {
            diag,
            groups: HashMap::new(),
            programs: ProgramFinder::default(),
            warned_denied: false,
        }
    }

    /// The factory the daemon gives its callouts.
    pub fn factory() -> SocketOwnersFactory {
        Arc::new(|| Box::new(KernelSocketOwners::open()))
    }
}

impl SocketOwners for KernelSocketOwners {
    fn lookup(&mut self, flow: &Flow, program: bool) -> Option<LocalOwner> {
        let diag = self.diag.as_mut()?;
        let local = SocketAddr::new(flow.local, flow.local_port);
        let remote = SocketAddr::new(flow.remote, flow.remote_port);
        let found = match diag.owner(flow.protocol, local, remote) {
            Ok(found) => found?,
            Err(e) => {
                debug!(error = %e, %local, %remote, "socket owner lookup failed");
                return None;
            }
        };
        if self.groups.len() >= GROUPS_BOUND {
            self.groups.clear();
        }
        let gids = self
            .groups
            .entry(found.uid)
            .or_insert_with(|| groups_of(found.uid))
            .clone();
        let program = if program {
            let p = self.programs.program(found);
            if p.is_none() && self.programs.denied() && !self.warned_denied {
                self.warned_denied = true;
                warn!(
                    uid = found.uid,
                    "cannot read other processes' open files (palisaded needs CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE): the programs of their sockets are unknown, so ALE_APP_ID conditions and `programs` do not match them"
                );
            }
            p.map(|p| p.to_string_lossy().into_owned())
        } else {
            None
        };
        Some(LocalOwner {
            uid: found.uid,
            gids,
            program,
        })
    }
}
