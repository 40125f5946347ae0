//! Post-quantum hybrid IKE SAs between two Palisade endpoints: a classic
//! key exchange in IKE_SA_INIT plus ML-KEM-768 as an additional key
//! exchange (RFC 9370) in IKE_INTERMEDIATE (RFC 9242), over the simulated
//! network.
//!
//! No strongSwan test: charon 5.9.8 (Debian 12) has neither RFC 9370 nor
//! ML-KEM (strongSwan 6.0 added them), so there is nothing to interoperate
//! with in the test environment.

mod common;

use std::time::Duration;

use common::*;
use palisade_crypto::KeId;
use palisade_filter::policy::{DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal};
use palisade_ike::{
    DropReason, Event, FailurePoint, FailureReason, IkePolicy, Stage, StaticPolicy,
};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

fn gcm(dh: DhGroup) -> MainModeProposal {
    mm(IkeCipher::AesGcm256, IkeIntegrity::Sha384, dh)
}

fn hybrid(dh: DhGroup, methods: &[KeId], required: bool) -> IkePolicy {
    main_mode("pq", &[gcm(dh)]).with_additional_key_exchanges(methods.iter().copied(), required)
}

fn classic(dh: DhGroup) -> IkePolicy {
    main_mode("pq", &[gcm(dh)])
}

fn net_with(a: IkePolicy, b: IkePolicy, seed: u64) -> Net {
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let pa: StaticPolicy = transport_policy(B, a, qm.clone());
    let pb: StaticPolicy = transport_policy(A, b, qm);
    Net::new(pa, pb, seed)
}

/// How many messages of `exchange` were sent, requests and responses.
fn count(net: &Net, exchange: u8) -> usize {
    net.log
        .iter()
        .filter(|(_, m)| IkeHeader::parse(m).is_ok_and(|h| h.exchange_type == exchange))
        .count()
}

/// Runs a negotiation expected to succeed and checks both sides agree,
/// then proves the CHILD_SA keys with palisade-esp.
fn establish(a: IkePolicy, b: IkePolicy, seed: u64) -> Net {
    let mut net = net_with(a, b, seed);
    net.acquire();
    net.run(Duration::from_secs(10));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (ia, ib) = (established(&net.events_a), established(&net.events_b));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_eq!(ia[0].transforms, ib[0].transforms);
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1));
    prove_with_esp(ca[0], cb[0], net.now);
    net
}

fn hybrid_with(dh: DhGroup) {
    let net = establish(
        hybrid(dh, &[KeId::MlKem768], true),
        hybrid(dh, &[KeId::MlKem768], true),
        1,
    );
    let t = established(&net.events_a)[0].transforms;
    assert_eq!(t.ke, KeId::try_from(dh.iana_id()).expect("group"));
    assert_eq!(t.addke[0], Some(KeId::MlKem768));
    assert!(t.addke[1..].iter().all(Option::is_none));
    // IKE_SA_INIT, one IKE_INTERMEDIATE, IKE_AUTH: each request and response.
    assert_eq!(count(&net, exchange_type::IKE_SA_INIT), 2);
    assert_eq!(count(&net, exchange_type::IKE_INTERMEDIATE), 2);
    assert_eq!(count(&net, exchange_type::IKE_AUTH), 2);
    assert_eq!(net.log.len(), 6);
    // The IKE_INTERMEDIATE request carries the 1184-octet encapsulation
    // key, the response the 1088-octet ciphertext (plus headers, IV, ICV).
    let sizes: Vec<(bool, usize)> = net
        .log
        .iter()
        .filter(|(_, m)| {
            IkeHeader::parse(m).is_ok_and(|h| h.exchange_type == exchange_type::IKE_INTERMEDIATE)
        })
        .map(|(from_a, m)| (*from_a, m.len()))
        .collect();
    assert!(
        matches!(sizes[..], [(true, req), (false, resp)]
        if (1184 + 8..1184 + 120).contains(&req) && (1088 + 8..1088 + 120).contains(&resp)),
        "{sizes:?}"
    );
    // The message IDs: IKE_INTERMEDIATE is 1, IKE_AUTH 2 (RFC 9242 §3).
    let ids: Vec<(u8, u32)> = net
        .log
        .iter()
        .filter(|(from_a, _)| *from_a)
        .filter_map(|(_, m)| IkeHeader::parse(m).ok())
        .map(|h| (h.exchange_type, h.message_id))
        .collect();
    assert_eq!(
        ids,
        [
            (exchange_type::IKE_SA_INIT, 0),
            (exchange_type::IKE_INTERMEDIATE, 1),
            (exchange_type::IKE_AUTH, 2)
        ]
    );
}

#[test]
fn curve25519_plus_ml_kem_768() {
    hybrid_with(DhGroup::Curve25519);
}

#[test]
fn ecp256_plus_ml_kem_768() {
    hybrid_with(DhGroup::Ecp256);
}

#[test]
fn two_additional_key_exchanges_run_in_two_intermediate_exchanges() {
    // ADDKE1 = ML-KEM-768, ADDKE2 = ECP-384: the keys are updated twice and
    // IntAuth chains over both exchanges.
    let methods = [KeId::MlKem768, KeId::Ecp384];
    let net = establish(
        hybrid(DhGroup::Curve25519, &methods, true),
        hybrid(DhGroup::Curve25519, &methods, true),
        2,
    );
    let t = established(&net.events_b)[0].transforms;
    assert_eq!(t.additional_key_exchanges().collect::<Vec<_>>(), methods);
    assert_eq!(count(&net, exchange_type::IKE_INTERMEDIATE), 4);
    assert_eq!(count(&net, exchange_type::IKE_AUTH), 2);
}

#[test]
fn a_classic_peer_falls_back_when_hybrid_is_optional() {
    // As initiator: we offer hybrid then classic proposals; the classic
    // responder skips the ADDKE proposal.
    let net = establish(
        hybrid(DhGroup::Curve25519, &[KeId::MlKem768], false),
        classic(DhGroup::Curve25519),
        3,
    );
    let t = established(&net.events_a)[0].transforms;
    assert!(t.addke.iter().all(Option::is_none));
    assert_eq!(count(&net, exchange_type::IKE_INTERMEDIATE), 0);
    assert_eq!(net.log.len(), 4);
    // As responder: a classic initiator gets a classic IKE SA.
    let net = establish(
        classic(DhGroup::Ecp256),
        hybrid(DhGroup::Ecp256, &[KeId::MlKem768], false),
        4,
    );
    assert!(
        established(&net.events_b)[0]
            .transforms
            .addke
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(count(&net, exchange_type::IKE_INTERMEDIATE), 0);
}

#[test]
fn a_classic_peer_is_refused_when_hybrid_is_required() {
    // A hybrid-only responder answers a classic initiator NO_PROPOSAL_CHOSEN.
    let mut net = net_with(
        classic(DhGroup::Curve25519),
        hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true),
        5,
    );
    net.acquire();
    net.run(Duration::from_secs(10));
    let f = failures(&net.events_a);
    assert_eq!(f.len(), 1, "{:?}", net.events_a);
    assert_eq!(
        (f[0].stage, f[0].point, f[0].reason),
        (
            Stage::IkeSaInit,
            FailurePoint::Peer,
            FailureReason::NoProposalChosen
        )
    );
    assert_eq!(
        failures(&net.events_b)[0].reason,
        FailureReason::NoProposalChosen
    );
    assert!(established(&net.events_a).is_empty() && established(&net.events_b).is_empty());
    // A hybrid-only initiator is refused by a classic responder.
    let mut net = net_with(
        hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true),
        classic(DhGroup::Curve25519),
        6,
    );
    net.acquire();
    net.run(Duration::from_secs(10));
    assert_eq!(
        failures(&net.events_a)[0].reason,
        FailureReason::NoProposalChosen
    );
    assert!(established(&net.events_b).is_empty());
    assert_eq!(count(&net, exchange_type::IKE_INTERMEDIATE), 0);
}

#[test]
fn a_tampered_ike_intermediate_message_is_dropped_not_a_panic() {
    let p = || hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true);
    let mut net = net_with(p(), p(), 7);
    net.acquire();
    let init = net.a.poll_transmit().expect("init");
    net.b
        .handle_datagram(net.now, addr(B), addr(A), &init.bytes);
    let init_resp = net.b.poll_transmit().expect("init response");
    net.a
        .handle_datagram(net.now, addr(A), addr(B), &init_resp.bytes);
    let inter = net.a.poll_transmit().expect("IKE_INTERMEDIATE");
    assert_eq!(
        IkeHeader::parse(&inter.bytes)
            .expect("header")
            .exchange_type,
        exchange_type::IKE_INTERMEDIATE
    );
    // IKE_AUTH before IKE_INTERMEDIATE is not answered.
    let mut early = inter.bytes.clone();
    early[18] = exchange_type::IKE_AUTH;
    net.b.handle_datagram(net.now, addr(B), addr(A), &early);
    assert_eq!(net.b.counters().dropped(DropReason::Unexpected), 1);
    // Every byte flipped in turn (header, IV, ML-KEM key, ICV): each is
    // dropped by the SK payload's integrity check or as malformed.
    let before = net.b.counters().total_dropped();
    for at in (0..inter.bytes.len()).step_by(97) {
        let mut bad = inter.bytes.clone();
        bad[at] ^= 0x40;
        net.b.handle_datagram(net.now, addr(B), addr(A), &bad);
        assert!(net.b.poll_transmit().is_none(), "byte {at} accepted");
    }
    assert!(net.b.counters().dropped(DropReason::Integrity) > 5);
    assert!(net.b.counters().total_dropped() > before);
    // Tampered responses are dropped by the initiator too.
    net.b
        .handle_datagram(net.now, addr(B), addr(A), &inter.bytes);
    let resp = net.b.poll_transmit().expect("IKE_INTERMEDIATE response");
    let mut bad = resp.bytes.clone();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    net.a.handle_datagram(net.now, addr(A), addr(B), &bad);
    assert_eq!(net.a.counters().dropped(DropReason::Integrity), 1);
    assert!(net.a.poll_transmit().is_none());
    // The genuine response goes on to IKE_AUTH and the rest completes.
    net.a
        .handle_datagram(net.now, addr(A), addr(B), &resp.bytes);
    let auth = net.a.poll_transmit().expect("IKE_AUTH");
    assert_eq!(
        IkeHeader::parse(&auth.bytes).expect("header").exchange_type,
        exchange_type::IKE_AUTH
    );
    net.b
        .handle_datagram(net.now, addr(B), addr(A), &auth.bytes);
    let auth_resp = net.b.poll_transmit().expect("IKE_AUTH response");
    net.a
        .handle_datagram(net.now, addr(A), addr(B), &auth_resp.bytes);
    net.run(Duration::from_secs(1));
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1), "{:?}", net.events_a);
    prove_with_esp(ca[0], cb[0], net.now);
}

#[test]
fn an_ike_intermediate_replayed_into_another_ike_sa_fails() {
    // The same policies twice: the second IKE SA's IKE_INTERMEDIATE request
    // delivered to the first SA's responder (SPIs rewritten) is refused by
    // integrity: keys differ per IKE SA.
    let p = || hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true);
    let mut one = net_with(p(), p(), 8);
    let mut two = net_with(p(), p(), 9);
    let step = |net: &mut Net| {
        net.acquire();
        let init = net.a.poll_transmit().expect("init");
        net.b
            .handle_datagram(net.now, addr(B), addr(A), &init.bytes);
        let resp = net.b.poll_transmit().expect("init response");
        net.a
            .handle_datagram(net.now, addr(A), addr(B), &resp.bytes);
        net.a.poll_transmit().expect("IKE_INTERMEDIATE").bytes
    };
    let genuine = step(&mut one);
    let mut foreign = step(&mut two);
    foreign[..16].copy_from_slice(&genuine[..16]);
    one.b.handle_datagram(one.now, addr(B), addr(A), &foreign);
    assert_eq!(one.b.counters().dropped(DropReason::Integrity), 1);
    assert!(one.b.poll_transmit().is_none());
}

#[test]
fn loss_and_retransmission_through_ike_intermediate() {
    let p = || hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true);
    let (mut converged, mut intermediate_resent) = (0, 0);
    for seed in 1..=30u64 {
        let mut net = net_with(p(), p(), seed);
        net.loss = 0.25;
        net.duplicate = 0.3;
        net.jitter_ms = 400;
        net.acquire();
        net.run(Duration::from_secs(120));
        let requests = net
            .log
            .iter()
            .filter(|(from_a, m)| {
                *from_a
                    && IkeHeader::parse(m)
                        .is_ok_and(|h| h.exchange_type == exchange_type::IKE_INTERMEDIATE)
            })
            .count();
        if requests > 1 {
            intermediate_resent += 1;
        }
        let (ca, cb) = (children(&net.events_a), children(&net.events_b));
        if failures(&net.events_a).is_empty() {
            assert_eq!((ca.len(), cb.len()), (1, 1), "seed {seed}");
            assert_eq!(
                established(&net.events_a)[0].transforms.addke[0],
                Some(KeId::MlKem768)
            );
            prove_with_esp(ca[0], cb[0], net.now);
            converged += 1;
        } else {
            let f = failures(&net.events_a);
            assert_eq!(f[0].reason, FailureReason::PeerUnreachable, "seed {seed}");
            assert!(ca.is_empty());
        }
    }
    assert!(converged >= 26, "only {converged} of 30 converged");
    assert!(intermediate_resent >= 3, "{intermediate_resent}");
}

#[test]
fn a_dead_peer_during_ike_intermediate_is_a_give_up_at_that_stage() {
    let p = || hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true);
    let mut net = net_with(p(), p(), 10);
    net.acquire();
    let init = net.a.poll_transmit().expect("init");
    net.b
        .handle_datagram(net.now, addr(B), addr(A), &init.bytes);
    let resp = net.b.poll_transmit().expect("init response");
    net.a
        .handle_datagram(net.now, addr(A), addr(B), &resp.bytes);
    net.b_dead = true;
    net.run(Duration::from_secs(120));
    let f = failures(&net.events_a);
    assert_eq!(f.len(), 1, "{:?}", net.events_a);
    assert_eq!(
        (f[0].stage, f[0].reason),
        (Stage::IkeIntermediate, FailureReason::PeerUnreachable)
    );
}

#[test]
fn a_hybrid_ike_sa_rekeys_and_its_children_rekey() {
    // IKE SA rekeys are classic for now (RFC 9370 §2.2.3 not done): the
    // new IKE SA's SK_d still descends from the hybrid one's.
    let p = || hybrid(DhGroup::Curve25519, &[KeId::MlKem768], true);
    let mut net = establish(p(), p(), 11);
    let old = established(&net.events_a)[0].id;
    assert!(net.a.rekey_ike_sa(net.now, old));
    net.run(Duration::from_secs(5));
    let rekeyed: Vec<_> = net
        .events_a
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
            _ => None,
        })
        .collect();
    assert_eq!(rekeyed.len(), 1, "{:?}", net.events_a);
    let new = rekeyed[0].1;
    let child = children(&net.events_a)[0].outbound_spi;
    let b_child = children(&net.events_b)[0].inbound_spi;
    assert_eq!(child, b_child);
    let a_inbound = children(&net.events_a)[0].inbound_spi;
    assert!(net.a.rekey_child_sa(net.now, new, a_inbound));
    net.run(Duration::from_secs(5));
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (2, 2));
    let peer = cb
        .iter()
        .find(|c| c.inbound_spi == ca[1].outbound_spi)
        .expect("the new pair on both sides");
    prove_with_esp(ca[1], peer, net.now);
    assert!(failures(&net.events_a).is_empty() && failures(&net.events_b).is_empty());
}
