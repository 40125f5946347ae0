//! NAT keepalives (RFC 3948 §2.3, RFC 7296 §2.23).
//!
//! A NAT forgets an idle UDP mapping after some tens of seconds; the host
//! behind it must keep it open or the peer can no longer reach it (its
//! IKE requests and ESP go nowhere). So while an established IKE SA says
//! that *we* are behind a NAT ([`NatDetection::local_behind_nat`]), the
//! endpoint emits a NAT keepalive on the IKE SA's port-4500 path whenever
//! nothing else was sent on that path for
//! [`EndpointConfig::nat_keepalive_interval`]. A peer that is not behind a
//! NAT sends none, even if the other side is.
//!
//! A keepalive is a [`Transmit`] whose bytes are the single octet `0xFF`
//! ([`Transmit::is_nat_keepalive`]). The driver sends it as it is, from
//! port 4500, *without* the non-ESP marker it puts in front of IKE
//! messages. Keepalives received on port 4500 are for the driver to drop
//! (`palisade_wire::classify_udp_4500`); one handed to
//! [`Endpoint::handle_datagram`] anyway is counted
//! ([`Endpoint::nat_keepalives_received`]) and ignored, not taken for a
//! malformed IKE message.
//!
//! "Something sent" is every IKE message the endpoint sends on the path,
//! and the ESP-in-UDP traffic of the IKE SA's CHILD_SAs, which shares that
//! path: the data plane does not go through this crate, so the driver
//! reports it with [`Endpoint::handle_outbound_activity`]. A driver that
//! never does simply gets keepalives at the fixed period, which is always
//! correct, only a few octets more.
//!
//! Time comes from the driver's calls only. A message is taken as sent at
//! the latest `now` the endpoint was given (the entry point that produced
//! it, or an earlier one), never later than it really went out, so a
//! keepalive may come early but never late.
//!
//! [`NatDetection::local_behind_nat`]: crate::nat::NatDetection::local_behind_nat
//! [`EndpointConfig::nat_keepalive_interval`]: crate::EndpointConfig::nat_keepalive_interval

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use palisade_wire::{NAT_KEEPALIVE, NAT_T_PORT};

use crate::endpoint::{Endpoint, Transmit};
use crate::event::IkeSaId;
use crate::ike_sa::State;

/// A path: our address and port, the peer's.
type Path = (SocketAddr, SocketAddr);

/// Bound on the paths remembered between two [`Endpoint::handle_timeout`]
/// calls, so that a flood of messages on port 4500 costs no more memory.
/// A path not remembered falls back to its IKE SA's creation time, which
/// only makes its keepalive earlier.
const MAX_PATHS: usize = 4096;

/// When something was last sent on each port-4500 path, and counts.
#[derive(Debug, Default)]
pub(crate) struct Keepalives {
    /// The latest `now` the driver gave the endpoint.
    clock: Option<Instant>,
    last_sent: HashMap<Path, Instant>,
    sent: u64,
    received: u64,
}

impl Keepalives {
    /// The driver called in at `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
    }

    /// The latest `now` the driver gave, if any.
    pub(crate) fn clock(&self) -> Option<Instant> {
        self.clock
    }

    /// A datagram goes out from `local` to `remote`. Only port 4500 can
    /// carry a NAT-traversed IKE SA (RFC 7296 §2.23), so only it is kept.
    pub(crate) fn note_sent(&mut self, local: SocketAddr, remote: SocketAddr) {
        let Some(at) = self.clock else {
            return;
        };
        if local.port() == NAT_T_PORT {
            self.stamp((local, remote), at);
        }
    }

    fn stamp(&mut self, path: Path, at: Instant) {
        if self.last_sent.len() >= MAX_PATHS && !self.last_sent.contains_key(&path) {
            return;
        }
        let last = self.last_sent.entry(path).or_insert(at);
        *last = (*last).max(at);
    }

    /// A datagram that is a NAT keepalive reached the endpoint: counted
    /// and dropped.
    pub(crate) fn is_received(&mut self, bytes: &[u8]) -> bool {
        let keepalive = bytes == NAT_KEEPALIVE;
        if keepalive {
            self.received = self.received.saturating_add(1);
        }
        keepalive
    }
}

impl Transmit {
    /// Whether this is a NAT keepalive (RFC 3948 §2.3), the single octet
    /// `0xFF`: sent from port 4500 as it is, without the non-ESP marker.
    pub fn is_nat_keepalive(&self) -> bool {
        self.bytes == NAT_KEEPALIVE
    }
}

impl Endpoint {
    /// The paths that need keepalives, each with the creation time of an
    /// IKE SA on it (where nothing sent on it is remembered). A path
    /// shared by several IKE SAs (an IKE SA rekey) appears once per SA.
    fn keepalive_paths(&self) -> impl Iterator<Item = (Path, Instant)> + '_ {
        self.sas
            .values()
            .filter(|sa| sa.state == State::Established && sa.nat.sends_keepalives())
            .map(|sa| ((sa.local, sa.remote), sa.created))
    }

    /// When the next keepalive is due, for [`Endpoint::poll_timeout`].
    pub(crate) fn keepalive_deadline(&self) -> Option<Instant> {
        let interval = self.config.nat_keepalive_interval?;
        self.keepalive_paths()
            .filter_map(|(path, created)| {
                let last = self.keepalive.last_sent.get(&path).copied();
                last.unwrap_or(created).checked_add(interval)
            })
            .min()
    }

    /// Sends the keepalives due at `now`, after everything else
    /// [`Endpoint::handle_timeout`] sent (a retransmission makes a
    /// keepalive unnecessary), and forgets paths no IKE SA uses any more.
    pub(crate) fn keepalive_timeouts(&mut self, now: Instant) {
        let Some(interval) = self.config.nat_keepalive_interval else {
            self.keepalive.last_sent.clear();
            return;
        };
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        for (path, created) in self.keepalive_paths() {
            if !seen.insert(path) {
                continue;
            }
            let last = self.keepalive.last_sent.get(&path).copied();
            if last
                .unwrap_or(created)
                .checked_add(interval)
                .is_some_and(|at| at <= now)
            {
                due.push(path);
            }
        }
        for (local, remote) in due {
            self.transmits.push_back(Transmit {
                local,
                remote,
                bytes: NAT_KEEPALIVE.to_vec(),
            });
            self.keepalive.last_sent.insert((local, remote), now);
            self.keepalive.sent = self.keepalive.sent.saturating_add(1);
        }
        // Keep the paths of IKE SAs still being set up: what IKE_AUTH sent
        // counts once they are established.
        let in_use: HashSet<Path> = self.sas.values().map(|sa| (sa.local, sa.remote)).collect();
        self.keepalive
            .last_sent
            .retain(|path, _| in_use.contains(path));
    }

    /// The data plane sent ESP-in-UDP for a CHILD_SA of `ike_sa` at `now`
    /// (on the IKE SA's port-4500 path): that keeps the NAT mapping open,
    /// so the next keepalive waits a full interval from `now`. Optional
    /// and cheap (one map update): per packet, or once a second per IKE
    /// SA with traffic. False if there is no such IKE SA.
    pub fn handle_outbound_activity(&mut self, now: Instant, ike_sa: IkeSaId) -> bool {
        self.keepalive.tick(now);
        let Some(sa) = self.sas.get(&ike_sa.0) else {
            return false;
        };
        let path = (sa.local, sa.remote);
        self.keepalive.stamp(path, now);
        true
    }

    /// NAT keepalives sent.
    pub fn nat_keepalives_sent(&self) -> u64 {
        self.keepalive.sent
    }

    /// NAT keepalives the driver handed to [`Endpoint::handle_datagram`]
    /// (counted and ignored).
    pub fn nat_keepalives_received(&self) -> u64 {
        self.keepalive.received
    }
}
