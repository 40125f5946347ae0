//! A packet inside a caller-owned buffer, with headroom and tailroom.
//!
//! Encapsulation grows a packet at both ends (outer header, UDP, ESP header and IV in
//! front; padding, trailer and ICV behind) and decapsulation shrinks it, all in place:
//! the caller owns the buffer (typically one slot of a ring filled by recvmmsg or a TUN
//! read) and the engine only moves the range.

use core::ops::Range;

/// Headroom that covers every SA: outer IPv6 (40) + UDP (8) + ESP header (8) + CBC IV (16)
/// + an AH header with the largest ICV (12 + 32 + padding to 8) in a bundle.
pub const MAX_HEADROOM: usize = 40 + 8 + 8 + 16 + 48;

/// Tailroom that covers every SA without TFC padding: ESP padding (up to 15) + pad length
/// and next header (2) + the largest ICV (32). TFC padding needs its length on top.
pub const MAX_TAILROOM: usize = 15 + 2 + 32;

/// The bytes `buf[start..start + len]` are the packet.
#[derive(Debug)]
pub struct Packet<'a> {
    /// The whole buffer: headroom, packet, tailroom.
    pub buf: &'a mut [u8],
    /// Offset of the packet's first byte.
    pub start: usize,
    /// Length of the packet.
    pub len: usize,
}

impl<'a> Packet<'a> {
    /// A packet at `start` of `len` bytes in `buf`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Self {
        Packet { buf, start, len }
    }

    /// The range of the packet in the buffer.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start.saturating_add(self.len)
    }

    /// The packet's bytes; empty if the range does not fit the buffer.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.range()).unwrap_or(&[])
    }

    /// The packet's bytes, mutable; empty if the range does not fit the buffer.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let r = self.range();
        self.buf.get_mut(r).unwrap_or(&mut [])
    }

    /// Bytes free before the packet.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free after the packet.
    pub fn tailroom(&self) -> usize {
        self.buf
            .len()
            .saturating_sub(self.start.saturating_add(self.len))
    }

    /// Whether the range lies inside the buffer.
    pub(crate) fn is_valid(&self) -> bool {
        self.start
            .checked_add(self.len)
            .is_some_and(|end| end <= self.buf.len())
    }
}
