//! The signature algorithms of RFC 7427 Digital Signature authentication,
//! named in the AUTH data by a DER AlgorithmIdentifier.
//!
//! We compare AlgorithmIdentifiers byte for byte against the encodings of
//! RFC 7427 Appendix A (and, for RSASSA-PSS with SHA-384 and SHA-512, the
//! same structure with their hash and salt length, as RFC 4055 defines and
//! strongSwan sends) instead of parsing ASN.1: DER has one encoding per value,
//! and a table match cannot be fooled by odd parameters.

use super::HashAlgorithm;

/// A signature algorithm usable with Digital Signature (auth method 14).
///
/// SHA-1 schemes are not offered: RFC 8247 §3.2 forbids SHA-1 with Digital
/// Signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// sha256WithRSAEncryption (RSASSA-PKCS1-v1_5), RFC 7427 A.1.2.
    RsaPkcs1Sha256,
    /// sha384WithRSAEncryption, RFC 7427 A.1.3.
    RsaPkcs1Sha384,
    /// sha512WithRSAEncryption, RFC 7427 A.1.4.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, 32-byte salt, RFC 7427 A.4.3.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1 with SHA-384, 48-byte salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1 with SHA-512, 64-byte salt.
    RsaPssSha512,
    /// ecdsa-with-SHA256, RFC 7427 A.3.2; signature is a DER ECDSA-Sig-Value.
    EcdsaSha256,
    /// ecdsa-with-SHA384, RFC 7427 A.3.3.
    EcdsaSha384,
    /// ecdsa-with-SHA512, RFC 7427 A.3.4.
    EcdsaSha512,
}

const RSA_PKCS1_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const RSA_PKCS1_SHA384: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
const RSA_PKCS1_SHA512: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];

/// RSASSA-PSS-params for SHA-2 hash `h` (id-sha256 = ...02 01, -384 = 02 02,
/// -512 = 02 03) and salt length `salt`: hashAlgorithm [0], maskGenAlgorithm
/// MGF1 with the same hash [1], saltLength [2]; trailerField left at its default.
macro_rules! rsa_pss {
    ($h:literal, $salt:literal) => {
        &[
            0x30, 0x41, // AlgorithmIdentifier
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, // id-RSASSA-PSS
            0x30, 0x34, // RSASSA-PSS-params
            0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, $h,
            0x05, 0x00, // [0] hashAlgorithm
            0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
            0x08, // [1] maskGenAlgorithm: id-mgf1
            0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, $h, 0x05,
            0x00, // with the same hash
            0xa2, 0x03, 0x02, 0x01, $salt, // [2] saltLength
        ]
    };
}

const RSA_PSS_SHA256: &[u8] = rsa_pss!(0x01, 0x20);
const RSA_PSS_SHA384: &[u8] = rsa_pss!(0x02, 0x30);
const RSA_PSS_SHA512: &[u8] = rsa_pss!(0x03, 0x40);

const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ECDSA_SHA512: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
];

impl SignatureScheme {
    /// Every scheme, in no particular order of preference.
    pub const ALL: [Self; 9] = [
        Self::RsaPkcs1Sha256,
        Self::RsaPkcs1Sha384,
        Self::RsaPkcs1Sha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
    ];

    /// The DER AlgorithmIdentifier that precedes the signature in the AUTH data.
    pub fn algorithm_identifier(self) -> &'static [u8] {
        match self {
            Self::RsaPkcs1Sha256 => RSA_PKCS1_SHA256,
            Self::RsaPkcs1Sha384 => RSA_PKCS1_SHA384,
            Self::RsaPkcs1Sha512 => RSA_PKCS1_SHA512,
            Self::RsaPssSha256 => RSA_PSS_SHA256,
            Self::RsaPssSha384 => RSA_PSS_SHA384,
            Self::RsaPssSha512 => RSA_PSS_SHA512,
            Self::EcdsaSha256 => ECDSA_SHA256,
            Self::EcdsaSha384 => ECDSA_SHA384,
            Self::EcdsaSha512 => ECDSA_SHA512,
        }
    }

    /// The scheme whose AlgorithmIdentifier is exactly `der`, if any.
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.algorithm_identifier() == der)
    }

    /// The hash the scheme signs with: what SIGNATURE_HASH_ALGORITHMS must
    /// have announced for it (RFC 7427 §4).
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 | Self::EcdsaSha256 => HashAlgorithm::Sha256,
            Self::RsaPkcs1Sha384 | Self::RsaPssSha384 | Self::EcdsaSha384 => HashAlgorithm::Sha384,
            Self::RsaPkcs1Sha512 | Self::RsaPssSha512 | Self::EcdsaSha512 => HashAlgorithm::Sha512,
        }
    }

    /// Whether the scheme takes an RSA key (else an ECDSA key).
    pub fn is_rsa(self) -> bool {
        !matches!(
            self,
            Self::EcdsaSha256 | Self::EcdsaSha384 | Self::EcdsaSha512
        )
    }
}
