//! Truncated-HMAC ICVs shared by ESP (AES-CBC, NULL) and AH.

use aws_lc_rs::{constant_time, hmac};

use crate::{CryptoError, IntegId};

/// A keyed HMAC integrity transform (HMAC-SHA1-96, HMAC-SHA2-256-128,
/// HMAC-SHA2-384-192 or HMAC-SHA2-512-256).
///
/// The key lives only inside aws-lc's `HMAC_CTX` (as the precomputed inner
/// and outer pads), which aws-lc-rs releases with `HMAC_CTX_cleanup`, itself an
/// `OPENSSL_cleanse` of the whole context; no copy is kept in Rust memory.
pub struct Integrity {
    id: IntegId,
    key: hmac::Key,
}

impl Integrity {
    /// Keys `id` with `key`, which must be exactly [`IntegId::key_len`] bytes as
    /// RFC 2404 and RFC 4868 §2.1.1 require for IPsec.
    pub fn new(id: IntegId, key: &[u8]) -> Result<Self, CryptoError> {
        let expected = id.key_len();
        if id.is_hmac() && key.len() != expected {
            return Err(CryptoError::BadKeyLength {
                expected,
                got: key.len(),
            });
        }
        Self::new_any_key_len(id, key)
    }

    /// Like [`new`](Self::new) but accepts a key of any length, hashed or
    /// zero-padded as RFC 2104 §2 describes. IPsec SAs never need this; it
    /// exists for the PRF-style known-answer tests (RFC 2202, RFC 4868 §2.7.1)
    /// whose keys are not of the IPsec length.
    pub fn new_any_key_len(id: IntegId, key: &[u8]) -> Result<Self, CryptoError> {
        let algorithm = match id {
            IntegId::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            IntegId::HmacSha2_256_128 => hmac::HMAC_SHA256,
            IntegId::HmacSha2_384_192 => hmac::HMAC_SHA384,
            IntegId::HmacSha2_512_256 => hmac::HMAC_SHA512,
            IntegId::None | IntegId::AesGmac128 | IntegId::AesGmac256 => {
                return Err(CryptoError::UnsupportedSuite(
                    "not an HMAC integrity transform",
                ));
            }
        };
        Ok(Self {
            id,
            key: hmac::Key::new(algorithm, key),
        })
    }

    /// The transform id.
    pub fn id(&self) -> IntegId {
        self.id
    }

    /// Length of the truncated ICV that goes on the wire.
    pub fn icv_len(&self) -> usize {
        self.id.icv_len()
    }

    /// Length of the untruncated HMAC output.
    pub fn full_len(&self) -> usize {
        self.key.algorithm().digest_algorithm().output_len()
    }

    /// Computes the HMAC over the concatenation of `parts` and writes its
    /// leading `out.len()` bytes to `out`; pass an `out` of [`icv_len`]
    /// bytes for the ICV. Bytes of `out` beyond the full HMAC length are zeroed.
    ///
    /// `parts` lets ESN append the implicit high sequence bits after the
    /// packet (RFC 4303 §2.2.1, RFC 4302 §2.5.1) without copying the packet.
    ///
    /// [`icv_len`]: Self::icv_len
    pub fn sign(&self, parts: &[&[u8]], out: &mut [u8]) {
        let tag = self.compute(parts);
        let tag = tag.as_ref();
        let n = out.len().min(tag.len());
        let (head, tail) = out.split_at_mut(n);
        head.copy_from_slice(&tag[..n]);
        tail.fill(0);
    }

    /// Recomputes the ICV over `parts` and compares it with `icv` in constant
    /// time. False unless `icv` is exactly [`icv_len`](Self::icv_len) bytes,
    /// so a short (e.g. empty) ICV can never pass as a prefix match.
    pub fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let n = self.icv_len();
        if icv.len() != n {
            return false;
        }
        let tag = self.compute(parts);
        constant_time::verify_slices_are_equal(&tag.as_ref()[..n], icv).is_ok()
    }

    fn compute(&self, parts: &[&[u8]]) -> hmac::Tag {
        // Context::with_key copies the flat HMAC_CTX (no heap), so this is
        // allocation-free per packet.
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(part);
        }
        ctx.sign()
    }
}

impl core::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Integrity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
