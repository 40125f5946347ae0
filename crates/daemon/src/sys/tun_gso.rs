//! Segmentation (GSO) of what the TUN hands over with offloads on: a virtio-net header,
//! then one packet, which may be a 64 KiB aggregate of TCP segments (`GSO_TCPV4`,
//! `GSO_TCPV6`) or UDP datagrams (`GSO_UDP_L4`) that the kernel left for us to cut, or a
//! single packet whose TCP or UDP checksum is left to us (`NEEDS_CSUM`).
//!
//! The semantics are wireguard-go's `handleVirtioRead` and `gsoSplit` (tun/
//! offload_linux.go) and their tun-rs port, which [`super::tun::Tun::recv_batch`] used
//! before (`gso_split`; the tests hold the two to the same bytes):
//! - the transport header's length is read from the packet, not taken from the virtio
//!   `hdr_len` (which a forwarded packet may set to its whole first segment);
//! - each segment gets the aggregate's headers with the IPv4 total length (and header
//!   checksum) or IPv6 payload length of its own size, the IPv4 ID incremented per
//!   segment, the TCP sequence number advanced by the segment size, CWR only on the
//!   first segment and FIN and PSH only on the last (as Linux's TCP GSO), or the UDP
//!   length; and a transport checksum of its own.
//!
//! The difference is the cost: each segment's payload is copied to its buffer and summed
//! for its checksum while it is in the cache ([`checksum::copy_and_sum`], a faster sum
//! than tun-rs's), with no per-segment overhead beyond its headers; tun-rs's split was a
//! tenth of the sending daemon's time.

use tun_rs::VirtioNetHdr;

use super::checksum::{self, fold, sum_words};
use super::tun::VIRTIO_NET_HDR_LEN;

const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
/// Set on a TCP aggregate whose first segment carries CWR.
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
/// Where the UDP and TCP checksums sit in their headers (the virtio `csum_offset`).
const UDP_CSUM: usize = 6;
const TCP_CSUM: usize = 16;
const TCP_FLAGS: usize = 13;
const TCP_FLAG_FIN: u8 = 0x01;
const TCP_FLAG_PSH: u8 = 0x08;
const TCP_FLAG_CWR: u8 = 0x80;

/// Why a read from the TUN was not turned into packets. The read consumed it; the data
/// plane counts it as malformed. The kernel does not send these, so each names the
/// field that was wrong for the one who has to find out why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Nothing behind the virtio-net header.
    #[error("read of {0} bytes: no packet behind the virtio-net header")]
    Short(usize),
    /// The first byte is not IPv4 or IPv6.
    #[error("IP version {0} in an offload aggregate")]
    IpVersion(u8),
    /// A GSO type this device does not ask for, or one that does not match the IP version.
    #[error("virtio GSO type {gso_type:#x} with IPv{version}")]
    GsoType {
        /// The header's `gso_type`.
        gso_type: u8,
        /// The packet's IP version.
        version: u8,
    },
    /// `gso_size` of zero.
    #[error("virtio gso_size 0")]
    GsoSize,
    /// `csum_start` (the IP header's length) or `csum_offset` does not fit the packet or
    /// its protocol.
    #[error("virtio csum_start {start} / csum_offset {offset} do not fit a {len}-byte packet")]
    Checksum {
        /// The header's `csum_start`.
        start: u16,
        /// The header's `csum_offset`.
        offset: u16,
        /// The packet's length.
        len: usize,
    },
    /// A TCP data offset outside 20..=60 bytes.
    #[error("TCP header length {0}")]
    TcpHeader(usize),
    /// An aggregate with no payload.
    #[error("offload aggregate without payload")]
    Empty,
    /// A segment would not fit an IP length field.
    #[error("segment of {0} bytes does not fit an IP length field")]
    TooLong(usize),
    /// More segments than buffers, or a buffer too small for a segment.
    #[error("{segments} segments of up to {len} bytes do not fit the {buffers} buffers")]
    Room {
        /// Segments in the aggregate.
        segments: usize,
        /// The largest segment's length (with `offset`).
        len: usize,
        /// Buffers given.
        buffers: usize,
    },
}

/// Splits `read` (a virtio-net header and one packet, as read from the TUN) into
/// packets: packet `i` goes to `bufs[i][offset..][..sizes[i]]`. Returns how many.
pub fn split<B: AsMut<[u8]>>(
    read: &[u8],
    bufs: &mut [B],
    sizes: &mut [usize],
    offset: usize,
) -> Result<usize, Refused> {
    let room = bufs.len().min(sizes.len());
    let Some((vnet, pkt)) = read.split_at_checked(VIRTIO_NET_HDR_LEN) else {
        return Err(Refused::Short(read.len()));
    };
    if pkt.is_empty() {
        return Err(Refused::Short(read.len()));
    }
    // struct virtio_net_hdr, in the host's byte order (no TUNSETVNETLE/BE); `vnet` is
    // exactly its length, so decoding cannot fail.
    let Ok(VirtioNetHdr {
        flags,
        gso_type,
        gso_size,
        csum_start,
        csum_offset,
        ..
    }) = VirtioNetHdr::decode(vnet)
    else {
        return Err(Refused::Short(read.len()));
    };
    let gso_size = usize::from(gso_size);

    if gso_type == VIRTIO_NET_HDR_GSO_NONE {
        let (Some(buf), Some(size)) = (bufs.first_mut(), sizes.first_mut()) else {
            return Err(room_error(1, offset + pkt.len(), room));
        };
        let Some(out) = buf
            .as_mut()
            .get_mut(offset..)
            .and_then(|b| b.get_mut(..pkt.len()))
        else {
            return Err(room_error(1, offset + pkt.len(), room));
        };
        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 {
            out.copy_from_slice(pkt);
        } else {
            // CHECKSUM_PARTIAL: the field holds the pseudo-header's sum, so the sum of
            // everything from `csum_start` on, field included, is the checksum's sum.
            let (start, at) = (
                usize::from(csum_start),
                usize::from(csum_start) + usize::from(csum_offset),
            );
            if at + 2 > pkt.len() {
                return Err(Refused::Checksum {
                    start: csum_start,
                    offset: csum_offset,
                    len: pkt.len(),
                });
            }
            out[..start].copy_from_slice(&pkt[..start]);
            let sum = checksum::copy_and_sum(&mut out[start..], &pkt[start..]);
            out[at..at + 2].copy_from_slice(&(!sum).to_be_bytes());
        }
        *size = pkt.len();
        return Ok(1);
    }

    let version = pkt[0] >> 4;
    let v6 = match version {
        4 => false,
        6 => true,
        _ => return Err(Refused::IpVersion(version)),
    };
    let ecn = gso_type & VIRTIO_NET_HDR_GSO_ECN != 0;
    let udp = match (gso_type & !VIRTIO_NET_HDR_GSO_ECN, v6) {
        (VIRTIO_NET_HDR_GSO_TCPV4, false) | (VIRTIO_NET_HDR_GSO_TCPV6, true) => false,
        (VIRTIO_NET_HDR_GSO_UDP_L4, _) if !ecn => true,
        _ => return Err(Refused::GsoType { gso_type, version }),
    };
    if gso_size == 0 {
        return Err(Refused::GsoSize);
    }
    let iph = usize::from(csum_start);
    let bad_checksum = Refused::Checksum {
        start: csum_start,
        offset: csum_offset,
        len: pkt.len(),
    };
    let csum_field = if udp { UDP_CSUM } else { TCP_CSUM };
    let min_iph = if v6 { 40 } else { 20 };
    if usize::from(csum_offset) != csum_field || iph < min_iph {
        return Err(bad_checksum);
    }
    let l4h = if udp {
        UDP_HLEN
    } else {
        let off = *pkt.get(iph + 12).ok_or(bad_checksum)?;
        let len = usize::from(off >> 4) * 4;
        if !(20..=60).contains(&len) {
            return Err(Refused::TcpHeader(len));
        }
        len
    };
    let hdr = iph + l4h;
    if pkt.len() < hdr {
        return Err(bad_checksum);
    }
    let payload = pkt.len() - hdr;
    if payload == 0 {
        return Err(Refused::Empty);
    }
    let segments = payload.div_ceil(gso_size);
    let largest = hdr + payload.min(gso_size);
    if largest - if v6 { 40 } else { 0 } > usize::from(u16::MAX) {
        return Err(Refused::TooLong(largest));
    }
    if segments > room
        || bufs[..segments]
            .iter_mut()
            .any(|b| b.as_mut().len() < offset + largest)
    {
        return Err(room_error(segments, offset + largest, room));
    }

    let (head, data) = pkt.split_at(hdr);
    let addrs = if v6 { &head[8..40] } else { &head[12..20] };
    let proto = if udp { PROTO_UDP } else { PROTO_TCP };
    let pseudo_addrs = sum_words(addrs, u64::from(proto));
    let first_seq = if udp {
        0
    } else {
        u32::from_be_bytes([head[iph + 4], head[iph + 5], head[iph + 6], head[iph + 7]])
    };
    let first_id = u16::from_be_bytes([head[4], head[5]]);

    for (i, seg) in data.chunks(gso_size).enumerate() {
        let out = &mut bufs[i].as_mut()[offset..offset + hdr + seg.len()];
        let (oh, od) = out.split_at_mut(hdr);
        oh.copy_from_slice(head);
        let total = hdr + seg.len();
        let l4_len = total - iph;
        // `largest` was checked against the length fields: these fit in 16 bits.
        if v6 {
            oh[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        } else {
            oh[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            oh[4..6].copy_from_slice(&first_id.wrapping_add(i as u16).to_be_bytes());
            oh[10..12].fill(0);
            let csum = !fold(sum_words(&oh[..iph], 0));
            oh[10..12].copy_from_slice(&csum.to_be_bytes());
        }
        let last = i + 1 == segments;
        if udp {
            oh[iph + 4..iph + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        } else {
            let seq = first_seq.wrapping_add((gso_size as u32).wrapping_mul(i as u32));
            oh[iph + 4..iph + 8].copy_from_slice(&seq.to_be_bytes());
            if i > 0 {
                oh[iph + TCP_FLAGS] &= !TCP_FLAG_CWR;
            }
            if !last {
                oh[iph + TCP_FLAGS] &= !(TCP_FLAG_FIN | TCP_FLAG_PSH);
            }
        }
        let at = iph + csum_field;
        oh[at..at + 2].fill(0);
        let data_sum = checksum::copy_and_sum(od, seg);
        let acc = sum_words(&oh[iph..], pseudo_addrs + l4_len as u64) + u64::from(data_sum);
        let mut csum = !fold(acc);
        if udp && csum == 0 {
            // RFC 768: a computed zero is sent as all ones (zero means "none").
            csum = 0xffff;
        }
        oh[at..at + 2].copy_from_slice(&csum.to_be_bytes());
        sizes[i] = total;
    }
    Ok(segments)
}

fn room_error(segments: usize, len: usize, buffers: usize) -> Refused {
    Refused::Room {
        segments,
        len,
        buffers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tun_rs::gso_split;

    const OFFSET: usize = 60;

    /// An aggregate as the TUN hands it over: virtio-net header, IP header (IPv4 with
    /// `opts` option bytes; IPv6 plain), TCP header with `opts` option bytes or a UDP
    /// header, then `payload`.
    #[derive(Clone, Debug)]
    struct Aggregate {
        v6: bool,
        udp: bool,
        ecn: bool,
        ip_opts: usize,
        tcp_opts: usize,
        flags: u8,
        gso_size: u16,
        payload: Vec<u8>,
    }

    impl Aggregate {
        fn iph(&self) -> usize {
            if self.v6 { 40 } else { 20 + self.ip_opts }
        }

        fn l4h(&self) -> usize {
            if self.udp {
                UDP_HLEN
            } else {
                20 + self.tcp_opts
            }
        }

        fn packet(&self) -> Vec<u8> {
            let (iph, l4h) = (self.iph(), self.l4h());
            let total = iph + l4h + self.payload.len();
            let mut p = vec![0u8; iph];
            let proto = if self.udp { PROTO_UDP } else { PROTO_TCP };
            if self.v6 {
                p[0] = 0x60;
                p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
                p[6] = proto;
                p[7] = 64;
                p[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                p[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            } else {
                p[0] = 0x40 | (iph / 4) as u8;
                p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                p[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
                p[6] = 0x40;
                p[8] = 64;
                p[9] = proto;
                p[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
                for (k, b) in p[20..].iter_mut().enumerate() {
                    *b = if k == 0 { 1 } else { 0 };
                }
            }
            let mut l4 = vec![0u8; l4h];
            l4[..4].copy_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
            if self.udp {
                l4[4..6].copy_from_slice(&((l4h + self.payload.len()) as u16).to_be_bytes());
            } else {
                l4[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes());
                l4[8..12].copy_from_slice(&7u32.to_be_bytes());
                l4[12] = ((l4h / 4) as u8) << 4;
                l4[13] = self.flags;
                l4[14..16].copy_from_slice(&512u16.to_be_bytes());
                l4[20..].fill(1);
            }
            // CHECKSUM_PARTIAL: the kernel leaves the pseudo-header's sum in the field.
            let field = if self.udp { UDP_CSUM } else { TCP_CSUM };
            let addrs = if self.v6 { &p[8..40] } else { &p[12..20] };
            let pseudo = fold(sum_words(addrs, u64::from(proto) + (total - iph) as u64));
            l4[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
            p.extend_from_slice(&l4);
            p.extend_from_slice(&self.payload);
            p
        }

        fn vnet(&self) -> VirtioNetHdr {
            let gso_type = match (self.udp, self.v6) {
                (true, _) => VIRTIO_NET_HDR_GSO_UDP_L4,
                (false, true) => VIRTIO_NET_HDR_GSO_TCPV6,
                (false, false) => VIRTIO_NET_HDR_GSO_TCPV4,
            } | if self.ecn { VIRTIO_NET_HDR_GSO_ECN } else { 0 };
            VirtioNetHdr {
                flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
                gso_type,
                hdr_len: (self.iph() + self.l4h()) as u16,
                gso_size: self.gso_size,
                csum_start: self.iph() as u16,
                csum_offset: if self.udp { UDP_CSUM } else { TCP_CSUM } as u16,
            }
        }

        fn read(&self) -> Vec<u8> {
            with_vnet(self.vnet(), &self.packet())
        }
    }

    fn with_vnet(h: VirtioNetHdr, pkt: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; VIRTIO_NET_HDR_LEN];
        h.encode(&mut r).expect("room for the header");
        r.extend_from_slice(pkt);
        r
    }

    /// What tun-rs's `gso_none_checksum` (not exported) does: the field's value is the
    /// initial sum, the field is zeroed, everything from `csum_start` summed with the
    /// plain big-endian sum and complemented.
    fn none_checksum(pkt: &mut [u8], start: u16, offset: u16) {
        let at = usize::from(start + offset);
        let initial = u16::from_be_bytes([pkt[at], pkt[at + 1]]);
        pkt[at..at + 2].fill(0);
        let csum = !fold(sum_words(&pkt[usize::from(start)..], u64::from(initial)));
        pkt[at..at + 2].copy_from_slice(&csum.to_be_bytes());
    }

    fn ours(read: &[u8], buffers: usize) -> Result<Vec<Vec<u8>>, Refused> {
        let mut bufs = vec![vec![0xa5u8; 1600]; buffers];
        let mut sizes = vec![0; buffers];
        let n = split(read, &mut bufs, &mut sizes, OFFSET)?;
        Ok((0..n)
            .map(|i| bufs[i][OFFSET..OFFSET + sizes[i]].to_vec())
            .collect())
    }

    fn theirs(a: &Aggregate) -> Vec<Vec<u8>> {
        let mut bufs = vec![vec![0u8; 1600]; 64];
        let mut sizes = vec![0; 64];
        let n = gso_split(
            &mut a.packet(),
            a.vnet(),
            &mut bufs,
            &mut sizes,
            OFFSET,
            a.v6,
        )
        .expect("tun-rs split");
        (0..n)
            .map(|i| bufs[i][OFFSET..OFFSET + sizes[i]].to_vec())
            .collect()
    }

    /// Whether a segment's IPv4 header checksum and transport checksum verify.
    fn checksums_verify(seg: &[u8], a: &Aggregate) -> bool {
        let iph = a.iph();
        let ip_ok = a.v6 || fold(sum_words(&seg[..iph], 0)) == 0xffff;
        let addrs = if a.v6 { &seg[8..40] } else { &seg[12..20] };
        let proto = if a.udp { PROTO_UDP } else { PROTO_TCP };
        let pseudo = sum_words(addrs, u64::from(proto) + (seg.len() - iph) as u64);
        ip_ok && fold(sum_words(&seg[iph..], pseudo)) == 0xffff
    }

    fn aggregate() -> impl Strategy<Value = Aggregate> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0usize..=10,
            0usize..=10,
            prop::sample::select(vec![0x10u8, 0x18, 0x19, 0x98, 0x11]),
            prop::sample::select(vec![1u16, 7, 100, 536, 1_348, 1_380]),
            1usize..20_000,
        )
            .prop_map(
                |(v6, udp, ecn, ip_opts, tcp_opts, flags, gso_size, len)| Aggregate {
                    v6,
                    udp,
                    ecn: ecn && !udp,
                    ip_opts: ip_opts * 4,
                    tcp_opts: tcp_opts * 4,
                    flags,
                    gso_size,
                    payload: (0..len).map(|i| (i * 31 + 7) as u8).collect(),
                },
            )
            // Within the 64 buffers of the test (more is the `Room` refusal).
            .prop_filter("fits 64 segments", |a| {
                a.payload.len().div_ceil(usize::from(a.gso_size)) <= 64
            })
    }

    proptest! {
        #[test]
        fn splits_as_tun_rs_does(a in aggregate()) {
            let got = ours(&a.read(), 64).expect("split");
            prop_assert_eq!(&got, &theirs(&a));
            // And independently: checksums verify, payloads concatenate to the original.
            let hdr = a.iph() + a.l4h();
            let mut payload = Vec::new();
            for seg in &got {
                prop_assert!(checksums_verify(seg, &a));
                payload.extend_from_slice(&seg[hdr..]);
            }
            prop_assert_eq!(payload, a.payload);
        }

        #[test]
        fn a_single_packet_gets_its_checksum_finished(a in aggregate()) {
            let mut pkt = a.packet();
            let mut h = a.vnet();
            h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
            pkt.truncate(1_500);
            let got = ours(&with_vnet(h, &pkt), 1).expect("single packet");
            none_checksum(&mut pkt, h.csum_start, h.csum_offset);
            prop_assert_eq!(&got[..], &[pkt][..]);
            // Without NEEDS_CSUM the packet is copied as it is.
            h.flags = 0;
            let plain = a.packet();
            let got = ours(&with_vnet(h, &plain[..plain.len().min(1_500)]), 1).expect("copy");
            prop_assert_eq!(&got[0][..], &plain[..plain.len().min(1_500)]);
        }
    }

    fn tcp4(len: usize) -> Aggregate {
        Aggregate {
            v6: false,
            udp: false,
            ecn: false,
            ip_opts: 0,
            tcp_opts: 12,
            flags: 0x19,
            gso_size: 1_000,
            payload: vec![3; len],
        }
    }

    #[test]
    fn flags_and_sequence_numbers_follow_linux_tcp_gso() {
        let mut a = tcp4(2_500);
        a.flags = 0x98 | TCP_FLAG_FIN; // CWR, ACK, PSH, FIN
        let segs = ours(&a.read(), 8).expect("split");
        let iph = a.iph();
        let flags: Vec<u8> = segs.iter().map(|s| s[iph + TCP_FLAGS]).collect();
        // CWR on the first only, FIN and PSH on the last only.
        assert_eq!(flags, [0x90, 0x10, 0x19]);
        let seqs: Vec<u32> = segs
            .iter()
            .map(|s| u32::from_be_bytes(s[iph + 4..iph + 8].try_into().expect("4 bytes")))
            .collect();
        // The first sequence number is near the top: the later ones wrap.
        assert_eq!(seqs, [0xffff_ff00, 0x2e8, 0x6d0]);
        let ids: Vec<u16> = segs
            .iter()
            .map(|s| u16::from_be_bytes([s[4], s[5]]))
            .collect();
        assert_eq!(ids, [0xfffe, 0xffff, 0]);
        let lens: Vec<usize> = segs.iter().map(Vec::len).collect();
        assert_eq!(lens, [1_052, 1_052, 552]);
    }

    #[test]
    fn what_cannot_be_split_is_refused_by_name() {
        let read = tcp4(3_000).read();
        let refuse = |edit: &dyn Fn(&mut Vec<u8>), buffers: usize| {
            let mut r = read.clone();
            edit(&mut r);
            ours(&r, buffers).expect_err("refused")
        };
        assert_eq!(refuse(&|r| r.truncate(6), 8), Refused::Short(6));
        assert_eq!(
            refuse(&|r| r.truncate(VIRTIO_NET_HDR_LEN), 8),
            Refused::Short(10)
        );
        assert_eq!(
            refuse(&|r| r[VIRTIO_NET_HDR_LEN] = 0x55, 8),
            Refused::IpVersion(5)
        );
        assert_eq!(
            refuse(&|r| r[1] = VIRTIO_NET_HDR_GSO_TCPV6, 8),
            Refused::GsoType {
                gso_type: 4,
                version: 4
            }
        );
        assert_eq!(
            refuse(
                &|r| r[1] = VIRTIO_NET_HDR_GSO_UDP_L4 | VIRTIO_NET_HDR_GSO_ECN,
                8
            ),
            Refused::GsoType {
                gso_type: 0x85,
                version: 4
            }
        );
        assert_eq!(refuse(&|r| r[4..6].fill(0), 8), Refused::GsoSize);
        assert!(matches!(
            refuse(&|r| r[8..10].copy_from_slice(&6u16.to_ne_bytes()), 8),
            Refused::Checksum { offset: 6, .. }
        ));
        assert!(matches!(
            refuse(&|r| r[6..8].copy_from_slice(&12u16.to_ne_bytes()), 8),
            Refused::Checksum { start: 12, .. }
        ));
        assert_eq!(
            refuse(&|r| r[VIRTIO_NET_HDR_LEN + 32] = 0x40, 8),
            Refused::TcpHeader(16)
        );
        assert_eq!(
            refuse(&|r| r.truncate(VIRTIO_NET_HDR_LEN + 52), 8),
            Refused::Empty
        );
        assert!(matches!(
            refuse(&|_| {}, 2),
            Refused::Room {
                segments: 3,
                buffers: 2,
                ..
            }
        ));
        // A buffer too small for a segment.
        let mut bufs = vec![vec![0u8; 1_000]; 8];
        let mut sizes = vec![0; 8];
        assert!(matches!(
            split(&read, &mut bufs, &mut sizes, OFFSET),
            Err(Refused::Room { segments: 3, .. })
        ));
        // A NEEDS_CSUM field past the packet's end.
        let mut r = read.clone();
        r.truncate(VIRTIO_NET_HDR_LEN + 1_000);
        r[1] = VIRTIO_NET_HDR_GSO_NONE;
        r[8..10].copy_from_slice(&4_000u16.to_ne_bytes());
        assert!(matches!(
            ours(&r, 1),
            Err(Refused::Checksum { offset: 4_000, .. })
        ));
    }

    #[test]
    fn the_fuzz_seeds_split() {
        // fuzz/seeds/make_tun_gso_seeds.py (scapy): each seed must get past the checks,
        // or the fuzzer starts from refusals only.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/tun_gso");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("seeds") {
            let path = entry.expect("entry").path();
            let read = std::fs::read(&path).expect("seed");
            let got = ours(&read, 64).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!got.is_empty());
            seen += 1;
        }
        assert_eq!(seen, 7);
    }
}
