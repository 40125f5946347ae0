//! Two endpoints negotiate IKE SAs and CHILD_SAs over a simulated network;
//! the CHILD_SA keys are proven by palisade-esp sealing on one side and
//! opening on the other.

mod common;

use std::time::Duration;

use common::*;
use palisade_crypto::{EncrId, IntegId, KeId};
use palisade_esp::{EspSuite, Mode};
use palisade_filter::policy::{
    AuthTransform, CipherTransform, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal,
    IpsecTunnelPolicy, SaTransform, TrafficSelector, TunnelEndpoints,
};
use palisade_ike::{
    ChildProtocol, Failure, FailurePoint, FailureReason, Identity, QuickModePolicy, Role, Stage,
    StaticPolicy,
};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

/// Negotiates with the same policy on both sides and checks everything
/// that must agree, then proves the keys with ESP.
fn establish(mm_proposal: palisade_filter::policy::MainModeProposal, qm: IpsecProposal) -> Net {
    let policy_a = transport_policy(B, main_mode("s3cret", &[mm_proposal]), vec![qm.clone()]);
    let policy_b = transport_policy(A, main_mode("s3cret", &[mm_proposal]), vec![qm]);
    let mut net = Net::new(policy_a, policy_b, 1);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (ia, ib) = (established(&net.events_a), established(&net.events_b));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_eq!((ia[0].role, ib[0].role), (Role::Initiator, Role::Responder));
    assert_eq!(ia[0].initiator_spi, ib[0].initiator_spi);
    assert_eq!(ia[0].responder_spi, ib[0].responder_spi);
    assert_eq!(ia[0].transforms, ib[0].transforms);
    assert_eq!(ia[0].peer_id, Identity::from_ip(addr(B).ip()));
    assert_eq!(ib[0].peer_id, Identity::from_ip(addr(A).ip()));
    assert!(!ia[0].nat.any() && !ib[0].nat.any());
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1));
    let (ca, cb) = (ca[0], cb[0]);
    assert_eq!(ca.inbound_spi, cb.outbound_spi);
    assert_eq!(ca.outbound_spi, cb.inbound_spi);
    assert_eq!(ca.protocol, cb.protocol);
    assert_eq!((ca.mode, cb.mode), (Mode::Transport, Mode::Transport));
    assert_eq!(ca.esn, cb.esn);
    assert_eq!(ca.peer_id, Identity::from_ip(addr(B).ip()));
    prove_with_esp(ca, cb, net.now);
    net
}

#[test]
fn aes_gcm_128_with_curve25519() {
    let net = establish(gcm(), IpsecProposal::esp_aes128_gcm());
    let t = established(&net.events_a)[0].transforms;
    assert_eq!(
        (t.encr, t.key_bits, t.integ, t.ke),
        (EncrId::AesGcm16, 128, IntegId::None, KeId::Curve25519)
    );
    assert_eq!(
        children(&net.events_a)[0].protocol,
        ChildProtocol::Esp(EspSuite::AES128_GCM16)
    );
    // Four messages: IKE_SA_INIT and IKE_AUTH, request and response.
    assert_eq!(net.log.len(), 4);
}

#[test]
fn aes_cbc_256_hmac_sha256_with_ecp256() {
    let net = establish(
        mm(IkeCipher::Aes256, IkeIntegrity::Sha256, DhGroup::Ecp256),
        IpsecProposal::new(SaTransform::EspAuthAndCipher {
            auth: AuthTransform::HmacSha256_128,
            cipher: CipherTransform::CbcAes256,
        }),
    );
    let t = established(&net.events_b)[0].transforms;
    assert_eq!(
        (t.encr, t.key_bits, t.integ, t.ke),
        (EncrId::AesCbc, 256, IntegId::HmacSha2_256_128, KeId::Ecp256)
    );
    assert_eq!(
        children(&net.events_b)[0].protocol,
        ChildProtocol::Esp(EspSuite::AES256_CBC_SHA256_128)
    );
}

#[test]
fn chacha20_poly1305_with_ecp384() {
    let net = establish(
        mm(
            IkeCipher::ChaCha20Poly1305,
            IkeIntegrity::Sha384,
            DhGroup::Ecp384,
        ),
        IpsecProposal::esp_chacha20_poly1305(),
    );
    let t = established(&net.events_a)[0].transforms;
    assert_eq!((t.encr, t.ke), (EncrId::ChaCha20Poly1305, KeId::Ecp384));
    assert!(
        children(&net.events_a)[0].esn,
        "ESN preferred by default on both sides"
    );
}

#[test]
fn ah_and_sha1_cbc_children_work_too() {
    establish(
        mm(IkeCipher::Aes128, IkeIntegrity::Sha1, DhGroup::Ecp256),
        IpsecProposal::ah_sha256(),
    );
    establish(
        mm(
            IkeCipher::AesGcm256,
            IkeIntegrity::Sha512,
            DhGroup::Curve25519,
        ),
        IpsecProposal::esp_aes128_cbc_sha256(),
    );
}

#[test]
fn invalid_ke_payload_is_followed_with_the_responders_group() {
    let gcm = |dh| mm(IkeCipher::AesGcm128, IkeIntegrity::Sha256, dh);
    let policy_a = transport_policy(
        B,
        main_mode("k", &[gcm(DhGroup::Curve25519), gcm(DhGroup::Ecp256)]),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let policy_b = transport_policy(
        A,
        main_mode("k", &[gcm(DhGroup::Ecp256)]),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let mut net = Net::new(policy_a, policy_b, 2);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty() && failures(&net.events_b).is_empty());
    assert_eq!(established(&net.events_a)[0].transforms.ke, KeId::Ecp256);
    prove_with_esp(
        children(&net.events_a)[0],
        children(&net.events_b)[0],
        net.now,
    );
    // Request, INVALID_KE_PAYLOAD, request again, response, then IKE_AUTH.
    let init_requests: Vec<_> = net
        .log
        .iter()
        .filter(|(from_a, m)| {
            *from_a
                && IkeHeader::parse(m).expect("header").exchange_type == exchange_type::IKE_SA_INIT
        })
        .collect();
    assert_eq!(init_requests.len(), 2);
    assert_eq!(net.log.len(), 6);
}

#[test]
fn no_proposal_chosen_fails_on_both_sides() {
    let policy_a = transport_policy(
        B,
        main_mode("k", &[gcm()]),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let policy_b = transport_policy(
        A,
        main_mode(
            "k",
            &[mm(
                IkeCipher::Aes256,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            )],
        ),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let mut net = Net::new(policy_a, policy_b, 3);
    net.acquire();
    net.run(Duration::from_secs(60));
    let (fa, fb) = (failures(&net.events_a), failures(&net.events_b));
    assert_eq!(fa.len(), 1, "{:?}", net.events_a);
    assert_eq!(fb.len(), 1, "{:?}", net.events_b);
    refused_by_b(
        fa[0],
        fb[0],
        Stage::IkeSaInit,
        FailureReason::NoProposalChosen,
    );
    assert!(established(&net.events_a).is_empty() && established(&net.events_b).is_empty());
    assert_eq!(net.a.poll_timeout(), None, "nothing left to retransmit");
}

#[test]
fn child_sa_no_proposal_chosen_keeps_the_ike_sa() {
    let ike = || main_mode("k", &[gcm()]);
    let policy_a = transport_policy(B, ike(), vec![IpsecProposal::esp_aes128_gcm()]);
    let policy_b = transport_policy(A, ike(), vec![IpsecProposal::esp_chacha20_poly1305()]);
    let mut net = Net::new(policy_a, policy_b, 4);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(
        (
            established(&net.events_a).len(),
            established(&net.events_b).len()
        ),
        (1, 1)
    );
    assert!(children(&net.events_a).is_empty() && children(&net.events_b).is_empty());
    let (fa, fb) = (failures(&net.events_a), failures(&net.events_b));
    refused_by_b(
        fa[0],
        fb[0],
        Stage::ChildSa,
        FailureReason::NoProposalChosen,
    );
    assert_eq!(net.a.ike_sas().len(), 1);
}

#[test]
fn wrong_psk_is_authentication_failed() {
    let p = [gcm()];
    let policy_a = transport_policy(
        B,
        main_mode("right", &p),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let policy_b = transport_policy(
        A,
        main_mode("wrong", &p),
        vec![IpsecProposal::esp_aes128_gcm()],
    );
    let mut net = Net::new(policy_a, policy_b, 5);
    net.acquire();
    net.run(Duration::from_secs(60));
    let (fa, fb) = (failures(&net.events_a), failures(&net.events_b));
    assert_eq!(
        (fa.len(), fb.len()),
        (1, 1),
        "{:?} {:?}",
        net.events_a,
        net.events_b
    );
    refused_by_b(
        fa[0],
        fb[0],
        Stage::IkeAuth,
        FailureReason::AuthenticationFailed,
    );
    assert!(established(&net.events_a).is_empty() && established(&net.events_b).is_empty());
    assert!(children(&net.events_a).is_empty() && children(&net.events_b).is_empty());
}

#[test]
fn a_required_peer_identity_is_enforced() {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let with_ids = |local: &str, remote: &str| {
        let mut ike = main_mode("k", &p);
        ike.local_id = Some(Identity::Fqdn(local.into()));
        ike.remote_id = Some(Identity::Fqdn(remote.into()));
        ike
    };
    // Matching identities: established, and reported.
    let mut net = Net::new(
        transport_policy(B, with_ids("a.example", "b.example"), qm.clone()),
        transport_policy(A, with_ids("b.example", "a.example"), qm.clone()),
        6,
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(
        established(&net.events_a)[0].peer_id,
        Identity::Fqdn("b.example".into())
    );
    assert_eq!(
        established(&net.events_b)[0].peer_id,
        Identity::Fqdn("a.example".into())
    );
    assert_eq!(
        children(&net.events_b)[0].peer_id,
        Identity::Fqdn("a.example".into())
    );
    // The responder wants someone else.
    let mut net = Net::new(
        transport_policy(B, with_ids("a.example", "b.example"), qm.clone()),
        transport_policy(A, with_ids("b.example", "mallory.example"), qm),
        7,
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(
        failures(&net.events_b)[0].reason,
        FailureReason::AuthenticationFailed
    );
    assert_eq!(
        failures(&net.events_a)[0].reason,
        FailureReason::AuthenticationFailed
    );
}

#[test]
fn tunnel_mode_is_narrowed_to_the_responders_policy() {
    let range =
        |a: &str, b: &str| TrafficSelector::range(a.parse().expect("ip"), b.parse().expect("ip"));
    let p = [mm(
        IkeCipher::AesGcm256,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )];
    let tunnel = |l: &str, r: &str| {
        QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
            TunnelEndpoints::new(addr(l).ip(), addr(r).ip()),
            vec![IpsecProposal::esp_aes256_gcm()],
        ))
    };
    let policy_a = StaticPolicy::new()
        .with_peer(Some(addr(B).ip()), main_mode("k", &p), Some(tunnel(A, B)))
        .with_selectors(
            vec![range("10.1.0.0", "10.1.255.255")],
            vec![range("10.2.0.0", "10.2.255.255")],
        );
    let policy_b = StaticPolicy::new()
        .with_peer(Some(addr(A).ip()), main_mode("k", &p), Some(tunnel(B, A)))
        .with_selectors(
            vec![range("10.2.1.0", "10.2.1.255")],
            vec![range("10.1.0.0", "10.1.255.255")],
        );
    let mut net = Net::new(policy_a, policy_b, 8);
    net.acquire();
    net.run(Duration::from_secs(5));
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!(
        (ca.len(), cb.len()),
        (1, 1),
        "{:?} {:?}",
        net.events_a,
        net.events_b
    );
    assert_eq!((ca[0].mode, cb[0].mode), (Mode::Tunnel, Mode::Tunnel));
    assert_eq!(
        ca[0].remote_selectors,
        vec![range("10.2.1.0", "10.2.1.255")]
    );
    assert_eq!(
        ca[0].local_selectors,
        vec![range("10.1.0.0", "10.1.255.255")]
    );
    assert_eq!(cb[0].local_selectors, ca[0].remote_selectors);
    assert_eq!(cb[0].remote_selectors, ca[0].local_selectors);
    // Disjoint selectors: TS_UNACCEPTABLE for the CHILD_SA, both sides.
    let policy_b = StaticPolicy::new()
        .with_peer(Some(addr(A).ip()), main_mode("k", &p), Some(tunnel(B, A)))
        .with_selectors(
            vec![range("10.9.0.0", "10.9.0.255")],
            vec![range("10.1.0.0", "10.1.255.255")],
        );
    let policy_a = StaticPolicy::new()
        .with_peer(Some(addr(B).ip()), main_mode("k", &p), Some(tunnel(A, B)))
        .with_selectors(
            vec![range("10.1.0.0", "10.1.255.255")],
            vec![range("10.2.0.0", "10.2.255.255")],
        );
    let mut net = Net::new(policy_a, policy_b, 9);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(
        failures(&net.events_a)[0].reason,
        FailureReason::TsUnacceptable
    );
    assert_eq!(
        failures(&net.events_b)[0].reason,
        FailureReason::TsUnacceptable
    );
}

#[test]
fn transport_policy_against_tunnel_policy_is_a_mode_mismatch() {
    let p = [mm(
        IkeCipher::AesGcm256,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )];
    let policy_a = StaticPolicy::new()
        .with_peer(
            Some(addr(B).ip()),
            main_mode("k", &p),
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(addr(A).ip(), addr(B).ip()),
                vec![IpsecProposal::esp_aes256_gcm()],
            ))),
        )
        .with_selectors(vec![common_host(A)], vec![common_host(B)]);
    let policy_b = transport_policy(A, main_mode("k", &p), vec![IpsecProposal::esp_aes256_gcm()]);
    let mut net = Net::new(policy_a, policy_b, 10);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(
        failures(&net.events_b)[0].reason,
        FailureReason::ModeMismatch
    );
    assert_eq!(
        failures(&net.events_a)[0].reason,
        FailureReason::NoProposalChosen
    );
}

fn common_host(s: &str) -> TrafficSelector {
    palisade_ike::traffic_selector::host(addr(s).ip())
}

#[test]
fn no_policy_is_reported_before_anything_is_sent() {
    let mut net = Net::new(StaticPolicy::new(), StaticPolicy::new(), 11);
    net.acquire();
    net.run(Duration::from_secs(1));
    assert!(net.log.is_empty());
    let f = failures(&net.events_a);
    assert_eq!(
        (f[0].stage, f[0].reason),
        (Stage::Policy, FailureReason::NoPolicy)
    );
}

#[test]
fn ipv6_peers_with_address_identities() {
    const A6: &str = "[2001:db8::1]:500";
    const B6: &str = "[2001:db8::2]:500";
    let p = [mm(
        IkeCipher::AesGcm256,
        IkeIntegrity::Sha256,
        DhGroup::Ecp256,
    )];
    let qm = vec![IpsecProposal::esp_aes256_gcm()];
    let mut net = Net::new(
        transport_policy(B6, main_mode("k", &p), qm.clone()),
        transport_policy(A6, main_mode("k", &p), qm),
        21,
    );
    net.acquire_between(A6, B6);
    net.run(Duration::from_secs(5));
    assert_eq!(
        established(&net.events_a)[0].peer_id,
        Identity::from_ip(addr(B6).ip())
    );
    assert!(matches!(
        established(&net.events_b)[0].peer_id,
        Identity::Ipv6(_)
    ));
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!(ca[0].local_selectors, vec![common_host(A6)]);
    prove_with_esp(ca[0], cb[0], net.now);
}

#[test]
fn esn_follows_the_endpoint_configuration() {
    use palisade_ike::{EndpointConfig, EsnPolicy};
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    for (esn, expected) in [
        (EsnPolicy::Off, false),
        (EsnPolicy::On, true),
        (EsnPolicy::Either, true),
    ] {
        let config = EndpointConfig {
            esn,
            ..EndpointConfig::default()
        };
        let mut net = Net::with_config(
            transport_policy(B, main_mode("k", &p), qm.clone()),
            transport_policy(A, main_mode("k", &p), qm.clone()),
            22,
            config,
        );
        net.acquire();
        net.run(Duration::from_secs(5));
        let (ca, cb) = (children(&net.events_a), children(&net.events_b));
        assert_eq!((ca[0].esn, cb[0].esn), (expected, expected), "{esn:?}");
        prove_with_esp(ca[0], cb[0], net.now);
    }
}

#[test]
fn a_nat_in_front_of_the_initiator_moves_ike_to_4500_and_encapsulates_esp() {
    use palisade_esp::UdpEncap;
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::new(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        23,
    );
    net.nat_offset = Some(30000);
    net.acquire();
    net.run(Duration::from_secs(5));
    let (ia, ib) = (established(&net.events_a)[0], established(&net.events_b)[0]);
    assert!(ia.nat.local_behind_nat && !ia.nat.remote_behind_nat);
    assert!(ib.nat.remote_behind_nat && !ib.nat.local_behind_nat);
    // IKE_AUTH went from port 4500 (34500 after the NAT).
    assert_eq!(ia.local.port(), 4500);
    assert_eq!(ib.remote.port(), 34500);
    let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
    assert_eq!(
        ca.udp_encap,
        Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500
        })
    );
    assert_eq!(
        cb.udp_encap,
        Some(UdpEncap {
            local_port: 4500,
            remote_port: 34500
        })
    );
    prove_with_esp(ca, cb, net.now);
    // The responder answers at the translated port: a liveness check works.
    assert!(net.b.check_liveness(net.now, ib.id));
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty() && failures(&net.events_b).is_empty());
}

#[test]
fn without_a_nat_a_changed_port_is_not_followed() {
    let mut net = Net::new(
        transport_policy(
            B,
            main_mode("k", &[gcm()]),
            vec![IpsecProposal::esp_aes128_gcm()],
        ),
        transport_policy(
            A,
            main_mode("k", &[gcm()]),
            vec![IpsecProposal::esp_aes128_gcm()],
        ),
        24,
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    let id = established(&net.events_a)[0].id;
    assert!(net.a.check_liveness(net.now, id));
    let request = net.a.poll_transmit().expect("liveness request");
    // The same authentic request, seen from another port.
    let moved: std::net::SocketAddr = "192.0.2.1:1234".parse().expect("addr");
    net.b
        .handle_datagram(net.now, addr(B), moved, &request.bytes);
    let response = net.b.poll_transmit().expect("answered");
    assert_eq!(
        response.remote,
        addr(A),
        "answered at the SA's address, not the new port"
    );
}

/// B refused at `stage` for `reason`: A reports the peer's refusal, B its own.
fn refused_by_b(a: &Failure, b: &Failure, stage: Stage, reason: FailureReason) {
    assert_eq!(
        (a.stage, a.point, a.reason),
        (stage, FailurePoint::Peer, reason)
    );
    assert_eq!(
        (b.stage, b.point, b.reason),
        (stage, FailurePoint::Local, reason)
    );
}

/// A restarted initiator says INITIAL_CONTACT (RFC 7296 §2.4): the responder drops the
/// IKE SA and CHILD_SA it still held from before the restart, without a Delete exchange,
/// and keeps only the new ones. The first establishment removed nothing.
#[test]
fn initial_contact_from_a_restarted_peer_clears_its_stale_sas() {
    let mm = gcm();
    let qm = IpsecProposal::esp_aes128_gcm();
    let policy_a = transport_policy(B, main_mode("s3cret", &[mm]), vec![qm.clone()]);
    let policy_b = transport_policy(A, main_mode("s3cret", &[mm]), vec![qm]);
    let mut net = Net::new(policy_a.clone(), policy_b, 7);
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let old_ike = established(&net.events_b)[0].id;
    let old_child = children(&net.events_b)[0].inbound_spi;
    assert!(
        !net.events_b.iter().any(|e| matches!(
            e,
            palisade_ike::Event::IkeSaDeleted(_) | palisade_ike::Event::ChildSaDeleted(_)
        )),
        "the first contact removed something: {:?}",
        net.events_b
    );

    // A loses all state (a crash and restart) and negotiates afresh.
    net.a = palisade_ike::Endpoint::with_random(
        palisade_ike::EndpointConfig::default(),
        policy_a,
        Seeded(99),
    );
    net.events_a.clear();
    net.events_b.clear();
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    assert_eq!(established(&net.events_b).len(), 1);
    assert!(
        net.events_b
            .iter()
            .any(|e| matches!(e, palisade_ike::Event::IkeSaDeleted(id) if *id == old_ike)),
        "{:?}",
        net.events_b
    );
    assert!(
        net.events_b.iter().any(
            |e| matches!(e, palisade_ike::Event::ChildSaDeleted(d) if d.inbound_spi == old_child)
        ),
        "{:?}",
        net.events_b
    );
    assert_eq!(net.b.ike_sas().len(), 1);
    assert_ne!(net.b.ike_sas()[0], old_ike);
    let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
    prove_with_esp(ca, cb, net.now);
}
