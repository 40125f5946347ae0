//! Property tests over every valid ESP suite: seal/open round trips, single
//! bit flips are caught, and arbitrary bytes never make anything panic.

#![allow(clippy::unwrap_used)]

mod common;

use common::receiver_seq;
use palisade_crypto::{CryptoError, EncrId, EspSuite, EspTransform, IntegId};
use proptest::prelude::*;

const ENCRS: [EncrId; 5] = [
    EncrId::Null,
    EncrId::AesCbc,
    EncrId::AesGcm16,
    EncrId::NullAuthAesGmac,
    EncrId::ChaCha20Poly1305,
];
const INTEGS: [IntegId; 7] = [
    IntegId::None,
    IntegId::HmacSha1_96,
    IntegId::AesGmac128,
    IntegId::AesGmac256,
    IntegId::HmacSha2_256_128,
    IntegId::HmacSha2_384_192,
    IntegId::HmacSha2_512_256,
];

/// Every combination `validate` accepts: the named suites plus the other
/// CBC/NULL pairings, including CBC without integrity.
fn valid_suites() -> Vec<EspSuite> {
    let mut out = Vec::new();
    for encr in ENCRS {
        for key_bits in [0, 128, 192, 256] {
            for integ in INTEGS {
                let suite = EspSuite {
                    encr,
                    key_bits,
                    integ,
                };
                if suite.validate().is_ok() {
                    out.push(suite);
                }
            }
        }
    }
    out
}

/// A suite, key material of the right length, and a plaintext ESP packet
/// (SPI, sequence number, zero IV, aligned payload, zero ICV space).
fn arb_case() -> impl Strategy<Value = (EspSuite, Vec<u8>, Vec<u8>, u64, bool)> {
    (
        prop::sample::select(valid_suites()),
        any::<u64>(),
        any::<bool>(),
        1usize..=24,
        any::<u32>(),
    )
        .prop_flat_map(|(suite, seq, esn, blocks, spi)| {
            let payload_len = blocks * suite.align();
            (
                Just(suite),
                prop::collection::vec(any::<u8>(), suite.keymat_len()),
                prop::collection::vec(any::<u8>(), payload_len),
                Just(seq),
                Just(esn),
                Just(spi),
            )
        })
        .prop_map(|(suite, keymat, payload, seq, esn, spi)| {
            let packet = [
                &spi.to_be_bytes()[..],
                &(seq as u32).to_be_bytes(),
                &vec![0; suite.iv_len()],
                &payload,
                &vec![0; suite.icv_len()],
            ]
            .concat();
            (suite, keymat, packet, seq, esn)
        })
}

proptest! {
    #[test]
    fn seal_then_open_round_trips((suite, keymat, plain, seq, esn) in arb_case()) {
        let t = EspTransform::new(suite, &keymat).unwrap();
        let mut packet = plain.clone();
        t.seal(&mut packet, seq, esn).unwrap();
        let payload_at = 8 + suite.iv_len();
        let icv_at = packet.len() - suite.icv_len();
        prop_assert_eq!(&packet[..8], &plain[..8]);
        if suite.is_confidential() {
            prop_assert_ne!(&packet[payload_at..icv_at], &plain[payload_at..icv_at]);
        } else {
            prop_assert_eq!(&packet[payload_at..icv_at], &plain[payload_at..icv_at]);
        }
        let sealed = packet.clone();
        t.open(&mut packet, seq, esn).unwrap();
        prop_assert_eq!(&packet[payload_at..icv_at], &plain[payload_at..icv_at]);
        // The header, IV and ICV are left as they came in.
        prop_assert_eq!(&packet[..payload_at], &sealed[..payload_at]);
        prop_assert_eq!(&packet[icv_at..], &sealed[icv_at..]);
    }

    #[test]
    fn any_bit_flip_fails_integrity(
        (suite, keymat, plain, seq, esn) in arb_case(),
        bit in any::<prop::sample::Index>(),
    ) {
        prop_assume!(suite.icv_len() > 0);
        let t = EspTransform::new(suite, &keymat).unwrap();
        let mut packet = plain;
        t.seal(&mut packet, seq, esn).unwrap();
        let bit = bit.index(packet.len() * 8);
        packet[bit / 8] ^= 1 << (bit % 8);
        // A receiver derives the sequence number from the (tampered) header.
        let seq = receiver_seq(&packet, (seq >> 32) as u32);
        prop_assert_eq!(t.open(&mut packet, seq, esn), Err(CryptoError::Integrity));
    }

    #[test]
    fn esn_high_bits_are_authenticated((suite, keymat, plain, seq, _esn) in arb_case()) {
        prop_assume!(suite.icv_len() > 0 && seq >> 32 != 0);
        let t = EspTransform::new(suite, &keymat).unwrap();
        let mut packet = plain;
        t.seal(&mut packet, seq, true).unwrap();
        let wrong_hi = seq ^ (1 << 40);
        prop_assert_eq!(t.open(&mut packet.clone(), wrong_hi, true), Err(CryptoError::Integrity));
        prop_assert_eq!(t.open(&mut packet, seq, false), Err(CryptoError::Integrity));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        suite in prop::sample::select(valid_suites()),
        key_seed in any::<u8>(),
        bytes in prop::collection::vec(any::<u8>(), 0..160),
        seq in any::<u64>(),
        esn in any::<bool>(),
        use_header_seq in any::<bool>(),
    ) {
        let keymat = vec![key_seed; suite.keymat_len()];
        let t = EspTransform::new(suite, &keymat).unwrap();
        let seq = if use_header_seq && bytes.len() >= 8 {
            receiver_seq(&bytes, (seq >> 32) as u32)
        } else {
            seq
        };
        let opened = t.open(&mut bytes.clone(), seq, esn);
        if suite.icv_len() > 0 {
            // Random bytes are never authentic.
            prop_assert!(opened.is_err());
        }
        let _ = t.seal(&mut bytes.clone(), seq, esn);
        let _ = t.seal_with_iv(&mut bytes.clone(), seq, esn);
    }
}

#[test]
fn every_named_suite_is_valid_and_in_the_property_set() {
    let valid = valid_suites();
    for suite in EspSuite::KNOWN {
        assert!(valid.contains(&suite), "{}", suite.name());
    }
    assert!(valid.contains(&EspSuite {
        encr: EncrId::AesCbc,
        key_bits: 128,
        integ: IntegId::None
    }));
}
