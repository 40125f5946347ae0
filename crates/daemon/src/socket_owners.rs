//! The callouts' [`SocketOwners`] on a Linux host: the kernel's socket diagnostics for a
//! flow's local socket and its user, the user database for the user's groups, /proc for
//! the program (sys/sock_diag.rs). One netlink socket per thread.
//!
//! A worker looks for a program for at most a budget (`dataplane.program_search_ms`, 2 ms
//! by default: about a thousand open files here, BENCHMARKS.md `program/scan`): on a
//! host with many open files a whole scan of /proc takes milliseconds, and the worker's
//! other packets would wait behind it. What it cannot find in time goes to one searching
//! thread of the daemon ([`Searches`]), and the lookup says the program is pending: the
//! callouts drop this connection start undecided and uncached (`owner_pending`), so the
//! connection's next packet, a SYN's retransmission, is judged with the program.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::ipsec_callout::{Flow, LocalOwner, SocketOwners, SocketOwnersFactory};
use crate::sys::SockDiag;
use crate::sys::sock_diag::{ProgramFinder, Search, SocketOwner, groups_of};

/// Users whose groups are remembered; past it the memory starts again.
const GROUPS_BOUND: usize = 1024;
/// Searches waiting for the searching thread; past it a socket is searched for again
/// when its connection's next packet comes.
const QUEUED: usize = 256;
/// Answers kept for the workers; past it the memory starts again.
const ANSWERS_BOUND: usize = 4096;
/// A search handed over this long ago and not answered is handed over again (its
/// thread cannot have been this slow unless something went wrong).
const SEARCH_GIVEN_UP: Duration = Duration::from_secs(10);

/// Where a socket's program search stands, shared by the workers and the searching
/// thread.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Handed over at that time.
    Searching(Instant),
    Done(Option<PathBuf>),
}

/// The searches that took a worker too long, finished on a thread of their own.
#[derive(Debug)]
pub struct Searches {
    answers: Mutex<HashMap<u32, Answer>>,
    queue: Mutex<Option<SyncSender<SocketOwner>>>,
}

impl Searches {
    /// No thread yet: the first search that needs one starts it.
    pub fn new() -> Arc<Searches> {
        Arc::new(Searches {
            answers: Mutex::new(HashMap::new()),
            queue: Mutex::new(None),
        })
    }

    /// What became of the search for `inode`: `None` if none was handed over (or one
    /// was given up on).
    fn answer(&self, inode: u32) -> Option<Answer> {
        let answers = self.answers.lock().ok()?;
        match answers.get(&inode)? {
            Answer::Searching(since) if since.elapsed() >= SEARCH_GIVEN_UP => None,
            a => Some(a.clone()),
        }
    }

    /// Hands `owner`'s search to the searching thread; false if it could not be queued.
    fn hand_over(self: &Arc<Self>, owner: SocketOwner) -> bool {
        // Marked before it is sent: the thread may answer before `try_send` returns,
        // and its answer must not be overwritten.
        self.set(owner.inode, Answer::Searching(Instant::now()));
        let queued = self.send(owner);
        if !queued && let Ok(mut answers) = self.answers.lock() {
            answers.remove(&owner.inode);
        }
        queued
    }

    fn send(self: &Arc<Self>, owner: SocketOwner) -> bool {
        let Ok(mut queue) = self.queue.lock() else {
            return false;
        };
        if queue.is_none() {
            let (tx, rx) = sync_channel(QUEUED);
            let me = Arc::clone(self);
            let started = std::thread::Builder::new()
                .name("palisaded-programs".into())
                .spawn(move || me.run(rx));
            if let Err(e) = started {
                warn!(error = %e, "no thread to look for socket programs");
                return false;
            }
            *queue = Some(tx);
        }
        let Some(tx) = queue.as_ref() else {
            return false;
        };
        match tx.try_send(owner) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Disconnected(_)) => {
                *queue = None;
                false
            }
        }
    }

    fn set(&self, inode: u32, answer: Answer) {
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= ANSWERS_BOUND {
                answers.retain(|_, a| matches!(a, Answer::Searching(_)));
            }
            answers.insert(inode, answer);
        }
    }

    /// The searching thread: whole scans, one socket at a time.
    fn run(&self, rx: Receiver<SocketOwner>) {
        let mut finder = ProgramFinder::default();
        while let Ok(owner) = rx.recv() {
            let started = Instant::now();
            let program = finder.program(owner);
            debug!(inode = owner.inode, ?program, took = ?started.elapsed(), "socket program found off the data path");
            self.set(owner.inode, Answer::Done(program));
        }
    }
}

/// The lookups of one thread.
#[derive(Debug)]
pub struct KernelSocketOwners {
    /// None when the netlink socket could not be opened: every lookup finds nothing.
    diag: Option<SockDiag>,
    groups: HashMap<u32, Vec<u32>>,
    programs: ProgramFinder,
    searches: Arc<Searches>,
    budget: Duration,
    /// Said once per thread: the capabilities to read /proc are missing.
    warned_denied: bool,
}

impl KernelSocketOwners {
    /// Opens this thread's netlink socket; searches that take longer than `budget` go
    /// to `searches`.
    pub fn open(searches: Arc<Searches>, budget: Duration) -> KernelSocketOwners {
        let diag = SockDiag::open()
            .map_err(|e| {
                warn!(error = %e, "socket diagnostics unavailable: ALE_USER_ID and ALE_APP_ID conditions match nothing");
            })
            .ok();
        KernelSocketOwners {
            diag,
            groups: HashMap::new(),
            programs: ProgramFinder::default(),
            searches,
            budget,
            warned_denied: false,
        }
    }

    /// The factory the daemon gives its callouts: one lookup per thread, each searching
    /// for `budget`, one searching thread for them all.
    pub fn factory(budget: Duration) -> SocketOwnersFactory {
        let searches = Searches::new();
        Arc::new(move || Box::new(KernelSocketOwners::open(Arc::clone(&searches), budget)))
    }

    /// The program of `found`'s socket, and whether it is still being looked for.
    fn program(&mut self, found: SocketOwner) -> (Option<PathBuf>, bool) {
        match self.searches.answer(found.inode) {
            Some(Answer::Done(program)) => return (program, false),
            Some(Answer::Searching(_)) => return (None, true),
            None => {}
        }
        match self
            .programs
            .program_within(found, Instant::now() + self.budget)
        {
            Search::Found(p) => (Some(p), false),
            Search::Absent => {
                if self.programs.denied() && !self.warned_denied {
                    self.warned_denied = true;
                    warn!(
                        uid = found.uid,
                        "cannot read other processes' open files (palisaded needs CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE): the programs of their sockets are unknown, so ALE_APP_ID conditions and `programs` do not match them"
                    );
                }
                (None, false)
            }
            Search::Unfinished => {
                let queued = self.searches.hand_over(found);
                debug!(
                    inode = found.inode,
                    queued, "socket program search handed over"
                );
                (None, true)
            }
        }
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
        let (program, pending) = if program {
            self.program(found)
        } else {
            (None, false)
        };
        Some(LocalOwner {
            uid: found.uid,
            gids,
            program: program.map(|p| p.to_string_lossy().into_owned()),
            pending,
        })
    }
}
