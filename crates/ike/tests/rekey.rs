//! CREATE_CHILD_SA between two endpoints over the simulated network:
//! further CHILD_SAs, CHILD_SA and IKE SA rekeys started by either side,
//! PFS, INVALID_KE_PAYLOAD, lifetimes that start rekeys, and rekey
//! collisions (RFC 7296 §2.8.1, §2.8.2) scripted message by message in
//! every order that can be arranged. Surviving CHILD_SAs are proven with
//! palisade-esp.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use palisade_filter::policy::{
    DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal, PfsGroup, SaLifetime,
};
use palisade_ike::{ChildSa, ChildSaRekeyed, Endpoint, Event, Expiry, IkeSaId, Transmit};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

fn gcm(dh: DhGroup) -> MainModeProposal {
    mm(IkeCipher::AesGcm128, IkeIntegrity::Sha256, dh)
}

/// Both sides with the same policy, established, events kept.
fn established_with(
    mm_a: &[MainModeProposal],
    qm_a: Vec<IpsecProposal>,
    mm_b: &[MainModeProposal],
    qm_b: Vec<IpsecProposal>,
    seed: u64,
) -> Net {
    let policy_a = transport_policy(B, main_mode("s3cret", mm_a), qm_a);
    let policy_b = transport_policy(A, main_mode("s3cret", mm_b), qm_b);
    let mut net = Net::new(policy_a, policy_b, seed);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    assert_eq!(children(&net.events_a).len(), 1);
    net
}

fn established(seed: u64) -> Net {
    let m = [gcm(DhGroup::Curve25519)];
    let q = vec![IpsecProposal::esp_aes128_gcm()];
    established_with(&m, q.clone(), &m, q, seed)
}

fn ike_a(net: &Net) -> IkeSaId {
    let ids = net.a.ike_sas();
    assert_eq!(ids.len(), 1, "one IKE SA at A: {ids:?}");
    ids[0]
}

fn ike_b(net: &Net) -> IkeSaId {
    let ids = net.b.ike_sas();
    assert_eq!(ids.len(), 1, "one IKE SA at B: {ids:?}");
    ids[0]
}

/// The CHILD_SAs installed and not deleted, by inbound SPI.
fn surviving(events: &[Event]) -> Vec<ChildSa> {
    let mut installed: HashMap<u32, ChildSa> = HashMap::new();
    let mut deleted = HashSet::new();
    for e in events {
        match e {
            Event::ChildSaInstalled(c) => {
                installed.insert(c.inbound_spi, (**c).clone());
            }
            Event::ChildSaDeleted(d) => {
                deleted.insert(d.inbound_spi);
            }
            _ => {}
        }
    }
    let mut v: Vec<ChildSa> = installed
        .into_values()
        .filter(|c| !deleted.contains(&c.inbound_spi))
        .collect();
    v.sort_by_key(|c| c.inbound_spi);
    v
}

fn deleted(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaDeleted(d) => Some(d.inbound_spi),
            _ => None,
        })
        .collect()
}

fn rekeyed(events: &[Event]) -> Vec<ChildSaRekeyed> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaRekeyed(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn ike_rekeyed(events: &[Event]) -> Vec<(IkeSaId, IkeSaId)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
            _ => None,
        })
        .collect()
}

/// Exactly one CHILD_SA pair survives on each side, by the events and by
/// the endpoints' own view; the pairs match and ESP proves the keys.
fn assert_one_pair(net: &Net) -> (ChildSa, ChildSa) {
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (sa, sb) = (surviving(&net.events_a), surviving(&net.events_b));
    assert_eq!((sa.len(), sb.len()), (1, 1), "A {sa:?}\nB {sb:?}");
    let (ca, cb) = (sa[0].clone(), sb[0].clone());
    assert_eq!(ca.inbound_spi, cb.outbound_spi);
    assert_eq!(ca.outbound_spi, cb.inbound_spi);
    assert_eq!(
        net.a.child_sas(ike_a(net)),
        [(ca.inbound_spi, ca.outbound_spi)]
    );
    assert_eq!(
        net.b.child_sas(ike_b(net)),
        [(cb.inbound_spi, cb.outbound_spi)]
    );
    prove_with_esp(&ca, &cb, net.now);
    (ca, cb)
}

fn exchange_of(tx: &Transmit) -> (u8, bool) {
    let h = IkeHeader::parse(&tx.bytes).expect("header");
    (h.exchange_type, h.is_response())
}

/// Moves the endpoints' events into the net's lists.
fn events(net: &mut Net) {
    while let Some(e) = net.a.poll_event() {
        net.events_a.push(e);
    }
    while let Some(e) = net.b.poll_event() {
        net.events_b.push(e);
    }
}

fn take(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

/// One message, taken from the sender, to be delivered by hand.
fn one(ep: &mut Endpoint) -> Transmit {
    let mut v = take(ep);
    assert_eq!(v.len(), 1, "exactly one message: {v:?}");
    v.remove(0)
}

fn to_a(net: &mut Net, tx: &Transmit) {
    net.now += Duration::from_millis(10);
    net.a
        .handle_datagram(net.now, tx.remote, tx.local, &tx.bytes);
    events(net);
}

fn to_b(net: &mut Net, tx: &Transmit) {
    net.now += Duration::from_millis(10);
    net.b
        .handle_datagram(net.now, tx.remote, tx.local, &tx.bytes);
    events(net);
}

fn first_child(net: &Net) -> (u32, u32) {
    let c = children(&net.events_a)[0];
    (c.inbound_spi, c.outbound_spi)
}

#[test]
fn child_sa_rekey_started_by_the_initiator() {
    let mut net = established(1);
    let (old_a, old_b) = first_child(&net);
    let mark = (net.events_a.len(), net.events_b.len());
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
    assert!(
        !net.a.rekey_child_sa(net.now, ike_a(&net), old_a),
        "already rekeying"
    );
    net.run(Duration::from_secs(5));
    let (ca, cb) = assert_one_pair(&net);
    assert_ne!(ca.inbound_spi, old_a);
    // The driver sees the new pair, the relation, then the old pair go.
    for (tail, old, new) in [
        (&net.events_a[mark.0..], old_a, ca.inbound_spi),
        (&net.events_b[mark.1..], old_b, cb.inbound_spi),
    ] {
        assert!(
            matches!(&tail[0], Event::ChildSaInstalled(c) if c.inbound_spi == new),
            "{tail:?}"
        );
        assert!(
            matches!(&tail[1], Event::ChildSaRekeyed(r) if r.old_inbound_spi == old && r.new_inbound_spi == new),
            "{tail:?}"
        );
        assert!(
            matches!(&tail[2], Event::ChildSaDeleted(d) if d.inbound_spi == old),
            "{tail:?}"
        );
        assert_eq!(tail.len(), 3, "{tail:?}");
    }
    assert_eq!(ca.peer_id, children(&net.events_a)[0].peer_id);
    // b answered the rekey: a holds the pair only once the answer arrives, so b's
    // outbound waits; a, the initiator, sends on it at once.
    assert!(cb.outbound_deferred && !ca.outbound_deferred);
    assert!(
        !children(&net.events_b)[0].outbound_deferred,
        "IKE_AUTH's pair"
    );
    // CREATE_CHILD_SA and the INFORMATIONAL Delete, request and response.
    assert_eq!(net.log.len(), 4 + 4);
}

#[test]
fn child_sa_rekey_started_by_the_responder() {
    let mut net = established(2);
    let (old_a, old_b) = first_child(&net);
    assert!(net.b.rekey_child_sa(net.now, ike_b(&net), old_b));
    net.run(Duration::from_secs(5));
    let (ca, _) = assert_one_pair(&net);
    assert_ne!(ca.inbound_spi, old_a);
    assert_eq!(deleted(&net.events_a), [old_a]);
    assert_eq!(deleted(&net.events_b), [old_b]);
    // And once more, from the other side, on the rekeyed pair.
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), ca.inbound_spi));
    net.run(Duration::from_secs(5));
    let (c2, _) = assert_one_pair(&net);
    assert_ne!(c2.inbound_spi, ca.inbound_spi);
}

#[test]
fn a_further_child_sa_for_an_acquire_on_an_established_ike_sa() {
    let mut net = established(3);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (sa, sb) = (surviving(&net.events_a), surviving(&net.events_b));
    assert_eq!((sa.len(), sb.len()), (2, 2));
    assert_eq!(net.a.ike_sas().len(), 1, "no second IKE SA");
    for ca in &sa {
        let cb = sb
            .iter()
            .find(|c| c.inbound_spi == ca.outbound_spi)
            .expect("B has the pair");
        prove_with_esp(ca, cb, net.now);
    }
}

fn rekey_with_pfs(group: PfsGroup, ike: DhGroup, min_request: usize) {
    let m = [gcm(ike)];
    let q = vec![IpsecProposal::esp_aes128_gcm().with_pfs(group)];
    let mut net = established_with(&m, q.clone(), &m, q, 4);
    let (old_a, _) = first_child(&net);
    let logged = net.log.len();
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
    net.run(Duration::from_secs(5));
    assert_one_pair(&net);
    // The request carries a KE payload of the group.
    let request = &net.log[logged];
    assert!(request.0);
    assert!(request.1.len() >= min_request, "{} bytes", request.1.len());
}

#[test]
fn pfs_with_modp2048_in_a_child_sa_rekey() {
    rekey_with_pfs(PfsGroup::Group14, DhGroup::Curve25519, 256 + 100);
}

#[test]
fn pfs_with_curve25519_in_a_child_sa_rekey() {
    rekey_with_pfs(PfsGroup::Curve25519, DhGroup::Ecp256, 32 + 100);
}

#[test]
fn pfs_with_the_main_mode_group_in_a_child_sa_rekey() {
    rekey_with_pfs(PfsGroup::Mm, DhGroup::Ecp384, 96 + 100);
}

#[test]
fn invalid_ke_payload_in_create_child_sa_is_followed() {
    let m = [gcm(DhGroup::Curve25519)];
    let qa = vec![
        IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Ecp256),
        IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Curve25519),
    ];
    let qb = vec![IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Curve25519)];
    let mut net = established_with(&m, qa, &m, qb, 5);
    let (old_a, _) = first_child(&net);
    let logged = net.log.len();
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
    net.run(Duration::from_secs(5));
    assert_one_pair(&net);
    let create_requests = net.log[logged..]
        .iter()
        .filter(|(from_a, m)| {
            let h = IkeHeader::parse(m).expect("header");
            *from_a && h.exchange_type == exchange_type::CREATE_CHILD_SA && !h.is_response()
        })
        .count();
    assert_eq!(create_requests, 2, "asked again with the responder's group");
}

#[test]
fn no_common_pfs_group_fails_the_rekey_but_not_the_sas() {
    let m = [gcm(DhGroup::Curve25519)];
    let qa = vec![IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Ecp256)];
    let qb = vec![IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Group14)];
    let mut net = established_with(&m, qa, &m, qb, 6);
    let (old_a, _) = first_child(&net);
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
    net.run(Duration::from_secs(5));
    let f = failures(&net.events_a);
    assert_eq!(f.len(), 1, "{:?}", net.events_a);
    assert_eq!(f[0].stage, palisade_ike::Stage::CreateChildSa);
    // The old pair still works.
    assert_eq!(net.a.child_sas(ike_a(&net)).len(), 1);
    let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
    prove_with_esp(ca, cb, net.now);
}

fn ike_rekey(seed: u64, by_a: bool) {
    let mut net = established(seed);
    let (old_a, old_b) = (ike_a(&net), ike_b(&net));
    let first = first_child(&net);
    let started = if by_a {
        net.a.rekey_ike_sa(net.now, old_a)
    } else {
        net.b.rekey_ike_sa(net.now, old_b)
    };
    assert!(started);
    net.run(Duration::from_secs(5));
    let (new_a, new_b) = (ike_a(&net), ike_b(&net));
    assert_ne!(new_a, old_a);
    assert_ne!(new_b, old_b);
    assert_eq!(ike_rekeyed(&net.events_a), [(old_a, new_a)]);
    assert_eq!(ike_rekeyed(&net.events_b), [(old_b, new_b)]);
    assert!(matches!(net.events_a.last(), Some(Event::IkeSaDeleted(x)) if *x == old_a));
    assert!(matches!(net.events_b.last(), Some(Event::IkeSaDeleted(x)) if *x == old_b));
    // The CHILD_SA moved, untouched.
    let (ca, _) = assert_one_pair(&net);
    assert_eq!((ca.inbound_spi, ca.outbound_spi), first);
    // The new IKE SA works: a CHILD_SA rekey over it (keys from its SK_d),
    // which keeps the authenticated identity.
    assert!(net.a.rekey_child_sa(net.now, new_a, ca.inbound_spi));
    net.run(Duration::from_secs(5));
    let (c2, _) = assert_one_pair(&net);
    assert_eq!(c2.ike_sa, new_a);
    assert_eq!(c2.peer_id, ca.peer_id);
    assert!(net.a.check_liveness(net.now, new_a));
    assert!(net.b.check_liveness(net.now, new_b));
    net.run(Duration::from_secs(5));
    assert_eq!((ike_a(&net), ike_b(&net)), (new_a, new_b));
}

#[test]
fn ike_sa_rekey_started_by_the_initiator() {
    ike_rekey(7, true);
}

#[test]
fn ike_sa_rekey_started_by_the_responder() {
    ike_rekey(8, false);
}

#[test]
fn ike_sa_rekey_with_modp2048() {
    let m = [mm(
        IkeCipher::Aes128,
        IkeIntegrity::Sha256,
        DhGroup::Group14,
    )];
    let q = vec![IpsecProposal::esp_aes128_gcm().with_pfs(PfsGroup::Group14)];
    let mut net = established_with(&m, q.clone(), &m, q, 9);
    let old = ike_a(&net);
    assert!(net.a.rekey_ike_sa(net.now, old));
    net.run(Duration::from_secs(5));
    let new = ike_a(&net);
    assert_ne!(new, old);
    let (ca, _) = assert_one_pair(&net);
    assert!(net.b.rekey_child_sa(net.now, ike_b(&net), ca.outbound_spi));
    net.run(Duration::from_secs(5));
    assert_one_pair(&net);
}

/// The orders in which two simultaneous rekeys of the same SA can meet.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Both requests arrive before either response; A's response first.
    BothInFlightAFirst,
    /// Both requests arrive before either response; B's response first.
    BothInFlightBFirst,
    /// A's exchange completes before B's request reaches A.
    AsResponseBeforeBsRequest,
    /// B's exchange completes before A's request reaches B.
    BsResponseBeforeAsRequest,
    /// A's request is lost and retransmitted after B's exchange is done.
    AsRequestLost,
    /// Both requests arrive, the response to A is lost: A retransmits and
    /// B answers from its cache.
    ResponseToALost,
}

const ORDERS: [Order; 6] = [
    Order::BothInFlightAFirst,
    Order::BothInFlightBFirst,
    Order::AsResponseBeforeBsRequest,
    Order::BsResponseBeforeAsRequest,
    Order::AsRequestLost,
    Order::ResponseToALost,
];

/// Plays the two CREATE_CHILD_SA requests `ra`, `rb` in `order`, then
/// lets the network finish (Deletes, retransmissions).
fn play(net: &mut Net, order: Order) {
    let ra = one(&mut net.a);
    let rb = one(&mut net.b);
    assert_eq!(exchange_of(&ra), (exchange_type::CREATE_CHILD_SA, false));
    assert_eq!(exchange_of(&rb), (exchange_type::CREATE_CHILD_SA, false));
    match order {
        Order::BothInFlightAFirst | Order::BothInFlightBFirst => {
            to_b(net, &ra);
            let resp_to_a = one(&mut net.b);
            to_a(net, &rb);
            let resp_to_b = one(&mut net.a);
            if matches!(order, Order::BothInFlightAFirst) {
                to_a(net, &resp_to_a);
                to_b(net, &resp_to_b);
            } else {
                to_b(net, &resp_to_b);
                to_a(net, &resp_to_a);
            }
        }
        Order::AsResponseBeforeBsRequest => {
            to_b(net, &ra);
            let resp_to_a = one(&mut net.b);
            to_a(net, &resp_to_a);
            // A is done and sends its Delete; B's request arrives after.
            let after = take(&mut net.a);
            to_a(net, &rb);
            let resp_to_b = one(&mut net.a);
            to_b(net, &resp_to_b);
            for tx in after {
                to_b(net, &tx);
            }
        }
        Order::BsResponseBeforeAsRequest => {
            to_a(net, &rb);
            let resp_to_b = one(&mut net.a);
            to_b(net, &resp_to_b);
            let after = take(&mut net.b);
            to_b(net, &ra);
            let resp_to_a = one(&mut net.b);
            to_a(net, &resp_to_a);
            for tx in after {
                to_a(net, &tx);
            }
        }
        Order::ResponseToALost => {
            to_b(net, &ra);
            drop(one(&mut net.b));
            to_a(net, &rb);
            let resp_to_b = one(&mut net.a);
            to_b(net, &resp_to_b);
        }
        Order::AsRequestLost => {
            drop(ra);
            to_a(net, &rb);
            let resp_to_b = one(&mut net.a);
            to_b(net, &resp_to_b);
            // B's Delete and A's retransmission follow through the network.
        }
    }
    net.run(Duration::from_secs(60));
}

#[test]
fn child_sa_rekey_collisions_in_every_order() {
    for order in ORDERS {
        let mut a_won = 0;
        let mut b_won = 0;
        for seed in 10..18 {
            let mut net = established(seed);
            let (old_a, old_b) = first_child(&net);
            let mark = (net.events_a.len(), net.events_b.len());
            assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
            assert!(net.b.rekey_child_sa(net.now, ike_b(&net), old_b));
            play(&mut net, order);
            let (ca, _) = assert_one_pair(&net);
            assert!(
                deleted(&net.events_a).contains(&old_a),
                "{order:?} seed {seed}"
            );
            assert!(
                deleted(&net.events_b).contains(&old_b),
                "{order:?} seed {seed}"
            );
            // Every pair created and not surviving was deleted on both sides.
            let installed_a = children(&net.events_a[mark.0..]).len();
            let gone_a = deleted(&net.events_a[mark.0..]).len();
            assert_eq!(installed_a + 1 - gone_a, 1, "{order:?} seed {seed}");
            // Both sides name the same successor of the old pair.
            let ra = rekeyed(&net.events_a);
            let rb = rekeyed(&net.events_b);
            assert_eq!(
                ra.last().map(|r| r.new_inbound_spi),
                Some(ca.inbound_spi),
                "{order:?} {ra:?}"
            );
            assert_eq!(
                rb.last().map(|r| r.new_inbound_spi),
                Some(ca.outbound_spi),
                "{order:?} {rb:?}"
            );
            if installed_a == 2 {
                // Two new pairs were made: a real collision was resolved.
                // A answered B's request before its own response came, so
                // B's pair was installed first at A.
                if net.events_a[mark.0..].iter().position(
                    |e| matches!(e, Event::ChildSaInstalled(c) if c.inbound_spi == ca.inbound_spi),
                ) < net.events_a[mark.0..].iter().position(
                    |e| matches!(e, Event::ChildSaInstalled(c) if c.inbound_spi != ca.inbound_spi),
                ) {
                    b_won += 1;
                } else {
                    a_won += 1;
                }
            }
        }
        if matches!(order, Order::BothInFlightAFirst | Order::BothInFlightBFirst) {
            assert!(
                a_won > 0 && b_won > 0,
                "{order:?}: both outcomes over the seeds ({a_won}, {b_won})"
            );
        }
    }
}

#[test]
fn ike_sa_rekey_collisions_in_every_order() {
    for order in ORDERS {
        for seed in 20..26 {
            let mut net = established(seed);
            let (old_a, old_b) = (ike_a(&net), ike_b(&net));
            let first = first_child(&net);
            assert!(net.a.rekey_ike_sa(net.now, old_a));
            assert!(net.b.rekey_ike_sa(net.now, old_b));
            play(&mut net, order);
            // One IKE SA on each side, the same one: a liveness check and a
            // CHILD_SA rekey run over it.
            let (new_a, new_b) = (ike_a(&net), ike_b(&net));
            assert_ne!(new_a, old_a, "{order:?} seed {seed}");
            assert_ne!(new_b, old_b, "{order:?} seed {seed}");
            assert_eq!(
                ike_rekeyed(&net.events_a).last().map(|r| r.1),
                Some(new_a),
                "{order:?} seed {seed}"
            );
            assert_eq!(
                ike_rekeyed(&net.events_b).last().map(|r| r.1),
                Some(new_b),
                "{order:?} seed {seed}"
            );
            let (ca, _) = assert_one_pair(&net);
            assert_eq!(
                (ca.inbound_spi, ca.outbound_spi),
                first,
                "{order:?} seed {seed}"
            );
            // Both in flight: two new IKE SAs were made on each side and the
            // redundant one was deleted along with the old one.
            let ike_deleted = |events: &[Event]| {
                events
                    .iter()
                    .filter(|e| matches!(e, Event::IkeSaDeleted(_)))
                    .count()
            };
            // With the response to A lost and B the winner, B's Delete of
            // the old IKE SA reaches A before A's retransmission: A never
            // learns of its own new IKE SA, and B deletes it after a grace
            // period.
            let (expected_a, expected_b) = match order {
                Order::BothInFlightAFirst | Order::BothInFlightBFirst => (2..=2, 2),
                Order::ResponseToALost => (1..=2, 2),
                _ => (1..=1, 1),
            };
            assert!(
                expected_a.contains(&ike_deleted(&net.events_a)),
                "{order:?} {seed}: {:?}",
                net.events_a
            );
            assert_eq!(ike_deleted(&net.events_b), expected_b, "{order:?} {seed}");
            assert!(net.a.check_liveness(net.now, new_a));
            assert!(net.b.rekey_child_sa(net.now, new_b, ca.outbound_spi));
            net.run(Duration::from_secs(10));
            assert_eq!(
                (ike_a(&net), ike_b(&net)),
                (new_a, new_b),
                "{order:?} seed {seed}"
            );
            let (c2, _) = assert_one_pair(&net);
            assert_ne!(c2.inbound_spi, ca.inbound_spi);
        }
    }
}

fn with_lifetime(seconds: u32, ike_seconds: u32) -> Net {
    let mut m = gcm(DhGroup::Curve25519);
    m.max_lifetime_seconds = ike_seconds;
    let q = IpsecProposal {
        lifetime: SaLifetime {
            seconds,
            kilobytes: 0,
            packets: 0,
        },
        ..IpsecProposal::esp_aes128_gcm()
    };
    established_with(&[m], vec![q.clone()], &[m], vec![q], 30)
}

#[test]
fn the_soft_lifetime_starts_a_child_sa_rekey_with_jitter() {
    let mut net = with_lifetime(100, 28800);
    let (old_a, _) = first_child(&net);
    // Soft expiry at 90 s after the CHILD_SA was made, drawn up to 9 s
    // earlier.
    let until = |net: &Net, secs| net.start + Duration::from_secs(secs) - net.now;
    net.run(until(&net, 80));
    assert!(rekeyed(&net.events_a).is_empty());
    net.run(until(&net, 91));
    let r = rekeyed(&net.events_a);
    assert_eq!(r.len(), 1, "{:?}", net.events_a);
    assert_eq!(r[0].old_inbound_spi, old_a);
    assert_one_pair(&net);
    // And again for each new pair, without ever reaching a hard expiry.
    net.run(until(&net, 300));
    assert!(rekeyed(&net.events_a).len() >= 3);
    assert_one_pair(&net);
}

/// Both ends count the same packets against the same policy: each draws its own soft
/// byte and packet limits, between 81 % and 90 % of the hard ones, so that one rekeys
/// first instead of both at once.
#[test]
fn soft_volume_limits_are_drawn_apart_on_each_side() {
    let q = IpsecProposal {
        lifetime: SaLifetime {
            seconds: 3600,
            kilobytes: 100_000,
            packets: 1_000_000,
        },
        ..IpsecProposal::esp_aes128_gcm()
    };
    let m = gcm(DhGroup::Curve25519);
    let mut softs = Vec::new();
    for seed in 40..44 {
        let net = established_with(&[m], vec![q.clone()], &[m], vec![q.clone()], seed);
        let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
        for c in [ca, cb] {
            let (hard, soft) = (c.lifetime.hard, c.lifetime.soft);
            assert_eq!(hard.bytes, Some(102_400_000));
            assert_eq!(hard.packets, Some(1_000_000));
            let bytes = soft.bytes.expect("soft bytes");
            let packets = soft.packets.expect("soft packets");
            assert!((82_944_000..=92_160_000).contains(&bytes), "{bytes}");
            assert!((810_000..=900_000).contains(&packets), "{packets}");
            softs.push(bytes);
        }
    }
    softs.sort_unstable();
    softs.dedup();
    assert_eq!(softs.len(), 8, "every SA drew its own soft byte limit");
}

#[test]
fn the_ike_sa_lifetime_starts_an_ike_sa_rekey() {
    let mut net = with_lifetime(3600, 300);
    let old = ike_a(&net);
    // Soft expiry at 270 s, drawn up to 27 s earlier.
    let until = |net: &Net, secs| net.start + Duration::from_secs(secs) - net.now;
    net.run(until(&net, 240));
    assert_eq!(ike_a(&net), old);
    net.run(until(&net, 275));
    assert_ne!(ike_a(&net), old);
    assert_eq!(ike_rekeyed(&net.events_a).len(), 1);
    assert_one_pair(&net);
    // The new IKE SA has its own lifetime: rekeyed again, never expired.
    net.run(until(&net, 1000));
    assert!(ike_rekeyed(&net.events_a).len() >= 3);
    assert_one_pair(&net);
}

#[test]
fn data_plane_expiry_rekeys_at_soft_and_deletes_at_hard() {
    let mut net = established(31);
    let (old_a, old_b) = first_child(&net);
    // The outbound SPI names the pair as well.
    assert!(net.a.handle_child_sa_expiry(net.now, old_b, Expiry::Soft));
    net.run(Duration::from_secs(5));
    let (ca, _) = assert_one_pair(&net);
    assert_eq!(rekeyed(&net.events_a)[0].old_inbound_spi, old_a);
    assert!(
        net.b
            .handle_child_sa_expiry(net.now, ca.outbound_spi, Expiry::Hard)
    );
    assert!(
        !net.b
            .handle_child_sa_expiry(net.now, 0x1234_5678, Expiry::Hard)
    );
    net.run(Duration::from_secs(5));
    assert!(surviving(&net.events_a).is_empty());
    assert!(surviving(&net.events_b).is_empty());
    assert_eq!(net.a.ike_sas().len(), 1, "the IKE SA stays");
}

#[test]
fn delete_after_rekey_from_either_side() {
    let mut net = established(32);
    let (old_a, _) = first_child(&net);
    assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
    net.run(Duration::from_secs(5));
    let (ca, _) = assert_one_pair(&net);
    assert!(net.b.delete_child_sa(net.now, ike_b(&net), ca.outbound_spi));
    net.run(Duration::from_secs(5));
    assert!(surviving(&net.events_a).is_empty());
    assert!(net.a.rekey_ike_sa(net.now, ike_a(&net)));
    net.run(Duration::from_secs(5));
    let new_b = ike_b(&net);
    assert!(net.b.delete_ike_sa(net.now, new_b));
    net.run(Duration::from_secs(5));
    assert!(net.a.ike_sas().is_empty());
    assert!(net.b.ike_sas().is_empty());
}

#[test]
fn rekeys_from_both_sides_over_a_lossy_network() {
    for seed in 40..52 {
        let mut net = established(seed);
        net.loss = 0.2;
        net.duplicate = 0.1;
        net.jitter_ms = 30;
        let (old_a, _) = first_child(&net);
        assert!(net.a.rekey_child_sa(net.now, ike_a(&net), old_a));
        assert!(net.b.rekey_ike_sa(net.now, ike_b(&net)));
        net.run(Duration::from_secs(120));
        net.loss = 0.0;
        net.duplicate = 0.0;
        net.run(Duration::from_secs(60));
        let (ca, _) = assert_one_pair(&net);
        assert_ne!(ca.inbound_spi, old_a, "seed {seed}");
        assert_eq!(ike_rekeyed(&net.events_a).len(), 1, "seed {seed}");
        assert_eq!(ike_rekeyed(&net.events_b).len(), 1, "seed {seed}");
    }
}
