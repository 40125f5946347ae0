//! ML-KEM-768 (FIPS 203) as IKEv2 key exchange method 36
//! (draft-ietf-ipsecme-ikev2-mlkem), for the additional key exchanges of
//! RFC 9370.
//!
//! A KEM is not symmetric like Diffie-Hellman: the initiator's KE payload
//! carries its encapsulation key (1184 octets), the responder encapsulates
//! to it and returns the ciphertext (1088 octets), and both end with the
//! same 32-octet shared secret, which takes the place of g^ir. Everything
//! is aws-lc's `kem` module through aws-lc-rs; nothing is computed here.

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};

use crate::CryptoError;
use crate::prf::KeyMaterial;

/// Octets of the initiator's KE data: the ML-KEM-768 encapsulation key.
pub const ENCAPSULATION_KEY_LEN: usize = 1184;
/// Octets of the responder's KE data: the ML-KEM-768 ciphertext.
pub const CIPHERTEXT_LEN: usize = 1088;
/// Octets of the shared secret.
pub const SHARED_SECRET_LEN: usize = 32;

/// The initiator's side: a decapsulation key (kept inside aws-lc, cleared
/// when dropped) and the encapsulation key it sends.
pub(crate) struct MlKemInitiator {
    decapsulation_key: DecapsulationKey,
    encapsulation_key: Vec<u8>,
}

impl MlKemInitiator {
    /// A fresh key pair from aws-lc's RNG.
    pub(crate) fn generate() -> Result<Self, CryptoError> {
        let decapsulation_key =
            DecapsulationKey::generate(&ML_KEM_768).map_err(|_| CryptoError::Cipher)?;
        let encapsulation_key = decapsulation_key
            .encapsulation_key()
            .and_then(|k| k.key_bytes())
            .map_err(|_| CryptoError::Cipher)?
            .as_ref()
            .to_vec();
        if encapsulation_key.len() != ENCAPSULATION_KEY_LEN {
            return Err(CryptoError::Cipher);
        }
        Ok(Self {
            decapsulation_key,
            encapsulation_key,
        })
    }

    /// The KE payload data: the encapsulation key.
    pub(crate) fn public_value(&self) -> &[u8] {
        &self.encapsulation_key
    }

    /// The shared secret from the responder's ciphertext. A ciphertext of
    /// the wrong length is [`CryptoError::BadKeyExchange`]; a well-formed
    /// but altered one decapsulates to a different secret (ML-KEM's
    /// implicit rejection), which the AUTH exchange then exposes.
    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<KeyMaterial, CryptoError> {
        if ciphertext.len() != CIPHERTEXT_LEN {
            return Err(CryptoError::BadKeyExchange);
        }
        let secret = self
            .decapsulation_key
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| CryptoError::BadKeyExchange)?;
        shared_secret(secret.as_ref())
    }
}

/// The responder's side: encapsulates to the initiator's encapsulation key
/// and returns the ciphertext to send and the shared secret. A key of the
/// wrong length, or one aws-lc rejects (FIPS 203 §7.2's modulus check), is
/// [`CryptoError::BadKeyExchange`].
pub(crate) fn encapsulate(encapsulation_key: &[u8]) -> Result<(Vec<u8>, KeyMaterial), CryptoError> {
    if encapsulation_key.len() != ENCAPSULATION_KEY_LEN {
        return Err(CryptoError::BadKeyExchange);
    }
    if !modulus_check(encapsulation_key) {
        return Err(CryptoError::BadKeyExchange);
    }
    let key = EncapsulationKey::new(&ML_KEM_768, encapsulation_key)
        .map_err(|_| CryptoError::BadKeyExchange)?;
    let (ciphertext, secret) = key.encapsulate().map_err(|_| CryptoError::Cipher)?;
    if ciphertext.as_ref().len() != CIPHERTEXT_LEN {
        return Err(CryptoError::Cipher);
    }
    Ok((
        ciphertext.as_ref().to_vec(),
        shared_secret(secret.as_ref())?,
    ))
}

/// FIPS 203 §7.2's modulus check, which draft-ietf-ipsecme-ikev2-mlkem
/// requires of the responder: every 12-bit coefficient of the key's
/// `ByteEncode12(t)` part (k = 3 polynomials of 256, 1152 octets; the last
/// 32 octets are the seed rho) is below q = 3329. aws-lc-rs 1.19 checks
/// the length only, so the check is here; it is input validation, not a
/// part of the primitive.
fn modulus_check(encapsulation_key: &[u8]) -> bool {
    const Q: u16 = 3329;
    let Some(t) = encapsulation_key.get(..ENCAPSULATION_KEY_LEN - 32) else {
        return false;
    };
    t.chunks_exact(3).all(|c| {
        let &[b0, b1, b2] = c else { return false };
        let (b0, b1, b2) = (u16::from(b0), u16::from(b1), u16::from(b2));
        let first = b0 | ((b1 & 0x0f) << 8);
        let second = (b1 >> 4) | (b2 << 4);
        first < Q && second < Q
    })
}

fn shared_secret(secret: &[u8]) -> Result<KeyMaterial, CryptoError> {
    if secret.len() != SHARED_SECRET_LEN {
        return Err(CryptoError::Cipher);
    }
    Ok(KeyMaterial::from_slice(secret))
}
