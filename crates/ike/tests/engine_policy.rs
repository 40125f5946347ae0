//! Policy from the filtering engine (spec §1, §4.1, §6): each endpoint has
//! its own `palisade_filter::Engine` with IKEEXT and IPSEC filters pointing
//! at provider contexts, and negotiates what the deciding filters say.
//! Failures name the filter and provider context involved (§6.2).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use common::pki::{Ca, EndEntity, Key, San, credentials, today};
use common::{Seeded, addr, children, established, failures, mm, prove_with_esp};
use palisade_crypto::{EncrId, KeId};
use palisade_esp::Mode;
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy,
    IpsecTunnelPolicy, KeyingModule, MainModePolicy, MainModeProposal, ProviderContextPolicy,
    TrafficSelector, TunnelEndpoints,
};
use palisade_filter::{
    Action, Caller, Condition, ConditionValue, Engine, Field, Filter, Layer, MatchType,
    ProviderContext, ProviderContextFlags, SessionOptions,
};
use palisade_ike::{
    Acquire, Endpoint, EndpointConfig, EnginePolicy, Event, FailurePoint, FailureReason,
    PolicyLookup, Role, Stage, Traffic,
};
use uuid::Uuid;

const A: &str = "192.0.2.1:500";
const B: &str = "192.0.2.2:500";
const C: &str = "192.0.2.3:500";

/// A filter and the provider context it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Added {
    filter_id: u64,
    filter_key: Uuid,
    context: Uuid,
}

/// Adds a provider context and a PERMIT filter at `layer` pointing at it.
fn add(
    engine: &Engine,
    layer: Layer,
    conditions: Vec<Condition>,
    policy: ProviderContextPolicy,
) -> Added {
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let (context, _) = s
        .add_provider_context(ProviderContext {
            key: Uuid::nil(),
            name: format!("{layer:?}"),
            description: String::new(),
            flags: ProviderContextFlags::NONE,
            provider: None,
            policy,
        })
        .expect("provider context");
    let mut filter = Filter::new(layer, Action::Permit).provider_context(context);
    for c in conditions {
        filter = filter.condition(c);
    }
    let (filter_key, filter_id) = s.add_filter(filter).expect("filter");
    Added {
        filter_id,
        filter_key,
        context,
    }
}

fn ip(s: &str) -> IpAddr {
    addr(s).ip()
}

fn prefix(field: Field, net: &str, len: u8) -> Condition {
    let IpAddr::V4(a) = net.parse().expect("address") else {
        panic!("v4 only");
    };
    Condition::new(field, MatchType::Equal, ConditionValue::v4_prefix(a, len))
}

fn psk_mm(proposals: Vec<MainModeProposal>) -> ProviderContextPolicy {
    ProviderContextPolicy::MainMode {
        module: KeyingModule::Ikev2,
        policy: MainModePolicy::new(
            [AuthenticationMethod::preshared_key("engine psk")],
            proposals,
        ),
    }
}

fn x25519_gcm() -> MainModeProposal {
    mm(
        IkeCipher::AesGcm256,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )
}

fn p256_cbc() -> MainModeProposal {
    mm(IkeCipher::Aes128, IkeIntegrity::Sha256, DhGroup::Ecp256)
}

fn transport_qm() -> ProviderContextPolicy {
    ProviderContextPolicy::Transport {
        module: KeyingModule::Ikev2,
        policy: IpsecTransportPolicy::new(vec![IpsecProposal::esp_aes128_gcm()]),
    }
}

/// A host whose whole policy is one IKEEXT filter (optionally for one
/// peer) and one IPSEC transport filter.
fn transport_host(peer: Option<&str>, proposals: Vec<MainModeProposal>) -> (Engine, Added, Added) {
    let engine = Engine::new();
    let conditions = peer
        .map(|p| vec![prefix(Field::IpRemoteAddress, &ip(p).to_string(), 32)])
        .unwrap_or_default();
    let mm = add(&engine, Layer::IkeextV4, conditions, psk_mm(proposals));
    let qm = add(&engine, Layer::IpsecV4, Vec::new(), transport_qm());
    (engine, mm, qm)
}

/// Endpoints at addresses, joined by a lossless network; datagrams are
/// delivered in order until none is left.
struct Hosts {
    now: Instant,
    hosts: Vec<(SocketAddr, Endpoint, Vec<Event>)>,
}

impl Hosts {
    fn new(hosts: Vec<(&str, Engine)>) -> Self {
        Self::with_policies(
            hosts
                .into_iter()
                .map(|(a, engine)| (a, EnginePolicy::new(engine)))
                .collect(),
        )
    }

    fn with_policies(hosts: Vec<(&str, EnginePolicy)>) -> Self {
        let hosts = hosts
            .into_iter()
            .enumerate()
            .map(|(i, (a, policy))| {
                let ep = Endpoint::with_random(
                    EndpointConfig::default(),
                    policy,
                    Seeded(0x9E37_79B9 + i as u64),
                );
                (addr(a), ep, Vec::new())
            })
            .collect();
        Self {
            now: Instant::now(),
            hosts,
        }
    }

    fn acquire(&mut self, from: &str, to: &str, traffic: Option<Traffic>) {
        let now = self.now;
        let i = self.index(from);
        self.hosts[i].1.handle_acquire(
            now,
            Acquire {
                local: addr(from),
                remote: addr(to),
                traffic,
            },
        );
    }

    fn index(&self, a: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.0 == addr(a))
            .expect("known host")
    }

    fn run(&mut self) {
        for _ in 0..100 {
            let mut sent = Vec::new();
            for h in &mut self.hosts {
                while let Some(e) = h.1.poll_event() {
                    h.2.push(e);
                }
                while let Some(tx) = h.1.poll_transmit() {
                    sent.push(tx);
                }
            }
            if sent.is_empty() {
                return;
            }
            for tx in sent {
                if let Some(h) = self.hosts.iter_mut().find(|h| h.0 == tx.remote) {
                    h.1.handle_datagram(self.now, tx.remote, tx.local, &tx.bytes);
                }
            }
        }
        panic!("endpoints kept talking");
    }

    fn events(&self, a: &str) -> &[Event] {
        &self.hosts[self.index(a)].2
    }
}

#[test]
fn transport_policy_from_the_engine_establishes() {
    let (engine_a, _, _) = transport_host(Some(B), vec![x25519_gcm()]);
    let (engine_b, _, _) = transport_host(None, vec![p256_cbc(), x25519_gcm()]);
    assert_transport_x25519_gcm(Hosts::new(vec![(A, engine_a), (B, engine_b)]));
}

#[test]
fn tunnel_policy_from_the_engine_establishes() {
    // Gateways A (10.1.0.0/16 behind it) and B (10.2.0.0/16).
    let tunnel = |local: &str, remote: &str| ProviderContextPolicy::Tunnel {
        module: KeyingModule::Ikev2,
        policy: IpsecTunnelPolicy::new(
            TunnelEndpoints {
                local_address: ip(local),
                remote_address: ip(remote),
            },
            vec![IpsecProposal::esp_aes256_gcm()],
        ),
    };
    let gateway = |local: &str, remote: &str, mine: &str, theirs: &str| {
        let engine = Engine::new();
        add(
            &engine,
            Layer::IkeextV4,
            vec![prefix(Field::IpRemoteAddress, &ip(remote).to_string(), 32)],
            psk_mm(vec![x25519_gcm()]),
        );
        let qm = add(
            &engine,
            Layer::IpsecV4,
            vec![
                prefix(Field::IpLocalAddress, mine, 16),
                prefix(Field::IpRemoteAddress, theirs, 16),
            ],
            tunnel(local, remote),
        );
        (engine, qm)
    };
    let (engine_a, qm_a) = gateway(A, B, "10.1.0.0", "10.2.0.0");
    let (engine_b, qm_b) = gateway(B, A, "10.2.0.0", "10.1.0.0");

    // The lookup itself: the filter's address conditions are the selectors.
    let host = |s: &str| TrafficSelector::range(s.parse().expect("ip"), s.parse().expect("ip"));
    let flow = Traffic {
        local: host("10.1.0.5"),
        remote: host("10.2.0.7"),
    };
    let child = EnginePolicy::new(engine_a.clone())
        .quick_mode(ip(A), ip(B), &flow)
        .expect("tunnel policy");
    assert!(!child.is_transport());
    let range =
        |a: &str, b: &str| TrafficSelector::range(a.parse().expect("ip"), b.parse().expect("ip"));
    assert_eq!(
        child.local_selectors,
        vec![range("10.1.0.0", "10.1.255.255")]
    );
    assert_eq!(
        child.remote_selectors,
        vec![range("10.2.0.0", "10.2.255.255")]
    );
    assert_eq!(child.origin.map(|o| o.filter_id), Some(qm_a.filter_id));
    assert_eq!(child.origin.map(|o| o.provider_context), Some(qm_a.context));
    // Traffic outside the filter's subnets has no quick-mode policy.
    let elsewhere = Traffic {
        local: host("10.9.0.5"),
        remote: host("10.2.0.7"),
    };
    assert!(
        EnginePolicy::new(engine_a.clone())
            .quick_mode(ip(A), ip(B), &elsewhere)
            .is_none()
    );

    let net_engine_b = engine_b.clone();
    let mut net = Hosts::new(vec![(A, engine_a), (B, engine_b)]);
    net.acquire(A, B, Some(flow));
    net.run();
    for me in [A, B] {
        let ev = net.events(me);
        assert!(failures(ev).is_empty(), "{me}: {:?}", failures(ev));
        let child = children(ev);
        assert_eq!(child.len(), 1, "{me}");
        assert_eq!(child[0].mode, Mode::Tunnel);
    }
    // B's policy came from its own filter: what it agreed to lies inside
    // that filter's subnets and carries the flow that triggered it.
    let b = children(net.events(B))[0];
    let within = |s: &TrafficSelector, net: &TrafficSelector| {
        net.start_address <= s.start_address && s.end_address <= net.end_address
    };
    let (mine, theirs) = (
        range("10.2.0.0", "10.2.255.255"),
        range("10.1.0.0", "10.1.255.255"),
    );
    assert!(!b.local_selectors.is_empty() && !b.remote_selectors.is_empty());
    assert!(
        b.local_selectors.iter().all(|s| within(s, &mine)),
        "{:?}",
        b.local_selectors
    );
    assert!(
        b.remote_selectors.iter().all(|s| within(s, &theirs)),
        "{:?}",
        b.remote_selectors
    );
    assert!(
        b.local_selectors
            .iter()
            .any(|s| within(&host("10.2.0.7"), s))
    );
    assert!(
        b.remote_selectors
            .iter()
            .any(|s| within(&host("10.1.0.5"), s))
    );
    // B decided with its own tunnel filter, seen from its side of the flow.
    let reversed = Traffic {
        local: flow.remote,
        remote: flow.local,
    };
    let origin = EnginePolicy::new(net_engine_b)
        .quick_mode(ip(B), ip(A), &reversed)
        .and_then(|p| p.origin);
    assert_eq!(origin.map(|o| o.filter_id), Some(qm_b.filter_id));
}

#[test]
fn a_peer_without_a_matching_filter_gets_no_ike() {
    // A has policy for C only: an acquire towards B fails before anything
    // is sent.
    let (engine_a, _, _) = transport_host(Some(C), vec![x25519_gcm()]);
    let (engine_b, _, _) = transport_host(Some(C), vec![x25519_gcm()]);
    let mut net = Hosts::new(vec![(A, engine_a), (B, engine_b)]);
    net.acquire(A, B, None);
    let i = net.index(A);
    assert!(net.hosts[i].1.poll_transmit().is_none(), "nothing to send");
    net.run();
    let f = failures(net.events(A));
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].stage, f[0].point, f[0].reason),
        (Stage::Policy, FailurePoint::Local, FailureReason::NoPolicy)
    );
    assert_eq!(f[0].policy.main_mode, None);

    // As responder: B has no filter for A and refuses A's IKE_SA_INIT.
    let (engine_a, mm_a, qm_a) = transport_host(Some(B), vec![x25519_gcm()]);
    let (engine_b, _, _) = transport_host(Some(C), vec![x25519_gcm()]);
    let mut net = Hosts::new(vec![(A, engine_a), (B, engine_b)]);
    net.acquire(A, B, None);
    net.run();
    let fb = failures(net.events(B));
    assert_eq!(fb.len(), 1);
    assert_eq!(
        (fb[0].role, fb[0].stage, fb[0].reason),
        (Role::Responder, Stage::IkeSaInit, FailureReason::NoPolicy)
    );
    let fa = failures(net.events(A));
    assert_eq!(fa.len(), 1);
    assert_eq!(
        (fa[0].point, fa[0].reason),
        (FailurePoint::Peer, FailureReason::NoProposalChosen)
    );
    assert_eq!(
        fa[0].policy.main_mode.map(|o| o.filter_id),
        Some(mm_a.filter_id)
    );
    assert_eq!(
        fa[0].policy.quick_mode.map(|o| o.filter_id),
        Some(qm_a.filter_id)
    );
    assert!(established(net.events(A)).is_empty());
}

#[test]
fn the_most_specific_filter_wins() {
    // B: any peer gets P-256/AES-CBC, A (a /32 filter) Curve25519/AES-GCM.
    let engine_b = Engine::new();
    let any = add(
        &engine_b,
        Layer::IkeextV4,
        Vec::new(),
        psk_mm(vec![p256_cbc()]),
    );
    let for_a = add(
        &engine_b,
        Layer::IkeextV4,
        vec![prefix(Field::IpRemoteAddress, "192.0.2.1", 32)],
        psk_mm(vec![x25519_gcm()]),
    );
    add(&engine_b, Layer::IpsecV4, Vec::new(), transport_qm());
    let lookup = EnginePolicy::new(engine_b.clone());
    let found = lookup.main_mode(ip(B), ip(A)).expect("policy for A");
    assert_eq!(found.main_mode.ike_proposals, vec![x25519_gcm()]);
    assert_eq!(found.origin.map(|o| o.filter_id), Some(for_a.filter_id));
    assert_eq!(found.origin.map(|o| o.filter_key), Some(for_a.filter_key));
    let found = lookup.main_mode(ip(B), ip(C)).expect("policy for C");
    assert_eq!(found.origin.map(|o| o.provider_context), Some(any.context));

    // A and C both offer only Curve25519/AES-GCM: A gets it, C does not.
    let (engine_a, _, _) = transport_host(Some(B), vec![x25519_gcm()]);
    let (engine_c, _, _) = transport_host(Some(B), vec![x25519_gcm()]);
    let mut net = Hosts::new(vec![(A, engine_a), (B, engine_b), (C, engine_c)]);
    net.acquire(A, B, None);
    net.acquire(C, B, None);
    net.run();
    let a = established(net.events(A));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].transforms.ke, KeId::Curve25519);
    assert!(established(net.events(C)).is_empty());
    let fc = failures(net.events(C));
    assert_eq!(fc.len(), 1);
    assert_eq!(fc[0].reason, FailureReason::NoProposalChosen);
}

#[test]
fn no_proposal_chosen_names_the_deciding_filter() {
    let (engine_a, mm_a, qm_a) = transport_host(Some(B), vec![x25519_gcm()]);
    let (engine_b, mm_b, _) = transport_host(Some(A), vec![p256_cbc()]);
    let mut net = Hosts::new(vec![(A, engine_a), (B, engine_b)]);
    net.acquire(A, B, None);
    net.run();

    let fb = failures(net.events(B));
    assert_eq!(fb.len(), 1);
    assert_eq!(
        (fb[0].role, fb[0].stage, fb[0].point, fb[0].reason),
        (
            Role::Responder,
            Stage::IkeSaInit,
            FailurePoint::Local,
            FailureReason::NoProposalChosen
        )
    );
    let mm = fb[0].policy.main_mode.expect("B's IKEEXT filter named");
    assert_eq!(
        (mm.filter_id, mm.filter_key, mm.provider_context),
        (mm_b.filter_id, mm_b.filter_key, mm_b.context)
    );
    assert_eq!(fb[0].policy.quick_mode, None, "no quick mode looked up yet");

    let fa = failures(net.events(A));
    assert_eq!(fa.len(), 1);
    assert_eq!(
        (fa[0].role, fa[0].stage, fa[0].point, fa[0].reason),
        (
            Role::Initiator,
            Stage::IkeSaInit,
            FailurePoint::Peer,
            FailureReason::NoProposalChosen
        )
    );
    let mm = fa[0].policy.main_mode.expect("A's IKEEXT filter named");
    assert_eq!(
        (mm.filter_id, mm.provider_context),
        (mm_a.filter_id, mm_a.context)
    );
    let qm = fa[0].policy.quick_mode.expect("A's IPSEC filter named");
    assert_eq!(
        (qm.filter_id, qm.provider_context),
        (qm_a.filter_id, qm_a.context)
    );
}

#[test]
fn policy_for_another_keying_module_is_not_used() {
    // An IKEv1 main-mode context is not IKEv2 policy, even if its filter
    // decides.
    let engine = Engine::new();
    add(
        &engine,
        Layer::IkeextV4,
        Vec::new(),
        ProviderContextPolicy::MainMode {
            module: KeyingModule::Ike,
            policy: MainModePolicy::ike_default_psk(b"v1".to_vec()),
        },
    );
    assert!(
        EnginePolicy::new(engine.clone())
            .main_mode(ip(A), ip(B))
            .is_none()
    );
    // Filters added later are seen by the next lookup.
    let v2 = add(
        &engine,
        Layer::IkeextV4,
        vec![prefix(Field::IpRemoteAddress, "192.0.2.2", 32)],
        psk_mm(vec![x25519_gcm()]),
    );
    let found = EnginePolicy::new(engine)
        .main_mode(ip(A), ip(B))
        .expect("v2 policy");
    assert_eq!(found.origin.map(|o| o.filter_id), Some(v2.filter_id));
}

#[test]
fn certificate_policy_from_the_engine_establishes() {
    // The main-mode context names PEM files; the daemon's loaded
    // credentials are registered for that context.
    let root = Ca::root("Engine Test Root", Key::EcdsaP256);
    let ee_a = root.end_entity("a.example.org", &[San::Ip(ip(A))], Key::EcdsaP256);
    let ee_b = root.end_entity("b.example.org", &[San::Ip(ip(B))], Key::EcdsaP256);
    let host = |ee: &EndEntity| {
        let engine = Engine::new();
        let mm = add(
            &engine,
            Layer::IkeextV4,
            Vec::new(),
            ProviderContextPolicy::MainMode {
                module: KeyingModule::Ikev2,
                policy: MainModePolicy::new(
                    [AuthenticationMethod::certificate(
                        [PathBuf::from("/etc/palisade/root.pem")],
                        PathBuf::from("/etc/palisade/cert.pem"),
                        PathBuf::from("/etc/palisade/key.pem"),
                    )],
                    vec![x25519_gcm()],
                ),
            },
        );
        add(&engine, Layer::IpsecV4, Vec::new(), transport_qm());
        EnginePolicy::new(engine).with_credentials(mm.context, credentials(ee, &[], &[&root]))
    };
    let mut net = Hosts::with_policies(vec![(A, host(&ee_a)), (B, host(&ee_b))]);
    for h in &mut net.hosts {
        h.1.set_unix_time(net.now, today());
    }
    net.acquire(A, B, None);
    net.run();
    for me in [A, B] {
        let ev = net.events(me);
        assert!(failures(ev).is_empty(), "{me}: {:?}", failures(ev));
        assert_eq!(established(ev).len(), 1, "{me}");
        assert_eq!(children(ev).len(), 1, "{me}");
    }
    let (a, b) = (children(net.events(A))[0], children(net.events(B))[0]);
    prove_with_esp(a, b, net.now);
}

/// One host's policy file: transport mode to `peer`, PSK, Curve25519 for IKE and
/// AES-GCM for ESP, ICMP exempt (examples/policies/transport-mode.toml, from each side).
fn transport_policy_file(me: &str, peer: &str) -> String {
    let (me, peer) = (ip(me), ip(peer));
    format!(
        r#"
[policy]
name = "transport-mode"

[auth_sets.lab-psk]
method = "preshared_key"
key = "correct horse battery staple"

[ike_proposal_sets.modern]
proposals = [{{ cipher = "aes_gcm_256_16icv", integrity = "sha_256", dh_group = "curve25519" }}]

[ipsec_proposal_sets.gcm]
proposals = [{{ esp = "gcm_aes_256" }}]

[[rules]]
name = "icmp"
remote = "{peer}"
protocol = "icmp"
action = "exempt"

[[rules]]
name = "peer"
local = "{me}"
remote = "{peer}"
action = "require"
auth = "lab-psk"
ike_proposals = "modern"
ipsec_proposals = "gcm"
"#
    )
}

/// The whole chain an administrator uses: a policy file compiled by palisade-policy
/// and applied to each host's engine, read back by EnginePolicy, negotiated, and the
/// CHILD_SA keys proven by palisade-esp.
#[test]
fn policy_files_applied_to_each_engine_negotiate() {
    let engine_for = |me: &str, peer: &str| {
        let compiled =
            palisade_policy::compile_str(&format!("{me}.toml"), &transport_policy_file(me, peer))
                .unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new();
        let mut s = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
        engine
    };
    assert_transport_x25519_gcm(Hosts::new(vec![
        (A, engine_for(A, B)),
        (B, engine_for(B, A)),
    ]));
}

/// A's acquire for B negotiates one IKE SA (Curve25519, AES-GCM) and one transport-mode
/// CHILD_SA on both sides, whose keys palisade-esp proves.
fn assert_transport_x25519_gcm(mut net: Hosts) {
    net.acquire(A, B, None);
    net.run();
    for (me, peer) in [(A, B), (B, A)] {
        let ev = net.events(me);
        assert!(failures(ev).is_empty(), "{me}: {:?}", failures(ev));
        let ike = established(ev);
        assert_eq!(ike.len(), 1, "{me}");
        assert_eq!(ike[0].transforms.ke, KeId::Curve25519);
        assert_eq!(ike[0].transforms.encr, EncrId::AesGcm16);
        let child = children(ev);
        assert_eq!(child.len(), 1, "{me}");
        assert_eq!(child[0].mode, Mode::Transport);
        assert_eq!(child[0].remote, ip(peer));
    }
    let (a, b) = (children(net.events(A))[0], children(net.events(B))[0]);
    prove_with_esp(a, b, net.now);
}
