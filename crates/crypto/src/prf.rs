//! IKEv2 pseudorandom functions (IANA "IKEv2 Transform Type 2") and prf+
//! (RFC 7296 §2.13), over aws-lc's HMAC.

use aws_lc_rs::{digest, hmac};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;

/// Largest PRF output of any PRF this crate offers (HMAC-SHA2-512).
pub const MAX_PRF_OUTPUT_LEN: usize = digest::MAX_OUTPUT_LEN;

/// prf+ counts its blocks in one octet, so it yields at most 255 blocks
/// (RFC 7296 §2.13).
pub const PRF_PLUS_MAX_BLOCKS: usize = 255;

/// IKEv2 PRF transforms (IKEv2 Transform Type 2).
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrfId {
    /// `PRF_HMAC_SHA1` (RFC 2104).
    HmacSha1 = 2,
    /// `PRF_HMAC_SHA2_256` (RFC 4868).
    HmacSha2_256 = 5,
    /// `PRF_HMAC_SHA2_384` (RFC 4868).
    HmacSha2_384 = 6,
    /// `PRF_HMAC_SHA2_512` (RFC 4868).
    HmacSha2_512 = 7,
}

impl PrfId {
    /// Length in bytes of one PRF output block.
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha2_256 => 32,
            Self::HmacSha2_384 => 48,
            Self::HmacSha2_512 => 64,
        }
    }

    /// The PRF's preferred key length in bytes: the hash output length for
    /// the HMAC PRFs (RFC 2104 §3, RFC 4868 §2.1.2). RFC 7296 §2.14 makes
    /// SK_d, SK_pi and SK_pr this long.
    pub fn preferred_key_len(self) -> usize {
        self.output_len()
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::HmacSha2_256 => hmac::HMAC_SHA256,
            Self::HmacSha2_384 => hmac::HMAC_SHA384,
            Self::HmacSha2_512 => hmac::HMAC_SHA512,
        }
    }
}

impl TryFrom<u16> for PrfId {
    type Error = CryptoError;

    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Ok(match id {
            2 => Self::HmacSha1,
            5 => Self::HmacSha2_256,
            6 => Self::HmacSha2_384,
            7 => Self::HmacSha2_512,
            other => return Err(CryptoError::UnknownTransform(other)),
        })
    }
}

impl From<PrfId> for u16 {
    fn from(id: PrfId) -> Self {
        id as u16
    }
}

/// One PRF output block, held inline (no heap) and wiped on drop: PRF
/// outputs such as SKEYSEED are keys. `Debug` never shows the bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrfOutput {
    bytes: [u8; MAX_PRF_OUTPUT_LEN],
    len: usize,
}

impl PrfOutput {
    fn from_tag(tag: &hmac::Tag) -> Self {
        let tag = tag.as_ref();
        let mut bytes = [0u8; MAX_PRF_OUTPUT_LEN];
        let len = tag.len().min(MAX_PRF_OUTPUT_LEN);
        bytes[..len].copy_from_slice(&tag[..len]);
        Self { bytes, len }
    }

    /// Length of the output in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a PRF output is never empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for PrfOutput {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl core::fmt::Debug for PrfOutput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrfOutput")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// An IKEv2 PRF. Stateless: each call takes its key, as the PRF's key in
/// IKEv2 changes with every use (nonces, SKEYSEED, SK_d, SK_p*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prf {
    id: PrfId,
}

impl Prf {
    /// The PRF `id`.
    pub fn new(id: PrfId) -> Self {
        Self { id }
    }

    /// The PRF with IANA transform id `id`.
    pub fn from_iana(id: u16) -> Result<Self, CryptoError> {
        PrfId::try_from(id).map(Self::new)
    }

    /// The transform id.
    pub fn id(&self) -> PrfId {
        self.id
    }

    /// Length in bytes of one output block.
    pub fn output_len(&self) -> usize {
        self.id.output_len()
    }

    /// Preferred key length in bytes (see [`PrfId::preferred_key_len`]).
    pub fn preferred_key_len(&self) -> usize {
        self.id.preferred_key_len()
    }

    /// The largest output prf+ can produce: 255 blocks.
    pub fn prf_plus_max_len(&self) -> usize {
        PRF_PLUS_MAX_BLOCKS * self.output_len()
    }

    /// `prf(key, data)`. HMAC takes keys of any length (RFC 2104 §2), as
    /// IKEv2 needs for `prf(Ni | Nr, g^ir)`.
    pub fn prf(&self, key: &[u8], data: &[u8]) -> PrfOutput {
        self.prf_parts(key, &[data])
    }

    /// `prf(key, parts[0] | parts[1] | ...)` without concatenating the parts.
    pub fn prf_parts(&self, key: &[u8], parts: &[&[u8]]) -> PrfOutput {
        let key = hmac::Key::new(self.id.algorithm(), key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part);
        }
        PrfOutput::from_tag(&ctx.sign())
    }

    /// Fills `out` with the first `out.len()` bytes of
    /// `prf+(key, seed[0] | seed[1] | ...)` (RFC 7296 §2.13):
    ///
    /// ```text
    /// prf+ (K,S) = T1 | T2 | T3 | ...
    /// T1 = prf (K, S | 0x01)
    /// T2 = prf (K, T1 | S | 0x02)
    /// ```
    ///
    /// Fails with [`CryptoError::PrfPlusTooLong`] when more than 255 blocks
    /// would be needed, leaving `out` untouched.
    pub fn prf_plus_into(
        &self,
        key: &[u8],
        seed: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let max = self.prf_plus_max_len();
        let requested = out.len();
        if requested > max {
            return Err(CryptoError::PrfPlusTooLong { requested, max });
        }
        let key = hmac::Key::new(self.id.algorithm(), key);
        let mut previous = PrfOutput {
            bytes: [0u8; MAX_PRF_OUTPUT_LEN],
            len: 0,
        };
        for (index, chunk) in out.chunks_mut(self.output_len()).enumerate() {
            // At most 255 chunks by the check above, so the counter fits.
            let counter = u8::try_from(index + 1)
                .map_err(|_| CryptoError::PrfPlusTooLong { requested, max })?;
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(previous.as_ref());
            for part in seed {
                ctx.update(part);
            }
            ctx.update(&[counter]);
            previous = PrfOutput::from_tag(&ctx.sign());
            chunk.copy_from_slice(&previous.as_ref()[..chunk.len()]);
        }
        Ok(())
    }

    /// `prf+(key, seed...)` truncated to `len` bytes, in a buffer that is
    /// wiped on drop.
    pub fn prf_plus(
        &self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<KeyMaterial, CryptoError> {
        let max = self.prf_plus_max_len();
        if len > max {
            return Err(CryptoError::PrfPlusTooLong {
                requested: len,
                max,
            });
        }
        let mut out = KeyMaterial(vec![0u8; len]);
        self.prf_plus_into(key, seed, &mut out.0)?;
        Ok(out)
    }
}

/// Derived key material of any length, wiped on drop; `Debug` shows only the
/// length.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for KeyMaterial {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}
