//! The Authentication Header (RFC 4302 §2).

use core::ops::Range;

use crate::WireError;
use crate::bytes::{array_at, array_at_mut, range_mut};

/// Length of the fields before the ICV: Next Header, Payload Len,
/// Reserved, SPI and Sequence Number.
pub const AH_FIXED_LEN: usize = 12;
/// Longest AH the 8-bit Payload Len can describe.
pub const AH_MAX_LEN: usize = (u8::MAX as usize + 2) * 4;

/// The fixed part of an AH header; the ICV stays in the packet buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AhHeader {
    /// Protocol of what AH protects.
    pub next_header: u8,
    /// AH length in 32-bit words, minus 2.
    pub payload_len: u8,
    /// Security Parameters Index.
    pub spi: u32,
    /// Low 32 bits of the sequence number.
    pub seq: u32,
}

impl AhHeader {
    /// Total AH length in bytes, ICV and its padding included.
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len) + 2) * 4
    }

    /// Length of the ICV field, including any alignment padding that the
    /// RFC counts as part of it. Zero for a malformed Payload Len below 1.
    pub fn icv_len(&self) -> usize {
        self.header_len().saturating_sub(AH_FIXED_LEN)
    }

    /// Byte range of the ICV field relative to the start of the AH header.
    pub fn icv_range(&self) -> Range<usize> {
        AH_FIXED_LEN..self.header_len().max(AH_FIXED_LEN)
    }

    /// Whether the header length meets the alignment RFC 4302 §3.3.3.2.1
    /// requires: a multiple of 8 bytes for IPv6, of 4 for IPv4 (always true
    /// by construction).
    pub fn is_aligned(&self, v6: bool) -> bool {
        !v6 || self.header_len().is_multiple_of(8)
    }

    /// Payload Len value for an AH of `ah_len` bytes (see [`ah_len_for`]).
    pub fn payload_len_for(ah_len: usize) -> Result<u8, WireError> {
        if ah_len < AH_FIXED_LEN || !ah_len.is_multiple_of(4) {
            return Err(WireError::BadHeaderLength);
        }
        u8::try_from(ah_len / 4 - 2).map_err(|_| WireError::FieldOutOfRange)
    }

    /// Parses the AH header at the start of `buf`, checking that its
    /// declared length covers the fixed fields and fits in `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let h: &[u8; AH_FIXED_LEN] = array_at(buf, 0)?;
        // Reserved (h[2], h[3]) is ignored on receipt per RFC 4302 §2.3.
        let header = Self {
            next_header: h[0],
            payload_len: h[1],
            spi: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            seq: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        };
        let len = header.header_len();
        if len < AH_FIXED_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if len > buf.len() {
            return Err(WireError::Truncated {
                need: len,
                have: buf.len(),
            });
        }
        Ok(header)
    }

    /// Writes the fixed fields to the start of `buf`, Reserved as zero.
    ///
    /// `buf` must have room for the whole header so that the caller can
    /// fill (or zero) the ICV at [`AhHeader::icv_range`] afterwards; the ICV
    /// bytes themselves are not touched.
    pub fn write(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let len = self.header_len();
        if len < AH_FIXED_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if buf.len() < len {
            return Err(WireError::BufferTooSmall);
        }
        let h: &mut [u8; AH_FIXED_LEN] =
            array_at_mut(buf, 0).map_err(|_| WireError::BufferTooSmall)?;
        let [s0, s1, s2, s3] = self.spi.to_be_bytes();
        let [q0, q1, q2, q3] = self.seq.to_be_bytes();
        *h = [
            self.next_header,
            self.payload_len,
            0,
            0,
            s0,
            s1,
            s2,
            s3,
            q0,
            q1,
            q2,
            q3,
        ];
        Ok(())
    }
}

/// Total AH length for an ICV of `icv_len` bytes, padded to a multiple of
/// 8 for IPv6 or 4 for IPv4 (RFC 4302 §3.3.3.2.1).
///
/// Results above [`AH_MAX_LEN`] cannot be encoded;
/// [`AhHeader::payload_len_for`] reports that.
pub fn ah_len_for(icv_len: usize, v6: bool) -> usize {
    let align = if v6 { 8 } else { 4 };
    let len = icv_len.saturating_add(AH_FIXED_LEN);
    match len % align {
        0 => len,
        rem => len.saturating_add(align - rem),
    }
}

/// Zeroes the ICV of the AH header at the start of `ah`, as required
/// before computing or checking it (RFC 4302 §3.3.3.1).
pub fn zero_icv(ah: &mut [u8]) -> Result<(), WireError> {
    let header = AhHeader::parse(ah)?;
    range_mut(ah, AH_FIXED_LEN, header.icv_len())?.fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes() {
        // HMAC-SHA1-96: 12-byte ICV, 24-byte AH, Payload Len 4.
        let mut buf = [0xEEu8; 24];
        let h = AhHeader {
            next_header: 6,
            payload_len: 4,
            spi: 0x0000_1000,
            seq: 7,
        };
        h.write(&mut buf).expect("write");
        assert_eq!(buf[..12], [6, 4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 7]);
        assert_eq!(buf[12..], [0xEE; 12], "ICV left alone");
        assert_eq!(AhHeader::parse(&buf), Ok(h));
        assert_eq!(
            (h.header_len(), h.icv_len(), h.icv_range()),
            (24, 12, 12..24)
        );
        zero_icv(&mut buf).expect("zero");
        assert_eq!(buf[12..], [0; 12]);
    }

    #[test]
    fn parse_rejects() {
        let mut buf = [0u8; 24];
        buf[1] = 0;
        assert_eq!(AhHeader::parse(&buf), Err(WireError::BadHeaderLength));
        buf[1] = 1;
        assert!(
            AhHeader::parse(&buf[..12]).is_ok(),
            "ICV-less AH is allowed"
        );
        buf[1] = 5;
        assert_eq!(
            AhHeader::parse(&buf),
            Err(WireError::Truncated { need: 28, have: 24 })
        );
        assert_eq!(
            AhHeader::parse(&buf[..11]),
            Err(WireError::Truncated { need: 12, have: 11 })
        );
    }

    #[test]
    fn write_rejects() {
        let mut h = AhHeader {
            next_header: 4,
            payload_len: 4,
            spi: 300,
            seq: 1,
        };
        let mut buf = [0u8; 24];
        assert_eq!(h.write(&mut buf[..23]), Err(WireError::BufferTooSmall));
        h.payload_len = 0;
        assert_eq!(h.write(&mut buf), Err(WireError::BadHeaderLength));
    }

    #[test]
    fn lengths() {
        assert_eq!(ah_len_for(12, false), 24);
        assert_eq!(ah_len_for(12, true), 24);
        assert_eq!(ah_len_for(16, false), 28);
        assert_eq!(ah_len_for(16, true), 32);
        assert_eq!(ah_len_for(0, true), 16);
        assert_eq!(ah_len_for(usize::MAX, true), usize::MAX);
        assert_eq!(AhHeader::payload_len_for(24), Ok(4));
        assert_eq!(AhHeader::payload_len_for(32), Ok(6));
        assert_eq!(AhHeader::payload_len_for(AH_MAX_LEN), Ok(255));
        assert_eq!(
            AhHeader::payload_len_for(AH_MAX_LEN + 4),
            Err(WireError::FieldOutOfRange)
        );
        assert_eq!(
            AhHeader::payload_len_for(26),
            Err(WireError::BadHeaderLength)
        );
        let h = AhHeader {
            next_header: 0,
            payload_len: 5,
            spi: 0,
            seq: 0,
        };
        assert!(h.is_aligned(false) && !h.is_aligned(true));
    }
}
