//! AH integrity (RFC 4302) with truncated HMACs or AES-GMAC (RFC 4543 §4).

use aws_lc_rs::aead;

use crate::keys::{SaltedKey, iv8};
use crate::{CryptoError, IntegId, Integrity};

/// Next header, payload length, reserved, SPI, sequence number: the part of
/// the AH header before the ICV field.
const AH_FIXED_LEN: usize = 12;
/// The largest ICV field of any supported transform (HMAC-SHA2-512-256).
const MAX_ICV_FIELD_LEN: usize = 32;
/// GMAC carries its 8-byte IV at the front of the ICV field (RFC 4543 §4).
const GMAC_IV_LEN: usize = 8;

enum Engine {
    /// Boxed so the kilobyte of HMAC state stays put when the transform moves
    /// (see `EspTransform`), and the enum stays small.
    Hmac(Box<Integrity>),
    Gmac(SaltedKey),
}

/// A keyed AH transform for one SA direction.
///
/// HMAC keys live only in aws-lc's `HMAC_CTX`, cleansed by
/// `HMAC_CTX_cleanup` on drop; GMAC keys live in an aws-lc `EVP_AEAD_CTX`,
/// cleansed by `OPENSSL_free`, and the 4-byte GMAC salt kept in Rust memory is
/// zeroized on drop.
pub struct AhTransform {
    integ: IntegId,
    engine: Engine,
}

impl AhTransform {
    /// Keys `integ` with `key`. HMAC keys are the hash output length; GMAC
    /// keys are the AES key followed by the 4-byte salt (16+4 or 32+4 bytes,
    /// RFC 4543 §3.2, §4).
    pub fn new(integ: IntegId, key: &[u8]) -> Result<Self, CryptoError> {
        let engine = match integ {
            IntegId::None => {
                return Err(CryptoError::UnsupportedSuite(
                    "AH needs an integrity transform",
                ));
            }
            IntegId::AesGmac128 => Engine::Gmac(SaltedKey::new(&aead::AES_128_GCM, key)?),
            IntegId::AesGmac256 => Engine::Gmac(SaltedKey::new(&aead::AES_256_GCM, key)?),
            IntegId::HmacSha1_96
            | IntegId::HmacSha2_256_128
            | IntegId::HmacSha2_384_192
            | IntegId::HmacSha2_512_256 => Engine::Hmac(Box::new(Integrity::new(integ, key)?)),
        };
        Ok(Self { integ, engine })
    }

    /// The integrity transform id.
    pub fn integ(&self) -> IntegId {
        self.integ
    }

    /// Bytes of IV in the ICV field: 8 for GMAC, 0 for the HMACs.
    pub fn iv_len(&self) -> usize {
        match self.engine {
            Engine::Gmac(_) => GMAC_IV_LEN,
            Engine::Hmac(_) => 0,
        }
    }

    /// Bytes of authenticator.
    pub fn icv_len(&self) -> usize {
        self.integ.icv_len()
    }

    /// `iv_len() + icv_len()`: what follows the 12-byte fixed AH header before
    /// any alignment padding, which the caller adds (RFC 4302 §3.3.3.2).
    pub fn icv_field_len(&self) -> usize {
        self.iv_len() + self.icv_len()
    }

    /// Computes the ICV of a whole IP packet and writes it into the packet.
    ///
    /// `packet` is the IP packet with mutable fields (and any ICV padding)
    /// already zeroed as RFC 4302 §3.3.3.1 prescribes; the AH header's ICV
    /// field starts at `icv_field_offset`, right after the 12-byte fixed AH
    /// header whose sequence number field must hold the low half of `seq`.
    /// The `icv_field_len()` bytes there are zeroed here as well, then the
    /// authenticator is computed over the packet and written into them; with
    /// GMAC the field is `IV(8) || tag(16)` where the IV is `seq` as 8
    /// big-endian bytes, unique within the SA as the GMAC nonce requires, and
    /// the whole field, IV included, reads as zero while authenticating.
    ///
    /// With `esn` the high 32 bits of `seq` are authenticated as if appended
    /// after the packet (RFC 4302 §2.5.1); they are never sent.
    ///
    /// Errors: [`CryptoError::BadLayout`] if the field does not fit, or the
    /// header's sequence number is not `seq`'s low half, or (GMAC with ESN
    /// only, see below) the packet is longer than 65 575 bytes (an IPv6 jumbogram);
    /// [`CryptoError::Cipher`] on an aws-lc failure.
    pub fn sign(
        &self,
        packet: &mut [u8],
        icv_field_offset: usize,
        seq: u64,
        esn: bool,
    ) -> Result<(), CryptoError> {
        let (start, end) = self.field(packet, icv_field_offset, seq)?;
        packet[start..end].fill(0);
        let seq_hi = seq_hi(seq);
        match &self.engine {
            Engine::Hmac(integ) => {
                let mut icv = [0u8; MAX_ICV_FIELD_LEN];
                let icv = &mut icv[..end - start];
                if esn {
                    integ.sign(&[packet, &seq_hi], icv);
                } else {
                    integ.sign(&[packet], icv);
                }
                packet[start..end].copy_from_slice(icv);
            }
            Engine::Gmac(key) => {
                let iv = seq.to_be_bytes();
                let tag = if esn {
                    with_tail(packet, seq_hi, |aad| key.gmac_seal(iv, aad))??
                } else {
                    key.gmac_seal(iv, packet)?
                };
                let field = &mut packet[start..end];
                let (iv_out, tag_out) = field.split_at_mut(GMAC_IV_LEN);
                if tag_out.len() != tag.as_ref().len() {
                    return Err(CryptoError::Cipher);
                }
                iv_out.copy_from_slice(&iv);
                tag_out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Verifies the ICV of a received IP packet in constant time.
    ///
    /// `packet` is as received with mutable fields zeroed; the ICV field is
    /// copied out and zeroed here, then the authenticator is recomputed as in
    /// [`sign`](Self::sign) (for GMAC with the received IV) and compared. The
    /// field is not restored: work on a scratch copy if the original matters.
    ///
    /// Returns [`CryptoError::Integrity`] on a mismatch.
    pub fn verify(
        &self,
        packet: &mut [u8],
        icv_field_offset: usize,
        seq: u64,
        esn: bool,
    ) -> Result<(), CryptoError> {
        let (start, end) = self.field(packet, icv_field_offset, seq)?;
        let mut received = [0u8; MAX_ICV_FIELD_LEN];
        let received = &mut received[..end - start];
        received.copy_from_slice(&packet[start..end]);
        packet[start..end].fill(0);
        let seq_hi = seq_hi(seq);
        match &self.engine {
            Engine::Hmac(integ) => {
                let ok = if esn {
                    integ.verify(&[packet, &seq_hi], received)
                } else {
                    integ.verify(&[packet], received)
                };
                if ok {
                    Ok(())
                } else {
                    Err(CryptoError::Integrity)
                }
            }
            Engine::Gmac(key) => {
                let iv = iv8(received)?;
                let tag = &received[GMAC_IV_LEN..];
                if esn {
                    with_tail(packet, seq_hi, |aad| key.gmac_open(iv, aad, tag))?
                } else {
                    key.gmac_open(iv, packet, tag)
                }
            }
        }
    }

    /// Bounds of the ICV field, after checking it fits behind a fixed AH
    /// header whose sequence number matches `seq`.
    fn field(&self, packet: &[u8], offset: usize, seq: u64) -> Result<(usize, usize), CryptoError> {
        let end = offset
            .checked_add(self.icv_field_len())
            .filter(|&end| end <= packet.len())
            .ok_or(CryptoError::BadLayout)?;
        let seq_field = offset
            .checked_sub(4)
            .filter(|_| offset >= AH_FIXED_LEN)
            .and_then(|at| packet.get(at..offset))
            .ok_or(CryptoError::BadLayout)?;
        if seq_field != (seq as u32).to_be_bytes() {
            return Err(CryptoError::BadLayout);
        }
        Ok((offset, end))
    }
}

impl core::fmt::Debug for AhTransform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AhTransform")
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

fn seq_hi(seq: u64) -> [u8; 4] {
    ((seq >> 32) as u32).to_be_bytes()
}

/// Largest IP packet whose GMAC-with-ESN AAD we can build: an IPv6 header plus
/// the largest non-jumbogram payload. IPv4 packets are smaller still.
const GMAC_ESN_MAX_PACKET: usize = 40 + 65_535;

/// Runs `f` on `packet || tail`.
///
/// AH-GMAC with ESN authenticates the high sequence bits after the whole
/// packet, aws-lc wants the AAD as one slice, and unlike ESP the packet has no
/// free bytes at its end to borrow. So the AAD is assembled in a stack buffer,
/// sized in steps so that typical packets do not pay for zeroing 64 KiB.
fn with_tail<R>(
    packet: &[u8],
    tail: [u8; 4],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, CryptoError> {
    let len = packet.len() + tail.len();
    if len <= 2_048 {
        Ok(joined::<2_048, R>(packet, tail, f))
    } else if len <= 16_384 {
        Ok(joined::<16_384, R>(packet, tail, f))
    } else if len <= GMAC_ESN_MAX_PACKET + 4 {
        Ok(joined::<{ GMAC_ESN_MAX_PACKET + 4 }, R>(packet, tail, f))
    } else {
        Err(CryptoError::BadLayout)
    }
}

// Kept out of line so only the branch taken grows the stack.
#[inline(never)]
fn joined<const N: usize, R>(packet: &[u8], tail: [u8; 4], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; N];
    let len = packet.len() + tail.len();
    buf[..packet.len()].copy_from_slice(packet);
    buf[packet.len()..len].copy_from_slice(&tail);
    f(&buf[..len])
}
