//! IKE fragmentation (RFC 7383) between two endpoints over the simulated
//! network: a chain of RSA-4096 certificates (two intermediates) that
//! cannot travel in 576-octet IPv4 packets whole, sent and reassembled in
//! both directions, under loss, duplication and reordering, within the
//! reassembly limits, and left alone when one side does not support it.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::pki::{Ca, EndEntity, Key, San, credentials, today};
use common::*;
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModePolicy,
    MainModeProposal,
};
use palisade_ike::{
    Credentials, DropReason, Endpoint, EndpointConfig, FailurePoint, FailureReason,
    FragmentationConfig, Identity, IkePolicy, Stage, StaticPolicy,
};
use palisade_wire::ikev2::{IkeHeader, payload_type};

/// 576-octet IPv4 packets less the IPv4 and UDP headers (RFC 7383 §2.5.1).
const MAX_V4_MESSAGE: usize = 576 - 20 - 8;

/// root -> intermediate 1 -> intermediate 2 -> A and B, all RSA-4096:
/// each certificate is over 1.3 KB.
struct BigPki {
    root: Ca,
    inter1: Ca,
    inter2: Ca,
    a: EndEntity,
    b: EndEntity,
}

/// Made once: RSA-4096 key generation takes a while.
fn big_pki() -> &'static BigPki {
    static PKI: OnceLock<BigPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root = Ca::root("Palisade Big Root", Key::Rsa4096);
        let inter1 = root.intermediate("Palisade Big Intermediate 1", Key::Rsa4096);
        let inter2 = inter1.intermediate("Palisade Big Intermediate 2", Key::Rsa4096);
        let a = inter2.end_entity("a.example.org", &[San::Ip(addr(A).ip())], Key::Rsa4096);
        let b = inter2.end_entity("b.example.org", &[San::Ip(addr(B).ip())], Key::Rsa4096);
        BigPki {
            root,
            inter1,
            inter2,
            a,
            b,
        }
    })
}

fn policy(creds: Arc<Credentials>, proposal: MainModeProposal) -> IkePolicy {
    IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::certificate(
            [PathBuf::from("/etc/palisade/root.pem")],
            PathBuf::from("/etc/palisade/cert.pem"),
            PathBuf::from("/etc/palisade/key.pem"),
        )],
        vec![proposal],
    ))
    .with_certificates(creds)
}

fn gcm() -> MainModeProposal {
    mm(IkeCipher::AesGcm256, IkeIntegrity::Sha256, DhGroup::Ecp256)
}

fn net_with(
    proposal: MainModeProposal,
    config_a: EndpointConfig,
    config_b: EndpointConfig,
    seed: u64,
) -> Net {
    let p = big_pki();
    let ike_a = policy(
        credentials(&p.a, &[&p.inter2, &p.inter1], &[&p.root]),
        proposal,
    );
    let ike_b = policy(
        credentials(&p.b, &[&p.inter2, &p.inter1], &[&p.root]),
        proposal,
    );
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::with_config(
        transport_policy(B, ike_a, qm.clone()),
        StaticPolicy::new(),
        seed,
        config_a,
    );
    net.b = Endpoint::with_random(
        config_b,
        transport_policy(A, ike_b, qm),
        Seeded(seed ^ 0x5A5A_5A5A_0000),
    );
    net.a.set_unix_time(net.now, today());
    net.b.set_unix_time(net.now, today());
    net
}

fn is_fragment(bytes: &[u8]) -> bool {
    IkeHeader::parse(bytes).is_ok_and(|h| h.next_payload == payload_type::SKF)
}

fn assert_established(net: &Net) {
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (ia, ib) = (established(&net.events_a), established(&net.events_b));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    let p = big_pki();
    assert_eq!(
        ia[0].peer_id,
        Identity::DerAsn1Dn(p.b.cert.subject_der().to_vec())
    );
    assert_eq!(
        ib[0].peer_id,
        Identity::DerAsn1Dn(p.a.cert.subject_der().to_vec())
    );
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1));
    prove_with_esp(ca[0], cb[0], net.now);
}

#[test]
fn a_large_chain_travels_in_fragments_both_ways() {
    let cbc = mm(IkeCipher::Aes256, IkeIntegrity::Sha256, DhGroup::Ecp256);
    for proposal in [gcm(), cbc] {
        let config = EndpointConfig::default();
        let mut net = net_with(proposal, config, config, 1);
        net.acquire();
        net.run(Duration::from_secs(10));
        assert_established(&net);
        let from = |a: bool| -> Vec<&Vec<u8>> {
            net.log
                .iter()
                .filter(|(from_a, m)| *from_a == a && is_fragment(m))
                .map(|(_, m)| m)
                .collect()
        };
        let (frags_a, frags_b) = (from(true), from(false));
        // Four certificates' worth (three sent by each side) needs many.
        assert!(frags_a.len() >= 8, "{}", frags_a.len());
        assert!(frags_b.len() >= 8, "{}", frags_b.len());
        let largest = net.log.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        assert!(
            largest <= MAX_V4_MESSAGE,
            "{largest} octets in one datagram"
        );
        // IKE_SA_INIT twice, then nothing but fragments.
        assert_eq!(net.log.len(), 2 + frags_a.len() + frags_b.len());
        for (ep, frags) in [(&net.a, &frags_a), (&net.b, &frags_b)] {
            let c = ep.counters();
            assert_eq!(c.fragments_sent, frags.len() as u64);
            assert_eq!(c.messages_reassembled, 1);
            assert_eq!(c.fragments_dropped, 0);
        }
        assert_eq!(net.b.counters().fragments_received, frags_a.len() as u64);
    }
}

#[test]
fn fragments_survive_loss_duplication_and_reordering() {
    let mut resent = 0;
    for seed in 1..=6 {
        let config = EndpointConfig::default();
        let mut net = net_with(gcm(), config, config, seed);
        net.loss = 0.03;
        net.duplicate = 0.2;
        net.jitter_ms = 40;
        net.acquire();
        net.run(Duration::from_secs(120));
        assert_established(&net);
        resent += net.a.counters().retransmissions;
        // Duplicates are dropped, not reassembled twice.
        assert_eq!(net.b.counters().messages_reassembled, 1);
        assert_eq!(net.a.counters().messages_reassembled, 1);
    }
    assert!(resent > 0, "some run lost a fragment and resent them all");
}

#[test]
fn without_fragmentation_on_one_side_messages_go_whole() {
    let off = EndpointConfig {
        fragmentation: FragmentationConfig {
            enabled: false,
            ..FragmentationConfig::default()
        },
        ..EndpointConfig::default()
    };
    for (config_a, config_b) in [
        (EndpointConfig::default(), off),
        (off, EndpointConfig::default()),
    ] {
        let mut net = net_with(gcm(), config_a, config_b, 2);
        net.acquire();
        net.run(Duration::from_secs(10));
        assert_established(&net);
        assert!(!net.log.iter().any(|(_, m)| is_fragment(m)));
        assert_eq!(net.log.len(), 4);
        assert!(net.log[2].1.len() > MAX_V4_MESSAGE);
    }
}

#[test]
fn reassembly_limits_drop_and_count() {
    for limits in [
        FragmentationConfig {
            max_fragments: 4,
            ..FragmentationConfig::default()
        },
        FragmentationConfig {
            max_message: 2000,
            ..FragmentationConfig::default()
        },
    ] {
        let strict = EndpointConfig {
            fragmentation: limits,
            ..EndpointConfig::default()
        };
        let mut net = net_with(gcm(), EndpointConfig::default(), strict, 3);
        net.acquire();
        net.run(Duration::from_secs(300));
        assert!(established(&net.events_b).is_empty());
        assert_eq!(net.b.counters().messages_reassembled, 0);
        assert!(net.b.counters().fragments_dropped > 0);
        let fa = failures(&net.events_a);
        assert_eq!(fa.len(), 1, "{:?}", net.events_a);
        assert_eq!(
            (fa[0].stage, fa[0].point, fa[0].reason),
            (
                Stage::IkeAuth,
                FailurePoint::Local,
                FailureReason::PeerUnreachable
            )
        );
    }
}

#[test]
fn a_replayed_first_fragment_brings_the_response_again_and_bad_ones_are_dropped() {
    let config = EndpointConfig::default();
    let mut net = net_with(gcm(), config, config, 4);
    net.acquire();
    net.run(Duration::from_secs(10));
    assert_established(&net);
    let request: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(from_a, m)| *from_a && is_fragment(m))
        .map(|(_, m)| m.clone())
        .collect();
    let response_len = net
        .log
        .iter()
        .filter(|(from_a, m)| !*from_a && is_fragment(m))
        .count();
    let (a, b) = (addr(A), addr(B));

    // Fragment 1 of the answered request: every response fragment again,
    // byte for byte.
    let before = net.b.counters().dropped(DropReason::Retransmission);
    net.b.handle_datagram(net.now, b, a, &request[0]);
    let mut again = Vec::new();
    while let Some(tx) = net.b.poll_transmit() {
        again.push(tx.bytes);
    }
    assert_eq!(again.len(), response_len);
    let original: Vec<&Vec<u8>> = net
        .log
        .iter()
        .filter(|(from_a, m)| !*from_a && is_fragment(m))
        .map(|(_, m)| m)
        .collect();
    assert!(again.iter().zip(&original).all(|(x, y)| x == *y));
    assert_eq!(
        net.b.counters().dropped(DropReason::Retransmission),
        before + 1
    );
    // The other fragments of it: nothing.
    net.b.handle_datagram(net.now, b, a, &request[1]);
    assert!(net.b.poll_transmit().is_none());

    // A corrupted fragment fails its integrity check.
    let dropped = net.b.counters().fragments_dropped;
    let integrity = net.b.counters().dropped(DropReason::Integrity);
    let mut bad = request[0].clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x80;
    net.b.handle_datagram(net.now, b, a, &bad);
    assert!(net.b.poll_transmit().is_none());
    assert_eq!(net.b.counters().fragments_dropped, dropped + 1);
    assert_eq!(
        net.b.counters().dropped(DropReason::Integrity),
        integrity + 1
    );

    // A truncated one is malformed.
    let malformed = net.b.counters().dropped(DropReason::Malformed);
    let mut short = request[0][..40].to_vec();
    short[24..28].copy_from_slice(&40u32.to_be_bytes());
    net.b.handle_datagram(net.now, b, a, &short);
    assert!(net.b.counters().dropped(DropReason::Malformed) > malformed);
    assert!(ever_established(&net));
}

fn ever_established(net: &Net) -> bool {
    !net.b.ike_sas().is_empty() && !net.a.ike_sas().is_empty()
}

#[test]
fn an_incomplete_message_expires_after_the_reassembly_timeout() {
    let config = EndpointConfig::default();
    let mut net = net_with(gcm(), config, config, 5);
    let (a, b) = (addr(A), addr(B));
    let t0 = net.now;
    net.acquire();
    let init = net.a.poll_transmit().expect("IKE_SA_INIT request");
    net.b.handle_datagram(t0, b, a, &init.bytes);
    let answer = net.b.poll_transmit().expect("IKE_SA_INIT response");
    net.a.handle_datagram(t0, a, b, &answer.bytes);
    let mut fragments = Vec::new();
    while let Some(tx) = net.a.poll_transmit() {
        fragments.push(tx.bytes);
    }
    assert!(fragments.len() > 2 && fragments.iter().all(|f| is_fragment(f)));
    let (last, rest) = fragments.split_last().expect("fragments");

    // All but the last now; the last after the timeout: what was kept is
    // stale and dropped, so nothing is answered.
    for f in rest {
        net.b.handle_datagram(t0, b, a, f);
    }
    let late = t0 + config.fragmentation.reassembly_timeout + Duration::from_secs(1);
    net.b.handle_datagram(late, b, a, last);
    assert!(net.b.poll_transmit().is_none());
    assert_eq!(net.b.counters().fragments_dropped, rest.len() as u64);
    assert_eq!(net.b.counters().messages_reassembled, 0);

    // The retransmitted rest completes the message with the last one kept.
    for f in rest {
        net.b.handle_datagram(late, b, a, f);
    }
    assert_eq!(net.b.counters().messages_reassembled, 1);
    let mut answered = 0;
    while let Some(tx) = net.b.poll_transmit() {
        assert!(is_fragment(&tx.bytes));
        answered += 1;
    }
    assert!(answered > 1);
}
