//! Packet builders shared by the integration tests. They use the crate's
//! own emitters, so a packet that fails to build is itself a test failure.
#![allow(dead_code)]

use palisade_wire::{
    AhHeader, EspHeader, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, Ipv4Header, Ipv6Header, UdpHeader,
    proto, udp_checksum_v4,
};

pub const V4_SRC: [u8; 4] = [192, 0, 2, 1];
pub const V4_DST: [u8; 4] = [198, 51, 100, 7];
pub const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// IPv4 header (no options) followed by `payload`.
pub fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = IPV4_MIN_HEADER_LEN + payload.len();
    let mut p = vec![0u8; total];
    Ipv4Header {
        dscp: 10,
        ecn: 2,
        total_len: u16::try_from(total).expect("fits"),
        identification: 0x1c46,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        ttl: 64,
        protocol,
        checksum: 0,
        src: V4_SRC,
        dst: V4_DST,
        header_len: IPV4_MIN_HEADER_LEN,
    }
    .write(&mut p)
    .expect("ipv4 write");
    p[IPV4_MIN_HEADER_LEN..].copy_from_slice(payload);
    p
}

/// IPv4 header carrying `options` (padded with EOL to a 4-byte multiple)
/// and then `payload`; checksum updated.
pub fn ipv4_with_options(protocol: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let opt_len = options.len().div_ceil(4) * 4;
    let header_len = IPV4_MIN_HEADER_LEN + opt_len;
    let mut p = ipv4(protocol, &[]);
    p[0] = 0x40 | u8::try_from(header_len / 4).expect("ihl");
    p.extend_from_slice(options);
    p.resize(header_len, 0);
    p.extend_from_slice(payload);
    let total = u16::try_from(p.len()).expect("fits");
    palisade_wire::ipv4::set_total_len(&mut p, total).expect("set total");
    p
}

/// UDP datagram with a correct IPv4 checksum.
pub fn udp_v4(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = vec![0u8; len];
    UdpHeader {
        src_port,
        dst_port,
        length: u16::try_from(len).expect("fits"),
        checksum: 0,
    }
    .write(&mut d)
    .expect("udp write");
    d[8..].copy_from_slice(payload);
    let sum = udp_checksum_v4(V4_SRC, V4_DST, &d);
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// IPv6 header whose Next Header is `first`, followed by `rest`.
pub fn ipv6(first: u8, rest: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = rest.concat();
    let mut p = vec![0u8; IPV6_HEADER_LEN];
    Ipv6Header {
        traffic_class: 0xB8,
        flow_label: 0x12345,
        payload_len: u16::try_from(body.len()).expect("fits"),
        next_header: first,
        hop_limit: 64,
        src: V6_SRC,
        dst: V6_DST,
    }
    .write(&mut p)
    .expect("ipv6 write");
    p.extend_from_slice(&body);
    p
}

/// Hop-by-Hop or Destination Options header holding `options`, padded with
/// PadN/Pad1 to a multiple of 8 bytes.
pub fn options_header(next: u8, options: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(options);
    let pad = (8 - h.len() % 8) % 8;
    match pad {
        0 => {}
        1 => h.push(0),
        n => {
            h.push(1);
            h.push(u8::try_from(n - 2).expect("pad"));
            h.resize(h.len() + n - 2, 0);
        }
    }
    h[1] = u8::try_from(h.len() / 8 - 1).expect("len");
    h
}

/// Type 2 style routing header with one 16-byte address.
pub fn routing_header(next: u8, segments_left: u8) -> Vec<u8> {
    let mut r = vec![next, 2, 2, segments_left, 0, 0, 0, 0];
    r.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    r
}

/// Fragment header.
pub fn fragment_header(next: u8, offset_units: u16, more: bool) -> Vec<u8> {
    let word = (offset_units << 3) | u16::from(more);
    let [hi, lo] = word.to_be_bytes();
    vec![next, 0, hi, lo, 0x01, 0x02, 0x03, 0x04]
}

/// AH header with an ICV of `icv_len` bytes (filled with 0xA5), padded for
/// the IP version.
pub fn ah(next: u8, icv_len: usize, v6: bool) -> Vec<u8> {
    let len = palisade_wire::ah_len_for(icv_len, v6);
    let mut a = vec![0xA5u8; len];
    AhHeader {
        next_header: next,
        payload_len: AhHeader::payload_len_for(len).expect("ah len"),
        spi: 0x0000_1001,
        seq: 1,
    }
    .write(&mut a)
    .expect("ah write");
    a
}

/// ESP header plus opaque "ciphertext".
pub fn esp(spi: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut e = vec![0u8; 8];
    EspHeader { spi, seq }.write(&mut e).expect("esp write");
    e.extend_from_slice(body);
    e
}

/// A 20-byte TCP header stand-in.
pub fn tcp() -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[..4].copy_from_slice(&[0x04, 0x00, 0x00, 0x50]);
    t[12] = 0x50;
    t
}

pub const TCP: u8 = proto::TCP;
