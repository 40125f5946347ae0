//! IKEv2 key exchange methods (IANA "IKEv2 Transform Type 4") over aws-lc's
//! ECDH, X25519 and finite-field DH: the KE payload's public value and the
//! shared secret g^ir.
//!
//! Encodings on the wire:
//! - MODP groups 14, 15, 16 (RFC 3526): the public value g^x mod p and the
//!   shared secret are big-endian and left-padded with zeros to the length
//!   of p (RFC 7296 §3.4 and §2.14). The `modp` submodule says how the exponent is
//!   chosen and how peer values are checked.
//! - ECP groups (RFC 5903 §7): the public value is `x | y`, each coordinate
//!   a fixed-length big-endian integer, *without* the SEC1 `0x04` prefix; the
//!   shared secret is the x coordinate of the shared point.
//! - Curve25519 (RFC 8031 §2): the 32-byte X25519 public value; the shared
//!   secret is the 32-byte X25519 output, which must not be all zeros
//!   (RFC 8031 §2.1).
//! - ML-KEM-768 (method 36, draft-ietf-ipsecme-ikev2-mlkem), a KEM for
//!   RFC 9370's additional key exchanges: the initiator sends the
//!   encapsulation key, the responder the ciphertext ([`KeyExchange::respond`]);
//!   the `ml_kem` submodule has the lengths.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};

use crate::CryptoError;
use crate::prf::KeyMaterial;

// Calls aws-lc's C API directly: aws-lc-rs has no finite-field Diffie-Hellman.
#[allow(unsafe_code)]
mod modp;

use modp::{ModpGroup, ModpKey};

pub mod ml_kem;

use ml_kem::MlKemInitiator;

/// Key exchange methods (IKEv2 Transform Type 4).
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeId {
    /// 2048-bit MODP group (RFC 3526).
    Modp2048 = 14,
    /// 3072-bit MODP group (RFC 3526).
    Modp3072 = 15,
    /// 4096-bit MODP group (RFC 3526).
    Modp4096 = 16,
    /// 256-bit random ECP group (RFC 5903), NIST P-256.
    Ecp256 = 19,
    /// 384-bit random ECP group (RFC 5903), NIST P-384.
    Ecp384 = 20,
    /// 521-bit random ECP group (RFC 5903), NIST P-521.
    Ecp521 = 21,
    /// Curve25519 (RFC 8031).
    Curve25519 = 31,
    /// ML-KEM-768 (FIPS 203; draft-ietf-ipsecme-ikev2-mlkem), a KEM: only
    /// as an additional key exchange (RFC 9370) here.
    MlKem768 = 36,
}

/// How each method is computed: aws-lc-rs agreement, or our DH wrapper.
enum Method {
    Agreement(&'static agreement::Algorithm),
    Modp(ModpGroup),
    /// A key encapsulation mechanism (ML-KEM-768).
    Kem,
}

impl KeId {
    /// Length in bytes of the KE payload's public value (for a KEM, the
    /// initiator's encapsulation key; [`KeId::responder_public_len`] is
    /// the responder's ciphertext).
    pub fn public_len(self) -> usize {
        match self {
            Self::Modp2048 | Self::Modp3072 | Self::Modp4096 => self.shared_secret_len(),
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            // RFC 5903 §7: each coordinate is ceil(521 / 8) = 66 octets.
            Self::Ecp521 => 132,
            Self::Curve25519 => 32,
            Self::MlKem768 => ml_kem::ENCAPSULATION_KEY_LEN,
        }
    }

    /// Length in bytes of the responder's KE data: the same as
    /// [`KeId::public_len`] except for a KEM, whose responder returns a
    /// ciphertext.
    pub fn responder_public_len(self) -> usize {
        match self {
            Self::MlKem768 => ml_kem::CIPHERTEXT_LEN,
            other => other.public_len(),
        }
    }

    /// Whether this is a key encapsulation mechanism (asymmetric roles).
    pub fn is_kem(self) -> bool {
        matches!(self.method(), Method::Kem)
    }

    /// Length in bytes of the shared secret g^ir.
    pub fn shared_secret_len(self) -> usize {
        match self.method() {
            Method::Modp(group) => group.prime_len(),
            Method::Kem => ml_kem::SHARED_SECRET_LEN,
            Method::Agreement(_) => match self {
                Self::Ecp384 => 48,
                Self::Ecp521 => 66,
                _ => 32,
            },
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Modp2048 => Method::Modp(ModpGroup::Modp2048),
            Self::Modp3072 => Method::Modp(ModpGroup::Modp3072),
            Self::Modp4096 => Method::Modp(ModpGroup::Modp4096),
            Self::Ecp256 => Method::Agreement(&agreement::ECDH_P256),
            Self::Ecp384 => Method::Agreement(&agreement::ECDH_P384),
            Self::Ecp521 => Method::Agreement(&agreement::ECDH_P521),
            Self::Curve25519 => Method::Agreement(&agreement::X25519),
            Self::MlKem768 => Method::Kem,
        }
    }

    fn is_ecp(self) -> bool {
        matches!(self, Self::Ecp256 | Self::Ecp384 | Self::Ecp521)
    }
}

impl TryFrom<u16> for KeId {
    type Error = CryptoError;

    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Ok(match id {
            14 => Self::Modp2048,
            15 => Self::Modp3072,
            16 => Self::Modp4096,
            19 => Self::Ecp256,
            20 => Self::Ecp384,
            21 => Self::Ecp521,
            31 => Self::Curve25519,
            36 => Self::MlKem768,
            other => return Err(CryptoError::UnknownTransform(other)),
        })
    }
}

impl From<KeId> for u16 {
    fn from(id: KeId) -> Self {
        id as u16
    }
}

/// Largest public value an aws-lc-rs agreement produces here (ECP-521 `x | y`).
const MAX_AGREEMENT_PUBLIC_LEN: usize = 132;

/// One side of a key exchange: a private key and the KE payload data that
/// goes with it.
///
/// The private key lives only inside aws-lc (an `EVP_PKEY` or a `DH`),
/// cleared and freed when this is dropped. `Debug` shows the method only.
pub struct KeyExchange {
    id: KeId,
    key: PrivatePart,
}

enum PrivatePart {
    Agreement {
        private: PrivateKey,
        public: [u8; MAX_AGREEMENT_PUBLIC_LEN],
    },
    Modp(ModpKey),
    /// A KEM initiator's decapsulation key.
    MlKem(MlKemInitiator),
    /// A KEM responder's ciphertext; the secret went to the caller of
    /// [`KeyExchange::respond`].
    Encapsulated(Vec<u8>),
}

impl KeyExchange {
    /// A fresh private key for `id` from aws-lc's RNG.
    pub fn generate(id: KeId) -> Result<Self, CryptoError> {
        match id.method() {
            Method::Agreement(alg) => {
                let private = PrivateKey::generate(alg).map_err(|_| CryptoError::Cipher)?;
                Self::from_agreement_key(id, private)
            }
            Method::Modp(group) => Ok(Self {
                id,
                key: PrivatePart::Modp(ModpKey::generate(group)?),
            }),
            Method::Kem => Ok(Self {
                id,
                key: PrivatePart::MlKem(MlKemInitiator::generate()?),
            }),
        }
    }

    /// The responder's side in one step, for every method: our KE data
    /// and the shared secret from the initiator's KE data. For a
    /// Diffie-Hellman group this is [`KeyExchange::generate`] then
    /// [`KeyExchange::shared_secret`]; for a KEM it encapsulates to the
    /// initiator's key and our KE data is the ciphertext. A bad peer value
    /// is [`CryptoError::BadKeyExchange`].
    pub fn respond(id: KeId, peer: &[u8]) -> Result<(Self, KeyMaterial), CryptoError> {
        if let Method::Kem = id.method() {
            let (ciphertext, secret) = ml_kem::encapsulate(peer)?;
            let ke = Self {
                id,
                key: PrivatePart::Encapsulated(ciphertext),
            };
            return Ok((ke, secret));
        }
        let ke = Self::generate(id)?;
        let secret = ke.shared_secret(peer)?;
        Ok((ke, secret))
    }

    /// A key exchange with a given private key: a big-endian scalar of the
    /// group's size for ECP, the 32-byte X25519 scalar for Curve25519, a
    /// big-endian exponent of 1 up to (length of p) bytes for MODP.
    ///
    /// For known-answer tests (RFC 5903 §8); never reuse a private key across
    /// exchanges in a negotiation. A key of the wrong length is
    /// [`CryptoError::BadKeyLength`]; one outside the group's range (zero,
    /// or for MODP ≥ p) is [`CryptoError::BadKeyExchange`].
    pub fn from_private_key(id: KeId, private_key: &[u8]) -> Result<Self, CryptoError> {
        let alg = match id.method() {
            Method::Agreement(alg) => alg,
            Method::Modp(group) => {
                return Ok(Self {
                    id,
                    key: PrivatePart::Modp(ModpKey::from_private_key(group, private_key)?),
                });
            }
            // aws-lc-rs offers no deterministic ML-KEM key generation.
            Method::Kem => return Err(CryptoError::BadKeyExchange),
        };
        // Private scalars are as long as the shared secret in the ECP groups
        // and Curve25519.
        let expected = id.shared_secret_len();
        if private_key.len() != expected {
            return Err(CryptoError::BadKeyLength {
                expected,
                got: private_key.len(),
            });
        }
        let private = PrivateKey::from_private_key(alg, private_key)
            .map_err(|_| CryptoError::BadKeyExchange)?;
        Self::from_agreement_key(id, private)
    }

    fn from_agreement_key(id: KeId, private: PrivateKey) -> Result<Self, CryptoError> {
        let computed = private
            .compute_public_key()
            .map_err(|_| CryptoError::Cipher)?;
        let computed = computed.as_ref();
        // ECP: aws-lc gives SEC1 uncompressed `0x04 | x | y`; IKEv2 sends `x | y`.
        let raw = if id.is_ecp() {
            match computed.split_first() {
                Some((0x04, rest)) => rest,
                _ => return Err(CryptoError::Cipher),
            }
        } else {
            computed
        };
        if raw.len() != id.public_len() {
            return Err(CryptoError::Cipher);
        }
        let mut public = [0u8; MAX_AGREEMENT_PUBLIC_LEN];
        public[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            id,
            key: PrivatePart::Agreement { private, public },
        })
    }

    /// The key exchange method.
    pub fn id(&self) -> KeId {
        self.id
    }

    /// The KE payload's Key Exchange Data for this side.
    pub fn public_value(&self) -> &[u8] {
        match &self.key {
            PrivatePart::Agreement { public, .. } => &public[..self.id.public_len()],
            PrivatePart::Modp(key) => key.public_value(),
            PrivatePart::MlKem(key) => key.public_value(),
            PrivatePart::Encapsulated(ciphertext) => ciphertext,
        }
    }

    /// g^ir from the peer's KE payload data. Fails with
    /// [`CryptoError::BadKeyExchange`] if `peer` has the wrong length, is not
    /// a point on the curve, (Curve25519) gives an all-zero secret, or
    /// (MODP) is not in 1 < y < p - 1.
    pub fn shared_secret(&self, peer: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let private = match &self.key {
            PrivatePart::Agreement { private, .. } => private,
            PrivatePart::Modp(key) => return key.shared_secret(peer),
            // KEM: `peer` is the responder's ciphertext.
            PrivatePart::MlKem(key) => return key.decapsulate(peer),
            // The responder's secret came out of `respond`; there is no
            // second one.
            PrivatePart::Encapsulated(_) => return Err(CryptoError::BadKeyExchange),
        };
        let Method::Agreement(alg) = self.id.method() else {
            return Err(CryptoError::Cipher);
        };
        if peer.len() != self.id.public_len() {
            return Err(CryptoError::BadKeyExchange);
        }
        let mut sec1 = [0u8; MAX_AGREEMENT_PUBLIC_LEN + 1];
        let encoded: &[u8] = if self.id.is_ecp() {
            sec1[0] = 0x04;
            sec1[1..=peer.len()].copy_from_slice(peer);
            &sec1[..=peer.len()]
        } else {
            peer
        };
        let peer_key = UnparsedPublicKey::new(alg, encoded);
        let expected = self.id.shared_secret_len();
        agreement::agree(private, peer_key, CryptoError::BadKeyExchange, |secret| {
            if secret.len() != expected || secret.iter().fold(0u8, |acc, &b| acc | b) == 0 {
                return Err(CryptoError::BadKeyExchange);
            }
            Ok(KeyMaterial::from_slice(secret))
        })
    }
}

impl core::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyExchange")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
