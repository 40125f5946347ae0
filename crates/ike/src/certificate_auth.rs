//! Authentication with certificates (RFC 7296 §2.15, §3.6-§3.8): signing
//! our AUTH payload with RFC 7427 Digital Signature (14) when the peer
//! announced SIGNATURE_HASH_ALGORITHMS, else with the classic method of our
//! key (1 for RSA, 9/10/11 for ECDSA, RFC 4754); and checking the peer's:
//! its certificate's path to a trust anchor at a given time, the identity
//! against the certificate, then the signature with the certificate's key.
//!
//! Both sides sign the octets of RFC 7296 §2.15 without the pre-shared key
//! step:
//!
//! ```text
//! InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//! ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//! ```

use std::time::SystemTime;

use palisade_crypto::Prf;
use palisade_crypto::certificate::{
    Certificate, CertificateError, IkeIdentity, TrustAnchors, validate_path,
};
use palisade_crypto::signature::{
    self, AuthMethod, HashAlgorithm, SignatureError, SignatureScheme, choose_hash_algorithm,
};
use palisade_wire::ikev2::cert_encoding;

use crate::auth::SignedOctets;
use crate::credentials::LocalCredential;
use crate::error::CertificateFailure;
use crate::identity::Identity;

/// The hashes we announce in SIGNATURE_HASH_ALGORITHMS and sign with,
/// most preferred first. SHA-1 is left out: RFC 8247 deprecates it for
/// Digital Signature authentication.
pub(crate) const OUR_HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

/// The octets a signature covers: `real_message | peer_nonce | prf(SK_p,
/// id_body)`.
pub(crate) fn signed_octets(prf: Prf, signed: &SignedOctets<'_>) -> Vec<u8> {
    let maced_id = prf.prf(signed.sk_p, signed.id_body);
    let mut octets = Vec::with_capacity(
        signed.real_message.len() + signed.peer_nonce.len() + maced_id.as_ref().len(),
    );
    octets.extend_from_slice(signed.real_message);
    octets.extend_from_slice(signed.peer_nonce);
    octets.extend_from_slice(maced_id.as_ref());
    // RFC 9242 §3.3.2: IntAuth after IKE_INTERMEDIATE, else empty.
    octets.extend_from_slice(signed.int_auth);
    octets
}

/// The Auth Method and Authentication Data of our AUTH payload.
/// `peer_hashes` is what the peer's SIGNATURE_HASH_ALGORITHMS listed, or
/// `None` if it sent none (then only the classic methods are understood).
pub(crate) fn sign(
    local: &LocalCredential,
    peer_hashes: Option<&[HashAlgorithm]>,
    octets: &[u8],
) -> Result<(u8, Vec<u8>), SignatureError> {
    let key = local.key();
    let scheme = peer_hashes.and_then(|theirs| match key.ecdsa_curve() {
        // aws-lc signs ECDSA only with the curve's own hash.
        Some(curve) => {
            let scheme = curve.scheme();
            theirs.contains(&scheme.hash()).then_some(scheme)
        }
        None => choose_hash_algorithm(&OUR_HASHES, theirs).map(|h| match h {
            HashAlgorithm::Sha384 => SignatureScheme::RsaPkcs1Sha384,
            HashAlgorithm::Sha512 => SignatureScheme::RsaPkcs1Sha512,
            _ => SignatureScheme::RsaPkcs1Sha256,
        }),
    });
    let method = match (scheme, key.ecdsa_curve()) {
        (Some(_), _) => AuthMethod::DigitalSignature,
        (None, Some(curve)) => curve.auth_method(),
        (None, None) => AuthMethod::RsaDigitalSignature,
    };
    let data = key.sign(method, scheme, octets)?;
    Ok((u8::from(method), data))
}

/// What the peer presented in IKE_AUTH.
pub(crate) struct PeerProof<'a> {
    /// The CERT payloads as (Cert Encoding, Certificate Data), in order:
    /// the first X.509 one is the end entity, the others intermediates.
    pub certs: &'a [(u8, &'a [u8])],
    /// The identity of its IDi/IDr.
    pub identity: &'a Identity,
    /// Auth Method.
    pub method: u8,
    /// Authentication Data.
    pub data: &'a [u8],
}

/// Checks a peer's signature authentication: path validation to `anchors`
/// at `time`, the identity against the end-entity certificate, then the
/// signature over `octets`. Returns the end-entity certificate.
pub(crate) fn verify_peer(
    anchors: &TrustAnchors,
    proof: &PeerProof<'_>,
    octets: &[u8],
    time: SystemTime,
) -> Result<Certificate, CertificateFailure> {
    let method =
        AuthMethod::try_from(proof.method).map_err(|_| CertificateFailure::UnsupportedMethod)?;
    let mut x509 = proof
        .certs
        .iter()
        .filter(|(encoding, _)| *encoding == cert_encoding::X509_CERTIFICATE_SIGNATURE)
        .map(|(_, der)| Certificate::from_der(der));
    let end_entity = x509
        .next()
        .ok_or(CertificateFailure::NoCertificate)?
        .map_err(|_| CertificateFailure::Malformed)?;
    // An intermediate that does not parse cannot be on the path; leaving it
    // out lets validation say whether a path exists without it.
    let intermediates: Vec<Certificate> = x509.filter_map(Result::ok).collect();
    validate_path(&end_entity, &intermediates, anchors, time).map_err(path_failure)?;
    let identity = IkeIdentity::from_payload(proof.identity.id_type(), &proof.identity.data())
        .map_err(|_| CertificateFailure::IdentityMismatch)?;
    if !end_entity.matches_identity(&identity) {
        return Err(CertificateFailure::IdentityMismatch);
    }
    signature::verify(
        end_entity.subject_public_key_info(),
        method,
        proof.data,
        octets,
    )
    .map_err(|e| match e {
        SignatureError::UnknownAlgorithm | SignatureError::UnsupportedMethod(_) => {
            CertificateFailure::UnsupportedMethod
        }
        _ => CertificateFailure::BadSignature,
    })?;
    Ok(end_entity)
}

fn path_failure(e: CertificateError) -> CertificateFailure {
    match e {
        CertificateError::Expired => CertificateFailure::Expired,
        CertificateError::NotYetValid => CertificateFailure::NotYetValid,
        CertificateError::UnknownIssuer => CertificateFailure::Untrusted,
        CertificateError::Malformed => CertificateFailure::Malformed,
        CertificateError::KeyUsageNotIke => CertificateFailure::KeyUsage,
        _ => CertificateFailure::PathRejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_crypto::SigningKey;
    use palisade_crypto::TrustAnchors;
    use palisade_crypto::prf::PrfId;
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType, date_time_ymd,
    };
    use std::time::Duration;

    const OCTETS: &[u8] = b"RealMessage | Nonce | MACedID";

    struct Setup {
        anchors: TrustAnchors,
        end_entity: Vec<u8>,
        local: LocalCredential,
    }

    fn setup(alg: &'static rcgen::SignatureAlgorithm) -> Setup {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = ca.self_signed(&ca_key).expect("root");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate_for(alg).expect("key");
        let mut ee = CertificateParams::new(Vec::<String>::new()).expect("params");
        ee.subject_alt_names = vec![SanType::DnsName("gw.example.org".try_into().expect("ia5"))];
        ee.not_before = date_time_ymd(2025, 1, 1);
        ee.not_after = date_time_ymd(2027, 1, 1);
        let cert = ee.signed_by(&key, &issuer).expect("ee");
        let mut anchors = TrustAnchors::new();
        anchors
            .add(Certificate::from_der(root.der()).expect("root"))
            .expect("anchor");
        let local = LocalCredential::new(
            vec![Certificate::from_der(cert.der()).expect("ee")],
            SigningKey::from_pkcs8_der(&key.serialize_der()).expect("key"),
        )
        .expect("credential");
        Setup {
            anchors,
            end_entity: cert.der().to_vec(),
            local,
        }
    }

    fn time() -> SystemTime {
        let secs = date_time_ymd(2026, 1, 1).unix_timestamp();
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    fn check(s: &Setup, method: u8, data: &[u8]) -> Result<Certificate, CertificateFailure> {
        let id = Identity::Fqdn("gw.example.org".into());
        let certs = [(cert_encoding::X509_CERTIFICATE_SIGNATURE, &s.end_entity[..])];
        let proof = PeerProof {
            certs: &certs,
            identity: &id,
            method,
            data,
        };
        verify_peer(&s.anchors, &proof, OCTETS, time())
    }

    #[test]
    fn the_method_follows_the_peers_hashes_and_our_key() {
        let all = OUR_HASHES.to_vec();
        for (alg, classic) in [
            (&rcgen::PKCS_RSA_SHA256, 1),
            (&rcgen::PKCS_ECDSA_P256_SHA256, 9),
            (&rcgen::PKCS_ECDSA_P384_SHA384, 10),
        ] {
            let s = setup(alg);
            let (method, data) = sign(&s.local, Some(&all), OCTETS).expect("sign");
            assert_eq!(method, 14, "RFC 7427 when the peer announced hashes");
            check(&s, method, &data).expect("verifies");
            let (method, data) = sign(&s.local, None, OCTETS).expect("sign");
            assert_eq!(method, classic, "no SIGNATURE_HASH_ALGORITHMS");
            check(&s, method, &data).expect("verifies");
            // A peer that only knows SHA-1 gets the classic method too.
            let (method, _) = sign(&s.local, Some(&[HashAlgorithm::Sha1]), OCTETS).expect("sign");
            assert_eq!(method, classic);
        }
        // RFC 7427 with an RSA key follows the peer's hash.
        let s = setup(&rcgen::PKCS_RSA_SHA256);
        let (_, data) = sign(&s.local, Some(&[HashAlgorithm::Sha512]), OCTETS).expect("sign");
        let (scheme, _) = signature::parse_digital_signature(&data).expect("parse");
        assert_eq!(scheme, SignatureScheme::RsaPkcs1Sha512);
    }

    #[test]
    fn a_tampered_auth_or_other_octets_are_a_bad_signature() {
        let s = setup(&rcgen::PKCS_ECDSA_P256_SHA256);
        for hashes in [Some(&OUR_HASHES[..]), None] {
            let (method, mut data) = sign(&s.local, hashes, OCTETS).expect("sign");
            let last = data.len() - 1;
            data[last] ^= 0x01;
            assert_eq!(
                check(&s, method, &data),
                Err(CertificateFailure::BadSignature)
            );
        }
        let (method, data) = sign(&s.local, None, b"other octets").expect("sign");
        assert_eq!(
            check(&s, method, &data),
            Err(CertificateFailure::BadSignature)
        );
        // Method 2 (shared key) is not a signature method.
        assert_eq!(
            check(&s, 2, &data),
            Err(CertificateFailure::UnsupportedMethod)
        );
        // No certificate at all.
        let id = Identity::Fqdn("gw.example.org".into());
        let proof = PeerProof {
            certs: &[],
            identity: &id,
            method,
            data: &data,
        };
        assert_eq!(
            verify_peer(&s.anchors, &proof, OCTETS, time()).map(|_| ()),
            Err(CertificateFailure::NoCertificate)
        );
    }

    #[test]
    fn signed_octets_are_the_rfc_7296_concatenation() {
        let prf = Prf::new(PrfId::HmacSha2_256);
        let signed = SignedOctets {
            real_message: b"message",
            peer_nonce: b"nonce",
            sk_p: &[3u8; 32],
            id_body: &[2, 0, 0, 0, b'a'],
            int_auth: &[],
        };
        let octets = signed_octets(prf, &signed);
        let maced = prf.prf(&[3u8; 32], &[2, 0, 0, 0, b'a']);
        assert_eq!(octets, [&b"message"[..], b"nonce", maced.as_ref()].concat());
    }
}
