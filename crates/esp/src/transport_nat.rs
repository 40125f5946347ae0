//! Transport-mode ESP across a NAT: the TCP, UDP and ICMPv6 checksums after
//! decapsulation (RFC 3948 §3.1.2).
//!
//! In transport mode the sender's IP header is the only one, and a NAT between the
//! peers rewrites its addresses; the checksum of the TCP or UDP header inside ESP still
//! covers the pseudo-header with the addresses the sender used (its own private
//! address, our address as it knows it), so once decapsulated the segment carries a
//! checksum that no longer matches its IP header and the receiving stack drops it.
//! RFC 3948 §3.1.2 lets the receiver either skip the check or fix the checksum up with
//! the original addresses (NAT-OA in IKEv1; in IKEv2 the addresses the peer proposed
//! in its traffic selectors, RFC 7296 §2.23.1). We fix it up incrementally
//! (RFC 1624, eqn. 3): constant work per packet, and a checksum that was wrong before
//! the NAT stays wrong after, so the stack still catches corruption.
//!
//! The transport header is the one behind the IPv4 header, or behind IPv6's extension
//! headers (Hop-by-Hop, Routing, Fragment, Destination Options, as the wire crate walks
//! them): its pseudo-header has the same addresses wherever it sits, since a packet at
//! its final destination has no routing segments left (RFC 8200 §8.1). Later fragments
//! (their header is in the first one) and protocols whose checksum does not cover the
//! addresses (ICMPv4) are left alone ([`ChecksumFixup::Unchanged`]). The packet an ICMP
//! error quotes carries the addresses the peer saw too; [`restore_icmp_quote`] gives it
//! ours (`icmp_quote.rs`). [`restore`] does both with the headers read once.

use std::net::IpAddr;

mod icmp_quote;

pub use icmp_quote::restore_icmp_quote;

use palisade_wire::{ExtChain, WireError, proto};

/// The addresses the peer used in the pseudo-header of the packets it sends us on a
/// transport-mode SA, when a NAT changed them on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginalAddresses {
    /// The peer's own address as it knows it (behind a NAT: its private address).
    pub source: IpAddr,
    /// Our address as the peer knows it (when we are behind a NAT: our public one).
    pub destination: IpAddr,
}

/// What [`restore_checksum`] did to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumFixup {
    /// The transport checksum now covers the packet's own addresses.
    Adjusted,
    /// Nothing to fix: a protocol whose checksum leaves the addresses out, a UDP
    /// datagram without checksum, or a later fragment.
    Unchanged,
}

/// Why a decapsulated transport-mode packet could not be fixed up: it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportNatError {
    /// Not a whole IPv4 or IPv6 header.
    #[error("not an IP packet")]
    NotIp,
    /// The packet and the original addresses are of different IP families.
    #[error("the packet's IP family differs from the original addresses'")]
    FamilyMismatch,
    /// The transport header ends before its checksum field.
    #[error("transport header too short for its checksum")]
    Truncated,
    /// The IPv6 header or its extension headers could not be walked to the transport
    /// header.
    #[error("IPv6 header chain: {0}")]
    Ipv6Chain(WireError),
}

/// Rewrites the checksum of the transport header in `packet` (an IPv4 or IPv6 packet,
/// as transport-mode decapsulation leaves it) from one over `original`'s addresses to
/// one over the addresses in `packet`'s IP header. Constant work; never panics.
pub fn restore_checksum(
    packet: &mut [u8],
    original: &OriginalAddresses,
) -> Result<ChecksumFixup, TransportNatError> {
    let at = Located::read(packet)?;
    at.check_family(original)?;
    fix_checksum(packet, &at, original)
}

/// [`restore_checksum`] and then [`restore_icmp_quote`], with the packet's headers read
/// once: what a packet decapsulated from a transport-mode SA across a NAT needs.
pub fn restore(
    packet: &mut [u8],
    original: &OriginalAddresses,
) -> Result<ChecksumFixup, TransportNatError> {
    let at = Located::read(packet)?;
    at.check_family(original)?;
    let checksum = fix_checksum(packet, &at, original)?;
    let quote = icmp_quote::fix(packet, &at, original)?;
    Ok(
        if checksum == ChecksumFixup::Adjusted || quote == ChecksumFixup::Adjusted {
            ChecksumFixup::Adjusted
        } else {
            ChecksumFixup::Unchanged
        },
    )
}

/// Where a packet's transport header is, as both fix-ups need it.
struct Located {
    v6: bool,
    /// Offset of the transport header (after IPv6's extension headers).
    l4: usize,
    protocol: u8,
    /// Not a later fragment: the transport header is in this packet.
    first_fragment: bool,
    /// Not a fragment at all.
    whole: bool,
    /// End of the packet by its own length field.
    end: usize,
}

impl Located {
    fn read(packet: &[u8]) -> Result<Located, TransportNatError> {
        match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let ihl = usize::from(packet[0] & 0x0f) * 4;
                if packet.len() < 20 || ihl < 20 || ihl > packet.len() {
                    return Err(TransportNatError::NotIp);
                }
                let flags_offset = u16::from_be_bytes([packet[6], packet[7]]);
                Ok(Located {
                    v6: false,
                    l4: ihl,
                    protocol: packet[9],
                    first_fragment: flags_offset & 0x1fff == 0,
                    whole: flags_offset & 0x3fff == 0,
                    end: usize::from(u16::from_be_bytes([packet[2], packet[3]])),
                })
            }
            Some(6) => {
                if packet.len() < 40 {
                    return Err(TransportNatError::NotIp);
                }
                let chain = ExtChain::walk(packet).map_err(TransportNatError::Ipv6Chain)?;
                Ok(Located {
                    v6: true,
                    l4: chain.upper_offset,
                    protocol: chain.upper_protocol,
                    first_fragment: !chain.is_non_first_fragment(),
                    whole: chain.find(proto::IPV6_FRAG).is_none(),
                    end: 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]])),
                })
            }
            _ => Err(TransportNatError::NotIp),
        }
    }

    fn check_family(&self, original: &OriginalAddresses) -> Result<(), TransportNatError> {
        match (original.source, original.destination) {
            (IpAddr::V4(_), IpAddr::V4(_)) if !self.v6 => Ok(()),
            (IpAddr::V6(_), IpAddr::V6(_)) if self.v6 => Ok(()),
            _ => Err(TransportNatError::FamilyMismatch),
        }
    }
}

/// [`restore_checksum`] once the headers are read.
fn fix_checksum(
    packet: &mut [u8],
    at: &Located,
    original: &OriginalAddresses,
) -> Result<ChecksumFixup, TransportNatError> {
    let protocol = at.protocol;
    let (src_at, len) = if at.v6 { (8, 16) } else { (12, 4) };
    let checksum_at = match protocol {
        proto::TCP => 16,
        proto::UDP => 6,
        proto::ICMPV6 if at.v6 => 2,
        _ => return Ok(ChecksumFixup::Unchanged),
    };
    if !at.first_fragment {
        return Ok(ChecksumFixup::Unchanged);
    }
    let field_at = at.l4 + checksum_at;
    let Some(field) = packet.get(field_at..field_at + 2) else {
        return Err(TransportNatError::Truncated);
    };
    let old = u16::from_be_bytes([field[0], field[1]]);
    if protocol == proto::UDP && old == 0 {
        // RFC 768: no checksum was computed (IPv4 only; RFC 8200 forbids it in IPv6,
        // where the stack drops it whatever we do).
        return Ok(ChecksumFixup::Unchanged);
    }
    // The pseudo-header's addresses: the ones the peer used, now the packet's own.
    let mut from = [0u8; 32];
    let n = octets(original.source, &mut from);
    octets(original.destination, &mut from[n..]);
    let mut new = adjust(old, &from[..2 * len], &packet[src_at..src_at + 2 * len]);
    if protocol == proto::UDP && new == 0 {
        // Zero means "no checksum" in UDP: send its other form (RFC 768).
        new = 0xffff;
    }
    packet[field_at..field_at + 2].copy_from_slice(&new.to_be_bytes());
    Ok(ChecksumFixup::Adjusted)
}

/// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): the checksum `old` of data in which the bytes
/// `from` became `to` (as long as each other, an even number of bytes at an even offset
/// of the data). Words that did not change cancel out.
pub(crate) fn adjust(old: u16, from: &[u8], to: &[u8]) -> u16 {
    let mut sum = u32::from(!old);
    for (f, t) in from.chunks_exact(2).zip(to.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([f[0], f[1]]));
        sum += u32::from(u16::from_be_bytes([t[0], t[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes `ip`'s octets at the start of `out` (which has room for 16); how many.
pub(crate) fn octets(ip: IpAddr, out: &mut [u8]) -> usize {
    match ip {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    }
}
