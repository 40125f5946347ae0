//! The inbound fast path: ESP (or ESP in UDP) over IPv4 opened by a tunnel-mode SA with
//! an AEAD suite (see `fast_path.rs` for when an SA takes it).
//!
//! Per packet: the outer header read in place (20 bytes, no options, not a fragment),
//! the SPI lookup, the replay check, the lifetime's fences, the AEAD, then the same
//! trailer and inner-packet steps as the general path. Until the AEAD runs nothing has
//! changed, and anything unusual (IP options, a replayed or too old sequence number, a
//! lifetime limit within reach, a length the general path would refuse, ...) is handed
//! back to the general path, which then finds the same things and answers as it always
//! did. From the AEAD on, the steps and their errors are the general path's own
//! (`decap::read_trailer`, `tunnel::open_inner`, `SecurityAssociation::account`), so
//! both paths leave identical bytes, results and SA state (`tests/fast_path_props.rs`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use palisade_wire::esp::is_reserved_spi;
use palisade_wire::{ESP_HEADER_LEN, ESP_TRAILER_LEN, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN, proto};

use crate::decap::{self, Opened};
use crate::error::EspError;
use crate::fast_path::FastPath;
use crate::packet::Packet;
use crate::sa::{Cipher, SecurityAssociation};
use crate::tunnel;

/// The AEAD suites' IV and ICV lengths and alignment (`FastPath::choose` admits no others).
const IV_LEN: usize = 8;
const ICV_LEN: usize = 16;
const ALIGN: usize = 4;
/// ESP header, IV and ICV around the encrypted part.
const OVERHEAD: usize = ESP_HEADER_LEN + IV_LEN + ICV_LEN;

/// What the fast path reads from a received IPv4 packet's outer headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OuterV4 {
    /// The SPI of the ESP header.
    pub spi: u32,
    /// The destination address, for SPIs shared across local addresses.
    pub dst: Ipv4Addr,
    src: Ipv4Addr,
    tos: u8,
    /// Length of the packet as its header declares it.
    total: usize,
    /// Offset of the ESP header: 20, or 28 after a UDP header.
    esp_offset: usize,
    /// The UDP source port for ESP in UDP.
    udp_src_port: Option<u16>,
}

impl OuterV4 {
    /// Reads a 20-byte IPv4 header carrying ESP, or UDP with ESP in it (RFC 3948), with
    /// room for at least an AEAD ESP packet. `None` for everything else: the general
    /// parser (`Outer::parse`) then decides, and where this accepts it reads the same.
    #[inline(always)]
    pub(crate) fn parse(pkt: &Packet<'_>) -> Option<OuterV4> {
        let bytes = pkt.buf.get(pkt.start..pkt.start.checked_add(pkt.len)?)?;
        let h: &[u8; IPV4_MIN_HEADER_LEN] = bytes.first_chunk()?;
        // Version 4, no options; MF clear and no fragment offset.
        if h[0] != 0x45 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if total > bytes.len() {
            return None;
        }
        let (esp_offset, udp_src_port) = match h[9] {
            proto::ESP => (IPV4_MIN_HEADER_LEN, None),
            proto::UDP => {
                let u = bytes.get(IPV4_MIN_HEADER_LEN..IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN)?;
                let udp_len = usize::from(u16::from_be_bytes([u[4], u[5]]));
                // `UdpHeader::parse`'s check, against the bytes the IP header declares.
                if udp_len < UDP_HEADER_LEN || udp_len > total.checked_sub(IPV4_MIN_HEADER_LEN)? {
                    return None;
                }
                (
                    IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN,
                    Some(u16::from_be_bytes([u[0], u[1]])),
                )
            }
            _ => return None,
        };
        // Room for ESP header, IV, trailer and ICV: shorter packets are the general
        // path's to refuse. This also makes the UDP payload too long to be a keepalive.
        if total < esp_offset + OVERHEAD + ESP_TRAILER_LEN {
            return None;
        }
        let spi = u32::from_be_bytes(*bytes.get(esp_offset..)?.first_chunk()?);
        // Reserved SPIs (0 is also the non-ESP marker of IKE on port 4500) are refused
        // by the general path; no SA has one.
        if is_reserved_spi(spi) {
            return None;
        }
        Some(OuterV4 {
            spi,
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            tos: h[1],
            total,
            esp_offset,
            udp_src_port,
        })
    }
}

/// Opens `pkt` with the inbound SA `sa` found for `outer.spi` if the SA has the fast
/// path; `None` means nothing was touched and the general path must take the packet.
#[inline(always)]
pub(crate) fn decapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    outer: &OuterV4,
    now: Instant,
) -> Option<Result<Opened, EspError>> {
    if sa.fast != FastPath::OpenTunnelV4 {
        return None;
    }
    let esp_start = pkt.start + outer.esp_offset;
    let esp_len = outer.total - outer.esp_offset;
    // `parse` made sure of the minimum length.
    if (esp_len - OVERHEAD) & (ALIGN - 1) != 0 {
        return None;
    }
    let esp = pkt.buf.get_mut(esp_start..esp_start + esp_len)?;
    let seq_lo = u32::from_be_bytes(*esp.get(4..)?.first_chunk()?);
    let seq = sa.replay.infer_seq(seq_lo);
    // The window and the lifetime as the general path checks them before the ICV; a
    // refusal is its to count. `fast_alive` implies not hard-expired.
    if sa.replay.check(seq).is_err() || !sa.lifetime.fast_alive(now) {
        return None;
    }

    // From here on, the general path's steps in its order.
    Some(open_checked(sa, pkt, outer, seq, now))
}

/// The part of [`decapsulate`] after the checks: it runs to the end, whatever it finds.
#[inline(always)]
fn open_checked(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    outer: &OuterV4,
    seq: u64,
    now: Instant,
) -> Result<Opened, EspError> {
    let Cipher::Esp(transform) = &sa.cipher else {
        return Err(EspError::Malformed("ESP packet for an AH SA"));
    };
    let esp_start = pkt.start + outer.esp_offset;
    let esp_len = outer.total - outer.esp_offset;
    let esp = pkt
        .buf
        .get_mut(esp_start..esp_start + esp_len)
        .ok_or(EspError::TooShort)?;
    transform.open(esp, seq, sa.config.esn)?;
    // `decapsulate` checked `seq` against the window and nothing has touched it since
    // (the general path's `update` repeats the check, which cannot fail here).
    sa.replay.mark(seq);
    let plain_offset = ESP_HEADER_LEN + IV_LEN;
    let plain = esp
        .get(plain_offset..esp_len - ICV_LEN)
        .ok_or(EspError::TooShort)?;
    let (payload_len, next_header) = decap::read_trailer(plain)?;
    let (start, len) = open_inner(
        pkt.buf,
        outer.tos,
        esp_start + plain_offset,
        payload_len,
        next_header,
    )?;
    let soft_expired = match sa.lifetime.account_fast(len as u64, now) {
        Some(soft) => soft,
        None => sa.account(len, now)?,
    };
    pkt.start = start;
    pkt.len = len;
    sa.count(len);
    Ok(Opened {
        next_header,
        seq,
        outer_src: IpAddr::V4(outer.src),
        udp_src_port: outer.udp_src_port,
        soft_expired,
    })
}

/// `tunnel::open_inner` with the usual case first: an IPv4 packet without options,
/// announced as IPv4, whose lengths fit and whose ECN field the outer header leaves as
/// it is (the same codepoint on both, which RFC 6040's table maps to the inner one).
/// There `open_inner` reads these same fields and changes nothing, so the answer is
/// its own; everything else goes to it.
#[inline(always)]
fn open_inner(
    buf: &mut [u8],
    outer_tos: u8,
    start: usize,
    payload_len: usize,
    next_header: u8,
) -> Result<(usize, usize), EspError> {
    if next_header == proto::IPIP
        && let Some(h) = buf
            .get(start..start.saturating_add(payload_len))
            .and_then(|inner| inner.first_chunk::<IPV4_MIN_HEADER_LEN>())
        && h[0] == 0x45
        && (h[1] ^ outer_tos) & 0b11 == 0
    {
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if (IPV4_MIN_HEADER_LEN..=payload_len).contains(&total) {
            return Ok((start, total));
        }
    }
    tunnel::open_inner(buf, outer_tos, start, payload_len, next_header)
}
