//! SA lifetimes (RFC 4301 §4.4.2.1): soft and hard limits on bytes,
//! packets and time.
//!
//! A soft limit warns that the SA should be replaced (rekeyed); a hard
//! limit ends it. Whichever limit is reached first takes effect. The
//! library is sans-IO, so the caller supplies every `now`; nothing here
//! reads a clock.

use std::time::{Duration, Instant};

/// One set of limits; `None` means unlimited in that dimension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifetimeLimits {
    /// Bytes the SA may protect, counted as [`LifetimeTracker::account`]
    /// describes.
    pub bytes: Option<u64>,
    /// Packets the SA may protect.
    pub packets: Option<u64>,
    /// Time since the SA was created.
    pub time: Option<Duration>,
}

/// The soft and hard lifetime of an SA. The default is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Reaching any of these asks for a replacement SA; traffic continues.
    pub soft: LifetimeLimits,
    /// Reaching any of these ends the SA; no further traffic is allowed.
    pub hard: LifetimeLimits,
}

/// A soft limit that would not fire before its hard counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    /// The soft byte limit is not below the hard byte limit.
    #[error("soft byte limit {soft} is not below the hard byte limit {hard}")]
    Bytes {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// The soft packet limit is not below the hard packet limit.
    #[error("soft packet limit {soft} is not below the hard packet limit {hard}")]
    Packets {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// The soft time limit is not below the hard time limit.
    #[error("soft time limit {soft:?} is not below the hard time limit {hard:?}")]
    Time {
        /// The soft limit.
        soft: Duration,
        /// The hard limit.
        hard: Duration,
    },
}

impl Lifetime {
    /// Checks that every soft limit lies strictly below its hard limit
    /// where both are set: otherwise the SA would die without the warning
    /// that gives the key manager time to set up its replacement.
    ///
    /// # Errors
    ///
    /// The first offending dimension, in the order bytes, packets, time.
    pub fn validate(&self) -> Result<(), LifetimeError> {
        if let (Some(soft), Some(hard)) = (self.soft.bytes, self.hard.bytes)
            && soft >= hard
        {
            return Err(LifetimeError::Bytes { soft, hard });
        }
        if let (Some(soft), Some(hard)) = (self.soft.packets, self.hard.packets)
            && soft >= hard
        {
            return Err(LifetimeError::Packets { soft, hard });
        }
        if let (Some(soft), Some(hard)) = (self.soft.time, self.hard.time)
            && soft >= hard
        {
            return Err(LifetimeError::Time { soft, hard });
        }
        Ok(())
    }
}

/// The state of an SA's lifetime, as reported by [`LifetimeTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No limit reached.
    Alive,
    /// A soft limit was reached earlier and already reported as
    /// [`Expiry::NewlySoft`]; the SA is still usable.
    SoftExpired,
    /// A soft limit was reached just now: reported exactly once per
    /// tracker, so the caller starts a rekey exactly once. The SA is still
    /// usable.
    NewlySoft,
    /// A hard limit was reached: the SA must not be used any more. Once
    /// reported, always reported.
    HardExpired,
}

/// Counts an SA's traffic and age against its [`Lifetime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifetimeTracker {
    limits: Lifetime,
    created: Instant,
    bytes: u64,
    packets: u64,
    soft_signalled: bool,
    // The time limits as instants, computed once so that the per-packet check is a
    // comparison; `None` when unset or beyond what `Instant` can represent.
    soft_at: Option<Instant>,
    hard_at: Option<Instant>,
    // No byte or packet limit, soft or hard: the usual IKE SA, whose per-packet
    // accounting then reduces to two additions and the time checks.
    time_only: bool,
    // Sticky so that a smaller packet after a refused one cannot slip
    // under the byte limit, and an earlier `now` cannot revive the SA.
    hard_expired: bool,
    // The fast path's fences (see `account_fast`): while the counts after a packet stay
    // below these and `now` is before `fast_deadline`, the packet reaches no soft or hard
    // limit, so accounting it is two additions and three compares. Derived from the
    // limits and the two flags above; `refresh_fences` recomputes them whenever a flag
    // changes, and zero fences (hard-expired) send every packet to `account`.
    byte_fence: u64,
    packet_fence: u64,
    fast_deadline: Option<Instant>,
}

impl LifetimeTracker {
    /// Starts tracking an SA created at `now`.
    ///
    /// `lifetime` is not validated here (see [`Lifetime::validate`]); with
    /// a soft limit at or above its hard limit the hard limit simply wins.
    pub fn new(lifetime: Lifetime, now: Instant) -> Self {
        let mut tracker = Self {
            limits: lifetime,
            created: now,
            bytes: 0,
            packets: 0,
            soft_signalled: false,
            soft_at: lifetime.soft.time.and_then(|d| now.checked_add(d)),
            hard_at: lifetime.hard.time.and_then(|d| now.checked_add(d)),
            time_only: lifetime.soft.bytes.is_none()
                && lifetime.soft.packets.is_none()
                && lifetime.hard.bytes.is_none()
                && lifetime.hard.packets.is_none(),
            hard_expired: false,
            byte_fence: 0,
            packet_fence: 0,
            fast_deadline: None,
        };
        tracker.refresh_fences();
        tracker
    }

    /// [`account`](Self::account) for the common case, or `None` (nothing changed) when
    /// the packet may reach a limit and `account` must decide. `Some(soft)` is exactly
    /// what `account` would have done: the packet is counted and the SA is alive,
    /// `soft` saying whether a soft limit was reported before (`Expiry::SoftExpired`)
    /// or not (`Expiry::Alive`).
    #[inline(always)]
    pub(crate) fn account_fast(&mut self, bytes: u64, now: Instant) -> Option<bool> {
        // Saturating: a count at u64::MAX never passes a fence, and `account` handles it.
        let new_bytes = self.bytes.saturating_add(bytes);
        let new_packets = self.packets.saturating_add(1);
        if new_bytes < self.byte_fence
            && new_packets < self.packet_fence
            && self.fast_deadline.is_none_or(|d| now < d)
        {
            self.bytes = new_bytes;
            self.packets = new_packets;
            Some(self.soft_signalled)
        } else {
            None
        }
    }

    /// Whether one more packet of zero bytes would pass [`account_fast`](Self::account_fast),
    /// without counting it. Implies `!is_hard_expired(now)`: the fences lie at or below
    /// the hard limits and the deadline at or before the hard one.
    #[inline(always)]
    pub(crate) fn fast_alive(&self, now: Instant) -> bool {
        self.bytes < self.byte_fence
            && self.packets.saturating_add(1) < self.packet_fence
            && self.fast_deadline.is_none_or(|d| now < d)
    }

    /// Recomputes the fast path's fences from the limits and the two flags: the nearest
    /// limit that a packet could reach (soft ones only until reported), as a strict bound.
    fn refresh_fences(&mut self) {
        if self.hard_expired {
            self.byte_fence = 0;
            self.packet_fence = 0;
            self.fast_deadline = None;
            return;
        }
        let hard = self.limits.hard;
        let (soft, soft_at) = if self.soft_signalled {
            (LifetimeLimits::default(), None)
        } else {
            (self.limits.soft, self.soft_at)
        };
        let nearest = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        self.byte_fence = nearest(soft.bytes, hard.bytes);
        self.packet_fence = nearest(soft.packets, hard.packets);
        self.fast_deadline = match (soft_at, self.hard_at) {
            (Some(s), Some(h)) => Some(s.min(h)),
            (s, h) => s.or(h),
        };
    }

    /// Marks the SA hard-expired (sticky); the fences close.
    fn set_hard_expired(&mut self) {
        self.hard_expired = true;
        self.refresh_fences();
    }

    /// Records that the soft expiry was reported; the fences move to the hard limits.
    fn set_soft_signalled(&mut self) {
        self.soft_signalled = true;
        self.refresh_fences();
    }

    /// Accounts one packet before it is processed.
    ///
    /// `bytes` follows RFC 4301 §4.4.2.1: the number of bytes the
    /// cryptographic algorithm is applied to (for ESP the encryption
    /// algorithm, including padding), not the size on the wire.
    ///
    /// Returns [`Expiry::HardExpired`] without counting the packet if the
    /// hard time limit has passed or counting it would go over a hard byte
    /// or packet limit; the caller must drop it. A packet that lands
    /// exactly on a hard limit is the last one allowed.
    ///
    /// Otherwise the packet is counted and the result says whether a soft
    /// limit is reached ([`Expiry::NewlySoft`] the first time,
    /// [`Expiry::SoftExpired`] after) or not ([`Expiry::Alive`]).
    pub fn account(&mut self, bytes: u64, now: Instant) -> Expiry {
        if self.time_only {
            return self.account_time_only(bytes, now);
        }
        if self.hard_reached(now) {
            self.set_hard_expired();
            return Expiry::HardExpired;
        }
        let hard = self.limits.hard;
        // An overflowing sum is beyond any limit.
        let new_bytes = self.bytes.checked_add(bytes);
        let new_packets = self.packets.checked_add(1);
        if over(new_bytes, hard.bytes) || over(new_packets, hard.packets) {
            self.set_hard_expired();
            return Expiry::HardExpired;
        }
        // Without a hard limit an overflow cannot be refused; saturating
        // keeps the soft limits reached.
        self.bytes = new_bytes.unwrap_or(u64::MAX);
        self.packets = new_packets.unwrap_or(u64::MAX);
        self.soft_state(now)
    }

    /// Reports the current state without a packet, for timer-driven
    /// checks. Like [`account`](Self::account), it reports
    /// [`Expiry::NewlySoft`] once if a soft limit was reached since the
    /// last report.
    pub fn poll(&mut self, now: Instant) -> Expiry {
        if self.hard_reached(now) {
            self.set_hard_expired();
            return Expiry::HardExpired;
        }
        self.soft_state(now)
    }

    /// The next instant at which a time limit changes what
    /// [`poll`](Self::poll) reports: the soft deadline until the soft
    /// expiry has been reported, then the hard deadline. `None` when no
    /// time-based event is pending (no time limits, already hard-expired,
    /// or a deadline too far away to represent). A returned instant may
    /// lie in the past; the caller should then poll at once.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.hard_expired {
            return None;
        }
        let soft = if self.soft_signalled {
            None
        } else {
            self.soft_at
        };
        let hard = self.hard_at;
        match (soft, hard) {
            (Some(s), Some(h)) => Some(s.min(h)),
            (s, h) => s.or(h),
        }
    }

    /// Bytes accounted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets accounted so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// When the SA was created (the `now` given to [`new`](Self::new)).
    pub fn created(&self) -> Instant {
        self.created
    }

    /// The limits being enforced.
    pub fn lifetime(&self) -> &Lifetime {
        &self.limits
    }

    /// [`account`](Self::account) when only time limits exist: the same results, with
    /// counters that saturate since no count can be refused.
    fn account_time_only(&mut self, bytes: u64, now: Instant) -> Expiry {
        if self.hard_expired || self.hard_at.is_some_and(|at| now >= at) {
            self.set_hard_expired();
            return Expiry::HardExpired;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(1);
        if self.soft_signalled {
            Expiry::SoftExpired
        } else if self.soft_at.is_some_and(|at| now >= at) {
            self.set_soft_signalled();
            Expiry::NewlySoft
        } else {
            Expiry::Alive
        }
    }

    /// Whether the SA is past a hard limit at `now`, without reporting anything: the
    /// cheap check before spending cryptographic work on a received packet.
    pub fn is_hard_expired(&self, now: Instant) -> bool {
        self.hard_reached(now)
    }

    /// Hard-expired without looking at a next packet. A counter sitting
    /// exactly at its hard limit counts: the packet that got it there was
    /// the last one allowed.
    fn hard_reached(&self, now: Instant) -> bool {
        let hard = self.limits.hard;
        self.hard_expired
            || self.hard_at.is_some_and(|at| now >= at)
            || reached(self.bytes, hard.bytes)
            || reached(self.packets, hard.packets)
    }

    fn soft_state(&mut self, now: Instant) -> Expiry {
        if self.soft_signalled {
            return Expiry::SoftExpired;
        }
        let soft = self.limits.soft;
        let reached_now = reached(self.bytes, soft.bytes)
            || reached(self.packets, soft.packets)
            || self.soft_at.is_some_and(|at| now >= at);
        if reached_now {
            self.set_soft_signalled();
            Expiry::NewlySoft
        } else {
            Expiry::Alive
        }
    }
}

/// `value` has reached `limit` (if any).
fn reached<T: PartialOrd>(value: T, limit: Option<T>) -> bool {
    limit.is_some_and(|l| value >= l)
}

/// `value` (`None` = overflowed) goes beyond `limit` (if any).
fn over(value: Option<u64>, limit: Option<u64>) -> bool {
    limit.is_some_and(|l| value.is_none_or(|v| v > l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_without_hard_limit_saturates() {
        let now = Instant::now();
        let soft = LifetimeLimits {
            bytes: Some(u64::MAX),
            ..LifetimeLimits::default()
        };
        let mut t = LifetimeTracker::new(
            Lifetime {
                soft,
                hard: LifetimeLimits::default(),
            },
            now,
        );
        assert_eq!(t.account(u64::MAX - 1, now), Expiry::Alive);
        assert_eq!(t.account(10, now), Expiry::NewlySoft);
        assert_eq!(t.bytes(), u64::MAX);
    }

    #[test]
    fn overflow_with_hard_limit_is_refused() {
        let now = Instant::now();
        let hard = LifetimeLimits {
            bytes: Some(u64::MAX),
            ..LifetimeLimits::default()
        };
        let mut t = LifetimeTracker::new(
            Lifetime {
                soft: LifetimeLimits::default(),
                hard,
            },
            now,
        );
        assert_eq!(t.account(u64::MAX - 1, now), Expiry::Alive);
        assert_eq!(t.account(2, now), Expiry::HardExpired);
        assert_eq!(t.bytes(), u64::MAX - 1);
    }

    use proptest::prelude::*;

    fn limits() -> impl Strategy<Value = LifetimeLimits> {
        (
            proptest::option::of(0u64..400),
            proptest::option::of(0u64..8),
            proptest::option::of(0u64..5),
        )
            .prop_map(|(bytes, packets, secs)| LifetimeLimits {
                bytes,
                packets,
                time: secs.map(Duration::from_secs),
            })
    }

    proptest! {
        /// `account_fast` either leaves the tracker alone (`None`) or does exactly what
        /// `account` does, with `Alive` or `SoftExpired`; whatever `account` and `poll`
        /// did before (the fences follow the flags they set).
        #[test]
        fn account_fast_is_account_or_nothing(
            soft in limits(),
            hard in limits(),
            steps in proptest::collection::vec((0u64..120, 0u64..1500, 0u8..4), 1..40),
        ) {
            let t0 = Instant::now();
            let mut general = LifetimeTracker::new(Lifetime { soft, hard }, t0);
            let mut now = t0;
            for (bytes, ms, op) in steps {
                now += Duration::from_millis(ms);
                let before = general.clone();
                let mut fast = general.clone();
                match op {
                    0 => {
                        general.poll(now);
                        continue;
                    }
                    1 => {
                        let alive = fast.fast_alive(now);
                        prop_assert!(!alive || !general.is_hard_expired(now));
                    }
                    _ => {}
                }
                let expiry = general.account(bytes, now);
                match fast.account_fast(bytes, now) {
                    None => prop_assert_eq!(&fast, &before),
                    Some(soft) => {
                        let want = if soft { Expiry::SoftExpired } else { Expiry::Alive };
                        prop_assert_eq!(expiry, want);
                        prop_assert_eq!(&fast, &general);
                    }
                }
            }
        }
    }

    #[test]
    fn unrepresentable_deadline_is_none() {
        let now = Instant::now();
        let hard = LifetimeLimits {
            time: Some(Duration::MAX),
            ..LifetimeLimits::default()
        };
        let t = LifetimeTracker::new(
            Lifetime {
                soft: LifetimeLimits::default(),
                hard,
            },
            now,
        );
        assert_eq!(t.next_deadline(), None);
    }
}
