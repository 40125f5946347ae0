//! RSASSA-PKCS1-v1_5 signing with SHA-1, the signature of IKEv2's "RSA
//! Digital Signature" (auth method 1, RFC 7296 §3.8), through aws-lc's EVP
//! API: aws-lc-rs verifies such signatures but refuses to make them.
//!
//! The key is parsed once from PKCS#8 into an `EVP_PKEY` that this value
//! owns; `EVP_PKEY_free` cleanses and frees it on drop.

use core::ptr::{self, NonNull};

use aws_lc_sys as sys;

use super::SignatureError;

/// An RSA private key that can make PKCS#1 v1.5 SHA-1 signatures.
pub(super) struct RsaSha1Signer {
    pkey: NonNull<sys::EVP_PKEY>,
}

// SAFETY: the `EVP_PKEY` is owned by this value alone and is only read after
// construction; aws-lc's RSA signing takes its own locks for the blinding
// state it caches, so using one key from several threads is sound (aws-lc-rs
// relies on the same for `RsaKeyPair`).
unsafe impl Send for RsaSha1Signer {}
// SAFETY: see `Send`.
unsafe impl Sync for RsaSha1Signer {}

impl RsaSha1Signer {
    /// The RSA key in a PKCS#8 document.
    pub(super) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SignatureError> {
        let mut cbs = sys::CBS {
            data: pkcs8.as_ptr(),
            len: pkcs8.len(),
        };
        // SAFETY: `cbs` borrows `pkcs8`, which outlives the call;
        // EVP_parse_private_key only reads through it, advances it past what it
        // parsed, and returns a new EVP_PKEY that we own, or null.
        let pkey = unsafe { sys::EVP_parse_private_key(&mut cbs) };
        let Some(pkey) = NonNull::new(pkey) else {
            clear_error_queue();
            return Err(SignatureError::KeyRejected);
        };
        let signer = Self { pkey };
        // Trailing bytes after the PKCS#8 document are refused, as aws-lc-rs does.
        // SAFETY: `pkey` is a valid EVP_PKEY.
        if cbs.len != 0 || unsafe { sys::EVP_PKEY_id(signer.pkey.as_ptr()) } != sys::EVP_PKEY_RSA {
            return Err(SignatureError::KeyRejected);
        }
        Ok(signer)
    }

    /// The signature of `message`, as long as the modulus.
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        // SAFETY: EVP_MD_CTX_new returns a new context or null.
        let ctx = NonNull::new(unsafe { sys::EVP_MD_CTX_new() }).ok_or(SignatureError::Library)?;
        let ctx = MdCtx(ctx);
        // SAFETY: `ctx` and `self.pkey` are valid; EVP_DigestSignInit takes
        // its own reference to the key. RSA keys default to PKCS#1 v1.5
        // padding, so no EVP_PKEY_CTX is needed.
        let ok = unsafe {
            sys::EVP_DigestSignInit(
                ctx.0.as_ptr(),
                ptr::null_mut(),
                sys::EVP_sha1(),
                ptr::null_mut(),
                self.pkey.as_ptr(),
            )
        };
        if ok != 1 {
            clear_error_queue();
            return Err(SignatureError::Library);
        }
        // SAFETY: `self.pkey` is a valid EVP_PKEY.
        let max = usize::try_from(unsafe { sys::EVP_PKEY_size(self.pkey.as_ptr()) })
            .map_err(|_| SignatureError::Library)?;
        let mut signature = vec![0u8; max];
        let mut len = max;
        // SAFETY: `signature` has room for `len` = EVP_PKEY_size bytes, the
        // most an RSA signature takes; `message` is valid for its length.
        let ok = unsafe {
            sys::EVP_DigestSign(
                ctx.0.as_ptr(),
                signature.as_mut_ptr(),
                &mut len,
                message.as_ptr(),
                message.len(),
            )
        };
        if ok != 1 || len > max {
            clear_error_queue();
            return Err(SignatureError::Library);
        }
        signature.truncate(len);
        Ok(signature)
    }
}

impl Drop for RsaSha1Signer {
    fn drop(&mut self) {
        // SAFETY: we own this EVP_PKEY reference.
        unsafe { sys::EVP_PKEY_free(self.pkey.as_ptr()) }
    }
}

/// An `EVP_MD_CTX` freed on every path out of `sign`.
struct MdCtx(NonNull<sys::EVP_MD_CTX>);

impl Drop for MdCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; freeing it drops its key reference.
        unsafe { sys::EVP_MD_CTX_free(self.0.as_ptr()) }
    }
}

/// Drops the reasons aws-lc queued for a failure we already turned into an
/// error value.
fn clear_error_queue() {
    // SAFETY: no arguments; touches only this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}
