//! Helpers shared by the sys_* tests: hand-made IPv4 packets and waiting on a descriptor
//! with a deadline, so that a packet that never comes fails the test instead of hanging it.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// IP protocol numbers the tests use.
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ESP: u8 = 50;

/// The one's-complement sum of RFC 1071 over `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (20-byte header, TTL 64, DF clear) around `payload`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, protocol, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv4 UDP datagram (UDP checksum 0: "none", allowed over IPv4).
pub fn ipv4_udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + data.len()).expect("small datagram");
    let mut udp = Vec::with_capacity(8 + data.len());
    udp.extend_from_slice(&src.1.to_be_bytes());
    udp.extend_from_slice(&dst.1.to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    ipv4(src.0, dst.0, PROTO_UDP, &udp)
}

/// An ESP packet as RFC 4303 lays it out: SPI, sequence number, then opaque bytes (the
/// tests need no real encryption, only the shape).
pub fn ipv4_esp(src: Ipv4Addr, dst: Ipv4Addr, spi: u32, seq: u32, rest: &[u8]) -> Vec<u8> {
    let mut esp = Vec::with_capacity(8 + rest.len());
    esp.extend_from_slice(&spi.to_be_bytes());
    esp.extend_from_slice(&seq.to_be_bytes());
    esp.extend_from_slice(rest);
    ipv4(src, dst, PROTO_ESP, &esp)
}

/// The source, destination and protocol of an IPv4 packet, if it is one.
pub fn ipv4_fields(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8)> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let addr = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    Some((addr(12), addr(16), p[9]))
}

/// Whether `fd` becomes readable before `deadline`.
pub fn readable_before(fd: &impl AsFd, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Reads from a nonblocking source until `matches` accepts a packet or `wait` passes;
/// other packets (the kernel's own, e.g. IGMP) are skipped.
pub fn recv_matching<S: AsFd>(
    source: &S,
    read: impl Fn(&S, &mut [u8]) -> std::io::Result<usize>,
    wait: Duration,
    matches: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    while readable_before(source, deadline) {
        match read(source, &mut buf) {
            Ok(n) if matches(&buf[..n]) => return Some(buf[..n].to_vec()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    None
}

/// Unique-local addresses for the IPv6 tests, `a` and `b` ends of the veth.
pub const V6_A: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0x5041, 0, 0, 0, 0, 0, 1);
pub const V6_B: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0x5041, 0, 0, 0, 0, 0, 2);

/// Turns IPv6 back on in a namespace (netns.rs turns it off) and gives its veth end
/// `addr`/64, without duplicate address detection so it is usable at once.
pub fn enable_ipv6(ns: &super::netns::Netns, addr: std::net::Ipv6Addr) {
    let links = ns.ip(&["-o", "link", "show"]).expect("links");
    let veth = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .find(|name| name != "lo")
        .expect("the veth end");
    ns.run(|| {
        for conf in ["all", "default", "lo", veth.as_str()] {
            std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "0")
                .expect("enable IPv6");
        }
    })
    .expect("setns");
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{addr}/64"),
        "dev",
        &veth,
        "nodad",
    ])
    .expect("IPv6 address");
}

/// An IPv6 packet (no extension headers, hop limit 64) around `payload`.
pub fn ipv6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("small packet");
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// ESP sockets at both ends of `pair`, marked: one to send from `a`, and one that
/// receives at `b`, nonblocking.
pub fn esp_sockets(
    pair: &super::netns::VethPair,
) -> (palisaded::sys::EspSocket, palisaded::sys::EspSocket) {
    use palisaded::sys::{EspSocket, FWMARK};
    let tx = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open a");
    let rx = pair
        .b
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open b");
    rx.set_nonblocking(true).expect("nonblocking");
    (tx, rx)
}

/// [`esp_sockets`] for IPv6, with `V6_A` and `V6_B` on the pair.
pub fn esp_sockets_v6(
    pair: &super::netns::VethPair,
) -> (palisaded::sys::EspSocket, palisaded::sys::EspSocket) {
    use palisaded::sys::{EspSocket, FWMARK};
    enable_ipv6(&pair.a, V6_A);
    enable_ipv6(&pair.b, V6_B);
    let open = |ns: &super::netns::Netns| {
        ns.run(|| EspSocket::open_v6(FWMARK))
            .expect("setns")
            .expect("open")
    };
    let (tx, rx) = (open(&pair.a), open(&pair.b));
    rx.set_nonblocking(true).expect("nonblocking");
    (tx, rx)
}

/// `pal0` in `pair.a` (10.77.0.1/24, 10.78.0.0/24 routed into it, nonblocking), with
/// virtio-net offloads or without.
pub fn tun_in_namespace(pair: &super::netns::VethPair, offload: bool) -> palisaded::sys::Tun {
    use palisaded::sys::Tun;
    let tun = pair
        .a
        .run(|| {
            if offload {
                Tun::create_offload("pal0", 1400)
            } else {
                Tun::create("pal0", 1400)
            }
        })
        .expect("setns")
        .expect("create pal0");
    assert_eq!(tun.offload(), offload);
    pair.a
        .ip(&["addr", "add", "10.77.0.1/24", "dev", "pal0"])
        .expect("address");
    pair.a
        .ip(&["route", "add", "10.78.0.0/24", "dev", "pal0"])
        .expect("route");
    tun.set_nonblocking(true).expect("nonblocking");
    tun
}
