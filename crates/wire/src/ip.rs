//! IP version dispatch and IANA protocol numbers.

use crate::WireError;

/// Which IP header a packet starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (RFC 791).
    V4,
    /// IPv6 (RFC 8200).
    V6,
}

/// Reads the version nibble shared by IPv4 and IPv6, so a raw packet can be
/// dispatched to the right parser before either is run.
pub fn ip_version(packet: &[u8]) -> Result<IpVersion, WireError> {
    let first = *packet
        .first()
        .ok_or(WireError::Truncated { need: 1, have: 0 })?;
    match first >> 4 {
        4 => Ok(IpVersion::V4),
        6 => Ok(IpVersion::V6),
        v => Err(WireError::BadVersion(v)),
    }
}

/// IANA "Assigned Internet Protocol Numbers" used in the IPv4 protocol
/// field and in IPv6 next-header fields.
pub mod proto {
    /// IPv6 Hop-by-Hop Options (RFC 8200).
    pub const HOPOPT: u8 = 0;
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation, used as next header in IPv4 tunnel mode.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation, used as next header in IPv6 tunnel mode.
    pub const IPV6: u8 = 41;
    /// IPv6 Routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 Fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header; also marks ESP dummy packets (RFC 4303 §2.6).
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 Destination Options.
    pub const IPV6_OPTS: u8 = 60;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch() {
        assert_eq!(ip_version(&[0x45]), Ok(IpVersion::V4));
        assert_eq!(ip_version(&[0x60, 0, 0, 0]), Ok(IpVersion::V6));
        assert_eq!(ip_version(&[0x50]), Err(WireError::BadVersion(5)));
        assert_eq!(
            ip_version(&[]),
            Err(WireError::Truncated { need: 1, have: 0 })
        );
    }
}
