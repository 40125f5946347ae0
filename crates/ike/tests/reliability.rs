//! Loss, duplication, reordering, dead peers, retransmitted requests,
//! garbage, deletes and liveness checks.

mod common;

use std::time::Duration;

use common::*;
use palisade_filter::policy::IpsecProposal;
use palisade_ike::{DropReason, Event, FailurePoint, FailureReason, Stage, StaticPolicy};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

fn policies(psk: &str) -> (StaticPolicy, StaticPolicy) {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    (
        transport_policy(B, main_mode(psk, &p), qm.clone()),
        transport_policy(A, main_mode(psk, &p), qm),
    )
}

fn established_pair(seed: u64) -> Net {
    let (pa, pb) = policies("k");
    let mut net = Net::new(pa, pb, seed);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(children(&net.events_a).len(), 1);
    assert_eq!(children(&net.events_b).len(), 1);
    net
}

#[test]
fn a_lossy_duplicating_reordering_network_still_converges() {
    let mut converged = 0;
    let (mut retransmitted, mut answered_from_cache) = (0, 0);
    for seed in 1..=40u64 {
        let (pa, pb) = policies("k");
        let mut net = Net::new(pa, pb, seed);
        net.loss = 0.25;
        net.duplicate = 0.3;
        net.jitter_ms = 400;
        net.acquire();
        net.run(Duration::from_secs(120));
        retransmitted += net.a.counters().retransmissions;
        answered_from_cache += net.b.counters().dropped(DropReason::Retransmission);
        let (ca, cb) = (children(&net.events_a), children(&net.events_b));
        if failures(&net.events_a).is_empty() {
            // Exactly one CHILD_SA each side, whatever was duplicated.
            assert_eq!(
                (ca.len(), cb.len()),
                (1, 1),
                "seed {seed}: {:?} / {:?}",
                net.events_a,
                net.events_b
            );
            prove_with_esp(ca[0], cb[0], net.now);
            converged += 1;
        } else {
            // Possible with 25 % loss: six sends of one request all lost.
            // Then the failure must be the give-up, and the responder
            // must not claim a CHILD_SA the initiator lacks.
            let f = failures(&net.events_a);
            assert_eq!(f[0].reason, FailureReason::PeerUnreachable, "seed {seed}");
            assert!(ca.is_empty());
        }
    }
    assert!(converged >= 36, "only {converged} of 40 converged");
    // The network really was hostile.
    assert!(
        retransmitted > 20 && answered_from_cache > 20,
        "{retransmitted} {answered_from_cache}"
    );
}

#[test]
fn a_dead_peer_makes_the_initiator_give_up() {
    let (pa, pb) = policies("k");
    let mut net = Net::new(pa, pb, 12);
    net.b_dead = true;
    net.acquire();
    net.run(Duration::from_secs(600));
    let f = failures(&net.events_a);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].stage, f[0].point, f[0].reason),
        (
            Stage::IkeSaInit,
            FailurePoint::Local,
            FailureReason::PeerUnreachable
        )
    );
    // One send and five retransmissions of the same bytes, 0.5 s doubling.
    assert_eq!(net.log.len(), 6);
    assert!(net.log.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(net.a.counters().retransmissions, 5);
    assert_eq!(net.now - net.start, Duration::from_millis(31_500));
    assert_eq!(net.a.poll_timeout(), None);
}

#[test]
fn a_retransmitted_request_gets_the_cached_response_byte_for_byte() {
    let (pa, pb) = policies("k");
    let mut net = Net::new(pa, pb, 13);
    net.acquire();
    net.run(Duration::from_secs(5));
    // Replay every request A sent; B answers each from cache.
    let requests: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(a, _)| *a)
        .map(|(_, m)| m.clone())
        .collect();
    let responses: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(a, _)| !*a)
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(requests.len(), 2);
    for (req, resp) in requests.iter().zip(&responses) {
        net.b.handle_datagram(net.now, addr(B), addr(A), req);
        let again = net.b.poll_transmit().expect("answered");
        assert_eq!(&again.bytes, resp);
        assert!(net.b.poll_transmit().is_none());
    }
    assert_eq!(net.b.counters().dropped(DropReason::Retransmission), 2);
    assert!(net.b.poll_event().is_none(), "nothing processed twice");
    // Responses arriving again at A are dropped, not processed.
    for resp in &responses {
        net.a.handle_datagram(net.now, addr(A), addr(B), resp);
    }
    assert!(net.a.poll_transmit().is_none());
    assert!(net.a.poll_event().is_none());
    assert_eq!(net.a.counters().dropped(DropReason::InvalidMessageId), 2);
}

#[test]
fn garbage_and_truncated_datagrams_are_dropped_and_counted() {
    let mut net = established_pair(14);
    let messages: Vec<Vec<u8>> = net.log.iter().map(|(_, m)| m.clone()).collect();
    let before = net.b.counters().total_dropped();
    let mut fed = 0;
    let mut rng = Seeded(99);
    for m in &messages {
        for cut in [0, 1, 27, 28, 29, m.len() / 2, m.len() - 1] {
            net.b.handle_datagram(net.now, addr(B), addr(A), &m[..cut]);
            net.a.handle_datagram(net.now, addr(A), addr(B), &m[..cut]);
            fed += 1;
        }
    }
    for len in [0usize, 10, 28, 100, 600] {
        let mut junk = vec![0u8; len];
        rng.fill_bytes(&mut junk);
        net.b.handle_datagram(net.now, addr(B), addr(A), &junk);
    }
    // Well-formed header, unknown SPIs.
    let mut stray = messages[2].clone();
    stray[0] ^= 0xFF;
    net.b.handle_datagram(net.now, addr(B), addr(A), &stray);
    // A tampered IKE_AUTH request replayed with the right SPIs: integrity.
    let mut tampered = messages[2].clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    // Not the next message ID any more: dropped before decryption.
    net.b.handle_datagram(net.now, addr(B), addr(A), &tampered);
    assert!(net.b.counters().dropped(DropReason::Malformed) >= fed / 2);
    assert!(net.b.counters().dropped(DropReason::UnknownSpi) >= 1);
    assert!(net.b.counters().total_dropped() > before);
    assert!(net.b.poll_event().is_none());
    assert!(net.a.poll_event().is_none());
    // The SAs survive all of it: a liveness check still works.
    let id = established(&net.events_a)[0].id;
    assert!(net.a.check_liveness(net.now, id));
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty());
}

trait FillBytes {
    fn fill_bytes(&mut self, buf: &mut [u8]);
}
impl FillBytes for Seeded {
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

#[test]
fn a_tampered_request_with_the_right_message_id_fails_integrity() {
    let (pa, pb) = policies("k");
    let mut net = Net::new(pa, pb, 15);
    net.acquire();
    // Deliver the IKE_SA_INIT exchange only.
    let req = net.a.poll_transmit().expect("init");
    net.b.handle_datagram(net.now, addr(B), addr(A), &req.bytes);
    let resp = net.b.poll_transmit().expect("init response");
    net.a
        .handle_datagram(net.now, addr(A), addr(B), &resp.bytes);
    let auth = net.a.poll_transmit().expect("auth");
    let mut bad = auth.bytes.clone();
    let mid = bad.len() - 20;
    bad[mid] ^= 0x80;
    net.b.handle_datagram(net.now, addr(B), addr(A), &bad);
    assert_eq!(net.b.counters().dropped(DropReason::Integrity), 1);
    assert!(net.b.poll_transmit().is_none());
    // The genuine one still goes through.
    net.b
        .handle_datagram(net.now, addr(B), addr(A), &auth.bytes);
    let ok = net.b.poll_transmit().expect("auth response");
    assert_eq!(
        IkeHeader::parse(&ok.bytes).expect("header").exchange_type,
        exchange_type::IKE_AUTH
    );
}

#[test]
fn deleting_a_child_sa_reports_it_on_both_sides() {
    let mut net = established_pair(16);
    let child = children(&net.events_a)[0].clone();
    let id = established(&net.events_a)[0].id;
    assert!(
        !net.a.delete_child_sa(net.now, id, child.outbound_spi),
        "named by our inbound SPI"
    );
    assert!(net.a.delete_child_sa(net.now, id, child.inbound_spi));
    net.run(Duration::from_secs(5));
    let deleted = |events: &[Event]| -> Vec<(u32, u32)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaDeleted(d) => Some((d.inbound_spi, d.outbound_spi)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        deleted(&net.events_a),
        vec![(child.inbound_spi, child.outbound_spi)]
    );
    assert_eq!(
        deleted(&net.events_b),
        vec![(child.outbound_spi, child.inbound_spi)]
    );
    // The IKE SA lives on.
    assert_eq!(net.a.ike_sas(), vec![id]);
    assert_eq!(net.b.ike_sas().len(), 1);
}

#[test]
fn deleting_the_ike_sa_from_the_responder_side_removes_everything() {
    let mut net = established_pair(17);
    let id_b = established(&net.events_b)[0].id;
    let id_a = established(&net.events_a)[0].id;
    assert!(net.b.delete_ike_sa(net.now, id_b));
    net.run(Duration::from_secs(5));
    for (events, id) in [(&net.events_a, id_a), (&net.events_b, id_b)] {
        let tail: Vec<_> = events.iter().rev().take(2).collect();
        assert!(
            matches!(tail[0], Event::IkeSaDeleted(x) if *x == id),
            "{events:?}"
        );
        assert!(matches!(tail[1], Event::ChildSaDeleted(d) if d.ike_sa == id));
    }
    assert!(net.a.ike_sas().is_empty() && net.b.ike_sas().is_empty());
    assert_eq!(net.a.poll_timeout(), None);
    assert_eq!(net.b.poll_timeout(), None);
}

#[test]
fn liveness_checks_are_answered_and_a_silent_peer_is_declared_dead() {
    let mut net = established_pair(18);
    let id = established(&net.events_a)[0].id;
    let sent = net.log.len();
    assert!(net.a.check_liveness(net.now, id));
    net.run(Duration::from_secs(5));
    assert_eq!(net.log.len(), sent + 2);
    assert!(failures(&net.events_a).is_empty());
    // The peer goes away: the next check gives up and tears the SA down.
    net.b_dead = true;
    assert!(net.a.check_liveness(net.now, id));
    net.run(Duration::from_secs(600));
    let f = failures(&net.events_a);
    assert_eq!(
        (f[0].stage, f[0].reason),
        (Stage::Informational, FailureReason::PeerUnreachable)
    );
    assert!(matches!(net.events_a.last(), Some(Event::IkeSaDeleted(x)) if *x == id));
    assert!(net.a.ike_sas().is_empty());
}

#[test]
fn requests_queue_behind_the_outstanding_one() {
    let mut net = established_pair(19);
    let id = established(&net.events_a)[0].id;
    let child = children(&net.events_a)[0].inbound_spi;
    assert!(net.a.check_liveness(net.now, id));
    assert!(net.a.delete_child_sa(net.now, id, child));
    assert!(net.a.delete_ike_sa(net.now, id));
    net.run(Duration::from_secs(10));
    // Three exchanges in order, one at a time: message IDs 2, 3, 4.
    let ids: Vec<u32> = net.log[4..]
        .iter()
        .filter(|(a, _)| *a)
        .map(|(_, m)| IkeHeader::parse(m).expect("header").message_id)
        .collect();
    assert_eq!(ids, [2, 3, 4]);
    assert!(net.a.ike_sas().is_empty() && net.b.ike_sas().is_empty());
    assert!(failures(&net.events_a).is_empty() && failures(&net.events_b).is_empty());
}

#[test]
fn a_responder_forgets_a_half_open_sa() {
    let (pa, pb) = policies("k");
    let mut net = Net::new(pa, pb, 20);
    net.acquire();
    let req = net.a.poll_transmit().expect("init");
    net.b.handle_datagram(net.now, addr(B), addr(A), &req.bytes);
    let _ = net.b.poll_transmit();
    let deadline = net.b.poll_timeout().expect("half-open timer");
    assert_eq!(deadline - net.now, Duration::from_secs(30));
    net.b.handle_timeout(deadline);
    let mut events = Vec::new();
    while let Some(e) = net.b.poll_event() {
        events.push(e);
    }
    assert_eq!(failures(&events)[0].reason, FailureReason::HalfOpenTimeout);
    assert_eq!(net.b.poll_timeout(), None);
}

/// A random source stuck on one value: SPIs cannot be made unique.
struct Stuck;
impl palisade_ike::Random for Stuck {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), palisade_ike::RandomError> {
        buf.fill(0);
        Ok(())
    }
}

#[test]
fn a_broken_random_source_is_a_failure_not_a_hang() {
    let (pa, _) = policies("k");
    let mut a =
        palisade_ike::Endpoint::with_random(palisade_ike::EndpointConfig::default(), pa, Stuck);
    a.handle_acquire(
        std::time::Instant::now(),
        palisade_ike::Acquire {
            local: addr(A),
            remote: addr(B),
            traffic: None,
        },
    );
    assert!(a.poll_transmit().is_none());
    match a.poll_event() {
        Some(Event::Failure(f)) => assert_eq!(f.reason, FailureReason::Crypto),
        other => panic!("{other:?}"),
    }
}
