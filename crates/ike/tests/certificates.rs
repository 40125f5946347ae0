//! Certificate authentication between two endpoints over the simulated
//! network, with a PKI made at test time (root -> intermediate -> end
//! entities, RSA and ECDSA): RFC 7427 Digital Signature and the classic
//! methods, CERTREQ, every identity type, and each refusal with the reason
//! it gives.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::pki::{Ca, EndEntity, Key, San, anchors, at, credentials, today};
use common::*;
use palisade_crypto::certificate::certreq_authority_hash;
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModePolicy,
};
use palisade_ike::{
    CertificateFailure, Credentials, Endpoint, EndpointConfig, FailurePoint, FailureReason,
    Identity, IkePolicy, Role, Stage, StaticPolicy,
};
use palisade_wire::ikev2::{
    CertificateRequest, IKE_HEADER_LEN, IkeHeader, Notify, Payloads, cert_encoding, notify_type,
    payload_type,
};
use rcgen::ExtendedKeyUsagePurpose;

fn ip(s: &str) -> std::net::IpAddr {
    addr(s).ip()
}

/// A root, an intermediate under it, and end entities for A and B with
/// their addresses, names and e-mail addresses as subjectAltNames.
struct Pki {
    root: Ca,
    intermediate: Ca,
    a: EndEntity,
    b: EndEntity,
}

fn sans_a() -> [San<'static>; 3] {
    [
        San::Ip(ip(A)),
        San::Dns("a.example.org"),
        San::Email("alice@example.org"),
    ]
}

fn pki(key_a: Key, key_b: Key) -> Pki {
    let root = Ca::root("Palisade Test Root", Key::EcdsaP256);
    let intermediate = root.intermediate("Palisade Test Intermediate", Key::EcdsaP256);
    let a = intermediate.end_entity("a.example.org", &sans_a(), key_a);
    let b = intermediate.end_entity(
        "b.example.org",
        &[San::Ip(ip(B)), San::Dns("b.example.org")],
        key_b,
    );
    Pki {
        root,
        intermediate,
        a,
        b,
    }
}

/// A main-mode policy authenticating with `creds` (and nothing else).
fn cert_policy(creds: Arc<Credentials>) -> IkePolicy {
    IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::certificate(
            [PathBuf::from("/etc/palisade/root.pem")],
            PathBuf::from("/etc/palisade/cert.pem"),
            PathBuf::from("/etc/palisade/key.pem"),
        )],
        vec![mm(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
    ))
    .with_certificates(creds)
}

fn table(peer: &str, ike: IkePolicy) -> StaticPolicy {
    transport_policy(peer, ike, vec![IpsecProposal::esp_aes128_gcm()])
}

/// Runs a negotiation with separate endpoint configurations and both
/// wall clocks at `time_a` / `time_b`.
fn run(
    ike_a: IkePolicy,
    ike_b: IkePolicy,
    config_a: EndpointConfig,
    config_b: EndpointConfig,
    time_a: Option<SystemTime>,
    time_b: Option<SystemTime>,
) -> Net {
    let mut net = Net::with_config(table(B, ike_a), StaticPolicy::new(), 7, config_a);
    net.b = Endpoint::with_random(config_b, table(A, ike_b), Seeded(0x05EE_DB0B));
    if let Some(t) = time_a {
        net.a.set_unix_time(net.now, t);
    }
    if let Some(t) = time_b {
        net.b.set_unix_time(net.now, t);
    }
    net.acquire();
    net.run(Duration::from_secs(60));
    net
}

fn run_today(ike_a: IkePolicy, ike_b: IkePolicy, config: EndpointConfig) -> Net {
    run(ike_a, ike_b, config, config, Some(today()), Some(today()))
}

/// Both sides authenticated each other as expected and the CHILD_SA keys
/// work.
fn assert_established(net: &Net, a_as: &Identity, b_as: &Identity) {
    assert!(failures(&net.events_a).is_empty(), "{:?}", net.events_a);
    assert!(failures(&net.events_b).is_empty(), "{:?}", net.events_b);
    let (ia, ib) = (established(&net.events_a), established(&net.events_b));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_eq!(&ia[0].peer_id, b_as);
    assert_eq!(&ib[0].peer_id, a_as);
    assert_eq!(&ia[0].local_id, a_as);
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1));
    assert_eq!(&cb[0].peer_id, a_as, "the peer identity stays with the SA");
    prove_with_esp(ca[0], cb[0], net.now);
}

fn dn(ee: &EndEntity) -> Identity {
    Identity::DerAsn1Dn(ee.cert.subject_der().to_vec())
}

fn both_ways(key_a: Key, key_b: Key, config: EndpointConfig) {
    let p = pki(key_a, key_b);
    let net = run_today(
        cert_policy(credentials(&p.a, &[&p.intermediate], &[&p.root])),
        cert_policy(credentials(&p.b, &[&p.intermediate], &[&p.root])),
        config,
    );
    // Without a configured identity each side sends its certificate's subject.
    assert_established(&net, &dn(&p.a), &dn(&p.b));
}

#[test]
fn rsa_and_ecdsa_with_rfc_7427_digital_signatures() {
    for key in [Key::Rsa2048, Key::EcdsaP256, Key::EcdsaP384] {
        both_ways(key, key, EndpointConfig::default());
    }
    both_ways(Key::Rsa2048, Key::EcdsaP256, EndpointConfig::default());
}

#[test]
fn classic_rsa_and_ecdsa_methods_without_signature_hash_algorithms() {
    let config = EndpointConfig {
        signature_hash_algorithms: false,
        ..EndpointConfig::default()
    };
    for key in [Key::Rsa2048, Key::EcdsaP256, Key::EcdsaP384] {
        both_ways(key, key, config);
    }
    both_ways(Key::EcdsaP256, Key::Rsa2048, config);
}

#[test]
fn one_side_announcing_hashes_gets_digital_signatures_the_other_classic_ones() {
    let p = pki(Key::Rsa2048, Key::EcdsaP256);
    let classic = EndpointConfig {
        signature_hash_algorithms: false,
        ..EndpointConfig::default()
    };
    for (config_a, config_b) in [
        (classic, EndpointConfig::default()),
        (EndpointConfig::default(), classic),
    ] {
        let net = run(
            cert_policy(credentials(&p.a, &[&p.intermediate], &[&p.root])),
            cert_policy(credentials(&p.b, &[&p.intermediate], &[&p.root])),
            config_a,
            config_b,
            Some(today()),
            Some(today()),
        );
        assert_established(&net, &dn(&p.a), &dn(&p.b));
    }
}

/// The payloads of an unencrypted message, by type.
fn plain_payloads(message: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let header = IkeHeader::parse(message).expect("header");
    Payloads::new(header.next_payload, &message[IKE_HEADER_LEN..])
        .map(|p| p.expect("payload"))
        .map(|p| (p.payload_type, p.body.to_vec()))
        .collect()
}

#[test]
fn ike_sa_init_carries_certreq_hashes_and_the_extension_notifications() {
    let p = pki(Key::EcdsaP256, Key::EcdsaP256);
    let other = Ca::root("Palisade Other Root", Key::EcdsaP256);
    let net = run_today(
        cert_policy(credentials(&p.a, &[&p.intermediate], &[&p.root])),
        cert_policy(Credentials::new(
            Some(p.b.credential(&[&p.intermediate])),
            anchors(&[&other, &p.root]),
        )),
        EndpointConfig::default(),
    );
    assert_eq!(established(&net.events_a).len(), 1);
    let (_, request) = net.log.iter().find(|(from_a, _)| *from_a).expect("request");
    let (_, response) = net
        .log
        .iter()
        .find(|(from_a, _)| !*from_a)
        .expect("response");
    let notify_types = |payloads: &[(u8, Vec<u8>)]| -> Vec<(u16, Vec<u8>)> {
        payloads
            .iter()
            .filter(|(t, _)| *t == payload_type::N)
            .map(|(_, body)| {
                let n = Notify::parse(body).expect("notify");
                (n.notify_type, n.data.to_vec())
            })
            .collect()
    };
    for message in [request, response] {
        let notifies = notify_types(&plain_payloads(message));
        assert!(
            notifies.contains(&(
                notify_type::SIGNATURE_HASH_ALGORITHMS,
                vec![0, 2, 0, 3, 0, 4]
            )),
            "SHA2-256, -384 and -512: {notifies:?}"
        );
        assert!(notifies.contains(&(notify_type::IKEV2_FRAGMENTATION_SUPPORTED, vec![])));
    }
    // The responder's CERTREQ (RFC 7296 §3.7) names both its anchors, in order.
    let payloads = plain_payloads(response);
    let certreqs: Vec<_> = payloads
        .iter()
        .filter(|(t, _)| *t == payload_type::CERTREQ)
        .collect();
    assert_eq!(certreqs.len(), 1);
    let certreq = CertificateRequest::parse(&certreqs[0].1).expect("certreq");
    assert_eq!(
        certreq.cert_encoding,
        cert_encoding::X509_CERTIFICATE_SIGNATURE
    );
    let expected = [
        certreq_authority_hash(other.cert.subject_public_key_info()),
        certreq_authority_hash(p.root.cert.subject_public_key_info()),
    ]
    .concat();
    assert_eq!(certreq.authorities, &expected[..]);
    assert!(
        !plain_payloads(request)
            .iter()
            .any(|(t, _)| *t == payload_type::CERTREQ),
        "the initiator's CERTREQ goes in IKE_AUTH"
    );
}

#[test]
fn each_identity_type_is_matched_against_the_certificate() {
    let p = pki(Key::EcdsaP256, Key::Rsa2048);
    for id in [
        Identity::Ipv4("192.0.2.1".parse().expect("v4")),
        Identity::Fqdn("a.example.org".into()),
        Identity::Fqdn("A.Example.Org.".into()),
        Identity::Rfc822("alice@example.org".into()),
        dn(&p.a),
    ] {
        let mut ike_a = cert_policy(credentials(&p.a, &[&p.intermediate], &[&p.root]));
        ike_a.local_id = Some(id.clone());
        let mut ike_b = cert_policy(credentials(&p.b, &[&p.intermediate], &[&p.root]));
        ike_b.remote_id = Some(id.clone());
        let net = run_today(ike_a, ike_b, EndpointConfig::default());
        assert_established(&net, &id, &dn(&p.b));
    }
}

#[test]
fn ipv6_identity_against_an_ipv6_subject_alt_name() {
    let root = Ca::root("Palisade Test Root", Key::EcdsaP256);
    let v6 = |s: &str| addr(s).ip();
    let (a6, b6) = ("[2001:db8::1]:500", "[2001:db8::2]:500");
    let a = root.end_entity("a", &[San::Ip(v6(a6))], Key::EcdsaP256);
    let b = root.end_entity("b", &[San::Ip(v6(b6))], Key::EcdsaP256);
    let mut ike_a = cert_policy(credentials(&a, &[], &[&root]));
    ike_a.local_id = Some(Identity::from_ip(v6(a6)));
    let mut ike_b = cert_policy(credentials(&b, &[], &[&root]));
    ike_b.local_id = Some(Identity::from_ip(v6(b6)));
    let mut net = Net::new(
        transport_policy(b6, ike_a, vec![IpsecProposal::esp_aes128_gcm()]),
        transport_policy(a6, ike_b, vec![IpsecProposal::esp_aes128_gcm()]),
        3,
    );
    net.a.set_unix_time(net.now, today());
    net.b.set_unix_time(net.now, today());
    net.acquire_between(a6, b6);
    net.run(Duration::from_secs(10));
    assert_established(&net, &Identity::from_ip(v6(a6)), &Identity::from_ip(v6(b6)));
}

#[test]
fn a_certificate_initiator_and_a_pre_shared_key_responder() {
    let p = pki(Key::EcdsaP256, Key::EcdsaP256);
    // A signs and checks B's MAC; B MACs and checks A's signature.
    let mut ike_a = main_mode(
        "shared",
        &[mm(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
    )
    .with_certificates(Credentials::new(
        Some(p.a.credential(&[&p.intermediate])),
        anchors(&[]),
    ));
    ike_a.remote_id = Some(Identity::from_ip(ip(B)));
    let ike_b = main_mode(
        "shared",
        &[mm(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
    )
    .with_certificates(Credentials::new(None, anchors(&[&p.root])));
    let net = run_today(ike_a, ike_b, EndpointConfig::default());
    assert_established(&net, &dn(&p.a), &Identity::from_ip(ip(B)));
}

/// B refuses A: B fails locally with `why`, A hears AUTHENTICATION_FAILED.
fn assert_responder_refused(net: &Net, why: CertificateFailure) {
    let (fa, fb) = (failures(&net.events_a), failures(&net.events_b));
    assert_eq!(
        (fa.len(), fb.len()),
        (1, 1),
        "{:?} {:?}",
        net.events_a,
        net.events_b
    );
    assert_eq!(
        (fb[0].role, fb[0].stage, fb[0].point, fb[0].reason),
        (
            Role::Responder,
            Stage::IkeAuth,
            FailurePoint::Local,
            FailureReason::Certificate(why)
        )
    );
    assert_eq!(
        (fa[0].stage, fa[0].point, fa[0].reason),
        (
            Stage::IkeAuth,
            FailurePoint::Peer,
            FailureReason::AuthenticationFailed
        )
    );
    assert!(established(&net.events_a).is_empty() && established(&net.events_b).is_empty());
    assert!(children(&net.events_a).is_empty() && children(&net.events_b).is_empty());
}

#[test]
fn refusals_say_what_failed() {
    let p = pki(Key::EcdsaP256, Key::Rsa2048);
    let other = Ca::root("Palisade Other Root", Key::EcdsaP256);
    let ike_a = || cert_policy(credentials(&p.a, &[&p.intermediate], &[&p.root]));
    let ike_b = || cert_policy(credentials(&p.b, &[&p.intermediate], &[&p.root]));
    let config = EndpointConfig::default();
    let now = Some(today());

    // B trusts another root only.
    let net = run(
        ike_a(),
        cert_policy(credentials(&p.b, &[&p.intermediate], &[&other])),
        config,
        config,
        now,
        now,
    );
    assert_responder_refused(&net, CertificateFailure::Untrusted);

    // A leaves out the intermediate: no path either.
    let net = run(
        cert_policy(credentials(&p.a, &[], &[&p.root])),
        ike_b(),
        config,
        config,
        now,
        now,
    );
    assert_responder_refused(&net, CertificateFailure::Untrusted);

    // B's clock says A's certificate has expired, or is not valid yet.
    let net = run(ike_a(), ike_b(), config, config, now, Some(at(2027, 1, 2)));
    assert_responder_refused(&net, CertificateFailure::Expired);
    let net = run(
        ike_a(),
        ike_b(),
        config,
        config,
        now,
        Some(at(2024, 12, 31)),
    );
    assert_responder_refused(&net, CertificateFailure::NotYetValid);

    // B was never told the time.
    let net = run(ike_a(), ike_b(), config, config, now, None);
    assert_responder_refused(&net, CertificateFailure::NoWallClock);

    // A claims names its certificate does not carry.
    for claim in [
        Identity::Fqdn("b.example.org".into()),
        Identity::Ipv4("192.0.2.99".parse().expect("v4")),
        Identity::Rfc822("bob@example.org".into()),
        dn(&p.b),
    ] {
        let mut lying = ike_a();
        lying.local_id = Some(claim);
        let net = run(lying, ike_b(), config, config, now, now);
        assert_responder_refused(&net, CertificateFailure::IdentityMismatch);
    }

    // A proves its certificate's identity, but B requires another one.
    let mut strict = ike_b();
    strict.remote_id = Some(Identity::Fqdn("a.example.org".into()));
    let net = run(ike_a(), strict, config, config, now, now);
    assert_responder_refused(&net, CertificateFailure::IdentityMismatch);

    // An extended key usage without id-kp-ipsecIKE (RFC 4945 §5.1.3.12);
    // with it, accepted.
    let ipsec_ike = || ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]);
    for (eku, outcome) in [
        (
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            Some(CertificateFailure::KeyUsage),
        ),
        (vec![ExtendedKeyUsagePurpose::ServerAuth, ipsec_ike()], None),
    ] {
        let web = p.intermediate.end_entity_with(
            "a.example.org",
            &sans_a(),
            Key::EcdsaP256,
            (2025, 2027),
            eku,
        );
        let net = run(
            cert_policy(credentials(&web, &[&p.intermediate], &[&p.root])),
            ike_b(),
            config,
            config,
            now,
            now,
        );
        match outcome {
            Some(why) => assert_responder_refused(&net, why),
            None => assert_eq!(established(&net.events_b).len(), 1, "{:?}", net.events_b),
        }
    }

    // B has no trust anchors: signatures cannot be checked.
    let net = run(
        ike_a(),
        cert_policy(Credentials::new(
            Some(p.b.credential(&[&p.intermediate])),
            anchors(&[]),
        )),
        config,
        config,
        now,
        now,
    );
    assert_responder_refused(&net, CertificateFailure::UnsupportedMethod);
}

#[test]
fn the_initiator_refuses_an_untrusted_responder() {
    let p = pki(Key::Rsa2048, Key::EcdsaP256);
    let other = Ca::root("Palisade Other Root", Key::EcdsaP256);
    let net = run_today(
        cert_policy(credentials(&p.a, &[&p.intermediate], &[&other])),
        cert_policy(credentials(&p.b, &[&p.intermediate], &[&p.root])),
        EndpointConfig::default(),
    );
    let fa = failures(&net.events_a);
    assert_eq!(fa.len(), 1, "{:?}", net.events_a);
    assert_eq!(
        (fa[0].role, fa[0].point, fa[0].reason),
        (
            Role::Initiator,
            FailurePoint::Local,
            FailureReason::Certificate(CertificateFailure::Untrusted)
        )
    );
    assert!(established(&net.events_a).is_empty());
    assert!(children(&net.events_a).is_empty());
}

#[test]
fn a_credential_needs_a_chain_and_the_key_of_its_end_entity() {
    use palisade_crypto::SigningKey;
    use palisade_ike::{CredentialError, LocalCredential};
    let p = pki(Key::EcdsaP256, Key::EcdsaP256);
    let key = |ee: &EndEntity| SigningKey::from_pkcs8_der(&ee.key_der).expect("key");
    assert_eq!(
        LocalCredential::new(vec![p.a.cert.clone()], key(&p.b)).map(|_| ()),
        Err(CredentialError::KeyMismatch)
    );
    assert_eq!(
        LocalCredential::new(Vec::new(), key(&p.a)).map(|_| ()),
        Err(CredentialError::EmptyChain)
    );
    let ok = LocalCredential::new(
        vec![p.a.cert.clone(), p.intermediate.cert.clone()],
        key(&p.a),
    )
    .expect("matching key");
    assert_eq!(ok.end_entity(), &p.a.cert);
    assert_eq!(ok.intermediates(), &[p.intermediate.cert.clone()][..]);
}
