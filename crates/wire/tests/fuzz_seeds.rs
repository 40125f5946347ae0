//! The seed corpus for `fuzz/fuzz_targets/wire_parsers.rs`, built with the
//! crate's own emitters so every seed is a well-formed packet of its kind.
//!
//! `cargo test -p palisade-wire --test fuzz_seeds -- --ignored` rewrites
//! `fuzz/seeds/wire_parsers/`; the non-ignored test checks that each seed
//! still parses the way its name says.

mod common;

use std::path::PathBuf;

use common::*;
use palisade_wire::{
    EspTrailer, ExtChain, Ipv4Header, NAT_KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER, Udp4500Payload,
    classify_udp_4500, pad_len_for, proto,
};

const SPI: u32 = 0xC0FF_EE01;

fn esp_plaintext() -> Vec<u8> {
    // An inner TCP segment padded for a 16-byte block cipher.
    let mut p = tcp();
    let pad = pad_len_for(p.len(), 16);
    p.resize(p.len() + pad + 2, 0);
    EspTrailer {
        pad_len: u8::try_from(pad).expect("pad"),
        next_header: proto::TCP,
    }
    .write_to_end(&mut p)
    .expect("trailer");
    p
}

fn ike_sa_init_header() -> Vec<u8> {
    // IKEv2 header (RFC 7296 §3.1): SPIi, SPIr = 0, next payload SA (33),
    // version 2.0, exchange IKE_SA_INIT (34), flags Initiator, message ID 0.
    let mut h = vec![
        1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 33, 0x20, 34, 0x08,
    ];
    h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 28]);
    h
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let ciphertext = [0x5Au8; 32];
    let esp_v4 = esp(SPI, 1, &ciphertext);
    let mut ike = NON_ESP_MARKER.to_vec();
    ike.extend_from_slice(&ike_sa_init_header());

    let v4_options = [148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0];
    let v6_hbh = options_header(proto::AH, &[0x05, 2, 0, 0, 0x3E, 2, 0xAB, 0xCD]);
    let v6_dst = options_header(TCP, &[0x3E, 2, 0x11, 0x22]);

    vec![
        (
            "ipv4_udp.bin",
            ipv4(proto::UDP, &udp_v4(1024, 53, b"hello")),
        ),
        ("ipv4_esp.bin", ipv4(proto::ESP, &esp_v4)),
        (
            "ipv4_options_ah.bin",
            ipv4_with_options(
                proto::AH,
                &v4_options,
                &[ah(proto::TCP, 12, false), tcp()].concat(),
            ),
        ),
        (
            "ipv4_udp4500_esp.bin",
            ipv4(proto::UDP, &udp_v4(NAT_T_PORT, NAT_T_PORT, &esp_v4)),
        ),
        (
            "ipv6_ext_chain.bin",
            ipv6(
                proto::HOPOPT,
                &[
                    &options_header(proto::IPV6_OPTS, &[]),
                    &options_header(proto::IPV6_ROUTE, &[]),
                    &routing_header(proto::IPV6_FRAG, 0),
                    &fragment_header(proto::IPV6_OPTS, 0, false),
                    &options_header(TCP, &[]),
                    &tcp(),
                ],
            ),
        ),
        (
            "ipv6_ah.bin",
            ipv6(
                proto::HOPOPT,
                &[&v6_hbh, &ah(proto::IPV6_OPTS, 16, true), &v6_dst, &tcp()],
            ),
        ),
        (
            "ipv6_esp.bin",
            ipv6(proto::ESP, &[&esp(SPI, 7, &ciphertext)]),
        ),
        ("natt_keepalive.bin", NAT_KEEPALIVE.to_vec()),
        ("natt_ike.bin", ike),
        ("natt_esp.bin", esp_v4.clone()),
        ("esp_plaintext.bin", esp_plaintext()),
    ]
}

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/wire_parsers")
}

#[test]
fn seeds_parse_as_named() {
    for (name, bytes) in seeds() {
        match name {
            n if n.starts_with("ipv4") => {
                Ipv4Header::parse(&bytes).expect(n);
            }
            n if n.starts_with("ipv6") => {
                let chain = ExtChain::walk(&bytes).expect(n);
                if n == "ipv6_ext_chain.bin" {
                    assert_eq!(chain.len(), 5);
                    assert_eq!(chain.esp_insert_point().1, Some(3));
                }
            }
            "natt_keepalive.bin" => {
                assert_eq!(classify_udp_4500(&bytes), Ok(Udp4500Payload::Keepalive));
            }
            "natt_ike.bin" => {
                assert!(matches!(
                    classify_udp_4500(&bytes),
                    Ok(Udp4500Payload::Ike(_))
                ));
            }
            "natt_esp.bin" => {
                assert!(matches!(
                    classify_udp_4500(&bytes),
                    Ok(Udp4500Payload::Esp(_))
                ));
            }
            "esp_plaintext.bin" => {
                let t = EspTrailer::parse_from_end(&bytes).expect(name);
                assert!(palisade_wire::check_padding(&bytes, t.pad_len));
            }
            other => panic!("seed {other} has no check"),
        }
    }
}

#[test]
#[ignore = "writes files under fuzz/; run explicitly to regenerate seeds"]
fn write_fuzz_seeds() {
    let dir = seed_dir();
    std::fs::create_dir_all(&dir).expect("create seed dir");
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
