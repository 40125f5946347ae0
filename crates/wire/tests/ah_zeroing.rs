//! AH mutable-field zeroing (RFC 4302 §3.3.3.1 and Appendix A).

mod common;

use common::*;
use palisade_wire::{ExtChain, WireError, proto, zero_mutable_ipv4, zero_mutable_ipv6};

#[test]
fn ipv4_fixed_fields_zeroed_rest_kept() {
    let original = ipv4(proto::AH, &[0xAB; 8]);
    let mut p = original.clone();
    zero_mutable_ipv4(&mut p).expect("zero");
    let mut expected = original;
    expected[1] = 0; // TOS
    expected[6] = 0; // flags + fragment offset
    expected[7] = 0;
    expected[8] = 0; // TTL
    expected[10] = 0; // checksum
    expected[11] = 0;
    assert_eq!(p, expected);
}

#[test]
fn ipv4_options_mutable_zeroed_whole_immutable_kept() {
    let options = [
        1, // NOP: immutable
        7, 7, 4, 10, 0, 0, 1, // Record Route: mutable, zeroed whole
        148, 4, 0, 0, // Router Alert: immutable
        68, 8, 5, 0x01, 0xAA, 0xBB, 0xCC, 0xDD, // Timestamp: mutable
        130, 3, 0x42, // Security: immutable
    ];
    let original = ipv4_with_options(proto::AH, &options, &[0xEE; 4]);
    // 23 option bytes pad to 24: IHL 11.
    assert_eq!(original[0], 0x4B);
    let mut p = original.clone();
    zero_mutable_ipv4(&mut p).expect("zero");

    let mut expected_opts = options.to_vec();
    expected_opts[1..8].fill(0);
    expected_opts[12..20].fill(0);
    expected_opts.push(0); // EOL padding
    assert_eq!(&p[20..44], &expected_opts[..]);
    assert_eq!(&p[44..], &original[44..], "payload untouched");
    assert_eq!(&p[12..20], &original[12..20], "addresses kept");
    assert_eq!(&p[2..6], &original[2..6], "length and id kept");
}

#[test]
fn ipv4_stops_at_end_of_list() {
    // LSRR after EOL is padding garbage and must not be interpreted.
    let options = [1, 0, 131, 0x33];
    let original = ipv4_with_options(proto::AH, &options, &[]);
    let mut p = original.clone();
    zero_mutable_ipv4(&mut p).expect("zero");
    assert_eq!(&p[20..24], &options);
}

#[test]
fn ipv4_malformed_options_rejected() {
    let mut p = ipv4_with_options(proto::AH, &[7, 40, 4, 0], &[]);
    assert_eq!(zero_mutable_ipv4(&mut p), Err(WireError::BadOption));
    let mut p = ipv4_with_options(proto::AH, &[1, 1, 1, 7], &[]);
    assert_eq!(zero_mutable_ipv4(&mut p), Err(WireError::BadOption));
}

#[test]
fn ipv4_header_only_copy_is_enough() {
    let full = ipv4(proto::AH, &[0xAB; 100]);
    let mut header = full[..20].to_vec();
    zero_mutable_ipv4(&mut header).expect("zero header copy");
    assert_eq!(header[8], 0);
    let mut short = full[..19].to_vec();
    assert!(zero_mutable_ipv4(&mut short).is_err());
}

/// HBH [Router Alert, 0x3E with data] -> AH -> DST [0x3E] -> TCP.
fn v6_ah_packet() -> Vec<u8> {
    let hbh = options_header(
        proto::AH,
        &[0x05, 2, 0, 0, 0x3E, 4, 0xAA, 0xBB, 0xCC, 0xDD, 0, 1, 1, 0],
    );
    assert_eq!(hbh.len(), 16);
    let dst = options_header(TCP, &[0x3E, 2, 0x11, 0x22]);
    ipv6(
        proto::HOPOPT,
        &[&hbh, &ah(proto::IPV6_OPTS, 12, true), &dst, &tcp()],
    )
}

#[test]
fn ipv6_fixed_and_changing_options_zeroed() {
    let original = v6_ah_packet();
    let chain = ExtChain::walk(&original).expect("walk");
    assert_eq!(chain.len(), 3);
    let mut p = original.clone();
    zero_mutable_ipv6(&mut p, &chain).expect("zero");

    let mut expected = original.clone();
    expected[0] = 0x60;
    expected[1..4].fill(0);
    expected[7] = 0;
    // HBH at 40: 0x3E data at 40 + 2 + 4 + 2 .. +4
    expected[48..52].fill(0);
    // AH at 56 (24 bytes) untouched; DST at 80: data at 84..86.
    expected[84..86].fill(0);
    assert_eq!(p, expected);
    // Payload length, next header, addresses survive.
    assert_eq!(&p[4..7], &original[4..7]);
    assert_eq!(&p[8..40], &original[8..40]);
}

#[test]
fn ipv6_routing_with_segments_left_unsupported() {
    let p = ipv6(
        proto::IPV6_ROUTE,
        &[&routing_header(proto::AH, 1), &ah(TCP, 12, true), &tcp()],
    );
    let chain = ExtChain::walk(&p).expect("walk");
    let mut copy = p.clone();
    assert_eq!(
        zero_mutable_ipv6(&mut copy, &chain),
        Err(WireError::UnsupportedExtension(proto::IPV6_ROUTE))
    );
    assert_eq!(copy, p, "rejected before editing");

    let p = ipv6(
        proto::IPV6_ROUTE,
        &[&routing_header(proto::AH, 0), &ah(TCP, 12, true), &tcp()],
    );
    let chain = ExtChain::walk(&p).expect("walk");
    let mut copy = p.clone();
    zero_mutable_ipv6(&mut copy, &chain).expect("segments left 0 is fine");
    assert_eq!(&copy[40..64], &p[40..64], "routing header unchanged");
}

#[test]
fn ipv6_fragment_unsupported() {
    let p = ipv6(
        proto::IPV6_FRAG,
        &[
            &fragment_header(proto::AH, 0, true),
            &ah(TCP, 12, true),
            &tcp(),
        ],
    );
    let chain = ExtChain::walk(&p).expect("walk");
    let mut copy = p.clone();
    assert_eq!(
        zero_mutable_ipv6(&mut copy, &chain),
        Err(WireError::UnsupportedExtension(proto::IPV6_FRAG))
    );
}

#[test]
fn ipv6_chain_from_another_packet_is_an_error_not_a_panic() {
    let long = v6_ah_packet();
    let chain = ExtChain::walk(&long).expect("walk");
    let mut short = long[..50].to_vec();
    assert!(zero_mutable_ipv6(&mut short, &chain).is_err());
    let mut v4 = ipv4(proto::AH, &[0; 60]);
    assert_eq!(
        zero_mutable_ipv6(&mut v4, &chain),
        Err(WireError::BadVersion(4))
    );
}

#[test]
fn ipv6_malformed_option_rejected() {
    let mut hbh = options_header(TCP, &[0x3E, 2, 0, 0]);
    hbh[3] = 200; // option data overruns the header
    let p = ipv6(proto::HOPOPT, &[&hbh, &tcp()]);
    let chain = ExtChain::walk(&p).expect("walk");
    let mut copy = p.clone();
    assert_eq!(
        zero_mutable_ipv6(&mut copy, &chain),
        Err(WireError::BadOption)
    );
}
