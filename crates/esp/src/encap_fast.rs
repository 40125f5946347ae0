//! The outbound fast path: an inner IPv4 packet sealed in tunnel mode over IPv4 with an
//! AEAD suite (see `fast_path.rs` for when an SA takes it).
//!
//! Per packet: the inner header read once, one room check, the lifetime's fences
//! (`LifetimeTracker::account_fast`), the sequence number, the outer header from the
//! SA's template, ESP header and trailer, the AEAD, the counters. Whatever the general
//! path would refuse or treat specially is handed back to it before anything changes,
//! so the two paths produce the same bytes, results and SA state
//! (`tests/fast_path_props.rs`).

use std::time::Instant;

use palisade_wire::{
    ESP_HEADER_LEN, ESP_TRAILER_LEN, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN, pad_len_for, proto,
};

use crate::encap::Encapsulated;
use crate::error::EspError;
use crate::fast_path::{AEAD_IV_LEN, FastPath};
use crate::packet::Packet;
use crate::sa::{Cipher, SEQ_SOFT_MARGIN, SecurityAssociation};

/// The AEAD suites' ICV length (`FastPath::choose` admits no other suites).
const ICV_LEN: usize = 16;
/// The AEADs pad to 4 bytes (RFC 4303 §2.4).
const ALIGN: usize = 4;
/// Outer IPv4 header, ESP header and IV: the head without a UDP header.
const HEAD_NO_UDP: usize = IPV4_MIN_HEADER_LEN + ESP_HEADER_LEN + AEAD_IV_LEN;

/// Seals `pkt` if `sa` and the packet fit the fast path; `None` means nothing was
/// touched and the general path must take the packet.
#[inline(always)]
pub(crate) fn encapsulate(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    now: Instant,
) -> Option<Result<Encapsulated, EspError>> {
    let FastPath::SealTunnelV4(fast) = &sa.fast else {
        return None;
    };
    // One body per UDP choice, so that every offset in the packet is a constant and the
    // compiler can drop the bounds checks on them.
    if fast.udp_ports.is_some() {
        seal::<true>(sa, pkt, now)
    } else {
        seal::<false>(sa, pkt, now)
    }
}

/// [`encapsulate`] for an SA with (`UDP`) or without ESP in UDP.
#[inline(always)]
fn seal<const UDP: bool>(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    now: Instant,
) -> Option<Result<Encapsulated, EspError>> {
    let FastPath::SealTunnelV4(fast) = &sa.fast else {
        return None;
    };
    // Always there (`FastPath::choose` admits AEAD suites only); looked up once, next
    // to the cipher's kind (the two tests read one word).
    let Cipher::Esp(transform) = &sa.cipher else {
        return None;
    };
    let aead = transform.aead_path()?;
    let udp_len = if UDP { UDP_HEADER_LEN } else { 0 };
    let head = HEAD_NO_UDP + udp_len;
    let start = pkt.start;
    let bytes = pkt.buf.get(start..start.checked_add(pkt.len)?)?;

    // The inner header: what `tunnel::inspect_inner` checks for IPv4, for a header
    // without options (with options, rare from a TUN, the general path takes it).
    let h: &[u8; IPV4_MIN_HEADER_LEN] = bytes.first_chunk()?;
    if h[0] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < IPV4_MIN_HEADER_LEN || total > bytes.len() {
        return None;
    }

    let pad = pad_len_for(total, ALIGN);
    let new_len = head + total + pad + ESP_TRAILER_LEN + ICV_LEN;
    if new_len > usize::from(u16::MAX) || sa.seq >= fast.max_seq {
        return None;
    }
    // The room checks: headroom for the head, then tailroom for trailer and ICV.
    let out_start = start.checked_sub(head)?;
    let (outer, rest) = pkt
        .buf
        .get_mut(out_start..)?
        .get_mut(..new_len)?
        .split_first_chunk_mut::<IPV4_MIN_HEADER_LEN>()?;
    // The last check, and the first change: it counts the packet only when it passes.
    let soft_lifetime = sa.lifetime.account_fast(total as u64, now)?;

    // From here on the packet is sealed, as by the general path. The packet's range
    // and everything the result needs are set before the seal, so that little lives
    // across the call; if the cipher fails, the range becomes what the general path
    // leaves then (the inner packet, at the inner length).
    pkt.start = out_start;
    pkt.len = new_len;
    let seq = sa.seq + 1;
    sa.seq = seq;
    let soft_expired = soft_lifetime || fast.max_seq - seq < SEQ_SOFT_MARGIN;
    let ip_id = sa.ip_id.wrapping_add(1);
    sa.ip_id = ip_id;

    // `rest`: UDP header (if any), ESP header, IV, inner packet, trailer, ICV. The
    // inner header's TOS and flags are read here, from their place in `rest`, rather
    // than kept from the checks above (where they stayed live across them, on the stack).
    let inner_at = head - IPV4_MIN_HEADER_LEN;
    let (tos, flags) = (rest[inner_at + 1], rest[inner_at + 6]);
    let esp = &mut rest[udp_len..];
    esp[..4].copy_from_slice(&fast.spi);
    esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
    // The trailer: padding 1, 2, ..., pad length, next header IPv4. The padding is 0 to
    // 3 bytes, so one 4-byte store of 1, 2, 3, 4 lays it down without a loop, and the
    // two trailer bytes go over it. With less than 2 bytes of padding the store reaches
    // 1 or 2 bytes into the ICV, which the seal overwrites, or zeroes if it fails
    // (aws-lc clears the tag on every error; the refusals before aws-lc, the crypto
    // layer's layout checks and aws-lc-rs's length limit, cannot happen here).
    let plain_end = ESP_HEADER_LEN + AEAD_IV_LEN + total;
    let trailer = &mut esp[plain_end..plain_end + 4];
    trailer.copy_from_slice(&[1, 2, 3, 4]);
    esp[plain_end + pad] = pad as u8;
    esp[plain_end + pad + 1] = proto::IPIP;
    fast.outer
        .write_v4(outer, tos, flags, new_len as u16, ip_id);
    if let Err(e) = aead.seal(esp, seq, fast.esn) {
        pkt.start = start;
        pkt.len = total;
        return Some(Err(e.into()));
    }
    if UDP && let Some([s0, s1, d0, d1]) = fast.udp_ports {
        // RFC 3948 §2.1: checksum zero over IPv4.
        let [l0, l1] = ((new_len - IPV4_MIN_HEADER_LEN) as u16).to_be_bytes();
        rest[..UDP_HEADER_LEN].copy_from_slice(&[s0, s1, d0, d1, l0, l1, 0, 0]);
    }

    sa.count(total);
    Some(Ok(Encapsulated { seq, soft_expired }))
}
