//! Per-packet operations must not touch the heap. A counting global allocator
//! sees every Rust-side allocation made on the measuring thread. (aws-lc's own
//! `malloc` calls bypass it; the aws-lc paths used per packet, AEAD
//! seal/open-gather, HMAC update/final and AES-CBC, are allocation-free.)

#![allow(clippy::unwrap_used)]

use palisade_crypto::{AhTransform, EspSuite, EspTransform, IntegId};

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn seal_open_sign_verify_do_not_allocate() {
    // The harness itself must notice an allocation.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);

    let mut suites = EspSuite::KNOWN.to_vec();
    suites.push(EspSuite {
        encr: palisade_crypto::EncrId::AesCbc,
        key_bits: 128,
        integ: IntegId::None,
    });
    for suite in suites {
        let t = EspTransform::new(suite, &vec![7; suite.keymat_len()]).unwrap();
        let len = 8 + suite.iv_len() + 4 * suite.align() + suite.icv_len();
        let mut buf = [0u8; 256];
        let packet = &mut buf[..len];
        for esn in [false, true] {
            let seq = (5 << 32) | 1;
            packet[4..8].copy_from_slice(&1u32.to_be_bytes());
            // Warm up once: aws-lc sets up per-thread RNG state on first use.
            t.seal(packet, seq, esn).unwrap();
            let n = allocations(|| {
                t.seal(packet, seq, esn).unwrap();
                t.open(packet, seq, esn).unwrap();
                t.seal_with_iv(packet, seq, esn).unwrap();
                packet[len - 1] ^= 1;
                let _ = t.open(packet, seq, esn);
            });
            assert_eq!(n, 0, "{} esn={esn}", suite.name());
        }
    }

    for integ in [
        IntegId::HmacSha1_96,
        IntegId::HmacSha2_256_128,
        IntegId::HmacSha2_384_192,
        IntegId::HmacSha2_512_256,
        IntegId::AesGmac128,
        IntegId::AesGmac256,
    ] {
        let t = AhTransform::new(integ, &vec![9; integ.key_len()]).unwrap();
        let mut buf = [0u8; 128];
        buf[28..32].copy_from_slice(&3u32.to_be_bytes());
        for esn in [false, true] {
            let seq = (8 << 32) | 3;
            let n = allocations(|| {
                t.sign(&mut buf, 32, seq, esn).unwrap();
                t.verify(&mut buf.clone(), 32, seq, esn).unwrap();
            });
            assert_eq!(n, 0, "{integ:?} esn={esn}");
        }
    }
}
