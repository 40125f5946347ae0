//! AUTH payload signatures: round trips for every method and key type, the
//! RFC 7427 AlgorithmIdentifiers byte for byte, refusals, and a cross-check
//! in both directions with the `openssl` command-line tool (skipped, with a
//! note, when `openssl` is missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, RsaKeyPair};
use palisade_crypto::signature::{
    AuthMethod, EcdsaCurve, HashAlgorithm, SIGNATURE_HASH_ALGORITHMS, SignatureError,
    SignatureScheme, SigningKey, choose_hash_algorithm, encode_hash_algorithms,
    parse_digital_signature, parse_hash_algorithms, verify,
};

const OCTETS: &[u8] = b"IKE_SA_INIT message | Nr | prf(SK_pi, IDi')";

fn rsa_pkcs8() -> Vec<u8> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA keygen");
    pair.as_der().expect("PKCS#8").as_ref().to_vec()
}

fn ecdsa_pkcs8(curve: EcdsaCurve) -> Vec<u8> {
    let alg = match curve {
        EcdsaCurve::P256 => &lc::ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaCurve::P384 => &lc::ECDSA_P384_SHA384_ASN1_SIGNING,
        EcdsaCurve::P521 => &lc::ECDSA_P521_SHA512_ASN1_SIGNING,
    };
    EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
        .expect("ECDSA keygen")
        .as_ref()
        .to_vec()
}

const CURVES: [EcdsaCurve; 3] = [EcdsaCurve::P256, EcdsaCurve::P384, EcdsaCurve::P521];

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).expect("hex")
}

#[test]
fn auth_method_numbers_are_ianas() {
    for (method, value) in [
        (AuthMethod::RsaDigitalSignature, 1u8),
        (AuthMethod::EcdsaSha256P256, 9),
        (AuthMethod::EcdsaSha384P384, 10),
        (AuthMethod::EcdsaSha512P521, 11),
        (AuthMethod::DigitalSignature, 14),
    ] {
        assert_eq!(u8::from(method), value);
        assert_eq!(AuthMethod::try_from(value), Ok(method));
    }
    // Shared Key MIC and NULL authentication are not signatures.
    assert_eq!(
        AuthMethod::try_from(2),
        Err(SignatureError::UnsupportedMethod(2))
    );
    assert_eq!(
        AuthMethod::try_from(13),
        Err(SignatureError::UnsupportedMethod(13))
    );
}

/// The hex dumps of RFC 7427 Appendix A (A.1.2-A.1.4, A.3.2-A.3.4, A.4.3), as
/// printed there; PSS with SHA-384 and SHA-512 are not in RFC 7427 and are
/// checked against the encodings the Mozilla Root Store Policy (§5.1.1) lists.
#[test]
fn algorithm_identifiers_match_rfc_7427_appendix_a() {
    let expected = [
        (
            SignatureScheme::RsaPkcs1Sha256,
            "300d 0609 2a86 4886 f70d 0101 0b05 00",
        ),
        (
            SignatureScheme::RsaPkcs1Sha384,
            "300d 0609 2a86 4886 f70d 0101 0c05 00",
        ),
        (
            SignatureScheme::RsaPkcs1Sha512,
            "300d 0609 2a86 4886 f70d 0101 0d05 00",
        ),
        (
            SignatureScheme::EcdsaSha256,
            "300a 0608 2a86 48ce 3d04 0302",
        ),
        (
            SignatureScheme::EcdsaSha384,
            "300a 0608 2a86 48ce 3d04 0303",
        ),
        (
            SignatureScheme::EcdsaSha512,
            "300a 0608 2a86 48ce 3d04 0304",
        ),
        (
            SignatureScheme::RsaPssSha256,
            "3041 0609 2a86 4886 f70d 0101 0a30 34a0
             0f30 0d06 0960 8648 0165 0304 0201 0500
             a11c 301a 0609 2a86 4886 f70d 0101 0830
             0d06 0960 8648 0165 0304 0201 0500 a203
             0201 20",
        ),
        (
            SignatureScheme::RsaPssSha384,
            "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a86\
             4886f70d010108300d06096086480165030402020500a203020130",
        ),
        (
            SignatureScheme::RsaPssSha512,
            "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a86\
             4886f70d010108300d06096086480165030402030500a203020140",
        ),
    ];
    assert_eq!(expected.len(), SignatureScheme::ALL.len());
    for (scheme, dump) in expected {
        let der = unhex(dump);
        assert_eq!(scheme.algorithm_identifier(), der.as_slice(), "{scheme:?}");
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&der),
            Some(scheme)
        );
    }
    assert_eq!(
        SignatureScheme::RsaPssSha256.algorithm_identifier().len(),
        67,
        "RFC 7427: Length = 67"
    );
    // sha1WithRSAEncryption (A.1.1) and ecdsa-with-SHA1 are deliberately unknown.
    let sha1_rsa = unhex("300d 0609 2a86 4886 f70d 0101 0505 00");
    assert_eq!(SignatureScheme::from_algorithm_identifier(&sha1_rsa), None);
    // RSASSA-PSS with empty parameters (A.4.1) means SHA-1: unknown too.
    let pss_empty = unhex("300b 0609 2a86 4886 f70d 0101 0a30 00");
    assert_eq!(SignatureScheme::from_algorithm_identifier(&pss_empty), None);
}

fn round_trip(key: &SigningKey, spki: &[u8], method: AuthMethod, scheme: Option<SignatureScheme>) {
    let auth = key.sign(method, scheme, OCTETS).expect("sign");
    verify(spki, method, &auth, OCTETS).unwrap_or_else(|e| panic!("{method:?} {scheme:?}: {e}"));
    let mut tampered = OCTETS.to_vec();
    tampered[3] ^= 1;
    assert_eq!(
        verify(spki, method, &auth, &tampered),
        Err(SignatureError::BadSignature),
        "{method:?} {scheme:?} tampered data"
    );
    let mut bad_sig = auth.clone();
    *bad_sig.last_mut().expect("non-empty") ^= 0x40;
    assert!(verify(spki, method, &bad_sig, OCTETS).is_err());
}

#[test]
fn rsa_round_trips_every_method_and_scheme() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let key = SigningKey::from_pkcs8_der(&rsa_pkcs8()).expect("RSA key");
    shareable(&key);
    assert_eq!(key.ecdsa_curve(), None);
    let spki = key.public_key_spki_der().expect("SPKI");
    round_trip(&key, &spki, AuthMethod::RsaDigitalSignature, None);
    let auth = key
        .sign(AuthMethod::RsaDigitalSignature, None, OCTETS)
        .expect("sign");
    assert_eq!(
        auth.len(),
        256,
        "method 1 AUTH data is the bare 2048-bit signature"
    );
    for scheme in SignatureScheme::ALL.into_iter().filter(|s| s.is_rsa()) {
        round_trip(&key, &spki, AuthMethod::DigitalSignature, Some(scheme));
        let auth = key
            .sign(AuthMethod::DigitalSignature, Some(scheme), OCTETS)
            .expect("sign");
        let id = scheme.algorithm_identifier();
        assert_eq!(usize::from(auth[0]), id.len());
        assert_eq!(&auth[1..=id.len()], id);
        assert_eq!(auth.len(), 1 + id.len() + 256);
        let (parsed, signature) = parse_digital_signature(&auth).expect("parse");
        assert_eq!((parsed, signature.len()), (scheme, 256));
    }
}

#[test]
fn ecdsa_round_trips_every_curve() {
    for (curve, field_len) in CURVES.into_iter().zip([32, 48, 66]) {
        let key = SigningKey::from_pkcs8_der(&ecdsa_pkcs8(curve)).expect("ECDSA key");
        assert_eq!(key.ecdsa_curve(), Some(curve));
        let spki = key.public_key_spki_der().expect("SPKI");
        round_trip(&key, &spki, curve.auth_method(), None);
        let auth = key.sign(curve.auth_method(), None, OCTETS).expect("sign");
        assert_eq!(auth.len(), 2 * field_len, "RFC 4754: r | s, fixed length");
        round_trip(
            &key,
            &spki,
            AuthMethod::DigitalSignature,
            Some(curve.scheme()),
        );
        let auth = key
            .sign(AuthMethod::DigitalSignature, Some(curve.scheme()), OCTETS)
            .expect("sign");
        let (_, signature) = parse_digital_signature(&auth).expect("parse");
        assert_eq!(signature[0], 0x30, "RFC 7427: DER ECDSA-Sig-Value");
    }
}

#[test]
fn keys_of_the_wrong_kind_are_refused() {
    let rsa = SigningKey::from_pkcs8_der(&rsa_pkcs8()).expect("RSA key");
    let rsa_spki = rsa.public_key_spki_der().expect("SPKI");
    let p256 = SigningKey::from_pkcs8_der(&ecdsa_pkcs8(EcdsaCurve::P256)).expect("P-256");
    let p256_spki = p256.public_key_spki_der().expect("SPKI");
    let p384 = SigningKey::from_pkcs8_der(&ecdsa_pkcs8(EcdsaCurve::P384)).expect("P-384");
    let p384_spki = p384.public_key_spki_der().expect("SPKI");

    // Signing.
    let refused = [
        (
            &p256,
            AuthMethod::RsaDigitalSignature,
            None,
            SignatureError::KeyMismatch,
        ),
        (
            &rsa,
            AuthMethod::EcdsaSha256P256,
            None,
            SignatureError::KeyMismatch,
        ),
        (
            &p384,
            AuthMethod::EcdsaSha256P256,
            None,
            SignatureError::KeyMismatch,
        ),
        (
            &p256,
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::RsaPssSha256),
            SignatureError::KeyMismatch,
        ),
        (
            &rsa,
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::EcdsaSha256),
            SignatureError::KeyMismatch,
        ),
        (
            &p256,
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::EcdsaSha384),
            SignatureError::UnsupportedScheme,
        ),
        (
            &rsa,
            AuthMethod::DigitalSignature,
            None,
            SignatureError::MissingScheme,
        ),
        (
            &rsa,
            AuthMethod::RsaDigitalSignature,
            Some(SignatureScheme::RsaPkcs1Sha256),
            SignatureError::UnexpectedScheme,
        ),
    ];
    for (key, method, scheme, error) in refused {
        assert_eq!(
            key.sign(method, scheme, OCTETS),
            Err(error),
            "{key:?} {method:?} {scheme:?}"
        );
    }

    // Verifying with a key of another type or curve than the method says.
    let p256_fixed = p256
        .sign(AuthMethod::EcdsaSha256P256, None, OCTETS)
        .expect("sign");
    assert_eq!(
        verify(&p384_spki, AuthMethod::EcdsaSha256P256, &p256_fixed, OCTETS),
        Err(SignatureError::KeyMismatch)
    );
    assert_eq!(
        verify(&rsa_spki, AuthMethod::EcdsaSha256P256, &p256_fixed, OCTETS),
        Err(SignatureError::KeyMismatch)
    );
    let rsa_sha1 = rsa
        .sign(AuthMethod::RsaDigitalSignature, None, OCTETS)
        .expect("sign");
    assert_eq!(
        verify(
            &p256_spki,
            AuthMethod::RsaDigitalSignature,
            &rsa_sha1,
            OCTETS
        ),
        Err(SignatureError::KeyMismatch)
    );
    // An ECDSA key under an RSA AlgorithmIdentifier, and the reverse.
    let ecdsa_auth = p256
        .sign(
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::EcdsaSha256),
            OCTETS,
        )
        .expect("sign");
    let relabelled = relabel(&ecdsa_auth, SignatureScheme::RsaPkcs1Sha256);
    assert_eq!(
        verify(
            &p256_spki,
            AuthMethod::DigitalSignature,
            &relabelled,
            OCTETS
        ),
        Err(SignatureError::KeyMismatch)
    );
    let rsa_auth = rsa
        .sign(
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::RsaPkcs1Sha256),
            OCTETS,
        )
        .expect("sign");
    assert_eq!(
        verify(
            &rsa_spki,
            AuthMethod::DigitalSignature,
            &relabel(&rsa_auth, SignatureScheme::EcdsaSha256),
            OCTETS
        ),
        Err(SignatureError::KeyMismatch)
    );
    // Same key type, another algorithm than the one that signed.
    for other in [
        SignatureScheme::RsaPkcs1Sha384,
        SignatureScheme::RsaPssSha256,
    ] {
        assert_eq!(
            verify(
                &rsa_spki,
                AuthMethod::DigitalSignature,
                &relabel(&rsa_auth, other),
                OCTETS
            ),
            Err(SignatureError::BadSignature),
            "{other:?}"
        );
    }
    assert_eq!(
        verify(
            &p256_spki,
            AuthMethod::DigitalSignature,
            &relabel(&ecdsa_auth, SignatureScheme::EcdsaSha512),
            OCTETS
        ),
        Err(SignatureError::BadSignature)
    );
    // Another key of the right type.
    let other_rsa = SigningKey::from_pkcs8_der(&rsa_pkcs8()).expect("RSA key");
    let other_spki = other_rsa.public_key_spki_der().expect("SPKI");
    assert_eq!(
        verify(&other_spki, AuthMethod::DigitalSignature, &rsa_auth, OCTETS),
        Err(SignatureError::BadSignature)
    );
    assert_eq!(
        verify(
            &other_spki,
            AuthMethod::RsaDigitalSignature,
            &rsa_sha1,
            OCTETS
        ),
        Err(SignatureError::BadSignature)
    );
    // Not a key at all.
    assert_eq!(
        verify(
            b"not a key",
            AuthMethod::RsaDigitalSignature,
            &rsa_sha1,
            OCTETS
        ),
        Err(SignatureError::KeyMismatch)
    );
    assert_eq!(
        SigningKey::from_pkcs8_der(b"not a key").map(|_| ()),
        Err(SignatureError::KeyRejected)
    );
    assert_eq!(
        SigningKey::from_pkcs8_pem(b"not pem").map(|_| ()),
        Err(SignatureError::KeyRejected)
    );
}

/// The same AUTH data with its AlgorithmIdentifier replaced by `scheme`'s.
fn relabel(auth: &[u8], scheme: SignatureScheme) -> Vec<u8> {
    let (_, signature) = parse_digital_signature(auth).expect("parse");
    let id = scheme.algorithm_identifier();
    let mut out = vec![u8::try_from(id.len()).expect("short")];
    out.extend_from_slice(id);
    out.extend_from_slice(signature);
    out
}

#[test]
fn malformed_digital_signature_auth_data_is_refused() {
    let key = SigningKey::from_pkcs8_der(&ecdsa_pkcs8(EcdsaCurve::P256)).expect("P-256");
    let spki = key.public_key_spki_der().expect("SPKI");
    let auth = key
        .sign(
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::EcdsaSha256),
            OCTETS,
        )
        .expect("sign");
    let id_len = SignatureScheme::EcdsaSha256.algorithm_identifier().len();
    let mut sha1_rsa = unhex("0f 300d 0609 2a86 4886 f70d 0101 0505 00");
    sha1_rsa.extend_from_slice(&[1; 256]);
    let cases: [(&[u8], SignatureError); 5] = [
        (&[], SignatureError::MalformedAuthData),
        (&[200, 0x30, 0x0a], SignatureError::MalformedAuthData),
        (&auth[..=id_len], SignatureError::MalformedAuthData), // no signature
        (&auth[1..], SignatureError::UnknownAlgorithm),        // length octet missing
        (&sha1_rsa, SignatureError::UnknownAlgorithm),
    ];
    for (data, error) in cases {
        assert_eq!(
            verify(&spki, AuthMethod::DigitalSignature, data, OCTETS),
            Err(error),
            "{data:02x?}"
        );
    }
    // Truncated and empty signatures for the fixed-length methods.
    let fixed = key
        .sign(AuthMethod::EcdsaSha256P256, None, OCTETS)
        .expect("sign");
    for data in [
        &fixed[..63],
        &fixed[..0],
        &[fixed.as_slice(), &[0]].concat()[..],
    ] {
        assert_eq!(
            verify(&spki, AuthMethod::EcdsaSha256P256, data, OCTETS),
            Err(SignatureError::BadSignature)
        );
    }
}

#[test]
fn signature_hash_algorithms_notification() {
    assert_eq!(SIGNATURE_HASH_ALGORITHMS, 16431);
    let ours = [
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha256,
    ];
    assert_eq!(encode_hash_algorithms(&ours), [0, 4, 0, 3, 0, 2]);
    assert_eq!(u16::from(HashAlgorithm::Sha1), 1);
    // strongSwan's usual list: SHA2-256, SHA2-384, SHA2-512, Identity (RFC 8420).
    let theirs = parse_hash_algorithms(&[0, 2, 0, 3, 0, 4, 0, 5]).expect("parse");
    assert_eq!(
        theirs,
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512
        ]
    );
    assert_eq!(
        choose_hash_algorithm(&ours, &theirs),
        Some(HashAlgorithm::Sha512)
    );
    assert_eq!(
        choose_hash_algorithm(
            &[HashAlgorithm::Sha256],
            &[HashAlgorithm::Sha1, HashAlgorithm::Sha256]
        ),
        Some(HashAlgorithm::Sha256)
    );
    assert_eq!(choose_hash_algorithm(&ours, &[HashAlgorithm::Sha1]), None);
    assert_eq!(parse_hash_algorithms(&[]), Ok(vec![]));
    assert_eq!(
        parse_hash_algorithms(&[0, 2, 0]),
        Err(SignatureError::MalformedHashAlgorithms)
    );
    for scheme in SignatureScheme::ALL {
        assert_ne!(scheme.hash(), HashAlgorithm::Sha1);
    }
}

// ---- openssl cross-checks ----

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-sig-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: openssl is not installed; no cross-check with an independent implementation"
        );
    }
    found
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// An openssl-generated key: ours from its PEM, and its SPKI from openssl.
fn openssl_key(dir: &Scratch, name: &str, genpkey: &[&str]) -> (SigningKey, Vec<u8>, PathBuf) {
    let key = dir.path(&format!("{name}.pem"));
    let mut args = vec!["genpkey", "-out", s(&key)];
    args.extend_from_slice(genpkey);
    openssl_ok(&args);
    let spki = openssl_ok(&["pkey", "-in", s(&key), "-pubout", "-outform", "DER"]);
    let pem = std::fs::read(&key).expect("read key");
    let signing = SigningKey::from_pkcs8_pem(&pem).expect("openssl's PKCS#8 PEM");
    assert_eq!(
        signing.public_key_spki_der().expect("SPKI"),
        spki,
        "{name}: same public key"
    );
    (signing, spki, key)
}

/// `openssl dgst -sign` over OCTETS.
fn openssl_sign(dir: &Scratch, key: &Path, dgst: &[&str]) -> Vec<u8> {
    let data = dir.path("data");
    std::fs::write(&data, OCTETS).expect("write data");
    let mut args = vec!["dgst"];
    args.extend_from_slice(dgst);
    args.extend_from_slice(&["-sign", s(key), s(&data)]);
    openssl_ok(&args)
}

/// `openssl dgst -verify` of `signature` over `data`.
fn openssl_verifies(
    dir: &Scratch,
    key: &Path,
    dgst: &[&str],
    data: &[u8],
    signature: &[u8],
) -> bool {
    let data_path = dir.path("data");
    let sig_path = dir.path("sig");
    let pub_path = dir.path("pub.pem");
    std::fs::write(&data_path, data).expect("write data");
    std::fs::write(&sig_path, signature).expect("write sig");
    openssl_ok(&["pkey", "-in", s(key), "-pubout", "-out", s(&pub_path)]);
    let mut args = vec!["dgst"];
    args.extend_from_slice(dgst);
    args.extend_from_slice(&[
        "-verify",
        s(&pub_path),
        "-signature",
        s(&sig_path),
        s(&data_path),
    ]);
    openssl(&args).status.success()
}

fn with_algorithm_identifier(scheme: SignatureScheme, signature: &[u8]) -> Vec<u8> {
    let id = scheme.algorithm_identifier();
    let mut auth = vec![u8::try_from(id.len()).expect("short")];
    auth.extend_from_slice(id);
    auth.extend_from_slice(signature);
    auth
}

#[test]
fn rsa_interoperates_with_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = Scratch::new();
    let (key, spki, path) = openssl_key(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let pss32 = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sigopt",
        "rsa_mgf1_md:sha256",
    ];
    let cases: Vec<(AuthMethod, Option<SignatureScheme>, Vec<&str>)> = vec![
        (AuthMethod::RsaDigitalSignature, None, vec!["-sha1"]),
        (
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::RsaPkcs1Sha256),
            vec!["-sha256"],
        ),
        (
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::RsaPkcs1Sha512),
            vec!["-sha512"],
        ),
        (
            AuthMethod::DigitalSignature,
            Some(SignatureScheme::RsaPssSha256),
            [&["-sha256"][..], &pss32].concat(),
        ),
    ];
    for (method, scheme, dgst) in cases {
        // openssl signs, we verify.
        let signature = openssl_sign(&dir, &path, &dgst);
        let auth = match scheme {
            Some(scheme) => with_algorithm_identifier(scheme, &signature),
            None => signature,
        };
        verify(&spki, method, &auth, OCTETS).unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        assert_eq!(
            verify(&spki, method, &auth, b"other octets"),
            Err(SignatureError::BadSignature)
        );
        // We sign, openssl verifies.
        let auth = key.sign(method, scheme, OCTETS).expect("sign");
        let signature = match scheme {
            Some(_) => parse_digital_signature(&auth).expect("parse").1.to_vec(),
            None => auth,
        };
        assert!(
            openssl_verifies(&dir, &path, &dgst, OCTETS, &signature),
            "{method:?} {scheme:?}"
        );
        assert!(!openssl_verifies(
            &dir,
            &path,
            &dgst,
            b"other octets",
            &signature
        ));
    }
}

#[test]
fn ecdsa_interoperates_with_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = Scratch::new();
    for (curve, name, dgst, field_len) in [
        (EcdsaCurve::P256, "P-256", "-sha256", 32),
        (EcdsaCurve::P384, "P-384", "-sha384", 48),
        (EcdsaCurve::P521, "P-521", "-sha512", 66),
    ] {
        let (key, spki, path) = openssl_key(
            &dir,
            name,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{name}"),
            ],
        );
        assert_eq!(key.ecdsa_curve(), Some(curve));
        // openssl signs (DER): as is for RFC 7427, as r | s for RFC 4754.
        let der = openssl_sign(&dir, &path, &[dgst]);
        verify(
            &spki,
            AuthMethod::DigitalSignature,
            &with_algorithm_identifier(curve.scheme(), &der),
            OCTETS,
        )
        .unwrap_or_else(|e| panic!("{name} method 14: {e}"));
        verify(
            &spki,
            curve.auth_method(),
            &der_to_fixed(&der, field_len),
            OCTETS,
        )
        .unwrap_or_else(|e| panic!("{name} RFC 4754: {e}"));
        // We sign, openssl verifies.
        let auth = key
            .sign(AuthMethod::DigitalSignature, Some(curve.scheme()), OCTETS)
            .expect("sign");
        let (_, der) = parse_digital_signature(&auth).expect("parse");
        assert!(
            openssl_verifies(&dir, &path, &[dgst], OCTETS, der),
            "{name} method 14"
        );
        let fixed = key.sign(curve.auth_method(), None, OCTETS).expect("sign");
        let der = fixed_to_der(&fixed);
        assert!(
            openssl_verifies(&dir, &path, &[dgst], OCTETS, &der),
            "{name} RFC 4754"
        );
        assert!(!openssl_verifies(
            &dir,
            &path,
            &[dgst],
            b"other octets",
            &der
        ));
    }
}

// DER ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } <-> r | s, for
// the RFC 4754 cross-check only.

fn der_to_fixed(der: &[u8], field_len: usize) -> Vec<u8> {
    let (tag, body) = der.split_first().expect("non-empty");
    assert_eq!(*tag, 0x30);
    let body = match body[0] {
        0x81 => &body[2..],
        _ => &body[1..],
    };
    let mut out = Vec::new();
    let mut rest = body;
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02);
        let len = usize::from(rest[1]);
        let int = &rest[2..2 + len];
        let int = &int[int.iter().take_while(|&&b| b == 0).count()..];
        out.extend(std::iter::repeat_n(0, field_len - int.len()));
        out.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    out
}

fn fixed_to_der(fixed: &[u8]) -> Vec<u8> {
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let mut body = Vec::new();
    for int in [r, s] {
        let int = &int[int
            .iter()
            .take_while(|&&b| b == 0)
            .count()
            .min(int.len() - 1)..];
        let pad = int[0] & 0x80 != 0;
        body.push(0x02);
        body.push(u8::try_from(int.len() + usize::from(pad)).expect("short"));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(int);
    }
    let mut der = vec![0x30];
    if body.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(u8::try_from(body.len()).expect("short"));
    der.extend_from_slice(&body);
    der
}
