//! The per-packet path must not touch the heap: encapsulation, decapsulation and
//! refusals (counted drops) alike. A counting global allocator sees every Rust-side
//! allocation on the measuring thread; aws-lc's per-packet calls do not allocate.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Instant;

use common::{PairSpec, ROOM, pair, udp_packet, with_room};
use palisade_esp::{EspError, EspSuite, IntegId, Mode, Packet, SaTransform, UdpEncap};

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn encapsulate_and_decapsulate_do_not_allocate() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);
    let v4: (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let v6: (IpAddr, IpAddr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let cases = [
        (
            SaTransform::Esp(EspSuite::AES128_GCM16),
            Mode::Tunnel,
            v4,
            true,
        ),
        (
            SaTransform::Esp(EspSuite::AES256_CBC_SHA512_256),
            Mode::Transport,
            v6,
            false,
        ),
        (
            SaTransform::Esp(EspSuite::CHACHA20_POLY1305),
            Mode::Tunnel,
            v6,
            true,
        ),
        (
            SaTransform::Ah(IntegId::HmacSha2_256_128),
            Mode::Transport,
            v4,
            false,
        ),
        (
            SaTransform::Ah(IntegId::HmacSha1_96),
            Mode::Tunnel,
            v6,
            false,
        ),
    ];
    let now = Instant::now();
    for (transform, mode, (a, b), udp) in cases {
        let spec = PairSpec {
            transform,
            mode,
            a,
            b,
            esn: true,
            udp: udp.then_some(UdpEncap::default()),
            tfc_pad_to: None,
            window: 4096,
        };
        let mut p = pair(&spec, 0x7777, now);
        let pkt = udp_packet(a, b, 500, 0);
        let mut buf = with_room(&pkt);
        // Warm up once: aws-lc sets up per-thread RNG state on first use.
        let mut warm = Packet::new(&mut buf, ROOM, pkt.len());
        p.a.encapsulate(p.out, &mut warm, now).unwrap();
        p.b.decapsulate(&mut warm, now).unwrap();
        let n = allocations(|| {
            for i in 0..50 {
                buf[ROOM..ROOM + pkt.len()].copy_from_slice(&pkt);
                let mut packet = Packet::new(&mut buf, ROOM, pkt.len());
                p.a.encapsulate(p.out, &mut packet, now).unwrap();
                if i == 10 {
                    // A tampered packet is refused and counted, without allocating.
                    let last = packet.start + packet.len - 1;
                    packet.buf[last] ^= 1;
                    assert_eq!(p.b.decapsulate(&mut packet, now), Err(EspError::Integrity));
                    continue;
                }
                p.b.decapsulate(&mut packet, now).unwrap();
            }
        });
        assert_eq!(
            n, 0,
            "{transform:?} {mode:?}: {n} allocations in 50 packets"
        );
    }
}

/// A datagram cut into fragments and put back together, over and over, in place: the
/// reassembly took its memory when it was made, and fragmenting works in the buffer.
#[test]
fn fragmenting_and_reassembling_do_not_allocate() {
    use palisade_esp::fragmentation::fragment_in_place;
    use palisade_esp::reassembly::{Pushed, Reassembly, ReassemblyLimits};

    let v4 = udp_packet(
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
        6000,
        0,
    );
    let v6 = udp_packet(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
        6000,
        0,
    );
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let mut buf = vec![0u8; 12_000];
    let mut out = vec![0u8; 9216];
    let now = Instant::now();
    for (round, packet) in [&v4, &v6, &v4, &v6].into_iter().enumerate() {
        let n = allocations(|| {
            buf[..packet.len()].copy_from_slice(packet);
            let f = fragment_in_place(&mut buf, 0..packet.len(), 1400, round as u32).unwrap();
            let mut done = None;
            for range in f.ranges() {
                if let Ok(Pushed::Complete(len)) = r.push(&buf[range], now, &mut out) {
                    done = Some(len);
                }
            }
            assert_eq!(done, Some(packet.len()));
        });
        assert_eq!(n, 0, "round {round}: {n} allocations");
        // Whole again (an IPv4 header comes back with DF cleared: this host fragmented).
        let from = if packet[0] >> 4 == 4 { 20 } else { 0 };
        assert!(
            out[from..packet.len()] == packet[from..],
            "round {round}: the datagram"
        );
    }
}
