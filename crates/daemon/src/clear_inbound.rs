//! Clear-text packets from protected peers, which the firewall queues to the daemon
//! (NFQUEUE): the inbound IPsec callout decides whether policy lets them in clear
//! (an exemption, negotiation discovery) or demands IPsec (dropped and counted).
//!
//! Its own thread: a verdict needs no SA, so it never waits on the data plane.

use std::sync::Arc;

use tracing::{debug, warn};

use crate::ipsec_callout::{Flow, Inbound, IpsecCallout, reason};
use crate::stats::DataStats;
use crate::sys::NfQueue;

/// Answers queued packets until the queue fails.
pub fn run(mut queue: NfQueue, mut callout: IpsecCallout, stats: Arc<DataStats>) {
    loop {
        let packet = match queue.recv() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "NFQUEUE receive failed; clear-text packets from protected peers are now dropped by the kernel");
                return;
            }
        };
        let (accept, counter) = match Flow::inbound(&packet.packet) {
            Some(flow) => match callout.inbound_clear(&flow) {
                Inbound::Permit => (true, &stats.clear_permitted),
                Inbound::Block { reason: why, .. } => {
                    debug!(%flow.remote, reason = why, "clear-text packet dropped");
                    let counter = if why == reason::PROGRAM_PENDING {
                        &stats.owner_pending
                    } else {
                        &stats.clear_blocked
                    };
                    (false, counter)
                }
            },
            None => (false, &stats.clear_blocked),
        };
        DataStats::bump(counter);
        if let Err(e) = queue.verdict(packet.id, accept) {
            warn!(error = %e, "NFQUEUE verdict failed");
        }
    }
}
