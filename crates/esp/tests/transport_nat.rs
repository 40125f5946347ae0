//! The checksum fix-up after transport-mode ESP crossed a NAT (RFC 3948 §3.1.2),
//! held to checksums recomputed from scratch over the rewritten packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_esp::transport_nat::{
    ChecksumFixup, OriginalAddresses, TransportNatError, restore, restore_checksum,
    restore_icmp_quote,
};
use proptest::prelude::*;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

fn checksum_at(protocol: u8) -> usize {
    match protocol {
        TCP => 16,
        UDP => 6,
        _ => 2,
    }
}

fn header_len(protocol: u8) -> usize {
    match protocol {
        TCP => 20,
        UDP => 8,
        _ => 8,
    }
}

/// The reference: the transport checksum over a pseudo-header of `src`, `dst`, computed
/// from scratch (RFC 793, RFC 768, RFC 8200 §8.1), the checksum field taken as zero.
fn reference_checksum(src: IpAddr, dst: IpAddr, protocol: u8, l4: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    for ip in [src, dst] {
        match ip {
            IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
        }
    }
    if src.is_ipv4() {
        bytes.extend_from_slice(&[0, protocol]);
        bytes.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    } else {
        bytes.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, protocol]);
    }
    let at = bytes.len() + checksum_at(protocol);
    bytes.extend_from_slice(l4);
    bytes[at] = 0;
    bytes[at + 1] = 0;
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    if protocol == UDP && c == 0 { 0xffff } else { c }
}

/// An IP packet from `src` to `dst` carrying a `protocol` header and `payload`, its
/// transport checksum computed over `src` and `dst`.
fn packet(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; header_len(protocol)];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&5201u16.to_be_bytes());
    if protocol == UDP {
        l4[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    if protocol == TCP {
        l4[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = 0x18;
        l4[14..16].copy_from_slice(&64240u16.to_be_bytes());
    }
    l4.extend_from_slice(payload);
    if protocol != ICMP {
        let c = reference_checksum(src, dst, protocol, &l4);
        let at = checksum_at(protocol);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            h[8] = 64;
            h[9] = protocol;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            h[6] = protocol;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            h
        }
        _ => panic!("mixed families"),
    };
    ip.extend_from_slice(&l4);
    ip
}

/// What a NAT does to the one IP header of transport-mode ESP: new addresses.
fn rewrite(packet: &mut [u8], src: IpAddr, dst: IpAddr) {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            packet[12..16].copy_from_slice(&s.octets());
            packet[16..20].copy_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            packet[8..24].copy_from_slice(&s.octets());
            packet[24..40].copy_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
}

fn l4_of(packet: &[u8]) -> &[u8] {
    if packet[0] >> 4 == 4 {
        &packet[20..]
    } else {
        &packet[40..]
    }
}

fn stored_checksum(packet: &[u8], protocol: u8) -> u16 {
    let at = checksum_at(protocol);
    let l4 = l4_of(packet);
    u16::from_be_bytes([l4[at], l4[at + 1]])
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().expect("v4"))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("v6"))
}

/// Sent as `sent` (src, dst), received as `seen`: fixed up, the checksum is the one
/// computed from scratch over what the receiver sees, and it was not before.
fn crossing(protocol: u8, sent: (IpAddr, IpAddr), seen: (IpAddr, IpAddr), payload: &[u8]) {
    let mut p = packet(sent.0, sent.1, protocol, payload);
    rewrite(&mut p, seen.0, seen.1);
    let want = reference_checksum(seen.0, seen.1, protocol, l4_of(&p));
    assert_ne!(
        stored_checksum(&p, protocol),
        want,
        "the NAT left the checksum valid: nothing to test"
    );
    let original = OriginalAddresses {
        source: sent.0,
        destination: sent.1,
    };
    assert_eq!(
        restore_checksum(&mut p, &original),
        Ok(ChecksumFixup::Adjusted)
    );
    assert_eq!(stored_checksum(&p, protocol), want);
}

#[test]
fn tcp_from_a_host_behind_the_nat_gets_the_checksum_of_the_nat_address() {
    // e2e_nat's addresses: a 10.201.0.1 behind the NAT's 10.202.0.1, b 10.202.0.2.
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    crossing(TCP, (a, b), (nat, b), b"GET / HTTP/1.1\r\n\r\n");
    // And what b sends to the NAT's address, seen by a with its own address.
    crossing(TCP, (b, nat), (b, a), &[0x5a; 1400]);
}

#[test]
fn udp_with_an_odd_length_is_fixed_up_too() {
    let (a, nat, b) = (v4("192.168.1.20"), v4("203.0.113.7"), v4("198.51.100.1"));
    crossing(UDP, (a, b), (nat, b), b"odd");
}

#[test]
fn ipv6_tcp_udp_and_icmpv6_are_fixed_up() {
    let (a, nat, b) = (v6("fd00::20"), v6("2001:db8:1::7"), v6("2001:db8:2::1"));
    crossing(TCP, (a, b), (nat, b), b"segment");
    crossing(UDP, (a, b), (nat, b), b"datagram");
    crossing(ICMPV6, (a, b), (nat, b), b"echo payload");
}

/// `packet` (IPv6) with extension headers spliced in between the fixed header and the
/// transport header: `(type, bytes)` each, their Next Header octets chained.
fn with_extensions(packet: &[u8], exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let protocol = packet[6];
    let mut out = packet[..40].to_vec();
    out[6] = exts[0].0;
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut h = bytes.clone();
        h[0] = exts.get(i + 1).map_or(protocol, |next| next.0);
        out.extend_from_slice(&h);
    }
    out.extend_from_slice(&packet[40..]);
    let payload_len = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out
}

#[test]
fn ipv6_transport_headers_behind_extension_headers_are_fixed_up() {
    const HOP_BY_HOP: u8 = 0;
    const DEST_OPTS: u8 = 60;
    const FRAGMENT: u8 = 44;
    let (a, nat, b) = (v6("fd00::20"), v6("2001:db8:1::7"), v6("2001:db8:2::1"));
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    // Hop-by-Hop and Destination Options of 8 bytes (a PadN option filling each), and
    // an atomic fragment (offset 0, no more fragments: RFC 6946).
    let pad = vec![0, 0, 1, 4, 0, 0, 0, 0];
    let fragment = vec![0, 0, 0, 0, 0, 0, 0x12, 0x34];
    for protocol in [TCP, UDP, ICMPV6] {
        let plain = packet(a, b, protocol, b"behind extension headers");
        let exts = [
            (HOP_BY_HOP, pad.clone()),
            (DEST_OPTS, pad.clone()),
            (FRAGMENT, fragment.clone()),
        ];
        let mut p = with_extensions(&plain, &exts);
        rewrite(&mut p, nat, b);
        let l4 = 40 + 24;
        let want = reference_checksum(nat, b, protocol, &p[l4..]);
        let at = l4 + checksum_at(protocol);
        assert_ne!(u16::from_be_bytes([p[at], p[at + 1]]), want);
        assert_eq!(
            restore_checksum(&mut p, &original),
            Ok(ChecksumFixup::Adjusted),
            "protocol {protocol}"
        );
        assert_eq!(
            u16::from_be_bytes([p[at], p[at + 1]]),
            want,
            "protocol {protocol}"
        );
    }
    // A later fragment (offset 8 bytes): its bytes are the middle of the datagram.
    let mut later = with_extensions(
        &packet(a, b, TCP, &[7; 64]),
        &[(FRAGMENT, vec![0, 0, 0, 8, 0, 0, 0x12, 0x34])],
    );
    rewrite(&mut later, nat, b);
    let before = later.clone();
    assert_eq!(
        restore_checksum(&mut later, &original),
        Ok(ChecksumFixup::Unchanged)
    );
    assert_eq!(later, before);
    // A chain that runs past the payload is refused, the packet untouched.
    let mut broken = with_extensions(&packet(a, b, TCP, b"x"), &[(DEST_OPTS, pad.clone())]);
    broken[41] = 200;
    let before = broken.clone();
    assert!(matches!(
        restore_checksum(&mut broken, &original),
        Err(TransportNatError::Ipv6Chain(_))
    ));
    assert_eq!(broken, before);
}

#[test]
fn a_udp_datagram_without_checksum_keeps_none() {
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    let mut p = packet(a, b, UDP, b"no checksum");
    p[20 + 6] = 0;
    p[20 + 7] = 0;
    rewrite(&mut p, nat, b);
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    assert_eq!(
        restore_checksum(&mut p, &original),
        Ok(ChecksumFixup::Unchanged)
    );
    assert_eq!(stored_checksum(&p, UDP), 0);
}

#[test]
fn icmpv4_and_later_fragments_are_left_alone() {
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    let mut icmp = packet(a, b, ICMP, b"ping");
    rewrite(&mut icmp, nat, b);
    let before = icmp.clone();
    assert_eq!(
        restore_checksum(&mut icmp, &original),
        Ok(ChecksumFixup::Unchanged)
    );
    assert_eq!(icmp, before);
    let mut later = packet(a, b, TCP, &[7; 64]);
    later[6..8].copy_from_slice(&185u16.to_be_bytes()); // offset 185 * 8
    rewrite(&mut later, nat, b);
    let before = later.clone();
    assert_eq!(
        restore_checksum(&mut later, &original),
        Ok(ChecksumFixup::Unchanged)
    );
    assert_eq!(later, before);
}

#[test]
fn malformed_packets_are_refused_not_touched() {
    let (a, b) = (v4("10.201.0.1"), v4("10.202.0.2"));
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    assert_eq!(
        restore_checksum(&mut [], &original),
        Err(TransportNatError::NotIp)
    );
    let full = packet(a, b, TCP, b"x");
    // A TCP header cut before its checksum field.
    let mut cut = full[..20 + 17].to_vec();
    assert_eq!(
        restore_checksum(&mut cut, &original),
        Err(TransportNatError::Truncated)
    );
    assert_eq!(cut, full[..20 + 17]);
    // An IHL past the end, a header shorter than 20 bytes, version 5.
    let mut long_ihl = full.clone();
    long_ihl[0] = 0x4f;
    long_ihl.truncate(40);
    assert_eq!(
        restore_checksum(&mut long_ihl, &original),
        Err(TransportNatError::NotIp)
    );
    assert_eq!(
        restore_checksum(&mut full[..19].to_vec(), &original),
        Err(TransportNatError::NotIp)
    );
    let mut v5 = full.clone();
    v5[0] = 0x55;
    assert_eq!(
        restore_checksum(&mut v5, &original),
        Err(TransportNatError::NotIp)
    );
    // IPv6 original addresses for an IPv4 packet.
    let mut p = full.clone();
    let six = OriginalAddresses {
        source: v6("fd00::1"),
        destination: v6("fd00::2"),
    };
    assert_eq!(
        restore_checksum(&mut p, &six),
        Err(TransportNatError::FamilyMismatch)
    );
    assert_eq!(p, full);
}

fn address(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<[u8; 16]>().prop_map(IpAddr::from).boxed()
    } else {
        any::<[u8; 4]>().prop_map(IpAddr::from).boxed()
    }
}

fn crossing_case() -> impl Strategy<Value = (u8, [IpAddr; 4], Vec<u8>)> {
    any::<bool>().prop_flat_map(|v6| {
        let protocols = if v6 {
            prop::sample::select(vec![TCP, UDP, ICMPV6])
        } else {
            prop::sample::select(vec![TCP, UDP])
        };
        (
            protocols,
            [address(v6), address(v6), address(v6), address(v6)],
            prop::collection::vec(any::<u8>(), 0..1500),
        )
    })
}

proptest! {
    /// Whatever the addresses before and after the NAT (either or both changed, or
    /// neither), the fixed-up checksum is the one computed from scratch.
    #[test]
    fn fixup_equals_recomputing_from_scratch((protocol, [s, d, s2, d2], payload) in crossing_case()) {
        let mut p = packet(s, d, protocol, &payload);
        rewrite(&mut p, s2, d2);
        let original = OriginalAddresses { source: s, destination: d };
        prop_assert_eq!(restore_checksum(&mut p, &original), Ok(ChecksumFixup::Adjusted));
        let want = reference_checksum(s2, d2, protocol, l4_of(&p));
        prop_assert_eq!(stored_checksum(&p, protocol), want);
    }

    /// Any bytes: an answer, never a panic, and a refused packet is left as it was.
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..80),
                                   six in any::<bool>()) {
        let original = if six {
            OriginalAddresses { source: v6("fd00::1"), destination: v6("fd00::2") }
        } else {
            OriginalAddresses { source: v4("10.0.0.1"), destination: v4("10.0.0.2") }
        };
        let before = bytes.clone();
        if restore_checksum(&mut bytes, &original).is_err() {
            prop_assert_eq!(bytes, before);
        }
    }
}

/// An ICMP error from `src` to `dst` (IPv4 port unreachable, or ICMPv6 port
/// unreachable) quoting the first `quote_len` bytes of `quoted`, every checksum right.
fn icmp_error(src: IpAddr, dst: IpAddr, quoted: &[u8], quote_len: usize) -> Vec<u8> {
    let mut quoted = quoted.to_vec();
    if quoted[0] >> 4 == 4 {
        let sum = palisade_wire::ipv4_header_checksum(&quoted[..20]);
        quoted[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    let body = &quoted[..quote_len.min(quoted.len())];
    let protocol = if src.is_ipv4() { ICMP } else { ICMPV6 };
    // packet() gives the first four bytes the ports 40000 and 5201: make them type 3
    // code 3 (IPv4) or type 1 code 4 (IPv6), then the checksum.
    let mut p = packet(src, dst, protocol, body);
    let at = if src.is_ipv4() { 20 } else { 40 };
    let (kind, code) = if src.is_ipv4() { (3, 3) } else { (1, 4) };
    p[at..at + 4].copy_from_slice(&[kind, code, 0, 0]);
    let c = icmp_checksum(&p);
    p[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
    p
}

/// The ICMP or ICMPv6 checksum computed from scratch (the field taken as zero).
fn icmp_checksum(p: &[u8]) -> u16 {
    let (at, src, dst) = if p[0] >> 4 == 4 {
        (20, v4_at(p, 12), v4_at(p, 16))
    } else {
        (40, v6_at(p, 8), v6_at(p, 24))
    };
    if src.is_ipv4() {
        let mut m = p[at..].to_vec();
        m[2..4].fill(0);
        reference_sum(&m)
    } else {
        reference_checksum(src, dst, ICMPV6, &p[at..])
    }
}

fn reference_sum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v4_at(p: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        <[u8; 4]>::try_from(&p[at..at + 4]).expect("4"),
    ))
}

fn v6_at(p: &[u8], at: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&p[at..at + 16]).expect("16"),
    ))
}

/// An ICMP error about `quoted` (a packet `us` sent, which reached the peer with
/// `quoted_as` addresses), from the peer's `peer_sent` addresses and received as
/// `seen`: after [`restore_checksum`] and [`restore_icmp_quote`], the quote has the
/// addresses `us` sent it with and every checksum is the one computed from scratch.
fn quote_crossing(
    quoted: (IpAddr, IpAddr),
    quoted_as: (IpAddr, IpAddr),
    peer_sent: (IpAddr, IpAddr),
    seen: (IpAddr, IpAddr),
    protocol: u8,
    quote_len: usize,
) {
    let mut inner = packet(quoted.0, quoted.1, protocol, &[0x33; 300]);
    rewrite(&mut inner, quoted_as.0, quoted_as.1);
    // The peer's stack fixed the transport checksum up as it received it, then quoted.
    let fixed = reference_checksum(quoted_as.0, quoted_as.1, protocol, l4_of(&inner));
    let at = if inner[0] >> 4 == 4 { 20 } else { 40 } + checksum_at(protocol);
    inner[at..at + 2].copy_from_slice(&fixed.to_be_bytes());
    let mut p = icmp_error(peer_sent.0, peer_sent.1, &inner, quote_len);
    rewrite(&mut p, seen.0, seen.1);
    let original = OriginalAddresses {
        source: peer_sent.0,
        destination: peer_sent.1,
    };
    let mut at_once = p.clone();
    restore_checksum(&mut p, &original).expect("outer");
    assert_eq!(
        restore_icmp_quote(&mut p, &original),
        Ok(ChecksumFixup::Adjusted)
    );
    // `restore` does both, reading the headers once.
    assert_eq!(
        restore(&mut at_once, &original),
        Ok(ChecksumFixup::Adjusted)
    );
    assert_eq!(at_once, p);

    let icmp = if p[0] >> 4 == 4 { 20 } else { 40 };
    let quote = &p[icmp + 8..];
    let (s_at, d_at, len) = if p[0] >> 4 == 4 {
        (12, 16, 4)
    } else {
        (8, 24, 16)
    };
    let addr = |at: usize| {
        if len == 4 {
            v4_at(quote, at)
        } else {
            v6_at(quote, at)
        }
    };
    assert_eq!(
        (addr(s_at), addr(d_at)),
        quoted,
        "the quote has our addresses"
    );
    assert_eq!(
        u16::from_be_bytes([p[icmp + 2], p[icmp + 3]]),
        icmp_checksum(&p),
        "the ICMP checksum"
    );
    if len == 4 {
        assert!(
            palisade_wire::ipv4::verify_checksum(quote),
            "the quoted header's"
        );
    }
    let l4_at = if len == 4 { 20 } else { 40 };
    let field = l4_at + checksum_at(protocol);
    if quote.len() >= l4_at + header_len(protocol) + 300 {
        let want = reference_checksum(quoted.0, quoted.1, protocol, &quote[l4_at..]);
        assert_eq!(
            u16::from_be_bytes([quote[field], quote[field + 1]]),
            want,
            "the quoted transport checksum"
        );
    }
}

#[test]
fn an_icmp_error_quotes_our_packet_with_our_addresses() {
    // e2e_nat's addresses: a 10.201.0.1 behind the NAT's 10.202.0.1, b 10.202.0.2.
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    for (protocol, quote_len) in [(UDP, 1000), (TCP, 1000), (UDP, 28), (TCP, 28), (UDP, 20)] {
        // b sent to the NAT's address, a answered with an error, as b receives it.
        quote_crossing((b, nat), (b, a), (a, b), (nat, b), protocol, quote_len);
        // a sent to b, which saw the NAT's address and answered, as a receives it.
        quote_crossing((a, b), (nat, b), (b, nat), (b, a), protocol, quote_len);
    }
}

#[test]
fn an_icmpv6_error_quotes_our_packet_with_our_addresses() {
    let (a, nat, b) = (v6("fd00::20"), v6("2001:db8:1::7"), v6("2001:db8:2::1"));
    for (protocol, quote_len) in [(UDP, 1000), (TCP, 1000), (ICMPV6, 1000), (UDP, 40)] {
        quote_crossing((b, nat), (b, a), (a, b), (nat, b), protocol, quote_len);
        quote_crossing((a, b), (nat, b), (b, nat), (b, a), protocol, quote_len);
    }
}

#[test]
fn what_is_not_an_error_about_the_peers_addresses_is_left_alone() {
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    // An echo reply is no error.
    let inner = packet(b, a, UDP, b"x");
    let mut p = icmp_error(a, b, &inner, 100);
    p[20] = 0;
    quote_left_alone(p, &original);
    // An error about a packet between other hosts.
    let inner = packet(v4("192.0.2.1"), v4("192.0.2.2"), UDP, b"x");
    quote_left_alone(icmp_error(nat, b, &inner, 100), &original);
    // TCP and UDP are no ICMP.
    quote_left_alone(packet(a, b, UDP, b"x"), &original);
}

/// `p` is neither changed nor refused by the quote's fix-up.
fn quote_left_alone(mut p: Vec<u8>, original: &OriginalAddresses) {
    let before = p.clone();
    assert_eq!(
        restore_icmp_quote(&mut p, original),
        Ok(ChecksumFixup::Unchanged)
    );
    assert_eq!(p, before);
}

#[test]
fn a_corrupted_icmp_error_stays_corrupted() {
    let (a, nat, b) = (v4("10.201.0.1"), v4("10.202.0.1"), v4("10.202.0.2"));
    let inner = packet(b, a, UDP, &[1; 64]);
    let mut p = icmp_error(a, b, &inner, 100);
    p[40] ^= 0xff;
    rewrite(&mut p, nat, b);
    let original = OriginalAddresses {
        source: a,
        destination: b,
    };
    assert_eq!(
        restore_icmp_quote(&mut p, &original),
        Ok(ChecksumFixup::Adjusted)
    );
    assert_ne!(u16::from_be_bytes([p[22], p[23]]), icmp_checksum(&p));
}

proptest! {
    /// Any bytes: an answer, never a panic, and the length kept.
    #[test]
    fn arbitrary_icmp_never_panics(mut bytes in prop::collection::vec(any::<u8>(), 0..120),
                                   six in any::<bool>(), kind in 0u8..14) {
        let original = if six {
            OriginalAddresses { source: v6("fd00::1"), destination: v6("fd00::2") }
        } else {
            OriginalAddresses { source: v4("10.0.0.1"), destination: v4("10.0.0.2") }
        };
        // Often an ICMP error with a quote behind it, so the checks past the header run.
        if !six && bytes.len() >= 48 && kind < 12 {
            bytes[0] = 0x45;
            let l = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&l.to_be_bytes());
            bytes[6] = 0;
            bytes[9] = ICMP;
            bytes[20] = kind;
            bytes[28] = 0x45;
            bytes[40..44].copy_from_slice(&[10, 0, 0, 2]);
        }
        let len = bytes.len();
        let _ = restore_icmp_quote(&mut bytes, &original);
        prop_assert_eq!(bytes.len(), len);
    }
}
