//! Properties: every emitter's output parses back to the same value, and
//! checksums agree with a straightforward reference implementation.

mod common;

use palisade_wire::{
    AhHeader, Checksum, ESP_HEADER_LEN, EspHeader, EspTrailer, ExtChain, IPV4_MIN_HEADER_LEN,
    IPV6_HEADER_LEN, Ipv4Header, Ipv6Header, UdpHeader, ah_len_for, check_padding,
    internet_checksum, ipv4, pad_len_for, proto, udp_checksum_v4, udp_checksum_v6,
};
use proptest::prelude::*;

fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let hi = pair[0];
        let lo = pair.get(1).copied().unwrap_or(0);
        sum += u32::from(u16::from_be_bytes([hi, lo]));
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

prop_compose! {
    fn arb_ipv4()(
        dscp in 0u8..64, ecn in 0u8..4, extra in 0u16..100, identification in any::<u16>(),
        dont_fragment in any::<bool>(), more_fragments in any::<bool>(),
        fragment_offset in 0u16..0x2000, ttl in any::<u8>(), protocol in any::<u8>(),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
    ) -> Ipv4Header {
        Ipv4Header {
            dscp, ecn, total_len: 20 + extra, identification, dont_fragment, more_fragments,
            fragment_offset, ttl, protocol, checksum: 0, src, dst, header_len: IPV4_MIN_HEADER_LEN,
        }
    }
}

prop_compose! {
    fn arb_ipv6()(
        traffic_class in any::<u8>(), flow_label in 0u32..=0xF_FFFF, payload_len in 1u16..200,
        next_header in any::<u8>(), hop_limit in any::<u8>(),
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
    ) -> Ipv6Header {
        Ipv6Header { traffic_class, flow_label, payload_len, next_header, hop_limit, src, dst }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn ipv4_round_trip(h in arb_ipv4()) {
        let mut buf = vec![0u8; usize::from(h.total_len)];
        h.write(&mut buf).expect("write");
        prop_assert!(ipv4::verify_checksum(&buf));
        let parsed = Ipv4Header::parse(&buf).expect("parse");
        prop_assert_eq!(parsed, Ipv4Header { checksum: parsed.checksum, ..h });
        prop_assert_eq!(parsed.checksum, palisade_wire::ipv4_header_checksum(&buf[..20]));
    }

    #[test]
    fn ipv4_setters_round_trip(h in arb_ipv4(), dscp in 0u8..64, ecn in 0u8..4, df in any::<bool>(), p in any::<u8>()) {
        let mut buf = vec![0u8; usize::from(h.total_len)];
        h.write(&mut buf).expect("write");
        ipv4::set_dscp(&mut buf, dscp).expect("dscp");
        ipv4::set_ecn(&mut buf, ecn).expect("ecn");
        ipv4::set_df(&mut buf, df).expect("df");
        ipv4::set_protocol(&mut buf, p).expect("protocol");
        ipv4::set_total_len(&mut buf, 20).expect("total");
        prop_assert!(ipv4::verify_checksum(&buf));
        let parsed = Ipv4Header::parse(&buf).expect("parse");
        prop_assert_eq!(
            (parsed.dscp, parsed.ecn, parsed.dont_fragment, parsed.protocol, parsed.total_len),
            (dscp, ecn, df, p, 20)
        );
        prop_assert_eq!((parsed.more_fragments, parsed.fragment_offset, parsed.src), (h.more_fragments, h.fragment_offset, h.src));
    }

    #[test]
    fn ipv6_round_trip(h in arb_ipv6()) {
        let mut buf = vec![0u8; IPV6_HEADER_LEN + usize::from(h.payload_len)];
        h.write(&mut buf).expect("write");
        prop_assert_eq!(Ipv6Header::parse(&buf), Ok(h));
    }

    #[test]
    fn ipv6_setters_round_trip(h in arb_ipv6(), tc in any::<u8>(), nh in any::<u8>()) {
        let mut buf = vec![0u8; IPV6_HEADER_LEN + usize::from(h.payload_len)];
        h.write(&mut buf).expect("write");
        palisade_wire::ipv6::set_traffic_class(&mut buf, tc).expect("tc");
        palisade_wire::ipv6::set_next_header(&mut buf, nh).expect("nh");
        palisade_wire::ipv6::set_payload_len(&mut buf, 0).expect("len");
        let parsed = Ipv6Header::parse(&buf);
        if nh == proto::HOPOPT {
            prop_assert_eq!(parsed, Err(palisade_wire::WireError::Jumbogram));
        } else {
            prop_assert_eq!(
                parsed,
                Ok(Ipv6Header { traffic_class: tc, next_header: nh, payload_len: 0, ..h })
            );
        }
    }

    #[test]
    fn esp_header_round_trip(spi in any::<u32>(), seq in any::<u32>()) {
        let h = EspHeader { spi, seq };
        let mut buf = [0u8; ESP_HEADER_LEN];
        h.write(&mut buf).expect("write");
        prop_assert_eq!(EspHeader::parse(&buf), Ok(h));
    }

    #[test]
    fn esp_trailer_round_trip(payload in prop::collection::vec(any::<u8>(), 0..64), align in prop::sample::select(vec![1usize, 4, 8, 16]), next_header in any::<u8>()) {
        let pad = pad_len_for(payload.len(), align);
        let pad_len = u8::try_from(pad).expect("pad fits");
        let t = EspTrailer { pad_len, next_header };
        let mut buf = payload.clone();
        buf.resize(payload.len() + pad + 2, 0);
        t.write_to_end(&mut buf).expect("write");
        prop_assert_eq!(buf.len() % align.max(4), 0);
        prop_assert_eq!(&buf[..payload.len()], &payload[..]);
        prop_assert_eq!(EspTrailer::parse_from_end(&buf), Ok(t));
        prop_assert!(check_padding(&buf, pad_len));
        prop_assert_eq!(t.payload_len(buf.len()), Some(payload.len()));
    }

    #[test]
    fn esp_trailer_any_pad_len(pad_len in any::<u8>(), next_header in any::<u8>(), flip in any::<prop::sample::Index>()) {
        let t = EspTrailer { pad_len, next_header };
        let mut buf = vec![0xAAu8; usize::from(pad_len) + 2];
        t.write_to_end(&mut buf).expect("write");
        prop_assert_eq!(EspTrailer::parse_from_end(&buf), Ok(t));
        prop_assert!(check_padding(&buf, pad_len));
        if pad_len > 0 {
            let i = flip.index(usize::from(pad_len));
            buf[i] ^= 0x80;
            prop_assert!(!check_padding(&buf, pad_len));
        }
    }

    #[test]
    fn ah_round_trip(next_header in any::<u8>(), icv_len in 0usize..64, v6 in any::<bool>(), spi in any::<u32>(), seq in any::<u32>()) {
        let len = ah_len_for(icv_len, v6);
        prop_assert!(len >= icv_len + 12 && len < icv_len + 12 + 8);
        prop_assert_eq!(len % if v6 { 8 } else { 4 }, 0);
        let payload_len = AhHeader::payload_len_for(len).expect("encodable");
        let h = AhHeader { next_header, payload_len, spi, seq };
        prop_assert!(h.is_aligned(v6));
        let mut buf = vec![0xCCu8; len];
        h.write(&mut buf).expect("write");
        prop_assert_eq!(AhHeader::parse(&buf), Ok(h));
        prop_assert_eq!(h.header_len(), len);
        prop_assert!(h.icv_len() >= icv_len);
        prop_assert!(buf[h.icv_range()].iter().all(|&b| b == 0xCC));
    }

    #[test]
    fn udp_round_trip(src_port in any::<u16>(), dst_port in any::<u16>(), payload_len in 0u16..100, checksum in any::<u16>()) {
        let h = UdpHeader { src_port, dst_port, length: 8 + payload_len, checksum };
        let mut buf = vec![0u8; usize::from(h.length)];
        h.write(&mut buf).expect("write");
        prop_assert_eq!(UdpHeader::parse(&buf), Ok(h));
    }

    #[test]
    fn udp_checksums_verify(payload in prop::collection::vec(any::<u8>(), 0..100), src4 in any::<[u8; 4]>(), dst4 in any::<[u8; 4]>(), src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>()) {
        let len = u16::try_from(8 + payload.len()).expect("fits");
        let mut d = vec![0u8; usize::from(len)];
        UdpHeader { src_port: 4500, dst_port: 4500, length: len, checksum: 0 }.write(&mut d).expect("write");
        d[8..].copy_from_slice(&payload);
        let v4 = udp_checksum_v4(src4, dst4, &d);
        let v6 = udp_checksum_v6(src6, dst6, &d);
        prop_assert!(v4 != 0 && v6 != 0);
        d[6..8].copy_from_slice(&v4.to_be_bytes());
        prop_assert!(palisade_wire::udp::verify_udp_checksum_v4(src4, dst4, &d));
        d[6..8].copy_from_slice(&v6.to_be_bytes());
        prop_assert!(palisade_wire::udp::verify_udp_checksum_v6(src6, dst6, &d));
    }

    #[test]
    fn checksum_matches_reference(data in prop::collection::vec(any::<u8>(), 0..300), cut_a in any::<prop::sample::Index>(), cut_b in any::<prop::sample::Index>()) {
        let whole = internet_checksum(&data);
        prop_assert_eq!(whole, reference_checksum(&data));
        let mut a = cut_a.index(data.len() + 1);
        let mut b = cut_b.index(data.len() + 1);
        if a > b { core::mem::swap(&mut a, &mut b); }
        let mut c = Checksum::new();
        c.add_bytes(&data[..a]);
        c.add_bytes(&data[a..b]);
        c.add_bytes(&data[b..]);
        prop_assert_eq!(c.finish(), whole);
    }

    /// Built chains walk back to the headers they were built from, and the
    /// ESP insert point follows RFC 4303 §3.1.1.
    #[test]
    fn ext_chain_round_trip(kinds in prop::collection::vec(prop::sample::select(vec![proto::IPV6_ROUTE, proto::IPV6_FRAG, proto::IPV6_OPTS, proto::AH]), 0..10), hbh in any::<bool>()) {
        let mut all: Vec<u8> = Vec::new();
        if hbh { all.push(proto::HOPOPT); }
        all.extend(&kinds);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for (i, &kind) in all.iter().enumerate() {
            let next = all.get(i + 1).copied().unwrap_or(proto::TCP);
            parts.push(match kind {
                proto::IPV6_ROUTE => common::routing_header(next, 0),
                proto::IPV6_FRAG => common::fragment_header(next, 0, true),
                proto::AH => common::ah(next, 12, true),
                _ => common::options_header(next, &[]),
            });
        }
        parts.push(common::tcp());
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let p = common::ipv6(all.first().copied().unwrap_or(proto::TCP), &refs);
        let chain = ExtChain::walk(&p).expect("walk");
        let walked: Vec<u8> = chain.headers().iter().map(|h| h.kind).collect();
        prop_assert_eq!(&walked, &all);
        prop_assert_eq!(chain.upper_protocol, proto::TCP);
        prop_assert_eq!(chain.upper_offset, p.len() - 20);

        // Reference rule: the longest prefix of HBH/Routing/Fragment and
        // Destination Options followed (anywhere later) by Routing.
        let mut expected = 0;
        for (i, &k) in all.iter().enumerate() {
            let before = match k {
                proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_FRAG => true,
                proto::IPV6_OPTS => all[i + 1..].contains(&proto::IPV6_ROUTE),
                _ => false,
            };
            if !before { break; }
            expected = i + 1;
        }
        let (at, index) = chain.esp_insert_point();
        prop_assert_eq!(index, expected.checked_sub(1));
        let expected_at = IPV6_HEADER_LEN + parts[..expected].iter().map(Vec::len).sum::<usize>();
        prop_assert_eq!(at, expected_at);
    }
}
