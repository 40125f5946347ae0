//! RFC 3602 §4, test cases 5 to 8: whole ESP packets with AES-128-CBC and no
//! integrity, sealed with the IV the RFC gives.
//!
//! The packets were typed in from a transcription of the RFC text
//! (RUB-NDS ipsec state machine extractor, ESPMessageTest). The RFC's
//! plaintext includes the RFC 4303 default padding 1, 2, 3, ..., the pad
//! length and the next header, which `payload` below appends.

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_vector, unhex};
use palisade_crypto::{EncrId, EspSuite, EspTransform, IntegId};

const AES128_CBC: EspSuite = EspSuite {
    encr: EncrId::AesCbc,
    key_bits: 128,
    integ: IntegId::None,
};

/// `data || 1..=pad || pad || next_header`, padded to the AES block.
fn payload(data: &[u8], next_header: u8) -> Vec<u8> {
    let pad = (16 - (data.len() + 2) % 16) % 16;
    let mut out = data.to_vec();
    out.extend(1..=pad as u8);
    out.extend([pad as u8, next_header]);
    out
}

#[test]
fn rfc3602_cases_5_to_8() {
    // (key, SPI, seq, IV, payload data, next header, ESP packet)
    let cases = [
        (
            "90d382b410eeba7ad938c46cec1a82bf",
            "00004321",
            1u32,
            "e96e8c08ab465763fd098d45dd3ff893",
            "08000ebda70a00008e9c083db95b0700 08090a0b0c0d0e0f1011121314151617
             18191a1b1c1d1e1f2021222324252627 28292a2b2c2d2e2f3031323334353637",
            1u8,
            "00004321 00000001 e96e8c08ab465763fd098d45dd3ff893
             f663c25d325c18c6a9453e194e120849 a4870b66cc6b9965330013b4898dc856
             a4699e523a55db080b59ec3a8e4b7e52 775b07d1db34ed9c538ab50c551b874a
             a269add047ad2d5913ac19b7cfbad4a6",
        ),
        (
            "90d382b410eeba7ad938c46cec1a82bf",
            "00004321",
            8,
            "69d08df7d203329db093fc4924e5bd80",
            "0800b5e8a80a0500a69c083d0b660e00 777777777777777777777777",
            1,
            "00004321 00000008 69d08df7d203329db093fc4924e5bd80
             f51995881ec4e0c4488987ce742e8109 689bb379d2d750c0d915dca346a89f75",
        ),
        (
            "0123456789abcdef0123456789abcdef",
            "00008765",
            2,
            "f4e765244f6407adf13dc1380f673f37",
            "45000054090400004001f988c0a87b03 c0a87bc808009f76a90a0100b49c083d
             02a2040008090a0b0c0d0e0f10111213 1415161718191a1b1c1d1e1f20212223
             2425262728292a2b2c2d2e2f30313233 34353637",
            4,
            "00008765 00000002 f4e765244f6407adf13dc1380f673f37
             773b5241a4c449225e4f3ce5ed611b0c 237ca96cf74a93013c1b0ea1a0cf70f8
             e4ecaec78ac53aad7a0f022b859243c6 47752e94a859352b8a4d4d2decd136e5
             c177f132ad3fbfb2201ac9904c74ee0a 109e0ca1e4dfe9d5a100b842f1c22f0d",
        ),
        (
            "0123456789abcdef0123456789abcdef",
            "00008765",
            5,
            "85d47224b5f3dd5d2101d4ea8dffab22",
            "45000044090c00004001f990c0a87b03 c0a87bc80800d63caa0a0200c69c083d
             a3de0300ffffffffffffffffffffffff ffffffffffffffffffffffffffffffff
             ffffffff",
            4,
            "00008765 00000005 85d47224b5f3dd5d2101d4ea8dffab22
             15b92683819596a8047232cc00f7048f e45318e11f8a0f62ede3c3fc61203bb5
             0f980a08c9843fd3a1b06d5c07ff9639 b7eb7dfb3512e5de435e7207ed971ef3
             d2726d9b5ef6affc6d17a0decbb13892",
        ),
    ];
    for (key, spi, seq, iv, data, next_header, wire) in cases {
        let t = EspTransform::new(AES128_CBC, &unhex(key)).unwrap();
        let before = [
            unhex(spi),
            seq.to_be_bytes().to_vec(),
            unhex(iv),
            payload(&unhex(data), next_header),
        ]
        .concat();
        check_vector(&t, &before, &unhex(wire), u64::from(seq), false);
    }
}
