//! One keyed direction of an ESP SA: seal (encrypt + ICV) and open (verify +
//! decrypt) whole ESP packets in place.

use aws_lc_rs::aead;
use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;

use crate::keys::{SaltedKey, iv8};
use crate::suite::{AEAD_TAG_LEN, ESP_ALIGN};
use crate::{CryptoError, EncrId, EspSuite, IntegId, Integrity};

/// SPI (4) and the low 32 bits of the sequence number (4).
const ESP_HEADER_LEN: usize = 8;
/// Offset of the sequence number in the ESP header.
const SEQ_OFFSET: usize = 4;
/// AES block and CBC IV length.
const CBC_IV_LEN: usize = 16;
/// The high half of an ESN, spliced in after SPI for the AEAD AAD.
const SEQ_HI_LEN: usize = 4;

enum Engine {
    /// AES-GCM or ChaCha20-Poly1305: payload encrypted, AAD is the ESP header.
    Aead(SaltedKey),
    /// ENCR_NULL_AUTH_AES_GMAC: nothing encrypted, header, IV and payload are AAD.
    Gmac(SaltedKey),
    /// AES-CBC, optionally with an HMAC over header, IV and ciphertext.
    Cbc(Box<CbcKeys>),
    /// ENCR_NULL: an HMAC over header and plaintext payload.
    Null(Box<Integrity>),
}

/// AES key schedules and the HMAC context are kilobytes stored inline. Boxing
/// them (once, at SA setup) keeps `EspTransform` small and, more to the point,
/// keeps the key state at one heap address: moving the transform around (into
/// an SA table that later grows, say) moves a pointer instead of leaving
/// unwiped copies of key schedules behind.
struct CbcKeys {
    enc: EncryptingKey,
    dec: DecryptingKey,
    /// The same key in ECB mode, for IVs (see [`EspTransform::seal`]).
    iv_gen: EncryptingKey,
    integ: Option<Integrity>,
}

/// Byte offsets inside one ESP packet, checked against the suite.
#[derive(Clone, Copy)]
struct Layout {
    /// End of the IV, start of the payload.
    payload: usize,
    /// End of the payload, start of the ICV.
    icv: usize,
}

/// A keyed ESP transform for one SA direction.
///
/// Key material held in Rust memory (the 4-byte AEAD salt) is zeroized on drop.
/// Everything else lives in aws-lc objects that cleanse themselves when
/// aws-lc-rs drops them: AEAD keys in an `EVP_AEAD_CTX` released through
/// `OPENSSL_free` (which `OPENSSL_cleanse`s the allocation), AES-CBC key
/// schedules zeroized by aws-lc-rs's `SymmetricCipherKey` drop, HMAC keys in
/// an `HMAC_CTX` released through `HMAC_CTX_cleanup` (a cleanse). The raw
/// AES-CBC key is briefly copied into an aws-lc-rs buffer that zeroizes on
/// drop, during [`new`](Self::new) only. aws-lc-rs hands keys back by value,
/// so building them may leave transient stack copies of key schedules that no
/// safe code can reach to wipe; once built, the large key state sits behind a
/// `Box` and moving the transform does not copy it.
///
/// `seal` and `open` never allocate; they work in place on the caller's
/// buffer with a few small stack arrays.
pub struct EspTransform {
    suite: EspSuite,
    engine: Engine,
}

impl EspTransform {
    /// Keys `suite` with `keymat`: the encryption key (with the 4-byte salt at
    /// its end for GCM, GMAC and ChaCha20-Poly1305) followed by the integrity
    /// key, as IKEv2 lays them out (RFC 7296 §2.17).
    ///
    /// Fails with [`CryptoError::BadKeyLength`] unless
    /// `keymat.len() == suite.keymat_len()`, and with
    /// [`CryptoError::UnsupportedSuite`] when `suite` does not validate.
    pub fn new(suite: EspSuite, keymat: &[u8]) -> Result<Self, CryptoError> {
        suite.validate()?;
        let expected = suite.keymat_len();
        if keymat.len() != expected {
            return Err(CryptoError::BadKeyLength {
                expected,
                got: keymat.len(),
            });
        }
        let (encr_key, integ_key) = keymat.split_at(suite.encr_key_len());
        let aes = |bits| match bits {
            128 => (&aead::AES_128_GCM, &AES_128),
            _ => (&aead::AES_256_GCM, &AES_256),
        };
        let engine = match suite.encr {
            EncrId::AesGcm16 => Engine::Aead(SaltedKey::new(aes(suite.key_bits).0, encr_key)?),
            EncrId::ChaCha20Poly1305 => {
                Engine::Aead(SaltedKey::new(&aead::CHACHA20_POLY1305, encr_key)?)
            }
            EncrId::NullAuthAesGmac => {
                Engine::Gmac(SaltedKey::new(aes(suite.key_bits).0, encr_key)?)
            }
            EncrId::AesCbc => {
                let algorithm = aes(suite.key_bits).1;
                let unbound =
                    || UnboundCipherKey::new(algorithm, encr_key).map_err(|_| CryptoError::Cipher);
                Engine::Cbc(Box::new(CbcKeys {
                    enc: EncryptingKey::cbc(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    dec: DecryptingKey::cbc(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    iv_gen: EncryptingKey::ecb(unbound()?).map_err(|_| CryptoError::Cipher)?,
                    integ: match suite.integ {
                        IntegId::None => None,
                        id => Some(Integrity::new(id, integ_key)?),
                    },
                }))
            }
            EncrId::Null => Engine::Null(Box::new(Integrity::new(suite.integ, integ_key)?)),
        };
        Ok(Self { suite, engine })
    }

    /// The suite this transform was keyed for.
    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    /// The AEAD path of this transform (AES-GCM, ChaCha20-Poly1305: 8-byte IV, 16-byte
    /// ICV, 4-byte alignment), or `None` for the other suites. Its `seal` and `open` are
    /// [`seal`](Self::seal)'s and [`open`](Self::open)'s for these suites, checks
    /// included, without their test of the suite: a caller that looks the path up once
    /// per packet, before anything else, pays that test once (the compiler cannot
    /// reuse it across the caller's writes to the packet).
    #[inline]
    pub fn aead_path(&self) -> Option<AeadPath<'_>> {
        match &self.engine {
            Engine::Aead(key) => Some(AeadPath { key }),
            _ => None,
        }
    }

    /// Seals a whole ESP packet in place.
    ///
    /// `packet` is laid out as
    /// `SPI(4) | Sequence Number low 32 bits(4) | IV(iv_len) | payload | ICV(icv_len)`,
    /// where `payload` is the plaintext with its padding, pad length and next
    /// header already appended, a non-empty multiple of `suite().align()`
    /// bytes, and the ICV bytes are output space.
    ///
    /// `seq` is the full 64-bit sequence number; its low half must equal the
    /// header's. With `esn` its high half is authenticated too (RFC 4303
    /// §2.2.1): in the AAD between SPI and low half for the AEADs and GMAC
    /// (RFC 4106 §5, RFC 4543 §3.3, RFC 7634 §2), appended after the packet for
    /// the HMACs. It is never written to the packet.
    ///
    /// The IV is written here: for GCM, GMAC and ChaCha20-Poly1305 it is `seq`
    /// as 8 big-endian bytes, which never repeats within an SA and so never
    /// repeats a nonce (RFC 4106 §3.1 allows a counter); for AES-CBC it is AES
    /// under the SA's key of SPI || 0 || `seq` (NIST SP 800-38A Appendix C), so
    /// unpredictable without the key, as RFC 3602 §3 requires.
    /// Sealing the same `seq` twice therefore reuses a nonce; the SA layer must
    /// never do that.
    ///
    /// Errors: [`CryptoError::BadLayout`] for a packet that does not fit the
    /// suite (nothing is written then), [`CryptoError::Cipher`] if aws-lc fails.
    // Inline, with the other suites out of line: the AEAD branch is then a few
    // instructions in the caller's fast path instead of two calls that pass the packet
    // on the stack (callgrind: ~35 instructions per packet in the wrapper alone).
    #[inline]
    pub fn seal(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        if let Engine::Aead(key) = &self.engine {
            return Self::seal_aead(key, packet, seq, esn, None);
        }
        self.seal_other(packet, seq, esn)
    }

    /// [`seal`](Self::seal) for GMAC, CBC and NULL.
    #[inline(never)]
    fn seal_other(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        let layout = self.layout(packet, seq)?;
        let (header, rest) = packet.split_at_mut(ESP_HEADER_LEN);
        let iv = rest
            .get_mut(..layout.payload - ESP_HEADER_LEN)
            .ok_or(CryptoError::BadLayout)?;
        match &self.engine {
            Engine::Aead(_) | Engine::Gmac(_) => iv.copy_from_slice(&seq.to_be_bytes()),
            Engine::Cbc(keys) => generate_cbc_iv(&keys.iv_gen, header, seq, iv)?,
            Engine::Null(_) => {}
        }
        self.seal_laid_out(packet, layout, seq, esn)
    }

    /// Like [`seal`](Self::seal) but keeps the IV the caller already wrote
    /// into the packet.
    ///
    /// Less safe: the caller takes over IV generation, and a repeated IV under
    /// one GCM or ChaCha20-Poly1305 key exposes plaintext and lets the ICV be
    /// forged, while a predictable CBC IV breaks CBC. It exists to reproduce
    /// published test vectors byte for byte.
    pub fn seal_with_iv(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        if let Engine::Aead(key) = &self.engine {
            let iv = iv8(packet.get(ESP_HEADER_LEN..).ok_or(CryptoError::BadLayout)?)?;
            return Self::seal_aead(key, packet, seq, esn, Some(iv));
        }
        let layout = self.layout(packet, seq)?;
        self.seal_laid_out(packet, layout, seq, esn)
    }

    /// Verifies the ICV of a whole ESP packet (layout as for
    /// [`seal`](Self::seal)) in constant time, then decrypts the payload in
    /// place. AES-CBC with HMAC verifies before it decrypts, so forged
    /// ciphertext never reaches the cipher.
    ///
    /// Returns [`CryptoError::Integrity`] on a mismatch; the payload bytes are
    /// then unspecified (the AEADs zero them) and the packet must be dropped.
    /// AES-CBC without integrity has nothing to verify and always decrypts.
    /// [`CryptoError::BadLayout`] as for [`seal`](Self::seal); the receiver
    /// passes the sequence number it inferred from the header's low half.
    // Inline, with the other suites out of line, for the same reason as `seal`.
    #[inline]
    pub fn open(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        if let Engine::Aead(key) = &self.engine {
            return Self::open_aead(key, packet, seq, esn);
        }
        self.open_other(packet, seq, esn)
    }

    /// [`open`](Self::open) for GMAC, CBC and NULL.
    #[inline(never)]
    fn open_other(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        let layout = self.layout(packet, seq)?;
        let seq_hi = seq_hi(seq);
        match &self.engine {
            // Taken above; kept total rather than unreachable.
            Engine::Aead(key) => Self::open_aead(key, packet, seq, esn),
            Engine::Gmac(key) => {
                let iv = iv8(&packet[ESP_HEADER_LEN..])?;
                if !esn {
                    let (body, icv) = packet.split_at(layout.icv);
                    return key.gmac_open(iv, body, icv);
                }
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(&packet[layout.icv..]);
                let verdict =
                    with_seq_hi_spliced(packet, layout, seq_hi, |aad| key.gmac_open(iv, aad, &tag));
                // Splicing borrowed the first bytes of the ICV; put them back so
                // a caller that keeps the packet sees it as received.
                packet[layout.icv..].copy_from_slice(&tag);
                verdict
            }
            Engine::Cbc(keys) => {
                let CbcKeys { dec, integ, .. } = &**keys;
                let (body, icv) = packet.split_at_mut(layout.icv);
                if let Some(integ) = integ {
                    verify_hmac(integ, body, icv, seq_hi, esn)?;
                }
                let iv = cbc_iv(body)?;
                dec.decrypt(&mut body[layout.payload..], DecryptionContext::Iv128(iv))
                    .map(|_| ())
                    .map_err(|_| CryptoError::Cipher)
            }
            Engine::Null(integ) => {
                let (body, icv) = packet.split_at(layout.icv);
                verify_hmac(integ, body, icv, seq_hi, esn)
            }
        }
    }

    /// AES-GCM and ChaCha20-Poly1305, the suites IKE picks by default, on their own
    /// path: the layout is fixed (8-byte IV, 16-byte ICV), so it is checked in one go,
    /// the nonce is built from the salt and the sequence number in registers, and
    /// without ESN the AAD is the ESP header where it lies in the packet. Measured
    /// (`profile_loop ratio`): the general path cost ~12 % of the bare AEAD at 1400
    /// bytes, most of it in rebuilding nonce and AAD through memory.
    /// `iv`: `None` writes the sequence number as the IV (the nonce-unique choice);
    /// `Some` keeps the IV the caller wrote ([`seal_with_iv`](Self::seal_with_iv)).
    #[inline(always)]
    fn seal_aead(
        key: &SaltedKey,
        packet: &mut [u8],
        seq: u64,
        esn: bool,
        iv: Option<[u8; 8]>,
    ) -> Result<(), CryptoError> {
        let (header, iv_slot, payload, icv) = Self::aead_layout(packet, seq)?;
        let iv = match iv {
            Some(iv) => iv,
            None => {
                let iv = seq.to_be_bytes();
                *iv_slot = iv;
                iv
            }
        };
        let nonce = key.nonce(iv);
        // The tag goes straight into the ICV (the scatter form of the same aws-lc
        // call): moving aws-lc-rs's returned `Tag` through the stack cost a
        // store-forwarding stall per packet (perf annotate: half of this function's
        // samples on the two loads of the moved tag).
        if esn {
            key.key().seal_in_place_scatter(
                nonce,
                aead::Aad::from(esn_aad(header, seq)),
                payload,
                &[],
                icv,
            )
        } else {
            key.key()
                .seal_in_place_scatter(nonce, aead::Aad::from(&header[..]), payload, &[], icv)
        }
        .map_err(|_| CryptoError::Cipher)
    }

    /// The receive side of [`seal_aead`](Self::seal_aead).
    #[inline(always)]
    fn open_aead(
        key: &SaltedKey,
        packet: &mut [u8],
        seq: u64,
        esn: bool,
    ) -> Result<(), CryptoError> {
        let (header, iv, payload, icv) = Self::aead_layout(packet, seq)?;
        let nonce = key.nonce(*iv);
        let opened = if esn {
            key.key().open_in_place_separate_tag(
                nonce,
                aead::Aad::from(esn_aad(header, seq)),
                icv,
                payload,
            )
        } else {
            key.key()
                .open_in_place_separate_tag(nonce, aead::Aad::from(&header[..]), icv, payload)
        };
        if opened.is_err() {
            // aws-lc may already have decrypted in place; unauthenticated
            // plaintext must not be released (RFC 5116 §2.2).
            payload.fill(0);
            return Err(CryptoError::Integrity);
        }
        Ok(())
    }

    /// `SPI | seq | IV(8) | payload | ICV(16)`, checked as [`layout`](Self::layout)
    /// checks the general case.
    #[inline]
    #[allow(clippy::type_complexity)]
    fn aead_layout(
        packet: &mut [u8],
        seq: u64,
    ) -> Result<
        (
            &mut [u8; ESP_HEADER_LEN],
            &mut [u8; 8],
            &mut [u8],
            &mut [u8],
        ),
        CryptoError,
    > {
        let (header, rest) = packet
            .split_first_chunk_mut::<ESP_HEADER_LEN>()
            .ok_or(CryptoError::BadLayout)?;
        let (iv, rest) = rest
            .split_first_chunk_mut::<8>()
            .ok_or(CryptoError::BadLayout)?;
        let payload_len = rest
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(CryptoError::BadLayout)?;
        // GCM and ChaCha20-Poly1305 align to `ESP_ALIGN` (what `EspSuite::align` says
        // for them): a constant mask instead of the suite's lookup per packet.
        if payload_len == 0 || payload_len & (ESP_ALIGN - 1) != 0 {
            return Err(CryptoError::BadLayout);
        }
        if header[SEQ_OFFSET..] != (seq as u32).to_be_bytes() {
            return Err(CryptoError::BadLayout);
        }
        let (payload, icv) = rest.split_at_mut(payload_len);
        Ok((header, iv, payload, icv))
    }

    /// Checks the packet against the suite before anything is written.
    fn layout(&self, packet: &[u8], seq: u64) -> Result<Layout, CryptoError> {
        let payload = ESP_HEADER_LEN + self.suite.iv_len();
        let icv_len = self.suite.icv_len();
        let payload_len = packet
            .len()
            .checked_sub(payload + icv_len)
            .ok_or(CryptoError::BadLayout)?;
        // Even an empty datagram carries pad length and next header, so a
        // zero-length payload is malformed.
        // align() is 4 or 16: a mask, not a division, on the per-packet path.
        if payload_len == 0 || payload_len & (self.suite.align() - 1) != 0 {
            return Err(CryptoError::BadLayout);
        }
        // The header's half is what goes on the wire and into the ICV; a
        // different `seq` would mean the caller's bookkeeping is broken.
        if packet[SEQ_OFFSET..ESP_HEADER_LEN] != (seq as u32).to_be_bytes() {
            return Err(CryptoError::BadLayout);
        }
        Ok(Layout {
            payload,
            icv: payload + payload_len,
        })
    }

    fn seal_laid_out(
        &self,
        packet: &mut [u8],
        layout: Layout,
        seq: u64,
        esn: bool,
    ) -> Result<(), CryptoError> {
        let seq_hi = seq_hi(seq);
        match &self.engine {
            Engine::Aead(key) => {
                let iv = iv8(&packet[ESP_HEADER_LEN..])?;
                Self::seal_aead(key, packet, seq, esn, Some(iv))
            }
            Engine::Gmac(key) => {
                let iv = iv8(&packet[ESP_HEADER_LEN..])?;
                let tag = if esn {
                    with_seq_hi_spliced(packet, layout, seq_hi, |aad| key.gmac_seal(iv, aad))?
                } else {
                    key.gmac_seal(iv, &packet[..layout.icv])?
                };
                copy_tag(&mut packet[layout.icv..], tag.as_ref())
            }
            Engine::Cbc(keys) => {
                let CbcKeys { enc, integ, .. } = &**keys;
                let (body, icv) = packet.split_at_mut(layout.icv);
                let iv = cbc_iv(body)?;
                enc.less_safe_encrypt(&mut body[layout.payload..], EncryptionContext::Iv128(iv))
                    .map_err(|_| CryptoError::Cipher)?;
                if let Some(integ) = integ {
                    sign_hmac(integ, body, icv, seq_hi, esn);
                }
                Ok(())
            }
            Engine::Null(integ) => {
                let (body, icv) = packet.split_at_mut(layout.icv);
                sign_hmac(integ, body, icv, seq_hi, esn);
                Ok(())
            }
        }
    }
}

/// The AEAD path of an [`EspTransform`], from [`EspTransform::aead_path`].
#[derive(Clone, Copy)]
pub struct AeadPath<'a> {
    key: &'a SaltedKey,
}

impl AeadPath<'_> {
    /// [`EspTransform::seal`], for the transform this came from.
    #[inline(always)]
    pub fn seal(self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        EspTransform::seal_aead(self.key, packet, seq, esn, None)
    }

    /// [`EspTransform::open`], for the transform this came from.
    #[inline(always)]
    pub fn open(self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
        EspTransform::open_aead(self.key, packet, seq, esn)
    }
}

impl core::fmt::Debug for AeadPath<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the key.
        f.debug_struct("AeadPath").finish_non_exhaustive()
    }
}

impl core::fmt::Debug for EspTransform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EspTransform")
            .field("suite", &self.suite.name())
            .finish_non_exhaustive()
    }
}

fn seq_hi(seq: u64) -> [u8; SEQ_HI_LEN] {
    ((seq >> 32) as u32).to_be_bytes()
}

/// The CBC IV: the forward cipher under the SA's own key applied to a block that is
/// unique per packet, SPI || 0 || 64-bit sequence number (NIST SP 800-38A Appendix C,
/// the first of its two methods). Unpredictable without the key, as RFC 3602 §3
/// requires, and one AES block instead of a call into the random generator per packet.
fn generate_cbc_iv(
    iv_gen: &EncryptingKey,
    header: &[u8],
    seq: u64,
    iv: &mut [u8],
) -> Result<(), CryptoError> {
    let mut block = [0u8; 16];
    block[..4].copy_from_slice(header.get(..4).ok_or(CryptoError::BadLayout)?);
    block[8..].copy_from_slice(&seq.to_be_bytes());
    iv_gen
        .less_safe_encrypt(&mut block, EncryptionContext::None)
        .map_err(|_| CryptoError::Cipher)?;
    if iv.len() != block.len() {
        return Err(CryptoError::BadLayout);
    }
    iv.copy_from_slice(&block);
    Ok(())
}

/// The AEAD AAD with ESN: `SPI || seq_hi || seq_lo` (RFC 4106 §5, RFC 7634 §2), built
/// on the stack because it is not contiguous in the packet. Without ESN the AAD is the
/// ESP header itself.
fn esn_aad(header: &[u8; ESP_HEADER_LEN], seq: u64) -> [u8; 12] {
    let [s0, s1, s2, s3, q0, q1, q2, q3] = *header;
    let [h0, h1, h2, h3] = seq_hi(seq);
    [s0, s1, s2, s3, h0, h1, h2, h3, q0, q1, q2, q3]
}

/// ESP-GMAC with ESN authenticates `SPI || seq_hi || seq_lo || IV || payload`
/// (RFC 4543 §3.3), which is not contiguous in the packet and aws-lc takes the
/// AAD as one slice. Rather than copying the packet, this shifts everything
/// after the SPI four bytes towards the ICV (whose space is free or saved by
/// the caller), writes `seq_hi` into the gap, runs `f` on the spliced AAD and
/// shifts back. Only this suite/ESN combination pays the two memmoves.
fn with_seq_hi_spliced<R>(
    packet: &mut [u8],
    layout: Layout,
    seq_hi: [u8; SEQ_HI_LEN],
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let spliced_end = layout.icv + SEQ_HI_LEN;
    packet.copy_within(SEQ_OFFSET..layout.icv, SEQ_OFFSET + SEQ_HI_LEN);
    packet[SEQ_OFFSET..SEQ_OFFSET + SEQ_HI_LEN].copy_from_slice(&seq_hi);
    let out = f(&packet[..spliced_end]);
    packet.copy_within(SEQ_OFFSET + SEQ_HI_LEN..spliced_end, SEQ_OFFSET);
    out
}

fn cbc_iv(body: &[u8]) -> Result<FixedLength<CBC_IV_LEN>, CryptoError> {
    body.get(ESP_HEADER_LEN..ESP_HEADER_LEN + CBC_IV_LEN)
        .and_then(|iv| <[u8; CBC_IV_LEN]>::try_from(iv).ok())
        .map(FixedLength::from)
        .ok_or(CryptoError::BadLayout)
}

fn copy_tag(icv: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
    if icv.len() != tag.len() {
        return Err(CryptoError::Cipher);
    }
    icv.copy_from_slice(tag);
    Ok(())
}

/// HMAC ICVs cover the packet up to the ICV, then (ESN) the high sequence
/// bits, which RFC 4303 §2.2.1 appends after the packet without sending them.
fn sign_hmac(integ: &Integrity, body: &[u8], icv: &mut [u8], seq_hi: [u8; 4], esn: bool) {
    if esn {
        integ.sign(&[body, &seq_hi], icv);
    } else {
        integ.sign(&[body], icv);
    }
}

fn verify_hmac(
    integ: &Integrity,
    body: &[u8],
    icv: &[u8],
    seq_hi: [u8; 4],
    esn: bool,
) -> Result<(), CryptoError> {
    let ok = if esn {
        integ.verify(&[body, &seq_hi], icv)
    } else {
        integ.verify(&[body], icv)
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Integrity)
    }
}
