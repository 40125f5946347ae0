//! Putting IP datagrams back together from the fragments the TUN hands over: cut by the
//! host's own stack to the TUN's MTU, or forwarded as fragments by a gateway (RFC 791
//! §3.2 for IPv4, RFC 8200 §4.5 for IPv6).
//!
//! Why a data plane reassembles at all: transport-mode ESP protects whole datagrams only
//! (RFC 4303 §3.3.4), and only a whole datagram shows the ports policy is written in. A
//! later fragment classified on its own would miss a filter that names ports and could
//! leave in clear. So every fragment read from the TUN is gathered here first, and the
//! datagram is classified and protected whole; the daemon then cuts the result to its
//! TUN's MTU again (`fragmentation`).
//!
//! The rules, which are Linux's (`net/ipv4/ip_fragment.c`, `net/ipv6/reassembly.c`):
//! - a datagram is keyed by source, destination, identification and, for IPv4, protocol;
//! - a fragment that overlaps another, even a duplicate, drops the whole datagram
//!   (RFC 5722 for IPv6; Linux does the same for IPv4 since 4.19);
//! - a datagram not complete within [`ReassemblyLimits::timeout`] is dropped;
//! - a bounded number of datagrams are in progress, each at most
//!   [`ReassemblyLimits::max_len`] bytes; a new one when all are taken evicts the oldest.
//!
//! All memory is taken in [`Reassembly::new`]: nothing is allocated per fragment. It is
//! one zeroed allocation for every slot, large enough that the allocator maps fresh
//! pages for it (glibc: anything over its mmap threshold, 128 KiB at first), so with a
//! `max_len` of IP's own limit (64 KiB) only the pages datagrams reach become resident.

use core::ops::Range;
use std::time::{Duration, Instant};

use palisade_wire::{ExtChain, IPV6_HEADER_LEN, IpVersion, Ipv4Header, ip_version, proto};

/// Longest unfragmentable part (the IPv4 header, or the IPv6 header and the extension
/// headers before the Fragment header) a datagram may have.
pub const MAX_FRONT: usize = 256;

/// Most separate runs of data one datagram may be in while incomplete. Fragments that
/// touch are merged into one run, so in-order fragments of any number use one.
const MAX_RUNS: usize = 16;

/// How much a reassembly may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Datagrams in progress at once.
    pub datagrams: usize,
    /// Longest datagram, headers included.
    pub max_len: usize,
    /// How long a datagram may take to complete, from its first fragment.
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    /// 32 datagrams of any length IP allows (an IPv6 header and a 65,535-byte payload),
    /// 30 s: Linux's `ipfrag_time`.
    fn default() -> Self {
        ReassemblyLimits {
            datagrams: 32,
            max_len: IPV6_HEADER_LEN + usize::from(u16::MAX),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why fragments were dropped, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyDrop {
    /// Not complete within the timeout.
    #[error("the datagram was not complete in time")]
    Timeout,
    /// Evicted to make room for a newer datagram.
    #[error("evicted: too many datagrams in progress")]
    Evicted,
    /// Two fragments overlapped.
    #[error("fragments overlap")]
    Overlap,
    /// The datagram would be longer than the limit.
    #[error("the datagram is too long to reassemble")]
    TooLong,
    /// The datagram came in more separate pieces than are tracked.
    #[error("too many separate fragments")]
    TooManyPieces,
    /// Not a well-formed fragment.
    #[error("malformed fragment: {0}")]
    Malformed(&'static str),
}

impl ReassemblyDrop {
    /// Number of reasons.
    pub const COUNT: usize = 6;

    /// Every reason, in counter order.
    pub const ALL: [ReassemblyDrop; Self::COUNT] = [
        ReassemblyDrop::Timeout,
        ReassemblyDrop::Evicted,
        ReassemblyDrop::Overlap,
        ReassemblyDrop::TooLong,
        ReassemblyDrop::TooManyPieces,
        ReassemblyDrop::Malformed(""),
    ];

    /// The counter name.
    pub fn name(&self) -> &'static str {
        match self {
            ReassemblyDrop::Timeout => "reassembly_timeout",
            ReassemblyDrop::Evicted => "reassembly_evicted",
            ReassemblyDrop::Overlap => "reassembly_overlap",
            ReassemblyDrop::TooLong => "reassembly_too_long",
            ReassemblyDrop::TooManyPieces => "reassembly_pieces",
            ReassemblyDrop::Malformed(_) => "reassembly_malformed",
        }
    }

    fn index(&self) -> usize {
        match self {
            ReassemblyDrop::Timeout => 0,
            ReassemblyDrop::Evicted => 1,
            ReassemblyDrop::Overlap => 2,
            ReassemblyDrop::TooLong => 3,
            ReassemblyDrop::TooManyPieces => 4,
            ReassemblyDrop::Malformed(_) => 5,
        }
    }
}

/// What [`Reassembly::push`] did with a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Kept; the datagram is not complete yet.
    Held,
    /// The datagram is complete: its `usize` bytes are at the start of `out`.
    Complete(usize),
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        id: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        id: u32,
    },
}

/// One fragment, read.
struct Fragment<'a> {
    key: Key,
    /// Where the data goes within the fragmentable part.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// The unfragmentable part, from a first fragment only.
    front: Option<Front<'a>>,
}

/// What a first fragment says about the whole datagram's header.
struct Front<'a> {
    bytes: &'a [u8],
    /// IPv6: where the Next Header octet that named the Fragment header is, and what
    /// the Fragment header said comes next.
    next_header: Option<(usize, u8)>,
}

/// A datagram in progress.
struct Pending {
    key: Key,
    since: Instant,
    front: [u8; MAX_FRONT],
    /// `front`'s length: 0 until the first fragment came (a header is never empty).
    front_len: usize,
    /// IPv6: the Next Header octet to patch, and its value.
    next_header: Option<(usize, u8)>,
    /// Length of the fragmentable part, once the last fragment came.
    total: Option<usize>,
    runs: [Range<usize>; MAX_RUNS],
    run_count: usize,
}

impl Pending {
    /// The longest the datagram may be, headers included, once its first fragment
    /// came: `max_len`, and what its header can state (IPv4's total length, IPv6's
    /// payload length, 16 bits each; Linux refuses the same, `ip_frag_reasm`).
    fn limit(&self, max_len: usize) -> usize {
        let ip = match self.next_header {
            None => usize::from(u16::MAX),
            Some(_) => IPV6_HEADER_LEN + usize::from(u16::MAX),
        };
        max_len.min(ip)
    }

    fn received(&self) -> usize {
        self.runs[..self.run_count].iter().map(|r| r.len()).sum()
    }

    /// Records `range` as received; refuses an overlap, and merges with runs it touches.
    fn add_run(&mut self, range: Range<usize>) -> Result<(), ReassemblyDrop> {
        let runs = &mut self.runs[..self.run_count];
        if runs
            .iter()
            .any(|r| range.start < r.end && r.start < range.end)
        {
            return Err(ReassemblyDrop::Overlap);
        }
        let mut merged = range;
        let mut kept = 0;
        for i in 0..self.run_count {
            let r = self.runs[i].clone();
            if r.end == merged.start || r.start == merged.end {
                merged = merged.start.min(r.start)..merged.end.max(r.end);
            } else {
                self.runs[kept] = r;
                kept += 1;
            }
        }
        if kept == MAX_RUNS {
            return Err(ReassemblyDrop::TooManyPieces);
        }
        self.runs[kept] = merged;
        self.run_count = kept + 1;
        Ok(())
    }
}

/// The datagrams in progress, and counts of what was dropped.
pub struct Reassembly {
    limits: ReassemblyLimits,
    /// The datagrams in progress.
    slots: Vec<Option<Pending>>,
    /// Each slot's fragmentable part: slot `i`'s is the `max_len` bytes from
    /// `i * max_len`.
    buffer: Box<[u8]>,
    /// How many slots hold a datagram: [`Reassembly::expire`] runs at every data-plane
    /// wake-up and returns at once when none does, instead of reading every slot.
    in_progress: usize,
    drops: [u64; ReassemblyDrop::COUNT],
    reassembled: u64,
}

impl Reassembly {
    /// Room for `limits.datagrams` datagrams of `limits.max_len` bytes, taken now.
    pub fn new(limits: ReassemblyLimits) -> Reassembly {
        let datagrams = limits.datagrams.max(1);
        Reassembly {
            limits,
            slots: (0..datagrams).map(|_| None).collect(),
            buffer: vec![0u8; datagrams * limits.max_len].into_boxed_slice(),
            in_progress: 0,
            drops: [0; ReassemblyDrop::COUNT],
            reassembled: 0,
        }
    }

    /// Whether `packet` is an IPv4 or IPv6 fragment, which [`Reassembly::push`] wants.
    /// Cheap on what is not: two header bytes, or IPv6's first Next Header.
    pub fn is_fragment(packet: &[u8]) -> bool {
        match packet.first().map(|b| b >> 4) {
            Some(4) => packet
                .get(6..8)
                .is_some_and(|w| u16::from_be_bytes([w[0], w[1]]) & 0x3fff != 0),
            Some(6) => match packet.get(6) {
                Some(&proto::IPV6_FRAG) => true,
                Some(&(proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS)) => {
                    ExtChain::walk(packet).is_ok_and(|c| c.find(proto::IPV6_FRAG).is_some())
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Takes one fragment at `now`. When it completes its datagram, the datagram is
    /// written to the start of `out` (which must hold [`ReassemblyLimits::max_len`]
    /// bytes) and its slot freed. A refused fragment is counted and, for an overlap or
    /// a datagram grown too long, its whole datagram dropped.
    pub fn push(
        &mut self,
        packet: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<Pushed, ReassemblyDrop> {
        self.expire(now);
        let result = self.push_inner(packet, now, out);
        if let Err(e) = &result {
            self.drops[e.index()] += 1;
        }
        result
    }

    fn push_inner(
        &mut self,
        packet: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<Pushed, ReassemblyDrop> {
        let f = read_fragment(packet)?;
        let max_len = self.limits.max_len;
        let end = f.offset + f.data.len();
        if end > max_len {
            self.forget(f.key);
            return Err(ReassemblyDrop::TooLong);
        }
        if f.more && f.data.len() % 8 != 0 {
            // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200).
            return Err(ReassemblyDrop::Malformed("a non-final fragment's length"));
        }
        let index = match self.find(f.key) {
            Some(i) => i,
            None => self.start(f.key, now),
        };
        let at = index * max_len;
        let data = &mut self.buffer[at..at + max_len];
        let Some(p) = self.slots[index].as_mut() else {
            return Err(ReassemblyDrop::Malformed("no slot"));
        };
        if let Err(e) = take(p, data, &f, max_len) {
            self.release(index);
            return Err(e);
        }
        let Some(total) = p.total else {
            return Ok(Pushed::Held);
        };
        if p.front_len == 0 || p.received() != total {
            return Ok(Pushed::Held);
        }
        let len = p.front_len + total;
        let Some(dst) = out.get_mut(..len) else {
            self.release(index);
            return Err(ReassemblyDrop::TooLong);
        };
        dst[..p.front_len].copy_from_slice(&p.front[..p.front_len]);
        dst[p.front_len..].copy_from_slice(&data[..total]);
        finish_header(dst, p.front_len, p.next_header);
        self.release(index);
        self.reassembled += 1;
        Ok(Pushed::Complete(len))
    }

    /// Drops the datagrams older than the timeout, counting them.
    pub fn expire(&mut self, now: Instant) {
        if self.in_progress == 0 {
            return;
        }
        let timeout = self.limits.timeout;
        for i in 0..self.slots.len() {
            if self.slots[i]
                .as_ref()
                .is_some_and(|p| now.saturating_duration_since(p.since) >= timeout)
            {
                self.release(i);
                self.drops[ReassemblyDrop::Timeout.index()] += 1;
            }
        }
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.in_progress
    }

    /// Datagrams completed since the start.
    pub fn reassembled(&self) -> u64 {
        self.reassembled
    }

    /// Fragments refused and datagrams dropped, by reason, since the start.
    pub fn drops(&self) -> impl Iterator<Item = (ReassemblyDrop, u64)> + '_ {
        ReassemblyDrop::ALL
            .iter()
            .map(|r| (*r, self.drops[r.index()]))
    }

    fn find(&self, key: Key) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|p| p.key == key))
    }

    /// Forgets the datagram `key` if one is in progress (its fragment was refused).
    fn forget(&mut self, key: Key) {
        if let Some(i) = self.find(key) {
            self.release(i);
        }
    }

    /// A slot for a new datagram: a free one, or the oldest's (counted as evicted).
    fn start(&mut self, key: Key, now: Instant) -> usize {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let oldest = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref().map(|p| (i, p.since)))
                    .min_by_key(|(_, since)| *since)
                    .map_or(0, |(i, _)| i);
                self.release(oldest);
                self.drops[ReassemblyDrop::Evicted.index()] += 1;
                oldest
            }
        };
        self.slots[index] = Some(Pending {
            key,
            since: now,
            front: [0; MAX_FRONT],
            front_len: 0,
            next_header: None,
            total: None,
            runs: core::array::from_fn(|_| 0..0),
            run_count: 0,
        });
        self.in_progress += 1;
        index
    }

    fn release(&mut self, index: usize) {
        if self.slots[index].take().is_some() {
            self.in_progress -= 1;
        }
    }
}

/// Puts fragment `f` into datagram `p`, its data into `data`.
fn take(
    p: &mut Pending,
    data: &mut [u8],
    f: &Fragment<'_>,
    max_len: usize,
) -> Result<(), ReassemblyDrop> {
    let end = f.offset + f.data.len();
    if !f.more {
        if p.total.is_some_and(|t| t != end) {
            return Err(ReassemblyDrop::Malformed("two last fragments"));
        }
        if p.runs[..p.run_count].iter().any(|r| r.end > end) {
            return Err(ReassemblyDrop::Malformed("data past the last fragment"));
        }
        p.total = Some(end);
    } else if p.total.is_some_and(|t| end > t) {
        return Err(ReassemblyDrop::Malformed("data past the last fragment"));
    }
    if let Some(front) = &f.front {
        if p.front_len != 0 {
            return Err(ReassemblyDrop::Overlap);
        }
        p.front[..front.bytes.len()].copy_from_slice(front.bytes);
        p.front_len = front.bytes.len();
        p.next_header = front.next_header;
    }
    if p.front_len != 0 && p.front_len + p.total.unwrap_or(end).max(end) > p.limit(max_len) {
        return Err(ReassemblyDrop::TooLong);
    }
    p.add_run(f.offset..end)?;
    data[f.offset..end].copy_from_slice(f.data);
    Ok(())
}

/// Reads a fragment's key, place and data.
fn read_fragment(packet: &[u8]) -> Result<Fragment<'_>, ReassemblyDrop> {
    let malformed = ReassemblyDrop::Malformed;
    match ip_version(packet).map_err(|_| malformed("not IP"))? {
        IpVersion::V4 => {
            let h = Ipv4Header::parse(packet).map_err(|_| malformed("IPv4 header"))?;
            if !h.is_fragment() {
                return Err(malformed("not a fragment"));
            }
            let offset = usize::from(h.fragment_offset) * 8;
            let data = &packet[h.payload_range()];
            Ok(Fragment {
                key: Key::V4 {
                    src: h.src,
                    dst: h.dst,
                    protocol: h.protocol,
                    id: h.identification,
                },
                offset,
                more: h.more_fragments,
                data,
                front: (offset == 0).then(|| Front {
                    bytes: &packet[..h.header_len],
                    next_header: None,
                }),
            })
        }
        IpVersion::V6 => {
            let chain = ExtChain::walk(packet).map_err(|_| malformed("IPv6 header chain"))?;
            let (index, frag) = chain
                .find(proto::IPV6_FRAG)
                .ok_or(malformed("no Fragment header"))?;
            let fields = packet
                .get(frag.offset..frag.offset + 8)
                .ok_or(malformed("Fragment header"))?;
            let word = u16::from_be_bytes([fields[2], fields[3]]);
            let id = u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]);
            let offset = usize::from(word & 0xfff8);
            let more = word & 1 != 0;
            if offset == 0 && !more {
                // An atomic fragment (RFC 6946): a whole datagram already.
                return Err(malformed("an atomic fragment"));
            }
            let end = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            let data = packet
                .get(frag.end()..end)
                .ok_or(malformed("IPv6 payload length"))?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&packet[8..24]);
            dst.copy_from_slice(&packet[24..40]);
            if frag.offset > MAX_FRONT {
                return Err(malformed("unfragmentable part too long"));
            }
            let next_header_at = chain.next_header_field_offset(index.checked_sub(1));
            Ok(Fragment {
                key: Key::V6 { src, dst, id },
                offset,
                more,
                data,
                front: (offset == 0).then(|| Front {
                    bytes: &packet[..frag.offset],
                    next_header: Some((next_header_at, frag.next_header)),
                }),
            })
        }
    }
}

/// Makes the first fragment's header the whole datagram's: no fragment fields, the
/// whole length (and for IPv4 a fresh checksum).
fn finish_header(datagram: &mut [u8], front_len: usize, next_header: Option<(usize, u8)>) {
    let len = datagram.len();
    match next_header {
        None => {
            datagram[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            // Keep DF and the reserved bit as they were; MF and the offset go.
            datagram[6] &= 0xc0;
            datagram[7] = 0;
            let sum = palisade_wire::ipv4_header_checksum(&datagram[..front_len]);
            datagram[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        Some((at, value)) => {
            datagram[at] = value;
            let payload = (len - IPV6_HEADER_LEN) as u16;
            datagram[4..6].copy_from_slice(&payload.to_be_bytes());
        }
    }
}
