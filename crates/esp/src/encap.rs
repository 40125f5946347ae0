//! Outbound ESP: seal a packet in place (RFC 4303 §3.1, §3.3; RFC 3948 for UDP).
//!
//! Transport mode slides the IP header (and the IPv6 extension headers that stay in
//! front of ESP) into the headroom and leaves the payload where it is; tunnel mode
//! builds a new outer header in the headroom. Padding, trailer and ICV go into the
//! tailroom. Nothing is allocated and the payload is never copied.

use std::time::Instant;

use palisade_wire::{
    ESP_HEADER_LEN, ExtChain, IPV6_HEADER_LEN, IpVersion, Ipv4Header, Ipv6Header, UDP_HEADER_LEN,
    UdpHeader, ip_version, ipv4, ipv6, pad_len_for, proto, udp_checksum_v6,
};

use crate::error::EspError;
use crate::packet::Packet;
use crate::sa::{Cipher, DfPolicy, Mode, SecurityAssociation};
use crate::tunnel::{self, DF_BIT};

/// What an outbound packet became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encapsulated {
    /// The sequence number the packet carries.
    pub seq: u64,
    /// The SA crossed a soft limit (lifetime or sequence space): time to rekey.
    pub soft_expired: bool,
}

/// The part of a packet that ESP keeps in front of itself, and what it protects.
struct Split {
    /// Bytes of header kept in front of ESP (transport), or 0 (tunnel).
    front: usize,
    /// Offset, inside `front`, of the Next Header byte that must now say ESP or UDP.
    next_header_field: usize,
    /// The Next Header value ESP's trailer carries.
    next_header: u8,
    /// Length of the whole packet as its header declares it.
    total: usize,
    /// Tunnel mode: the inner header's facts for the outer one.
    inner: Option<tunnel::Inner>,
}

/// Seals `pkt` with the outbound ESP SA `sa`.
pub(crate) fn encapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    now: Instant,
) -> Result<Encapsulated, EspError> {
    if !pkt.is_valid() {
        return Err(EspError::NoRoom);
    }
    let split = match sa.config.mode {
        Mode::Transport => {
            // The packet's own header goes out in front: it must be of the SA's family.
            let v6 = ip_version(pkt.bytes())? == IpVersion::V6;
            if v6 != sa.config.local.is_ipv6() {
                return Err(EspError::Malformed(
                    "packet and SA are of different IP families",
                ));
            }
            split_transport(pkt.bytes())?
        }
        Mode::Tunnel => split_tunnel(pkt.bytes())?,
    };
    // Ethernet-style trailing bytes past the declared length are not part of the packet.
    pkt.len = split.total;

    if !matches!(sa.cipher, Cipher::Esp(_)) {
        return Err(EspError::NoSuchSa);
    }
    let sizes = sa.sizes;
    let udp_len = if sa.config.udp_encap.is_some() {
        UDP_HEADER_LEN
    } else {
        0
    };
    let outer_len = sa.outer.as_ref().map_or(0, |o| o.len());
    let payload = split.total - split.front;
    let tfc = match (sa.config.mode, sa.config.tfc_pad_to) {
        (Mode::Tunnel, Some(to)) => usize::from(to).saturating_sub(payload),
        _ => 0,
    };
    let plain = payload + tfc;
    let pad = pad_len_for(plain, sizes.align);
    let grow_front = outer_len + udp_len + ESP_HEADER_LEN + sizes.iv;
    let grow_back = tfc + pad + 2 + sizes.icv;
    if pkt.headroom() < grow_front || pkt.tailroom() < grow_back {
        return Err(EspError::NoRoom);
    }
    let new_len = split.total + grow_front + grow_back;
    if new_len
        > usize::from(u16::MAX)
            + if sa.config.local.is_ipv6() {
                IPV6_HEADER_LEN
            } else {
                0
            }
    {
        return Err(EspError::TooLong);
    }

    let soft_lifetime = sa.account(payload, now)?;
    let (seq, soft_seq) = sa.next_seq()?;

    let start = pkt.start - grow_front;
    let end = start + new_len;
    let buf = &mut *pkt.buf;
    // Transport: the kept headers move into the headroom; tunnel: nothing moves.
    if split.front > 0 {
        buf.copy_within(pkt.start..pkt.start + split.front, start);
    }

    let esp_start = start + split.front + outer_len + udp_len;
    let plain_start = esp_start + ESP_HEADER_LEN + sizes.iv;
    let plain_end = plain_start + plain;
    buf[esp_start..esp_start + 4].copy_from_slice(&sa.config.spi.to_be_bytes());
    buf[esp_start + 4..esp_start + 8].copy_from_slice(&(seq as u32).to_be_bytes());
    // TFC padding: zeros the receiver drops using the inner header's length.
    buf[plain_end - tfc..plain_end].fill(0);
    for (i, b) in buf[plain_end..plain_end + pad].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    buf[plain_end + pad] = pad as u8;
    buf[plain_end + pad + 1] = split.next_header;
    let wire_proto = if udp_len > 0 { proto::UDP } else { proto::ESP };
    match (&split.inner, &sa.outer) {
        (Some(inner), Some(outer)) => {
            sa.ip_id = sa.ip_id.wrapping_add(1);
            outer.write(&mut buf[start..], inner, new_len, sa.ip_id)?;
        }
        _ => fix_transport_header(buf, start, &split, new_len, wire_proto, sa.config.df)?,
    }
    if let Cipher::Esp(transform) = &sa.cipher {
        transform.seal(&mut buf[esp_start..end], seq, sa.config.esn)?;
    }

    if let Some(encap) = sa.config.udp_encap {
        let udp_start = start + split.front + outer_len;
        let udp_len_field = (end - udp_start) as u16;
        UdpHeader {
            src_port: encap.local_port,
            dst_port: encap.remote_port,
            length: udp_len_field,
            checksum: 0,
        }
        .write(&mut buf[udp_start..udp_start + UDP_HEADER_LEN])?;
        // RFC 3948 §2.1: zero over IPv4; IPv6 needs a real one (RFC 8200 §8.1), over
        // the addresses of the header actually in front (the packet's own in transport mode).
        if let Some(h) = buf.get(start..start + IPV6_HEADER_LEN)
            && h[0] >> 4 == 6
        {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&h[8..24]);
            dst.copy_from_slice(&h[24..40]);
            let sum = udp_checksum_v6(src, dst, &buf[udp_start..end]);
            buf[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
        }
    }

    pkt.start = start;
    pkt.len = new_len;
    sa.count(payload);
    Ok(Encapsulated {
        seq,
        soft_expired: soft_lifetime || soft_seq,
    })
}

/// Transport mode: where ESP goes, and what it protects.
fn split_transport(bytes: &[u8]) -> Result<Split, EspError> {
    match ip_version(bytes)? {
        IpVersion::V4 => {
            let h = Ipv4Header::parse(bytes)?;
            if h.more_fragments || h.fragment_offset != 0 {
                return Err(EspError::Fragment);
            }
            Ok(Split {
                front: h.header_len,
                next_header_field: 9,
                next_header: h.protocol,
                total: usize::from(h.total_len),
                inner: None,
            })
        }
        IpVersion::V6 => {
            let h = Ipv6Header::parse(bytes)?;
            let total = IPV6_HEADER_LEN + usize::from(h.payload_len);
            let bytes = &bytes[..total];
            let chain = ExtChain::walk(bytes)?;
            if chain.headers().iter().any(|x| x.kind == proto::IPV6_FRAG) {
                return Err(EspError::Fragment);
            }
            let (front, index) = chain.esp_insert_point();
            let next_header_field = chain.next_header_field_offset(index);
            let next_header = *bytes
                .get(next_header_field)
                .ok_or(EspError::Malformed("IPv6 extension chain"))?;
            Ok(Split {
                front,
                next_header_field,
                next_header,
                total,
                inner: None,
            })
        }
    }
}

/// Tunnel mode: the whole inner packet is the payload.
fn split_tunnel(bytes: &[u8]) -> Result<Split, EspError> {
    let inner = tunnel::inspect_inner(bytes)?;
    Ok(Split {
        front: 0,
        next_header_field: 0,
        next_header: inner.next_header,
        total: inner.total,
        inner: Some(inner),
    })
}

/// Transport mode: the kept header now announces ESP (or UDP) and the new length, and
/// an IPv4 header's DF bit is as the SA's policy says (it is ours to set: the host that
/// sends the packet is the one protecting it; clearing it lets a narrower path fragment
/// the ESP packet where its inner DF would have it dropped).
fn fix_transport_header(
    buf: &mut [u8],
    start: usize,
    split: &Split,
    new_len: usize,
    wire_proto: u8,
    df: DfPolicy,
) -> Result<(), EspError> {
    let hdr = &mut buf[start..start + new_len];
    hdr[split.next_header_field] = wire_proto;
    match ip_version(hdr)? {
        IpVersion::V4 => {
            match df {
                DfPolicy::Copy => {}
                DfPolicy::Set => hdr[6] |= DF_BIT,
                DfPolicy::Clear => hdr[6] &= !DF_BIT,
            }
            ipv4::set_total_len(hdr, new_len as u16)?;
            ipv4::update_checksum(hdr)?;
        }
        IpVersion::V6 => ipv6::set_payload_len(hdr, (new_len - IPV6_HEADER_LEN) as u16)?,
    }
    Ok(())
}
