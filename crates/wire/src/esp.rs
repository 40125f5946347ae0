//! ESP header and trailer (RFC 4303 §2).
//!
//! Only the cleartext framing lives here: the SPI/sequence header and the
//! padding/trailer found after decryption. IV, ciphertext and ICV lengths
//! depend on the transform and are the crypto layer's business.

use crate::WireError;
use crate::bytes::{array_at, array_at_mut, range_mut};

/// Length of the SPI and Sequence Number fields.
pub const ESP_HEADER_LEN: usize = 8;
/// Length of the Pad Length and Next Header fields.
pub const ESP_TRAILER_LEN: usize = 2;
/// SPIs 1..=255 are reserved by IANA and 0 is for local use only
/// (RFC 4303 §2.1); none of them may appear on the wire.
pub const MAX_RESERVED_SPI: u32 = 255;

/// Whether `spi` may not be sent on the wire (RFC 4303 §2.1).
pub fn is_reserved_spi(spi: u32) -> bool {
    spi <= MAX_RESERVED_SPI
}

/// The cleartext ESP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspHeader {
    /// Security Parameters Index.
    pub spi: u32,
    /// Low 32 bits of the sequence number (ESN high bits are never sent).
    pub seq: u32,
}

impl EspHeader {
    /// Parses the header at the start of `buf`.
    ///
    /// Reserved SPIs are not rejected here: the SA lookup fails for them
    /// anyway, and the check costs nothing there.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let h: &[u8; ESP_HEADER_LEN] = array_at(buf, 0)?;
        Ok(Self {
            spi: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        })
    }

    /// Writes the header to the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let h: &mut [u8; ESP_HEADER_LEN] =
            array_at_mut(buf, 0).map_err(|_| WireError::BufferTooSmall)?;
        let [s0, s1, s2, s3] = self.spi.to_be_bytes();
        let [q0, q1, q2, q3] = self.seq.to_be_bytes();
        *h = [s0, s1, s2, s3, q0, q1, q2, q3];
        Ok(())
    }
}

/// The Pad Length and Next Header octets that end the ESP plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspTrailer {
    /// Number of padding bytes before the trailer.
    pub pad_len: u8,
    /// Protocol of the payload; 59 marks a dummy packet (RFC 4303 §2.6)
    /// to be dropped silently.
    pub next_header: u8,
}

impl EspTrailer {
    /// Reads the trailer from the last two bytes of decrypted `plaintext`
    /// and checks that the padding it announces fits.
    pub fn parse_from_end(plaintext: &[u8]) -> Result<Self, WireError> {
        let start = plaintext
            .len()
            .checked_sub(ESP_TRAILER_LEN)
            .ok_or(WireError::Truncated {
                need: ESP_TRAILER_LEN,
                have: plaintext.len(),
            })?;
        let [pad_len, next_header] = *array_at::<2>(plaintext, start)?;
        if usize::from(pad_len) > start {
            return Err(WireError::BadPadLength);
        }
        Ok(Self {
            pad_len,
            next_header,
        })
    }

    /// Length of the payload before the padding, given the full plaintext
    /// length; `None` if the padding does not fit.
    pub fn payload_len(&self, plaintext_len: usize) -> Option<usize> {
        plaintext_len
            .checked_sub(ESP_TRAILER_LEN)?
            .checked_sub(usize::from(self.pad_len))
    }

    /// Writes default padding (1, 2, 3, ...; RFC 4303 §2.4) and the trailer
    /// into the last `pad_len + 2` bytes of `buf`.
    pub fn write_to_end(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let total = usize::from(self.pad_len) + ESP_TRAILER_LEN;
        let start = buf
            .len()
            .checked_sub(total)
            .ok_or(WireError::BufferTooSmall)?;
        let tail = range_mut(buf, start, total).map_err(|_| WireError::BufferTooSmall)?;
        let (padding, trailer) = tail.split_at_mut(usize::from(self.pad_len));
        for (byte, value) in padding.iter_mut().zip(1u8..=u8::MAX) {
            *byte = value;
        }
        trailer.copy_from_slice(&[self.pad_len, self.next_header]);
        Ok(())
    }
}

/// Whether the `pad_len` bytes before the trailer hold the default padding
/// 1, 2, 3, ... (RFC 4303 §2.4). `plaintext` is the whole decrypted
/// payload, trailer included.
///
/// Every padding byte is examined even after a mismatch, so the time taken
/// depends on `pad_len` only and not on the padding contents.
pub fn check_padding(plaintext: &[u8], pad_len: u8) -> bool {
    let pad = usize::from(pad_len);
    let Some(start) = plaintext
        .len()
        .checked_sub(ESP_TRAILER_LEN)
        .and_then(|end| end.checked_sub(pad))
    else {
        return false;
    };
    let Some(padding) = plaintext.get(start..start + pad) else {
        return false;
    };
    // An index counter rather than zip with `1u8..=255`: RangeInclusive's exhaustion
    // flag made this loop cost ~50 instructions for the usual 0-3 bytes of padding.
    let mut diff = 0u8;
    for (i, &byte) in padding.iter().enumerate() {
        diff |= byte ^ (i as u8).wrapping_add(1);
    }
    diff == 0
}

/// Padding needed after `payload_len` bytes so that payload, padding and
/// the two trailer octets end on a multiple of `align`.
///
/// `align` is the cipher block size; values below 4 are raised to 4
/// because ESP always needs the trailer to end on a 4-byte boundary
/// (RFC 4303 §2.4). The result is below `align`, so it fits the 8-bit Pad
/// Length field whenever `align <= 256`.
pub fn pad_len_for(payload_len: usize, align: usize) -> usize {
    let align = align.max(4);
    if align.is_power_of_two() {
        // The usual case (4 or 16) without divisions: this runs per packet.
        let mask = align - 1;
        return align.wrapping_sub((payload_len % align + ESP_TRAILER_LEN) & mask) & mask;
    }
    let used = (payload_len % align + ESP_TRAILER_LEN) % align;
    (align - used) % align
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes() {
        let h = EspHeader {
            spi: 0x1234_5678,
            seq: 1,
        };
        let mut buf = [0u8; 8];
        h.write(&mut buf).expect("write");
        assert_eq!(buf, [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1]);
        assert_eq!(EspHeader::parse(&buf), Ok(h));
        assert_eq!(
            EspHeader::parse(&buf[..7]),
            Err(WireError::Truncated { need: 8, have: 7 })
        );
        assert_eq!(h.write(&mut buf[..7]), Err(WireError::BufferTooSmall));
        assert!(is_reserved_spi(0) && is_reserved_spi(255) && !is_reserved_spi(256));
    }

    #[test]
    fn trailer_parse() {
        // payload "ab", padding 1 2, pad_len 2, next header 4 (IPv4).
        let pt = [b'a', b'b', 1, 2, 2, 4];
        let t = EspTrailer::parse_from_end(&pt).expect("trailer");
        assert_eq!(
            t,
            EspTrailer {
                pad_len: 2,
                next_header: 4
            }
        );
        assert_eq!(t.payload_len(pt.len()), Some(2));
        assert!(check_padding(&pt, t.pad_len));
        assert_eq!(
            EspTrailer::parse_from_end(&[3, 4]),
            Err(WireError::BadPadLength)
        );
        assert_eq!(
            EspTrailer::parse_from_end(&[1, 0, 4]),
            Ok(EspTrailer {
                pad_len: 0,
                next_header: 4
            })
        );
        assert_eq!(
            EspTrailer::parse_from_end(&[4]),
            Err(WireError::Truncated { need: 2, have: 1 })
        );
        // Padding may consume everything but the trailer.
        assert!(EspTrailer::parse_from_end(&[1, 2, 2, 59]).is_ok());
        assert_eq!(
            EspTrailer::parse_from_end(&[1, 2, 3, 59]),
            Err(WireError::BadPadLength)
        );
    }

    #[test]
    fn padding_check() {
        assert!(check_padding(&[9, 1, 2, 3, 3, 4], 3));
        assert!(!check_padding(&[9, 1, 2, 4, 3, 4], 3));
        assert!(!check_padding(&[9, 0, 2, 3, 3, 4], 3));
        assert!(check_padding(&[9, 0, 4], 0));
        assert!(!check_padding(&[1, 3, 4], 2));
        assert!(!check_padding(&[], 0));
    }

    #[test]
    fn trailer_write() {
        let mut buf = [0xAAu8; 8];
        let t = EspTrailer {
            pad_len: 3,
            next_header: 41,
        };
        t.write_to_end(&mut buf).expect("write");
        assert_eq!(buf, [0xAA, 0xAA, 0xAA, 1, 2, 3, 3, 41]);
        assert_eq!(EspTrailer::parse_from_end(&buf), Ok(t));
        assert!(check_padding(&buf, 3));
        assert_eq!(
            t.write_to_end(&mut buf[..4]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn pad_lengths() {
        assert_eq!(pad_len_for(0, 4), 2);
        assert_eq!(pad_len_for(2, 4), 0);
        assert_eq!(pad_len_for(3, 4), 3);
        assert_eq!(pad_len_for(14, 16), 0);
        assert_eq!(pad_len_for(15, 16), 15);
        assert_eq!(pad_len_for(100, 16), 10);
        assert_eq!(pad_len_for(5, 0), 1, "align below 4 is raised to 4");
        assert_eq!(pad_len_for(5, 1), 1);
        assert_eq!(pad_len_for(usize::MAX, 16), 15);
        for len in 0..100 {
            for align in [4, 8, 16] {
                assert_eq!((len + pad_len_for(len, align) + 2) % align, 0);
            }
        }
    }
}
