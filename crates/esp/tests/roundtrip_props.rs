//! Property: whatever SA and packet, what the sender seals the receiver opens to the
//! same bytes, and a flipped bit anywhere makes it fail.

mod common;

use std::net::IpAddr;
use std::time::Instant;

use common::{PairSpec, open, pair, seal, udp_packet};
use palisade_esp::{EspError, EspSuite, IntegId, Mode, SaTransform, UdpEncap};
use proptest::prelude::*;

fn transform() -> impl Strategy<Value = SaTransform> {
    prop_oneof![
        proptest::sample::select(vec![
            EspSuite::AES128_GCM16,
            EspSuite::AES256_GCM16,
            EspSuite::CHACHA20_POLY1305,
            EspSuite::AES128_GMAC,
            EspSuite::AES256_GMAC,
            EspSuite::AES128_CBC_SHA1_96,
            EspSuite::AES128_CBC_SHA256_128,
            EspSuite::AES256_CBC_SHA256_128,
            EspSuite::AES256_CBC_SHA384_192,
            EspSuite::AES256_CBC_SHA512_256,
            EspSuite::NULL_SHA256_128,
        ])
        .prop_map(SaTransform::Esp),
        proptest::sample::select(vec![
            IntegId::HmacSha1_96,
            IntegId::HmacSha2_256_128,
            IntegId::HmacSha2_384_192,
            IntegId::HmacSha2_512_256,
            IntegId::AesGmac128,
            IntegId::AesGmac256,
        ])
        .prop_map(SaTransform::Ah),
    ]
}

fn addr(v6: bool, n: u8) -> IpAddr {
    if v6 {
        IpAddr::from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
    } else {
        IpAddr::from([10, 9, 0, n])
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    transform: SaTransform,
    tunnel: bool,
    outer_v6: bool,
    inner_v6: bool,
    udp: bool,
    esn: bool,
    tfc: Option<u16>,
    payloads: Vec<(usize, u8)>,
    start_seq: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        transform(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0u16..1500),
        proptest::collection::vec((0usize..1500, any::<u8>()), 1..6),
        prop_oneof![Just(0u64), 1u64..(1 << 31), 0xFFFF_F800u64..0xFFFF_FFFF],
    )
        .prop_map(
            |(transform, tunnel, outer_v6, inner_v6, udp, esn, tfc, payloads, start_seq)| {
                let is_ah = matches!(transform, SaTransform::Ah(_));
                Scenario {
                    transform,
                    tunnel,
                    outer_v6,
                    inner_v6: if tunnel { inner_v6 } else { outer_v6 },
                    udp: udp && !is_ah,
                    esn,
                    tfc: if tunnel && !is_ah { tfc } else { None },
                    payloads,
                    start_seq: if esn {
                        start_seq
                    } else {
                        start_seq.min(0x7FFF_FFFF)
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn seal_then_open_round_trips(s in scenario()) {
        let now = Instant::now();
        let spec = PairSpec {
            transform: s.transform,
            mode: if s.tunnel { Mode::Tunnel } else { Mode::Transport },
            a: addr(s.outer_v6, 1),
            b: addr(s.outer_v6, 2),
            esn: s.esn,
            udp: s.udp.then_some(UdpEncap::default()),
            tfc_pad_to: s.tfc,
            window: 1024,
        };
        let mut p = pair(&spec, 0x4242, now);
        // The receiver starts with an empty window (top 0): without ESN any start is
        // ahead of it; with ESN a start just below 2^32 makes the packets cross into the
        // next high half, which the receiver must infer (RFC 4303 Appendix A2).
        p.a.get_mut_for_test(p.out).expect("sa").set_outbound_sequence(s.start_seq);
        let (src, dst) = if s.tunnel {
            (addr(s.inner_v6, 11), addr(s.inner_v6, 12))
        } else {
            (spec.a, spec.b)
        };
        for (len, tos) in &s.payloads {
            let pkt = udp_packet(src, dst, *len, *tos & !0b11);
            let wire = seal(&mut p, &pkt, now).expect("seal");
            prop_assert!(wire.len() > pkt.len());
            if let Some(to) = s.tfc {
                prop_assert!(wire.len() >= usize::from(to));
            }
            // Flip one bit somewhere past the outer header: always refused.
            let mut bad = wire.clone();
            let at = bad.len() - 1 - (*len % 16).min(bad.len() - 1);
            bad[at] ^= 0x80;
            prop_assert!(open(&mut p.b, &bad, now).is_err());
            let got = open(&mut p.b, &wire, now).expect("open");
            prop_assert_eq!(&got, &pkt);
            // The same packet again is a replay.
            prop_assert_eq!(open(&mut p.b, &wire, now), Err(EspError::Replay));
        }
    }

    /// Arbitrary bytes never panic the receive path and never open.
    #[test]
    fn garbage_never_opens(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let now = Instant::now();
        let spec = PairSpec {
            transform: SaTransform::Esp(EspSuite::AES128_GCM16),
            mode: Mode::Tunnel,
            a: addr(false, 1),
            b: addr(false, 2),
            esn: true,
            udp: None,
            tfc_pad_to: None,
            window: 64,
        };
        let mut p = pair(&spec, 0x4242, now);
        prop_assert!(open(&mut p.b, &bytes, now).is_err());
    }
}
