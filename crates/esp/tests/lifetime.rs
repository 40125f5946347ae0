//! SA lifetime tracking: soft and hard limits on bytes, packets and time.

use std::time::{Duration, Instant};

use palisade_esp::lifetime::{Expiry, Lifetime, LifetimeError, LifetimeLimits, LifetimeTracker};

const NONE: LifetimeLimits = LifetimeLimits {
    bytes: None,
    packets: None,
    time: None,
};

fn bytes(n: u64) -> LifetimeLimits {
    LifetimeLimits {
        bytes: Some(n),
        ..NONE
    }
}

fn packets(n: u64) -> LifetimeLimits {
    LifetimeLimits {
        packets: Some(n),
        ..NONE
    }
}

fn secs(n: u64) -> LifetimeLimits {
    LifetimeLimits {
        time: Some(Duration::from_secs(n)),
        ..NONE
    }
}

fn tracker(soft: LifetimeLimits, hard: LifetimeLimits, t0: Instant) -> LifetimeTracker {
    LifetimeTracker::new(Lifetime { soft, hard }, t0)
}

#[test]
fn unlimited_stays_alive() {
    let t0 = Instant::now();
    let mut t = LifetimeTracker::new(Lifetime::default(), t0);
    for i in 0..1000 {
        assert_eq!(t.account(1500, t0 + Duration::from_secs(i)), Expiry::Alive);
    }
    assert_eq!(t.poll(t0 + Duration::from_secs(1 << 30)), Expiry::Alive);
    assert_eq!(t.bytes(), 1_500_000);
    assert_eq!(t.packets(), 1000);
    assert_eq!(t.created(), t0);
    assert_eq!(t.next_deadline(), None);
    assert_eq!(t.lifetime(), &Lifetime::default());
}

#[test]
fn byte_limits() {
    let t0 = Instant::now();
    let mut t = tracker(bytes(1000), bytes(2000), t0);
    assert_eq!(t.account(999, t0), Expiry::Alive);
    // Reaching the soft limit exactly counts as reaching it.
    assert_eq!(t.account(1, t0), Expiry::NewlySoft);
    assert_eq!(t.account(500, t0), Expiry::SoftExpired);
    // 1500 + 600 would go over 2000: refused and not counted.
    assert_eq!(t.account(600, t0), Expiry::HardExpired);
    assert_eq!(t.bytes(), 1500);
    assert_eq!(t.packets(), 3);
    // Hard expiry is final even for a packet that would still fit.
    assert_eq!(t.account(10, t0), Expiry::HardExpired);
    assert_eq!(t.poll(t0), Expiry::HardExpired);
    assert_eq!(t.bytes(), 1500);
}

#[test]
fn packet_landing_exactly_on_the_hard_limit_is_the_last_one() {
    let t0 = Instant::now();
    let mut t = tracker(NONE, bytes(3000), t0);
    assert_eq!(t.account(1500, t0), Expiry::Alive);
    assert_eq!(t.account(1500, t0), Expiry::Alive);
    assert_eq!(t.bytes(), 3000);
    assert_eq!(t.poll(t0), Expiry::HardExpired);
    assert_eq!(t.account(0, t0), Expiry::HardExpired);
    assert_eq!(t.bytes(), 3000);
}

#[test]
fn packet_limits() {
    let t0 = Instant::now();
    let mut t = tracker(packets(3), packets(5), t0);
    assert_eq!(t.account(100, t0), Expiry::Alive);
    assert_eq!(t.account(100, t0), Expiry::Alive);
    assert_eq!(t.account(100, t0), Expiry::NewlySoft);
    assert_eq!(t.account(100, t0), Expiry::SoftExpired);
    assert_eq!(t.account(100, t0), Expiry::SoftExpired);
    assert_eq!(t.packets(), 5);
    assert_eq!(t.account(100, t0), Expiry::HardExpired);
    assert_eq!(t.packets(), 5);
    assert_eq!(t.bytes(), 500);
}

#[test]
fn time_limits() {
    let t0 = Instant::now();
    let at = |s| t0 + Duration::from_secs(s);
    let mut t = tracker(secs(60), secs(90), t0);
    assert_eq!(t.next_deadline(), Some(at(60)));
    assert_eq!(t.account(100, at(59)), Expiry::Alive);
    assert_eq!(t.poll(at(59)), Expiry::Alive);
    assert_eq!(t.account(100, at(60)), Expiry::NewlySoft);
    assert_eq!(t.next_deadline(), Some(at(90)));
    assert_eq!(t.poll(at(61)), Expiry::SoftExpired);
    assert_eq!(t.account(100, at(89)), Expiry::SoftExpired);
    assert_eq!(t.account(100, at(90)), Expiry::HardExpired);
    assert_eq!(t.packets(), 3);
    assert_eq!(t.next_deadline(), None);
    // A clock going backwards does not revive the SA.
    assert_eq!(t.account(100, at(1)), Expiry::HardExpired);
    assert_eq!(t.poll(at(1)), Expiry::HardExpired);
}

#[test]
fn poll_reports_soft_once_from_a_timer() {
    let t0 = Instant::now();
    let at = |s| t0 + Duration::from_secs(s);
    let mut t = tracker(secs(10), secs(20), t0);
    assert_eq!(t.poll(at(10)), Expiry::NewlySoft);
    assert_eq!(t.poll(at(11)), Expiry::SoftExpired);
    // The packet path does not get a second NewlySoft.
    assert_eq!(t.account(1, at(12)), Expiry::SoftExpired);
    assert_eq!(t.poll(at(20)), Expiry::HardExpired);
    assert_eq!(t.account(1, at(21)), Expiry::HardExpired);
}

#[test]
fn hard_time_without_soft_never_signals_soft() {
    let t0 = Instant::now();
    let mut t = tracker(NONE, secs(5), t0);
    assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(5)));
    assert_eq!(t.poll(t0 + Duration::from_secs(4)), Expiry::Alive);
    assert_eq!(t.poll(t0 + Duration::from_secs(5)), Expiry::HardExpired);
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn combined_limits_first_to_expire_wins() {
    let t0 = Instant::now();
    let at = |s| t0 + Duration::from_secs(s);
    let soft = LifetimeLimits {
        bytes: Some(10_000),
        packets: Some(100),
        time: Some(Duration::from_secs(100)),
    };
    let hard = LifetimeLimits {
        bytes: Some(20_000),
        packets: Some(200),
        time: Some(Duration::from_secs(200)),
    };
    let lifetime = Lifetime { soft, hard };
    assert_eq!(lifetime.validate(), Ok(()));

    // Packets first: 100 small packets.
    let mut t = LifetimeTracker::new(lifetime, t0);
    let mut soft_reports = 0;
    for _ in 0..100 {
        if t.account(10, at(1)) == Expiry::NewlySoft {
            soft_reports += 1;
        }
    }
    assert_eq!(soft_reports, 1);
    assert_eq!(t.account(10, at(1)), Expiry::SoftExpired);
    // Then bytes hit the hard limit before packets or time do.
    assert_eq!(t.account(18_990, at(2)), Expiry::SoftExpired);
    assert_eq!(t.bytes(), 20_000);
    assert_eq!(t.account(1, at(2)), Expiry::HardExpired);

    // Time first: few packets, then the clock runs out.
    let mut t = LifetimeTracker::new(lifetime, t0);
    assert_eq!(t.account(10, at(50)), Expiry::Alive);
    assert_eq!(t.next_deadline(), Some(at(100)));
    assert_eq!(t.poll(at(150)), Expiry::NewlySoft);
    assert_eq!(t.next_deadline(), Some(at(200)));
    assert_eq!(t.account(10, at(199)), Expiry::SoftExpired);
    assert_eq!(t.account(10, at(200)), Expiry::HardExpired);

    // Bytes first: one big packet crosses the soft byte limit.
    let mut t = LifetimeTracker::new(lifetime, t0);
    assert_eq!(t.account(10_000, at(0)), Expiry::NewlySoft);
    // The time soft limit passing later is not a second soft event.
    assert_eq!(t.poll(at(120)), Expiry::SoftExpired);
}

#[test]
fn soft_is_signalled_exactly_once_across_dimensions() {
    let t0 = Instant::now();
    let soft = LifetimeLimits {
        bytes: Some(100),
        packets: Some(2),
        time: Some(Duration::from_secs(1)),
    };
    let mut t = tracker(soft, NONE, t0);
    let mut results: Vec<Expiry> = (0..50)
        .map(|i| t.account(60, t0 + Duration::from_millis(100 * i)))
        .collect();
    results.extend((0..5).map(|i| t.poll(t0 + Duration::from_secs(10 + i))));
    assert_eq!(results.first(), Some(&Expiry::Alive));
    assert_eq!(results.get(1), Some(&Expiry::NewlySoft));
    assert_eq!(
        results.iter().filter(|e| **e == Expiry::NewlySoft).count(),
        1
    );
    assert!(results.iter().skip(2).all(|e| *e == Expiry::SoftExpired));
}

#[test]
fn hard_first_deadline_when_soft_time_unset() {
    let t0 = Instant::now();
    let mut t = tracker(bytes(10), secs(30), t0);
    assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(30)));
    assert_eq!(t.account(10, t0), Expiry::NewlySoft);
    assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(30)));
}

#[test]
fn deadline_is_the_earlier_one_even_if_soft_is_past() {
    let t0 = Instant::now();
    let t = tracker(secs(10), secs(20), t0);
    // Nothing polled yet: the soft deadline stays pending, even once past,
    // so a timer set from it fires immediately.
    assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(10)));
    // An inconsistent lifetime (soft above hard): the earlier still wins.
    let t = tracker(secs(50), secs(20), t0);
    assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(20)));
}

#[test]
fn validate_rejects_soft_not_below_hard() {
    let ok = |soft, hard| Lifetime { soft, hard }.validate();
    assert_eq!(ok(NONE, NONE), Ok(()));
    assert_eq!(ok(bytes(1), NONE), Ok(()));
    assert_eq!(ok(NONE, bytes(1)), Ok(()));
    assert_eq!(ok(bytes(1), bytes(2)), Ok(()));
    assert_eq!(ok(packets(1), bytes(1)), Ok(()));
    assert_eq!(
        ok(bytes(2), bytes(2)),
        Err(LifetimeError::Bytes { soft: 2, hard: 2 })
    );
    assert_eq!(
        ok(bytes(3), bytes(2)),
        Err(LifetimeError::Bytes { soft: 3, hard: 2 })
    );
    assert_eq!(
        ok(packets(5), packets(5)),
        Err(LifetimeError::Packets { soft: 5, hard: 5 })
    );
    assert_eq!(
        ok(secs(60), secs(30)),
        Err(LifetimeError::Time {
            soft: Duration::from_secs(60),
            hard: Duration::from_secs(30)
        })
    );
    // Only the first offending dimension is reported.
    let soft = LifetimeLimits {
        bytes: Some(9),
        packets: Some(9),
        time: None,
    };
    let hard = LifetimeLimits {
        bytes: Some(1),
        packets: Some(1),
        time: None,
    };
    assert_eq!(
        ok(soft, hard),
        Err(LifetimeError::Bytes { soft: 9, hard: 1 })
    );
    // Errors render for logs.
    assert!(
        LifetimeError::Packets { soft: 5, hard: 5 }
            .to_string()
            .contains("packet")
    );
}

#[test]
fn invalid_lifetime_still_enforces_hard() {
    let t0 = Instant::now();
    let mut t = tracker(packets(10), packets(2), t0);
    assert_eq!(t.account(1, t0), Expiry::Alive);
    assert_eq!(t.account(1, t0), Expiry::Alive);
    assert_eq!(t.account(1, t0), Expiry::HardExpired);
}

mod time_only_model {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// With time limits only (the fast path), `account` behaves like a plain model:
        /// hard once now >= created + hard, `NewlySoft` exactly once when the soft time
        /// is reached first, counters counting every accepted packet.
        #[test]
        fn account_matches_a_model(
            soft in proptest::option::of(0u64..100),
            hard in proptest::option::of(0u64..100),
            steps in proptest::collection::vec((0u64..2000, 0u64..10), 1..40),
        ) {
            let t0 = Instant::now();
            let lifetime = Lifetime {
                soft: LifetimeLimits { time: soft.map(Duration::from_secs), ..Default::default() },
                hard: LifetimeLimits { time: hard.map(Duration::from_secs), ..Default::default() },
            };
            let mut t = LifetimeTracker::new(lifetime, t0);
            let (mut secs, mut bytes, mut packets, mut soft_seen, mut dead) = (0u64, 0u64, 0u64, false, false);
            for (len, dt) in steps {
                secs += dt;
                let now = t0 + Duration::from_secs(secs);
                let want = if dead || hard.is_some_and(|h| secs >= h) {
                    dead = true;
                    Expiry::HardExpired
                } else {
                    bytes += len;
                    packets += 1;
                    if soft_seen {
                        Expiry::SoftExpired
                    } else if soft.is_some_and(|s| secs >= s) {
                        soft_seen = true;
                        Expiry::NewlySoft
                    } else {
                        Expiry::Alive
                    }
                };
                prop_assert_eq!(t.account(len, now), want);
                prop_assert_eq!((t.bytes(), t.packets()), (bytes, packets));
            }
        }
    }
}
