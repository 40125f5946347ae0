//! Per-packet operations must not touch the heap. A counting global allocator
//! sees every Rust-side allocation made on the measuring thread. (aws-lc's own
//! `malloc` calls bypass it; the aws-lc paths used per packet, AEAD
//! seal/open-gather, HMAC update/final and AES-CBC, are allocation-free.)

// The counting allocator needs `unsafe impl GlobalAlloc`; the library itself
// forbids unsafe code, this test binary only wraps the system allocator.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use palisade_crypto::{AhTransform, EspSuite, EspTransform, IntegId};

struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            COUNT.with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ACTIVE.with(|a| a.set(true));
    f();
    ACTIVE.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

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
