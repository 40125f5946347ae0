//! AH (RFC 4302): integrity for the whole packet, outer header included.
//!
//! The ICV covers the IP header with its mutable fields zeroed (RFC 4302 §3.3.3.1). The
//! engine zeroes them in place and restores them from a stack copy afterwards, so the
//! packet is never copied whole.

use std::time::Instant;

use palisade_crypto::AhTransform;
use palisade_wire::{
    AH_FIXED_LEN, AhHeader, ExtChain, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, IpVersion, Ipv4Header,
    Ipv6Header, ah_len_for, ip_version, ipv4, ipv6, proto, zero_mutable_ipv4, zero_mutable_ipv6,
};

use crate::decap::{self, Opened};
use crate::encap::Encapsulated;
use crate::error::EspError;
use crate::outer::Outer;
use crate::packet::Packet;
use crate::sa::{Cipher, Mode, SecurityAssociation};
use crate::tunnel;

/// The longest run of headers in front of AH whose mutable fields we zero and restore.
const MAX_SAVED_HEADER: usize = 512;

fn transform(sa: &SecurityAssociation) -> Result<&AhTransform, EspError> {
    match &sa.cipher {
        Cipher::Ah(t) => Ok(t),
        Cipher::Esp(_) => Err(EspError::Malformed("AH packet for an ESP SA")),
    }
}

/// Adds AH to `pkt` with the outbound AH SA `sa`.
pub(crate) fn encapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    now: Instant,
) -> Result<Encapsulated, EspError> {
    if !pkt.is_valid() {
        return Err(EspError::NoRoom);
    }
    let bytes = pkt.bytes();
    let version = ip_version(bytes)?;
    let v6 = version == IpVersion::V6;
    // What stays in front of AH, the byte announcing what follows it, and that value.
    let mut inner = None;
    let (front, nh_field, next_header, total) = match (sa.config.mode, version) {
        (Mode::Transport, IpVersion::V4) => {
            let h = Ipv4Header::parse(bytes)?;
            (h.header_len, 9, h.protocol, usize::from(h.total_len))
        }
        (Mode::Transport, IpVersion::V6) => {
            let h = Ipv6Header::parse(bytes)?;
            let total = IPV6_HEADER_LEN + usize::from(h.payload_len);
            let chain = ExtChain::walk(&bytes[..total])?;
            let (front, index) = chain.ah_insert_point();
            let field = chain.next_header_field_offset(index);
            (front, field, bytes[field], total)
        }
        (Mode::Tunnel, _) => {
            let i = tunnel::inspect_inner(bytes)?;
            inner = Some(i);
            (0, 0, i.next_header, i.total)
        }
    };
    pkt.len = total;
    let t = transform(sa)?;
    let outer_v6 = match sa.config.mode {
        Mode::Transport => v6,
        Mode::Tunnel => sa.config.local.is_ipv6(),
    };
    let outer_len = match sa.config.mode {
        Mode::Transport => 0,
        Mode::Tunnel if outer_v6 => IPV6_HEADER_LEN,
        Mode::Tunnel => IPV4_MIN_HEADER_LEN,
    };
    let ah_len = ah_len_for(t.icv_field_len(), outer_v6);
    let payload_len_field = AhHeader::payload_len_for(ah_len)?;
    let grow = outer_len + ah_len;
    if pkt.headroom() < grow {
        return Err(EspError::NoRoom);
    }
    let new_len = total + grow;
    let limit = usize::from(u16::MAX) + if outer_v6 { IPV6_HEADER_LEN } else { 0 };
    if new_len > limit {
        return Err(EspError::TooLong);
    }
    let soft_lifetime = sa.account(total - front, now)?;
    let (seq, soft_seq) = sa.next_seq()?;

    let start = pkt.start - grow;
    let buf = &mut *pkt.buf;
    buf.copy_within(pkt.start..pkt.start + front, start);
    let ah_start = start + front + outer_len;
    AhHeader {
        next_header,
        payload_len: payload_len_field,
        spi: sa.config.spi,
        seq: seq as u32,
    }
    .write(&mut buf[ah_start..ah_start + ah_len])?;
    buf[ah_start + AH_FIXED_LEN..ah_start + ah_len].fill(0);

    let (hdr_len, hdr_nh_field) = match &inner {
        None => (front, nh_field),
        Some(inner) => {
            sa.ip_id = sa.ip_id.wrapping_add(1);
            let outer = sa.outer.as_ref().ok_or(EspError::NoSuchSa)?;
            outer.write(&mut buf[start..], inner, new_len, sa.ip_id)?;
            (outer_len, if outer_v6 { 6 } else { 9 })
        }
    };
    let packet = &mut buf[start..start + new_len];
    packet[hdr_nh_field] = proto::AH;
    if outer_v6 {
        ipv6::set_payload_len(packet, (new_len - IPV6_HEADER_LEN) as u16)?;
    } else {
        ipv4::set_total_len(packet, new_len as u16)?;
    }
    let t = transform(sa)?;
    with_mutable_zeroed(packet, hdr_len, ah_len, outer_v6, |p| {
        t.sign(p, hdr_len + AH_FIXED_LEN, seq, sa.config.esn)
            .map_err(EspError::from)
    })?;
    if !outer_v6 {
        ipv4::update_checksum(packet)?;
    }
    pkt.start = start;
    pkt.len = new_len;
    sa.count(total - front);
    Ok(Encapsulated {
        seq,
        soft_expired: soft_lifetime || soft_seq,
    })
}

/// Verifies and removes AH from `pkt` with the inbound AH SA `sa`.
pub(crate) fn decapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    outer: &Outer,
    now: Instant,
) -> Result<Opened, EspError> {
    if outer.udp_ports.is_some() {
        return Err(EspError::Malformed("AH cannot travel in UDP"));
    }
    let icv_field_len = transform(sa)?.icv_field_len();
    let v6 = outer.version == IpVersion::V6;
    let start = pkt.start;
    let packet = pkt
        .buf
        .get_mut(start..start + outer.total)
        .ok_or(EspError::TooShort)?;
    let ah_at = outer.ipsec_offset;
    let ah = AhHeader::parse(packet.get(ah_at..).ok_or(EspError::TooShort)?)?;
    if ah.icv_len() < icv_field_len || !ah.is_aligned(v6) {
        return Err(EspError::Malformed(
            "AH length does not fit the SA's algorithm",
        ));
    }
    let seq = sa.replay.infer_seq(ah.seq);
    sa.replay.check(seq).map_err(|_| EspError::Replay)?;
    if sa.lifetime.is_hard_expired(now) {
        return Err(EspError::LifetimeExpired);
    }
    let esn = sa.config.esn;
    let t = transform(sa)?;
    with_mutable_zeroed(packet, ah_at, ah.header_len(), v6, |p| {
        t.verify(p, ah_at + AH_FIXED_LEN, seq, esn)
            .map_err(EspError::from)
    })?;
    sa.replay.update(seq).map_err(|_| EspError::Replay)?;

    let ah_len = ah.header_len();
    let next_header = ah.next_header;
    let inner = match sa.config.mode {
        Mode::Transport => {
            // Slide the IP header (and extension headers before AH) over the AH header.
            let new_start = start + ah_len;
            pkt.buf.copy_within(start..start + ah_at, new_start);
            let len = outer.total - ah_len;
            let p = &mut pkt.buf[new_start..new_start + len];
            p[outer.next_header_field] = next_header;
            if v6 {
                ipv6::set_payload_len(p, (len - IPV6_HEADER_LEN) as u16)?;
            } else {
                ipv4::set_total_len(p, len as u16)?;
                ipv4::update_checksum(p)?;
            }
            (new_start, len)
        }
        Mode::Tunnel => {
            let inner_start = start + ah_at + ah_len;
            let inner_len = outer.total - ah_at - ah_len;
            tunnel::open_inner(pkt.buf, outer.tos, inner_start, inner_len, next_header)?
        }
    };
    decap::deliver(sa, pkt, inner, outer, next_header, seq, now)
}

/// Runs `f` on `packet` with the mutable fields of its headers zeroed (RFC 4302
/// §3.3.3.1), then puts those bytes back, all but the AH header at `ah_at..ah_at + ah_len`
/// whose ICV `f` may have just written.
fn with_mutable_zeroed(
    packet: &mut [u8],
    ah_at: usize,
    ah_len: usize,
    v6: bool,
    f: impl FnOnce(&mut [u8]) -> Result<(), EspError>,
) -> Result<(), EspError> {
    // IPv6 options with the change-en-route bit are zeroed in every extension header,
    // also those after AH, so the saved run reaches to the end of the chain.
    let chain = if v6 {
        Some(ExtChain::walk(packet)?)
    } else {
        None
    };
    let saved_len = chain.map_or(ah_at, |c| c.upper_offset.max(ah_at + ah_len));
    if saved_len > MAX_SAVED_HEADER {
        return Err(EspError::Malformed(
            "headers around AH longer than 512 bytes",
        ));
    }
    let mut saved = [0u8; MAX_SAVED_HEADER];
    saved[..saved_len].copy_from_slice(&packet[..saved_len]);
    let zeroed = match &chain {
        Some(chain) => zero_mutable_ipv6(packet, chain),
        None => zero_mutable_ipv4(packet),
    };
    let result = zeroed.map_err(EspError::from).and_then(|()| f(packet));
    packet[..ah_at].copy_from_slice(&saved[..ah_at]);
    if saved_len > ah_at + ah_len {
        packet[ah_at + ah_len..saved_len].copy_from_slice(&saved[ah_at + ah_len..saved_len]);
    }
    result
}
