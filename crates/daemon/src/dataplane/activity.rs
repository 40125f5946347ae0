//! Which IKE SAs carried traffic, told to the keying thread at most once a second per
//! IKE SA and direction: outbound ESP in UDP keeps NAT keepalives quiet, inbound ESP
//! postpones dead peer detection. Both only need to know "recently", and a channel
//! message per packet would wake the keying thread at the packet rate.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use palisade_ike::IkeSaId;

/// How often each IKE SA's activity is reported, at most.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// When each IKE SA's activity was last reported, in one direction.
#[derive(Debug, Default)]
pub(super) struct ActivityReports {
    sent: HashMap<IkeSaId, Instant>,
    /// The last SA asked about and when it was reported: a run of packets of one SA
    /// (the common case) costs a comparison, not a hash lookup.
    last: Option<(IkeSaId, Instant)>,
}

impl ActivityReports {
    /// Whether activity on `ike_sa` at `now` should be reported (and, if so, notes it as
    /// reported).
    pub fn due(&mut self, ike_sa: IkeSaId, now: Instant) -> bool {
        if let Some((id, at)) = self.last
            && id == ike_sa
            && now.saturating_duration_since(at) < REPORT_EVERY
        {
            return false;
        }
        let (due, at) = match self.sent.entry(ike_sa) {
            Entry::Vacant(e) => (true, *e.insert(now)),
            Entry::Occupied(mut e) => {
                if now.saturating_duration_since(*e.get()) >= REPORT_EVERY {
                    e.insert(now);
                    (true, now)
                } else {
                    (false, *e.get())
                }
            }
        };
        self.last = Some((ike_sa, at));
        due
    }

    /// Forgets IKE SAs not reported for a while (rekeyed or deleted ones).
    pub fn prune(&mut self, now: Instant) {
        self.sent
            .retain(|_, at| now.saturating_duration_since(*at) < 10 * REPORT_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_ike_sa() {
        let t0 = Instant::now();
        let mut r = ActivityReports::default();
        let (a, b) = (IkeSaId(1), IkeSaId(2));
        assert!(r.due(a, t0), "first activity is reported");
        assert!(!r.due(a, t0 + Duration::from_millis(10)));
        assert!(
            r.due(b, t0 + Duration::from_millis(20)),
            "another SA has its own clock"
        );
        assert!(
            !r.due(a, t0 + Duration::from_millis(30)),
            "interleaved: still quiet"
        );
        assert!(!r.due(b, t0 + Duration::from_millis(40)));
        assert!(r.due(a, t0 + REPORT_EVERY), "a second later, again");
        assert!(!r.due(a, t0 + REPORT_EVERY + Duration::from_millis(1)));
        assert!(r.due(b, t0 + REPORT_EVERY + Duration::from_millis(20)));
        r.prune(t0 + 20 * REPORT_EVERY);
        assert!(r.sent.is_empty(), "old SAs are forgotten");
        assert!(r.due(a, t0 + 20 * REPORT_EVERY));
    }
}
