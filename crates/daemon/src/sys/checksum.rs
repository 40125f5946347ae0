//! The Internet checksum's one's-complement sum (RFC 1071) for the TUN offload paths:
//! every payload byte of an aggregate the kernel hands over is summed once as it is cut
//! into segments (tun_gso.rs), and every decapsulated segment once before it may join
//! an aggregate (tun_gro.rs).
//!
//! RFC 1071 §2(B): the sum does not depend on byte order, so [`sum`] adds 64-bit words
//! in the host's order, as two 32-bit halves into a 64-bit total, and swaps the folded
//! result once: a loop LLVM turns into vector adds, compiled a second time for AVX2 and
//! picked at run time, so the crate stays free of SIMD intrinsics. It is also plain
//! enough to stay fast in the unoptimised builds the tests run the data plane in (a
//! loop over 16-bit lanes was 5 times slower there than tun-rs's sum, and the data
//! plane of the end-to-end tests fell behind). [`sum_words`] is the plain big-endian
//! sum, for headers and as the reference the tests hold the fast path to.

/// RFC 1071 one's-complement sum of `data` (big-endian 16-bit words, an odd last byte
/// padded with zero) added to `acc`, not folded. Eight bytes at a time, each added as
/// two 32-bit halves to a 64-bit accumulator, which cannot overflow for 64 KiB.
pub fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_be_bytes(w);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for pair in &mut rest {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = rest.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a sum to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    acc as u16
}

/// The folded sum of `data` (as [`sum_words`] then [`fold`] give it): add it to a
/// big-endian sum of the data's neighbours, which must end at an even offset.
// The one unsafe operation: calling the AVX2 build once the CPU is known to have it.
#[allow(unsafe_code)]
pub fn sum(data: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the one requirement of the `target_feature` function.
        return to_network(unsafe { avx2::host_words(data) });
    }
    to_network(host_words(data))
}

/// Copies `src` to the front of `dst` and returns its folded sum, as [`sum`]: the copy
/// leaves the bytes in the cache for the sum, which costs about what a sum fused into
/// the copy did (`benches/tun_offload.rs`).
///
/// # Panics
/// If `dst` is shorter than `src` (a caller's sizing bug, checked before any copy).
pub fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u16 {
    let dst = &mut dst[..src.len()];
    dst.copy_from_slice(src);
    sum(dst)
}

/// A sum of host-order words, folded and turned into the network-order sum.
fn to_network(acc: u64) -> u16 {
    u16::from_be(fold(acc))
}

/// The sum of `data` in host-order words, not folded. Each 8-byte word adds at most
/// 2^33, so the total cannot overflow below 2^30 words. Inlined into each build.
#[inline(always)]
fn host_words(data: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let w = u64::from_ne_bytes(word);
        total += (w & 0xffff_ffff) + (w >> 32);
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for pair in &mut pairs {
        total += u64::from(u16::from_ne_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        // Padded with a zero byte behind it, as a whole word would be.
        total += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! [`super::host_words`] compiled for AVX2: safe code, callable only where the CPU
    //! has it.

    #[target_feature(enable = "avx2")]
    pub(super) fn host_words(data: &[u8]) -> u64 {
        super::host_words(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> u16 {
        fold(sum_words(data, 0))
    }

    #[test]
    fn known_values() {
        // RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(reference(&data), 0xddf2);
        // An odd last byte is the high byte of a word padded with zero.
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn long_runs_of_ones_sum_right() {
        // A 64 KiB IP packet's worth of 0xffff words, and more.
        for len in [65_535, 65_536, 1 << 20, (1 << 20) + 7] {
            let data = vec![0xffu8; len];
            assert_eq!(sum(&data), reference(&data), "{len} bytes");
        }
    }

    proptest! {
        #[test]
        fn fast_sums_match_the_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let want = reference(&data);
            prop_assert_eq!(sum(&data), want);
            prop_assert_eq!(to_network(host_words(&data)), want);
            prop_assert_eq!(tun_rs::checksum(&data, 0), want);
            let mut out = vec![0x5a; data.len() + 9];
            prop_assert_eq!(copy_and_sum(&mut out, &data), want);
            prop_assert_eq!(&out[..data.len()], &data[..]);
            prop_assert!(out[data.len()..].iter().all(|&b| b == 0x5a));
        }
    }
}
