//! IKEv2 key derivation (RFC 7296 §2.14, §2.17, §2.18).
//!
//! ```text
//! SKEYSEED = prf(Ni | Nr, g^ir)                                       §2.14
//! {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//!          = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)                    §2.14
//! SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)     IKE SA rekey, §2.18
//! KEYMAT   = prf+(SK_d, Ni | Nr)                       CHILD_SA,     §2.17
//! KEYMAT   = prf+(SK_d, g^ir (new) | Ni | Nr)          CHILD_SA PFS, §2.17
//! ```
//!
//! This is the SP 800-135 §4.1.2 "IKEv2 KDF", checked against NIST CAVP
//! vectors in `tests/ikev2_kdf.rs`. Nonce lengths are not enforced here
//! (CAVP uses 64-bit nonces); the IKE layer checks RFC 7296 §2.10's bounds.

use crate::prf::{KeyMaterial, Prf, PrfOutput};
use crate::suite::SALT_LEN;
use crate::{CryptoError, EncrId, EspSuite, IntegId};

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 §2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> PrfOutput {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    // The nonces are public; only g^ir is secret, and it is not copied.
    prf.prf(&key, g_ir)
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` for a rekeyed IKE SA
/// (RFC 7296 §2.18), with `prf` the PRF of the *old* IKE SA. `g_ir_new` is
/// the new key exchange's shared secret and `ni`/`nr` the nonces of the
/// CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    prf: Prf,
    sk_d_old: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> PrfOutput {
    prf.prf_parts(sk_d_old, &[g_ir_new, ni, nr])
}

/// Bytes of encryption key material for `encr` with a Key Length attribute
/// of `key_bits`, including the 4-byte salt of AES-GCM (RFC 4106 §8.1,
/// RFC 5282 §7.1 for IKE), AES-GMAC (RFC 4543 §3.2) and ChaCha20-Poly1305
/// (RFC 7634 §2 and §4: 36 octets, no Key Length attribute, so `key_bits`
/// may be 0 or 256).
pub fn encr_key_material_len(encr: EncrId, key_bits: u16) -> Result<usize, CryptoError> {
    let aes = |bits: u16| match bits {
        128 | 192 | 256 => Ok(usize::from(bits) / 8),
        _ => Err(CryptoError::UnsupportedSuite(
            "AES key length must be 128, 192 or 256 bits",
        )),
    };
    match encr {
        EncrId::Null => Ok(0),
        EncrId::AesCbc => aes(key_bits),
        EncrId::AesGcm16 | EncrId::NullAuthAesGmac => Ok(aes(key_bits)? + SALT_LEN),
        EncrId::ChaCha20Poly1305 => match key_bits {
            0 | 256 => Ok(32 + SALT_LEN),
            _ => Err(CryptoError::UnsupportedSuite(
                "ChaCha20-Poly1305 takes a 256-bit key",
            )),
        },
    }
}

fn is_aead(encr: EncrId) -> bool {
    matches!(
        encr,
        EncrId::AesGcm16 | EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305
    )
}

/// How long SK_e* and SK_a* (or a CHILD_SA's per-direction encryption and
/// integrity keys) are, from the negotiated transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyLengths {
    /// Bytes of encryption key material per direction (salt included).
    pub encr: usize,
    /// Bytes of integrity key per direction; 0 with an AEAD.
    pub integ: usize,
}

impl KeyLengths {
    /// Lengths for the negotiated encryption transform (with its Key Length
    /// attribute) and integrity transform. AEADs take no integrity
    /// transform (RFC 7296 §3.3.3), so `integ` must be [`IntegId::None`]
    /// with them and must not be with the others (ESP's confidentiality-only
    /// AES-CBC goes through [`for_esp`](Self::for_esp)).
    pub fn new(encr: EncrId, key_bits: u16, integ: IntegId) -> Result<Self, CryptoError> {
        let aead = is_aead(encr);
        if aead && integ != IntegId::None {
            return Err(CryptoError::UnsupportedSuite(
                "an AEAD takes no integrity transform",
            ));
        }
        if !aead && integ == IntegId::None {
            return Err(CryptoError::UnsupportedSuite(
                "a non-AEAD needs an integrity transform",
            ));
        }
        Ok(Self {
            encr: encr_key_material_len(encr, key_bits)?,
            integ: integ.key_len(),
        })
    }

    /// Lengths for an ESP suite (the suite's own validation applies).
    pub fn for_esp(suite: &EspSuite) -> Result<Self, CryptoError> {
        suite.validate()?;
        Ok(Self {
            encr: suite.encr_key_len(),
            integ: suite.integ_key_len(),
        })
    }
}

/// The seven IKE SA keys of RFC 7296 §2.14, in one buffer wiped on drop.
/// `Debug` shows only their lengths.
pub struct IkeSaKeys {
    material: KeyMaterial,
    prf_key_len: usize,
    lengths: KeyLengths,
}

impl IkeSaKeys {
    /// `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
    /// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`, where SK_d, SK_pi and SK_pr
    /// are the PRF's preferred key length and the others follow `lengths`.
    pub fn derive(
        prf: Prf,
        skeyseed: &[u8],
        lengths: KeyLengths,
        ni: &[u8],
        nr: &[u8],
        spi_i: [u8; 8],
        spi_r: [u8; 8],
    ) -> Result<Self, CryptoError> {
        let prf_key_len = prf.preferred_key_len();
        let total = 3 * prf_key_len + 2 * lengths.encr + 2 * lengths.integ;
        let material = prf.prf_plus(skeyseed, &[ni, nr, &spi_i, &spi_r], total)?;
        Ok(Self {
            material,
            prf_key_len,
            lengths,
        })
    }

    /// Slices `[SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr]`.
    fn parts(&self) -> [&[u8]; 7] {
        let sizes = [
            self.prf_key_len,
            self.lengths.integ,
            self.lengths.integ,
            self.lengths.encr,
            self.lengths.encr,
            self.prf_key_len,
            self.prf_key_len,
        ];
        let mut rest = self.material.as_ref();
        let mut out: [&[u8]; 7] = [&[]; 7];
        for (slot, size) in out.iter_mut().zip(sizes) {
            let (head, tail) = rest.split_at(size.min(rest.len()));
            *slot = head;
            rest = tail;
        }
        out
    }

    /// SK_d, the key CHILD_SA keying material and rekeys derive from.
    pub fn sk_d(&self) -> &[u8] {
        self.parts()[0]
    }
    /// SK_ai, the initiator's integrity key (empty with an AEAD).
    pub fn sk_ai(&self) -> &[u8] {
        self.parts()[1]
    }
    /// SK_ar, the responder's integrity key (empty with an AEAD).
    pub fn sk_ar(&self) -> &[u8] {
        self.parts()[2]
    }
    /// SK_ei, the initiator's encryption key (salt last for AEADs).
    pub fn sk_ei(&self) -> &[u8] {
        self.parts()[3]
    }
    /// SK_er, the responder's encryption key (salt last for AEADs).
    pub fn sk_er(&self) -> &[u8] {
        self.parts()[4]
    }
    /// SK_pi, used to compute the initiator's AUTH payload.
    pub fn sk_pi(&self) -> &[u8] {
        self.parts()[5]
    }
    /// SK_pr, used to compute the responder's AUTH payload.
    pub fn sk_pr(&self) -> &[u8] {
        self.parts()[6]
    }
}

impl core::fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSaKeys")
            .field("prf_key_len", &self.prf_key_len)
            .field("lengths", &self.lengths)
            .finish_non_exhaustive()
    }
}

/// The keys of one direction of a CHILD_SA.
#[derive(Clone, Copy)]
pub struct DirectionKeys<'a> {
    /// Encryption key material (salt last for AEADs; empty for ENCR_NULL).
    pub encr: &'a [u8],
    /// Integrity key (empty with an AEAD).
    pub integ: &'a [u8],
}

impl core::fmt::Debug for DirectionKeys<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirectionKeys")
            .field("encr_len", &self.encr.len())
            .field("integ_len", &self.integ.len())
            .finish_non_exhaustive()
    }
}

/// CHILD_SA keying material (RFC 7296 §2.17), wiped on drop. `Debug` shows
/// only the lengths.
pub struct ChildSaKeys {
    material: KeyMaterial,
    lengths: KeyLengths,
}

impl ChildSaKeys {
    /// `KEYMAT = prf+(SK_d, Ni | Nr)`, or `prf+(SK_d, g^ir (new) | Ni | Nr)`
    /// when the CREATE_CHILD_SA exchange carried a key exchange (PFS).
    /// `ni`/`nr` are the nonces of the exchange that created the CHILD_SA
    /// (IKE_SA_INIT's for the first one).
    pub fn derive(
        prf: Prf,
        sk_d: &[u8],
        g_ir_new: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        lengths: KeyLengths,
    ) -> Result<Self, CryptoError> {
        let total = 2 * (lengths.encr + lengths.integ);
        let material = match g_ir_new {
            Some(g_ir) => prf.prf_plus(sk_d, &[g_ir, ni, nr], total)?,
            None => prf.prf_plus(sk_d, &[ni, nr], total)?,
        };
        Ok(Self { material, lengths })
    }

    fn direction(&self, index: usize) -> DirectionKeys<'_> {
        let per_direction = self.lengths.encr + self.lengths.integ;
        let all = self.material.as_ref();
        let start = (index * per_direction).min(all.len());
        let block = &all[start..(start + per_direction).min(all.len())];
        let (encr, integ) = block.split_at(self.lengths.encr.min(block.len()));
        DirectionKeys { encr, integ }
    }

    /// Keys for traffic from the initiator to the responder: taken first from
    /// KEYMAT, encryption key then integrity key (RFC 7296 §2.17).
    pub fn initiator_to_responder(&self) -> DirectionKeys<'_> {
        self.direction(0)
    }

    /// Keys for traffic from the responder to the initiator: taken after the
    /// initiator-to-responder keys.
    pub fn responder_to_initiator(&self) -> DirectionKeys<'_> {
        self.direction(1)
    }
}

impl core::fmt::Debug for ChildSaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChildSaKeys")
            .field("lengths", &self.lengths)
            .finish_non_exhaustive()
    }
}
