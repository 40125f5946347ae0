//! Feeds arbitrary bytes to every parser in palisade-wire. Any panic is a
//! bug: these parsers see attacker-controlled packets. Beyond "no panic",
//! successful parses are re-emitted and must parse back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_wire::ipv4::options::Ipv4Options;
use palisade_wire::ipv6_options::Ipv6Options;
use palisade_wire::{
    AhHeader, EspHeader, EspTrailer, ExtChain, IPV6_HEADER_LEN, Ipv4Header, Ipv6Header,
    Udp4500Payload, UdpHeader, ah, check_padding, classify_udp_4500, ip_version, ipv4, proto, udp,
    zero_mutable_ipv4, zero_mutable_ipv6,
};

fuzz_target!(|data: &[u8]| {
    let _ = ip_version(data);
    ipv4_parsers(data);
    ipv6_parsers(data);
    ipsec_parsers(data);
    udp_parsers(data);
});

fn ipv4_parsers(data: &[u8]) {
    if let Ok(h) = Ipv4Header::parse(data) {
        assert!(data.get(h.payload_range()).is_some());
        if h.header_len == 20 {
            let mut copy = data.to_vec();
            h.write(&mut copy).expect("parsed header re-emits");
            let again = Ipv4Header::parse(&copy).expect("re-emitted header parses");
            assert_eq!(
                again,
                Ipv4Header {
                    checksum: again.checksum,
                    ..h
                }
            );
            assert!(ipv4::verify_checksum(&copy));
        }
    }
    if let Ok(options) = Ipv4Options::new(data) {
        for opt in options {
            if opt.is_err() {
                break;
            }
        }
    }
    let _ = ipv4::verify_checksum(data);
    let mut copy = data.to_vec();
    if zero_mutable_ipv4(&mut copy).is_ok() {
        let mut twice = copy.clone();
        zero_mutable_ipv4(&mut twice).expect("idempotent");
        assert_eq!(twice, copy);
    }
    let mut copy = data.to_vec();
    let _ = ipv4::set_total_len(&mut copy, 20);
    let _ = ipv4::set_dscp(&mut copy, 46);
    if ipv4::update_checksum(&mut copy).is_ok() {
        assert!(ipv4::verify_checksum(&copy));
    }
}

fn ipv6_parsers(data: &[u8]) {
    if let Ok(h) = Ipv6Header::parse(data) {
        let mut copy = data.to_vec();
        h.write(&mut copy).expect("parsed header re-emits");
        assert_eq!(Ipv6Header::parse(&copy), Ok(h));
    }
    let Ok(chain) = ExtChain::walk(data) else {
        return;
    };
    let mut offset = IPV6_HEADER_LEN;
    for h in chain.headers() {
        assert_eq!(h.offset, offset);
        offset = h.end();
        if h.kind == proto::HOPOPT || h.kind == proto::IPV6_OPTS {
            let bytes = data.get(h.offset..h.end()).expect("header in bounds");
            for opt in Ipv6Options::new(bytes) {
                if opt.is_err() {
                    break;
                }
            }
        }
    }
    assert_eq!(chain.upper_offset, offset);
    let (at, index) = chain.esp_insert_point();
    assert!(at <= chain.upper_offset);
    let patch = chain.next_header_field_offset(index);
    assert!(patch < at);
    let _ = chain.ah_insert_point();

    let mut copy = data.to_vec();
    if zero_mutable_ipv6(&mut copy, &chain).is_ok() {
        let again = ExtChain::walk(&copy).expect("zeroing keeps the chain");
        assert_eq!(again.headers(), chain.headers());
    }
    // The same chain against a shorter buffer must fail cleanly.
    let mut short = data.get(..data.len() / 2).unwrap_or_default().to_vec();
    let _ = zero_mutable_ipv6(&mut short, &chain);
}

fn ipsec_parsers(data: &[u8]) {
    if let Ok(h) = EspHeader::parse(data) {
        let mut out = [0u8; 8];
        h.write(&mut out).expect("esp write");
        assert_eq!(data.get(..8), Some(&out[..]));
    }
    if let Ok(t) = EspTrailer::parse_from_end(data) {
        assert!(t.payload_len(data.len()).is_some());
        let _ = check_padding(data, t.pad_len);
    }
    if let Some(&last) = data.last() {
        let _ = check_padding(data, last);
    }
    if let Ok(h) = AhHeader::parse(data) {
        assert!(data.get(h.icv_range()).is_some());
        let mut copy = data.to_vec();
        h.write(&mut copy).expect("ah write");
        assert_eq!(AhHeader::parse(&copy), Ok(h));
        ah::zero_icv(&mut copy).expect("zero icv");
    }
}

fn udp_parsers(data: &[u8]) {
    if let Ok(h) = UdpHeader::parse(data) {
        let mut copy = data.to_vec();
        h.write(&mut copy).expect("udp write");
        assert_eq!(copy, data);
    }
    let _ = udp::verify_udp_checksum_v4([192, 0, 2, 1], [192, 0, 2, 2], data);
    let _ = udp::verify_udp_checksum_v6([1; 16], [2; 16], data);
    match classify_udp_4500(data) {
        Ok(Udp4500Payload::Keepalive) => assert_eq!(data, [0xFF]),
        Ok(Udp4500Payload::Ike(ike)) => assert_eq!(ike.len() + 4, data.len()),
        Ok(Udp4500Payload::Esp(esp)) => assert!(EspHeader::parse(esp).is_ok()),
        Err(_) => {}
    }
}
