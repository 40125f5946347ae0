//! A packet's flow as the transport layers see it: addresses, protocol and ports, from
//! our side's point of view (local and remote, not source and destination).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_filter::Family;
use palisade_filter::value::address_type;
use palisade_wire::{ExtChain, IpVersion, Ipv4Header, ip_version, proto};

/// SCTP, DCCP and UDP-Lite put their ports where TCP and UDP do.
const DCCP: u8 = 33;
const SCTP: u8 = 132;
const UDPLITE: u8 = 136;

/// TCP flag bits in the header's fourteenth byte.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const TCP_MIN_HEADER_LEN: usize = 20;

/// One packet's flow. For ICMP and ICMPv6 the type travels in `local_port` and the code
/// in `remote_port`, in both directions, as WFP puts them (`FWPM_CONDITION_ICMP_TYPE` is
/// `IP_LOCAL_PORT`, `FWPM_CONDITION_ICMP_CODE` is `IP_REMOTE_PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// IPv4 or IPv6: which of the layer pair classifies it.
    pub family: Family,
    /// Our address: the source of an outbound packet, the destination of an inbound one.
    pub local: IpAddr,
    /// The other side's address.
    pub remote: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers; 50 when ESP hides it).
    pub protocol: u8,
    /// Our port, or the ICMP type; 0 when the protocol has none or the packet is a later
    /// fragment.
    pub local_port: u16,
    /// Their port, or the ICMP code; 0 likewise.
    pub remote_port: u16,
    /// A TCP SYN without ACK: a connection's first packet, for which the ALE layers
    /// (connect, receive/accept) are consulted as well.
    pub tcp_syn: bool,
    /// A fragment other than the first: its ports are unknown (left out of the
    /// classification), so policy that names ports cannot match it.
    pub later_fragment: bool,
}

impl Flow {
    /// The flow of a packet we send (read from the TUN): local is the source. `None` if
    /// the packet is not a well-formed IPv4 or IPv6 packet, or its first fragment is too
    /// short to hold the transport ports.
    pub fn outbound(packet: &[u8]) -> Option<Flow> {
        let p = Parsed::parse(packet)?;
        Some(p.flow(true))
    }

    /// The flow of a packet we receive (a clear packet from NFQUEUE, or the inner packet
    /// of a decapsulated ESP packet): local is the destination.
    pub fn inbound(packet: &[u8]) -> Option<Flow> {
        let p = Parsed::parse(packet)?;
        Some(p.flow(false))
    }

    /// The NL_ADDRESS_TYPE of the packet's destination (our address inbound, theirs
    /// outbound): IPsec policy is for unicast, and the compiled filters say so with
    /// `IP_LOCAL_ADDRESS_TYPE == unicast`. Subnet-directed broadcasts need the interface's
    /// prefix to recognise, which a sans-IO module does not have: they count as unicast.
    pub fn destination_type(&self, outbound: bool) -> u8 {
        let dst = if outbound { self.remote } else { self.local };
        address_type_of(dst)
    }

    /// Whether the ALE layers (connect, receive/accept) are consulted: a TCP SYN, which
    /// starts a connection, or any packet of a protocol without a handshake (UDP, ICMP
    /// and the rest), which may start one; a later fragment shows no ports to judge.
    /// Inbound, such a packet may instead answer a flow we started: the callouts tell
    /// those apart.
    pub fn connection_start(&self) -> bool {
        if self.protocol == proto::TCP {
            self.tcp_syn
        } else {
            !self.later_fragment
        }
    }

    /// Whether ports were read: ports of a later fragment, or of a protocol without
    /// ports, are not supplied to the classification.
    pub(crate) fn has_ports(&self) -> bool {
        !self.later_fragment && has_ports(self.protocol)
    }

    /// ICMP or ICMPv6: the ports are a type and a code.
    pub(crate) fn is_icmp(&self) -> bool {
        matches!(self.protocol, proto::ICMP | proto::ICMPV6)
    }
}

fn has_ports(protocol: u8) -> bool {
    matches!(
        protocol,
        proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6 | DCCP | SCTP | UDPLITE
    )
}

/// The address type of one address.
pub(crate) fn address_type_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => address_type::UNSPECIFIED,
        IpAddr::V4(a) if a == Ipv4Addr::BROADCAST => address_type::BROADCAST,
        IpAddr::V4(a) if a.is_multicast() => address_type::MULTICAST,
        IpAddr::V6(a) if a == Ipv6Addr::UNSPECIFIED => address_type::UNSPECIFIED,
        IpAddr::V6(a) if a.is_multicast() => address_type::MULTICAST,
        _ => address_type::UNICAST,
    }
}

/// Source and destination, with what the transport header said.
struct Parsed {
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
    icmp: Option<(u8, u8)>,
    tcp_syn: bool,
    later_fragment: bool,
}

impl Parsed {
    fn parse(packet: &[u8]) -> Option<Parsed> {
        let (family, src, dst, protocol, transport, later_fragment) =
            match ip_version(packet).ok()? {
                IpVersion::V4 => {
                    let h = Ipv4Header::parse(packet).ok()?;
                    let later = h.fragment_offset != 0;
                    let payload = packet.get(h.payload_range())?;
                    (
                        Family::V4,
                        IpAddr::from(h.src),
                        IpAddr::from(h.dst),
                        h.protocol,
                        payload,
                        later,
                    )
                }
                IpVersion::V6 => {
                    let chain = ExtChain::walk(packet).ok()?;
                    let h = palisade_wire::Ipv6Header::parse(packet).ok()?;
                    let end = h.payload_range().end;
                    let payload = packet.get(chain.upper_offset..end)?;
                    (
                        Family::V6,
                        IpAddr::from(h.src),
                        IpAddr::from(h.dst),
                        chain.upper_protocol,
                        payload,
                        chain.is_non_first_fragment(),
                    )
                }
            };
        let mut p = Parsed {
            family,
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            icmp: None,
            tcp_syn: false,
            later_fragment,
        };
        if later_fragment {
            return Some(p);
        }
        match protocol {
            proto::ICMP | proto::ICMPV6 => {
                let [t, c] = *transport.first_chunk::<2>()?;
                p.icmp = Some((t, c));
            }
            proto::TCP | proto::UDP | DCCP | SCTP | UDPLITE => {
                let [s0, s1, d0, d1] = *transport.first_chunk::<4>()?;
                p.src_port = u16::from_be_bytes([s0, s1]);
                p.dst_port = u16::from_be_bytes([d0, d1]);
                if protocol == proto::TCP {
                    if transport.len() < TCP_MIN_HEADER_LEN {
                        return None;
                    }
                    let flags = *transport.get(13)?;
                    p.tcp_syn = flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
                }
            }
            _ => {}
        }
        Some(p)
    }

    fn flow(&self, outbound: bool) -> Flow {
        let (local, remote, local_port, remote_port) = if outbound {
            (self.src, self.dst, self.src_port, self.dst_port)
        } else {
            (self.dst, self.src, self.dst_port, self.src_port)
        };
        let (local_port, remote_port) = match self.icmp {
            Some((t, c)) => (u16::from(t), u16::from(c)),
            None => (local_port, remote_port),
        };
        Flow {
            family: self.family,
            local,
            remote,
            protocol: self.protocol,
            local_port,
            remote_port,
            tcp_syn: self.tcp_syn,
            later_fragment: self.later_fragment,
        }
    }
}
