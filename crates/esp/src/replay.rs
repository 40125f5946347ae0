//! The receiver's anti-replay window (RFC 4303 §3.4.3 and Appendix A).
//!
//! The bitmap is the ring of 64-bit blocks described in RFC 6479: sliding
//! the window only clears the blocks that the new right edge moves over,
//! so neither [`ReplayWindow::check`] nor [`ReplayWindow::update`] ever
//! shifts the whole bitmap or loops over the jump distance.
//!
//! The intended inbound sequence is:
//!
//! 1. `seq = window.infer_seq(seq_lo_from_header)`
//! 2. `window.check(seq)?` — cheap rejection before spending the ICV.
//! 3. verify the ICV (with ESN, over the implicit high 32 bits of `seq`).
//! 4. `window.update(seq)?` — only now does the packet count as received.

use core::fmt;

/// Window size used when the SA configuration does not name one.
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;

/// Largest window size accepted by [`ReplayWindow::new`].
pub const MAX_REPLAY_WINDOW: u32 = 65536;

/// Bits per bitmap block (RFC 6479 uses the machine word; we fix it at 64).
const BLOCK_BITS: u32 = u64::BITS;
/// `log2(BLOCK_BITS)`: the shift from a sequence number to its block number.
const BLOCK_SHIFT: u32 = BLOCK_BITS.trailing_zeros();
/// Mask from a sequence number to its bit within its block.
const BIT_MASK: u64 = (BLOCK_BITS as u64) - 1;

/// Why a sequence number was refused by the anti-replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The sequence number is inside the window and was already marked as
    /// received.
    #[error("sequence number already received")]
    Replayed,
    /// The sequence number is at or beyond the window's left edge
    /// (`seq <= top - size`), so the receiver can no longer tell whether
    /// it was seen.
    #[error("sequence number left of the window")]
    TooOld,
    /// The (full) sequence number is zero, which RFC 4303 §3.3.3 never
    /// sends on an SA with anti-replay: the first packet carries 1.
    #[error("sequence number zero is never sent")]
    Zero,
    /// The requested window size exceeds [`MAX_REPLAY_WINDOW`].
    #[error("window size {0} exceeds the maximum of {MAX_REPLAY_WINDOW}")]
    BadWindowSize(u32),
}

/// Anti-replay state of one inbound SA: the highest authenticated sequence
/// number (`top`, the right edge of the window) and which of the `size`
/// numbers ending at `top` were already received.
///
/// All storage is allocated by [`ReplayWindow::new`]; checking and updating
/// never allocate.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Window size in sequence numbers, a multiple of 64; 0 = disabled.
    size: u32,
    /// Whether the SA uses Extended Sequence Numbers (RFC 4303 §2.2.1).
    esn: bool,
    /// Highest sequence number that passed the integrity check so far;
    /// 0 until the first packet is accepted.
    top: u64,
    /// RFC 6479 ring: bit `seq % 64` of block `(seq / 64) % len` records
    /// `seq`. At least one block more than `size / 64` so that the block the
    /// right edge moves into can be cleared without losing any number still
    /// inside the window; a power of two, as in RFC 6479. Empty when the
    /// window is disabled.
    bitmap: Box<[u64]>,
}

impl fmt::Debug for ReplayWindow {
    // The bitmap can be kilobytes of noise; the edges say what matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("esn", &self.esn)
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// Creates an empty window of `size` sequence numbers for an SA with
    /// (`esn = true`) or without Extended Sequence Numbers.
    ///
    /// `size` is rounded up to a multiple of 64. A `size` of 0 disables
    /// anti-replay checking, which RFC 4303 §3.4.3 allows for manually
    /// keyed SAs: [`check`](Self::check) and [`update`](Self::update) then
    /// accept everything and only track [`top`](Self::top) so that ESN
    /// inference keeps working.
    ///
    /// # Errors
    ///
    /// [`ReplayError::BadWindowSize`] if `size` exceeds
    /// [`MAX_REPLAY_WINDOW`].
    pub fn new(size: u32, esn: bool) -> Result<Self, ReplayError> {
        if size > MAX_REPLAY_WINDOW {
            return Err(ReplayError::BadWindowSize(size));
        }
        // Cannot overflow: size <= MAX_REPLAY_WINDOW, itself a multiple of 64.
        let size = size.div_ceil(BLOCK_BITS) * BLOCK_BITS;
        // One spare block (see `bitmap`), rounded up to a power of two so that the
        // ring index is a mask rather than a division per packet (a `div` was one of
        // the costliest instructions of the receive path).
        let blocks = if size == 0 {
            0
        } else {
            ((size >> BLOCK_SHIFT) as usize + 1).next_power_of_two()
        };
        Ok(Self {
            size,
            esn,
            top: 0,
            bitmap: vec![0u64; blocks].into_boxed_slice(),
        })
    }

    /// Window size in sequence numbers after rounding; 0 when anti-replay
    /// is disabled.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether the SA uses Extended Sequence Numbers.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Highest sequence number accepted by [`update`](Self::update) so far
    /// (the window's right edge), or 0 before the first packet.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Reconstructs the full sequence number from the 32 bits carried in
    /// the ESP header (RFC 4303 Appendix A2.2).
    ///
    /// Without ESN the low 32 bits are the whole number. With ESN the high
    /// 32 bits are guessed so that the result lies in
    /// `(top - W, top - W + 2^32)`, where `W` is the window size: numbers
    /// inside the window and up to `2^32 - W` ahead of `top` are recovered
    /// exactly. A wrong guess cannot be exploited, because the ICV covers
    /// the implicit high bits and will fail.
    ///
    /// With anti-replay disabled there is no window to anchor the guess, so
    /// `W = 2^31` is used instead: the number closest to `top` wins, which
    /// keeps reordered packets decodable.
    // Always inline: called per received packet, and out of line the compiler kept
    // it as a call (callgrind).
    #[inline(always)]
    pub fn infer_seq(&self, seq_lo: u32) -> u64 {
        if !self.esn {
            return u64::from(seq_lo);
        }
        let window = if self.size == 0 {
            1u32 << 31
        } else {
            self.size
        };
        // Truncations are intended: split top into its two 32-bit halves.
        let top_lo = self.top as u32;
        let top_hi = (self.top >> 32) as u32;
        // Lowest low-32 value inside the window, modulo 2^32. When the
        // window straddles a 2^32 boundary (top_lo < window - 1) it wraps
        // into the previous epoch: that is the RFC's "Case B".
        let bottom = top_lo.wrapping_add(1).wrapping_sub(window);
        let straddles = top_lo < window.saturating_sub(1);
        let seq_hi = match (straddles, seq_lo >= bottom) {
            // Case A: at or above the left edge, same epoch as top.
            (false, true) => top_hi,
            // Case A: below the left edge, so it must be ahead of top in
            // the next epoch. At the last epoch there is no next one; the
            // sender may not cycle, so any guess fails the ICV anyway.
            (false, false) => top_hi.checked_add(1).unwrap_or(top_hi),
            // Case B: in the part of the window that lies in the previous
            // epoch. Before any wrap there is no previous epoch, so the
            // number can only be far ahead of top in epoch 0.
            (true, true) => top_hi.checked_sub(1).unwrap_or(top_hi),
            // Case B: at or above 0 in top's epoch.
            (true, false) => top_hi,
        };
        (u64::from(seq_hi) << 32) | u64::from(seq_lo)
    }

    /// Tells whether `seq` (the full sequence number, see
    /// [`infer_seq`](Self::infer_seq)) may be accepted, without marking
    /// it. Meant to run before the integrity check so that replays are
    /// dropped cheaply; constant work.
    ///
    /// # Errors
    ///
    /// * [`ReplayError::Zero`] for 0;
    /// * [`ReplayError::TooOld`] for `seq <= top - size`;
    /// * [`ReplayError::Replayed`] if `seq` was already received.
    ///
    /// Never fails when anti-replay is disabled: RFC 4303 §3.4.3 performs
    /// no inbound sequence checks then, and §3.3.3 lets such a sender's
    /// counter roll over through 0.
    // Always inline: called per received packet, and out of line the compiler kept
    // it as a call (callgrind).
    #[inline(always)]
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if self.size == 0 {
            return Ok(());
        }
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        let Some(behind) = self.top.checked_sub(seq) else {
            // Right of the window: new, whatever the bitmap says.
            return Ok(());
        };
        if behind >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = self.locate(seq);
        match self.bitmap.get(block) {
            Some(word) if word & bit == 0 => Ok(()),
            Some(_) => Err(ReplayError::Replayed),
            // Unreachable by construction (locate reduces modulo the
            // length); refusing is the safe answer for a replay check.
            None => Err(ReplayError::Replayed),
        }
    }

    /// Marks `seq` as received, sliding the window right if `seq > top`.
    /// Call only after the packet's ICV verified, so that forged packets
    /// cannot move the window (RFC 4303 §3.4.3).
    ///
    /// The check is repeated because another packet with the same number
    /// may have been accepted between [`check`](Self::check) and this call.
    /// The work is bounded by the number of bitmap blocks, however far the
    /// window jumps.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check); the window is unchanged on error.
    #[inline]
    pub fn update(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check(seq)?;
        self.mark(seq);
        Ok(())
    }

    /// [`update`](Self::update) without the repeated check, for a caller that ran
    /// [`check`](Self::check) on `seq` with nothing changing the window since (the
    /// receive fast path, which holds the SA mutably from check to mark).
    #[inline(always)]
    pub(crate) fn mark(&mut self, seq: u64) {
        if self.size == 0 {
            self.top = self.top.max(seq);
            return;
        }
        if seq > self.top {
            if (seq ^ self.top) >> BLOCK_SHIFT == 0 {
                // Still in the top's block, so no block to clear: what `slide_to` does
                // then, without the call (in-order traffic, 63 packets of 64).
                self.top = seq;
            } else {
                self.slide_to(seq);
            }
        }
        let (block, bit) = self.locate(seq);
        if let Some(word) = self.bitmap.get_mut(block) {
            *word |= bit;
        }
    }

    /// Moves the right edge to `seq` (> top), clearing the blocks it
    /// enters. Those blocks last held numbers at least one ring length
    /// (> size) below the new top, i.e. already left of the window.
    fn slide_to(&mut self, seq: u64) {
        let ring = self.bitmap.len() as u64;
        let mask = ring.wrapping_sub(1);
        let old_block = self.top >> BLOCK_SHIFT;
        let new_block = seq >> BLOCK_SHIFT;
        // seq > top, so new_block >= old_block.
        let entered = new_block.saturating_sub(old_block);
        if entered >= ring {
            // Jumped past the whole ring: nothing old stays in the window.
            self.bitmap.fill(0);
        } else {
            for step in 1..=entered {
                let index = usize::try_from(old_block.wrapping_add(step) & mask).ok();
                if let Some(word) = index.and_then(|i| self.bitmap.get_mut(i)) {
                    *word = 0;
                }
            }
        }
        self.top = seq;
    }

    /// Block index and bit mask for `seq` in the ring (RFC 6479).
    // Always inline: called per received packet, and out of line the compiler kept
    // it as a call (callgrind).
    #[inline(always)]
    fn locate(&self, seq: u64) -> (usize, u64) {
        // The ring's length is a power of two. A ring of 0 only exists when
        // disabled, where this is not called; the mask is then all ones and the
        // caller's `get` misses instead of panicking.
        let mask = (self.bitmap.len() as u64).wrapping_sub(1);
        let block = usize::try_from((seq >> BLOCK_SHIFT) & mask).unwrap_or(usize::MAX);
        (block, 1u64 << (seq & BIT_MASK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_has_a_spare_block_and_a_power_of_two_length() {
        assert_eq!(ReplayWindow::new(64, false).map(|w| w.bitmap.len()), Ok(2));
        assert_eq!(ReplayWindow::new(128, false).map(|w| w.bitmap.len()), Ok(4));
        assert_eq!(
            ReplayWindow::new(4096, false).map(|w| w.bitmap.len()),
            Ok(128)
        );
        assert_eq!(ReplayWindow::new(0, false).map(|w| w.bitmap.len()), Ok(0));
        assert_eq!(
            ReplayWindow::new(MAX_REPLAY_WINDOW, false).map(|w| w.size()),
            Ok(MAX_REPLAY_WINDOW)
        );
    }

    #[test]
    fn slide_clears_only_entered_blocks() -> Result<(), ReplayError> {
        // A ring of 4 blocks.
        let mut w = ReplayWindow::new(128, false)?;
        w.update(1)?;
        w.update(150)?;
        // Moving from block 2 into block 4 (ring index 0) must clear seq 1's
        // block but keep block 2 (seq 150), which is still inside the window.
        w.update(260)?;
        assert_eq!(w.bitmap.first().copied(), Some(1u64 << (260 & 63)));
        assert_eq!(w.check(150), Err(ReplayError::Replayed));
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
        Ok(())
    }

    #[test]
    fn rfc_4303_a2_cases() -> Result<(), ReplayError> {
        let mut w = ReplayWindow::new(64, true)?;
        // Case A, top well inside epoch 1.
        w.update((1 << 32) | 1000)?;
        assert_eq!(w.infer_seq(999), (1 << 32) | 999);
        assert_eq!(w.infer_seq(937), (1 << 32) | 937);
        assert_eq!(w.infer_seq(936), (2 << 32) | 936);
        assert_eq!(w.infer_seq(u32::MAX), (1 << 32) | u64::from(u32::MAX));
        // Case B, window straddles the 2^32 boundary into epoch 1.
        w.update((2 << 32) | 10)?;
        assert_eq!(w.infer_seq(11), (2 << 32) | 11);
        assert_eq!(w.infer_seq(u32::MAX), (1 << 32) | u64::from(u32::MAX));
        assert_eq!(
            w.infer_seq(u32::MAX - 52),
            (1 << 32) | u64::from(u32::MAX - 52)
        );
        assert_eq!(
            w.infer_seq(u32::MAX - 53),
            (2 << 32) | u64::from(u32::MAX - 53)
        );
        Ok(())
    }

    #[test]
    fn inference_never_leaves_the_number_space() -> Result<(), ReplayError> {
        let mut w = ReplayWindow::new(64, true)?;
        // Case B in epoch 0: no previous epoch to fall back to.
        assert_eq!(w.infer_seq(u32::MAX), u64::from(u32::MAX));
        // Case A in the last epoch: no next epoch either.
        w.update(u64::MAX - 10)?;
        assert_eq!(w.infer_seq(0), u64::from(u32::MAX) << 32);
        Ok(())
    }
}
