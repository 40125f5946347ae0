//! A set of flows shared between the callouts of one daemon (one per thread):
//! - flows that arrived protected under `PERSIST_CONNECTION_SECURITY` (negotiation
//!   discovery: once secure, no clear): the data-plane thread records them as it
//!   decapsulates, the thread that judges clear packets (NFQUEUE) reads them;
//! - flows we started without a handshake to show it (UDP, ICMP): recorded as they leave,
//!   so that their replies are not taken for inbound connections at
//!   ALE_AUTH_RECV_ACCEPT.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Flow;

/// The shared set, and what this thread already put in it (so that a protected packet
/// of a known flow takes no lock).
#[derive(Debug, Default)]
pub(crate) struct FlowSet {
    shared: Arc<Mutex<HashSet<Flow>>>,
    recorded: HashSet<Flow>,
    bound: usize,
}

impl FlowSet {
    pub fn new(bound: usize) -> Self {
        FlowSet {
            shared: Arc::default(),
            recorded: HashSet::new(),
            bound: bound.max(1),
        }
    }

    /// The same set, for another thread.
    pub fn share(&self) -> Self {
        FlowSet {
            shared: Arc::clone(&self.shared),
            recorded: HashSet::new(),
            bound: self.bound,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<Flow>> {
        // A panic elsewhere leaves a set that is still a set.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the flow was recorded.
    pub fn contains(&self, flow: &Flow) -> bool {
        self.lock().contains(&key(flow))
    }

    /// Remembers the flow. Both sets are cleared when full: a forgotten secured flow may
    /// fall back to clear text, as at the start of negotiation discovery; a forgotten
    /// flow of ours has its replies judged as inbound connections.
    pub fn record(&mut self, flow: &Flow) {
        let key = key(flow);
        if self.recorded.contains(&key) {
            return;
        }
        {
            let mut shared = self.lock();
            if shared.len() >= self.bound {
                shared.clear();
            }
            shared.insert(key);
        }
        if self.recorded.len() >= self.bound {
            self.recorded.clear();
        }
        self.recorded.insert(key);
    }
}

/// What varies packet to packet is not part of the flow.
fn key(flow: &Flow) -> Flow {
    Flow {
        tcp_syn: false,
        later_fragment: false,
        ..*flow
    }
}
