//! RFC 7634 Appendix A, "ESP Example": a whole ESP packet with
//! ChaCha20-Poly1305. (Appendix B is the IKEv2 example, whose AAD is an IKE
//! header, so it has no ESP packet to check.)
//!
//! Typed in from transcriptions of the RFC text that agree with each other
//! (OpenBSD regress/sys/crypto/chachapoly, a GPL AES-GCM/ChaCha bench
//! `testcases` file, and a Go ESP test that uses the packet as received).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_vector, unhex};
use palisade_crypto::{EspSuite, EspTransform};

#[test]
fn rfc7634_appendix_a_esp_example() {
    // KEYMAT: the 32-byte key followed by the 4-byte salt (RFC 7634 §2).
    let keymat = unhex(
        "808182838485868788898a8b8c8d8e8f 909192939495969798999a9b9c9d9e9f
         a0a1a2a3",
    );
    let t = EspTransform::new(EspSuite::CHACHA20_POLY1305, &keymat).unwrap();
    // SPI 0x01020304, sequence number 5, IV 0x1011121314151617.
    let header = unhex("01020304 00000005 1011121314151617");
    // An ICMP echo request in tunnel mode, padded with 01 02, pad length 2,
    // next header 4 (IPv4).
    let plaintext = unhex(
        "45000054a6f200004001e778c6336405 c000020508005b7a3a080000553bec10
         0007362708090a0b0c0d0e0f10111213 1415161718191a1b1c1d1e1f20212223
         2425262728292a2b2c2d2e2f30313233 3435363701020204",
    );
    let ciphertext_and_tag = unhex(
        "24039428b97f417e3c13753a4f05087b 67c352e6a7fab1b982d466ef407ae5c6
         14ee8099d52844eb61aa95dfab4c02f7 2aa71e7c4c4f64c9befe2facc638e8f3
         cbec163fac469b502773f6fb94e664da 9165b82829f641e0
         76aaa8266b7fb0f7b11b369907e1ad43",
    );
    let before = [header.clone(), plaintext, vec![0; 16]].concat();
    let wire = [header, ciphertext_and_tag].concat();
    check_vector(&t, &before, &wire, 5, false);
}
