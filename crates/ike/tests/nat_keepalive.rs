//! NAT keepalives (RFC 3948 §2.3, RFC 7296 §2.23) over the simulated
//! network: the side behind the NAT keeps its mapping open with one-octet
//! 0xFF datagrams on its port-4500 path whenever it has sent nothing else
//! there for the interval, for as long as the IKE SA lives; the other side
//! and hosts without a NAT send none.

mod common;

use std::time::{Duration, Instant};

use common::*;
use palisade_filter::policy::IpsecProposal;
use palisade_ike::{DropReason, EndpointConfig, IkeSaId, Transmit};

const INTERVAL: Duration = Duration::from_secs(20);

/// The defaults without dead peer detection, whose INFORMATIONAL requests
/// on the port-4500 path would postpone keepalives in tests that time
/// them over minutes of silence (tests/dead_peer.rs covers it).
fn without_dpd() -> EndpointConfig {
    EndpointConfig {
        dpd_delay: None,
        ..EndpointConfig::default()
    }
}

/// A and B with the same PSK policy; A behind a NAT if `nat`. Runs until
/// both have their CHILD_SA.
fn pair(nat: bool, config: EndpointConfig, seed: u64) -> (Net, IkeSaId, IkeSaId) {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::with_config(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        seed,
        config,
    );
    if nat {
        net.nat_offset = Some(30000);
    }
    net.acquire();
    net.run(Duration::from_secs(2));
    assert_eq!(children(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(children(&net.events_b).len(), 1, "{:?}", net.events_b);
    let (ia, ib) = (established(&net.events_a)[0], established(&net.events_b)[0]);
    assert_eq!(ia.nat.local_behind_nat, nat);
    assert_eq!(ib.nat.remote_behind_nat, nat);
    assert!(!ib.nat.local_behind_nat, "B is never behind the NAT");
    let ids = (ia.id, ib.id);
    (net, ids.0, ids.1)
}

/// Keepalives in the log, sent by A (`true`) or B, with when.
fn keepalives(net: &Net, from_a: bool) -> Vec<(Instant, Transmit)> {
    net.log
        .iter()
        .zip(&net.log_at)
        .filter(|((a, _), (_, tx))| *a == from_a && tx.is_nat_keepalive())
        .map(|(_, (at, tx))| (*at, tx.clone()))
        .collect()
}

/// When A last sent something that was not a keepalive.
fn last_ike_from_a(net: &Net) -> Instant {
    net.log
        .iter()
        .zip(&net.log_at)
        .filter(|((a, _), (_, tx))| *a && !tx.is_nat_keepalive())
        .map(|(_, (at, _))| *at)
        .max()
        .expect("A sent IKE messages")
}

#[test]
fn behind_a_nat_keepalives_go_out_at_the_period_until_the_ike_sa_is_deleted() {
    let (mut net, id_a, _) = pair(true, without_dpd(), 41);
    let established_at = last_ike_from_a(&net);
    net.run(Duration::from_secs(100));
    let sent = keepalives(&net, true);
    // The IKE_AUTH request was the last thing A sent; a keepalive follows
    // one interval after it, then one every interval.
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert_eq!(sent[0].0 - established_at, INTERVAL);
    for w in sent.windows(2) {
        assert_eq!(w[1].0 - w[0].0, INTERVAL);
    }
    for (_, tx) in &sent {
        assert_eq!(tx.bytes, [0xFF]);
        assert_eq!(tx.local, addr("192.0.2.1:4500"), "from our NAT-T port");
        assert_eq!(tx.remote, addr("192.0.2.2:4500"), "to the peer's");
    }
    assert_eq!(net.a.nat_keepalives_sent(), 5);
    // B was handed them (through the NAT) and ignored them.
    assert_eq!(net.b.nat_keepalives_received(), 5);
    assert_eq!(net.b.counters().dropped(DropReason::Malformed), 0);
    assert_eq!(net.b.ike_sas().len(), 1);

    // Deleting the IKE SA stops them.
    assert!(net.a.delete_ike_sa(net.now, id_a));
    net.run(Duration::from_secs(100));
    assert!(net.a.ike_sas().is_empty() && net.b.ike_sas().is_empty());
    assert_eq!(net.a.nat_keepalives_sent(), 5);
    assert_eq!(keepalives(&net, true).len(), 5);
    assert_eq!(net.a.poll_timeout(), None, "no timer left");
}

#[test]
fn keepalives_stop_when_the_peer_deletes_the_ike_sa() {
    let (mut net, _, id_b) = pair(true, EndpointConfig::default(), 42);
    net.run(Duration::from_secs(50));
    assert_eq!(net.a.nat_keepalives_sent(), 2);
    assert!(net.b.delete_ike_sa(net.now, id_b));
    net.run(Duration::from_secs(100));
    assert!(net.a.ike_sas().is_empty());
    assert_eq!(net.a.nat_keepalives_sent(), 2);
}

#[test]
fn the_responder_not_behind_a_nat_sends_none_even_if_the_initiator_is() {
    let (mut net, _, _) = pair(true, EndpointConfig::default(), 43);
    net.run(Duration::from_secs(200));
    assert!(net.a.nat_keepalives_sent() > 0);
    assert_eq!(net.b.nat_keepalives_sent(), 0);
    assert!(keepalives(&net, false).is_empty());
}

#[test]
fn without_a_nat_no_side_sends_keepalives() {
    let (mut net, _, _) = pair(false, EndpointConfig::default(), 44);
    net.run(Duration::from_secs(200));
    assert_eq!(net.a.nat_keepalives_sent(), 0);
    assert_eq!(net.b.nat_keepalives_sent(), 0);
    assert!(!net.log.iter().any(|(_, bytes)| bytes == &[0xFF]));
}

#[test]
fn keepalives_can_be_turned_off() {
    let config = EndpointConfig {
        nat_keepalive_interval: None,
        ..EndpointConfig::default()
    };
    let (mut net, _, _) = pair(true, config, 45);
    net.run(Duration::from_secs(200));
    assert_eq!(net.a.nat_keepalives_sent(), 0);
    assert!(keepalives(&net, true).is_empty());
}

#[test]
fn ike_messages_sent_on_the_path_postpone_the_next_keepalive() {
    let (mut net, id_a, _) = pair(true, EndpointConfig::default(), 46);
    let start = net.now;
    net.run(Duration::from_secs(15));
    assert_eq!(net.a.nat_keepalives_sent(), 0);
    // A liveness check 15 s in: the request refreshes the mapping, so the
    // next keepalive is an interval after it, not after the IKE_AUTH.
    let checked_at = net.now;
    assert!(net.a.check_liveness(checked_at, id_a));
    net.run(Duration::from_secs(30));
    let sent = keepalives(&net, true);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, checked_at + INTERVAL);
    assert!(sent[0].0 - start > INTERVAL);
}

#[test]
fn outbound_esp_reported_by_the_driver_postpones_the_next_keepalive() {
    let (mut net, id_a, _) = pair(true, without_dpd(), 47);
    let established_at = last_ike_from_a(&net);
    net.run(Duration::from_secs(10));
    // ESP went out 10 s and 25 s after IKE_AUTH: no keepalive is needed
    // before 45 s.
    let esp_at = established_at + Duration::from_secs(10);
    assert!(net.a.handle_outbound_activity(esp_at, id_a));
    net.run(Duration::from_secs(15));
    let esp_at = established_at + Duration::from_secs(25);
    assert!(net.a.handle_outbound_activity(esp_at, id_a));
    net.run(Duration::from_secs(30));
    let sent = keepalives(&net, true);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, esp_at + INTERVAL);
    // An unknown IKE SA is refused.
    assert!(!net.a.handle_outbound_activity(net.now, IkeSaId(0x1234)));
}

#[test]
fn a_keepalive_handed_to_the_endpoint_is_counted_not_malformed() {
    let (mut net, _, _) = pair(false, EndpointConfig::default(), 48);
    let before = net.b.counters().clone();
    net.b.handle_datagram(
        net.now,
        addr("192.0.2.2:4500"),
        addr("192.0.2.1:4500"),
        &[0xFF],
    );
    assert_eq!(net.b.nat_keepalives_received(), 1);
    assert_eq!(net.b.counters(), &before, "no drop counted");
    assert!(net.b.poll_transmit().is_none());
    // Any other single octet is still a malformed message.
    net.b.handle_datagram(
        net.now,
        addr("192.0.2.2:4500"),
        addr("192.0.2.1:4500"),
        &[0xFE],
    );
    assert_eq!(net.b.counters().dropped(DropReason::Malformed), 1);
    assert_eq!(net.b.nat_keepalives_received(), 1);
}
