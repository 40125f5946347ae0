//! The IKEv2 Encrypted payload's cryptography (RFC 7296 §3.14): encrypting
//! and integrity-protecting the inner payloads of an SK (or SKF) payload for
//! one direction of an IKE SA.
//!
//! ```text
//! IKE header | cleartext payloads | SK header | IV | E(inner | Padding | Pad Length) | ICV
//! `------------------ AEAD associated data -----'                                    (RFC 5282 §5.1)
//! `------------------ HMAC input (RFC 7296 §3.14) -------------------------------'
//! ```
//!
//! - ENCR_AES_GCM_16 (RFC 5282) and ENCR_CHACHA20_POLY1305 (RFC 7634 §3): the
//!   key material ends with a 4-octet salt; the nonce is `salt | IV` with an
//!   8-octet explicit IV; the associated data runs from the first octet of
//!   the IKE header to the last octet of the Encrypted payload's header (for
//!   SKF: through Total Fragments), *not* the IV; the ICV is the 16-octet tag.
//! - ENCR_AES_CBC with an HMAC integrity transform: a 16-octet IV, plaintext
//!   padded to the AES block, and a truncated HMAC over everything from the
//!   IKE header through the ciphertext (IV included).
//!
//! IVs are never repeated under one key and never chosen by the caller: the
//! AEADs use a per-direction 64-bit counter (RFC 5282 §3.1 only asks for
//! uniqueness), CBC uses AES under the direction's key of that counter (NIST
//! SP 800-38A Appendix C), which is unpredictable without the key as RFC 7296
//! §3.14 requires. Retransmissions resend the sealed bytes and never re-seal.

use core::ops::Range;

use aws_lc_rs::aead;
use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;

use crate::keys::{SaltedKey, iv8};
use crate::suite::AEAD_TAG_LEN;
use crate::{CryptoError, EncrId, IntegId, Integrity};

/// AES block size: the CBC IV length and the padding alignment.
const AES_BLOCK: usize = 16;
/// Explicit IV of the AEADs (RFC 5282 §3.1, RFC 7634 §3).
const AEAD_IV_LEN: usize = 8;

enum Engine {
    Aead(SaltedKey),
    Cbc(Box<CbcKeys>),
}

/// Boxed so the key schedules stay at one heap address when the IKE SA moves.
struct CbcKeys {
    enc: EncryptingKey,
    dec: DecryptingKey,
    iv_gen: EncryptingKey,
    integ: Integrity,
}

/// One direction's SK payload protection (SK_ei/SK_ai or SK_er/SK_ar).
///
/// Key material kept in Rust memory (the AEAD salt) is zeroized on drop;
/// the rest lives in aws-lc contexts that cleanse themselves when freed (see
/// [`crate::EspTransform`] for the details, which are the same).
pub struct IkeProtection {
    encr: EncrId,
    engine: Engine,
    /// Messages sealed so far: the source of unique IVs.
    sealed: u64,
}

impl IkeProtection {
    /// Keys one direction: `sk_e` is the encryption key material (salt last
    /// for the AEADs), `sk_a` the integrity key (empty for the AEADs).
    ///
    /// Supported: ENCR_AES_GCM_16 with 128 or 256-bit keys, ENCR_CHACHA20_POLY1305,
    /// and ENCR_AES_CBC 128/256 with AUTH_HMAC_SHA1_96 or an
    /// AUTH_HMAC_SHA2_*; anything else is [`CryptoError::UnsupportedSuite`].
    pub fn new(
        encr: EncrId,
        key_bits: u16,
        integ: IntegId,
        sk_e: &[u8],
        sk_a: &[u8],
    ) -> Result<Self, CryptoError> {
        let aes_gcm = |bits| match bits {
            128 => Ok(&aead::AES_128_GCM),
            256 => Ok(&aead::AES_256_GCM),
            _ => Err(CryptoError::UnsupportedSuite(
                "AES key length must be 128 or 256 bits",
            )),
        };
        let no_integ = |engine| {
            if integ == IntegId::None && sk_a.is_empty() {
                Ok(engine)
            } else {
                Err(CryptoError::UnsupportedSuite(
                    "an AEAD takes no integrity transform",
                ))
            }
        };
        let engine = match encr {
            EncrId::AesGcm16 => no_integ(Engine::Aead(SaltedKey::new(aes_gcm(key_bits)?, sk_e)?))?,
            EncrId::ChaCha20Poly1305 if matches!(key_bits, 0 | 256) => no_integ(Engine::Aead(
                SaltedKey::new(&aead::CHACHA20_POLY1305, sk_e)?,
            ))?,
            EncrId::AesCbc => {
                let algorithm = match key_bits {
                    128 => &AES_128,
                    256 => &AES_256,
                    _ => {
                        return Err(CryptoError::UnsupportedSuite(
                            "AES key length must be 128 or 256 bits",
                        ));
                    }
                };
                if !integ.is_hmac() {
                    return Err(CryptoError::UnsupportedSuite(
                        "AES-CBC in IKE needs an HMAC integrity transform",
                    ));
                }
                let expected = usize::from(key_bits) / 8;
                if sk_e.len() != expected {
                    return Err(CryptoError::BadKeyLength {
                        expected,
                        got: sk_e.len(),
                    });
                }
                let unbound =
                    || UnboundCipherKey::new(algorithm, sk_e).map_err(|_| CryptoError::Cipher);
                Engine::Cbc(Box::new(CbcKeys {
                    enc: EncryptingKey::cbc(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    dec: DecryptingKey::cbc(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    iv_gen: EncryptingKey::ecb(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    integ: Integrity::new(integ, sk_a)?,
                }))
            }
            _ => {
                return Err(CryptoError::UnsupportedSuite(
                    "not an IKE SA encryption transform",
                ));
            }
        };
        Ok(Self {
            encr,
            engine,
            sealed: 0,
        })
    }

    /// The encryption transform.
    pub fn encr(&self) -> EncrId {
        self.encr
    }

    /// Octets of IV on the wire.
    pub fn iv_len(&self) -> usize {
        match self.engine {
            Engine::Aead(_) => AEAD_IV_LEN,
            Engine::Cbc(_) => AES_BLOCK,
        }
    }

    /// Octets of ICV on the wire.
    pub fn icv_len(&self) -> usize {
        match &self.engine {
            Engine::Aead(_) => AEAD_TAG_LEN,
            Engine::Cbc(keys) => keys.integ.icv_len(),
        }
    }

    /// The block the padded plaintext must fill: 16 for CBC, 1 for the AEADs
    /// (RFC 5282 §3 and RFC 7634 §3 need no alignment, so no padding is sent).
    pub fn block_size(&self) -> usize {
        match self.engine {
            Engine::Aead(_) => 1,
            Engine::Cbc(_) => AES_BLOCK,
        }
    }

    /// Padding octets (not counting Pad Length) after `inner_len` octets of
    /// inner payloads.
    pub fn padding_len(&self, inner_len: usize) -> usize {
        let block = self.block_size();
        (block - (inner_len % block + 1) % block) % block
    }

    /// Length of the SK body (IV, ciphertext, ICV) for `inner_len` octets of
    /// inner payloads.
    pub fn body_len(&self, inner_len: usize) -> usize {
        self.iv_len() + inner_len + self.padding_len(inner_len) + 1 + self.icv_len()
    }

    /// Seals a whole IKE message in place.
    ///
    /// `message` is the complete message (its header's Length already final),
    /// ending with the Encrypted payload's body, which starts at `iv_at` (for
    /// SKF, after Fragment Number and Total Fragments) and is
    /// [`body_len`](Self::body_len)`(inner_len)` octets long. The inner
    /// payloads lie right after the IV space; IV, padding, Pad Length and ICV
    /// are written here.
    ///
    /// [`CryptoError::BadLayout`] if the lengths disagree (nothing written).
    pub fn seal(
        &mut self,
        message: &mut [u8],
        iv_at: usize,
        inner_len: usize,
    ) -> Result<(), CryptoError> {
        let iv_len = self.iv_len();
        let pad = self.padding_len(inner_len);
        let ct_start = iv_at.checked_add(iv_len).ok_or(CryptoError::BadLayout)?;
        let pad_at = ct_start
            .checked_add(inner_len)
            .ok_or(CryptoError::BadLayout)?;
        let icv_at = pad_at + pad + 1;
        if icv_at + self.icv_len() != message.len() {
            return Err(CryptoError::BadLayout);
        }
        let pad_len = u8::try_from(pad).map_err(|_| CryptoError::BadLayout)?;
        message[pad_at..icv_at - 1].fill(0);
        message[icv_at - 1] = pad_len;
        let counter = self.sealed;
        self.sealed = self.sealed.checked_add(1).ok_or(CryptoError::Cipher)?;
        match &self.engine {
            Engine::Aead(key) => {
                let iv = counter.to_be_bytes();
                message[iv_at..ct_start].copy_from_slice(&iv);
                let (aad, rest) = message.split_at_mut(iv_at);
                let (_, rest) = rest.split_at_mut(iv_len);
                let (plaintext, icv) = rest.split_at_mut(icv_at - ct_start);
                let tag = key
                    .key()
                    .seal_in_place_separate_tag(key.nonce(iv), aead::Aad::from(&*aad), plaintext)
                    .map_err(|_| CryptoError::Cipher)?;
                icv.copy_from_slice(tag.as_ref());
                Ok(())
            }
            Engine::Cbc(keys) => {
                let mut block = [0u8; AES_BLOCK];
                block[8..].copy_from_slice(&counter.to_be_bytes());
                keys.iv_gen
                    .less_safe_encrypt(&mut block, EncryptionContext::None)
                    .map_err(|_| CryptoError::Cipher)?;
                message[iv_at..ct_start].copy_from_slice(&block);
                let (signed, icv) = message.split_at_mut(icv_at);
                keys.enc
                    .less_safe_encrypt(
                        &mut signed[ct_start..],
                        EncryptionContext::Iv128(FixedLength::from(block)),
                    )
                    .map_err(|_| CryptoError::Cipher)?;
                keys.integ.sign(&[signed], icv);
                Ok(())
            }
        }
    }

    /// Verifies and decrypts the Encrypted payload that ends `message` and
    /// whose IV starts at `iv_at`, in place. Returns the range of the inner
    /// payloads within `message`, padding and Pad Length removed.
    ///
    /// The ICV is checked in constant time before anything is decrypted (CBC)
    /// or released (AEAD: a failed open zeroes the would-be plaintext).
    /// [`CryptoError::Integrity`] for a bad ICV, [`CryptoError::BadLayout`]
    /// for a body too short or, for CBC, not a whole number of blocks, or a
    /// Pad Length larger than the plaintext.
    pub fn open(&self, message: &mut [u8], iv_at: usize) -> Result<Range<usize>, CryptoError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let ct_start = iv_at.checked_add(iv_len).ok_or(CryptoError::BadLayout)?;
        let icv_at = message
            .len()
            .checked_sub(icv_len)
            .filter(|&at| at > ct_start)
            .ok_or(CryptoError::BadLayout)?;
        match &self.engine {
            Engine::Aead(key) => {
                let iv = iv8(&message[iv_at..ct_start])?;
                let (aad, rest) = message.split_at_mut(iv_at);
                let (_, rest) = rest.split_at_mut(iv_len);
                let (ciphertext, icv) = rest.split_at_mut(icv_at - ct_start);
                let opened = key.key().open_in_place_separate_tag(
                    key.nonce(iv),
                    aead::Aad::from(&*aad),
                    icv,
                    ciphertext,
                );
                if opened.is_err() {
                    ciphertext.fill(0);
                    return Err(CryptoError::Integrity);
                }
            }
            Engine::Cbc(keys) => {
                if (icv_at - ct_start) % AES_BLOCK != 0 {
                    return Err(CryptoError::BadLayout);
                }
                let (signed, icv) = message.split_at_mut(icv_at);
                if !keys.integ.verify(&[signed], icv) {
                    return Err(CryptoError::Integrity);
                }
                let iv = <[u8; AES_BLOCK]>::try_from(&signed[iv_at..ct_start])
                    .map_err(|_| CryptoError::BadLayout)?;
                keys.dec
                    .decrypt(
                        &mut signed[ct_start..],
                        DecryptionContext::Iv128(FixedLength::from(iv)),
                    )
                    .map_err(|_| CryptoError::Cipher)?;
            }
        }
        let pad_len = usize::from(message[icv_at - 1]);
        let inner_end = (icv_at - 1)
            .checked_sub(pad_len)
            .filter(|&end| end >= ct_start)
            .ok_or(CryptoError::BadLayout)?;
        Ok(ct_start..inner_end)
    }
}

impl core::fmt::Debug for IkeProtection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeProtection")
            .field("encr", &self.encr)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}
