//! The keying thread: drives palisade-ike's sans-IO `Endpoint` with datagrams from the
//! IKE sockets, acquires and lifetime expiries from the data plane, and the clock; sends
//! what it transmits; turns its events into SA installs for the data plane and net
//! events for administrators.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use palisade_ike::{Acquire, Endpoint, Event, Expiry, IkeSaId, IkeSaInfo};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::dataplane::{DataCommand, DataHandle};
use crate::events::EventRing;
use crate::keylog::KeyLog;
use crate::sys::IkeSocket;

/// How long IKE output waits for the data plane to confirm SA installs: far above a
/// worker's round under load (well under a millisecond), far below IKE's retransmission.
const FENCE_TIMEOUT: Duration = Duration::from_millis(100);

/// RFC 3948 §2.2: IKE on port 4500 starts with four zero octets.
const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// What the keying thread is asked to do.
pub enum KeyingInput {
    /// An IKE datagram (without the non-ESP marker).
    Datagram {
        /// The IKE message.
        bytes: Vec<u8>,
        /// Where it arrived.
        local: SocketAddr,
        /// Who sent it.
        remote: SocketAddr,
    },
    /// Traffic that policy protects has no SA yet.
    Acquire(Acquire),
    /// A CHILD_SA reached a byte, packet or time limit in the data plane.
    Expiry {
        /// Either SPI of the pair.
        spi: u32,
        /// Soft (rekey) or hard (delete).
        expiry: Expiry,
    },
    /// ESP in UDP went out for this IKE SA (keeps NAT keepalives quiet).
    Activity(IkeSaId),
    /// Authentic ESP (or AH) arrived on a CHILD_SA of this IKE SA: the peer is alive,
    /// so its dead peer detection waits another `ike.dpd_delay`. Once a second per IKE
    /// SA with traffic is plenty; without it the peer just gets a liveness check every
    /// `dpd_delay` while its IKE is idle.
    InboundActivity(IkeSaId),
    /// The IKE SAs, for `sa list`.
    List(Sender<Vec<IkeSaEntry>>),
    /// Delete an IKE SA (and its CHILD_SAs) with the peer.
    DeleteIkeSa(IkeSaId, Sender<bool>),
    /// Delete a CHILD_SA pair, named by our inbound SPI.
    DeleteChildSa(u32, Sender<bool>),
    /// Delete everything with the peers and stop.
    Shutdown,
}

/// An established IKE SA as the keying thread knows it.
#[derive(Debug, Clone)]
pub struct IkeSaEntry {
    /// What IKE_AUTH established.
    pub info: IkeSaInfo,
    /// When.
    pub established: Instant,
}

/// The keying thread's state.
pub struct Keying {
    endpoint: Endpoint,
    /// By local port and family (true: IPv6).
    sockets: BTreeMap<(u16, bool), IkeSocket>,
    natt_port: u16,
    data: DataHandle,
    events: Arc<EventRing>,
    keylog: Option<KeyLog>,
    ike_sas: BTreeMap<IkeSaId, IkeSaEntry>,
    /// CHILD_SA pairs by our inbound SPI, to name the IKE SA a delete goes through.
    children: BTreeMap<u32, IkeSaId>,
    /// IKE SAs rekeyed away, to the one that now holds their CHILD_SAs: the data plane
    /// names a CHILD_SA's IKE SA as it was at install.
    successors: BTreeMap<IkeSaId, IkeSaId>,
    counters: Arc<crate::stats::IkeStats>,
    /// Peers whose CHILD_SAs were sent to the data plane since the last fence.
    installed: Vec<IpAddr>,
}

impl Keying {
    /// A keying module sending on `sockets` (by local port and family, true for IPv6).
    pub fn new(
        endpoint: Endpoint,
        sockets: BTreeMap<(u16, bool), IkeSocket>,
        natt_port: u16,
        data: DataHandle,
        events: Arc<EventRing>,
        keylog: Option<KeyLog>,
        counters: Arc<crate::stats::IkeStats>,
    ) -> Keying {
        Keying {
            endpoint,
            sockets,
            natt_port,
            data,
            events,
            keylog,
            ike_sas: BTreeMap::new(),
            children: BTreeMap::new(),
            successors: BTreeMap::new(),
            counters,
            installed: Vec::new(),
        }
    }

    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self, input: Receiver<KeyingInput>) {
        self.endpoint
            .set_unix_time(Instant::now(), SystemTime::now());
        // poll_timeout walks every IKE SA: once per message, not twice (it was 43 % of a
        // busy responder's time, BENCHMARKS.md).
        let mut next = self.endpoint.poll_timeout();
        loop {
            let wait = next
                .map_or(Duration::from_secs(1), |t| {
                    t.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_secs(1));
            match input.recv_timeout(wait) {
                Ok(KeyingInput::Shutdown) => {
                    self.shutdown();
                    return;
                }
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            next = self.endpoint.poll_timeout();
            if next.is_some_and(|t| t <= now) {
                self.endpoint.handle_timeout(now);
                next = self.endpoint.poll_timeout();
            }
            self.flush();
        }
    }

    fn handle(&mut self, msg: KeyingInput) {
        let now = Instant::now();
        match msg {
            KeyingInput::Datagram {
                bytes,
                local,
                remote,
            } => {
                self.counters.received();
                self.endpoint.handle_datagram(now, local, remote, &bytes);
            }
            KeyingInput::Acquire(acquire) => {
                debug!(peer = %acquire.remote, "acquire");
                self.endpoint.handle_acquire(now, acquire);
            }
            KeyingInput::Expiry { spi, expiry } => {
                self.endpoint.handle_child_sa_expiry(now, spi, expiry);
            }
            KeyingInput::Activity(id) => {
                let id = self.current(id);
                self.endpoint.handle_outbound_activity(now, id);
            }
            KeyingInput::InboundActivity(id) => {
                let id = self.current(id);
                self.endpoint.handle_inbound_activity(now, id);
            }
            KeyingInput::List(reply) => {
                let _ = reply.send(self.ike_sas.values().cloned().collect());
            }
            KeyingInput::DeleteIkeSa(id, reply) => {
                let _ = reply.send(self.endpoint.delete_ike_sa(now, id));
            }
            KeyingInput::DeleteChildSa(spi, reply) => {
                let owner = self
                    .children
                    .get(&spi)
                    .is_some_and(|id| self.endpoint.delete_child_sa(now, *id, spi));
                let _ = reply.send(owner);
            }
            KeyingInput::Shutdown => {}
        }
    }

    /// The IKE SA that holds the CHILD_SAs `id` had, after any IKE SA rekeys.
    fn current(&self, id: IkeSaId) -> IkeSaId {
        self.successors.get(&id).copied().unwrap_or(id)
    }

    /// Sends what the endpoint queued and acts on its events.
    fn flush(&mut self) {
        // Events first: a responder's CHILD_SA reaches the data plane before the
        // IKE_AUTH response that lets the initiator send on it.
        while let Some(event) = self.endpoint.poll_event() {
            self.on_event(event);
        }
        // Reaching the data plane is not enough: a busy worker runs its commands between
        // batches, and the peer's first ESP on the new SAs (after our response, or after
        // our Delete of the pair they replace) must find them installed.
        if !self.installed.is_empty() {
            if !self.data.fence(&self.installed, FENCE_TIMEOUT) {
                debug!("a data-plane worker did not confirm its SA installs in time");
            }
            self.installed.clear();
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            self.send(&t.bytes, t.local, t.remote, t.is_nat_keepalive());
        }
    }

    fn send(&self, bytes: &[u8], local: SocketAddr, remote: SocketAddr, keepalive: bool) {
        let Some(socket) = self.sockets.get(&(local.port(), local.is_ipv6())) else {
            warn!(%local, "no IKE socket on this port and family; datagram not sent");
            return;
        };
        let result = if local.port() == self.natt_port && !keepalive {
            let mut framed = Vec::with_capacity(bytes.len() + 4);
            framed.extend_from_slice(&NON_ESP_MARKER);
            framed.extend_from_slice(bytes);
            socket.send(&framed, local, remote)
        } else {
            socket.send(bytes, local, remote)
        };
        match result {
            Ok(_) => self.counters.sent(),
            Err(e) => warn!(%remote, error = %e, "IKE send failed"),
        }
    }

    fn on_event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::IkeSaEstablished(info) => {
                info!(peer = %info.remote, id = %info.peer_id, "IKE SA established");
                self.events.push(
                    "ike_sa_established",
                    format!("IKE SA with {} ({}) established", info.remote, info.peer_id),
                    json!({
                        "ike_sa": info.id.0, "local": info.local.to_string(),
                        "remote": info.remote.to_string(), "peer_id": info.peer_id.to_string(),
                        "role": format!("{:?}", info.role).to_lowercase(),
                        "transforms": format!("{:?}", info.transforms),
                    }),
                );
                self.export_ike_keys(info.id);
                self.ike_sas.insert(
                    info.id,
                    IkeSaEntry {
                        info,
                        established: now,
                    },
                );
            }
            Event::ChildSaInstalled(child) => {
                info!(
                    peer = %child.remote,
                    inbound_spi = format_args!("{:#010x}", child.inbound_spi),
                    outbound_spi = format_args!("{:#010x}", child.outbound_spi),
                    mode = ?child.mode,
                    "CHILD_SA installed"
                );
                self.events.push(
                    "sa_installed",
                    format!(
                        "CHILD_SA {:#010x}/{:#010x} with {} ({:?}, {:?})",
                        child.inbound_spi,
                        child.outbound_spi,
                        child.remote,
                        child.mode,
                        child.protocol
                    ),
                    json!({
                        "ike_sa": child.ike_sa.0, "inbound_spi": child.inbound_spi,
                        "outbound_spi": child.outbound_spi, "remote": child.remote.to_string(),
                        "mode": format!("{:?}", child.mode).to_lowercase(),
                        "udp_encap": child.udp_encap.is_some(),
                    }),
                );
                if let Some(log) = &mut self.keylog
                    && let Err(e) = log.log_child_sa(&child)
                {
                    warn!(error = %e, "key export failed");
                }
                self.children.insert(child.inbound_spi, child.ike_sa);
                self.installed.push(child.remote);
                self.data.send(DataCommand::Install(child));
            }
            Event::ChildSaDeleted(d) => {
                self.events.push(
                    "sa_deleted",
                    format!("CHILD_SA {:#010x}/{:#010x} deleted", d.inbound_spi, d.outbound_spi),
                    json!({ "ike_sa": d.ike_sa.0, "inbound_spi": d.inbound_spi, "outbound_spi": d.outbound_spi }),
                );
                self.children.remove(&d.inbound_spi);
                self.data.send(DataCommand::Delete { spi: d.inbound_spi });
            }
            Event::IkeSaDeleted(id) => {
                // A rekeyed-away IKE SA is deleted after the rekey and its name lives on
                // in the data plane; only the end of the line takes the names with it.
                self.successors.retain(|_, new| *new != id);
                if let Some(e) = self.ike_sas.remove(&id) {
                    self.events.push(
                        "ike_sa_deleted",
                        format!("IKE SA with {} deleted", e.info.remote),
                        json!({ "ike_sa": id.0, "remote": e.info.remote.to_string() }),
                    );
                }
            }
            Event::Failure(f) => {
                warn!(peer = %f.remote, stage = ?f.stage, reason = ?f.reason, "IKE failure");
                self.events.push(
                    "ike_failure",
                    format!(
                        "IKE with {} failed in {:?}: {:?}",
                        f.remote, f.stage, f.reason
                    ),
                    json!({
                        "local": f.local.to_string(), "remote": f.remote.to_string(),
                        "ike_sa": f.ike_sa.map(|i| i.0),
                        "role": format!("{:?}", f.role).to_lowercase(),
                        "stage": format!("{:?}", f.stage), "point": format!("{:?}", f.point),
                        "reason": format!("{:?}", f.reason),
                        "main_mode_filter": f.policy.main_mode.map(|o| format!("{o:?}")),
                        "quick_mode_filter": f.policy.quick_mode.map(|o| format!("{o:?}")),
                    }),
                );
                // Packets held for this peer will not get an SA from this attempt.
                if f.ike_sa.is_none_or(|id| !self.ike_sas.contains_key(&id)) {
                    self.data.send(DataCommand::PeerFailed(f.remote.ip()));
                }
            }
            Event::ChildSaRekeyed(r) => {
                self.events.push(
                    "sa_rekeyed",
                    format!(
                        "CHILD_SA {:#010x} rekeyed as {:#010x}",
                        r.old_inbound_spi, r.new_inbound_spi
                    ),
                    json!({ "ike_sa": r.ike_sa.0, "old_inbound_spi": r.old_inbound_spi, "new_inbound_spi": r.new_inbound_spi }),
                );
            }
            Event::IkeSaRekeyed { old, new } => {
                self.export_ike_keys(new);
                // Older names point straight at the newest, so lookups take one step.
                for successor in self.successors.values_mut() {
                    if *successor == old {
                        *successor = new;
                    }
                }
                self.successors.insert(old, new);
                if let Some(mut e) = self.ike_sas.remove(&old) {
                    e.info.id = new;
                    self.ike_sas.insert(new, e);
                }
                self.events.push(
                    "ike_sa_rekeyed",
                    format!("IKE SA {} rekeyed as {}", old.0, new.0),
                    json!({ "old": old.0, "new": new.0 }),
                );
            }
        }
    }

    /// Key export (when on): the IKE SA's SK_e/SK_a keys for tshark.
    fn export_ike_keys(&mut self, id: IkeSaId) {
        if let Some(log) = &mut self.keylog
            && let Some(keys) = self.endpoint.ike_sa_keys(id)
            && let Err(e) = log.log_ike_sa(&keys)
        {
            warn!(error = %e, "key export failed");
        }
    }

    /// Deletes every IKE SA with its peer (best effort: one round of sends).
    fn shutdown(&mut self) {
        let now = Instant::now();
        for id in self.endpoint.ike_sas() {
            self.endpoint.delete_ike_sa(now, id);
        }
        self.flush();
    }
}

/// The address the kernel would send from to reach `peer`, outside the TUN (the socket
/// carries the daemon's mark, so the policy-routing rule does not apply to it).
pub fn local_address_for(peer: IpAddr, mark: u32) -> std::io::Result<IpAddr> {
    use socket2::{Domain, Socket, Type};
    let domain = if peer.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, None)?;
    s.set_mark(mark)?;
    s.connect(&SocketAddr::new(peer, 500).into())?;
    s.local_addr()?
        .as_socket()
        .map(|a| a.ip())
        .ok_or_else(|| std::io::Error::other("no local address"))
}
