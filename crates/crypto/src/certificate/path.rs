//! Certification path validation for IKE peers: rustls-webpki over aws-lc-rs
//! builds a path from the end-entity certificate through the intermediates
//! the peer sent (CERT payloads) to one of the configured trust anchors, at
//! a time the caller gives.
//!
//! Extended key usage: a certificate in the path that has the extension must
//! list id-kp-ipsecIKE (RFC 4945 §5.1.3.12); one without it is accepted.
//! anyExtendedKeyUsage alone does not satisfy this. Revocation is not checked.

use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::{EndEntityCert, KeyUsage, aws_lc_rs as algs};

use super::certreq::{CERTREQ_HASH_LEN, certreq_authority_hash};
use super::{Certificate, CertificateError};

/// id-kp-ipsecIKE, 1.3.6.1.5.5.7.3.17 (RFC 4945 §5.1.3.12), DER OID content.
const ID_KP_IPSEC_IKE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11];

/// Signature algorithms accepted in certificates. Not SHA-1, nor RSA keys
/// under 2048 bits.
static SIGNATURE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P256_SHA384,
    algs::ECDSA_P256_SHA512,
    algs::ECDSA_P384_SHA256,
    algs::ECDSA_P384_SHA384,
    algs::ECDSA_P384_SHA512,
    algs::ECDSA_P521_SHA256,
    algs::ECDSA_P521_SHA384,
    algs::ECDSA_P521_SHA512,
    algs::ED25519,
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// The configured trust anchors (root or otherwise trusted CA certificates).
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    certificates: Vec<Certificate>,
}

impl TrustAnchors {
    /// No anchors: every path is [`CertificateError::UnknownIssuer`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CA certificate. It must parse both for x509-parser and as a
    /// webpki trust anchor (v3, DER).
    pub fn add(&mut self, certificate: Certificate) -> Result<(), CertificateError> {
        let der = CertificateDer::from(certificate.der());
        webpki::anchor_from_trusted_cert(&der).map_err(|_| CertificateError::Malformed)?;
        self.certificates.push(certificate);
        Ok(())
    }

    /// The anchors, in the order they were added.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// The SHA-1 hash of each anchor's SubjectPublicKeyInfo, in order: what
    /// we put in our CERTREQ payloads and look for in the peer's.
    pub fn certreq_hashes(&self) -> Vec<[u8; CERTREQ_HASH_LEN]> {
        self.certificates
            .iter()
            .map(|ca| certreq_authority_hash(ca.subject_public_key_info()))
            .collect()
    }

    /// Our CERTREQ payload's Certification Authority field: the hashes
    /// concatenated.
    pub fn certreq_data(&self) -> Vec<u8> {
        self.certreq_hashes().concat()
    }

    /// The anchors a peer's CERTREQ Certification Authority field names
    /// (hashes we do not know are skipped; a trailing partial hash is ignored).
    pub fn requested_by(&self, certreq_data: &[u8]) -> Vec<&Certificate> {
        let requested: Vec<&[u8]> = certreq_data.chunks_exact(CERTREQ_HASH_LEN).collect();
        self.certificates
            .iter()
            .filter(|ca| {
                let hash = certreq_authority_hash(ca.subject_public_key_info());
                requested.contains(&hash.as_slice())
            })
            .collect()
    }
}

/// Validates `end_entity`, with the peer's `intermediates` in any order, up
/// to one of `anchors`, as of `time`.
pub fn validate_path(
    end_entity: &Certificate,
    intermediates: &[Certificate],
    anchors: &TrustAnchors,
    time: SystemTime,
) -> Result<(), CertificateError> {
    let ee_der = CertificateDer::from(end_entity.der());
    let ee = EndEntityCert::try_from(&ee_der).map_err(|_| CertificateError::Malformed)?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .certificates
        .iter()
        .map(|ca| CertificateDer::from(ca.der()))
        .collect();
    let trust_anchors = anchor_ders
        .iter()
        .map(webpki::anchor_from_trusted_cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertificateError::Malformed)?;
    let intermediate_ders: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|cert| CertificateDer::from(cert.der()))
        .collect();
    // Before 1970 nothing we accept is valid; the epoch fails notBefore too.
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    ee.verify_for_usage(
        SIGNATURE_ALGORITHMS,
        &trust_anchors,
        &intermediate_ders,
        UnixTime::since_unix_epoch(since_epoch),
        KeyUsage::required_if_present(ID_KP_IPSEC_IKE),
        None,
        None,
    )
    .map(|_| ())
    .map_err(classify)
}

fn classify(error: webpki::Error) -> CertificateError {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotYetValid,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        // webpki 0.103 reports only the *Context forms of these.
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertificateError::UnsupportedSignatureAlgorithm
        }
        E::RequiredEkuNotFoundContext(_) => CertificateError::KeyUsageNotIke,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::Malformed,
        other => CertificateError::PathRejected(format!("{other:?}")),
    }
}
