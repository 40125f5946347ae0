//! Bounds-checked access to fixed-size fields at variable offsets.
//!
//! Parsers with data-dependent offsets go through these helpers so that a
//! short or hostile buffer becomes [`WireError::Truncated`] instead of a
//! panic; once a fixed-size array reference is obtained, constant indices
//! into it are checked by the compiler.

use crate::WireError;

fn truncated(offset: usize, n: usize, have: usize) -> WireError {
    WireError::Truncated {
        need: offset.saturating_add(n),
        have,
    }
}

/// `N` bytes of `buf` starting at `offset`.
pub(crate) fn array_at<const N: usize>(buf: &[u8], offset: usize) -> Result<&[u8; N], WireError> {
    offset
        .checked_add(N)
        .and_then(|end| buf.get(offset..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| truncated(offset, N, buf.len()))
}

/// Mutable `N` bytes of `buf` starting at `offset`.
pub(crate) fn array_at_mut<const N: usize>(
    buf: &mut [u8],
    offset: usize,
) -> Result<&mut [u8; N], WireError> {
    let have = buf.len();
    offset
        .checked_add(N)
        .and_then(|end| buf.get_mut(offset..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| truncated(offset, N, have))
}

/// The byte at `offset`.
pub(crate) fn u8_at(buf: &[u8], offset: usize) -> Result<u8, WireError> {
    buf.get(offset)
        .copied()
        .ok_or_else(|| truncated(offset, 1, buf.len()))
}

/// `buf[start..start + len]`, mutably.
pub(crate) fn range_mut(buf: &mut [u8], start: usize, len: usize) -> Result<&mut [u8], WireError> {
    let have = buf.len();
    start
        .checked_add(len)
        .and_then(|end| buf.get_mut(start..end))
        .ok_or_else(|| truncated(start, len, have))
}
