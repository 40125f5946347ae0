//! Behaviour of the SA engine beyond round trips: sequence exhaustion, lifetimes, SPI
//! lookup, tunnel header policies (DF, DSCP, ECN), TFC padding, IPv6 extension headers,
//! AH+ESP bundles and the counters.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{PairSpec, ROOM, keymat, open, pair, seal, udp_packet, with_room};
use palisade_esp::lifetime::{Expiry, Lifetime, LifetimeLimits};
use palisade_esp::{
    ConfigError, DfPolicy, Direction, DropReason, EspError, EspSuite, IntegId, Mode, Packet,
    SaBundle, SaConfig, SaTransform, Sad, ecn,
};
use palisade_wire::{Ipv4Header, ipv4, proto};

const GCM: SaTransform = SaTransform::Esp(EspSuite::AES128_GCM16);

fn v4(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

fn spec(transform: SaTransform, mode: Mode) -> PairSpec {
    PairSpec {
        transform,
        mode,
        a: v4(1),
        b: v4(2),
        esn: false,
        udp: None,
        tfc_pad_to: None,
        window: 1024,
    }
}

#[test]
fn sequence_numbers_never_wrap() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Transport), 0x1001, now);
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    let sa = p.a.get_mut_for_test(p.out).expect("sa");
    sa.set_outbound_sequence(u64::from(u32::MAX) - 1);
    let mut buf = with_room(&pkt);
    let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
    let last =
        p.a.encapsulate(p.out, &mut packet, now)
            .expect("last packet");
    assert_eq!(last.seq, u64::from(u32::MAX));
    assert!(
        last.soft_expired,
        "close to exhaustion the SA asks for a rekey"
    );
    assert_eq!(seal(&mut p, &pkt, now), Err(EspError::SequenceExhausted));
    assert_eq!(p.a.drops().get(DropReason::LifetimeExpired), 1);
    let counters = p.a.get(p.out).expect("sa").counters();
    assert_eq!(counters.packets, 1);
    assert_eq!(counters.drops.get(DropReason::LifetimeExpired), 1);
}

#[test]
fn esn_continues_past_2_32() {
    let now = Instant::now();
    let mut s = spec(GCM, Mode::Transport);
    s.esn = true;
    let mut p = pair(&s, 0x1002, now);
    p.a.get_mut_for_test(p.out)
        .expect("sa")
        .set_outbound_sequence(u64::from(u32::MAX) - 2);
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    for _ in 0..5 {
        let wire = seal(&mut p, &pkt, now).expect("seal");
        assert_eq!(open(&mut p.b, &wire, now).expect("open"), pkt);
    }
    assert_eq!(p.a.get(p.out).expect("sa").sequence(), (1 << 32) + 2);
    assert_eq!(p.b.get(p.inb).expect("sa").sequence(), (1 << 32) + 2);
}

#[test]
fn packet_and_byte_lifetimes() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Transport), 0x1003, now);
    let lifetime = Lifetime {
        soft: LifetimeLimits {
            packets: Some(2),
            ..LifetimeLimits::default()
        },
        hard: LifetimeLimits {
            packets: Some(3),
            ..LifetimeLimits::default()
        },
    };
    let mut cfg = p.a.remove(p.out).expect("remove");
    cfg.lifetime = lifetime;
    p.out =
        p.a.install(cfg, &keymat(GCM_KEYLEN, 0x1003u32 as u8), now)
            .expect("install");
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    let mut soft = Vec::new();
    for _ in 0..3 {
        let mut buf = with_room(&pkt);
        let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
        soft.push(
            p.a.encapsulate(p.out, &mut packet, now)
                .expect("seal")
                .soft_expired,
        );
    }
    assert_eq!(soft, [false, true, true]);
    assert_eq!(seal(&mut p, &pkt, now), Err(EspError::LifetimeExpired));
}

const GCM_KEYLEN: usize = 20;

#[test]
fn time_lifetimes_are_polled_once_each() {
    let t0 = Instant::now();
    let mut sad = Sad::new();
    let mut cfg = SaConfig::new(0x2000, Direction::Outbound, GCM, v4(1), v4(2));
    cfg.lifetime = Lifetime {
        soft: LifetimeLimits {
            time: Some(Duration::from_secs(10)),
            ..LifetimeLimits::default()
        },
        hard: LifetimeLimits {
            time: Some(Duration::from_secs(20)),
            ..LifetimeLimits::default()
        },
    };
    let h = sad
        .install(cfg, &keymat(GCM_KEYLEN, 1), t0)
        .expect("install");
    assert_eq!(sad.next_deadline(), Some(t0 + Duration::from_secs(10)));
    let mut events = Vec::new();
    sad.poll_lifetimes(t0 + Duration::from_secs(5), &mut events);
    assert!(events.is_empty());
    sad.poll_lifetimes(t0 + Duration::from_secs(11), &mut events);
    sad.poll_lifetimes(t0 + Duration::from_secs(12), &mut events);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].sa, events[0].expiry), (h, Expiry::NewlySoft));
    sad.poll_lifetimes(t0 + Duration::from_secs(21), &mut events);
    sad.poll_lifetimes(t0 + Duration::from_secs(22), &mut events);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].expiry, Expiry::HardExpired);
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    let mut buf = with_room(&pkt);
    let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
    assert_eq!(
        sad.encapsulate(h, &mut packet, t0 + Duration::from_secs(23)),
        Err(EspError::LifetimeExpired)
    );
}

#[test]
fn unknown_spi_is_counted() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Transport), 0x1004, now);
    let wire = seal(&mut p, &udp_packet(v4(1), v4(2), 10, 0), now).expect("seal");
    let mut other = Sad::new();
    assert_eq!(
        open(&mut other, &wire, now),
        Err(EspError::UnknownSpi(0x1004))
    );
    assert_eq!(other.drops().get(DropReason::UnknownSpi), 1);
    assert_eq!(other.drops().total(), 1);
}

#[test]
fn colliding_spis_are_told_apart_by_destination() {
    let now = Instant::now();
    let mut sad = Sad::new();
    let k1 = keymat(GCM_KEYLEN, 1);
    let k2 = keymat(GCM_KEYLEN, 2);
    let h1 = sad
        .install(
            SaConfig::new(0x3000, Direction::Inbound, GCM, v4(2), v4(1)),
            &k1,
            now,
        )
        .expect("first");
    let h2 = sad
        .install(
            SaConfig::new(0x3000, Direction::Inbound, GCM, v4(3), v4(1)),
            &k2,
            now,
        )
        .expect("second, other destination");
    assert_eq!(
        sad.install(
            SaConfig::new(0x3000, Direction::Inbound, GCM, v4(3), v4(9)),
            &k2,
            now
        ),
        Err(ConfigError::DuplicateSpi(0x3000))
    );
    for (dst, keys, want) in [(v4(2), &k1, h1), (v4(3), &k2, h2)] {
        let mut tx = Sad::new();
        let out = tx
            .install(
                SaConfig::new(0x3000, Direction::Outbound, GCM, v4(1), dst),
                keys,
                now,
            )
            .expect("outbound");
        let pkt = udp_packet(v4(1), dst, 20, 0);
        let mut buf = with_room(&pkt);
        let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
        tx.encapsulate(out, &mut packet, now).expect("seal");
        let got = sad.decapsulate(&mut packet, now).expect("open");
        assert_eq!(got.sa, want);
        assert_eq!(packet.bytes(), &pkt[..]);
    }
    // Removing one of the pair leaves the other findable, by any destination.
    let esp = palisade_wire::proto::ESP;
    sad.remove(h1).expect("remove first");
    assert_eq!(sad.lookup_inbound(esp, 0x3000, v4(2)), Some(h2));
    assert_eq!(sad.lookup_inbound(esp, 0x3000, v4(3)), Some(h2));
    sad.remove(h2).expect("remove second");
    assert_eq!(sad.lookup_inbound(esp, 0x3000, v4(3)), None);
    let h3 = sad
        .install(
            SaConfig::new(0x3000, Direction::Inbound, GCM, v4(2), v4(1)),
            &k1,
            now,
        )
        .expect("SPI free again");
    assert_eq!(sad.lookup_inbound(esp, 0x3000, v4(2)), Some(h3));
}

#[test]
fn config_is_validated() {
    let now = Instant::now();
    let mut sad = Sad::new();
    let cbc_only = SaTransform::Esp(EspSuite {
        integ: IntegId::None,
        ..EspSuite::AES128_CBC_SHA256_128
    });
    let mut cfg = SaConfig::new(0x4000, Direction::Outbound, cbc_only, v4(1), v4(2));
    assert_eq!(
        sad.install(cfg.clone(), &keymat(16, 0), now),
        Err(ConfigError::Unauthenticated)
    );
    cfg.allow_unauthenticated = true;
    assert!(sad.install(cfg, &keymat(16, 0), now).is_ok());
    assert_eq!(
        sad.install(
            SaConfig::new(255, Direction::Outbound, GCM, v4(1), v4(2)),
            &keymat(20, 0),
            now
        ),
        Err(ConfigError::ReservedSpi(255))
    );
    let mut ah_udp = SaConfig::new(
        0x4001,
        Direction::Outbound,
        SaTransform::Ah(IntegId::HmacSha2_256_128),
        v4(1),
        v4(2),
    );
    ah_udp.udp_encap = Some(Default::default());
    assert_eq!(
        sad.install(ah_udp, &keymat(32, 0), now),
        Err(ConfigError::AhInUdp)
    );
    assert!(matches!(
        sad.install(
            SaConfig::new(0x4002, Direction::Outbound, GCM, v4(1), v4(2)),
            &keymat(19, 0),
            now
        ),
        Err(ConfigError::Suite(_))
    ));
}

#[test]
fn removed_handles_stay_dead() {
    let now = Instant::now();
    let mut sad = Sad::new();
    let cfg = SaConfig::new(0x5000, Direction::Outbound, GCM, v4(1), v4(2));
    let h1 = sad
        .install(cfg.clone(), &keymat(20, 0), now)
        .expect("install");
    sad.remove(h1).expect("remove");
    let h2 = sad.install(cfg, &keymat(20, 0), now).expect("reinstall");
    assert_ne!(h1, h2);
    assert!(sad.get(h1).is_none());
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    let mut buf = with_room(&pkt);
    let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
    assert_eq!(
        sad.encapsulate(h1, &mut packet, now),
        Err(EspError::NoSuchSa)
    );
    assert_eq!(sad.remove(h1), Err(ConfigError::NoSuchSa));
}

#[test]
fn no_room_is_an_error_not_a_panic() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Tunnel), 0x1005, now);
    let pkt = udp_packet(v4(1), v4(2), 10, 0);
    let mut buf = pkt.clone();
    let mut packet = Packet::new(&mut buf, 0, pkt.len());
    assert_eq!(
        p.a.encapsulate(p.out, &mut packet, now),
        Err(EspError::NoRoom)
    );
    let mut packet = Packet::new(&mut buf, 5, pkt.len());
    assert_eq!(
        p.a.encapsulate(p.out, &mut packet, now),
        Err(EspError::NoRoom)
    );
    assert_eq!(p.a.drops().get(DropReason::NoRoom), 2);
}

fn outer_v4(wire: &[u8]) -> Ipv4Header {
    Ipv4Header::parse(wire).expect("outer header")
}

#[test]
fn tunnel_df_and_dscp_policies() {
    let now = Instant::now();
    for (df, inner_df, want) in [
        (DfPolicy::Copy, true, true),
        (DfPolicy::Set, true, true),
        (DfPolicy::Clear, true, false),
    ] {
        let mut p = pair(&spec(GCM, Mode::Tunnel), 0x1006, now);
        let mut cfg = p.a.remove(p.out).expect("remove");
        cfg.df = df;
        cfg.copy_dscp = df != DfPolicy::Set;
        p.out = p.a.install(cfg, &keymat(20, 0x06), now).expect("install");
        let pkt = udp_packet(v4(10), v4(20), 100, (46 << 2) | ecn::ECT0);
        assert_eq!(
            Ipv4Header::parse(&pkt).expect("inner").dont_fragment,
            inner_df
        );
        let wire = seal(&mut p, &pkt, now).expect("seal");
        let outer = outer_v4(&wire);
        assert_eq!(outer.dont_fragment, want, "{df:?}");
        assert_eq!(outer.dscp, if df != DfPolicy::Set { 46 } else { 0 });
        assert_eq!(outer.ecn, ecn::ECT0, "ECN is copied (RFC 6040 normal mode)");
        assert_eq!(outer.protocol, proto::ESP);
        assert_eq!((outer.src, outer.dst), ([192, 0, 2, 1], [192, 0, 2, 2]));
        assert!(ipv4::verify_checksum(&wire));
    }
}

/// Transport mode keeps the packet's own header: the SA's DF policy applies to it, with
/// the checksum right, and the peer opens the packet whatever DF said.
#[test]
fn transport_df_policies() {
    let now = Instant::now();
    for (df, inner_df, want) in [
        (DfPolicy::Copy, true, true),
        (DfPolicy::Copy, false, false),
        (DfPolicy::Set, false, true),
        (DfPolicy::Clear, true, false),
    ] {
        let mut p = pair(&spec(GCM, Mode::Transport), 0x1016, now);
        let mut cfg = p.a.remove(p.out).expect("remove");
        cfg.df = df;
        p.out = p.a.install(cfg, &keymat(20, 0x16), now).expect("install");
        let mut pkt = udp_packet(v4(1), v4(2), 100, 0);
        if !inner_df {
            pkt[6] &= !0x40;
            pkt[10..12].fill(0);
            let sum = palisade_wire::ipv4_header_checksum(&pkt[..20]);
            pkt[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        assert_eq!(
            Ipv4Header::parse(&pkt).expect("inner").dont_fragment,
            inner_df
        );
        let wire = seal(&mut p, &pkt, now).expect("seal");
        let outer = outer_v4(&wire);
        assert_eq!(outer.dont_fragment, want, "{df:?}, inner DF {inner_df}");
        assert_eq!(outer.protocol, proto::ESP);
        assert!(ipv4::verify_checksum(&wire));
        let opened = open(&mut p.b, &wire, now).expect("open");
        assert_eq!(opened[20..], pkt[20..], "the payload comes back");
    }
}

#[test]
fn ecn_at_the_egress_follows_rfc_6040() {
    let now = Instant::now();
    for (inner, outer, want) in [
        (ecn::ECT0, ecn::CE, Ok(ecn::CE)),
        (ecn::ECT0, ecn::ECT1, Ok(ecn::ECT1)),
        (ecn::NOT_ECT, ecn::CE, Err(EspError::EcnConflict)),
        (ecn::NOT_ECT, ecn::ECT0, Ok(ecn::NOT_ECT)),
    ] {
        let mut p = pair(&spec(GCM, Mode::Tunnel), 0x1007, now);
        let pkt = udp_packet(v4(10), v4(20), 40, inner);
        let mut wire = seal(&mut p, &pkt, now).expect("seal");
        // A router on the path marks the outer header (not covered by the ICV).
        ipv4::set_ecn(&mut wire, outer).expect("set ecn");
        ipv4::update_checksum(&mut wire).expect("checksum");
        match (open(&mut p.b, &wire, now), want) {
            (Ok(got), Ok(ecn_want)) => {
                let h = Ipv4Header::parse(&got).expect("inner");
                assert_eq!(h.ecn, ecn_want);
                assert!(ipv4::verify_checksum(&got));
            }
            (Err(e), Err(w)) => {
                assert_eq!(e, w);
                assert_eq!(p.b.drops().get(DropReason::EcnConflict), 1);
            }
            (got, want) => panic!("inner {inner} outer {outer}: got {got:?} want {want:?}"),
        }
    }
}

#[test]
fn tfc_padding_hides_the_length() {
    let now = Instant::now();
    let mut s = spec(GCM, Mode::Tunnel);
    s.tfc_pad_to = Some(1000);
    let mut p = pair(&s, 0x1008, now);
    let mut lens = Vec::new();
    for n in [1, 50, 500, 900] {
        let pkt = udp_packet(v4(10), v4(20), n, 0);
        let mut buf = vec![0u8; ROOM + 1200];
        buf[ROOM..ROOM + pkt.len()].copy_from_slice(&pkt);
        let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
        p.a.encapsulate(p.out, &mut packet, now).expect("seal");
        let wire = packet.bytes().to_vec();
        lens.push(wire.len());
        assert_eq!(open(&mut p.b, &wire, now).expect("open"), pkt);
    }
    assert!(
        lens.iter().all(|l| *l == lens[0]),
        "all padded alike: {lens:?}"
    );
}

/// IPv6 transport mode: ESP goes after Hop-by-Hop, and a Destination Options header
/// that follows stays inside ESP (RFC 4303 §3.1.1).
#[test]
fn ipv6_extension_headers_in_transport_mode() {
    let now = Instant::now();
    let a: IpAddr = "2001:db8::1".parse().expect("addr");
    let b: IpAddr = "2001:db8::2".parse().expect("addr");
    let mut s = spec(GCM, Mode::Transport);
    (s.a, s.b) = (a, b);
    let mut p = pair(&s, 0x1009, now);
    let base = udp_packet(a, b, 33, 0);
    // Insert HBH (PadN) and Destination Options (PadN) between the fixed header and UDP.
    let mut pkt = base[..40].to_vec();
    pkt.extend_from_slice(&[proto::IPV6_OPTS, 0, 1, 4, 0, 0, 0, 0]);
    pkt.extend_from_slice(&[proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
    pkt.extend_from_slice(&base[40..]);
    pkt[6] = proto::HOPOPT;
    let plen = (pkt.len() - 40) as u16;
    pkt[4..6].copy_from_slice(&plen.to_be_bytes());
    let wire = seal(&mut p, &pkt, now).expect("seal");
    assert_eq!(wire[6], proto::HOPOPT);
    assert_eq!(wire[40], proto::ESP, "HBH now announces ESP");
    assert_eq!(
        &wire[48..52],
        &0x1009u32.to_be_bytes(),
        "ESP right after HBH"
    );
    assert_eq!(open(&mut p.b, &wire, now).expect("open"), pkt);
}

#[test]
fn esp_inside_ah_bundle() {
    let now = Instant::now();
    let esp_keys = keymat(20, 1);
    let ah_keys = keymat(32, 2);
    let ah_t = SaTransform::Ah(IntegId::HmacSha2_256_128);
    let (mut tx, mut rx) = (Sad::new(), Sad::new());
    let mk = |spi, dir, t, l, r| SaConfig::new(spi, dir, t, l, r);
    let bundle = SaBundle {
        esp: tx
            .install(
                mk(0x6001, Direction::Outbound, GCM, v4(1), v4(2)),
                &esp_keys,
                now,
            )
            .expect("esp"),
        ah: Some(
            tx.install(
                mk(0x6002, Direction::Outbound, ah_t, v4(1), v4(2)),
                &ah_keys,
                now,
            )
            .expect("ah"),
        ),
    };
    tx.check_bundle(bundle).expect("valid bundle");
    assert!(
        tx.check_bundle(SaBundle {
            esp: bundle.ah.expect("ah"),
            ah: Some(bundle.esp)
        })
        .is_err()
    );
    let in_esp = rx
        .install(
            mk(0x6001, Direction::Inbound, GCM, v4(2), v4(1)),
            &esp_keys,
            now,
        )
        .expect("esp in");
    let in_ah = rx
        .install(
            mk(0x6002, Direction::Inbound, ah_t, v4(2), v4(1)),
            &ah_keys,
            now,
        )
        .expect("ah in");
    let pkt = udp_packet(v4(1), v4(2), 300, 0);
    let mut buf = with_room(&pkt);
    let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
    tx.encapsulate_bundle(bundle, &mut packet, now)
        .expect("seal");
    assert_eq!(outer_v4(packet.bytes()).protocol, proto::AH);
    assert_eq!(packet.bytes()[20], proto::ESP, "AH's next header is ESP");
    let got = rx.decapsulate(&mut packet, now).expect("open");
    assert_eq!((got.sa, got.outer_sa), (in_esp, Some(in_ah)));
    assert_eq!(packet.bytes(), &pkt[..]);
}

#[test]
fn batches_report_each_packet() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Tunnel), 0x100a, now);
    let pkt = udp_packet(v4(10), v4(20), 64, 0);
    // The third packet sits one byte from the start of its buffer: no headroom.
    let starts = [ROOM, ROOM, 1, ROOM];
    let mut bufs: Vec<Vec<u8>> = starts
        .iter()
        .map(|s| {
            let mut b = vec![0u8; s + pkt.len() + ROOM];
            b[*s..s + pkt.len()].copy_from_slice(&pkt);
            b
        })
        .collect();
    let mut pkts: Vec<Packet<'_>> = bufs
        .iter_mut()
        .zip(starts)
        .map(|(b, s)| Packet::new(b, s, pkt.len()))
        .collect();
    let mut results = vec![Err(EspError::NoRoom); 4];
    p.a.encapsulate_batch(p.out, &mut pkts, now, &mut results);
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    assert_eq!(results[2], Err(EspError::NoRoom));
    pkts.remove(2);
    let mut opened = vec![Err(EspError::NoRoom); 3];
    p.b.decapsulate_batch(&mut pkts, now, &mut opened);
    assert!(opened.iter().all(|r| r.is_ok()), "{opened:?}");
    assert!(pkts.iter().all(|x| x.bytes() == &pkt[..]));
}

#[test]
fn transport_mode_refuses_a_packet_of_the_other_family() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Transport), 0x100b, now);
    let a: IpAddr = "2001:db8::1".parse().expect("addr");
    let b: IpAddr = "2001:db8::2".parse().expect("addr");
    assert_eq!(
        seal(&mut p, &udp_packet(a, b, 10, 0), now),
        Err(EspError::Malformed(
            "packet and SA are of different IP families"
        ))
    );
    assert_eq!(p.a.drops().get(DropReason::Malformed), 1);
}

/// RFC 4303 §3.3.4: transport mode protects whole packets. A fragment (IPv4 with MF or an
/// offset, IPv6 with a Fragment header) is refused and counted as `fragment`, which is
/// what an administrator sees when a datagram was larger than the path into the SA.
#[test]
fn transport_mode_refuses_fragments_by_name() {
    let now = Instant::now();
    let mut p = pair(&spec(GCM, Mode::Transport), 0x100c, now);
    let whole = udp_packet(v4(1), v4(2), 100, 0);
    let mut first = whole.clone();
    first[6] |= 0x20; // more fragments
    let mut later = whole.clone();
    later[6..8].copy_from_slice(&185u16.to_be_bytes());
    for (what, pkt) in [("first", &first), ("later", &later)] {
        assert_eq!(seal(&mut p, pkt, now), Err(EspError::Fragment), "{what}");
    }
    assert_eq!(p.a.drops().get(DropReason::Fragment), 2);
    assert_eq!(DropReason::Fragment.name(), "fragment");
    assert!(seal(&mut p, &whole, now).is_ok(), "a whole packet passes");

    let (a, b): (IpAddr, IpAddr) = (
        "2001:db8::1".parse().expect("addr"),
        "2001:db8::2".parse().expect("addr"),
    );
    let mut s = spec(GCM, Mode::Transport);
    (s.a, s.b) = (a, b);
    let mut p6 = pair(&s, 0x100d, now);
    let base = udp_packet(a, b, 40, 0);
    // A Fragment header (offset 0, more fragments) between the fixed header and UDP.
    let mut pkt = base[..40].to_vec();
    pkt.extend_from_slice(&[proto::UDP, 0, 0, 1, 0, 0, 0x12, 0x34]);
    pkt.extend_from_slice(&base[40..]);
    pkt[6] = proto::IPV6_FRAG;
    let plen = (pkt.len() - 40) as u16;
    pkt[4..6].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(seal(&mut p6, &pkt, now), Err(EspError::Fragment));
    assert_eq!(p6.a.drops().get(DropReason::Fragment), 1);

    // Tunnel mode carries fragments.
    let mut t = pair(&spec(GCM, Mode::Tunnel), 0x100e, now);
    assert!(seal(&mut t, &first, now).is_ok());
}

#[test]
fn packets_that_would_outgrow_ipv4_are_refused() {
    let now = Instant::now();
    let big = udp_packet(v4(1), v4(2), 65_500, 0);
    for t in [GCM, SaTransform::Ah(IntegId::HmacSha2_256_128)] {
        let mut p = pair(&spec(t, Mode::Transport), 0x100c, now);
        assert!(
            matches!(seal(&mut p, &big, now), Err(EspError::TooLong)),
            "{t:?}"
        );
        assert_eq!(p.a.drops().get(DropReason::TooLong), 1, "{t:?}");
        assert_eq!(DropReason::TooLong.name(), "too_long");
        // A packet that fits still goes through.
        let wire = seal(&mut p, &udp_packet(v4(1), v4(2), 60_000, 0), now).expect("fits");
        assert_eq!(open(&mut p.b, &wire, now).expect("open").len(), 60_028);
    }
}
