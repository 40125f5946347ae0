//! X.509 for IKE against a PKI made at test time with rcgen (root ->
//! intermediate -> end entity, RSA and ECDSA): path validation and its
//! refusals, identity matching, and CERTREQ hashes checked against the
//! `openssl` command-line tool (skipped, with a note, when it is missing).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use palisade_crypto::certificate::{
    Certificate, CertificateError, IkeIdentity, SubjectAltName, TrustAnchors,
    certreq_authority_hash, validate_path,
};
use palisade_crypto::signature::{AuthMethod, SignatureScheme, SigningKey, verify};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SignatureAlgorithm, date_time_ymd,
};

/// 1.3.6.1.5.5.7.3.17
const IPSEC_IKE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 17];

/// Seconds since the epoch of a UTC midnight, for validation times.
fn at(year: i32, month: u8, day: u8) -> SystemTime {
    let secs = date_time_ymd(year, month, day).unix_timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

/// Inside every certificate's validity period below.
fn now() -> SystemTime {
    at(2026, 6, 1)
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Palisade tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params
}

fn end_entity_params(eku: Vec<ExtendedKeyUsagePurpose>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "vpn.example.org");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Palisade tests");
    params.subject_alt_names = vec![
        SanType::DnsName("vpn.example.org".try_into().expect("ia5")),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        SanType::IpAddress(IpAddr::V6("2001:db8::1".parse().expect("v6"))),
        SanType::Rfc822Name("Alice@Example.org".try_into().expect("ia5")),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku;
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2027, 1, 1);
    params
}

fn ike_eku() -> Vec<ExtendedKeyUsagePurpose> {
    vec![ExtendedKeyUsagePurpose::Other(IPSEC_IKE.to_vec())]
}

/// root -> intermediate -> end entity, all with keys of `alg`.
struct Pki {
    root: Certificate,
    intermediate: Certificate,
    end_entity: Certificate,
    end_entity_key: KeyPair,
    intermediate_issuer: Issuer<'static, KeyPair>,
}

fn pki(alg: &'static SignatureAlgorithm, root_name: &str) -> Pki {
    let root_key = KeyPair::generate_for(alg).expect("root key");
    let root_params = ca_params(root_name);
    let root = root_params.self_signed(&root_key).expect("root cert");
    let root_issuer = Issuer::new(root_params, root_key);

    let inter_key = KeyPair::generate_for(alg).expect("intermediate key");
    let inter_params = ca_params("Palisade Test Intermediate");
    let intermediate = inter_params
        .signed_by(&inter_key, &root_issuer)
        .expect("intermediate");
    let intermediate_issuer = Issuer::new(inter_params, inter_key);

    let end_entity_key = KeyPair::generate_for(alg).expect("end-entity key");
    let end_entity = end_entity_params(ike_eku())
        .signed_by(&end_entity_key, &intermediate_issuer)
        .expect("end entity");
    Pki {
        root: Certificate::from_der(root.der()).expect("root parses"),
        intermediate: Certificate::from_der(intermediate.der()).expect("intermediate parses"),
        end_entity: Certificate::from_der(end_entity.der()).expect("end entity parses"),
        end_entity_key,
        intermediate_issuer,
    }
}

fn anchors(roots: &[&Certificate]) -> TrustAnchors {
    let mut anchors = TrustAnchors::new();
    for root in roots {
        anchors.add((*root).clone()).expect("anchor");
    }
    anchors
}

const ALGORITHMS: [(&str, &SignatureAlgorithm); 2] = [
    ("RSA", &rcgen::PKCS_RSA_SHA256),
    ("ECDSA P-256", &rcgen::PKCS_ECDSA_P256_SHA256),
];

#[test]
fn valid_chains_are_accepted_and_refusals_are_distinct() {
    for (name, alg) in ALGORITHMS {
        let pki = pki(alg, "Palisade Test Root");
        let trusted = anchors(&[&pki.root]);
        let chain = [pki.intermediate.clone()];
        validate_path(&pki.end_entity, &chain, &trusted, now())
            .unwrap_or_else(|e| panic!("{name}: valid chain refused: {e}"));

        // Validity is checked at the time given, not the clock.
        assert_eq!(
            validate_path(&pki.end_entity, &chain, &trusted, at(2027, 1, 2)),
            Err(CertificateError::Expired),
            "{name}"
        );
        assert_eq!(
            validate_path(&pki.end_entity, &chain, &trusted, at(2024, 12, 31)),
            Err(CertificateError::NotYetValid),
            "{name}"
        );
        // The intermediate is needed, and a different root is not the issuer.
        assert_eq!(
            validate_path(&pki.end_entity, &[], &trusted, now()),
            Err(CertificateError::UnknownIssuer),
            "{name}"
        );
        let other = pki_root_only(alg, "Palisade Other Root");
        assert_eq!(
            validate_path(&pki.end_entity, &chain, &anchors(&[&other]), now()),
            Err(CertificateError::UnknownIssuer),
            "{name}: another root"
        );
        // A root with the intermediate's issuer name but another key: the
        // intermediate's signature does not verify under it.
        let impostor = pki_root_only(alg, "Palisade Test Root");
        assert_eq!(
            validate_path(&pki.end_entity, &chain, &anchors(&[&impostor]), now()),
            Err(CertificateError::BadSignature),
            "{name}: a root with the same name but another key"
        );
        // With the real root beside it, the path through the real one is found.
        validate_path(
            &pki.end_entity,
            &chain,
            &anchors(&[&impostor, &pki.root]),
            now(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            validate_path(&pki.end_entity, &chain, &TrustAnchors::new(), now()),
            Err(CertificateError::UnknownIssuer),
            "{name}"
        );
        // A flipped bit in the end entity's signature.
        let mut der = pki.end_entity.der().to_vec();
        *der.last_mut().expect("non-empty") ^= 0x01;
        let broken = Certificate::from_der(&der).expect("still parses");
        assert_eq!(
            validate_path(&broken, &chain, &trusted, now()),
            Err(CertificateError::BadSignature),
            "{name}"
        );
        // A CA certificate is not an end entity.
        assert!(matches!(
            validate_path(&pki.intermediate, &[], &trusted, now()),
            Err(CertificateError::PathRejected(_))
        ));
    }
}

fn pki_root_only(alg: &'static SignatureAlgorithm, name: &str) -> Certificate {
    let key = KeyPair::generate_for(alg).expect("key");
    let root = ca_params(name).self_signed(&key).expect("root");
    Certificate::from_der(root.der()).expect("parses")
}

#[test]
fn extended_key_usage_must_allow_ike_when_present() {
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256, "Palisade Test Root");
    let trusted = anchors(&[&pki.root]);
    let chain = [pki.intermediate.clone()];
    for (eku, expected) in [
        (vec![], Ok(())),
        (ike_eku(), Ok(())),
        (
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::Other(IPSEC_IKE.to_vec()),
            ],
            Ok(()),
        ),
        (
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            Err(CertificateError::KeyUsageNotIke),
        ),
    ] {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = end_entity_params(eku.clone())
            .signed_by(&key, &pki.intermediate_issuer)
            .expect("cert");
        let cert = Certificate::from_der(cert.der()).expect("parses");
        assert_eq!(
            validate_path(&cert, &chain, &trusted, now()),
            expected,
            "{eku:?}"
        );
    }
}

#[test]
fn fields_are_exposed() {
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256, "Palisade Test Root");
    let ee = &pki.end_entity;
    assert_eq!(
        ee.subject_alt_names(),
        [
            SubjectAltName::Dns("vpn.example.org".into()),
            SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            SubjectAltName::Ip(IpAddr::V6("2001:db8::1".parse().expect("v6"))),
            SubjectAltName::Rfc822("Alice@Example.org".into()),
        ]
    );
    assert!(
        ee.subject().contains("CN=vpn.example.org"),
        "{}",
        ee.subject()
    );
    assert!(pki.root.subject().contains("CN=Palisade Test Root"));
    // The subject Name is a whole DER SEQUENCE, and the intermediate's is the
    // issuer Name inside the end entity's DER.
    assert_eq!(ee.subject_der().first(), Some(&0x30));
    let issuer = pki.intermediate.subject_der();
    assert!(ee.der().windows(issuer.len()).any(|w| w == issuer));
    assert_ne!(ee.subject_der(), issuer);
    // The SubjectPublicKeyInfo is the one of the key that signs AUTH.
    let key = SigningKey::from_pkcs8_der(&pki.end_entity_key.serialize_der()).expect("key");
    assert_eq!(
        ee.subject_public_key_info(),
        key.public_key_spki_der().expect("SPKI")
    );
    let octets = b"octets to sign";
    let auth = key
        .sign(
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::EcdsaSha256),
            octets,
        )
        .expect("sign");
    verify(
        ee.subject_public_key_info(),
        AuthMethod::DigitalSignature,
        &auth,
        octets,
    )
    .expect("AUTH verifies with the certificate's key");

    assert_eq!(
        Certificate::from_der(b"junk"),
        Err(CertificateError::Malformed)
    );
    let mut trailing = ee.der().to_vec();
    trailing.push(0);
    assert_eq!(
        Certificate::from_der(&trailing),
        Err(CertificateError::Malformed)
    );
    assert_eq!(
        Certificate::from_der(&ee.der()[..100]),
        Err(CertificateError::Malformed)
    );
}

#[test]
fn identities_match_subject_alt_names_and_dn() {
    let pki = pki(&rcgen::PKCS_ECDSA_P256_SHA256, "Palisade Test Root");
    let ee = &pki.end_entity;
    let matching = [
        IkeIdentity::Fqdn("vpn.example.org".into()),
        IkeIdentity::Fqdn("VPN.Example.ORG.".into()),
        IkeIdentity::Ipv4Addr(Ipv4Addr::new(192, 0, 2, 1)),
        IkeIdentity::Ipv6Addr("2001:db8::1".parse().expect("v6")),
        IkeIdentity::Rfc822Addr("Alice@Example.org".into()),
        IkeIdentity::Rfc822Addr("Alice@example.ORG".into()),
        IkeIdentity::DerAsn1Dn(ee.subject_der().to_vec()),
    ];
    for id in &matching {
        assert!(ee.matches_identity(id), "{id:?}");
    }
    let not_matching = [
        IkeIdentity::Fqdn("other.example.org".into()),
        IkeIdentity::Fqdn("example.org".into()),
        IkeIdentity::Fqdn("".into()),
        IkeIdentity::Ipv4Addr(Ipv4Addr::new(192, 0, 2, 2)),
        IkeIdentity::Ipv6Addr(Ipv6Addr::LOCALHOST),
        // The IPv4 address as an IPv4-mapped IPv6 address is another identity.
        IkeIdentity::Ipv6Addr(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
        IkeIdentity::Rfc822Addr("alice@example.org".into()),
        IkeIdentity::Rfc822Addr("Example.org".into()),
        // The FQDN is not an e-mail address, nor the e-mail an FQDN.
        IkeIdentity::Rfc822Addr("vpn.example.org".into()),
        IkeIdentity::Fqdn("Alice@Example.org".into()),
        IkeIdentity::DerAsn1Dn(pki.intermediate.subject_der().to_vec()),
        IkeIdentity::DerAsn1Dn(Vec::new()),
    ];
    for id in &not_matching {
        assert!(!ee.matches_identity(id), "{id:?}");
    }
    // From Identification payload data (RFC 7296 §3.5).
    let cases = [
        (1u8, vec![192, 0, 2, 1]),
        (2, b"vpn.example.org".to_vec()),
        (3, b"Alice@Example.org".to_vec()),
        (
            5,
            "2001:db8::1"
                .parse::<Ipv6Addr>()
                .expect("v6")
                .octets()
                .to_vec(),
        ),
        (9, ee.subject_der().to_vec()),
    ];
    for (id_type, data) in cases {
        let id = IkeIdentity::from_payload(id_type, &data).expect("identity");
        assert_eq!(id.id_type(), id_type);
        assert!(ee.matches_identity(&id), "{id:?}");
    }
    for (id_type, data) in [
        (1u8, vec![192, 0, 2]),
        (5, vec![0; 4]),
        (2, vec![0xff, 0xfe]),
        (11, vec![1]),
        (10, vec![]),
    ] {
        assert_eq!(
            IkeIdentity::from_payload(id_type, &data),
            Err(CertificateError::UnsupportedIdentity(id_type))
        );
    }
}

#[test]
fn certreq_hashes_name_the_trust_anchors() {
    let a = pki(&rcgen::PKCS_ECDSA_P256_SHA256, "Palisade Test Root");
    let b = pki_root_only(&rcgen::PKCS_RSA_SHA256, "Palisade Other Root");
    let trusted = anchors(&[&a.root, &b]);
    let hashes = trusted.certreq_hashes();
    assert_eq!(hashes.len(), 2);
    assert_eq!(
        hashes[0],
        certreq_authority_hash(a.root.subject_public_key_info())
    );
    assert_eq!(trusted.certreq_data(), [hashes[0], hashes[1]].concat());
    // A peer asking for b (and an unknown CA) gets b.
    let request = [[0x55; 20], hashes[1]].concat();
    assert_eq!(trusted.requested_by(&request), [&b]);
    assert!(trusted.requested_by(&hashes[0][..19]).is_empty());

    // Independently: openssl's SubjectPublicKeyInfo and SHA-1.
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIPPED: openssl is not installed; CERTREQ hashes not cross-checked");
        return;
    }
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "palisade-certreq-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch");
    for (ca, hash) in [&a.root, &b].into_iter().zip(&hashes) {
        let cert = dir.join("ca.der");
        let pubkey = dir.join("pub.pem");
        let spki = dir.join("spki.der");
        std::fs::write(&cert, ca.der()).expect("write");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let p = |path: &std::path::Path| path.to_str().expect("utf-8").to_owned();
        run(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            &p(&cert),
            "-noout",
            "-pubkey",
            "-out",
            &p(&pubkey),
        ]);
        run(&[
            "pkey",
            "-pubin",
            "-in",
            &p(&pubkey),
            "-outform",
            "DER",
            "-out",
            &p(&spki),
        ]);
        let openssl_hash = run(&["dgst", "-sha1", "-binary", &p(&spki)]);
        assert_eq!(openssl_hash.as_slice(), hash.as_slice(), "{}", ca.subject());
        assert_eq!(
            std::fs::read(&spki).expect("read"),
            ca.subject_public_key_info()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
