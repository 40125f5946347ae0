//! Each scenario compiled, applied to an in-memory engine, and checked by classifying
//! what IKE and the data path would classify (spec §4).

mod common;

use common::*;
use palisade_filter::guids as g;
use palisade_filter::policy::{
    IPSEC_POLICY_FLAG_ND_BOUNDARY, IPSEC_POLICY_FLAG_ND_SECURE, KeyingModule, ProviderContextPolicy,
};
use palisade_filter::{Decision, Field, FieldValues, Layer, Token, Value};
use palisade_policy::keys::derive;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

#[test]
fn transport_mode_rule_gives_ike_its_policies_and_protects_traffic() {
    let (engine, _) = applied("transport-mode.toml");
    // IKE classifies at IKEEXT for the peer: the rule's IKEv2 main-mode policy, as
    // palisade-ike's EnginePolicy reads it (a permit whose context is IKEV2_MM).
    let (mm, _) = classify(&engine, Layer::IkeextV4, &peers("192.0.2.10", "192.0.2.20"));
    assert_eq!(mm.decision, Decision::Permit);
    let context = mm.provider_context.expect("main-mode context");
    assert_eq!(
        context.object.key,
        derive("transport-mode", "db01", "main-mode")
    );
    let ProviderContextPolicy::MainMode { module, policy } = &context.object.policy else {
        panic!("not a main-mode policy: {:?}", context.object.policy);
    };
    assert_eq!(*module, KeyingModule::Ikev2);
    assert_eq!(policy.ike_proposals.len(), 2);
    assert_eq!(policy.authentication_methods[0].name(), "PRESHARED_KEY");
    // Another peer has no policy.
    let (other, _) = classify(&engine, Layer::IkeextV4, &peers("192.0.2.10", "192.0.2.99"));
    assert!(other.provider_context.is_none());

    // Quick mode at IPSEC: the transport policy with the rule's proposals.
    let (qm, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("192.0.2.10", "192.0.2.20", TCP, 40000, 5432),
    );
    let context = qm.provider_context.expect("quick-mode context");
    let ProviderContextPolicy::Transport {
        module: KeyingModule::Ikev2,
        policy,
    } = &context.object.policy
    else {
        panic!("not an IKEv2 transport policy");
    };
    assert_eq!(policy.ipsec_proposals.len(), 2);
    assert_eq!(policy.flags, 0, "require is not negotiation discovery");

    // The data path: TCP to the peer goes to the outbound transport callout.
    let (out, calls) = classify(
        &engine,
        Layer::OutboundTransportV4,
        &flow("192.0.2.10", "192.0.2.20", TCP, 40000, 5432),
    );
    assert_eq!(out.decision, Decision::Block, "no SA yet: held for IKE");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4
    );
    assert_eq!(calls[0].raw_context, None);
    let (_, calls) = classify(
        &engine,
        Layer::InboundTransportV4,
        &flow("192.0.2.10", "192.0.2.20", TCP, 5432, 40000),
    );
    assert_eq!(calls[0].callout, g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4);

    // The ICMP exemption lets ping through without IPsec, both ways.
    for layer in [Layer::OutboundTransportV4, Layer::InboundTransportV4] {
        let (icmp, calls) = classify(
            &engine,
            layer,
            &flow("192.0.2.10", "192.0.2.20", ICMP, 0, 0),
        );
        assert_eq!(icmp.decision, Decision::Permit, "{layer}");
        assert!(calls.is_empty(), "{layer}: {calls:?}");
    }
    // And IKE itself (spec §4.4).
    let (ike, calls) = classify(
        &engine,
        Layer::OutboundTransportV4,
        &flow("192.0.2.10", "192.0.2.20", UDP, 500, 500),
    );
    assert_eq!(ike.decision, Decision::Permit);
    assert!(calls.is_empty());
    let (natt, _) = classify(
        &engine,
        Layer::InboundTransportV4,
        &flow("192.0.2.10", "192.0.2.20", UDP, 4500, 61000),
    );
    assert_eq!(natt.decision, Decision::Permit);
    // Traffic to hosts outside the rule is not Palisade's business.
    let (_, calls) = classify(
        &engine,
        Layer::OutboundTransportV4,
        &flow("192.0.2.10", "192.0.2.30", TCP, 40000, 80),
    );
    assert!(calls.is_empty());
}

#[test]
fn tunnel_mode_negotiates_between_gateways_for_the_inner_prefixes() {
    let (engine, _) = applied("tunnel-mode.toml");
    let (mm, _) = classify(
        &engine,
        Layer::IkeextV4,
        &peers("198.51.100.1", "203.0.113.1"),
    );
    let mm = mm.provider_context.expect("main mode between the gateways");
    let ProviderContextPolicy::MainMode { policy, .. } = &mm.object.policy else {
        panic!("main mode");
    };
    assert_eq!(policy.authentication_methods[0].name(), "CERTIFICATE");
    // Inner addresses are not IKE peers.
    let (inner, _) = classify(&engine, Layer::IkeextV4, &peers("10.1.0.5", "10.2.0.5"));
    assert!(inner.provider_context.is_none());

    let (qm, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("10.1.0.5", "10.2.0.5", TCP, 40000, 22),
    );
    let qm = qm.provider_context.expect("tunnel policy");
    let ProviderContextPolicy::Tunnel { policy, .. } = &qm.object.policy else {
        panic!("tunnel policy");
    };
    assert_eq!(
        policy.tunnel_endpoints.local_address.to_string(),
        "198.51.100.1"
    );
    assert_eq!(
        policy.tunnel_endpoints.remote_address.to_string(),
        "203.0.113.1"
    );
    // The range entry counts too.
    let (qm2, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("10.1.0.5", "10.3.0.7", UDP, 1, 2),
    );
    assert!(qm2.provider_context.is_some());
    let (none, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("10.1.0.5", "10.3.0.255", UDP, 1, 2),
    );
    assert!(none.provider_context.is_none());

    // The tunnel callouts carry the tunnel policy.
    let (_, calls) = classify(
        &engine,
        Layer::OutboundTransportV4,
        &flow("10.1.0.5", "10.2.0.5", TCP, 40000, 22),
    );
    assert_eq!(calls[0].callout, g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4);
    assert_eq!(calls[0].provider_context, Some(qm.object.key));
}

#[test]
fn negotiation_discovery_marks_the_callouts_and_requires_secure_inbound_in_the_secure_ring() {
    let (engine, compiled) = applied("negotiation-discovery.toml");
    let (_, calls) = classify(
        &engine,
        Layer::OutboundTransportV4,
        &flow("192.0.2.1", "198.51.100.7", TCP, 40000, 443),
    );
    assert_eq!(
        calls[0].raw_context,
        Some(g::FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER)
    );
    let (_, calls) = classify(
        &engine,
        Layer::InboundTransportV4,
        &flow("192.0.2.1", "198.51.100.7", TCP, 443, 40000),
    );
    assert_eq!(
        calls[0].raw_context,
        Some(g::FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY)
    );
    let flags = |rule: &str| {
        let key = derive("negotiation-discovery", rule, "quick-mode");
        let c = compiled
            .contexts
            .iter()
            .find(|c| c.key == key)
            .expect("context");
        match &c.policy {
            ProviderContextPolicy::Transport { policy, .. } => policy.flags,
            _ => panic!("transport"),
        }
    };
    assert_eq!(flags("boundary"), IPSEC_POLICY_FLAG_ND_BOUNDARY);
    assert_eq!(flags("secure-ring"), IPSEC_POLICY_FLAG_ND_SECURE);
    // Boundary: inbound connections need no IPsec at ALE.
    let (accept, calls) = classify(
        &engine,
        Layer::AleAuthRecvAcceptV4,
        &flow("192.0.2.1", "198.51.100.7", TCP, 443, 40000),
    );
    assert_eq!(accept.decision, Decision::Permit);
    assert!(calls.is_empty());
    // Secure ring (IPv6): inbound connections must arrive secured.
    let (_, calls) = classify(
        &engine,
        Layer::AleAuthRecvAcceptV6,
        &flow("2001:db8::1", "2001:db8:10::5", TCP, 443, 40000),
    );
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6
    );
}

#[test]
fn guaranteed_encryption_demands_encryption_at_both_ale_layers() {
    let (engine, _) = applied("guaranteed-encryption.toml");
    let payroll = flow("192.0.2.1", "10.20.3.4", TCP, 5555, 40000);
    let (_, calls) = classify(&engine, Layer::AleAuthRecvAcceptV4, &payroll);
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4
    );
    assert_eq!(
        calls[0].raw_context,
        Some(g::FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION)
    );
    let (_, calls) = classify(&engine, Layer::AleAuthConnectV4, &payroll);
    assert_eq!(calls[0].callout, g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4);
    assert_eq!(
        calls[0].raw_context,
        Some(g::FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION)
    );
    // Another port is not covered.
    let (_, calls) = classify(
        &engine,
        Layer::AleAuthConnectV4,
        &flow("192.0.2.1", "10.20.3.4", TCP, 5556, 40000),
    );
    assert!(calls.is_empty());
}

#[test]
fn remote_identity_authorization_admits_only_the_listed_peers() {
    let (engine, _) = applied("remote-identity-authorization.toml");
    let conn = flow("192.0.2.1", "192.0.2.77", TCP, 5555, 40000);
    let (admin, calls) = classify(
        &engine,
        Layer::AleAuthRecvAcceptV4,
        &with_peer_identity(conn.clone(), "ADMIN1.example.com"),
    );
    assert_eq!(calls.len(), 1, "{admin:?}");
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4
    );
    let (stranger, calls) = classify(
        &engine,
        Layer::AleAuthRecvAcceptV4,
        &with_peer_identity(conn.clone(), "mallory.example.com"),
    );
    assert_eq!(stranger.decision, Decision::Block);
    assert!(calls.is_empty());
    let (anonymous, _) = classify(&engine, Layer::AleAuthRecvAcceptV4, &conn);
    assert_eq!(anonymous.decision, Decision::Block);
}

#[test]
fn exemptions_outrank_ipsec_and_blocks_outrank_exemptions() {
    let (engine, _) = applied("exemptions.toml");
    let out = |remote: &str, protocol: u8| {
        classify(
            &engine,
            Layer::OutboundTransportV4,
            &flow("10.9.9.9", remote, protocol, 40000, 53),
        )
    };
    let (dns, calls) = out("10.0.0.53", UDP);
    assert_eq!(dns.decision, Decision::Permit);
    assert!(calls.is_empty());
    let (ping, calls) = out("10.1.1.1", ICMP);
    assert_eq!(ping.decision, Decision::Permit);
    assert!(calls.is_empty());
    let (domain, calls) = out("10.1.1.1", TCP);
    assert_eq!(domain.decision, Decision::Block);
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4
    );
    let (quarantined, calls) = out("10.0.66.6", ICMP);
    assert_eq!(
        quarantined.decision,
        Decision::Block,
        "a block is not exempted by the ICMP rule"
    );
    assert!(calls.is_empty());
    let (icmpv6, calls) = classify(
        &engine,
        Layer::OutboundTransportV6,
        &flow("2001:db8::1", "2001:db8::2", 58, 0, 0),
    );
    assert_eq!(icmpv6.decision, Decision::Permit);
    assert!(calls.is_empty());
}

#[test]
fn programs_and_users_limit_a_rules_connections_both_ways() {
    let text = r#"
[policy]
name = "owners"

[auth_sets.psk]
method = "preshared_key"
key = "secret"

[[rules]]
name = "db"
remote = "10.0.0.5"
protocol = "tcp"
remote_ports = [5432]
action = "require"
auth = "psk"
programs = ["/usr/bin/psql", "/opt/tools/*"]
users = ["root", "@root"]

[[rules]]
name = "admin"
remote = "10.0.0.0/24"
protocol = "tcp"
local_ports = [22]
action = "require"
auth = "psk"
authorized_peers = ["admin1.example.com"]
programs = ["/usr/sbin/sshd"]
"#;
    let compiled = compile("owners.toml", text);
    let engine = palisade_filter::Engine::new();
    let mut s = session(&engine);
    palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    let to_db = || flow("10.0.0.1", "10.0.0.5", TCP, 40000, 5432);
    let connect = |values: &FieldValues| classify(&engine, Layer::AleAuthConnectV4, values).0;
    for (program, uid, gid, want) in [
        (Some("/usr/bin/psql"), 0, 0, Decision::Permit),
        (Some("/opt/tools/dbcheck"), 0, 0, Decision::Permit),
        // A member of group root, by its token's groups.
        (Some("/usr/bin/psql"), 1000, 0, Decision::Permit),
        (Some("/usr/bin/curl"), 0, 0, Decision::Block),
        (Some("/usr/bin/psql"), 1000, 1000, Decision::Block),
        // No socket owner known: the conditions cannot be met.
        (None, 0, 0, Decision::Block),
    ] {
        let got = connect(&owned(to_db(), program, uid, gid)).decision;
        assert_eq!(got, want, "{program:?} uid {uid} gid {gid}");
    }
    // Inbound connections to the same service ports: the same limits.
    let from_db = flow("10.0.0.1", "10.0.0.5", TCP, 40000, 5432);
    let accept = |values: &FieldValues| classify(&engine, Layer::AleAuthRecvAcceptV4, values).0;
    assert_eq!(
        accept(&owned(from_db.clone(), Some("/usr/bin/psql"), 0, 0)).decision,
        Decision::Permit
    );
    assert_eq!(
        accept(&owned(from_db, Some("/usr/bin/nc"), 0, 0)).decision,
        Decision::Block
    );
    // With authorized_peers: the peer's identity and the program both count, and the
    // allowed connections still go through the secure-inbound callout.
    let ssh = flow("10.0.0.1", "10.0.0.9", TCP, 22, 50000);
    let (admin, calls) = classify(
        &engine,
        Layer::AleAuthRecvAcceptV4,
        &with_peer_identity(
            owned(ssh.clone(), Some("/usr/sbin/sshd"), 0, 0),
            "admin1.example.com",
        ),
    );
    assert_eq!(calls.len(), 1, "{admin:?}");
    assert_eq!(
        calls[0].callout,
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4
    );
    for values in [
        with_peer_identity(
            owned(ssh.clone(), Some("/usr/bin/nc"), 0, 0),
            "admin1.example.com",
        ),
        with_peer_identity(
            owned(ssh.clone(), Some("/usr/sbin/sshd"), 0, 0),
            "mallory.example.com",
        ),
    ] {
        let (v, _) = classify(&engine, Layer::AleAuthRecvAcceptV4, &values);
        assert_eq!(v.decision, Decision::Block, "{values:?}");
    }
}

#[test]
fn denied_programs_and_users_block_only_those_connections() {
    let text = r#"
[policy]
name = "deny"

[auth_sets.psk]
method = "preshared_key"
key = "secret"

[[rules]]
name = "web"
remote = "10.0.0.0/24"
action = "require"
auth = "psk"
denied_programs = ["/usr/bin/curl", "/opt/untrusted/*"]
denied_users = ["65534", "@65533"]

[[rules]]
name = "db"
remote = "10.0.1.5"
protocol = "tcp"
remote_ports = [5432]
action = "require"
auth = "psk"
programs = ["/usr/bin/psql"]
denied_users = ["1000"]
"#;
    let compiled = compile("deny.toml", text);
    let engine = palisade_filter::Engine::new();
    let mut s = session(&engine);
    palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    let web = || flow("10.0.0.1", "10.0.0.7", TCP, 40000, 443);
    for layer in [Layer::AleAuthConnectV4, Layer::AleAuthRecvAcceptV4] {
        for (program, uid, gid, want) in [
            (Some("/usr/bin/wget"), 1000, 1000, Decision::Permit),
            (Some("/usr/bin/curl"), 1000, 1000, Decision::Block),
            (Some("/opt/untrusted/fetch"), 0, 0, Decision::Block),
            (Some("/usr/bin/wget"), 65534, 65534, Decision::Block),
            // A member of the denied group, by its token's groups.
            (Some("/usr/bin/wget"), 1000, 65533, Decision::Block),
            // No socket owner known: nothing to deny.
            (None, 0, 0, Decision::Permit),
        ] {
            let got = classify(&engine, layer, &owned(web(), program, uid, gid)).0;
            assert_eq!(
                got.decision, want,
                "{layer:?} {program:?} uid {uid} gid {gid}"
            );
        }
    }
    // Beside `programs`: an allowed program of a denied user is blocked.
    let db = || flow("10.0.0.1", "10.0.1.5", TCP, 40000, 5432);
    let connect = |values: &FieldValues| classify(&engine, Layer::AleAuthConnectV4, values).0;
    for (program, uid, want) in [
        ("/usr/bin/psql", 0, Decision::Permit),
        ("/usr/bin/psql", 1000, Decision::Block),
        ("/usr/bin/nc", 0, Decision::Block),
    ] {
        let got = connect(&owned(db(), Some(program), uid, uid)).decision;
        assert_eq!(got, want, "{program} uid {uid}");
    }
}

/// `values` with a local socket owned by `uid` (in group `gid`), held by `program`.
fn owned(values: FieldValues, program: Option<&str>, uid: u32, gid: u32) -> FieldValues {
    let values = values.with(Field::AleUserId, Value::Token(Token::user(uid, vec![gid])));
    match program {
        Some(p) => values.with(Field::AleAppId, Value::Text(p.into())),
        None => values,
    }
}
