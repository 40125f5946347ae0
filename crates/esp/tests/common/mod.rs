//! Test packets and SA pairs shared by the integration tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Instant;

use palisade_esp::{Direction, Mode, Packet, SaConfig, SaHandle, SaTransform, Sad, UdpEncap};
use palisade_wire::{Ipv4Header, Ipv6Header, UdpHeader, proto, udp_checksum_v4, udp_checksum_v6};

/// Headroom the tests give every packet.
pub const ROOM: usize = 256;
/// Tailroom: enough for TFC padding up to 1500 bytes.
pub const TAIL: usize = 2048;

/// An IPv4 or IPv6 UDP packet with a patterned payload and correct checksums.
pub fn udp_packet(src: IpAddr, dst: IpAddr, payload_len: usize, tos: u8) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + payload_len];
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    UdpHeader {
        src_port: 40000,
        dst_port: 5001,
        length: udp.len() as u16,
        checksum: 0,
    }
    .write(&mut udp)
    .expect("udp header");
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let sum = udp_checksum_v4(s.octets(), d.octets(), &udp);
            udp[6..8].copy_from_slice(&sum.to_be_bytes());
            let mut p = vec![0u8; 20];
            Ipv4Header {
                dscp: tos >> 2,
                ecn: tos & 3,
                total_len: (20 + udp.len()) as u16,
                identification: 0x1234,
                dont_fragment: true,
                more_fragments: false,
                fragment_offset: 0,
                ttl: 64,
                protocol: proto::UDP,
                checksum: 0,
                src: s.octets(),
                dst: d.octets(),
                header_len: 20,
            }
            .write(&mut p)
            .expect("ipv4 header");
            p.extend_from_slice(&udp);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let sum = udp_checksum_v6(s.octets(), d.octets(), &udp);
            udp[6..8].copy_from_slice(&sum.to_be_bytes());
            let mut p = vec![0u8; 40];
            Ipv6Header {
                traffic_class: tos,
                flow_label: 0x12345,
                payload_len: udp.len() as u16,
                next_header: proto::UDP,
                hop_limit: 64,
                src: s.octets(),
                dst: d.octets(),
            }
            .write(&mut p)
            .expect("ipv6 header");
            p.extend_from_slice(&udp);
            p
        }
        _ => panic!("mixed families"),
    }
}

/// A buffer with `ROOM` bytes before and `TAIL` after `packet`.
pub fn with_room(packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; ROOM + packet.len() + TAIL];
    buf[ROOM..ROOM + packet.len()].copy_from_slice(packet);
    buf
}

/// Key material of the right length with a recognisable pattern.
pub fn keymat(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed))
        .collect()
}

/// An outbound SA on `a` and the matching inbound SA on `b`, same keys.
pub struct Pair {
    pub a: Sad,
    pub b: Sad,
    pub out: SaHandle,
    pub inb: SaHandle,
}

pub struct PairSpec {
    pub transform: SaTransform,
    pub mode: Mode,
    pub a: IpAddr,
    pub b: IpAddr,
    pub esn: bool,
    /// UDP encapsulation as seen by the sender (`a`); the receiver gets the ports swapped.
    pub udp: Option<UdpEncap>,
    pub tfc_pad_to: Option<u16>,
    pub window: u32,
}

pub fn keymat_len(t: SaTransform) -> usize {
    match t {
        SaTransform::Esp(s) => s.keymat_len(),
        SaTransform::Ah(i) => i.key_len(),
    }
}

pub fn pair(spec: &PairSpec, spi: u32, now: Instant) -> Pair {
    let keys = keymat(keymat_len(spec.transform), spi as u8);
    let mk = |dir: Direction, local: IpAddr, remote: IpAddr, udp: Option<UdpEncap>| {
        let mut c = SaConfig::new(spi, dir, spec.transform, local, remote);
        c.mode = spec.mode;
        c.esn = spec.esn;
        c.tfc_pad_to = spec.tfc_pad_to;
        c.replay_window = spec.window;
        c.udp_encap = udp;
        c
    };
    let swapped = spec.udp.map(|u| UdpEncap {
        local_port: u.remote_port,
        remote_port: u.local_port,
    });
    let mut a = Sad::new();
    let mut b = Sad::new();
    let out = a
        .install(
            mk(Direction::Outbound, spec.a, spec.b, spec.udp),
            &keys,
            now,
        )
        .expect("install outbound");
    let inb = b
        .install(mk(Direction::Inbound, spec.b, spec.a, swapped), &keys, now)
        .expect("install inbound");
    Pair { a, b, out, inb }
}

/// Encapsulates `packet` on the pair's outbound SA; returns the wire bytes.
pub fn seal(p: &mut Pair, packet: &[u8], now: Instant) -> Result<Vec<u8>, palisade_esp::EspError> {
    let mut buf = with_room(packet);
    let mut pkt = Packet::new(&mut buf, ROOM, packet.len());
    p.a.encapsulate(p.out, &mut pkt, now)?;
    Ok(pkt.bytes().to_vec())
}

/// Decapsulates wire bytes on the pair's inbound side; returns the inner packet.
pub fn open(sad: &mut Sad, wire: &[u8], now: Instant) -> Result<Vec<u8>, palisade_esp::EspError> {
    let mut buf = with_room(wire);
    let mut pkt = Packet::new(&mut buf, ROOM, wire.len());
    sad.decapsulate(&mut pkt, now)?;
    Ok(pkt.bytes().to_vec())
}
