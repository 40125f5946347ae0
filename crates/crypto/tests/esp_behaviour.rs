//! ESP transform behaviour beyond the vectors: IV policy, layout errors and
//! key handling.

#![allow(clippy::unwrap_used)]

use palisade_crypto::{CryptoError, EncrId, EspSuite, EspTransform, IntegId};

fn packet(suite: EspSuite, seq: u64, payload_len: usize) -> Vec<u8> {
    [
        &0x1122_3344u32.to_be_bytes()[..],
        &(seq as u32).to_be_bytes(),
        &vec![0xee; suite.iv_len()],
        &(0..payload_len).map(|i| i as u8).collect::<Vec<u8>>(),
        &vec![0; suite.icv_len()],
    ]
    .concat()
}

fn transform(suite: EspSuite) -> EspTransform {
    let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| (i * 3) as u8).collect();
    EspTransform::new(suite, &keymat).unwrap()
}

/// The AEAD and GMAC IV is the 64-bit sequence number, so sealing the same
/// sequence number twice gives the same IV (and, deterministically, the same
/// packet): the SA layer must never reuse a sequence number.
#[test]
fn aead_iv_is_the_sequence_number() {
    for suite in [
        EspSuite::AES128_GCM16,
        EspSuite::AES256_GCM16,
        EspSuite::CHACHA20_POLY1305,
        EspSuite::AES128_GMAC,
        EspSuite::AES256_GMAC,
    ] {
        let t = transform(suite);
        let seq = 0x0102_0304_0506_0708;
        let mut a = packet(suite, seq, 32);
        let mut b = a.clone();
        t.seal(&mut a, seq, true).unwrap();
        t.seal(&mut b, seq, true).unwrap();
        assert_eq!(a[8..16], seq.to_be_bytes(), "{}", suite.name());
        assert_eq!(a, b, "{}", suite.name());

        let mut c = packet(suite, seq + 1, 32);
        t.seal(&mut c, seq + 1, true).unwrap();
        assert_eq!(c[8..16], (seq + 1).to_be_bytes());
        // Without ESN the IV is still the full counter value.
        let mut d = packet(suite, 7, 32);
        t.seal(&mut d, 7, false).unwrap();
        assert_eq!(d[8..16], 7u64.to_be_bytes());
    }
}

/// The CBC IV is AES under the SA's key of SPI || 0 || seq (NIST SP 800-38A
/// Appendix C): a different, unpredictable IV for every sequence number, checked
/// here against aws-lc's AES computed independently of the transform.
#[test]
fn cbc_iv_is_the_encrypted_counter() {
    use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
    for suite in [
        EspSuite::AES128_CBC_SHA256_128,
        EspSuite::AES256_CBC_SHA512_256,
    ] {
        let t = transform(suite);
        let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| (i * 3) as u8).collect();
        let alg = if suite.key_bits == 128 {
            &AES_128
        } else {
            &AES_256
        };
        let ecb = EncryptingKey::ecb(
            UnboundCipherKey::new(alg, &keymat[..suite.encr_key_len()]).unwrap(),
        )
        .unwrap();
        let mut ivs = Vec::new();
        for seq in [9u64, 10, (7 << 32) | 9] {
            let mut a = packet(suite, seq, 48);
            t.seal(&mut a, seq, true).unwrap();
            let mut want = [0u8; 16];
            want[..4].copy_from_slice(&0x1122_3344u32.to_be_bytes());
            want[8..].copy_from_slice(&seq.to_be_bytes());
            ecb.less_safe_encrypt(&mut want, EncryptionContext::None)
                .unwrap();
            assert_eq!(a[8..24], want, "seq {seq}");
            ivs.push(want);
            t.open(&mut a, seq, true).unwrap();
            assert_eq!(a[24..72], packet(suite, seq, 48)[24..72]);
        }
        assert!(ivs[0] != ivs[1] && ivs[1] != ivs[2] && ivs[0] != ivs[2]);
    }
}

#[test]
fn seal_with_iv_keeps_the_callers_iv() {
    for suite in [EspSuite::AES128_GCM16, EspSuite::AES128_CBC_SHA1_96] {
        let t = transform(suite);
        let mut p = packet(suite, 3, 64);
        t.seal_with_iv(&mut p, 3, false).unwrap();
        assert!(p[8..8 + suite.iv_len()].iter().all(|&b| b == 0xee));
        t.open(&mut p, 3, false).unwrap();
    }
}

#[test]
fn null_encryption_leaves_payload_in_clear() {
    let suite = EspSuite::NULL_SHA256_128;
    let t = transform(suite);
    let plain = packet(suite, 1, 20);
    let mut p = plain.clone();
    t.seal(&mut p, 1, false).unwrap();
    assert_eq!(p[..28], plain[..28]);
    assert_ne!(p[28..], plain[28..]);
    t.open(&mut p, 1, false).unwrap();
}

#[test]
fn cbc_without_integrity_opens_anything_aligned() {
    let suite = EspSuite {
        encr: EncrId::AesCbc,
        key_bits: 256,
        integ: IntegId::None,
    };
    assert_eq!(suite.icv_len(), 0);
    assert_eq!(suite.name(), "aes256");
    let t = transform(suite);
    let mut p = packet(suite, 2, 32);
    t.seal(&mut p, 2, false).unwrap();
    p[30] ^= 1;
    assert_eq!(t.open(&mut p, 2, false), Ok(()));
}

#[test]
fn layout_errors() {
    for suite in EspSuite::KNOWN {
        let t = transform(suite);
        let align = suite.align();
        // Too short for header, IV and ICV.
        for len in 0..8 + suite.iv_len() + suite.icv_len() {
            let mut p = vec![0u8; len];
            assert_eq!(t.seal(&mut p, 0, false), Err(CryptoError::BadLayout));
            assert_eq!(t.open(&mut p, 0, false), Err(CryptoError::BadLayout));
        }
        // An empty payload has no room for the ESP trailer.
        let mut p = packet(suite, 0, 0);
        assert_eq!(t.seal(&mut p, 0, false), Err(CryptoError::BadLayout));
        // Misaligned payloads.
        for extra in 1..align {
            let mut p = packet(suite, 0, align + extra);
            let before = p.clone();
            assert_eq!(t.seal(&mut p, 0, false), Err(CryptoError::BadLayout));
            assert_eq!(p, before, "nothing is written on error");
            assert_eq!(t.open(&mut p, 0, false), Err(CryptoError::BadLayout));
        }
        // The header's sequence number must be the low half of `seq`.
        let mut p = packet(suite, 5, align);
        assert_eq!(t.seal(&mut p, 6, false), Err(CryptoError::BadLayout));
        assert_eq!(t.seal(&mut p, (1 << 32) | 5, true), Ok(()));
        assert_eq!(t.open(&mut p, 6, true), Err(CryptoError::BadLayout));
        assert_eq!(t.open(&mut p, (1 << 32) | 5, true), Ok(()));
    }
}

#[test]
fn key_length_and_suite_errors() {
    for suite in EspSuite::KNOWN {
        let n = suite.keymat_len();
        for len in [0, n - 1, n + 1] {
            assert_eq!(
                EspTransform::new(suite, &vec![0; len]).unwrap_err(),
                CryptoError::BadKeyLength {
                    expected: n,
                    got: len
                },
                "{}",
                suite.name()
            );
        }
    }
    let bad = EspSuite {
        encr: EncrId::AesGcm16,
        key_bits: 192,
        integ: IntegId::None,
    };
    assert!(matches!(
        EspTransform::new(bad, &[0; 28]),
        Err(CryptoError::UnsupportedSuite(_))
    ));
}

#[test]
fn debug_output_has_no_key_material() {
    let t = EspTransform::new(EspSuite::AES128_GCM16, &[0xab; 20]).unwrap();
    let shown = format!("{t:?}");
    assert!(shown.contains("aes128gcm16"));
    assert!(!shown.to_lowercase().contains("ab, "));
    assert!(!shown.contains("171"));
}

#[test]
fn transforms_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EspTransform>();
    assert_send_sync::<palisade_crypto::AhTransform>();
    assert_send_sync::<palisade_crypto::Integrity>();
}

/// A forged AEAD packet does not leave decrypted bytes behind.
#[test]
fn failed_aead_open_wipes_the_payload() {
    for suite in [EspSuite::AES256_GCM16, EspSuite::CHACHA20_POLY1305] {
        let t = transform(suite);
        let mut p = packet(suite, 11, 40);
        t.seal(&mut p, 11, false).unwrap();
        let last = p.len() - 1;
        p[last] ^= 1;
        assert_eq!(t.open(&mut p, 11, false), Err(CryptoError::Integrity));
        assert!(p[16..56].iter().all(|&b| b == 0), "{}", suite.name());
    }
}
