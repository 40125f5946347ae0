//! Tunnel mode: the outer header built at the ingress and the inner packet checked at
//! the egress, shared by ESP and AH.

use std::net::IpAddr;

use palisade_wire::{
    IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, IpVersion, Ipv4Header, Ipv6Header, ip_version, ipv4,
    ipv6, proto,
};

use crate::ecn;
use crate::error::EspError;
use crate::outer::Outer;
use crate::sa::{DfPolicy, SecurityAssociation};

/// What the outer header and the ESP trailer need from an inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inner {
    /// 4 (IPv4) or 41 (IPv6): the Next Header for ESP or AH.
    pub next_header: u8,
    /// Length of the inner packet as its header declares it.
    pub total: usize,
    /// Its TOS / traffic class octet.
    pub tos: u8,
    /// Its DF bit (IPv6: set, as routers never fragment it).
    pub df: bool,
}

/// Parses the inner packet's header once for everything tunnel mode needs.
pub(crate) fn inspect_inner(bytes: &[u8]) -> Result<Inner, EspError> {
    match ip_version(bytes)? {
        IpVersion::V4 => {
            let h = Ipv4Header::parse(bytes)?;
            Ok(Inner {
                next_header: proto::IPIP,
                total: usize::from(h.total_len),
                tos: (h.dscp << 2) | h.ecn,
                df: h.dont_fragment,
            })
        }
        IpVersion::V6 => {
            let h = Ipv6Header::parse(bytes)?;
            Ok(Inner {
                next_header: proto::IPV6,
                total: IPV6_HEADER_LEN + usize::from(h.payload_len),
                tos: h.traffic_class,
                df: true,
            })
        }
    }
}

/// A fresh outer header at `buf[start..]`, DSCP/ECN/DF taken from the inner packet per
/// the SA's policy.
pub(crate) fn write_outer_header(
    sa: &mut SecurityAssociation,
    buf: &mut [u8],
    start: usize,
    inner: &Inner,
    new_len: usize,
    wire_proto: u8,
) -> Result<(), EspError> {
    let dscp = if sa.config.copy_dscp {
        inner.tos >> 2
    } else {
        0
    };
    let ecn = ecn::encapsulate(inner.tos);
    match (sa.config.local, sa.config.remote) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let dont_fragment = match sa.config.df {
                DfPolicy::Copy => inner.df,
                DfPolicy::Set => true,
                DfPolicy::Clear => false,
            };
            sa.ip_id = sa.ip_id.wrapping_add(1);
            Ipv4Header {
                dscp,
                ecn,
                total_len: new_len as u16,
                identification: sa.ip_id,
                dont_fragment,
                more_fragments: false,
                fragment_offset: 0,
                ttl: sa.config.ttl,
                protocol: wire_proto,
                checksum: 0,
                src: src.octets(),
                dst: dst.octets(),
                header_len: IPV4_MIN_HEADER_LEN,
            }
            .write(&mut buf[start..start + IPV4_MIN_HEADER_LEN])?;
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            Ipv6Header {
                traffic_class: (dscp << 2) | ecn,
                flow_label: 0,
                payload_len: (new_len - IPV6_HEADER_LEN) as u16,
                next_header: wire_proto,
                hop_limit: sa.config.ttl,
                src: src.octets(),
                dst: dst.octets(),
            }
            .write(&mut buf[start..start + IPV6_HEADER_LEN])?;
        }
        _ => return Err(EspError::Malformed("SA address families differ")),
    }
    Ok(())
}

/// Tunnel mode: the payload is an IP packet of the announced version, possibly followed
/// by TFC padding; its ECN field takes in congestion marked on the outer header.
pub(crate) fn open_inner(
    buf: &mut [u8],
    outer: &Outer,
    start: usize,
    payload_len: usize,
    next_header: u8,
) -> Result<(usize, usize), EspError> {
    let inner = &mut buf[start..start + payload_len];
    let version = ip_version(inner).map_err(|_| EspError::BadNextHeader(next_header))?;
    let (len, inner_tos) = match (next_header, version) {
        (proto::IPIP, IpVersion::V4) => {
            let h = Ipv4Header::parse(inner)?;
            (usize::from(h.total_len), (h.dscp << 2) | h.ecn)
        }
        (proto::IPV6, IpVersion::V6) => {
            let h = Ipv6Header::parse(inner)?;
            (
                IPV6_HEADER_LEN + usize::from(h.payload_len),
                h.traffic_class,
            )
        }
        _ => return Err(EspError::BadNextHeader(next_header)),
    };
    let new_ecn = ecn::decapsulate(inner_tos, outer.tos).ok_or(EspError::EcnConflict)?;
    if new_ecn != inner_tos & 0b11 {
        match version {
            IpVersion::V4 => {
                ipv4::set_ecn(inner, new_ecn)?;
                ipv4::update_checksum(inner)?;
            }
            IpVersion::V6 => ipv6::set_ecn(inner, new_ecn)?,
        }
    }
    Ok((start, len))
}
