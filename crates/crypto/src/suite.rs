//! ESP transform suites: an encryption id, its key size and an integrity id.

use crate::{CryptoError, EncrId, IntegId};

/// Length of the salt that GCM, GMAC and ChaCha20-Poly1305 take from the end of
/// their encryption key material (RFC 4106 §8.1, RFC 4543 §3.2, RFC 7634 §2).
pub(crate) const SALT_LEN: usize = 4;

/// Length of the authentication tag of every AEAD this crate offers.
pub(crate) const AEAD_TAG_LEN: usize = 16;
/// The alignment RFC 4303 §2.4 asks of every suite but AES-CBC (see `EspSuite::align`).
pub(crate) const ESP_ALIGN: usize = 4;

/// One ESP cryptographic suite, as negotiated by IKEv2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspSuite {
    /// Encryption transform.
    pub encr: EncrId,
    /// Cipher key size in bits (the IKEv2 Key Length attribute): 128 or 256
    /// for the AES-based transforms, 256 for ChaCha20-Poly1305, 0 for NULL.
    pub key_bits: u16,
    /// Integrity transform; [`IntegId::None`] for the AEADs.
    pub integ: IntegId,
}

impl EspSuite {
    /// AES-128-GCM with a 16-byte ICV (RFC 4106).
    pub const AES128_GCM16: Self = Self::aead(EncrId::AesGcm16, 128);
    /// AES-256-GCM with a 16-byte ICV (RFC 4106).
    pub const AES256_GCM16: Self = Self::aead(EncrId::AesGcm16, 256);
    /// ChaCha20-Poly1305 (RFC 7634).
    pub const CHACHA20_POLY1305: Self = Self::aead(EncrId::ChaCha20Poly1305, 256);
    /// `ENCR_NULL_AUTH_AES_GMAC` with a 128-bit key (RFC 4543): integrity only.
    pub const AES128_GMAC: Self = Self::aead(EncrId::NullAuthAesGmac, 128);
    /// `ENCR_NULL_AUTH_AES_GMAC` with a 256-bit key (RFC 4543): integrity only.
    pub const AES256_GMAC: Self = Self::aead(EncrId::NullAuthAesGmac, 256);
    /// AES-128-CBC with HMAC-SHA1-96.
    pub const AES128_CBC_SHA1_96: Self = Self::cbc(128, IntegId::HmacSha1_96);
    /// AES-128-CBC with HMAC-SHA2-256-128.
    pub const AES128_CBC_SHA256_128: Self = Self::cbc(128, IntegId::HmacSha2_256_128);
    /// AES-256-CBC with HMAC-SHA2-256-128.
    pub const AES256_CBC_SHA256_128: Self = Self::cbc(256, IntegId::HmacSha2_256_128);
    /// AES-256-CBC with HMAC-SHA2-384-192.
    pub const AES256_CBC_SHA384_192: Self = Self::cbc(256, IntegId::HmacSha2_384_192);
    /// AES-256-CBC with HMAC-SHA2-512-256.
    pub const AES256_CBC_SHA512_256: Self = Self::cbc(256, IntegId::HmacSha2_512_256);
    /// `ENCR_NULL` with HMAC-SHA2-256-128 (RFC 2410): integrity only.
    pub const NULL_SHA256_128: Self = Self {
        encr: EncrId::Null,
        key_bits: 0,
        integ: IntegId::HmacSha2_256_128,
    };

    /// Every named suite above, for iteration (tests, configuration listings).
    pub const KNOWN: [Self; 11] = [
        Self::AES128_GCM16,
        Self::AES256_GCM16,
        Self::CHACHA20_POLY1305,
        Self::AES128_GMAC,
        Self::AES256_GMAC,
        Self::AES128_CBC_SHA1_96,
        Self::AES128_CBC_SHA256_128,
        Self::AES256_CBC_SHA256_128,
        Self::AES256_CBC_SHA384_192,
        Self::AES256_CBC_SHA512_256,
        Self::NULL_SHA256_128,
    ];

    const fn aead(encr: EncrId, key_bits: u16) -> Self {
        Self {
            encr,
            key_bits,
            integ: IntegId::None,
        }
    }

    const fn cbc(key_bits: u16, integ: IntegId) -> Self {
        Self {
            encr: EncrId::AesCbc,
            key_bits,
            integ,
        }
    }

    /// Whether the encryption transform is a combined-mode (AEAD) algorithm
    /// that computes its own ICV.
    pub fn is_aead(&self) -> bool {
        matches!(
            self.encr,
            EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305
        )
    }

    /// Checks that the combination is one this crate can run.
    ///
    /// AEADs take no separate integrity transform; NULL encryption needs an
    /// HMAC (ESP with neither confidentiality nor integrity is pointless);
    /// AES-CBC takes an HMAC or, for confidentiality-only ESP (allowed by
    /// RFC 4303, needed for the RFC 3602 vectors), none: whether to accept that
    /// is the SA layer's policy decision. The GMAC integrity ids belong to AH.
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.integ.is_gmac() {
            return Err(CryptoError::UnsupportedSuite(
                "AES-GMAC integrity ids are for AH; ESP uses ENCR_NULL_AUTH_AES_GMAC",
            ));
        }
        match self.encr {
            EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305
                if self.integ != IntegId::None =>
            {
                Err(CryptoError::UnsupportedSuite(
                    "combined-mode ciphers take no integrity transform",
                ))
            }
            EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::AesCbc
                if !matches!(self.key_bits, 128 | 256) =>
            {
                Err(CryptoError::UnsupportedSuite(
                    "AES key size must be 128 or 256 bits",
                ))
            }
            EncrId::ChaCha20Poly1305 if self.key_bits != 256 => Err(CryptoError::UnsupportedSuite(
                "ChaCha20-Poly1305 key size must be 256 bits",
            )),
            EncrId::Null if self.key_bits != 0 => Err(CryptoError::UnsupportedSuite(
                "NULL encryption takes no key",
            )),
            EncrId::Null if !self.integ.is_hmac() => Err(CryptoError::UnsupportedSuite(
                "NULL encryption needs an HMAC integrity transform",
            )),
            _ => Ok(()),
        }
    }

    /// Bytes of encryption key material, including the 4-byte salt for GCM
    /// (RFC 4106 §8.1), GMAC (RFC 4543 §3.2) and ChaCha20-Poly1305 (RFC 7634 §2).
    pub fn encr_key_len(&self) -> usize {
        let key = usize::from(self.key_bits) / 8;
        match self.encr {
            EncrId::Null => 0,
            EncrId::AesCbc => key,
            EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305 => key + SALT_LEN,
        }
    }

    /// Bytes of integrity key material: 20 for SHA1, 32/48/64 for SHA2-256/384/512, 0 for none.
    pub fn integ_key_len(&self) -> usize {
        self.integ.key_len()
    }

    /// Total key material taken from KEYMAT: the encryption key first, then the
    /// integrity key (RFC 7296 §2.17).
    pub fn keymat_len(&self) -> usize {
        self.encr_key_len() + self.integ_key_len()
    }

    /// Bytes of explicit IV on the wire: 8 for GCM, GMAC and ChaCha20-Poly1305,
    /// 16 for AES-CBC, 0 for NULL.
    pub fn iv_len(&self) -> usize {
        match self.encr {
            EncrId::Null => 0,
            EncrId::AesCbc => 16,
            EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305 => 8,
        }
    }

    /// Bytes of ICV on the wire: 16 for the AEADs, the truncated HMAC length
    /// otherwise, 0 for AES-CBC without integrity.
    pub fn icv_len(&self) -> usize {
        if self.is_aead() {
            AEAD_TAG_LEN
        } else {
            self.integ.icv_len()
        }
    }

    /// Alignment the encrypted part (payload, padding, pad length, next header)
    /// must have: the AES block for CBC, else the 4 bytes RFC 4303 §2.4 asks for.
    pub fn align(&self) -> usize {
        match self.encr {
            EncrId::AesCbc => 16,
            _ => ESP_ALIGN,
        }
    }

    /// Whether the suite hides the payload (false for NULL and GMAC).
    pub fn is_confidential(&self) -> bool {
        !matches!(self.encr, EncrId::Null | EncrId::NullAuthAesGmac)
    }

    /// strongSwan-style proposal keyword, e.g. `"aes128gcm16"`,
    /// `"chacha20poly1305"`, `"aes128gmac"`, `"aes256-sha384"`, `"null-sha256"`;
    /// `"unsupported"` for combinations [`validate`](Self::validate) rejects.
    pub fn name(&self) -> &'static str {
        use EncrId as E;
        use IntegId as I;
        match (self.encr, self.key_bits, self.integ) {
            (E::AesGcm16, 128, I::None) => "aes128gcm16",
            (E::AesGcm16, 256, I::None) => "aes256gcm16",
            (E::ChaCha20Poly1305, 256, I::None) => "chacha20poly1305",
            (E::NullAuthAesGmac, 128, I::None) => "aes128gmac",
            (E::NullAuthAesGmac, 256, I::None) => "aes256gmac",
            (E::AesCbc, 128, I::None) => "aes128",
            (E::AesCbc, 128, I::HmacSha1_96) => "aes128-sha1",
            (E::AesCbc, 128, I::HmacSha2_256_128) => "aes128-sha256",
            (E::AesCbc, 128, I::HmacSha2_384_192) => "aes128-sha384",
            (E::AesCbc, 128, I::HmacSha2_512_256) => "aes128-sha512",
            (E::AesCbc, 256, I::None) => "aes256",
            (E::AesCbc, 256, I::HmacSha1_96) => "aes256-sha1",
            (E::AesCbc, 256, I::HmacSha2_256_128) => "aes256-sha256",
            (E::AesCbc, 256, I::HmacSha2_384_192) => "aes256-sha384",
            (E::AesCbc, 256, I::HmacSha2_512_256) => "aes256-sha512",
            (E::Null, 0, I::HmacSha1_96) => "null-sha1",
            (E::Null, 0, I::HmacSha2_256_128) => "null-sha256",
            (E::Null, 0, I::HmacSha2_384_192) => "null-sha384",
            (E::Null, 0, I::HmacSha2_512_256) => "null-sha512",
            _ => "unsupported",
        }
    }
}
