//! IANA "IKEv2 Transform Type 1" (encryption) and "Type 3" (integrity) ids.
//!
//! Naming transforms by their wire ids keeps the SA layer, the IKE daemon and
//! this crate speaking about exactly the same thing.

use crate::CryptoError;

/// ESP encryption transforms (IKEv2 Transform Type 1).
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncrId {
    /// `ENCR_NULL` (RFC 2410): no confidentiality, needs an HMAC integrity.
    Null = 11,
    /// `ENCR_AES_CBC` (RFC 3602).
    AesCbc = 12,
    /// `ENCR_AES_GCM_16` (RFC 4106): AES-GCM with a 16-byte ICV.
    AesGcm16 = 20,
    /// `ENCR_NULL_AUTH_AES_GMAC` (RFC 4543): GMAC authentication only.
    NullAuthAesGmac = 21,
    /// `ENCR_CHACHA20_POLY1305` (RFC 7634).
    ChaCha20Poly1305 = 28,
}

impl TryFrom<u16> for EncrId {
    type Error = CryptoError;

    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Ok(match id {
            11 => Self::Null,
            12 => Self::AesCbc,
            20 => Self::AesGcm16,
            21 => Self::NullAuthAesGmac,
            28 => Self::ChaCha20Poly1305,
            other => return Err(CryptoError::UnknownTransform(other)),
        })
    }
}

impl From<EncrId> for u16 {
    fn from(id: EncrId) -> Self {
        id as u16
    }
}

/// Integrity transforms (IKEv2 Transform Type 3).
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegId {
    /// `NONE`: only valid with an AEAD, or with AES-CBC when the SA layer
    /// explicitly allows confidentiality-only ESP.
    None = 0,
    /// `AUTH_HMAC_SHA1_96` (RFC 2404).
    HmacSha1_96 = 2,
    /// `AUTH_AES_128_GMAC` (RFC 4543), AH only.
    AesGmac128 = 9,
    /// `AUTH_AES_256_GMAC` (RFC 4543), AH only.
    AesGmac256 = 11,
    /// `AUTH_HMAC_SHA2_256_128` (RFC 4868).
    HmacSha2_256_128 = 12,
    /// `AUTH_HMAC_SHA2_384_192` (RFC 4868).
    HmacSha2_384_192 = 13,
    /// `AUTH_HMAC_SHA2_512_256` (RFC 4868).
    HmacSha2_512_256 = 14,
}

impl IntegId {
    /// Whether this is one of the truncated-HMAC transforms.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            Self::HmacSha1_96
                | Self::HmacSha2_256_128
                | Self::HmacSha2_384_192
                | Self::HmacSha2_512_256
        )
    }

    /// Whether this is one of the AH-only AES-GMAC transforms.
    pub fn is_gmac(self) -> bool {
        matches!(self, Self::AesGmac128 | Self::AesGmac256)
    }

    /// Key length in bytes. HMAC keys are as long as the hash output
    /// (RFC 2404, RFC 4868 §2.1.1); GMAC keys include the 4-byte salt.
    pub fn key_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::HmacSha1_96 => 20,
            Self::AesGmac128 => 16 + 4,
            Self::AesGmac256 => 32 + 4,
            Self::HmacSha2_256_128 => 32,
            Self::HmacSha2_384_192 => 48,
            Self::HmacSha2_512_256 => 64,
        }
    }

    /// Length in bytes of the (truncated) authenticator this transform puts on
    /// the wire. For GMAC this excludes the 8-byte IV that travels with it.
    pub fn icv_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::HmacSha1_96 => 12,
            Self::AesGmac128 | Self::AesGmac256 => 16,
            Self::HmacSha2_256_128 => 16,
            Self::HmacSha2_384_192 => 24,
            Self::HmacSha2_512_256 => 32,
        }
    }
}

impl TryFrom<u16> for IntegId {
    type Error = CryptoError;

    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Ok(match id {
            0 => Self::None,
            2 => Self::HmacSha1_96,
            9 => Self::AesGmac128,
            11 => Self::AesGmac256,
            12 => Self::HmacSha2_256_128,
            13 => Self::HmacSha2_384_192,
            14 => Self::HmacSha2_512_256,
            other => return Err(CryptoError::UnknownTransform(other)),
        })
    }
}

impl From<IntegId> for u16 {
    fn from(id: IntegId) -> Self {
        id as u16
    }
}
