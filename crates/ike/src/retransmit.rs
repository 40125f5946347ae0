//! Retransmission of our outstanding request (RFC 7296 §2.1, §2.4): the
//! same bytes again after a timeout that doubles each time, until the
//! peer answers or we give up.

use std::time::{Duration, Instant};

/// When to resend and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Wait before the first retransmission; doubled after each.
    pub initial_timeout: Duration,
    /// Retransmissions before giving up (the request is sent this many
    /// times plus one).
    pub max_retransmits: u32,
    /// Give up after this long even with retransmissions left. The main-mode
    /// policy's `retransmit_duration_secs`, when not 0, replaces it.
    pub max_duration: Duration,
}

impl Default for RetransmitConfig {
    /// 0.5 s doubling, 5 retransmissions: the peer is declared dead about
    /// 31.5 s after the first send.
    fn default() -> Self {
        Self {
            initial_timeout: Duration::from_millis(500),
            max_retransmits: 5,
            max_duration: Duration::from_secs(60),
        }
    }
}

/// What the outstanding request is for, to know what its response means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    IkeSaInit,
    IkeAuth,
    /// An IKE_INTERMEDIATE request (RFC 9242).
    IkeIntermediate,
    DeleteIkeSa,
    /// Deleting the CHILD_SA whose inbound SPI (ours) is this.
    DeleteChildSa(u32),
    Liveness,
    /// A CREATE_CHILD_SA request; what it asks for is kept by
    /// [`crate::rekey::Rekeys`].
    CreateChildSa,
}

/// The request we wait a response for (window size 1).
#[derive(Debug, Clone)]
pub(crate) struct Outstanding {
    pub message_id: u32,
    pub bytes: Vec<u8>,
    pub purpose: Purpose,
    first_sent: Instant,
    next_at: Instant,
    interval: Duration,
    retransmits: u32,
}

/// The verdict of a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Not yet.
    Wait,
    /// Send the bytes again.
    Resend,
    /// The peer is gone.
    GiveUp,
}

impl Outstanding {
    pub fn new(
        message_id: u32,
        bytes: Vec<u8>,
        purpose: Purpose,
        now: Instant,
        config: &RetransmitConfig,
    ) -> Self {
        Self {
            message_id,
            bytes,
            purpose,
            first_sent: now,
            next_at: now + config.initial_timeout,
            interval: config.initial_timeout,
            retransmits: 0,
        }
    }

    /// When [`Outstanding::on_timeout`] next has something to do.
    pub fn deadline(&self) -> Instant {
        self.next_at
    }

    pub fn on_timeout(&mut self, now: Instant, config: &RetransmitConfig) -> Timeout {
        if now < self.next_at {
            return Timeout::Wait;
        }
        if self.retransmits >= config.max_retransmits
            || now.saturating_duration_since(self.first_sent) >= config.max_duration
        {
            return Timeout::GiveUp;
        }
        self.retransmits += 1;
        self.interval = self.interval.saturating_mul(2);
        // Never past the overall limit, so giving up happens on time.
        let give_up_at = self.first_sent + config.max_duration;
        self.next_at = (now + self.interval).min(give_up_at);
        Timeout::Resend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_then_gives_up() {
        let config = RetransmitConfig::default();
        let t0 = Instant::now();
        let mut o = Outstanding::new(0, vec![1], Purpose::IkeSaInit, t0, &config);
        let mut resends = Vec::new();
        let gave_up_at = loop {
            let now = o.deadline();
            match o.on_timeout(now, &config) {
                Timeout::Resend => resends.push(now - t0),
                Timeout::GiveUp => break now,
                Timeout::Wait => unreachable!("called at the deadline"),
            }
        };
        let ms: Vec<u128> = resends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1500, 3500, 7500, 15500]);
        assert_eq!((gave_up_at - t0).as_millis(), 31500);
    }

    #[test]
    fn the_overall_limit_cuts_the_back_off_short() {
        let config = RetransmitConfig {
            max_duration: Duration::from_secs(2),
            ..RetransmitConfig::default()
        };
        let t0 = Instant::now();
        let mut o = Outstanding::new(0, vec![1], Purpose::Liveness, t0, &config);
        assert_eq!(
            o.on_timeout(t0 + Duration::from_millis(100), &config),
            Timeout::Wait
        );
        assert_eq!(o.on_timeout(o.deadline(), &config), Timeout::Resend);
        assert_eq!(o.on_timeout(o.deadline(), &config), Timeout::Resend);
        assert_eq!(o.deadline() - t0, Duration::from_secs(2));
        assert_eq!(o.on_timeout(o.deadline(), &config), Timeout::GiveUp);
    }
}
