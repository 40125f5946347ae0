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

use palisade_wire::{ESP_HEADER_LEN, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN, pad_len_for, proto};

use crate::encap::Encapsulated;
use crate::error::EspError;
use crate::fast_path::FastPath;
use crate::packet::Packet;
use crate::sa::{Cipher, SEQ_SOFT_MARGIN, SecurityAssociation};

/// The AEAD suites' IV and ICV lengths (`FastPath::choose` admits no other suites).
const IV_LEN: usize = 8;
const ICV_LEN: usize = 16;
/// The AEADs pad to 4 bytes (RFC 4303 §2.4).
const ALIGN: usize = 4;

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
    let Cipher::Esp(transform) = &sa.cipher else {
        return None;
    };
    let start = pkt.start;
    let buf_len = pkt.buf.len();
    let bytes = pkt.buf.get(start..start.checked_add(pkt.len)?)?;

    // The inner header: what `tunnel::inspect_inner` checks for IPv4, read once.
    let h: &[u8; IPV4_MIN_HEADER_LEN] = bytes.first_chunk()?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ihl < IPV4_MIN_HEADER_LEN || total < ihl || total > bytes.len() {
        return None;
    }
    let (tos, df) = (h[1], h[6] & 0x40 != 0);

    let udp_len = if fast.udp_ports.is_some() {
        UDP_HEADER_LEN
    } else {
        0
    };
    let pad = pad_len_for(total, ALIGN);
    let grow_front = IPV4_MIN_HEADER_LEN + udp_len + ESP_HEADER_LEN + IV_LEN;
    let grow_back = pad + 2 + ICV_LEN;
    let new_len = total + grow_front + grow_back;
    // `start + total <= buf_len` from the slice above.
    if start < grow_front
        || buf_len - (start + total) < grow_back
        || new_len > usize::from(u16::MAX)
    {
        return None;
    }
    let max_seq = if fast.esn {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    if sa.seq >= max_seq {
        return None;
    }
    let out_start = start - grow_front;
    // The outer header, and the rest: UDP header (if any), ESP header, IV, inner
    // packet, trailer, ICV.
    let (outer, rest) = pkt
        .buf
        .get_mut(out_start..out_start + new_len)?
        .split_first_chunk_mut::<IPV4_MIN_HEADER_LEN>()?;
    // The last check, and the first change: it counts the packet only when it passes.
    let soft_lifetime = sa.lifetime.account_fast(total as u64, now)?;

    // From here on the packet is sealed, as by the general path (which, like this,
    // leaves `pkt.len` at the inner length if the cipher fails).
    pkt.len = total;
    sa.seq += 1;
    let seq = sa.seq;
    let soft_seq = max_seq - seq < SEQ_SOFT_MARGIN;
    sa.ip_id = sa.ip_id.wrapping_add(1);

    // Offsets in `rest`, which is `new_len - 20` bytes long.
    let (esp, plain_end) = (udp_len, udp_len + ESP_HEADER_LEN + IV_LEN + total);
    // ESP header and trailer (padding 1, 2, ..., pad length, next header IPv4).
    rest[esp..esp + 4].copy_from_slice(&fast.spi);
    rest[esp + 4..esp + 8].copy_from_slice(&(seq as u32).to_be_bytes());
    let trailer = &mut rest[plain_end..plain_end + pad + 2];
    for (i, b) in trailer.iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    trailer[pad] = pad as u8;
    trailer[pad + 1] = proto::IPIP;
    fast.outer
        .write_v4(outer, tos, df, new_len as u16, sa.ip_id);
    if let Err(e) = transform.seal(&mut rest[esp..], seq, fast.esn) {
        return Some(Err(e.into()));
    }
    if let Some([s0, s1, d0, d1]) = fast.udp_ports {
        // RFC 3948 §2.1: checksum zero over IPv4.
        let [l0, l1] = ((new_len - IPV4_MIN_HEADER_LEN) as u16).to_be_bytes();
        rest[..UDP_HEADER_LEN].copy_from_slice(&[s0, s1, d0, d1, l0, l1, 0, 0]);
    }

    pkt.start = out_start;
    pkt.len = new_len;
    sa.count(total);
    Some(Ok(Encapsulated {
        seq,
        soft_expired: soft_lifetime || soft_seq,
    }))
}
