//! The data plane's bookkeeping of CHILD_SAs over the SAD: which outbound SA carries a
//! flow (the SPD-like choice WFP's outbound callout makes, by the selectors the
//! callouts check), which pair an SPI belongs to, and the packets held while an SA is
//! negotiated.
//!
//! Sans-IO: the data-plane thread owns one and calls it per packet.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use palisade_esp::transport_nat::OriginalAddresses;
use palisade_esp::{Mode, SaHandle, UdpEncap};
use palisade_ike::{ChildSa, IkeSaId};

use crate::ipsec_callout::{Flow, SaSelectors};

/// One installed CHILD_SA pair.
#[derive(Debug, Clone)]
pub struct ChildEntry {
    /// The IKE SA that negotiated it.
    pub ike_sa: IkeSaId,
    /// Our inbound SPI: the pair's name in the control API and in IKE.
    pub inbound_spi: u32,
    /// The peer's SPI.
    pub outbound_spi: u32,
    /// SAD handles.
    pub inbound: SaHandle,
    /// SAD handle of the outbound SA.
    pub outbound: SaHandle,
    /// The IKE peer (outer remote address).
    pub peer: IpAddr,
    /// The longest packet the kernel sends to the peer whole
    /// (`sys::sockopt::path_mtu`), learned when the pair is installed: longer ESP
    /// packets leave in fragments the data plane cuts.
    pub link_mtu: usize,
    /// Our outer address.
    pub local: IpAddr,
    /// Transport or tunnel.
    pub mode: Mode,
    /// ESP in UDP, when NAT-T is in use.
    pub udp_encap: Option<UdpEncap>,
    /// Transport mode across a NAT: the addresses the peer's checksums cover, for the
    /// fix-up of what arrives ([`ChildSa::nat_original`]).
    pub nat_original: Option<OriginalAddresses>,
    /// What the pair carries: its traffic selectors, mode and peer, as the IPsec
    /// callouts check them.
    pub selectors: SaSelectors,
    /// When it was installed (newer pairs win: a rekey's new pair takes traffic at once,
    /// unless its outbound SA is deferred).
    pub installed: Instant,
    /// Our answer to the peer's rekey whose peer may not hold it yet
    /// ([`ChildSa::outbound_deferred`]): it carries no traffic while an older pair
    /// covers the flow, until the peer's ESP arrives on it ([`SaTable::peer_uses`]).
    pub outbound_deferred: bool,
    /// The peer's authenticated identity, for display.
    pub peer_id: String,
    /// The suite, for display.
    pub suite: String,
    /// The lifetime the SAs were installed with.
    pub lifetime: palisade_esp::lifetime::Lifetime,
}

/// Why a packet could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldError {
    /// The peer's queue is full.
    QueueFull,
}

/// CHILD_SA pairs and held packets.
#[derive(Debug, Default)]
pub struct SaTable {
    children: Vec<ChildEntry>,
    /// Position in `children` by inbound SAD handle: the receive path's lookup.
    by_inbound: HashMap<SaHandle, usize, ahash::RandomState>,
    pending: HashMap<IpAddr, VecDeque<Vec<u8>>>,
    queue_per_peer: usize,
}

impl SaTable {
    /// An empty table holding at most `queue_per_peer` packets per peer.
    pub fn new(queue_per_peer: usize) -> SaTable {
        SaTable {
            children: Vec::new(),
            by_inbound: HashMap::default(),
            pending: HashMap::new(),
            queue_per_peer,
        }
    }

    /// Records a pair the SAD now holds.
    pub fn insert(&mut self, entry: ChildEntry) {
        self.by_inbound.insert(entry.inbound, self.children.len());
        self.children.push(entry);
    }

    /// A new entry for a negotiated CHILD_SA whose two SAs the SAD holds.
    pub fn entry_for(
        child: &ChildSa,
        inbound: SaHandle,
        outbound: SaHandle,
        now: Instant,
    ) -> ChildEntry {
        ChildEntry {
            ike_sa: child.ike_sa,
            inbound_spi: child.inbound_spi,
            outbound_spi: child.outbound_spi,
            inbound,
            outbound,
            peer: child.remote,
            link_mtu: usize::MAX,
            local: child.local,
            mode: child.mode,
            udp_encap: child.udp_encap,
            nat_original: child.nat_original,
            selectors: SaSelectors::from_child_sa(child),
            installed: now,
            outbound_deferred: child.outbound_deferred,
            peer_id: child.peer_id.to_string(),
            lifetime: child.lifetime,
            suite: match child.protocol {
                palisade_ike::ChildProtocol::Esp(suite) => suite.name().to_owned(),
                palisade_ike::ChildProtocol::Ah(integ) => format!("ah-{integ:?}").to_lowercase(),
            },
        }
    }

    /// Removes the pair whose inbound or outbound SPI is `spi`.
    pub fn remove(&mut self, spi: u32) -> Option<ChildEntry> {
        let i = self
            .children
            .iter()
            .position(|c| c.inbound_spi == spi || c.outbound_spi == spi)?;
        let entry = self.children.remove(i);
        self.by_inbound = self
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| (c.inbound, i))
            .collect();
        Some(entry)
    }

    /// The pair an inbound SA belongs to.
    pub fn by_inbound(&self, handle: SaHandle) -> Option<&ChildEntry> {
        self.by_inbound.get(&handle).map(|&i| &self.children[i])
    }

    /// The pair an SA (either direction) belongs to.
    pub fn by_handle(&self, handle: SaHandle) -> Option<&ChildEntry> {
        self.children
            .iter()
            .find(|c| c.inbound == handle || c.outbound == handle)
    }

    /// The pair that carries `flow` to `peer`: the newest whose selectors cover it,
    /// passing over pairs whose outbound SA is deferred while another covers it.
    pub fn select(&self, peer: IpAddr, flow: &Flow) -> Option<&ChildEntry> {
        self.children
            .iter()
            .filter(|c| c.peer == peer && c.selectors.covers(flow))
            .max_by_key(|c| (!c.outbound_deferred, c.installed))
    }

    /// The peer's ESP arrived on the pair of inbound SA `handle`: the peer holds the
    /// pair, so its outbound SA may carry traffic.
    pub fn peer_uses(&mut self, handle: SaHandle) {
        if let Some(&i) = self.by_inbound.get(&handle) {
            self.children[i].outbound_deferred = false;
        }
    }

    /// All pairs.
    pub fn iter(&self) -> impl Iterator<Item = &ChildEntry> {
        self.children.iter()
    }

    /// Holds `packet` for `peer` until an SA arrives. Whether this is the first packet
    /// held for the peer (the caller raises the acquire then).
    pub fn hold(&mut self, peer: IpAddr, packet: &[u8]) -> Result<bool, HoldError> {
        let q = self.pending.entry(peer).or_default();
        if q.len() >= self.queue_per_peer {
            return Err(HoldError::QueueFull);
        }
        q.push_back(packet.to_vec());
        Ok(q.len() == 1)
    }

    /// The packets held for `peer`, oldest first.
    pub fn take_held(&mut self, peer: IpAddr) -> VecDeque<Vec<u8>> {
        self.pending.remove(&peer).unwrap_or_default()
    }

    /// Drops what is held for `peer` (the negotiation failed); how many.
    pub fn drop_held(&mut self, peer: IpAddr) -> usize {
        self.pending.remove(&peer).map_or(0, |q| q.len())
    }

    /// Packets held over all peers.
    pub fn held(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec_callout::ProtectionMode;
    use palisade_filter::policy::TrafficSelector;

    fn ts(a: &str, b: &str, proto: u8, ports: (u16, u16)) -> TrafficSelector {
        TrafficSelector {
            protocol_id: proto,
            port_start: ports.0,
            port_end: ports.1,
            start_address: a.parse().expect("addr"),
            end_address: b.parse().expect("addr"),
        }
    }

    fn flow(remote: &str, protocol: u8, remote_port: u16) -> Flow {
        Flow {
            family: palisade_filter::Family::V4,
            local: "10.1.0.1".parse().expect("addr"),
            remote: remote.parse().expect("addr"),
            protocol,
            local_port: 40000,
            remote_port,
            tcp_syn: false,
            later_fragment: false,
        }
    }

    fn entry(spi: u32, installed: Instant, remote_ts: TrafficSelector) -> ChildEntry {
        let mut sad = palisade_esp::Sad::new();
        let suite = palisade_esp::EspSuite::AES128_GCM16;
        let keys = vec![1u8; suite.keymat_len()];
        let (a, b) = (
            "10.1.0.1".parse().expect("a"),
            "10.2.0.1".parse().expect("b"),
        );
        let cfg = |spi, dir| {
            palisade_esp::SaConfig::new(spi, dir, palisade_esp::SaTransform::Esp(suite), a, b)
        };
        let inbound = sad
            .install(cfg(spi, palisade_esp::Direction::Inbound), &keys, installed)
            .expect("in");
        let outbound = sad
            .install(
                cfg(spi + 1, palisade_esp::Direction::Outbound),
                &keys,
                installed,
            )
            .expect("out");
        ChildEntry {
            ike_sa: IkeSaId(1),
            inbound_spi: spi,
            outbound_spi: spi + 1,
            inbound,
            outbound,
            peer: b,
            link_mtu: 1500,
            local: a,
            mode: Mode::Transport,
            udp_encap: None,
            nat_original: None,
            selectors: SaSelectors {
                local: vec![ts("10.1.0.1", "10.1.0.1", 0, (0, u16::MAX))],
                remote: vec![remote_ts],
                mode: ProtectionMode::Transport,
                encrypting: true,
                peer_names: vec!["b".into()],
            },
            installed,
            outbound_deferred: false,
            peer_id: "b".into(),
            suite: "aes128gcm16".into(),
            lifetime: Default::default(),
        }
    }

    #[test]
    fn newest_covering_pair_is_chosen_and_removal_by_either_spi() {
        let t0 = Instant::now();
        let mut t = SaTable::new(2);
        let any = || ts("10.2.0.1", "10.2.0.1", 0, (0, u16::MAX));
        t.insert(entry(0x1100, t0, any()));
        t.insert(entry(0x1200, t0 + std::time::Duration::from_secs(1), any()));
        t.insert(entry(0x1300, t0, ts("10.2.0.1", "10.2.0.1", 6, (22, 22))));
        let peer = "10.2.0.1".parse().expect("peer");
        let spi = |e: Option<&ChildEntry>| e.map(|c| c.inbound_spi);
        assert_eq!(spi(t.select(peer, &flow("10.2.0.1", 17, 53))), Some(0x1200));
        assert!(t.select(peer, &flow("10.2.0.9", 17, 53)).is_none());
        let ssh = t.by_inbound(t.iter().nth(2).expect("third").inbound);
        assert_eq!(spi(ssh), Some(0x1300));
        assert_eq!(t.remove(0x1201).map(|c| c.inbound_spi), Some(0x1200));
        assert_eq!(spi(t.select(peer, &flow("10.2.0.1", 17, 53))), Some(0x1100));
        // The index follows the removal.
        let ssh = t.by_inbound(t.iter().nth(1).expect("second").inbound);
        assert_eq!(spi(ssh), Some(0x1300));
        assert!(t.remove(0x9999).is_none());
    }

    #[test]
    fn a_deferred_pair_waits_for_the_peers_traffic_or_the_old_pairs_end() {
        let t0 = Instant::now();
        let later = t0 + std::time::Duration::from_secs(1);
        let any = || ts("10.2.0.1", "10.2.0.1", 0, (0, u16::MAX));
        let peer = "10.2.0.1".parse().expect("peer");
        let spi = |t: &SaTable| {
            t.select(peer, &flow("10.2.0.1", 17, 53))
                .map(|c| c.inbound_spi)
        };
        let mut t = SaTable::new(2);
        t.insert(entry(0x1100, t0, any()));
        let mut answered = entry(0x1200, later, any());
        answered.outbound_deferred = true;
        let handle = answered.inbound;
        t.insert(answered);
        assert_eq!(spi(&t), Some(0x1100), "the old pair still carries the flow");
        t.peer_uses(handle);
        assert_eq!(spi(&t), Some(0x1200), "the peer sent on the new pair");

        // Without traffic from the peer, the old pair's deletion hands over.
        let mut t = SaTable::new(2);
        t.insert(entry(0x1100, t0, any()));
        let mut answered = entry(0x1200, later, any());
        answered.outbound_deferred = true;
        t.insert(answered);
        assert_eq!(spi(&t), Some(0x1100));
        t.remove(0x1100);
        assert_eq!(spi(&t), Some(0x1200));
    }

    #[test]
    fn held_packets_are_bounded_per_peer_and_come_back_in_order() {
        let mut t = SaTable::new(2);
        let p = "10.2.0.1".parse().expect("peer");
        assert_eq!(t.hold(p, b"one"), Ok(true));
        assert_eq!(t.hold(p, b"two"), Ok(false));
        assert_eq!(t.hold(p, b"three"), Err(HoldError::QueueFull));
        assert_eq!(t.held(), 2);
        let q: Vec<_> = t.take_held(p).into_iter().collect();
        assert_eq!(q, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(t.held(), 0);
        assert_eq!(t.hold(p, b"x"), Ok(true));
        assert_eq!(t.drop_held(p), 1);
    }
}
