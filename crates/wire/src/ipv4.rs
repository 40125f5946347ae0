//! The IPv4 header (RFC 791), with the TOS byte split into DSCP and ECN
//! (RFC 2474, RFC 3168).

pub mod options;

use core::ops::Range;

use crate::WireError;
use crate::bytes::{array_at, array_at_mut};
use crate::checksum::{internet_checksum, ipv4_header_checksum};

/// Length of an IPv4 header without options (IHL = 5).
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Longest header the 4-bit IHL field can describe (IHL = 15).
pub const IPV4_MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAGMENT_OFFSET_MASK: u16 = 0x1FFF;
const CHECKSUM_OFFSET: usize = 10;

/// A parsed IPv4 header.
///
/// Options are not copied out (that would need storage per packet); they
/// stay in the buffer and can be walked with [`options::Ipv4Options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Differentiated Services Code Point (upper six bits of the TOS byte).
    pub dscp: u8,
    /// Explicit Congestion Notification (lower two bits of the TOS byte).
    pub ecn: u8,
    /// Length of the whole datagram, header included.
    pub total_len: u16,
    /// Identification, used to group fragments.
    pub identification: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-octet units (13 bits).
    pub fragment_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol of the payload (see [`crate::proto`]).
    pub protocol: u8,
    /// Header checksum as found on the wire; [`Ipv4Header::write`] ignores
    /// it and computes a fresh one.
    pub checksum: u16,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Header length in bytes, options included (IHL × 4).
    pub header_len: usize,
}

impl Ipv4Header {
    /// Parses the header at the start of `buf`.
    ///
    /// Checks version 4, IHL >= 5, that the whole header is present, and
    /// that `header_len <= total_len <= buf.len()`; bytes after `total_len`
    /// (link-layer padding) are allowed. The checksum is not verified here
    /// because forwarding paths that rewrite the header anyway can skip it;
    /// use [`verify_checksum`] where it matters.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let header_len = checked_header_len(buf)?;
        let h: &[u8; IPV4_MIN_HEADER_LEN] = array_at(buf, 0)?;
        let total_len = u16::from_be_bytes([h[2], h[3]]);
        let total = usize::from(total_len);
        if total < header_len || total > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        let flags_fragment = u16::from_be_bytes([h[6], h[7]]);
        Ok(Self {
            dscp: h[1] >> 2,
            ecn: h[1] & 0x03,
            total_len,
            identification: u16::from_be_bytes([h[4], h[5]]),
            dont_fragment: flags_fragment & FLAG_DF != 0,
            more_fragments: flags_fragment & FLAG_MF != 0,
            fragment_offset: flags_fragment & FRAGMENT_OFFSET_MASK,
            ttl: h[8],
            protocol: h[9],
            checksum: u16::from_be_bytes([h[10], h[11]]),
            src: [h[12], h[13], h[14], h[15]],
            dst: [h[16], h[17], h[18], h[19]],
            header_len,
        })
    }

    /// Writes a 20-byte header (no options) to the start of `buf`,
    /// computing the checksum; the `checksum` field of `self` is ignored.
    ///
    /// Emitting options is not supported because tunnel-mode outer headers,
    /// the only headers this data plane builds, never carry them; hence
    /// `header_len` must be 20.
    pub fn write(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if self.header_len != IPV4_MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if self.dscp > 0x3F || self.ecn > 0x03 || self.fragment_offset > FRAGMENT_OFFSET_MASK {
            return Err(WireError::FieldOutOfRange);
        }
        let h: &mut [u8; IPV4_MIN_HEADER_LEN] =
            array_at_mut(buf, 0).map_err(|_| WireError::BufferTooSmall)?;
        // Built and summed in registers, then stored once: summing the freshly
        // written buffer would read back bytes still in the store queue.
        let mut flags_fragment = self.fragment_offset;
        if self.dont_fragment {
            flags_fragment |= FLAG_DF;
        }
        if self.more_fragments {
            flags_fragment |= FLAG_MF;
        }
        let [tl0, tl1] = self.total_len.to_be_bytes();
        let [id0, id1] = self.identification.to_be_bytes();
        let [ff0, ff1] = flags_fragment.to_be_bytes();
        let [s0, s1, s2, s3] = self.src;
        let [d0, d1, d2, d3] = self.dst;
        let mut header = [
            0x45,
            (self.dscp << 2) | self.ecn,
            tl0,
            tl1,
            id0,
            id1,
            ff0,
            ff1,
            self.ttl,
            self.protocol,
            0,
            0,
            s0,
            s1,
            s2,
            s3,
            d0,
            d1,
            d2,
            d3,
        ];
        let [c0, c1] = ipv4_header_checksum(&header).to_be_bytes();
        header[CHECKSUM_OFFSET] = c0;
        header[CHECKSUM_OFFSET + 1] = c1;
        *h = header;
        Ok(())
    }

    /// Byte range of the payload within the packet.
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len..usize::from(self.total_len)
    }

    /// Whether this datagram is a fragment (first or later).
    ///
    /// AH and ESP are applied to whole datagrams only (RFC 4302 §3.4.1,
    /// RFC 4303 §3.4.1), so callers need to spot fragments early.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// Header length from IHL after checking the version, IHL >= 5, and that
/// the header fits in `buf`. Shared by everything that edits a header in
/// place, so none of them can touch bytes outside it.
pub(crate) fn checked_header_len(buf: &[u8]) -> Result<usize, WireError> {
    let first = *buf.first().ok_or(WireError::Truncated {
        need: IPV4_MIN_HEADER_LEN,
        have: 0,
    })?;
    if first >> 4 != 4 {
        return Err(WireError::BadVersion(first >> 4));
    }
    let header_len = usize::from(first & 0x0F) * 4;
    if header_len < IPV4_MIN_HEADER_LEN {
        return Err(WireError::BadHeaderLength);
    }
    if header_len > buf.len() {
        return Err(WireError::Truncated {
            need: header_len,
            have: buf.len(),
        });
    }
    Ok(header_len)
}

/// The header (IHL × 4 bytes) at the start of `buf`, after validation.
fn header_mut(buf: &mut [u8]) -> Result<&mut [u8], WireError> {
    let header_len = checked_header_len(buf)?;
    let have = buf.len();
    buf.get_mut(..header_len).ok_or(WireError::Truncated {
        need: header_len,
        have,
    })
}

fn store_checksum(header: &mut [u8]) {
    let sum = ipv4_header_checksum(header);
    if let Ok(field) = array_at_mut::<2>(header, CHECKSUM_OFFSET) {
        *field = sum.to_be_bytes();
    }
}

/// Applies `edit` to the fixed part of the header in `buf`, then refreshes
/// the checksum so the header is never left inconsistent.
fn edit_fixed(
    buf: &mut [u8],
    edit: impl FnOnce(&mut [u8; IPV4_MIN_HEADER_LEN]),
) -> Result<(), WireError> {
    let header = header_mut(buf)?;
    let (fixed, _) = header
        .split_first_chunk_mut::<IPV4_MIN_HEADER_LEN>()
        .ok_or(WireError::BadHeaderLength)?;
    edit(fixed);
    store_checksum(header);
    Ok(())
}

/// Sets Total Length of the header in `buf` and updates the checksum.
pub fn set_total_len(buf: &mut [u8], len: u16) -> Result<(), WireError> {
    edit_fixed(buf, |h| {
        [h[2], h[3]] = len.to_be_bytes();
    })
}

/// Sets Protocol of the header in `buf` and updates the checksum.
pub fn set_protocol(buf: &mut [u8], protocol: u8) -> Result<(), WireError> {
    edit_fixed(buf, |h| h[9] = protocol)
}

/// Sets TTL of the header in `buf` and updates the checksum.
pub fn set_ttl(buf: &mut [u8], ttl: u8) -> Result<(), WireError> {
    edit_fixed(buf, |h| h[8] = ttl)
}

/// Sets the ECN bits (0..=3) of the header in `buf` and updates the
/// checksum; used for ECN propagation at tunnel ends (RFC 6040).
pub fn set_ecn(buf: &mut [u8], ecn: u8) -> Result<(), WireError> {
    if ecn > 0x03 {
        return Err(WireError::FieldOutOfRange);
    }
    edit_fixed(buf, |h| h[1] = (h[1] & 0xFC) | ecn)
}

/// Sets the DSCP (0..=63) of the header in `buf` and updates the checksum.
pub fn set_dscp(buf: &mut [u8], dscp: u8) -> Result<(), WireError> {
    if dscp > 0x3F {
        return Err(WireError::FieldOutOfRange);
    }
    edit_fixed(buf, |h| h[1] = (dscp << 2) | (h[1] & 0x03))
}

/// Sets or clears DF of the header in `buf` and updates the checksum.
pub fn set_df(buf: &mut [u8], df: bool) -> Result<(), WireError> {
    // DF lives in the top byte of the flags/fragment-offset word.
    const DF_BIT: u8 = 0x40;
    edit_fixed(buf, |h| {
        h[6] = if df { h[6] | DF_BIT } else { h[6] & !DF_BIT };
    })
}

/// Recomputes the checksum of the header in `buf`, options included.
pub fn update_checksum(buf: &mut [u8]) -> Result<(), WireError> {
    edit_fixed(buf, |_| {})
}

/// Whether the header at the start of `buf` is well formed and its checksum
/// is correct.
pub fn verify_checksum(buf: &[u8]) -> bool {
    match checked_header_len(buf) {
        Ok(len) => buf.get(..len).is_some_and(|h| internet_checksum(h) == 0),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    const CAPTURED: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn captured_packet() -> [u8; 0x73] {
        let mut p = [0u8; 0x73];
        if let Some(h) = p.first_chunk_mut::<20>() {
            *h = CAPTURED;
        }
        p
    }

    #[test]
    fn parse_captured() {
        let p = captured_packet();
        let h = Ipv4Header::parse(&p).expect("valid header");
        assert_eq!(h.total_len, 0x73);
        assert!(h.dont_fragment);
        assert!(!h.more_fragments);
        assert_eq!(h.fragment_offset, 0);
        assert_eq!(h.ttl, 64);
        assert_eq!(h.protocol, proto::UDP);
        assert_eq!(h.checksum, 0xb861);
        assert_eq!(h.src, [192, 168, 0, 1]);
        assert_eq!(h.dst, [192, 168, 0, 199]);
        assert_eq!(h.header_len, 20);
        assert_eq!(h.payload_range(), 20..0x73);
        assert!(!h.is_fragment());
        assert!(verify_checksum(&p));
    }

    #[test]
    fn write_reproduces_captured() {
        let p = captured_packet();
        let h = Ipv4Header::parse(&p).expect("valid header");
        let mut out = [0u8; 20];
        h.write(&mut out).expect("write");
        assert_eq!(out, CAPTURED);
    }

    #[test]
    fn parse_rejects() {
        let p = captured_packet();
        assert_eq!(
            Ipv4Header::parse(&p[..19]),
            Err(WireError::Truncated { need: 20, have: 19 })
        );
        // total_len 0x73 is beyond a 20-byte buffer.
        assert_eq!(Ipv4Header::parse(&p[..20]), Err(WireError::BadTotalLength));
        let mut bad = p;
        bad[0] = 0x65;
        assert_eq!(Ipv4Header::parse(&bad), Err(WireError::BadVersion(6)));
        bad[0] = 0x44;
        assert_eq!(Ipv4Header::parse(&bad), Err(WireError::BadHeaderLength));
        bad[0] = 0x4F;
        bad[2] = 0;
        bad[3] = 30;
        assert_eq!(
            Ipv4Header::parse(&bad[..40]),
            Err(WireError::Truncated { need: 60, have: 40 })
        );
        let mut small_total = p;
        small_total[3] = 19;
        assert_eq!(
            Ipv4Header::parse(&small_total),
            Err(WireError::BadTotalLength)
        );
    }

    #[test]
    fn write_rejects() {
        let mut h = Ipv4Header::parse(&captured_packet()).expect("valid header");
        let mut out = [0u8; 20];
        assert_eq!(h.write(&mut out[..19]), Err(WireError::BufferTooSmall));
        h.dscp = 64;
        assert_eq!(h.write(&mut out), Err(WireError::FieldOutOfRange));
        h.dscp = 0;
        h.header_len = 24;
        assert_eq!(h.write(&mut out), Err(WireError::BadHeaderLength));
    }

    #[test]
    fn setters_keep_checksum_valid() {
        let mut p = captured_packet();
        set_total_len(&mut p, 100).expect("set");
        set_protocol(&mut p, proto::ESP).expect("set");
        set_ttl(&mut p, 3).expect("set");
        set_dscp(&mut p, 46).expect("set");
        set_ecn(&mut p, 3).expect("set");
        set_df(&mut p, false).expect("set");
        assert!(verify_checksum(&p));
        let h = Ipv4Header::parse(&p).expect("valid");
        assert_eq!(
            (
                h.total_len,
                h.protocol,
                h.ttl,
                h.dscp,
                h.ecn,
                h.dont_fragment
            ),
            (100, proto::ESP, 3, 46, 3, false)
        );
        set_df(&mut p, true).expect("set");
        set_dscp(&mut p, 0).expect("set");
        let h = Ipv4Header::parse(&p).expect("valid");
        assert!(h.dont_fragment);
        assert_eq!((h.dscp, h.ecn), (0, 3));
        assert_eq!(set_ecn(&mut p, 4), Err(WireError::FieldOutOfRange));
        assert_eq!(set_dscp(&mut p, 64), Err(WireError::FieldOutOfRange));
        assert!(set_ttl(&mut p[..10], 1).is_err());
    }

    #[test]
    fn checksum_covers_options() {
        let mut p = [0u8; 24];
        p[..20].copy_from_slice(&CAPTURED);
        p[0] = 0x46;
        p[3] = 24;
        p[20] = 1; // NOP
        update_checksum(&mut p).expect("update");
        assert!(verify_checksum(&p));
        p[21] = 1;
        assert!(!verify_checksum(&p));
        assert!(!verify_checksum(&p[..22]));
    }
}
