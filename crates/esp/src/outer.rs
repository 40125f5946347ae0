//! The outer headers of a received IPsec packet: where ESP or AH starts and who sent it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_wire::{
    ExtChain, IPV6_HEADER_LEN, IpVersion, Ipv6Header, UDP_HEADER_LEN, Udp4500Payload, UdpHeader,
    classify_udp_4500, ip_version, proto,
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
    #[inline(always)]
    pub fn parse(bytes: &[u8]) -> Result<Outer, EspError> {
        let mut outer = match ip_version(bytes)? {
            IpVersion::V4 => {
                // Read in place: only the fields the receive path uses, with the same
                // length checks as Ipv4Header::parse.
                let h: &[u8; 20] = bytes
                    .get(..20)
                    .and_then(|h| h.try_into().ok())
                    .ok_or(EspError::TooShort)?;
                let header_len = usize::from(h[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
                if header_len < 20 || header_len > total || total > bytes.len() {
                    return Err(EspError::Malformed("bad IP header"));
                }
                // MF set or a fragment offset: fragments are not reassembled here.
                if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                    return Err(EspError::Malformed("fragment: reassemble before IPsec"));
                }
                Outer {
                    version: IpVersion::V4,
                    total,
                    header_len,
                    next_header_field: 9,
                    protocol: h[9],
                    ipsec_offset: header_len,
                    udp_ports: None,
                    src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
                    dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
                    tos: h[1],
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

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::Ipv4Header;
    use proptest::prelude::*;

    proptest! {
        /// The in-place IPv4 read agrees with the full parser: it accepts nothing the
        /// parser refuses, and what it reads is what the parser reads.
        #[test]
        fn ipv4_fast_path_agrees_with_the_parser(
            mut bytes in proptest::collection::vec(any::<u8>(), 20..120),
            ihl in 5u8..16,
            proto in prop_oneof![Just(proto::ESP), Just(proto::AH), any::<u8>()],
            frag in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
        ) {
            let len = bytes.len() as u16;
            bytes[0] = 0x40 | ihl;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
            bytes[6..8].copy_from_slice(&frag.to_be_bytes());
            bytes[9] = proto;
            let full = Ipv4Header::parse(&bytes);
            match Outer::parse(&bytes) {
                Ok(o) => {
                    let h = full.expect("the parser accepts what the fast path accepts");
                    prop_assert_eq!(o.total, usize::from(h.total_len));
                    prop_assert_eq!(o.header_len, h.header_len);
                    prop_assert_eq!(o.protocol, h.protocol);
                    prop_assert_eq!(o.src, IpAddr::from(h.src));
                    prop_assert_eq!(o.dst, IpAddr::from(h.dst));
                    prop_assert_eq!(o.tos, (h.dscp << 2) | h.ecn);
                    prop_assert!(!h.more_fragments && h.fragment_offset == 0);
                }
                Err(_) => {
                    if let Ok(h) = full {
                        prop_assert!(
                            h.more_fragments
                                || h.fragment_offset != 0
                                || ![proto::ESP, proto::AH, proto::UDP].contains(&h.protocol)
                                || h.protocol == proto::UDP
                        );
                    }
                }
            }
        }
    }
}
