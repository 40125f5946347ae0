//! IP fragmentation and reassembly: what one cuts the other puts back, in any order;
//! what Linux's rules refuse is refused and counted.

use std::time::{Duration, Instant};

use palisade_esp::fragmentation::{FragmentError, fragment_in_place};
use palisade_esp::reassembly::{Pushed, Reassembly, ReassemblyDrop, ReassemblyLimits};
use palisade_wire::ipv4::verify_checksum;
use palisade_wire::{ExtChain, Ipv4Header, proto};
use proptest::prelude::*;

/// Room after a packet for the fragments' extra headers.
const ROOM: usize = 2048;

/// An IPv4 datagram: `options` after the fixed header (a multiple of 4 bytes), then
/// `payload`; DF clear, ID `id`.
fn v4(options: &[u8], protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let hl = 20 + options.len();
    let total = hl + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x40 | (hl / 4) as u8;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64;
    p[9] = protocol;
    p[12..16].copy_from_slice(&[192, 0, 2, 1]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    p[20..hl].copy_from_slice(options);
    p[hl..].copy_from_slice(payload);
    let sum = palisade_wire::ipv4_header_checksum(&p[..hl]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// An IPv6 packet with a Hop-by-Hop header (8 bytes, PadN) if `hop_by_hop`, a
/// Destination Options header after it (which goes with the fragmentable part), then
/// `payload` as `protocol`.
fn v6(hop_by_hop: bool, dest_opts: bool, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[7] = 64;
    p[8..24].copy_from_slice(
        &std::net::Ipv6Addr::from_bits(0x2001_0db8_0000_0000_0000_0000_0000_0001).octets(),
    );
    p[24..40].copy_from_slice(
        &std::net::Ipv6Addr::from_bits(0x2001_0db8_0000_0000_0000_0000_0000_0002).octets(),
    );
    let mut next_at = 6;
    for (present, kind) in [(hop_by_hop, proto::HOPOPT), (dest_opts, proto::IPV6_OPTS)] {
        if present {
            p[next_at] = kind;
            next_at = p.len();
            // Next Header, length 0 (8 bytes), PadN of 4 bytes of padding.
            p.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
        }
    }
    p[next_at] = protocol;
    p.extend_from_slice(payload);
    let payload_len = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&payload_len.to_be_bytes());
    p
}

/// Cuts `packet` to `mtu` and returns the fragments as packets of their own.
fn cut(packet: &[u8], mtu: usize, id: u32) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 100 + packet.len() + ROOM];
    buf[100..100 + packet.len()].copy_from_slice(packet);
    let f = fragment_in_place(&mut buf, 100..100 + packet.len(), mtu, id).expect("fragment");
    f.ranges().map(|r| buf[r].to_vec()).collect()
}

/// Pushes `fragments` in order; the datagram, if the last completed it, and what each
/// push before said.
fn reassemble(r: &mut Reassembly, fragments: &[Vec<u8>], now: Instant) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 9216];
    let mut done = None;
    for (i, f) in fragments.iter().enumerate() {
        match r.push(f, now, &mut out).expect("push") {
            Pushed::Held => assert!(i + 1 < fragments.len(), "held on the last fragment"),
            Pushed::Complete(n) => {
                assert_eq!(i + 1, fragments.len(), "complete before the last fragment");
                done = Some(out[..n].to_vec());
            }
        }
    }
    done
}

fn drops(r: &Reassembly) -> Vec<(&'static str, u64)> {
    r.drops()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| (d.name(), n))
        .collect()
}

/// IPv4 options: Router Alert (copied), NOP, Record Route (not copied) with room for
/// one address, End of Option List.
const OPTIONS: [u8; 16] = [
    148, 4, 0, 0, // Router Alert
    1, // NOP
    7, 7, 4, 0, 0, 0, 0, // Record Route, pointer 4, one empty slot
    0, 0, 0, 0, // EOL
];

#[test]
fn ipv4_fragments_are_what_rfc_791_says() {
    let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    let packet = v4(&OPTIONS, proto::UDP, 0x1234, &payload);
    let frags = cut(&packet, 1400, 0);
    assert_eq!(frags.len(), 3);
    let mut next = 0;
    for (k, f) in frags.iter().enumerate() {
        assert!(f.len() <= 1400);
        assert!(verify_checksum(f), "fragment {k}: bad checksum");
        let h = Ipv4Header::parse(f).expect("header");
        assert_eq!(h.header_len, 36);
        assert_eq!(h.identification, 0x1234);
        assert!(!h.dont_fragment);
        assert_eq!(h.more_fragments, k + 1 < frags.len());
        assert_eq!(usize::from(h.fragment_offset) * 8, next);
        next += f.len() - 36;
        let options = &f[20..36];
        if k == 0 {
            assert_eq!(options, OPTIONS);
        } else {
            // Router Alert is copied; Record Route is not, and leaves NOPs.
            assert_eq!(&options[..4], &OPTIONS[..4]);
            assert_eq!(&options[4..12], &[1; 8]);
        }
    }
    assert_eq!(next, payload.len());
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let whole = reassemble(&mut r, &frags, Instant::now()).expect("complete");
    assert_eq!(whole, packet);
    assert_eq!(r.reassembled(), 1);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn ipv4_without_an_id_takes_the_one_given() {
    let packet = v4(&[], proto::ESP, 0, &[7; 3000]);
    for f in cut(&packet, 1500, 0xabcd_0042) {
        assert_eq!(
            Ipv4Header::parse(&f).expect("header").identification,
            0x0042
        );
    }
}

#[test]
fn ipv6_fragments_keep_hop_by_hop_before_and_put_destination_options_inside() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let packet = v6(true, true, proto::UDP, &payload);
    let frags = cut(&packet, 1280, 0x0102_0304);
    assert_eq!(frags.len(), 5);
    let mut next = 0;
    for (k, f) in frags.iter().enumerate() {
        assert!(f.len() <= 1280);
        let chain = ExtChain::walk(f).expect("chain");
        assert_eq!(f[6], proto::HOPOPT);
        let (_, frag) = chain.find(proto::IPV6_FRAG).expect("Fragment header");
        assert_eq!(frag.offset, 48, "after the fixed and Hop-by-Hop headers");
        assert_eq!(frag.next_header, proto::IPV6_OPTS);
        let word = u16::from_be_bytes([f[50], f[51]]);
        assert_eq!(usize::from(word & 0xfff8), next);
        assert_eq!(word & 1 == 1, k + 1 < frags.len());
        assert_eq!(&f[52..56], &[1, 2, 3, 4]);
        next += f.len() - 56;
    }
    assert_eq!(next, packet.len() - 48);
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let whole = reassemble(&mut r, &frags, Instant::now()).expect("complete");
    assert_eq!(whole, packet);
}

#[test]
fn a_packet_that_fits_is_one_fragment_left_alone() {
    let packet = v4(&[], proto::UDP, 9, &[1; 100]);
    let frags = cut(&packet, 1400, 0);
    assert_eq!(frags, vec![packet]);
}

#[test]
fn what_cannot_be_cut_is_refused() {
    let packet = v4(&[], proto::UDP, 9, &[1; 3000]);
    let mut buf = packet.clone();
    let len = buf.len();
    assert_eq!(
        fragment_in_place(&mut buf, 0..len, 1400, 0),
        Err(FragmentError::NoRoom)
    );
    assert_eq!(buf, packet, "a refusal leaves the packet as it was");
    buf.resize(len + ROOM, 0);
    assert_eq!(
        fragment_in_place(&mut buf, 0..len, 27, 0),
        Err(FragmentError::MtuTooSmall)
    );
    let frag = &cut(&packet, 1400, 0)[0];
    let mut buf = frag.clone();
    buf.resize(frag.len() + ROOM, 0);
    assert_eq!(
        fragment_in_place(&mut buf, 0..frag.len(), 600, 0),
        Err(FragmentError::Malformed("already a fragment"))
    );
}

#[test]
fn is_fragment_spots_both_families_and_nothing_else() {
    let whole4 = v4(&[], proto::UDP, 1, &[0; 3000]);
    let whole6 = v6(true, false, proto::UDP, &[0; 3000]);
    assert!(!Reassembly::is_fragment(&whole4));
    assert!(!Reassembly::is_fragment(&whole6));
    assert!(!Reassembly::is_fragment(&[]));
    for f in cut(&whole4, 1400, 0)
        .iter()
        .chain(cut(&whole6, 1400, 7).iter())
    {
        assert!(Reassembly::is_fragment(f));
    }
}

#[test]
fn overlapping_fragments_drop_the_datagram() {
    let packet = v4(&[], proto::UDP, 5, &[3; 3000]);
    let frags = cut(&packet, 1400, 0);
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let mut out = vec![0u8; 9216];
    let now = Instant::now();
    assert_eq!(r.push(&frags[0], now, &mut out), Ok(Pushed::Held));
    // A duplicate overlaps itself (RFC 5722: the datagram goes).
    assert_eq!(
        r.push(&frags[0], now, &mut out),
        Err(ReassemblyDrop::Overlap)
    );
    assert_eq!(r.in_progress(), 0);
    // The rest start a new datagram that never completes without the first.
    assert_eq!(r.push(&frags[1], now, &mut out), Ok(Pushed::Held));
    assert_eq!(r.push(&frags[2], now, &mut out), Ok(Pushed::Held));
    assert_eq!(drops(&r), vec![("reassembly_overlap", 1)]);
}

#[test]
fn incomplete_datagrams_time_out() {
    let packet = v6(false, false, proto::UDP, &[9; 3000]);
    let frags = cut(&packet, 1400, 77);
    let limits = ReassemblyLimits::default();
    let mut r = Reassembly::new(limits);
    let mut out = vec![0u8; 9216];
    let t0 = Instant::now();
    assert_eq!(r.push(&frags[0], t0, &mut out), Ok(Pushed::Held));
    r.expire(t0 + limits.timeout - Duration::from_millis(1));
    assert_eq!(r.in_progress(), 1);
    r.expire(t0 + limits.timeout);
    assert_eq!(r.in_progress(), 0);
    assert_eq!(drops(&r), vec![("reassembly_timeout", 1)]);
}

#[test]
fn a_full_table_evicts_the_oldest() {
    let limits = ReassemblyLimits {
        datagrams: 2,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembly::new(limits);
    let mut out = vec![0u8; 9216];
    let t0 = Instant::now();
    let frags: Vec<Vec<Vec<u8>>> = (1..=3u16)
        .map(|id| cut(&v4(&[], proto::UDP, id, &[id as u8; 2000]), 1400, 0))
        .collect();
    for (i, f) in frags.iter().enumerate() {
        let at = t0 + Duration::from_millis(i as u64);
        assert_eq!(r.push(&f[0], at, &mut out), Ok(Pushed::Held));
    }
    assert_eq!(drops(&r), vec![("reassembly_evicted", 1)]);
    // The first was evicted: its second half starts a datagram of its own.
    let later = t0 + Duration::from_millis(10);
    for id in [1usize, 2] {
        let got = r.push(&frags[id][1], later, &mut out).expect("push");
        assert_eq!(got, Pushed::Complete(2020), "id {id}");
        assert_eq!(
            &out[..2020],
            &v4(&[], proto::UDP, id as u16 + 1, &[id as u8 + 1; 2000])[..]
        );
    }
}

#[test]
fn datagrams_too_long_or_oddly_cut_are_refused() {
    let limits = ReassemblyLimits {
        max_len: 4000,
        ..ReassemblyLimits::default()
    };
    let mut r = Reassembly::new(limits);
    let mut out = vec![0u8; 9216];
    let now = Instant::now();
    let frags = cut(&v4(&[], proto::UDP, 1, &[0; 5000]), 1400, 0);
    assert_eq!(r.push(&frags[0], now, &mut out), Ok(Pushed::Held));
    assert_eq!(r.push(&frags[1], now, &mut out), Ok(Pushed::Held));
    assert_eq!(
        r.push(&frags[2], now, &mut out),
        Err(ReassemblyDrop::TooLong)
    );
    assert_eq!(r.in_progress(), 0, "the datagram went with it");

    // A fragment with more to come must carry a multiple of 8 bytes.
    let mut odd = frags[0].clone();
    odd.truncate(odd.len() - 3);
    let total = odd.len() as u16;
    odd[2..4].copy_from_slice(&total.to_be_bytes());
    assert!(matches!(
        r.push(&odd, now, &mut out),
        Err(ReassemblyDrop::Malformed(_))
    ));
    // Not a fragment at all.
    assert!(matches!(
        r.push(&v4(&[], proto::UDP, 1, &[0; 10]), now, &mut out),
        Err(ReassemblyDrop::Malformed(_))
    ));
    assert_eq!(
        drops(&r),
        vec![("reassembly_too_long", 1), ("reassembly_malformed", 2)]
    );
}

/// The longest datagrams IP allows come back whole with the default limits: 65,535
/// bytes for IPv4, a 65,535-byte payload for IPv6.
#[test]
fn the_longest_datagrams_ip_allows_come_back() {
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let mut out = vec![0u8; 70_000];
    let now = Instant::now();
    let longest = [
        v4(&[], proto::UDP, 9, &[0x5a; 65_535 - 20]),
        v6(false, false, proto::UDP, &[0xa5; 65_535]),
    ];
    for packet in longest {
        let mut got = None;
        for f in cut(&packet, 9000, 3) {
            if let Ok(Pushed::Complete(n)) = r.push(&f, now, &mut out) {
                got = Some(n);
            }
        }
        assert_eq!(got.map(|n| &out[..n]), Some(&packet[..]));
    }
    assert_eq!(drops(&r), vec![]);
}

/// An IPv4 fragment whose data ends past what a total length of 16 bits can say is
/// refused even where `max_len` would hold it (IPv6's limit is 40 bytes longer), as
/// Linux refuses it: the header of the whole could not be written.
#[test]
fn an_ipv4_datagram_past_65535_bytes_is_refused() {
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let mut out = vec![0u8; 70_000];
    let now = Instant::now();
    let fragment = |offset: u16, more: bool, data: &[u8]| {
        let mut p = v4(&[], proto::UDP, 12, data);
        let flags = if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&(flags | (offset / 8)).to_be_bytes());
        p[10..12].fill(0);
        let sum = palisade_wire::ipv4_header_checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    };
    assert_eq!(
        r.push(&fragment(0, true, &[1; 1480]), now, &mut out),
        Ok(Pushed::Held)
    );
    // 20 bytes of header and data to 65,560: 65,580 bytes, within max_len (65,575 + 20
    // is not, but the data alone is).
    assert_eq!(
        r.push(&fragment(65_520, false, &[2; 40]), now, &mut out),
        Err(ReassemblyDrop::TooLong)
    );
    assert_eq!(r.in_progress(), 0, "the datagram went with it");
    assert_eq!(drops(&r), vec![("reassembly_too_long", 1)]);
}

#[test]
fn fragments_of_different_datagrams_interleave() {
    let a = v4(&[], proto::UDP, 1, &[0xaa; 3000]);
    let b = v4(&[], proto::TCP, 1, &[0xbb; 3000]);
    let c = v6(false, false, proto::UDP, &[0xcc; 3000]);
    let (fa, fb, fc) = (cut(&a, 1400, 0), cut(&b, 1400, 0), cut(&c, 1400, 1));
    let mut r = Reassembly::new(ReassemblyLimits::default());
    let mut out = vec![0u8; 9216];
    let now = Instant::now();
    let mut done = Vec::new();
    for k in 0..3 {
        for f in [&fa[k], &fb[k], &fc[k]] {
            if let Ok(Pushed::Complete(n)) = r.push(f, now, &mut out) {
                done.push(out[..n].to_vec());
            }
        }
    }
    assert_eq!(
        done,
        vec![a, b, c],
        "protocol keeps same-ID datagrams apart"
    );
}

fn ipv4_options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(OPTIONS.to_vec()),
        Just(vec![1, 1, 1, 0])
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever is cut, at whatever MTU, comes back whole from its fragments in any
    /// order, with every fragment within the MTU.
    #[test]
    fn cut_then_reassembled_in_any_order_is_the_packet(
        v6_packet in any::<bool>(),
        options in ipv4_options(),
        hop_by_hop in any::<bool>(),
        len in 1usize..8000,
        mtu in 576usize..2000,
        id in any::<u32>(),
        seed in any::<u64>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
        let packet = if v6_packet {
            v6(hop_by_hop, false, proto::UDP, &payload)
        } else {
            v4(&options, proto::UDP, id as u16, &payload)
        };
        let mut frags = cut(&packet, mtu, id);
        prop_assert!(frags.iter().all(|f| f.len() <= mtu));
        if packet.len() <= mtu {
            prop_assert_eq!(frags, vec![packet]);
            return Ok(());
        }
        // A Fisher-Yates shuffle driven by the seed.
        let mut s = seed;
        for i in (1..frags.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            frags.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut r = Reassembly::new(ReassemblyLimits::default());
        let whole = reassemble(&mut r, &frags, Instant::now());
        prop_assert_eq!(whole, Some(packet));
        prop_assert_eq!(r.in_progress(), 0);
    }

    /// Any bytes at all: refused or held, never a panic, and never more in progress
    /// than the limit.
    #[test]
    fn any_bytes_are_taken_without_a_panic(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20),
    ) {
        let limits = ReassemblyLimits { datagrams: 4, max_len: 2048, ..ReassemblyLimits::default() };
        let mut r = Reassembly::new(limits);
        let mut out = vec![0u8; 2048];
        for mut p in packets {
            // Often make it look like an IPv4 fragment, so that the checks past the
            // header run too.
            if p.len() >= 20 && p[0] & 1 == 1 {
                p[0] = 0x45;
                let l = p.len() as u16;
                p[2..4].copy_from_slice(&l.to_be_bytes());
                p[6] |= 0x20;
            }
            let _ = r.push(&p, Instant::now(), &mut out);
            prop_assert!(r.in_progress() <= 4);
        }
    }
}

/// The fuzz target's seeds are scapy's fragments (`fuzz/seeds/make_ip_fragments_seeds.py`),
/// an implementation independent of ours: every datagram in them comes back whole, and
/// only the seed with a duplicate fragment has one refused.
#[test]
fn scapys_fragments_reassemble() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/ip_fragments");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("seeds") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let data = std::fs::read(&path).expect("seed");
        let mut rest = &data[2..];
        let mut r = Reassembly::new(ReassemblyLimits::default());
        let mut out = vec![0u8; 9216];
        let (mut complete, mut refused) = (Vec::new(), 0);
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let packet = &rest[2..2 + len];
            rest = &rest[2 + len..];
            match r.push(packet, Instant::now(), &mut out) {
                Ok(Pushed::Complete(n)) => complete.push(out[..n].to_vec()),
                Ok(Pushed::Held) => {}
                Err(_) => refused += 1,
            }
        }
        let expected = match name.as_str() {
            "v4_duplicate.bin" => 0,
            "v4_interleaved.bin" | "v6_and_v4.bin" => 2,
            _ => 1,
        };
        assert_eq!(complete.len(), expected, "{name}");
        assert_eq!(refused, usize::from(name == "v4_duplicate.bin"), "{name}");
        for d in &complete {
            // A whole UDP datagram whose length fields agree with what came back.
            let udp = if d[0] >> 4 == 4 {
                assert!(verify_checksum(d), "{name}");
                assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])), d.len());
                usize::from(d[0] & 0x0f) * 4
            } else {
                let chain = ExtChain::walk(d).expect("chain");
                assert!(chain.find(proto::IPV6_FRAG).is_none(), "{name}");
                assert_eq!(chain.upper_protocol, proto::UDP, "{name}");
                chain.upper_offset
            };
            assert_eq!(
                usize::from(u16::from_be_bytes([d[udp + 4], d[udp + 5]])),
                d.len() - udp,
                "{name}: the UDP length covers the datagram"
            );
        }
        seen += 1;
    }
    assert!(seen >= 9, "{seen} seeds");
}
