//! Transport mode through a masquerading NAT over the simulated network (RFC 7296
//! §2.23.1): A at a private address behind a NAT that rewrites its address and ports,
//! B public, whose policy names the NAT's address (all B ever sees of A). Each side's
//! CHILD_SA selects the addresses it sees, carries the ones its peer proposed for the
//! checksum fix-up, and ESP sealed by one side opens at the other once the NAT has
//! rewritten it, the UDP checksum inside made right again by palisade-esp's fix-up.
//! Rekeys (CREATE_CHILD_SA) from either side keep the same view.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use palisade_esp::transport_nat::{ChecksumFixup, OriginalAddresses, restore_checksum};
use palisade_esp::{Mode, Packet, Sad, UdpEncap};
use palisade_filter::policy::IpsecProposal;
use palisade_ike::traffic_selector::host;
use palisade_ike::{ChildSa, Event};
use palisade_wire::udp_checksum_v4;

/// A's own address and port, behind the NAT.
const A_PRIVATE: &str = "10.201.0.1:500";
/// The NAT's public address: where A's packets come from, as B sees them.
const NAT_PUBLIC: &str = "203.0.113.9:500";

fn ip(s: &str) -> IpAddr {
    addr(s).ip()
}

/// A's transport-mode rule for B and B's for `a_seen_as`, AES-GCM IKE and ESP.
fn transport_net(a_seen_as: &str, seed: u64) -> Net {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    Net::new(
        transport_policy(B, main_mode("nat", &p), qm.clone()),
        transport_policy(a_seen_as, main_mode("nat", &p), qm),
        seed,
    )
}

/// A behind the NAT initiates to B; both in transport mode.
fn through_nat(seed: u64) -> Net {
    // B's rule names the address it sees A at.
    let mut net = transport_net(NAT_PUBLIC, seed);
    net.nat_offset = Some(20000);
    net.nat_address = Some((ip(A_PRIVATE), ip(NAT_PUBLIC)));
    net.acquire_between(A_PRIVATE, B);
    net.run(Duration::from_secs(5));
    net
}

/// The last CHILD_SA installed on a side.
fn last(events: &[Event]) -> &ChildSa {
    children(events).last().copied().expect("a CHILD_SA")
}

/// Each side selects what it sees and knows what its peer put in its packets.
fn assert_views(a: &ChildSa, b: &ChildSa) {
    for c in [a, b] {
        assert_eq!(c.mode, Mode::Transport, "{c:?}");
        assert!(c.udp_encap.is_some(), "no ESP in UDP: {c:?}");
    }
    assert_eq!(a.local_selectors, vec![host(ip(A_PRIVATE))], "{a:?}");
    assert_eq!(a.remote_selectors, vec![host(ip(B))], "{a:?}");
    assert_eq!(b.local_selectors, vec![host(ip(B))], "{b:?}");
    assert_eq!(b.remote_selectors, vec![host(ip(NAT_PUBLIC))], "{b:?}");
    // B sends to the NAT's address; A learned that it is seen there.
    assert_eq!(
        a.nat_original,
        Some(OriginalAddresses {
            source: ip(B),
            destination: ip(NAT_PUBLIC),
        })
    );
    // A sends from its own address.
    assert_eq!(
        b.nat_original,
        Some(OriginalAddresses {
            source: ip(A_PRIVATE),
            destination: ip(B),
        })
    );
}

/// An address and port the NAT puts in place of a packet's, or none.
type Rewrite = Option<(IpAddr, u16)>;

/// What the NAT does to an ESP-in-UDP packet: one of its addresses and ports replaced.
/// The outer UDP checksum of ESP in UDP is zero (RFC 3948 §2.1) and stays zero; the
/// IPv4 header checksum is not what this test is about and is left to the receiver.
fn nat_rewrite(wire: &mut [u8], src: Rewrite, dst: Rewrite) {
    if let Some((IpAddr::V4(a), port)) = src {
        wire[12..16].copy_from_slice(&a.octets());
        wire[20..22].copy_from_slice(&port.to_be_bytes());
    }
    if let Some((IpAddr::V4(a), port)) = dst {
        wire[16..20].copy_from_slice(&a.octets());
        wire[22..24].copy_from_slice(&port.to_be_bytes());
    }
}

fn udp_checksum_ok(packet: &[u8]) -> bool {
    let src: [u8; 4] = packet[12..16].try_into().expect("src");
    let dst: [u8; 4] = packet[16..20].try_into().expect("dst");
    let mut udp = packet[20..].to_vec();
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    udp[6] = 0;
    udp[7] = 0;
    udp_checksum_v4(src, dst, &udp) == stored
}

/// A packet sealed on `from`'s outbound SA, rewritten by the NAT, opened on `to`'s
/// inbound SA: the UDP checksum inside is wrong until `to`'s fix-up, right after.
fn crosses(
    (from_sad, out, from): (&mut Sad, palisade_esp::SaHandle, &ChildSa),
    (to_sad, to): (&mut Sad, &ChildSa),
    nat: (Rewrite, Rewrite),
    now: Instant,
) {
    let pkt = udp_packet_between(from.local, from.remote);
    let mut buf = vec![0u8; 256 + pkt.len() + 512];
    buf[256..256 + pkt.len()].copy_from_slice(&pkt);
    let mut p = Packet::new(&mut buf, 256, pkt.len());
    from_sad.encapsulate(out, &mut p, now).expect("encapsulate");
    let mut wire = p.bytes().to_vec();
    nat_rewrite(&mut wire, nat.0, nat.1);
    let mut buf = vec![0u8; 256 + wire.len() + 512];
    buf[256..256 + wire.len()].copy_from_slice(&wire);
    let mut p = Packet::new(&mut buf, 256, wire.len());
    to_sad
        .decapsulate(&mut p, now)
        .expect("the peer opens what crossed the NAT");
    let mut opened = p.bytes().to_vec();
    assert!(
        !udp_checksum_ok(&opened),
        "the checksum survived the NAT: nothing to fix"
    );
    let original = to.nat_original.expect("original addresses");
    assert_eq!(
        restore_checksum(&mut opened, &original),
        Ok(ChecksumFixup::Adjusted)
    );
    assert!(udp_checksum_ok(&opened), "fixed up: {opened:02x?}");
    // All of UDP but its checksum is what was sent.
    assert_eq!(
        &opened[20..26],
        &pkt[20..26],
        "the UDP header is the one sent"
    );
    assert_eq!(&opened[28..], &pkt[28..], "the payload is the one sent");
}

fn udp_packet_between(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only here");
    };
    let mut udp = vec![0u8; 8 + 64];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&5001u16.to_be_bytes());
    let len = udp.len() as u16;
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = udp_checksum_v4(s.octets(), d.octets(), &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&udp);
    p
}

/// Both SAs of each side installed, and one packet each way across the NAT.
fn prove_across_nat(a: &ChildSa, b: &ChildSa, now: Instant) {
    let (mut sad_a, mut sad_b) = (Sad::new(), Sad::new());
    let mut out = Vec::new();
    for (sad, child) in [(&mut sad_a, a), (&mut sad_b, b)] {
        let [inbound, outbound] = child.sa_configs();
        sad.install(inbound.config, inbound.keymat, now)
            .expect("inbound");
        out.push(
            sad.install(outbound.config, outbound.keymat, now)
                .expect("outbound"),
        );
    }
    let Some(UdpEncap {
        local_port: b_port,
        remote_port: mapped,
    }) = b.udp_encap
    else {
        panic!("B without ESP in UDP");
    };
    // A -> B: the NAT puts its address and the mapped port in place of A's.
    crosses(
        (&mut sad_a, out[0], a),
        (&mut sad_b, b),
        (Some((ip(NAT_PUBLIC), mapped)), None),
        now,
    );
    // B -> A: sent to the NAT's address, delivered to A's own.
    let a_port = a.udp_encap.map(|u| u.local_port).unwrap_or_default();
    crosses(
        (&mut sad_b, out[1], b),
        (&mut sad_a, a),
        (None, Some((ip(A_PRIVATE), a_port))),
        now,
    );
    let _ = b_port;
}

#[test]
fn transport_mode_through_a_nat_selects_the_addresses_each_side_sees() {
    let net = through_nat(11);
    assert!(
        failures(&net.events_a).is_empty() && failures(&net.events_b).is_empty(),
        "A: {:?}\nB: {:?}",
        failures(&net.events_a),
        failures(&net.events_b)
    );
    let (a, b) = (last(&net.events_a), last(&net.events_b));
    assert_views(a, b);
    prove_across_nat(a, b, net.now);
}

#[test]
fn rekeys_from_either_side_keep_the_substituted_selectors() {
    let mut net = through_nat(12);
    for by_b in [true, false] {
        let (a, b) = (last(&net.events_a).clone(), last(&net.events_b).clone());
        let (na, nb) = (children(&net.events_a).len(), children(&net.events_b).len());
        let started = if by_b {
            net.b.rekey_child_sa(net.now, b.ike_sa, b.inbound_spi)
        } else {
            net.a.rekey_child_sa(net.now, a.ike_sa, a.inbound_spi)
        };
        assert!(started, "rekey by {}", if by_b { "B" } else { "A" });
        net.run(Duration::from_secs(5));
        assert_eq!(children(&net.events_a).len(), na + 1, "{:?}", net.events_a);
        assert_eq!(children(&net.events_b).len(), nb + 1, "{:?}", net.events_b);
        let (a2, b2) = (last(&net.events_a), last(&net.events_b));
        assert_ne!(a2.inbound_spi, a.inbound_spi);
        assert_views(a2, b2);
        prove_across_nat(a2, b2, net.now);
    }
}

#[test]
fn without_a_nat_nothing_is_substituted() {
    let mut net = transport_net(A, 13);
    net.acquire();
    net.run(Duration::from_secs(5));
    let (a, b) = (last(&net.events_a), last(&net.events_b));
    assert!(a.udp_encap.is_none() && b.udp_encap.is_none());
    assert_eq!(a.local_selectors, vec![host(ip(A))]);
    assert_eq!(b.remote_selectors, vec![host(ip(A))]);
    assert_eq!((a.nat_original, b.nat_original), (None, None));
}
