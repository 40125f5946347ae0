//! The outer headers of a received IPsec packet: where ESP or AH starts and who sent it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_wire::{
    ExtChain, IPV6_HEADER_LEN, IpVersion, Ipv4Header, Ipv6Header, UDP_HEADER_LEN, Udp4500Payload,
    UdpHeader, classify_udp_4500, ip_version, proto,
};

use crate::error::EspError;

/// What the outer headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outer {
    /// IPv4 or IPv6.
    pub version: IpVersion,
    /// Length of the packet as its header declares it.
    pub total: usize,
    /// Bytes from the start of the packet to the UDP, ESP or AH header.
    pub header_len: usize,
    /// Offset of the Next Header / Protocol byte that announced the IPsec header.
    pub next_header_field: usize,
    /// IP protocol after the IP headers: ESP, AH or UDP.
    pub protocol: u8,
    /// Offset of the ESP or AH header (after UDP when encapsulated).
    pub ipsec_offset: usize,
    /// UDP source and destination ports when ESP came in UDP.
    pub udp_ports: Option<(u16, u16)>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The TOS / traffic class octet (DSCP and ECN).
    pub tos: u8,
}

impl Outer {
    /// Parses the IP header (and IPv6 extension headers, and UDP for RFC 3948).
    pub fn parse(bytes: &[u8]) -> Result<Outer, EspError> {
        let mut outer = match ip_version(bytes)? {
            IpVersion::V4 => {
                let h = Ipv4Header::parse(bytes)?;
                if h.more_fragments || h.fragment_offset != 0 {
                    return Err(EspError::Malformed("fragment: reassemble before IPsec"));
                }
                Outer {
                    version: IpVersion::V4,
                    total: usize::from(h.total_len),
                    header_len: h.header_len,
                    next_header_field: 9,
                    protocol: h.protocol,
                    ipsec_offset: h.header_len,
                    udp_ports: None,
                    src: IpAddr::V4(Ipv4Addr::from(h.src)),
                    dst: IpAddr::V4(Ipv4Addr::from(h.dst)),
                    tos: (h.dscp << 2) | h.ecn,
                }
            }
            IpVersion::V6 => {
                let h = Ipv6Header::parse(bytes)?;
                let total = IPV6_HEADER_LEN + usize::from(h.payload_len);
                let chain = ExtChain::walk(bytes.get(..total).ok_or(EspError::TooShort)?)?;
                if chain.find(proto::IPV6_FRAG).is_some() {
                    return Err(EspError::Malformed("fragment: reassemble before IPsec"));
                }
                // The walk goes through AH (it is an extension header to IPv6); the
                // IPsec header we want is the first AH, or else what ends the chain.
                let (protocol, offset, before) = match chain.find(proto::AH) {
                    Some((i, ah)) => (proto::AH, ah.offset, i.checked_sub(1)),
                    None => (
                        chain.upper_protocol,
                        chain.upper_offset,
                        chain.len().checked_sub(1),
                    ),
                };
                Outer {
                    version: IpVersion::V6,
                    total,
                    header_len: offset,
                    next_header_field: chain.next_header_field_offset(before),
                    protocol,
                    ipsec_offset: offset,
                    udp_ports: None,
                    src: IpAddr::V6(Ipv6Addr::from(h.src)),
                    dst: IpAddr::V6(Ipv6Addr::from(h.dst)),
                    tos: h.traffic_class,
                }
            }
        };
        if outer.protocol == proto::UDP {
            let udp_bytes = bytes
                .get(outer.header_len..outer.total)
                .ok_or(EspError::TooShort)?;
            let udp = UdpHeader::parse(udp_bytes)?;
            let payload = udp_bytes.get(UDP_HEADER_LEN..).ok_or(EspError::TooShort)?;
            match classify_udp_4500(payload)? {
                Udp4500Payload::Esp(_) => {}
                Udp4500Payload::Keepalive | Udp4500Payload::Ike(_) => {
                    return Err(EspError::Malformed("UDP payload is not ESP"));
                }
            }
            outer.udp_ports = Some((udp.src_port, udp.dst_port));
            outer.ipsec_offset = outer.header_len + UDP_HEADER_LEN;
        } else if outer.protocol != proto::ESP && outer.protocol != proto::AH {
            return Err(EspError::Malformed("neither ESP, AH nor UDP"));
        }
        Ok(outer)
    }

    /// The IPsec protocol carried: ESP for UDP-encapsulated packets.
    pub fn ipsec_protocol(&self) -> u8 {
        if self.protocol == proto::UDP {
            proto::ESP
        } else {
            self.protocol
        }
    }
}
