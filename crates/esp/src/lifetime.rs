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
#[derive(Debug, Clone)]
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
}

impl LifetimeTracker {
    /// Starts tracking an SA created at `now`.
    ///
    /// `lifetime` is not validated here (see [`Lifetime::validate`]); with
    /// a soft limit at or above its hard limit the hard limit simply wins.
    pub fn new(lifetime: Lifetime, now: Instant) -> Self {
        Self {
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
        }
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
            self.hard_expired = true;
            return Expiry::HardExpired;
        }
        let hard = self.limits.hard;
        // An overflowing sum is beyond any limit.
        let new_bytes = self.bytes.checked_add(bytes);
        let new_packets = self.packets.checked_add(1);
        if over(new_bytes, hard.bytes) || over(new_packets, hard.packets) {
            self.hard_expired = true;
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
            self.hard_expired = true;
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
            self.hard_expired = true;
            return Expiry::HardExpired;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(1);
        if self.soft_signalled {
            Expiry::SoftExpired
        } else if self.soft_at.is_some_and(|at| now >= at) {
            self.soft_signalled = true;
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
            self.soft_signalled = true;
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
