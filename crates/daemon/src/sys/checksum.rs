//! The Internet checksum's one's-complement sum (RFC 1071) for the TUN offload paths,
//! at close to the speed of a copy: every payload byte of an aggregate the kernel hands
//! over is summed once as it is cut into segments (tun_gso.rs, fused with the copy),
//! and every decapsulated segment once before it may join an aggregate (tun_gro.rs).
//!
//! RFC 1071 §2(B): the sum does not depend on byte order, so the bulk functions add
//! 16-bit words in the host's order and swap the folded result once. The words go to
//! sixteen 32-bit lanes per 64-byte block, a loop LLVM turns into vector adds; it is
//! compiled a second time for AVX2 and picked at run time, so the crate stays free of
//! SIMD intrinsics. [`sum_words`] is the plain big-endian sum, for headers and as the
//! reference the tests hold the fast paths to.

/// Bytes per block of the lane loop.
const BLOCK: usize = 64;
/// Lanes: one per 16-bit word of half a block.
const LANES: usize = 16;
/// Blocks between emptying the lanes into the 64-bit total: each block adds two words
/// of at most 0xffff to a lane, so 1024 blocks stay below 2^32.
const BLOCKS_PER_FLUSH: usize = 1024;

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
        return to_network(unsafe { avx2::sum(data) });
    }
    to_network(lanes(None, data))
}

/// Copies `src` to the front of `dst` and returns its folded sum, as [`sum`], in one
/// pass over the bytes. `dst` must be at least as long as `src`.
///
/// # Panics
/// If `dst` is shorter than `src` (a caller's sizing bug, checked before any copy).
#[allow(unsafe_code)]
pub fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u16 {
    let dst = &mut dst[..src.len()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: as in `sum`.
        return to_network(unsafe { avx2::copy_and_sum(dst, src) });
    }
    to_network(lanes(Some(dst), src))
}

/// A sum of host-order words, folded and turned into the network-order sum.
fn to_network(acc: u64) -> u16 {
    u16::from_be(fold(acc))
}

/// The lane loop: sums `src` in host-order words, copying it to `dst` on the way when
/// there is one (`dst` is exactly as long as `src`). Inlined into each instantiation so
/// that the AVX2 copy vectorises it with the wider registers.
#[inline(always)]
fn lanes(dst: Option<&mut [u8]>, src: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut lane = [0u32; LANES];
    let mut blocks = src.chunks_exact(BLOCK);
    let mut out = dst.map(|d| d.chunks_exact_mut(BLOCK));
    let mut since_flush = 0;
    for block in &mut blocks {
        let Ok(block) = <&[u8; BLOCK]>::try_from(block) else {
            break;
        };
        if let Some(d) = out.as_mut().and_then(Iterator::next) {
            d.copy_from_slice(block);
        }
        for (k, w) in block.chunks_exact(2).enumerate() {
            lane[k % LANES] += u32::from(u16::from_ne_bytes([w[0], w[1]]));
        }
        since_flush += 1;
        if since_flush == BLOCKS_PER_FLUSH {
            total += lane.iter().map(|&l| u64::from(l)).sum::<u64>();
            lane = [0; LANES];
            since_flush = 0;
        }
    }
    total += lane.iter().map(|&l| u64::from(l)).sum::<u64>();
    let rest = blocks.remainder();
    if let Some(d) = out {
        d.into_remainder().copy_from_slice(rest);
    }
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        total += u64::from(u16::from_ne_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        // Padded with a zero byte behind it, as a whole word would be.
        total += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! [`super::lanes`] compiled for AVX2: safe code, callable only where the CPU has it.

    #[target_feature(enable = "avx2")]
    pub(super) fn sum(data: &[u8]) -> u64 {
        super::lanes(None, data)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u64 {
        super::lanes(Some(dst), src)
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
    fn long_runs_of_ones_do_not_overflow_the_lanes() {
        // Past one flush of the lanes and a 64 KiB IP packet's worth of 0xffff words.
        for len in [
            BLOCK * BLOCKS_PER_FLUSH,
            BLOCK * BLOCKS_PER_FLUSH * 3 + 7,
            65_535,
        ] {
            let data = vec![0xffu8; len];
            assert_eq!(sum(&data), reference(&data), "{len} bytes");
        }
    }

    proptest! {
        #[test]
        fn fast_sums_match_the_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let want = reference(&data);
            prop_assert_eq!(sum(&data), want);
            prop_assert_eq!(to_network(lanes(None, &data)), want);
            prop_assert_eq!(tun_rs::checksum(&data, 0), want);
            let mut out = vec![0x5a; data.len() + 9];
            prop_assert_eq!(copy_and_sum(&mut out, &data), want);
            prop_assert_eq!(&out[..data.len()], &data[..]);
            prop_assert!(out[data.len()..].iter().all(|&b| b == 0x5a));
            let mut out = vec![0; data.len()];
            prop_assert_eq!(to_network(lanes(Some(&mut out), &data)), want);
            prop_assert_eq!(out, data);
        }
    }
}
