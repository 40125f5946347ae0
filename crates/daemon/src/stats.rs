//! Counters the data-plane and keying threads bump and the control thread reads, without
//! a lock or a message: one relaxed atomic each (exactness across counters is not
//! promised, each counter is exact).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Data-plane counters that are not per SA (those live in the SAD).
#[derive(Debug, Default)]
pub struct DataStats {
    /// Packets read from the TUN.
    pub tun_rx: AtomicU64,
    /// Packets written to the TUN.
    pub tun_tx: AtomicU64,
    /// ESP packets received on the raw socket.
    pub esp_rx: AtomicU64,
    /// IPsec packets sent (raw ESP and ESP in UDP).
    pub esp_tx: AtomicU64,
    /// Datagrams received on the NAT-T port (ESP in UDP and IKE).
    pub udp_rx: AtomicU64,
    /// Packets waiting for an SA now.
    pub queued: AtomicU64,
    /// Packets dropped because a peer's hold queue was full.
    pub queue_drops: AtomicU64,
    /// Packets for another worker's peer dropped because that worker was too far behind
    /// to take them.
    pub handoff_drops: AtomicU64,
    /// Packets read from the TUN and passed to the worker that owns their peer's SAs, or
    /// (a fragment) that puts their datagram back together.
    pub handed_off: AtomicU64,
    /// Packets dropped because the negotiation they waited for failed.
    pub acquire_failed_drops: AtomicU64,
    /// Clear-text packets policy let through (outbound re-sent, inbound accepted).
    pub clear_permitted: AtomicU64,
    /// Clear-text packets policy blocked.
    pub clear_blocked: AtomicU64,
    /// Decapsulated packets that arrived on an SA their filter does not allow.
    pub wrong_sa: AtomicU64,
    /// Decapsulated packets policy refused: a BLOCK filter, or ALE_AUTH_RECV_ACCEPT
    /// refusing an inbound connection (remote identity authorization).
    pub policy_blocked: AtomicU64,
    /// Connection starts dropped while the program of their socket was looked for off
    /// the data path (ALE_APP_ID); the connection's next packet is judged with it.
    pub owner_pending: AtomicU64,
    /// Packets from the TUN or the sockets that were not IP at all.
    pub malformed: AtomicU64,
    /// Decapsulated transport-mode packets that came across a NAT and whose transport
    /// checksum could not be fixed up (malformed inside; RFC 3948 §3.1.2).
    pub nat_checksum_drops: AtomicU64,
    /// Sends the kernel refused.
    pub send_errors: AtomicU64,
    /// Datagrams put back together from the fragments the TUN gave.
    pub reassembled: AtomicU64,
    /// Packets that left in fragments: reassembled datagrams longer than the TUN's MTU.
    pub fragmented: AtomicU64,
}

impl DataStats {
    /// Adds one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Reads one.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// IKE datagrams in and out.
#[derive(Debug, Default)]
pub struct IkeStats {
    sent: AtomicU64,
    received: AtomicU64,
}

impl IkeStats {
    /// A datagram went out.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }

    /// A datagram came in.
    pub fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    /// (sent, received).
    pub fn get(&self) -> (u64, u64) {
        (self.sent.load(Relaxed), self.received.load(Relaxed))
    }
}
