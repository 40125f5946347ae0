//! The data plane's per-packet decisions must not touch the heap once a flow is known:
//! reading a packet's flow, the IPsec callouts (outbound, inbound clear, inbound
//! protected with the ALE checks of flows without a handshake), splitting the TUN's
//! aggregates and coalescing TCP segments for the TUN. A counting global allocator sees every allocation on the
//! measuring thread. A flow's first packet may allocate (its cache entries): that is
//! per flow, not per packet.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use counting_alloc::allocations;
use palisade_filter::policy::TrafficSelector;
use palisade_filter::{Caller, Engine, SessionOptions};
use palisaded::ipsec_callout::{
    Flow, Inbound, IpsecCallout, Outbound, ProtectionMode, SaSelectors, reason,
};
use palisaded::sys::TunGro;
use palisaded::sys::tun::VIRTIO_NET_HDR_LEN;
use palisaded::sys::tun::VirtioNetHdr;
use palisaded::sys::tun_gso;
use sys_common::{checksum, ipv4};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Packets per measurement: enough that one allocation per packet could not hide.
const PACKETS: usize = 1000;

fn callout(file: &str, edit: impl Fn(String) -> String) -> IpsecCallout {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(file);
    let text = edit(std::fs::read_to_string(&path).expect("example policy"));
    let compiled = palisade_policy::compile_str(file, &text).expect("compiles");
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    palisade_policy::apply(&engine, &mut s, &compiled).expect("applies");
    IpsecCallout::new(engine)
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

/// An IPv4 TCP segment (ACK, no SYN: an established flow) with a valid checksum.
fn tcp(src: &str, sport: u16, dst: &str, dport: u16, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&[0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&v4(src).octets());
    pseudo.extend_from_slice(&v4(dst).octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&u16::try_from(t.len()).expect("small").to_be_bytes());
    pseudo.extend_from_slice(&t);
    let sum = checksum(&pseudo);
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv4(v4(src), v4(dst), 6, &t);
    p[6] = 0x40; // DF, as TCP sends
    p[10..12].fill(0);
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    ipv4(v4(src), v4(dst), 17, &u)
}

/// A UDP datagram with its checksum (what UDP coalescing takes).
fn udp_checked(src: &str, sport: u16, dst: &str, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + data.len()).expect("small");
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&v4(src).octets());
    pseudo.extend_from_slice(&v4(dst).octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&u);
    let sum = match checksum(&pseudo) {
        0 => 0xffff,
        s => s,
    };
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    ipv4(v4(src), v4(dst), 17, &u)
}

fn transport_sa(local: &str, remote: (&str, &str), peer_names: &[&str]) -> SaSelectors {
    let addr = |s: &str| s.parse::<IpAddr>().expect("address");
    SaSelectors {
        local: vec![TrafficSelector::range(addr(local), addr(local))],
        remote: vec![TrafficSelector::range(addr(remote.0), addr(remote.1))],
        mode: ProtectionMode::Transport,
        encrypting: true,
        peer_names: peer_names.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);
}

#[test]
fn transport_mode_decisions_for_a_known_flow_do_not_allocate() {
    let mut c = callout("transport-mode.toml", |t| t);
    let out = tcp("192.0.2.10", 40000, "192.0.2.20", 443, 1, b"data");
    let back = tcp("192.0.2.20", 443, "192.0.2.10", 40000, 1, b"data");
    let sa = transport_sa("192.0.2.10", ("192.0.2.20", "192.0.2.20"), &[]);
    // The flow's first packets fill the caches.
    let (o, i) = (
        Flow::outbound(&out).expect("flow"),
        Flow::inbound(&back).expect("flow"),
    );
    assert!(matches!(c.outbound(&o), Outbound::Protect(_)));
    assert_eq!(c.inbound_protected(&i, &sa), Inbound::Permit);
    let n = allocations(|| {
        for _ in 0..PACKETS {
            let o = Flow::outbound(std::hint::black_box(&out)).expect("flow");
            let i = Flow::inbound(std::hint::black_box(&back)).expect("flow");
            assert!(matches!(c.outbound(&o), Outbound::Protect(_)));
            assert_eq!(c.inbound_protected(&i, &sa), Inbound::Permit);
        }
    });
    assert_eq!(n, 0, "allocations for {PACKETS} packets each way");
}

#[test]
fn negotiation_discovery_secured_flows_do_not_allocate_per_packet() {
    // PERSIST_CONNECTION_SECURITY: every protected packet records its flow as secured
    // (a set shared with the NFQUEUE thread); a known one must take neither the heap
    // nor the lock.
    let mut c = callout("negotiation-discovery.toml", |t| t);
    let back = tcp("198.51.100.7", 80, "192.0.2.1", 40000, 1, b"data");
    let sa = transport_sa("192.0.2.1", ("198.51.100.7", "198.51.100.7"), &[]);
    let i = Flow::inbound(&back).expect("flow");
    let mut queue = c.share();
    assert_eq!(c.inbound_protected(&i, &sa), Inbound::Permit);
    let n = allocations(|| {
        for _ in 0..PACKETS {
            assert_eq!(c.inbound_protected(&i, &sa), Inbound::Permit);
        }
    });
    assert_eq!(n, 0);
    // The flow was recorded as secured: its clear packets are refused now.
    assert!(matches!(
        queue.inbound_clear(&i),
        Inbound::Block {
            reason: reason::CLEAR_AFTER_SECURED,
            ..
        }
    ));
}

#[test]
fn udp_judged_at_recv_accept_per_packet_does_not_allocate() {
    // The isolated server offering UDP: every datagram is a connection start, checked
    // against the identity of the SA it came on (ALE_AUTH_RECV_ACCEPT), permitted and
    // refused alike; and the answers to a flow we started, which pass. (A flow whose
    // SA identity changes is classified anew, with the peer's names as a condition
    // value: per flow and identity, not per packet.)
    let mut c = callout("remote-identity-authorization.toml", |t| {
        t.replace(r#"protocol = "tcp""#, r#"protocol = "udp""#)
    });
    let admin_query = Flow::inbound(&udp("192.0.2.7", 40000, "192.0.2.1", 5555)).expect("flow");
    let other_query = Flow::inbound(&udp("192.0.2.77", 40000, "192.0.2.1", 5555)).expect("flow");
    let ours = Flow::outbound(&udp("192.0.2.1", 5555, "192.0.2.99", 7000)).expect("flow");
    let answer = Flow::inbound(&udp("192.0.2.99", 7000, "192.0.2.1", 5555)).expect("flow");
    let admin = transport_sa(
        "192.0.2.1",
        ("192.0.2.0", "192.0.2.255"),
        &["admin1.example.com"],
    );
    let mallory = transport_sa(
        "192.0.2.1",
        ("192.0.2.0", "192.0.2.255"),
        &["mallory.example.com"],
    );
    let mut round = || {
        assert_eq!(c.inbound_protected(&admin_query, &admin), Inbound::Permit);
        assert!(matches!(
            c.inbound_protected(&other_query, &mallory),
            Inbound::Block { .. }
        ));
        let _ = c.outbound(&ours);
        assert_eq!(c.inbound_protected(&answer, &mallory), Inbound::Permit);
    };
    round();
    let n = allocations(|| {
        for _ in 0..PACKETS {
            round();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn coalescing_tcp_and_udp_for_the_tun_does_not_allocate() {
    const MSS: usize = 1000;
    const SEGMENTS: usize = 40;
    const DATAGRAMS: usize = 20;
    let offset = VIRTIO_NET_HDR_LEN + 16;
    let batch = |round: u32| -> Vec<Vec<u8>> {
        let segments = (0..SEGMENTS).map(|k| {
            let seq = round * (SEGMENTS * MSS) as u32 + (k * MSS) as u32;
            tcp("10.78.0.5", 40000, "10.77.0.1", 5201, seq, &[7u8; MSS])
        });
        // A QUIC-like flow inside the tunnel, beside the TCP one.
        let datagrams =
            (0..DATAGRAMS).map(|_| udp_checked("10.78.0.5", 443, "10.77.0.1", 50000, &[9u8; MSS]));
        segments
            .chain(datagrams)
            .map(|p| {
                let mut b = vec![0u8; offset];
                b.extend_from_slice(&p);
                b
            })
            .collect()
    };
    let mut gro = TunGro::new();
    let mut first = batch(0);
    gro.coalesce(&mut first, offset, true).expect("coalesce");
    let mut writes = 0;
    gro.for_each_write(&first, offset, |_| writes += 1);
    assert_eq!(
        writes, 2,
        "an aggregate of the {SEGMENTS} segments, one of the datagrams"
    );
    // Later batches, made before measuring: only the coalescing is counted.
    let mut batches: Vec<Vec<Vec<u8>>> = (1..=20).map(batch).collect();
    let mut written = 0usize;
    let n = allocations(|| {
        for bufs in &mut batches {
            gro.coalesce(bufs, offset, true).expect("coalesce");
            gro.for_each_write(bufs, offset, |iov: &[IoSlice<'_>]| {
                written += iov.iter().map(|s| s.len()).sum::<usize>();
            });
        }
    });
    assert_eq!(n, 0);
    assert!(
        written >= 20 * (SEGMENTS + DATAGRAMS) * MSS,
        "every payload was written"
    );
}

#[test]
fn splitting_the_tuns_aggregates_does_not_allocate() {
    const MSS: u16 = 1348;
    let aggregate = tcp(
        "10.78.0.5",
        40000,
        "10.77.0.1",
        5201,
        1,
        &[7u8; 48 * 1348 - 9],
    );
    // The virtio-net header of a TCPv4 aggregate.
    let hdr = VirtioNetHdr {
        flags: 1,
        gso_type: 1,
        hdr_len: 40,
        gso_size: MSS,
        csum_start: 20,
        csum_offset: 16,
    };
    let mut read = vec![0u8; VIRTIO_NET_HDR_LEN];
    hdr.encode(&mut read).expect("room for the header");
    read.extend_from_slice(&aggregate);
    let mut bufs = vec![vec![0u8; 1600]; 64];
    let mut sizes = vec![0usize; 64];
    let mut segments = 0;
    let n = allocations(|| {
        for _ in 0..50 {
            segments += tun_gso::split(&read, &mut bufs, &mut sizes, 64).expect("split");
        }
    });
    assert_eq!(n, 0);
    assert_eq!(segments, 50 * 48);
}
