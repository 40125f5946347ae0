//! IKEv2 AUTH payload signatures (RFC 7296 §2.15, §3.8): making and checking
//! the Authentication Data for the signature methods.
//!
//! | method | value | AUTH data |
//! |---|---|---|
//! | RSA Digital Signature | 1 | RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8) |
//! | ECDSA with SHA-256 on P-256 | 9 | `r \| s`, each as long as the curve's order (RFC 4754 §7) |
//! | ECDSA with SHA-384 on P-384 | 10 | idem |
//! | ECDSA with SHA-512 on P-521 | 11 | idem |
//! | Digital Signature | 14 | one octet length, DER AlgorithmIdentifier, signature; ECDSA signatures as DER ECDSA-Sig-Value (RFC 7427 §3) |
//!
//! What is signed (the octets of RFC 7296 §2.15) is the caller's business.
//! Public keys are given as DER SubjectPublicKeyInfo, as they come out of a
//! certificate. Private keys are PKCS#8 (DER or PEM) and live only inside
//! aws-lc, cleansed when freed.

mod hash_algorithms;
// Signing with SHA-1 for method 1 is the only part aws-lc-rs does not offer.
#[allow(unsafe_code)]
mod rsa_sha1;
mod scheme;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair, ParsedPublicKey, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroize;

pub use hash_algorithms::{
    HashAlgorithm, SIGNATURE_HASH_ALGORITHMS, choose_hash_algorithm, encode_hash_algorithms,
    parse_hash_algorithms,
};
pub use scheme::SignatureScheme;

use rsa_sha1::RsaSha1Signer;

/// Why a key could not be used or a signature was refused. Carries no key
/// material and no signed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// An authentication method that is not a signature method handled here.
    #[error("unsupported IKEv2 authentication method {0}")]
    UnsupportedMethod(u8),
    /// The private key is not PKCS#8 RSA or ECDSA P-256/P-384/P-521.
    #[error("private key rejected")]
    KeyRejected,
    /// The key (private, or the peer's SubjectPublicKeyInfo) is malformed or
    /// not of the kind the method or signature scheme needs.
    #[error("the key does not fit the authentication method or signature scheme")]
    KeyMismatch,
    /// Digital Signature (14) was asked for without a signature scheme.
    #[error("Digital Signature authentication needs a signature scheme")]
    MissingScheme,
    /// A signature scheme was given with a method that names its own algorithm.
    #[error("a signature scheme is only meaningful with Digital Signature authentication")]
    UnexpectedScheme,
    /// The key can verify this scheme but this crate cannot sign with it
    /// (an ECDSA hash other than the curve's own).
    #[error("signing with this scheme and key is not supported")]
    UnsupportedScheme,
    /// Digital Signature AUTH data too short for its AlgorithmIdentifier
    /// length, or with no signature after it.
    #[error("malformed AUTH data")]
    MalformedAuthData,
    /// An AlgorithmIdentifier that is none of [`SignatureScheme`]'s.
    #[error("unknown signature algorithm identifier")]
    UnknownAlgorithm,
    /// SIGNATURE_HASH_ALGORITHMS data of odd length.
    #[error("malformed SIGNATURE_HASH_ALGORITHMS data")]
    MalformedHashAlgorithms,
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// aws-lc reported an internal failure.
    #[error("cryptographic library failure")]
    Library,
}

/// IKEv2 Authentication Methods that sign (IANA "IKEv2 Authentication Method").
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// RSA Digital Signature (RFC 7296): PKCS#1 v1.5 with SHA-1.
    RsaDigitalSignature = 1,
    /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
    EcdsaSha256P256 = 9,
    /// ECDSA with SHA-384 on the P-384 curve (RFC 4754).
    EcdsaSha384P384 = 10,
    /// ECDSA with SHA-512 on the P-521 curve (RFC 4754).
    EcdsaSha512P521 = 11,
    /// Digital Signature (RFC 7427).
    DigitalSignature = 14,
}

impl TryFrom<u8> for AuthMethod {
    type Error = SignatureError;

    fn try_from(method: u8) -> Result<Self, Self::Error> {
        Ok(match method {
            1 => Self::RsaDigitalSignature,
            9 => Self::EcdsaSha256P256,
            10 => Self::EcdsaSha384P384,
            11 => Self::EcdsaSha512P521,
            14 => Self::DigitalSignature,
            other => return Err(SignatureError::UnsupportedMethod(other)),
        })
    }
}

impl From<AuthMethod> for u8 {
    fn from(method: AuthMethod) -> Self {
        method as u8
    }
}

/// The curves of the ECDSA keys this module handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdsaCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

impl EcdsaCurve {
    /// The RFC 4754 method for this curve.
    pub fn auth_method(self) -> AuthMethod {
        match self {
            Self::P256 => AuthMethod::EcdsaSha256P256,
            Self::P384 => AuthMethod::EcdsaSha384P384,
            Self::P521 => AuthMethod::EcdsaSha512P521,
        }
    }

    /// The RFC 7427 scheme with the curve's own hash.
    pub fn scheme(self) -> SignatureScheme {
        match self {
            Self::P256 => SignatureScheme::EcdsaSha256,
            Self::P384 => SignatureScheme::EcdsaSha384,
            Self::P521 => SignatureScheme::EcdsaSha512,
        }
    }

    /// Signing algorithms: (r | s for RFC 4754, DER for RFC 7427).
    fn signing(self) -> [&'static lc::EcdsaSigningAlgorithm; 2] {
        match self {
            Self::P256 => [
                &lc::ECDSA_P256_SHA256_FIXED_SIGNING,
                &lc::ECDSA_P256_SHA256_ASN1_SIGNING,
            ],
            Self::P384 => [
                &lc::ECDSA_P384_SHA384_FIXED_SIGNING,
                &lc::ECDSA_P384_SHA384_ASN1_SIGNING,
            ],
            Self::P521 => [
                &lc::ECDSA_P521_SHA512_FIXED_SIGNING,
                &lc::ECDSA_P521_SHA512_ASN1_SIGNING,
            ],
        }
    }
}

/// The private key of an AUTH signer.
///
/// `Debug` shows the key type only.
pub struct SigningKey {
    key: PrivateKey,
}

enum PrivateKey {
    Rsa {
        pair: RsaKeyPair,
        // Method 1 signs with SHA-1, which aws-lc-rs's `RsaKeyPair` will not.
        sha1: RsaSha1Signer,
    },
    Ecdsa {
        curve: EcdsaCurve,
        fixed: EcdsaKeyPair,
        der: EcdsaKeyPair,
    },
}

impl SigningKey {
    /// An RSA or ECDSA (P-256, P-384, P-521) key from a PKCS#8 DER document.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, SignatureError> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(pkcs8) {
            let sha1 = RsaSha1Signer::from_pkcs8(pkcs8)?;
            return Ok(Self {
                key: PrivateKey::Rsa { pair, sha1 },
            });
        }
        for curve in [EcdsaCurve::P256, EcdsaCurve::P384, EcdsaCurve::P521] {
            let [fixed_alg, der_alg] = curve.signing();
            if let Ok(fixed) = EcdsaKeyPair::from_pkcs8(fixed_alg, pkcs8) {
                let der = EcdsaKeyPair::from_pkcs8(der_alg, pkcs8)
                    .map_err(|_| SignatureError::Library)?;
                return Ok(Self {
                    key: PrivateKey::Ecdsa { curve, fixed, der },
                });
            }
        }
        Err(SignatureError::KeyRejected)
    }

    /// The same from PEM ("-----BEGIN PRIVATE KEY-----", as `openssl genpkey`
    /// writes).
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, SignatureError> {
        let mut der =
            PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|_| SignatureError::KeyRejected)?;
        let key = Self::from_pkcs8_der(der.secret_pkcs8_der());
        // The decoded key is ours to wipe; aws-lc holds its own copy.
        der.zeroize();
        key
    }

    /// The curve of an ECDSA key; `None` for RSA.
    pub fn ecdsa_curve(&self) -> Option<EcdsaCurve> {
        match &self.key {
            PrivateKey::Rsa { .. } => None,
            PrivateKey::Ecdsa { curve, .. } => Some(*curve),
        }
    }

    /// The public key as DER SubjectPublicKeyInfo, as a certificate for it
    /// carries and [`verify`] takes.
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, SignatureError> {
        use aws_lc_rs::encoding::AsDer;
        let der = match &self.key {
            PrivateKey::Rsa { pair, .. } => pair.public_key().as_der(),
            PrivateKey::Ecdsa { fixed, .. } => fixed.public_key().as_der(),
        };
        der.map(|d| d.as_ref().to_vec())
            .map_err(|_| SignatureError::Library)
    }

    /// The Authentication Data of an AUTH payload with `method` over
    /// `octets`. `scheme` is required with [`AuthMethod::DigitalSignature`]
    /// and refused with the other methods, which fix their own algorithm.
    pub fn sign(
        &self,
        method: AuthMethod,
        scheme: Option<SignatureScheme>,
        octets: &[u8],
    ) -> Result<Vec<u8>, SignatureError> {
        match (method, scheme) {
            (AuthMethod::DigitalSignature, None) => Err(SignatureError::MissingScheme),
            (AuthMethod::DigitalSignature, Some(scheme)) => {
                let signature = self.sign_scheme(scheme, octets)?;
                let id = scheme.algorithm_identifier();
                let id_len = u8::try_from(id.len()).map_err(|_| SignatureError::Library)?;
                let mut auth = Vec::with_capacity(1 + id.len() + signature.len());
                auth.push(id_len);
                auth.extend_from_slice(id);
                auth.extend_from_slice(&signature);
                Ok(auth)
            }
            (_, Some(_)) => Err(SignatureError::UnexpectedScheme),
            (AuthMethod::RsaDigitalSignature, None) => match &self.key {
                PrivateKey::Rsa { sha1, .. } => sha1.sign(octets),
                PrivateKey::Ecdsa { .. } => Err(SignatureError::KeyMismatch),
            },
            (ecdsa_method, None) => match &self.key {
                PrivateKey::Ecdsa { curve, fixed, .. } if curve.auth_method() == ecdsa_method => {
                    let signature = fixed
                        .sign(&SystemRandom::new(), octets)
                        .map_err(|_| SignatureError::Library)?;
                    Ok(signature.as_ref().to_vec())
                }
                _ => Err(SignatureError::KeyMismatch),
            },
        }
    }

    fn sign_scheme(
        &self,
        scheme: SignatureScheme,
        octets: &[u8],
    ) -> Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        match &self.key {
            PrivateKey::Rsa { pair, .. } => {
                let encoding: &'static dyn lc::RsaEncoding = match scheme {
                    SignatureScheme::RsaPkcs1Sha256 => &lc::RSA_PKCS1_SHA256,
                    SignatureScheme::RsaPkcs1Sha384 => &lc::RSA_PKCS1_SHA384,
                    SignatureScheme::RsaPkcs1Sha512 => &lc::RSA_PKCS1_SHA512,
                    // aws-lc-rs uses a salt as long as the hash and MGF1 with
                    // the same hash: what the AlgorithmIdentifiers say.
                    SignatureScheme::RsaPssSha256 => &lc::RSA_PSS_SHA256,
                    SignatureScheme::RsaPssSha384 => &lc::RSA_PSS_SHA384,
                    SignatureScheme::RsaPssSha512 => &lc::RSA_PSS_SHA512,
                    SignatureScheme::EcdsaSha256
                    | SignatureScheme::EcdsaSha384
                    | SignatureScheme::EcdsaSha512 => return Err(SignatureError::KeyMismatch),
                };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(encoding, &rng, octets, &mut signature)
                    .map_err(|_| SignatureError::Library)?;
                Ok(signature)
            }
            PrivateKey::Ecdsa { curve, der, .. } => {
                if scheme.is_rsa() {
                    return Err(SignatureError::KeyMismatch);
                }
                if scheme != curve.scheme() {
                    return Err(SignatureError::UnsupportedScheme);
                }
                let signature = der
                    .sign(&rng, octets)
                    .map_err(|_| SignatureError::Library)?;
                Ok(signature.as_ref().to_vec())
            }
        }
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match &self.key {
            PrivateKey::Rsa { .. } => "RSA".to_string(),
            PrivateKey::Ecdsa { curve, .. } => format!("ECDSA {curve:?}"),
        };
        f.debug_struct("SigningKey")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// The scheme and signature of Digital Signature (14) Authentication Data:
/// a one-octet length, that many octets of AlgorithmIdentifier, then the
/// signature (RFC 7427 §3).
pub fn parse_digital_signature(
    auth_data: &[u8],
) -> Result<(SignatureScheme, &[u8]), SignatureError> {
    let (&id_len, rest) = auth_data
        .split_first()
        .ok_or(SignatureError::MalformedAuthData)?;
    let (id, signature) = rest
        .split_at_checked(usize::from(id_len))
        .ok_or(SignatureError::MalformedAuthData)?;
    if signature.is_empty() {
        return Err(SignatureError::MalformedAuthData);
    }
    let scheme =
        SignatureScheme::from_algorithm_identifier(id).ok_or(SignatureError::UnknownAlgorithm)?;
    Ok((scheme, signature))
}

/// Checks the Authentication Data `auth_data` of an AUTH payload with
/// `method` over `octets`, against the peer's public key
/// `public_key_spki_der` (DER SubjectPublicKeyInfo, e.g. from its certificate).
///
/// A key of the wrong type or curve for the method or the RFC 7427 scheme is
/// [`SignatureError::KeyMismatch`]; RSA keys must be 2048 to 8192 bits.
pub fn verify(
    public_key_spki_der: &[u8],
    method: AuthMethod,
    auth_data: &[u8],
    octets: &[u8],
) -> Result<(), SignatureError> {
    let (candidates, signature): (&[&'static dyn lc::VerificationAlgorithm], &[u8]) = match method {
        AuthMethod::RsaDigitalSignature => (
            &[&lc::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY],
            auth_data,
        ),
        AuthMethod::EcdsaSha256P256 => (&[&lc::ECDSA_P256_SHA256_FIXED], auth_data),
        AuthMethod::EcdsaSha384P384 => (&[&lc::ECDSA_P384_SHA384_FIXED], auth_data),
        AuthMethod::EcdsaSha512P521 => (&[&lc::ECDSA_P521_SHA512_FIXED], auth_data),
        AuthMethod::DigitalSignature => {
            let (scheme, signature) = parse_digital_signature(auth_data)?;
            (verification_algorithms(scheme), signature)
        }
    };
    // An ECDSA scheme of RFC 7427 does not say the curve: the key does. Each
    // candidate is for one key type and curve, and parsing the key under the
    // wrong one fails.
    let key = candidates
        .iter()
        .find_map(|&alg| ParsedPublicKey::new(alg, public_key_spki_der).ok())
        .ok_or(SignatureError::KeyMismatch)?;
    key.verify_sig(octets, signature)
        .map_err(|_| SignatureError::BadSignature)
}

/// The aws-lc-rs algorithms that can check `scheme`, one per key type/curve.
fn verification_algorithms(
    scheme: SignatureScheme,
) -> &'static [&'static dyn lc::VerificationAlgorithm] {
    match scheme {
        SignatureScheme::RsaPkcs1Sha256 => &[&lc::RSA_PKCS1_2048_8192_SHA256],
        SignatureScheme::RsaPkcs1Sha384 => &[&lc::RSA_PKCS1_2048_8192_SHA384],
        SignatureScheme::RsaPkcs1Sha512 => &[&lc::RSA_PKCS1_2048_8192_SHA512],
        SignatureScheme::RsaPssSha256 => &[&lc::RSA_PSS_2048_8192_SHA256],
        SignatureScheme::RsaPssSha384 => &[&lc::RSA_PSS_2048_8192_SHA384],
        SignatureScheme::RsaPssSha512 => &[&lc::RSA_PSS_2048_8192_SHA512],
        SignatureScheme::EcdsaSha256 => &[
            &lc::ECDSA_P256_SHA256_ASN1,
            &lc::ECDSA_P384_SHA256_ASN1,
            &lc::ECDSA_P521_SHA256_ASN1,
        ],
        SignatureScheme::EcdsaSha384 => &[
            &lc::ECDSA_P256_SHA384_ASN1,
            &lc::ECDSA_P384_SHA384_ASN1,
            &lc::ECDSA_P521_SHA384_ASN1,
        ],
        SignatureScheme::EcdsaSha512 => &[
            &lc::ECDSA_P256_SHA512_ASN1,
            &lc::ECDSA_P384_SHA512_ASN1,
            &lc::ECDSA_P521_SHA512_ASN1,
        ],
    }
}
