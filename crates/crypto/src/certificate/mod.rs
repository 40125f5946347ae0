//! X.509 certificates for IKEv2 (RFC 7296 §3.6, §3.7; RFC 4945): what the
//! keying module needs from a peer's certificate, whether its chain leads to
//! a configured trust anchor, whether it vouches for the peer's IKE
//! identity, and the authority hashes of CERTREQ payloads.
//!
//! Parsing is x509-parser's; path validation is rustls-webpki's over
//! aws-lc-rs. Nothing here reads the clock: validation takes the time.
//!
//! Not done: revocation (CRLs, OCSP), hash-and-URL certificate encodings,
//! raw public keys, and wildcard or DN-pattern identity matching.

mod certreq;
mod identity;
mod path;

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use certreq::{CERTREQ_HASH_LEN, certreq_authority_hash};
pub use identity::IkeIdentity;
pub use path::{TrustAnchors, validate_path};

/// Why a certificate was refused. Path validation failures have one variant
/// per cause an operator acts on differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a DER X.509 certificate (or trailing bytes after one).
    #[error("malformed certificate")]
    Malformed,
    /// The validation time is after a certificate's notAfter.
    #[error("certificate expired")]
    Expired,
    /// The validation time is before a certificate's notBefore.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// No chain from the certificate to a configured trust anchor.
    #[error("certificate issuer unknown: no path to a trust anchor")]
    UnknownIssuer,
    /// A signature in the chain does not verify with its issuer's key.
    #[error("bad signature in the certificate chain")]
    BadSignature,
    /// A signature algorithm in the chain that is not supported.
    #[error("unsupported signature algorithm in the certificate chain")]
    UnsupportedSignatureAlgorithm,
    /// A certificate has an extended key usage extension without
    /// id-kp-ipsecIKE (RFC 4945 §5.1.3.12).
    #[error("certificate's extended key usage does not allow IKE")]
    KeyUsageNotIke,
    /// Any other reason the path was refused (basic constraints, path
    /// length, name constraints, unsupported critical extension, ...), as
    /// rustls-webpki describes it.
    #[error("certificate path rejected: {0}")]
    PathRejected(String),
    /// An IKE identification payload of a type certificates cannot vouch for
    /// here, or with data of the wrong length for its type.
    #[error("unsupported or malformed IKE identity (ID type {0})")]
    UnsupportedIdentity(u8),
}

/// A subjectAltName entry an IKE identity can match (RFC 4945 §5.1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// iPAddress, IPv4 or IPv6.
    Ip(IpAddr),
    /// dNSName.
    Dns(String),
    /// rfc822Name.
    Rfc822(String),
}

/// A parsed DER certificate: the fields IKE uses, copied out at parse time.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: String,
    subject_alt_names: Vec<SubjectAltName>,
    spki_der: Vec<u8>,
}

impl Certificate {
    /// Parses a DER certificate (the CERT payload's data for encoding 4,
    /// "X.509 Certificate - Signature").
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| CertificateError::Malformed)?;
        if !rest.is_empty() {
            return Err(CertificateError::Malformed);
        }
        let mut subject_alt_names = Vec::new();
        // A malformed or duplicated SAN extension makes the certificate unusable
        // for identity matching, so it is refused rather than ignored.
        let sans = cert
            .subject_alternative_name()
            .map_err(|_| CertificateError::Malformed)?;
        for name in sans.iter().flat_map(|ext| ext.value.general_names.iter()) {
            let san = match name {
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        SubjectAltName::Ip(IpAddr::from(v4))
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        SubjectAltName::Ip(IpAddr::from(v6))
                    } else {
                        // Address/mask pairs belong in name constraints only.
                        continue;
                    }
                }
                GeneralName::DNSName(name) => SubjectAltName::Dns((*name).to_owned()),
                GeneralName::RFC822Name(name) => SubjectAltName::Rfc822((*name).to_owned()),
                _ => continue,
            };
            subject_alt_names.push(san);
        }
        Ok(Self {
            der: der.to_vec(),
            subject_der: cert.subject().as_raw().to_vec(),
            subject: cert.subject().to_string(),
            subject_alt_names,
            spki_der: cert.public_key().raw.to_vec(),
        })
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject Name's DER encoding (a SEQUENCE): what ID_DER_ASN1_DN
    /// carries.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The subject as text ("CN=..., O=..."), for logs and events.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subjectAltName entries IKE identities can match, in order.
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.subject_alt_names
    }

    /// The SubjectPublicKeyInfo's DER encoding: the key that checks the
    /// peer's AUTH payload ([`crate::signature::verify`]).
    pub fn subject_public_key_info(&self) -> &[u8] {
        &self.spki_der
    }

    /// Whether this certificate vouches for `identity` (see [`IkeIdentity`]).
    pub fn matches_identity(&self, identity: &IkeIdentity) -> bool {
        identity::matches(self, identity)
    }
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("subject_alt_names", &self.subject_alt_names)
            .finish_non_exhaustive()
    }
}
