//! UDP encapsulation of ESP for NAT traversal (RFC 3948) on port 4500,
//! where ESP, IKE and NAT keepalives share one UDP port.

use crate::WireError;
use crate::bytes::{array_at, array_at_mut};
use crate::esp::{ESP_HEADER_LEN, is_reserved_spi};

/// The UDP port shared by IKE and UDP-encapsulated ESP.
pub const NAT_T_PORT: u16 = 4500;
/// Four zero bytes in place of an SPI, announcing an IKE message
/// (RFC 3948 §2.2); ESP can never start this way since SPI 0 is not sent.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The single-byte NAT keepalive (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xFF];

/// What a UDP payload received on port 4500 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp4500Payload<'a> {
    /// A NAT keepalive, to be dropped.
    Keepalive,
    /// An IKE message, with the non-ESP marker already stripped.
    Ike(&'a [u8]),
    /// An ESP packet, starting at its SPI.
    Esp(&'a [u8]),
}

/// Tells keepalives, IKE and ESP apart in a port-4500 UDP payload
/// (RFC 3948 §2).
///
/// ESP needs at least its 8-byte header and an SPI outside the range
/// RFC 4303 §2.1 reserves; anything else that is neither a keepalive nor
/// marked IKE is an error.
pub fn classify_udp_4500(payload: &[u8]) -> Result<Udp4500Payload<'_>, WireError> {
    if payload == NAT_KEEPALIVE {
        return Ok(Udp4500Payload::Keepalive);
    }
    if let Some(ike) = payload.strip_prefix(&NON_ESP_MARKER) {
        return Ok(Udp4500Payload::Ike(ike));
    }
    let spi = array_at::<ESP_HEADER_LEN>(payload, 0)
        .map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]))?;
    if is_reserved_spi(spi) {
        return Err(WireError::ReservedSpi(spi));
    }
    Ok(Udp4500Payload::Esp(payload))
}

/// Writes the non-ESP marker to the start of `buf`, ahead of an IKE
/// message sent on port 4500.
pub fn write_non_esp_marker(buf: &mut [u8]) -> Result<(), WireError> {
    *array_at_mut::<4>(buf, 0).map_err(|_| WireError::BufferTooSmall)? = NON_ESP_MARKER;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive() {
        assert_eq!(classify_udp_4500(&[0xFF]), Ok(Udp4500Payload::Keepalive));
        // Only exactly one 0xFF byte is a keepalive.
        assert_eq!(
            classify_udp_4500(&[0xFF, 0xFF]),
            Err(WireError::Truncated { need: 8, have: 2 })
        );
        assert_eq!(
            classify_udp_4500(&[0x00]),
            Err(WireError::Truncated { need: 8, have: 1 })
        );
    }

    #[test]
    fn ike_after_marker() {
        let pkt = [0, 0, 0, 0, 0xAA, 0xBB];
        assert_eq!(
            classify_udp_4500(&pkt),
            Ok(Udp4500Payload::Ike(&[0xAA, 0xBB]))
        );
        assert_eq!(classify_udp_4500(&[0; 4]), Ok(Udp4500Payload::Ike(&[])));
        assert_eq!(
            classify_udp_4500(&[0, 0, 0]),
            Err(WireError::Truncated { need: 8, have: 3 })
        );
    }

    #[test]
    fn esp() {
        let pkt = [0, 0, 0x01, 0x00, 0, 0, 0, 1, 0xCC];
        assert_eq!(classify_udp_4500(&pkt), Ok(Udp4500Payload::Esp(&pkt)));
        assert_eq!(
            classify_udp_4500(&[0, 0, 0, 0xFF, 0, 0, 0, 1]),
            Err(WireError::ReservedSpi(255))
        );
        assert_eq!(
            classify_udp_4500(&[0, 0, 0, 1, 0, 0, 0, 1]),
            Err(WireError::ReservedSpi(1))
        );
        assert_eq!(
            classify_udp_4500(&[0x12, 0x34, 0x56, 0x78, 0, 0, 0]),
            Err(WireError::Truncated { need: 8, have: 7 })
        );
        assert_eq!(
            classify_udp_4500(&[]),
            Err(WireError::Truncated { need: 8, have: 0 })
        );
    }

    #[test]
    fn marker_write() {
        let mut buf = [0xAAu8; 6];
        write_non_esp_marker(&mut buf).expect("write");
        assert_eq!(buf, [0, 0, 0, 0, 0xAA, 0xAA]);
        assert_eq!(
            write_non_esp_marker(&mut buf[..3]),
            Err(WireError::BufferTooSmall)
        );
    }
}
