//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups, through aws-lc's
//! `DH` (aws-lc-rs has no safe API for it).
//!
//! This is the crate's only FFI for key exchange: a `DH` object holding the
//! group's prime p, the generator 2 and the private exponent, freed by
//! `DH_free` (which clears the private exponent) on drop.
//!
//! Private exponents: aws-lc draws them uniformly below 2^N with N set by
//! `DH_set_length`. We use twice the larger strength estimate of RFC 3526 §8
//! (320, 420 and 480 bits for groups 14, 15 and 16): the exponent then costs
//! no more security than the modulus gives, and a 2048-bit exchange is
//! several times faster than with a full-length exponent.
//!
//! Peer values: `DH_compute_key_padded` refuses y ≤ 1 and y ≥ p - 1 (`DH_check_pub_key`)
//! and a shared secret of 1 or p - 1 (SP 800-56A rev. 3 §5.7.1.1), and
//! left-pads the secret to the length of p as RFC 7296 §2.14 requires.

use core::ptr::{self, NonNull};

use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::prf::KeyMaterial;

/// A MODP group of RFC 3526 with generator 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModpGroup {
    /// Group 14.
    Modp2048,
    /// Group 15.
    Modp3072,
    /// Group 16.
    Modp4096,
}

impl ModpGroup {
    /// Length of p in bytes: also the length of public values and of g^ir.
    pub(super) const fn prime_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Modp4096 => 512,
        }
    }

    /// Bits of a generated private exponent (see the module comment).
    const fn exponent_bits(self) -> u32 {
        match self {
            Self::Modp2048 => 320,
            Self::Modp3072 => 420,
            Self::Modp4096 => 480,
        }
    }

    fn prime(self) -> Result<Bignum, CryptoError> {
        // SAFETY: with a null argument these allocate and return a new BIGNUM
        // (or null on allocation failure); we own it.
        let p = unsafe {
            match self {
                Self::Modp2048 => sys::BN_get_rfc3526_prime_2048(ptr::null_mut()),
                Self::Modp3072 => sys::BN_get_rfc3526_prime_3072(ptr::null_mut()),
                Self::Modp4096 => sys::BN_get_rfc3526_prime_4096(ptr::null_mut()),
            }
        };
        Bignum::from_raw(p)
    }
}

/// An owned `BIGNUM`, cleared and freed on drop unless handed to aws-lc.
struct Bignum(NonNull<sys::BIGNUM>);

impl Bignum {
    fn from_raw(bn: *mut sys::BIGNUM) -> Result<Self, CryptoError> {
        NonNull::new(bn).map(Self).ok_or(CryptoError::Cipher)
    }

    /// A big-endian unsigned integer; `bytes` may be empty (zero).
    fn from_be_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        // SAFETY: `bytes` is valid for `bytes.len()` reads; a null `ret` makes
        // aws-lc allocate a new BIGNUM that we own.
        Self::from_raw(unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), ptr::null_mut()) })
    }

    fn from_word(word: u64) -> Result<Self, CryptoError> {
        // SAFETY: BN_new returns a new BIGNUM or null.
        let bn = Self::from_raw(unsafe { sys::BN_new() })?;
        // SAFETY: `bn` is a valid BIGNUM we own.
        if unsafe { sys::BN_set_word(bn.0.as_ptr(), word) } != 1 {
            return Err(CryptoError::Cipher);
        }
        Ok(bn)
    }

    fn as_ptr(&self) -> *mut sys::BIGNUM {
        self.0.as_ptr()
    }

    /// Gives up ownership after aws-lc has taken the BIGNUM.
    fn into_raw(self) -> *mut sys::BIGNUM {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        raw
    }
}

impl Drop for Bignum {
    fn drop(&mut self) {
        // SAFETY: we own this BIGNUM and nothing else refers to it.
        unsafe { sys::BN_clear_free(self.0.as_ptr()) }
    }
}

/// One side of a MODP exchange: aws-lc's `DH` with p, g = 2 and a key pair.
pub(super) struct ModpKey {
    group: ModpGroup,
    dh: NonNull<sys::DH>,
    public: Vec<u8>,
}

// SAFETY: the `DH` is owned by this value alone. After construction it is only
// read, except that DH_compute_key_padded may cache a Montgomery context, which
// aws-lc does under the DH's own mutex (BN_MONT_CTX_set_locked); so moving it
// to and sharing it between threads is sound.
unsafe impl Send for ModpKey {}
// SAFETY: see `Send`.
unsafe impl Sync for ModpKey {}

impl ModpKey {
    /// A fresh private exponent from aws-lc's RNG.
    pub(super) fn generate(group: ModpGroup) -> Result<Self, CryptoError> {
        let mut key = Self::with_params(group)?;
        // SAFETY: `key.dh` is a valid DH we own.
        if unsafe { sys::DH_set_length(key.dh.as_ptr(), group.exponent_bits()) } != 1 {
            return Err(CryptoError::Cipher);
        }
        key.generate_key()?;
        Ok(key)
    }

    /// A given big-endian private exponent x, 0 < x < p (known-answer tests).
    pub(super) fn from_private_key(group: ModpGroup, x: &[u8]) -> Result<Self, CryptoError> {
        if x.is_empty() || x.len() > group.prime_len() {
            return Err(CryptoError::BadKeyLength {
                expected: group.prime_len(),
                got: x.len(),
            });
        }
        let mut key = Self::with_params(group)?;
        let x = Bignum::from_be_bytes(x)?;
        let p = group.prime()?;
        // SAFETY: both are valid BIGNUMs we own.
        let in_range =
            unsafe { sys::BN_is_zero(x.as_ptr()) == 0 && sys::BN_cmp(x.as_ptr(), p.as_ptr()) < 0 };
        if !in_range {
            return Err(CryptoError::BadKeyExchange);
        }
        // SAFETY: `key.dh` is valid; DH_set0_key takes ownership of `x` (and
        // always succeeds), so we release it only after the call.
        if unsafe { sys::DH_set0_key(key.dh.as_ptr(), ptr::null_mut(), x.as_ptr()) } != 1 {
            return Err(CryptoError::Cipher);
        }
        x.into_raw();
        // With a private key present, DH_generate_key only computes g^x mod p.
        key.generate_key()?;
        Ok(key)
    }

    /// A `DH` holding the group's p and g = 2, and no key yet.
    fn with_params(group: ModpGroup) -> Result<Self, CryptoError> {
        // SAFETY: DH_new returns a new DH or null.
        let dh = NonNull::new(unsafe { sys::DH_new() }).ok_or(CryptoError::Cipher)?;
        // From here `Drop` frees the DH whatever happens.
        let key = Self {
            group,
            dh,
            public: Vec::new(),
        };
        let p = group.prime()?;
        let g = Bignum::from_word(2)?;
        // SAFETY: all three are valid and owned by us; on success the DH owns
        // p and g, so we release them only then.
        if unsafe { sys::DH_set0_pqg(key.dh.as_ptr(), p.as_ptr(), ptr::null_mut(), g.as_ptr()) }
            != 1
        {
            return Err(CryptoError::Cipher);
        }
        p.into_raw();
        g.into_raw();
        Ok(key)
    }

    fn generate_key(&mut self) -> Result<(), CryptoError> {
        let len = self.group.prime_len();
        let mut public = vec![0u8; len];
        // SAFETY: `self.dh` is a valid DH with p and g set. The public key it
        // then holds is owned by the DH and only read here; `public` has room
        // for `len` bytes.
        let ok = unsafe {
            sys::DH_generate_key(self.dh.as_ptr()) == 1 && {
                let y = sys::DH_get0_pub_key(self.dh.as_ptr());
                !y.is_null() && sys::BN_bn2bin_padded(public.as_mut_ptr(), len, y) == 1
            }
        };
        if !ok {
            clear_error_queue();
            return Err(CryptoError::Cipher);
        }
        self.public = public;
        Ok(())
    }

    /// g^x mod p, left-padded to the length of p (RFC 7296 §3.4).
    pub(super) fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// g^xy mod p from the peer's public value y, which must be exactly as
    /// long as p and satisfy 1 < y < p - 1.
    pub(super) fn shared_secret(&self, peer: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let len = self.group.prime_len();
        if peer.len() != len {
            return Err(CryptoError::BadKeyExchange);
        }
        let y = Bignum::from_be_bytes(peer)?;
        let mut secret = Zeroizing::new(vec![0u8; len]);
        // SAFETY: `secret` has room for DH_size(dh) = `len` bytes; `y` and
        // `self.dh` are valid; see the `Sync` impl for the shared `DH`.
        let written = unsafe {
            sys::DH_compute_key_padded(secret.as_mut_ptr(), y.as_ptr(), self.dh.as_ptr())
        };
        if usize::try_from(written).ok() != Some(len) {
            clear_error_queue();
            return Err(CryptoError::BadKeyExchange);
        }
        Ok(KeyMaterial::from_slice(&secret))
    }
}

impl Drop for ModpKey {
    fn drop(&mut self) {
        // SAFETY: we own the DH; DH_free clears and frees the private exponent.
        unsafe { sys::DH_free(self.dh.as_ptr()) }
    }
}

/// Drops the reasons aws-lc queued for a failure we already turned into an
/// error value, so they do not surface in an unrelated later call.
fn clear_error_queue() {
    // SAFETY: no arguments; touches only this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}
