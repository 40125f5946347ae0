//! IKEv2 key exchange methods (IANA "IKEv2 Transform Type 4") over aws-lc's
//! ECDH and X25519: the KE payload's public value and the shared secret g^ir.
//!
//! Encodings on the wire:
//! - ECP groups (RFC 5903 §7): the public value is `x | y`, each coordinate
//!   a fixed-length big-endian integer, *without* the SEC1 `0x04` prefix; the
//!   shared secret is the x coordinate of the shared point.
//! - Curve25519 (RFC 8031 §2): the 32-byte X25519 public value; the shared
//!   secret is the 32-byte X25519 output, which must not be all zeros
//!   (RFC 8031 §2.1).
//!
//! MODP groups (14, 15, 16, ...) are not offered: aws-lc-rs has no safe
//! finite-field Diffie-Hellman API.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};

use crate::CryptoError;
use crate::prf::KeyMaterial;

/// Key exchange methods (IKEv2 Transform Type 4).
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeId {
    /// 256-bit random ECP group (RFC 5903), NIST P-256.
    Ecp256 = 19,
    /// 384-bit random ECP group (RFC 5903), NIST P-384.
    Ecp384 = 20,
    /// Curve25519 (RFC 8031).
    Curve25519 = 31,
}

impl KeId {
    /// Length in bytes of the KE payload's public value.
    pub fn public_len(self) -> usize {
        match self {
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }

    /// Length in bytes of the shared secret g^ir.
    pub fn shared_secret_len(self) -> usize {
        match self {
            Self::Ecp256 => 32,
            Self::Ecp384 => 48,
            Self::Curve25519 => 32,
        }
    }

    fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            Self::Ecp256 => &agreement::ECDH_P256,
            Self::Ecp384 => &agreement::ECDH_P384,
            Self::Curve25519 => &agreement::X25519,
        }
    }

    fn is_ecp(self) -> bool {
        matches!(self, Self::Ecp256 | Self::Ecp384)
    }
}

impl TryFrom<u16> for KeId {
    type Error = CryptoError;

    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Ok(match id {
            19 => Self::Ecp256,
            20 => Self::Ecp384,
            31 => Self::Curve25519,
            other => return Err(CryptoError::UnknownTransform(other)),
        })
    }
}

impl From<KeId> for u16 {
    fn from(id: KeId) -> Self {
        id as u16
    }
}

/// Largest public value this module produces (ECP-384 `x | y`).
const MAX_PUBLIC_LEN: usize = 96;

/// One side of a key exchange: a private key and the KE payload data that
/// goes with it.
///
/// The private key lives only inside aws-lc's `EVP_PKEY`, freed (and, for
/// the key material, cleansed by aws-lc's `OPENSSL_free`) when this is
/// dropped. `Debug` shows the method and public value only.
pub struct KeyExchange {
    id: KeId,
    private: PrivateKey,
    public: [u8; MAX_PUBLIC_LEN],
}

impl KeyExchange {
    /// A fresh private key for `id` from aws-lc's RNG.
    pub fn generate(id: KeId) -> Result<Self, CryptoError> {
        let private = PrivateKey::generate(id.algorithm()).map_err(|_| CryptoError::Cipher)?;
        Self::from_key(id, private)
    }

    /// A key exchange with a given private key: a big-endian scalar of the
    /// group's size for ECP, the 32-byte X25519 scalar for Curve25519.
    ///
    /// For known-answer tests (RFC 5903 §8); never reuse a private key across
    /// exchanges in a negotiation. A scalar of the wrong length is
    /// [`CryptoError::BadKeyLength`]; one outside the group's range (e.g.
    /// zero) is [`CryptoError::BadKeyExchange`].
    pub fn from_private_key(id: KeId, private_key: &[u8]) -> Result<Self, CryptoError> {
        // Private scalars are as long as the shared secret in all three groups.
        let expected = id.shared_secret_len();
        if private_key.len() != expected {
            return Err(CryptoError::BadKeyLength {
                expected,
                got: private_key.len(),
            });
        }
        let private = PrivateKey::from_private_key(id.algorithm(), private_key)
            .map_err(|_| CryptoError::BadKeyExchange)?;
        Self::from_key(id, private)
    }

    fn from_key(id: KeId, private: PrivateKey) -> Result<Self, CryptoError> {
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
        let mut public = [0u8; MAX_PUBLIC_LEN];
        public[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            id,
            private,
            public,
        })
    }

    /// The key exchange method.
    pub fn id(&self) -> KeId {
        self.id
    }

    /// The KE payload's Key Exchange Data for this side.
    pub fn public_value(&self) -> &[u8] {
        &self.public[..self.id.public_len()]
    }

    /// g^ir from the peer's KE payload data. Fails with
    /// [`CryptoError::BadKeyExchange`] if `peer` has the wrong length, is not
    /// a point on the curve, or (Curve25519) gives an all-zero secret.
    pub fn shared_secret(&self, peer: &[u8]) -> Result<KeyMaterial, CryptoError> {
        if peer.len() != self.id.public_len() {
            return Err(CryptoError::BadKeyExchange);
        }
        let mut sec1 = [0u8; MAX_PUBLIC_LEN + 1];
        let encoded: &[u8] = if self.id.is_ecp() {
            sec1[0] = 0x04;
            sec1[1..=peer.len()].copy_from_slice(peer);
            &sec1[..=peer.len()]
        } else {
            peer
        };
        let peer_key = UnparsedPublicKey::new(self.id.algorithm(), encoded);
        let expected = self.id.shared_secret_len();
        agreement::agree(
            &self.private,
            peer_key,
            CryptoError::BadKeyExchange,
            |secret| {
                if secret.len() != expected || secret.iter().fold(0u8, |acc, &b| acc | b) == 0 {
                    return Err(CryptoError::BadKeyExchange);
                }
                Ok(KeyMaterial::from_slice(secret))
            },
        )
    }
}

impl core::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyExchange")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
