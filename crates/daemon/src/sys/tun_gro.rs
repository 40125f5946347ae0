//! TCP and UDP coalescing (GRO) for TUN writes, without an allocation per packet.
//!
//! The same semantics as wireguard-go's `tcpGRO` and `udpGRO` (tun/offload_linux.go)
//! and their tun-rs port (`handle_gro`), which [`super::tun::Tun::send_batch`] used
//! before: consecutive TCP segments (or UDP datagrams) of one flow in a batch are merged
//! behind the first one and written as one packet with a virtio-net header asking for
//! segmentation (GSO TCPv4, TCPv6 or UDP_L4), so the kernel walks its stack once per
//! 64 KiB. tun-rs copies every packet into a fresh `Vec` before looking at it, and
//! appends payloads to the first; here the table is allocated once and reused, nothing
//! is copied: an aggregate is one `writev` of the first packet's buffer (its headers
//! rewritten for the whole run) and the payloads of the others where they lie
//! ([`TunGro::for_each_write`]).
//!
//! A TCP segment joins an earlier one of its batch when
//! - both are IPv4 without options, not fragmented, with the same DF and reserved bits,
//!   or IPv6 with TCP as the next header (no extension headers);
//! - both have the same addresses, ports and acknowledgment number (a different ACK is
//!   another flow, as in wireguard-go), the same TTL / hop limit and TOS / traffic
//!   class, the same TCP header length and option bytes;
//! - its flags are ACK or ACK|PSH only (anything else, CWR and ECE included, is written
//!   alone, as wireguard-go does), it carries data, and its sequence number follows the
//!   run's last byte;
//! - the run has no PSH yet (PSH ends a run), every earlier segment had the first one's
//!   payload length (a shorter one ends a run) and this one is not longer;
//! - the aggregate stays within 65,535 IP bytes and [`MAX_SEGMENTS`] segments (one
//!   iovec each);
//! - both TCP checksums are valid: a corrupt segment is written alone, for the kernel to
//!   drop, never blessed inside an aggregate whose checksum the kernel does not verify.
//!
//! Unlike wireguard-go, a segment is only appended, never prepended (out-of-order
//! segments in one batch start a run of their own): the aggregate is written where its
//! first segment was, other packets keep their relative order.
//!
//! UDP, only where the device takes UDP segmentation (`TUN_F_USO4/6`, Linux 6.2): a
//! datagram joins the newest run of its flow (same addresses and ports), never an older
//! one, so datagrams keep their order; under the same IP rules as TCP (no IPv4 options
//! or fragments, no IPv6 extension headers, the same TOS / traffic class, DF and TTL /
//! hop limit); when every datagram of the run had the first one's length and this one
//! is not longer; within 65,535 IP bytes and [`MAX_SEGMENTS`]; and with both checksums
//! valid (an IPv4 datagram sent without one, a zero checksum, is written alone).
//!
//! A packet written alone gets a zero virtio-net header (`GSO_NONE`, no flags), as in
//! wireguard-go and tun-rs: the kernel verifies its checksum as for any packet.

use std::io::{self, IoSlice};

use tun_rs::VirtioNetHdr;

use super::checksum::{self, fold, sum_words};
use super::tun::VIRTIO_NET_HDR_LEN;

const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
/// Where the UDP checksum sits in the UDP header.
const UDP_CSUM: usize = 6;
const TCP_FLAGS: usize = 13;
const TCP_FLAG_PSH: u8 = 0x08;
const TCP_FLAG_ACK: u8 = 0x10;
/// Where the TCP checksum sits in the TCP header (the virtio `csum_offset`).
const TCP_CSUM: usize = 16;
/// The largest IP packet (IPv4 total length; IPv6 payload length is kept under it too).
const MAX_IP_LEN: usize = 65_535;
/// No item (end of a flow's chain, empty slot).
const NONE: u32 = u32::MAX;
/// Segments in one aggregate at most: the iovecs of one write, far below `IOV_MAX`.
/// Full-sized segments never reach it (64 KiB is 46 segments of 1,400 bytes).
pub const MAX_SEGMENTS: usize = 64;

/// What identifies a flow: addresses (IPv4 in the first 4 bytes), ports, the ACK
/// number (TCP segments with different ACKs are not merged; zero for UDP), the IP
/// version and the protocol.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    src: [u8; 16],
    dst: [u8; 16],
    ports: u32,
    ack: u32,
    v6: bool,
    udp: bool,
}

impl FlowKey {
    fn hash(&self) -> u64 {
        // Not keyed: a batch is at most a few hundred packets and a probe sequence at
        // worst walks them all, so collisions cost time bounded by the batch.
        let mut h = 0x9e37_79b9_7f4a_7c15_u64;
        for chunk in self.src.chunks_exact(8).chain(self.dst.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            h = (h ^ u64::from_ne_bytes(w)).wrapping_mul(0x100_0000_01b3);
            h ^= h >> 29;
        }
        h = (h ^ (u64::from(self.ports) << 32 | u64::from(self.ack)))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 31) ^ u64::from(self.v6) ^ u64::from(self.udp) << 1
    }
}

/// A run being built: the first segment's buffer and what its headers say.
#[derive(Clone, Copy)]
struct Item {
    key: FlowKey,
    /// The buffer holding the run (the first segment's).
    buf: usize,
    /// The flow's slot in the table.
    slot: u32,
    /// The flow's previous (older) item, or `NONE`.
    prev: u32,
    /// The first segment's sequence number (TCP).
    seq: u32,
    /// The first segment's payload length: every segment but the last has it.
    gso_size: u16,
    /// Segments appended to the first.
    merged: u16,
    /// Payload bytes in the run.
    payload: u32,
    /// IP bytes of the run (the first segment's headers and every payload).
    len: u32,
    /// The appended segments, oldest first (indices into `TunGro::segs`), or `NONE`.
    head: u32,
    tail: u32,
    iph_len: u8,
    /// The TCP header's length, or the UDP header's.
    l4h_len: u8,
    /// The last segment had PSH: nothing may follow it.
    psh: bool,
    /// False once the first segment's checksum was found invalid: it is written alone.
    open: bool,
}

/// A TCP segment or UDP datagram that may be coalesced, as parsed from its headers.
struct Candidate {
    key: FlowKey,
    seq: u32,
    iph_len: usize,
    l4h_len: usize,
    payload: usize,
    psh: bool,
}

/// A segment appended to a run: its buffer and the next appended one (or `NONE`).
#[derive(Clone, Copy)]
struct Appended {
    buf: u32,
    next: u32,
}

/// A packet to write: the buffer it starts in, and its run (or `NONE`: alone).
#[derive(Clone, Copy)]
struct Write {
    buf: usize,
    item: u32,
}

/// Coalescing state, allocated once and reused for every batch.
pub struct TunGro {
    items: Vec<Item>,
    segs: Vec<Appended>,
    /// Open-addressed table of flows: index of the flow's newest item, or `NONE`.
    slots: Vec<u32>,
    /// Packets to write, in order.
    order: Vec<Write>,
}

impl Default for TunGro {
    fn default() -> Self {
        TunGro::new()
    }
}

impl TunGro {
    /// Room for batches of [`tun_rs::IDEAL_BATCH_SIZE`] packets; larger ones grow it
    /// once.
    pub fn new() -> TunGro {
        let batch = tun_rs::IDEAL_BATCH_SIZE;
        TunGro {
            items: Vec::with_capacity(batch),
            segs: Vec::with_capacity(batch),
            slots: vec![NONE; (batch * 2).next_power_of_two()],
            order: Vec::with_capacity(batch),
        }
    }

    /// Coalesces the packets `bufs[i][offset..]` (UDP datagrams too with `udp`: the
    /// device takes UDP segmentation) and writes each one's virtio-net header in the
    /// `VIRTIO_NET_HDR_LEN` bytes in front of `offset`; then [`TunGro::for_each_write`]
    /// gives the packets to write. Only the headers of a run's first packet change.
    pub fn coalesce(&mut self, bufs: &mut [Vec<u8>], offset: usize, udp: bool) -> io::Result<()> {
        self.items.clear();
        self.segs.clear();
        self.order.clear();
        if offset < VIRTIO_NET_HDR_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no room for the virtio-net header in front of the packets",
            ));
        }
        if bufs.iter().any(|b| b.len() < offset) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a TUN write buffer is shorter than its offset",
            ));
        }
        // Items and segments index as u32 (NONE is u32::MAX), counts as u16.
        if bufs.len() >= usize::from(u16::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many packets in one TUN batch",
            ));
        }
        let want = (bufs.len() * 2).next_power_of_two().max(16);
        if self.slots.len() < want {
            // Only for a batch larger than any before: not per packet.
            self.slots = vec![NONE; want];
        }
        for i in 0..bufs.len() {
            let merged = match candidate(&bufs[i][offset..], udp) {
                Some(c) => self.try_merge(bufs, offset, i, &c),
                None => false,
            };
            if !merged {
                // Written alone unless segments join it: `finish` then rewrites it.
                bufs[i][offset - VIRTIO_NET_HDR_LEN..offset].fill(0);
                let item = match self.items.last() {
                    Some(it) if it.buf == i => (self.items.len() - 1) as u32,
                    _ => NONE,
                };
                self.order.push(Write { buf: i, item });
            }
        }
        for item in &self.items {
            if item.merged > 0 {
                finish(&mut bufs[item.buf], offset, item);
            }
        }
        for item in &self.items {
            self.slots[item.slot as usize] = NONE;
        }
        Ok(())
    }

    /// Calls `write` with each packet of the last [`TunGro::coalesce`], in order, as
    /// slices of `bufs`: its virtio-net header and IP packet, then (for an aggregate)
    /// the payloads appended to it. One `writev(2)` each.
    pub fn for_each_write<'b>(
        &self,
        bufs: &'b [Vec<u8>],
        offset: usize,
        mut write: impl FnMut(&[IoSlice<'b>]),
    ) {
        let header = offset - VIRTIO_NET_HDR_LEN;
        for w in &self.order {
            let first = IoSlice::new(&bufs[w.buf][header..]);
            let Some(item) = self.items.get(w.item as usize).filter(|it| it.merged > 0) else {
                write(&[first]);
                continue;
            };
            let skip = offset + usize::from(item.iph_len) + usize::from(item.l4h_len);
            let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS];
            iov[0] = first;
            let mut n = 1;
            let mut at = item.head;
            while let Some(seg) = self.segs.get(at as usize) {
                iov[n] = IoSlice::new(&bufs[seg.buf as usize][skip..]);
                n += 1;
                at = seg.next;
            }
            write(&iov[..n]);
        }
    }

    /// The buffers the packets to write start in, in order.
    #[cfg(test)]
    fn order(&self) -> Vec<usize> {
        self.order.iter().map(|w| w.buf).collect()
    }

    /// Merges packet `i` into a run of its flow, or starts one: true if merged.
    fn try_merge(&mut self, bufs: &mut [Vec<u8>], offset: usize, i: usize, c: &Candidate) -> bool {
        let mask = self.slots.len() - 1;
        let mut slot = (c.key.hash() as usize) & mask;
        // The table has more slots than the batch has packets: a probe ends.
        let head = loop {
            let at = self.slots[slot];
            if at == NONE || self.items[at as usize].key == c.key {
                break at;
            }
            slot = (slot + 1) & mask;
        };
        // Newest run first, as wireguard-go walks a flow's items in reverse; a UDP
        // datagram only tries the newest (datagrams have no sequence numbers to put
        // them back in order).
        let mut at = head;
        while at != NONE {
            let idx = at as usize;
            let item = self.items[idx];
            at = if c.key.udp { NONE } else { item.prev };
            if !item.open || !can_append(&item, c, &bufs[item.buf], &bufs[i], offset) {
                continue;
            }
            let first = &bufs[item.buf][offset..];
            if item.merged == 0 && !checksum_valid(first, item.iph_len.into(), c.key) {
                // The run's first packet is corrupt: it is written alone (its header
                // stays zero); look further.
                self.items[idx].open = false;
                continue;
            }
            if !checksum_valid(&bufs[i][offset..], c.iph_len, c.key) {
                // Written alone; no run starts with a corrupt segment either.
                return false;
            }
            if c.psh {
                bufs[item.buf][offset + usize::from(item.iph_len) + TCP_FLAGS] |= TCP_FLAG_PSH;
            }
            let seg = self.segs.len() as u32;
            self.segs.push(Appended {
                buf: i as u32,
                next: NONE,
            });
            if let Some(tail) = self.segs.get_mut(item.tail as usize) {
                tail.next = seg;
            }
            let item = &mut self.items[idx];
            if item.head == NONE {
                item.head = seg;
            }
            item.tail = seg;
            item.merged += 1;
            item.payload += c.payload as u32;
            item.len += c.payload as u32;
            item.psh = c.psh;
            return true;
        }
        // No run to join: this segment starts one, as the flow's newest item.
        self.slots[slot] = self.items.len() as u32;
        self.items.push(Item {
            key: c.key,
            buf: i,
            slot: slot as u32,
            prev: head,
            seq: c.seq,
            gso_size: c.payload as u16,
            merged: 0,
            payload: c.payload as u32,
            len: (c.iph_len + c.l4h_len + c.payload) as u32,
            head: NONE,
            tail: NONE,
            iph_len: c.iph_len as u8,
            l4h_len: c.l4h_len as u8,
            psh: c.psh,
            open: true,
        });
        false
    }
}

/// Parses a packet's headers: a coalescing candidate (a UDP datagram only with `udp`),
/// or `None` to write it alone.
fn candidate(pkt: &[u8], udp: bool) -> Option<Candidate> {
    let (v6, iph_len, proto) = match pkt.first()? >> 4 {
        // IPv4 without options, the total length the packet's, not a fragment (MF
        // clear, offset zero).
        4 if pkt.len() >= 28
            && pkt[0] & 0x0f == 5
            && usize::from(u16::from_be_bytes([pkt[2], pkt[3]])) == pkt.len()
            && pkt[6] & 0x3f == 0
            && pkt[7] == 0 =>
        {
            (false, 20, pkt[9])
        }
        // IPv6 with TCP or UDP right after the fixed header (no extension headers).
        6 if pkt.len() >= 48
            && usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) == pkt.len() - 40 =>
        {
            (true, 40, pkt[6])
        }
        _ => return None,
    };
    if pkt.len() > MAX_IP_LEN {
        return None;
    }
    let mut key = FlowKey {
        src: [0; 16],
        dst: [0; 16],
        ports: 0,
        ack: 0,
        v6,
        udp: proto == PROTO_UDP,
    };
    if v6 {
        key.src.copy_from_slice(&pkt[8..24]);
        key.dst.copy_from_slice(&pkt[24..40]);
    } else {
        key.src[..4].copy_from_slice(&pkt[12..16]);
        key.dst[..4].copy_from_slice(&pkt[16..20]);
    }
    let l4 = &pkt[iph_len..];
    key.ports = u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]]);
    match proto {
        PROTO_TCP => tcp_candidate(key, l4, iph_len),
        // The UDP length is the IP payload's (no trailing bytes), and a checksum was
        // sent (zero: none, in IPv4).
        PROTO_UDP
            if udp
                && usize::from(u16::from_be_bytes([l4[4], l4[5]])) == l4.len()
                && l4[UDP_CSUM..UDP_CSUM + 2] != [0, 0]
                && l4.len() > UDP_HLEN =>
        {
            Some(Candidate {
                key,
                seq: 0,
                iph_len,
                l4h_len: UDP_HLEN,
                payload: l4.len() - UDP_HLEN,
                psh: false,
            })
        }
        _ => None,
    }
}

/// [`candidate`] for a TCP segment `tcp` (its header and payload) of flow `key`.
fn tcp_candidate(mut key: FlowKey, tcp: &[u8], iph_len: usize) -> Option<Candidate> {
    if tcp.len() < 20 {
        return None;
    }
    let tcph_len = usize::from(tcp[12] >> 4) * 4;
    if tcph_len < 20 || tcp.len() < tcph_len {
        return None;
    }
    // ACK, or ACK|PSH (which ends a run); anything else is written alone.
    let flags = tcp[TCP_FLAGS];
    if flags != TCP_FLAG_ACK && flags != TCP_FLAG_ACK | TCP_FLAG_PSH {
        return None;
    }
    let payload = tcp.len() - tcph_len;
    if payload == 0 {
        return None;
    }
    key.ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
    Some(Candidate {
        key,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        iph_len,
        l4h_len: tcph_len,
        payload,
        psh: flags & TCP_FLAG_PSH != 0,
    })
}

/// Whether packet `c` (in `pkt_buf`) may be appended to the run `item` (whose first
/// packet is in `first_buf`), checksums aside. The key (addresses, ports, ACK,
/// version, protocol) matched.
fn can_append(item: &Item, c: &Candidate, first_buf: &[u8], pkt_buf: &[u8], offset: usize) -> bool {
    let first = &first_buf[offset..];
    let pkt = &pkt_buf[offset..];
    let iph = usize::from(item.iph_len);
    let l4h = usize::from(item.l4h_len);
    // TCP options: the same length and bytes.
    if c.l4h_len != l4h || (!c.key.udp && pkt[iph + 20..iph + l4h] != first[iph + 20..iph + l4h]) {
        return false;
    }
    let same_ip = if c.key.v6 {
        // Version and traffic class; hop limit.
        pkt[0] == first[0] && pkt[1] >> 4 == first[1] >> 4 && pkt[7] == first[7]
    } else {
        // TOS; DF and reserved bits; TTL.
        pkt[1] == first[1] && pkt[6] >> 5 == first[6] >> 5 && pkt[8] == first[8]
    };
    if !same_ip || item.psh {
        return false;
    }
    // TCP: it follows the run's last byte. Both: every packet so far had the first's
    // length (a shorter one ends a run) and this one is not longer.
    let gso = u32::from(item.gso_size);
    (c.key.udp || c.seq == item.seq.wrapping_add(item.payload))
        && item.payload.is_multiple_of(gso)
        && c.payload as u32 <= gso
        && item.len as usize + c.payload <= MAX_IP_LEN
        && usize::from(item.merged) + 1 < MAX_SEGMENTS
}

/// Whether a TCP segment's or UDP datagram's checksum is right (the headers were
/// parsed by `candidate`). Every payload byte goes through here once, hence the
/// vectorised sum.
fn checksum_valid(pkt: &[u8], iph_len: usize, key: FlowKey) -> bool {
    let sum = pseudo_header(pkt, key, pkt.len() - iph_len);
    fold(sum + u64::from(checksum::sum(&pkt[iph_len..]))) == 0xffff
}

/// The TCP or UDP pseudo-header's sum (not folded) for `l4_len` bytes of TCP or UDP.
fn pseudo_header(pkt: &[u8], key: FlowKey, l4_len: usize) -> u64 {
    let addrs = if key.v6 { &pkt[8..40] } else { &pkt[12..20] };
    let proto = if key.udp { PROTO_UDP } else { PROTO_TCP };
    sum_words(addrs, u64::from(proto) + l4_len as u64)
}

/// Rewrites a run's headers: IP length (and IPv4 header checksum), the UDP length, the
/// TCP or UDP checksum field to the pseudo-header sum for the new length, and the
/// virtio-net header asking the kernel for segmentation and checksums.
fn finish(buf: &mut [u8], offset: usize, item: &Item) {
    let iph = usize::from(item.iph_len);
    let (vnet, pkt) = buf.split_at_mut(offset);
    // The run's length: its later payloads are written from their own buffers.
    let len = item.len as usize;
    let l4_len = len - iph;
    // `can_append` kept `len` within MAX_IP_LEN, so these fit in 16 bits.
    if item.key.v6 {
        pkt[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    } else {
        pkt[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        pkt[10..12].fill(0);
        let csum = !fold(sum_words(&pkt[..iph], 0));
        pkt[10..12].copy_from_slice(&csum.to_be_bytes());
    }
    let (gso_type, csum_at) = match (item.key.udp, item.key.v6) {
        (true, _) => {
            pkt[iph + 4..iph + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            (VIRTIO_NET_HDR_GSO_UDP_L4, UDP_CSUM)
        }
        (false, true) => (VIRTIO_NET_HDR_GSO_TCPV6, TCP_CSUM),
        (false, false) => (VIRTIO_NET_HDR_GSO_TCPV4, TCP_CSUM),
    };
    let pseudo = fold(pseudo_header(pkt, item.key, l4_len));
    pkt[iph + csum_at..iph + csum_at + 2].copy_from_slice(&pseudo.to_be_bytes());
    // struct virtio_net_hdr, in the host's byte order (no TUNSETVNETLE/BE). `coalesce`
    // checked that `offset` leaves room for it.
    let hdr = VirtioNetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type,
        hdr_len: u16::from(item.iph_len) + u16::from(item.l4h_len),
        gso_size: item.gso_size,
        csum_start: u16::from(item.iph_len),
        csum_offset: csum_at as u16,
    };
    let _ = hdr.encode(&mut vnet[offset - VIRTIO_NET_HDR_LEN..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tun_rs::gso_split;

    const OFFSET: usize = VIRTIO_NET_HDR_LEN;
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const URG: u8 = 0x20;
    const ECE: u8 = 0x40;
    const CWR: u8 = 0x80;

    /// One TCP segment's description.
    #[derive(Clone, Debug)]
    struct Seg {
        v6: bool,
        flow: u8,
        seq: u32,
        ack: u32,
        flags: u8,
        id: u16,
        payload: Vec<u8>,
        bad_csum: bool,
    }

    /// An IPv4 (DF) or IPv6 TCP packet with valid checksums (unless `bad_csum`).
    fn tcp_packet(s: &Seg) -> Vec<u8> {
        let tcp_len = 20 + s.payload.len();
        let mut p = Vec::new();
        if s.v6 {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            p.extend_from_slice(&[PROTO_TCP, 64]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            p.extend_from_slice(&s.id.to_be_bytes());
            p.extend_from_slice(&[0x40, 0, 64, PROTO_TCP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            let c = !fold(sum_words(&p, 0));
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let iph = p.len();
        p.extend_from_slice(&(1000 + u16::from(s.flow)).to_be_bytes());
        p.extend_from_slice(&443u16.to_be_bytes());
        p.extend_from_slice(&s.seq.to_be_bytes());
        p.extend_from_slice(&s.ack.to_be_bytes());
        p.extend_from_slice(&[0x50, s.flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(&s.payload);
        let sum = pseudo_header(&p, key(s.v6, false), tcp_len);
        let c = !fold(sum_words(&p[iph..], sum)) ^ u16::from(s.bad_csum);
        p[iph + TCP_CSUM..iph + TCP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// A flow key of `v6` and `udp`, for the pseudo-header sums.
    fn key(v6: bool, udp: bool) -> FlowKey {
        FlowKey {
            src: [0; 16],
            dst: [0; 16],
            ports: 0,
            ack: 0,
            v6,
            udp,
        }
    }

    /// A datagram of `len` bytes from port `sport`, filled with `fill`: IPv4 (DF, IP id
    /// `id`: the kernel numbers the segments of an aggregate on) or IPv6, with a valid
    /// checksum unless `csum` says otherwise (`Some(0)`: none sent).
    fn udp_datagram(
        v6: bool,
        (sport, id): (u16, u16),
        len: usize,
        fill: u8,
        csum: Option<u16>,
    ) -> Vec<u8> {
        let udp_len = UDP_HLEN + len;
        let mut p = Vec::new();
        if v6 {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(udp_len as u16).to_be_bytes());
            p.extend_from_slice(&[PROTO_UDP, 64]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&[0x40, 0, 64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            let c = !fold(sum_words(&p, 0));
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let iph = p.len();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&53u16.to_be_bytes());
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend((0..len).map(|i| fill.wrapping_add(i as u8)));
        let sum = pseudo_header(&p, key(v6, true), udp_len);
        let c = csum.unwrap_or_else(|| match !fold(sum_words(&p[iph..], sum)) {
            0 => 0xffff,
            c => c,
        });
        p[iph + UDP_CSUM..iph + UDP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// A TUN write buffer: room for the virtio-net header, then the packet.
    fn buffer(pkt: &[u8]) -> Vec<u8> {
        let mut b = vec![0xaa; OFFSET];
        b.extend_from_slice(pkt);
        b
    }

    /// Coalesces, and returns the buffers written from and each write's bytes.
    fn coalesced(gro: &mut TunGro, bufs: &mut [Vec<u8>]) -> (Vec<usize>, Vec<Vec<u8>>) {
        gro.coalesce(bufs, OFFSET, true).expect("coalesce");
        let mut writes = Vec::new();
        gro.for_each_write(bufs, OFFSET, |iov| {
            assert!(iov.len() <= MAX_SEGMENTS);
            writes.push(iov.iter().flat_map(|s| s.iter().copied()).collect());
        });
        (gro.order(), writes)
    }

    fn hdr(buf: &[u8]) -> VirtioNetHdr {
        VirtioNetHdr::decode(&buf[..OFFSET]).expect("virtio header")
    }

    /// What the kernel would see: every written packet, aggregates split back with
    /// tun-rs's `gso_split` (an implementation apart from ours in tun_gso.rs).
    fn written(gro: &mut TunGro, bufs: &mut [Vec<u8>]) -> (Vec<usize>, Vec<Vec<u8>>, usize) {
        let before: Vec<(*const u8, usize)> = bufs.iter().map(|b| (b.as_ptr(), b.len())).collect();
        let (order, writes) = coalesced(gro, bufs);
        // Nothing appended or moved: every buffer is where and as long as it was.
        for (b, p) in bufs.iter().zip(before) {
            assert_eq!((b.as_ptr(), b.len()), p);
        }
        let mut out = Vec::new();
        let mut aggregates = 0;
        for (&i, write) in order.iter().zip(&writes) {
            let h = hdr(write);
            let pkt = &write[OFFSET..];
            assert_eq!(
                &write[..OFFSET],
                &bufs[i][..OFFSET],
                "the header is the buffer's"
            );
            if h.gso_type == 0 {
                assert_eq!(&write[..OFFSET], &[0; OFFSET], "alone: zero header");
                assert_eq!(write, &bufs[i], "alone: the buffer as it is");
                out.push(pkt.to_vec());
                continue;
            }
            aggregates += 1;
            let v6 = pkt[0] >> 4 == 6;
            let iph = if v6 { 40 } else { 20 };
            let udp = pkt[if v6 { 6 } else { 9 }] == PROTO_UDP;
            assert_eq!(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
            let (want_type, csum_at) = match (udp, v6) {
                (true, _) => (VIRTIO_NET_HDR_GSO_UDP_L4, UDP_CSUM),
                (false, true) => (VIRTIO_NET_HDR_GSO_TCPV6, TCP_CSUM),
                (false, false) => (VIRTIO_NET_HDR_GSO_TCPV4, TCP_CSUM),
            };
            assert_eq!(h.gso_type, want_type);
            assert_eq!(h.csum_start, iph as u16);
            assert_eq!(usize::from(h.csum_offset), csum_at);
            assert!(pkt.len() <= MAX_IP_LEN);
            if udp {
                let udp_len = u16::from_be_bytes([pkt[iph + 4], pkt[iph + 5]]);
                assert_eq!(usize::from(udp_len), pkt.len() - iph, "UDP length");
            }
            // The checksum field holds the pseudo-header sum, not complemented.
            let pseudo = fold(pseudo_header(pkt, key(v6, udp), pkt.len() - iph));
            assert_eq!(
                &pkt[iph + csum_at..iph + csum_at + 2],
                &pseudo.to_be_bytes()
            );
            let mut input = pkt.to_vec();
            let n = (pkt.len() - usize::from(h.hdr_len)).div_ceil(usize::from(h.gso_size));
            let mut segs = vec![vec![0u8; usize::from(h.hdr_len + h.gso_size)]; n];
            let mut sizes = vec![0; n];
            let got = gso_split(&mut input, h, &mut segs, &mut sizes, 0, v6).expect("split");
            assert!(got >= 2, "an aggregate holds at least two segments");
            for (s, len) in segs.iter().zip(&sizes).take(got) {
                out.push(s[..*len].to_vec());
            }
        }
        (order, out, aggregates)
    }

    fn seg(v6: bool, seq: u32, len: usize, flags: u8) -> Seg {
        Seg {
            v6,
            flow: 0,
            seq,
            ack: 7,
            flags,
            id: (seq as usize / len.max(1)) as u16,
            payload: (0..len).map(|i| (i as u32 ^ seq) as u8).collect(),
            bad_csum: false,
        }
    }

    #[test]
    fn a_flow_becomes_one_aggregate_with_its_headers() {
        for v6 in [false, true] {
            let segs = [
                seg(v6, 1000, 100, TCP_FLAG_ACK),
                seg(v6, 1100, 100, TCP_FLAG_ACK),
                seg(v6, 1200, 60, TCP_FLAG_ACK | TCP_FLAG_PSH),
            ];
            let mut bufs: Vec<_> = segs.iter().map(|s| buffer(&tcp_packet(s))).collect();
            let mut gro = TunGro::new();
            let (order, writes) = coalesced(&mut gro, &mut bufs);
            assert_eq!(order, [0]);
            let h = hdr(&writes[0]);
            let iph = if v6 { 40 } else { 20 };
            assert_eq!(h.hdr_len, iph + 20);
            assert_eq!(h.gso_size, 100);
            let pkt = &writes[0][OFFSET..];
            assert_eq!(pkt.len(), usize::from(iph) + 20 + 260);
            if v6 {
                assert_eq!(&pkt[4..6], &280u16.to_be_bytes());
            } else {
                assert_eq!(&pkt[2..4], &300u16.to_be_bytes());
                assert_eq!(
                    fold(sum_words(&pkt[..20], 0)),
                    0xffff,
                    "IPv4 header checksum"
                );
            }
            assert_ne!(
                pkt[usize::from(iph) + 13] & TCP_FLAG_PSH,
                0,
                "PSH of the last"
            );
        }
    }

    #[test]
    fn psh_ends_a_run_and_other_flags_go_alone() {
        let mut gro = TunGro::new();
        let segs = [
            seg(false, 0, 100, TCP_FLAG_ACK | TCP_FLAG_PSH),
            seg(false, 100, 100, TCP_FLAG_ACK),
        ];
        let mut bufs: Vec<_> = segs.iter().map(|s| buffer(&tcp_packet(s))).collect();
        assert_eq!(coalesced(&mut gro, &mut bufs).0, [0, 1]);
        for flag in [FIN, SYN, RST, URG, ECE, CWR] {
            let segs = [
                seg(false, 0, 100, TCP_FLAG_ACK),
                seg(false, 100, 100, TCP_FLAG_ACK | flag),
                seg(false, 200, 100, TCP_FLAG_ACK),
            ];
            let mut bufs: Vec<_> = segs.iter().map(|s| buffer(&tcp_packet(s))).collect();
            let (order, out, aggregates) = written(&mut gro, &mut bufs);
            assert_eq!(order, [0, 1, 2], "flag {flag:#x}");
            assert_eq!(aggregates, 0);
            assert_eq!(out.len(), 3);
        }
    }

    #[test]
    fn a_corrupt_segment_is_written_alone() {
        let mut gro = TunGro::new();
        for bad in 0..3 {
            let mut segs: Vec<_> = (0..3)
                .map(|i| seg(true, i * 100, 100, TCP_FLAG_ACK))
                .collect();
            segs[bad].bad_csum = true;
            let input: Vec<_> = segs.iter().map(tcp_packet).collect();
            let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
            let (order, out, _) = written(&mut gro, &mut bufs);
            assert_eq!(out, input, "bad {bad}");
            assert!(order.contains(&bad));
            assert_eq!(hdr(&bufs[bad]).gso_type, 0);
        }
    }

    #[test]
    fn aggregates_stay_within_64_kib_and_64_segments() {
        let mut gro = TunGro::new();
        let segs: Vec<_> = (0..60)
            .map(|i| seg(false, i * 1400, 1400, TCP_FLAG_ACK))
            .collect();
        let input: Vec<_> = segs.iter().map(tcp_packet).collect();
        let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
        let (order, out, aggregates) = written(&mut gro, &mut bufs);
        // 46 segments of 1400 fit in 65,535 bytes with 40 of headers.
        assert_eq!(order, [0, 46]);
        assert_eq!(aggregates, 2);
        assert_eq!(out, input);
        // Small segments: 64 to a write (one iovec each).
        let segs: Vec<_> = (0..150)
            .map(|i| seg(true, i * 10, 10, TCP_FLAG_ACK))
            .collect();
        let input: Vec<_> = segs.iter().map(tcp_packet).collect();
        let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
        let (order, out, aggregates) = written(&mut gro, &mut bufs);
        assert_eq!(order, [0, 64, 128]);
        assert_eq!(aggregates, 3);
        assert_eq!(out, input);
    }

    #[test]
    fn bad_input_is_refused_or_written_alone() {
        let mut gro = TunGro::new();
        assert!(gro.coalesce(&mut [vec![0u8; 20]], 4, true).is_err());
        assert!(gro.coalesce(&mut [vec![0u8; 4]], OFFSET, true).is_err());
        // Truncated and garbage packets: alone, zero header.
        let full = tcp_packet(&seg(false, 0, 100, TCP_FLAG_ACK));
        let mut bufs: Vec<_> = (0..full.len()).map(|n| buffer(&full[..n])).collect();
        let (order, writes) = coalesced(&mut gro, &mut bufs);
        assert_eq!(order.len(), full.len());
        assert_eq!(writes, bufs);
    }

    #[test]
    fn a_udp_flow_becomes_one_aggregate_where_the_device_takes_it() {
        for v6 in [false, true] {
            let input: Vec<_> = [100, 100, 60]
                .iter()
                .enumerate()
                .map(|(k, &len)| udp_datagram(v6, (5000, k as u16), len, k as u8, None))
                .collect();
            let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
            let mut gro = TunGro::new();
            let (order, out, aggregates) = written(&mut gro, &mut bufs);
            assert_eq!((order, aggregates), (vec![0], 1));
            assert_eq!(out, input, "split back, the datagrams as they were");
            let h = hdr(&bufs[0]);
            let iph: u16 = if v6 { 40 } else { 20 };
            assert_eq!((h.hdr_len, h.gso_size), (iph + 8, 100));
            // Without UDP segmentation in the device, each goes alone.
            let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
            gro.coalesce(&mut bufs, OFFSET, false).expect("coalesce");
            assert_eq!(gro.order(), [0, 1, 2]);
            assert!(bufs.iter().all(|b| b[..OFFSET] == [0; OFFSET]));
        }
    }

    #[test]
    fn udp_runs_keep_datagram_order_and_skip_what_cannot_join() {
        let d =
            |sport: u16, id: u16, len: usize| udp_datagram(false, (sport, id), len, id as u8, None);
        let mut gro = TunGro::new();
        // A shorter datagram ends a run; the next starts another, and one of the same
        // size then joins the newest run, never the older one.
        let input = [
            d(1, 0, 100),
            d(1, 1, 100),
            d(1, 2, 50),
            d(1, 3, 100),
            d(1, 4, 100),
        ];
        let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
        let (order, out, aggregates) = written(&mut gro, &mut bufs);
        assert_eq!((order, aggregates), (vec![0, 3], 2));
        assert_eq!(out, input);
        // A longer one does not follow a shorter one; other flows interleave.
        let input = [
            d(1, 0, 50),
            d(2, 0, 80),
            d(1, 1, 100),
            d(2, 1, 80),
            d(1, 2, 50),
        ];
        let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
        let (order, out, _) = written(&mut gro, &mut bufs);
        assert_eq!(order, [0, 1, 2]);
        let sport = |p: &Vec<u8>| u16::from_be_bytes([p[20], p[21]]);
        for port in [1, 2] {
            let a: Vec<_> = input.iter().filter(|p| sport(p) == port).collect();
            let b: Vec<_> = out.iter().filter(|p| sport(p) == port).collect();
            assert_eq!(a, b, "flow {port} in order");
        }
        // No checksum (zero), a wrong one, TCP and UDP of the same ports: alone.
        let input = [
            d(1, 0, 100),
            udp_datagram(false, (1, 9), 100, 1, Some(0)),
            d(1, 1, 100),
            udp_datagram(false, (1, 9), 100, 3, Some(0x1234)),
            d(1, 2, 100),
        ];
        let mut bufs: Vec<_> = input.iter().map(|p| buffer(p)).collect();
        let (order, out, aggregates) = written(&mut gro, &mut bufs);
        assert_eq!(order, [0, 1, 3]);
        assert_eq!(aggregates, 1, "the bad ones did not break the run");
        let want: Vec<_> = [0, 2, 4, 1, 3].iter().map(|&i| input[i].clone()).collect();
        assert_eq!(out, want);
    }

    /// A stream of 1-3 flows, interleaved.
    fn stream() -> impl Strategy<Value = (Vec<Seg>, Vec<Option<u8>>)> {
        let flow = (any::<bool>(), 64usize..1400, 1usize..60, any::<u32>());
        (
            prop::collection::vec(flow, 1..=3),
            prop::collection::vec((0u8..20, 0u8..20, 0u8..20, any::<u8>()), 200),
        )
            .prop_map(|(flows, dice)| {
                let mut segs: Vec<Vec<Seg>> = Vec::new();
                for (f, &(v6, mss, count, seq0)) in flows.iter().enumerate() {
                    let mut seq = seq0;
                    let mut list = Vec::new();
                    for k in 0..count {
                        let (size_die, flag_die, bad_die, fill) = dice[(f * 60 + k) % 200];
                        let len = if size_die < 4 {
                            1 + usize::from(fill) % mss
                        } else {
                            mss
                        };
                        let mut flags = TCP_FLAG_ACK;
                        if flag_die < 3 {
                            flags |= TCP_FLAG_PSH;
                        }
                        if k + 1 == count && flag_die % 2 == 0 {
                            flags |= FIN;
                        }
                        let payload = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                        list.push(Seg {
                            v6,
                            flow: f as u8,
                            seq,
                            ack: 1,
                            flags,
                            id: k as u16,
                            payload,
                            bad_csum: bad_die == 0,
                        });
                        seq = seq.wrapping_add(len as u32);
                    }
                    segs.push(list);
                }
                // Interleave: pick the next flow by the dice; UDP now and then.
                let mut out = Vec::new();
                let mut tags = Vec::new();
                let mut next = vec![0; segs.len()];
                let mut d = 0;
                while next.iter().zip(&segs).any(|(n, s)| *n < s.len()) {
                    let (a, _, _, b) = dice[d % 200];
                    d += 1;
                    if a == 19 {
                        tags.push(None);
                        out.push(Seg {
                            flow: b,
                            ..seg(false, 0, 0, 0)
                        });
                        continue;
                    }
                    let f = usize::from(b) % segs.len();
                    if next[f] < segs[f].len() {
                        out.push(segs[f][next[f]].clone());
                        tags.push(Some(f as u8));
                        next[f] += 1;
                    }
                }
                (out, tags)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn split_aggregates_give_back_the_stream(input in stream()) {
            let (segs, tags) = input;
            // UDP: ports 53 and 54 with valid checksums, of 40 or 60 bytes (runs form
            // and break), numbered per port as the kernel numbers an aggregate's
            // segments; port 55 without a checksum (always alone).
            let mut ids = [0u16; 3];
            let packets: Vec<Vec<u8>> = segs
                .iter()
                .zip(&tags)
                .map(|(s, t)| {
                    if t.is_some() {
                        return tcp_packet(s);
                    }
                    let port = usize::from(s.flow % 3);
                    let len = 40 + usize::from(s.flow / 3 % 2) * 20;
                    let csum = (port == 2).then_some(0);
                    ids[port] += 1;
                    udp_datagram(false, (53 + port as u16, ids[port]), len, s.flow, csum)
                })
                .collect();
            let mut bufs: Vec<_> = packets.iter().map(|p| buffer(p)).collect();
            let mut gro = TunGro::new();
            let (order, out, aggregates) = written(&mut gro, &mut bufs);
            // Two full-sized ACK segments in a row of a flow, both intact: they are in
            // an aggregate.
            let mss: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
            let mergeable = (0..segs.len()).any(|a| {
                let Some(f) = tags[a] else { return false };
                let Some(b) = (a + 1..segs.len()).find(|&b| tags[b] == Some(f)) else {
                    return false;
                };
                let full = |i: usize| segs[..i].iter().zip(&tags).filter(|(_, t)| **t == Some(f)).map(|(s, _)| s.payload.len()).chain(mss.get(i).copied()).max() == Some(mss[i]);
                segs[a].flags == TCP_FLAG_ACK
                    && segs[b].flags == TCP_FLAG_ACK
                    && !segs[a].bad_csum
                    && !segs[b].bad_csum
                    && mss[a] == mss[b]
                    && full(a)
            });
            prop_assert!(!mergeable || aggregates > 0);
            // Written where their first segment was, in order.
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(order.first(), Some(&0));
            // Nothing lost or duplicated, byte for byte, in order per flow (and the
            // UDP packets in theirs): a corrupt segment cannot match once split
            // (gso_split recomputes checksums), so none was inside an aggregate.
            prop_assert_eq!(out.len(), packets.len());
            let key = |p: &[u8]| -> (u8, u16) {
                let iph = if p[0] >> 4 == 6 { 40 } else { 20 };
                (p[0] >> 4, u16::from_be_bytes([p[iph], p[iph + 1]]))
            };
            let mut flows: Vec<(u8, u16)> = packets.iter().map(|p| key(p)).collect();
            flows.sort_unstable();
            flows.dedup();
            for f in flows {
                let a: Vec<_> = packets.iter().filter(|p| key(p) == f).collect();
                let b: Vec<_> = out.iter().filter(|p| key(p) == f).collect();
                prop_assert_eq!(a, b);
            }
            // The state is reused: a second batch sees an empty table.
            let mut again: Vec<_> = packets.iter().map(|p| buffer(p)).collect();
            let (_, out2, _) = written(&mut gro, &mut again);
            prop_assert_eq!(out2.len(), packets.len());
        }
    }
}
