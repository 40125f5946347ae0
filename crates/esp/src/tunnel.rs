//! Tunnel mode: the outer header built at the ingress and the inner packet checked at
//! the egress, shared by ESP and AH.

use std::net::IpAddr;

use palisade_wire::{
    IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, IpVersion, Ipv4Header, Ipv6Header, ip_version, ipv4,
    ipv6, proto,
};

use crate::ecn;
use crate::error::EspError;
use crate::sa::DfPolicy;

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

/// Reads the few inner-header fields tunnel mode needs. The inner packet is the
/// sender's own (from the TUN device), so this checks only what the lengths depend on:
/// version, IHL and the declared length against the bytes present.
// Always inline: out of line (as the compiler chose with a mere hint), its `Result`
// went back through the stack on every received packet.
#[inline(always)]
pub(crate) fn inspect_inner(bytes: &[u8]) -> Result<Inner, EspError> {
    let b0 = *bytes.first().ok_or(EspError::TooShort)?;
    match b0 >> 4 {
        4 => {
            let h: &[u8; IPV4_MIN_HEADER_LEN] = bytes
                .get(..IPV4_MIN_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(EspError::TooShort)?;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let ihl = usize::from(b0 & 0x0f) * 4;
            if ihl < IPV4_MIN_HEADER_LEN || total < ihl || total > bytes.len() {
                return Err(EspError::Malformed("inner IPv4 header lengths"));
            }
            Ok(Inner {
                next_header: proto::IPIP,
                total,
                tos: h[1],
                df: h[6] & 0x40 != 0,
            })
        }
        6 => {
            let h: &[u8; IPV6_HEADER_LEN] = bytes
                .get(..IPV6_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(EspError::TooShort)?;
            let total = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([h[4], h[5]]));
            if total > bytes.len() {
                return Err(EspError::Malformed("inner IPv6 payload length"));
            }
            Ok(Inner {
                next_header: proto::IPV6,
                total,
                tos: (h[0] << 4) | (h[1] >> 4),
                df: true,
            })
        }
        _ => Err(EspError::Malformed("inner packet is neither IPv4 nor IPv6")),
    }
}

/// The outer header of a tunnel-mode SA, built once: addresses, TTL and protocol never
/// change, so per packet only TOS, length, identification and DF are filled in and the
/// IPv4 checksum is finished from a precomputed sum of the constant words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OuterTemplate {
    bytes: [u8; IPV6_HEADER_LEN],
    v6: bool,
    /// IPv4: one's-complement sum of the header's 16-bit words read little-endian, the
    /// variable ones zero.
    base_sum: u32,
    /// The bits of the inner TOS / traffic class that go out: ECN always (RFC 6040),
    /// DSCP when the SA copies it. The DF policy likewise as two masks on the inner
    /// header's flags byte, DF = (inner & `df_keep`) | `df_set`: both computed once,
    /// so the per-packet header has no branches on the SA's options.
    tos_keep: u8,
    df_keep: u8,
    df_set: u8,
}

/// The DF bit in the IPv4 flags byte (byte 6 of the header).
pub(crate) const DF_BIT: u8 = 0x40;

impl OuterTemplate {
    /// The template for an SA from `local` to `remote` carrying `protocol`.
    pub(crate) fn new(
        local: IpAddr,
        remote: IpAddr,
        protocol: u8,
        ttl: u8,
        df: DfPolicy,
        copy_dscp: bool,
    ) -> Result<Self, EspError> {
        let mut bytes = [0u8; IPV6_HEADER_LEN];
        let (v6, base_sum) = match (local, remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                Ipv4Header {
                    dscp: 0,
                    ecn: 0,
                    total_len: 0,
                    identification: 0,
                    dont_fragment: false,
                    more_fragments: false,
                    fragment_offset: 0,
                    ttl,
                    protocol,
                    checksum: 0,
                    src: src.octets(),
                    dst: dst.octets(),
                    header_len: IPV4_MIN_HEADER_LEN,
                }
                .write(&mut bytes)?;
                bytes[10] = 0;
                bytes[11] = 0;
                // Summed as little-endian words: see `write_v4`.
                let sum = bytes[..IPV4_MIN_HEADER_LEN]
                    .chunks_exact(2)
                    .map(|w| u32::from(u16::from_le_bytes([w[0], w[1]])))
                    .sum();
                (false, sum)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                Ipv6Header {
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: 0,
                    next_header: protocol,
                    hop_limit: ttl,
                    src: src.octets(),
                    dst: dst.octets(),
                }
                .write(&mut bytes)?;
                (true, 0)
            }
            _ => return Err(EspError::Malformed("SA address families differ")),
        };
        let dscp_keep = if copy_dscp { !0b11 } else { 0 };
        let (df_keep, df_set) = match df {
            DfPolicy::Copy => (DF_BIT, 0),
            DfPolicy::Set => (0, DF_BIT),
            DfPolicy::Clear => (0, 0),
        };
        Ok(OuterTemplate {
            bytes,
            v6,
            base_sum,
            tos_keep: dscp_keep | ecn::encapsulate(0xff),
            df_keep,
            df_set,
        })
    }

    /// Length of the outer header.
    pub(crate) fn len(&self) -> usize {
        if self.v6 {
            IPV6_HEADER_LEN
        } else {
            IPV4_MIN_HEADER_LEN
        }
    }

    /// Writes the outer header for a packet of `total` bytes (outer header included)
    /// around `inner`, at the start of `out`.
    pub(crate) fn write(
        &self,
        out: &mut [u8],
        inner: &Inner,
        total: usize,
        id: u16,
    ) -> Result<(), EspError> {
        let tos = self.outer_tos(inner.tos);
        if self.v6 {
            let payload = u16::try_from(total - IPV6_HEADER_LEN).map_err(|_| EspError::TooLong)?;
            let h: &mut [u8; IPV6_HEADER_LEN] = out
                .get_mut(..IPV6_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(EspError::NoRoom)?;
            *h = self.bytes;
            h[0] = 0x60 | (tos >> 4);
            h[1] = tos << 4;
            h[4..6].copy_from_slice(&payload.to_be_bytes());
            return Ok(());
        }
        let len = u16::try_from(total).map_err(|_| EspError::TooLong)?;
        let h: &mut [u8; IPV4_MIN_HEADER_LEN] = out.first_chunk_mut().ok_or(EspError::NoRoom)?;
        let flags = if inner.df { DF_BIT } else { 0 };
        self.write_v4(h, inner.tos, flags, len, id);
        Ok(())
    }

    /// The outer TOS / traffic class for an inner one: ECN by RFC 6040's normal mode
    /// (`ecn::encapsulate`, folded into `tos_keep`), DSCP if the SA copies it.
    #[inline(always)]
    fn outer_tos(&self, inner_tos: u8) -> u8 {
        inner_tos & self.tos_keep
    }

    /// The IPv4 form of [`write`](Self::write), for a template built from IPv4
    /// addresses, with the inner packet's TOS and flags byte (only its DF bit is read):
    /// the outbound fast path's call.
    #[inline(always)]
    pub(crate) fn write_v4(
        &self,
        h: &mut [u8; IPV4_MIN_HEADER_LEN],
        inner_tos: u8,
        inner_flags: u8,
        len: u16,
        id: u16,
    ) {
        let tos = self.outer_tos(inner_tos);
        let flags = (inner_flags & self.df_keep) | self.df_set;
        // The header as three little-endian words, the template's (whose variable
        // fields are zero) with the variable fields OR-ed in: patched byte by byte, the
        // template was copied in pieces, through the stack. The checksum is summed over
        // little-endian words too, which gives it byte-swapped (RFC 1071 §2 (B)), that
        // is, ready to store little-endian: no byte swaps for it.
        let len_le = u16::from_le_bytes(len.to_be_bytes());
        let id_le = u16::from_le_bytes(id.to_be_bytes());
        let mut sum = self.base_sum
            + (u32::from(tos) << 8)
            + u32::from(len_le)
            + u32::from(id_le)
            + u32::from(flags);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let checksum_le = !(sum as u16);
        let t = &self.bytes;
        let w0 = u32::from_le_bytes([t[0], t[1], t[2], t[3]])
            | (u32::from(tos) << 8)
            | (u32::from(len_le) << 16);
        let w1 = u64::from_le_bytes([t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11]])
            | u64::from(id_le)
            | (u64::from(flags) << 16)
            | (u64::from(checksum_le) << 48);
        let w2 = u64::from_le_bytes([t[12], t[13], t[14], t[15], t[16], t[17], t[18], t[19]]);
        let (a, rest) = h.split_at_mut(4);
        let (b, c) = rest.split_at_mut(8);
        a.copy_from_slice(&w0.to_le_bytes());
        b.copy_from_slice(&w1.to_le_bytes());
        c.copy_from_slice(&w2.to_le_bytes());
    }

    /// Whether the template is an IPv4 header (else IPv6).
    pub(crate) fn is_v4(&self) -> bool {
        !self.v6
    }
}

/// Tunnel mode: the payload is an IP packet of the announced version, possibly followed
/// by TFC padding; its ECN field takes in congestion marked on the outer header.
#[inline(always)]
pub(crate) fn open_inner(
    buf: &mut [u8],
    outer_tos: u8,
    start: usize,
    payload_len: usize,
    next_header: u8,
) -> Result<(usize, usize), EspError> {
    let inner = &mut buf[start..start + payload_len];
    let version = ip_version(inner).map_err(|_| EspError::BadNextHeader(next_header))?;
    // The same few fields the send side reads; a Next Header that does not name the
    // inner packet's version is refused before its lengths are looked at.
    let expected = match version {
        IpVersion::V4 => proto::IPIP,
        IpVersion::V6 => proto::IPV6,
    };
    if next_header != expected {
        return Err(EspError::BadNextHeader(next_header));
    }
    let Inner {
        total: len,
        tos: inner_tos,
        ..
    } = inspect_inner(inner)?;
    let new_ecn = ecn::decapsulate(inner_tos, outer_tos).ok_or(EspError::EcnConflict)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The precomputed-sum header equals the one `Ipv4Header::write` builds from scratch,
    /// for every TOS, length, identification and DF.
    #[test]
    fn template_matches_a_full_header_write() {
        let (src, dst) = ([192, 0, 2, 1], [198, 51, 100, 7]);
        for df in [DfPolicy::Copy, DfPolicy::Set, DfPolicy::Clear] {
            let t = OuterTemplate::new(src.into(), dst.into(), proto::ESP, 61, df, true)
                .expect("template");
            for (tos, total, id, inner_df) in [
                (0u8, 20usize, 0u16, false),
                (0xff, 65535, 0xffff, true),
                (0b1011_1001, 1500, 0x8001, true),
                (0x03, 40, 1, false),
            ] {
                let inner = Inner {
                    next_header: proto::IPIP,
                    total: 0,
                    tos,
                    df: inner_df,
                };
                let mut got = [0u8; 20];
                t.write(&mut got, &inner, total, id).expect("write");
                let mut want = [0u8; 20];
                Ipv4Header {
                    dscp: tos >> 2,
                    ecn: tos & 3,
                    total_len: total as u16,
                    identification: id,
                    dont_fragment: match df {
                        DfPolicy::Copy => inner_df,
                        DfPolicy::Set => true,
                        DfPolicy::Clear => false,
                    },
                    more_fragments: false,
                    fragment_offset: 0,
                    ttl: 61,
                    protocol: proto::ESP,
                    checksum: 0,
                    src,
                    dst,
                    header_len: 20,
                }
                .write(&mut want)
                .expect("write");
                assert_eq!(got, want, "tos {tos:#x} total {total} id {id} {df:?}");
                assert!(ipv4::verify_checksum(&got));
            }
        }
    }
}
