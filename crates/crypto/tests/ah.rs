//! AH transform behaviour: round trips, tampering, ESN, GMAC field layout and
//! layout errors. Byte-for-byte HMAC interop with scapy is in scapy_interop.rs
//! (scapy has no AH-GMAC).

#![allow(clippy::unwrap_used)]

use palisade_crypto::{AhTransform, CryptoError, IntegId};
use proptest::prelude::*;

const ALL: [IntegId; 6] = [
    IntegId::HmacSha1_96,
    IntegId::HmacSha2_256_128,
    IntegId::HmacSha2_384_192,
    IntegId::HmacSha2_512_256,
    IntegId::AesGmac128,
    IntegId::AesGmac256,
];

fn transform(integ: IntegId) -> AhTransform {
    let key: Vec<u8> = (0..integ.key_len()).map(|i| (i * 5 + 1) as u8).collect();
    AhTransform::new(integ, &key).unwrap()
}

/// A pretend IPv4 packet with mutable fields already zeroed: 20-byte header,
/// 12-byte fixed AH header carrying `seq`, a zero ICV field of `field` bytes,
/// then `payload` bytes. Returns the packet and the ICV field offset.
fn ah_packet(field: usize, seq: u64, payload: usize) -> (Vec<u8>, usize) {
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 0, 51, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    p.extend([
        17,
        ((12 + field) / 4 - 2) as u8,
        0,
        0,
        0xde,
        0xad,
        0xbe,
        0xef,
    ]);
    p.extend((seq as u32).to_be_bytes());
    let offset = p.len();
    p.extend(vec![0; field]);
    p.extend((0..payload).map(|i| (i * 13) as u8));
    (p, offset)
}

fn seq_from(packet: &[u8], offset: usize, hi: u64) -> u64 {
    let lo = u32::from_be_bytes(packet[offset - 4..offset].try_into().unwrap());
    (hi << 32) | u64::from(lo)
}

#[test]
fn lengths() {
    for integ in ALL {
        let t = transform(integ);
        assert_eq!(t.integ(), integ);
        assert_eq!(t.icv_len(), integ.icv_len());
        let iv = if integ.is_gmac() { 8 } else { 0 };
        assert_eq!(t.iv_len(), iv);
        assert_eq!(t.icv_field_len(), iv + integ.icv_len());
    }
    assert_eq!(transform(IntegId::AesGmac128).icv_field_len(), 24);
}

#[test]
fn sign_verify_and_tamper() {
    for integ in ALL {
        for (seq, esn) in [(1u64, false), ((3 << 32) | 9, true)] {
            let t = transform(integ);
            let (mut p, off) = ah_packet(t.icv_field_len(), seq, 37);
            t.sign(&mut p, off, seq, esn).unwrap();
            let field = &p[off..off + t.icv_field_len()];
            assert!(field.iter().any(|&b| b != 0));
            if integ.is_gmac() {
                // RFC 4543 §4: the IV travels at the front of the ICV field.
                assert_eq!(field[..8], seq.to_be_bytes());
            }
            t.verify(&mut p.clone(), off, seq, esn).unwrap();

            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] ^= 0x10;
                let seq = seq_from(&q, off, seq >> 32);
                assert_eq!(
                    t.verify(&mut q, off, seq, esn),
                    Err(CryptoError::Integrity),
                    "{integ:?} byte {i}"
                );
            }
            if esn {
                let mut q = p.clone();
                assert_eq!(
                    t.verify(&mut q, off, seq, false),
                    Err(CryptoError::Integrity)
                );
                let mut q = p.clone();
                assert_eq!(
                    t.verify(&mut q, off, seq + (1 << 32), true),
                    Err(CryptoError::Integrity)
                );
            }
        }
    }
}

/// Whatever is in the ICV field when signing is ignored: it is zeroed first.
#[test]
fn sign_zeroes_the_field_itself() {
    for integ in ALL {
        let t = transform(integ);
        let (mut a, off) = ah_packet(t.icv_field_len(), 4, 10);
        let mut b = a.clone();
        b[off..off + t.icv_field_len()].fill(0x5a);
        t.sign(&mut a, off, 4, false).unwrap();
        t.sign(&mut b, off, 4, false).unwrap();
        assert_eq!(a, b);
    }
}

/// Padding after the ICV field (IPv6 alignment) is covered as it stands.
#[test]
fn icv_padding_is_authenticated() {
    let t = transform(IntegId::HmacSha2_384_192);
    let (mut p, off) = ah_packet(t.icv_field_len() + 4, 8, 16);
    t.sign(&mut p, off, 8, false).unwrap();
    let pad = off + t.icv_field_len();
    let mut q = p.clone();
    q[pad] = 1;
    assert_eq!(t.verify(&mut q, off, 8, false), Err(CryptoError::Integrity));
    t.verify(&mut p, off, 8, false).unwrap();
}

/// GMAC with ESN assembles its AAD in stack buffers of three sizes; cover
/// each, and the refusal beyond the largest IP packet.
#[test]
fn gmac_esn_packet_sizes() {
    let t = transform(IntegId::AesGmac256);
    let seq = (7 << 32) | 1;
    for payload in [0, 2_000, 2_100, 16_000, 16_400, 65_000] {
        let (mut p, off) = ah_packet(24, seq, payload);
        t.sign(&mut p, off, seq, true).unwrap();
        t.verify(&mut p.clone(), off, seq, true).unwrap();
        let last = p.len() - 1;
        p[last] ^= 1;
        assert_eq!(
            t.verify(&mut p, off, seq, true),
            Err(CryptoError::Integrity)
        );
    }
    let (mut p, off) = ah_packet(24, seq, 65_575);
    assert_eq!(t.sign(&mut p, off, seq, true), Err(CryptoError::BadLayout));
    assert_eq!(
        t.verify(&mut p, off, seq, true),
        Err(CryptoError::BadLayout)
    );
    // Without ESN there is no size limit of our own.
    t.sign(&mut p, off, seq, false).unwrap();
    t.verify(&mut p, off, seq, false).unwrap();
}

#[test]
fn layout_errors() {
    for integ in ALL {
        let t = transform(integ);
        let (mut p, off) = ah_packet(t.icv_field_len(), 2, 0);
        // Field running past the end.
        assert_eq!(
            t.sign(&mut p, off + 1, 2, false),
            Err(CryptoError::BadLayout)
        );
        assert_eq!(
            t.verify(&mut p, usize::MAX, 2, false),
            Err(CryptoError::BadLayout)
        );
        // No room for the fixed AH header before the field.
        assert_eq!(t.sign(&mut p, 11, 2, false), Err(CryptoError::BadLayout));
        assert_eq!(t.sign(&mut p, 0, 2, false), Err(CryptoError::BadLayout));
        // Sequence number field disagreeing with `seq`.
        assert_eq!(t.sign(&mut p, off, 3, false), Err(CryptoError::BadLayout));
        assert_eq!(t.verify(&mut p, off, 3, false), Err(CryptoError::BadLayout));
        assert_eq!(t.sign(&mut p, off, 2, false), Ok(()));
    }
}

#[test]
fn key_errors() {
    assert!(matches!(
        AhTransform::new(IntegId::None, &[]),
        Err(CryptoError::UnsupportedSuite(_))
    ));
    assert_eq!(
        AhTransform::new(IntegId::AesGmac128, &[0; 16]).unwrap_err(),
        CryptoError::BadKeyLength {
            expected: 20,
            got: 16
        }
    );
    assert_eq!(
        AhTransform::new(IntegId::HmacSha2_256_128, &[0; 31]).unwrap_err(),
        CryptoError::BadKeyLength {
            expected: 32,
            got: 31
        }
    );
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        integ in prop::sample::select(ALL.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        offset in 0usize..220,
        seq in any::<u64>(),
        esn in any::<bool>(),
    ) {
        let t = transform(integ);
        let seq = if offset >= 12 && offset <= bytes.len() {
            seq_from(&bytes, offset, seq >> 32)
        } else {
            seq
        };
        prop_assert!(t.verify(&mut bytes.clone(), offset, seq, esn).is_err());
        let mut signed = bytes.clone();
        if t.sign(&mut signed, offset, seq, esn).is_ok() {
            prop_assert_eq!(t.verify(&mut signed, offset, seq, esn), Ok(()));
        }
    }
}
