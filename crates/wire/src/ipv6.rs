//! The IPv6 fixed header (RFC 8200 §3).

use core::ops::Range;

use crate::WireError;
use crate::bytes::{array_at, array_at_mut};
use crate::proto;

/// Length of the IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Largest flow label (20 bits).
pub const MAX_FLOW_LABEL: u32 = 0x000F_FFFF;
/// Offset of the Next Header field in the fixed header.
pub const NEXT_HEADER_OFFSET: usize = 6;

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Traffic Class: DSCP in the upper six bits, ECN in the lower two.
    pub traffic_class: u8,
    /// Flow Label (20 bits).
    pub flow_label: u32,
    /// Length of everything after the fixed header.
    pub payload_len: u16,
    /// Type of the first extension header or of the upper-layer payload.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// Parses the fixed header at the start of `buf`.
    ///
    /// Checks version 6 and that `40 + payload_len <= buf.len()` (trailing
    /// link-layer padding is allowed). A zero payload length with a
    /// hop-by-hop header next can only be a jumbogram (RFC 2675), since a
    /// real hop-by-hop header needs at least 8 payload bytes; jumbograms are
    /// rejected because nothing in the data plane handles 32-bit lengths.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let h: &[u8; IPV6_HEADER_LEN] = array_at(buf, 0)?;
        let version = h[0] >> 4;
        if version != 6 {
            return Err(WireError::BadVersion(version));
        }
        let payload_len = u16::from_be_bytes([h[4], h[5]]);
        let next_header = h[6];
        if payload_len == 0 && next_header == proto::HOPOPT {
            return Err(WireError::Jumbogram);
        }
        if IPV6_HEADER_LEN + usize::from(payload_len) > buf.len() {
            return Err(WireError::BadPayloadLength);
        }
        let src: &[u8; 16] = array_at(h, 8)?;
        let dst: &[u8; 16] = array_at(h, 24)?;
        Ok(Self {
            traffic_class: (h[0] << 4) | (h[1] >> 4),
            flow_label: u32::from_be_bytes([0, h[1] & 0x0F, h[2], h[3]]),
            payload_len,
            next_header,
            hop_limit: h[7],
            src: *src,
            dst: *dst,
        })
    }

    /// Writes the fixed header to the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if self.flow_label > MAX_FLOW_LABEL {
            return Err(WireError::FieldOutOfRange);
        }
        let h: &mut [u8; IPV6_HEADER_LEN] =
            array_at_mut(buf, 0).map_err(|_| WireError::BufferTooSmall)?;
        let [_, fl1, fl2, fl3] = self.flow_label.to_be_bytes();
        let [pl0, pl1] = self.payload_len.to_be_bytes();
        h[0] = 0x60 | (self.traffic_class >> 4);
        h[1] = (self.traffic_class << 4) | fl1;
        h[2] = fl2;
        h[3] = fl3;
        h[4] = pl0;
        h[5] = pl1;
        h[6] = self.next_header;
        h[7] = self.hop_limit;
        if let Ok(src) = array_at_mut::<16>(h, 8) {
            *src = self.src;
        }
        if let Ok(dst) = array_at_mut::<16>(h, 24) {
            *dst = self.dst;
        }
        Ok(())
    }

    /// DSCP: the upper six bits of the traffic class.
    pub fn dscp(&self) -> u8 {
        self.traffic_class >> 2
    }

    /// ECN: the lower two bits of the traffic class.
    pub fn ecn(&self) -> u8 {
        self.traffic_class & 0x03
    }

    /// Byte range of the payload (extension headers included).
    pub fn payload_range(&self) -> Range<usize> {
        IPV6_HEADER_LEN..IPV6_HEADER_LEN + usize::from(self.payload_len)
    }
}

/// The fixed header at the start of `buf`, after checking the version so
/// that setters cannot scribble over something that is not IPv6.
fn fixed_mut(buf: &mut [u8]) -> Result<&mut [u8; IPV6_HEADER_LEN], WireError> {
    let h: &mut [u8; IPV6_HEADER_LEN] = array_at_mut(buf, 0)?;
    if h[0] >> 4 != 6 {
        return Err(WireError::BadVersion(h[0] >> 4));
    }
    Ok(h)
}

/// Sets Payload Length of the header in `buf`.
pub fn set_payload_len(buf: &mut [u8], len: u16) -> Result<(), WireError> {
    let h = fixed_mut(buf)?;
    [h[4], h[5]] = len.to_be_bytes();
    Ok(())
}

/// Sets Next Header of the fixed header in `buf`.
pub fn set_next_header(buf: &mut [u8], next_header: u8) -> Result<(), WireError> {
    fixed_mut(buf)?[NEXT_HEADER_OFFSET] = next_header;
    Ok(())
}

/// Sets Hop Limit of the header in `buf`.
pub fn set_hop_limit(buf: &mut [u8], hop_limit: u8) -> Result<(), WireError> {
    fixed_mut(buf)?[7] = hop_limit;
    Ok(())
}

/// Sets the whole Traffic Class of the header in `buf`.
pub fn set_traffic_class(buf: &mut [u8], traffic_class: u8) -> Result<(), WireError> {
    let h = fixed_mut(buf)?;
    h[0] = (h[0] & 0xF0) | (traffic_class >> 4);
    h[1] = (traffic_class << 4) | (h[1] & 0x0F);
    Ok(())
}

/// Sets only the ECN bits (0..=3), for ECN propagation at tunnel ends
/// (RFC 6040).
pub fn set_ecn(buf: &mut [u8], ecn: u8) -> Result<(), WireError> {
    if ecn > 0x03 {
        return Err(WireError::FieldOutOfRange);
    }
    let tc = traffic_class(buf)?;
    set_traffic_class(buf, (tc & 0xFC) | ecn)
}

/// Sets only the DSCP (0..=63).
pub fn set_dscp(buf: &mut [u8], dscp: u8) -> Result<(), WireError> {
    if dscp > 0x3F {
        return Err(WireError::FieldOutOfRange);
    }
    let tc = traffic_class(buf)?;
    set_traffic_class(buf, (dscp << 2) | (tc & 0x03))
}

fn traffic_class(buf: &[u8]) -> Result<u8, WireError> {
    let [b0, b1] = *array_at::<2>(buf, 0)?;
    Ok((b0 << 4) | (b1 >> 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ipv6Header {
        Ipv6Header {
            traffic_class: 0xB9,
            flow_label: 0xABCDE,
            payload_len: 8,
            next_header: proto::UDP,
            hop_limit: 64,
            src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        }
    }

    #[test]
    fn write_known_bytes_and_parse_back() {
        let mut buf = [0u8; 48];
        sample().write(&mut buf).expect("write");
        assert_eq!(buf[..8], [0x6B, 0x9A, 0xBC, 0xDE, 0x00, 0x08, 17, 64]);
        let h = Ipv6Header::parse(&buf).expect("parse");
        assert_eq!(h, sample());
        assert_eq!(h.dscp(), 0xB9 >> 2);
        assert_eq!(h.ecn(), 1);
        assert_eq!(h.payload_range(), 40..48);
    }

    #[test]
    fn parse_rejects() {
        let mut buf = [0u8; 48];
        sample().write(&mut buf).expect("write");
        assert_eq!(
            Ipv6Header::parse(&buf[..47]),
            Err(WireError::BadPayloadLength)
        );
        assert_eq!(
            Ipv6Header::parse(&buf[..39]),
            Err(WireError::Truncated { need: 40, have: 39 })
        );
        let mut jumbo = buf;
        jumbo[4] = 0;
        jumbo[5] = 0;
        jumbo[6] = proto::HOPOPT;
        assert_eq!(Ipv6Header::parse(&jumbo), Err(WireError::Jumbogram));
        let mut v4 = buf;
        v4[0] = 0x45;
        assert_eq!(Ipv6Header::parse(&v4), Err(WireError::BadVersion(4)));
    }

    #[test]
    fn write_rejects() {
        let mut h = sample();
        let mut buf = [0u8; 40];
        assert_eq!(h.write(&mut buf[..39]), Err(WireError::BufferTooSmall));
        h.flow_label = 0x10_0000;
        assert_eq!(h.write(&mut buf), Err(WireError::FieldOutOfRange));
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 64];
        sample().write(&mut buf).expect("write");
        set_payload_len(&mut buf, 24).expect("set");
        set_next_header(&mut buf, proto::ESP).expect("set");
        set_hop_limit(&mut buf, 1).expect("set");
        set_traffic_class(&mut buf, 0x2E).expect("set");
        let h = Ipv6Header::parse(&buf).expect("parse");
        assert_eq!(
            (h.payload_len, h.next_header, h.hop_limit, h.traffic_class),
            (24, proto::ESP, 1, 0x2E)
        );
        assert_eq!(h.flow_label, 0xABCDE, "flow label survives TC edits");
        set_ecn(&mut buf, 3).expect("set");
        set_dscp(&mut buf, 46).expect("set");
        let h = Ipv6Header::parse(&buf).expect("parse");
        assert_eq!((h.dscp(), h.ecn()), (46, 3));
        assert_eq!(set_ecn(&mut buf, 4), Err(WireError::FieldOutOfRange));
        assert!(set_payload_len(&mut buf[..39], 0).is_err());
        buf[0] = 0x45;
        assert_eq!(set_next_header(&mut buf, 0), Err(WireError::BadVersion(4)));
    }
}
