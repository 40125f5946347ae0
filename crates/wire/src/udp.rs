//! The UDP header (RFC 768) and its pseudo-header checksums, needed for
//! UDP-encapsulated ESP (RFC 3948) and transport-mode checksum fix-ups.

use core::ops::Range;

use crate::WireError;
use crate::bytes::{array_at, array_at_mut};
use crate::checksum::Checksum;
use crate::proto;

/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;
const CHECKSUM_OFFSET: usize = 6;

/// A parsed UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header plus payload.
    pub length: u16,
    /// Checksum as on the wire; 0 means "none" over IPv4.
    pub checksum: u16,
}

impl UdpHeader {
    /// Parses the header at the start of `buf` (the UDP datagram), checking
    /// `8 <= length <= buf.len()`.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let h: &[u8; UDP_HEADER_LEN] = array_at(buf, 0)?;
        let header = Self {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
            length: u16::from_be_bytes([h[4], h[5]]),
            checksum: u16::from_be_bytes([h[6], h[7]]),
        };
        let length = usize::from(header.length);
        if length < UDP_HEADER_LEN || length > buf.len() {
            return Err(WireError::BadUdpLength);
        }
        Ok(header)
    }

    /// Writes the header, checksum field as given, to the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let h: &mut [u8; UDP_HEADER_LEN] =
            array_at_mut(buf, 0).map_err(|_| WireError::BufferTooSmall)?;
        let [a0, a1] = self.src_port.to_be_bytes();
        let [b0, b1] = self.dst_port.to_be_bytes();
        let [l0, l1] = self.length.to_be_bytes();
        let [c0, c1] = self.checksum.to_be_bytes();
        *h = [a0, a1, b0, b1, l0, l1, c0, c1];
        Ok(())
    }

    /// Byte range of the payload within the datagram.
    pub fn payload_range(&self) -> Range<usize> {
        UDP_HEADER_LEN..usize::from(self.length).max(UDP_HEADER_LEN)
    }
}

/// Adds the datagram with its checksum field counted as zero, so the same
/// function serves for filling in and for checking a checksum.
fn add_datagram(c: &mut Checksum, udp: &[u8]) {
    match (udp.get(..CHECKSUM_OFFSET), udp.get(CHECKSUM_OFFSET + 2..)) {
        (Some(before), Some(after)) => {
            c.add_bytes(before);
            c.add_bytes(after);
        }
        (Some(before), None) => c.add_bytes(before),
        (None, _) => c.add_bytes(udp),
    }
}

fn length_u32(udp: &[u8]) -> u32 {
    u32::try_from(udp.len()).unwrap_or(u32::MAX)
}

/// A computed checksum of zero is sent as all ones, because zero on the
/// wire means "no checksum" (RFC 768).
fn wire_value(sum: u16) -> u16 {
    if sum == 0 { 0xFFFF } else { sum }
}

/// UDP checksum over the IPv4 pseudo-header and `udp` (the whole datagram,
/// whose own checksum field is treated as zero). Never returns 0.
pub fn udp_checksum_v4(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(&src);
    c.add_bytes(&dst);
    c.add_u16(u16::from(proto::UDP));
    // The field is 16 bits; summing the length as 32 bits is identical for
    // real datagrams and still well defined for oversized input.
    c.add_u32(length_u32(udp));
    add_datagram(&mut c, udp);
    wire_value(c.finish())
}

/// UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and `udp`
/// (whose own checksum field is treated as zero). Never returns 0.
pub fn udp_checksum_v6(src: [u8; 16], dst: [u8; 16], udp: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(&src);
    c.add_bytes(&dst);
    c.add_u32(length_u32(udp));
    c.add_u32(u32::from(proto::UDP));
    add_datagram(&mut c, udp);
    wire_value(c.finish())
}

fn checksum_field(udp: &[u8]) -> Option<u16> {
    array_at::<2>(udp, CHECKSUM_OFFSET)
        .ok()
        .map(|b| u16::from_be_bytes(*b))
}

/// Whether the checksum of an IPv4 UDP datagram is absent (0) or correct.
pub fn verify_udp_checksum_v4(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> bool {
    match checksum_field(udp) {
        Some(0) => true,
        Some(field) => field == udp_checksum_v4(src, dst, udp),
        None => false,
    }
}

/// Whether the checksum of an IPv6 UDP datagram is correct; zero is
/// invalid over IPv6 (RFC 8200 §8.1).
pub fn verify_udp_checksum_v6(src: [u8; 16], dst: [u8; 16], udp: &[u8]) -> bool {
    match checksum_field(udp) {
        Some(0) | None => false,
        Some(field) => field == udp_checksum_v6(src, dst, udp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = UdpHeader {
            src_port: 4500,
            dst_port: 4500,
            length: 9,
            checksum: 0,
        };
        let mut buf = [0u8; 9];
        h.write(&mut buf).expect("write");
        assert_eq!(buf[..8], [0x11, 0x94, 0x11, 0x94, 0, 9, 0, 0]);
        assert_eq!(UdpHeader::parse(&buf), Ok(h));
        assert_eq!(h.payload_range(), 8..9);
        assert_eq!(UdpHeader::parse(&buf[..8]), Err(WireError::BadUdpLength));
        buf[5] = 7;
        assert_eq!(UdpHeader::parse(&buf), Err(WireError::BadUdpLength));
        assert_eq!(
            UdpHeader::parse(&buf[..7]),
            Err(WireError::Truncated { need: 8, have: 7 })
        );
        assert_eq!(h.write(&mut buf[..7]), Err(WireError::BufferTooSmall));
    }

    #[test]
    fn v4_known_checksum() {
        // 192.168.0.1:1024 -> 192.168.0.199:53, payload "hi".
        // Sum: c0a8+0001+c0a8+00c7+0011+000a + 0400+0035+000a+6869 = 0x1_eedb
        // fold -> 0xeedc, checksum = !0xeedc = 0x1123.
        let src = [192, 168, 0, 1];
        let dst = [192, 168, 0, 199];
        let mut udp = [0x04, 0x00, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, b'h', b'i'];
        let sum = udp_checksum_v4(src, dst, &udp);
        assert_eq!(sum, 0x1123);
        assert!(verify_udp_checksum_v4(src, dst, &udp), "zero = no checksum");
        [udp[6], udp[7]] = sum.to_be_bytes();
        assert!(verify_udp_checksum_v4(src, dst, &udp));
        assert_eq!(udp_checksum_v4(src, dst, &udp), sum, "field is ignored");
        udp[9] ^= 1;
        assert!(!verify_udp_checksum_v4(src, dst, &udp));
    }

    #[test]
    fn v6_checksum_verifies_and_zero_is_invalid() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut udp = [0x11, 0x94, 0x11, 0x94, 0, 11, 0, 0, 1, 2, 3];
        assert!(!verify_udp_checksum_v6(src, dst, &udp));
        let sum = udp_checksum_v6(src, dst, &udp);
        [udp[6], udp[7]] = sum.to_be_bytes();
        assert!(verify_udp_checksum_v6(src, dst, &udp));
        // Independent check: summing everything including the field gives 0.
        let mut c = Checksum::new();
        c.add_bytes(&src);
        c.add_bytes(&dst);
        c.add_u32(udp.len() as u32);
        c.add_u32(17);
        c.add_bytes(&udp);
        assert_eq!(c.finish(), 0);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Pick the payload so the ones' complement sum is 0xFFFF.
        let src = [0, 0, 0, 0];
        let dst = [0, 0, 0, 0];
        // Pseudo: 0x0011 + 0x000a; header: ports 0, len 0x000a.
        // Need payload word w with 0x11 + 0x0a + 0x0a + w = 0xFFFF.
        let w: u16 = 0xFFFF - 0x11 - 0x0a - 0x0a;
        let [w0, w1] = w.to_be_bytes();
        let udp = [0, 0, 0, 0, 0, 0x0a, 0, 0, w0, w1];
        assert_eq!(udp_checksum_v4(src, dst, &udp), 0xFFFF);
    }

    #[test]
    fn short_input_does_not_panic() {
        for len in 0..8 {
            let _ = udp_checksum_v4([0; 4], [0; 4], &[0xAB; 8][..len]);
            assert!(!verify_udp_checksum_v6([0; 16], [0; 16], &[0xAB; 8][..len]));
        }
    }
}
