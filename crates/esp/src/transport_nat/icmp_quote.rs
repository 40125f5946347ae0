//! The packet an ICMP error quotes, on a transport-mode SA across a NAT.
//!
//! An ICMP error (destination unreachable, packet too big, time exceeded, parameter
//! problem) quotes the packet that caused it as its sender received it: a packet of ours,
//! with the addresses the NAT gave it (our address as the peer knows it, the peer's own
//! address). The stack matches the quote to the socket it concerns by those addresses, so
//! unless they are ours, a UDP socket never hears that the port was closed and TCP never
//! learns the path MTU. So the quote gets our addresses back: the quoted source becomes the
//! packet's destination and the quoted destination its source, and the checksums that
//! cover them follow: the quoted IPv4 header's, the quoted TCP, UDP or ICMPv6 header's
//! where the quote reaches it, and the ICMP message's own.
//!
//! Every checksum is adjusted incrementally (RFC 1624), so one that was wrong stays wrong
//! and the stack still drops a corrupted message. Fields that are not the original
//! addresses are left as they are.

use palisade_wire::proto;

use super::{ChecksumFixup, Located, OriginalAddresses, TransportNatError, adjust, octets};

/// ICMPv4 errors that quote a packet (RFC 792, RFC 1812 §4.3.2.4): destination
/// unreachable, source quench, redirect, time exceeded, parameter problem.
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 errors (RFC 4443 §2.1): types 1 to 127; those defined quote a packet.
const ICMPV6_LAST_ERROR: u8 = 127;
/// The ICMP header before the quote: type, code, checksum, and four bytes whose meaning
/// depends on the type.
const ICMP_HEADER_LEN: usize = 8;

/// Gives the packet quoted by the ICMP error `packet` (decapsulated from a
/// transport-mode SA whose peer used `original`'s addresses) our addresses in place of
/// those. Anything but an ICMP or ICMPv6 error, or a quote without `original`'s
/// addresses, is left as it is ([`ChecksumFixup::Unchanged`]). Never panics.
///
/// Run it after [`super::restore_checksum`], which fixes the ICMPv6 checksum's
/// pseudo-header.
pub fn restore_icmp_quote(
    packet: &mut [u8],
    original: &OriginalAddresses,
) -> Result<ChecksumFixup, TransportNatError> {
    let at = Located::read(packet)?;
    fix(packet, &at, original)
}

/// [`restore_icmp_quote`] once the headers are read.
pub(super) fn fix(
    packet: &mut [u8],
    at: &Located,
    original: &OriginalAddresses,
) -> Result<ChecksumFixup, TransportNatError> {
    let Some(outer) = Outer::of(packet, at) else {
        return Ok(ChecksumFixup::Unchanged);
    };
    let quote_at = outer.icmp + ICMP_HEADER_LEN;
    let Some(quote) = packet.get(quote_at..outer.end) else {
        return Ok(ChecksumFixup::Unchanged);
    };
    let Some(quoted) = Quoted::read(quote, outer.v6) else {
        return Ok(ChecksumFixup::Unchanged);
    };

    // The quote's addresses as they are, and as they become: the packet's destination
    // (ours) where it has the peer's idea of ours, the packet's source where it has the
    // peer's own address.
    let (src_at, len) = if outer.v6 { (8, 16) } else { (12, 4) };
    let mut old = [0u8; 32];
    old[..2 * len].copy_from_slice(&quote[src_at..src_at + 2 * len]);
    let mut new = old;
    let mut theirs = [0u8; 32];
    if octets(original.destination, &mut theirs) != len {
        return Err(TransportNatError::FamilyMismatch);
    }
    octets(original.source, &mut theirs[len..]);
    if old[..len] == theirs[..len] {
        new[..len].copy_from_slice(&packet[src_at + len..src_at + 2 * len]);
    }
    if old[len..2 * len] == theirs[len..2 * len] {
        new[len..2 * len].copy_from_slice(&packet[src_at..src_at + len]);
    }
    if new == old {
        return Ok(ChecksumFixup::Unchanged);
    }
    let (old, new) = (&old[..2 * len], &new[..2 * len]);

    // Each checksum over the addresses, then the addresses, then the ICMP message's
    // checksum over all the bytes that changed.
    let mut changes = [(0u16, 0u16); 2];
    let mut n = 0;
    let quote = &mut packet[quote_at..outer.end];
    let fields = [
        (quoted.header_checksum, false),
        (quoted.transport_checksum, quoted.udp),
    ];
    for (at, udp) in fields {
        let Some(at) = at else {
            continue;
        };
        let was = u16::from_be_bytes([quote[at], quote[at + 1]]);
        if udp && was == 0 {
            // A UDP datagram sent without a checksum (RFC 768) keeps none.
            continue;
        }
        let mut now = adjust(was, old, new);
        if udp && now == 0 {
            // Zero means "no checksum" in UDP: its other form (RFC 768).
            now = 0xffff;
        }
        quote[at..at + 2].copy_from_slice(&now.to_be_bytes());
        changes[n] = (was, now);
        n += 1;
    }
    quote[src_at..src_at + 2 * len].copy_from_slice(new);

    // The ICMP checksum covers every byte that changed. All sit at even offsets of the
    // message (the quote starts 8 bytes in; addresses and checksum fields are at even
    // offsets of headers whose lengths are even), so each is whole 16-bit words.
    let at = outer.icmp + 2;
    let was = u16::from_be_bytes([packet[at], packet[at + 1]]);
    let mut sum = adjust(was, old, new);
    for &(before, after) in &changes[..n] {
        sum = adjust(sum, &before.to_be_bytes(), &after.to_be_bytes());
    }
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(ChecksumFixup::Adjusted)
}

/// Where the ICMP error is in the packet.
struct Outer {
    v6: bool,
    /// Offset of the ICMP header.
    icmp: usize,
    /// End of the packet by its own length field.
    end: usize,
}

impl Outer {
    /// The ICMP error the packet located by `at` is, or `None` if it is none (or a
    /// fragment: a quote cut across fragments is not worth mending).
    fn of(packet: &[u8], at: &Located) -> Option<Outer> {
        let (protocol, is_error): (u8, fn(u8) -> bool) = if at.v6 {
            (proto::ICMPV6, |t| t <= ICMPV6_LAST_ERROR)
        } else {
            (proto::ICMP, |t| ICMP_ERRORS.contains(&t))
        };
        let error = packet.get(at.l4).is_some_and(|t| is_error(*t));
        let fits = at.end <= packet.len() && at.end >= at.l4 + ICMP_HEADER_LEN;
        (at.protocol == protocol && at.whole && error && fits).then_some(Outer {
            v6: at.v6,
            icmp: at.l4,
            end: at.end,
        })
    }
}

/// The quoted packet: where its checksums over the addresses are, within the quote.
struct Quoted {
    /// The IPv4 header checksum, when the whole header is quoted.
    header_checksum: Option<usize>,
    /// The TCP, UDP or ICMPv6 checksum, when the quote reaches it.
    transport_checksum: Option<usize>,
    udp: bool,
}

impl Quoted {
    /// The quoted header, of the outer packet's family; `None` if the quote is too short
    /// for the addresses.
    fn read(quote: &[u8], v6: bool) -> Option<Quoted> {
        let (header, protocol, first_fragment) = if v6 {
            if quote.len() < 40 || quote[0] >> 4 != 6 {
                return None;
            }
            // Behind extension headers the quoted transport header is not looked for:
            // the stack matches the quote by its addresses.
            (40, quote[6], true)
        } else {
            if quote.len() < 20 || quote[0] >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(quote[0] & 0x0f) * 4;
            let offset = u16::from_be_bytes([quote[6], quote[7]]) & 0x1fff;
            (ihl.max(20), quote[9], offset == 0)
        };
        let header_checksum = (!v6 && quote.len() >= header).then_some(10);
        let field = match protocol {
            proto::TCP => Some(16),
            proto::UDP => Some(6),
            proto::ICMPV6 if v6 => Some(2),
            _ => None,
        };
        let transport_checksum = field
            .filter(|_| first_fragment)
            .map(|f| header + f)
            .filter(|at| at + 2 <= quote.len());
        Some(Quoted {
            header_checksum,
            transport_checksum,
            udp: protocol == proto::UDP,
        })
    }
}
