//! Properties: no parser panics on any input, and what they return is
//! internally consistent. Inputs are both raw bytes and "almost valid"
//! packets (a valid skeleton with random corruption), since raw bytes
//! rarely get past the first length check.

mod common;

use palisade_wire::ipv4::options::Ipv4Options;
use palisade_wire::ipv6_options::Ipv6Options;
use palisade_wire::{
    AhHeader, EspHeader, EspTrailer, ExtChain, IPV6_HEADER_LEN, Ipv4Header, Ipv6Header,
    Udp4500Payload, UdpHeader, ah, ah_len_for, check_padding, classify_udp_4500, ip_version, ipv4,
    ipv6, pad_len_for, proto, udp, zero_mutable_ipv4, zero_mutable_ipv6,
};
use proptest::prelude::*;

/// Feeds `data` to every parser and checks invariants on successes.
fn exercise_all(data: &[u8], other: &[u8], small: u8) {
    let _ = ip_version(data);

    if let Ok(h) = Ipv4Header::parse(data) {
        assert!(h.header_len >= 20 && h.header_len <= 60);
        assert!(h.header_len <= usize::from(h.total_len));
        assert!(usize::from(h.total_len) <= data.len());
        assert!(h.dscp < 64 && h.ecn < 4 && h.fragment_offset < 0x2000);
        assert!(data.get(h.payload_range()).is_some());
    }
    if let Ok(opts) = Ipv4Options::new(data) {
        for opt in opts.take(64) {
            let Ok(opt) = opt else { break };
            assert!(opt.len >= 1 && opt.offset >= 20);
        }
    }
    let _ = ipv4::verify_checksum(data);
    let mut copy = data.to_vec();
    let _ = ipv4::set_total_len(&mut copy, u16::from(small));
    let _ = ipv4::set_dscp(&mut copy, small);
    let _ = ipv4::set_ecn(&mut copy, small);
    let _ = ipv4::set_df(&mut copy, small & 1 == 1);
    let _ = ipv4::set_protocol(&mut copy, small);
    if ipv4::update_checksum(&mut copy).is_ok() {
        assert!(ipv4::verify_checksum(&copy));
    }

    if let Ok(h) = Ipv6Header::parse(data) {
        assert!(data.get(h.payload_range()).is_some());
        assert!(h.flow_label <= 0xF_FFFF);
    }
    let mut copy = data.to_vec();
    let _ = ipv6::set_payload_len(&mut copy, u16::from(small));
    let _ = ipv6::set_traffic_class(&mut copy, small);
    let _ = ipv6::set_dscp(&mut copy, small);
    let _ = ipv6::set_ecn(&mut copy, small);
    let _ = ipv6::set_next_header(&mut copy, small);

    if let Ok(chain) = ExtChain::walk(data) {
        check_chain(data, &chain);
        let mut copy = data.to_vec();
        if zero_mutable_ipv6(&mut copy, &chain).is_ok() {
            // Zeroing is idempotent and preserves the chain structure.
            let again = ExtChain::walk(&copy).expect("zeroing keeps the chain walkable");
            assert_eq!(again.headers(), chain.headers());
            let mut twice = copy.clone();
            zero_mutable_ipv6(&mut twice, &chain).expect("second zeroing");
            assert_eq!(twice, copy);
        }
        // A chain applied to an unrelated buffer must not panic.
        let mut other_copy = other.to_vec();
        let _ = zero_mutable_ipv6(&mut other_copy, &chain);
        for opt_hdr in chain
            .headers()
            .iter()
            .filter(|h| h.kind == proto::HOPOPT || h.kind == proto::IPV6_OPTS)
        {
            let bytes = data.get(opt_hdr.offset..opt_hdr.end()).expect("in bounds");
            for opt in Ipv6Options::new(bytes).take(64) {
                let Ok(opt) = opt else { break };
                assert!(opt.end() <= bytes.len());
            }
        }
    }

    let mut copy = data.to_vec();
    if zero_mutable_ipv4(&mut copy).is_ok() {
        let mut twice = copy.clone();
        zero_mutable_ipv4(&mut twice).expect("second zeroing");
        assert_eq!(twice, copy);
    }

    if let Ok(h) = AhHeader::parse(data) {
        assert!(h.header_len() >= 12 && h.header_len() <= data.len());
        assert!(data.get(h.icv_range()).is_some());
    }
    let mut copy = data.to_vec();
    let _ = ah::zero_icv(&mut copy);

    let _ = EspHeader::parse(data);
    if let Ok(t) = EspTrailer::parse_from_end(data) {
        let payload_len = t.payload_len(data.len()).expect("padding fits");
        assert!(payload_len + usize::from(t.pad_len) + 2 == data.len());
        let _ = check_padding(data, t.pad_len);
    }
    let _ = check_padding(data, small);

    if let Ok(h) = UdpHeader::parse(data) {
        assert!(data.get(h.payload_range()).is_some());
    }
    let _ = udp::verify_udp_checksum_v4([1; 4], [2; 4], data);
    let _ = udp::verify_udp_checksum_v6([1; 16], [2; 16], data);

    match classify_udp_4500(data) {
        Ok(Udp4500Payload::Keepalive) => assert_eq!(data, [0xFF]),
        Ok(Udp4500Payload::Ike(ike)) => assert_eq!(ike.len() + 4, data.len()),
        Ok(Udp4500Payload::Esp(esp)) => {
            let h = EspHeader::parse(esp).expect("classified ESP has a header");
            assert!(h.spi > 255);
        }
        Err(_) => {}
    }
}

fn check_chain(data: &[u8], chain: &ExtChain) {
    let mut expected_offset = IPV6_HEADER_LEN;
    for h in chain.headers() {
        assert_eq!(h.offset, expected_offset, "headers are contiguous");
        assert!(h.len >= 8);
        assert_eq!(data.get(h.offset).copied(), Some(h.next_header));
        expected_offset = h.end();
    }
    assert_eq!(chain.upper_offset, expected_offset);
    assert!(chain.upper_offset <= data.len());
    let (at, index) = chain.esp_insert_point();
    assert!(at >= IPV6_HEADER_LEN && at <= chain.upper_offset);
    assert_eq!(chain.ah_insert_point(), (at, index));
    let patch = chain.next_header_field_offset(index);
    match index {
        None => assert_eq!((at, patch), (IPV6_HEADER_LEN, 6)),
        Some(i) => {
            let h = chain.headers()[i];
            assert_eq!((at, patch), (h.end(), h.offset));
        }
    }
    let _ = chain.next_header_field_offset(Some(usize::MAX));
}

/// Extension header types worth generating, plus a few terminators.
fn next_header_kind() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(vec![
            proto::HOPOPT,
            proto::IPV6_ROUTE,
            proto::IPV6_FRAG,
            proto::IPV6_OPTS,
            proto::AH,
        ]),
        1 => prop::sample::select(vec![proto::ESP, proto::TCP, proto::UDP, proto::IPV6_NONXT]),
        1 => any::<u8>(),
    ]
}

/// An IPv6 packet with a structurally plausible chain, then corrupted.
fn almost_ipv6() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((next_header_kind(), 0u8..4, any::<u8>()), 0..20),
        next_header_kind(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(headers, first, tail, corruptions, cut, do_cut)| {
            let mut body = Vec::new();
            let kinds: Vec<u8> = headers.iter().map(|h| h.0).collect();
            for (i, &(kind, len_field, fill)) in headers.iter().enumerate() {
                let next = kinds.get(i + 1).copied().unwrap_or(proto::TCP);
                let len = match kind {
                    proto::IPV6_FRAG => 8,
                    proto::AH => (usize::from(len_field) + 3) * 4,
                    _ => (usize::from(len_field) + 1) * 8,
                };
                let start = body.len();
                body.resize(start + len, fill);
                body[start] = next;
                body[start + 1] = if kind == proto::AH {
                    len_field + 1
                } else {
                    len_field
                };
                if kind == proto::IPV6_FRAG {
                    body[start + 2] = fill & 0x01;
                    body[start + 3] = fill & 0xF9;
                }
            }
            body.extend_from_slice(&tail);
            let first_kind = kinds.first().copied().unwrap_or(first);
            let mut p = common::ipv6(first_kind, &[&body]);
            for (at, value) in corruptions {
                let i = at.index(p.len());
                p[i] = value;
            }
            if do_cut {
                let keep = cut.index(p.len() + 1);
                p.truncate(keep);
            }
            p
        })
}

/// An IPv4 header with a random options area, then corrupted.
fn almost_ipv4() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec![0u8, 1, 7, 68, 130, 131, 148, 137, 25]),
                0u8..12,
                any::<u8>(),
            ),
            0..8,
        ),
        prop::collection::vec(any::<u8>(), 0..32),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    )
        .prop_map(|(opts, payload, corruptions)| {
            let mut area = Vec::new();
            for (kind, len, fill) in opts {
                area.push(kind);
                if kind > 1 {
                    area.push(len);
                    area.extend(std::iter::repeat_n(
                        fill,
                        usize::from(len.saturating_sub(2)),
                    ));
                }
            }
            area.truncate(40);
            let mut p = common::ipv4_with_options(proto::AH, &area, &payload);
            for (at, value) in corruptions {
                let i = at.index(p.len());
                p[i] = value;
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(
        data in prop::collection::vec(any::<u8>(), 0..200),
        other in prop::collection::vec(any::<u8>(), 0..100),
        small in any::<u8>(),
    ) {
        exercise_all(&data, &other, small);
    }

    #[test]
    fn almost_valid_ipv6(data in almost_ipv6(), other in almost_ipv6(), small in any::<u8>()) {
        exercise_all(&data, &other, small);
    }

    #[test]
    fn almost_valid_ipv4(data in almost_ipv4(), small in any::<u8>()) {
        exercise_all(&data, &[], small);
    }

    #[test]
    fn length_helpers_total(payload_len in any::<usize>(), align in any::<usize>(), icv in any::<usize>(), v6 in any::<bool>()) {
        let pad = pad_len_for(payload_len, align);
        prop_assert!(pad < align.max(4));
        let len = ah_len_for(icv, v6);
        prop_assert!(len >= icv.min(usize::MAX - 12));
        let _ = AhHeader::payload_len_for(len);
    }
}
