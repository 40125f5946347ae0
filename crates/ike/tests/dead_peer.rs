//! Dead peer detection (RFC 7296 §2.4, [`EndpointConfig::dpd_delay`]) over
//! the simulated network: an established IKE SA on which nothing came
//! from the peer for the delay gets an empty INFORMATIONAL request; a
//! peer that answers keeps it, a silent one is declared dead when the
//! retransmissions run out and the IKE SA goes with its CHILD_SAs;
//! inbound ESP the driver reports postpones the check.

mod common;

use std::time::{Duration, Instant};

use common::*;
use palisade_filter::policy::IpsecProposal;
use palisade_ike::{
    EndpointConfig, Event, FailurePoint, FailureReason, IkeSaId, RetransmitConfig, Stage,
};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

const DPD: Duration = Duration::from_secs(10);

/// A short schedule: sends at +0, +0.1, +0.3, +0.7 s, given up at +1.5 s.
fn short_retransmit() -> RetransmitConfig {
    RetransmitConfig {
        initial_timeout: Duration::from_millis(100),
        max_retransmits: 3,
        max_duration: Duration::from_secs(60),
    }
}
const GIVE_UP_AFTER: Duration = Duration::from_millis(1500);

fn config(dpd: Option<Duration>) -> EndpointConfig {
    EndpointConfig {
        dpd_delay: dpd,
        retransmit: short_retransmit(),
        ..EndpointConfig::default()
    }
}

/// A with dead peer detection after `DPD`, B with `dpd_b`; established.
fn pair(dpd_b: Option<Duration>, seed: u64) -> Net {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::with_configs(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        seed,
        config(Some(DPD)),
        config(dpd_b),
    );
    net.acquire();
    net.run(Duration::from_millis(500));
    assert_eq!(children(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(children(&net.events_b).len(), 1, "{:?}", net.events_b);
    net
}

/// When A received the last thing B sent (the network's latency is
/// 10 ms without jitter).
fn a_last_heard(net: &Net) -> Instant {
    let sent = net
        .log_at
        .iter()
        .zip(&net.log)
        .filter(|(_, (from_a, _))| !from_a)
        .map(|((at, _), _)| *at)
        .max()
        .expect("B sent something");
    sent + Duration::from_millis(10)
}

/// The INFORMATIONAL requests A sent, with when.
fn informational_requests_from_a(net: &Net) -> Vec<(Instant, Vec<u8>)> {
    net.log_at
        .iter()
        .zip(&net.log)
        .filter(|(_, (from_a, _))| *from_a)
        .filter_map(|((at, _), (_, bytes))| {
            let h = IkeHeader::parse(bytes).ok()?;
            (h.exchange_type == exchange_type::INFORMATIONAL && !h.is_response())
                .then(|| (*at, bytes.clone()))
        })
        .collect()
}

/// Runs the simulation up to `at` (from the current time).
fn run_until(net: &mut Net, at: Instant) {
    let left = at.saturating_duration_since(net.now);
    net.run(left);
}

#[test]
fn a_silent_peer_is_declared_dead_after_the_delay_and_the_retransmissions() {
    // B stops receiving and, with no checks of its own, never speaks up.
    let mut net = pair(None, 71);
    let id = established(&net.events_a)[0].id;
    let child = children(&net.events_a)[0].clone();
    let heard = a_last_heard(&net);
    net.b_dead = true;
    // Just before the give-up: the SA is still there.
    run_until(
        &mut net,
        heard + DPD + GIVE_UP_AFTER - Duration::from_millis(1),
    );
    assert_eq!(net.a.ike_sas(), vec![id]);
    assert!(failures(&net.events_a).is_empty());
    let requests = informational_requests_from_a(&net);
    // The check went out after exactly the delay, then was resent as is.
    let times: Vec<Duration> = requests.iter().map(|(at, _)| *at - heard).collect();
    assert_eq!(
        times,
        [0, 100, 300, 700].map(|ms| DPD + Duration::from_millis(ms))
    );
    assert!(requests.windows(2).all(|w| w[0].1 == w[1].1));
    run_until(&mut net, heard + DPD + GIVE_UP_AFTER);
    let f = failures(&net.events_a);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].ike_sa, f[0].stage, f[0].point, f[0].reason),
        (
            Some(id),
            Stage::Informational,
            FailurePoint::Local,
            FailureReason::PeerUnreachable
        )
    );
    // Its CHILD_SA is reported deleted, then the IKE SA.
    let tail: Vec<&Event> = net.events_a.iter().rev().take(2).collect();
    assert!(
        matches!(tail[0], Event::IkeSaDeleted(x) if *x == id),
        "{tail:?}"
    );
    assert!(
        matches!(tail[1], Event::ChildSaDeleted(d)
            if d.ike_sa == id && d.inbound_spi == child.inbound_spi
                && d.outbound_spi == child.outbound_spi),
        "{tail:?}"
    );
    assert!(net.a.ike_sas().is_empty());
    // No more checks for it (lifetime tracks go at the next timeout).
    net.a.handle_timeout(net.now);
    assert_eq!(net.a.poll_timeout(), None, "nothing left to time");
}

#[test]
fn a_peer_that_answers_keeps_its_sas() {
    for (dpd_b, seed) in [(None, 72), (Some(DPD), 73)] {
        let mut net = pair(dpd_b, seed);
        let start = net.now;
        net.run(Duration::from_secs(125));
        // A checked about every DPD (B's own checks, when on, count as
        // heard and may postpone some), and every check was answered.
        let checks = informational_requests_from_a(&net).len();
        let expected = if dpd_b.is_some() { 6..=12 } else { 12..=12 };
        assert!(expected.contains(&checks), "{checks} checks, B: {dpd_b:?}");
        assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
        assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
        assert_eq!((net.a.ike_sas().len(), net.b.ike_sas().len()), (1, 1));
        assert_eq!(net.a.counters().retransmissions, 0);
        assert!(net.now - start >= Duration::from_secs(125));
    }
}

#[test]
fn inbound_esp_reported_by_the_driver_postpones_the_check() {
    let mut net = pair(None, 74);
    let id = established(&net.events_a)[0].id;
    let heard = a_last_heard(&net);
    // ESP arrived 8 s and 15 s after the last IKE message.
    run_until(&mut net, heard + Duration::from_secs(8));
    assert!(net.a.handle_inbound_activity(net.now, id));
    run_until(&mut net, heard + Duration::from_secs(15));
    let esp_at = net.now;
    assert!(net.a.handle_inbound_activity(esp_at, id));
    run_until(&mut net, heard + Duration::from_secs(30));
    let requests = informational_requests_from_a(&net);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0, esp_at + DPD);
    assert!(!net.a.handle_inbound_activity(net.now, IkeSaId(0x1234)));
}

#[test]
fn off_no_check_is_sent() {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::with_config(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        75,
        config(None),
    );
    net.acquire();
    net.run(Duration::from_secs(1));
    let sent = net.log.len();
    net.b_dead = true;
    net.run(Duration::from_secs(300));
    assert_eq!(net.log.len(), sent);
    assert_eq!(net.a.ike_sas().len(), 1);
}
