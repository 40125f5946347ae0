//! The Certification Authority field of CERTREQ payloads (RFC 7296 §3.7):
//! for X.509 certificates, a concatenation of SHA-1 hashes of trusted CAs'
//! SubjectPublicKeyInfo elements (the whole DER SEQUENCE, as strongSwan and
//! Windows compute it).

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};

/// Length of one authority hash (SHA-1).
pub const CERTREQ_HASH_LEN: usize = 20;

/// The SHA-1 hash of a DER SubjectPublicKeyInfo.
pub fn certreq_authority_hash(spki_der: &[u8]) -> [u8; CERTREQ_HASH_LEN] {
    let mut hash = [0u8; CERTREQ_HASH_LEN];
    // SHA-1 output is always 20 bytes.
    hash.copy_from_slice(digest(&SHA1_FOR_LEGACY_USE_ONLY, spki_der).as_ref());
    hash
}
