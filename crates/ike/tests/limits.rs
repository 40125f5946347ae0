//! The bounds on state a peer can make an endpoint keep (crate::limits):
//! IKE SAs per peer address, CHILD_SAs per IKE SA, requests queued per IKE
//! SA, and the main-mode policy's `quick_mode_limit`. Each bound is
//! reached and enforced over the simulated network, the counters and
//! events say why, and the SAs below the bound keep working (proven with
//! palisade-esp).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use palisade_filter::policy::{IpsecProposal, MainModeProposal};
use palisade_ike::{
    ChildSa, DropReason, EndpointConfig, Event, FailurePoint, FailureReason, IkeSaId, Role, Stage,
};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

/// Each side's main-mode proposal and endpoint configuration.
type Side = (MainModeProposal, EndpointConfig);

fn net_with((mm_a, a): Side, (mm_b, b): Side, seed: u64) -> Net {
    let q = vec![IpsecProposal::esp_aes128_gcm()];
    let policy_a = transport_policy(B, main_mode("s3cret", &[mm_a]), q.clone());
    let policy_b = transport_policy(A, main_mode("s3cret", &[mm_b]), q);
    Net::with_configs(policy_a, policy_b, seed, a, b)
}

/// Established with one CHILD_SA, no failures.
fn established(a: Side, b: Side, seed: u64) -> Net {
    let mut net = net_with(a, b, seed);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    assert_eq!(children(&net.events_a).len(), 1);
    net
}

/// The CHILD_SAs installed and not deleted since.
fn surviving(events: &[Event]) -> Vec<ChildSa> {
    let deleted: HashSet<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaDeleted(d) => Some(d.inbound_spi),
            _ => None,
        })
        .collect();
    children(events)
        .into_iter()
        .filter(|c| !deleted.contains(&c.inbound_spi))
        .cloned()
        .collect()
}

/// Every surviving pair at A has its partner at B, and ESP works both ways.
fn prove_all(net: &Net) -> usize {
    let (sa, sb) = (surviving(&net.events_a), surviving(&net.events_b));
    assert_eq!(sa.len(), sb.len(), "A {sa:?}\nB {sb:?}");
    for ca in &sa {
        let cb = sb
            .iter()
            .find(|c| c.inbound_spi == ca.outbound_spi)
            .expect("B has the pair");
        prove_with_esp(ca, cb, net.now);
    }
    sa.len()
}

fn ike_rekeys(events: &[Event]) -> Vec<(IkeSaId, IkeSaId)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
            _ => None,
        })
        .collect()
}

/// CREATE_CHILD_SA requests A sent from log entry `from` on.
fn create_requests_from_a(net: &Net, from: usize) -> usize {
    net.log[from..]
        .iter()
        .filter(|(from_a, bytes)| {
            *from_a
                && IkeHeader::parse(bytes).is_ok_and(|h| {
                    h.exchange_type == exchange_type::CREATE_CHILD_SA && !h.is_response()
                })
        })
        .count()
}

#[test]
fn responder_refuses_a_child_sa_over_its_limit_with_no_additional_sas() {
    let b = EndpointConfig {
        max_child_sas_per_ike_sa: 2,
        ..EndpointConfig::default()
    };
    let mut net = established((gcm(), EndpointConfig::default()), (gcm(), b), 1);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert_eq!(prove_all(&net), 2);

    // The third: refused by B, reported on both sides, the IKE SA stays.
    net.acquire();
    net.run(Duration::from_secs(5));
    let fa = failures(&net.events_a);
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert_eq!(fa[0].reason, FailureReason::NoAdditionalSas);
    assert_eq!(fa[0].point, FailurePoint::Peer);
    assert_eq!(fa[0].stage, Stage::CreateChildSa);
    assert_eq!(fa[0].role, Role::Initiator);
    let fb = failures(&net.events_b);
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(fb[0].reason, FailureReason::ChildSaLimit);
    assert_eq!(fb[0].point, FailurePoint::Local);
    assert_eq!((net.a.ike_sas().len(), net.b.ike_sas().len()), (1, 1));
    assert_eq!(prove_all(&net), 2, "the two below the limit still work");

    // A rekey replaces a pair: not refused at the limit.
    let ike = net.a.ike_sas()[0];
    let (old, _) = net.a.child_sas(ike)[0];
    assert!(net.a.rekey_child_sa(net.now, ike, old));
    net.run(Duration::from_secs(5));
    assert_eq!(failures(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(failures(&net.events_b).len(), 1, "{:?}", net.events_b);
    assert!(!net.a.child_sas(ike).iter().any(|(i, _)| *i == old));
    assert_eq!(net.a.child_sas(ike).len(), 2);
    assert_eq!(prove_all(&net), 2);
}

#[test]
fn initiator_over_its_child_sa_limit_fails_without_sending() {
    let a = EndpointConfig {
        max_child_sas_per_ike_sa: 1,
        ..EndpointConfig::default()
    };
    let mut net = established((gcm(), a), (gcm(), EndpointConfig::default()), 2);
    let sent = net.log.len();
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(create_requests_from_a(&net, sent), 0, "nothing asked of B");
    let fa = failures(&net.events_a);
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert_eq!(fa[0].reason, FailureReason::ChildSaLimit);
    assert_eq!(fa[0].point, FailurePoint::Local);
    assert_eq!(fa[0].stage, Stage::CreateChildSa);
    assert!(failures(&net.events_b).is_empty());
    assert_eq!(prove_all(&net), 1);

    // Once the pair is deleted there is room again.
    let ike = net.a.ike_sas()[0];
    let (inbound, _) = net.a.child_sas(ike)[0];
    assert!(net.a.delete_child_sa(net.now, ike, inbound));
    net.run(Duration::from_secs(5));
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(failures(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(prove_all(&net), 1);
}

#[test]
fn ike_sas_per_peer_address_are_bounded_as_responder() {
    let b = EndpointConfig {
        max_ike_sas_per_peer: 2,
        ..EndpointConfig::default()
    };
    let mut net = net_with((gcm(), EndpointConfig::default()), (gcm(), b), 3);
    // Three IKE SAs from one address (different ports at A).
    for local in ["192.0.2.1:500", "192.0.2.1:501"] {
        net.acquire_between(local, B);
        net.run(Duration::from_secs(5));
    }
    assert_eq!(net.b.ike_sas().len(), 2);
    assert_eq!(prove_all(&net), 2);
    net.acquire_between("192.0.2.1:502", B);
    net.run(Duration::from_secs(60));
    assert_eq!(net.b.ike_sas().len(), 2, "the third was not created");
    assert_eq!(net.b.half_open(), 0, "no state kept for it");
    // The request and each retransmission of it were dropped and counted.
    assert!(
        net.b.counters().dropped(DropReason::IkeSaLimit) >= 2,
        "{:?}",
        net.b.counters()
    );
    let fa = failures(&net.events_a);
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert_eq!(fa[0].reason, FailureReason::PeerUnreachable);
    assert_eq!(fa[0].stage, Stage::IkeSaInit);
    assert!(failures(&net.events_b).is_empty());
    // The two existing IKE SAs are untouched and still carry CHILD_SAs.
    assert_eq!(net.a.ike_sas().len(), 2);
    net.acquire_between("192.0.2.1:500", B);
    net.run(Duration::from_secs(5));
    assert_eq!(failures(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(prove_all(&net), 3);

    // An IKE SA deleted frees its place.
    let first = net.a.ike_sas()[0];
    assert!(net.a.delete_ike_sa(net.now, first));
    net.run(Duration::from_secs(5));
    net.acquire_between("192.0.2.1:502", B);
    net.run(Duration::from_secs(5));
    assert_eq!(failures(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(net.b.ike_sas().len(), 2);
    assert!(prove_all(&net) >= 2);
}

#[test]
fn an_ike_sa_rekey_does_not_count_against_the_peer_bound() {
    let b = EndpointConfig {
        max_ike_sas_per_peer: 1,
        ..EndpointConfig::default()
    };
    let mut net = established((gcm(), EndpointConfig::default()), (gcm(), b), 4);
    let ike = net.a.ike_sas()[0];
    assert!(net.a.rekey_ike_sa(net.now, ike));
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert_eq!(ike_rekeys(&net.events_a).len(), 1);
    assert_eq!(net.b.ike_sas().len(), 1);
    assert_eq!(net.b.counters().dropped(DropReason::IkeSaLimit), 0);
    assert_eq!(prove_all(&net), 1);
}

#[test]
fn requests_queued_on_an_ike_sa_are_bounded() {
    let config = EndpointConfig {
        max_queued_requests_per_ike_sa: 2,
        ..EndpointConfig::default()
    };
    let mut net = established((gcm(), config), (gcm(), config), 5);
    let ike = net.a.ike_sas()[0];
    // One outstanding, two queued, the rest dropped: never unbounded.
    for _ in 0..5 {
        assert!(net.a.check_liveness(net.now, ike));
    }
    assert_eq!(net.a.counters().requests_dropped, 2);
    net.acquire();
    assert_eq!(net.a.counters().requests_dropped, 3);
    net.run(Duration::from_secs(5));
    let fa = failures(&net.events_a);
    assert_eq!(fa.len(), 3, "{fa:?}");
    assert!(
        fa.iter()
            .all(|f| f.reason == FailureReason::RequestQueueFull
                && f.point == FailurePoint::Local
                && f.ike_sa == Some(ike))
    );
    assert_eq!(
        fa.iter()
            .filter(|f| f.stage == Stage::Informational)
            .count(),
        2
    );
    assert_eq!(
        fa.iter()
            .filter(|f| f.stage == Stage::CreateChildSa)
            .count(),
        1
    );
    // The queue drained; the IKE SA works: a further CHILD_SA now.
    assert_eq!(net.a.ike_sas(), vec![ike]);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(failures(&net.events_a).len(), 3, "{:?}", net.events_a);
    assert_eq!(prove_all(&net), 2);
}

#[test]
fn quick_mode_limit_rekeys_the_ike_sa_before_the_next_child_sa() {
    let limited = MainModeProposal {
        quick_mode_limit: 2,
        ..gcm()
    };
    let config = EndpointConfig::default();
    // The initiator's limit (the responder has none).
    let mut net = established((limited, config), (gcm(), config), 6);
    let first = net.a.ike_sas()[0];
    // The IKE_AUTH CHILD_SA was the first quick mode; this is the second.
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(ike_rekeys(&net.events_a).is_empty());
    assert_eq!(prove_all(&net), 2);

    // The third: the IKE SA is rekeyed first, the CHILD_SA made on the new.
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let rekeys = ike_rekeys(&net.events_a);
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    assert_eq!(rekeys[0].0, first);
    let second = rekeys[0].1;
    assert_eq!(net.a.ike_sas(), vec![second]);
    assert_eq!(ike_rekeys(&net.events_b).len(), 1);
    assert_eq!(net.a.child_sas(second).len(), 3);
    let made_on_new: Vec<_> = children(&net.events_a)
        .into_iter()
        .filter(|c| c.ike_sa == second)
        .collect();
    assert_eq!(made_on_new.len(), 1, "the third CHILD_SA is the new one's");
    assert_eq!(prove_all(&net), 3);

    // The new IKE SA has carried one: the next needs no rekey.
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(ike_rekeys(&net.events_a).len(), 1);
    assert_eq!(prove_all(&net), 4);
}

#[test]
fn without_quick_mode_limit_no_ike_sa_rekey() {
    let config = EndpointConfig::default();
    let mut net = established((gcm(), config), (gcm(), config), 7);
    for _ in 0..3 {
        net.acquire();
        net.run(Duration::from_secs(5));
    }
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(ike_rekeys(&net.events_a).is_empty());
    assert_eq!(prove_all(&net), 4);
}

#[test]
fn quick_mode_limit_counts_child_sa_rekeys_too() {
    let limited = MainModeProposal {
        quick_mode_limit: 1,
        ..gcm()
    };
    let config = EndpointConfig::default();
    // The responder has none (with a limit of 1 it would rekey the new IKE
    // SA again once it answered the CHILD_SA rekey).
    let mut net = established((limited, config), (gcm(), config), 8);
    let first = net.a.ike_sas()[0];
    let (old, _) = net.a.child_sas(first)[0];
    // The IKE SA carried its one quick mode: the CHILD_SA rekey waits for
    // an IKE SA rekey and then runs on the new IKE SA.
    assert!(net.a.rekey_child_sa(net.now, first, old));
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let rekeys = ike_rekeys(&net.events_a);
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    let second = rekeys[0].1;
    assert_eq!(net.a.ike_sas(), vec![second]);
    let pairs = net.a.child_sas(second);
    assert_eq!(pairs.len(), 1);
    assert_ne!(pairs[0].0, old, "the pair was rekeyed");
    let rekeyed_child: Vec<_> = net
        .events_a
        .iter()
        .filter(|e| matches!(e, Event::ChildSaRekeyed(r) if r.old_inbound_spi == old && r.ike_sa == second))
        .collect();
    assert_eq!(rekeyed_child.len(), 1, "{:?}", net.events_a);
    assert_eq!(prove_all(&net), 1);
}

#[test]
fn quick_mode_limit_as_responder_rekeys_once_reached() {
    let limited = MainModeProposal {
        quick_mode_limit: 2,
        ..gcm()
    };
    let config = EndpointConfig::default();
    let mut net = established((gcm(), config), (limited, config), 9);
    let first = net.b.ike_sas()[0];
    // B's second quick mode: B rekeys the IKE SA right after it.
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let rekeys = ike_rekeys(&net.events_b);
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    assert_eq!(rekeys[0].0, first);
    assert_eq!(net.b.ike_sas(), vec![rekeys[0].1]);
    assert_eq!(net.a.ike_sas().len(), 1);
    assert_eq!(prove_all(&net), 2);
    // The next CHILD_SA lands on the new IKE SA, with no further rekey.
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(ike_rekeys(&net.events_b).len(), 1);
    assert_eq!(net.b.child_sas(rekeys[0].1).len(), 3);
    assert_eq!(prove_all(&net), 3);
}

#[test]
fn quick_mode_limit_on_both_sides_keeps_every_child_sa_working() {
    let limited = MainModeProposal {
        quick_mode_limit: 2,
        ..gcm()
    };
    // Several seeds: nonces and SPIs decide rekey collisions, if any.
    for seed in 10..20 {
        both_sides_limited(limited, seed);
    }
}

fn both_sides_limited(limited: MainModeProposal, seed: u64) {
    let config = EndpointConfig::default();
    let mut net = established((limited, config), (limited, config), seed);
    for _ in 0..5 {
        net.acquire();
        net.run(Duration::from_secs(5));
    }
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    assert!(!ike_rekeys(&net.events_a).is_empty());
    assert_eq!(net.a.ike_sas().len(), 1);
    assert_eq!(net.b.ike_sas().len(), 1);
    let ike = net.a.ike_sas()[0];
    assert_eq!(net.a.child_sas(ike).len(), 6);
    assert_eq!(prove_all(&net), 6);
}

/// Delivers everything in flight between A and B by hand, leaving out
/// A's INFORMATIONAL requests (A's Deletes never arrive), until quiet.
fn pump_without_deletes_from_a(net: &mut Net) {
    loop {
        let mut moved = false;
        while let Some(tx) = net.a.poll_transmit() {
            let info_request = IkeHeader::parse(&tx.bytes)
                .is_ok_and(|h| h.exchange_type == exchange_type::INFORMATIONAL && !h.is_response());
            if !info_request {
                net.now += Duration::from_millis(10);
                net.b
                    .handle_datagram(net.now, tx.remote, tx.local, &tx.bytes);
                moved = true;
            }
        }
        while let Some(tx) = net.b.poll_transmit() {
            net.now += Duration::from_millis(10);
            net.a
                .handle_datagram(net.now, tx.remote, tx.local, &tx.bytes);
            moved = true;
        }
        while let Some(e) = net.a.poll_event() {
            net.events_a.push(e);
        }
        while let Some(e) = net.b.poll_event() {
            net.events_b.push(e);
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn ike_sas_a_peer_rekeyed_and_never_deleted_are_bounded() {
    let b = EndpointConfig {
        max_ike_sas_per_peer: 1,
        ..EndpointConfig::default()
    };
    let mut net = established((gcm(), EndpointConfig::default()), (gcm(), b), 11);
    // A rekeys, its Delete of the old IKE SA is lost: B keeps the old one.
    let first = net.a.ike_sas()[0];
    assert!(net.a.rekey_ike_sa(net.now, first));
    pump_without_deletes_from_a(&mut net);
    assert_eq!(ike_rekeys(&net.events_b).len(), 1);
    assert_eq!(net.b.ike_sas().len(), 2, "old and new at B");
    // A rekeys the new one: B has two already, its bound's double.
    let second = ike_rekeys(&net.events_a)[0].1;
    assert!(net.a.rekey_ike_sa(net.now, second));
    pump_without_deletes_from_a(&mut net);
    assert_eq!(ike_rekeys(&net.events_b).len(), 1, "refused");
    assert_eq!(net.b.ike_sas().len(), 2);
    let fb = failures(&net.events_b);
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(fb[0].reason, FailureReason::IkeSaLimit);
    assert_eq!(fb[0].stage, Stage::CreateChildSa);
    // TEMPORARY_FAILURE: A will retry, reporting no failure meanwhile.
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    // The CHILD_SA lives on the new IKE SA and works.
    assert_eq!(net.a.child_sas(second).len(), 1);
    assert_eq!(prove_all(&net), 1);
    // Once the Deletes get through, A's retried rekey succeeds.
    net.run(Duration::from_secs(60));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert_eq!(ike_rekeys(&net.events_b).len(), 2);
    assert_eq!((net.a.ike_sas().len(), net.b.ike_sas().len()), (1, 1));
    assert_eq!(prove_all(&net), 1);
}
