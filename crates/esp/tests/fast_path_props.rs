//! Property: the fast paths (`encap_fast.rs`, `decap_fast.rs`) are invisible. Two SADs
//! hold the same SAs, one with its fast paths switched off; the same packets, buffers
//! and clock readings go through both, and the results, every byte of the buffers, the
//! packet ranges, and the SA state (sequence number, replay window, counters, lifetime
//! state, soft and hard expiry events) stay identical. The packets cover the fast
//! shapes and their edges: lifetime limits within a packet or two, sequence numbers
//! about to run out, too little headroom or tailroom, malformed inner headers, outer
//! headers the fast path hands back, replayed, tampered and truncated packets, and
//! authentic packets with bad padding, bad Next Headers, dummies and bad inner packets.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{keymat, udp_packet};
use palisade_crypto::EspTransform;
use palisade_esp::lifetime::{Lifetime, LifetimeLimits};
use palisade_esp::{
    DfPolicy, Direction, EspSuite, LifetimeEvent, Mode, Packet, SaConfig, SaHandle, SaTransform,
    Sad, UdpEncap,
};
use palisade_wire::{Ipv4Header, proto};
use proptest::prelude::*;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const SPI: u32 = 0x0102_0304;

/// The SA options that matter to the fast paths; some shapes have none (TFC, GMAC,
/// transport mode), so that the switch is shown to change nothing there either.
#[derive(Debug, Clone)]
struct Shape {
    suite: EspSuite,
    mode: Mode,
    udp: bool,
    esn: bool,
    window: u32,
    df: DfPolicy,
    copy_dscp: bool,
    tfc: Option<u16>,
    lifetime: Lifetime,
}

/// Packets of `COMMON_PAYLOAD` bytes of UDP payload are `COMMON_LEN` bytes long inside:
/// byte limits at multiples of it are reached exactly, not just crossed.
const COMMON_PAYLOAD: usize = 8;
const COMMON_LEN: u64 = 28 + COMMON_PAYLOAD as u64;

fn limits() -> impl Strategy<Value = LifetimeLimits> {
    (
        proptest::option::of(prop_oneof![
            0u64..6000,
            (0u64..12).prop_map(|k| k * COMMON_LEN)
        ]),
        proptest::option::of(0u64..8),
        proptest::option::of(0u64..6),
    )
        .prop_map(|(bytes, packets, secs)| LifetimeLimits {
            bytes,
            packets,
            time: secs.map(Duration::from_secs),
        })
}

/// Soft limits strictly below hard ones where both exist (what `validate` asks).
fn lifetime() -> impl Strategy<Value = Lifetime> {
    prop_oneof![
        2 => Just(Lifetime::default()),
        3 => (limits(), limits()).prop_map(|(soft, hard)| {
            let below = |s: Option<u64>, h: Option<u64>| match (s, h) {
                (Some(s), Some(h)) if s >= h => h.checked_sub(1),
                (s, _) => s,
            };
            let time = match (soft.time, hard.time) {
                (Some(s), Some(h)) if s >= h => h.checked_sub(Duration::from_secs(1)),
                (s, _) => s,
            };
            Lifetime {
                soft: LifetimeLimits {
                    bytes: below(soft.bytes, hard.bytes),
                    packets: below(soft.packets, hard.packets),
                    time,
                },
                hard,
            }
        }),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop_oneof![
            6 => proptest::sample::select(vec![
                EspSuite::AES128_GCM16,
                EspSuite::AES256_GCM16,
                EspSuite::CHACHA20_POLY1305,
            ]),
            1 => proptest::sample::select(vec![
                EspSuite::AES128_GMAC,
                EspSuite::AES128_CBC_SHA256_128,
            ]),
        ],
        prop_oneof![6 => Just(Mode::Tunnel), 1 => Just(Mode::Transport)],
        any::<bool>(),
        any::<bool>(),
        proptest::sample::select(vec![0u32, 32, 64, 1024]),
        proptest::sample::select(vec![DfPolicy::Copy, DfPolicy::Set, DfPolicy::Clear]),
        any::<bool>(),
        prop_oneof![6 => Just(None), 1 => (0u16..600).prop_map(Some)],
        lifetime(),
    )
        .prop_map(
            |(suite, mode, udp, esn, window, df, copy_dscp, tfc, lifetime)| Shape {
                suite,
                mode,
                udp,
                esn,
                window,
                df,
                copy_dscp,
                tfc: (mode == Mode::Tunnel).then_some(tfc).flatten(),
                lifetime,
            },
        )
}

fn config(shape: &Shape, direction: Direction) -> SaConfig {
    let (local, remote) = match direction {
        Direction::Outbound => (A, B),
        Direction::Inbound => (B, A),
    };
    let mut c = SaConfig::new(
        SPI,
        direction,
        SaTransform::Esp(shape.suite),
        IpAddr::V4(local),
        IpAddr::V4(remote),
    );
    c.mode = shape.mode;
    c.esn = shape.esn;
    c.replay_window = shape.window;
    c.df = shape.df;
    c.copy_dscp = shape.copy_dscp;
    c.tfc_pad_to = shape.tfc;
    c.lifetime = shape.lifetime;
    c.ttl = 57;
    c.udp_encap = shape.udp.then_some(match direction {
        Direction::Outbound => UdpEncap {
            local_port: 4500,
            remote_port: 40123,
        },
        Direction::Inbound => UdpEncap {
            local_port: 40123,
            remote_port: 4500,
        },
    });
    c
}

/// The same SA in two SADs, the second with its fast path off.
struct Twins {
    fast: Sad,
    general: Sad,
    handle: SaHandle,
}

fn twins(shape: &Shape, direction: Direction, now: Instant) -> Twins {
    let keys = keymat(shape.suite.keymat_len(), 9);
    let mut fast = Sad::new();
    let mut general = Sad::new();
    let handle = fast
        .install(config(shape, direction), &keys, now)
        .expect("install");
    let h2 = general
        .install(config(shape, direction), &keys, now)
        .expect("install");
    assert_eq!(handle, h2);
    general
        .get_mut_for_test(h2)
        .expect("sa")
        .set_fast_path_for_test(false);
    Twins {
        fast,
        general,
        handle,
    }
}

impl Twins {
    /// Everything observable about the two SADs is equal; with `poll`, the timer-driven
    /// lifetime check runs on both too (not always, so that packets also find limits
    /// first).
    fn assert_same(&mut self, now: Instant, poll: bool) -> Result<(), TestCaseError> {
        let f = self.fast.get(self.handle).expect("sa");
        let g = self.general.get(self.handle).expect("sa");
        prop_assert_eq!(f.sequence(), g.sequence());
        prop_assert_eq!(f.counters(), g.counters());
        prop_assert_eq!(f.lifetime(), g.lifetime());
        prop_assert!(f.replay_window_for_test() == g.replay_window_for_test());
        prop_assert_eq!(self.fast.drops(), self.general.drops());
        prop_assert_eq!(
            self.fast.next_deadline_walk(),
            self.general.next_deadline_walk()
        );
        // The SAD's kept deadline may be early, never late.
        for sad in [&self.fast, &self.general] {
            match (sad.next_deadline(), sad.next_deadline_walk()) {
                (_, None) => {}
                (Some(kept), Some(walked)) => prop_assert!(kept <= walked),
                (None, Some(walked)) => prop_assert!(false, "deadline {walked:?} forgotten"),
            }
        }
        if !poll {
            return Ok(());
        }
        let (mut ef, mut eg): (Vec<LifetimeEvent>, Vec<LifetimeEvent>) = (vec![], vec![]);
        self.fast.poll_lifetimes(now, &mut ef);
        self.general.poll_lifetimes(now, &mut eg);
        prop_assert_eq!(ef, eg);
        Ok(())
    }
}

/// One packet in a buffer: headroom, the bytes, trailing junk, tailroom.
fn framed(bytes: &[u8], head: usize, tail: usize) -> (Vec<u8>, usize, usize) {
    let mut buf = vec![0xA5u8; head + bytes.len() + tail];
    buf[head..head + bytes.len()].copy_from_slice(bytes);
    (buf, head, bytes.len())
}

/// Ways to spoil an inner packet before encapsulation.
#[derive(Debug, Clone)]
enum InnerFault {
    None,
    /// Overwrite the version/IHL byte.
    FirstByte(u8),
    /// Overwrite the total length.
    TotalLen(u16),
    /// An IPv6 packet (tunnel mode takes it, the fast path does not).
    Ipv6,
    /// Too short for any header.
    Truncate(usize),
}

#[derive(Debug, Clone)]
struct OutPacket {
    payload: usize,
    tos: u8,
    df: bool,
    fault: InnerFault,
    junk: usize,
    head: usize,
    tail: usize,
    advance_ms: u64,
}

fn out_packet() -> impl Strategy<Value = OutPacket> {
    (
        // The common size; small and usual ones; sizes whose ESP packet is just
        // within or beyond the 65,535 bytes IPv4 allows; the largest there are.
        prop_oneof![
            2 => Just(COMMON_PAYLOAD),
            2 => 0usize..1500,
            1 => 65_440usize..65_470,
            1 => 65_000usize..65_508,
        ],
        any::<u8>(),
        any::<bool>(),
        prop_oneof![
            8 => Just(InnerFault::None),
            1 => prop_oneof![0x40u8..=0x4f, any::<u8>()].prop_map(InnerFault::FirstByte),
            1 => prop_oneof![0u16..80, any::<u16>()].prop_map(InnerFault::TotalLen),
            1 => Just(InnerFault::Ipv6),
            1 => (0usize..20).prop_map(InnerFault::Truncate),
        ],
        prop_oneof![3 => Just(0usize), 1 => 0usize..9],
        prop_oneof![4 => Just(96usize), 1 => 0usize..60],
        prop_oneof![4 => Just(64usize), 1 => 0usize..40],
        prop_oneof![3 => Just(0u64), 1 => 0u64..1500],
    )
        .prop_map(
            |(payload, tos, df, fault, junk, head, tail, advance_ms)| OutPacket {
                payload,
                tos,
                df,
                fault,
                junk,
                head,
                tail,
                advance_ms,
            },
        )
}

fn inner_bytes(p: &OutPacket) -> Vec<u8> {
    let mut bytes = match p.fault {
        InnerFault::Ipv6 => udp_packet(
            "fd00::1".parse().expect("addr"),
            "fd00::2".parse().expect("addr"),
            p.payload.min(1400),
            p.tos,
        ),
        _ => {
            let mut b = udp_packet(
                IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
                p.payload,
                p.tos,
            );
            if !p.df {
                b[6] &= !0x40;
            }
            b
        }
    };
    match p.fault {
        InnerFault::FirstByte(v) => bytes[0] = v,
        InnerFault::TotalLen(v) => bytes[2..4].copy_from_slice(&v.to_be_bytes()),
        InnerFault::Truncate(n) => bytes.truncate(n),
        InnerFault::None | InnerFault::Ipv6 => {}
    }
    bytes.extend(std::iter::repeat_n(0x5Au8, p.junk));
    bytes
}

fn start_seq(esn: bool) -> impl Strategy<Value = u64> {
    let near_end = if esn {
        u64::MAX - 4
    } else {
        u64::from(u32::MAX) - 4
    };
    prop_oneof![
        4 => Just(0u64),
        1 => Just(near_end),
        1 => Just(near_end - (1 << 20)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encapsulation_is_the_same_with_and_without_the_fast_path(
        (shape, seq) in shape().prop_flat_map(|s| { let e = s.esn; (Just(s), start_seq(e)) }),
        packets in proptest::collection::vec(out_packet(), 1..12),
    ) {
        let t0 = Instant::now();
        let mut t = twins(&shape, Direction::Outbound, t0);
        for sad in [&mut t.fast, &mut t.general] {
            sad.get_mut_for_test(t.handle).expect("sa").set_outbound_sequence(seq);
        }
        let mut now = t0;
        for p in &packets {
            now += Duration::from_millis(p.advance_ms);
            let bytes = inner_bytes(p);
            let (mut bf, start, len) = framed(&bytes, p.head, p.tail);
            let mut bg = bf.clone();
            let mut pf = Packet::new(&mut bf, start, len);
            let mut pg = Packet::new(&mut bg, start, len);
            let rf = t.fast.encapsulate(t.handle, &mut pf, now);
            let rg = t.general.encapsulate(t.handle, &mut pg, now);
            prop_assert_eq!(rf, rg);
            prop_assert_eq!((pf.start, pf.len), (pg.start, pg.len));
            prop_assert!(bf == bg, "buffers differ for {:?}", p);
            t.assert_same(now, p.advance_ms % 2 == 1)?;
        }
    }
}

/// What happens to a packet on its way to the receiver.
#[derive(Debug, Clone)]
enum Wire {
    /// Delivered as sent.
    Intact,
    /// Sent again (a replay once the first copy got through).
    Again(usize),
    /// One byte XORed with a non-zero value.
    Flip(usize, u8),
    /// Cut short.
    Truncate(usize),
    /// The outer IHL set to carry options (shifting nothing: a malformed header).
    Ihl(u8),
    /// Fragment bits set.
    Fragment(u16),
    /// The outer ECN field set to these bits.
    OuterEcn(u8),
    /// The outer UDP length field overwritten (ESP in UDP only).
    UdpLen(u16),
    /// The last bytes cut off, with the outer lengths fixed to match.
    Shorten(usize),
    /// Bytes past the outer header's length (Ethernet padding, say).
    Trailing(usize),
    /// Authentic ESP around chosen plaintext (see `Crafted`).
    Crafted(Crafted),
}

/// ESP sealed with the SA's keys around a plaintext the sender would never produce.
#[derive(Debug, Clone)]
struct Crafted {
    /// The bytes before the padding; a valid inner IPv4 header first when `header`.
    body: Vec<u8>,
    header: Option<(u8, u16)>,
    pad_len: u8,
    pad_ok: bool,
    next_header: u8,
}

fn crafted() -> impl Strategy<Value = Crafted> {
    (
        proptest::collection::vec(any::<u8>(), 0..80),
        proptest::option::of((any::<u8>(), 0u16..120)),
        0u8..12,
        prop_oneof![3 => Just(true), 1 => Just(false)],
        prop_oneof![
            3 => Just(proto::IPIP),
            1 => Just(proto::IPV6),
            1 => Just(proto::IPV6_NONXT),
            1 => any::<u8>()
        ],
    )
        .prop_map(|(body, header, pad_len, pad_ok, next_header)| Crafted {
            body,
            header,
            pad_len,
            pad_ok,
            next_header,
        })
}

fn wire() -> impl Strategy<Value = Wire> {
    prop_oneof![
        12 => Just(Wire::Intact),
        2 => (0usize..16).prop_map(Wire::Again),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Wire::Flip(i, x)),
        1 => any::<usize>().prop_map(Wire::Truncate),
        1 => (6u8..16).prop_map(Wire::Ihl),
        1 => (1u16..0x4000).prop_map(Wire::Fragment),
        2 => (0u8..4).prop_map(Wire::OuterEcn),
        1 => prop_oneof![0u16..16, any::<u16>()].prop_map(Wire::UdpLen),
        1 => (1usize..40).prop_map(Wire::Shorten),
        1 => (1usize..20).prop_map(Wire::Trailing),
        3 => crafted().prop_map(Wire::Crafted),
    ]
}

#[derive(Debug, Clone)]
struct InPacket {
    payload: usize,
    tos: u8,
    wire: Wire,
    /// Packets sealed but lost before this one (moves the window on).
    skip: u64,
    head: usize,
    advance_ms: u64,
}

fn in_packet() -> impl Strategy<Value = InPacket> {
    (
        prop_oneof![2 => Just(COMMON_PAYLOAD), 1 => 0usize..64, 1 => 0usize..1500],
        any::<u8>(),
        wire(),
        prop_oneof![6 => Just(0u64), 1 => 0u64..100, 1 => 1000u64..5000],
        prop_oneof![4 => Just(64usize), 1 => 0usize..64],
        prop_oneof![3 => Just(0u64), 1 => 0u64..1500],
    )
        .prop_map(|(payload, tos, wire, skip, head, advance_ms)| InPacket {
            payload,
            tos,
            wire,
            skip,
            head,
            advance_ms,
        })
}

/// Wraps `esp` (header to ICV) in the outer IPv4 header (and UDP) the sender builds.
fn outer_wrap(shape: &Shape, esp: &[u8]) -> Vec<u8> {
    let udp = if shape.udp { 8 } else { 0 };
    let total = 20 + udp + esp.len();
    let mut p = vec![0u8; total];
    Ipv4Header {
        dscp: 0,
        ecn: 0,
        total_len: total as u16,
        identification: 7,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        ttl: 57,
        protocol: if shape.udp { proto::UDP } else { proto::ESP },
        checksum: 0,
        src: A.octets(),
        dst: B.octets(),
        header_len: 20,
    }
    .write(&mut p)
    .expect("ipv4");
    if shape.udp {
        p[20..22].copy_from_slice(&4500u16.to_be_bytes());
        p[22..24].copy_from_slice(&40123u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + esp.len()) as u16).to_be_bytes());
    }
    p[20 + udp..].copy_from_slice(esp);
    p
}

/// ESP with the SA's keys around the crafted plaintext, aligned for the suite.
fn seal_crafted(shape: &Shape, c: &Crafted, seq: u64) -> Vec<u8> {
    let mut body = c.body.clone();
    if let Some((tos, extra)) = c.header {
        let mut h = udp_packet(
            IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
            usize::from(extra),
            tos,
        );
        // The declared length may exceed what follows: a bad inner packet.
        let declared = h.len() as u16 + extra % 7;
        h[2..4].copy_from_slice(&declared.to_be_bytes());
        body.splice(0..0, h);
    }
    let align = shape.suite.align();
    // Extend the body so that body + padding + trailer is aligned.
    while !(body.len() + usize::from(c.pad_len) + 2).is_multiple_of(align) {
        body.push(0x33);
    }
    let (iv, icv) = (shape.suite.iv_len(), shape.suite.icv_len());
    let mut esp = vec![0u8; 8 + iv];
    esp[..4].copy_from_slice(&SPI.to_be_bytes());
    esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
    esp.extend_from_slice(&body);
    for i in 0..c.pad_len {
        esp.push(if c.pad_ok { i + 1 } else { i ^ 0x80 });
    }
    esp.push(c.pad_len);
    esp.push(c.next_header);
    esp.extend(std::iter::repeat_n(0u8, icv));
    let keys = keymat(shape.suite.keymat_len(), 9);
    EspTransform::new(shape.suite, &keys)
        .expect("transform")
        .seal(&mut esp, seq, shape.esn)
        .expect("seal");
    outer_wrap(shape, &esp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decapsulation_is_the_same_with_and_without_the_fast_path(
        shape in shape(),
        packets in proptest::collection::vec(in_packet(), 1..16),
    ) {
        let t0 = Instant::now();
        let mut t = twins(&shape, Direction::Inbound, t0);
        // The sender: no lifetime limits, so that it never stops sealing.
        let sender_shape = Shape { lifetime: Lifetime::default(), ..shape.clone() };
        let mut tx = Sad::new();
        let out = tx
            .install(
                config(&sender_shape, Direction::Outbound),
                &keymat(shape.suite.keymat_len(), 9),
                t0,
            )
            .expect("install");
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut seq = 0u64;
        let mut now = t0;
        for p in &packets {
            now += Duration::from_millis(p.advance_ms);
            seq += p.skip;
            tx.get_mut_for_test(out).expect("sa").set_outbound_sequence(seq);
            let inner = udp_packet(
                IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
                p.payload,
                p.tos,
            );
            let mut buf = vec![0u8; 128 + inner.len() + 2048];
            buf[128..128 + inner.len()].copy_from_slice(&inner);
            let mut pkt = Packet::new(&mut buf, 128, inner.len());
            tx.encapsulate(out, &mut pkt, t0).expect("sender seals");
            seq += 1;
            let mut wire = pkt.bytes().to_vec();
            sent.push(wire.clone());
            match &p.wire {
                Wire::Intact => {}
                Wire::Again(back) => {
                    wire = sent[sent.len().saturating_sub(1 + back)].clone();
                }
                Wire::Flip(i, x) => {
                    let i = i % wire.len();
                    wire[i] ^= x;
                }
                Wire::Truncate(n) => wire.truncate(n % wire.len()),
                Wire::Ihl(ihl) => wire[0] = 0x40 | ihl,
                Wire::Fragment(f) => {
                    let v = u16::from_be_bytes([wire[6], wire[7]]) | f;
                    wire[6..8].copy_from_slice(&v.to_be_bytes());
                }
                Wire::OuterEcn(e) => wire[1] = (wire[1] & !3) | e,
                Wire::UdpLen(l) => {
                    if shape.udp {
                        wire[24..26].copy_from_slice(&l.to_be_bytes());
                    }
                }
                Wire::Shorten(n) => {
                    let len = wire.len().saturating_sub(*n).max(20);
                    wire.truncate(len);
                    wire[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                    if shape.udp && len >= 28 {
                        wire[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
                    }
                }
                Wire::Trailing(n) => wire.extend(std::iter::repeat_n(0xEEu8, *n)),
                Wire::Crafted(c) => wire = seal_crafted(&shape, c, seq),
            }
            let (mut bf, start, len) = framed(&wire, p.head, 16);
            let mut bg = bf.clone();
            let mut pf = Packet::new(&mut bf, start, len);
            let mut pg = Packet::new(&mut bg, start, len);
            let rf = t.fast.decapsulate(&mut pf, now);
            let rg = t.general.decapsulate(&mut pg, now);
            prop_assert_eq!(rf, rg, "{:?}", p);
            prop_assert_eq!((pf.start, pf.len), (pg.start, pg.len));
            prop_assert!(bf == bg, "buffers differ for {:?}", p);
            t.assert_same(now, p.advance_ms % 2 == 1)?;
        }
    }
}

/// The fast paths are taken where they should be: otherwise the properties above
/// would compare the general path with itself.
#[test]
fn fast_paths_are_chosen_for_the_common_shape_only() {
    let now = Instant::now();
    let common = Shape {
        suite: EspSuite::AES128_GCM16,
        mode: Mode::Tunnel,
        udp: false,
        esn: false,
        window: 64,
        df: DfPolicy::Copy,
        copy_dscp: true,
        tfc: None,
        lifetime: Lifetime::default(),
    };
    for direction in [Direction::Outbound, Direction::Inbound] {
        for (shape, expected) in [
            (common.clone(), true),
            (
                Shape {
                    udp: true,
                    esn: true,
                    suite: EspSuite::CHACHA20_POLY1305,
                    ..common.clone()
                },
                true,
            ),
            (
                Shape {
                    mode: Mode::Transport,
                    ..common.clone()
                },
                false,
            ),
            (
                Shape {
                    suite: EspSuite::AES128_GMAC,
                    ..common.clone()
                },
                false,
            ),
            (
                Shape {
                    suite: EspSuite::AES128_CBC_SHA256_128,
                    ..common.clone()
                },
                false,
            ),
        ] {
            let t = twins(&shape, direction, now);
            let f = t.fast.get(t.handle).expect("sa");
            let g = t.general.get(t.handle).expect("sa");
            assert_eq!(
                f.has_fast_path_for_test(),
                expected,
                "{shape:?} {direction:?}"
            );
            assert!(!g.has_fast_path_for_test());
        }
    }
    // TFC padding is outbound only; the receiver of such an SA has the fast path.
    let tfc = Shape {
        tfc: Some(500),
        ..common
    };
    let t = twins(&tfc, Direction::Outbound, now);
    assert!(!t.fast.get(t.handle).expect("sa").has_fast_path_for_test());
}
