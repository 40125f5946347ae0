//! Packet and drop counters, per SA and global.
//!
//! Every packet the engine refuses is counted under one [`DropReason`]; nothing is
//! logged per packet. The shapes here are what `palisade stats` will print.

/// Why a packet was dropped. The order is stable: it indexes the counter arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// No inbound SA has this SPI (and destination).
    UnknownSpi,
    /// The sequence number was already received or is left of the window.
    Replay,
    /// The ICV did not verify.
    Integrity,
    /// The padding bytes were not the monotonic sequence RFC 4303 §2.4 requires.
    BadPadding,
    /// The Next Header value does not fit the SA's mode or the inner packet.
    BadNextHeader,
    /// The SA's hard lifetime is over (or its sequence numbers are used up).
    LifetimeExpired,
    /// The packet's headers are inconsistent.
    Malformed,
    /// The packet is shorter than its headers, IV and ICV.
    TooShort,
    /// A dummy packet (Next Header 59, RFC 4303 §2.6): discarded by design.
    Dummy,
    /// RFC 6040: CE on the outer header of a Not-ECT inner packet must be dropped.
    EcnConflict,
    /// The caller's buffer lacks the headroom or tailroom the SA needs.
    NoRoom,
    /// An IP fragment offered to a transport-mode SA, which protects whole packets only
    /// (RFC 4303 §3.3.4); the datagram was larger than the path into the SA.
    Fragment,
    /// Protected, the packet would be longer than an IP packet can be.
    TooLong,
}

impl DropReason {
    /// Number of reasons; the length of every counter array.
    pub const COUNT: usize = 13;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::UnknownSpi,
        DropReason::Replay,
        DropReason::Integrity,
        DropReason::BadPadding,
        DropReason::BadNextHeader,
        DropReason::LifetimeExpired,
        DropReason::Malformed,
        DropReason::TooShort,
        DropReason::Dummy,
        DropReason::EcnConflict,
        DropReason::NoRoom,
        DropReason::Fragment,
        DropReason::TooLong,
    ];

    /// A stable snake_case name, used by `palisade stats` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::Replay => "replay",
            DropReason::Integrity => "integrity",
            DropReason::BadPadding => "bad_padding",
            DropReason::BadNextHeader => "bad_next_header",
            DropReason::LifetimeExpired => "lifetime_expired",
            DropReason::Malformed => "malformed",
            DropReason::TooShort => "too_short",
            DropReason::Dummy => "dummy",
            DropReason::EcnConflict => "ecn_conflict",
            DropReason::NoRoom => "no_room",
            DropReason::Fragment => "fragment",
            DropReason::TooLong => "too_long",
        }
    }
}

/// Drops by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl DropCounters {
    /// Counts one drop.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        let slot = &mut self.counts[reason as usize];
        *slot = slot.wrapping_add(1);
    }

    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }

    /// (reason, count) pairs, in counter order, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// What one SA has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets protected (outbound) or accepted (inbound).
    pub packets: u64,
    /// Inner bytes protected or accepted.
    pub bytes: u64,
    /// Packets that reached this SA and were dropped.
    pub drops: DropCounters,
}
