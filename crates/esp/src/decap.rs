//! Inbound ESP: verify and open a packet in place (RFC 4303 §3.4).
//!
//! Order matters for cost and safety: the anti-replay check runs before the ICV (cheap
//! rejection of duplicates), the window is only advanced after the ICV verified, and
//! nothing in the payload is trusted before that.

use std::net::IpAddr;
use std::time::Instant;

use palisade_wire::{
    ESP_HEADER_LEN, ESP_TRAILER_LEN, IPV6_HEADER_LEN, IpVersion, check_padding, ipv4, ipv6, proto,
};

use crate::error::EspError;
use crate::outer::Outer;
use crate::packet::Packet;
use crate::sa::{Cipher, Mode, SecurityAssociation};
use crate::tunnel;

/// What an inbound packet turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The Next Header from the ESP trailer (the upper protocol, or 4/41 in tunnel mode).
    pub next_header: u8,
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// The outer source address (after any NAT), for NAT-T mapping updates.
    pub outer_src: IpAddr,
    /// The outer UDP source port when the packet came in UDP.
    pub udp_src_port: Option<u16>,
    /// The SA crossed a soft lifetime limit.
    pub soft_expired: bool,
}

/// Opens `pkt`, whose outer headers were parsed into `outer`, with the inbound ESP SA `sa`.
/// On success `pkt` holds the inner packet: the original IP header with the upper-layer
/// payload (transport mode) or the inner IP packet (tunnel mode).
#[inline(always)]
pub(crate) fn decapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    outer: &Outer,
    now: Instant,
) -> Result<Opened, EspError> {
    let Cipher::Esp(transform) = &sa.cipher else {
        return Err(EspError::Malformed("ESP packet for an AH SA"));
    };
    let sizes = sa.sizes;
    let esp_start = pkt.start + outer.ipsec_offset;
    let end = pkt.start + outer.total;
    let esp_len = end.saturating_sub(esp_start);
    let overhead = ESP_HEADER_LEN + sizes.iv + sizes.icv;
    if esp_len < overhead + ESP_TRAILER_LEN {
        return Err(EspError::TooShort);
    }
    if (esp_len - overhead) & (sizes.align - 1) != 0 {
        return Err(EspError::Malformed("ESP payload not aligned"));
    }

    let esp = pkt.buf.get_mut(esp_start..end).ok_or(EspError::TooShort)?;
    let seq_lo = match esp.get(4..8) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => return Err(EspError::TooShort),
    };
    let seq = sa.replay.infer_seq(seq_lo);
    sa.replay.check(seq).map_err(|_| EspError::Replay)?;
    if sa.lifetime.is_hard_expired(now) {
        return Err(EspError::LifetimeExpired);
    }

    transform.open(esp, seq, sa.config.esn)?;
    sa.replay.update(seq).map_err(|_| EspError::Replay)?;

    let plain_offset = ESP_HEADER_LEN + sizes.iv;
    let plain = esp
        .get(plain_offset..esp_len - sizes.icv)
        .ok_or(EspError::TooShort)?;
    let (payload_len, next_header) = read_trailer(plain)?;
    let plain_start = esp_start + plain_offset;

    let (start, len) = match sa.config.mode {
        Mode::Transport => restore_transport(pkt, outer, plain_start, payload_len, next_header)?,
        Mode::Tunnel => {
            tunnel::open_inner(pkt.buf, outer.tos, plain_start, payload_len, next_header)?
        }
    };
    deliver(sa, pkt, (start, len), outer, next_header, seq, now)
}

/// The decrypted payload's trailer (RFC 4303 §2.4-2.6): the payload length and the Next
/// Header, once the padding checked out and the packet is not a dummy. Shared with the
/// fast path (`decap_fast.rs`) so that both refuse the same packets the same way.
#[inline(always)]
pub(crate) fn read_trailer(plain: &[u8]) -> Result<(usize, u8), EspError> {
    let (pad_len, next_header) = match plain {
        [.., pad_len, next_header] => (*pad_len, *next_header),
        _ => return Err(EspError::TooShort),
    };
    let payload_len = plain
        .len()
        .checked_sub(usize::from(pad_len) + ESP_TRAILER_LEN)
        .ok_or(EspError::BadPadding)?;
    if !padding_ok(plain, pad_len) {
        return Err(EspError::BadPadding);
    }
    if next_header == proto::IPV6_NONXT {
        return Err(EspError::Dummy);
    }
    Ok((payload_len, next_header))
}

/// `check_padding`'s answer, with the 0 to 3 bytes of padding that 4-byte-aligned
/// senders (Palisade among them) use checked as one masked word compare instead of a
/// loop (~25 instructions per packet). Like `check_padding`, it looks at every padding
/// byte whatever their values.
#[inline(always)]
fn padding_ok(plain: &[u8], pad_len: u8) -> bool {
    // The big-endian word of the 4 bytes before the pad length: its last `pad_len`
    // bytes are the padding, which must read 1, 2, ... .
    const MASK: [u32; 4] = [0, 0xff, 0xffff, 0x00ff_ffff];
    const WANT: [u32; 4] = [0, 0x01, 0x0102, 0x0001_0203];
    let pad = usize::from(pad_len);
    if pad < MASK.len()
        && let Some(end) = plain.len().checked_sub(ESP_TRAILER_LEN)
        && let Some(&[a, b, c, d]) = end.checked_sub(4).and_then(|at| plain.get(at..end))
    {
        return u32::from_be_bytes([a, b, c, d]) & MASK[pad] == WANT[pad];
    }
    check_padding(plain, pad_len)
}

/// The last step of every inbound path (ESP and AH): the inner packet counts against the
/// lifetime and the counters, and becomes the packet the caller sees.
#[inline(always)]
pub(crate) fn deliver(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    (start, len): (usize, usize),
    outer: &Outer,
    next_header: u8,
    seq: u64,
    now: Instant,
) -> Result<Opened, EspError> {
    let soft_expired = sa.account(len, now)?;
    pkt.start = start;
    pkt.len = len;
    sa.count(len);
    Ok(Opened {
        next_header,
        seq,
        outer_src: outer.src,
        udp_src_port: outer.udp_ports.map(|(src, _)| src),
        soft_expired,
    })
}

/// Transport mode: the IP header (and the extension headers in front of ESP) slides up
/// to the payload and announces the upper protocol again.
#[inline(always)]
fn restore_transport(
    pkt: &mut Packet<'_>,
    outer: &Outer,
    plain_start: usize,
    payload_len: usize,
    next_header: u8,
) -> Result<(usize, usize), EspError> {
    let header_len = outer.header_len;
    let start = plain_start - header_len;
    pkt.buf
        .copy_within(pkt.start..pkt.start + header_len, start);
    let len = header_len + payload_len;
    let hdr = &mut pkt.buf[start..start + len];
    hdr[outer.next_header_field] = next_header;
    match outer.version {
        IpVersion::V4 => {
            ipv4::set_total_len(hdr, len as u16)?;
            ipv4::update_checksum(hdr)?;
        }
        IpVersion::V6 => ipv6::set_payload_len(hdr, (len - IPV6_HEADER_LEN) as u16)?,
    }
    Ok((start, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word compare answers as `check_padding` for every short tail: each length
    /// up to 10, each pad length up to 5 (past the word's reach too), and every
    /// combination of the values 0 to 4 in the last six bytes before the trailer.
    #[test]
    fn padding_ok_is_check_padding() {
        for len in 0..=10usize {
            for pad_len in 0..=5u8 {
                for pattern in 0..5u32.pow(6) {
                    let mut plain = vec![0u8; len];
                    let mut p = pattern;
                    for i in 0..6 {
                        if let Some(b) = (len.checked_sub(ESP_TRAILER_LEN + 1 + i))
                            .and_then(|at| plain.get_mut(at))
                        {
                            *b = (p % 5) as u8;
                        }
                        p /= 5;
                    }
                    assert_eq!(
                        padding_ok(&plain, pad_len),
                        check_padding(&plain, pad_len),
                        "{plain:?} pad {pad_len}"
                    );
                }
            }
        }
    }
}
